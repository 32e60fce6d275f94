/*
 * The msgpack wire format: decoding into value trees with limits, and encoding.
 *
 * Decoding is our own bounded recursive descent rather than msgpack-c's unpacker: msgpack-c
 * allocates an object tree from its own zone (plain malloc) as it reads, sized by the lengths the
 * message declares, before the caller can look at them. Ours checks every declared length
 * against the limits and against the bytes actually remaining *before* allocating anything, puts
 * every node in the caller's arena (alk_malloc, so fault injection reaches it), validates UTF-8,
 * and names the path of the offending value ("model.weights[3].data"). Encoding uses msgpack-c's
 * packer, which never allocates: it writes through a callback into an alk_buf.
 *
 * Thread rule: all functions are reentrant; a decoded tree is immutable.
 */
#ifndef ALK_RPC_WIRE_H
#define ALK_RPC_WIRE_H

#include "core/arena.h"
#include "core/err.h"
#include "core/vec.h"
#include "graph/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An error of the wire layer: the code, the path of the field at fault ("" when none) and a
 * sentence. `id` is the request's id when it could be read (for the error reply), else NULL. */
typedef struct alk_rpc_error {
    int code;
    char where[192];
    const alk_value *id;
    alk_diag diag;
} alk_rpc_error;

/* Clears `err` (owned by the caller) to "no error". */
void alk_rpc_error_clear(alk_rpc_error *err);

/* Sets code, where (NULL: none) and a printf-style message; returns `code`. */
int alk_rpc_error_set(alk_rpc_error *err, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Decodes exactly one msgpack value from `bytes` (len bytes, borrowed) into a tree allocated in
 * `arena` (borrowed; the tree lives as long as the arena). Map keys must be strings; strings must
 * be valid UTF-8 without NUL; ext types are refused; unsigned integers above INT64_MAX become
 * floats (as in the JSON decoder). Errors: ALK_EPROTO (malformed, truncated, trailing bytes),
 * ALK_ELIMIT (a limit of `limits` exceeded, checked before allocating), ALK_ENOMEM; `err->where`
 * names the value's path.
 */
int alk_value_from_msgpack(const void *bytes, size_t len, const alk_value_limits *limits,
                           alk_arena *arena, const alk_value **ret_value, alk_rpc_error *err);

/*
 * Encoders: each appends one msgpack item to `out` (owned by the caller). Failures are sticky in
 * the buffer (alk_buf_error), so a caller checks once after a whole message.
 */
void alk_mp_nil(alk_buf *out);
void alk_mp_bool(alk_buf *out, bool value);
void alk_mp_int(alk_buf *out, int64_t value);
void alk_mp_uint(alk_buf *out, uint64_t value);
void alk_mp_float(alk_buf *out, double value);
/* A str from a NUL-terminated string (borrowed); NULL encodes nil. */
void alk_mp_str(alk_buf *out, const char *s);
void alk_mp_strn(alk_buf *out, const char *s, size_t len);
/* A str from text that may not be UTF-8 (messages quoting a file's bytes, or cut by a buffer's
 * size in the middle of a character): each byte that does not belong to a well-formed character
 * becomes U+FFFD, so that every client's decoder accepts the reply. NULL encodes nil. */
void alk_mp_text(alk_buf *out, const char *s);
void alk_mp_bin(alk_buf *out, const void *bytes, size_t len);
/* Headers: the caller then appends `n` items (array) or `n` key/value pairs (map). */
void alk_mp_array(alk_buf *out, uint32_t n);
void alk_mp_map(alk_buf *out, uint32_t n);
/* A whole value tree (borrowed). */
void alk_mp_value(alk_buf *out, const alk_value *value);

/*
 * A map whose entry count is written when it is closed (a map32 header, back-patched), so that
 * the count can never disagree with the pairs: open it, write each key with alk_mp_key (which
 * counts it) and then its value, close it. Maps nest, one writer each; the writer borrows `out`.
 */
typedef struct alk_mp_map_writer {
    alk_buf *out;
    size_t header; /* offset of the map32 header in out */
    uint32_t n;
} alk_mp_map_writer;

void alk_mp_map_open(alk_mp_map_writer *map, alk_buf *out);
/* A key (NUL-terminated, borrowed; alk_mp_keyn for `len` bytes); its value follows. */
void alk_mp_key(alk_mp_map_writer *map, const char *key);
void alk_mp_keyn(alk_mp_map_writer *map, const char *key, size_t len);
void alk_mp_map_close(alk_mp_map_writer *map);

#endif
