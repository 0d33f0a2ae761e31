/*
 * cli_data.c - local data commands: init, put, get, ls, rm, digest, status.
 *
 * They open the node's store directly (LMDB lets them run beside a broker and
 * beside each other) and need no broker. Everything the user typed is checked
 * before the store is opened for writing, so bad input changes nothing.
 */
#include "broker/cli.h"
#include "broker/ctl.h"
#include "replication/local.h"
#include "rules/hep.h"
#include "rules/rules.h"
#include "store/epoch.h"
#include "topology/identity.h"

#include "broker/json.h"
#include "store/hs_error.h"

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_JSON_TEXT_MAX ((size_t)64 << 20) /* a body's JSON text; msgpack limit is 1 MiB */
#define S_DEFAULT_LISTEN "tcp://127.0.0.1:7600"

/* ---- shared helpers ------------------------------------------------------ */

int broker_cli_print_json(broker_cli_t *c, const json_t *j, bool pretty)
{
    size_t flags = pretty ? JSON_INDENT(2) : JSON_COMPACT;
    if (json_dumpf(j, stdout, flags | JSON_ENCODE_ANY) != 0 || fputc('\n', stdout) == EOF)
        return broker_cli_fail(c, "cannot write the output: %s", strerror(errno));
    return BROKER_CLI_OK;
}

/* json_object_set_new that remembers a failure in *ok. */
static void s_set(json_t *o, const char *k, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(o, k, v) != 0)
        *ok = false;
}

static json_t *s_guid_json(const store_guid_t *g)
{
    char s[STORE_GUID_STRLEN + 1];
    store_guid_format(g, s);
    return json_string(s);
}

int broker_cli_obj_json(const store_obj_t *o, enum broker_cli_form form, json_t **out)
{
    char hash[2 * STORE_HASH_LEN + 1], mtime[32], rtime[32];
    json_t *j = json_object(), *body = NULL, *keys = NULL;
    bool ok = j != NULL, dead = o->flags & STORE_OBJ_TOMBSTONE;
    int rc = HS_OK;
    *out = NULL;
    if (!ok)
        return HS_ENOMEM;
    store_hex(o->hash, STORE_HASH_LEN, hash);
    broker_cli_time_format(o->mtime, mtime);
    broker_cli_time_format(o->rtime, rtime);
    if (form != BROKER_CLI_BRIEF) {
        if (o->body_len && (rc = broker_json_from_msgpack(o->body, o->body_len, &body)))
            goto fail;
        if (o->keys_len && (rc = broker_json_from_msgpack(o->keys, o->keys_len, &keys)))
            goto fail;
    }
    bool has_res = !store_guid_is_zero(&o->resource);
    switch (form) {
    case BROKER_CLI_FULL:
        s_set(j, "guid", s_guid_json(&o->guid), &ok);
        s_set(j, "class", json_string(o->cls), &ok);
        s_set(j, "owner", json_string(o->owner), &ok);
        s_set(j, "origin", json_string(o->origin), &ok);
        s_set(j, "seq", json_integer((json_int_t)o->seq), &ok);
        s_set(j, "mtime", json_string(mtime), &ok);
        s_set(j, "registered", o->rtime ? json_string(rtime) : json_null(), &ok);
        s_set(j, "hash", json_string(hash), &ok);
        s_set(j, "imported", json_boolean(o->flags & STORE_OBJ_IMPORTED), &ok);
        s_set(j, "deleted", json_boolean(dead), &ok);
        s_set(j, "keys", keys ? keys : json_null(), &ok);
        s_set(j, "resource", has_res ? s_guid_json(&o->resource) : json_null(), &ok);
        s_set(j, "body", body ? body : json_null(), &ok);
        break;
    case BROKER_CLI_LINE:
        s_set(j, "class", json_string(o->cls), &ok);
        s_set(j, "guid", s_guid_json(&o->guid), &ok);
        if (keys)
            s_set(j, "keys", keys, &ok);
        if (has_res)
            s_set(j, "resource", s_guid_json(&o->resource), &ok);
        s_set(j, "imported", json_boolean(o->flags & STORE_OBJ_IMPORTED), &ok);
        s_set(j, "owner", json_string(o->owner), &ok);
        s_set(j, "origin", json_string(o->origin), &ok);
        s_set(j, "mtime", json_string(mtime), &ok);
        s_set(j, "body", body ? body : json_object(), &ok);
        break;
    case BROKER_CLI_BRIEF:
        s_set(j, "guid", s_guid_json(&o->guid), &ok);
        s_set(j, "class", json_string(o->cls), &ok);
        s_set(j, "owner", json_string(o->owner), &ok);
        s_set(j, "hash", json_string(hash), &ok);
        s_set(j, "mtime", json_string(mtime), &ok);
        s_set(j, "deleted", json_boolean(dead), &ok);
        break;
    }
    /* json_object_set_new consumed body and keys whether or not it failed. */
    body = keys = NULL;
    if (!ok) {
        rc = HS_ENOMEM;
        goto fail;
    }
    *out = j;
    return HS_OK;
fail:
    json_decref(body);
    json_decref(keys);
    json_decref(j);
    return rc;
}

