/* util.c -- addresses, randomness and sending for the real drivers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "quilt.h"

int quilt_io_parse_addr(const char *s, int allow_zero, quilt_addr *out) {
  if (!s)
    return QUILT_ERR_INVAL;
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || (size_t)(colon - s) >= INET_ADDRSTRLEN)
    return QUILT_ERR_INVAL;
  char ip[INET_ADDRSTRLEN];
  memcpy(ip, s, (size_t)(colon - s));
  ip[colon - s] = '\0';
  struct in_addr in;
  if (inet_pton(AF_INET, ip, &in) != 1)
    return QUILT_ERR_INVAL;
  char *end;
  errno = 0;
  if (colon[1] < '0' || colon[1] > '9')
    return QUILT_ERR_INVAL;
  unsigned long port = strtoul(colon + 1, &end, 10);
  if (errno || *end || port > 65535 || (port == 0 && !allow_zero))
    return QUILT_ERR_INVAL;
  out->ip = ntohl(in.s_addr);
  out->port = (uint16_t)port;
  return 0;
}

void quilt_io_to_sockaddr(const quilt_addr *a, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(a->ip);
  sa->sin_port = htons(a->port);
}

void quilt_io_from_sockaddr(const struct sockaddr *sa, quilt_addr *a) {
  memset(a, 0, sizeof *a);
  if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    a->ip = ntohl(in->sin_addr.s_addr);
    a->port = ntohs(in->sin_port);
  }
}

uint64_t quilt_io_random64(void) {
  uint64_t v = 0;
  while (v == 0) {
    if (uv_random(NULL, NULL, &v, sizeof v, 0, NULL) != 0) {
      /* No entropy source: fall back on time and pid, still nonzero. */
      v = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    }
  }
  return v;
}

typedef struct send_req {
  uv_udp_send_t req;
  uint8_t data[];
} send_req;

static void on_sent(uv_udp_send_t *req, int status) {
  (void)status; /* UDP: a failed send is a lost datagram, repaired above */
  free(req);
}

int quilt_io_send(uv_udp_t *sock, const quilt_addr *to, const uint8_t *buf,
                  size_t len) {
  struct sockaddr_in sa;
  quilt_io_to_sockaddr(to, &sa);
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  int rc = uv_udp_try_send(sock, &b, 1, (const struct sockaddr *)&sa);
  if (rc >= 0)
    return 0;
  if (rc != UV_EAGAIN)
    return rc;
  send_req *r = malloc(sizeof *r + len);
  if (!r)
    return UV_ENOMEM;
  memcpy(r->data, buf, len);
  b = uv_buf_init((char *)r->data, (unsigned)len);
  rc = uv_udp_send(&r->req, sock, &b, 1, (const struct sockaddr *)&sa,
                   on_sent);
  if (rc != 0)
    free(r);
  return rc;
}
