/*
 * Arrays of symbolic variables (spec trace-alir.md §2): views, element-wise operations,
 * reductions with the reference's heap order, products (CMVM for constant matrices), einsum,
 * sorting networks, histograms and unary functions as lookup tables.
 *
 * Design. An array is a strided view over an arena buffer of variables or numbers (fvarray.h).
 * Views share buffers; every operation that makes new elements writes a fresh contiguous
 * buffer. Element-wise operations visit output elements in C order, which is the order numpy's
 * object loops call the reference's operators in, so node creation order (and with it, affine
 * term order) matches. Where the reference relies on CPython's heapq (reductions), the exact
 * heap algorithm is reproduced (heap_reduce) because ties are resolved by heap positions.
 *
 * Unary functions are evaluated with libm. numpy's float64 sin/cos/exp/... may differ from glibc
 * in the last ulp; a table entry can only differ when a value lies within an ulp of a rounding
 * boundary of its quantization (spec §6.3.2). The example model's table reproduces the
 * reference's SHA-256 name, which pins its 8192 entries.
 *
 * Memory: arrays, index tables and scratch come from the trace's arena (the job frees it at
 * once), except transient scratch of CMVM calls (alk_malloc, freed before returning).
 *
 * Thread rule: the thread that owns the trace context.
 */
#include "trace/fvarray.h"
#include "trace/comb.h"
#include "trace/emit.h"
#include "core/alloc.h"
#include "trace/replay.h"
#include "trace/trace_int.h"

#include <stdlib.h>
#include <string.h>

struct alk_fva {
    uint32_t ndim;
    bool numeric;
    size_t size;
    size_t shape[ALK_FVA_MAX_DIM];
    ptrdiff_t strides[ALK_FVA_MAX_DIM];
    ptrdiff_t offset;
    alk_fvar **vars;
    double *nums;
    alk_hwconf hw;
};

/* One element: a variable, or a number when `v` is NULL. */
typedef struct elem {
    alk_fvar *v;
    double n;
} elem;

/* ---------------------------------------------------------------------------------------- */
/* Making arrays                                                                            */
/* ---------------------------------------------------------------------------------------- */

static bool failed(alk_trace *t) {
    return t->error != ALK_OK;
}

static bool check_shape(alk_trace *t, size_t ndim, const size_t *shape, size_t *ret_size) {
    if (ndim > ALK_FVA_MAX_DIM) {
        alk__trace_set_error(t, ALK_EINVAL, "%zu dimensions: at most %d are supported", ndim,
                             ALK_FVA_MAX_DIM);
        return false;
    }
    size_t size = 1;
    for (size_t d = 0; d < ndim; d++) {
        if (!alk_mul_size(size, shape[d], &size) || size > ALK_FVA_MAX_ELEMENTS) {
            alk__trace_set_error(t, ALK_ELIMIT, "array of more than %zu elements",
                                 (size_t)ALK_FVA_MAX_ELEMENTS);
            return false;
        }
    }
    *ret_size = size;
    return true;
}

/* A contiguous array; buffers uninitialised. */
static alk_fva *new_array(alk_trace *t, size_t ndim, const size_t *shape, bool numeric,
                          alk_hwconf hw) {
    size_t size;
    if (failed(t) || !check_shape(t, ndim, shape, &size)) {
        return NULL;
    }
    alk_fva *a = alk__trace_alloc(t, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    memset(a, 0, sizeof(*a));
    a->ndim = (uint32_t)ndim;
    a->numeric = numeric;
    a->size = size;
    a->hw = hw;
    ptrdiff_t stride = 1;
    for (size_t d = ndim; d-- > 0;) {
        a->shape[d] = shape[d];
        a->strides[d] = stride;
        stride *= (ptrdiff_t)(shape[d] ? shape[d] : 1);
    }
    if (numeric) {
        a->nums = alk__trace_alloc(t, (size ? size : 1) * sizeof(double));
        if (a->nums == NULL) {
            return NULL;
        }
    } else {
        a->vars = alk__trace_alloc(t, (size ? size : 1) * sizeof(alk_fvar *));
        if (a->vars == NULL) {
            return NULL;
        }
    }
    return a;
}

/* A view with the same buffer. */
static alk_fva *new_view(alk_trace *t, const alk_fva *a) {
    alk_fva *v = alk__trace_alloc(t, sizeof(*v));
    if (v != NULL) {
        *v = *a;
    }
    return v;
}

static ptrdiff_t offset_of(const alk_fva *a, size_t flat) {
    ptrdiff_t off = a->offset;
    for (size_t d = a->ndim; d-- > 0;) {
        size_t n = a->shape[d];
        off += (ptrdiff_t)(flat % n) * a->strides[d];
        flat /= n;
    }
    return off;
}

static elem get(const alk_fva *a, size_t flat) {
    ptrdiff_t off = offset_of(a, flat);
    if (a->numeric) {
        return (elem){NULL, a->nums[off]};
    }
    return (elem){a->vars[off], 0};
}

/* Numbers entering an FVArray: FVariable(v, v, 2^lsb(v)) with factor 1 (quirk §1.6). */
static alk_fvar *num_var(alk_trace *t, double x, alk_hwconf hw) {
    return alk__fv_new_hw(t, x, x, pow2_lsb(x), 0.0, hw);
}

static alk_fvar *as_var(alk_trace *t, elem e, alk_hwconf hw) {
    return e.v != NULL ? e.v : num_var(t, e.n, hw);
}

/* Stores an element into a fresh variable array (numbers become constants). */
static void put(alk_trace *t, alk_fva *r, size_t flat, elem e) {
    if (r->numeric) {
        r->nums[flat] = e.n;
    } else {
        r->vars[flat] = as_var(t, e, r->hw);
    }
}

/* The array's result after element-wise work: fails on a sticky error. */
static alk_fva *done(alk_trace *t, alk_fva *r) {
    return failed(t) ? NULL : r;
}

alk_fva *alk_fva_input(alk_trace *t, size_t ndim, const size_t *shape) {
    alk_fva *a = new_array(t, ndim, shape, false, t->hwconf);
    if (a == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size; j++) {
        a->vars[j] = alk_fv_input(t);
    }
    return done(t, a);
}

alk_fva *alk_fva_from_lhs(alk_trace *t, size_t ndim, const size_t *shape, const double *low,
                          const double *high, const double *step, double latency) {
    alk_fva *a = new_array(t, ndim, shape, false, t->hwconf);
    if (a == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size && !failed(t); j++) {
        a->vars[j] = alk__fv_new_hw(t, low[j], high[j], step[j], latency, t->hwconf);
    }
    return done(t, a);
}

alk_fva *alk_fva_from_kif(alk_trace *t, size_t ndim, const size_t *shape, const int *k,
                          const int *i, const int *f) {
    alk_fva *a = new_array(t, ndim, shape, false, t->hwconf);
    if (a == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size && !failed(t); j++) {
        int kk = k ? k[j] : 0, ii = i ? i[j] : 0, ff = f ? f[j] : 0;
        if (kk < 0 || kk > 1 || ii < -1000 || ii > 1000 || ff < -1000 || ff > 1000) {
            alk__trace_set_error(t, ALK_EINVAL, "element %zu: format (%d, %d, %d) out of range", j,
                                 kk, ii, ff);
            return NULL;
        }
        if (kk + ii + ff <= 0) {
            kk = ii = ff = 0;
        }
        double s = ldexp(1.0, -ff), top = ldexp(1.0, ii);
        /* numpy's -high * k: -0.0 for unsigned formats. */
        a->vars[j] = alk__fv_new_hw(t, -top * kk, top - s, s, 0.0, t->hwconf);
    }
    return done(t, a);
}

alk_fva *alk_fva_from_vars(alk_trace *t, size_t ndim, const size_t *shape, alk_fvar *const *vars) {
    alk_fva *a = new_array(t, ndim, shape, false, t->hwconf);
    if (a == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size; j++) {
        if (vars[j] == NULL) {
            alk__trace_set_error(t, ALK_EINVAL, "element %zu is missing", j);
            return NULL;
        }
        a->vars[j] = vars[j];
    }
    if (a->size > 0) {
        a->hw = vars[0]->node->hwconf;
    }
    return a;
}

alk_fva *alk_fva_numbers(alk_trace *t, size_t ndim, const size_t *shape, const double *values) {
    alk_fva *a = new_array(t, ndim, shape, true, t->hwconf);
    if (a == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size; j++) {
        if (!isfinite(values[j])) {
            alk__trace_set_error(t, ALK_EINVAL, "element %zu (%g) is not finite", j, values[j]);
            return NULL;
        }
        a->nums[j] = values[j];
    }
    return a;
}

alk_fva *alk_fva_scalar(alk_trace *t, double value) {
    return alk_fva_numbers(t, 0, NULL, &value);
}

size_t alk_fva_ndim(const alk_fva *a) {
    return a->ndim;
}
const size_t *alk_fva_shape(const alk_fva *a) {
    return a->shape;
}
size_t alk_fva_size(const alk_fva *a) {
    return a->size;
}
bool alk_fva_is_numeric(const alk_fva *a) {
    return a->numeric;
}
alk_fvar *alk_fva_at(const alk_fva *a, size_t flat) {
    return flat < a->size && !a->numeric ? get(a, flat).v : NULL;
}
double alk_fva_num_at(const alk_fva *a, size_t flat) {
    return flat < a->size && a->numeric ? get(a, flat).n : 0.0;
}

int alk_fva_ravel_to(const alk_fva *a, alk_fvar **out) {
    if (a->numeric) {
        return ALK_EINVAL;
    }
    for (size_t j = 0; j < a->size; j++) {
        out[j] = get(a, j).v;
    }
    return ALK_OK;
}

/* A contiguous copy (new buffer, same references). */
alk_fva *alk_fva_copy(alk_trace *t, const alk_fva *a) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    alk_fva *r = new_array(t, a->ndim, a->shape, a->numeric, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size; j++) {
        elem e = get(a, j);
        if (a->numeric) {
            r->nums[j] = e.n;
        } else {
            r->vars[j] = e.v;
        }
    }
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Structure                                                                                */
/* ---------------------------------------------------------------------------------------- */

static bool norm_axis(alk_trace *t, int axis, size_t ndim, size_t *ret) {
    int64_t a = axis < 0 ? (int64_t)axis + (int64_t)ndim : axis;
    if (a < 0 || a >= (int64_t)ndim) {
        alk__trace_set_error(t, ALK_EINVAL, "axis %d is out of range for %zu dimensions", axis,
                             ndim);
        return false;
    }
    *ret = (size_t)a;
    return true;
}

alk_fva *alk_fva_index(alk_trace *t, const alk_fva *a, const alk_index *index, size_t n_index) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    size_t consumed = 0, ellipses = 0;
    for (size_t j = 0; j < n_index; j++) {
        if (index[j].kind == ALK_IDX_SLICE || index[j].kind == ALK_IDX_INT) {
            consumed++;
        } else if (index[j].kind == ALK_IDX_ELLIPSIS) {
            ellipses++;
        }
    }
    if (consumed > a->ndim || ellipses > 1) {
        alk__trace_set_error(t, ALK_EINVAL, "too many indices (%zu) for an array of %u dimensions",
                             consumed, a->ndim);
        return NULL;
    }
    alk_fva r = *a;
    r.ndim = 0;
    r.size = 1;
    size_t d = 0; /* source axis */
    for (size_t j = 0; j <= n_index; j++) {
        alk_index ix;
        if (j < n_index) {
            ix = index[j];
        } else {
            /* Implicit trailing full slices. */
            if (d >= a->ndim) {
                break;
            }
            ix = ALK_ALL;
            j--;
        }
        if (ix.kind == ALK_IDX_ELLIPSIS) {
            size_t fill = a->ndim - consumed;
            for (size_t q = 0; q < fill; q++, d++) {
                r.shape[r.ndim] = a->shape[d];
                r.strides[r.ndim] = a->strides[d];
                r.ndim++;
                r.size *= a->shape[d];
            }
            continue;
        }
        if (r.ndim >= ALK_FVA_MAX_DIM && ix.kind != ALK_IDX_INT) {
            alk__trace_set_error(t, ALK_EINVAL, "too many dimensions after indexing");
            return NULL;
        }
        if (ix.kind == ALK_IDX_NEWAXIS) {
            r.shape[r.ndim] = 1;
            r.strides[r.ndim] = 0;
            r.ndim++;
            continue;
        }
        int64_t n = (int64_t)a->shape[d];
        if (ix.kind == ALK_IDX_INT) {
            int64_t i = ix.start < 0 ? ix.start + n : ix.start;
            if (i < 0 || i >= n) {
                alk__trace_set_error(t, ALK_EINVAL,
                                     "index %lld is out of bounds for axis %zu with size %lld",
                                     (long long)ix.start, d, (long long)n);
                return NULL;
            }
            r.offset += (ptrdiff_t)i * a->strides[d];
            d++;
            continue;
        }
        /* A slice, with Python's slice.indices rules. */
        int64_t step = ix.step == ALK_FV_NONE ? 1 : ix.step;
        if (step == 0) {
            alk__trace_set_error(t, ALK_EINVAL, "slice step cannot be zero");
            return NULL;
        }
        int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? n - 1 : n;
        int64_t start, stop;
        if (ix.start == ALK_FV_NONE) {
            start = step < 0 ? upper : lower;
        } else {
            start = ix.start < 0 ? ix.start + n : ix.start;
            start = start < lower ? lower : start > upper ? upper : start;
        }
        if (ix.stop == ALK_FV_NONE) {
            stop = step < 0 ? lower : upper;
        } else {
            stop = ix.stop < 0 ? ix.stop + n : ix.stop;
            stop = stop < lower ? lower : stop > upper ? upper : stop;
        }
        int64_t len = 0;
        if (step > 0 && stop > start) {
            len = (stop - start + step - 1) / step;
        } else if (step < 0 && start > stop) {
            len = (start - stop - step - 1) / (-step);
        }
        if (len > 0) {
            r.offset += (ptrdiff_t)start * a->strides[d];
        }
        r.shape[r.ndim] = (size_t)len;
        r.strides[r.ndim] = a->strides[d] * (ptrdiff_t)step;
        r.ndim++;
        r.size *= (size_t)len;
        d++;
    }
    alk_fva *v = new_view(t, &r);
    return v;
}