/* Node name: [A-Za-z0-9_.-]{1,64}. */
/* Split "HOST:PORT" (HOST may be [v6]) at the last colon. */
static bool s_hostport(const char *s, char *host, size_t hostlen, unsigned *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= hostlen)
        return false;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        return false;
    for (const char *q = s; q < colon; q++)
        if (*q == ' ' || *q == '/' || (unsigned char)*q < 0x21)
            return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (unsigned)p;
    return true;
}

/* mkdir -p path, mode 0700 for what it creates. */
static int s_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Exactly `want` positional arguments after the options. */
static int s_args(broker_cli_t *c, int argc, char **argv, int want, const char *what)
{
    int have = argc - optind;
    if (have < want)
        return broker_cli_usage(c, "missing %s", what);
    if (have > want)
        return broker_cli_usage(c, "unexpected argument '%s'", argv[optind + want]);
    return BROKER_CLI_OK;
}

/* ---- init ------------------------------------------------------------------ */

typedef struct s_init {
    const char *name, *listen, *http;
    char existing[STORE_NAME_MAX + 1];
} s_init_t;

static int s_init_fn(store_txn_t *t, void *ctx)
{
    s_init_t *in = ctx;
    int err = store_meta_get(t, "name", in->existing, sizeof(in->existing));
    if (err == HS_OK)
        return HS_EEXIST;
    if (err != HS_ENOTFOUND && err != HS_ETOOBIG)
        return err;
    if (err == HS_ETOOBIG)
        return HS_EEXIST;
    if ((err = store_meta_put(t, "name", in->name)) ||
        (err = store_meta_put(t, "listen", in->listen)) ||
        (err = store_meta_put(t, "http", in->http)))
        return err;
    /* the node's key pair and token key, and the default replication rules */
    if ((err = topo_identity_ensure(t)))
        return err;
    return rules_ensure_defaults(t);
}

int broker_cli_init(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"name", required_argument, NULL, 'n'},
                                       {"listen", required_argument, NULL, 'l'},
                                       {"http", required_argument, NULL, 'H'},
                                       BROKER_CLI_COMMON_OPTIONS};
    s_init_t in = {.listen = S_DEFAULT_LISTEN};
    char host[256], http[300];
    unsigned port, hport;
    int o;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'n')
            in.name = optarg;
        else if (o == 'l')
            in.listen = optarg;
        else if (o == 'H')
            in.http = optarg;
    }
    int rc = s_args(c, argc, argv, 0, "");
    if (rc || (rc = broker_cli_need_dir(c)))
        return rc;
    if (!in.name)
        return broker_cli_usage(c, "missing --name NAME");
    if (!topo_name_ok(in.name))
        return broker_cli_fail(c,
                               "invalid node name '%s' (use 1 to 64 letters, digits, '_', '.' "
                               "or '-')",
                               in.name);
    if (strncmp(in.listen, "tcp://", 6) != 0 ||
        !s_hostport(in.listen + 6, host, sizeof(host), &port))
        return broker_cli_fail(c, "invalid --listen '%s' (expected tcp://HOST:PORT, port 1-65535)",
                               in.listen);
    if (in.http) {
        if (!s_hostport(in.http, host, sizeof(host), &hport))
            return broker_cli_fail(c, "invalid --http '%s' (expected HOST:PORT, port 1-65535)",
                                   in.http);
    } else {
        if (port == 65535)
            return broker_cli_fail(c, "listen port 65535 leaves no port for http (give --http "
                                      "HOST:PORT)");
        snprintf(http, sizeof(http), "%s:%u", host, port + 1);
        in.http = http;
    }

    store_t *s = NULL;
    if (store_open(c->cli_dir, 0, &s) == HS_OK) {
        rc = broker_cli_fail(c, "%s already holds an hsync node%s%s (choose another folder)",
                             c->cli_dir, *store_node_name(s) ? " named " : "", store_node_name(s));
        store_close(&s);
        return rc;
    }
    int err = s_mkdirs(c->cli_dir);
    if (err)
        return broker_cli_fail(c, "cannot create %s: %s", c->cli_dir, strerror(-err));
    /* a folder that existed before keeps no looser mode (the umask or a
     * mkdir 0755 by hand): the node folder is its owner's alone */
    struct stat dst;
    if (stat(c->cli_dir, &dst) != 0)
        return broker_cli_fail(c, "cannot check %s: %s", c->cli_dir, strerror(errno));
    if (dst.st_uid != geteuid())
        return broker_cli_fail(c,
                               "%s belongs to uid %lu, not to you (uid %lu): a node folder must be "
                               "its user's own (choose another folder, or chown it)",
                               c->cli_dir, (unsigned long)dst.st_uid, (unsigned long)geteuid());
    if (chmod(c->cli_dir, 0700) != 0)
        return broker_cli_fail(c, "cannot make %s mode 0700: %s", c->cli_dir, strerror(errno));
    err = store_open(c->cli_dir, STORE_OPEN_CREATE, &s);
    if (err)
        return broker_cli_fail(c, "cannot create the store in %s: %s", c->cli_dir,
                               broker_cli_why(err));
    err = store_write(s, s_init_fn, &in);
    if (!err) { /* the store's first epoch, and its marker beside the store */
        char epoch[STORE_EPOCH_LEN + 1];
        const char *why;
        err = store_epoch_check(s, epoch, &why);
    }
    store_close(&s);
    if (err == HS_EEXIST)
        return broker_cli_fail(c,
                               "%s already holds an hsync node named %s (choose another "
                               "folder)",
                               c->cli_dir, in.existing);
    if (err)
        return broker_cli_fail(c, "cannot write the node's identity: %s", broker_cli_why(err));
    if (c->cli_json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "name", in.name, "dir", c->cli_dir, "listen",
                              in.listen, "http", in.http);
        rc = j ? broker_cli_print_json(c, j, false) : broker_cli_fail(c, "out of memory");
        json_decref(j);
        return rc;
    }
    printf("initialised node %s in %s (listen %s, http %s)\n", in.name, c->cli_dir, in.listen,
           in.http);
    return BROKER_CLI_OK;
}

