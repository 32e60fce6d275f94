/*
 * Window geometry: how a convolution or pool window resolves per input size (frontends §2.2
 * "Patch extraction", Keras's conv-transpose padding rules, torch's pool output sizes), and the
 * conversion of a resolved window into the patch gathers of trace/fvarray.h.
 *
 * Design. Every frontend describes its window once (alk_nn_window); the padding rules of both
 * frameworks are resolved here, into the per-axis (before, out) pair that decides which input a
 * tap reads. The patch primitives size their output from (before, after, output_padding), so a
 * resolved geometry is handed to them as pads and output padding that give exactly `out`: only
 * `before` moves taps; `after` and `output_padding` only decide where the output ends.
 */
#include "nn/nn_int.h"

#include <string.h>

void alk_nn_window_init(alk_nn_window *w, size_t rank, const size_t *kernel) {
    memset(w, 0, sizeof(*w));
    w->rank = rank;
    for (size_t d = 0; d < rank && d < ALK_NN_MAX_RANK; d++) {
        w->kernel[d] = kernel[d];
        w->strides[d] = 1;
        w->dilation[d] = 1;
    }
    w->padding = ALK_NN_PAD_VALID;
    w->groups = 1;
}

/* Sizes come from model files: every one is bounded before it enters arithmetic, so the
 * products and sums below stay far from overflow. */
enum { MAX_EXTENT = 1 << 24 };

static bool check_window(alk_trace *t, const alk_nn_window *w) {
    if (w->rank < 1 || w->rank > ALK_NN_MAX_RANK) {
        alk_trace_fail(t, ALK_EINVAL, "window of rank %zu: 1 to %d spatial axes are supported",
                       w->rank, ALK_NN_MAX_RANK);
        return false;
    }
    for (size_t d = 0; d < w->rank; d++) {
        const char *bad = NULL;
        if (w->kernel[d] < 1 || w->kernel[d] > MAX_EXTENT) {
            bad = "kernel size";
        } else if (w->strides[d] < 1 || w->strides[d] > MAX_EXTENT) {
            bad = "stride";
        } else if (w->dilation[d] < 1 || w->dilation[d] > MAX_EXTENT) {
            bad = "dilation";
        } else if (w->pads[d][0] > MAX_EXTENT || w->pads[d][1] > MAX_EXTENT) {
            bad = "padding";
        } else if (w->output_padding[d] > MAX_EXTENT) {
            bad = "output padding";
        }
        if (bad != NULL) {
            alk_trace_fail(t, ALK_EINVAL, "spatial axis %zu: %s out of range", d, bad);
            return false;
        }
    }
    return true;
}

/* Keras/TF 'same' for a forward window: the output keeps ceil(n/s) positions. */
static void same_pads(int64_t n, int64_t k_eff, int64_t s, int64_t *before, int64_t *after) {
    int64_t out = (n + s - 1) / s;
    int64_t total = (out - 1) * s + k_eff - n;
    if (total < 0) {
        total = 0;
    }
    *before = total / 2;
    *after = total - total / 2;
}

/* Forward window, one axis: pads, then the output size (floor, or torch's ceil_mode). */
static bool resolve_forward(alk_trace *t, const alk_nn_window *w, size_t d, int64_t n,
                            alk_nn_geometry *g) {
    int64_t k_eff = (int64_t)((w->kernel[d] - 1) * w->dilation[d] + 1);
    int64_t s = (int64_t)w->strides[d];
    int64_t before = 0, after = 0;
    switch (w->padding) {
    case ALK_NN_PAD_VALID:
        break;
    case ALK_NN_PAD_SAME:
        same_pads(n, k_eff, s, &before, &after);
        break;
    case ALK_NN_PAD_CAUSAL:
        before = k_eff - 1;
        break;
    case ALK_NN_PAD_EXPLICIT:
        before = (int64_t)w->pads[d][0];
        after = (int64_t)w->pads[d][1];
        break;
    }
    int64_t span = n + before + after - k_eff;
    int64_t out = span >= 0 ? span / s + 1 : 0;
    if (w->ceil_mode && span + s - 1 >= 0) {
        /* torch: ceil, but the last window must start inside the input or its left padding;
         * a single window may then be wider than the padded input (AvgPool1d(2, ceil_mode=True)
         * of one value is that value). */
        out = (span + s - 1) / s + 1;
        if ((out - 1) * s >= n + before) {
            out--;
        }
    }
    if (out < 1) {
        alk_trace_fail(t, ALK_EINVAL,
                       "spatial axis %zu: the window (%lld taps wide) is larger than the padded "
                       "input (%lld)",
                       d, (long long)k_eff, (long long)(n + before + after));
        return false;
    }
    g->before[d] = (size_t)before;
    g->after[d] = (size_t)after;
    g->out[d] = (size_t)out;
    return true;
}

