/*
 * bootstrap.h -- the bootstrap server core, sans I/O (DESIGN.md section 2).
 *
 * Hosts JOIN with their EUID; the rules map it to a patch (created on
 * first use, split when a rule's `max` is reached); the server answers
 * PATCH_INFO with the patch's protocol, multicast address and
 * representatives.  Membership is soft state: a host that misses
 * miss_limit heartbeats in a row is dropped, and a dropped representative
 * is replaced (the backup becomes primary, the best remaining member
 * becomes backup) and the patch is told.  The primaries of all patches form
 * the wide-area overlay; every primary is sent that table (PEERS)
 * when it changes and now and then.  A heartbeat carries the host's EUID,
 * so a restarted server rebuilds its whole state from the next round of
 * heartbeats.
 *
 * Network positions: in each group a few hosts are landmarks, chosen one
 * at a time as medians (lib/landmark.h, quilt_lm_pick): central hosts of
 * the populous places; every host measures its RTT to them and reports
 * the vector in its heartbeats (LANDMARKS, lib/landmark.h).  From the
 * vectors the server estimates the latency between any two hosts
 * (quilt_bootstrap_est_us) and keeps OMNI trees (lib/omni.h): one over the
 * members of each patch of the tree protocol (tree id = patch id, shared
 * by all its publishers), and, with wao_tree, the wide-area overlay: for
 * each patch p one tree over the patches of its group rooted at p (tree id
 * QUILT_WIRE_TREE_WAO | p, each patch standing as its primary), the tree
 * the messages of p's origins travel.  Each host in a tree is sent its
 * view (TREE) whenever it changes and now and then; a host whose parent
 * went silent says so (ORPHAN) and is re-attached.
 *
 * Regions (docs/design.md, "Locality"): a host that leaves the region of
 * its EUID 0 ("unknown") is given one by the server: the region of its
 * nearest landmark (lib/landmark.h, quilt_lm_region), and the rules are
 * evaluated with it.  It joins before its vector exists, in the patch its
 * EUID without region gives; once its vector is complete and the
 * landmark list has been stable for region_settle_ns, the server moves it
 * to the patch the rules give for its region (or, when most of its patch
 * is bound for one region that has no patch yet, gives the whole patch
 * that region instead: a re-key, no host moves).  A host moves at most
 * once per region_move_min_ns, and the server makes at most
 * region_moves_per_sec moves a second.  After a restart a host's
 * heartbeat names its patch; until its vector is measured again it is
 * kept with the others that name the same patch (a provisional region,
 * QUILT_BOOTSTRAP_REGION_PROVISIONAL | patch id), and the re-key then
 * gives that patch its region without moving anyone.
 */
#ifndef QUILT_BOOTSTRAP_H
#define QUILT_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "rules.h"
#include "wire.h"

#define QUILT_BOOTSTRAP_MAX_REPS QUILT_WIRE_MAX_REPS
/* Patch ids stay below this, so that 239.192.0.0 + id stays inside the
 * organisation-local scope 239.192.0.0/14 (RFC 2365). */
#define QUILT_BOOTSTRAP_MAX_PATCH_ID 0x3FFFF
/* A region the server gives a host after a restart, until the host's
 * landmark vector is measured again: this bit | the patch id its
 * heartbeat names.  Derived regions are below it (landmark.h). */
#define QUILT_BOOTSTRAP_REGION_PROVISIONAL 0x80000000u

typedef struct quilt_bootstrap quilt_bootstrap;

