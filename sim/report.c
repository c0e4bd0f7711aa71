/*
 * report.c -- statistics of a run, and the table, JSON and plot that show
 * them (sim/report.h).
 */
#include "report.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "quilt.h"

#if defined(__GNUC__)
#define REPORT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define REPORT_PRINTF(f, a)
#endif

/* At most this many points per CDF curve in a plot: enough for a smooth
 * curve at any PNG size, few enough for gnuplot to draw at once. */
#define REPORT_PLOT_POINTS 2000

/* Bytes of gnuplot's output kept for an error message. */
#define REPORT_GNUPLOT_OUTPUT 512

REPORT_PRINTF(4, 5)
static int report_error(char *err, size_t errlen, int code, const char *fmt,
                        ...) {
  if (err && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

void quilt_sim_result_free(quilt_sim_result *r) {
  if (!r)
    return;
  free(r->latency_samples_ms);
  free(r->lower_bound_samples_ms);
  r->latency_samples_ms = NULL;
  r->lower_bound_samples_ms = NULL;
  r->nsamples = 0;
}

/* Ascending, NaN last, so that qsort sees a total order whatever the
 * samples hold. */
static int report_cmp_double(const void *pa, const void *pb) {
  double a = *(const double *)pa, b = *(const double *)pb;
  if (isnan(a) || isnan(b))
    return isnan(a) - isnan(b);
  return (a > b) - (a < b);
}

/* Nearest rank (Hyndman and Fan's definition 1): the value at 1-based rank
 * ceil(pct / 100 * n) of the sorted samples, computed in integers so that
 * e.g. p90 of 100 samples is exactly the 90th. */
static double report_rank(const double *sorted, size_t n, unsigned pct) {
  assert(n > 0 && pct >= 1 && pct <= 100);
  size_t rank = (n / 100) * pct + ((n % 100) * pct + 99) / 100;
  assert(rank >= 1 && rank <= n);
  return sorted[rank - 1];
}

void quilt_stats_compute(quilt_stats *s, double *samples, size_t n) {
  assert(s != NULL && (samples != NULL || n == 0));
  memset(s, 0, sizeof *s);
  if (n == 0)
    return;
  qsort(samples, n, sizeof *samples, report_cmp_double);
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += samples[i];
  s->n = n;
  s->p50 = report_rank(samples, n, 50);
  s->p90 = report_rank(samples, n, 90);
  s->p99 = report_rank(samples, n, 99);
  s->max = samples[n - 1];
  s->mean = sum / (double)n;
}

/* Length of a char[32] name that may fill its array without a NUL. */
#define REPORT_NAME_LEN(a) strnlen((a), sizeof(a))

static double report_ratio(double num, double den) {
  return den > 0 ? num / den : 0;
}

/* --- table -------------------------------------------------------------- */

enum {
  ROW_HOSTS,
  ROW_HOSTS_ALIVE,
  ROW_MESSAGES,
  ROW_ORPHANED,
  ROW_DELIVERY_RATIO,
  ROW_DUPLICATES,
  ROW_LOSS_EVENTS,
  ROW_MALFORMED,
  ROW_LAT_P50,
  ROW_LAT_P90,
  ROW_LAT_P99,
  ROW_LAT_MAX,
  ROW_LAT_MEAN,
  ROW_LB_P50,
  ROW_LB_P90,
  ROW_LB_P99,
  ROW_LB_MAX,
  ROW_LB_MEAN,
  ROW_P50_RATIO,
  ROW_P90_RATIO,
  ROW_P99_RATIO,
  ROW_DATA_BYTES,
  ROW_CONTROL_BYTES,
  ROW_CONTROL_PER_DATA,
  ROW_PACKETS_LOST,
  ROW_FAILOVERS,
  ROW_CHURNED,
  ROW_ORPHANS,
  ROW_REATTACH_P50,
  ROW_REATTACH_P99,
  ROW_REATTACH_MAX,
  ROW_EVENTS,
  ROW_SIM_SECONDS,
  ROW_TRACE_HASH,
  /* Shown only when a result is a stream. */
  ROW_CONTINUITY,
  ROW_FIRST_P50,
  ROW_FIRST_P90,
  ROW_FIRST_P99,
  ROW_STREAM_CONTROL_PER_DATA,
  ROW_NAT_DROPPED,
  ROW_COUNT
};

/* The order rows are printed in: the stream's rows next to their kin. */
static const int report_row_order[ROW_COUNT] = {
    ROW_HOSTS,         ROW_HOSTS_ALIVE,     ROW_MESSAGES,
    ROW_ORPHANED,      ROW_DELIVERY_RATIO,  ROW_CONTINUITY,
    ROW_DUPLICATES,    ROW_LOSS_EVENTS,     ROW_MALFORMED,
    ROW_LAT_P50,       ROW_LAT_P90,         ROW_LAT_P99,
    ROW_LAT_MAX,       ROW_LAT_MEAN,        ROW_FIRST_P50,
    ROW_FIRST_P90,     ROW_FIRST_P99,       ROW_LB_P50,
    ROW_LB_P90,        ROW_LB_P99,          ROW_LB_MAX,
    ROW_LB_MEAN,       ROW_P50_RATIO,       ROW_P90_RATIO,
    ROW_P99_RATIO,     ROW_DATA_BYTES,      ROW_CONTROL_BYTES,
    ROW_CONTROL_PER_DATA, ROW_STREAM_CONTROL_PER_DATA, ROW_PACKETS_LOST,
    ROW_NAT_DROPPED,   ROW_FAILOVERS,       ROW_CHURNED,
    ROW_ORPHANS,       ROW_REATTACH_P50,    ROW_REATTACH_P99,
    ROW_REATTACH_MAX,  ROW_EVENTS,          ROW_SIM_SECONDS,
    ROW_TRACE_HASH,
};

static int report_row_streaming(int row) { return row >= ROW_CONTINUITY; }

static const char *const report_row_labels[ROW_COUNT] = {
    [ROW_HOSTS] = "hosts",
    [ROW_HOSTS_ALIVE] = "hosts alive",
    [ROW_MESSAGES] = "messages",
    [ROW_ORPHANED] = "messages lost with origin",
    [ROW_DELIVERY_RATIO] = "delivery ratio",
    [ROW_DUPLICATES] = "duplicate deliveries",
    [ROW_LOSS_EVENTS] = "loss events",
    [ROW_MALFORMED] = "malformed dropped",
    [ROW_LAT_P50] = "latency p50 (ms)",
    [ROW_LAT_P90] = "latency p90 (ms)",
    [ROW_LAT_P99] = "latency p99 (ms)",
    [ROW_LAT_MAX] = "latency max (ms)",
    [ROW_LAT_MEAN] = "latency mean (ms)",
    [ROW_LB_P50] = "lower bound p50 (ms)",
    [ROW_LB_P90] = "lower bound p90 (ms)",
    [ROW_LB_P99] = "lower bound p99 (ms)",
    [ROW_LB_MAX] = "lower bound max (ms)",
    [ROW_LB_MEAN] = "lower bound mean (ms)",
    [ROW_P50_RATIO] = "p50 / lower bound p50",
    [ROW_P90_RATIO] = "p90 / lower bound p90",
    [ROW_P99_RATIO] = "p99 / lower bound p99",
    [ROW_DATA_BYTES] = "data bytes",
    [ROW_CONTROL_BYTES] = "control bytes",
    [ROW_CONTROL_PER_DATA] = "control / data bytes",
    [ROW_PACKETS_LOST] = "packets lost",
    [ROW_FAILOVERS] = "failovers",
    [ROW_CHURNED] = "hosts churned (restarted)",
    [ROW_ORPHANS] = "tree orphans",
    [ROW_REATTACH_P50] = "re-attach p50 (ms)",
    [ROW_REATTACH_P99] = "re-attach p99 (ms)",
    [ROW_REATTACH_MAX] = "re-attach max (ms)",
    [ROW_EVENTS] = "events",
    [ROW_SIM_SECONDS] = "simulated seconds",
    [ROW_TRACE_HASH] = "trace hash",
    [ROW_CONTINUITY] = "continuity index",
    [ROW_FIRST_P50] = "first copy p50 (ms)",
    [ROW_FIRST_P90] = "first copy p90 (ms)",
    [ROW_FIRST_P99] = "first copy p99 (ms)",
    [ROW_STREAM_CONTROL_PER_DATA] = "control / data while streaming",
    [ROW_NAT_DROPPED] = "dropped by NAT filters",
};

#define REPORT_CELL_LEN 48

/* Formats one cell; never reads wall_seconds, so that the table above the
 * last line replays byte for byte. */
static void report_cell(char *buf, int row, const quilt_sim_result *r) {
  const size_t len = REPORT_CELL_LEN;
  switch (row) {
  case ROW_HOSTS:
    snprintf(buf, len, "%" PRIu32, r->hosts);
    break;
  case ROW_HOSTS_ALIVE:
    snprintf(buf, len, "%" PRIu32, r->hosts_alive);
    break;
  case ROW_MESSAGES:
    snprintf(buf, len, "%" PRIu32, r->messages);
    break;
  case ROW_ORPHANED:
    snprintf(buf, len, "%" PRIu32, r->messages_orphaned);
    break;
  case ROW_DELIVERY_RATIO:
    snprintf(buf, len, "%.6f", r->delivery_ratio);
    break;
  case ROW_DUPLICATES:
    snprintf(buf, len, "%" PRIu64, r->duplicate_deliveries);
    break;
  case ROW_LOSS_EVENTS:
    snprintf(buf, len, "%" PRIu64, r->loss_events);
    break;
  case ROW_MALFORMED:
    snprintf(buf, len, "%" PRIu64, r->malformed_dropped);
    break;
  case ROW_LAT_P50:
    snprintf(buf, len, "%.3f", r->latency_ms.p50);
    break;
  case ROW_LAT_P90:
    snprintf(buf, len, "%.3f", r->latency_ms.p90);
    break;
  case ROW_LAT_P99:
    snprintf(buf, len, "%.3f", r->latency_ms.p99);
    break;
  case ROW_LAT_MAX:
    snprintf(buf, len, "%.3f", r->latency_ms.max);
    break;
  case ROW_LAT_MEAN:
    snprintf(buf, len, "%.3f", r->latency_ms.mean);
    break;
  case ROW_LB_P50:
    snprintf(buf, len, "%.3f", r->lower_bound_ms.p50);
    break;
  case ROW_LB_P90:
    snprintf(buf, len, "%.3f", r->lower_bound_ms.p90);
    break;
  case ROW_LB_P99:
    snprintf(buf, len, "%.3f", r->lower_bound_ms.p99);
    break;
  case ROW_LB_MAX:
    snprintf(buf, len, "%.3f", r->lower_bound_ms.max);
    break;
  case ROW_LB_MEAN:
    snprintf(buf, len, "%.3f", r->lower_bound_ms.mean);
    break;
  case ROW_P50_RATIO:
    if (r->lower_bound_ms.p50 > 0)
      snprintf(buf, len, "%.3f", r->latency_ms.p50 / r->lower_bound_ms.p50);
    else
      snprintf(buf, len, "-");
    break;
  case ROW_P90_RATIO:
    if (r->lower_bound_ms.p90 > 0)
      snprintf(buf, len, "%.3f", r->latency_ms.p90 / r->lower_bound_ms.p90);
    else
      snprintf(buf, len, "-");
    break;
  case ROW_P99_RATIO:
    if (r->lower_bound_ms.p99 > 0)
      snprintf(buf, len, "%.3f", r->latency_ms.p99 / r->lower_bound_ms.p99);
    else
      snprintf(buf, len, "-");
    break;
  case ROW_CHURNED:
    snprintf(buf, len, "%" PRIu32 " (%" PRIu32 ")", r->churned,
             r->churn_restarts);
    break;
  case ROW_ORPHANS:
    snprintf(buf, len, "%" PRIu64, r->orphaned);
    break;
  case ROW_REATTACH_P50:
    snprintf(buf, len, r->reattach_ms.n ? "%.1f" : "-", r->reattach_ms.p50);
    break;
  case ROW_REATTACH_P99:
    snprintf(buf, len, r->reattach_ms.n ? "%.1f" : "-", r->reattach_ms.p99);
    break;
  case ROW_REATTACH_MAX:
    snprintf(buf, len, r->reattach_ms.n ? "%.1f" : "-", r->reattach_ms.max);
    break;
  case ROW_DATA_BYTES:
    snprintf(buf, len, "%" PRIu64, r->data_bytes);
    break;
  case ROW_CONTROL_BYTES:
    snprintf(buf, len, "%" PRIu64, r->control_bytes);
    break;
  case ROW_CONTROL_PER_DATA:
    if (r->data_bytes > 0)
      snprintf(buf, len, "%.4f",
               (double)r->control_bytes / (double)r->data_bytes);
    else
      snprintf(buf, len, "-");
    break;
  case ROW_PACKETS_LOST:
    snprintf(buf, len, "%" PRIu64, r->packets_lost);
    break;
  case ROW_FAILOVERS:
    snprintf(buf, len, "%" PRIu32, r->failovers);
    break;
  case ROW_EVENTS:
    snprintf(buf, len, "%" PRIu64, r->events);
    break;
  case ROW_SIM_SECONDS:
    snprintf(buf, len, "%.3f", r->sim_seconds);
    break;
  case ROW_TRACE_HASH:
    snprintf(buf, len, "%016" PRIx64, r->trace_hash);
    break;
  case ROW_CONTINUITY:
    snprintf(buf, len, r->streaming ? "%.6f" : "-", r->continuity_index);
    break;
  case ROW_FIRST_P50:
    snprintf(buf, len, r->streaming ? "%.3f" : "-", r->first_copy_ms.p50);
    break;
  case ROW_FIRST_P90:
    snprintf(buf, len, r->streaming ? "%.3f" : "-", r->first_copy_ms.p90);
    break;
  case ROW_FIRST_P99:
    snprintf(buf, len, r->streaming ? "%.3f" : "-", r->first_copy_ms.p99);
    break;
  case ROW_STREAM_CONTROL_PER_DATA:
    if (r->streaming && r->stream_data_bytes > 0)
      snprintf(buf, len, "%.4f",
               (double)r->stream_control_bytes /
                   (double)r->stream_data_bytes);
    else
      snprintf(buf, len, "-");
    break;
  case ROW_NAT_DROPPED:
    snprintf(buf, len, "%" PRIu64, r->nat_dropped);
    break;
  default:
    assert(0 && "unknown row");
    buf[0] = '\0';
  }
}

/* Width of a result's column: its widest cell or its name. */
static int report_col_width(const quilt_sim_result *r) {
  char cell[REPORT_CELL_LEN];
  int w = (int)REPORT_NAME_LEN(r->protocol);
  for (int row = 0; row < ROW_COUNT; row++) {
    report_cell(cell, row, r);
    if ((int)strlen(cell) > w)
      w = (int)strlen(cell);
  }
  return w;
}

void quilt_report_table(FILE *out, const quilt_sim_result *r, size_t n) {
  assert(out != NULL && (r != NULL || n == 0));
  if (n == 0)
    return;
  int streaming = 0;
  for (size_t i = 0; i < n; i++)
    streaming |= r[i].streaming;
  const char *corner = "protocol";
  int label_w = (int)strlen(corner);
  for (int row = 0; row < ROW_COUNT; row++)
    if ((streaming || !report_row_streaming(row)) &&
        (int)strlen(report_row_labels[row]) > label_w)
      label_w = (int)strlen(report_row_labels[row]);

  fprintf(out, "%-*s", label_w, corner);
  for (size_t i = 0; i < n; i++)
    fprintf(out, "  %*.*s", report_col_width(&r[i]),
            (int)REPORT_NAME_LEN(r[i].protocol), r[i].protocol);
  fputc('\n', out);
  char cell[REPORT_CELL_LEN];
  for (int k = 0; k < ROW_COUNT; k++) {
    int row = report_row_order[k];
    if (!streaming && report_row_streaming(row))
      continue;
    fprintf(out, "%-*s", label_w, report_row_labels[row]);
    for (size_t i = 0; i < n; i++) {
      report_cell(cell, row, &r[i]);
      /* Recomputed per cell rather than stored: 25 rows, nothing to
       * allocate or fail. */
      fprintf(out, "  %*s", report_col_width(&r[i]), cell);
    }
    fputc('\n', out);
  }

  /* The only line that varies from one replay to the next. */
  fputs("wall seconds:", out);
  for (size_t i = 0; i < n; i++) {
    double wall = r[i].wall_seconds;
    fprintf(out, "%s %.*s %.3f", i ? "," : "",
            (int)REPORT_NAME_LEN(r[i].protocol), r[i].protocol, wall);
    if (wall > 0 && isfinite(wall))
      fprintf(out, " (%.0f events/s)", (double)r[i].events / wall);
  }
  fputc('\n', out);
}

/* --- JSON --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one
 * (RFC 3629 section 4: no overlongs, no surrogates, at most U+10FFFF). */
static size_t report_utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return len;
}

/* A JSON string (RFC 8259 section 7): quotes, backslashes and control
 * characters escaped, bytes that are not UTF-8 replaced by U+FFFD. */
static void report_json_string(FILE *f, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  fputc('"', f);
  for (size_t i = 0; i < n && p[i] != '\0';) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      fprintf(f, "\\u%04x", c);
      i++;
    } else if (c < 0x80) {
      fputc(c, f);
      i++;
    } else {
      size_t len = report_utf8_len(p + i, n - i);
      if (len == 0) {
        fputs("\\ufffd", f);
        i++;
      } else {
        fwrite(p + i, 1, len, f);
        i += len;
      }
    }
  }
  fputc('"', f);
}

