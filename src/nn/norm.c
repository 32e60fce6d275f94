/*
 * Normalisation layers (frontends §2.2 BatchNormalization and Normalization, §4.3 BatchNorm*d) and
 * the numeric helpers of src/nn.
 *
 * Design. The frameworks fold a batch norm into one scale and one offset per channel in float32
 * (Keras and torch compute in the layer's float32; the reference copies them in numpy float32).
 * The fold is therefore done here in `float`, one IEEE operation per step in the frameworks'
 * order, and only the results widen to the double constants the tracer multiplies and adds.
 * Weights arrive widened from float32, so reading them back as floats is exact; a value that is
 * not a float32 is refused rather than rounded silently.
 */
#include "nn/nn_int.h"

#include "core/alloc.h"

#include <math.h>
#include <string.h>

/* ---- Numeric helpers --------------------------------------------------------------------------
 */

bool alk__nn_require_numeric(alk_trace *t, const alk_fva *a, const char *what) {
    if (!alk_fva_is_numeric(a)) {
        alk_trace_fail(t, ALK_EINVAL, "%s must be a numeric array (weights), not traced values",
                       what);
        return false;
    }
    return true;
}

void *alk__nn_alloc(alk_trace *t, size_t n, size_t size) {
    void *p = alk_calloc(n ? n : 1, size);
    if (p == NULL) {
        alk_trace_fail(t, ALK_ENOMEM, "out of memory in a layer kernel");
    }
    return p;
}

float *alk__nn_read_floats(alk_trace *t, const alk_fva *a, const char *what) {
    if (!alk__nn_require_numeric(t, a, what)) {
        return NULL;
    }
    size_t n = alk_fva_size(a);
    float *values = alk__nn_alloc(t, n, sizeof(float));
    for (size_t j = 0; values != NULL && j < n; j++) {
        double v = alk_fva_num_at(a, j);
        values[j] = (float)v;
        if ((double)values[j] != v) {
            alk_trace_fail(t, ALK_EINVAL,
                           "%s element %zu (%.17g) is not a float32 value: this layer is "
                           "computed in float32 as the framework does",
                           what, j, v);
            alk_free(values);
            return NULL;
        }
    }
    return values;
}

alk_fva *alk__nn_from_floats(alk_trace *t, size_t ndim, const size_t *shape, const float *values) {
    size_t n = 1;
    for (size_t d = 0; d < ndim; d++) {
        n *= shape[d];
    }
    double *wide = alk__nn_alloc(t, n, sizeof(double));
    if (wide == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < n; j++) {
        wide[j] = (double)values[j];
    }
    alk_fva *a = alk_fva_numbers(t, ndim, shape, wide);
    alk_free(wide);
    return a;
}

/* ---- Placing per-channel constants ------------------------------------------------------------
 */

alk_fva *alk_nn_on_axes(alk_trace *t, const alk_fva *vector, size_t ndim, const size_t *shape,
                        const int *axes, size_t n_axes) {
    if (!alk__nn_ok(t) || vector == NULL) {
        return NULL;
    }
    if (ndim > ALK_FVA_MAX_DIM) {
        alk_trace_fail(t, ALK_EINVAL, "%zu axes: at most %d are supported", ndim, ALK_FVA_MAX_DIM);
        return NULL;
    }
    int64_t target[ALK_FVA_MAX_DIM];
    size_t expected = 1;
    for (size_t d = 0; d < ndim; d++) {
        target[d] = 1;
    }
    for (size_t a = 0; a < n_axes; a++) {
        int axis = axes[a] < 0 ? axes[a] + (int)ndim : axes[a];
        if (axis < 0 || axis >= (int)ndim) {
            alk_trace_fail(t, ALK_EINVAL, "axis %d out of range for %zu axes", axes[a], ndim);
            return NULL;
        }
        target[axis] = (int64_t)shape[axis];
    }
    for (size_t d = 0; d < ndim; d++) {
        expected *= (size_t)target[d];
    }
    if (alk_fva_size(vector) != expected) {
        alk_trace_fail(t, ALK_EINVAL,
                       "a vector of %zu values does not match the %zu positions of its axes",
                       alk_fva_size(vector), expected);
        return NULL;
    }
    return alk_fva_reshape(t, vector, ndim, target);
}

alk_fva *alk_nn_scale_offset(alk_trace *t, const alk_fva *x, const alk_fva *scale,
                             const alk_fva *offset, const int *axes, size_t n_axes) {
    if (!alk__nn_ok(t) || x == NULL || scale == NULL || offset == NULL) {
        return NULL;
    }
    size_t ndim = alk_fva_ndim(x);
    const size_t *shape = alk_fva_shape(x);
    alk_fva *s = alk_nn_on_axes(t, scale, ndim, shape, axes, n_axes);
    alk_fva *o = alk_nn_on_axes(t, offset, ndim, shape, axes, n_axes);
    return alk_fva_binary(t, ALK_ADD, alk_fva_binary(t, ALK_MUL, x, s), o);
}

/* ---- Folding in float32 -----------------------------------------------------------------------
 */

/* The float32 vectors of a fold, each NULL when not given; freed together. */
typedef struct fold_inputs {
    size_t n;
    float *gamma, *beta, *mean, *var;
} fold_inputs;

static void fold_inputs_free(fold_inputs *in) {
    alk_free(in->gamma);
    alk_free(in->beta);
    alk_free(in->mean);
    alk_free(in->var);
}

