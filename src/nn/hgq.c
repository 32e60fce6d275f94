/*
 * The HGQ2 quantizer (frontends §3.1) and the weights HGQ2 derives with it (§3.3).
 *
 * Two faces of one quantizer. An *activation* quantizer runs on traced values: alk_hgq_mirror is
 * the tracer's mirror_quantizer, a symbolic quantize with the stored k, i, f (broadcast, 1 on
 * homogeneous axes) that a pending table function absorbs. A *weight* quantizer runs in the Keras
 * model itself, in float32, on the raw weights (qkernel, qbias, the fused batch-norm kernels):
 * those values are constants of the traced model, so they are recomputed here operation for
 * operation in `float`. Each float32 operation is written out as the framework performs it
 * (x * 2^f, floor(x + 0.5), the floor-mod of the wrap); the build disables contraction, so none is
 * fused.
 *
 * A numeric operation on doubles followed by one rounding to float32 equals the float32 operation
 * (for + - * / and sqrt, double has more than 2*24+2 bits); the broadcasting additions below use
 * that to reuse the array API's numpy broadcasting.
 */
#include "nn/nn_int.h"

#include "core/alloc.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* ---- Config ------------------------------------------------------------------------------ */

/* A config string and the enumerator it names. */
typedef struct named {
    const char *name;
    int value;
} named;

static const named q_types[] = {{"kbi", ALK_HGQ_KBI}, {"kif", ALK_HGQ_KIF}};
static const named round_modes[] = {{"TRN", ALK_TRN}, {"RND", ALK_RND}, {"RND_CONV", ALK_RND_CONV}};
static const named overflow_modes[] = {
    {"WRAP", ALK_WRAP}, {"SAT", ALK_SAT}, {"SAT_SYM", ALK_SAT_SYM}};

/* HGQ2 lower-cases q_type and upper-cases the modes: names compare without case. */
static bool find_named(const named *table, size_t n, const char *name, int *ret) {
    for (size_t j = 0; name != NULL && j < n; j++) {
        if (strcasecmp(table[j].name, name) == 0) {
            *ret = table[j].value;
            return true;
        }
    }
    return false;
}

int alk_hgq_init(alk_trace *t, alk_hgq_quantizer *q, const char *q_type, const char *round_mode,
                 const char *overflow_mode) {
    memset(q, 0, sizeof(*q));
    if (!alk__nn_ok(t)) {
        return alk_trace_error(t);
    }
    int kind, round, overflow;
    if (!find_named(q_types, 2, q_type, &kind)) {
        return alk_trace_fail(t, ALK_EINVAL,
                              "quantizer type '%s' is not supported: only fixed-point (kbi, kif) "
                              "quantizers can be traced",
                              q_type != NULL ? q_type : "(none)");
    }
    /* An S_ prefix is stochastic rounding, in training only. */
    const char *plain =
        round_mode != NULL && strncasecmp(round_mode, "S_", 2) == 0 ? round_mode + 2 : round_mode;
    if (!find_named(round_modes, 3, plain, &round)) {
        return alk_trace_fail(t, ALK_EINVAL,
                              "round_mode '%s' is not supported (TRN, RND, RND_CONV and their S_ "
                              "forms are)",
                              round_mode != NULL ? round_mode : "(none)");
    }
    if (!find_named(overflow_modes, 3, overflow_mode, &overflow)) {
        return alk_trace_fail(t, ALK_EINVAL,
                              "overflow_mode '%s' is not supported (WRAP, SAT, SAT_SYM are)",
                              overflow_mode != NULL ? overflow_mode : "(none)");
    }
    q->kind = (alk_hgq_kind)kind;
    q->round = (alk_round)round;
    q->overflow = (alk_overflow)overflow;
    return ALK_OK;
}

/* ---- The stored integers ------------------------------------------------------------------- */

/* The stored k, i, f (KBI: f = b - i) rounded half to even in float32, as HGQ2's kif property. */
typedef struct kif_arrays {
    const alk_fva *shape_of; /* the array whose shape the three share */
    float *k, *i, *f;
    size_t n;
} kif_arrays;

static void kif_arrays_free(kif_arrays *a) {
    alk_free(a->k);
    alk_free(a->i);
    alk_free(a->f);
}

static bool same_shape(const alk_fva *a, const alk_fva *b) {
    return alk_fva_ndim(a) == alk_fva_ndim(b) &&
           memcmp(alk_fva_shape(a), alk_fva_shape(b), alk_fva_ndim(a) * sizeof(size_t)) == 0;
}

