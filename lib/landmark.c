/*
 * landmark.c -- positions, the latency estimate, the choice of the
 * landmarks (greedy k-median on a sample) and regions (landmark binning)
 * (landmark.h).
 */
#include "landmark.h"

#include <assert.h>
#include <string.h>

#define UNKNOWN QUILT_WIRE_RTT_UNKNOWN

static int known(const quilt_lm_pos *p, uint32_t s) {
  return p->serial[s] != 0 && p->rtt_us[s] != UNKNOWN;
}

/* The largest |rtt_a - rtt_b| over the landmarks both measured; *common
 * says whether there was any.  One pass, for the optimiser's hot loop. */
static uint32_t bound(const quilt_lm_pos *a, const quilt_lm_pos *b,
                      int *common) {
  uint32_t best = 0;
  int any = 0;
  for (uint32_t s = 0; s < QUILT_LM_MAX; s++) {
    if (a->serial[s] == 0 || a->serial[s] != b->serial[s] ||
        a->rtt_us[s] == UNKNOWN || b->rtt_us[s] == UNKNOWN)
      continue;
    uint32_t x = a->rtt_us[s], y = b->rtt_us[s];
    uint32_t d = x > y ? x - y : y - x;
    any = 1;
    if (d > best)
      best = d;
  }
  *common = any;
  return best;
}

uint32_t quilt_lm_rtt_bound_us(const quilt_lm_pos *a, const quilt_lm_pos *b) {
  int common;
  return bound(a, b, &common);
}

/* Why this estimate:
 *  - For any landmark L, rtt(a, b) >= |rtt(a, L) - rtt(b, L)| (triangle
 *    inequality), so the largest difference over the landmarks both have
 *    measured is a lower bound on rtt(a, b); half of it one way.
 *  - It is exact when a is itself a landmark: rtt(a, a) = 0, and the term
 *    for L = a is rtt(b, a).  The landmarks are chosen near as many
 *    hosts as they can be (quilt_lm_pick), one per populous cluster, so
 *    most hosts have one near them and the bound is close for hosts of
 *    different clusters.
 *  - Hosts of one cluster get about 0.  The hop cost hop_us is then what
 *    ranks their trees: each forwarding hop costs a copy and a queueing
 *    delay, so among near-equal choices the shallower tree wins.
 *  - With no landmark in common (a host that has not measured yet, or
 *    hosts of different groups), the hosts' RTTs to the server are all
 *    there is: their sum halved is the one-way latency of the path through
 *    the server, an upper bound; half of that again is a middle guess. */
uint32_t quilt_lm_est_us(const quilt_lm_pos *a, const quilt_lm_pos *b,
                         uint32_t hop_us) {
  int common;
  uint64_t v = bound(a, b, &common) / 2;
  if (!common)
    v = ((uint64_t)a->fallback_rtt_us + b->fallback_rtt_us) / 4;
  v += hop_us;
  return v >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)v;
}

static int differs(uint32_t x, uint32_t y) {
  uint32_t d = x > y ? x - y : y - x;
  uint32_t m = x > y ? x : y;
  uint32_t slack = m / 8 > 100 ? m / 8 : 100;
  return d > slack;
}

int quilt_lm_pos_moved(const quilt_lm_pos *old, const quilt_lm_pos *now) {
  for (uint32_t s = 0; s < QUILT_LM_MAX; s++) {
    if (known(old, s) != known(now, s))
      return 1;
    if (!known(old, s))
      continue;
    if (old->serial[s] != now->serial[s] ||
        differs(old->rtt_us[s], now->rtt_us[s]))
      return 1;
  }
  return differs(old->fallback_rtt_us, now->fallback_rtt_us);
}

void quilt_lm_set_init(quilt_lm_set *s) { memset(s, 0, sizeof *s); }

/* splitmix64's finaliser (Steele, Lea, Flood, OOPSLA 2014): every bit of
 * the id moves every bit of the result, so nearby node ids do not give
 * nearby regions. */
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint32_t quilt_lm_region_id(uint64_t id, uint32_t k) {
  uint64_t span = (uint64_t)QUILT_LM_REGION_MAX - QUILT_LM_REGION_MIN + 1;
  uint64_t h = mix64(id ^ mix64(k));
  return QUILT_LM_REGION_MIN + (uint32_t)(h % span);
}

int quilt_lm_find_region(const quilt_lm_set *s, uint32_t region) {
  for (uint32_t i = 0; i < s->count; i++)
    if (s->region[s->order[i]] == region)
      return s->order[i];
  return -1;
}

int quilt_lm_complete(const quilt_lm_set *s, const quilt_lm_pos *pos) {
  for (uint32_t i = 0; i < s->count; i++) {
    uint32_t slot = s->order[i];
    if (pos->serial[slot] != s->serial[slot] || !known(pos, slot))
      return 0;
  }
  return s->count > 0;
}

