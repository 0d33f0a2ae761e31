#include "replication/local.h"

#include "replication/events.h"
#include "store/mp.h"

#include <stdio.h>
#include <string.h>

typedef struct s_dup {
    const store_guid_t *self;
    store_guid_t found;
    bool any;
} s_dup_t;

static int s_dup_one(void *ctx, const store_obj_t *o)
{
    s_dup_t *d = ctx;
    if (!memcmp(o->guid.b, d->self->b, 16) || strncmp(o->cls, "resource.", 9) != 0)
        return 0;
    d->found = o->guid;
    d->any = true;
    return 1;
}

/* First live resource other than o sharing one of o's keys. */
static int s_find_duplicate(store_txn_t *t, const store_obj_t *o, s_dup_t *d, char *key,
                            size_t keylen)
{
    store_mpr_t r;
    store_mpr_init(&r, o->keys, o->keys_len);
    uint32_t n = store_mpr_map(&r);
    for (uint32_t i = 0; i < n && !store_mpr_error(&r); i++) {
        char name[128], value[256];
        store_mpr_str(&r, name, sizeof(name));
        store_mpr_str(&r, value, sizeof(value));
        if (store_mpr_error(&r))
            return HS_OK; /* keys too long to match: no merge */
        int err = store_find_by_key(t, name, value, s_dup_one, d);
        if (err)
            return err;
        if (d->any) {
            snprintf(key, keylen, "%.127s=%.255s", name, value);
            return HS_OK;
        }
    }
    return HS_OK;
}

static void s_guid_str(store_mpw_t *w, const store_guid_t *g)
{
    char s[STORE_GUID_STRLEN + 1];
    store_guid_format(g, s);
    store_mpw_str(w, s);
}

int repl_local_put(store_txn_t *t, store_obj_t *o, repl_local_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->lr_guid = o->guid;
    if (strncmp(o->cls, "resource.", 9) != 0 || !o->keys_len)
        return store_put(t, o, &res->lr_changed);
    s_dup_t d = {.self = &o->guid};
    int err = s_find_duplicate(t, o, &d, res->lr_key, sizeof(res->lr_key));
    if (err || !d.any)
        return err ? err : store_put(t, o, &res->lr_changed);

    /* merge: the registration already here survives and takes the content */
    store_guid_t gone = o->guid;
    err = store_delete(t, &gone, 0);
    if (err && err != HS_ENOTFOUND)
        return err;
    o->guid = d.found;
    err = store_put(t, o, &res->lr_changed);
    if (err)
        return err;
    res->lr_merged = true;
    res->lr_merged_from = gone;
    res->lr_guid = d.found;
    char reason[600];
    snprintf(reason, sizeof(reason),
             "same resource key %s: the registration already on %s survives", res->lr_key,
             store_node_name(store_txn_store(t)));
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_map(&w, 5); /* canonical: keys in byte order */
    store_mpw_str(&w, "key");
    store_mpw_str(&w, res->lr_key);
    store_mpw_str(&w, "new");
    s_guid_str(&w, &d.found);
    store_mpw_str(&w, "node");
    store_mpw_str(&w, store_node_name(store_txn_store(t)));
    store_mpw_str(&w, "old");
    s_guid_str(&w, &gone);
    store_mpw_str(&w, "reason");
    store_mpw_str(&w, reason);
    err = store_mpw_error(&w);
    if (!err)
        err = repl_event_raise(t, REPL_EV_MERGE, w.mpw_buf, w.mpw_len, NULL);
    store_mpw_free(&w);
    return err;
}
