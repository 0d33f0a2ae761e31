/*
 * hsync_legacy_keys.c - turn a node folder back into the layout of hsync
 * before 0.10, for the migration test: the secrets in the store's meta table.
 *
 *   hsync_legacy_keys -d DIR
 *
 * Reads curve_secret and token_key from DIR/keys, writes them into meta (as
 * older versions kept them) and removes DIR/keys. The node's broker must not
 * run. Prints nothing on success; exit 0, 1 on failure (with a message on
 * stderr), 2 on bad usage.
 */
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct l_keys {
    char sec[STORE_SECRET_MAX + 1], tk[STORE_SECRET_MAX + 1];
} l_keys_t;

static int s_put_txn(store_txn_t *t, void *ctx)
{
    l_keys_t *k = ctx;
    int err = store_meta_put(t, "curve_secret", k->sec);
    return err ? err : store_meta_put(t, "token_key", k->tk);
}

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "-d") != 0) {
        fprintf(stderr, "usage: hsync_legacy_keys -d DIR\n");
        return 2;
    }
    store_t *s = NULL;
    l_keys_t k;
    int err = store_open(argv[2], 0, &s);
    if (!err)
        err = store_secret_get(s, "curve_secret", k.sec, sizeof(k.sec));
    if (!err)
        err = store_secret_get(s, "token_key", k.tk, sizeof(k.tk));
    if (!err)
        err = store_write(s, s_put_txn, &k);
    char path[4200];
    snprintf(path, sizeof(path), "%s/keys", argv[2]);
    if (!err && unlink(path) != 0)
        err = HS_EIO;
    store_close(&s);
    memset(&k, 0, sizeof(k));
    if (err) {
        fprintf(stderr, "hsync_legacy_keys: %s: %s\n", argv[2], hs_strerror(err));
        return 1;
    }
    return 0;
}
