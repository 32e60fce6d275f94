/*
 * HGQ2's table layers (spec frontends.md §3.4): QDenseT, QEinsumDenseT and the convolutions
 * QConvT1D/2D. Each (input element, output) pair has a tiny float32 MLP — the sub-model `module`,
 * a Sequential of EinsumDense layers whose kernels hold one slice per pair — and the layer sums
 * the pairs' quantized outputs over the contracted input axes.
 *
 * Lowering. The input is broadcast to the "presum" shape (input axes plus the output-only axes),
 * quantized by the layer's iq, and every element becomes a table of its own pair's function
 * v -> MLP(v) [-> batch norm, / sqrt(n_in)] (alk_fva_apply_custom, one pending function per
 * element), which the table output quantizer `toq` tabulates on the element's input grid. The
 * sum over the contracted axes, the transpose to the output order and the layer's activation
 * (the kit's activation step) follow.
 *
 * Float32. The MLPs run in IEEE single precision as the Keras model runs them (each product and
 * sum rounded; Keras's einsum may sum in another order, and its transcendental functions come
 * from the backend's library: the test oracle allows for both). Activations are Keras's own
 * (erf gelu, x * relu6(x + 3) / 6 hard_silu...), not the reference's approximations (§8.9).
 *
 * Build-time state re-derived from the config and the stored weights (HGQ2 keeps it out of the
 * config): QEinsumDenseT's index letters (Keras's einsum analysis of the equation), its presum
 * shape (the input shape, then the kernel-only axes whose sizes the sub-model's first kernel
 * gives), contracted axes, output transpose and normalize axes; QConvT's patch geometry.
 *
 * Batch norm: QDenseT's is a Keras BatchNormalization sub-layer over the output axis
 * (x * inv + (beta - mean * inv), inv = gamma / sqrt(var + eps), no beta when center=False: the
 * reference's beta = 1 is not what Keras computes); QEinsumDenseT's is its own
 * (gamma / sqrt(var + eps), -mean * scaler (+ beta)) over its normalize axes. Both divide by
 * sqrt(n_in), n_in the number of contracted elements.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include "core/alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { MAX_LAYERS = 16, MAX_WIDTH = 256 };

/* ---- Keras activations in float32 ----------------------------------------------------------- */

typedef float act32_fn(float x);

static float act_linear(float x) {
    return x;
}
static float act_relu(float x) {
    return x > 0 ? x : 0.0f;
}
static float act_relu6(float x) {
    return x > 6 ? 6.0f : x > 0 ? x : 0.0f;
}
static float act_tanh(float x) {
    return tanhf(x);
}
static float act_sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}
static float act_silu(float x) {
    return x * act_sigmoid(x);
}
static float act_gelu(float x) {
    return 0.5f * x * (1.0f + erff(x / sqrtf(2.0f)));
}
static float act_elu(float x) {
    return x > 0 ? x : expm1f(x);
}
static float act_selu(float x) {
    return 1.0507009873554805f * (x > 0 ? x : 1.6732632423543772f * expm1f(x));
}
static float act_softplus(float x) {
    return log1pf(expf(x));
}
static float act_softsign(float x) {
    return x / (1.0f + fabsf(x));
}
static float act_exponential(float x) {
    return expf(x);
}
static float act_hard_sigmoid(float x) {
    return act_relu6(x + 3.0f) / 6.0f;
}
static float act_hard_silu(float x) {
    return x * act_hard_sigmoid(x);
}
static float act_hard_tanh(float x) {
    return x > 1 ? 1.0f : x < -1 ? -1.0f : x;
}
static float act_leaky_relu(float x) {
    return x > 0 ? x : 0.2f * x; /* Keras's default negative_slope */
}
static float act_log_sigmoid(float x) {
    return -log1pf(expf(-x));
}

static const struct {
    const char *name;
    act32_fn *fn;
} activations32[] = {
    {"linear", act_linear},
    {"relu", act_relu},
    {"relu6", act_relu6},
    {"tanh", act_tanh},
    {"sigmoid", act_sigmoid},
    {"silu", act_silu},
    {"swish", act_silu},
    {"gelu", act_gelu},
    {"elu", act_elu},
    {"selu", act_selu},
    {"softplus", act_softplus},
    {"softsign", act_softsign},
    {"exponential", act_exponential},
    {"hard_sigmoid", act_hard_sigmoid},
    {"hard_silu", act_hard_silu},
    {"hard_swish", act_hard_silu},
    {"hard_tanh", act_hard_tanh},
    {"leaky_relu", act_leaky_relu},
    {"log_sigmoid", act_log_sigmoid},
};

