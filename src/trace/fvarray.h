/*
 * Arrays of symbolic variables: the NumPy-style half of the tracing API (spec trace-alir.md §2).
 *
 * An `alk_fva` is an n-dimensional view (shape, strides in elements, offset) over a buffer of
 * either variables (the reference's FVArray) or plain numbers (a numpy float array used as an
 * operand: weights, constants). Keeping numbers as numbers matters: `x * w` with a numeric w
 * multiplies by constants (SCM) and `x @ w` goes through CMVM, exactly as in the reference, while
 * an array of constant *variables* behaves differently in a few places (spec §2.5 quirks).
 *
 * Structural operations (reshape, transpose, slicing, broadcasting, concatenate, stack, repeat,
 * moveaxis) create no hardware: they only move references (spec §2.12). Operations on variables
 * give variable arrays; numbers in their results become constant variables with factor 1, as the
 * FVArray constructor makes them (quirk §1.6).
 *
 * Errors follow fvar.h: sticky in the trace context, NULL results, NULL operands propagate. A bad
 * shape, axis, index or einsum equation records ALK_EINVAL with a message naming it.
 *
 * Ownership: arrays live in the trace context's arena (valid until alk_trace_free); array
 * arguments are borrowed; buffers passed in (shapes, numbers) are copied.
 *
 * Pending arrays (spec §2.10, the reference's RetardedFVArray). Applying a table function
 * (alk_fva_apply, `c / x`, a non-integer power) gives a *pending* array: its elements are the
 * input variables plus a float function per element that is not traced yet. Arithmetic with
 * numbers composes into that function; quantizing (or round/floor/ceil) builds one lookup table
 * per distinct (interval, format, function) and gives a plain variable array. Structural
 * operations keep an array pending. Anything else (a variable operand, a product, a reduction,
 * tracing it as an output) fails, naming the function: a table function must be quantized first.
 *
 * Not covered yet (spec §2.9): np.searchsorted; the reference's einsum fails when a summed-only
 * axis precedes a kept one, where this one computes the sum.
 */
#ifndef ALK_TRACE_FVARRAY_H
#define ALK_TRACE_FVARRAY_H

#include "trace/fvar.h"

#include <stddef.h>
#include <stdint.h>

enum { ALK_FVA_MAX_DIM = 16 };

/* Limit on the elements of one array (checked before allocating). */
#define ALK_FVA_MAX_ELEMENTS ((size_t)1 << 28)

typedef struct alk_fva alk_fva;

/* ---- Making arrays (§2.1) ----------------------------------------------------------------- */

/* FVArrayInput(shape): unquantized inputs (quantize them before any arithmetic). */
alk_fva *alk_fva_input(alk_trace *t, size_t ndim, const size_t *shape);
/* FVArray.from_kif: per-element formats (arrays of `size` entries) or NULL = 0 for all; entries
 * with k + i + f <= 0 become the zero constant. */
alk_fva *alk_fva_from_kif(alk_trace *t, size_t ndim, const size_t *shape, const int *k,
                          const int *i, const int *f);
/* FVArray.from_lhs: per-element intervals and latency. */
alk_fva *alk_fva_from_lhs(alk_trace *t, size_t ndim, const size_t *shape, const double *low,
                          const double *high, const double *step, double latency);
/* An array of existing variables (C order, `size` entries). */
alk_fva *alk_fva_from_vars(alk_trace *t, size_t ndim, const size_t *shape, alk_fvar *const *vars);
/* A numeric array (a numpy operand), C order. */
alk_fva *alk_fva_numbers(alk_trace *t, size_t ndim, const size_t *shape, const double *values);
/* A 0-d numeric array. */
alk_fva *alk_fva_scalar(alk_trace *t, double value);
/* FVArray(a): a numeric array's numbers as new constant variables with factor 1 (one per element,
 * C order), as every number placed among variables becomes (quirk §1.6) — not alk_fv_const, whose
 * factor is 2^lsb(c); the values agree, the emitted program does not. A variable or pending
 * array is returned as it is. */
alk_fva *alk_fva_to_vars(alk_trace *t, const alk_fva *a);

