/*
 * rules.c -- the rules language: parse a rules file, match EUIDs against it.
 *
 * Syntax and semantics are in docs/rules.md; in short, one rule a line,
 *
 *     PREDICATE -> PROTOCOL [by FIELD{, FIELD}] [max N]     # comment
 *
 * and the first rule whose predicate holds picks the patch.
 *
 * The parser reads the file one line at a time with a small hand-written
 * lexer and a recursive-descent parser whose recursion is bounded by
 * QUILT_RULES_MAX_DEPTH.  A predicate is compiled to postfix (RPN) nodes in
 * one array owned by quilt_rules; matching runs them on a fixed-size stack,
 * so evaluation is a loop, never a recursion, and costs at most
 * QUILT_RULES_MAX_NODES steps per rule.
 *
 * Numbers never go through floating point: rtt_ms and bw_mbps values are
 * read as thousandths ("0.25" ms = 250 us) and compared with the EUID's
 * integer rtt_us and bw_kbps, so "rtt_ms <= 0.25" means exactly what it
 * says on every platform.
 */
#include "rules.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quilt.h"

/* ---- compiled form ---------------------------------------------------- */

enum node_kind { N_CMP, N_AND, N_OR, N_NOT };

enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

static const char *const op_names[] = {"==", "!=", "<", "<=", ">", ">="};

/* One postfix instruction: a comparison pushes a truth value, an operator
 * pops its operands and pushes the result. */
typedef struct rule_node {
  uint8_t kind;   /* node_kind */
  uint8_t field;  /* quilt_field, for N_CMP */
  uint8_t op;     /* cmp_op, for N_CMP */
  uint32_t value; /* N_CMP: nat, 0/1, domain, region, us or kbit/s */
} rule_node;

typedef struct rule {
  uint32_t first;    /* index of the first node in quilt_rules.nodes */
  uint32_t nnodes;   /* 0 = the predicate '*' */
  uint32_t protocol; /* index into the protocol names */
  uint32_t nkeys;
  uint8_t keys[QUILT_RULES_MAX_KEYS]; /* quilt_field, group-by order */
  uint32_t max_members;               /* 0 = no limit */
} rule;

struct quilt_rules {
  size_t nrules;
  rule rules[QUILT_RULES_MAX];
  rule_node *nodes; /* all rules' predicates, back to back */
  size_t nnodes, nodes_cap;
  size_t nprotocols;
  char protocols[QUILT_RULES_MAX_PROTOCOLS][QUILT_RULES_PROTOCOL_LEN + 1];
};

static const char *const field_names[QUILT_FIELD__COUNT] = {
    "nat", "ipmc", "domain", "region", "rtt_ms", "bw_mbps",
};

static const char default_text[] =
    "# Quilt default rules: first match wins (docs/rules.md).\n"
    "# Hosts where IP multicast works share a patch with their IPMC domain.\n"
    "ipmc == yes -> ipmc by domain\n"
    "# Everyone else: a unicast patch per region, at most 64 hosts each.\n"
    "* -> unicast by region max 64\n";

const char *quilt_rules_default_text(void) { return default_text; }

/* ---- lexer ------------------------------------------------------------ */

enum tok_kind {
  T_END, /* end of line or start of a comment */
  T_WORD,
  T_STAR,
  T_ARROW,
  T_LPAREN,
  T_RPAREN,
  T_COMMA,
  T_OP, /* a comparison operator; tok.op says which */
};

typedef struct tok {
  enum tok_kind kind;
  enum cmp_op op;
  const char *s;
  size_t len;
  unsigned col; /* 1-based */
} tok;

typedef struct parser {
  const char *filename;
  unsigned line;   /* 1-based */
  const char *buf; /* the current line, without its '\n' */
  size_t len;
  size_t pos;
  tok tok;
  unsigned depth;
  /* the rule being parsed: its predicate in postfix */
  rule_node cur[QUILT_RULES_MAX_NODES];
  size_t ncur;
  /* the first error */
  int rc;
  unsigned err_line, err_col;
  char msg[QUILT_RULES_ERR_LEN];
  quilt_rules *r;
} parser;

#if defined(__GNUC__) || defined(__clang__)
#define QUILT__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QUILT__PRINTF(a, b)
#endif

