/*
 * hs_error.h - the one error vocabulary of hsync.
 *
 * Every function that can fail returns an int: HS_OK (0) on success, a negative
 * code otherwise. Codes in the errno range are -errno (HS_ENOMEM == -ENOMEM).
 * hsync's own codes live in a reserved range below HS_ERR_BASE so they never
 * collide with errno values. LMDB, ZeroMQ, OpenSSL and msgpack errors are
 * translated at the boundary of the module that calls them.
 *
 * hs_strerror() never returns NULL and the string is static.
 */
#ifndef HS_ERROR_H
#define HS_ERROR_H

#include <errno.h>

#define HS_ERR_BASE (-30000)

enum hs_error {
    HS_OK = 0,
    HS_ENOMEM = -ENOMEM,
    HS_EINVAL = -EINVAL,
    HS_ENOENT = -ENOENT,
    HS_EEXIST = -EEXIST,
    HS_EIO = -EIO,
    HS_EACCES = -EACCES,
    HS_ENOSPC = -ENOSPC,
    HS_ETIMEDOUT = -ETIMEDOUT,
    HS_EAGAIN = -EAGAIN,

    HS_ENOTFOUND = HS_ERR_BASE - 1,   /* object, key or entry does not exist */
    HS_EMALF = HS_ERR_BASE - 2,       /* malformed input (frame, record, token, JSON) */
    HS_ECLASS = HS_ERR_BASE - 3,      /* unknown or invalid class name */
    HS_EGUID = HS_ERR_BASE - 4,       /* not a guid */
    HS_ETOOBIG = HS_ERR_BASE - 5,     /* input over a documented size limit */
    HS_EMAPFULL = HS_ERR_BASE - 6,    /* LMDB map full and could not grow */
    HS_ESTORE = HS_ERR_BASE - 7,      /* other LMDB failure */
    HS_ENOTNODE = HS_ERR_BASE - 8,    /* folder is not an hsync node */
    HS_ENOBROKER = HS_ERR_BASE - 9,   /* no broker runs for this node */
    HS_ETOPO = HS_ERR_BASE - 10,      /* topology rule violated */
    HS_ETOKEN = HS_ERR_BASE - 11,     /* token invalid, tampered, used or expired */
    HS_ETRUST = HS_ERR_BASE - 12,     /* peer key not trusted */
    HS_ECRYPTO = HS_ERR_BASE - 13,    /* OpenSSL / CURVE failure */
    HS_ETRANSPORT = HS_ERR_BASE - 14, /* ZeroMQ failure */
    HS_EPROTO = HS_ERR_BASE - 15,     /* protocol violation by a peer */
    HS_ELOCKED = HS_ERR_BASE - 16,    /* property locked by the parent (HEP) */
    HS_EDIRECTION = HS_ERR_BASE - 17, /* family may not flow that way */
    HS_ECONFLICT = HS_ERR_BASE - 18,  /* concurrent change, retry */
    HS_EDISABLED = HS_ERR_BASE - 19,  /* rule or link disabled */
    HS_EPEER = HS_ERR_BASE - 20,      /* peer reported an error */
    HS_EREADERS = HS_ERR_BASE - 21,   /* LMDB reader table full (MDB_READERS_FULL) */
    HS_EKEYS = HS_ERR_BASE - 22,      /* the node's key file is missing, malformed or foreign */
    HS_EKEYSTYPE = HS_ERR_BASE - 23,  /* DIR/keys is not a regular file (FIFO, symlink...) */
    HS_EKEYSMODE = HS_ERR_BASE - 24,  /* DIR/keys is readable or writable by others */
    HS_EKEYSOWNER = HS_ERR_BASE - 25, /* DIR/keys belongs to another user */
    HS_EKEYSPAIR = HS_ERR_BASE - 26,  /* curve_secret in DIR/keys does not match curve_public */
};

/* Static, human-readable text for an hsync error code (or any -errno). */
const char *hs_strerror(int err);

#endif
