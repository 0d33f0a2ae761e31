/*
 * fuzz_msgpack_json.c - untrusted msgpack bytes -> JSON value.
 *
 * broker_json_from_msgpack must never crash or leak, must return HS_OK,
 * HS_EMALF or HS_ENOMEM, and whatever it accepts must print as JSON. When the
 * input is itself a canonical body (store_body_check passes), decoding and
 * re-encoding must give the same bytes.
 */
#include "broker/json.h"
#include "store/hs_error.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL;
    int rc = broker_json_from_msgpack(data, size, &j);
    if (rc != HS_OK) {
        if (j || (rc != HS_EMALF && rc != HS_ENOMEM))
            abort();
        return 0;
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        abort();
    free(text);
    if (store_body_check(data, size) == HS_OK) {
        uint8_t *buf = NULL;
        size_t len = 0;
        /* A canonical body may hold float32 or bin, which come back from JSON
         * as float64 / str, so the bytes may differ; but whatever re-encodes
         * must again be canonical. */
        if (broker_json_to_body(j, &buf, &len) == HS_OK && store_body_check(buf, len) != HS_OK)
            abort();
        free(buf);
    }
    json_decref(j);
    return 0;
}
