/*
 * Request decoding and validation against the generated schema tables; error replies.
 *
 * Validation order, so that the reply is the most useful one: size of the message, msgpack
 * structure and limits, "a map at the top", the id (read early so that every later error can
 * echo it), duplicate top-level keys, the version, the method, then the method's fields in
 * schema order. Fields a method does not define are ignored (forward compatibility within one
 * protocol version); an optional field that is nil counts as absent.
 *
 * Thread rule: reentrant; the tables are constant.
 */
#include "rpc/rpc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const uint64_t accepted_versions[] = {ALK_RPC_PROTOCOL};

size_t alk_rpc_accepted_versions(const uint64_t **ret_versions) {
    *ret_versions = accepted_versions;
    return sizeof(accepted_versions) / sizeof(accepted_versions[0]);
}

const alk_rpc_method *alk_rpc_method_find(const char *name) {
    for (size_t i = 0; i < alk_rpc_n_methods; i++) {
        if (strcmp(alk_rpc_methods[i].name, name) == 0) {
            return &alk_rpc_methods[i];
        }
    }
    return NULL;
}

void alk_rpc_value_limits(const alk_rpc_limits *limits, alk_value_limits *ret_limits) {
    *ret_limits = (alk_value_limits){
        .max_depth = (size_t)limits->max_depth,
        .max_items = (size_t)limits->max_items,
        .max_total = (size_t)limits->max_nodes,
        .max_string = (size_t)limits->max_string_bytes,
    };
}

static uint32_t type_bit(const alk_value *v) {
    switch (v->kind) {
    case ALK_VALUE_NIL:
        return ALK_RPC_T_NIL;
    case ALK_VALUE_BOOL:
        return ALK_RPC_T_BOOL;
    case ALK_VALUE_INT:
        return v->as.integer >= 0 ? ALK_RPC_T_INT | ALK_RPC_T_UINT : ALK_RPC_T_INT;
    case ALK_VALUE_FLOAT:
        return ALK_RPC_T_FLOAT;
    case ALK_VALUE_STR:
        return ALK_RPC_T_STR;
    case ALK_VALUE_BIN:
        return ALK_RPC_T_BIN;
    case ALK_VALUE_ARRAY:
        return ALK_RPC_T_ARRAY;
    case ALK_VALUE_MAP:
        return ALK_RPC_T_MAP;
    }
    return 0;
}

/* "uint or str" for a mask, for messages. */
static void describe_types(uint32_t mask, char *out, size_t cap) {
    static const char *const names[] = {"nil", "bool", "int",   "uint", "float",
                                        "str", "bin",  "array", "map"};
    size_t len = 0;
    out[0] = '\0';
    if ((mask & ALK_RPC_T_UINT) && (mask & ALK_RPC_T_INT)) {
        mask &= ~(uint32_t)ALK_RPC_T_UINT;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (mask & (1u << i)) {
            int n = snprintf(out + len, cap - len, "%s%s", len > 0 ? " or " : "", names[i]);
            if (n < 0 || (size_t)n >= cap - len) {
                return;
            }
            len += (size_t)n;
        }
    }
}

static const char *kind_name_of(const alk_value *v) {
    if (v->kind == ALK_VALUE_INT && v->as.integer < 0) {
        return "negative int";
    }
    return alk_value_kind_name(v->kind);
}

static size_t length_of(const alk_value *v) {
    switch (v->kind) {
    case ALK_VALUE_STR:
    case ALK_VALUE_BIN:
        return v->as.str.len;
    case ALK_VALUE_ARRAY:
        return v->as.array.len;
    case ALK_VALUE_MAP:
        return v->as.map.len;
    default:
        return 0;
    }
}

