#include "replication/marks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t s_mark_key(char *k, size_t cap, const char *peer, const char *rule)
{
    size_t pl = strlen(peer), rl = strlen(rule);
    if (pl + rl + 1 > cap)
        return 0;
    memcpy(k, peer, pl);
    k[pl] = 0;
    memcpy(k + pl + 1, rule, rl);
    return pl + 1 + rl;
}

int repl_mark_decode(const void *buf, size_t len, repl_mark_t *out)
{
    memset(out, 0, sizeof(*out));
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    uint32_t n_fields = store_mpr_array(&r); /* 18 before the cursor's epoch was kept */
    if ((n_fields != 18 && n_fields != 19) || store_mpr_uint(&r) != 1)
        return HS_EMALF;
    out->mk_diff_seq = store_mpr_uint(&r);
    out->mk_complete_active = store_mpr_bool(&r);
    out->mk_complete_start_seq = store_mpr_uint(&r);
    out->mk_cursor.k_set = store_mpr_bool(&r);
    store_mpr_str(&r, out->mk_cursor.k_cls, sizeof(out->mk_cursor.k_cls));
    size_t n;
    const uint8_t *g = store_mpr_bytes(&r, &n);
    if (g && n == 16)
        memcpy(out->mk_cursor.k_guid.b, g, 16);
    else
        r.mpr_err = HS_EMALF;
    out->mk_last_diff_ms = store_mpr_uint(&r);
    out->mk_last_complete_ms = store_mpr_uint(&r);
    out->mk_last_run_ms = store_mpr_uint(&r);
    out->mk_last_ok = store_mpr_bool(&r);
    store_mpr_str(&r, out->mk_last_error, sizeof(out->mk_last_error));
    out->mk_failures = (uint32_t)store_mpr_uint(&r);
    out->mk_last_mode = (int)store_mpr_uint(&r);
    store_mpr_str(&r, out->mk_own_epoch, sizeof(out->mk_own_epoch));
    store_mpr_str(&r, out->mk_peer_epoch, sizeof(out->mk_peer_epoch));
    out->mk_verify_next = (uint32_t)store_mpr_uint(&r);
    out->mk_peer_head = store_mpr_uint(&r);
    if (n_fields == 19) {
        store_mpr_str(&r, out->mk_cursor_epoch, sizeof(out->mk_cursor_epoch));
        out->mk_cursor_epoch_set = out->mk_cursor_epoch[0] != '\0';
    }
    return store_mpr_done(&r);
}

int repl_mark_get(store_txn_t *t, const char *peer, const char *rule, repl_mark_t *out)
{
    memset(out, 0, sizeof(*out));
    char k[REPL_WHY_MAX];
    size_t kl = s_mark_key(k, sizeof(k), peer, rule);
    if (!kl)
        return HS_EINVAL;
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_MARKS, k, kl, &v, &vl);
    if (err == HS_ENOTFOUND)
        return HS_OK;
    return err ? err : repl_mark_decode(v, vl, out);
}

typedef struct s_forget {
    char (*keys)[REPL_WHY_MAX];
    size_t *lens;
    size_t n, cap;
} s_forget_t;

static int s_forget_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)v;
    (void)vl;
    s_forget_t *f = ctx;
    if (kl > REPL_WHY_MAX)
        return 0;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        char(*keys)[REPL_WHY_MAX] = realloc(f->keys, cap * sizeof(*keys));
        if (!keys)
            return HS_ENOMEM;
        f->keys = keys;
        size_t *lens = realloc(f->lens, cap * sizeof(*lens));
        if (!lens)
            return HS_ENOMEM;
        f->lens = lens;
        f->cap = cap;
    }
    memcpy(f->keys[f->n], k, kl);
    f->lens[f->n++] = kl;
    return 0;
}

