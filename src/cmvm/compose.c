/*
 * Composition of a CMVM solution's two stages into one runnable program (alk_cmvm_compose).
 *
 * Design: the solver's stages carry the reference's intervals, which steer its heuristics but
 * are not exact (spec §5.1, §6, §7: unscaled inputs, subtractions with an addition's interval,
 * stage-2 inputs without the stage-1 output shift and sign). The reference never runs them as
 * they are: its tracer replays them on symbolic inputs (spec §8.2). This file does the same
 * replay without a tracer: every value of the two stages is tracked as
 * (slot, exponent, negated) meaning (-1)^negated * 2^exponent * slot, so input shifts, output
 * shifts and negations fold into the shift and opcode of the next adder and never cost an op.
 * Every emitted adder gets the exact interval of its own value; costs and latencies follow the
 * surrogate model (spec §10.2) with carry_size -1.
 *
 * Thread rule: pure function of its arguments.
 */
#include "cmvm/cmvm.h"
#include "cmvm/cmvm_int.h"
#include "core/alloc.h"

#include <math.h>
#include <string.h>

typedef struct value {
    int64_t slot; /* -1: the constant 0 */
    int32_t exponent;
    bool neg;
} value;

/* Exact interval of a + (-1)^sub * b * 2^shift. */
static alk_qint exact_add(alk_qint a, alk_qint b, int32_t shift, bool sub) {
    double bmin = ldexp(b.min, shift), bmax = ldexp(b.max, shift), bstep = ldexp(b.step, shift);
    alk_qint r;
    if (sub) {
        r.min = a.min - bmax;
        r.max = a.max - bmin;
    } else {
        r.min = a.min + bmin;
        r.max = a.max + bmax;
    }
    r.step = bstep < a.step ? bstep : a.step;
    return r;
}

static alk__fq to_fq(alk_qint q) {
    return (alk__fq){(float)q.min, (float)q.max, (float)q.step};
}

/* Emits a + b * 2^shift (sub: minus) over virtual values; writes the resulting value. */
static void combine(alk_program *out, value a, value b, int32_t shift, bool sub, value *ret_value) {
    if (b.slot < 0) {
        *ret_value = a;
        return;
    }
    if (a.slot < 0) {
        *ret_value = (value){b.slot, b.exponent + shift, b.neg != sub};
        return;
    }
    bool op_sub = a.neg != (b.neg != sub);
    int32_t rel = b.exponent + shift - a.exponent;
    const alk_alir_op *pa = &out->ops[a.slot], *pb = &out->ops[b.slot];
    alk_qint q = exact_add(pa->qint, pb->qint, rel, op_sub);
    double cost, latency;
    alk__surrogate_add(to_fq(pa->qint), to_fq(pb->qint), rel, op_sub, -1, &cost, &latency);
    double start = pa->latency > pb->latency ? pa->latency : pb->latency;
    uint32_t addr[2] = {(uint32_t)a.slot, (uint32_t)b.slot};
    int64_t data = rel;
    int64_t slot = alk_program_add_op(out, op_sub ? ALK_OP_SUB : ALK_OP_ADD, addr, 2, &data, 1, q,
                                      start + latency, cost);
    *ret_value = (value){slot, a.exponent, a.neg};
}

