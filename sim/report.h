/*
 * report.h -- what a simulation run measured, and how it is shown: a table
 * on stdout, JSON (one object per protocol), a latency CDF plot (gnuplot).
 */
#ifndef QUILT_SIM_REPORT_H
#define QUILT_SIM_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct quilt_stats {
  double p50, p90, p99, max, mean;
  size_t n;
} quilt_stats;

typedef struct quilt_sim_result {
  char scenario[32];
  char protocol[32];
  uint64_t seed;
  uint32_t hosts;          /* hosts in the run */
  uint32_t hosts_alive;    /* alive at the end */
  uint32_t messages;       /* messages published */
  uint32_t messages_orphaned; /* published by a host that crashed before
                                 any copy reached a survivor: owed to
                                 nobody, not counted in expected */
  uint64_t expected;       /* (alive host, message) pairs to deliver */
  uint64_t delivered;      /* of those, delivered */
  double delivery_ratio;   /* delivered / expected */
  uint64_t duplicate_deliveries;
  uint64_t loss_events;    /* loss events reported to applications */
  uint64_t malformed_dropped; /* datagrams a decoder refused */
  quilt_stats latency_ms;     /* per delivered (host, message) */
  quilt_stats lower_bound_ms; /* direct one-way origin->host, same pairs */
  uint64_t data_bytes;        /* bytes of DATA datagrams sent */
  uint64_t control_bytes;     /* bytes of every other datagram sent */
  uint64_t packets_lost;      /* dropped by the loss model or full queues */
  uint64_t events;            /* simulator events processed */
  double sim_seconds;         /* simulated time at the end */
  double wall_seconds;        /* real time the run took */
  uint32_t failovers;         /* representatives replaced */
  uint32_t churned;           /* hosts crashed by --churn */
  uint32_t churn_restarts;    /* ...of which came back */
  uint64_t orphaned;          /* tree members whose parent went silent */
  quilt_stats reattach_ms;    /* silence of the old parent -> new parent */
  uint64_t tree_cycles;       /* cycles among the views of the members,
                                 all of one epoch (an invariant: 0) */
  uint64_t trace_hash;        /* FNV-1a over every event: equal for two runs
                                 that took exactly the same path */
  /* A stream (the Internet scenario): the rows below are shown. */
  int streaming;
  uint64_t stream_pairs;      /* (alive host, segment) pairs owed, as for
                                 expected */
  uint64_t stream_in_time;    /* of them, first copy by the deadline */
  double continuity_index;    /* stream_in_time / stream_pairs */
  quilt_stats first_copy_ms;  /* per owed pair reached: first copy's
                                 arrival - segment time */
  uint64_t stream_data_bytes;    /* sent while the stream was published */
  uint64_t stream_control_bytes; /* (its first segment to its last) */
  uint64_t nat_dropped;       /* datagrams a NAT's filter refused */
  /* Samples behind the two distributions, for the CDF plot; owned by the
   * result (free with quilt_sim_result_free). */
  double *latency_samples_ms;
  double *lower_bound_samples_ms;
  size_t nsamples;
} quilt_sim_result;

/* Frees the samples and resets them to NULL / 0; the other fields stay
 * (a table or JSON can still be written).  NULL is allowed. */
void quilt_sim_result_free(quilt_sim_result *r);

/* Computes percentiles (nearest-rank), max and mean of samples[0..n); sorts
 * the array in place.  n == 0 gives all zeros. */
void quilt_stats_compute(quilt_stats *s, double *samples, size_t n);

/* Prints results side by side, one column per protocol, one row per
 * metric.  The output depends only on the results (wall time is printed on
 * its own last line so that everything above it replays byte for byte). */
void quilt_report_table(FILE *out, const quilt_sim_result *r, size_t n);

/* Writes a JSON array with one object per result.  Returns 0, or
 * QUILT_ERR_IO with err set to "PATH: REASON". */
int quilt_report_json(const char *path, const quilt_sim_result *r, size_t n,
                      char *err, size_t errlen);

/* Draws the latency CDFs of every result and the lower bound of the first
 * into a PNG with gnuplot.  The samples are not modified (a sorted copy is
 * drawn, at most about 2000 points per curve); temporary files in /tmp are
 * removed.  Returns 0, or QUILT_ERR_IO with err set (no gnuplot, cannot
 * write, no positive sample), or QUILT_ERR_NOMEM. */
int quilt_report_plot(const char *path, const quilt_sim_result *r, size_t n,
                      char *err, size_t errlen);

#endif /* QUILT_SIM_REPORT_H */
