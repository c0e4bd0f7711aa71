/* euid_test.c -- the EUID's text and wire forms. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <string.h>

#include "euid.h"
#include "quilt.h"

static quilt_euid sample(void) {
  quilt_euid e;
  memset(&e, 0, sizeof e);
  e.nat = QUILT_NAT_NONE;
  e.ipmc = 1;
  e.domain = 0x1a;
  e.region = 3;
  e.rtt_us = 250;
  e.bw_kbps = 1000000;
  return e;
}

static void assert_euid_equal(const quilt_euid *a, const quilt_euid *b) {
  assert_int_equal(a->nat, b->nat);
  assert_int_equal(a->ipmc, b->ipmc);
  assert_int_equal(a->domain, b->domain);
  assert_int_equal(a->region, b->region);
  assert_int_equal(a->rtt_us, b->rtt_us);
  assert_int_equal(a->bw_kbps, b->bw_kbps);
}

static int parse_str(quilt_euid *e, const char *s, int *col) {
  return quilt_euid_parse(e, s, strlen(s), col);
}

static void test_nat_names(void **state) {
  (void)state;
  const char *names[] = {"none",       "full-cone",
                         "restricted", "port-restricted",
                         "symmetric",  "unknown"};
  for (unsigned i = 0; i < QUILT_NAT__COUNT; i++) {
    assert_string_equal(quilt_nat_name(i), names[i]);
    assert_int_equal(quilt_nat_parse(names[i], strlen(names[i])), (int)i);
  }
  assert_null(quilt_nat_name(QUILT_NAT__COUNT));
  assert_null(quilt_nat_name(1000));
  assert_int_equal(quilt_nat_parse("None", 4), -1);
  assert_int_equal(quilt_nat_parse("full", 4), -1);
  assert_int_equal(quilt_nat_parse("nonex", 5), -1);
  assert_int_equal(quilt_nat_parse("none", 3), -1); /* length, not NUL */
  assert_int_equal(quilt_nat_parse("", 0), -1);
}

static void test_format_canonical(void **state) {
  (void)state;
  char buf[QUILT_EUID_TEXT_MAX];
  quilt_euid e = sample();
  const char *want =
      "nat=none ipmc=yes domain=0000001a region=3 rtt_ms=0.250 bw_mbps=1000";
  assert_int_equal(quilt_euid_format(&e, buf, sizeof buf), strlen(want));
  assert_string_equal(buf, want);

  e.nat = QUILT_NAT_PORT_RESTRICTED;
  e.ipmc = 0;
  e.domain = 0xDEADBEEF;
  e.region = 0;
  e.rtt_us = 12345678;
  e.bw_kbps = 1500;
  quilt_euid_format(&e, buf, sizeof buf);
  assert_string_equal(buf, "nat=port-restricted ipmc=no domain=deadbeef "
                           "region=0 rtt_ms=12345.678 bw_mbps=1.5");
  e.bw_kbps = 1;
  e.rtt_us = 0;
  quilt_euid_format(&e, buf, sizeof buf);
  assert_non_null(strstr(buf, "rtt_ms=0.000 bw_mbps=0.001"));
  e.bw_kbps = 10;
  quilt_euid_format(&e, buf, sizeof buf);
  assert_non_null(strstr(buf, "bw_mbps=0.01"));
  e.bw_kbps = 0;
  quilt_euid_format(&e, buf, sizeof buf);
  assert_non_null(strstr(buf, "bw_mbps=0"));
}

