#!/usr/bin/env bash
# netns.sh -- Quilt between real hosts: Linux network namespaces on one
# machine (issue 3, item 7).  Needs root; prints "SKIP: ..." and exits 0
# otherwise.
#
# usage: tests/netns.sh QUILT_BINARY
#
# Topology (every name starts with qt<pid>- so that parallel runs do not
# clash; nothing is added to the machine's own namespace: every veth is
# created inside the namespaces, and deleting them deletes it):
#
#   LAN1 10.77.1.0/24            routed segment 10.77.0.0/24         LAN2 10.77.2.0/24
#   h1a .11 h1b .12 h1c .13      boot .10 (bootstrap server)         h2a .11 h2b .12 h2c .13
#        |   |   |                   |                                    |   |   |
#      [bridge ns lan1]--rt .1----[bridge ns wan]----rt .1----------[bridge ns lan2]
#                                    |
#                                  nat .20 (iptables MASQUERADE out of wan0)
#                                    |
#                            [bridge ns lan3] 192.168.77.0/24, nat .1
#                                 n1 .11   n2 .12
#
# rt forwards unicast between its three segments; nothing routes multicast
# (no multicast routing daemon, and Quilt sends with TTL 1), so IP multicast
# works inside each LAN and never across rt.  The bridges have multicast
# snooping off, so they flood multicast to every port of their LAN (no IGMP
# querier is needed).  The NAT hosts' addresses are routed nowhere: they
# reach the routed segment only through the masquerade.
#
# Checks (each prints "ok: ..." or "FAIL: ..."; the last line is
# "netns: N passed, M failed"; exit 1 on any failure):
#   1. quilt env --json on every host matches its place (skipped, visibly,
#      while the binary has no `env` command);
#   2. the default rules put LAN1 in one ipmc patch, LAN2 in another, the
#      NAT hosts (multicast works on their own LAN behind the NAT) in a
#      third;
#   3. messages published on a LAN host and on a NAT host reach every host
#      exactly once;
#   4. SIGKILL of LAN1's primary representative while two hosts publish
#      loses no message at any surviving host;
#   5. after SIGKILL and restart of the bootstrap server, messages
#      published from a host of each LAN and a NAT host reach every host
#      exactly once (the server rebuilt its tables from heartbeats).
#
# Rules of the workplace kept here: traffic only inside these namespaces;
# no netem; every command bounded by `timeout`; the whole run bounded to
# 120 s; every namespace removed on exit, failure, SIGINT or SIGTERM.
set -u

if [ "$#" -lt 1 ]; then
  echo "usage: tests/netns.sh QUILT_BINARY" >&2
  exit 2
fi
quilt=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: netns test needs root"
  exit 0
fi

# The whole run is bounded: rerun this script under timeout(1) once.  On
# expiry timeout sends SIGTERM, which runs the cleanup below.
if [ -z "${QT_NETNS_BOUNDED:-}" ]; then
  export QT_NETNS_BOUNDED=1
  exec timeout -k 10 120 bash "${BASH_SOURCE[0]}" "$quilt"
fi

start_time=$(date +%s)
for tool in ip timeout iptables; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    case $tool in
      ip) pkg=iproute2 ;;
      timeout) pkg=coreutils ;;
      iptables) pkg=iptables ;;
    esac
    echo "FAIL: '$tool' not found: install the Debian package $pkg" \
         "(the Makefile's DEB_PACKAGES should list it)"
    echo "netns: 0 passed, 1 failed"
    exit 1
  fi
done
if [ ! -x "$quilt" ]; then
  echo "FAIL: $quilt is not an executable"
  echo "netns: 0 passed, 1 failed"
  exit 1
fi

pfx="qt$$"
tmp=$(mktemp -d)
made_ns=()
passed=0
failed=0

ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
skip() { echo "SKIP: $*"; }

