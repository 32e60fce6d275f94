/*
 * Value trees: accessors, limits and the JSON decoder (jansson document -> arena tree).
 * The msgpack decoder lives with the wire codec (src/rpc).
 */
#include "graph/value.h"

#include "core/vec.h"

#include <jansson.h>
#include <math.h>
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

size_t alk_utf8_char_len(const void *bytes, size_t n) {
    const uint8_t *s = bytes;
    uint8_t c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t extra;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        extra = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        extra = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        extra = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n <= extra) {
        return 0;
    }
    for (size_t k = 1; k <= extra; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
        return 0;
    }
    return extra + 1;
}

bool alk_utf8_valid(const void *bytes, size_t n) {
    const uint8_t *s = bytes;
    size_t i = 0;
    while (i < n) {
        size_t len = alk_utf8_char_len(s + i, n - i);
        if (len == 0) {
            return false;
        }
        i += len;
    }
    return true;
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

/* A copy of `n` elements of `size` bytes in the arena (non-NULL even for n == 0). */
static void *copy_items(alk_arena *arena, const void *items, size_t n, size_t size) {
    void *copy = alk_arena_calloc(arena, n, size);
    if (copy != NULL && n > 0) {
        memcpy(copy, items, n * size);
    }
    return copy;
}

const alk_value *alk_value_new_array(alk_arena *arena, const alk_value *const *items, size_t n) {
    alk_value *v = alk_value_new(arena, ALK_VALUE_ARRAY);
    const alk_value **copy = v != NULL ? copy_items(arena, items, n, sizeof(*copy)) : NULL;
    if (copy == NULL) {
        return NULL;
    }
    v->as.array.items = copy;
    v->as.array.len = n;
    return v;
}

const alk_value *alk_value_new_map(alk_arena *arena, const alk_value_pair *pairs, size_t n) {
    alk_value *v = alk_value_new(arena, ALK_VALUE_MAP);
    alk_value_pair *copy = v != NULL ? copy_items(arena, pairs, n, sizeof(*copy)) : NULL;
    if (copy == NULL) {
        return NULL;
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
    int error;           /* the first failure's code */
    bool python_numbers; /* strings "\0NaN", "\0Infinity", "\0-Infinity" are those floats */
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

/* The float a marker of rewrite_python_numbers stands for (the marker without its NUL). */
static const alk_value *python_number(json_builder *b, const char *name, size_t len) {
    alk_value *v = NULL;
    double number = len == 3 && memcmp(name, "NaN", 3) == 0         ? NAN
                    : len == 8 && memcmp(name, "Infinity", 8) == 0  ? INFINITY
                    : len == 9 && memcmp(name, "-Infinity", 9) == 0 ? -INFINITY
                                                                    : 0.0;
    if (number == 0.0) {
        BUILD_FAIL(b, ALK_EINVAL, "a string contains a NUL byte");
    } else {
        v = new_node(b, ALK_VALUE_FLOAT);
    }
    if (v != NULL) {
        v->as.number = number;
    }
    return v;
}

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
        if (b->python_numbers && json_string_length(j) > 0 && json_string_value(j)[0] == '\0') {
            return python_number(b, json_string_value(j) + 1, json_string_length(j) - 1);
        }
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

/* Whether `c` may continue a JSON token (a bare word or a number). */
static bool token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '+' || c == '-';
}

/*
 * Python's json.dumps writes the non-JSON words NaN, Infinity and -Infinity for those floats
 * (Keras configs hold `Infinity`). Outside strings, each becomes the string marker "\u0000<word>",
 * which jansson accepts with JSON_ALLOW_NUL and the builder turns back into the float; no
 * genuine string can look like one: strings with NUL are refused (*ret_nul says the text
 * escapes one). Writes the rewritten text to `out` and returns whether anything changed.
 */
static bool rewrite_python_numbers(const char *json, size_t len, alk_buf *out, bool *ret_nul) {
    static const char *const words[] = {"-Infinity", "Infinity", "NaN"};
    bool in_string = false;
    bool changed = false;
    size_t copied = 0;
    *ret_nul = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_string) {
            if (c == '\\') {
                *ret_nul = *ret_nul || (len - i >= 6 && memcmp(json + i + 1, "u0000", 5) == 0);
                i++; /* the escaped character cannot end the string */
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
            continue;
        }
        if (i > 0 && token_char(json[i - 1])) {
            continue; /* inside a longer token */
        }
        /* The first character first: a memcmp per position of a long text costs, under the
         * fuzzers' memcmp hooks, more than the parse itself. */
        for (size_t w = 0; w < 3; w++) {
            size_t n = strlen(words[w]);
            if (c == words[w][0] && len - i >= n && memcmp(json + i, words[w], n) == 0 &&
                (i + n == len || !token_char(json[i + n]))) {
                alk_buf_append(out, json + copied, i - copied);
                alk_buf_printf(out, "\"\\u0000%s\"", words[w]);
                copied = i + n;
                i += n - 1;
                changed = true;
                break;
            }
        }
    }
    if (changed) {
        alk_buf_append(out, json + copied, len - copied);
    }
    return changed;
}

/* alk_value_from_json and alk_value_from_python_json. */
static int parse_json(const char *json, size_t len, const alk_value_limits *limits,
                      bool python_numbers, alk_arena *arena, const alk_value **ret_value,
                      alk_diag *diag) {
    alk_value_limits defaults;
    if (limits == NULL) {
        alk_value_limits_default(&defaults);
        limits = &defaults;
    }
    alk_buf rewritten;
    alk_buf_init(&rewritten);
    size_t flags = JSON_REJECT_DUPLICATES;
    bool nul = false;
    if (python_numbers && rewrite_python_numbers(json, len, &rewritten, &nul)) {
        if (alk_buf_error(&rewritten) != ALK_OK) {
            alk_buf_fini(&rewritten);
            return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
        }
        if (nul) {
            alk_buf_fini(&rewritten);
            return alk_diag_set(diag, ALK_EINVAL, "a string contains a NUL byte");
        }
        json = rewritten.data;
        len = rewritten.len;
        flags |= JSON_ALLOW_NUL;
    }
    json_error_t jerr;
    /* JSON_PRESERVE_ORDER is implied by jansson >= 2.8: object keys keep their order. */
    json_t *root = json_loadb(json != NULL ? json : "", len, flags, &jerr);
    alk_buf_fini(&rewritten);
    if (root == NULL) {
        return alk_diag_set(diag, ALK_EINVAL, "JSON error at line %d, column %d: %s", jerr.line,
                            jerr.column, jerr.text);
    }
    json_builder b = {
        .arena = arena, .limits = limits, .diag = diag, .python_numbers = python_numbers};
    const alk_value *value = convert(&b, root, 0);
    json_decref(root);
    if (value == NULL) {
        return b.error;
    }
    *ret_value = value;
    return ALK_OK;
}

int alk_value_from_json(const char *json, size_t len, const alk_value_limits *limits,
                        alk_arena *arena, const alk_value **ret_value, alk_diag *diag) {
    return parse_json(json, len, limits, false, arena, ret_value, diag);
}

int alk_value_from_python_json(const char *json, size_t len, const alk_value_limits *limits,
                               alk_arena *arena, const alk_value **ret_value, alk_diag *diag) {
    return parse_json(json, len, limits, true, arena, ret_value, diag);
}
