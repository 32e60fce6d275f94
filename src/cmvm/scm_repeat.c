/*
 * Single constant multiplication by a repeating digit pattern (improved mode, issue 14).
 *
 * The float64 constants users meet (1/3, 0.1, 0.7, a mean over 3 or 9 elements) have odd parts
 * of 50-odd bits whose digits repeat: 1/3 is 0b0101...01, 0.1 is 0b1100 1100 ... 1101. The
 * exhaustive search of spec §9 cannot finish on them, but such a constant is a short multiple
 * of a geometric series plus a correction of a few digits:
 *
 *     c = a * (1 + 2^p + 2^2p + ... + 2^(k-1)p) + e
 *
 * and x * c costs: the adders of x * a (a short constant: the exact search), an addition chain
 * for the series (R(i+j) = R(i) + 2^(p*i) * R(j), so a chain for k; 27 = 1,2,3,6,12,24,27 makes
 * the 27 ones of 1/3 in 6 adders), and one adder per digit of e. This file tries every period p
 * and length k, keeps the forms whose estimate beats the NAF, builds the best few exactly and
 * returns the one with the fewest adders. Every result is checked by evaluating it exactly.
 *
 * Thread rule: reentrant; one call owns all its state.
 */
#include "cmvm/cmvm.h"
#include "cmvm/cmvm_int.h"
#include "core/alloc.h"
#include "core/fxp.h"

#include <math.h>
#include <string.h>

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

enum {
    MAX_PERIOD = 24,  /* longest repeating pattern tried, in bits */
    MAX_CHAIN = 12,   /* longest addition chain searched */
    MAX_REPEATS = 62, /* terms of the series */
    BUILT = 3,        /* forms built exactly, best estimates first */
};

/* An addition chain 1 = a[0] < a[1] < ... < a[len] = k with a[s] = a[s-1] + a[pick[s]]. */
typedef struct chain {
    int len;
    int a[MAX_CHAIN + 1];
    int pick[MAX_CHAIN + 1];
} chain;

/* Depth-first search for a star chain reaching k in exactly `len` steps. */
static bool chain_extend(chain *c, int s, int len, int k) {
    if (c->a[s] == k) {
        c->len = s;
        return true;
    }
    if (s == len || ((int64_t)c->a[s] << (len - s)) < k) {
        return false; /* even doubling every step cannot reach k */
    }
    for (int j = s; j >= 0; j--) {
        int next = c->a[s] + c->a[j];
        if (next > k || next <= c->a[s]) {
            continue;
        }
        c->a[s + 1] = next;
        c->pick[s + 1] = j;
        if (chain_extend(c, s + 1, len, k)) {
            return true;
        }
    }
    return false;
}

/* A shortest star chain for k (1 <= k <= MAX_REPEATS): iterative deepening. */
static void shortest_chain(int k, chain *ret) {
    chain c = {.a = {1}};
    for (int len = 0; len <= MAX_CHAIN; len++) {
        if (chain_extend(&c, 0, len, k)) {
            *ret = c;
            return;
        }
    }
    *ret = c; /* unreachable for k <= MAX_REPEATS: 2 * log2(k) steps always suffice */
}

static int naf_weight128(i128 v) {
    int w = 0;
    if (v < 0) {
        v = -v;
    }
    while (v != 0) {
        if (v & 1) {
            w++;
            v -= 2 - (int)(v & 3);
        }
        v >>= 1;
    }
    return w;
}

/* One form c = a * R + e, R = sum of 2^(p*i) for i < k. */
typedef struct form {
    int p;
    int k;
    int64_t a;
    i128 e;
    int estimate; /* adders, with x * a counted as its NAF */
} form;

/* The series sum R for (p, k), or 0 when it does not fit 62 bits. */
static i128 series(int p, int k) {
    if (p * k > 62) {
        return 0;
    }
    i128 r = 0;
    for (int i = 0; i < k; i++) {
        r += (i128)1 << (p * i);
    }
    return r;
}

/* Keeps the BUILT best forms by estimate in `best` (sorted, *n of them). */
static void keep_form(form *best, int *n, form f) {
    int at = *n < BUILT ? (*n)++ : BUILT;
    if (at == BUILT && f.estimate >= best[BUILT - 1].estimate) {
        return;
    }
    if (at == BUILT) {
        at = BUILT - 1;
    }
    while (at > 0 && best[at - 1].estimate > f.estimate) {
        best[at] = best[at - 1];
        at--;
    }
    best[at] = f;
}