cleanup() {
  trap - EXIT INT TERM
  exec 2>/dev/null # no "Killed" job notices for what is ended below
  local ns p i
  # Every process this test started runs inside one of its namespaces
  # (ip netns exec turns into timeout, which runs quilt): end exactly those.
  for ns in "${made_ns[@]}"; do
    for p in $(timeout 5 ip netns pids "$ns"); do
      kill -KILL "$p"
    done
  done
  wait
  for ((i = ${#made_ns[@]} - 1; i >= 0; i--)); do
    timeout 5 ip netns del "${made_ns[$i]}" 2>/dev/null
  done
  local left
  left=$(timeout 5 ip netns list 2>/dev/null | grep -c "^$pfx-")
  if [ "$left" != 0 ]; then
    echo "FAIL: $left namespace(s) named $pfx-* could not be removed"
  fi
  # QUILT_NETNS_KEEP=1 keeps the outputs of a failed run for a post-mortem.
  if [ -n "${QUILT_NETNS_KEEP:-}" ] && [ "$failed" != 0 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted (SIGINT)"; exit 130' INT
trap 'echo "FAIL: stopped (SIGTERM; the 120 s bound?)"; exit 143' TERM

# ---- namespaces, bridges, veths ------------------------------------------

T=10 # seconds, for every setup command

ns_name() { echo "$pfx-$1"; }

# nsysctl NS KEY VALUE: a sysctl of namespace NS (through /proc/sys, which
# shows the reader's namespace: no need for procps' sysctl).
nsysctl() {
  timeout $T ip netns exec "$1" bash -c "echo $3 >/proc/sys/$2"
}

mkns() { # NAME: a namespace with lo up, IPv6 off (quieter)
  local ns
  ns=$(ns_name "$1")
  timeout $T ip netns add "$ns" || return 1
  made_ns+=("$ns")
  timeout $T ip -n "$ns" link set lo up || return 1
  nsysctl "$ns" net/ipv6/conf/all/disable_ipv6 1 2>/dev/null
  nsysctl "$ns" net/ipv6/conf/default/disable_ipv6 1 2>/dev/null
  return 0
}

mkbridge() { # NAME: a namespace holding bridge br0 (multicast flooded)
  local ns
  ns=$(ns_name "$1")
  mkns "$1" &&
    timeout $T ip -n "$ns" link add br0 type bridge mcast_snooping 0 &&
    timeout $T ip -n "$ns" link set br0 up
}

# attach BRIDGE NS IFACE ADDR/LEN: a veth from NS (named IFACE there) into
# the bridge namespace's br0, with the address on NS's end.
attach() {
  local br ns port
  br=$(ns_name "$1")
  ns=$(ns_name "$2")
  port="p-$2"
  timeout $T ip -n "$br" link add "$port" type veth peer name "$3" netns "$ns" &&
    timeout $T ip -n "$br" link set "$port" master br0 up &&
    timeout $T ip -n "$ns" addr add "$4" dev "$3" &&
    timeout $T ip -n "$ns" link set "$3" up
}

# host NAME BRIDGE ADDR/LEN GATEWAY: a host namespace on a LAN, with its
# default route and the multicast route on its LAN interface.
host() {
  local ns
  ns=$(ns_name "$1")
  mkns "$1" && attach "$2" "$1" eth0 "$3" &&
    timeout $T ip -n "$ns" route add default via "$4" dev eth0 &&
    timeout $T ip -n "$ns" route add 224.0.0.0/4 dev eth0
}

setup() {
  mkbridge lan1 && mkbridge lan2 && mkbridge wan && mkbridge lan3 || return 1
  # the router between the LANs and the routed segment
  mkns rt &&
    attach lan1 rt eth1 10.77.1.1/24 &&
    attach lan2 rt eth2 10.77.2.1/24 &&
    attach wan rt eth0 10.77.0.1/24 &&
    nsysctl "$(ns_name rt)" net/ipv4/ip_forward 1 || return 1
  # the bootstrap server's host on the routed segment
  host boot wan 10.77.0.10/24 10.77.0.1 || return 1
  # the NAT: outer wan0 on the routed segment, inner lan0 on lan3
  local nat
  nat=$(ns_name nat)
  mkns nat &&
    attach wan nat wan0 10.77.0.20/24 &&
    attach lan3 nat lan0 192.168.77.1/24 &&
    timeout $T ip -n "$nat" route add default via 10.77.0.1 dev wan0 &&
    nsysctl "$nat" net/ipv4/ip_forward 1 &&
    timeout $T ip netns exec "$nat" iptables -t nat -A POSTROUTING \
      -s 192.168.77.0/24 -o wan0 -j MASQUERADE || return 1
  local h
  for h in a b c; do
    host "h1$h" lan1 "10.77.1.$((10 + $(printf '%d' "'$h") - 96))/24" 10.77.1.1 &&
      host "h2$h" lan2 "10.77.2.$((10 + $(printf '%d' "'$h") - 96))/24" 10.77.2.1 ||
      return 1
  done
  host n1 lan3 192.168.77.11/24 192.168.77.1 &&
    host n2 lan3 192.168.77.12/24 192.168.77.1
}

declare -A ip_of=(
  [h1a]=10.77.1.11 [h1b]=10.77.1.12 [h1c]=10.77.1.13
  [h2a]=10.77.2.11 [h2b]=10.77.2.12 [h2c]=10.77.2.13
  [n1]=192.168.77.11 [n2]=192.168.77.12 [boot]=10.77.0.10
)
lan1=(h1a h1b h1c)
lan2=(h2a h2b h2c)
nats=(n1 n2)
hosts=("${lan1[@]}" "${lan2[@]}" "${nats[@]}")
nat_outer=10.77.0.20
boot_addr=10.77.0.10:7000
group=netns

# ---- processes ------------------------------------------------------------

declare -A pid_of # name -> pid of `ip netns exec` (which becomes timeout)

# run NAME HOST SECONDS ARGS...: quilt ARGS in HOST's namespace, in the
# background, output in $tmp/NAME.out and .err.
run() {
  local name=$1 h=$2 secs=$3
  shift 3
  ip netns exec "$(ns_name "$h")" timeout "$secs" "$quilt" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid_of[$name]=$!
}

# The quilt process under the timeout(1) that pid_of[NAME] became.
quilt_pid() {
  local t=${pid_of[$1]} c
  c=$(cat "/proc/$t/task/$t/children" 2>/dev/null)
  if [ -z "$c" ]; then # kernels without CONFIG_PROC_CHILDREN
    local s
    for s in /proc/[0-9]*/stat; do
      read -r -a f <"$s" 2>/dev/null || continue
      [ "${f[3]:-}" = "$t" ] && c=${f[0]} && break
    done
  fi
  echo "${c%% *}"
}

start_boot() { # NAME
  run "$1" boot 110 bootstrap --listen "$boot_addr"
  local i
  for i in $(seq 50); do
    grep -q listening "$tmp/$1.out" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# sub NAME HOST [--no-ipmc]
sub() {
  local name=$1 h=$2
  shift 2
  run "$name" "$h" 60 sub --bootstrap "$boot_addr" --group "$group" \
    --bind "${ip_of[$h]}" --report "$@"
}

# Extra flags for a host: none; every host runs with what it detects.
flags_of() { :; }

# pub HOST LINES_FILE INTERVAL_S: publishes the file's lines, one every
# INTERVAL_S seconds (0: all at once), in the foreground; at most 10 s (a
# publisher that never gets its patch waits for it until then).
pub() {
  local h=$1 file=$2 gap=$3 f
  f=$(flags_of "$h")
  local line
  while IFS= read -r line; do
    printf '%s\n' "$line"
    [ "$gap" = 0 ] || sleep "$gap"
  done <"$file" |
    ip netns exec "$(ns_name "$h")" timeout 10 "$quilt" pub \
      --bootstrap "$boot_addr" --group "$group" --bind "${ip_of[$h]}" $f \
      --linger-ms 2000 >"$tmp/pub-$h-$(basename "$file").out" 2>&1
}

# Lines a sub printed, without its REPORT line.
msgs() { grep -v '^REPORT ' "$tmp/$1.out" 2>/dev/null; }
nmsgs() { msgs "$1" | wc -l; }

# wait_msgs SECONDS COUNT NAMES...: until every NAME printed COUNT lines.
wait_msgs() {
  local secs=$1 want=$2 n
  shift 2
  local deadline=$(($(date +%s%N) / 1000000 + secs * 1000))
  while [ "$(($(date +%s%N) / 1000000))" -lt "$deadline" ]; do
    local all=1
    for n in "$@"; do
      [ "$(nmsgs "$n")" -ge "$want" ] || { all=0; break; }
    done
    [ "$all" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}

# stop_subs NAMES...: SIGTERM (timeout passes it on; the sub prints its
# REPORT line and leaves), then wait for them.
stop_subs() {
  local n
  for n in "$@"; do kill -TERM "${pid_of[$n]}" 2>/dev/null; done
  for n in "$@"; do wait "${pid_of[$n]}" 2>/dev/null; done
}

# field NAME KEY: KEY's value in NAME's REPORT line.
field() {
  grep '^REPORT ' "$tmp/$1.out" 2>/dev/null | tail -n 1 |
    tr ' ' '\n' | sed -n "s/^$2=//p"
}

# exactly_once NAME WANT_FILE [PATTERN]: NAME printed each line of
# WANT_FILE exactly once and, among its lines matching PATTERN (default:
# all), nothing else.  Prints what is wrong, returns 1 if anything is.
exactly_once() {
  local got="$tmp/got.$$" pat=${3:-}
  if [ -n "$pat" ]; then msgs "$1" | grep -e "$pat"; else msgs "$1"; fi |
    sort >"$got"
  local dups missing extra
  dups=$(uniq -d "$got" | head -n 3 | tr '\n' ' ')
  missing=$(sort "$2" | comm -23 - <(sort -u "$got") | wc -l)
  extra=$(sort -u "$got" | comm -13 <(sort "$2") - | head -n 3 | tr '\n' ' ')
  rm -f "$got"
  if [ -z "$dups" ] && [ "$missing" = 0 ] && [ -z "$extra" ]; then
    return 0
  fi
  echo "$1: ${missing} missing${dups:+, duplicated: $dups}${extra:+, unexpected: $extra}"
  return 1
}

# ---- JSON (top-level scalar fields; no jq or python on a bare machine) ----

# json_top FILE KEY: the value of KEY in the outermost object (strings
# without their quotes; nested objects' keys are not looked at).
json_top() {
  awk -v key="$2" '
  { s = s $0 "\n" }
  END {
    n = length(s); depth = 0; i = 1
    while (i <= n) {
      c = substr(s, i, 1)
      if (c == "\"") {
        j = i + 1; str = ""
        while (j <= n) {
          d = substr(s, j, 1)
          if (d == "\\") { str = str substr(s, j, 2); j += 2; continue }
          if (d == "\"") break
          str = str d; j++
        }
        i = j + 1
        if (depth == 1 && str == key) {
          k = i
          while (k <= n && substr(s, k, 1) ~ /[ \t\r\n]/) k++
          if (substr(s, k, 1) != ":") continue
          k++
          while (k <= n && substr(s, k, 1) ~ /[ \t\r\n]/) k++
          v = ""
          if (substr(s, k, 1) == "\"") {
            for (m = k + 1; m <= n && substr(s, m, 1) != "\""; m++)
              v = v substr(s, m, 1)
          } else {
            for (m = k; m <= n && substr(s, m, 1) !~ /[,}\] \t\r\n]/; m++)
              v = v substr(s, m, 1)
          }
          print v
          exit
        }
        continue
      }
      if (c == "{" || c == "[") depth++
      else if (c == "}" || c == "]") depth--
      i++
    }
  }' "$1"
}

# ==== the test ==============================================================

if ! timeout $T ip netns add "$pfx-probe" 2>"$tmp/probe.err"; then
  echo "SKIP: cannot create network namespaces here: $(head -n 1 "$tmp/probe.err")"
  exit 0
fi
timeout $T ip netns del "$pfx-probe"

if ! setup 2>"$tmp/setup.err"; then
  fail "could not build the topology: $(tail -n 3 "$tmp/setup.err" | tr '\n' ' ')"
  echo "netns: $passed passed, $failed failed"
  exit 1
fi
echo "topology: ${#made_ns[@]} namespaces ($pfx-*): LAN1, LAN2, router, routed segment, NAT and its LAN"

if ! start_boot boot1; then
  fail "bootstrap server did not start: $(head -n 3 "$tmp/boot1.err" | tr '\n' ' ')"
  echo "netns: $passed passed, $failed failed"
  exit 1
fi

# ---- 1. quilt env ----------------------------------------------------------

if ! timeout 5 "$quilt" env --help >/dev/null 2>&1; then
  skip "quilt env not available yet (check 1: environment detection)"
else
  for h in "${hosts[@]}"; do
    ip netns exec "$(ns_name "$h")" timeout 20 "$quilt" env \
      --bootstrap "$boot_addr" --bind "${ip_of[$h]}" --json \
      >"$tmp/env-$h.json" 2>"$tmp/env-$h.err" &
    pid_of[env-$h]=$!
  done
  declare -A env_rc
  for h in "${hosts[@]}"; do
    wait "${pid_of[env-$h]}"
    env_rc[$h]=$?
  done
  declare -A e_ipmc e_dom e_nat e_map e_in
  bad_run=""
  for h in "${hosts[@]}"; do
    f="$tmp/env-$h.json"
    if [ "${env_rc[$h]}" != 0 ] || [ -z "$(json_top "$f" nat)" ]; then
      bad_run+=" $h(exit ${env_rc[$h]}: $(head -c 200 "$tmp/env-$h.err" | tr '\n' ' '))"
    fi
    e_ipmc[$h]=$(json_top "$f" ipmc)
    e_dom[$h]=$(json_top "$f" ipmc_domain)
    e_nat[$h]=$(json_top "$f" nat)
    e_map[$h]=$(json_top "$f" mapped_address)
    echo "  env $h: ipmc=${e_ipmc[$h]} ipmc_domain=${e_dom[$h]} nat=${e_nat[$h]}" \
         "mapped_address=${e_map[$h]}"
  done
  if [ -z "$bad_run" ]; then ok "quilt env --json ran on every host"
  else fail "quilt env --json failed on:$bad_run"; fi

  bad=""
  for h in "${hosts[@]}"; do
    for k in ipmc ipmc_domain nat mapped_address inbound_open rtt_ms \
             bandwidth_mbps interfaces; do
      [ -n "$(json_top "$tmp/env-$h.json" "$k")" ] || bad+=" $h:$k"
    done
    e_in[$h]=$(json_top "$tmp/env-$h.json" inbound_open)
  done
  if [ -z "$bad" ]; then ok "env: every host's JSON has all the fields of the spec"
  else fail "env: fields missing:$bad"; fi

  bad=""
  for h in "${lan1[@]}" "${lan2[@]}"; do
    [ "${e_ipmc[$h]}" = true ] || bad+=" $h(ipmc=${e_ipmc[$h]})"
  done
  if [ -z "$bad" ]; then ok "env: every LAN host reports ipmc true"
  else fail "env: LAN hosts without ipmc:$bad"; fi

  d1=${e_dom[h1a]} d2=${e_dom[h2a]} bad=""
  for h in "${lan1[@]}"; do [ "${e_dom[$h]}" = "$d1" ] || bad+=" $h"; done
  for h in "${lan2[@]}"; do [ "${e_dom[$h]}" = "$d2" ] || bad+=" $h"; done
  [ -n "$d1" ] && [ -n "$d2" ] || bad+=" (empty ipmc_domain)"
  if [ -z "$bad" ]; then ok "env: hosts of one LAN share an ipmc_domain ($d1, $d2)"
  else fail "env: ipmc_domain differs inside a LAN:$bad"; fi
  if [ -n "$d1" ] && [ "$d1" != "$d2" ]; then
    ok "env: LAN1 and LAN2 (a router apart) have different ipmc_domains"
  else
    fail "env: LAN1 and LAN2 report the same ipmc_domain '$d1' across the router"
  fi

  bad=""
  for h in "${nats[@]}"; do
    [ "${e_ipmc[$h]}" != true ] && continue
    case ${e_dom[$h]} in "$d1" | "$d2") bad+=" $h(${e_dom[$h]})" ;; esac
  done
  if [ -z "$bad" ]; then ok "env: NAT hosts share no ipmc_domain with LAN1 or LAN2"
  else fail "env: NAT hosts in a LAN's ipmc_domain:$bad"; fi

  bad=""
  for h in "${lan1[@]}" "${lan2[@]}"; do
    [ "${e_nat[$h]}" = none ] || bad+=" $h(nat=${e_nat[$h]})"
  done
  if [ -z "$bad" ]; then ok "env: open LAN hosts report nat none"
  else fail "env: open LAN hosts with a NAT class:$bad"; fi

  bad=""
  for h in "${nats[@]}"; do
    case ${e_nat[$h]} in
      full-cone | restricted | port-restricted | symmetric | unknown) ;;
      *) bad+=" $h(nat=${e_nat[$h]})" ;;
    esac
    [ "${e_map[$h]%:*}" = "$nat_outer" ] || bad+=" $h(mapped_address=${e_map[$h]})"
  done
  if [ -z "$bad" ]; then
    ok "env: NAT hosts report a NAT (${e_nat[n1]}, ${e_nat[n2]}) and a mapped address on $nat_outer"
  else
    fail "env: NAT hosts:$bad"
  fi

  # What the NAT really is: Linux MASQUERADE keeps one mapping per source
  # (endpoint-independent mapping) and lets in only datagrams from an
  # address and port the host has sent to (address-and-port-dependent
  # filtering): a port-restricted cone, in the names of the spec.
  bad=""
  for h in "${nats[@]}"; do
    [ "${e_nat[$h]}" = port-restricted ] || bad+=" $h(nat=${e_nat[$h]})"
  done
  if [ -z "$bad" ]; then ok "env: NAT hosts report port-restricted, which MASQUERADE is"
  else fail "env: the MASQUERADE NAT is port-restricted; reported:$bad"; fi

  bad=""
  for h in "${lan1[@]}" "${lan2[@]}"; do
    [ "${e_in[$h]}" = true ] || bad+=" $h(inbound_open=${e_in[$h]})"
  done
  for h in "${nats[@]}"; do
    [ "${e_in[$h]}" = false ] || bad+=" $h(inbound_open=${e_in[$h]})"
  done
  if [ -z "$bad" ]; then ok "env: inbound_open true on the open LAN hosts, false behind the NAT"
  else fail "env: inbound_open wrong:$bad"; fi
fi

# ---- 2 and 3. patches, and delivery from a LAN host and a NAT host ---------
#
# The first host of each patch to join becomes its primary (a patch's first
# member fills its empty representative slot; later equals never displace
# it), the second its backup.  So the subs start in three waves: h1a, h2a,
# n1; then h1b, h2b, n2; then the rest.  Round A checks that this ordering
# does make h1a LAN1's primary, which check 4 relies on.

start_wave() { # PREFIX HOSTS...: subs named PREFIX-HOST
  local p=$1 h
  shift
  for h in "$@"; do sub "$p-$h" "$h" $(flags_of "$h"); done
}
# wait_joined HOSTS...: until each LAN host has the socket it opens when
# its ipmc patch is assigned (bound to the patch's group on port 7400, the
# bootstrap server's default), at most 6 s.  A unicast (NAT) host shows no
# such sign; the pauses in start_all cover those.
wait_joined() {
  local h i
  for h in "$@"; do
    for i in $(seq 60); do
      timeout 5 ip netns exec "$(ns_name "$h")" cat /proc/net/udp |
        awk '$2 ~ /:1CE8$/ { found = 1 } END { exit !found }' && break
      sleep 0.1
    done
  done
}
start_all() { # PREFIX
  start_wave "$1" h1a h2a n1
  wait_joined h1a h2a
  sleep 0.5
  start_wave "$1" h1b h2b n2
  wait_joined h1b h2b
  sleep 0.3
  start_wave "$1" h1c h2c
  wait_joined h1c h2c
  sleep 0.5
}

# stop_all PREFIX: the subs, in the reverse order of their joins, each wave
# gone before the next is stopped: a representative that leaves gets
# replaced at once, and a member promoted while its own SIGTERM is on the
# way would print that new role in its REPORT instead of the one it had.
stop_all() {
  local p=$1
  stop_subs "$p-h1c" "$p-h2c"
  stop_subs "$p-h1b" "$p-h2b" "$p-n2"
  stop_subs "$p-h1a" "$p-h2a" "$p-n1"
}

names_of() { # PREFIX HOSTS...
  local p=$1 h
  shift
  for h in "$@"; do echo "$p-$h"; done
}

start_all A
nA=20
seq 1 $nA | sed 's/^/A lan h1c /' >"$tmp/A-lan"
seq 1 $nA | sed 's/^/A nat n2 /' >"$tmp/A-nat"
cat "$tmp/A-lan" "$tmp/A-nat" >"$tmp/A-all"
pub h1c "$tmp/A-lan" 0 &
pa=$!
pub n2 "$tmp/A-nat" 0 &
pb=$!
wait $pa $pb
mapfile -t subsA < <(names_of A "${hosts[@]}")
wait_msgs 8 $((2 * nA)) "${subsA[@]}"
sleep 0.5 # a late duplicate would show now
stop_all A

# check 2: patches from the REPORT lines
for h in "${hosts[@]}"; do
  echo "  round A $h: $(grep '^REPORT ' "$tmp/A-$h.out" | tail -n 1)"
done
same_patch() { # PROTOCOL HOSTS...: prints the patch, or nothing
  local proto=$1 p="" h
  shift
  for h in "$@"; do
    [ "$(field "A-$h" protocol)" = "$proto" ] || return 1
    local q
    q=$(field "A-$h" patch)
    [ -n "$q" ] || return 1
    [ -z "$p" ] || [ "$p" = "$q" ] || return 1
    p=$q
  done
  echo "$p"
}
p1=$(same_patch ipmc "${lan1[@]}")
p2=$(same_patch ipmc "${lan2[@]}")
pn=$(same_patch ipmc "${nats[@]}")
if [ -n "$p1" ]; then ok "LAN1 hosts share ipmc patch $p1"
else fail "LAN1 hosts are not in one ipmc patch"; fi
if [ -n "$p2" ]; then ok "LAN2 hosts share ipmc patch $p2"
else fail "LAN2 hosts are not in one ipmc patch"; fi
if [ -n "$p1" ] && [ -n "$p2" ] && [ "$p1" != "$p2" ]; then
  ok "LAN1 and LAN2 are different patches ($p1, $p2)"
else
  fail "LAN1 and LAN2 are not two different patches ('$p1', '$p2')"
fi
if [ -n "$pn" ] && [ "$pn" != "$p1" ] && [ "$pn" != "$p2" ]; then
  ok "NAT hosts share ipmc patch $pn, their own"
else
  fail "NAT hosts are not in one ipmc patch of their own ('$pn')"
fi
if [ "$(field A-h1a role)" = primary ] && [ "$(field A-h2a role)" = primary ]; then
  ok "the first host to join a LAN is its primary (h1a, h2a)"
else
  fail "join order did not pick the primaries: h1a role=$(field A-h1a role)," \
       "h2a role=$(field A-h2a role)"
fi

# check 3: every host got both publishers' lines exactly once
bad=""
for h in "${hosts[@]}"; do
  r=$(exactly_once "A-$h" "$tmp/A-all") || bad+=" [$r]"
done
if [ -z "$bad" ]; then
  ok "$nA lines from LAN host h1c and $nA from NAT host n2 reached all ${#hosts[@]} hosts exactly once"
else
  fail "delivery from h1c and n2:$bad"
  for h in "${hosts[@]}"; do [ -s "$tmp/A-$h.err" ] && sed "s/^/  A-$h stderr: /" "$tmp/A-$h.err" | head -n 3; done
fi

# ---- 4. SIGKILL of LAN1's primary --------------------------------------------
#
# Fresh subs, in the same waves as round A, so h1a is LAN1's primary again
# (round A showed it; h1b's final role=primary confirms the failover).  Two
# hosts publish one line every 50 ms for 3 s, h1c on LAN1 (its lines leave
# LAN1 through the primary) and h2c on LAN2 (they enter LAN1 through it);
# 1 s in, h1a's quilt process gets SIGKILL.

start_all B
seq 1 60 | sed 's/^/B kill h1c /' >"$tmp/B-lan1"
seq 1 60 | sed 's/^/B kill h2c /' >"$tmp/B-lan2"
cat "$tmp/B-lan1" "$tmp/B-lan2" >"$tmp/B-all"
pub h1c "$tmp/B-lan1" 0.05 &
pa=$!
pub h2c "$tmp/B-lan2" 0.05 &
pb=$!
sleep 1.2
victim=$(quilt_pid B-h1a)
if [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null; then
  wait "${pid_of[B-h1a]}" 2>/dev/null
  echo "  killed LAN1's primary h1a (quilt pid $victim) with SIGKILL"
else
  fail "could not find h1a's quilt process to kill"
fi
wait $pa $pb
survivors=(h1b h1c "${lan2[@]}" "${nats[@]}")
mapfile -t subsB < <(names_of B "${survivors[@]}")
wait_msgs 8 120 "${subsB[@]}"
sleep 0.3
bad=""
for h in "${survivors[@]}"; do
  r=$(exactly_once "B-$h" "$tmp/B-all" '^B kill ') || bad+=" [$r]"
done
if [ -z "$bad" ]; then
  ok "SIGKILL of LAN1's primary lost no message: 120 lines reached all ${#survivors[@]} survivors exactly once"
else
  fail "after SIGKILL of LAN1's primary:$bad"
  for h in "${survivors[@]}"; do [ -s "$tmp/B-$h.err" ] && sed "s/^/  B-$h stderr: /" "$tmp/B-$h.err" | head -n 3; done
fi

# ---- 5. restart of the bootstrap server ----------------------------------------

kill -KILL "$(quilt_pid boot1)" 2>/dev/null
wait "${pid_of[boot1]}" 2>/dev/null
sleep 1
if ! start_boot boot2; then
  fail "the bootstrap server did not restart: $(head -n 3 "$tmp/boot2.err" | tr '\n' ' ')"
else
  sleep 2.5 # a round of member heartbeats (every 1 s) rebuilds the tables
  for h in h1b h2b n1; do seq 1 20 | sed "s/^/C restart $h /" >"$tmp/C-$h"; done
  cat "$tmp/C-h1b" "$tmp/C-h2b" "$tmp/C-n1" >"$tmp/C-all"
  pub h1b "$tmp/C-h1b" 0 &
  pa=$!
  pub h2b "$tmp/C-h2b" 0 &
  pb=$!
  pub n1 "$tmp/C-n1" 0 &
  pc=$!
  wait $pa $pb $pc
  wait_msgs 8 180 "${subsB[@]}"
  sleep 0.3
  bad=""
  for h in "${survivors[@]}"; do
    r=$(exactly_once "B-$h" "$tmp/C-all" '^C restart ') || bad+=" [$r]"
  done
  if [ -z "$bad" ]; then
    ok "after a bootstrap restart, 60 lines from h1b, h2b and n1 reached all ${#survivors[@]} hosts exactly once"
  else
    fail "after the bootstrap restart:$bad"
  fi
fi

stop_all B
for h in "${survivors[@]}"; do
  echo "  round B $h: $(grep '^REPORT ' "$tmp/B-$h.out" | tail -n 1)"
  grep -q '^REPORT ' "$tmp/B-$h.out" ||
    sed "s/^/    B-$h stderr: /" "$tmp/B-$h.err" | tail -n 20
done
# Nothing but the expected lines, in any round-B output.
bad=""
for h in "${survivors[@]}"; do
  extra=$(msgs "B-$h" | grep -v -e '^B kill ' -e '^C restart ' | head -n 2 | tr '\n' ' ')
  [ -z "$extra" ] || bad+=" $h: $extra"
done
[ -z "$bad" ] || fail "unexpected lines:$bad"
if [ "$(field B-h1b role)" = primary ]; then
  ok "h1b (LAN1's backup) is its primary after the failover"
else
  fail "h1b ended as role=$(field B-h1b role), not LAN1's primary"
fi

echo "time: $(($(date +%s) - start_time)) s"
echo "netns: $passed passed, $failed failed"
[ "$failed" = 0 ]