/* The longest possible text fits in QUILT_EUID_TEXT_MAX. */
static void test_format_longest(void **state) {
  (void)state;
  char buf[QUILT_EUID_TEXT_MAX];
  quilt_euid e = {QUILT_NAT_PORT_RESTRICTED,
                  1,
                  UINT32_MAX,
                  UINT32_MAX,
                  UINT32_MAX,
                  UINT32_MAX};
  size_t n = quilt_euid_format(&e, buf, sizeof buf);
  assert_true(n < QUILT_EUID_TEXT_MAX);
  assert_int_equal(strlen(buf), n);
  assert_string_equal(buf, "nat=port-restricted ipmc=yes domain=ffffffff "
                           "region=4294967295 rtt_ms=4294967.295 "
                           "bw_mbps=4294967.295");
  quilt_euid back;
  int col = -1;
  assert_int_equal(quilt_euid_parse(&back, buf, n, &col), 0);
  assert_euid_equal(&e, &back);
}

static void test_text_round_trip(void **state) {
  (void)state;
  /* A spread of values, including every NAT class and edge numbers. */
  uint32_t nums[] = {0, 1, 9, 10, 999, 1000, 1001, 1500, 123456, UINT32_MAX};
  size_t nn = sizeof nums / sizeof nums[0];
  for (unsigned nat = 0; nat < QUILT_NAT__COUNT; nat++)
    for (size_t i = 0; i < nn; i++) {
      quilt_euid e = {(uint8_t)nat,     (uint8_t)(i & 1),   nums[i],
                      nums[nn - 1 - i], nums[(i + 3) % nn], nums[(i + 7) % nn]};
      char a[QUILT_EUID_TEXT_MAX], b[QUILT_EUID_TEXT_MAX];
      size_t na = quilt_euid_format(&e, a, sizeof a);
      quilt_euid back;
      int col = -1;
      assert_int_equal(quilt_euid_parse(&back, a, na, &col), 0);
      assert_euid_equal(&e, &back);
      quilt_euid_format(&back, b, sizeof b);
      assert_string_equal(a, b);
    }
}

static void test_parse_any_order_and_forms(void **state) {
  (void)state;
  quilt_euid e, want = sample();
  int col = -1;
  assert_int_equal(parse_str(&e,
                             "bw_mbps=1000.000 rtt_ms=0.25 region=3 "
                             "domain=0x1A ipmc=yes nat=none",
                             &col),
                   0);
  assert_euid_equal(&e, &want);
  /* Extra whitespace and a trailing newline are tolerated. */
  assert_int_equal(parse_str(&e,
                             "  nat=none\tipmc=yes  domain=1a region=3 "
                             "rtt_ms=0.250 bw_mbps=1000\r\n",
                             &col),
                   0);
  assert_euid_equal(&e, &want);
  /* A non-canonical input formats to the canonical text. */
  char buf[QUILT_EUID_TEXT_MAX];
  quilt_euid_format(&e, buf, sizeof buf);
  assert_string_equal(buf,
                      "nat=none ipmc=yes domain=0000001a region=3 rtt_ms=0.250 "
                      "bw_mbps=1000");
}

