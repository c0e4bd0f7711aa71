/*
 * server.c -- the bootstrap server on a libuv loop: the real driver of
 * lib/bootstrap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "io.h"
#include "quilt.h"
#include "stun.h"
#include "wire.h"

struct quilt_server {
  uv_loop_t *loop;
  uv_udp_t sock;
  uv_udp_t stun[2]; /* STUN on port + 1 and, for RFC 5780 tests, + 2 */
  int nstun;
  uv_timer_t timer;
  quilt_bootstrap *core;
  quilt_addr addr;
  int closing;
  void (*done)(void *);
  void *done_arg;
  quilt_server_counters ctr;
  uint8_t rbuf[2048];
};

static void srv_send(void *user, const quilt_addr *to, const uint8_t *buf,
                     size_t len) {
  quilt_server *s = user;
  (void)quilt_io_send(&s->sock, to, buf, len);
}

static void rearm(quilt_server *s);

static void on_timer(uv_timer_t *t) {
  quilt_server *s = t->data;
  quilt_bootstrap_handle_expiry(s->core, uv_hrtime());
  rearm(s);
}

static void rearm(quilt_server *s) {
  if (s->closing)
    return;
  uint64_t when = quilt_bootstrap_expiry(s->core);
  if (when == UINT64_MAX) {
    uv_timer_stop(&s->timer);
    return;
  }
  uint64_t now = uv_hrtime();
  uint64_t ms = when > now ? (when - now + 999999) / 1000000 : 0;
  uv_timer_start(&s->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  quilt_server *s = handle->data;
  *buf = uv_buf_init((char *)s->rbuf, sizeof s->rbuf);
}

static void on_recv(uv_udp_t *sock, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags) {
  quilt_server *s = sock->data;
  if (nread <= 0 || !from || s->closing)
    return;
  s->ctr.datagrams++;
  if (flags & UV_UDP_PARTIAL) {
    s->ctr.refused++;
    return;
  }
  quilt_addr src;
  quilt_io_from_sockaddr(from, &src);
  if (quilt_bootstrap_read(s->core, &src, (const uint8_t *)buf->base,
                           (size_t)nread, uv_hrtime()) != 0)
    s->ctr.refused++;
  rearm(s);
}

/* A STUN datagram on one of the two STUN sockets: answered (never with
 * more bytes than it carried: lib/stun.h), from the other socket when the
 * request asks for a change of port. */
static void on_stun(uv_udp_t *sock, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags) {
  quilt_server *s = sock->data;
  if (nread <= 0 || !from || s->closing)
    return;
  if ((flags & UV_UDP_PARTIAL) ||
      !quilt_stun_is_stun((const uint8_t *)buf->base, (size_t)nread)) {
    s->ctr.stun_dropped++;
    return;
  }
  quilt_addr src;
  quilt_io_from_sockaddr(from, &src);
  uint8_t out[QUILT_STUN_MAX_DATAGRAM];
  size_t len;
  int other = 0;
  int rc = quilt_stun_answer_ex((const uint8_t *)buf->base, (size_t)nread,
                                &src, s->nstun == 2, out, sizeof out, &len,
                                &other);
  if (rc != 0) {
    s->ctr.stun_dropped++;
    return;
  }
  uv_udp_t *via = sock;
  if (other)
    via = sock == &s->stun[0] ? &s->stun[1] : &s->stun[0];
  if (quilt_io_send(via, &src, out, len) == 0)
    s->ctr.stun_answered++;
}

static int open_stun(quilt_server *s, uv_loop_t *loop, const quilt_addr *a,
                     uv_udp_t *u) {
  struct sockaddr_in sa;
  quilt_io_to_sockaddr(a, &sa);
  if (uv_udp_init(loop, u) != 0)
    return -1;
  u->data = s;
  if (uv_udp_bind(u, (const struct sockaddr *)&sa, 0) != 0 ||
      uv_udp_recv_start(u, on_alloc, on_stun) != 0) {
    uv_close((uv_handle_t *)u, NULL);
    return -1;
  }
  return 0;
}

int quilt_server_new(quilt_server **out, uv_loop_t *loop,
                     const quilt_addr *listen, const quilt_rules *rules,
                     char *err, size_t errlen) {
  quilt_server *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return QUILT_ERR_NOMEM;
  }
  s->loop = loop;
  quilt_bootstrap_config bc;
  quilt_bootstrap_config_default(&bc);
  bc.id = quilt_io_random64();
  bc.rules = rules;
  /* Every run of the server has a new random node id, by which hosts tell
   * a restarted server from the old one (node.c, note_server); the
   * incarnation byte only helps hosts that look at epochs alone. */
  bc.incarnation = (uint8_t)((uint64_t)time(NULL) / 10);
  quilt_bootstrap_callbacks cb = {srv_send};
  int rc = quilt_bootstrap_new(&s->core, &bc, &cb, s);
  if (rc != 0) {
    snprintf(err, errlen, "cannot start the server core: %s",
             quilt_strerror(rc));
    free(s);
    return rc;
  }
  struct sockaddr_in sa;
  quilt_io_to_sockaddr(listen, &sa);
  if ((rc = uv_udp_init(loop, &s->sock)) != 0 ||
      (rc = uv_udp_bind(&s->sock, (const struct sockaddr *)&sa, 0)) != 0) {
    char a[QUILT_ADDR_STRLEN];
    snprintf(err, errlen, "cannot listen on %s: %s",
             quilt_addr_str(listen, a), uv_strerror(rc));
    if (uv_is_active((uv_handle_t *)&s->sock) ||
        s->sock.type == UV_UDP)
      uv_close((uv_handle_t *)&s->sock, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    quilt_bootstrap_del(s->core);
    free(s);
    return QUILT_ERR_IO;
  }
  s->sock.data = s;
  struct sockaddr_storage ss;
  int sslen = sizeof ss;
  uv_udp_getsockname(&s->sock, (struct sockaddr *)&ss, &sslen);
  quilt_io_from_sockaddr((const struct sockaddr *)&ss, &s->addr);
  uv_udp_recv_start(&s->sock, on_alloc, on_recv);
  /* STUN on the two ports after the Quilt port, when they are free. */
  if (s->addr.port != 0 && s->addr.port <= 65533) {
    quilt_addr st = s->addr;
    st.port = (uint16_t)(s->addr.port + 1);
    if (open_stun(s, loop, &st, &s->stun[0]) == 0) {
      s->nstun = 1;
      st.port = (uint16_t)(s->addr.port + 2);
      if (open_stun(s, loop, &st, &s->stun[1]) == 0)
        s->nstun = 2;
    }
  }
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  rearm(s);
  *out = s;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  quilt_server *s = h->data;
  if (--s->closing == 0 && s->done)
    s->done(s->done_arg);
}

void quilt_server_stop(quilt_server *s, void (*done)(void *), void *arg) {
  s->done = done;
  s->done_arg = arg;
  s->closing = 2 + s->nstun;
  uv_close((uv_handle_t *)&s->sock, on_closed);
  uv_close((uv_handle_t *)&s->timer, on_closed);
  for (int i = 0; i < s->nstun; i++)
    uv_close((uv_handle_t *)&s->stun[i], on_closed);
}

void quilt_server_free(quilt_server *s) {
  if (!s)
    return;
  quilt_bootstrap_del(s->core);
  free(s);
}

void quilt_server_counters_get(const quilt_server *s,
                               quilt_server_counters *c) {
  *c = s->ctr;
  quilt_bootstrap_counters_get(s->core, &c->core);
}

quilt_addr quilt_server_addr(const quilt_server *s) { return s->addr; }

int quilt_server_stun_ports(const quilt_server *s) { return s->nstun; }