/* Reads an optional vector of `n` floats, checking its size. */
static bool read_vector(alk_trace *t, const alk_fva *a, size_t n, const char *what, float **ret) {
    if (a == NULL) {
        *ret = NULL;
        return true;
    }
    if (alk_fva_size(a) != n) {
        alk_trace_fail(t, ALK_EINVAL, "%s has %zu values, moving_mean %zu", what, alk_fva_size(a),
                       n);
        return false;
    }
    *ret = alk__nn_read_floats(t, a, what);
    return *ret != NULL;
}

static bool read_fold_inputs(alk_trace *t, const alk_fva *gamma, const alk_fva *beta,
                             const alk_fva *mean, const alk_fva *var, fold_inputs *in) {
    memset(in, 0, sizeof(*in));
    in->n = alk_fva_size(mean);
    return read_vector(t, mean, in->n, "moving_mean", &in->mean) &&
           read_vector(t, var, in->n, "moving_variance", &in->var) &&
           read_vector(t, gamma, in->n, "gamma", &in->gamma) &&
           read_vector(t, beta, in->n, "beta", &in->beta);
}

/* scale = gamma / sqrt(var + eps); offset = beta - mean * scale: float32, one rounding per step. */
void alk__nn_fold_f32(size_t n, const float *gamma, const float *beta, float beta0,
                      const float *mean, const float *var, float eps, float *scale, float *offset) {
    for (size_t j = 0; j < n; j++) {
        /* Without gamma the frameworks divide the Python number 1. */
        float s = (gamma != NULL ? gamma[j] : 1.0f) / sqrtf(var[j] + eps);
        scale[j] = s;
        if (offset != NULL) {
            offset[j] = (beta != NULL ? beta[j] : beta0) - mean[j] * s;
        }
    }
}

/* Keras's Normalization in float32: std = max(sqrt(var), 1e-7), then (std, mean) to invert or
 * (1/std, -mean * (1/std)). */
static void normalization_f32(const fold_inputs *in, bool invert, float *scale, float *offset) {
    /* Keras's backend epsilon, a Python float against float32: rounded to float32. */
    const float eps = (float)1e-7;
    for (size_t j = 0; j < in->n; j++) {
        float root = sqrtf(in->var[j]);
        /* np.maximum: the NaN of a negative variance propagates, as numpy's does. */
        float std = (root < eps) ? eps : root;
        if (invert) {
            scale[j] = std;
            offset[j] = in->mean[j];
        } else {
            float inv = 1.0f / std;
            scale[j] = inv;
            offset[j] = -in->mean[j] * inv;
        }
    }
}

typedef enum fold_kind { FOLD_BATCHNORM, FOLD_NORMALIZE, FOLD_DENORMALIZE } fold_kind;

/* Reads the vectors, folds them in float32 and returns the two numeric arrays (mean's shape). */
static int fold(alk_trace *t, fold_kind kind, const alk_fva *gamma, const alk_fva *beta,
                float beta0, const alk_fva *mean, const alk_fva *var, double eps,
                alk_fva **ret_scale, alk_fva **ret_offset) {
    fold_inputs in;
    float *scale = NULL, *offset = NULL;
    if (!read_fold_inputs(t, gamma, beta, mean, var, &in)) {
        goto done;
    }
    scale = alk__nn_alloc(t, in.n, sizeof(float));
    offset = alk__nn_alloc(t, in.n, sizeof(float));
    if (scale == NULL || offset == NULL) {
        goto done;
    }
    if (kind == FOLD_BATCHNORM) {
        /* A Python float meeting float32 arrays is rounded to float32 first (numpy and Keras). */
        alk__nn_fold_f32(in.n, in.gamma, in.beta, beta0, in.mean, in.var, (float)eps, scale,
                         offset);
    } else {
        normalization_f32(&in, kind == FOLD_DENORMALIZE, scale, offset);
    }
    alk_fva *s = alk__nn_from_floats(t, alk_fva_ndim(mean), alk_fva_shape(mean), scale);
    alk_fva *o = alk__nn_from_floats(t, alk_fva_ndim(mean), alk_fva_shape(mean), offset);
    if (s != NULL && o != NULL) {
        *ret_scale = s;
        *ret_offset = o;
    }
done:
    fold_inputs_free(&in);
    alk_free(scale);
    alk_free(offset);
    return alk_trace_error(t);
}

int alk__nn_fold(alk_trace *t, const alk_fva *gamma, const alk_fva *beta, float beta0,
                 const alk_fva *mean, const alk_fva *var, double eps, alk_fva **ret_scale,
                 alk_fva **ret_offset) {
    return fold(t, FOLD_BATCHNORM, gamma, beta, beta0, mean, var, eps, ret_scale, ret_offset);
}

int alk_nn_batchnorm_fold(alk_trace *t, const alk_fva *gamma, const alk_fva *beta,
                          const alk_fva *mean, const alk_fva *var, double eps, alk_fva **ret_scale,
                          alk_fva **ret_offset) {
    if (!alk__nn_ok(t)) {
        return alk_trace_error(t);
    }
    if (mean == NULL || var == NULL) {
        return alk_trace_fail(t, ALK_EINVAL, "batch norm without moving_mean/moving_variance");
    }
    return alk__nn_fold(t, gamma, beta, 0.0f, mean, var, eps, ret_scale, ret_offset);
}

int alk_nn_normalization_fold(alk_trace *t, const alk_fva *mean, const alk_fva *var, bool invert,
                              alk_fva **ret_scale, alk_fva **ret_offset) {
    if (!alk__nn_ok(t)) {
        return alk_trace_error(t);
    }
    if (mean == NULL || var == NULL) {
        return alk_trace_fail(t, ALK_EINVAL, "Normalization without mean/variance");
    }
    return fold(t, invert ? FOLD_DENORMALIZE : FOLD_NORMALIZE, NULL, NULL, 0.0f, mean, var, 0.0,
                ret_scale, ret_offset);
}
