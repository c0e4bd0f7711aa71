/*
 * io.h -- pieces shared by the real drivers (host and bootstrap server).
 */
#ifndef QUILT_IO_H
#define QUILT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "addr.h"
#include "bootstrap.h"

/* Parses "A.B.C.D:PORT" (port 1..65535, or 0 when allow_zero).  Returns 0
 * or QUILT_ERR_INVAL. */
int quilt_io_parse_addr(const char *s, int allow_zero, quilt_addr *out);

void quilt_io_to_sockaddr(const quilt_addr *a, struct sockaddr_in *sa);
void quilt_io_from_sockaddr(const struct sockaddr *sa, quilt_addr *a);

/* 64 random bits from the OS (never 0). */
uint64_t quilt_io_random64(void);

/* Sends one datagram without blocking: tries at once, else queues a copy.
 * Returns 0 or a libuv error. */
int quilt_io_send(uv_udp_t *sock, const quilt_addr *to, const uint8_t *buf,
                  size_t len);

/* The bootstrap server on a libuv loop: Quilt messages on `listen`, STUN
 * Binding requests answered on the same socket. */
typedef struct quilt_server quilt_server;

typedef struct quilt_server_counters {
  uint64_t datagrams;
  uint64_t refused;
  uint64_t stun_answered;
  uint64_t stun_dropped;
  quilt_bootstrap_counters core;
} quilt_server_counters;

int quilt_server_new(quilt_server **out, uv_loop_t *loop,
                     const quilt_addr *listen, const quilt_rules *rules,
                     char *err, size_t errlen);
/* Closes the socket and timer; `done` runs once they are closed. */
void quilt_server_stop(quilt_server *s, void (*done)(void *arg), void *arg);
void quilt_server_free(quilt_server *s);
void quilt_server_counters_get(const quilt_server *s,
                               quilt_server_counters *c);
/* Bound address (the port, when 0 was asked for). */
quilt_addr quilt_server_addr(const quilt_server *s);
/* STUN sockets open on port + 1 and port + 2 (0, 1 or 2). */
int quilt_server_stun_ports(const quilt_server *s);

#endif /* QUILT_IO_H */
