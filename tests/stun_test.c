/*
 * stun_test.c -- the STUN Binding server core: RFC 5769 test vectors, round
 * trips through quilt_stun_request/answer/read_response, every truncation,
 * 420 with UNKNOWN-ATTRIBUTES, the anti-amplification bound, dropped
 * malformed datagrams, and the demultiplexing test against Quilt datagrams.
 *
 * Inputs are copied into exact-size heap blocks first so that an
 * AddressSanitizer build catches any read past the datagram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "stun.h"
#include "wire.h"

/* RFC 5769 section 2.1: sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED,
 * USERNAME, MESSAGE-INTEGRITY, FINGERPRINT). */
static const uint8_t rfc5769_request[108] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
    0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
    0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};

/* RFC 5769 section 2.2: sample IPv4 response, mapped 192.0.2.1:32853. */
static const uint8_t rfc5769_response[80] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
    0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

static const uint8_t *rfc5769_txid = rfc5769_request + 8;
static const quilt_addr rfc5769_mapped = {0xC0000201u, 32853}; /* 192.0.2.1 */

/* xorshift64: varied bytes so that byte-order mistakes show. */
static uint64_t rnd_state = 0x243F6A8885A308D3ULL;
static uint64_t rnd(void) {
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return rnd_state;
}

static void rnd_txid(uint8_t txid[QUILT_STUN_TXID_LEN]) {
  for (int i = 0; i < QUILT_STUN_TXID_LEN; i++)
    txid[i] = (uint8_t)rnd();
}

static uint8_t *dup_exact(const uint8_t *p, size_t n) {
  uint8_t *q = malloc(n ? n : 1);
  assert_non_null(q);
  if (n)
    memcpy(q, p, n);
  return q;
}

/* Runs quilt_stun_answer on an exact-size copy of req. */
static int answer(const uint8_t *req, size_t len, const quilt_addr *from,
                  uint8_t *out, size_t out_cap, size_t *out_len) {
  uint8_t *copy = dup_exact(req, len);
  int rc = quilt_stun_answer(copy, len, from, out, out_cap, out_len);
  free(copy);
  return rc;
}

/* A message builder written apart from lib/stun.c, so the tests do not
 * check the library against itself (the CRC aside, checked on its own). */
typedef struct msg {
  uint8_t b[2048];
  size_t len;
} msg;

static void msg_begin(msg *m, uint16_t type, const uint8_t *txid) {
  memset(m, 0, sizeof *m);
  m->b[0] = (uint8_t)(type >> 8);
  m->b[1] = (uint8_t)type;
  m->b[4] = 0x21;
  m->b[5] = 0x12;
  m->b[6] = 0xA4;
  m->b[7] = 0x42;
  memcpy(m->b + 8, txid, QUILT_STUN_TXID_LEN);
  m->len = 20;
}

static void msg_attr(msg *m, uint16_t type, const void *value, size_t vlen) {
  m->b[m->len] = (uint8_t)(type >> 8);
  m->b[m->len + 1] = (uint8_t)type;
  m->b[m->len + 2] = (uint8_t)(vlen >> 8);
  m->b[m->len + 3] = (uint8_t)vlen;
  if (vlen)
    memcpy(m->b + m->len + 4, value, vlen);
  m->len += 4 + ((vlen + 3) & ~(size_t)3);
}

static void msg_set_length(msg *m, size_t body) {
  m->b[2] = (uint8_t)(body >> 8);
  m->b[3] = (uint8_t)body;
}

static void msg_end(msg *m, int fingerprint) {
  msg_set_length(m, m->len - 20 + (fingerprint ? 8 : 0));
  if (fingerprint) {
    uint32_t c = quilt_stun_crc32(m->b, m->len) ^ 0x5354554eu;
    uint8_t v[4] = {(uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8),
                    (uint8_t)c};
    msg_attr(m, 0x8028, v, 4);
  }
}

/* Pads a message with PADDING so that it ends up `total` bytes long once
 * msg_end(m, fingerprint) is called. */