/* ---- Properties and element access ---------------------------------------------------------- */

size_t alk_fva_ndim(const alk_fva *a);
const size_t *alk_fva_shape(const alk_fva *a);
size_t alk_fva_size(const alk_fva *a);
bool alk_fva_is_numeric(const alk_fva *a);
/* Whether `a` is pending (a table function waiting for its quantizer, see the top comment). */
bool alk_fva_is_pending(const alk_fva *a);
/* Element `flat` in C order: a variable (NULL for numeric and pending arrays) or the number. */
alk_fvar *alk_fva_at(const alk_fva *a, size_t flat);
double alk_fva_num_at(const alk_fva *a, size_t flat);
/* Copies the elements in C order into `out` (caller's array of alk_fva_size entries); EINVAL for
 * numeric and pending arrays. */
int alk_fva_ravel_to(const alk_fva *a, alk_fvar **out);

/* ---- Structure (free, §2.12) ---------------------------------------------------------------- */

/* One axis of an index expression (numpy basic indexing). */
typedef enum alk_index_kind {
    ALK_IDX_SLICE,   /* start:stop:step, ALK_FV_NONE = omitted */
    ALK_IDX_INT,     /* a single (possibly negative) index: removes the axis */
    ALK_IDX_NEWAXIS, /* None: inserts an axis of length 1 */
    ALK_IDX_ELLIPSIS,
} alk_index_kind;

typedef struct alk_index {
    alk_index_kind kind;
    int64_t start, stop, step; /* slices; `start` is the index for ALK_IDX_INT */
} alk_index;

#define ALK_SLICE(a, b, s) ((alk_index){ALK_IDX_SLICE, (a), (b), (s)})
#define ALK_ALL ((alk_index){ALK_IDX_SLICE, ALK_FV_NONE, ALK_FV_NONE, ALK_FV_NONE})
#define ALK_AT(i) ((alk_index){ALK_IDX_INT, (i), 0, 0})
#define ALK_NEWAXIS ((alk_index){ALK_IDX_NEWAXIS, 0, 0, 0})
#define ALK_ELLIPSIS ((alk_index){ALK_IDX_ELLIPSIS, 0, 0, 0})

alk_fva *alk_fva_index(alk_trace *t, const alk_fva *a, const alk_index *index, size_t n_index);
/* Reshape; one entry of `shape` may be -1. */
alk_fva *alk_fva_reshape(alk_trace *t, const alk_fva *a, size_t ndim, const int64_t *shape);
alk_fva *alk_fva_ravel(alk_trace *t, const alk_fva *a);
/* `axes` (may be NULL = reversed, like .T) is a permutation of 0..ndim-1; negatives allowed. */
alk_fva *alk_fva_transpose(alk_trace *t, const alk_fva *a, const int *axes);
alk_fva *alk_fva_moveaxis(alk_trace *t, const alk_fva *a, int source, int destination);
alk_fva *alk_fva_broadcast_to(alk_trace *t, const alk_fva *a, size_t ndim, const size_t *shape);
alk_fva *alk_fva_concatenate(alk_trace *t, alk_fva *const *arrays, size_t n, int axis);
alk_fva *alk_fva_stack(alk_trace *t, alk_fva *const *arrays, size_t n, int axis);
alk_fva *alk_fva_repeat(alk_trace *t, const alk_fva *a, size_t repeats, int axis);
/* A contiguous copy of the references (numpy .copy()). */
alk_fva *alk_fva_copy(alk_trace *t, const alk_fva *a);

/* np.pad modes. */
typedef enum alk_pad_mode {
    ALK_PAD_CONSTANT,  /* `value` on every side */
    ALK_PAD_EDGE,      /* the edge element repeated */
    ALK_PAD_REFLECT,   /* mirrored without the edge: 3 2 | 1 2 3 | 2 1 */
    ALK_PAD_SYMMETRIC, /* mirrored with the edge: 2 1 | 1 2 3 | 3 2 */
    ALK_PAD_WRAP,      /* periodic: 2 3 | 1 2 3 | 1 2 */
} alk_pad_mode;

