/*
 * cmd_env.c -- `quilt env`: detect and print this host's environment and
 * its EUID (io/env.h says how each field is measured).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "env.h"
#include "euid.h"
#include "io.h"
#include "quilt.h"

static const char *ip_str(uint32_t ip, char *buf) {
  struct in_addr in = {htonl(ip)};
  inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
  return buf;
}

static const char *nat_json(unsigned nat) {
  const char *n = quilt_nat_name(nat);
  return n ? n : "unknown";
}

int quilt_cmd_env(int argc, char **argv) {
  static const char *cmd = "quilt env";
  const char *bootstrap = NULL;
  quilt_env_options o = {0};
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0) {
      printf("usage: quilt env [--bootstrap ADDR:PORT] [--bind IP | --iface "
             "NAME] [--no-ipmc] [--json]\n\n"
             "Detects this host's environment and prints its EUID: whether "
             "IP multicast\nworks and in which domain, the NAT in front of "
             "it (RFC 5780 tests against\nthe bootstrap server's STUN ports, "
             "ADDR:PORT+1 and +2), the RTT and a\nbandwidth estimate to the "
             "server, and the interfaces.\n");
      return QUILT_EXIT_OK;
    }
    int has_value = strcmp(a, "--bootstrap") == 0 || strcmp(a, "--bind") == 0 ||
                    strcmp(a, "--iface") == 0;
    if (has_value && i + 1 >= argc) {
      fprintf(stderr, "%s: %s needs a value (see %s --help)\n", cmd, a, cmd);
      return QUILT_EXIT_USAGE;
    }
    if (strcmp(a, "--bootstrap") == 0)
      bootstrap = argv[++i];
    else if (strcmp(a, "--bind") == 0)
      o.bind_ip = argv[++i];
    else if (strcmp(a, "--iface") == 0)
      o.iface = argv[++i];
    else if (strcmp(a, "--no-ipmc") == 0)
      o.no_ipmc = 1;
    else if (strcmp(a, "--json") == 0)
      json = 1;
    else {
      fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", cmd, a,
              cmd);
      return QUILT_EXIT_USAGE;
    }
  }
  if (bootstrap) {
    quilt_addr b;
    if (quilt_io_parse_addr(bootstrap, 0, &b) != 0 || b.port > 65533) {
      fprintf(stderr, "%s: --bootstrap needs ADDR:PORT, e.g. 127.0.0.1:7000\n",
              cmd);
      return QUILT_EXIT_USAGE;
    }
    o.stun = quilt_env_stun_addr(&b, 0);
  }
  quilt_env e;
  char err[256];
  if (quilt_env_detect(&e, &o, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", cmd, err);
    return QUILT_EXIT_FAILURE;
  }
  char text[QUILT_EUID_TEXT_MAX], a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
  char mapped[QUILT_ADDR_STRLEN];
  quilt_euid_format(&e.euid, text, sizeof text);
  if (e.stun_ok)
    quilt_addr_str(&e.mapped, mapped);
  else
    snprintf(mapped, sizeof mapped, "unknown");
  const quilt_env_iface *f = &e.ifaces[e.chosen];
  if (!json) {
    printf("%s\n", text);
    printf("interface %s %s/%u gateway %s, mapped %s, inbound %s\n", f->name,
           ip_str(f->ip, a), f->prefix,
           e.gateway ? ip_str(e.gateway, g) : "none", mapped,
           e.inbound_open ? "open" : "closed or unknown");
    return QUILT_EXIT_OK;
  }
  printf("{\"ipmc\": %s, \"ipmc_domain\": \"%08x\", \"nat\": \"%s\", "
         "\"mapped_address\": \"%s\", \"inbound_open\": %s, \"rtt_ms\": %.3f, "
         "\"bandwidth_mbps\": %.1f, \"euid\": \"%s\", \"interface\": \"%s\", "
         "\"gateway\": \"%s\", \"interfaces\": [",
         e.ipmc ? "true" : "false", e.ipmc_domain, nat_json(e.nat), mapped,
         e.inbound_open ? "true" : "false", e.rtt_ms, e.bandwidth_mbps, text,
         f->name, e.gateway ? ip_str(e.gateway, g) : "");
  for (size_t i = 0; i < e.nifaces; i++) {
    const quilt_env_iface *x = &e.ifaces[i];
    printf("%s{\"name\": \"%s\", \"address\": \"%s/%u\", \"up\": %s, "
           "\"multicast\": %s, \"loopback\": %s}",
           i ? ", " : "", x->name, ip_str(x->ip, a), x->prefix,
           x->up ? "true" : "false", x->multicast ? "true" : "false",
           x->loopback ? "true" : "false");
  }
  printf("]}\n");
  return QUILT_EXIT_OK;
}