static bool read_kif(alk_trace *t, const alk_hgq_quantizer *q, kif_arrays *out) {
    memset(out, 0, sizeof(*out));
    const alk_fva *second = q->kind == ALK_HGQ_KBI ? q->b : q->i;
    const alk_fva *third = q->kind == ALK_HGQ_KBI ? q->i : q->f;
    if (q->k == NULL || second == NULL || third == NULL) {
        alk_trace_fail(t, ALK_EINVAL, "quantizer without its %s weights",
                       q->kind == ALK_HGQ_KBI ? "k, b, i" : "k, i, f");
        return false;
    }
    if (!same_shape(q->k, second) || !same_shape(q->k, third)) {
        alk_trace_fail(t, ALK_EINVAL, "the quantizer's k, %s weights differ in shape",
                       q->kind == ALK_HGQ_KBI ? "b, i" : "i, f");
        return false;
    }
    out->shape_of = q->k;
    out->n = alk_fva_size(q->k);
    out->k = alk__nn_read_floats(t, q->k, "quantizer k");
    float *s =
        alk__nn_read_floats(t, second, q->kind == ALK_HGQ_KBI ? "quantizer b" : "quantizer i");
    float *r =
        alk__nn_read_floats(t, third, q->kind == ALK_HGQ_KBI ? "quantizer i" : "quantizer f");
    if (out->k == NULL || s == NULL || r == NULL) {
        alk_free(s);
        alk_free(r);
        kif_arrays_free(out);
        return false;
    }
    for (size_t j = 0; j < out->n; j++) {
        s[j] = rintf(s[j]);
        r[j] = rintf(r[j]);
    }
    if (q->kind == ALK_HGQ_KBI) {
        /* s holds b, r holds i: f = b - i. */
        for (size_t j = 0; j < out->n; j++) {
            s[j] = s[j] - r[j];
        }
        out->i = r;
        out->f = s;
    } else {
        out->i = s;
        out->f = r;
    }
    return true;
}

int alk_hgq_kif(alk_trace *t, const alk_hgq_quantizer *q, alk_fva **ret_k, alk_fva **ret_i,
                alk_fva **ret_f) {
    kif_arrays kif;
    if (!alk__nn_ok(t) || !read_kif(t, q, &kif)) {
        return alk_trace_error(t);
    }
    size_t ndim = alk_fva_ndim(kif.shape_of);
    const size_t *shape = alk_fva_shape(kif.shape_of);
    alk_fva *k = alk__nn_from_floats(t, ndim, shape, kif.k);
    alk_fva *i = alk__nn_from_floats(t, ndim, shape, kif.i);
    alk_fva *f = alk__nn_from_floats(t, ndim, shape, kif.f);
    kif_arrays_free(&kif);
    if (k != NULL && i != NULL && f != NULL) {
        *ret_k = k;
        *ret_i = i;
        *ret_f = f;
    }
    return alk_trace_error(t);
}

/* ---- The symbolic mirror ------------------------------------------------------------------- */

/* The reference casts k, i, f to int8 before quantizing: values outside it are refused here rather
 * than wrapped by the cast. */
static bool check_int8(alk_trace *t, const alk_fva *a, const char *what) {
    for (size_t j = 0; j < alk_fva_size(a); j++) {
        double v = alk_fva_num_at(a, j);
        if (v < -128 || v > 127) {
            alk_trace_fail(t, ALK_EINVAL, "quantizer %s = %g is outside the int8 range", what, v);
            return false;
        }
    }
    return true;
}

alk_fva *alk_hgq_mirror(alk_trace *t, const alk_hgq_quantizer *q, const alk_fva *x) {
    if (!alk__nn_ok(t) || q == NULL || x == NULL) {
        return NULL;
    }
    alk_fva *k = NULL, *i = NULL, *f = NULL;
    if (alk_hgq_kif(t, q, &k, &i, &f) != ALK_OK || !check_int8(t, k, "k") ||
        !check_int8(t, i, "i") || !check_int8(t, f, "f")) {
        return NULL;
    }
    alk_fva *v = (alk_fva *)x;
    if (q->has_scaler) {
        v = alk_fva_binary_scalar(t, ALK_MUL, v, 1.0 / q->scaler);
    }
    v = alk_fva_quantize_kif(t, v, k, i, f, q->overflow, q->round);
    if (q->has_scaler) {
        /* Keras multiplies back; the reference's mirror does not (quirk §3.1). */
        v = alk_fva_binary_scalar(t, ALK_MUL, v, q->scaler);
    }
    if (q->has_affine) {
        v = alk_fva_binary_scalar(t, ALK_ADD, alk_fva_binary_scalar(t, ALK_MUL, v, q->affine[0]),
                                  q->affine[1]);
    }
    return v;
}

