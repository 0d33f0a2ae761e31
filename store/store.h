/*
 * store.h - the node's replicated data in one LMDB environment.
 *
 * A node folder DIR holds DIR/store/ (the LMDB environment). Every replicated
 * thing is an object (store_obj_t): guid, class, meta and a msgpack body. Every
 * committed change of an object appends to the node's change log under a new
 * 64-bit sequence number, in the same transaction as the object itself, so
 * object and log never disagree. Deletes leave tombstones.
 *
 * The on-disk layout (sub-databases, key and value formats) is written down at
 * the top of store/store.c.
 *
 * Threading: a store_t may be shared by threads only with external locking;
 * hsync uses one store_t per process. Several processes may open the same
 * folder at once: LMDB serialises writers and readers never block.
 *
 * Memory: pointers inside a store_obj_t filled by the store (cls, origin,
 * owner, keys, body) point into LMDB's map and stay valid until the
 * transaction that produced them ends. Copy what you keep.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include "store/guid.h"
#include "store/hs_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_CLASS_MAX 64        /* bytes in a class name */
#define STORE_NAME_MAX 64         /* bytes in a node name */
#define STORE_BODY_MAX (1u << 20) /* bytes in an encoded body (1 MiB) */
#define STORE_KEYS_MAX 4096       /* bytes in an encoded resource-key map */
#define STORE_HASH_LEN 32         /* SHA-256 */

/* store_obj_t.flags */
#define STORE_OBJ_TOMBSTONE 0x1u /* deleted; body is empty */
#define STORE_OBJ_IMPORTED 0x2u  /* source "imported" (AD import, data connector) */

typedef struct store store_t;
typedef struct store_txn store_txn_t;

/* rtime, registered: when the guid was first registered (put or imported)
 * on its origin node; meta (not content), replicated with the object. A put
 * keeps the earliest of the stored value and the one given (0 = the stored
 * one; for a new guid, the put's mtime). 0 when read from a record or a
 * frame written before hsync 0.10 (unknown). */
typedef struct store_obj {
    store_guid_t guid;
    const char *cls;              /* NUL-terminated class name, e.g. "resource.computer" */
    const char *origin;           /* node that created it; NULL on put = this node */
    const char *owner;            /* owning node; NULL on put = this node */
    uint64_t seq;                 /* local change sequence; set by put */
    uint64_t mtime;               /* last changed, ms since the epoch; 0 on put = now */
    uint64_t rtime;               /* registered, ms since the epoch (below) */
    uint8_t hash[STORE_HASH_LEN]; /* content hash; set by put */
    uint32_t flags;               /* STORE_OBJ_* */
    store_guid_t resource;        /* data-class rows: owning resource; zero otherwise */
    const uint8_t *keys;          /* resource keys: canonical msgpack map str->str, or NULL */
    size_t keys_len;
    const uint8_t *body; /* canonical msgpack map (see store_body_check) */
    size_t body_len;
} store_obj_t;

/* ---- environment ------------------------------------------------------ */

#define STORE_OPEN_CREATE 0x1u /* create DIR/store if missing (hsync init) */

/*
 * Open the store of node folder dir. The map starts at HSYNC_MAP_SIZE bytes
 * (environment; default 64 GiB of address space) and grows by doubling when full, up to
 * HSYNC_MAP_MAX (default 1 TiB of address space; disk use follows the data).
 * Returns HS_OK and an owned *out, HS_ENOTNODE if dir holds no store and
 * STORE_OPEN_CREATE is not set, HS_ENOENT if dir does not exist, or HS_ESTORE.
 */
int store_open(const char *dir, unsigned flags, store_t **out);

/* Close and free; accepts NULL and *s == NULL; sets *s to NULL. */
void store_close(store_t **s);

/*
 * LMDB reader slots. Every read transaction holds a slot in the lock file's
 * reader table (STORE_MAX_READERS slots, shared by every process that has the
 * store open). A process killed during a read (kill -9, a crash) leaves its
 * slot behind: it pins the pages of its snapshot, so the file grows, and the
 * table fills up. store_open frees the slots of dead processes, and so does
 * store_txn_begin before it reports the table full (HS_EREADERS). The broker
 * calls store_readers_check at start and in housekeeping. *cleared (may be
 * NULL) is the number of slots freed now, plus those store_open freed and
 * that were not reported yet. HS_OK or HS_ESTORE.
 *
 * STORE_MAX_READERS: a read transaction is held by each running command that
 * reads (one each), and by the broker (its loop, each complete run's
 * snapshot, the status page): a few dozen at most in normal work. 1024 gives
 * room for a thousand scripted commands at once; each slot costs 64 bytes of
 * the lock file, and writers only scan up to the highest slot in use. The
 * size is fixed by the first process to open the store: a store already open
 * with a smaller table keeps it until every process has closed it.
 */
