/*
 * receiver.c - the receiving half of a replication run.
 *
 * Stateless between batches by design (replication/proto.h): each BATCH is
 * applied in one write transaction through the family handlers of rules/,
 * and only then acknowledged. A complete run's batch also removes the
 * receiver's in-scope objects inside the batch's key range that the batch
 * does not carry.
 */
#include "replication/engine_int.h"

#include "store/epoch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_RECV_IDLE_MS (10u * 60u * 1000u) /* forget a run silent this long */

/* A batch held for a group commit (repl_group). */
struct r_pend {
    char peer[STORE_NAME_MAX + 1];
    repl_msg_t m; /* m_objs points at objs */
    uint8_t *objs;
};

static r_recv_t *s_find(repl_t *r, const char *peer, uint64_t run)
{
    for (r_recv_t *rv = r->recvs; rv; rv = rv->next)
        if (rv->run == run && !strcmp(rv->peer, peer))
            return rv;
    return NULL;
}

static void s_free(repl_t *r, r_recv_t *rv)
{
    for (r_recv_t **p = &r->recvs; *p; p = &(*p)->next) {
        if (*p == rv) {
            *p = rv->next;
            break;
        }
    }
    free(rv->got);
    free(rv->branch);
    free(rv->branch_ptrs);
    free(rv->skip);
    free(rv->skip_ptrs);
    free(rv);
}

void repl_recv_free_all(repl_t *r)
{
    while (r->recvs)
        s_free(r, r->recvs);
    for (size_t i = 0; i < r->npend; i++)
        free(r->pend[i].objs);
    free(r->pend);
    r->pend = NULL;
    r->npend = 0;
}

static void s_abort(repl_t *r, const char *peer, uint64_t run, const char *why)
{
    repl_msg_t m = {.m_type = REPL_ABORT, .m_run = run};
    snprintf(m.m_why, sizeof(m.m_why), "%s", why);
    repl_send_msg(r, peer, &m);
}

/* Record the received run (marks "<rule>@in" and history) and tell a
 * waiting requester. */
typedef struct s_rfin {
    r_recv_t *rv;
    bool ok;
    const char *error;
    uint64_t now;
} s_rfin_t;

static int s_rfin_txn(store_txn_t *t, void *ctx)
{
    s_rfin_t *f = ctx;
    r_recv_t *rv = f->rv;
    char in[RULES_NAME_MAX + 4];
    snprintf(in, sizeof(in), "%s@in", rv->rule.ru_name);
    repl_mark_t m;
    int err = repl_mark_get(t, rv->peer, in, &m);
    if (err)
        return err;
    m.mk_last_run_ms = f->now;
    m.mk_last_mode = rv->mode;
    m.mk_last_ok = f->ok;
    m.mk_failures = f->ok ? 0 : m.mk_failures + 1;
    snprintf(m.mk_last_error, sizeof(m.mk_last_error), "%s", f->ok ? "" : f->error);
    if (f->ok && rv->mode == REPL_COMPLETE)
        m.mk_last_complete_ms = f->now;
    if (f->ok && rv->mode == REPL_RECOVER && (err = repl_recover_done(t, rv->rule.ru_name)))
        return err;
    if (f->ok && rv->dir == RULES_DOWN && rv->mode != REPL_RECOVER &&
        (err = repl_catchup_done(t, rv->rule.ru_name)))
        return err;
    if (f->ok)
        m.mk_last_diff_ms = f->now;
    err = repl_mark_put(t, rv->peer, in, &m);
    if (err)
        return err;
    repl_hist_t h = {.h_when_ms = f->now,
                     .h_mode = rv->mode,
                     .h_sent = 0,
                     .h_applied = rv->applied,
                     .h_skipped = rv->skipped,
                     .h_deleted = rv->deleted,
                     .h_bytes = rv->bytes,
                     .h_ms = repl_mono_ms() - rv->started_ms,
                     .h_ok = f->ok};
    snprintf(h.h_peer, sizeof(h.h_peer), "%s", rv->peer);
    snprintf(h.h_rule, sizeof(h.h_rule), "%s", rv->rule.ru_name);
    snprintf(h.h_role, sizeof(h.h_role), "received");
    snprintf(h.h_why, sizeof(h.h_why), "%s", rv->why);
    snprintf(h.h_error, sizeof(h.h_error), "%s", f->ok ? "" : f->error);
    return repl_hist_add(t, &h);
}

static void s_finish(repl_t *r, r_recv_t *rv, bool ok, const char *error)
{
    char refused[400];
    if (ok && rv->refused) {
        /* a run this node refused objects in is not ok here either */
        snprintf(refused, sizeof(refused),
                 "refused %llu object%s from %s (the log's event=refused-objects names the "
                 "first; hsync trace GUID on %s says why)",
                 (unsigned long long)rv->refused, rv->refused == 1 ? "" : "s", rv->peer, rv->peer);
        ok = false;
        error = refused;
    }
    s_rfin_t f = {rv, ok, error ? error : "", repl_now_ms()};
    int err = store_write(r->store, s_rfin_txn, &f);
    if (err)
        repl_log(r, REPL_LOG_ERROR, rv->peer, "mark-failed", "could not record the run: %s",
                 hs_strerror(err));
    if (ok && rv->mode == REPL_RECOVER)
        repl_log(r, REPL_LOG_WARN, rv->peer, "recovered",
                 "rule %s: recovered %llu objects this node owns and had lost or held older (its "
                 "store was restored from an older copy); reconciling now",
                 rv->rule.ru_name, (unsigned long long)rv->applied);
    repl_log(r, ok ? REPL_LOG_INFO : REPL_LOG_WARN, rv->peer, ok ? "received" : "receive-failed",
             "rule %s %s (%s): applied %llu skipped %llu deleted %llu refused %llu%s%s",
             rv->rule.ru_name, repl_mode_name(rv->mode), rv->why, (unsigned long long)rv->applied,
             (unsigned long long)rv->skipped, (unsigned long long)rv->deleted,
             (unsigned long long)rv->refused, ok ? "" : ": ", ok ? "" : f.error);
    uint64_t req = 0;
    for (r_req_t **p = &r->reqs; *p; p = &(*p)->next) {
        if (rv->token[0] && !strcmp((*p)->token, rv->token)) {
            r_req_t *q = *p;
            req = q->req;
            *p = q->next;
            free(q);
            break;
        }
    }
    if (r->io.io_run_done) {
        repl_summary_t su = {.su_req = req,
                             .su_role = "received",
                             .su_direction = rv->dir == RULES_SIDE ? "standalone"
                                             : rv->dir == RULES_UP ? "up"
                                                                   : "down",
                             .su_mode = rv->mode,
                             .su_applied = rv->applied,
                             .su_skipped = rv->skipped,
                             .su_deleted = rv->deleted,
                             .su_bytes = rv->bytes,
                             .su_ms = repl_mono_ms() - rv->started_ms,
                             .su_ok = ok};
        repl_summary_names(&su, rv->peer, rv->rule.ru_name, rv->why, ok ? "" : f.error);
        repl_run_done(r, &su);
    }
    s_free(r, rv);
}

