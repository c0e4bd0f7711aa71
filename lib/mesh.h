/*
 * mesh.h -- the `mesh` patch protocol: DONet / CoolStreaming (lib/donet.h)
 * carrying one stream through Quilt's host core (docs/mesh.md).
 *
 * A stream segment is one Quilt DATA message: origin = the publisher, seq
 * = the segment number (from 1), ts_ns = the segment's time, payload at
 * most QUILT_WIRE_MAX_PAYLOAD bytes.  The members of a mesh patch run one
 * DONet core each: gossip membership, M partners, buffer maps, the pull
 * scheduler.  Supplying a segment is sending its DATA from the node's
 * retention buffer; a segment the node receives goes through the node's
 * delivery layer (exactly once, in order) like any other message.
 *
 * A driver may set the stream profile before the host joins
 * (quilt_mesh_configure); without it the defaults below apply.
 */
#ifndef QUILT_MESH_H
#define QUILT_MESH_H

#include <stddef.h>
#include <stdint.h>

#include "donet.h"
#include "node.h"

/* The stream profile and the DONet knobs a driver may change.  Every field
 * must be set (start from quilt_mesh_config_default). */
typedef struct quilt_mesh_config {
  uint64_t segment_period_ns; /* media time of one segment (> 0) */
  uint32_t segment_bytes;     /* payload of a segment (1..1353) */
  uint64_t window_ns;         /* buffer map window, as media time; in
                                 segments at most QUILT_DONET_MAX_WINDOW */
  uint64_t playback_delay_ns; /* deadline = segment time + this */
  uint32_t partners;          /* M */
  uint32_t partners_max;      /* partners accepted (>= M, <= 32) */
  uint64_t bm_period_ns;      /* buffer map exchange period */
  uint64_t sched_period_ns;   /* scheduling period */
} quilt_mesh_config;

/* Defaults: a 400 kbit/s stream in 20 ms segments of 1000 bytes; a 10 s
 * window (500 segments) and a 10 s playback delay (DONet's buffer, PAPERS.md
 * 3.4); M = 3, at most 6 partners (DONet's M = 4 is for one mesh of
 * hundreds of hosts; a Quilt patch holds a few nearby ones, fed at its
 * primary: docs/mesh.md); buffer maps and scheduling every second
 * (PAPERS.md 3.4: 1 s, as Denacast). */
void quilt_mesh_config_default(quilt_mesh_config *c);

/* Sets the profile host n's mesh uses from its next start (call before
 * quilt_node_start).  Returns 0 or QUILT_ERR_INVAL (a field out of range,
 * a window over QUILT_DONET_MAX_WINDOW segments). */
int quilt_mesh_configure(quilt_node *n, const quilt_mesh_config *c);

typedef struct quilt_mesh_stats {
  quilt_donet_stats donet;   /* the core's counters */
  uint64_t origin;           /* the stream carried here, 0 = none yet */
  uint64_t supplied;         /* segments sent to partners */
  uint64_t supply_missing;   /* asked for, no longer in retention */
  uint64_t other_streams;    /* DATA of a second origin, not carried */
  uint64_t nacks_dropped;    /* NACKs the node core handed us (DONet
                                repairs by pulling) */
  uint64_t sessions_dropped; /* SESSIONs to the patch (buffer maps say
                                what is held) */
  uint64_t bad_seq;          /* seq 0 or over 2^32 - 1: not a segment */
  uint64_t pushed;           /* segments published here and pushed to the
                                patch's primary (mesh_send_all) */
  uint64_t local_segments;   /* segments this host became a source of
                                (published here, or from outside the
                                mesh: the overlay, a non-partner) */
  size_t partners;           /* partners now */
} quilt_mesh_stats;

/* The stats of host n's mesh.  Returns 1, or 0 (*out zeroed) when n is not
 * in a mesh patch. */
int quilt_mesh_stats_get(const quilt_node *n, quilt_mesh_stats *out);

/* Copies up to max of host n's current partners into out; returns how many
 * (0 when n is not in a mesh patch). */
size_t quilt_mesh_partners(const quilt_node *n, quilt_donet_partner_info *out,
                           size_t max);

#endif /* QUILT_MESH_H */