static act32_fn *activation32(alk_op *op, const char *name) {
    if (name == NULL) {
        return act_linear;
    }
    for (size_t i = 0; i < sizeof(activations32) / sizeof(activations32[0]); i++) {
        if (strcmp(activations32[i].name, name) == 0) {
            return activations32[i].fn;
        }
    }
    alk_op_fail(op, ALK_EINVAL, "sub-network activation '%s' is not supported", name);
    return NULL;
}

/* ---- The sub-networks ------------------------------------------------------------------------ */

/* Every pair's MLP and the batch norm after it, in float32 (trace memory: the tables are built
 * when the toq quantizes, after the handler's call). */
typedef struct table_net {
    size_t n_layers;                   /* hidden layers + the linear output layer */
    size_t width[MAX_LAYERS + 1];      /* width[0] = 1; the last is 1 */
    const float *kernel[MAX_LAYERS];   /* (pairs, width[l], width[l + 1]) */
    const float *bias[MAX_LAYERS];     /* (pairs, width[l + 1]) or NULL */
    act32_fn *hidden;                  /* the hidden layers' activation */
    const float *bn_scale, *bn_offset; /* per batch-norm position, or NULL */
    float sqrt_n_in;
} table_net;

/* One element's function: its pair's MLP and its batch-norm position. */
typedef struct table_elem {
    const table_net *net;
    size_t pair, bn;
} table_elem;

static double table_fn(double v, void *user) {
    const table_elem *e = user;
    const table_net *net = e->net;
    float h[MAX_WIDTH], next[MAX_WIDTH];
    h[0] = (float)v;
    for (size_t l = 0; l < net->n_layers; l++) {
        size_t in = net->width[l], out = net->width[l + 1];
        const float *k = net->kernel[l] + e->pair * in * out;
        for (size_t o = 0; o < out; o++) {
            float acc = 0.0f;
            for (size_t i = 0; i < in; i++) {
                acc += h[i] * k[i * out + o];
            }
            if (net->bias[l] != NULL) {
                acc += net->bias[l][e->pair * out + o];
            }
            next[o] = l + 1 < net->n_layers ? net->hidden(acc) : acc;
        }
        memcpy(h, next, out * sizeof(float));
    }
    float t = h[0];
    if (net->bn_scale != NULL) {
        t = t * net->bn_scale[e->bn] + net->bn_offset[e->bn];
        t = t / net->sqrt_n_in;
    }
    return (double)t;
}

/* A numeric array's values copied into trace memory as floats. */
static const float *trace_floats(alk_op *op, const alk_fva *a, const char *what) {
    float *tmp = hgq_floats(op, a, what);
    float *out = tmp != NULL ? alk_op_alloc(op, alk_fva_size(a) * sizeof(float) + 1) : NULL;
    if (out != NULL) {
        memcpy(out, tmp, alk_fva_size(a) * sizeof(float));
    }
    alk_free(tmp);
    return out;
}

/* Checks that `a` has the shape kernel_dims + tail (n_tail entries). */
static bool check_shape(alk_op *op, const char *dataset, const alk_fva *a, const size_t *dims,
                        size_t n_dims, const size_t *tail, size_t n_tail) {
    size_t want[ALK_FVA_MAX_DIM];
    size_t n = n_dims + n_tail;
    memcpy(want, dims, n_dims * sizeof(size_t));
    memcpy(want + n_dims, tail, n_tail * sizeof(size_t));
    bool ok = a != NULL && alk_fva_ndim(a) == n &&
              memcmp(alk_fva_shape(a), want, n * sizeof(size_t)) == 0;
    if (a != NULL && !ok) {
        char got[96], expected[96];
        hgq_shape_text(alk_fva_shape(a), alk_fva_ndim(a), got, sizeof(got));
        hgq_shape_text(want, n, expected, sizeof(expected));
        alk_op_fail(op, ALK_EINVAL, "dataset %s has shape %s, expected %s", dataset, got, expected);
    }
    return ok;
}

/*
 * Reads the sub-model at `<prefix>module/layers/einsum_dense[_N]` (n_hl hidden layers and the
 * output layer, each a kernel and, when `biases`, a bias) for pairs laid out as `dims` (n_dims
 * kernel axes).
 */
