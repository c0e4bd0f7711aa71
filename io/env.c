/*
 * env.c -- environment detection (see env.h).  Plain blocking sockets with
 * poll() timeouts: detection runs once, before the host joins, and every
 * wait is bounded.
 */
#define _DEFAULT_SOURCE /* IFF_* flags, struct ip_mreq */
#include "env.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "quilt.h"
#include "stun.h"

#define PROBE_GROUP ((239u << 24) | (192u << 16) | (255u << 8) | 250u)
#define PROBE_PORT 7399
#define STUN_TIMEOUT_MS 300
#define STUN_TRIES 3
#define TRAIN_LEN 16
#define TRAIN_SIZE 1400

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint8_t prefix_len(uint32_t mask) {
  uint8_t n = 0;
  while (mask & 0x80000000u) {
    n++;
    mask <<= 1;
  }
  return n;
}

static void list_ifaces(quilt_env *e) {
  struct ifaddrs *ifs = NULL;
  if (getifaddrs(&ifs) != 0)
    return;
  for (struct ifaddrs *i = ifs; i && e->nifaces < QUILT_ENV_MAX_IFACES;
       i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
      continue;
    quilt_env_iface *f = &e->ifaces[e->nifaces++];
    snprintf(f->name, sizeof f->name, "%s", i->ifa_name);
    f->ip = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
    f->prefix = i->ifa_netmask ? prefix_len(ntohl(
                    ((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr))
                               : 32;
    f->up = (i->ifa_flags & IFF_UP) != 0;
    f->multicast = (i->ifa_flags & IFF_MULTICAST) != 0;
    f->loopback = (i->ifa_flags & IFF_LOOPBACK) != 0;
  }
  freeifaddrs(ifs);
}

/* The default gateway on interface `name`, from /proc/net/route. */
static uint32_t default_gateway(const char *name) {
  FILE *f = fopen("/proc/net/route", "r");
  if (!f)
    return 0;
  char line[256], ifn[64];
  unsigned dest, gw, flags;
  uint32_t found = 0;
  if (fgets(line, sizeof line, f)) { /* header */
    while (fgets(line, sizeof line, f)) {
      if (sscanf(line, "%63s %x %x %x", ifn, &dest, &gw, &flags) == 4 &&
          dest == 0 && strcmp(ifn, name) == 0 && (flags & 0x2)) {
        found = ntohl(gw);
        break;
      }
    }
  }
  fclose(f);
  return found;
}

static uint32_t fnv32(const void *p, size_t n, uint32_t h) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 16777619u;
  }
  return h;
}

/* Sends a TTL-1 probe to the probe group on the interface and waits for it
 * to come back through the stack (loopback of multicast): the interface
 * can send and receive scoped multicast. */
static int multicast_selftest(uint32_t ifip) {
  int ok = 0;
  int r = socket(AF_INET, SOCK_DGRAM, 0);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (r < 0 || s < 0)
    goto out;
  int one = 1;
  setsockopt(r, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(PROBE_GROUP);
  sa.sin_port = htons(PROBE_PORT);
  if (bind(r, (struct sockaddr *)&sa, sizeof sa) != 0)
    goto out;
  struct ip_mreq mreq;
  mreq.imr_multiaddr.s_addr = htonl(PROBE_GROUP);
  mreq.imr_interface.s_addr = htonl(ifip);
  if (setsockopt(r, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
    goto out;
  struct in_addr ifa = {htonl(ifip)};
  unsigned char ttl = 1, loop = 1;
  setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa);
  setsockopt(s, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  setsockopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
  uint64_t token = now_ns() ^ (uint64_t)getpid();
  if (sendto(s, &token, sizeof token, 0, (struct sockaddr *)&sa, sizeof sa) !=
      (ssize_t)sizeof token)
    goto out;
  uint64_t deadline = now_ns() + 200000000ULL;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= deadline)
      break;
    struct pollfd p = {r, POLLIN, 0};
    if (poll(&p, 1, (int)((deadline - t) / 1000000) + 1) <= 0)
      break;
    uint64_t got;
    if (recv(r, &got, sizeof got, 0) == (ssize_t)sizeof got && got == token) {
      ok = 1;
      break;
    }
  }
out:
  if (r >= 0)
    close(r);
  if (s >= 0)
    close(s);
  return ok;
}

/* One STUN transaction on socket fd: sends a Binding request (with
 * change_flags) to `to`, waits for its answer.  Returns 1 and fills
 * *mapped (and *rtt_ns, *from when not NULL) on an answer. */
static int stun_once(int fd, const quilt_addr *to, uint32_t change_flags,
                     size_t len, quilt_addr *mapped, uint64_t *rtt_ns,
                     quilt_addr *from, int timeout_ms) {
  uint8_t txid[QUILT_STUN_TXID_LEN];
  uint64_t r1 = quilt_io_random64(), r2 = quilt_io_random64();
  memcpy(txid, &r1, 8);
  memcpy(txid + 8, &r2, 4);
  uint8_t req[QUILT_STUN_MAX_DATAGRAM];
  size_t rlen;
  if (quilt_stun_request_ex(txid, len, change_flags, req, sizeof req,
                            &rlen) != 0)
    return 0;
  struct sockaddr_in sa;
  quilt_io_to_sockaddr(to, &sa);
  uint64_t t0 = now_ns();
  if (sendto(fd, req, rlen, 0, (struct sockaddr *)&sa, sizeof sa) !=
      (ssize_t)rlen)
    return 0;
  uint64_t deadline = t0 + (uint64_t)timeout_ms * 1000000ULL;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= deadline)
      return 0;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)((deadline - t) / 1000000) + 1) <= 0)
      return 0;
    uint8_t buf[QUILT_STUN_MAX_DATAGRAM];
    struct sockaddr_in src;
    socklen_t sl = sizeof src;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&src, &sl);
    if (n <= 0)
      continue;
    int code;
    if (quilt_stun_read_response(buf, (size_t)n, txid, mapped, &code) == 0) {
      if (rtt_ns)
        *rtt_ns = now_ns() - t0;
      if (from)
        quilt_io_from_sockaddr((struct sockaddr *)&src, from);
      return 1;
    }
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Packet-train estimate: TRAIN_LEN requests of TRAIN_SIZE bytes back to
 * back; the answers' spacing at the receiver reflects the bottleneck rate
 * of the path (on the way out: the answers themselves are small). */
