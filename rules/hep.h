/*
 * hep.h - hierarchy editable properties: data managed from above.
 *
 * Items, security records and packages replicate down and, by default, the
 * copy from above overwrites the child's: every property is locked. The node
 * where an object is managed (its origin) may mark top-level properties of
 * that object, or of a whole class, editable below:
 *
 *   hsync hep set -d PARENT (GUID|CLASS) PROPERTY editable|locked
 *
 * writes a system.hep record (origin the node, guid derived from origin and
 * target, body {"props":{PROPERTY:"editable"|"locked"},"target":T}) that
 * travels down with the "system" rule. A setting for the object's guid
 * overrides one for its class.
 *
 * On a node below (the data's origin is not this node):
 *   - a local edit that changes a locked property, and any local delete, is
 *     refused (HS_ELOCKED) with the property and the node to ask;
 *   - an edit of editable properties is kept: the edited values are recorded
 *     (STORE_T_HEP, key guid(16) -> [[prop, present, value]...]) and laid
 *     over every later copy from above, differential or complete, while every
 *     other property follows the origin. When the origin locks a property
 *     again, the local value is dropped at the next copy that arrives.
 *
 * Primary-user associations (assoc.*) are stricter: they are set on the top
 * of the hierarchy only and never edited below (rules_hep_parent_only).
 */
#ifndef RULES_HEP_H
#define RULES_HEP_H

#include "rules/rules.h"

#define RULES_HEP_CLASS "system.hep"
#define RULES_HEP_PROP_MAX 64

/* Family handlers (see rules_family_t). */
int rules_hep_apply(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, const store_obj_t *cur,
                    rules_result_t *res);
int rules_hep_local(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o, const store_obj_t *cur,
                    rules_result_t *res);
int rules_hep_parent_only(store_txn_t *t, const rules_ctx_t *c, store_obj_t *o,
                          const store_obj_t *cur, rules_result_t *res);

/* May the HEP records of family `cls` carry settings (item, security, package)? */
bool rules_hep_family(const char *cls);

/*
 * Set PROPERTY of target (a guid string of an object managed here, or a
 * class of a HEP family) editable or locked, as a local write on node self
 * (write txn). *out receives the record's guid. HS_EINVAL with why for a
 * target or property that cannot carry a setting (why: words for the user).
 */
int rules_hep_set(store_txn_t *t, const char *self, const char *target, const char *prop,
                  bool editable, store_guid_t *out, char *why, size_t whylen);

/* Is top-level property prop of o editable here (by its origin's records)? */
int rules_hep_editable(store_txn_t *t, const store_obj_t *o, const char *prop, size_t plen,
                       bool *editable);

/* Properties of o edited here and kept over copies from above (a
 * comma-separated list in out, "" if none). */
int rules_hep_overrides(store_txn_t *t, const store_guid_t *g, char *out, size_t outlen);

#endif
