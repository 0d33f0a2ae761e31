/*
 * cli_topology.c - serve, invite and hierarchy commands.
 */
#include "broker/broker.h"
#include "broker/cli.h"
#include "broker/ctl.h"
#include "topology/identity.h"
#include "topology/peers.h"
#include "topology/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int broker_cli_serve(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if (optind != argc)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
    int rc = broker_cli_need_dir(c);
    if (rc)
        return rc;
    store_t *s;
    rc = broker_cli_open(c, &s); /* says plainly what is wrong with the folder */
    if (rc)
        return rc;
    store_close(&s);
    int err = broker_serve(c->cli_dir);
    if (err == HS_EEXIST)
        return broker_cli_fail(c, "a broker already runs for %s", c->cli_dir);
    if (err == HS_EACCES)
        return broker_cli_fail(c,
                               "the broker could not start: %s is not safe to serve (see the log "
                               "above for what to chmod or chown)",
                               c->cli_dir);
    return err ? broker_cli_fail(c, "the broker could not start: %s (see the log above)",
                                 broker_cli_why(err))
               : BROKER_CLI_OK;
}

typedef struct s_invite {
    uint64_t ttl;
    topo_token_t tok;
} s_invite_t;

static int s_invite_txn(store_txn_t *t, void *ctx)
{
    s_invite_t *in = ctx;
    int err = topo_identity_ensure(t);
    return err ? err : topo_token_issue(t, in->ttl, &in->tok);
}

int broker_cli_invite(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"ttl", required_argument, NULL, 't'},
                                       BROKER_CLI_COMMON_OPTIONS};
    s_invite_t in = {.ttl = TOPO_TOKEN_TTL_DEFAULT};
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 't') {
            long long v;
            if (broker_cli_number(optarg, 1, 30ll * 86400, &v))
                return broker_cli_usage(c, "--ttl takes seconds, 1 to 2592000");
            in.ttl = (uint64_t)v;
        }
    }
    if (optind != argc)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
    int rc = broker_cli_need_dir(c);
    store_t *s = NULL;
    if (rc || (rc = broker_cli_open(c, &s)))
        return rc;
    int err = store_write(s, s_invite_txn, &in);
    store_close(&s);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    char text[TOPO_TOKEN_MAX];
    err = topo_token_encode(&in.tok, text, sizeof(text));
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    if (c->cli_json) {
        json_t *j =
            json_pack("{s:s,s:s,s:s,s:I}", "token", text, "node", in.tok.tok_node, "endpoint",
                      in.tok.tok_endpoint, "expires", (json_int_t)in.tok.tok_expires);
        rc = broker_cli_print_json(c, j, false);
        json_decref(j);
        return rc;
    }
    printf("%s\n", text);
    return BROKER_CLI_OK;
}

/* Send one request to the running broker; print its error or hand back the
 * reply. */
static int s_call(broker_cli_t *c, json_t *req, int timeout_ms, json_t **resp)
{
    int err = broker_ctl_call(c->cli_dir, req, timeout_ms, resp, NULL, NULL);
    json_decref(req);
    if (err == HS_ENOBROKER)
        return broker_cli_fail(c, "no broker is running for %s (start it with 'hsync serve -d %s')",
                               c->cli_dir, c->cli_dir);
    if (err == HS_ETIMEDOUT)
        return broker_cli_fail(c, "the broker did not answer within %d s", timeout_ms / 1000);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    if (!json_is_true(json_object_get(*resp, "ok"))) {
        const char *why = json_string_value(json_object_get(*resp, "error"));
        broker_cli_fail(c, "%s", why ? why : "the broker refused the request");
        json_decref(*resp);
        *resp = NULL;
        return BROKER_CLI_FAIL;
    }
    return BROKER_CLI_OK;
}

static void s_print_tree(json_t *st)
{
    const char *node = json_string_value(json_object_get(st, "node"));
    json_t *links = json_object_get(st, "links");
    size_t i;
    json_t *l;
    json_t *parent = NULL;
    json_array_foreach(links, i, l)
    {
        if (!strcmp(json_string_value(json_object_get(l, "role")), "parent"))
            parent = l;
    }
    if (parent) {
        json_t *path = json_object_get(parent, "path");
        size_t j;
        json_t *r;
        printf("ancestors: ");
        json_array_foreach(path, j, r)
        {
            printf("%s%s", j ? " > " : "", json_string_value(json_object_get(r, "name")));
        }
        printf("\n");
    }
    printf("node:      %s (%s)\n", node, json_string_value(json_object_get(st, "fingerprint")));
    printf("%-8s %-16s %-8s %-9s %-10s %-20s %s\n", "ROLE", "NAME", "STATE", "HEALTH", "LAST SEEN",
           "KEY", "ENDPOINT");
    json_array_foreach(links, i, l)
    {
        json_t *seen = json_object_get(l, "last_seen_ms_ago");
        char ago[32] = "never";
        if (json_is_integer(seen))
            snprintf(ago, sizeof(ago), "%.1fs ago", (double)json_integer_value(seen) / 1000.0);
        const char *ep = json_string_value(json_object_get(l, "endpoint"));
        const char *health = json_string_value(json_object_get(l, "health"));
        printf("%-8s %-16s %-8s %-9s %-10s %-20s %s\n",
               json_string_value(json_object_get(l, "role")),
               json_string_value(json_object_get(l, "name")),
               json_string_value(json_object_get(l, "state")), health ? health : "-", ago,
               json_string_value(json_object_get(l, "fingerprint")), ep && *ep ? ep : "-");
        json_t *sub = json_object_get(l, "subtree");
        size_t j;
        json_t *r;
        json_array_foreach(sub, j, r)
        {
            printf("           %s (under %s)\n", json_string_value(json_object_get(r, "name")),
                   json_string_value(json_object_get(r, "parent")));
        }
    }
}

