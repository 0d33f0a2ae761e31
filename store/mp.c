#include "store/mp.h"

#include "store/hs_error.h"

#include <stdlib.h>
#include <string.h>

#define S_MAX_DEPTH 32

void store_mpr_init(store_mpr_t *r, const void *buf, size_t len)
{
    r->mpr_p = buf;
    r->mpr_len = buf ? len : 0;
    r->mpr_pos = 0;
    r->mpr_err = HS_OK;
}

static bool s_need(store_mpr_t *r, size_t n)
{
    if (r->mpr_err)
        return false;
    if (r->mpr_len - r->mpr_pos < n) {
        r->mpr_err = HS_EMALF;
        return false;
    }
    return true;
}

static uint64_t s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int s_bad(store_mpr_t *r)
{
    r->mpr_err = HS_EMALF;
    return 0;
}

/* Header of a container: returns the element count. */
static uint32_t s_container(store_mpr_t *r, bool map)
{
    if (!s_need(r, 1))
        return 0;
    uint8_t b = r->mpr_p[r->mpr_pos];
    uint64_t n;
    size_t hdr;
    if (map ? (b & 0xf0) == 0x80 : (b & 0xf0) == 0x90) {
        n = b & 0x0f;
        hdr = 1;
    } else if (b == (map ? 0xde : 0xdc)) {
        if (!s_need(r, 3))
            return 0;
        n = s_be(r->mpr_p + r->mpr_pos + 1, 2);
        hdr = 3;
    } else if (b == (map ? 0xdf : 0xdd)) {
        if (!s_need(r, 5))
            return 0;
        n = s_be(r->mpr_p + r->mpr_pos + 1, 4);
        hdr = 5;
    } else {
        return (uint32_t)s_bad(r);
    }
    r->mpr_pos += hdr;
    /* Each element takes at least one byte: never trust a larger count. */
    if (n * (map ? 2 : 1) > r->mpr_len - r->mpr_pos)
        return (uint32_t)s_bad(r);
    return (uint32_t)n;
}

uint32_t store_mpr_array(store_mpr_t *r)
{
    return s_container(r, false);
}

uint32_t store_mpr_map(store_mpr_t *r)
{
    return s_container(r, true);
}

int64_t store_mpr_int(store_mpr_t *r)
{
    if (!s_need(r, 1))
        return 0;
    uint8_t b = r->mpr_p[r->mpr_pos];
    if (b <= 0x7f) {
        r->mpr_pos++;
        return b;
    }
    if (b >= 0xe0) {
        r->mpr_pos++;
        return (int8_t)b;
    }
    size_t w;
    bool sign;
    if (b >= 0xcc && b <= 0xcf) {
        w = (size_t)1 << (b - 0xcc);
        sign = false;
    } else if (b >= 0xd0 && b <= 0xd3) {
        w = (size_t)1 << (b - 0xd0);
        sign = true;
    } else {
        return s_bad(r);
    }
    if (!s_need(r, 1 + w))
        return 0;
    uint64_t u = s_be(r->mpr_p + r->mpr_pos + 1, w);
    r->mpr_pos += 1 + w;
    if (!sign) {
        if (u > INT64_MAX)
            return s_bad(r);
        return (int64_t)u;
    }
    switch (w) {
    case 1:
        return (int8_t)u;
    case 2:
        return (int16_t)u;
    case 4:
        return (int32_t)u;
    default:
        return (int64_t)u;
    }
}

uint64_t store_mpr_uint(store_mpr_t *r)
{
    if (!s_need(r, 1))
        return 0;
    uint8_t b = r->mpr_p[r->mpr_pos];
    if (b == 0xcf) {
        if (!s_need(r, 9))
            return 0;
        uint64_t u = s_be(r->mpr_p + r->mpr_pos + 1, 8);
        r->mpr_pos += 9;
        return u;
    }
    int64_t v = store_mpr_int(r);
    if (v < 0)
        return (uint64_t)s_bad(r);
    return (uint64_t)v;
}

bool store_mpr_bool(store_mpr_t *r)
{
    if (!s_need(r, 1))
        return false;
    uint8_t b = r->mpr_p[r->mpr_pos];
    if (b != 0xc2 && b != 0xc3)
        return s_bad(r);
    r->mpr_pos++;
    return b == 0xc3;
}