static void msg_pad_to(msg *m, size_t total, int fingerprint) {
  size_t room = total - m->len - (fingerprint ? 8 : 0);
  assert_true(room >= 4 && (room & 3) == 0);
  static const uint8_t zeros[2048];
  msg_attr(m, 0x0026, zeros, room - 4);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Finds attribute `type` in a validated message; returns its value and
 * sets *alen, or NULL. */
static const uint8_t *find_attr(const uint8_t *b, size_t len, uint16_t type,
                                size_t *alen) {
  for (size_t off = 20; off + 4 <= len;) {
    size_t l = get16(b + off + 2);
    if (get16(b + off) == type) {
      *alen = l;
      return b + off + 4;
    }
    off += 4 + ((l + 3) & ~(size_t)3);
  }
  return NULL;
}

static void test_crc32(void **state) {
  (void)state;
  assert_int_equal(quilt_stun_crc32((const uint8_t *)"123456789", 9),
                   0xCBF43926u);
  assert_int_equal(quilt_stun_crc32(NULL, 0), 0);
}

static void test_rfc5769_request(void **state) {
  (void)state;
  /* The FINGERPRINT of the vector, from our CRC. */
  uint32_t fp = quilt_stun_crc32(rfc5769_request, 100) ^ 0x5354554eu;
  assert_int_equal(fp, 0xe57a3bcfu);
  assert_true(quilt_stun_is_stun(rfc5769_request, sizeof rfc5769_request));
  assert_int_equal(quilt_stun_validate(rfc5769_request, sizeof rfc5769_request),
                   0);

  /* It carries USERNAME and MESSAGE-INTEGRITY: we hold no credentials, so
   * 401 (authentication comes before its unknown PRIORITY attribute). */
  quilt_addr from = {0x0A000001u, 4000};
  uint8_t out[QUILT_STUN_MAX_DATAGRAM];
  size_t n = 0;
  assert_int_equal(answer(rfc5769_request, sizeof rfc5769_request, &from, out,
                          sizeof out, &n),
                   0);
  assert_true(n <= sizeof rfc5769_request);
  assert_int_equal(quilt_stun_validate(out, n), 0);
  assert_int_equal(get16(out), 0x0111); /* Binding error response */
  assert_memory_equal(out + 4, rfc5769_request + 4, 16);
  size_t alen = 0;
  const uint8_t *ec = find_attr(out, n, 0x0009, &alen);
  assert_non_null(ec);
  assert_int_equal(ec[2] * 100 + ec[3], 401);
  assert_non_null(find_attr(out, n, 0x8028, &alen)); /* FINGERPRINT kept */
  assert_null(find_attr(out, n, 0x0008, &alen));     /* no integrity */
  quilt_addr got;
  int code = 0;
  assert_int_equal(quilt_stun_read_response(out, n, rfc5769_txid, &got, &code),
                   QUILT_ERR_STATE);
  assert_int_equal(code, 401);

  /* Any flipped bit in the transaction id or in the SOFTWARE and
   * MESSAGE-INTEGRITY values is caught by the FINGERPRINT.  (Flips in
   * lengths are not all caught: a longer USERNAME can swallow the
   * FINGERPRINT -- STUN's FINGERPRINT only protects when it is found.) */
  static const size_t spans[][2] = {{8, 20}, {24, 40}, {80, 100}};
  for (size_t i = 0; i < 108 * 8; i++) {
    size_t byte = i / 8;
    int in_span = 0;
    for (size_t k = 0; k < 3; k++)
      in_span |= byte >= spans[k][0] && byte < spans[k][1];
    if (!in_span)
      continue;
    uint8_t *bad = dup_exact(rfc5769_request, sizeof rfc5769_request);
    bad[byte] ^= (uint8_t)(1u << (i % 8));
    int rc = quilt_stun_answer(bad, sizeof rfc5769_request, &from, out,
                               sizeof out, &n);
    assert_int_equal(rc, QUILT_ERR_MALFORMED);
    assert_int_equal(n, 0);
    free(bad);
  }
}

static void test_rfc5769_response(void **state) {
  (void)state;
  uint32_t fp = quilt_stun_crc32(rfc5769_response, 72) ^ 0x5354554eu;
  assert_int_equal(fp, 0xc07d4c96u);
  assert_int_equal(
      quilt_stun_validate(rfc5769_response, sizeof rfc5769_response), 0);
  quilt_addr got = {0, 0};
  int code = -1;
  assert_int_equal(quilt_stun_read_response(rfc5769_response,
                                            sizeof rfc5769_response,
                                            rfc5769_txid, &got, &code),
                   0);
  assert_int_equal(got.ip, rfc5769_mapped.ip);
  assert_int_equal(got.port, rfc5769_mapped.port);
  assert_int_equal(code, 0);
  /* Another transaction id: not ours. */
  uint8_t other[12] = {0};
  assert_int_equal(quilt_stun_read_response(rfc5769_response,
                                            sizeof rfc5769_response, other,
                                            &got, &code),
                   QUILT_ERR_NOT_FOUND);
  /* A response that reaches the server gets no answer (section 7.3.3). */
  uint8_t out[128];
  size_t n = 99;
  assert_int_equal(answer(rfc5769_response, sizeof rfc5769_response,
                          &rfc5769_mapped, out, sizeof out, &n),
                   QUILT_STUN_NO_ANSWER);
  assert_int_equal(n, 0);

  /* Our XOR-MAPPED-ADDRESS for the same transaction and address is the
   * vector's, byte for byte. */
  uint8_t req[QUILT_STUN_REQUEST_LEN];
  assert_int_equal(
      quilt_stun_request(rfc5769_txid, sizeof req, req, sizeof req, &n), 0);
  assert_int_equal(n, sizeof req);
  size_t m = 0;
  assert_int_equal(answer(req, n, &rfc5769_mapped, out, sizeof out, &m), 0);
  assert_int_equal(get16(out), 0x0101);
  assert_memory_equal(out + 4, rfc5769_response + 4, 16);
  assert_memory_equal(out + 20, rfc5769_response + 36, 12);
}

/* Requests of every size from quilt_stun_request: the answer's size and
 * contents follow the budget rules of stun.h. */
static void test_roundtrip_sizes(void **state) {
  (void)state;
  for (size_t len = 28; len <= QUILT_STUN_MAX_DATAGRAM; len += 4) {
    uint8_t txid[12];
    rnd_txid(txid);
    quilt_addr from = {(uint32_t)rnd(), (uint16_t)rnd()};
    uint8_t req[QUILT_STUN_MAX_DATAGRAM], out[QUILT_STUN_MAX_DATAGRAM];
    size_t n = 0, m = 0;
    assert_int_equal(quilt_stun_request(txid, len, req, sizeof req, &n), 0);
    assert_int_equal(n, len);
    assert_true(quilt_stun_is_stun(req, n));
    assert_int_equal(quilt_stun_validate(req, n), 0);
    int rc = answer(req, n, &from, out, sizeof out, &m);
    if (len < QUILT_STUN_MIN_ANSWERED) {
      assert_int_equal(rc, QUILT_STUN_TOO_SMALL);
      assert_int_equal(m, 0);
      continue;
    }
    assert_int_equal(rc, 0);
    assert_true(m <= len);
    assert_int_equal(quilt_stun_validate(out, m), 0);
    quilt_addr got;
    int code = -1;
    assert_int_equal(quilt_stun_read_response(out, m, txid, &got, &code), 0);
    assert_int_equal(got.ip, from.ip);
    assert_int_equal(got.port, from.port);
    size_t alen;
    /* XOR-MAPPED-ADDRESS always; FINGERPRINT from 40 bytes (the request had
     * one); MAPPED-ADDRESS from 52; SOFTWARE from 64. */
    assert_non_null(find_attr(out, m, 0x0020, &alen));
    assert_int_equal(find_attr(out, m, 0x8028, &alen) != NULL, len >= 40);
    const uint8_t *ma = find_attr(out, m, 0x0001, &alen);
    assert_int_equal(ma != NULL, len >= 52);
    if (ma) {
      assert_int_equal(get16(ma + 2), from.port);
    }
    assert_int_equal(find_attr(out, m, 0x8022, &alen) != NULL,
                     len >= QUILT_STUN_REQUEST_LEN);
    size_t want = len >= 64 ? 64 : len >= 52 ? 52 : len >= 40 ? 40 : 32;
    assert_int_equal(m, want);
  }
}

/* A request without FINGERPRINT gets none; a small out_cap lowers the
 * budget; the answer of a 32-byte request is exactly 32 bytes. */
static void test_budget(void **state) {
  (void)state;
  uint8_t txid[12];
  rnd_txid(txid);
  quilt_addr from = {0x7F000001u, 5555};
  msg r;
  msg_begin(&r, 0x0001, txid);
  msg_pad_to(&r, 100, 0);
  msg_end(&r, 0);
  assert_int_equal(r.len, 100);
  uint8_t out[256];
  size_t n = 0, alen;
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_int_equal(n, 56); /* XOR-MAPPED, MAPPED, SOFTWARE */
  assert_null(find_attr(out, n, 0x8028, &alen));
  assert_int_equal(answer(r.b, r.len, &from, out, 40, &n), 0);
  assert_int_equal(n, 32);
  assert_int_equal(answer(r.b, r.len, &from, out, 31, &n),
                   QUILT_STUN_TOO_SMALL);
  assert_int_equal(n, 0);

  /* A bare 20-byte Binding request: the 32-byte answer would amplify. */
  msg_begin(&r, 0x0001, txid);
  msg_end(&r, 0);
  assert_int_equal(r.len, 20);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_STUN_TOO_SMALL);
  /* 24 bytes (SOFTWARE-less, empty PADDING), 28 (FINGERPRINT only). */
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x0026, NULL, 0);
  msg_end(&r, 0);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_STUN_TOO_SMALL);
  msg_begin(&r, 0x0001, txid);
  msg_end(&r, 1);
  assert_int_equal(r.len, 28);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_STUN_TOO_SMALL);
  /* Exactly 32: XOR-MAPPED-ADDRESS alone. */
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x8022, "abcdefgh", 8);
  msg_end(&r, 0);
  assert_int_equal(r.len, 32);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_int_equal(n, 32);
}

