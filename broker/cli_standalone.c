/*
 * cli_standalone.c - hsync standalone add|ls|show|enable|disable|rm.
 *
 * A standalone rule (rules/rules.h) feeds classes one way from this node to
 * destinations outside its hierarchy. `add` links each destination with its
 * invite (the running broker dials it; the destination records this node as
 * a source), checks the rule's scope, then stores the rule; the broker runs
 * it on its schedule from the next tick. The other commands work on the
 * store alone, with or without the broker.
 */
#include "broker/cli.h"
#include "broker/ctl.h"
#include "replication/marks.h"
#include "rules/rules.h"
#include "topology/peers.h"
#include "topology/token.h"
#include "topology/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Families a standalone rule may carry. */
static bool s_class_ok(const char *pre)
{
    static const char *const ok[] = {"item.",    "security.", "resource.", "dataclass.",
                                     "package",  "event.",    "item",      "security",
                                     "resource", "dataclass", "event"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strncmp(pre, ok[i], strlen(ok[i])) || !strcmp(pre, ok[i]))
            return store_class_check(pre) == HS_OK || pre[strlen(pre) - 1] == '.';
    return false;
}

static bool s_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (!len || len > RULES_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_' ||
              n[i] == '-'))
            return false;
    return true;
}

/* ---- where a destination sits relative to this node ------------------------ */

typedef struct s_where {
    const char *name;
    const char *rel; /* "its parent", "an ancestor", ... or NULL */
} s_where_t;

static int s_where_one(void *ctx, const topo_peer_t *p)
{
    s_where_t *w = ctx;
    if (w->rel)
        return 0;
    if (p->pe_role == TOPO_ROLE_PARENT || p->pe_role == TOPO_ROLE_CHILD) {
        if (!strcmp(p->pe_name, w->name)) {
            w->rel = p->pe_role == TOPO_ROLE_PARENT ? "this node's parent" : "a child of this node";
            return 0;
        }
        for (size_t i = 0; i < p->pe_nrel; i++)
            if (!strcmp(p->pe_rel[i].rel_name, w->name))
                w->rel = p->pe_role == TOPO_ROLE_PARENT ? "an ancestor of this node"
                                                        : "below this node in its hierarchy";
    }
    return 0;
}

static int s_where_txn(store_txn_t *t, void *ctx)
{
    return topo_peer_each(t, 0, s_where_one, ctx);
}

/* ---- add -------------------------------------------------------------------- */

typedef struct s_add {
    rules_rule_t rule;
    bool exists;
} s_add_t;

static int s_add_txn(store_txn_t *t, void *ctx)
{
    s_add_t *a = ctx;
    rules_rule_t old;
    int err = rules_get(t, a->rule.ru_name, &old);
    if (err != HS_ENOTFOUND) {
        a->exists = err == HS_OK;
        return err ? err : HS_EEXIST;
    }
    return rules_put(t, &a->rule);
}

static int s_exists_txn(store_txn_t *t, void *ctx)
{
    rules_rule_t r;
    int err = rules_get(t, ctx, &r);
    return err == HS_ENOTFOUND ? HS_OK : err ? err : HS_EEXIST;
}

typedef struct s_ver {
    const char *peer;
    char version[64];
    bool set;
} s_ver_t;

static int s_ver_txn(store_txn_t *t, void *ctx)
{
    s_ver_t *v = ctx;
    char key[STORE_NAME_MAX + 16];
    snprintf(key, sizeof(key), "peer-version/%s", v->peer);
    if (v->set)
        return store_meta_put(t, key, v->version);
    int err = store_meta_get(t, key, v->version, sizeof(v->version));
    if (err == HS_ENOTFOUND) {
        v->version[0] = '\0';
        err = HS_OK;
    }
    return err;
}

static bool s_covers(const rules_rule_t *r, const char *cls)
{
    return rules_carries(r, cls);
}

/* Unlink destination NAME through the running broker (it tells the
 * destination, which forgets this source, and revokes its key). HS_OK, or an
 * error with why (the broker's refusal, or why it could not be asked). */
