/* topo_test.c -- the topology parsers and the RTT model (sim/topo.h). */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"
#include "topo.h"

#ifndef QUILT_SOURCE_DIR
#error "QUILT_SOURCE_DIR must name the source tree"
#endif
#define CLUSTERS_CSV QUILT_SOURCE_DIR "/data/grid5000/clusters.csv"
#define SITE_RTT_CSV QUILT_SOURCE_DIR "/data/grid5000/site_rtt.csv"

#define RTT_HEADER "site_a,site_b,rtt_ms\n"
#define CLUSTERS_HEADER "site,cluster,hosts\n"

static int parse(quilt_topo *t, const char *clusters, const char *rtt,
                 uint64_t seed, char *err) {
  return quilt_topo_parse(t, "c.csv", clusters, strlen(clusters), "r.csv", rtt,
                          strlen(rtt), seed, err, QUILT_TOPO_ERR_LEN);
}

static int find_site(const quilt_topo *t, const char *name) {
  for (uint32_t i = 0; i < t->nsites; i++)
    if (strcmp(t->site_names[i], name) == 0)
      return (int)i;
  return -1;
}

/* The first host of the first cluster of a site. */
static uint32_t first_host_of_site(const quilt_topo *t, const char *site) {
  int s = find_site(t, site);
  assert_true(s >= 0);
  for (uint32_t c = 0; c < t->nclusters; c++)
    if (t->clusters[c].site == (uint32_t)s)
      return t->clusters[c].first_host;
  fail();
  return 0;
}

