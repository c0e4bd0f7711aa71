/*
 * map_test.c -- the open-addressing map (lib/map.h): basic contract, probe
 * clusters built on purpose (keys with one home slot, clusters that wrap
 * around the end of the table), deletions in the middle of clusters, and a
 * differential test against a naive model over long random sequences
 * (SQLite-style), with structural invariants checked as it runs.
 *
 * The map's struct is public, so the tests also check its layout: count
 * matches the used slots, the load stays at or under 1/2, and every key
 * sits in the probe run that starts at its home slot (what backward-shift
 * deletion must preserve).  The home function is mirrored here and checked
 * against the map's own placement first, so a change of hash shows up as
 * one clear failure rather than as puzzling cluster tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "quilt.h"
#include "rng.h"

/* Mirror of map.c's home(): the slot a key probes first. */
static size_t mirror_home(uint64_t key, size_t size) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  return (size_t)key & (size - 1);
}

/* Index of the slot holding key, or SIZE_MAX. */
static size_t slot_of(const quilt_map *m, uint64_t key) {
  for (size_t i = 0; i < m->size; i++)
    if (m->slots[i].used && m->slots[i].key == key)
      return i;
  return SIZE_MAX;
}

/* Structural invariants of the table. */
static void check_layout(const quilt_map *m) {
  if (m->size == 0) {
    assert_int_equal(m->count, 0);
    return;
  }
  assert_non_null(m->slots);
  assert_int_equal(m->size & (m->size - 1), 0); /* power of two */
  assert_true(m->count * 2 <= m->size);         /* load <= 1/2 */
  size_t used = 0;
  for (size_t i = 0; i < m->size; i++) {
    if (!m->slots[i].used)
      continue;
    used++;
    /* Every slot from home to i (cyclically) is used, so a lookup reaches
     * i; and none of them holds the same key, so keys are unique (any two
     * copies would both lie on the run from their common home). */
    size_t mask = m->size - 1;
    for (size_t j = mirror_home(m->slots[i].key, m->size); j != i;
         j = (j + 1) & mask) {
      assert_true(m->slots[j].used);
      assert_true(m->slots[j].key != m->slots[i].key);
    }
  }
  assert_int_equal(used, m->count);
}

/* Finds n distinct keys (from start upwards, stepping by step) whose home in
 * a table of `size` slots is `home`. */
static void keys_with_home(uint64_t *out, size_t n, size_t size, size_t home,
                           uint64_t start, uint64_t step) {
  size_t got = 0;
  for (uint64_t k = start; got < n; k += step)
    if (mirror_home(k, size) == home)
      out[got++] = k;
}

/* Fills a map until its size is exactly `size`, with keys from a range the
 * cluster tests never use; returns how many were inserted. */
static size_t grow_to(quilt_map *m, size_t size, size_t max_fill) {
  size_t n = 0;
  while (m->size < size) {
    assert_int_equal(quilt_map_put(m, 0xF000000000000000ULL + n, 1), 0);
    n++;
  }
  assert_int_equal(m->size, size);
  /* Back out the filler, leaving an empty map of the right size. */
  for (size_t i = 0; i < n; i++)
    assert_int_equal(quilt_map_del(m, 0xF000000000000000ULL + i), 1);
  assert_int_equal(m->count, 0);
  assert_true(max_fill * 2 <= size);
  return n;
}

/* ---- basic contract ---- */

static void test_empty(void **state) {
  (void)state;
  quilt_map m;
  quilt_map_init(&m);
  uint32_t v = 77;
  assert_int_equal(quilt_map_get(&m, 0, &v), 0);
  assert_int_equal(quilt_map_get(&m, 12345, &v), 0);
  assert_int_equal(v, 77); /* untouched when absent */
  assert_int_equal(quilt_map_del(&m, 12345), 0);
  assert_int_equal(m.count, 0);
  check_layout(&m);
  quilt_map_free(&m);
  assert_int_equal(m.size, 0);
  assert_null(m.slots);
  quilt_map_free(&m); /* freeing twice after init state is harmless */
}