/* A standalone source dropped its copy of a resource that a merge or a move
 * gave to another branch: its delete names the new owner, which is not one
 * of the source's, but it removes the copy the source delivered here (owned
 * in its branch), which would otherwise stay forever. */
static bool s_side_drop(store_txn_t *t, const rules_rule_t *rule, unsigned dir,
                        const rules_names_t *branch, const store_obj_t *o)
{
    store_obj_t cur;
    return dir == RULES_SIDE && (o->flags & STORE_OBJ_TOMBSTONE) &&
           store_get(t, &o->guid, &cur) == HS_OK && !(cur.flags & STORE_OBJ_TOMBSTONE) &&
           !strcmp(cur.cls, o->cls) && rules_recv_scope(rule, dir, &cur, branch);
}

bool repl_recv_allowed(store_txn_t *t, const rules_rule_t *rule, unsigned dir,
                       const rules_names_t *branch, const store_obj_t *o, char *why, size_t whylen)
{
    const char *owner_or_origin = o->owner && *o->owner ? o->owner : o->origin;
    /* Only what the sender is responsible for may arrive: up, objects owned
     * in the sender's branch; down, nothing owned in ours ... */
    if (!rules_recv_scope(rule, dir, o, branch) && !s_side_drop(t, rule, dir, branch, o)) {
        if (whylen)
            snprintf(why, whylen,
                     "%s %s of %s, which is not the sender's to send this way (rule %s)",
                     o->cls[0] && strchr("aeiou", o->cls[0]) ? "an" : "a", o->cls, owner_or_origin,
                     rule->ru_name);
        return false;
    }
    /* ... and only over a local object that is the sender's too: a guid of
     * something else (our own policy, another branch's computer) is refused,
     * whatever the incoming copy claims to be. */
    store_obj_t cur;
    if (store_get(t, &o->guid, &cur) != HS_OK || (cur.flags & STORE_OBJ_TOMBSTONE))
        return true;
    const rules_family_t *fi = rules_family_of(o->cls), *fc = rules_family_of(cur.cls);
    if (fi != fc) {
        if (whylen)
            snprintf(why, whylen,
                     "it is %s %s here and arrived as %s %s: a guid's class cannot change "
                     "(give one of them a new guid)",
                     cur.cls[0] && strchr("aeiou", cur.cls[0]) ? "an" : "a", cur.cls,
                     o->cls[0] && strchr("aeiou", o->cls[0]) ? "an" : "a", o->cls);
        return false;
    }
    /* a claim on a resource of another branch (an agent moved): the
     * family's handler decides who owns it (rules/resource.h) */
    /* ... and a delete newer than the local copy of another branch: its
     * owner claimed the resource (the claim did not arrive before it) and
     * removed it; the most recent registration wins */
    if (rules_recv_scope(rule, dir, &cur, branch) ||
        (fi->fam_claims && dir != RULES_SIDE &&
         (!(o->flags & STORE_OBJ_TOMBSTONE) || o->mtime > cur.mtime)))
        return true;
    if (whylen)
        snprintf(why, whylen, "the %s here is %s's, which the sender may not overwrite", cur.cls,
                 cur.owner);
    return false;
}

int repl_apply_incoming(store_txn_t *t, unsigned dir, unsigned how, store_obj_t *o, int *outcome,
                        unsigned *raised)
{
    rules_ctx_t c = {.rc_dir = dir, .rc_how = how, .rc_self = store_node_name(store_txn_store(t))};
    rules_result_t res;
    rules_result_init(&res);
    int err = rules_apply(t, &c, o, &res);
    *outcome = res.rr_outcome;
    if (!err && res.rr_event) {
        int kind = repl_event_kind_parse(res.rr_event);
        err =
            kind ? repl_event_raise(t, kind, res.rr_payload, res.rr_payload_len, NULL) : HS_EINVAL;
        if (!err)
            (*raised)++;
    }
    rules_result_free(&res);
    return err;
}

/* Whose objects this run may bring: up, the sender's declared branch; down,
 * everything but our own branch. */
static rules_names_t s_recv_branch(repl_t *r, const r_recv_t *rv)
{
    if (rv->branch_ptrs) {
        rules_names_t n = {rv->nbranch, rv->branch_ptrs};
        return n;
    }
    return repl_branch(r, NULL);
}

/* ---- owners fed by standalone sources ------------------------------------ */

/* STORE_T_META "fed/<source>" -> msgpack array of the owner names that
 * source declared in its runs (at most R_FED_MAX). */
#define R_FED_MAX 1024

typedef char r_name_t[STORE_NAME_MAX + 1];

static int s_names_add(r_name_t **names, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*names)[i], name))
            return HS_OK;
    if (*n >= R_FED_MAX)
        return HS_OK;
    r_name_t *nn = realloc(*names, (*n + 1) * sizeof(**names));
    if (!nn)
        return HS_ENOMEM;
    *names = nn;
    snprintf(nn[*n], sizeof(nn[0]), "%s", name);
    (*n)++;
    return HS_OK;
}

static int s_fed_decode(const void *v, size_t vl, r_name_t **names, size_t *n)
{
    store_mpr_t rd;
    store_mpr_init(&rd, v, vl);
    uint32_t k = store_mpr_array(&rd);
    int err = HS_OK;
    for (uint32_t i = 0; i < k && !err && !store_mpr_error(&rd); i++) {
        char name[STORE_NAME_MAX + 1];
        store_mpr_str(&rd, name, sizeof(name));
        if (!store_mpr_error(&rd))
            err = s_names_add(names, n, name);
    }
    return err;
}

typedef struct s_fed {
    repl_t *r;
    const char *peer;
    r_name_t **names;
    size_t *n;
} s_fed_t;

static int s_fed_txn(store_txn_t *t, void *ctx)
{
    s_fed_t *f = ctx;
    char key[STORE_NAME_MAX + 8];
    int kl = snprintf(key, sizeof(key), "fed/%s", f->peer);
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_META, key, (size_t)kl, &v, &vl);
    if (!err)
        err = s_fed_decode(v, vl, f->names, f->n);
    else if (err == HS_ENOTFOUND)
        err = HS_OK;
    if (err)
        return err;
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, (uint32_t)*f->n);
    for (size_t i = 0; i < *f->n; i++)
        store_mpw_str(&w, (*f->names)[i]);
    err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_META, key, (size_t)kl, w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    return err;
}

/* The owners source peer declares now, plus those it declared before
 * (remembered in the same write). */
static int s_fed_merge(repl_t *r, const char *peer, r_name_t **names, size_t *n)
{
    s_fed_t f = {r, peer, names, n};
    return store_write(r->store, s_fed_txn, &f);
}

typedef struct s_fed_scan {
    r_name_t **names;
    size_t *n;
    int err;
} s_fed_scan_t;

