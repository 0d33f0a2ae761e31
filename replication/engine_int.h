/*
 * engine_int.h - state shared by the sender (engine.c) and the receiver
 * (receiver.c) halves of the replication engine. Not a public header.
 */
#ifndef REPL_ENGINE_INT_H
#define REPL_ENGINE_INT_H

#include "replication/buckets.h"
#include "replication/events.h"
#include "replication/repl.h"

typedef struct r_batch {
    uint64_t b_no;
    uint64_t b_upto;   /* differential: last change-log seq the batch covered */
    repl_key_t b_last; /* complete: last key the batch covered */
    uint64_t b_nobj;   /* objects in it (progress) */
} r_batch_t;

enum r_run_state {
    R_QUEUED,    /* waiting for the peer's previous run to finish */
    R_OPENING,   /* OPEN sent; waiting for OPENED (epoch, buckets) */
    R_STREAMING, /* OPEN sent; sending batches within the window */
    R_ENDING,    /* END sent; waiting for DONE */
};

/* A run this node sends. */
typedef struct r_run {
    struct r_run *next;
    uint64_t id;
    uint64_t req;
    char peer[STORE_NAME_MAX + 1];
    char token[REPL_TOKEN_MAX];
    rules_rule_t rule;
    unsigned dir;
    int mode;
    char why[REPL_WHY_MAX];
    int state;
    store_txn_t *snap; /* complete: the snapshot streamed */
    size_t prefix_idx; /* complete: index into the sorted prefixes */
    char prefixes[RULES_PREFIX_MAX][STORE_CLASS_MAX + 1];
    repl_key_t cursor;   /* complete: last key put in a batch */
    uint64_t seq_cursor; /* differential: last log seq put in a batch */
    uint64_t start_seq;  /* complete: log head when the run (first) started */
    /* standalone differential: the log head when OPEN declared the owners;
     * the scan stops there, later changes (maybe of an owner not declared)
     * are the next run's */
    uint64_t side_head;
    bool side_bounded;
    /* standalone: the owners the destination takes none of (its own
     * hierarchy), from OPENED; never sent. Owned (repl_branch_decode). */
    char (*side_skip)[STORE_NAME_MAX + 1];
    const char **side_skip_ptrs;
    size_t nside_skip;
    bool eof;
    r_batch_t inflight[REPL_WINDOW];
    size_t ninflight;
    uint64_t next_no;
    uint64_t sent, applied, skipped, deleted, bytes;
    uint64_t refused; /* objects the peer refused (ACKs): the run fails */
    size_t nrefusal;  /* the first of them, named */
    repl_refusal_t refusal[REPL_REFUSALS_MAX];
    uint64_t started_ms, last_ack_ms, end_sent_ms; /* repl_mono_ms */
    uint64_t total;                                /* objects in scope, for progress (estimate) */
    uint64_t not_before; /* queued: the link did not take OPEN; try again then (mono) */
    /* reconcile */
    uint32_t vfirst, vcount; /* bucket window (verification); 0,4096 = all */
    repl_bucket_set_t plan;  /* buckets whose objects are sent */
    uint64_t differing;      /* buckets that differed */
    char own_epoch[REPL_EPOCH_MAX];
    char peer_epoch[REPL_EPOCH_MAX];
    uint64_t peer_head;
    /* reconcile, second level: the receiver's objects in the planned buckets */
    bool leaves_mode;
    uint8_t (*leaves)[48]; /* guid(16) hash(32), sorted by guid */
    size_t nleaves;
    uint8_t *seen; /* one byte per leaf: the sender has that guid */
    bool drop_sent;
} r_run_t;

/* A run this node receives. */
typedef struct r_recv {
    struct r_recv *next;
    char peer[STORE_NAME_MAX + 1];
    uint64_t run;
    rules_rule_t rule; /* prefixes and data classes as the sender sent them */
    unsigned dir;
    int mode;
    char why[REPL_WHY_MAX];
    char token[REPL_TOKEN_MAX];
    uint64_t applied, skipped, deleted, refused, bytes, batches;
    uint64_t started_ms, last_ms; /* repl_mono_ms */
    /* reconcile: the buckets being repaired and the guids received */
    char (*branch)[STORE_NAME_MAX + 1]; /* up runs: the sender's branch, owned */
    const char **branch_ptrs;
    size_t nbranch;
    /* standalone: the owners the source declared that this node takes none
     * of (its own hierarchy); OPENED names them so the source leaves them
     * out. Owned. */
    char (*skip)[STORE_NAME_MAX + 1];
    const char **skip_ptrs;
    size_t nskip;
    bool have_plan;
    bool leaves_mode; /* LEAVES sent: S drops explicitly, no removal at END */
    uint64_t dropped;
    repl_bucket_set_t plan;
    store_guid_t *got;
    size_t ngot, capgot;
} r_recv_t;

/* A REQUEST this node sent and is waiting on. */
typedef struct r_req {
    struct r_req *next;
    char peer[STORE_NAME_MAX + 1];
    char rule[RULES_NAME_MAX + 1];
    char token[REPL_TOKEN_MAX];
    uint64_t req;
    uint64_t deadline_ms; /* repl_mono_ms */
    int mode;
    bool sent; /* false: the link did not take it yet; the tick sends it */
} r_req_t;

/* An event sent to a peer and not yet acknowledged (memory only: the
 * durable outbox entry is what makes it go out again after a restart). */