/* JSON has no NaN or infinity; such a value is written as 0. */
static void report_json_number(FILE *f, double v) {
  fprintf(f, "%.15g", isfinite(v) ? v : 0.0);
}

static void report_json_stats(FILE *f, const char *key, const quilt_stats *s) {
  fprintf(f, "    \"%s\": {\"p50\": ", key);
  report_json_number(f, s->p50);
  fputs(", \"p90\": ", f);
  report_json_number(f, s->p90);
  fputs(", \"p99\": ", f);
  report_json_number(f, s->p99);
  fputs(", \"max\": ", f);
  report_json_number(f, s->max);
  fputs(", \"mean\": ", f);
  report_json_number(f, s->mean);
  fputs("},\n", f);
}

static void report_json_result(FILE *f, const quilt_sim_result *r) {
  fputs("  {\n    \"scenario\": ", f);
  report_json_string(f, r->scenario, sizeof r->scenario);
  fputs(",\n    \"protocol\": ", f);
  report_json_string(f, r->protocol, sizeof r->protocol);
  fprintf(f, ",\n    \"seed\": %" PRIu64 ",\n", r->seed);
  fprintf(f, "    \"hosts\": %" PRIu32 ",\n", r->hosts);
  fprintf(f, "    \"hosts_alive\": %" PRIu32 ",\n", r->hosts_alive);
  fprintf(f, "    \"messages\": %" PRIu32 ",\n", r->messages);
  fprintf(f, "    \"messages_orphaned\": %" PRIu32 ",\n",
          r->messages_orphaned);
  fprintf(f, "    \"expected\": %" PRIu64 ",\n", r->expected);
  fprintf(f, "    \"delivered\": %" PRIu64 ",\n", r->delivered);
  fputs("    \"delivery_ratio\": ", f);
  report_json_number(f, r->delivery_ratio);
  fprintf(f, ",\n    \"duplicate_deliveries\": %" PRIu64 ",\n",
          r->duplicate_deliveries);
  fprintf(f, "    \"loss_events\": %" PRIu64 ",\n", r->loss_events);
  fprintf(f, "    \"malformed_dropped\": %" PRIu64 ",\n", r->malformed_dropped);
  report_json_stats(f, "latency_ms", &r->latency_ms);
  report_json_stats(f, "lower_bound_ms", &r->lower_bound_ms);
  fprintf(f, "    \"data_bytes\": %" PRIu64 ",\n", r->data_bytes);
  fprintf(f, "    \"control_bytes\": %" PRIu64 ",\n", r->control_bytes);
  fputs("    \"control_per_data\": ", f);
  report_json_number(
      f, report_ratio((double)r->control_bytes, (double)r->data_bytes));
  fprintf(f, ",\n    \"packets_lost\": %" PRIu64 ",\n", r->packets_lost);
  fprintf(f, "    \"failovers\": %" PRIu32 ",\n", r->failovers);
  fprintf(f, "    \"churned\": %" PRIu32 ",\n", r->churned);
  fprintf(f, "    \"churn_restarts\": %" PRIu32 ",\n", r->churn_restarts);
  fprintf(f, "    \"tree_orphans\": %" PRIu64 ",\n", r->orphaned);
  fprintf(f, "    \"tree_cycles\": %" PRIu64 ",\n", r->tree_cycles);
  report_json_stats(f, "reattach_ms", &r->reattach_ms);
  if (r->streaming) {
    fputs("    \"continuity_index\": ", f);
    report_json_number(f, r->continuity_index);
    fprintf(f, ",\n    \"stream_pairs\": %" PRIu64 ",\n", r->stream_pairs);
    fprintf(f, "    \"stream_in_time\": %" PRIu64 ",\n", r->stream_in_time);
    report_json_stats(f, "first_copy_ms", &r->first_copy_ms);
    fprintf(f, "    \"stream_data_bytes\": %" PRIu64 ",\n",
            r->stream_data_bytes);
    fprintf(f, "    \"stream_control_bytes\": %" PRIu64 ",\n",
            r->stream_control_bytes);
    fputs("    \"stream_control_per_data\": ", f);
    report_json_number(f, report_ratio((double)r->stream_control_bytes,
                                       (double)r->stream_data_bytes));
    fprintf(f, ",\n    \"nat_dropped\": %" PRIu64 ",\n", r->nat_dropped);
  }
  fprintf(f, "    \"events\": %" PRIu64 ",\n", r->events);
  fprintf(f, "    \"trace_hash\": \"%016" PRIx64 "\",\n", r->trace_hash);
  fputs("    \"sim_seconds\": ", f);
  report_json_number(f, r->sim_seconds);
  fputs(",\n    \"wall_seconds\": ", f);
  report_json_number(f, r->wall_seconds);
  fputs(",\n    \"events_per_second\": ", f);
  report_json_number(f, isfinite(r->wall_seconds)
                            ? report_ratio((double)r->events, r->wall_seconds)
                            : 0.0);
  fputs("\n  }", f);
}

