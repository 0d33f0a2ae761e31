#include "rules/hep.h"

#include "store/mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- top-level map entries ---------------------------------------------- */

typedef struct s_entry {
    const uint8_t *key; /* string bytes */
    size_t klen;
    const uint8_t *val; /* raw msgpack value */
    size_t vlen;
    bool present; /* overrides: false = the property was removed here */
} s_entry_t;

typedef struct s_map {
    size_t n, cap;
    s_entry_t *e;
} s_map_t;

static void s_map_free(s_map_t *m)
{
    free(m->e);
    memset(m, 0, sizeof(*m));
}

static int s_map_add(s_map_t *m, const s_entry_t *e)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        s_entry_t *ne = realloc(m->e, cap * sizeof(*ne));
        if (!ne)
            return HS_ENOMEM;
        m->e = ne;
        m->cap = cap;
    }
    m->e[m->n++] = *e;
    return HS_OK;
}

/* The entries of a canonical body (keys already in order). */
static int s_body_entries(const uint8_t *body, size_t len, s_map_t *m)
{
    store_mpr_t r;
    store_mpr_init(&r, body, len);
    uint32_t n = store_mpr_map(&r);
    for (uint32_t i = 0; i < n && !store_mpr_error(&r); i++) {
        s_entry_t e = {.present = true};
        e.key = store_mpr_bytes(&r, &e.klen);
        e.val = store_mpr_raw(&r, &e.vlen);
        if (!store_mpr_error(&r) && s_map_add(m, &e))
            return HS_ENOMEM;
    }
    return store_mpr_error(&r) ? HS_EMALF : HS_OK;
}

static int s_keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int s_entry_cmp(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    return s_keycmp(x->key, x->klen, y->key, y->klen);
}

/* Key order (canonical for bodies; overrides are merged with bodies). */
static void s_map_sort(s_map_t *m)
{
    if (m->n > 1)
        qsort(m->e, m->n, sizeof(*m->e), s_entry_cmp);
}

static const s_entry_t *s_map_find(const s_map_t *m, const uint8_t *k, size_t kl)
{
    for (size_t i = 0; i < m->n; i++)
        if (!s_keycmp(m->e[i].key, m->e[i].klen, k, kl))
            return &m->e[i];
    return NULL;
}

static bool s_same_value(const s_entry_t *a, const s_entry_t *b)
{
    return a->vlen == b->vlen && !memcmp(a->val, b->val, a->vlen);
}

/* The "props" entries of a HEP record's body (pointing into body). */
static int s_props_entries(const uint8_t *body, size_t len, s_map_t *props)
{
    store_mpr_t r;
    store_mpr_init(&r, body, len);
    uint32_t n = store_mpr_map(&r);
    for (uint32_t i = 0; i < n && !store_mpr_error(&r); i++) {
        size_t kl;
        const uint8_t *k = store_mpr_bytes(&r, &kl);
        if (kl != 5 || memcmp(k, "props", 5) != 0) {
            store_mpr_raw(&r, &kl);
            continue;
        }
        uint32_t np = store_mpr_map(&r);
        for (uint32_t j = 0; j < np && !store_mpr_error(&r); j++) {
            s_entry_t e = {.present = true};
            e.key = store_mpr_bytes(&r, &e.klen);
            e.val = store_mpr_raw(&r, &e.vlen);
            if (!store_mpr_error(&r) && s_map_add(props, &e))
                return HS_ENOMEM;
        }
    }
    return store_mpr_error(&r) ? HS_EMALF : HS_OK;
}

/* ---- HEP records -------------------------------------------------------- */

bool rules_hep_family(const char *cls)
{
    return !strncmp(cls, "item.", 5) || !strncmp(cls, "security.", 9) || !strcmp(cls, "package") ||
           !strncmp(cls, "package.", 8);
}

static int s_record_guid(const char *origin, const char *target, store_guid_t *g)
{
    char ns[STORE_NAME_MAX + 8];
    snprintf(ns, sizeof(ns), "hep/%s", origin);
    return store_guid_derive(ns, target, g);
}

