/*
 * HGQ2's recurrent layers (spec frontends.md §3.4): QSimpleRNN and QGRU, unrolled over the time
 * axis as HGQ2's Keras cells compute them at inference, and the time loop the spiking layers
 * (layers_snn.c) share.
 *
 * The loop: a rank-3 input (batch, time, features), steps in time order (reversed with
 * go_backwards), the state starting at zero (constant variables, as the reference) unless an
 * initial state is given; the result is the last output, or with return_sequences the outputs
 * stacked on axis 1 in the order computed (Keras returns the reversed sequence then too), and
 * with return_state the final state as a second result. Masks are refused.
 *
 * QSimpleRNN step: y = paq(iq(x) @ kq(kernel) + bq(bias) + sq?(h) @ rkq(recurrent_kernel)),
 * h = activation(y). QGRU step (Keras's GRU, z/r/h gate order): h' = sq(h), x' = iq(x) when
 * enabled, zr = praq(recurrent_activation(x'@K[:, :2u] + b + h'@R[:, :2u] (+ b_r))), z, r = split,
 * hh = paq(activation(x'@K[:, 2u:] + b + rh)) with rh = r * rhq(h'@R[:, 2u:] + b_r) (reset_after)
 * or rhq(r * h') @ R[:, 2u:], then h = z * h' + (1 - z) * hh.
 *
 * Build-time state not in the config: QSimpleRNN saves no `enable_sq`, and its constructor's
 * default is False, so a reloaded model runs without its state quantizer unless the config
 * says `enable_sq` (a config with an sq_conf but no enable_sq is read as enabled: the file then
 * holds the quantizer HGQ2 trained with). The cells' output quantizer cannot run in Keras (the
 * cell returns a tuple to it): enable_oq is refused, and so is QSimpleRNN without its iq, which
 * its cell calls unconditionally.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

enum { MAX_STEPS = 4096 };

/* ---- The time loop ------------------------------------------------------------------------- */

/* x[:, t, :] */
static alk_fva *time_step(alk_trace *t, alk_fva *x, size_t step) {
    alk_index index[3] = {ALK_ALL, ALK_AT((int64_t)step), ALK_ALL};
    return alk_fva_index(t, x, index, 3);
}

/* A (batch, units) state of zeros: constant variables, as the reference's FVArray of zeros. */
static alk_fva *zero_state(alk_op *op, size_t batch, size_t units) {
    size_t n = batch * units;
    double *zeros = alk_calloc(n > 0 ? n : 1, sizeof(double));
    if (zeros == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory for a state");
        return NULL;
    }
    size_t shape[2] = {batch, units};
    alk_trace *t = alk_op_trace(op);
    alk_fva *state = alk_fva_to_vars(t, alk_fva_numbers(t, 2, shape, zeros));
    alk_free(zeros);
    return state;
}

/* The initial state: argument 1 or `initial_state` (one array, or a list of one), else zeros. */
static alk_fva *initial_state(alk_op *op, size_t batch, size_t units) {
    const alk_arg *given = alk_op_arg(op, 1);
    if (given == NULL) {
        given = alk_op_kwarg(op, "initial_state");
    }
    if (given == NULL || given->kind == ALK_ARG_NONE) {
        return zero_state(op, batch, units);
    }
    if ((given->kind == ALK_ARG_LIST || given->kind == ALK_ARG_TUPLE) && given->as.seq.len == 1) {
        given = given->as.seq.items[0];
    }
    if (given->kind != ALK_ARG_ARRAY) {
        alk_op_fail(op, ALK_EINVAL,
                    "initial_state must be one tensor (these layers have one state)");
        return NULL;
    }
    return given->as.array;
}