int quilt_report_json(const char *path, const quilt_sim_result *r, size_t n,
                      char *err, size_t errlen) {
  assert(path != NULL && (r != NULL || n == 0));
  FILE *f = fopen(path, "w");
  if (!f)
    return report_error(err, errlen, QUILT_ERR_IO, "%s: %s", path,
                        strerror(errno));
  fputc('[', f);
  for (size_t i = 0; i < n; i++) {
    fputs(i ? ",\n" : "\n", f);
    report_json_result(f, &r[i]);
  }
  fputs(n ? "\n]\n" : "]\n", f);
  /* A full disk shows up at the latest when the buffer is flushed. */
  int saved = 0;
  if (ferror(f))
    saved = errno ? errno : EIO;
  if (fclose(f) != 0 && saved == 0)
    saved = errno ? errno : EIO;
  if (saved != 0)
    return report_error(err, errlen, QUILT_ERR_IO, "%s: %s", path,
                        strerror(saved));
  return 0;
}

/* --- plot --------------------------------------------------------------- */

/* Writes one CDF as "x y" lines (x in ms, y the fraction of samples <= x),
 * at most about REPORT_PLOT_POINTS of them, then the two blank lines that
 * end a gnuplot data block (none for an empty curve, so that block numbers
 * count only drawn curves).  Non-positive and non-finite x are left out:
 * the x axis is logarithmic.  Returns the number of points written, or -1
 * when out of memory. */
