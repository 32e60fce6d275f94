/*
 * Plain (unquantized) float models: the 64-bit check and the two precision options (issue 12,
 * README "Plain float models"). Neither exists in the reference.
 *
 * An ALIR value is at most 64 bits wide, and the exact product of a fixed-point input with
 * float32 weights keeps every fractional bit of both: a trained float model's layers need far
 * more after a few layers. The tracer's hooks check every layer of its own table:
 *   - before the body (when --weight-kif is not given), the fractional bits the exact result
 *     cannot have fewer of: the input's plus the weights', so that a too-wide layer fails before
 *     its constant-matrix product is solved;
 *   - after the activation, the width of every output element.
 * Each failure names the layer and the width and says which options exist:
 *   - weight_kif (K, I, F): every float weight of the layer (kernel, bias, PReLU alpha,
 *     embeddings, batch-norm's folded scale and offset) is replaced by Q(w; K, I, F, RND, SAT)
 *     before tracing (Q of frontends.md §3.1, alk_quantize_float);
 *   - layer_output_kif (K, I, F): every output of every layer, after its activation, becomes
 *     Q(y; K, I, F, TRN, WRAP) (ap_fixed's default AP_TRN / AP_WRAP).
 * They come from the request's `model.precision` map (alkaidc --weight-kif, --layer-output-kif)
 * and apply to built-in Keras rows only: second-level rows (HGQ2) have quantizers of their own.
 *
 * Thread rule: one job's thread.
 */
#include "plugins/keras/keras_int.h"

#include "cmvm/cmvm.h"
#include "core/alloc.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { ALIR_MAX_BITS = 64 };

/* ---- Options -----------------------------------------------------------------------------------
 */

static int parse_kif(const alk_value *v, const char *key, int out[3], alk_diag *diag) {
    if (v->kind != ALK_VALUE_ARRAY || v->as.array.len != 3) {
        return alk_diag_set(diag, ALK_EINVAL, "model.precision.%s must be [K, I, F]", key);
    }
    for (int j = 0; j < 3; j++) {
        const alk_value *item = v->as.array.items[j];
        if (item->kind != ALK_VALUE_INT || item->as.integer < -ALIR_MAX_BITS ||
            item->as.integer > ALIR_MAX_BITS) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "model.precision.%s[%d] must be an integer in [-64, 64]", key, j);
        }
        out[j] = (int)item->as.integer;
    }
    if (out[0] != 0 && out[0] != 1) {
        return alk_diag_set(diag, ALK_EINVAL, "model.precision.%s: K (the sign bit) is 0 or 1",
                            key);
    }
    int width = out[0] + out[1] + out[2];
    if (width < 1 || width > ALIR_MAX_BITS) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "model.precision.%s: K + I + F = %d, not a width of 1 to 64 bits", key,
                            width);
    }
    return ALK_OK;
}

int keras_precision_parse(keras_precision *precision, const alk_value *model, alk_diag *diag) {
    *precision = (keras_precision){0};
    const alk_value *map = alk_value_get(model, "precision");
    if (map == NULL || map->kind == ALK_VALUE_NIL) {
        return ALK_OK;
    }
    if (map->kind != ALK_VALUE_MAP) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "model.precision must be a map {weight_kif, layer_output_kif}");
    }
    for (size_t i = 0; i < map->as.map.len; i++) {
        const char *key = map->as.map.pairs[i].key->as.str.bytes;
        const alk_value *v = map->as.map.pairs[i].value;
        int rv = ALK_OK;
        if (strcmp(key, "weight_kif") == 0) {
            precision->has_weight_kif = v->kind != ALK_VALUE_NIL;
            rv = precision->has_weight_kif ? parse_kif(v, key, precision->weight_kif, diag) : rv;
        } else if (strcmp(key, "layer_output_kif") == 0) {
            precision->has_output_kif = v->kind != ALK_VALUE_NIL;
            rv = precision->has_output_kif ? parse_kif(v, key, precision->output_kif, diag) : rv;
        } else {
            rv = alk_diag_set(diag, ALK_EINVAL,
                              "model.precision.%s is unknown (weight_kif, layer_output_kif)", key);
        }
        if (rv != ALK_OK) {
            return rv;
        }
    }
    return ALK_OK;
}

/* ---- Bits ------------------------------------------------------------------------------------ */

