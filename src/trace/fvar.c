/*
 * Symbolic fixed-point variables (spec trace-alir.md §1): every scalar operation (the context
 * they record into is context.c's).
 *
 * Design. Each operation mirrors the reference's FVariable method of the same name, branch for
 * branch, because bit-exact ALIR depends on which branch creates which node: the spec section
 * is named above each function, and the quirks it lists are reproduced on purpose (they are
 * marked "quirk" where they happen). Python's number semantics are emulated where they differ
 * from C's: floor() returns an int (so -0.0 never survives it), max()/min() return the first of
 * equal arguments, % takes the divisor's sign, and lsb/clog2 see float32 (trace_int.h).
 *
 * Memory: nodes, references, affine intervals and tables come from the context's arena. An
 * allocation failure or a bad argument sets the context's sticky error; every function then
 * returns NULL, and NULL operands propagate, so callers check once at the end.
 *
 * Thread rule: one context per thread at a time (no locking).
 */
#include "core/sha256.h"
#include "trace/trace_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Numbers                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Python's math.floor / math.ceil return ints: the sign of a zero result is lost. */
static double pfloor(double x) {
    return floor(x) + 0.0;
}
static double pceil(double x) {
    return ceil(x) + 0.0;
}
/* Python max(a, b) / min(a, b): the first argument wins ties (matters for -0.0). */
static double pmax(double a, double b) {
    return b > a ? b : a;
}
static double pmin(double a, double b) {
    return b < a ? b : a;
}

/* interpret_as (spec §1.15): the value of raw integer x in format (k, i, f). */
static double interpret_as(double x, int k, int i, int f) {
    int b = k + i + f;
    double bias = ldexp(1.0, b - 1) * k;
    double eps = ldexp(1.0, -f);
    return eps * (py_fmod(floor(x + bias), ldexp(1.0, b)) - bias);
}

static void qint_kif(alk_qint q, int *k, int *i, int *f) {
    alk_kif kif = alk_kif_of(q);
    *k = kif.k;
    *i = kif.i;
    *f = kif.f;
}

/* ---------------------------------------------------------------------------------------- */
/* Surrogate helpers (spec §3.9, cmvm §2.5)                                                 */
/* ---------------------------------------------------------------------------------------- */

static int8_t qint_to_bw(alk_qint q) {
    float min = (float)q.min, max = (float)q.max, step = (float)q.step;
    if (min == max && min == 0) {
        return 0;
    }
    int8_t sign = min < 0 ? 1 : 0;
    float lo = min / step, hi = max / step;
    int a = alk_iceil_log2(lo), b = alk_iceil_log2(hi + 1);
    int8_t mbits = (int8_t)(a > b ? a : b);
    return (int8_t)(mbits + sign);
}

void alk__tr_overlap_counts(alk_qint q0, alk_qint q1, int shift1, int *accum, int *overlap,
                            int *tail) {
    int8_t r0 = (int8_t)(-(int8_t)alk_lsb_loc((float)q0.step));
    int8_t r1 = (int8_t)(-(int8_t)alk_lsb_loc((float)q1.step) - (int8_t)shift1);
    int8_t b0 = qint_to_bw(q0), b1 = qint_to_bw(q1);
    int8_t l0 = (int8_t)(r0 - b0), l1 = (int8_t)(r1 - b1);
    int8_t s[4] = {l0, r0, l1, r1};
    for (int a = 1; a < 4; a++) {
        for (int b = a; b > 0 && s[b - 1] > s[b]; b--) {
            int8_t tmp = s[b];
            s[b] = s[b - 1];
            s[b - 1] = tmp;
        }
    }
    if (r0 < l0 || r1 < l0) {
        int8_t tmp = s[1];
        s[1] = s[2];
        s[2] = tmp;
    }
    *overlap = (int8_t)(s[2] - s[1]);
    *accum = (int8_t)(s[1] - s[0]);
    *tail = (int8_t)(s[3] - s[2]);
}

void alk__tr_cost_lat_add(alk_qint q0, alk_qint q1, int shift1, int64_t n_add, int64_t n_accum,
                          bool is_sub, double *ret_cost, double *ret_lat, bool *ret_is_int) {
    (void)n_add;
    int left, overlap, right;
    alk__tr_overlap_counts(q0, q1, shift1, &left, &overlap, &right);
    if (overlap <= 0) {
        *ret_cost = 0;
        *ret_lat = 0;
        *ret_is_int = true;
        return;
    }
    int64_t cost;
    if (is_sub) {
        cost = left + overlap + right - 1;
        if (cost < 1) {
            cost = 1;
        }
    } else {
        cost = left + overlap;
    }
    *ret_cost = (double)cost;
    *ret_lat = (double)py_floordiv(cost - 1 + n_accum - 1, n_accum) * 0.025390625 + 1.09375;
    *ret_is_int = false;
}

void alk__tr_cost_lat_mul(alk_qint q0, alk_qint q1, int64_t n_add, int64_t n_accum,
                          double *ret_cost, double *ret_lat) {
    double min0 = pmin(q0.min, 0), max0 = pmax(q0.max, 0);
    double min1 = pmin(q1.min, 0), max1 = pmax(q1.max, 0);
    int64_t b0 = clog2_i8((max0 - min0) / q0.step);
    int64_t b1 = clog2_i8((max1 - min1) / q1.step);
    int64_t cost1 = py_floordiv(b0 * (b1 + n_add - 1), n_add);
    int64_t cost2 = py_floordiv(b1 * (b0 + n_add - 1), n_add);
    int64_t cost = cost1 < cost2 ? cost1 : cost2;
    double lat1 = (double)(b0 * py_floordiv(b1 - 1 + n_accum - 1, n_accum)) * 0.025390625 + 1.09375;
    double lat2 = (double)(b1 * py_floordiv(b0 - 1 + n_accum - 1, n_accum)) * 0.025390625 + 1.09375;
    *ret_cost = (double)cost * 0.75;
    *ret_lat = pmin(lat1, lat2);
}

/* ---------------------------------------------------------------------------------------- */
/* References and nodes                                                                     */
/* ---------------------------------------------------------------------------------------- */

static alk_fnode *new_node(alk_trace *t, alk_fopr opr, alk_hwconf hw) {
    alk_fnode *n = alk__trace_alloc(t, sizeof(*n));
    if (n == NULL) {
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->serial = t->next_serial++;
    n->opr = opr;
    n->hwconf = hw;
    return n;
}

static alk_fvar *new_ref(alk_trace *t, alk_fnode *node, alk_affine *affine, double factor) {
    if (node == NULL || affine == NULL) {
        return NULL;
    }
    alk_fvar *v = alk__trace_alloc(t, sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    v->node = node;
    v->affine = affine;
    v->factor = factor;
    t->n_vars++;
    return v;
}

/* `_with(..., renew_id=False)`: same node, new interval and factor. */
static alk_fvar *with_scaled(alk_trace *t, alk_fvar *v, alk_affine *affine, double factor) {
    return new_ref(t, v->node, affine, factor);
}

alk_qint alk__fv_qint(alk_fvar *v) {
    return alk__affine_qint(v->affine);
}

/* low/high/step properties: inputs report their accumulated bounds (spec §1.17). */
static double lo(alk_fvar *v) {
    return v->node->input ? v->node->bounds_low : alk__affine_qint(v->affine).min;
}
static double hi(alk_fvar *v) {
    return v->node->input ? v->node->bounds_high : alk__affine_qint(v->affine).max;
}
static double st(alk_fvar *v) {
    return v->node->input ? v->node->bounds_step : alk__affine_qint(v->affine).step;
}
static bool is_const(alk_fvar *v) {
    return v->node->opr == ALK_FOPR_CONST;
}

void alk__fv_kif(alk_fvar *v, int *k, int *i, int *f) {
    double step = st(v);
    if (step == 0) {
        *k = *i = *f = 0;
        return;
    }
    *f = -clog2_i8(step);
    *i = clog2_i8(pmax(-lo(v), hi(v) + step));
    *k = lo(v) < 0;
}

static double get_latency(alk_fopr opr, alk_fvar *const *from, alk_hwconf hw, alk_ftable *table) {
    double cost, lat;
    bool is_int;
    switch (opr) {
    case ALK_FOPR_VADD:
        alk__tr_cost_lat_add(alk__fv_qint(from[0]), alk__fv_qint(from[1]), 0, hw.adder_size,
                             hw.carry_size, false, &cost, &lat, &is_int);
        return lat;
    case ALK_FOPR_VMUL:
        alk__tr_cost_lat_mul(alk__fv_qint(from[0]), alk__fv_qint(from[1]), hw.adder_size,
                             hw.carry_size, &cost, &lat);
        return lat;
    case ALK_FOPR_LOOKUP:
        (void)alk__tr_cost_lat_lut(alk__fv_qint(from[0]), table, NULL, false, &cost, &lat);
        return lat;
    case ALK_FOPR_MUX:
        return 0.5;
    case ALK_FOPR_BIT_BINARY: {
        int x, y, z;
        alk__tr_overlap_counts(alk__fv_qint(from[0]), alk__fv_qint(from[1]), 0, &x, &y, &z);
        return y <= 0 ? 0.0 : 0.5;
    }
    default:
        return 0.0;
    }
}

/* FVariable(_affine=..., _from=..., ...) (spec §1.1). */
static alk_fvar *make_affine(alk_trace *t, alk_fopr opr, alk_affine *affine, alk_fvar *const *from,
                             int n_from, double factor, int64_t data, alk_ftable *table,
                             alk_hwconf hw) {
    if (affine == NULL) {
        return NULL;
    }
    alk_qint q = alk__affine_qint(affine);
    if (q.min == q.max) {
        opr = ALK_FOPR_CONST;
        n_from = 0;
    }
    alk_fnode *node = new_node(t, opr, hw);
    if (node == NULL) {
        return NULL;
    }
    node->n_from = (uint8_t)n_from;
    double max_lat = 0.0;
    for (int j = 0; j < n_from; j++) {
        node->from[j] = from[j];
        max_lat = j == 0 ? from[j]->node->latency : pmax(max_lat, from[j]->node->latency);
    }
    node->data = data;
    node->table = table;
    node->latency = get_latency(opr, from, hw, table) + max_lat;
    return new_ref(t, node, affine, factor);
}

/* FVariable(low, high, step, ...): a constant when low == high, else a fresh atom. */
static alk_fvar *make_lhs(alk_trace *t, alk_fopr opr, double low, double high, double step,
                          alk_fvar *const *from, int n_from, double factor, int64_t data,
                          alk_ftable *table, alk_hwconf hw) {
    if (t->error != ALK_OK) {
        return NULL;
    }
    if (!(low <= high) || !(step > 0) || !isfinite(low) || !isfinite(high)) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "invalid interval (%.17g, %.17g, %.17g): need low <= high, finite "
                             "bounds and a positive step",
                             low, high, step);
        return NULL;
    }
    alk_affine *affine =
        low == high ? alk__affine_const(t, low) : alk__affine_atom(t, (alk_qint){low, high, step});
    return make_affine(t, opr, affine, from, n_from, factor, data, table, hw);
}

