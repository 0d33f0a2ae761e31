/*
 * hsync_probe.c - a raw ZeroMQ client for the integration tests.
 *
 * It connects one DEALER with CURVE to a broker and sends whatever it is told
 * to, as a peer that plays by the rules would not: with an untrusted key, a
 * revoked key, or frames that are malformed, oversized or of the wrong type.
 * Then it waits a bounded time for any reply and says what it got.
 *
 *   hsync_probe (--endpoint tcp://HOST:PORT --server-key Z85 | --server DIR)
 *               (--key-from DIR | --random-key) [--name NAME]
 *               (--send HEX | --send-file F | --send-frame KIND)...
 *               [--expect-reply-ms N]
 *
 * --server DIR    take the endpoint and server key from node DIR's store meta
 *                 (either may still be given to override it).
 * --key-from DIR  use the node DIR's CURVE key pair (and its name in frames),
 *                 read from its store meta; --random-key makes a fresh pair.
 * --send-frame    hb | leave | join:TOKEN      well-formed link frames
 *                 garbage                      bytes that are not msgpack
 *                 truncated                    a heartbeat cut short
 *                 oversized                    a heartbeat over the field
 *                                              limits (name, relatives)
 *                 huge                         over TOPO_FRAME_MAX bytes
 *                 badversion                   protocol version 2
 *                 unknowntype                  link frame type 9
 *                 repltype                     frame type 16 (replication)
 *                 confused                     a heartbeat whose fields have
 *                                              the wrong msgpack types
 *                 multipart                    two parts in one message
 *                 repl:T:SHAPE                 replication frame type T (16..31)
 *                                              shaped: empty [1,T]; confused
 *                                              (every field of the wrong
 *                                              msgpack type); truncated (an
 *                                              OPEN/BATCH-sized frame cut in
 *                                              half); unknownrun (well formed
 *                                              fields, a run nobody opened)
 *                 replopen                     a well-formed OPEN of rule
 *                                              resources (down, complete),
 *                                              run 4242, from this key
 *                 replbatch:SHAPE              a BATCH of run 4242 whose one
 *                                              object is hostile: badguid,
 *                                              bodystr (body not a map),
 *                                              bodyjunk (body not msgpack),
 *                                              keysarray, badflags, noowner,
 *                                              hugecount (claims 2^32-1
 *                                              objects), badclass
 *
 * Output, one line each: "handshake: ok" or "handshake: refused" when the
 * server's verdict was seen, then "reply: TYPE ..." for the first reply, or
 * "no reply". Exit 0 with a reply, 3 without, 2 on bad usage, 1 on failure.
 */
#include "replication/proto.h"
#include "store/mp.h"
#include "store/store.h"
#include "topology/token.h"
#include "topology/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define P_MAX_SENDS 64

typedef struct p_send {
    uint8_t *buf;
    size_t len;
    bool more; /* send buf as the first part of a two-part message */
} p_send_t;

typedef struct p_opts {
    const char *endpoint;
    const char *server_key;
    const char *server_dir;
    char server_endpoint[TOPO_ENDPOINT_MAX];
    char server_pub[TOPO_KEY_LEN + 1];
    const char *key_from;
    bool random_key;
    char name[STORE_NAME_MAX + 1];
    char pub[TOPO_KEY_LEN + 1];
    char sec[TOPO_KEY_LEN + 1];
    int expect_ms;
    const char *kinds[P_MAX_SENDS]; /* raw option values, turned into sends later */
    int kind_opt[P_MAX_SENDS];      /* 'x' hex, 'f' file, 'k' frame kind */
    int nkinds;
} p_opts_t;

static void s_usage(void)
{
    fprintf(stderr,
            "usage: hsync_probe (--endpoint tcp://HOST:PORT --server-key Z85 | --server DIR)\n"
            "                   (--key-from DIR | --random-key) [--name NAME]\n"
            "                   (--send HEX | --send-file F | --send-frame KIND)...\n"
            "                   [--expect-reply-ms N]\n");
}

static long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- keys ---------------------------------------------------------------- */

