/*
 * Symbolic replay of a program (see replay.h). The function exec_op follows the reference's
 * CombLogic.exec_op branch by branch, including its mix of numbers and variables: a constant op
 * yields a number, arithmetic between numbers stays numeric (Python floats), and numbers meeting
 * variables go through the same dunder methods Python would pick (`num - var` is
 * `(-var) + num`, `num & var` is `var & num`, and so on).
 *
 * Memory: the slot array is allocated per call with alk_malloc and freed before returning;
 * variables live in the trace's arena.
 */
#include "trace/replay.h"
#include "core/alloc.h"
#include "trace/trace_int.h"

#include <string.h>

static alk__rval num(double x) {
    return (alk__rval){NULL, x};
}
static alk__rval var(alk_fvar *v) {
    return (alk__rval){v, 0};
}

static alk_hwconf hw_of(alk_trace *t, alk__rval a) {
    return a.var != NULL ? a.var->node->hwconf : t->hwconf;
}

static alk__rval r_neg(alk_trace *t, alk__rval a) {
    return a.var ? var(alk_fv_neg(t, a.var)) : num(-a.num);
}

static alk__rval r_add(alk_trace *t, alk__rval a, alk__rval b) {
    if (a.var && b.var) {
        return var(alk_fv_add(t, a.var, b.var));
    }
    if (a.var) {
        return var(alk_fv_add_const(t, a.var, b.num));
    }
    if (b.var) {
        return var(alk_fv_add_const(t, b.var, a.num));
    }
    return num(a.num + b.num);
}

static alk__rval r_sub(alk_trace *t, alk__rval a, alk__rval b) {
    if (a.var && b.var) {
        return var(alk_fv_sub(t, a.var, b.var));
    }
    if (a.var) {
        return var(alk_fv_add_const(t, a.var, -b.num));
    }
    if (b.var) {
        return var(alk_fv_rsub_const(t, b.var, a.num));
    }
    return num(a.num - b.num);
}

static alk__rval r_mul(alk_trace *t, alk__rval a, alk__rval b) {
    if (a.var && b.var) {
        return var(alk_fv_mul(t, a.var, b.var));
    }
    if (a.var) {
        return var(alk_fv_mul_const(t, a.var, b.num));
    }
    if (b.var) {
        return var(alk_fv_mul_const(t, b.var, a.num));
    }
    return num(a.num * b.num);
}

static alk_fvar *as_var(alk_trace *t, alk__rval a, alk_hwconf hw) {
    return a.var ? a.var : alk__fv_const_hw(t, a.num, hw);
}

static double floor0(double x) {
    return floor(x) + 0.0;
}

/* Python `_quantize` on a number: TRN and WRAP to (k, i, f). */
static double quantize_number(double v, int k, int i, int f) {
    int b = k + i + f;
    double bias = ldexp(1.0, b - 1) * k;
    double eps = ldexp(1.0, -f);
    return eps * (py_fmod(floor(v / eps) + bias, ldexp(1.0, b)) - bias);
}

static double interpret_as(double x, int k, int i, int f) {
    int b = k + i + f;
    double bias = ldexp(1.0, b - 1) * k;
    double eps = ldexp(1.0, -f);
    return eps * (py_fmod(floor(x + bias), ldexp(1.0, b)) - bias);
}

static alk_kif kif_of(alk_qint q) {
    return alk_kif_of(q);
}

/*
 * An MSB mux tests the top bit of its condition in the condition's format: the sign of a signed
 * one, "x >= 2^(i-1)" of an unsigned one (spec §4.2). mux_condition is that test on a number in
 * the format `qk` of the program being replayed.
 */
static int mux_condition(alk_qint qk, double x) {
    return qk.min < 0 ? x < 0 : x >= ldexp(1.0, kif_of(qk).i - 1);
}

/*
 * Beyond the reference: replaying a mux on a variable must keep the test of the program being
 * replayed, whose condition had the format `qk`. The reference calls msb_mux on the new variable,
 * which tests the top bit of the *new* interval: when the retrace pass tightens a signed
 * condition to a non-negative one (max(v, -8) of a v known only after CSE to be a square), the
 * test silently became "v + 8 >= 128" and picked -8 for every large v. The test's outcome where
 * the new interval decides it: 1 set, 0 clear, -1 depends on the value.
 */
static int msb_known(alk_qint qk, alk_fvar *k) {
    double low = alk_fv_low(k), high = alk_fv_high(k);
    if (mux_condition(qk, low) == mux_condition(qk, high)) {
        return mux_condition(qk, low); /* the test is monotonic in x */
    }
    return -1;
}

/* The mux of a condition the interval does not decide, testing what `qk` tested: the new
 * variable's own top bit where it means the same, else its sign relative to the threshold. */
