#include "rules/rules.h"

#include "rules/hep.h"
#include "rules/resource.h"
#include "store/mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- family handlers ---------------------------------------------------- */

static bool s_item_sendable(const store_obj_t *o, unsigned dir)
{
    (void)dir;
    return strcmp(o->cls, "item.server_job") != 0 && strncmp(o->cls, "item.server_job.", 16) != 0;
}

static bool s_resource_sendable(const store_obj_t *o, unsigned dir)
{
    /* Imported resources (AD import, data connector) stay where they were
     * imported: never up. */
    return !(dir == RULES_UP && (o->flags & STORE_OBJ_IMPORTED));
}

/* system.*: HEP settings travel down (with what they unlock), agent trust
 * summaries travel up, agent registration requests stay where they are. */
static bool s_system_sendable(const store_obj_t *o, unsigned dir)
{
    if (!strncmp(o->cls, "system.hep", 10))
        return dir == RULES_DOWN;
    if (!strncmp(o->cls, "system.trust", 12))
        return dir == RULES_UP;
    return false;
}

static const rules_family_t s_families[] = {
    /* name      dirs                    scope by          diff by      claims */
    {"item", RULES_DOWN | RULES_SIDE, RULES_KEY_ORIGIN, RULES_BY_HASH, false, s_item_sendable,
     rules_hep_apply, rules_hep_local},
    {"security", RULES_DOWN | RULES_SIDE, RULES_KEY_ORIGIN, RULES_BY_HASH, false, NULL,
     rules_hep_apply, rules_hep_local},
    {"resource", RULES_DOWN | RULES_UP | RULES_SIDE, RULES_KEY_OWNER, RULES_BY_MTIME, true,
     s_resource_sendable, rules_resource_apply, NULL},
    {"dataclass", RULES_DOWN | RULES_UP | RULES_SIDE, RULES_KEY_OWNER, RULES_BY_MTIME, false,
     s_resource_sendable, rules_dataclass_apply, NULL},
    {"package", RULES_DOWN | RULES_SIDE, RULES_KEY_ORIGIN, RULES_BY_HASH, false, NULL,
     rules_hep_apply, rules_hep_local},
    {"event", RULES_DOWN | RULES_UP | RULES_SIDE, RULES_KEY_ORIGIN, RULES_BY_SEQ, false, NULL, NULL,
     NULL},
    {"assoc", RULES_DOWN, RULES_KEY_ORIGIN, RULES_BY_HASH, false, NULL, NULL,
     rules_hep_parent_only},
    {"system", RULES_DOWN | RULES_UP, RULES_KEY_ORIGIN, RULES_BY_HASH, false, s_system_sendable,
     NULL, NULL},
};

const rules_family_t *rules_family_of(const char *cls)
{
    char fam[16];
    if (store_class_family(cls, fam, sizeof(fam)) >= sizeof(fam))
        return NULL;
    for (size_t i = 0; i < sizeof(s_families) / sizeof(s_families[0]); i++)
        if (!strcmp(fam, s_families[i].fam_name))
            return &s_families[i];
    return NULL;
}

/* ---- rule records ------------------------------------------------------- */

#define S_DAY (24ull * 3600 * 1000)

typedef struct s_default {
    const char *name;
    const char *prefixes[2];
    unsigned dirs;
    bool enabled, always_complete;
} s_default_t;

static const s_default_t s_defaults[] = {
    {"items", {"item.", NULL}, RULES_DOWN, true, false},
    {"security", {"security.", NULL}, RULES_DOWN, true, true},
    {"resources", {"resource.", "dataclass."}, RULES_DOWN | RULES_UP, true, false},
    {"packages", {"package", NULL}, RULES_DOWN, true, false},
    {"events", {"event.", NULL}, RULES_DOWN | RULES_UP, false, false},
    {"associations", {"assoc.", NULL}, RULES_DOWN, true, false},
    {"system", {"system.", NULL}, RULES_DOWN | RULES_UP, true, false},
};