#define STORE_MAX_READERS 1024
int store_readers_check(store_t *s, unsigned *cleared);
/* Slots in use (stale ones included) and the table's size, for reports. */
int store_readers_info(store_t *s, unsigned *used, unsigned *max);

/*
 * The node's secrets (its CURVE secret key, its token MAC key) live in
 * DIR/keys, mode 0600, outside the LMDB file, so that a copy, a backup or an
 * mdb_dump of the store carries no secret. Format (text):
 *     hsync-keys 1
 *     NAME VALUE          one line per secret
 * NAME is 1 to 32 of [a-z_], VALUE 1 to STORE_SECRET_MAX printable bytes
 * without space. The file is replaced whole: a temporary file in DIR,
 * fsync, rename over DIR/keys, fsync of DIR.
 *
 * Stores written before hsync 0.10 kept curve_secret and token_key in the
 * meta table: store_open moves them to DIR/keys and deletes them from meta
 * (HS_EKEYS if DIR/keys already holds other values for them).
 */
#define STORE_SECRET_MAX 128
/* Copy secret name into out (outlen bytes incl. NUL). HS_ENOTFOUND when
 * DIR/keys or the name is missing, HS_EKEYS when the file is malformed,
 * HS_EKEYSTYPE when it is not a regular file (opened without blocking or
 * following a symlink), HS_EKEYSOWNER when neither this process's user nor
 * root owns it, HS_EKEYSMODE when it has group/other bits, HS_ETOOBIG when
 * the value does not fit. */
int store_secret_get(const store_t *s, const char *name, char *out, size_t outlen);
/* Set n secrets (names[i] = values[i]), keeping the file's other entries. */
int store_secrets_put(store_t *s, const char *const *names, const char *const *values, size_t n);
/* Move secrets an older version kept in meta to DIR/keys (meta curve_public
 * is copied, curve_secret and token_key moved). store_open calls it; HS_OK
 * when there was nothing to move. */
int store_secrets_migrate(store_t *s);

/* Path of the node folder, as given to store_open. Borrowed. */
const char *store_dir(const store_t *s);

/* Space of a node folder: what its store takes on disk (allocated blocks of
 * DIR/store/: LMDB files may be sparse) and what its file system has left
 * for an unprivileged writer. Needs no open store. */
typedef struct store_disk {
    uint64_t sd_store_bytes;
    uint64_t sd_free_bytes;
    uint64_t sd_total_bytes;
    bool sd_low; /* under STORE_DISK_LOW free: writes may soon fail */
} store_disk_t;
#define STORE_DISK_LOW ((uint64_t)1 << 30)
/* HS_OK, or HS_ENOENT / HS_EIO when the file system cannot be asked. */
int store_disk(const char *dir, store_disk_t *out);

/* ---- transactions ----------------------------------------------------- */

/*
 * Begin a transaction. The transaction keeps a sticky error: after the first
 * failure every later call on it does nothing and returns that error;
 * store_txn_commit reports it and aborts. Every transaction must end with
 * store_txn_commit or store_txn_abort; both free it and NULL the pointer.
 */
int store_txn_begin(store_t *s, bool write, store_txn_t **out);
/* HS_OK, the sticky error, HS_EMAPFULL (map limit), HS_ENOSPC (the node
 * folder's disk is full), HS_EIO. */
int store_txn_commit(store_txn_t **t);
void store_txn_abort(store_txn_t **t);
int store_txn_error(const store_txn_t *t);
store_t *store_txn_store(store_txn_t *t);

/* Run fn(t, ctx) in a write (or read) transaction and commit. If the map is
 * full the transaction is aborted, the map grows and fn runs again, so fn must
 * produce the same effect when repeated. Returns fn's error or the commit's. */
typedef int (*store_txn_fn)(store_txn_t *t, void *ctx);
int store_write(store_t *s, store_txn_fn fn, void *ctx);
int store_read(store_t *s, store_txn_fn fn, void *ctx);