static bool read_module(alk_op *op, const char *prefix, size_t n_hl, size_t d_hl, bool biases,
                        const size_t *dims, size_t n_dims, table_net *net) {
    if (n_hl + 1 > MAX_LAYERS || d_hl > MAX_WIDTH || d_hl < 1) {
        alk_op_fail(op, ALK_EINVAL, "n_hl %zu and d_hl %zu: at most %d layers of %d are supported",
                    n_hl, d_hl, MAX_LAYERS - 1, MAX_WIDTH);
        return false;
    }
    net->n_layers = n_hl + 1;
    net->width[0] = 1;
    for (size_t l = 0; l < n_hl; l++) {
        net->width[l + 1] = d_hl;
    }
    net->width[n_hl + 1] = 1;
    for (size_t l = 0; l <= n_hl; l++) {
        char slot[64], path[HGQ_PATH_MAX];
        if (l == 0) {
            (void)snprintf(slot, sizeof(slot), "module/layers/einsum_dense/vars/");
        } else {
            (void)snprintf(slot, sizeof(slot), "module/layers/einsum_dense_%zu/vars/", l);
        }
        if (!hgq_path(op, path, prefix, slot) || strlen(path) + 2 >= HGQ_PATH_MAX) {
            return false;
        }
        size_t plen = strlen(path);
        bool last = l == n_hl;
        /* The output layer's kernel has no output axis: (dims..., width). */
        size_t tail[2] = {net->width[l], net->width[l + 1]};
        strcpy(path + plen, "0");
        alk_fva *kernel = alk_op_tensor_opt(op, path);
        if (kernel == NULL) {
            alk_op_fail(op, ALK_EINVAL, "dataset %s (a sub-network kernel) is missing", path);
            return false;
        }
        if (!check_shape(op, path, kernel, dims, n_dims, tail, last ? 1 : 2)) {
            return false;
        }
        net->kernel[l] = trace_floats(op, kernel, path);
        strcpy(path + plen, "1");
        alk_fva *bias = alk_op_tensor_opt(op, path);
        if (biases && bias == NULL) {
            alk_op_fail(op, ALK_EINVAL, "dataset %s (a sub-network bias) is missing", path);
            return false;
        }
        if (!biases && bias != NULL) {
            alk_op_fail(op, ALK_EINVAL,
                        "unexpected dataset %s: this config gives the sub-network no bias", path);
            return false;
        }
        if (bias != NULL) {
            if (!check_shape(op, path, bias, dims, n_dims, tail + 1, last ? 0 : 1)) {
                return false;
            }
            net->bias[l] = trace_floats(op, bias, path);
        }
    }
    return !alk_op_failed(op);
}

/* ---- The common lowering ------------------------------------------------------------------- */

/* A table layer resolved for its input: what table_lower needs. */
typedef struct table_plan {
    const char *prefix;            /* where the layer's objects are ("" or "query_dense/") */
    size_t ndim;                   /* presum rank */
    size_t shape[ALK_FVA_MAX_DIM]; /* presum shape */
    size_t n_kernel;
    int kernel_axes[ALK_FVA_MAX_DIM]; /* presum axes of the pair index (kernel order) */
    size_t n_bn;
    int bn_axes[ALK_FVA_MAX_DIM]; /* presum axes of the batch-norm position */
    size_t n_contract;
    int contract_axes[ALK_FVA_MAX_DIM];
    bool enable_iq;
    const alk_value *iq_conf, *toq_conf;
} table_plan;

/* The pair or batch-norm index of flat presum element `flat`: its coordinates on `axes`,
 * row-major. */
static size_t index_on(const table_plan *p, size_t flat, const int *axes, size_t n_axes) {
    size_t coords[ALK_FVA_MAX_DIM];
    for (size_t d = p->ndim; d-- > 0;) {
        coords[d] = flat % p->shape[d];
        flat /= p->shape[d];
    }
    size_t index = 0;
    for (size_t a = 0; a < n_axes; a++) {
        index = index * p->shape[axes[a]] + coords[axes[a]];
    }
    return index;
}

/* x broadcast to the presum shape -> iq -> per-element tables -> toq -> sum over the contracted
 * axes (in presum order; the caller transposes). */
