/*
 * Emission of a stage (spec cmvm.md §6): the latency-ordered adder heap that sums each output's
 * remaining terms (shared by CMVM and SCM), and the stage helpers (cost, latency, conversion to
 * an alk_program).
 *
 * Design: the heap is keyed by the reference's tuple order (rounded latency, sign, left
 * alignment, interval, id, shift), so that ties break exactly as in the reference; every
 * comparison field keeps the reference's float32/int64 types.
 *
 * Thread rule: pure functions of their arguments.
 */
#include "cmvm/cmvm_int.h"
#include "core/alloc.h"

#include <math.h>
#include <string.h>

int alk__push_op(alk__op **ops, size_t *n_ops, size_t *cap_ops, alk__op op) {
    if (*n_ops == *cap_ops) {
        void *items = *ops;
        int rv = alk_grow(&items, cap_ops, sizeof(alk__op), *n_ops + 1);
        *ops = items;
        if (rv != ALK_OK) {
            return rv;
        }
    }
    (*ops)[(*n_ops)++] = op;
    return ALK_OK;
}

typedef struct rentry {
    float lat;
    int64_t sub;
    int64_t la;
    float qmin, qmax, qstep;
    int64_t id;
    int64_t shift;
} rentry;

/* Lexicographic tuple order of the reference's heap entries. */
static int rentry_cmp(const rentry *x, const rentry *y) {
#define CMP_FIELD(f)                                                                               \
    if (x->f < y->f)                                                                               \
        return -1;                                                                                 \
    if (y->f < x->f)                                                                               \
        return 1;
    CMP_FIELD(lat)
    CMP_FIELD(sub)
    CMP_FIELD(la)
    CMP_FIELD(qmin)
    CMP_FIELD(qmax)
    CMP_FIELD(qstep)
    CMP_FIELD(id)
    CMP_FIELD(shift)
#undef CMP_FIELD
    return 0;
}

static void rheap_push(rentry *h, size_t *len, rentry e) {
    size_t i = (*len)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (rentry_cmp(&e, &h[parent]) >= 0) {
            break;
        }
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static rentry rheap_pop(rentry *h, size_t *len) {
    rentry top = h[0];
    rentry last = h[--(*len)];
    size_t i = 0, n = *len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) {
            break;
        }
        if (c + 1 < n && rentry_cmp(&h[c + 1], &h[c]) < 0) {
            c++;
        }
        if (rentry_cmp(&h[c], &last) >= 0) {
            break;
        }
        h[i] = h[c];
        i = c;
    }
    if (n > 0) {
        h[i] = last;
    }
    return top;
}

/* trunc(log2(max(|max + step|, |min|))) + shift, with the reference's float log2. Beyond
 * float32's range the logarithm is infinite (the reference's int() of it raises): the key, which
 * only orders the terms, saturates past every finite one instead of overflowing int64. */
static int64_t left_align(alk__fq q, int64_t shift) {
    enum { BEYOND_FLOAT32 = 1024 };
    float a = fabsf(q.max + q.step), b = fabsf(q.min);
    float bits = log2f(a < b ? b : a);
    return (isfinite(bits) ? (int64_t)bits : bits > 0 ? BEYOND_FLOAT32 : -BEYOND_FLOAT32) + shift;
}

int alk__reduce_terms(alk__op **ops, size_t *n_ops, size_t *cap_ops, const alk__term *terms,
                      size_t n, int32_t *ret_id, bool *ret_neg, int32_t *ret_shift) {
    rentry *h = alk_malloc(n * sizeof(rentry));
    if (h == NULL) {
        return ALK_ENOMEM;
    }
    size_t len = 0;
    for (size_t k = 0; k < n; k++) {
        const alk__op *op = &(*ops)[terms[k].id];
        rentry e = {
            .lat = roundf(op->latency),
            .sub = terms[k].neg ? 1 : 0,
            .la = left_align(op->qint, terms[k].shift),
            .qmin = op->qint.min,
            .qmax = op->qint.max,
            .qstep = op->qint.step,
            .id = terms[k].id,
            .shift = terms[k].shift,
        };
        rheap_push(h, &len, e);
    }
    int rv = ALK_OK;
    while (len > 1) {
        rentry e0 = rheap_pop(h, &len);
        rentry e1 = rheap_pop(h, &len);
        alk__fq q0 = {e0.qmin, e0.qmax, e0.qstep}, q1 = {e1.qmin, e1.qmax, e1.qstep};
        alk__op op;
        int64_t result_shift;
        float dcost, dlat, lat = e0.lat > e1.lat ? e0.lat : e1.lat;
        if (e0.sub) {
            int64_t s = e0.shift - e1.shift;
            /* [quirk] both negative: the interval of the negated sum (spec §6). */
            alk__fq q = alk__qint_add(q1, q0, s, e1.sub != 0, true);
            alk__cost_add(q1, q0, s, &dcost, &dlat);
            op = (alk__op){(int32_t)e1.id, (int32_t)e0.id, (int32_t)(1 ^ e1.sub), (int32_t)s, q,
                           lat + dlat,     dcost};
            result_shift = e1.shift;
        } else {
            int64_t s = e1.shift - e0.shift;
            /* [quirk] the subtraction flag of the second operand is not passed (spec §6). */
            alk__fq q = alk__qint_add(q0, q1, s, false, false);
            alk__cost_add(q0, q1, s, &dcost, &dlat);
            op = (alk__op){(int32_t)e0.id, (int32_t)e1.id, (int32_t)e1.sub, (int32_t)s, q,
                           lat + dlat,     dcost};
            result_shift = e0.shift;
        }
        int64_t id = (int64_t)*n_ops;
        rv = alk__push_op(ops, n_ops, cap_ops, op);
        if (rv != ALK_OK) {
            break;
        }
        rentry e = {
            .lat = roundf(op.latency),
            .sub = e0.sub & e1.sub,
            .la = left_align(op.qint, result_shift),
            .qmin = op.qint.min,
            .qmax = op.qint.max,
            .qstep = op.qint.step,
            .id = id,
            .shift = result_shift,
        };
        rheap_push(h, &len, e);
    }
    if (rv == ALK_OK) {
        *ret_id = (int32_t)h[0].id;
        *ret_neg = h[0].sub != 0;
        *ret_shift = (int32_t)h[0].shift;
    }
    alk_free(h);
    return rv;
}

