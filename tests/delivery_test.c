/*
 * delivery_test.c -- exactly-once ordered delivery, gaps and loss events,
 * the reorder bound, first-contact catch-up, and the retention buffer
 * (lib/delivery.h).
 *
 * Every delivered message is recorded and its payload checked against the
 * pattern it was built with; every loss event is recorded with its exact
 * (origin, first, count).  The retention buffer is also checked against a
 * naive model (a FIFO array evicted by bytes and by age) over long random
 * runs with a fixed seed, SQLite-style, which exercises the index's
 * backward-shift deletion after many evictions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "quilt.h"
#include "rng.h"

#define MS 1000000ULL
#define T0 (1000 * MS)       /* tests start at 1 s, not at 0 */
#define REPAIR_NS (100 * MS) /* repair timeout of the default fixture */

/* ---- messages ---- */

/* Payload byte i of (origin, seq): varied, so a mix-up shows. */
static uint8_t pat(uint64_t origin, uint64_t seq, size_t i) {
  return (uint8_t)(origin * 131u + seq * 31u + i * 7u + 1u);
}

/* Default payload length of (origin, seq): 0 to 40 bytes. */
static uint16_t plen(uint64_t origin, uint64_t seq) {
  return (uint16_t)((origin * 7u + seq * 13u) % 41u);
}

static uint8_t msgbuf[QUILT_WIRE_MAX_PAYLOAD];

static quilt_msg_data make(uint64_t origin, uint64_t seq, uint16_t len) {
  quilt_msg_data m;
  memset(&m, 0, sizeof m);
  m.origin = origin;
  m.seq = seq;
  m.ts_ns = seq * 1000u + origin;
  m.origin_patch = (uint32_t)(origin % 97u) + 1u;
  m.flags = 0;
  m.len = len;
  for (size_t i = 0; i < len; i++)
    msgbuf[i] = pat(origin, seq, i);
  m.payload = msgbuf;
  return m;
}

static int payload_ok(const quilt_msg_data *m) {
  if (m->ts_ns != m->seq * 1000u + m->origin)
    return 0;
  if (m->origin_patch != (uint32_t)(m->origin % 97u) + 1u)
    return 0;
  if (m->len && !m->payload)
    return 0;
  for (size_t i = 0; i < m->len; i++)
    if (m->payload[i] != pat(m->origin, m->seq, i))
      return 0;
  return 1;
}

/* ---- recorder ---- */

typedef struct delivered {
  uint64_t origin, seq, now;
} delivered;

typedef struct lossev {
  uint64_t origin, first, count, now;
} lossev;

typedef struct rec {
  delivered *dv;
  size_t ndv, capdv;
  lossev *ls;
  size_t nls, capls;
  size_t bad_payload;
} rec;

static void on_deliver(void *user, const quilt_msg_data *m, uint64_t now) {
  rec *r = user;
  if (!payload_ok(m))
    r->bad_payload++;
  if (r->ndv == r->capdv) {
    r->capdv = r->capdv ? r->capdv * 2 : 256;
    r->dv = realloc(r->dv, r->capdv * sizeof *r->dv);
    assert_non_null(r->dv);
  }
  delivered e = {m->origin, m->seq, now};
  r->dv[r->ndv++] = e;
}

static void on_loss(void *user, uint64_t origin, uint64_t first, uint64_t count,
                    uint64_t now) {
  rec *r = user;
  if (r->nls == r->capls) {
    r->capls = r->capls ? r->capls * 2 : 64;
    r->ls = realloc(r->ls, r->capls * sizeof *r->ls);
    assert_non_null(r->ls);
  }
  lossev e = {origin, first, count, now};
  r->ls[r->nls++] = e;
}

typedef struct fx {
  quilt_delivery *d;
  rec r;
  quilt_delivery_config cfg;
} fx;

static fx *fx_new(size_t retention_bytes, uint64_t retention_ns,
                  uint64_t repair_ns) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  f->cfg.retention_bytes = retention_bytes;
  f->cfg.retention_ns = retention_ns;
  f->cfg.repair_timeout_ns = repair_ns;
  quilt_delivery_callbacks cb = {on_deliver, on_loss};
  assert_int_equal(quilt_delivery_new(&f->d, &f->cfg, &cb, &f->r), 0);
  assert_non_null(f->d);
  return f;
}

static void fx_del(fx *f) {
  assert_int_equal(f->r.bad_payload, 0);
  quilt_delivery_del(f->d);
  free(f->r.dv);
  free(f->r.ls);
  free(f);
}

static int setup(void **state) {
  *state = fx_new(1u << 20, 60000 * MS, REPAIR_NS);
  return 0;
}

static int teardown(void **state) {
  fx_del(*state);
  return 0;
}

static int offer(fx *f, uint64_t origin, uint64_t seq, uint64_t now) {
  quilt_msg_data m = make(origin, seq, plen(origin, seq));
  return quilt_delivery_offer(f->d, &m, now);
}

static void offer_new(fx *f, uint64_t origin, uint64_t seq, uint64_t now) {
  int rc = offer(f, origin, seq, now);
  if (rc != QUILT_ACCEPT_NEW)
    fail_msg("offer (%llu, %llu): got %d, want NEW", (unsigned long long)origin,
             (unsigned long long)seq, rc);
}

static void offer_dup(fx *f, uint64_t origin, uint64_t seq, uint64_t now) {
  int rc = offer(f, origin, seq, now);
  if (rc != QUILT_ACCEPT_DUPLICATE)
    fail_msg("offer (%llu, %llu): got %d, want DUPLICATE",
             (unsigned long long)origin, (unsigned long long)seq, rc);
}

/* Asserts that deliveries [from, from+n) are origin's seqs first..first+n-1.
 */
static void expect_delivered(const fx *f, size_t from, uint64_t origin,
                             uint64_t first, size_t n) {
  if (f->r.ndv < from + n)
    fail_msg("%zu deliveries, want at least %zu", f->r.ndv, from + n);
  for (size_t i = 0; i < n; i++) {
    const delivered *e = &f->r.dv[from + i];
    if (e->origin != origin || e->seq != first + i)
      fail_msg("delivery %zu is (%llu, %llu), want (%llu, %llu)", from + i,
               (unsigned long long)e->origin, (unsigned long long)e->seq,
               (unsigned long long)origin, (unsigned long long)(first + i));
  }
}

static void expect_loss(const fx *f, size_t i, uint64_t origin, uint64_t first,
                        uint64_t count, uint64_t now) {
  if (f->r.nls <= i)
    fail_msg("%zu loss events, want at least %zu", f->r.nls, i + 1);
  const lossev *e = &f->r.ls[i];
  if (e->origin != origin || e->first != first || e->count != count ||
      e->now != now)
    fail_msg("loss %zu is (%llu, %llu, %llu) at %llu, want (%llu, %llu, %llu) "
             "at %llu",
             i, (unsigned long long)e->origin, (unsigned long long)e->first,
             (unsigned long long)e->count, (unsigned long long)e->now,
             (unsigned long long)origin, (unsigned long long)first,
             (unsigned long long)count, (unsigned long long)now);
}

