/*
 * Test helper for test_nn.py: traces the layer kernels of src/nn on cases the Python side
 * describes, and writes one ALIR program per group of cases. test_nn.py draws the cases (shapes,
 * windows, weights), runs the programs with `alkaidc run` and compares them with numpy and torch.
 *
 * Usage: nn_gen CASES.json OUTDIR
 *
 * CASES.json: {"groups": [{"name": G, "cases": [CASE, ...]}, ...]}. Every case has an "op", an
 * input "x": {"shape": [...], "k": K, "i": I, "f": F} (one format for all elements) and the op's
 * parameters (below). A group traces all its cases in one program: the inputs are concatenated in
 * case order, so are the outputs. OUTDIR/G.json is the program and OUTDIR/G.shapes.json the list of
 * output shapes. An error names the case; the exit status is 1.
 *
 * Arrays are {"shape": [...], "data": [...]} (C order); a window is {"kernel", "strides",
 * "dilation", "padding": "valid"|"same"|"causal"|[[b, a], ...], "output_padding": null|[...],
 * "groups", "channels_first", "ceil_mode"}.
 */
#include "alir/json.h"
#include "core/alloc.h"
#include "nn/nn.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* ---- Reading the case description ---------------------------------------------------------- */

static size_t ints(json_t *list, size_t *out, size_t cap) {
    size_t n = json_array_size(list);
    for (size_t j = 0; j < n && j < cap; j++) {
        out[j] = (size_t)json_integer_value(json_array_get(list, j));
    }
    return n;
}

static alk_fva *numbers(alk_trace *t, json_t *spec) {
    if (spec == NULL || json_is_null(spec)) {
        return NULL;
    }
    size_t shape[ALK_FVA_MAX_DIM];
    size_t ndim = ints(json_object_get(spec, "shape"), shape, ALK_FVA_MAX_DIM);
    json_t *data = json_object_get(spec, "data");
    size_t n = json_array_size(data);
    double *values = alk_malloc((n ? n : 1) * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        values[j] = json_number_value(json_array_get(data, j));
    }
    alk_fva *a = alk_fva_numbers(t, ndim, shape, values);
    alk_free(values);
    return a;
}

static alk_fva *input(alk_trace *t, json_t *spec) {
    size_t shape[ALK_FVA_MAX_DIM], n = 1;
    size_t ndim = ints(json_object_get(spec, "shape"), shape, ALK_FVA_MAX_DIM);
    for (size_t d = 0; d < ndim; d++) {
        n *= shape[d];
    }
    int *k = alk_malloc(n * sizeof(int)), *i = alk_malloc(n * sizeof(int));
    int *f = alk_malloc(n * sizeof(int));
    for (size_t j = 0; j < n; j++) {
        k[j] = (int)json_integer_value(json_object_get(spec, "k"));
        i[j] = (int)json_integer_value(json_object_get(spec, "i"));
        f[j] = (int)json_integer_value(json_object_get(spec, "f"));
    }
    alk_fva *x = alk_fva_from_kif(t, ndim, shape, k, i, f);
    alk_free(k);
    alk_free(i);
    alk_free(f);
    return x;
}

static void window(json_t *spec, alk_nn_window *w) {
    size_t kernel[ALK_NN_MAX_RANK];
    size_t rank = ints(json_object_get(spec, "kernel"), kernel, ALK_NN_MAX_RANK);
    alk_nn_window_init(w, rank, kernel);
    if (json_object_get(spec, "strides") != NULL) {
        ints(json_object_get(spec, "strides"), w->strides, ALK_NN_MAX_RANK);
    }
    if (json_object_get(spec, "dilation") != NULL) {
        ints(json_object_get(spec, "dilation"), w->dilation, ALK_NN_MAX_RANK);
    }
    json_t *padding = json_object_get(spec, "padding");
    if (json_is_array(padding)) {
        w->padding = ALK_NN_PAD_EXPLICIT;
        for (size_t d = 0; d < json_array_size(padding) && d < ALK_NN_MAX_RANK; d++) {
            ints(json_array_get(padding, d), w->pads[d], 2);
        }
    } else if (json_is_string(padding)) {
        const char *p = json_string_value(padding);
        w->padding = strcmp(p, "same") == 0     ? ALK_NN_PAD_SAME
                     : strcmp(p, "causal") == 0 ? ALK_NN_PAD_CAUSAL
                                                : ALK_NN_PAD_VALID;
    }
    json_t *op = json_object_get(spec, "output_padding");
    if (json_is_array(op)) {
        w->has_output_padding = true;
        ints(op, w->output_padding, ALK_NN_MAX_RANK);
    }
    if (json_object_get(spec, "groups") != NULL) {
        w->groups = (size_t)json_integer_value(json_object_get(spec, "groups"));
    }
    w->channels_first = json_is_true(json_object_get(spec, "channels_first"));
    w->ceil_mode = json_is_true(json_object_get(spec, "ceil_mode"));
}

