/*
 * quilt.h -- the public contract of the Quilt multicast library.
 *
 * Quilt joins hosts that live in different network environments into one
 * multicast group: IP multicast where the network allows it, overlays where
 * it does not.  This header holds what every module and every application
 * shares: error codes and their strings.  The application API (create a
 * host, join, publish, receive) arrives with the real driver.
 */
#ifndef QUILT_H
#define QUILT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes: negative integers, generated from one table.  Codes at or
 * below QUILT_ERR_FATAL mean the object that returned them can no longer be
 * used; the others describe one refused call or one dropped input.
 */
#define QUILT_ERRNO_MAP(X)                                                     \
  X(INVAL, -1, "invalid argument")                                             \
  X(NOMEM, -2, "out of memory")                                                \
  X(TRUNCATED, -3, "message truncated")                                        \
  X(MALFORMED, -4, "malformed message")                                        \
  X(VERSION, -5, "unsupported protocol version")                               \
  X(TOO_BIG, -6, "message too big")                                            \
  X(LIMIT, -7, "resource limit reached")                                       \
  X(NOT_FOUND, -8, "not found")                                                \
  X(DUPLICATE, -9, "duplicate")                                                \
  X(STATE, -10, "operation not valid in this state")                           \
  X(SYNTAX, -11, "syntax error")                                               \
  X(IO, -12, "input/output error")                                             \
  X(FATAL, -500, "fatal error")

typedef enum quilt_error {
#define QUILT__ERR_ENUM(name, code, text) QUILT_ERR_##name = (code),
  QUILT_ERRNO_MAP(QUILT__ERR_ENUM)
#undef QUILT__ERR_ENUM
} quilt_error;

/* Returns a static, human-readable string for a code from QUILT_ERRNO_MAP
 * (or "success" for 0, "unknown error" otherwise).  Never returns NULL. */
const char *quilt_strerror(int err);

/*
 * ---- Hosts: joining a group, publishing, receiving ----
 *
 * A quilt_host is one member of one group.  It runs on a libuv loop (the
 * caller's, or one it makes) and never blocks.  Callbacks run on that
 * loop's thread; none may call quilt_host_free().  Every function here is
 * to be called from the loop's thread.
 */

typedef struct quilt_host quilt_host;

typedef struct quilt_host_options {
  const char *bootstrap; /* "ADDR:PORT" of the bootstrap server (required) */
  const char *group;     /* group name (required, 1..255 bytes) */
  const char *bind_ip;   /* local IPv4 address to use (default 127.0.0.1);
                            multicast is sent and joined on the interface
                            that has it */
  uint16_t port;         /* local UDP port, 0 = any */
  int no_ipmc;           /* 1: behave as if IP multicast did not work here */
  uint32_t region;       /* coarse location for the rules, 0 = unknown */
  uint32_t bw_mbps;      /* uplink to announce instead of the measured
                            estimate (it sets the host's degree bound in a
                            tree), 0 = measure */
} quilt_host_options;

/* A message, delivered exactly once and in order per origin.  data is valid
 * during the call only. */
typedef void (*quilt_deliver_cb)(quilt_host *h, uint64_t origin,
                                 uint64_t seq, const void *data, size_t len,
                                 uint64_t latency_ns, void *user);
/* Messages [first, first+count) of origin will never be delivered. */
typedef void (*quilt_loss_cb)(quilt_host *h, uint64_t origin, uint64_t first,
                              uint64_t count, void *user);

/* Creates a host on `loop` (a uv_loop_t *, or NULL for the default loop).
 * Nothing is sent until quilt_host_start().  Returns 0 or a negative code
 * (QUILT_ERR_INVAL for bad options); *out is set on success only. */
int quilt_host_new(quilt_host **out, void *loop, const quilt_host_options *o,
                   quilt_deliver_cb deliver, quilt_loss_cb loss, void *user);

/* Binds the sockets and joins the group through the bootstrap server.
 * Returns 0 or QUILT_ERR_IO (a socket could not be set up). */
int quilt_host_start(quilt_host *h);

/* Whether the host has a patch yet (publishing needs one). */
int quilt_host_joined(const quilt_host *h);

/* Publishes data[0..len) to the group; returns its sequence number (>= 1)
 * or QUILT_ERR_TOO_BIG (over 1353 bytes), QUILT_ERR_STATE (no patch yet).
 * The data is copied. */
int64_t quilt_host_publish(quilt_host *h, const void *data, size_t len);

/* Tells the bootstrap server the host leaves, then closes its handles;
 * `done` (may be NULL) runs once they are closed, after which the host may
 * be freed. */
void quilt_host_stop(quilt_host *h, void (*done)(quilt_host *h, void *user));

/* Frees a stopped (or never started) host. */
void quilt_host_free(quilt_host *h);

/* What the host is: its node id, patch, role ("member", "primary",
 * "backup") and protocol name; strings are static. */
typedef struct quilt_host_info {
  uint64_t id;
  uint32_t patch_id;
  const char *protocol;
  const char *role;
  uint64_t delivered;
  uint64_t losses;
  uint64_t malformed;
  uint64_t reattached; /* in a tree patch: times a silent parent was
                          replaced */
} quilt_host_info;

void quilt_host_info_get(const quilt_host *h, quilt_host_info *info);

#ifdef __cplusplus
}
#endif

#endif /* QUILT_H */