static long report_write_cdf(FILE *f, const double *samples, size_t n) {
  if (!samples || n == 0)
    return 0;
  double *v = malloc(n * sizeof *v);
  if (!v)
    return -1;
  memcpy(v, samples, n * sizeof *v);
  qsort(v, n, sizeof *v, report_cmp_double);
  long written = 0;
  size_t steps = n < REPORT_PLOT_POINTS ? n : REPORT_PLOT_POINTS;
  size_t prev = SIZE_MAX;
  /* Rank 1, then ranks ceil(k n / steps) for k = 1..steps: the last one is
   * always n, the curve's top. */
  for (size_t k = 0; k <= steps; k++) {
    size_t idx =
        k == 0 ? 0 : (size_t)(((uint64_t)k * n + steps - 1) / steps) - 1;
    if (idx == prev)
      continue;
    prev = idx;
    if (!(v[idx] > 0) || !isfinite(v[idx]))
      continue;
    fprintf(f, "%.9g %.6f\n", v[idx], (double)(idx + 1) / (double)n);
    written++;
  }
  if (written > 0)
    fputs("\n\n", f);
  free(v);
  return written;
}

/* Writes s into a gnuplot single-quoted string, where the only escape is
 * '' for '; control characters become '?' so that a name cannot end the
 * command line. */