static const char *str(json_t *spec, const char *key) {
    return json_string_value(json_object_get(spec, key));
}

static double num(json_t *spec, const char *key) {
    return json_number_value(json_object_get(spec, key));
}

static bool flag(json_t *spec, const char *key) {
    return json_is_true(json_object_get(spec, key));
}

static size_t axes_of(json_t *spec, int *axes) {
    json_t *list = json_object_get(spec, "axes");
    size_t n = json_array_size(list);
    for (size_t j = 0; j < n && j < ALK_FVA_MAX_DIM; j++) {
        axes[j] = (int)json_integer_value(json_array_get(list, j));
    }
    return n;
}

static void pairs(json_t *list, size_t (*out)[2]) {
    for (size_t d = 0; d < json_array_size(list) && d < ALK_NN_MAX_RANK; d++) {
        ints(json_array_get(list, d), out[d], 2);
    }
}

static void quantizer(alk_trace *t, json_t *spec, alk_hgq_quantizer *q) {
    alk_hgq_init(t, q, str(spec, "q_type"), str(spec, "round_mode"), str(spec, "overflow_mode"));
    q->is_weight = flag(spec, "is_weight");
    q->trainable = flag(spec, "trainable");
    q->k = numbers(t, json_object_get(spec, "k"));
    q->b = numbers(t, json_object_get(spec, "b"));
    q->i = numbers(t, json_object_get(spec, "i"));
    q->f = numbers(t, json_object_get(spec, "f"));
    json_t *scaler = json_object_get(spec, "scaler");
    if (json_is_number(scaler)) {
        q->has_scaler = true;
        q->scaler = json_number_value(scaler);
    }
    json_t *affine = json_object_get(spec, "affine");
    if (json_is_array(affine)) {
        q->has_affine = true;
        q->affine[0] = json_number_value(json_array_get(affine, 0));
        q->affine[1] = json_number_value(json_array_get(affine, 1));
    }
}

/* ---- The ops ----------------------------------------------------------------------------------
 */

/* A convolution kernel: torch's layout moved to Keras's when the case says "torch". */
static alk_fva *kernel_of(alk_trace *t, json_t *c) {
    alk_fva *w = numbers(t, json_object_get(c, "kernel"));
    return flag(c, "torch") ? alk_nn_torch_kernel(t, w) : w;
}

static alk_fva *run_pool(alk_trace *t, json_t *c, alk_fva *x) {
    alk_nn_pool pool;
    window(json_object_get(c, "window"), &pool.window);
    pool.kind = strcmp(str(c, "kind"), "max") == 0 ? ALK_NN_POOL_MAX : ALK_NN_POOL_AVG;
    pool.count_include_pad = flag(c, "count_include_pad");
    pool.divisor_override = (size_t)json_integer_value(json_object_get(c, "divisor_override"));
    return alk_nn_pool_apply(t, x, &pool);
}

static alk_fva *run_relu(alk_trace *t, json_t *c, alk_fva *x) {
    alk_nn_relu spec = {num(c, "threshold"), num(c, "negative_slope"),
                        numbers(t, json_object_get(c, "alpha")), false, 0};
    if (json_is_number(json_object_get(c, "max_value"))) {
        spec.has_max = true;
        spec.max_value = num(c, "max_value");
    }
    return alk_nn_relu_apply(t, x, &spec);
}

static alk_pad_mode pad_mode(const char *name) {
    static const char *const modes[] = {"constant", "edge", "reflect", "symmetric", "wrap"};
    for (int m = 0; m < 5; m++) {
        if (strcmp(modes[m], name) == 0) {
            return (alk_pad_mode)m;
        }
    }
    return ALK_PAD_CONSTANT;
}

