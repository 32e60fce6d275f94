/*
 * Arrays of symbolic variables, part 6 of 7 (see fva_int.h): pending arrays, the reference's
 * RetardedFVArray (spec trace-alir.md §2.10, frontends §2.3).
 *
 * Applying a table function records it instead of tracing it: each element keeps its variable
 * and gains a chain of steps (apply tanh, multiply by 3, subtract 1, ...). Quantizing the array
 * evaluates the chain in float64 on every point of the element's interval (numpy.linspace, raw-node
 * order) and looks the element up in the resulting table.
 *
 * Design. The reference keeps one Python closure per array; composing a numeric *array* into it
 * broadcasts the whole grid against that array and breaks. Here every element owns its chain, so
 * a per-element constant (BatchNorm's scale after an activation) composes element by element.
 * Chains are immutable and shared: composing a scalar onto an array whose elements share a chain
 * makes one new step, not one per element. Tables are shared within one quantize call between
 * elements with the same interval, format and function (chains compared by structure), which
 * reproduces the reference's per-call cache key (qint, kif) when all elements share a function.
 *
 * The float functions are the formulas the reference hands numpy, operation for operation (e.g.
 * elu uses exp(x) - 1, not expm1), evaluated with libm. numpy's float64 sin/exp/... (SIMD code on
 * some machines) may differ from glibc in the last ulp; a table entry can only differ when a
 * value lies within an ulp of a rounding boundary of its quantization (spec §6.3.2). The example
 * model's table reproduces the reference's SHA-256 name, which pins its 8192 entries.
 *
 * alk_fva_map_fn, the direct path, is a custom function tabulated at once.
 *
 * Memory: steps, tables and scratch live in the trace's arena. A custom function's `user` pointer
 * is borrowed until the trace is freed. Thread rule: the thread that owns the trace context.
 */
#include "trace/fva_int.h"

#include <stdio.h>
#include <string.h>

/* Step kinds beyond the alk__pop operations. */
enum { STEP_FN = 100, STEP_CUSTOM = 101 };

struct alk__pstep {
    const alk__pstep *prev; /* applied before this step; NULL: the element's own value */
    uint64_t hash;          /* of the whole chain, so that table keys compare cheaply */
    uint32_t depth;         /* number of steps in the chain */
    int kind;               /* an alk__pop, STEP_FN or STEP_CUSTOM */
    alk_unary_fn fn;
    double c; /* the operand, or the function's parameter (ELU's alpha) */
    alk_float_fn custom;
    void *user;
};

/* ---------------------------------------------------------------------------------------- */
/* Table functions                                                                          */
/* ---------------------------------------------------------------------------------------- */

static const char *const fn_names[] = {
    [ALK_FN_SIN] = "sin",
    [ALK_FN_COS] = "cos",
    [ALK_FN_TAN] = "tan",
    [ALK_FN_EXP] = "exp",
    [ALK_FN_LOG] = "log",
    [ALK_FN_SQRT] = "sqrt",
    [ALK_FN_TANH] = "tanh",
    [ALK_FN_SINH] = "sinh",
    [ALK_FN_COSH] = "cosh",
    [ALK_FN_ARCCOS] = "arccos",
    [ALK_FN_ARCSIN] = "arcsin",
    [ALK_FN_ARCTAN] = "arctan",
    [ALK_FN_ARCSINH] = "arcsinh",
    [ALK_FN_ARCCOSH] = "arccosh",
    [ALK_FN_ARCTANH] = "arctanh",
    [ALK_FN_EXP2] = "exp2",
    [ALK_FN_EXPM1] = "expm1",
    [ALK_FN_LOG2] = "log2",
    [ALK_FN_LOG10] = "log10",
    [ALK_FN_LOG1P] = "log1p",
    [ALK_FN_CBRT] = "cbrt",
    [ALK_FN_RECIPROCAL] = "reciprocal",
    [ALK_FN_FLOOR] = "floor",
    [ALK_FN_CEIL] = "ceil",
    [ALK_FN_RINT] = "round",
    [ALK_FN_SIGMOID] = "sigmoid",
    [ALK_FN_SILU] = "silu",
    [ALK_FN_GELU] = "gelu",
    [ALK_FN_GELU_TANH] = "gelu_tanh",
    [ALK_FN_ELU] = "elu",
    [ALK_FN_SELU] = "selu",
    [ALK_FN_SOFTPLUS] = "softplus",
    [ALK_FN_SOFTSIGN] = "softsign",
    [ALK_FN_HARD_SIGMOID] = "hard_sigmoid",
    [ALK_FN_HARD_SILU] = "hard_silu",
    [ALK_FN_HARDSIGMOID_TORCH] = "hardsigmoid",
    [ALK_FN_HARDSWISH_TORCH] = "hardswish",
    [ALK_FN_LOG_SIGMOID] = "log_sigmoid",
    [ALK_FN_RSQRT] = "rsqrt",
};