/* ---- put ------------------------------------------------------------------- */

typedef struct s_put {
    store_obj_t tmpl, o;
    bool changed;
    repl_local_result_t res;
} s_put_t;

static int s_put_fn(store_txn_t *t, void *ctx)
{
    s_put_t *p = ctx;
    p->o = p->tmpl; /* store_put fills fields; a retry starts from the template */
    int err = repl_local_put(t, &p->o, &p->res); /* merges duplicates, raises events */
    p->changed = p->res.lr_changed;
    return err;
}

/* Add "NAME=VALUE" to the keys object. */
static int s_add_key(broker_cli_t *c, json_t *keys, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return broker_cli_usage(c, "--key needs NAME=VALUE, got '%s'", arg);
    size_t nlen = (size_t)(eq - arg);
    if (json_object_getn(keys, arg, nlen))
        return broker_cli_fail(c, "resource key '%.*s' given twice", (int)nlen, arg);
    json_t *v = json_string(eq + 1);
    if (!v || json_object_setn_new(keys, arg, nlen, v) != 0)
        return broker_cli_fail(c, "resource key '%s' is not valid UTF-8", arg);
    return BROKER_CLI_OK;
}

/* Turn a body-encoding error into a sentence. */
static int s_body_fail(broker_cli_t *c, const json_t *j, int err)
{
    if (!json_is_object(j))
        return broker_cli_fail(c, "body must be a JSON object ({...}), not %s",
                               json_is_array(j)    ? "an array"
                               : json_is_string(j) ? "a string"
                               : json_is_number(j) ? "a number"
                                                   : "true, false or null");
    if (err == HS_ETOOBIG)
        return broker_cli_fail(c, "body is over the limit of %u bytes (as msgpack)",
                               STORE_BODY_MAX);
    if (err == HS_EMALF)
        return broker_cli_fail(c, "body nests deeper than %d levels", BROKER_JSON_DEPTH_MAX);
    return broker_cli_fail(c, "%s", broker_cli_why(err));
}

