/*
 * fuzz_repl_records.c - stored replication records read back from LMDB (a
 * damaged store must not crash the broker): rules_decode, repl_mark_decode,
 * repl_hist_decode.
 *
 * Properties: nothing crashes; a rule that decodes re-encodes to a record
 * that decodes to the same rule.
 */
#include "replication/marks.h"
#include "rules/rules.h"
#include "store/hs_error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rules_rule_t r;
    if (rules_decode(data, size, &r) == HS_OK) {
        uint8_t *buf;
        size_t len;
        if (rules_encode(&r, &buf, &len) == HS_OK) {
            rules_rule_t back;
            if (rules_decode(buf, len, &back) != HS_OK || strcmp(back.ru_name, r.ru_name) ||
                back.ru_nprefix != r.ru_nprefix || back.ru_every_ms != r.ru_every_ms)
                abort();
            free(buf);
        }
    }
    repl_mark_t m;
    (void)repl_mark_decode(data, size, &m);
    repl_hist_t h;
    (void)repl_hist_decode(data, size, &h);
    return 0;
}
