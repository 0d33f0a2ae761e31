/*
 * json.c - JSON <-> canonical msgpack (contract in broker/json.h).
 *
 * Encoding goes through msgpack-c's packer, whose integer and length helpers
 * already pick the shortest form. Decoding is a small hand-written reader so
 * that every length is checked against the bytes left before it is used and
 * the nesting bound is explicit.
 */
#include "broker/json.h"

#include "store/hs_error.h"
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parse ------------------------------------------------------------- */

int broker_json_parse(const char *text, size_t len, const char *what, json_t **out, char *err,
                      size_t errlen)
{
    json_error_t e;
    *out = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (*out)
        return HS_OK;
    if (e.text[0] == '\0')
        return HS_ENOMEM;
    if (err && errlen) {
        /* jansson reports line -1 / column -1 for errors without a position
         * (for instance input that is not valid UTF-8 at all). */
        int line = e.line > 0 ? e.line : 1, col = e.column > 0 ? e.column : 1;
        if (what)
            snprintf(err, errlen, "%s is not valid JSON at line %d column %d: %s", what, line, col,
                     e.text);
        else
            snprintf(err, errlen, "not valid JSON at column %d: %s", col, e.text);
    }
    return HS_EMALF;
}

/* ---- encode ------------------------------------------------------------ */

typedef struct s_key {
    const char *k;
    size_t len;
    json_t *v;
} s_key_t;

