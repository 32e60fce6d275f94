/*
 * Layer kernels shared by every frontend (the keras, hgq and torch plugins): the one place where
 * each bit-exact trap of a layer lives (spec frontends.md §2.2, §2.3, §3.1, §3.3, §4.3-§4.5).
 *
 * Every kernel lowers through the array API of trace/fvarray.h and nothing else: a kernel is the
 * sequence of array operations the reference's handler performs (patch gathers, einsum, heap
 * reductions, multiplications by float64 reciprocals), so the traced hardware is the reference's.
 * Where the reference computes a value the framework does not (a [quirk] of the spec), the kernel
 * computes what Keras or torch computes and says so at the function.
 *
 * Conventions.
 *   - Arrays are the batch-first arrays of the frontends: Keras and torch inputs carry their batch
 *     axis of length 1. Spatial kernels take rank + 2 axes, channels last unless the window says
 *     channels_first (the result then has the input's layout).
 *   - Weights are numeric alk_fva arrays (alk_op_weight gives them). Kernels are taken in Keras's
 *     layouts; alk_nn_torch_kernel moves torch's (A, B, *K) weights to them.
 *   - Errors are the trace's sticky errors: a kernel that fails records ALK_EINVAL (or ENOMEM) with
 *     a message naming the culprit (argument, axis, activation) and returns NULL; after an error,
 *     or given a NULL required array, it returns NULL at once. Optional arrays (bias, gamma, ...)
 *     are NULL when absent.
 *   - Ownership: results live in the trace's arena like every alk_fva; array arguments and specs
 *     are borrowed for the call.
 *   - Float32: where the framework computes a constant in IEEE single precision (batch-norm
 *     folding, HGQ2's weight quantizers), the kernel does the same operations in `float`, each one
 *     correctly rounded (meson builds with -ffp-contract=off so no product is fused into an add).
 *
 * Thread rule: the thread that owns the trace context.
 */
#ifndef ALK_NN_NN_H
#define ALK_NN_NN_H

#include "trace/fvarray.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { ALK_NN_MAX_RANK = 3 };

/* ---- Window geometry (frontends §2.2 "Patch extraction", §4.3) ---------------------------- */

typedef enum alk_nn_padding {
    ALK_NN_PAD_VALID,    /* no padding */
    ALK_NN_PAD_SAME,     /* Keras/TF 'same'; torch 'same' (stride 1) resolves identically */
    ALK_NN_PAD_CAUSAL,   /* Keras Conv1D 'causal': ((k-1)*d, 0) */
    ALK_NN_PAD_EXPLICIT, /* `pads` per spatial axis (torch ints and tuples, Keras pairs) */
} alk_nn_padding;

/*
 * A sliding window over `rank` spatial axes: convolutions (forward and transposed) and pools.
 * alk_nn_window_init gives stride 1, dilation 1, VALID, one group, channels last.
 */
typedef struct alk_nn_window {
    size_t rank;                     /* spatial axes, 1..3 */
    size_t kernel[ALK_NN_MAX_RANK];  /* >= 1 */
    size_t strides[ALK_NN_MAX_RANK]; /* >= 1 */
    size_t dilation[ALK_NN_MAX_RANK];
    alk_nn_padding padding;
    size_t pads[ALK_NN_MAX_RANK][2]; /* (before, after), read for ALK_NN_PAD_EXPLICIT */
    /* Transposed convolutions: Keras's output_padding may be None (false here), which has a rule
     * of its own; torch always gives one (default 0). */
    bool has_output_padding;
    size_t output_padding[ALK_NN_MAX_RANK];
    size_t groups;       /* convolutions: >= 1, dividing both channel counts */
    bool channels_first; /* the input is (B, C, *S) (torch always, Keras data_format) */
    bool ceil_mode;      /* torch pools: ceil instead of floor in the output size */
} alk_nn_window;

/* Fills `w` (owned by the caller) for a window of `rank` axes with `kernel` sizes. */
void alk_nn_window_init(alk_nn_window *w, size_t rank, const size_t *kernel);

