/*
 * The `convert` method's request: from a validated request to an alk_convert_request (the reply
 * is written by convert_reply.c).
 *
 * Besides the schema's type checks, this is where the sizes inside the model payload meet their
 * limits, before any plugin sees them: every tensor `{dtype, shape, data}` (anywhere in `model`,
 * frontends.md §7.2/7.3) must have at most max_dims dimensions, at most max_tensor_elements
 * elements (overflow-checked product) and exactly elements × itemsize bytes of data; a graph's
 * `model.graph.nodes` at most max_graph_nodes entries; `inputs` at most max_inputs entries, each
 * shape within max_dims and max_tensor_elements.
 *
 * Thread rule: reentrant.
 */
#include "rpc/rpc.h"

#include "core/alloc.h"
#include "graph/tensor.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Bytes per element of a tensor dtype (numpy codes, graph/tensor.h); 0: unknown. */
static size_t dtype_size(const char *name) {
    alk_dtype dtype;
    return alk_dtype_parse(name, &dtype) ? alk_dtype_size(dtype) : 0;
}

/* A path being walked ("model.weights.x[2]"), truncated to the buffer. */
typedef struct path {
    char text[192];
    size_t len;
} path;

static size_t path_push_key(path *p, const char *key) {
    size_t old = p->len;
    int n = snprintf(p->text + p->len, sizeof(p->text) - p->len, ".%.48s", key);
    if (n > 0) {
        p->len = (size_t)n < sizeof(p->text) - p->len ? p->len + (size_t)n : sizeof(p->text) - 1;
    }
    return old;
}

static size_t path_push_index(path *p, size_t index) {
    size_t old = p->len;
    int n = snprintf(p->text + p->len, sizeof(p->text) - p->len, "[%zu]", index);
    if (n > 0) {
        p->len = (size_t)n < sizeof(p->text) - p->len ? p->len + (size_t)n : sizeof(p->text) - 1;
    }
    return old;
}

static void path_pop(path *p, size_t old) {
    p->len = old;
    p->text[old] = '\0';
}

/*
 * Checks a shape (array of uints) against max_dims and max_tensor_elements; on success writes
 * the element count.
 */
static int check_shape(const alk_value *shape, const alk_rpc_limits *limits, const char *where,
                       size_t *ret_elements, alk_rpc_error *err) {
    if (shape->kind != ALK_VALUE_ARRAY) {
        return alk_rpc_error_set(err, ALK_EINVAL, where, "%s must be an array of uint, not %s",
                                 where, alk_value_kind_name(shape->kind));
    }
    size_t n_dims = shape->as.array.len;
    if (n_dims > limits->max_dims || n_dims > ALK_MAX_DIMS) {
        return alk_rpc_error_set(err, ALK_ELIMIT, where,
                                 "%s has %zu dimensions; max_dims is %" PRIu64, where, n_dims,
                                 limits->max_dims);
    }
    size_t elements = 1;
    for (size_t i = 0; i < n_dims; i++) {
        const alk_value *d = shape->as.array.items[i];
        if (d->kind != ALK_VALUE_INT || d->as.integer < 0) {
            return alk_rpc_error_set(err, ALK_EINVAL, where, "%s[%zu] must be a uint, not %s",
                                     where, i, alk_value_kind_name(d->kind));
        }
        if (!alk_mul_size(elements, (size_t)d->as.integer, &elements) ||
            elements > limits->max_tensor_elements) {
            return alk_rpc_error_set(err, ALK_ELIMIT, where,
                                     "%s has more than %" PRIu64 " elements (max_tensor_elements)",
                                     where, limits->max_tensor_elements);
        }
    }
    *ret_elements = elements;
    return ALK_OK;
}

/* If `map` is a tensor {dtype, shape, data}, checks it. */
static int check_tensor(const alk_value *map, const alk_rpc_limits *limits, path *p,
                        alk_rpc_error *err) {
    const alk_value *dtype = alk_value_get(map, "dtype");
    const alk_value *shape = alk_value_get(map, "shape");
    const alk_value *data = alk_value_get(map, "data");
    if (dtype == NULL || shape == NULL || data == NULL || data->kind != ALK_VALUE_BIN ||
        dtype->kind != ALK_VALUE_STR) {
        return ALK_OK; /* not a tensor */
    }
    size_t old = path_push_key(p, "shape");
    size_t elements;
    int rv = check_shape(shape, limits, p->text, &elements, err);
    path_pop(p, old);
    if (rv != ALK_OK) {
        return rv;
    }
    size_t item = dtype_size(dtype->as.str.bytes);
    if (item == 0) {
        old = path_push_key(p, "dtype");
        rv = alk_rpc_error_set(err, ALK_EINVAL, p->text,
                               "%s: unknown dtype '%.32s' (expected f2 f4 f8 bf16 u1 u2 u4 u8 i1 "
                               "i2 i4 i8 b1)",
                               p->text, dtype->as.str.bytes);
        path_pop(p, old);
        return rv;
    }
    size_t bytes;
    if (!alk_mul_size(elements, item, &bytes) || bytes != data->as.str.len) {
        old = path_push_key(p, "data");
        rv = alk_rpc_error_set(err, ALK_EINVAL, p->text,
                               "%s has %zu bytes; %zu elements of %s need %zu", p->text,
                               data->as.str.len, elements, dtype->as.str.bytes, elements * item);
        path_pop(p, old);
        return rv;
    }
    return ALK_OK;
}

