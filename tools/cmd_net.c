/*
 * cmd_net.c -- `quilt bootstrap`, `quilt sub` and `quilt pub`: Quilt on
 * real sockets (io/), on one libuv loop each.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <arpa/inet.h>

#include "cli.h"
#include "env.h"
#include "io.h"
#include "proto.h"
#include "quilt.h"
#include "rules.h"

/* ---- shared option parsing ---- */

typedef struct opts {
  const char *listen, *rules, *bootstrap, *group, *bind, *iface;
  int no_ipmc;
  uint64_t count;     /* sub: exit after this many messages (0 = never) */
  uint64_t linger_ms; /* pub: stay this long after the last line */
  uint64_t region;
  int report;         /* sub: print a summary line at exit */
  uint64_t rate;      /* pub: messages per second at most */
  uint64_t bw_mbps;   /* announce this uplink (0: measure) */
} opts;

typedef struct flag {
  const char *name;
  int takes_value;
} flag;

/* Parses argv into o.  Returns -1 after printing a one-line error, 1 for
 * --help, 0 otherwise. */
static int parse(const char *cmd, int argc, char **argv, const flag *flags,
                 opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const flag *f = NULL;
    for (const flag *g = flags; g->name; g++)
      if (strcmp(a, g->name) == 0)
        f = g;
    if (strcmp(a, "--help") == 0)
      return 1;
    if (!f) {
      fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", cmd, a,
              cmd);
      return -1;
    }
    const char *v = NULL;
    if (f->takes_value) {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value (see %s --help)\n", cmd, a,
                cmd);
        return -1;
      }
      v = argv[++i];
    }
    if (strcmp(a, "--listen") == 0)
      o->listen = v;
    else if (strcmp(a, "--rules") == 0)
      o->rules = v;
    else if (strcmp(a, "--bootstrap") == 0)
      o->bootstrap = v;
    else if (strcmp(a, "--group") == 0)
      o->group = v;
    else if (strcmp(a, "--bind") == 0)
      o->bind = v;
    else if (strcmp(a, "--iface") == 0)
      o->iface = v;
    else if (strcmp(a, "--no-ipmc") == 0)
      o->no_ipmc = 1;
    else if (strcmp(a, "--report") == 0)
      o->report = 1;
    else if (strcmp(a, "--count") == 0) {
      if (cli_parse_u64(cmd, a, v, 1, UINT64_MAX, &o->count) < 0)
        return -1;
    } else if (strcmp(a, "--linger-ms") == 0) {
      if (cli_parse_u64(cmd, a, v, 0, 3600000, &o->linger_ms) < 0)
        return -1;
    } else if (strcmp(a, "--rate") == 0) {
      if (cli_parse_u64(cmd, a, v, 1, 1000000, &o->rate) < 0)
        return -1;
    } else if (strcmp(a, "--region") == 0) {
      if (cli_parse_u64(cmd, a, v, 0, UINT32_MAX, &o->region) < 0)
        return -1;
    } else if (strcmp(a, "--bw-mbps") == 0) {
      if (cli_parse_u64(cmd, a, v, 1, 4000000, &o->bw_mbps) < 0)
        return -1;
    }
  }
  return 0;
}

static uv_signal_t sig_int, sig_term;
static void (*on_stop_signal)(void);

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  uv_signal_stop(&sig_int);
  uv_signal_stop(&sig_term);
  if (on_stop_signal)
    on_stop_signal();
}

static void watch_signals(uv_loop_t *loop, void (*stop)(void)) {
  on_stop_signal = stop;
  uv_signal_init(loop, &sig_int);
  uv_signal_init(loop, &sig_term);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&sig_int);
  uv_unref((uv_handle_t *)&sig_term);
}

static void close_signals(void) {
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
}

/* ---- quilt bootstrap ---- */

static quilt_server *server;

static void server_stop(void) { quilt_server_stop(server, NULL, NULL); }