static int s_fed_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k;
    (void)kl;
    s_fed_scan_t *sc = ctx;
    sc->err = s_fed_decode(v, vl, sc->names, sc->n);
    return sc->err ? sc->err : 0;
}

/* mine, then every owner any standalone source feeds us. */
static int s_fed_all(repl_t *r, const rules_names_t *mine, r_name_t **names, size_t *n)
{
    int err = HS_OK;
    for (size_t i = 0; !err && i < mine->rn_count; i++)
        err = s_names_add(names, n, mine->rn_names[i]);
    store_txn_t *t;
    if (!err)
        err = store_txn_begin(r->store, false, &t);
    if (!err) {
        s_fed_scan_t sc = {names, n, HS_OK};
        err = store_kv_scan(t, STORE_T_META, "fed/", 4, s_fed_one, &sc);
        store_txn_abort(&t);
    }
    return err;
}

/* ---- what each standalone rule delivered ---------------------------------- */

/* STORE_T_META "fo/<source>\0<rule>\0<guid(16)>" (value empty): object guid
 * arrived from standalone source <source> under its rule <rule>. A complete
 * run (or a reconcile) of that rule removes at most those objects: two
 * sources may feed the same owners (a parent holds its children's
 * resources), and a rule narrowed by a resource target carries only part of
 * them, so the owners a source declares cannot scope the removal alone. */
#define R_FO_KEY_MAX (3 + STORE_NAME_MAX + 1 + RULES_NAME_MAX + 1 + 16)

static size_t s_fo_key(uint8_t *k, const r_recv_t *rv, const store_guid_t *g)
{
    size_t ps = strlen(rv->peer), rl = strlen(rv->rule.ru_name);
    memcpy(k, "fo/", 3);
    memcpy(k + 3, rv->peer, ps + 1);
    memcpy(k + 4 + ps, rv->rule.ru_name, rl + 1);
    memcpy(k + 5 + ps + rl, g->b, 16);
    return 21 + ps + rl;
}

/* May run rv remove local object g? Hierarchy runs: yes (their scope
 * decides); standalone runs: only what that source's rule delivered. */
static bool s_delivered(store_txn_t *t, const r_recv_t *rv, const store_guid_t *g)
{
    if (rv->dir != RULES_SIDE)
        return true;
    uint8_t k[R_FO_KEY_MAX];
    const void *v;
    size_t vl;
    return store_kv_get(t, STORE_T_META, k, s_fo_key(k, rv, g), &v, &vl) == HS_OK;
}

/* Record (live) or forget (tombstone, removed) that rv's rule delivered g. */
static int s_delivered_set(store_txn_t *t, const r_recv_t *rv, const store_guid_t *g, bool live)
{
    if (rv->dir != RULES_SIDE)
        return HS_OK;
    uint8_t k[R_FO_KEY_MAX];
    size_t kl = s_fo_key(k, rv, g);
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_META, k, kl, &v, &vl);
    if (live && err == HS_ENOTFOUND)
        return store_kv_put(t, STORE_T_META, k, kl, "", 0);
    if (!live && err == HS_OK)
        return store_kv_del(t, STORE_T_META, k, kl);
    return err == HS_ENOTFOUND ? HS_OK : err;
}

int repl_recv_down_names(repl_t *r, r_names_t *out)
{
    out->v = NULL;
    out->n = 0;
    rules_names_t mine = repl_branch(r, NULL);
    int err = s_fed_all(r, &mine, &out->v, &out->n);
    if (err) {
        free(out->v);
        out->v = NULL;
        out->n = 0;
    }
    return err;
}

/* Answer OPEN: our epoch and head, and for a reconcile our bucket vector. */
static void s_opened(repl_t *r, const char *peer, r_recv_t *rv)
{
    repl_msg_t om = {.m_type = REPL_OPENED, .m_run = rv->run};
    if (rv->dir == RULES_SIDE && rv->skip_ptrs) {
        /* the declared owners this node takes none of: the source leaves
         * them out instead of sending what would be refused */
        om.m_branch_names = rv->skip_ptrs;
        om.m_nbranch = rv->nskip;
    }
    store_txn_t *t;
    int err = store_txn_begin(r->store, false, &t);
    if (err) {
        s_abort(r, peer, rv->run, hs_strerror(err));
        return;
    }
    if (store_epoch_get(t, om.m_epoch) != HS_OK)
        om.m_epoch[0] = '\0';
    om.m_head = store_log_head(t);
    uint8_t *wire = NULL;
    if (rv->mode == REPL_RECONCILE) {
        repl_buckets_t *b = malloc(sizeof(*b));
        wire = malloc(REPL_BUCKETS_WIRE);
        rules_names_t branch = s_recv_branch(r, rv);
        err = b && wire ? repl_buckets_compute(t, &rv->rule, rv->dir, REPL_SIDE_RECV, &branch, b,
                                               r->io.io_keepalive, r->io.io_ctx)
                        : HS_ENOMEM;
        if (!err) {
            repl_buckets_encode(b, wire);
            om.m_bin = wire;
            om.m_bin_len = REPL_BUCKETS_WIRE;
        }
        free(b);
    }
    store_txn_abort(&t);
    if (err)
        s_abort(r, peer, rv->run, hs_strerror(err));
    else
        repl_send_msg(r, peer, &om);
    free(wire);
}