alk_fvar *alk__fv_new_hw(alk_trace *t, double low, double high, double step, double latency,
                         alk_hwconf hw) {
    alk_fvar *v = make_lhs(t, ALK_FOPR_NEW, low, high, step, NULL, 0, 1.0, 0, NULL, hw);
    if (v != NULL) {
        v->node->latency = latency;
    }
    return v;
}

alk_fvar *alk__fv_const_hw(alk_trace *t, double c, alk_hwconf hw) {
    if (t->error != ALK_OK) {
        return NULL;
    }
    if (!isfinite(c)) {
        alk__trace_set_error(t, ALK_EINVAL, "constant %g is not finite", c);
        return NULL;
    }
    double factor = c != 0 ? ldexp(1.0, lsb_i8(c)) : 1.0;
    return make_affine(t, ALK_FOPR_CONST, alk__affine_const(t, c), NULL, 0, factor, 0, NULL, hw);
}

/* FVariable(0, 0, 1, opr='const'): the zero constant with factor 1. */
static alk_fvar *zero_const(alk_trace *t, alk_hwconf hw) {
    return make_affine(t, ALK_FOPR_CONST, alk__affine_const(t, 0.0), NULL, 0, 1.0, 0, NULL, hw);
}

alk_fvar *alk_fv_new(alk_trace *t, double low, double high, double step, double latency) {
    if (t->error == ALK_OK && !isfinite(latency)) {
        alk__trace_set_error(t, ALK_EINVAL, "latency %g is not finite", latency);
        return NULL;
    }
    return alk__fv_new_hw(t, low, high, step, latency, t->hwconf);
}

static alk_fvar *from_kif_hw(alk_trace *t, int k, int i, int f, alk_hwconf hw) {
    double step = ldexp(1.0, -f);
    double top = ldexp(1.0, i);
    return alk__fv_new_hw(t, k ? -top : 0.0, top - step, step, 0.0, hw);
}

alk_fvar *alk_fv_from_kif(alk_trace *t, int k, int i, int f) {
    if (t->error == ALK_OK && (k < 0 || k > 1 || i < -1000 || i > 1000 || f < -1000 || f > 1000)) {
        alk__trace_set_error(t, ALK_EINVAL, "format (%d, %d, %d) is out of range", k, i, f);
        return NULL;
    }
    return from_kif_hw(t, k, i, f, t->hwconf);
}

alk_fvar *alk_fv_const(alk_trace *t, double c) {
    return alk__fv_const_hw(t, c, t->hwconf);
}

alk_fvar *alk_fv_input(alk_trace *t) {
    if (t->error != ALK_OK) {
        return NULL;
    }
    alk_fvar *v = make_lhs(t, ALK_FOPR_NEW, -1e10, 1e10, 1e10, NULL, 0, 1.0, 0, NULL, t->hwconf);
    if (v == NULL) {
        return NULL;
    }
    /* The reference starts the bounds inverted, (1e10, -1e10, 1e10), so that the first quantize
     * sets them; its interval is only read after one (spec §1.17). */
    alk_atom *atom = v->affine->terms[0].atom;
    atom->qint = (alk_qint){1e10, -1e10, 1e10};
    v->affine->cached = false;
    v->node->input = true;
    v->node->bounds_low = 1e10;
    v->node->bounds_high = -1e10;
    v->node->bounds_step = 1e10;
    v->node->latency = 0.0;
    return v;
}

alk_fvar *alk__fv_as_new(alk_trace *t, alk_fvar *v) {
    if (v == NULL) {
        return NULL;
    }
    alk_fnode *node = new_node(t, ALK_FOPR_NEW, v->node->hwconf);
    if (node == NULL) {
        return NULL;
    }
    node->latency = v->node->latency;
    return new_ref(t, node, v->affine, v->factor);
}

/* Refuses arithmetic on an unquantized input (the reference raises). */
bool alk__fv_check_quantized(alk_trace *t, const alk_fvar *v) {
    if (v->node->input) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "an unquantized input can only be quantized (WRAP with TRN or RND)");
        return false;
    }
    return true;
}