/* Grow the map (double it, up to HSYNC_MAP_MAX). HS_EMAPFULL when at the
 * limit or while another transaction of this process is open (LMDB cannot
 * remap under it). store_txn_begin answers HS_EAGAIN when another process
 * grew the map while this one has transactions open: retry after they end. */
int store_grow(store_t *s);

/* ---- objects ---------------------------------------------------------- */

/*
 * Insert or replace an object. Validates class (store_class_check), body and
 * keys (canonical msgpack), sizes; fills o->seq, o->hash, o->rtime and, when
 * zero or NULL, o->mtime, o->origin and o->owner (pointing at the node name, or
 * "local" before the node has one). If the stored object already has the
 * same content hash, owner, flags and registration time, nothing is
 * written and *changed is false (changed may be NULL). A put over a tombstone
 * revives the object. Errors: HS_ECLASS, HS_EMALF, HS_ETOOBIG, HS_EINVAL
 * (dataclass row without resource), HS_EMAPFULL, HS_ESTORE.
 */
int store_put(store_txn_t *t, store_obj_t *o, bool *changed);

/* store_put with options (0 = store_put):
 *  STORE_PUT_NEWER    write nothing (HS_OK, *changed false) if the stored
 *                     object, tombstone included, has a later mtime than o
 *                     (o->mtime 0 counts as now): "newest wins" in one lookup,
 *                     instead of store_get followed by store_put;
 *  STORE_PUT_CHECKED  the caller has just run store_obj_check(o) and got HS_OK:
 *                     skip the second validation. Never set it for unchecked
 *                     input: the record would be written unvalidated.
 * A receiver applying objects by mtime calls
 *   store_put_ex(t, o, STORE_PUT_NEWER | STORE_PUT_CHECKED, &changed)
 * after store_obj_check(o) == HS_OK. When NEWER skips the write, o->hash,
 * o->seq and o->mtime are left as the caller set them. */
#define STORE_PUT_NEWER 0x1u
#define STORE_PUT_CHECKED 0x2u
/*  STORE_PUT_FORCE    write (new seq, a change-log entry) even when the
 *                     stored object is the same: a decision that must reach
 *                     the peers that hold an older copy. */
#define STORE_PUT_FORCE 0x4u
int store_put_ex(store_txn_t *t, store_obj_t *o, unsigned flags, bool *changed);

/* The checks store_put makes before writing, without a transaction: class,
 * body, keys, sizes, names, flags, resource of data-class rows. Use it to
 * skip bad input, since a failed store_put poisons its transaction. */
int store_obj_check(const store_obj_t *o);

/* Turn a live object into a tombstone (mtime 0 = now). HS_ENOTFOUND if it
 * does not exist or is already deleted. */
int store_delete(store_txn_t *t, const store_guid_t *g, uint64_t mtime);

/* Record a tombstone for a guid this store does not hold at all (a delete
 * that arrived before, or instead of, the object): o's guid, class, owner,
 * origin, mtime (0 = now) and registration time are kept, body and keys are
 * not. A change-log entry (a delete) takes it on like any other. HS_EEXIST
 * if the guid is stored, live or deleted (use store_delete). */
int store_put_tombstone(store_txn_t *t, const store_obj_t *o);

/* Read an object (tombstones included: check STORE_OBJ_TOMBSTONE).
 * HS_ENOTFOUND if absent. */
int store_get(store_txn_t *t, const store_guid_t *g, store_obj_t *out);

/* Diagnostics and tests only: replace a live object's body in place with
 * no change-log entry and the same seq and mtime, as silent corruption or a
 * change that bypassed replication would; digests follow the new content.
 * Data verification (rules --verify) is what finds such objects. */
int store_debug_rewrite(store_txn_t *t, const store_guid_t *g, const uint8_t *body, size_t len);

/* Remove an object and its tombstone completely (tombstone purge). */
int store_purge(store_txn_t *t, const store_guid_t *g);

/* Called once per object; return 0 to go on, > 0 to stop (store_scan then
 * returns HS_OK), < 0 to stop and return that error. */
typedef int (*store_obj_cb)(void *ctx, const store_obj_t *o);

#define STORE_SCAN_TOMBSTONES 0x1u /* include deleted objects */

/*
 * Visit objects whose class starts with prefix ("" or NULL = all) and, if
 * owner is not NULL, whose owner equals it, in (class, guid) order. To resume,
 * pass the class and guid of the last object seen as after_cls/after_guid
 * (both NULL to start at the beginning).
 */
