/*
 * cli.h -- shared pieces of the quilt program's subcommands.
 *
 * Exit status, as DESIGN.md section 7 says: 0 success, 1 runtime failure,
 * 2 usage error (bad flag, bad input file).
 */
#ifndef QUILT_CLI_H
#define QUILT_CLI_H

#include <stddef.h>
#include <stdint.h>

#define QUILT_EXIT_OK 0
#define QUILT_EXIT_FAILURE 1
#define QUILT_EXIT_USAGE 2

int quilt_cmd_sim(int argc, char **argv);
int quilt_cmd_bootstrap(int argc, char **argv);
int quilt_cmd_sub(int argc, char **argv);
int quilt_cmd_pub(int argc, char **argv);
int quilt_cmd_env(int argc, char **argv);
int quilt_cmd_demo(int argc, char **argv);

/* Parses a whole decimal integer in [min, max]; prints a one-line error
 * naming the command and flag and returns -1 when it is not one. */
int cli_parse_u64(const char *cmd, const char *flag, const char *s,
                  uint64_t min, uint64_t max, uint64_t *out);
/* Parses a decimal number in [min, max). */
int cli_parse_double(const char *cmd, const char *flag, const char *s,
                     double min, double max, double *out);
/* Reads a whole file (at most max bytes).  Returns a malloc'd buffer with
 * a NUL after the data and sets *len, or NULL after printing
 * "cmd: PATH: reason". */
char *cli_read_file(const char *cmd, const char *path, size_t max,
                    size_t *len);
/* The folder of the topologies and matrices: $QUILT_DATA_DIR, or the one
 * this build was made from. */
const char *cli_data_dir(void);

#endif /* QUILT_CLI_H */