#define GUARD1(t, a)                                                                               \
    do {                                                                                           \
        if ((t)->error != ALK_OK || (a) == NULL || !alk__fv_check_quantized((t), (a))) {           \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)
#define GUARD2(t, a, b)                                                                            \
    do {                                                                                           \
        if ((t)->error != ALK_OK || (a) == NULL || (b) == NULL ||                                  \
            !alk__fv_check_quantized((t), (a)) || !alk__fv_check_quantized((t), (b))) {            \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------------------------------------- */
/* Properties                                                                               */
/* ---------------------------------------------------------------------------------------- */

double alk_fv_low(const alk_fvar *v) {
    return lo((alk_fvar *)v);
}
double alk_fv_high(const alk_fvar *v) {
    return hi((alk_fvar *)v);
}
double alk_fv_step(const alk_fvar *v) {
    return st((alk_fvar *)v);
}
double alk_fv_latency(const alk_fvar *v) {
    return v->node->latency;
}
double alk_fv_factor(const alk_fvar *v) {
    return v->factor;
}
bool alk_fv_is_const(const alk_fvar *v) {
    return v->node->opr == ALK_FOPR_CONST;
}
void alk_fv_kif(const alk_fvar *v, int *ret_k, int *ret_i, int *ret_f) {
    alk__fv_kif((alk_fvar *)v, ret_k, ret_i, ret_f);
}
bool alk_fv_same_node(const alk_fvar *a, const alk_fvar *b) {
    return a->node == b->node;
}

alk_qint alk__fv_unscaled_qint(alk_trace *t, alk_fvar *v) {
    /* v * (1/factor): a constant becomes a fresh from_const, anything else a scaled copy. */
    double inv = 1.0 / v->factor;
    if (v->node->input) {
        return alk__fv_qint(v);
    }
    if (lo(v) == hi(v)) {
        double c = lo(v) * inv;
        return (alk_qint){c, c, pow2_lsb(c)};
    }
    alk_affine *a = alk__affine_scale(t, v->affine, inv);
    if (a == NULL) {
        return (alk_qint){0, 0, 1};
    }
    return alk__affine_qint(a);
}

/* ---------------------------------------------------------------------------------------- */
/* Addition (§1.7)                                                                          */
/* ---------------------------------------------------------------------------------------- */

static alk_fvar *neg(alk_trace *t, alk_fvar *a) {
    if (a == NULL) {
        return NULL;
    }
    return with_scaled(t, a, alk__affine_scale(t, a->affine, -1.0), -a->factor);
}

static alk_fvar *mul_num(alk_trace *t, alk_fvar *a, double c);
static alk_fvar *add(alk_trace *t, alk_fvar *a, alk_fvar *b);

static alk_fvar *const_add(alk_trace *t, alk_fvar *a, double c) {
    if (a == NULL) {
        return NULL;
    }
    if (c == 0) {
        return a;
    }
    if (a->node->opr != ALK_FOPR_CADD) {
        double u = c / a->factor;
        /* The packed constant is read through float32 (lsb, quirk §1.6). Beyond float32's range
         * (c far above the value's scale: a batch norm of weight 1e-38 adding its offset) that
         * reading wraps, the reference packs a garbage constant, and u * 2^s overflows int64:
         * refuse. */
        if (isinf((float)u)) {
            alk__trace_set_error(t, ALK_ELIMIT,
                                 "adding the constant %g to a value of scale %g: their ratio %g "
                                 "is beyond float32's range, in which constant additions are "
                                 "encoded",
                                 c, a->factor, u);
            return NULL;
        }
        alk_affine *affine = alk__affine_add_scalar(t, a->affine, c);
        int s = -lsb_i8(u);
        double m = trunc(u * ldexp(1.0, s));
        int64_t data = (int64_t)((uint64_t)(int64_t)s << 32 | ((uint64_t)(int64_t)m & 0xFFFFFFFFu));
        alk_fvar *from[1] = {a};
        return make_affine(t, ALK_FOPR_CADD, affine, from, 1, a->factor, data, NULL,
                           a->node->hwconf);
    }
    /* Consecutive constant additions collapse onto the original parent. */
    alk_fvar *parent = a->node->from[0];
    int64_t m = (int32_t)(uint32_t)((uint64_t)a->node->data & 0xFFFFFFFFu);
    int64_t s = (int32_t)(uint32_t)(((uint64_t)a->node->data >> 32) & 0xFFFFFFFFu);
    double unscaled_bias = ldexp((double)m, (int)-s) * a->factor;
    double sf = a->factor / parent->factor;
    double other = (unscaled_bias + c) / sf;
    return mul_num(t, const_add(t, parent, other), sf);
}

static alk_fvar *add(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    if (t->error != ALK_OK || a == NULL || b == NULL) {
        return NULL;
    }
    if (hi(b) == lo(b)) {
        return const_add(t, a, lo(b));
    }
    if (hi(a) == lo(a)) {
        return const_add(t, b, lo(a));
    }
    if (memcmp(&a->node->hwconf, &b->node->hwconf, sizeof(alk_hwconf)) != 0) {
        alk__trace_set_error(t, ALK_EINVAL, "operands have different hardware configurations");
        return NULL;
    }
    double f0 = a->factor, f1 = b->factor;
    if (f0 < 0) {
        if (f1 > 0) {
            return add(t, b, a);
        }
        return neg(t, add(t, neg(t, a), neg(t, b)));
    }
    alk_affine *affine = alk__affine_add(t, a->affine, b->affine);
    alk_fvar *from[2] = {a, b};
    return make_affine(t, ALK_FOPR_VADD, affine, from, 2, f0, 0, NULL, a->node->hwconf);
}

alk_fvar *alk_fv_add(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return add(t, a, b);
}

alk_fvar *alk_fv_neg(alk_trace *t, alk_fvar *a) {
    GUARD1(t, a);
    return neg(t, a);
}

alk_fvar *alk_fv_sub(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return add(t, a, neg(t, b));
}

alk_fvar *alk_fv_add_const(alk_trace *t, alk_fvar *a, double c) {
    if (t->error == ALK_OK && a != NULL && a->node->input && c == 0) {
        return a;
    }
    GUARD1(t, a);
    if (!isfinite(c)) {
        alk__trace_set_error(t, ALK_EINVAL, "cannot add the non-finite constant %g", c);
        return NULL;
    }
    return const_add(t, a, c);
}

alk_fvar *alk_fv_rsub_const(alk_trace *t, alk_fvar *a, double c) {
    GUARD1(t, a);
    if (!isfinite(c)) {
        alk__trace_set_error(t, ALK_EINVAL, "cannot subtract from the non-finite constant %g", c);
        return NULL;
    }
    return const_add(t, neg(t, a), c);
}

/* ---------------------------------------------------------------------------------------- */
/* Multiplication (§1.8, §1.9)                                                              */
/* ---------------------------------------------------------------------------------------- */

static alk_fvar *pow2_mul(alk_trace *t, alk_fvar *a, double c) {
    if (a == NULL) {
        return NULL;
    }
    return with_scaled(t, a, alk__affine_scale(t, a->affine, c), a->factor * c);
}

static alk_fvar *mul_num(alk_trace *t, alk_fvar *a, double c) {
    if (t->error != ALK_OK || a == NULL) {
        return NULL;
    }
    if (hi(a) == lo(a)) {
        return alk__fv_const_hw(t, lo(a) * c, a->node->hwconf);
    }
    if (c == 0) {
        return zero_const(t, a->node->hwconf);
    }
    if (!isfinite(c)) {
        alk__trace_set_error(t, ALK_EINVAL, "cannot multiply by the non-finite constant %g", c);
        return NULL;
    }
    if (is_pow2_value(c)) {
        return pow2_mul(t, a, c);
    }
    alk_program *program = NULL;
    bool borrowed = false;
    if (alk__scm_program(t, c, &program, &borrowed) != ALK_OK) {
        return NULL;
    }
    alk_fvar *r = NULL;
    (void)alk__replay_scm(t, program, a, &r);
    if (!borrowed) {
        alk_program_free(program);
    }
    return r;
}

static alk_fvar *var_mul(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    double low, high;
    if (a != b) {
        double p0 = hi(a) * lo(b), p1 = lo(a) * hi(b), p2 = hi(a) * hi(b), p3 = lo(a) * lo(b);
        low = pmin(pmin(pmin(p0, p1), p2), p3);
        high = pmax(pmax(pmax(p0, p1), p2), p3);
    } else {
        /* quirk: squares only for the very same reference (spec §1.9). */
        double p0 = lo(a) * lo(b), p1 = hi(a) * hi(b);
        if (lo(a) < 0 && hi(a) > 0) {
            low = pmin(pmin(p0, p1), 0);
            high = pmax(pmax(p0, p1), 0);
        } else {
            low = pmin(p0, p1);
            high = pmax(p0, p1);
        }
    }
    alk_fvar *from[2] = {a, b};
    return make_lhs(t, ALK_FOPR_VMUL, low, high, st(a) * st(b), from, 2, a->factor * b->factor, 0,
                    NULL, a->node->hwconf);
}

static alk_fvar *mul(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    if (t->error != ALK_OK || a == NULL || b == NULL) {
        return NULL;
    }
    if (hi(a) == lo(a)) {
        return mul_num(t, b, lo(a));
    }
    if (hi(b) > lo(b)) {
        return var_mul(t, a, b);
    }
    return mul_num(t, a, lo(b));
}

alk_fvar *alk_fv_mul(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return mul(t, a, b);
}

alk_fvar *alk_fv_mul_const(alk_trace *t, alk_fvar *a, double c) {
    if (t->error == ALK_OK && a != NULL && a->node->input && c == 1) {
        return a;
    }
    GUARD1(t, a);
    return mul_num(t, a, c);
}

alk_fvar *alk_fv_div_const(alk_trace *t, alk_fvar *a, double c) {
    GUARD1(t, a);
    if (c == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "division by zero");
        return NULL;
    }
    return mul_num(t, a, 1.0 / c);
}

alk_fvar *alk_fv_shift(alk_trace *t, alk_fvar *a, int n) {
    GUARD1(t, a);
    if (n < -1000 || n > 1000) {
        alk__trace_set_error(t, ALK_EINVAL, "shift by %d is out of range", n);
        return NULL;
    }
    return mul_num(t, a, ldexp(1.0, n));
}

static alk_fvar *power(alk_trace *t, alk_fvar *a, int p) {
    if (t->error != ALK_OK) {
        return NULL;
    }
    if (p == 0) {
        return make_lhs(t, ALK_FOPR_CONST, 1, 1, 1, NULL, 0, 1.0, 0, NULL, a->node->hwconf);
    }
    if (p == 1) {
        return a;
    }
    int p0 = p / 2;
    alk_fvar *x = power(t, a, p0);
    alk_fvar *y = power(t, a, p - p0);
    alk_fvar *r = mul(t, x, y);
    if (r != NULL && p % 2 == 0) {
        /* Even powers are non-negative: a fresh atom replaces the product's interval. */
        alk_qint q = alk__fv_qint(r);
        alk_affine *affine = alk__affine_atom(t, (alk_qint){pmax(q.min, 0), q.max, q.step});
        if (affine == NULL) {
            return NULL;
        }
        r->affine = affine;
    }
    return r;
}

alk_fvar *alk_fv_pow(alk_trace *t, alk_fvar *a, int p) {
    GUARD1(t, a);
    if (p < 0 || p > 64) {
        alk__trace_set_error(t, ALK_EINVAL, "power %d: need an integer between 0 and 64", p);
        return NULL;
    }
    return power(t, a, p);
}

/* ---------------------------------------------------------------------------------------- */
/* ReLU (§1.10)                                                                             */
/* ---------------------------------------------------------------------------------------- */

static alk_fvar *relu(alk_trace *t, alk_fvar *v, int i, int f, alk_round round) {
    if (t->error != ALK_OK || v == NULL) {
        return NULL;
    }
    if (is_const(v)) {
        /* quirk: 0 counts as "not given" for i and f, and the RND offset is in steps. */
        double val = lo(v) * (lo(v) > 0);
        int ff = (f == ALK_FV_NONE || f == 0) ? -lsb_i8(val) : f;
        double step = ldexp(1.0, -ff);
        double ii = (i == ALK_FV_NONE || i == 0) ? pceil(log2(val + step)) : i;
        double eps = round == ALK_RND ? step / 2 : 0;
        val = py_fmod(pfloor(val / step + eps) * step, pow(2.0, ii));
        return alk__fv_const_hw(t, val, v->node->hwconf);
    }
    double step = f != ALK_FV_NONE ? pmax(ldexp(1.0, -f), st(v)) : st(v);
    if (step > st(v) && round == ALK_RND) {
        return relu(t, const_add(t, v, step / 2), i, f, ALK_TRN);
    }
    double low = pmax(0.0, lo(v));
    double high = hi(v);
    high = pfloor(high / step) * step;
    low = pfloor(low / step) * step;
    if (i != ALK_FV_NONE) {
        double top = ldexp(1.0, i) - step;
        if (top < high) {
            low = 0.0;
            high = top;
        }
    }
    high = pmax(0.0, high);
    if (lo(v) == low && hi(v) == high && st(v) == step) {
        return v;
    }
    alk_fvar *from[1] = {v};
    return make_lhs(t, ALK_FOPR_RELU, low, high, step, from, 1, fabs(v->factor), 0, NULL,
                    v->node->hwconf);
}

alk_fvar *alk_fv_relu(alk_trace *t, alk_fvar *v, int i, int f, alk_round round) {
    GUARD1(t, v);
    if (round != ALK_TRN && round != ALK_RND) {
        alk__trace_set_error(t, ALK_EINVAL, "relu rounding must be TRN or RND");
        return NULL;
    }
    if ((i != ALK_FV_NONE && (i < -1000 || i > 1000)) ||
        (f != ALK_FV_NONE && (f < -1000 || f > 1000))) {
        alk__trace_set_error(t, ALK_EINVAL, "relu bit widths (i=%d, f=%d) are out of range", i, f);
        return NULL;
    }
    return relu(t, v, i, f, round);
}

/* ---------------------------------------------------------------------------------------- */
/* Quantization and bit views (§1.11, §1.12)                                                */
/* ---------------------------------------------------------------------------------------- */

static alk_fvar *wrap(alk_trace *t, alk_fvar *v, int k, int i, int f) {
    if (t->error != ALK_OK || v == NULL) {
        return NULL;
    }
    int _k, _i, _f;
    alk__fv_kif(v, &_k, &_i, &_f);
    if (_f < f) {
        f = _f;
    }
    if (k >= _k && i >= _i && f >= _f) {
        return v;
    }
    alk_hwconf hw = v->node->hwconf;
    double step = ldexp(1.0, -f);
    alk_fvar *from[1] = {v};
    if (k + i + _f <= 0) {
        return alk__fv_const_hw(t, 0.0, hw);
    }
    if (_k && f <= -_k - _i) {
        /* The target keeps nothing but copies of the sign bit. */
        if (lo(v) >= 0) {
            return alk__fv_const_hw(t, 0.0, hw);
        }
        double all_ones = k ? -step : ldexp(1.0, i) - step;
        if (hi(v) < 0) {
            return alk__fv_const_hw(t, all_ones, hw);
        }
        double low = k ? all_ones : 0.0, high = k ? 0.0 : all_ones;
        return make_lhs(t, ALK_FOPR_WRAP, low, high, step, from, 1, 1.0, 0, NULL, hw);
    }
    if (!_k && f <= -_i) {
        return alk__fv_const_hw(t, 0.0, hw);
    }
    double target_low = k ? -ldexp(1.0, i) : 0.0;
    double target_high = ldexp(1.0, i) - step;
    double rounded_low = pfloor(lo(v) / step) * step;
    double rounded_high = pfloor(hi(v) / step) * step;
    double low, high;
    if (rounded_low >= target_low && rounded_high <= target_high) {
        low = rounded_low;
        high = rounded_high;
    } else {
        low = target_low;
        high = target_high;
    }
    return make_lhs(t, ALK_FOPR_WRAP, low, high, step, from, 1, 1.0, 0, NULL, hw);
}

/* Python slice.indices for a step-1 slice of length n. */
static int slice_index(int s, int n, int dflt) {
    if (s == ALK_FV_NONE) {
        return dflt;
    }
    if (s < 0) {
        s += n;
        if (s < 0) {
            s = 0;
        }
    } else if (s > n) {
        s = n;
    }
    return s;
}

static alk_fvar *bits(alk_trace *t, alk_fvar *v, int start, int stop) {
    if (t->error != ALK_OK || v == NULL) {
        return NULL;
    }
    int k, i, f;
    alk__fv_kif(v, &k, &i, &f);
    int bw = k + i + f;
    if (bw < 0) {
        bw = 0;
    }
    start = slice_index(start, bw, 0);
    stop = slice_index(stop, bw, bw);
    if (stop < start) {
        alk__trace_set_error(t, ALK_EINVAL, "bit slice [%d:%d] is empty or reversed", start, stop);
        return NULL;
    }
    int new_k = start == 0 && k == 1;
    int new_i = k + i - start - new_k;
    int new_f = stop - k - i;
    return wrap(t, v, new_k, new_i, new_f);
}

alk_fvar *alk_fv_bits(alk_trace *t, alk_fvar *v, int start, int stop) {
    GUARD1(t, v);
    return bits(t, v, start, stop);
}

static alk_fvar *max_of(alk_trace *t, alk_fvar *v, alk_fvar *o);
static alk_fvar *min_of(alk_trace *t, alk_fvar *v, alk_fvar *o);
static alk_fvar *unary_bit(alk_trace *t, alk_fvar *v, alk_bit_unop type);
static alk_fvar *binary_bit(alk_trace *t, alk_fvar *v, alk_fvar *o, alk_bit_binop type);

static alk_fvar *quantize_input(alk_trace *t, alk_fvar *v, int k, int i, int f, alk_round round);

/*
 * Q(c) of a constant (§1.11 on a number, as the quantizers package computes it): saturate,
 * round at 2^-f, wrap into [-k 2^i, 2^i). The reference's variable path gets constants wrong:
 * its constant step wraps an unsigned target modulo 2^(i+1) (§1.11 step 6 [bug?]: 5 to (0, 2, 0)
 * stays 5), and a constant rounded half to even goes through the bit network of step 4, which
 * does not give Q(c) (-2.140625 to (1, 1, 0) gave 0). A pruned HGQ2 dense column makes one: its
 * output is the bias, a constant that the output quantizer rounds.
 */
static double quantize_number(double c, int k, int i, int f, alk_overflow overflow,
                              alk_round round) {
    double step = ldexp(1.0, -f), top = ldexp(1.0, i), high = top - step;
    if (overflow != ALK_WRAP) {
        double low = overflow == ALK_SAT ? -top * k : -high * k;
        c = c < low ? low : (c > high ? high : c);
    }
    double scaled = c / step;
    scaled = round == ALK_TRN   ? floor(scaled)
             : round == ALK_RND ? floor(scaled + 0.5)
                                : scaled - remainder(scaled, 1.0); /* ties to even */
    c = scaled * step;
    if (overflow == ALK_WRAP) {
        double low = -top * k;
        c = py_fmod(c - low, ldexp(1.0, i + k)) + low;
    }
    return c;
}

static alk_fvar *quantize(alk_trace *t, alk_fvar *v, int k, int i, int f, alk_overflow overflow,
                          alk_round round) {
    if (t->error != ALK_OK || v == NULL) {
        return NULL;
    }
    if (v->node->input) {
        return quantize_input(t, v, k, i, f, round);
    }
    alk_hwconf hw = v->node->hwconf;
    if (k + i + f <= 0) {
        return zero_const(t, hw);
    }
    int _k, _i, _f;
    alk__fv_kif(v, &_k, &_i, &_f);
    if (k >= _k && i >= _i && f >= _f) {
        if (overflow != ALK_SAT_SYM || i > _i) {
            return v;
        }
    }
    if (lo(v) == hi(v)) {
        /* torch.round of a constant 0.5 came out 1 and of 2.5, 3 (see quantize_number) */
        return alk__fv_const_hw(t, quantize_number(lo(v), k, i, f, overflow, round), hw);
    }
    if (f < _f && round == ALK_RND) {
        return quantize(t, const_add(t, v, ldexp(1.0, -f - 1)), k, i, f, overflow, ALK_TRN);
    }
    if (f < _f && round == ALK_RND_CONV && overflow == ALK_WRAP) {
        /* Round half to even: floor(x + 1/2), clearing its 2^-f bit on exact ties. Bits are
         * counted in each value's own format, which need not be x's nor the target's: adding
         * 2^-(f+1) can cancel the finest bits of a constant already added to x (one addition,
         * §1.7), and floor(x + 1/2) of a narrow x can be a constant or a coarser value whose
         * 2^-f bit is zero. The reference counts them in x's and the target's formats and then
         * clears or tests the wrong bits (x in 2^-2 steps minus 2^-5, rounded at 2^-4, came out
         * 4 steps off; x in [-3.25, -2.97] rounded at 2^-1 gave -4 for -3). */
        alk_fvar *off = const_add(t, v, ldexp(1.0, -f - 1));
        alk_fvar *roundup = wrap(t, off, k, i, f);
        int rk, ri, rf, ok, oi, of;
        alk__fv_kif(roundup, &rk, &ri, &rf);
        alk__fv_kif(off, &ok, &oi, &of);
        alk_fvar *r = roundup; /* rf < f: a multiple of 2^(1-f), even already */
        if (rf >= f && of <= f) {
            r = bits(t, roundup, ALK_FV_NONE, -1); /* off on the grid: every value is a tie */
        } else if (rf >= f) {
            alk_fvar *not_multiple = mul_num(
                t, unary_bit(t, bits(t, off, -of + f, ALK_FV_NONE), ALK_BIT_ANY), ldexp(1.0, -f));
            alk_fvar *lsb = bits(t, roundup, -1, ALK_FV_NONE);
            alk_fvar *rest = bits(t, roundup, ALK_FV_NONE, -1);
            r = add(t, binary_bit(t, not_multiple, lsb, ALK_BIT_AND), rest);
        }
        return quantize(t, r, k, i, f, overflow, ALK_TRN);
    }
    if (overflow == ALK_SAT || overflow == ALK_SAT_SYM) {
        double step = ldexp(1.0, -f);
        double top = ldexp(1.0, i);
        double high = top - step;
        /* -x * 0 is -0.0 in Python as in C; kept for unsigned targets. */
        double low = overflow == ALK_SAT ? -top * k : -high * k;
        int ff = round == ALK_RND ? f + 1 : (round == ALK_TRN ? f : _f);
        alk_fvar *w = _k + _i > -ff ? quantize(t, v, _k, _i, ff, ALK_WRAP, ALK_TRN) : v;
        alk_fvar *lo_c = w != NULL ? alk__fv_const_hw(t, low, hw) : NULL;
        alk_fvar *clamped = max_of(t, w, lo_c);
        alk_fvar *hi_c = clamped != NULL ? alk__fv_const_hw(t, high, hw) : NULL;
        clamped = min_of(t, clamped, hi_c);
        return quantize(t, clamped, k, i, f, ALK_WRAP, round);
    }
    return wrap(t, v, k, i, f);
}

static alk_fvar *quantize_input(alk_trace *t, alk_fvar *v, int k, int i, int f, alk_round round) {
    alk_hwconf hw = v->node->hwconf;
    if (k + i + f <= 0) {
        return zero_const(t, hw);
    }
    if (round == ALK_RND) {
        alk_fvar *finer = quantize_input(t, v, k, i, f + 1, ALK_TRN);
        return quantize(t, const_add(t, finer, ldexp(1.0, -f - 1)), k, i, f, ALK_WRAP, ALK_TRN);
    }
    double step = ldexp(1.0, -f);
    double top = ldexp(1.0, i);
    double low = -top * k, high = top - step;
    alk_fnode *n = v->node;
    n->bounds_high = pmax(n->bounds_high, high);
    n->bounds_low = pmin(n->bounds_low, low);
    n->bounds_step = pmin(n->bounds_step, step);
    alk_affine *affine =
        alk__affine_atom(t, (alk_qint){n->bounds_low, n->bounds_high, n->bounds_step});
    if (affine == NULL) {
        return NULL;
    }
    v->affine = affine;
    alk_fvar *from[1] = {v};
    return make_lhs(t, ALK_FOPR_WRAP, low, high, step, from, 1, 1.0, 0, NULL, hw);
}

alk_fvar *alk_fv_quantize(alk_trace *t, alk_fvar *v, int k, int i, int f, alk_overflow overflow,
                          alk_round round) {
    if (t->error != ALK_OK || v == NULL) {
        return NULL;
    }
    if (k < 0 || k > 1 || i < -1000 || i > 1000 || f < -1000 || f > 1000) {
        alk__trace_set_error(
            t, ALK_EINVAL, "quantize to (k=%d, i=%d, f=%d): k must be 0 or 1 and |i|, |f| <= 1000",
            k, i, f);
        return NULL;
    }
    if (overflow < ALK_WRAP || overflow > ALK_SAT_SYM || round < ALK_TRN || round > ALK_RND_CONV) {
        alk__trace_set_error(t, ALK_EINVAL, "unknown overflow or rounding mode");
        return NULL;
    }
    if (v->node->input && (overflow != ALK_WRAP || round == ALK_RND_CONV)) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "an unquantized input supports only WRAP with TRN or RND");
        return NULL;
    }
    return quantize(t, v, k, i, f, overflow, round);
}