int store_scan(store_txn_t *t, const char *prefix, const char *owner, unsigned flags,
               const char *after_cls, const store_guid_t *after_guid, store_obj_cb cb, void *ctx);

/* Visit live resources whose key `name` equals `value`. */
int store_find_by_key(store_txn_t *t, const char *name, const char *value, store_obj_cb cb,
                      void *ctx);

/* ---- change log ------------------------------------------------------- */

#define STORE_OP_PUT 1
#define STORE_OP_DEL 2

typedef struct store_change {
    uint64_t seq;
    int op; /* STORE_OP_* */
    store_guid_t guid;
    const char *cls;    /* borrowed, NUL-terminated */
    const char *owner;  /* borrowed */
    const char *origin; /* borrowed */
    uint32_t flags;     /* STORE_OBJ_* of the object after the change */
    uint64_t mtime;
    uint8_t hash[STORE_HASH_LEN];
} store_change_t;

typedef int (*store_change_cb)(void *ctx, const store_change_t *c);

/* Visit change-log entries with seq > after, in order: the latest change of
 * each object only. (A rewrite or delete leaves the previous entry in place,
 * superseded; scans skip it and store_log_compact removes it later.) */
int store_log_scan(store_txn_t *t, uint64_t after, store_change_cb cb, void *ctx);

/* The same, deciding from each entry what it says before its object is read:
 * want is called for every entry with seq > after, superseded ones too, and
 * returns 1 to have cb called if the entry is its object's latest change, 0
 * to skip it, more than 1 to stop the scan (or a negative HS_ error). A scan
 * that wants few of many entries then reads few objects; count and cap what
 * it examines in want. */
typedef int (*store_change_want_cb)(void *ctx, const store_change_t *c);
int store_log_scan_want(store_txn_t *t, uint64_t after, store_change_want_cb want,
                        store_change_cb cb, void *ctx);

/* Highest sequence number committed (0 for an empty store). */
uint64_t store_log_head(store_txn_t *t);

/* Entries the change log holds now, superseded ones included (what the log
 * takes on disk; store_log_count counts changes). 0 if LMDB cannot tell. */
uint64_t store_log_entries(store_txn_t *t);

/*
 * Retention. store_log_trim removes up to max (at most 1024) log entries
 * with seq <= upto, oldest first: a PUT entry only leaves the log (the object
 * stays); a DEL entry also purges its tombstone. store_tombstones_expire
 * purges, the same way, tombstones deleted before cutoff_ms whatever their
 * seq (the lifetime cap that keeps a dead peer from holding them forever).
 * Both raise the log floor to the highest seq removed: a peer whose
 * watermark is below the floor may have missed a change and must be
 * reconciled. *removed counts what went.
 */
int store_log_trim(store_txn_t *t, uint64_t upto, size_t max, size_t *removed);
int store_tombstones_expire(store_txn_t *t, uint64_t cutoff_ms, size_t max, size_t *removed);
uint64_t store_log_floor(store_txn_t *t); /* 0 while nothing was removed */

/*
 * Remove superseded change-log entries (the object changed again, or is
 * gone), off the write path: looks at up to scan_max entries after seq *from
 * and removes up to remove_max (at most STORE_COMPACT_MAX) of them; *from is
 * set to where the next call goes on (0 once the end of the log is reached:
 * start over). *removed counts them. The log floor does not move: the
 * object's later entry, or its absence, tells a peer all the removed one did.
 * Writes nothing when nothing is superseded. (hsync before 0.9 removed the
 * entry at once and must not open a store written since: store.c.)
 */
#define STORE_COMPACT_MAX 4096
int store_log_compact(store_txn_t *t, uint64_t *from, size_t scan_max, size_t remove_max,
                      size_t *removed);

/* Number of change-log entries with seq > after, as store_log_scan visits
 * them (one per changed object). */
int store_log_count(store_txn_t *t, uint64_t after, uint64_t *out);

/* ---- digests and counts ----------------------------------------------- */

/*
 * Count and digest of live objects whose class starts with prefix (NULL or ""
 * = all) and, if owner is not NULL, whose owner equals it. The digest is
 * SHA-256 over the count and the sum (mod 2^256) of SHA-256(guid || hash) of
 * every such object: independent of insertion order, maintained incrementally
 * per (class, owner), so this call costs O(number of classes), not O(objects).
 */
int store_digest(store_txn_t *t, const char *prefix, const char *owner, uint64_t *count,
                 uint8_t digest[STORE_HASH_LEN]);

