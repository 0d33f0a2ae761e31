/*
 * cli_trace.c - hsync trace: one object here, and where it was sent and
 * acknowledged.
 *
 * Works from the store alone (no broker needed). For every adjacent peer
 * (parent, children) and every rule carrying the object's class, the answer
 * comes from the sender's watermark (replication/marks.h): every change with
 * seq <= the watermark the peer acknowledged for that rule, so an object in
 * the rule's scope whose seq is at or below it was sent and acknowledged at
 * or before the last successful run (from the history); above it, it is
 * pending until the next run. The scope is decided by the rule handlers
 * (rules_send_scope) with this node's branch as recorded in the links.
 */
#include "broker/cli.h"
#include "replication/marks.h"
#include "rules/rules.h"
#include "topology/identity.h"
#include "topology/peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PEERS_MAX 64
#define S_RULES_MAX 64
#define S_BRANCH_MAX (1 + TOPO_REL_MAX * 2)

typedef struct s_peer {
    char name[STORE_NAME_MAX + 1];
    int role;
} s_peer_t;

typedef struct s_trace {
    s_peer_t peer[S_PEERS_MAX];
    size_t npeer;
    rules_rule_t *rule; /* S_RULES_MAX, heap: rules are large */
    size_t nrule;
    char (*branch)[STORE_NAME_MAX + 1]; /* this node, its children and their subtrees */
    const char *names[S_BRANCH_MAX];
    size_t nbranch;
    uint64_t last_ok[S_PEERS_MAX][S_RULES_MAX]; /* last successful send, from history */
    json_t *rows;
    int err;
} s_trace_t;

static void s_branch_add(s_trace_t *tr, const char *name)
{
    for (size_t i = 0; i < tr->nbranch; i++)
        if (!strcmp(tr->branch[i], name))
            return;
    if (tr->nbranch < S_BRANCH_MAX)
        snprintf(tr->branch[tr->nbranch++], STORE_NAME_MAX + 1, "%s", name);
}

static int s_peer_one(void *ctx, const topo_peer_t *p)
{
    s_trace_t *tr = ctx;
    if (p->pe_role == TOPO_ROLE_SOURCE)
        return 0; /* a standalone source sends to us, never the other way */
    if (tr->npeer < S_PEERS_MAX) {
        snprintf(tr->peer[tr->npeer].name, sizeof(tr->peer[0].name), "%s", p->pe_name);
        tr->peer[tr->npeer++].role = p->pe_role;
    }
    if (p->pe_role == TOPO_ROLE_CHILD) {
        s_branch_add(tr, p->pe_name);
        for (size_t i = 0; i < p->pe_nrel; i++)
            s_branch_add(tr, p->pe_rel[i].rel_name);
    }
    return 0;
}

static int s_rule_one(void *ctx, const rules_rule_t *r)
{
    s_trace_t *tr = ctx;
    if (tr->nrule < S_RULES_MAX)
        tr->rule[tr->nrule++] = *r;
    return 0;
}

static int s_hist_one(void *ctx, const repl_hist_t *h)
{
    s_trace_t *tr = ctx;
    if (!h->h_ok || strcmp(h->h_role, "sent") != 0)
        return 0;
    for (size_t p = 0; p < tr->npeer; p++) {
        if (strcmp(tr->peer[p].name, h->h_peer) != 0)
            continue;
        for (size_t r = 0; r < tr->nrule; r++)
            if (!strcmp(tr->rule[r].ru_name, h->h_rule) && tr->last_ok[p][r] < h->h_when_ms)
                tr->last_ok[p][r] = h->h_when_ms; /* newest first: the first one wins */
    }
    return 0;
}

