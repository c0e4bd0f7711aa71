#!/usr/bin/env bash
# loopback.sh -- real processes on 127.0.0.1: a bootstrap server, three
# subscribers on IP multicast over lo and one told it has none (so it lands
# in a unicast patch, bridged by the representatives), and a publisher.
# Every subscriber must print every line exactly once, in order.
# usage: tests/loopback.sh QUILT_BINARY
set -u
quilt=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
boot=127.0.0.1:$port
"$quilt" bootstrap --listen "$boot" >"$tmp/boot.out" 2>"$tmp/boot.err" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$tmp/boot.out" && break; sleep 0.1; done
if ! grep -q listening "$tmp/boot.out"; then
  echo "FAIL: bootstrap server did not start"; cat "$tmp/boot.err"; exit 1
fi

fail=0
passed=0
# quilt env against the server's STUN ports: no NAT on loopback, multicast
# works, and the server saw our address.
env_json=$(timeout 10 "$quilt" env --bootstrap "$boot" --bind 127.0.0.1 --json)
if echo "$env_json" | grep -q '"nat": "none"' &&
   echo "$env_json" | grep -q '"ipmc": true' &&
   echo "$env_json" | grep -q '"mapped_address": "127.0.0.1:' &&
   echo "$env_json" | grep -q '"inbound_open": true'; then
  echo "ok: quilt env reports no NAT, multicast, the mapped address"; passed=$((passed + 1))
else
  echo "FAIL: quilt env: $env_json"; fail=1
fi
# A standard STUN client (coturn's, when installed) gets its mapped address
# from the server's STUN port.
if command -v turnutils_natdiscovery >/dev/null; then
  out=$(timeout 10 turnutils_natdiscovery -m -P -p $((port + 1)) 127.0.0.1 2>&1)
  if echo "$out" | grep -Eq "reflexive addr: 127\.0\.0\.1:[0-9]+"; then
    echo "ok: turnutils_natdiscovery got its mapped address"; passed=$((passed + 1))
  else
    echo "FAIL: turnutils_natdiscovery: $out"; fail=1
  fi
else
  echo "SKIP: coturn's turnutils_natdiscovery not installed"
fi

# Garbage on every port the server listens on (Quilt and STUN): truncated,
# wrong magic, wrong version, random bytes.  It is counted and dropped; the
# server keeps serving (the exchange below goes through it).
for p in "$port" $((port + 1)) $((port + 2)); do
  printf 'QL' >/dev/udp/127.0.0.1/$p
  printf 'QL\x09\x07zzzzzzzzzzzz' >/dev/udp/127.0.0.1/$p
  printf 'hello, is this a bootstrap server?' >/dev/udp/127.0.0.1/$p
  head -c 1200 /dev/urandom >/dev/udp/127.0.0.1/$p
  printf '\x00\x01\x00\x08\x21\x12\xa4\x42abcdefghijkl' >/dev/udp/127.0.0.1/$p
done

n=40
for i in 1 2 3 4; do
  extra=()
  [ "$i" = 4 ] && extra=(--no-ipmc)
  timeout 20 "$quilt" sub --bootstrap "$boot" --group "loop-$$" --count "$n" "${extra[@]}" \
    >"$tmp/sub$i.out" 2>"$tmp/sub$i.err" &
  pids+=($!)
done
sleep 1
seq 1 "$n" | sed 's/^/message /' >"$tmp/want"
timeout 20 "$quilt" pub --bootstrap "$boot" --group "loop-$$" --linger-ms 1500 <"$tmp/want"
status=$?
[ "$status" = 0 ] || { echo "FAIL: pub exited $status"; fail=1; }
for i in 1 2 3 4; do
  wait "${pids[$i]}" 2>/dev/null
  if cmp -s "$tmp/want" "$tmp/sub$i.out"; then
    passed=$((passed + 1))
    echo "ok: subscriber $i got all $n messages once, in order"
  else
    echo "FAIL: subscriber $i"; diff "$tmp/want" "$tmp/sub$i.out" | head; cat "$tmp/sub$i.err"
    fail=1
  fi
done
# The server counted what it dropped (printed when it stops).
kill -TERM "${pids[0]}" 2>/dev/null
wait "${pids[0]}" 2>/dev/null
if grep -Eq "datagrams, [1-9][0-9]* refused" "$tmp/boot.err"; then
  echo "ok: the server counted the garbage as refused and kept serving"
  passed=$((passed + 1))
else
  echo "FAIL: no refused datagrams counted: $(cat "$tmp/boot.err")"; fail=1
fi
echo "loopback: $passed passed, $fail failed"
exit "$fail"