/* Read meta entries of node dir: pairs of (key, out, outlen), NULL-terminated. */
static int s_meta(const char *dir, const char *key, char *out, size_t outlen, ...)
    __attribute__((sentinel));

static int s_meta(const char *dir, const char *key, char *out, size_t outlen, ...)
{
    store_t *s = NULL;
    store_txn_t *t = NULL;
    int err = store_open(dir, 0, &s);
    if (!err)
        err = store_txn_begin(s, false, &t);
    va_list ap;
    va_start(ap, outlen);
    while (!err && key) {
        if (out[0] == '\0') /* already given on the command line: keep it */
            err = store_meta_get(t, key, out, outlen);
        key = va_arg(ap, const char *);
        if (key) {
            out = va_arg(ap, char *);
            outlen = va_arg(ap, size_t);
        }
    }
    va_end(ap);
    if (t)
        store_txn_abort(&t);
    store_close(&s);
    if (err)
        fprintf(stderr, "hsync_probe: cannot read the node at %s: %s\n", dir, hs_strerror(err));
    return err;
}

static int s_keys_from(p_opts_t *o)
{
    int err = s_meta(o->key_from, "curve_public", o->pub, sizeof(o->pub), "name", o->name,
                     sizeof(o->name), (char *)NULL);
    if (err || o->sec[0])
        return err;
    store_t *s = NULL; /* the secret key is in DIR/keys, not in the store */
    err = store_open(o->key_from, 0, &s);
    if (!err)
        err = store_secret_get(s, "curve_secret", o->sec, sizeof(o->sec));
    store_close(&s);
    if (err)
        fprintf(stderr, "hsync_probe: cannot read the keys of %s: %s\n", o->key_from,
                hs_strerror(err));
    return err;
}

static int s_server_from(p_opts_t *o)
{
    if (o->endpoint)
        snprintf(o->server_endpoint, sizeof(o->server_endpoint), "%s", o->endpoint);
    if (o->server_key)
        snprintf(o->server_pub, sizeof(o->server_pub), "%s", o->server_key);
    int err = s_meta(o->server_dir, "listen", o->server_endpoint, sizeof(o->server_endpoint),
                     "curve_public", o->server_pub, sizeof(o->server_pub), (char *)NULL);
    o->endpoint = o->server_endpoint;
    o->server_key = o->server_pub;
    return err;
}