/* The fractional bits of a finite double: the smallest f >= 0 with x * 2^f an integer. */
static int frac_bits(double x) {
    if (x == 0.0 || !isfinite(x)) {
        return 0;
    }
    int e;
    double m = frexp(fabs(x), &e); /* x = m * 2^e, m in [0.5, 1) */
    uint64_t mant = (uint64_t)ldexp(m, 53);
    int tz = 0;
    while ((mant & 1u) == 0) {
        mant >>= 1;
        tz++;
    }
    int f = 53 - e - tz;
    return f > 0 ? f : 0;
}

static int array_frac_bits(const alk_fva *w) {
    int f = 0;
    for (size_t i = 0; w != NULL && i < alk_fva_size(w); i++) {
        int fi = frac_bits(alk_fva_num_at(w, i));
        f = fi > f ? fi : f;
    }
    return f;
}

/* The widest element of a variable array: width k + i + f and its fractional bits. */
static void variable_bits(const alk_fva *a, int *ret_width, int *ret_frac) {
    *ret_width = 0;
    *ret_frac = 0;
    if (a == NULL || alk_fva_is_numeric(a) || alk_fva_is_pending(a)) {
        return;
    }
    for (size_t i = 0; i < alk_fva_size(a); i++) {
        const alk_fvar *v = alk_fva_at(a, i);
        int k, bits_i, f;
        if (v == NULL) {
            continue;
        }
        alk_fv_kif(v, &k, &bits_i, &f);
        *ret_width = k + bits_i + f > *ret_width ? k + bits_i + f : *ret_width;
        *ret_frac = f > *ret_frac ? f : *ret_frac;
    }
}

/* The exponent of the lowest set bit of x (x != 0, finite). */
static int lsb_exponent(double x) {
    int e;
    double m = frexp(fabs(x), &e);
    uint64_t mant = (uint64_t)ldexp(m, 53);
    int tz = 0;
    while ((mant & 1u) == 0) {
        mant >>= 1;
        tz++;
    }
    return e - 53 + tz;
}

/*
 * The widest integer the constant-matrix solver would get from `kernel` (its last axis the
 * columns, the others the rows), in bits: the solver centres every column, then every row, by
 * its lowest set bit and takes integers below 2^ALK_CMVM_MAX_ENTRY_BITS (cmvm.h). Checking it
 * here lets a float kernel fail with the options' hint before the solver sees it.
 */
static int solver_bits(alk_op *op, const alk_fva *kernel) {
    size_t ndim = alk_fva_ndim(kernel);
    size_t cols = ndim > 0 ? alk_fva_shape(kernel)[ndim - 1] : 1;
    size_t rows = cols > 0 ? alk_fva_size(kernel) / cols : 0;
    int *col_shift = alk_calloc(cols + 1, sizeof(int));
    int *row_shift = alk_calloc(rows + 1, sizeof(int));
    int widest = 0;
    if (col_shift == NULL || row_shift == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < cols; j++) {
        col_shift[j] = INT32_MAX;
        for (size_t i = 0; i < rows; i++) {
            double v = alk_fva_num_at(kernel, i * cols + j);
            int l = v != 0.0 ? lsb_exponent(v) : INT32_MAX;
            col_shift[j] = l < col_shift[j] ? l : col_shift[j];
        }
        col_shift[j] = col_shift[j] == INT32_MAX ? 0 : col_shift[j];
    }
    for (size_t i = 0; i < rows; i++) {
        row_shift[i] = INT32_MAX;
        for (size_t j = 0; j < cols; j++) {
            double v = alk_fva_num_at(kernel, i * cols + j);
            int l = v != 0.0 ? lsb_exponent(v) - col_shift[j] : INT32_MAX;
            row_shift[i] = l < row_shift[i] ? l : row_shift[i];
        }
        row_shift[i] = row_shift[i] == INT32_MAX ? 0 : row_shift[i];
    }
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            double v =
                fabs(ldexp(alk_fva_num_at(kernel, i * cols + j), -col_shift[j] - row_shift[i]));
            int bits = v >= 1.0 ? ilogb(v) + 1 : 0;
            widest = bits > widest ? bits : widest;
        }
    }
done:
    alk_free(col_shift);
    alk_free(row_shift);
    return widest;
}

/* ---- Quantizing weights -------------------------------------------------------------------------
 */

