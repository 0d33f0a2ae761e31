/*
 * identity.h - this node's keys, and the keys it trusts.
 *
 * Every node has a CURVE key pair (ZeroMQ's Curve25519, Z85 text, made at
 * init) used to authenticate and encrypt all broker-to-broker traffic, and a
 * 32-byte secret used to MAC its invite tokens. The secrets live in DIR/keys
 * (0600, store.h "secrets"), never in the LMDB file; meta "curve_public"
 * holds the public key, which DIR/keys repeats so that a keys file restored
 * beside the wrong store is noticed (HS_EKEYS).
 *
 * STORE_T_TRUST maps a peer's public key (40 Z85 characters) to the peer it
 * belongs to: msgpack [name, role, since-ms]. A key absent from it gets
 * nothing; removing the entry revokes the key at once, also for connections
 * that are already open (every frame is checked against the table).
 */
#ifndef TOPO_IDENTITY_H
#define TOPO_IDENTITY_H

#include "store/store.h"
#include "topology/token.h"

enum topo_role {
    TOPO_ROLE_PARENT = 1, /* the peer is this node's parent */
    TOPO_ROLE_CHILD = 2,  /* the peer is one of this node's children */
    TOPO_ROLE_DEST = 3,   /* standalone destination of this node */
    TOPO_ROLE_SOURCE = 4, /* standalone source feeding this node */
};

/* Is n a valid node name: 1 to STORE_NAME_MAX of A-Z a-z 0-9 _ . - ? Names
 * arrive from peers (JOIN, FEED) as well as from the command line. */
bool topo_name_ok(const char *n);

const char *topo_role_name(int role);

typedef struct topo_identity {
    char id_name[STORE_NAME_MAX + 1];
    char id_public[TOPO_KEY_LEN + 1];
    char id_secret[TOPO_KEY_LEN + 1];
    uint8_t id_token_key[32];
} topo_identity_t;

/* Create the key pair and token key if missing (write txn; the secrets go
 * to DIR/keys). HS_EKEYS when the store has an identity whose DIR/keys is
 * missing or another node's. */
int topo_identity_ensure(store_txn_t *t);
/* Load them. HS_ENOTFOUND before topo_identity_ensure, HS_EKEYS when
 * DIR/keys is missing, malformed or another node's, HS_EKEYSPAIR when its
 * curve_secret is not the secret of its curve_public, and what
 * store_secret_get returns for a file of the wrong type, owner or mode. */
int topo_identity_load(store_txn_t *t, topo_identity_t *out);

/* Short fingerprint of a public key: first 8 bytes of SHA-256, as
 * "xxxx:xxxx:xxxx:xxxx" (20 bytes with NUL). */
void topo_fingerprint(const char *key, char out[20]);

typedef struct topo_trust {
    char tr_name[STORE_NAME_MAX + 1];
    int tr_role;
    uint64_t tr_since;
} topo_trust_t;

int topo_trust_put(store_txn_t *t, const char *key, const topo_trust_t *tr);
/* HS_ENOTFOUND if the key is not trusted. */
int topo_trust_get(store_txn_t *t, const char *key, topo_trust_t *out);
int topo_trust_del(store_txn_t *t, const char *key);

#endif
