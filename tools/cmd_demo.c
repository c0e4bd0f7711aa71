/*
 * cmd_demo.c -- `quilt demo`: a whole quilt on this machine, as separate
 * processes on 127.0.0.1, without root.
 *
 * The program runs itself again (/proc/self/exe) as
 *   - one `quilt bootstrap` on a port the kernel picks (--listen
 *     127.0.0.1:0; it prints the port it got);
 *   - twelve `quilt sub --report` hosts: eight on IP multicast over lo,
 *     four told --no-ipmc, so that they land in a unicast patch and the
 *     representatives bridge the two patches;
 *   - two `quilt pub` hosts, one in each kind of patch, whose standard
 *     input we write.
 *
 * Joining takes a moment, and a message published before a host joined is
 * not owed to it, so the run has two phases:
 *   1. join: every DEMO_PROBE_MS each publisher publishes "hello pub<p>
 *      <n>", until every sub has printed a hello of every publisher;
 *   2. the test: each publisher publishes "msg pub<p> <i>", i = 1..M, and
 *      every sub must print each of the 2M lines exactly once, each
 *      publisher's in order.
 * When every sub has printed its 2M lines (plus DEMO_SETTLE_MS, for a late
 * duplicate to show), all are stopped together with SIGTERM, on which a sub
 * prints its REPORT line and leaves.  Stopping together keeps every
 * representative in place until all hosts are served, and makes the roles
 * in the table one picture of the quilt.
 *
 * We own every child: on every way out (success, failure, timeout,
 * SIGINT/SIGTERM) each one is signalled and reaped.  Should we die without
 * that, Linux sends them SIGTERM (PR_SET_PDEATHSIG).
 *
 * The simulator demo this used to be is `quilt sim datacenter --compare
 * quilt,unicast --seed 1`.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli.h"

#define DEMO_SUBS_IPMC 8    /* hosts on IP multicast over lo */
#define DEMO_SUBS_UNICAST 4 /* hosts started with --no-ipmc */
#define DEMO_SUBS (DEMO_SUBS_IPMC + DEMO_SUBS_UNICAST)
#define DEMO_PUBS 2 /* the first on IP multicast, the second --no-ipmc */
#define DEMO_CHILDREN (1 + DEMO_SUBS + DEMO_PUBS)
#define DEMO_MSGS_DEFAULT 100 /* messages per publisher */
#define DEMO_MSGS_MAX 10000
#define DEMO_LINE_MAX 32       /* "msg pub2 10000\n" and then some */
#define DEMO_BOOT_WAIT_MS 5000 /* for the server's "listening on" line */
#define DEMO_PROBE_MS 100      /* between two hellos of a publisher */
#define DEMO_JOIN_MAX_MS 10000 /* every host hears every publisher */
#define DEMO_PROBES_MAX (DEMO_JOIN_MAX_MS / DEMO_PROBE_MS + 1)
#define DEMO_TIMEOUT_MS 25000    /* the whole run, stopping included */
#define DEMO_STOP_GRACE_MS 2000  /* from SIGTERM to SIGKILL */
#define DEMO_SETTLE_MS 200       /* after the last delivery, before stopping */
#define DEMO_POLL_MS 100         /* longest poll(), to notice deadlines */
#define DEMO_IN_MAX (1u << 20)   /* input queued per publisher */
#define DEMO_OUT_MAX (1u << 20)  /* stdout kept per child */
#define DEMO_ERR_MAX (16u << 10) /* stderr kept per child */
#define DEMO_ERR_SHOWN 5         /* stderr lines shown per failed host */

static const char *const cmd = "quilt demo";

typedef struct buf {
  char *data; /* NUL-terminated when not NULL */
  size_t len, cap, max;
  int truncated; /* more came than max */
} buf;