void repl_recv_open(repl_t *r, const char *peer, const repl_msg_t *m)
{
    unsigned dir = repl_dir_from(r, peer);
    if (!dir) {
        s_abort(r, peer, m->m_run, "not linked to this node");
        return;
    }
    if (m->m_mode == REPL_RECOVER && dir != RULES_DOWN) {
        s_abort(r, peer, m->m_run, "a recovery run comes from the parent only");
        return;
    }
    r_recv_t *same = s_find(r, peer, m->m_run);
    if (same) { /* the sender switched the run's mode (to reconcile) */
        same->mode = m->m_mode;
        snprintf(same->why, sizeof(same->why), "%s", m->m_why);
        s_opened(r, peer, same);
        return;
    }
    /* A new run from the same peer and rule supersedes an unfinished one. */
    for (r_recv_t *rv = r->recvs, *next; rv; rv = next) {
        next = rv->next;
        if (!strcmp(rv->peer, peer) && !strcmp(rv->rule.ru_name, m->m_rule))
            s_finish(r, rv, false, "superseded by a new run from the sender");
    }
    r_recv_t *rv = calloc(1, sizeof(*rv));
    if (!rv) {
        s_abort(r, peer, m->m_run, "out of memory");
        return;
    }
    snprintf(rv->peer, sizeof(rv->peer), "%s", peer);
    rv->run = m->m_run;
    snprintf(rv->rule.ru_name, sizeof(rv->rule.ru_name), "%s", m->m_rule);
    memcpy(rv->rule.ru_prefix, m->m_prefix, sizeof(rv->rule.ru_prefix));
    rv->rule.ru_nprefix = m->m_nprefix;
    memcpy(rv->rule.ru_dataclass, m->m_dataclass, sizeof(rv->rule.ru_dataclass));
    rv->rule.ru_ndataclass = m->m_ndataclass;
    rv->rule.ru_dirs = dir;
    rv->dir = dir;
    rv->mode = m->m_mode;
    snprintf(rv->why, sizeof(rv->why), "%s", m->m_why);
    snprintf(rv->token, sizeof(rv->token), "%s", m->m_token);
    rv->started_ms = rv->last_ms = repl_mono_ms();
    {
        /* up: the child's branch as it declares it (it may know of nodes
         * below it that we have not heard of yet), unless it claims nodes
         * that we know to be elsewhere; standalone: the owners of what the
         * source carries, never this node (a source cannot remove our own) */
        const char *bad = NULL;
        int err = dir == RULES_DOWN ? HS_OK : repl_branch_decode(m, &rv->branch, &rv->nbranch);
        if (!err && dir == RULES_UP && (rv->nbranch == 0 || strcmp(rv->branch[0], peer) != 0))
            err = HS_EPROTO;
        if (!err && dir == RULES_SIDE) {
            /* never a node of our own hierarchy (this node, its ancestors,
             * its subtree): a source must not overwrite or remove what the
             * hierarchy keeps here */
            const char *self = store_node_name(r->store);
            size_t keep = 0;
            for (size_t i = 0; !err && i < rv->nbranch; i++)
                if (strcmp(rv->branch[i], self) != 0 &&
                    !(r->io.io_elsewhere && r->io.io_elsewhere(r->io.io_ctx, peer, rv->branch[i])))
                    memmove(rv->branch[keep++], rv->branch[i], sizeof(rv->branch[0]));
                else
                    err = s_names_add(&rv->skip, &rv->nskip, rv->branch[i]);
            rv->nbranch = keep;
            if (!err && !(rv->skip_ptrs = malloc((rv->nskip + 1) * sizeof(char *))))
                err = HS_ENOMEM;
            for (size_t i = 0; !err && i < rv->nskip; i++)
                rv->skip_ptrs[i] = rv->skip[i];
            /* plus every owner it declared before (an owner whose last object
             * it deleted is no longer counted, but its deletes must arrive) */
            err = s_fed_merge(r, peer, &rv->branch, &rv->nbranch);
        }
        if (!err && dir == RULES_DOWN && m->m_mode == REPL_RECOVER) {
            /* a recovery brings back only what is owned in our branch */
            rules_names_t mine = repl_branch(r, NULL);
            for (size_t i = 0; !err && i < mine.rn_count; i++)
                err = s_names_add(&rv->branch, &rv->nbranch, mine.rn_names[i]);
        } else if (!err && dir == RULES_DOWN) {
            /* ours, and what standalone sources feed us: neither is the
             * parent's to overwrite or remove */
            rules_names_t mine = repl_branch(r, NULL);
            err = s_fed_all(r, &mine, &rv->branch, &rv->nbranch);
        }
        for (size_t i = 0; !err && dir == RULES_UP && i < rv->nbranch && !bad; i++)
            if (r->io.io_elsewhere && r->io.io_elsewhere(r->io.io_ctx, peer, rv->branch[i]))
                bad = rv->branch[i];
        if (!err && !bad && !(rv->branch_ptrs = malloc((rv->nbranch + 1) * sizeof(char *))))
            err = HS_ENOMEM;
        if (err || bad) {
            char why[REPL_WHY_MAX];
            if (bad)
                snprintf(why, sizeof(why),
                         "the sender claims node '%s', which is elsewhere in "
                         "the hierarchy",
                         bad);
            else
                snprintf(why, sizeof(why), "bad branch in OPEN: %s", hs_strerror(err));
            repl_log(r, REPL_LOG_WARN, peer, "run-refused", "%s", why);
            s_abort(r, peer, m->m_run, why);
            /* recorded as a failed receive: status and history show the
             * refusal here, not only on the sender */
            s_finish(r, rv, false, why);
            return;
        }
        for (size_t i = 0; i < rv->nbranch; i++)
            rv->branch_ptrs[i] = rv->branch[i];
    }
    rv->next = r->recvs;
    r->recvs = rv;
    s_opened(r, peer, rv);
}

void repl_branch_left(repl_t *r, const char *name)
{
    for (r_recv_t *rv = r->recvs; rv; rv = rv->next) {
        if (rv->dir != RULES_UP || !rv->branch)
            continue;
        size_t keep = 0;
        for (size_t i = 0; i < rv->nbranch; i++)
            if (strcmp(rv->branch[i], name) != 0)
                memmove(rv->branch[keep++], rv->branch[i], sizeof(rv->branch[0]));
        rv->nbranch = keep;
        for (size_t i = 0; i < rv->nbranch; i++)
            rv->branch_ptrs[i] = rv->branch[i];
    }
}

typedef struct s_leaves {
    r_recv_t *rv;
    store_txn_t *t;
    rules_names_t branch;
    uint8_t *buf;
    size_t n, cap;
    bool overflow;
} s_leaves_t;

static int s_leaf_one(void *ctx, const store_obj_t *o)
{
    s_leaves_t *lv = ctx;
    if (!repl_bucket_set_has(&lv->rv->plan, repl_bucket_of(&o->guid)) ||
        !rules_recv_scope(&lv->rv->rule, lv->rv->dir, o, &lv->branch) ||
        !s_delivered(lv->t, lv->rv, &o->guid))
        return 0;
    if (lv->n == REPL_LEAVES_MAX) {
        lv->overflow = true;
        return 1;
    }
    if (lv->n == lv->cap) {
        size_t cap = lv->cap ? lv->cap * 2 : 1024;
        uint8_t *b = realloc(lv->buf, cap * 48);
        if (!b)
            return HS_ENOMEM;
        lv->buf = b;
        lv->cap = cap;
    }
    memcpy(lv->buf + 48 * lv->n, o->guid.b, 16);
    memcpy(lv->buf + 48 * lv->n + 16, o->hash, 32);
    lv->n++;
    return 0;
}

void repl_recv_plan(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_recv_t *rv = s_find(r, peer, m->m_run);
    if (!rv || rv->mode != REPL_RECONCILE || !m->m_bin ||
        m->m_bin_len != sizeof(rv->plan.bs_bits)) {
        s_abort(r, peer, m->m_run, "unexpected or malformed reconcile plan");
        return;
    }
    memcpy(rv->plan.bs_bits, m->m_bin, m->m_bin_len);
    rv->have_plan = true;
    /* answer with our objects in those buckets, so the sender moves only
     * what differs */
    s_leaves_t lv = {.rv = rv, .branch = s_recv_branch(r, rv)};
    store_txn_t *t;
    int err = store_txn_begin(r->store, false, &t);
    lv.t = t;
    for (size_t i = 0; !err && i < rv->rule.ru_nprefix && !lv.overflow; i++)
        err = store_scan(t, rv->rule.ru_prefix[i], NULL, 0, NULL, NULL, s_leaf_one, &lv);
    if (t)
        store_txn_abort(&t);
    if (err) {
        free(lv.buf);
        s_abort(r, peer, m->m_run, hs_strerror(err));
        return;
    }
    repl_msg_t lm = {.m_type = REPL_LEAVES, .m_run = rv->run};
    if (!lv.overflow) {
        lm.m_bin = lv.buf ? lv.buf : (const uint8_t *)"";
        lm.m_bin_len = lv.n * 48;
        rv->leaves_mode = true;
    }
    repl_send_msg(r, peer, &lm);
    free(lv.buf);
}

