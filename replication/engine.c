/*
 * engine.c - scheduling and the sending half of a replication run.
 *
 * Run states (r_run_t.state):
 *
 *   QUEUED --peer free--> STREAMING --scope exhausted, all ACKed--> ENDING
 *                            |   ^ ACK (commit watermark, pump)       |
 *                            |   +-------------------------------+    | DONE
 *                            +--timeout / link down / ABORT--> failed  v
 *                                                               succeeded
 *
 * All timeouts are checked in repl_tick.
 */
#include "replication/engine_int.h"

#include "store/epoch.h"
#include "topology/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define R_ACK_TIMEOUT_MS 20000
#define R_RETRY_MIN_MS 2000
#define R_RETRY_MAX_MS 60000
#define R_REQ_LIFE_MS (3600u * 1000u) /* a REQUEST waits this long for its run */
#define R_SCAN_CAP 262144             /* log entries examined per differential batch */

uint64_t repl_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t repl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void repl_log(repl_t *r, int level, const char *peer, const char *event, const char *fmt, ...)
{
    if (!r->io.io_log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->io.io_log(r->io.io_ctx, level, peer, event, msg);
}

void repl_summary_names(repl_summary_t *su, const char *peer, const char *rule, const char *why,
                        const char *error)
{
    snprintf(su->su_peer, sizeof(su->su_peer), "%s", peer ? peer : "");
    snprintf(su->su_rule, sizeof(su->su_rule), "%s", rule ? rule : "");
    snprintf(su->su_why, sizeof(su->su_why), "%s", why ? why : "");
    snprintf(su->su_error, sizeof(su->su_error), "%s", error ? error : "");
}

int repl_send_msg(repl_t *r, const char *peer, const repl_msg_t *m)
{
    store_mpw_reset(&r->w);
    int err = repl_msg_encode(m, &r->w);
    return err ? err : r->io.io_send(r->io.io_ctx, peer, r->w.mpw_buf, r->w.mpw_len);
}

unsigned repl_dir_from(repl_t *r, const char *peer)
{
    if (r->io.io_dir_from)
        return r->io.io_dir_from(r->io.io_ctx, peer);
    unsigned to = r->io.io_dir_to(r->io.io_ctx, peer);
    return to == RULES_DOWN ? RULES_UP : to == RULES_UP ? RULES_DOWN : 0;
}

rules_names_t repl_branch(repl_t *r, const char *peer)
{
    const char *const *names = NULL;
    size_t n = r->io.io_branch(r->io.io_ctx, peer, &names);
    rules_names_t rn = {n, names};
    return rn;
}

repl_t *repl_new(store_t *s, const repl_io_t *io)
{
    repl_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->store = s;
    r->io = *io;
    r->next_id = repl_now_ms() << 16; /* unique across restarts of this node */
    store_mpw_init(&r->w);
    store_mpw_init(&r->objs);
    return r;
}

/* The names rules_send_scope takes for run: its sender's branch, the
 * child's for a recovery, and for a standalone run the owners its
 * destination takes none of. */
static rules_names_t s_send_names(repl_t *r, const r_run_t *run)
{
    if (run->dir == RULES_SIDE) {
        rules_names_t n = {run->nside_skip, run->side_skip_ptrs};
        return n;
    }
    return repl_branch(r, run->mode == REPL_RECOVER ? run->peer : NULL);
}

static void s_run_free(repl_t *r, r_run_t *run)
{
    for (r_run_t **p = &r->runs; *p; p = &(*p)->next) {
        if (*p == run) {
            *p = run->next;
            break;
        }
    }
    store_txn_abort(&run->snap);
    free(run->leaves);
    free(run->seen);
    free(run->side_skip);
    free(run->side_skip_ptrs);
    free(run);
}

void repl_destroy(repl_t **rp)
{
    if (!rp || !*rp)
        return;
    repl_t *r = *rp;
    while (r->runs)
        s_run_free(r, r->runs);
    repl_recv_free_all(r);
    repl_ev_free_all(r);
    repl_push_free_all(r);
    repl_verify_free_all(r);
    while (r->reqs) {
        r_req_t *q = r->reqs;
        r->reqs = q->next;
        free(q);
    }
    store_mpw_free(&r->w);
    store_mpw_free(&r->objs);
    free(r);
    *rp = NULL;
}

static const char *s_dir_name(unsigned dir)
{
    if (dir == RULES_SIDE)
        return "standalone";
    return dir == RULES_UP ? "up" : "down";
}

/* ---- finishing a run ----------------------------------------------------- */

typedef struct s_finish {
    r_run_t *run;
    bool ok;
    const char *error;
    uint64_t now;
} s_finish_t;

static int s_finish_txn(store_txn_t *t, void *ctx)
{
    s_finish_t *f = ctx;
    r_run_t *run = f->run;
    repl_mark_t m;
    int err = run->mode == REPL_RECOVER ? HS_OK /* history only: no watermark moves */
                                        : repl_mark_get(t, run->peer, run->rule.ru_name, &m);
    if (err)
        return err;
    if (run->mode == REPL_RECOVER)
        goto history;
    /* refusals of this pair: a run that is ok without refusals sent them
     * again and they were taken; one that changed or deleted the object
     * since is no longer about it */
    store_guid_t rg[REPL_REFUSALS_MAX];
    repl_refusal_rec_t rr[REPL_REFUSALS_MAX];
    size_t nr = 0;
    err = repl_refusals_list(t, run->peer, run->rule.ru_name, rg, rr, REPL_REFUSALS_MAX, &nr);
    if (err)
        return err;
    for (size_t i = 0; i < nr && i < REPL_REFUSALS_MAX; i++) {
        bool covered = f->ok && !(run->mode == REPL_RECONCILE && run->vcount < REPL_BUCKETS);
        if (covered || !repl_refusal_outstanding(t, &rg[i], &rr[i])) {
            err = repl_refusal_del(t, run->peer, &rg[i]);
            if (err && err != HS_ENOTFOUND)
                return err;
        }
    }
    m.mk_last_run_ms = f->now;
    m.mk_last_mode = run->mode;
    m.mk_last_ok = f->ok;
    snprintf(m.mk_last_error, sizeof(m.mk_last_error), "%s", f->ok ? "" : f->error);
    if (f->ok) {
        m.mk_failures = 0;
        m.mk_last_diff_ms = f->now;
        /* the watermark now holds under both nodes' current epochs */
        snprintf(m.mk_own_epoch, sizeof(m.mk_own_epoch), "%s", run->own_epoch);
        snprintf(m.mk_peer_epoch, sizeof(m.mk_peer_epoch), "%s", run->peer_epoch);
        m.mk_peer_head = run->peer_head;
        if (run->mode == REPL_RECONCILE) {
            if (run->vcount < REPL_BUCKETS)
                m.mk_verify_next = (run->vfirst + run->vcount) % REPL_BUCKETS;
            else if (run->start_seq > m.mk_diff_seq)
                m.mk_diff_seq = run->start_seq; /* a full reconcile is as good as complete */
        }
        if (run->mode == REPL_COMPLETE) {
            if (run->start_seq > m.mk_diff_seq)
                m.mk_diff_seq = run->start_seq;
            m.mk_complete_active = false;
            memset(&m.mk_cursor, 0, sizeof(m.mk_cursor));
            m.mk_cursor_epoch_set = false;
            m.mk_cursor_epoch[0] = '\0';
            m.mk_last_complete_ms = f->now;
        }
    } else {
        m.mk_failures++;
    }
    err = repl_mark_put(t, run->peer, run->rule.ru_name, &m);
    if (err)
        return err;
history:;
    repl_hist_t h = {.h_when_ms = f->now,
                     .h_mode = run->mode,
                     .h_sent = run->sent,
                     .h_applied = run->applied,
                     .h_skipped = run->skipped,
                     .h_deleted = run->deleted,
                     .h_bytes = run->bytes,
                     .h_ms = repl_mono_ms() - run->started_ms,
                     .h_ok = f->ok};
    snprintf(h.h_peer, sizeof(h.h_peer), "%s", run->peer);
    snprintf(h.h_rule, sizeof(h.h_rule), "%s", run->rule.ru_name);
    snprintf(h.h_role, sizeof(h.h_role), "sent");
    snprintf(h.h_why, sizeof(h.h_why), "%s", run->why);
    snprintf(h.h_error, sizeof(h.h_error), "%s", f->ok ? "" : f->error);
    return repl_hist_add(t, &h);
}

static void s_start_queued(repl_t *r);

static void s_run_finish(repl_t *r, r_run_t *run, bool ok, const char *error)
{
    char refused[640];
    if (ok && run->refused) {
        /* a run the other side refused objects of is not ok: say which */
        char gs[STORE_GUID_STRLEN + 1] = "?";
        if (run->nrefusal)
            store_guid_format(&run->refusal[0].rf_guid, gs);
        snprintf(refused, sizeof(refused), "%s refused %llu object%s: %s: %.150s%s", run->peer,
                 (unsigned long long)run->refused, run->refused == 1 ? "" : "s", gs,
                 run->nrefusal ? run->refusal[0].rf_why : "no reason given",
                 run->refused > 1 ? " (and more: hsync trace GUID)" : "");
        ok = false;
        error = refused;
    }
    s_finish_t f = {run, ok, error ? error : "", repl_now_ms()};
    store_txn_abort(&run->snap); /* release the snapshot before writing */
    int err = store_write(r->store, s_finish_txn, &f);
    if (err)
        repl_log(r, REPL_LOG_ERROR, run->peer, "mark-failed", "could not record the run: %s",
                 hs_strerror(err));
    repl_log(r, ok ? REPL_LOG_INFO : REPL_LOG_WARN, run->peer, ok ? "run-done" : "run-failed",
             "rule %s %s %s (%s): sent %llu applied %llu skipped %llu deleted %llu, %llu bytes "
             "in %llu ms%s%s",
             run->rule.ru_name, s_dir_name(run->dir), repl_mode_name(run->mode), run->why,
             (unsigned long long)run->sent, (unsigned long long)run->applied,
             (unsigned long long)run->skipped, (unsigned long long)run->deleted,
             (unsigned long long)run->bytes, (unsigned long long)(repl_mono_ms() - run->started_ms),
             ok ? "" : ": ", ok ? "" : f.error);
    if (r->io.io_run_done) {
        repl_summary_t su = {.su_req = run->req,
                             .su_role = "sent",
                             .su_direction = s_dir_name(run->dir),
                             .su_mode = run->mode,
                             .su_sent = run->sent,
                             .su_applied = run->applied,
                             .su_skipped = run->skipped,
                             .su_deleted = run->deleted,
                             .su_bytes = run->bytes,
                             .su_ms = repl_mono_ms() - run->started_ms,
                             .su_ok = ok};
        repl_summary_names(&su, run->peer, run->rule.ru_name, run->why, ok ? "" : f.error);
        repl_run_done(r, &su);
    }
    s_run_free(r, run);
    s_start_queued(r);
}

/* ---- producing batches --------------------------------------------------- */

typedef struct s_fill {
    repl_t *r;
    r_run_t *run;
    rules_names_t mine;
    uint32_t nobj;
    size_t examined;
    bool full;
    store_txn_t *t;
    uint64_t last_seq;
    repl_key_t last_key;
} s_fill_t;

static bool s_batch_full(const s_fill_t *f)
{
    return f->nobj >= REPL_BATCH_OBJECTS || f->r->objs.mpw_len >= REPL_BATCH_BYTES;
}

/* Every entry after the cursor, superseded ones too: count it, move the
 * cursor past it, and decide the scope from what the entry says; the store
 * reads the object (and skips a superseded entry) only when in. */
static int s_fill_want(void *ctx, const store_change_t *c)
{
    s_fill_t *f = ctx;
    if (f->full || f->examined >= R_SCAN_CAP) {
        f->full = true;
        return 2;
    }
    if (f->run->side_bounded && c->seq > f->run->side_head)
        return 2; /* after the owners this run declared: the next run's */
    f->last_seq = c->seq;
    f->examined++;
    store_obj_t meta = {
        .guid = c->guid, .cls = c->cls, .owner = c->owner, .origin = c->origin, .flags = c->flags};
    return rules_send_scope(&f->run->rule, f->run->dir, &meta, &f->mine) ? 1 : 0;
}

static int s_fill_change(void *ctx, const store_change_t *c)
{
    s_fill_t *f = ctx;
    store_obj_t o;
    int err = store_get(f->t, &c->guid, &o);
    if (err == HS_OK && rules_send_scope(&f->run->rule, f->run->dir, &o, &f->mine) &&
        rules_target_member(f->t, &f->run->rule, &o)) {
        repl_obj_encode(&f->r->objs, &o);
        f->nobj++;
    } else if (err && err != HS_ENOTFOUND) {
        return err;
    }
    if (s_batch_full(f))
        f->full = true;
    return 0;
}

static int s_leaf_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Recovery (REPL_RECOVER): what the child could have sent up itself,
 * among the families scoped by owner: owned in its branch (mine here is the
 * child's branch as this node knows it). */
static bool s_recover_scope(const rules_rule_t *ru, const store_obj_t *o, const rules_names_t *mine)
{
    const rules_family_t *f = rules_family_of(o->cls);
    return f && f->fam_key == RULES_KEY_OWNER && rules_send_scope(ru, RULES_UP, o, mine);
}

static int s_fill_obj(void *ctx, const store_obj_t *o)
{
    s_fill_t *f = ctx;
    snprintf(f->last_key.k_cls, sizeof(f->last_key.k_cls), "%s", o->cls);
    f->last_key.k_guid = o->guid;
    f->last_key.k_set = true;
    f->examined++;
    r_run_t *run = f->run;
    if ((run->mode != REPL_RECONCILE ||
         repl_bucket_set_has(&run->plan, repl_bucket_of(&o->guid))) &&
        (run->mode == REPL_RECOVER ? s_recover_scope(&run->rule, o, &f->mine)
                                   : rules_send_scope(&run->rule, run->dir, o, &f->mine)) &&
        rules_target_member(f->t, &run->rule, o)) {
        bool same = false;
        if (run->leaves_mode && run->nleaves) {
            const uint8_t(*hit)[48] =
                bsearch(o->guid.b, run->leaves, run->nleaves, sizeof(*run->leaves), s_leaf_cmp);
            if (hit) {
                run->seen[hit - run->leaves] = 1;
                same = !memcmp(*hit + 16, o->hash, 32); /* the receiver has it as it is */
            }
        }
        if (!same) {
            repl_obj_encode(&f->r->objs, o);
            f->nobj++;
        }
    }
    if (s_batch_full(f) || f->examined >= R_SCAN_CAP) {
        f->full = true;
        return 1;
    }
    return 0;
}

/* Fill r->objs with the next batch of run. Returns HS_OK and sets
 * run->eof when the scope is exhausted. */
static int s_fill(repl_t *r, r_run_t *run, s_fill_t *f)
{
    memset(f, 0, sizeof(*f));
    f->r = r;
    f->run = run;
    f->mine = s_send_names(r, run);
    store_mpw_reset(&r->objs);
    int err;
    if (run->mode == REPL_DIFFERENTIAL) {
        err = store_txn_begin(r->store, false, &f->t);
        if (err)
            return err;
        f->last_seq = run->seq_cursor;
        err = store_log_scan_want(f->t, run->seq_cursor, s_fill_want, s_fill_change, f);
        store_txn_abort(&f->t);
        if (err)
            return err;
        run->eof = !f->full;
        return HS_OK;
    }
    f->t = run->snap;
    f->last_key = run->cursor;
    while (run->prefix_idx < run->rule.ru_nprefix) {
        const char *pre = run->prefixes[run->prefix_idx];
        bool resume = run->cursor.k_set && !strncmp(run->cursor.k_cls, pre, strlen(pre));
        /* a recovery carries the deletes too: the child takes a newer one
         * over the older live copy its restored store holds */
        err = store_scan(f->t, pre, NULL, run->mode == REPL_RECOVER ? STORE_SCAN_TOMBSTONES : 0,
                         resume ? run->cursor.k_cls : NULL, resume ? &run->cursor.k_guid : NULL,
                         s_fill_obj, f);
        if (err)
            return err;
        if (f->full)
            break;
        run->prefix_idx++;
        /* the next prefix starts at its beginning */
        if (f->last_key.k_set)
            run->cursor = f->last_key;
    }
    run->eof = !f->full;
    return HS_OK;
}

static int s_pump(repl_t *r, r_run_t *run)
{
    while (run->state == R_STREAMING && !run->eof && run->ninflight < REPL_WINDOW) {
        s_fill_t f;
        repl_key_t from = run->cursor;
        int err = s_fill(r, run, &f);
        if (err)
            return err;
        /* Nothing more to send: a complete run's END covers the rest; a
         * differential run still sends an empty batch when it examined log
         * entries, so their acknowledgement moves the watermark past them. */
        if (f.nobj == 0 && run->eof &&
            (run->mode == REPL_COMPLETE || f.last_seq == run->seq_cursor)) {
            /* the cursor moved past what was examined and not sent: END
             * must cover it, or the receiver keeps what we no longer have
             * there (a stale copy just after the last batch stayed forever) */
            if (run->mode != REPL_DIFFERENTIAL)
                run->cursor = from;
            break;
        }
        r_batch_t *b = &run->inflight[run->ninflight];
        b->b_no = ++run->next_no;
        b->b_nobj = f.nobj;
        if (run->mode == REPL_DIFFERENTIAL) {
            b->b_upto = f.last_seq;
            run->seq_cursor = f.last_seq;
        } else {
            b->b_last = f.last_key;
            run->cursor = f.last_key;
        }
        store_mpw_reset(&r->w);
        err = repl_batch_encode(&r->w, run->id, b->b_no, b->b_upto,
                                run->mode == REPL_COMPLETE ? &from : NULL,
                                run->mode == REPL_COMPLETE ? &b->b_last : NULL, f.nobj, &r->objs);
        if (!err)
            err = r->io.io_send(r->io.io_ctx, run->peer, r->w.mpw_buf, r->w.mpw_len);
        if (err)
            return err;
        if (run->ninflight == 0)
            run->last_ack_ms = repl_mono_ms();
        run->ninflight++;
        run->sent += f.nobj;
        run->bytes += r->w.mpw_len;
    }
    if (run->state == R_STREAMING && run->eof && run->leaves_mode && !run->drop_sent) {
        /* what the receiver holds in the planned buckets and we do not */
        size_t n = 0;
        for (size_t i = 0; i < run->nleaves; i++)
            n += !run->seen[i];
        uint8_t *list = n ? malloc(n * 16) : NULL;
        if (n && !list)
            return HS_ENOMEM;
        for (size_t i = 0, k = 0; i < run->nleaves; i++)
            if (!run->seen[i])
                memcpy(list + 16 * k++, run->leaves[i], 16);
        repl_msg_t dm = {.m_type = REPL_DROP, .m_run = run->id, .m_bin = list, .m_bin_len = n * 16};
        int err = n ? repl_send_msg(r, run->peer, &dm) : HS_OK;
        free(list);
        if (err)
            return err;
        if (n)
            run->bytes += r->w.mpw_len;
        run->drop_sent = true;
    }
    if (run->state == R_STREAMING && run->eof && run->ninflight == 0) {
        repl_msg_t m = {.m_type = REPL_END, .m_run = run->id, .m_no = run->next_no};
        if (run->mode == REPL_COMPLETE)
            m.m_from = run->cursor;
        int err = repl_send_msg(r, run->peer, &m);
        if (err)
            return err;
        run->bytes += r->w.mpw_len;
        run->state = R_ENDING;
        run->end_sent_ms = repl_mono_ms();
    }
    return HS_OK;
}

/* ---- starting runs ------------------------------------------------------- */

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

typedef struct s_count {
    r_run_t *run;
    rules_names_t mine;
    store_txn_t *t;
    uint64_t n, bytes;
} s_count_t;

static int s_count_obj(void *ctx, const store_obj_t *o)
{
    s_count_t *c = ctx;
    if (rules_send_scope(&c->run->rule, c->run->dir, o, &c->mine)) {
        c->n++;
        c->bytes +=
            40 + strlen(o->cls) + strlen(o->origin) + strlen(o->owner) + o->keys_len + o->body_len;
    }
    return 0;
}

static int s_count_want(void *ctx, const store_change_t *ch)
{
    s_count_t *c = ctx;
    return rules_carries(&c->run->rule, ch->cls) ? 1 : 0;
}

static int s_count_change(void *ctx, const store_change_t *ch)
{
    s_count_t *c = ctx;
    store_obj_t o;
    if (store_get(c->t, &ch->guid, &o) == HS_OK)
        s_count_obj(c, &o);
    return 0;
}

/* Objects (and estimated wire bytes) the run would send from its start. */
static int s_estimate(repl_t *r, r_run_t *run, store_txn_t *t, uint64_t *n, uint64_t *bytes)
{
    s_count_t c = {run, s_send_names(r, run), t, 0, 0};
    int err = HS_OK;
    if (run->mode == REPL_DIFFERENTIAL) {
        err = store_log_scan_want(t, run->seq_cursor, s_count_want, s_count_change, &c);
    } else {
        for (size_t i = 0; !err && i < run->rule.ru_nprefix; i++)
            err = store_scan(t, run->prefixes[i], NULL, 0, NULL, NULL, s_count_obj, &c);
    }
    *n = c.n;
    *bytes = c.bytes;
    return err;
}

static r_run_t *s_run_find_peer(repl_t *r, const char *peer, bool active_only)
{
    for (r_run_t *run = r->runs; run; run = run->next)
        if (!strcmp(run->peer, peer) && (!active_only || run->state != R_QUEUED))
            return run;
    return NULL;
}

/* Take the snapshot a complete or reconcile run streams from. */
static void s_snapshot(r_run_t *run, store_txn_t *t, const repl_mark_t *m)
{
    run->snap = t;
    run->prefix_idx = 0;
    memset(&run->cursor, 0, sizeof(run->cursor));
    if (run->mode == REPL_COMPLETE && m->mk_complete_active) {
        run->start_seq = m->mk_complete_start_seq;
        run->cursor = m->mk_cursor;
        for (; run->cursor.k_set && run->prefix_idx < run->rule.ru_nprefix; run->prefix_idx++) {
            const char *pre = run->prefixes[run->prefix_idx];
            if (!strncmp(run->cursor.k_cls, pre, strlen(pre)))
                break;
        }
        if (run->cursor.k_set)
            snprintf(run->why + strlen(run->why), sizeof(run->why) - strlen(run->why),
                     "; resuming after %s", run->cursor.k_cls);
    } else {
        run->start_seq = store_log_head(t);
    }
}

#define R_OWNERS_MAX 256

typedef struct s_owners {
    const rules_rule_t *rule;
    size_t n;
    char names[R_OWNERS_MAX][STORE_NAME_MAX + 1];
    const char *ptrs[R_OWNERS_MAX];
} s_owners_t;

static int s_owner_one(void *ctx, const char *cls, const char *owner, uint64_t count)
{
    s_owners_t *o = ctx;
    if (!count || !rules_carries(o->rule, cls))
        return 0;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->names[i], owner))
            return 0;
    if (o->n == R_OWNERS_MAX)
        return 0;
    snprintf(o->names[o->n], sizeof(o->names[0]), "%s", owner);
    o->ptrs[o->n] = o->names[o->n];
    o->n++;
    return 0;
}