void hgq_run_sequence(alk_op *op, size_t units, hgq_step_fn *step, void *ctx) {
    alk_trace *t = alk_op_trace(op);
    alk_fva *x = alk_op_in(op, 0);
    const alk_arg *mask = alk_op_kwarg(op, "mask");
    bool sequences = alk_op_bool(op, "return_sequences", false);
    bool return_state = alk_op_bool(op, "return_state", false);
    bool backwards = alk_op_bool(op, "go_backwards", false);
    if (x == NULL || alk_op_failed(op)) {
        return;
    }
    if (mask != NULL && mask->kind != ALK_ARG_NONE) {
        alk_op_fail(op, ALK_EINVAL, "masks are not supported");
        return;
    }
    if (alk_fva_ndim(x) != 3 || alk_fva_shape(x)[1] > MAX_STEPS || alk_fva_shape(x)[1] == 0) {
        alk_op_fail(op, ALK_EINVAL,
                    "takes a (batch, time, features) input of 1 to %d steps, got %zu axes",
                    MAX_STEPS, alk_fva_ndim(x));
        return;
    }
    size_t steps = alk_fva_shape(x)[1];
    alk_fva *state = initial_state(op, alk_fva_shape(x)[0], units);
    alk_fva **outputs = alk_malloc(steps * sizeof(*outputs));
    if (outputs == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory for %zu steps", steps);
        return;
    }
    for (size_t s = 0; s < steps && state != NULL && !alk_op_failed(op); s++) {
        size_t at = backwards ? steps - 1 - s : s;
        outputs[s] = step(op, ctx, time_step(t, x, at), &state);
    }
    if (!alk_op_failed(op)) {
        alk_op_out(op, sequences ? alk_fva_stack(t, outputs, steps, 1) : outputs[steps - 1]);
        if (return_state) {
            alk_op_out(op, state);
        }
    }
    alk_free(outputs);
}

/* ---- Shared readers -------------------------------------------------------------------------- */

/* A cell quantizer: config key `key` of the layer, stored at cell/<name>. */
static bool cell_quantizer(alk_op *op, const char *key, hgq_place place, const char *name,
                           alk_hgq_quantizer *q, char *path) {
    return hgq_path(op, path, "cell/", name) && hgq_quantizer_of(op, key, place, path, q);
}

/* cell/vars/<index> quantized in float32 by the quantizer of `key` at cell/<name>. */
static alk_fva *cell_weight(alk_op *op, size_t index, const char *what, const char *key,
                            hgq_place place, const char *name) {
    char dataset[32], path[HGQ_PATH_MAX];
    (void)snprintf(dataset, sizeof(dataset), "cell/vars/%zu", index);
    alk_fva *w = alk_op_tensor_opt(op, dataset);
    alk_hgq_quantizer q;
    if (w == NULL) {
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "dataset %s (the cell's %s) is missing", dataset, what);
        }
        return NULL;
    }
    if (!cell_quantizer(op, key, place, name, &q, path)) {
        return NULL;
    }
    return hgq_quantize_weight(op, &q, path, w);
}

/* x through the cell quantizer of `key` at cell/<name>. */
static alk_fva *cell_quantize(alk_op *op, const char *key, const char *name, alk_fva *x) {
    char path[HGQ_PATH_MAX];
    alk_hgq_quantizer q;
    if (x == NULL || !cell_quantizer(op, key, HGQ_PLACE_DATALANE, name, &q, path)) {
        return NULL;
    }
    return hgq_quantize(op, &q, path, x);
}

/* The layer's units, and the refusals every recurrent layer shares. */
static int64_t recurrent_units(alk_op *op) {
    int64_t units = alk_op_int(op, "units", -1);
    if (!alk_op_failed(op) && units < 1) {
        alk_op_fail(op, ALK_EINVAL, "units must be positive");
    }
    if (!alk_op_failed(op) && alk_op_bool(op, "enable_oq", false)) {
        alk_op_fail(op, ALK_EINVAL,
                    "enable_oq is not supported (HGQ2's cell cannot apply an output quantizer "
                    "to its (output, state) pair)");
    }
    return units;
}

/* a[:, from:to] of a (batch, n) array; numeric arrays stay numeric. */
static alk_fva *columns(alk_trace *t, const alk_fva *a, size_t from, size_t to) {
    alk_index index[2] = {ALK_ALL, ALK_SLICE((int64_t)from, (int64_t)to, 1)};
    return alk_fva_index(t, a, index, 2);
}

/* ---- QSimpleRNN ------------------------------------------------------------------------------ */