static double train_mbps(int fd, const quilt_addr *to) {
  uint8_t req[TRAIN_SIZE];
  struct sockaddr_in sa;
  quilt_io_to_sockaddr(to, &sa);
  uint8_t txid[QUILT_STUN_TXID_LEN] = {0};
  uint64_t base = quilt_io_random64();
  for (int i = 0; i < TRAIN_LEN; i++) {
    uint64_t id = base + (uint64_t)i;
    memcpy(txid, &id, 8);
    size_t len;
    if (quilt_stun_request(txid, sizeof req, req, sizeof req, &len) != 0)
      return 0;
    if (sendto(fd, req, len, 0, (struct sockaddr *)&sa, sizeof sa) !=
        (ssize_t)len)
      return 0;
  }
  uint64_t first = 0, last = 0;
  int got = 0;
  uint64_t deadline = now_ns() + 500000000ULL;
  while (got < TRAIN_LEN) {
    uint64_t t = now_ns();
    if (t >= deadline)
      break;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)((deadline - t) / 1000000) + 1) <= 0)
      break;
    uint8_t buf[256];
    if (recv(fd, buf, sizeof buf, 0) <= 0)
      continue;
    t = now_ns();
    if (!got)
      first = t;
    last = t;
    got++;
  }
  if (got < 2 || last <= first)
    return 0;
  return (double)(got - 1) * TRAIN_SIZE * 8 / ((double)(last - first) / 1e3);
}

quilt_addr quilt_env_stun_addr(const quilt_addr *quilt, int alternate) {
  quilt_addr a = *quilt;
  a.port = (uint16_t)(a.port + (alternate ? 2 : 1));
  return a;
}

