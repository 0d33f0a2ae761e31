/*
 * cli_import.c - bulk load (import) and dump (export) in NDJSON.
 *
 * Line format (SPEC "Import/export line format"), one JSON object a line:
 *
 *   {"class":"resource.computer","guid":"...","keys":{"serial":"SN1"},
 *    "imported":false,"owner":"ns1","origin":"ns1","mtime":"...Z","body":{...}}
 *
 * Import reads lines in batches (S_BATCH_LINES, or S_BATCH_BYTES of encoded
 * data, whichever comes first). Phase 1 parses and checks every line of the
 * batch and encodes it into one arena (no allocation per line besides
 * jansson's parse tree); phase 2 writes the batch in one write transaction.
 * A full map aborts the transaction, grows the map and writes the batch
 * again from the arena. A bad line stops the import before its batch is
 * written: earlier batches stay committed, the message says which lines.
 * Each object is a local write (replication/local.h), as with put: a
 * property locked from above is refused (HEP), an editable one is kept as
 * this node's edit, and a resource whose key another one has is merged
 * into it with a merge event.
 */
#include "broker/cli.h"

#include "broker/json.h"
#include "replication/local.h"
#include "store/hs_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BATCH_LINES 10000
#define S_BATCH_BYTES ((size_t)64 << 20)
#define S_LINE_MAX ((size_t)64 << 20) /* JSON text of one line */
#define S_NONE ((size_t)-1)

/* One parsed line; strings and encodings live in the batch arena. */
typedef struct s_row {
    store_guid_t guid, resource;
    uint64_t mtime;
    uint32_t flags;
    size_t line;
    size_t cls, owner, origin; /* arena offsets of NUL-terminated strings (S_NONE) */
    size_t keys, keys_len, body, body_len;
} s_row_t;

typedef struct s_import {
    broker_cli_t *c;
    const char *owner; /* --owner */
    store_t *s;
    s_row_t *rows;
    size_t nrows;
    msgpack_sbuffer arena;
    size_t line;  /* current line number */
    size_t first; /* first line of the current batch */
    uint64_t read, written, unchanged, merged;
    char why[1300]; /* room for a HEP refusal (repl_local_result_t.lr_why) */
} s_import_t;