static void test_put_get_replace_del(void **state) {
  (void)state;
  quilt_map m;
  quilt_map_init(&m);
  assert_int_equal(quilt_map_put(&m, 42, 1), 0);
  assert_int_equal(quilt_map_put(&m, 0, 2), 0); /* key 0 is a key */
  assert_int_equal(quilt_map_put(&m, UINT64_MAX, 3), 0);
  assert_int_equal(m.count, 3);
  uint32_t v = 0;
  assert_int_equal(quilt_map_get(&m, 42, &v), 1);
  assert_int_equal(v, 1);
  assert_int_equal(quilt_map_get(&m, 0, &v), 1);
  assert_int_equal(v, 2);
  assert_int_equal(quilt_map_get(&m, UINT64_MAX, &v), 1);
  assert_int_equal(v, 3);
  assert_int_equal(quilt_map_get(&m, 43, &v), 0);

  /* Replace keeps the count. */
  assert_int_equal(quilt_map_put(&m, 42, UINT32_MAX), 0);
  assert_int_equal(m.count, 3);
  assert_int_equal(quilt_map_get(&m, 42, &v), 1);
  assert_int_equal(v, UINT32_MAX);

  assert_int_equal(quilt_map_del(&m, 42), 1);
  assert_int_equal(quilt_map_del(&m, 42), 0);
  assert_int_equal(quilt_map_get(&m, 42, &v), 0);
  assert_int_equal(m.count, 2);
  assert_int_equal(quilt_map_del(&m, 0), 1);
  assert_int_equal(quilt_map_del(&m, UINT64_MAX), 1);
  assert_int_equal(m.count, 0);
  check_layout(&m);

  /* Reusable after emptying. */
  assert_int_equal(quilt_map_put(&m, 42, 9), 0);
  assert_int_equal(quilt_map_get(&m, 42, &v), 1);
  assert_int_equal(v, 9);
  quilt_map_free(&m);
}

/* The mirror of home() matches where the map really puts a lone key. */
static void test_home_mirror(void **state) {
  (void)state;
  quilt_rng r;
  quilt_rng_init(&r, 1, 1);
  for (int i = 0; i < 200; i++) {
    quilt_map m;
    quilt_map_init(&m);
    size_t target = (size_t)16 << (i % 6);
    grow_to(&m, target, 0);
    uint64_t k = quilt_rng_u64(&r);
    assert_int_equal(quilt_map_put(&m, k, 5), 0);
    assert_int_equal(slot_of(&m, k), mirror_home(k, m.size));
    quilt_map_free(&m);
  }
}

static void test_growth(void **state) {
  (void)state;
  quilt_map m;
  quilt_map_init(&m);
  size_t last_size = 0;
  int grew = 0;
  for (uint32_t i = 0; i < 20000; i++) {
    assert_int_equal(quilt_map_put(&m, (uint64_t)i * 7919u, i), 0);
    assert_int_equal(m.count, i + 1);
    assert_true(m.count * 2 <= m.size);
    if (m.size != last_size) {
      grew++;
      last_size = m.size;
    }
  }
  assert_true(grew >= 10); /* 16 .. 65536 */
  check_layout(&m);
  for (uint32_t i = 0; i < 20000; i++) {
    uint32_t v;
    assert_int_equal(quilt_map_get(&m, (uint64_t)i * 7919u, &v), 1);
    assert_int_equal(v, i);
  }
  /* Deleting everything leaves an empty, usable table. */
  for (uint32_t i = 0; i < 20000; i += 2)
    assert_int_equal(quilt_map_del(&m, (uint64_t)i * 7919u), 1);
  check_layout(&m);
  for (uint32_t i = 0; i < 20000; i++) {
    uint32_t v;
    assert_int_equal(quilt_map_get(&m, (uint64_t)i * 7919u, &v), i & 1);
  }
  for (uint32_t i = 1; i < 20000; i += 2)
    assert_int_equal(quilt_map_del(&m, (uint64_t)i * 7919u), 1);
  assert_int_equal(m.count, 0);
  check_layout(&m);
  quilt_map_free(&m);
}