static size_t s_key(char *k, size_t cap, const char *name, bool standalone)
{
    int n = snprintf(k, cap, "%c/%s", standalone ? 's' : 'h', name);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int rules_encode(const rules_rule_t *r, uint8_t **out, size_t *len)
{
    store_mpw_t w;
    store_mpw_init(&w);
    bool side = r->ru_dirs == RULES_SIDE;
    store_mpw_array(&w, side ? 13 : 10);
    store_mpw_uint(&w, side ? 2 : 1); /* record version: 2 adds the standalone fields */
    store_mpw_str(&w, r->ru_name);
    store_mpw_array(&w, (uint32_t)r->ru_nprefix);
    for (size_t i = 0; i < r->ru_nprefix; i++)
        store_mpw_str(&w, r->ru_prefix[i]);
    store_mpw_uint(&w, r->ru_dirs);
    store_mpw_bool(&w, r->ru_enabled);
    store_mpw_bool(&w, r->ru_always_complete);
    store_mpw_uint(&w, r->ru_every_ms);
    store_mpw_uint(&w, r->ru_complete_every_ms);
    store_mpw_uint(&w, r->ru_verify_pct);
    store_mpw_array(&w, (uint32_t)r->ru_ndataclass);
    for (size_t i = 0; i < r->ru_ndataclass; i++)
        store_mpw_str(&w, r->ru_dataclass[i]);
    if (side) {
        store_mpw_array(&w, (uint32_t)r->ru_ndest);
        for (size_t i = 0; i < r->ru_ndest; i++)
            store_mpw_str(&w, r->ru_dest[i]);
        store_mpw_str(&w, r->ru_target);
        store_mpw_array(&w, (uint32_t)r->ru_nwhere);
        for (size_t i = 0; i < r->ru_nwhere; i++)
            store_mpw_str(&w, r->ru_where[i]);
    }
    int err = store_mpw_error(&w);
    if (err) {
        store_mpw_free(&w);
        return err;
    }
    *out = w.mpw_buf;
    *len = w.mpw_len;
    return HS_OK;
}

int rules_decode(const void *buf, size_t len, rules_rule_t *out)
{
    memset(out, 0, sizeof(*out));
    store_mpr_t r;
    store_mpr_init(&r, buf, len);
    uint32_t fields = store_mpr_array(&r);
    uint64_t version = store_mpr_uint(&r);
    if (!((fields == 10 && version == 1) || (fields == 13 && version == 2)))
        return HS_EMALF;
    store_mpr_str(&r, out->ru_name, sizeof(out->ru_name));
    uint32_t n = store_mpr_array(&r);
    if (n > RULES_PREFIX_MAX)
        return HS_EMALF;
    for (uint32_t i = 0; i < n; i++)
        store_mpr_str(&r, out->ru_prefix[i], sizeof(out->ru_prefix[i]));
    out->ru_nprefix = n;
    out->ru_dirs = (unsigned)store_mpr_uint(&r);
    out->ru_enabled = store_mpr_bool(&r);
    out->ru_always_complete = store_mpr_bool(&r);
    out->ru_every_ms = store_mpr_uint(&r);
    out->ru_complete_every_ms = store_mpr_uint(&r);
    out->ru_verify_pct = (unsigned)store_mpr_uint(&r);
    n = store_mpr_array(&r);
    if (n > RULES_DATACLASS_MAX)
        return HS_EMALF;
    for (uint32_t i = 0; i < n; i++)
        store_mpr_str(&r, out->ru_dataclass[i], sizeof(out->ru_dataclass[i]));
    out->ru_ndataclass = n;
    if (version == 2) {
        n = store_mpr_array(&r);
        if (n > RULES_DEST_MAX)
            return HS_EMALF;
        for (uint32_t i = 0; i < n; i++)
            store_mpr_str(&r, out->ru_dest[i], sizeof(out->ru_dest[i]));
        out->ru_ndest = n;
        store_mpr_str(&r, out->ru_target, sizeof(out->ru_target));
        n = store_mpr_array(&r);
        if (n > RULES_WHERE_MAX)
            return HS_EMALF;
        for (uint32_t i = 0; i < n; i++)
            store_mpr_str(&r, out->ru_where[i], sizeof(out->ru_where[i]));
        out->ru_nwhere = n;
    }
    int err = store_mpr_done(&r);
    bool side_ok = version == 2 ? out->ru_dirs == RULES_SIDE : out->ru_dirs <= 3;
    if (!err && (!out->ru_name[0] || out->ru_dirs == 0 || !side_ok || out->ru_verify_pct > 100))
        err = HS_EMALF;
    return err;
}

int rules_put(store_txn_t *t, const rules_rule_t *r)
{
    char k[RULES_NAME_MAX + 3];
    size_t kl = s_key(k, sizeof(k), r->ru_name, r->ru_dirs == RULES_SIDE);
    if (!kl)
        return HS_EINVAL;
    uint8_t *v;
    size_t vl;
    int err = rules_encode(r, &v, &vl);
    if (err)
        return err;
    err = store_kv_put(t, STORE_T_RULES, k, kl, v, vl);
    free(v);
    return err;
}

int rules_get(store_txn_t *t, const char *name, rules_rule_t *out)
{
    char k[RULES_NAME_MAX + 3];
    int err = HS_ENOTFOUND;
    for (int side = 0; side < 2 && err == HS_ENOTFOUND; side++) {
        size_t kl = s_key(k, sizeof(k), name, side);
        if (!kl)
            return HS_ENOTFOUND;
        const void *v;
        size_t vl;
        err = store_kv_get(t, STORE_T_RULES, k, kl, &v, &vl);
        if (!err)
            return rules_decode(v, vl, out);
    }
    return err;
}

int rules_del(store_txn_t *t, const char *name)
{
    char k[RULES_NAME_MAX + 3];
    size_t kl = s_key(k, sizeof(k), name, false);
    const void *v;
    size_t vl;
    if (kl && store_kv_get(t, STORE_T_RULES, k, kl, &v, &vl) == HS_OK)
        return HS_EINVAL;
    kl = s_key(k, sizeof(k), name, true);
    return kl ? store_kv_del(t, STORE_T_RULES, k, kl) : HS_ENOTFOUND;
}

typedef struct s_each {
    rules_cb cb;
    void *ctx;
    size_t n;
} s_each_t;

static int s_each_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k;
    (void)kl;
    s_each_t *e = ctx;
    rules_rule_t r;
    if (rules_decode(v, vl, &r))
        return 0;
    e->n++;
    return e->cb ? e->cb(e->ctx, &r) : 0;
}

