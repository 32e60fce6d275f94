/*
 * Private to the array files of src/trace: the array struct and the helpers they share. Plugins
 * see alk_fva only as an opaque type (fvarray.h); nothing outside the fva files includes this.
 *
 *   fvarray.c          making arrays, properties, views and structure, naming, tracing
 *   fva_elementwise.c  binary/unary operations, quantize, where, clip, the float quantizer
 *   fva_reduce.c       reductions in the reference's heap order, argmax/argmin
 *   fva_product.c      matmul/dot (CMVM for constant matrices) and einsum
 *   fva_sort.c         sorting networks and histograms
 *   fva_pending.c      pending arrays: table functions composed per element, tabulated on quantize
 *   fva_gather.c       pad, take, tile and image patches (index gathers)
 *
 * Design. An array is a strided view over an arena buffer of variables or numbers. Views share
 * buffers; every operation that makes new elements writes a fresh contiguous buffer, and get()
 * reads any view through its offset and strides. An array holds either variables or numbers,
 * never both: numeric arrays are the constants numpy would hold as floats, and they stay numbers
 * until an operation meets a variable (then num_var() makes the reference's constant).
 *
 * A pending array (spec §2.10) is a variable array with a second buffer, `pend`, parallel to
 * `vars`: the float function each element waits for (an immutable chain of steps, shared between
 * elements that compose alike; a NULL entry is the identity). Because it is read through the same
 * offset and strides, every view of a pending array carries the functions along for free, and
 * get()/put() move them with the variables in the operations that gather.
 *
 * Memory: arrays, index tables and scratch come from the trace's arena (the job frees it at
 * once). Thread rule: the thread that owns the trace context.
 */
#ifndef ALK_TRACE_FVA_INT_H
#define ALK_TRACE_FVA_INT_H

#include "trace/fvarray.h"
#include "trace/trace_int.h"

/* One step of a pending element's float function (fva_pending.c). */
typedef struct alk__pstep alk__pstep;

struct alk_fva {
    uint32_t ndim;
    bool numeric; /* elements in `nums`, else references in `vars` */
    size_t size;  /* product of the shape, checked against ALK_FVA_MAX_ELEMENTS */
    size_t shape[ALK_FVA_MAX_DIM];
    ptrdiff_t strides[ALK_FVA_MAX_DIM]; /* in elements; 0 on broadcast axes */
    ptrdiff_t offset;                   /* of element 0 in the buffer */
    alk_fvar **vars;
    double *nums;
    const alk__pstep **pend; /* pending arrays: per-element functions beside `vars`, else NULL */
    alk_hwconf hw;           /* given to the constants made from this array's numbers */
};

/* One element: a variable, or a number when `v` is NULL; `p` is its pending function. */
typedef struct elem {
    alk_fvar *v;
    double n;
    const alk__pstep *p;
} elem;

/* True once the trace holds a sticky error: every operation then returns NULL at once. */
static inline bool failed(alk_trace *t) {
    return t->error != ALK_OK;
}

static inline ptrdiff_t offset_of(const alk_fva *a, size_t flat) {
    ptrdiff_t off = a->offset;
    for (size_t d = a->ndim; d-- > 0;) {
        size_t n = a->shape[d];
        off += (ptrdiff_t)(flat % n) * a->strides[d];
        flat /= n;
    }
    return off;
}

static inline elem get(const alk_fva *a, size_t flat) {
    ptrdiff_t off = offset_of(a, flat);
    if (a->numeric) {
        return (elem){NULL, a->nums[off], NULL};
    }
    return (elem){a->vars[off], 0, a->pend != NULL ? a->pend[off] : NULL};
}

/* Numbers entering an FVArray: FVariable(v, v, 2^lsb(v)) with factor 1 (quirk §1.6). */
static inline alk_fvar *num_var(alk_trace *t, double x, alk_hwconf hw) {
    return alk__fv_new_hw(t, x, x, pow2_lsb(x), 0.0, hw);
}

static inline alk_fvar *as_var(alk_trace *t, elem e, alk_hwconf hw) {
    return e.v != NULL ? e.v : num_var(t, e.n, hw);
}

/* Stores an element into a fresh array (numbers become constants in a variable array; a
 * pending array keeps the element's function, and a number placed there gets none). */
