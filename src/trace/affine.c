/*
 * Affine intervals (spec trace-alir.md §1.2): bias + sum of coefficient * atom, where each atom
 * is an independent interval with its own identity. Sums of references to the same atoms cancel
 * exactly, which keeps intervals tight through additions, constant additions, negations and
 * power-of-two scalings; every other operation starts a fresh atom.
 *
 * Terms keep the reference's dict insertion order, because the interval bounds are accumulated
 * term by term in doubles and the order can change the last bit. A merge marks the atoms of the
 * left operand with their position (alk_atom.mark) for O(n + m) lookups and clears the marks
 * before returning. Everything is allocated from the context's arena; affine values are
 * immutable once built, except for the cached interval.
 *
 * Beyond the reference, two rules keep intervals true to what the adders compute:
 *
 * - A sum's step is never finer than its operands' (step_floor): the hardware adds values on
 *   grids s_a and s_b, a multiple of min(s_a, s_b). Coefficients are doubles, and products by
 *   non-dyadic constants (an average over 9, x / 3) make them longer than 53 bits, so a
 *   coefficient that cancels (weights 21 and -21 on two overlapping pooling windows) left a
 *   rounding residue (-4 beside terms near 2^55) whose lsb made the step 2^-62 of the value:
 *   ELIMIT, "wider than 64 bits", on a model whose values are small.
 *
 * - The reference takes a step from each coefficient rounded to float32, and a float32 can end
 *   in a long run of zeros (7 * 2^48 + 1864135 rounds to 7 * 2^48): the adder then truncated
 *   whole input steps (x / 0.3 on integers off by 8). Where a coefficient or the bias was
 *   rounded, the value is marked `inexact` (its adders may have dropped bits, so the form's
 *   cancellations no longer tell its grid, and neither does anything summed from it) and its
 *   step keeps at least float32's precision of its range: 2^(e - 23) for a range below 2^(e+1).
 *   Where every float32 coefficient is exact, steps are the reference's.
 */
#include "trace/trace_int.h"

#include <math.h>
#include <string.h>

static alk_affine *affine_alloc(alk_trace *t, uint32_t n) {
    alk_affine *a = alk__trace_alloc(t, sizeof(alk_affine) + (size_t)n * sizeof(alk_affine_term));
    if (a != NULL) {
        a->n = n;
        a->cached = false;
        a->bias = 0.0;
        a->step_floor = 0.0;
        a->inexact = false;
    }
    return a;
}

alk_affine *alk__affine_const(alk_trace *t, double bias) {
    alk_affine *a = affine_alloc(t, 0);
    if (a != NULL) {
        a->bias = bias;
    }
    return a;
}

alk_affine *alk__affine_atom(alk_trace *t, alk_qint qint) {
    if (qint.min == qint.max) {
        return alk__affine_const(t, qint.min);
    }
    alk_atom *atom = alk__trace_alloc(t, sizeof(alk_atom));
    alk_affine *a = affine_alloc(t, 1);
    if (atom == NULL || a == NULL) {
        return NULL;
    }
    atom->qint = qint;
    atom->mark = 0;
    a->terms[0] = (alk_affine_term){atom, 1.0};
    return a;
}

/* x is not a float32: pow2_lsb saw it rounded. */
static bool rounded_by_float32(double x) {
    return (double)(float)x != x;
}

alk_qint alk__affine_qint(alk_affine *a) {
    if (a->cached) {
        return a->qint;
    }
    double min = a->bias, max = a->bias;
    double step = pow2_lsb(a->bias);
    bool rounded = rounded_by_float32(a->bias);
    for (uint32_t j = 0; j < a->n; j++) {
        double c = a->terms[j].coeff;
        alk_qint q = a->terms[j].atom->qint;
        if (c > 0) {
            min += c * q.min;
            max += c * q.max;
        } else {
            min += c * q.max;
            max += c * q.min;
        }
        step = fmin(step, pow2_lsb(c * q.step));
        rounded = rounded || rounded_by_float32(c * q.step);
    }
    a->inexact = a->inexact || rounded;
    if (min == max) {
        step = pow2_lsb(min);
    } else {
        if (a->inexact) {
            step = fmin(step, ldexp(1.0, ilogb(fmax(fabs(min), fabs(max))) - 23));
        }
        step = fmax(step, a->step_floor);
    }
    a->qint = (alk_qint){min, max, step};
    a->cached = true;
    return a->qint;
}