static json_t *s_row(store_txn_t *t, s_trace_t *tr, size_t p, size_t r, const store_obj_t *o)
{
    const rules_rule_t *ru = &tr->rule[r];
    const s_peer_t *pe = &tr->peer[p];
    unsigned dir = pe->role == TOPO_ROLE_CHILD    ? RULES_DOWN
                   : pe->role == TOPO_ROLE_PARENT ? RULES_UP
                                                  : RULES_SIDE;
    const char *dname = dir == RULES_DOWN ? "down" : dir == RULES_UP ? "up" : "standalone";
    const rules_family_t *f = rules_family_of(o->cls);
    rules_names_t mine = {tr->nbranch, tr->names};
    if (dir == RULES_SIDE) /* the destination names what it skips per run */
        mine.rn_count = 0;
    repl_mark_t m;
    int err = repl_mark_get(t, pe->name, ru->ru_name, &m);
    if (err) {
        tr->err = err;
        return NULL;
    }
    const char *state, *why;
    char buf[240];
    repl_refusal_rec_t rf;
    err = repl_refusal_get(t, pe->name, &o->guid, &rf);
    bool refused = err == HS_OK && rf.rr_seq == o->seq && !strcmp(rf.rr_rule, ru->ru_name);
    if (err && err != HS_ENOTFOUND && err != HS_EMALF) {
        tr->err = err;
        return NULL;
    }
    if (!(ru->ru_dirs & dir) || !f || !(f->fam_dirs & dir) || !rules_applies_to(ru, pe->name) ||
        !rules_target_member(t, ru, o)) {
        state = "not carried";
        snprintf(buf, sizeof(buf), "rule %s does not carry %s %s", ru->ru_name, o->cls, dname);
        why = buf;
    } else if (!rules_send_scope(ru, dir, o, &mine)) {
        state = "out of scope";
        why = dir == RULES_UP ? "not owned in this node's branch: it is not this node's to send up"
                              : "it came from below: a child's data never goes to its siblings";
        if (dir == RULES_DOWN && pe->role == TOPO_ROLE_CHILD && o->owner &&
            !strcmp(o->owner, pe->name))
            why = "it is that child's own object";
    } else if (refused) {
        /* sent, and the peer would not take it: never "acknowledged" */
        state = "refused";
        snprintf(buf, sizeof(buf), "%s refused it: %s", pe->name, rf.rr_why);
        why = buf;
    } else if (m.mk_diff_seq > 0 && o->seq <= m.mk_diff_seq) {
        state = "acknowledged";
        snprintf(buf, sizeof(buf), "watermark %llu >= seq %llu", (unsigned long long)m.mk_diff_seq,
                 (unsigned long long)o->seq);
        why = buf;
    } else {
        state = "pending";
        if (!ru->ru_enabled)
            snprintf(buf, sizeof(buf), "rule %s is disabled ('hsync rule enable %s')", ru->ru_name,
                     ru->ru_name);
        else if (!m.mk_last_run_ms)
            snprintf(buf, sizeof(buf),
                     "never ran with this peer: the first run (complete) "
                     "carries it");
        else
            snprintf(buf, sizeof(buf), "watermark %llu < seq %llu: the next run carries it",
                     (unsigned long long)m.mk_diff_seq, (unsigned long long)o->seq);
        why = buf;
    }
    uint64_t last = tr->last_ok[p][r];
    if (!last && m.mk_last_ok)
        last = m.mk_last_run_ms;
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s}", "peer", pe->name, "role",
                          topo_role_name(pe->role), "rule", ru->ru_name, "direction", dname,
                          "state", state, "watermark", (json_int_t)m.mk_diff_seq, "why", why);
    if (j)
        json_object_set_new(j, "last_ok_run", last ? json_integer((json_int_t)last) : json_null());
    return j;
}

