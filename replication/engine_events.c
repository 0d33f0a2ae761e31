/*
 * engine_events.c - the urgent lane: sending outboxes, accepting events,
 * acknowledgements.
 *
 * Sending: repl_events_pump sends, for every peer that is up, each outbox
 * entry that is not in flight, and again every R_EV_RETRY_MS (doubling to
 * R_EV_RETRY_MAX_MS) until acknowledged. In-flight state is memory only: the
 * durable outbox entry is what makes an event go out again after a restart.
 *
 * Acknowledgements are applied in memory at once (no resend) and removed
 * from the durable outbox in one transaction per flush (repl_events_pump,
 * or when REPL_EV_ACK_BATCH are pending): a lost flush only means a resend,
 * which the receiver de-duplicates.
 */
#include "replication/engine_int.h"
#include "replication/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_EV_RETRY_MS 2000
#define R_EV_RETRY_MAX_MS 30000
#define R_EV_ACK_BATCH 256

static r_inflight_ev_t *s_find(repl_t *r, const char *peer, uint64_t oseq)
{
    for (r_inflight_ev_t *e = r->evs; e; e = e->next)
        if (e->oseq == oseq && !strcmp(e->peer, peer))
            return e;
    return NULL;
}

void repl_ev_free_all(repl_t *r)
{
    while (r->evs) {
        r_inflight_ev_t *e = r->evs;
        r->evs = e->next;
        free(e);
    }
}

typedef struct s_flush {
    repl_t *r;
} s_flush_t;

static int s_flush_txn(store_txn_t *t, void *ctx)
{
    s_flush_t *f = ctx;
    for (r_inflight_ev_t *e = f->r->evs; e; e = e->next) {
        int err = HS_OK;
        if (e->acked)
            err = repl_event_acked(t, e->peer, e->id, e->attempts);
        else if (e->state_dirty)
            err = repl_event_delivery(t, e->peer, e->id, e->state, e->attempts, e->error);
        if (err)
            return err;
    }
    return HS_OK;
}

static void s_flush_acks(repl_t *r)
{
    if (!r->nacked && !r->ndirty)
        return;
    s_flush_t f = {r};
    int err = store_write(r->store, s_flush_txn, &f);
    if (err) {
        repl_log(r, REPL_LOG_ERROR, NULL, "event-ack-failed",
                 "could not record event acknowledgements: %s", hs_strerror(err));
        return;
    }
    for (r_inflight_ev_t **p = &r->evs; *p;) {
        r_inflight_ev_t *e = *p;
        e->state_dirty = false;
        if (e->acked) {
            *p = e->next;
            free(e);
        } else {
            p = &e->next;
        }
    }
    r->nacked = 0;
    r->ndirty = 0;
}

typedef struct s_pump {
    repl_t *r;
    const char *peer;
    uint64_t now;
    size_t sent;
} s_pump_t;

static uint64_t s_backoff(uint32_t attempts)
{
    uint64_t d = R_EV_RETRY_MS;
    for (uint32_t i = 1; i < attempts && d < R_EV_RETRY_MAX_MS; i++)
        d *= 2;
    return d < R_EV_RETRY_MAX_MS ? d : R_EV_RETRY_MAX_MS;
}

static int s_pump_one(void *ctx, uint64_t oseq, const repl_event_t *ev, uint32_t attempts,
                      uint64_t last_sent_ms)
{
    (void)attempts;
    (void)last_sent_ms;
    s_pump_t *p = ctx;
    repl_t *r = p->r;
    r_inflight_ev_t *e = s_find(r, p->peer, oseq);
    if (e && (e->acked || p->now < e->sent_ms + s_backoff(e->attempts)))
        return 0;
    store_mpw_reset(&r->w);
    int err = repl_event_encode(ev, &r->w);
    if (!err)
        err = r->io.io_send(r->io.io_ctx, p->peer, r->w.mpw_buf, r->w.mpw_len);
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e)
            return HS_ENOMEM;
        snprintf(e->peer, sizeof(e->peer), "%s", p->peer);
        memcpy(e->id, ev->ev_id, 16);
        e->oseq = oseq;
        e->next = r->evs;
        r->evs = e;
    }
    e->sent_ms = p->now;
    e->attempts++;
    e->state = err ? REPL_DL_FAILED : REPL_DL_SENT;
    snprintf(e->error, sizeof(e->error), "%s",
             err ? "the link did not take the frame (peer away?); retried with backoff" : "");
    if (!e->state_dirty) {
        e->state_dirty = true;
        r->ndirty++;
    }
    if (err)
        return 1; /* the link is not taking frames now: try later */
    p->sent++;
    return 0;
}