static int fail(parser *p, int rc, unsigned col, const char *fmt, ...)
    QUILT__PRINTF(4, 5);

/* Records the first error and returns its code, so that callers can write
 * `return fail(...)`. */
static int fail(parser *p, int rc, unsigned col, const char *fmt, ...) {
  assert(rc < 0);
  if (p->rc == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
    p->rc = rc;
    p->err_line = p->line;
    p->err_col = col;
  }
  return p->rc;
}

/* A token as it appears in a message: long words are cut so that the whole
 * message still fits in one QUILT_RULES_ERR_LEN line. */
typedef struct quoted {
  char s[40];
} quoted;

static quoted quote(const tok *t) {
  quoted q;
  if (t->kind == T_END) {
    snprintf(q.s, sizeof q.s, "end of line");
  } else if (t->len > 32) {
    snprintf(q.s, sizeof q.s, "'%.29s...'", t->s);
  } else {
    snprintf(q.s, sizeof q.s, "'%.*s'", (int)t->len, t->s);
  }
  return q;
}

static int is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static int tok_is(const tok *t, const char *word) {
  return t->kind == T_WORD && strlen(word) == t->len &&
         memcmp(word, t->s, t->len) == 0;
}

/* Reads the next token into p->tok.  Words are runs of letters, digits,
 * '_', '.' and '-' -- wide enough for field names, NAT classes
 * ("port-restricted"), hex and decimal numbers, protocol names -- except
 * that "->" always ends a word, so "yes->ipmc" reads as three tokens. */
static int next(parser *p) {
  const char *b = p->buf;
  while (p->pos < p->len &&
         (b[p->pos] == ' ' || b[p->pos] == '\t' || b[p->pos] == '\r'))
    p->pos++;
  tok *t = &p->tok;
  t->s = b + p->pos;
  t->len = 0;
  t->col = (unsigned)p->pos + 1;
  if (p->pos == p->len || b[p->pos] == '#') {
    t->kind = T_END;
    return 0;
  }
  char c = b[p->pos];
  char c2 = p->pos + 1 < p->len ? b[p->pos + 1] : '\0';
  size_t n = 1;
  switch (c) {
  case '*':
    t->kind = T_STAR;
    break;
  case '(':
    t->kind = T_LPAREN;
    break;
  case ')':
    t->kind = T_RPAREN;
    break;
  case ',':
    t->kind = T_COMMA;
    break;
  case '=':
    if (c2 != '=')
      return fail(p, QUILT_ERR_SYNTAX, t->col,
                  "unexpected '=' (comparisons use '==')");
    t->kind = T_OP, t->op = OP_EQ, n = 2;
    break;
  case '!':
    if (c2 != '=')
      return fail(p, QUILT_ERR_SYNTAX, t->col,
                  "unexpected '!' (did you mean '!=' or 'not'?)");
    t->kind = T_OP, t->op = OP_NE, n = 2;
    break;
  case '<':
    t->kind = T_OP, t->op = c2 == '=' ? OP_LE : OP_LT, n = c2 == '=' ? 2 : 1;
    break;
  case '>':
    t->kind = T_OP, t->op = c2 == '=' ? OP_GE : OP_GT, n = c2 == '=' ? 2 : 1;
    break;
  default:
    if (c == '-' && c2 == '>') {
      t->kind = T_ARROW, n = 2;
      break;
    }
    if (!is_word_char(c)) {
      unsigned char u = (unsigned char)c;
      if (u >= 0x80)
        return fail(p, QUILT_ERR_SYNTAX, t->col, "unexpected byte 0x%02x", u);
      return fail(p, QUILT_ERR_SYNTAX, t->col, "unexpected character '%c'", c);
    }
    t->kind = T_WORD;
    n = 0;
    while (p->pos + n < p->len && is_word_char(b[p->pos + n]) &&
           !(b[p->pos + n] == '-' && p->pos + n + 1 < p->len &&
             b[p->pos + n + 1] == '>'))
      n++;
    assert(n > 0);
    break;
  }
  t->len = n;
  p->pos += n;
  return 0;
}

/* ---- parser ----------------------------------------------------------- */

