/*
 * hsync_corrupt.c - silent corruption of objects, for the verification tests.
 *
 *   hsync_corrupt -d DIR GUID...
 *
 * Opens the store of node folder DIR and replaces the body of each live
 * object GUID with {"corrupt":true} through store_debug_rewrite: no
 * change-log entry, same seq and mtime, so only data verification (rules
 * --verify) can notice. LMDB serialises writers, so the node's broker may
 * be running. Prints nothing on success; exit 0, 1 on failure (with a
 * message on stderr), 2 on bad usage.
 */
#include "store/store.h"

#include <stdio.h>
#include <string.h>

/* {"corrupt": true}, canonical msgpack: fixmap 1, fixstr 7, true */
static const uint8_t s_body[] = {0x81, 0xa7, 'c', 'o', 'r', 'r', 'u', 'p', 't', 0xc3};

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "-d") != 0) {
        fprintf(stderr, "usage: hsync_corrupt -d DIR GUID...\n");
        return 2;
    }
    store_t *s = NULL;
    int err = store_open(argv[2], 0, &s);
    if (err) {
        fprintf(stderr, "hsync_corrupt: cannot open %s: %s\n", argv[2], hs_strerror(err));
        return 1;
    }
    store_txn_t *t = NULL;
    err = store_txn_begin(s, true, &t);
    for (int i = 3; !err && i < argc; i++) {
        store_guid_t g;
        err = store_guid_parse(argv[i], &g);
        if (!err)
            err = store_debug_rewrite(t, &g, s_body, sizeof(s_body));
        if (err)
            fprintf(stderr, "hsync_corrupt: %s: %s\n", argv[i], hs_strerror(err));
    }
    if (t) {
        if (err)
            store_txn_abort(&t);
        else
            err = store_txn_commit(&t);
    }
    if (err)
        fprintf(stderr, "hsync_corrupt: %s\n", hs_strerror(err));
    store_close(&s);
    return err ? 1 : 0;
}
