/*
 * ALIR JSON reader: spec versions 2, 3 and 4, plain or gzip.
 *
 * A gzip file is decompressed as jansson reads it (json_load_callback). jansson builds the
 * document tree (its allocations go through alk_malloc, so fault injection
 * covers them); this file walks the tree into an alk_program, upgrading version-2 and version-3
 * op records to version 4 on the way (spec §4.5), then validates the result. Every error names
 * the place: the JSON line/column for syntax, "model[i]" / "op N" and the field otherwise.
 *
 * Thread rule: reentrant; the one-time jansson allocator setup is guarded by pthread_once.
 */
#include "alir/json.h"
#include "alir/validate.h"
#include "core/alloc.h"
#include "core/io.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t jansson_once = PTHREAD_ONCE_INIT;

/* jansson does not always say that it ran out of memory (an early failure leaves its error text
 * empty), so its allocator notes failures here, per thread. */
static _Thread_local bool jansson_alloc_failed;

static void *jansson_malloc(size_t size) {
    void *p = alk_malloc(size);
    if (p == NULL) {
        jansson_alloc_failed = true;
    }
    return p;
}

static void use_our_allocator(void) {
    json_set_alloc_funcs(jansson_malloc, alk_free);
}

static bool get_i64(const json_t *v, int64_t *ret) {
    if (!json_is_integer(v)) {
        return false;
    }
    *ret = (int64_t)json_integer_value(v);
    return true;
}

/* A JSON number as a double, and whether it was written as an integer. */
static bool get_number(const json_t *v, double *ret, bool *ret_is_int) {
    if (json_is_integer(v)) {
        *ret = (double)json_integer_value(v);
        *ret_is_int = true;
        return true;
    }
    if (json_is_real(v)) {
        *ret = json_real_value(v);
        *ret_is_int = false;
        return true;
    }
    return false;
}

/* Reads a list of `n` int32 values from model[index]. */
/* `list` must be a list of `n` items (`what`: "integers") called `name`. */
static int check_list_size(const json_t *list, size_t n, const char *name, const char *what,
                           alk_diag *diag) {
    if (!json_is_array(list) || json_array_size(list) != n) {
        return alk_diag_set(diag, ALK_EINVAL, "%s must be a list of %zu %s", name, n, what);
    }
    return ALK_OK;
}

static int read_i32_list(const json_t *list, size_t n, const char *name, int32_t *out,
                         alk_diag *diag) {
    int rv = check_list_size(list, n, name, "integers", diag);
    if (rv != ALK_OK) {
        return rv;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        if (!get_i64(json_array_get(list, i), &v) || v < INT32_MIN || v > INT32_MAX) {
            return alk_diag_set(diag, ALK_EINVAL, "%s[%zu] must be an int32 integer", name, i);
        }
        out[i] = (int32_t)v;
    }
    return ALK_OK;
}

static int read_negs(const json_t *list, size_t n, bool *out, alk_diag *diag) {
    int rv = check_list_size(list, n, "out_negs", "booleans", diag);
    if (rv != ALK_OK) {
        return rv;
    }
    for (size_t j = 0; j < n; j++) {
        const json_t *v = json_array_get(list, j);
        int64_t i;
        if (json_is_boolean(v)) {
            out[j] = json_is_true(v);
        } else if (get_i64(v, &i)) {
            out[j] = i != 0;
        } else {
            return alk_diag_set(diag, ALK_EINVAL, "out_negs[%zu] must be a boolean", j);
        }
    }
    return ALK_OK;
}

static int read_qint(const json_t *v, alk_qint *ret, uint8_t *ret_int_fields, const char *where,
                     alk_diag *diag) {
    double x[3];
    bool is_int[3];
    bool ok = json_is_array(v) && json_array_size(v) == 3;
    for (size_t k = 0; ok && k < 3; k++) {
        ok = get_number(json_array_get(v, k), &x[k], &is_int[k]);
    }
    if (!ok) {
        return alk_diag_set(diag, ALK_EINVAL, "%s: interval must be [min, max, step] numbers",
                            where);
    }
    *ret = (alk_qint){x[0], x[1], x[2]};
    *ret_int_fields = (uint8_t)((is_int[0] ? ALK_INT_MIN : 0) | (is_int[1] ? ALK_INT_MAX : 0) |
                                (is_int[2] ? ALK_INT_STEP : 0));
    return ALK_OK;
}