typedef struct child {
  char name[16];
  pid_t pid;  /* 0 until started */
  int reaped; /* and then status holds what waitpid said */
  int status;
  int in_fd, out_fd, err_fd; /* our ends; -1 when unused or closed */
  buf in;                    /* publishers: input queued for them */
  size_t in_off;             /* how much of it they took */
  int in_eof;                /* close their stdin once in is written */
  buf out, err;              /* what it printed */
  /* subs: what count_lines() saw so far */
  size_t scanned, msg_lines;
  int heard[DEMO_PUBS];
} child;

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int signum) { stop_signal = signum; }

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void buf_add(buf *b, const char *p, size_t n) {
  if (b->len + n > b->max) {
    b->truncated = 1;
    n = b->max - b->len;
  }
  if (n == 0)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
      b->truncated = 1;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static int add_flag(int fd, int get, int set, int flag) {
  int f = fcntl(fd, get);
  return f < 0 ? -1 : fcntl(fd, set, f | flag);
}

/* A pipe whose ends no child inherits unless it is given them. */
static int make_pipe(int fds[2]) {
  if (pipe(fds) != 0)
    return -1;
  if (add_flag(fds[0], F_GETFD, F_SETFD, FD_CLOEXEC) != 0 ||
      add_flag(fds[1], F_GETFD, F_SETFD, FD_CLOEXEC) != 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  return 0;
}

/* ---- children ---- */

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child_fd(int fd, int target) {
  if (fd == target)
    fcntl(fd, F_SETFD, 0); /* keep it across exec */
  else
    dup2(fd, target);
}

static void child_exec(pid_t parent, int in, int out, int err,
                       char *const argv[]) {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) /* it died before prctl */
    _exit(127);
#else
  (void)parent;
#endif
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGPIPE, &sa, NULL); /* we ignore it, and exec would keep that */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  child_fd(in, 0);
  child_fd(out, 1);
  child_fd(err, 2);
  execv("/proc/self/exe", argv);
  _exit(127);
}

/* Starts `quilt argv...` with stdout and stderr on pipes to us, and stdin
 * on a pipe from us when with_stdin (else /dev/null).  Returns 0, or -1
 * after printing why. */
static int spawn(child *c, char *const argv[], int with_stdin) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (with_stdin ? make_pipe(in) != 0
                 : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
    goto fail;
  if (make_pipe(out) != 0 || make_pipe(err) != 0)
    goto fail;
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    goto fail;
  if (pid == 0)
    child_exec(parent, in[0], out[1], err[1], argv);
  c->pid = pid;
  close(in[0]);
  close(out[1]);
  close(err[1]);
  c->in_fd = in[1];
  c->out_fd = out[0];
  c->err_fd = err[0];
  if (c->in_fd >= 0)
    add_flag(c->in_fd, F_GETFL, F_SETFL, O_NONBLOCK);
  add_flag(c->out_fd, F_GETFL, F_SETFL, O_NONBLOCK);
  add_flag(c->err_fd, F_GETFL, F_SETFL, O_NONBLOCK);
  return 0;
fail:
  fprintf(stderr, "%s: cannot start %s: %s\n", cmd, c->name, strerror(errno));
  for (int i = 0; i < 2; i++) {
    close_fd(&in[i]);
    close_fd(&out[i]);
    close_fd(&err[i]);
  }
  return -1;
}

static int child_alive(const child *c) { return c->pid > 0 && !c->reaped; }

/* Exited, reaped, and everything it printed read. */
static int child_done(const child *c) {
  return c->reaped && c->out_fd < 0 && c->err_fd < 0;
}

