/*
 * fuzz_token.c - invite token text -> topo_token_t (topo_token_decode).
 *
 * The input is the token text (up to its first NUL). Whatever decodes must
 * satisfy the documented shape (40-character key, tcp:// endpoint, a name),
 * re-encode within TOPO_TOKEN_MAX to text no longer than the input, and
 * decode again to the same token.
 */
#include "store/hs_error.h"
#include "topology/token.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    topo_token_t tok, back;
    int rc = topo_token_decode(text, &tok);
    if (rc != HS_OK) {
        if (rc != HS_ETOKEN)
            abort();
        free(text);
        return 0;
    }
    if (strlen(tok.tok_key) != TOPO_KEY_LEN || !tok.tok_node[0] ||
        strncmp(tok.tok_endpoint, "tcp://", 6) != 0)
        abort();
    char again[TOPO_TOKEN_MAX];
    if (topo_token_encode(&tok, again, sizeof(again)) != HS_OK)
        abort();
    if (strlen(again) > strlen(text))
        abort(); /* canonical re-encoding is never longer than what was accepted */
    if (topo_token_decode(again, &back) != HS_OK || memcmp(&tok, &back, sizeof(tok)) != 0)
        abort();
    free(text);
    return 0;
}