int quilt_cmd_bootstrap(int argc, char **argv) {
  static const char *cmd = "quilt bootstrap";
  static const flag flags[] = {{"--listen", 1}, {"--rules", 1}, {NULL, 0}};
  opts o = {0};
  int rc = parse(cmd, argc, argv, flags, &o);
  if (rc == 1) {
    printf("usage: quilt bootstrap --listen ADDR:PORT [--rules FILE]\n\n"
           "Runs the bootstrap server: hosts join here with their EUID, the "
           "rules\nmap them to patches, and the server keeps the patch table "
           "and the\nrepresentatives.  Stops on SIGINT or SIGTERM.\n");
    return QUILT_EXIT_OK;
  }
  if (rc < 0)
    return QUILT_EXIT_USAGE;
  quilt_addr listen;
  if (!o.listen || quilt_io_parse_addr(o.listen, 1, &listen) != 0) {
    fprintf(stderr, "%s: --listen needs ADDR:PORT, e.g. 127.0.0.1:7000\n",
            cmd);
    return QUILT_EXIT_USAGE;
  }
  size_t nproto;
  const char *const *names = quilt_proto_names(&nproto);
  char *text = NULL;
  size_t len;
  const char *fname = o.rules ? o.rules : "<built-in rules>";
  if (o.rules) {
    text = cli_read_file(cmd, o.rules, QUILT_RULES_MAX_TEXT, &len);
    if (!text)
      return QUILT_EXIT_USAGE;
  }
  const char *src = text ? text : quilt_rules_default_text();
  quilt_rules *rules;
  char err[512];
  rc = quilt_rules_parse(&rules, fname, src, text ? len : strlen(src), names,
                         nproto, err, sizeof err);
  free(text);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", cmd, err);
    return QUILT_EXIT_USAGE;
  }
  uv_loop_t *loop = uv_default_loop();
  if (quilt_server_new(&server, loop, &listen, rules, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", cmd, err);
    quilt_rules_del(rules);
    return QUILT_EXIT_FAILURE;
  }
  quilt_addr at = quilt_server_addr(server);
  char as[QUILT_ADDR_STRLEN];
  int nstun = quilt_server_stun_ports(server);
  if (nstun == 2)
    printf("quilt bootstrap: listening on %s, STUN on ports %u and %u\n",
           quilt_addr_str(&at, as), (unsigned)at.port + 1,
           (unsigned)at.port + 2);
  else
    printf("quilt bootstrap: listening on %s, STUN %s\n",
           quilt_addr_str(&at, as),
           nstun == 1 ? "on one port only (no NAT filtering test)"
                      : "off (the next two ports are taken)");
  fflush(stdout);
  watch_signals(loop, server_stop);
  uv_run(loop, UV_RUN_DEFAULT);
  close_signals();
  uv_run(loop, UV_RUN_DEFAULT);
  quilt_server_counters c;
  quilt_server_counters_get(server, &c);
  fprintf(stderr,
          "quilt bootstrap: %llu datagrams, %llu refused, STUN %llu answered "
          "%llu dropped, %llu joins, %llu hosts, %llu patches, %llu "
          "failovers\n",
          (unsigned long long)c.datagrams, (unsigned long long)c.refused,
          (unsigned long long)c.stun_answered,
          (unsigned long long)c.stun_dropped,
          (unsigned long long)c.core.joins, (unsigned long long)c.core.hosts,
          (unsigned long long)c.core.patches,
          (unsigned long long)c.core.failovers);
  quilt_server_free(server);
  quilt_rules_del(rules);
  return QUILT_EXIT_OK;
}

/* ---- quilt sub / quilt pub ---- */

static const flag host_flags[] = {
    {"--bootstrap", 1}, {"--group", 1},  {"--bind", 1},      {"--no-ipmc", 0},
    {"--iface", 1},     {"--rate", 1},
    {"--count", 1},     {"--region", 1}, {"--linger-ms", 1}, {"--report", 0},
    {"--bw-mbps", 1},   {NULL, 0}};

static quilt_host *host;
static opts hopts;
static uint64_t received;

static void host_stopped(quilt_host *h, void *user) {
  (void)h;
  (void)user;
}

static void host_stop(void) { quilt_host_stop(host, host_stopped); }

