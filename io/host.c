/*
 * host.c -- a Quilt host on a libuv loop: the real driver of lib/node.
 *
 * It does for one host what the simulator does for thousands: datagrams
 * from the sockets go to quilt_node_read(), a uv timer fires at
 * quilt_node_expiry(), and the node's send and multicast callbacks become
 * socket operations.  Time is uv_hrtime() (monotonic nanoseconds), the
 * seed and node id come from the OS.
 *
 * Sockets: one UDP socket on bind_ip:port sends everything and receives
 * unicast; multicast is sent from it (so replies come back to it), on the
 * interface of bind_ip, with TTL 1 (never beyond the link).  An ipmc patch
 * adds a second socket bound to the group and port, which has joined the
 * group on that interface.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "io.h"
#include "node.h"
#include "proto.h"
#include "quilt.h"
#include "wire.h"

#define RECV_BUF 2048

struct quilt_host {
  uv_loop_t *loop;
  quilt_host_options opt;
  char *bootstrap_str, *group_str, *bind_str;
  quilt_deliver_cb deliver;
  quilt_loss_cb loss;
  void *user;

  quilt_node *node;
  uint64_t id;
  quilt_addr addr;
  quilt_addr bootstrap;
  uv_udp_t sock;
  uv_udp_t msock;
  int sock_open, msock_open;
  quilt_addr mgroup;
  uv_timer_t timer;
  int timer_open;
  int started, stopping;
  int closing; /* handles still to close */
  void (*done)(quilt_host *, void *);

  uint64_t delivered, losses, send_errors;
  uint32_t patch_id;
  unsigned protocol, role;
  int joined;
  uint8_t rbuf[RECV_BUF];
};

static void rearm(quilt_host *h);

/* ---- node callbacks ---- */

static void cb_send(void *user, const quilt_addr *to, const uint8_t *buf,
                    size_t len) {
  quilt_host *h = user;
  if (!h->sock_open || quilt_io_send(&h->sock, to, buf, len) != 0)
    h->send_errors++;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  quilt_host *h = handle->data;
  *buf = uv_buf_init((char *)h->rbuf, sizeof h->rbuf);
}

static void on_recv(uv_udp_t *sock, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags) {
  quilt_host *h = sock->data;
  if (nread <= 0 || !from || h->stopping)
    return;
  if (flags & UV_UDP_PARTIAL)
    return; /* larger than any Quilt datagram: not ours */
  quilt_addr src;
  quilt_io_from_sockaddr(from, &src);
  quilt_node_read(h->node, &src, (const uint8_t *)buf->base, (size_t)nread,
                  uv_hrtime());
  rearm(h);
}

static void cb_mcast_join(void *user, const quilt_addr *group) {
  quilt_host *h = user;
  if (h->msock_open)
    return;
  char gs[INET_ADDRSTRLEN], is[INET_ADDRSTRLEN];
  struct in_addr g = {htonl(group->ip)}, i = {htonl(h->addr.ip)};
  inet_ntop(AF_INET, &g, gs, sizeof gs);
  inet_ntop(AF_INET, &i, is, sizeof is);
  struct sockaddr_in sa;
  quilt_io_to_sockaddr(group, &sa);
  if (uv_udp_init(h->loop, &h->msock) != 0)
    return;
  h->msock.data = h;
  h->msock_open = 1;
  if (uv_udp_bind(&h->msock, (const struct sockaddr *)&sa,
                  UV_UDP_REUSEADDR) != 0 ||
      uv_udp_set_membership(&h->msock, gs, is, UV_JOIN_GROUP) != 0 ||
      uv_recv_buffer_size((uv_handle_t *)&h->msock,
                          &(int){4 << 20}) != 0 ||
      uv_udp_recv_start(&h->msock, on_alloc, on_recv) != 0) {
    h->send_errors++; /* counted; the patch repairs from unicast peers */
    return;
  }
  h->mgroup = *group;
}

static void on_closed(uv_handle_t *handle) {
  quilt_host *h = handle->data;
  if (--h->closing == 0 && h->done)
    h->done(h, h->user);
}

static void close_handle(quilt_host *h, uv_handle_t *handle) {
  h->closing++;
  uv_close(handle, on_closed);
}

static void cb_mcast_leave(void *user, const quilt_addr *group) {
  quilt_host *h = user;
  if (!h->msock_open || h->mgroup.ip != group->ip)
    return;
  h->msock_open = 0;
  h->mgroup.ip = 0;
  close_handle(h, (uv_handle_t *)&h->msock);
}

