/* map.c -- see map.h. */
#include "map.h"

#include <stdlib.h>

#include "quilt.h"

static size_t home(const quilt_map *m, uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  return (size_t)key & (m->size - 1);
}

void quilt_map_init(quilt_map *m) {
  m->slots = NULL;
  m->size = 0;
  m->count = 0;
}

void quilt_map_free(quilt_map *m) {
  free(m->slots);
  quilt_map_init(m);
}

static size_t find(const quilt_map *m, uint64_t key, int *found) {
  size_t i = home(m, key);
  while (m->slots[i].used) {
    if (m->slots[i].key == key) {
      *found = 1;
      return i;
    }
    i = (i + 1) & (m->size - 1);
  }
  *found = 0;
  return i;
}

int quilt_map_get(const quilt_map *m, uint64_t key, uint32_t *value) {
  if (!m->size)
    return 0;
  int found;
  size_t i = find(m, key, &found);
  if (found)
    *value = m->slots[i].value;
  return found;
}

static int grow(quilt_map *m) {
  size_t size = m->size ? m->size * 2 : 16;
  quilt_map_slot *old = m->slots;
  size_t old_size = m->size;
  m->slots = calloc(size, sizeof *m->slots);
  if (!m->slots) {
    m->slots = old;
    return QUILT_ERR_NOMEM;
  }
  m->size = size;
  for (size_t j = 0; j < old_size; j++) {
    if (!old[j].used)
      continue;
    int found;
    size_t i = find(m, old[j].key, &found);
    m->slots[i] = old[j];
  }
  free(old);
  return 0;
}

int quilt_map_put(quilt_map *m, uint64_t key, uint32_t value) {
  if ((m->count + 1) * 2 > m->size && grow(m) != 0)
    return QUILT_ERR_NOMEM;
  int found;
  size_t i = find(m, key, &found);
  m->slots[i].key = key;
  m->slots[i].value = value;
  if (!found) {
    m->slots[i].used = 1;
    m->count++;
  }
  return 0;
}

int quilt_map_del(quilt_map *m, uint64_t key) {
  if (!m->size)
    return 0;
  int found;
  size_t i = find(m, key, &found);
  if (!found)
    return 0;
  size_t mask = m->size - 1;
  for (;;) {
    m->slots[i].used = 0;
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (!m->slots[j].used) {
        m->count--;
        return 1;
      }
      size_t k = home(m, m->slots[j].key);
      /* Leave slot j alone if its home lies cyclically in (i, j]. */
      if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
        continue;
      m->slots[i] = m->slots[j];
      i = j;
      break;
    }
  }
}