static alk_fva *table_lower(alk_op *op, const table_plan *p, const table_net *net, alk_fva *x) {
    alk_trace *t = alk_op_trace(op);
    char path[HGQ_PATH_MAX];
    if (p->enable_iq) {
        alk_hgq_quantizer iq;
        if (!hgq_path(op, path, p->prefix, "iq") ||
            !hgq_quantizer_read(op, p->iq_conf, HGQ_PLACE_DATALANE, path, &iq)) {
            return NULL;
        }
        x = hgq_quantize(op, &iq, path, x);
    }
    size_t n = 1;
    for (size_t d = 0; d < p->ndim; d++) {
        n *= p->shape[d];
    }
    alk_fva *flat = alk_fva_ravel(t, x);
    alk_fva **parts = alk_malloc((n > 0 ? n : 1) * sizeof(*parts));
    table_elem *elems = alk_op_alloc(op, (n > 0 ? n : 1) * sizeof(*elems));
    if (parts == NULL || elems == NULL) {
        alk_free(parts);
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_ENOMEM, "out of memory for %zu tables", n);
        }
        return NULL;
    }
    for (size_t j = 0; j < n && !alk_op_failed(op); j++) {
        int64_t at = (int64_t)j;
        elems[j] = (table_elem){net, index_on(p, j, p->kernel_axes, p->n_kernel),
                                index_on(p, j, p->bn_axes, p->n_bn)};
        parts[j] = alk_fva_apply_custom(t, alk_fva_take(t, flat, &at, 1, 0), table_fn, &elems[j]);
    }
    int64_t shape[ALK_FVA_MAX_DIM];
    for (size_t d = 0; d < p->ndim; d++) {
        shape[d] = (int64_t)p->shape[d];
    }
    alk_fva *tables = alk_op_failed(op) ? NULL : alk_fva_concatenate(t, parts, n, 0);
    alk_free(parts);
    tables = alk_fva_reshape(t, tables, p->ndim, shape);
    alk_hgq_quantizer toq;
    if (tables == NULL || !hgq_path(op, path, p->prefix, "toq") ||
        !hgq_quantizer_read(op, p->toq_conf, HGQ_PLACE_TABLE, path, &toq)) {
        return NULL;
    }
    alk_fva *q = hgq_quantize(op, &toq, path, tables);
    return alk_fva_reduce(t, ALK_REDUCE_SUM, q, p->contract_axes, p->n_contract, false);
}

/* sqrt(n_in) as Keras divides by it: Python's float sqrt, rounded to float32 against a float32
 * tensor. */
static float sqrt_n(size_t n_in) {
    return (float)sqrt((double)n_in);
}

/* ---- QDenseT and the convolutions ---------------------------------------------------------- */

/* QDenseT's Keras BatchNormalization sub-layer over the output axis (n_out positions). */
static bool dense_t_batch_norm(alk_op *op, size_t n_out, size_t n_in, table_net *net) {
    bool scale = alk_op_bool(op, "bn_scale", true), center = alk_op_bool(op, "bn_center", true);
    float eps = (float)alk_op_float(op, "bn_epsilon", 1e-3);
    const alk_fva *v[4] = {NULL};
    size_t at = 0;
    const bool present[4] = {scale, center, true, true};
    const char *names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (size_t i = 0; i < 4; i++) {
        if (!present[i]) {
            continue;
        }
        char path[64];
        (void)snprintf(path, sizeof(path), "bn_module/vars/%zu", at++);
        v[i] = alk_op_tensor_opt(op, path);
        if (v[i] == NULL || alk_fva_size(v[i]) != n_out) {
            alk_op_fail(op, ALK_EINVAL, "dataset %s (batch norm %s, %zu values) is %s", path,
                        names[i], n_out, v[i] == NULL ? "missing" : "of another size");
            return false;
        }
    }
    float *scale_v = alk_op_alloc(op, n_out * sizeof(float) + 1);
    float *offset_v = alk_op_alloc(op, n_out * sizeof(float) + 1);
    if (scale_v == NULL || offset_v == NULL) {
        return false;
    }
    for (size_t o = 0; o < n_out; o++) {
        float gamma = scale ? (float)alk_fva_num_at(v[0], o) : 1.0f;
        float inv = gamma / sqrtf((float)alk_fva_num_at(v[3], o) + eps);
        float offset = -(float)alk_fva_num_at(v[2], o) * inv;
        /* Keras adds no offset without center (the reference's table uses beta = 1). */
        scale_v[o] = inv;
        offset_v[o] = center ? offset + (float)alk_fva_num_at(v[1], o) : offset;
    }
    net->bn_scale = scale_v;
    net->bn_offset = offset_v;
    net->sqrt_n_in = sqrt_n(n_in);
    return true;
}

