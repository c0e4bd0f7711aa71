#!/usr/bin/env bash
# cli.sh -- the quilt program end to end: exit status, one-line errors that
# say what and where, replay by seed, JSON and plot output.
# usage: tests/cli.sh QUILT_BINARY SOURCE_DIR
set -u
quilt=$1
src=$2
data=$src/tests/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect STATUS PATTERN -- COMMAND...: runs the command, checks its exit
# status, that stderr is exactly one line when STATUS is 2, and that
# stdout+stderr match PATTERN (an extended regex).
expect() {
  local want=$1 pattern=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" != "$want" ]; then
    bad "'$*' exited $got, expected $want"; cat "$tmp/err"; return
  fi
  if [ "$want" = 2 ] && [ "$(wc -l <"$tmp/err")" != 1 ]; then
    bad "'$*' printed $(wc -l <"$tmp/err") error lines, expected 1"
    cat "$tmp/err"; return
  fi
  if ! cat "$tmp/out" "$tmp/err" | grep -Eq -- "$pattern"; then
    bad "'$*' output does not match /$pattern/"; cat "$tmp/out" "$tmp/err"
    return
  fi
  ok
}

small=(--clusters "$data/small_clusters.csv" --site-rtt "$data/small_site_rtt.csv")

expect 0 "usage: quilt" -- "$quilt" --help
expect 2 "unknown command 'frobnicate'" -- "$quilt" frobnicate
expect 2 "which command" -- "$quilt"
expect 0 "usage: quilt sim" -- "$quilt" sim --help
expect 2 "which scenario" -- "$quilt" sim
expect 2 "unknown scenario 'moon'" -- "$quilt" sim moon
expect 2 "unknown option '--bogus'" -- "$quilt" sim datacenter --bogus
expect 2 "--loss: '2' is not a number" -- "$quilt" sim datacenter --loss 2
expect 2 "--messages: 'many' is not an integer" -- "$quilt" sim datacenter --messages many
expect 2 "--seed needs a value" -- "$quilt" sim datacenter --seed
expect 2 "unknown protocol 'carrier-pigeon'" -- "$quilt" sim datacenter --protocol carrier-pigeon
expect 2 "go together" -- "$quilt" sim datacenter --clusters "$data/small_clusters.csv"
expect 2 "bad_rules.rules:3:8: " -- "$quilt" sim datacenter "${small[@]}" --rules "$data/bad_rules.rules"
expect 2 "bad_clusters.csv:3:10: " -- "$quilt" sim datacenter --clusters "$data/bad_clusters.csv" --site-rtt "$data/small_site_rtt.csv"
expect 2 "nonexistent.csv: cannot read" -- "$quilt" sim datacenter --clusters "$tmp/nonexistent.csv" --site-rtt "$data/small_site_rtt.csv"
expect 2 "nope.rules: cannot read" -- "$quilt" sim datacenter "${small[@]}" --rules "$tmp/nope.rules"
expect 0 "usage: quilt bootstrap" -- "$quilt" bootstrap --help
expect 2 "--listen needs ADDR:PORT" -- "$quilt" bootstrap --listen nowhere
expect 2 "--listen needs ADDR:PORT" -- "$quilt" bootstrap
expect 2 "bad_rules.rules:3:8: " -- "$quilt" bootstrap --listen 127.0.0.1:0 --rules "$data/bad_rules.rules"
expect 2 "unknown option '--loud'" -- "$quilt" bootstrap --loud
expect 0 "usage: quilt sub" -- "$quilt" sub --help
expect 2 "--group NAME are needed" -- "$quilt" sub --bootstrap 127.0.0.1:7000
expect 2 "bad --bootstrap" -- "$quilt" sub --bootstrap 127.0.0.1 --group g
expect 2 "no interface 'nope0'" -- "$quilt" sub --bootstrap 127.0.0.1:7000 --group g --iface nope0
expect 2 "--count: 'x' is not an integer" -- "$quilt" sub --bootstrap 127.0.0.1:7000 --group g --count x
expect 0 "usage: quilt pub" -- "$quilt" pub --help
expect 2 "unknown option '--loud'" -- "$quilt" pub --loud
expect 0 "usage: quilt env" -- "$quilt" env --help
expect 2 "--bootstrap needs ADDR:PORT" -- "$quilt" env --bootstrap 300.1.1.1:5
expect 1 "no interface" -- "$quilt" env --iface nope0
expect 0 "usage: quilt demo" -- "$quilt" demo --help
expect 2 "unknown option" -- "$quilt" demo --loud

# A run on a small topology delivers everything, with and without faults.
for knobs in "" "--loss 0.05" "--fail-reps" "--fail-reps --loss 0.05" \
  "--restart-bootstrap --loss 0.05" "--restart-bootstrap --fail-reps --restart-reps-ms 300"; do
  # shellcheck disable=SC2086
  expect 0 "delivery ratio +1\.000000 +1\.000000" -- "$quilt" sim datacenter "${small[@]}" \
    --compare quilt,unicast --messages 100 --seed 7 $knobs
  if grep -Eq "duplicate deliveries +0 +0" "$tmp/out"; then ok; else bad "duplicates with '$knobs'"; fi
