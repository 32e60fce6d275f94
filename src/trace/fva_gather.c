/*
 * Arrays of symbolic variables, part 7 of 7 (see fva_int.h): gathers. np.pad, np.take, np.tile and
 * the image patch helpers (spec trace-alir.md §2.11, §2.12; frontends §2.2).
 *
 * Design. Every operation here is "output element j is input element src(j), or the fill value":
 * one gather loop does the copying, and each operation only supplies its index map. None creates
 * hardware: references are copied (with their pending functions, so a pending array stays
 * pending), and a fill value becomes a constant the way the reference's FVArray constructor makes
 * one from a number placed into an object array: one new constant variable with factor 1 per
 * padded element, created in C order (put(), via num_var() in fva_int.h).
 *
 * np.pad is separable: padding axis after axis only copies along that axis, so an output element
 * reads a[m_0(i_0), m_1(i_1), ...] with one 1-D map per axis. The maps of the mirrored modes are
 * computed by replaying numpy's own iterative algorithm on an index vector, which reproduces its
 * results for pads wider than the axis (reflections of reflections, in rounds).
 *
 * Memory: arena only. Thread rule: the thread that owns the trace context.
 */
#include "trace/fva_int.h"
#include "core/alloc.h"

#include <string.h>

/* Sizes that come from model configs (kernel sizes, strides, pads) are bounded so that the index
 * arithmetic below stays far from int64 overflow. */
#define GATHER_MAX_PARAM ((int64_t)1 << 24)

/* The C-order flat index into the gathered array of the output element at `idx`, or -1 for the
 * fill value. */
typedef int64_t (*source_fn)(const void *ctx, const size_t *idx);