/* The first IPv4 address of interface `name`, as text. */
static int iface_address(const char *name, char *out) {
  quilt_env_options eo = {0};
  eo.iface = name;
  eo.no_ipmc = 1; /* just the address: no probe */
  quilt_env e;
  char err[128];
  if (quilt_env_detect(&e, &eo, err, sizeof err) != 0)
    return -1;
  struct in_addr in = {htonl(e.ifaces[e.chosen].ip)};
  inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN);
  return 0;
}

static int make_host(const char *cmd, quilt_deliver_cb deliver,
                     quilt_loss_cb loss) {
  if (!hopts.bootstrap || !hopts.group) {
    fprintf(stderr, "%s: --bootstrap ADDR:PORT and --group NAME are needed "
                    "(see %s --help)\n",
            cmd, cmd);
    return QUILT_EXIT_USAGE;
  }
  static char iface_ip[INET_ADDRSTRLEN];
  if (hopts.iface) {
    if (hopts.bind) {
      fprintf(stderr, "%s: --iface and --bind exclude each other\n", cmd);
      return QUILT_EXIT_USAGE;
    }
    if (iface_address(hopts.iface, iface_ip) != 0) {
      fprintf(stderr, "%s: --iface: no interface '%s' with an IPv4 address\n",
              cmd, hopts.iface);
      return QUILT_EXIT_USAGE;
    }
    hopts.bind = iface_ip;
  }
  quilt_host_options ho = {0};
  ho.bootstrap = hopts.bootstrap;
  ho.group = hopts.group;
  ho.bind_ip = hopts.bind;
  ho.no_ipmc = hopts.no_ipmc;
  ho.region = (uint32_t)hopts.region;
  ho.bw_mbps = (uint32_t)hopts.bw_mbps;
  int rc = quilt_host_new(&host, uv_default_loop(), &ho, deliver, loss, NULL);
  if (rc != 0) {
    fprintf(stderr, "%s: bad --bootstrap, --bind or --group\n", cmd);
    return QUILT_EXIT_USAGE;
  }
  if (quilt_host_start(host) != 0) {
    fprintf(stderr, "%s: cannot set up the sockets\n", cmd);
    quilt_host_free(host);
    return QUILT_EXIT_FAILURE;
  }
  return QUILT_EXIT_OK;
}

#define SUB_MAX_SAMPLES 1000000 /* latencies kept for --report */
static double *lat_ms;
static size_t nlat;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double p) {
  if (nlat == 0)
    return 0;
  size_t k = (size_t)(p * (double)nlat + 0.999999);
  if (k < 1)
    k = 1;
  return lat_ms[k - 1];
}

/* One line a program can read (quilt demo does): who this host was and
 * what it delivered, with latency percentiles (origin clock to delivery;
 * meaningful when the origin runs on the same machine). */
static void print_report(void) {
  quilt_host_info in;
  quilt_host_info_get(host, &in);
  qsort(lat_ms, nlat, sizeof *lat_ms, cmp_double);
  printf("REPORT id=%016llx patch=%u protocol=%s role=%s delivered=%llu "
         "losses=%llu p50_ms=%.3f p99_ms=%.3f reattached=%llu\n",
         (unsigned long long)in.id, in.patch_id, in.protocol, in.role,
         (unsigned long long)in.delivered, (unsigned long long)in.losses,
         pct(0.50), pct(0.99), (unsigned long long)in.reattached);
  fflush(stdout);
}