/* An op in the version-4 form, before it is appended. */
typedef struct op_record {
    int64_t opcode;
    uint32_t addr[3];
    uint32_t n_addr;
    int64_t data[2];
    uint32_t n_data;
    const json_t *addr_list; /* v3/v4: read from here instead of addr[] */
    const json_t *data_list;
    alk_qint qint;
    uint8_t int_fields;
    double latency;
    double cost;
} op_record;

static int32_t low32(int64_t packed) {
    return (int32_t)(uint32_t)((uint64_t)packed & 0xFFFFFFFFu);
}

static int32_t high32(int64_t packed) {
    return (int32_t)(uint32_t)((uint64_t)packed >> 32);
}

/* Version 2 record [id0, id1, opcode, packed, qint, latency, cost] -> version 3 addr/data. */
static int upgrade_v2(int64_t id0, int64_t id1, int64_t packed, op_record *r, size_t i,
                      alk_diag *diag) {
    int64_t addr[3] = {id0, id1, low32(packed)};
    switch (r->opcode) {
    case ALK_OP_NEG:
    case ALK_OP_RELU:
    case ALK_OP_QUANTIZE:
        r->n_addr = 1;
        break;
    case ALK_OP_READ:
        r->data[r->n_data++] = id0;
        break;
    case ALK_OP_ADD:
    case ALK_OP_SUB:
        r->n_addr = 2;
        r->data[r->n_data++] = packed;
        break;
    case ALK_OP_ADD_CONST:
        r->n_addr = 1;
        r->data[r->n_data++] = low32(packed);
        r->data[r->n_data++] = high32(packed);
        break;
    case ALK_OP_CONST:
        r->data[r->n_data++] = packed;
        break;
    case ALK_OP_MUX:
        r->n_addr = 3;
        r->data[r->n_data++] = high32(packed);
        break;
    case ALK_OP_MUL:
        r->n_addr = 2;
        break;
    case ALK_OP_LOOKUP:
    case ALK_OP_BIT_UNARY:
        r->n_addr = 1;
        r->data[r->n_data++] = packed;
        break;
    case ALK_OP_BIT_BINARY:
        r->n_addr = 2;
        r->data[r->n_data++] = low32(packed);
        r->data[r->n_data++] = (int64_t)(((uint64_t)packed >> 56) & 0xFF);
        break;
    default:
        return alk_diag_set(diag, ALK_EINVAL,
                            "op %zu: unknown opcode %" PRId64 " in a version-2 file", i, r->opcode);
    }
    for (uint32_t a = 0; a < r->n_addr; a++) {
        if (addr[a] < 0 || addr[a] > UINT32_MAX) {
            return alk_diag_set(diag, ALK_EINVAL, "op %zu: operand %" PRIu32 " is %" PRId64, i, a,
                                addr[a]);
        }
        r->addr[a] = (uint32_t)addr[a];
    }
    return ALK_OK;
}

