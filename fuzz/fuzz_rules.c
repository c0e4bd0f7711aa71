/*
 * fuzz_rules.c -- libFuzzer target for the rules parser and matcher.
 *
 * The input is a rules file.  When it parses, a few EUIDs made from the
 * input's own bytes are matched against it and the results checked against
 * the parser's promises (indices in range, keys and limits valid); when it
 * does not, the error must be one NUL-terminated line naming the file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const protocols[] = {"ipmc", "unicast", "tree", "mesh"};
#define NPROTOCOLS (sizeof protocols / sizeof protocols[0])

/* A deterministic EUID from the input: byte i of a 64-bit mix of the data
 * and a salt, so that different inputs probe different field values
 * (including out-of-range nat and ipmc, which matching must tolerate). */
static quilt_euid euid_from(const uint8_t *data, size_t size, uint64_t salt) {
  uint64_t h = 0xcbf29ce484222325ULL ^ salt;
  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 0x100000001b3ULL;
  quilt_euid e;
  e.nat = (uint8_t)(h % (QUILT_NAT__COUNT + 1));
  e.ipmc = (uint8_t)((h >> 8) & 1);
  e.domain = (uint32_t)(h >> 16) & ((salt & 1) ? 0xffu : 0xffffffffu);
  e.region = (uint32_t)(h >> 24) % 16;
  e.rtt_us = (uint32_t)(h >> 32) % 200000;
  e.bw_kbps = (uint32_t)(h >> 40) * 7;
  return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  quilt_rules *r = NULL;
  char err[QUILT_RULES_ERR_LEN];
  int rc = quilt_rules_parse(&r, "fuzz.rules", (const char *)data, size,
                             protocols, NPROTOCOLS, err, sizeof err);
  if (rc < 0) {
    if (r || strncmp(err, "fuzz.rules:", 11) != 0 || strchr(err, '\n'))
      abort();
    if (rc != QUILT_ERR_SYNTAX && rc != QUILT_ERR_LIMIT &&
        rc != QUILT_ERR_NOMEM)
      abort();
    return 0;
  }
  if (!r || quilt_rules_count(r) == 0 || quilt_rules_count(r) > QUILT_RULES_MAX)
    abort();
  size_t n = quilt_rules_count(r);
  char desc[128];
  for (unsigned i = 0; i < n; i++)
    if (strlen(quilt_rules_describe(r, i, desc, sizeof desc)) == 0)
      abort();
  for (uint64_t salt = 0; salt < 8; salt++) {
    quilt_euid e = euid_from(data, size, salt);
    quilt_rule_match m, m2;
    rc = quilt_rules_match(r, &e, &m);
    if (rc == QUILT_ERR_NOT_FOUND)
      continue;
    if (rc != 0 || m.rule >= n || m.protocol >= NPROTOCOLS ||
        m.nkeys > QUILT_RULES_MAX_KEYS ||
        m.max_members > QUILT_RULES_MAX_MEMBERS)
      abort();
    /* Matching is a pure function of the rules and the EUID. */
    if (quilt_rules_match(r, &e, &m2) != 0 || memcmp(&m, &m2, sizeof m) != 0)
      abort();
  }
  quilt_rules_del(r);
  return 0;
}