static int s_send_open(repl_t *r, r_run_t *run)
{
    repl_msg_t om = {.m_type = REPL_OPEN,
                     .m_run = run->id,
                     .m_mode = run->mode,
                     .m_nprefix = run->rule.ru_nprefix,
                     .m_ndataclass = run->rule.ru_ndataclass,
                     .m_vfirst = run->vfirst,
                     .m_vcount = run->vcount};
    snprintf(om.m_rule, sizeof(om.m_rule), "%s", run->rule.ru_name);
    memcpy(om.m_prefix, run->prefixes, sizeof(om.m_prefix));
    memcpy(om.m_dataclass, run->rule.ru_dataclass, sizeof(om.m_dataclass));
    snprintf(om.m_why, sizeof(om.m_why), "%s", run->why);
    snprintf(om.m_token, sizeof(om.m_token), "%s", run->token);
    rules_names_t mine = repl_branch(r, NULL);
    s_owners_t ow = {.rule = &run->rule};
    if (run->dir == RULES_SIDE) {
        /* standalone: the owners of what this run carries, so that a
         * complete run removes at the destination only what came from here;
         * the destination takes no other owner's objects. A complete run
         * counts them in the snapshot it streams; a differential one in a
         * transaction whose log head bounds its scan (an owner new since
         * then goes with the next run, declared). */
        store_txn_t *t = run->snap;
        if (t || store_txn_begin(r->store, false, &t) == HS_OK) {
            store_counts(t, s_owner_one, &ow);
            if (run->mode == REPL_DIFFERENTIAL) {
                run->side_head = store_log_head(t);
                run->side_bounded = true;
            }
            if (t != run->snap)
                store_txn_abort(&t);
        }
        mine.rn_names = ow.ptrs;
        mine.rn_count = ow.n;
    }
    om.m_branch_names = mine.rn_names;
    om.m_nbranch = mine.rn_count;
    int err = repl_send_msg(r, run->peer, &om);
    if (!err)
        run->bytes += r->w.mpw_len;
    return err;
}

