/*
 * proto.h - the replication session protocol between adjacent brokers.
 *
 * Frames ride the secure link (topology/wire.h: every frame is a msgpack
 * array [version=1, type, ...]); replication owns types 16 and up.
 *
 *   OPEN    S->D [1,16, run, rule, prefixes[], dataclasses[], mode, why, token,
 *                 vfirst, vcount, branch[]]
 *           branch: the sender's {self + subtree} names (up runs: the owners
 *           it sends for); D accepts it unless it names nodes D knows to be
 *           elsewhere (itself, its ancestors, its other children's branches).
 *   OPENED  D->S [1,24, run, epoch, head, buckets(bin)|nil]
 *   PLAN    S->D [1,25, run, buckets-to-repair(bin bitmap)]
 *   LEAVES  D->S [1,30, run, (guid(16) hash(32))*(bin)|nil]  D's objects in them
 *   DROP    S->D [1,31, run, guid(16)*(bin)]    D's objects S does not have
 *   BATCH   S->D [1,17, run, no, upto_seq, from, to, objects[]]
 *   ACK     D->S [1,18, run, no, applied, skipped, deleted(, refused,
 *                 [[guid(bin16), why]...])]   refused: objects of the batch D
 *                 would not take (at most REPL_REFUSALS_MAX listed, with why);
 *                 omitted when none (and by senders before hsync 0.10). S
 *                 records them (marks.h), does not count them as
 *                 acknowledged, and the run fails saying so.
 *   END     S->D [1,19, run, no, from]
 *   DONE    D->S [1,20, run, ok, why, applied, skipped, deleted, head]
 *           head: D's change-log head after the run (a later OPENED with a
 *           lower head under the same epoch means D was rolled back)
 *   ABORT   both [1,21, run, why]
 *   REQUEST D->S [1,22, rule, mode, token]   "send me this rule now"; mode 4
 *                                            (recover; newer than hsync 0.9, whose
 *                                            brokers drop it as malformed): a restored
 *                                            child asks its parent for what it owns
 *   VERIFY  P->C [1,32, id, budget, repair, scopes[]]   (hsync verify)
 *           scope: [rule, dir, count, digest(bin32), owners[]], owner:
 *           [name, count, sum]: P's side of the link, per rule and direction
 *           (dir RULES_DOWN or RULES_UP): the scope's object count, SHA-256
 *           of its bucket vector (replication/buckets.h) and its count and
 *           bucket sum per owner. C compares its side, repairs (repair: a
 *           reconcile of each differing scope), asks its own children the
 *           same within budget ms (less a margin), then answers:
 *   VERIFY_ANS C->P [1,33, id, nodes[]]
 *           node: [name, parent, reached, why, verdicts[]], verdict: [rule,
 *           dir, ok, parent_count, count, owners[] (those that differ),
 *           repair (what the repair did, "" if none)]: C first, then every
 *           node below it (a child that is down or silent: reached false).
 *   REFUSE  S->D [1,23, token, why, skip]    the request cannot be served; skip
 *                                            (m_ok) = the rule is disabled there, so
 *                                            the run is skipped, not failed (4-field
 *                                            REFUSE: skip false)
 *
 * run is the sender's run id (unique per sender process and run); no counts
 * batches from 1. A key ("from", "to") is nil or [class, guid(bin16)], the
 * position in (class, guid) order. An object is
 *   [guid(bin16), class, origin, owner, mtime, flags, resource(bin16)|nil,
 *    keys(map)|nil, body(map)|nil, registered]
 * (tombstones: flags has STORE_OBJ_TOMBSTONE, body nil, mtime = deletion).
 * registered (store_obj_t.rtime) was added in hsync 0.10; an object of 9
 * fields, from an older sender, reads as registered 0 (unknown).
 *
 * Session (S = sender, D = receiver):
 *
 *   S: OPEN --(OPENED)--> [PLAN] BATCH 1..n (at most REPL_WINDOW
 *      unacknowledged) --> END
 *   D: answers OPEN with its store epoch (and, for a reconcile, the bucket
 *      vector of its side of the scope: replication/buckets.h); applies each
 *      BATCH in one LMDB transaction, commits, then ACKs it; after END,
 *      replies DONE.
 *   S: if D's epoch is not the one its watermark was acknowledged under, or
 *      D's log head went backwards (D was restored or copied), a differential
 *      run turns into a reconcile (S sends OPEN again, same run id).
 *   S: on each ACK commits the new watermark (differential: upto_seq, the
 *      last change-log sequence the batch covered; complete: the batch's last
 *      key) in one transaction; on DONE records the run in history.
 *
 * Complete runs stream the scope in (class, guid) order from one LMDB
 * snapshot. Each BATCH covers the key range (from, to]; END covers (from,
 * end). D removes its in-scope objects inside the range that the batch does
 * not carry, so after DONE it holds exactly S's scope, and needs no state of
 * its own between batches.
 *
 * Reconcile runs compare in two levels. First bucket vectors: S sends PLAN
 * (the buckets that differ, within [vfirst, vfirst+vcount) for a
 * verification run). Then the objects of those buckets: D answers LEAVES,
 * the guid and content hash of each of its in-scope objects there; S sends
 * only its objects that D lacks or holds with another hash, and DROP lists
 * what D holds that S does not. Only the differing objects move (plus one
 * scan of the scope on each side). When D has more than REPL_LEAVES_MAX
 * objects in those buckets it answers LEAVES nil: S then sends every object
 * of the buckets and D, after END, removes its in-scope objects there that
 * S did not send.
 *
 * Resume: D keeps nothing; S keeps the acknowledged watermark/cursor. A run
 * cut off (link down, ACK timeout, either side killed) ends as failed; the
 * next attempt (retried with backoff) starts after the acknowledged point.
 */