/* ---------------------------------------------------------------------------------------- */
/* MSB, comparisons (§1.13)                                                                 */
/* ---------------------------------------------------------------------------------------- */

static alk_fvar *msb(alk_trace *t, alk_fvar *v) {
    if (t->error != ALK_OK || v == NULL) {
        return NULL;
    }
    int k, i, f;
    alk__fv_kif(v, &k, &i, &f);
    alk_fvar *q = quantize(t, v, 0, i + k, -i - k + 1, ALK_WRAP, ALK_TRN);
    return mul_num(t, q, ldexp(1.0, -(i + k - 1)));
}

static alk_fvar *is_negative(alk_trace *t, alk_fvar *v) {
    if (t->error != ALK_OK || v == NULL) {
        return NULL;
    }
    if (lo(v) >= 0) {
        return alk__fv_const_hw(t, 0, v->node->hwconf);
    }
    if (hi(v) < 0) {
        return alk__fv_const_hw(t, 1, v->node->hwconf);
    }
    return msb(t, v);
}

static alk_fvar *is_positive(alk_trace *t, alk_fvar *v) {
    return v == NULL ? NULL : is_negative(t, neg(t, v));
}

alk_fvar *alk_fv_msb(alk_trace *t, alk_fvar *v) {
    GUARD1(t, v);
    return msb(t, v);
}
alk_fvar *alk_fv_is_negative(alk_trace *t, alk_fvar *v) {
    GUARD1(t, v);
    return is_negative(t, v);
}
alk_fvar *alk_fv_is_positive(alk_trace *t, alk_fvar *v) {
    GUARD1(t, v);
    return is_positive(t, v);
}

