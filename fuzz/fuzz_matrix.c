/*
 * fuzz_matrix.c -- libFuzzer target for the RTT matrix parser (sim/matrix.h).
 *
 * Any input: parse must return without reading outside it.  A failure must
 * say why, as "fuzz.matrix:LINE:COL: ..." or "fuzz.matrix: ...", and hand
 * back no matrix.  A success must give a filled matrix: 0 on the diagonal
 * and only there, no entry above two file RTTs (a detour), an unknown
 * entry whose reverse was given equal to it, fill counts that add up, and
 * statistics that run.  Any difference aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "matrix.h"
#include "quilt.h"

#define FUZZ_NAME "fuzz.matrix"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  quilt_matrix *m = (quilt_matrix *)&m; /* must come back NULL on failure */
  char err[QUILT_MATRIX_ERR_LEN];
  int rc = quilt_matrix_parse(&m, FUZZ_NAME, (const char *)data, size, err,
                              sizeof err);
  if (rc != 0) {
    if (m != NULL || strncmp(err, FUZZ_NAME ":", strlen(FUZZ_NAME) + 1) != 0)
      abort();
    if (rc != QUILT_ERR_SYNTAX && rc != QUILT_ERR_LIMIT &&
        rc != QUILT_ERR_NOMEM)
      abort(); /* an error code parse does not promise */
    return 0;
  }
  uint32_t n = quilt_matrix_n(m);
  if (n < QUILT_MATRIX_MIN_HOSTS || n > QUILT_MATRIX_MAX_HOSTS)
    abort();
  uint64_t unknown = 0;
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j < n; j++) {
      uint32_t v = quilt_matrix_rtt_us(m, i, j);
      int was = quilt_matrix_was_unknown(m, i, j);
      if ((v == 0) != (i == j) || v > 2u * QUILT_MATRIX_RTT_MS_MAX * 1000u ||
          (was && i == j))
        abort();
      if (was && !quilt_matrix_was_unknown(m, j, i) &&
          v != quilt_matrix_rtt_us(m, j, i))
        abort();
      if (quilt_matrix_one_way_us(m, i, j) != v / 2)
        abort();
      unknown += (uint64_t)was;
    }
  quilt_matrix_stats st;
  if (quilt_matrix_get_stats(m, size, 64, &st) != 0)
    abort();
  if (st.n != n || st.unknown != unknown ||
      st.filled_symmetric + st.filled_detour + st.filled_median != unknown ||
      st.triangles != (n >= 3 ? 64u : 0u) || st.violated > st.triangles ||
      st.rtt_us_min > st.rtt_us_median || st.rtt_us_median > st.rtt_us_p90 ||
      st.rtt_us_p90 > st.rtt_us_max)
    abort();
  quilt_matrix_free(m);
  return 0;
}
