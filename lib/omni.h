/*
 * omni.h -- the OMNI overlay tree: degree-constrained, minimum client-weighted
 * average latency from the root.
 *
 * Banerjee, Kommareddy, Kar, Bhattacharjee, Khuller, "Construction of an
 * efficient overlay multicast infrastructure for real-time applications",
 * INFOCOM 2003 (PAPERS.md section 2).  n nodes (the paper's MSNs), node 0 the
 * root.  Node i has a weight c_i (its client count) and a degree bound d_i
 * (most children it may have, the root included).  The cost of a tree is
 *
 *   sum_i c_i * l_i   (us * clients;  divide by sum_i c_i for the average)
 *
 * where l_i is the sum of the edge latencies on the path root -> i.  Each
 * node keeps C_i = c_i + sum C_child and
 * Lambda_i = sum_child (Lambda_child + C_child * lat(i, child)) (paper 2.2),
 * updated incrementally on every change; the cost is Lambda_0.
 *
 * Pure and sans-I/O: latencies come from a caller callback, randomness only
 * from a quilt_rng the caller passes in.  Not thread-safe; the callback must
 * not call back into the same tree.
 *
 * Limits: n <= QUILT_OMNI_MAX_NODES, d_i <= QUILT_OMNI_MAX_DEGREE,
 * c_i <= QUILT_OMNI_MAX_WEIGHT, latencies are clamped to
 * QUILT_OMNI_MAX_LAT_US.  Together they keep every aggregate under 2^62, so
 * all arithmetic is exact 64-bit integer arithmetic.
 */
#ifndef QUILT_OMNI_H
#define QUILT_OMNI_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define QUILT_OMNI_MAX_NODES 4096u
#define QUILT_OMNI_MAX_DEGREE 64u
#define QUILT_OMNI_MAX_WEIGHT 65535u
#define QUILT_OMNI_MAX_LAT_US 4194303u /* 2^22 - 1, about 4.2 s */
#define QUILT_OMNI_NONE UINT32_MAX     /* "no node" (parent of the root) */

/* Latency in microseconds of the overlay edge parent a -> child b.  Need
 * not be symmetric nor obey the triangle inequality.  Must be a pure
 * function of (a, b) for the lifetime of the tree (the aggregates cache its
 * values); after a latency change, call quilt_omni_refresh(). */
typedef uint32_t (*quilt_omni_lat_fn)(void *arg, uint32_t a, uint32_t b);

typedef struct quilt_omni quilt_omni;

typedef struct quilt_omni_stats {
  uint64_t promote;     /* applied Child-Promote moves */
  uint64_t pc_swap;     /* applied Parent-Child swaps */
  uint64_t iso_swap;    /* applied Iso-level-2 swaps */
  uint64_t aniso_swap;  /* applied Aniso-level-1-2 swaps */
  uint64_t demote;      /* applied Child-Demote moves (ours, see below) */
  uint64_t uphill;      /* of those, cost-raising moves accepted by the
                           probabilistic transformation */
  uint64_t restores;    /* times the best tree seen was restored */
} quilt_omni_stats;

/* Allocates a tree over n nodes (1 <= n <= QUILT_OMNI_MAX_NODES), all with
 * weight 1 and degree bound 2, not yet connected (call
 * quilt_omni_build_initial).  |lat| is called with |arg|; both must outlive
 * the tree.  Returns 0, QUILT_ERR_INVAL or QUILT_ERR_NOMEM; *out is set on
 * success only. */
int quilt_omni_new(quilt_omni **out, uint32_t n, quilt_omni_lat_fn lat,
                   void *arg);
void quilt_omni_del(quilt_omni *t);

uint32_t quilt_omni_size(const quilt_omni *t);

/* Sets c_i (<= QUILT_OMNI_MAX_WEIGHT); allowed at any time, the aggregates
 * of i's ancestors follow.  Returns 0 or QUILT_ERR_INVAL. */
int quilt_omni_set_weight(quilt_omni *t, uint32_t i, uint32_t clients);

/* Sets d_i (1..QUILT_OMNI_MAX_DEGREE).  Returns 0, QUILT_ERR_INVAL, or
 * QUILT_ERR_STATE when i already has more than |degree| children. */
int quilt_omni_set_degree(quilt_omni *t, uint32_t i, uint32_t degree);

/* Builds the initial tree over all live nodes (paper 2.3): the nodes, sorted
 * by latency from the root (ties by id), are attached in that order to the
 * shallowest node with a free slot (the earliest such in attachment order).
 * Any previous tree is discarded.  Always succeeds since every d_i >= 1.
 * Also resets the temperature of the probabilistic transformation to its
 * default (see quilt_omni_improve). */
void quilt_omni_build_initial(quilt_omni *t);

/* Cost of the current tree, sum_i c_i * l_i in us*clients (= Lambda_0). */
uint64_t quilt_omni_cost(const quilt_omni *t);
/* Client-weighted average latency in us (0 when no clients). */
double quilt_omni_avg_latency_us(const quilt_omni *t);