typedef struct s_total {
    const rules_rule_t *rule;
    uint64_t n;
} s_total_t;

static int s_total_one(void *ctx, const char *cls, const char *owner, uint64_t count)
{
    (void)owner;
    s_total_t *tt = ctx;
    if (rules_carries(tt->rule, cls))
        tt->n += count;
    return 0;
}

#define R_WHY_RESUME "an interrupted complete run resumes"
static int s_pick_mode(const rules_rule_t *ru, const repl_mark_t *m, uint64_t now, int asked,
                       char *why, size_t whylen);

static int s_open(repl_t *r, r_run_t *run)
{
    repl_mark_t m;
    store_txn_t *t;
    int err = store_txn_begin(r->store, false, &t);
    if (err)
        return err;
    err = repl_mark_get(t, run->peer, run->rule.ru_name, &m);
    if (!err && store_epoch_get(t, run->own_epoch) != HS_OK)
        run->own_epoch[0] = '\0';
    if (err) {
        store_txn_abort(&t);
        return err;
    }
    if (run->mode == REPL_COMPLETE && !m.mk_complete_active &&
        strstr(run->why, R_WHY_RESUME) != NULL) {
        /* queued to resume an interrupted complete run that has finished
         * meanwhile (another run of this pair resumed it): starting the
         * complete run over would send everything again; pick again */
        char why[REPL_WHY_MAX];
        run->mode = s_pick_mode(&run->rule, &m, repl_now_ms(), 0, why, sizeof(why));
        snprintf(run->why, sizeof(run->why), "%.160s (the interrupted run finished meanwhile)",
                 why);
    }
    if (run->mode == REPL_DIFFERENTIAL) {
        /* what the peer refused earlier and is unchanged since is sent again
         * (scan from just before it): the pair fails until it is taken */
        store_guid_t rg[REPL_REFUSALS_MAX];
        repl_refusal_rec_t rr[REPL_REFUSALS_MAX];
        size_t nr = 0;
        if (repl_refusals_list(t, run->peer, run->rule.ru_name, rg, rr, REPL_REFUSALS_MAX, &nr) ==
            HS_OK) {
            for (size_t i = 0; i < nr && i < REPL_REFUSALS_MAX; i++)
                if (rr[i].rr_seq && rr[i].rr_seq <= m.mk_diff_seq &&
                    repl_refusal_outstanding(t, &rg[i], &rr[i]))
                    m.mk_diff_seq = rr[i].rr_seq - 1;
        }
    }
    uint64_t floor = store_log_floor(t);
    if (run->mode == REPL_DIFFERENTIAL && m.mk_last_complete_ms && m.mk_diff_seq < floor) {
        /* the log no longer holds every change since the watermark */
        snprintf(run->why, sizeof(run->why),
                 "watermark seq %llu is below the change-log floor %llu (changes trimmed while "
                 "the peer was away)",
                 (unsigned long long)m.mk_diff_seq, (unsigned long long)floor);
        run->mode = REPL_RECONCILE;
        run->vfirst = 0;
        run->vcount = REPL_BUCKETS;
    }
    if (run->req) {
        /* progress for the command line waiting: a cheap upper bound (the
         * class counts, or the changes since the watermark), not a scan */
        s_total_t tt = {&run->rule, 0};
        if (run->mode == REPL_DIFFERENTIAL) {
            uint64_t head = store_log_head(t);
            tt.n = head > m.mk_diff_seq ? head - m.mk_diff_seq : 0;
        } else {
            store_counts(t, s_total_one, &tt);
        }
        run->total = tt.n;
    }
    if (run->mode != REPL_DIFFERENTIAL) {
        s_snapshot(run, t, &m); /* one consistent snapshot for the whole run */
    } else {
        run->seq_cursor = m.mk_diff_seq;
        store_txn_abort(&t);
    }
    run->state = R_OPENING;
    run->started_ms = run->last_ack_ms = repl_mono_ms();
    err = s_send_open(r, run);
    if (err)
        return err;
    repl_log(r, REPL_LOG_INFO, run->peer, "run-start", "rule %s %s %s: %s", run->rule.ru_name,
             s_dir_name(run->dir), repl_mode_name(run->mode), run->why);
    return HS_OK;
}

/* Why the watermark cannot be trusted any more, or NULL. */
static const char *s_mark_stale(const repl_mark_t *m, const r_run_t *run, const repl_msg_t *o)
{
    if (!m->mk_last_complete_ms)
        return NULL; /* no watermark at all: the run is complete anyway */
    if (m->mk_peer_epoch[0] && strcmp(m->mk_peer_epoch, o->m_epoch) != 0)
        return "the peer's store epoch changed since its watermark (restored or copied)";
    if (m->mk_peer_head && o->m_head < m->mk_peer_head && !strcmp(m->mk_peer_epoch, o->m_epoch))
        return "the peer's change log went backwards (restored from an older copy)";
    if (m->mk_own_epoch[0] && strcmp(m->mk_own_epoch, run->own_epoch) != 0)
        return "this node's store epoch changed since the watermark (restored or copied)";
    return NULL;
}