uint32_t quilt_lm_min_rtt_us(const quilt_lm_set *s, const quilt_lm_pos *pos) {
  if (!quilt_lm_complete(s, pos))
    return UINT32_MAX;
  uint32_t lo = UINT32_MAX;
  for (uint32_t i = 0; i < s->count; i++)
    if (pos->rtt_us[s->order[i]] < lo)
      lo = pos->rtt_us[s->order[i]];
  return lo;
}

/* Landmark binning (Ratnasamy et al., INFOCOM 2002, section 3): the bin
 * of a host is its nearest landmark.  The paper refines the bin by the
 * order of all the landmarks by RTT; we keep the nearest alone (see
 * docs/design.md, "Locality": with up to 8 landmarks the nearest already
 * gives regions of a few tens of hosts in a thousand, patches are split by
 * the rules' `max`, and an ordering would split one cluster into several
 * bins whenever two far landmarks are about as far from it). */
uint32_t quilt_lm_region(const quilt_lm_set *s, const quilt_lm_pos *pos,
                         uint32_t current) {
  if (!quilt_lm_complete(s, pos))
    return 0;
  int best = -1;
  for (uint32_t i = 0; i < s->count; i++) {
    uint32_t slot = s->order[i];
    if (best < 0 || pos->rtt_us[slot] < pos->rtt_us[best] ||
        (pos->rtt_us[slot] == pos->rtt_us[best] && s->id[slot] < s->id[best]))
      best = (int)slot;
  }
  assert(best >= 0);
  int cur = current ? quilt_lm_find_region(s, current) : -1;
  if (cur >= 0 && cur != best) {
    uint32_t lo = pos->rtt_us[best], x = pos->rtt_us[cur];
    uint32_t slack = lo / 8 > 100 ? lo / 8 : 100;
    if (x - lo <= slack)
      return current;
  }
  return s->region[best];
}

int quilt_lm_find(const quilt_lm_set *s, uint32_t host) {
  for (uint32_t i = 0; i < s->count; i++)
    if (s->host[s->order[i]] == host)
      return s->order[i];
  return -1;
}

int quilt_lm_add(quilt_lm_set *s, uint32_t host, uint64_t id, uint32_t serial) {
  assert(serial != 0);
  if (s->count >= QUILT_LM_MAX || quilt_lm_find(s, host) >= 0)
    return -1;
  int slot = -1;
  for (uint32_t i = 0; i < QUILT_LM_MAX && slot < 0; i++)
    if (s->serial[i] == 0)
      slot = (int)i;
  assert(slot >= 0); /* count < QUILT_LM_MAX slots in use */
  uint32_t region = 0;
  for (uint32_t k = 0; region == 0; k++) {
    region = quilt_lm_region_id(id, k);
    if (quilt_lm_find_region(s, region) >= 0)
      region = 0; /* named by another landmark: try the next hash */
  }
  s->serial[slot] = serial;
  s->host[slot] = host;
  s->id[slot] = id;
  s->region[slot] = region;
  s->order[s->count++] = (uint8_t)slot;
  return slot;
}

static void cand_drop(quilt_lm_set *s, uint32_t host) {
  for (uint32_t i = 0; i < s->ncand; i++)
    if (s->cand[i].host == host) {
      memmove(&s->cand[i], &s->cand[i + 1],
              (s->ncand - i - 1) * sizeof s->cand[0]);
      s->ncand--;
      return;
    }
}

int quilt_lm_forget(quilt_lm_set *s, uint32_t host) {
  cand_drop(s, host);
  for (uint32_t i = 0; i < s->count; i++) {
    uint32_t slot = s->order[i];
    if (s->host[slot] != host)
      continue;
    s->serial[slot] = 0;
    memmove(&s->order[i], &s->order[i + 1], s->count - i - 1);
    s->count--;
    return 1;
  }
  return 0;
}

void quilt_lm_clear_candidates(quilt_lm_set *s) { s->ncand = 0; }

/* The sample's order: by hash, then id. */
static int sample_before(uint64_t ha, uint64_t ida, uint64_t hb, uint64_t idb) {
  return ha != hb ? ha < hb : ida < idb;
}

/* A bottom-k sample (Cohen, "Size-estimation framework with applications
 * to transitive closure and reachability", JCSS 1997): the
 * QUILT_LM_SAMPLE hosts whose ids hash lowest, found by binary search, so
 * that the many reports from hosts outside it cost O(log) each. */