static int s_unlink(broker_cli_t *c, const char *name, char *why, size_t whylen)
{
    json_t *req = json_pack("{s:s,s:s}", "cmd", "remove-destination", "name", name);
    json_t *resp = NULL;
    int err = req ? broker_ctl_call(c->cli_dir, req, 10000, &resp, NULL, NULL) : HS_ENOMEM;
    if (err) {
        snprintf(why, whylen, "%s", broker_cli_why(err));
    } else if (!json_is_true(json_object_get(resp, "ok"))) {
        const char *e = json_string_value(json_object_get(resp, "error"));
        snprintf(why, whylen, "%s", e ? e : "the broker refused");
        err = HS_EPEER;
    }
    json_decref(req);
    json_decref(resp);
    return err;
}

static int s_add_run(broker_cli_t *c, s_add_t *a, char **tokens, size_t ntok, bool force)
{
    rules_rule_t *r = &a->rule;
    /* scope checks first: nothing is linked for a rule that cannot be */
    if (s_covers(r, "security.role") && !s_covers(r, "security.privilege") && !force)
        return broker_cli_fail(c,
                               "rule '%s' carries security roles but not their privileges: a "
                               "replicated role does not recognise privileges the destination "
                               "lacks (add --class security.privilege, or --force to create it "
                               "anyway)",
                               r->ru_name);
    store_t *s = NULL;
    int rc = broker_cli_open(c, &s);
    if (rc)
        return rc;
    int err = store_write(s, s_exists_txn, r->ru_name);
    if (err == HS_EEXIST) {
        store_close(&s);
        return broker_cli_fail(c,
                               "a rule named '%s' exists already (see 'hsync rule ls' and "
                               "'hsync standalone ls')",
                               r->ru_name);
    }
    /* every check that needs no link first: nothing is linked for a rule
     * that cannot be */
    topo_token_t toks[RULES_DEST_MAX];
    for (size_t i = 0; i < ntok && !rc; i++) {
        if (topo_token_decode(tokens[i], &toks[i])) {
            rc = broker_cli_fail(c, "--to: that is not an hsync invite token (copy it whole from "
                                    "'hsync invite' on the destination)");
            break;
        }
        s_where_t w = {.name = toks[i].tok_node};
        if (store_write(s, s_where_txn, &w) == HS_OK && w.rel &&
            (!strcmp(w.rel, "this node's parent") || !strcmp(w.rel, "a child of this node"))) {
            rc = broker_cli_fail(c,
                                 "'%s' is %s: hierarchy rules already replicate between them; "
                                 "use those (hsync rule ...) instead of a standalone rule",
                                 toks[i].tok_node, w.rel);
            break;
        }
        if (w.rel)
            fprintf(stderr,
                    "hsync: standalone add: warning: '%s' is %s: a standalone rule between "
                    "members of one hierarchy works against hierarchy replication (no conflict "
                    "prevention); prefer hierarchy rules\n",
                    toks[i].tok_node, w.rel);
    }
    /* then link; what this command linked is unlinked again if it fails */
    bool linked[RULES_DEST_MAX] = {false};
    for (size_t i = 0; i < ntok && !rc; i++) {
        const topo_token_t *tok = &toks[i];
        json_t *req = json_pack("{s:s,s:s}", "cmd", "link-destination", "token", tokens[i]);
        json_t *resp = NULL;
        err = req ? broker_ctl_call(c->cli_dir, req, 15000, &resp, NULL, NULL) : HS_ENOMEM;
        json_decref(req);
        if (err == HS_ENOBROKER) {
            rc = broker_cli_fail(c,
                                 "no broker is running for %s: it links the destination (start "
                                 "it with 'hsync serve -d %s')",
                                 c->cli_dir, c->cli_dir);
            break;
        }
        if (err) {
            rc = broker_cli_fail(c, "linking '%s': %s", tok->tok_node, broker_cli_why(err));
            break;
        }
        if (!json_is_true(json_object_get(resp, "ok"))) {
            const char *why = json_string_value(json_object_get(resp, "error"));
            rc = broker_cli_fail(c, "linking '%s': %s", tok->tok_node, why ? why : "refused");
            json_decref(resp);
            break;
        }
        linked[i] = !json_is_true(json_object_get(resp, "already"));
        s_ver_t v = {.peer = tok->tok_node};
        const char *ver = json_string_value(json_object_get(resp, "version"));
        if (ver && *ver) {
            snprintf(v.version, sizeof(v.version), "%s", ver);
            v.set = true;
        }
        if (store_write(s, s_ver_txn, &v) != HS_OK)
            v.version[0] = '\0';
        json_decref(resp);
        if (s_covers(r, "package") && !strcmp(v.version, TOPO_SOFTWARE_VERSION)) {
            rc = broker_cli_fail(c,
                                 "standalone replication of packages is not supported between two "
                                 "nodes of the same version ('%s' and this node both run %s): "
                                 "packages reach other servers of this version through the "
                                 "hierarchy",
                                 tok->tok_node, TOPO_SOFTWARE_VERSION);
            break;
        }
        bool dup = false;
        for (size_t j = 0; j < r->ru_ndest; j++)
            dup = dup || !strcmp(r->ru_dest[j], tok->tok_node);
        if (!dup)
            snprintf(r->ru_dest[r->ru_ndest++], sizeof(r->ru_dest[0]), "%.*s", STORE_NAME_MAX,
                     tok->tok_node);
    }
    if (!rc) {
        err = store_write(s, s_add_txn, a);
        if (err)
            rc = broker_cli_fail(c, "cannot store rule '%s': %s", r->ru_name, broker_cli_why(err));
    }
    store_close(&s);
    if (rc) {
        char why[300];
        for (size_t i = 0; i < ntok; i++)
            if (linked[i] && s_unlink(c, toks[i].tok_node, why, sizeof(why)) == HS_OK)
                fprintf(stderr, "hsync: standalone add: unlinked '%s' again\n", toks[i].tok_node);
        return rc;
    }
    broker_ctl_poke(c->cli_dir);
    if (c->cli_json) {
        json_t *d = json_array();
        for (size_t i = 0; i < r->ru_ndest; i++)
            json_array_append_new(d, json_string(r->ru_dest[i]));
        json_t *j = json_pack("{s:s,s:o}", "rule", r->ru_name, "destinations", d);
        rc = broker_cli_print_json(c, j, false);
        json_decref(j);
        return rc;
    }
    printf("standalone rule '%s' feeds", r->ru_name);
    for (size_t i = 0; i < r->ru_ndest; i++)
        printf("%s %s", i ? "," : "", r->ru_dest[i]);
    printf(" (first run: complete, at the broker's next tick)\n");
    return BROKER_CLI_OK;
}