/* ---- clusters built on purpose ---- */

/* Deletes each position of a cluster of keys sharing one home slot (plus
 * keys homed just after it, which the cluster displaces) and checks that
 * every other key stays reachable. */
static void cluster_case(size_t size, size_t home) {
  enum { SAME = 5, NEXT = 2 };
  uint64_t same[SAME], next1[NEXT], next2[NEXT];
  keys_with_home(same, SAME, size, home, 1, 1);
  keys_with_home(next1, NEXT, size, (home + 1) & (size - 1), 1, 1);
  keys_with_home(next2, NEXT, size, (home + 3) & (size - 1), 1, 1);
  uint64_t all[SAME + 2 * NEXT];
  size_t n = 0;
  /* Interleave insertions so that displaced keys sit inside the run. */
  all[n++] = same[0];
  all[n++] = next1[0];
  all[n++] = same[1];
  all[n++] = next2[0];
  all[n++] = same[2];
  all[n++] = next1[1];
  all[n++] = same[3];
  all[n++] = next2[1];
  all[n++] = same[4];

  for (size_t victim = 0; victim < n; victim++) {
    quilt_map m;
    quilt_map_init(&m);
    grow_to(&m, size, n);
    for (size_t i = 0; i < n; i++)
      assert_int_equal(quilt_map_put(&m, all[i], (uint32_t)(100 + i)), 0);
    assert_int_equal(m.size, size); /* no growth: the cluster is intact */
    /* One contiguous run starting at home. */
    for (size_t i = 0; i < n; i++)
      assert_true(m.slots[(home + i) & (size - 1)].used);
    check_layout(&m);

    assert_int_equal(quilt_map_del(&m, all[victim]), 1);
    check_layout(&m);
    for (size_t i = 0; i < n; i++) {
      uint32_t v = 0;
      int want = i != victim;
      assert_int_equal(quilt_map_get(&m, all[i], &v), want);
      if (want)
        assert_int_equal(v, 100 + i);
    }
    /* Then delete the rest in a scrambled order, checking as we go. */
    for (size_t s = 0; s < n; s++) {
      size_t i = (s * 5 + victim) % n; /* 5 is coprime with n = 9 */
      if (i == victim)
        continue;
      assert_int_equal(quilt_map_del(&m, all[i]), 1);
      check_layout(&m);
      uint32_t v;
      assert_int_equal(quilt_map_get(&m, all[i], &v), 0);
    }
    assert_int_equal(m.count, 0);
    quilt_map_free(&m);
  }
}

static void test_cluster_middle(void **state) {
  (void)state;
  cluster_case(32, 10);
  cluster_case(64, 0);
}

/* A cluster whose home is the last slot wraps to slot 0. */
static void test_cluster_wraps(void **state) {
  (void)state;
  cluster_case(32, 31);
  cluster_case(32, 29);
  cluster_case(128, 126);
}

/* Keys equal in their low 32 (or 48) bits, and keys that are multiples of
 * the table size: a weak hash would pile them all into one slot. */
