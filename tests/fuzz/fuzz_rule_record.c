/*
 * fuzz_rule_record.c - a STORE_T_RULES value -> rules_decode (hierarchy
 * rules, version 1, and standalone rules, version 2).
 *
 * Properties: HS_OK or HS_EMALF; a record that decodes has a name, a known
 * direction (standalone rules exactly RULES_SIDE), counts within their
 * limits, and re-encodes to a value that decodes to the same rule.
 */
#include "rules/rules.h"
#include "store/hs_error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rules_rule_t r, back;
    int rc = rules_decode(data, size, &r);
    if (rc != HS_OK) {
        if (rc != HS_EMALF)
            abort();
        return 0;
    }
    if (!r.ru_name[0] || !r.ru_dirs || (r.ru_dirs > 3 && r.ru_dirs != RULES_SIDE) ||
        r.ru_nprefix > RULES_PREFIX_MAX || r.ru_ndataclass > RULES_DATACLASS_MAX ||
        r.ru_ndest > RULES_DEST_MAX || r.ru_nwhere > RULES_WHERE_MAX || r.ru_verify_pct > 100)
        abort();
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rules_encode(&r, &buf, &len) != HS_OK)
        abort();
    if (rules_decode(buf, len, &back) != HS_OK || memcmp(&r, &back, sizeof(r)) != 0)
        abort();
    free(buf);
    return 0;
}
