/*
 * fuzz_store_record.c - an object record from the store -> store_record_decode.
 *
 * Properties: a record that decodes points only inside the input, its
 * strings end inside it, and encoding the decoded object gives back the input
 * byte for byte (reserved header bytes aside; a version-1 record comes back as
 * version 2, its registration time 0); then its body and keys go
 * through store_body_check / store_keys_check and the object through
 * store_obj_check and store_obj_hash, none of which may crash.
 */
#include "store/hs_error.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool s_inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
    const uint8_t *q = p;
    return q >= data && q <= data + size && n <= (size_t)(data + size - q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    store_obj_t o;
    int rc = store_record_decode(data, size, &o);
    if (rc != HS_OK) {
        if (rc != HS_EMALF)
            abort();
        return 0;
    }
    if (!s_inside(o.cls, strlen(o.cls) + 1, data, size) ||
        !s_inside(o.origin, strlen(o.origin) + 1, data, size) ||
        !s_inside(o.owner, strlen(o.owner) + 1, data, size) ||
        (o.keys_len && !s_inside(o.keys, o.keys_len, data, size)) ||
        (o.body_len && !s_inside(o.body, o.body_len, data, size)) || o.keys_len > STORE_KEYS_MAX ||
        o.body_len > STORE_BODY_MAX)
        abort();
    size_t n = store_record_size(&o);
    bool v1 = data[0] == 1; /* 80-byte header, no registration time */
    if (n != (v1 ? size + 8 : size) || (v1 && o.rtime != 0))
        abort();
    uint8_t *buf = malloc(n), *want = calloc(1, n);
    if (!buf || !want)
        abort();
    if (store_record_encode(&o, buf) != n)
        abort();
    if (v1) { /* written back as version 2: the header grows by the time (0) */
        memcpy(want, data, 80);
        want[0] = 2;
        memcpy(want + 88, data + 80, size - 80);
    } else {
        memcpy(want, data, n);
    }
    want[2] = want[3] = want[71] = want[74] = want[75] = 0; /* reserved, not checked */
    if (memcmp(buf, want, n) != 0)
        abort();
    free(buf);
    free(want);
    if (o.body_len) {
        rc = store_body_check(o.body, o.body_len);
        if (rc != HS_OK && rc != HS_EMALF && rc != HS_ETOOBIG)
            abort();
    }
    if (o.keys_len) {
        rc = store_keys_check(o.keys, o.keys_len);
        if (rc != HS_OK && rc != HS_EMALF && rc != HS_ETOOBIG)
            abort();
    }
    (void)store_obj_check(&o);
    uint8_t h[STORE_HASH_LEN];
    store_obj_hash(&o, h);
    return 0;
}
