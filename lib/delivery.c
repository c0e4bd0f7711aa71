/*
 * delivery.c -- exactly-once ordered delivery, retention, gap bookkeeping.
 *
 * Data structures, each bounded:
 *   - origins: an array of per-origin states, indexed by an open-addressing
 *     table (linear probing) keyed by origin id; at most
 *     QUILT_DELIVERY_MAX_ORIGINS.
 *   - held messages: per origin, a ring of QUILT_DELIVERY_REORDER_MAX slots,
 *     allocated only while a gap is open (most origins never need one).
 *   - retention: a FIFO ring of copies of every accepted message, evicted
 *     oldest first when over retention_bytes or older than retention_ns,
 *     indexed by (origin, seq) in a second open-addressing table with
 *     backward-shift deletion (no tombstones, so lookups stay short).
 */
#include "delivery.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"

typedef struct held_msg {
  quilt_msg_data d; /* payload points at the bytes after this struct */
} held_msg;

/* When missing seqs were first known to exist: seqs from `seq` up to the
 * next mark's seq became known at `ns` (when the highest known seq first
 * passed them).  A run of missing messages is given up repair_timeout after
 * its first seq became known, so that holes noticed together are declared
 * lost together, and a hole noticed later still gets its full repair time.
 * (Fix: expire used to give up only the oldest run and restart the clock of
 * the next one at `now`, so k holes noticed at once took k timeouts to
 * report, and the messages held behind them waited as long.) */
#define GAP_MARKS_MAX 32 /* marks per origin with an open gap */

typedef struct gap_mark {
  uint64_t seq;
  uint64_t ns;
} gap_mark;

typedef struct origin_state {
  uint64_t origin;
  uint32_t origin_patch;
  uint64_t next;         /* next seq to deliver */
  uint64_t highest;      /* highest seq known to exist; next-1 when none */
  uint64_t gap_since_ns; /* 0 when no gap is open */
  held_msg **held;       /* REORDER_MAX slots (seq % REORDER_MAX) or NULL */
  uint32_t nheld;
  int32_t gap_pos; /* index in gap list, -1 when none */
  gap_mark *marks; /* GAP_MARKS_MAX slots while a gap is open, or NULL */
  uint32_t nmarks; /* ascending seq and ns; marks[0] covers next */
} origin_state;

typedef struct ret_entry {
  uint64_t origin;
  uint64_t seq;
  uint64_t ts_ns;
  uint64_t arrival_ns;
  uint32_t origin_patch;
  uint16_t len;
  uint8_t *payload;
} ret_entry;

struct quilt_delivery {
  quilt_delivery_config cfg;
  quilt_delivery_callbacks cb;
  void *user;
  uint64_t catchup; /* first contact at seq s starts at s - catchup */

  origin_state *origins;
  uint32_t norigins, cap_origins;
  uint32_t *otab; /* origin index + 1, 0 = empty; size otab_size (pow2) */
  uint32_t otab_size;

  uint32_t *gaps; /* origin indices with an open gap */
  uint32_t ngaps, cap_gaps;

  ret_entry *ring; /* retention FIFO */
  uint32_t ring_cap, ring_head, ring_len;
  uint32_t *rtab; /* ring position + 1, 0 = empty; size rtab_size (pow2) */
  uint32_t rtab_size;
  size_t ret_bytes;

  quilt_delivery_counters ctr;
};