/* Asserts the missing ranges of origin, given as (first, count) pairs. */
static void expect_missing(const fx *f, uint64_t origin, size_t n,
                           const uint64_t *pairs) {
  quilt_nack_range out[64];
  memset(out, 0xAA, sizeof out);
  size_t got = quilt_delivery_missing(f->d, origin, out, 64);
  if (got != n)
    fail_msg("origin %llu: %zu missing ranges, want %zu",
             (unsigned long long)origin, got, n);
  for (size_t i = 0; i < n; i++)
    if (out[i].first != pairs[2 * i] || out[i].count != pairs[2 * i + 1])
      fail_msg("origin %llu range %zu: (%llu, %u), want (%llu, %llu)",
               (unsigned long long)origin, i, (unsigned long long)out[i].first,
               out[i].count, (unsigned long long)pairs[2 * i],
               (unsigned long long)pairs[2 * i + 1]);
}

static quilt_origin_view view(const fx *f, uint64_t origin) {
  quilt_origin_view v;
  memset(&v, 0, sizeof v);
  assert_int_equal(quilt_delivery_origin(f->d, origin, &v), 1);
  assert_int_equal(v.origin, origin);
  return v;
}

static quilt_delivery_counters counters(const fx *f) {
  quilt_delivery_counters c;
  quilt_delivery_counters_get(f->d, &c);
  return c;
}

static size_t ngaps(const fx *f) {
  uint64_t out[1];
  return quilt_delivery_gaps(f->d, out, 0);
}

/* ---- ordered delivery ---- */

static void test_in_order(void **state) {
  fx *f = *state;
  uint64_t o = 7;
  for (uint64_t s = 1; s <= 100; s++) {
    offer_new(f, o, s, T0 + s);
    assert_int_equal(f->r.ndv, s);
    assert_int_equal(f->r.dv[s - 1].now, T0 + s); /* delivered at once */
  }
  expect_delivered(f, 0, o, 1, 100);
  assert_int_equal(f->r.nls, 0);
  quilt_origin_view v = view(f, o);
  assert_int_equal(v.next, 101);
  assert_int_equal(v.highest, 100);
  assert_int_equal(v.gap_since_ns, 0);
  assert_int_equal(v.origin_patch, o % 97 + 1);
  expect_missing(f, o, 0, NULL);
  assert_int_equal(ngaps(f), 0);
  for (uint64_t s = 1; s <= 100; s++)
    assert_true(quilt_delivery_has(f->d, o, s));
  assert_false(quilt_delivery_has(f->d, o, 101));
  assert_false(quilt_delivery_has(f->d, o + 1, 1));
  quilt_origin_view unknown;
  assert_int_equal(quilt_delivery_origin(f->d, o + 1, &unknown), 0);
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.delivered, 100);
  assert_int_equal(c.duplicates, 0);
  assert_int_equal(c.loss_events, 0);
  assert_int_equal(c.lost_messages, 0);
  assert_int_equal(c.retained_messages, 100);
  assert_int_equal(c.refused, 0);
  /* No gap: the only timer is retention age, oldest message first. */
  assert_int_equal(quilt_delivery_expiry(f->d),
                   T0 + 1 + f->cfg.retention_ns + 1);
}

static void test_out_of_order_held(void **state) {
  fx *f = *state;
  uint64_t o = 3;
  offer_new(f, o, 1, T0);
  offer_new(f, o, 3, T0 + 1 * MS);
  offer_new(f, o, 5, T0 + 2 * MS);
  assert_int_equal(f->r.ndv, 1); /* 3 and 5 are held */
  assert_true(quilt_delivery_has(f->d, o, 3));
  assert_true(quilt_delivery_has(f->d, o, 5));
  assert_false(quilt_delivery_has(f->d, o, 2));
  assert_false(quilt_delivery_has(f->d, o, 4));
  assert_false(quilt_delivery_has(f->d, o, 6));
  const uint64_t m1[] = {2, 1, 4, 1};
  expect_missing(f, o, 2, m1);
  quilt_origin_view v = view(f, o);
  assert_int_equal(v.next, 2);
  assert_int_equal(v.highest, 5);
  assert_int_equal(v.gap_since_ns, T0 + 1 * MS); /* noticed when 3 came */
  uint64_t g[4] = {0};
  assert_int_equal(quilt_delivery_gaps(f->d, g, 4), 1);
  assert_int_equal(g[0], o);
  assert_int_equal(quilt_delivery_expiry(f->d), T0 + 1 * MS + REPAIR_NS);

  offer_new(f, o, 4, T0 + 3 * MS); /* fills the later hole: still held */
  assert_int_equal(f->r.ndv, 1);
  const uint64_t m2[] = {2, 1};
  expect_missing(f, o, 1, m2);

  offer_new(f, o, 2, T0 + 4 * MS); /* releases 2..5 in order */
  expect_delivered(f, 0, o, 1, 5);
  for (size_t i = 1; i < 5; i++)
    assert_int_equal(f->r.dv[i].now, T0 + 4 * MS);
  expect_missing(f, o, 0, NULL);
  assert_int_equal(ngaps(f), 0);
  v = view(f, o);
  assert_int_equal(v.next, 6);
  assert_int_equal(v.gap_since_ns, 0);
  assert_int_equal(quilt_delivery_expiry(f->d), T0 + f->cfg.retention_ns + 1);
  assert_int_equal(f->r.nls, 0);
  assert_int_equal(counters(f).delivered, 5);
}

/* Reverse order: everything is held until the first one arrives. */
static void test_reverse_order(void **state) {
  fx *f = *state;
  uint64_t o = 11;
  offer_new(f, o, 1, T0); /* first contact at 1: nothing before it */
  for (uint64_t s = 200; s >= 2; s--)
    offer_new(f, o, s, T0 + s);
  expect_delivered(f, 0, o, 1, 200);
  assert_int_equal(f->r.ndv, 200);
  assert_int_equal(f->r.nls, 0);
  assert_int_equal(ngaps(f), 0);
}

static void test_duplicates(void **state) {
  fx *f = *state;
  uint64_t o = 5;
  offer_new(f, o, 1, T0);
  offer_new(f, o, 2, T0);
  offer_new(f, o, 4, T0); /* held */
  quilt_delivery_counters before = counters(f);

  offer_dup(f, o, 1, T0 + 1); /* delivered already */
  offer_dup(f, o, 2, T0 + 1);
  offer_dup(f, o, 4, T0 + 1); /* held already */
  offer_dup(f, o, 4, T0 + 2);
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.duplicates, 4);
  assert_int_equal(c.delivered, before.delivered);
  assert_int_equal(c.retained_messages, before.retained_messages);
  assert_int_equal(c.retained_bytes, before.retained_bytes);
  assert_int_equal(f->r.ndv, 2);

  offer_new(f, o, 3, T0 + 3);
  expect_delivered(f, 0, o, 1, 4);
  offer_dup(f, o, 3, T0 + 4); /* after delivery */
  offer_dup(f, o, 4, T0 + 4); /* was held, now delivered */
  assert_int_equal(counters(f).duplicates, 6);
  assert_int_equal(f->r.ndv, 4);
  assert_int_equal(counters(f).delivered, 4);
}