int repl_marks_forget(store_txn_t *t, const char *peer)
{
    char pre[STORE_NAME_MAX + 2];
    int pl = snprintf(pre, sizeof(pre), "%s", peer);
    if (pl < 0 || (size_t)pl + 1 >= sizeof(pre))
        return HS_EINVAL;
    pre[pl] = '\0'; /* the key is "<peer>\0<rule>": the prefix ends with the NUL */
    s_forget_t f = {0};
    int err = store_kv_scan(t, STORE_T_MARKS, pre, (size_t)pl + 1, s_forget_one, &f);
    for (size_t i = 0; !err && i < f.n; i++) {
        err = store_kv_del(t, STORE_T_MARKS, f.keys[i], f.lens[i]);
        if (err == HS_ENOTFOUND)
            err = HS_OK;
    }
    free(f.keys);
    free(f.lens);
    return err;
}

int repl_mark_put(store_txn_t *t, const char *peer, const char *rule, const repl_mark_t *m)
{
    char k[REPL_WHY_MAX];
    size_t kl = s_mark_key(k, sizeof(k), peer, rule);
    if (!kl)
        return HS_EINVAL;
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 19);
    store_mpw_uint(&w, 1);
    store_mpw_uint(&w, m->mk_diff_seq);
    store_mpw_bool(&w, m->mk_complete_active);
    store_mpw_uint(&w, m->mk_complete_start_seq);
    store_mpw_bool(&w, m->mk_cursor.k_set);
    store_mpw_str(&w, m->mk_cursor.k_cls);
    store_mpw_bin(&w, m->mk_cursor.k_guid.b, 16);
    store_mpw_uint(&w, m->mk_last_diff_ms);
    store_mpw_uint(&w, m->mk_last_complete_ms);
    store_mpw_uint(&w, m->mk_last_run_ms);
    store_mpw_bool(&w, m->mk_last_ok);
    store_mpw_str(&w, m->mk_last_error);
    store_mpw_uint(&w, m->mk_failures);
    store_mpw_uint(&w, (uint64_t)m->mk_last_mode);
    store_mpw_str(&w, m->mk_own_epoch);
    store_mpw_str(&w, m->mk_peer_epoch);
    store_mpw_uint(&w, m->mk_verify_next);
    store_mpw_uint(&w, m->mk_peer_head);
    store_mpw_str(&w, m->mk_cursor_epoch_set ? m->mk_cursor_epoch : "");
    int err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_MARKS, k, kl, w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    return err;
}

/* ---- history ------------------------------------------------------------ */

int repl_hist_decode(const void *buf, size_t len, repl_hist_t *out)
{
    memset(out, 0, sizeof(*out));
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    if (store_mpr_array(&r) != 15 || store_mpr_uint(&r) != 1)
        return HS_EMALF;
    out->h_when_ms = store_mpr_uint(&r);
    store_mpr_str(&r, out->h_peer, sizeof(out->h_peer));
    store_mpr_str(&r, out->h_rule, sizeof(out->h_rule));
    store_mpr_str(&r, out->h_role, sizeof(out->h_role));
    out->h_mode = (int)store_mpr_uint(&r);
    store_mpr_str(&r, out->h_why, sizeof(out->h_why));
    out->h_sent = store_mpr_uint(&r);
    out->h_applied = store_mpr_uint(&r);
    out->h_skipped = store_mpr_uint(&r);
    out->h_deleted = store_mpr_uint(&r);
    out->h_bytes = store_mpr_uint(&r);
    out->h_ms = store_mpr_uint(&r);
    out->h_ok = store_mpr_bool(&r);
    store_mpr_str(&r, out->h_error, sizeof(out->h_error));
    return store_mpr_done(&r);
}

typedef struct s_trim {
    size_t count;
    size_t drop;
    uint8_t keys[64][12];
    size_t nkeys;
} s_trim_t;

static int s_count_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)v;
    (void)vl;
    s_trim_t *t = ctx;
    if (t->drop) {
        if (kl == 12 && t->nkeys < 64)
            memcpy(t->keys[t->nkeys++], k, 12);
        return t->nkeys == t->drop || t->nkeys == 64 ? 1 : 0;
    }
    t->count++;
    return 0;
}