int broker_cli_put(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {
        {"class", required_argument, NULL, 'c'},    {"guid", required_argument, NULL, 'g'},
        {"key", required_argument, NULL, 'k'},      {"imported", no_argument, NULL, 'i'},
        {"resource", required_argument, NULL, 'r'}, BROKER_CLI_COMMON_OPTIONS};
    const char *cls = NULL, *guid = NULL, *res = NULL;
    bool imported = false;
    json_t *keys = json_object(), *body = NULL;
    uint8_t *bbuf = NULL, *kbuf = NULL;
    char *text = NULL;
    store_t *s = NULL;
    int rc = BROKER_CLI_OK, o, err;
    if (!keys)
        return broker_cli_fail(c, "out of memory");
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP) {
            rc = c->cli_status;
            goto out;
        }
        if (o == 'c')
            cls = optarg;
        else if (o == 'g')
            guid = optarg;
        else if (o == 'r')
            res = optarg;
        else if (o == 'i')
            imported = true;
        else if (o == 'k' && (rc = s_add_key(c, keys, optarg)))
            goto out;
    }
    if ((rc = s_args(c, argc, argv, 1, "the body (JSON, or - for stdin)")) ||
        (rc = broker_cli_need_dir(c)))
        goto out;
    if (!cls) {
        rc = broker_cli_usage(c, "missing --class CLASS");
        goto out;
    }

    s_put_t p = {0};
    if (store_class_check(cls)) {
        rc = broker_cli_fail(c, "class '%s': %s", cls, broker_cli_why(HS_ECLASS));
        goto out;
    }
    p.tmpl.cls = cls;
    if (guid ? store_guid_parse(guid, &p.tmpl.guid) : store_guid_new(&p.tmpl.guid)) {
        rc = guid ? broker_cli_fail(c, "--guid '%s': %s", guid, broker_cli_why(HS_EGUID))
                  : broker_cli_fail(c, "cannot make a guid: %s", broker_cli_why(HS_ECRYPTO));
        goto out;
    }
    bool dataclass = !strncmp(cls, "dataclass.", 10), resource = !strncmp(cls, "resource.", 9);
    if (res && !dataclass) {
        rc = broker_cli_fail(c, "--resource is only for dataclass.* rows, not %s", cls);
        goto out;
    }
    if (dataclass && !res) {
        rc = broker_cli_fail(c, "a %s row needs --resource GUID (the resource it belongs to)", cls);
        goto out;
    }
    if (res && store_guid_parse(res, &p.tmpl.resource)) {
        rc = broker_cli_fail(c, "--resource '%s': %s", res, broker_cli_why(HS_EGUID));
        goto out;
    }
    if (res && store_guid_is_zero(&p.tmpl.resource)) {
        rc = broker_cli_fail(c, "--resource must not be the all-zero guid");
        goto out;
    }
    if (json_object_size(keys) && !resource) {
        rc = broker_cli_fail(c, "--key is only for resource.* classes, not %s", cls);
        goto out;
    }

    const char *src = argv[optind];
    size_t tlen;
    if (!strcmp(src, "-")) {
        if ((rc = broker_cli_slurp(c, "-", S_JSON_TEXT_MAX, &text, &tlen)))
            goto out;
        src = text;
    } else {
        tlen = strlen(src);
    }
    char why[256];
    err = broker_json_parse(src, tlen, "body", &body, why, sizeof(why));
    if (err) {
        rc = broker_cli_fail(c, "%s", err == HS_EMALF ? why : broker_cli_why(err));
        goto out;
    }
    size_t blen = 0, klen = 0;
    if ((err = broker_json_to_body(body, &bbuf, &blen))) {
        rc = s_body_fail(c, body, err);
        goto out;
    }
    if (json_object_size(keys) && (err = broker_json_to_keys(keys, &kbuf, &klen))) {
        rc = broker_cli_fail(c, "resource keys: %s",
                             err == HS_ETOOBIG ? "over the limit of 4096 bytes"
                                               : broker_cli_why(err));
        goto out;
    }
    p.tmpl.body = bbuf;
    p.tmpl.body_len = blen;
    p.tmpl.keys = kbuf;
    p.tmpl.keys_len = klen;
    p.tmpl.flags = imported ? STORE_OBJ_IMPORTED : 0;

    if ((rc = broker_cli_open(c, &s)))
        goto out;
    err = store_write(s, s_put_fn, &p);
    if (err) {
        rc = broker_cli_fail(c, "%s", p.res.lr_why[0] ? p.res.lr_why : broker_cli_why(err));
        goto out;
    }
    broker_ctl_poke(c->cli_dir); /* events raised by the write go out now */
    char gs[STORE_GUID_STRLEN + 1], from[STORE_GUID_STRLEN + 1];
    store_guid_format(&p.res.lr_guid, gs);
    store_guid_format(&p.res.lr_merged_from, from);
    if (c->cli_json) {
        json_t *j = json_pack("{s:s, s:b}", "guid", gs, "changed", p.changed);
        if (j && p.res.lr_merged)
            json_object_set_new(j, "merged",
                                json_pack("{s:s,s:s}", "from", from, "key", p.res.lr_key));
        rc = j ? broker_cli_print_json(c, j, false) : broker_cli_fail(c, "out of memory");
        json_decref(j);
    } else {
        printf("%s\n", gs);
        if (p.res.lr_merged)
            fprintf(stderr,
                    "hsync: put: merged into existing resource %s (same key %s); a merge event "
                    "tells the hierarchy\n",
                    gs, p.res.lr_key);
    }
out:
    store_close(&s);
    free(text);
    free(bbuf);
    free(kbuf);
    json_decref(body);
    json_decref(keys);
    return rc;
}

/* ---- get ------------------------------------------------------------------- */

typedef struct s_get {
    store_guid_t guid;
    json_t *j;
} s_get_t;

static int s_get_fn(store_txn_t *t, void *ctx)
{
    s_get_t *g = ctx;
    store_obj_t o;
    json_decref(g->j);
    g->j = NULL;
    int err = store_get(t, &g->guid, &o);
    if (!err)
        err = broker_cli_obj_json(&o, BROKER_CLI_FULL, &g->j);
    char edited[512];
    if (!err && !rules_hep_overrides(t, &g->guid, edited, sizeof(edited)) && edited[0])
        json_object_set_new(g->j, "edited_here", json_string(edited));
    return err;
}

static const char *s_str(const json_t *j, const char *k)
{
    const char *v = json_string_value(json_object_get(j, k));
    return v ? v : "";
}

