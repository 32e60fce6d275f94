/*
 * The `hgq` plugin's descriptor and handler table: one row per HGQ2 class (spec frontends.md
 * §3.4; the support table of README.md here). Group alkaid_keras, name `hgq`: the keras tracer
 * loads it the first time a model holds a layer whose module starts with `hgq.` (or whose
 * registered name is `hgq>Class`), once per plugin generation.
 *
 * Rows match the module as a package prefix ("hgq" matches hgq.layers.core.dense), so a class
 * moved between HGQ2 modules still dispatches. Aliases HGQ2 exports under a second name
 * (QAvgPool2D for QAveragePooling2D ...) are the same classes and save the first name; they have
 * rows anyway, for configs written by hand.
 *
 * `weights` is the layer's own `vars/N` order (§7.2), Keras's generic order for HGQ2 layers:
 * trainable variables, then non-trainable ones, each group in creation order; HGQ2's beta and
 * ebops scalars (non-trainable) exist when `enable_ebops`.
 *
 * Flags: the quantizer hooks (hooks.c) wrap every mixin layer; the Quantizer layer, the table
 * layers' input quantizer, the attention, RNN and SNN layers quantize themselves (OWN_IQ/OQ);
 * the function tables, softmax, RNN, SNN and attention layers have no Keras activation step.
 */
#include "plugins/hgq/hgq_int.h"

#define OWN_ACT ALK_OP_OWN_ACTIVATION
#define OWN_Q (ALK_OP_OWN_IQ | ALK_OP_OWN_OQ)
#define EBOPS "beta:enable_ebops ebops:enable_ebops"
#define KERNEL_BIAS "kernel bias:use_bias " EBOPS

/* A mixin layer whose body is the Keras layer `keras_class` (pools; merges, whose one argument
 * is the list of inputs). */
#define DELEGATE(name, keras_class)                                                                \
    { "hgq", name, hgq_delegate, keras_class, 0, 1, 1, "inputs", EBOPS }

/* An attention layer: query, value, key; masks and flags as keyword arguments. */
#define ATTENTION(name, kind)                                                                      \
    { "hgq", name, hgq_attention, &kind, OWN_Q | OWN_ACT, 1, 3, "query value key", EBOPS }

static const size_t rank1 = 1, rank2 = 2;

