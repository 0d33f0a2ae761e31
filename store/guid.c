#include "store/guid.h"

#include "store/hs_error.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

/* RAND_bytes costs about a microsecond a call; guids are made by the million
 * in bulk loads, so draw randomness in blocks, one pool per thread. hsync
 * never forks after making a guid (a forked child would share the pool). */
static int s_random(uint8_t *out, size_t n)
{
    static _Thread_local uint8_t pool[4096];
    static _Thread_local size_t left;
    if (left < n) {
        if (RAND_bytes(pool, sizeof(pool)) != 1)
            return HS_ECRYPTO;
        left = sizeof(pool);
    }
    memcpy(out, pool + sizeof(pool) - left, n);
    memset(pool + sizeof(pool) - left, 0, n);
    left -= n;
    return HS_OK;
}

int store_guid_new(store_guid_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    int err = s_random(out->b + 6, 10);
    if (err)
        return err;
    for (int i = 0; i < 6; i++)
        out->b[i] = (uint8_t)(ms >> (8 * (5 - i)));
    out->b[6] = (uint8_t)(0x70 | (out->b[6] & 0x0f)); /* version 7 */
    out->b[8] = (uint8_t)(0x80 | (out->b[8] & 0x3f)); /* RFC 4122 variant */
    return HS_OK;
}

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int store_guid_parse(const char *s, store_guid_t *out)
{
    if (!s || strlen(s) != STORE_GUID_STRLEN)
        return HS_EGUID;
    int n = 0;
    for (int i = 0; i < STORE_GUID_STRLEN;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return HS_EGUID;
            i++;
            continue;
        }
        int hi = s_hexval(s[i]), lo = s_hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return HS_EGUID;
        out->b[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return HS_OK;
}

void store_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

void store_guid_format(const store_guid_t *g, char out[STORE_GUID_STRLEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = digits[g->b[i] >> 4];
        out[o++] = digits[g->b[i] & 15];
    }
    out[o] = '\0';
}

bool store_guid_is_zero(const store_guid_t *g)
{
    for (int i = 0; i < 16; i++)
        if (g->b[i])
            return false;
    return true;
}

int store_guid_derive(const char *ns, const char *name, store_guid_t *out)
{
    static const char tag[] = "hsync-guid-1";
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(c, tag, sizeof(tag)) && EVP_DigestUpdate(c, ns, strlen(ns) + 1) &&
             EVP_DigestUpdate(c, name, strlen(name)) && EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    if (!ok || mdlen < 16)
        return HS_ECRYPTO;
    memcpy(out->b, md, 16);
    out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x80); /* version 8 */
    out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    return HS_OK;
}