int repl_hist_add(store_txn_t *t, const repl_hist_t *h)
{
    static uint32_t counter;
    uint8_t k[12];
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(h->h_when_ms >> (8 * (7 - i)));
    uint32_t c = counter++;
    for (int i = 0; i < 4; i++)
        k[8 + i] = (uint8_t)(c >> (8 * (3 - i)));
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 15);
    store_mpw_uint(&w, 1);
    store_mpw_uint(&w, h->h_when_ms);
    store_mpw_str(&w, h->h_peer);
    store_mpw_str(&w, h->h_rule);
    store_mpw_str(&w, h->h_role);
    store_mpw_uint(&w, (uint64_t)h->h_mode);
    store_mpw_str(&w, h->h_why);
    store_mpw_uint(&w, h->h_sent);
    store_mpw_uint(&w, h->h_applied);
    store_mpw_uint(&w, h->h_skipped);
    store_mpw_uint(&w, h->h_deleted);
    store_mpw_uint(&w, h->h_bytes);
    store_mpw_uint(&w, h->h_ms);
    store_mpw_bool(&w, h->h_ok);
    store_mpw_str(&w, h->h_error);
    int err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_HISTORY, k, sizeof(k), w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    if (err)
        return err;
    /* keep the newest REPL_HISTORY_MAX runs */
    s_trim_t tr = {0};
    err = store_kv_scan(t, STORE_T_HISTORY, NULL, 0, s_count_one, &tr);
    if (err || tr.count <= REPL_HISTORY_MAX)
        return err;
    tr.drop = tr.count - REPL_HISTORY_MAX;
    err = store_kv_scan(t, STORE_T_HISTORY, NULL, 0, s_count_one, &tr);
    for (size_t i = 0; !err && i < tr.nkeys; i++)
        err = store_kv_del(t, STORE_T_HISTORY, tr.keys[i], 12);
    return err;
}

typedef struct s_hlist {
    repl_hist_t *h;
    size_t n, cap;
} s_hlist_t;

static int s_hist_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k;
    (void)kl;
    s_hlist_t *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        repl_hist_t *nh = realloc(l->h, cap * sizeof(*nh));
        if (!nh)
            return HS_ENOMEM;
        l->h = nh;
        l->cap = cap;
    }
    if (repl_hist_decode(v, vl, &l->h[l->n]) == HS_OK)
        l->n++;
    return 0;
}

int repl_hist_each(store_txn_t *t, repl_hist_cb cb, void *ctx)
{
    s_hlist_t l = {0};
    int err = store_kv_scan(t, STORE_T_HISTORY, NULL, 0, s_hist_one, &l);
    for (size_t i = l.n; !err && i > 0; i--) {
        int r = cb(ctx, &l.h[i - 1]);
        if (r)
            err = r < 0 ? r : HS_OK;
        if (r)
            break;
    }
    free(l.h);
    return err;
}

/* ---- refusals ------------------------------------------------------------- */

/* "\x01" peer 0x00 guid(16): never a mark key (those start with a peer name). */
static size_t s_refusal_key(uint8_t *k, size_t cap, const char *peer, const store_guid_t *g)
{
    size_t pl = strlen(peer);
    if (pl + 18 > cap)
        return 0;
    k[0] = 0x01;
    memcpy(k + 1, peer, pl);
    k[1 + pl] = 0;
    memcpy(k + 2 + pl, g->b, 16);
    return pl + 18;
}

int repl_refusal_put(store_txn_t *t, const char *peer, const store_guid_t *g,
                     const repl_refusal_rec_t *rec)
{
    uint8_t k[STORE_NAME_MAX + 18];
    size_t kl = s_refusal_key(k, sizeof(k), peer, g);
    if (!kl)
        return HS_EINVAL;
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 5);
    store_mpw_uint(&w, 1);
    store_mpw_str(&w, rec->rr_rule);
    store_mpw_uint(&w, rec->rr_seq);
    store_mpw_uint(&w, rec->rr_at_ms);
    store_mpw_str(&w, rec->rr_why);
    int err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_MARKS, k, kl, w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    return err;
}