/* QDenseT on x (..., n_in): presum (..., n_in, n_out), pairs (n_in, n_out), contracted n_in. */
static alk_fva *dense_t(alk_op *op, alk_fva *x) {
    int64_t n_out = alk_op_int(op, "n_out", alk_op_int(op, "filters", -1));
    int64_t n_hl = alk_op_int(op, "n_hl", 1), d_hl = alk_op_int(op, "d_hl", 8);
    bool use_bias = alk_op_bool(op, "use_bias", true);
    act32_fn *hidden = activation32(op, hgq_activation_name(op, "subnn_activation"));
    if (x == NULL || alk_op_failed(op)) {
        return NULL;
    }
    size_t nd = alk_fva_ndim(x);
    if (nd < 1 || nd + 1 > ALK_FVA_MAX_DIM || n_out < 1 || n_hl < 0 || d_hl < 1) {
        alk_op_fail(op, ALK_EINVAL, "n_out %lld, n_hl %lld, d_hl %lld on an input of %zu axes",
                    (long long)n_out, (long long)n_hl, (long long)d_hl, nd);
        return NULL;
    }
    size_t n_in = alk_fva_shape(x)[nd - 1];
    table_plan p = {.prefix = "", .ndim = nd + 1, .n_kernel = 2, .n_bn = 1, .n_contract = 1};
    memcpy(p.shape, alk_fva_shape(x), nd * sizeof(size_t));
    p.shape[nd] = (size_t)n_out;
    p.kernel_axes[0] = (int)nd - 1;
    p.kernel_axes[1] = (int)nd;
    p.bn_axes[0] = (int)nd;
    p.contract_axes[0] = (int)nd - 1;
    p.enable_iq = alk_op_bool(op, "enable_iq", true);
    p.iq_conf = alk_value_get(alk_op_config(op), "iq_conf");
    p.toq_conf = alk_value_get(alk_op_config(op), "toq_conf");
    table_net *net = alk_op_alloc(op, sizeof(*net));
    size_t dims[2] = {n_in, (size_t)n_out};
    if (net == NULL || !read_module(op, "", (size_t)n_hl, (size_t)d_hl, use_bias, dims, 2, net)) {
        return NULL;
    }
    net->hidden = hidden;
    if (alk_op_bool(op, "batch_norm", false) && !dense_t_batch_norm(op, (size_t)n_out, n_in, net)) {
        return NULL;
    }
    hgq_check_own_vars(op, "", alk_op_bool(op, "enable_ebops", p.enable_iq) ? 2 : 0, 0);
    /* x[..., None] broadcast over the outputs. */
    int64_t expanded[ALK_FVA_MAX_DIM];
    for (size_t d = 0; d < nd; d++) {
        expanded[d] = (int64_t)p.shape[d];
    }
    expanded[nd] = 1;
    alk_trace *t = alk_op_trace(op);
    x = alk_fva_broadcast_to(t, alk_fva_reshape(t, x, nd + 1, expanded), p.ndim, p.shape);
    return table_lower(op, &p, net, x);
}

void hgq_dense_t(alk_op *op, const void *arg) {
    (void)arg;
    alk_op_out(op, dense_t(op, alk_op_in(op, 0)));
}

/* QConvT1D/2D: Keras's extract_patches (taps major, channels minor), then QDenseT. */
void hgq_conv_t(alk_op *op, const void *rank_arg) {
    size_t rank = *(const size_t *)rank_arg;
    alk_fva *x = alk_op_in(op, 0);
    static const char *const formats[] = {"channels_last", "channels_first", NULL};
    static const char *const paddings[] = {"valid", "same", NULL};
    int format = alk_op_enum(op, "data_format", formats, 0);
    int padding = alk_op_enum(op, "padding", paddings, 0);
    int64_t k[2], s[2], d[2];
    alk_op_ints(op, "kernel_size", rank, -1, k);
    alk_op_ints(op, "strides", rank, 1, s);
    alk_op_ints(op, "dilation_rate", rank, 1, d);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (format == 1 || alk_op_int(op, "groups", 1) != 1) {
        alk_op_fail(op, ALK_EINVAL,
                    "channels_first and grouped table convolutions are not supported (HGQ2 "
                    "refuses groups)");
        return;
    }
    if (alk_fva_ndim(x) != rank + 2) {
        alk_op_fail(op, ALK_EINVAL, "its input has %zu axes; a %zu-D convolution takes %zu",
                    alk_fva_ndim(x), rank, rank + 2);
        return;
    }
    alk_patch_spec spec = {.rank = rank};
    size_t in[2];
    for (size_t i = 0; i < rank; i++) {
        if (k[i] < 1 || s[i] < 1 || d[i] < 1) {
            alk_op_fail(op, ALK_EINVAL, "kernel_size, strides and dilation_rate must be positive");
            return;
        }
        spec.size[i] = (size_t)k[i];
        spec.strides[i] = (size_t)s[i];
        spec.dilation[i] = (size_t)d[i];
        in[i] = alk_fva_shape(x)[1 + i];
    }
    if (padding == 1) {
        alk_patch_same_pads(&spec, in);
    }
    alk_op_out(op, dense_t(op, alk_fva_patches(alk_op_trace(op), x, &spec, 0.0)));
}