alk_fva *alk_fva_reshape(alk_trace *t, const alk_fva *a, size_t ndim, const int64_t *shape) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (ndim > ALK_FVA_MAX_DIM) {
        alk__trace_set_error(t, ALK_EINVAL, "reshape to %zu dimensions", ndim);
        return NULL;
    }
    size_t out[ALK_FVA_MAX_DIM];
    size_t known = 1;
    int unknown = -1;
    for (size_t d = 0; d < ndim; d++) {
        if (shape[d] == -1 && unknown < 0) {
            unknown = (int)d;
            continue;
        }
        if (shape[d] < 0) {
            alk__trace_set_error(t, ALK_EINVAL, "invalid reshape dimension %lld",
                                 (long long)shape[d]);
            return NULL;
        }
        out[d] = (size_t)shape[d];
        if (!alk_mul_size(known, out[d], &known)) {
            alk__trace_set_error(t, ALK_ELIMIT, "reshape size overflows");
            return NULL;
        }
    }
    if (unknown >= 0) {
        if (known == 0 || a->size % known != 0) {
            alk__trace_set_error(t, ALK_EINVAL, "cannot reshape an array of size %zu", a->size);
            return NULL;
        }
        out[unknown] = a->size / known;
        known = a->size;
    }
    if (known != a->size) {
        alk__trace_set_error(t, ALK_EINVAL, "cannot reshape an array of size %zu into size %zu",
                             a->size, known);
        return NULL;
    }
    alk_fva *src = alk_fva_copy(t, a); /* contiguous, so any reshape is a view of it */
    if (src == NULL) {
        return NULL;
    }
    src->ndim = (uint32_t)ndim;
    ptrdiff_t stride = 1;
    for (size_t d = ndim; d-- > 0;) {
        src->shape[d] = out[d];
        src->strides[d] = stride;
        stride *= (ptrdiff_t)(out[d] ? out[d] : 1);
    }
    return src;
}

alk_fva *alk_fva_ravel(alk_trace *t, const alk_fva *a) {
    int64_t n = -1;
    return alk_fva_reshape(t, a, 1, &n);
}

alk_fva *alk_fva_transpose(alk_trace *t, const alk_fva *a, const int *axes) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    alk_fva *r = new_view(t, a);
    if (r == NULL) {
        return NULL;
    }
    bool seen[ALK_FVA_MAX_DIM] = {false};
    for (size_t d = 0; d < a->ndim; d++) {
        size_t src = a->ndim - 1 - d;
        if (axes != NULL && !norm_axis(t, axes[d], a->ndim, &src)) {
            return NULL;
        }
        if (seen[src]) {
            alk__trace_set_error(t, ALK_EINVAL, "repeated axis in transpose");
            return NULL;
        }
        seen[src] = true;
        r->shape[d] = a->shape[src];
        r->strides[d] = a->strides[src];
    }
    return r;
}

alk_fva *alk_fva_moveaxis(alk_trace *t, const alk_fva *a, int source, int destination) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    size_t s, d;
    if (!norm_axis(t, source, a->ndim, &s) || !norm_axis(t, destination, a->ndim, &d)) {
        return NULL;
    }
    int order[ALK_FVA_MAX_DIM];
    size_t n = 0;
    for (size_t q = 0; q < a->ndim; q++) {
        if (q != s) {
            order[n++] = (int)q;
        }
    }
    memmove(order + d + 1, order + d, (n - d) * sizeof(int));
    order[d] = (int)s;
    return alk_fva_transpose(t, a, order);
}

static bool broadcast_shape(alk_trace *t, const alk_fva *const *arrays, size_t n, size_t *ndim,
                            size_t *shape) {
    size_t nd = 0;
    for (size_t j = 0; j < n; j++) {
        if (arrays[j]->ndim > nd) {
            nd = arrays[j]->ndim;
        }
    }
    for (size_t d = 0; d < nd; d++) {
        shape[d] = 1;
    }
    for (size_t j = 0; j < n; j++) {
        const alk_fva *a = arrays[j];
        for (size_t q = 0; q < a->ndim; q++) {
            size_t d = nd - a->ndim + q;
            size_t len = a->shape[q];
            if (len == shape[d] || len == 1) {
                continue;
            }
            if (shape[d] == 1) {
                shape[d] = len;
                continue;
            }
            alk__trace_set_error(t, ALK_EINVAL,
                                 "shapes cannot be broadcast together: axis %zu has sizes %zu "
                                 "and %zu",
                                 d, shape[d], len);
            return false;
        }
    }
    *ndim = nd;
    return true;
}

/* A view of `a` broadcast to (ndim, shape) (stride 0 on stretched axes). */
static alk_fva *broadcast_view(alk_trace *t, const alk_fva *a, size_t ndim, const size_t *shape) {
    alk_fva *r = new_view(t, a);
    if (r == NULL) {
        return NULL;
    }
    r->ndim = (uint32_t)ndim;
    size_t size = 1;
    for (size_t d = 0; d < ndim; d++) {
        size_t q = d + a->ndim;
        if (q < ndim) {
            r->shape[d] = shape[d];
            r->strides[d] = 0;
        } else {
            size_t src = q - ndim;
            r->shape[d] = shape[d];
            r->strides[d] = a->shape[src] == shape[d] ? a->strides[src] : 0;
            if (a->shape[src] != shape[d] && a->shape[src] != 1) {
                alk__trace_set_error(t, ALK_EINVAL, "cannot broadcast axis %zu of size %zu to %zu",
                                     src, a->shape[src], shape[d]);
                return NULL;
            }
        }
        size *= shape[d];
    }
    r->size = size;
    return r;
}

alk_fva *alk_fva_broadcast_to(alk_trace *t, const alk_fva *a, size_t ndim, const size_t *shape) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    size_t size;
    if (!check_shape(t, ndim, shape, &size)) {
        return NULL;
    }
    if (ndim < a->ndim) {
        alk__trace_set_error(t, ALK_EINVAL, "cannot broadcast %u dimensions to %zu", a->ndim, ndim);
        return NULL;
    }
    return broadcast_view(t, a, ndim, shape);
}

alk_fva *alk_fva_concatenate(alk_trace *t, alk_fva *const *arrays, size_t n, int axis) {
    if (failed(t)) {
        return NULL;
    }
    if (n == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "need at least one array to concatenate");
        return NULL;
    }
    for (size_t j = 0; j < n; j++) {
        if (arrays[j] == NULL) {
            return NULL;
        }
    }
    const alk_fva *first = arrays[0];
    size_t ax;
    if (!norm_axis(t, axis, first->ndim, &ax)) {
        return NULL;
    }
    size_t shape[ALK_FVA_MAX_DIM];
    memcpy(shape, first->shape, first->ndim * sizeof(size_t));
    shape[ax] = 0;
    bool numeric = true;
    for (size_t j = 0; j < n; j++) {
        const alk_fva *a = arrays[j];
        if (a->ndim != first->ndim) {
            alk__trace_set_error(t, ALK_EINVAL, "array %zu has %u dimensions, expected %u", j,
                                 a->ndim, first->ndim);
            return NULL;
        }
        for (size_t d = 0; d < a->ndim; d++) {
            if (d != ax && a->shape[d] != first->shape[d]) {
                alk__trace_set_error(t, ALK_EINVAL,
                                     "array %zu: size %zu along axis %zu, expected %zu", j,
                                     a->shape[d], d, first->shape[d]);
                return NULL;
            }
        }
        shape[ax] += a->shape[ax];
        numeric = numeric && a->numeric;
    }
    alk_hwconf hw = first->hw;
    for (size_t j = 0; j < n; j++) {
        if (!arrays[j]->numeric) {
            hw = arrays[j]->hw;
            break;
        }
    }
    alk_fva *r = new_array(t, first->ndim, shape, numeric, hw);
    if (r == NULL) {
        return NULL;
    }
    size_t base = 0;
    for (size_t j = 0; j < n; j++) {
        const alk_fva *a = arrays[j];
        for (size_t q = 0; q < a->size; q++) {
            /* Position of element q of a in r. */
            size_t rem = q, flat = 0, mult = 1;
            size_t idx[ALK_FVA_MAX_DIM];
            for (size_t d = a->ndim; d-- > 0;) {
                idx[d] = rem % a->shape[d];
                rem /= a->shape[d];
            }
            idx[ax] += base;
            for (size_t d = a->ndim; d-- > 0;) {
                flat += idx[d] * mult;
                mult *= shape[d];
            }
            put(t, r, flat, get(a, q));
        }
        base += a->shape[ax];
    }
    return done(t, r);
}

alk_fva *alk_fva_stack(alk_trace *t, alk_fva *const *arrays, size_t n, int axis) {
    if (failed(t)) {
        return NULL;
    }
    if (n == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "need at least one array to stack");
        return NULL;
    }
    alk_fva **expanded = alk__trace_alloc(t, n * sizeof(alk_fva *));
    if (expanded == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < n; j++) {
        if (arrays[j] == NULL) {
            return NULL;
        }
        if (arrays[j]->ndim != arrays[0]->ndim) {
            alk__trace_set_error(t, ALK_EINVAL, "all input arrays must have the same shape");
            return NULL;
        }
        size_t ax;
        if (!norm_axis(t, axis, arrays[j]->ndim + 1, &ax)) {
            return NULL;
        }
        alk_index ix[ALK_FVA_MAX_DIM + 1];
        size_t m = 0;
        for (size_t d = 0; d < ax; d++) {
            ix[m++] = ALK_ALL;
        }
        ix[m++] = ALK_NEWAXIS;
        expanded[j] = alk_fva_index(t, arrays[j], ix, m);
    }
    size_t ax = 0;
    if (!norm_axis(t, axis, arrays[0]->ndim + 1, &ax)) {
        return NULL;
    }
    return alk_fva_concatenate(t, expanded, n, (int)ax);
}

alk_fva *alk_fva_repeat(alk_trace *t, const alk_fva *a, size_t repeats, int axis) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    size_t ax;
    if (!norm_axis(t, axis, a->ndim, &ax)) {
        return NULL;
    }
    size_t shape[ALK_FVA_MAX_DIM];
    memcpy(shape, a->shape, a->ndim * sizeof(size_t));
    if (!alk_mul_size(shape[ax], repeats, &shape[ax])) {
        alk__trace_set_error(t, ALK_ELIMIT, "repeat overflows");
        return NULL;
    }
    alk_fva *r = new_array(t, a->ndim, shape, a->numeric, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t q = 0; q < r->size; q++) {
        size_t rem = q, src = 0, mult = 1;
        size_t idx[ALK_FVA_MAX_DIM];
        for (size_t d = r->ndim; d-- > 0;) {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        idx[ax] /= repeats;
        for (size_t d = a->ndim; d-- > 0;) {
            src += idx[d] * mult;
            mult *= a->shape[d];
        }
        put(t, r, q, get(a, src));
    }
    return done(t, r);
}

