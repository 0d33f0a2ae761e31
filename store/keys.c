/*
 * keys.c - the node's secrets in DIR/keys, outside the LMDB file (format and
 * rules in store.h, "secrets").
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_KEYS_MAX 8         /* entries in the file */
#define S_KEYS_NAME 32       /* longest name */
#define S_KEYS_FILE_MAX 4096 /* bytes of the whole file */
#define S_KEYS_HEADER "hsync-keys 1\n"

typedef struct s_entry {
    char name[S_KEYS_NAME + 1];
    char value[STORE_SECRET_MAX + 1];
} s_entry_t;

typedef struct s_keys {
    size_t n;
    s_entry_t e[S_KEYS_MAX];
} s_keys_t;

static bool s_name_ok(const char *n, size_t len)
{
    if (len == 0 || len > S_KEYS_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || n[i] == '_'))
            return false;
    return true;
}

static bool s_value_ok(const char *v, size_t len)
{
    if (len == 0 || len > STORE_SECRET_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (v[i] <= ' ' || v[i] > '~')
            return false;
    return true;
}

static int s_path(const store_t *s, const char *suffix, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/keys%s", store_dir(s), suffix);
    return n < 0 || (size_t)n >= outlen ? HS_ETOOBIG : HS_OK;
}

/* Parse the file's text (len bytes, explicit bounds everywhere). */
static int s_parse(const char *buf, size_t len, s_keys_t *k)
{
    size_t hl = sizeof(S_KEYS_HEADER) - 1;
    if (len < hl || memcmp(buf, S_KEYS_HEADER, hl) != 0)
        return HS_EKEYS;
    size_t pos = hl;
    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        if (!nl)
            return HS_EKEYS; /* every line ends with a newline */
        size_t ll = (size_t)(nl - line);
        pos += ll + 1;
        if (ll == 0)
            continue;
        const char *sp = memchr(line, ' ', ll);
        if (!sp || k->n == S_KEYS_MAX)
            return HS_EKEYS;
        size_t nlen = (size_t)(sp - line), vlen = ll - nlen - 1;
        if (!s_name_ok(line, nlen) || !s_value_ok(sp + 1, vlen))
            return HS_EKEYS;
        for (size_t i = 0; i < k->n; i++)
            if (strlen(k->e[i].name) == nlen && !memcmp(k->e[i].name, line, nlen))
                return HS_EKEYS; /* a name twice */
        memcpy(k->e[k->n].name, line, nlen);
        k->e[k->n].name[nlen] = '\0';
        memcpy(k->e[k->n].value, sp + 1, vlen);
        k->e[k->n].value[vlen] = '\0';
        k->n++;
    }
    return HS_OK;
}

/* Read DIR/keys: HS_ENOTFOUND when absent, HS_EKEYS when malformed or
 * readable or writable by others. */
static int s_read(const store_t *s, s_keys_t *k)
{
    memset(k, 0, sizeof(*k));
    char path[4200];
    int err = s_path(s, "", path, sizeof(path));
    if (err)
        return err;
    /* O_NONBLOCK: a FIFO planted at DIR/keys must not hang the open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT   ? HS_ENOTFOUND
               : errno == EACCES ? HS_EACCES
               : errno == ELOOP  ? HS_EKEYSTYPE
                                 : HS_EKEYS;
    struct stat st;
    char *buf = NULL;
    err = fstat(fd, &st) != 0                        ? HS_EIO
          : !S_ISREG(st.st_mode)                     ? HS_EKEYSTYPE
          : st.st_uid != geteuid() && st.st_uid != 0 ? HS_EKEYSOWNER /* ours, or root's */
          : (st.st_mode & 077)                       ? HS_EKEYSMODE
          : st.st_size > S_KEYS_FILE_MAX             ? HS_EKEYS
                                                     : HS_OK;
    if (err) {
        close(fd);
        return err;
    }
    size_t len = (size_t)st.st_size;
    buf = malloc(len + 1);
    if (!buf) {
        close(fd);
        return HS_ENOMEM;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    err = got == len ? s_parse(buf, len, k) : HS_EIO;
    memset(buf, 0, len);
    free(buf);
    return err;
}

/* Replace DIR/keys whole: temporary file, fsync, rename, fsync of DIR. */
static int s_write(store_t *s, const s_keys_t *k)
{
    char path[4200], tmp[4300];
    int err = s_path(s, "", path, sizeof(path));
    if (!err)
        err = s_path(s, ".tmp", tmp, sizeof(tmp));
    if (err)
        return err;
    char buf[S_KEYS_FILE_MAX];
    size_t len = sizeof(S_KEYS_HEADER) - 1;
    memcpy(buf, S_KEYS_HEADER, len);
    for (size_t i = 0; i < k->n; i++) {
        int n = snprintf(buf + len, sizeof(buf) - len, "%s %s\n", k->e[i].name, k->e[i].value);
        if (n < 0 || (size_t)n >= sizeof(buf) - len)
            return HS_ETOOBIG;
        len += (size_t)n;
    }
    unlink(tmp); /* left by a crash between open and rename */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        memset(buf, 0, sizeof(buf));
        return -errno;
    }
    size_t put = 0;
    while (put < len) {
        ssize_t w = write(fd, buf + put, len - put);
        if (w <= 0)
            break;
        put += (size_t)w;
    }
    memset(buf, 0, sizeof(buf));
    err = put == len && fchmod(fd, 0600) == 0 && fsync(fd) == 0 ? HS_OK : HS_EIO;
    if (close(fd) != 0 && !err)
        err = HS_EIO;
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err) {
        unlink(tmp);
        return err;
    }
    int dfd = open(store_dir(s), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    err = fsync(dfd) == 0 ? HS_OK : HS_EIO;
    close(dfd);
    return err;
}