/* Appends an op to the growable array. */
static int push(alk__op **ops, size_t *n, size_t *cap, alk__op op) {
    return alk__push_op(ops, n, cap, op);
}

/* The op a0 + (-1)^sub * a1 * 2^shift with the model's interval, cost and latency. */
static alk__op make_add(const alk__op *ops, int32_t a0, int32_t a1, int32_t shift, bool sub) {
    float cost, dlat;
    alk__cost_add(ops[a0].qint, ops[a1].qint, shift, &cost, &dlat);
    float l0 = ops[a0].latency, l1 = ops[a1].latency;
    return (alk__op){a0,
                     a1,
                     sub ? 1 : 0,
                     shift,
                     alk__qint_add(ops[a0].qint, ops[a1].qint, shift, false, sub),
                     (l0 > l1 ? l0 : l1) + dlat,
                     cost};
}

/* Exact value of the op `id` for x = 1, as a fixed-point number with 64 fraction bits. */
static i128 value_of(const alk__op *ops, size_t n_ops, int32_t id) {
    i128 *v = alk_malloc((n_ops + 1) * sizeof(i128));
    if (v == NULL) {
        return -1;
    }
    for (size_t i = 0; i <= (size_t)id; i++) {
        if (ops[i].opcode == -1) {
            v[i] = (i128)1 << 64;
            continue;
        }
        int s = ops[i].data;
        /* A left shift through u128: shifting a negative signed value is undefined. */
        i128 b = s >= 0 ? (i128)((u128)v[ops[i].id1] << s) : v[ops[i].id1] >> -s;
        v[i] = ops[i].opcode == 0 ? v[ops[i].id0] + b : v[ops[i].id0] - b;
    }
    i128 r = v[id];
    alk_free(v);
    return r;
}

/*
 * Builds x * constant from form `f` (c_odd = a * R + e, the constant = +-c_odd * 2^t) into
 * *ret_program; *ret_program stays NULL when the product x * a cannot be solved.
 */
static int build_form(const form *f, int64_t c_odd, int t, bool negative,
                      const alk_scm_options *options, alk_program **ret_program, alk_diag *diag) {
    alk__op *ops = NULL;
    size_t n_ops = 0, cap_ops = 0;
    alk__term *terms = NULL;
    alk_program *pa = NULL;
    alk__fq q = {(float)options->interval.min, (float)options->interval.max,
                 (float)options->interval.step};
    int rv = push(&ops, &n_ops, &cap_ops, (alk__op){0, -1, -1, 0, q, 0.0f, 0.0f});
    /* y = x * a, from the solver itself (a is short: its search is exact). */
    int32_t y = 0, y_shift = 0;
    bool y_neg = false;
    if (rv == ALK_OK && f->a != 1) {
        alk_scm_options sub = *options;
        rv = alk_scm_solve((double)f->a, &sub, &pa, diag);
        /* Its ops as they are: op 0 is the same read of x. */
        for (size_t i = 1; rv == ALK_OK && i < pa->n_ops; i++) {
            const alk_alir_op *op = &pa->ops[i];
            const uint32_t *addr = alk_alir_op_addr(pa, op);
            alk__op o = {(int32_t)addr[0],
                         (int32_t)addr[1],
                         op->opcode,
                         (int32_t)alk_alir_op_data(pa, op)[0],
                         {(float)op->qint.min, (float)op->qint.max, (float)op->qint.step},
                         (float)op->latency,
                         (float)op->cost};
            rv = push(&ops, &n_ops, &cap_ops, o);
        }
        if (rv == ALK_OK) {
            y = pa->out_idxs[0];
            y_shift = pa->out_shifts[0];
            y_neg = pa->out_negs[0];
        }
    }
    /* z = y * R by the addition chain: R(a[s]) = R(a[s-1]) + 2^(p * a[s-1]) * R(a[pick]). */
    chain ch;
    shortest_chain(f->k, &ch);
    int32_t *at = alk_malloc(((size_t)ch.len + 1) * sizeof(int32_t));
    if (rv == ALK_OK && at == NULL) {
        rv = ALK_ENOMEM;
    }
    if (rv == ALK_OK) {
        at[0] = y;
    }
    for (int s = 1; rv == ALK_OK && s <= ch.len; s++) {
        alk__op o = make_add(ops, at[s - 1], at[ch.pick[s]], f->p * ch.a[s - 1], false);
        rv = push(&ops, &n_ops, &cap_ops, o);
        at[s] = (int32_t)n_ops - 1;
    }
    /* The sum of z and e's digits (of x) through the emission heap. */
    size_t n_terms = 0;
    terms = alk_malloc(130 * sizeof(alk__term));
    if (rv == ALK_OK && terms == NULL) {
        rv = ALK_ENOMEM;
    }
    if (rv == ALK_OK) {
        terms[n_terms++] = (alk__term){at[ch.len], y_neg, y_shift};
        i128 e = f->e;
        for (int pos = 0; e != 0; pos++) {
            if (e & 1) {
                int d = 2 - (int)(e & 3);
                terms[n_terms++] = (alk__term){0, d < 0, pos};
                e -= d;
            }
            e >>= 1;
        }
    }
    int32_t final_id = at != NULL && rv == ALK_OK ? at[ch.len] : 0, final_shift = y_shift;
    bool final_neg = y_neg;
    if (rv == ALK_OK && n_terms > 1) {
        rv = alk__reduce_terms(&ops, &n_ops, &cap_ops, terms, n_terms, &final_id, &final_neg,
                               &final_shift);
    }
    if (rv == ALK_OK) {
        /* The check: the program must give c_odd exactly. */
        i128 v = value_of(ops, n_ops, final_id);
        v = final_shift >= 0 ? (i128)((u128)v << final_shift) : v >> -final_shift;
        if (final_neg) {
            v = -v;
        }
        if (v != (i128)c_odd << 64) {
            rv = ALK_EINTERNAL;
        }
    }
    if (rv == ALK_OK) {
        rv = alk__scm_stage_to_program(ops, n_ops, final_id, final_shift + t, final_neg != negative,
                                       ret_program);
    }
    alk_free(at);
    alk_free(terms);
    alk_free(ops);
    alk_program_free(pa);
    return rv;
}