static void test_low_bit_collisions(void **state) {
  (void)state;
  quilt_map m;
  quilt_map_init(&m);
  enum { N = 3000 };
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(quilt_map_put(&m, ((uint64_t)i << 32) | 0xABCDu, i), 0);
    assert_int_equal(quilt_map_put(&m, ((uint64_t)i << 48) | 0x1234u, i + N),
                     0);
    assert_int_equal(quilt_map_put(&m, (uint64_t)i * 65536u, i + 2 * N), 0);
  }
  /* i = 0 of the third family is key 0, distinct from the other two. */
  assert_int_equal(m.count, 3 * N);
  check_layout(&m);
  for (uint32_t i = 0; i < N; i += 3) {
    assert_int_equal(quilt_map_del(&m, ((uint64_t)i << 32) | 0xABCDu), 1);
    assert_int_equal(quilt_map_del(&m, (uint64_t)i * 65536u), 1);
  }
  check_layout(&m);
  for (uint32_t i = 0; i < N; i++) {
    uint32_t v = 0;
    int gone = i % 3 == 0;
    assert_int_equal(quilt_map_get(&m, ((uint64_t)i << 32) | 0xABCDu, &v),
                     !gone);
    if (!gone)
      assert_int_equal(v, i);
    assert_int_equal(quilt_map_get(&m, ((uint64_t)i << 48) | 0x1234u, &v), 1);
    assert_int_equal(v, i + N);
    assert_int_equal(quilt_map_get(&m, (uint64_t)i * 65536u, &v), !gone);
  }
  quilt_map_free(&m);
}

/* ---- differential test against a naive model ---- */

/* The model: parallel arrays over a fixed pool of distinct keys.  present[i]
 * says whether pool[i] is in the map, value[i] its value. */
typedef struct model {
  uint64_t *pool;
  uint8_t *present;
  uint32_t *value;
  size_t npool;
  size_t count;
} model;

/* A pool mixing key shapes: small integers, keys equal in their low bits,
 * keys equal in their high bits, random keys, and keys homed in one slot of
 * a small table. */
static void model_init(model *md, quilt_rng *r, size_t npool) {
  md->pool = calloc(npool, sizeof *md->pool);
  md->present = calloc(npool, 1);
  md->value = calloc(npool, sizeof *md->value);
  assert_non_null(md->pool);
  assert_non_null(md->present);
  assert_non_null(md->value);
  md->npool = npool;
  md->count = 0;
  size_t n = 0;
  uint64_t k = 1u << 24;
  unsigned salt = 0;
  while (n < npool) {
    uint64_t key;
    switch (n % 5) {
    case 0:
      key = n; /* small */
      break;
    case 1:
      key = ((uint64_t)n << 40) | 7u; /* same low bits */
      break;
    case 2:
      key = 0xDEADBEEF00000000ULL | n; /* same high bits */
      break;
    case 3:
      key = quilt_rng_u64(r);
      break;
    default:
      /* homed in slot 3 of a 64-slot table */
      while (mirror_home(k, 64) != 3)
        k++;
      key = k++;
      break;
    }
    key += (uint64_t)salt << 56; /* moves a clash out of the way */
    int dup = 0;
    for (size_t i = 0; i < n && !dup; i++)
      dup = md->pool[i] == key;
    if (dup) {
      salt++;
      continue;
    }
    md->pool[n++] = key;
  }
}

static void model_free(model *md) {
  free(md->pool);
  free(md->present);
  free(md->value);
}

static void model_compare(const model *md, const quilt_map *m) {
  assert_int_equal(m->count, md->count);
  for (size_t i = 0; i < md->npool; i++) {
    uint32_t v = 0xFFFFFFFFu;
    int got = quilt_map_get(m, md->pool[i], &v);
    if (got != md->present[i])
      fail_msg("key %llx: map says %d, model %d",
               (unsigned long long)md->pool[i], got, md->present[i]);
    if (got)
      assert_int_equal(v, md->value[i]);
  }
}

/* Runs `ops` random operations on keys drawn from md's pool; put_ppm is the
 * share of puts (the rest split between deletes and gets).  Returns the
 * largest count reached. */