bool store_mpr_nil(store_mpr_t *r)
{
    if (r->mpr_err || r->mpr_pos >= r->mpr_len || r->mpr_p[r->mpr_pos] != 0xc0)
        return false;
    r->mpr_pos++;
    return true;
}

const uint8_t *store_mpr_bytes(store_mpr_t *r, size_t *len)
{
    *len = 0;
    if (!s_need(r, 1))
        return NULL;
    uint8_t b = r->mpr_p[r->mpr_pos];
    size_t hdr, w;
    uint64_t n;
    if ((b & 0xe0) == 0xa0) {
        hdr = 1;
        n = b & 0x1f;
    } else {
        if (b == 0xd9 || b == 0xc4)
            w = 1;
        else if (b == 0xda || b == 0xc5)
            w = 2;
        else if (b == 0xdb || b == 0xc6)
            w = 4;
        else
            return (const uint8_t *)(uintptr_t)s_bad(r);
        if (!s_need(r, 1 + w))
            return NULL;
        n = s_be(r->mpr_p + r->mpr_pos + 1, w);
        hdr = 1 + w;
    }
    r->mpr_pos += hdr;
    if (!s_need(r, (size_t)n))
        return NULL;
    const uint8_t *p = r->mpr_p + r->mpr_pos;
    r->mpr_pos += (size_t)n;
    *len = (size_t)n;
    return p;
}

void store_mpr_str(store_mpr_t *r, char *out, size_t outlen)
{
    size_t n;
    const uint8_t *p = store_mpr_bytes(r, &n);
    if (outlen)
        out[0] = '\0';
    if (!p && n == 0 && r->mpr_err)
        return;
    if (n + 1 > outlen || (n && memchr(p, 0, n))) {
        s_bad(r);
        return;
    }
    if (n)
        memcpy(out, p, n);
    out[n] = '\0';
}

static void s_skip(store_mpr_t *r, int depth)
{
    if (depth > S_MAX_DEPTH) {
        s_bad(r);
        return;
    }
    if (!s_need(r, 1))
        return;
    uint8_t b = r->mpr_p[r->mpr_pos];
    size_t n;
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) {
        if (b == 0xcf)
            store_mpr_uint(r);
        else
            store_mpr_int(r);
        return;
    }
    if (b == 0xc0 || b == 0xc2 || b == 0xc3) {
        r->mpr_pos++;
        return;
    }
    if (b == 0xca || b == 0xcb) {
        size_t w = b == 0xca ? 4 : 8;
        if (s_need(r, 1 + w))
            r->mpr_pos += 1 + w;
        return;
    }
    if ((b & 0xe0) == 0xa0 || b == 0xd9 || b == 0xda || b == 0xdb || b == 0xc4 || b == 0xc5 ||
        b == 0xc6) {
        store_mpr_bytes(r, &n);
        return;
    }
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
        uint32_t c = store_mpr_array(r);
        for (uint32_t i = 0; i < c && !r->mpr_err; i++)
            s_skip(r, depth + 1);
        return;
    }
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
        uint32_t c = store_mpr_map(r);
        for (uint32_t i = 0; i < 2 * c && !r->mpr_err; i++)
            s_skip(r, depth + 1);
        return;
    }
    s_bad(r); /* ext types, 0xc1 */
}

const uint8_t *store_mpr_raw(store_mpr_t *r, size_t *len)
{
    size_t start = r->mpr_pos;
    *len = 0;
    s_skip(r, 0);
    if (r->mpr_err)
        return NULL;
    *len = r->mpr_pos - start;
    return r->mpr_p + start;
}

int store_mpr_error(const store_mpr_t *r)
{
    return r->mpr_err;
}

int store_mpr_done(const store_mpr_t *r)
{
    if (r->mpr_err)
        return r->mpr_err;
    return r->mpr_pos == r->mpr_len ? HS_OK : HS_EMALF;
}

/* ---- writer ------------------------------------------------------------- */

void store_mpw_init(store_mpw_t *w)
{
    memset(w, 0, sizeof(*w));
}

void store_mpw_free(store_mpw_t *w)
{
    free(w->mpw_buf);
    memset(w, 0, sizeof(*w));
}

void store_mpw_reset(store_mpw_t *w)
{
    w->mpw_len = 0;
    w->mpw_err = HS_OK;
}