int store_secret_get(const store_t *s, const char *name, char *out, size_t outlen)
{
    s_keys_t k;
    int err = s_read(s, &k);
    if (!err) {
        err = HS_ENOTFOUND;
        for (size_t i = 0; i < k.n; i++) {
            if (strcmp(k.e[i].name, name) != 0)
                continue;
            size_t vl = strlen(k.e[i].value);
            if (vl >= outlen) {
                err = HS_ETOOBIG;
                break;
            }
            memcpy(out, k.e[i].value, vl + 1);
            err = HS_OK;
            break;
        }
    }
    memset(&k, 0, sizeof(k));
    return err;
}

/* Set name = value in k (checked). */
static int s_set(s_keys_t *k, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (!s_name_ok(name, nl) || !s_value_ok(value, vl))
        return HS_EINVAL;
    size_t i;
    for (i = 0; i < k->n; i++)
        if (!strcmp(k->e[i].name, name))
            break;
    if (i == k->n) {
        if (k->n == S_KEYS_MAX)
            return HS_ETOOBIG;
        k->n++;
    }
    memcpy(k->e[i].name, name, nl + 1);
    memcpy(k->e[i].value, value, vl + 1);
    return HS_OK;
}

int store_secrets_put(store_t *s, const char *const *names, const char *const *values, size_t n)
{
    s_keys_t k;
    int err = s_read(s, &k);
    if (err == HS_ENOTFOUND)
        err = HS_OK;
    for (size_t i = 0; !err && i < n; i++)
        err = s_set(&k, names[i], values[i]);
    if (!err)
        err = s_write(s, &k);
    memset(&k, 0, sizeof(k));
    return err;
}

/* ---- migration from meta (stores before hsync 0.10) ---------------------- */

static const struct {
    const char *name;
    bool move; /* deleted from meta once in the file (the public key stays) */
} s_legacy[] = {{"curve_public", false}, {"curve_secret", true}, {"token_key", true}};
#define S_NLEGACY (sizeof(s_legacy) / sizeof(s_legacy[0]))

typedef struct s_mig {
    s_keys_t k;
    bool found; /* a secret was in meta */
} s_mig_t;

static int s_migrate_txn(store_txn_t *t, void *ctx)
{
    s_mig_t *m = ctx;
    store_t *s = store_txn_store(t);
    m->found = false;
    int err = s_read(s, &m->k);
    if (err == HS_ENOTFOUND)
        err = HS_OK;
    if (err)
        return err;
    char val[STORE_SECRET_MAX + 1];
    bool changed = false;
    for (size_t i = 0; i < S_NLEGACY; i++) {
        err = store_meta_get(t, s_legacy[i].name, val, sizeof(val));
        if (err == HS_ENOTFOUND) { /* another process may have moved it meanwhile */
            err = HS_OK;
            continue;
        }
        if (err)
            break;
        m->found = m->found || s_legacy[i].move;
        size_t j;
        for (j = 0; j < m->k.n; j++)
            if (!strcmp(m->k.e[j].name, s_legacy[i].name))
                break;
        if (j < m->k.n && strcmp(m->k.e[j].value, val) != 0) {
            err = HS_EKEYS; /* DIR/keys holds another node's keys */
            break;
        }
        if (j == m->k.n) {
            err = s_set(&m->k, s_legacy[i].name, val);
            if (err)
                break;
            changed = true;
        }
    }
    memset(val, 0, sizeof(val));
    if (err || !m->found)
        return err;
    /* the file first, durably; only then the copy in the store goes */
    if (changed && (err = s_write(s, &m->k)))
        return err;
    for (size_t i = 0; i < S_NLEGACY; i++) {
        if (!s_legacy[i].move)
            continue;
        err = store_kv_del(t, STORE_T_META, s_legacy[i].name, strlen(s_legacy[i].name));
        if (err && err != HS_ENOTFOUND)
            return err;
    }
    return HS_OK;
}

static int s_legacy_txn(store_txn_t *t, void *ctx)
{
    bool *found = ctx;
    char val[STORE_SECRET_MAX + 1];
    for (size_t i = 0; i < S_NLEGACY && !*found; i++)
        *found = s_legacy[i].move &&
                 store_meta_get(t, s_legacy[i].name, val, sizeof(val)) != HS_ENOTFOUND;
    memset(val, 0, sizeof(val));
    return HS_OK;
}

int store_secrets_migrate(store_t *s)
{
    bool found = false; /* a read first: no write transaction for every open */
    int err = store_read(s, s_legacy_txn, &found);
    if (err || !found)
        return err;
    s_mig_t *m = calloc(1, sizeof(*m));
    if (!m)
        return HS_ENOMEM;
    err = store_write(s, s_migrate_txn, m);
    memset(m, 0, sizeof(*m));
    free(m);
    return err;
}
