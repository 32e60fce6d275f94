/*
 * The `torch` tracer's handler table and plugin descriptor.
 *
 * One row per spelling a graph can carry (docs/protocol.md lists the names the exporter sends):
 * module classes by their module path, functions by their canonical module (torch,
 * torch.nn.functional, operator, builtins), Tensor methods under "torch.Tensor". Rows of one
 * operation share a family function (torch_int.h) and differ in their constant and in their
 * `params`, which are torch's own parameter names in torch's order, so that an argument binds
 * whether fx recorded it by position or by keyword. Arity bounds count the arguments that fill
 * those parameters; keyword-only extras torch's wrappers add (`dtype`, `_stacklevel`) are read
 * by name where they matter and ignored otherwise, and `inplace`, `out` and `memory_format` are
 * dropped by the kit's torch call hygiene.
 */
#include "torch_int.h"

#define ANY ALK_OP_ANY_ARGS

/* ---- Family constants ----------------------------------------------------------------------- */

static const torch_binary_def ADD = {ALK_ADD, false}, ADD_ALPHA = {ALK_ADD, true},
                              SUB = {ALK_SUB, false}, SUB_ALPHA = {ALK_SUB, true},
                              MUL = {ALK_MUL, false}, MAXIMUM = {ALK_MAXIMUM, false},
                              MINIMUM = {ALK_MINIMUM, false}, GT = {ALK_GREATER, false},
                              LT = {ALK_LESS, false}, GE = {ALK_GREATER_EQUAL, false},
                              LE = {ALK_LESS_EQUAL, false}, EQ = {ALK_EQUAL, false},
                              NE = {ALK_NOT_EQUAL, false}, AND = {ALK_BITWISE_AND, false},
                              OR = {ALK_BITWISE_OR, false}, XOR = {ALK_BITWISE_XOR, false};

static const alk_reduce_op SUM = ALK_REDUCE_SUM, MEAN = ALK_REDUCE_MEAN, PROD = ALK_REDUCE_PROD,
                           AMAX = ALK_REDUCE_MAX, AMIN = ALK_REDUCE_MIN, ALL = ALK_REDUCE_ALL,
                           ANY_ = ALK_REDUCE_ANY, ARGMAX = ALK_REDUCE_ARGMAX,
                           ARGMIN = ALK_REDUCE_ARGMIN;

static const size_t RANK1 = 1, RANK2 = 2, RANK3 = 3;

static const torch_pool_def MAX1 = {ALK_NN_POOL_MAX, 1}, MAX2 = {ALK_NN_POOL_MAX, 2},
                            MAX3 = {ALK_NN_POOL_MAX, 3}, AVG1 = {ALK_NN_POOL_AVG, 1},
                            AVG2 = {ALK_NN_POOL_AVG, 2}, AVG3 = {ALK_NN_POOL_AVG, 3};

static const torch_pad_def ZERO1 = {ALK_PAD_CONSTANT, 1}, ZERO2 = {ALK_PAD_CONSTANT, 2},
                           ZERO3 = {ALK_PAD_CONSTANT, 3}, REFLECT1 = {ALK_PAD_REFLECT, 1},
                           REFLECT2 = {ALK_PAD_REFLECT, 2}, REFLECT3 = {ALK_PAD_REFLECT, 3},
                           EDGE1 = {ALK_PAD_EDGE, 1}, EDGE2 = {ALK_PAD_EDGE, 2},
                           EDGE3 = {ALK_PAD_EDGE, 3}, WRAP1 = {ALK_PAD_WRAP, 1},
                           WRAP2 = {ALK_PAD_WRAP, 2}, WRAP3 = {ALK_PAD_WRAP, 3};

/* Any non-NULL arg: the unshuffle row of torch_pixel_shuffle. */
static const bool UNSHUFFLE = true;

static const double ZERO = 0, ONE = 1;
static const double HARDTANH_BOUNDS[2] = {-1, 1}, RELU6_BOUNDS[2] = {0, 6};