/* ---------------------------------------------------------------------------------------- */
/* Element-wise                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* Python's max()/min() of two numbers: the first wins ties. */
static double pymax(double a, double b) {
    return b > a ? b : a;
}
static double pymin(double a, double b) {
    return b < a ? b : a;
}

/* One element of a binary operation, following the Python operator a variable or number
 * would dispatch to (reflected operators for number-first forms). */
static elem binary_elem(alk_trace *t, alk_binop op, elem a, elem b) {
    alk_fvar *x = a.v, *y = b.v;
    if (x == NULL && y == NULL) {
        double r = 0;
        switch (op) {
        case ALK_ADD:
            r = a.n + b.n;
            break;
        case ALK_SUB:
            r = a.n - b.n;
            break;
        case ALK_MUL:
            r = a.n * b.n;
            break;
        case ALK_MAXIMUM:
            r = pymax(a.n, b.n);
            break;
        case ALK_MINIMUM:
            r = pymin(a.n, b.n);
            break;
        case ALK_GREATER:
            r = a.n > b.n;
            break;
        case ALK_LESS:
            r = a.n < b.n;
            break;
        case ALK_GREATER_EQUAL:
            r = a.n >= b.n;
            break;
        case ALK_LESS_EQUAL:
            r = a.n <= b.n;
            break;
        case ALK_EQUAL:
            r = a.n == b.n;
            break;
        case ALK_NOT_EQUAL:
            r = a.n != b.n;
            break;
        default: {
            if (a.n != floor(a.n) || b.n != floor(b.n)) {
                alk__trace_set_error(t, ALK_EINVAL, "bitwise operation on non-integer numbers");
                return (elem){NULL, 0};
            }
            int64_t p = (int64_t)a.n, q = (int64_t)b.n;
            r = (double)(op == ALK_BITWISE_AND  ? (p & q)
                         : op == ALK_BITWISE_OR ? (p | q)
                                                : (p ^ q));
        }
        }
        return (elem){NULL, r};
    }
    alk_fvar *r = NULL;
    switch (op) {
    case ALK_ADD:
        r = x && y ? alk_fv_add(t, x, y)
            : x    ? alk_fv_add_const(t, x, b.n)
                   : alk_fv_add_const(t, y, a.n);
        break;
    case ALK_SUB:
        r = x && y ? alk_fv_sub(t, x, y)
            : x    ? alk_fv_add_const(t, x, -b.n)
                   : alk_fv_rsub_const(t, y, a.n);
        break;
    case ALK_MUL:
        r = x && y ? alk_fv_mul(t, x, y)
            : x    ? alk_fv_mul_const(t, x, b.n)
                   : alk_fv_mul_const(t, y, a.n);
        break;
    case ALK_MAXIMUM:
        r = x && y ? alk_fv_max(t, x, y)
            : x    ? alk_fv_max_const(t, x, b.n)
                   : alk_fv_max_const(t, y, a.n);
        break;
    case ALK_MINIMUM:
        r = x && y ? alk_fv_min(t, x, y)
            : x    ? alk_fv_min_const(t, x, b.n)
                   : alk_fv_min_const(t, y, a.n);
        break;
    case ALK_GREATER:
        r = x && y ? alk_fv_gt(t, x, y)
            : x    ? alk_fv_gt_const(t, x, b.n)
                   : alk_fv_lt_const(t, y, a.n);
        break;
    case ALK_LESS:
        r = x && y ? alk_fv_lt(t, x, y)
            : x    ? alk_fv_lt_const(t, x, b.n)
                   : alk_fv_gt_const(t, y, a.n);
        break;
    case ALK_GREATER_EQUAL:
        r = x && y ? alk_fv_ge(t, x, y)
            : x    ? alk_fv_ge_const(t, x, b.n)
                   : alk_fv_le_const(t, y, a.n);
        break;
    case ALK_LESS_EQUAL:
        r = x && y ? alk_fv_le(t, x, y)
            : x    ? alk_fv_le_const(t, x, b.n)
                   : alk_fv_ge_const(t, y, a.n);
        break;
    case ALK_EQUAL:
    case ALK_NOT_EQUAL: {
        if (x == NULL) {
            alk__trace_set_error(t, ALK_EINVAL, "equality needs a variable as its first operand");
            return (elem){NULL, 0};
        }
        alk_fvar *o = y ? y : alk__fv_const_hw(t, b.n, x->node->hwconf);
        r = op == ALK_EQUAL ? alk_fv_eq(t, x, o) : alk_fv_ne(t, x, o);
        break;
    }
    case ALK_BITWISE_AND:
    case ALK_BITWISE_OR:
    case ALK_BITWISE_XOR: {
        alk_fvar *p = x ? x : y;
        alk_fvar *q = x && y ? y : alk__fv_const_hw(t, x ? b.n : a.n, p->node->hwconf);
        r = op == ALK_BITWISE_AND  ? alk_fv_and(t, p, q)
            : op == ALK_BITWISE_OR ? alk_fv_or(t, p, q)
                                   : alk_fv_xor(t, p, q);
        break;
    }
    }
    return (elem){r, 0};
}

static alk_hwconf hw_of2(const alk_fva *a, const alk_fva *b) {
    return a->numeric && !b->numeric ? b->hw : a->hw;
}

alk_fva *alk_fva_binary(alk_trace *t, alk_binop op, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL) {
        return NULL;
    }
    const alk_fva *arrays[2] = {a, b};
    size_t ndim, shape[ALK_FVA_MAX_DIM];
    if (!broadcast_shape(t, arrays, 2, &ndim, shape)) {
        return NULL;
    }
    alk_fva *x = broadcast_view(t, a, ndim, shape);
    alk_fva *y = broadcast_view(t, b, ndim, shape);
    alk_fva *r = new_array(t, ndim, shape, a->numeric && b->numeric, hw_of2(a, b));
    if (r == NULL || x == NULL || y == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        put(t, r, j, binary_elem(t, op, get(x, j), get(y, j)));
    }
    return done(t, r);
}

alk_fva *alk_fva_binary_scalar(alk_trace *t, alk_binop op, const alk_fva *a, double c) {
    return alk_fva_binary(t, op, a, alk_fva_scalar(t, c));
}

alk_fva *alk_fva_rbinary_scalar(alk_trace *t, alk_binop op, double c, const alk_fva *a) {
    return alk_fva_binary(t, op, alk_fva_scalar(t, c), a);
}

alk_fva *alk_fva_div_scalar(alk_trace *t, const alk_fva *a, double c) {
    if (!failed(t) && c == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "division by zero");
        return NULL;
    }
    return alk_fva_binary_scalar(t, ALK_MUL, a, 1.0 / c);
}

/* Applies fn to every element of a variable array. */
typedef alk_fvar *(*var_fn)(alk_trace *t, alk_fvar *v, const void *arg);

static alk_fva *map_vars(alk_trace *t, const alk_fva *a, var_fn fn, const void *arg) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "this operation needs an array of variables");
        return NULL;
    }
    alk_fva *r = new_array(t, a->ndim, a->shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        r->vars[j] = fn(t, get(a, j).v, arg);
    }
    return done(t, r);
}

static alk_fvar *fn_neg(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_neg(t, v);
}
static alk_fvar *fn_abs(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_abs(t, v);
}
static alk_fvar *fn_not(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_not(t, v);
}
static alk_fvar *fn_signbit(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_is_negative(t, v);
}
static alk_fvar *fn_any(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_any(t, v);
}
static alk_fvar *fn_all(alk_trace *t, alk_fvar *v, const void *arg) {
    (void)arg;
    return alk_fv_all(t, v);
}
static alk_fvar *fn_pow(alk_trace *t, alk_fvar *v, const void *arg) {
    return alk_fv_pow(t, v, *(const int *)arg);
}

typedef struct relu_arg {
    int i, f;
    alk_round round;
} relu_arg;

static alk_fvar *fn_relu(alk_trace *t, alk_fvar *v, const void *arg) {
    const relu_arg *r = arg;
    return alk_fv_relu(t, v, r->i, r->f, r->round);
}

alk_fva *alk_fva_relu(alk_trace *t, const alk_fva *a, int i, int f, alk_round round) {
    relu_arg arg = {i, f, round};
    return map_vars(t, a, fn_relu, &arg);
}

alk_fva *alk_fva_power(alk_trace *t, const alk_fva *a, int p) {
    return map_vars(t, a, fn_pow, &p);
}

alk_fva *alk_fva_quantize_each(alk_trace *t, const alk_fva *a, const int *k, const int *i,
                               const int *f, alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "quantize needs an array of variables");
        return NULL;
    }
    alk_fva *r = new_array(t, a->ndim, a->shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        alk_fvar *v = get(a, j).v;
        int kk, ii, ff;
        if (k == NULL || i == NULL || f == NULL) {
            alk_fv_kif(v, &kk, &ii, &ff);
        }
        if (k != NULL) {
            kk = k[j];
        }
        if (i != NULL) {
            ii = i[j];
        }
        if (f != NULL) {
            ff = f[j];
        }
        r->vars[j] = alk_fv_quantize(t, v, kk, ii, ff, overflow, round);
    }
    return done(t, r);
}

alk_fva *alk_fva_quantize(alk_trace *t, const alk_fva *a, int k, int i, int f,
                          alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    int *kk = alk__trace_alloc(t, (a->size ? a->size : 1) * 3 * sizeof(int));
    if (kk == NULL) {
        return NULL;
    }
    int *ii = kk + a->size, *ff = ii + a->size;
    for (size_t j = 0; j < a->size; j++) {
        kk[j] = k;
        ii[j] = i;
        ff[j] = f;
    }
    return alk_fva_quantize_each(t, a, kk, ii, ff, overflow, round);
}

/* floor/round: quantize(k, max(i + 1, 1), 0) with the element's own format. */
static alk_fva *floor_round(alk_trace *t, const alk_fva *a, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    int *kk = alk__trace_alloc(t, (a->size ? a->size : 1) * 3 * sizeof(int));
    if (kk == NULL || a->numeric) {
        if (a->numeric) {
            alk__trace_set_error(t, ALK_EINVAL, "floor/round needs an array of variables");
        }
        return NULL;
    }
    int *ii = kk + a->size, *ff = ii + a->size;
    for (size_t j = 0; j < a->size; j++) {
        int k, i, f;
        alk_fv_kif(get(a, j).v, &k, &i, &f);
        kk[j] = k;
        ii[j] = i + 1 > 1 ? i + 1 : 1;
        ff[j] = 0;
    }
    return alk_fva_quantize_each(t, a, kk, ii, ff, ALK_WRAP, round);
}

alk_fva *alk_fva_where(alk_trace *t, const alk_fva *cond, const alk_fva *x, const alk_fva *y) {
    if (failed(t) || cond == NULL || x == NULL || y == NULL) {
        return NULL;
    }
    const alk_fva *arrays[3] = {cond, x, y};
    size_t ndim, shape[ALK_FVA_MAX_DIM];
    alk_hwconf hw = !x->numeric ? x->hw : !y->numeric ? y->hw : cond->hw;
    if (cond->numeric) {
        if (!broadcast_shape(t, arrays, 3, &ndim, shape)) {
            return NULL;
        }
        alk_fva *c = broadcast_view(t, cond, ndim, shape);
        alk_fva *a = broadcast_view(t, x, ndim, shape);
        alk_fva *b = broadcast_view(t, y, ndim, shape);
        if (x->numeric && y->numeric) {
            alk__trace_set_error(t, ALK_EINVAL, "where needs at least one array of variables");
            return NULL;
        }
        alk_fva *r = new_array(t, ndim, shape, false, hw);
        if (r == NULL || c == NULL || a == NULL || b == NULL) {
            return NULL;
        }
        for (size_t j = 0; j < r->size; j++) {
            put(t, r, j, get(c, j).n != 0 ? get(a, j) : get(b, j));
        }
        return done(t, r);
    }
    const alk_fva *c0 = alk_fva_unary(t, ALK_TO_BOOL_ANY, cond);
    if (c0 == NULL) {
        return NULL;
    }
    arrays[0] = c0;
    if (!broadcast_shape(t, arrays, 3, &ndim, shape)) {
        return NULL;
    }
    alk_fva *c = broadcast_view(t, c0, ndim, shape);
    alk_fva *a = broadcast_view(t, x, ndim, shape);
    alk_fva *b = broadcast_view(t, y, ndim, shape);
    alk_fva *r = new_array(t, ndim, shape, false, cond->hw);
    if (r == NULL || c == NULL || a == NULL || b == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        alk_fvar *k = get(c, j).v;
        alk_hwconf khw = k->node->hwconf;
        elem ea = get(a, j), eb = get(b, j);
        alk_fvar *va = ea.v ? ea.v : alk__fv_const_hw(t, ea.n, khw);
        alk_fvar *vb = eb.v ? eb.v : alk__fv_const_hw(t, eb.n, khw);
        r->vars[j] = alk_fv_mux(t, k, va, vb, NULL);
    }
    return done(t, r);
}

