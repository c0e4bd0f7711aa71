/*
 * stun.c -- STUN Binding server core (RFC 5389), sans I/O.  The rules and
 * the reasons for them are in stun.h; comments here cite the sections.
 */
#include "stun.h"

#include <assert.h>
#include <string.h>

#include "quilt.h"

/* RFC 5389 section 15.5: FINGERPRINT is the CRC-32 XOR this. */
#define STUN_FINGERPRINT_XOR 0x5354554eu
/* Attribute sizes on the wire, header included. */
#define STUN_ATTR_HDR 4
#define STUN_ADDR_ATTR_LEN 12 /* (XOR-)MAPPED-ADDRESS, IPv4 */
#define STUN_FP_ATTR_LEN 8
#define STUN_ERR_ATTR_MIN 8 /* ERROR-CODE, empty reason phrase */
#define STUN_MI_LEN 20      /* HMAC-SHA1 */

static const char stun_software[] = "quilt";

static uint16_t rd16(const uint8_t *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

/* Message type (RFC 5389 section 6): the class bits C1 C0 sit at bits 8 and
 * 4, the 12 method bits around them. */
static unsigned type_class(uint16_t t) {
  return ((t >> 4) & 1u) | ((t >> 7) & 2u);
}

static unsigned type_method(uint16_t t) {
  return (t & 0x000Fu) | ((t >> 1) & 0x0070u) | ((t >> 2) & 0x0F80u);
}

static uint16_t make_type(unsigned method, unsigned cls) {
  return (uint16_t)((method & 0x000Fu) | ((method & 0x0070u) << 1) |
                    ((method & 0x0F80u) << 2) | ((cls & 1u) << 4) |
                    ((cls & 2u) << 7));
}

uint32_t quilt_stun_crc32(const uint8_t *buf, size_t len) {
  /* Reflected polynomial 0xEDB88320, one nibble at a time: a 16-entry
   * constant table instead of 256, fast enough for 1600 bytes. */
  static const uint32_t t[16] = {
      0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
      0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
      0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
      0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    c ^= buf[i];
    c = (c >> 4) ^ t[c & 0xF];
    c = (c >> 4) ^ t[c & 0xF];
  }
  return c ^ 0xFFFFFFFFu;
}

int quilt_stun_is_stun(const uint8_t *buf, size_t len) {
  if (!buf || len < QUILT_STUN_HEADER_LEN)
    return 0;
  size_t mlen = rd16(buf + 2);
  return (buf[0] & 0xC0) == 0 && rd32(buf + 4) == QUILT_STUN_MAGIC_COOKIE &&
         (mlen & 3) == 0 && mlen == len - QUILT_STUN_HEADER_LEN;
}

/* What the attribute walk learned about a message. */
typedef struct stun_scan {
  int has_change;        /* a CHANGE-REQUEST (RFC 5780 section 7.2) */
  uint32_t change_flags; /* its value */
  size_t change_pos;     /* unknown types seen before it (wire order) */
  int has_fingerprint;
  int has_integrity;
  int has_username;
  size_t n_unknown;
  uint16_t unknown[QUILT_STUN_MAX_ATTRS]; /* distinct types, wire order */
} stun_scan;

/* Attributes a request may carry without a 420 (RFC 5389 section 15 and
 * RFC 5780's PADDING).  Those a request should not carry (ERROR-CODE,
 * the address attributes...) are "known but unexpected": ignored
 * (section 7.3). */
static int known_required(uint16_t type) {
  switch (type) {
  case QUILT_STUN_ATTR_MAPPED_ADDRESS:
  case QUILT_STUN_ATTR_USERNAME:
  case QUILT_STUN_ATTR_MESSAGE_INTEGRITY:
  case QUILT_STUN_ATTR_ERROR_CODE:
  case QUILT_STUN_ATTR_UNKNOWN_ATTRIBUTES:
  case QUILT_STUN_ATTR_REALM:
  case QUILT_STUN_ATTR_NONCE:
  case QUILT_STUN_ATTR_XOR_MAPPED_ADDRESS:
  case QUILT_STUN_ATTR_PADDING:
    return 1;
  default:
    return 0;
  }
}

static void note_unknown(stun_scan *s, uint16_t type) {
  for (size_t i = 0; i < s->n_unknown; i++)
    if (s->unknown[i] == type)
      return;
  assert(s->n_unknown < QUILT_STUN_MAX_ATTRS);
  s->unknown[s->n_unknown++] = type;
}

/* Header checks of quilt_stun_validate(), with the error each failure
 * earns. */
static int check_header(const uint8_t *buf, size_t len) {
  if (len > QUILT_STUN_MAX_DATAGRAM)
    return QUILT_ERR_TOO_BIG;
  if (len < QUILT_STUN_HEADER_LEN)
    return QUILT_ERR_TRUNCATED;
  if ((buf[0] & 0xC0) != 0 || rd32(buf + 4) != QUILT_STUN_MAGIC_COOKIE)
    return QUILT_ERR_MALFORMED;
  size_t mlen = rd16(buf + 2);
  if (mlen & 3)
    return QUILT_ERR_MALFORMED;
  if (mlen > len - QUILT_STUN_HEADER_LEN)
    return QUILT_ERR_TRUNCATED;
  if (mlen < len - QUILT_STUN_HEADER_LEN)
    return QUILT_ERR_MALFORMED; /* trailing bytes: not one STUN message */
  return 0;
}

/* Validates buf and fills s.  Every read is bounded by len: the header
 * check makes len a multiple of 4, each step keeps off one too, so 4 header
 * bytes are always there when off < len, and the value (with its padding) is
 * checked against what is left before it is skipped. */
static int stun_walk(const uint8_t *buf, size_t len, stun_scan *s) {
  int rc = check_header(buf, len);
  if (rc)
    return rc;
  memset(s, 0, sizeof *s);
  int after_integrity = 0;
  size_t off = QUILT_STUN_HEADER_LEN, count = 0;
  while (off < len) {
    assert((off & 3) == 0 && len - off >= STUN_ATTR_HDR);
    if (++count > QUILT_STUN_MAX_ATTRS)
      return QUILT_ERR_LIMIT;
    uint16_t type = rd16(buf + off), alen = rd16(buf + off + 2);
    size_t vlen = pad4(alen);
    if (vlen > len - off - STUN_ATTR_HDR)
      return QUILT_ERR_MALFORMED;
    if (type == QUILT_STUN_ATTR_FINGERPRINT) {
      /* Section 15.5: 4 bytes, the last attribute, CRC of all before it
       * (the header length already counts the FINGERPRINT). */
      if (alen != 4 || off + STUN_FP_ATTR_LEN != len)
        return QUILT_ERR_MALFORMED;
      uint32_t want = quilt_stun_crc32(buf, off) ^ STUN_FINGERPRINT_XOR;
      if (rd32(buf + off + STUN_ATTR_HDR) != want)
        return QUILT_ERR_MALFORMED;
      s->has_fingerprint = 1;
    } else if (after_integrity) {
      /* Section 15.4: everything after MESSAGE-INTEGRITY but FINGERPRINT
       * is ignored. */
    } else if (type == QUILT_STUN_ATTR_MESSAGE_INTEGRITY) {
      if (alen != STUN_MI_LEN)
        return QUILT_ERR_MALFORMED;
      s->has_integrity = 1;
      after_integrity = 1;
    } else if (type == QUILT_STUN_ATTR_USERNAME) {
      s->has_username = 1;
    } else if (type == QUILT_STUN_ATTR_CHANGE_REQUEST && alen == 4) {
      if (!s->has_change)
        s->change_pos = s->n_unknown;
      s->has_change = 1;
      s->change_flags = rd32(buf + off + STUN_ATTR_HDR);
    } else if (type < 0x8000 && !known_required(type)) {
      note_unknown(s, type);
    }
    off += STUN_ATTR_HDR + vlen;
  }
  assert(off == len);
  return 0;
}

int quilt_stun_validate(const uint8_t *buf, size_t len) {
  if (!buf)
    return QUILT_ERR_INVAL;
  stun_scan s;
  return stun_walk(buf, len, &s);
}

/* Appends one attribute at out[*pos], zero padding included.  The caller
 * has checked the room. */
static void put_attr(uint8_t *out, size_t *pos, uint16_t type,
                     const uint8_t *value, size_t vlen) {
  assert(vlen <= 0xFFFF);
  wr16(out + *pos, type);
  wr16(out + *pos + 2, (uint16_t)vlen);
  if (vlen)
    memcpy(out + *pos + STUN_ATTR_HDR, value, vlen);
  memset(out + *pos + STUN_ATTR_HDR + vlen, 0, pad4(vlen) - vlen);
  *pos += STUN_ATTR_HDR + pad4(vlen);
}

static void put_addr(uint8_t *out, size_t *pos, uint16_t type,
                     const quilt_addr *a, int xored) {
  /* Section 15.2: XOR-MAPPED-ADDRESS XORs the port with the cookie's top 16
   * bits and the IPv4 address with the cookie. */
  uint8_t v[8];
  v[0] = 0;
  v[1] = 0x01; /* IPv4 */
  wr16(v + 2,
       xored ? (uint16_t)(a->port ^ (QUILT_STUN_MAGIC_COOKIE >> 16)) : a->port);
  wr32(v + 4, xored ? a->ip ^ QUILT_STUN_MAGIC_COOKIE : a->ip);
  put_attr(out, pos, type, v, sizeof v);
}

/* Writes the header (type, length so far plus the FINGERPRINT to come) and
 * the FINGERPRINT, once all other attributes are in out[0..*pos). */
static void finish(uint8_t *out, size_t *pos, uint16_t type, int fingerprint) {
  size_t total = *pos + (fingerprint ? STUN_FP_ATTR_LEN : 0);
  wr16(out, type);
  wr16(out + 2, (uint16_t)(total - QUILT_STUN_HEADER_LEN));
  if (fingerprint) {
    uint8_t v[4];
    wr32(v, quilt_stun_crc32(out, *pos) ^ STUN_FINGERPRINT_XOR);
    put_attr(out, pos, QUILT_STUN_ATTR_FINGERPRINT, v, sizeof v);
  }
  assert(*pos == total);
}

static int answer_success(const uint8_t *req, const stun_scan *s,
                          const quilt_addr *from, uint8_t *out, size_t budget,
                          size_t *out_len) {
  size_t need = QUILT_STUN_HEADER_LEN + STUN_ADDR_ATTR_LEN;
  if (need > budget)
    return QUILT_STUN_TOO_SMALL;
  /* Optional attributes by priority, each only if it still fits. */
  int fp = s->has_fingerprint && need + STUN_FP_ATTR_LEN <= budget;
  if (fp)
    need += STUN_FP_ATTR_LEN;
  int mapped = need + STUN_ADDR_ATTR_LEN <= budget;
  if (mapped)
    need += STUN_ADDR_ATTR_LEN;
  size_t sw_len = STUN_ATTR_HDR + pad4(sizeof stun_software - 1);
  int software = need + sw_len <= budget;
  if (software)
    need += sw_len;

  memcpy(out + 4, req + 4, 4 + QUILT_STUN_TXID_LEN); /* cookie, txid */
  size_t pos = QUILT_STUN_HEADER_LEN;
  put_addr(out, &pos, QUILT_STUN_ATTR_XOR_MAPPED_ADDRESS, from, 1);
  if (mapped)
    put_addr(out, &pos, QUILT_STUN_ATTR_MAPPED_ADDRESS, from, 0);
  if (software)
    put_attr(out, &pos, QUILT_STUN_ATTR_SOFTWARE,
             (const uint8_t *)stun_software, sizeof stun_software - 1);
  finish(out, &pos,
         make_type(QUILT_STUN_METHOD_BINDING, QUILT_STUN_CLASS_SUCCESS), fp);
  assert(pos == need && pos <= budget);
  *out_len = pos;
  return 0;
}

static int answer_error(const uint8_t *req, const stun_scan *s, unsigned code,
                        const char *reason, uint8_t *out, size_t budget,
                        size_t *out_len) {
  size_t unknown_len = code == 420 ? STUN_ATTR_HDR + pad4(2 * s->n_unknown) : 0;
  size_t need = QUILT_STUN_HEADER_LEN + STUN_ERR_ATTR_MIN + unknown_len;
  if (need > budget)
    return QUILT_STUN_TOO_SMALL;
  int fp = s->has_fingerprint && need + STUN_FP_ATTR_LEN <= budget;
  if (fp)
    need += STUN_FP_ATTR_LEN;
  size_t reason_len = strlen(reason);
  if (need + pad4(reason_len) <= budget)
    need += pad4(reason_len);
  else
    reason_len = 0; /* the reason phrase is optional: drop it first */

  memcpy(out + 4, req + 4, 4 + QUILT_STUN_TXID_LEN);
  size_t pos = QUILT_STUN_HEADER_LEN;
  /* Section 15.6: 21 reserved bits, class (hundreds), number, reason. */
  uint8_t v[4 + 32];
  assert(reason_len <= sizeof v - 4);
  v[0] = 0;
  v[1] = 0;
  v[2] = (uint8_t)(code / 100);
  v[3] = (uint8_t)(code % 100);
  memcpy(v + 4, reason, reason_len);
  put_attr(out, &pos, QUILT_STUN_ATTR_ERROR_CODE, v, 4 + reason_len);
  if (code == 420) {
    /* Section 15.9: the types, 16 bits each, padded to 4 bytes. */
    uint8_t list[2 * QUILT_STUN_MAX_ATTRS];
    for (size_t i = 0; i < s->n_unknown; i++)
      wr16(list + 2 * i, s->unknown[i]);
    put_attr(out, &pos, QUILT_STUN_ATTR_UNKNOWN_ATTRIBUTES, list,
             2 * s->n_unknown);
  }
  unsigned method = type_method(rd16(req));
  finish(out, &pos, make_type(method, QUILT_STUN_CLASS_ERROR), fp);
  assert(pos == need && pos <= budget);
  *out_len = pos;
  return 0;
}

int quilt_stun_answer(const uint8_t *req, size_t req_len,
                      const quilt_addr *from, uint8_t *out, size_t out_cap,
                      size_t *out_len) {
  return quilt_stun_answer_ex(req, req_len, from, 0, out, out_cap, out_len,
                              NULL);
}

int quilt_stun_answer_ex(const uint8_t *req, size_t req_len,
                         const quilt_addr *from, int have_other_port,
                         uint8_t *out, size_t out_cap, size_t *out_len,
                         int *from_other_port) {
  if (!req || !from || !out || !out_len)
    return QUILT_ERR_INVAL;
  *out_len = 0;
  if (from_other_port)
    *from_other_port = 0;
  stun_scan s;
  int rc = stun_walk(req, req_len, &s);
  if (rc)
    return rc;
  /* CHANGE-REQUEST (RFC 5780 section 7.2): this server has one address
   * and, when the driver has a second socket, another port.  What it cannot
   * do (change the IP, or change the port without that socket) it treats as
   * not understood, which is a 420 (section 6.1). */
  if (s.has_change) {
    int ip = (s.change_flags & QUILT_STUN_CHANGE_IP) != 0;
    int port = (s.change_flags & QUILT_STUN_CHANGE_PORT) != 0;
    if (ip || (port && !(have_other_port && from_other_port))) {
      /* Listed where it stood among the unknown ones. */
      assert(s.n_unknown < QUILT_STUN_MAX_ATTRS);
      memmove(&s.unknown[s.change_pos + 1], &s.unknown[s.change_pos],
              (s.n_unknown - s.change_pos) * sizeof s.unknown[0]);
      s.unknown[s.change_pos] = QUILT_STUN_ATTR_CHANGE_REQUEST;
      s.n_unknown++;
    } else if (port)
      *from_other_port = 1;
  }
  uint16_t type = rd16(req);
  if (type_class(type) != QUILT_STUN_CLASS_REQUEST)
    return QUILT_STUN_NO_ANSWER; /* sections 7.3.2 and 7.3.3 */

  /* The anti-amplification budget: never more than the request. */
  size_t budget = req_len < out_cap ? req_len : out_cap;
  if (type_method(type) != QUILT_STUN_METHOD_BINDING)
    rc = answer_error(req, &s, 400, "Bad Request", out, budget, out_len);
  else if (s.has_integrity && s.has_username) /* section 10.1.2 */
    rc = answer_error(req, &s, 401, "Unauthorized", out, budget, out_len);
  else if (s.has_integrity)
    rc = answer_error(req, &s, 400, "Bad Request", out, budget, out_len);
  else if (s.n_unknown) /* section 7.3.1 */
    rc = answer_error(req, &s, 420, "Unknown Attribute", out, budget, out_len);
  else
    rc = answer_success(req, &s, from, out, budget, out_len);
  assert(rc != 0 || *out_len <= req_len);
  if (rc)
    *out_len = 0;
  return rc;
}

int quilt_stun_request(const uint8_t txid[QUILT_STUN_TXID_LEN], size_t len,
                       uint8_t *out, size_t out_cap, size_t *out_len) {
  return quilt_stun_request_ex(txid, len, 0, out, out_cap, out_len);
}

int quilt_stun_request_ex(const uint8_t txid[QUILT_STUN_TXID_LEN],
                          size_t len, uint32_t change_flags, uint8_t *out,
                          size_t out_cap, size_t *out_len) {
  size_t bare = QUILT_STUN_HEADER_LEN + STUN_FP_ATTR_LEN +
                (change_flags ? STUN_ATTR_HDR + 4 : 0);
  if (!txid || !out || !out_len || len < bare ||
      len > QUILT_STUN_MAX_DATAGRAM || (len & 3))
    return QUILT_ERR_INVAL;
  if (out_cap < len)
    return QUILT_ERR_TOO_BIG;
  wr32(out + 4, QUILT_STUN_MAGIC_COOKIE);
  memcpy(out + 8, txid, QUILT_STUN_TXID_LEN);
  size_t pos = QUILT_STUN_HEADER_LEN;
  if (change_flags) {
    uint8_t v[4];
    wr32(v, change_flags);
    put_attr(out, &pos, QUILT_STUN_ATTR_CHANGE_REQUEST, v, sizeof v);
  }
  if (len > bare && len - bare >= STUN_ATTR_HDR) {
    /* RFC 5780 section 7.6: PADDING, free-form; zeros here. */
    size_t plen = len - bare - STUN_ATTR_HDR;
    wr16(out + pos, QUILT_STUN_ATTR_PADDING);
    wr16(out + pos + 2, (uint16_t)plen);
    memset(out + pos + STUN_ATTR_HDR, 0, plen);
    pos += STUN_ATTR_HDR + plen;
  }
  finish(out, &pos,
         make_type(QUILT_STUN_METHOD_BINDING, QUILT_STUN_CLASS_REQUEST), 1);
  assert(pos == len);
  *out_len = pos;
  return 0;
}

static int read_addr(const uint8_t *v, size_t alen, int xored, quilt_addr *a) {
  if (alen < 8 || v[1] != 0x01)
    return 0; /* IPv6 or short: not ours */
  a->port = rd16(v + 2);
  a->ip = rd32(v + 4);
  if (xored) {
    a->port ^= (uint16_t)(QUILT_STUN_MAGIC_COOKIE >> 16);
    a->ip ^= QUILT_STUN_MAGIC_COOKIE;
  }
  return 1;
}

int quilt_stun_read_response(const uint8_t *buf, size_t len,
                             const uint8_t txid[QUILT_STUN_TXID_LEN],
                             quilt_addr *mapped, int *error_code) {
  if (!buf || !txid || !mapped || !error_code)
    return QUILT_ERR_INVAL;
  *error_code = 0;
  int rc = quilt_stun_validate(buf, len);
  if (rc)
    return rc;
  uint16_t type = rd16(buf);
  unsigned cls = type_class(type);
  if (memcmp(buf + 8, txid, QUILT_STUN_TXID_LEN) != 0 ||
      type_method(type) != QUILT_STUN_METHOD_BINDING ||
      (cls != QUILT_STUN_CLASS_SUCCESS && cls != QUILT_STUN_CLASS_ERROR))
    return QUILT_ERR_NOT_FOUND;
  int have_xor = 0, have_plain = 0;
  quilt_addr xa = {0, 0}, pa = {0, 0};
  /* Validated: every attribute fits.  Stop at MESSAGE-INTEGRITY (section
   * 15.4: what follows is not covered by it). */
  for (size_t off = QUILT_STUN_HEADER_LEN; off < len;) {
    uint16_t at = rd16(buf + off), alen = rd16(buf + off + 2);
    const uint8_t *v = buf + off + STUN_ATTR_HDR;
    if (at == QUILT_STUN_ATTR_MESSAGE_INTEGRITY)
      break;
    if (at == QUILT_STUN_ATTR_XOR_MAPPED_ADDRESS && !have_xor)
      have_xor = read_addr(v, alen, 1, &xa);
    else if (at == QUILT_STUN_ATTR_MAPPED_ADDRESS && !have_plain)
      have_plain = read_addr(v, alen, 0, &pa);
    else if (at == QUILT_STUN_ATTR_ERROR_CODE && alen >= 4 && !*error_code &&
             (v[2] & 7) >= 3 && (v[2] & 7) <= 6 && v[3] < 100)
      *error_code = (v[2] & 7) * 100 + v[3];
    off += STUN_ATTR_HDR + pad4(alen);
  }
  if (cls == QUILT_STUN_CLASS_ERROR)
    return QUILT_ERR_STATE;
  if (!have_xor && !have_plain)
    return QUILT_ERR_MALFORMED;
  *mapped = have_xor ? xa : pa;
  return 0;
}
