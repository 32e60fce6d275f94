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
 * Not covered yet (spec §2.9, §2.11): np.searchsorted, the image patch helpers
 * (extract_patches, their transposed form), np.pad and np.take; the reference's einsum fails when
 * a summed-only axis precedes a kept one, where this one computes the sum.
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

/* ---- Properties and element access ---------------------------------------------------------- */

size_t alk_fva_ndim(const alk_fva *a);
const size_t *alk_fva_shape(const alk_fva *a);
size_t alk_fva_size(const alk_fva *a);
bool alk_fva_is_numeric(const alk_fva *a);
/* Element `flat` in C order: a variable (NULL for numeric arrays) or the number. */
alk_fvar *alk_fva_at(const alk_fva *a, size_t flat);
double alk_fva_num_at(const alk_fva *a, size_t flat);
/* Copies the elements in C order into `out` (caller's array of alk_fva_size entries). */
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
} alk_binop;

/* a OP b with numpy broadcasting; either operand may be numeric. */
alk_fva *alk_fva_binary(alk_trace *t, alk_binop op, const alk_fva *a, const alk_fva *b);
/* a OP c and c OP a with a number c. */
alk_fva *alk_fva_binary_scalar(alk_trace *t, alk_binop op, const alk_fva *a, double c);
alk_fva *alk_fva_rbinary_scalar(alk_trace *t, alk_binop op, double c, const alk_fva *a);
/* a / c = a * (1/c). */
alk_fva *alk_fva_div_scalar(alk_trace *t, const alk_fva *a, double c);

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

alk_fva *alk_fva_unary(alk_trace *t, alk_unop op, const alk_fva *a);
/* a ** p for an integer p >= 0. */
alk_fva *alk_fva_power(alk_trace *t, const alk_fva *a, int p);
/* relu(a, i, f) with scalar (or ALK_FV_NONE) widths. */
alk_fva *alk_fva_relu(alk_trace *t, const alk_fva *a, int i, int f, alk_round round);
/* quantize(a, k, i, f) with scalar formats. */
alk_fva *alk_fva_quantize(alk_trace *t, const alk_fva *a, int k, int i, int f,
                          alk_overflow overflow, alk_round round);
/* quantize with per-element formats (arrays of alk_fva_size entries, C order; NULL = the
 * element's own value, as the reference's None). */
alk_fva *alk_fva_quantize_each(alk_trace *t, const alk_fva *a, const int *k, const int *i,
                               const int *f, alk_overflow overflow, alk_round round);
/* np.where(cond, x, y): a variable condition makes multiplexers; numeric picks elements. */
alk_fva *alk_fva_where(alk_trace *t, const alk_fva *cond, const alk_fva *x, const alk_fva *y);
/* np.clip(a, lo, hi) with broadcasting (lo, hi may be numeric). */
alk_fva *alk_fva_clip(alk_trace *t, const alk_fva *a, const alk_fva *lo, const alk_fva *hi);

/* ---- Unary functions as lookup tables (§2.10) ------------------------------------------------ */

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
} alk_unary_fn;

/* The C function for `fn` (libm; see the design note in fvarray.c about ulps). */
double alk_unary_fn_eval(alk_unary_fn fn, double x);

/*
 * The RetardedFVArray path: every element v becomes a lookup of `fn` (a composed float function,
 * `user` passed through) tabulated over v's interval. Without a format (`quantized` false) the
 * table keeps the float values; with one, the values are first quantized as
 * quantizers.get_fixed_quantizer_np does with (k, i, f, overflow, round). Tables are shared
 * between elements with equal intervals, as the reference caches them per call.
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