static alk_fvar *ne(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    return unary_bit(t, binary_bit(t, a, b, ALK_BIT_XOR), ALK_BIT_ANY);
}

static alk_fvar *lt(alk_trace *t, alk_fvar *a, alk_fvar *b, double b_num);

/* a > b; b is a constant when `b_num` is used (b == NULL). */
/*
 * a > b and a < b with a constant b (or the number b_num) first align b to a's grid. Beyond the
 * reference, a constant a is compared as a number: its grid is its own value's, 2^127 for 0, and
 * aligning 0.5 to it made the constant 2^127 (0 > 0.5 of a remainder that cancelled to 0 failed
 * with ELIMIT, "beyond float32's range").
 */
static alk_fvar *gt(alk_trace *t, alk_fvar *a, alk_fvar *b, double b_num) {
    if (t->error != ALK_OK || a == NULL) {
        return NULL;
    }
    if (b == NULL || is_const(b)) {
        double other = b == NULL ? b_num : lo(b);
        if (is_const(a)) {
            return alk__fv_const_hw(t, lo(a) > other, a->node->hwconf);
        }
        double aligned = pceil(other / st(a)) * st(a);
        if (other != aligned) {
            /* a >= aligned = ~(a < aligned) */
            return unary_bit(t, lt(t, a, NULL, aligned), ALK_BIT_NOT);
        }
        if (lo(a) == other) {
            alk_fvar *o = b != NULL ? b : alk__fv_const_hw(t, b_num, a->node->hwconf);
            return ne(t, a, o);
        }
        if (b == NULL) {
            return is_positive(t, const_add(t, a, -b_num));
        }
    }
    return is_positive(t, add(t, a, neg(t, b)));
}

static alk_fvar *lt(alk_trace *t, alk_fvar *a, alk_fvar *b, double b_num) {
    if (t->error != ALK_OK || a == NULL) {
        return NULL;
    }
    if (b == NULL || is_const(b)) {
        double other = b == NULL ? b_num : lo(b);
        if (is_const(a)) {
            return alk__fv_const_hw(t, lo(a) < other, a->node->hwconf);
        }
        double aligned = pceil(other / st(a)) * st(a);
        if (other != aligned) {
            return lt(t, a, NULL, aligned);
        }
        if (hi(a) == other) {
            alk_fvar *o = b != NULL ? b : alk__fv_const_hw(t, b_num, a->node->hwconf);
            return ne(t, a, o);
        }
        if (b == NULL) {
            return is_positive(t, const_add(t, neg(t, a), b_num));
        }
    }
    return is_positive(t, add(t, b, neg(t, a)));
}

alk_fvar *alk_fv_gt(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return gt(t, a, b, 0);
}
alk_fvar *alk_fv_lt(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return lt(t, a, b, 0);
}
alk_fvar *alk_fv_ge(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return unary_bit(t, lt(t, a, b, 0), ALK_BIT_NOT);
}
alk_fvar *alk_fv_le(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return unary_bit(t, gt(t, a, b, 0), ALK_BIT_NOT);
}
alk_fvar *alk_fv_ne(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return ne(t, a, b);
}
alk_fvar *alk_fv_eq(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return unary_bit(t, ne(t, a, b), ALK_BIT_NOT);
}