static void report_gnuplot_string(FILE *f, const char *s, size_t n) {
  fputc('\'', f);
  for (size_t i = 0; i < n && s[i] != '\0'; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\'')
      fputs("''", f);
    else if (c < 0x20 || c == 0x7f)
      fputc('?', f);
    else
      fputc(c, f);
  }
  fputc('\'', f);
}

/* Creates an empty temporary file from tmpl (ending in XXXXXX), opened for
 * writing. */
static FILE *report_temp_file(char *tmpl) {
  int fd = mkstemp(tmpl);
  if (fd < 0)
    return NULL;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    unlink(tmpl);
  }
  return f;
}

/* Closes f and reports whether everything written to it reached the file. */
static int report_close(FILE *f) {
  int bad = ferror(f);
  if (fclose(f) != 0)
    bad = 1;
  return bad ? -1 : 0;
}

/* Runs "gnuplot SCRIPT" and keeps the end of what it prints (stdout and
 * stderr together; gnuplot stops at the first error, so its message comes
 * last) in out; returns its wait status, or -1 if it could not be
 * started. */
static int report_run_gnuplot(const char *script, char *out, size_t outlen) {
  assert(outlen > 1);
  char cmd[128];
  /* script comes from mkstemp on a fixed template: no shell quoting
   * needed beyond the single quotes. */
  snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", script);
  out[0] = '\0';
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  size_t len = 0, cap = outlen - 1;
  char buf[256];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
    const char *src = buf;
    if (got > cap) {
      src += got - cap;
      got = cap;
    }
    if (len + got > cap) { /* drop the oldest bytes */
      size_t drop = len + got - cap;
      memmove(out, out + drop, len - drop);
      len -= drop;
    }
    memcpy(out + len, src, got);
    len += got;
  }
  out[len] = '\0';
  return pclose(p);
}