static void sub_deliver(quilt_host *h, uint64_t origin, uint64_t seq,
                        const void *data, size_t len, uint64_t latency_ns,
                        void *user) {
  (void)h;
  (void)origin;
  (void)seq;
  (void)user;
  if (hopts.report && nlat < SUB_MAX_SAMPLES) {
    if (!lat_ms)
      lat_ms = malloc(SUB_MAX_SAMPLES * sizeof *lat_ms);
    if (lat_ms)
      lat_ms[nlat++] = (double)latency_ns / 1e6;
  }
  fwrite(data, 1, len, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  if (hopts.count && ++received == hopts.count) {
    if (hopts.report)
      print_report();
    host_stop();
  }
}

static void sub_stop_signal(void) {
  if (hopts.report)
    print_report();
  host_stop();
}

static void sub_loss(quilt_host *h, uint64_t origin, uint64_t first,
                     uint64_t count, void *user) {
  (void)h;
  (void)user;
  fprintf(stderr, "quilt sub: lost %llu message(s) from %016llx, seq %llu..%llu\n",
          (unsigned long long)count, (unsigned long long)origin,
          (unsigned long long)first, (unsigned long long)(first + count - 1));
}

int quilt_cmd_sub(int argc, char **argv) {
  static const char *cmd = "quilt sub";
  int rc = parse(cmd, argc, argv, host_flags, &hopts);
  if (rc == 1) {
    printf("usage: quilt sub --bootstrap ADDR:PORT --group NAME [--bind IP | --iface NAME]\n"
           "                 [--no-ipmc] [--region N] [--bw-mbps N] [--count N]\n"
           "                 [--report]\n\n"
           "Joins the group and prints each delivered message on its own "
           "line,\nexactly once; loss events go to standard error.  Stops "
           "on SIGINT or\nSIGTERM, or after --count messages.  --report "
           "ends the output with one\nline: REPORT id= patch= protocol= "
           "role= delivered= losses= p50_ms= p99_ms= reattached=\n");
    return QUILT_EXIT_OK;
  }
  if (rc < 0)
    return QUILT_EXIT_USAGE;
  rc = make_host(cmd, sub_deliver, sub_loss);
  if (rc != QUILT_EXIT_OK)
    return rc;
  watch_signals(uv_default_loop(), sub_stop_signal);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  close_signals();
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  quilt_host_free(host);
  free(lat_ms);
  return QUILT_EXIT_OK;
}

/* pub: lines from standard input, published once the host has a patch. */
typedef struct line {
  struct line *next;
  size_t len;
  char data[];
} line;

static line *lines_head, *lines_tail;
static size_t lines_queued;
#define PUB_MAX_QUEUED 100000 /* lines held while the host joins */
static char partial[QUILT_WIRE_MAX_PAYLOAD + 1];
static size_t partial_len;
static int input_done, pub_failed;
static uv_timer_t pub_timer;
static uv_pipe_t in_pipe;
static uv_tty_t in_tty;
static uv_stream_t *in_stream;

static void queue_line(const char *s, size_t n) {
  if (lines_queued == PUB_MAX_QUEUED) {
    fprintf(stderr, "quilt pub: more than %d lines waiting; dropped one\n",
            PUB_MAX_QUEUED);
    return;
  }
  line *l = malloc(sizeof *l + n);
  if (!l)
    return;
  l->next = NULL;
  l->len = n;
  memcpy(l->data, s, n);
  if (lines_tail)
    lines_tail->next = l;
  else
    lines_head = l;
  lines_tail = l;
  lines_queued++;
}

static void take_bytes(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') {
      queue_line(partial, partial_len);
      partial_len = 0;
    } else if (partial_len < QUILT_WIRE_MAX_PAYLOAD) {
      partial[partial_len++] = p[i];
    } else if (partial_len == QUILT_WIRE_MAX_PAYLOAD) {
      fprintf(stderr, "quilt pub: a line longer than %d bytes is cut\n",
              QUILT_WIRE_MAX_PAYLOAD);
      partial_len++; /* report once per line */
    }
  }
}

/* Publication is paced (a token bucket of --rate messages a second, bursts
 * of up to 10 ms worth): NACK-based repair has no acknowledgements to slow
 * a sender down, so an unpaced burst only overflows receivers' buffers and
 * turns into repairs and loss events. */
static double tokens;
static uint64_t tokens_at;

static void flush_lines(void) {
  uint64_t now = uv_hrtime();
  double cap = (double)hopts.rate / 100.0 + 1.0;
  tokens += (double)(now - tokens_at) * (double)hopts.rate / 1e9;
  tokens_at = now;
  if (tokens > cap)
    tokens = cap;
  while (lines_head && quilt_host_joined(host) && tokens >= 1.0) {
    tokens -= 1.0;
    line *l = lines_head;
    int64_t rc = quilt_host_publish(host, l->data,
                                    l->len > QUILT_WIRE_MAX_PAYLOAD
                                        ? QUILT_WIRE_MAX_PAYLOAD
                                        : l->len);
    if (rc < 0) {
      fprintf(stderr, "quilt pub: cannot publish: %s\n",
              quilt_strerror((int)rc));
      pub_failed = 1;
    }
    lines_head = l->next;
    if (!lines_head)
      lines_tail = NULL;
    lines_queued--;
    free(l);
  }
}