static size_t run_ops(quilt_map *m, model *md, quilt_rng *r, unsigned ops,
                      uint32_t put_ppm, size_t npool_used,
                      unsigned check_every) {
  size_t peak = 0;
  for (unsigned op = 0; op < ops; op++) {
    size_t i = quilt_rng_below(r, (uint32_t)npool_used);
    uint64_t key = md->pool[i];
    uint32_t dice = quilt_rng_below(r, 1000000u);
    if (dice < put_ppm) {
      uint32_t v = quilt_rng_u32(r);
      assert_int_equal(quilt_map_put(m, key, v), 0);
      if (!md->present[i])
        md->count++;
      md->present[i] = 1;
      md->value[i] = v;
    } else if (dice < put_ppm + (1000000u - put_ppm) / 2) {
      int got = quilt_map_del(m, key);
      assert_int_equal(got, md->present[i]);
      if (md->present[i])
        md->count--;
      md->present[i] = 0;
    } else {
      uint32_t v = 0xFFFFFFFFu;
      int got = quilt_map_get(m, key, &v);
      assert_int_equal(got, md->present[i]);
      if (got)
        assert_int_equal(v, md->value[i]);
    }
    assert_int_equal(m->count, md->count);
    if (md->count > peak)
      peak = md->count;
    if (check_every && op % check_every == 0) {
      check_layout(m);
      model_compare(md, m);
    }
  }
  check_layout(m);
  model_compare(md, m);
  return peak;
}

/* Small table, heavy churn: deletions keep landing inside clusters. */
static void test_differential_small(void **state) {
  (void)state;
  quilt_rng r;
  quilt_rng_init(&r, 0x5eed0001u, 7);
  model md;
  model_init(&md, &r, 64);
  quilt_map m;
  quilt_map_init(&m);
  for (int round = 0; round < 20; round++) {
    /* The pool keys of shape 4 all share home slot 3 of a 64-slot table,
     * so long clusters form and wrap as the table grows and shrinks in
     * occupancy. */
    (void)run_ops(&m, &md, &r, 5000, 500000, md.npool, 1);
  }
  quilt_map_free(&m);
  model_free(&md);
}

/* Growth through many sizes with deletions interleaved, then draining to
 * empty and refilling. */
static void test_differential_growth(void **state) {
  (void)state;
  quilt_rng r;
  quilt_rng_init(&r, 0x5eed0002u, 9);
  model md;
  model_init(&md, &r, 4000);
  quilt_map m;
  quilt_map_init(&m);
  size_t peak = run_ops(&m, &md, &r, 60000, 750000, md.npool, 997);
  assert_true(peak > 2500);
  assert_true(m.size >= 4096);
  /* Drain: deletes dominate. */
  (void)run_ops(&m, &md, &r, 60000, 100000, md.npool, 997);
  assert_true(md.count < 1000);
  /* Delete whatever is left through the model, checking each time. */
  for (size_t i = 0; i < md.npool; i++) {
    if (!md.present[i])
      continue;
    assert_int_equal(quilt_map_del(&m, md.pool[i]), 1);
    md.present[i] = 0;
    md.count--;
    if (i % 50 == 0) {
      check_layout(&m);
      model_compare(&md, &m);
    }
  }
  assert_int_equal(m.count, 0);
  check_layout(&m);
  /* Refill a narrow slice of the pool: a large, sparse table. */
  (void)run_ops(&m, &md, &r, 20000, 600000, 300, 499);
  quilt_map_free(&m);
  model_free(&md);
}

/* Many seeds, short runs: different cluster shapes each time. */
static void test_differential_seeds(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    quilt_rng r;
    quilt_rng_init(&r, seed, 3);
    model md;
    model_init(&md, &r, 200);
    quilt_map m;
    quilt_map_init(&m);
    (void)run_ops(&m, &md, &r, 3000, 550000, md.npool, 7);
    quilt_map_free(&m);
    model_free(&md);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_put_get_replace_del),
      cmocka_unit_test(test_home_mirror),
      cmocka_unit_test(test_growth),
      cmocka_unit_test(test_cluster_middle),
      cmocka_unit_test(test_cluster_wraps),
      cmocka_unit_test(test_low_bit_collisions),
      cmocka_unit_test(test_differential_small),
      cmocka_unit_test(test_differential_growth),
      cmocka_unit_test(test_differential_seeds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
