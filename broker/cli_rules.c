/*
 * cli_rules.c - hsync rule ls|show|enable|disable|set.
 *
 * Rules live in the node's store; the running broker reads them on every
 * tick, so these commands work with or without it and take effect at once.
 */
#include "broker/cli.h"
#include "rules/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_dirs(unsigned d)
{
    return d == (RULES_UP | RULES_DOWN) ? "up+down" : d == RULES_UP ? "up" : "down";
}

static json_t *s_rule_json(const rules_rule_t *r)
{
    char every[24], full[24];
    rules_format_duration(r->ru_every_ms, every, sizeof(every));
    rules_format_duration(r->ru_complete_every_ms, full, sizeof(full));
    json_t *pre = json_array(), *dc = json_array();
    for (size_t i = 0; i < r->ru_nprefix; i++)
        json_array_append_new(pre, json_string(r->ru_prefix[i]));
    for (size_t i = 0; i < r->ru_ndataclass; i++)
        json_array_append_new(dc, json_string(r->ru_dataclass[i]));
    return json_pack("{s:s,s:b,s:s,s:o,s:s,s:s,s:s,s:i,s:o}", "name", r->ru_name, "enabled",
                     r->ru_enabled, "direction", s_dirs(r->ru_dirs), "classes", pre, "mode",
                     r->ru_always_complete ? "always complete" : "differential", "every", every,
                     "complete_every", full, "verify_percent", (int)r->ru_verify_pct, "dataclasses",
                     dc);
}

static void s_rule_line(const rules_rule_t *r)
{
    char every[24], full[24], cls[128] = "";
    rules_format_duration(r->ru_every_ms, every, sizeof(every));
    rules_format_duration(r->ru_complete_every_ms, full, sizeof(full));
    for (size_t i = 0; i < r->ru_nprefix; i++) {
        size_t n = strlen(cls);
        snprintf(cls + n, sizeof(cls) - n, "%s%s", i ? "," : "", r->ru_prefix[i]);
    }
    printf("%-12s %-8s %-8s %-22s %-16s %-6s %-8s %u%%\n", r->ru_name,
           r->ru_enabled ? "enabled" : "disabled", s_dirs(r->ru_dirs), cls,
           r->ru_always_complete ? "always complete" : "differential", every, full,
           r->ru_verify_pct);
}

typedef struct s_ls {
    broker_cli_t *c;
    json_t *all;
} s_ls_t;

static int s_ls_one(void *ctx, const rules_rule_t *r)
{
    s_ls_t *l = ctx;
    if (l->c->cli_json)
        json_array_append_new(l->all, s_rule_json(r));
    else
        s_rule_line(r);
    return 0;
}

typedef struct s_edit {
    const char *name;
    int enable; /* -1 leave, 0 disable, 1 enable */
    uint64_t every, complete_every;
    int verify; /* -1 leave */
    size_t ndc;
    char **dc;
    bool dc_set;
    rules_rule_t after;
} s_edit_t;

static int s_edit_txn(store_txn_t *t, void *ctx)
{
    s_edit_t *e = ctx;
    rules_rule_t r;
    int err = rules_get(t, e->name, &r);
    if (err)
        return err;
    if (e->enable >= 0)
        r.ru_enabled = e->enable;
    if (e->every)
        r.ru_every_ms = e->every;
    if (e->complete_every)
        r.ru_complete_every_ms = e->complete_every;
    if (e->verify >= 0)
        r.ru_verify_pct = (unsigned)e->verify;
    if (e->dc_set) {
        r.ru_ndataclass = 0;
        for (size_t i = 0; i < e->ndc && i < RULES_DATACLASS_MAX; i++)
            snprintf(r.ru_dataclass[r.ru_ndataclass++], sizeof(r.ru_dataclass[0]), "%s", e->dc[i]);
    }
    e->after = r;
    return rules_put(t, &r);
}

static int s_fail_rule(broker_cli_t *c, int err, const char *name)
{
    if (err == HS_ENOTFOUND)
        return broker_cli_fail(c, "no rule named '%s' (see 'hsync rule ls')", name);
    return broker_cli_fail(c, "%s", broker_cli_why(err));
}