static void pub_tick(uv_timer_t *t);

static void finish_pub(void) {
  uv_timer_stop(&pub_timer);
  uv_close((uv_handle_t *)&pub_timer, NULL);
  if (in_stream && !uv_is_closing((uv_handle_t *)in_stream))
    uv_close((uv_handle_t *)in_stream, NULL);
  host_stop();
}

static uint64_t linger_until;

static void pub_tick(uv_timer_t *t) {
  (void)t;
  flush_lines();
  if (input_done && !lines_head) {
    uint64_t now = uv_now(uv_default_loop());
    if (!linger_until)
      linger_until = now + hopts.linger_ms;
    if (now >= linger_until)
      finish_pub();
  }
}

static void in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  static char b[65536];
  (void)suggested;
  *buf = uv_buf_init(b, sizeof b);
}

static void in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n > 0) {
    take_bytes(buf->base, (size_t)n);
    flush_lines();
  } else if (n < 0) {
    if (partial_len)
      queue_line(partial, partial_len);
    partial_len = 0;
    input_done = 1;
    uv_read_stop(s);
  }
}

static void pub_stop_signal(void) {
  input_done = 1;
  linger_until = 1; /* at once */
  finish_pub();
}

int quilt_cmd_pub(int argc, char **argv) {
  static const char *cmd = "quilt pub";
  hopts.linger_ms = 2000;
  hopts.rate = 10000;
  int rc = parse(cmd, argc, argv, host_flags, &hopts);
  if (rc == 1) {
    printf("usage: quilt pub --bootstrap ADDR:PORT --group NAME [--bind IP | --iface NAME]\n"
           "                 [--no-ipmc] [--region N] [--bw-mbps N] [--linger-ms MS]\n"
           "                 [--rate N]\n\n"
           "Joins the group and publishes each line read from standard "
           "input as one\nmessage (lines are cut at 1353 bytes).  After the "
           "last line it stays\n--linger-ms (default 2000) to answer "
           "repairs, then leaves.  It publishes at most\n--rate messages "
           "a second (default 10000).\n");
    return QUILT_EXIT_OK;
  }
  if (rc < 0)
    return QUILT_EXIT_USAGE;
  rc = make_host(cmd, NULL, NULL);
  if (rc != QUILT_EXIT_OK)
    return rc;
  uv_loop_t *loop = uv_default_loop();
  uv_handle_type t = uv_guess_handle(0);
  if (t == UV_TTY && uv_tty_init(loop, &in_tty, 0, 1) == 0) {
    in_stream = (uv_stream_t *)&in_tty;
  } else if (t == UV_NAMED_PIPE && uv_pipe_init(loop, &in_pipe, 0) == 0 &&
             uv_pipe_open(&in_pipe, 0) == 0) {
    in_stream = (uv_stream_t *)&in_pipe;
  } else {
    /* A regular file (or /dev/null): read it whole, within a bound. */
    char buf[65536];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0 &&
           total < (64u << 20)) {
      take_bytes(buf, n);
      total += n;
    }
    if (partial_len)
      queue_line(partial, partial_len);
    input_done = 1;
  }
  if (in_stream)
    uv_read_start(in_stream, in_alloc, in_read);
  uv_timer_init(loop, &pub_timer);
  tokens_at = uv_hrtime();
  uv_timer_start(&pub_timer, pub_tick, 1, 1);
  watch_signals(loop, pub_stop_signal);
  uv_run(loop, UV_RUN_DEFAULT);
  close_signals();
  uv_run(loop, UV_RUN_DEFAULT);
  quilt_host_free(host);
  while (lines_head) {
    line *l = lines_head;
    lines_head = l->next;
    free(l);
  }
  return pub_failed ? QUILT_EXIT_FAILURE : QUILT_EXIT_OK;
}