static void cb_deliver(void *user, const quilt_msg_data *d, uint64_t now) {
  quilt_host *h = user;
  h->delivered++;
  if (h->deliver)
    h->deliver(h, d->origin, d->seq, d->payload, d->len,
               now > d->ts_ns ? now - d->ts_ns : 0, h->user);
}

static void cb_loss(void *user, uint64_t origin, uint64_t first,
                    uint64_t count, uint64_t now) {
  (void)now;
  quilt_host *h = user;
  h->losses += count;
  if (h->loss)
    h->loss(h, origin, first, count, h->user);
}

static void cb_patch(void *user, uint32_t patch_id, unsigned protocol,
                     unsigned role) {
  quilt_host *h = user;
  h->joined = 1;
  h->patch_id = patch_id;
  h->protocol = protocol;
  h->role = role;
}

/* ---- timer ---- */

static void on_timer(uv_timer_t *t) {
  quilt_host *h = t->data;
  quilt_node_handle_expiry(h->node, uv_hrtime());
  rearm(h);
}

static void rearm(quilt_host *h) {
  if (!h->timer_open || h->stopping)
    return;
  uint64_t when = quilt_node_expiry(h->node);
  if (when == UINT64_MAX) {
    uv_timer_stop(&h->timer);
    return;
  }
  uint64_t now = uv_hrtime();
  /* Milliseconds, rounded up so that the node is never woken early. */
  uint64_t ms = when > now ? (when - now + 999999) / 1000000 : 0;
  uv_timer_start(&h->timer, on_timer, ms, 0);
}

/* ---- API ---- */

