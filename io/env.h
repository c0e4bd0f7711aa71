/*
 * env.h -- environment detection: what a host finds out about where it
 * lives, turned into its EUID (DESIGN.md section 1, step 1).
 *
 * Probes, each bounded in time (the whole detection takes well under a
 * second when the bootstrap server answers, about 1.5 s when it does not):
 *   - interfaces (getifaddrs) and the default gateway (/proc/net/route);
 *   - IP multicast: the interface must be multicast-capable, and a
 *     TTL-1 probe sent to a scoped group must come back through the stack;
 *     the IPMC domain is a hash of (subnet, prefix, gateway), equal for
 *     hosts on one LAN, different across a router;
 *   - STUN (RFC 5389) Binding requests to the bootstrap server's STUN port:
 *     the mapped address and the RTT (median of three);
 *   - NAT behaviour (RFC 5780 section 4.3, mapping): a second Binding
 *     request to the server's alternate STUN port; the same mapped address
 *     means endpoint-independent mapping, another means symmetric;
 *   - filtering (RFC 5780 section 4.4) and inbound reachability: a request
 *     asking the server to answer from its other port (CHANGE-REQUEST,
 *     change port); an answer from a port the host never sent to means
 *     unsolicited inbound UDP gets in;
 *   - bandwidth: a train of 16 full-size requests, and the dispersion of
 *     their answers (packet-train estimate of the bottleneck rate; rough).
 */
#ifndef QUILT_IO_ENV_H
#define QUILT_IO_ENV_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "euid.h"

#define QUILT_ENV_MAX_IFACES 32

typedef struct quilt_env_iface {
  char name[IF_NAMESIZE];
  uint32_t ip;     /* host order */
  uint8_t prefix;  /* netmask length */
  int up, multicast, loopback;
} quilt_env_iface;

typedef struct quilt_env {
  quilt_env_iface ifaces[QUILT_ENV_MAX_IFACES];
  size_t nifaces;
  int chosen;          /* index of the interface used, -1 = none */
  uint32_t gateway;    /* default gateway on it, 0 = none */
  int ipmc;            /* multicast probe came back */
  uint32_t ipmc_domain;
  int stun_ok;         /* the bootstrap server's STUN port answered */
  quilt_addr mapped;   /* as the server saw us */
  int mapping_ok;      /* the alternate port answered too */
  int filtering_ok;    /* the change-port request was answered */
  int inbound_open;
  unsigned nat;        /* quilt_nat */
  double rtt_ms;
  double bandwidth_mbps; /* 0 = not measured */
  quilt_euid euid;
} quilt_env;

typedef struct quilt_env_options {
  const char *bind_ip; /* use the interface with this address */
  const char *iface;   /* or this interface; default: loopback (probing a
                          network interface is asked for, never assumed) */
  quilt_addr stun;     /* the bootstrap server's STUN port; ip 0 = none */
  int no_ipmc;         /* report no multicast (an override for tests) */
  uint32_t region;
} quilt_env_options;

/* Runs the probes and fills *e.  Returns 0, or QUILT_ERR_NOT_FOUND when no
 * usable interface (or the asked one) exists, with err set. */
int quilt_env_detect(quilt_env *e, const quilt_env_options *o, char *err,
                     size_t errlen);

/* The STUN ports of a bootstrap server listening on `quilt`: port + 1, and
 * the alternate port + 2. */
quilt_addr quilt_env_stun_addr(const quilt_addr *quilt, int alternate);

#endif /* QUILT_IO_ENV_H */