static r_run_t *s_run_by_id(repl_t *r, const char *peer, uint64_t id)
{
    for (r_run_t *run = r->runs; run; run = run->next)
        if (run->id == id && !strcmp(run->peer, peer))
            return run;
    return NULL;
}

/* The run an OPENED or LEAVES frame answers: one of ours to that peer that
 * is still opening. Anything else (a late answer to a run that ended, or a
 * forged id) is dropped with a log line naming it. */
static r_run_t *s_run_expect(repl_t *r, const char *peer, const repl_msg_t *m, const char *what)
{
    r_run_t *run = s_run_by_id(r, peer, m->m_run);
    if (!run || run->state != R_OPENING) {
        repl_log(r, REPL_LOG_INFO, peer, "stale-frame", "%s for run %llu, %s: dropped", what,
                 (unsigned long long)m->m_run, run ? "which is past opening" : "not a run of ours");
        return NULL;
    }
    return run;
}

/* A resumed complete run skips what the receiver acknowledged before the
 * interruption. If the receiver's store is not the one that acknowledged it
 * (restored from a backup or replaced meanwhile: a new epoch), that is gone:
 * start the complete run over from the first class. The batches' key ranges
 * make the receiver remove nothing it should keep either way. */
static void s_resume_check(repl_t *r, r_run_t *run, const repl_msg_t *m)
{
    repl_mark_t mk;
    store_txn_t *t;
    int err = store_txn_begin(r->store, false, &t);
    if (!err) {
        err = repl_mark_get(t, run->peer, run->rule.ru_name, &mk);
        store_txn_abort(&t);
    }
    /* the epoch that acknowledged the cursor; a mark written before it was
     * kept has the epoch of the last successful run, nearly as good; one
     * that cannot be read proves nothing, so start over (the safe side) */
    const char *was = err                      ? NULL
                      : mk.mk_cursor_epoch_set ? mk.mk_cursor_epoch
                      : mk.mk_peer_epoch[0]    ? mk.mk_peer_epoch
                                               : m->m_epoch;
    if (was && !strcmp(was, m->m_epoch))
        return;
    repl_log(r, REPL_LOG_WARN, run->peer, "resume-invalid",
             "rule %s: %s: starting the interrupted complete run over", run->rule.ru_name,
             err ? "the resume cursor cannot be checked"
                 : "the peer's store epoch changed since it acknowledged the resume cursor "
                   "(restored or replaced)");
    memset(&run->cursor, 0, sizeof(run->cursor));
    run->prefix_idx = 0;
    run->start_seq = store_log_head(run->snap); /* the whole snapshot goes now */
    snprintf(run->why + strlen(run->why), sizeof(run->why) - strlen(run->why),
             "; the peer's store changed since: starting over");
}

static void s_on_opened(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_run_t *run = s_run_expect(r, peer, m, "opened");
    if (!run)
        return;
    snprintf(run->peer_epoch, sizeof(run->peer_epoch), "%s", m->m_epoch);
    run->peer_head = m->m_head;
    run->last_ack_ms = repl_mono_ms();
    int err = HS_OK;
    if (run->dir == RULES_SIDE && m->m_branch) {
        /* the owners the destination takes none of: left out of the run */
        free(run->side_skip);
        free(run->side_skip_ptrs);
        run->side_skip_ptrs = NULL;
        run->nside_skip = 0;
        err = repl_branch_decode(m, &run->side_skip, &run->nside_skip);
        if (!err && !(run->side_skip_ptrs = malloc((run->nside_skip + 1) * sizeof(char *))))
            err = HS_ENOMEM;
        for (size_t i = 0; !err && i < run->nside_skip; i++)
            run->side_skip_ptrs[i] = run->side_skip[i];
        if (err) {
            s_run_finish(r, run, false, "bad OPENED from the destination");
            return;
        }
    }
    if (run->mode == REPL_COMPLETE && run->cursor.k_set)
        s_resume_check(r, run, m);
    if (run->mode == REPL_DIFFERENTIAL) {
        repl_mark_t mk;
        store_txn_t *t;
        err = store_txn_begin(r->store, false, &t);
        if (!err)
            err = repl_mark_get(t, run->peer, run->rule.ru_name, &mk);
        const char *stale = err ? NULL : s_mark_stale(&mk, run, m);
        if (stale) {
            /* the differential would trust a watermark that means nothing now */
            repl_log(r, REPL_LOG_WARN, peer, "watermark-invalid", "rule %s: %s: reconciling",
                     run->rule.ru_name, stale);
            snprintf(run->why, sizeof(run->why), "%s", stale);
            run->mode = REPL_RECONCILE;
            run->vfirst = 0;
            run->vcount = REPL_BUCKETS;
            s_snapshot(run, t, &mk);
            err = s_send_open(r, run); /* same run id: the peer switches mode */
            if (err)
                s_run_finish(r, run, false, hs_strerror(err));
            return;
        }
        store_txn_abort(&t);
    } else if (run->mode == REPL_RECONCILE) {
        repl_buckets_t *theirs = malloc(sizeof(*theirs)), *ours = malloc(sizeof(*ours));
        err = theirs && ours ? HS_OK : HS_ENOMEM;
        if (!err && (!m->m_bin || repl_buckets_decode(m->m_bin, m->m_bin_len, theirs)))
            err = HS_EPROTO;
        rules_names_t mine = s_send_names(r, run);
        if (!err)
            err = repl_buckets_compute(run->snap, &run->rule, run->dir, REPL_SIDE_SEND, &mine, ours,
                                       r->io.io_keepalive, r->io.io_ctx);
        if (!err) {
            run->differing = repl_buckets_diff(ours, theirs, run->vfirst, run->vcount, &run->plan);
            snprintf(run->why + strlen(run->why), sizeof(run->why) - strlen(run->why),
                     "; %llu of %u buckets differ", (unsigned long long)run->differing,
                     run->vcount);
            repl_msg_t pm = {.m_type = REPL_PLAN,
                             .m_run = run->id,
                             .m_bin = run->plan.bs_bits,
                             .m_bin_len = sizeof(run->plan.bs_bits)};
            err = repl_send_msg(r, peer, &pm);
            if (!err)
                run->bytes += r->w.mpw_len;
        }
        free(theirs);
        free(ours);
        if (!err && run->differing == 0)
            run->eof = true; /* nothing differs: straight to END */
        else if (!err)
            return; /* the receiver answers PLAN with LEAVES (s_on_leaves) */
    }
    if (!err) {
        run->state = R_STREAMING;
        err = s_pump(r, run);
    }
    if (err)
        s_run_finish(r, run, false, hs_strerror(err));
}

