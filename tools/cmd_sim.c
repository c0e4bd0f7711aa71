/*
 * cmd_sim.c -- `quilt sim SCENARIO`: run a scenario in the simulator and
 * report it (a table; JSON and a CDF plot on request).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "donet.h"
#include "matrix.h"
#include "proto.h"
#include "quilt.h"
#include "report.h"
#include "rules.h"
#include "sim.h"
#include "topo.h"

#define CMD "quilt sim"
#define MAX_COMPARE 5
/* quilt's mesh patches in the Internet scenario: hosts of one region, at
 * most this many per patch (docs/mesh.md says why 16). */
#define INTERNET_PATCH_MAX 16

static void usage(FILE *out) {
  fprintf(out,
          "usage: quilt sim datacenter [OPTIONS]\n"
          "       quilt sim internet [OPTIONS]\n"
          "\n"
          "Runs a scenario in the deterministic simulator, driving the same\n"
          "protocol cores as real hosts, and prints what it measured.\n"
          "\n"
          "scenarios:\n"
          "  datacenter        Grid'5000: 25 clusters (one IPMC domain each)\n"
          "                    on 9 sites, 1528 hosts; event messages from\n"
          "                    random origins\n"
          "  internet          hosts of an RTT matrix (default king951), no\n"
          "                    IPMC, a share behind NAT; one publisher streams\n"
          "                    segments; the continuity index is reported\n"
          "\n"
          "options:\n"
          "  --protocol P      quilt: rules + IPMC patches + representatives\n"
          "                      joined by an OMNI tree (the default);\n"
          "                    direct: the same, representatives joined\n"
          "                      directly (each sends to every other);\n"
          "                    omni: one OMNI tree over all hosts, no IPMC\n"
          "                      (the paper's baseline);\n"
          "                    unicast: the origin sends a copy to every host\n"
          "                      (datacenter only);\n"
          "                    mesh: one DONet mesh over all hosts (the\n"
          "                      Internet baseline); in the internet\n"
          "                      scenario quilt is mesh patches of nearby\n"
          "                      hosts (by region, at most 16 each) joined\n"
          "                      by the OMNI overlay\n"
          "  --compare P,Q,... run several protocols on the same inputs and\n"
          "                    seed, side by side\n"
          "  --seed N          seed of the run (default: from the clock;\n"
          "                    printed, and the same seed replays the run)\n"
          "  --messages N      messages to publish (default 200)\n"
          "  --size BYTES      payload of each message (default 256)\n"
          "  --interval-ms MS  time between publications (default 10)\n"
          "  --loss P          loss probability of every packet on every\n"
          "                    link (default 0)\n"
          "  --fail-reps       crash the primary representative of every\n"
          "                    patch halfway through the run\n"
          "  --restart-reps-ms MS  with --fail-reps: the crashed hosts restart\n"
          "                    (empty, as new members) after MS\n"
          "  --churn F         a fraction F (0..1) of the hosts, any role,\n"
          "                    crash at random times while messages are\n"
          "                    published; half of them restart 0.2-2 s later\n"
          "  --restart-bootstrap  the bootstrap server crashes a quarter of\n"
          "                    the way through and restarts empty 500 ms\n"
          "                    later; it rebuilds its table from heartbeats\n"
          "  --matrix FILE     internet: host RTT matrix (data/internet/*.matrix\n"
          "                    format; default king951.matrix)\n"
          "  --nat-share F     internet: share of hosts behind NAT, 0..1\n"
          "                    (default 0.3)\n"
          "  --rate KBPS       internet: stream rate (default 400)\n"
          "  --segment-ms MS   internet: media time of a segment (default 20)\n"
          "  --duration-s S    internet: length of the stream (default 60)\n"
          "  --playback-s S    internet: playback delay, a segment's deadline\n"
          "                    after its time (default 10)\n"
          "  --partners M      internet: DONet partners per host of the mesh\n"
          "                    baseline (default 4, the paper's)\n"
          "  --patch-partners M  internet: partners per host in quilt's mesh\n"
          "                    patches (default 3: at most --patch-max\n"
          "                    nearby hosts, fed at their primary)\n"
          "  --uplinks U       internet: planetlab (10 Mbit/s each, the\n"
          "                    default) or residential (20%% 10, 50%% 2,\n"
          "                    30%% 1 Mbit/s)\n"
          "  --patch-max N     internet: quilt's mesh patches hold at most N\n"
          "                    hosts of a region (default 16)\n"
          "  --regions R       internet: landmarks (the default: hosts join\n"
          "                    without a region and the bootstrap server\n"
          "                    derives it from the RTTs they measure to its\n"
          "                    landmarks) or kmedoids (the simulator hands\n"
          "                    each host its nearest of 8 medoids of the\n"
          "                    matrix: an oracle, for comparison)\n"
          "  --warmup-s S      internet: time from the first join to the\n"
          "                    first segment (default 12; hosts join in\n"
          "                    its first half)\n"
          "  --clusters FILE   topology: site,cluster,hosts rows\n"
          "  --site-rtt FILE   topology: site_a,site_b,rtt_ms rows\n"
          "  --rules FILE      rules file (default: the built-in rules)\n"
          "  --json FILE       write the results as JSON\n"
          "  --plot FILE.png   draw the latency CDFs with gnuplot\n"
          "  --help            this text\n"
          "\n"
          "exit status: 0 success, 1 an invariant was violated or an output\n"
          "could not be written, 2 usage error or bad input file\n");
}