typedef struct simple_rnn {
    alk_fva *kernel, *recurrent, *bias;
    bool enable_sq;
    const char *activation;
} simple_rnn;

static alk_fva *simple_rnn_step(alk_op *op, void *ctx, alk_fva *x, alk_fva **state) {
    const simple_rnn *c = ctx;
    alk_trace *t = alk_op_trace(op);
    alk_fva *qx = cell_quantize(op, "iq_conf", "iq", x);
    alk_fva *qstate = c->enable_sq ? cell_quantize(op, "sq_conf", "sq", *state) : *state;
    alk_fva *y = alk_fva_binary(t, ALK_ADD, alk_nn_dense(t, qx, c->kernel, c->bias),
                                alk_nn_dense(t, qstate, c->recurrent, NULL));
    y = cell_quantize(op, "paq_conf", "paq", y);
    *state = alk_nn_keras_activate(t, c->activation, false, y);
    return *state;
}

void hgq_simple_rnn(alk_op *op, const void *arg) {
    (void)arg;
    int64_t units = recurrent_units(op);
    bool use_bias = alk_op_bool(op, "use_bias", true);
    simple_rnn c = {.activation = hgq_activation_name(op, "activation")};
    const alk_value *sq = alk_value_get(alk_op_config(op), "sq_conf");
    c.enable_sq = alk_op_bool(op, "enable_sq", sq != NULL && sq->kind != ALK_VALUE_NIL);
    if (alk_op_failed(op)) {
        return;
    }
    if (!alk_op_bool(op, "enable_iq", true)) {
        alk_op_fail(op, ALK_EINVAL, "enable_iq false is not supported (HGQ2's cell calls its iq)");
        return;
    }
    c.kernel = cell_weight(op, 0, "kernel", "kq_conf", HGQ_PLACE_WEIGHT, "kq");
    c.recurrent = cell_weight(op, 1, "recurrent kernel", "rkq_conf", HGQ_PLACE_WEIGHT, "rkq");
    c.bias = use_bias ? cell_weight(op, 2, "bias", "bq_conf", HGQ_PLACE_BIAS, "bq") : NULL;
    hgq_check_own_vars(op, "cell/", 2 + use_bias, 3);
    hgq_check_own_vars(op, "", alk_op_bool(op, "enable_ebops", true) ? 2 : 0, 0);
    if (!alk_op_failed(op)) {
        hgq_run_sequence(op, (size_t)units, simple_rnn_step, &c);
    }
}

/* ---- QGRU ------------------------------------------------------------------------------------ */

typedef struct gru {
    size_t units;
    alk_fva *kernel, *recurrent;
    alk_fva *input_bias, *recurrent_bias; /* NULL: none */
    bool reset_after, enable_iq;
    const char *activation, *recurrent_activation;
} gru;

static alk_fva *add_opt(alk_trace *t, alk_fva *a, alk_fva *b) {
    return b != NULL ? alk_fva_binary(t, ALK_ADD, a, b) : a;
}