/* Node name: [A-Za-z0-9_.-]{1,64}. */
static bool s_name_ok(const char *n, size_t len)
{
    if (len == 0 || len > STORE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = n[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static size_t s_arena_str(s_import_t *im, const char *s, size_t len)
{
    size_t at = im->arena.size;
    if (msgpack_sbuffer_write(&im->arena, s, len) || msgpack_sbuffer_write(&im->arena, "", 1))
        return S_NONE;
    return at;
}

/* Set im->why and return HS_EMALF (HS_ENOMEM passes through). */
static int s_bad(s_import_t *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_bad(s_import_t *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->why, sizeof(im->why), fmt, ap);
    va_end(ap);
    return HS_EMALF;
}

static const char *s_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    default:
        return "true, false or null";
    }
}

/* Parse and check one line into a row appended to the batch. */
static int s_parse_line(s_import_t *im, const char *text, size_t len)
{
    json_t *j = NULL, *cls = NULL, *guid = NULL, *keys = NULL, *res = NULL, *imp = NULL,
           *owner = NULL, *origin = NULL, *mtime = NULL, *body = NULL;
    size_t arena_at = im->arena.size;
    s_row_t r = {.line = im->line, .owner = S_NONE, .origin = S_NONE, .keys = S_NONE};
    int err = broker_json_parse(text, len, NULL, &j, im->why, sizeof(im->why));
    if (err)
        return err;
    if (!json_is_object(j)) {
        err = s_bad(im, "a line must be a JSON object ({...}), not %s", s_type(j));
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        json_t **slot = !strcmp(k, "class")      ? &cls
                        : !strcmp(k, "guid")     ? &guid
                        : !strcmp(k, "keys")     ? &keys
                        : !strcmp(k, "resource") ? &res
                        : !strcmp(k, "imported") ? &imp
                        : !strcmp(k, "owner")    ? &owner
                        : !strcmp(k, "origin")   ? &origin
                        : !strcmp(k, "mtime")    ? &mtime
                        : !strcmp(k, "body")     ? &body
                                                 : NULL;
        if (!slot) {
            err = s_bad(im,
                        "unknown field \"%s\" (known: class, guid, keys, resource, "
                        "imported, owner, origin, mtime, body)",
                        k);
            goto out;
        }
        *slot = v;
    }
    /* class */
    if (!cls) {
        err = s_bad(im, "missing \"class\"");
        goto out;
    }
    const char *cs = json_string_value(cls);
    if (!cs || store_class_check(cs)) {
        err = s_bad(im, "class %s%s%s: %s", cs ? "'" : "", cs ? cs : "(not a string)",
                    cs ? "'" : "", broker_cli_why(HS_ECLASS));
        goto out;
    }
    bool dataclass = !strncmp(cs, "dataclass.", 10), resource = !strncmp(cs, "resource.", 9);
    /* guid */
    if (guid) {
        const char *gs = json_string_value(guid);
        if (!gs || store_guid_parse(gs, &r.guid)) {
            err = s_bad(im, "guid: %s", broker_cli_why(HS_EGUID));
            goto out;
        }
    } else if (store_guid_new(&r.guid)) {
        err = HS_ECRYPTO;
        goto out;
    }
    /* resource */
    if (res && !dataclass) {
        err = s_bad(im, "\"resource\" is only for dataclass.* rows, not %s", cs);
        goto out;
    }
    if (dataclass && !res) {
        err = s_bad(im, "a %s row needs \"resource\" (the guid of its resource)", cs);
        goto out;
    }
    if (res) {
        const char *rs = json_string_value(res);
        if (!rs || store_guid_parse(rs, &r.resource) || store_guid_is_zero(&r.resource)) {
            err = s_bad(im, "resource: %s", broker_cli_why(HS_EGUID));
            goto out;
        }
    }
    /* imported */
    if (imp) {
        if (!json_is_boolean(imp)) {
            err = s_bad(im, "\"imported\" must be true or false");
            goto out;
        }
        if (json_is_true(imp))
            r.flags |= STORE_OBJ_IMPORTED;
    }
    /* owner, origin */
    json_t *names[2] = {owner, origin};
    size_t *offs[2] = {&r.owner, &r.origin};
    for (int i = 0; i < 2; i++) {
        if (!names[i])
            continue;
        const char *ns = json_string_value(names[i]);
        size_t nl = json_string_length(names[i]);
        if (!ns || !s_name_ok(ns, nl)) {
            err = s_bad(im, "\"%s\" must be a node name (1 to 64 letters, digits, '_', '.', '-')",
                        i ? "origin" : "owner");
            goto out;
        }
        if ((*offs[i] = s_arena_str(im, ns, nl)) == S_NONE) {
            err = HS_ENOMEM;
            goto out;
        }
    }
    if (!owner && im->owner &&
        (r.owner = s_arena_str(im, im->owner, strlen(im->owner))) == S_NONE) {
        err = HS_ENOMEM;
        goto out;
    }
    /* mtime */
    if (mtime) {
        if (json_is_integer(mtime) && json_integer_value(mtime) > 0)
            r.mtime = (uint64_t)json_integer_value(mtime);
        else if (!json_is_string(mtime) ||
                 broker_cli_time_parse(json_string_value(mtime), &r.mtime)) {
            err = s_bad(im, "\"mtime\" must be an ISO-8601 UTC time (2025-01-31T12:00:00.000Z) "
                            "or milliseconds since the epoch");
            goto out;
        }
    }
    /* class string */
    if ((r.cls = s_arena_str(im, cs, strlen(cs))) == S_NONE) {
        err = HS_ENOMEM;
        goto out;
    }
    /* keys */
    if (keys) {
        if (!resource) {
            err = s_bad(im, "\"keys\" are only for resource.* lines, not %s", cs);
            goto out;
        }
        r.keys = im->arena.size;
        err = broker_json_pack_keys(keys, &im->arena);
        if (err) {
            err = err == HS_ENOMEM ? err
                  : err == HS_ETOOBIG
                      ? s_bad(im, "\"keys\" are over the limit of %d bytes", STORE_KEYS_MAX)
                      : s_bad(im, "\"keys\" must be an object of strings");
            goto out;
        }
        r.keys_len = im->arena.size - r.keys;
    }
    /* body */
    if (!body) {
        err = s_bad(im, "missing \"body\"");
        goto out;
    }
    if (!json_is_object(body)) {
        err = s_bad(im, "\"body\" must be a JSON object ({...}), not %s", s_type(body));
        goto out;
    }
    r.body = im->arena.size;
    err = broker_json_pack_body(body, &im->arena);
    if (err) {
        err = err == HS_ENOMEM ? err
              : err == HS_ETOOBIG
                  ? s_bad(im, "\"body\" is over the limit of %u bytes (as msgpack)", STORE_BODY_MAX)
                  : s_bad(im, "\"body\" nests deeper than %d levels", BROKER_JSON_DEPTH_MAX);
        goto out;
    }
    r.body_len = im->arena.size - r.body;
    im->rows[im->nrows++] = r;
out:
    if (err)
        im->arena.size = arena_at;
    json_decref(j);
    return err;
}

static const char *s_at(const s_import_t *im, size_t off)
{
    return off == S_NONE ? NULL : im->arena.data + off;
}

/* Write the batch in one transaction; on a full map grow and redo it. */
static int s_write_batch(s_import_t *im)
{
    for (;;) {
        store_txn_t *t;
        uint64_t written = 0, unchanged = 0, merged = 0;
        repl_local_result_t res;
        size_t i;
        int err = store_txn_begin(im->s, true, &t);
        if (err)
            return err;
        for (i = 0; i < im->nrows && !err; i++) {
            const s_row_t *r = &im->rows[i];
            const uint8_t *base = (const uint8_t *)im->arena.data;
            store_obj_t o = {
                .guid = r->guid,
                .cls = s_at(im, r->cls),
                .origin = s_at(im, r->origin),
                .owner = s_at(im, r->owner),
                .mtime = r->mtime,
                .flags = r->flags,
                .resource = r->resource,
                .keys = r->keys == S_NONE ? NULL : base + r->keys,
                .keys_len = r->keys_len,
                .body = base + r->body,
                .body_len = r->body_len,
            };
            err = repl_local_put(t, &o, &res);
            if (!err && res.lr_changed)
                written++;
            else if (!err)
                unchanged++;
            merged += !err && res.lr_merged;
        }
        if (err) {
            store_txn_abort(&t);
            if (err != HS_EMAPFULL) {
                im->line = im->rows[i - 1].line;
                snprintf(im->why, sizeof(im->why), "%s",
                         res.lr_why[0] ? res.lr_why : broker_cli_why(err));
                return HS_EINVAL; /* reported as a bad line */
            }
        } else {
            err = store_txn_commit(&t);
            if (err == HS_OK) {
                im->written += written;
                im->unchanged += unchanged;
                im->merged += merged;
                im->nrows = 0;
                im->arena.size = 0;
                return HS_OK;
            }
            if (err != HS_EMAPFULL)
                return err;
        }
        if ((err = store_grow(im->s)))
            return err;
    }
}

static bool s_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static int s_bad_line(s_import_t *im)
{
    if (im->first > 1)
        return broker_cli_fail(im->c,
                               "line %zu: %s (lines 1-%zu were imported; nothing from line %zu "
                               "on was written)",
                               im->line, im->why, im->first - 1, im->first);
    return broker_cli_fail(im->c, "line %zu: %s (nothing was written)", im->line, im->why);
}

int broker_cli_import(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"owner", required_argument, NULL, 'o'},
                                       BROKER_CLI_COMMON_OPTIONS};
    s_import_t im = {.c = c, .first = 1};
    int o, rc;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'o')
            im.owner = optarg;
    }
    if (argc - optind < 1)
        return broker_cli_usage(c, "missing FILE (or - for stdin)");
    if (argc - optind > 1)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind + 1]);
    if ((rc = broker_cli_need_dir(c)))
        return rc;
    if (im.owner && !s_name_ok(im.owner, strlen(im.owner)))
        return broker_cli_fail(c,
                               "--owner '%s' is not a node name (1 to 64 letters, digits, "
                               "'_', '.', '-')",
                               im.owner);
    const char *path = argv[optind];
    bool std = !strcmp(path, "-");
    FILE *f = std ? stdin : fopen(path, "rb");
    if (!f)
        return broker_cli_fail(c, "cannot read %s: %s", path, strerror(errno));
    if ((rc = broker_cli_open(c, &im.s))) {
        if (!std)
            fclose(f);
        return rc;
    }
    msgpack_sbuffer_init(&im.arena);
    im.rows = malloc(S_BATCH_LINES * sizeof(*im.rows));
    char *line = NULL;
    size_t cap = 0;
    int err = im.rows ? HS_OK : HS_ENOMEM;
    while (!err) {
        errno = 0;
        ssize_t n = getline(&line, &cap, f);
        if (n < 0) {
            if (ferror(f)) {
                rc = broker_cli_fail(c, "cannot read %s: %s", std ? "stdin" : path,
                                     strerror(errno ? errno : EIO));
                goto out;
            }
            break;
        }
        im.line++;
        if ((size_t)n > S_LINE_MAX) {
            snprintf(im.why, sizeof(im.why), "longer than %zu bytes", S_LINE_MAX);
            rc = s_bad_line(&im);
            goto out;
        }
        if (s_blank(line, (size_t)n))
            continue;
        im.read++;
        err = s_parse_line(&im, line, (size_t)n);
        if (err == HS_EMALF) {
            rc = s_bad_line(&im);
            goto out;
        }
        if (!err && (im.nrows == S_BATCH_LINES || im.arena.size >= S_BATCH_BYTES)) {
            err = s_write_batch(&im);
            if (!err) /* on failure im.line names the refused line */
                im.first = im.line + 1;
        }
    }
    if (!err && im.nrows)
        err = s_write_batch(&im);
    if (err == HS_EINVAL) {
        rc = s_bad_line(&im);
        goto out;
    }
    if (err) {
        rc = im.first > 1 ? broker_cli_fail(c,
                                            "%s (lines 1-%zu were imported; nothing from line "
                                            "%zu on was written)",
                                            broker_cli_why(err), im.first - 1, im.first)
                          : broker_cli_fail(c, "%s (nothing was written)", broker_cli_why(err));
        goto out;
    }
    if (c->cli_json)
        printf("{\"read\":%llu,\"written\":%llu,\"unchanged\":%llu,\"merged\":%llu}\n",
               (unsigned long long)im.read, (unsigned long long)im.written,
               (unsigned long long)im.unchanged, (unsigned long long)im.merged);
    else if (im.merged)
        printf("read %llu written %llu unchanged %llu (%llu merged into a resource with the "
               "same key: see hsync events)\n",
               (unsigned long long)im.read, (unsigned long long)im.written,
               (unsigned long long)im.unchanged, (unsigned long long)im.merged);
    else
        printf("read %llu written %llu unchanged %llu\n", (unsigned long long)im.read,
               (unsigned long long)im.written, (unsigned long long)im.unchanged);
    rc = BROKER_CLI_OK;