int repl_refusal_get(store_txn_t *t, const char *peer, const store_guid_t *g,
                     repl_refusal_rec_t *out)
{
    memset(out, 0, sizeof(*out));
    uint8_t k[STORE_NAME_MAX + 18];
    size_t kl = s_refusal_key(k, sizeof(k), peer, g);
    if (!kl)
        return HS_ENOTFOUND;
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_MARKS, k, kl, &v, &vl);
    if (err)
        return err;
    store_mpr_t r;
    store_mpr_init(&r, v, vl);
    if (store_mpr_array(&r) != 5 || store_mpr_uint(&r) != 1)
        return HS_EMALF;
    store_mpr_str(&r, out->rr_rule, sizeof(out->rr_rule));
    out->rr_seq = store_mpr_uint(&r);
    out->rr_at_ms = store_mpr_uint(&r);
    store_mpr_str(&r, out->rr_why, sizeof(out->rr_why));
    return store_mpr_done(&r) ? HS_EMALF : HS_OK;
}

int repl_refusal_del(store_txn_t *t, const char *peer, const store_guid_t *g)
{
    uint8_t k[STORE_NAME_MAX + 18];
    size_t kl = s_refusal_key(k, sizeof(k), peer, g);
    if (!kl)
        return HS_ENOTFOUND;
    return store_kv_del(t, STORE_T_MARKS, k, kl);
}

typedef struct s_rf_list {
    const char *rule;
    size_t pl; /* length of the key prefix: 0x01 peer 0x00 */
    store_guid_t *g;
    repl_refusal_rec_t *rec;
    size_t max, n;
} s_rf_list_t;

static int s_rf_list_one(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_rf_list_t *l = ctx;
    if (klen != l->pl + 16)
        return 0;
    repl_refusal_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    store_mpr_t r;
    store_mpr_init(&r, val, vlen);
    if (store_mpr_array(&r) != 5 || store_mpr_uint(&r) != 1)
        return 0; /* unreadable: not counted */
    store_mpr_str(&r, rec.rr_rule, sizeof(rec.rr_rule));
    rec.rr_seq = store_mpr_uint(&r);
    rec.rr_at_ms = store_mpr_uint(&r);
    store_mpr_str(&r, rec.rr_why, sizeof(rec.rr_why));
    if (store_mpr_done(&r))
        return 0;
    if (l->rule && strcmp(l->rule, rec.rr_rule) != 0)
        return 0;
    if (l->n < l->max) {
        if (l->g)
            memcpy(l->g[l->n].b, (const uint8_t *)key + l->pl, 16);
        if (l->rec)
            l->rec[l->n] = rec;
    }
    l->n++;
    return 0;
}

int repl_refusals_list(store_txn_t *t, const char *peer, const char *rule, store_guid_t *g,
                       repl_refusal_rec_t *rec, size_t max, size_t *n)
{
    *n = 0;
    uint8_t k[STORE_NAME_MAX + 2];
    size_t pl = strlen(peer);
    if (pl + 2 > sizeof(k))
        return HS_EINVAL;
    k[0] = 0x01;
    memcpy(k + 1, peer, pl);
    k[1 + pl] = 0;
    s_rf_list_t l = {rule, pl + 2, g, rec, max, 0};
    int err = store_kv_scan(t, STORE_T_MARKS, k, pl + 2, s_rf_list_one, &l);
    *n = l.n;
    return err;
}

bool repl_refusal_outstanding(store_txn_t *t, const store_guid_t *g,
                              const repl_refusal_rec_t *rec)
{
    store_obj_t o;
    return store_get(t, g, &o) == HS_OK && o.seq == rec->rr_seq;
}