static int check_field(const alk_rpc_field *f, const alk_value *v, alk_rpc_error *err) {
    char expected[96];
    if ((type_bit(v) & f->types) == 0) {
        describe_types(f->types, expected, sizeof(expected));
        return alk_rpc_error_set(err, ALK_EINVAL, f->name, "field '%s' must be %s, not %s", f->name,
                                 expected, kind_name_of(v));
    }
    bool has_length = v->kind == ALK_VALUE_STR || v->kind == ALK_VALUE_BIN ||
                      v->kind == ALK_VALUE_ARRAY || v->kind == ALK_VALUE_MAP;
    if (has_length &&
        (length_of(v) < f->min_len || (f->max_len > 0 && length_of(v) > f->max_len))) {
        const char *unit = v->kind == ALK_VALUE_ARRAY ? "items"
                           : v->kind == ALK_VALUE_MAP ? "entries"
                                                      : "bytes";
        if (f->min_len == f->max_len) {
            return alk_rpc_error_set(err, ALK_EINVAL, f->name,
                                     "field '%s' must have %" PRIu64 " %s, not %zu", f->name,
                                     f->min_len, unit, length_of(v));
        }
        return alk_rpc_error_set(
            err, ALK_EINVAL, f->name, "field '%s' must have %" PRIu64 " to %" PRIu64 " %s, not %zu",
            f->name, f->min_len, f->max_len > 0 ? f->max_len : UINT64_MAX, unit, length_of(v));
    }
    if (v->kind == ALK_VALUE_INT &&
        ((f->has_min && v->as.integer < f->min) || (f->has_max && v->as.integer > f->max))) {
        return alk_rpc_error_set(err, ALK_EINVAL, f->name,
                                 "field '%s' must be in [%" PRId64 ", %" PRId64 "], not %" PRId64,
                                 f->name, f->has_min ? f->min : INT64_MIN,
                                 f->has_max ? f->max : INT64_MAX, v->as.integer);
    }
    if (v->kind == ALK_VALUE_ARRAY && f->item_types != ALK_RPC_T_ANY) {
        for (size_t i = 0; i < v->as.array.len; i++) {
            const alk_value *item = v->as.array.items[i];
            if ((type_bit(item) & f->item_types) == 0) {
                char where[96];
                describe_types(f->item_types, expected, sizeof(expected));
                (void)snprintf(where, sizeof(where), "%s[%zu]", f->name, i);
                return alk_rpc_error_set(err, ALK_EINVAL, where, "%s must be %s, not %s", where,
                                         expected, kind_name_of(item));
            }
        }
    }
    if (v->kind == ALK_VALUE_STR && f->enum_values != NULL) {
        bool found = false;
        char allowed[160] = "";
        size_t len = 0;
        for (const char *const *e = f->enum_values; *e != NULL; e++) {
            found = found || strcmp(*e, v->as.str.bytes) == 0;
            int n =
                snprintf(allowed + len, sizeof(allowed) - len, "%s'%s'", len > 0 ? ", " : "", *e);
            if (n > 0 && (size_t)n < sizeof(allowed) - len) {
                len += (size_t)n;
            }
        }
        if (!found) {
            return alk_rpc_error_set(err, ALK_EINVAL, f->name,
                                     "field '%s' must be one of %s, not '%.64s'", f->name, allowed,
                                     v->as.str.bytes);
        }
    }
    return ALK_OK;
}

static int check_fields(const alk_rpc_field *fields, size_t n, const alk_value *body,
                        alk_rpc_error *err) {
    for (size_t i = 0; i < n; i++) {
        const alk_rpc_field *f = &fields[i];
        const alk_value *v = alk_value_get(body, f->name);
        if (v != NULL && v->kind == ALK_VALUE_NIL && !(f->types & ALK_RPC_T_NIL) && !f->required) {
            v = NULL;
        }
        if (v == NULL) {
            if (f->required) {
                return alk_rpc_error_set(err, ALK_EINVAL, f->name, "missing field '%s'", f->name);
            }
            continue;
        }
        int rv = check_field(f, v, err);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return ALK_OK;
}

int alk_rpc_validate(const alk_rpc_method *method, const alk_value *body, alk_rpc_error *err) {
    return check_fields(method->fields, method->n_fields, body, err);
}

/* ALK_EINVAL naming the first key that appears twice in `map`. */
static int check_unique_keys(const alk_value *map, alk_rpc_error *err) {
    /* Requests have a handful of top-level keys: quadratic is fine and allocates nothing. */
    size_t n = map->as.map.len;
    if (n > 256) {
        return alk_rpc_error_set(err, ALK_ELIMIT, NULL,
                                 "a request has %zu top-level fields; at most 256 are accepted", n);
    }
    for (size_t i = 0; i < n; i++) {
        const alk_value *a = map->as.map.pairs[i].key;
        for (size_t j = i + 1; j < n; j++) {
            const alk_value *b = map->as.map.pairs[j].key;
            if (a->as.str.len == b->as.str.len &&
                memcmp(a->as.str.bytes, b->as.str.bytes, a->as.str.len) == 0) {
                return alk_rpc_error_set(err, ALK_EINVAL, a->as.str.bytes,
                                         "field '%.64s' appears twice", a->as.str.bytes);
            }
        }
    }
    return ALK_OK;
}

static const alk_rpc_field *envelope_field(const char *name) {
    for (size_t i = 0; i < alk_rpc_n_envelope_fields; i++) {
        if (strcmp(alk_rpc_envelope_fields[i].name, name) == 0) {
            return &alk_rpc_envelope_fields[i];
        }
    }
    return NULL;
}

static void list_methods(uint32_t socket, bool allow_hidden, char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < alk_rpc_n_methods; i++) {
        const alk_rpc_method *m = &alk_rpc_methods[i];
        if (!(m->sockets & socket) || ((m->flags & ALK_RPC_METHOD_HIDDEN) && !allow_hidden)) {
            continue;
        }
        int n = snprintf(out + len, cap - len, "%s%s", len > 0 ? ", " : "", m->name);
        if (n < 0 || (size_t)n >= cap - len) {
            return;
        }
        len += (size_t)n;
    }
}