void alk__stage_fini(alk__stage *stage) {
    if (stage == NULL) {
        return;
    }
    alk_free(stage->inp_shifts);
    alk_free(stage->out_idxs);
    alk_free(stage->out_shifts);
    alk_free(stage->out_negs);
    alk_free(stage->ops);
    memset(stage, 0, sizeof(*stage));
}

int alk__stage_copy(const alk__stage *src, alk__stage *ret_copy) {
    alk__stage c = {
        .n_in = src->n_in,
        .n_out = src->n_out,
        .n_ops = src->n_ops,
        .cap_ops = src->n_ops + 1,
        .work = src->work,
        .pairs = src->pairs,
        .inp_shifts = alk_malloc(((size_t)src->n_in + 1) * sizeof(int32_t)),
        .out_idxs = alk_malloc(((size_t)src->n_out + 1) * sizeof(int32_t)),
        .out_shifts = alk_malloc(((size_t)src->n_out + 1) * sizeof(int32_t)),
        .out_negs = alk_malloc(((size_t)src->n_out + 1) * sizeof(bool)),
        .ops = alk_malloc((src->n_ops + 1) * sizeof(alk__op)),
    };
    if (c.inp_shifts == NULL || c.out_idxs == NULL || c.out_shifts == NULL || c.out_negs == NULL ||
        c.ops == NULL) {
        alk__stage_fini(&c);
        return ALK_ENOMEM;
    }
    memcpy(c.inp_shifts, src->inp_shifts, src->n_in * sizeof(int32_t));
    memcpy(c.out_idxs, src->out_idxs, src->n_out * sizeof(int32_t));
    memcpy(c.out_shifts, src->out_shifts, src->n_out * sizeof(int32_t));
    memcpy(c.out_negs, src->out_negs, src->n_out * sizeof(bool));
    memcpy(c.ops, src->ops, src->n_ops * sizeof(alk__op));
    *ret_copy = c;
    return ALK_OK;
}

float alk__stage_max_latency(const alk__stage *stage) {
    float best = 0.0f;
    for (uint32_t o = 0; o < stage->n_out; o++) {
        int32_t idx = stage->out_idxs[o];
        float lat = idx >= 0 ? stage->ops[idx].latency : 0.0f;
        best = lat > best ? lat : best;
    }
    return best;
}

float alk__stage_cost(const alk__stage *stage, float start) {
    float cost = start;
    for (size_t i = 0; i < stage->n_ops; i++) {
        cost += stage->ops[i].cost;
    }
    return cost;
}

int alk__stage_to_program(const alk__stage *stage, alk_program **ret_program) {
    alk_program *p = NULL;
    int rv = alk_program_new(stage->n_in, stage->n_out, &p);
    if (rv != ALK_OK) {
        return rv;
    }
    p->carry_size = -1;
    p->adder_size = -1;
    memcpy(p->inp_shifts, stage->inp_shifts, stage->n_in * sizeof(int32_t));
    memcpy(p->out_idxs, stage->out_idxs, stage->n_out * sizeof(int32_t));
    memcpy(p->out_shifts, stage->out_shifts, stage->n_out * sizeof(int32_t));
    memcpy(p->out_negs, stage->out_negs, stage->n_out * sizeof(bool));
    for (size_t i = 0; i < stage->n_ops; i++) {
        const alk__op *op = &stage->ops[i];
        alk_qint q = {op->qint.min, op->qint.max, op->qint.step};
        if (op->opcode == -1) {
            int64_t data = op->id0;
            (void)alk_program_add_op(p, -1, NULL, 0, &data, 1, q, op->latency, op->cost);
        } else {
            uint32_t addr[2] = {(uint32_t)op->id0, (uint32_t)op->id1};
            int64_t data = op->data;
            (void)alk_program_add_op(p, op->opcode, addr, 2, &data, 1, q, op->latency, op->cost);
        }
    }
    rv = alk_program_error(p);
    if (rv != ALK_OK) {
        alk_program_free(p);
        return rv;
    }
    *ret_program = p;
    return ALK_OK;
}

int alk__scm_stage_to_program(alk__op *ops, size_t n_ops, int32_t out_id, int32_t out_shift,
                              bool out_neg, alk_program **ret_program) {
    alk__stage stage = {
        .n_in = 1,
        .n_out = 1,
        .inp_shifts = (int32_t[]){0},
        .out_idxs = (int32_t[]){out_id},
        .out_shifts = (int32_t[]){out_shift},
        .out_negs = (bool[]){out_neg},
        .ops = ops,
        .n_ops = n_ops,
    };
    return alk__stage_to_program(&stage, ret_program);
}
