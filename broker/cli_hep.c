/*
 * cli_hep.c - hsync hep set|ls: hierarchy editable properties (rules/hep.h).
 *
 * Settings are system.hep objects in the node's store; they travel down
 * with the "system" rule at the next run (or at once with replicate-now).
 */
#include "broker/cli.h"
#include "rules/hep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_set {
    const char *target, *prop;
    bool editable;
    store_guid_t guid;
    char why[512];
} s_set_t;

static int s_set_txn(store_txn_t *t, void *ctx)
{
    s_set_t *e = ctx;
    e->why[0] = '\0';
    return rules_hep_set(t, store_node_name(store_txn_store(t)), e->target, e->prop, e->editable,
                         &e->guid, e->why, sizeof(e->why));
}

typedef struct s_ls {
    json_t *all;
} s_ls_t;

/* One system.hep record as {"node","target","props":{...}}. */
static int s_ls_one(void *ctx, const store_obj_t *o)
{
    s_ls_t *l = ctx;
    json_t *j = NULL;
    if (broker_cli_obj_json(o, BROKER_CLI_FULL, &j))
        return 0;
    json_t *body = json_object_get(j, "body");
    json_t *row =
        json_pack("{s:s,s:O,s:O}", "node", o->origin, "target", json_object_get(body, "target"),
                  "props", json_object_get(body, "props"));
    if (row)
        json_array_append_new(l->all, row);
    json_decref(j);
    return 0;
}

static int s_ls_txn(store_txn_t *t, void *ctx)
{
    return store_scan(t, RULES_HEP_CLASS, NULL, 0, NULL, NULL, s_ls_one, ctx);
}

static int s_ls(broker_cli_t *c, store_t *s)
{
    s_ls_t l = {json_array()};
    store_txn_t *t;
    int err = store_txn_begin(s, false, &t);
    if (!err) {
        err = s_ls_txn(t, &l);
        store_txn_abort(&t);
    }
    if (err) {
        json_decref(l.all);
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    }
    int rc = BROKER_CLI_OK;
    if (c->cli_json) {
        rc = broker_cli_print_json(c, l.all, false);
    } else {
        printf("%-16s %-36s %-20s %s\n", "SET ON", "TARGET", "PROPERTY", "STATE");
        size_t i;
        json_t *row;
        json_array_foreach(l.all, i, row)
        {
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(row, "props"), k, v)
                printf("%-16s %-36s %-20s %s\n", json_string_value(json_object_get(row, "node")),
                       json_string_value(json_object_get(row, "target")), k,
                       json_is_string(v) ? json_string_value(v) : "?");
        }
        if (!json_array_size(l.all))
            printf("(no settings: everything replicated from above is locked)\n");
    }
    json_decref(l.all);
    return rc;
}

int broker_cli_hep(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if (optind >= argc)
        return broker_cli_usage(c, "which one: set or ls?");
    const char *sub = argv[optind++];
    bool set = !strcmp(sub, "set");
    if (!set && strcmp(sub, "ls"))
        return broker_cli_usage(c, "unknown hep command '%s' (set or ls)", sub);
    if (set && argc - optind != 3)
        return broker_cli_usage(c, "'hep set' takes (GUID|CLASS) PROPERTY editable|locked");
    if (!set && argc != optind)
        return broker_cli_usage(c, "'hep ls' takes no arguments");
    s_set_t e = {0};
    if (set) {
        e.target = argv[optind];
        e.prop = argv[optind + 1];
        const char *state = argv[optind + 2];
        if (strcmp(state, "editable") && strcmp(state, "locked"))
            return broker_cli_usage(c, "the state is 'editable' or 'locked', not '%s'", state);
        e.editable = !strcmp(state, "editable");
    }
    int rc = broker_cli_need_dir(c);
    store_t *s = NULL;
    if (rc || (rc = broker_cli_open(c, &s)))
        return rc;
    if (!set) {
        rc = s_ls(c, s);
        store_close(&s);
        return rc;
    }
    int err = store_write(s, s_set_txn, &e);
    store_close(&s);
    if (err)
        return broker_cli_fail(c, "%s", e.why[0] ? e.why : broker_cli_why(err));
    char gs[STORE_GUID_STRLEN + 1];
    store_guid_format(&e.guid, gs);
    if (c->cli_json) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "target", e.target, "property", e.prop, "state",
                              e.editable ? "editable" : "locked", "record", gs);
        rc = j ? broker_cli_print_json(c, j, false) : broker_cli_fail(c, "out of memory");
        json_decref(j);
        return rc;
    }
    printf("%s %s is %s below this node (record %s; it travels down with the next run of "
           "rule 'system')\n",
           e.target, e.prop, e.editable ? "editable" : "locked", gs);
    return BROKER_CLI_OK;
}
