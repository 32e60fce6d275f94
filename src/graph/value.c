/*
 * Value trees: accessors, limits and the JSON decoder (jansson document -> arena tree).
 * The msgpack decoder lives with the wire codec (src/rpc).
 */
#include "graph/value.h"

#include <jansson.h>
#include <string.h>

void alk_value_limits_default(alk_value_limits *limits) {
    *limits = (alk_value_limits){
        .max_depth = 64,
        .max_items = (size_t)16 << 20,
        .max_total = (size_t)64 << 20,
        .max_string = (size_t)1 << 30,
    };
}

const char *alk_value_kind_name(alk_value_kind kind) {
    static const char *const names[] = {"nil", "bool", "int",   "float",
                                        "str", "bin",  "array", "map"};
    return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

const alk_value *alk_value_get(const alk_value *map, const char *key) {
    if (map == NULL || map->kind != ALK_VALUE_MAP) {
        return NULL;
    }
    size_t key_len = strlen(key);
    for (size_t i = 0; i < map->as.map.len; i++) {
        const alk_value *k = map->as.map.pairs[i].key;
        if (k->kind == ALK_VALUE_STR && k->as.str.len == key_len &&
            memcmp(k->as.str.bytes, key, key_len) == 0) {
            return map->as.map.pairs[i].value;
        }
    }
    return NULL;
}

alk_value *alk_value_new(alk_arena *arena, alk_value_kind kind) {
    alk_value *v = alk_arena_calloc(arena, 1, sizeof(*v));
    if (v != NULL) {
        v->kind = kind;
    }
    return v;
}

const alk_value *alk_value_new_bytes(alk_arena *arena, alk_value_kind kind, const void *bytes,
                                     size_t len) {
    alk_value *v = len < SIZE_MAX ? alk_value_new(arena, kind) : NULL;
    char *copy = v != NULL ? alk_arena_alloc(arena, len + 1) : NULL;
    if (copy == NULL) {
        return NULL;
    }
    if (len > 0) {
        memcpy(copy, bytes, len);
    }
    copy[len] = '\0';
    v->as.str.bytes = copy;
    v->as.str.len = len;
    return v;
}

const alk_value *alk_value_new_int(alk_arena *arena, int64_t integer) {
    alk_value *v = alk_value_new(arena, ALK_VALUE_INT);
    if (v != NULL) {
        v->as.integer = integer;
    }
    return v;
}

const alk_value *alk_value_new_array(alk_arena *arena, const alk_value *const *items, size_t n) {
    alk_value *v = alk_value_new(arena, ALK_VALUE_ARRAY);
    const alk_value **copy = v != NULL ? alk_arena_calloc(arena, n, sizeof(*copy)) : NULL;
    if (copy == NULL) {
        return NULL;
    }
    if (n > 0) {
        memcpy(copy, items, n * sizeof(*copy));
    }
    v->as.array.items = copy;
    v->as.array.len = n;
    return v;
}

const alk_value *alk_value_new_map(alk_arena *arena, const alk_value_pair *pairs, size_t n) {
    alk_value *v = alk_value_new(arena, ALK_VALUE_MAP);
    alk_value_pair *copy = v != NULL ? alk_arena_calloc(arena, n, sizeof(*copy)) : NULL;
    if (copy == NULL) {
        return NULL;
    }
    if (n > 0) {
        memcpy(copy, pairs, n * sizeof(*copy));
    }
    v->as.map.pairs = copy;
    v->as.map.len = n;
    return v;
}

typedef struct json_builder {
    alk_arena *arena;
    const alk_value_limits *limits;
    size_t total;
    alk_diag *diag;
    int error; /* the first failure's code */
} json_builder;

/* Records a failure in the builder (code and message) and evaluates to NULL-friendly 0. */
#define BUILD_FAIL(b, ...) ((b)->error = alk_diag_set((b)->diag, __VA_ARGS__))

static alk_value *new_node(json_builder *b, alk_value_kind kind) {
    if (++b->total > b->limits->max_total) {
        BUILD_FAIL(b, ALK_ELIMIT, "the document has more than %zu values", b->limits->max_total);
        return NULL;
    }
    alk_value *v = alk_arena_alloc(b->arena, sizeof(*v));
    if (v == NULL) {
        BUILD_FAIL(b, ALK_ENOMEM, "out of memory");
        return NULL;
    }
    v->kind = kind;
    return v;
}

static const alk_value *new_string(json_builder *b, const char *s, size_t len) {
    if (len > b->limits->max_string) {
        BUILD_FAIL(b, ALK_ELIMIT, "a string is longer than %zu bytes", b->limits->max_string);
        return NULL;
    }
    if (memchr(s, '\0', len) != NULL) {
        BUILD_FAIL(b, ALK_EINVAL, "a string contains a NUL byte");
        return NULL;
    }
    alk_value *v = new_node(b, ALK_VALUE_STR);
    char *copy = v != NULL ? alk_arena_alloc(b->arena, len + 1) : NULL;
    if (copy == NULL) {
        BUILD_FAIL(b, ALK_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    v->as.str.bytes = copy;
    v->as.str.len = len;
    return v;
}

static const alk_value *convert(json_builder *b, json_t *j, size_t depth);

static const alk_value *convert_array(json_builder *b, json_t *j, size_t depth) {
    size_t n = json_array_size(j);
    if (n > b->limits->max_items) {
        BUILD_FAIL(b, ALK_ELIMIT, "an array has more than %zu items", b->limits->max_items);
        return NULL;
    }
    alk_value *v = new_node(b, ALK_VALUE_ARRAY);
    const alk_value **items = v != NULL ? alk_arena_calloc(b->arena, n, sizeof(*items)) : NULL;
    if (items == NULL) {
        BUILD_FAIL(b, ALK_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        items[i] = convert(b, json_array_get(j, i), depth + 1);
        if (items[i] == NULL) {
            return NULL;
        }
    }
    v->as.array.items = items;
    v->as.array.len = n;
    return v;
}

static const alk_value *convert_object(json_builder *b, json_t *j, size_t depth) {
    size_t n = json_object_size(j);
    if (n > b->limits->max_items) {
        BUILD_FAIL(b, ALK_ELIMIT, "a map has more than %zu entries", b->limits->max_items);
        return NULL;
    }
    alk_value *v = new_node(b, ALK_VALUE_MAP);
    alk_value_pair *pairs = v != NULL ? alk_arena_calloc(b->arena, n, sizeof(*pairs)) : NULL;
    if (pairs == NULL) {
        BUILD_FAIL(b, ALK_ENOMEM, "out of memory");
        return NULL;
    }
    size_t i = 0;
    const char *key;
    size_t key_len;
    json_t *item;
    json_object_keylen_foreach(j, key, key_len, item) {
        pairs[i].key = new_string(b, key, key_len);
        pairs[i].value = pairs[i].key != NULL ? convert(b, item, depth + 1) : NULL;
        if (pairs[i].value == NULL) {
            return NULL;
        }
        i++;
    }
    v->as.map.pairs = pairs;
    v->as.map.len = n;
    return v;
}

static const alk_value *convert(json_builder *b, json_t *j, size_t depth) {
    if (depth > b->limits->max_depth) {
        BUILD_FAIL(b, ALK_ELIMIT, "the document nests deeper than %zu levels",
                   b->limits->max_depth);
        return NULL;
    }
    alk_value *v;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return convert_object(b, j, depth);
    case JSON_ARRAY:
        return convert_array(b, j, depth);
    case JSON_STRING:
        return new_string(b, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        v = new_node(b, ALK_VALUE_INT);
        if (v != NULL) {
            v->as.integer = (int64_t)json_integer_value(j);
        }
        return v;
    case JSON_REAL:
        v = new_node(b, ALK_VALUE_FLOAT);
        if (v != NULL) {
            v->as.number = json_real_value(j);
        }
        return v;
    case JSON_TRUE:
    case JSON_FALSE:
        v = new_node(b, ALK_VALUE_BOOL);
        if (v != NULL) {
            v->as.boolean = json_is_true(j);
        }
        return v;
    default:
        return new_node(b, ALK_VALUE_NIL);
    }
}

int alk_value_from_json(const char *json, size_t len, const alk_value_limits *limits,
                        alk_arena *arena, const alk_value **ret_value, alk_diag *diag) {
    alk_value_limits defaults;
    if (limits == NULL) {
        alk_value_limits_default(&defaults);
        limits = &defaults;
    }
    json_error_t jerr;
    /* JSON_PRESERVE_ORDER is implied by jansson >= 2.8: object keys keep their order. */
    json_t *root = json_loadb(json != NULL ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return alk_diag_set(diag, ALK_EINVAL, "JSON error at line %d, column %d: %s", jerr.line,
                            jerr.column, jerr.text);
    }
    json_builder b = {.arena = arena, .limits = limits, .diag = diag};
    const alk_value *value = convert(&b, root, 0);
    json_decref(root);
    if (value == NULL) {
        return b.error;
    }
    *ret_value = value;
    return ALK_OK;
}