/* ---- frames -------------------------------------------------------------- */

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int s_from_hex(const char *hex, p_send_t *out)
{
    size_t n = strlen(hex);
    if (n % 2)
        return HS_EINVAL;
    out->buf = malloc(n / 2 + 1);
    if (!out->buf)
        return HS_ENOMEM;
    for (size_t i = 0; i < n; i += 2) {
        int hi = s_hexval(hex[i]), lo = s_hexval(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return HS_EINVAL;
        out->buf[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    out->len = n / 2;
    return HS_OK;
}

static int s_from_file(const char *path, p_send_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return HS_ENOENT;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return HS_ENOMEM;
    out->buf = buf;
    out->len = len;
    return HS_OK;
}

/* Hand the writer's buffer over to a send. */
static int s_take(store_mpw_t *w, p_send_t *out)
{
    int err = store_mpw_error(w);
    if (err) {
        store_mpw_free(w);
        return err;
    }
    out->buf = w->mpw_buf;
    out->len = w->mpw_len;
    return HS_OK;
}

static int s_link_frame(const p_opts_t *o, int type, const char *token, p_send_t *out)
{
    topo_msg_t m = {.m_type = type};
    snprintf(m.m_name, sizeof(m.m_name), "%s", o->name);
    snprintf(m.m_key, sizeof(m.m_key), "%s", o->pub);
    if (token)
        snprintf(m.m_token, sizeof(m.m_token), "%s", token);
    store_mpw_t w;
    store_mpw_init(&w);
    topo_msg_encode(&m, &w);
    return s_take(&w, out);
}

/* [1, type, name, key, token, ok, why, rels] with chosen oddities. */
static int s_odd_frame(const p_opts_t *o, const char *kind, p_send_t *out)
{
    store_mpw_t w;
    store_mpw_init(&w);
    if (!strcmp(kind, "oversized")) {
        char longname[301];
        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        store_mpw_array(&w, 8);
        store_mpw_uint(&w, TOPO_PROTO_VERSION);
        store_mpw_uint(&w, TOPO_MSG_HB);
        store_mpw_str(&w, longname);
        store_mpw_str(&w, o->pub);
        store_mpw_str(&w, "");
        store_mpw_bool(&w, false);
        store_mpw_str(&w, "");
        store_mpw_array(&w, TOPO_REL_MAX + 1);
        for (int i = 0; i < TOPO_REL_MAX + 1; i++) {
            store_mpw_array(&w, 3);
            store_mpw_str(&w, "x");
            store_mpw_str(&w, o->pub);
            store_mpw_str(&w, "y");
        }
    } else if (!strcmp(kind, "confused")) {
        store_mpw_array(&w, 8);
        store_mpw_uint(&w, TOPO_PROTO_VERSION);
        store_mpw_uint(&w, TOPO_MSG_HB);
        store_mpw_uint(&w, 42);         /* name: an integer */
        store_mpw_bin(&w, "\x01", 1);   /* key: binary */
        store_mpw_map(&w, 0);           /* token: a map */
        store_mpw_str(&w, "yes");       /* ok: a string */
        store_mpw_nil(&w);              /* why: nil */
        store_mpw_str(&w, "relatives"); /* rels: a string */
    } else {
        uint64_t version = TOPO_PROTO_VERSION, type = TOPO_MSG_HB;
        if (!strcmp(kind, "badversion"))
            version = 2;
        else if (!strcmp(kind, "unknowntype"))
            type = 9;
        else if (!strcmp(kind, "repltype"))
            type = 16;
        else {
            store_mpw_free(&w);
            return HS_EINVAL;
        }
        store_mpw_array(&w, 8);
        store_mpw_uint(&w, version);
        store_mpw_uint(&w, type);
        store_mpw_str(&w, o->name);
        store_mpw_str(&w, o->pub);
        store_mpw_str(&w, "");
        store_mpw_bool(&w, false);
        store_mpw_str(&w, "");
        store_mpw_array(&w, 0);
    }
    return s_take(&w, out);
}

/* ---- replication frames (types 16..31) ----------------------------------- */

#define P_RUN 4242

/* [1, T, ...] with n fields after the type, each of a type no decoder wants. */
static int s_repl_shaped(int type, const char *shape, p_send_t *out)
{
    store_mpw_t w;
    store_mpw_init(&w);
    if (!strcmp(shape, "empty")) {
        store_mpw_array(&w, 2);
        store_mpw_uint(&w, TOPO_PROTO_VERSION);
        store_mpw_uint(&w, (uint64_t)type);
    } else if (!strcmp(shape, "confused")) {
        store_mpw_array(&w, 12);
        store_mpw_uint(&w, TOPO_PROTO_VERSION);
        store_mpw_uint(&w, (uint64_t)type);
        store_mpw_str(&w, "run");         /* run: a string */
        store_mpw_map(&w, 0);             /* rule / no: a map */
        store_mpw_str(&w, "prefixes");    /* array wanted */
        store_mpw_bin(&w, "\x00\x01", 2); /* array wanted */
        store_mpw_str(&w, "mode");        /* uint wanted */
        store_mpw_array(&w, 0);           /* string wanted */
        store_mpw_bool(&w, true);
        store_mpw_str(&w, "vfirst");
        store_mpw_nil(&w);
        store_mpw_uint(&w, 7); /* array wanted */
    } else if (!strcmp(shape, "truncated") || !strcmp(shape, "unknownrun")) {
        /* Plausible fields for any type, long enough for OPEN (12) and
         * BATCH (8); truncated cuts the encoding in half. */
        store_mpw_array(&w, 12);
        store_mpw_uint(&w, TOPO_PROTO_VERSION);
        store_mpw_uint(&w, (uint64_t)type);
        store_mpw_uint(&w, 987654321);
        store_mpw_uint(&w, 1);
        store_mpw_uint(&w, 1);
        store_mpw_nil(&w);
        store_mpw_nil(&w);
        store_mpw_array(&w, 0);
        store_mpw_str(&w, "why");
        store_mpw_uint(&w, 0);
        store_mpw_uint(&w, 0);
        store_mpw_array(&w, 0);
    } else {
        store_mpw_free(&w);
        return HS_EINVAL;
    }
    int err = s_take(&w, out);
    if (!err && !strcmp(shape, "truncated"))
        out->len /= 2;
    return err;
}

static int s_repl_open(p_send_t *out)
{
    repl_msg_t m;
    memset(&m, 0, sizeof(m));
    m.m_type = REPL_OPEN;
    m.m_run = P_RUN;
    snprintf(m.m_rule, sizeof(m.m_rule), "resources");
    m.m_nprefix = 1;
    snprintf(m.m_prefix[0], sizeof(m.m_prefix[0]), "resource.");
    m.m_mode = REPL_COMPLETE;
    snprintf(m.m_why, sizeof(m.m_why), "probe");
    store_mpw_t w;
    store_mpw_init(&w);
    repl_msg_encode(&m, &w);
    return s_take(&w, out);
}

/* One BATCH of run P_RUN carrying one object, made hostile by shape. */
static int s_repl_batch(const p_opts_t *o, const char *shape, p_send_t *out)
{
    store_mpw_t objs, w;
    store_mpw_init(&objs);
    store_mpw_init(&w);
    bool guid_ok = strcmp(shape, "badguid") != 0;
    store_mpw_array(&objs, 9);
    store_mpw_bin(&objs, "\x01\x90\x00\x00\x00\x00\x70\x00\x80\x00\x00\x00\x00\x00\x00\x01",
                  guid_ok ? 16 : 5);
    store_mpw_str(&objs, !strcmp(shape, "badclass") ? "resource.\x01../../x" : "resource.computer");
    store_mpw_str(&objs, o->name);
    store_mpw_str(&objs, !strcmp(shape, "noowner") ? "" : o->name);
    store_mpw_uint(&objs, 1);
    store_mpw_uint(&objs, !strcmp(shape, "badflags") ? 0xffffffffu : 0);
    store_mpw_nil(&objs);
    if (!strcmp(shape, "keysarray")) {
        store_mpw_array(&objs, 1);
        store_mpw_str(&objs, "serial");
    } else {
        store_mpw_map(&objs, 1);
        store_mpw_str(&objs, "serial");
        store_mpw_str(&objs, "PROBE-1");
    }
    if (!strcmp(shape, "bodystr")) {
        store_mpw_str(&objs, "not a map");
    } else if (!strcmp(shape, "bodyjunk")) {
        store_mpw_raw(&objs, "\xc1\xc1\xc1", 3); /* 0xc1 is never used in msgpack */
    } else {
        store_mpw_map(&objs, 1);
        store_mpw_str(&objs, "name");
        store_mpw_str(&objs, "probe");
    }
    repl_key_t none = {.k_set = false};
    uint32_t nobj = !strcmp(shape, "hugecount") ? 0xffffffffu : 1;
    int err = store_mpw_error(&objs);
    if (!err)
        err = repl_batch_encode(&w, P_RUN, 1, 0, &none, &none, nobj, &objs);
    store_mpw_free(&objs);
    if (err) {
        store_mpw_free(&w);
        return err;
    }
    return s_take(&w, out);
}

static int s_frame(const p_opts_t *o, const char *kind, p_send_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!strcmp(kind, "hb"))
        return s_link_frame(o, TOPO_MSG_HB, NULL, out);
    if (!strcmp(kind, "leave"))
        return s_link_frame(o, TOPO_MSG_LEAVE, NULL, out);
    if (!strncmp(kind, "join:", 5))
        return s_link_frame(o, TOPO_MSG_JOIN, kind + 5, out);
    if (!strcmp(kind, "garbage")) {
        static const char junk[] = "\xc1\xc1 this is not msgpack \xff\x00\x01";
        out->buf = malloc(sizeof(junk));
        if (!out->buf)
            return HS_ENOMEM;
        memcpy(out->buf, junk, sizeof(junk));
        out->len = sizeof(junk);
        return HS_OK;
    }
    if (!strcmp(kind, "truncated")) {
        int err = s_link_frame(o, TOPO_MSG_HB, NULL, out);
        if (!err)
            out->len /= 2;
        return err;
    }
    if (!strcmp(kind, "huge")) {
        out->len = (size_t)TOPO_FRAME_MAX + 1;
        out->buf = calloc(1, out->len);
        return out->buf ? HS_OK : HS_ENOMEM;
    }
    if (!strncmp(kind, "repl:", 5)) {
        char *end = NULL;
        long t = strtol(kind + 5, &end, 10);
        if (t < 16 || t > 31 || !end || *end != ':')
            return HS_EINVAL;
        return s_repl_shaped((int)t, end + 1, out);
    }
    if (!strcmp(kind, "replopen"))
        return s_repl_open(out);
    if (!strncmp(kind, "replbatch:", 10))
        return s_repl_batch(o, kind + 10, out);
    if (!strcmp(kind, "multipart")) {
        int err = s_link_frame(o, TOPO_MSG_HB, NULL, out);
        out->more = true;
        return err;
    }
    return s_odd_frame(o, kind, out);
}

/* ---- the conversation ---------------------------------------------------- */

static const char *s_type_name(int type)
{
    switch (type) {
    case TOPO_MSG_HB:
        return "HB";
    case TOPO_MSG_JOIN:
        return "JOIN";
    case TOPO_MSG_JOINED:
        return "JOINED";
    case TOPO_MSG_LEAVE:
        return "LEAVE";
    default:
        return type >= 16 ? "REPLICATION" : "UNKNOWN";
    }
}

static void s_print_reply(const void *buf, size_t len)
{
    int type = 0;
    if (topo_frame_type(buf, len, &type) != HS_OK) {
        printf("reply: undecodable (%zu bytes)\n", len);
        return;
    }
    topo_msg_t m;
    if (type < 16 && topo_msg_decode(buf, len, &m) == HS_OK) {
        printf("reply: %s from '%s'", s_type_name(type), m.m_name);
        if (type == TOPO_MSG_JOINED)
            printf(" ok=%d why=\"%s\"", m.m_ok ? 1 : 0, m.m_why);
        printf(" rels=%zu [", m.m_nrel);
        for (size_t i = 0; i < m.m_nrel; i++)
            printf("%s%s", i ? " " : "", m.m_rel[i].rel_name);
        printf("]\n");
        topo_msg_clear(&m);
        return;
    }
    printf("reply: %s (type %d, %zu bytes)\n", s_type_name(type), type, len);
}

/* Report the server's verdict on our key if the monitor saw one. */
static void s_poll_monitor(void *mon, const char **verdict)
{
    for (;;) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t id = 0;
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&id, zmq_msg_data(&ev), 2);
        zmq_msg_close(&ev);
        zmq_msg_init(&addr);
        zmq_msg_recv(&addr, mon, 0);
        zmq_msg_close(&addr);
        if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && !*verdict) {
            *verdict = "ok";
            printf("handshake: ok\n");
        } else if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && !*verdict) {
            *verdict = "refused";
            printf("handshake: refused\n");
        }
    }
}