/* Each bad input with the column of its first offending character. */
static void test_parse_errors(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int col;
  } cases[] = {
      {"", 1},
      {"nat=none", 9}, /* text ends, fields missing */
      {"nat=none ipmc=yes domain=1a region=3 rtt_ms=0.250", 50},
      {"nat=nonex ipmc=yes domain=1a region=3 rtt_ms=1 bw_mbps=1", 5},
      {"nat=none ipmc=maybe domain=1a region=3 rtt_ms=1 bw_mbps=1", 15},
      {"nat=none ipmc=yes domain=1g region=3 rtt_ms=1 bw_mbps=1", 26},
      {"nat=none ipmc=yes domain=123456789 region=3 rtt_ms=1 bw_mbps=1", 26},
      {"nat=none ipmc=yes domain=1 region=-3 rtt_ms=1 bw_mbps=1", 35},
      {"nat=none ipmc=yes domain=1 region=4294967296 rtt_ms=1 bw_mbps=1", 35},
      {"nat=none ipmc=yes domain=1 region=3 rtt_ms=0.2505 bw_mbps=1", 44},
      {"nat=none ipmc=yes domain=1 region=3 rtt_ms=.5 bw_mbps=1", 44},
      {"nat=none ipmc=yes domain=1 region=3 rtt_ms=1. bw_mbps=1", 44},
      {"nat=none ipmc=yes domain=1 region=3 rtt_ms=1 bw_mbps=4294967.296", 54},
      {"nat=none ipmc=yes domain=1 region=3 rtt_ms=1 bw_mbps=", 54},
      {"nat=none nat=none", 10},    /* repeated */
      {"nat=none colour=blue", 10}, /* unknown field */
      {"nat none", 4},              /* missing '=' after a field */
      {"nat=none ipmc", 14},        /* same, at the end */
      {"hello", 1},                 /* not a field at all */
      {"nat=none ipmc=yes extra", 19},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    quilt_euid e = sample();
    int col = -1;
    int rc = parse_str(&e, cases[i].text, &col);
    if (rc != QUILT_ERR_SYNTAX || col != cases[i].col)
      fail_msg("case %zu \"%s\": rc %d col %d, want col %d", i, cases[i].text,
               rc, col, cases[i].col);
    /* A failed parse leaves the struct alone. */
    quilt_euid want = sample();
    assert_euid_equal(&e, &want);
  }
  /* Longer than any sane EUID text. */
  char big[5000];
  memset(big, ' ', sizeof big);
  int col = -1;
  quilt_euid e;
  assert_int_equal(quilt_euid_parse(&e, big, sizeof big, &col),
                   QUILT_ERR_SYNTAX);
  assert_int_equal(col, 4097);
  /* err_col may be NULL. */
  assert_int_equal(quilt_euid_parse(&e, "x", 1, NULL), QUILT_ERR_SYNTAX);
}