/* Links as recorded in the store, for when no broker runs. */
static int s_offline_link(void *ctx, const topo_peer_t *p)
{
    json_t *links = ctx;
    char fp[20];
    topo_fingerprint(p->pe_key, fp);
    json_array_append_new(links,
                          json_pack("{s:s,s:s,s:s,s:s,s:s,s:n}", "role", topo_role_name(p->pe_role),
                                    "name", p->pe_name, "endpoint", p->pe_endpoint, "state",
                                    "unknown", "fingerprint", fp, "last_seen_ms_ago"));
    return 0;
}

int broker_cli_links_json(broker_cli_t *c, json_t **out)
{
    json_t *resp = NULL;
    *out = NULL;
    if (broker_ctl_running(c->cli_dir)) {
        json_t *req = json_pack("{s:s}", "cmd", "status");
        if (broker_ctl_call(c->cli_dir, req, 5000, &resp, NULL, NULL) == HS_OK) {
            json_decref(req);
            json_object_set_new(resp, "broker", json_string("running"));
            *out = resp;
            return HS_OK;
        }
        json_decref(req);
    }
    store_t *s;
    int err = store_open(c->cli_dir, 0, &s);
    if (err)
        return err;
    store_txn_t *t;
    json_t *links = json_array();
    topo_identity_t id;
    err = store_txn_begin(s, false, &t);
    if (!err) {
        err = topo_identity_load(t, &id);
        if (err == HS_ENOTFOUND) {
            memset(&id, 0, sizeof(id));
            snprintf(id.id_name, sizeof(id.id_name), "%s", store_node_name(s));
            err = HS_OK;
        }
        if (!err)
            err = topo_peer_each(t, 0, s_offline_link, links);
        store_txn_abort(&t);
    }
    store_close(&s);
    if (err) {
        json_decref(links);
        return err;
    }
    char fp[20] = "-";
    if (id.id_public[0])
        topo_fingerprint(id.id_public, fp);
    *out = json_pack("{s:s,s:s,s:s,s:o}", "node", id.id_name, "fingerprint", fp, "broker",
                     "not running", "links", links);
    memset(&id, 0, sizeof(id));
    return HS_OK;
}

void broker_cli_links_print(json_t *st)
{
    s_print_tree(st);
    if (strcmp(json_string_value(json_object_get(st, "broker")), "running") != 0)
        printf("(no broker runs for this node: link states are unknown; start it with 'hsync "
               "serve')\n");
}

static int s_show(broker_cli_t *c)
{
    json_t *st;
    int err = broker_cli_links_json(c, &st);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    int rc = BROKER_CLI_OK;
    if (c->cli_json)
        rc = broker_cli_print_json(c, st, false);
    else
        broker_cli_links_print(st);
    json_decref(st);
    return rc;
}

int broker_cli_hierarchy(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"allow-more-children", no_argument, NULL, 'm'},
                                       BROKER_CLI_COMMON_OPTIONS};
    bool allow_more = false;
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'm')
            allow_more = true;
    }
    if (optind >= argc)
        return broker_cli_usage(c, "which one: add-child, remove-child, leave or show?");
    const char *sub = argv[optind++];
    int rc = broker_cli_need_dir(c);
    if (rc)
        return rc;
    json_t *resp = NULL, *req = NULL;
    if (!strcmp(sub, "show")) {
        if (optind != argc)
            return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
        return s_show(c);
    } else if (!strcmp(sub, "add-child")) {
        if (optind + 1 != argc)
            return broker_cli_usage(c,
                                    "add-child takes one TOKEN (from 'hsync invite' on the child)");
        topo_token_t tok;
        if (topo_token_decode(argv[optind], &tok))
            return broker_cli_fail(c, "that is not an hsync invite token (copy it whole from "
                                      "'hsync invite' on the child)");
        req = json_pack("{s:s,s:s,s:b}", "cmd", "add-child", "token", argv[optind], "allow_more",
                        allow_more);
        rc = s_call(c, req, 15000, &resp);
        if (rc)
            return rc;
        if (c->cli_json)
            rc = broker_cli_print_json(c, resp, false);
        else
            printf("added child '%s' at %s (key %s)\n",
                   json_string_value(json_object_get(resp, "child")),
                   json_string_value(json_object_get(resp, "endpoint")),
                   json_string_value(json_object_get(resp, "fingerprint")));
    } else if (!strcmp(sub, "remove-child")) {
        if (optind + 1 != argc)
            return broker_cli_usage(c, "remove-child takes the child's NAME");
        req = json_pack("{s:s,s:s}", "cmd", "remove-child", "name", argv[optind]);
        rc = s_call(c, req, 10000, &resp);
        if (rc)
            return rc;
        if (c->cli_json)
            rc = broker_cli_print_json(c, resp, false);
        else
            printf("removed child '%s'; its key is no longer trusted\n", argv[optind]);
    } else if (!strcmp(sub, "leave")) {
        if (optind != argc)
            return broker_cli_usage(c, "unexpected argument '%s'", argv[optind]);
        req = json_pack("{s:s}", "cmd", "leave");
        rc = s_call(c, req, 10000, &resp);
        if (rc)
            return rc;
        if (c->cli_json)
            rc = broker_cli_print_json(c, resp, false);
        else
            printf("left parent '%s'; its key is no longer trusted\n",
                   json_string_value(json_object_get(resp, "removed")));
    } else {
        return broker_cli_usage(c, "unknown hierarchy command '%s'", sub);
    }
    json_decref(resp);
    return rc;
}