/* ---- announcements and missing ranges ---- */

static void test_announce_tail(void **state) {
  fx *f = *state;
  uint64_t o = 9;
  for (uint64_t s = 1; s <= 5; s++)
    offer_new(f, o, s, T0);
  /* Announcing what we have, or less, changes nothing. */
  assert_int_equal(quilt_delivery_announce(f->d, o, 5, 0, T0), 0);
  assert_int_equal(quilt_delivery_announce(f->d, o, 3, 0, T0), 0);
  assert_int_equal(quilt_delivery_announce(f->d, o, 0, 0, T0), 0);
  assert_int_equal(ngaps(f), 0);

  /* Tail loss: 6..9 exist but never came. */
  assert_int_equal(quilt_delivery_announce(f->d, o, 9, 0, T0 + 5 * MS), 1);
  const uint64_t m1[] = {6, 4};
  expect_missing(f, o, 1, m1);
  quilt_origin_view v = view(f, o);
  assert_int_equal(v.next, 6);
  assert_int_equal(v.highest, 9);
  assert_int_equal(v.gap_since_ns, T0 + 5 * MS);
  assert_int_equal(ngaps(f), 1);

  /* A later announcement extends the gap but does not open a new one. */
  assert_int_equal(quilt_delivery_announce(f->d, o, 12, 0, T0 + 6 * MS), 0);
  const uint64_t m2[] = {6, 7};
  expect_missing(f, o, 1, m2);
  assert_int_equal(view(f, o).gap_since_ns, T0 + 5 * MS);
  assert_int_equal(quilt_delivery_announce(f->d, o, 8, 0, T0 + 7 * MS), 0);
  expect_missing(f, o, 1, m2);

  /* Data in the middle splits it. */
  offer_new(f, o, 9, T0 + 8 * MS);
  const uint64_t m3[] = {6, 3, 10, 3};
  expect_missing(f, o, 2, m3);
  /* The missing data arrives: the gap closes. */
  for (uint64_t s = 6; s <= 12; s++)
    if (s != 9)
      offer_new(f, o, s, T0 + 9 * MS);
  expect_delivered(f, 0, o, 1, 12);
  expect_missing(f, o, 0, NULL);
  assert_int_equal(ngaps(f), 0);
  assert_int_equal(f->r.nls, 0);
  /* A new announcement opens a new gap again. */
  assert_int_equal(quilt_delivery_announce(f->d, o, 13, 0, T0 + 10 * MS), 1);
  const uint64_t m4[] = {13, 1};
  expect_missing(f, o, 1, m4);
}

/* An announcement is the first word of an origin: the catch-up window
 * applies, and the announced seq itself is missing too. */
static void test_announce_first_contact(void **state) {
  fx *f = *state;
  assert_int_equal(quilt_delivery_announce(f->d, 40, 10, 77, T0), 1);
  const uint64_t m1[] = {1, 10};
  expect_missing(f, 40, 1, m1);
  quilt_origin_view v = view(f, 40);
  assert_int_equal(v.origin_patch, 77);
  assert_int_equal(v.next, 1);
  assert_int_equal(v.highest, 10);

  assert_int_equal(quilt_delivery_announce(f->d, 41, 1000, 0, T0), 1);
  const uint64_t m2[] = {1000 - QUILT_DELIVERY_CATCHUP,
                         QUILT_DELIVERY_CATCHUP + 1};
  expect_missing(f, 41, 1, m2);
  assert_int_equal(ngaps(f), 2);
}

static void test_missing_exact(void **state) {
  fx *f = *state;
  uint64_t o = 2;
  const uint64_t have[] = {1, 4, 5, 9, 12};
  for (size_t i = 0; i < 5; i++)
    offer_new(f, o, have[i], T0);
  assert_int_equal(quilt_delivery_announce(f->d, o, 15, 0, T0), 0);
  const uint64_t want[] = {2, 2, 6, 3, 10, 2, 13, 3};
  expect_missing(f, o, 4, want);

  /* max limits the output, oldest first. */
  quilt_nack_range out[4];
  memset(out, 0, sizeof out);
  assert_int_equal(quilt_delivery_missing(f->d, o, out, 2), 2);
  assert_int_equal(out[0].first, 2);
  assert_int_equal(out[0].count, 2);
  assert_int_equal(out[1].first, 6);
  assert_int_equal(out[1].count, 3);
  assert_int_equal(out[2].first, 0); /* not written */
  assert_int_equal(quilt_delivery_missing(f->d, o, out, 0), 0);
  assert_int_equal(quilt_delivery_missing(f->d, 999, out, 4), 0);
}

/* ---- loss ---- */

static void test_expire_tail(void **state) {
  fx *f = *state;
  uint64_t o = 4;
  for (uint64_t s = 1; s <= 5; s++)
    offer_new(f, o, s, T0);
  assert_int_equal(quilt_delivery_announce(f->d, o, 9, 0, T0 + 10 * MS), 1);
  uint64_t due = T0 + 10 * MS + REPAIR_NS;
  assert_int_equal(quilt_delivery_expiry(f->d), due);
  assert_int_equal(quilt_delivery_expire(f->d, due - 1), 0);
  assert_int_equal(f->r.nls, 0);
  assert_int_equal(quilt_delivery_expire(f->d, due), 1);
  assert_int_equal(f->r.nls, 1);
  expect_loss(f, 0, o, 6, 4, due);
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.loss_events, 1);
  assert_int_equal(c.lost_messages, 4);
  assert_int_equal(ngaps(f), 0);
  quilt_origin_view v = view(f, o);
  assert_int_equal(v.next, 10);
  assert_int_equal(v.gap_since_ns, 0);
  expect_missing(f, o, 0, NULL);
  /* Nothing more to expire. */
  assert_int_equal(quilt_delivery_expire(f->d, due + REPAIR_NS * 10), 0);
  assert_int_equal(f->r.nls, 1);
  /* A lost message that turns up late is not delivered out of order. */
  offer_dup(f, o, 7, due + 1);
  offer_new(f, o, 10, due + 2);
  expect_delivered(f, 5, o, 10, 1);
  assert_int_equal(f->r.ndv, 6);
}

/* Several holes noticed at the same time expire together: one loss event
 * per run, each followed by the messages held behind it, in order. */