/* ---- The Keras-side quantizer in float32 ---------------------------------------------------- */

/* x * 2^f rounded, / 2^f (quantizers' FixedPointQuantizer.round; 2.0**f is exact for integral f).
 */
static float round_at(float x, float f, alk_round mode) {
    float scale = ldexpf(1.0f, (int)f);
    float y = x * scale;
    switch (mode) {
    case ALK_TRN:
        y = floorf(y);
        break;
    case ALK_RND:
        y = floorf(y + 0.5f);
        break;
    case ALK_RND_CONV:
        y = rintf(y);
        break;
    }
    return y / scale;
}

/* Floor-mod as numpy and the Keras back-ends compute it on floats: fmod, then + m when the signs
 * differ (that addition is a rounded float32 operation). */
static float floor_mod(float a, float m) {
    float r = fmodf(a, m);
    if (r != 0 && ((r < 0) != (m < 0))) {
        r = r + m;
    }
    return r;
}

/* The full quantizer Q of §3.1 at inference, zeroing included. */
static float quantize_full(float x, float k, float i, float f, alk_overflow ovf, alk_round rnd) {
    float ii = i > -f ? i : -f;
    if (ovf != ALK_WRAP) {
        float eps = ldexpf(1.0f, (int)-f);
        float top = ldexpf(1.0f, (int)ii);
        float hi = top - eps;
        float lo = ovf == ALK_SAT ? -top * k : -hi * k;
        x = x > hi ? hi : (x < lo ? lo : x);
    }
    x = round_at(x, f, rnd);
    if (ovf == ALK_WRAP) {
        float bits = ii + k;
        float bias = k * ldexpf(1.0f, (int)(bits - 1));
        x = floor_mod(x + bias, ldexpf(1.0f, (int)bits)) - bias;
    }
    return k + i + f > 0 ? x : 0.0f;
}

/* The internal quantizer's branches at inference (HGQ2's FixedPointQuantizerKBI/KIF.call). */
static bool rounds_only(const alk_hgq_quantizer *q) {
    if (q->overflow != ALK_WRAP || !q->trainable || !q->is_weight) {
        return false;
    }
    return q->kind == ALK_HGQ_KIF || q->round == ALK_RND;
}

/* Index of element `flat` of an array of `shape` into a broadcast operand of `bshape` (same
 * number of axes, each 1 or equal), C order. */
static size_t broadcast_index(size_t flat, size_t ndim, const size_t *shape, const size_t *bshape) {
    size_t index = 0, stride = 1;
    for (size_t d = ndim; d-- > 0;) {
        size_t pos = flat % shape[d];
        flat /= shape[d];
        if (bshape[d] != 1) {
            index += pos * stride;
        }
        stride *= bshape[d];
    }
    return index;
}

/* The stored shape right-aligned against w's (numpy broadcasting), or false naming both. */
static bool broadcast_shape(alk_trace *t, const alk_fva *stored, const alk_fva *w, size_t *ret) {
    size_t nd = alk_fva_ndim(w), ns = alk_fva_ndim(stored);
    const size_t *ws = alk_fva_shape(w), *ss = alk_fva_shape(stored);
    if (ns > nd) {
        goto mismatch;
    }
    for (size_t d = 0; d < nd; d++) {
        ret[d] = d < nd - ns ? 1 : ss[d - (nd - ns)];
        if (ret[d] != 1 && ret[d] != ws[d]) {
            goto mismatch;
        }
    }
    return true;
mismatch:
    alk_trace_fail(t, ALK_EINVAL,
                   "quantizer weights of %zu axes do not broadcast to a tensor of "
                   "%zu axes",
                   ns, nd);
    return false;
}