static int field_lookup(const tok *t) {
  for (int f = 0; f < QUILT_FIELD__COUNT; f++)
    if (tok_is(t, field_names[f]))
      return f;
  return -1;
}

static int emit(parser *p, unsigned col, rule_node n) {
  if (p->ncur == QUILT_RULES_MAX_NODES)
    return fail(p, QUILT_ERR_LIMIT, col,
                "expression too big (limit %d comparisons and operators)",
                QUILT_RULES_MAX_NODES);
  p->cur[p->ncur++] = n;
  return 0;
}

static int emit_op(parser *p, unsigned col, enum node_kind kind) {
  rule_node n = {(uint8_t)kind, 0, 0, 0};
  return emit(p, col, n);
}

/* Reads the value of a comparison on field f from the current token. */
static int parse_value(parser *p, int f, uint32_t *out) {
  const tok *t = &p->tok;
  quoted q = quote(t);
  int rc;
  switch (f) {
  case QUILT_FIELD_NAT: {
    int nat = quilt_nat_parse(t->s, t->len);
    if (nat < 0)
      return fail(p, QUILT_ERR_SYNTAX, t->col, "value %s is not a NAT class",
                  q.s);
    *out = (uint32_t)nat;
    return 0;
  }
  case QUILT_FIELD_IPMC:
    if (tok_is(t, "yes"))
      *out = 1;
    else if (tok_is(t, "no"))
      *out = 0;
    else
      return fail(p, QUILT_ERR_SYNTAX, t->col, "value %s is not 'yes' or 'no'",
                  q.s);
    return 0;
  case QUILT_FIELD_DOMAIN:
    rc = quilt__parse_hex32(t->s, t->len, out);
    if (rc == QUILT_ERR_SYNTAX)
      return fail(p, rc, t->col, "value %s is not a hex domain id", q.s);
    break;
  case QUILT_FIELD_REGION:
    rc = quilt__parse_u32(t->s, t->len, out);
    if (rc == QUILT_ERR_SYNTAX)
      return fail(p, rc, t->col, "value %s is not an unsigned integer", q.s);
    break;
  default:
    assert(f == QUILT_FIELD_RTT_MS || f == QUILT_FIELD_BW_MBPS);
    rc = quilt__parse_milli(t->s, t->len, out);
    if (rc == QUILT_ERR_SYNTAX)
      return fail(p, rc, t->col, "value %s is not a number", q.s);
    if (rc == QUILT_ERR_INVAL)
      return fail(p, QUILT_ERR_SYNTAX, t->col,
                  "value %s has more than 3 decimals", q.s);
    break;
  }
  if (rc == QUILT_ERR_LIMIT)
    return fail(p, QUILT_ERR_SYNTAX, t->col, "number out of range");
  assert(rc == 0);
  return 0;
}

/* comparison = FIELD OP VALUE */
static int parse_cmp(parser *p) {
  tok *t = &p->tok;
  if (t->kind == T_STAR)
    return fail(p, QUILT_ERR_SYNTAX, t->col, "'*' must be the whole predicate");
  if (t->kind != T_WORD || tok_is(t, "and") || tok_is(t, "or")) {
    quoted q = quote(t);
    return fail(p, QUILT_ERR_SYNTAX, t->col,
                "expected a comparison, 'not' or '(' before %s", q.s);
  }
  int f = field_lookup(t);
  if (f < 0) {
    quoted q = quote(t);
    return fail(p, QUILT_ERR_SYNTAX, t->col, "unknown field %s", q.s);
  }
  unsigned field_col = t->col;
  if (next(p) < 0)
    return p->rc;
  if (t->kind != T_OP)
    return fail(p, QUILT_ERR_SYNTAX, t->col,
                "expected a comparison operator after '%s'", field_names[f]);
  enum cmp_op op = t->op;
  /* NAT classes and yes/no have no order worth writing rules about (is a
   * symmetric NAT "more" than a restricted one?), so only equality. */
  if ((f == QUILT_FIELD_NAT || f == QUILT_FIELD_IPMC) && op != OP_EQ &&
      op != OP_NE)
    return fail(p, QUILT_ERR_SYNTAX, t->col,
                "operator '%s' cannot compare %s (only == and !=)",
                op_names[op], field_names[f]);
  if (next(p) < 0)
    return p->rc;
  if (t->kind != T_WORD)
    return fail(p, QUILT_ERR_SYNTAX, t->col, "expected a value after '%s'",
                op_names[op]);
  uint32_t v;
  if (parse_value(p, f, &v) < 0)
    return p->rc;
  rule_node n = {N_CMP, (uint8_t)f, (uint8_t)op, v};
  if (emit(p, field_col, n) < 0)
    return p->rc;
  return next(p);
}