#ifndef REPL_PROTO_H
#define REPL_PROTO_H

#include "rules/rules.h"
#include "store/mp.h"

#define REPL_WINDOW 8           /* batches in flight per run */
#define REPL_BATCH_OBJECTS 2048 /* objects per batch, at most */
#define REPL_BATCH_BYTES (1u << 20)
#define REPL_TOKEN_MAX 64
#define REPL_WHY_MAX 256
/* A REFUSE for a rule the sender has disabled: the run is skipped, not failed. */
#define REPL_WHY_DISABLED "the rule is disabled on the sender"

enum repl_frame {
    REPL_OPEN = 16,
    REPL_BATCH = 17,
    REPL_ACK = 18,
    REPL_END = 19,
    REPL_DONE = 20,
    REPL_ABORT = 21,
    REPL_REQUEST = 22,
    REPL_REFUSE = 23,
    REPL_OPENED = 24,
    REPL_PLAN = 25,
    /* 26, 27: EVENT, EVENT_ACK (replication/events.h) */
    REPL_PUSH = 28, /* replicate-now / emergency (replication/push.c) */
    REPL_PUSH_ACK = 29,
    REPL_LEAVES = 30,
    REPL_DROP = 31,
    REPL_VERIFY = 32,
    REPL_VERIFY_ANS = 33,
};

#define REPL_LEAVES_MAX 200000 /* objects D lists for the differing buckets */

/* REPL_RECOVER: parent -> child only, asked for by a child whose store was
 * restored from an older copy (a new epoch): the parent sends the objects
 * owned in the child's branch (owner-scoped families) and the child takes
 * each one it lacks or holds older, then reconciles as usual. No removal,
 * no watermark moves (Active Directory's non-authoritative restore). */
enum repl_mode { REPL_DIFFERENTIAL = 1, REPL_COMPLETE = 2, REPL_RECONCILE = 3, REPL_RECOVER = 4 };

#define REPL_EPOCH_MAX 40

const char *repl_mode_name(int mode);

#define REPL_REFUSALS_MAX 8 /* refused objects named per ACK */
#define REPL_REFUSAL_WHY 160

/* An object the receiver refused, and why. */
typedef struct repl_refusal {
    store_guid_t rf_guid;
    char rf_why[REPL_REFUSAL_WHY];
} repl_refusal_t;

typedef struct repl_key {
    bool k_set;
    char k_cls[STORE_CLASS_MAX + 1];
    store_guid_t k_guid;
} repl_key_t;

/* Order of keys: by class, then guid; an unset key is before everything
 * when used as "from" and after everything as "to" (callers decide). */
int repl_key_cmp(const repl_key_t *a, const repl_key_t *b);

/* Decoded frame. Borrowed pointers point into the frame buffer. */
typedef struct repl_msg {
    int m_type;
    uint64_t m_run;
    char m_rule[RULES_NAME_MAX + 1];
    size_t m_nprefix;
    char m_prefix[RULES_PREFIX_MAX][STORE_CLASS_MAX + 1];
    size_t m_ndataclass;
    char m_dataclass[RULES_DATACLASS_MAX][STORE_CLASS_MAX + 1];
    int m_mode;
    uint32_t m_vfirst, m_vcount; /* OPEN: bucket window of a reconcile */
    /* OPEN: raw msgpack array of the sender's branch (standalone: the owners
     * it carries); OPENED of a standalone run: the owners the destination
     * takes none of (its own hierarchy), absent from 0.10 peers (borrowed) */
    const uint8_t *m_branch;
    size_t m_branch_len;
    const char *const *m_branch_names; /* encode only: names to send */
    size_t m_nbranch;
    char m_epoch[REPL_EPOCH_MAX]; /* OPENED: receiver's store epoch */
    uint64_t m_head;              /* OPENED: receiver's change-log head */
    const uint8_t *m_bin;         /* OPENED buckets, PLAN bitmap (borrowed) */
    size_t m_bin_len;
    char m_why[REPL_WHY_MAX];
    char m_token[REPL_TOKEN_MAX];
    uint64_t m_no;
    uint64_t m_upto;
    repl_key_t m_from, m_to;
    bool m_ok;
    uint64_t m_applied, m_skipped, m_deleted;
    uint64_t m_refused; /* ACK: objects of the batch refused */
    size_t m_nrefusal;  /* ACK: how many of them are named below */
    repl_refusal_t m_refusal[REPL_REFUSALS_MAX];
    /* BATCH objects: raw encodings, decode one by one with repl_obj_decode */
    uint32_t m_nobj;
    const uint8_t *m_objs;
    size_t m_objs_len;
} repl_msg_t;