static alk_fva *gather(alk_trace *t, const alk_fva *a, size_t ndim, const size_t *shape,
                       source_fn src, const void *ctx, double fill) {
    if (!isfinite(fill)) {
        alk__trace_set_error(t, ALK_EINVAL, "pad value %g is not finite", fill);
        return NULL;
    }
    alk_fva *r = alk__fva_new_like(t, ndim, shape, a);
    if (r == NULL) {
        return NULL;
    }
    size_t idx[ALK_FVA_MAX_DIM] = {0};
    for (size_t j = 0; j < r->size && !failed(t); j++) {
        int64_t s = src(ctx, idx);
        put(t, r, j, s < 0 ? (elem){NULL, fill, NULL} : get(a, (size_t)s));
        /* The next output index in C order. */
        for (size_t d = ndim; d-- > 0;) {
            if (++idx[d] < shape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
    return done(t, r);
}

/* C-order strides of a shape, in elements. */
static void c_strides(size_t ndim, const size_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (size_t d = ndim; d-- > 0;) {
        strides[d] = s;
        s *= (int64_t)shape[d];
    }
}

/* ---------------------------------------------------------------------------------------- */
/* np.pad                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* One round of numpy's _set_reflect_both on the index vector m (length n_out) whose positions
 * [left, n_out - right) are filled: mirror at most the filled length into each side. */
static void reflect_round(int64_t *m, int64_t n_out, int64_t *left, int64_t *right,
                          bool include_edge) {
    int64_t edge = include_edge ? 1 : 0;
    int64_t old_len = n_out - *right - *left - (include_edge ? 0 : 1);
    if (*left > 0) {
        int64_t chunk = old_len < *left ? old_len : *left;
        int64_t from = *left - edge + chunk; /* read leftwards from here */
        for (int64_t q = 0; q < chunk; q++) {
            m[*left - chunk + q] = m[from - q];
        }
        *left -= chunk;
    }
    if (*right > 0) {
        int64_t chunk = old_len < *right ? old_len : *right;
        int64_t from = n_out - *right + edge - 2;
        for (int64_t q = 0; q < chunk; q++) {
            m[n_out - *right + q] = m[from - q];
        }
        *right -= chunk;
    }
}

/* One round of numpy's _set_wrap_both (numpy >= 1.25: the period is a multiple of the axis
 * length, so the result is periodic; older numpy copied partial periods for pads wider than
 * twice the axis). */
static void wrap_round(int64_t *m, int64_t n_out, int64_t *left, int64_t *right, int64_t n) {
    int64_t period = (n_out - *right - *left) / n * n;
    int64_t new_left = 0, new_right = 0;
    if (*left > 0) {
        int64_t chunk = period < *left ? period : *left;
        int64_t from = *left + period - chunk;
        int64_t to = *left > period ? *left - period : 0;
        for (int64_t q = 0; q < chunk; q++) {
            m[to + q] = m[from + q];
        }
        new_left = *left > period ? *left - period : 0;
    }
    if (*right > 0) {
        int64_t chunk = period < *right ? period : *right;
        int64_t from = n_out - *right - period;
        for (int64_t q = 0; q < chunk; q++) {
            m[n_out - *right + q] = m[from + q];
        }
        new_right = *right > period ? *right - period : 0;
    }
    *left = new_left;
    *right = new_right;
}

/* The 1-D map of one axis: m[j] is the source position of output position j, or -1. */
static bool pad_map(alk_trace *t, size_t axis, int64_t n, int64_t left, int64_t right,
                    alk_pad_mode mode, int64_t *m) {
    int64_t n_out = left + n + right;
    for (int64_t j = 0; j < n_out; j++) {
        m[j] = j >= left && j < left + n ? j - left : -1;
    }
    if (mode == ALK_PAD_CONSTANT || (left == 0 && right == 0)) {
        return true;
    }
    if (n == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "pad: can't extend empty axis %zu with this mode",
                             axis);
        return false;
    }
    /* numpy pads a length-1 axis with its edge in the mirrored modes too (legacy behaviour). */
    if (mode == ALK_PAD_EDGE || (n == 1 && mode != ALK_PAD_WRAP)) {
        for (int64_t j = 0; j < n_out; j++) {
            m[j] = j < left ? 0 : j >= left + n ? n - 1 : j - left;
        }
        return true;
    }
    while (left > 0 || right > 0) {
        if (mode == ALK_PAD_WRAP) {
            wrap_round(m, n_out, &left, &right, n);
        } else {
            reflect_round(m, n_out, &left, &right, mode == ALK_PAD_SYMMETRIC);
        }
    }
    return true;
}

typedef struct pad_ctx {
    size_t ndim;
    const int64_t *maps[ALK_FVA_MAX_DIM];
    int64_t strides[ALK_FVA_MAX_DIM];
} pad_ctx;

static int64_t pad_source(const void *ctx, const size_t *idx) {
    const pad_ctx *p = ctx;
    int64_t flat = 0;
    for (size_t d = 0; d < p->ndim; d++) {
        int64_t s = p->maps[d][idx[d]];
        if (s < 0) {
            return -1;
        }
        flat += s * p->strides[d];
    }
    return flat;
}

alk_fva *alk_fva_pad(alk_trace *t, const alk_fva *a, const int64_t (*pads)[2], alk_pad_mode mode,
                     double value) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    if (pads == NULL && a->ndim > 0) {
        alk__trace_set_error(t, ALK_EINVAL, "pad: pad widths are missing");
        return NULL;
    }
    if ((unsigned)mode > ALK_PAD_WRAP) {
        alk__trace_set_error(t, ALK_EINVAL, "pad: unknown mode %d", (int)mode);
        return NULL;
    }
    pad_ctx ctx = {a->ndim, {NULL}, {0}};
    size_t shape[ALK_FVA_MAX_DIM];
    c_strides(a->ndim, a->shape, ctx.strides);
    for (size_t d = 0; d < a->ndim; d++) {
        int64_t l = pads[d][0], r = pads[d][1];
        if (l < 0 || r < 0 || l > GATHER_MAX_PARAM || r > GATHER_MAX_PARAM) {
            alk__trace_set_error(t, ALK_EINVAL, "pad: widths (%lld, %lld) of axis %zu out of range",
                                 (long long)l, (long long)r, d);
            return NULL;
        }
        shape[d] = a->shape[d] + (size_t)l + (size_t)r;
        int64_t *m = alk__trace_alloc(t, (shape[d] ? shape[d] : 1) * sizeof(int64_t));
        if (m == NULL || !pad_map(t, d, (int64_t)a->shape[d], l, r, mode, m)) {
            return NULL;
        }
        ctx.maps[d] = m;
    }
    return gather(t, a, a->ndim, shape, pad_source, &ctx, value);
}

/* ---------------------------------------------------------------------------------------- */
/* np.take, np.tile                                                                         */
/* ---------------------------------------------------------------------------------------- */

typedef struct take_ctx {
    size_t ndim, axis;
    const int64_t *index;
    int64_t strides[ALK_FVA_MAX_DIM];
} take_ctx;

static int64_t take_source(const void *ctx, const size_t *idx) {
    const take_ctx *p = ctx;
    int64_t flat = 0;
    for (size_t d = 0; d < p->ndim; d++) {
        flat += (d == p->axis ? p->index[idx[d]] : (int64_t)idx[d]) * p->strides[d];
    }
    return flat;
}

alk_fva *alk_fva_take(alk_trace *t, const alk_fva *a, const int64_t *indices, size_t n, int axis) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    take_ctx ctx = {a->ndim, 0, NULL, {0}};
    if (!alk__fva_norm_axis(t, axis, a->ndim, &ctx.axis)) {
        return NULL;
    }
    int64_t len = (int64_t)a->shape[ctx.axis];
    if (n > ALK_FVA_MAX_ELEMENTS) {
        alk__trace_set_error(t, ALK_ELIMIT, "take: %zu indices", n);
        return NULL;
    }
    int64_t *index = alk__trace_alloc(t, (n ? n : 1) * sizeof(int64_t));
    if (index == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < n; j++) {
        int64_t ix = indices[j] < 0 ? indices[j] + len : indices[j];
        if (ix < 0 || ix >= len) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "take: index %lld is out of bounds for axis %zu with size %lld",
                                 (long long)indices[j], ctx.axis, (long long)len);
            return NULL;
        }
        index[j] = ix;
    }
    ctx.index = index;
    c_strides(a->ndim, a->shape, ctx.strides);
    size_t shape[ALK_FVA_MAX_DIM];
    memcpy(shape, a->shape, a->ndim * sizeof(size_t));
    shape[ctx.axis] = n;
    return gather(t, a, a->ndim, shape, take_source, &ctx, 0.0);
}