/* Parses op record `v` (model[5][i]) of a file of spec `version` into `r`. */
static int read_op_record(const json_t *v, int version, size_t i, op_record *r, alk_diag *diag) {
    size_t want = version == 2 ? 7 : 6;
    if (!json_is_array(v) || json_array_size(v) != want) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "op %zu: a version-%d op must be a list of %zu fields", i, version,
                            want);
    }
    *r = (op_record){0};
    size_t base = version == 2 ? 4 : 3; /* index of the interval */
    int64_t id0 = 0;
    int64_t id1 = 0;
    int64_t packed = 0;
    if (version == 2) {
        if (!get_i64(json_array_get(v, 0), &id0) || !get_i64(json_array_get(v, 1), &id1) ||
            !get_i64(json_array_get(v, 2), &r->opcode) || !get_i64(json_array_get(v, 3), &packed)) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "op %zu: id0, id1, opcode and payload must be integers", i);
        }
    } else {
        r->addr_list = json_array_get(v, 0);
        r->data_list = json_array_get(v, 2);
        if (!get_i64(json_array_get(v, 1), &r->opcode)) {
            return alk_diag_set(diag, ALK_EINVAL, "op %zu: opcode must be an integer", i);
        }
        if (!json_is_array(r->addr_list) || !json_is_array(r->data_list)) {
            return alk_diag_set(diag, ALK_EINVAL, "op %zu: addr and data must be lists", i);
        }
    }
    char where[48];
    (void)snprintf(where, sizeof(where), "op %zu", i);
    int rv = read_qint(json_array_get(v, base), &r->qint, &r->int_fields, where, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    bool is_int;
    if (!get_number(json_array_get(v, base + 1), &r->latency, &is_int)) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu: latency must be a number", i);
    }
    r->int_fields |= is_int ? ALK_INT_LATENCY : 0;
    if (!get_number(json_array_get(v, base + 2), &r->cost, &is_int)) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu: cost must be a number", i);
    }
    r->int_fields |= is_int ? ALK_INT_COST : 0;
    if (r->opcode < INT32_MIN || r->opcode > INT32_MAX) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu: unknown opcode %" PRId64, i, r->opcode);
    }
    if (version == 2) {
        rv = upgrade_v2(id0, id1, packed, r, i, diag);
    }
    if (rv == ALK_OK && version <= 3 && r->opcode == ALK_OP_QUANTIZE) {
        /* v3 -> v4: quantize gains its relative shift, 0 for every older file. */
        r->data_list = NULL;
        r->n_data = 1;
        r->data[0] = 0;
    }
    return rv;
}

/* Appends the op of record `r` to `program`, copying list operands through scratch vectors. */
static int append_op(alk_program *program, const op_record *r, size_t i, alk_vec *addr,
                     alk_vec *data, alk_diag *diag) {
    addr->len = 0;
    data->len = 0;
    int rv = ALK_OK;
    if (r->addr_list != NULL) {
        for (size_t a = 0; rv == ALK_OK && a < json_array_size(r->addr_list); a++) {
            int64_t v;
            if (!get_i64(json_array_get(r->addr_list, a), &v) || v < 0 || v > UINT32_MAX) {
                return alk_diag_set(diag, ALK_EINVAL,
                                    "op %zu: operand %zu must be an integer in 0..2^32-1", i, a);
            }
            uint32_t u = (uint32_t)v;
            rv = alk_vec_push(addr, &u);
        }
    } else {
        rv = alk_vec_append(addr, r->addr, r->n_addr);
    }
    if (r->data_list != NULL) {
        for (size_t d = 0; rv == ALK_OK && d < json_array_size(r->data_list); d++) {
            int64_t v;
            if (!get_i64(json_array_get(r->data_list, d), &v)) {
                return alk_diag_set(diag, ALK_EINVAL,
                                    "op %zu: payload entry %zu must be an int64 integer", i, d);
            }
            rv = alk_vec_push(data, &v);
        }
    } else if (rv == ALK_OK) {
        rv = alk_vec_append(data, r->data, r->n_data);
    }
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "op %zu: out of memory", i);
    }
    if (addr->len > UINT32_MAX || data->len > UINT32_MAX) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu: too many operands", i);
    }
    int64_t index =
        alk_program_add_op(program, (int32_t)r->opcode, addr->items, (uint32_t)addr->len,
                           data->items, (uint32_t)data->len, r->qint, r->latency, r->cost);
    if (index < 0) {
        return alk_diag_set(diag, alk_program_error(program), "op %zu: out of memory", i);
    }
    program->ops[index].int_fields = r->int_fields;
    return ALK_OK;
}