alk_fva *alk_hgq_quantize_weight(alk_trace *t, const alk_hgq_quantizer *q, const alk_fva *w) {
    if (!alk__nn_ok(t) || q == NULL || w == NULL) {
        return NULL;
    }
    kif_arrays kif;
    if (!read_kif(t, q, &kif)) {
        return NULL;
    }
    size_t ndim = alk_fva_ndim(w), n = alk_fva_size(w);
    size_t bshape[ALK_FVA_MAX_DIM];
    float *x = NULL, *out = NULL;
    alk_fva *result = NULL;
    if (!broadcast_shape(t, kif.shape_of, w, bshape)) {
        goto done;
    }
    x = alk__nn_read_floats(t, w, "weight");
    out = x != NULL ? alk__nn_alloc(t, n, sizeof(float)) : NULL;
    if (out == NULL) {
        goto done;
    }
    /* Python floats meeting float32 tensors are rounded to float32 (Keras's weak types). */
    float scaler = (float)q->scaler, a0 = (float)q->affine[0], a1 = (float)q->affine[1];
    bool round_only = rounds_only(q);
    for (size_t j = 0; j < n; j++) {
        size_t b = broadcast_index(j, ndim, alk_fva_shape(w), bshape);
        float v = x[j];
        if (q->has_scaler) {
            v = v / scaler;
        }
        v = round_only ? round_at(v, kif.f[b], q->round)
                       : quantize_full(v, kif.k[b], kif.i[b], kif.f[b], q->overflow, q->round);
        if (q->has_scaler) {
            v = v * scaler;
        }
        if (q->has_affine) {
            v = v * a0 + a1;
        }
        out[j] = v;
    }
    result = alk__nn_from_floats(t, ndim, alk_fva_shape(w), out);
done:
    kif_arrays_free(&kif);
    alk_free(x);
    alk_free(out);
    return result;
}

/* ---- Fused weights (§3.3) -------------------------------------------------------------------- */

/* Every element rounded to float32: closes a double operation on float32 values (see the top). */
static alk_fva *to_float32(alk_trace *t, const alk_fva *a) {
    if (a == NULL) {
        return NULL;
    }
    size_t n = alk_fva_size(a);
    float *v = alk__nn_alloc(t, n, sizeof(float));
    if (v == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < n; j++) {
        v[j] = (float)alk_fva_num_at(a, j);
    }
    alk_fva *r = alk__nn_from_floats(t, alk_fva_ndim(a), alk_fva_shape(a), v);
    alk_free(v);
    return r;
}

/* Quantizes the fused kernel and bias with kq and bq; writes the results only when both exist. */
static int quantize_pair(alk_trace *t, const alk_hgq_quantizer *kq, const alk_hgq_quantizer *bq,
                         const alk_fva *kernel, const alk_fva *bias, alk_fva **ret_kernel,
                         alk_fva **ret_bias) {
    alk_fva *qk = alk_hgq_quantize_weight(t, kq, kernel);
    alk_fva *qb = alk_hgq_quantize_weight(t, bq, bias);
    if (qk != NULL && qb != NULL) {
        *ret_kernel = qk;
        *ret_bias = qb;
    }
    return alk_trace_error(t);
}

/* s = gamma / sqrt(var + eps) in float32 (gamma NULL: 1). */
static float *bn_scaler(alk_trace *t, const alk_fva *gamma, const alk_fva *var, float eps,
                        size_t n) {
    float *g = NULL, *v = NULL, *s = NULL;
    if ((gamma != NULL && alk_fva_size(gamma) != n) || alk_fva_size(var) != n) {
        alk_trace_fail(t, ALK_EINVAL, "gamma/moving_variance have %zu/%zu values, %zu expected",
                       gamma != NULL ? alk_fva_size(gamma) : n, alk_fva_size(var), n);
        return NULL;
    }
    if (gamma != NULL && (g = alk__nn_read_floats(t, gamma, "gamma")) == NULL) {
        goto done;
    }
    v = alk__nn_read_floats(t, var, "moving_variance");
    s = v != NULL ? alk__nn_alloc(t, n, sizeof(float)) : NULL;
    if (s == NULL) {
        goto done;
    }
    alk__nn_fold_f32(n, g, NULL, 0.0f, NULL, v, eps, s, NULL);
done:
    alk_free(g);
    alk_free(v);
    return s;
}