/* The `training` default of the dropout rows: F.dropout and F.dropout1d/2d/3d default to True,
 * F.alpha_dropout and the modules (whose attribute always says) to False. */
static const bool TRAINING = true, EVAL = false;

static const char SOFTMAX[] = "softmax is not supported";

/* ---- Row shorthands ------------------------------------------------------------------------- */

#define ROW(module, name, fn, arg, min, max, params)                                               \
    { module, name, fn, arg, 0, min, max, params, NULL }
#define MODULE(file, name, fn, arg) ROW("torch.nn.modules." file, name, fn, arg, 1, 1, "input")
#define FUNCTIONAL(name, fn, arg, min, max, params)                                                \
    ROW("torch.nn.functional", name, fn, arg, min, max, params)
#define TORCH(name, fn, arg, min, max, params) ROW("torch", name, fn, arg, min, max, params)
#define OPERATOR(name, fn, arg, n) ROW("operator", name, fn, arg, n, n, n == 1 ? "a" : "a b")
#define METHOD(name, fn, arg, min, max, params)                                                    \
    ROW(TORCH_METHOD_MODULE, name, fn, arg, min, max, params)

/* The Tensor method and torch.* function of one unary row. */
#define UNARY(name)                                                                                \
    TORCH(name, torch_unary, name, 1, 1, "input"), METHOD(name, torch_unary, name, 1, 1, "self")

/* Parameter lists shared by several rows, in torch's order. */
#define CONV_PARAMS "input weight bias stride padding dilation groups"
#define CONV_TRANSPOSE_PARAMS "input weight bias stride padding output_padding groups dilation"
#define MAX_POOL_PARAMS "input kernel_size stride padding dilation ceil_mode return_indices"
#define AVG_POOL_PARAMS                                                                            \
    "input kernel_size stride padding ceil_mode count_include_pad divisor_override"
#define ADAPTIVE_MAX_PARAMS "input output_size return_indices"