static void test_unknown_attributes(void **state) {
  (void)state;
  uint8_t txid[12];
  rnd_txid(txid);
  quilt_addr from = {0x0A010203u, 40000};
  uint8_t cr[4] = {0, 0, 0, 6};
  uint8_t rp[4] = {0x12, 0x34, 0, 0};
  msg r;
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x0003, cr, 4);    /* CHANGE-REQUEST (RFC 5780) */
  msg_attr(&r, 0x8055, "opt", 3); /* unknown, comprehension-optional */
  msg_attr(&r, 0x0027, rp, 4);    /* RESPONSE-PORT (RFC 5780) */
  msg_attr(&r, 0x0003, cr, 4);    /* twice: listed once */
  msg_attr(&r, 0x7FFF, NULL, 0);
  msg_pad_to(&r, 96, 1);
  msg_end(&r, 1);
  assert_int_equal(r.len, 96);
  uint8_t out[256];
  size_t n = 0, alen = 0;
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_true(n <= r.len);
  assert_int_equal(quilt_stun_validate(out, n), 0);
  assert_int_equal(get16(out), 0x0111);
  const uint8_t *ua = find_attr(out, n, 0x000A, &alen);
  assert_non_null(ua);
  assert_int_equal(alen, 6);
  assert_int_equal(get16(ua), 0x0003);
  assert_int_equal(get16(ua + 2), 0x0027);
  assert_int_equal(get16(ua + 4), 0x7FFF);
  const uint8_t *ec = find_attr(out, n, 0x0009, &alen);
  assert_non_null(ec);
  assert_int_equal(alen, 4 + strlen("Unknown Attribute"));
  assert_memory_equal(ec + 4, "Unknown Attribute", alen - 4);
  assert_non_null(find_attr(out, n, 0x8028, &alen));
  quilt_addr got;
  int code = 0;
  assert_int_equal(quilt_stun_read_response(out, n, txid, &got, &code),
                   QUILT_ERR_STATE);
  assert_int_equal(code, 420);

  /* Smallest 420: header, ERROR-CODE without reason, one type: 36 bytes. A
   * 28-byte request with CHANGE-REQUEST (what RFC 5780 filtering tests
   * send) cannot get it. */
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x0003, cr, 4);
  msg_end(&r, 0);
  assert_int_equal(r.len, 28);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_STUN_TOO_SMALL);
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x0003, cr, 4);
  msg_attr(&r, 0x0026, "\0\0\0\0", 4);
  msg_end(&r, 0);
  assert_int_equal(r.len, 36);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_int_equal(n, 36);
  ec = find_attr(out, n, 0x0009, &alen);
  assert_non_null(ec);
  assert_int_equal(alen, 4); /* the reason did not fit */
  assert_int_equal(ec[2] * 100 + ec[3], 420);

  /* Only comprehension-optional unknowns: a success. */
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x8055, "opt", 3);
  msg_attr(&r, 0xC001, "12345678", 8);
  msg_pad_to(&r, 64, 1);
  msg_end(&r, 1);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_int_equal(get16(out), 0x0101);
  assert_int_equal(n, 64);
}