int alk_hgq_fold_dense_bn(alk_trace *t, const alk_hgq_quantizer *kq, const alk_hgq_quantizer *bq,
                          const alk_fva *kernel, const alk_fva *bias, const alk_fva *gamma,
                          const alk_fva *mean, const alk_fva *var, double eps, alk_fva **ret_kernel,
                          alk_fva **ret_bias) {
    if (!alk__nn_ok(t)) {
        return alk_trace_error(t);
    }
    if (kernel == NULL || bias == NULL || mean == NULL || var == NULL) {
        return alk_trace_fail(
            t, ALK_EINVAL, "QBatchNormDense needs kernel, bias, moving_mean and moving_variance");
    }
    if (alk_fva_ndim(kernel) != 2 || alk_fva_size(mean) != alk_fva_shape(kernel)[0] ||
        alk_fva_size(bias) != alk_fva_shape(kernel)[1]) {
        return alk_trace_fail(t, ALK_EINVAL,
                              "QBatchNormDense: kernel (Cin, U), bias (U) and moving_mean (Cin) "
                              "do not fit");
    }
    size_t cin = alk_fva_shape(kernel)[0], units = alk_fva_shape(kernel)[1];
    float *s = bn_scaler(t, gamma, var, (float)eps, cin);
    float *k = alk__nn_read_floats(t, kernel, "kernel");
    float *m = alk__nn_read_floats(t, mean, "moving_mean");
    float *b = alk__nn_read_floats(t, bias, "bias");
    size_t n_kernel = cin * units;
    float *fk = alk__nn_alloc(t, n_kernel, sizeof(float));
    float *fb = alk__nn_alloc(t, units, sizeof(float));
    if (s == NULL || k == NULL || m == NULL || b == NULL || fk == NULL || fb == NULL) {
        goto done;
    }
    for (size_t c = 0; c < cin; c++) {
        for (size_t u = 0; u < units; u++) {
            fk[c * units + u] = s[c] * k[c * units + u];
        }
    }
    /* bias - mean @ kernel: the float32 dot product rounded once from its exact value (the
     * products of floats are exact in double and the sum is accurate far beyond float32). */
    for (size_t u = 0; u < units; u++) {
        double dot = 0;
        for (size_t c = 0; c < cin; c++) {
            dot += (double)m[c] * (double)k[c * units + u];
        }
        float offset = -(float)dot;
        fb[u] = b[u] + offset;
    }
    quantize_pair(t, kq, bq, alk__nn_from_floats(t, 2, alk_fva_shape(kernel), fk),
                  alk__nn_from_floats(t, alk_fva_ndim(bias), alk_fva_shape(bias), fb), ret_kernel,
                  ret_bias);
done:
    alk_free(s);
    alk_free(k);
    alk_free(m);
    alk_free(b);
    alk_free(fk);
    alk_free(fb);
    return alk_trace_error(t);
}

/* For each kernel element, the index of its factor in s (laid out on `norm_axes`, which must be
 * letters of `kernel_axes` with the kernel's sizes): einsum('<kernel>,<norm>-><kernel>'). */
static bool fused_kernel_index(alk_trace *t, const char *kernel_axes, const char *norm_axes,
                               const alk_fva *kernel, const alk_fva *s_shape_of,
                               size_t *ret_stride) {
    size_t nk = strlen(kernel_axes), nn = strlen(norm_axes);
    if (nk != alk_fva_ndim(kernel) || nn != alk_fva_ndim(s_shape_of) || nk > ALK_FVA_MAX_DIM) {
        alk_trace_fail(t, ALK_EINVAL,
                       "fused kernel equation '%s,%s->%s' does not fit a kernel of %zu axes and a "
                       "scale of %zu",
                       kernel_axes, norm_axes, kernel_axes, alk_fva_ndim(kernel),
                       alk_fva_ndim(s_shape_of));
        return false;
    }
    /* The stride of each kernel axis inside s (0 for axes s does not have). */
    size_t stride = 1;
    for (size_t d = 0; d < nk; d++) {
        ret_stride[d] = 0;
    }
    for (size_t a = nn; a-- > 0;) {
        const char *at = strchr(kernel_axes, norm_axes[a]);
        size_t d = at != NULL ? (size_t)(at - kernel_axes) : 0;
        if (at == NULL || alk_fva_shape(kernel)[d] != alk_fva_shape(s_shape_of)[a]) {
            alk_trace_fail(t, ALK_EINVAL,
                           "normalize axis '%c' is not a kernel axis of the same size",
                           norm_axes[a]);
            return false;
        }
        ret_stride[d] = stride;
        stride *= alk_fva_shape(s_shape_of)[a];
    }
    return true;
}