void repl_events_pump(repl_t *r)
{
    s_flush_acks(r);
    const char *const *peers = NULL;
    size_t np = r->io.io_peers(r->io.io_ctx, &peers);
    char names[16][STORE_NAME_MAX + 1];
    if (np > 16)
        np = 16;
    for (size_t i = 0; i < np; i++)
        snprintf(names[i], sizeof(names[i]), "%s", peers[i]);
    store_txn_t *t;
    if (store_txn_begin(r->store, false, &t))
        return;
    uint64_t now = repl_mono_ms(); /* backoff: in memory, immune to clock steps */
    for (size_t i = 0; i < np; i++) {
        if (!r->io.io_peer_up(r->io.io_ctx, names[i]))
            continue;
        s_pump_t p = {r, names[i], now, 0};
        repl_outbox_each(t, names[i], s_pump_one, &p);
    }
    store_txn_abort(&t);
}

typedef struct s_accept {
    const char *peer;
    const repl_event_t *ev;
    bool dup;
    char note[400];
} s_accept_t;

static int s_accept_txn(store_txn_t *t, void *ctx)
{
    s_accept_t *a = ctx;
    return repl_event_accept(t, a->peer, a->ev, &a->dup, a->note, sizeof(a->note));
}

void repl_ev_on_event(repl_t *r, const char *peer, const void *buf, size_t len)
{
    repl_event_t ev;
    if (repl_event_decode(buf, len, &ev)) {
        repl_log(r, REPL_LOG_WARN, peer, "bad-frame", "rejected a malformed event (%zu bytes)",
                 len);
        return;
    }
    s_accept_t a = {peer, &ev, false, ""};
    unsigned from = repl_dir_from(r, peer);
    /* hierarchy events travel the hierarchy only: never from a standalone
     * source or destination (they would delete or move data everywhere) */
    int err = from == RULES_UP || from == RULES_DOWN ? store_write(r->store, s_accept_txn, &a)
                                                     : HS_EDIRECTION;
    if (err == HS_EDIRECTION || err == HS_EMALF || err == HS_EGUID || err == HS_EINVAL) {
        /* final: acknowledge, so the sender stops resending it */
        repl_log(r, REPL_LOG_WARN, peer, "event-refused", "refused a %s event from %s: %s",
                 repl_event_kind_name(ev.ev_kind), ev.ev_origin,
                 err == HS_EDIRECTION ? "its kind does not travel that way" : hs_strerror(err));
        a.dup = true;
        err = HS_OK;
    } else if (err) {
        /* not acknowledged: the sender sends it again later */
        repl_log(r, REPL_LOG_ERROR, peer, "event-failed", "could not apply a %s event: %s",
                 repl_event_kind_name(ev.ev_kind), hs_strerror(err));
        return;
    }
    store_mpw_reset(&r->w);
    if (repl_event_ack_encode(ev.ev_id, &r->w) == HS_OK)
        r->io.io_send(r->io.io_ctx, peer, r->w.mpw_buf, r->w.mpw_len);
    if (!a.dup) {
        repl_log(r, REPL_LOG_INFO, peer, "event-received", "%s event from %s",
                 repl_event_kind_name(ev.ev_kind), ev.ev_origin);
        if (a.note[0])
            repl_log(r, REPL_LOG_INFO, peer, "dropped", "%s", a.note);
        repl_events_pump(r); /* pass it on at once */
    }
}

void repl_ev_on_ack(repl_t *r, const char *peer, const void *buf, size_t len)
{
    uint8_t id[16];
    if (repl_event_ack_decode(buf, len, id))
        return;
    for (r_inflight_ev_t *e = r->evs; e; e = e->next) {
        if (!e->acked && !memcmp(e->id, id, 16) && !strcmp(e->peer, peer)) {
            e->acked = true;
            if (++r->nacked >= R_EV_ACK_BATCH)
                s_flush_acks(r);
            return;
        }
    }
}