static void test_integrity_and_methods(void **state) {
  (void)state;
  uint8_t txid[12];
  rnd_txid(txid);
  quilt_addr from = {0x0A010203u, 40000};
  uint8_t mi[20];
  memset(mi, 0xAB, sizeof mi);
  uint8_t out[256];
  size_t n = 0;
  quilt_addr got;
  int code;
  msg r;

  /* MESSAGE-INTEGRITY without USERNAME: 400. */
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x0008, mi, 20);
  msg_pad_to(&r, 64, 0);
  msg_end(&r, 0);
  /* msg_pad_to put PADDING after MESSAGE-INTEGRITY: ignored (15.4). */
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_int_equal(quilt_stun_read_response(out, n, txid, &got, &code),
                   QUILT_ERR_STATE);
  assert_int_equal(code, 400);

  /* USERNAME and MESSAGE-INTEGRITY, an unknown attribute before and after
   * it: 401, authentication first; the one after is not even looked at. */
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x0006, "user", 4);
  msg_attr(&r, 0x0024, "prio", 4);
  msg_attr(&r, 0x0008, mi, 20);
  msg_attr(&r, 0x0003, "xxxx", 4);
  msg_end(&r, 1);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_true(n <= r.len);
  assert_int_equal(quilt_stun_read_response(out, n, txid, &got, &code),
                   QUILT_ERR_STATE);
  assert_int_equal(code, 401);
  size_t alen;
  assert_null(find_attr(out, n, 0x0008, &alen));

  /* MESSAGE-INTEGRITY of the wrong length: dropped. */
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x0006, "user", 4);
  msg_attr(&r, 0x0008, mi, 16);
  msg_pad_to(&r, 64, 0);
  msg_end(&r, 0);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);

  /* Another method (Allocate, 0x003): 400 of that method. */
  msg_begin(&r, 0x0003, txid);
  msg_pad_to(&r, 64, 1);
  msg_end(&r, 1);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_int_equal(get16(out), 0x0113);
  assert_int_equal(quilt_stun_validate(out, n), 0);
  const uint8_t *ec = find_attr(out, n, 0x0009, &alen);
  assert_non_null(ec);
  assert_int_equal(ec[2] * 100 + ec[3], 400);
  /* A method with high bits (0xFFF) encodes back the same way. */
  msg_begin(&r, 0x3EEF, txid); /* class request, method 0xFFF */
  msg_pad_to(&r, 64, 0);
  msg_end(&r, 0);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  assert_int_equal(get16(out), 0x3FFF); /* same method, class error */

  /* Binding indication (keep-alive), success and error responses: no
   * answer. */
  static const uint16_t silent[] = {0x0011, 0x0101, 0x0111, 0x0013};
  for (size_t i = 0; i < sizeof silent / sizeof silent[0]; i++) {
    msg_begin(&r, silent[i], txid);
    msg_pad_to(&r, 64, 1);
    msg_end(&r, 1);
    n = 7;
    assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                     QUILT_STUN_NO_ANSWER);
    assert_int_equal(n, 0);
  }
}

