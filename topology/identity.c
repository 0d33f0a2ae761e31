#include "topology/identity.h"

#include "store/mp.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

const char *topo_role_name(int role)
{
    switch (role) {
    case TOPO_ROLE_PARENT:
        return "parent";
    case TOPO_ROLE_CHILD:
        return "child";
    case TOPO_ROLE_DEST:
        return "destination";
    case TOPO_ROLE_SOURCE:
        return "source";
    default:
        return "unknown";
    }
}

int topo_identity_ensure(store_txn_t *t)
{
    store_t *s = store_txn_store(t);
    char pub[TOPO_KEY_LEN + 1], fpub[TOPO_KEY_LEN + 1];
    int perr = store_meta_get(t, "curve_public", pub, sizeof(pub));
    if (perr && perr != HS_ENOTFOUND)
        return perr;
    int ferr = store_secret_get(s, "curve_public", fpub, sizeof(fpub));
    if (ferr && ferr != HS_ENOTFOUND)
        return ferr;
    if (ferr == HS_OK) {          /* DIR/keys holds an identity */
        if (perr == HS_ENOTFOUND) /* written by an init whose transaction then failed */
            return store_meta_put(t, "curve_public", fpub);
        return strcmp(pub, fpub) ? HS_EKEYS : HS_OK;
    }
    if (perr == HS_OK)
        return HS_EKEYS; /* the store has an identity whose keys are gone */
    char sec[TOPO_KEY_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0)
        return HS_ECRYPTO;
    uint8_t tk[32];
    char tkhex[65];
    int err = RAND_bytes(tk, sizeof(tk)) == 1 ? HS_OK : HS_ECRYPTO;
    if (!err) {
        store_hex(tk, sizeof(tk), tkhex);
        /* the secrets go to DIR/keys only (0600, never into the LMDB file);
         * the file first, so a store never names a key it does not have */
        const char *const names[] = {"curve_public", "curve_secret", "token_key"};
        const char *const values[] = {pub, sec, tkhex};
        err = store_secrets_put(s, names, values, 3);
    }
    if (!err)
        err = store_meta_put(t, "curve_public", pub);
    memset(sec, 0, sizeof(sec));
    memset(tk, 0, sizeof(tk));
    memset(tkhex, 0, sizeof(tkhex));
    return err;
}

int topo_identity_load(store_txn_t *t, topo_identity_t *out)
{
    store_t *s = store_txn_store(t);
    char tkhex[65], fpub[TOPO_KEY_LEN + 1];
    memset(out, 0, sizeof(*out));
    int err = store_meta_get(t, "name", out->id_name, sizeof(out->id_name));
    if (!err)
        err = store_meta_get(t, "curve_public", out->id_public, sizeof(out->id_public));
    if (!err)
        err = store_secret_get(s, "curve_public", fpub, sizeof(fpub));
    if (!err && strcmp(fpub, out->id_public) != 0)
        err = HS_EKEYS; /* DIR/keys of another node */
    if (!err)
        err = store_secret_get(s, "curve_secret", out->id_secret, sizeof(out->id_secret));
    if (!err)
        err = store_secret_get(s, "token_key", tkhex, sizeof(tkhex));
    if (err == HS_ENOTFOUND && out->id_public[0])
        err = HS_EKEYS; /* the store names a key that DIR/keys lacks */
    if (err == HS_ETOOBIG)
        err = HS_EKEYS;
    if (!err && (strlen(out->id_public) != TOPO_KEY_LEN || strlen(out->id_secret) != TOPO_KEY_LEN ||
                 strlen(tkhex) != 64))
        err = HS_EKEYS;
    char derived[TOPO_KEY_LEN + 1];
    if (!err && (zmq_curve_public(derived, out->id_secret) != 0 || strcmp(derived, out->id_public)))
        err = HS_EKEYSPAIR; /* every handshake would fail, silently */
    for (int i = 0; !err && i < 32; i++) {
        unsigned v;
        if (sscanf(tkhex + 2 * i, "%2x", &v) != 1)
            err = HS_EKEYS;
        else
            out->id_token_key[i] = (uint8_t)v;
    }
    memset(tkhex, 0, sizeof(tkhex));
    if (err)
        memset(out, 0, sizeof(*out));
    return err;
}

void topo_fingerprint(const char *key, char out[20])
{
    uint8_t h[32];
    char hex[65];
    SHA256((const uint8_t *)key, strlen(key), h);
    store_hex(h, 8, hex);
    snprintf(out, 20, "%.4s:%.4s:%.4s:%.4s", hex, hex + 4, hex + 8, hex + 12);
}

int topo_trust_put(store_txn_t *t, const char *key, const topo_trust_t *tr)
{
    if (strlen(key) != TOPO_KEY_LEN)
        return HS_EINVAL;
    store_mpw_t w;
    store_mpw_init(&w);
    store_mpw_array(&w, 3);
    store_mpw_str(&w, tr->tr_name);
    store_mpw_uint(&w, (uint64_t)tr->tr_role);
    store_mpw_uint(&w, tr->tr_since);
    int err = store_mpw_error(&w);
    if (!err)
        err = store_kv_put(t, STORE_T_TRUST, key, TOPO_KEY_LEN, w.mpw_buf, w.mpw_len);
    store_mpw_free(&w);
    return err;
}

int topo_trust_get(store_txn_t *t, const char *key, topo_trust_t *out)
{
    if (strlen(key) != TOPO_KEY_LEN)
        return HS_ENOTFOUND;
    const void *v;
    size_t vl;
    int err = store_kv_get(t, STORE_T_TRUST, key, TOPO_KEY_LEN, &v, &vl);
    if (err)
        return err;
    store_mpr_t r;
    store_mpr_init(&r, v, vl);
    if (store_mpr_array(&r) != 3)
        return HS_EMALF;
    store_mpr_str(&r, out->tr_name, sizeof(out->tr_name));
    out->tr_role = (int)store_mpr_uint(&r);
    out->tr_since = store_mpr_uint(&r);
    return store_mpr_done(&r);
}

int topo_trust_del(store_txn_t *t, const char *key)
{
    if (strlen(key) != TOPO_KEY_LEN)
        return HS_ENOTFOUND;
    return store_kv_del(t, STORE_T_TRUST, key, TOPO_KEY_LEN);
}

bool topo_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > STORE_NAME_MAX)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}