static int s_run(const p_opts_t *o, p_send_t *sends, int nsends)
{
    int rc = 1;
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    void *mon = NULL;
    if (!s)
        goto out;
    int linger = 0, tmo = o->expect_ms > 0 ? o->expect_ms : 1;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, o->server_key, TOPO_KEY_LEN) ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, o->pub, TOPO_KEY_LEN) ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, o->sec, TOPO_KEY_LEN)) {
        fprintf(stderr, "hsync_probe: bad CURVE key: %s\n", zmq_strerror(zmq_errno()));
        goto out;
    }
    if (zmq_socket_monitor(s, "inproc://probe-monitor",
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0) {
        mon = zmq_socket(ctx, ZMQ_PAIR);
        if (mon && zmq_connect(mon, "inproc://probe-monitor")) {
            zmq_close(mon);
            mon = NULL;
        }
    }
    if (zmq_connect(s, o->endpoint)) {
        fprintf(stderr, "hsync_probe: cannot connect to %s: %s\n", o->endpoint,
                zmq_strerror(zmq_errno()));
        goto out;
    }
    long deadline = s_now_ms() + o->expect_ms;
    for (int i = 0; i < nsends; i++) {
        if (sends[i].more && zmq_send(s, sends[i].buf, sends[i].len, ZMQ_SNDMORE) < 0)
            break;
        if (zmq_send(s, sends[i].buf, sends[i].len, 0) < 0) {
            printf("send: %s\n", zmq_strerror(zmq_errno()));
            break;
        }
    }
    const char *verdict = NULL;
    rc = 3;
    for (;;) {
        long left = deadline - s_now_ms();
        if (mon)
            s_poll_monitor(mon, &verdict);
        if (left <= 0)
            break;
        zmq_pollitem_t it[1] = {{s, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 1, left < 50 ? left : 50) > 0 && (it[0].revents & ZMQ_POLLIN)) {
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, s, 0) >= 0) {
                if (mon)
                    s_poll_monitor(mon, &verdict);
                s_print_reply(zmq_msg_data(&msg), zmq_msg_size(&msg));
                rc = 0;
            }
            zmq_msg_close(&msg);
            if (rc == 0)
                break;
        }
    }
    if (rc == 3)
        printf("no reply\n");
