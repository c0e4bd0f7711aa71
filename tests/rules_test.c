/* rules_test.c -- the rules language: parsing, errors, matching. */
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
#include "rules.h"

static const char *const protos[] = {"ipmc", "unicast", "tree", "mesh"};
enum { P_IPMC, P_UNICAST, P_TREE, P_MESH };
#define NPROTOS (sizeof protos / sizeof protos[0])

static quilt_rules *parse_ok(const char *text) {
  quilt_rules *r = NULL;
  char err[QUILT_RULES_ERR_LEN];
  int rc = quilt_rules_parse(&r, "t.rules", text, strlen(text), protos, NPROTOS,
                             err, sizeof err);
  if (rc != 0)
    fail_msg("unexpected error %d: %s\n--- text:\n%s", rc, err, text);
  assert_non_null(r);
  return r;
}

/* Parses text that must fail with code rc and message want. */
static void parse_err(const char *text, size_t len, int rc, const char *want) {
  quilt_rules *r = (quilt_rules *)1;
  char err[QUILT_RULES_ERR_LEN];
  memset(err, 'x', sizeof err);
  int got = quilt_rules_parse(&r, "t.rules", text, len, protos, NPROTOS, err,
                              sizeof err);
  if (got != rc || strcmp(err, want) != 0)
    fail_msg("text \"%.60s\": got %d \"%s\", want %d \"%s\"", text, got, err,
             rc, want);
  assert_null(r);
  assert_null(strchr(err, '\n')); /* exactly one line */
}

static void err_syntax(const char *text, const char *want) {
  parse_err(text, strlen(text), QUILT_ERR_SYNTAX, want);
}

static quilt_euid euid(unsigned nat, unsigned ipmc, uint32_t domain,
                       uint32_t region, uint32_t rtt_us, uint32_t bw_kbps) {
  quilt_euid e = {(uint8_t)nat, (uint8_t)ipmc, domain, region, rtt_us, bw_kbps};
  return e;
}

/* Index of the rule e matches, or -1. */
static int which(const quilt_rules *r, quilt_euid e) {
  quilt_rule_match m;
  int rc = quilt_rules_match(r, &e, &m);
  if (rc == QUILT_ERR_NOT_FOUND)
    return -1;
  assert_int_equal(rc, 0);
  return (int)m.rule;
}

static void test_default_rules(void **state) {
  (void)state;
  quilt_rules *r = parse_ok(quilt_rules_default_text());
  assert_int_equal(quilt_rules_count(r), 2);

  quilt_rule_match m;
  quilt_euid lan = euid(QUILT_NAT_NONE, 1, 0x1a, 3, 250, 1000000);
  assert_int_equal(quilt_rules_match(r, &lan, &m), 0);
  assert_int_equal(m.rule, 0);
  assert_int_equal(m.protocol, P_IPMC);
  assert_int_equal(m.nkeys, 1);
  assert_int_equal(m.keys[0], 0x1a);
  assert_int_equal(m.max_members, 0);

  quilt_euid home = euid(QUILT_NAT_SYMMETRIC, 0, 0, 7, 40000, 20000);
  assert_int_equal(quilt_rules_match(r, &home, &m), 0);
  assert_int_equal(m.rule, 1);
  assert_int_equal(m.protocol, P_UNICAST);
  assert_int_equal(m.nkeys, 1);
  assert_int_equal(m.keys[0], 7);
  assert_int_equal(m.max_members, 64);

  char buf[64];
  assert_string_equal(quilt_rules_describe(r, 0, buf, sizeof buf),
                      "ipmc by domain");
  assert_string_equal(quilt_rules_describe(r, 1, buf, sizeof buf),
                      "unicast by region max 64");
  assert_string_equal(quilt_rules_describe(r, 2, buf, sizeof buf),
                      "(no rule 2)");
  quilt_rules_del(r);
}

/* data/default.rules is the built-in text, byte for byte. */
static void test_default_file_matches(void **state) {
  (void)state;
  const char *path = QUILT_SOURCE_DIR "/data/default.rules";
  FILE *f = fopen(path, "rb");
  if (!f)
    fail_msg("cannot open %s", path);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  assert_string_equal(buf, quilt_rules_default_text());
}

