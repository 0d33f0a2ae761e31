/*
 * peers.h - this node's links (parent, children, standalone destinations)
 * and the topology rules that guard them.
 *
 * STORE_T_PEERS: key "<role>/<name>" ("parent/<name>", "child/<name>",
 * "dest/<name>") -> msgpack [role, name, key, endpoint, since-ms,
 * [[name, key, parent-name]...]]. The last field is what the peer told us
 * about the rest of the tree: for the parent, the path from the root down to
 * it (its ancestors and itself); for a child, its whole subtree below it. A
 * child is never told about its siblings: the parent sends a child only the
 * ancestor path.
 *
 * The rules (checked on both sides of a link, before anything is written):
 *  - zero or one parent; no self-link;
 *  - at most TOPO_MAX_CHILDREN children unless the admin overrides it;
 *  - no cycles at any depth: a new child must not be this node or any of its
 *    ancestors; a new parent must not be this node or anywhere in its subtree.
 */
#ifndef TOPO_PEERS_H
#define TOPO_PEERS_H

#include "store/store.h"
#include "topology/identity.h"

#define TOPO_MAX_CHILDREN 6
#define TOPO_REL_MAX 512

typedef struct topo_rel {
    char rel_name[STORE_NAME_MAX + 1];
    char rel_key[TOPO_KEY_LEN + 1];
    char rel_parent[STORE_NAME_MAX + 1];
} topo_rel_t;

typedef struct topo_peer {
    int pe_role; /* TOPO_ROLE_* */
    char pe_name[STORE_NAME_MAX + 1];
    char pe_key[TOPO_KEY_LEN + 1];
    char pe_endpoint[TOPO_ENDPOINT_MAX];
    uint64_t pe_since;
    size_t pe_nrel;
    topo_rel_t *pe_rel; /* owned; pe_nrel entries */
} topo_peer_t;

/* Free pe_rel (the struct itself is the caller's). */
void topo_peer_clear(topo_peer_t *p);

/* Encode/decode the table value (decode is fed untrusted bytes by the fuzzer;
 * on success the caller owns out->pe_rel). HS_OK, HS_EMALF, HS_ENOMEM. */
int topo_peer_encode(const topo_peer_t *p, uint8_t **out, size_t *len);
int topo_peer_decode(const void *buf, size_t len, topo_peer_t *out);

int topo_peer_put(store_txn_t *t, const topo_peer_t *p);
/* HS_ENOTFOUND if absent. */
int topo_peer_get(store_txn_t *t, int role, const char *name, topo_peer_t *out);
int topo_peer_del(store_txn_t *t, int role, const char *name);
/* The parent link, if any (HS_ENOTFOUND). */
int topo_peer_parent(store_txn_t *t, topo_peer_t *out);

/* Visit every link (role 0) or the links of one role. The peer passed to cb
 * is freed after cb returns. */
typedef int (*topo_peer_cb)(void *ctx, const topo_peer_t *p);
int topo_peer_each(store_txn_t *t, int role, topo_peer_cb cb, void *ctx);
int topo_peer_count(store_txn_t *t, int role, size_t *out);

/* Rules. On violation return HS_ETOPO and set *why to a sentence. */
int topo_check_add_child(store_txn_t *t, const topo_identity_t *me, const char *name,
                         const char *key, bool allow_more, const char **why);
int topo_check_accept_parent(store_txn_t *t, const topo_identity_t *me, const char *name,
                             const char *key, const topo_rel_t *path, size_t npath,
                             const char **why);

#endif