const char *alk_unary_fn_name(alk_unary_fn fn) {
    if ((unsigned)fn >= sizeof(fn_names) / sizeof(fn_names[0])) {
        return NULL;
    }
    return fn_names[fn];
}

/* np.clip with numbers: a NaN stays NaN (it fails both comparisons). */
static double clip(double x, double lo, double hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

static double sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x));
}

static double hard_sigmoid_keras(double x) {
    return clip(x + 3.0, 0.0, 6.0) / 6.0;
}

static double hard_sigmoid_torch(double x) {
    return clip(x / 6.0 + 0.5, 0.0, 1.0);
}

/* x > 0 ? x : alpha * (exp(x) - 1): numpy's where evaluates both branches, the choice is the
 * same. With alpha 1 the product is exact, so one formula serves Keras's and torch's elu. */
static double elu(double x, double alpha) {
    return x > 0 ? x : alpha * (exp(x) - 1.0);
}

/* Left-to-right as Python evaluates `0.5 * x * (...)`. */
static double gelu(double x) {
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

static double gelu_tanh(double x) {
    const double k = sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * pow(x, 3.0))));
}

static double eval_fn(alk_unary_fn fn, double param, double x) {
    switch (fn) {
    case ALK_FN_SIN:
        return sin(x);
    case ALK_FN_COS:
        return cos(x);
    case ALK_FN_TAN:
        return tan(x);
    case ALK_FN_EXP:
        return exp(x);
    case ALK_FN_LOG:
        return log(x);
    case ALK_FN_SQRT:
        return sqrt(x);
    case ALK_FN_TANH:
        return tanh(x);
    case ALK_FN_SINH:
        return sinh(x);
    case ALK_FN_COSH:
        return cosh(x);
    case ALK_FN_ARCCOS:
        return acos(x);
    case ALK_FN_ARCSIN:
        return asin(x);
    case ALK_FN_ARCTAN:
        return atan(x);
    case ALK_FN_ARCSINH:
        return asinh(x);
    case ALK_FN_ARCCOSH:
        return acosh(x);
    case ALK_FN_ARCTANH:
        return atanh(x);
    case ALK_FN_EXP2:
        return exp2(x);
    case ALK_FN_EXPM1:
        return expm1(x);
    case ALK_FN_LOG2:
        return log2(x);
    case ALK_FN_LOG10:
        return log10(x);
    case ALK_FN_LOG1P:
        return log1p(x);
    case ALK_FN_CBRT:
        return cbrt(x);
    case ALK_FN_RECIPROCAL:
        return 1.0 / x;
    case ALK_FN_FLOOR:
        return floor(x);
    case ALK_FN_CEIL:
        return ceil(x);
    case ALK_FN_RINT:
        return nearbyint(x);
    case ALK_FN_SIGMOID:
        return sigmoid(x);
    case ALK_FN_SILU:
        return x * sigmoid(x);
    case ALK_FN_GELU:
        return gelu(x);
    case ALK_FN_GELU_TANH:
        return gelu_tanh(x);
    case ALK_FN_ELU:
        return elu(x, param);
    case ALK_FN_SELU:
        return 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * (exp(x) - 1.0));
    case ALK_FN_SOFTPLUS:
        return log1p(exp(x));
    case ALK_FN_SOFTSIGN:
        return x / (1.0 + fabs(x));
    case ALK_FN_HARD_SIGMOID:
        return hard_sigmoid_keras(x);
    case ALK_FN_HARD_SILU:
        return x * hard_sigmoid_keras(x);
    case ALK_FN_HARDSIGMOID_TORCH:
        return hard_sigmoid_torch(x);
    case ALK_FN_HARDSWISH_TORCH:
        return x * hard_sigmoid_torch(x);
    case ALK_FN_LOG_SIGMOID:
        /* The reference tabulates exp over the interval of -x; entry for entry that is this
         * (linspace is symmetric under negation). */
        return -log1p(exp(-x));
    case ALK_FN_RSQRT:
        return 1.0 / sqrt(x);
    }
    return NAN;
}