static int parse_or(parser *p);

/* unary = "not" unary | "(" or ")" | comparison */
static int parse_unary(parser *p) {
  tok *t = &p->tok;
  int is_not = tok_is(t, "not");
  if (!is_not && t->kind != T_LPAREN)
    return parse_cmp(p);
  unsigned col = t->col;
  if (p->depth == QUILT_RULES_MAX_DEPTH)
    return fail(p, QUILT_ERR_LIMIT, col,
                "expression nested too deeply (limit %d)",
                QUILT_RULES_MAX_DEPTH);
  p->depth++;
  if (next(p) < 0)
    return p->rc;
  if (is_not) {
    if (parse_unary(p) < 0 || emit_op(p, col, N_NOT) < 0)
      return p->rc;
  } else {
    if (parse_or(p) < 0)
      return p->rc;
    if (t->kind != T_RPAREN) {
      quoted q = quote(t);
      return fail(p, QUILT_ERR_SYNTAX, t->col, "expected ')' before %s", q.s);
    }
    if (next(p) < 0)
      return p->rc;
  }
  p->depth--;
  return 0;
}

/* and = unary { "and" unary } */
static int parse_and(parser *p) {
  if (parse_unary(p) < 0)
    return p->rc;
  while (tok_is(&p->tok, "and")) {
    unsigned col = p->tok.col;
    if (next(p) < 0 || parse_unary(p) < 0 || emit_op(p, col, N_AND) < 0)
      return p->rc;
  }
  return 0;
}

/* or = and { "or" and } */
static int parse_or(parser *p) {
  if (parse_and(p) < 0)
    return p->rc;
  while (tok_is(&p->tok, "or")) {
    unsigned col = p->tok.col;
    if (next(p) < 0 || parse_and(p) < 0 || emit_op(p, col, N_OR) < 0)
      return p->rc;
  }
  return 0;
}

static int protocol_lookup(const quilt_rules *r, const tok *t) {
  for (size_t i = 0; i < r->nprotocols; i++)
    if (tok_is(t, r->protocols[i]))
      return (int)i;
  return -1;
}

static int unknown_protocol(parser *p) {
  /* The message lists the known names, cut to fit one error line. */
  char known[QUILT_RULES_ERR_LEN];
  size_t n = 0;
  known[0] = '\0';
  for (size_t i = 0; i < p->r->nprotocols && n < sizeof known; i++) {
    int w = snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "",
                     p->r->protocols[i]);
    if (w < 0)
      break;
    n += (size_t)w;
  }
  quoted q = quote(&p->tok);
  return fail(p, QUILT_ERR_SYNTAX, p->tok.col,
              "unknown protocol %s (known: %s)", q.s,
              p->r->nprotocols ? known : "none");
}

static int append_rule(parser *p, rule *ru) {
  quilt_rules *r = p->r;
  if (r->nnodes + p->ncur > r->nodes_cap) {
    /* At most QUILT_RULES_MAX * QUILT_RULES_MAX_NODES nodes in all. */
    size_t cap = r->nodes_cap ? r->nodes_cap * 2 : 64;
    while (cap < r->nnodes + p->ncur)
      cap *= 2;
    rule_node *nn = realloc(r->nodes, cap * sizeof *nn);
    if (!nn)
      return fail(p, QUILT_ERR_NOMEM, 1, "out of memory");
    r->nodes = nn;
    r->nodes_cap = cap;
  }
  if (p->ncur)
    memcpy(r->nodes + r->nnodes, p->cur, p->ncur * sizeof *p->cur);
  ru->first = (uint32_t)r->nnodes;
  ru->nnodes = (uint32_t)p->ncur;
  r->nnodes += p->ncur;
  r->rules[r->nrules++] = *ru;
  return 0;
}

