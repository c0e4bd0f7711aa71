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

n=40
for i in 1 2 3 4; do
  extra=()
  [ "$i" = 4 ] && extra=(--no-ipmc)
  timeout 20 "$quilt" sub --bootstrap "$boot" --group loop --count "$n" "${extra[@]}" \
    >"$tmp/sub$i.out" 2>"$tmp/sub$i.err" &
  pids+=($!)
done
sleep 1
seq 1 "$n" | sed 's/^/message /' >"$tmp/want"
timeout 20 "$quilt" pub --bootstrap "$boot" --group loop --linger-ms 1500 <"$tmp/want"
status=$?
fail=0
[ "$status" = 0 ] || { echo "FAIL: pub exited $status"; fail=1; }
for i in 1 2 3 4; do
  wait "${pids[$i]}" 2>/dev/null
  if cmp -s "$tmp/want" "$tmp/sub$i.out"; then
    echo "ok: subscriber $i got all $n messages once, in order"
  else
    echo "FAIL: subscriber $i"; diff "$tmp/want" "$tmp/sub$i.out" | head; cat "$tmp/sub$i.err"
    fail=1
  fi
done
if [ "$fail" = 0 ]; then echo "loopback: 5 passed, 0 failed"; else echo "loopback: failed"; fi
exit "$fail"
