/*
 * euid.h -- the Environment Unique IDentifier of a host interface.
 *
 * What a host found out about where it lives: its connectivity (NAT class),
 * whether IP multicast works and with whom (the IPMC domain), a coarse
 * location (region), and measured performance.  Hosts in the same
 * environment have equal fields and so land in the same patch (DESIGN.md
 * section 1).  Three forms:
 *   - the struct below;
 *   - a canonical one-line text form, every field in this order:
 *       nat=none ipmc=yes domain=0000001a region=3 rtt_ms=0.250 bw_mbps=1000
 *   - a fixed-size wire form (QUILT_EUID_WIRE_LEN bytes, network order),
 *     carried in JOIN and HEARTBEAT messages.
 */
#ifndef QUILT_EUID_H
#define QUILT_EUID_H

#include <stddef.h>
#include <stdint.h>

/* Connectivity classes, after RFC 4787 / RFC 5780 behaviour discovery. */
typedef enum quilt_nat {
  QUILT_NAT_NONE = 0,            /* public address, inbound UDP reaches it */
  QUILT_NAT_FULL_CONE = 1,       /* endpoint-independent mapping+filtering */
  QUILT_NAT_RESTRICTED = 2,      /* address-dependent filtering */
  QUILT_NAT_PORT_RESTRICTED = 3, /* address-and-port-dependent filtering */
  QUILT_NAT_SYMMETRIC = 4,       /* address(-and-port)-dependent mapping */
  QUILT_NAT_UNKNOWN = 5,         /* not measured, or UDP blocked */
  QUILT_NAT__COUNT
} quilt_nat;

typedef struct quilt_euid {
  uint8_t nat;         /* quilt_nat */
  uint8_t ipmc;        /* 1 when scoped IP multicast reaches other hosts */
  uint32_t domain;     /* IPMC domain id (equal for hosts that reach each
                          other by multicast); 0 = none */
  uint32_t region;     /* coarse location: site id, landmark bucket; 0 =
                          unknown */
  uint32_t rtt_us;     /* RTT to the bootstrap server, microseconds */
  uint32_t bw_kbps;    /* uplink bandwidth estimate, kbit/s */
} quilt_euid;

#define QUILT_EUID_WIRE_LEN 20 /* see euid.c for the layout */
#define QUILT_EUID_TEXT_MAX 128 /* longest canonical text form, with NUL */

/* Canonical names of the NAT classes ("none", "full-cone", "restricted",
 * "port-restricted", "symmetric", "unknown"); NULL for an invalid value. */
const char *quilt_nat_name(unsigned nat);
/* Parses a NAT class name; returns the class or -1. */
int quilt_nat_parse(const char *s, size_t len);

/* Writes the canonical text form into buf (size >= QUILT_EUID_TEXT_MAX) and
 * returns the length written (without NUL). */
size_t quilt_euid_format(const quilt_euid *e, char *buf, size_t size);

/* Parses the canonical text form (fields in any order, each exactly once,
 * separated by spaces).  Returns 0, or QUILT_ERR_SYNTAX with *err_col set to
 * the 1-based column of the first offending character (len + 1 when a field
 * is missing).  Also accepts tabs, extra spaces, a trailing newline, domain
 * with fewer digits or "0x", and decimals with fewer digits ("rtt_ms=0.25");
 * more than 3 decimals, or more than 4096 bytes, is an error.  *e is
 * written only on success; err_col may be NULL. */
int quilt_euid_parse(quilt_euid *e, const char *s, size_t len, int *err_col);

/* Whether two EUIDs are the same, field by field. */
int quilt_euid_equal(const quilt_euid *a, const quilt_euid *b);

/* Wire form: encode writes exactly QUILT_EUID_WIRE_LEN bytes; decode reads
 * exactly that many and returns 0, QUILT_ERR_TRUNCATED when len is short or
 * QUILT_ERR_MALFORMED for out-of-range fields. */
void quilt_euid_encode(const quilt_euid *e, uint8_t *out);
int quilt_euid_decode(quilt_euid *e, const uint8_t *in, size_t len);

/* Number parsers shared by the EUID text form and the rules language
 * (lib-internal).  Each reads all of s[0..len) -- no sign, no spaces -- and
 * returns 0 with the value in *out, QUILT_ERR_SYNTAX when s is not a number
 * of that form, or QUILT_ERR_LIMIT when it does not fit in 32 bits.
 *   u32:   decimal digits.
 *   hex32: 1 to 8 hex digits (either case), optionally after "0x"; more
 *          than 8 digits is QUILT_ERR_LIMIT.
 *   milli: "D[.F]" with at most 3 digits in F, scaled by 1000 with integer
 *          arithmetic only ("0.25" -> 250); more than 3 decimals is
 *          QUILT_ERR_INVAL, since the EUID stores thousandths (us, kbit/s)
 *          and rounding would make two different texts compare equal. */
int quilt__parse_u32(const char *s, size_t len, uint32_t *out);
int quilt__parse_hex32(const char *s, size_t len, uint32_t *out);
int quilt__parse_milli(const char *s, size_t len, uint32_t *out);

#endif /* QUILT_EUID_H */
