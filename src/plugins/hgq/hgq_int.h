/*
 * Private interface of the `hgq` plugin (group alkaid_keras): the HGQ2 layers and quantizers as
 * rows of the handler kit (spec frontends.md §3; README.md here has the support table).
 *
 * Files: plugin.c (the descriptor and the rows), quantizer.c (a quantizer's config and stored
 * variables, applied to traced values or to weights), hooks.c (the iq/oq hooks every mixin layer
 * gets), layers_core.c (Quantizer, the dense, conv, batch-norm and pool families), layers_ops.c
 * (merges, einsum, reductions), activation.c (the function tables and QSoftmax), layers_table.c
 * (QDenseT and its relatives), layers_attn.c, layers_rnn.c, layers_snn.c.
 *
 * Paths. HGQ2 keeps every quantizer's state in its internal quantizer's variables, stored under
 * the owning layer at `<path>/quantizer/vars/N` (spec §7.2): `path` is "kq", "iq",
 * "iq/quantizers/quantizer_1", "exp_table/oq", "cell/rkq"... relative to the layer the op runs
 * (alk_op_tensor_opt). A sub-layer of a composite layer (MultiHeadAttention's query projection)
 * is addressed by a prefix ("query_dense/") in front of its own paths.
 *
 * Everything here runs on one job's thread; memory is the trace's (alk_op_alloc) or freed
 * before returning. Errors go through the kit (alk_op_fail) and name the quantizer path and the
 * dataset concerned; the kit prefixes the layer.
 */
#ifndef ALK_PLUGINS_HGQ_HGQ_INT_H
#define ALK_PLUGINS_HGQ_HGQ_INT_H

#include "nn/nn.h"
#include "plugin/alk_plugin.h"

#include <stdbool.h>
#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Longest relative path the plugin builds ("_softmax/inv_table/iq/quantizer/vars/3"). */
enum { HGQ_PATH_MAX = 256 };

/* The default configs of HGQ2's QuantizerConfig by `place` (hgq/quantizer/config.py). */
typedef enum hgq_place {
    HGQ_PLACE_WEIGHT,   /* kbi, RND, SAT_SYM, is_weight */
    HGQ_PLACE_BIAS,     /* kbi, RND, WRAP */
    HGQ_PLACE_DATALANE, /* kif, RND, WRAP */
    HGQ_PLACE_TABLE,    /* kbi, RND, SAT_SYM */
    /* QSoftmax's exp and 1/x output quantizers: a table quantizer that HGQ2 forces to SAT and
     * RND_CONV whatever its config says. */
    HGQ_PLACE_FORCED_TABLE,
} hgq_place;

/* ---- quantizer.c --------------------------------------------------------------------------- */

/*
 * Reads the quantizer configured by `conf` (a serialized QuantizerConfig, HardTanhConfig or
 * HardSigmoidConfig, or its inner map; NULL or None: HGQ2's default for `place`) whose Quantizer
 * layer is stored at `path` (its internal quantizer at `<path>/quantizer/vars/N`; "" when the op
 * is the Quantizer layer itself). Checks each stored variable's presence, dtype (k uint8, the
 * others float), shape (k, b/i/f alike, i_decay_speed a scalar), that no other variable is stored
 * and, when the source knows it, the `name` of the internal quantizer. Float and dummy
 * quantizers, WRAP_SM, stochastic-only and unknown modes fail the op naming the path. `ret` (the
 * caller's) is filled on success; returns false after a failure.
 */
bool hgq_quantizer_read(alk_op *op, const alk_value *conf, hgq_place place, const char *path,
                        alk_hgq_quantizer *ret);

/* The quantizer in config key `key` of the op (kq_conf, iq_conf...) stored at `path`. */
bool hgq_quantizer_of(alk_op *op, const char *key, hgq_place place, const char *path,
                      alk_hgq_quantizer *ret);

/* Applies an activation quantizer to traced values (HGQ2's Keras Quantizer at inference:
 * x / scaler, Q, * scaler, affine), after checking that its variables broadcast to x. */
alk_fva *hgq_quantize(alk_op *op, const alk_hgq_quantizer *q, const char *path, alk_fva *x);

/* Applies a weight quantizer to a numeric array in float32 (qkernel, qbias). */
alk_fva *hgq_quantize_weight(alk_op *op, const alk_hgq_quantizer *q, const char *path, alk_fva *w);

/* Reads the quantizer in config key `key` stored at `path` and applies it to `x` (traced). */
alk_fva *hgq_apply(alk_op *op, const char *key, hgq_place place, const char *path, alk_fva *x);

/* The same for a quantizer configured by `conf` (borrowed), not by a config key, stored at
 * "<prefix><where>" (the parts of a composite layer: a softmax's exp table, an attention's
 * projections). */
alk_fva *hgq_apply_conf(alk_op *op, const alk_value *conf, hgq_place place, const char *prefix,
                        const char *where, alk_fva *x);

/* The layer's weight `role` quantized by the quantizer of config key `key` stored at `path`;
 * `required` false: NULL (and no error) when the layer has no such weight. */
alk_fva *hgq_quantized_weight(alk_op *op, const char *role, const char *key, hgq_place place,
                              const char *path, bool required);

/* `ebops_at` of a layer without HGQ2's beta and ebops variables (enable_ebops false). */
#define HGQ_NO_EBOPS SIZE_MAX

/* Checks the layer's own `vars` (keras_v3 files: `vars/0` .. `vars/<n-1>`, nothing beyond), of
 * which `vars/<ebops_at>` and the next are HGQ2's beta (float scalar) and ebops (uint32 scalar)
 * when `ebops_at` is below n (HGQ_NO_EBOPS: the layer has none), and the group's `name` when
 * the source knows it. Legacy files (no `vars/0`) are not checked here. */