static void check_truncations(const uint8_t *full, size_t len) {
  quilt_addr from = {0x01020304u, 1234};
  uint8_t out[QUILT_STUN_MAX_DATAGRAM];
  for (size_t cut = 0; cut < len; cut++) {
    uint8_t *p = dup_exact(full, cut);
    size_t n = 5;
    assert_false(quilt_stun_is_stun(p, cut));
    assert_true(quilt_stun_validate(p, cut) < 0);
    int rc = quilt_stun_answer(p, cut, &from, out, sizeof out, &n);
    assert_int_equal(rc, QUILT_ERR_TRUNCATED);
    assert_int_equal(n, 0);
    free(p);
  }
}

static void test_truncations(void **state) {
  (void)state;
  check_truncations(rfc5769_request, sizeof rfc5769_request);
  check_truncations(rfc5769_response, sizeof rfc5769_response);
  uint8_t txid[12], req[QUILT_STUN_REQUEST_LEN];
  rnd_txid(txid);
  size_t n;
  assert_int_equal(quilt_stun_request(txid, sizeof req, req, sizeof req, &n),
                   0);
  check_truncations(req, n);
  msg r;
  msg_begin(&r, 0x0001, txid);
  msg_attr(&r, 0x0003, "abcd", 4);
  msg_attr(&r, 0x0006, "a user name", 11);
  msg_pad_to(&r, 80, 1);
  msg_end(&r, 1);
  check_truncations(r.b, r.len);
}

