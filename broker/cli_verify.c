/*
 * cli_verify.c - hsync verify: is every node below this one in sync with
 * its parent, rule by rule? (replication/verify.c does the asking.)
 */
#include "broker/cli.h"
#include "broker/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_REPAIR_ROUNDS 3

static const char *s_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* "resources up: owner c1 differs (13 objects at p, 12 at c1)" */
static void s_scope_text(const json_t *node, const json_t *v, char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n, "%s ", s_str(v, "direction"));
    if (json_is_true(json_object_get(v, "in_sync"))) {
        snprintf(out + len, n - len, "in sync");
        return;
    }
    const json_t *owners = json_object_get(v, "owners");
    len += (size_t)snprintf(out + len, n - len, "DIFFERS");
    if (json_array_size(owners)) {
        len += (size_t)snprintf(out + len, n - len, ": owner%s",
                                json_array_size(owners) == 1 ? "" : "s");
        size_t i;
        json_t *o;
        json_array_foreach(owners, i, o)
        {
            if (len >= n)
                break;
            len +=
                (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : " ", json_string_value(o));
        }
    }
    if (len < n)
        len += (size_t)snprintf(out + len, n - len, " (%lld objects at %s, %lld at %s)",
                                (long long)json_integer_value(json_object_get(v, "parent_count")),
                                s_str(node, "parent"),
                                (long long)json_integer_value(json_object_get(v, "count")),
                                s_str(node, "node"));
    const char *repair = s_str(v, "repair");
    if (repair[0] && len < n)
        snprintf(out + len, n - len, "; %s", repair);
}

static int s_name_cmp(const void *a, const void *b)
{
    return strcmp(s_str(*(json_t *const *)a, "node"), s_str(*(json_t *const *)b, "node"));
}

/* Append to out, depth first, the nodes whose parent is `parent` (by name),
 * each followed by its subtree. Bounded by the number of nodes. */
static void s_tree(json_t *const *by_name, size_t n, const char *parent, bool *used, json_t *out,
                   int depth)
{
    if (depth > 64)
        return;
    for (size_t i = 0; i < n; i++) {
        if (used[i] || strcmp(s_str(by_name[i], "parent"), parent) != 0)
            continue;
        used[i] = true;
        json_array_append(out, by_name[i]);
        s_tree(by_name, n, s_str(by_name[i], "node"), used, out, depth + 1);
    }
}

/* The nodes in tree order (children by name under their parent), then any
 * whose parent is not known (not reached, below a node not reached). */
static json_t *s_ordered(const json_t *resp)
{
    const json_t *nodes = json_object_get(resp, "nodes");
    size_t n = json_array_size(nodes);
    json_t *out = json_array();
    json_t **v = n ? calloc(n, sizeof(*v)) : NULL;
    bool *used = n ? calloc(n, sizeof(*used)) : NULL;
    if (n && (!v || !used)) {
        free(v);
        free(used);
        json_array_extend(out, (json_t *)nodes);
        return out;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(nodes, i);
    if (n)
        qsort(v, n, sizeof(*v), s_name_cmp);
    s_tree(v, n, s_str(resp, "from"), used, out, 0);
    for (size_t i = 0; i < n; i++)
        if (!used[i])
            json_array_append(out, v[i]);
    free(v);
    free(used);
    return out;
}

static void s_print(const json_t *resp)
{
    json_t *nodes = s_ordered(resp);
    size_t i, ins = 0, dif = 0, unr = 0;
    json_t *nd;
    json_array_foreach(nodes, i, nd)
    {
        const char *verdict = s_str(nd, "verdict");
        ins += !strcmp(verdict, "in sync");
        dif += !strcmp(verdict, "differs");
        unr += !strcmp(verdict, "not reached");
    }
    printf("verify from %s%s: %zu node%s below, %zu in sync, %zu differ%s, %zu not reached\n",
           s_str(resp, "from"), json_is_true(json_object_get(resp, "repair")) ? " (repair)" : "",
           json_array_size(nodes), json_array_size(nodes) == 1 ? "" : "s", ins, dif,
           dif == 1 ? "s" : "", unr);
    if (!json_array_size(nodes)) {
        json_decref(nodes);
        return;
    }
    printf("%-14s %-14s %-12s %s\n", "NODE", "PARENT", "RULE", "VERDICT");
    json_array_foreach(nodes, i, nd)
    {
        const char *parent = s_str(nd, "parent");
        if (!json_is_true(json_object_get(nd, "reached"))) {
            printf("%-14s %-14s %-12s NOT REACHED: %s\n", s_str(nd, "node"),
                   parent[0] ? parent : "-", "-", s_str(nd, "why"));
            continue;
        }
        if (s_str(nd, "why")[0])
            printf("%-14s %-14s %-12s %s\n", s_str(nd, "node"), parent, "-", s_str(nd, "why"));
        /* one line per rule, its directions side by side */
        const json_t *rules = json_object_get(nd, "rules");
        size_t k;
        json_t *v;
        json_array_foreach(rules, k, v)
        {
            const char *rule = s_str(v, "rule");
            bool first = true;
            for (size_t e = 0; e < k && first; e++)
                first = strcmp(s_str(json_array_get(rules, e), "rule"), rule) != 0;
            if (!first)
                continue;
            char line[1024] = "";
            size_t len = 0;
            bool all = true;
            for (size_t e = k; e < json_array_size(rules); e++) {
                const json_t *x = json_array_get(rules, e);
                if (strcmp(s_str(x, "rule"), rule) != 0)
                    continue;
                all = all && json_is_true(json_object_get(x, "in_sync"));
                char part[512];
                s_scope_text(nd, x, part, sizeof(part));
                if (len < sizeof(line))
                    len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", len ? "; " : "",
                                            part);
            }
            printf("%-14s %-14s %-12s %s\n", s_str(nd, "node"), parent, rule,
                   all ? "in sync" : line);
        }
    }
    json_decref(nodes);
}

