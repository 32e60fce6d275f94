/*
 * Growable vectors and byte buffers.
 *
 * `alk_vec` is an untyped array of fixed-size elements (read it through ALK_VEC_AT); `alk_buf`
 * is a byte string that stays NUL-terminated. Both are embedded by their owner (_init/_fini) and
 * grow by doubling through alk_realloc.
 *
 * The buffer has a sticky error, like an SQLite string builder: after the first failed append,
 * later appends do nothing and `alk_buf_error()` tells the caller once at the end.
 */
#ifndef ALK_CORE_VEC_H
#define ALK_CORE_VEC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct alk_vec {
    void *items;
    size_t len;
    size_t cap;
    size_t elem_size;
} alk_vec;

#define ALK_VEC_AT(vec, type, index) (((type *)(vec)->items)[index])

void alk_vec_init(alk_vec *vec, size_t elem_size);
/* Frees the storage; the vector is empty and reusable afterwards. */
void alk_vec_fini(alk_vec *vec);
/* Makes room for `n` elements in total. */
int alk_vec_reserve(alk_vec *vec, size_t n);
/* Appends a copy of the element at `elem` (the caller keeps `elem`). */
int alk_vec_push(alk_vec *vec, const void *elem);
/* Appends `n` elements copied from `elems`. */
int alk_vec_append(alk_vec *vec, const void *elems, size_t n);
/* Hands the storage to the caller (free with alk_free) and leaves the vector empty. */
void *alk_vec_detach(alk_vec *vec);

typedef struct alk_buf {
    char *data;
    size_t len;
    size_t cap;
    int error;
} alk_buf;

void alk_buf_init(alk_buf *buf);
void alk_buf_fini(alk_buf *buf);
/* Empties the buffer, keeps its storage and clears its sticky error. */
void alk_buf_reset(alk_buf *buf);
void alk_buf_append(alk_buf *buf, const void *bytes, size_t n);
/* Makes room for `n` more bytes past `len` (a reader then fills data + len and moves len);
 * returns the buffer's sticky error. */
int alk_buf_reserve(alk_buf *buf, size_t n);
void alk_buf_puts(alk_buf *buf, const char *s);
void alk_buf_putc(alk_buf *buf, char c);
void alk_buf_printf(alk_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void alk_buf_put_i64(alk_buf *buf, int64_t value);
/* ALK_OK, or the first error of an append since init/reset. */
int alk_buf_error(const alk_buf *buf);

#endif