/* A window resolved for one input: per-axis sizes and pads the patch gathers use. */
typedef struct alk_nn_geometry {
    size_t rank;
    size_t in[ALK_NN_MAX_RANK];  /* spatial input sizes */
    size_t out[ALK_NN_MAX_RANK]; /* spatial output sizes */
    /* Forward: output o, tap t reads input o*s + t*d - before. Transposed: it reads input
     * (o + before - t*d)/s when exact. `after` is the padding that gives `out`, before any extra
     * taps that ceil_mode adds beyond it (torch counts only these as padding). */
    size_t before[ALK_NN_MAX_RANK];
    size_t after[ALK_NN_MAX_RANK];
} alk_nn_geometry;

/*
 * Resolves `w` for spatial input sizes `in` (w->rank entries). Forward windows: VALID, SAME
 * (TF rule: out = ceil(n/s), total = max(0, (out-1)*s + (k-1)*d + 1 - n), before = total/2),
 * CAUSAL or EXPLICIT, then out = (n + before + after - (k-1)*d - 1)/s + 1, or with ceil_mode
 * torch's rule (ceil, minus one when the last window would start in the right padding).
 * Transposed windows (`transposed`): Keras's rule as its JAX and TensorFlow back-ends compute it,
 * with k' = (k-1)*d + 1: VALID gives (n-1)*s + k' + op with op = output_padding or, when None,
 * max(k', s) - k'; SAME gives n*s when output_padding is None, else (n-1)*s + k'%2 + op, reading
 * from before = max(0, (k'-s)/2) (resp. k' - 1 - min(ceil(p/2), k'-1), p = k' + k'%2 - 2 + op);
 * EXPLICIT (torch) gives (n-1)*s - before - after + k' + op. The reference's 'valid' with k' < s
 * and 'same' with an output_padding give other sizes [quirk, frontends §2.2]: this follows Keras.
 * Records EINVAL naming the axis when a size is zero or the window does not fit.
 */
int alk_nn_window_resolve(alk_trace *t, const alk_nn_window *w, const size_t *in, bool transposed,
                          alk_nn_geometry *ret_geometry);

/* ---- Layout helpers ---------------------------------------------------------------------- */

/* (B, C, *S) -> (B, *S, C) and back (views: free). */
alk_fva *alk_nn_to_channels_last(alk_trace *t, const alk_fva *x);
alk_fva *alk_nn_to_channels_first(alk_trace *t, const alk_fva *x);

/* A numeric vector (any shape, `n` elements) reshaped so it broadcasts against an array of
 * `ndim` axes with `shape` along `axes` (n_axes entries, negatives count from the end, in
 * ascending order after normalisation, as Keras's BatchNormalization and Normalization reshape
 * their constants): shape 1 elsewhere. EINVAL when n differs from the product of those axes. */
alk_fva *alk_nn_on_axes(alk_trace *t, const alk_fva *vector, size_t ndim, const size_t *shape,
                        const int *axes, size_t n_axes);

/* torch weights (A, B, *K) -> Keras layout (*K, B, A): a conv weight (Cout, Cin/g, *K) becomes
 * (*K, Cin/g, Cout), a transposed conv weight (Cin, Cout/g, *K) becomes (*K, Cout/g, Cin). */
alk_fva *alk_nn_torch_kernel(alk_trace *t, const alk_fva *weight);

/* ---- Dense and convolutions (§2.2, §4.3) ------------------------------------------------- */

/* Keras Dense: einsum('...c,cC->...C', x, kernel) + bias (kernel (Cin, U); bias (U) or NULL). */
alk_fva *alk_nn_dense(alk_trace *t, const alk_fva *x, const alk_fva *kernel, const alk_fva *bias);
/* Keras EinsumDense: einsum(equation, x, kernel) + bias with the bias broadcast as stored. */
alk_fva *alk_nn_einsum_dense(alk_trace *t, const char *equation, const alk_fva *x,
                             const alk_fva *kernel, const alk_fva *bias);
