/*
 * cmd_demo.c -- `quilt demo`: a whole quilt on this machine.
 *
 * Until the real driver exists this runs the data-centre scenario in the
 * simulator, Quilt against the unicast baseline, with a fixed seed.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int quilt_cmd_demo(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0) {
      printf("usage: quilt demo\n\nRuns the data-centre scenario "
             "(Grid'5000, 1528 hosts) in the simulator:\nQuilt against the "
             "unicast baseline, seed 1.\n");
      return QUILT_EXIT_OK;
    }
    fprintf(stderr, "quilt demo: unknown option '%s' (see quilt demo --help)\n",
            argv[i]);
    return QUILT_EXIT_USAGE;
  }
  char *args[] = {"sim", "datacenter", "--compare", "quilt,unicast",
                  "--seed", "1", NULL};
  return quilt_cmd_sim(6, args);
}