static int read_ops(alk_program *program, const json_t *ops, int version, alk_diag *diag) {
    if (!json_is_array(ops)) {
        return alk_diag_set(diag, ALK_EINVAL, "model[5] (ops) must be a list");
    }
    alk_vec addr;
    alk_vec data;
    alk_vec_init(&addr, sizeof(uint32_t));
    alk_vec_init(&data, sizeof(int64_t));
    int rv = ALK_OK;
    for (size_t i = 0; rv == ALK_OK && i < json_array_size(ops); i++) {
        op_record r;
        rv = read_op_record(json_array_get(ops, i), version, i, &r, diag);
        if (rv == ALK_OK) {
            rv = append_op(program, &r, i, &addr, &data, diag);
        }
    }
    alk_vec_fini(&addr);
    alk_vec_fini(&data);
    return rv;
}

static int read_table(alk_program *program, const json_t *v, size_t t, alk_diag *diag) {
    const json_t *spec = json_object_get(v, "spec");
    const json_t *values = json_object_get(v, "table");
    const json_t *hash = json_object_get(spec, "hash");
    const json_t *out_qint = json_object_get(spec, "out_qint");
    int64_t inp_width;
    if (!json_is_object(v) || !json_is_array(values) || !json_is_string(hash) ||
        !json_is_object(out_qint) || !get_i64(json_object_get(spec, "inp_width"), &inp_width)) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "lookup table %zu: needs spec.hash, spec.out_qint, spec.inp_width and "
                            "table",
                            t);
    }
    const char *hash_text = json_string_value(hash);
    for (const char *c = hash_text; *c != '\0'; c++) {
        if (*c < 0x20 || *c > 0x7e) {
            return alk_diag_set(diag, ALK_EINVAL, "lookup table %zu: spec.hash is not printable",
                                t);
        }
    }
    if (strlen(hash_text) > 64) {
        return alk_diag_set(diag, ALK_EINVAL, "lookup table %zu: spec.hash is longer than 64", t);
    }
    static const char *const bound_names[3] = {"min", "max", "step"};
    double bounds[3];
    uint8_t int_fields = 0;
    for (int k = 0; k < 3; k++) {
        bool is_int;
        if (!get_number(json_object_get(out_qint, bound_names[k]), &bounds[k], &is_int)) {
            return alk_diag_set(diag, ALK_EINVAL, "lookup table %zu: out_qint.%s must be a number",
                                t, bound_names[k]);
        }
        int_fields |= (uint8_t)(is_int ? (ALK_INT_MIN << k) : 0);
    }
    size_t len = json_array_size(values);
    int32_t *entries = alk_calloc(len == 0 ? 1 : len, sizeof(int32_t));
    if (entries == NULL) {
        return alk_diag_set(diag, ALK_ENOMEM, "lookup table %zu: out of memory", t);
    }
    for (size_t e = 0; e < len; e++) {
        int64_t x;
        if (!get_i64(json_array_get(values, e), &x) || x < INT32_MIN || x > INT32_MAX) {
            alk_free(entries);
            return alk_diag_set(diag, ALK_EINVAL, "lookup table %zu: entry %zu is not an int32", t,
                                e);
        }
        entries[e] = (int32_t)x;
    }
    alk_qint q = {bounds[0], bounds[1], bounds[2]};
    int64_t index = alk_program_add_table(program, hash_text, q, inp_width, entries, len);
    if (index < 0) {
        return alk_diag_set(diag, alk_program_error(program), "lookup table %zu: out of memory", t);
    }
    program->tables[index].out_qint_int_fields = int_fields;
    return ALK_OK;
}

