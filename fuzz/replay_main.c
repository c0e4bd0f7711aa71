/*
 * replay_main.c -- runs a libFuzzer target over files without libFuzzer.
 *
 * Each fuzz target defines LLVMFuzzerTestOneInput; linked with this file it
 * becomes a regression test that feeds it every file of a corpus folder (or
 * the files named on the command line).  Exits 0 when every input returned
 * without crashing.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return -1;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return -1;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    if (n == 0)
      break;
    len += n;
  }
  fclose(f);
  /* Copy into an exact-size allocation so that ASan sees overreads. */
  uint8_t *exact = malloc(len ? len : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  if (len)
    memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

static int run_path(const char *path, int *count) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "replay: no such path %s\n", path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    (*count)++;
    return run_file(path);
  }
  struct dirent **list;
  int n = scandir(path, &list, NULL, alphasort);
  if (n < 0)
    return -1;
  int rc = 0;
  for (int i = 0; i < n; i++) {
    if (list[i]->d_name[0] != '.') {
      char sub[4096];
      snprintf(sub, sizeof sub, "%s/%s", path, list[i]->d_name);
      if (run_path(sub, count) != 0)
        rc = -1;
    }
    free(list[i]);
  }
  free(list);
  return rc;
}

int main(int argc, char **argv) {
  int count = 0, rc = 0;
  for (int i = 1; i < argc; i++)
    if (run_path(argv[i], &count) != 0)
      rc = 1;
  /* Random inputs as well, with a fixed seed, so an empty corpus still
   * exercises the decoder. */
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  uint8_t buf[2048];
  for (int i = 0; i < 20000; i++) {
    size_t len = (size_t)(x % sizeof buf);
    for (size_t j = 0; j < len; j++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[j] = (uint8_t)x;
    }
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact)
      return 1;
    memcpy(exact, buf, len);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  }
  printf("replayed %d corpus files and 20000 random inputs\n", count);
  return rc;
}