typedef struct tile_ctx {
    size_t ndim;
    size_t period[ALK_FVA_MAX_DIM]; /* the source's length on each output axis (1 if new) */
    int64_t strides[ALK_FVA_MAX_DIM];
} tile_ctx;

static int64_t tile_source(const void *ctx, const size_t *idx) {
    const tile_ctx *p = ctx;
    int64_t flat = 0;
    for (size_t d = 0; d < p->ndim; d++) {
        flat += (int64_t)(idx[d] % p->period[d]) * p->strides[d];
    }
    return flat;
}

alk_fva *alk_fva_tile(alk_trace *t, const alk_fva *a, size_t n_reps, const size_t *reps) {
    if (failed(t) || a == NULL) {
        return NULL;
    }
    size_t d = a->ndim > n_reps ? a->ndim : n_reps;
    if (d > ALK_FVA_MAX_DIM || (n_reps > 0 && reps == NULL)) {
        alk__trace_set_error(t, ALK_EINVAL, "tile: %zu repetitions for %u dimensions", n_reps,
                             a->ndim);
        return NULL;
    }
    /* np.tile promotes both to d dimensions with leading 1s. */
    tile_ctx ctx = {d, {0}, {0}};
    size_t src_shape[ALK_FVA_MAX_DIM], shape[ALK_FVA_MAX_DIM];
    for (size_t q = 0; q < d; q++) {
        size_t lead_a = d - a->ndim, lead_r = d - n_reps;
        src_shape[q] = q < lead_a ? 1 : a->shape[q - lead_a];
        size_t rep = q < lead_r ? 1 : reps[q - lead_r];
        if (!alk_mul_size(src_shape[q], rep, &shape[q])) {
            alk__trace_set_error(t, ALK_ELIMIT, "tile: axis %zu overflows", q);
            return NULL;
        }
        ctx.period[q] = src_shape[q] ? src_shape[q] : 1;
    }
    c_strides(d, src_shape, ctx.strides);
    return gather(t, a, d, shape, tile_source, &ctx, 0.0);
}

/* ---------------------------------------------------------------------------------------- */
/* Image patches                                                                            */
/* ---------------------------------------------------------------------------------------- */

void alk_patch_same_pads(alk_patch_spec *spec, const size_t *in_sizes) {
    for (size_t d = 0; d < spec->rank && d < ALK_PATCH_MAX_RANK; d++) {
        /* A zero stride is refused by the patch functions; leave its pads alone here. */
        if (spec->strides[d] == 0) {
            continue;
        }
        int64_t n = (int64_t)in_sizes[d], s = (int64_t)spec->strides[d];
        int64_t k = (int64_t)spec->size[d], dil = (int64_t)spec->dilation[d];
        int64_t out = (n + s - 1) / s;
        int64_t total = (out - 1) * s + (k - 1) * dil + 1 - n;
        total = total > 0 ? total : 0;
        spec->pads[d][0] = total / 2;
        spec->pads[d][1] = total - total / 2;
    }
}

typedef struct patch_ctx {
    size_t rank, channels;
    bool transposed;
    int64_t n[ALK_PATCH_MAX_RANK], k[ALK_PATCH_MAX_RANK], s[ALK_PATCH_MAX_RANK];
    int64_t dil[ALK_PATCH_MAX_RANK], before[ALK_PATCH_MAX_RANK];
} patch_ctx;

