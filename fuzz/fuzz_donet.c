/*
 * fuzz_donet.c -- libFuzzer target for the DONet mesh messages and core
 * (lib/donet.h).
 *
 * The input is read twice:
 *   1. as one message: byte 0 picks the type (18 + byte % 10, so the
 *      invalid neighbours 18, 19, 26, 27 are tried too), the rest is the
 *      body.  Whatever decodes must re-encode to exactly the same bytes and
 *      decode again to an equal message; a failure is TRUNCATED or
 *      MALFORMED, nothing else.
 *   2. as a conversation with one core, records of
 *        from (1 byte) | kind (1 byte) | len (1 byte) | len bytes
 *      where kind < 0x80 is a message of type 18 + kind % 10 from node
 *      from % 12 + 1 (the core is node 1, so it also hears itself) and kind
 *      >= 0x80 a segment whose id is the first two body bytes.  The clock
 *      advances 150 ms per record and the core's timers run as due.  Every
 *      message the core sends must decode, and its tables stay bounded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "donet.h"
#include "quilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_codec(const uint8_t *data, size_t size) {
  uint8_t type = (uint8_t)(18 + data[0] % 10);
  quilt_donet_msg m, again;
  int rc = quilt_donet_decode(type, data + 1, size - 1, &m);
  if (rc != 0) {
    if (rc != QUILT_ERR_TRUNCATED && rc != QUILT_ERR_MALFORMED)
      abort();
    return;
  }
  uint8_t buf[QUILT_DONET_MAX_BODY];
  int n = quilt_donet_encode(&m, buf, sizeof buf);
  if (n < 0 || (size_t)n != size - 1 || memcmp(buf, data + 1, (size_t)n) != 0)
    abort(); /* one encoding per message */
  if (quilt_donet_decode(type, buf, (size_t)n, &again) != 0 ||
      !quilt_donet_msg_equal(&m, &again))
    abort();
}

static void on_send(void *ctx, uint64_t to, const quilt_addr *addr,
                    uint8_t type, const uint8_t *body, size_t len) {
  (void)ctx;
  (void)to;
  (void)addr;
  quilt_donet_msg m;
  if (quilt_donet_decode(type, body, len, &m) != 0)
    abort(); /* the core only sends what decodes */
}

static void on_segment(void *ctx, uint64_t to, const quilt_addr *addr,
                       uint32_t seg) {
  (void)ctx;
  (void)to;
  (void)addr;
  (void)seg;
}

static void check_core(const uint8_t *data, size_t size) {
  quilt_donet_config cfg;
  quilt_donet_config_default(&cfg);
  cfg.id = 1;
  cfg.addr.ip = 0x0A000001;
  cfg.addr.port = 7000;
  cfg.nat = data[0] % 3;
  cfg.seed = data[0];
  cfg.partners = 2;
  cfg.partners_max = 3;
  cfg.window_segments = 40;
  cfg.requests_max = 16;
  cfg.mcache_max = 8;
  quilt_donet_callbacks cb = {on_send, on_segment, NULL, NULL};
  quilt_donet *d = NULL;
  uint64_t now = 1000000000ull;
  if (quilt_donet_new(&d, &cfg, &cb, NULL, now) != 0)
    abort();
  size_t pos = 1;
  while (pos + 3 <= size) {
    uint64_t from = (uint64_t)(data[pos] % 12) + 1;
    uint8_t kind = data[pos + 1];
    size_t len = data[pos + 2];
    pos += 3;
    if (len > size - pos)
      len = size - pos;
    const uint8_t *body = data + pos;
    pos += len;
    now += 150000000ull;
    quilt_addr a = {0x0A000000u + (uint32_t)from, 7000};
    if (kind < 0x80) {
      (void)quilt_donet_recv(d, from, &a, (uint8_t)(18 + kind % 10), body, len,
                             now);
    } else {
      uint32_t seg = len >= 2 ? (uint32_t)body[0] << 8 | body[1] : kind;
      (void)quilt_donet_segment_received(d, from, seg, now - 3000000000ull,
                                         now);
    }
    while (quilt_donet_expiry(d) <= now)
      quilt_donet_handle_expiry(d, quilt_donet_expiry(d));
    if (quilt_donet_partner_count(d) > cfg.partners_max ||
        quilt_donet_mcache_count(d) > cfg.mcache_max)
      abort();
  }
  quilt_donet_del(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  check_codec(data, size);
  check_core(data, size);
  return 0;
}