/* The same digest computed by scanning every object (cross-check, O(n)). */
int store_digest_scan(store_txn_t *t, const char *prefix, const char *owner, uint64_t *count,
                      uint8_t digest[STORE_HASH_LEN]);

/* Visit (class, owner, live count) aggregates; for per-family counts. */
typedef int (*store_count_cb)(void *ctx, const char *cls, const char *owner, uint64_t count);
int store_counts(store_txn_t *t, store_count_cb cb, void *ctx);

/* ---- validation (pure functions, fuzzed) ------------------------------ */

/* A class is a dotted lowercase name ([a-z0-9_]+ parts, at most
 * STORE_CLASS_MAX bytes) of a known family: item.*, security.*, resource.*,
 * dataclass.*, package or package.*, event.*, system.*, assoc.*. HS_OK or HS_ECLASS. */
int store_class_check(const char *cls);

/* Family of a class: the part before the first dot ("package" for package). */
size_t store_class_family(const char *cls, char *out, size_t outlen);

/* Canonical msgpack: well formed, nesting at most 32, top level a map, map
 * keys are strings, strictly increasing (bytewise, shorter first on a common
 * prefix) at every level, shortest encodings for ints and lengths, no trailing
 * bytes. The top-level map counts as level 0. HS_OK, HS_EMALF, or HS_ETOOBIG
 * over STORE_BODY_MAX. */
int store_body_check(const uint8_t *buf, size_t len);

/* Resource keys: canonical map of string -> string. HS_OK, HS_EMALF, or
 * HS_ETOOBIG over STORE_KEYS_MAX. */
int store_keys_check(const uint8_t *buf, size_t len);

/* Content hash: SHA-256 over class, resource, keys and body (store.c says how). */
void store_obj_hash(const store_obj_t *o, uint8_t out[STORE_HASH_LEN]);

/* ---- record codec (pure, fuzzed) -------------------------------------- */

/* Decode a stored object record; pointers point into buf. HS_OK or HS_EMALF. */
int store_record_decode(const uint8_t *buf, size_t len, store_obj_t *out);
/* Size of the encoded record of o (without guid, which is the key). */
size_t store_record_size(const store_obj_t *o);
/* Encode o into buf (store_record_size bytes). Returns bytes written. */
size_t store_record_encode(const store_obj_t *o, uint8_t *buf);

/* ---- small tables for the other modules ------------------------------- */

enum store_table {
    STORE_T_META,    /* node identity and settings: name, listen, http, keys... */
    STORE_T_PEERS,   /* topology: links to parent, children, destinations */
    STORE_T_TRUST,   /* trusted public keys */
    STORE_T_TOKENS,  /* invite tokens issued (single use) */
    STORE_T_RULES,   /* replication rules */
    STORE_T_MARKS,   /* per-peer, per-rule watermarks */
    STORE_T_OUTBOX,  /* urgent events queued per peer */
    STORE_T_HISTORY, /* replication runs */
    STORE_T_EVENTS,  /* hierarchy events raised and received */
    STORE_T_HEP,     /* hierarchy editable properties */
    STORE_T__COUNT
};

/* Borrowed value, valid until the transaction ends. HS_ENOTFOUND if absent. */
int store_kv_get(store_txn_t *t, enum store_table tb, const void *key, size_t klen,
                 const void **val, size_t *vlen);
int store_kv_put(store_txn_t *t, enum store_table tb, const void *key, size_t klen, const void *val,
                 size_t vlen);
/* HS_ENOTFOUND if absent. */
int store_kv_del(store_txn_t *t, enum store_table tb, const void *key, size_t klen);

typedef int (*store_kv_cb)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen);
/* Visit entries whose key starts with prefix (plen 0 = all), in key order. */
int store_kv_scan(store_txn_t *t, enum store_table tb, const void *prefix, size_t plen,
                  store_kv_cb cb, void *ctx);

/* Convenience for NUL-terminated string values in STORE_T_META.
 * store_meta_get copies into out (outlen bytes incl. NUL); HS_ENOTFOUND,
 * HS_ETOOBIG if it does not fit. */
int store_meta_get(store_txn_t *t, const char *key, char *out, size_t outlen);
int store_meta_put(store_txn_t *t, const char *key, const char *value);

/* This node's name (copied at open from meta "name"; "" before init). */
const char *store_node_name(const store_t *s);

#endif
