/*
 * msgpack decoding into value trees (bounded, allocation after checks) and encoding through
 * msgpack-c's packer. See wire.h for the design.
 *
 * The decoder keeps the path of the value being read in a fixed stack (keys are borrowed from
 * the input, indices are numbers), so that an error can name the field without any allocation.
 * Every length a message declares is checked in this order before the arena is asked for memory:
 * the limit (ELIMIT, the more useful message for a hostile size), then the bytes remaining
 * (EPROTO: an array of n items needs at least n more bytes, a map 2n, a string its length).
 *
 * Thread rule: reentrant; no global state.
 */
#include "rpc/wire.h"

#include "core/alloc.h"
#include "graph/value.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void alk_rpc_error_clear(alk_rpc_error *err) {
    if (err != NULL) {
        err->code = ALK_OK;
        err->where[0] = '\0';
        err->id = NULL;
        alk_diag_clear(&err->diag);
    }
}

int alk_rpc_error_set(alk_rpc_error *err, int code, const char *where, const char *fmt, ...) {
    if (err == NULL) {
        return code;
    }
    err->code = code;
    (void)snprintf(err->where, sizeof(err->where), "%s", where != NULL ? where : "");
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err->diag.message, sizeof(err->diag.message), fmt, ap);
    va_end(ap);
    return code;
}

/* ---- decoding ---------------------------------------------------------------------------- */

enum { PATH_DEPTH = 64, PATH_KEY_MAX = 48 };

typedef struct path_elem {
    const char *key; /* map entry: key bytes (borrowed from the input); NULL for array items */
    size_t key_len;
    size_t index;
} path_elem;

typedef struct reader {
    const uint8_t *p;
    const uint8_t *end;
    alk_arena *arena;
    const alk_value_limits *limits;
    size_t total;
    size_t depth;
    path_elem path[PATH_DEPTH];
    alk_rpc_error *err;
} reader;

/* Writes the current path ("model.weights[3]") into `out`. */
static void format_path(const reader *r, char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    size_t shown = r->depth < PATH_DEPTH ? r->depth : PATH_DEPTH;
    for (size_t i = 0; i < shown && len + 1 < cap; i++) {
        const path_elem *e = &r->path[i];
        int n;
        if (e->key != NULL) {
            int key_len = (int)(e->key_len > PATH_KEY_MAX ? PATH_KEY_MAX : e->key_len);
            n = snprintf(out + len, cap - len, "%s%.*s%s", len > 0 ? "." : "", key_len, e->key,
                         e->key_len > PATH_KEY_MAX ? "..." : "");
        } else {
            n = snprintf(out + len, cap - len, "[%zu]", e->index);
        }
        if (n < 0) {
            break;
        }
        len += (size_t)n < cap - len ? (size_t)n : cap - len - 1;
    }
    if (r->depth > PATH_DEPTH && len + 4 < cap) {
        (void)snprintf(out + len, cap - len, "...");
    }
}