/* One verification; *resp owned by the caller. BROKER_CLI_OK or printed failure. */
static int s_call(broker_cli_t *c, bool repair, long timeout_s, json_t **resp)
{
    json_t *req = json_pack("{s:s,s:b,s:I}", "cmd", "verify", "repair", repair, "timeout_ms",
                            (json_int_t)timeout_s * 1000);
    int err = broker_ctl_call(c->cli_dir, req, (int)(timeout_s * 1000 + 5000), resp, NULL, NULL);
    json_decref(req);
    if (err == HS_ENOBROKER)
        return broker_cli_fail(c, "no broker is running for %s (start it with 'hsync serve -d %s')",
                               c->cli_dir, c->cli_dir);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    if (!json_is_true(json_object_get(*resp, "ok"))) {
        int rc = broker_cli_fail(c, "%s", s_str(*resp, "error"));
        json_decref(*resp);
        *resp = NULL;
        return rc;
    }
    return BROKER_CLI_OK;
}

int broker_cli_verify(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"repair", no_argument, NULL, 'r'},
                                       {"timeout", required_argument, NULL, 't'},
                                       BROKER_CLI_COMMON_OPTIONS};
    bool repair = false;
    long timeout_s = 0;
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'r') {
            repair = true;
        } else if (o == 't') {
            char *end;
            timeout_s = strtol(optarg, &end, 10);
            if (*end || timeout_s < 1 || timeout_s > 3600)
                return broker_cli_usage(c, "--timeout takes whole seconds from 1 to 3600");
        }
    }
    if (optind != argc)
        return broker_cli_usage(c, "takes no arguments");
    int rc = broker_cli_need_dir(c);
    if (rc)
        return rc;
    if (!timeout_s)
        timeout_s = repair ? 60 : 10;
    json_t *resp = NULL;
    if ((rc = s_call(c, repair, timeout_s, &resp)))
        return rc;
    bool all = json_is_true(json_object_get(resp, "all_in_sync"));
    size_t unreached = json_array_size(json_object_get(resp, "not_reached"));
    size_t differ = json_array_size(json_object_get(resp, "differ"));
    if (repair && !all) {
        /* The repairs have ended (or the deadline passed): look again. The
         * links are repaired at once, so a repair above a node can take what
         * a repair below it has not fixed yet: up to S_REPAIR_ROUNDS rounds,
         * each looking again and repairing what still differs, then a last
         * look without repair. */
        json_t *after = NULL;
        int rounds = 1;
        for (;;) {
            bool again = rounds < S_REPAIR_ROUNDS;
            json_t *next = NULL;
            if ((rc = s_call(c, again, timeout_s, &next))) {
                json_decref(after);
                json_decref(resp);
                return rc;
            }
            json_decref(after);
            after = next;
            all = json_is_true(json_object_get(after, "all_in_sync"));
            if (all || !again)
                break;
            rounds++;
        }
        unreached = json_array_size(json_object_get(after, "not_reached"));
        differ = json_array_size(json_object_get(after, "differ"));
        if (c->cli_json) {
            json_object_set(resp, "after_repair", after);
            json_object_set_new(resp, "repair_rounds", json_integer(rounds));
            json_object_set(resp, "all_in_sync", json_boolean(all));
        }
        if (!c->cli_json) {
            s_print(resp);
            printf("\nafter repair (%d round%s):\n", rounds, rounds == 1 ? "" : "s");
            s_print(after);
        }
        json_decref(after);
    } else if (!c->cli_json) {
        s_print(resp);
    }
    if (c->cli_json)
        rc = broker_cli_print_json(c, resp, false);
    json_decref(resp);
    if (rc)
        return rc;
    if (!all) {
        fflush(stdout);
        if (unreached)
            fprintf(stderr,
                    "hsync: verify: %zu node%s below not reached (see above): start %s, or see "
                    "'hsync status' on the node above %s\n",
                    unreached, unreached == 1 ? "" : "s", unreached == 1 ? "it" : "them",
                    unreached == 1 ? "it" : "each");
        if (differ)
            fprintf(stderr,
                    repair ? "hsync: verify: %zu scope%s differ%s (see above); the repair did not "
                             "bring %s in sync: a node that refuses objects (a guid held under "
                             "two classes) cannot be reconciled; 'hsync status' and 'hsync trace "
                             "GUID' name them: put one of them under a new guid and rm the old one "
                             "on the node that made it\n"
                           : "hsync: verify: %zu scope%s differ%s (see above): 'hsync verify "
                             "--repair' reconciles %s, unless a node refuses objects (a guid held "
                             "under two classes: see 'hsync status'), which no repair can do\n",
                    differ, differ == 1 ? "" : "s", differ == 1 ? "s" : "",
                    differ == 1 ? "it" : "them");
        if (!unreached && !differ)
            fprintf(stderr, "hsync: verify: a node could not compare its side (see above)\n");
        return BROKER_CLI_FAIL;
    }
    return BROKER_CLI_OK;
}