/* Transposed window, one axis: where output 0 reads from (`before`) and the output size. */
static void resolve_transposed(const alk_nn_window *w, size_t d, int64_t n, alk_nn_geometry *g) {
    int64_t k_eff = (int64_t)((w->kernel[d] - 1) * w->dilation[d] + 1);
    int64_t s = (int64_t)w->strides[d];
    int64_t op = (int64_t)w->output_padding[d];
    int64_t before = 0, after = 0, out;
    switch (w->padding) {
    case ALK_NN_PAD_SAME:
        if (!w->has_output_padding) {
            /* Keras: the output is n*s long. */
            before = k_eff > s ? (k_eff - s) / 2 : 0;
            out = n * s;
        } else {
            /* Keras's JAX rule (TensorFlow's gives the same): a total padding of
             * k' + k'%2 - 2 + op, of which at most k' - 1 goes on the left. */
            int64_t total = k_eff + k_eff % 2 - 2 + op;
            int64_t left = total / 2 + total % 2;
            if (left > k_eff - 1) {
                left = k_eff - 1;
            }
            before = k_eff - 1 - left;
            out = (n - 1) * s + k_eff % 2 + op;
        }
        break;
    case ALK_NN_PAD_EXPLICIT:
        before = (int64_t)w->pads[d][0];
        after = (int64_t)w->pads[d][1];
        out = (n - 1) * s - before - after + k_eff + op;
        break;
    default:
        /* VALID (CAUSAL is refused before): Keras's None fills the output to (n-1)*s + max(k', s).
         */
        if (!w->has_output_padding) {
            op = k_eff < s ? s - k_eff : 0;
        }
        out = (n - 1) * s + k_eff + op;
        break;
    }
    g->before[d] = (size_t)before;
    g->after[d] = (size_t)after;
    g->out[d] = (size_t)(out > 0 ? out : 0);
}

int alk_nn_window_resolve(alk_trace *t, const alk_nn_window *w, const size_t *in, bool transposed,
                          alk_nn_geometry *ret_geometry) {
    if (alk_trace_error(t) != ALK_OK) {
        return alk_trace_error(t);
    }
    if (!check_window(t, w)) {
        return alk_trace_error(t);
    }
    if (transposed && w->padding == ALK_NN_PAD_CAUSAL) {
        return alk_trace_fail(t, ALK_EINVAL,
                              "'causal' padding is not defined for a transposed "
                              "convolution");
    }
    alk_nn_geometry g;
    memset(&g, 0, sizeof(g));
    g.rank = w->rank;
    for (size_t d = 0; d < w->rank; d++) {
        if (in[d] < 1 || in[d] > MAX_EXTENT) {
            return alk_trace_fail(t, ALK_EINVAL, "spatial axis %zu: input size %zu out of range", d,
                                  in[d]);
        }
        g.in[d] = in[d];
        if (transposed) {
            resolve_transposed(w, d, (int64_t)in[d], &g);
        } else if (!resolve_forward(t, w, d, (int64_t)in[d], &g)) {
            return alk_trace_error(t);
        }
        if (g.out[d] < 1) {
            return alk_trace_fail(t, ALK_EINVAL, "spatial axis %zu: empty output", d);
        }
    }
    *ret_geometry = g;
    return ALK_OK;
}

/* The patch spec that reproduces `g`: the gathers size their output from before + after (and the
 * output padding of the transposed form), so `after` is chosen to give g->out exactly; taps past
 * the input read the pad value whatever the chosen `after`. */
void alk__nn_patch_spec(const alk_nn_window *w, const alk_nn_geometry *g, bool transposed,
                        alk_patch_spec *ret_spec) {
    alk_patch_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.rank = w->rank;
    for (size_t d = 0; d < w->rank; d++) {
        int64_t n = (int64_t)g->in[d];
        int64_t k_eff = (int64_t)((w->kernel[d] - 1) * w->dilation[d] + 1);
        int64_t s = (int64_t)w->strides[d];
        int64_t before = (int64_t)g->before[d];
        int64_t out = (int64_t)g->out[d];
        spec.size[d] = w->kernel[d];
        spec.strides[d] = w->strides[d];
        spec.dilation[d] = w->dilation[d];
        spec.pads[d][0] = before;
        if (transposed) {
            /* out = (n-1)*s - before - after + k' + op: split the difference into after >= 0 or
             * op >= 0. */
            int64_t rest = (n - 1) * s - before + k_eff - out;
            spec.pads[d][1] = rest > 0 ? rest : 0;
            spec.output_padding[d] = rest < 0 ? (size_t)-rest : 0;
        } else {
            /* out = (n + before + after - k')/s + 1: the smallest after that reaches it. */
            int64_t after = (out - 1) * s + k_eff - n - before;
            spec.pads[d][1] = after > 0 ? after : 0;
        }
    }
    *ret_spec = spec;
}
