/*
 * marks.h - per-peer, per-rule replication state and run history.
 *
 * STORE_T_MARKS, key "<peer>\0<rule>" -> msgpack [1, diff_seq, complete_active,
 * complete_start_seq, cursor_set, cursor_cls, cursor_guid(bin16),
 * last_diff_ms, last_complete_ms, last_run_ms, last_ok, last_error,
 * failures, last_mode, own_epoch, peer_epoch, verify_next, peer_head,
 * cursor_epoch] (18 fields before cursor_epoch; both are read).
 *   cursor_epoch: the receiver's store epoch that acknowledged the resume
 *     cursor of an interrupted complete run; a resumption that finds another
 *     one starts the complete run over.
 *   own_epoch, peer_epoch: the store epochs of both nodes when the watermark
 *     was last acknowledged; if either changed since, the watermark says
 *     nothing about the peer's data and the next run reconciles.
 *   verify_next: first bucket of the next verification window.
 *   peer_head: the peer's change-log head at its last run; a lower head
 *     under the same epoch means the peer was rolled back.
 *   diff_seq: every change with seq <= diff_seq has been acknowledged by the
 *     peer (0 = never: the first run must be complete).
 *   complete_*: a complete run in progress: it started when the log head was
 *     complete_start_seq and the peer acknowledged everything up to the
 *     cursor; on success diff_seq becomes complete_start_seq.
 * Written by the sender, in the same transaction that records each
 * acknowledgement.
 *
 * STORE_T_HISTORY, key be64(ms) be32(counter) -> msgpack [1, peer, rule,
 * role ("sent"/"received"), mode, why, sent, applied, skipped, deleted,
 * bytes, duration_ms, ok, error]. At most REPL_HISTORY_MAX entries are kept.
 */
#ifndef REPL_MARKS_H
#define REPL_MARKS_H

#include "replication/proto.h"

#define REPL_HISTORY_MAX 2000

typedef struct repl_mark {
    uint64_t mk_diff_seq;
    bool mk_complete_active;
    uint64_t mk_complete_start_seq;
    repl_key_t mk_cursor;
    uint64_t mk_last_diff_ms;
    uint64_t mk_last_complete_ms;
    uint64_t mk_last_run_ms;
    bool mk_last_ok;
    char mk_last_error[REPL_WHY_MAX];
    uint32_t mk_failures; /* consecutive */
    int mk_last_mode;
    char mk_own_epoch[REPL_EPOCH_MAX];
    char mk_peer_epoch[REPL_EPOCH_MAX];
    uint32_t mk_verify_next;
    uint64_t mk_peer_head; /* the peer's log head when it last opened a run */
    bool mk_cursor_epoch_set;
    char mk_cursor_epoch[REPL_EPOCH_MAX]; /* the peer's epoch that acknowledged mk_cursor */
} repl_mark_t;

/* Absent marks read as all zero (HS_OK). */
int repl_mark_get(store_txn_t *t, const char *peer, const char *rule, repl_mark_t *out);
int repl_mark_put(store_txn_t *t, const char *peer, const char *rule, const repl_mark_t *m);
int repl_mark_decode(const void *buf, size_t len, repl_mark_t *out);
/* Remove every mark of peer (both ways, every rule): a link that is made
 * again later starts with complete runs, which remove what the peer's
 * other side no longer gives (write txn). */
int repl_marks_forget(store_txn_t *t, const char *peer);

typedef struct repl_hist {
    uint64_t h_when_ms;
    char h_peer[STORE_NAME_MAX + 1];
    char h_rule[RULES_NAME_MAX + 1];
    char h_role[12]; /* "sent" or "received" */
    int h_mode;
    char h_why[REPL_WHY_MAX];
    uint64_t h_sent, h_applied, h_skipped, h_deleted, h_bytes, h_ms;
    bool h_ok;
    char h_error[REPL_WHY_MAX];
} repl_hist_t;

int repl_hist_add(store_txn_t *t, const repl_hist_t *h);

/*
 * Refusals: an object a peer would not take (its ACK named it, with why),
 * kept by the sender so that the object is never shown as acknowledged
 * there (hsync trace). STORE_T_MARKS, key 0x01 peer 0x00 guid(16) ->
 * msgpack [1, rule, seq, at_ms, why]; seq is the object's change-log seq
 * when refused: a later change of it is pending again. The latest refusal
 * of an object by a peer replaces the earlier one.
 */
typedef struct repl_refusal_rec {
    char rr_rule[RULES_NAME_MAX + 1];
    uint64_t rr_seq;
    uint64_t rr_at_ms;
    char rr_why[REPL_REFUSAL_WHY];
} repl_refusal_rec_t;

int repl_refusal_put(store_txn_t *t, const char *peer, const store_guid_t *g,
                     const repl_refusal_rec_t *rec);
/* HS_ENOTFOUND if peer never refused g; HS_EMALF for an unreadable record. */
int repl_refusal_get(store_txn_t *t, const char *peer, const store_guid_t *g,
                     repl_refusal_rec_t *out);
/* Forget that peer refused g (write txn). HS_ENOTFOUND if it never did. */
int repl_refusal_del(store_txn_t *t, const char *peer, const store_guid_t *g);
/*
 * The objects peer refused under rule (rule NULL: any rule), at most max of
 * them, into g[] and rec[] (either may be NULL when only counting); *n
 * returns how many were found, which may exceed max (then only max are
 * filled in). A refusal stays recorded until a later run of that pair is ok
 * without refusals (the object was sent again and taken) or the object has
 * changed or gone since (repl_refusal_outstanding says which).
 */
int repl_refusals_list(store_txn_t *t, const char *peer, const char *rule, store_guid_t *g,
                       repl_refusal_rec_t *rec, size_t max, size_t *n);
/* true if the object is still the one refused: it exists and its change-log
 * seq is the one recorded. */
bool repl_refusal_outstanding(store_txn_t *t, const store_guid_t *g,
                              const repl_refusal_rec_t *rec);
typedef int (*repl_hist_cb)(void *ctx, const repl_hist_t *h);
/* Newest first. */
int repl_hist_each(store_txn_t *t, repl_hist_cb cb, void *ctx);
int repl_hist_decode(const void *buf, size_t len, repl_hist_t *out);

#endif
