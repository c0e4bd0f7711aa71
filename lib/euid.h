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
 * the 1-based column of the first offending character. */
int quilt_euid_parse(quilt_euid *e, const char *s, size_t len, int *err_col);

/* Wire form: encode writes exactly QUILT_EUID_WIRE_LEN bytes; decode reads
 * exactly that many and returns 0, QUILT_ERR_TRUNCATED when len is short or
 * QUILT_ERR_MALFORMED for out-of-range fields. */
void quilt_euid_encode(const quilt_euid *e, uint8_t *out);
int quilt_euid_decode(quilt_euid *e, const uint8_t *in, size_t len);

#endif /* QUILT_EUID_H */
