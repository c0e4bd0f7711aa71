#!/usr/bin/env bash
# demo.sh -- `quilt demo` end to end: a bootstrap server, 12 hosts in an
# ipmc patch and a unicast patch, two publishers, all on 127.0.0.1.  It must
# exit 0, print a row for at least 12 hosts, name both protocols, and leave
# no process of its own behind.
# usage: tests/demo.sh QUILT_BINARY
set -u
quilt=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT

start=$(date +%s)
timeout 60 "$quilt" demo >"$out" 2>&1
status=$?
secs=$(( $(date +%s) - start ))
cat "$out"
fail=0
[ "$status" = 0 ] || { echo "FAIL: quilt demo exited $status"; fail=1; }
[ "$secs" -lt 30 ] || { echo "FAIL: quilt demo took $secs s"; fail=1; }
# A host row: number, started as, patch, protocol, role, delivered/expected.
rows=$(grep -cE '^ +[0-9]+ +(ipmc|no-ipmc) +[0-9]+ +(ipmc|unicast) ' "$out")
[ "$rows" -ge 12 ] || { echo "FAIL: $rows host rows, expected at least 12"; fail=1; }
grep -qE '^ +[0-9]+ +[a-z-]+ +[0-9]+ +ipmc ' "$out" ||
  { echo "FAIL: no host on ipmc"; fail=1; }
grep -qE '^ +[0-9]+ +[a-z-]+ +[0-9]+ +unicast ' "$out" ||
  { echo "FAIL: no host on unicast"; fail=1; }
group=$(sed -n 's/.*group \(demo-[0-9]*\).*/\1/p' "$out" | head -1)
if [ -n "$group" ] && pgrep -f -- "--group $group( |$)" >/dev/null; then
  echo "FAIL: processes of group $group left behind:"
  pgrep -af -- "--group $group( |$)"
  fail=1
fi
port=$(sed -n 's/.*bootstrap server on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out" | head -1)
if [ -n "$port" ] && command -v ss >/dev/null &&
   ss -Hlun "src 127.0.0.1:$port" 2>/dev/null | grep -q .; then
  echo "FAIL: something still listens on 127.0.0.1:$port (the bootstrap server?)"
  fail=1
fi
if [ "$fail" = 0 ]; then echo "demo: passed"; else echo "demo: failed"; fi
exit "$fail"
