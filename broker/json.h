/*
 * json.h - JSON (jansson) at the command-line and HTTP edge <-> canonical msgpack.
 *
 * hsync stores and replicates object bodies as canonical msgpack (see
 * store_body_check in store/store.h). Users see and type JSON. This module is
 * the one translation between the two:
 *
 *   JSON text --broker_json_parse--> json_t --broker_json_to_body--> msgpack
 *   msgpack --broker_json_from_msgpack--> json_t --json_dumps--> JSON text
 *
 * Canonical encoding written by broker_json_to_body / broker_json_to_keys:
 *   - maps have their keys sorted bytewise (memcmp over the common length,
 *     then the shorter key first), at every level;
 *   - integers use msgpack's shortest form (fixint, then uint8/int8, ...;
 *     non-negative values always use the unsigned forms);
 *   - reals are always float64; strings are str (shortest length prefix);
 *   - arrays, true, false and nil map one to one;
 *   - nesting (maps and arrays, the top-level map counting as 1) is at most
 *     BROKER_JSON_DEPTH_MAX.
 * Two JSON texts that differ only in key order or whitespace therefore encode
 * to the same bytes and get the same content hash.
 *
 * broker_json_from_msgpack decodes untrusted bytes (a record from a peer, a
 * corrupted store): every length is checked against the bytes left, nesting is
 * bounded, and anything malformed returns HS_EMALF. It never aborts.
 *
 * Threading: all functions are reentrant. No function prints.
 */
#ifndef BROKER_JSON_H
#define BROKER_JSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define BROKER_JSON_DEPTH_MAX 32 /* nesting of maps and arrays, top level = 1 */

/*
 * Parse a JSON text of len bytes (no NUL needed) into *out (owned; free with
 * json_decref). Any JSON value is accepted at the top level; duplicate keys in
 * an object and NUL characters in strings are refused.
 * On failure returns HS_EMALF and, if err is not NULL, writes a sentence into
 * err (errlen bytes) that says where:
 *   "<what> is not valid JSON at line 1 column 9: <jansson's reason>"
 * or, with what NULL (one NDJSON line), "not valid JSON at column 9: <reason>".
 * HS_ENOMEM if out of memory.
 */
int broker_json_parse(const char *text, size_t len, const char *what, json_t **out, char *err,
                      size_t errlen);

/*
 * Encode j, which must be a JSON object, as a canonical msgpack body into a
 * malloc'd buffer (*out, *len; caller frees). The result passes
 * store_body_check.
 * Errors: HS_EMALF (not an object, or nested deeper than
 * BROKER_JSON_DEPTH_MAX), HS_ETOOBIG (encoding over STORE_BODY_MAX bytes),
 * HS_ENOMEM. On error *out is NULL.
 */
int broker_json_to_body(const json_t *j, uint8_t **out, size_t *len);

/*
 * Encode resource keys: j must be an object whose values are all strings.
 * Same contract as broker_json_to_body; the result passes store_keys_check.
 * HS_ETOOBIG above STORE_KEYS_MAX bytes.
 */
int broker_json_to_keys(const json_t *j, uint8_t **out, size_t *len);

/*
 * The same encoders appending to a caller's msgpack_sbuffer (for loops that
 * reuse one buffer, such as bulk import; set sb->size = 0 to reuse it). On
 * error sb->size is restored to its value at entry.
 */
int broker_json_pack_body(const json_t *j, msgpack_sbuffer *sb);
int broker_json_pack_keys(const json_t *j, msgpack_sbuffer *sb);

/*
 * Decode exactly len bytes of msgpack (one value, no trailing bytes) into a
 * new JSON value *out (owned; json_decref). Maps must have string keys; str
 * must be valid UTF-8; bin becomes a base64 string; uint64 above INT64_MAX and
 * ext types are refused; nesting at most BROKER_JSON_DEPTH_MAX.
 * Returns HS_OK, HS_EMALF (malformed or unsupported input) or HS_ENOMEM.
 * On error *out is NULL.
 */
int broker_json_from_msgpack(const uint8_t *buf, size_t len, json_t **out);

#endif