typedef struct s_drop {
    r_recv_t *rv;
    const uint8_t *list;
    size_t n;
    rules_names_t branch;
    uint64_t deleted;
} s_drop_t;

static int s_drop_txn(store_txn_t *t, void *ctx)
{
    s_drop_t *d = ctx;
    d->deleted = 0;
    for (size_t i = 0; i < d->n; i++) {
        store_guid_t g;
        memcpy(g.b, d->list + 16 * i, 16);
        store_obj_t o;
        int err = store_get(t, &g, &o);
        if (err == HS_ENOTFOUND || (!err && (o.flags & STORE_OBJ_TOMBSTONE)))
            continue;
        if (err)
            return err;
        /* only what this run may remove: in the rule's scope, in a planned bucket */
        if (!repl_bucket_set_has(&d->rv->plan, repl_bucket_of(&g)) ||
            !rules_recv_scope(&d->rv->rule, d->rv->dir, &o, &d->branch) ||
            !s_delivered(t, d->rv, &g))
            continue;
        err = store_delete(t, &g, 0);
        if (err && err != HS_ENOTFOUND)
            return err;
        d->deleted += !err;
        if ((err = s_delivered_set(t, d->rv, &g, false)))
            return err;
    }
    return HS_OK;
}

void repl_recv_drop(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_recv_t *rv = s_find(r, peer, m->m_run);
    if (!rv || !rv->have_plan || !m->m_bin) {
        s_abort(r, peer, m->m_run, "unexpected drop list");
        return;
    }
    s_drop_t d = {rv, m->m_bin, m->m_bin_len / 16, s_recv_branch(r, rv), 0};
    int err = store_write(r->store, s_drop_txn, &d);
    if (err) {
        char why[REPL_WHY_MAX - 32];
        snprintf(why, sizeof(why), "the receiver could not remove objects: %s", hs_strerror(err));
        s_abort(r, peer, m->m_run, why);
        s_finish(r, rv, false, why);
        return;
    }
    rv->dropped += d.deleted;
    rv->deleted += d.deleted;
    rv->last_ms = repl_mono_ms();
}

/* ---- applying a batch ----------------------------------------------------- */

typedef struct s_apply {
    repl_t *r;
    r_recv_t *rv;
    const repl_msg_t *m;
    bool to_end; /* END: the range runs to the end of the scope */
    uint64_t applied, skipped, deleted, refused;
    size_t nrefusal; /* the first refused objects, named in the ACK */
    repl_refusal_t refusal[REPL_REFUSALS_MAX];
    unsigned raised;     /* hierarchy events the handlers' decisions raised */
    store_guid_t *guids; /* objects of this batch, sorted, for range removal */
    size_t nguids;
    rules_names_t branch;
    store_txn_t *t;
    const char *prefix;
    int err;
} s_apply_t;

static int s_str_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int s_guid_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Is key k inside the range (from, to]? (to unset with to_end: no bound) */
static bool s_in_range(const s_apply_t *a, const repl_key_t *k)
{
    if (a->m->m_from.k_set && repl_key_cmp(k, &a->m->m_from) <= 0)
        return false;
    if (a->to_end)
        return true;
    return a->m->m_to.k_set && repl_key_cmp(k, &a->m->m_to) <= 0;
}

/* Remove in-scope objects in the batch's range that it does not carry. We
 * collect first and delete after the scan, since deleting moves the cursor's
 * pages under it. */
typedef struct s_victims {
    s_apply_t *a;
    store_guid_t *g;
    size_t n, cap;
} s_victims_t;

static int s_collect_victim(void *ctx, const store_obj_t *o)
{
    s_victims_t *v = ctx;
    s_apply_t *a = v->a;
    repl_key_t k = {.k_set = true, .k_guid = o->guid};
    snprintf(k.k_cls, sizeof(k.k_cls), "%s", o->cls);
    if (!a->to_end && a->m->m_to.k_set && repl_key_cmp(&k, &a->m->m_to) > 0)
        return 1;
    if (!s_in_range(a, &k) || !rules_recv_scope(&a->rv->rule, a->rv->dir, o, &a->branch))
        return 0;
    if (a->nguids && bsearch(o->guid.b, a->guids, a->nguids, sizeof(*a->guids), s_guid_cmp))
        return 0;
    if (!s_delivered(a->t, a->rv, &o->guid))
        return 0; /* another source's, or another rule's: not this run's to remove */
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        store_guid_t *g = realloc(v->g, cap * sizeof(*g));
        if (!g)
            return HS_ENOMEM;
        v->g = g;
        v->cap = cap;
    }
    v->g[v->n++] = o->guid;
    return 0;
}

/* Owners beyond which a range is walked by class rather than per owner. */
#define R_RANGE_OWNERS_MAX 64

static int s_remove_range(s_apply_t *a)
{
    if (!a->to_end && !a->m->m_to.k_set)
        return HS_OK; /* an empty batch covers nothing */
    char pre[RULES_PREFIX_MAX][STORE_CLASS_MAX + 1];
    size_t np = a->rv->rule.ru_nprefix;
    memcpy(pre, a->rv->rule.ru_prefix, sizeof(pre));
    qsort(pre, np, sizeof(pre[0]), s_str_cmp);
    /* Up and standalone runs bring only objects owned in the sender's
     * branch (every family of the prefixes scoped by owner): walk the owner
     * index of those few owners, not every object of the classes, which
     * holds the other children's objects too (each batch whose range
     * crossed a class walked all of theirs: quadratic in the children). */
    bool by_owner = (a->rv->dir == RULES_UP || a->rv->dir == RULES_SIDE) &&
                    a->branch.rn_count <= R_RANGE_OWNERS_MAX;
    for (size_t i = 0; by_owner && i < np; i++) {
        const rules_family_t *f = rules_family_of(pre[i]);
        by_owner = f && (f->fam_key == RULES_KEY_OWNER || a->rv->dir == RULES_SIDE);
    }
    size_t nowners = by_owner ? a->branch.rn_count : 1;
    s_victims_t v = {a, NULL, 0, 0};
    int err = HS_OK;
    for (size_t i = 0; !err && i < np; i++) {
        const repl_key_t *from = &a->m->m_from;
        bool resume = from->k_set && !strncmp(from->k_cls, pre[i], strlen(pre[i]));
        /* skip prefixes entirely before the range */
        if (from->k_set && !resume && strcmp(pre[i], from->k_cls) < 0)
            continue;
        for (size_t j = 0; !err && j < nowners; j++)
            err = store_scan(a->t, pre[i], by_owner ? a->branch.rn_names[j] : NULL, 0,
                             resume ? from->k_cls : NULL, resume ? &from->k_guid : NULL,
                             s_collect_victim, &v);
    }
    for (size_t i = 0; !err && i < v.n; i++) {
        err = store_delete(a->t, &v.g[i], 0);
        if (err == HS_ENOTFOUND)
            err = HS_OK;
        else if (!err)
            a->deleted++;
        if (!err)
            err = s_delivered_set(a->t, a->rv, &v.g[i], false);
    }
    free(v.g);
    return err;
}

