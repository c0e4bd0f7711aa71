/*
 * fuzz_node.c -- libFuzzer target for the two protocol cores that read the
 * network: one host (lib/node.h) and the bootstrap server
 * (lib/bootstrap.h).
 *
 * Each input is a fresh pair: a host already placed, as the PRIMARY
 * representative, in an ipmc patch (it has been fed a valid PATCH_INFO and
 * a PEERS table naming two other patches, so that bridging, repair and
 * session paths all run), and a bootstrap server with the default rules.
 * The input is then read as a sequence of chunks:
 *
 *   +------+--------------+-----------------+
 *   | ctl  | len (u16 BE) | len bytes       |
 *   +------+--------------+-----------------+
 *
 *   ctl bit 0     target: 0 the host, 1 the bootstrap server
 *   ctl bits 1-3  advance the virtual clock by 0..7 ms first
 *   ctl bits 4-5  sender address: the bootstrap, a peer primary, a member
 *                 of the patch, a stranger
 *   ctl bit 6     advance the clock by one more second
 *   ctl bit 7     jump the clock to the target's next expiry (when later)
 *
 * A short last chunk takes what is left.  Before each datagram the timers
 * that are due run (quilt_*_handle_expiry), as a driver would.  A chunk of
 * length 0 for the host publishes a small message instead.
 *
 * Checked, beyond the sanitizers: every datagram sent fits
 * QUILT_WIRE_MAX_DATAGRAM and decodes; the host delivers exactly once and
 * in order per origin, never its own messages, and never a message it has
 * declared lost; a handled timer moves on (no expiry stuck in the past);
 * the bootstrap server's patch table stays consistent
 * (quilt_bootstrap_check).  Any failure aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "node.h"
#include "proto.h"
#include "quilt.h"
#include "rules.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NS_PER_MS 1000000ULL
#define FUZZ_SEED 0x5eed5eedULL
#define FUZZ_GROUP_NAME "fuzz"
#define BOOT_ID (1ULL << 62)
#define SELF_ID 2ULL
#define BACKUP_ID 3ULL
#define PEER_ID 10ULL  /* primary of patch 2 */
#define PEER2_ID 11ULL /* primary of patch 3 */
#define PATCH_ID 1u
#define MAX_ORIGINS 256      /* origins whose order the harness tracks */
#define MAX_EXPIRY_ROUNDS 64 /* handle_expiry calls before "stuck" */

static quilt_addr ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d,
                      uint16_t port) {
  quilt_addr x = {
      ((uint32_t)a << 24) | ((uint32_t)b << 16) | ((uint32_t)c << 8) | d, port};
  return x;
}

typedef struct seen {
  uint64_t origin;
  uint64_t delivered; /* highest seq delivered */
  uint64_t settled;   /* highest seq delivered or declared lost */
} seen;

typedef struct harness {
  seen origins[MAX_ORIGINS];
  size_t norigins;
  uint64_t deliveries, losses, sent;
} harness;

static seen *seen_get(harness *h, uint64_t origin) {
  for (size_t i = 0; i < h->norigins; i++)
    if (h->origins[i].origin == origin)
      return &h->origins[i];
  if (h->norigins == MAX_ORIGINS)
    return NULL; /* not tracked; the sanitizers still watch */
  seen *s = &h->origins[h->norigins++];
  memset(s, 0, sizeof *s);
  s->origin = origin;
  return s;
}

/* Whatever leaves a core must be a datagram the others can read. */
static void check_out(const uint8_t *buf, size_t len) {
  static quilt_msg m;
  if (len > QUILT_WIRE_MAX_DATAGRAM)
    abort();
  if (quilt_wire_decode(&m, buf, len) != 0)
    abort();
}

static void node_send(void *user, const quilt_addr *to, const uint8_t *buf,
                      size_t len) {
  harness *h = user;
  (void)to;
  check_out(buf, len);
  h->sent++;
}

static void boot_send(void *user, const quilt_addr *to, const uint8_t *buf,
                      size_t len) {
  harness *h = user;
  (void)to;
  check_out(buf, len);
  h->sent++;
}

static void on_deliver(void *user, const quilt_msg_data *d, uint64_t now) {
  harness *h = user;
  (void)now;
  if (d->origin == SELF_ID || d->seq == 0 || d->len > QUILT_WIRE_MAX_PAYLOAD)
    abort();
  seen *s = seen_get(h, d->origin);
  if (s) {
    if (d->seq <= s->settled) /* twice, out of order, or after a loss */
      abort();
    s->delivered = s->settled = d->seq;
  }
  h->deliveries++;
}