/* Decode any replication frame (untrusted; fuzzed). HS_OK or HS_EMALF. */
int repl_msg_decode(const void *buf, size_t len, repl_msg_t *out);

#define REPL_BRANCH_MAX 1024

/* A list of node names, owned (free v). */
typedef struct r_names {
    char (*v)[STORE_NAME_MAX + 1];
    size_t n;
} r_names_t;

/* Read a msgpack array of at most REPL_BRANCH_MAX node names (untrusted;
 * each a non-empty string of at most STORE_NAME_MAX bytes) into out, which
 * must be empty; duplicates are kept once. HS_OK, HS_EMALF (out is then
 * empty again) or HS_ENOMEM. */
int repl_names_decode(store_mpr_t *r, r_names_t *out);

/* Names of an OPEN's branch, into an owned array (free it). */
int repl_branch_decode(const repl_msg_t *m, char (**names)[STORE_NAME_MAX + 1], size_t *n);

/* Encode a frame other than BATCH from m (fields as the type needs). */
int repl_msg_encode(const repl_msg_t *m, store_mpw_t *w);

/* BATCH: header, then objects appended with repl_obj_encode into objs. */
int repl_batch_encode(store_mpw_t *w, uint64_t run, uint64_t no, uint64_t upto,
                      const repl_key_t *from, const repl_key_t *to, uint32_t nobj,
                      const store_mpw_t *objs);

void repl_obj_encode(store_mpw_t *w, const store_obj_t *o);

/* Read the next object of a batch. Strings are copied into the scratch of
 * out (valid until the next call). HS_OK or HS_EMALF. */
typedef struct repl_wire_obj {
    store_obj_t o;
    char cls[STORE_CLASS_MAX + 1];
    char origin[STORE_NAME_MAX + 1];
    char owner[STORE_NAME_MAX + 1];
} repl_wire_obj_t;
int repl_obj_decode(store_mpr_t *r, repl_wire_obj_t *out);

/* ---- hsync verify (VERIFY / VERIFY_ANS) ---------------------------------- */

#define REPL_VERIFY_SCOPES_MAX 64   /* (rule, direction) pairs per link */
#define REPL_VERIFY_OWNERS_MAX 1024 /* owners per scope */
#define REPL_VERIFY_NODES_MAX 4096  /* nodes in one answer */

typedef struct repl_vowner {
    char vo_name[STORE_NAME_MAX + 1];
    uint64_t vo_count, vo_sum;
} repl_vowner_t;

/* One side of a link's scope (rule, direction). */
typedef struct repl_vscope {
    char vs_rule[RULES_NAME_MAX + 1];
    unsigned vs_dir; /* RULES_DOWN or RULES_UP */
    uint64_t vs_count;
    uint8_t vs_digest[32];
    size_t vs_nowner;
    repl_vowner_t *vs_owners; /* owned */
} repl_vscope_t;

typedef struct repl_vreq {
    uint64_t vq_id;
    uint64_t vq_budget_ms;
    bool vq_repair;
    size_t vq_nscope;
    repl_vscope_t *vq_scopes; /* owned */
} repl_vreq_t;

/* A node's verdict on one scope of the link to its parent. */
typedef struct repl_vverdict {
    char vv_rule[RULES_NAME_MAX + 1];
    unsigned vv_dir;
    bool vv_ok;
    uint64_t vv_parent_count, vv_count;
    r_names_t vv_owners; /* owners whose objects differ (owned) */
    char vv_repair[REPL_WHY_MAX];
} repl_vverdict_t;

typedef struct repl_vnode {
    char vn_name[STORE_NAME_MAX + 1];
    char vn_parent[STORE_NAME_MAX + 1];
    bool vn_reached;
    char vn_why[REPL_WHY_MAX];
    size_t vn_nverdict;
    repl_vverdict_t *vn_verdicts; /* owned */
} repl_vnode_t;

void repl_vreq_free(repl_vreq_t *q);
void repl_vnodes_free(repl_vnode_t *nodes, size_t n);

void repl_vreq_encode(store_mpw_t *w, const repl_vreq_t *q);
/* Decode a VERIFY frame (untrusted; fuzzed). HS_OK, HS_EMALF or HS_ENOMEM;
 * on error *out holds nothing to free. */
int repl_vreq_decode(const void *buf, size_t len, repl_vreq_t *out);

/* VERIFY_ANS: header for n nodes, then n repl_vnode_encode. */
void repl_vans_header(store_mpw_t *w, uint64_t id, uint32_t n);
void repl_vnode_encode(store_mpw_t *w, const repl_vnode_t *node);
/* Decode a VERIFY_ANS frame (untrusted; fuzzed) into an owned array
 * (repl_vnodes_free). HS_OK, HS_EMALF or HS_ENOMEM. */
int repl_vans_decode(const void *buf, size_t len, uint64_t *id, repl_vnode_t **nodes, size_t *n);

#endif
