/*
 * The input and output quantizers every HGQ2 mixin layer gets (spec frontends.md §3.2), as the
 * plugin's before_op / after_op hooks: the kit runs them around every row of this plugin except
 * those that own their quantizers (ALK_OP_OWN_IQ / ALK_OP_OWN_OQ).
 *
 * before_op quantizes the first argument with `iq` when `enable_iq`: one array, or for a layer
 * called with a list (merges, QEinsum, QDot) one quantizer per input, stored at
 * `iq/quantizers/quantizer`, `iq/quantizers/quantizer_1`, ... (Keras names the entries of
 * MultipleQuantizers' tuple by class, counting repeats), configured by `iq_confs` (a list, or
 * one config for every input). The quantized inputs are dumped as `post_iq`.
 * after_op quantizes the (activated) result with `oq` when `enable_oq`.
 *
 * Defaults when a config lacks the flag are HGQ2's: iq on and oq off, except QSoftmax (iq off)
 * and the function tables (oq on).
 *
 * Thread rule: one job's thread.
 */
#include "plugins/hgq/hgq_int.h"

#include <stdio.h>
#include <string.h>

enum { MAX_INPUTS = 64 };

static bool class_is(const alk_op *op, const char *name) {
    return strcmp(alk_op_class(op), name) == 0;
}

static bool iq_default(const alk_op *op) {
    return !class_is(op, "QSoftmax");
}

static bool oq_default(const alk_op *op) {
    return class_is(op, "QUnaryFunctionLUT") || class_is(op, "QAffinedUnaryFunctionLUT");
}

/* One quantizer per input of a layer called with a list. */
static void quantize_inputs(alk_op *op, const alk_arg *list) {
    size_t n = list->as.seq.len;
    if (n > MAX_INPUTS) {
        alk_op_fail(op, ALK_EINVAL, "%zu inputs; at most %d are supported", n, MAX_INPUTS);
        return;
    }
    const alk_value *confs = alk_value_get(alk_op_config(op), "iq_confs");
    bool per_input = confs != NULL && confs->kind == ALK_VALUE_ARRAY;
    if (per_input && confs->as.array.len != n) {
        alk_op_fail(op, ALK_EINVAL, "iq_confs holds %zu configs for %zu inputs",
                    confs->as.array.len, n);
        return;
    }
    alk_fva *quantized[MAX_INPUTS];
    const alk_arg *items[MAX_INPUTS];
    for (size_t j = 0; j < n && !alk_op_failed(op); j++) {
        const alk_arg *item = list->as.seq.items[j];
        if (item->kind != ALK_ARG_ARRAY) {
            alk_op_fail(op, ALK_EINVAL, "input %zu is a %s, not a tensor", j,
                        alk_arg_kind_name(item->kind));
            return;
        }
        char path[HGQ_PATH_MAX];
        if (j == 0) {
            (void)snprintf(path, sizeof(path), "iq/quantizers/quantizer");
        } else {
            (void)snprintf(path, sizeof(path), "iq/quantizers/quantizer_%zu", j);
        }
        alk_hgq_quantizer q;
        if (hgq_quantizer_read(op, per_input ? confs->as.array.items[j] : confs, HGQ_PLACE_DATALANE,
                               path, &q)) {
            quantized[j] = hgq_quantize(op, &q, path, item->as.array);
            items[j] = alk_arg_of_array(op, quantized[j]);
        }
    }
    if (alk_op_failed(op)) {
        return;
    }
    alk_op_dump(op, "post_iq", quantized, n);
    alk_op_set_arg(op, 0, alk_arg_of_seq(op, list->kind, items, n));
}

void hgq_before_op(alk_op *op) {
    if (!alk_op_bool(op, "enable_iq", iq_default(op))) {
        return;
    }
    const alk_arg *first = alk_op_arg(op, 0);
    if (first != NULL && (first->kind == ALK_ARG_LIST || first->kind == ALK_ARG_TUPLE)) {
        quantize_inputs(op, first);
        return;
    }
    alk_fva *x = hgq_apply(op, "iq_conf", HGQ_PLACE_DATALANE, "iq", alk_op_in(op, 0));
    if (x != NULL) {
        alk_op_dump(op, "post_iq", &x, 1);
        alk_op_set_in(op, 0, x);
    }
}

void hgq_after_op(alk_op *op) {
    if (!alk_op_bool(op, "enable_oq", oq_default(op))) {
        return;
    }
    if (alk_op_n_results(op) != 1 || alk_op_result_array(op, 0) == NULL) {
        alk_op_fail(op, ALK_EINVAL, "an output quantizer needs one tensor result, got %zu",
                    alk_op_n_results(op));
        return;
    }
    /* A function table's default output quantizer is a table quantizer. */
    hgq_place place = oq_default(op) ? HGQ_PLACE_TABLE : HGQ_PLACE_DATALANE;
    alk_fva *y = hgq_apply(op, "oq_conf", place, "oq", alk_op_result_array(op, 0));
    if (y != NULL) {
        alk_op_set_result(op, 0, alk_arg_of_array(op, y));
    }
}