out:
    if (mon)
        zmq_close(mon);
    if (s)
        zmq_close(s);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

/* ---- main ---------------------------------------------------------------- */

static int s_parse(p_opts_t *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--random-key")) {
            o->random_key = true;
            continue;
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--endpoint"))
            o->endpoint = v;
        else if (!strcmp(a, "--server-key"))
            o->server_key = v;
        else if (!strcmp(a, "--server"))
            o->server_dir = v;
        else if (!strcmp(a, "--key-from"))
            o->key_from = v;
        else if (!strcmp(a, "--name"))
            snprintf(o->name, sizeof(o->name), "%s", v);
        else if (!strcmp(a, "--expect-reply-ms"))
            o->expect_ms = atoi(v);
        else if (o->nkinds < P_MAX_SENDS && (!strcmp(a, "--send") || !strcmp(a, "--send-file") ||
                                             !strcmp(a, "--send-frame"))) {
            o->kind_opt[o->nkinds] = !strcmp(a, "--send")        ? 'x'
                                     : !strcmp(a, "--send-file") ? 'f'
                                                                 : 'k';
            o->kinds[o->nkinds++] = v;
        } else
            return -1;
    }
    if ((!o->key_from) == !o->random_key || o->expect_ms < 0)
        return -1;
    if (!o->server_dir && (!o->endpoint || !o->server_key || strlen(o->server_key) != TOPO_KEY_LEN))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    p_opts_t o = {.expect_ms = 1000};
    if (s_parse(&o, argc, argv)) {
        s_usage();
        return 2;
    }
    if (o.server_dir && s_server_from(&o))
        return 1;
    if (o.random_key) {
        if (zmq_curve_keypair(o.pub, o.sec)) {
            fprintf(stderr, "hsync_probe: cannot make a key pair\n");
            return 1;
        }
    } else if (s_keys_from(&o)) {
        return 1;
    }
    if (!o.name[0])
        snprintf(o.name, sizeof(o.name), "probe");
    p_send_t sends[P_MAX_SENDS];
    int n = 0, err = HS_OK;
    for (; n < o.nkinds && !err; n++) {
        memset(&sends[n], 0, sizeof(sends[n]));
        switch (o.kind_opt[n]) {
        case 'x':
            err = s_from_hex(o.kinds[n], &sends[n]);
            break;
        case 'f':
            err = s_from_file(o.kinds[n], &sends[n]);
            break;
        default:
            err = s_frame(&o, o.kinds[n], &sends[n]);
        }
        if (err)
            fprintf(stderr, "hsync_probe: cannot make '%s': %s\n", o.kinds[n], hs_strerror(err));
    }
    int rc = err ? 2 : s_run(&o, sends, n);
    for (int i = 0; i < n; i++)
        free(sends[i].buf);
    memset(o.sec, 0, sizeof(o.sec));
    return rc;
}
