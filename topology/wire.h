/*
 * wire.h - link-level frames between two brokers.
 *
 * Every frame between brokers is one ZeroMQ message holding one msgpack
 * array whose first two elements are the protocol version (1) and the frame
 * type. Types below 16 belong to the link (this file); 16 and up belong to
 * replication (replication/proto.h). A frame with another version, an unknown
 * type or any malformed field is rejected and logged; it never crashes the
 * broker.
 *
 * Link frames: [1, type, name, key, token, ok, why, rels]
 *   HB      both ways every second. name = sender. token = the sender's
 *           session id, new at every broker start: a new one means the peer
 *           restarted (and lost what was in flight). rels = for a
 *           parent->child heartbeat the path from the root down to the sender;
 *           for a child->parent heartbeat the sender's subtree. (A child is
 *           never sent its siblings.)
 *   JOIN    parent -> child over a fresh connection: token = the child's
 *           invite, key = parent's public key, rels = the parent's path.
 *   JOINED  child -> parent: ok, why (refusal reason), rels = child subtree.
 *   LEAVE   either way: the sender has removed the link.
 *   NAMEQ   child -> parent, passed up to the root: may these names join
 *           the hierarchy? token = query id (32 hex), rels = the names (a
 *           joining node and its subtree). Node names are unique across a
 *           hierarchy; only the root knows every name.
 *   NAMEA   parent -> child, passed back down the way NAMEQ came: token =
 *           the query id, ok, why = which name is taken and where.
 */
#ifndef TOPO_WIRE_H
#define TOPO_WIRE_H

#include "store/mp.h"
#include "topology/peers.h"

#define TOPO_PROTO_VERSION 1
#define TOPO_FRAME_MAX (64u << 20) /* largest frame accepted from a peer */

enum topo_msg_type {
    TOPO_MSG_HB = 1,
    TOPO_MSG_JOIN = 2,
    TOPO_MSG_JOINED = 3,
    TOPO_MSG_LEAVE = 4,
    /* JOIN as a standalone source (one-way feed, not a parent); its JOINED
     * reply carries the destination's software version in m_token */
    TOPO_MSG_FEED = 5,
    TOPO_MSG_NAMEQ = 6, /* newer than hsync 0.9: a 0.9 broker drops it as malformed */
    TOPO_MSG_NAMEA = 7,
};

/* This build's software version (standalone package rules compare it). */
#define TOPO_SOFTWARE_VERSION "hsync 0.10"

typedef struct topo_msg {
    int m_type;
    char m_name[STORE_NAME_MAX + 1];
    char m_key[TOPO_KEY_LEN + 1];
    char m_token[TOPO_TOKEN_MAX];
    bool m_ok;
    char m_why[256];
    size_t m_nrel;
    topo_rel_t *m_rel; /* owned after decode; borrowed for encode */
} topo_msg_t;

/* Peek version and type. HS_OK, HS_EMALF, HS_EPROTO (other version). */
int topo_frame_type(const void *buf, size_t len, int *type);

/* Append the frame to w. */
int topo_msg_encode(const topo_msg_t *m, store_mpw_t *w);
/* Decode a link frame (untrusted; fuzzed). HS_EMALF also when m_name, a
 * relative's name or a relative's non-empty parent is not a node name
 * (topo_name_ok). Caller frees with topo_msg_clear. */
int topo_msg_decode(const void *buf, size_t len, topo_msg_t *out);
void topo_msg_clear(topo_msg_t *m);

#endif
