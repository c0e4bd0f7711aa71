/* proto.c -- the table of patch protocols. */
#include "proto.h"

#include <string.h>

static const quilt_proto_ops *const table[QUILT_PROTO__COUNT] = {
    [QUILT_PROTO_IPMC] = &quilt_proto_ipmc,
    [QUILT_PROTO_UNICAST] = &quilt_proto_unicast,
    [QUILT_PROTO_TREE] = &quilt_proto_tree,
    [QUILT_PROTO_MESH] = &quilt_proto_mesh,
};

static const char *const names[QUILT_PROTO__COUNT] = {
    [QUILT_PROTO_IPMC] = "ipmc",
    [QUILT_PROTO_UNICAST] = "unicast",
    [QUILT_PROTO_TREE] = "tree",
    [QUILT_PROTO_MESH] = "mesh",
};

const quilt_proto_ops *quilt_proto_get(unsigned id) {
  return id < QUILT_PROTO__COUNT ? table[id] : NULL;
}

int quilt_proto_find(const char *name) {
  for (unsigned i = 0; i < QUILT_PROTO__COUNT; i++)
    if (strcmp(names[i], name) == 0)
      return (int)i;
  return -1;
}

const char *const *quilt_proto_names(size_t *count) {
  *count = QUILT_PROTO__COUNT;
  return names;
}