/* Q(w; K, I, F, RND, SAT) of every element of a numeric array. */
static alk_fva *quantize_numbers(alk_op *op, const alk_fva *w, const int kif[3]) {
    size_t n = alk_fva_size(w);
    double *values = alk_malloc((n > 0 ? n : 1) * sizeof(double));
    if (values == NULL) {
        alk_op_fail(op, ALK_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        values[i] =
            alk_quantize_float(alk_fva_num_at(w, i), kif[0], kif[1], kif[2], ALK_SAT, ALK_RND);
    }
    alk_fva *q = alk_fva_numbers(alk_op_trace(op), alk_fva_ndim(w), alk_fva_shape(w), values);
    alk_free(values);
    return q;
}

alk_fva *keras_derived_weight(alk_op *op, alk_fva *w) {
    const keras_job *job = alk_op_scope_data(op);
    if (job == NULL || !job->precision.has_weight_kif || w == NULL) {
        return w;
    }
    return quantize_numbers(op, w, job->precision.weight_kif);
}

/* The float weights --weight-kif quantizes: the roles of the built-in layers that hold them. */
static const char *const float_roles[] = {"kernel", "alpha", "embeddings", "bias"};

/* The options' hint of every refusal. */
#define HINT                                                                                       \
    "quantize the weights with --weight-kif K,I,F and the layer outputs with "                     \
    "--layer-output-kif K,I,F (model.precision in a request), as hls4ml's default precision does"

void keras_before_op(alk_op *op) {
    const keras_job *job = alk_op_scope_data(op);
    if (job == NULL) {
        return;
    }
    int f_weights = 0;
    int f_bias = 0;
    for (size_t r = 0; r < sizeof(float_roles) / sizeof(float_roles[0]); r++) {
        alk_fva *w = alk_op_weight_opt(op, float_roles[r]);
        if (w == NULL) {
            continue;
        }
        if (job->precision.has_weight_kif) {
            alk_op_set_weight(op, float_roles[r],
                              quantize_numbers(op, w, job->precision.weight_kif));
        } else if (strcmp(float_roles[r], "bias") == 0) {
            f_bias = array_frac_bits(w);
        } else {
            int f = array_frac_bits(w);
            f_weights = f > f_weights ? f : f_weights;
            int bits = strcmp(float_roles[r], "kernel") == 0 ? solver_bits(op, w) : 0;
            if (bits > ALK_CMVM_MAX_ENTRY_BITS) {
                alk_op_fail(op, ALK_EINVAL,
                            "its kernel (float weights with up to %d fractional bits) needs "
                            "%d-bit integers in the constant-matrix solver, which takes at most "
                            "%d: a plain float model has no exact fixed-point form; " HINT,
                            f, bits, ALK_CMVM_MAX_ENTRY_BITS);
                return;
            }
        }
    }
    if (job->precision.has_weight_kif || (f_weights == 0 && f_bias == 0)) {
        return;
    }
    /* The product's last bit is 2^-(f_in + f_w); a sign bit comes on top. */
    int f_in = 0;
    for (size_t i = 0; i < alk_op_n_args(op); i++) {
        const alk_arg *a = alk_op_arg(op, i);
        int width, frac;
        variable_bits(a != NULL && a->kind == ALK_ARG_ARRAY ? a->as.array : NULL, &width, &frac);
        f_in = frac > f_in ? frac : f_in;
    }
    int need = 1 + (f_in + f_weights > f_bias ? f_in + f_weights : f_bias);
    if (need > ALIR_MAX_BITS) {
        alk_op_fail(op, ALK_EINVAL,
                    "an exact conversion needs at least %d bits here (inputs with %d fractional "
                    "bits times float weights with %d), more than the %d bits of an ALIR value: "
                    "a plain float model has no exact fixed-point form; " HINT,
                    need, f_in, f_weights > f_bias ? f_weights : f_bias, ALIR_MAX_BITS);
    }
}

void keras_after_op(alk_op *op) {
    const keras_job *job = alk_op_scope_data(op);
    if (job == NULL) {
        return;
    }
    const int *kif = job->precision.output_kif;
    for (size_t i = 0; i < alk_op_n_results(op); i++) {
        alk_fva *y = alk_op_result_array(op, i);
        if (y == NULL) {
            continue;
        }
        if (job->precision.has_output_kif) {
            y = alk_fva_quantize(alk_op_trace(op), y, kif[0], kif[1], kif[2], ALK_WRAP, ALK_TRN);
            alk_op_set_result(op, i, alk_arg_of_array(op, y));
        }
        int width, frac;
        variable_bits(y, &width, &frac);
        if (width > ALIR_MAX_BITS) {
            alk_op_fail(op, ALK_EINVAL,
                        "its exact output needs %d bits (%d of them fractional), more than the "
                        "%d bits of an ALIR value; " HINT,
                        width, frac, ALIR_MAX_BITS);
            return;
        }
    }
}