/* End of a reconcile: remove in-scope objects of the repaired buckets that
 * the sender did not send (it no longer has them). */
typedef struct s_unsent {
    s_apply_t *a;
    store_guid_t *g;
    size_t n, cap;
} s_unsent_t;

static int s_unsent_one(void *ctx, const store_obj_t *o)
{
    s_unsent_t *u = ctx;
    s_apply_t *a = u->a;
    r_recv_t *rv = a->rv;
    if (!repl_bucket_set_has(&rv->plan, repl_bucket_of(&o->guid)) ||
        !rules_recv_scope(&rv->rule, rv->dir, o, &a->branch))
        return 0;
    if (rv->ngot && bsearch(o->guid.b, rv->got, rv->ngot, sizeof(*rv->got), s_guid_cmp))
        return 0;
    if (!s_delivered(a->t, rv, &o->guid))
        return 0;
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 64;
        store_guid_t *g = realloc(u->g, cap * sizeof(*g));
        if (!g)
            return HS_ENOMEM;
        u->g = g;
        u->cap = cap;
    }
    u->g[u->n++] = o->guid;
    return 0;
}

static int s_remove_unsent(s_apply_t *a)
{
    r_recv_t *rv = a->rv;
    if (!rv->have_plan)
        return HS_OK;
    if (rv->ngot)
        qsort(rv->got, rv->ngot, sizeof(*rv->got), s_guid_cmp);
    s_unsent_t u = {a, NULL, 0, 0};
    int err = HS_OK;
    for (size_t i = 0; !err && i < rv->rule.ru_nprefix; i++)
        err = store_scan(a->t, rv->rule.ru_prefix[i], NULL, 0, NULL, NULL, s_unsent_one, &u);
    for (size_t i = 0; !err && i < u.n; i++) {
        err = store_delete(a->t, &u.g[i], 0);
        if (err == HS_ENOTFOUND)
            err = HS_OK;
        else if (!err)
            a->deleted++;
        if (!err)
            err = s_delivered_set(a->t, rv, &u.g[i], false);
    }
    free(u.g);
    return err;
}

/* Recovery: take o, owned in our branch, if we lack it or hold it older
 * (a tombstone here that is newer stays: the delete was ours). A tombstone
 * o deletes our live copy if it is newer (the delete was ours too, made
 * after the copy we were restored from was taken). */
static int s_recover_one(s_apply_t *a, store_obj_t *o)
{
    const rules_family_t *f = rules_family_of(o->cls);
    if (!f || f->fam_key != RULES_KEY_OWNER || !rules_names_has(&a->branch, o->owner)) {
        a->refused++;
        return HS_OK;
    }
    if (o->flags & STORE_OBJ_TOMBSTONE) {
        store_obj_t cur;
        int err = store_get(a->t, &o->guid, &cur);
        if (err == HS_ENOTFOUND ||
            (!err && ((cur.flags & STORE_OBJ_TOMBSTONE) || cur.mtime >= o->mtime))) {
            a->skipped++; /* nothing to delete, or our copy changed later */
            return HS_OK;
        }
        if (err)
            return err;
        err = store_delete(a->t, &o->guid, o->mtime);
        if (!err)
            a->deleted++;
        return err;
    }
    if (store_obj_check(o) != HS_OK) {
        a->refused++;
        return HS_OK;
    }
    bool changed = false;
    int err = store_put_ex(a->t, o, STORE_PUT_NEWER | STORE_PUT_CHECKED, &changed);
    if (rules_refused(err)) {
        a->refused++;
        return HS_OK;
    }
    if (!err) {
        a->applied += changed;
        a->skipped += !changed;
    }
    return err;
}

static int s_apply_txn(store_txn_t *t, void *ctx)
{
    s_apply_t *a = ctx;
    a->applied = a->skipped = a->deleted = a->refused = 0;
    a->nrefusal = 0;
    a->raised = 0;
    a->nguids = 0;
    a->t = t;
    const repl_msg_t *m = a->m;
    store_mpr_t rd;
    if (a->rv->mode == REPL_COMPLETE) {
        /* Remove what the range no longer holds before applying the batch:
         * the scan then sees only objects that were here before it (none at
         * all for a first run), not the ones just written. */
        store_mpr_init(&rd, m->m_objs, m->m_objs_len);
        for (uint32_t i = 0; i < m->m_nobj; i++) {
            repl_wire_obj_t wo;
            if (repl_obj_decode(&rd, &wo))
                return HS_EMALF;
            a->guids[a->nguids++] = wo.o.guid;
        }
        if (a->nguids) /* guids is NULL for an empty batch: qsort wants a pointer */
            qsort(a->guids, a->nguids, sizeof(*a->guids), s_guid_cmp);
        int err = s_remove_range(a);
        if (err)
            return err;
    }
    store_mpr_init(&rd, m->m_objs, m->m_objs_len);
    for (uint32_t i = 0; i < m->m_nobj; i++) {
        repl_wire_obj_t wo;
        if (repl_obj_decode(&rd, &wo))
            return HS_EMALF;
        if (a->rv->mode == REPL_RECONCILE)
            a->guids[a->nguids++] = wo.o.guid;
        if (a->rv->mode == REPL_RECOVER) {
            int err = s_recover_one(a, &wo.o);
            if (err)
                return err;
            continue;
        }
        repl_refusal_t *rf = a->nrefusal < REPL_REFUSALS_MAX ? &a->refusal[a->nrefusal] : NULL;
        if (!repl_recv_allowed(t, &a->rv->rule, a->rv->dir, &a->branch, &wo.o,
                               rf ? rf->rf_why : NULL, rf ? sizeof(rf->rf_why) : 0)) {
            if (rf) {
                rf->rf_guid = wo.o.guid;
                a->nrefusal++;
            }
            a->refused++;
            continue;
        }
        int outcome = RULES_SKIPPED;
        int err = repl_apply_incoming(t, a->rv->dir,
                                      a->rv->mode == REPL_DIFFERENTIAL ? 0u : RULES_APPLY_STATE,
                                      &wo.o, &outcome, &a->raised);
        if (rules_refused(err)) {
            if (rf) {
                rf->rf_guid = wo.o.guid;
                snprintf(rf->rf_why, sizeof(rf->rf_why), "%s %s that cannot be taken: %s",
                         wo.o.cls[0] && strchr("aeiou", wo.o.cls[0]) ? "an" : "a", wo.o.cls,
                         err == HS_EDIRECTION ? "its class does not flow this way"
                                              : hs_strerror(err));
                a->nrefusal++;
            }
            a->refused++;
            continue;
        }
        if (err)
            return err;
        if (outcome == RULES_APPLIED)
            a->applied++;
        else if (outcome == RULES_DELETED)
            a->deleted++;
        else
            a->skipped++;
        err = s_delivered_set(t, a->rv, &wo.o.guid, !(wo.o.flags & STORE_OBJ_TOMBSTONE));
        if (err)
            return err;
    }
    if (store_mpr_done(&rd))
        return HS_EMALF;
    if (a->rv->mode == REPL_RECONCILE && a->to_end && !a->rv->leaves_mode)
        return s_remove_unsent(a);
    return HS_OK;
}