static void test_malformed(void **state) {
  (void)state;
  uint8_t txid[12];
  rnd_txid(txid);
  quilt_addr from = {0x01020304u, 1234};
  uint8_t out[QUILT_STUN_MAX_DATAGRAM + 64];
  size_t n;
  msg good;
  msg_begin(&good, 0x0001, txid);
  msg_pad_to(&good, 64, 1);
  msg_end(&good, 1);
  assert_int_equal(answer(good.b, good.len, &from, out, sizeof out, &n), 0);

  msg r;
  /* Bad cookie, each byte. */
  for (int i = 4; i < 8; i++) {
    r = good;
    r.b[i] ^= 0x01;
    assert_false(quilt_stun_is_stun(r.b, r.len));
    assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                     QUILT_ERR_MALFORMED);
  }
  /* First two bits set. */
  r = good;
  r.b[0] |= 0x40;
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  /* Length not a multiple of 4, too long, too short (trailing bytes). */
  r = good;
  msg_set_length(&r, r.len - 20 - 2);
  assert_false(quilt_stun_is_stun(r.b, r.len));
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  msg_set_length(&r, r.len - 20 + 4);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_TRUNCATED);
  msg_set_length(&r, r.len - 20 - 4);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  /* Bad FINGERPRINT value. */
  r = good;
  r.b[r.len - 1] ^= 0x80;
  assert_true(quilt_stun_is_stun(r.b, r.len)); /* demux cannot tell */
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  /* FINGERPRINT not last. */
  msg_begin(&r, 0x0001, txid);
  msg_pad_to(&r, 56, 1);
  msg_end(&r, 1);
  msg_attr(&r, 0x8022, "late", 4);
  msg_set_length(&r, r.len - 20);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  /* FINGERPRINT of the wrong length. */
  msg_begin(&r, 0x0001, txid);
  msg_pad_to(&r, 64, 0);
  msg_attr(&r, 0x8028, "12345678", 8);
  msg_set_length(&r, r.len - 20);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  /* An attribute running past the end, by 1 and by a lot. */
  r = good;
  r.b[22] = 0;
  r.b[23] = (uint8_t)(r.len - 24 + 1);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  r.b[22] = 0xFF;
  r.b[23] = 0xFF;
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  /* 64 attributes are walked, 65 are too many. */
  msg_begin(&r, 0x0001, txid);
  for (int i = 0; i < 64; i++)
    msg_attr(&r, 0x8055, NULL, 0);
  msg_end(&r, 0);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  msg_begin(&r, 0x0001, txid);
  for (int i = 0; i < 64; i++)
    msg_attr(&r, 0x8055, NULL, 0);
  msg_end(&r, 1);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_LIMIT);
  /* Size limit. */
  msg_begin(&r, 0x0001, txid);
  msg_pad_to(&r, QUILT_STUN_MAX_DATAGRAM, 1);
  msg_end(&r, 1);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n), 0);
  msg_begin(&r, 0x0001, txid);
  msg_pad_to(&r, QUILT_STUN_MAX_DATAGRAM + 4, 1);
  msg_end(&r, 1);
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_TOO_BIG);
  /* Bad arguments. */
  assert_int_equal(quilt_stun_answer(NULL, 20, &from, out, sizeof out, &n),
                   QUILT_ERR_INVAL);
  assert_int_equal(
      quilt_stun_answer(good.b, good.len, NULL, out, sizeof out, &n),
      QUILT_ERR_INVAL);
  assert_int_equal(quilt_stun_validate(NULL, 0), QUILT_ERR_INVAL);
  assert_int_equal(quilt_stun_request(txid, 30, out, sizeof out, &n),
                   QUILT_ERR_INVAL);
  assert_int_equal(quilt_stun_request(txid, 24, out, sizeof out, &n),
                   QUILT_ERR_INVAL);
  assert_int_equal(quilt_stun_request(txid, 64, out, 60, &n),
                   QUILT_ERR_TOO_BIG);
}