alk_fva *alk_fva_clip(alk_trace *t, const alk_fva *a, const alk_fva *lo, const alk_fva *hi) {
    if (failed(t) || a == NULL || lo == NULL || hi == NULL) {
        return NULL;
    }
    const alk_fva *arrays[3] = {a, lo, hi};
    size_t ndim, shape[ALK_FVA_MAX_DIM];
    if (!broadcast_shape(t, arrays, 3, &ndim, shape)) {
        return NULL;
    }
    alk_fva *x = broadcast_view(t, a, ndim, shape);
    alk_fva *l = broadcast_view(t, lo, ndim, shape);
    alk_fva *h = broadcast_view(t, hi, ndim, shape);
    alk_fva *r = new_array(t, ndim, shape, false, a->hw);
    if (r == NULL || x == NULL || l == NULL || h == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        elem v = binary_elem(t, ALK_MAXIMUM, get(x, j), get(l, j));
        put(t, r, j, binary_elem(t, ALK_MINIMUM, v, get(h, j)));
    }
    return done(t, r);
}

alk_fva *alk_fva_unary(alk_trace *t, alk_unop op, const alk_fva *a) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    switch (op) {
    case ALK_NEGATIVE:
        if (a->numeric) {
            return alk_fva_rbinary_scalar(t, ALK_SUB, 0.0, a);
        }
        return map_vars(t, a, fn_neg, NULL);
    case ALK_ABSOLUTE:
        return map_vars(t, a, fn_abs, NULL);
    case ALK_INVERT:
        return map_vars(t, a, fn_not, NULL);
    case ALK_SIGNBIT:
        return map_vars(t, a, fn_signbit, NULL);
    case ALK_TO_BOOL_ANY:
        return map_vars(t, a, fn_any, NULL);
    case ALK_TO_BOOL_ALL:
        return map_vars(t, a, fn_all, NULL);
    case ALK_SQUARE: {
        /* x ** 2 is x * x with the same reference (a square). */
        int two = 2;
        return map_vars(t, a, fn_pow, &two);
    }
    case ALK_FLOOR:
        return floor_round(t, a, ALK_TRN);
    case ALK_ROUND:
        return floor_round(t, a, ALK_RND_CONV);
    case ALK_CEIL: {
        alk_fva *fl = floor_round(t, a, ALK_TRN);
        if (fl == NULL) {
            return NULL;
        }
        /* where(a.quantize(k=0, i=0), floor + 1, floor): the fraction bits as condition. */
        int *kk = alk__trace_alloc(t, (a->size ? a->size : 1) * 2 * sizeof(int));
        if (kk == NULL) {
            return NULL;
        }
        int *ii = kk + a->size;
        for (size_t j = 0; j < a->size; j++) {
            kk[j] = 0;
            ii[j] = 0;
        }
        alk_fva *frac = alk_fva_quantize_each(t, a, kk, ii, NULL, ALK_WRAP, ALK_TRN);
        return alk_fva_where(t, frac, alk_fva_binary_scalar(t, ALK_ADD, fl, 1), fl);
    }
    case ALK_SIGN: {
        alk_fva *nz = alk_fva_unary(t, ALK_TO_BOOL_ANY, a);
        alk_fva *mask = alk_fva_binary(t, ALK_ADD, nz, alk_fva_binary_scalar(t, ALK_MUL, nz, 2));
        alk_fva *sb = alk_fva_rbinary_scalar(t, ALK_MUL, 2, alk_fva_unary(t, ALK_SIGNBIT, a));
        alk_fva *pm = alk_fva_rbinary_scalar(t, ALK_SUB, 1, sb);
        return alk_fva_quantize(t, alk_fva_binary(t, ALK_BITWISE_AND, pm, mask), 1, 1, 0, ALK_WRAP,
                                ALK_TRN);
    }
    }
    alk__trace_set_error(t, ALK_EINVAL, "unknown unary operation %d", (int)op);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Unary functions as tables (§2.10)                                                        */
/* ---------------------------------------------------------------------------------------- */

double alk_unary_fn_eval(alk_unary_fn fn, double x) {
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
    }
    return NAN;
}

double alk_quantize_float(double x, int k, int i, int f, alk_overflow overflow, alk_round round) {
    if (k + i + f <= 0) {
        return 0.0;
    }
    int ii = i > -f ? i : -f;
    double step = ldexp(1.0, -f);
    if (overflow == ALK_SAT || overflow == ALK_SAT_SYM) {
        double hi = ldexp(1.0, ii) - step;
        double lo = overflow == ALK_SAT ? -ldexp(1.0, ii) * k : -hi * k;
        x = x < lo ? lo : x > hi ? hi : x;
    }
    double sf = ldexp(1.0, f);
    if (round == ALK_TRN) {
        x = floor(x * sf) / sf;
    } else if (round == ALK_RND) {
        x = floor(x * sf + 0.5) / sf;
    } else {
        x = nearbyint(x * sf) / sf;
    }
    if (overflow == ALK_WRAP) {
        double half = ldexp(1.0, ii + k - 1) * k;
        x = py_fmod(x + half, ldexp(1.0, ii + k)) - half;
    }
    return x;
}

typedef struct quantized_fn {
    alk_float_fn fn;
    void *user;
    int k, i, f;
    alk_overflow overflow;
    alk_round round;
} quantized_fn;

static double eval_quantized(double x, void *user) {
    const quantized_fn *q = user;
    return alk_quantize_float(q->fn(x, q->user), q->k, q->i, q->f, q->overflow, q->round);
}

alk_fva *alk_fva_map_fn(alk_trace *t, const alk_fva *a, alk_float_fn fn, void *user, bool quantized,
                        int k, int i, int f, alk_overflow overflow, alk_round round) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "table functions need an array of variables");
        return NULL;
    }
    quantized_fn q = {fn, user, k, i, f, overflow, round};
    alk_float_fn eval = quantized ? eval_quantized : fn;
    void *eval_user = quantized ? (void *)&q : user;
    alk_fva *r = new_array(t, a->ndim, a->shape, false, a->hw);
    /* Tables made in this call, keyed by interval (one call uses one format). */
    alk_qint *keys = alk__trace_alloc(t, (a->size ? a->size : 1) * sizeof(alk_qint));
    alk_ftable **tables = alk__trace_alloc(t, (a->size ? a->size : 1) * sizeof(alk_ftable *));
    if (r == NULL || keys == NULL || tables == NULL) {
        return NULL;
    }
    size_t n_tables = 0;
    for (size_t j = 0; j < a->size && !failed(t); j++) {
        alk_fvar *v = get(a, j).v;
        alk_qint qv = alk__fv_qint(v);
        if (v->factor < 0) {
            qv = (alk_qint){qv.max, qv.min, qv.step};
        }
        alk_ftable *table = NULL;
        for (size_t q2 = 0; q2 < n_tables; q2++) {
            if (keys[q2].min == qv.min && keys[q2].max == qv.max && keys[q2].step == qv.step) {
                table = tables[q2];
                break;
            }
        }
        if (table == NULL) {
            table = alk_ftable_from_fn(t, eval, eval_user, qv);
            keys[n_tables] = qv;
            tables[n_tables++] = table;
        }
        r->vars[j] = alk_fv_lookup(t, v, table, NULL);
    }
    return done(t, r);
}

/* ---------------------------------------------------------------------------------------- */
/* Reductions (§2.4)                                                                        */
/* ---------------------------------------------------------------------------------------- */

/* Packet.__gt__ between two variables. */
static bool packet_gt(alk_fvar *a, alk_fvar *b) {
    double la = nearbyint(a->node->latency), lb = nearbyint(b->node->latency);
    if (la != lb) {
        return la > lb;
    }
    if (b->factor > 0 && a->factor < 0) {
        return false;
    }
    if (b->factor < 0 && a->factor > 0) {
        return true;
    }
    int ka, ia, fa, kb, ib, fb;
    alk__fv_kif(a, &ka, &ia, &fa);
    alk__fv_kif(b, &kb, &ib, &fb);
    return ka + ia > kb + ib;
}

/* Packet.__lt__ = not __gt__. */
static bool packet_lt(alk_fvar *a, alk_fvar *b) {
    return !packet_gt(a, b);
}

/* CPython's heapq (Modules/_heapqmodule.c): siftdown and siftup with swaps. */
static void heap_siftdown(alk_fvar **h, size_t start, size_t pos) {
    while (pos > start) {
        size_t parent = (pos - 1) >> 1;
        if (!packet_lt(h[pos], h[parent])) {
            break;
        }
        alk_fvar *tmp = h[parent];
        h[parent] = h[pos];
        h[pos] = tmp;
        pos = parent;
    }
}

static void heap_siftup(alk_fvar **h, size_t n, size_t pos) {
    size_t start = pos, limit = n >> 1;
    while (pos < limit) {
        size_t child = 2 * pos + 1;
        if (child + 1 < n && !packet_lt(h[child], h[child + 1])) {
            child++;
        }
        alk_fvar *tmp = h[child];
        h[child] = h[pos];
        h[pos] = tmp;
        pos = child;
    }
    heap_siftdown(h, start, pos);
}

typedef alk_fvar *(*reduce_fn)(alk_trace *t, alk_fvar *a, alk_fvar *b);

/* _reduce over variables: the heap order of the reference (spec §2.4). `items` is clobbered. */
static alk_fvar *heap_reduce(alk_trace *t, reduce_fn op, alk_fvar **h, size_t n) {
    if (n == 0) {
        return NULL;
    }
    if (n == 1) {
        return h[0];
    }
    for (size_t p = n >> 1; p-- > 0;) {
        heap_siftup(h, n, p);
    }
    while (n > 1 && !failed(t)) {
        alk_fvar *v[2];
        for (int k = 0; k < 2; k++) {
            alk_fvar *last = h[--n];
            if (n == 0) {
                v[k] = last;
            } else {
                v[k] = h[0];
                h[0] = last;
                heap_siftup(h, n, 0);
            }
        }
        alk_fvar *r = op(t, v[0], v[1]);
        if (r == NULL) {
            return NULL;
        }
        h[n++] = r;
        heap_siftdown(h, 0, n - 1);
    }
    return failed(t) ? NULL : h[0];
}

static alk_fvar *red_add(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_add(t, a, b);
}
static alk_fvar *red_mul(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_mul(t, a, b);
}
static alk_fvar *red_max(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_max(t, a, b);
}
static alk_fvar *red_min(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_min(t, a, b);
}
static alk_fvar *red_and(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_and(t, a, b);
}
static alk_fvar *red_or(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return alk_fv_or(t, a, b);
}

/* _prepare_reduce: the rows (kept axes first, ascending) x reduced elements (C order). */
typedef struct reduce_plan {
    size_t rows;
    size_t cols;
    size_t out_ndim;
    size_t out_shape[ALK_FVA_MAX_DIM];
    alk_fva *flat; /* rows x cols view */
} reduce_plan;

static bool plan_reduce(alk_trace *t, const alk_fva *a, const int *axes, size_t n_axes,
                        bool keepdims, reduce_plan *plan) {
    bool reduced[ALK_FVA_MAX_DIM] = {false};
    if (axes == NULL || n_axes == 0) {
        for (size_t d = 0; d < a->ndim; d++) {
            reduced[d] = true;
        }
    } else {
        for (size_t j = 0; j < n_axes; j++) {
            size_t d;
            if (!norm_axis(t, axes[j], a->ndim, &d)) {
                return false;
            }
            reduced[d] = true;
        }
    }
    int order[ALK_FVA_MAX_DIM];
    size_t n = 0;
    plan->rows = 1;
    plan->cols = 1;
    plan->out_ndim = 0;
    for (size_t d = 0; d < a->ndim; d++) {
        if (!reduced[d]) {
            order[n++] = (int)d;
            plan->rows *= a->shape[d];
            plan->out_shape[plan->out_ndim++] = a->shape[d];
        } else if (keepdims) {
            plan->out_shape[plan->out_ndim++] = 1;
        }
    }
    for (size_t d = 0; d < a->ndim; d++) {
        if (reduced[d]) {
            order[n++] = (int)d;
            plan->cols *= a->shape[d];
        }
    }
    alk_fva *tr = alk_fva_transpose(t, a, order);
    int64_t shape2[2] = {(int64_t)plan->rows, (int64_t)plan->cols};
    plan->flat = alk_fva_reshape(t, tr, 2, shape2);
    return plan->flat != NULL;
}

