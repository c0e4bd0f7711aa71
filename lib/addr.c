/* addr.c -- formatting of transport addresses. */
#include "addr.h"

#include <stdio.h>

char *quilt_addr_str(const quilt_addr *a, char *buf) {
  snprintf(buf, QUILT_ADDR_STRLEN, "%u.%u.%u.%u:%u", (a->ip >> 24) & 255u,
           (a->ip >> 16) & 255u, (a->ip >> 8) & 255u, a->ip & 255u,
           (unsigned)a->port);
  return buf;
}