static void test_expire_runs_same_time(void **state) {
  fx *f = *state;
  uint64_t o = 8;
  offer_new(f, o, 1, T0);
  offer_new(f, o, 3, T0);
  offer_new(f, o, 5, T0);
  offer_new(f, o, 6, T0);
  offer_new(f, o, 9, T0);
  const uint64_t m[] = {2, 1, 4, 1, 7, 2};
  expect_missing(f, o, 3, m);
  uint64_t due = T0 + REPAIR_NS;
  assert_int_equal(quilt_delivery_expiry(f->d), due);
  assert_int_equal(quilt_delivery_expire(f->d, due - 1), 0);
  assert_int_equal(f->r.ndv, 1);

  assert_int_equal(quilt_delivery_expire(f->d, due), 3);
  assert_int_equal(f->r.nls, 3);
  expect_loss(f, 0, o, 2, 1, due);
  expect_loss(f, 1, o, 4, 1, due);
  expect_loss(f, 2, o, 7, 2, due);
  /* 3, 5, 6 and 9 were held and come out in order. */
  assert_int_equal(f->r.ndv, 5);
  assert_int_equal(f->r.dv[1].seq, 3);
  assert_int_equal(f->r.dv[2].seq, 5);
  assert_int_equal(f->r.dv[3].seq, 6);
  assert_int_equal(f->r.dv[4].seq, 9);
  assert_int_equal(ngaps(f), 0);
  assert_int_equal(view(f, o).next, 10);
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.loss_events, 3);
  assert_int_equal(c.lost_messages, 4);
  assert_int_equal(c.delivered, 5);
}

/* Holes noticed at different times each get the full repair timeout from
 * the moment they were noticed. */
static void test_expire_runs_staggered(void **state) {
  fx *f = *state;
  uint64_t o = 12;
  uint64_t t1 = T0, t2 = T0 + 30 * MS, t3 = T0 + 70 * MS;
  offer_new(f, o, 1, t1);
  offer_new(f, o, 3, t1); /* hole {2} noticed at t1 */
  offer_new(f, o, 6, t2); /* hole {4, 5} noticed at t2 */
  assert_int_equal(quilt_delivery_announce(f->d, o, 8, 0, t3), 0);
  /* tail {7, 8} at t3 */
  assert_int_equal(view(f, o).gap_since_ns, t1);

  assert_int_equal(quilt_delivery_expire(f->d, t1 + REPAIR_NS), 1);
  expect_loss(f, 0, o, 2, 1, t1 + REPAIR_NS);
  assert_int_equal(f->r.ndv, 2); /* 1, 3 */
  assert_int_equal(view(f, o).gap_since_ns, t2);
  assert_int_equal(quilt_delivery_expiry(f->d), t2 + REPAIR_NS);

  /* Filling part of a later hole does not restart its clock. */
  offer_new(f, o, 4, t2 + 50 * MS);
  assert_int_equal(quilt_delivery_expiry(f->d), t2 + REPAIR_NS);
  assert_int_equal(f->r.ndv, 3); /* 4 comes out */

  assert_int_equal(quilt_delivery_expire(f->d, t2 + REPAIR_NS - 1), 0);
  assert_int_equal(quilt_delivery_expire(f->d, t2 + REPAIR_NS), 1);
  expect_loss(f, 1, o, 5, 1, t2 + REPAIR_NS);
  assert_int_equal(f->r.ndv, 4); /* 6 */
  assert_int_equal(view(f, o).gap_since_ns, t3);
  assert_int_equal(quilt_delivery_expiry(f->d), t3 + REPAIR_NS);

  assert_int_equal(quilt_delivery_expire(f->d, t3 + REPAIR_NS), 1);
  expect_loss(f, 2, o, 7, 2, t3 + REPAIR_NS);
  assert_int_equal(ngaps(f), 0);
  expect_delivered(f, 0, o, 1, 1);
  assert_int_equal(f->r.dv[1].seq, 3);
  assert_int_equal(f->r.dv[2].seq, 4);
  assert_int_equal(f->r.dv[3].seq, 6);
  assert_int_equal(counters(f).lost_messages, 4);
}

/* More holes than the per-origin bookkeeping keeps exact times for, each
 * noticed 1 ms after the previous: none is declared lost before its repair
 * timeout has run, the early ones exactly on time, and in the end every
 * hole is reported once and everything held is delivered in order. */
static void test_expire_many_holes(void **state) {
  fx *f = *state;
  enum { HOLES = 100 };
  uint64_t o = 13;
  offer_new(f, o, 1, T0);
  for (uint64_t i = 1; i <= HOLES; i++)
    offer_new(f, o, 2 * i + 1, T0 + i * MS); /* hole {2i} noticed now */
  assert_int_equal(f->r.ndv, 1);
  uint64_t now = T0;
  for (int guard = 0; f->r.nls < HOLES && guard < 10 * HOLES; guard++) {
    uint64_t due = quilt_delivery_expiry(f->d);
    assert_true(due != UINT64_MAX);
    assert_true(due >= now);
    now = due;
    size_t before = f->r.nls;
    size_t n = quilt_delivery_expire(f->d, now);
    assert_int_equal(f->r.nls - before, n);
  }
  assert_int_equal(f->r.nls, HOLES);
  for (size_t i = 0; i < HOLES; i++) {
    uint64_t noticed = T0 + (i + 1) * MS;
    assert_int_equal(f->r.ls[i].origin, o);
    assert_int_equal(f->r.ls[i].first, 2 * (i + 1));
    assert_int_equal(f->r.ls[i].count, 1);
    assert_true(f->r.ls[i].now >= noticed + REPAIR_NS); /* never early */
    if (i < 16)
      assert_int_equal(f->r.ls[i].now, noticed + REPAIR_NS);
  }
  assert_int_equal(f->r.ndv, HOLES + 1);
  for (size_t i = 1; i <= HOLES; i++)
    assert_int_equal(f->r.dv[i].seq, 2 * i + 1);
  assert_int_equal(ngaps(f), 0);
}

/* Expiry across origins: only the ones whose time has come. */
static void test_expire_many_origins(void **state) {
  fx *f = *state;
  for (uint64_t o = 1; o <= 50; o++) {
    offer_new(f, o, 1, T0);
    offer_new(f, o, 3, T0 + o * MS); /* hole {2} noticed at T0 + o ms */
  }
  assert_int_equal(ngaps(f), 50);
  assert_int_equal(quilt_delivery_expiry(f->d), T0 + 1 * MS + REPAIR_NS);
  assert_int_equal(quilt_delivery_expire(f->d, T0 + 20 * MS + REPAIR_NS), 20);
  assert_int_equal(ngaps(f), 30);
  uint64_t g[64];
  assert_int_equal(quilt_delivery_gaps(f->d, g, 64), 30);
  int seen[51] = {0};
  for (size_t i = 0; i < 30; i++) {
    assert_true(g[i] > 20 && g[i] <= 50);
    assert_int_equal(seen[g[i]]++, 0);
  }
  for (size_t i = 0; i < f->r.nls; i++) {
    assert_true(f->r.ls[i].origin <= 20);
    assert_int_equal(f->r.ls[i].first, 2);
    assert_int_equal(f->r.ls[i].count, 1);
  }
  assert_int_equal(quilt_delivery_expiry(f->d), T0 + 21 * MS + REPAIR_NS);
  /* gaps with a small max: fills only max, returns the total. */
  memset(g, 0, sizeof g);
  assert_int_equal(quilt_delivery_gaps(f->d, g, 2), 30);
  assert_true(g[0] > 20 && g[1] > 20);
  assert_int_equal(g[2], 0);
  assert_int_equal(quilt_delivery_expire(f->d, T0 + 50 * MS + REPAIR_NS), 30);
  assert_int_equal(ngaps(f), 0);
  assert_int_equal(counters(f).delivered, 100);
}