static const alk_op_def torch_ops[] = {
    /* ---- Modules (§4.3) ---- */
    MODULE("linear", "Linear", torch_linear, NULL),
    MODULE("linear", "Identity", torch_identity, NULL),
    MODULE("conv", "Conv1d", torch_conv, &RANK1),
    MODULE("conv", "Conv2d", torch_conv, &RANK2),
    MODULE("conv", "Conv3d", torch_conv, &RANK3),
    MODULE("conv", "ConvTranspose1d", torch_conv_transpose, &RANK1),
    MODULE("conv", "ConvTranspose2d", torch_conv_transpose, &RANK2),
    MODULE("conv", "ConvTranspose3d", torch_conv_transpose, &RANK3),
    MODULE("batchnorm", "BatchNorm1d", torch_batch_norm, NULL),
    MODULE("batchnorm", "BatchNorm2d", torch_batch_norm, NULL),
    MODULE("batchnorm", "BatchNorm3d", torch_batch_norm, NULL),
    MODULE("activation", "ReLU", torch_unary, "relu"),
    MODULE("activation", "LeakyReLU", torch_leaky_relu, NULL),
    MODULE("activation", "PReLU", torch_prelu, NULL),
    MODULE("activation", "Sigmoid", torch_activation, "sigmoid"),
    MODULE("activation", "Tanh", torch_activation, "tanh"),
    MODULE("activation", "SiLU", torch_activation, "silu"),
    MODULE("activation", "GELU", torch_activation, "gelu"),
    MODULE("activation", "ELU", torch_activation, "elu"),
    MODULE("activation", "SELU", torch_activation, "selu"),
    MODULE("activation", "Softplus", torch_activation, "softplus"),
    MODULE("activation", "Softsign", torch_activation, "softsign"),
    MODULE("activation", "Hardsigmoid", torch_activation, "hardsigmoid"),
    MODULE("activation", "Hardswish", torch_activation, "hardswish"),
    MODULE("activation", "Hardtanh", torch_hardtanh, HARDTANH_BOUNDS),
    MODULE("activation", "ReLU6", torch_hardtanh, RELU6_BOUNDS),
    MODULE("activation", "LogSigmoid", torch_activation, "logsigmoid"),
    MODULE("flatten", "Flatten", torch_flatten, NULL),
    MODULE("flatten", "Unflatten", torch_unflatten, NULL),
    MODULE("dropout", "Dropout", torch_dropout, &EVAL),
    MODULE("dropout", "Dropout1d", torch_dropout, &EVAL),
    MODULE("dropout", "Dropout2d", torch_dropout, &EVAL),
    MODULE("dropout", "Dropout3d", torch_dropout, &EVAL),
    MODULE("dropout", "AlphaDropout", torch_dropout, &EVAL),
    MODULE("dropout", "FeatureAlphaDropout", torch_dropout, &EVAL),
    MODULE("pooling", "MaxPool1d", torch_pool, &MAX1),
    MODULE("pooling", "MaxPool2d", torch_pool, &MAX2),
    MODULE("pooling", "MaxPool3d", torch_pool, &MAX3),
    MODULE("pooling", "AvgPool1d", torch_pool, &AVG1),
    MODULE("pooling", "AvgPool2d", torch_pool, &AVG2),
    MODULE("pooling", "AvgPool3d", torch_pool, &AVG3),
    MODULE("pooling", "AdaptiveMaxPool1d", torch_adaptive_pool, &MAX1),
    MODULE("pooling", "AdaptiveMaxPool2d", torch_adaptive_pool, &MAX2),
    MODULE("pooling", "AdaptiveMaxPool3d", torch_adaptive_pool, &MAX3),
    MODULE("pooling", "AdaptiveAvgPool1d", torch_adaptive_pool, &AVG1),
    MODULE("pooling", "AdaptiveAvgPool2d", torch_adaptive_pool, &AVG2),
    MODULE("pooling", "AdaptiveAvgPool3d", torch_adaptive_pool, &AVG3),
    MODULE("padding", "ZeroPad1d", torch_pad_module, &ZERO1),
    MODULE("padding", "ZeroPad2d", torch_pad_module, &ZERO2),
    MODULE("padding", "ZeroPad3d", torch_pad_module, &ZERO3),
    MODULE("padding", "ConstantPad1d", torch_pad_module, &ZERO1),
    MODULE("padding", "ConstantPad2d", torch_pad_module, &ZERO2),
    MODULE("padding", "ConstantPad3d", torch_pad_module, &ZERO3),
    MODULE("padding", "ReflectionPad1d", torch_pad_module, &REFLECT1),
    MODULE("padding", "ReflectionPad2d", torch_pad_module, &REFLECT2),
    MODULE("padding", "ReflectionPad3d", torch_pad_module, &REFLECT3),
    MODULE("padding", "ReplicationPad1d", torch_pad_module, &EDGE1),
    MODULE("padding", "ReplicationPad2d", torch_pad_module, &EDGE2),
    MODULE("padding", "ReplicationPad3d", torch_pad_module, &EDGE3),
    MODULE("padding", "CircularPad1d", torch_pad_module, &WRAP1),
    MODULE("padding", "CircularPad2d", torch_pad_module, &WRAP2),
    MODULE("padding", "CircularPad3d", torch_pad_module, &WRAP3),
    MODULE("upsampling", "Upsample", torch_upsample, NULL),
    MODULE("upsampling", "UpsamplingNearest2d", torch_upsample, NULL),
    MODULE("pixelshuffle", "PixelShuffle", torch_pixel_shuffle, NULL),
    MODULE("pixelshuffle", "PixelUnshuffle", torch_pixel_shuffle, &UNSHUFFLE),
    MODULE("sparse", "Embedding", torch_embedding, NULL),

    /* ---- torch.nn.functional (§4.4) ---- */
    FUNCTIONAL("linear", torch_linear, NULL, 2, 3, "input weight bias"),
    FUNCTIONAL("conv1d", torch_conv, &RANK1, 2, 7, CONV_PARAMS),
    FUNCTIONAL("conv2d", torch_conv, &RANK2, 2, 7, CONV_PARAMS),
    FUNCTIONAL("conv3d", torch_conv, &RANK3, 2, 7, CONV_PARAMS),
    FUNCTIONAL("conv_transpose1d", torch_conv_transpose, &RANK1, 2, 8, CONV_TRANSPOSE_PARAMS),
    FUNCTIONAL("conv_transpose2d", torch_conv_transpose, &RANK2, 2, 8, CONV_TRANSPOSE_PARAMS),
    FUNCTIONAL("conv_transpose3d", torch_conv_transpose, &RANK3, 2, 8, CONV_TRANSPOSE_PARAMS),
    FUNCTIONAL("batch_norm", torch_batch_norm, NULL, 3, 8,
               "input running_mean running_var weight bias training momentum eps"),
    FUNCTIONAL("max_pool1d", torch_pool, &MAX1, 2, 7, MAX_POOL_PARAMS),
    FUNCTIONAL("max_pool2d", torch_pool, &MAX2, 2, 7, MAX_POOL_PARAMS),
    FUNCTIONAL("max_pool3d", torch_pool, &MAX3, 2, 7, MAX_POOL_PARAMS),
    FUNCTIONAL("avg_pool1d", torch_pool, &AVG1, 2, 6,
               "input kernel_size stride padding ceil_mode count_include_pad"),
    FUNCTIONAL("avg_pool2d", torch_pool, &AVG2, 2, 7, AVG_POOL_PARAMS),
    FUNCTIONAL("avg_pool3d", torch_pool, &AVG3, 2, 7, AVG_POOL_PARAMS),
    FUNCTIONAL("adaptive_max_pool1d", torch_adaptive_pool, &MAX1, 2, 3, ADAPTIVE_MAX_PARAMS),
    FUNCTIONAL("adaptive_max_pool2d", torch_adaptive_pool, &MAX2, 2, 3, ADAPTIVE_MAX_PARAMS),
    FUNCTIONAL("adaptive_max_pool3d", torch_adaptive_pool, &MAX3, 2, 3, ADAPTIVE_MAX_PARAMS),
    FUNCTIONAL("adaptive_avg_pool1d", torch_adaptive_pool, &AVG1, 2, 2, "input output_size"),
    FUNCTIONAL("adaptive_avg_pool2d", torch_adaptive_pool, &AVG2, 2, 2, "input output_size"),
    FUNCTIONAL("adaptive_avg_pool3d", torch_adaptive_pool, &AVG3, 2, 2, "input output_size"),
    FUNCTIONAL("pixel_shuffle", torch_pixel_shuffle, NULL, 2, 2, "input upscale_factor"),
    FUNCTIONAL("pixel_unshuffle", torch_pixel_shuffle, &UNSHUFFLE, 2, 2, "input downscale_factor"),
    FUNCTIONAL("interpolate", torch_upsample, NULL, 1, 7,
               "input size scale_factor mode align_corners recompute_scale_factor antialias"),
    FUNCTIONAL("upsample", torch_upsample, NULL, 1, 5,
               "input size scale_factor mode align_corners"),
    FUNCTIONAL("upsample_nearest", torch_upsample, NULL, 1, 3, "input size scale_factor"),
    FUNCTIONAL("embedding", torch_embedding, NULL, 2, 7,
               "input weight padding_idx max_norm norm_type scale_grad_by_freq sparse"),
    FUNCTIONAL("pad", torch_pad, NULL, 2, 4, "input pad mode value"),
    FUNCTIONAL("dropout", torch_dropout, &TRAINING, 1, 4, "input p training inplace"),
    FUNCTIONAL("dropout1d", torch_dropout, &TRAINING, 1, 4, "input p training inplace"),
    FUNCTIONAL("dropout2d", torch_dropout, &TRAINING, 1, 4, "input p training inplace"),
    FUNCTIONAL("dropout3d", torch_dropout, &TRAINING, 1, 4, "input p training inplace"),
    FUNCTIONAL("alpha_dropout", torch_dropout, &EVAL, 1, 4, "input p training inplace"),
    FUNCTIONAL("softmax", torch_unsupported, SOFTMAX, 0, ANY, "input dim _stacklevel dtype"),
    FUNCTIONAL("elu", torch_activation, "elu", 1, 3, "input alpha inplace"),
    FUNCTIONAL("hardtanh", torch_hardtanh, HARDTANH_BOUNDS, 1, 4, "input min_val max_val inplace"),
    FUNCTIONAL("leaky_relu", torch_leaky_relu, NULL, 1, 3, "input negative_slope inplace"),
    FUNCTIONAL("prelu", torch_prelu, NULL, 2, 2, "input weight"),
    FUNCTIONAL("relu", torch_unary, "relu", 1, 2, "input inplace"),
    FUNCTIONAL("relu6", torch_hardtanh, RELU6_BOUNDS, 1, 2, "input inplace"),
    FUNCTIONAL("sigmoid", torch_activation, "sigmoid", 1, 1, "input"),
    FUNCTIONAL("silu", torch_activation, "silu", 1, 2, "input inplace"),
    FUNCTIONAL("gelu", torch_activation, "gelu", 1, 2, "input approximate"),
    FUNCTIONAL("selu", torch_activation, "selu", 1, 2, "input inplace"),
    FUNCTIONAL("softplus", torch_activation, "softplus", 1, 3, "input beta threshold"),
    FUNCTIONAL("softsign", torch_activation, "softsign", 1, 1, "input"),
    FUNCTIONAL("hardsigmoid", torch_activation, "hardsigmoid", 1, 2, "input inplace"),
    FUNCTIONAL("hardswish", torch_activation, "hardswish", 1, 2, "input inplace"),
    FUNCTIONAL("logsigmoid", torch_activation, "logsigmoid", 1, 1, "input"),
    FUNCTIONAL("tanh", torch_activation, "tanh", 1, 1, "input"),

    /* ---- torch.* (§4.4) ---- */
    TORCH("cat", torch_cat, NULL, 1, 2, "tensors dim"),
    TORCH("concat", torch_cat, NULL, 1, 2, "tensors dim"),
    TORCH("concatenate", torch_cat, NULL, 1, 2, "tensors axis"),
    TORCH("stack", torch_stack, NULL, 1, 2, "tensors dim"),
    TORCH("split", torch_split, NULL, 2, 3, "tensor split_size_or_sections dim"),
    TORCH("chunk", torch_chunk, NULL, 2, 3, "input chunks dim"),
    TORCH("matmul", torch_matmul, NULL, 2, 2, "input other"),
    TORCH("einsum", torch_einsum, NULL, 1, ANY, "equation"),
    TORCH("clamp", torch_clamp, NULL, 1, 3, "input min max"),
    TORCH("clip", torch_clamp, NULL, 1, 3, "input min max"),
    TORCH("where", torch_where, NULL, 1, 3, "condition input other"),
    TORCH("reshape", torch_reshape_op, NULL, 2, 2, "input shape"),
    TORCH("flatten", torch_flatten, NULL, 1, 3, "input start_dim end_dim"),
    TORCH("unsqueeze", torch_unsqueeze, NULL, 2, 2, "input dim"),
    TORCH("squeeze", torch_squeeze, NULL, 1, 2, "input dim"),
    TORCH("transpose", torch_transpose, NULL, 3, 3, "input dim0 dim1"),
    TORCH("permute", torch_permute, NULL, 2, 2, "input dims"),
    TORCH("moveaxis", torch_moveaxis, NULL, 3, 3, "input source destination"),
    TORCH("movedim", torch_moveaxis, NULL, 3, 3, "input source destination"),
    TORCH("repeat_interleave", torch_repeat_interleave, NULL, 1, 4,
          "input repeats dim output_size"),
    TORCH("tile", torch_tile, NULL, 2, 2, "input dims"),
    TORCH("maximum", torch_binary, &MAXIMUM, 2, 2, "input other"),
    TORCH("minimum", torch_binary, &MINIMUM, 2, 2, "input other"),
    TORCH("eq", torch_binary, &EQ, 2, 2, "input other"),
    TORCH("equal", torch_equal_all, NULL, 2, 2, "input other"),
    TORCH("ne", torch_binary, &NE, 2, 2, "input other"),
    TORCH("not_equal", torch_binary, &NE, 2, 2, "input other"),
    TORCH("gt", torch_binary, &GT, 2, 2, "input other"),
    TORCH("greater", torch_binary, &GT, 2, 2, "input other"),
    TORCH("ge", torch_binary, &GE, 2, 2, "input other"),
    TORCH("greater_equal", torch_binary, &GE, 2, 2, "input other"),
    TORCH("lt", torch_binary, &LT, 2, 2, "input other"),
    TORCH("less", torch_binary, &LT, 2, 2, "input other"),
    TORCH("le", torch_binary, &LE, 2, 2, "input other"),
    TORCH("less_equal", torch_binary, &LE, 2, 2, "input other"),
    TORCH("add", torch_binary, &ADD_ALPHA, 2, 3, "input other alpha"),
    TORCH("sub", torch_binary, &SUB_ALPHA, 2, 3, "input other alpha"),
    TORCH("subtract", torch_binary, &SUB_ALPHA, 2, 3, "input other alpha"),
    TORCH("mul", torch_binary, &MUL, 2, 2, "input other"),
    TORCH("multiply", torch_binary, &MUL, 2, 2, "input other"),
    TORCH("div", torch_divide, NULL, 2, 3, "input other rounding_mode"),
    TORCH("divide", torch_divide, NULL, 2, 3, "input other rounding_mode"),
    TORCH("true_divide", torch_divide, NULL, 2, 2, "dividend divisor"),
    TORCH("floor_divide", torch_floor_divide, NULL, 2, 2, "input other"),
    TORCH("remainder", torch_remainder, NULL, 2, 2, "input other"),
    TORCH("bitwise_and", torch_binary, &AND, 2, 2, "input other"),
    TORCH("bitwise_or", torch_binary, &OR, 2, 2, "input other"),
    TORCH("bitwise_xor", torch_binary, &XOR, 2, 2, "input other"),
    TORCH("bitwise_not", torch_invert, NULL, 1, 1, "input"),
    TORCH("sum", torch_reduce, &SUM, 1, 4, "input dim keepdim dtype"),
    TORCH("mean", torch_reduce, &MEAN, 1, 4, "input dim keepdim dtype"),
    TORCH("prod", torch_reduce, &PROD, 1, 4, "input dim keepdim dtype"),
    TORCH("amax", torch_reduce, &AMAX, 1, 3, "input dim keepdim"),
    TORCH("amin", torch_reduce, &AMIN, 1, 3, "input dim keepdim"),
    TORCH("max", torch_max_min, &AMAX, 1, 4, "input dim keepdim other"),
    TORCH("min", torch_max_min, &AMIN, 1, 4, "input dim keepdim other"),
    TORCH("all", torch_reduce, &ALL, 1, 3, "input dim keepdim"),
    TORCH("any", torch_reduce, &ANY_, 1, 3, "input dim keepdim"),
    TORCH("count_nonzero", torch_count_nonzero, NULL, 1, 2, "input dim"),
    TORCH("argmax", torch_arg_reduce, &ARGMAX, 1, 3, "input dim keepdim"),
    TORCH("argmin", torch_arg_reduce, &ARGMIN, 1, 3, "input dim keepdim"),
    TORCH("sort", torch_sort, NULL, 1, 4, "input dim descending stable"),
    TORCH("zeros", torch_fill, &ZERO, 0, ANY, "size"),
    TORCH("ones", torch_fill, &ONE, 0, ANY, "size"),
    TORCH("full", torch_fill, NULL, 2, 2, "size fill_value"),
    TORCH("zeros_like", torch_fill_like, &ZERO, 1, 1, "input"),
    TORCH("ones_like", torch_fill_like, &ONE, 1, 1, "input"),
    TORCH("full_like", torch_fill_like, NULL, 2, 2, "input fill_value"),
    /* The unary map (§4.5): exact maps and table functions, also as Tensor methods. */
    UNARY("relu"),
    UNARY("abs"),
    UNARY("absolute"),
    UNARY("sign"),
    UNARY("round"),
    UNARY("floor"),
    UNARY("ceil"),
    UNARY("neg"),
    UNARY("negative"),
    UNARY("square"),
    UNARY("sigmoid"),
    TORCH("selu", torch_activation, "selu", 1, 1, "input"),
    UNARY("tanh"),
    UNARY("sinh"),
    UNARY("cosh"),
    UNARY("exp"),
    UNARY("expm1"),
    UNARY("log"),
    UNARY("log1p"),
    UNARY("log2"),
    UNARY("log10"),
    UNARY("sin"),
    UNARY("cos"),
    UNARY("tan"),
    UNARY("sqrt"),
    UNARY("rsqrt"),
    UNARY("reciprocal"),
    UNARY("arcsin"),
    UNARY("asin"),
    UNARY("arccos"),
    UNARY("acos"),
    UNARY("arctan"),
    UNARY("atan"),
    UNARY("arcsinh"),
    UNARY("asinh"),
    UNARY("arccosh"),
    UNARY("acosh"),
    UNARY("arctanh"),
    UNARY("atanh"),

    /* ---- Python operators and attribute access (§4.4) ---- */
    OPERATOR("add", torch_binary, &ADD, 2),
    OPERATOR("sub", torch_binary, &SUB, 2),
    OPERATOR("mul", torch_binary, &MUL, 2),
    OPERATOR("truediv", torch_divide, NULL, 2),
    OPERATOR("floordiv", torch_floor_divide, NULL, 2),
    OPERATOR("mod", torch_remainder, NULL, 2),
    OPERATOR("matmul", torch_matmul, NULL, 2),
    OPERATOR("neg", torch_negate, NULL, 1),
    OPERATOR("pos", torch_positive, NULL, 1),
    OPERATOR("and_", torch_binary, &AND, 2),
    OPERATOR("or_", torch_binary, &OR, 2),
    OPERATOR("xor", torch_binary, &XOR, 2),
    OPERATOR("invert", torch_invert, NULL, 1),
    OPERATOR("eq", torch_binary, &EQ, 2),
    OPERATOR("ne", torch_binary, &NE, 2),
    OPERATOR("lt", torch_binary, &LT, 2),
    OPERATOR("le", torch_binary, &LE, 2),
    OPERATOR("gt", torch_binary, &GT, 2),
    OPERATOR("ge", torch_binary, &GE, 2),
    OPERATOR("getitem", torch_getitem, NULL, 2),
    ROW("builtins", "getattr", torch_getattr, NULL, 2, 2, "obj name"),

    /* ---- Tensor methods (§4.5) ---- */
    METHOD("view", torch_reshape_op, NULL, 1, ANY, "self"),
    METHOD("reshape", torch_reshape_op, NULL, 1, ANY, "self"),
    METHOD("permute", torch_permute, NULL, 1, ANY, "self"),
    METHOD("transpose", torch_transpose, NULL, 3, 3, "self dim0 dim1"),
    METHOD("t", torch_t, NULL, 1, 1, "self"),
    METHOD("flatten", torch_flatten, NULL, 1, 3, "self start_dim end_dim"),
    METHOD("unsqueeze", torch_unsqueeze, NULL, 2, 2, "self dim"),
    METHOD("squeeze", torch_squeeze, NULL, 1, 2, "self dim"),
    METHOD("expand", torch_expand, NULL, 1, ANY, "self"),
    METHOD("expand_as", torch_expand_as, NULL, 2, 2, "self other"),
    METHOD("repeat", torch_tile, NULL, 1, ANY, "self"),
    METHOD("size", torch_size, NULL, 1, 2, "self dim"),
    METHOD("contiguous", torch_identity, NULL, 1, 1, "self"),
    METHOD("clone", torch_identity, NULL, 1, 1, "self"),
    METHOD("detach", torch_identity, NULL, 1, 1, "self"),
    METHOD("type_as", torch_identity, NULL, 2, 2, "self other"),
    METHOD("float", torch_identity, NULL, 1, 1, "self"),
    METHOD("double", torch_identity, NULL, 1, 1, "self"),
    METHOD("int", torch_to, "int32", 1, 1, "self"),
    METHOD("long", torch_to, "int64", 1, 1, "self"),
    METHOD("to", torch_to, NULL, 1, ANY, "self"),
    METHOD("sum", torch_reduce, &SUM, 1, 4, "self dim keepdim dtype"),
    METHOD("mean", torch_reduce, &MEAN, 1, 4, "self dim keepdim dtype"),
    METHOD("prod", torch_reduce, &PROD, 1, 4, "self dim keepdim dtype"),
    METHOD("amax", torch_reduce, &AMAX, 1, 3, "self dim keepdim"),
    METHOD("amin", torch_reduce, &AMIN, 1, 3, "self dim keepdim"),
    METHOD("max", torch_max_min, &AMAX, 1, 4, "self dim keepdim other"),
    METHOD("min", torch_max_min, &AMIN, 1, 4, "self dim keepdim other"),
    METHOD("all", torch_reduce, &ALL, 1, 3, "self dim keepdim"),
    METHOD("any", torch_reduce, &ANY_, 1, 3, "self dim keepdim"),
    METHOD("argmax", torch_arg_reduce, &ARGMAX, 1, 3, "self dim keepdim"),
    METHOD("argmin", torch_arg_reduce, &ARGMIN, 1, 3, "self dim keepdim"),
    METHOD("clamp", torch_clamp, NULL, 1, 3, "self min max"),
    METHOD("clip", torch_clamp, NULL, 1, 3, "self min max"),
    /* Arithmetic methods: the torch.* rows' families under their Tensor spelling. */
    METHOD("add", torch_binary, &ADD_ALPHA, 2, 3, "self other alpha"),
    METHOD("sub", torch_binary, &SUB_ALPHA, 2, 3, "self other alpha"),
    METHOD("mul", torch_binary, &MUL, 2, 2, "self other"),
    METHOD("div", torch_divide, NULL, 2, 3, "self other rounding_mode"),
    METHOD("floor_divide", torch_floor_divide, NULL, 2, 2, "self other"),
    METHOD("remainder", torch_remainder, NULL, 2, 2, "self other"),
    METHOD("matmul", torch_matmul, NULL, 2, 2, "self other"),
    METHOD("maximum", torch_binary, &MAXIMUM, 2, 2, "self other"),
    METHOD("minimum", torch_binary, &MINIMUM, 2, 2, "self other"),
    METHOD("eq", torch_binary, &EQ, 2, 2, "self other"),
    METHOD("ne", torch_binary, &NE, 2, 2, "self other"),
    METHOD("gt", torch_binary, &GT, 2, 2, "self other"),
    METHOD("ge", torch_binary, &GE, 2, 2, "self other"),
    METHOD("lt", torch_binary, &LT, 2, 2, "self other"),
    METHOD("le", torch_binary, &LE, 2, 2, "self other"),
    METHOD("bitwise_not", torch_invert, NULL, 1, 1, "self"),
};

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "torch",
    .version = ALKAID_VERSION,
    .apply_model = torch_apply_model,
    .ops = torch_ops,
    .n_ops = sizeof(torch_ops) / sizeof(torch_ops[0]),
};

const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
