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
 *   ACK     D->S [1,18, run, no, applied, skipped, deleted]
 *   END     S->D [1,19, run, no, from]
 *   DONE    D->S [1,20, run, ok, why, applied, skipped, deleted, head]
 *           head: D's change-log head after the run (a later OPENED with a
 *           lower head under the same epoch means D was rolled back)
 *   ABORT   both [1,21, run, why]
 *   REQUEST D->S [1,22, rule, mode, token]   "send me this rule now"; mode 4
 *                                            (recover; newer than hsync 0.9, whose
 *                                            brokers drop it as malformed): a restored
 *                                            child asks its parent for what it owns
 *   REFUSE  S->D [1,23, token, why, skip]    the request cannot be served; skip
 *                                            (m_ok) = the rule is disabled there, so
 *                                            the run is skipped, not failed (4-field
 *                                            REFUSE: skip false)
 *
 * run is the sender's run id (unique per sender process and run); no counts
 * batches from 1. A key ("from", "to") is nil or [class, guid(bin16)], the
 * position in (class, guid) order. An object is
 *   [guid(bin16), class, origin, owner, mtime, flags, resource(bin16)|nil,
 *    keys(map)|nil, body(map)|nil]
 * (tombstones: flags has STORE_OBJ_TOMBSTONE, body nil, mtime = deletion).
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
    const uint8_t *m_branch;     /* OPEN: raw msgpack array of names (borrowed) */
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
    /* BATCH objects: raw encodings, decode one by one with repl_obj_decode */
    uint32_t m_nobj;
    const uint8_t *m_objs;
    size_t m_objs_len;
} repl_msg_t;

/* Decode any replication frame (untrusted; fuzzed). HS_OK or HS_EMALF. */
int repl_msg_decode(const void *buf, size_t len, repl_msg_t *out);

#define REPL_BRANCH_MAX 1024

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

#endif
