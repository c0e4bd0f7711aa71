/* error.c -- quilt_strerror, generated from QUILT_ERRNO_MAP. */
#include "quilt.h"

const char *quilt_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define QUILT__ERR_CASE(name, code, text)                                      \
  case code:                                                                   \
    return text;
    QUILT_ERRNO_MAP(QUILT__ERR_CASE)
#undef QUILT__ERR_CASE
  default:
    return "unknown error";
  }
}
