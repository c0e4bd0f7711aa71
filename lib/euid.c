/*
 * euid.c -- the three forms of an EUID: struct, canonical text, wire.
 *
 * Wire layout (QUILT_EUID_WIRE_LEN = 20 bytes, all integers big-endian):
 *
 *    offset  size  field
 *     0      1     nat       quilt_nat, < QUILT_NAT__COUNT
 *     1      1     ipmc      0 or 1
 *     2      2     reserved  must be 0 (room for flags without a new layout)
 *     4      4     domain    IPMC domain id
 *     8      4     region    coarse location
 *    12      4     rtt_us    RTT to the bootstrap server, microseconds
 *    16      4     bw_kbps   uplink bandwidth, kbit/s
 *
 * The decoder refuses any value the struct cannot mean (an unknown NAT
 * class, ipmc above 1, non-zero reserved bits) rather than clamping it: two
 * hosts must never disagree about which patch an EUID belongs to.
 */
#include "euid.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "quilt.h"

/* Indexed by quilt_nat; the rules language uses the same names. */
static const char *const nat_names[QUILT_NAT__COUNT] = {
    "none",      "full-cone", "restricted", "port-restricted",
    "symmetric", "unknown",
};

const char *quilt_nat_name(unsigned nat) {
  return nat < QUILT_NAT__COUNT ? nat_names[nat] : NULL;
}

int quilt_nat_parse(const char *s, size_t len) {
  if (!s)
    return -1;
  for (int i = 0; i < QUILT_NAT__COUNT; i++)
    if (strlen(nat_names[i]) == len && memcmp(nat_names[i], s, len) == 0)
      return i;
  return -1;
}

/* ---- numbers ---------------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int quilt__parse_u32(const char *s, size_t len, uint32_t *out) {
  assert(out);
  if (!s || len == 0)
    return QUILT_ERR_SYNTAX;
  uint64_t v = 0;
  int too_big = 0;
  for (size_t i = 0; i < len; i++) {
    if (!is_digit(s[i]))
      return QUILT_ERR_SYNTAX;
    /* Keep scanning after an overflow so that "99999999999x" is reported as
     * not-a-number, the more basic mistake. */
    if (!too_big) {
      v = v * 10 + (uint64_t)(s[i] - '0');
      if (v > UINT32_MAX)
        too_big = 1;
    }
  }
  if (too_big)
    return QUILT_ERR_LIMIT;
  *out = (uint32_t)v;
  return 0;
}

int quilt__parse_hex32(const char *s, size_t len, uint32_t *out) {
  assert(out);
  if (!s)
    return QUILT_ERR_SYNTAX;
  if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2;
    len -= 2;
  }
  if (len == 0)
    return QUILT_ERR_SYNTAX;
  uint32_t v = 0;
  for (size_t i = 0; i < len; i++) {
    int d = hex_value(s[i]);
    if (d < 0)
      return QUILT_ERR_SYNTAX;
    v = (v << 4) | (uint32_t)d; /* wraps past 8 digits; refused below */
  }
  if (len > 8)
    return QUILT_ERR_LIMIT;
  *out = v;
  return 0;
}

int quilt__parse_milli(const char *s, size_t len, uint32_t *out) {
  assert(out);
  if (!s || len == 0)
    return QUILT_ERR_SYNTAX;
  size_t dot = len;
  for (size_t i = 0; i < len; i++)
    if (s[i] == '.') {
      dot = i;
      break;
    }
  /* Both sides of the dot need digits: "1." and ".5" are refused so that
   * every accepted text has one obvious reading. */
  if (dot == 0 || dot + 1 == len)
    return QUILT_ERR_SYNTAX;
  for (size_t i = 0; i < len; i++)
    if (i != dot && !is_digit(s[i]))
      return QUILT_ERR_SYNTAX;
  size_t nfrac = dot < len ? len - dot - 1 : 0;
  if (nfrac > 3)
    return QUILT_ERR_INVAL;
  uint32_t whole;
  int rc = quilt__parse_u32(s, dot, &whole);
  if (rc < 0)
    return rc;
  uint64_t v = (uint64_t)whole * 1000;
  uint64_t frac = 0, scale = 100;
  for (size_t i = 0; i < nfrac; i++, scale /= 10)
    frac += (uint64_t)(s[dot + 1 + i] - '0') * scale;
  v += frac;
  if (v > UINT32_MAX)
    return QUILT_ERR_LIMIT;
  *out = (uint32_t)v;
  return 0;
}