/* The setting of prop in origin's record for target: 1 editable, 0 locked,
 * -1 none. */
static int s_setting(store_txn_t *t, const char *origin, const char *target, const char *prop,
                     size_t plen, int *setting)
{
    *setting = -1;
    store_guid_t g;
    int err = s_record_guid(origin, target, &g);
    if (err)
        return err;
    store_obj_t rec;
    err = store_get(t, &g, &rec);
    if (err == HS_ENOTFOUND ||
        (!err && ((rec.flags & STORE_OBJ_TOMBSTONE) || strcmp(rec.origin, origin) ||
                  strcmp(rec.cls, RULES_HEP_CLASS))))
        return HS_OK;
    if (err)
        return err;
    s_map_t props = {0};
    if (s_props_entries(rec.body, rec.body_len, &props) == HS_OK) {
        const s_entry_t *e = s_map_find(&props, (const uint8_t *)prop, plen);
        if (e) {
            store_mpr_t v;
            store_mpr_init(&v, e->val, e->vlen);
            size_t vl;
            const uint8_t *val = store_mpr_bytes(&v, &vl);
            *setting = !store_mpr_error(&v) && vl == 8 && !memcmp(val, "editable", 8);
        }
    }
    s_map_free(&props);
    return HS_OK; /* a malformed record unlocks nothing */
}

int rules_hep_editable(store_txn_t *t, const store_obj_t *o, const char *prop, size_t plen,
                       bool *editable)
{
    char gs[STORE_GUID_STRLEN + 1];
    store_guid_format(&o->guid, gs);
    int setting;
    int err = s_setting(t, o->origin, gs, prop, plen, &setting);
    if (!err && setting < 0)
        err = s_setting(t, o->origin, o->cls, prop, plen, &setting);
    *editable = setting == 1;
    return err;
}

int rules_hep_set(store_txn_t *t, const char *self, const char *target, const char *prop,
                  bool editable, store_guid_t *out, char *why, size_t whylen)
{
    size_t plen = strlen(prop);
    if (!plen || plen > RULES_HEP_PROP_MAX || strchr(prop, '.')) {
        snprintf(why, whylen,
                 "property '%s': give one top-level property name of the body (1 to %d "
                 "characters, no dots)",
                 prop, RULES_HEP_PROP_MAX);
        return HS_EINVAL;
    }
    store_guid_t tg;
    char tbuf[STORE_CLASS_MAX + 1];
    if (store_guid_parse(target, &tg) == HS_OK) {
        store_obj_t o;
        int err = store_get(t, &tg, &o);
        if (err == HS_ENOTFOUND || (!err && (o.flags & STORE_OBJ_TOMBSTONE))) {
            snprintf(why, whylen, "no object %s on this node", target);
            return HS_EINVAL;
        }
        if (err)
            return err;
        if (!rules_hep_family(o.cls)) {
            snprintf(why, whylen,
                     "%s is a %s: only items, security records and packages carry editable "
                     "properties",
                     target, o.cls);
            return HS_EINVAL;
        }
        if (strcmp(o.origin, self)) {
            snprintf(why, whylen,
                     "%s is managed on %s: set its editable properties there (hsync hep set -d "
                     "<%s's folder> ...)",
                     target, o.origin, o.origin);
            return HS_EINVAL;
        }
        store_guid_format(&tg, tbuf); /* lowercase, as lookups format it */
    } else {
        if (store_class_check(target) || !rules_hep_family(target)) {
            snprintf(why, whylen,
                     "'%s' is neither a guid nor a class of items, security records or packages "
                     "(item.*, security.*, package)",
                     target);
            return HS_EINVAL;
        }
        snprintf(tbuf, sizeof(tbuf), "%s", target);
    }

    int err = s_record_guid(self, tbuf, out);
    if (err)
        return err;
    /* current settings, then this one, in key order */
    s_map_t props = {0};
    store_obj_t rec;
    uint8_t *copy = NULL;
    err = store_get(t, out, &rec);
    if (!err && !(rec.flags & STORE_OBJ_TOMBSTONE)) {
        copy = malloc(rec.body_len ? rec.body_len : 1);
        if (!copy)
            return HS_ENOMEM;
        memcpy(copy, rec.body, rec.body_len);
        err = s_props_entries(copy, rec.body_len, &props) == HS_ENOMEM ? HS_ENOMEM : HS_OK;
    } else if (err == HS_ENOTFOUND || !err) {
        err = HS_OK;
    }
    store_mpw_t val, w;
    store_mpw_init(&val);
    store_mpw_init(&w);
    store_mpw_str(&val, editable ? "editable" : "locked");
    err = err ? err : store_mpw_error(&val);
    if (!err) {
        s_entry_t *hit = (s_entry_t *)s_map_find(&props, (const uint8_t *)prop, plen);
        s_entry_t ne = {(const uint8_t *)prop, plen, val.mpw_buf, val.mpw_len, true};
        if (hit)
            *hit = ne;
        else
            err = s_map_add(&props, &ne);
    }
    if (!err) {
        s_map_sort(&props);
        store_mpw_map(&w, 2);
        store_mpw_str(&w, "props");
        store_mpw_map(&w, (uint32_t)props.n);
        for (size_t i = 0; i < props.n; i++) {
            store_mpw_strn(&w, props.e[i].key, props.e[i].klen);
            store_mpw_raw(&w, props.e[i].val, props.e[i].vlen);
        }
        store_mpw_str(&w, "target");
        store_mpw_str(&w, tbuf);
        err = store_mpw_error(&w);
    }
    if (!err) {
        store_obj_t o = {
            .guid = *out, .cls = RULES_HEP_CLASS, .body = w.mpw_buf, .body_len = w.mpw_len};
        err = store_put(t, &o, NULL);
    }
    store_mpw_free(&w);
    store_mpw_free(&val);
    s_map_free(&props);
    free(copy);
    return err;
}