static void on_loss(void *user, uint64_t origin, uint64_t first, uint64_t count,
                    uint64_t now) {
  harness *h = user;
  (void)now;
  if (count == 0 || first == 0 || first + count - 1 < first)
    abort();
  seen *s = seen_get(h, origin);
  if (s) {
    if (first <= s->delivered) /* lost what was delivered */
      abort();
    if (first + count - 1 > s->settled)
      s->settled = first + count - 1;
  }
  h->losses++;
}

static void run_node_timers(quilt_node *n, uint64_t now) {
  for (int i = 0; quilt_node_expiry(n) <= now; i++) {
    if (i == MAX_EXPIRY_ROUNDS)
      abort(); /* a timer that handling does not move */
    quilt_node_handle_expiry(n, now);
  }
}

static void run_boot_timers(quilt_bootstrap *b, uint64_t now) {
  for (int i = 0; quilt_bootstrap_expiry(b) <= now; i++) {
    if (i == MAX_EXPIRY_ROUNDS)
      abort();
    quilt_bootstrap_handle_expiry(b, now);
  }
}

static void check_boot(const quilt_bootstrap *b) {
  char err[256];
  if (quilt_bootstrap_check(b, err, sizeof err) != 0)
    abort();
  quilt_bootstrap_counters c;
  quilt_bootstrap_counters_get(b, &c);
  if (c.patches != quilt_bootstrap_patch_count(b))
    abort();
}

/* Encodes m and hands it to the host as if from `from`. */
static void feed_node(quilt_node *n, const quilt_addr *from, const quilt_msg *m,
                      uint64_t now) {
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int len = quilt_wire_encode(m, buf, sizeof buf);
  if (len <= 0 || quilt_node_read(n, from, buf, (size_t)len, now) != 0)
    abort(); /* the harness's own set-up must be valid */
}

/* Makes the host the primary of ipmc patch 1, with peers in patches 2 and
 * 3, as the bootstrap server would. */
static void place_node(quilt_node *n, uint32_t group, const quilt_addr *boot,
                       const quilt_addr *self, uint64_t now) {
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.version = QUILT_WIRE_VERSION;
  m.hdr.type = QUILT_MSG_PATCH_INFO;
  m.hdr.sender = BOOT_ID;
  m.hdr.group = group;
  quilt_msg_patch_info *pi = &m.u.patch_info;
  pi->patch_id = PATCH_ID;
  pi->protocol = QUILT_PROTO_IPMC;
  pi->role = QUILT_ROLE_PRIMARY;
  pi->epoch = 1;
  pi->mcast = ip4(239, 192, 0, 1, 7400);
  pi->heartbeat_ms = 20;
  pi->nreps = 2;
  pi->reps[0].id = SELF_ID;
  pi->reps[0].addr = *self;
  pi->reps[1].id = BACKUP_ID;
  pi->reps[1].addr = ip4(10, 0, 1, 3, 7000);
  feed_node(n, boot, &m, now);

  memset(&m, 0, sizeof m);
  m.hdr.version = QUILT_WIRE_VERSION;
  m.hdr.type = QUILT_MSG_PEERS;
  m.hdr.sender = BOOT_ID;
  m.hdr.group = group;
  quilt_msg_peers *p = &m.u.peers;
  p->epoch = 1;
  p->total = 3;
  p->offset = 0;
  p->count = 3;
  p->entries[0].patch_id = PATCH_ID;
  p->entries[0].node.id = SELF_ID;
  p->entries[0].node.addr = *self;
  p->entries[1].patch_id = 2;
  p->entries[1].node.id = PEER_ID;
  p->entries[1].node.addr = ip4(10, 0, 2, 10, 7000);
  p->entries[2].patch_id = 3;
  p->entries[2].node.id = PEER2_ID;
  p->entries[2].node.addr = ip4(10, 0, 3, 11, 7000);
  feed_node(n, boot, &m, now);

  quilt_node_status st;
  quilt_node_status_get(n, &st);
  if (!st.joined || st.role != QUILT_ROLE_PRIMARY || st.npeers != 3)
    abort();
}