int alk_rpc_decode_request(const void *bytes, size_t len, uint32_t socket, bool allow_hidden,
                           const alk_rpc_limits *limits, alk_arena *arena,
                           alk_rpc_request *ret_request, alk_rpc_error *err) {
    alk_rpc_error_clear(err);
    if (len > limits->max_message_bytes) {
        return alk_rpc_error_set(err, ALK_ELIMIT, NULL,
                                 "the message has %zu bytes; max_message_bytes is %" PRIu64, len,
                                 limits->max_message_bytes);
    }
    alk_value_limits value_limits;
    alk_rpc_value_limits(limits, &value_limits);
    const alk_value *body;
    int rv = alk_value_from_msgpack(bytes, len, &value_limits, arena, &body, err);
    if (rv != ALK_OK) {
        return rv;
    }
    if (body->kind != ALK_VALUE_MAP) {
        return alk_rpc_error_set(err, ALK_EPROTO, NULL, "a request is a msgpack map, not a %s",
                                 alk_value_kind_name(body->kind));
    }
    /* The id first, so that every later error reply can echo it. */
    const alk_value *id = alk_value_get(body, "id");
    const alk_rpc_field *id_field = envelope_field("id");
    if (id != NULL && id_field != NULL && check_field(id_field, id, NULL) == ALK_OK) {
        err->id = id;
    }
    rv = check_unique_keys(body, err);
    if (rv != ALK_OK) {
        return rv;
    }
    const alk_value *version = alk_value_get(body, "v");
    if (version != NULL && version->kind == ALK_VALUE_INT) {
        const uint64_t *versions;
        size_t n_versions = alk_rpc_accepted_versions(&versions);
        bool accepted = false;
        for (size_t i = 0; i < n_versions; i++) {
            accepted = accepted ||
                       (version->as.integer >= 0 && (uint64_t)version->as.integer == versions[i]);
        }
        if (!accepted) {
            return alk_rpc_error_set(err, ALK_EVERSION, "v",
                                     "protocol version %" PRId64 " is not supported; this daemon "
                                     "accepts version %d",
                                     version->as.integer, ALK_RPC_PROTOCOL);
        }
    }
    rv = check_fields(alk_rpc_envelope_fields, alk_rpc_n_envelope_fields, body, err);
    if (rv != ALK_OK) {
        return rv;
    }
    const char *name = alk_value_get(body, "method")->as.str.bytes;
    const alk_rpc_method *method = alk_rpc_method_find(name);
    if (method == NULL || !(method->sockets & socket) ||
        ((method->flags & ALK_RPC_METHOD_HIDDEN) && !allow_hidden)) {
        char methods[256];
        list_methods(socket, allow_hidden, methods, sizeof(methods));
        return alk_rpc_error_set(err, ALK_ENOTSUP, "method",
                                 "unknown method '%.64s' on this socket; it offers: %s", name,
                                 methods);
    }
    rv = alk_rpc_validate(method, body, err);
    if (rv != ALK_OK) {
        return rv;
    }
    *ret_request = (alk_rpc_request){
        .version = (uint64_t)alk_value_get(body, "v")->as.integer,
        .id = alk_value_get(body, "id"),
        .method = method,
        .body = body,
    };
    return ALK_OK;
}

/* The envelope of every reply: `v`, `id` (nil when NULL) and `ok`. */
static void put_envelope(alk_mp_map_writer *reply, const alk_value *id, bool ok) {
    alk_mp_key(reply, "v");
    alk_mp_uint(reply->out, ALK_RPC_PROTOCOL);
    alk_mp_key(reply, "id");
    if (id != NULL) {
        alk_mp_value(reply->out, id);
    } else {
        alk_mp_nil(reply->out);
    }
    alk_mp_key(reply, "ok");
    alk_mp_bool(reply->out, ok);
}

void alk_rpc_reply_open(alk_mp_map_writer *reply, alk_buf *out, const alk_value *id) {
    alk_mp_map_open(reply, out);
    put_envelope(reply, id, true);
}

int alk_rpc_encode_error(const alk_rpc_error *err, alk_buf *out) {
    int code = err->code != ALK_OK ? err->code : ALK_EINTERNAL;
    alk_mp_map_writer reply;
    alk_mp_map_open(&reply, out);
    put_envelope(&reply, err->id, false);
    alk_mp_key(&reply, "error");
    alk_mp_map_writer error;
    alk_mp_map_open(&error, out);
    alk_mp_key(&error, "code");
    alk_mp_uint(out, (uint64_t)code);
    alk_mp_key(&error, "name");
    alk_mp_str(out, alk_err_name(code));
    alk_mp_key(&error, "message");
    alk_mp_text(out, err->diag.message[0] != '\0' ? err->diag.message : alk_strerror(code));
    alk_mp_key(&error, "where");
    alk_mp_text(out, err->where[0] != '\0' ? err->where : NULL);
    if (code == ALK_EVERSION) {
        const uint64_t *versions;
        size_t n = alk_rpc_accepted_versions(&versions);
        alk_mp_key(&error, "supported");
        alk_mp_array(out, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            alk_mp_uint(out, versions[i]);
        }
    }
    alk_mp_map_close(&error);
    alk_mp_map_close(&reply);
    return alk_buf_error(out);
}
