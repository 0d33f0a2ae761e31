/*
 * token.h - one-time invite tokens for linking two nodes.
 *
 * `hsync invite` on node N issues a token: N's name, endpoint and CURVE
 * public key, a random 16-byte id, an expiry, and an HMAC-SHA256 over all of
 * it keyed with N's private token key. The text form is "hsync1." followed by
 * base64url (no padding) of the msgpack array
 *     [node, endpoint, key, id(bin16), expires(uint), mac(bin32)].
 * The node that receives it (the future parent, or a standalone source)
 * learns where to connect and which server key to expect; it presents the
 * token back over the encrypted connection, and N redeems it: MAC valid, id
 * issued by N and never used, not expired. Redeeming marks it used in the same
 * transaction that records the new link, so a token works exactly once.
 */
#ifndef TOPO_TOKEN_H
#define TOPO_TOKEN_H

#include "store/store.h"

#define TOPO_KEY_LEN 40       /* Z85 CURVE public key */
#define TOPO_ENDPOINT_MAX 128 /* tcp://host:port */
#define TOPO_TOKEN_MAX 512    /* text form, with NUL */
#define TOPO_TOKEN_TTL_DEFAULT 3600

typedef struct topo_token {
    char tok_node[STORE_NAME_MAX + 1];
    char tok_endpoint[TOPO_ENDPOINT_MAX];
    char tok_key[TOPO_KEY_LEN + 1];
    uint8_t tok_id[16];
    uint64_t tok_expires; /* unix seconds */
    uint8_t tok_mac[32];
} topo_token_t;

/* Text form into out (TOPO_TOKEN_MAX bytes). HS_OK or HS_ETOOBIG. */
int topo_token_encode(const topo_token_t *t, char *out, size_t outlen);

/* Parse the text form (untrusted; pure; fuzzed). HS_OK or HS_ETOKEN. Does not
 * verify the MAC: only the issuing node can (topo_token_redeem). */
int topo_token_decode(const char *text, topo_token_t *out);

/* Issue a token on this node (write transaction): makes id and MAC, records
 * the id in STORE_T_TOKENS with its expiry. ttl in seconds. */
int topo_token_issue(store_txn_t *t, uint64_t ttl, topo_token_t *out);

/*
 * Redeem a token presented to this node (write transaction). On success the
 * id is marked used. On failure returns HS_ETOKEN and *why says which check
 * failed: "it was issued by another node", "it has been tampered with",
 * "it has expired", "it has already been used", "it was not issued here".
 */
int topo_token_redeem(store_txn_t *t, const topo_token_t *tok, uint64_t now, const char **why);

/* True while this node has an unexpired, unused token outstanding: only then
 * are unknown keys admitted, and only to present a token. */
bool topo_token_outstanding(store_txn_t *t, uint64_t now);

#endif