static void test_grid5000_loads(void **state) {
  quilt_topo t;
  char err[QUILT_TOPO_ERR_LEN] = "";
  int rc = quilt_topo_load(&t, CLUSTERS_CSV, SITE_RTT_CSV, 1, err, sizeof err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_int_equal(t.nclusters, 25);
  assert_int_equal(t.nsites, 9);
  assert_int_equal(t.nhosts, 1528);
  assert_string_equal(t.site_names[0], "bordeaux");
  assert_string_equal(t.site_names[8], "toulouse");
  assert_string_equal(t.clusters[0].name, "bordeplage");
  assert_int_equal(t.clusters[0].hosts, 51);
  assert_int_equal(t.clusters[24].first_host + t.clusters[24].hosts, 1528);

  uint32_t bdx = first_host_of_site(&t, "bordeaux");
  uint32_t gre = first_host_of_site(&t, "grenoble");
  assert_int_equal(quilt_topo_rtt_us(&t, bdx, gre), 6820);
  assert_int_equal(quilt_topo_rtt_us(&t, gre, bdx), 6820);
  /* The last pair of the file, and the largest RTT. */
  assert_int_equal(quilt_topo_rtt_us(&t, first_host_of_site(&t, "sophia"),
                                     first_host_of_site(&t, "toulouse")),
                   5970);
  assert_int_equal(quilt_topo_rtt_us(&t, first_host_of_site(&t, "rennes"),
                                     first_host_of_site(&t, "toulouse")),
                   16610);

  uint32_t first = 0;
  for (uint32_t c = 0; c < t.nclusters; c++) {
    const quilt_topo_cluster *cl = &t.clusters[c];
    assert_int_equal(cl->first_host, first);
    first += cl->hosts;
    assert_true(cl->rtt_us >= QUILT_TOPO_INTRA_CLUSTER_RTT_MIN_US);
    assert_true(cl->rtt_us <= QUILT_TOPO_INTRA_CLUSTER_RTT_MAX_US);
    assert_string_equal(t.site_names[cl->site], cl->site_name);
    for (uint32_t h = 0; h < cl->hosts; h++)
      assert_int_equal(t.host_cluster[cl->first_host + h], c);
  }
  /* Bordeaux's first two clusters: inside one, then across the two. */
  assert_int_equal(quilt_topo_rtt_us(&t, 0, 50), t.clusters[0].rtt_us);
  assert_int_equal(quilt_topo_rtt_us(&t, 0, 51), QUILT_TOPO_INTRA_SITE_RTT_US);

  for (uint32_t a = 0; a < t.nhosts; a++) {
    assert_int_equal(quilt_topo_rtt_us(&t, a, a), 0);
    for (uint32_t b = a + 1; b < t.nhosts; b++) {
      uint32_t ab = quilt_topo_rtt_us(&t, a, b);
      if (ab != quilt_topo_rtt_us(&t, b, a) || ab == 0)
        fail_msg("rtt(%u, %u) = %u, rtt(%u, %u) = %u", a, b, ab, b, a,
                 quilt_topo_rtt_us(&t, b, a));
    }
  }
  for (uint32_t i = 0; i < t.nsites; i++)
    for (uint32_t j = 0; j < t.nsites; j++) {
      uint32_t v = t.site_rtt_us[i * t.nsites + j];
      assert_int_equal(v, t.site_rtt_us[j * t.nsites + i]);
      if (i == j)
        assert_int_equal(v, 0);
      else
        assert_true(v >= 1000 && v <= 17000);
    }
  quilt_topo_free(&t);
  assert_null(t.clusters);
  assert_int_equal(t.nhosts, 0);
}

static void test_same_seed_same_draws(void **state) {
  quilt_topo a, b, c;
  char err[QUILT_TOPO_ERR_LEN];
  assert_int_equal(
      quilt_topo_load(&a, CLUSTERS_CSV, SITE_RTT_CSV, 42, err, sizeof err), 0);
  assert_int_equal(
      quilt_topo_load(&b, CLUSTERS_CSV, SITE_RTT_CSV, 42, err, sizeof err), 0);
  assert_int_equal(
      quilt_topo_load(&c, CLUSTERS_CSV, SITE_RTT_CSV, 43, err, sizeof err), 0);
  int differ = 0;
  for (uint32_t i = 0; i < a.nclusters; i++) {
    assert_int_equal(a.clusters[i].rtt_us, b.clusters[i].rtt_us);
    differ |= a.clusters[i].rtt_us != c.clusters[i].rtt_us;
  }
  assert_true(differ);
  quilt_topo_free(&a);
  quilt_topo_free(&b);
  quilt_topo_free(&c);
}

/* CRLF, comments, blank lines, spaces and tabs around fields, a BOM, no
 * final newline. */
static void test_lenient_syntax(void **state) {
  quilt_topo t;
  char err[QUILT_TOPO_ERR_LEN];
  const char *clusters = "\xEF\xBB\xBF# Grid'5000, a piece of it\r\n"
                         "\r\n"
                         "  site , cluster,\thosts \r\n"
                         "a, x ,3\r\n"
                         "   # a comment after blanks\r\n"
                         "b,y,2\r\n"
                         "a,z,1";
  const char *rtt = "# comment\n\n site_a,site_b,rtt_ms\n b , a , 1.0005 ";
  int rc = parse(&t, clusters, rtt, 7, err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_int_equal(t.nsites, 2);
  assert_int_equal(t.nclusters, 3);
  assert_int_equal(t.nhosts, 6);
  assert_string_equal(t.clusters[1].name, "y");
  assert_int_equal(t.clusters[2].first_host, 5);
  /* 1.0005 ms rounds half up to 1001 us. */
  assert_int_equal(quilt_topo_rtt_us(&t, 0, 3), 1001);
  assert_int_equal(quilt_topo_rtt_us(&t, 4, 5), 1001);
  assert_int_equal(quilt_topo_rtt_us(&t, 0, 5), QUILT_TOPO_INTRA_SITE_RTT_US);
  assert_int_equal(quilt_topo_rtt_us(&t, 1, 2), t.clusters[0].rtt_us);
  quilt_topo_free(&t);

  /* One site needs no RTT row, only the header. */
  rc = parse(&t, CLUSTERS_HEADER "solo,x,1\n", RTT_HEADER, 7, err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_int_equal(quilt_topo_rtt_us(&t, 0, 0), 0);
  quilt_topo_free(&t);
}

static void test_rtt_values(void **state) {
  static const struct {
    const char *text;
    uint32_t us;
  } ok[] = {{"1", 1000},        {"0.001", 1},     {"0.0005", 1},
            {".5", 500},        {"5.", 5000},     {"9999.999", 9999999},
            {"12.3456", 12346}, {"007.25", 7250}, {"9999.9999", 10000000}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    quilt_topo t;
    char err[QUILT_TOPO_ERR_LEN], rtt[128];
    snprintf(rtt, sizeof rtt, RTT_HEADER "a,b,%s\n", ok[i].text);
    int rc = parse(&t, CLUSTERS_HEADER "a,x,1\nb,y,1\n", rtt, 1, err);
    if (rc != 0)
      fail_msg("%s: %s", ok[i].text, err);
    assert_int_equal(quilt_topo_rtt_us(&t, 0, 1), ok[i].us);
    quilt_topo_free(&t);
  }
}

typedef struct bad_case {
  const char *clusters;
  const char *rtt;
  int rc;
  const char *err;
} bad_case;

#define TWO_SITES CLUSTERS_HEADER "a,x,1\nb,y,1\n"
#define THREE_SITES CLUSTERS_HEADER "a,x,1\nb,y,1\nc,z,1\n"
#define RTT_AB RTT_HEADER "a,b,1\n"

static const bad_case bad_cases[] = {
    /* Headers. */
    {"", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:1:1: missing header 'site,cluster,hosts'"},
    {"# only a comment\n\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:3:1: missing header 'site,cluster,hosts'"},
    {"site,cluster,host\na,x,1\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:1:14: expected header 'site,cluster,hosts'"},
    {"site,cluster\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:1:13: expected header 'site,cluster,hosts'"},
    {"site,cluster,hosts,x\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:1:20: expected header 'site,cluster,hosts'"},
    {"a,x,1\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:1:1: expected header 'site,cluster,hosts'"},
    {TWO_SITES, "site_a,site_b,rtt\na,b,1\n", QUILT_ERR_SYNTAX,
     "r.csv:1:15: expected header 'site_a,site_b,rtt_ms'"},
    {TWO_SITES, "", QUILT_ERR_SYNTAX,
     "r.csv:1:1: missing header 'site_a,site_b,rtt_ms'"},
    {CLUSTERS_HEADER, RTT_AB, QUILT_ERR_SYNTAX, "c.csv: no clusters"},
    /* Fields of clusters.csv. */
    {CLUSTERS_HEADER "a,x\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:4: expected 3 fields (site,cluster,hosts), found 2"},
    {CLUSTERS_HEADER "a,x,1,2\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:7: expected 3 fields (site,cluster,hosts), found 4"},
    {CLUSTERS_HEADER "a,x,12a\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:5: hosts must be an integer from 1 to 200000, got '12a'"},
    {CLUSTERS_HEADER "a,x, 0\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:6: hosts must be an integer from 1 to 200000, got '0'"},
    {CLUSTERS_HEADER "a,x,-3\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:5: hosts must be an integer from 1 to 200000, got '-3'"},
    {CLUSTERS_HEADER "a,x,200001\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:5: hosts must be an integer from 1 to 200000, got '200001'"},
    {CLUSTERS_HEADER "a,x,\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:5: hosts must be an integer from 1 to 200000, got ''"},
    {CLUSTERS_HEADER "a,x,100000\nb,y,100001\n", RTT_AB, QUILT_ERR_LIMIT,
     "c.csv:3:5: more than 200000 hosts in total"},
    {CLUSTERS_HEADER "a,x,1\n ,y,1\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:3:2: empty site name"},
    {CLUSTERS_HEADER "a b,x,1\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:1: invalid character ' ' in site name 'a b' (allowed: A-Z a-z "
     "0-9 _ . -)"},
    {CLUSTERS_HEADER "a,\"x\",1\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:3: invalid character '\"' in cluster name '\"x\"' (allowed: "
     "A-Z a-z 0-9 _ . -)"},
    {CLUSTERS_HEADER "a,x\001,1\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:3: invalid character '\\x01' in cluster name 'x\\x01' (allowed: "
     "A-Z a-z 0-9 _ . -)"},
    {CLUSTERS_HEADER "a,x,1\ra\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:2:5: hosts must be an integer from 1 to 200000, got '1\\x0da'"},
    {CLUSTERS_HEADER
     "a,0123456789012345678901234567890123456789012345678901234567890123,1\n",
     RTT_AB, QUILT_ERR_SYNTAX, "c.csv:2:3: cluster name longer than 63 bytes"},
    {CLUSTERS_HEADER "a,x,1\nb,y,1\n# c\nb,x,2\n", RTT_AB, QUILT_ERR_SYNTAX,
     "c.csv:5:3: duplicate cluster 'x' (first on line 2)"},
    /* Rows of site_rtt.csv. */
    {TWO_SITES, RTT_HEADER "a,c,1\n", QUILT_ERR_SYNTAX,
     "r.csv:2:3: unknown site 'c' (not in c.csv)"},
    {TWO_SITES, RTT_HEADER "paris , b,1\n", QUILT_ERR_SYNTAX,
     "r.csv:2:1: unknown site 'paris' (not in c.csv)"},
    {TWO_SITES, RTT_HEADER "a,a,1\n", QUILT_ERR_SYNTAX,
     "r.csv:2:3: site 'a' paired with itself"},
    {TWO_SITES, RTT_AB "b,a,2\n", QUILT_ERR_SYNTAX,
     "r.csv:3:1: duplicate RTT for sites 'b' and 'a' (first on line 2)"},
    {TWO_SITES, RTT_HEADER "a,b\n", QUILT_ERR_SYNTAX,
     "r.csv:2:4: expected 3 fields (site_a,site_b,rtt_ms), found 2"},
    {TWO_SITES, RTT_HEADER, QUILT_ERR_SYNTAX,
     "r.csv: no RTT for sites 'a' and 'b'"},
    {THREE_SITES, RTT_HEADER "a,b,1\nc,a,2\n", QUILT_ERR_SYNTAX,
     "r.csv: no RTT for sites 'b' and 'c'"},
    {TWO_SITES, RTT_HEADER "a,b,-1\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got '-1'"},
    {TWO_SITES, RTT_HEADER "a,b,0\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got '0'"},
    {TWO_SITES, RTT_HEADER "a,b,0.000\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got '0.000'"},
    {TWO_SITES, RTT_HEADER "a,b,10000\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got '10000'"},
    {TWO_SITES, RTT_HEADER "a,b,1e3\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got '1e3'"},
    {TWO_SITES, RTT_HEADER "a,b,nan\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got 'nan'"},
    {TWO_SITES, RTT_HEADER "a,b,inf\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got 'inf'"},
    {TWO_SITES, RTT_HEADER "a,b,.\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got '.'"},
    {TWO_SITES, RTT_HEADER "a,b,1.2.3\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got '1.2.3'"},
    {TWO_SITES, RTT_HEADER "a,b,0.0004\n", QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms '0.0004' rounds to 0 microseconds"},
    {TWO_SITES,
     RTT_HEADER "a,b,1234567890123456789012345678901234567890123456789\n",
     QUILT_ERR_SYNTAX,
     "r.csv:2:5: rtt_ms must be a decimal number greater than 0 and less "
     "than 10000, got '12345678901234567890123456789012...'"},
};

static void test_errors(void **state) {
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const bad_case *c = &bad_cases[i];
    quilt_topo t;
    char err[QUILT_TOPO_ERR_LEN] = "";
    int rc = parse(&t, c->clusters, c->rtt, 1, err);
    if (rc != c->rc || strcmp(err, c->err) != 0)
      fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, rc, err, c->rc,
               c->err);
    /* A failed parse leaves nothing behind. */
    assert_null(t.clusters);
    assert_null(t.site_names);
    assert_null(t.site_rtt_us);
    assert_null(t.host_cluster);
    quilt_topo_free(&t);
  }
}

static void test_long_lines(void **state) {
  /* A line of exactly the limit is fine (here a comment); one byte more is
   * not, wherever it is. */
  size_t n = QUILT_TOPO_MAX_LINE;
  char *clusters = malloc(n + 64);
  assert_non_null(clusters);
  memset(clusters, '#', n);
  strcpy(clusters + n, "\r\n" CLUSTERS_HEADER "a,x,1\n");
  quilt_topo t;
  char err[QUILT_TOPO_ERR_LEN] = "";
  if (parse(&t, clusters, RTT_HEADER, 1, err) != 0)
    fail_msg("%s", err);
  quilt_topo_free(&t);

  memset(clusters, '#', n + 1);
  strcpy(clusters + n + 1, "\n" CLUSTERS_HEADER "a,x,1\n");
  assert_int_equal(parse(&t, clusters, RTT_HEADER, 1, err), QUILT_ERR_LIMIT);
  assert_string_equal(err, "c.csv:1:1025: line longer than 1024 bytes");

  strcpy(clusters, CLUSTERS_HEADER "a,x,");
  size_t len = strlen(clusters);
  memset(clusters + len, '1', n + 1 - (len - strlen(CLUSTERS_HEADER)));
  clusters[strlen(CLUSTERS_HEADER) + n + 1] = '\0';
  assert_int_equal(parse(&t, clusters, RTT_HEADER, 1, err), QUILT_ERR_LIMIT);
  assert_string_equal(err, "c.csv:2:1025: line longer than 1024 bytes");
  free(clusters);
}

/* The parser takes bytes, not strings: an embedded NUL is an error, and
 * nothing is read past the length. */
static void test_bytes_not_strings(void **state) {
  static const char clusters[] = CLUSTERS_HEADER "a,x\0y,1\n";
  quilt_topo t;
  char err[QUILT_TOPO_ERR_LEN];
  assert_int_equal(quilt_topo_parse(&t, "c.csv", clusters, sizeof clusters - 1,
                                    "r.csv", RTT_HEADER, strlen(RTT_HEADER), 1,
                                    err, sizeof err),
                   QUILT_ERR_SYNTAX);
  assert_string_equal(err, "c.csv:2:3: invalid character '\\x00' in cluster "
                           "name 'x\\x00y' (allowed: A-Z a-z 0-9 _ . -)");
  /* "a,x,12" cut after "a,x,1". */
  static const char cut[] = CLUSTERS_HEADER "a,x,12";
  assert_int_equal(quilt_topo_parse(&t, "c.csv", cut, sizeof cut - 2, "r.csv",
                                    RTT_HEADER, strlen(RTT_HEADER), 1, err,
                                    sizeof err),
                   0);
  assert_int_equal(t.nhosts, 1);
  quilt_topo_free(&t);
  /* A short error buffer truncates, and none at all is allowed. */
  char small[8];
  assert_int_equal(quilt_topo_parse(&t, "c.csv", "", 0, "r.csv", "", 0, 1,
                                    small, sizeof small),
                   QUILT_ERR_SYNTAX);
  assert_string_equal(small, "c.csv:1");
  assert_int_equal(
      quilt_topo_parse(&t, "c.csv", NULL, 0, "r.csv", NULL, 0, 1, NULL, 0),
      QUILT_ERR_SYNTAX);
}

static void test_load_errors(void **state) {
  quilt_topo t;
  char err[QUILT_TOPO_ERR_LEN];
  const char *missing = QUILT_SOURCE_DIR "/data/grid5000/no-such-file.csv";
  assert_int_equal(
      quilt_topo_load(&t, missing, SITE_RTT_CSV, 1, err, sizeof err),
      QUILT_ERR_IO);
  char want[QUILT_TOPO_ERR_LEN];
  snprintf(want, sizeof want, "%s: cannot read: No such file or directory",
           missing);
  assert_string_equal(err, want);
  assert_int_equal(
      quilt_topo_load(&t, CLUSTERS_CSV, missing, 1, err, sizeof err),
      QUILT_ERR_IO);
  assert_string_equal(err, want);
  /* A directory opens but does not read. */
  const char *dir = QUILT_SOURCE_DIR "/data/grid5000";
  assert_int_equal(quilt_topo_load(&t, dir, SITE_RTT_CSV, 1, err, sizeof err),
                   QUILT_ERR_IO);
  snprintf(want, sizeof want, "%s: cannot read: Is a directory", dir);
  assert_string_equal(err, want);
  /* Errors inside a loaded file name it by its path. */
  assert_int_equal(
      quilt_topo_load(&t, SITE_RTT_CSV, CLUSTERS_CSV, 1, err, sizeof err),
      QUILT_ERR_SYNTAX);
  snprintf(want, sizeof want, "%s:4:1: expected header 'site,cluster,hosts'",
           SITE_RTT_CSV);
  assert_string_equal(err, want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grid5000_loads),
      cmocka_unit_test(test_same_seed_same_draws),
      cmocka_unit_test(test_lenient_syntax),
      cmocka_unit_test(test_rtt_values),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_long_lines),
      cmocka_unit_test(test_bytes_not_strings),
      cmocka_unit_test(test_load_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