/* A batch that could not be applied: the run fails. */
static void s_batch_failed(repl_t *r, r_recv_t *rv, const char *peer, const repl_msg_t *m, int err)
{
    char why[REPL_WHY_MAX - 32];
    snprintf(why, sizeof(why), "the receiver could not apply batch %llu: %s",
             (unsigned long long)m->m_no, hs_strerror(err));
    s_abort(r, peer, m->m_run, why);
    s_finish(r, rv, false, why);
}

/* A batch committed: count it and acknowledge it. Frees a->guids. */
static void s_batch_done(repl_t *r, s_apply_t *a, const char *peer)
{
    r_recv_t *rv = a->rv;
    const repl_msg_t *m = a->m;
    if (rv->mode == REPL_RECONCILE && a->nguids) {
        if (rv->ngot + a->nguids > rv->capgot) {
            size_t cap = (rv->ngot + a->nguids) * 2;
            store_guid_t *g = realloc(rv->got, cap * sizeof(*g));
            if (!g) {
                free(a->guids);
                s_abort(r, peer, m->m_run, "out of memory");
                s_finish(r, rv, false, "out of memory");
                return;
            }
            rv->got = g;
            rv->capgot = cap;
        }
        memcpy(rv->got + rv->ngot, a->guids, a->nguids * sizeof(*a->guids));
        rv->ngot += a->nguids;
    }
    free(a->guids);
    a->guids = NULL;
    rv->applied += a->applied;
    rv->skipped += a->skipped;
    rv->deleted += a->deleted;
    rv->refused += a->refused;
    rv->bytes += m->m_objs_len;
    rv->batches++;
    rv->last_ms = repl_mono_ms();
    if (a->refused) {
        char gs[STORE_GUID_STRLEN + 1];
        store_guid_format(&a->refusal[0].rf_guid, gs);
        repl_log(r, REPL_LOG_WARN, peer, "refused-objects",
                 "rule %s: %llu objects refused (the sender is told, and its run fails); %s: %s%s",
                 rv->rule.ru_name, (unsigned long long)a->refused, gs, a->refusal[0].rf_why,
                 a->refused > 1 ? "; ..." : "");
    }
    if (a->raised) {
        repl_log(r, REPL_LOG_INFO, peer, "decisions",
                 "rule %s: %u merge or ownership decisions, announced as hierarchy events "
                 "(hsync events)",
                 rv->rule.ru_name, a->raised);
        repl_events_pump(r);
    }
    repl_msg_t ack = {.m_type = REPL_ACK,
                      .m_run = m->m_run,
                      .m_no = m->m_no,
                      .m_applied = a->applied,
                      .m_skipped = a->skipped,
                      .m_deleted = a->deleted,
                      .m_refused = a->refused,
                      .m_nrefusal = a->nrefusal};
    memcpy(ack.m_refusal, a->refusal, a->nrefusal * sizeof(a->refusal[0]));
    repl_send_msg(r, peer, &ack);
}

/* Set up a for batch m of run rv. HS_ENOMEM. */
static int s_batch_prepare(repl_t *r, r_recv_t *rv, const repl_msg_t *m, s_apply_t *a)
{
    memset(a, 0, sizeof(*a));
    a->r = r;
    a->rv = rv;
    a->m = m;
    a->branch = s_recv_branch(r, rv);
    if (m->m_nobj && !(a->guids = malloc(m->m_nobj * sizeof(*a->guids))))
        return HS_ENOMEM;
    return HS_OK;
}

/* Apply batch m alone, in its own transaction, and acknowledge it. */
static void s_batch_one(repl_t *r, r_recv_t *rv, const char *peer, const repl_msg_t *m)
{
    s_apply_t a;
    if (s_batch_prepare(r, rv, m, &a)) {
        s_abort(r, peer, m->m_run, "out of memory");
        return;
    }
    int err = store_write(r->store, s_apply_txn, &a);
    if (err) {
        free(a.guids);
        s_batch_failed(r, rv, peer, m, err);
        return;
    }
    s_batch_done(r, &a, peer);
}

/* ---- group commit ---------------------------------------------------------
 *
 * While the broker drains its sockets (repl_group), batches are held, with a
 * copy of their objects, and applied together at repl_group_flush: one write
 * transaction and one durable commit for the batches of every sender that
 * had one ready, and only then is each acknowledged, as alone. Every batch
 * runs the same code in the same order as it would alone, so the result is
 * the same; if the group fails (one bad batch), each is applied again alone
 * and only the bad one's run fails. */

#define R_GROUP_MAX 64 /* batches held at most; a further one flushes first */

/* Objects a group holds at most: one full batch's worth, so that a group
 * transaction dirties no more LMDB pages (heap memory until the commit) than
 * the largest single batch could. Groups are then of small batches (a
 * differential trickle from many senders); full batches commit alone. */
#define R_GROUP_OBJECTS REPL_BATCH_OBJECTS

static int s_group_add(repl_t *r, const char *peer, const repl_msg_t *m)
{
    size_t held = 0;
    for (size_t i = 0; i < r->npend; i++)
        held += r->pend[i].m.m_nobj;
    if (held + m->m_nobj > R_GROUP_OBJECTS)
        repl_group_flush(r);
    if (m->m_nobj > R_GROUP_OBJECTS / 2) {
        repl_group_flush(r); /* held ones first, in arrival order */
        return HS_EINVAL;    /* a large batch: alone, at once */
    }
    if (r->npend == R_GROUP_MAX)
        repl_group_flush(r);
    if (!r->pend && !(r->pend = calloc(R_GROUP_MAX, sizeof(*r->pend))))
        return HS_ENOMEM;
    struct r_pend *p = &r->pend[r->npend];
    p->objs = malloc(m->m_objs_len ? m->m_objs_len : 1);
    if (!p->objs)
        return HS_ENOMEM;
    memcpy(p->objs, m->m_objs, m->m_objs_len);
    snprintf(p->peer, sizeof(p->peer), "%s", peer);
    p->m = *m;
    p->m.m_objs = p->objs;
    p->m.m_branch = NULL;
    p->m.m_branch_len = 0;
    p->m.m_branch_names = NULL;
    p->m.m_bin = NULL;
    p->m.m_bin_len = 0;
    r->npend++;
    return HS_OK;
}

