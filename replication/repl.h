/*
 * repl.h - the replication engine: runs rules against adjacent peers.
 *
 * The engine knows nothing of sockets or of object families: the broker
 * gives it a repl_io_t (send a frame, what a peer is to us, our branch),
 * feeds it frames and ticks, and gets run results back; rules/ decides what
 * is in scope and how objects are applied. Protocol: replication/proto.h.
 *
 * Scheduling: for every peer and every enabled rule this node sends on in
 * that peer's direction, a differential run is due ru_every_ms after the
 * last one and a complete run ru_complete_every_ms after the last complete
 * one (or at once when no watermark exists yet). A failed run is retried
 * with backoff (2 s doubling to 60 s). One run per peer at a time; others
 * wait their turn.
 */
#ifndef REPL_REPL_H
#define REPL_REPL_H

#include "replication/marks.h"

typedef struct repl repl_t;
struct repl_vnode; /* replication/proto.h */

/* Outcome of one run, sender or receiver side. */
typedef struct repl_summary {
    uint64_t su_req; /* the request id given to repl_start/repl_request */
    char su_peer[STORE_NAME_MAX + 1];
    char su_rule[RULES_NAME_MAX + 1];
    const char *su_role;      /* "sent" or "received" */
    const char *su_direction; /* "down" or "up" */
    int su_mode;
    char su_why[REPL_WHY_MAX];
    uint64_t su_sent, su_applied, su_skipped, su_deleted, su_bytes, su_ms;
    bool su_ok;
    char su_error[REPL_WHY_MAX];
    bool su_dry_run;
    uint64_t su_estimate_bytes;
    /* emergency: the nodes of the peer's branch that applied it (the peer
     * first) and those that did not acknowledge (borrowed, for the call) */
    const char (*su_reached)[STORE_NAME_MAX + 1];
    size_t su_nreached;
    const char (*su_unreached)[STORE_NAME_MAX + 1];
    size_t su_nunreached;
} repl_summary_t;

typedef struct repl_io {
    void *io_ctx;
    /* Send one frame to peer; HS_OK or an error (the run then fails). */
    int (*io_send)(void *ctx, const char *peer, const void *buf, size_t len);
    /* RULES_DOWN if peer is our child, RULES_UP if our parent, RULES_SIDE if
     * a standalone destination of ours, 0 otherwise. */
    unsigned (*io_dir_to)(void *ctx, const char *peer);
    /* The way data from peer travels: RULES_DOWN from our parent, RULES_UP
     * from a child, RULES_SIDE from a standalone source, 0 otherwise. */
    unsigned (*io_dir_from)(void *ctx, const char *peer);
    bool (*io_peer_up)(void *ctx, const char *peer);
    /* Branch names: of this node (peer NULL: self first, then subtree) or of
     * a child peer (the child first, then its subtree). The array stays valid
     * until the next call. */
    size_t (*io_branch)(void *ctx, const char *peer, const char *const **names);
    /* Every peer name, for scheduling. Valid until the next call. */
    size_t (*io_peers)(void *ctx, const char *const **names);
    /* Is node `name` known to be somewhere other than in peer's branch (this
     * node, an ancestor, another child's branch)? Guards what a child may
     * claim to own. */
    bool (*io_elsewhere)(void *ctx, const char *peer, const char *name);
    void (*io_run_done)(void *ctx, const repl_summary_t *s);
    /* Optional: a run started by request req (the command line waits for
     * it) had a batch acknowledged: objects and bytes sent so far, and the
     * estimated objects of the whole run (0 if unknown). */
    void (*io_run_progress)(void *ctx, uint64_t req, const char *peer, const char *rule,
                            uint64_t sent, uint64_t total, uint64_t bytes);
    void (*io_log)(void *ctx, int level, const char *peer, const char *event, const char *msg);
    /* Optional: called from inside computations that hold the event loop
     * for long (a reconcile's scan of a large scope), so the broker can send
     * due heartbeats and not count the frames it could not read meanwhile
     * as a silent peer. Must not call back into the engine. */
    void (*io_keepalive)(void *ctx);
    /* Optional: a verification started by repl_verify(req) ended: the
     * verdicts of every node below this one (borrowed, for the call). */
    void (*io_verify_done)(void *ctx, uint64_t req, const struct repl_vnode *nodes, size_t n);
} repl_io_t;

/* level values for io_log (same order as broker/log.h) */
enum { REPL_LOG_DEBUG, REPL_LOG_INFO, REPL_LOG_WARN, REPL_LOG_ERROR };

/* Wall clock in ms since the epoch, as the engine stamps runs, schedules
 * and history. */
uint64_t repl_now_ms(void);
/* Monotonic ms (any origin): durations and timeouts, which a wall-clock step
 * (NTP, an operator) must neither fire early nor hold off. */
uint64_t repl_mono_ms(void);

/* Owned engine; store and io are borrowed and must outlive it. */
repl_t *repl_new(store_t *s, const repl_io_t *io);
void repl_destroy(repl_t **r);

/* Timers: schedules, retries, timeouts, and pumping batches. */
void repl_tick(repl_t *r);

