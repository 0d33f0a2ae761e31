/*
 * fuzz_json_body.c - JSON text -> canonical msgpack body -> JSON.
 *
 * Properties checked for every input that parses as a JSON object and
 * encodes: the body passes store_body_check, decodes back to a value equal to
 * the parsed one, and re-encoding that value gives the same bytes
 * (canonical: one encoding per value). Same for resource keys when the object
 * holds only strings.
 */
#include "broker/json.h"
#include "store/hs_error.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_roundtrip(const json_t *j, int keys)
{
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    json_t *back = NULL;
    int rc = keys ? broker_json_to_keys(j, &buf, &len) : broker_json_to_body(j, &buf, &len);
    if (rc != HS_OK) {
        if (rc != HS_EMALF && rc != HS_ETOOBIG && rc != HS_ENOMEM)
            abort();
        if (buf)
            abort();
        return;
    }
    if ((keys ? store_keys_check(buf, len) : store_body_check(buf, len)) != HS_OK)
        abort();
    if (broker_json_from_msgpack(buf, len, &back) != HS_OK)
        abort();
    if (!json_equal((json_t *)j, back))
        abort();
    rc = keys ? broker_json_to_keys(back, &buf2, &len2) : broker_json_to_body(back, &buf2, &len2);
    if (rc != HS_OK || len2 != len || memcmp(buf, buf2, len) != 0)
        abort();
    json_decref(back);
    free(buf);
    free(buf2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL;
    char why[256];
    if (broker_json_parse((const char *)data, size, "body", &j, why, sizeof(why)) != HS_OK) {
        if (j)
            abort();
        return 0;
    }
    s_roundtrip(j, 0);
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        int strings = 1;
        json_object_foreach(j, k, v) strings &= json_is_string(v);
        if (strings)
            s_roundtrip(j, 1);
    }
    json_decref(j);
    return 0;
}