/* Random messages built from random attributes: whatever the answer, it is
 * never bigger than the request, and it is a valid STUN message of the
 * same transaction. */
static void test_never_amplifies(void **state) {
  (void)state;
  static const uint16_t types[] = {0x0001, 0x0003, 0x0006, 0x0008, 0x0009,
                                   0x0020, 0x0024, 0x0026, 0x0027, 0x8022,
                                   0x8029, 0xC057, 0x0002, 0x000A};
  static const uint16_t msg_types[] = {0x0001, 0x0001, 0x0001,
                                       0x0002, 0x0011, 0x0101};
  uint8_t out[QUILT_STUN_MAX_DATAGRAM];
  int answered = 0;
  for (int iter = 0; iter < 20000; iter++) {
    uint8_t txid[12];
    rnd_txid(txid);
    msg r;
    msg_begin(&r, msg_types[rnd() % 6], txid);
    int nattr = (int)(rnd() % 8);
    for (int i = 0; i < nattr; i++) {
      uint16_t t = types[rnd() % (sizeof types / sizeof types[0])];
      size_t vlen = t == 0x0008 ? 20 : (size_t)(rnd() % 24);
      uint8_t v[24];
      for (size_t j = 0; j < vlen; j++)
        v[j] = (uint8_t)rnd();
      msg_attr(&r, t, v, vlen);
    }
    msg_end(&r, (int)(rnd() & 1));
    quilt_addr from = {(uint32_t)rnd(), (uint16_t)rnd()};
    size_t n = 0;
    int rc = answer(r.b, r.len, &from, out, sizeof out, &n);
    assert_true(rc == 0 || rc == QUILT_STUN_NO_ANSWER ||
                rc == QUILT_STUN_TOO_SMALL);
    if (rc != 0) {
      assert_int_equal(n, 0);
      continue;
    }
    answered++;
    assert_true(n <= r.len);
    assert_int_equal(quilt_stun_validate(out, n), 0);
    assert_memory_equal(out + 4, r.b + 4, 16);
    assert_int_equal(out[0] & 0x01, 0x01); /* C1 set: a response class */
  }
  assert_true(answered > 1000);
}

/* CHANGE-REQUEST "change port" is answered from the other port when the
 * driver has one, and is a 420 otherwise; "change IP" always is. */