int broker_cli_rule(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"every", required_argument, NULL, 'e'},
                                       {"complete-every", required_argument, NULL, 'C'},
                                       {"verify", required_argument, NULL, 'v'},
                                       {"dataclass", required_argument, NULL, 'D'},
                                       BROKER_CLI_COMMON_OPTIONS};
    s_edit_t e = {.enable = -1, .verify = -1};
    char *dcs[RULES_DATACLASS_MAX];
    e.dc = dcs;
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'e' && rules_parse_duration(optarg, &e.every))
            return broker_cli_fail(c, "--every takes a duration such as 5m, 1h or 1d, not '%s'",
                                   optarg);
        if (o == 'C' && rules_parse_duration(optarg, &e.complete_every))
            return broker_cli_fail(
                c, "--complete-every takes a duration such as 1d or 30d, not '%s'", optarg);
        if (o == 'v') {
            long long v;
            if (broker_cli_number(optarg, 0, 100, &v))
                return broker_cli_fail(c, "--verify takes a percentage from 0 to 100");
            e.verify = (int)v;
        }
        if (o == 'D') {
            if (e.ndc == RULES_DATACLASS_MAX)
                return broker_cli_fail(c, "at most %d --dataclass options", RULES_DATACLASS_MAX);
            e.dc[e.ndc++] = optarg;
            e.dc_set = true;
        }
    }
    if (optind >= argc)
        return broker_cli_usage(c, "which one: ls, show, enable, disable or set?");
    const char *sub = argv[optind++];
    int rc = broker_cli_need_dir(c);
    if (rc)
        return rc;
    store_t *s;
    if ((rc = broker_cli_open(c, &s)))
        return rc;
    if (!strcmp(sub, "ls")) {
        s_ls_t l = {c, json_array()};
        store_txn_t *t;
        int err = store_txn_begin(s, false, &t);
        if (!c->cli_json && !err)
            printf("%-12s %-8s %-8s %-22s %-16s %-6s %-8s %s\n", "RULE", "STATE", "DIR", "CLASSES",
                   "MODE", "EVERY", "COMPLETE", "VERIFY");
        if (!err) {
            err = rules_each(t, s_ls_one, &l);
            store_txn_abort(&t);
        }
        store_close(&s);
        if (!err && c->cli_json)
            rc = broker_cli_print_json(c, l.all, false);
        json_decref(l.all);
        return err ? broker_cli_fail(c, "%s", broker_cli_why(err)) : rc;
    }
    if (optind != argc - 1) {
        store_close(&s);
        return broker_cli_usage(c, "'rule %s' takes one rule NAME", sub);
    }
    e.name = argv[optind];
    int err;
    if (!strcmp(sub, "show")) {
        store_txn_t *t;
        err = store_txn_begin(s, false, &t);
        if (!err) {
            err = rules_get(t, e.name, &e.after);
            store_txn_abort(&t);
        }
    } else if (!strcmp(sub, "enable") || !strcmp(sub, "disable")) {
        e.enable = !strcmp(sub, "enable");
        err = store_write(s, s_edit_txn, &e);
    } else if (!strcmp(sub, "set")) {
        if (!e.every && !e.complete_every && e.verify < 0 && !e.dc_set) {
            store_close(&s);
            return broker_cli_usage(c, "'rule set' needs at least one of --every, "
                                       "--complete-every, --verify, --dataclass");
        }
        err = store_write(s, s_edit_txn, &e);
    } else {
        store_close(&s);
        return broker_cli_usage(c, "unknown rule command '%s'", sub);
    }
    store_close(&s);
    if (err)
        return s_fail_rule(c, err, e.name);
    json_t *j = s_rule_json(&e.after);
    if (c->cli_json) {
        rc = broker_cli_print_json(c, j, false);
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            char *txt = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%-15s %s\n", k, txt ? txt : json_string_value(v));
            free(txt);
        }
    }
    json_decref(j);
    return rc;
}