static quilt_rules *default_rules(void) {
  size_t nproto;
  const char *const *names = quilt_proto_names(&nproto);
  const char *text = quilt_rules_default_text();
  quilt_rules *r = NULL;
  if (quilt_rules_parse(&r, "<built-in rules>", text, strlen(text), names,
                        nproto, NULL, 0) != 0)
    abort();
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  harness h;
  memset(&h, 0, sizeof h);
  uint32_t group = quilt_group_id(FUZZ_GROUP_NAME);
  const quilt_addr boot_addr = ip4(10, 0, 0, 1, 7000);
  const quilt_addr self_addr = ip4(10, 0, 1, 2, 7000);
  const quilt_addr from_addrs[4] = {
      boot_addr,                 /* the bootstrap server */
      ip4(10, 0, 2, 10, 7000),   /* PEER_ID, primary of patch 2 */
      ip4(10, 0, 1, 3, 7000),    /* BACKUP_ID, in the patch */
      ip4(192, 0, 2, 99, 40000), /* nobody it knows */
  };
  uint64_t now = 1000 * NS_PER_MS;

  quilt_node_config nc;
  quilt_node_config_default(&nc);
  nc.id = SELF_ID;
  nc.addr = self_addr;
  nc.bootstrap = boot_addr;
  nc.group = group;
  nc.euid.nat = QUILT_NAT_NONE;
  nc.euid.ipmc = 1;
  nc.euid.domain = 1;
  nc.euid.region = 1;
  nc.euid.rtt_us = 200;
  nc.euid.bw_kbps = 1000000;
  nc.seed = FUZZ_SEED;
  quilt_node_callbacks ncb = {node_send, NULL, NULL, on_deliver, on_loss, NULL, NULL};
  quilt_node *node = NULL;
  if (quilt_node_new(&node, &nc, &ncb, &h) != 0)
    abort();

  quilt_rules *rules = default_rules();
  quilt_bootstrap_config bc;
  quilt_bootstrap_config_default(&bc);
  bc.id = BOOT_ID;
  bc.rules = rules;
  bc.max_hosts = 4096; /* bounded, so the limit path is reachable */
  quilt_bootstrap_callbacks bcb = {boot_send};
  quilt_bootstrap *boot = NULL;
  if (quilt_bootstrap_new(&boot, &bc, &bcb, &h) != 0)
    abort();

  if (quilt_node_start(node, now) != 0)
    abort();
  place_node(node, group, &boot_addr, &self_addr, now);

  size_t at = 0;
  uint32_t published = 0;
  while (at < size) {
    uint8_t ctl = data[at++];
    size_t len = 0;
    if (at < size)
      len = (size_t)data[at++] << 8;
    if (at < size)
      len |= data[at++];
    if (len > size - at)
      len = size - at;
    const uint8_t *dg = data + at;
    at += len;

    int to_boot = ctl & 1;
    now += (uint64_t)((ctl >> 1) & 7) * NS_PER_MS;
    if (ctl & 0x40)
      now += 1000 * NS_PER_MS;
    if (ctl & 0x80) {
      uint64_t t =
          to_boot ? quilt_bootstrap_expiry(boot) : quilt_node_expiry(node);
      /* Bounded, so that "never" does not wrap the clock. */
      if (t != UINT64_MAX && t > now && t - now <= 600000 * NS_PER_MS)
        now = t;
    }
    run_node_timers(node, now);
    run_boot_timers(boot, now);
    check_boot(boot);

    const quilt_addr *from = &from_addrs[(ctl >> 4) & 3];
    if (to_boot) {
      (void)quilt_bootstrap_read(boot, from, dg, len, now);
      check_boot(boot);
    } else if (len == 0) {
      uint8_t payload[8];
      memcpy(payload, &published, sizeof published);
      memcpy(payload + 4, &published, sizeof published);
      int64_t seq = quilt_node_publish(node, payload, sizeof payload, now);
      if (seq == QUILT_ERR_STATE)
        continue; /* not in a patch any more (REJOIN) */
      if (seq != (int64_t)++published)
        abort();
    } else {
      int rc = quilt_node_read(node, from, dg, len, now);
      if (rc != 0 && rc != QUILT_ERR_TRUNCATED && rc != QUILT_ERR_MALFORMED &&
          rc != QUILT_ERR_VERSION)
        abort();
    }
  }
  /* Let whatever was scheduled run once more, a minute later. */
  now += 60000 * NS_PER_MS;
  run_node_timers(node, now);
  run_boot_timers(boot, now);
  check_boot(boot);

  quilt_node_del(node);
  quilt_bootstrap_del(boot);
  quilt_rules_del(rules);
  return 0;
}