static uint64_t mix64(uint64_t x) {
  /* splitmix64 finaliser: spreads node ids and seqs over the table. */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/* ---- origin table ---- */

static int otab_resize(quilt_delivery *d, uint32_t size) {
  uint32_t *t = calloc(size, sizeof *t);
  if (!t)
    return QUILT_ERR_NOMEM;
  for (uint32_t i = 0; i < d->norigins; i++) {
    uint32_t h = (uint32_t)mix64(d->origins[i].origin) & (size - 1);
    while (t[h])
      h = (h + 1) & (size - 1);
    t[h] = i + 1;
  }
  free(d->otab);
  d->otab = t;
  d->otab_size = size;
  return 0;
}

static origin_state *origin_find(const quilt_delivery *d, uint64_t origin) {
  uint32_t mask = d->otab_size - 1;
  for (uint32_t h = (uint32_t)mix64(origin) & mask;; h = (h + 1) & mask) {
    uint32_t v = d->otab[h];
    if (!v)
      return NULL;
    if (d->origins[v - 1].origin == origin)
      return &d->origins[v - 1];
  }
}

static origin_state *origin_add(quilt_delivery *d, uint64_t origin,
                                uint32_t origin_patch, uint64_t first_seq) {
  if (d->norigins >= QUILT_DELIVERY_MAX_ORIGINS)
    return NULL;
  if (d->norigins == d->cap_origins) {
    uint32_t cap = d->cap_origins ? d->cap_origins * 2 : 16;
    origin_state *o = realloc(d->origins, cap * sizeof *o);
    if (!o)
      return NULL;
    d->origins = o;
    d->cap_origins = cap;
  }
  if ((d->norigins + 1) * 2 > d->otab_size &&
      otab_resize(d, d->otab_size * 2) != 0)
    return NULL;
  origin_state *o = &d->origins[d->norigins];
  memset(o, 0, sizeof *o);
  o->origin = origin;
  o->origin_patch = origin_patch;
  /* First contact at seq s: also try to recover the few messages before it
   * (a loss of the very first packets must not go unnoticed), but not a
   * long-running origin's whole history. */
  o->next = first_seq > d->catchup ? first_seq - d->catchup : 1;
  o->highest = o->next - 1;
  o->gap_pos = -1;
  uint32_t mask = d->otab_size - 1;
  uint32_t h = (uint32_t)mix64(origin) & mask;
  while (d->otab[h])
    h = (h + 1) & mask;
  d->otab[h] = ++d->norigins;
  return o;
}

/* ---- gap marks ---- */

/* Records that seqs from `first` on became known to exist at `now`. */
static void mark_add(origin_state *o, uint64_t first, uint64_t now) {
  while (o->nmarks >= 2 && o->marks[1].seq <= o->next) {
    memmove(&o->marks[0], &o->marks[1], (o->nmarks - 1) * sizeof o->marks[0]);
    o->nmarks--;
  }
  if (!o->marks) {
    o->marks = malloc(GAP_MARKS_MAX * sizeof *o->marks);
    if (!o->marks)
      return; /* later holes then age from the oldest one's time */
  }
  if (o->nmarks == GAP_MARKS_MAX) {
    /* Full: the newest mark absorbs these seqs and takes the later time,
     * so that none is declared lost early (some are declared late). */
    o->marks[o->nmarks - 1].ns = now;
    return;
  }
  o->marks[o->nmarks].seq = first;
  o->marks[o->nmarks].ns = now;
  o->nmarks++;
}

/* When o->next first became known to exist, or `dflt` when no mark says. */
static uint64_t mark_time(const origin_state *o, uint64_t dflt) {
  uint64_t t = dflt;
  for (uint32_t i = 0; i < o->nmarks && o->marks[i].seq <= o->next; i++)
    t = o->marks[i].ns;
  return t;
}

/* ---- gap list ---- */

static void gap_update(quilt_delivery *d, origin_state *o, uint64_t now) {
  int open = o->highest >= o->next;
  if (open && o->gap_pos >= 0) {
    /* The oldest gap may now be a later one (skipped or filled). */
    uint64_t t = mark_time(o, o->gap_since_ns);
    o->gap_since_ns = t ? t : 1;
  }
  if (!open && o->marks) {
    free(o->marks);
    o->marks = NULL;
    o->nmarks = 0;
  }
  if (open && o->gap_pos < 0) {
    if (d->ngaps == d->cap_gaps) {
      uint32_t cap = d->cap_gaps ? d->cap_gaps * 2 : 16;
      uint32_t *g = realloc(d->gaps, cap * sizeof *g);
      if (!g)
        return; /* tracked again on the next update */
      d->gaps = g;
      d->cap_gaps = cap;
    }
    o->gap_pos = (int32_t)d->ngaps;
    d->gaps[d->ngaps++] = (uint32_t)(o - d->origins);
    uint64_t t = mark_time(o, now);
    o->gap_since_ns = t ? t : 1;
  } else if (!open && o->gap_pos >= 0) {
    uint32_t last = d->gaps[--d->ngaps];
    d->gaps[o->gap_pos] = last;
    d->origins[last].gap_pos = o->gap_pos;
    o->gap_pos = -1;
    o->gap_since_ns = 0;
  }
}

/* ---- retention ---- */

static uint32_t rhash(uint64_t origin, uint64_t seq) {
  return (uint32_t)mix64(origin ^ mix64(seq));
}

static void rtab_insert(quilt_delivery *d, uint32_t pos) {
  const ret_entry *e = &d->ring[pos];
  uint32_t mask = d->rtab_size - 1;
  uint32_t h = rhash(e->origin, e->seq) & mask;
  while (d->rtab[h])
    h = (h + 1) & mask;
  d->rtab[h] = pos + 1;
}

static int rtab_rebuild(quilt_delivery *d, uint32_t size) {
  uint32_t *t = calloc(size, sizeof *t);
  if (!t)
    return QUILT_ERR_NOMEM;
  free(d->rtab);
  d->rtab = t;
  d->rtab_size = size;
  for (uint32_t i = 0; i < d->ring_len; i++)
    rtab_insert(d, (d->ring_head + i) % d->ring_cap);
  return 0;
}

static int32_t rtab_find(const quilt_delivery *d, uint64_t origin,
                         uint64_t seq) {
  if (!d->rtab_size)
    return -1;
  uint32_t mask = d->rtab_size - 1;
  for (uint32_t h = rhash(origin, seq) & mask;; h = (h + 1) & mask) {
    uint32_t v = d->rtab[h];
    if (!v)
      return -1;
    const ret_entry *e = &d->ring[v - 1];
    if (e->origin == origin && e->seq == seq)
      return (int32_t)(v - 1);
  }
}

/* Removes slot h and shifts the following cluster back (Knuth 6.4 R). */
static void rtab_delete_slot(quilt_delivery *d, uint32_t h) {
  uint32_t mask = d->rtab_size - 1;
  uint32_t i = h;
  for (;;) {
    d->rtab[i] = 0;
    uint32_t j = i;
    for (;;) {
      j = (j + 1) & mask;
      uint32_t v = d->rtab[j];
      if (!v)
        return;
      const ret_entry *e = &d->ring[v - 1];
      uint32_t k = rhash(e->origin, e->seq) & mask;
      /* Move v back to i unless its home k lies cyclically in (i, j]. */
      if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
        continue;
      d->rtab[i] = v;
      i = j;
      break;
    }
  }
}

static void ret_evict_one(quilt_delivery *d) {
  assert(d->ring_len > 0);
  ret_entry *e = &d->ring[d->ring_head];
  uint32_t mask = d->rtab_size - 1;
  for (uint32_t h = rhash(e->origin, e->seq) & mask;; h = (h + 1) & mask) {
    assert(d->rtab[h]);
    if (d->rtab[h] == d->ring_head + 1) {
      rtab_delete_slot(d, h);
      break;
    }
  }
  d->ret_bytes -= e->len;
  free(e->payload);
  e->payload = NULL;
  d->ring_head = (d->ring_head + 1) % d->ring_cap;
  d->ring_len--;
  d->ctr.evicted++;
}

static void ret_trim(quilt_delivery *d, uint64_t now) {
  while (d->ring_len > 0) {
    const ret_entry *e = &d->ring[d->ring_head];
    int too_old = now > d->cfg.retention_ns &&
                  e->arrival_ns < now - d->cfg.retention_ns;
    if (!too_old && d->ret_bytes <= d->cfg.retention_bytes)
      break;
    ret_evict_one(d);
  }
}

static int ret_grow(quilt_delivery *d) {
  uint32_t cap = d->ring_cap ? d->ring_cap * 2 : 64;
  ret_entry *r = malloc(cap * sizeof *r);
  if (!r)
    return QUILT_ERR_NOMEM;
  for (uint32_t i = 0; i < d->ring_len; i++)
    r[i] = d->ring[(d->ring_head + i) % d->ring_cap];
  free(d->ring);
  d->ring = r;
  d->ring_cap = cap;
  d->ring_head = 0;
  return rtab_rebuild(d, cap * 2);
}

static void ret_add(quilt_delivery *d, const quilt_msg_data *m, uint64_t now) {
  if (d->cfg.retention_bytes == 0)
    return;
  if (d->ring_len == d->ring_cap && ret_grow(d) != 0)
    return; /* out of memory: the message is delivered, not retained */
  uint8_t *copy = malloc(m->len ? m->len : 1);
  if (!copy)
    return;
  if (m->len)
    memcpy(copy, m->payload, m->len);
  uint32_t pos = (d->ring_head + d->ring_len) % d->ring_cap;
  ret_entry *e = &d->ring[pos];
  e->origin = m->origin;
  e->seq = m->seq;
  e->ts_ns = m->ts_ns;
  e->arrival_ns = now;
  e->origin_patch = m->origin_patch;
  e->len = m->len;
  e->payload = copy;
  d->ring_len++;
  d->ret_bytes += m->len;
  rtab_insert(d, pos);
  ret_trim(d, now);
}

/* ---- delivery ---- */

static void deliver_one(quilt_delivery *d, const quilt_msg_data *m,
                        uint64_t now) {
  d->ctr.delivered++;
  if (d->cb.deliver)
    d->cb.deliver(d->user, m, now);
}

/* Delivers held messages that became in order. */
static void drain_held(quilt_delivery *d, origin_state *o, uint64_t now) {
  while (o->nheld > 0) {
    held_msg **slot = &o->held[o->next % QUILT_DELIVERY_REORDER_MAX];
    held_msg *h = *slot;
    if (!h || h->d.seq != o->next)
      break;
    *slot = NULL;
    o->nheld--;
    o->next++;
    deliver_one(d, &h->d, now);
    free(h);
  }
  if (o->nheld == 0 && o->held) {
    free(o->held);
    o->held = NULL;
  }
}

/* The first seq in [from, limit) that is held, or limit.  Held messages
 * lie within the window after o->next, so this looks at most
 * QUILT_DELIVERY_REORDER_MAX slots, however far apart from and limit are
 * (a forged seq 2^40 costs no more than seq 3). */
static uint64_t next_held(const origin_state *o, uint64_t from,
                          uint64_t limit) {
  if (!o->held)
    return limit;
  uint64_t window_end = o->next + QUILT_DELIVERY_REORDER_MAX;
  uint64_t end = limit < window_end ? limit : window_end;
  for (uint64_t s = from; s < end; s++) {
    const held_msg *h = o->held[s % QUILT_DELIVERY_REORDER_MAX];
    if (h && h->d.seq == s)
      return s;
  }
  return limit;
}

/* Skips [o->next, upto) as lost (except held messages, which are delivered
 * in order), reporting each missing run as one loss event. */
static size_t skip_to(quilt_delivery *d, origin_state *o, uint64_t upto,
                      uint64_t now) {
  size_t events = 0;
  while (o->next < upto) {
    uint64_t first = o->next;
    uint64_t end = next_held(o, first, upto);
    if (end == first) {
      drain_held(d, o, now);
      continue;
    }
    o->next = end;
    uint64_t count = end - first;
    d->ctr.loss_events++;
    d->ctr.lost_messages += count;
    events++;
    if (d->cb.loss)
      d->cb.loss(d->user, o->origin, first, count, now);
  }
  drain_held(d, o, now);
  return events;
}

static int hold(quilt_delivery *d, origin_state *o, const quilt_msg_data *m,
                uint64_t now) {
  if (m->seq - o->next >= QUILT_DELIVERY_REORDER_MAX) {
    /* No room behind the gap: give up on the oldest missing messages so
     * that m fits (reported, never silent). */
    (void)skip_to(d, o, m->seq - QUILT_DELIVERY_REORDER_MAX + 1, now);
    if (m->seq == o->next)
      return 1; /* deliverable now */
  }
  if (!o->held) {
    o->held = calloc(QUILT_DELIVERY_REORDER_MAX, sizeof *o->held);
    if (!o->held)
      return QUILT_ERR_NOMEM;
  }
  held_msg **slot = &o->held[m->seq % QUILT_DELIVERY_REORDER_MAX];
  if (*slot)
    return 0; /* duplicate of a held message */
  held_msg *h = malloc(sizeof *h + (m->len ? m->len : 1));
  if (!h)
    return QUILT_ERR_NOMEM;
  h->d = *m;
  memcpy((uint8_t *)(h + 1), m->payload, m->len);
  h->d.payload = (const uint8_t *)(h + 1);
  *slot = h;
  o->nheld++;
  return 2;
}

int quilt_delivery_offer(quilt_delivery *d, const quilt_msg_data *m,
                         uint64_t now) {
  if (m->seq == 0 || m->seq > QUILT_DELIVERY_MAX_SEQ) {
    d->ctr.refused++;
    return QUILT_ERR_MALFORMED;
  }
  origin_state *o = origin_find(d, m->origin);
  if (!o) {
    o = origin_add(d, m->origin, m->origin_patch, m->seq);
    if (!o) {
      d->ctr.refused++;
      return QUILT_ERR_LIMIT;
    }
  }
  if (m->seq < o->next) {
    d->ctr.duplicates++;
    return QUILT_ACCEPT_DUPLICATE;
  }
  if (o->held && m->seq > o->next) {
    held_msg *h = o->held[m->seq % QUILT_DELIVERY_REORDER_MAX];
    if (h && h->d.seq == m->seq) {
      d->ctr.duplicates++;
      return QUILT_ACCEPT_DUPLICATE;
    }
  }
  o->origin_patch = m->origin_patch;
  if (m->seq > o->highest) {
    if (m->seq > o->highest + 1)
      mark_add(o, o->highest + 1, now);
    o->highest = m->seq;
  }
  ret_add(d, m, now);
  if (m->seq == o->next) {
    o->next++;
    deliver_one(d, m, now);
    drain_held(d, o, now);
  } else {
    int rc = hold(d, o, m, now);
    if (rc < 0) {
      d->ctr.refused++;
      return rc;
    }
    if (rc == 1) {
      o->next++;
      deliver_one(d, m, now);
      drain_held(d, o, now);
    }
  }
  int had_gap = o->gap_pos >= 0;
  gap_update(d, o, now);
  (void)had_gap;
  assert(o->next <= o->highest + 1);
  return QUILT_ACCEPT_NEW;
}

int quilt_delivery_announce(quilt_delivery *d, uint64_t origin, uint64_t seq,
                            uint32_t origin_patch, uint64_t now) {
  if (seq == 0 || seq > QUILT_DELIVERY_MAX_SEQ)
    return 0;
  origin_state *o = origin_find(d, origin);
  if (!o) {
    o = origin_add(d, origin, origin_patch, seq);
    if (!o) {
      d->ctr.refused++;
      return 0;
    }
  }
  if (origin_patch && !o->origin_patch)
    o->origin_patch = origin_patch;
  if (seq <= o->highest)
    return 0;
  int had_gap = o->gap_pos >= 0;
  mark_add(o, o->highest + 1, now);
  o->highest = seq;
  gap_update(d, o, now);
  return !had_gap && o->gap_pos >= 0;
}

size_t quilt_delivery_missing(const quilt_delivery *d, uint64_t origin,
                              quilt_nack_range *out, size_t max) {
  const origin_state *o = origin_find(d, origin);
  if (!o)
    return 0;
  size_t n = 0;
  uint64_t s = o->next;
  uint64_t end = o->highest + 1;
  while (s < end && n < max) {
    uint64_t run_end = next_held(o, s, end);
    if (run_end == s) {
      s++;
      continue;
    }
    uint64_t count = run_end - s;
    out[n].first = s;
    out[n].count = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
    n++;
    s = run_end;
  }
  return n;
}

size_t quilt_delivery_gaps(const quilt_delivery *d, uint64_t *out,
                           size_t max) {
  size_t n = d->ngaps < max ? d->ngaps : max;
  for (size_t i = 0; i < n; i++)
    out[i] = d->origins[d->gaps[i]].origin;
  return d->ngaps;
}

size_t quilt_delivery_expire(quilt_delivery *d, uint64_t now) {
  size_t events = 0;
  ret_trim(d, now);
  for (uint32_t i = 0; i < d->ngaps;) {
    origin_state *o = &d->origins[d->gaps[i]];
    /* Give up, oldest first, on each run of missing messages known for
     * repair_timeout; the runs behind one known for less may still be
     * repaired. */
    while (o->next <= o->highest && o->gap_since_ns <= now &&
           now - o->gap_since_ns >= d->cfg.repair_timeout_ns) {
      uint64_t upto = next_held(o, o->next, o->highest + 1);
      events += skip_to(d, o, upto, now);
      if (o->next <= o->highest) {
        uint64_t t = mark_time(o, now); /* no mark: a full timeout more */
        o->gap_since_ns = t ? t : 1;
      }
    }
    uint32_t before = d->ngaps;
    gap_update(d, o, now);
    if (d->ngaps == before)
      i++;
    /* else: o left the list and another origin moved into slot i */
  }
  return events;
}

uint64_t quilt_delivery_expiry(const quilt_delivery *d) {
  uint64_t t = UINT64_MAX;
  for (uint32_t i = 0; i < d->ngaps; i++) {
    uint64_t e = d->origins[d->gaps[i]].gap_since_ns +
                 d->cfg.repair_timeout_ns;
    if (e < t)
      t = e;
  }
  if (d->ring_len > 0) {
    uint64_t e = d->ring[d->ring_head].arrival_ns + d->cfg.retention_ns + 1;
    if (e < t)
      t = e;
  }
  return t;
}

int quilt_delivery_lookup(quilt_delivery *d, uint64_t origin, uint64_t seq,
                          uint64_t now, quilt_msg_data *m) {
  ret_trim(d, now);
  int32_t pos = rtab_find(d, origin, seq);
  if (pos < 0)
    return 0;
  const ret_entry *e = &d->ring[pos];
  memset(m, 0, sizeof *m);
  m->origin = e->origin;
  m->seq = e->seq;
  m->ts_ns = e->ts_ns;
  m->origin_patch = e->origin_patch;
  m->len = e->len;
  m->payload = e->payload;
  return 1;
}

int quilt_delivery_has(const quilt_delivery *d, uint64_t origin,
                       uint64_t seq) {
  const origin_state *o = origin_find(d, origin);
  if (!o)
    return 0;
  if (seq < o->next)
    return 1;
  const held_msg *h = o->held ? o->held[seq % QUILT_DELIVERY_REORDER_MAX]
                              : NULL;
  return h && h->d.seq == seq;
}

static void view_of(const origin_state *o, quilt_origin_view *v) {
  v->origin = o->origin;
  v->origin_patch = o->origin_patch;
  v->next = o->next;
  v->highest = o->highest;
  v->gap_since_ns = o->gap_since_ns;
}

int quilt_delivery_origin(const quilt_delivery *d, uint64_t origin,
                          quilt_origin_view *v) {
  const origin_state *o = origin_find(d, origin);
  if (!o)
    return 0;
  view_of(o, v);
  return 1;
}

void quilt_delivery_foreach(const quilt_delivery *d,
                            void (*fn)(void *arg, const quilt_origin_view *v),
                            void *arg) {
  for (uint32_t i = 0; i < d->norigins; i++) {
    quilt_origin_view v;
    view_of(&d->origins[i], &v);
    fn(arg, &v);
  }
}

void quilt_delivery_counters_get(const quilt_delivery *d,
                                 quilt_delivery_counters *c) {
  *c = d->ctr;
  c->retained_bytes = d->ret_bytes;
  c->retained_messages = d->ring_len;
}

int quilt_delivery_new(quilt_delivery **out, const quilt_delivery_config *cfg,
                       const quilt_delivery_callbacks *cb, void *user) {
  quilt_delivery *d = calloc(1, sizeof *d);
  if (!d)
    return QUILT_ERR_NOMEM;
  d->cfg = *cfg;
  if (cb)
    d->cb = *cb;
  d->user = user;
  d->catchup = QUILT_DELIVERY_CATCHUP;
  if (otab_resize(d, 64) != 0) {
    free(d);
    return QUILT_ERR_NOMEM;
  }
  *out = d;
  return 0;
}

void quilt_delivery_del(quilt_delivery *d) {
  if (!d)
    return;
  for (uint32_t i = 0; i < d->norigins; i++) {
    origin_state *o = &d->origins[i];
    if (o->held) {
      for (uint32_t j = 0; j < QUILT_DELIVERY_REORDER_MAX; j++)
        free(o->held[j]);
      free(o->held);
    }
    free(o->marks);
  }
  while (d->ring_len > 0) {
    free(d->ring[d->ring_head].payload);
    d->ring_head = (d->ring_head + 1) % d->ring_cap;
    d->ring_len--;
  }
  free(d->ring);
  free(d->rtab);
  free(d->origins);
  free(d->otab);
  free(d->gaps);
  free(d);
}

void quilt_delivery_set_catchup(quilt_delivery *d, uint64_t catchup) {
  d->catchup = catchup;
}