typedef struct quilt_bootstrap_config {
  uint64_t id;               /* node id the server sends as */
  const quilt_rules *rules;  /* borrowed; must outlive the server */
  unsigned reps_per_patch;   /* k, 1..QUILT_BOOTSTRAP_MAX_REPS */
  uint16_t heartbeat_ms;     /* interval members are told to use */
  unsigned miss_limit;       /* heartbeats missed before a member is dead */
  uint16_t rep_heartbeat_ms; /* interval representatives are told to use:
                                short, since a silent primary stalls the
                                patch's traffic to and from the others */
  unsigned rep_miss_limit;   /* heartbeats missed before a representative
                                is dead */
  uint32_t mcast_base;       /* patch p gets group mcast_base + p */
  uint16_t mcast_port;
  uint32_t max_hosts; /* hosts admitted, all groups */
  uint32_t max_patches;
  uint64_t peers_refresh_ns; /* PEERS re-sent this often */
  uint64_t peers_batch_ns;   /* a patch that forms or goes away is in the
                                PEERS sent within this long (a replaced
                                primary is in those sent within 5 ms) */
  uint32_t members_max;      /* largest patch of a protocol that needs a
                                member list (the list costs each member
                                O(patch size) per change); 0 = no cap */
  int send_members;          /* send MEMBERS to such patches (0 when the
                                driver gives hosts their members itself) */
  uint8_t incarnation;       /* differs across restarts of the server (the
                                driver picks it, e.g. from the clock): the
                                top byte of every epoch it announces, so
                                that hosts take a restarted server's
                                PATCH_INFO, PEERS, LANDMARKS and TREE as
                                newer than the old one's */
  uint64_t seed;             /* seeds the generator of the tree
                                optimiser's probabilistic moves */

  /* Landmarks (per group: hosts drop datagrams of other groups, PINGs
   * included). */
  uint32_t landmarks_max;       /* 0..QUILT_WIRE_MAX_LANDMARKS; 0 = none,
                                   every estimate is then the fallback */
  uint64_t landmark_period_ns;  /* how often a landmark is added */
  uint32_t landmark_min_rtt_us; /* a host nearer than this to every
                                   landmark adds nothing as one */

  /* Trees. */
  int wao_tree;                 /* keep the wide-area overlay trees */
  uint32_t wao_eager_patches;   /* a patch that has a primary while its
                                   group has at most this many roots an
                                   overlay tree for good, as a source does
                                   (HEARTBEAT QUILT_HB_SOURCE) */
  uint32_t wao_max_patches;     /* ...in groups of at most this many patches
                                   (<= QUILT_OMNI_MAX_NODES): each patch roots
                                   one, so each primary holds that many views;
                                   in a larger group the primaries get none
                                   and send to each other directly */
  uint32_t tree_hop_us;         /* cost of a forwarding hop, added to every
                                   estimated edge latency */
  uint32_t tree_rate_kbps;      /* the stream rate: a host's degree bound is
                                   its uplink over this (each child costs one
                                   copy of the stream), clamped to
                                   2..QUILT_WIRE_MAX_CHILDREN */
  uint64_t tree_rebuild_ns;     /* a tree is rebuilt, or re-optimised, at
                                   most this often */
  uint32_t tree_rebuild_rounds; /* optimiser rounds of a rebuild */
  uint32_t tree_improve_rounds; /* rounds of a re-optimisation (greedy) */
  uint64_t tree_refresh_ns;     /* every view is re-sent this often */

  /* Regions derived from the landmark vectors (hosts whose EUID region is
   * 0).  Moves bound the churn: each costs the host a new patch and, for
   * a representative, the patch a failover. */
  uint64_t region_settle_ns;     /* the landmark list unchanged this long
                                    before regions are derived from it */
  uint64_t region_move_min_ns;   /* a host moves at most this often */
  uint32_t region_moves_per_sec; /* moves the server makes, at most,
                                    1..QUILT_BOOTSTRAP_REGION_MOVES_MAX */
} quilt_bootstrap_config;

/* Largest region_moves_per_sec: the moves of one tick (a twentieth of a
 * second) are gathered on the stack. */
#define QUILT_BOOTSTRAP_REGION_MOVES_MAX 5120

typedef struct quilt_bootstrap_callbacks {
  void (*send)(void *user, const quilt_addr *to, const uint8_t *buf,
               size_t len);
} quilt_bootstrap_callbacks;

/* Defaults: member lists sent, to patches of at most 256 hosts; k = 2,
 * members heartbeat every 1000 ms and are dead after 3
 * missed, representatives every 20 ms and dead after 5 missed (so a failed
 * primary is replaced 110 to 120 ms after its last heartbeat: 5.5
 * intervals, checked every half interval), 239.192.0.0 + p on port 7400,
 * 1,000,000 hosts, 65,535 patches, PEERS every 2 s.
 *
 * Landmarks: up to 8 per group, one added every 500 ms, only hosts at
 * least 1 ms (RTT) from every landmark.  Trees: the overlay trees on, in groups
 * of up to 128 patches; 50 us per
 * hop; a stream of 100 Mbit/s (100000 kbps: a host's degree bound is its
 * uplink in units of 100 Mbit/s, at least 2 so that a tree of many hosts
 * is never a chain); rebuilt or re-optimised at most once a second per
 * tree, with 32 optimiser rounds for a rebuild and 4 greedy ones
 * otherwise; every view re-sent every 5 s.  Regions: derived once the
 * landmarks have been stable for 2 s; a host moves at most once per 10 s,
 * the server at most 200 hosts a second. */
void quilt_bootstrap_config_default(quilt_bootstrap_config *c);

int quilt_bootstrap_new(quilt_bootstrap **out,
                        const quilt_bootstrap_config *cfg,
                        const quilt_bootstrap_callbacks *cb, void *user);
void quilt_bootstrap_del(quilt_bootstrap *b);

/* Handles one datagram that came from `from` (the address hosts are then
 * reached at; 0.0.0.0:0 when the driver cannot tell, and the address a
 * host claims is used): JOIN, HEARTBEAT, LEAVE or ORPHAN.  Returns 0, or a
 * negative code for a datagram that was refused (malformed, a message type
 * the server does not take, a host over max_hosts, an ORPHAN from a host
 * it does not know); refused datagrams are counted. */
int quilt_bootstrap_read(quilt_bootstrap *b, const quilt_addr *from,
                         const uint8_t *buf, size_t len, uint64_t now_ns);

