/*
 * HGQ2's spiking layers (spec frontends.md §3.4): QSimpleSNN and QLIF, unrolled by the recurrent
 * layers' time loop (layers_rnn.c) as HGQ2's Keras cells compute them at inference:
 *
 *   mem   = [qbeta *] mem + iq(x)            (iq when enable_iq; QLIF: beta_q(beta) * mem)
 *   score = mem - threshold
 *   spike = score > 0                         (inhibition: only the first maximum of the
 *                                              scores over the units may fire, Keras's argmax)
 *   out   = oq(spike ? graded_spikes_factor_q(gsf) : 0)   (oq when enable_oq)
 *   mem   = sq(reset(mem, spike))             (subtract: mem - threshold where it fired;
 *                                              zero: 0 where it fired; none; sq when enable_sq)
 *
 * The spike is the exact comparison: HGQ2's surrogate gradient (stop_gradient(hard - soft) +
 * soft) only shapes training; its forward value is the step.
 *
 * The cell's variables are Keras's generic order over its creation order — QLIF's beta, then the
 * threshold and the graded spikes factor — trainable ones (learn_beta, learn_threshold,
 * learn_graded_spikes_factor) first: re-derived from those flags, they are not in the config.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

typedef enum snn_reset { RESET_SUBTRACT, RESET_ZERO, RESET_NONE } snn_reset;

typedef struct snn {
    const alk_fva *threshold; /* () or (units,) */
    const alk_fva *spike;     /* quantized graded spikes factor */
    const alk_fva *beta;      /* QLIF: quantized beta, else NULL */
    bool enable_iq, enable_oq, enable_sq, inhibition;
    snn_reset reset;
} snn;

static alk_fva *cell_quantize(alk_op *op, const char *key, const char *name, alk_fva *x) {
    char path[HGQ_PATH_MAX];
    alk_hgq_quantizer q;
    if (x == NULL || !hgq_path(op, path, "cell/", name) ||
        !hgq_quantizer_of(op, key, HGQ_PLACE_DATALANE, path, &q)) {
        return NULL;
    }
    return hgq_quantize(op, &q, path, x);
}

/* Only the first maximum of the scores over the units (axis 1) may fire: score_i > score_j for
 * j < i and score_i >= score_j for j > i, as the reference builds Keras's argmax. */
static alk_fva *first_maximum(alk_op *op, alk_fva *fire, alk_fva *score, size_t units) {
    alk_trace *t = alk_op_trace(op);
    alk_fva **columns = alk_malloc(units * sizeof(*columns));
    if (columns == NULL) {
        alk_op_fail(op, ALK_EINVAL, "out of memory for %zu units", units);
        return NULL;
    }
    int axis = 1;
    for (size_t i = 0; i < units; i++) {
        alk_index at_i[2] = {ALK_ALL, ALK_SLICE((int64_t)i, (int64_t)i + 1, 1)};
        alk_fva *si = alk_fva_index(t, score, at_i, 2);
        alk_fva *win = alk_fva_index(t, fire, at_i, 2);
        if (i > 0) {
            alk_index before[2] = {ALK_ALL, ALK_SLICE(0, (int64_t)i, 1)};
            alk_fva *gt = alk_fva_binary(t, ALK_GREATER, si, alk_fva_index(t, score, before, 2));
            win = alk_fva_binary(t, ALK_BITWISE_AND, win,
                                 alk_fva_reduce(t, ALK_REDUCE_ALL, gt, &axis, 1, true));
        }
        if (i + 1 < units) {
            alk_index after[2] = {ALK_ALL, ALK_SLICE((int64_t)i + 1, (int64_t)units, 1)};
            alk_fva *ge =
                alk_fva_binary(t, ALK_GREATER_EQUAL, si, alk_fva_index(t, score, after, 2));
            win = alk_fva_binary(t, ALK_BITWISE_AND, win,
                                 alk_fva_reduce(t, ALK_REDUCE_ALL, ge, &axis, 1, true));
        }
        columns[i] = win;
    }
    alk_fva *result = alk_fva_concatenate(t, columns, units, 1);
    alk_free(columns);
    return result;
}