/* ---- the reorder bound ---- */

static void test_reorder_bound(void **state) {
  fx *f = *state;
  uint64_t o = 21;
  const uint64_t R = QUILT_DELIVERY_REORDER_MAX;
  offer_new(f, o, 1, T0);
  /* next = 2: 2 + R - 1 is the farthest seq that can still be held. */
  offer_new(f, o, 2 + R - 1, T0);
  assert_int_equal(f->r.nls, 0);
  const uint64_t m1[] = {2, R - 1};
  expect_missing(f, o, 1, m1);

  /* One further: the oldest missing message is given up, reported. */
  offer_new(f, o, 2 + R, T0 + 1 * MS);
  assert_int_equal(f->r.nls, 1);
  expect_loss(f, 0, o, 2, 1, T0 + 1 * MS);
  const uint64_t m2[] = {3, R - 2}; /* 3 .. R, then R+1 is held */
  expect_missing(f, o, 1, m2);
  assert_int_equal(view(f, o).next, 3);

  /* Far ahead: every run before the window is lost, held ones delivered. */
  uint64_t far = 1000;
  offer_new(f, o, far, T0 + 2 * MS);
  assert_int_equal(f->r.nls, 3);
  expect_loss(f, 1, o, 3, R - 2, T0 + 2 * MS); /* 3 .. R */
  expect_loss(f, 2, o, R + 3, far - R + 1 - (R + 3), T0 + 2 * MS);
  /* R+1 and R+2 (= 2+R-1, 2+R) came out between the two events. */
  expect_delivered(f, 1, o, R + 1, 2);
  const uint64_t m3[] = {far - R + 1, R - 1};
  expect_missing(f, o, 1, m3);
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.loss_events, 3);
  assert_int_equal(c.lost_messages, far - R + 1 - 2 - 2);
  assert_int_equal(c.delivered, 3);
  assert_int_equal(f->r.ndv, 3);
  /* Everything missing then arrives: delivered in order, nothing lost. */
  for (uint64_t s = far - R + 1; s < far; s++)
    offer_new(f, o, s, T0 + 3 * MS);
  assert_int_equal(f->r.ndv, 3 + R);
  expect_delivered(f, 3, o, far - R + 1, R);
  assert_int_equal(f->r.nls, 3);
  /* Every message is accounted for exactly once: delivered or lost. */
  c = counters(f);
  assert_int_equal(c.delivered + c.lost_messages, far);
}

/* A full window: REORDER_MAX - 1 messages held at once. */
static void test_reorder_window_full(void **state) {
  fx *f = *state;
  uint64_t o = 22;
  const uint64_t R = QUILT_DELIVERY_REORDER_MAX;
  offer_new(f, o, 1, T0);
  for (uint64_t s = 3; s <= R + 1; s++)
    offer_new(f, o, s, T0);
  assert_int_equal(f->r.nls, 0);
  assert_int_equal(f->r.ndv, 1);
  const uint64_t m[] = {2, 1};
  expect_missing(f, o, 1, m);
  offer_new(f, o, 2, T0 + 1);
  expect_delivered(f, 0, o, 1, R + 1);
  assert_int_equal(f->r.nls, 0);
}

/* ---- first contact ---- */

static void first_contact(fx *f, uint64_t o, uint64_t s, uint64_t want_first,
                          uint64_t want_count) {
  offer_new(f, o, s, T0);
  if (want_count == 0) {
    expect_missing(f, o, 0, NULL);
    assert_int_equal(f->r.ndv, 1);
    return;
  }
  const uint64_t m[] = {want_first, want_count};
  expect_missing(f, o, 1, m);
  quilt_origin_view v = view(f, o);
  assert_int_equal(v.next, want_first);
  assert_int_equal(v.highest, s);
  assert_false(quilt_delivery_has(f->d, o, want_first));
  assert_true(quilt_delivery_has(f->d, o, s));
}

static void test_first_contact(void **state) {
  fx *f = *state;
  const uint64_t C = QUILT_DELIVERY_CATCHUP;
  first_contact(f, 100, 1, 0, 0);
  first_contact(f, 101, 2, 1, 1);
  first_contact(f, 102, C, 1, C - 1);
  first_contact(f, 103, C + 1, 1, C);
  first_contact(f, 104, C + 2, 2, C);
  first_contact(f, 105, 1000000, 1000000 - C, C);
  assert_int_equal(ngaps(f), 5);
  /* The catch-up window expires like any gap, as one loss event. */
  assert_int_equal(quilt_delivery_expire(f->d, T0 + REPAIR_NS), 5);
  for (size_t i = 0; i < f->r.nls; i++)
    if (f->r.ls[i].origin == 105) {
      assert_int_equal(f->r.ls[i].first, 1000000 - C);
      assert_int_equal(f->r.ls[i].count, C);
    }
  /* And the first message is then delivered. */
  assert_int_equal(f->r.ndv, 6);
  assert_int_equal(view(f, 105).next, 1000001);
}

/* ---- retention ---- */

static void expect_lookup(fx *f, uint64_t o, uint64_t s, uint16_t len,
                          uint64_t now) {
  quilt_msg_data m;
  memset(&m, 0, sizeof m);
  if (quilt_delivery_lookup(f->d, o, s, now, &m) != 1)
    fail_msg("lookup (%llu, %llu) failed", (unsigned long long)o,
             (unsigned long long)s);
  assert_int_equal(m.origin, o);
  assert_int_equal(m.seq, s);
  assert_int_equal(m.len, len);
  assert_true(payload_ok(&m));
}

static int lookup(fx *f, uint64_t o, uint64_t s, uint64_t now) {
  quilt_msg_data m;
  return quilt_delivery_lookup(f->d, o, s, now, &m);
}

static void test_retention_lookup(void **state) {
  fx *f = *state;
  for (uint64_t s = 1; s <= 10; s++)
    offer_new(f, 1, s, T0);
  offer_new(f, 2, 1, T0);
  offer_new(f, 2, 5, T0); /* held: retained too */
  for (uint64_t s = 1; s <= 10; s++)
    expect_lookup(f, 1, s, plen(1, s), T0);
  expect_lookup(f, 2, 1, plen(2, 1), T0);
  expect_lookup(f, 2, 5, plen(2, 5), T0);
  assert_int_equal(lookup(f, 2, 2, T0), 0);
  assert_int_equal(lookup(f, 1, 11, T0), 0);
  assert_int_equal(lookup(f, 3, 1, T0), 0);
  /* The caller's buffer is not retained: overwriting it changes nothing. */
  memset(msgbuf, 0, sizeof msgbuf);
  expect_lookup(f, 1, 7, plen(1, 7), T0);
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.retained_messages, 12);
  uint64_t bytes = plen(2, 1) + plen(2, 5);
  for (uint64_t s = 1; s <= 10; s++)
    bytes += plen(1, s);
  assert_int_equal(c.retained_bytes, bytes);
  assert_int_equal(c.evicted, 0);
}