static int check_model(const alk_value *v, const alk_rpc_limits *limits, path *p,
                       alk_rpc_error *err) {
    int rv = ALK_OK;
    if (v->kind == ALK_VALUE_MAP) {
        rv = check_tensor(v, limits, p, err);
        for (size_t i = 0; rv == ALK_OK && i < v->as.map.len; i++) {
            size_t old = path_push_key(p, v->as.map.pairs[i].key->as.str.bytes);
            rv = check_model(v->as.map.pairs[i].value, limits, p, err);
            path_pop(p, old);
        }
    } else if (v->kind == ALK_VALUE_ARRAY) {
        for (size_t i = 0; rv == ALK_OK && i < v->as.array.len; i++) {
            size_t old = path_push_index(p, i);
            rv = check_model(v->as.array.items[i], limits, p, err);
            path_pop(p, old);
        }
    }
    return rv;
}

/* Reads a [k, i, f] triple. ENOTSUP for per-element arrays, EINVAL otherwise. */
static int read_kif(const alk_value *v, const char *where, int ret_kif[3], alk_rpc_error *err) {
    if (v->kind != ALK_VALUE_ARRAY || v->as.array.len != 3) {
        return alk_rpc_error_set(err, ALK_EINVAL, where, "%s must be nil or [k, i, f]", where);
    }
    int kif[3];
    for (size_t j = 0; j < 3; j++) {
        const alk_value *x = v->as.array.items[j];
        if (x->kind == ALK_VALUE_ARRAY) {
            return alk_rpc_error_set(err, ALK_ENOTSUP, where,
                                     "%s: per-element kif arrays are not supported yet; give one "
                                     "[k, i, f] triple per input",
                                     where);
        }
        if (x->kind != ALK_VALUE_INT || x->as.integer < -128 || x->as.integer > 128) {
            return alk_rpc_error_set(err, ALK_EINVAL, where,
                                     "%s[%zu] must be an int in [-128, 128]", where, j);
        }
        kif[j] = (int)x->as.integer;
    }
    if (kif[0] != 0 && kif[0] != 1) {
        return alk_rpc_error_set(err, ALK_EINVAL, where, "%s: k must be 0 or 1, not %d", where,
                                 kif[0]);
    }
    memcpy(ret_kif, kif, sizeof(kif));
    return ALK_OK;
}

/* inputs_kif without inputs: formats for the shapes the tracer reports (one triple, or one per
 * input; alk_convert checks the count against the tracer's inputs). */