static void test_first_match_wins(void **state) {
  (void)state;
  quilt_rules *r = parse_ok("region == 1 -> tree\n"
                            "region <= 2 -> mesh\n"
                            "* -> unicast\n"
                            "region == 2 -> ipmc # never reached\n");
  assert_int_equal(quilt_rules_count(r), 4);
  assert_int_equal(which(r, euid(0, 0, 0, 1, 0, 0)), 0);
  assert_int_equal(which(r, euid(0, 0, 0, 2, 0, 0)), 1);
  assert_int_equal(which(r, euid(0, 0, 0, 0, 0, 0)), 1);
  assert_int_equal(which(r, euid(0, 0, 0, 3, 0, 0)), 2);
  quilt_rules_del(r);

  /* Without a catch-all, some EUIDs match nothing. */
  r = parse_ok("nat == none -> tree\n");
  assert_int_equal(which(r, euid(QUILT_NAT_NONE, 0, 0, 0, 0, 0)), 0);
  quilt_rule_match m;
  quilt_euid e = euid(QUILT_NAT_SYMMETRIC, 0, 0, 0, 0, 0);
  assert_int_equal(quilt_rules_match(r, &e, &m), QUILT_ERR_NOT_FOUND);
  quilt_rules_del(r);
}

static void test_group_keys(void **state) {
  (void)state;
  quilt_rules *r = parse_ok("* -> mesh by region, nat, ipmc, domain max 7");
  quilt_rule_match m;
  quilt_euid e = euid(QUILT_NAT_RESTRICTED, 1, 0xabcdef01, 42, 1, 1);
  assert_int_equal(quilt_rules_match(r, &e, &m), 0);
  assert_int_equal(m.protocol, P_MESH);
  assert_int_equal(m.nkeys, 4);
  assert_int_equal(m.keys[0], 42);
  assert_int_equal(m.keys[1], QUILT_NAT_RESTRICTED);
  assert_int_equal(m.keys[2], 1);
  assert_int_equal(m.keys[3], 0xabcdef01);
  assert_int_equal(m.max_members, 7);
  char buf[64];
  assert_string_equal(quilt_rules_describe(r, 0, buf, sizeof buf),
                      "mesh by region, nat, ipmc, domain max 7");
  /* A short buffer is cut, still NUL-terminated. */
  assert_string_equal(quilt_rules_describe(r, 0, buf, 10), "mesh by r");
  quilt_rules_del(r);

  r = parse_ok("*->tree max 1000000\n*->ipmc");
  assert_int_equal(quilt_rules_match(r, &e, &m), 0);
  assert_int_equal(m.nkeys, 0);
  assert_int_equal(m.max_members, 1000000);
  assert_string_equal(quilt_rules_describe(r, 0, buf, sizeof buf),
                      "tree max 1000000");
  assert_string_equal(quilt_rules_describe(r, 1, buf, sizeof buf), "ipmc");
  quilt_rules_del(r);
}

static void test_expressions(void **state) {
  (void)state;
  /* 'and' binds tighter than 'or'; 'not' tighter than both. */
  quilt_rules *r = parse_ok("region == 1 or region == 2 and nat == none -> "
                            "tree\n");
  assert_int_equal(which(r, euid(QUILT_NAT_SYMMETRIC, 0, 0, 1, 0, 0)), 0);
  assert_int_equal(which(r, euid(QUILT_NAT_SYMMETRIC, 0, 0, 2, 0, 0)), -1);
  assert_int_equal(which(r, euid(QUILT_NAT_NONE, 0, 0, 2, 0, 0)), 0);
  quilt_rules_del(r);

  r = parse_ok("(region == 1 or region == 2) and nat == none -> tree\n");
  assert_int_equal(which(r, euid(QUILT_NAT_SYMMETRIC, 0, 0, 1, 0, 0)), -1);
  assert_int_equal(which(r, euid(QUILT_NAT_NONE, 0, 0, 1, 0, 0)), 0);
  quilt_rules_del(r);

  r = parse_ok("not nat == none and not (ipmc == yes) -> tree\n");
  assert_int_equal(which(r, euid(QUILT_NAT_FULL_CONE, 0, 0, 0, 0, 0)), 0);
  assert_int_equal(which(r, euid(QUILT_NAT_FULL_CONE, 1, 0, 0, 0, 0)), -1);
  assert_int_equal(which(r, euid(QUILT_NAT_NONE, 0, 0, 0, 0, 0)), -1);
  quilt_rules_del(r);

  r = parse_ok("not not not nat != unknown -> tree\n");
  assert_int_equal(which(r, euid(QUILT_NAT_UNKNOWN, 0, 0, 0, 0, 0)), 0);
  assert_int_equal(which(r, euid(QUILT_NAT_NONE, 0, 0, 0, 0, 0)), -1);
  quilt_rules_del(r);

  /* Deep but legal nesting: 32 levels. */
  char deep[512] = "";
  for (int i = 0; i < QUILT_RULES_MAX_DEPTH; i++)
    strcat(deep, "(");
  strcat(deep, "region==5");
  for (int i = 0; i < QUILT_RULES_MAX_DEPTH; i++)
    strcat(deep, ")");
  strcat(deep, "->mesh");
  r = parse_ok(deep);
  assert_int_equal(which(r, euid(0, 0, 0, 5, 0, 0)), 0);
  assert_int_equal(which(r, euid(0, 0, 0, 6, 0, 0)), -1);
  quilt_rules_del(r);
}