/*
 * Keras's Dot layer (and HGQ2's QDot): einsum of the two inputs with the equation the reference
 * builds: letters a.. for a (rank r0), b shares a's first (batch) letter and takes fresh ones for
 * the rest, the contracted axes (axis0 mod r0, axis1 mod r1) share a's letter; the output is a's
 * letters without it, then b's non-batch letters without it ((B,4,3), (B,4,5), axes 1:
 * 'abc,abe->ace'). Keras's `normalize` is not applied (a cosine similarity is not exact):
 * frontends should refuse normalize=True.
 */
alk_fva *alk_nn_dot(alk_trace *t, const alk_fva *a, const alk_fva *b, int64_t axis0, int64_t axis1);
/* torch Linear / F.linear: x @ weight.T + bias (weight (out, in)). */
alk_fva *alk_nn_linear(alk_trace *t, const alk_fva *x, const alk_fva *weight, const alk_fva *bias);

/*
 * N-D convolution with groups and dilation: patches (zero padding) -> (..., K_vol, g, Cin/g),
 * kernel (*K, Cin/g, Cout) in Keras layout -> (K_vol, g, Cin/g, Cout/g) (output channels blocked
 * by group), einsum('...kgc,kgco->...go'), flattened, + bias (Cout) or NULL. The window's
 * padding is Keras's or torch's (torch ints and tuples are EXPLICIT pairs, its 'same' is SAME).
 * Keras's 'causal' is supported (the reference refuses it).
 */
alk_fva *alk_nn_conv(alk_trace *t, const alk_fva *x, const alk_nn_window *w, const alk_fva *kernel,
                     const alk_fva *bias);
/* Keras DepthwiseConv: kernel (*K, Cin, depth_multiplier) runs as the grouped convolution with
 * g = Cin (output channel c*dm + m); w->groups is ignored. */
alk_fva *alk_nn_depthwise_conv(alk_trace *t, const alk_fva *x, const alk_nn_window *w,
                               const alk_fva *kernel, const alk_fva *bias);
/*
 * Transposed convolution: transposed patches -> (..., K_vol, g, Cin/g), kernel (*K, Cout/g, Cin)
 * (Keras's (*K, Cout, Cin) for one group; alk_nn_torch_kernel of torch's (Cin, Cout/g, *K)) ->
 * (K_vol, g, Cin/g, Cout/g), the grouped einsum, + bias. No kernel flip. Sizes: see
 * alk_nn_window_resolve (transposed).
 */
alk_fva *alk_nn_conv_transpose(alk_trace *t, const alk_fva *x, const alk_nn_window *w,
                               const alk_fva *kernel, const alk_fva *bias);

/* ---- Pools (§2.2, §4.3, §4.4) ------------------------------------------------------------ */

typedef enum alk_nn_pool_kind { ALK_NN_POOL_MAX, ALK_NN_POOL_AVG } alk_nn_pool_kind;

/*
 * A pooling window (groups ignored). Max: taps outside the input are the constant -2147483648,
 * then a max tree (exact). Average: the patch sum (zero padding) times the float64 reciprocal of
 * the divisor: `divisor_override` when not 0, else the count of taps inside the input
 * (count_include_pad false: TF/Keras 'same', torch's option) or inside the padded input
 * (count_include_pad true: torch's default; ceil_mode's extra taps never count). Without padding
 * both counts are K_vol. The reference ignores the torch module's count_include_pad, ceil_mode and
 * divisor_override [quirk §8.4]: this follows torch.
 */
typedef struct alk_nn_pool {
    alk_nn_window window;
    alk_nn_pool_kind kind;
    bool count_include_pad;
    size_t divisor_override;
} alk_nn_pool;

alk_fva *alk_nn_pool_apply(alk_trace *t, const alk_fva *x, const alk_nn_pool *pool);

/* Global pools over every spatial axis (rank = ndim - 2; channels last or first): max, or the
 * sum times 1/prod(spatial sizes). Keras's keepdims, torch's adaptive pools with output 1
 * (keepdims true; the reference drops the kept axes of the average [quirk §8.3]: pass false to
 * reproduce that shape). */
