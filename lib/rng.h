/*
 * rng.h -- the private random generator of every protocol core.
 *
 * PCG32 (O'Neill, "PCG: A Family of Simple Fast Space-Efficient
 * Statistically Good Algorithms for Random Number Generation", 2014):
 * 64-bit state, 32-bit output, integer only, so a run reproduces bit for bit
 * on every platform.  A driver seeds it once; the cores never call rand().
 */
#ifndef QUILT_RNG_H
#define QUILT_RNG_H

#include <stdint.h>

typedef struct quilt_rng {
  uint64_t state;
  uint64_t inc; /* stream selector, always odd */
} quilt_rng;

/* Seeds |r| from |seed| and a stream id; equal arguments give equal
 * sequences. */
void quilt_rng_init(quilt_rng *r, uint64_t seed, uint64_t stream);

uint32_t quilt_rng_u32(quilt_rng *r);
uint64_t quilt_rng_u64(quilt_rng *r);

/* Uniform integer in [0, bound) without modulo bias; bound 0 returns 0. */
uint32_t quilt_rng_below(quilt_rng *r, uint32_t bound);

/* Uniform integer in [lo, hi] (inclusive), 64-bit; requires lo <= hi. */
uint64_t quilt_rng_range(quilt_rng *r, uint64_t lo, uint64_t hi);

/* True with probability ppm / 1e6 (parts per million), integer only. */
int quilt_rng_chance_ppm(quilt_rng *r, uint32_t ppm);

#endif /* QUILT_RNG_H */