static const alk_op_def hgq_ops[] = {
    /* ---- the quantizer layer ---- */
    {"hgq", "Quantizer", hgq_quantizer_layer, NULL, OWN_Q | OWN_ACT, 1, 1, "inputs", NULL},

    /* ---- dense, einsum-dense and convolutions (kq, bq; Keras bodies) ---- */
    {"hgq", "QDense", hgq_dense, NULL, 0, 1, 1, "inputs", KERNEL_BIAS},
    {"hgq", "QBatchNormDense", hgq_batchnorm_dense, NULL, 0, 1, 1, "inputs",
     "kernel bias bn_gamma:scale " EBOPS " moving_mean moving_variance"},
    /* An einsum-dense has a bias when bias_axes is set: the body asks for it only then. */
    {"hgq", "QEinsumDense", hgq_einsum_dense, NULL, 0, 1, 1, "inputs", "kernel bias " EBOPS},
    {"hgq", "QEinsumDenseBatchnorm", hgq_einsum_dense_batchnorm, NULL, 0, 1, 1, "inputs",
     "kernel bias gamma:scale " EBOPS " moving_mean moving_variance"},
    {"hgq", "QConv1D", hgq_conv, "Conv1D", 0, 1, 1, "inputs", KERNEL_BIAS},
    {"hgq", "QConv2D", hgq_conv, "Conv2D", 0, 1, 1, "inputs", KERNEL_BIAS},
    {"hgq", "QConv3D", hgq_conv, "Conv3D", 0, 1, 1, "inputs", KERNEL_BIAS},
    {"hgq", "QBatchNormalization", hgq_batch_normalization, NULL, 0, 1, 1, "inputs",
     "bn_gamma:scale bn_beta:center moving_mean moving_variance " EBOPS},

    /* ---- pools and their aliases ---- */
    DELEGATE("QAveragePooling1D", "AveragePooling1D"),
    DELEGATE("QAveragePooling2D", "AveragePooling2D"),
    DELEGATE("QAveragePooling3D", "AveragePooling3D"),
    DELEGATE("QMaxPooling1D", "MaxPooling1D"),
    DELEGATE("QMaxPooling2D", "MaxPooling2D"),
    DELEGATE("QMaxPooling3D", "MaxPooling3D"),
    DELEGATE("QGlobalAveragePooling1D", "GlobalAveragePooling1D"),
    DELEGATE("QGlobalAveragePooling2D", "GlobalAveragePooling2D"),
    DELEGATE("QGlobalAveragePooling3D", "GlobalAveragePooling3D"),
    DELEGATE("QGlobalMaxPooling1D", "GlobalMaxPooling1D"),
    DELEGATE("QGlobalMaxPooling2D", "GlobalMaxPooling2D"),
    DELEGATE("QGlobalMaxPooling3D", "GlobalMaxPooling3D"),
    DELEGATE("QAvgPool1D", "AveragePooling1D"),
    DELEGATE("QAvgPool2D", "AveragePooling2D"),
    DELEGATE("QAvgPool3D", "AveragePooling3D"),
    DELEGATE("QMaxPool1D", "MaxPooling1D"),
    DELEGATE("QMaxPool2D", "MaxPooling2D"),
    DELEGATE("QMaxPool3D", "MaxPooling3D"),
    DELEGATE("QGlobalAvgPool1D", "GlobalAveragePooling1D"),
    DELEGATE("QGlobalAvgPool2D", "GlobalAveragePooling2D"),
    DELEGATE("QGlobalAvgPool3D", "GlobalAveragePooling3D"),
    DELEGATE("QGlobalMaxPool1D", "GlobalMaxPooling1D"),
    DELEGATE("QGlobalMaxPool2D", "GlobalMaxPooling2D"),
    DELEGATE("QGlobalMaxPool3D", "GlobalMaxPooling3D"),

    /* ---- merges and operations (one quantizer per input) ---- */
    DELEGATE("QAdd", "Add"),
    DELEGATE("QSubtract", "Subtract"),
    DELEGATE("QMultiply", "Multiply"),
    DELEGATE("QMaximum", "Maximum"),
    DELEGATE("QMinimum", "Minimum"),
    {"hgq", "QAveragePow2", hgq_average_pow2, NULL, 0, 1, 1, "inputs", EBOPS},
    {"hgq", "QEinsum", hgq_einsum, NULL, 0, 1, 2, "inputs", EBOPS},
    {"hgq", "QDot", hgq_dot, NULL, 0, 1, 2, "inputs", EBOPS},
    {"hgq", "QSum", hgq_sum, NULL, 0, 1, 1, "inputs", EBOPS},
    {"hgq", "QMeanPow2", hgq_sum, "mean", 0, 1, 1, "inputs", EBOPS},

    /* ---- function tables ---- */
    {"hgq", "QUnaryFunctionLUT", hgq_unary_lut, NULL, OWN_ACT, 1, 1, "inputs", EBOPS},
    {"hgq", "QAffinedUnaryFunctionLUT", hgq_unary_lut, "affined", OWN_ACT, 1, 1, "inputs",
     "scale bias " EBOPS},
    {"hgq", "QSoftmax", hgq_softmax, NULL, OWN_ACT, 1, 2, "inputs mask", EBOPS},

    /* ---- table layers (per-pair MLP tables; their iq is part of the body) ---- */
    {"hgq", "QDenseT", hgq_dense_t, NULL, ALK_OP_OWN_IQ, 1, 1, "inputs", NULL},
    {"hgq", "QEinsumDenseT", hgq_einsum_dense_t, NULL, ALK_OP_OWN_IQ, 1, 1, "inputs", NULL},
    {"hgq", "QConvT1D", hgq_conv_t, &rank1, ALK_OP_OWN_IQ, 1, 1, "inputs", NULL},
    {"hgq", "QConvT2D", hgq_conv_t, &rank2, ALK_OP_OWN_IQ, 1, 1, "inputs", NULL},

    /* ---- attention (query, value, key; their projections quantize themselves) ---- */
    ATTENTION("QMultiHeadAttention", hgq_attn_mha),
    ATTENTION("QMultiHeadAttentionT", hgq_attn_mha_t),
    ATTENTION("QLinformerAttention", hgq_attn_linformer),
    ATTENTION("QLinformerAttentionT", hgq_attn_linformer_t),
    ATTENTION("QSALTAttention", hgq_attn_salt),

    /* ---- recurrent and spiking layers (unrolled; sequences, initial state) ---- */
    {"hgq", "QSimpleRNN", hgq_simple_rnn, NULL, OWN_Q | OWN_ACT, 1, 2, "sequences initial_state",
     EBOPS},
    {"hgq", "QGRU", hgq_gru, NULL, OWN_Q | OWN_ACT, 1, 2, "sequences initial_state", EBOPS},
    {"hgq", "QSimpleSNN", hgq_snn, NULL, OWN_Q | OWN_ACT, 1, 2, "sequences initial_state", EBOPS},
    {"hgq", "QLIF", hgq_snn, "lif", OWN_Q | OWN_ACT, 1, 2, "sequences initial_state", EBOPS},
};

static const alk_plugin_descriptor descriptor = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_KERAS,
    .name = "hgq",
    .version = ALKAID_VERSION,
    .ops = hgq_ops,
    .n_ops = sizeof(hgq_ops) / sizeof(hgq_ops[0]),
    .before_op = hgq_before_op,
    .after_op = hgq_after_op,
};

/* The plugin's entry point, the one symbol it exports. */
__attribute__((visibility("default"))) const alk_plugin_descriptor *alk_plugin_entry(void);
const alk_plugin_descriptor *alk_plugin_entry(void) {
    return &descriptor;
}