/* `x ** e` on a float64 array with a scalar exponent: numpy's fast paths first (square, sqrt,
 * reciprocal, identity, ones), as they may differ from pow() in the last ulp. */
static double np_power(double x, double e) {
    if (e == 2.0) {
        return x * x;
    }
    if (e == 0.5) {
        return sqrt(x);
    }
    if (e == -1.0) {
        return 1.0 / x;
    }
    if (e == 1.0) {
        return x;
    }
    if (e == 0.0) {
        return 1.0;
    }
    return pow(x, e);
}

/* np.maximum/np.minimum: the first operand wins ties and NaN propagates. */
static double np_maximum(double a, double b) {
    return (a >= b || isnan(a)) ? a : b;
}
static double np_minimum(double a, double b) {
    return (a <= b || isnan(a)) ? a : b;
}

static double eval_step(const alk__pstep *s, double x) {
    switch (s->kind) {
    case STEP_FN:
        return eval_fn(s->fn, s->c, x);
    case STEP_CUSTOM:
        return s->custom(x, s->user);
    case ALK__P_ADD:
        return x + s->c;
    case ALK__P_SUB:
        return x - s->c;
    case ALK__P_RSUB:
        return s->c - x;
    case ALK__P_MUL:
        return x * s->c;
    case ALK__P_DIV:
        return x / s->c;
    case ALK__P_RDIV:
        return s->c / x;
    case ALK__P_POW:
        return np_power(x, s->c);
    case ALK__P_MAX:
        return np_maximum(x, s->c);
    case ALK__P_MIN:
        return np_minimum(x, s->c);
    case ALK__P_NEG:
        return -x;
    case ALK__P_ABS:
        return fabs(x);
    }
    return NAN;
}

/* ---------------------------------------------------------------------------------------- */
/* Chains                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t v) {
    /* splitmix64's finaliser over the running hash: cheap and well spread. */
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

static uint64_t bits_of(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof(u));
    return u;
}

/*
 * A set of arena entries found by hash and an equality test, for the few distinct things one call
 * makes (steps, tables) among many elements. Open addressing, at most half full; it grows by
 * doubling (the old slots stay in the arena, freed with the trace).
 */
typedef struct hset {
    void **entries;
    uint64_t *hashes;
    size_t cap, n;
} hset;

typedef bool (*hset_eq)(const void *entry, const void *key);

/* The entry equal to `key` (hash h), or NULL. */
static void *hset_find(const hset *s, uint64_t h, hset_eq eq, const void *key) {
    if (s->cap == 0) {
        return NULL;
    }
    for (size_t j = (size_t)h & (s->cap - 1); s->entries[j] != NULL; j = (j + 1) & (s->cap - 1)) {
        if (s->hashes[j] == h && eq(s->entries[j], key)) {
            return s->entries[j];
        }
    }
    return NULL;
}

static bool hset_put(alk_trace *t, hset *s, uint64_t h, void *entry);

static bool hset_grow(alk_trace *t, hset *s) {
    hset bigger = {NULL, NULL, s->cap ? 2 * s->cap : 64, 0};
    bigger.entries = alk__trace_alloc(t, bigger.cap * sizeof(void *));
    bigger.hashes = alk__trace_alloc(t, bigger.cap * sizeof(uint64_t));
    if (bigger.entries == NULL || bigger.hashes == NULL) {
        return false;
    }
    memset(bigger.entries, 0, bigger.cap * sizeof(void *));
    for (size_t j = 0; j < s->cap; j++) {
        if (s->entries[j] != NULL) {
            hset_put(t, &bigger, s->hashes[j], s->entries[j]);
        }
    }
    *s = bigger;
    return true;
}

/* Adds an entry known to be absent. */
static bool hset_put(alk_trace *t, hset *s, uint64_t h, void *entry) {
    if (2 * (s->n + 1) > s->cap && !hset_grow(t, s)) {
        return false;
    }
    size_t j = (size_t)h & (s->cap - 1);
    while (s->entries[j] != NULL) {
        j = (j + 1) & (s->cap - 1);
    }
    s->entries[j] = entry;
    s->hashes[j] = h;
    s->n++;
    return true;
}

static uint64_t step_hash(const alk__pstep *prev, int kind, alk_unary_fn fn, double c, void *user) {
    uint64_t h = prev != NULL ? prev->hash : 0;
    h = mix(h, (uint64_t)kind);
    h = mix(h, (uint64_t)fn);
    h = mix(h, bits_of(c));
    return mix(h, (uint64_t)(uintptr_t)user);
}