/* The ops of the reduce itself and their numeric forms. */
static reduce_fn reducer(alk_reduce_op op) {
    switch (op) {
    case ALK_REDUCE_PROD:
        return red_mul;
    case ALK_REDUCE_MAX:
        return red_max;
    case ALK_REDUCE_MIN:
        return red_min;
    case ALK_REDUCE_ALL:
        return red_and;
    case ALK_REDUCE_ANY:
        return red_or;
    default:
        return red_add;
    }
}

static double numeric_reduce(alk_reduce_op op, double a, double b) {
    switch (op) {
    case ALK_REDUCE_PROD:
        return a * b;
    case ALK_REDUCE_MAX:
        return pymax(a, b);
    case ALK_REDUCE_MIN:
        return pymin(a, b);
    case ALK_REDUCE_ALL:
        return (double)((a != 0) && (b != 0));
    case ALK_REDUCE_ANY:
        return (double)((a != 0) || (b != 0));
    default:
        return a + b;
    }
}

static alk_fva *argreduce(alk_trace *t, const alk_fva *a, const reduce_plan *plan, bool minimize);

alk_fva *alk_fva_reduce(alk_trace *t, alk_reduce_op op, const alk_fva *a, const int *axes,
                        size_t n_axes, bool keepdims) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (op == ALK_REDUCE_MEAN) {
        alk_fva *r = alk_fva_reduce(t, ALK_REDUCE_SUM, a, axes, n_axes, false);
        if (r == NULL) {
            return NULL;
        }
        if (a->size == 0) {
            alk__trace_set_error(t, ALK_EINVAL, "mean of an empty array");
            return NULL;
        }
        /* quirk: keepdims is ignored; the factor is a double ratio (SCM unless a power of 2). */
        return alk_fva_binary_scalar(t, ALK_MUL, r, (double)r->size / (double)a->size);
    }
    const alk_fva *src = a;
    alk_reduce_op base = op;
    if (op == ALK_REDUCE_ALL || op == ALK_REDUCE_ANY || op == ALK_REDUCE_COUNT_NONZERO) {
        if (!a->numeric) {
            src = alk_fva_unary(t, ALK_TO_BOOL_ANY, a);
            if (src == NULL) {
                return NULL;
            }
        }
        if (op == ALK_REDUCE_COUNT_NONZERO) {
            base = ALK_REDUCE_SUM;
        }
    }
    reduce_plan plan;
    if (!plan_reduce(t, src, axes, n_axes, keepdims, &plan)) {
        return NULL;
    }
    if (plan.cols == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "reduction over an empty axis");
        return NULL;
    }
    if (op == ALK_REDUCE_ARGMAX || op == ALK_REDUCE_ARGMIN) {
        alk_fva *r = argreduce(t, src, &plan, op == ALK_REDUCE_ARGMIN);
        return r;
    }
    alk_fva *r = new_array(t, plan.out_ndim, plan.out_shape, src->numeric, src->hw);
    alk_fvar **row = alk__trace_alloc(t, plan.cols * sizeof(alk_fvar *));
    if (r == NULL || row == NULL) {
        return NULL;
    }
    for (size_t q = 0; q < plan.rows && !failed(t); q++) {
        if (src->numeric) {
            double acc = get(plan.flat, q * plan.cols).n;
            for (size_t c = 1; c < plan.cols; c++) {
                acc = numeric_reduce(base, acc, get(plan.flat, q * plan.cols + c).n);
            }
            r->nums[q] = acc;
            continue;
        }
        for (size_t c = 0; c < plan.cols; c++) {
            row[c] = get(plan.flat, q * plan.cols + c).v;
        }
        r->vars[q] = heap_reduce(t, reducer(base), row, plan.cols);
    }
    return done(t, r);
}

static alk_fva *argreduce(alk_trace *t, const alk_fva *a, const reduce_plan *plan, bool minimize) {
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "argmax/argmin needs an array of variables");
        return NULL;
    }
    alk_fva *r = new_array(t, plan->out_ndim, plan->out_shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    for (size_t q = 0; q < plan->rows && !failed(t); q++) {
        /* Pairs (value, index) folded left to right (the pair is not an FVariable). */
        alk_fvar *val = get(plan->flat, q * plan->cols).v;
        alk_fvar *idx = alk__fv_const_hw(t, 0.0, a->hw);
        for (size_t c = 1; c < plan->cols && !failed(t); c++) {
            alk_fvar *bv = get(plan->flat, q * plan->cols + c).v;
            alk_fvar *bi = alk__fv_const_hw(t, (double)c, a->hw);
            alk_fvar *cmp = minimize ? alk_fv_le(t, val, bv) : alk_fv_ge(t, val, bv);
            alk_fvar *nv = alk_fv_mux(t, cmp, val, bv, NULL);
            idx = alk_fv_mux(t, cmp, idx, bi, NULL);
            val = nv;
        }
        r->vars[q] = idx;
    }
    return done(t, r);
}

/* ---------------------------------------------------------------------------------------- */
/* Products (§2.5, §2.6)                                                                    */
/* ---------------------------------------------------------------------------------------- */

static bool collapsed(const alk_fva *a) {
    for (size_t j = 0; j < a->size; j++) {
        alk_fvar *v = get(a, j).v;
        if (alk_fv_low(v) != alk_fv_high(v)) {
            return false;
        }
    }
    return true;
}

/* tensordot(a, b, axes=1) shapes: a.shape[:-1] + b.shape[1:]. */
static bool product_shape(alk_trace *t, const alk_fva *a, const alk_fva *b, size_t *ndim,
                          size_t *shape, size_t *k) {
    if (a->ndim == 0 || b->ndim == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "matmul needs arrays of at least one dimension");
        return false;
    }
    *k = a->shape[a->ndim - 1];
    if (b->shape[0] != *k) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "matrix shapes do not match: contraction of %zu and %zu elements", *k,
                             b->shape[0]);
        return false;
    }
    *ndim = a->ndim - 1 + b->ndim - 1;
    if (*ndim > ALK_FVA_MAX_DIM) {
        alk__trace_set_error(t, ALK_EINVAL, "matmul result has too many dimensions");
        return false;
    }
    size_t n = 0;
    for (size_t d = 0; d + 1 < a->ndim; d++) {
        shape[n++] = a->shape[d];
    }
    for (size_t d = 1; d < b->ndim; d++) {
        shape[n++] = b->shape[d];
    }
    return true;
}

/* mmm: out[i, j] = heap sum of a[i, :] * b[:, j]. */
static alk_fva *mmm(alk_trace *t, const alk_fva *a, const alk_fva *b) {
    size_t ndim, shape[ALK_FVA_MAX_DIM], k;
    if (!product_shape(t, a, b, &ndim, shape, &k)) {
        return NULL;
    }
    size_t rows = a->size / (k ? k : 1), cols = b->size / (k ? k : 1);
    if (k == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "matmul over an empty axis");
        return NULL;
    }
    alk_fva *r = new_array(t, ndim, shape, false, a->numeric ? b->hw : a->hw);
    alk_fvar **terms = alk__trace_alloc(t, k * sizeof(alk_fvar *));
    if (r == NULL || terms == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < rows && !failed(t); i++) {
        for (size_t j = 0; j < cols && !failed(t); j++) {
            for (size_t c = 0; c < k; c++) {
                elem x = get(a, i * k + c), y = get(b, c * cols + j);
                terms[c] = as_var(t, binary_elem(t, ALK_MUL, x, y), r->hw);
            }
            r->vars[i * cols + j] = heap_reduce(t, red_add, terms, k);
        }
    }
    return done(t, r);
}

/* Sum of the parts of one output (np.sum(FVArray(parts), axis=0)). */
static alk_fvar *sum_parts(alk_trace *t, elem *parts, size_t n, alk_hwconf hw) {
    alk_fvar *items[3];
    for (size_t p = 0; p < n; p++) {
        items[p] = as_var(t, parts[p], hw);
    }
    return heap_reduce(t, red_add, items, n);
}

/* Packs one-bit inputs into lookup tables (spec cmvm §8.2 step 2); zeroes the packed weights of
 * `w` and writes the LUT part of each output (a number 0.0 when a column has no group). */
static int binary_lut(alk_trace *t, double *w, size_t k, size_t n_out, alk_fvar **v, elem *lut_part,
                      bool *ret_any) {
    int width = t->solver.binary_lut_width;
    bool *bit = alk__trace_alloc(t, k * sizeof(bool));
    size_t *active = alk__trace_alloc(t, k * sizeof(size_t));
    if (bit == NULL || active == NULL) {
        return t->error;
    }
    bool any_bit = false;
    for (size_t i = 0; i < k; i++) {
        int kk, ii, ff;
        alk__fv_kif(v[i], &kk, &ii, &ff);
        bit[i] = kk + ii + ff == 1;
        any_bit = any_bit || bit[i];
    }
    *ret_any = false;
    if (!any_bit) {
        return ALK_OK;
    }
    /* Groups per column first (on the unmodified matrix), then zero and build. */
    size_t *groups = alk__trace_alloc(t, (k + 1) * n_out * sizeof(size_t));
    size_t *n_groups = alk__trace_alloc(t, n_out * sizeof(size_t));
    if (groups == NULL || n_groups == NULL) {
        return t->error;
    }
    for (size_t j = 0; j < n_out; j++) {
        size_t n = 0;
        for (size_t i = 0; i < k; i++) {
            if (bit[i] && w[i * n_out + j] != 0.0) {
                active[n++] = i;
            }
        }
        /* Stable sort by (msb, msb - lsb + 1) of |w|. */
        for (size_t a = 1; a < n; a++) {
            for (size_t b = a; b > 0; b--) {
                double wa = fabs(w[active[b - 1] * n_out + j]), wb = fabs(w[active[b] * n_out + j]);
                int ea, eb;
                (void)frexp(wa, &ea);
                (void)frexp(wb, &eb);
                int ma = ea - 1, mb = eb - 1;
                int la = ma - lsb_i8(wa) + 1, lb = mb - lsb_i8(wb) + 1;
                if (ma < mb || (ma == mb && la <= lb)) {
                    break;
                }
                size_t tmp = active[b];
                active[b] = active[b - 1];
                active[b - 1] = tmp;
            }
        }
        n_groups[j] = width > 0 ? n / (size_t)width : 0;
        memcpy(groups + j * (k + 1), active, n * sizeof(size_t));
    }
    for (size_t j = 0; j < n_out; j++) {
        lut_part[j] = (elem){NULL, 0.0};
        alk_fvar **terms =
            alk__trace_alloc(t, (n_groups[j] ? n_groups[j] : 1) * sizeof(alk_fvar *));
        alk_fvar **addr = alk__trace_alloc(t, (size_t)width * sizeof(alk_fvar *));
        double *table = alk__trace_alloc(t, ((size_t)1 << width) * sizeof(double));
        if (terms == NULL || addr == NULL || table == NULL) {
            return t->error;
        }
        for (size_t g = 0; g < n_groups[j]; g++) {
            const size_t *idx = groups + j * (k + 1) + g * (size_t)width;
            for (int q = 0; q < width; q++) {
                alk_fvar *x = v[idx[q]];
                double step = alk_fv_step(x);
                if (step != 1.0) {
                    x = alk_fv_mul_const(t, x, 1.0 / step);
                }
                addr[q] = alk_fv_mul_const(t, x, ldexp(1.0, q));
            }
            for (size_t c = 0; c < ((size_t)1 << width); c++) {
                double s = 0;
                for (int q = 0; q < width; q++) {
                    if (c & ((size_t)1 << q)) {
                        s += w[idx[q] * n_out + j] * alk_fv_step(v[idx[q]]);
                    }
                }
                table[c] = s;
            }
            alk_fvar *address = heap_reduce(t, red_add, addr, (size_t)width);
            alk_ftable *tab = alk_ftable_new(t, table, (size_t)1 << width);
            alk_qint range = {0.0, (double)(((size_t)1 << width) - 1), 1.0};
            terms[g] = alk_fv_lookup(t, address, tab, &range);
            *ret_any = true;
        }
        if (n_groups[j] > 0) {
            lut_part[j] = (elem){heap_reduce(t, red_add, terms, n_groups[j]), 0};
        }
    }
    for (size_t j = 0; j < n_out; j++) {
        for (size_t g = 0; g < n_groups[j]; g++) {
            const size_t *idx = groups + j * (k + 1) + g * (size_t)width;
            for (int q = 0; q < width; q++) {
                w[idx[q] * n_out + j] = 0.0;
            }
        }
    }
    return t->error;
}