void quilt_lm_report(quilt_lm_set *s, uint32_t host, uint64_t id,
                     const quilt_lm_pos *pos, int can_lead) {
  if (quilt_lm_find(s, host) >= 0) {
    cand_drop(s, host); /* a landmark now: no longer a candidate */
    return;
  }
  int complete = 1;
  uint32_t value = UINT32_MAX; /* no landmark yet: any host is far */
  for (uint32_t i = 0; i < s->count && complete; i++) {
    uint32_t slot = s->order[i];
    if (pos->serial[slot] != s->serial[slot] || !known(pos, slot))
      complete = 0; /* not every landmark measured */
    else if (pos->rtt_us[slot] < value)
      value = pos->rtt_us[slot];
  }
  uint64_t h = mix64(id);
  uint32_t lo = 0, hi = s->ncand;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (sample_before(s->cand[mid].hash, s->cand[mid].id, h, id))
      lo = mid + 1;
    else
      hi = mid;
  }
  int here = lo < s->ncand && s->cand[lo].id == id;
  if (!complete) {
    if (here) {
      memmove(&s->cand[lo], &s->cand[lo + 1],
              (s->ncand - lo - 1) * sizeof s->cand[0]);
      s->ncand--;
    }
    return;
  }
  if (!here) {
    if (lo >= QUILT_LM_SAMPLE)
      return; /* hashes above the whole sample */
    uint32_t n = s->ncand < QUILT_LM_SAMPLE ? s->ncand + 1 : QUILT_LM_SAMPLE;
    memmove(&s->cand[lo + 1], &s->cand[lo], (n - 1 - lo) * sizeof s->cand[0]);
    s->ncand = n;
  }
  quilt_lm_cand *c = &s->cand[lo];
  c->host = host;
  c->id = id;
  c->hash = h;
  c->value_us = value;
  c->can_lead = can_lead != 0;
  c->pos = *pos;
  assert(s->ncand <= QUILT_LM_SAMPLE);
}

/* Greedy k-median (the facility-location greedy): each pick brings the
 * most sampled hosts nearer to a landmark, by the most.  Why not
 * farthest-point sampling (Gonzalez's k-center), which spreads landmarks
 * widest: on the Internet the host farthest from everyone is an outlier --
 * behind a slow or distant access link -- and the regions
 * (quilt_lm_region) must be the populous places.  On king951 8
 * farthest-point landmarks bin 939 of 951 hosts into one region (a median
 * RTT of 78 ms within a region, 80 ms overall); these give regions of
 * 426, 220, 162, 84, 56 hosts and three of one (39 ms within), and a
 * tighter lower bound for the trees too (0.84 of the RTT at the median,
 * against about 0.77); tests/landmark_test.c prints it.  The gain uses
 * lower bounds of the distances between sampled hosts, and so is
 * optimistic; the support rule keeps an outlier out, the min_rtt rule a
 * second landmark of one LAN.  The server picks one per round (room 1),
 * each from RTTs measured to all before it. */
uint32_t quilt_lm_pick(const quilt_lm_set *s, uint32_t room,
                       uint32_t min_rtt_us, uint32_t out[QUILT_LM_MAX]) {
  uint32_t n = s->ncand;
  uint32_t near[QUILT_LM_SAMPLE];
  uint8_t used[QUILT_LM_SAMPLE] = {0};
  for (uint32_t i = 0; i < n; i++)
    near[i] = s->cand[i].value_us;
  uint32_t support_min = n / 32 > 1 ? n / 32 : 1;
  uint32_t k = 0;
  while (k < room && k < QUILT_LM_MAX) {
    int best = -1;
    uint64_t best_gain = 0;
    for (uint32_t c = 0; c < n; c++) {
      if (used[c] || !s->cand[c].can_lead || near[c] <= min_rtt_us)
        continue;
      uint64_t gain = 0;
      uint32_t support = 0;
      for (uint32_t h = 0; h < n; h++) {
        if (used[h])
          continue; /* c itself counts: it gains near[c] */
        uint32_t d = quilt_lm_rtt_bound_us(&s->cand[c].pos, &s->cand[h].pos);
        if (d < near[h]) {
          gain += near[h] - d;
          support++;
        }
      }
      if (support < support_min || gain == 0)
        continue;
      if (best < 0 || gain > best_gain ||
          (gain == best_gain && s->cand[c].id < s->cand[best].id)) {
        best = (int)c;
        best_gain = gain;
      }
    }
    if (best < 0)
      break;
    used[best] = 1;
    out[k++] = (uint32_t)best;
    /* The others' distance to the new landmark, estimated the same way
     * (a lower bound: nothing is counted twice as far). */
    for (uint32_t h = 0; h < n; h++) {
      if (used[h])
        continue;
      uint32_t d = quilt_lm_rtt_bound_us(&s->cand[h].pos, &s->cand[best].pos);
      if (d < near[h])
        near[h] = d;
    }
  }
  return k;
}
