/*
 * topo.h -- simulated network topologies and their file formats.
 *
 * A data-centre topology is a list of clusters (one IPMC domain each) on
 * sites, with inter-site RTTs (formats in data/README.md):
 *   clusters.csv   header "site,cluster,hosts", one row per cluster
 *   site_rtt.csv   '#' comments, header "site_a,site_b,rtt_ms", one row per
 *                  unordered pair of distinct sites; every pair must appear
 * Parsers take the file's bytes (so that fuzz targets and tests need no
 * files) and report the first error as "FILE:LINE:COL: what is wrong".
 */
#ifndef QUILT_SIM_TOPO_H
#define QUILT_SIM_TOPO_H

#include <stddef.h>
#include <stdint.h>

#define QUILT_TOPO_MAX_SITES 256
#define QUILT_TOPO_MAX_CLUSTERS 4096
#define QUILT_TOPO_MAX_HOSTS 200000
#define QUILT_TOPO_MAX_NAME 64 /* bytes in a site or cluster name, with NUL */
#define QUILT_TOPO_ERR_LEN 512
#define QUILT_TOPO_MAX_LINE 1024 /* bytes in a line, without its CR LF */
#define QUILT_TOPO_MAX_FILE_BYTES (16u << 20) /* quilt_topo_load reads */

/* RTT model inside a site (the files give only inter-site RTTs): each
 * cluster draws one intra-cluster RTT in [100, 200] us from the seed, and
 * two clusters of one site are 300 us apart (PAPERS.md section 4). */
#define QUILT_TOPO_INTRA_CLUSTER_RTT_MIN_US 100
#define QUILT_TOPO_INTRA_CLUSTER_RTT_MAX_US 200
#define QUILT_TOPO_INTRA_SITE_RTT_US 300

typedef struct quilt_topo_cluster {
  char site_name[QUILT_TOPO_MAX_NAME];
  char name[QUILT_TOPO_MAX_NAME];
  uint32_t site;       /* index into sites */
  uint32_t hosts;      /* number of hosts, >= 1 */
  uint32_t first_host; /* index of its first host in the host numbering */
  uint32_t rtt_us;     /* RTT between two hosts of this cluster */
} quilt_topo_cluster;

typedef struct quilt_topo {
  uint32_t nsites;
  char (*site_names)[QUILT_TOPO_MAX_NAME]; /* nsites names */
  uint32_t *site_rtt_us;                   /* nsites x nsites, symmetric */
  uint32_t nclusters;
  quilt_topo_cluster *clusters;
  uint32_t nhosts;
  uint32_t *host_cluster; /* nhosts: cluster index of each host; hosts are
                             numbered cluster by cluster in file order */
} quilt_topo;

/* Parses clusters.csv then site_rtt.csv and builds *t.  Sites are the
 * distinct site names of clusters.csv in order of first appearance; every
 * pair of them must have exactly one row in site_rtt.csv (either order),
 * rows naming unknown sites are errors, rtt_ms must be a finite number
 * > 0 and < 10000.  seed draws the intra-cluster RTTs.  Returns 0, or
 * QUILT_ERR_SYNTAX / QUILT_ERR_LIMIT / QUILT_ERR_NOMEM with err set; on
 * failure *t is left zeroed (quilt_topo_free on it is harmless). */
int quilt_topo_parse(quilt_topo *t, const char *clusters_name,
                     const char *clusters_text, size_t clusters_len,
                     const char *rtt_name, const char *rtt_text,
                     size_t rtt_len, uint64_t seed, char *err,
                     size_t errlen);

/* Reads both files and calls quilt_topo_parse; a missing or unreadable file
 * is reported as "FILE: cannot read: REASON" with QUILT_ERR_IO, a file
 * larger than QUILT_TOPO_MAX_FILE_BYTES with QUILT_ERR_LIMIT. */
int quilt_topo_load(quilt_topo *t, const char *clusters_path,
                    const char *rtt_path, uint64_t seed, char *err,
                    size_t errlen);

/* Frees what quilt_topo_parse allocated and zeroes *t. */
void quilt_topo_free(quilt_topo *t);

/* RTT in microseconds between two hosts (0 for a == b). */
uint32_t quilt_topo_rtt_us(const quilt_topo *t, uint32_t a, uint32_t b);

#endif /* QUILT_SIM_TOPO_H */