/*
 * Offload (spec cmvm §8.2 step 1): asks the hook which weights of `w` to realise as plain
 * products, takes them out of `w`, and writes their per-output sums (mmm of the reference: the
 * products of every input with the masked weights, zeros included, heap-summed) to `part`.
 */
static int offload_part(alk_trace *t, double *w, size_t k, size_t n_out, alk_fvar **v, elem *part,
                        bool *ret_have) {
    *ret_have = false;
    size_t cells = k * n_out;
    bool *mask = alk__trace_alloc(t, (cells ? cells : 1) * sizeof(bool));
    double *w_off = alk__trace_alloc(t, (cells ? cells : 1) * sizeof(double));
    if (mask == NULL || w_off == NULL) {
        return t->error;
    }
    memset(mask, 0, cells * sizeof(bool));
    alk_diag diag = {{0}};
    int rv = t->solver.offload(t->solver.offload_ctx, w, k, n_out, v, mask, &diag);
    if (rv != ALK_OK) {
        return alk__trace_set_error(t, rv, "the offload hook failed: %s",
                                    diag.message[0] != '\0' ? diag.message : alk_err_name(rv));
    }
    bool any = false;
    for (size_t c = 0; c < cells; c++) {
        w_off[c] = mask[c] ? w[c] : 0.0;
        w[c] = mask[c] ? 0.0 : w[c];
        any = any || mask[c];
    }
    if (!any) {
        return ALK_OK;
    }
    size_t shape_v[1] = {k}, shape_w[2] = {k, n_out};
    alk_fva *products =
        mmm(t, alk_fva_from_vars(t, 1, shape_v, v), alk_fva_numbers(t, 2, shape_w, w_off));
    if (products == NULL) {
        return t->error;
    }
    for (size_t j = 0; j < n_out; j++) {
        part[j] = get(products, j);
    }
    *ret_have = true;
    return ALK_OK;
}

/* cmvm(cm, v) of spec cmvm §8.2 for one vector `v` (k variables) and the k x n_out matrix `w`
 * (row-major, copied); writes n_out variables. */
static int cmvm_vector(alk_trace *t, const double *w_in, size_t k, size_t n_out, alk_fvar **v,
                       alk_hwconf hw, alk_fvar **out) {
    double *w = alk__trace_alloc(t, (k * n_out != 0 ? k * n_out : 1) * sizeof(double));
    elem *lut = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(elem));
    elem *solved = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(elem));
    elem *offloaded = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(elem));
    if (w == NULL || lut == NULL || solved == NULL || offloaded == NULL) {
        return t->error;
    }
    memcpy(w, w_in, k * n_out * sizeof(double));
    bool have_offload = false;
    if (t->solver.offload != NULL) {
        int rv = offload_part(t, w, k, n_out, v, offloaded, &have_offload);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    bool have_lut = false;
    if (t->solver.binary_lut) {
        int rv = binary_lut(t, w, k, n_out, v, lut, &have_lut);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    bool any_weight = false;
    for (size_t j = 0; j < k * n_out; j++) {
        /* The reference hands the solver float32 weights (quirk). */
        w[j] = (double)(float)w[j];
        any_weight = any_weight || w[j] != 0.0;
    }
    bool have_solved = false;
    if (any_weight) {
        alk_qint *q = alk__trace_alloc(t, k * sizeof(alk_qint));
        double *lat = alk__trace_alloc(t, k * sizeof(double));
        if (q == NULL || lat == NULL) {
            return t->error;
        }
        for (size_t i = 0; i < k; i++) {
            q[i] = (alk_qint){alk_fv_low(v[i]), alk_fv_high(v[i]), alk_fv_step(v[i])};
            lat[i] = v[i]->node->latency;
        }
        alk_cmvm_problem problem = {(uint32_t)k, (uint32_t)n_out, w, q, lat};
        const alk_cmvm_result *res = NULL;
        alk_cmvm_result owned;
        bool is_owned = false;
        int rv = alk__cmvm_run(t, &problem, &res, &owned, &is_owned);
        if (rv != ALK_OK) {
            return rv;
        }
        {
            alk__comb *c0 = NULL, *c1 = NULL;
            alk__rval *in = alk__trace_alloc(t, k * sizeof(alk__rval));
            alk__rval *mid = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(alk__rval));
            alk__rval *fin = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(alk__rval));
            alk_diag diag = {{0}};
            rv = in && mid && fin ? alk__comb_from_program(res->stage0, &c0, &diag) : t->error;
            if (rv == ALK_OK) {
                rv = alk__comb_from_program(res->stage1, &c1, &diag);
            }
            if (rv == ALK_OK &&
                (c0->n_in != k || c0->n_out != n_out || c1->n_in != n_out || c1->n_out != n_out)) {
                rv = alk__trace_set_error(t, ALK_EINTERNAL, "CMVM result has the wrong shape");
            }
            if (rv == ALK_OK) {
                for (size_t i = 0; i < k; i++) {
                    in[i] = (alk__rval){v[i], 0};
                }
                rv = alk__comb_replay(t, c0, in, mid);
            }
            if (rv == ALK_OK) {
                rv = alk__comb_replay(t, c1, mid, fin);
            }
            alk__comb_free(c0);
            alk__comb_free(c1);
            if (is_owned) {
                alk_cmvm_result_fini(&owned);
            }
            if (rv != ALK_OK) {
                return alk__trace_set_error(t, rv, "CMVM replay failed: %s", diag.message);
            }
            for (size_t j = 0; j < n_out; j++) {
                solved[j] = (elem){fin[j].var, fin[j].num};
            }
        }
        have_solved = true;
    }
    for (size_t j = 0; j < n_out && !failed(t); j++) {
        elem parts[3];
        size_t n = 0;
        if (have_lut) {
            parts[n++] = lut[j];
        }
        if (have_solved) {
            parts[n++] = solved[j];
        }
        if (have_offload) {
            parts[n++] = offloaded[j];
        }
        out[j] = n == 0 ? num_var(t, 0.0, hw) : sum_parts(t, parts, n, hw);
    }
    return t->error;
}

/* _matmul(a, b) with a variable array a (spec §2.5). */
static alk_fva *matmul_var(alk_trace *t, const alk_fva *a, const alk_fva *b) {
    if (collapsed(a)) {
        /* A constant matrix: numeric product, unless b has real variables. */
        alk_fva *am = new_array(t, a->ndim, a->shape, true, a->hw);
        if (am == NULL) {
            return NULL;
        }
        for (size_t j = 0; j < a->size; j++) {
            am->nums[j] = alk_fv_low(get(a, j).v);
        }
        alk_fva *bm = NULL;
        if (!b->numeric) {
            if (!collapsed(b)) {
                return alk_fva_matmul(t, am, b);
            }
            bm = new_array(t, b->ndim, b->shape, true, b->hw);
            if (bm == NULL) {
                return NULL;
            }
            for (size_t j = 0; j < b->size; j++) {
                bm->nums[j] = alk_fv_low(get(b, j).v);
            }
        } else {
            bm = alk_fva_copy(t, b);
        }
        alk_fva *r = alk_fva_matmul(t, am, bm);
        if (r == NULL) {
            return NULL;
        }
        alk_fva *out = new_array(t, r->ndim, r->shape, false, a->hw);
        if (out == NULL) {
            return NULL;
        }
        for (size_t j = 0; j < r->size; j++) {
            double x = get(r, j).n;
            out->vars[j] = alk__fv_new_hw(t, x, x, 1.0, 0.0, a->hw);
        }
        return done(t, out);
    }
    if (!b->numeric) {
        return mmm(t, a, b);
    }
    size_t ndim, shape[ALK_FVA_MAX_DIM], k;
    if (!product_shape(t, a, b, &ndim, shape, &k)) {
        return NULL;
    }
    size_t rows = k ? a->size / k : 0, n_out = k ? b->size / k : 0;
    alk_fva *r = new_array(t, ndim, shape, false, a->hw);
    double *w = alk__trace_alloc(t, (b->size ? b->size : 1) * sizeof(double));
    alk_fvar **vec = alk__trace_alloc(t, (k ? k : 1) * sizeof(alk_fvar *));
    if (r == NULL || w == NULL || vec == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < b->size; j++) {
        w[j] = get(b, j).n;
    }
    for (size_t i = 0; i < rows && !failed(t); i++) {
        for (size_t c = 0; c < k; c++) {
            vec[c] = get(a, i * k + c).v;
        }
        (void)cmvm_vector(t, w, k, n_out, vec, a->hw, r->vars + i * n_out);
    }
    return done(t, r);
}

alk_fva *alk_fva_matmul(alk_trace *t, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL) {
        return NULL;
    }
    if (!a->numeric) {
        return matmul_var(t, a, b);
    }
    if (b->numeric) {
        /* numpy-level product of two numeric arrays (tensordot over one axis). */
        size_t ndim, shape[ALK_FVA_MAX_DIM], k;
        if (!product_shape(t, a, b, &ndim, shape, &k)) {
            return NULL;
        }
        alk_fva *r = new_array(t, ndim, shape, true, a->hw);
        if (r == NULL) {
            return NULL;
        }
        size_t rows = k ? a->size / k : 0, cols = k ? b->size / k : 0;
        for (size_t i = 0; i < rows; i++) {
            for (size_t j = 0; j < cols; j++) {
                double s = 0;
                for (size_t c = 0; c < k; c++) {
                    s += get(a, i * k + c).n * get(b, c * cols + j).n;
                }
                r->nums[i * cols + j] = s;
            }
        }
        return r;
    }
    /* _rmatmul(b, a): moveaxis(b, 0, -1) @ moveaxis(a, -1, 0), then the const axes first. */
    alk_fva *mat1 = alk_fva_moveaxis(t, a, -1, 0);
    alk_fva *mat0 = alk_fva_moveaxis(t, b, 0, -1);
    if (mat0 == NULL || mat1 == NULL) {
        return NULL;
    }
    alk_fva *r = alk_fva_matmul(t, mat0, mat1);
    if (r == NULL) {
        return NULL;
    }
    size_t ndim0 = mat0->ndim, ndim1 = mat1->ndim;
    int axes[ALK_FVA_MAX_DIM];
    size_t n = 0, total = ndim0 + ndim1 - 2;
    for (size_t d = ndim0 - 1; d < total; d++) {
        axes[n++] = (int)d;
    }
    for (size_t d = 0; d + 1 < ndim0; d++) {
        axes[n++] = (int)d;
    }
    return alk_fva_transpose(t, r, axes);
}

alk_fva *alk_fva_dot(alk_trace *t, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL) {
        return NULL;
    }
    if (a->ndim > 0 && b->ndim > 0 && a->shape[a->ndim - 1] == b->shape[0]) {
        return alk_fva_matmul(t, a, b);
    }
    if (a->size != 1 && b->size != 1) {
        alk__trace_set_error(t, ALK_EINVAL, "dot of incompatible shapes");
        return NULL;
    }
    return alk_fva_binary(t, ALK_MUL, a, b);
}

/* ---- einsum ---- */

static bool is_letter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Parses one subscript list, replacing "..." by '0'. */
static bool parse_subscripts(alk_trace *t, const char *s, size_t len, char *out, size_t *n) {
    *n = 0;
    while (len > 0 && s[0] == ' ') {
        s++;
        len--;
    }
    while (len > 0 && s[len - 1] == ' ') {
        len--;
    }
    for (size_t j = 0; j < len;) {
        if (s[j] == '.') {
            if (j + 3 <= len && s[j + 1] == '.' && s[j + 2] == '.') {
                out[(*n)++] = '0';
                j += 3;
                continue;
            }
            alk__trace_set_error(t, ALK_EINVAL, "einsum: stray '.' in subscripts");
            return false;
        }
        if (!is_letter(s[j])) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "einsum: subscripts must be letters a-z, A-Z or '...', got '%c'",
                                 s[j]);
            return false;
        }
        if (*n >= 60) {
            alk__trace_set_error(t, ALK_EINVAL, "einsum: too many subscripts");
            return false;
        }
        out[(*n)++] = s[j++];
    }
    for (size_t a = 0; a < *n; a++) {
        for (size_t b = a + 1; b < *n; b++) {
            if (out[a] == out[b]) {
                alk__trace_set_error(t, ALK_EINVAL,
                                     "einsum: subscript '%c' repeated in one operand",
                                     out[a] == '0' ? '.' : out[a]);
                return false;
            }
        }
    }
    return true;
}