alk_fva *alk_nn_global_pool(alk_trace *t, const alk_fva *x, alk_nn_pool_kind kind,
                            bool channels_first, bool keepdims);

/* ---- Normalisation (§2.2, §4.3) ---------------------------------------------------------- */

/*
 * Batch-norm folding in IEEE float32: scale = gamma / sqrt(var + eps), offset = beta - mean*scale,
 * each operation rounded to float32, eps rounded to float32 before the addition (numpy and Keras
 * promote a Python float against float32 arrays so). gamma NULL = 1 (Keras scale=False, torch
 * affine=False), beta NULL = 0. All vectors have the same size; returns the two numeric vectors
 * (shape of mean) through ret_*, or EINVAL naming the mismatching one.
 */
int alk_nn_batchnorm_fold(alk_trace *t, const alk_fva *gamma, const alk_fva *beta,
                          const alk_fva *mean, const alk_fva *var, double eps, alk_fva **ret_scale,
                          alk_fva **ret_offset);
/* Keras Normalization in float32: std = max(sqrt(var), 1e-7f); invert: (std, mean); else
 * (1/std, -mean * (1/std)) — the reference's x * (1/std) form [quirk: Keras divides]. */
int alk_nn_normalization_fold(alk_trace *t, const alk_fva *mean, const alk_fva *var, bool invert,
                              alk_fva **ret_scale, alk_fva **ret_offset);
/* x * scale + offset with both vectors placed on `axes` (alk_nn_on_axes). */
alk_fva *alk_nn_scale_offset(alk_trace *t, const alk_fva *x, const alk_fva *scale,
                             const alk_fva *offset, const int *axes, size_t n_axes);

/* ---- Activations (§2.3, §4.5) ------------------------------------------------------------ */

/* One activation of a name map: exact (lowered with adders and muxes) or a table function
 * (alk_fva_apply: a pending array the next quantizer tabulates). */
typedef struct alk_nn_activation {
    const char *name;
    alk_fva *(*exact)(alk_trace *t, const alk_fva *x); /* NULL for table functions */
    alk_unary_fn fn;                                   /* table functions */
} alk_nn_activation;

/* The Keras activation map (§2.3; aliases swish, hard_swish) and the torch unary map (§4.5), as
 * tables of `*ret_n` rows: frontends register names from them. */
const alk_nn_activation *alk_nn_keras_activations(size_t *ret_n);
const alk_nn_activation *alk_nn_torch_unary(size_t *ret_n);
/* The row of `name`, or NULL. */
const alk_nn_activation *alk_nn_find_activation(const alk_nn_activation *table, size_t n,
                                                const char *name);
alk_fva *alk_nn_activation_apply(alk_trace *t, const alk_nn_activation *act, const alk_fva *x);

/*
 * Applies the Keras activation `name` (NULL or "linear": identity). `softmax` fails with
 * "softmax is not supported as an activation ..."; an unknown name fails naming it: with `strict`
 * (a layer's activation attribute) as unsupported, else (an Activation layer, the lenient map) as
 * a function alkaid cannot evaluate (the reference runs it through Keras on the table grid).
 */
alk_fva *alk_nn_keras_activate(alk_trace *t, const char *name, bool strict, const alk_fva *x);
/* Applies the torch unary map entry `name`; unknown names fail naming it. */
alk_fva *alk_nn_torch_activate(alk_trace *t, const char *name, const alk_fva *x);

/*
 * The general ReLU of Keras's ReLU layer and op, LeakyReLU and PReLU, and torch's LeakyReLU/PReLU:
 * x > threshold -> min(x, max_value) (or x; clip(x, 0, max_value) above a negative threshold, as
 * Keras's ReLU op computes and the reference does not); else (x - threshold) * slope, with slope
 * the number `negative_slope` or, when `alpha` is given, that numeric array (PReLU; broadcast
 * against x).
 * Threshold 0, slope 0 and no maximum is the exact relu. The condition is the reference's
 * x - (th + 2^(-f-1)) < 0 on each element's grid (f its fractional bits), with th rounded down to
 * that grid first so that it means x <= th as Keras does also for a threshold between grid points.
 * The output has x's shape (the reference adds a leading axis and fails on rank >= 3 [quirk]).
 */