/* ---- QEinsumDenseT --------------------------------------------------------------------------- */

/* Keras's canonical letters of an einsum-dense equation ("btc,cd->btd"; a left ellipsis becomes
 * the first unused letters, as its quantization analysis does). */
static bool einsum_specs(alk_op *op, const char *equation, size_t in_ndim, char *in, char *w,
                         char *out) {
    const char *comma = strchr(equation, ',');
    const char *arrow = strstr(equation, "->");
    if (comma == NULL || arrow == NULL || arrow < comma ||
        (size_t)(comma - equation) >= ALK_FVA_MAX_DIM + 3 ||
        (size_t)(arrow - comma) > ALK_FVA_MAX_DIM || strlen(arrow + 2) >= ALK_FVA_MAX_DIM + 3) {
        alk_op_fail(op, ALK_EINVAL, "equation '%s' is not of the form 'in,kernel->out'", equation);
        return false;
    }
    size_t ni = (size_t)(comma - equation), nw = (size_t)(arrow - comma - 1);
    char raw_in[ALK_FVA_MAX_DIM + 4], raw_out[ALK_FVA_MAX_DIM + 4];
    memcpy(raw_in, equation, ni);
    raw_in[ni] = '\0';
    memcpy(w, comma + 1, nw);
    w[nw] = '\0';
    strcpy(raw_out, arrow + 2);
    bool left = strncmp(raw_in, "...", 3) == 0 && strncmp(raw_out, "...", 3) == 0;
    if (!left && (strstr(raw_in, "...") != NULL || strstr(raw_out, "...") != NULL)) {
        alk_op_fail(op, ALK_EINVAL, "equation '%s': only a left ellipsis is supported", equation);
        return false;
    }
    if (!left) {
        strcpy(in, raw_in);
        strcpy(out, raw_out);
        return strlen(in) == in_ndim ||
               (alk_op_fail(op, ALK_EINVAL, "equation '%s' does not fit an input of %zu axes",
                            equation, in_ndim),
                false);
    }
    size_t spec = strlen(raw_in) - 3;
    if (in_ndim < spec) {
        alk_op_fail(op, ALK_EINVAL, "equation '%s' does not fit an input of %zu axes", equation,
                    in_ndim);
        return false;
    }
    size_t elided = in_ndim - spec, n = 0;
    char fresh[ALK_FVA_MAX_DIM];
    for (const char *c = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"; *c && n < elided;
         c++) {
        if (!strchr(raw_in, *c) && !strchr(w, *c) && !strchr(raw_out, *c)) {
            fresh[n++] = *c;
        }
    }
    (void)snprintf(in, ALK_FVA_MAX_DIM + 4, "%.*s%s", (int)elided, fresh, raw_in + 3);
    (void)snprintf(out, ALK_FVA_MAX_DIM + 4, "%.*s%s", (int)elided, fresh, raw_out + 3);
    return true;
}

static int axis_of(const char *spec, char c) {
    const char *at = strchr(spec, c);
    return at != NULL ? (int)(at - spec) : -1;
}

/* QEinsumDenseT's own batch norm over the normalize axes (`size` positions): its variables
 * `<prefix>vars/<*n_vars>...` (bn_gamma when bn_scale, bn_beta when bn_center, moving_mean,
 * moving_variance). */