static bool check_finite(alk_trace *t, double c) {
    if (!isfinite(c)) {
        alk__trace_set_error(t, ALK_EINVAL, "cannot compare with the non-finite constant %g", c);
        return false;
    }
    return true;
}

alk_fvar *alk_fv_gt_const(alk_trace *t, alk_fvar *a, double c) {
    GUARD1(t, a);
    return check_finite(t, c) ? gt(t, a, NULL, c) : NULL;
}
alk_fvar *alk_fv_lt_const(alk_trace *t, alk_fvar *a, double c) {
    GUARD1(t, a);
    return check_finite(t, c) ? lt(t, a, NULL, c) : NULL;
}
alk_fvar *alk_fv_ge_const(alk_trace *t, alk_fvar *a, double c) {
    GUARD1(t, a);
    return check_finite(t, c) ? unary_bit(t, lt(t, a, NULL, c), ALK_BIT_NOT) : NULL;
}
alk_fvar *alk_fv_le_const(alk_trace *t, alk_fvar *a, double c) {
    GUARD1(t, a);
    return check_finite(t, c) ? unary_bit(t, gt(t, a, NULL, c), ALK_BIT_NOT) : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Multiplexer, max/min, abs (§1.14)                                                        */
/* ---------------------------------------------------------------------------------------- */

static alk_fvar *mux(alk_trace *t, alk_fvar *c, alk_fvar *a, alk_fvar *b, const alk_qint *qint) {
    if (t->error != ALK_OK || c == NULL || a == NULL || b == NULL) {
        return NULL;
    }
    alk_hwconf hw = c->node->hwconf;
    if (is_const(b) && lo(b) == 0) {
        alk_fvar *m = msb(t, c);
        if (!is_const(a)) {
            return binary_bit(t, mul_num(t, neg(t, m), st(a)), a, ALK_BIT_AND);
        }
        return mul(t, m, a);
    }
    if (is_const(a) && lo(a) == 0) {
        alk_fvar *m = unary_bit(t, msb(t, c), ALK_BIT_NOT);
        if (!is_const(b)) {
            return binary_bit(t, mul_num(t, neg(t, m), st(b)), b, ALK_BIT_AND);
        }
        return mul(t, m, b);
    }
    if (is_const(c)) {
        /* An unsigned constant's MSB in its own format is set unless it is 0; a negative one's
         * sign bit is set. (The reference selects b for a negative power of two, §1.14 rule 3
         * [quirk]: max(v, v - 0.5) gave v - 0.5.) */
        return lo(c) >= 0 && hi(c) == 0 ? b : a;
    }
    if (c->node->opr == ALK_FOPR_WRAP) {
        alk_fvar *src = c->node->from[0];
        int k, i, f, k0, i0, f0;
        alk__fv_kif(c, &k, &i, &f);
        alk__fv_kif(src, &k0, &i0, &f0);
        double factor = c->factor * fabs(src->factor);
        if (k + i == k0 + i0 + log2(fabs(factor / src->factor))) {
            return mux(t, src, a, b, qint);
        }
    }
    double factor = fabs(a->factor);
    alk_qint q;
    if (qint == NULL) {
        q = (alk_qint){pmin(lo(a), lo(b)), pmax(hi(a), hi(b)), pmin(st(a), st(b))};
    } else {
        double step = pmin(st(a), st(b));
        if (!(qint->step <= step)) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "a multiplexer cannot round: its step %g is larger than %g",
                                 qint->step, step);
            return NULL;
        }
        q.min = pmax(pfloor(qint->min / step) * step, pmin(lo(a), lo(b)));
        q.max = pmin(pfloor(qint->max / step) * step, pmax(hi(a), hi(b)));
        q.step = step;
    }
    if (is_const(a) && a->factor != b->factor) {
        factor = b->factor;
        alk_fnode *copy = new_node(t, ALK_FOPR_CONST, a->node->hwconf);
        if (copy == NULL) {
            return NULL;
        }
        uint64_t serial = copy->serial;
        *copy = *a->node;
        copy->serial = serial;
        copy->mark = 0;
        a = new_ref(t, copy, a->affine, b->factor);
    }
    if (b != NULL && a != NULL && is_const(b) && a->factor != b->factor) {
        factor = a->factor;
        alk_fnode *copy = new_node(t, ALK_FOPR_CONST, b->node->hwconf);
        if (copy == NULL) {
            return NULL;
        }
        uint64_t serial = copy->serial;
        *copy = *b->node;
        copy->serial = serial;
        copy->mark = 0;
        b = new_ref(t, copy, b->affine, a->factor);
    }
    if (a == NULL || b == NULL) {
        return NULL;
    }
    alk_fvar *from[3] = {c, a, b};
    return make_lhs(t, ALK_FOPR_MUX, q.min, q.max, q.step, from, 3, fabs(factor), 0, NULL, hw);
}

alk_fvar *alk_fv_mux(alk_trace *t, alk_fvar *c, alk_fvar *a, alk_fvar *b, const alk_qint *qint) {
    GUARD2(t, a, b);
    GUARD1(t, c);
    return mux(t, c, a, b, qint);
}

/*
 * Beyond the reference: max and min decide from the difference d = v - o where its interval
 * does (1: d >= 0, -1: d < 0, 0: either). The reference compares the two intervals only, then
 * muxes on the MSB of d, which for a d known to be >= 0 (an unsigned format) is its top bit,
 * not its sign: max(0.75x - 2, 0.875x - 2.5) returned the smaller value wherever the difference
 * reached 0.5. A constant d took msb_mux's constant rule, which picks by "power of two".
 */
static int known_sign(alk_fvar *d) {
    if (d == NULL) {
        return 0;
    }
    return lo(d) >= 0 ? 1 : hi(d) < 0 ? -1 : 0;
}

static alk_fvar *max_of(alk_trace *t, alk_fvar *v, alk_fvar *o) {
    if (t->error != ALK_OK || v == NULL || o == NULL) {
        return NULL;
    }
    if (lo(v) >= hi(o)) {
        return v;
    }
    if (hi(v) <= lo(o)) {
        return o;
    }
    if (hi(o) == lo(o) && lo(o) == 0) {
        return relu(t, v, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN);
    }
    alk_fvar *d = add(t, v, neg(t, o));
    switch (known_sign(d)) {
    case 1:
        return v;
    case -1:
        return o;
    default:
        break;
    }
    alk_qint q = {pmax(lo(v), lo(o)), pmax(hi(v), hi(o)), pmin(st(v), st(o))};
    return mux(t, d, o, v, &q);
}

static alk_fvar *min_of(alk_trace *t, alk_fvar *v, alk_fvar *o) {
    if (t->error != ALK_OK || v == NULL || o == NULL) {
        return NULL;
    }
    if (hi(v) <= lo(o)) {
        return v;
    }
    if (lo(v) >= hi(o)) {
        return o;
    }
    if (hi(o) == lo(o) && lo(o) == 0) {
        return neg(t, relu(t, neg(t, v), ALK_FV_NONE, ALK_FV_NONE, ALK_TRN));
    }
    alk_fvar *d = add(t, v, neg(t, o));
    switch (known_sign(d)) {
    case 1:
        return o;
    case -1:
        return v;
    default:
        break;
    }
    alk_qint q = {pmin(lo(v), lo(o)), pmin(hi(v), hi(o)), pmin(st(v), st(o))};
    return mux(t, d, v, o, &q);
}

alk_fvar *alk_fv_max(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return max_of(t, a, b);
}
alk_fvar *alk_fv_min(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return min_of(t, a, b);
}

alk_fvar *alk_fv_max_const(alk_trace *t, alk_fvar *a, double c) {
    GUARD1(t, a);
    if (c == -INFINITY) {
        return a;
    }
    if (c == INFINITY || isnan(c)) {
        alk__trace_set_error(t, ALK_EINVAL, "max with %g is not supported", c);
        return NULL;
    }
    return max_of(t, a, alk__fv_const_hw(t, c, a->node->hwconf));
}

alk_fvar *alk_fv_min_const(alk_trace *t, alk_fvar *a, double c) {
    GUARD1(t, a);
    if (c == INFINITY) {
        return a;
    }
    if (c == -INFINITY || isnan(c)) {
        alk__trace_set_error(t, ALK_EINVAL, "min with %g is not supported", c);
        return NULL;
    }
    return min_of(t, a, alk__fv_const_hw(t, c, a->node->hwconf));
}

alk_fvar *alk_fv_abs(alk_trace *t, alk_fvar *a) {
    GUARD1(t, a);
    if (lo(a) >= 0) {
        return a;
    }
    alk_qint q = {0, pmax(-lo(a), hi(a)), st(a)};
    return mux(t, a, neg(t, a), a, &q);
}

/* ---------------------------------------------------------------------------------------- */
/* Bit operations (§1.16)                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* _unary_bit_op on a number (spec §1.16, §4.3). */
static double unary_bit_number(double a, alk_bit_unop op, alk_qint from) {
    int k, i, f;
    if (from.min != 0 || from.max != 0) {
        qint_kif(from, &k, &i, &f);
    } else {
        k = 0;
        i = 1;
        f = 0;
    }
    int64_t x = (int64_t)py_round(a / from.step);
    switch (op) {
    case ALK_BIT_NOT:
        return interpret_as((double)~x, k, i, f);
    case ALK_BIT_ANY:
        return x != 0;
    default:
        return from.min >= 0 ? (double)x == from.max : x == -1;
    }
}