static alk_fva *gru_step(alk_op *op, void *ctx, alk_fva *x, alk_fva **state) {
    const gru *c = ctx;
    alk_trace *t = alk_op_trace(op);
    size_t u = c->units;
    alk_fva *qh = cell_quantize(op, "sq_conf", "sq", *state);
    alk_fva *qx = c->enable_iq ? cell_quantize(op, "iq_conf", "iq", x) : x;
    alk_fva *mx = add_opt(t, alk_nn_dense(t, qx, c->kernel, NULL), c->input_bias);
    alk_fva *inner = c->reset_after
                         ? add_opt(t, alk_nn_dense(t, qh, c->recurrent, NULL), c->recurrent_bias)
                         : alk_nn_dense(t, qh, columns(t, c->recurrent, 0, 2 * u), NULL);
    alk_fva *zr = alk_fva_binary(t, ALK_ADD, columns(t, mx, 0, 2 * u), columns(t, inner, 0, 2 * u));
    zr = cell_quantize(op, "praq_conf", "praq",
                       alk_nn_keras_activate(t, c->recurrent_activation, false, zr));
    alk_fva *z = zr != NULL ? columns(t, zr, 0, u) : NULL;
    alk_fva *r = zr != NULL ? columns(t, zr, u, 2 * u) : NULL;
    alk_fva *rh;
    if (c->reset_after) {
        rh = alk_fva_binary(t, ALK_MUL, r,
                            cell_quantize(op, "rhq_conf", "rhq", columns(t, inner, 2 * u, 3 * u)));
    } else {
        alk_fva *gated = cell_quantize(op, "rhq_conf", "rhq", alk_fva_binary(t, ALK_MUL, r, qh));
        rh = alk_nn_dense(t, gated, columns(t, c->recurrent, 2 * u, 3 * u), NULL);
    }
    alk_fva *hh = alk_fva_binary(t, ALK_ADD, columns(t, mx, 2 * u, 3 * u), rh);
    hh = cell_quantize(op, "paq_conf", "paq", alk_nn_keras_activate(t, c->activation, false, hh));
    *state =
        alk_fva_binary(t, ALK_ADD, alk_fva_binary(t, ALK_MUL, z, qh),
                       alk_fva_binary(t, ALK_MUL, alk_fva_rbinary_scalar(t, ALK_SUB, 1.0, z), hh));
    return *state;
}

void hgq_gru(alk_op *op, const void *arg) {
    (void)arg;
    alk_trace *t = alk_op_trace(op);
    int64_t units = recurrent_units(op);
    bool use_bias = alk_op_bool(op, "use_bias", true);
    gru c = {
        .units = (size_t)(units > 0 ? units : 0),
        .reset_after = alk_op_bool(op, "reset_after", true),
        .enable_iq = alk_op_bool(op, "enable_iq", true),
        .activation = hgq_activation_name(op, "activation"),
        .recurrent_activation = hgq_activation_name(op, "recurrent_activation"),
    };
    if (alk_op_failed(op)) {
        return;
    }
    c.kernel = cell_weight(op, 0, "kernel", "kq_conf", HGQ_PLACE_WEIGHT, "kq");
    c.recurrent = cell_weight(op, 1, "recurrent kernel", "rkq_conf", HGQ_PLACE_WEIGHT, "rkq");
    alk_fva *bias = use_bias ? cell_weight(op, 2, "bias", "bq_conf", HGQ_PLACE_BIAS, "bq") : NULL;
    hgq_check_own_vars(op, "cell/", 2 + use_bias, 3);
    hgq_check_own_vars(op, "", alk_op_bool(op, "enable_ebops", true) ? 2 : 0, 0);
    size_t u = c.units;
    if (c.kernel == NULL || c.recurrent == NULL || (use_bias && bias == NULL)) {
        return;
    }
    if (alk_fva_ndim(c.kernel) != 2 || alk_fva_shape(c.kernel)[1] != 3 * u ||
        alk_fva_ndim(c.recurrent) != 2 || alk_fva_shape(c.recurrent)[0] != u ||
        alk_fva_shape(c.recurrent)[1] != 3 * u) {
        alk_op_fail(op, ALK_EINVAL, "the cell's kernels do not have 3 x %zu gate columns", u);
        return;
    }
    if (bias != NULL) {
        /* reset_after: (2, 3u), the input and the recurrent biases; else (3u,). */
        size_t rows = c.reset_after ? 2 : 1;
        if (alk_fva_size(bias) != rows * 3 * u) {
            alk_op_fail(op, ALK_EINVAL, "the cell's bias holds %zu values, expected %zu",
                        alk_fva_size(bias), rows * 3 * u);
            return;
        }
        int64_t flat[2] = {(int64_t)rows, (int64_t)(3 * u)};
        alk_fva *b = alk_fva_reshape(t, bias, 2, flat);
        alk_index row0[2] = {ALK_AT(0), ALK_ALL}, row1[2] = {ALK_AT(1), ALK_ALL};
        c.input_bias = alk_fva_index(t, b, row0, 2);
        c.recurrent_bias = c.reset_after ? alk_fva_index(t, b, row1, 2) : NULL;
    }
    hgq_run_sequence(op, u, gru_step, &c);
}