static void test_retention_bytes(void **state) {
  (void)state;
  fx *f = fx_new(1000, 60000 * MS, REPAIR_NS);
  for (uint64_t s = 1; s <= 25; s++) {
    quilt_msg_data m = make(1, s, 100);
    assert_int_equal(quilt_delivery_offer(f->d, &m, T0 + s), QUILT_ACCEPT_NEW);
    quilt_delivery_counters c = counters(f);
    assert_true(c.retained_bytes <= 1000);
    assert_int_equal(c.retained_messages, s < 10 ? s : 10);
  }
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.retained_bytes, 1000);
  assert_int_equal(c.evicted, 15);
  assert_int_equal(c.delivered, 25); /* eviction never affects delivery */
  for (uint64_t s = 1; s <= 15; s++)
    assert_int_equal(lookup(f, 1, s, T0 + 30), 0);
  for (uint64_t s = 16; s <= 25; s++)
    expect_lookup(f, 1, s, 100, T0 + 30);
  /* One big message pushes out several small ones. */
  quilt_msg_data big = make(1, 26, 550);
  assert_int_equal(quilt_delivery_offer(f->d, &big, T0 + 40), QUILT_ACCEPT_NEW);
  c = counters(f);
  assert_int_equal(c.retained_bytes, 950);
  assert_int_equal(c.retained_messages, 5);
  expect_lookup(f, 1, 26, 550, T0 + 40);
  assert_int_equal(lookup(f, 1, 21, T0 + 40), 0);
  expect_lookup(f, 1, 22, 100, T0 + 40);
  /* A message larger than the whole bound is delivered, not retained. */
  quilt_msg_data huge = make(1, 27, 1001);
  assert_int_equal(quilt_delivery_offer(f->d, &huge, T0 + 50),
                   QUILT_ACCEPT_NEW);
  c = counters(f);
  assert_true(c.retained_bytes <= 1000);
  assert_int_equal(lookup(f, 1, 27, T0 + 50), 0);
  assert_int_equal(c.delivered, 27);
  fx_del(f);
}

static void test_retention_disabled(void **state) {
  (void)state;
  fx *f = fx_new(0, 60000 * MS, REPAIR_NS);
  for (uint64_t s = 1; s <= 10; s++)
    offer_new(f, 1, s, T0);
  assert_int_equal(lookup(f, 1, 5, T0), 0);
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.retained_bytes, 0);
  assert_int_equal(c.retained_messages, 0);
  assert_int_equal(c.delivered, 10);
  /* Duplicates are still recognised without retention. */
  offer_dup(f, 1, 5, T0);
  assert_int_equal(quilt_delivery_expiry(f->d), UINT64_MAX);
  fx_del(f);
}

static void test_retention_age(void **state) {
  (void)state;
  const uint64_t AGE = 1000 * MS;
  fx *f = fx_new(1u << 20, AGE, REPAIR_NS);
  assert_int_equal(quilt_delivery_expiry(f->d), UINT64_MAX);
  offer_new(f, 1, 1, T0);
  offer_new(f, 1, 2, T0 + 500 * MS);
  offer_new(f, 1, 3, T0 + 1000 * MS);
  assert_int_equal(quilt_delivery_expiry(f->d), T0 + AGE + 1);
  /* Exactly retention_ns old is still kept. */
  expect_lookup(f, 1, 1, plen(1, 1), T0 + AGE);
  assert_int_equal(counters(f).retained_messages, 3);
  assert_int_equal(lookup(f, 1, 1, T0 + AGE + 1), 0);
  expect_lookup(f, 1, 2, plen(1, 2), T0 + AGE + 1);
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.retained_messages, 2);
  assert_int_equal(c.evicted, 1);
  assert_int_equal(quilt_delivery_expiry(f->d), T0 + 500 * MS + AGE + 1);
  /* expire() also trims by age. */
  assert_int_equal(quilt_delivery_expire(f->d, T0 + 2000 * MS + 1), 0);
  c = counters(f);
  assert_int_equal(c.retained_messages, 0);
  assert_int_equal(c.retained_bytes, 0);
  assert_int_equal(c.evicted, 3);
  assert_int_equal(quilt_delivery_expiry(f->d), UINT64_MAX);
  /* Aged-out messages are still known as delivered. */
  assert_true(quilt_delivery_has(f->d, 1, 2));
  offer_dup(f, 1, 2, T0 + 2000 * MS + 2);
  fx_del(f);
}

/* ---- retention against a naive model ---- */

typedef struct rmodel_entry {
  uint64_t origin, seq, arrival;
  uint16_t len;
} rmodel_entry;

typedef struct rmodel {
  rmodel_entry *e; /* FIFO, oldest first: e[head .. n) */
  size_t head, n, cap;
  uint64_t bytes, evicted;
  uint64_t bound_bytes, age_ns;
} rmodel;

static void rmodel_trim(rmodel *md, uint64_t now) {
  while (md->head < md->n) {
    const rmodel_entry *x = &md->e[md->head];
    int old = now > md->age_ns && x->arrival < now - md->age_ns;
    if (!old && md->bytes <= md->bound_bytes)
      break;
    md->bytes -= x->len;
    md->head++;
    md->evicted++;
  }
}

static void rmodel_add(rmodel *md, uint64_t origin, uint64_t seq, uint16_t len,
                       uint64_t now) {
  if (md->n == md->cap) {
    md->cap = md->cap ? md->cap * 2 : 1024;
    md->e = realloc(md->e, md->cap * sizeof *md->e);
    assert_non_null(md->e);
  }
  rmodel_entry x = {origin, seq, now, len};
  md->e[md->n++] = x;
  md->bytes += len;
  rmodel_trim(md, now);
}

static void rmodel_check(fx *f, const rmodel *md) {
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.retained_bytes, md->bytes);
  assert_int_equal(c.retained_messages, md->n - md->head);
  assert_int_equal(c.evicted, md->evicted);
  assert_true(c.retained_bytes <= md->bound_bytes);
}

/* Random offers from `norigins` origins (mostly in order, some gaps, some
 * duplicates, lengths 0..max_len), time moving forward in random steps,
 * lookups of retained, evicted and never-sent messages, all checked
 * against the model. */