/* The batch norms: the fold, then x * scale + offset on the axes. */
static alk_fva *run_bn(alk_trace *t, json_t *c, alk_fva *x) {
    int axes[ALK_FVA_MAX_DIM];
    size_t n_axes = axes_of(c, axes);
    alk_fva *scale = NULL, *offset = NULL;
    const char *op = str(c, "op");
    alk_fva *mean = numbers(t, json_object_get(c, "mean"));
    alk_fva *var = numbers(t, json_object_get(c, "var"));
    if (strcmp(op, "bn") == 0) {
        alk_nn_batchnorm_fold(t, numbers(t, json_object_get(c, "gamma")),
                              numbers(t, json_object_get(c, "beta")), mean, var, num(c, "eps"),
                              &scale, &offset);
    } else if (strcmp(op, "normalization") == 0) {
        alk_nn_normalization_fold(t, mean, var, flag(c, "invert"), &scale, &offset);
    } else {
        alk_hgq_quantizer kq, bq;
        quantizer(t, json_object_get(c, "kq"), &kq);
        quantizer(t, json_object_get(c, "bq"), &bq);
        alk_hgq_fold_bn(t, &kq, &bq, numbers(t, json_object_get(c, "gamma")),
                        numbers(t, json_object_get(c, "beta")), flag(c, "center"), mean, var,
                        num(c, "eps"), &scale, &offset);
    }
    return alk_nn_scale_offset(t, x, scale, offset, axes, n_axes);
}

/* The fused HGQ2 dense layers, run as the Dense/EinsumDense body with qkernel and qbias. */
static alk_fva *run_hgq_fused(alk_trace *t, json_t *c, alk_fva *x) {
    alk_hgq_quantizer kq, bq;
    quantizer(t, json_object_get(c, "kq"), &kq);
    quantizer(t, json_object_get(c, "bq"), &bq);
    alk_fva *kernel = NULL, *bias = NULL;
    alk_fva *gamma = numbers(t, json_object_get(c, "gamma"));
    alk_fva *mean = numbers(t, json_object_get(c, "mean"));
    alk_fva *var = numbers(t, json_object_get(c, "var"));
    alk_fva *k = numbers(t, json_object_get(c, "kernel"));
    alk_fva *b = numbers(t, json_object_get(c, "bias"));
    if (strcmp(str(c, "op"), "hgq_dense_bn") == 0) {
        alk_hgq_fold_dense_bn(t, &kq, &bq, k, b, gamma, mean, var, num(c, "eps"), &kernel, &bias);
        return alk_nn_dense(t, x, kernel, bias);
    }
    size_t cast[ALK_FVA_MAX_DIM], n_cast = 0;
    json_t *cast_shape = json_object_get(c, "cast_shape");
    if (json_is_array(cast_shape)) {
        n_cast = ints(cast_shape, cast, ALK_FVA_MAX_DIM);
    }
    alk_hgq_fold_einsum_bn(t, &kq, &bq, str(c, "kernel_axes"), str(c, "norm_axes"), k, b, gamma,
                           mean, var, n_cast, json_is_array(cast_shape) ? cast : NULL, &kernel,
                           &bias);
    return alk_nn_einsum_dense(t, str(c, "equation"), x, kernel, bias);
}