/* ---- ls, show --------------------------------------------------------------- */

static json_t *s_rule_json(store_txn_t *t, const rules_rule_t *r)
{
    char every[24], full[24];
    rules_format_duration(r->ru_every_ms, every, sizeof(every));
    rules_format_duration(r->ru_complete_every_ms, full, sizeof(full));
    json_t *pre = json_array(), *dc = json_array(), *dest = json_array(), *where = json_array();
    for (size_t i = 0; i < r->ru_nprefix; i++)
        json_array_append_new(pre, json_string(r->ru_prefix[i]));
    for (size_t i = 0; i < r->ru_ndataclass; i++)
        json_array_append_new(dc, json_string(r->ru_dataclass[i]));
    for (size_t i = 0; i < r->ru_nwhere; i++)
        json_array_append_new(where, json_string(r->ru_where[i]));
    for (size_t i = 0; i < r->ru_ndest; i++) {
        repl_mark_t m;
        char last[32] = "never", lastc[32] = "never";
        if (repl_mark_get(t, r->ru_dest[i], r->ru_name, &m) != HS_OK)
            memset(&m, 0, sizeof(m));
        if (m.mk_last_run_ms)
            broker_cli_time_format(m.mk_last_run_ms, last);
        if (m.mk_last_complete_ms)
            broker_cli_time_format(m.mk_last_complete_ms, lastc);
        json_array_append_new(dest, json_pack("{s:s,s:s,s:s,s:I,s:b,s:s,s:i}", "name",
                                              r->ru_dest[i], "last_run", last, "last_complete",
                                              lastc, "watermark", (json_int_t)m.mk_diff_seq, "ok",
                                              m.mk_last_ok || !m.mk_last_run_ms, "error",
                                              m.mk_last_error, "failures", (int)m.mk_failures));
    }
    return json_pack("{s:s,s:b,s:o,s:o,s:s,s:s,s:s,s:s,s:o,s:o}", "name", r->ru_name, "enabled",
                     r->ru_enabled, "classes", pre, "dataclasses", dc, "mode",
                     r->ru_always_complete ? "always complete" : "differential", "every", every,
                     "complete_every", full, "target", r->ru_target, "where", where, "destinations",
                     dest);
}