static int s_leaf_sort(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* The receiver's objects in the planned buckets: stream only what differs. */
static void s_on_leaves(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_run_t *run = s_run_expect(r, peer, m, "leaves");
    if (!run)
        return;
    if (run->mode != REPL_RECONCILE) {
        repl_log(r, REPL_LOG_INFO, peer, "stale-frame",
                 "leaves for run %llu, which is not a reconcile run: dropped",
                 (unsigned long long)m->m_run);
        return;
    }
    int err = HS_OK;
    if (m->m_bin) { /* nil: too many; fall back to sending whole buckets */
        size_t n = m->m_bin_len / 48;
        run->leaves = n ? malloc(n * 48) : NULL;
        run->seen = n ? calloc(n, 1) : NULL;
        if (n && (!run->leaves || !run->seen)) {
            err = HS_ENOMEM;
        } else {
            if (n) {
                memcpy(run->leaves, m->m_bin, n * 48);
                qsort(run->leaves, n, 48, s_leaf_sort);
            }
            run->nleaves = n;
            run->leaves_mode = true;
        }
    }
    run->last_ack_ms = repl_mono_ms();
    if (!err) {
        run->state = R_STREAMING;
        err = s_pump(r, run);
    }
    if (err)
        s_run_finish(r, run, false, hs_strerror(err));
}

/* Pick the mode a run should use now, and say why. */
static int s_pick_mode(const rules_rule_t *ru, const repl_mark_t *m, uint64_t now, int asked,
                       char *why, size_t whylen)
{
    if (ru->ru_always_complete) {
        snprintf(why, whylen, "rule '%s' always replicates complete sets", ru->ru_name);
        return REPL_COMPLETE;
    }
    if (m->mk_complete_active) {
        snprintf(why, whylen, R_WHY_RESUME);
        return REPL_COMPLETE;
    }
    if (m->mk_last_complete_ms == 0) {
        snprintf(why, whylen, "first run to this peer: no watermark yet");
        return REPL_COMPLETE;
    }
    if (asked == REPL_COMPLETE) {
        snprintf(why, whylen, "complete run requested");
        return REPL_COMPLETE;
    }
    if (asked == REPL_RECONCILE) {
        snprintf(why, whylen, "reconcile requested");
        return REPL_RECONCILE;
    }
    if (asked == 0 && ru->ru_complete_every_ms &&
        now >= m->mk_last_complete_ms + ru->ru_complete_every_ms) {
        snprintf(why, whylen, "complete schedule due");
        return REPL_COMPLETE;
    }
    snprintf(why, whylen, "changes after watermark seq %llu", (unsigned long long)m->mk_diff_seq);
    return REPL_DIFFERENTIAL;
}

static int s_queue(repl_t *r, const char *peer, const rules_rule_t *ru, unsigned dir, int mode,
                   const char *why, uint64_t req, const char *token, r_run_t **out)
{
    r_run_t *run = calloc(1, sizeof(*run));
    if (!run)
        return HS_ENOMEM;
    run->id = ++r->next_id;
    run->started_ms = repl_mono_ms(); /* again at open; a run failing before has a duration */
    run->req = req;
    snprintf(run->peer, sizeof(run->peer), "%s", peer);
    snprintf(run->token, sizeof(run->token), "%s", token ? token : "");
    run->rule = *ru;
    run->dir = dir;
    run->mode = mode;
    snprintf(run->why, sizeof(run->why), "%s", why);
    memcpy(run->prefixes, ru->ru_prefix, sizeof(run->prefixes));
    qsort(run->prefixes, ru->ru_nprefix, sizeof(run->prefixes[0]), s_cmp_str);
    run->state = R_QUEUED;
    run->vfirst = 0;
    run->vcount = REPL_BUCKETS;
    /* append: runs to one peer go in order */
    r_run_t **p = &r->runs;
    while (*p)
        p = &(*p)->next;
    *p = run;
    if (out)
        *out = run;
    return HS_OK;
}

/* Data verification: after a differential run of a rule with --verify p,
 * a reconcile over the next p% of buckets (rotating, so 100/p runs cover the
 * whole scope) finds and repairs objects that differ although no change said
 * so (a corrupted copy, a change that bypassed the log). */
static int s_queue_verify(repl_t *r, const char *peer, const rules_rule_t *ru, unsigned dir,
                          const repl_mark_t *m, uint64_t req)
{
    if (!ru->ru_verify_pct)
        return 0;
    uint32_t count = (uint32_t)((REPL_BUCKETS * ru->ru_verify_pct + 99) / 100);
    uint32_t first = m->mk_verify_next % REPL_BUCKETS;
    char why[REPL_WHY_MAX];
    snprintf(why, sizeof(why), "verification of buckets %u-%u (%u%% of the scope)", first,
             (first + count - 1) % REPL_BUCKETS, ru->ru_verify_pct);
    r_run_t *run = NULL;
    if (s_queue(r, peer, ru, dir, REPL_RECONCILE, why, req, NULL, &run))
        return 0;
    run->vfirst = first;
    run->vcount = count;
    return 1;
}

int repl_start(repl_t *r, const char *peer, const char *rule, int mode, bool dry_run, uint64_t req,
               size_t *queued)
{
    *queued = 0;
    unsigned dir = r->io.io_dir_to(r->io.io_ctx, peer);
    if (!dir)
        return HS_ENOTFOUND;
    store_txn_t *t;
    int err = store_txn_begin(r->store, false, &t);
    if (err)
        return err;
    rules_rule_t ru;
    repl_mark_t m;
    err = rules_get(t, rule, &ru);
    if (!err)
        err = repl_mark_get(t, peer, rule, &m);
    if (!err && (!(ru.ru_dirs & dir) || !rules_applies_to(&ru, peer)))
        err = HS_EDIRECTION;
    if (!err && !ru.ru_enabled)
        err = HS_EDISABLED;
    if (err) {
        store_txn_abort(&t);
        return err;
    }
    char why[REPL_WHY_MAX];
    int picked = s_pick_mode(&ru, &m, repl_now_ms(), mode, why, sizeof(why));
    if (dry_run) {
        r_run_t tmp = {.rule = ru, .dir = dir, .mode = picked, .seq_cursor = m.mk_diff_seq};
        memcpy(tmp.prefixes, ru.ru_prefix, sizeof(tmp.prefixes));
        uint64_t n = 0, bytes = 0;
        err = s_estimate(r, &tmp, t, &n, &bytes);
        store_txn_abort(&t);
        if (err)
            return err;
        *queued = 1;
        repl_summary_t su = {.su_req = req,
                             .su_role = "would send",
                             .su_direction = s_dir_name(dir),
                             .su_mode = picked,
                             .su_sent = n,
                             .su_ok = true,
                             .su_dry_run = true,
                             .su_estimate_bytes = bytes};
        repl_summary_names(&su, peer, rule, why, NULL);
        repl_run_done(r, &su);
        return HS_OK;
    }
    store_txn_abort(&t);
    err = s_queue(r, peer, &ru, dir, picked, why, req, NULL, NULL);
    if (err)
        return err;
    *queued = 1;
    if (picked == REPL_DIFFERENTIAL)
        *queued += (size_t)s_queue_verify(r, peer, &ru, dir, &m, req);
    return HS_OK;
}

static void s_send_request(repl_t *r, r_req_t *q)
{
    repl_msg_t m = {.m_type = REPL_REQUEST, .m_mode = q->mode};
    snprintf(m.m_rule, sizeof(m.m_rule), "%s", q->rule);
    snprintf(m.m_token, sizeof(m.m_token), "%s", q->token);
    q->sent = repl_send_msg(r, q->peer, &m) == HS_OK;
}

int repl_request(repl_t *r, const char *peer, const char *rule, int mode, uint64_t req)
{
    if (repl_dir_from(r, peer) == 0)
        return HS_ENOTFOUND;
    r_req_t *q = calloc(1, sizeof(*q));
    if (!q)
        return HS_ENOMEM;
    snprintf(q->peer, sizeof(q->peer), "%s", peer);
    snprintf(q->rule, sizeof(q->rule), "%s", rule);
    snprintf(q->token, sizeof(q->token), "q%llu", (unsigned long long)++r->next_id);
    q->req = req;
    q->deadline_ms = repl_mono_ms() + R_REQ_LIFE_MS;
    q->mode = mode;
    q->next = r->reqs;
    r->reqs = q;
    s_send_request(r, q); /* or at the next tick, if the link does not take it now */
    return HS_OK;
}

/* A peer asks us to send a rule now. */
static void s_on_request(repl_t *r, const char *peer, const repl_msg_t *m)
{
    unsigned dir = r->io.io_dir_to(r->io.io_ctx, peer);
    store_txn_t *t;
    rules_rule_t ru;
    repl_mark_t mk;
    const char *why = NULL;
    bool skip = false; /* disabled here: the requester skips the rule */
    int err = store_txn_begin(r->store, false, &t);
    if (!err) {
        err = rules_get(t, m->m_rule, &ru);
        if (!err)
            err = repl_mark_get(t, peer, m->m_rule, &mk);
        store_txn_abort(&t);
    }
    if (err == HS_ENOTFOUND)
        why = "no such rule on the sender";
    else if (err)
        why = hs_strerror(err);
    else if (!(ru.ru_dirs & dir) || !rules_applies_to(&ru, peer))
        why = "this rule does not replicate in that direction";
    else if ((skip = !ru.ru_enabled))
        why = REPL_WHY_DISABLED;
    if (why) {
        repl_msg_t refuse = {.m_type = REPL_REFUSE, .m_ok = skip};
        snprintf(refuse.m_token, sizeof(refuse.m_token), "%s", m->m_token);
        snprintf(refuse.m_why, sizeof(refuse.m_why), "rule '%s': %s", m->m_rule, why);
        repl_send_msg(r, peer, &refuse);
        return;
    }
    if (m->m_mode == REPL_RECOVER) {
        /* a restored child takes back what it owns before it reconciles */
        if (dir != RULES_DOWN || !(ru.ru_dirs & RULES_UP)) {
            repl_msg_t refuse = {.m_type = REPL_REFUSE};
            snprintf(refuse.m_token, sizeof(refuse.m_token), "%s", m->m_token);
            snprintf(refuse.m_why, sizeof(refuse.m_why),
                     "rule '%s': only a parent sends back a restored child's objects, for a rule "
                     "that carries them up",
                     m->m_rule);
            repl_send_msg(r, peer, &refuse);
            return;
        }
        char full[300];
        snprintf(full, sizeof(full),
                 "requested by %s: its store was restored from an older copy; what it owns goes "
                 "back to it",
                 peer);
        s_queue(r, peer, &ru, dir, REPL_RECOVER, full, 0, m->m_token, NULL);
        s_start_queued(r);
        return;
    }
    char mwhy[REPL_WHY_MAX];
    int mode = s_pick_mode(&ru, &mk, repl_now_ms(), m->m_mode, mwhy, sizeof(mwhy));
    char full[300];
    snprintf(full, sizeof(full), "requested by %s; %s", peer, mwhy);
    s_queue(r, peer, &ru, dir, mode, full, 0, m->m_token, NULL);
    if (mode == REPL_DIFFERENTIAL)
        s_queue_verify(r, peer, &ru, dir, &mk, 0);
    s_start_queued(r);
}

/* ---- acknowledgements ----------------------------------------------------- */

typedef struct s_ack {
    r_run_t *run;
    const r_batch_t *b;
    const repl_msg_t *m;
} s_ack_t;

static int s_ack_txn(store_txn_t *t, void *ctx)
{
    s_ack_t *a = ctx;
    /* what the peer refused is never taken as acknowledged (trace) */
    for (size_t i = 0; i < a->m->m_nrefusal; i++) {
        const repl_refusal_t *rf = &a->m->m_refusal[i];
        repl_refusal_rec_t rec = {.rr_at_ms = repl_now_ms()};
        store_obj_t o;
        if (store_get(t, &rf->rf_guid, &o) == HS_OK)
            rec.rr_seq = o.seq;
        snprintf(rec.rr_rule, sizeof(rec.rr_rule), "%s", a->run->rule.ru_name);
        snprintf(rec.rr_why, sizeof(rec.rr_why), "%s", rf->rf_why);
        int err = repl_refusal_put(t, a->run->peer, &rf->rf_guid, &rec);
        if (err)
            return err;
    }
    repl_mark_t m;
    int err = repl_mark_get(t, a->run->peer, a->run->rule.ru_name, &m);
    if (err)
        return err;
    if (a->run->mode == REPL_RECONCILE || a->run->mode == REPL_RECOVER) {
        return HS_OK; /* an interrupted reconcile starts over: it only moves differences */
    } else if (a->run->mode == REPL_DIFFERENTIAL) {
        m.mk_diff_seq = a->b->b_upto;
    } else {
        m.mk_complete_active = true;
        m.mk_complete_start_seq = a->run->start_seq;
        m.mk_cursor = a->b->b_last;
        /* the cursor holds only for the receiver's store as it is now: a
         * resumed run checks the epoch it finds against this one */
        m.mk_cursor_epoch_set = true;
        snprintf(m.mk_cursor_epoch, sizeof(m.mk_cursor_epoch), "%s", a->run->peer_epoch);
    }
    return repl_mark_put(t, a->run->peer, a->run->rule.ru_name, &m);
}

static void s_on_ack(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_run_t *run = s_run_by_id(r, peer, m->m_run);
    if (!run || run->ninflight == 0 || run->inflight[0].b_no != m->m_no) {
        repl_log(r, REPL_LOG_INFO, peer, "stale-frame",
                 "ack for run %llu batch %llu, not awaited: dropped", (unsigned long long)m->m_run,
                 (unsigned long long)m->m_no);
        return;
    }
    s_ack_t a = {run, &run->inflight[0], m};
    int err = store_write(r->store, s_ack_txn, &a);
    if (err) {
        s_run_finish(r, run, false, hs_strerror(err));
        return;
    }
    run->applied += m->m_applied;
    run->skipped += m->m_skipped;
    run->deleted += m->m_deleted;
    run->refused += m->m_refused;
    for (size_t i = 0; i < m->m_nrefusal && run->nrefusal < REPL_REFUSALS_MAX; i++)
        run->refusal[run->nrefusal++] = m->m_refusal[i];
    run->last_ack_ms = repl_mono_ms();
    memmove(run->inflight, run->inflight + 1, (run->ninflight - 1) * sizeof(run->inflight[0]));
    run->ninflight--;
    if (run->req && r->io.io_run_progress) {
        uint64_t acked = run->sent; /* objects in batches still in flight are not done */
        for (size_t i = 0; i < run->ninflight; i++)
            acked -= acked >= run->inflight[i].b_nobj ? run->inflight[i].b_nobj : acked;
        r->io.io_run_progress(r->io.io_ctx, run->req, run->peer, run->rule.ru_name, acked,
                              run->total > acked ? run->total : acked, run->bytes);
    }
    err = s_pump(r, run);
    if (err)
        s_run_finish(r, run, false, hs_strerror(err));
}

static void s_on_done(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_run_t *run = s_run_by_id(r, peer, m->m_run);
    if (!run) {
        repl_log(r, REPL_LOG_INFO, peer, "stale-frame",
                 "done for run %llu, not a run of ours: dropped", (unsigned long long)m->m_run);
        return;
    }
    if (m->m_ok && (run->state != R_ENDING || run->ninflight)) {
        /* a DONE before every batch was acknowledged would move the
         * watermark past what the peer never confirmed */
        s_run_finish(r, run, false, "the peer confirmed a run it had not received whole");
        return;
    }
    run->applied += m->m_applied;
    run->skipped += m->m_skipped;
    run->deleted += m->m_deleted;
    if (m->m_head)
        run->peer_head = m->m_head; /* the peer's head after our run: the rollback check */
    s_run_finish(r, run, m->m_ok, m->m_ok ? NULL : m->m_why);
}

static void s_on_abort(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_run_t *run = s_run_by_id(r, peer, m->m_run);
    if (run) {
        char why[REPL_WHY_MAX - 32];
        snprintf(why, sizeof(why), "the peer aborted the run: %.180s", m->m_why);
        s_run_finish(r, run, false, why);
        return;
    }
    repl_recv_abort(r, peer, m);
}

int repl_on_frame(repl_t *r, const char *peer, const void *buf, size_t len)
{
    int type;
    if (topo_frame_type(buf, len, &type))
        return HS_EMALF;
    if (type != REPL_BATCH)
        repl_group_flush(r); /* held batches first: every frame sees them applied */
    if (type == REPL_EVENT) {
        repl_ev_on_event(r, peer, buf, len);
        return HS_OK;
    }
    if (type == REPL_EVENT_ACK) {
        repl_ev_on_ack(r, peer, buf, len);
        return HS_OK;
    }
    if (repl_push_frame(r, peer, type, buf, len))
        return HS_OK;
    if (repl_verify_frame(r, peer, type, buf, len))
        return HS_OK;
    repl_msg_t m;
    int err = repl_msg_decode(buf, len, &m);
    if (err)
        return err;
    switch (m.m_type) {
    case REPL_OPEN:
        repl_recv_open(r, peer, &m);
        break;
    case REPL_BATCH:
        repl_recv_batch(r, peer, &m);
        break;
    case REPL_END:
        repl_recv_end(r, peer, &m);
        break;
    case REPL_ACK:
        s_on_ack(r, peer, &m);
        break;
    case REPL_DONE:
        s_on_done(r, peer, &m);
        break;
    case REPL_ABORT:
        s_on_abort(r, peer, &m);
        break;
    case REPL_REQUEST:
        s_on_request(r, peer, &m);
        break;
    case REPL_REFUSE:
        repl_recv_refuse(r, peer, &m);
        break;
    case REPL_OPENED:
        s_on_opened(r, peer, &m);
        break;
    case REPL_PLAN:
        repl_recv_plan(r, peer, &m);
        break;
    case REPL_LEAVES:
        s_on_leaves(r, peer, &m);
        break;
    case REPL_DROP:
        repl_recv_drop(r, peer, &m);
        break;
    }
    return HS_OK;
}

void repl_peer_down(repl_t *r, const char *peer)
{
    /* finishing a run would start the next queued one: hold that until the
     * loop is over (it may free the run saved as next) */
    bool was = r->starting;
    r->starting = true;
    for (r_run_t *run = r->runs, *next; run; run = next) {
        next = run->next;
        if (!strcmp(run->peer, peer) && run->state != R_QUEUED)
            s_run_finish(r, run, false, "the link went down");
    }
    r->starting = was;
    repl_recv_drop_peer(r, peer);
    repl_push_peer_down(r, peer);
    repl_verify_peer_down(r, peer);
}

/* ---- recovery after a restore --------------------------------------------- */

#define R_RECOVER_KEY "recover/"

static int s_recover_key(char *k, size_t cap, const char *rule)
{
    int n = snprintf(k, cap, R_RECOVER_KEY "%s", rule);
    return n < 0 || (size_t)n >= cap ? 0 : n;
}

/* Does rule ru carry a family scoped by owner up (what a restored node
 * takes back from its parent)? */
static bool s_recover_rule(const rules_rule_t *ru)
{
    if (!ru->ru_enabled || ru->ru_dirs == RULES_SIDE || !(ru->ru_dirs & RULES_UP))
        return false;
    for (size_t i = 0; i < ru->ru_nprefix; i++) {
        const rules_family_t *f = rules_family_of(ru->ru_prefix[i]);
        if (f && f->fam_key == RULES_KEY_OWNER && (f->fam_dirs & RULES_UP))
            return true;
    }
    return false;
}

/* Catch-up after a restore: down runs of a rule to the children wait until
 * a run of it from the parent has arrived (the restored store is older than
 * what the children hold: reconciling down first would delete there what
 * the parent sends back a moment later, and the children's tombstones would
 * then outrank it). The value: the wall-clock ms it was armed. */
#define R_CATCHUP_KEY "catchup/"

/* How long down runs wait for the parent's first run after a restore
 * before going ahead without it (the parent away). */
#define R_CATCHUP_WAIT_MS (10u * 60u * 1000u)

static int s_catchup_key(char *k, size_t cap, const char *rule)
{
    int n = snprintf(k, cap, R_CATCHUP_KEY "%s", rule);
    return n < 0 || (size_t)n >= cap ? 0 : n;
}

static int s_arm_rule(void *ctx, const rules_rule_t *ru)
{
    store_txn_t *t = ctx;
    char k[RULES_NAME_MAX + 16];
    if (ru->ru_enabled && ru->ru_dirs != RULES_SIDE && (ru->ru_dirs & RULES_DOWN) &&
        s_catchup_key(k, sizeof(k), ru->ru_name)) {
        char v[24];
        int n = snprintf(v, sizeof(v), "%llu", (unsigned long long)repl_now_ms());
        int err = store_kv_put(t, STORE_T_META, k, strlen(k), v, (size_t)n);
        if (err)
            return err;
    }
    if (!s_recover_rule(ru) || !s_recover_key(k, sizeof(k), ru->ru_name))
        return 0;
    return store_kv_put(t, STORE_T_META, k, strlen(k), "1", 1);
}

/* Remove meta key k; absent is fine (recover/ and catchup/ marks). */
static int s_mark_clear(store_txn_t *t, const char *k)
{
    int err = store_kv_del(t, STORE_T_META, k, strlen(k));
    return err == HS_ENOTFOUND ? HS_OK : err;
}

int repl_catchup_done(store_txn_t *t, const char *rule)
{
    char k[RULES_NAME_MAX + 16];
    return s_catchup_key(k, sizeof(k), rule) ? s_mark_clear(t, k) : HS_OK;
}

static int s_catchup_done_txn(store_txn_t *t, void *ctx)
{
    return repl_catchup_done(t, ctx);
}

/* A down run of a rule this node has not caught up on since its restore:
 * hold it (see R_CATCHUP_KEY), or give up waiting after R_CATCHUP_WAIT_MS. */
static bool s_catchup_wait(repl_t *r, const r_run_t *run)
{
    char k[RULES_NAME_MAX + 16];
    if (!s_catchup_key(k, sizeof(k), run->rule.ru_name))
        return false;
    store_txn_t *t;
    if (store_txn_begin(r->store, false, &t) != HS_OK)
        return false;
    const void *v;
    size_t vl;
    char buf[24] = "";
    bool pending = store_kv_get(t, STORE_T_META, k, strlen(k), &v, &vl) == HS_OK;
    if (pending && vl < sizeof(buf))
        memcpy(buf, v, vl);
    store_txn_abort(&t);
    if (!pending)
        return false;
    unsigned long long armed = strtoull(buf, NULL, 10);
    if (repl_now_ms() - armed < R_CATCHUP_WAIT_MS)
        return true;
    int err = store_write(r->store, s_catchup_done_txn, (void *)run->rule.ru_name);
    repl_log(r, REPL_LOG_WARN, run->peer, "catchup-timeout",
             "rule %s: no run from the parent since this node's store was restored, in %u "
             "minutes: reconciling toward the children without it%s%s",
             run->rule.ru_name, R_CATCHUP_WAIT_MS / 60000u, err ? "; could not record it: " : "",
             err ? hs_strerror(err) : "");
    return false;
}

int repl_recover_arm(store_txn_t *t)
{
    return rules_each(t, s_arm_rule, t);
}

int repl_recover_done(store_txn_t *t, const char *rule)
{
    char k[RULES_NAME_MAX + 16];
    return s_recover_key(k, sizeof(k), rule) ? s_mark_clear(t, k) : HS_OK;
}

static int s_recover_done_txn(store_txn_t *t, void *ctx)
{
    return repl_recover_done(t, ctx);
}

void repl_recover_give_up(repl_t *r, const char *peer, const char *rule, const char *why)
{
    int err = store_write(r->store, s_recover_done_txn, (void *)rule);
    repl_log(r, REPL_LOG_WARN, peer, "recover-refused",
             "rule %s: the parent did not send back this node's objects (%s)%s%s", rule, why,
             err ? "; could not record it: " : "; reconciling without them",
             err ? hs_strerror(err) : "");
}

/* How long a recovery request may go unanswered (no run of it arriving)
 * before the node reconciles without it (a parent too old to know the
 * request drops it). */
#define R_RECOVER_WAIT_MS (10u * 60u * 1000u)

/* An up run of a rule this node must first recover (its store was
 * restored): ask the parent for its objects back, once, and hold the run
 * until they are here. */
static bool s_recover_wait(repl_t *r, const r_run_t *run)
{
    char k[RULES_NAME_MAX + 16];
    if (!s_recover_key(k, sizeof(k), run->rule.ru_name))
        return false;
    store_txn_t *t;
    if (store_txn_begin(r->store, false, &t) != HS_OK)
        return false;
    const void *v;
    size_t vl;
    bool pending = store_kv_get(t, STORE_T_META, k, strlen(k), &v, &vl) == HS_OK;
    store_txn_abort(&t);
    if (!pending)
        return false;
    uint64_t mono = repl_mono_ms();
    for (r_req_t **p = &r->reqs; *p; p = &(*p)->next) {
        r_req_t *q = *p;
        if (q->mode != REPL_RECOVER || strcmp(q->peer, run->peer) != 0 ||
            strcmp(q->rule, run->rule.ru_name) != 0)
            continue;
        if (q->deadline_ms - R_REQ_LIFE_MS + R_RECOVER_WAIT_MS > mono)
            return true; /* asked already */
        for (r_recv_t *rv = r->recvs; rv; rv = rv->next)
            if (rv->mode == REPL_RECOVER && !strcmp(rv->peer, run->peer) &&
                !strcmp(rv->rule.ru_name, run->rule.ru_name))
                return true; /* arriving */
        *p = q->next;
        free(q);
        repl_recover_give_up(r, run->peer, run->rule.ru_name, "no answer in 10 minutes");
        return false;
    }
    if (repl_request(r, run->peer, run->rule.ru_name, REPL_RECOVER, 0) == HS_OK)
        repl_log(r, REPL_LOG_INFO, run->peer, "recover-start",
                 "rule %s: this node's store was restored from an older copy: taking back from "
                 "the parent what this node owns and lost, before reconciling",
                 run->rule.ru_name);
    return true;
}

/* Start queued runs whose peer is free and up. Called from the tick and
 * whenever a run ends, so runs to a peer follow each other without delay. */
static void s_start_queued(repl_t *r)
{
    if (r->starting)
        return; /* a run that fails to open finishes, which calls us again */
    r->starting = true;
    for (int again = 1; again;) {
        again = 0;
        for (r_run_t *run = r->runs; run; run = run->next) {
            if (run->state != R_QUEUED || s_run_find_peer(r, run->peer, true) ||
                run->not_before > repl_mono_ms() || !r->io.io_peer_up(r->io.io_ctx, run->peer))
                continue;
            if ((run->dir == RULES_UP && s_recover_wait(r, run)) ||
                (run->dir == RULES_DOWN && s_catchup_wait(r, run))) {
                run->not_before = repl_mono_ms() + 250;
                continue;
            }
            int err = s_open(r, run);
            if (err == HS_ETRANSPORT) {
                /* the link is up but does not take frames yet (the peer is
                 * reconnecting): stay queued and try again shortly */
                store_txn_abort(&run->snap);
                run->state = R_QUEUED;
                run->not_before = repl_mono_ms() + 500;
            } else if (err) {
                s_run_finish(r, run, false, hs_strerror(err));
            }
            again = 1; /* the list changed: look again from the start */
            break;
        }
    }
    r->starting = false;
}

/* ---- schedule ------------------------------------------------------------ */

typedef struct s_sched {
    repl_t *r;
    const char *peer;
    unsigned dir;
    store_txn_t *t;
    uint64_t now;
} s_sched_t;

static uint64_t s_retry_delay(uint32_t failures)
{
    uint64_t d = R_RETRY_MIN_MS;
    for (uint32_t i = 1; i < failures && d < R_RETRY_MAX_MS; i++)
        d *= 2;
    return d < R_RETRY_MAX_MS ? d : R_RETRY_MAX_MS;
}

/* When is the next run of ru to this peer due, and in which mode? */
static uint64_t s_next_due(const rules_rule_t *ru, const repl_mark_t *m, int *mode)
{
    if (m->mk_failures)
        return m->mk_last_run_ms + s_retry_delay(m->mk_failures);
    if (ru->ru_always_complete || m->mk_last_complete_ms == 0 || m->mk_complete_active) {
        *mode = REPL_COMPLETE;
        if (m->mk_last_complete_ms == 0 || m->mk_complete_active)
            return 0;
        return m->mk_last_complete_ms + ru->ru_every_ms;
    }
    uint64_t diff = m->mk_last_diff_ms + ru->ru_every_ms;
    uint64_t full =
        ru->ru_complete_every_ms ? m->mk_last_complete_ms + ru->ru_complete_every_ms : UINT64_MAX;
    *mode = full <= diff ? REPL_COMPLETE : REPL_DIFFERENTIAL;
    return full <= diff ? full : diff;
}

static int s_sched_rule(void *ctx, const rules_rule_t *ru)
{
    s_sched_t *s = ctx;
    if (!ru->ru_enabled || !(ru->ru_dirs & s->dir) || !rules_applies_to(ru, s->peer))
        return 0;
    for (r_run_t *run = s->r->runs; run; run = run->next)
        if (!strcmp(run->peer, s->peer) && !strcmp(run->rule.ru_name, ru->ru_name))
            return 0;
    repl_mark_t m;
    if (repl_mark_get(s->t, s->peer, ru->ru_name, &m))
        return 0;
    int mode = REPL_DIFFERENTIAL;
    if (s_next_due(ru, &m, &mode) > s->now)
        return 0;
    char why[REPL_WHY_MAX];
    int picked = s_pick_mode(ru, &m, s->now, 0, why, sizeof(why));
    char full[300];
    snprintf(full, sizeof(full), "%s%s",
             m.mk_failures ? "retry after failure; " : "schedule: ", why);
    s_queue(s->r, s->peer, ru, s->dir, picked, full, 0, NULL, NULL);
    if (picked == REPL_DIFFERENTIAL)
        s_queue_verify(s->r, s->peer, ru, s->dir, &m, 0);
    return 0;
}

void repl_tick(repl_t *r)
{
    uint64_t now = repl_now_ms(), mono = repl_mono_ms();
    /* timeouts (queued runs start after the loop: see repl_peer_down) */
    bool was = r->starting;
    r->starting = true;
    for (r_run_t *run = r->runs, *next; run; run = next) {
        next = run->next;
        if (run->state == R_STREAMING && run->ninflight &&
            mono > run->last_ack_ms + R_ACK_TIMEOUT_MS)
            s_run_finish(r, run, false, "the peer stopped acknowledging batches");
        else if (run->state == R_OPENING && mono > run->last_ack_ms + R_ACK_TIMEOUT_MS)
            s_run_finish(r, run, false, "the peer did not answer the start of the run");
        else if (run->state == R_ENDING && mono > run->end_sent_ms + R_ACK_TIMEOUT_MS)
            s_run_finish(r, run, false, "the peer did not confirm the end of the run");
    }
    r->starting = was;
    for (r_req_t *q = r->reqs; q; q = q->next)
        if (!q->sent && r->io.io_peer_up(r->io.io_ctx, q->peer))
            s_send_request(r, q);
    for (r_req_t **p = &r->reqs; *p;) {
        if ((*p)->deadline_ms < mono) {
            r_req_t *q = *p;
            *p = q->next;
            free(q);
        } else {
            p = &(*p)->next;
        }
    }
    repl_recv_expire(r, mono);
    /* schedules */
    const char *const *peers = NULL;
    size_t np = r->io.io_peers(r->io.io_ctx, &peers);
    store_txn_t *t;
    if (store_txn_begin(r->store, false, &t) == HS_OK) {
        for (size_t i = 0; i < np; i++) {
            if (!r->io.io_peer_up(r->io.io_ctx, peers[i]))
                continue;
            s_sched_t s = {r, peers[i], r->io.io_dir_to(r->io.io_ctx, peers[i]), t, now};
            if (s.dir)
                rules_each(t, s_sched_rule, &s);
        }
        store_txn_abort(&t);
    }
    s_start_queued(r);
    repl_events_pump(r);
    repl_push_tick(r);
    repl_verify_tick(r);
}

/* ---- status -------------------------------------------------------------- */

typedef struct s_pairs {
    repl_t *r;
    const char *peer;
    unsigned dir_to, dir_from;
    store_txn_t *t;
    repl_pair_cb cb;
    void *ctx;
    bool backlog; /* count the backlog (scans the log after each watermark) */
    int err;
} s_pairs_t;

/* Backlog: changes after the watermark that this rule would send, counted
 * up to R_BACKLOG_CAP (status shows the cap as a lower bound). */
#define R_BACKLOG_CAP 100000

typedef struct s_backlog {
    const rules_rule_t *rule;
    unsigned dir;
    rules_names_t mine;
    store_txn_t *t;
    uint64_t n, examined, oldest;
} s_backlog_t;

static int s_backlog_want(void *ctx, const store_change_t *c)
{
    s_backlog_t *b = ctx;
    if (++b->examined > R_BACKLOG_CAP)
        return 2;
    store_obj_t o = {
        .guid = c->guid, .cls = c->cls, .owner = c->owner, .origin = c->origin, .flags = c->flags};
    return rules_send_scope(b->rule, b->dir, &o, &b->mine) ? 1 : 0;
}

static int s_backlog_change(void *ctx, const store_change_t *c)
{
    s_backlog_t *b = ctx;
    if (!b->oldest || c->mtime < b->oldest)
        b->oldest = c->mtime;
    b->n++;
    return 0;
}

static int s_pair_rule(void *ctx, const rules_rule_t *ru)
{
    s_pairs_t *s = ctx;
    repl_mark_t m;
    if ((ru->ru_dirs & s->dir_to) && rules_applies_to(ru, s->peer)) {
        if (repl_mark_get(s->t, s->peer, ru->ru_name, &m))
            return 0;
        repl_pair_t p = {.pr_peer = s->peer,
                         .pr_rule = ru,
                         .pr_role = "sends",
                         .pr_direction = s_dir_name(s->dir_to),
                         .pr_mark = &m};
        for (r_run_t *run = s->r->runs; run; run = run->next) {
            if (!strcmp(run->peer, s->peer) && !strcmp(run->rule.ru_name, ru->ru_name) &&
                run->state != R_QUEUED) {
                p.pr_running = true;
                p.pr_progress_done = run->sent;
            }
        }
        int mode = REPL_DIFFERENTIAL;
        p.pr_next_ms = ru->ru_enabled ? s_next_due(ru, &m, &mode) : 0;
        p.pr_next_mode = mode;
        s_backlog_t bl = {.rule = ru, .dir = s->dir_to, .t = s->t};
        if (s->dir_to != RULES_SIDE) /* standalone: everything counts */
            bl.mine = repl_branch(s->r, NULL);
        if (ru->ru_enabled && s->backlog)
            store_log_scan_want(s->t, m.mk_diff_seq, s_backlog_want, s_backlog_change, &bl);
        p.pr_backlog = bl.n;
        if (bl.oldest && repl_now_ms() > bl.oldest)
            p.pr_backlog_age_ms = repl_now_ms() - bl.oldest;
        int r = s->cb(s->ctx, &p);
        if (r)
            return r;
    }
    if (ru->ru_dirs & s->dir_from) {
        char in[RULES_NAME_MAX + 4];
        snprintf(in, sizeof(in), "%s@in", ru->ru_name);
        if (repl_mark_get(s->t, s->peer, in, &m))
            return 0;
        repl_pair_t p = {.pr_peer = s->peer,
                         .pr_rule = ru,
                         .pr_role = "receives",
                         .pr_direction = s_dir_name(s->dir_from),
                         .pr_mark = &m};
        for (r_recv_t *rv = s->r->recvs; rv; rv = rv->next)
            if (!strcmp(rv->peer, s->peer) && !strcmp(rv->rule.ru_name, ru->ru_name))
                p.pr_running = true;
        return s->cb(s->ctx, &p);
    }
    return 0;
}

/* Every pair of every peer (only NULL) or of one peer; backlog: count it. */
static int s_pairs_walk(repl_t *r, const char *only, bool backlog, repl_pair_cb cb, void *ctx)
{
    const char *const *peers = NULL;
    size_t np = r->io.io_peers(r->io.io_ctx, &peers);
    /* copy: io_dir_to may reuse the names array */
    store_txn_t *t;
    int err = store_txn_begin(r->store, false, &t);
    if (err)
        return err;
    for (size_t i = 0; !err && i < np; i++) {
        char peer[STORE_NAME_MAX + 1];
        snprintf(peer, sizeof(peer), "%s", peers[i]);
        if (only && strcmp(peer, only) != 0)
            continue;
        s_pairs_t s = {
            r,       peer, r->io.io_dir_to(r->io.io_ctx, peer), repl_dir_from(r, peer), t, cb, ctx,
            backlog, 0};
        err = rules_each(t, s_pair_rule, &s);
        np = r->io.io_peers(r->io.io_ctx, &peers);
    }
    store_txn_abort(&t);
    return err;
}

int repl_pairs(repl_t *r, repl_pair_cb cb, void *ctx)
{
    return s_pairs_walk(r, NULL, true, cb, ctx);
}

typedef struct s_fail {
    const char *peer;
    uint32_t worst;
} s_fail_t;

static int s_fail_one(void *ctx, const repl_pair_t *p)
{
    s_fail_t *f = ctx;
    if (!strcmp(p->pr_peer, f->peer) && p->pr_rule->ru_enabled &&
        p->pr_mark->mk_failures > f->worst)
        f->worst = p->pr_mark->mk_failures;
    return 0;
}

uint32_t repl_link_failures(repl_t *r, const char *peer)
{
    /* every second per link: the marks only, not the backlog (a log scan per
     * rule and peer, which made the broker's tick grow with the log) */
    s_fail_t f = {peer, 0};
    s_pairs_walk(r, peer, false, s_fail_one, &f);
    return f.worst;
}

/* ---- retention ------------------------------------------------------------ */

typedef struct s_minw {
    repl_t *r;
    const char *peer;
    unsigned dir;
    store_txn_t *t;
    uint64_t min;
    bool any;
} s_minw_t;

static int s_minw_rule(void *ctx, const rules_rule_t *ru)
{
    s_minw_t *w = ctx;
    if (!(ru->ru_dirs & w->dir) || !rules_applies_to(ru, w->peer))
        return 0;
    repl_mark_t m;
    if (repl_mark_get(w->t, w->peer, ru->ru_name, &m) || !m.mk_last_complete_ms)
        return 0; /* no watermark: that peer gets a complete run anyway */
    if (!w->any || m.mk_diff_seq < w->min)
        w->min = m.mk_diff_seq;
    w->any = true;
    return 0;
}

typedef struct s_keep {
    uint64_t upto, cutoff;
    size_t trimmed, expired;
} s_keep_t;

/* Compaction of superseded change-log entries, at each housekeeping (every
 * ~5 s): passes of one write transaction each, looking at R_COMPACT_SCAN
 * entries and removing up to R_COMPACT_REMOVE, for up to R_COMPACT_BUDGET_MS
 * of the broker's loop. */
#define R_COMPACT_SCAN 16384
#define R_COMPACT_REMOVE 1024
#define R_COMPACT_BUDGET_MS 200
#define R_COMPACT_PASSES 64

typedef struct s_compact {
    uint64_t from, next; /* where the pass starts; where the next one goes on */
    uint64_t idle_head;  /* log head when the last complete sweep began */
    uint64_t head;       /* log head at this pass */
    size_t removed;
    bool idle;
} s_compact_t;

/* One pass. The cursor is a copy: a callback run again (map growth) starts
 * from the same place, and the broker keeps the result only once committed. */
static int s_compact_txn(store_txn_t *t, void *ctx)
{
    s_compact_t *c = ctx;
    c->head = store_log_head(t);
    c->next = c->from;
    c->removed = 0;
    c->idle = !c->from && c->head == c->idle_head; /* nothing written since */
    if (c->idle)
        return HS_OK;
    return store_log_compact(t, &c->next, R_COMPACT_SCAN, R_COMPACT_REMOVE, &c->removed);
}

static size_t s_compact(repl_t *r)
{
    size_t total = 0;
    uint64_t t0 = repl_mono_ms();
    for (int pass = 0; pass < R_COMPACT_PASSES && repl_mono_ms() - t0 < R_COMPACT_BUDGET_MS;
         pass++) {
        s_compact_t c = {.from = r->compact_from, .idle_head = r->compact_head};
        int err = store_write(r->store, s_compact_txn, &c);
        if (err) {
            repl_log(r, REPL_LOG_ERROR, NULL, "retention-failed", "compacting the change log: %s",
                     hs_strerror(err));
            break;
        }
        if (c.idle)
            break;
        if (!c.from) /* a sweep began: what is superseded after this is the next one's */
            r->compact_sweep = c.head;
        r->compact_from = c.next;
        if (!c.next) /* the sweep reached the end */
            r->compact_head = r->compact_sweep;
        total += c.removed;
    }
    return total;
}

static int s_keep_txn(store_txn_t *t, void *ctx)
{
    s_keep_t *k = ctx;
    int err = HS_OK;
    if (k->upto)
        err = store_log_trim(t, k->upto, 1024, &k->trimmed);
    if (!err && k->cutoff)
        err = store_tombstones_expire(t, k->cutoff, 1024, &k->expired);
    return err;
}

void repl_housekeep(repl_t *r, uint64_t tombstone_lifetime_ms)
{
    const char *const *peers = NULL;
    size_t np = r->io.io_peers(r->io.io_ctx, &peers);
    s_minw_t w = {.r = r};
    store_txn_t *t;
    if (store_txn_begin(r->store, false, &t))
        return;
    w.t = t;
    for (size_t i = 0; i < np; i++) {
        w.peer = peers[i];
        w.dir = r->io.io_dir_to(r->io.io_ctx, peers[i]);
        if (w.dir)
            rules_each(t, s_minw_rule, &w);
    }
    store_txn_abort(&t);
    s_keep_t k = {.upto = w.any ? w.min : 0};
    uint64_t now = repl_now_ms();
    if (tombstone_lifetime_ms && now > tombstone_lifetime_ms)
        k.cutoff = now - tombstone_lifetime_ms;
    int err = store_write(r->store, s_keep_txn, &k);
    if (err)
        repl_log(r, REPL_LOG_ERROR, NULL, "retention-failed", "trimming the change log: %s",
                 hs_strerror(err));
    else if (k.trimmed || k.expired)
        repl_log(r, REPL_LOG_INFO, NULL, "log-trimmed",
                 "removed %zu acknowledged change-log entries and %zu expired tombstones",
                 k.trimmed, k.expired);
    size_t compacted = s_compact(r);
    if (compacted)
        repl_log(r, REPL_LOG_DEBUG, NULL, "log-compacted",
                 "removed %zu superseded change-log entries", compacted);
}