static int s_get_human(broker_cli_t *c, const json_t *j)
{
    json_t *keys = json_object_get(j, "keys"), *body = json_object_get(j, "body");
    printf("class:    %s\n", s_str(j, "class"));
    printf("guid:     %s\n", s_str(j, "guid"));
    printf("owner:    %s\n", s_str(j, "owner"));
    printf("origin:   %s\n", s_str(j, "origin"));
    printf("seq:      %lld\n", (long long)json_integer_value(json_object_get(j, "seq")));
    printf("mtime:    %s\n", s_str(j, "mtime"));
    if (json_is_string(json_object_get(j, "registered")))
        printf("registered: %s\n", s_str(j, "registered"));
    printf("hash:     %s\n", s_str(j, "hash"));
    printf("source:   %s\n", json_is_true(json_object_get(j, "imported")) ? "imported" : "managed");
    if (json_is_string(json_object_get(j, "resource")))
        printf("resource: %s\n", s_str(j, "resource"));
    if (json_is_object(keys)) {
        const char *k;
        json_t *v;
        printf("keys:    ");
        json_object_foreach(keys, k, v) printf(" %s=%s", k, json_string_value(v));
        printf("\n");
    }
    if (json_is_string(json_object_get(j, "edited_here")))
        printf("edited here (kept over copies from %s): %s\n", s_str(j, "origin"),
               s_str(j, "edited_here"));
    if (json_is_true(json_object_get(j, "deleted"))) {
        printf("deleted:  yes\n");
        return BROKER_CLI_OK;
    }
    printf("body:\n");
    return broker_cli_print_json(c, body, true);
}

int broker_cli_get(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o, rc;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if ((rc = s_args(c, argc, argv, 1, "GUID")) || (rc = broker_cli_need_dir(c)))
        return rc;
    s_get_t g = {0};
    const char *gs = argv[optind];
    if (store_guid_parse(gs, &g.guid))
        return broker_cli_fail(c, "'%s': %s", gs, broker_cli_why(HS_EGUID));
    store_t *s = NULL;
    if ((rc = broker_cli_open(c, &s)))
        return rc;
    int err = store_read(s, s_get_fn, &g);
    store_close(&s);
    if (err == HS_ENOTFOUND)
        rc = broker_cli_fail(c, "no object %s in %s", gs, c->cli_dir);
    else if (err == HS_EMALF)
        rc = broker_cli_fail(c, "object %s is stored damaged (its body does not decode)", gs);
    else if (err)
        rc = broker_cli_fail(c, "%s", broker_cli_why(err));
    else
        rc = c->cli_json ? broker_cli_print_json(c, g.j, false) : s_get_human(c, g.j);
    json_decref(g.j);
    return rc;
}

/* ---- ls -------------------------------------------------------------------- */

typedef struct s_ls {
    broker_cli_t *c;
    size_t n;
    int rc;
} s_ls_t;

static int s_ls_one(void *ctx, const store_obj_t *o)
{
    s_ls_t *l = ctx;
    char gs[STORE_GUID_STRLEN + 1], hash[2 * STORE_HASH_LEN + 1];
    if (l->c->cli_json) {
        json_t *j;
        int err = broker_cli_obj_json(o, BROKER_CLI_BRIEF, &j);
        if (err)
            return err;
        fputs(l->n ? ",\n" : "\n", stdout);
        int r = json_dumpf(j, stdout, JSON_COMPACT);
        json_decref(j);
        if (r)
            return HS_EIO;
    } else {
        store_guid_format(&o->guid, gs);
        store_hex(o->hash, STORE_HASH_LEN, hash);
        hash[12] = '\0';
        printf("%s  %-24s %-16s %s%s\n", gs, o->cls, o->owner,
               (o->flags & STORE_OBJ_TOMBSTONE) ? "deleted" : hash,
               (o->flags & STORE_OBJ_IMPORTED) ? "  imported" : "");
    }
    l->n++;
    return ferror(stdout) ? HS_EIO : 0;
}

int broker_cli_ls(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"class", required_argument, NULL, 'c'},
                                       {"owner", required_argument, NULL, 'o'},
                                       {"deleted", no_argument, NULL, 'D'},
                                       BROKER_CLI_COMMON_OPTIONS};
    const char *prefix = NULL, *owner = NULL;
    unsigned flags = 0;
    int o, rc;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'c')
            prefix = optarg;
        else if (o == 'o')
            owner = optarg;
        else if (o == 'D')
            flags |= STORE_SCAN_TOMBSTONES;
    }
    if ((rc = s_args(c, argc, argv, 0, "")) || (rc = broker_cli_need_dir(c)))
        return rc;
    store_t *s = NULL;
    store_txn_t *t = NULL;
    if ((rc = broker_cli_open(c, &s)))
        return rc;
    s_ls_t l = {c, 0, 0};
    int err = store_txn_begin(s, false, &t);
    if (err == HS_OK) {
        if (c->cli_json)
            fputs("[", stdout);
        err = store_scan(t, prefix, owner, flags, NULL, NULL, s_ls_one, &l);
        if (c->cli_json)
            fputs(l.n ? "\n]\n" : "]\n", stdout);
        store_txn_abort(&t);
    }
    store_close(&s);
    if (err == HS_EIO && broker_cli_output_gone())
        return BROKER_CLI_OK; /* the reader closed the pipe: a normal stop */
    if (err == HS_EIO)
        return broker_cli_fail(c, "cannot write the output: %s", strerror(errno));
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    return BROKER_CLI_OK;
}

