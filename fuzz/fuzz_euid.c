/*
 * fuzz_euid.c -- libFuzzer target for the EUID wire decoder and text parser.
 *
 * The input is tried both ways.  As wire bytes: a successful decode must
 * re-encode to the same 20 bytes.  As text: a successful parse must format
 * to a canonical text that parses back to the same struct and formats to
 * the same text again; a failed parse must point inside the input (or just
 * past it).  Any broken promise aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "euid.h"
#include "quilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const quilt_euid *a, const quilt_euid *b) {
  return a->nat == b->nat && a->ipmc == b->ipmc && a->domain == b->domain &&
         a->region == b->region && a->rtt_us == b->rtt_us &&
         a->bw_kbps == b->bw_kbps;
}

/* format(e) parses back to e, and formatting that gives the same text. */
static void check_text_round_trip(const quilt_euid *e) {
  char a[QUILT_EUID_TEXT_MAX], b[QUILT_EUID_TEXT_MAX];
  size_t na = quilt_euid_format(e, a, sizeof a);
  if (na == 0 || na >= sizeof a || strlen(a) != na)
    abort();
  quilt_euid back;
  int col = -1;
  if (quilt_euid_parse(&back, a, na, &col) != 0 || !same(e, &back))
    abort();
  size_t nb = quilt_euid_format(&back, b, sizeof b);
  if (na != nb || memcmp(a, b, na) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  quilt_euid e;
  int rc = quilt_euid_decode(&e, data, size);
  if (rc == 0) {
    uint8_t w[QUILT_EUID_WIRE_LEN];
    quilt_euid_encode(&e, w);
    if (memcmp(w, data, sizeof w) != 0)
      abort();
    check_text_round_trip(&e);
  } else if (rc != QUILT_ERR_TRUNCATED && rc != QUILT_ERR_MALFORMED) {
    abort();
  } else if ((rc == QUILT_ERR_TRUNCATED) != (size < QUILT_EUID_WIRE_LEN)) {
    abort();
  }

  int col = -1;
  rc = quilt_euid_parse(&e, (const char *)data, size, &col);
  if (rc == 0) {
    check_text_round_trip(&e);
  } else if (rc != QUILT_ERR_SYNTAX || col < 1 || (size_t)col > size + 1) {
    abort();
  }
  return 0;
}