typedef struct alk_nn_relu {
    double threshold;
    double negative_slope;
    const alk_fva *alpha; /* NULL: negative_slope */
    bool has_max;
    double max_value;
} alk_nn_relu;

alk_fva *alk_nn_relu_apply(alk_trace *t, const alk_fva *x, const alk_nn_relu *spec);

/* ---- Spatial and index layers (§2.2, §4.3, §4.4) ----------------------------------------- */

/* np.pad of the spatial axes (rank = ndim - 2) with one (before, after) pair per spatial axis;
 * batch and channel axes are not padded. */
alk_fva *alk_nn_pad_spatial(alk_trace *t, const alk_fva *x, bool channels_first,
                            const size_t (*pads)[2], alk_pad_mode mode, double value);
/* Cropping: each spatial axis sliced [before, size - after). */
alk_fva *alk_nn_crop_spatial(alk_trace *t, const alk_fva *x, bool channels_first,
                             const size_t (*crops)[2]);
/* Nearest upsampling: each spatial axis repeated scale[i] times (element repeat). */
alk_fva *alk_nn_upsample_nearest(alk_trace *t, const alk_fva *x, bool channels_first,
                                 const size_t *scale);
/* torch pixel shuffle (N, C*r^R, *S) -> (N, C, S0*r, ...) and its inverse (channels first). */
alk_fva *alk_nn_pixel_shuffle(alk_trace *t, const alk_fva *x, size_t r);
alk_fva *alk_nn_pixel_unshuffle(alk_trace *t, const alk_fva *x, size_t r);

/* Embedding: for each column d of `table` (V, D) a lookup of x (float values truncated toward
 * zero, clipped to [0, V-1]) keeping the table's float values; stacked on a new last axis. */
alk_fva *alk_nn_embedding(alk_trace *t, const alk_fva *x, const alk_fva *table);

typedef enum alk_nn_category_mode {
    ALK_NN_ONE_HOT,   /* (x == c) for c < V, stacked on a new last axis */
    ALK_NN_MULTI_HOT, /* count > 0 */
    ALK_NN_COUNT,     /* the one-hot stack summed over axis -2 */
} alk_nn_category_mode;

alk_fva *alk_nn_category_encoding(alk_trace *t, const alk_fva *x, size_t num_tokens,
                                  alk_nn_category_mode mode);

/* ---- The HGQ2 quantizer (§3.1, §3.3) ----------------------------------------------------- */

typedef enum alk_hgq_kind { ALK_HGQ_KBI, ALK_HGQ_KIF } alk_hgq_kind;

/*
 * One HGQ2 fixed-point quantizer (a `Quantizer` layer with its internal
 * FixedPointQuantizerKBI/KIF). k, b, i, f are numeric arrays of the stored weights (KBI: k, b, i;
 * KIF: k, i, f; the other one NULL), shaped like the quantized tensor with 1 on homogeneous axes;
 * they broadcast (numpy rules) against the tensor. alk_hgq_init fills the modes from the config
 * strings.
 */
typedef struct alk_hgq_quantizer {
    alk_hgq_kind kind;
    alk_round round;       /* S_RND / S_RND_CONV mapped to RND / RND_CONV (inference) */
    alk_overflow overflow; /* WRAP_SM is refused */
    bool is_weight;
    bool trainable;
    bool has_scaler;
    double scaler;
    bool has_affine;
    double affine[2]; /* x * affine[0] + affine[1] */
    const alk_fva *k, *b, *i, *f;
} alk_hgq_quantizer;

/* Fills `q` (owned by the caller; arrays NULL, flags false) from the config's q_type ("kbi",
 * "kif"), round_mode and overflow_mode; EINVAL naming the value for float/dummy quantizers,
 * WRAP_SM and unknown modes. */
int alk_hgq_init(alk_trace *t, alk_hgq_quantizer *q, const char *q_type, const char *round_mode,
                 const char *overflow_mode);

