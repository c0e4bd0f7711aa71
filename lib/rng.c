/* rng.c -- PCG32 (XSH RR variant), see rng.h. */
#include "rng.h"

#include <assert.h>

void quilt_rng_init(quilt_rng *r, uint64_t seed, uint64_t stream) {
  r->state = 0;
  r->inc = (stream << 1u) | 1u;
  (void)quilt_rng_u32(r);
  r->state += seed;
  (void)quilt_rng_u32(r);
}

uint32_t quilt_rng_u32(quilt_rng *r) {
  uint64_t old = r->state;
  r->state = old * 6364136223846793005ULL + r->inc;
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

uint64_t quilt_rng_u64(quilt_rng *r) {
  uint64_t hi = quilt_rng_u32(r);
  return (hi << 32) | quilt_rng_u32(r);
}

uint32_t quilt_rng_below(quilt_rng *r, uint32_t bound) {
  if (bound == 0)
    return 0;
  /* Rejection sampling (Lemire's threshold) keeps the result unbiased. */
  uint32_t threshold = (uint32_t)(-bound) % bound;
  for (;;) {
    uint32_t x = quilt_rng_u32(r);
    if (x >= threshold)
      return x % bound;
  }
}

uint64_t quilt_rng_range(quilt_rng *r, uint64_t lo, uint64_t hi) {
  assert(lo <= hi);
  uint64_t span = hi - lo;
  if (span == UINT64_MAX)
    return quilt_rng_u64(r);
  if (span < UINT32_MAX)
    return lo + quilt_rng_below(r, (uint32_t)(span + 1));
  uint64_t bound = span + 1;
  uint64_t threshold = (-bound) % bound;
  for (;;) {
    uint64_t x = quilt_rng_u64(r);
    if (x >= threshold)
      return lo + x % bound;
  }
}

int quilt_rng_chance_ppm(quilt_rng *r, uint32_t ppm) {
  return quilt_rng_below(r, 1000000u) < ppm;
}
