/*
 * The keras tracer's descriptor and handler table: one row per built-in Keras class and op it
 * replays (spec frontends.md §2.2, §2.3), keyed by (module, class) as a config names them. Keras 3
 * names public layers `keras.layers` and ops by their source module; Keras 2 configs have no module
 * and are dispatched as `keras.layers`. Second-level plugins reuse any body with
 * alk_op_delegate(op, "keras.layers", "Dense") and alk_op_set_weight overrides.
 *
 * `weights` is the layer's saved order (`vars/N` of a .keras file): the kernel first, then
 * the bias when use_bias; batch-norm's gamma when scale, beta when center, then the moving
 * statistics; an adapted Normalization's mean, variance and count.
 *
 * The no-op layers are Keras's classes whose name contains dropout, random or noise (the
 * reference's rule, keras.layers of Keras 3.16) plus Identity: the input itself at inference.
 */
#include "plugins/keras/keras_int.h"

static const size_t rank1 = 1, rank2 = 2, rank3 = 3;

static const keras_pool_spec max1 = {ALK_NN_POOL_MAX, 1}, max2 = {ALK_NN_POOL_MAX, 2},
                             max3 = {ALK_NN_POOL_MAX, 3}, avg1 = {ALK_NN_POOL_AVG, 1},
                             avg2 = {ALK_NN_POOL_AVG, 2}, avg3 = {ALK_NN_POOL_AVG, 3};
static const alk_nn_pool_kind pool_max = ALK_NN_POOL_MAX, pool_avg = ALK_NN_POOL_AVG;

static const keras_merge_kind merge_add = KERAS_MERGE_ADD, merge_sub = KERAS_MERGE_SUBTRACT,
                              merge_mul = KERAS_MERGE_MULTIPLY, merge_max = KERAS_MERGE_MAXIMUM,
                              merge_min = KERAS_MERGE_MINIMUM, merge_avg = KERAS_MERGE_AVERAGE;

static const alk_binop op_add = ALK_ADD, op_sub = ALK_SUB, op_mul = ALK_MUL,
                       op_maximum = ALK_MAXIMUM, op_minimum = ALK_MINIMUM, op_eq = ALK_EQUAL,
                       op_gt = ALK_GREATER, op_ge = ALK_GREATER_EQUAL, op_lt = ALK_LESS,
                       op_le = ALK_LESS_EQUAL;

static const alk_reduce_op red_sum = ALK_REDUCE_SUM, red_max = ALK_REDUCE_MAX,
                           red_min = ALK_REDUCE_MIN, red_prod = ALK_REDUCE_PROD,
                           red_mean = ALK_REDUCE_MEAN, red_all = ALK_REDUCE_ALL,
                           red_any = ALK_REDUCE_ANY, red_count = ALK_REDUCE_COUNT_NONZERO,
                           red_argmax = ALK_REDUCE_ARGMAX, red_argmin = ALK_REDUCE_ARGMIN;

static const alk_unop un_abs = ALK_ABSOLUTE, un_neg = ALK_NEGATIVE, un_sign = ALK_SIGN,
                      un_signbit = ALK_SIGNBIT, un_floor = ALK_FLOOR, un_ceil = ALK_CEIL,
                      un_round = ALK_ROUND;

static const alk_unary_fn fn_sin = ALK_FN_SIN, fn_cos = ALK_FN_COS, fn_tan = ALK_FN_TAN,
                          fn_exp = ALK_FN_EXP, fn_log = ALK_FN_LOG, fn_sqrt = ALK_FN_SQRT,
                          fn_sinh = ALK_FN_SINH, fn_cosh = ALK_FN_COSH, fn_tanh = ALK_FN_TANH,
                          fn_arccos = ALK_FN_ARCCOS, fn_arcsin = ALK_FN_ARCSIN,
                          fn_arctanh = ALK_FN_ARCTANH, fn_arcsinh = ALK_FN_ARCSINH,
                          fn_expm1 = ALK_FN_EXPM1, fn_log1p = ALK_FN_LOG1P,
                          fn_sigmoid = ALK_FN_SIGMOID, fn_silu = ALK_FN_SILU,
                          fn_hard_sigmoid = ALK_FN_HARD_SIGMOID, fn_hard_silu = ALK_FN_HARD_SILU,
                          fn_selu = ALK_FN_SELU;