/* Bytewise order, shorter first on a common prefix (store_body_check's order). */
static int s_key_cmp(const void *a, const void *b)
{
    const s_key_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->k, y->k, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int s_pack(msgpack_packer *pk, const json_t *j, int depth, int strings_only);

static int s_pack_object(msgpack_packer *pk, const json_t *j, int depth, int strings_only)
{
    s_key_t stack[32], *keys = stack;
    size_t n = json_object_size(j), i = 0;
    int rc = HS_OK;
    if (n > sizeof(stack) / sizeof(stack[0])) {
        keys = malloc(n * sizeof(*keys));
        if (!keys)
            return HS_ENOMEM;
    }
    for (void *it = json_object_iter((json_t *)j); it && i < n;
         it = json_object_iter_next((json_t *)j, it), i++) {
        keys[i].k = json_object_iter_key(it);
        keys[i].len = json_object_iter_key_len(it);
        keys[i].v = json_object_iter_value(it);
    }
    n = i;
    qsort(keys, n, sizeof(*keys), s_key_cmp);
    if (msgpack_pack_map(pk, n) != 0) {
        rc = HS_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (strings_only && !json_is_string(keys[i].v)) {
            rc = HS_EMALF;
            goto out;
        }
        if (msgpack_pack_str(pk, keys[i].len) != 0 ||
            msgpack_pack_str_body(pk, keys[i].k, keys[i].len) != 0) {
            rc = HS_ENOMEM;
            goto out;
        }
        rc = s_pack(pk, keys[i].v, depth + 1, 0);
        if (rc)
            goto out;
    }
out:
    if (keys != stack)
        free(keys);
    return rc;
}

/* depth: nesting level of j if it is a container (top-level map = 1). */
static int s_pack(msgpack_packer *pk, const json_t *j, int depth, int strings_only)
{
    int r = 0;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        if (depth > BROKER_JSON_DEPTH_MAX)
            return HS_EMALF;
        return s_pack_object(pk, j, depth, strings_only);
    case JSON_ARRAY: {
        if (depth > BROKER_JSON_DEPTH_MAX)
            return HS_EMALF;
        size_t n = json_array_size(j);
        if (msgpack_pack_array(pk, n) != 0)
            return HS_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            int rc = s_pack(pk, json_array_get(j, i), depth + 1, 0);
            if (rc)
                return rc;
        }
        return HS_OK;
    }
    case JSON_STRING: {
        size_t n = json_string_length(j);
        r = msgpack_pack_str(pk, n);
        if (r == 0)
            r = msgpack_pack_str_body(pk, json_string_value(j), n);
        break;
    }
    case JSON_INTEGER:
        r = msgpack_pack_int64(pk, (int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        r = msgpack_pack_double(pk, json_real_value(j));
        break;
    case JSON_TRUE:
        r = msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        r = msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        r = msgpack_pack_nil(pk);
        break;
    default:
        return HS_EMALF;
    }
    return r == 0 ? HS_OK : HS_ENOMEM;
}

static int s_pack_top(const json_t *j, msgpack_sbuffer *sb, int strings_only, size_t max)
{
    size_t at = sb->size;
    msgpack_packer pk;
    if (!j || !json_is_object(j))
        return HS_EMALF;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = s_pack_object(&pk, j, 1, strings_only);
    if (rc == HS_OK && sb->size - at > max)
        rc = HS_ETOOBIG;
    if (rc)
        sb->size = at;
    return rc;
}

int broker_json_pack_body(const json_t *j, msgpack_sbuffer *sb)
{
    return s_pack_top(j, sb, 0, STORE_BODY_MAX);
}

int broker_json_pack_keys(const json_t *j, msgpack_sbuffer *sb)
{
    return s_pack_top(j, sb, 1, STORE_KEYS_MAX);
}

static int s_to_buf(const json_t *j, int strings_only, size_t max, uint8_t **out, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    *out = NULL;
    *len = 0;
    int rc = s_pack_top(j, &sb, strings_only, max);
    if (rc) {
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    *len = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);
    if (!*out) { /* empty map packs to one byte, so never empty; be safe */
        *out = malloc(1);
        if (!*out)
            return HS_ENOMEM;
    }
    return HS_OK;
}

int broker_json_to_body(const json_t *j, uint8_t **out, size_t *len)
{
    return s_to_buf(j, 0, STORE_BODY_MAX, out, len);
}

int broker_json_to_keys(const json_t *j, uint8_t **out, size_t *len)
{
    return s_to_buf(j, 1, STORE_KEYS_MAX, out, len);
}

/* ---- decode ------------------------------------------------------------ */

typedef struct s_rd {
    const uint8_t *p;
    size_t left;
} s_rd_t;

static int s_take(s_rd_t *r, size_t n, const uint8_t **at)
{
    if (r->left < n)
        return HS_EMALF;
    *at = r->p;
    r->p += n;
    r->left -= n;
    return HS_OK;
}

/* Big-endian unsigned of n (1, 2, 4, 8) bytes. */
static int s_uint(s_rd_t *r, size_t n, uint64_t *v)
{
    const uint8_t *b;
    if (s_take(r, n, &b))
        return HS_EMALF;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v << 8 | b[i];
    return HS_OK;
}

static json_t *s_base64(const uint8_t *b, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen = (n + 2) / 3 * 4;
    char *s = malloc(olen + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)b[i + 1] << 8;
        if (i + 2 < n)
            v |= b[i + 2];
        s[o++] = tbl[v >> 18 & 63];
        s[o++] = tbl[v >> 12 & 63];
        s[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        s[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    json_t *j = json_stringn_nocheck(s, o);
    free(s);
    return j;
}

static int s_decode(s_rd_t *r, int depth, json_t **out);

/* Read the length of a str from its type byte t (and the bytes after it). */
static int s_str_len(s_rd_t *r, uint8_t t, size_t *n)
{
    uint64_t v;
    if (t >= 0xa0 && t <= 0xbf) {
        *n = t & 0x1f;
        return HS_OK;
    }
    switch (t) {
    case 0xd9:
        if (s_uint(r, 1, &v))
            return HS_EMALF;
        break;
    case 0xda:
        if (s_uint(r, 2, &v))
            return HS_EMALF;
        break;
    case 0xdb:
        if (s_uint(r, 4, &v))
            return HS_EMALF;
        break;
    default:
        return HS_EMALF;
    }
    *n = (size_t)v;
    return HS_OK;
}

static int s_decode_map(s_rd_t *r, uint64_t n, int depth, json_t **out)
{
    if (depth > BROKER_JSON_DEPTH_MAX || n > r->left / 2)
        return HS_EMALF;
    json_t *o = json_object();
    if (!o)
        return HS_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *t, *k;
        size_t klen;
        json_t *v = NULL;
        int rc;
        if (s_take(r, 1, &t) || s_str_len(r, *t, &klen) || s_take(r, klen, &k)) {
            rc = HS_EMALF;
            goto fail;
        }
        rc = s_decode(r, depth + 1, &v);
        if (rc)
            goto fail;
        /* setn_new validates the key as UTF-8 and consumes v either way. */
        if (json_object_setn_new(o, (const char *)k, klen, v) != 0) {
            rc = HS_EMALF;
            goto fail;
        }
        continue;
    fail:
        json_decref(o);
        return rc;
    }
    *out = o;
    return HS_OK;
}

static int s_decode_array(s_rd_t *r, uint64_t n, int depth, json_t **out)
{
    if (depth > BROKER_JSON_DEPTH_MAX || n > r->left)
        return HS_EMALF;
    json_t *a = json_array();
    if (!a)
        return HS_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        json_t *v = NULL;
        int rc = s_decode(r, depth + 1, &v);
        if (rc == HS_OK && json_array_append_new(a, v) != 0)
            rc = HS_ENOMEM;
        if (rc) {
            json_decref(a);
            return rc;
        }
    }
    *out = a;
    return HS_OK;
}

static int s_decode(s_rd_t *r, int depth, json_t **out)
{
    const uint8_t *tp, *b;
    uint64_t v;
    size_t n;
    json_t *j = NULL;
    *out = NULL;
    if (s_take(r, 1, &tp))
        return HS_EMALF;
    uint8_t t = *tp;

    if (t <= 0x7f)
        j = json_integer(t);
    else if (t >= 0xe0)
        j = json_integer((int8_t)t);
    else if (t <= 0x8f)
        return s_decode_map(r, t & 0x0f, depth, out);
    else if (t <= 0x9f)
        return s_decode_array(r, t & 0x0f, depth, out);
    else if (t <= 0xbf || t == 0xd9 || t == 0xda || t == 0xdb) {
        if (s_str_len(r, t, &n) || s_take(r, n, &b))
            return HS_EMALF;
        /* json_stringn refuses invalid UTF-8 (NULL); out of memory also lands
         * here, rare enough to report as malformed. */
        j = json_stringn((const char *)b, n);
        if (!j)
            return HS_EMALF;
    } else {
        switch (t) {
        case 0xc0:
            j = json_null();
            break;
        case 0xc2:
            j = json_false();
            break;
        case 0xc3:
            j = json_true();
            break;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            if (s_uint(r, (size_t)1 << (t - 0xc4), &v) || s_take(r, (size_t)v, &b))
                return HS_EMALF;
            j = s_base64(b, (size_t)v);
            break;
        case 0xca: {
            uint32_t u;
            float f;
            if (s_uint(r, 4, &v))
                return HS_EMALF;
            u = (uint32_t)v;
            memcpy(&f, &u, sizeof(f));
            if (!isfinite(f))
                return HS_EMALF;
            j = json_real((double)f);
            break;
        }
        case 0xcb: {
            double d;
            if (s_uint(r, 8, &v))
                return HS_EMALF;
            memcpy(&d, &v, sizeof(d));
            if (!isfinite(d))
                return HS_EMALF;
            j = json_real(d);
            break;
        }
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
            if (s_uint(r, (size_t)1 << (t - 0xcc), &v) || v > (uint64_t)INT64_MAX)
                return HS_EMALF;
            j = json_integer((json_int_t)v);
            break;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            size_t w = (size_t)1 << (t - 0xd0);
            if (s_uint(r, w, &v))
                return HS_EMALF;
            int64_t s;
            if (w == 8) {
                memcpy(&s, &v, sizeof(s));
            } else {
                /* sign-extend from w bytes */
                uint64_t sign = (uint64_t)1 << (8 * w - 1);
                s = (int64_t)(v ^ sign) - (int64_t)sign;
            }
            j = json_integer((json_int_t)s);
            break;
        }
        case 0xdc:
        case 0xdd:
            if (s_uint(r, t == 0xdc ? 2 : 4, &v))
                return HS_EMALF;
            return s_decode_array(r, v, depth, out);
        case 0xde:
        case 0xdf:
            if (s_uint(r, t == 0xde ? 2 : 4, &v))
                return HS_EMALF;
            return s_decode_map(r, v, depth, out);
        default: /* 0xc1 (never used), ext and fixext types */
            return HS_EMALF;
        }
    }
    if (!j)
        return HS_ENOMEM;
    *out = j;
    return HS_OK;
}

int broker_json_from_msgpack(const uint8_t *buf, size_t len, json_t **out)
{
    s_rd_t r = {buf, len};
    *out = NULL;
    if (!buf && len)
        return HS_EMALF;
    int rc = s_decode(&r, 1, out);
    if (rc == HS_OK && r.left != 0) {
        json_decref(*out);
        *out = NULL;
        rc = HS_EMALF;
    }
    return rc;
}
