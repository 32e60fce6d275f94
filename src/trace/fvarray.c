/*
 * Arrays of symbolic variables (spec trace-alir.md §2), part 1 of 7 (see fva_int.h for the map):
 * making arrays, their properties, views and structural operations (index, reshape, transpose,
 * broadcast, concatenate, stack, repeat), naming arrays for the trace dump, and tracing arrays
 * into an ALIR program.
 *
 * Design. Structural operations never touch elements when a view can express the result (index,
 * transpose, moveaxis, broadcast): they only rewrite shape, strides and offset, so they cost one
 * struct in the arena. Operations that must gather (reshape, concatenate, stack, repeat) copy
 * references, not variables, so they create no node and leave the trace's node order alone; the
 * one exception is a number placed into a variable array, which becomes a constant there as it
 * does everywhere an FVArray meets a Python number.
 *
 * Memory: arena only (see fva_int.h). Thread rule: the thread that owns the trace context.
 */
#include "trace/fva_int.h"
#include "core/alloc.h"
#include "trace/emit.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Making arrays                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Checks a shape against the limits of fvarray.h before anything is sized by it: shapes come from
 * model files, and the element count sizes every buffer (overflow included). */
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
alk_fva *alk__fva_new(alk_trace *t, size_t ndim, const size_t *shape, bool numeric, alk_hwconf hw) {
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
    /* C order. An empty axis counts as length 1 so the other strides stay meaningful. */
    ptrdiff_t stride = 1;
    for (size_t d = ndim; d-- > 0;) {
        a->shape[d] = shape[d];
        a->strides[d] = stride;
        stride *= (ptrdiff_t)(shape[d] ? shape[d] : 1);
    }
    /* At least one slot: an empty array still gets a buffer of its own. */
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

/* A view with the same buffer; the caller rewrites its shape, strides and offset. */
static alk_fva *new_view(alk_trace *t, const alk_fva *a) {
    alk_fva *v = alk__trace_alloc(t, sizeof(*v));
    if (v != NULL) {
        *v = *a;
    }
    return v;
}

/* Unquantized inputs (FVariableInput): they learn their bounds from the quantizers applied to
 * them later, which is why they start without an interval. */
alk_fva *alk_fva_input(alk_trace *t, size_t ndim, const size_t *shape) {
    alk_fva *a = alk__fva_new(t, ndim, shape, false, t->hwconf);
    if (a == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size; j++) {
        a->vars[j] = alk_fv_input(t);
    }
    return done(t, a);
}

/* Fresh variables with explicit intervals (one atom each), all with the given latency. */
alk_fva *alk_fva_from_lhs(alk_trace *t, size_t ndim, const size_t *shape, const double *low,
                          const double *high, const double *step, double latency) {
    alk_fva *a = alk__fva_new(t, ndim, shape, false, t->hwconf);
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
    alk_fva *a = alk__fva_new(t, ndim, shape, false, t->hwconf);
    if (a == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size && !failed(t); j++) {
        int kk = k ? k[j] : 0, ii = i ? i[j] : 0, ff = f ? f[j] : 0;
        /* Formats come from model files: bound them so that 2^i and 2^-f stay finite. */
        if (kk < 0 || kk > 1 || ii < -1000 || ii > 1000 || ff < -1000 || ff > 1000) {
            alk__trace_set_error(t, ALK_EINVAL, "element %zu: format (%d, %d, %d) out of range", j,
                                 kk, ii, ff);
            return NULL;
        }
        /* A format without bits holds only zero (the reference's from_kif). */
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
    alk_fva *a = alk__fva_new(t, ndim, shape, false, t->hwconf);
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
    /* The array takes its elements' hardware configuration, not the context's default. */
    if (a->size > 0) {
        a->hw = vars[0]->node->hwconf;
    }
    return a;
}

alk_fva *alk_fva_numbers(alk_trace *t, size_t ndim, const size_t *shape, const double *values) {
    alk_fva *a = alk__fva_new(t, ndim, shape, true, t->hwconf);
    if (a == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size; j++) {
        /* A NaN or infinity would poison every interval it meets: refuse it where the culprit
         * is still known. */
        if (!isfinite(values[j])) {
            alk__trace_set_error(t, ALK_EINVAL, "element %zu (%g) is not finite", j, values[j]);
            return NULL;
        }
        a->nums[j] = values[j];
    }
    return a;
}

/* A 0-d numeric array: how a Python number enters array operations (it broadcasts). */
alk_fva *alk_fva_scalar(alk_trace *t, double value) {
    return alk_fva_numbers(t, 0, NULL, &value);
}

alk_fva *alk_fva_to_vars(alk_trace *t, const alk_fva *a) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (!a->numeric) {
        return new_view(t, a);
    }
    alk_fva *r = alk__fva_new(t, a->ndim, a->shape, false, a->hw);
    if (r == NULL) {
        return NULL;
    }
    /* put() makes each number a constant the FVArray constructor's way (num_var). */
    for (size_t j = 0; j < a->size; j++) {
        put(t, r, j, get(a, j));
    }
    return done(t, r);
}

/* Accessors read through the view (offset and strides), so they work on any array; the element
 * accessors answer NULL or 0 out of range rather than fail, as they take no context. */
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
    return flat < a->size && !a->numeric && a->pend == NULL ? get(a, flat).v : NULL;
}
double alk_fva_num_at(const alk_fva *a, size_t flat) {
    return flat < a->size && a->numeric ? get(a, flat).n : 0.0;
}