/* The effective integers, as numeric arrays of the stored shape: k; KBI round_half_even(b) and
 * round_half_even(i), f = b - i; KIF round_half_even(i), round_half_even(f) (float32 values). */
int alk_hgq_kif(alk_trace *t, const alk_hgq_quantizer *q, alk_fva **ret_k, alk_fva **ret_i,
                alk_fva **ret_f);

/*
 * The tracer's mirror_quantizer for an activation quantizer: x * (1/scaler) if scaled, the
 * symbolic quantize with k, i, f broadcast to x (alk_fva_quantize_kif; on a pending array it folds
 * into the table), then * scaler, then * affine[0] + affine[1]. The reference omits the final
 * * scaler although the Keras model multiplies back [quirk §3.1]: this computes what Keras does.
 * A trainable WRAP quantizer with is_weight (KBI: with RND) only rounds in Keras, on activations
 * too: x * 2^f rounded, * 2^-f, without wrap or pruning (the reference applies the full Q).
 */
alk_fva *alk_hgq_mirror(alk_trace *t, const alk_hgq_quantizer *q, const alk_fva *x);

/*
 * The Keras-side quantizer on a numeric array, in float32 as HGQ2 computes qkernel/qbias: x/scaler,
 * the internal quantizer at inference — round only (no wrap, no zeroing) for a trainable WRAP
 * weight quantizer (KBI: with RND rounding only; KIF: any rounding), else the full Q of §3.1 —
 * then * scaler and * affine[0] + affine[1]. Returns a numeric array of w's shape.
 */
alk_fva *alk_hgq_quantize_weight(alk_trace *t, const alk_hgq_quantizer *q, const alk_fva *w);

/* QBatchNormDense (§3.3): s = gamma/sqrt(var + eps) (gamma NULL = 1), qkernel = kq(s[:,None] *
 * kernel), qbias = bq(bias - mean @ kernel) (HGQ2's formula: the offset is not scaled by s); the
 * float32 dot product is rounded once from its exact value (Keras leaves its order to the
 * back-end). kernel (Cin, U), bias (U), the BN vectors (Cin). */
int alk_hgq_fold_dense_bn(alk_trace *t, const alk_hgq_quantizer *kq, const alk_hgq_quantizer *bq,
                          const alk_fva *kernel, const alk_fva *bias, const alk_fva *gamma,
                          const alk_fva *mean, const alk_fva *var, double eps, alk_fva **ret_kernel,
                          alk_fva **ret_bias);
/*
 * QEinsumDenseBatchnorm (§3.3): s = gamma/sqrt(var + 1e-7f) (Keras's global epsilon, not the
 * layer's); qkernel = kq(kernel * s) with s's axes the normalize axes ordered as in the kernel
 * (`kernel_axes`, `norm_axes` letters; the fused equation kernel_axes,norm_axes->kernel_axes);
 * qbias = bq(bias + reshape(-mean * s, cast_shape)) with numpy broadcasting (cast_shape NULL:
 * the bias's shape, which Keras's analysis gives when normalize_axes = bias_axes).
 */
int alk_hgq_fold_einsum_bn(alk_trace *t, const alk_hgq_quantizer *kq, const alk_hgq_quantizer *bq,
                           const char *kernel_axes, const char *norm_axes, const alk_fva *kernel,
                           const alk_fva *bias, const alk_fva *gamma, const alk_fva *mean,
                           const alk_fva *var, size_t cast_ndim, const size_t *cast_shape,
                           alk_fva **ret_kernel, alk_fva **ret_bias);
/* QBatchNormalization (§3.3): qscale = kq(gamma/sqrt(var + eps)), qoffset = bq(beta - mean *
 * scale); gamma NULL = 1; `center` false uses beta = 1 (HGQ2's own code; the model computes it). */
int alk_hgq_fold_bn(alk_trace *t, const alk_hgq_quantizer *kq, const alk_hgq_quantizer *bq,
                    const alk_fva *gamma, const alk_fva *beta, bool center, const alk_fva *mean,
                    const alk_fva *var, double eps, alk_fva **ret_scale, alk_fva **ret_offset);

#endif