/* ---- rm -------------------------------------------------------------------- */

typedef struct s_rm {
    store_guid_t guid;
    char why[1200];
} s_rm_t;

static int s_rm_fn(store_txn_t *t, void *ctx)
{
    s_rm_t *r = ctx;
    return repl_local_delete(t, &r->guid, r->why, sizeof(r->why)); /* HEP: managed above? */
}

int broker_cli_rm(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {BROKER_CLI_COMMON_OPTIONS};
    int o, rc;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END)
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
    if ((rc = s_args(c, argc, argv, 1, "GUID")) || (rc = broker_cli_need_dir(c)))
        return rc;
    s_rm_t r = {0};
    const char *gs = argv[optind];
    if (store_guid_parse(gs, &r.guid))
        return broker_cli_fail(c, "'%s': %s", gs, broker_cli_why(HS_EGUID));
    store_t *s = NULL;
    if ((rc = broker_cli_open(c, &s)))
        return rc;
    int err = store_write(s, s_rm_fn, &r);
    store_close(&s);
    if (err == HS_ENOTFOUND)
        return broker_cli_fail(c, "no object %s in %s (never stored, or already deleted)", gs,
                               c->cli_dir);
    if (err)
        return broker_cli_fail(c, "%s", r.why[0] ? r.why : broker_cli_why(err));
    if (c->cli_json)
        printf("{\"guid\":\"%s\",\"deleted\":true}\n", gs);
    return BROKER_CLI_OK;
}

/* ---- digest ---------------------------------------------------------------- */

typedef struct s_digest {
    const char *prefix, *owner;
    bool scan;
    uint64_t count;
    uint8_t d[STORE_HASH_LEN];
} s_digest_t;

static int s_digest_fn(store_txn_t *t, void *ctx)
{
    s_digest_t *d = ctx;
    return d->scan ? store_digest_scan(t, d->prefix, d->owner, &d->count, d->d)
                   : store_digest(t, d->prefix, d->owner, &d->count, d->d);
}

int broker_cli_digest(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"class", required_argument, NULL, 'c'},
                                       {"owner", required_argument, NULL, 'o'},
                                       {"scan", no_argument, NULL, 'S'},
                                       BROKER_CLI_COMMON_OPTIONS};
    s_digest_t d = {0};
    int o, rc;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'c')
            d.prefix = optarg;
        else if (o == 'o')
            d.owner = optarg;
        else if (o == 'S')
            d.scan = true;
    }
    if ((rc = s_args(c, argc, argv, 0, "")) || (rc = broker_cli_need_dir(c)))
        return rc;
    store_t *s = NULL;
    if ((rc = broker_cli_open(c, &s)))
        return rc;
    int err = store_read(s, s_digest_fn, &d);
    store_close(&s);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    char hex[2 * STORE_HASH_LEN + 1];
    store_hex(d.d, STORE_HASH_LEN, hex);
    if (c->cli_json)
        printf("{\"count\":%llu,\"digest\":\"%s\"}\n", (unsigned long long)d.count, hex);
    else
        printf("%llu %s\n", (unsigned long long)d.count, hex);
    return BROKER_CLI_OK;
}

/* ---- status ---------------------------------------------------------------- */

#define S_FAMILIES 16

typedef struct s_status {
    char name[STORE_NAME_MAX + 1], listen[256], http[256];
    char copied[512]; /* meta identity_copied: "MS WHY" of a copied folder, or "" */
    uint64_t head, total, log_entries;
    size_t nfam;
    struct {
        char fam[STORE_CLASS_MAX + 1];
        uint64_t n;
    } fam[S_FAMILIES];
} s_status_t;

static int s_count_one(void *ctx, const char *cls, const char *owner, uint64_t count)
{
    s_status_t *st = ctx;
    char fam[STORE_CLASS_MAX + 1];
    (void)owner;
    store_class_family(cls, fam, sizeof(fam));
    st->total += count;
    size_t i;
    for (i = 0; i < st->nfam; i++)
        if (!strcmp(st->fam[i].fam, fam))
            break;
    if (i == st->nfam) {
        if (st->nfam < S_FAMILIES) {
            snprintf(st->fam[st->nfam++].fam, sizeof(st->fam[0].fam), "%s", fam);
        } else { /* more families than expected: lump the rest together */
            i = S_FAMILIES - 1;
            snprintf(st->fam[i].fam, sizeof(st->fam[i].fam), "other");
        }
    }
    st->fam[i].n += count;
    return 0;
}