int rules_each(store_txn_t *t, rules_cb cb, void *ctx)
{
    s_each_t e = {cb, ctx, 0};
    int err = store_kv_scan(t, STORE_T_RULES, "h/", 2, s_each_one, &e);
    return err ? err : store_kv_scan(t, STORE_T_RULES, "s/", 2, s_each_one, &e);
}

int rules_ensure_defaults(store_txn_t *t)
{
    for (size_t i = 0; i < sizeof(s_defaults) / sizeof(s_defaults[0]); i++) {
        const s_default_t *d = &s_defaults[i];
        rules_rule_t r;
        int err = rules_get(t, d->name, &r);
        if (err != HS_ENOTFOUND) {
            if (err && err != HS_EMALF)
                return err;
            continue; /* kept as the admin left it */
        }
        memset(&r, 0, sizeof(r));
        snprintf(r.ru_name, sizeof(r.ru_name), "%s", d->name);
        for (size_t j = 0; j < 2 && d->prefixes[j]; j++)
            snprintf(r.ru_prefix[r.ru_nprefix++], sizeof(r.ru_prefix[0]), "%s", d->prefixes[j]);
        r.ru_dirs = d->dirs;
        r.ru_enabled = d->enabled;
        r.ru_always_complete = d->always_complete;
        r.ru_every_ms = S_DAY;
        r.ru_complete_every_ms = 30 * S_DAY;
        err = rules_put(t, &r);
        if (err)
            return err;
    }
    return HS_OK;
}

/* ---- scope -------------------------------------------------------------- */

bool rules_carries(const rules_rule_t *r, const char *cls)
{
    bool match = false;
    for (size_t i = 0; i < r->ru_nprefix && !match; i++)
        match = strncmp(cls, r->ru_prefix[i], strlen(r->ru_prefix[i])) == 0;
    if (!match)
        return false;
    if (r->ru_ndataclass && strncmp(cls, "dataclass.", 10) == 0) {
        for (size_t i = 0; i < r->ru_ndataclass; i++)
            if (!strcmp(cls + 10, r->ru_dataclass[i]) || !strcmp(cls, r->ru_dataclass[i]))
                return true;
        return false;
    }
    return true;
}

bool rules_names_has(const rules_names_t *n, const char *name)
{
    for (size_t i = 0; i < n->rn_count; i++)
        if (!strcmp(n->rn_names[i], name))
            return true;
    return false;
}

static const char *s_scope_key(const rules_family_t *f, const store_obj_t *o, unsigned dir)
{
    /* standalone runs declare and scope by owner for every family */
    return f->fam_key == RULES_KEY_OWNER || dir == RULES_SIDE ? o->owner : o->origin;
}

