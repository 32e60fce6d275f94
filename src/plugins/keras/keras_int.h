/*
 * Private interface of the keras tracer plugin (spec frontends.md §2): the job a conversion
 * builds, the weight source, the precision options and the handler functions its table lists.
 *
 * Files: tracer.c (descriptor, the job, input shapes), walk.c (the replay of a model level),
 * weights.c (where a layer's weights are stored), precision.c (the plain-float-model options
 * and the 64-bit check, as the tracer's before_op/after_op hooks), activation.c (the activation
 * step and the Activation layer), and the handlers: layers_core.c (weighted and element-wise
 * layers), layers_shape.c (layers that move or combine values), ops.c (Keras ops), table.c (the
 * descriptor and the rows).
 *
 * Everything here belongs to one job on one thread; nothing is shared between jobs.
 */
#ifndef ALK_PLUGINS_KERAS_KERAS_INT_H
#define ALK_PLUGINS_KERAS_KERAS_INT_H

#include "nn/nn.h"
#include "plugin/alk_plugin.h"
#include "plugins/keras/model_graph.h"

#include <stdbool.h>
#include <stddef.h>

#pragma GCC visibility push(hidden)

/* The precision options for plain float models (issue 12; README "Plain float models"). */
typedef struct keras_precision {
    bool has_weight_kif; /* --weight-kif: Q(w; K, I, F, RND, SAT) on every float weight */
    int weight_kif[3];
    bool has_output_kif; /* --layer-output-kif: Q(y; K, I, F, TRN, WRAP) on every output */
    int output_kif[3];
} keras_precision;

/* The weights of a payload, indexed by address (an open-addressing table over its pairs). */
typedef struct keras_weight_index {
    const alk_value_pair **slots;
    size_t cap;
} keras_weight_index;

/* One conversion: the payload, its model graph, its weights and options. */
typedef struct keras_job {
    alk_arena arena; /* the payload, the graph, the weight sources */
    const alk_host *host;
    alk_trace *trace;
    const alk_value *payload;
    bool legacy; /* format legacy_h5: weights by name, not by slot */
    alk_keras_model *model;
    keras_weight_index index;
    keras_precision precision;
} keras_job;

/* ---- tracer.c ---------------------------------------------------------------------------- */

/* The descriptor's get_input_shapes and apply_model (alk_plugin.h). */
int keras_get_input_shapes(void *state, const alk_value *model, alk_plugin_shape *ret_shapes,
                           size_t cap, size_t *ret_n_shapes, alk_diag *diag);
int keras_apply_model(void *state, alk_trace *trace, const alk_host *host, const alk_value *model,
                      alk_fva *const *inputs, size_t n_inputs, alk_diag *diag);

/* ---- walk.c ------------------------------------------------------------------------------ */

/* Replays the job's model on `inputs` (n of them) in `scope` (the top level) and finishes it:
 * the trace map's `inputs`, every layer's entries, `final`. Returns the trace's error. */
int keras_walk(keras_job *job, alk_scope *scope, alk_fva *const *inputs, size_t n_inputs,
               alk_diag *diag);

/* ---- weights.c --------------------------------------------------------------------------- */

/* The weight source of one layer call (alk_op_weights.ctx), which also remembers what the op
 * read so that the tracer can check the layer's stored weights against it. */
typedef struct keras_layer_weights keras_layer_weights;

/* Indexes the payload's weights. ALK_ENOMEM. */
int keras_weights_index(keras_job *job, alk_diag *diag);

/* The weight source of `layer`; NULL on ENOMEM (the op fails). */
keras_layer_weights *keras_layer_weights_new(keras_job *job, const alk_keras_layer *layer);

/* alk_op_weights.find for a keras_layer_weights. */
const alk_value *keras_find_weight(const void *ctx, const char *role, size_t index,
                                   const char *path);

/* Before the op runs: the `name` attribute of the layer's keras_v3 `vars` group, when present,
 * names the layer (else the file's layout is not the one the config implies). */
void keras_weights_check_before(alk_op *op, const keras_layer_weights *w);

/* After a built-in row ran: every weight the file stores for the layer was read, each with a
 * floating dtype (integer weights, extra or missing ones fail the op naming them). */
void keras_weights_check_after(alk_op *op, const keras_layer_weights *w);

/* ---- precision.c ------------------------------------------------------------------------- */

/* Reads `model.precision` ({weight_kif: [K, I, F], layer_output_kif: [K, I, F]}; absent:
 * none). EINVAL naming the field. */
int keras_precision_parse(keras_precision *precision, const alk_value *model, alk_diag *diag);

/* The hooks of the tracer's own rows (alk_plugin_descriptor.before_op / after_op): the weight
 * quantizer or the width check before the body, the output quantizer and the width check after
 * the activation. */
void keras_before_op(alk_op *op);
void keras_after_op(alk_op *op);

/* A weight the body derives (batch-norm's folded scale and offset): quantized with the
 * --weight-kif format when the job has one, else returned as is. */