/* A replication frame (type >= 16) from peer. Malformed frames return
 * HS_EMALF (the caller logs them); nothing is applied from them. */
int repl_on_frame(repl_t *r, const char *peer, const void *buf, size_t len);

/* Group commit. Between repl_group(r, true) and repl_group(r, false), the
 * batches of runs this node receives are held and applied together at
 * repl_group_flush (and before any other replication frame): one write
 * transaction, one durable commit, then each batch is acknowledged. No batch
 * is acknowledged before it is durably committed. The broker brackets its
 * socket drain with them and flushes after each pass over the sockets.
 * repl_group(r, false) flushes. */
void repl_group(repl_t *r, bool on);
void repl_group_flush(repl_t *r);

/* The link to peer went down: its runs fail now (and resume later). */
void repl_peer_down(repl_t *r, const char *peer);

/* This node's store was restored from an older copy (a new epoch at
 * start, with a parent): mark every enabled rule that carries objects
 * scoped by owner up (write txn). Before its first up run of such a rule,
 * the engine asks the parent for a recovery run (REPL_RECOVER: the objects
 * owned in this node's branch that it lacks or holds older) and holds the
 * up run until it is done, so the reconcile that follows cannot delete
 * above what this node wrote after the copy was taken. History and the log
 * say how many objects were recovered. Down runs of every rule carried down
 * wait likewise until a run of it from the parent has arrived (at most 10
 * minutes), so this older store cannot reconcile its children first. */
int repl_recover_arm(store_txn_t *t);

/* Node `name` left this node's subtree (its branch moved or was removed):
 * runs this node receives from below under way stop counting it as their
 * sender's, so no batch or complete-run removal of theirs touches its
 * objects any more (they may arrive through another child now). */
void repl_branch_left(repl_t *r, const char *name);

/* Queue a run now as sender. mode 0 = the mode the schedule would pick
 * (REPL_COMPLETE or REPL_RECONCILE to force one). dry_run computes what
 * would be sent and reports it at once. req is passed back in the summary
 * of every run queued; *queued says how many (a differential run of a rule
 * with data verification is followed by a verification run). HS_ENOTFOUND
 * (rule), HS_EDIRECTION (rule does not send that way), HS_EDISABLED. */
int repl_start(repl_t *r, const char *peer, const char *rule, int mode, bool dry_run, uint64_t req,
               size_t *queued);

/* Ask peer to send rule to us now; the summary arrives when its run ends. */
int repl_request(repl_t *r, const char *peer, const char *rule, int mode, uint64_t req);

/* Urgent lane (replication/events.h): send what the outboxes hold to every
 * peer that is up, resend what was not acknowledged, record
 * acknowledgements. Call on local writes (poke), on link up and on ticks. */
void repl_events_pump(repl_t *r);

/* Replicate-now (emergency false): push object g and what it depends on to
 * every adjacent node its class may flow to, now. Emergency: to every child,
 * each of which applies it and passes it on to its own children. One summary
 * per peer reaches io_run_done (role "pushed" or "emergency") with req;
 * *peers says how many to expect. HS_ENOTFOUND if g is not a live object. */
int repl_push(repl_t *r, const store_guid_t *g, bool emergency, uint64_t req, size_t *peers);

/* `hsync verify`: ask every node below this one, hop by hop, whether its
 * side of the link to its parent matches, per rule and direction (frames
 * VERIFY/VERIFY_ANS, replication/verify.c); repair: each node also
 * reconciles the scopes that differ. io_verify_done gets the verdicts
 * within budget_ms, nodes that did not answer by then marked not reached.
 * HS_ENOMEM. */
int repl_verify(repl_t *r, uint64_t req, bool repair, uint64_t budget_ms);

/* Retention, every few seconds: drop change-log entries every linked peer
 * has acknowledged (tombstones among them are purged), and purge tombstones
 * older than tombstone_lifetime_ms whatever was acknowledged (0 = never). A
 * peer left behind the resulting log floor is reconciled at its next run.
 * Bounded work per call. */
void repl_housekeep(repl_t *r, uint64_t tombstone_lifetime_ms);

/* Most consecutive failed runs of any enabled rule on the link to peer
 * (sent or received): the link's health. */
uint32_t repl_link_failures(repl_t *r, const char *peer);

/* Per (peer, rule) state for status: called for every pair this node sends
 * on, and for pairs it receives on that have history. */
typedef struct repl_pair {
    const char *pr_peer;
    const rules_rule_t *pr_rule;
    const char *pr_role;      /* "sends" or "receives" */
    const char *pr_direction; /* "down" or "up" */
    const repl_mark_t *pr_mark;
    bool pr_running;
    uint64_t pr_next_ms; /* wall clock of the next scheduled run (sender) */
    int pr_next_mode;
    uint64_t pr_backlog; /* change-log entries not yet acknowledged */
    uint64_t pr_backlog_age_ms;
    uint64_t pr_progress_done, pr_progress_total;
} repl_pair_t;
typedef int (*repl_pair_cb)(void *ctx, const repl_pair_t *p);
int repl_pairs(repl_t *r, repl_pair_cb cb, void *ctx);

#endif