static void test_comparisons(void **state) {
  (void)state;
  /* rtt_ms and bw_mbps compare on the integer scale: 0.25 ms = 250 us. */
  quilt_rules *r =
      parse_ok("rtt_ms <= 0.25 -> ipmc\n"
               "rtt_ms < 1 and bw_mbps >= 1.5 -> tree\n"
               "bw_mbps > 100 -> mesh\n"
               "domain == 0xAbC or domain == 00000ff -> unicast\n"
               "region != 9 and region >= 4294967295 -> unicast\n");
  assert_int_equal(which(r, euid(0, 0, 0, 0, 250, 0)), 0);
  assert_int_equal(which(r, euid(0, 0, 0, 0, 251, 1500)), 1);
  assert_int_equal(which(r, euid(0, 0, 0, 0, 251, 1499)), -1);
  assert_int_equal(which(r, euid(0, 0, 0, 0, 1000, 1500)), -1);
  assert_int_equal(which(r, euid(0, 0, 0, 0, 1000, 100000)), -1);
  assert_int_equal(which(r, euid(0, 0, 0, 0, 1000, 100001)), 2);
  assert_int_equal(which(r, euid(0, 0, 0xabc, 0, 5000, 0)), 3);
  assert_int_equal(which(r, euid(0, 0, 0xff, 0, 5000, 0)), 3);
  assert_int_equal(which(r, euid(0, 0, 0x100, 0, 5000, 0)), -1);
  assert_int_equal(which(r, euid(0, 0, 0, UINT32_MAX, 5000, 0)), 4);
  quilt_rules_del(r);

  /* ipmc is a boolean: any non-zero struct value counts as yes. */
  r = parse_ok("ipmc != no -> ipmc by ipmc");
  quilt_rule_match m;
  quilt_euid e = euid(0, 1, 0, 0, 0, 0);
  assert_int_equal(quilt_rules_match(r, &e, &m), 0);
  assert_int_equal(m.keys[0], 1);
  quilt_rules_del(r);
}

static void test_lexing_and_layout(void **state) {
  (void)state;
  /* No spaces needed; tabs, CRLF, comments, blank lines are fine. */
  quilt_rules *r = parse_ok("\n# top\n\r\n"
                            "\tnat==port-restricted->tree by region,nat\r\n"
                            "ipmc==yes->ipmc#comment\n"
                            "   # indented comment\n"
                            "*->mesh   \n");
  assert_int_equal(quilt_rules_count(r), 3);
  assert_int_equal(which(r, euid(QUILT_NAT_PORT_RESTRICTED, 1, 0, 0, 0, 0)), 0);
  assert_int_equal(which(r, euid(QUILT_NAT_SYMMETRIC, 1, 0, 0, 0, 0)), 1);
  assert_int_equal(which(r, euid(QUILT_NAT_SYMMETRIC, 0, 0, 0, 0, 0)), 2);
  quilt_rules_del(r);

  /* Bytes above 0x7f are allowed in comments. */
  r = parse_ok("* -> mesh # caf\xc3\xa9\n");
  quilt_rules_del(r);
}