/* rule = ( "*" | or ) "->" PROTOCOL [ "by" FIELD { "," FIELD } ]
 *        [ "max" N ] */
static int parse_rule(parser *p) {
  tok *t = &p->tok;
  quoted q;
  if (next(p) < 0)
    return p->rc;
  if (t->kind == T_END)
    return 0; /* blank or comment-only line */
  if (p->r->nrules == QUILT_RULES_MAX)
    return fail(p, QUILT_ERR_LIMIT, t->col, "too many rules (limit %d)",
                QUILT_RULES_MAX);
  rule ru;
  memset(&ru, 0, sizeof ru);
  p->ncur = 0;
  p->depth = 0;
  if (t->kind == T_STAR) {
    if (next(p) < 0)
      return p->rc;
  } else if (t->kind == T_ARROW) {
    return fail(p, QUILT_ERR_SYNTAX, t->col,
                "expected a predicate or '*' before '->'");
  } else if (parse_or(p) < 0) {
    return p->rc;
  }
  assert(p->depth == 0);
  if (t->kind == T_RPAREN)
    return fail(p, QUILT_ERR_SYNTAX, t->col, "unmatched ')'");
  if (t->kind != T_ARROW)
    return fail(p, QUILT_ERR_SYNTAX, t->col, "expected '->'");
  if (next(p) < 0)
    return p->rc;
  if (t->kind != T_WORD)
    return fail(p, QUILT_ERR_SYNTAX, t->col,
                "expected a protocol name after '->'");
  int proto = protocol_lookup(p->r, t);
  if (proto < 0)
    return unknown_protocol(p);
  ru.protocol = (uint32_t)proto;
  if (next(p) < 0)
    return p->rc;
  const char *expect = "expected 'by', 'max' or end of line";
  if (tok_is(t, "by")) {
    const char *after = "by";
    for (;;) {
      if (next(p) < 0)
        return p->rc;
      if (t->kind != T_WORD)
        return fail(p, QUILT_ERR_SYNTAX, t->col,
                    "expected a field name after '%s'", after);
      int f = field_lookup(t);
      q = quote(t);
      if (f < 0)
        return fail(p, QUILT_ERR_SYNTAX, t->col, "unknown field %s", q.s);
      /* A patch is a set of hosts with equal keys; measured values differ
       * between any two hosts, so grouping by them would put every host in
       * a patch of its own.  Compare them in the predicate instead. */
      if (f == QUILT_FIELD_RTT_MS || f == QUILT_FIELD_BW_MBPS)
        return fail(p, QUILT_ERR_SYNTAX, t->col,
                    "cannot group by a measured value (%s)", q.s);
      for (uint32_t k = 0; k < ru.nkeys; k++)
        if (ru.keys[k] == f)
          return fail(p, QUILT_ERR_SYNTAX, t->col,
                      "duplicate group-by field %s", q.s);
      /* Four groupable fields, each at most once. */
      assert(ru.nkeys < QUILT_RULES_MAX_KEYS);
      ru.keys[ru.nkeys++] = (uint8_t)f;
      if (next(p) < 0)
        return p->rc;
      if (t->kind != T_COMMA)
        break;
      after = ",";
    }
    expect = "expected ',', 'max' or end of line";
  }
  if (tok_is(t, "max")) {
    if (next(p) < 0)
      return p->rc;
    q = quote(t);
    uint32_t n;
    int rc = t->kind == T_WORD ? quilt__parse_u32(t->s, t->len, &n)
                               : QUILT_ERR_SYNTAX;
    if (rc == QUILT_ERR_SYNTAX)
      return fail(p, QUILT_ERR_SYNTAX, t->col,
                  "expected a number after 'max', not %s", q.s);
    if (rc < 0 || n < 1 || n > QUILT_RULES_MAX_MEMBERS)
      return fail(p, QUILT_ERR_SYNTAX, t->col,
                  "number out of range (max is 1 to %d)",
                  QUILT_RULES_MAX_MEMBERS);
    ru.max_members = n;
    if (next(p) < 0)
      return p->rc;
    expect = "expected end of line";
  }
  if (t->kind != T_END) {
    q = quote(t);
    return fail(p, QUILT_ERR_SYNTAX, t->col, "%s, not %s", expect, q.s);
  }
  return append_rule(p, &ru);
}