/* ---- text form -------------------------------------------------------- */

/* Writes thousandths as a decimal with up to 3 decimals and no trailing
 * zeros ("1000", "1.5", "0.001"): one text per value, so the form is
 * canonical. */
static int format_milli_short(char *buf, size_t size, uint32_t v) {
  unsigned whole = v / 1000, frac = v % 1000;
  if (frac == 0)
    return snprintf(buf, size, "%u", whole);
  int digits = 3;
  while (frac % 10 == 0) {
    frac /= 10;
    digits--;
  }
  return snprintf(buf, size, "%u.%0*u", whole, digits, frac);
}

size_t quilt_euid_format(const quilt_euid *e, char *buf, size_t size) {
  assert(e && buf);
  assert(size >= QUILT_EUID_TEXT_MAX);
  assert(e->nat < QUILT_NAT__COUNT && e->ipmc <= 1);
  const char *nat = quilt_nat_name(e->nat);
  char bw[32];
  format_milli_short(bw, sizeof bw, e->bw_kbps);
  int n =
      snprintf(buf, size,
               "nat=%s ipmc=%s domain=%08x region=%u rtt_ms=%u.%03u "
               "bw_mbps=%s",
               nat ? nat : "invalid", e->ipmc ? "yes" : "no",
               (unsigned)e->domain, (unsigned)e->region,
               (unsigned)(e->rtt_us / 1000), (unsigned)(e->rtt_us % 1000), bw);
  assert(n > 0 && (size_t)n < QUILT_EUID_TEXT_MAX);
  if (n < 0)
    return 0;
  return (size_t)n < size ? (size_t)n : size - 1;
}

enum { F_NAT, F_IPMC, F_DOMAIN, F_REGION, F_RTT_MS, F_BW_MBPS, F__COUNT };

static const char *const text_keys[F__COUNT] = {
    "nat", "ipmc", "domain", "region", "rtt_ms", "bw_mbps",
};

/* Longest text quilt_euid_parse reads: room for generous spacing around
 * the canonical form, far below INT_MAX. */
#define EUID_TEXT_LEN_MAX 4096

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses the value of field f from v[0..vlen); returns 0 or -1. */
static int parse_value(quilt_euid *e, int f, const char *v, size_t vlen) {
  uint32_t x;
  switch (f) {
  case F_NAT: {
    int nat = quilt_nat_parse(v, vlen);
    if (nat < 0)
      return -1;
    e->nat = (uint8_t)nat;
    return 0;
  }
  case F_IPMC:
    if (vlen == 3 && memcmp(v, "yes", 3) == 0)
      e->ipmc = 1;
    else if (vlen == 2 && memcmp(v, "no", 2) == 0)
      e->ipmc = 0;
    else
      return -1;
    return 0;
  case F_DOMAIN:
    if (quilt__parse_hex32(v, vlen, &x) < 0)
      return -1;
    e->domain = x;
    return 0;
  case F_REGION:
    if (quilt__parse_u32(v, vlen, &x) < 0)
      return -1;
    e->region = x;
    return 0;
  case F_RTT_MS:
    if (quilt__parse_milli(v, vlen, &x) < 0)
      return -1;
    e->rtt_us = x;
    return 0;
  case F_BW_MBPS:
    if (quilt__parse_milli(v, vlen, &x) < 0)
      return -1;
    e->bw_kbps = x;
    return 0;
  }
  assert(0 && "field index out of range");
  return -1;
}