typedef struct s_group {
    s_apply_t *a;
    size_t n;
} s_group_t;

static int s_group_txn(store_txn_t *t, void *ctx)
{
    s_group_t *g = ctx;
    for (size_t i = 0; i < g->n; i++) {
        if (!g->a[i].rv)
            continue;
        int err = s_apply_txn(t, &g->a[i]);
        if (err)
            return err;
    }
    return HS_OK;
}

void repl_group(repl_t *r, bool on)
{
    if (!on)
        repl_group_flush(r);
    r->grouping = on;
}

void repl_group_flush(repl_t *r)
{
    size_t n = r->npend;
    if (!n)
        return;
    struct r_pend *pend = r->pend;
    r->pend = NULL; /* what the acknowledgements set off may hold new batches */
    r->npend = 0;
    s_apply_t *a = calloc(n, sizeof(*a));
    size_t live = 0;
    for (size_t i = 0; a && i < n; i++) {
        r_recv_t *rv = s_find(r, pend[i].peer, pend[i].m.m_run);
        if (rv && s_batch_prepare(r, rv, &pend[i].m, &a[i]) == HS_OK)
            live++;
        else
            a[i].rv = NULL; /* its run ended meanwhile (or no memory: applied alone) */
    }
    int err = a && live > 1 ? store_write(r->store, s_group_txn, &(s_group_t){a, n}) : HS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!err && a[i].rv) {
            /* an earlier acknowledgement's failure may have ended the run */
            if (s_find(r, pend[i].peer, pend[i].m.m_run) == a[i].rv)
                s_batch_done(r, &a[i], pend[i].peer);
            else
                free(a[i].guids);
        } else {
            if (a)
                free(a[i].guids);
            /* alone, as if never held: the run may have ended meanwhile */
            r_recv_t *rv = s_find(r, pend[i].peer, pend[i].m.m_run);
            if (rv)
                s_batch_one(r, rv, pend[i].peer, &pend[i].m);
        }
        free(pend[i].objs);
    }
    free(a);
    if (!r->pend)
        r->pend = pend;
    else
        free(pend);
}

void repl_recv_batch(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_recv_t *rv = s_find(r, peer, m->m_run);
    if (!rv) {
        s_abort(r, peer, m->m_run, "unknown run (the receiver restarted?): start again");
        return;
    }
    if (m->m_nobj > REPL_BATCH_OBJECTS * 4) {
        s_finish(r, rv, false, "batch too large");
        s_abort(r, peer, m->m_run, "batch too large");
        return;
    }
    if (r->grouping && s_group_add(r, peer, m) == HS_OK)
        return;
    s_batch_one(r, rv, peer, m);
}

void repl_recv_end(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_recv_t *rv = s_find(r, peer, m->m_run);
    if (!rv) {
        s_abort(r, peer, m->m_run, "unknown run (the receiver restarted?): start again");
        return;
    }
    uint64_t deleted = 0;
    if (rv->mode != REPL_DIFFERENTIAL) {
        s_apply_t a = {.r = r, .rv = rv, .m = m, .to_end = true};
        a.branch = s_recv_branch(r, rv);
        int err = store_write(r->store, s_apply_txn, &a);
        if (err) {
            char why[REPL_WHY_MAX - 32];
            snprintf(why, sizeof(why), "the receiver could not finish: %s", hs_strerror(err));
            s_abort(r, peer, m->m_run, why);
            s_finish(r, rv, false, why);
            return;
        }
        deleted = a.deleted;
        rv->deleted += deleted;
    }
    repl_msg_t done = {
        .m_type = REPL_DONE, .m_run = m->m_run, .m_ok = true, .m_deleted = deleted + rv->dropped};
    store_txn_t *ht;
    if (store_txn_begin(r->store, false, &ht) == HS_OK) {
        done.m_head = store_log_head(ht); /* what the sender checks for a rollback next time */
        store_txn_abort(&ht);
    }
    repl_send_msg(r, peer, &done);
    s_finish(r, rv, true, NULL);
}

void repl_recv_abort(repl_t *r, const char *peer, const repl_msg_t *m)
{
    r_recv_t *rv = s_find(r, peer, m->m_run);
    if (rv) {
        char why[REPL_WHY_MAX - 32];
        snprintf(why, sizeof(why), "the sender aborted: %.180s", m->m_why);
        s_finish(r, rv, false, why);
        return;
    }
    repl_log(r, REPL_LOG_INFO, peer, "stale-frame",
             "abort for run %llu, not a run of ours: dropped", (unsigned long long)m->m_run);
}

void repl_recv_refuse(repl_t *r, const char *peer, const repl_msg_t *m)
{
    for (r_req_t **p = &r->reqs; *p; p = &(*p)->next) {
        r_req_t *q = *p;
        if (strcmp(q->token, m->m_token) != 0 || strcmp(q->peer, peer) != 0)
            continue;
        *p = q->next;
        if (q->mode == REPL_RECOVER) {
            /* nothing to take back from there: reconcile as before */
            repl_recover_give_up(r, peer, q->rule, m->m_why);
        }
        if (r->io.io_run_done) {
            /* a rule the peer has disabled is skipped as asked, not a failure */
            bool disabled = m->m_ok;
            repl_summary_t su = {.su_req = q->req,
                                 .su_role = "received",
                                 .su_direction = repl_dir_from(r, peer) == RULES_UP ? "up" : "down",
                                 .su_ok = disabled};
            repl_summary_names(&su, peer, q->rule, disabled ? m->m_why : NULL,
                               disabled ? NULL : m->m_why);
            repl_run_done(r, &su);
        }
        free(q);
        return;
    }
}

void repl_recv_drop_peer(repl_t *r, const char *peer)
{
    for (r_recv_t *rv = r->recvs, *next; rv; rv = next) {
        next = rv->next;
        if (!strcmp(rv->peer, peer))
            s_finish(r, rv, false, "the link went down");
    }
    for (r_req_t **p = &r->reqs; *p;) {
        r_req_t *q = *p;
        if (strcmp(q->peer, peer) != 0) {
            p = &q->next;
            continue;
        }
        *p = q->next;
        if (r->io.io_run_done) {
            repl_summary_t su = {.su_req = q->req, .su_role = "received", .su_ok = false};
            repl_summary_names(&su, peer, q->rule, NULL, "the link went down");
            repl_run_done(r, &su);
        }
        free(q);
    }
}

void repl_recv_expire(repl_t *r, uint64_t now)
{
    for (r_recv_t *rv = r->recvs, *next; rv; rv = next) {
        next = rv->next;
        if (now - rv->last_ms > R_RECV_IDLE_MS)
            s_finish(r, rv, false, "the sender went silent");
    }
}