/* Checks the bytes of one line before any token is read: the line length,
 * the file size, and characters a person cannot see in an editor. */
static int check_line(parser *p, size_t offset) {
  for (size_t i = 0; i < p->len; i++) {
    unsigned col = (unsigned)i + 1;
    if (i == QUILT_RULES_LINE_MAX)
      return fail(p, QUILT_ERR_LIMIT, col, "line too long (limit %d bytes)",
                  QUILT_RULES_LINE_MAX);
    if (offset + i == QUILT_RULES_MAX_TEXT)
      return fail(p, QUILT_ERR_LIMIT, col, "file too big (limit %u bytes)",
                  (unsigned)QUILT_RULES_MAX_TEXT);
    unsigned char c = (unsigned char)p->buf[i];
    if (c == 0)
      return fail(p, QUILT_ERR_SYNTAX, col, "NUL byte not allowed");
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
      return fail(p, QUILT_ERR_SYNTAX, col,
                  "control character 0x%02x not allowed", c);
  }
  return 0;
}

static int check_protocols(const char *const *protocols, size_t n) {
  if (n > QUILT_RULES_MAX_PROTOCOLS || (n && !protocols))
    return -1;
  for (size_t i = 0; i < n; i++) {
    const char *s = protocols[i];
    if (!s)
      return -1;
    size_t len = strnlen(s, QUILT_RULES_PROTOCOL_LEN + 1);
    if (len == 0 || len > QUILT_RULES_PROTOCOL_LEN || s[0] == '-')
      return -1;
    for (size_t j = 0; j < len; j++)
      if (!is_word_char(s[j]) || s[j] == '.')
        return -1;
  }
  return 0;
}

int quilt_rules_parse(quilt_rules **out, const char *filename, const char *text,
                      size_t len, const char *const *protocols,
                      size_t nprotocols, char *err, size_t errlen) {
  assert(out);
  *out = NULL;
  if (err && errlen)
    err[0] = '\0';
  if (!filename)
    filename = "<rules>";
  if (!text)
    len = 0;
  if (check_protocols(protocols, nprotocols) < 0) {
    if (err && errlen)
      snprintf(err, errlen,
               "quilt_rules_parse: invalid protocol name list (caller bug)");
    return QUILT_ERR_INVAL;
  }
  parser *p = calloc(1, sizeof *p); /* ~1.5 KiB: keep it off the stack */
  quilt_rules *r = calloc(1, sizeof *r);
  if (!p || !r) {
    free(p);
    free(r);
    if (err && errlen)
      snprintf(err, errlen, "%s:1:1: out of memory", filename);
    return QUILT_ERR_NOMEM;
  }
  r->nprotocols = nprotocols;
  for (size_t i = 0; i < nprotocols; i++)
    memcpy(r->protocols[i], protocols[i], strlen(protocols[i]) + 1);
  p->r = r;
  p->filename = filename;

  size_t start = 0;
  unsigned line = 1;
  while (start < len && p->rc == 0) {
    const char *nl = memchr(text + start, '\n', len - start);
    size_t end = nl ? (size_t)(nl - text) : len;
    p->line = line;
    p->buf = text + start;
    p->len = end - start;
    p->pos = 0;
    if (check_line(p, start) == 0)
      parse_rule(p);
    if (!nl)
      break;
    /* The '\n' itself is a byte of the file too. */
    if (end == QUILT_RULES_MAX_TEXT && p->rc == 0)
      fail(p, QUILT_ERR_LIMIT, (unsigned)p->len + 1,
           "file too big (limit %u bytes)", (unsigned)QUILT_RULES_MAX_TEXT);
    start = end + 1;
    line++;
  }
  if (p->rc == 0 && r->nrules == 0) {
    p->line = 1;
    fail(p, QUILT_ERR_SYNTAX, 1, "no rules");
  }
  int rc = p->rc;
  if (rc < 0) {
    if (err && errlen)
      snprintf(err, errlen, "%s:%u:%u: %s", filename, p->err_line, p->err_col,
               p->msg);
    quilt_rules_del(r);
  } else {
    *out = r;
  }
  free(p);
  return rc;
}