static int find_char(const char *s, size_t n, char c) {
    for (size_t j = 0; j < n; j++) {
        if (s[j] == c) {
            return (int)j;
        }
    }
    return -1;
}

/* Replaces '0' (the ellipsis) by `fill` (nf letters). */
static bool expand_ellipsis(char *s, size_t *n, const char *fill, size_t nf) {
    int p = find_char(s, *n, '0');
    if (p < 0) {
        return true;
    }
    if (*n - 1 + nf > 60) {
        return false;
    }
    memmove(s + p + nf, s + p + 1, *n - (size_t)p - 1);
    memcpy(s + p, fill, nf);
    *n = *n - 1 + nf;
    return true;
}

alk_fva *alk_fva_einsum(alk_trace *t, const char *equation, const alk_fva *a, const alk_fva *b) {
    if (failed(t) || a == NULL || b == NULL || equation == NULL) {
        return NULL;
    }
    const char *arrow = strstr(equation, "->");
    const char *comma = strchr(equation, ',');
    if (arrow == NULL || comma == NULL || comma > arrow || strchr(comma + 1, ',') != NULL) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "einsum equation '%s' must have the form 'in0,in1->out' (exactly "
                             "two operands)",
                             equation);
        return NULL;
    }
    char in0[64], in1[64], out[64];
    size_t n0, n1, no;
    if (!parse_subscripts(t, equation, (size_t)(comma - equation), in0, &n0) ||
        !parse_subscripts(t, comma + 1, (size_t)(arrow - comma - 1), in1, &n1) ||
        !parse_subscripts(t, arrow + 2, strlen(arrow + 2), out, &no)) {
        return NULL;
    }
    bool e0 = find_char(in0, n0, '0') >= 0, e1 = find_char(in1, n1, '0') >= 0;
    bool eo = find_char(out, no, '0') >= 0;
    if ((e0 || e1 || eo) && !eo) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': output does not allow broadcasting",
                             equation);
        return NULL;
    }
    if (eo && !e0 && !e1) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': output broadcasts but inputs do not",
                             equation);
        return NULL;
    }
    for (size_t j = 0; j < no; j++) {
        if (out[j] != '0' && find_char(in0, n0, out[j]) < 0 && find_char(in1, n1, out[j]) < 0) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "einsum '%s': output subscript '%c' not found in inputs", equation,
                                 out[j]);
            return NULL;
        }
    }
    /* Free letters in sorted order replace "...". */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char free_letters[64];
    size_t nf = 0;
    for (const char *p = alphabet; *p; p++) {
        if (find_char(in0, n0, *p) < 0 && find_char(in1, n1, *p) < 0 &&
            find_char(out, no, *p) < 0) {
            free_letters[nf++] = *p;
        }
    }
    if (e0 && e1) {
        int64_t b0 = (int64_t)a->ndim - (int64_t)n0 + 1, b1 = (int64_t)b->ndim - (int64_t)n1 + 1;
        if (b0 != b1 || b0 < 0) {
            alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': '...' expands to %lld and %lld axes",
                                 equation, (long long)b0, (long long)b1);
            return NULL;
        }
        expand_ellipsis(in0, &n0, free_letters, (size_t)b0);
        expand_ellipsis(in1, &n1, free_letters, (size_t)b0);
        expand_ellipsis(out, &no, free_letters, (size_t)b0);
    } else {
        if (e0) {
            int64_t nb = (int64_t)a->ndim - (int64_t)n0 + 1;
            if (nb < 0) {
                alk__trace_set_error(t, ALK_EINVAL,
                                     "einsum '%s': input 0 needs at least %zu "
                                     "dimensions, got %u",
                                     equation, n0 - 1, a->ndim);
                return NULL;
            }
            expand_ellipsis(in0, &n0, free_letters, (size_t)nb);
            expand_ellipsis(out, &no, free_letters, (size_t)nb);
        } else if (n0 != a->ndim) {
            alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': input 0 needs %zu dimensions, got %u",
                                 equation, n0, a->ndim);
            return NULL;
        }
        if (e1) {
            int64_t nb = (int64_t)b->ndim - (int64_t)n1 + 1;
            if (nb < 0) {
                alk__trace_set_error(t, ALK_EINVAL,
                                     "einsum '%s': input 1 needs at least %zu "
                                     "dimensions, got %u",
                                     equation, n1 - 1, b->ndim);
                return NULL;
            }
            expand_ellipsis(in1, &n1, free_letters, (size_t)nb);
            expand_ellipsis(out, &no, free_letters, (size_t)nb);
        } else if (n1 != b->ndim) {
            alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': input 1 needs %zu dimensions, got %u",
                                 equation, n1, b->ndim);
            return NULL;
        }
    }
    if (n0 != a->ndim || n1 != b->ndim) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': operand dimensions do not match",
                             equation);
        return NULL;
    }
    for (size_t j = 0; j < n0; j++) {
        int q = find_char(in1, n1, in0[j]);
        if (q >= 0 && a->shape[j] != b->shape[q]) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "einsum '%s': sizes %zu and %zu differ for subscript '%c'",
                                 equation, a->shape[j], b->shape[q], in0[j]);
            return NULL;
        }
    }
    /* parse_einsum: classify. */
    char contract[64], inplace[64], inv0[64], inv1[64];
    size_t nc = 0, ni = 0, nv0 = 0, nv1 = 0;
    for (size_t j = 0; j < n1; j++) {
        char c = in1[j];
        bool in_0 = find_char(in0, n0, c) >= 0, in_o = find_char(out, no, c) >= 0;
        if (in_0 && !in_o) {
            contract[nc++] = c;
        } else if (in_0 && in_o) {
            inplace[ni++] = c;
        } else if (!in_0 && in_o) {
            inv1[nv1++] = c;
        }
    }
    for (size_t j = 0; j < n0; j++) {
        char c = in0[j];
        if (find_char(in1, n1, c) < 0 && find_char(out, no, c) >= 0) {
            inv0[nv0++] = c;
        }
    }
    /* Direct sums: indices only in one input and not in the output. */
    int sum0[64], sum1[64];
    size_t ns0 = 0, ns1 = 0;
    for (size_t j = 0; j < n0; j++) {
        if (find_char(out, no, in0[j]) < 0 && find_char(in1, n1, in0[j]) < 0) {
            sum0[ns0++] = (int)j;
        }
    }
    for (size_t j = 0; j < n1; j++) {
        if (find_char(out, no, in1[j]) < 0 && find_char(in0, n0, in1[j]) < 0) {
            sum1[ns1++] = (int)j;
        }
    }
    /* Subscripts left after the direct sums. */
    char r0[64], r1[64];
    size_t m0 = 0, m1 = 0;
    const alk_fva *x0 = a, *x1 = b;
    if (ns0 > 0) {
        x0 = alk_fva_reduce(t, ALK_REDUCE_SUM, a, sum0, ns0, false);
    }
    if (ns1 > 0) {
        x1 = alk_fva_reduce(t, ALK_REDUCE_SUM, b, sum1, ns1, false);
    }
    if (x0 == NULL || x1 == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < n0; j++) {
        bool summed = false;
        for (size_t q = 0; q < ns0; q++) {
            summed = summed || sum0[q] == (int)j;
        }
        if (!summed) {
            r0[m0++] = in0[j];
        }
    }
    for (size_t j = 0; j < n1; j++) {
        bool summed = false;
        for (size_t q = 0; q < ns1; q++) {
            summed = summed || sum1[q] == (int)j;
        }
        if (!summed) {
            r1[m1++] = in1[j];
        }
    }
    /* Transposes to (inplace, invariant, contract) — indices into the original subscripts,
     * which the reference uses even after the direct sums (they come after kept axes only when
     * no summed axis precedes them; map through the remaining list). */
    int tr0[64], tr1[64];
    size_t q0 = 0, q1 = 0;
    size_t L0 = 1, L1 = 1, I = 1, C = 1;
    for (size_t j = 0; j < ni; j++) {
        tr0[q0++] = find_char(r0, m0, inplace[j]);
        tr1[q1++] = find_char(r1, m1, inplace[j]);
        I *= x0->shape[find_char(r0, m0, inplace[j])];
    }
    for (size_t j = 0; j < nv0; j++) {
        tr0[q0++] = find_char(r0, m0, inv0[j]);
        L0 *= x0->shape[find_char(r0, m0, inv0[j])];
    }
    for (size_t j = 0; j < nv1; j++) {
        tr1[q1++] = find_char(r1, m1, inv1[j]);
        L1 *= x1->shape[find_char(r1, m1, inv1[j])];
    }
    for (size_t j = 0; j < nc; j++) {
        tr0[q0++] = find_char(r0, m0, contract[j]);
        tr1[q1++] = find_char(r1, m1, contract[j]);
        C *= x0->shape[find_char(r0, m0, contract[j])];
    }
    if (q0 != m0 || q1 != m1) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': unsupported subscripts", equation);
        return NULL;
    }
    alk_fva *f0 = alk_fva_ravel(t, alk_fva_transpose(t, x0, tr0));
    alk_fva *f1 = alk_fva_ravel(t, alk_fva_transpose(t, x1, tr1));
    if (f0 == NULL || f1 == NULL) {
        return NULL;
    }
    size_t total = L0 * L1 * I;
    bool numeric = a->numeric && b->numeric;
    alk_hwconf hw = !a->numeric ? a->hw : b->hw;
    size_t flat_shape[1] = {total};
    alk_fva *output = new_array(t, 1, flat_shape, numeric, hw);
    if (output == NULL) {
        return NULL;
    }
    for (size_t l0 = 0; l0 < L0 && !failed(t); l0++) {
        for (size_t i = 0; i < I && !failed(t); i++) {
            alk_index ia[1] = {ALK_SLICE((int64_t)(i * L1 * C), (int64_t)((i + 1) * L1 * C), 1)};
            alk_index ib[1] = {
                ALK_SLICE((int64_t)((i * L0 + l0) * C), (int64_t)((i * L0 + l0 + 1) * C), 1)};
            int64_t ashape[2] = {(int64_t)L1, (int64_t)C};
            alk_fva *A = alk_fva_reshape(t, alk_fva_index(t, f1, ia, 1), 2, ashape);
            alk_fva *B = alk_fva_index(t, f0, ib, 1);
            alk_fva *AB = alk_fva_matmul(t, A, B);
            if (AB == NULL) {
                return NULL;
            }
            for (size_t q = 0; q < L1; q++) {
                put(t, output, (i * L0 + l0) * L1 + q, get(AB, q));
            }
        }
    }
    /* Reshape to (inplace, invariant0, invariant1) and transpose to the output order. */
    int64_t pre[ALK_FVA_MAX_DIM];
    size_t np = 0;
    char pre_names[64];
    for (size_t j = 0; j < ni; j++) {
        pre_names[np] = inplace[j];
        pre[np++] = (int64_t)x0->shape[find_char(r0, m0, inplace[j])];
    }
    for (size_t j = 0; j < nv0; j++) {
        pre_names[np] = inv0[j];
        pre[np++] = (int64_t)x0->shape[find_char(r0, m0, inv0[j])];
    }
    for (size_t j = 0; j < nv1; j++) {
        pre_names[np] = inv1[j];
        pre[np++] = (int64_t)x1->shape[find_char(r1, m1, inv1[j])];
    }
    if (np != no || np > ALK_FVA_MAX_DIM) {
        alk__trace_set_error(t, ALK_EINVAL, "einsum '%s': unsupported output", equation);
        return NULL;
    }
    /* out_transpose = argsort(position in the output of each pre axis). */
    int perm[ALK_FVA_MAX_DIM];
    for (size_t d = 0; d < no; d++) {
        perm[d] = find_char(pre_names, np, out[d]);
    }
    alk_fva *r = alk_fva_reshape(t, output, np, pre);
    return alk_fva_transpose(t, r, perm);
}

/* ---------------------------------------------------------------------------------------- */
/* Sorting (§2.8)                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* cmp_swap of two rows of m columns. */
static void cmp_swap(alk_trace *t, alk_fvar **a, alk_fvar **b, size_t m, bool ascending) {
    alk_fvar *k = alk_fv_le(t, a[0], b[0]);
    for (size_t j = 0; j < m && !failed(t); j++) {
        alk_fvar *x = alk_fv_mux(t, k, a[j], b[j], NULL);
        alk_fvar *y = alk_fv_mux(t, k, b[j], a[j], NULL);
        if (ascending) {
            a[j] = x;
            b[j] = y;
        } else {
            a[j] = y;
            b[j] = x;
        }
    }
}