static alk_fva *run_case(alk_trace *t, json_t *c, alk_fva *x) {
    const char *op = str(c, "op");
    alk_nn_window w;
    window(json_object_get(c, "window"), &w);
    if (strcmp(op, "dense") == 0) {
        return alk_nn_dense(t, x, kernel_of(t, c), numbers(t, json_object_get(c, "bias")));
    }
    if (strcmp(op, "einsum_dense") == 0) {
        return alk_nn_einsum_dense(t, str(c, "equation"), x, kernel_of(t, c),
                                   numbers(t, json_object_get(c, "bias")));
    }
    if (strcmp(op, "dot") == 0) {
        /* Two operands cut from one input (1, n): the first prod(a_shape) values and the rest. */
        int64_t sa[ALK_FVA_MAX_DIM], sb[ALK_FVA_MAX_DIM];
        size_t shape[ALK_FVA_MAX_DIM], na = 1;
        size_t ra = ints(json_object_get(c, "a_shape"), shape, ALK_FVA_MAX_DIM);
        for (size_t d = 0; d < ra; d++) {
            sa[d] = (int64_t)shape[d];
            na *= shape[d];
        }
        size_t rb = ints(json_object_get(c, "b_shape"), shape, ALK_FVA_MAX_DIM);
        for (size_t d = 0; d < rb; d++) {
            sb[d] = (int64_t)shape[d];
        }
        alk_index first[2] = {ALK_ALL, ALK_SLICE(0, (int64_t)na, ALK_FV_NONE)};
        alk_index rest[2] = {ALK_ALL, ALK_SLICE((int64_t)na, ALK_FV_NONE, ALK_FV_NONE)};
        alk_fva *a = alk_fva_reshape(t, alk_fva_index(t, x, first, 2), ra, sa);
        alk_fva *b = alk_fva_reshape(t, alk_fva_index(t, x, rest, 2), rb, sb);
        return alk_nn_dot(t, a, b, (int)num(c, "axis0"), (int)num(c, "axis1"));
    }
    if (strcmp(op, "linear") == 0) {
        return alk_nn_linear(t, x, numbers(t, json_object_get(c, "kernel")),
                             numbers(t, json_object_get(c, "bias")));
    }
    if (strcmp(op, "conv") == 0) {
        return alk_nn_conv(t, x, &w, kernel_of(t, c), numbers(t, json_object_get(c, "bias")));
    }
    if (strcmp(op, "depthwise") == 0) {
        return alk_nn_depthwise_conv(t, x, &w, kernel_of(t, c),
                                     numbers(t, json_object_get(c, "bias")));
    }
    if (strcmp(op, "conv_transpose") == 0) {
        return alk_nn_conv_transpose(t, x, &w, kernel_of(t, c),
                                     numbers(t, json_object_get(c, "bias")));
    }
    if (strcmp(op, "pool") == 0) {
        return run_pool(t, c, x);
    }
    if (strcmp(op, "global_pool") == 0) {
        return alk_nn_global_pool(
            t, x, strcmp(str(c, "kind"), "max") == 0 ? ALK_NN_POOL_MAX : ALK_NN_POOL_AVG,
            flag(c, "channels_first"), flag(c, "keepdims"));
    }
    if (strcmp(op, "bn") == 0 || strcmp(op, "normalization") == 0 || strcmp(op, "hgq_bn") == 0) {
        return run_bn(t, c, x);
    }
    if (strcmp(op, "relu") == 0) {
        return run_relu(t, c, x);
    }
    if (strcmp(op, "activation") == 0) {
        /* An exact activation as is; a table one is quantized as round(f(x) * scale). */
        alk_fva *y = strcmp(str(c, "map"), "keras") == 0
                         ? alk_nn_keras_activate(t, str(c, "act"), true, x)
                         : alk_nn_torch_activate(t, str(c, "act"), x);
        if (y != NULL && alk_fva_is_pending(y)) {
            y = alk_fva_unary(t, ALK_ROUND, alk_fva_binary_scalar(t, ALK_MUL, y, num(c, "scale")));
        }
        return y;
    }
    size_t pads[ALK_NN_MAX_RANK][2] = {{0}};
    if (strcmp(op, "pad") == 0) {
        pairs(json_object_get(c, "pads"), pads);
        return alk_nn_pad_spatial(t, x, flag(c, "channels_first"), (const size_t(*)[2])pads,
                                  pad_mode(str(c, "mode")), num(c, "value"));
    }
    if (strcmp(op, "crop") == 0) {
        pairs(json_object_get(c, "crops"), pads);
        return alk_nn_crop_spatial(t, x, flag(c, "channels_first"), (const size_t(*)[2])pads);
    }
    if (strcmp(op, "upsample") == 0) {
        size_t scale[ALK_NN_MAX_RANK];
        ints(json_object_get(c, "scale"), scale, ALK_NN_MAX_RANK);
        return alk_nn_upsample_nearest(t, x, flag(c, "channels_first"), scale);
    }
    if (strcmp(op, "pixel_shuffle") == 0) {
        return alk_nn_pixel_shuffle(t, x, (size_t)num(c, "r"));
    }
    if (strcmp(op, "pixel_unshuffle") == 0) {
        return alk_nn_pixel_unshuffle(t, x, (size_t)num(c, "r"));
    }
    if (strcmp(op, "embedding") == 0) {
        return alk_nn_embedding(t, x, numbers(t, json_object_get(c, "table")));
    }
    if (strcmp(op, "category") == 0) {
        const char *mode = str(c, "mode");
        return alk_nn_category_encoding(t, x, (size_t)num(c, "num_tokens"),
                                        strcmp(mode, "one_hot") == 0     ? ALK_NN_ONE_HOT
                                        : strcmp(mode, "multi_hot") == 0 ? ALK_NN_MULTI_HOT
                                                                         : ALK_NN_COUNT);
    }
    if (strcmp(op, "hgq_mirror") == 0) {
        alk_hgq_quantizer q;
        quantizer(t, json_object_get(c, "q"), &q);
        return alk_hgq_mirror(t, &q, x);
    }
    if (strcmp(op, "act_then_mirror") == 0) {
        /* A Keras activation (pending) quantized by the next layer's HGQ2 input quantizer. */
        alk_hgq_quantizer q;
        quantizer(t, json_object_get(c, "q"), &q);
        return alk_hgq_mirror(t, &q, alk_nn_keras_activate(t, str(c, "act"), true, x));
    }
    if (strcmp(op, "hgq_weight") == 0) {
        /* The quantized weight enters the program as x + qw (x has w's shape): a constant
         * addition keeps every bit of a float32, where a product by a 24-bit constant may not
         * (see test_nn.py). */
        alk_hgq_quantizer q;
        quantizer(t, json_object_get(c, "q"), &q);
        return alk_fva_binary(t, ALK_ADD, x,
                              alk_hgq_quantize_weight(t, &q, numbers(t, json_object_get(c, "w"))));
    }
    if (strcmp(op, "hgq_dense_bn") == 0 || strcmp(op, "hgq_einsum_bn") == 0) {
        return run_hgq_fused(t, c, x);
    }
    alk_trace_fail(t, ALK_EINVAL, "unknown op '%s'", op);
    return NULL;
}