static bool einsum_t_batch_norm(alk_op *op, const hgq_einsum_t_spec *spec, size_t size, size_t n_in,
                                size_t *n_vars, table_net *net) {
    const bool present[4] = {spec->bn_scale, spec->bn_center, true, true};
    const char *names[4] = {"bn_gamma", "bn_beta", "moving_mean", "moving_variance"};
    const alk_fva *v[4] = {NULL};
    for (size_t i = 0; i < 4; i++) {
        if (!present[i]) {
            continue;
        }
        char rest[32], path[HGQ_PATH_MAX];
        (void)snprintf(rest, sizeof(rest), "vars/%zu", (*n_vars)++);
        if (!hgq_path(op, path, spec->prefix, rest)) {
            return false;
        }
        v[i] = alk_op_tensor_opt(op, path);
        if (v[i] == NULL || alk_fva_size(v[i]) != size) {
            alk_op_fail(op, ALK_EINVAL, "dataset %s (%s, %zu values) is %s", path, names[i], size,
                        v[i] == NULL ? "missing" : "of another size");
            return false;
        }
    }
    float *scale_v = alk_op_alloc(op, size * sizeof(float) + 1);
    float *offset_v = alk_op_alloc(op, size * sizeof(float) + 1);
    if (scale_v == NULL || offset_v == NULL) {
        return false;
    }
    float eps = (float)spec->bn_epsilon;
    for (size_t j = 0; j < size; j++) {
        float gamma = spec->bn_scale ? (float)alk_fva_num_at(v[0], j) : 1.0f;
        scale_v[j] = gamma / sqrtf((float)alk_fva_num_at(v[3], j) + eps);
        float offset = -(float)alk_fva_num_at(v[2], j) * scale_v[j];
        offset_v[j] = spec->bn_center ? offset + (float)alk_fva_num_at(v[1], j) : offset;
    }
    net->bn_scale = scale_v;
    net->bn_offset = offset_v;
    net->sqrt_n_in = sqrt_n(n_in);
    return true;
}

/* The presum letters: the input's, then the kernel's the input lacks (output-only: HGQ2 refuses
 * kernel-only contractions). */
static bool presum_letters(alk_op *op, const char *equation, const char *in, const char *w,
                           const char *out, char *presum) {
    strcpy(presum, in);
    for (const char *c = w; *c; c++) {
        if (strchr(in, *c)) {
            continue;
        }
        size_t n = strlen(presum);
        if (!strchr(out, *c) || n + 1 > ALK_FVA_MAX_DIM) {
            alk_op_fail(op, ALK_EINVAL,
                        "equation '%s': kernel-only contracted axes are not supported (HGQ2 "
                        "refuses them)",
                        equation);
            return false;
        }
        presum[n] = *c;
        presum[n + 1] = '\0';
    }
    return true;
}