done

# The same seed replays the run byte for byte, wall time aside.
run() { "$quilt" sim datacenter "${small[@]}" --loss 0.02 --messages 80 --seed "$1" | grep -v '^wall seconds'; }
run 42 >"$tmp/a"; run 42 >"$tmp/b"; run 43 >"$tmp/c"
if cmp -s "$tmp/a" "$tmp/b"; then ok; else bad "seed 42 did not replay"; diff "$tmp/a" "$tmp/b"; fi
if cmp -s "$tmp/a" "$tmp/c"; then bad "seeds 42 and 43 gave the same run"; else ok; fi
if grep -q "seed 42" "$tmp/a"; then ok; else bad "seed not printed"; fi

# JSON: one object per protocol with the documented keys.
expect 0 "delivery ratio" -- "$quilt" sim datacenter "${small[@]}" --compare quilt,unicast \
  --messages 20 --seed 3 --json "$tmp/r.json"
for key in scenario protocol seed hosts messages delivery_ratio duplicate_deliveries \
  latency_ms lower_bound_ms p50 p90 p99 max mean data_bytes control_bytes events wall_seconds; do
  if grep -q "\"$key\"" "$tmp/r.json"; then ok; else bad "JSON lacks \"$key\""; fi
done
if [ "$(grep -c '"protocol"' "$tmp/r.json")" = 2 ]; then ok; else bad "JSON should hold 2 objects"; fi
if command -v python3 >/dev/null; then
  if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[0]["protocol"]=="quilt" and d[1]["protocol"]=="unicast" and d[0]["delivery_ratio"]==1' "$tmp/r.json"; then ok; else bad "JSON does not parse or is wrong"; fi
fi
expect 1 "cannot|No such" -- "$quilt" sim datacenter "${small[@]}" --messages 5 --seed 3 --json "$tmp/no/such/dir/r.json"

# Plot: a PNG, when gnuplot is here.
if command -v gnuplot >/dev/null; then
  expect 0 "delivery ratio" -- "$quilt" sim datacenter "${small[@]}" --compare quilt,unicast \
    --messages 20 --seed 3 --plot "$tmp/cdf.png"
  if [ "$(head -c 4 "$tmp/cdf.png" | od -An -c | tr -d ' ')" = "211PNG" ]; then ok; else bad "plot is not a PNG"; fi
else
  echo "SKIP: gnuplot not installed, plot not tested"
fi

# The internet scenario: its inputs are checked, and a small run streams.
printf '# a bad matrix\n0 1 2\n1 0 x\n2 2 0\n' >"$tmp/bad.matrix"
expect 2 "bad.matrix:3:5: " -- "$quilt" sim internet --matrix "$tmp/bad.matrix"
expect 2 "none.matrix: cannot read" -- "$quilt" sim internet --matrix "$tmp/none.matrix"
expect 2 "--nat-share: '1.5' is not a share in \[0, 1\]" -- "$quilt" sim internet --nat-share 1.5
expect 2 "--nat-share: '-0.1' is not a number" -- "$quilt" sim internet --nat-share -0.1
expect 2 "are for the internet scenario" -- "$quilt" sim datacenter --matrix "$tmp/bad.matrix"
expect 2 "are for datacenter" -- "$quilt" sim internet --messages 5
expect 2 "must be a whole number of bytes" -- "$quilt" sim internet --rate 401 --segment-ms 1
expect 2 "--uplinks: 'fibre' is not planetlab or residential" -- "$quilt" sim internet --uplinks fibre
expect 2 "--regions: 'oracle' is not landmarks or kmedoids" -- "$quilt" sim internet --regions oracle
expect 2 "--warmup-s" -- "$quilt" sim internet --warmup-s 0
expect 2 "--patch-partners" -- "$quilt" sim internet --patch-partners 0
expect 2 "unicast is a data-centre baseline" -- "$quilt" sim internet --protocol unicast
expect 2 "mesh is the internet scenario's baseline" -- "$quilt" sim datacenter --protocol mesh
{
  echo "# 16 hosts in two groups"
  for i in $(seq 0 15); do
    row=""
    for j in $(seq 0 15); do
      if [ "$i" = "$j" ]; then v=0; elif [ $((i % 2)) = $((j % 2)) ]; then v=$((20 + (i + j) % 5)); else v=$((90 + (i * j) % 11)); fi
      row="$row $v"
    done
    echo "$row"
  done
} >"$tmp/small.matrix"
expect 0 "continuity index +[01]\.[0-9]+ +[01]\.[0-9]+" -- "$quilt" sim internet --matrix "$tmp/small.matrix" \
  --compare quilt,mesh --duration-s 4 --patch-max 4 --seed 5 --json "$tmp/i.json"
if grep -q '"continuity_index"' "$tmp/i.json"; then ok; else bad "JSON lacks continuity_index"; fi
if grep -Eq "duplicate deliveries +0 +0" "$tmp/out"; then ok; else bad "duplicates in the internet run"; fi

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