out:
    free(line);
    free(im.rows);
    msgpack_sbuffer_destroy(&im.arena);
    store_close(&im.s);
    if (!std)
        fclose(f);
    return rc;
}

/* ---- export ------------------------------------------------------------------ */

typedef struct s_export {
    uint64_t n;
} s_export_t;

static int s_export_one(void *ctx, const store_obj_t *o)
{
    s_export_t *x = ctx;
    json_t *j;
    int err = broker_cli_obj_json(o, BROKER_CLI_LINE, &j);
    if (err)
        return err;
    int r = json_dumpf(j, stdout, JSON_COMPACT);
    json_decref(j);
    if (r || fputc('\n', stdout) == EOF)
        return HS_EIO;
    x->n++;
    return 0;
}

int broker_cli_export(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"class", required_argument, NULL, 'c'},
                                       {"owner", required_argument, NULL, 'o'},
                                       BROKER_CLI_COMMON_OPTIONS};
    const char *prefix = NULL, *owner = NULL;
    int o, rc;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'c')
            prefix = optarg;
        else if (o == 'o')
            owner = optarg;
    }
    if (argc - optind > 0)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
    if ((rc = broker_cli_need_dir(c)))
        return rc;
    store_t *s = NULL;
    store_txn_t *t = NULL;
    if ((rc = broker_cli_open(c, &s)))
        return rc;
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
    s_export_t x = {0};
    int err = store_txn_begin(s, false, &t);
    if (!err) {
        err = store_scan(t, prefix, owner, 0, NULL, NULL, s_export_one, &x);
        store_txn_abort(&t);
    }
    store_close(&s);
    if (err == HS_EIO && broker_cli_output_gone())
        return BROKER_CLI_OK; /* the reader closed the pipe: a normal stop */
    if (err == HS_EIO)
        return broker_cli_fail(c, "cannot write the output: %s", strerror(errno));
    if (err == HS_EMALF)
        return broker_cli_fail(c,
                               "a stored object does not decode (damaged store); %llu "
                               "objects were written",
                               (unsigned long long)x.n);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    return BROKER_CLI_OK;
}
