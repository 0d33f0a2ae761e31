/*
 * cli_package.c - hsync package locate: where this node gets a package from.
 *
 * A package object (class package) carries in its body "name", "version"
 * and "codebase": the download URL on the node that published it (the
 * object's origin). Packages replicate down only; a node that received one
 * does not serve it from its own codebase: its package servers are
 * redirected to its parent, which serves it or redirects in turn, up to the
 * publishing node. The parent and the path from the root come from the
 * links table (topology/peers.h).
 */
#include "broker/cli.h"
#include "broker/json.h"
#include "topology/peers.h"

#include "store/hs_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_locate {
    store_guid_t guid;
    /* out */
    bool deleted;
    char cls[STORE_CLASS_MAX + 1];
    char origin[STORE_NAME_MAX + 1];
    json_t *body;
    bool has_parent;
    char parent[STORE_NAME_MAX + 1];
    json_t *path; /* origin ... this node, or NULL when the origin is not above */
} s_locate_t;

static bool s_is_package(const char *cls)
{
    return !strcmp(cls, "package") || !strncmp(cls, "package.", 8);
}

static void s_locate_reset(s_locate_t *l)
{
    json_decref(l->body);
    json_decref(l->path);
    l->body = l->path = NULL;
    l->deleted = l->has_parent = false;
    l->cls[0] = l->origin[0] = l->parent[0] = '\0';
}

static int s_locate_txn(store_txn_t *t, void *ctx)
{
    s_locate_t *l = ctx;
    s_locate_reset(l);
    store_obj_t o;
    int err = store_get(t, &l->guid, &o);
    if (err)
        return err;
    snprintf(l->cls, sizeof(l->cls), "%s", o.cls);
    snprintf(l->origin, sizeof(l->origin), "%s", o.origin);
    if (o.flags & STORE_OBJ_TOMBSTONE) {
        l->deleted = true;
        return HS_OK;
    }
    if (!s_is_package(o.cls))
        return HS_OK;
    if (o.body_len && (err = broker_json_from_msgpack(o.body, o.body_len, &l->body)))
        return err;
    const char *me = store_node_name(store_txn_store(t));
    if (!strcmp(l->origin, me))
        return HS_OK;
    topo_peer_t p;
    err = topo_peer_parent(t, &p);
    if (err == HS_ENOTFOUND)
        return HS_OK;
    if (err)
        return err;
    l->has_parent = true;
    snprintf(l->parent, sizeof(l->parent), "%s", p.pe_name);
    /* pe_rel: the path from the root down to the parent. */
    size_t from = p.pe_nrel;
    for (size_t i = 0; i < p.pe_nrel; i++)
        if (!strcmp(p.pe_rel[i].rel_name, l->origin))
            from = i;
    if (from < p.pe_nrel) {
        l->path = json_array();
        for (size_t i = from; l->path && i < p.pe_nrel; i++)
            json_array_append_new(l->path, json_string(p.pe_rel[i].rel_name));
        if (l->path && json_array_size(l->path) &&
            strcmp(p.pe_rel[p.pe_nrel - 1].rel_name, p.pe_name) != 0)
            json_array_append_new(l->path, json_string(p.pe_name));
        if (l->path)
            json_array_append_new(l->path, json_string(me));
    }
    bool lost = from < p.pe_nrel && !l->path;
    topo_peer_clear(&p);
    return lost ? HS_ENOMEM : HS_OK;
}

/* "hsync: package locate: <message>" on stderr; returns BROKER_CLI_FAIL. */
static int s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_fail(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("hsync: package locate: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return BROKER_CLI_FAIL;
}

static const char *s_field(const json_t *body, const char *k)
{
    return json_string_value(json_object_get(body, k));
}

static int s_locate(broker_cli_t *c, const char *gs)
{
    s_locate_t l = {0};
    if (store_guid_parse(gs, &l.guid))
        return s_fail("'%s': %s", gs, broker_cli_why(HS_EGUID));
    char id[STORE_GUID_STRLEN + 1];
    store_guid_format(&l.guid, id);
    store_t *s = NULL;
    int rc = broker_cli_open(c, &s);
    if (rc)
        return rc;
    char me[STORE_NAME_MAX + 1];
    snprintf(me, sizeof(me), "%s", store_node_name(s));
    int err = store_read(s, s_locate_txn, &l);
    store_close(&s);
    if (err == HS_ENOTFOUND) {
        rc = s_fail("no object %s on this node (it may not have replicated here yet: see "
                    "'hsync ls -d %s --class package')",
                    id, c->cli_dir);
    } else if (err == HS_EMALF) {
        rc = s_fail("package %s is stored damaged (its body does not decode)", id);
    } else if (err) {
        rc = s_fail("%s", broker_cli_why(err));
    } else if (!s_is_package(l.cls)) {
        rc = s_fail("%s is %sof class %s, not a package (see 'hsync ls -d %s --class package')", id,
                    l.deleted ? "a deleted object " : "", l.cls, c->cli_dir);
    } else if (l.deleted) {
        rc = s_fail("package %s was deleted (by its publisher %s or on this node)", id, l.origin);
    } else {
        const char *name = s_field(l.body, "name"), *version = s_field(l.body, "version");
        const char *codebase = s_field(l.body, "codebase");
        bool here = !strcmp(l.origin, me);
        if (c->cli_json) {
            json_t *j = json_pack("{s:s,s:s?,s:s?,s:s?,s:s,s:s,s:b,s:s?,s:O?}", "guid", id, "name",
                                  name, "version", version, "codebase", codebase, "origin",
                                  l.origin, "node", me, "published_here", here, "redirect_to",
                                  l.has_parent ? l.parent : NULL, "path", l.path);
            rc = j ? broker_cli_print_json(c, j, false) : s_fail("out of memory");
            json_decref(j);
        } else {
            printf("package %s (%s %s): ", id, name ? name : "?", version ? version : "?");
            if (!codebase)
                codebase = "(no codebase in its body)";
            if (here) {
                printf("published here (%s) at %s\n", me, codebase);
            } else {
                printf("from %s at %s; ", l.origin, codebase);
                if (l.has_parent)
                    printf("this node (%s) redirects to its parent %s", me, l.parent);
                else
                    printf("this node (%s) has no parent now, so its package servers cannot "
                           "be redirected (link it under a parent again)",
                           me);
                if (json_array_size(l.path) > 2) {
                    size_t i;
                    json_t *v;
                    printf("; path");
                    json_array_foreach(l.path, i, v)
                        printf("%s%s", i ? " > " : " ", json_string_value(v));
                }
                printf("\n");
            }
        }
    }
    s_locate_reset(&l);
    return rc;
}

int broker_cli_package(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if (optind >= argc)
        return broker_cli_usage(c, "which one? (only 'package locate GUID' exists)");
    const char *sub = argv[optind++];
    if (strcmp(sub, "locate") != 0)
        return broker_cli_usage(c, "unknown package command '%s' (only 'locate' exists)", sub);
    if (optind >= argc)
        return broker_cli_usage(c, "'package locate' needs the package's GUID");
    if (optind + 1 < argc)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind + 1]);
    int rc = broker_cli_need_dir(c);
    return rc ? rc : s_locate(c, argv[optind]);
}