static alk_fvar *unary_bit(alk_trace *t, alk_fvar *v, alk_bit_unop type) {
    if (t->error != ALK_OK || v == NULL) {
        return NULL;
    }
    alk_hwconf hw = v->node->hwconf;
    if (is_const(v)) {
        alk_qint q = {lo(v), hi(v), st(v)};
        return alk__fv_const_hw(t, unary_bit_number(lo(v), type, q), hw);
    }
    int k, i, f;
    alk__fv_kif(v, &k, &i, &f);
    if (k + i + f == 1 && type != ALK_BIT_NOT) {
        return msb(t, v);
    }
    alk_fvar *from[1] = {v};
    if (type == ALK_BIT_NOT) {
        if (v->node->opr == ALK_FOPR_BIT_UNARY && v->node->data == ALK_BIT_NOT) {
            alk_fvar *src = v->node->from[0];
            return mul_num(t, src, v->factor / src->factor);
        }
        double step = ldexp(1.0, -f);
        double top = ldexp(1.0, i);
        return make_lhs(t, ALK_FOPR_BIT_UNARY, k ? -top : 0.0, top - step, step, from, 1,
                        fabs(v->factor), 0, NULL, hw);
    }
    if (type == ALK_BIT_ALL) {
        /* bug?: a strictly positive variable is "never all ones" (spec §1.16). */
        if (lo(v) > 0 || hi(v) < -st(v)) {
            return alk__fv_const_hw(t, 0, hw);
        }
        if (lo(v) == 0 && fmod(log2(hi(v) + st(v)), 1.0) != 0) {
            return alk__fv_const_hw(t, 0, hw);
        }
    }
    return make_lhs(t, ALK_FOPR_BIT_UNARY, 0, 1, 1, from, 1, 1.0, type, NULL, hw);
}

static alk_fvar *binary_bit(alk_trace *t, alk_fvar *v, alk_fvar *o, alk_bit_binop type) {
    if (t->error != ALK_OK || v == NULL || o == NULL) {
        return NULL;
    }
    alk_hwconf hw = v->node->hwconf;
    int k, i, f, ko, io, fo;
    alk__fv_kif(v, &k, &i, &f);
    alk__fv_kif(o, &ko, &io, &fo);
    i = i > io ? i : io;
    f = f > fo ? f : fo;
    switch (type) {
    case ALK_BIT_AND:
        k = k & ko;
        break;
    case ALK_BIT_OR:
        k = k | ko;
        break;
    default:
        if (lo(v) >= 0 && lo(o) >= 0) {
            k = 0;
        } else if (hi(v) < 0 && hi(o) < 0) {
            k = 0;
        } else {
            k = 1;
        }
    }
    if (is_const(v) && is_const(o)) {
        double step = pmin(st(v), st(o));
        int64_t x = (int64_t)py_round(lo(v) / step), y = (int64_t)py_round(lo(o) / step);
        int64_t r = type == ALK_BIT_AND ? (x & y) : type == ALK_BIT_OR ? (x | y) : (x ^ y);
        return alk__fv_const_hw(t, (double)r * step, hw);
    }
    if (is_const(v)) {
        return binary_bit(t, o, v, type);
    }
    if (is_const(o)) {
        if (lo(o) == 0) {
            return type == ALK_BIT_AND ? o : v;
        }
        double ones_neg = -st(v);
        double ones_pos = ldexp(1.0, i) - st(v);
        if ((k == 0 && lo(o) == ones_pos) || (k == 1 && lo(o) == ones_neg)) {
            if (type == ALK_BIT_AND) {
                return quantize(t, v, k, i, f, ALK_WRAP, ALK_TRN);
            }
            if (type == ALK_BIT_OR) {
                return quantize(t, o, k, i, f, ALK_WRAP, ALK_TRN);
            }
            /* x ^ ones = ones - x. Beyond the reference, whose ~x complements x in x's own
             * format: a one-bit x ^ 3 came out 1 - x, not 3 - x. */
            return quantize(t, const_add(t, neg(t, v), lo(o)), k, i, f, ALK_WRAP, ALK_TRN);
        }
    }
    double step = ldexp(1.0, -f);
    double top = ldexp(1.0, i);
    alk_fvar *from[2] = {v, o};
    return make_lhs(t, ALK_FOPR_BIT_BINARY, k ? -top : 0.0, top - step, step, from, 2,
                    fabs(v->factor), type, NULL, hw);
}

alk_fvar *alk_fv_not(alk_trace *t, alk_fvar *v) {
    GUARD1(t, v);
    return unary_bit(t, v, ALK_BIT_NOT);
}
alk_fvar *alk_fv_any(alk_trace *t, alk_fvar *v) {
    GUARD1(t, v);
    return unary_bit(t, v, ALK_BIT_ANY);
}
alk_fvar *alk_fv_all(alk_trace *t, alk_fvar *v) {
    GUARD1(t, v);
    return unary_bit(t, v, ALK_BIT_ALL);
}
alk_fvar *alk_fv_and(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return binary_bit(t, a, b, ALK_BIT_AND);
}
alk_fvar *alk_fv_or(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return binary_bit(t, a, b, ALK_BIT_OR);
}
alk_fvar *alk_fv_xor(alk_trace *t, alk_fvar *a, alk_fvar *b) {
    GUARD2(t, a, b);
    return binary_bit(t, a, b, ALK_BIT_XOR);
}

/* ---------------------------------------------------------------------------------------- */
/* Lookup tables (§1.15)                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* numpy's astype(int32) of a double on x86: truncation, out of range -> INT32_MIN. */
static int32_t to_int32(double x) {
    if (!(x > -2147483649.0 && x < 2147483648.0)) {
        return INT32_MIN;
    }
    return (int32_t)x;
}

/* to_spec: table values -> (spec, int32 entries, mask). `mask_in` (may be NULL) overrides the
 * mask kept with the table (LookupTable.__getitem__ keeps the sliced original mask). */
static alk_ftable *table_from_floats(alk_trace *t, const double *values, size_t n,
                                     const uint8_t *mask_in, bool use_mask_in) {
    if (t->error != ALK_OK) {
        return NULL;
    }
    if (n == 0) {
        alk__trace_set_error(t, ALK_EINVAL, "a lookup table needs at least one entry");
        return NULL;
    }
    alk_ftable *table = alk__trace_alloc(t, sizeof(*table));
    int32_t *ints = alk__trace_alloc(t, n * sizeof(int32_t));
    uint8_t *mask = alk__trace_alloc(t, n);
    if (table == NULL || ints == NULL || mask == NULL) {
        return NULL;
    }
    memset(table, 0, sizeof(*table));
    bool any_masked = false;
    int min_lsb = 0;
    bool have = false;
    double vmin = 0, vmax = 0;
    for (size_t j = 0; j < n; j++) {
        mask[j] = !isfinite(values[j]);
        if (mask[j]) {
            any_masked = true;
            continue;
        }
        int l = lsb_i8(values[j]);
        if (!have || l < min_lsb) {
            min_lsb = l;
        }
        if (!have || values[j] < vmin) {
            vmin = values[j];
        }
        if (!have || values[j] > vmax) {
            vmax = values[j];
        }
        have = true;
    }
    if (!have) {
        alk__trace_set_error(t, ALK_EINVAL, "a lookup table has no finite entry");
        return NULL;
    }
    int f_out = (int8_t)(-min_lsb);
    double scale = ldexp(1.0, f_out);
    for (size_t j = 0; j < n; j++) {
        ints[j] = mask[j] ? 0 : to_int32(values[j] * scale);
    }
    /* The name: SHA-256 of the little-endian int32 entries, then the mask if any entry is
     * masked, then the decimal precision. */
    alk_sha256 sha;
    alk_sha256_init(&sha);
    uint8_t le[1024];
    for (size_t j = 0; j < n;) {
        size_t m = 0;
        for (; j < n && m < sizeof(le); j++, m += 4) {
            uint32_t u = (uint32_t)ints[j];
            le[m] = (uint8_t)u;
            le[m + 1] = (uint8_t)(u >> 8);
            le[m + 2] = (uint8_t)(u >> 16);
            le[m + 3] = (uint8_t)(u >> 24);
        }
        alk_sha256_update(&sha, le, m);
    }
    if (any_masked) {
        alk_sha256_update(&sha, "mask", 4);
        alk_sha256_update(&sha, mask, n);
    }
    char text[16];
    int len = snprintf(text, sizeof(text), "%d", f_out);
    alk_sha256_update(&sha, text, (size_t)len);
    alk_sha256_final_hex(&sha, table->hash);
    table->out_qint = (alk_qint){vmin, vmax, ldexp(1.0, -f_out)};
    table->inp_width = (int)ceil(log2((double)n));
    table->f_out = f_out;
    table->len = n;
    table->values = ints;
    if (use_mask_in) {
        table->mask = NULL;
        if (mask_in != NULL) {
            memcpy(mask, mask_in, n);
            table->mask = mask;
        }
    } else {
        table->mask = any_masked ? mask : NULL;
    }
    return table;
}

