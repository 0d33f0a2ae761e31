/*
 * epoch.h - store epochs: noticing a store that was restored or copied.
 *
 * Every store has an epoch id (meta "epoch", 32 hex digits) made when it is
 * first checked. Beside the LMDB file, DIR/epoch records the epoch, the
 * highest change sequence seen committed, and the device, inode and birth
 * time of DIR/store/data.mdb:
 *     hsync-epoch 1 <epoch> <seq> <dev> <ino> <birth-ns>
 * A store whose file is not the one recorded (a copy, or a restore put back
 * in its place), whose sequence is lower than recorded (rolled back), or
 * whose epoch differs from the marker's, takes a new epoch. Watermarks are
 * valid only under the epochs they were acknowledged in (replication/marks.h),
 * so a node restored from an old copy is reconciled, not trusted.
 *
 * The marker lives outside LMDB on purpose: a restore or copy of the store
 * brings back the old epoch inside it, but not the marker.
 */
#ifndef STORE_EPOCH_H
#define STORE_EPOCH_H

#include "store/store.h"

#define STORE_EPOCH_LEN 32

/*
 * Check the store against its marker and return the epoch in force (out:
 * STORE_EPOCH_LEN + 1 bytes). When a new epoch was taken, *why says why
 * (static text), else *why is NULL. Writes the marker. HS_OK or an error.
 */
int store_epoch_check(store_t *s, char out[STORE_EPOCH_LEN + 1], const char **why);

/* Record the current change sequence in the marker (cheap; call after
 * commits, for example once a second). */
int store_epoch_mark(store_t *s);

/* The epoch in force, from meta (HS_ENOTFOUND before store_epoch_check). */
int store_epoch_get(store_txn_t *t, char out[STORE_EPOCH_LEN + 1]);

#endif