static void test_change_request(void **state) {
  (void)state;
  uint8_t txid[12];
  rnd_txid(txid);
  quilt_addr from = {0x0A010203u, 40000}, mapped;
  uint8_t req[64], out[64];
  size_t len, n;
  int other, code;
  assert_int_equal(quilt_stun_request_ex(txid, sizeof req,
                                         QUILT_STUN_CHANGE_PORT, req,
                                         sizeof req, &len),
                   0);
  assert_int_equal(len, 64);
  assert_int_equal(quilt_stun_validate(req, len), 0);
  assert_int_equal(quilt_stun_answer_ex(req, len, &from, 1, out, sizeof out,
                                        &n, &other),
                   0);
  assert_int_equal(other, 1);
  assert_true(n <= len);
  assert_int_equal(quilt_stun_read_response(out, n, txid, &mapped, &code), 0);
  assert_int_equal(mapped.ip, from.ip);
  assert_int_equal(mapped.port, from.port);
  /* No other socket: 420. */
  assert_int_equal(quilt_stun_answer_ex(req, len, &from, 0, out, sizeof out,
                                        &n, &other),
                   0);
  assert_int_equal(other, 0);
  assert_int_equal(quilt_stun_read_response(out, n, txid, &mapped, &code),
                   QUILT_ERR_STATE);
  assert_int_equal(code, 420);
  /* Change IP: 420 even with another port. */
  assert_int_equal(quilt_stun_request_ex(txid, sizeof req,
                                         QUILT_STUN_CHANGE_IP, req,
                                         sizeof req, &len),
                   0);
  assert_int_equal(quilt_stun_answer_ex(req, len, &from, 1, out, sizeof out,
                                        &n, &other),
                   0);
  assert_int_equal(other, 0);
  assert_int_equal(quilt_stun_read_response(out, n, txid, &mapped, &code),
                   QUILT_ERR_STATE);
  assert_int_equal(code, 420);
}

static void test_demux_quilt(void **state) {
  (void)state;
  /* Real Quilt datagrams from the wire encoder. */
  quilt_msg m;
  memset(&m, 0, sizeof m);
  m.hdr.type = QUILT_MSG_LEAVE;
  m.hdr.sender = 0x2112A44255667788ULL; /* the cookie at offset 4 */
  m.hdr.group = 0x2112A442u;
  uint8_t buf[QUILT_WIRE_MAX_DATAGRAM];
  int len = quilt_wire_encode(&m, buf, sizeof buf);
  assert_true(len >= 2);
  assert_int_equal(buf[0], 'Q');
  assert_int_equal(buf[1], 'L');
  assert_false(quilt_stun_is_stun(buf, (size_t)len));
  quilt_addr from = {0x01020304u, 1234};
  uint8_t out[64];
  size_t n;
  assert_true(answer(buf, (size_t)len, &from, out, sizeof out, &n) < 0);

  /* Even a 'QL' datagram whose other bytes look like STUN is not STUN:
   * 'Q' = 0x51 has its first two bits 01. */
  uint8_t txid[12];
  rnd_txid(txid);
  msg r;
  msg_begin(&r, 0x0001, txid);
  msg_pad_to(&r, 64, 0);
  msg_end(&r, 0);
  r.b[0] = 'Q';
  r.b[1] = 'L';
  assert_false(quilt_stun_is_stun(r.b, r.len));
  assert_int_equal(answer(r.b, r.len, &from, out, sizeof out, &n),
                   QUILT_ERR_MALFORMED);
  /* And random 'QL' datagrams of every length up to 100. */
  for (size_t l = 0; l <= 100; l++) {
    uint8_t d[100];
    for (size_t j = 0; j < l; j++)
      d[j] = (uint8_t)rnd();
    if (l > 0)
      d[0] = 'Q';
    if (l > 1)
      d[1] = 'L';
    assert_false(quilt_stun_is_stun(l ? d : NULL, l));
  }
  assert_false(quilt_stun_is_stun(NULL, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32),
      cmocka_unit_test(test_rfc5769_request),
      cmocka_unit_test(test_rfc5769_response),
      cmocka_unit_test(test_roundtrip_sizes),
      cmocka_unit_test(test_budget),
      cmocka_unit_test(test_unknown_attributes),
      cmocka_unit_test(test_integrity_and_methods),
      cmocka_unit_test(test_truncations),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_never_amplifies),
      cmocka_unit_test(test_demux_quilt),
      cmocka_unit_test(test_change_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
