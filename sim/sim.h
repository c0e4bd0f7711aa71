/*
 * sim.h -- the deterministic discrete-event simulator.
 *
 * Drives the same lib/ cores as the real driver, with a virtual clock and
 * a modelled network.  Events are ordered by (time, insertion order); one
 * seed drives everything and the same seed replays a run bit for bit.
 *
 * Network model (DESIGN.md section 5):
 *   - every host has an uplink of uplink_bps with a FIFO queue of at most
 *     queue_bytes; a datagram waits for the link, is serialised (len * 8 /
 *     uplink_bps), then travels the one-way latency RTT/2 of the topology;
 *   - a multicast datagram is serialised once and reaches every member of
 *     the sender's IPMC domain (cluster) that joined its group;
 *   - each datagram is lost on each link with probability `loss`;
 *   - hosts crash (all state lost, packets to them dropped).
 * Invariants checked as it runs: no duplicate delivery, per-origin order,
 * the bootstrap server's patch table consistent.  A violation stops the run
 * with the seed and the event.
 */
#ifndef QUILT_SIM_SIM_H
#define QUILT_SIM_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "matrix.h"
#include "report.h"
#include "rules.h"
#include "topo.h"

typedef enum quilt_sim_protocol {
  QUILT_SIM_QUILT = 0,   /* rules + patches + representatives, joined by
                            the OMNI overlay tree */
  QUILT_SIM_UNICAST = 1, /* the origin sends a copy to every host */
  QUILT_SIM_DIRECT = 2,  /* as QUILT, with the direct overlay (every
                            primary sends to every other) */
  QUILT_SIM_OMNI = 3,    /* no IPMC: the rules (a `tree` rule) put hosts in
                            OMNI tree patches (the paper's baseline) */
  QUILT_SIM_MESH = 4,    /* the rules (a `mesh` rule) put every host in one
                            DONet mesh (the Internet baseline) */
} quilt_sim_protocol;

/* The protocol's name in reports and on the command line. */
const char *quilt_sim_protocol_name(quilt_sim_protocol p);

typedef struct quilt_sim_params {
  const char *scenario;      /* name for reports */
  quilt_sim_protocol protocol;
  uint64_t seed;
  const quilt_topo *topo;    /* borrowed */
  const quilt_rules *rules;  /* borrowed; used by QUILT_SIM_QUILT */
  uint32_t messages;         /* messages published, from random origins */
  uint32_t payload_bytes;
  uint64_t message_interval_ns; /* between two publications */
  uint64_t warmup_ns;        /* joins happen in [0, warmup/2) */
  uint64_t drain_max_ns;     /* run at most this long after the last
                                publication */
  uint32_t loss_ppm;         /* per-link loss, parts per million */
  int fail_reps;             /* crash every primary halfway through */
  uint64_t restart_reps_ns;  /* with fail_reps: they come back after this
                                (0 = never) */
  int restart_bootstrap;     /* the server crashes a quarter of the way
                                through and restarts empty */
  uint64_t bootstrap_down_ns; /* ...after this long */
  uint64_t uplink_bps;
  uint64_t queue_bytes;
  uint64_t check_interval_ns; /* patch-table invariant checks */
  double churn;              /* this fraction of hosts crashes at random
                                times during the publications; half of them
                                (at random) restart 0.2 to 2 s later */

  /* The Internet scenario (docs/mesh.md).  With a matrix, hosts are its
   * rows and the one-way latency i -> j is rtt(i, j) / 2 (topo is not
   * used); nobody has IPMC; uplinks follow `uplinks` (quilt_sim_uplinks;
   * the bootstrap server's is uplink_bps) with a queue of QUILT_SIM_QUEUE_NS
   * of sending;
   * nat_share of the hosts are behind a NAT, given the EUID's class.  A
   * host joins with EUID region 0 and the bootstrap server gives it the
   * region of its nearest landmark from the RTTs it measures
   * (lib/landmark.h); with kmedoid_regions the simulator hands out a
   * region instead: each host's nearest, by the matrix's RTT, of `regions`
   * hosts chosen by k-medoids over the whole matrix (an oracle, for
   * comparison). */
  const quilt_matrix *matrix; /* borrowed; NULL: the data-centre model */
  int uplinks;                /* quilt_sim_uplinks */
  double nat_share;           /* hosts behind NAT, 0..1 */
  int kmedoid_regions;        /* 1: the simulator's regions, not the
                                 server's */
  uint32_t regions;           /* with kmedoid_regions: medoids, 1..255 */
  /* A stream (with a matrix, or alone): one publisher, a random public
   * host, publishes `messages` segments of payload_bytes every
   * message_interval_ns and is never churned; a (host, segment) pair is in
   * time when the segment's first copy reaches the host by its time +
   * playback_delay_ns (the continuity index).  Mesh patches use this
   * profile, with `partners` partners (M) in the mesh baseline and
   * `patch_partners` in the patches of the other protocols. */
  int stream;
  uint64_t playback_delay_ns;
  uint32_t partners;       /* M of the mesh baseline (one mesh of all) */
  uint32_t patch_partners; /* M in quilt's mesh patches (bounded, nearby) */
} quilt_sim_params;

/* Uplinks of the Internet hosts (docs/mesh.md); the publisher always has
 * 10 Mbit/s.  A queue holds QUILT_SIM_QUEUE_NS of sending at the host's
 * rate (a home router's buffer), at least 32 KiB. */
typedef enum quilt_sim_uplinks {
  QUILT_SIM_UPLINKS_PLANETLAB = 0,  /* 10 Mbit/s each: DONet's PlanetLab
                                       runs, where uplinks are not what
                                       limits a 400-500 kbit/s stream */
  QUILT_SIM_UPLINKS_RESIDENTIAL = 1 /* [R] 20% 10 Mbit/s, 50% 2 Mbit/s,
                                       30% 1 Mbit/s */
} quilt_sim_uplinks;
#define QUILT_SIM_QUEUE_NS 1000000000ull

/* The streaming settings of the Internet scenario: a 400 kbit/s stream of
 * 20 ms segments (1000 bytes) for 60 s after a 12 s warm-up (the hosts
 * join in the first 6 s; the landmarks are chosen and measured, the
 * regions derived and the hosts moved to their region's patches well
 * within it), 10 s of playback delay (and a drain of that + 2 s), M = 4,
 * 30% of hosts behind NAT, regions from the server, planetlab uplinks.  Sets those fields and the workload's, leaves the rest (the
 * simulator also sets the node's and the server's Internet timers, see
 * docs/mesh.md). */
void quilt_sim_params_internet(quilt_sim_params *p);

/* Defaults: 200 messages of 256 bytes every 10 ms, 6 s warm-up, 60 s
 * drain, no loss, 1 Gbit/s uplinks with 4 MiB queues, a crashed server
 * down for 500 ms. */
void quilt_sim_params_default(quilt_sim_params *p);

/* Runs one simulation and fills *r (free with quilt_sim_result_free).
 * Returns 0, or QUILT_ERR_STATE when an invariant was violated (err says
 * which, with the seed, the time and the event), or another negative code.
 */
int quilt_sim_run(const quilt_sim_params *p, quilt_sim_result *r, char *err,
                  size_t errlen);

#endif /* QUILT_SIM_SIM_H */