static bool same_step(const alk__pstep *a, const alk__pstep *b) {
    return a->kind == b->kind && a->fn == b->fn && bits_of(a->c) == bits_of(b->c) &&
           a->custom == b->custom && a->user == b->user;
}

/* Steps of one call are shared when they extend the same chain the same way. */
static bool step_eq(const void *entry, const void *key) {
    const alk__pstep *a = entry, *b = key;
    return a->prev == b->prev && same_step(a, b);
}

/* The step `proto` (its prev, kind, operand ...) made once per call: found in `made` or new. */
static const alk__pstep *get_step(alk_trace *t, hset *made, const alk__pstep *proto) {
    uint64_t h = step_hash(proto->prev, proto->kind, proto->fn, proto->c, proto->user);
    const alk__pstep *s = hset_find(made, h, step_eq, proto);
    if (s != NULL) {
        return s;
    }
    alk__pstep *n = alk__trace_alloc(t, sizeof(*n));
    if (n == NULL) {
        return NULL;
    }
    *n = *proto;
    n->depth = proto->prev != NULL ? proto->prev->depth + 1 : 1;
    n->hash = h;
    return hset_put(t, made, h, n) ? n : NULL;
}

/* Structural equality, iteratively: chains may be long and come from model files. */
static bool same_chain(const alk__pstep *a, const alk__pstep *b) {
    while (a != b) {
        if (a == NULL || b == NULL || a->hash != b->hash || a->depth != b->depth ||
            !same_step(a, b)) {
            return false;
        }
        a = a->prev;
        b = b->prev;
    }
    return true;
}

/* What to call a chain in an error: the table function that made the array pending. */
static void describe(const alk__pstep *s, char *buf, size_t cap) {
    while (s != NULL && s->prev != NULL) {
        s = s->prev;
    }
    if (s == NULL) {
        snprintf(buf, cap, "a pending array");
    } else if (s->kind == STEP_FN) {
        snprintf(buf, cap, "%s", alk_unary_fn_name(s->fn));
    } else if (s->kind == STEP_CUSTOM) {
        snprintf(buf, cap, "a plugin's table function");
    } else if (s->kind == ALK__P_RDIV) {
        snprintf(buf, cap, "%.17g / x", s->c);
    } else if (s->kind == ALK__P_POW) {
        snprintf(buf, cap, "x ** %.17g", s->c);
    } else {
        snprintf(buf, cap, "a table function");
    }
}

bool alk_fva_is_pending(const alk_fva *a) {
    return a != NULL && a->pend != NULL;
}

bool alk__fva_plain(alk_trace *t, const alk_fva *a, const char *what) {
    if (a == NULL || a->pend == NULL) {
        return true;
    }
    /* Name the first element that has a function (pad constants have none). */
    const alk__pstep *s = NULL;
    for (size_t j = 0; j < a->size && s == NULL; j++) {
        s = get(a, j).p;
    }
    char name[64];
    describe(s, name, sizeof(name));
    alk__trace_set_error(t, ALK_EINVAL, "%s: a table function must be quantized before %s", name,
                         what);
    return false;
}

alk_fva *alk__fva_new_like(alk_trace *t, size_t ndim, const size_t *shape, const alk_fva *like) {
    alk_fva *r = alk__fva_new(t, ndim, shape, like->numeric, like->hw);
    if (r == NULL || like->pend == NULL) {
        return r;
    }
    r->pend = alk__trace_alloc(t, (r->size ? r->size : 1) * sizeof(*r->pend));
    if (r->pend == NULL) {
        return NULL;
    }
    memset(r->pend, 0, (r->size ? r->size : 1) * sizeof(*r->pend));
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Composing                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* One step appended to every element of `a` (variables, plain or pending), with the operand
 * element of `b` (numbers broadcast with a; NULL: `c` for all). Elements with the same chain and
 * operand share the new step, so a per-channel constant makes one step per channel. */
static alk_fva *append(alk_trace *t, const alk_fva *a, int kind, alk_unary_fn fn, double c,
                       alk_float_fn custom, void *user, const alk_fva *b) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric || (b != NULL && !b->numeric)) {
        alk__trace_set_error(t, ALK_EINVAL, "table functions compose numbers onto variables");
        return NULL;
    }
    size_t ndim = a->ndim, shape[ALK_FVA_MAX_DIM];
    memcpy(shape, a->shape, ndim * sizeof(size_t));
    const alk_fva *x = a, *y = NULL;
    if (b != NULL) {
        const alk_fva *arrays[2] = {a, b};
        if (!alk__fva_broadcast_shape(t, arrays, 2, &ndim, shape)) {
            return NULL;
        }
        x = alk__fva_broadcast_view(t, a, ndim, shape);
        y = alk__fva_broadcast_view(t, b, ndim, shape);
        if (x == NULL || y == NULL) {
            return NULL;
        }
    }
    alk_fva *r = alk__fva_new(t, ndim, shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    r->pend = alk__trace_alloc(t, (r->size ? r->size : 1) * sizeof(*r->pend));
    if (r->pend == NULL) {
        return NULL;
    }
    hset made = {NULL, NULL, 0, 0};
    for (size_t j = 0; j < r->size; j++) {
        elem e = get(x, j);
        alk__pstep proto = {e.p, 0, 0, kind, fn, y != NULL ? get(y, j).n : c, custom, user};
        r->vars[j] = e.v;
        r->pend[j] = get_step(t, &made, &proto);
        if (r->pend[j] == NULL) {
            return NULL;
        }
    }
    return r;
}