bool rules_applies_to(const rules_rule_t *r, const char *peer)
{
    if (r->ru_dirs != RULES_SIDE)
        return true;
    for (size_t i = 0; i < r->ru_ndest; i++)
        if (!strcmp(r->ru_dest[i], peer))
            return true;
    return false;
}

/* Does resource o meet every NAME=VALUE condition (a key or a string
 * property of the body)? */
static bool s_where_match(const rules_rule_t *r, const store_obj_t *o)
{
    for (size_t i = 0; i < r->ru_nwhere; i++) {
        const char *eq = strchr(r->ru_where[i], '=');
        if (!eq)
            return false;
        size_t nl = (size_t)(eq - r->ru_where[i]), vlen = strlen(eq + 1);
        bool hit = false;
        const uint8_t *maps[2] = {o->keys, o->body};
        size_t lens[2] = {o->keys_len, o->body_len};
        for (int m = 0; m < 2 && !hit; m++) {
            if (!lens[m])
                continue;
            store_mpr_t rd;
            store_mpr_init(&rd, maps[m], lens[m]);
            uint32_t n = store_mpr_map(&rd);
            for (uint32_t j = 0; j < n && !store_mpr_error(&rd) && !hit; j++) {
                size_t kl, vl;
                const uint8_t *k = store_mpr_bytes(&rd, &kl);
                store_mpr_t peek = rd;
                const uint8_t *v = store_mpr_bytes(&peek, &vl);
                if (!store_mpr_error(&peek) && kl == nl && !memcmp(k, r->ru_where[i], nl) &&
                    vl == vlen && !memcmp(v, eq + 1, vl))
                    hit = true;
                store_mpr_raw(&rd, &vl);
            }
        }
        if (!hit)
            return false;
    }
    return true;
}

bool rules_target_member(store_txn_t *t, const rules_rule_t *r, const store_obj_t *o)
{
    if (!r->ru_target[0] || (o->flags & STORE_OBJ_TOMBSTONE))
        return true;
    if (!strncmp(o->cls, "dataclass.", 10)) {
        store_obj_t res;
        if (store_get(t, &o->resource, &res) != HS_OK || (res.flags & STORE_OBJ_TOMBSTONE))
            return false;
        return rules_target_member(t, r, &res);
    }
    if (strncmp(o->cls, "resource.", 9) != 0)
        return true;
    return !strcmp(o->cls, r->ru_target) && s_where_match(r, o);
}

bool rules_send_scope(const rules_rule_t *r, unsigned dir, const store_obj_t *o,
                      const rules_names_t *mine)
{
    const rules_family_t *f = rules_family_of(o->cls);
    if (!f || !(f->fam_dirs & dir) || !(r->ru_dirs & dir) || !rules_carries(r, o->cls))
        return false;
    if (f->fam_sendable && !f->fam_sendable(o, dir))
        return false;
    if (dir == RULES_SIDE) /* everything of its classes here, but what the destination skips */
        return !o->owner || !rules_names_has(mine, o->owner);
    const char *k = s_scope_key(f, o, dir);
    if (dir == RULES_UP)
        return rules_names_has(mine, k);
    /* down: our own data (mine[0] is this node) and what came from above,
     * never what came from below */
    return !strcmp(k, mine->rn_names[0]) || !rules_names_has(mine, k);
}

bool rules_recv_scope(const rules_rule_t *r, unsigned dir, const store_obj_t *o,
                      const rules_names_t *branch)
{
    const rules_family_t *f = rules_family_of(o->cls);
    if (!f || !(f->fam_dirs & dir) || !rules_carries(r, o->cls))
        return false;
    if (f->fam_sendable && !f->fam_sendable(o, dir))
        return false;
    const char *k = s_scope_key(f, o, dir);
    return dir == RULES_DOWN ? !rules_names_has(branch, k) : rules_names_has(branch, k);
}

/* ---- apply -------------------------------------------------------------- */

void rules_result_init(rules_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->rr_outcome = RULES_SKIPPED;
}

void rules_result_free(rules_result_t *res)
{
    free(res->rr_payload);
    res->rr_payload = NULL;
    res->rr_payload_len = 0;
    res->rr_event = NULL;
}