static char *dup_str(const char *s) {
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

int quilt_host_new(quilt_host **out, void *loop, const quilt_host_options *o,
                   quilt_deliver_cb deliver, quilt_loss_cb loss, void *user) {
  if (!o || !o->bootstrap || !o->group || !*o->group ||
      strlen(o->group) > 255)
    return QUILT_ERR_INVAL;
  quilt_addr boot;
  if (quilt_io_parse_addr(o->bootstrap, 0, &boot) != 0)
    return QUILT_ERR_INVAL;
  quilt_addr bind = {0x7f000001, o->port};
  if (o->bind_ip) {
    struct in_addr in;
    if (inet_pton(AF_INET, o->bind_ip, &in) != 1)
      return QUILT_ERR_INVAL;
    bind.ip = ntohl(in.s_addr);
  }
  quilt_host *h = calloc(1, sizeof *h);
  if (!h)
    return QUILT_ERR_NOMEM;
  h->loop = loop ? loop : uv_default_loop();
  h->opt = *o;
  h->bootstrap_str = dup_str(o->bootstrap);
  h->group_str = dup_str(o->group);
  h->bind_str = dup_str(o->bind_ip);
  h->opt.bootstrap = h->bootstrap_str;
  h->opt.group = h->group_str;
  h->opt.bind_ip = h->bind_str;
  h->deliver = deliver;
  h->loss = loss;
  h->user = user;
  h->bootstrap = boot;
  h->addr = bind;
  h->id = quilt_io_random64() >> 1; /* below 2^63: readable in logs */
  if (h->id == 0)
    h->id = 1;
  *out = h;
  return 0;
}

int quilt_host_start(quilt_host *h) {
  if (h->started)
    return QUILT_ERR_STATE;
  h->started = 1;
  if (uv_udp_init(h->loop, &h->sock) != 0)
    return QUILT_ERR_IO;
  h->sock.data = h;
  h->sock_open = 1;
  struct sockaddr_in sa;
  quilt_io_to_sockaddr(&h->addr, &sa);
  if (uv_udp_bind(&h->sock, (const struct sockaddr *)&sa, 0) != 0)
    return QUILT_ERR_IO;
  struct sockaddr_storage ss;
  int sslen = sizeof ss;
  if (uv_udp_getsockname(&h->sock, (struct sockaddr *)&ss, &sslen) != 0)
    return QUILT_ERR_IO;
  quilt_io_from_sockaddr((const struct sockaddr *)&ss, &h->addr);
  char is[INET_ADDRSTRLEN];
  struct in_addr i = {htonl(h->addr.ip)};
  inet_ntop(AF_INET, &i, is, sizeof is);
  if (uv_udp_set_multicast_interface(&h->sock, is) != 0 ||
      uv_udp_set_multicast_ttl(&h->sock, 1) != 0 ||
      uv_udp_set_multicast_loop(&h->sock, 1) != 0)
    return QUILT_ERR_IO;
  /* Room for bursts: 4 MiB of socket buffer each way (the kernel caps it
   * at net.core.rmem_max / wmem_max). */
  int bufsz = 4 << 20;
  uv_recv_buffer_size((uv_handle_t *)&h->sock, &bufsz);
  bufsz = 4 << 20;
  uv_send_buffer_size((uv_handle_t *)&h->sock, &bufsz);
  if (uv_udp_recv_start(&h->sock, on_alloc, on_recv) != 0)
    return QUILT_ERR_IO;
  if (uv_timer_init(h->loop, &h->timer) != 0)
    return QUILT_ERR_IO;
  h->timer.data = h;
  h->timer_open = 1;

  quilt_node_config nc;
  quilt_node_config_default(&nc);
  nc.id = h->id;
  nc.addr = h->addr;
  nc.bootstrap = h->bootstrap;
  nc.group = quilt_group_id(h->opt.group);
  nc.seed = quilt_io_random64();
  /* The EUID comes from environment detection on the interface of our
   * address, against the bootstrap server's STUN ports (io/env.h). */
  char ipbuf[INET_ADDRSTRLEN];
  struct in_addr me = {htonl(h->addr.ip)};
  inet_ntop(AF_INET, &me, ipbuf, sizeof ipbuf);
  quilt_env_options eo = {0};
  eo.bind_ip = ipbuf;
  eo.stun = quilt_env_stun_addr(&h->bootstrap, 0);
  eo.no_ipmc = h->opt.no_ipmc;
  eo.region = h->opt.region;
  quilt_env env;
  char err[128];
  if (quilt_env_detect(&env, &eo, err, sizeof err) == 0) {
    nc.euid = env.euid;
  } else {
    nc.euid.nat = QUILT_NAT_UNKNOWN;
    nc.euid.ipmc = 0;
    nc.euid.region = h->opt.region;
    nc.euid.bw_kbps = 1000000;
  }
  if (h->opt.bw_mbps)
    nc.euid.bw_kbps = h->opt.bw_mbps * 1000u;
  quilt_node_callbacks cb = {cb_send,    cb_mcast_join, cb_mcast_leave,
                             cb_deliver, cb_loss,       cb_patch, NULL};
  if (quilt_node_new(&h->node, &nc, &cb, h) != 0)
    return QUILT_ERR_NOMEM;
  quilt_node_start(h->node, uv_hrtime());
  rearm(h);
  return 0;
}

int quilt_host_joined(const quilt_host *h) { return h->joined; }

int64_t quilt_host_publish(quilt_host *h, const void *data, size_t len) {
  if (!h->node || h->stopping)
    return QUILT_ERR_STATE;
  int64_t rc = quilt_node_publish(h->node, data, len, uv_hrtime());
  rearm(h);
  return rc;
}

void quilt_host_stop(quilt_host *h, void (*done)(quilt_host *, void *)) {
  if (h->stopping)
    return;
  h->done = done;
  if (h->node)
    quilt_node_leave(h->node, uv_hrtime());
  h->stopping = 1;
  if (h->msock_open) {
    h->msock_open = 0;
    close_handle(h, (uv_handle_t *)&h->msock);
  }
  if (h->timer_open) {
    h->timer_open = 0;
    close_handle(h, (uv_handle_t *)&h->timer);
  }
  if (h->sock_open) {
    h->sock_open = 0;
    close_handle(h, (uv_handle_t *)&h->sock);
  }
  if (h->closing == 0 && done)
    done(h, h->user);
}

void quilt_host_free(quilt_host *h) {
  if (!h)
    return;
  quilt_node_del(h->node);
  free(h->bootstrap_str);
  free(h->group_str);
  free(h->bind_str);
  free(h);
}

void quilt_host_info_get(const quilt_host *h, quilt_host_info *info) {
  static const char *const roles[] = {"member", "primary", "backup"};
  memset(info, 0, sizeof *info);
  info->id = h->id;
  info->patch_id = h->patch_id;
  info->delivered = h->delivered;
  info->losses = h->losses;
  if (h->joined) {
    const quilt_proto_ops *ops = quilt_proto_get(h->protocol);
    info->protocol = ops ? ops->name : "?";
    info->role = h->role < 3 ? roles[h->role] : "?";
  } else {
    info->protocol = "-";
    info->role = "joining";
  }
  if (h->node) {
    quilt_node_counters c;
    quilt_node_counters_get(h->node, &c);
    info->malformed = c.malformed;
    info->reattached = c.reattached;
  }
}