void hgq_check_own_vars(alk_op *op, const char *prefix, size_t n, size_t ebops_at);

/* "<prefix><rest>" into `out` (HGQ_PATH_MAX bytes); fails the op when it does not fit. */
bool hgq_path(alk_op *op, char *out, const char *prefix, const char *rest);

/* A numeric array's values as floats (malloc'd, the caller frees); NULL after failing the op. */
float *hgq_floats(alk_op *op, const alk_fva *a, const char *what);

/* A shape as Python prints it ("(1, 16)", "(3,)", "()") into `out` (`cap` bytes, truncated to
 * fit), for messages. */
void hgq_shape_text(const size_t *shape, size_t ndim, char *out, size_t cap);

/* ---- hooks.c ------------------------------------------------------------------------------- */

/* The descriptor's before_op / after_op: the layer's iq (one per input of a multi-input layer)
 * with the `post_iq` dump, and its oq (spec §3.2). */
void hgq_before_op(alk_op *op);
void hgq_after_op(alk_op *op);

/* ---- Handlers (the rows' fn) ------------------------------------------------------------------
 */

/* layers_core.c; `arg` of the delegating rows: the Keras class of the body (keras.layers). */
void hgq_quantizer_layer(alk_op *op, const void *arg);
void hgq_dense(alk_op *op, const void *arg);
void hgq_batchnorm_dense(alk_op *op, const void *arg);
void hgq_einsum_dense(alk_op *op, const void *arg);
void hgq_einsum_dense_batchnorm(alk_op *op, const void *arg);
void hgq_conv(alk_op *op, const void *keras_class);
void hgq_batch_normalization(alk_op *op, const void *arg);
void hgq_delegate(alk_op *op, const void *keras_class);

/* layers_ops.c */
void hgq_average_pow2(alk_op *op, const void *arg);
void hgq_einsum(alk_op *op, const void *arg);
void hgq_dot(alk_op *op, const void *arg);
void hgq_sum(alk_op *op, const void *mean_pow2);

/* activation.c */
void hgq_unary_lut(alk_op *op, const void *affined);
void hgq_softmax(alk_op *op, const void *arg);

/* The Keras activation `name` of config key `key` (a name, or a serialized built-in function);
 * NULL for none; a custom function fails the op naming it. */
const char *hgq_activation_name(alk_op *op, const char *key);

/* A QSoftmax's configuration: its layer config's, or the one an attention layer gives its own. */
typedef struct hgq_softmax_spec {
    int64_t axes[ALK_FVA_MAX_DIM]; /* negative: from the end */
    size_t n_axes;
    bool stable;
    double input_scaler;
    bool ebops; /* enable_ebops: the tables store beta and ebops */
    /* The four table quantizers' configs (NULL: HGQ2's defaults). */
    const alk_value *exp_iq, *exp_oq, *inv_iq, *inv_oq;
} hgq_softmax_spec;

/*
 * QSoftmax's body on `x` for a softmax stored at `prefix` ("" for the layer, "_softmax/" inside
 * an attention layer): the optional input quantizer is the caller's business. Returns the
 * product e * (1 / sum e).
 */
alk_fva *hgq_softmax_body(alk_op *op, const hgq_softmax_spec *spec, const char *prefix, alk_fva *x);

/* layers_table.c */

/* A QEinsumDenseT: its config's, or the one an attention layer gives its projections. */
typedef struct hgq_einsum_t_spec {
    const char *prefix; /* where its objects are ("" or "query_dense/") */
    const char *equation;
    int64_t n_hl, d_hl;
    const char *subnn_activation; /* a Keras activation name; NULL: linear */
    bool has_bias;                /* bias_axes set: the sub-networks have biases (without bn) */
    const char *normalize_axes;   /* NULL: the kernel letters that reach the output */
    bool batch_norm, bn_center, bn_scale;
    double bn_epsilon;
    bool enable_iq;
    const alk_value *iq_conf, *toq_conf;
    bool ebops; /* the layer stores beta and ebops */
} hgq_einsum_t_spec;

/* QEinsumDenseT on x (its iq included; its activation and oq are the caller's). */
alk_fva *hgq_einsum_dense_t_apply(alk_op *op, const hgq_einsum_t_spec *spec, alk_fva *x);

void hgq_dense_t(alk_op *op, const void *arg);
void hgq_einsum_dense_t(alk_op *op, const void *arg);
void hgq_conv_t(alk_op *op, const void *rank);

/* layers_attn.c; `arg`: one of the attention kinds. */
typedef struct hgq_attn_kind hgq_attn_kind;
extern const hgq_attn_kind hgq_attn_mha, hgq_attn_mha_t, hgq_attn_linformer, hgq_attn_linformer_t,
    hgq_attn_salt;
void hgq_attention(alk_op *op, const void *kind);

/* layers_rnn.c */

/* One step of a recurrent layer: the output for input x (batch, features); *state (batch,
 * units) is replaced by the new state. */
typedef alk_fva *hgq_step_fn(alk_op *op, void *ctx, alk_fva *x, alk_fva **state);

/* The time loop of the recurrent and spiking layers over the op's input (batch, time,
 * features): initial state (argument 1 / initial_state, else zeros), go_backwards,
 * return_sequences, return_state; the results are the op's. */
void hgq_run_sequence(alk_op *op, size_t units, hgq_step_fn *step, void *ctx);

void hgq_simple_rnn(alk_op *op, const void *arg);
void hgq_gru(alk_op *op, const void *arg);

/* layers_snn.c; `arg` non-NULL for QLIF. */
void hgq_snn(alk_op *op, const void *lif);

#pragma GCC visibility pop

#endif