int rules_apply_default(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                        const store_obj_t *cur, rules_result_t *res)
{
    const rules_family_t *f = rules_family_of(o->cls);
    res->rr_guid = o->guid;
    if (o->flags & STORE_OBJ_TOMBSTONE) {
        if (!(c->rc_how & RULES_APPLY_STATE) && f && f->fam_diff_by == RULES_BY_MTIME && cur &&
            cur->mtime > o->mtime) {
            res->rr_outcome = RULES_SKIPPED; /* the local copy changed later: newest wins */
            return HS_OK;
        }
        if (!cur || (cur->flags & STORE_OBJ_TOMBSTONE)) {
            res->rr_outcome = RULES_SKIPPED;
            return HS_OK;
        }
        res->rr_outcome = RULES_DELETED;
        return store_delete(t, &o->guid, o->mtime);
    }
    /* newest wins by last change (RULES_BY_MTIME outside state transfers),
     * else the sender wins; one lookup of the store */
    bool changed = false;
    bool newest = f && f->fam_diff_by == RULES_BY_MTIME && !(c->rc_how & RULES_APPLY_STATE);
    int err = store_put_ex(t, o, STORE_PUT_CHECKED | (newest ? STORE_PUT_NEWER : 0u), &changed);
    res->rr_outcome = changed ? RULES_APPLIED : RULES_SKIPPED;
    return err;
}

int rules_apply(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, rules_result_t *res)
{
    res->rr_outcome = RULES_SKIPPED;
    res->rr_guid = o->guid;
    const rules_family_t *f = rules_family_of(o->cls);
    if (!f)
        return HS_ECLASS;
    if (!(f->fam_dirs & c->rc_dir) || (f->fam_sendable && !f->fam_sendable(o, c->rc_dir)))
        return HS_EDIRECTION;
    /* standalone runs: no handler decides (no conflict prevention), the
     * destination takes what arrives; a differential run still keeps a
     * newer local resource (rules_apply_default) */
    rules_hook_fn apply = c->rc_dir == RULES_SIDE ? NULL : f->fam_apply;
    if (!(o->flags & STORE_OBJ_TOMBSTONE)) {
        int err = store_obj_check(o);
        if (err)
            return err;
        if (!apply)
            return rules_apply_default(t, c, o, NULL, res);
        if (!f->fam_claims) /* only claims weigh the local copy: one lookup saved */
            return apply(t, c, o, NULL, res);
    }
    store_obj_t cur;
    int err = store_get(t, &o->guid, &cur);
    if (err && err != HS_ENOTFOUND)
        return err;
    const store_obj_t *curp = err ? NULL : &cur;
    return apply ? apply(t, c, o, curp, res) : rules_apply_default(t, c, o, curp, res);
}

int rules_local_check(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, rules_result_t *res)
{
    res->rr_guid = o->guid;
    const rules_family_t *f = rules_family_of(o->cls);
    if (!f || !f->fam_local)
        return HS_OK;
    store_obj_t cur;
    int err = store_get(t, &o->guid, &cur);
    if (err && err != HS_ENOTFOUND)
        return err;
    return f->fam_local(t, c, o, err ? NULL : &cur, res);
}

bool rules_refused(int err)
{
    return err == HS_EDIRECTION || err == HS_ECLASS || err == HS_EMALF || err == HS_ETOOBIG ||
           err == HS_EINVAL;
}

/* ---- durations ---------------------------------------------------------- */

int rules_parse_duration(const char *s, uint64_t *ms)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || v == 0)
        return HS_EINVAL;
    uint64_t mul;
    if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s"))
        mul = 1000;
    else if (!strcmp(end, "m"))
        mul = 60000;
    else if (!strcmp(end, "h"))
        mul = 3600000;
    else if (!strcmp(end, "d"))
        mul = S_DAY;
    else
        return HS_EINVAL;
    if (v > UINT64_MAX / mul / 2)
        return HS_EINVAL;
    *ms = v * mul;
    return HS_OK;
}

void rules_format_duration(uint64_t ms, char *out, size_t outlen)
{
    static const struct {
        uint64_t mul;
        const char *unit;
    } units[] = {{S_DAY, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    if (ms == 0) {
        snprintf(out, outlen, "never");
        return;
    }
    for (size_t i = 0; i < 5; i++) {
        if (ms % units[i].mul == 0) {
            snprintf(out, outlen, "%llu%s", (unsigned long long)(ms / units[i].mul), units[i].unit);
            return;
        }
    }
}