static void batcher(alk_trace *t, alk_fvar **rows, size_t n, size_t m) {
    int levels = n > 1 ? (int)ceil(log2((double)n)) : 0;
    for (int pe = 0; pe < levels; pe++) {
        size_t p = (size_t)1 << pe;
        for (int ke = pe; ke >= 0; ke--) {
            size_t k = (size_t)1 << ke;
            for (size_t j = k % p; j + k < n; j += 2 * k) {
                size_t lim = k < n - j - k ? k : n - j - k;
                for (size_t i = 0; i < lim; i++) {
                    if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) {
                        cmp_swap(t, rows + (i + j) * m, rows + (i + j + k) * m, m, true);
                    }
                }
            }
        }
    }
}

static void bitonic_merge(alk_trace *t, alk_fvar **rows, size_t n, size_t m, bool ascending) {
    if (n <= 1) {
        return;
    }
    for (size_t i = 0; i < n / 2; i++) {
        cmp_swap(t, rows + i * m, rows + (i + n / 2) * m, m, ascending);
    }
    bitonic_merge(t, rows, n / 2, m, ascending);
    bitonic_merge(t, rows + (n / 2) * m, n - n / 2, m, ascending);
}

static void bitonic(alk_trace *t, alk_fvar **rows, size_t n, size_t m, bool ascending) {
    if (n <= 1) {
        return;
    }
    bitonic(t, rows, n / 2, m, true);
    bitonic(t, rows + (n / 2) * m, n - n / 2, m, false);
    bitonic_merge(t, rows, n, m, ascending);
}

/* sort(a, axis) on an array whose last axis holds (key, payload...) rows. */
static alk_fva *sort_rows(alk_trace *t, const alk_fva *a, size_t axis, alk_sort_kind kind) {
    size_t sort_dim = a->shape[axis];
    alk_fva *r = alk_fva_copy(t, alk_fva_moveaxis(t, a, (int)axis, -2));
    if (r == NULL) {
        return NULL;
    }
    size_t m = r->shape[r->ndim - 1];
    size_t batch = sort_dim * m != 0 ? r->size / (sort_dim * m) : 0;
    size_t levels = sort_dim > 1 ? (size_t)ceil(log2((double)sort_dim)) : 0;
    size_t padded = (size_t)1 << levels;
    size_t pad = padded - sort_dim, pad_low = pad / 2;
    /* Padding constants from the float32 bounds of the whole array (quirk). */
    float lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < r->size; j++) {
        alk_fvar *v = r->vars[j];
        float l = (float)alk_fv_low(v), h = (float)alk_fv_high(v);
        lo = l < lo ? l : lo;
        hi = h > hi ? h : hi;
    }
    alk_fvar *low_pad = alk__fv_const_hw(t, (double)(lo - 1.0f), a->hw);
    alk_fvar *high_pad = alk__fv_const_hw(t, (double)(hi + 1.0f), a->hw);
    alk_fvar **rows = alk__trace_alloc(t, (padded * m != 0 ? padded * m : 1) * sizeof(alk_fvar *));
    if (rows == NULL || low_pad == NULL || high_pad == NULL) {
        return NULL;
    }
    for (size_t bi = 0; bi < batch && !failed(t); bi++) {
        for (size_t q = 0; q < padded; q++) {
            for (size_t c = 0; c < m; c++) {
                alk_fvar *v;
                if (q < pad_low) {
                    v = low_pad;
                } else if (q >= pad_low + sort_dim) {
                    v = high_pad;
                } else {
                    v = r->vars[(bi * sort_dim + q - pad_low) * m + c];
                }
                rows[q * m + c] = v;
            }
        }
        if (kind == ALK_SORT_BITONIC) {
            bitonic(t, rows, padded, m, true);
        } else {
            batcher(t, rows, padded, m);
        }
        for (size_t q = 0; q < sort_dim; q++) {
            for (size_t c = 0; c < m; c++) {
                r->vars[(bi * sort_dim + q) * m + c] = rows[(q + pad_low) * m + c];
            }
        }
    }
    if (failed(t)) {
        return NULL;
    }
    return alk_fva_moveaxis(t, r, -2, (int)axis);
}

alk_fva *alk_fva_sort(alk_trace *t, const alk_fva *a, int axis, alk_sort_kind kind) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (a->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "sort needs an array of variables");
        return NULL;
    }
    size_t ax;
    if (!norm_axis(t, axis, a->ndim, &ax)) {
        return NULL;
    }
    alk_index ix[2] = {ALK_ELLIPSIS, ALK_NEWAXIS};
    alk_fva *r = sort_rows(t, alk_fva_index(t, a, ix, 2), ax, kind);
    alk_index last[2] = {ALK_ELLIPSIS, ALK_AT(0)};
    return r == NULL ? NULL : alk_fva_index(t, r, last, 2);
}

alk_fva *alk_fva_sort_by(alk_trace *t, const alk_fva *keys, const alk_fva *aux,
                         alk_sort_kind kind) {
    if (failed(t) || keys == NULL || aux == NULL) {
        return NULL;
    }
    if (keys->ndim != 1 || keys->numeric || aux->numeric) {
        alk__trace_set_error(t, ALK_EINVAL, "argsort needs 1-D keys and variables");
        return NULL;
    }
    if (aux->ndim == 0 || aux->shape[0] != keys->shape[0] || aux->ndim > 2) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "argsort index: %zu keys but the indexed array has a different "
                             "length",
                             keys->shape[0]);
        return NULL;
    }
    alk_index ix[2] = {ALK_ELLIPSIS, ALK_NEWAXIS};
    const alk_fva *aux2 = aux->ndim == 1 ? alk_fva_index(t, aux, ix, 2) : aux;
    alk_fva *parts[2] = {alk_fva_index(t, keys, ix, 2), (alk_fva *)aux2};
    alk_fva *cat = alk_fva_concatenate(t, parts, 2, -1);
    alk_fva *r = cat == NULL ? NULL : sort_rows(t, cat, 0, kind);
    alk_index payload[2] = {ALK_ELLIPSIS, ALK_SLICE(1, ALK_FV_NONE, ALK_FV_NONE)};
    return r == NULL ? NULL : alk_fva_index(t, r, payload, 2);
}

/* ---------------------------------------------------------------------------------------- */
/* Histogram (§2.9)                                                                         */
/* ---------------------------------------------------------------------------------------- */

alk_fva *alk_fva_histogram(alk_trace *t, const alk_fva *a, const double *edges, size_t n_edges,
                           const alk_fva *weights) {
    if (failed(t) || a == NULL || edges == NULL) {
        return NULL;
    }
    if (n_edges < 2) {
        alk__trace_set_error(t, ALK_EINVAL, "histogram needs at least 2 bin edges");
        return NULL;
    }
    for (size_t j = 0; j + 1 < n_edges; j++) {
        if (!(edges[j + 1] > edges[j])) {
            alk__trace_set_error(t, ALK_EINVAL, "bin edges must be strictly increasing");
            return NULL;
        }
    }
    alk_fva *flat = alk_fva_ravel(t, a);
    if (flat == NULL) {
        return NULL;
    }
    size_t m = flat->size;
    if (weights != NULL && weights->size != m) {
        alk__trace_set_error(t, ALK_EINVAL, "weights must have the same length as a (%zu vs %zu)",
                             weights->size, m);
        return NULL;
    }
    size_t nb = n_edges - 1;
    if (m == 0) {
        alk_fva *z = new_array(t, 1, &nb, false, a->hw);
        for (size_t j = 0; z != NULL && j < nb; j++) {
            z->vars[j] = num_var(t, 0.0, a->hw);
        }
        return z == NULL ? NULL : done(t, z);
    }
    alk_fva *w = weights != NULL ? alk_fva_ravel(t, weights) : alk_fva_scalar(t, 1.0);
    size_t shape_e[2] = {nb, 1};
    size_t shape_last[2] = {1, 1};
    alk_fva *e_low = alk_fva_numbers(t, 2, shape_e, edges);
    alk_fva *e_last = alk_fva_numbers(t, 2, shape_last, edges + nb);
    alk_index row[2] = {ALK_NEWAXIS, ALK_ALL};
    alk_fva *fr = alk_fva_index(t, flat, row, 2);
    int last_axis = -1;
    alk_fva *c1 = alk_fva_reduce(
        t, ALK_REDUCE_SUM,
        alk_fva_binary(t, ALK_MUL, alk_fva_binary(t, ALK_GREATER_EQUAL, fr, e_low), w), &last_axis,
        1, false);
    alk_fva *c2 =
        alk_fva_reduce(t, ALK_REDUCE_SUM,
                       alk_fva_binary(t, ALK_MUL, alk_fva_binary(t, ALK_GREATER, fr, e_last), w),
                       &last_axis, 1, false);
    alk_fva *parts[2] = {c1, c2};
    alk_fva *cum = alk_fva_concatenate(t, parts, 2, 0);
    alk_index head[1] = {ALK_SLICE(ALK_FV_NONE, -1, ALK_FV_NONE)};
    alk_index tail[1] = {ALK_SLICE(1, ALK_FV_NONE, ALK_FV_NONE)};
    return alk_fva_binary(t, ALK_SUB, alk_fva_index(t, cum, head, 1),
                          alk_fva_index(t, cum, tail, 1));
}

/* ---------------------------------------------------------------------------------------- */
/* Naming and tracing                                                                       */
/* ---------------------------------------------------------------------------------------- */

typedef struct named {
    struct named *next;
    const alk_fva *array;
    char name[];
} named;

/* Names live in the arena, in a list hanging off the context. */
int alk_trace_name(alk_trace *t, const char *name, const alk_fva *a) {
    if (failed(t) || name == NULL || a == NULL) {
        return failed(t) ? t->error : alk__trace_set_error(t, ALK_EINVAL, "missing name or array");
    }
    size_t len = strlen(name);
    named *n = alk__trace_alloc(t, sizeof(named) + len + 1);
    if (n == NULL) {
        return t->error;
    }
    memcpy(n->name, name, len + 1);
    n->array = a;
    n->next = t->names;
    t->names = n;
    return ALK_OK;
}

const alk_fva *alk_trace_named(const alk_trace *t, const char *name) {
    for (const named *n = (const named *)t->names; n != NULL; n = n->next) {
        if (strcmp(n->name, name) == 0) {
            return n->array;
        }
    }
    return NULL;
}

int alk_fva_trace(alk_trace *t, alk_fva *const *inputs, size_t n_inputs, alk_fva *const *outputs,
                  size_t n_outputs, bool optimize, alk_program **ret_program) {
    if (failed(t)) {
        return t->error;
    }
    size_t n_in = 0, n_out = 0;
    for (size_t j = 0; j < n_inputs; j++) {
        if (inputs[j] == NULL) {
            return alk__trace_set_error(t, ALK_EINVAL, "input %zu is missing", j);
        }
        n_in += inputs[j]->size;
    }
    for (size_t j = 0; j < n_outputs; j++) {
        if (outputs[j] == NULL) {
            return alk__trace_set_error(t, ALK_EINVAL, "output %zu is missing", j);
        }
        n_out += outputs[j]->size;
    }
    alk_fvar **in = alk__trace_alloc(t, (n_in ? n_in : 1) * sizeof(alk_fvar *));
    alk_fvar **out = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(alk_fvar *));
    if (in == NULL || out == NULL) {
        return t->error;
    }
    size_t p = 0;
    for (size_t j = 0; j < n_inputs; j++) {
        if (inputs[j]->numeric) {
            return alk__trace_set_error(t, ALK_EINVAL, "input %zu is numeric", j);
        }
        alk_fva_ravel_to(inputs[j], in + p);
        p += inputs[j]->size;
    }
    p = 0;
    alk_hwconf hw = n_in > 0 ? in[0]->node->hwconf : t->hwconf;
    for (size_t j = 0; j < n_outputs; j++) {
        for (size_t q = 0; q < outputs[j]->size; q++) {
            elem e = get(outputs[j], q);
            out[p++] = e.v != NULL ? e.v : alk__fv_const_hw(t, e.n, hw);
        }
    }
    if (failed(t)) {
        return t->error;
    }
    return alk_trace_emit(t, in, n_in, out, n_out, optimize, ret_program);
}
