/*
 * main.c -- the quilt program: one binary, subcommands in the manner of git
 * and ip (DESIGN.md section 7).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"bootstrap", quilt_cmd_bootstrap, "run the bootstrap server"},
    {"sub", quilt_cmd_sub, "join a group, print each message delivered"},
    {"pub", quilt_cmd_pub, "join a group, publish each line of input"},
    {"env", quilt_cmd_env, "detect and print this host's EUID"},
    {"sim", quilt_cmd_sim, "run a scenario in the deterministic simulator"},
    {"demo", quilt_cmd_demo, "a whole quilt on this machine"},
};

static void usage(FILE *out) {
  fprintf(out, "usage: quilt COMMAND [OPTIONS]  (quilt COMMAND --help)\n\n"
               "commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nquilt %s -- a multicast patchwork: IP multicast where the "
               "network allows it, overlays elsewhere.\n",
          QUILT_VERSION);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "quilt: which command? (see quilt --help)\n");
    return QUILT_EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return QUILT_EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("quilt %s\n", QUILT_VERSION);
    return QUILT_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "quilt: unknown command '%s' (see quilt --help)\n",
          argv[1]);
  return QUILT_EXIT_USAGE;
}