int broker_cli_trace(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if (optind + 1 != argc)
        return broker_cli_usage(c, "takes one GUID");
    store_guid_t g;
    if (store_guid_parse(argv[optind], &g))
        return broker_cli_fail(c, "'%s' is not a guid (expected 8-4-4-4-12 hex digits)",
                               argv[optind]);
    int rc = broker_cli_need_dir(c);
    store_t *s = NULL;
    if (rc || (rc = broker_cli_open(c, &s)))
        return rc;
    s_trace_t *tr = calloc(1, sizeof(*tr));
    if (tr) {
        tr->rule = calloc(S_RULES_MAX, sizeof(*tr->rule));
        tr->branch = calloc(S_BRANCH_MAX, sizeof(*tr->branch));
        tr->rows = json_array();
    }
    if (!tr || !tr->rule || !tr->branch || !tr->rows) {
        if (tr) {
            free(tr->rule);
            free(tr->branch);
            json_decref(tr->rows);
        }
        free(tr);
        store_close(&s);
        return broker_cli_fail(c, "out of memory");
    }
    s_branch_add(tr, store_node_name(s)); /* mine[0] is this node */
    json_t *obj = NULL;
    store_txn_t *t;
    int err = store_txn_begin(s, false, &t);
    if (!err) {
        store_obj_t ob;
        err = store_get(t, &g, &ob);
        if (!err)
            err = topo_peer_each(t, 0, s_peer_one, tr);
        if (!err)
            err = rules_each(t, s_rule_one, tr);
        if (!err)
            err = repl_hist_each(t, s_hist_one, tr);
        for (size_t i = 0; i < tr->nbranch; i++)
            tr->names[i] = tr->branch[i];
        for (size_t p = 0; !err && p < tr->npeer; p++)
            for (size_t r = 0; !err && r < tr->nrule; r++) {
                bool side_rule = tr->rule[r].ru_dirs == RULES_SIDE;
                bool side_peer = tr->peer[p].role == TOPO_ROLE_DEST;
                if (!rules_carries(&tr->rule[r], ob.cls) || side_rule != side_peer ||
                    !rules_applies_to(&tr->rule[r], tr->peer[p].name))
                    continue; /* standalone rules to their destinations, the rest to the tree */
                json_t *row = s_row(t, tr, p, r, &ob);
                err = row ? HS_OK : tr->err ? tr->err : HS_ENOMEM;
                json_array_append_new(tr->rows, row);
            }
        if (!err) {
            char hash[2 * STORE_HASH_LEN + 1];
            store_hex(ob.hash, STORE_HASH_LEN, hash);
            obj = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:b}", "guid", argv[optind], "class",
                            ob.cls, "hash", hash, "seq", (json_int_t)ob.seq, "mtime",
                            (json_int_t)ob.mtime, "owner", ob.owner ? ob.owner : "", "origin",
                            ob.origin ? ob.origin : "", "deleted",
                            (ob.flags & STORE_OBJ_TOMBSTONE) != 0);
            err = obj ? HS_OK : HS_ENOMEM;
        }
        store_txn_abort(&t);
    }
    store_close(&s);
    if (err == HS_ENOTFOUND)
        rc = broker_cli_fail(c, "no object %s on this node (see 'hsync ls')", argv[optind]);
    else if (err)
        rc = broker_cli_fail(c, "%s", broker_cli_why(err));
    else if (c->cli_json) {
        json_object_set(obj, "peers", tr->rows);
        rc = broker_cli_print_json(c, obj, false);
    } else {
        char when[32];
        broker_cli_time_format((uint64_t)json_integer_value(json_object_get(obj, "mtime")), when);
        const char *keys[] = {"guid", "class", "hash", "owner", "origin"};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            printf("%-8s %s\n", keys[i], json_string_value(json_object_get(obj, keys[i])));
        printf("%-8s %lld\n", "seq", (long long)json_integer_value(json_object_get(obj, "seq")));
        printf("%-8s %s\n", "changed", when);
        printf("%-8s %s\n", "deleted",
               json_is_true(json_object_get(obj, "deleted")) ? "yes" : "no");
        printf("\n");
        if (json_array_size(tr->rows) == 0) {
            printf("no parent or child carries it (see 'hsync hierarchy show' and 'hsync rule "
                   "ls')\n");
        } else {
            printf("%-14s %-7s %-12s %-4s %-13s %-24s %s\n", "PEER", "ROLE", "RULE", "DIR", "STATE",
                   "LAST OK RUN", "WHY");
            size_t i;
            json_t *r;
            json_array_foreach(tr->rows, i, r)
            {
                char last[32] = "never";
                json_t *lo_run = json_object_get(r, "last_ok_run");
                if (json_is_integer(lo_run))
                    broker_cli_time_format((uint64_t)json_integer_value(lo_run), last);
                printf("%-14s %-7s %-12s %-4s %-13s %-24s %s\n",
                       json_string_value(json_object_get(r, "peer")),
                       json_string_value(json_object_get(r, "role")),
                       json_string_value(json_object_get(r, "rule")),
                       json_string_value(json_object_get(r, "direction")),
                       json_string_value(json_object_get(r, "state")), last,
                       json_string_value(json_object_get(r, "why")));
            }
        }
    }
    json_decref(obj);
    json_decref(tr->rows);
    free(tr->rule);
    free(tr->branch);
    free(tr);
    return rc;
}
