/*
 * fuzz_topo.c -- libFuzzer target for the topology parsers (sim/topo.h).
 *
 * The input is clusters.csv and site_rtt.csv joined by one NUL byte (split
 * in the middle when there is none), so the fuzzer can reach the RTT parser
 * with sites that clusters.csv defined.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "topo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  const char *nul = size ? memchr(text, '\0', size) : NULL;
  size_t clen = nul ? (size_t)(nul - text) : size / 2;
  size_t roff = nul ? clen + 1 : clen;
  quilt_topo t;
  char err[QUILT_TOPO_ERR_LEN];
  int rc = quilt_topo_parse(&t, "clusters.csv", text, clen, "site_rtt.csv",
                            text + roff, size - roff, 1, err, sizeof err);
  if (rc == 0) {
    /* Every pair of hosts has an RTT, symmetric, and 0 only to itself;
     * check a few so that the whole model runs. */
    if (t.nhosts == 0)
      abort();
    uint32_t step = t.nhosts / 16 + 1;
    for (uint32_t a = 0; a < t.nhosts; a += step)
      for (uint32_t b = 0; b < t.nhosts; b += step) {
        uint32_t ab = quilt_topo_rtt_us(&t, a, b);
        if (ab != quilt_topo_rtt_us(&t, b, a) || (ab == 0) != (a == b))
          abort();
      }
    quilt_topo_free(&t);
  } else if (err[0] == '\0' || t.clusters || t.host_cluster) {
    abort(); /* a failure always says why, and leaves nothing behind */
  }
  return 0;
}
