/* util.c -- number parsing and file reading for the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_parse_u64(const char *cmd, const char *flag, const char *s,
                  uint64_t min, uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
    goto bad;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < min || v > max)
    goto bad;
  *out = v;
  return 0;
bad:
  fprintf(stderr, "%s: %s: '%s' is not an integer in [%llu, %llu]\n", cmd,
          flag, s ? s : "", (unsigned long long)min,
          (unsigned long long)max);
  return -1;
}

int cli_parse_double(const char *cmd, const char *flag, const char *s,
                     double min, double max, double *out) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == ' ')
    goto bad;
  double v = strtod(s, &end);
  if (errno || *end || !isfinite(v) || v < min || v >= max)
    goto bad;
  *out = v;
  return 0;
bad:
  fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g)\n", cmd, flag,
          s ? s : "", min, max);
  return -1;
}

char *cli_read_file(const char *cmd, const char *path, size_t max,
                    size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: %s: cannot read: %s\n", cmd, path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(max + 1);
  if (!buf) {
    fclose(f);
    fprintf(stderr, "%s: %s: out of memory\n", cmd, path);
    return NULL;
  }
  size_t n = fread(buf, 1, max + 1, f);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "%s: %s: cannot read: %s\n", cmd, path, strerror(errno));
    free(buf);
    return NULL;
  }
  if (n > max) {
    fprintf(stderr, "%s: %s: file larger than %zu bytes\n", cmd, path, max);
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

const char *cli_data_dir(void) {
  const char *d = getenv("QUILT_DATA_DIR");
  if (d && *d)
    return d;
  /* An installed program finds its data where `make install` put it; one
   * run from its build tree, in the sources. */
  if (access(QUILT_INSTALLED_DATA_DIR "/grid5000/clusters.csv", R_OK) == 0)
    return QUILT_INSTALLED_DATA_DIR;
  return QUILT_DATA_DIR;
}
