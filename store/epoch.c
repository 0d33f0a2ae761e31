#include "store/epoch.h"

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct s_marker {
    char epoch[STORE_EPOCH_LEN + 1];
    uint64_t seq;
    uint64_t dev, ino;
    uint64_t born; /* birth time of the file (ns), 0 where the filesystem has none */
} s_marker_t;

/* Identity of the LMDB file: device, inode and birth time. A copy put in its
 * place gets a new birth time even when the filesystem reuses the inode. */
static int s_file_id(store_t *s, uint64_t *dev, uint64_t *ino, uint64_t *born)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/store/data.mdb", store_dir(s));
    struct statx st;
    if (statx(AT_FDCWD, path, 0, STATX_INO | STATX_BTIME, &st) != 0)
        return -errno;
    *dev = (uint64_t)st.stx_dev_major << 32 | st.stx_dev_minor;
    *ino = (uint64_t)st.stx_ino;
    *born = (st.stx_mask & STATX_BTIME)
                ? (uint64_t)st.stx_btime.tv_sec * 1000000000u + st.stx_btime.tv_nsec
                : 0;
    return HS_OK;
}

static bool s_read_marker(store_t *s, s_marker_t *m)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/epoch", store_dir(s));
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char ep[64];
    m->born = 0;
    int n = fscanf(f, "hsync-epoch 1 %63s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, ep,
                   &m->seq, &m->dev, &m->ino, &m->born);
    fclose(f);
    if (n < 4 || strlen(ep) != STORE_EPOCH_LEN)
        return false;
    memcpy(m->epoch, ep, STORE_EPOCH_LEN + 1);
    return true;
}

static int s_write_marker(store_t *s, const s_marker_t *m)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/epoch", store_dir(s));
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "hsync-epoch 1 %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", m->epoch,
                     m->seq, m->dev, m->ino, m->born);
    int err = HS_OK;
    if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0)
        err = HS_EIO;
    close(fd);
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err)
        unlink(tmp);
    return err;
}

int store_epoch_get(store_txn_t *t, char out[STORE_EPOCH_LEN + 1])
{
    return store_meta_get(t, "epoch", out, STORE_EPOCH_LEN + 1);
}

typedef struct s_check {
    s_marker_t marker;
    bool have_marker;
    const char *why;
    char epoch[STORE_EPOCH_LEN + 1];
    uint64_t seq;
} s_check_t;

static int s_check_txn(store_txn_t *t, void *ctx)
{
    s_check_t *c = ctx;
    c->why = NULL;
    c->seq = store_log_head(t);
    int err = store_epoch_get(t, c->epoch);
    if (err && err != HS_ENOTFOUND)
        return err;
    if (err == HS_ENOTFOUND)
        c->why = "new store";
    else if (!c->have_marker)
        c->why = "the epoch marker is missing (store copied or restored?)";
    else if (strcmp(c->marker.epoch, c->epoch) != 0)
        c->why = "the store's epoch is not the one its marker records (store copied or restored)";
    else if (c->seq < c->marker.seq)
        c->why = "the store's change log is behind its marker (store restored from an older copy)";
    if (!c->why)
        return HS_OK;
    uint8_t r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return HS_ECRYPTO;
    store_hex(r, sizeof(r), c->epoch);
    return store_meta_put(t, "epoch", c->epoch);
}

int store_epoch_check(store_t *s, char out[STORE_EPOCH_LEN + 1], const char **why)
{
    s_check_t c;
    memset(&c, 0, sizeof(c));
    c.have_marker = s_read_marker(s, &c.marker);
    uint64_t dev = 0, ino = 0, born = 0;
    int err = s_file_id(s, &dev, &ino, &born);
    if (err)
        return err;
    bool moved = c.have_marker && (c.marker.dev != dev || c.marker.ino != ino ||
                                   (c.marker.born && born && c.marker.born != born));
    if (moved)
        c.have_marker = false; /* a different file: a copy or a restore */
    err = store_write(s, s_check_txn, &c);
    if (err)
        return err;
    if (moved && c.why)
        c.why = "the store file is not the one its marker records (store copied or restored)";
    s_marker_t m = {.seq = c.seq, .dev = dev, .ino = ino, .born = born};
    memcpy(m.epoch, c.epoch, sizeof(m.epoch));
    err = s_write_marker(s, &m);
    if (err)
        return err;
    memcpy(out, c.epoch, STORE_EPOCH_LEN + 1);
    *why = c.why;
    return HS_OK;
}

static int s_head_txn(store_txn_t *t, void *ctx)
{
    s_check_t *c = ctx;
    c->seq = store_log_head(t);
    return store_epoch_get(t, c->epoch);
}

int store_epoch_mark(store_t *s)
{
    s_check_t c;
    memset(&c, 0, sizeof(c));
    int err = store_read(s, s_head_txn, &c);
    if (err)
        return err;
    s_marker_t old;
    if (s_read_marker(s, &old) && old.seq == c.seq && !strcmp(old.epoch, c.epoch))
        return HS_OK;
    uint64_t dev, ino, born;
    err = s_file_id(s, &dev, &ino, &born);
    if (err)
        return err;
    s_marker_t m = {.seq = c.seq, .dev = dev, .ino = ino, .born = born};
    memcpy(m.epoch, c.epoch, sizeof(m.epoch));
    return s_write_marker(s, &m);
}