static int s_status_fn(store_txn_t *t, void *ctx)
{
    s_status_t *st = ctx;
    memset(st, 0, sizeof(*st));
    static const struct {
        const char *key;
        size_t off, len;
    } fields[] = {
        {"name", offsetof(s_status_t, name), sizeof(((s_status_t *)0)->name)},
        {"listen", offsetof(s_status_t, listen), sizeof(((s_status_t *)0)->listen)},
        {"http", offsetof(s_status_t, http), sizeof(((s_status_t *)0)->http)},
        {"identity_copied", offsetof(s_status_t, copied), sizeof(((s_status_t *)0)->copied)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        int err = store_meta_get(t, fields[i].key, (char *)st + fields[i].off, fields[i].len);
        if (err && err != HS_ENOTFOUND && err != HS_ETOOBIG)
            return err;
    }
    st->head = store_log_head(t);
    st->log_entries = store_log_entries(t);
    return store_counts(t, s_count_one, st);
}

/* The last `hsync verify` run from this node: one line per node below. */
static void s_verify_print(const json_t *v)
{
    if (!json_is_object(v))
        return;
    time_t when = (time_t)(json_integer_value(json_object_get(v, "when")) / 1000);
    char at[32];
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", gmtime(&when));
    printf("\nlast verify (%s%s): %s\n", at,
           json_is_true(json_object_get(v, "repair")) ? ", with repair" : "",
           json_is_true(json_object_get(v, "all_in_sync")) ? "every node below in sync"
                                                           : "not all in sync");
    size_t i, k;
    json_t *n, *d;
    json_array_foreach(json_object_get(v, "nodes"), i, n)
    {
        const char *verdict = json_string_value(json_object_get(n, "verdict"));
        printf("  %-14s %s", json_string_value(json_object_get(n, "node")), verdict);
        if (verdict && !strcmp(verdict, "not reached"))
            printf(": %s", json_string_value(json_object_get(n, "why")));
        json_array_foreach(json_object_get(n, "differs"), k, d)
            printf("%s%s %s", k ? ", " : ": ", json_string_value(json_object_get(d, "rule")),
                   json_string_value(json_object_get(d, "direction")));
        printf("\n");
    }
}

/*
 * Hook for the broker part of status (parent, children, links and rules:
 * mode, last run, next run, backlog, last error). It will ask the running
 * broker over its admin socket and add to j (or print) what it answers; when
 * none runs it will say so. Nothing to show before 'hsync serve' exists.
 */
static int s_status_broker(broker_cli_t *c, json_t *j, size_t extra)
{
    json_t *st;
    int err = broker_cli_links_json(c, &st);
    if (err)
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    if (j) {
        json_object_set(j, "broker", json_object_get(st, "broker"));
        json_object_set(j, "fingerprint", json_object_get(st, "fingerprint"));
        json_object_set(j, "links", json_object_get(st, "links"));
        json_t *pairs = json_object_get(st, "replication");
        json_t *sec = json_object_get(st, "security");
        if (sec) /* refused handshakes, HTTP connections (a running broker) */
            json_object_set(j, "security", sec);
        if (pairs)
            json_object_set(j, "replication", pairs);
        else
            json_object_set_new(j, "replication", json_array());
        json_t *verify = json_object_get(st, "verify");
        json_object_set(j, "verify", verify ? verify : json_null());
    } else {
        /* one table: every peer and rule with its link, problems first
         * (keys and endpoints: 'hsync hierarchy show') */
        printf("\n");
        if (strcmp(json_string_value(json_object_get(st, "broker")), "running") != 0)
            printf("(no broker runs for this node: link states are unknown; start it with "
                   "'hsync serve')\n");
        json_t *pairs = json_object_get(st, "replication");
        json_t *none = json_array();
        broker_cli_repl_print(pairs ? pairs : none, json_object_get(st, "links"), extra);
        json_decref(none);
        s_verify_print(json_object_get(st, "verify"));
    }
    json_decref(st);
    return BROKER_CLI_OK;
}

static int s_ack_copy_txn(store_txn_t *t, void *ctx)
{
    (void)ctx;
    int err = store_kv_del(t, STORE_T_META, "identity_copied", strlen("identity_copied"));
    return err == HS_ENOTFOUND ? HS_OK : err;
}

/* "copied or restored at TIME (WHY)" from meta identity_copied ("MS WHY"). */
static void s_copied_text(const char *rec, char *out, size_t n)
{
    char *end;
    unsigned long long ms = strtoull(rec, &end, 10);
    char when[32];
    broker_cli_time_format((uint64_t)ms, when);
    snprintf(out, n,
             "this node's folder was copied or restored (found at %s: %s): if the node "
             "it was copied from still runs, two nodes share one identity and take each other's "
             "links; stop one of them, or give this copy its own identity (hsync init a new "
             "folder, import an export, link it anew); 'hsync status --ack-copy' dismisses this",
             when, *end == ' ' ? end + 1 : "store copied or restored");
}

int broker_cli_status(broker_cli_t *c, int argc, char **argv)
{
    static const struct option lo[] = {{"ack-copy", no_argument, NULL, 'A'},
                                       BROKER_CLI_COMMON_OPTIONS};
    int o, rc;
    bool ack = false;
    while ((o = broker_cli_opt(c, argc, argv, lo)) != BROKER_CLI_END) {
        if (o == BROKER_CLI_STOP)
            return c->cli_status;
        if (o == 'A')
            ack = true;
    }
    if ((rc = s_args(c, argc, argv, 0, "")) || (rc = broker_cli_need_dir(c)))
        return rc;
    store_t *s = NULL;
    if ((rc = broker_cli_open(c, &s)))
        return rc;
    if (ack) {
        int err = store_write(s, s_ack_copy_txn, NULL);
        store_close(&s);
        if (err)
            return broker_cli_fail(c, "%s", broker_cli_why(err));
        printf("dismissed the warning about a copied node folder\n");
        return BROKER_CLI_OK;
    }
    s_status_t *st = malloc(sizeof(*st));
    if (!st) {
        store_close(&s);
        return broker_cli_fail(c, "out of memory");
    }
    json_t *trust = NULL; /* agent trust summaries of this node and below */
    int err = store_read(s, s_status_fn, st);
    if (!err)
        err = broker_cli_agent_trust(s, &trust);
    store_close(&s);
    if (err) {
        free(st);
        return broker_cli_fail(c, "%s", broker_cli_why(err));
    }
    store_disk_t disk;
    store_disk(c->cli_dir, &disk); /* all zero if the file system cannot tell */
    if (c->cli_json) {
        json_t *j = json_object(), *fam = json_object();
        bool ok = j && fam;
        for (size_t i = 0; ok && i < st->nfam; i++)
            s_set(fam, st->fam[i].fam, json_integer((json_int_t)st->fam[i].n), &ok);
        if (ok) {
            s_set(j, "name", json_string(st->name), &ok);
            s_set(j, "dir", json_string(c->cli_dir), &ok);
            s_set(j, "listen", json_string(st->listen), &ok);
            s_set(j, "http", json_string(st->http), &ok);
            s_set(j, "objects", json_integer((json_int_t)st->total), &ok);
            s_set(j, "families", fam, &ok);
            fam = NULL;
            s_set(j, "log_head", json_integer((json_int_t)st->head), &ok);
            s_set(j, "log_entries", json_integer((json_int_t)st->log_entries), &ok);
            s_set(j, "store_bytes", json_integer((json_int_t)disk.sd_store_bytes), &ok);
            s_set(j, "disk_free_bytes", json_integer((json_int_t)disk.sd_free_bytes), &ok);
            s_set(j, "disk_total_bytes", json_integer((json_int_t)disk.sd_total_bytes), &ok);
            s_set(j, "disk_low", json_boolean(disk.sd_low), &ok);
            s_set(j, "agent_trust", trust, &ok);
            trust = NULL;
            if (st->copied[0]) {
                char text[1024];
                s_copied_text(st->copied, text, sizeof(text));
                s_set(j, "identity_copied", json_string(text), &ok);
            }
        }
        if (ok)
            rc = s_status_broker(c, j, 0);
        rc = ok ? (rc ? rc : broker_cli_print_json(c, j, false))
                : broker_cli_fail(c, "out of memory");
        json_decref(fam);
        json_decref(j);
    } else {
        printf("node:      %s\n", st->name);
        printf("dir:       %s\n", c->cli_dir);
        printf("listen:    %s\n", st->listen);
        printf("http:      %s\n", st->http);
        printf("objects:   %llu\n", (unsigned long long)st->total);
        for (size_t i = 0; i < st->nfam; i++)
            printf("  %-14s %llu\n", st->fam[i].fam, (unsigned long long)st->fam[i].n);
        printf("log head:  %llu (%llu change-log entries kept)\n", (unsigned long long)st->head,
               (unsigned long long)st->log_entries);
        printf("store:     %.1f MiB on disk; %.1f GiB free of %.1f GiB there\n",
               (double)disk.sd_store_bytes / (1024.0 * 1024.0),
               (double)disk.sd_free_bytes / (1024.0 * 1024.0 * 1024.0),
               (double)disk.sd_total_bytes / (1024.0 * 1024.0 * 1024.0));
        if (disk.sd_low)
            printf("warning:   under 1 GiB left on the disk holding %s: writes and replication "
                   "runs fail when it fills (free space there, or move the node folder)\n",
                   c->cli_dir);
        if (st->copied[0]) {
            char text[1024];
            s_copied_text(st->copied, text, sizeof(text));
            printf("problem:   %s\n", text);
        }
        rc = s_status_broker(c, NULL, st->copied[0] ? 1 : 0);
        if (rc == BROKER_CLI_OK) {
            printf("\n");
            broker_cli_agent_trust_print(trust);
        }
    }
    json_decref(trust);
    free(st);
    return rc;
}
