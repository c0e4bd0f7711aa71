/*
 * hello.c -- a Quilt application in a page: join a group on the caller's
 * libuv loop, publish a few messages, print what is delivered.
 *
 *   cc hello.c $(pkg-config --cflags --libs quilt) -o hello
 *   ./hello 127.0.0.1:7000 chat      (with `quilt bootstrap --listen
 *                                     127.0.0.1:7000` running)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include <quilt.h>

static quilt_host *host;
static uv_timer_t tick;
static int sent;

static void on_message(quilt_host *h, uint64_t origin, uint64_t seq,
                       const void *data, size_t len, uint64_t latency_ns,
                       void *user) {
  (void)h;
  (void)user;
  printf("%016" PRIx64 " #%" PRIu64 " (%.3f ms): %.*s\n", origin, seq,
         latency_ns / 1e6, (int)len, (const char *)data);
}

static void on_loss(quilt_host *h, uint64_t origin, uint64_t first,
                    uint64_t count, void *user) {
  (void)h;
  (void)user;
  fprintf(stderr, "lost %" PRIu64 " message(s) of %016" PRIx64
                  " from #%" PRIu64 "\n",
          count, origin, first);
}

static void on_stopped(quilt_host *h, void *user) {
  (void)h;
  (void)user;
  uv_close((uv_handle_t *)&tick, NULL);
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  if (!quilt_host_joined(host))
    return; /* still joining */
  if (sent == 10) {
    quilt_host_stop(host, on_stopped);
    return;
  }
  char msg[64];
  int n = snprintf(msg, sizeof msg, "hello %d", ++sent);
  if (quilt_host_publish(host, msg, (size_t)n) < 0)
    fprintf(stderr, "publish refused\n");
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s BOOTSTRAP_ADDR:PORT GROUP\n", argv[0]);
    return 2;
  }
  uv_loop_t *loop = uv_default_loop();
  quilt_host_options o;
  memset(&o, 0, sizeof o);
  o.bootstrap = argv[1];
  o.group = argv[2];
  if (quilt_host_new(&host, loop, &o, on_message, on_loss, NULL) != 0) {
    fprintf(stderr, "bad options\n");
    return 2;
  }
  if (quilt_host_start(host) != 0) {
    fprintf(stderr, "cannot start\n");
    return 1;
  }
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 200, 200);
  uv_run(loop, UV_RUN_DEFAULT);
  quilt_host_free(host);
  return 0;
}
