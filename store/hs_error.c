#include "store/hs_error.h"

#include <string.h>

static const struct {
    int code;
    const char *text;
} s_errors[] = {
    {HS_ENOTFOUND, "not found"},
    {HS_EMALF, "malformed input"},
    {HS_ECLASS, "unknown or invalid class"},
    {HS_EGUID, "not a guid (expected 8-4-4-4-12 hex digits)"},
    {HS_ETOOBIG, "input is over the size limit"},
    {HS_EMAPFULL, "the store is full and could not grow (raise HSYNC_MAP_MAX or free disk)"},
    {HS_ENOSPC, "no space left on the disk holding the node folder (free some and retry)"},
    {HS_ESTORE, "store (LMDB) failure"},
    {HS_ENOTNODE, "not an hsync node folder (run 'hsync init' first)"},
    {HS_ENOBROKER, "no broker is running for this node (start it with 'hsync serve')"},
    {HS_ETOPO, "topology rule violated"},
    {HS_ETOKEN, "invalid, tampered, used or expired token"},
    {HS_ETRUST, "peer key is not trusted"},
    {HS_ECRYPTO, "cryptographic failure"},
    {HS_ETRANSPORT, "transport failure"},
    {HS_EPROTO, "protocol violation"},
    {HS_ELOCKED, "property is locked by the parent"},
    {HS_EDIRECTION, "this family does not flow in that direction"},
    {HS_ECONFLICT, "concurrent change, retry"},
    {HS_EDISABLED, "disabled"},
    {HS_EPEER, "the peer reported an error"},
    {HS_EREADERS, "the store's reader table is full: 1024 read transactions are open on it at "
                  "once (hsync commands or brokers still reading); wait for them to finish or stop "
                  "them, then retry (slots of killed processes are freed by themselves)"},
    {HS_EKEYS, "the node's key file (DIR/keys) is missing, malformed or does not belong to this "
               "store: restore this node's keys file from its backup"},
    {HS_EKEYSTYPE,
     "the node's key file (DIR/keys) is not a regular file (a symlink, FIFO, device or "
     "folder): remove it and restore this node's keys file from its backup"},
    {HS_EKEYSMODE,
     "the node's key file (DIR/keys) can be read or written by other users: chmod 600 "
     "DIR/keys (and make the node new keys if others may have read them)"},
    {HS_EKEYSOWNER, "the node's key file (DIR/keys) belongs to another user: run hsync as the user "
                    "who owns the node folder, or chown DIR/keys to the user that runs hsync"},
    {HS_EKEYSPAIR,
     "the node's key file (DIR/keys) holds a curve_secret that is not the secret of "
     "its curve_public (edited, or mixed from two nodes): restore this node's keys file "
     "from its backup"},
};

const char *hs_strerror(int err)
{
    if (err == HS_OK)
        return "success";
    for (size_t i = 0; i < sizeof(s_errors) / sizeof(s_errors[0]); i++)
        if (s_errors[i].code == err)
            return s_errors[i].text;
    if (err < 0 && err > HS_ERR_BASE)
        return strerror(-err);
    return "unknown error";
}