void quilt_rules_del(quilt_rules *r) {
  if (!r)
    return;
  free(r->nodes);
  free(r);
}

size_t quilt_rules_count(const quilt_rules *r) {
  assert(r);
  return r->nrules;
}

/* ---- matching --------------------------------------------------------- */

static uint32_t field_value(const quilt_euid *e, unsigned f) {
  switch (f) {
  case QUILT_FIELD_NAT:
    return e->nat;
  case QUILT_FIELD_IPMC:
    return e->ipmc ? 1 : 0;
  case QUILT_FIELD_DOMAIN:
    return e->domain;
  case QUILT_FIELD_REGION:
    return e->region;
  case QUILT_FIELD_RTT_MS:
    return e->rtt_us;
  case QUILT_FIELD_BW_MBPS:
    return e->bw_kbps;
  }
  assert(0 && "bad field");
  return 0;
}

static int compare(uint32_t a, enum cmp_op op, uint32_t b) {
  switch (op) {
  case OP_EQ:
    return a == b;
  case OP_NE:
    return a != b;
  case OP_LT:
    return a < b;
  case OP_LE:
    return a <= b;
  case OP_GT:
    return a > b;
  case OP_GE:
    return a >= b;
  }
  assert(0 && "bad operator");
  return 0;
}

/* Runs a rule's postfix program.  The stack never holds more values than
 * the program has nodes, which the parser bounds. */
static int eval(const quilt_rules *r, const rule *ru, const quilt_euid *e) {
  if (ru->nnodes == 0)
    return 1; /* '*' */
  assert(ru->nnodes <= QUILT_RULES_MAX_NODES);
  uint8_t stack[QUILT_RULES_MAX_NODES];
  size_t sp = 0;
  const rule_node *n = r->nodes + ru->first;
  for (uint32_t i = 0; i < ru->nnodes; i++, n++) {
    switch ((enum node_kind)n->kind) {
    case N_CMP:
      assert(sp < QUILT_RULES_MAX_NODES);
      stack[sp++] = (uint8_t)compare(field_value(e, n->field),
                                     (enum cmp_op)n->op, n->value);
      break;
    case N_NOT:
      assert(sp >= 1);
      stack[sp - 1] = !stack[sp - 1];
      break;
    case N_AND:
      assert(sp >= 2);
      stack[sp - 2] = stack[sp - 2] && stack[sp - 1];
      sp--;
      break;
    case N_OR:
      assert(sp >= 2);
      stack[sp - 2] = stack[sp - 2] || stack[sp - 1];
      sp--;
      break;
    }
  }
  assert(sp == 1);
  return stack[0];
}

int quilt_rules_match(const quilt_rules *r, const quilt_euid *e,
                      quilt_rule_match *m) {
  assert(r && e && m);
  for (size_t i = 0; i < r->nrules; i++) {
    const rule *ru = &r->rules[i];
    if (!eval(r, ru, e))
      continue;
    memset(m, 0, sizeof *m);
    m->rule = (unsigned)i;
    m->protocol = ru->protocol;
    m->nkeys = ru->nkeys;
    for (uint32_t k = 0; k < ru->nkeys; k++)
      m->keys[k] = field_value(e, ru->keys[k]);
    m->max_members = ru->max_members;
    return 0;
  }
  return QUILT_ERR_NOT_FOUND;
}

char *quilt_rules_describe(const quilt_rules *r, unsigned rule_index, char *buf,
                           size_t size) {
  assert(r && buf && size > 0);
  if (rule_index >= r->nrules) {
    snprintf(buf, size, "(no rule %u)", rule_index);
    return buf;
  }
  const rule *ru = &r->rules[rule_index];
  size_t n = 0;
  int w = snprintf(buf, size, "%s", r->protocols[ru->protocol]);
  for (uint32_t k = 0; k < ru->nkeys && w >= 0; k++) {
    n += (size_t)w;
    if (n >= size)
      return buf;
    w = snprintf(buf + n, size - n, "%s%s", k ? ", " : " by ",
                 field_names[ru->keys[k]]);
  }
  if (ru->max_members && w >= 0) {
    n += (size_t)w;
    if (n >= size)
      return buf;
    snprintf(buf + n, size - n, " max %u", (unsigned)ru->max_members);
  }
  return buf;
}