static int read_tables(alk_program *program, const json_t *tables, alk_diag *diag) {
    if (tables == NULL || json_is_null(tables)) {
        return ALK_OK;
    }
    if (!json_is_array(tables)) {
        return alk_diag_set(diag, ALK_EINVAL, "model[8] (lookup tables) must be a list or null");
    }
    for (size_t t = 0; t < json_array_size(tables); t++) {
        int rv = read_table(program, json_array_get(tables, t), t, diag);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return ALK_OK;
}

/* Checks the wrapper object and returns its spec version. */
static int read_wrapper(const json_t *root, int *ret_version, alk_diag *diag) {
    if (json_is_array(root)) {
        return alk_diag_set(diag, ALK_EVERSION,
                            "a bare model list without the {\"model\", \"meta\", \"spec_version\"} "
                            "wrapper is the unversioned pre-2 format, which is not supported");
    }
    if (!json_is_object(root)) {
        return alk_diag_set(diag, ALK_EINVAL, "the document must be a JSON object");
    }
    const char *meta = json_string_value(json_object_get(root, "meta"));
    if (meta == NULL || (strcmp(meta, "ALIRModel") != 0 && strcmp(meta, "DAISModel") != 0)) {
        return alk_diag_set(diag, ALK_EINVAL, "\"meta\" must be \"ALIRModel\" (got %s%s%s)",
                            meta ? "\"" : "", meta ? meta : "nothing", meta ? "\"" : "");
    }
    int64_t version;
    if (!get_i64(json_object_get(root, "spec_version"), &version)) {
        return alk_diag_set(diag, ALK_EINVAL, "\"spec_version\" must be an integer");
    }
    if (version < 2 || version > ALK_ALIR_SPEC_VERSION) {
        return alk_diag_set(diag, ALK_EVERSION,
                            "spec_version %" PRId64 " is not supported (supported: 2, 3, 4)",
                            version);
    }
    *ret_version = (int)version;
    return ALK_OK;
}

static int read_model(const json_t *root, alk_program **ret_program, alk_diag *diag) {
    int version = 0;
    int rv = read_wrapper(root, &version, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    const json_t *model = json_object_get(root, "model");
    size_t n = json_array_size(model);
    if (!json_is_array(model) || (n != 8 && n != 9)) {
        return alk_diag_set(diag, ALK_EINVAL, "\"model\" must be a list of 8 or 9 elements");
    }
    const json_t *shape = json_array_get(model, 0);
    int64_t n_in;
    int64_t n_out;
    if (!json_is_array(shape) || json_array_size(shape) != 2 ||
        !get_i64(json_array_get(shape, 0), &n_in) || !get_i64(json_array_get(shape, 1), &n_out) ||
        n_in < 0 || n_out < 0 || n_in > INT32_MAX || n_out > INT32_MAX) {
        return alk_diag_set(diag, ALK_EINVAL, "model[0] (shape) must be [n_in, n_out]");
    }
    /* The shape sizes the program: its lists must hold that many items before anything is
     * allocated, or two numbers of a 100-byte file would allocate gigabytes. */
    static const char *const out_lists[] = {"out_idxs", "out_shifts", "out_negs"};
    rv = check_list_size(json_array_get(model, 1), (size_t)n_in, "inp_shifts", "integers", diag);
    for (size_t k = 0; rv == ALK_OK && k < 3; k++) {
        rv = check_list_size(json_array_get(model, 2 + k), (size_t)n_out, out_lists[k],
                             k < 2 ? "integers" : "booleans", diag);
    }
    if (rv != ALK_OK) {
        return rv;
    }
    alk_program *program = NULL;
    rv = alk_program_new((uint32_t)n_in, (uint32_t)n_out, &program);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "out of memory");
    }
    int64_t carry = 0;
    int64_t adder = 0;
    rv = read_i32_list(json_array_get(model, 1), (size_t)n_in, "inp_shifts", program->inp_shifts,
                       diag);
    if (rv == ALK_OK) {
        rv = read_i32_list(json_array_get(model, 2), (size_t)n_out, "out_idxs", program->out_idxs,
                           diag);
    }
    if (rv == ALK_OK) {
        rv = read_i32_list(json_array_get(model, 3), (size_t)n_out, "out_shifts",
                           program->out_shifts, diag);
    }
    if (rv == ALK_OK) {
        rv = read_negs(json_array_get(model, 4), (size_t)n_out, program->out_negs, diag);
    }
    if (rv == ALK_OK) {
        rv = read_ops(program, json_array_get(model, 5), version, diag);
    }
    if (rv == ALK_OK && (!get_i64(json_array_get(model, 6), &carry) ||
                         !get_i64(json_array_get(model, 7), &adder))) {
        rv = alk_diag_set(diag, ALK_EINVAL,
                          "model[6] and model[7] (carry and adder size) must "
                          "be integers");
    }
    if (rv == ALK_OK) {
        program->carry_size = carry;
        program->adder_size = adder;
        rv = read_tables(program, json_array_get(model, 8), diag);
    }
    if (rv == ALK_OK) {
        rv = alk_program_validate(program, diag);
    }
    if (rv != ALK_OK) {
        alk_program_free(program);
        return rv;
    }
    *ret_program = program;
    return ALK_OK;
}

