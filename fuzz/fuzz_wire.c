/*
 * fuzz_wire.c -- libFuzzer target for the datagram codec.
 *
 * Any input: decode must return without reading outside it.  An input that
 * decodes is re-encoded; the encoding must be byte-identical to the input
 * (each message has exactly one encoding) and must decode to the same
 * message, field by field, payload bytes included.  Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static quilt_msg first, second;
  static uint8_t out[QUILT_WIRE_MAX_DATAGRAM];

  int rc = quilt_wire_decode(&first, data, size);
  if (rc != 0) {
    if (rc != QUILT_ERR_TRUNCATED && rc != QUILT_ERR_MALFORMED &&
        rc != QUILT_ERR_VERSION)
      abort(); /* an error code decode does not promise */
    return 0;
  }
  int n = quilt_wire_encode(&first, out, sizeof out);
  if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
    abort();
  if (quilt_wire_decode(&second, out, (size_t)n) != 0)
    abort();
  if (!quilt_msg_equal(&first, &second))
    abort();
  return 0;
}
