/*
 * map.h -- an open-addressing hash map from 64-bit keys to 32-bit values.
 *
 * Linear probing with backward-shift deletion (Knuth, TAOCP vol. 3, 6.4,
 * Algorithm R), so that lookups stay short after many deletions and no
 * tombstones accumulate.  Grows to keep the load under 1/2.
 */
#ifndef QUILT_MAP_H
#define QUILT_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct quilt_map_slot {
  uint64_t key;
  uint32_t value;
  uint32_t used;
} quilt_map_slot;

typedef struct quilt_map {
  quilt_map_slot *slots;
  size_t size; /* power of two, or 0 */
  size_t count;
} quilt_map;

void quilt_map_init(quilt_map *m);
void quilt_map_free(quilt_map *m);
/* Returns 1 and sets *value when key is present, 0 otherwise. */
int quilt_map_get(const quilt_map *m, uint64_t key, uint32_t *value);
/* Inserts or replaces; returns 0 or QUILT_ERR_NOMEM. */
int quilt_map_put(quilt_map *m, uint64_t key, uint32_t value);
/* Removes key; returns 1 when it was present. */
int quilt_map_del(quilt_map *m, uint64_t key);

#endif /* QUILT_MAP_H */