alk_affine *alk__affine_add(alk_trace *t, alk_affine *a, alk_affine *b) {
    /* Merge into scratch first: entries of `a` keep their places, new atoms of `b` go last,
     * and entries whose coefficients cancel exactly are dropped. */
    size_t need = (size_t)a->n + b->n;
    if (need > t->scratch_cap) {
        size_t cap = t->scratch_cap ? t->scratch_cap : 64;
        while (cap < need) {
            cap *= 2;
        }
        alk_affine_term *mem = alk__trace_alloc(t, cap * sizeof(alk_affine_term));
        if (mem == NULL) {
            return NULL;
        }
        t->scratch = mem;
        t->scratch_cap = cap;
    }
    alk_affine_term *tmp = t->scratch;
    size_t n = a->n;
    memcpy(tmp, a->terms, n * sizeof(alk_affine_term));
    for (size_t j = 0; j < n; j++) {
        tmp[j].atom->mark = (uint32_t)j + 1;
    }
    for (uint32_t j = 0; j < b->n; j++) {
        alk_atom *atom = b->terms[j].atom;
        if (atom->mark != 0) {
            tmp[atom->mark - 1].coeff = b->terms[j].coeff + tmp[atom->mark - 1].coeff;
        } else {
            tmp[n++] = b->terms[j];
        }
    }
    for (size_t j = 0; j < a->n; j++) {
        a->terms[j].atom->mark = 0;
    }
    size_t kept = 0;
    for (size_t j = 0; j < n; j++) {
        if (tmp[j].coeff != 0.0) {
            kept++;
        }
    }
    alk_affine *r = affine_alloc(t, (uint32_t)kept);
    if (r == NULL) {
        return NULL;
    }
    size_t o = 0;
    for (size_t j = 0; j < n; j++) {
        if (tmp[j].coeff != 0.0) {
            r->terms[o++] = tmp[j];
        }
    }
    r->bias = a->bias + b->bias;
    r->step_floor = fmin(alk__affine_qint(a).step, alk__affine_qint(b).step);
    r->inexact = a->inexact || b->inexact;
    return r;
}

alk_affine *alk__affine_add_scalar(alk_trace *t, alk_affine *a, double c) {
    if (c == 0.0) {
        return a;
    }
    alk_affine *r = affine_alloc(t, a->n);
    if (r == NULL) {
        return NULL;
    }
    memcpy(r->terms, a->terms, (size_t)a->n * sizeof(alk_affine_term));
    r->bias = a->bias + c;
    r->step_floor = fmin(alk__affine_qint(a).step, pow2_lsb(c));
    r->inexact = a->inexact;
    return r;
}

alk_affine *alk__affine_scale(alk_trace *t, const alk_affine *a, double c) {
    uint32_t kept = 0;
    for (uint32_t j = 0; j < a->n; j++) {
        if (a->terms[j].coeff * c != 0.0) {
            kept++;
        }
    }
    alk_affine *r = affine_alloc(t, kept);
    if (r == NULL) {
        return NULL;
    }
    uint32_t o = 0;
    for (uint32_t j = 0; j < a->n; j++) {
        double v = a->terms[j].coeff * c;
        if (v != 0.0) {
            r->terms[o++] = (alk_affine_term){a->terms[j].atom, v};
        }
    }
    r->bias = a->bias * c;
    r->step_floor = a->step_floor * fabs(c);
    r->inexact = a->inexact;
    return r;
}
