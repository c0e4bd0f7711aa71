/*
 * fuzz_stun.c -- libFuzzer target for the STUN server core.
 *
 * Any input goes through the demultiplexing test and quilt_stun_answer()
 * from a fixed address.  Oracles: an input the demux test rejects is never
 * answered; an answer is never longer than the input (anti-amplification),
 * passes quilt_stun_validate(), is a response class with the input's magic
 * cookie and transaction id, and when it is a Binding success it reads back
 * as the fixed address.  The result codes are the documented ones only.
 * Any failure aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const quilt_addr from = {0xC6336407u, 54321}; /* 198.51.100.7 */
  uint8_t out[QUILT_STUN_MAX_DATAGRAM];
  size_t n = 12345;
  int is_stun = quilt_stun_is_stun(data, size);
  int rc = quilt_stun_answer(data, size, &from, out, sizeof out, &n);

  if (rc != 0 && n != 0)
    abort();
  if (rc < 0) {
    if (rc != QUILT_ERR_TOO_BIG && rc != QUILT_ERR_TRUNCATED &&
        rc != QUILT_ERR_MALFORMED && rc != QUILT_ERR_LIMIT)
      abort();
    return 0;
  }
  /* Accepted: the demux test must have said STUN, and validate agree. */
  if (!is_stun || quilt_stun_validate(data, size) != 0)
    abort();
  if (rc == QUILT_STUN_NO_ANSWER || rc == QUILT_STUN_TOO_SMALL)
    return 0;
  if (rc != 0)
    abort();

  if (n > size || n < QUILT_STUN_HEADER_LEN + 8)
    abort();
  if (!quilt_stun_is_stun(out, n) || quilt_stun_validate(out, n) != 0)
    abort();
  if (memcmp(out + 4, data + 4, 4 + QUILT_STUN_TXID_LEN) != 0)
    abort();
  if (!(out[0] & 0x01)) /* C1: success or error response */
    abort();
  quilt_addr got;
  int code = 0;
  int r = quilt_stun_read_response(out, n, data + 8, &got, &code);
  uint16_t type = (uint16_t)(out[0] << 8 | out[1]);
  if (type == 0x0101) {
    if (r != 0 || got.ip != from.ip || got.port != from.port)
      abort();
  } else if (type == 0x0111) {
    if (r != QUILT_ERR_STATE || (code != 400 && code != 401 && code != 420))
      abort();
  } else if ((type & 0x0110) != 0x0110) {
    abort(); /* other methods get an error response */
  }
  return 0;
}