/* ---- local edits kept over copies from above ------------------------------ */

/* Overrides of g: entries point into buf (a copy the caller frees). */
static int s_overrides_load(store_txn_t *t, const store_guid_t *g, uint8_t **buf, s_map_t *m)
{
    *buf = NULL;
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_HEP, g->b, 16, &v, &vl);
    if (err)
        return err;
    *buf = malloc(vl ? vl : 1);
    if (!*buf)
        return HS_ENOMEM;
    memcpy(*buf, v, vl);
    store_mpr_t r;
    store_mpr_init(&r, *buf, vl);
    uint32_t n = store_mpr_array(&r);
    for (uint32_t i = 0; i < n && !store_mpr_error(&r); i++) {
        s_entry_t e;
        if (store_mpr_array(&r) != 3)
            return HS_EMALF;
        e.key = store_mpr_bytes(&r, &e.klen);
        e.present = store_mpr_bool(&r);
        e.val = store_mpr_raw(&r, &e.vlen);
        if (!store_mpr_error(&r) && (err = s_map_add(m, &e)))
            return err;
    }
    return store_mpr_done(&r) ? HS_EMALF : HS_OK;
}

static int s_overrides_store(store_txn_t *t, const store_guid_t *g, s_map_t *m)
{
    s_map_sort(m);
    if (!m->n) {
        int err = store_kv_del(t, STORE_T_HEP, g->b, 16);
        return err == HS_ENOTFOUND ? HS_OK : err;
    }
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, (uint32_t)m->n);
    for (size_t i = 0; i < m->n; i++) {
        store_mpw_array(&w, 3);
        store_mpw_strn(&w, m->e[i].key, m->e[i].klen);
        store_mpw_bool(&w, m->e[i].present);
        if (m->e[i].present)
            store_mpw_raw(&w, m->e[i].val, m->e[i].vlen);
        else
            store_mpw_nil(&w);
    }
    int err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_HEP, g->b, 16, w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    return err;
}

