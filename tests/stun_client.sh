#!/usr/bin/env bash
# stun_client.sh -- a standard STUN client against lib/stun.c, on loopback.
#
# Builds a throwaway UDP server (127.0.0.1 only, ephemeral port) that
# answers with quilt_stun_answer(), then checks that:
#   1. coturn's `turnutils_natdiscovery -m -P` (a 1524-byte Binding request
#      padded with RFC 5780 PADDING) prints the right mapped address: the
#      source address the server saw;
#   2. a bare 20-byte Binding request (coturn's `turnutils_stunclient`) gets
#      no answer: answering it would amplify (see lib/stun.h).
# Skips, exit 0 with a SKIP line, when turnutils_natdiscovery (Debian
# package coturn) or a C compiler is missing.  Takes about a second.
#
# Usage: tests/stun_client.sh [SOURCE_DIR]   (default: this script's repo)
set -euo pipefail

src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cc=${CC:-cc}

if ! command -v turnutils_natdiscovery >/dev/null 2>&1; then
  echo "stun_client: SKIP (turnutils_natdiscovery not installed; apt-get install coturn)"
  exit 0
fi
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "stun_client: SKIP (no C compiler: $cc)"
  exit 0
fi

tmp=$(mktemp -d)
srv_pid=
cleanup() {
  if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/srv.c" <<'EOF'
/* Loopback STUN server: quilt_stun_answer() behind one UDP socket.  Prints
 * its port, then one line per datagram; exits after 5 s without traffic. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include "quilt.h"
#include "stun.h"

int main(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
    perror("stun server");
    return 1;
  }
  printf("port %u\n", ntohs(sa.sin_port));
  fflush(stdout);
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0)
      return 0;
    uint8_t in[QUILT_STUN_MAX_DATAGRAM + 1], out[QUILT_STUN_MAX_DATAGRAM];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
    if (n < 0)
      continue;
    quilt_addr a = {ntohl(from.sin_addr.s_addr), ntohs(from.sin_port)};
    size_t m = 0;
    int rc = quilt_stun_answer(in, (size_t)n, &a, out, sizeof out, &m);
    char s[QUILT_ADDR_STRLEN];
    printf("from %s len %zd rc %d answer %zu\n", quilt_addr_str(&a, s), n, rc,
           m);
    fflush(stdout);
    if (rc == 0)
      sendto(fd, out, m, 0, (struct sockaddr *)&from, fl);
  }
}
EOF

"$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -I"$src/include" -I"$src/lib" \
  "$tmp/srv.c" "$src/lib/stun.c" "$src/lib/error.c" "$src/lib/addr.c" \
  -o "$tmp/srv"

"$tmp/srv" >"$tmp/srv.log" &
srv_pid=$!
port=
for _ in $(seq 50); do
  port=$(sed -n 's/^port //p' "$tmp/srv.log")
  [ -n "$port" ] && break
  sleep 0.05
done
if [ -z "$port" ]; then
  echo "stun_client: FAIL (server did not start)"
  exit 1
fi

fail=0
out=$(timeout 15 turnutils_natdiscovery -m -P -p "$port" 127.0.0.1 2>&1 || true)
mapped=$(printf '%s\n' "$out" | sed -n 's/.*UDP reflexive addr: *//p' | head -n1)
seen=$(sed -n 's/^from \([0-9.:]*\) len 1524 rc 0 .*/\1/p' "$tmp/srv.log" | head -n1)
if [ -n "$mapped" ] && [ "$mapped" = "$seen" ]; then
  echo "ok 1 - turnutils_natdiscovery -m -P: mapped address $mapped"
else
  echo "not ok 1 - turnutils_natdiscovery -m -P: client said '$mapped', server saw '$seen'"
  printf '%s\n' "$out" | sed 's/^/# /'
  fail=1
fi

if command -v turnutils_stunclient >/dev/null 2>&1; then
  # It waits for an answer forever: 1 s is plenty on loopback.
  timeout 1 turnutils_stunclient -p "$port" 127.0.0.1 >/dev/null 2>&1 || true
  if grep -q "len 20 rc 2 answer 0" "$tmp/srv.log"; then
    echo "ok 2 - bare 20-byte request left unanswered (no amplification)"
  else
    echo "not ok 2 - bare 20-byte request"
    fail=1
  fi
fi

sed 's/^/# server: /' "$tmp/srv.log"
if [ "$fail" -ne 0 ]; then
  echo "stun_client: FAIL"
  exit 1
fi
echo "stun_client: PASS"
