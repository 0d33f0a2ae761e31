/*
 * events.h - hierarchy events: critical changes that do not wait for a
 * schedule.
 *
 * An event has a 128-bit id, a kind, the node it was raised on (origin), a
 * creation time and a payload (a msgpack map). It is raised in the same
 * transaction as the change that caused it, and that transaction also puts
 * it in the outbox of every adjacent peer its kind travels to. The broker
 * sends outboxes at once (and again, with backoff, until acknowledged); a
 * receiver applies the event's effect, records it and queues it for its own
 * peers — all in one transaction — and only then acknowledges. Receivers
 * de-duplicate by id, so delivery is exactly-once in effect. Events travel
 * hop by hop; a child still learns nothing of its siblings but the events.
 *
 *   kind          travels                         effect where it arrives
 *   merge         everywhere but where it came    the same merge (rules_resource_merged)
 *   moved         everywhere but where it came    the resource's owner becomes `to`
 *                 (both: a node outside whose scope the new owner is drops its copy)
 *   purged        everywhere but where it came    the resource is deleted
 *   trust         up                              recorded (trust summaries)
 *   key           down                            recorded
 *   alert         up                              recorded
 *   sync-problem  up                              recorded
 *
 * Tables (STORE_T_EVENTS):
 *   "e" id(16)             -> [1, kind, origin, created_ms, payload(map),
 *                              from_peer ("" if raised here), seq, at_ms]
 *   "s" be64(seq) id(16)   -> ""               (newest last, for listing)
 *   "d" id(16) peer        -> [state, at_ms, attempts, error]  per-peer delivery
 *   "m" old(16)            -> new(16)          where a merged-away resource went
 *                                              (rules/resource.h)
 * STORE_T_OUTBOX:
 *   peer 0x00 be64(seq)    -> [id(16), attempts, last_sent_ms]
 */
#ifndef REPL_EVENTS_H
#define REPL_EVENTS_H

#include "store/mp.h"
#include "store/store.h"

enum repl_event_kind {
    REPL_EV_MERGE = 1,
    REPL_EV_MOVED = 2,
    REPL_EV_PURGED = 3,
    REPL_EV_TRUST = 4,
    REPL_EV_KEY = 5,
    REPL_EV_ALERT = 6,
    REPL_EV_SYNC_PROBLEM = 7,
};

/* delivery states */
enum repl_delivery { REPL_DL_QUEUED = 1, REPL_DL_SENT = 2, REPL_DL_ACKED = 3, REPL_DL_FAILED = 4 };

const char *repl_event_kind_name(int kind);
int repl_event_kind_parse(const char *name); /* 0 if unknown */
const char *repl_delivery_name(int state);

typedef struct repl_event {
    uint8_t ev_id[16];
    int ev_kind;
    char ev_origin[STORE_NAME_MAX + 1];
    uint64_t ev_created_ms;
    const uint8_t *ev_payload; /* msgpack map; borrowed */
    size_t ev_payload_len;
    char ev_from[STORE_NAME_MAX + 1]; /* the peer it came from; "" if raised here */
    uint64_t ev_seq;
    uint64_t ev_at_ms; /* when raised or received here */
} repl_event_t;

/*
 * Raise an event on this node (write txn): a new id, origin this node, and
 * an outbox entry for every adjacent peer its kind travels to. payload must
 * be a canonical msgpack map (store_body_check). Optional out_id receives
 * the id.
 */
int repl_event_raise(store_txn_t *t, int kind, const uint8_t *payload, size_t len,
                     uint8_t out_id[16]);

/*
 * Take an event that arrived from peer (write txn): if its id is known,
 * *dup is true and nothing changes; otherwise apply its effect, record it
 * and queue it for every other adjacent peer its kind travels to.
 * HS_EDIRECTION if its kind does not travel the way it came (a key change
 * from a child, an alert from the parent); HS_EMALF for a payload its effect
 * cannot use. Both are final: acknowledge and drop such an event.
 * note (notelen bytes, "" when nothing to say) receives a sentence for the
 * log when the effect dropped a local copy: a merge or move gave the
 * resource to a node outside this node's scope (neither below it nor an
 * ancestor), whose resources never come here.
 */
int repl_event_accept(store_txn_t *t, const char *peer, const repl_event_t *ev, bool *dup,
                      char *note, size_t notelen);

/* The peer acknowledged the event (write txn): outbox entry removed,
 * delivery recorded. Unknown entries are ignored. */
int repl_event_acked(store_txn_t *t, const char *peer, const uint8_t id[16], uint32_t attempts);

/* Record the delivery state of an event to peer (write txn), for
 * `hsync events`: sent (awaiting acknowledgement) or failed (error says
 * why; it is retried). Unknown events are ignored. */
int repl_event_delivery(store_txn_t *t, const char *peer, const uint8_t id[16], int state,
                        uint32_t attempts, const char *error);

/* Outbox of peer, oldest first: cb gets the outbox seq, the event and its
 * attempts and last send time. */
typedef int (*repl_outbox_cb)(void *ctx, uint64_t oseq, const repl_event_t *ev, uint32_t attempts,
                              uint64_t last_sent_ms);
int repl_outbox_each(store_txn_t *t, const char *peer, repl_outbox_cb cb, void *ctx);
/* Record a send attempt (write txn). */
int repl_outbox_sent(store_txn_t *t, const char *peer, uint64_t oseq, uint64_t now_ms);
/* Number of queued entries for peer. */
int repl_outbox_count(store_txn_t *t, const char *peer, uint64_t *n);

/* Events, newest first, with their per-peer delivery. */
typedef struct repl_delivery_rec {
    char dl_peer[STORE_NAME_MAX + 1];
    int dl_state;
    uint64_t dl_at_ms;
    uint32_t dl_attempts;
    char dl_error[96]; /* why the last attempt failed, or "" */
} repl_delivery_rec_t;
typedef int (*repl_event_cb)(void *ctx, const repl_event_t *ev, const repl_delivery_rec_t *dl,
                             size_t ndl);
int repl_events_each(store_txn_t *t, size_t limit, repl_event_cb cb, void *ctx);

/* Wire: EVENT [1,26, id, kind, origin, created_ms, payload] and
 * EVENT_ACK [1,27, id]. Decode is fed untrusted bytes (fuzzed). */
#define REPL_EVENT 26
#define REPL_EVENT_ACK 27
int repl_event_encode(const repl_event_t *ev, store_mpw_t *w);
int repl_event_decode(const void *buf, size_t len, repl_event_t *out);
int repl_event_ack_encode(const uint8_t id[16], store_mpw_t *w);
int repl_event_ack_decode(const void *buf, size_t len, uint8_t id[16]);

#endif