/* Output (b, o_1..o_rank, tap * C + c) reads image (b, p_1..p_rank, c). */
static int64_t patch_source(const void *ctx, const size_t *idx) {
    const patch_ctx *p = ctx;
    size_t last = idx[p->rank + 1];
    int64_t tap = (int64_t)(last / p->channels), c = (int64_t)(last % p->channels);
    int64_t taps[ALK_PATCH_MAX_RANK];
    for (size_t d = p->rank; d-- > 0;) {
        taps[d] = tap % p->k[d];
        tap /= p->k[d];
    }
    int64_t flat = (int64_t)idx[0];
    for (size_t d = 0; d < p->rank; d++) {
        int64_t o = (int64_t)idx[1 + d], pos;
        if (p->transposed) {
            int64_t numer = o + p->before[d] - taps[d] * p->dil[d];
            if (numer % p->s[d] != 0) {
                return -1;
            }
            pos = numer / p->s[d];
        } else {
            pos = o * p->s[d] + taps[d] * p->dil[d] - p->before[d];
        }
        if (pos < 0 || pos >= p->n[d]) {
            return -1;
        }
        flat = flat * p->n[d] + pos;
    }
    return flat * (int64_t)p->channels + c;
}

static alk_fva *patches(alk_trace *t, const alk_fva *images, const alk_patch_spec *spec,
                        double pad_value, bool transposed) {
    if (failed(t) || images == NULL || spec == NULL) {
        return NULL;
    }
    const char *what = transposed ? "transposed patches" : "patches";
    size_t rank = spec->rank;
    if (rank < 1 || rank > ALK_PATCH_MAX_RANK || images->ndim != rank + 2) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "%s: %zu spatial axes for an array of %u dimensions (need 1 to %d "
                             "and (batch, *spatial, channels))",
                             what, rank, images->ndim, ALK_PATCH_MAX_RANK);
        return NULL;
    }
    patch_ctx ctx = {rank, images->shape[rank + 1], transposed, {0}, {0}, {0}, {0}, {0}};
    size_t shape[ALK_PATCH_MAX_RANK + 2];
    shape[0] = images->shape[0];
    size_t k_vol = 1;
    for (size_t d = 0; d < rank; d++) {
        int64_t n = (int64_t)images->shape[1 + d];
        int64_t k = (int64_t)spec->size[d], s = (int64_t)spec->strides[d];
        int64_t dil = (int64_t)spec->dilation[d], b = spec->pads[d][0], a = spec->pads[d][1];
        int64_t op = (int64_t)spec->output_padding[d];
        if (k < 1 || s < 1 || dil < 1 || k > GATHER_MAX_PARAM || s > GATHER_MAX_PARAM ||
            dil > GATHER_MAX_PARAM || b < 0 || a < 0 || b > GATHER_MAX_PARAM ||
            a > GATHER_MAX_PARAM || op < 0 || op > GATHER_MAX_PARAM) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "%s: axis %zu: size %lld, stride %lld, dilation %lld, pads "
                                 "(%lld, %lld), output padding %lld out of range",
                                 what, d, (long long)k, (long long)s, (long long)dil, (long long)b,
                                 (long long)a, (long long)op);
            return NULL;
        }
        int64_t out = transposed ? (n - 1) * s - b - a + dil * (k - 1) + op + 1
                                 : py_floordiv(n + b + a - (k - 1) * dil - 1, s) + 1;
        if (out < 1) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "%s: axis %zu of size %lld gives no output (kernel %lld, "
                                 "dilation %lld, pads (%lld, %lld))",
                                 what, d, (long long)n, (long long)k, (long long)dil, (long long)b,
                                 (long long)a);
            return NULL;
        }
        shape[1 + d] = (size_t)out;
        k_vol *= (size_t)k; /* at most 2^72 over 3 axes: checked below */
        if (k_vol > ALK_FVA_MAX_ELEMENTS) {
            alk__trace_set_error(t, ALK_ELIMIT, "%s: kernel of more than %zu taps", what,
                                 (size_t)ALK_FVA_MAX_ELEMENTS);
            return NULL;
        }
        ctx.n[d] = n;
        ctx.k[d] = k;
        ctx.s[d] = s;
        ctx.dil[d] = dil;
        ctx.before[d] = b;
    }
    if (!alk_mul_size(k_vol, ctx.channels, &shape[rank + 1])) {
        alk__trace_set_error(t, ALK_ELIMIT, "%s: too many taps", what);
        return NULL;
    }
    /* An empty channel axis has no taps to decode; the output is empty as well. */
    if (ctx.channels == 0) {
        ctx.channels = 1;
    }
    return gather(t, images, rank + 2, shape, patch_source, &ctx, pad_value);
}

alk_fva *alk_fva_patches(alk_trace *t, const alk_fva *images, const alk_patch_spec *spec,
                         double pad_value) {
    return patches(t, images, spec, pad_value, false);
}

alk_fva *alk_fva_patches_transposed(alk_trace *t, const alk_fva *images, const alk_patch_spec *spec,
                                    double pad_value) {
    return patches(t, images, spec, pad_value, true);
}