int rules_hep_overrides(store_txn_t *t, const store_guid_t *g, char *out, size_t outlen)
{
    out[0] = '\0';
    uint8_t *buf;
    s_map_t m = {0};
    int err = s_overrides_load(t, g, &buf, &m);
    size_t pos = 0;
    for (size_t i = 0; !err && i < m.n && pos < outlen; i++) {
        int n = snprintf(out + pos, outlen - pos, "%s%.*s", i ? "," : "", (int)m.e[i].klen,
                         (const char *)m.e[i].key);
        pos += n > 0 ? (size_t)n : 0;
    }
    s_map_free(&m);
    free(buf);
    return err == HS_ENOTFOUND ? HS_OK : err;
}

static void s_keep_place(const store_obj_t *cur, store_obj_t *o, rules_result_t *res)
{
    snprintf(res->rr_origin, sizeof(res->rr_origin), "%s", cur->origin);
    snprintf(res->rr_owner, sizeof(res->rr_owner), "%s", cur->owner);
    o->origin = res->rr_origin;
    o->owner = res->rr_owner;
}

int rules_hep_local(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, const store_obj_t *cur,
                    rules_result_t *res)
{
    if (!cur || (cur->flags & STORE_OBJ_TOMBSTONE) || !strcmp(cur->origin, c->rc_self))
        return HS_OK; /* managed here */
    char gs[STORE_GUID_STRLEN + 1];
    store_guid_format(&cur->guid, gs);
    if (o->flags & STORE_OBJ_TOMBSTONE) {
        snprintf(res->rr_why, sizeof(res->rr_why),
                 "%s (%s) is managed on %s and replicated here: delete it on %s", gs, cur->cls,
                 cur->origin, cur->origin);
        return HS_ELOCKED;
    }
    if (strcmp(o->cls, cur->cls)) {
        snprintf(res->rr_why, sizeof(res->rr_why),
                 "%s is %s %s managed on %s: its class cannot change here", gs,
                 cur->cls[0] && strchr("aeiou", cur->cls[0]) ? "an" : "a", cur->cls,
                 cur->origin);
        return HS_ELOCKED;
    }
    s_map_t was = {0}, now = {0}, ov = {0};
    uint8_t *ovbuf = NULL;
    int err = s_body_entries(cur->body, cur->body_len, &was);
    if (!err)
        err = s_body_entries(o->body, o->body_len, &now);
    if (!err) {
        err = s_overrides_load(t, &cur->guid, &ovbuf, &ov);
        if (err == HS_ENOTFOUND)
            err = HS_OK;
    }
    /* every property that differs must be editable; it joins the overrides */
    for (int pass = 0; pass < 2 && !err; pass++) {
        const s_map_t *a = pass ? &was : &now, *b = pass ? &now : &was;
        for (size_t i = 0; i < a->n && !err; i++) {
            const s_entry_t *other = s_map_find(b, a->e[i].key, a->e[i].klen);
            if (pass && other)
                continue; /* compared in the first pass */
            if (other && s_same_value(&a->e[i], other))
                continue;
            bool editable = false;
            err = rules_hep_editable(t, cur, (const char *)a->e[i].key, a->e[i].klen, &editable);
            if (err)
                break;
            if (!editable) {
                snprintf(res->rr_why, sizeof(res->rr_why),
                         "property '%.*s' of %s (%s) is locked by %s, where it is managed: "
                         "change it there, or have %s make it editable (hsync hep set -d <%s's "
                         "folder> %s %.*s editable)",
                         (int)a->e[i].klen, (const char *)a->e[i].key, gs, cur->cls, cur->origin,
                         cur->origin, cur->origin, gs, (int)a->e[i].klen,
                         (const char *)a->e[i].key);
                err = HS_ELOCKED;
                break;
            }
            s_entry_t e = {a->e[i].key, a->e[i].klen, pass ? NULL : a->e[i].val,
                           pass ? 0 : a->e[i].vlen, !pass};
            s_entry_t *hit = (s_entry_t *)s_map_find(&ov, e.key, e.klen);
            if (hit)
                *hit = e;
            else
                err = s_map_add(&ov, &e);
        }
    }
    if (!err) {
        store_guid_t g = cur->guid;
        s_keep_place(cur, o, res); /* before the write below moves cur's pages */
        err = s_overrides_store(t, &g, &ov);
    }
    s_map_free(&was);
    s_map_free(&now);
    s_map_free(&ov);
    free(ovbuf);
    return err;
}