static void read_fd(int *fd, buf *b) {
  char tmp[8192];
  for (;;) {
    ssize_t n = read(*fd, tmp, sizeof tmp);
    if (n > 0) {
      buf_add(b, tmp, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    close_fd(fd); /* end of file, or an error we cannot help */
    return;
  }
}

static void write_stdin(child *c) {
  while (c->in_fd >= 0 && c->in_off < c->in.len) {
    ssize_t n = write(c->in_fd, c->in.data + c->in_off, c->in.len - c->in_off);
    if (n > 0)
      c->in_off += (size_t)n;
    else if (n < 0 && errno == EINTR)
      continue;
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    else /* EPIPE: it is gone, and its exit status will say why */
      close_fd(&c->in_fd);
  }
  if (c->in_eof)
    close_fd(&c->in_fd); /* end of input: the publisher lingers */
}

/* Queues a line for a publisher's stdin and writes what it will take. */
static void feed(child *c, const char *line) {
  buf_add(&c->in, line, strlen(line));
  write_stdin(c);
}

/* Moves bytes between us and the children for at most timeout_ms, then
 * reaps whoever exited. */
static void pump(child *cs, uint64_t timeout_ms) {
  struct pollfd pfd[3 * DEMO_CHILDREN];
  struct {
    child *c;
    int which; /* 0 stdin, 1 stdout, 2 stderr */
  } who[3 * DEMO_CHILDREN];
  nfds_t k = 0;
  for (size_t i = 0; i < DEMO_CHILDREN; i++) {
    child *c = &cs[i];
    if (c->in_fd >= 0 && c->in_off < c->in.len) {
      pfd[k] = (struct pollfd){c->in_fd, POLLOUT, 0};
      who[k].c = c;
      who[k++].which = 0;
    }
    if (c->out_fd >= 0) {
      pfd[k] = (struct pollfd){c->out_fd, POLLIN, 0};
      who[k].c = c;
      who[k++].which = 1;
    }
    if (c->err_fd >= 0) {
      pfd[k] = (struct pollfd){c->err_fd, POLLIN, 0};
      who[k].c = c;
      who[k++].which = 2;
    }
  }
  if (timeout_ms > DEMO_POLL_MS)
    timeout_ms = DEMO_POLL_MS;
  int r = poll(pfd, k, (int)timeout_ms);
  for (nfds_t j = 0; r > 0 && j < k; j++) {
    if (!pfd[j].revents)
      continue;
    child *c = who[j].c;
    if (who[j].which == 0)
      write_stdin(c);
    else if (who[j].which == 1)
      read_fd(&c->out_fd, &c->out);
    else
      read_fd(&c->err_fd, &c->err);
  }
  for (size_t i = 0; i < DEMO_CHILDREN; i++) {
    child *c = &cs[i];
    if (!child_alive(c))
      continue;
    if (waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
      c->reaped = 1;
      close_fd(&c->in_fd);
    }
  }
}

/* Stops every child still running: SIGTERM (on which a sub prints its
 * REPORT line), their output read for up to DEMO_STOP_GRACE_MS, then
 * SIGKILL and a blocking wait.  Nothing is left behind. */
static void stop_all(child *cs) {
  for (size_t i = 0; i < DEMO_CHILDREN; i++)
    if (child_alive(&cs[i]))
      kill(cs[i].pid, SIGTERM);
  uint64_t until = now_ms() + DEMO_STOP_GRACE_MS;
  for (;;) {
    int left = 0;
    for (size_t i = 0; i < DEMO_CHILDREN; i++)
      left |= cs[i].pid > 0 && !child_done(&cs[i]);
    uint64_t t = now_ms();
    if (!left || t >= until)
      break;
    pump(cs, until - t);
  }
  for (size_t i = 0; i < DEMO_CHILDREN; i++) {
    child *c = &cs[i];
    if (child_alive(c)) {
      kill(c->pid, SIGKILL);
      while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
        ;
      c->reaped = 1;
    }
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
  }
}

/* ---- what the subs printed ---- */

/* Parses "hello pub<p> <n>" or "msg pub<p> <i>" exactly.  Returns 1 for a
 * hello, 2 for a msg, 0 for anything else. */
static int parse_line(const char *line, size_t len, unsigned *pub,
                      unsigned *n) {
  int used = -1;
  int kind = 0;
  if (sscanf(line, "hello pub%u %u%n", pub, n, &used) == 2)
    kind = 1;
  else if (sscanf(line, "msg pub%u %u%n", pub, n, &used) == 2)
    kind = 2;
  if (used != (int)len || *pub < 1 || *pub > DEMO_PUBS || *n < 1)
    return 0;
  return kind;
}

/* Looks at the whole lines a sub printed since the last call. */
static void count_lines(child *c) {
  while (c->scanned < c->out.len) {
    const char *p = c->out.data + c->scanned;
    const char *nl = memchr(p, '\n', c->out.len - c->scanned);
    if (!nl)
      return;
    size_t len = (size_t)(nl - p);
    char line[64];
    unsigned pub, n;
    if (len < sizeof line) {
      memcpy(line, p, len);
      line[len] = '\0';
      int kind = parse_line(line, len, &pub, &n);
      if (kind == 1)
        c->heard[pub - 1] = 1;
      else if (kind == 2)
        c->msg_lines++;
    }
    c->scanned += len + 1;
  }
}

typedef struct host_result {
  int have_report;
  unsigned patch;
  char protocol[16], role[16];
  unsigned long long delivered, losses;
  double p50_ms, p99_ms;
  size_t lines, got, missing, duplicates, unexpected, out_of_order;
  char missing_text[96]; /* the first missing ranges: "pub1 3-40, ..." */
  int ok;
} host_result;

/* Names the missing ranges of msg lines in r->missing_text. */
static void name_missing(const unsigned char *seen, size_t probes, size_t msgs,
                         host_result *r) {
  size_t used = 0;
  for (size_t p = 0; p < DEMO_PUBS; p++) {
    const unsigned char *s = seen + p * (probes + msgs) + probes;
    for (size_t i = 0; i < msgs; i++) {
      if (s[i] || (i > 0 && !s[i - 1]))
        continue; /* delivered, or inside a range already named */
      size_t e = i;
      while (e + 1 < msgs && !s[e + 1])
        e++;
      char range[48];
      int n = e == i ? snprintf(range, sizeof range, "%spub%zu %zu",
                                used ? ", " : "", p + 1, i + 1)
                     : snprintf(range, sizeof range, "%spub%zu %zu-%zu",
                                used ? ", " : "", p + 1, i + 1, e + 1);
      if (n < 0 || used + (size_t)n + 6 > sizeof r->missing_text) {
        memcpy(r->missing_text + used, ", ...", 6); /* room was kept */
        return;
      }
      memcpy(r->missing_text + used, range, (size_t)n + 1);
      used += (size_t)n;
    }
  }
}

/* Checks everything a sub printed: hellos (any prefix of them may be
 * missing: the host had not joined yet), each msg line exactly once, each
 * publisher's lines in order, then one REPORT line.  seen has room for
 * DEMO_PUBS * (probes + msgs) marks. */
static void check_host(const child *c, size_t probes, size_t msgs,
                       unsigned char *seen, host_result *r) {
  memset(r, 0, sizeof *r);
  memset(seen, 0, DEMO_PUBS * (probes + msgs));
  size_t last[DEMO_PUBS] = {0};
  const char *p = c->out.data ? c->out.data : "";
  const char *end = p + c->out.len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    char line[256];
    int kind = 0;
    unsigned pub = 0, n = 0;
    if (len < sizeof line) {
      memcpy(line, p, len);
      line[len] = '\0';
      kind = parse_line(line, len, &pub, &n);
    }
    p += len + 1;
    if (kind == 0 && len < sizeof line && !r->have_report &&
        strncmp(line, "REPORT ", 7) == 0) {
      r->have_report =
          sscanf(line,
                 "REPORT id=%*s patch=%u protocol=%15s role=%15s "
                 "delivered=%llu losses=%llu p50_ms=%lf p99_ms=%lf",
                 &r->patch, r->protocol, r->role, &r->delivered, &r->losses,
                 &r->p50_ms, &r->p99_ms) == 7;
      r->unexpected += !r->have_report;
      continue;
    }
    /* Its place in its publisher's stream: hellos first, then msgs. */
    size_t at = kind == 1 ? n : probes + n;
    if (kind == 0 || r->have_report || (kind == 1 && n > probes) ||
        (kind == 2 && n > msgs)) {
      r->unexpected++;
      continue;
    }
    r->lines++;
    unsigned char *s = &seen[(pub - 1) * (probes + msgs) + (at - 1)];
    if (*s)
      r->duplicates++;
    *s = 1;
    if (at <= last[pub - 1])
      r->out_of_order++;
    last[pub - 1] = at;
  }
  for (size_t k = 0; k < DEMO_PUBS; k++)
    for (size_t i = 0; i < msgs; i++)
      r->got += seen[k * (probes + msgs) + probes + i];
  r->missing = DEMO_PUBS * msgs - r->got;
  if (r->missing)
    name_missing(seen, probes, msgs, r);
  /* Loss events are not checked here: those of hellos sent before the
   * host joined are fine, and a msg lost is a msg missing. */
  r->ok = r->have_report && !r->missing && !r->duplicates && !r->unexpected &&
          !r->out_of_order && r->delivered == r->lines && !c->out.truncated &&
          c->reaped && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

static void describe_exit(const child *c, char *s, size_t n) {
  if (!c->reaped)
    snprintf(s, n, "not started");
  else if (WIFEXITED(c->status))
    snprintf(s, n, "exit status %d", WEXITSTATUS(c->status));
  else if (WIFSIGNALED(c->status))
    snprintf(s, n, "killed by signal %d", WTERMSIG(c->status));
  else
    snprintf(s, n, "stopped");
}

static void show_stderr(const child *c) {
  const char *p = c->err.data;
  for (int k = 0; p && *p && k < DEMO_ERR_SHOWN; k++) {
    const char *nl = strchr(p, '\n');
    int len = nl ? (int)(nl - p) : (int)strlen(p);
    printf("    stderr: %.*s\n", len, p);
    p = nl ? nl + 1 : p + len;
  }
}

/* Says what is wrong with a host that failed, then the start of its
 * standard error. */
static void explain(const child *c, const host_result *r, size_t expected) {
  char ex[48];
  describe_exit(c, ex, sizeof ex);
  printf("  %s (%s):", c->name, ex);
  if (!r->have_report)
    printf(" no REPORT line;");
  else if (r->delivered != r->lines)
    printf(" REPORT says %llu delivered, it printed %zu;", r->delivered,
           r->lines);
  if (r->missing)
    printf(" %zu of %zu messages missing (%s);", r->missing, expected,
           r->missing_text);
  if (r->duplicates)
    printf(" %zu delivered twice;", r->duplicates);
  if (r->out_of_order)
    printf(" %zu out of order;", r->out_of_order);
  if (r->unexpected)
    printf(" %zu unexpected lines;", r->unexpected);
  if (r->losses)
    printf(" %llu loss events;", r->losses);
  if (c->out.truncated)
    printf(" output cut at %u bytes;", DEMO_OUT_MAX);
  printf("\n");
  show_stderr(c);
}

/* ---- the run ---- */

typedef struct demo {
  child cs[DEMO_CHILDREN]; /* the server, the subs, the publishers */
  size_t msgs;             /* per publisher */
  size_t probes;           /* hellos per publisher */
  uint64_t t0_ms, joined_ms, published_ms, delivered_ms;
  const char *failure; /* why the run stopped early, or NULL */
} demo;

static child *server_of(demo *d) { return &d->cs[0]; }
static child *sub_of(demo *d, size_t i) { return &d->cs[1 + i]; }
static child *pub_of(demo *d, size_t k) { return &d->cs[1 + DEMO_SUBS + k]; }

static int server_ready(demo *d) {
  const child *s = server_of(d);
  const char *at = s->out.data ? strstr(s->out.data, "listening on ") : NULL;
  return at && strchr(at, '\n');
}

static int all_heard(demo *d) {
  for (size_t i = 0; i < DEMO_SUBS; i++) {
    child *c = sub_of(d, i);
    count_lines(c);
    for (size_t k = 0; k < DEMO_PUBS; k++)
      if (!c->heard[k])
        return 0;
  }
  return 1;
}

/* Each sub has printed all msg lines, or has exited (a failure that
 * check_host() will name). */
static int all_delivered(demo *d) {
  for (size_t i = 0; i < DEMO_SUBS; i++) {
    child *c = sub_of(d, i);
    count_lines(c);
    if (!c->reaped && c->msg_lines < DEMO_PUBS * d->msgs)
      return 0;
  }
  return 1;
}

static int never(demo *d) {
  (void)d;
  return 0;
}

/* Pumps until done(d), the deadline or a signal.  Returns 1 when done;
 * with probe_ms, each publisher publishes a hello that often. */
static int wait_for(demo *d, uint64_t deadline, int (*done)(demo *d),
                    uint64_t probe_ms) {
  uint64_t next_probe = now_ms();
  for (;;) {
    if (done(d))
      return 1;
    uint64_t t = now_ms();
    if (stop_signal || t >= deadline)
      return 0;
    if (probe_ms && t >= next_probe && d->probes < DEMO_PROBES_MAX) {
      d->probes++;
      for (size_t k = 0; k < DEMO_PUBS; k++) {
        char line[DEMO_LINE_MAX];
        snprintf(line, sizeof line, "hello pub%zu %zu\n", k + 1, d->probes);
        feed(pub_of(d, k), line);
      }
      next_probe = t + probe_ms;
    }
    uint64_t wake = probe_ms && next_probe < deadline ? next_probe : deadline;
    pump(d->cs, wake > t ? wake - t : 0);
  }
}

/* Starts everything and runs both phases; sets d->failure when it cannot
 * go on.  Returns 0, or -1 when nothing is worth a table. */
static int run(demo *d) {
  const uint64_t deadline = d->t0_ms + DEMO_TIMEOUT_MS - DEMO_STOP_GRACE_MS;

  /* The bootstrap server, on a port the kernel picks. */
  child *server = server_of(d);
  char *server_argv[] = {"quilt", "bootstrap", "--listen", "127.0.0.1:0", NULL};
  if (spawn(server, server_argv, 0) != 0)
    return -1;
  if (!wait_for(d, d->t0_ms + DEMO_BOOT_WAIT_MS, server_ready, 0)) {
    if (!stop_signal) {
      pump(d->cs, 0);
      fprintf(stderr, "%s: the bootstrap server did not start%s%s", cmd,
              server->err.data ? ": " : "\n",
              server->err.data ? server->err.data : "");
    }
    return -1;
  }
  char addr[32];
  const char *at = strstr(server->out.data, "listening on ") + 13;
  size_t alen = strcspn(at, ", \r\n");
  if (alen == 0 || alen >= sizeof addr) {
    fprintf(stderr, "%s: cannot read the bootstrap server's address\n", cmd);
    return -1;
  }
  memcpy(addr, at, alen);
  addr[alen] = '\0';
  /* A group of our own, so that another quilt on lo sharing the multicast
   * address (another demo, the loopback test) is not heard. */
  char group[32];
  snprintf(group, sizeof group, "demo-%ld", (long)getpid());
  printf("quilt demo: bootstrap server on %s, group %s: %d hosts (%d on IP "
         "multicast over lo, %d with --no-ipmc), %d publishers (pub1 on IP "
         "multicast, pub2 with --no-ipmc) x %zu messages\n",
         addr, group, DEMO_SUBS, DEMO_SUBS_IPMC, DEMO_SUBS_UNICAST, DEMO_PUBS,
         d->msgs);
  fflush(stdout);

  for (size_t i = 0; i < DEMO_SUBS; i++) {
    char *argv[] = {"quilt",    "sub",       "--bootstrap", addr,
                    "--group",  group,       "--bind",      "127.0.0.1",
                    "--report", "--no-ipmc", NULL};
    if (i < DEMO_SUBS_IPMC)
      argv[9] = NULL;
    if (spawn(sub_of(d, i), argv, 0) != 0)
      return -1;
  }
  for (size_t k = 0; k < DEMO_PUBS; k++) {
    /* They linger until we stop them, to answer repairs to the end. */
    char *argv[] = {"quilt",       "pub",    "--bootstrap", addr,
                    "--group",     group,    "--bind",      "127.0.0.1",
                    "--linger-ms", "600000", "--no-ipmc",   NULL};
    if (k == 0)
      argv[10] = NULL;
    if (spawn(pub_of(d, k), argv, 1) != 0)
      return -1;
  }

  /* Phase 1: hellos until every host hears every publisher. */
  uint64_t join_deadline = now_ms() + DEMO_JOIN_MAX_MS;
  if (!wait_for(d, join_deadline < deadline ? join_deadline : deadline,
                all_heard, DEMO_PROBE_MS)) {
    d->failure = "not every host heard both publishers in time";
    return 0;
  }
  d->joined_ms = now_ms();

  /* Phase 2: the messages. */
  for (size_t k = 0; k < DEMO_PUBS; k++) {
    child *c = pub_of(d, k);
    for (size_t i = 1; i <= d->msgs; i++) {
      char line[DEMO_LINE_MAX];
      snprintf(line, sizeof line, "msg pub%zu %zu\n", k + 1, i);
      buf_add(&c->in, line, strlen(line));
    }
    c->in_eof = 1;
    write_stdin(c);
  }
  d->published_ms = now_ms();
  if (!wait_for(d, deadline, all_delivered, 0)) {
    d->failure = "timed out before every host had every message";
    return 0;
  }
  d->delivered_ms = now_ms();
  wait_for(d, d->delivered_ms + DEMO_SETTLE_MS, never, 0);
  return 0;
}

/* Prints the table and the summary; returns the exit status. */
static int report(demo *d) {
  const size_t expected = DEMO_PUBS * d->msgs;
  unsigned char *seen = malloc(DEMO_PUBS * (d->probes + d->msgs));
  if (!seen) {
    fprintf(stderr, "%s: out of memory\n", cmd);
    return QUILT_EXIT_FAILURE;
  }
  host_result res[DEMO_SUBS];
  printf("\n host  started  patch  protocol  role     delivered  p50_ms  "
         "p99_ms  check\n");
  size_t good = 0, npatches = 0;
  unsigned patches[DEMO_SUBS];
  int saw_ipmc = 0, saw_unicast = 0;
  for (size_t i = 0; i < DEMO_SUBS; i++) {
    host_result *r = &res[i];
    check_host(sub_of(d, i), d->probes, d->msgs, seen, r);
    good += r->ok;
    char deliv[32];
    snprintf(deliv, sizeof deliv, "%zu/%zu", r->got, expected);
    const char *started = i < DEMO_SUBS_IPMC ? "ipmc" : "no-ipmc";
    if (!r->have_report) {
      printf(" %4zu  %-7s  %5s  %-8s  %-7s  %9s  %6s  %6s  FAIL\n", i + 1,
             started, "-", "-", "-", deliv, "-", "-");
      continue;
    }
    printf(" %4zu  %-7s  %5u  %-8s  %-7s  %9s  %6.2f  %6.2f  %s\n", i + 1,
           started, r->patch, r->protocol, r->role, deliv, r->p50_ms, r->p99_ms,
           r->ok ? "ok" : "FAIL");
    size_t j = 0;
    while (j < npatches && patches[j] != r->patch)
      j++;
    if (j == npatches)
      patches[npatches++] = r->patch;
    saw_ipmc |= strcmp(r->protocol, "ipmc") == 0;
    saw_unicast |= strcmp(r->protocol, "unicast") == 0;
  }
  free(seen);
  printf("(pub1 and pub2 are members of these patches too: a representative "
         "missing\nfrom the table is one of them)\n\n");
  int pubs_ok = 1;
  for (size_t k = 0; k < DEMO_PUBS; k++) {
    child *c = pub_of(d, k);
    /* We stop the publishers with SIGTERM, on which they exit 0. */
    if (c->reaped && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0 &&
        !c->in.truncated)
      continue;
    char ex[48];
    describe_exit(c, ex, sizeof ex);
    printf("  %s (%s): took %zu of %zu bytes of input\n", c->name, ex,
           c->in_off, c->in.len);
    show_stderr(c);
    pubs_ok = 0;
  }
  for (size_t i = 0; i < DEMO_SUBS; i++)
    if (!res[i].ok)
      explain(sub_of(d, i), &res[i], expected);
  for (size_t i = 0; i < DEMO_SUBS && d->failure && !d->joined_ms; i++) {
    child *c = sub_of(d, i);
    for (size_t k = 0; k < DEMO_PUBS; k++)
      if (!c->heard[k])
        printf("  %s never heard pub%zu\n", c->name, k + 1);
  }
  double total_s = (double)(now_ms() - d->t0_ms) / 1000.0;
  if (!d->failure && good == DEMO_SUBS && pubs_ok && saw_ipmc && saw_unicast &&
      npatches >= 2) {
    printf("quilt demo: ok: %d hosts in %zu patches (ipmc and unicast) "
           "delivered all %zu messages of %d publishers exactly once and in "
           "order; every host heard both publishers %.2f s after the start, "
           "the last delivery came %llu ms after the first message was "
           "published; %.1f s in all\n",
           DEMO_SUBS, npatches, expected, DEMO_PUBS,
           (double)(d->joined_ms - d->t0_ms) / 1000.0,
           (unsigned long long)(d->delivered_ms - d->published_ms), total_s);
    return QUILT_EXIT_OK;
  }
  if (d->failure)
    printf("quilt demo: FAILED: %s (%.1f s)\n", d->failure, total_s);
  else if (good < DEMO_SUBS)
    printf("quilt demo: FAILED: %zu of %d hosts did not deliver every "
           "message exactly once and in order (see above)\n",
           DEMO_SUBS - good, DEMO_SUBS);
  else if (!pubs_ok)
    printf("quilt demo: FAILED: a publisher failed (see above)\n");
  else
    printf("quilt demo: FAILED: the hosts were not split into an ipmc patch "
           "and a unicast patch (%zu patches), so nothing was bridged\n",
           npatches);
  return QUILT_EXIT_FAILURE;
}

static void usage(void) {
  printf("usage: quilt demo [--messages N]\n\n"
         "Runs a whole quilt on this machine as separate processes on "
         "127.0.0.1,\nwithout root: a bootstrap server on a free port, %d "
         "hosts (`quilt sub`:\n%d on IP multicast over lo, %d started with "
         "--no-ipmc, so that they land\nin a unicast patch and the "
         "representatives bridge the two patches), and\n%d publishers "
         "(`quilt pub`), one in each kind of patch.  Once every host\nhears "
         "both publishers, each publishes N messages (default %d, at most "
         "%d).\nThen it prints a table per host: patch, protocol, role, "
         "messages\ndelivered, latency p50/p99 (from the publisher's clock, "
         "over every\ndelivery); and one summary line.\n\n"
         "Exit status: 0 when every host delivered every message exactly once "
         "and\neach publisher's in order; 1 otherwise, also after %d s or on "
         "SIGINT;\n2 for a bad option.  Every process it starts is stopped "
         "before it exits.\n\n"
         "The simulated comparison that used to be the demo (Grid'5000, 1528 "
         "hosts,\nQuilt against the unicast baseline):\n"
         "  quilt sim datacenter --compare quilt,unicast --seed 1\n",
         DEMO_SUBS, DEMO_SUBS_IPMC, DEMO_SUBS_UNICAST, DEMO_PUBS,
         DEMO_MSGS_DEFAULT, DEMO_MSGS_MAX, DEMO_TIMEOUT_MS / 1000);
}

int quilt_cmd_demo(int argc, char **argv) {
  uint64_t msgs = DEMO_MSGS_DEFAULT;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0) {
      usage();
      return QUILT_EXIT_OK;
    }
    if (strcmp(argv[i], "--messages") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: --messages needs a value (see %s --help)\n", cmd,
                cmd);
        return QUILT_EXIT_USAGE;
      }
      if (cli_parse_u64(cmd, "--messages", argv[++i], 1, DEMO_MSGS_MAX, &msgs) <
          0)
        return QUILT_EXIT_USAGE;
      continue;
    }
    fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", cmd, argv[i],
            cmd);
    return QUILT_EXIT_USAGE;
  }
  if (access("/proc/self/exe", X_OK) != 0) {
    fprintf(stderr, "%s: cannot run /proc/self/exe: %s\n", cmd,
            strerror(errno));
    return QUILT_EXIT_FAILURE;
  }

  demo *d = calloc(1, sizeof *d);
  if (!d) {
    fprintf(stderr, "%s: out of memory\n", cmd);
    return QUILT_EXIT_FAILURE;
  }
  d->msgs = (size_t)msgs;
  for (size_t i = 0; i < DEMO_CHILDREN; i++) {
    child *c = &d->cs[i];
    c->in_fd = c->out_fd = c->err_fd = -1;
    c->in.max = DEMO_IN_MAX;
    c->out.max = DEMO_OUT_MAX;
    c->err.max = DEMO_ERR_MAX;
  }
  snprintf(server_of(d)->name, sizeof server_of(d)->name, "bootstrap");
  for (size_t i = 0; i < DEMO_SUBS; i++)
    snprintf(sub_of(d, i)->name, sizeof sub_of(d, i)->name, "host %zu", i + 1);
  for (size_t k = 0; k < DEMO_PUBS; k++)
    snprintf(pub_of(d, k)->name, sizeof pub_of(d, k)->name, "pub%zu", k + 1);

  /* SIGINT and SIGTERM end the waiting (no SA_RESTART: poll returns); a
   * write to a publisher that died must not kill us. */
  struct sigaction sa, old_int, old_term, old_pipe;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, &old_pipe);
  stop_signal = 0;

  d->t0_ms = now_ms();
  int rc = run(d);
  stop_all(d->cs); /* everyone at once; subs print their REPORT now */
  if (stop_signal)
    fprintf(stderr,
            "%s: stopped by signal %d; every process it started is "
            "gone\n",
            cmd, (int)stop_signal);
  else if (rc == 0)
    rc = report(d);
  else
    rc = QUILT_EXIT_FAILURE;
  if (stop_signal)
    rc = QUILT_EXIT_FAILURE;
  for (size_t i = 0; i < DEMO_CHILDREN; i++) {
    free(d->cs[i].in.data);
    free(d->cs[i].out.data);
    free(d->cs[i].err.data);
  }
  free(d);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGPIPE, &old_pipe, NULL);
  return rc;
}