alk_fva *hgq_einsum_dense_t_apply(alk_op *op, const hgq_einsum_t_spec *spec, alk_fva *x) {
    alk_trace *t = alk_op_trace(op);
    act32_fn *hidden = activation32(op, spec->subnn_activation);
    char in[ALK_FVA_MAX_DIM + 4], w[ALK_FVA_MAX_DIM + 4], out[ALK_FVA_MAX_DIM + 4];
    char presum[2 * ALK_FVA_MAX_DIM + 1];
    if (x == NULL || alk_op_failed(op)) {
        return NULL;
    }
    if (spec->equation == NULL || spec->n_hl < 0 || spec->d_hl < 1) {
        alk_op_fail(op, ALK_EINVAL, "%sneeds an equation, n_hl >= 0 and d_hl >= 1", spec->prefix);
        return NULL;
    }
    if (!einsum_specs(op, spec->equation, alk_fva_ndim(x), in, w, out) ||
        !presum_letters(op, spec->equation, in, w, out, presum)) {
        return NULL;
    }
    table_plan p = {.prefix = spec->prefix, .ndim = strlen(presum)};
    p.enable_iq = spec->enable_iq;
    p.iq_conf = spec->iq_conf;
    p.toq_conf = spec->toq_conf;
    /* The kernel's sizes: the sub-model's first kernel (kernel letters..., 1, d or 1). */
    char first[HGQ_PATH_MAX];
    if (!hgq_path(op, first, spec->prefix, "module/layers/einsum_dense/vars/0")) {
        return NULL;
    }
    alk_fva *k0 = alk_op_tensor_opt(op, first);
    size_t nw = strlen(w);
    if (k0 == NULL || alk_fva_ndim(k0) < nw + 1) {
        alk_op_fail(op, ALK_EINVAL, "dataset %s (the sub-network's first kernel) is %s", first,
                    k0 == NULL ? "missing" : "of the wrong rank");
        return NULL;
    }
    size_t dims[ALK_FVA_MAX_DIM];
    for (size_t a = 0; a < p.ndim; a++) {
        int ia = axis_of(in, presum[a]);
        p.shape[a] = ia >= 0 ? alk_fva_shape(x)[ia] : alk_fva_shape(k0)[axis_of(w, presum[a])];
    }
    for (size_t a = 0; a < nw; a++) {
        p.kernel_axes[a] = axis_of(presum, w[a]);
        dims[a] = p.shape[p.kernel_axes[a]];
    }
    p.n_kernel = nw;
    size_t n_in = 1;
    for (size_t a = 0; a < strlen(in); a++) {
        if (!strchr(out, in[a])) {
            p.contract_axes[p.n_contract++] = (int)a;
            n_in *= p.shape[a];
        }
    }
    table_net *net = alk_op_alloc(op, sizeof(*net));
    /* The sub-networks have biases when bias_axes is set and there is no batch norm. */
    if (net == NULL || !read_module(op, spec->prefix, (size_t)spec->n_hl, (size_t)spec->d_hl,
                                    spec->has_bias && !spec->batch_norm, dims, nw, net)) {
        return NULL;
    }
    net->hidden = hidden;
    size_t n_vars = 0;
    if (spec->batch_norm) {
        const char *normalize = spec->normalize_axes;
        char derived[ALK_FVA_MAX_DIM + 4];
        if (normalize == NULL) { /* the kernel letters that reach the output */
            size_t n = 0;
            for (const char *c = w; *c; c++) {
                if (strchr(out, *c)) {
                    derived[n++] = *c;
                }
            }
            derived[n] = '\0';
            normalize = derived;
        }
        size_t bn_size = 1;
        for (const char *c = normalize; *c; c++) {
            int a = axis_of(presum, *c);
            if (a < 0 || p.n_bn >= ALK_FVA_MAX_DIM) {
                alk_op_fail(op, ALK_EINVAL, "normalize axis '%c' is not an axis of '%s'", *c,
                            presum);
                return NULL;
            }
            p.bn_axes[p.n_bn++] = a;
            bn_size *= p.shape[a];
        }
        if (!einsum_t_batch_norm(op, spec, bn_size, n_in, &n_vars, net)) {
            return NULL;
        }
    }
    hgq_check_own_vars(op, spec->prefix, n_vars + (spec->ebops ? 2 : 0), n_vars);
    /* x reshaped to input + (1,)*extra and broadcast to presum. */
    int64_t reshaped[ALK_FVA_MAX_DIM];
    for (size_t a = 0; a < p.ndim; a++) {
        reshaped[a] = a < strlen(in) ? (int64_t)p.shape[a] : 1;
    }
    x = alk_fva_broadcast_to(t, alk_fva_reshape(t, x, p.ndim, reshaped), p.ndim, p.shape);
    alk_fva *summed = table_lower(op, &p, net, x);
    /* The kept input letters then the extra ones, transposed to the output's order. */
    char post[2 * ALK_FVA_MAX_DIM + 1];
    size_t n_post = 0;
    for (const char *c = presum; *c; c++) {
        if (strchr(out, *c)) {
            post[n_post++] = *c;
        }
    }
    post[n_post] = '\0';
    int perm[ALK_FVA_MAX_DIM];
    size_t n_out = strlen(out);
    for (size_t a = 0; a < n_out; a++) {
        perm[a] = axis_of(post, out[a]);
        if (perm[a] < 0) {
            alk_op_fail(op, ALK_EINVAL, "output letter '%c' of '%s' is not computed", out[a],
                        spec->equation);
            return NULL;
        }
    }
    return summed != NULL ? alk_fva_transpose(t, summed, perm) : NULL;
}

void hgq_einsum_dense_t(alk_op *op, const void *arg) {
    (void)arg;
    const alk_value *config = alk_op_config(op);
    bool iq = alk_op_bool(op, "enable_iq", true);
    const char *normalize = alk_op_str(op, "normalize_axes", NULL);
    hgq_einsum_t_spec spec = {
        .prefix = "",
        .equation = alk_op_str(op, "equation", NULL),
        .n_hl = alk_op_int(op, "n_hl", 1),
        .d_hl = alk_op_int(op, "d_hl", 8),
        .subnn_activation = hgq_activation_name(op, "subnn_activation"),
        .has_bias = alk_op_has(op, "bias_axes"),
        /* HGQ2's build: normalize_axes, else bias_axes, else the kernel's output letters. */
        .normalize_axes = normalize != NULL ? normalize : alk_op_str(op, "bias_axes", NULL),
        .batch_norm = alk_op_bool(op, "batch_norm", false),
        .bn_center = alk_op_bool(op, "bn_center", true),
        .bn_scale = alk_op_bool(op, "bn_scale", true),
        .bn_epsilon = alk_op_float(op, "bn_epsilon", 1e-3),
        .enable_iq = iq,
        .iq_conf = alk_value_get(config, "iq_conf"),
        .toq_conf = alk_value_get(config, "toq_conf"),
        .ebops = alk_op_bool(op, "enable_ebops", iq),
    };
    alk_op_out(op, hgq_einsum_dense_t_apply(op, &spec, alk_op_in(op, 0)));
}
