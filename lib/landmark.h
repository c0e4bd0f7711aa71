/*
 * landmark.h -- network positions from RTTs to landmarks, the choice of
 * the landmarks, and regions by landmark binning (sans I/O).
 *
 * A few hosts of a group are landmarks; every host measures its RTT to
 * each (PING/PONG) and reports the vector in its heartbeats.  The vector is
 * the host's position: two hosts whose RTTs to some landmark differ by x us
 * are at least x us apart (round trip), by the triangle inequality, so
 * the largest such difference over the landmarks both measured is a lower
 * bound on their RTT, exact when one of them is a landmark.
 *
 * A set holds at most QUILT_LM_MAX landmarks in stable slots.  Each
 * landmark gets a serial number that is never reused, and a position
 * records with each RTT the serial of the landmark it was measured to: a
 * position stays meaningful when landmarks come and go (entries of a
 * removed landmark still give true lower bounds; a slot reused by another
 * landmark does not mix them up), and comparing two positions needs no
 * table.
 *
 * The landmarks are chosen greedily as medians (a k-median heuristic): the
 * first host, then, repeatedly, the host whose becoming a landmark would
 * bring the most hosts (of a sample) nearest to a landmark, by the most
 * (quilt_lm_pick).  Central hosts of the populous places, not the
 * outliers that farthest-point sampling takes on Internet matrices (a host
 * behind a slow access link is far from everyone): see docs/design.md,
 * "Locality", for the measurement.
 *
 * Regions (landmark binning: Ratnasamy, Handley, Karp, Shenker,
 * "Topologically-aware overlay construction and server selection",
 * INFOCOM 2002): a host's region is the landmark nearest to it (smallest
 * RTT), once it has measured every landmark of the list.  Each landmark
 * names its region by a number fixed when it is added and kept while it
 * lives: a hash of its node id into [QUILT_LM_REGION_MIN,
 * QUILT_LM_REGION_MAX] (hashed again on the rare collision with another
 * live landmark of the set).  A function of the
 * node id, not of a slot or serial, so that the same landmark names the
 * same region after a restart of the server, and a slot reused by another
 * landmark never gives an old region a new place; above 65535, so that it
 * never meets the small region numbers operators give hosts by hand.
 */
#ifndef QUILT_LANDMARK_H
#define QUILT_LANDMARK_H

#include <stdint.h>

#include "wire.h"

#define QUILT_LM_MAX QUILT_WIRE_MAX_LANDMARKS
/* Regions landmarks name (see above); 0 means "not known". */
#define QUILT_LM_REGION_MIN 0x10000u
#define QUILT_LM_REGION_MAX 0x7FFFFFFFu

/* A host's position: rtt_us[s] is its RTT to the landmark whose serial is
 * serial[s] (0: nothing known in slot s). */
typedef struct quilt_lm_pos {
  uint32_t rtt_us[QUILT_LM_MAX];
  uint32_t serial[QUILT_LM_MAX];
  uint32_t fallback_rtt_us; /* the host's RTT to the server (EUID), for
                               hosts with no landmark in common */
} quilt_lm_pos;

/* Estimated one-way latency a -> b in us: the lower bound above halved,
 * plus hop_us, or the fallback when a and b share no landmark.  Symmetric,
 * and a pure function of the two positions.  See landmark.c for why. */
uint32_t quilt_lm_est_us(const quilt_lm_pos *a, const quilt_lm_pos *b,
                         uint32_t hop_us);

/* Lower bound on the RTT between a and b from their common landmarks;
 * 0 when they share none. */
uint32_t quilt_lm_rtt_bound_us(const quilt_lm_pos *a, const quilt_lm_pos *b);

/* 1 when `now` differs enough from the snapshot `old` to be worth a
 * re-optimisation: another landmark set, or an RTT off by more than an
 * eighth (and 100 us).  Keeps measurement noise from moving trees. */
int quilt_lm_pos_moved(const quilt_lm_pos *old, const quilt_lm_pos *now);

/* Hosts sampled for the choice of the next landmark: a set keeps those
 * whose node ids hash lowest among the hosts that reported the whole
 * current list (a uniform sample of the group, the same whatever order the
 * reports come in, with no generator). */
#define QUILT_LM_SAMPLE 128

/* A sampled host: its latest report measured every landmark of the
 * current list. */
typedef struct quilt_lm_cand {
  uint32_t host;     /* the caller's handle (a host slot) */
  uint64_t id;       /* node id, for ties */
  uint64_t hash;     /* of the id: the sample's order */
  uint32_t value_us; /* min over the landmarks of its RTT */
  int can_lead;      /* may be a landmark (others can reach it) */
  quilt_lm_pos pos;
} quilt_lm_cand;