static alk_fvar *mux_as_before(alk_trace *t, alk_qint qk, alk_fvar *k, alk__rval v0, alk__rval v1,
                               const alk_qint *qint) {
    alk_hwconf hw = k->node->hwconf;
    alk_fvar *a = as_var(t, v0, hw), *b = as_var(t, v1, hw);
    bool signed_now = alk_fv_low(k) < 0;
    if (qk.min < 0 || (!signed_now && kif_of(alk__fv_qint(k)).i == kif_of(qk).i)) {
        return alk_fv_mux(t, k, a, b, qint);
    }
    /* k >= 2^(i-1) of the old unsigned format: k - 2^(i-1) is not negative. */
    alk_fvar *shifted = alk_fv_add_const(t, k, -ldexp(1.0, kif_of(qk).i - 1));
    return alk_fv_mux(t, shifted, b, a, qint);
}

int alk__exec_op(alk_trace *t, const alk__comb *c, size_t index, const alk__rval *buf,
                 const alk__rval *in, alk__rval *ret) {
    const alk__cop *op = &c->ops[index];
    const uint32_t *a = op->addr;
    switch (op->opcode) {
    case -2:
        *ret = r_neg(t, buf[a[0]]);
        break;
    case -1:
        if (in == NULL || op->data[0] < 0 || op->data[0] >= c->n_in) {
            return alk__trace_set_error(t, ALK_EINVAL, "op %zu reads a missing input", index);
        }
        *ret = in[op->data[0]];
        break;
    case 0:
    case 1: {
        alk__rval v1 = r_mul(t, num(ldexp(1.0, (int)op->data[0])), buf[a[1]]);
        *ret = op->opcode == 0 ? r_add(t, buf[a[0]], v1) : r_sub(t, buf[a[0]], v1);
        break;
    }
    case 2: {
        alk_kif kif = kif_of(op->qint);
        alk__rval v = buf[a[0]];
        if (v.var) {
            *ret = var(alk_fv_relu(t, v.var, kif.i, kif.f, ALK_TRN));
        } else {
            double x = v.num > 0 ? v.num : 0;
            double sf = ldexp(1.0, kif.f);
            x = floor0(x * sf) / sf;
            *ret = num(py_fmod(x, ldexp(1.0, kif.i)));
        }
        break;
    }
    case 3: {
        alk_kif kif = kif_of(op->qint);
        alk__rval v = r_mul(t, buf[a[0]], num(ldexp(1.0, (int)op->data[0])));
        if (v.var) {
            *ret = var(alk_fv_quantize(t, v.var, kif.k, kif.i, kif.f, ALK_WRAP, ALK_TRN));
        } else {
            *ret = num(quantize_number(v.num, kif.k, kif.i, kif.f));
        }
        break;
    }
    case 4:
        *ret = r_add(t, buf[a[0]], num(ldexp((double)op->data[0], (int)-op->data[1])));
        break;
    case 5:
        *ret = num((double)op->data[0] * op->qint.step);
        break;
    case 6: {
        alk__rval k = buf[a[2]], v0 = buf[a[0]];
        alk__rval v1 = r_mul(t, buf[a[1]], num(ldexp(1.0, (int)op->data[0])));
        alk_qint qk = c->ops[a[2]].qint;
        int cond = k.var ? msb_known(qk, k.var) : mux_condition(qk, k.num);
        if (cond < 0) {
            *ret = var(mux_as_before(t, qk, k.var, v0, v1, &op->qint));
            break;
        }
        alk__rval r = cond ? v0 : v1;
        alk_kif kif = kif_of(op->qint);
        if (r.var) {
            *ret = var(alk_fv_quantize(t, r.var, kif.k, kif.i, kif.f, ALK_WRAP, ALK_TRN));
        } else {
            *ret = num(quantize_number(r.num, kif.k, kif.i, kif.f));
        }
        break;
    }
    case 7:
        *ret = r_mul(t, buf[a[0]], buf[a[1]]);
        break;
    case 8: {
        if (op->data[0] < 0 || (size_t)op->data[0] >= c->n_tables) {
            return alk__trace_set_error(t, ALK_EINVAL, "op %zu uses a missing table", index);
        }
        alk_ftable *table = c->tables[op->data[0]];
        alk_qint qin = c->ops[a[0]].qint;
        alk__rval v = buf[a[0]];
        if (v.var) {
            *ret = var(alk_fv_lookup(t, v.var, table, &qin));
        } else {
            double x;
            if (alk__ftable_lookup_number(t, table, v.num, qin, &x) != ALK_OK) {
                return t->error;
            }
            *ret = num(x);
        }
        break;
    }
    case 9: {
        alk_qint from = c->ops[a[0]].qint, to = op->qint;
        alk__rval v = buf[a[0]];
        if (v.var != NULL && alk_fv_low(v.var) == alk_fv_high(v.var)) {
            /* Beyond the reference: NOT and ALL read the operand in the program's format; a
             * variable the replay has made a constant has its own value's format (0 has no
             * bits, and its NOT was 0): computed as the number it is. */
            v = num(alk_fv_low(v.var));
        }
        alk_bit_unop type = (alk_bit_unop)op->data[0];
        if (v.var) {
            if (type == ALK_BIT_NOT) {
                int n = (int)py_round(log2(to.step / from.step));
                *ret = var(alk_fv_shift(t, alk_fv_not(t, v.var), n));
            } else {
                *ret = var(type == ALK_BIT_ANY ? alk_fv_any(t, v.var) : alk_fv_all(t, v.var));
            }
        } else {
            alk_kif kf = (from.min != 0 || from.max != 0) ? kif_of(from) : (alk_kif){0, 1, 0};
            int64_t x = (int64_t)py_round(v.num / from.step);
            if (type == ALK_BIT_NOT) {
                alk_kif kt = kif_of(to);
                int b = kf.k + kf.i + kf.f;
                uint64_t mask = b >= 64 ? ~0ULL : ((1ULL << b) - 1);
                *ret = num(interpret_as((double)((uint64_t)~x & mask), kt.k, kt.i, kt.f));
            } else if (type == ALK_BIT_ANY) {
                *ret = num(x != 0);
            } else {
                *ret = num(from.min >= 0 ? (double)x == from.max : x == -1);
            }
        }
        break;
    }
    case 10: {
        double s = ldexp(1.0, (int)op->data[0]);
        alk__rval v0 = buf[a[0]];
        alk__rval v1 = r_mul(t, buf[a[1]], num(s));
        alk_bit_binop type = (alk_bit_binop)op->data[1];
        if (v0.var || v1.var) {
            alk_fvar *x = v0.var ? v0.var : v1.var;
            alk_fvar *y = v0.var ? as_var(t, v1, hw_of(t, v0)) : as_var(t, v0, hw_of(t, v1));
            *ret = var(type == ALK_BIT_AND  ? alk_fv_and(t, x, y)
                       : type == ALK_BIT_OR ? alk_fv_or(t, x, y)
                                            : alk_fv_xor(t, x, y));
        } else {
            alk_qint q0 = c->ops[a[0]].qint, q1 = c->ops[a[1]].qint;
            double step = q0.step < q1.step * s ? q0.step : q1.step * s;
            int64_t x = (int64_t)py_round(v0.num / step), y = (int64_t)py_round(v1.num / step);
            int64_t r = type == ALK_BIT_AND ? (x & y) : type == ALK_BIT_OR ? (x | y) : (x ^ y);
            *ret = num((double)r * step);
        }
        break;
    }
    default:
        return alk__trace_set_error(t, ALK_EINVAL, "op %zu: opcode %d cannot be replayed", index,
                                    op->opcode);
    }
    if (ret->var == NULL && t->error != ALK_OK) {
        return t->error;
    }
    return ALK_OK;
}