/* Every error message, with its exact line and column. */
static void test_syntax_errors(void **state) {
  (void)state;
  err_syntax("", "t.rules:1:1: no rules");
  err_syntax("# only a comment\n\n", "t.rules:1:1: no rules");
  err_syntax("* -> mesh\nipmc == yes ipmc\n", "t.rules:2:13: expected '->'");
  err_syntax("ipmc == yes", "t.rules:1:12: expected '->'");
  err_syntax("* ipmc", "t.rules:1:3: expected '->'");
  err_syntax("-> ipmc", "t.rules:1:1: expected a predicate or '*' before '->'");
  err_syntax("foo == 1 -> ipmc", "t.rules:1:1: unknown field 'foo'");
  err_syntax("* -> bar",
             "t.rules:1:6: unknown protocol 'bar' (known: ipmc, unicast, "
             "tree, mesh)");
  err_syntax("* -> IPMC",
             "t.rules:1:6: unknown protocol 'IPMC' (known: ipmc, unicast, "
             "tree, mesh)");
  err_syntax("* ->", "t.rules:1:5: expected a protocol name after '->'");
  err_syntax("* -> (", "t.rules:1:6: expected a protocol name after '->'");
  err_syntax("nat == x -> ipmc", "t.rules:1:8: value 'x' is not a NAT class");
  err_syntax("nat == None -> ipmc",
             "t.rules:1:8: value 'None' is not a NAT class");
  err_syntax("ipmc == 1 -> ipmc",
             "t.rules:1:9: value '1' is not 'yes' or 'no'");
  err_syntax("nat < none -> ipmc",
             "t.rules:1:5: operator '<' cannot compare nat (only == and !=)");
  err_syntax("ipmc >= yes -> ipmc",
             "t.rules:1:6: operator '>=' cannot compare ipmc (only == and !=)");
  err_syntax("domain == 1g -> ipmc",
             "t.rules:1:11: value '1g' is not a hex domain id");
  err_syntax("domain == 123456789 -> ipmc",
             "t.rules:1:11: number out of range");
  err_syntax("region == -1 -> ipmc",
             "t.rules:1:11: value '-1' is not an unsigned integer");
  err_syntax("region == 4294967296 -> ipmc",
             "t.rules:1:11: number out of range");
  err_syntax("rtt_ms < 4294967.296 -> ipmc",
             "t.rules:1:10: number out of range");
  err_syntax("rtt_ms < 0.2505 -> ipmc",
             "t.rules:1:10: value '0.2505' has more than 3 decimals");
  err_syntax("bw_mbps > fast -> ipmc",
             "t.rules:1:11: value 'fast' is not a number");
  err_syntax("bw_mbps > .5 -> ipmc",
             "t.rules:1:11: value '.5' is not a number");
  err_syntax("region == -> ipmc", "t.rules:1:11: expected a value after '=='");
  err_syntax("region 3 -> ipmc",
             "t.rules:1:8: expected a comparison operator after 'region'");
  err_syntax("region = 3 -> ipmc",
             "t.rules:1:8: unexpected '=' (comparisons use '==')");
  err_syntax("region ! 3 -> ipmc",
             "t.rules:1:8: unexpected '!' (did you mean '!=' or 'not'?)");
  err_syntax("region == 3 & nat == none -> ipmc",
             "t.rules:1:13: unexpected character '&'");
  err_syntax("region == 3 \xc3\xa9 -> ipmc",
             "t.rules:1:13: unexpected byte 0xc3");
  err_syntax("region == 3 and -> ipmc",
             "t.rules:1:17: expected a comparison, 'not' or '(' before '->'");
  err_syntax("region == 3 and or nat == none -> ipmc",
             "t.rules:1:17: expected a comparison, 'not' or '(' before 'or'");
  err_syntax("not", "t.rules:1:4: expected a comparison, 'not' or '(' before "
                    "end of line");
  err_syntax("* and nat == none -> ipmc", "t.rules:1:3: expected '->'");
  err_syntax("nat == none or * -> ipmc",
             "t.rules:1:16: '*' must be the whole predicate");
  err_syntax("(region == 1 -> ipmc", "t.rules:1:14: expected ')' before '->'");
  err_syntax("region == 1) -> ipmc", "t.rules:1:12: unmatched ')'");
  err_syntax("* -> ipmc by rtt_ms",
             "t.rules:1:14: cannot group by a measured value ('rtt_ms')");
  err_syntax("* -> ipmc by region, bw_mbps",
             "t.rules:1:22: cannot group by a measured value ('bw_mbps')");
  err_syntax("* -> ipmc by colour", "t.rules:1:14: unknown field 'colour'");
  err_syntax("* -> ipmc by region, region",
             "t.rules:1:22: duplicate group-by field 'region'");
  err_syntax("* -> ipmc by", "t.rules:1:13: expected a field name after 'by'");
  err_syntax("* -> ipmc by region,",
             "t.rules:1:21: expected a field name after ','");
  err_syntax("* -> ipmc max 0",
             "t.rules:1:15: number out of range (max is 1 to 1000000)");
  err_syntax("* -> ipmc max 1000001",
             "t.rules:1:15: number out of range (max is 1 to 1000000)");
  err_syntax("* -> ipmc max 99999999999",
             "t.rules:1:15: number out of range (max is 1 to 1000000)");
  err_syntax("* -> ipmc max lots",
             "t.rules:1:15: expected a number after 'max', not 'lots'");
  err_syntax("* -> ipmc max",
             "t.rules:1:14: expected a number after 'max', not end of line");
  err_syntax("* -> ipmc region",
             "t.rules:1:11: expected 'by', 'max' or end of line, not "
             "'region'");
  err_syntax("* -> ipmc by region nat",
             "t.rules:1:21: expected ',', 'max' or end of line, not 'nat'");
  err_syntax("* -> ipmc max 5 by region",
             "t.rules:1:17: expected end of line, not 'by'");
  err_syntax("* -> ipmc\n* -> tree\n\n  * -> ",
             "t.rules:4:8: expected a protocol name after '->'");
  /* Long tokens are cut in messages. */
  err_syntax("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa == 1 -> ipmc",
             "t.rules:1:1: unknown field 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
}

static void test_bad_bytes(void **state) {
  (void)state;
  parse_err("* -> ipmc\n* -> mesh\0 # x\n", 22, QUILT_ERR_SYNTAX,
            "t.rules:2:10: NUL byte not allowed");
  err_syntax("* -> ipmc # a\x01 b\n",
             "t.rules:1:14: control character 0x01 not allowed");
  err_syntax("* -> \x1b[31mipmc\n",
             "t.rules:1:6: control character 0x1b not allowed");
  err_syntax("* -> ipmc\x7f\n",
             "t.rules:1:10: control character 0x7f not allowed");
  err_syntax("* -> ipmc\x0b\n",
             "t.rules:1:10: control character 0x0b not allowed");
}

static void test_limits(void **state) {
  (void)state;
  /* 256 rules are fine; the 257th is an error at its line. */
  size_t cap = 300 * 16;
  char *text = malloc(cap);
  assert_non_null(text);
  text[0] = '\0';
  for (int i = 0; i < QUILT_RULES_MAX; i++)
    strcat(text, "* -> mesh\n");
  quilt_rules *r = parse_ok(text);
  assert_int_equal(quilt_rules_count(r), QUILT_RULES_MAX);
  quilt_rules_del(r);
  strcat(text, "# comments do not count\n  * -> tree\n");
  parse_err(text, strlen(text), QUILT_ERR_LIMIT,
            "t.rules:258:3: too many rules (limit 256)");
  free(text);

  /* A line of 4096 bytes is fine, 4097 is too long. */
  char line[QUILT_RULES_LINE_MAX + 2];
  memset(line, ' ', sizeof line);
  memcpy(line, "* -> mesh #", 11);
  line[QUILT_RULES_LINE_MAX] = '\0';
  r = parse_ok(line);
  quilt_rules_del(r);
  line[QUILT_RULES_LINE_MAX] = 'x';
  line[QUILT_RULES_LINE_MAX + 1] = '\0';
  parse_err(line, strlen(line), QUILT_ERR_LIMIT,
            "t.rules:1:4097: line too long (limit 4096 bytes)");

  /* Nesting: 32 levels are fine (see test_expressions), 33 are not. */
  char deep[512] = "";
  for (int i = 0; i <= QUILT_RULES_MAX_DEPTH; i++)
    strcat(deep, "(");
  strcat(deep, "region==5");
  for (int i = 0; i <= QUILT_RULES_MAX_DEPTH; i++)
    strcat(deep, ")");
  strcat(deep, "->mesh");
  parse_err(deep, strlen(deep), QUILT_ERR_LIMIT,
            "t.rules:1:33: expression nested too deeply (limit 32)");
  memset(deep, 0, sizeof deep);
  for (int i = 0; i <= QUILT_RULES_MAX_DEPTH; i++)
    strcat(deep, "not ");
  strcat(deep, "region==5->mesh");
  parse_err(deep, strlen(deep), QUILT_ERR_LIMIT,
            "t.rules:1:129: expression nested too deeply (limit 32)");

  /* Size: 64 comparisons joined by 63 'or's are 127 nodes, fine; one more
   * comparison is too many. */
  char big[2048] = "region==0";
  for (int i = 1; i < 64; i++)
    strcat(big, " or region==0");
  char ok[2100];
  snprintf(ok, sizeof ok, "%s -> mesh", big);
  r = parse_ok(ok);
  assert_int_equal(which(r, euid(0, 0, 0, 0, 0, 0)), 0);
  assert_int_equal(which(r, euid(0, 0, 0, 1, 0, 0)), -1);
  quilt_rules_del(r);
  snprintf(ok, sizeof ok, "%s or region==1 -> mesh", big);
  /* The 65th comparison is node 128; the 'or' joining it, at column
   * 9 + 63 * 13 + 2 = 830, would be node 129. */
  parse_err(ok, strlen(ok), QUILT_ERR_LIMIT,
            "t.rules:1:830: expression too big (limit 128 comparisons and "
            "operators)");

  /* File size: QUILT_RULES_MAX_TEXT bytes at most. */
  size_t n = QUILT_RULES_MAX_TEXT + 10;
  char *huge = malloc(n);
  assert_non_null(huge);
  for (size_t i = 0; i < n; i++)
    huge[i] = (i % 100 == 99) ? '\n' : ' ';
  memcpy(huge, "* -> mesh", 9);
  /* Byte 1048576 (0-based) sits on line 10486 at column 77. */
  parse_err(huge, n, QUILT_ERR_LIMIT,
            "t.rules:10486:77: file too big (limit 1048576 bytes)");
  /* Exactly the limit is fine. */
  r = NULL;
  char err[QUILT_RULES_ERR_LEN];
  assert_int_equal(quilt_rules_parse(&r, "t.rules", huge, QUILT_RULES_MAX_TEXT,
                                     protos, NPROTOS, err, sizeof err),
                   0);
  quilt_rules_del(r);
  free(huge);
}

static void test_api_edges(void **state) {
  (void)state;
  quilt_rules *r = NULL;
  char err[QUILT_RULES_ERR_LEN];
  /* No error buffer at all. */
  assert_int_equal(
      quilt_rules_parse(&r, "x", "oops", 4, protos, NPROTOS, NULL, 0),
      QUILT_ERR_SYNTAX);
  assert_null(r);
  /* A short buffer is cut and stays NUL-terminated. */
  char small[8];
  assert_int_equal(quilt_rules_parse(&r, "x", "oops", 4, protos, NPROTOS, small,
                                     sizeof small),
                   QUILT_ERR_SYNTAX);
  assert_string_equal(small, "x:1:1: ");
  /* NULL file name. */
  assert_int_equal(
      quilt_rules_parse(&r, NULL, "", 0, protos, NPROTOS, err, sizeof err),
      QUILT_ERR_SYNTAX);
  assert_string_equal(err, "<rules>:1:1: no rules");
  /* No protocols: every rule names an unknown one. */
  assert_int_equal(
      quilt_rules_parse(&r, "x", "* -> a", 6, NULL, 0, err, sizeof err),
      QUILT_ERR_SYNTAX);
  assert_string_equal(err, "x:1:6: unknown protocol 'a' (known: none)");
  /* A bad protocol list is the caller's bug. */
  const char *bad1[] = {"ipmc", "two words"};
  assert_int_equal(
      quilt_rules_parse(&r, "x", "* -> ipmc", 9, bad1, 2, err, sizeof err),
      QUILT_ERR_INVAL);
  assert_null(r);
  const char *bad2[] = {""};
  assert_int_equal(
      quilt_rules_parse(&r, "x", "* -> ipmc", 9, bad2, 1, err, sizeof err),
      QUILT_ERR_INVAL);
  /* Protocol names are copied: the list may go away after parsing. */
  char name[8];
  strcpy(name, "custom");
  const char *list[] = {name};
  assert_int_equal(
      quilt_rules_parse(&r, "x", "* -> custom", 11, list, 1, err, sizeof err),
      0);
  memset(name, 0, sizeof name);
  char buf[32];
  assert_string_equal(quilt_rules_describe(r, 0, buf, sizeof buf), "custom");
  quilt_rules_del(r);
  quilt_rules_del(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_rules),
      cmocka_unit_test(test_default_file_matches),
      cmocka_unit_test(test_first_match_wins),
      cmocka_unit_test(test_group_keys),
      cmocka_unit_test(test_expressions),
      cmocka_unit_test(test_comparisons),
      cmocka_unit_test(test_lexing_and_layout),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_bad_bytes),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_api_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