static inline void put(alk_trace *t, alk_fva *r, size_t flat, elem e) {
    if (r->numeric) {
        r->nums[flat] = e.n;
        return;
    }
    r->vars[flat] = as_var(t, e, r->hw);
    if (r->pend != NULL) {
        r->pend[flat] = e.v != NULL ? e.p : NULL;
    }
}

/* The array's result after element-wise work: fails on a sticky error. */
static inline alk_fva *done(alk_trace *t, alk_fva *r) {
    return failed(t) ? NULL : r;
}

/* Python's max()/min() of two numbers: the first wins ties. */
static inline double pymax(double a, double b) {
    return b > a ? b : a;
}
static inline double pymin(double a, double b) {
    return b < a ? b : a;
}

/* ---- Shared operations (defined in the file named) ---- */

/* A contiguous array of `shape` whose buffer is uninitialised; NULL (sticky error) when the shape
 * exceeds the limits of fvarray.h or the arena is exhausted (fvarray.c). */
alk_fva *alk__fva_new(alk_trace *t, size_t ndim, const size_t *shape, bool numeric, alk_hwconf hw);
/* numpy's normalize_axis_index: a negative axis counts from the end (fvarray.c). */
bool alk__fva_norm_axis(alk_trace *t, int axis, size_t ndim, size_t *ret);
/* The broadcast shape of n arrays (numpy rules), or false with an error naming the axis
 * (fvarray.c). */
bool alk__fva_broadcast_shape(alk_trace *t, const alk_fva *const *arrays, size_t n, size_t *ndim,
                              size_t *shape);
/* A view of `a` broadcast to (ndim, shape): stride 0 on stretched axes (fvarray.c). */
alk_fva *alk__fva_broadcast_view(alk_trace *t, const alk_fva *a, size_t ndim, const size_t *shape);
/* One element of a binary operation as the Python operators would compute it (fva_elementwise.c).
 */
elem alk__fva_binary_elem(alk_trace *t, alk_binop op, elem a, elem b);
/* Sum of n variables in the reference's heap order; `items` is clobbered (fva_reduce.c). */
alk_fvar *alk__fva_heap_sum(alk_trace *t, alk_fvar **items, size_t n);

/* ---- Pending arrays (fva_pending.c) ---- */

/* A fresh contiguous array shaped (ndim, shape) of the same kind as `like` (numeric, variable or
 * pending, with its hardware configuration); buffers uninitialised except `pend` (identity). */
alk_fva *alk__fva_new_like(alk_trace *t, size_t ndim, const size_t *shape, const alk_fva *like);
/* False, with the error "<function>: a table function must be quantized before <what>", when
 * `a` is pending; true otherwise. Every operation that is not structural checks its operands. */
bool alk__fva_plain(alk_trace *t, const alk_fva *a, const char *what);

/* Element-wise operations that compose into a pending function, with a number operand `c`. */
typedef enum alk__pop {
    ALK__P_ADD,  /* x + c */
    ALK__P_SUB,  /* x - c */
    ALK__P_RSUB, /* c - x */
    ALK__P_MUL,  /* x * c */
    ALK__P_DIV,  /* x / c */
    ALK__P_RDIV, /* c / x */
    ALK__P_POW,  /* x ** c */
    ALK__P_MAX,  /* np.maximum(x, c) */
    ALK__P_MIN,  /* np.minimum(x, c) */
    ALK__P_NEG,  /* -x (no operand) */
    ALK__P_ABS,  /* |x| (no operand) */
} alk__pop;

/* Composes `op` with the numeric operand `b` (NULL for NEG and ABS; any shape broadcastable with
 * a's, so constants may differ per element) onto the variable or pending array `a`; a plain `a`
 * becomes pending. */
alk_fva *alk__pend_compose(alk_trace *t, const alk_fva *a, alk__pop op, const alk_fva *b);
/* Builds the tables of a pending array (spec §2.10): with formats (k, i, f all given, per
 * element in C order) the composed function is quantized by alk_quantize_float first, without
 * (all NULL) the tables hold the float values. */
alk_fva *alk__pend_tabulate(alk_trace *t, const alk_fva *a, const int *k, const int *i,
                            const int *f, alk_overflow overflow, alk_round round);
/* The pending array of `a` with `fn` applied (fva_pending.c's alk_fva_apply, for floor/round). */
alk_fva *alk__pend_apply(alk_trace *t, const alk_fva *a, alk_unary_fn fn, double param);

#endif