int alk_fva_ravel_to(const alk_fva *a, alk_fvar **out) {
    if (a->numeric || a->pend != NULL) {
        return ALK_EINVAL;
    }
    for (size_t j = 0; j < a->size; j++) {
        out[j] = get(a, j).v;
    }
    return ALK_OK;
}

/* A contiguous copy (new buffer, same references): copying never creates nodes, so any
 * operation may normalise its operand this way without changing the trace. */
alk_fva *alk_fva_copy(alk_trace *t, const alk_fva *a) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    alk_fva *r = alk__fva_new_like(t, a->ndim, a->shape, a);
    if (r == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < a->size; j++) {
        put(t, r, j, get(a, j));
    }
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Structure                                                                                */
/* ---------------------------------------------------------------------------------------- */

bool alk__fva_norm_axis(alk_trace *t, int axis, size_t ndim, size_t *ret) {
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
    /* Count the axes that ints and slices consume first: the ellipsis stands for the rest. */
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
        /* The ellipsis copies the axes no int or slice consumes, unchanged. */
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
        /* A new axis has length 1 and stride 0, and consumes no source axis. */
        if (ix.kind == ALK_IDX_NEWAXIS) {
            r.shape[r.ndim] = 1;
            r.strides[r.ndim] = 0;
            r.ndim++;
            continue;
        }
        int64_t n = (int64_t)a->shape[d];
        /* An int removes its axis: it only moves the offset. */
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
        /* Bounds are clamped to [lower, upper], which depend on the step's sign: a negative
         * step walks from n - 1 down to just before 0. */
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
        /* An empty slice may start at n: moving the offset there would point past the buffer. */
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
    /* One -1 may stand for the dimension the others leave (numpy's rule); any other negative
     * size, or a second -1, is an error. */
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
    /* Copy first (references only): whatever views `a` went through, the copy is contiguous,
     * so the new shape needs only plain C-order strides. */
    alk_fva *src = alk_fva_copy(t, a);
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

/* ravel is reshape(-1): a contiguous copy of the references, in C order. */
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
    /* Without `axes`, the axes are reversed (numpy's default). */
    bool seen[ALK_FVA_MAX_DIM] = {false};
    for (size_t d = 0; d < a->ndim; d++) {
        size_t src = a->ndim - 1 - d;
        if (axes != NULL && !alk__fva_norm_axis(t, axes[d], a->ndim, &src)) {
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
    if (!alk__fva_norm_axis(t, source, a->ndim, &s) ||
        !alk__fva_norm_axis(t, destination, a->ndim, &d)) {
        return NULL;
    }
    /* numpy's definition: take the source axis out of the order, insert it at the destination. */
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

/* numpy's rule: align the shapes at their last axis; on each axis the sizes must agree or be 1. */
bool alk__fva_broadcast_shape(alk_trace *t, const alk_fva *const *arrays, size_t n, size_t *ndim,
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
alk_fva *alk__fva_broadcast_view(alk_trace *t, const alk_fva *a, size_t ndim, const size_t *shape) {
    alk_fva *r = new_view(t, a);
    if (r == NULL) {
        return NULL;
    }
    /* Axes that `a` lacks are prepended with stride 0; its own axes keep their stride, except a
     * stretched axis of length 1, which also reads its one element again and again. */
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
    /* The target shape is the caller's and a view allocates no buffer that would bound it. */
    size_t size;
    if (!check_shape(t, ndim, shape, &size)) {
        return NULL;
    }
    if (ndim < a->ndim) {
        alk__trace_set_error(t, ALK_EINVAL, "cannot broadcast %u dimensions to %zu", a->ndim, ndim);
        return NULL;
    }
    return alk__fva_broadcast_view(t, a, ndim, shape);
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
    if (!alk__fva_norm_axis(t, axis, first->ndim, &ax)) {
        return NULL;
    }
    size_t shape[ALK_FVA_MAX_DIM];
    memcpy(shape, first->shape, first->ndim * sizeof(size_t));
    shape[ax] = 0;
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
    }
    /* The result holds numbers only when every part does. Numbers carry no hardware
     * configuration: the first variable array decides, and gives the result its kind. */
    const alk_fva *like = first;
    for (size_t j = 0; j < n; j++) {
        if (!arrays[j]->numeric) {
            like = arrays[j];
            break;
        }
    }
    /* Pending arrays join only pending arrays: a plain element would otherwise be tabulated. */
    for (size_t j = 0; j < n; j++) {
        if ((arrays[j]->pend != NULL) != (like->pend != NULL)) {
            alk__fva_plain(t, like->pend != NULL ? like : arrays[j],
                           "it is concatenated with a plain array");
            return NULL;
        }
    }
    alk_fva *r = alk__fva_new_like(t, first->ndim, shape, like);
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
    /* numpy's definition: give every array a new axis at `axis`, then concatenate along it. */
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
        if (!alk__fva_norm_axis(t, axis, arrays[j]->ndim + 1, &ax)) {
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
    if (!alk__fva_norm_axis(t, axis, arrays[0]->ndim + 1, &ax)) {
        return NULL;
    }
    return alk_fva_concatenate(t, expanded, n, (int)ax);
}

alk_fva *alk_fva_repeat(alk_trace *t, const alk_fva *a, size_t repeats, int axis) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    size_t ax;
    if (!alk__fva_norm_axis(t, axis, a->ndim, &ax)) {
        return NULL;
    }
    size_t shape[ALK_FVA_MAX_DIM];
    memcpy(shape, a->shape, a->ndim * sizeof(size_t));
    if (!alk_mul_size(shape[ax], repeats, &shape[ax])) {
        alk__trace_set_error(t, ALK_ELIMIT, "repeat overflows");
        return NULL;
    }
    alk_fva *r = alk__fva_new_like(t, a->ndim, shape, a);
    if (r == NULL) {
        return NULL;
    }
    /* Each element repeated in place (np.repeat, not np.tile): output index / repeats on `axis`. */
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
/* Naming and tracing                                                                       */
/* ---------------------------------------------------------------------------------------- */

typedef struct named {
    struct named *next;
    const alk_fva *array;
    char name[];
} named;

/* Names live in the arena, in a list hanging off the context: a trace names a few arrays (one per
 * dumped layer) and looks each up once, so a list is enough. A later name shadows an earlier. */
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
        if (!alk__fva_plain(t, inputs[j], "it is traced")) {
            return t->error;
        }
        n_in += inputs[j]->size;
    }
    for (size_t j = 0; j < n_outputs; j++) {
        if (outputs[j] == NULL) {
            return alk__trace_set_error(t, ALK_EINVAL, "output %zu is missing", j);
        }
        if (!alk__fva_plain(t, outputs[j], "it is traced as an output")) {
            return t->error;
        }
        n_out += outputs[j]->size;
    }
    alk_fvar **in = alk__trace_alloc(t, (n_in ? n_in : 1) * sizeof(alk_fvar *));
    alk_fvar **out = alk__trace_alloc(t, (n_out ? n_out : 1) * sizeof(alk_fvar *));
    if (in == NULL || out == NULL) {
        return t->error;
    }
    /* The program's input and output slots are the arrays' elements in C order, array after
     * array: the order the caller's input and output vectors are read and written in. */
    size_t p = 0;
    for (size_t j = 0; j < n_inputs; j++) {
        /* A program input is a slot filled at run time: a number cannot be one. */
        if (inputs[j]->numeric) {
            return alk__trace_set_error(t, ALK_EINVAL, "input %zu is numeric", j);
        }
        alk_fva_ravel_to(inputs[j], in + p);
        p += inputs[j]->size;
    }
    p = 0;
    /* A number among the outputs becomes a constant of the inputs' hardware configuration. */
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