static void retention_differential(uint64_t seed, uint32_t norigins,
                                   size_t bound_bytes, uint64_t age_ns,
                                   unsigned ops, uint16_t max_len) {
  quilt_rng r;
  quilt_rng_init(&r, seed, 17);
  fx *f = fx_new(bound_bytes, age_ns, REPAIR_NS);
  rmodel md;
  memset(&md, 0, sizeof md);
  md.bound_bytes = bound_bytes;
  md.age_ns = age_ns;
  uint64_t *sent = calloc(norigins + 1, sizeof *sent); /* highest sent */
  assert_non_null(sent);
  uint64_t now = T0;
  uint8_t *buf = malloc(max_len + 1u);
  assert_non_null(buf);
  for (unsigned op = 0; op < ops; op++) {
    now += quilt_rng_below(&r, 3) == 0 ? quilt_rng_below(&r, 5 * MS) : 0;
    uint32_t dice = quilt_rng_below(&r, 100);
    uint64_t o = 1 + quilt_rng_below(&r, norigins);
    if (dice < 70) {
      /* New message: usually the next seq, sometimes a small jump. */
      uint64_t s = sent[o] + 1 +
                   (quilt_rng_below(&r, 10) == 0 ? quilt_rng_below(&r, 4) : 0);
      uint16_t len = (uint16_t)quilt_rng_below(&r, max_len + 1u);
      quilt_msg_data m = make(o, s, 0);
      for (uint16_t i = 0; i < len; i++)
        buf[i] = pat(o, s, i);
      m.len = len;
      m.payload = buf;
      /* Always above anything sent before, so always new. */
      assert_int_equal(quilt_delivery_offer(f->d, &m, now), QUILT_ACCEPT_NEW);
      rmodel_add(&md, o, s, len, now);
      sent[o] = s;
    } else if (dice < 75) {
      if (sent[o] > 0)
        offer_dup(f, o, sent[o], now); /* the last one, again */
    } else if (dice < 80) {
      (void)quilt_delivery_expire(f->d, now);
      rmodel_trim(&md, now);
    } else {
      /* Lookup: a retained entry, an evicted one, or one never sent. */
      rmodel_trim(&md, now);
      uint32_t kind = quilt_rng_below(&r, 3);
      quilt_msg_data got;
      memset(&got, 0, sizeof got);
      if (kind == 0 && md.n > md.head) {
        const rmodel_entry *x =
            &md.e[md.head + quilt_rng_below(&r, (uint32_t)(md.n - md.head))];
        if (quilt_delivery_lookup(f->d, x->origin, x->seq, now, &got) != 1)
          fail_msg("seed %llu op %u: retained (%llu, %llu) not found",
                   (unsigned long long)seed, op, (unsigned long long)x->origin,
                   (unsigned long long)x->seq);
        assert_int_equal(got.len, x->len);
        assert_true(payload_ok(&got));
      } else if (kind == 1 && md.head > 0) {
        const rmodel_entry *x = &md.e[quilt_rng_below(&r, (uint32_t)md.head)];
        if (quilt_delivery_lookup(f->d, x->origin, x->seq, now, &got) != 0)
          fail_msg("seed %llu op %u: evicted (%llu, %llu) still found",
                   (unsigned long long)seed, op, (unsigned long long)x->origin,
                   (unsigned long long)x->seq);
      } else {
        assert_int_equal(
            quilt_delivery_lookup(f->d, o, sent[o] + 1 + quilt_rng_below(&r, 9),
                                  now, &got),
            0);
      }
    }
    rmodel_check(f, &md);
  }
  /* Finally every retained entry is found, and a sample of evicted ones is
   * not. */
  rmodel_trim(&md, now);
  for (size_t i = md.head; i < md.n; i++)
    expect_lookup(f, md.e[i].origin, md.e[i].seq, md.e[i].len, now);
  for (size_t i = 0; i < md.head; i += 7)
    assert_int_equal(lookup(f, md.e[i].origin, md.e[i].seq, now), 0);
  rmodel_check(f, &md);
  assert_true(md.evicted > ops / 4); /* the ring did wrap, many times */
  free(buf);
  free(sent);
  free(md.e);
  fx_del(f);
}

static void test_retention_differential_bytes(void **state) {
  (void)state;
  /* Small byte bound: constant eviction, ~60 entries live. */
  retention_differential(0xC0FFEE01u, 20, 3000, 60000 * MS, 60000, 100);
}

static void test_retention_differential_age(void **state) {
  (void)state;
  /* Age dominates: bursts of evictions when time jumps. */
  retention_differential(0xC0FFEE02u, 300, 1u << 20, 200 * MS, 60000, 40);
}

static void test_retention_differential_seeds(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 30; seed++)
    retention_differential(seed, 1 + (uint32_t)(seed % 50), 200 + seed * 37,
                           (20 + seed) * MS, 3000, (uint16_t)(seed * 3));
}

/* ---- many origins ---- */

/* Origins are ids k * scale for k in 1..max: foreach must report each once,
 * with its own view. */
typedef struct seen_set {
  uint8_t *seen;
  size_t n, bad;
  uint64_t max, scale;
  const quilt_delivery *d;
} seen_set;

static void count_view(void *arg, const quilt_origin_view *v) {
  seen_set *s = arg;
  uint64_t k = v->origin / s->scale;
  quilt_origin_view w;
  if (v->origin % s->scale != 0 || k == 0 || k > s->max || s->seen[k] ||
      !quilt_delivery_origin(s->d, v->origin, &w) || w.next != v->next ||
      w.highest != v->highest) {
    s->bad++;
    return;
  }
  s->seen[k] = 1;
  s->n++;
}

static void test_many_origins(void **state) {
  (void)state;
  enum { N = 5000, PER = 4 };
  fx *f = fx_new(64u << 20, 60000 * MS, REPAIR_NS);
  /* Interleaved: round k sends seq k of every origin; origins divisible by
   * 7 skip seq 2, so they hold 3 and 4 behind a gap. */
  for (uint64_t s = 1; s <= PER; s++)
    for (uint64_t o = 1; o <= N; o++) {
      if (o % 7 == 0 && s == 2)
        continue;
      offer_new(f, o * 1000003u, s, T0 + s);
    }
  size_t ngap = N / 7;
  assert_int_equal(ngaps(f), ngap);
  assert_int_equal(f->r.ndv, (N - ngap) * PER + ngap);
  /* Per-origin order holds in the interleaved record. */
  uint64_t *last = calloc(N + 1, sizeof *last);
  assert_non_null(last);
  for (size_t i = 0; i < f->r.ndv; i++) {
    uint64_t o = f->r.dv[i].origin / 1000003u;
    assert_int_equal(f->r.dv[i].origin, o * 1000003u);
    assert_int_equal(f->r.dv[i].seq, last[o] + 1);
    last[o]++;
  }
  for (uint64_t o = 1; o <= N; o++) {
    quilt_origin_view v = view(f, o * 1000003u);
    assert_int_equal(v.next, o % 7 == 0 ? 2 : PER + 1);
    assert_int_equal(v.highest, PER);
    assert_true(quilt_delivery_has(f->d, o * 1000003u, PER));
    assert_int_equal(quilt_delivery_has(f->d, o * 1000003u, 2), o % 7 != 0);
    for (uint64_t s = 1; s <= PER; s++)
      if (!(o % 7 == 0 && s == 2))
        expect_lookup(f, o * 1000003u, s, plen(o * 1000003u, s), T0 + 10);
  }
  uint64_t *g = calloc(N, sizeof *g);
  assert_non_null(g);
  assert_int_equal(quilt_delivery_gaps(f->d, g, N), ngap);
  for (size_t i = 0; i < ngap; i++)
    assert_int_equal((g[i] / 1000003u) % 7, 0);
  /* foreach visits each origin once. */
  seen_set ss = {calloc(N + 1, 1), 0, 0, N, 1000003u, f->d};
  assert_non_null(ss.seen);
  quilt_delivery_foreach(f->d, count_view, &ss);
  assert_int_equal(ss.n, N);
  assert_int_equal(ss.bad, 0);
  free(ss.seen);
  /* Repairing the gaps delivers everything. */
  for (uint64_t o = 7; o <= N; o += 7)
    offer_new(f, o * 1000003u, 2, T0 + 20);
  assert_int_equal(ngaps(f), 0);
  assert_int_equal(f->r.ndv, (size_t)N * PER);
  assert_int_equal(f->r.nls, 0);
  free(g);
  free(last);
  fx_del(f);
}