typedef struct s_ls {
    broker_cli_t *c;
    store_txn_t *t;
    json_t *all;
    const char *only;
} s_ls_t;

static int s_ls_one(void *ctx, const rules_rule_t *r)
{
    s_ls_t *l = ctx;
    if (r->ru_dirs != RULES_SIDE || (l->only && strcmp(l->only, r->ru_name)))
        return 0;
    json_array_append_new(l->all, s_rule_json(l->t, r));
    return 0;
}

static int s_ls_txn(store_txn_t *t, void *ctx)
{
    s_ls_t *l = ctx;
    l->t = t;
    return rules_each(t, s_ls_one, l);
}

static void s_print_rule(const json_t *j, bool long_form)
{
    char cls[160] = "", dest[200] = "";
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "classes"), i, v)
    {
        size_t n = strlen(cls);
        snprintf(cls + n, sizeof(cls) - n, "%s%s", i ? "," : "", json_string_value(v));
    }
    json_array_foreach(json_object_get(j, "destinations"), i, v)
    {
        size_t n = strlen(dest);
        snprintf(dest + n, sizeof(dest) - n, "%s%s", i ? "," : "",
                 json_string_value(json_object_get(v, "name")));
    }
    printf("%-16s %-8s %-28s %-20s %-15s %s\n", json_string_value(json_object_get(j, "name")),
           json_is_true(json_object_get(j, "enabled")) ? "enabled" : "disabled", cls, dest,
           json_string_value(json_object_get(j, "mode")),
           json_string_value(json_object_get(j, "every")));
    if (!long_form)
        return;
    const char *target = json_string_value(json_object_get(j, "target"));
    if (target && *target) {
        printf("  target: %s", target);
        json_array_foreach(json_object_get(j, "where"), i, v) printf(" %s", json_string_value(v));
        printf("\n");
    }
    json_array_foreach(json_object_get(j, "destinations"), i, v)
    {
        const char *err = json_string_value(json_object_get(v, "error"));
        printf("  -> %-14s last run %s, last complete %s, watermark seq %lld%s%s\n",
               json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "last_run")),
               json_string_value(json_object_get(v, "last_complete")),
               (long long)json_integer_value(json_object_get(v, "watermark")),
               err && *err ? ", last error: " : "", err ? err : "");
    }
}

/* ---- enable, disable, rm -------------------------------------------------- */

typedef struct s_edit {
    const char *name;
    int enable; /* -1: remove */
    /* rm: the removed rule's destinations no other standalone rule uses */
    size_t norphan;
    char orphan[RULES_DEST_MAX][STORE_NAME_MAX + 1];
} s_edit_t;

