/*
 * fuzz_mp_reader.c - the bounded msgpack reader (store_mpr_*) on any bytes.
 *
 * Pass 1 skips value after value with store_mpr_raw and re-reads each one
 * with the typed call its first byte asks for, on a reader of exactly that
 * value: the typed read must consume no more than the raw value. Pass 2 lets
 * the input's first bytes pick a sequence of typed reads over the rest.
 * Always: the position never passes the end, the error is sticky and, once
 * set, the position no longer moves; strings copied out are NUL-terminated.
 */
#include "store/hs_error.h"
#include "store/mp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_check(const store_mpr_t *r, int err_before, size_t pos_before)
{
    if (r->mpr_pos > r->mpr_len)
        abort();
    if (err_before && (r->mpr_err != err_before || r->mpr_pos != pos_before))
        abort();
}

static void s_op(store_mpr_t *r, unsigned op)
{
    int e = r->mpr_err;
    size_t pos = r->mpr_pos, n = 0;
    char s[8];
    switch (op % 10) {
    case 0:
        if (store_mpr_array(r) > r->mpr_len)
            abort();
        break;
    case 1:
        if (store_mpr_map(r) > r->mpr_len)
            abort();
        break;
    case 2:
        store_mpr_uint(r);
        break;
    case 3:
        store_mpr_int(r);
        break;
    case 4:
        store_mpr_bool(r);
        break;
    case 5:
        store_mpr_nil(r);
        break;
    case 6: {
        const uint8_t *p = store_mpr_bytes(r, &n);
        if (p && (p < r->mpr_p || p + n > r->mpr_p + r->mpr_len))
            abort();
        break;
    }
    case 7:
        memset(s, 'x', sizeof(s));
        store_mpr_str(r, s, sizeof(s));
        if (!memchr(s, 0, sizeof(s)))
            abort();
        break;
    case 8: {
        const uint8_t *p = store_mpr_raw(r, &n);
        if (p ? (n == 0 || p + n > r->mpr_p + r->mpr_len) : n != 0)
            abort();
        break;
    }
    default:
        (void)store_mpr_done(r);
        break;
    }
    s_check(r, e, pos);
}

static unsigned s_typed_op(uint8_t b)
{
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xd0 && b <= 0xd3))
        return 3;
    if (b >= 0xcc && b <= 0xcf)
        return 2;
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf)
        return 1;
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd)
        return 0;
    if (b == 0xc2 || b == 0xc3)
        return 4;
    if (b == 0xc0)
        return 5;
    return 6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    store_mpr_t r;
    store_mpr_init(&r, data, size);
    while (r.mpr_pos < r.mpr_len && !r.mpr_err) {
        size_t start = r.mpr_pos, n = 0;
        const uint8_t *p = store_mpr_raw(&r, &n);
        if (!p) {
            if (!r.mpr_err || n)
                abort();
            break;
        }
        if (p != data + start || n == 0 || r.mpr_pos != start + n)
            abort();
        store_mpr_t one;
        store_mpr_init(&one, p, n);
        s_op(&one, s_typed_op(p[0]));
        if (one.mpr_pos > n)
            abort();
    }
    s_check(&r, 0, 0);

    if (size < 1)
        return 0;
    size_t nops = data[0] % 16 + 1;
    if (nops + 1 > size)
        nops = size - 1;
    store_mpr_init(&r, data + 1 + nops, size - 1 - nops);
    for (size_t i = 0; i < nops; i++)
        s_op(&r, data[1 + i]);
    return 0;
}