/* foreach on small ids, to check it reports each origin exactly once. */
static void test_foreach(void **state) {
  fx *f = *state;
  enum { N = 300 };
  for (uint64_t o = 1; o <= N; o++)
    offer_new(f, o, 1, T0);
  seen_set ss = {calloc(N + 1, 1), 0, 0, N, 1, f->d};
  assert_non_null(ss.seen);
  quilt_delivery_foreach(f->d, count_view, &ss);
  assert_int_equal(ss.n, N);
  assert_int_equal(ss.bad, 0);
  free(ss.seen);
}

/* The origin table is bounded: one origin too many is refused, counted,
 * and the ones already known keep working. */
static void test_origin_limit(void **state) {
  (void)state;
  fx *f = fx_new(0, 60000 * MS, REPAIR_NS);
  for (uint64_t o = 1; o <= QUILT_DELIVERY_MAX_ORIGINS; o++)
    offer_new(f, o, 1, T0);
  int rc = offer(f, QUILT_DELIVERY_MAX_ORIGINS + 1, 1, T0);
  assert_int_equal(rc, QUILT_ERR_LIMIT);
  assert_int_equal(counters(f).refused, 1);
  assert_int_equal(
      quilt_delivery_announce(f->d, QUILT_DELIVERY_MAX_ORIGINS + 2, 5, 0, T0),
      0);
  assert_int_equal(counters(f).refused, 2);
  quilt_origin_view v;
  assert_int_equal(
      quilt_delivery_origin(f->d, QUILT_DELIVERY_MAX_ORIGINS + 1, &v), 0);
  offer_new(f, 1, 2, T0);
  offer_new(f, QUILT_DELIVERY_MAX_ORIGINS, 2, T0);
  assert_int_equal(counters(f).delivered, QUILT_DELIVERY_MAX_ORIGINS + 2);
  fx_del(f);
}

/* A random, fixed-seed workload with loss, reordering, duplicates,
 * announcements and expiry: each (origin, seq) is delivered at most once,
 * in order, and every seq up to the end is delivered or reported lost. */
static void test_random_accounting(void **state) {
  (void)state;
  enum { N = 40, MAXSEQ = 600 };
  quilt_rng r;
  quilt_rng_init(&r, 0xACC0u, 5);
  fx *f = fx_new(1u << 16, 60000 * MS, REPAIR_NS);
  uint64_t sent[N + 1] = {0};
  uint64_t now = T0;
  for (unsigned op = 0; op < 60000; op++) {
    now += quilt_rng_below(&r, 200 * 1000);
    uint64_t o = 1 + quilt_rng_below(&r, N);
    uint32_t dice = quilt_rng_below(&r, 100);
    if (dice < 60 && sent[o] < MAXSEQ) {
      sent[o]++;
      if (quilt_rng_below(&r, 10) != 0) /* 10% loss */
        (void)offer(f, o, sent[o], now);
    } else if (dice < 80 && sent[o] > 0) {
      /* A late copy, a repair or a duplicate of something recent. */
      uint64_t back = quilt_rng_below(&r, 40);
      if (back < sent[o])
        (void)offer(f, o, sent[o] - back, now);
    } else if (dice < 85) {
      (void)quilt_delivery_announce(f->d, o, sent[o], 0, now);
    } else if (quilt_delivery_expiry(f->d) <= now) {
      (void)quilt_delivery_expire(f->d, now);
    }
  }
  /* Drain: announce every tail and let everything expire. */
  for (uint64_t o = 1; o <= N; o++)
    (void)quilt_delivery_announce(f->d, o, sent[o], 0, now);
  for (int i = 0;
       i < 10000 && quilt_delivery_expiry(f->d) != UINT64_MAX && ngaps(f) > 0;
       i++) {
    now = quilt_delivery_expiry(f->d) > now ? quilt_delivery_expiry(f->d) : now;
    (void)quilt_delivery_expire(f->d, now);
  }
  assert_int_equal(ngaps(f), 0);
  uint64_t *dv_next = calloc(N + 1, sizeof *dv_next);
  assert_non_null(dv_next);
  /* Deliveries alone are strictly increasing per origin. */
  for (size_t i = 0; i < f->r.ndv; i++) {
    uint64_t o = f->r.dv[i].origin;
    assert_true(f->r.dv[i].seq > dv_next[o]);
    dv_next[o] = f->r.dv[i].seq;
  }
  /* Counted per origin: delivered + lost = sent (no double counting). */
  uint64_t got[N + 1] = {0};
  for (size_t i = 0; i < f->r.ndv; i++)
    got[f->r.dv[i].origin]++;
  for (size_t i = 0; i < f->r.nls; i++) {
    assert_true(f->r.ls[i].count >= 1);
    got[f->r.ls[i].origin] += f->r.ls[i].count;
  }
  for (uint64_t o = 1; o <= N; o++) {
    if (sent[o] == 0)
      continue;
    assert_int_equal(got[o], sent[o]);
    assert_int_equal(view(f, o).next, sent[o] + 1);
  }
  quilt_delivery_counters c = counters(f);
  assert_int_equal(c.delivered, f->r.ndv);
  assert_int_equal(c.loss_events, f->r.nls);
  assert_true(c.duplicates > 0);
  assert_true(c.loss_events > 0);
  free(dv_next);
  fx_del(f);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_in_order),
      T(test_out_of_order_held),
      T(test_reverse_order),
      T(test_duplicates),
      T(test_announce_tail),
      T(test_announce_first_contact),
      T(test_missing_exact),
      T(test_expire_tail),
      T(test_expire_runs_same_time),
      T(test_expire_runs_staggered),
      T(test_expire_many_holes),
      T(test_expire_many_origins),
      T(test_reorder_bound),
      T(test_reorder_window_full),
      T(test_first_contact),
      T(test_retention_lookup),
      cmocka_unit_test(test_retention_bytes),
      cmocka_unit_test(test_retention_disabled),
      cmocka_unit_test(test_retention_age),
      cmocka_unit_test(test_retention_differential_bytes),
      cmocka_unit_test(test_retention_differential_age),
      cmocka_unit_test(test_retention_differential_seeds),
      cmocka_unit_test(test_many_origins),
      T(test_foreach),
      cmocka_unit_test(test_origin_limit),
      cmocka_unit_test(test_random_accounting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