int alk_hgq_fold_einsum_bn(alk_trace *t, const alk_hgq_quantizer *kq, const alk_hgq_quantizer *bq,
                           const char *kernel_axes, const char *norm_axes, const alk_fva *kernel,
                           const alk_fva *bias, const alk_fva *gamma, const alk_fva *mean,
                           const alk_fva *var, size_t cast_ndim, const size_t *cast_shape,
                           alk_fva **ret_kernel, alk_fva **ret_bias) {
    if (!alk__nn_ok(t)) {
        return alk_trace_error(t);
    }
    if (kernel == NULL || bias == NULL || mean == NULL || var == NULL || kernel_axes == NULL ||
        norm_axes == NULL) {
        return alk_trace_fail(t, ALK_EINVAL,
                              "QEinsumDenseBatchnorm needs kernel, bias, "
                              "moving_mean, moving_variance and its axes");
    }
    size_t stride[ALK_FVA_MAX_DIM];
    if (!fused_kernel_index(t, kernel_axes, norm_axes, kernel, mean, stride)) {
        return alk_trace_error(t);
    }
    size_t n = alk_fva_size(mean), nk = alk_fva_size(kernel), ndim = alk_fva_ndim(kernel);
    /* Keras's global epsilon (1e-7), not the layer's: HGQ2's formula. */
    float *s = bn_scaler(t, gamma, var, (float)1e-7, n);
    float *k = alk__nn_read_floats(t, kernel, "kernel");
    float *m = alk__nn_read_floats(t, mean, "moving_mean");
    float *fk = alk__nn_alloc(t, nk, sizeof(float));
    float *offset = alk__nn_alloc(t, n, sizeof(float));
    if (s == NULL || k == NULL || m == NULL || fk == NULL || offset == NULL) {
        goto done;
    }
    for (size_t j = 0; j < nk; j++) {
        size_t flat = j, at = 0;
        for (size_t d = ndim; d-- > 0;) {
            at += (flat % alk_fva_shape(kernel)[d]) * stride[d];
            flat /= alk_fva_shape(kernel)[d];
        }
        fk[j] = k[j] * s[at];
    }
    for (size_t j = 0; j < n; j++) {
        offset[j] = -m[j] * s[j];
    }
    /* bias + reshape(offset, cast_shape), numpy broadcasting, one float32 rounding per sum. */
    const alk_fva *cast_like = cast_shape != NULL ? NULL : bias;
    alk_fva *o = alk__nn_from_floats(t, alk_fva_ndim(mean), alk_fva_shape(mean), offset);
    int64_t target[ALK_FVA_MAX_DIM];
    size_t tdim = cast_like != NULL ? alk_fva_ndim(cast_like) : cast_ndim;
    if (tdim > ALK_FVA_MAX_DIM) {
        alk_trace_fail(t, ALK_EINVAL, "cast shape of %zu axes", tdim);
        goto done;
    }
    for (size_t d = 0; d < tdim; d++) {
        target[d] = (int64_t)(cast_like != NULL ? alk_fva_shape(cast_like)[d] : cast_shape[d]);
    }
    alk_fva *summed =
        to_float32(t, alk_fva_binary(t, ALK_ADD, bias, alk_fva_reshape(t, o, tdim, target)));
    quantize_pair(t, kq, bq, alk__nn_from_floats(t, ndim, alk_fva_shape(kernel), fk), summed,
                  ret_kernel, ret_bias);
done:
    alk_free(s);
    alk_free(k);
    alk_free(m);
    alk_free(fk);
    alk_free(offset);
    return alk_trace_error(t);
}

int alk_hgq_fold_bn(alk_trace *t, const alk_hgq_quantizer *kq, const alk_hgq_quantizer *bq,
                    const alk_fva *gamma, const alk_fva *beta, bool center, const alk_fva *mean,
                    const alk_fva *var, double eps, alk_fva **ret_scale, alk_fva **ret_offset) {
    if (!alk__nn_ok(t)) {
        return alk_trace_error(t);
    }
    if (mean == NULL || var == NULL || (center && beta == NULL)) {
        return alk_trace_fail(t, ALK_EINVAL,
                              "QBatchNormalization needs moving_mean, "
                              "moving_variance and (with center) beta");
    }
    alk_fva *scale = NULL, *offset = NULL;
    /* center=False: HGQ2 uses beta = 1, and so does the model it trained. */
    if (alk__nn_fold(t, gamma, center ? beta : NULL, 1.0f, mean, var, eps, &scale, &offset) !=
        ALK_OK) {
        return alk_trace_error(t);
    }
    return quantize_pair(t, kq, bq, scale, offset, ret_scale, ret_offset);
}