typedef struct r_inflight_ev {
    struct r_inflight_ev *next;
    char peer[STORE_NAME_MAX + 1];
    uint8_t id[16];
    uint64_t oseq;
    uint64_t sent_ms;
    uint32_t attempts;
    bool acked; /* acknowledged; removed from the outbox at the next flush */
    int state;  /* REPL_DL_SENT or REPL_DL_FAILED, recorded at the next flush */
    bool state_dirty;
    char error[96];
} r_inflight_ev_t;

typedef struct r_push r_push_t;     /* push.c */
typedef struct r_verify r_verify_t; /* verify.c */

struct repl {
    store_t *store;
    repl_io_t io;
    r_run_t *runs;
    r_recv_t *recvs;
    r_req_t *reqs;
    uint64_t next_id;
    uint64_t compact_from;  /* change-log compaction goes on after this seq */
    uint64_t compact_head;  /* log head when the last complete sweep began */
    uint64_t compact_sweep; /* log head when the current sweep began */
    bool starting;          /* s_start_queued is running */
    r_inflight_ev_t *evs;   /* events in flight */
    r_push_t *pushes;       /* pushes waiting for PUSH_ACK */
    struct r_relay *relays; /* emergencies passed on, waiting for children (push.c) */
    r_verify_t *verifies;   /* verifications waiting for children and repairs (verify.c) */
    size_t nacked;          /* acknowledged, not yet flushed */
    size_t ndirty;          /* delivery states not yet recorded */
    uint64_t ev_next_pump_ms;
    bool grouping;       /* repl_group: batches are held ... */
    struct r_pend *pend; /* ... here (receiver.c), R_GROUP_MAX of them */
    size_t npend;
    store_mpw_t w;    /* frame scratch */
    store_mpw_t objs; /* batch objects scratch */
};

/* Fill the names of a summary (each may be NULL = ""). */
void repl_summary_names(repl_summary_t *su, const char *peer, const char *rule, const char *why,
                        const char *error);
void repl_log(repl_t *r, int level, const char *peer, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int repl_send_msg(repl_t *r, const char *peer, const repl_msg_t *m);
/* Direction of a run from `from` to `to` as seen from this node. */
unsigned repl_dir_from(repl_t *r, const char *peer);
/* Fill names with this node's branch (peer NULL) or a child's. */
rules_names_t repl_branch(repl_t *r, const char *peer);

/* The recovery of rule after a restore is done (or impossible): up runs
 * of it go ahead (write txn). */
int repl_recover_done(store_txn_t *t, const char *rule);
/* A run of rule from the parent arrived whole: down runs of it to the
 * children, held since a restore, go ahead (write txn). */
int repl_catchup_done(store_txn_t *t, const char *rule);
/* The parent cannot send the recovery of rule (why): record it done, log
 * it (event=recover-refused), and reconcile without it. */
void repl_recover_give_up(repl_t *r, const char *peer, const char *rule, const char *why);

/* events (engine_events.c) */
void repl_ev_on_event(repl_t *r, const char *peer, const void *buf, size_t len);
void repl_ev_on_ack(repl_t *r, const char *peer, const void *buf, size_t len);
void repl_ev_free_all(repl_t *r);

/* push.c */
bool repl_push_frame(repl_t *r, const char *peer, int type, const void *buf, size_t len);
void repl_push_tick(repl_t *r);
void repl_push_peer_down(repl_t *r, const char *peer);
void repl_push_free_all(repl_t *r);

/* verify.c */
bool repl_verify_frame(repl_t *r, const char *peer, int type, const void *buf, size_t len);
void repl_verify_tick(repl_t *r);
void repl_verify_peer_down(repl_t *r, const char *peer);
void repl_verify_free_all(repl_t *r);
/* Every run summary goes through here: the repair runs of a verification
 * are its own; the rest go to io_run_done. */
void repl_run_done(repl_t *r, const repl_summary_t *su);

/* receiver.c */
/* The owners a run from our parent may not overwrite or remove: this node's
 * branch and every owner a standalone source feeds us (owned list). */
int repl_recv_down_names(repl_t *r, r_names_t *out);
/* May o, arriving in direction dir under rule from a sender whose
 * responsibility is branch (up: its branch; down: everything but ours), be
 * applied over what this node holds under its guid? When not, why (whylen
 * bytes; may be NULL with whylen 0) says so in words for the sender. */
bool repl_recv_allowed(store_txn_t *t, const rules_rule_t *rule, unsigned dir,
                       const rules_names_t *branch, const store_obj_t *o, char *why, size_t whylen);
/* Apply o arriving in direction dir (how: 0 or RULES_APPLY_STATE) through
 * its family handler, and raise the hierarchy event a decision asks for in
 * the same transaction (*raised counts them). Errors as rules_apply's. */
int repl_apply_incoming(store_txn_t *t, unsigned dir, unsigned how, store_obj_t *o, int *outcome,
                        unsigned *raised);
void repl_recv_open(repl_t *r, const char *peer, const repl_msg_t *m);
void repl_recv_plan(repl_t *r, const char *peer, const repl_msg_t *m);
void repl_recv_drop(repl_t *r, const char *peer, const repl_msg_t *m);
void repl_recv_batch(repl_t *r, const char *peer, const repl_msg_t *m);
void repl_recv_end(repl_t *r, const char *peer, const repl_msg_t *m);
void repl_recv_abort(repl_t *r, const char *peer, const repl_msg_t *m);
void repl_recv_refuse(repl_t *r, const char *peer, const repl_msg_t *m);
void repl_recv_drop_peer(repl_t *r, const char *peer);
void repl_recv_expire(repl_t *r, uint64_t mono_now); /* repl_mono_ms */
void repl_recv_free_all(repl_t *r);

#endif
