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
#include "wire.h"

struct quilt_server {
  uv_loop_t *loop;
  uv_udp_t sock;
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
  s->closing = 2;
  uv_close((uv_handle_t *)&s->sock, on_closed);
  uv_close((uv_handle_t *)&s->timer, on_closed);
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