int rules_hep_apply(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, const store_obj_t *cur,
                    rules_result_t *res)
{
    if (o->flags & STORE_OBJ_TOMBSTONE) {
        int err = store_kv_del(t, STORE_T_HEP, o->guid.b, 16);
        if (err && err != HS_ENOTFOUND)
            return err;
        return rules_apply_default(t, c, o, cur, res);
    }
    s_map_t ov = {0}, in = {0}, keep = {0};
    uint8_t *ovbuf = NULL;
    int err = s_overrides_load(t, &o->guid, &ovbuf, &ov);
    if (err == HS_ENOTFOUND) {
        free(ovbuf);
        return rules_apply_default(t, c, o, cur, res);
    }
    /* keep the local values of properties still editable; lay them over
     * the incoming body, in key order */
    for (size_t i = 0; !err && i < ov.n; i++) {
        bool editable = false;
        err = rules_hep_editable(t, o, (const char *)ov.e[i].key, ov.e[i].klen, &editable);
        if (!err && editable)
            err = s_map_add(&keep, &ov.e[i]);
    }
    s_map_sort(&keep); /* records from older versions may be unsorted */
    if (!err)
        err = s_body_entries(o->body, o->body_len, &in);
    store_mpw_t w;
    store_mpw_init(&w);
    if (!err) {
        /* merge two sorted lists: incoming entries and kept overrides */
        size_t n = 0, i = 0, j = 0;
        s_map_t out = {0};
        while (!err && (i < in.n || j < keep.n)) {
            int cmp = i == in.n ? 1
                      : j == keep.n
                          ? -1
                          : s_keycmp(in.e[i].key, in.e[i].klen, keep.e[j].key, keep.e[j].klen);
            if (cmp < 0) {
                err = s_map_add(&out, &in.e[i++]);
            } else {
                if (keep.e[j].present)
                    err = s_map_add(&out, &keep.e[j]);
                j++;
                if (cmp == 0)
                    i++;
            }
        }
        n = out.n;
        store_mpw_map(&w, (uint32_t)n);
        for (size_t k = 0; k < n; k++) {
            store_mpw_strn(&w, out.e[k].key, out.e[k].klen);
            store_mpw_raw(&w, out.e[k].val, out.e[k].vlen);
        }
        s_map_free(&out);
        if (!err)
            err = store_mpw_error(&w);
    }
    if (!err && keep.n != ov.n)
        err = s_overrides_store(t, &o->guid, &keep);
    if (!err) {
        const uint8_t *body = o->body;
        size_t body_len = o->body_len;
        o->body = w.mpw_buf;
        o->body_len = w.mpw_len;
        err = store_obj_check(o);
        if (!err)
            err = rules_apply_default(t, c, o, NULL, res);
        o->body = body; /* w's buffer is freed below */
        o->body_len = body_len;
    }
    store_mpw_free(&w);
    s_map_free(&ov);
    s_map_free(&in);
    s_map_free(&keep);
    free(ovbuf);
    (void)cur;
    return err;
}

int rules_hep_parent_only(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                          const store_obj_t *cur, rules_result_t *res)
{
    (void)t;
    (void)o;
    bool from_above = cur && !(cur->flags & STORE_OBJ_TOMBSTONE) && strcmp(cur->origin, c->rc_self);
    if (!from_above && !c->rc_parent)
        return HS_OK; /* the top of the hierarchy manages them */
    snprintf(res->rr_why, sizeof(res->rr_why),
             "primary-user associations are managed on the parent (%s) and flow down only: "
             "change it there",
             c->rc_parent ? c->rc_parent : cur->origin);
    return HS_ELOCKED;
}
