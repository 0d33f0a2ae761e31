/*
 * fuzz_body_check.c - untrusted bytes -> store_body_check, store_keys_check.
 *
 * Properties: both return HS_OK, HS_EMALF or HS_ETOOBIG; valid keys are a
 * valid body (keys are the stricter form); a valid body is one msgpack map
 * that the bounded reader skips exactly, to the last byte.
 */
#include "store/hs_error.h"
#include "store/mp.h"
#include "store/store.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int body = store_body_check(data, size);
    int keys = store_keys_check(data, size);
    if ((body != HS_OK && body != HS_EMALF && body != HS_ETOOBIG) ||
        (keys != HS_OK && keys != HS_EMALF && keys != HS_ETOOBIG))
        abort();
    if (keys == HS_OK && body != HS_OK)
        abort();
    if (body == HS_OK) {
        store_mpr_t r;
        store_mpr_init(&r, data, size);
        size_t len = 0;
        const uint8_t *p = store_mpr_raw(&r, &len);
        if (!p || p != data || len != size || store_mpr_done(&r) != HS_OK)
            abort();
        store_mpr_init(&r, data, size);
        uint32_t n = store_mpr_map(&r);
        if (store_mpr_error(&r) != HS_OK || n > size / 2)
            abort();
        for (uint32_t i = 0; i < n; i++) {
            size_t kl;
            if (!store_mpr_bytes(&r, &kl)) /* keys are strings */
                abort();
            store_mpr_raw(&r, &kl);
        }
        if (store_mpr_done(&r) != HS_OK)
            abort();
    }
    return 0;
}