/* np.pad(a, pads, mode): `pads` has one (before, after) row per axis of `a`, both >= 0. Pads
 * wider than the axis repeat the mode as numpy does (reflect/symmetric/wrap pad in rounds of at
 * most the axis length). In a variable or pending array the constant `value` becomes a constant
 * variable with factor 1 per padded element (as the reference's FVArray constructor makes numbers,
 * quirk §1.6); a numeric array stays numeric. EINVAL for an empty axis with a non-constant mode. */
alk_fva *alk_fva_pad(alk_trace *t, const alk_fva *a, const int64_t (*pads)[2], alk_pad_mode mode,
                     double value);
/* np.take(a, indices, axis): the `n` indices (negatives count from the end; copied) select along
 * `axis`, which gets length n. */
alk_fva *alk_fva_take(alk_trace *t, const alk_fva *a, const int64_t *indices, size_t n, int axis);
/* np.tile(a, reps): with d = max(ndim, n_reps), `a` gets leading axes of length 1 and `reps`
 * leading 1s up to d; axis q is then repeated reps[q] times as a block. */
alk_fva *alk_fva_tile(alk_trace *t, const alk_fva *a, size_t n_reps, const size_t *reps);

/* ---- Image patches (§2.11, frontends §2.2; free: index gathers only) ------------------------ */

enum { ALK_PATCH_MAX_RANK = 3 };

/* A sliding window over the spatial axes of a channels-last batch (B, *S, C), rank = number of
 * spatial axes (1..3). `pads` are resolved (before, after) per axis (alk_patch_same_pads gives
 * Keras's 'same'); `output_padding` is read by the transposed form only. */
typedef struct alk_patch_spec {
    size_t rank;
    size_t size[ALK_PATCH_MAX_RANK];     /* kernel size, >= 1 */
    size_t strides[ALK_PATCH_MAX_RANK];  /* >= 1 */
    size_t dilation[ALK_PATCH_MAX_RANK]; /* >= 1 */
    int64_t pads[ALK_PATCH_MAX_RANK][2]; /* >= 0 */
    size_t output_padding[ALK_PATCH_MAX_RANK];
} alk_patch_spec;

/* Fills spec->pads with Keras/TF 'same' padding for spatial input sizes `in_sizes` (rank
 * entries): out = ceil(n/s), total = max(0, (out-1)*s + (k-1)*d + 1 - n), before = total/2. */
void alk_patch_same_pads(alk_patch_spec *spec, const size_t *in_sizes);

/* extract_patches: (B, *S, C) -> (B, *out, K_vol*C), kernel taps major (row-major over the
 * kernel axes), channels minor, out = (n + before + after - (k-1)*d - 1) / s + 1 per axis
 * (EINVAL when < 1). Output o and tap t read input o*s + t*d - before; positions outside the
 * input take `pad_value` (a constant variable with factor 1, as alk_fva_pad's value). */
alk_fva *alk_fva_patches(alk_trace *t, const alk_fva *images, const alk_patch_spec *spec,
                         double pad_value);
/* extract_patches_transposed: out = (n-1)*s - before - after + d*(k-1) + output_padding + 1;
 * output o and tap t read input (o + before - t*d)/s when that division is exact and in range,
 * else `pad_value`. Same layout as alk_fva_patches. */
alk_fva *alk_fva_patches_transposed(alk_trace *t, const alk_fva *images, const alk_patch_spec *spec,
                                    double pad_value);

/* ---- Element-wise operations (§2.3) --------------------------------------------------------- */

typedef enum alk_binop {
    ALK_ADD,
    ALK_SUB,
    ALK_MUL,
    ALK_MAXIMUM,
    ALK_MINIMUM,
    ALK_GREATER,
    ALK_LESS,
    ALK_GREATER_EQUAL,
    ALK_LESS_EQUAL,
    ALK_EQUAL,
    ALK_NOT_EQUAL,
    ALK_BITWISE_AND,
    ALK_BITWISE_OR,
    ALK_BITWISE_XOR,
    ALK_DIVIDE, /* a / b: a * (1/b) for a numeric b; number / variables is a table (pending) */
} alk_binop;

