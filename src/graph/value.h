/*
 * A decoded message: a generic, immutable value tree (msgpack and JSON map onto it one to one).
 *
 * Requests arrive as msgpack (the wire) or JSON (files, tests); both decoders build this tree so
 * that plugins and the request validator read one representation. Every node and every string
 * of a tree lives in one alk_arena owned by whoever decoded it; the tree is freed with the arena.
 * Strings and binary blobs carry their length and are NUL-terminated for convenience (a string
 * with an embedded NUL is refused by the decoders).
 *
 * Thread rule: a finished tree is immutable and may be read from any thread.
 */
#ifndef ALK_GRAPH_VALUE_H
#define ALK_GRAPH_VALUE_H

#include "core/arena.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum alk_value_kind {
    ALK_VALUE_NIL,
    ALK_VALUE_BOOL,
    ALK_VALUE_INT,   /* fits int64 */
    ALK_VALUE_FLOAT, /* double */
    ALK_VALUE_STR,
    ALK_VALUE_BIN,
    ALK_VALUE_ARRAY,
    ALK_VALUE_MAP,
} alk_value_kind;

typedef struct alk_value alk_value;

typedef struct alk_value_pair {
    const alk_value *key; /* a string for every map this project reads */
    const alk_value *value;
} alk_value_pair;

struct alk_value {
    alk_value_kind kind;
    union {
        bool boolean;
        int64_t integer;
        double number;
        struct {
            const char *bytes; /* NUL-terminated */
            size_t len;
        } str; /* STR and BIN */
        struct {
            const alk_value *const *items;
            size_t len;
        } array;
        struct {
            const alk_value_pair *pairs;
            size_t len;
        } map;
    } as;
};

/* Size limits a decoder enforces before it allocates (a client controls all of these). */
typedef struct alk_value_limits {
    size_t max_depth;  /* nesting of arrays and maps */
    size_t max_items;  /* elements of one array or map */
    size_t max_total;  /* nodes in the whole tree */
    size_t max_string; /* bytes of one string or blob */
} alk_value_limits;

/* Sensible defaults: depth 64, 16 Mi items, 64 Mi nodes, 1 GiB strings. */
void alk_value_limits_default(alk_value_limits *limits);

/*
 * Parses the JSON text `json` (len bytes, borrowed) into a tree allocated in `arena` (borrowed;
 * the tree lives as long as the arena). Integers beyond int64 become floats. Errors give
 * ALK_EINVAL with line and column, or ALK_ELIMIT naming the limit.
 */
int alk_value_from_json(const char *json, size_t len, const alk_value_limits *limits,
                        alk_arena *arena, const alk_value **ret_value, alk_diag *diag);

/*
 * Hand-built trees (model-file readers, request builders, tests). Each constructor returns a node
 * allocated in `arena` (borrowed; the node lives as long as the arena), or NULL when memory runs
 * out. alk_value_new returns a zeroed node of `kind` for the caller to fill; the others copy what
 * they are given (bytes, item pointers, pairs) but not the values those point to.
 */
alk_value *alk_value_new(alk_arena *arena, alk_value_kind kind);
/* A STR or BIN node holding a NUL-terminated copy of `len` bytes. */
const alk_value *alk_value_new_bytes(alk_arena *arena, alk_value_kind kind, const void *bytes,
                                     size_t len);
const alk_value *alk_value_new_int(alk_arena *arena, int64_t integer);
const alk_value *alk_value_new_array(alk_arena *arena, const alk_value *const *items, size_t n);
const alk_value *alk_value_new_map(alk_arena *arena, const alk_value_pair *pairs, size_t n);

/*
 * Like alk_value_from_json for JSON as Python's json.dumps writes it (Keras configs): the bare
 * words NaN, Infinity and -Infinity are also read, as FLOAT values. Column numbers of errors
 * after such a word are shifted.
 */
int alk_value_from_python_json(const char *json, size_t len, const alk_value_limits *limits,
                               alk_arena *arena, const alk_value **ret_value, alk_diag *diag);

/* The value of `key` in map `map`, or NULL when `map` is not a map or has no such key. */
const alk_value *alk_value_get(const alk_value *map, const char *key);

/* Whether `bytes` (n bytes) are well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF): the
 * rule for every STR of a tree. */
bool alk_utf8_valid(const void *bytes, size_t n);

/* The length of the well-formed UTF-8 character that starts `bytes` (n > 0 bytes), or 0 when the
 * first byte does not start one. */
size_t alk_utf8_char_len(const void *bytes, size_t n);

/* Name of a kind ("map"), for error messages. */
const char *alk_value_kind_name(alk_value_kind kind);

#endif