alk_fva *alk__pend_compose(alk_trace *t, const alk_fva *a, alk__pop op, const alk_fva *b) {
    return append(t, a, (int)op, ALK_FN_SIN, 0.0, NULL, NULL, b);
}

/* Numbers take the function at once: numpy evaluates it on a numeric array. */
static alk_fva *map_numbers(alk_trace *t, const alk_fva *a, const alk__pstep *s) {
    alk_fva *r = alk__fva_new(t, a->ndim, a->shape, true, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size; j++) {
        r->nums[j] = eval_step(s, get(a, j).n);
    }
    return r;
}

alk_fva *alk__pend_apply(alk_trace *t, const alk_fva *a, alk_unary_fn fn, double param) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__pstep s = {NULL, 0, 1, STEP_FN, fn, param, NULL, NULL};
        return map_numbers(t, a, &s);
    }
    return append(t, a, STEP_FN, fn, param, NULL, NULL, NULL);
}

alk_fva *alk_fva_apply_with(alk_trace *t, const alk_fva *a, alk_unary_fn fn, double param) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (alk_unary_fn_name(fn) == NULL) {
        alk__trace_set_error(t, ALK_EINVAL, "unknown table function %d", (int)fn);
        return NULL;
    }
    if (fn != ALK_FN_ELU) {
        alk__trace_set_error(t, ALK_EINVAL, "%s takes no parameter", alk_unary_fn_name(fn));
        return NULL;
    }
    return alk__pend_apply(t, a, fn, param);
}

alk_fva *alk_fva_apply(alk_trace *t, const alk_fva *a, alk_unary_fn fn) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (alk_unary_fn_name(fn) == NULL) {
        alk__trace_set_error(t, ALK_EINVAL, "unknown table function %d", (int)fn);
        return NULL;
    }
    /* ELU's default alpha; the other functions ignore the parameter. */
    return alk__pend_apply(t, a, fn, 1.0);
}

alk_fva *alk_fva_apply_custom(alk_trace *t, const alk_fva *a, alk_float_fn fn, void *user) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (fn == NULL) {
        alk__trace_set_error(t, ALK_EINVAL, "custom table function is missing");
        return NULL;
    }
    if (a->numeric) {
        alk__pstep s = {NULL, 0, 1, STEP_CUSTOM, ALK_FN_SIN, 0.0, fn, user};
        return map_numbers(t, a, &s);
    }
    return append(t, a, STEP_CUSTOM, ALK_FN_SIN, 0.0, fn, user, NULL);
}

alk_fva *alk_fva_rdiv_scalar(alk_trace *t, double c, const alk_fva *a) {
    return alk_fva_binary(t, ALK_DIVIDE, alk_fva_scalar(t, c), a);
}