/* a OP b with numpy broadcasting; either operand may be numeric. On a pending operand, ADD, SUB,
 * MUL, DIVIDE, MAXIMUM and MINIMUM with a numeric operand (a scalar or an array broadcastable
 * with it: constants per element) compose into the pending function; anything else fails. */
alk_fva *alk_fva_binary(alk_trace *t, alk_binop op, const alk_fva *a, const alk_fva *b);
/* a OP c and c OP a with a number c. */
alk_fva *alk_fva_binary_scalar(alk_trace *t, alk_binop op, const alk_fva *a, double c);
alk_fva *alk_fva_rbinary_scalar(alk_trace *t, alk_binop op, double c, const alk_fva *a);
/* a / c = a * (1/c) (a pending a composes `x / c`). */
alk_fva *alk_fva_div_scalar(alk_trace *t, const alk_fva *a, double c);
/* c / a: a table function (pending), as the reference's __rtruediv__. */
alk_fva *alk_fva_rdiv_scalar(alk_trace *t, double c, const alk_fva *a);

typedef enum alk_unop {
    ALK_NEGATIVE,
    ALK_ABSOLUTE,
    ALK_INVERT,  /* ~ (bitwise not) */
    ALK_SIGNBIT, /* is_negative */
    ALK_SIGN,
    ALK_FLOOR,
    ALK_CEIL,
    ALK_ROUND, /* half to even */
    ALK_SQUARE,
    ALK_TO_BOOL_ANY,
    ALK_TO_BOOL_ALL,
} alk_unop;

/* On a pending array: NEGATIVE, ABSOLUTE and SQUARE compose; FLOOR, CEIL and ROUND compose and
 * tabulate at once (the reference's apply(np.floor).quantize()), giving a plain array whose
 * table keeps float values; the others fail. */
alk_fva *alk_fva_unary(alk_trace *t, alk_unop op, const alk_fva *a);
/* a ** p for an integer p >= 0 (a pending a composes x ** p). */
alk_fva *alk_fva_power(alk_trace *t, const alk_fva *a, int p);
/* a ** e for any number e: alk_fva_power for an integral e >= 0 on a plain array, else the table
 * function x ** e (pending), as the reference's np.power. */
alk_fva *alk_fva_power_real(alk_trace *t, const alk_fva *a, double e);
/* relu(a, i, f) with scalar (or ALK_FV_NONE) widths. A pending a composes max(x, 0) when i and f
 * are ALK_FV_NONE (Keras/torch relu) and fails otherwise. */
alk_fva *alk_fva_relu(alk_trace *t, const alk_fva *a, int i, int f, alk_round round);
/* quantize(a, k, i, f) with scalar formats. On a pending array this builds the tables (§2.10): the
 * composed function, then the float quantizer (alk_quantize_float). */
alk_fva *alk_fva_quantize(alk_trace *t, const alk_fva *a, int k, int i, int f,
                          alk_overflow overflow, alk_round round);
/* quantize with per-element formats (arrays of alk_fva_size entries, C order; NULL = the
 * element's own value, as the reference's None). A pending array takes all three or none (none:
 * the tables keep the float values). */
alk_fva *alk_fva_quantize_each(alk_trace *t, const alk_fva *a, const int *k, const int *i,
                               const int *f, alk_overflow overflow, alk_round round);
/* quantize with formats given as numeric arrays of integral values broadcast (numpy rules) to
 * a's shape (HGQ2 stores k, i, f with 1 on homogeneous axes); elements with k + i + f <= 0 become
 * zero. Works on pending arrays like alk_fva_quantize. */
alk_fva *alk_fva_quantize_kif(alk_trace *t, const alk_fva *a, const alk_fva *k, const alk_fva *i,
                              const alk_fva *f, alk_overflow overflow, alk_round round);
/* np.where(cond, x, y): a variable condition makes multiplexers; numeric picks elements. */
alk_fva *alk_fva_where(alk_trace *t, const alk_fva *cond, const alk_fva *x, const alk_fva *y);
/* np.clip(a, lo, hi) with broadcasting (lo, hi may be numeric). A pending a with numeric lo and
 * hi composes minimum(maximum(x, lo), hi). */