static void test_wire_layout(void **state) {
  (void)state;
  quilt_euid e = {QUILT_NAT_SYMMETRIC, 1,          0x01020304,
                  0x05060708,          0x090a0b0c, 0x0d0e0f10};
  uint8_t w[QUILT_EUID_WIRE_LEN + 1];
  w[QUILT_EUID_WIRE_LEN] = 0xAA; /* guard */
  quilt_euid_encode(&e, w);
  const uint8_t want[QUILT_EUID_WIRE_LEN] = {
      4, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  assert_memory_equal(w, want, QUILT_EUID_WIRE_LEN);
  assert_int_equal(w[QUILT_EUID_WIRE_LEN], 0xAA);
  quilt_euid back;
  assert_int_equal(quilt_euid_decode(&back, w, QUILT_EUID_WIRE_LEN), 0);
  assert_euid_equal(&e, &back);
  /* Longer input: only the first 20 bytes are read. */
  assert_int_equal(quilt_euid_decode(&back, w, sizeof w), 0);
  assert_euid_equal(&e, &back);
}

static void test_wire_round_trip(void **state) {
  (void)state;
  for (unsigned nat = 0; nat < QUILT_NAT__COUNT; nat++)
    for (unsigned ipmc = 0; ipmc <= 1; ipmc++) {
      quilt_euid e = {(uint8_t)nat, (uint8_t)ipmc,         UINT32_MAX - nat,
                      nat,          ipmc ? UINT32_MAX : 0, 1000u * nat};
      uint8_t w[QUILT_EUID_WIRE_LEN];
      quilt_euid_encode(&e, w);
      quilt_euid back;
      assert_int_equal(quilt_euid_decode(&back, w, sizeof w), 0);
      assert_euid_equal(&e, &back);
    }
}

static void test_wire_errors(void **state) {
  (void)state;
  quilt_euid e = sample(), back;
  uint8_t w[QUILT_EUID_WIRE_LEN];
  quilt_euid_encode(&e, w);
  for (size_t len = 0; len < QUILT_EUID_WIRE_LEN; len++)
    assert_int_equal(quilt_euid_decode(&back, w, len), QUILT_ERR_TRUNCATED);
  assert_int_equal(quilt_euid_decode(&back, NULL, 0), QUILT_ERR_TRUNCATED);

  uint8_t bad[QUILT_EUID_WIRE_LEN];
  memcpy(bad, w, sizeof bad);
  bad[0] = QUILT_NAT__COUNT;
  assert_int_equal(quilt_euid_decode(&back, bad, sizeof bad),
                   QUILT_ERR_MALFORMED);
  bad[0] = 255;
  assert_int_equal(quilt_euid_decode(&back, bad, sizeof bad),
                   QUILT_ERR_MALFORMED);
  memcpy(bad, w, sizeof bad);
  bad[1] = 2;
  assert_int_equal(quilt_euid_decode(&back, bad, sizeof bad),
                   QUILT_ERR_MALFORMED);
  memcpy(bad, w, sizeof bad);
  bad[2] = 0x80;
  assert_int_equal(quilt_euid_decode(&back, bad, sizeof bad),
                   QUILT_ERR_MALFORMED);
  memcpy(bad, w, sizeof bad);
  bad[3] = 1;
  assert_int_equal(quilt_euid_decode(&back, bad, sizeof bad),
                   QUILT_ERR_MALFORMED);
  /* The largest valid NAT class still decodes. */
  memcpy(bad, w, sizeof bad);
  bad[0] = QUILT_NAT__COUNT - 1;
  assert_int_equal(quilt_euid_decode(&back, bad, sizeof bad), 0);
  assert_int_equal(back.nat, QUILT_NAT_UNKNOWN);
}

static void test_number_helpers(void **state) {
  (void)state;
  uint32_t v = 0;
  assert_int_equal(quilt__parse_milli("0.25", 4, &v), 0);
  assert_int_equal(v, 250);
  assert_int_equal(quilt__parse_milli("0.025", 5, &v), 0);
  assert_int_equal(v, 25);
  assert_int_equal(quilt__parse_milli("12", 2, &v), 0);
  assert_int_equal(v, 12000);
  assert_int_equal(quilt__parse_milli("4294967.295", 11, &v), 0);
  assert_int_equal(v, UINT32_MAX);
  assert_int_equal(quilt__parse_milli("4294967.296", 11, &v), QUILT_ERR_LIMIT);
  assert_int_equal(quilt__parse_milli("99999999999", 11, &v), QUILT_ERR_LIMIT);
  assert_int_equal(quilt__parse_milli("0.2505", 6, &v), QUILT_ERR_INVAL);
  assert_int_equal(quilt__parse_milli("1.2.3", 5, &v), QUILT_ERR_SYNTAX);
  assert_int_equal(quilt__parse_milli("", 0, &v), QUILT_ERR_SYNTAX);
  assert_int_equal(quilt__parse_milli("1e3", 3, &v), QUILT_ERR_SYNTAX);
  assert_int_equal(quilt__parse_hex32("0xFfFf", 6, &v), 0);
  assert_int_equal(v, 0xffff);
  assert_int_equal(quilt__parse_hex32("0x", 2, &v), QUILT_ERR_SYNTAX);
  assert_int_equal(quilt__parse_hex32("000000001", 9, &v), QUILT_ERR_LIMIT);
  assert_int_equal(quilt__parse_u32("4294967295", 10, &v), 0);
  assert_int_equal(v, UINT32_MAX);
  assert_int_equal(quilt__parse_u32("4294967296", 10, &v), QUILT_ERR_LIMIT);
  assert_int_equal(quilt__parse_u32("+1", 2, &v), QUILT_ERR_SYNTAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nat_names),
      cmocka_unit_test(test_format_canonical),
      cmocka_unit_test(test_format_longest),
      cmocka_unit_test(test_text_round_trip),
      cmocka_unit_test(test_parse_any_order_and_forms),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_wire_layout),
      cmocka_unit_test(test_wire_round_trip),
      cmocka_unit_test(test_wire_errors),
      cmocka_unit_test(test_number_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