static uint8_t *s_room(store_mpw_t *w, size_t n)
{
    if (w->mpw_err)
        return NULL;
    if (w->mpw_cap - w->mpw_len < n) {
        size_t cap = w->mpw_cap ? w->mpw_cap : 256;
        while (cap - w->mpw_len < n)
            cap *= 2;
        uint8_t *b = realloc(w->mpw_buf, cap);
        if (!b) {
            w->mpw_err = HS_ENOMEM;
            return NULL;
        }
        w->mpw_buf = b;
        w->mpw_cap = cap;
    }
    uint8_t *p = w->mpw_buf + w->mpw_len;
    w->mpw_len += n;
    return p;
}

static void s_hdr(store_mpw_t *w, uint8_t tag, uint64_t v, size_t width)
{
    uint8_t *p = s_room(w, 1 + width);
    if (!p)
        return;
    p[0] = tag;
    for (size_t i = 0; i < width; i++)
        p[1 + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

static void s_len(store_mpw_t *w, uint32_t n, uint8_t fix, uint32_t fixmax, uint8_t t8, uint8_t t16,
                  uint8_t t32)
{
    if (n <= fixmax)
        s_hdr(w, (uint8_t)(fix | n), 0, 0);
    else if (t8 && n <= 0xff)
        s_hdr(w, t8, n, 1);
    else if (n <= 0xffff)
        s_hdr(w, t16, n, 2);
    else
        s_hdr(w, t32, n, 4);
}

void store_mpw_array(store_mpw_t *w, uint32_t n)
{
    s_len(w, n, 0x90, 15, 0, 0xdc, 0xdd);
}

void store_mpw_map(store_mpw_t *w, uint32_t n)
{
    s_len(w, n, 0x80, 15, 0, 0xde, 0xdf);
}

void store_mpw_uint(store_mpw_t *w, uint64_t v)
{
    if (v <= 0x7f)
        s_hdr(w, (uint8_t)v, 0, 0);
    else if (v <= 0xff)
        s_hdr(w, 0xcc, v, 1);
    else if (v <= 0xffff)
        s_hdr(w, 0xcd, v, 2);
    else if (v <= 0xffffffffu)
        s_hdr(w, 0xce, v, 4);
    else
        s_hdr(w, 0xcf, v, 8);
}

void store_mpw_int(store_mpw_t *w, int64_t v)
{
    if (v >= 0)
        store_mpw_uint(w, (uint64_t)v);
    else if (v >= -32)
        s_hdr(w, (uint8_t)(int8_t)v, 0, 0);
    else if (v >= -128)
        s_hdr(w, 0xd0, (uint64_t)v & 0xff, 1);
    else if (v >= -32768)
        s_hdr(w, 0xd1, (uint64_t)v & 0xffff, 2);
    else if (v >= INT32_MIN)
        s_hdr(w, 0xd2, (uint64_t)v & 0xffffffffu, 4);
    else
        s_hdr(w, 0xd3, (uint64_t)v, 8);
}

void store_mpw_bool(store_mpw_t *w, bool v)
{
    s_hdr(w, v ? 0xc3 : 0xc2, 0, 0);
}

void store_mpw_nil(store_mpw_t *w)
{
    s_hdr(w, 0xc0, 0, 0);
}

void store_mpw_strn(store_mpw_t *w, const void *s, size_t n)
{
    s_len(w, (uint32_t)n, 0xa0, 31, 0xd9, 0xda, 0xdb);
    store_mpw_raw(w, s, n);
}

void store_mpw_str(store_mpw_t *w, const char *s)
{
    store_mpw_strn(w, s, strlen(s));
}

void store_mpw_bin(store_mpw_t *w, const void *p, size_t n)
{
    if (n <= 0xff)
        s_hdr(w, 0xc4, n, 1);
    else if (n <= 0xffff)
        s_hdr(w, 0xc5, n, 2);
    else
        s_hdr(w, 0xc6, n, 4);
    store_mpw_raw(w, p, n);
}

void store_mpw_raw(store_mpw_t *w, const void *p, size_t n)
{
    if (!n)
        return;
    uint8_t *d = s_room(w, n);
    if (d)
        memcpy(d, p, n);
}

int store_mpw_error(const store_mpw_t *w)
{
    return w->mpw_err;
}