alk_fva *alk_fva_clip(alk_trace *t, const alk_fva *a, const alk_fva *lo, const alk_fva *hi);

/* ---- Unary functions as lookup tables (§2.10, frontends §2.3, §4.5) -------------------------- */

/* Table functions, evaluated in float64 by the formulas the reference hands numpy (so the same
 * operations in the same order), e.g. sigmoid = 1 / (1 + exp(-x)). */
typedef enum alk_unary_fn {
    ALK_FN_SIN,
    ALK_FN_COS,
    ALK_FN_TAN,
    ALK_FN_EXP,
    ALK_FN_LOG,
    ALK_FN_SQRT,
    ALK_FN_TANH,
    ALK_FN_SINH,
    ALK_FN_COSH,
    ALK_FN_ARCCOS,
    ALK_FN_ARCSIN,
    ALK_FN_ARCTAN,
    ALK_FN_ARCSINH,
    ALK_FN_ARCCOSH,
    ALK_FN_ARCTANH,
    ALK_FN_EXP2,
    ALK_FN_EXPM1,
    ALK_FN_LOG2,
    ALK_FN_LOG10,
    ALK_FN_LOG1P,
    ALK_FN_CBRT,
    ALK_FN_RECIPROCAL,
    ALK_FN_FLOOR,
    ALK_FN_CEIL,
    ALK_FN_RINT, /* np.round: half to even */
    /* Activations (frontends §2.3 Keras, §4.5 torch). */
    ALK_FN_SIGMOID,      /* 1 / (1 + exp(-x)) */
    ALK_FN_SILU,         /* x * sigmoid(x) (Keras swish) */
    ALK_FN_GELU,         /* 0.5 * x * (1 + erf(x / sqrt(2))) */
    ALK_FN_GELU_TANH,    /* 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))) */
    ALK_FN_ELU,          /* x > 0 ? x : alpha * (exp(x) - 1); alpha 1 or alk_fva_apply_with */
    ALK_FN_SELU,         /* 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * (exp(x) - 1)) */
    ALK_FN_SOFTPLUS,     /* log1p(exp(x)) */
    ALK_FN_SOFTSIGN,     /* x / (1 + |x|) */
    ALK_FN_HARD_SIGMOID, /* Keras: clip(x + 3, 0, 6) / 6 */
    ALK_FN_HARD_SILU,    /* Keras: x * hard_sigmoid(x) (hard_swish) */
    ALK_FN_HARDSIGMOID_TORCH, /* torch: clip(x / 6 + 0.5, 0, 1) */
    ALK_FN_HARDSWISH_TORCH,   /* torch: x * hardsigmoid(x) */
    ALK_FN_LOG_SIGMOID,       /* -log1p(exp(-x)) */
    ALK_FN_RSQRT,             /* 1 / sqrt(x) */
} alk_unary_fn;

/* The function's name as the frameworks spell it ("tanh", "hard_sigmoid", ...); NULL when `fn`
 * is not one of the enumerators. */
const char *alk_unary_fn_name(alk_unary_fn fn);

/* fn applied to every element: a pending array (numbers: fn evaluated at once). Applied to a
 * pending array, fn composes after its function. */
alk_fva *alk_fva_apply(alk_trace *t, const alk_fva *a, alk_unary_fn fn);
/* The same for a function with a parameter: ALK_FN_ELU's alpha (alk_fva_apply uses 1). EINVAL for
 * a function without a parameter. */
alk_fva *alk_fva_apply_with(alk_trace *t, const alk_fva *a, alk_unary_fn fn, double param);
/* A plugin's own float function, composed and tabulated like the built-in ones (tables are
 * shared between elements only within one call). `user` is borrowed for the trace's life: the
 * tables are built when the array is quantized, possibly much later. */
alk_fva *alk_fva_apply_custom(alk_trace *t, const alk_fva *a, alk_float_fn fn, void *user);