static int read_inputs_kif(const alk_value *inputs_kif, const alk_rpc_limits *limits,
                           alk_arena *arena, alk_convert_request *creq, alk_rpc_error *err) {
    bool list = inputs_kif->kind == ALK_VALUE_ARRAY && inputs_kif->as.array.len > 0 &&
                inputs_kif->as.array.items[0]->kind == ALK_VALUE_ARRAY;
    size_t n = list ? inputs_kif->as.array.len : 1;
    if (n > limits->max_inputs) {
        return alk_rpc_error_set(err, ALK_ELIMIT, "inputs_kif",
                                 "inputs_kif has %zu triples; at most %" PRIu64, n,
                                 limits->max_inputs);
    }
    int(*kifs)[3] = alk_arena_calloc(arena, n, sizeof(*kifs));
    if (kifs == NULL) {
        return alk_rpc_error_set(err, ALK_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char where[64];
        (void)snprintf(where, sizeof(where), list ? "inputs_kif[%zu]" : "inputs_kif", i);
        int rv = read_kif(list ? inputs_kif->as.array.items[i] : inputs_kif, where, kifs[i], err);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    creq->inputs_kif = (const int(*)[3])kifs;
    creq->n_inputs_kif = n;
    return ALK_OK;
}

static int read_inputs(const alk_value *body, const alk_rpc_limits *limits, alk_arena *arena,
                       alk_convert_request *creq, alk_rpc_error *err) {
    const alk_value *inputs = alk_value_get(body, "inputs");
    const alk_value *inputs_kif = alk_value_get(body, "inputs_kif");
    if (inputs != NULL && inputs->kind == ALK_VALUE_NIL) {
        inputs = NULL;
    }
    if (inputs_kif != NULL && inputs_kif->kind == ALK_VALUE_NIL) {
        inputs_kif = NULL;
    }
    if (inputs == NULL) {
        return inputs_kif != NULL ? read_inputs_kif(inputs_kif, limits, arena, creq, err) : ALK_OK;
    }
    size_t n = inputs->as.array.len;
    if (n == 0 || n > limits->max_inputs) {
        return alk_rpc_error_set(err, n == 0 ? ALK_EINVAL : ALK_ELIMIT, "inputs",
                                 "inputs has %zu entries; 1 to %" PRIu64 " are accepted", n,
                                 limits->max_inputs);
    }
    alk_input_spec *specs = alk_arena_calloc(arena, n, sizeof(*specs));
    if (specs == NULL) {
        return alk_rpc_error_set(err, ALK_ENOMEM, NULL, "out of memory");
    }
    /* inputs_kif: one triple for all inputs, or a list of one triple per input. */
    const alk_value *shared_kif = NULL;
    if (inputs_kif != NULL) {
        bool list =
            inputs_kif->as.array.len > 0 && inputs_kif->as.array.items[0]->kind == ALK_VALUE_ARRAY;
        if (!list) {
            shared_kif = inputs_kif;
        } else if (inputs_kif->as.array.len != n) {
            return alk_rpc_error_set(err, ALK_EINVAL, "inputs_kif",
                                     "inputs_kif has %zu triples for %zu inputs",
                                     inputs_kif->as.array.len, n);
        }
    }
    for (size_t i = 0; i < n; i++) {
        char where[64];
        const alk_value *input = inputs->as.array.items[i];
        const alk_value *shape = alk_value_get(input, "shape");
        (void)snprintf(where, sizeof(where), "inputs[%zu].shape", i);
        if (shape == NULL) {
            return alk_rpc_error_set(err, ALK_EINVAL, where, "missing field '%s'", where);
        }
        size_t elements;
        int rv = check_shape(shape, limits, where, &elements, err);
        if (rv != ALK_OK) {
            return rv;
        }
        specs[i].n_dims = shape->as.array.len;
        for (size_t d = 0; d < specs[i].n_dims; d++) {
            specs[i].dims[d] = shape->as.array.items[d]->as.integer;
        }
        const alk_value *kif = alk_value_get(input, "kif");
        if (kif != NULL && kif->kind != ALK_VALUE_NIL) {
            (void)snprintf(where, sizeof(where), "inputs[%zu].kif", i);
        } else if (inputs_kif != NULL) {
            kif = shared_kif != NULL ? shared_kif : inputs_kif->as.array.items[i];
            (void)snprintf(where, sizeof(where),
                           shared_kif != NULL ? "inputs_kif" : "inputs_kif[%zu]", i);
        } else {
            kif = NULL;
        }
        if (kif != NULL) {
            rv = read_kif(kif, where, specs[i].kif, err);
            if (rv != ALK_OK) {
                return rv;
            }
            specs[i].has_kif = true;
        }
    }
    creq->inputs = specs;
    creq->n_inputs = n;
    return ALK_OK;
}

/* The framework key, by the one rule of alk_convert_framework, copied into `arena`. */
static int resolve_framework(const alk_value *body, alk_arena *arena, alk_convert_request *creq,
                             alk_rpc_error *err) {
    const alk_value *framework = alk_value_get(body, "framework");
    const alk_value *module = alk_value_get(body, "module");
    creq->framework =
        framework != NULL && framework->kind == ALK_VALUE_STR ? framework->as.str.bytes : NULL;
    creq->module = module != NULL && module->kind == ALK_VALUE_STR ? module->as.str.bytes : NULL;
    char key[128];
    int rv = alk_convert_framework(creq, key, sizeof(key), &err->diag);
    if (rv != ALK_OK) {
        err->code = rv;
        (void)snprintf(err->where, sizeof(err->where), "%s",
                       creq->framework != NULL ? "framework" : "module");
        return rv;
    }
    size_t len = strlen(key);
    char *copy = alk_arena_alloc(arena, len + 1);
    if (copy == NULL) {
        return alk_rpc_error_set(err, ALK_ENOMEM, NULL, "out of memory");
    }
    memcpy(copy, key, len + 1);
    creq->framework = copy;
    return ALK_OK;
}

/* HWConfig(adder_size: int, carry_size: int, latency_cutoff: float). The sizes divide in the
 * latency estimates (0 is refused, as Python's // refuses it; negative sizes are the reference's
 * own quirks and accepted); the cutoff must be a finite number. */
static int read_hwconf(const alk_value *hwconf, alk_hwconf *ret_hwconf, alk_rpc_error *err) {
    static const char *const names[] = {"adder_size", "carry_size"};
    int64_t sizes[2];
    for (size_t i = 0; i < 2; i++) {
        const alk_value *x = hwconf->as.array.items[i];
        char where[16];
        (void)snprintf(where, sizeof(where), "hwconf[%zu]", i);
        if (x->kind != ALK_VALUE_INT || x->as.integer == 0 || x->as.integer < -(1 << 20) ||
            x->as.integer > (1 << 20)) {
            return alk_rpc_error_set(err, ALK_EINVAL, where,
                                     "%s (%s) must be a nonzero int in [-2^20, 2^20]", where,
                                     names[i]);
        }
        sizes[i] = x->as.integer;
    }
    const alk_value *cutoff = hwconf->as.array.items[2];
    double latency_cutoff =
        cutoff->kind == ALK_VALUE_INT ? (double)cutoff->as.integer : cutoff->as.number;
    if (!isfinite(latency_cutoff)) {
        return alk_rpc_error_set(err, ALK_EINVAL, "hwconf[2]",
                                 "hwconf[2] (latency_cutoff) must be a finite number");
    }
    *ret_hwconf = (alk_hwconf){
        .adder_size = sizes[0],
        .carry_size = sizes[1],
        .latency_cutoff = latency_cutoff,
    };
    return ALK_OK;
}

int alk_rpc_convert_request(const alk_rpc_request *request, const alk_rpc_limits *limits,
                            alk_arena *arena, alk_convert_request *ret_request,
                            alk_rpc_convert_options *ret_options, alk_rpc_error *err) {
    const alk_value *body = request->body;
    alk_convert_request creq;
    alk_convert_request_init(&creq);
    creq.max_input_elements = limits->max_tensor_elements;
    alk_rpc_convert_options options = {0};

    creq.model = alk_value_get(body, "model");
    path p = {.text = "model", .len = 5};
    const alk_value *graph = alk_value_get(creq.model, "graph");
    const alk_value *nodes = alk_value_get(graph, "nodes");
    if (nodes != NULL && nodes->kind == ALK_VALUE_ARRAY &&
        nodes->as.array.len > limits->max_graph_nodes) {
        return alk_rpc_error_set(err, ALK_ELIMIT, "model.graph.nodes",
                                 "model.graph.nodes has %zu nodes; max_graph_nodes is %" PRIu64,
                                 nodes->as.array.len, limits->max_graph_nodes);
    }
    int rv = check_model(creq.model, limits, &p, err);
    if (rv != ALK_OK) {
        return rv;
    }
    rv = read_inputs(body, limits, arena, &creq, err);
    if (rv != ALK_OK) {
        return rv;
    }
    const alk_value *hwconf = alk_value_get(body, "hwconf");
    if (hwconf != NULL && hwconf->kind == ALK_VALUE_ARRAY) {
        rv = read_hwconf(hwconf, &creq.hwconf, err);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    const alk_value *solver_options = alk_value_get(body, "solver_options");
    if (solver_options != NULL && solver_options->kind == ALK_VALUE_MAP) {
        rv = alk_rpc_solver_options(solver_options, &creq.solver, err);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    /* Last, so that a field's own error is reported before "no framework". */
    rv = resolve_framework(body, arena, &creq, err);
    if (rv != ALK_OK) {
        return rv;
    }
    const alk_value *dump = alk_value_get(body, "dump");
    creq.dump = dump != NULL && dump->kind == ALK_VALUE_BOOL && dump->as.boolean;

    const alk_value *timeout = alk_value_get(body, "timeout_ms");
    if (timeout != NULL && timeout->kind == ALK_VALUE_INT) {
        options.timeout_ms = (uint64_t)timeout->as.integer;
    }
    const alk_value *encoding = alk_value_get(body, "alir_encoding");
    options.gzip = encoding != NULL && encoding->kind == ALK_VALUE_STR &&
                   strcmp(encoding->as.str.bytes, "gzip") == 0;

    *ret_request = creq;
    *ret_options = options;
    return ALK_OK;
}