/* jansson's source of a gzip stream: decompressed on demand, so that a text that is not JSON
 * stops at its first bad byte and no whole text is held (an ALIR file may be a gigabyte). */
typedef struct gzip_source {
    alk_gunzip_reader *reader;
    int rv; /* the reader's first error */
    alk_diag *diag;
} gzip_source;

static size_t read_gzip(void *buffer, size_t size, void *data) {
    gzip_source *source = data;
    size_t n = 0;
    source->rv = alk_gunzip_read(source->reader, buffer, size, &n, source->diag);
    return source->rv == ALK_OK ? n : (size_t)-1;
}

/* The JSON tree of `bytes`, plain or gzip; NULL with *ret_rv set (and `diag` for the stream's
 * own errors) when it is not one. */
static json_t *load_json(const void *bytes, size_t len, json_error_t *jerr, int *ret_rv,
                         alk_diag *diag) {
    *ret_rv = ALK_OK;
    if (!alk_is_gzip(bytes, len)) {
        return json_loadb(bytes != NULL ? bytes : "", len, JSON_REJECT_DUPLICATES, jerr);
    }
    gzip_source source = {.diag = diag};
    *ret_rv = alk_gunzip_reader_new(bytes, len, ALK_ALIR_MAX_BYTES, &source.reader, diag);
    if (*ret_rv != ALK_OK) {
        return NULL;
    }
    json_t *root = json_load_callback(read_gzip, &source, JSON_REJECT_DUPLICATES, jerr);
    alk_gunzip_reader_free(source.reader);
    /* A broken stream is reported as such, not as the JSON error it caused. */
    *ret_rv = source.rv;
    if (source.rv != ALK_OK) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

int alk_alir_parse(const void *bytes, size_t len, alk_program **ret_program, alk_diag *diag) {
    (void)pthread_once(&jansson_once, use_our_allocator);
    json_error_t jerr;
    jansson_alloc_failed = false;
    int rv;
    json_t *root = load_json(bytes, len, &jerr, &rv, diag);
    if (jansson_alloc_failed) {
        /* Some of jansson's growth paths survive a failed allocation; report it all the same so
         * that an allocation failure always surfaces as ALK_ENOMEM. */
        json_decref(root);
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory while parsing JSON");
    }
    if (rv != ALK_OK) {
        return rv;
    }
    if (root == NULL) {
        return alk_diag_set(diag, ALK_EINVAL, "JSON error at line %d, column %d: %s", jerr.line,
                            jerr.column, jerr.text);
    }
    rv = read_model(root, ret_program, diag);
    json_decref(root);
    return rv;
}

int alk_alir_read_file(const char *path, alk_program **ret_program, alk_diag *diag) {
    alk_buf bytes;
    alk_buf_init(&bytes);
    int rv = alk_read_file(path, ALK_ALIR_MAX_BYTES, &bytes, diag);
    if (rv == ALK_OK) {
        rv = alk_alir_parse(bytes.data, bytes.len, ret_program, diag);
        if (rv != ALK_OK) {
            alk_diag_prefix(diag, "%s: ", path);
        }
    }
    alk_buf_fini(&bytes);
    return rv;
}
