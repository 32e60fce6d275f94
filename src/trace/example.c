/*
 * The example model of spec trace-alir.md §5, step by step as the reference's operation(x)
 * evaluates it (the comments give the Python line). Each array operation below is the one numpy
 * would dispatch to, so the traced graph — and after optimisation the ALIR — is the reference's.
 */
#include "trace/example.h"
#include "trace/emit.h"

#include <math.h>

alk_fva *alk_example_operation(alk_trace *t, const alk_fva *x0) {
    if (x0 == NULL || alk_fva_ndim(x0) != 2) {
        alk_trace_fail(t, ALK_EINVAL, "the example model needs a 2-D input");
        return NULL;
    }
    /* x = quantize(x, 1, 8, 4) */
    alk_fva *x = alk_fva_quantize(t, x0, 1, 8, 4, ALK_WRAP, ALK_TRN);
    /* a = np.maximum(x, 0) */
    alk_fva *a = alk_fva_binary_scalar(t, ALK_MAXIMUM, x, 0);
    /* b = x[:, 1::2].T */
    alk_index cols[2] = {ALK_ALL, ALK_SLICE(1, ALK_FV_NONE, 2)};
    alk_fva *b = alk_fva_transpose(t, alk_fva_index(t, x, cols, 2), NULL);
    /* c = np.round(np.sin(b) * np.pi): sin is pending, * pi composes, round builds the table. */
    alk_fva *c = alk_fva_unary(
        t, ALK_ROUND, alk_fva_binary_scalar(t, ALK_MUL, alk_fva_apply(t, b, ALK_FN_SIN), M_PI));
    /* d = np.repeat(c, 2, axis=0) * 3 + 4 */
    alk_fva *d = alk_fva_binary_scalar(
        t, ALK_ADD, alk_fva_binary_scalar(t, ALK_MUL, alk_fva_repeat(t, c, 2, 0), 3), 4);
    /* e = np.max(np.stack([d, -d * 2], axis=0), axis=0) */
    alk_fva *stacked[2] = {d,
                           alk_fva_binary_scalar(t, ALK_MUL, alk_fva_unary(t, ALK_NEGATIVE, d), 2)};
    int axis0 = 0;
    alk_fva *e =
        alk_fva_reduce(t, ALK_REDUCE_MAX, alk_fva_stack(t, stacked, 2, 0), &axis0, 1, false);
    /* f = c @ e.T */
    alk_fva *f = alk_fva_matmul(t, c, alk_fva_transpose(t, e, NULL));
    /* g = np.einsum('ij,kj->ik', c, d) */
    alk_fva *g = alk_fva_einsum(t, "ij,kj->ik", c, d);
    /* h = np.sum(g, axis=0) */
    alk_fva *h = alk_fva_reduce(t, ALK_REDUCE_SUM, g, &axis0, 1, false);
    /* idx = np.argsort(h)[:2]; j = h[idx].ravel() */
    alk_index first2[1] = {ALK_SLICE(ALK_FV_NONE, 2, ALK_FV_NONE)};
    alk_fva *j =
        alk_fva_ravel(t, alk_fva_index(t, alk_fva_sort_by(t, h, h, ALK_SORT_BATCHER), first2, 1));
    /* j[None] + f[..., None] + a[-2::-4, :2] + ((a[0, -2:] > 0) & (a[-1, :2] > 0)) */
    alk_index row_none[2] = {ALK_NEWAXIS, ALK_ELLIPSIS};
    alk_index last_none[2] = {ALK_ELLIPSIS, ALK_NEWAXIS};
    alk_index rows[2] = {ALK_SLICE(-2, ALK_FV_NONE, -4), ALK_SLICE(ALK_FV_NONE, 2, ALK_FV_NONE)};
    alk_index first_row[2] = {ALK_AT(0), ALK_SLICE(-2, ALK_FV_NONE, ALK_FV_NONE)};
    alk_index last_row[2] = {ALK_AT(-1), ALK_SLICE(ALK_FV_NONE, 2, ALK_FV_NONE)};
    alk_fva *out = alk_fva_binary(t, ALK_ADD, alk_fva_index(t, j, row_none, 2),
                                  alk_fva_index(t, f, last_none, 2));
    out = alk_fva_binary(t, ALK_ADD, out, alk_fva_index(t, a, rows, 2));
    alk_fva *p = alk_fva_binary_scalar(t, ALK_GREATER, alk_fva_index(t, a, first_row, 2), 0);
    alk_fva *q = alk_fva_binary_scalar(t, ALK_GREATER, alk_fva_index(t, a, last_row, 2), 0);
    return alk_fva_binary(t, ALK_ADD, out, alk_fva_binary(t, ALK_BITWISE_AND, p, q));
}

int alk_example_trace(const size_t shape[2], const alk_trace_config *config,
                      alk_program **ret_program, alk_diag *diag) {
    for (int d = 0; d < 2; d++) {
        if (shape[d] < 2 || shape[d] > 4096) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "example shape (%zu, %zu): each dimension must be 2..4096",
                                shape[0], shape[1]);
        }
    }
    alk_trace *t = NULL;
    int rv = alk_trace_new(config, &t);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "cannot create a trace context");
    }
    alk_fva *x = alk_fva_input(t, 2, shape);
    alk_fva *out = alk_example_operation(t, x);
    if (out != NULL) {
        rv = alk_fva_trace(t, &x, 1, &out, 1, true, ret_program);
    }
    rv = alk_trace_error(t);
    if (rv != ALK_OK) {
        alk_diag_set(diag, rv, "%s", alk_trace_message(t));
    }
    alk_trace_free(t);
    return rv;
}