/* gnuplot's error message for a person, into dst: from the last line that
 * names our script ("SCRIPT" line N: MESSAGE, maybe followed by "system
 * error: ...") to the end, without that prefix and on one line; else its
 * last non-empty line. */
static const char *report_gnuplot_message(const char *s, const char *script,
                                          char *dst, size_t dstlen) {
  assert(dstlen > 0);
  size_t len = strlen(s);
  while (len > 0 && strchr("\r\n \t", s[len - 1]))
    len--;
  const char *msg = NULL, *end = s + len;
  size_t sl = strlen(script);
  for (const char *line = s; line < end;) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol)
      eol = end;
    if ((size_t)(eol - line) > sl + 2 && line[0] == '"' &&
        memcmp(line + 1, script, sl) == 0 && line[1 + sl] == '"') {
      for (const char *c = line + sl + 2; c + 1 < eol; c++)
        if (c[0] == ':' && c[1] == ' ') {
          msg = c + 2;
          break;
        }
    }
    line = eol + 1;
  }
  if (!msg) {
    msg = end;
    while (msg > s && msg[-1] != '\n')
      msg--;
  }
  while (msg < end && (*msg == ' ' || *msg == '\t'))
    msg++;
  /* One line: "A\nB" becomes "A: B". */
  size_t o = 0;
  for (; msg < end && o + 3 < dstlen; msg++) {
    if (*msg == '\r')
      continue;
    if (*msg == '\n') {
      dst[o++] = ':';
      dst[o++] = ' ';
    } else {
      dst[o++] = *msg;
    }
  }
  dst[o] = '\0';
  return o ? dst : "no output";
}