alk_fva *alk_fva_power_real(alk_trace *t, const alk_fva *a, double e) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__pstep s = {NULL, 0, 1, ALK__P_POW, ALK_FN_SIN, e, NULL, NULL};
        return map_numbers(t, a, &s);
    }
    /* The reference's np.power: an integral exponent >= 0 multiplies variables (§1.9); any
     * other is a table function. */
    if (a->pend == NULL && e >= 0 && e <= INT32_MAX && e == floor(e)) {
        return alk_fva_power(t, a, (int)e);
    }
    return append(t, a, ALK__P_POW, ALK_FN_SIN, e, NULL, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Tabulating                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* The function one table evaluates: the chain in application order, then the quantizer. */
typedef struct table_fn {
    const alk__pstep **steps;
    size_t n;
    bool quantized;
    int k, i, f;
    alk_overflow overflow;
    alk_round round;
} table_fn;

static double eval_table_fn(double x, void *user) {
    const table_fn *tf = user;
    for (size_t s = 0; s < tf->n; s++) {
        x = eval_step(tf->steps[s], x);
    }
    return tf->quantized ? alk_quantize_float(x, tf->k, tf->i, tf->f, tf->overflow, tf->round) : x;
}

/* A table made in this call, keyed as the reference's local cache is (interval, format) plus the
 * element's function. */
typedef struct table_slot {
    alk_ftable *table;
    alk_qint q;
    int k, i, f;
    const alk__pstep *chain;
} table_slot;

static uint64_t slot_hash(const table_slot *s) {
    /* + 0.0 folds -0.0 into 0.0, which the reference's float keys treat as equal. */
    uint64_t h = mix(bits_of(s->q.min + 0.0), bits_of(s->q.max + 0.0));
    h = mix(h, bits_of(s->q.step));
    h = mix(h,
            ((uint64_t)(uint32_t)s->k << 42) ^ ((uint64_t)(uint32_t)s->i << 21) ^ (uint32_t)s->f);
    return mix(h, s->chain != NULL ? s->chain->hash : 0);
}

static bool slot_eq(const void *entry, const void *key) {
    const table_slot *a = entry, *b = key;
    return a->q.min == b->q.min && a->q.max == b->q.max && a->q.step == b->q.step && a->k == b->k &&
           a->i == b->i && a->f == b->f && same_chain(a->chain, b->chain);
}

static alk_ftable *make_table(alk_trace *t, alk_qint q, const alk__pstep *chain, table_fn *tf) {
    tf->n = chain != NULL ? chain->depth : 0;
    tf->steps = alk__trace_alloc(t, (tf->n ? tf->n : 1) * sizeof(*tf->steps));
    if (tf->steps == NULL) {
        return NULL;
    }
    size_t s = tf->n;
    for (const alk__pstep *p = chain; p != NULL; p = p->prev) {
        tf->steps[--s] = p;
    }
    return alk_ftable_from_fn(t, eval_table_fn, tf, q);
}

alk_fva *alk__pend_tabulate(alk_trace *t, const alk_fva *a, const int *k, const int *i,
                            const int *f, alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    bool quantized = k != NULL;
    alk_fva *r = alk__fva_new(t, a->ndim, a->shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    hset made = {NULL, NULL, 0, 0};
    table_fn tf = {NULL, 0, quantized, 0, 0, 0, overflow, round};
    for (size_t j = 0; j < a->size && !failed(t); j++) {
        elem e = get(a, j);
        alk_qint q = alk__fv_qint(e.v);
        /* A negated reference reads its node the other way round: the table is made in raw-node
         * order by walking the interval from its top. */
        if (e.v->factor < 0) {
            q = (alk_qint){q.max, q.min, q.step};
        }
        table_slot key = {NULL, q, quantized ? k[j] : 0, quantized ? i[j] : 0, quantized ? f[j] : 0,
                          e.p};
        uint64_t h = slot_hash(&key);
        table_slot *slot = hset_find(&made, h, slot_eq, &key);
        if (slot == NULL) {
            tf.k = key.k;
            tf.i = key.i;
            tf.f = key.f;
            key.table = make_table(t, q, e.p, &tf);
            slot = alk__trace_alloc(t, sizeof(*slot));
            if (key.table == NULL || slot == NULL) {
                return NULL;
            }
            *slot = key;
            if (!hset_put(t, &made, h, slot)) {
                return NULL;
            }
        }
        r->vars[j] = alk_fv_lookup(t, e.v, slot->table, NULL);
    }
    return done(t, r);
}

/* The direct path is a custom function tabulated at once: the same tables, shared the same way,
 * and the same lookups in the same order as a pending array quantized in the same call. */
alk_fva *alk_fva_map_fn(alk_trace *t, const alk_fva *a, alk_float_fn fn, void *user, bool quantized,
                        int k, int i, int f, alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "table functions need an array of variables");
        return NULL;
    }
    if (!alk__fva_plain(t, a, "map_fn")) {
        return NULL;
    }
    alk_fva *p = alk_fva_apply_custom(t, a, fn, user);
    if (!quantized) {
        return alk__pend_tabulate(t, p, NULL, NULL, NULL, overflow, round);
    }
    return alk_fva_quantize(t, p, k, i, f, overflow, round);
}
