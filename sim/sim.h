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
} quilt_sim_params;

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