/* Strike from e->orphan every destination another standalone rule uses. */
static int s_keep_used(void *ctx, const rules_rule_t *r)
{
    s_edit_t *e = ctx;
    if (r->ru_dirs != RULES_SIDE)
        return 0;
    for (size_t i = 0; i < r->ru_ndest; i++)
        for (size_t k = 0; k < e->norphan; k++)
            if (!strcmp(e->orphan[k], r->ru_dest[i])) {
                memmove(e->orphan[k], e->orphan[k + 1],
                        (e->norphan - k - 1) * sizeof(e->orphan[0]));
                e->norphan--;
                break;
            }
    return 0;
}

static int s_edit_txn(store_txn_t *t, void *ctx)
{
    s_edit_t *e = ctx;
    rules_rule_t r;
    int err = rules_get(t, e->name, &r);
    if (err)
        return err;
    if (r.ru_dirs != RULES_SIDE)
        return HS_EINVAL;
    if (e->enable >= 0) {
        r.ru_enabled = e->enable;
        return rules_put(t, &r);
    }
    if ((err = rules_del(t, e->name)))
        return err;
    e->norphan = r.ru_ndest;
    memcpy(e->orphan, r.ru_dest, r.ru_ndest * sizeof(e->orphan[0]));
    return rules_each(t, s_keep_used, e);
}

/* ---- the command ------------------------------------------------------------ */