alk_ftable *alk_ftable_new(alk_trace *t, const double *values, size_t n) {
    return table_from_floats(t, values, n, NULL, false);
}

alk_ftable *alk__ftable_from_ints(alk_trace *t, const char *hash, alk_qint out_qint,
                                  int64_t inp_width, const int32_t *values, size_t n) {
    alk_ftable *table = alk__trace_alloc(t, sizeof(*table));
    int32_t *ints = alk__trace_alloc(t, (n ? n : 1) * sizeof(int32_t));
    if (table == NULL || ints == NULL) {
        return NULL;
    }
    memset(table, 0, sizeof(*table));
    snprintf(table->hash, sizeof(table->hash), "%s", hash);
    table->out_qint = out_qint;
    table->inp_width = (int)inp_width;
    table->f_out = -lsb_i8(out_qint.step);
    table->len = n;
    memcpy(ints, values, n * sizeof(int32_t));
    table->values = ints;
    return table;
}

size_t alk_ftable_len(const alk_ftable *table) {
    return table->len;
}
const char *alk_ftable_hash(const alk_ftable *table) {
    return table->hash;
}
alk_qint alk_ftable_out_qint(const alk_ftable *table) {
    return table->out_qint;
}

const double *alk__ftable_float_values(alk_trace *t, alk_ftable *table) {
    if (table->float_values != NULL) {
        return table->float_values;
    }
    double *fv = alk__trace_alloc(t, table->len * sizeof(double));
    if (fv == NULL) {
        return NULL;
    }
    int k, i, f;
    qint_kif(table->out_qint, &k, &i, &f);
    int b = k + i + f;
    for (size_t j = 0; j < table->len; j++) {
        if (b > 0 && b <= 62) {
            /* interpret_as in integers: the same value when it fits (exact dyadic). */
            int64_t m = (int64_t)1 << b, bias = k ? m / 2 : 0;
            int64_t r = ((int64_t)table->values[j] + bias) % m;
            r = (r < 0 ? r + m : r) - bias;
            fv[j] = ldexp((double)r, -f);
        } else {
            fv[j] = interpret_as((double)table->values[j], k, i, f);
        }
    }
    table->float_values = fv;
    return fv;
}

int alk__ftable_lookup_number(alk_trace *t, alk_ftable *table, double x, alk_qint qint_in,
                              double *ret) {
    if (!(qint_in.min <= x && x <= qint_in.max)) {
        return alk__trace_set_error(t, ALK_EINVAL, "lookup of %g outside its range [%g, %g]", x,
                                    qint_in.min, qint_in.max);
    }
    double index = py_round((x - qint_in.min) / qint_in.step);
    if (index < 0 || index >= (double)table->len || (table->mask && table->mask[(size_t)index])) {
        return alk__trace_set_error(t, ALK_EINVAL, "lookup of %g hits a missing table entry", x);
    }
    int k, i, f;
    qint_kif(table->out_qint, &k, &i, &f);
    *ret = interpret_as((double)table->values[(size_t)index], k, i, f);
    return ALK_OK;
}

static alk_fvar *lookup_table(alk_trace *t, alk_fvar *v, alk_ftable *table) {
    const double *fv = alk__ftable_float_values(t, table);
    if (fv == NULL) {
        return NULL;
    }
    bool all_equal = true;
    for (size_t j = 1; j < table->len; j++) {
        if (!(fv[j] == fv[0])) {
            all_equal = false;
            break;
        }
    }
    if (all_equal) {
        return alk__fv_const_hw(t, fv[0], v->node->hwconf);
    }
    if (table->len == 2) {
        alk_fvar *key = v->factor > 0 ? v : neg(t, v);
        alk_fvar *c = const_add(t, key, -lo(key));
        alk_fvar *b = alk__fv_const_hw(t, fv[1], v->node->hwconf);
        alk_fvar *a = alk__fv_const_hw(t, fv[0], v->node->hwconf);
        return mux(t, c, b, a, NULL);
    }
    alk_fvar *from[1] = {v};
    alk_qint q = table->out_qint;
    return make_lhs(t, ALK_FOPR_LOOKUP, q.min, q.max, q.step, from, 1, 1.0, 0, table,
                    v->node->hwconf);
}

static bool check_table_size(alk_trace *t, alk_fvar *v, size_t size) {
    double n = py_round((hi(v) - lo(v)) / st(v)) + 1;
    if (n != (double)size) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "lookup table has %zu entries but the variable takes %.0f values",
                             size, n);
        return false;
    }
    return true;
}

alk_fvar *alk_fv_lookup(alk_trace *t, alk_fvar *v, alk_ftable *table, const alk_qint *original) {
    GUARD1(t, v);
    if (table == NULL) {
        return NULL;
    }
    if (original != NULL) {
        size_t size = table->len;
        double o_min = original->min, o_max = original->max, o_step = original->step;
        if (py_round((o_max - o_min) / o_step) + 1 != (double)size) {
            alk__trace_set_error(t, ALK_EINVAL, "table size %zu does not match its interval", size);
            return NULL;
        }
        alk_qint q = alk__fv_qint(v);
        if (!(o_step <= q.step && o_max >= q.max && o_min <= q.min)) {
            alk__trace_set_error(t, ALK_EINVAL,
                                 "the table's interval does not cover the variable's values");
            return NULL;
        }
        /* Slice the float table and rebuild it (LookupTable.__getitem__). The rebuild is
         * deterministic, so the last slice of each table is remembered (a retrace re-slices
         * every lookup, usually with the same bounds). */
        int64_t start = (int64_t)py_round((q.min - o_min) / o_step);
        int64_t stop = (int64_t)size - (int64_t)py_round((o_max - q.max) / o_step);
        /* A variable's step may be any power of two above the table's (a constant's is its own
         * lsb): a stride past the table's end selects its first entry only, as Python's slice
         * does with the reference's huge int, so it is clamped before the conversion. */
        double ratio = py_round(q.step / o_step);
        int64_t stride = ratio < (double)size ? (int64_t)ratio : (int64_t)size;
        if (table->slice != NULL && table->slice_start == start && table->slice_stop == stop &&
            table->slice_stride == stride) {
            alk_ftable *sliced = table->slice;
            if (!check_table_size(t, v, sliced->len)) {
                return NULL;
            }
            return lookup_table(t, v, sliced);
        }
        alk_ftable *source = table;
        const double *fv = alk__ftable_float_values(t, table);
        if (fv == NULL) {
            return NULL;
        }
        size_t n = stop > start ? (size_t)((stop - start + stride - 1) / stride) : 0;
        double *vals = alk__trace_alloc(t, (n ? n : 1) * sizeof(double));
        uint8_t *mask = table->mask ? alk__trace_alloc(t, n ? n : 1) : NULL;
        if (vals == NULL || (table->mask && mask == NULL)) {
            return NULL;
        }
        for (size_t j = 0; j < n; j++) {
            vals[j] = fv[start + (int64_t)j * stride];
            if (mask) {
                mask[j] = table->mask[start + (int64_t)j * stride];
            }
        }
        table = table_from_floats(t, vals, n, mask, true);
        if (table == NULL) {
            return NULL;
        }
        source->slice = table;
        source->slice_start = start;
        source->slice_stop = stop;
        source->slice_stride = stride;
    }
    if (!check_table_size(t, v, table->len)) {
        return NULL;
    }
    return lookup_table(t, v, table);
}

alk_fvar *alk_fv_lookup_values(alk_trace *t, alk_fvar *v, const double *values, size_t n) {
    GUARD1(t, v);
    if (!check_table_size(t, v, n)) {
        return NULL;
    }
    double *vals = alk__trace_alloc(t, (n ? n : 1) * sizeof(double));
    if (vals == NULL) {
        return NULL;
    }
    for (size_t j = 0; j < n; j++) {
        vals[j] = v->factor < 0 ? values[n - 1 - j] : values[j];
    }
    alk_ftable *table = alk_ftable_new(t, vals, n);
    return table == NULL ? NULL : lookup_table(t, v, table);
}

alk_ftable *alk_ftable_from_fn(alk_trace *t, alk_float_fn fn, void *user, alk_qint qint) {
    if (t->error != ALK_OK) {
        return NULL;
    }
    double n = py_round(fabs(qint.max - qint.min) / qint.step) + 1;
    if (!(n >= 1 && n <= (double)(1u << 24))) {
        alk__trace_set_error(t, ALK_EINVAL,
                             "a table over (%g, %g, %g) would have %.0f entries (limit 2^24)",
                             qint.min, qint.max, qint.step, n);
        return NULL;
    }
    size_t count = (size_t)n;
    double *x = alk__trace_alloc(t, count * sizeof(double));
    if (x == NULL) {
        return NULL;
    }
    /* numpy.linspace: start + j * ((stop - start) / (n - 1)), the last point set to stop. */
    double step = count > 1 ? (qint.max - qint.min) / (double)(count - 1) : 0;
    for (size_t j = 0; j < count; j++) {
        double p = count > 1 ? (double)j * step + qint.min : qint.min;
        if (count > 1 && j == count - 1) {
            p = qint.max;
        }
        x[j] = fn(p, user);
    }
    return alk_ftable_new(t, x, count);
}
