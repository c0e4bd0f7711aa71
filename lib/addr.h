/*
 * addr.h -- a transport address as the cores see it.
 *
 * IPv4 and a UDP port, in host byte order.  The cores compare and copy
 * addresses but never resolve or bind them; the driver (real or simulated)
 * maps them to sockets.  An address in 224.0.0.0/4 names a multicast group.
 */
#ifndef QUILT_ADDR_H
#define QUILT_ADDR_H

#include <stdint.h>

typedef struct quilt_addr {
  uint32_t ip;   /* IPv4, host byte order; 0 = unset */
  uint16_t port; /* host byte order */
} quilt_addr;

static inline int quilt_addr_eq(const quilt_addr *a, const quilt_addr *b) {
  return a->ip == b->ip && a->port == b->port;
}

static inline int quilt_addr_is_multicast(const quilt_addr *a) {
  return (a->ip >> 28) == 0xE;
}

/* Writes "a.b.c.d:port" into buf (at least QUILT_ADDR_STRLEN bytes) and
 * returns buf. */
#define QUILT_ADDR_STRLEN 22
char *quilt_addr_str(const quilt_addr *a, char *buf);

#endif /* QUILT_ADDR_H */