static int parse_protocol(const char *s, size_t len, quilt_sim_protocol *p) {
  static const quilt_sim_protocol all[] = {QUILT_SIM_QUILT, QUILT_SIM_DIRECT,
                                           QUILT_SIM_OMNI, QUILT_SIM_UNICAST,
                                           QUILT_SIM_MESH};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *name = quilt_sim_protocol_name(all[i]);
    if (strlen(name) == len && memcmp(s, name, len) == 0) {
      *p = all[i];
      return 0;
    }
  }
  fprintf(stderr,
          "%s: unknown protocol '%.*s' (known: quilt, direct, omni, "
          "unicast, mesh)\n",
          CMD, (int)len, s);
  return -1;
}

static quilt_rules *load_rules(const char *path, const char *text,
                               size_t len) {
  size_t nproto;
  const char *const *names = quilt_proto_names(&nproto);
  quilt_rules *r = NULL;
  char err[QUILT_RULES_ERR_LEN];
  if (quilt_rules_parse(&r, path, text, len, names, nproto, err,
                        sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", CMD, err);
    return NULL;
  }
  return r;
}

int quilt_cmd_sim(int argc, char **argv) {
  const char *scenario = NULL, *clusters = NULL, *site_rtt = NULL;
  const char *matrix_path = NULL;
  uint64_t rate_kbps = 400, segment_ms = 20, duration_s = 60, playback_s = 10;
  uint64_t partners = 4, patch_partners = 3, patch_max = INTERNET_PATCH_MAX;
  int uplinks = QUILT_SIM_UPLINKS_PLANETLAB;
  double nat_share = 0.3;
  uint64_t warmup_s = 12;
  int kmedoids = 0;
  int internet_opt = 0;   /* an option only the internet scenario takes */
  int datacenter_opt = 0; /* one only the datacenter scenario takes */
  const char *rules_path = NULL, *json = NULL, *plot = NULL;
  quilt_sim_protocol protos[MAX_COMPARE] = {QUILT_SIM_QUILT};
  size_t nprotos = 1;
  int have_seed = 0;
  quilt_sim_params p;
  quilt_sim_params_default(&p);

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    char flag[64];
    if (strncmp(a, "--", 2) == 0) {
      const char *eq = strchr(a, '=');
      size_t fl = eq ? (size_t)(eq - a) : strlen(a);
      if (fl >= sizeof flag)
        fl = sizeof flag - 1;
      memcpy(flag, a, fl);
      flag[fl] = '\0';
      if (eq)
        val = eq + 1;
    } else {
      if (scenario) {
        fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n",
                CMD, a, CMD);
        return QUILT_EXIT_USAGE;
      }
      scenario = a;
      continue;
    }
    static const char *const valued[] = {
        "--protocol", "--compare", "--seed",     "--messages", "--size",
        "--interval-ms", "--loss", "--clusters", "--site-rtt", "--rules",
        "--json",     "--plot",    "--restart-reps-ms", "--churn",
        "--matrix",   "--nat-share", "--rate", "--segment-ms", "--duration-s",
        "--playback-s", "--partners", "--patch-partners", "--uplinks",
        "--patch-max",
        "--regions",  "--warmup-s"};
    static const char *const bare[] = {"--help", "--fail-reps",
                                       "--restart-bootstrap"};
    int takes_value = -1;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
      if (strcmp(flag, valued[k]) == 0)
        takes_value = 1;
    for (size_t k = 0; k < sizeof bare / sizeof bare[0]; k++)
      if (strcmp(flag, bare[k]) == 0)
        takes_value = 0;
    if (takes_value < 0) {
      fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", CMD, flag,
              CMD);
      return QUILT_EXIT_USAGE;
    }
    if (takes_value && !val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value (see %s --help)\n", CMD, flag,
                CMD);
        return QUILT_EXIT_USAGE;
      }
      val = argv[++i];
    } else if (!takes_value && val) {
      fprintf(stderr, "%s: %s takes no value\n", CMD, flag);
      return QUILT_EXIT_USAGE;
    }
    uint64_t u;
    double d;
    if (strcmp(flag, "--help") == 0) {
      usage(stdout);
      return QUILT_EXIT_OK;
    } else if (strcmp(flag, "--protocol") == 0) {
      if (parse_protocol(val, strlen(val), &protos[0]) < 0)
        return QUILT_EXIT_USAGE;
      nprotos = 1;
    } else if (strcmp(flag, "--compare") == 0) {
      nprotos = 0;
      const char *s = val;
      for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (nprotos == MAX_COMPARE) {
          fprintf(stderr, "%s: --compare: at most %d protocols\n", CMD,
                  MAX_COMPARE);
          return QUILT_EXIT_USAGE;
        }
        if (parse_protocol(s, len, &protos[nprotos]) < 0)
          return QUILT_EXIT_USAGE;
        for (size_t k = 0; k < nprotos; k++)
          if (protos[k] == protos[nprotos]) {
            fprintf(stderr, "%s: --compare: '%.*s' listed twice\n", CMD,
                    (int)len, s);
            return QUILT_EXIT_USAGE;
          }
        nprotos++;
        if (!comma)
          break;
        s = comma + 1;
      }
    } else if (strcmp(flag, "--seed") == 0) {
      if (cli_parse_u64(CMD, flag, val, 0, UINT64_MAX, &u) < 0)
        return QUILT_EXIT_USAGE;
      p.seed = u;
      have_seed = 1;
    } else if (strcmp(flag, "--messages") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 1000000, &u) < 0)
        return QUILT_EXIT_USAGE;
      p.messages = (uint32_t)u;
      datacenter_opt = 1;
    } else if (strcmp(flag, "--size") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, QUILT_WIRE_MAX_PAYLOAD, &u) < 0)
        return QUILT_EXIT_USAGE;
      p.payload_bytes = (uint32_t)u;
      datacenter_opt = 1;
    } else if (strcmp(flag, "--interval-ms") == 0) {
      if (cli_parse_double(CMD, flag, val, 0.001, 60001, &d) < 0)
        return QUILT_EXIT_USAGE;
      p.message_interval_ns = (uint64_t)(d * 1e6);
      datacenter_opt = 1;
    } else if (strcmp(flag, "--loss") == 0) {
      if (cli_parse_double(CMD, flag, val, 0, 0.5, &d) < 0)
        return QUILT_EXIT_USAGE;
      p.loss_ppm = (uint32_t)(d * 1e6 + 0.5);
    } else if (strcmp(flag, "--fail-reps") == 0) {
      p.fail_reps = 1;
    } else if (strcmp(flag, "--restart-reps-ms") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 3600000, &u) < 0)
        return QUILT_EXIT_USAGE;
      p.restart_reps_ns = u * 1000000ULL;
    } else if (strcmp(flag, "--churn") == 0) {
      if (cli_parse_double(CMD, flag, val, 0, 1, &d) < 0)
        return QUILT_EXIT_USAGE;
      p.churn = d;
    } else if (strcmp(flag, "--restart-bootstrap") == 0) {
      p.restart_bootstrap = 1;
    } else if (strcmp(flag, "--matrix") == 0) {
      matrix_path = val;
      internet_opt = 1;
    } else if (strcmp(flag, "--nat-share") == 0) {
      if (cli_parse_double(CMD, flag, val, 0, 2, &d) < 0)
        return QUILT_EXIT_USAGE;
      if (d > 1) {
        fprintf(stderr, "%s: %s: '%s' is not a share in [0, 1]\n", CMD, flag,
                val);
        return QUILT_EXIT_USAGE;
      }
      nat_share = d;
      internet_opt = 1;
    } else if (strcmp(flag, "--rate") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 1000000, &rate_kbps) < 0)
        return QUILT_EXIT_USAGE;
      internet_opt = 1;
    } else if (strcmp(flag, "--segment-ms") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 10000, &segment_ms) < 0)
        return QUILT_EXIT_USAGE;
      internet_opt = 1;
    } else if (strcmp(flag, "--duration-s") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 3600, &duration_s) < 0)
        return QUILT_EXIT_USAGE;
      internet_opt = 1;
    } else if (strcmp(flag, "--playback-s") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 120, &playback_s) < 0)
        return QUILT_EXIT_USAGE;
      internet_opt = 1;
    } else if (strcmp(flag, "--partners") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 21, &partners) < 0)
        return QUILT_EXIT_USAGE;
      internet_opt = 1;
    } else if (strcmp(flag, "--patch-partners") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 21, &patch_partners) < 0)
        return QUILT_EXIT_USAGE;
      internet_opt = 1;
    } else if (strcmp(flag, "--uplinks") == 0) {
      if (strcmp(val, "planetlab") == 0)
        uplinks = QUILT_SIM_UPLINKS_PLANETLAB;
      else if (strcmp(val, "residential") == 0)
        uplinks = QUILT_SIM_UPLINKS_RESIDENTIAL;
      else {
        fprintf(stderr,
                "%s: --uplinks: '%s' is not planetlab or residential\n", CMD,
                val);
        return QUILT_EXIT_USAGE;
      }
      internet_opt = 1;
    } else if (strcmp(flag, "--patch-max") == 0) {
      if (cli_parse_u64(CMD, flag, val, 2, 4096, &patch_max) < 0)
        return QUILT_EXIT_USAGE;
      internet_opt = 1;
    } else if (strcmp(flag, "--regions") == 0) {
      if (strcmp(val, "landmarks") == 0)
        kmedoids = 0;
      else if (strcmp(val, "kmedoids") == 0)
        kmedoids = 1;
      else {
        fprintf(stderr,
                "%s: --regions: '%s' is not landmarks or kmedoids\n", CMD,
                val);
        return QUILT_EXIT_USAGE;
      }
      internet_opt = 1;
    } else if (strcmp(flag, "--warmup-s") == 0) {
      if (cli_parse_u64(CMD, flag, val, 1, 600, &warmup_s) < 0)
        return QUILT_EXIT_USAGE;
      internet_opt = 1;
    } else if (strcmp(flag, "--clusters") == 0) {
      clusters = val;
    } else if (strcmp(flag, "--site-rtt") == 0) {
      site_rtt = val;
    } else if (strcmp(flag, "--rules") == 0) {
      rules_path = val;
    } else if (strcmp(flag, "--json") == 0) {
      json = val;
    } else if (strcmp(flag, "--plot") == 0) {
      plot = val;
    }
  }
  if (!scenario) {
    fprintf(stderr, "%s: which scenario? (see %s --help)\n", CMD, CMD);
    return QUILT_EXIT_USAGE;
  }
  int internet = strcmp(scenario, "internet") == 0;
  if (!internet && strcmp(scenario, "datacenter") != 0) {
    fprintf(stderr,
            "%s: unknown scenario '%s' (known: datacenter, internet)\n", CMD,
            scenario);
    return QUILT_EXIT_USAGE;
  }
  if (!internet && internet_opt) {
    fprintf(stderr,
            "%s: --matrix, --nat-share, --rate, --segment-ms, --duration-s, "
            "--playback-s, --partners, --patch-partners, --uplinks, "
            "--patch-max, --regions and --warmup-s are for the internet "
            "scenario\n",
            CMD);
    return QUILT_EXIT_USAGE;
  }
  if (internet && (clusters || site_rtt || datacenter_opt)) {
    fprintf(stderr,
            "%s: the internet scenario streams (--rate, --segment-ms, "
            "--duration-s) over --matrix: --messages, --size, --interval-ms, "
            "--clusters and --site-rtt are for datacenter\n",
            CMD);
    return QUILT_EXIT_USAGE;
  }
  for (size_t i = 0; i < nprotos; i++) {
    if (internet && protos[i] == QUILT_SIM_UNICAST) {
      fprintf(stderr,
              "%s: unicast is a data-centre baseline (the internet scenario "
              "runs quilt, mesh, direct, omni)\n",
              CMD);
      return QUILT_EXIT_USAGE;
    }
    if (!internet && protos[i] == QUILT_SIM_MESH) {
      fprintf(stderr,
              "%s: mesh is the internet scenario's baseline (datacenter runs "
              "quilt, direct, omni, unicast)\n",
              CMD);
      return QUILT_EXIT_USAGE;
    }
  }
  if (p.restart_reps_ns && !p.fail_reps) {
    fprintf(stderr, "%s: --restart-reps-ms needs --fail-reps\n", CMD);
    return QUILT_EXIT_USAGE;
  }
  if (!!clusters != !!site_rtt) {
    fprintf(stderr, "%s: --clusters and --site-rtt go together\n", CMD);
    return QUILT_EXIT_USAGE;
  }
  if (internet) {
    uint64_t bits = rate_kbps * segment_ms; /* bits per segment */
    if (bits % 8 != 0 || bits / 8 > QUILT_WIRE_MAX_PAYLOAD) {
      fprintf(stderr,
              "%s: a segment of %llu ms at %llu kbit/s is %.1f bytes: it must "
              "be a whole number of bytes, at most %d (one DATA payload)\n",
              CMD, (unsigned long long)segment_ms,
              (unsigned long long)rate_kbps, (double)bits / 8.0,
              QUILT_WIRE_MAX_PAYLOAD);
      return QUILT_EXIT_USAGE;
    }
    if (duration_s * 1000 / segment_ms < 1 ||
        playback_s * 1000 / segment_ms > QUILT_DONET_MAX_WINDOW) {
      fprintf(stderr,
              "%s: --playback-s %llu is more than %u segments of %llu ms (the "
              "largest buffer map)\n",
              CMD, (unsigned long long)playback_s, QUILT_DONET_MAX_WINDOW,
              (unsigned long long)segment_ms);
      return QUILT_EXIT_USAGE;
    }
    quilt_sim_params_internet(&p);
    p.payload_bytes = (uint32_t)(bits / 8);
    p.message_interval_ns = segment_ms * 1000000ULL;
    p.messages = (uint32_t)(duration_s * 1000 / segment_ms);
    p.playback_delay_ns = playback_s * 1000000000ULL;
    p.drain_max_ns = p.playback_delay_ns + 2000000000ULL;
    p.partners = (uint32_t)partners;
    p.patch_partners = (uint32_t)patch_partners;
    p.nat_share = nat_share;
    p.uplinks = uplinks;
    p.kmedoid_regions = kmedoids;
    p.warmup_ns = warmup_s * 1000000000ULL;
  }
  if (!have_seed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p.seed = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
              ((uint64_t)getpid() << 40)) %
             1000000000ULL;
  }

  char err[1024];
  int rc;
  quilt_topo topo;
  memset(&topo, 0, sizeof topo);
  quilt_matrix *matrix = NULL;
  char cpath[4096], rpath[4096];
  if (internet) {
    if (!matrix_path) {
      snprintf(cpath, sizeof cpath, "%s/internet/king951.matrix",
               cli_data_dir());
      matrix_path = cpath;
    }
    rc = quilt_matrix_load(&matrix, matrix_path, err, sizeof err);
    if (rc != 0) {
      fprintf(stderr, "%s: %s\n", CMD, err);
      return QUILT_EXIT_USAGE;
    }
  } else {
    if (!clusters) {
      snprintf(cpath, sizeof cpath, "%s/grid5000/clusters.csv",
               cli_data_dir());
      snprintf(rpath, sizeof rpath, "%s/grid5000/site_rtt.csv",
               cli_data_dir());
      clusters = cpath;
      site_rtt = rpath;
    }
    rc = quilt_topo_load(&topo, clusters, site_rtt, p.seed, err, sizeof err);
    if (rc != 0) {
      fprintf(stderr, "%s: %s\n", CMD, err);
      return QUILT_EXIT_USAGE;
    }
  }

  quilt_rules *rules = NULL;
  if (rules_path) {
    size_t len;
    char *text = cli_read_file(CMD, rules_path, QUILT_RULES_MAX_TEXT, &len);
    if (!text) {
      quilt_topo_free(&topo);
      quilt_matrix_free(matrix);
      return QUILT_EXIT_USAGE;
    }
    rules = load_rules(rules_path, text, len);
    free(text);
  } else if (internet) {
    /* Mesh patches of nearby hosts, bounded (docs/mesh.md). */
    char text[128];
    snprintf(text, sizeof text, "* -> mesh by region max %llu\n",
             (unsigned long long)patch_max);
    rules = load_rules("<internet rules>", text, strlen(text));
  } else {
    const char *text = quilt_rules_default_text();
    rules = load_rules("<built-in rules>", text, strlen(text));
  }
  static const char unicast_text[] = "* -> unicast\n";
  quilt_rules *unicast_rules =
      load_rules("<unicast rules>", unicast_text, sizeof unicast_text - 1);
  /* The OMNI baseline: every host in one tree (as many as a tree holds). */
  static const char omni_text[] = "* -> tree max 4096\n";
  quilt_rules *omni_rules =
      load_rules("<omni rules>", omni_text, sizeof omni_text - 1);
  /* The DONet baseline: every host in one mesh. */
  static const char mesh_text[] = "* -> mesh\n";
  quilt_rules *mesh_rules =
      load_rules("<mesh rules>", mesh_text, sizeof mesh_text - 1);
  if (!rules || !unicast_rules || !omni_rules || !mesh_rules) {
    quilt_rules_del(rules);
    quilt_rules_del(unicast_rules);
    quilt_rules_del(omni_rules);
    quilt_rules_del(mesh_rules);
    quilt_topo_free(&topo);
    quilt_matrix_free(matrix);
    return QUILT_EXIT_USAGE;
  }

  char churn[64] = "";
  if (p.churn > 0)
    snprintf(churn, sizeof churn, ", churn %.3f", p.churn);
  if (internet)
    printf("quilt sim internet: %u hosts of %s, %.0f%% behind NAT; a "
           "%llu kbit/s stream in %llu ms segments of %u bytes for %llu s "
           "after %llu s of warm-up, playback delay %llu s, M = %u (%u in "
           "quilt's patches), %s uplinks, regions from %s, loss %.4f%s, "
           "seed %llu\n",
           quilt_matrix_n(matrix), matrix_path, nat_share * 100,
           (unsigned long long)rate_kbps, (unsigned long long)segment_ms,
           p.payload_bytes, (unsigned long long)duration_s,
           (unsigned long long)warmup_s, (unsigned long long)playback_s,
           p.partners, p.patch_partners,
           uplinks == QUILT_SIM_UPLINKS_RESIDENTIAL ? "residential"
                                                    : "planetlab",
           kmedoids ? "k-medoids" : "landmarks", p.loss_ppm / 1e6, churn,
           (unsigned long long)p.seed);
  else
    printf("quilt sim %s: %u hosts in %u clusters on %u sites, %u messages "
           "of %u bytes, loss %.4f%s%s%s%s, seed %llu\n",
           scenario, topo.nhosts, topo.nclusters, topo.nsites, p.messages,
           p.payload_bytes, p.loss_ppm / 1e6, churn,
           p.fail_reps ? ", primaries fail halfway" : "",
           p.restart_reps_ns ? " and restart" : "",
           p.restart_bootstrap ? ", bootstrap server restarts" : "",
           (unsigned long long)p.seed);
  printf("(replay with --seed %llu)\n\n", (unsigned long long)p.seed);
  fflush(stdout);

  quilt_sim_result results[MAX_COMPARE];
  memset(results, 0, sizeof results);
  int status = QUILT_EXIT_OK;
  size_t done = 0;
  p.topo = internet ? NULL : &topo;
  p.matrix = matrix;
  p.scenario = scenario;
  for (size_t i = 0; i < nprotos; i++) {
    p.protocol = protos[i];
    p.rules = protos[i] == QUILT_SIM_UNICAST ? unicast_rules
              : protos[i] == QUILT_SIM_OMNI  ? omni_rules
              : protos[i] == QUILT_SIM_MESH  ? mesh_rules
                                             : rules;
    rc = quilt_sim_run(&p, &results[i], err, sizeof err);
    done++;
    if (rc != 0) {
      fprintf(stderr, "%s: %s: %s\n", CMD, results[i].protocol, err);
      status = QUILT_EXIT_FAILURE;
      break;
    }
  }
  quilt_report_table(stdout, results, done);
  if (status == QUILT_EXIT_OK && json &&
      quilt_report_json(json, results, done, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", CMD, err);
    status = QUILT_EXIT_FAILURE;
  }
  if (status == QUILT_EXIT_OK && plot &&
      quilt_report_plot(plot, results, done, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", CMD, err);
    status = QUILT_EXIT_FAILURE;
  }
  for (size_t i = 0; i < done; i++)
    quilt_sim_result_free(&results[i]);
  quilt_rules_del(rules);
  quilt_rules_del(unicast_rules);
  quilt_rules_del(omni_rules);
  quilt_rules_del(mesh_rules);
  quilt_topo_free(&topo);
  quilt_matrix_free(matrix);
  return status;
}