static int fail(reader *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(reader *r, int code, const char *fmt, ...) {
    if (r->err == NULL) {
        return code;
    }
    r->err->code = code;
    format_path(r, r->err->where, sizeof(r->err->where));
    char text[300];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (r->err->where[0] != '\0') {
        (void)snprintf(r->err->diag.message, sizeof(r->err->diag.message), "%s: %s", r->err->where,
                       text);
    } else {
        (void)snprintf(r->err->diag.message, sizeof(r->err->diag.message), "%s", text);
    }
    return code;
}

static size_t remaining(const reader *r) {
    return (size_t)(r->end - r->p);
}

static uint64_t read_be(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Reads an n-byte big-endian length or number after the type byte. */
static int take_be(reader *r, size_t n, uint64_t *ret) {
    if (remaining(r) < n) {
        return fail(r, ALK_EPROTO, "truncated message: %zu more bytes expected, %zu remain", n,
                    remaining(r));
    }
    *ret = read_be(r->p, n);
    r->p += n;
    return ALK_OK;
}

static int new_node(reader *r, alk_value_kind kind, alk_value **ret) {
    if (r->total >= r->limits->max_total) {
        return fail(r, ALK_ELIMIT, "the message has more than %zu values (max_nodes)",
                    r->limits->max_total);
    }
    alk_value *v = alk_arena_alloc(r->arena, sizeof(*v));
    if (v == NULL) {
        return fail(r, ALK_ENOMEM, "out of memory");
    }
    r->total++;
    memset(v, 0, sizeof(*v));
    v->kind = kind;
    *ret = v;
    return ALK_OK;
}

static int read_bytes(reader *r, alk_value_kind kind, uint64_t n, alk_value **ret) {
    const char *what = kind == ALK_VALUE_STR ? "str" : "bin";
    if (n > r->limits->max_string) {
        return fail(r, ALK_ELIMIT, "a %s of %llu bytes exceeds max_string_bytes (%zu)", what,
                    (unsigned long long)n, r->limits->max_string);
    }
    if (n > remaining(r)) {
        return fail(r, ALK_EPROTO, "truncated message: a %s declares %llu bytes, %zu remain", what,
                    (unsigned long long)n, remaining(r));
    }
    if (kind == ALK_VALUE_STR) {
        if (memchr(r->p, '\0', (size_t)n) != NULL) {
            return fail(r, ALK_EPROTO, "a str contains a NUL byte");
        }
        if (!alk_utf8_valid(r->p, (size_t)n)) {
            return fail(r, ALK_EPROTO, "a str is not valid UTF-8");
        }
    }
    alk_value *v;
    int rv = new_node(r, kind, &v);
    if (rv != ALK_OK) {
        return rv;
    }
    char *copy = alk_arena_alloc(r->arena, (size_t)n + 1);
    if (copy == NULL) {
        return fail(r, ALK_ENOMEM, "out of memory");
    }
    memcpy(copy, r->p, (size_t)n);
    copy[n] = '\0';
    r->p += n;
    v->as.str.bytes = copy;
    v->as.str.len = (size_t)n;
    *ret = v;
    return ALK_OK;
}

static int read_value(reader *r, const alk_value **ret);

/* max_depth counts nested arrays and maps: the container read at depth d is level d + 1, so an
 * empty container one level too deep is refused as well as a full one. */
static int check_depth(reader *r) {
    if (r->depth >= r->limits->max_depth) {
        return fail(r, ALK_ELIMIT, "the message nests deeper than %zu levels (max_depth)",
                    r->limits->max_depth);
    }
    return ALK_OK;
}

/* Checks a container's declared count against the limits and the remaining bytes. */
static int check_count(reader *r, const char *what, uint64_t n, size_t min_bytes_each) {
    if (n > r->limits->max_items) {
        return fail(r, ALK_ELIMIT, "a %s of %llu entries exceeds max_items (%zu)", what,
                    (unsigned long long)n, r->limits->max_items);
    }
    if (n > r->limits->max_total - r->total) {
        return fail(r, ALK_ELIMIT, "a %s of %llu entries exceeds max_nodes (%zu) for the message",
                    what, (unsigned long long)n, r->limits->max_total);
    }
    if (n > remaining(r) / min_bytes_each) {
        return fail(r, ALK_EPROTO,
                    "truncated message: a %s declares %llu entries, %zu bytes remain", what,
                    (unsigned long long)n, remaining(r));
    }
    return ALK_OK;
}

static int read_array(reader *r, uint64_t n, const alk_value **ret) {
    int rv = check_depth(r);
    if (rv != ALK_OK) {
        return rv;
    }
    rv = check_count(r, "array", n, 1);
    if (rv != ALK_OK) {
        return rv;
    }
    alk_value *v;
    rv = new_node(r, ALK_VALUE_ARRAY, &v);
    if (rv != ALK_OK) {
        return rv;
    }
    const alk_value **items = NULL;
    if (n > 0) {
        items = alk_arena_calloc(r->arena, (size_t)n, sizeof(*items));
        if (items == NULL) {
            return fail(r, ALK_ENOMEM, "out of memory");
        }
    }
    r->depth++;
    for (size_t i = 0; i < n; i++) {
        if (r->depth <= PATH_DEPTH) {
            r->path[r->depth - 1] = (path_elem){.key = NULL, .index = i};
        }
        rv = read_value(r, &items[i]);
        if (rv != ALK_OK) {
            return rv; /* depth is not restored: the path stays at the culprit */
        }
    }
    r->depth--;
    v->as.array.items = items;
    v->as.array.len = (size_t)n;
    *ret = v;
    return ALK_OK;
}

static int read_map(reader *r, uint64_t n, const alk_value **ret) {
    int rv = check_depth(r);
    if (rv != ALK_OK) {
        return rv;
    }
    rv = check_count(r, "map", n, 2);
    if (rv != ALK_OK) {
        return rv;
    }
    alk_value *v;
    rv = new_node(r, ALK_VALUE_MAP, &v);
    if (rv != ALK_OK) {
        return rv;
    }
    alk_value_pair *pairs = NULL;
    if (n > 0) {
        pairs = alk_arena_calloc(r->arena, (size_t)n, sizeof(*pairs));
        if (pairs == NULL) {
            return fail(r, ALK_ENOMEM, "out of memory");
        }
    }
    r->depth++;
    for (size_t i = 0; i < n; i++) {
        if (r->depth <= PATH_DEPTH) {
            r->path[r->depth - 1] = (path_elem){.key = NULL, .index = i};
        }
        rv = read_value(r, &pairs[i].key);
        if (rv != ALK_OK) {
            return rv;
        }
        if (pairs[i].key->kind != ALK_VALUE_STR) {
            return fail(r, ALK_EPROTO, "a map key is a %s, not a str",
                        alk_value_kind_name(pairs[i].key->kind));
        }
        if (r->depth <= PATH_DEPTH) {
            r->path[r->depth - 1].key = pairs[i].key->as.str.bytes;
            r->path[r->depth - 1].key_len = pairs[i].key->as.str.len;
        }
        rv = read_value(r, &pairs[i].value);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    r->depth--;
    v->as.map.pairs = pairs;
    v->as.map.len = (size_t)n;
    *ret = v;
    return ALK_OK;
}

static int read_number(reader *r, uint8_t type, alk_value **ret) {
    static const size_t widths[] = {1, 2, 4, 8};
    uint64_t raw;
    int rv;
    alk_value *v;
    if (type == 0xca || type == 0xcb) {
        rv = take_be(r, type == 0xca ? 4 : 8, &raw);
        if (rv == ALK_OK) {
            rv = new_node(r, ALK_VALUE_FLOAT, &v);
        }
        if (rv != ALK_OK) {
            return rv;
        }
        if (type == 0xca) {
            uint32_t bits = (uint32_t)raw;
            float f;
            memcpy(&f, &bits, sizeof(f));
            v->as.number = f;
        } else {
            memcpy(&v->as.number, &raw, sizeof(raw));
        }
        *ret = v;
        return ALK_OK;
    }
    bool is_signed = type >= 0xd0;
    size_t width = widths[is_signed ? type - 0xd0 : type - 0xcc];
    rv = take_be(r, width, &raw);
    if (rv != ALK_OK) {
        return rv;
    }
    if (!is_signed && raw > (uint64_t)INT64_MAX) {
        rv = new_node(r, ALK_VALUE_FLOAT, &v);
        if (rv == ALK_OK) {
            v->as.number = (double)raw;
            *ret = v;
        }
        return rv;
    }
    rv = new_node(r, ALK_VALUE_INT, &v);
    if (rv != ALK_OK) {
        return rv;
    }
    if (is_signed && width < 8) {
        /* Sign-extend the width-byte two's-complement number. */
        uint64_t sign = (uint64_t)1 << (width * 8 - 1);
        v->as.integer = (int64_t)((raw ^ sign) - sign);
    } else {
        int64_t s;
        memcpy(&s, &raw, sizeof(s));
        v->as.integer = s;
    }
    *ret = v;
    return ALK_OK;
}

static int read_value(reader *r, const alk_value **ret) {
    if (remaining(r) == 0) {
        return fail(r, ALK_EPROTO, "truncated message: a value is missing");
    }
    uint8_t type = *r->p++;
    alk_value *v = NULL;
    uint64_t n;
    int rv = ALK_OK;
    if (type <= 0x7f || type >= 0xe0) {
        rv = new_node(r, ALK_VALUE_INT, &v);
        if (rv == ALK_OK) {
            v->as.integer = type <= 0x7f ? (int64_t)type : (int64_t)(int8_t)type;
        }
    } else if (type <= 0x8f) {
        return read_map(r, type & 0x0f, ret);
    } else if (type <= 0x9f) {
        return read_array(r, type & 0x0f, ret);
    } else if (type <= 0xbf) {
        rv = read_bytes(r, ALK_VALUE_STR, type & 0x1f, &v);
    } else {
        switch (type) {
        case 0xc0:
            rv = new_node(r, ALK_VALUE_NIL, &v);
            break;
        case 0xc2:
        case 0xc3:
            rv = new_node(r, ALK_VALUE_BOOL, &v);
            if (rv == ALK_OK) {
                v->as.boolean = type == 0xc3;
            }
            break;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            rv = take_be(r, (size_t)1 << (type - 0xc4), &n);
            if (rv == ALK_OK) {
                rv = read_bytes(r, ALK_VALUE_BIN, n, &v);
            }
            break;
        case 0xd9:
        case 0xda:
        case 0xdb:
            rv = take_be(r, (size_t)1 << (type - 0xd9), &n);
            if (rv == ALK_OK) {
                rv = read_bytes(r, ALK_VALUE_STR, n, &v);
            }
            break;
        case 0xdc:
        case 0xdd:
            rv = take_be(r, type == 0xdc ? 2 : 4, &n);
            return rv != ALK_OK ? rv : read_array(r, n, ret);
        case 0xde:
        case 0xdf:
            rv = take_be(r, type == 0xde ? 2 : 4, &n);
            return rv != ALK_OK ? rv : read_map(r, n, ret);
        case 0xca:
        case 0xcb:
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3:
            rv = read_number(r, type, &v);
            break;
        case 0xc1:
            return fail(r, ALK_EPROTO, "byte 0xc1 is not a msgpack type");
        default: /* 0xc7-0xc9, 0xd4-0xd8: ext types */
            return fail(r, ALK_EPROTO, "msgpack ext types (byte 0x%02x) are not accepted", type);
        }
    }
    if (rv == ALK_OK) {
        *ret = v;
    }
    return rv;
}

int alk_value_from_msgpack(const void *bytes, size_t len, const alk_value_limits *limits,
                           alk_arena *arena, const alk_value **ret_value, alk_rpc_error *err) {
    alk_value_limits defaults;
    if (limits == NULL) {
        alk_value_limits_default(&defaults);
        limits = &defaults;
    }
    reader r = {
        .p = bytes,
        .end = (const uint8_t *)bytes + (bytes != NULL ? len : 0),
        .arena = arena,
        .limits = limits,
        .err = err,
    };
    const alk_value *value = NULL;
    int rv = read_value(&r, &value);
    if (rv != ALK_OK) {
        return rv;
    }
    if (r.p != r.end) {
        return fail(&r, ALK_EPROTO, "%zu bytes follow the message's value", remaining(&r));
    }
    *ret_value = value;
    return ALK_OK;
}

/* ---- encoding ---------------------------------------------------------------------------- */

static int buf_write(void *data, const char *bytes, size_t len) {
    alk_buf *out = data;
    alk_buf_append(out, bytes, len);
    return alk_buf_error(out) == ALK_OK ? 0 : -1;
}

/* A packer is two pointers: make one per call rather than keeping msgpack types in the API. */
#define PACKER(name, out)                                                                          \
    msgpack_packer name;                                                                           \
    msgpack_packer_init(&name, (out), buf_write)

void alk_mp_nil(alk_buf *out) {
    PACKER(pk, out);
    (void)msgpack_pack_nil(&pk);
}

void alk_mp_bool(alk_buf *out, bool value) {
    PACKER(pk, out);
    (void)(value ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

void alk_mp_int(alk_buf *out, int64_t value) {
    PACKER(pk, out);
    (void)msgpack_pack_int64(&pk, value);
}

void alk_mp_uint(alk_buf *out, uint64_t value) {
    PACKER(pk, out);
    (void)msgpack_pack_uint64(&pk, value);
}

void alk_mp_float(alk_buf *out, double value) {
    PACKER(pk, out);
    (void)msgpack_pack_double(&pk, value);
}

void alk_mp_strn(alk_buf *out, const char *s, size_t len) {
    PACKER(pk, out);
    if (msgpack_pack_str(&pk, len) == 0 && len > 0) {
        (void)msgpack_pack_str_body(&pk, s, len);
    }
}

void alk_mp_str(alk_buf *out, const char *s) {
    if (s == NULL) {
        alk_mp_nil(out);
    } else {
        alk_mp_strn(out, s, strlen(s));
    }
}

void alk_mp_text(alk_buf *out, const char *s) {
    size_t n = s != NULL ? strlen(s) : 0;
    if (s == NULL || alk_utf8_valid(s, n)) {
        alk_mp_str(out, s);
        return;
    }
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    /* Two passes over the text: the str's length, then its pieces. */
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        size_t c = alk_utf8_char_len(s + i, n - i);
        len += c > 0 ? c : sizeof(replacement) - 1;
        i += c > 0 ? c : 1;
    }
    PACKER(pk, out);
    if (msgpack_pack_str(&pk, len) != 0) {
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t c = alk_utf8_char_len(s + i, n - i);
        (void)msgpack_pack_str_body(&pk, c > 0 ? s + i : replacement,
                                    c > 0 ? c : sizeof(replacement) - 1);
        i += c > 0 ? c : 1;
    }
}

void alk_mp_bin(alk_buf *out, const void *bytes, size_t len) {
    PACKER(pk, out);
    if (msgpack_pack_bin(&pk, len) == 0 && len > 0) {
        (void)msgpack_pack_bin_body(&pk, bytes, len);
    }
}

void alk_mp_array(alk_buf *out, uint32_t n) {
    PACKER(pk, out);
    (void)msgpack_pack_array(&pk, n);
}

void alk_mp_map(alk_buf *out, uint32_t n) {
    PACKER(pk, out);
    (void)msgpack_pack_map(&pk, n);
}

void alk_mp_map_open(alk_mp_map_writer *map, alk_buf *out) {
    static const char map32[5] = {(char)0xdf, 0, 0, 0, 0}; /* the count comes at the close */
    *map = (alk_mp_map_writer){.out = out, .header = out->len};
    alk_buf_append(out, map32, sizeof(map32));
}

void alk_mp_key(alk_mp_map_writer *map, const char *key) {
    alk_mp_str(map->out, key);
    map->n++;
}

void alk_mp_keyn(alk_mp_map_writer *map, const char *key, size_t len) {
    alk_mp_strn(map->out, key, len);
    map->n++;
}

void alk_mp_map_close(alk_mp_map_writer *map) {
    if (alk_buf_error(map->out) != ALK_OK) {
        return; /* the buffer is void anyway */
    }
    unsigned char *count = (unsigned char *)map->out->data + map->header + 1;
    count[0] = (unsigned char)(map->n >> 24);
    count[1] = (unsigned char)(map->n >> 16);
    count[2] = (unsigned char)(map->n >> 8);
    count[3] = (unsigned char)map->n;
}

void alk_mp_value(alk_buf *out, const alk_value *value) {
    switch (value->kind) {
    case ALK_VALUE_NIL:
        alk_mp_nil(out);
        break;
    case ALK_VALUE_BOOL:
        alk_mp_bool(out, value->as.boolean);
        break;
    case ALK_VALUE_INT:
        alk_mp_int(out, value->as.integer);
        break;
    case ALK_VALUE_FLOAT:
        alk_mp_float(out, value->as.number);
        break;
    case ALK_VALUE_STR:
        alk_mp_strn(out, value->as.str.bytes, value->as.str.len);
        break;
    case ALK_VALUE_BIN:
        alk_mp_bin(out, value->as.str.bytes, value->as.str.len);
        break;
    case ALK_VALUE_ARRAY:
        alk_mp_array(out, (uint32_t)value->as.array.len);
        for (size_t i = 0; i < value->as.array.len; i++) {
            alk_mp_value(out, value->as.array.items[i]);
        }
        break;
    case ALK_VALUE_MAP:
        alk_mp_map(out, (uint32_t)value->as.map.len);
        for (size_t i = 0; i < value->as.map.len; i++) {
            alk_mp_value(out, value->as.map.pairs[i].key);
            alk_mp_value(out, value->as.map.pairs[i].value);
        }
        break;
    }
}