int broker_cli_standalone(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"name", required_argument, NULL, 'n'},
                                       {"to", required_argument, NULL, 't'},
                                       {"class", required_argument, NULL, 'c'},
                                       {"dataclass", required_argument, NULL, 'D'},
                                       {"complete", no_argument, NULL, 'C'},
                                       {"every", required_argument, NULL, 'e'},
                                       {"complete-every", required_argument, NULL, 'E'},
                                       {"target", required_argument, NULL, 'T'},
                                       {"where", required_argument, NULL, 'w'},
                                       {"force", no_argument, NULL, 'f'},
                                       BROKER_CLI_COMMON_OPTIONS};
    s_add_t a = {0};
    rules_rule_t *r = &a.rule;
    r->ru_dirs = RULES_SIDE;
    r->ru_enabled = true;
    r->ru_every_ms = 24ull * 3600 * 1000;
    r->ru_complete_every_ms = 30ull * 24 * 3600 * 1000;
    char *tokens[RULES_DEST_MAX];
    size_t ntok = 0;
    bool force = false, named = false;
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        switch (o) {
        case 'n':
            if (!s_name_ok(optarg))
                return broker_cli_usage(c, "--name: 1 to %d of a-z 0-9 _ -, not '%s'",
                                        RULES_NAME_MAX, optarg);
            snprintf(r->ru_name, sizeof(r->ru_name), "%s", optarg);
            named = true;
            break;
        case 't':
            if (ntok == RULES_DEST_MAX)
                return broker_cli_usage(c, "at most %d destinations (--to)", RULES_DEST_MAX);
            tokens[ntok++] = optarg;
            break;
        case 'c':
            if (r->ru_nprefix == RULES_PREFIX_MAX)
                return broker_cli_usage(c, "at most %d --class options", RULES_PREFIX_MAX);
            if (!s_class_ok(optarg))
                return broker_cli_usage(c,
                                        "--class '%s': a standalone rule carries items, security "
                                        "records, resources, data classes, packages or events "
                                        "(item.*, security.*, resource.*, dataclass.*, package, "
                                        "event.*)",
                                        optarg);
            snprintf(r->ru_prefix[r->ru_nprefix++], sizeof(r->ru_prefix[0]), "%s", optarg);
            break;
        case 'D':
            if (r->ru_ndataclass == RULES_DATACLASS_MAX)
                return broker_cli_usage(c, "at most %d --dataclass options", RULES_DATACLASS_MAX);
            snprintf(r->ru_dataclass[r->ru_ndataclass++], sizeof(r->ru_dataclass[0]), "%s", optarg);
            break;
        case 'C':
            r->ru_always_complete = true;
            break;
        case 'e':
            if (rules_parse_duration(optarg, &r->ru_every_ms))
                return broker_cli_usage(c, "--every takes a duration such as 5m, 1h or 1d");
            break;
        case 'E':
            if (rules_parse_duration(optarg, &r->ru_complete_every_ms))
                return broker_cli_usage(c, "--complete-every takes a duration such as 1d or 30d");
            break;
        case 'T':
            if (strncmp(optarg, "resource.", 9) || store_class_check(optarg))
                return broker_cli_usage(c, "--target takes a resource class, e.g. "
                                           "resource.computer");
            snprintf(r->ru_target, sizeof(r->ru_target), "%s", optarg);
            break;
        case 'w':
            if (r->ru_nwhere == RULES_WHERE_MAX || !strchr(optarg, '=') || optarg[0] == '=' ||
                strlen(optarg) >= sizeof(r->ru_where[0]))
                return broker_cli_usage(c,
                                        "--where takes NAME=VALUE (at most %d, under 128 "
                                        "bytes each)",
                                        RULES_WHERE_MAX);
            snprintf(r->ru_where[r->ru_nwhere++], sizeof(r->ru_where[0]), "%s", optarg);
            break;
        case 'f':
            force = true;
            break;
        }
    }
    if (optind >= argc)
        return broker_cli_usage(c, "which one: add, ls, show, enable, disable, rm or unlink?");
    const char *sub = argv[optind++];
    int rc = broker_cli_need_dir(c);
    if (rc)
        return rc;
    if (!strcmp(sub, "add")) {
        if (optind != argc)
            return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
        if (!named)
            return broker_cli_usage(c, "missing --name NAME");
        if (!ntok)
            return broker_cli_usage(c, "missing --to TOKEN (from 'hsync invite' on the "
                                       "destination)");
        if (!r->ru_nprefix)
            return broker_cli_usage(c, "missing --class PREFIX (what the rule carries)");
        if (r->ru_nwhere && !r->ru_target[0])
            return broker_cli_usage(c, "--where needs --target CLASS");
        if (r->ru_target[0] && !rules_carries(r, r->ru_target))
            return broker_cli_usage(c, "--target %s: the rule must carry that class (--class)",
                                    r->ru_target);
        return s_add_run(c, &a, tokens, ntok, force);
    }
    if (!strcmp(sub, "ls") || !strcmp(sub, "show")) {
        bool show = !strcmp(sub, "show");
        if (show != (optind + 1 == argc))
            return broker_cli_usage(c, show ? "'standalone show' takes one rule NAME"
                                            : "'standalone ls' takes no arguments");
        store_t *s = NULL;
        if ((rc = broker_cli_open(c, &s)))
            return rc;
        s_ls_t l = {c, NULL, json_array(), show ? argv[optind] : NULL};
        store_txn_t *t;
        int err = store_txn_begin(s, false, &t);
        if (!err) {
            err = s_ls_txn(t, &l);
            store_txn_abort(&t);
        }
        store_close(&s);
        if (!err && show && !json_array_size(l.all))
            err = HS_ENOTFOUND;
        if (err) {
            json_decref(l.all);
            return err == HS_ENOTFOUND
                       ? broker_cli_fail(c,
                                         "no standalone rule named '%s' (see 'hsync standalone "
                                         "ls')",
                                         argv[optind])
                       : broker_cli_fail(c, "%s", broker_cli_why(err));
        }
        if (c->cli_json) {
            rc = broker_cli_print_json(c, show ? json_array_get(l.all, 0) : l.all, false);
        } else {
            printf("%-16s %-8s %-28s %-20s %-15s %s\n", "RULE", "STATE", "CLASSES", "TO", "MODE",
                   "EVERY");
            size_t i;
            json_t *j;
            json_array_foreach(l.all, i, j) s_print_rule(j, show);
            if (!show && !json_array_size(l.all))
                printf("(no standalone rules: add one with 'hsync standalone add')\n");
        }
        json_decref(l.all);
        return rc;
    }
    if (!strcmp(sub, "enable") || !strcmp(sub, "disable") || !strcmp(sub, "rm")) {
        if (optind + 1 != argc)
            return broker_cli_usage(c, "'standalone %s' takes one rule NAME", sub);
        s_edit_t e = {.name = argv[optind],
                      .enable = !strcmp(sub, "rm") ? -1 : !strcmp(sub, "enable")};
        store_t *s = NULL;
        if ((rc = broker_cli_open(c, &s)))
            return rc;
        int err = store_write(s, s_edit_txn, &e);
        store_close(&s);
        if (err == HS_ENOTFOUND)
            return broker_cli_fail(c, "no standalone rule named '%s' (see 'hsync standalone ls')",
                                   e.name);
        if (err == HS_EINVAL)
            return broker_cli_fail(c,
                                   "'%s' is a hierarchy rule: use 'hsync rule enable|disable' "
                                   "(hierarchy rules are never removed)",
                                   e.name);
        if (err)
            return broker_cli_fail(c, "%s", broker_cli_why(err));
        broker_ctl_poke(c->cli_dir);
        /* rm: a destination no rule uses any more is unlinked; one that
         * cannot be (broker down) is named, with what to do */
        json_t *unlinked = json_array(), *kept = json_array();
        for (size_t i = 0; i < e.norphan; i++) {
            char why[300];
            err = s_unlink(c, e.orphan[i], why, sizeof(why));
            json_array_append_new(err ? kept : unlinked, json_string(e.orphan[i]));
            if (err)
                fprintf(stderr,
                        "hsync: standalone rm: destination '%s' stays linked (%s); once the "
                        "broker runs: hsync standalone unlink -d %s %s\n",
                        e.orphan[i], why, c->cli_dir, e.orphan[i]);
        }
        if (c->cli_json) {
            json_t *j = json_pack("{s:s,s:b}", "rule", e.name,
                                  e.enable < 0 ? "removed"
                                  : e.enable   ? "enabled"
                                               : "disabled",
                                  1);
            if (e.enable < 0) {
                json_object_set(j, "unlinked", unlinked);
                json_object_set(j, "still_linked", kept);
            }
            rc = broker_cli_print_json(c, j, false);
            json_decref(j);
        } else {
            printf("standalone rule '%s' %s\n", e.name,
                   e.enable < 0 ? "removed"
                   : e.enable   ? "enabled"
                                : "disabled (settings and watermarks kept)");
            size_t i;
            json_t *v;
            json_array_foreach(unlinked, i, v)
                printf("unlinked destination '%s' (no other standalone rule sends to it)\n",
                       json_string_value(v));
        }
        json_decref(unlinked);
        json_decref(kept);
        return json_array_size(kept) ? BROKER_CLI_FAIL : rc;
    }
    if (!strcmp(sub, "unlink")) {
        if (optind + 1 != argc)
            return broker_cli_usage(c, "'standalone unlink' takes one destination NAME");
        s_edit_t e = {.norphan = 1};
        if (strlen(argv[optind]) > STORE_NAME_MAX)
            return broker_cli_usage(c, "a node name is at most %d characters", STORE_NAME_MAX);
        snprintf(e.orphan[0], sizeof(e.orphan[0]), "%s", argv[optind]);
        store_t *s = NULL;
        if ((rc = broker_cli_open(c, &s)))
            return rc;
        store_txn_t *t;
        int err = store_txn_begin(s, false, &t);
        if (!err) {
            err = rules_each(t, s_keep_used, &e);
            store_txn_abort(&t);
        }
        store_close(&s);
        if (err)
            return broker_cli_fail(c, "%s", broker_cli_why(err));
        if (!e.norphan)
            return broker_cli_fail(c,
                                   "a standalone rule still sends to '%s': remove it first "
                                   "(hsync standalone ls)",
                                   argv[optind]);
        char why[300];
        err = s_unlink(c, e.orphan[0], why, sizeof(why));
        if (err)
            return broker_cli_fail(c, "cannot unlink '%s': %s", e.orphan[0], why);
        printf("unlinked destination '%s'\n", e.orphan[0]);
        return BROKER_CLI_OK;
    }
    return broker_cli_usage(c, "unknown standalone command '%s'", sub);
}