int alk__comb_replay(alk_trace *t, const alk__comb *c, const alk__rval *in, alk__rval *out) {
    if (t->error != ALK_OK) {
        return t->error;
    }
    alk__rval *inputs = alk_malloc((c->n_in ? c->n_in : 1) * sizeof(alk__rval));
    alk__rval *buf = alk_malloc((c->n_ops ? c->n_ops : 1) * sizeof(alk__rval));
    int rv = ALK_OK;
    if (inputs == NULL || buf == NULL) {
        rv = alk__trace_set_error(t, ALK_ENOMEM, "out of memory while replaying a program");
        goto fail;
    }
    for (uint32_t j = 0; j < c->n_in; j++) {
        inputs[j] = r_mul(t, in[j], num(ldexp(1.0, c->inp_shifts[j])));
    }
    for (size_t j = 0; j < c->n_ops; j++) {
        rv = alk__exec_op(t, c, j, buf, inputs, &buf[j]);
        if (rv != ALK_OK) {
            goto fail;
        }
    }
    for (uint32_t j = 0; j < c->n_out; j++) {
        int32_t idx = c->out_idxs[j];
        alk__rval v = idx >= 0 ? buf[idx] : num(0);
        v = r_mul(t, v, num(ldexp(1.0, c->out_shifts[j])));
        v = r_mul(t, v, num(c->out_negs[j] ? -1.0 : 1.0));
        out[j] = v;
    }
    rv = t->error;
fail:
    alk_free(inputs);
    alk_free(buf);
    return rv;
}

int alk__replay_scm(alk_trace *t, const alk_program *program, alk_fvar *x, alk_fvar **ret) {
    alk__comb *c = NULL;
    alk_diag diag = {{0}};
    int rv = alk__comb_from_program(program, &c, &diag);
    if (rv != ALK_OK) {
        return alk__trace_set_error(t, rv, "SCM program: %s", diag.message);
    }
    if (c->n_in != 1 || c->n_out != 1) {
        alk__comb_free(c);
        return alk__trace_set_error(t, ALK_EINTERNAL, "SCM program has shape (%u, %u)", c->n_in,
                                    c->n_out);
    }
    alk__rval in = var(x), out = {0};
    rv = alk__comb_replay(t, c, &in, &out);
    alk__comb_free(c);
    if (rv == ALK_OK) {
        *ret = as_var(t, out, x->node->hwconf);
    }
    return rv;
}