int quilt_report_plot(const char *path, const quilt_sim_result *r, size_t n,
                      char *err, size_t errlen) {
  assert(path != NULL && (r != NULL || n == 0));
  if (n == 0)
    return report_error(err, errlen, QUILT_ERR_IO, "%s: no results to plot",
                        path);
  for (const char *c = path; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      return report_error(err, errlen, QUILT_ERR_IO,
                          "%s: control character in file name", path);

  char data_path[] = "/tmp/quilt-plot-data-XXXXXX";
  char script_path[] = "/tmp/quilt-plot-gp-XXXXXX";
  FILE *data = report_temp_file(data_path);
  if (!data)
    return report_error(err, errlen, QUILT_ERR_IO,
                        "%s: cannot create a temporary file in /tmp: %s", path,
                        strerror(errno));
  FILE *script = report_temp_file(script_path);
  if (!script) {
    int e = errno;
    fclose(data);
    unlink(data_path);
    return report_error(err, errlen, QUILT_ERR_IO,
                        "%s: cannot create a temporary file in /tmp: %s", path,
                        strerror(e));
  }

  int rc = 0;
  /* Block b of the data file holds curve b; only non-empty ones are drawn.
   * Curves 0 to n - 1 are the results, curve n the lower bound of the
   * first result. */
  long *points = calloc(n + 1, sizeof *points);
  if (!points)
    rc = report_error(err, errlen, QUILT_ERR_NOMEM, "%s: out of memory", path);
  long total = 0;
  for (size_t b = 0; rc == 0 && b <= n; b++) {
    const quilt_sim_result *res = &r[b < n ? b : 0];
    const double *s =
        b == n ? res->lower_bound_samples_ms : res->latency_samples_ms;
    points[b] = report_write_cdf(data, s, res->nsamples);
    if (points[b] < 0)
      rc =
          report_error(err, errlen, QUILT_ERR_NOMEM, "%s: out of memory", path);
    else
      total += points[b];
  }
  if (rc == 0 && report_close(data) != 0)
    rc = report_error(err, errlen, QUILT_ERR_IO, "%s: cannot write %s", path,
                      data_path);
  else if (rc != 0)
    fclose(data);
  if (rc == 0 && total == 0)
    rc = report_error(err, errlen, QUILT_ERR_IO,
                      "%s: no positive latency samples to plot", path);

  if (rc == 0) {
    /* pngcairo draws antialiased lines; the plain png terminal (libgd) is
     * the fallback on builds without cairo. */
    fputs("if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
          "  set terminal pngcairo noenhanced size 1000,650\n"
          "} else {\n"
          "  set terminal png noenhanced size 1000,650\n"
          "}\n",
          script);
    fputs("set output ", script);
    report_gnuplot_string(script, path, strlen(path));
    fputs("\nset title ", script);
    char title[96];
    snprintf(title, sizeof title, "%.*s: delivery latency CDF",
             (int)REPORT_NAME_LEN(r[0].scenario), r[0].scenario);
    report_gnuplot_string(script, title, strlen(title));
    fputs("\nset logscale x\n"
          "set xlabel 'latency (ms, log scale)'\n"
          "set ylabel 'fraction of deliveries'\n"
          "set yrange [0:1]\n"
          "set grid\n"
          "set key bottom right\n"
          "plot ",
          script);
    size_t block = 0;
    for (size_t b = 0; b <= n; b++) {
      if (points[b] == 0)
        continue;
      fprintf(script, "%s", block ? ", \\\n     " : "");
      report_gnuplot_string(script, data_path, strlen(data_path));
      fprintf(script, " index %zu using 1:2 with lines", block++);
      if (b == n) {
        fputs(" dashtype 2 linecolor rgb 'black' title 'lower bound'", script);
      } else {
        fputs(" linewidth 2 title ", script);
        report_gnuplot_string(script, r[b].protocol, sizeof r[b].protocol);
      }
    }
    fputs("\nset output\n", script);
    if (report_close(script) != 0)
      rc = report_error(err, errlen, QUILT_ERR_IO, "%s: cannot write %s", path,
                        script_path);
  } else {
    fclose(script);
  }
  free(points);

  if (rc == 0) {
    char out[REPORT_GNUPLOT_OUTPUT], msg[REPORT_GNUPLOT_OUTPUT];
    int status = report_run_gnuplot(script_path, out, sizeof out);
    if (status == -1)
      rc = report_error(err, errlen, QUILT_ERR_IO, "%s: cannot run gnuplot: %s",
                        path, strerror(errno));
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      rc = report_error(err, errlen, QUILT_ERR_IO,
                        "%s: gnuplot not found (install gnuplot-nox)", path);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      rc = report_error(
          err, errlen, QUILT_ERR_IO, "%s: gnuplot failed (status %d): %s", path,
          WIFEXITED(status) ? WEXITSTATUS(status) : -1,
          report_gnuplot_message(out, script_path, msg, sizeof msg));
  }
  unlink(data_path);
  unlink(script_path);
  return rc;
}