/*
 * The direct path, for plugins that compose their own function and quantize it at once: every
 * element v becomes a lookup of `fn` (`user` passed through) tabulated over v's interval. Without a
 * format (`quantized` false) the table keeps the float values; with one, the values are first
 * quantized as quantizers.get_fixed_quantizer_np does with (k, i, f, overflow, round). Tables are
 * shared between elements with equal intervals, as the reference caches them per call.
 */
alk_fva *alk_fva_map_fn(alk_trace *t, const alk_fva *a, alk_float_fn fn, void *user, bool quantized,
                        int k, int i, int f, alk_overflow overflow, alk_round round);

/* The float quantizer of spec §2.10 (quantizers' numpy version). */
double alk_quantize_float(double x, int k, int i, int f, alk_overflow overflow, alk_round round);

/* ---- Reductions (§2.4, §2.7, §2.8) ----------------------------------------------------------- */

typedef enum alk_reduce_op {
    ALK_REDUCE_SUM,
    ALK_REDUCE_PROD,
    ALK_REDUCE_MAX,
    ALK_REDUCE_MIN,
    ALK_REDUCE_ALL,
    ALK_REDUCE_ANY,
    ALK_REDUCE_MEAN,
    ALK_REDUCE_ARGMAX,
    ALK_REDUCE_ARGMIN,
    ALK_REDUCE_COUNT_NONZERO,
} alk_reduce_op;

/* Reduces over `axes` (n_axes entries, negatives allowed; n_axes == 0 and axes == NULL: all)
 * with the reference's heap tree order. The result of a full reduction is 0-d. np.mean ignores
 * keepdims (quirk). */
alk_fva *alk_fva_reduce(alk_trace *t, alk_reduce_op op, const alk_fva *a, const int *axes,
                        size_t n_axes, bool keepdims);

/* ---- Products (§2.5, §2.6) ------------------------------------------------------------------- */

/* a @ b (numpy matmul shapes for 1-D/2-D/N-D); numeric right operand -> CMVM, numeric left
 * operand -> the reference's _rmatmul, two variable operands -> products and heap sums. */
alk_fva *alk_fva_matmul(alk_trace *t, const alk_fva *a, const alk_fva *b);
/* np.einsum with exactly two operands. */
alk_fva *alk_fva_einsum(alk_trace *t, const char *equation, const alk_fva *a, const alk_fva *b);
/* np.dot */
alk_fva *alk_fva_dot(alk_trace *t, const alk_fva *a, const alk_fva *b);

/* ---- Sorting and histograms (§2.8, §2.9) ----------------------------------------------------- */

typedef enum alk_sort_kind { ALK_SORT_BATCHER, ALK_SORT_BITONIC } alk_sort_kind;

alk_fva *alk_fva_sort(alk_trace *t, const alk_fva *a, int axis, alk_sort_kind kind);
/* aux[np.argsort(keys)] for 1-D keys: the rows of `aux` (shape (n,) or (n, m)) in key order;
 * shape (n, 1) when aux has the keys' shape, as the reference returns. */
alk_fva *alk_fva_sort_by(alk_trace *t, const alk_fva *keys, const alk_fva *aux, alk_sort_kind kind);
/* np.histogram(a, edges) with numeric edges (n_edges >= 2, strictly increasing); `weights` may
 * be NULL or an array of a's size. Returns the counts (n_edges - 1). */
alk_fva *alk_fva_histogram(alk_trace *t, const alk_fva *a, const double *edges, size_t n_edges,
                           const alk_fva *weights);

/* ---- Naming and tracing -------------------------------------------------------------------- */

/* Records `a` under `name` (copied) for the trace dump; later names win. */
int alk_trace_name(alk_trace *t, const char *name, const alk_fva *a);
/* The array recorded under `name`, or NULL. */
const alk_fva *alk_trace_named(const alk_trace *t, const char *name);

/* Traces the flattened outputs (C order, concatenated) against the flattened inputs. */
int alk_fva_trace(alk_trace *t, alk_fva *const *inputs, size_t n_inputs, alk_fva *const *outputs,
                  size_t n_outputs, bool optimize, alk_program **ret_program);

#endif