int alk__scm_repeat(double constant, const alk_scm_options *options, alk_program **ret_program,
                    alk_diag *diag) {
    *ret_program = NULL;
    int t = alk_lsb_loc_f64(fabs(constant));
    int64_t c_odd = (int64_t)round(fabs(constant) * pow(2.0, -t));
    int plain = alk__naf_weight(c_odd) - 1;
    form best[BUILT];
    int n_best = 0;
    for (int p = 1; p <= MAX_PERIOD; p++) {
        for (int k = 2; k <= MAX_REPEATS && p * k <= 62; k++) {
            i128 r = series(p, k);
            if (r == 0 || r > (i128)c_odd) {
                break;
            }
            int64_t a0 = (int64_t)((i128)c_odd / r);
            chain ch;
            shortest_chain(k, &ch);
            for (int64_t a = a0; a <= a0 + 1; a++) {
                /* x * a must stay a short product (its exact search is quick). */
                int64_t a_odd = a;
                while (a_odd > 0 && (a_odd & 1) == 0) {
                    a_odd >>= 1;
                }
                if (a_odd <= 0 || a_odd >= (1 << 12)) {
                    continue;
                }
                form f = {.p = p, .k = k, .a = a, .e = (i128)c_odd - (i128)a * r};
                f.estimate = (alk__naf_weight(a_odd) - 1) + ch.len + naf_weight128(f.e);
                if (f.estimate < plain) {
                    keep_form(best, &n_best, f);
                }
            }
        }
    }
    int rv = ALK_OK;
    for (int i = 0; i < n_best && rv == ALK_OK; i++) {
        alk_program *p = NULL;
        rv = build_form(&best[i], c_odd, t, constant < 0, options, &p, diag);
        if (rv != ALK_OK || p == NULL) {
            break;
        }
        if (*ret_program == NULL ||
            alk_cmvm_count_adders(p) < alk_cmvm_count_adders(*ret_program)) {
            alk_program_free(*ret_program);
            *ret_program = p;
        } else {
            alk_program_free(p);
        }
    }
    if (rv != ALK_OK) {
        alk_program_free(*ret_program);
        *ret_program = NULL;
    }
    return rv == ALK_EINTERNAL ? alk_diag_set(diag, rv,
                                              "scm: a repeating form of %.17g has a "
                                              "wrong value",
                                              constant)
                               : rv;
}