alk_fva *keras_derived_weight(alk_op *op, alk_fva *w);

/* ---- activation.c ------------------------------------------------------------------------ */

/* The activation step of the scope (alk_scope_set_activation): config.activation through the
 * strict map (frontends.md §2.3). */
alk_fva *keras_activation_step(alk_op *op, alk_fva *x);

/* The name of the activation in `key` of the op's parameters (a name string, or a serialized
 * built-in function {"class_name": "function", "config": NAME}); NULL for none; a custom
 * function fails the op naming it. */
const char *keras_activation_name(alk_op *op, const char *key);

/* ---- table.c: the descriptor and the rows --------------------------------------------------- */

/* Whether `def` is a row of this tracer's own table (a built-in Keras class or op). */
bool keras_own_row(const alk_op_def *def);

/* ---- Handlers (the rows' fn): layers_core.c ---------------------------------------------- */

/* The `arg` of the pool rows. */
typedef struct keras_pool_spec {
    alk_nn_pool_kind kind;
    size_t rank;
} keras_pool_spec;

/* Whether `a` has shape `dims` (ndim entries, -1 = any size); else the op fails naming `what`
 * ("weight 'kernel' has shape (8, 2); this config needs (8, 3)"). */
bool keras_check_shape(alk_op *op, const char *what, const alk_fva *a, size_t ndim,
                       const int64_t *dims);
/* data_format channels_first (absent or None: channels_last, Keras's default). */
bool keras_channels_first(alk_op *op);

void keras_dense(alk_op *op, const void *arg);
void keras_einsum_dense(alk_op *op, const void *arg);
void keras_conv(alk_op *op, const void *rank);
void keras_depthwise_conv(alk_op *op, const void *rank);
void keras_conv_transpose(alk_op *op, const void *rank);
void keras_pool(alk_op *op, const void *spec);
void keras_global_pool(alk_op *op, const void *kind);
void keras_batch_norm(alk_op *op, const void *arg);
void keras_normalization(alk_op *op, const void *arg);
void keras_rescaling(alk_op *op, const void *arg);
void keras_embedding(alk_op *op, const void *arg);
void keras_category_encoding(alk_op *op, const void *arg);
void keras_relu_layer(alk_op *op, const void *arg);
void keras_leaky_relu(alk_op *op, const void *arg);
void keras_prelu(alk_op *op, const void *arg);
void keras_activation_layer(alk_op *op, const void *arg);

/* ---- layers_shape.c ---------------------------------------------------------------------- */

/* The `arg` of the merge rows. */
typedef enum keras_merge_kind {
    KERAS_MERGE_ADD,
    KERAS_MERGE_SUBTRACT,
    KERAS_MERGE_MULTIPLY,
    KERAS_MERGE_MAXIMUM,
    KERAS_MERGE_MINIMUM,
    KERAS_MERGE_AVERAGE,
} keras_merge_kind;

void keras_identity(alk_op *op, const void *arg);
void keras_reshape_layer(alk_op *op, const void *arg);
void keras_flatten(alk_op *op, const void *arg);
void keras_permute(alk_op *op, const void *arg);
void keras_repeat_vector(alk_op *op, const void *arg);
void keras_zero_padding(alk_op *op, const void *rank);
void keras_cropping(alk_op *op, const void *rank);
void keras_upsampling(alk_op *op, const void *rank);
void keras_merge(alk_op *op, const void *kind);
void keras_concatenate_layer(alk_op *op, const void *arg);
void keras_dot_layer(alk_op *op, const void *arg);

/* ---- ops.c -------------------------------------------------------------------------------- */

void keras_op_binary(alk_op *op, const void *binop);
void keras_op_divide(alk_op *op, const void *arg);
void keras_op_reduce(alk_op *op, const void *reduce);
void keras_op_average(alk_op *op, const void *arg);
void keras_op_concatenate(alk_op *op, const void *arg);
void keras_op_reshape(alk_op *op, const void *arg);
void keras_op_ravel(alk_op *op, const void *arg);
void keras_op_getitem(alk_op *op, const void *arg);
void keras_op_repeat(alk_op *op, const void *arg);
void keras_op_transpose(alk_op *op, const void *arg);
void keras_op_expand_dims(alk_op *op, const void *arg);
void keras_op_moveaxis(alk_op *op, const void *arg);
void keras_op_einsum(alk_op *op, const void *arg);
void keras_op_matmul(alk_op *op, const void *arg);
void keras_op_unary(alk_op *op, const void *unop);
void keras_op_clip(alk_op *op, const void *arg);
void keras_op_sort(alk_op *op, const void *arg);
void keras_op_table(alk_op *op, const void *fn);
void keras_op_gelu(alk_op *op, const void *arg);
void keras_op_elu(alk_op *op, const void *arg);
void keras_op_pad(alk_op *op, const void *arg);
void keras_op_extract_patches(alk_op *op, const void *arg);

#pragma GCC visibility pop

#endif