int quilt_env_detect(quilt_env *e, const quilt_env_options *o, char *err,
                     size_t errlen) {
  memset(e, 0, sizeof *e);
  e->chosen = -1;
  e->nat = QUILT_NAT_UNKNOWN;
  list_ifaces(e);
  uint32_t want_ip = 0;
  if (o->bind_ip) {
    struct in_addr in;
    if (inet_pton(AF_INET, o->bind_ip, &in) != 1) {
      snprintf(err, errlen, "'%s' is not an IPv4 address", o->bind_ip);
      return QUILT_ERR_INVAL;
    }
    want_ip = ntohl(in.s_addr);
  }
  /* Without --bind or --iface: loopback, as for a host (which binds
   * 127.0.0.1 by default).  Probing a network interface, multicast
   * included, is something to ask for, never a default. */
  for (size_t i = 0; i < e->nifaces && e->chosen < 0; i++) {
    const quilt_env_iface *f = &e->ifaces[i];
    if (want_ip ? f->ip == want_ip
                : o->iface ? strcmp(f->name, o->iface) == 0
                           : f->loopback && f->ip == 0x7f000001u)
      e->chosen = (int)i;
  }
  if (e->chosen < 0) {
    snprintf(err, errlen, "no interface %s%s", want_ip ? "with address " : "",
             want_ip ? o->bind_ip : o->iface ? o->iface : "is up");
    return QUILT_ERR_NOT_FOUND;
  }
  const quilt_env_iface *f = &e->ifaces[e->chosen];
  e->gateway = f->loopback ? 0 : default_gateway(f->name);

  /* Multicast, and the domain: a hash of where the host is (subnet,
   * prefix, gateway), equal for the hosts of one LAN. */
  e->ipmc = !o->no_ipmc && (f->multicast || f->loopback) &&
            multicast_selftest(f->ip);
  if (e->ipmc) {
    uint32_t mask = f->prefix ? 0xffffffffu << (32 - f->prefix) : 0;
    uint32_t key[3] = {f->ip & mask, f->prefix, e->gateway};
    e->ipmc_domain = fnv32(key, sizeof key, 2166136261u);
    if (e->ipmc_domain == 0)
      e->ipmc_domain = 1;
  }

  /* STUN against the bootstrap server. */
  if (o->stun.ip) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd >= 0) {
      struct sockaddr_in local;
      quilt_addr la = {f->ip, 0};
      quilt_io_to_sockaddr(&la, &local);
      if (bind(fd, (struct sockaddr *)&local, sizeof local) == 0) {
        struct sockaddr_in got;
        socklen_t gl = sizeof got;
        getsockname(fd, (struct sockaddr *)&got, &gl);
        quilt_addr me;
        quilt_io_from_sockaddr((struct sockaddr *)&got, &me);
        uint64_t rtts[STUN_TRIES];
        int n = 0;
        for (int i = 0; i < STUN_TRIES; i++) {
          uint64_t rtt;
          if (stun_once(fd, &o->stun, 0, QUILT_STUN_REQUEST_LEN, &e->mapped,
                        &rtt, NULL, STUN_TIMEOUT_MS))
            rtts[n++] = rtt;
        }
        if (n > 0) {
          e->stun_ok = 1;
          qsort(rtts, (size_t)n, sizeof rtts[0], cmp_u64);
          e->rtt_ms = (double)rtts[n / 2] / 1e6;
          /* Mapping behaviour: the alternate port sees the same mapping
           * unless the NAT maps per destination (symmetric). */
          /* The alternate STUN port is the one after the STUN port. */
          quilt_addr alt = o->stun;
          alt.port = (uint16_t)(o->stun.port + 1);
          quilt_addr mapped2;
          e->mapping_ok = stun_once(fd, &alt, 0, QUILT_STUN_REQUEST_LEN,
                                    &mapped2, NULL, NULL, STUN_TIMEOUT_MS);
          /* Filtering: ask for the answer from the other port, on a fresh
           * socket: the one above has already sent to the alternate port,
           * which opened the NAT's filter for it (RFC 5780 section 4.4). */
          quilt_addr m3, src;
          int fd2 = socket(AF_INET, SOCK_DGRAM, 0);
          if (fd2 >= 0) {
            struct sockaddr_in l2;
            quilt_addr la2 = {f->ip, 0};
            quilt_io_to_sockaddr(&la2, &l2);
            e->filtering_ok =
                bind(fd2, (struct sockaddr *)&l2, sizeof l2) == 0 &&
                stun_once(fd2, &o->stun, QUILT_STUN_CHANGE_PORT,
                          QUILT_STUN_REQUEST_LEN, &m3, NULL, &src,
                          STUN_TIMEOUT_MS) &&
                src.port != o->stun.port;
            close(fd2);
          }
          int nat = !quilt_addr_eq(&e->mapped, &me);
          if (!nat)
            e->nat = QUILT_NAT_NONE;
          else if (e->mapping_ok && !quilt_addr_eq(&mapped2, &e->mapped))
            e->nat = QUILT_NAT_SYMMETRIC;
          else if (e->filtering_ok)
            /* Answered from a port never contacted: filtering is at most
             * address-dependent.  Without a second server address the
             * full-cone case cannot be told apart; say the weaker one. */
            e->nat = QUILT_NAT_RESTRICTED;
          else if (e->mapping_ok)
            e->nat = QUILT_NAT_PORT_RESTRICTED;
          e->inbound_open = !nat && e->filtering_ok;
          e->bandwidth_mbps = train_mbps(fd, &o->stun);
        }
      }
      close(fd);
    }
  }

  quilt_euid *u = &e->euid;
  u->nat = (uint8_t)e->nat;
  u->ipmc = (uint8_t)e->ipmc;
  u->domain = e->ipmc_domain;
  u->region = o->region;
  u->rtt_us = (uint32_t)(e->rtt_ms * 1000.0);
  double bw = e->bandwidth_mbps > 0 ? e->bandwidth_mbps : 1000.0;
  if (bw > 4000000.0)
    bw = 4000000.0; /* kbit/s must fit in 32 bits */
  u->bw_kbps = (uint32_t)(bw * 1000.0);
  return 0;
}