int quilt_euid_parse(quilt_euid *e, const char *s, size_t len, int *err_col) {
  assert(e);
  int col_dummy;
  if (!err_col)
    err_col = &col_dummy;
  *err_col = 0;
  if (!s)
    len = 0;
  /* Columns are ints and a canonical EUID is about 100 bytes: refuse
   * anything longer than EUID_TEXT_LEN_MAX at the first column past it,
   * which also keeps every column below INT_MAX. */
  if (len > EUID_TEXT_LEN_MAX) {
    *err_col = EUID_TEXT_LEN_MAX + 1;
    return QUILT_ERR_SYNTAX;
  }
  quilt_euid tmp;
  memset(&tmp, 0, sizeof tmp);
  unsigned seen = 0;
  size_t i = 0;
  for (;;) {
    while (i < len && is_space(s[i]))
      i++;
    if (i == len)
      break;
    size_t key = i;
    while (i < len && s[i] != '=' && !is_space(s[i]))
      i++;
    if (i == len || s[i] != '=') {
      /* "nat none" or a lone word: the key is fine only if it names a
       * field, in which case the '=' is what is missing. */
      *err_col = (int)key + 1;
      for (int f = 0; f < F__COUNT; f++)
        if (strlen(text_keys[f]) == i - key &&
            memcmp(text_keys[f], s + key, i - key) == 0)
          *err_col = (int)i + 1;
      return QUILT_ERR_SYNTAX;
    }
    int f = 0;
    while (f < F__COUNT && !(strlen(text_keys[f]) == i - key &&
                             memcmp(text_keys[f], s + key, i - key) == 0))
      f++;
    if (f == F__COUNT || (seen & (1u << f))) {
      *err_col = (int)key + 1; /* unknown or repeated field */
      return QUILT_ERR_SYNTAX;
    }
    seen |= 1u << f;
    size_t val = ++i;
    while (i < len && !is_space(s[i]))
      i++;
    if (parse_value(&tmp, f, s + val, i - val) < 0) {
      *err_col = (int)val + 1;
      return QUILT_ERR_SYNTAX;
    }
  }
  if (seen != (1u << F__COUNT) - 1) {
    *err_col = (int)len + 1; /* a field is missing: the text ended early */
    return QUILT_ERR_SYNTAX;
  }
  *e = tmp;
  return 0;
}

/* ---- wire form -------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

void quilt_euid_encode(const quilt_euid *e, uint8_t *out) {
  assert(e && out);
  assert(e->nat < QUILT_NAT__COUNT && e->ipmc <= 1);
  out[0] = e->nat;
  out[1] = e->ipmc ? 1 : 0;
  out[2] = 0;
  out[3] = 0;
  put32(out + 4, e->domain);
  put32(out + 8, e->region);
  put32(out + 12, e->rtt_us);
  put32(out + 16, e->bw_kbps);
}

int quilt_euid_decode(quilt_euid *e, const uint8_t *in, size_t len) {
  assert(e);
  if (!in || len < QUILT_EUID_WIRE_LEN)
    return QUILT_ERR_TRUNCATED;
  if (in[0] >= QUILT_NAT__COUNT || in[1] > 1 || in[2] != 0 || in[3] != 0)
    return QUILT_ERR_MALFORMED;
  e->nat = in[0];
  e->ipmc = in[1];
  e->domain = get32(in + 4);
  e->region = get32(in + 8);
  e->rtt_us = get32(in + 12);
  e->bw_kbps = get32(in + 16);
  return 0;
}

int quilt_euid_equal(const quilt_euid *a, const quilt_euid *b) {
  return a->nat == b->nat && a->ipmc == b->ipmc && a->domain == b->domain &&
         a->region == b->region && a->rtt_us == b->rtt_us &&
         a->bw_kbps == b->bw_kbps;
}
