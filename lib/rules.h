/*
 * rules.h -- map an EUID to a patch: an ordered list of rules, first match
 * wins (DESIGN.md section 1, step 3; syntax in docs/rules.md).
 *
 * A rules file has one rule per line:
 *
 *     # comment
 *     ipmc == yes                      -> ipmc by domain
 *     nat == none and bw_mbps >= 100   -> unicast by region max 64
 *     *                                -> unicast by region
 *
 * A rule is a predicate over EUID fields, a protocol name, optional
 * group-by fields (the patch key) and an optional patch size limit.
 */
#ifndef QUILT_RULES_H
#define QUILT_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "euid.h"

#define QUILT_RULES_MAX 256          /* rules in one file */
#define QUILT_RULES_MAX_KEYS 4       /* group-by fields in one rule */
#define QUILT_RULES_MAX_TEXT (1u << 20) /* bytes in one rules file */
#define QUILT_RULES_ERR_LEN 256      /* size of an error message buffer */
#define QUILT_RULES_LINE_MAX 4096    /* bytes in one line, without '\n' */
#define QUILT_RULES_MAX_DEPTH 32     /* nesting of '(' and 'not' */
#define QUILT_RULES_MAX_NODES 128    /* comparisons + operators, one rule */
#define QUILT_RULES_MAX_MEMBERS 1000000 /* largest N in "max N" */
#define QUILT_RULES_MAX_PROTOCOLS 64 /* names given to quilt_rules_parse */
#define QUILT_RULES_PROTOCOL_LEN 32  /* bytes in one protocol name */

/* EUID fields a rule can test or group by. */
typedef enum quilt_field {
  QUILT_FIELD_NAT = 0,
  QUILT_FIELD_IPMC,
  QUILT_FIELD_DOMAIN,
  QUILT_FIELD_REGION,
  QUILT_FIELD_RTT_MS,
  QUILT_FIELD_BW_MBPS,
  QUILT_FIELD__COUNT
} quilt_field;

typedef struct quilt_rules quilt_rules;

/* The outcome of matching one EUID. */
typedef struct quilt_rule_match {
  unsigned rule;        /* index of the rule that matched, from 0 */
  unsigned protocol;    /* index into the protocol names given to parse */
  unsigned nkeys;       /* number of group-by fields */
  uint32_t keys[QUILT_RULES_MAX_KEYS]; /* their values, in rule order */
  uint32_t max_members; /* patch size limit, 0 = none */
} quilt_rule_match;

/* Parses a rules file held in text[0..len).  protocols[0..nprotocols) are
 * the protocol names a rule may use; a rule naming another is an error.
 * On success returns 0 and a new object in *out (free with quilt_rules_del).
 * On failure returns QUILT_ERR_SYNTAX (or QUILT_ERR_LIMIT, QUILT_ERR_NOMEM)
 * and writes one line "FILE:LINE:COL: what is wrong" into err (size
 * errlen, always NUL-terminated); filename is used only in that message.
 * A file with no rule is an error.
 *
 * Lines and columns count from 1; a column is a byte offset (a tab is one
 * column).  Protocol names are matched byte for byte (case-sensitive) and
 * copied, so the caller's array need not outlive the call.  At most
 * QUILT_RULES_MAX_PROTOCOLS names, each 1 to QUILT_RULES_PROTOCOL_LEN bytes
 * of letters, digits, '_' or '-' (not first); any other list is a caller
 * bug and returns QUILT_ERR_INVAL with a message without a position.
 * err may be NULL (errlen 0).  Pure: no I/O; may be called from anywhere. */
int quilt_rules_parse(quilt_rules **out, const char *filename,
                      const char *text, size_t len,
                      const char *const *protocols, size_t nprotocols,
                      char *err, size_t errlen);

void quilt_rules_del(quilt_rules *r);

/* Number of rules. */
size_t quilt_rules_count(const quilt_rules *r);

/* Evaluates the rules in order against e; the first whose predicate holds
 * fills *m and 0 is returned.  QUILT_ERR_NOT_FOUND when none matches. */
int quilt_rules_match(const quilt_rules *r, const quilt_euid *e,
                      quilt_rule_match *m);

/* Writes a one-line description of a rule ("ipmc by domain") for logs and
 * tables; returns buf. */
char *quilt_rules_describe(const quilt_rules *r, unsigned rule, char *buf,
                           size_t size);

/* The built-in default rules (also installed as data/default.rules). */
const char *quilt_rules_default_text(void);

#endif /* QUILT_RULES_H */
