#include "topology/token.h"

#include "store/mp.h"
#include "topology/identity.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define S_PREFIX "hsync1."
#define S_RAW_MAX 360 /* msgpack form: base64url of it fits TOPO_TOKEN_MAX */

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t s_b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = s_b64[(v >> 18) & 63];
        out[o++] = s_b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = s_b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = s_b64[v & 63];
    }
    out[o] = '\0';
    return o;
}

static int s_b64_val(char c)
{
    const char *p = c ? strchr(s_b64, c) : NULL;
    return p ? (int)(p - s_b64) : -1;
}

/* Returns decoded length or -1. out must hold n*3/4 bytes. */
static long s_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap)
{
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = s_b64_val(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outcap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) /* non-canonical trailing bits */
        return -1;
    return (long)o;
}

static void s_pack_fields(store_mpw_t *w, const topo_token_t *t)
{
    store_mpw_str(w, t->tok_node);
    store_mpw_str(w, t->tok_endpoint);
    store_mpw_str(w, t->tok_key);
    store_mpw_bin(w, t->tok_id, 16);
    store_mpw_uint(w, t->tok_expires);
}

static int s_mac(const topo_token_t *t, const uint8_t key[32], uint8_t out[32])
{
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 5);
    s_pack_fields(&w, t);
    int err = store_mpw_error(&w);
    unsigned int mlen = 32;
    if (!err && !HMAC(EVP_sha256(), key, 32, w.mpw_buf, w.mpw_len, out, &mlen))
        err = HS_ECRYPTO;
    store_mpw_free(&w);
    return err;
}

int topo_token_encode(const topo_token_t *t, char *out, size_t outlen)
{
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 6);
    s_pack_fields(&w, t);
    store_mpw_bin(&w, t->tok_mac, 32);
    int err = store_mpw_error(&w);
    size_t need = sizeof(S_PREFIX) + (w.mpw_len * 4 + 2) / 3 + 1;
    if (!err && (w.mpw_len > S_RAW_MAX || need > outlen))
        err = HS_ETOOBIG;
    if (!err) {
        memcpy(out, S_PREFIX, sizeof(S_PREFIX) - 1);
        s_b64_encode(w.mpw_buf, w.mpw_len, out + sizeof(S_PREFIX) - 1);
    }
    store_mpw_free(&w);
    return err;
}

int topo_token_decode(const char *text, topo_token_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = text ? strlen(text) : 0;
    size_t pl = sizeof(S_PREFIX) - 1;
    if (n <= pl || n >= TOPO_TOKEN_MAX || strncmp(text, S_PREFIX, pl) != 0)
        return HS_ETOKEN;
    uint8_t raw[S_RAW_MAX];
    long rl = s_b64_decode(text + pl, n - pl, raw, sizeof(raw));
    if (rl <= 0)
        return HS_ETOKEN;
    store_mpr_t r;
    store_mpr_init(&r, raw, (size_t)rl);
    if (store_mpr_array(&r) != 6)
        return HS_ETOKEN;
    store_mpr_str(&r, out->tok_node, sizeof(out->tok_node));
    store_mpr_str(&r, out->tok_endpoint, sizeof(out->tok_endpoint));
    store_mpr_str(&r, out->tok_key, sizeof(out->tok_key));
    size_t idl = 0, macl = 0;
    const uint8_t *id = store_mpr_bytes(&r, &idl);
    out->tok_expires = store_mpr_uint(&r);
    const uint8_t *mac = store_mpr_bytes(&r, &macl);
    if (store_mpr_done(&r) || idl != 16 || macl != 32 || strlen(out->tok_key) != TOPO_KEY_LEN ||
        !out->tok_node[0] || strncmp(out->tok_endpoint, "tcp://", 6) != 0)
        return HS_ETOKEN;
    memcpy(out->tok_id, id, 16);
    memcpy(out->tok_mac, mac, 32);
    return HS_OK;
}

/* STORE_T_TOKENS: id(16) -> expires u64le, used u8. */
int topo_token_issue(store_txn_t *t, uint64_t ttl, topo_token_t *out)
{
    topo_identity_t id;
    int err = topo_identity_load(t, &id);
    if (err)
        return err;
    memset(out, 0, sizeof(*out));
    snprintf(out->tok_node, sizeof(out->tok_node), "%s", id.id_name);
    if (store_meta_get(t, "listen", out->tok_endpoint, sizeof(out->tok_endpoint)))
        return HS_ENOTNODE;
    memcpy(out->tok_key, id.id_public, sizeof(out->tok_key));
    if (RAND_bytes(out->tok_id, 16) != 1)
        return HS_ECRYPTO;
    out->tok_expires = (uint64_t)time(NULL) + ttl;
    err = s_mac(out, id.id_token_key, out->tok_mac);
    OPENSSL_cleanse(&id, sizeof(id));
    if (err)
        return err;
    uint8_t v[9];
    for (int i = 0; i < 8; i++)
        v[i] = (uint8_t)(out->tok_expires >> (8 * i));
    v[8] = 0;
    return store_kv_put(t, STORE_T_TOKENS, out->tok_id, 16, v, sizeof(v));
}

static uint64_t s_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int topo_token_redeem(store_txn_t *t, const topo_token_t *tok, uint64_t now, const char **why)
{
    *why = NULL;
    topo_identity_t id;
    int err = topo_identity_load(t, &id);
    if (err)
        return err;
    uint8_t mac[32];
    err = s_mac(tok, id.id_token_key, mac);
    bool mine = strcmp(tok->tok_key, id.id_public) == 0 && strcmp(tok->tok_node, id.id_name) == 0;
    OPENSSL_cleanse(&id, sizeof(id));
    if (err)
        return err;
    if (!mine) {
        *why = "it was issued by another node";
        return HS_ETOKEN;
    }
    if (CRYPTO_memcmp(mac, tok->tok_mac, 32) != 0) {
        *why = "it has been tampered with";
        return HS_ETOKEN;
    }
    const void *v;
    size_t vl;
    err = store_kv_get(t, STORE_T_TOKENS, tok->tok_id, 16, &v, &vl);
    if (err == HS_ENOTFOUND || (err == HS_OK && vl != 9)) {
        *why = "it was not issued here";
        return HS_ETOKEN;
    }
    if (err)
        return err;
    if (((const uint8_t *)v)[8]) {
        *why = "it has already been used";
        return HS_ETOKEN;
    }
    if (tok->tok_expires <= now || s_le64(v) <= now) {
        *why = "it has expired";
        return HS_ETOKEN;
    }
    uint8_t nv[9];
    memcpy(nv, v, 9);
    nv[8] = 1;
    return store_kv_put(t, STORE_T_TOKENS, tok->tok_id, 16, nv, sizeof(nv));
}

typedef struct s_outst {
    uint64_t now;
    bool any;
} s_outst_t;

static int s_outst_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)k;
    (void)kl;
    s_outst_t *o = ctx;
    const uint8_t *p = v;
    if (vl == 9 && !p[8] && s_le64(p) > o->now) {
        o->any = true;
        return 1;
    }
    return 0;
}

bool topo_token_outstanding(store_txn_t *t, uint64_t now)
{
    s_outst_t o = {now, false};
    store_kv_scan(t, STORE_T_TOKENS, NULL, 0, s_outst_one, &o);
    return o.any;
}