uint64_t quilt_bootstrap_expiry(const quilt_bootstrap *b);
void quilt_bootstrap_handle_expiry(quilt_bootstrap *b, uint64_t now_ns);

/* Checks the patch table's invariants: every host in exactly one patch,
 * the one whose rule and key the rules give for its EUID as the server
 * sees it (its region filled in: quilt_bootstrap_host_get), a region the
 * server gives is 0, provisional or a landmark's,
 * representatives are members, k representatives where the patch has k
 * members, no patch over its size limit; and the trees': each passes
 * quilt_omni_check (a tree, degree bounds kept) and spans exactly the
 * members of its patch (the patches of its group, for tree 0) but those
 * taken out after an ORPHAN, an overlay tree rooted at its patch.
 * Returns 0, or QUILT_ERR_STATE and a description in err. */
int quilt_bootstrap_check(const quilt_bootstrap *b, char *err, size_t errlen);

typedef struct quilt_bootstrap_patch {
  uint32_t patch_id;
  uint32_t group;
  unsigned protocol;
  unsigned rule;
  uint32_t members;
  uint32_t nreps;
  uint64_t reps[QUILT_BOOTSTRAP_MAX_REPS]; /* node ids, [0] primary */
  uint32_t epoch;
} quilt_bootstrap_patch;

size_t quilt_bootstrap_patch_count(const quilt_bootstrap *b);
/* Fills *p for the i-th patch (0 <= i < count); patches are listed in
 * creation order. */
void quilt_bootstrap_patch_get(const quilt_bootstrap *b, size_t i,
                               quilt_bootstrap_patch *p);

typedef struct quilt_bootstrap_counters {
  uint64_t joins;
  uint64_t heartbeats;
  uint64_t leaves;
  uint64_t expired;      /* hosts dropped for missed heartbeats */
  uint64_t failovers;    /* representatives replaced after a failure */
  uint64_t refused;      /* datagrams refused (malformed, limits) */
  uint64_t hosts;        /* current */
  uint64_t patches;      /* current */
  uint64_t tree_builds;  /* trees (re)built from scratch */
  uint64_t tree_inserts; /* hosts (patches, in tree 0) added as leaves */
  uint64_t tree_removes; /* nodes taken out of a tree, children re-attached */
  uint64_t orphans;      /* ORPHAN messages */
  uint64_t tree_msgs;    /* TREE messages sent */
  uint64_t landmark_changes; /* new landmark lists (epochs) */
  uint64_t region_moves;     /* hosts moved to the patch of their region */
  uint64_t promotions;       /* newcomers made primary in place of a much
                                worse one (reachable where it is not, or
                                twice its uplink) */
  uint64_t wao_sources;      /* patches that became sources (an overlay
                                tree rooted at each) */
  uint64_t region_rekeys;    /* patches given a region whole (no one moved) */
  uint64_t region_deferred;  /* moves put off by region_moves_per_sec */
} quilt_bootstrap_counters;

void quilt_bootstrap_counters_get(const quilt_bootstrap *b,
                                  quilt_bootstrap_counters *c);

/* One host as the server holds it. */
typedef struct quilt_bootstrap_host {
  uint64_t id;
  uint32_t group;
  quilt_addr addr;
  quilt_euid euid;     /* as the rules see it: the host's own, with the
                          server's region where the host's is 0 */
  uint32_t own_region; /* the region of the host's own EUID (0: the
                          server's) */
  int region_derived;  /* euid.region is the region of a landmark (not
                          0, not provisional, not the host's own) */
  uint32_t patch_id;
  unsigned role;     /* QUILT_ROLE_* */
  uint64_t moved_ns; /* when it last moved to its region's patch; 0:
                        never */
} quilt_bootstrap_host;

/* Fills *out for host `id`.  Returns 0, or QUILT_ERR_NOT_FOUND. */
int quilt_bootstrap_host_get(const quilt_bootstrap *b, uint64_t id,
                             quilt_bootstrap_host *out);

/* Estimated one-way latency in us from host a to host b (node ids), from
 * their latest landmark RTTs (lib/landmark.h, quilt_lm_est_us): exact for
 * a landmark, tree_hop_us for two hosts at the same position.  The trees
 * use the same estimate on snapshots of the positions, refreshed when a
 * position moves by more than measurement noise.  UINT32_MAX when either
 * host is unknown. */
uint32_t quilt_bootstrap_est_us(const quilt_bootstrap *b, uint64_t a,
                                uint64_t b_id);

/* The parent of host `host` in tree `tree` (a patch id, or
 * QUILT_WIRE_TREE_WAO | p for the overlay tree of host's group rooted at
 * patch p, where host must be its patch's primary and the parent named is
 * the parent patch's primary).  Returns 0 with *parent set (0 for the
 * root), or QUILT_ERR_NOT_FOUND when the host is not in that tree. */
int quilt_bootstrap_tree_parent(const quilt_bootstrap *b, uint32_t tree,
                                uint64_t host, uint64_t *parent);

#endif /* QUILT_BOOTSTRAP_H */
