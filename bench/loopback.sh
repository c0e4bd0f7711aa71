#!/usr/bin/env bash
# loopback.sh -- measures Quilt on real processes over 127.0.0.1:
#   1. time from `quilt sub` start to its first delivery, while a publisher
#      sends a message every 10 ms (10 runs: min, median, max);
#   2. messages per second from one `quilt pub` to several `quilt sub`,
#      and whether every subscriber got every message once, in order.
# usage: bench/loopback.sh QUILT_BINARY [MESSAGES] [SUBSCRIBERS] [RATE]
set -u
quilt=$1
n=${2:-50000}
subs=${3:-3}
rate=${4:-100000}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
now_ms() { echo $(($(date +%s%N) / 1000000)); }

port=$((20000 + RANDOM % 20000))
boot=127.0.0.1:$port
"$quilt" bootstrap --listen "$boot" >"$tmp/boot.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$tmp/boot.out" && break; sleep 0.1; done

# 1. first delivery
(while :; do echo tick; sleep 0.01; done) |
  "$quilt" pub --bootstrap "$boot" --group first >/dev/null 2>&1 &
pids+=($!)
sleep 1
for i in $(seq 10); do
  t0=$(now_ms)
  timeout 10 "$quilt" sub --bootstrap "$boot" --group first --count 1 >/dev/null
  echo $(($(now_ms) - t0))
done | sort -n >"$tmp/first"
echo "sub start to first delivery (ms, 10 runs): min $(head -1 "$tmp/first")," \
  "median $(sed -n 5p "$tmp/first"), max $(tail -1 "$tmp/first")"

# 2. throughput
seq 1 "$n" | sed 's/^/message /' >"$tmp/lines"
spids=()
for i in $(seq "$subs"); do
  timeout 120 "$quilt" sub --bootstrap "$boot" --group tput --count "$n" \
    >"$tmp/sub$i" 2>"$tmp/sub$i.err" &
  spids+=($!)
done
sleep 0.5
t0=$(now_ms)
timeout 120 "$quilt" pub --bootstrap "$boot" --group tput --rate "$rate" \
  --linger-ms 2000 <"$tmp/lines" >/dev/null 2>&1 &
pids+=($!)
for p in "${spids[@]}"; do wait "$p"; done
ms=$(($(now_ms) - t0))
ok=0
for i in $(seq "$subs"); do cmp -s "$tmp/lines" "$tmp/sub$i" && ok=$((ok + 1)); done
echo "$n messages (--rate $rate) to $subs subscribers in $ms ms:" \
  "$((n * 1000 / (ms > 0 ? ms : 1))) messages/s," \
  "$((n * subs * 1000 / (ms > 0 ? ms : 1))) deliveries/s;" \
  "$ok of $subs subscribers got every message once, in order"