#define L "keras.layers"
#define NP "keras.src.ops.numpy"
#define NN "keras.src.ops.nn"
#define IMG "keras.src.ops.image"
#define ACT "keras.src.activations.activations"
#define OWN ALK_OP_OWN_ACTIVATION

/* Rows are written through these macros (one per kind of call); clang-format keeps one per
 * line because every use ends with a comma. A layer of one input (and its activation step). */
#define LAYER(name, fn, arg, weights)                                                              \
    { L, name, fn, arg, 0, 1, 1, "inputs", weights }
/* A layer whose body is the whole call (no activation attribute to apply). */
#define PLAIN(name, fn, arg)                                                                       \
    { L, name, fn, arg, OWN, 1, 1, "inputs", NULL }
#define NOOP(name) PLAIN(name, keras_identity, NULL)
/* An op of one tensor. */
#define OP1(module, name, fn, arg)                                                                 \
    { module, name, fn, arg, OWN, 1, 1, "x", NULL }
/* An op of two operands (tensors or constants). */
#define OP2(name, fn, arg)                                                                         \
    { NP, name, fn, arg, OWN, 2, 2, "x1 x2", NULL }

#define CONV_WEIGHTS "kernel bias:use_bias"

static const alk_op_def keras_ops[] = {
    /* ---- keras.layers: computing layers ---- */
    LAYER("Dense", keras_dense, NULL, CONV_WEIGHTS),
    LAYER("EinsumDense", keras_einsum_dense, NULL, "kernel bias"),
    LAYER("Conv1D", keras_conv, &rank1, CONV_WEIGHTS),
    LAYER("Conv2D", keras_conv, &rank2, CONV_WEIGHTS),
    LAYER("Conv3D", keras_conv, &rank3, CONV_WEIGHTS),
    LAYER("DepthwiseConv1D", keras_depthwise_conv, &rank1, CONV_WEIGHTS),
    LAYER("DepthwiseConv2D", keras_depthwise_conv, &rank2, CONV_WEIGHTS),
    LAYER("Conv1DTranspose", keras_conv_transpose, &rank1, CONV_WEIGHTS),
    LAYER("Conv2DTranspose", keras_conv_transpose, &rank2, CONV_WEIGHTS),
    LAYER("Conv3DTranspose", keras_conv_transpose, &rank3, CONV_WEIGHTS),
    LAYER("MaxPooling1D", keras_pool, &max1, NULL),
    LAYER("MaxPooling2D", keras_pool, &max2, NULL),
    LAYER("MaxPooling3D", keras_pool, &max3, NULL),
    LAYER("AveragePooling1D", keras_pool, &avg1, NULL),
    LAYER("AveragePooling2D", keras_pool, &avg2, NULL),
    LAYER("AveragePooling3D", keras_pool, &avg3, NULL),
    LAYER("GlobalMaxPooling1D", keras_global_pool, &pool_max, NULL),
    LAYER("GlobalMaxPooling2D", keras_global_pool, &pool_max, NULL),
    LAYER("GlobalMaxPooling3D", keras_global_pool, &pool_max, NULL),
    LAYER("GlobalAveragePooling1D", keras_global_pool, &pool_avg, NULL),
    LAYER("GlobalAveragePooling2D", keras_global_pool, &pool_avg, NULL),
    LAYER("GlobalAveragePooling3D", keras_global_pool, &pool_avg, NULL),
    LAYER("BatchNormalization", keras_batch_norm, NULL,
          "gamma:scale beta:center moving_mean moving_variance"),
    LAYER("Normalization", keras_normalization, NULL, "mean variance count"),
    LAYER("Rescaling", keras_rescaling, NULL, NULL),
    LAYER("Embedding", keras_embedding, NULL, "embeddings"),
    LAYER("CategoryEncoding", keras_category_encoding, NULL, NULL),
    LAYER("ReLU", keras_relu_layer, NULL, NULL),
    LAYER("LeakyReLU", keras_leaky_relu, NULL, NULL),
    LAYER("PReLU", keras_prelu, NULL, "alpha"),
    PLAIN("Activation", keras_activation_layer, NULL),
    /* ---- keras.layers: moving and combining ---- */
    LAYER("Reshape", keras_reshape_layer, NULL, NULL),
    LAYER("Flatten", keras_flatten, NULL, NULL),
    LAYER("Permute", keras_permute, NULL, NULL),
    LAYER("RepeatVector", keras_repeat_vector, NULL, NULL),
    LAYER("ZeroPadding1D", keras_zero_padding, &rank1, NULL),
    LAYER("ZeroPadding2D", keras_zero_padding, &rank2, NULL),
    LAYER("ZeroPadding3D", keras_zero_padding, &rank3, NULL),
    LAYER("Cropping1D", keras_cropping, &rank1, NULL),
    LAYER("Cropping2D", keras_cropping, &rank2, NULL),
    LAYER("Cropping3D", keras_cropping, &rank3, NULL),
    LAYER("UpSampling1D", keras_upsampling, &rank1, NULL),
    LAYER("UpSampling2D", keras_upsampling, &rank2, NULL),
    LAYER("UpSampling3D", keras_upsampling, &rank3, NULL),
    LAYER("Add", keras_merge, &merge_add, NULL),
    LAYER("Subtract", keras_merge, &merge_sub, NULL),
    LAYER("Multiply", keras_merge, &merge_mul, NULL),
    LAYER("Maximum", keras_merge, &merge_max, NULL),
    LAYER("Minimum", keras_merge, &merge_min, NULL),
    LAYER("Average", keras_merge, &merge_avg, NULL),
    LAYER("Concatenate", keras_concatenate_layer, NULL, NULL),
    LAYER("Dot", keras_dot_layer, NULL, NULL),
    /* ---- keras.layers: identities at inference ---- */
    NOOP("Identity"),
    NOOP("Dropout"),
    NOOP("SpatialDropout1D"),
    NOOP("SpatialDropout2D"),
    NOOP("SpatialDropout3D"),
    NOOP("GaussianDropout"),
    NOOP("GaussianNoise"),
    NOOP("AlphaDropout"),
    NOOP("RandomBrightness"),
    NOOP("RandomColorDegeneration"),
    NOOP("RandomColorJitter"),
    NOOP("RandomContrast"),
    NOOP("RandomCrop"),
    NOOP("RandomElasticTransform"),
    NOOP("RandomErasing"),
    NOOP("RandomFlip"),
    NOOP("RandomGaussianBlur"),
    NOOP("RandomGrayscale"),
    NOOP("RandomHue"),
    NOOP("RandomInvert"),
    NOOP("RandomPerspective"),
    NOOP("RandomPosterization"),
    NOOP("RandomRotation"),
    NOOP("RandomSaturation"),
    NOOP("RandomSharpness"),
    NOOP("RandomShear"),
    NOOP("RandomTranslation"),
    NOOP("RandomZoom"),
    /* ---- keras.src.ops.numpy: arithmetic and comparisons ---- */
    OP2("Add", keras_op_binary, &op_add),
    OP2("Subtract", keras_op_binary, &op_sub),
    OP2("Multiply", keras_op_binary, &op_mul),
    OP2("Maximum", keras_op_binary, &op_maximum),
    OP2("Minimum", keras_op_binary, &op_minimum),
    OP2("TrueDivide", keras_op_divide, NULL),
    OP2("Divide", keras_op_divide, NULL),
    OP2("Equal", keras_op_binary, &op_eq),
    OP2("Greater", keras_op_binary, &op_gt),
    OP2("GreaterEqual", keras_op_binary, &op_ge),
    OP2("Less", keras_op_binary, &op_lt),
    OP2("LessEqual", keras_op_binary, &op_le),
    OP2("Matmul", keras_op_matmul, NULL),
    OP2("Dot", keras_op_matmul, NULL),
    {NP, "Einsum", keras_op_einsum, NULL, OWN, 1, ALK_OP_ANY_ARGS, "x1 x2", NULL},
    /* ---- keras.src.ops.numpy: reductions ---- */
    OP1(NP, "Sum", keras_op_reduce, &red_sum),
    OP1(NP, "Max", keras_op_reduce, &red_max),
    OP1(NP, "Min", keras_op_reduce, &red_min),
    OP1(NP, "Prod", keras_op_reduce, &red_prod),
    OP1(NP, "Mean", keras_op_reduce, &red_mean),
    OP1(NP, "All", keras_op_reduce, &red_all),
    OP1(NP, "Any", keras_op_reduce, &red_any),
    OP1(NP, "CountNonzero", keras_op_reduce, &red_count),
    OP1(NP, "Amax", keras_op_reduce, &red_max),
    OP1(NP, "Amin", keras_op_reduce, &red_min),
    OP1(NP, "Argmax", keras_op_reduce, &red_argmax),
    OP1(NP, "Argmin", keras_op_reduce, &red_argmin),
    OP1(NP, "Sort", keras_op_sort, NULL),
    {NP, "Average", keras_op_average, NULL, OWN, 1, 2, "x weights", NULL},
    /* ---- keras.src.ops.numpy: structure ---- */
    {NP, "Concatenate", keras_op_concatenate, NULL, OWN, 1, 1, "xs", NULL},
    OP1(NP, "Reshape", keras_op_reshape, NULL),
    OP1(NP, "Ravel", keras_op_ravel, NULL),
    {NP, "GetItem", keras_op_getitem, NULL, OWN, 2, 2, "x key", NULL},
    OP1(NP, "Repeat", keras_op_repeat, NULL),
    OP1(NP, "Transpose", keras_op_transpose, NULL),
    OP1(NP, "ExpandDims", keras_op_expand_dims, NULL),
    OP1(NP, "Moveaxis", keras_op_moveaxis, NULL),
    {NP, "Pad", keras_op_pad, NULL, OWN, 1, 2, "x constant_values", NULL},
    /* ---- keras.src.ops.numpy: element-wise ---- */
    OP1(NP, "Absolute", keras_op_unary, &un_abs),
    OP1(NP, "Abs", keras_op_unary, &un_abs),
    OP1(NP, "Negative", keras_op_unary, &un_neg),
    OP1(NP, "Sign", keras_op_unary, &un_sign),
    OP1(NP, "Signbit", keras_op_unary, &un_signbit),
    OP1(NP, "Floor", keras_op_unary, &un_floor),
    OP1(NP, "Ceil", keras_op_unary, &un_ceil),
    OP1(NP, "Round", keras_op_unary, &un_round),
    OP1(NP, "Clip", keras_op_clip, NULL),
    OP1(NP, "Sin", keras_op_table, &fn_sin),
    OP1(NP, "Cos", keras_op_table, &fn_cos),
    OP1(NP, "Tan", keras_op_table, &fn_tan),
    OP1(NP, "Exp", keras_op_table, &fn_exp),
    OP1(NP, "Log", keras_op_table, &fn_log),
    OP1(NP, "Sqrt", keras_op_table, &fn_sqrt),
    OP1(NP, "Sinh", keras_op_table, &fn_sinh),
    OP1(NP, "Cosh", keras_op_table, &fn_cosh),
    OP1(NP, "Tanh", keras_op_table, &fn_tanh),
    OP1(NP, "Arccos", keras_op_table, &fn_arccos),
    OP1(NP, "Arcsin", keras_op_table, &fn_arcsin),
    OP1(NP, "Arctanh", keras_op_table, &fn_arctanh),
    OP1(NP, "Arcsinh", keras_op_table, &fn_arcsinh),
    OP1(NP, "Expm1", keras_op_table, &fn_expm1),
    OP1(NP, "Log1p", keras_op_table, &fn_log1p),
    /* ---- keras.src.ops.nn and the activations op ---- */
    OP1(NN, "Sigmoid", keras_op_table, &fn_sigmoid),
    OP1(NN, "Silu", keras_op_table, &fn_silu),
    OP1(NN, "HardSigmoid", keras_op_table, &fn_hard_sigmoid),
    OP1(NN, "HardSilu", keras_op_table, &fn_hard_silu),
    OP1(NN, "Selu", keras_op_table, &fn_selu),
    OP1(NN, "Gelu", keras_op_gelu, NULL),
    OP1(NN, "Elu", keras_op_elu, NULL),
    OP1(ACT, "ReLU", keras_relu_layer, NULL),
    /* ---- keras.src.ops.image ---- */
    {IMG, "ExtractPatches", keras_op_extract_patches, NULL, OWN, 1, 1, "images", NULL},
};

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "keras",
    .version = ALKAID_VERSION,
    .get_input_shapes = keras_get_input_shapes,
    .apply_model = keras_apply_model,
    .ops = keras_ops,
    .n_ops = sizeof(keras_ops) / sizeof(keras_ops[0]),
    .before_op = keras_before_op,
    .after_op = keras_after_op,
};

bool keras_own_row(const alk_op_def *def) {
    return def != NULL && def >= keras_ops && def < keras_ops + descriptor.n_ops;
}

/* The plugin's entry point, the one symbol it exports. */
__attribute__((visibility("default"))) const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