static alk_fva *snn_step(alk_op *op, void *ctx, alk_fva *x, alk_fva **state) {
    const snn *c = ctx;
    alk_trace *t = alk_op_trace(op);
    alk_fva *mem = c->beta != NULL ? alk_fva_binary(t, ALK_MUL, *state, c->beta) : *state;
    mem = alk_fva_binary(t, ALK_ADD, mem, c->enable_iq ? cell_quantize(op, "iq_conf", "iq", x) : x);
    alk_fva *score = alk_fva_binary(t, ALK_SUB, mem, c->threshold);
    alk_fva *fire = alk_fva_binary_scalar(t, ALK_GREATER, score, 0.0);
    if (c->inhibition && fire != NULL) {
        fire = first_maximum(op, fire, score, alk_fva_shape(fire)[1]);
    }
    alk_fva *zero = alk_fva_scalar(t, 0.0);
    alk_fva *out = alk_fva_where(t, fire, c->spike, zero);
    if (c->enable_oq) {
        out = cell_quantize(op, "oq_conf", "oq", out);
    }
    switch (c->reset) {
    case RESET_SUBTRACT:
        mem = alk_fva_where(t, fire, score, mem);
        break;
    case RESET_ZERO:
        mem = alk_fva_where(t, fire, zero, mem);
        break;
    case RESET_NONE:
        break;
    }
    *state = c->enable_sq ? cell_quantize(op, "sq_conf", "sq", mem) : mem;
    return out;
}

/* cell/vars/<index> (a scalar or one value per unit). */
static alk_fva *cell_var(alk_op *op, size_t index, const char *what, size_t units) {
    char dataset[32];
    (void)snprintf(dataset, sizeof(dataset), "cell/vars/%zu", index);
    alk_fva *v = alk_op_tensor_opt(op, dataset);
    if (v == NULL || (alk_fva_size(v) != 1 && alk_fva_size(v) != units) || alk_fva_ndim(v) > 1) {
        if (!alk_op_failed(op)) {
            alk_op_fail(op, ALK_EINVAL, "dataset %s (the cell's %s: a scalar or %zu values) is %s",
                        dataset, what, units, v == NULL ? "missing" : "of another shape");
        }
        return NULL;
    }
    return v;
}

/* A cell variable quantized in float32 by the cell quantizer of `key` at cell/<name>. */
static alk_fva *quantized_var(alk_op *op, alk_fva *v, const char *key, const char *name) {
    char path[HGQ_PATH_MAX];
    alk_hgq_quantizer q;
    if (v == NULL || !hgq_path(op, path, "cell/", name) ||
        !hgq_quantizer_of(op, key, HGQ_PLACE_WEIGHT, path, &q)) {
        return NULL;
    }
    return hgq_quantize_weight(op, &q, path, v);
}

void hgq_snn(alk_op *op, const void *lif) {
    static const char *const resets[] = {"subtract", "zero", "none", NULL};
    int64_t units = alk_op_int(op, "units", -1);
    snn c = {
        .enable_iq = alk_op_bool(op, "enable_iq", true),
        .enable_oq = alk_op_bool(op, "enable_oq", false),
        .enable_sq = alk_op_bool(op, "enable_sq", true),
        .inhibition = alk_op_bool(op, "inhibition", false),
        .reset = (snn_reset)alk_op_enum(op, "reset_mechanism", resets, RESET_SUBTRACT),
    };
    if (alk_op_failed(op)) {
        return;
    }
    if (units < 1) {
        alk_op_fail(op, ALK_EINVAL, "units must be positive");
        return;
    }
    /* Creation order beta (QLIF), threshold, factor; the trainable ones first. */
    enum { BETA, THRESHOLD, FACTOR, N_VARS };
    const bool exists[N_VARS] = {lif != NULL, true, true};
    const bool trainable[N_VARS] = {alk_op_bool(op, "learn_beta", false),
                                    alk_op_bool(op, "learn_threshold", false),
                                    alk_op_bool(op, "learn_graded_spikes_factor", false)};
    size_t index[N_VARS] = {0}, n = 0;
    for (int pass = 1; pass >= 0; pass--) {
        for (size_t v = 0; v < N_VARS; v++) {
            if (exists[v] && trainable[v] == (pass == 1)) {
                index[v] = n++;
            }
        }
    }
    hgq_check_own_vars(op, "cell/", n, n);
    hgq_check_own_vars(op, "", alk_op_bool(op, "enable_ebops", true) ? 2 : 0, 0);
    c.threshold = cell_var(op, index[THRESHOLD], "threshold", (size_t)units);
    c.spike = quantized_var(op, cell_var(op, index[FACTOR], "graded spikes factor", (size_t)units),
                            "graded_spikes_factor_q_conf", "graded_spikes_factor_q");
    if (lif != NULL) {
        c.beta = quantized_var(op, cell_var(op, index[BETA], "beta", (size_t)units), "beta_q_conf",
                               "beta_q");
    }
    if (!alk_op_failed(op)) {
        hgq_run_sequence(op, (size_t)units, snn_step, &c);
    }
}
