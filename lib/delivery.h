/*
 * delivery.h -- exactly-once, per-origin ordered delivery with a bounded
 * retention buffer (DESIGN.md section 4).
 *
 * One quilt_delivery per host.  It keeps, per origin, the next sequence
 * number to deliver, the messages that arrived ahead of a gap, and the
 * highest sequence number known to exist (from data or SESSION
 * announcements).  Everything accepted is also kept in the retention buffer
 * (bounded in bytes and age) from which the host answers repairs.  A gap
 * that cannot be repaired in time is skipped with a loss event: loss is
 * never silent.
 *
 * Pure bookkeeping: the caller decides when to NACK and whom to ask; this
 * module says what is missing and since when.
 */
#ifndef QUILT_DELIVERY_H
#define QUILT_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Limits (each a hard bound; see delivery.c for what happens at the bound).
 */
#define QUILT_DELIVERY_MAX_ORIGINS 65536 /* origins tracked per host */
#define QUILT_DELIVERY_REORDER_MAX 256   /* messages held behind a gap, per
                                            origin */
#define QUILT_DELIVERY_CATCHUP 64        /* on first contact at seq s, try
                                            to recover s-64..s-1 too */
#define QUILT_DELIVERY_MAX_SEQ (1ULL << 62) /* larger seqs are refused: no
                                            origin sends that many, and the
                                            arithmetic stays far from
                                            wrapping */

typedef struct quilt_delivery_config {
  size_t retention_bytes;   /* payload bytes kept for repair */
  uint64_t retention_ns;    /* oldest message kept for repair */
  uint64_t repair_timeout_ns; /* a gap still open this long is lost */
} quilt_delivery_config;

/* Called for each message delivered in order, and for each loss event
 * ([first, first+count) of origin will never be delivered). */
typedef struct quilt_delivery_callbacks {
  void (*deliver)(void *user, const quilt_msg_data *d, uint64_t now_ns);
  void (*loss)(void *user, uint64_t origin, uint64_t first, uint64_t count,
               uint64_t now_ns);
} quilt_delivery_callbacks;

typedef struct quilt_delivery quilt_delivery;

/* What an origin's stream looks like right now. */
typedef struct quilt_origin_view {
  uint64_t origin;
  uint32_t origin_patch; /* patch of the origin, from its data */
  uint64_t next;         /* next seq to deliver */
  uint64_t highest;      /* highest seq known to exist */
  uint64_t gap_since_ns; /* when the oldest open gap was noticed, or 0 */
} quilt_origin_view;

int quilt_delivery_new(quilt_delivery **out, const quilt_delivery_config *cfg,
                       const quilt_delivery_callbacks *cb, void *user);
void quilt_delivery_del(quilt_delivery *d);

/* Result of offering a data message. */
typedef enum quilt_accept {
  QUILT_ACCEPT_NEW = 1,      /* first copy: retained, delivered or held */
  QUILT_ACCEPT_DUPLICATE = 0 /* seen before: nothing changed */
} quilt_accept;

/* Offers one received (or locally published) data message.  Returns
 * QUILT_ACCEPT_NEW or QUILT_ACCEPT_DUPLICATE, or a negative code
 * (QUILT_ERR_LIMIT when the origin table is full, QUILT_ERR_MALFORMED for
 * seq 0 or above QUILT_DELIVERY_MAX_SEQ; the message is dropped and
 * counted).  May call deliver and loss callbacks before returning. */
int quilt_delivery_offer(quilt_delivery *d, const quilt_msg_data *m,
                         uint64_t now_ns);

/* Learns that origin has sent up to seq (a SESSION entry); origin_patch is
 * the origin's patch when the announcer knows it, else 0.  Returns 1 when
 * this opened a new gap, 0 otherwise. */
int quilt_delivery_announce(quilt_delivery *d, uint64_t origin, uint64_t seq,
                            uint32_t origin_patch, uint64_t now_ns);

/* Writes up to max missing ranges of origin into out; returns how many. */
size_t quilt_delivery_missing(const quilt_delivery *d, uint64_t origin,
                              quilt_nack_range *out, size_t max);

/* Origins with an open gap: fills out[0..max) with their ids, returns the
 * count (all of them when max is large enough). */
size_t quilt_delivery_gaps(const quilt_delivery *d, uint64_t *out, size_t max);

/* Declares lost every gap opened before now - repair_timeout (loss events,
 * then delivery of what was held behind).  Returns the number of loss events.
 */
size_t quilt_delivery_expire(quilt_delivery *d, uint64_t now_ns);

/* Earliest time at which quilt_delivery_expire has something to do, or
 * UINT64_MAX. */
uint64_t quilt_delivery_expiry(const quilt_delivery *d);

/* Looks up a retained message for a repair.  Returns 1 and fills *m (its
 * payload points into the retention buffer, valid until the next call that
 * changes d) or 0. */
int quilt_delivery_lookup(quilt_delivery *d, uint64_t origin, uint64_t seq,
                          uint64_t now_ns, quilt_msg_data *m);

/* True when (origin, seq) needs nothing more: accepted (delivered or
 * held), or below the delivery point (declared lost, or older than the
 * first contact with the origin). */
int quilt_delivery_has(const quilt_delivery *d, uint64_t origin, uint64_t seq);

/* How far back a first contact with an origin reaches: at seq s, messages
 * from s - catchup on are wanted (default QUILT_DELIVERY_CATCHUP, the late
 * joiner's rule; QUILT_DELIVERY_MAX_SEQ: all of them). */
void quilt_delivery_set_catchup(quilt_delivery *d, uint64_t catchup);

/* View of one origin; returns 0 when unknown. */
int quilt_delivery_origin(const quilt_delivery *d, uint64_t origin,
                          quilt_origin_view *v);

/* Iterates over the known origins: calls fn for each, in no set order. */
void quilt_delivery_foreach(const quilt_delivery *d,
                            void (*fn)(void *arg, const quilt_origin_view *v),
                            void *arg);

typedef struct quilt_delivery_counters {
  uint64_t delivered;
  uint64_t duplicates;
  uint64_t loss_events;
  uint64_t lost_messages;
  uint64_t retained_bytes;
  uint64_t retained_messages;
  uint64_t evicted; /* dropped from retention by the bounds */
  uint64_t refused; /* dropped at a limit */
} quilt_delivery_counters;

void quilt_delivery_counters_get(const quilt_delivery *d,
                                 quilt_delivery_counters *c);

#endif /* QUILT_DELIVERY_H */