typedef struct quilt_lm_set {
  uint32_t count;                /* landmarks in the list */
  uint8_t order[QUILT_LM_MAX];   /* the list, as slots, in the order sent */
  uint32_t serial[QUILT_LM_MAX]; /* by slot; 0: slot free */
  uint32_t host[QUILT_LM_MAX];   /* by slot: the caller's handle */
  uint64_t id[QUILT_LM_MAX];     /* by slot: node id */
  uint32_t region[QUILT_LM_MAX]; /* by slot: the region it names */
  /* The sample of the hosts that reported since the list last changed,
   * by hash (then id). */
  quilt_lm_cand cand[QUILT_LM_SAMPLE];
  uint32_t ncand;
} quilt_lm_set;

void quilt_lm_set_init(quilt_lm_set *s);

/* Adds a landmark with this (fresh, nonzero) serial at the end of the
 * list, naming region quilt_lm_region_id(id, k) for the first k whose
 * region no other landmark of the set names.  Returns its slot, or -1 when
 * the set is full or the host is a landmark already. */
int quilt_lm_add(quilt_lm_set *s, uint32_t host, uint64_t id, uint32_t serial);

/* Slot of host's landmark, or -1. */
int quilt_lm_find(const quilt_lm_set *s, uint32_t host);

/* Forgets host: removes it from the list (returns 1 when it was a
 * landmark, 0 otherwise) and from the candidates.  The other landmarks
 * keep their order and slots. */
int quilt_lm_forget(quilt_lm_set *s, uint32_t host);

/* Records host's report.  Only a position that knows the RTT to every
 * landmark of the list (for the list's serials) puts it in the sample
 * (another takes it out); its value is then min over the landmarks.  A
 * landmark is never sampled.  can_lead says whether it may become one
 * (every host PINGs the landmarks: one behind a NAT that filters by
 * source would drop the PINGs); either way it counts in the gains.  O(log
 * QUILT_LM_SAMPLE) for a host outside the sample, O(QUILT_LM_SAMPLE) at most.
 */
void quilt_lm_report(quilt_lm_set *s, uint32_t host, uint64_t id,
                     const quilt_lm_pos *pos, int can_lead);

/* Drops every candidate (the list changed: their values are stale). */
void quilt_lm_clear_candidates(quilt_lm_set *s);

/* Picks, greedily, up to `room` sampled hosts that can lead to add as
 * landmarks, each the one with the largest gain: the sum, over the sampled
 * hosts h (itself included), of how much nearer it is to h than h's nearest
 * landmark (or pick before it), when that is positive.  The distance of two
 * sampled hosts, which no one has measured, is estimated by
 * quilt_lm_rtt_bound_us (a lower bound: a gain is never missed, and two hosts
 * of one place look as one). A pick must be farther than min_rtt_us from every
 * landmark and pick before it (so two hosts of one LAN are never both taken),
 * and gain for at least max(1, sample / 32) hosts (in a large group a lone host
 * behind a slow link, which gains only for itself, is not taken); ties to the
 * lower id.  Writes their indices in
 * s->cand to out[] and returns how many; does not change the set (the
 * caller adds them).  O(room x QUILT_LM_SAMPLE^2 x QUILT_LM_MAX). */
uint32_t quilt_lm_pick(const quilt_lm_set *s, uint32_t room,
                       uint32_t min_rtt_us, uint32_t out[QUILT_LM_MAX]);

/* The region a landmark with node id `id` names, at the k-th try (k > 0
 * only after a collision): in [QUILT_LM_REGION_MIN, QUILT_LM_REGION_MAX],
 * a pure function of (id, k). */
uint32_t quilt_lm_region_id(uint64_t id, uint32_t k);

/* Slot of the landmark of the list that names `region`, or -1. */
int quilt_lm_find_region(const quilt_lm_set *s, uint32_t region);

/* Whether pos knows the RTT to every landmark of the list (for the list's
 * serials); 0 for an empty list. */
int quilt_lm_complete(const quilt_lm_set *s, const quilt_lm_pos *pos);

/* The smallest RTT of pos to a landmark of the list, or UINT32_MAX when
 * pos is not complete. */
uint32_t quilt_lm_min_rtt_us(const quilt_lm_set *s, const quilt_lm_pos *pos);

/* The region of pos: that of the landmark with the smallest RTT (ties to
 * the lower node id), or 0 when pos is not complete (quilt_lm_complete).
 * Hysteresis: when `current` is the region of a landmark of the list and
 * pos's RTT to it exceeds the smallest by no more than an eighth of it (or
 * 100 us), `current` is kept, so that a host about as near to two
 * landmarks does not flap between them with measurement noise.
 * O(QUILT_LM_MAX). */
uint32_t quilt_lm_region(const quilt_lm_set *s, const quilt_lm_pos *pos,
                         uint32_t current);

#endif /* QUILT_LANDMARK_H */