/* Replays the adders of `stage` on `inputs` (one value per stage input); fills `outputs`. */
static int replay(alk_program *out, const alk_program *stage, const value *inputs, value *scratch,
                  value *outputs) {
    for (size_t i = 0; i < stage->n_ops; i++) {
        const alk_alir_op *op = &stage->ops[i];
        const uint32_t *addr = alk_alir_op_addr(stage, op);
        const int64_t *data = alk_alir_op_data(stage, op);
        if (op->opcode == ALK_OP_READ) {
            uint32_t input = (uint32_t)data[0];
            value v = inputs[input];
            if (v.slot >= 0) {
                v.exponent += stage->inp_shifts[input];
            }
            scratch[i] = v;
        } else if (op->opcode == ALK_OP_ADD || op->opcode == ALK_OP_SUB) {
            if (addr[0] >= i || addr[1] >= i) {
                return ALK_EINVAL;
            }
            combine(out, scratch[addr[0]], scratch[addr[1]], (int32_t)data[0],
                    op->opcode == ALK_OP_SUB, &scratch[i]);
        } else {
            return ALK_EINVAL;
        }
    }
    for (uint32_t j = 0; j < stage->n_out; j++) {
        int32_t idx = stage->out_idxs[j];
        if (idx < 0) {
            outputs[j] = (value){-1, 0, false};
            continue;
        }
        if ((size_t)idx >= stage->n_ops) {
            return ALK_EINVAL;
        }
        value v = scratch[idx];
        if (v.slot >= 0) {
            v.exponent += stage->out_shifts[j];
            v.neg = v.neg != stage->out_negs[j];
        }
        outputs[j] = v;
    }
    return alk_program_error(out);
}

int alk_cmvm_compose(const alk_program *stage0, const alk_program *stage1,
                     const alk_qint *intervals, alk_program **ret_program, alk_diag *diag) {
    if (stage1 != NULL && stage0->n_out != stage1->n_in) {
        return alk_diag_set(diag, ALK_EINVAL, "compose: stage 0 has %u outputs, stage 1 %u inputs",
                            stage0->n_out, stage1->n_in);
    }
    uint32_t n_in = stage0->n_in, mid = stage0->n_out;
    uint32_t n_out = stage1 != NULL ? stage1->n_out : mid;
    alk_program *out = NULL;
    size_t n1 = stage1 != NULL ? stage1->n_ops : 0;
    size_t most_ops = stage0->n_ops > n1 ? stage0->n_ops : n1;
    value *inputs = alk_malloc(((size_t)n_in + 1) * sizeof(value));
    value *middle = alk_malloc(((size_t)mid + 1) * sizeof(value));
    value *final = alk_malloc(((size_t)n_out + 1) * sizeof(value));
    value *scratch = alk_malloc((most_ops + 1) * sizeof(value));
    int rv = ALK_ENOMEM;
    if (inputs == NULL || middle == NULL || final == NULL || scratch == NULL) {
        goto done;
    }
    rv = alk_program_new(n_in, n_out, &out);
    if (rv != ALK_OK) {
        goto done;
    }
    out->carry_size = -1;
    out->adder_size = -1;
    for (uint32_t i = 0; i < n_in; i++) {
        alk_qint q = intervals != NULL ? intervals[i] : (alk_qint){-128.0, 127.0, 1.0};
        int64_t data = i;
        int64_t slot = alk_program_add_op(out, ALK_OP_READ, NULL, 0, &data, 1, q, 0.0, 0.0);
        inputs[i] = (value){slot, 0, false};
    }
    rv = replay(out, stage0, inputs, scratch, middle);
    if (rv == ALK_OK && stage1 != NULL) {
        rv = replay(out, stage1, middle, scratch, final);
    } else if (rv == ALK_OK) {
        memcpy(final, middle, (size_t)mid * sizeof(value));
    }
    if (rv != ALK_OK) {
        (void)alk_diag_set(diag, rv, "compose: %s",
                           rv == ALK_EINVAL ? "a stage is not a CMVM stage" : alk_strerror(rv));
        goto done;
    }
    for (uint32_t j = 0; j < n_out; j++) {
        out->out_idxs[j] = (int32_t) final[j].slot;
        out->out_shifts[j] = final[j].slot >= 0 ? final[j].exponent : 0;
        out->out_negs[j] = final[j].slot >= 0 && final[j].neg;
    }
    *ret_program = out;
    out = NULL;
done:
    alk_program_free(out);
    alk_free(inputs);
    alk_free(middle);
    alk_free(final);
    alk_free(scratch);
    return rv;
}
