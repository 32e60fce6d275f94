/* Growable vectors and sticky-error byte buffers (see vec.h). */
#include "core/vec.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

void alk_vec_init(alk_vec *vec, size_t elem_size) {
    *vec = (alk_vec){.elem_size = elem_size};
}

void alk_vec_fini(alk_vec *vec) {
    alk_free(vec->items);
    vec->items = NULL;
    vec->len = 0;
    vec->cap = 0;
}

int alk_vec_reserve(alk_vec *vec, size_t n) {
    return alk_grow(&vec->items, &vec->cap, vec->elem_size, n);
}

int alk_vec_push(alk_vec *vec, const void *elem) {
    return alk_vec_append(vec, elem, 1);
}

int alk_vec_append(alk_vec *vec, const void *elems, size_t n) {
    if (n == 0) {
        return ALK_OK;
    }
    if (n > SIZE_MAX - vec->len) {
        return ALK_ENOMEM;
    }
    int rv = alk_vec_reserve(vec, vec->len + n);
    if (rv != ALK_OK) {
        return rv;
    }
    memcpy((char *)vec->items + vec->len * vec->elem_size, elems, n * vec->elem_size);
    vec->len += n;
    return ALK_OK;
}

void *alk_vec_detach(alk_vec *vec) {
    void *items = vec->items;
    vec->items = NULL;
    vec->len = 0;
    vec->cap = 0;
    return items;
}

void alk_buf_init(alk_buf *buf) {
    *buf = (alk_buf){0};
}

void alk_buf_fini(alk_buf *buf) {
    alk_free(buf->data);
    *buf = (alk_buf){0};
}

void alk_buf_reset(alk_buf *buf) {
    buf->len = 0;
    buf->error = ALK_OK;
    if (buf->data != NULL) {
        buf->data[0] = '\0';
    }
}

/* Makes room for `n` more bytes plus the terminating NUL. */
static bool buf_room(alk_buf *buf, size_t n) {
    if (buf->error != ALK_OK) {
        return false;
    }
    if (n > SIZE_MAX - buf->len - 1) {
        buf->error = ALK_ENOMEM;
        return false;
    }
    void *data = buf->data;
    int rv = alk_grow(&data, &buf->cap, 1, buf->len + n + 1);
    if (rv != ALK_OK) {
        buf->error = rv;
        return false;
    }
    buf->data = data;
    return true;
}

int alk_buf_reserve(alk_buf *buf, size_t n) {
    (void)buf_room(buf, n);
    return buf->error;
}

void alk_buf_append(alk_buf *buf, const void *bytes, size_t n) {
    if (!buf_room(buf, n)) {
        return;
    }
    memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
}

void alk_buf_puts(alk_buf *buf, const char *s) {
    alk_buf_append(buf, s, strlen(s));
}

void alk_buf_putc(alk_buf *buf, char c) {
    alk_buf_append(buf, &c, 1);
}

void alk_buf_printf(alk_buf *buf, const char *fmt, ...) {
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf->error = ALK_EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        alk_buf_append(buf, small, (size_t)n);
        return;
    }
    if (!buf_room(buf, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
}

void alk_buf_put_i64(alk_buf *buf, int64_t value) {
    /* By hand rather than snprintf: writers put tables of thousands of numbers. */
    char digits[24];
    char *end = digits + sizeof(digits);
    char *p = end;
    /* The magnitude as unsigned, so that INT64_MIN negates without overflow. */
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    do {
        *--p = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude != 0);
    if (value < 0) {
        *--p = '-';
    }
    alk_buf_append(buf, p, (size_t)(end - p));
}

int alk_buf_error(const alk_buf *buf) {
    return buf->error;
}
