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

#ifdef __cplusplus
}
#endif

#endif /* QUILT_H */