/* Runs up to |max_rounds| rounds of OMNI's transformations (paper 2.4).
 *
 * A round: every live non-root node s in id order evaluates the local moves
 * that move s's subtree -- Child-Promote, Parent-Child swap (s the child),
 * Iso-level-2 swap and Aniso-level-1-2 swap (s the level-1 node), and
 * Child-Demote (s moves under a sibling with a free slot; not in the paper,
 * the inverse of Child-Promote, added so that every move can be undone) -- and
 * applies the one that lowers the cost most, if any; no move ever breaks a
 * degree bound.  Then, while the temperature T > 0, the probabilistic
 * transformation: max(4n, 256) random proposals, each applied if it does
 * not raise the cost, else with probability exp(-delta / T); T then decays
 * by 15/16 and falls to 0 below 8.  The best tree seen is remembered and
 * restored before returning, so the cost never rises across a call.
 *
 * Returns the number of rounds run (fewer than max_rounds once a round
 * made no change at T = 0), or QUILT_ERR_STATE before build_initial. */
int quilt_omni_improve(quilt_omni *t, quilt_rng *rng, uint32_t max_rounds);

/* Temperature of the probabilistic transformation, in us*clients (the unit
 * of a cost change).  build_initial (and remove) set it to
 * 4 * cost / live nodes, four times the mean per-node c_i * l_i.  0
 * disables it. */
uint64_t quilt_omni_temperature(const quilt_omni *t);
void quilt_omni_set_temperature(quilt_omni *t, uint64_t temp);

/* Removes failed node i (not the root) from the tree.  Its children's
 * subtrees re-attach, heaviest C first: to i's parent while it has a free
 * slot (it has at least one, the one i used), then each to the node q with a
 * free slot that minimises l_q + lat(q, child), ties to the lower id.  Node
 * i stays out of the tree (weight kept, C and Lambda zero), of the next
 * quilt_omni_build_initial too, until quilt_omni_insert brings it back.
 * Before build_initial it only marks i removed.  Returns 0,
 * QUILT_ERR_INVAL (root, out of range) or QUILT_ERR_NOT_FOUND (already
 * removed). */
int quilt_omni_remove(quilt_omni *t, uint32_t i);

/* Brings removed node i (not the root) back as a leaf: it is attached
 * under the live node q with a free slot that minimises l_q + lat(q, i),
 * ties to the lower id (the same rule as quilt_omni_remove uses for
 * orphans).  One exists: a tree of m live nodes uses m - 1 of at least m
 * slots.  Its weight and degree bound are those last set (set them first).
 * O(live nodes) latency calls.  Leaves the temperature alone.  Returns 0,
 * QUILT_ERR_INVAL (root, out of range), QUILT_ERR_STATE (before
 * build_initial) or QUILT_ERR_DUPLICATE (i is in the tree). */
int quilt_omni_insert(quilt_omni *t, uint32_t i);

/* Grows the tree to n nodes (size < n <= QUILT_OMNI_MAX_NODES), keeping
 * it as it is; the new nodes n_old..n-1 start removed (weight 1, degree
 * bound 2) and stay out (of build_initial too) until quilt_omni_insert
 * brings them in.  So a caller may keep spare capacity and insert into it
 * without a rebuild.  Returns 0,
 * QUILT_ERR_INVAL or QUILT_ERR_NOMEM (the tree is then unchanged). */
int quilt_omni_grow(quilt_omni *t, uint32_t n);

/* Copies up to max children of i into out (in sibling-list order, which
 * carries no meaning) and returns how many i has. */
uint32_t quilt_omni_children(const quilt_omni *t, uint32_t i, uint32_t *out,
                             uint32_t max);

/* 1 when node i is in the tree (not removed). */
int quilt_omni_alive(const quilt_omni *t, uint32_t i);

/* Parent of i, QUILT_OMNI_NONE for the root, a removed node, or before
 * build_initial. */
uint32_t quilt_omni_parent(const quilt_omni *t, uint32_t i);
uint32_t quilt_omni_nchildren(const quilt_omni *t, uint32_t i);
uint32_t quilt_omni_degree(const quilt_omni *t, uint32_t i);
/* C_i and Lambda_i as maintained incrementally. */
uint64_t quilt_omni_subtree_clients(const quilt_omni *t, uint32_t i);
uint64_t quilt_omni_subtree_latency(const quilt_omni *t, uint32_t i);

/* Recomputes all aggregates from scratch (after the latencies changed). */
void quilt_omni_refresh(quilt_omni *t);

void quilt_omni_get_stats(const quilt_omni *t, quilt_omni_stats *out);

/* Checks the invariants: a tree rooted at 0 spanning exactly the live nodes,
 * no cycle, parent and child links agree, every degree bound holds, and
 * C and Lambda equal a from-scratch recomputation.  Returns 0, or
 * QUILT_ERR_STATE with a one-line reason in |err| (if non-NULL). */
int quilt_omni_check(const quilt_omni *t, char *err, size_t len);

#endif /* QUILT_OMNI_H */