/* ---- Groups -----------------------------------------------------------------------------------
 */

static int write_shapes(const char *path, alk_fva *const *outputs, size_t n) {
    json_t *list = json_array();
    for (size_t j = 0; j < n; j++) {
        json_t *shape = json_array();
        for (size_t d = 0; d < alk_fva_ndim(outputs[j]); d++) {
            json_array_append_new(shape, json_integer((json_int_t)alk_fva_shape(outputs[j])[d]));
        }
        json_array_append_new(list, shape);
    }
    int rv = json_dump_file(list, path, 0);
    json_decref(list);
    return rv == 0 ? 0 : 1;
}

static int run_group(json_t *group, const char *outdir) {
    const char *name = str(group, "name");
    json_t *cases = json_object_get(group, "cases");
    size_t n = json_array_size(cases);
    alk_trace *t = NULL;
    if (alk_trace_new(NULL, &t) != ALK_OK) {
        return 1;
    }
    alk_fva **inputs = alk_calloc(n, sizeof(alk_fva *));
    alk_fva **outputs = alk_calloc(n, sizeof(alk_fva *));
    int status = 1;
    for (size_t j = 0; j < n; j++) {
        json_t *c = json_array_get(cases, j);
        inputs[j] = input(t, json_object_get(c, "x"));
        outputs[j] = run_case(t, c, inputs[j]);
        if (outputs[j] == NULL || alk_trace_error(t) != ALK_OK) {
            fprintf(stderr, "%s/%s: %s\n", name, str(c, "name"), alk_trace_message(t));
            goto done;
        }
    }
    alk_program *program = NULL;
    alk_diag diag = {{0}};
    char path[4096];
    int rv = alk_fva_trace(t, inputs, n, outputs, n, true, &program);
    if (rv == ALK_OK) {
        snprintf(path, sizeof(path), "%s/%s.json", outdir, name);
        rv = alk_alir_write_file(program, path, &diag);
    }
    alk_program_free(program);
    if (rv != ALK_OK) {
        fprintf(stderr, "%s: %s %s\n", name, alk_trace_message(t), diag.message);
        goto done;
    }
    snprintf(path, sizeof(path), "%s/%s.shapes.json", outdir, name);
    status = write_shapes(path, outputs, n);
done:
    alk_free(inputs);
    alk_free(outputs);
    alk_trace_free(t);
    return status;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: nn_gen CASES.json OUTDIR\n");
        return 2;
    }
    json_error_t error;
    json_t *root = json_load_file(argv[1], 0, &error);
    if (root == NULL) {
        fprintf(stderr, "%s: %s\n", argv[1], error.text);
        return 2;
    }
    json_t *groups = json_object_get(root, "groups");
    int status = 0;
    for (size_t g = 0; g < json_array_size(groups); g++) {
        status |= run_group(json_array_get(groups, g), argv[2]);
    }
    json_decref(root);
    return status;
}
