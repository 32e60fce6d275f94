/*
 * The tracer (spec trace-alir.md §3.1–3.6): gathers the nodes between inputs and outputs,
 * orders them, and emits one ALIR op per node (plus a negation op right after every node that
 * is read through a negative factor by an op needing the true sign).
 *
 * Design. Node identity is the node pointer; per-trace bookkeeping lives in scratch fields of
 * the nodes, valid only when their generation stamp equals the context's current generation
 * (so no hash maps are needed and nothing has to be cleared between traces). Gathering is the
 * reference's recursive post-order walk done with an explicit stack, so deep graphs cannot
 * overflow the C stack. The ordering key is the reference's double `latency * N + index`
 * (quirk §3.2), sorted stably.
 *
 * Memory: the gathered list and the stack are alk_malloc'd and freed before returning; the
 * program is the caller's.
 *
 * Thread rule: the thread that owns the trace context.
 */
#include "trace/emit.h"
#include "trace/passes.h"
#include "alir/kif.h"
#include "core/alloc.h"
#include "trace/trace_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct frame {
    alk_fvar *v;
    uint32_t next;
} frame;

typedef struct keyed {
    double key;
    size_t index;
} keyed;

static int keyed_cmp(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    if (a->key != b->key) {
        return a->key < b->key ? -1 : 1;
    }
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Appends v to the list (grown as needed). */
static int list_push(alk_fvar ***list, size_t *len, size_t *cap, alk_fvar *v) {
    if (*len == *cap) {
        void *items = *list;
        int rv = alk_grow(&items, cap, sizeof(alk_fvar *), *len + 1);
        if (rv != ALK_OK) {
            return rv;
        }
        *list = items;
    }
    (*list)[(*len)++] = v;
    return ALK_OK;
}

/* The depth-first post-order walk from `root` (spec §3.2 step 2). */
static int gather(alk_trace *t, alk_fvar *root, alk_fvar ***list, size_t *len, size_t *cap,
                  frame **stack, size_t *stack_cap) {
    uint64_t gen = t->generation;
    if (root->node->mark == gen) {
        return ALK_OK;
    }
    size_t depth = 0;
    if (*stack_cap == 0) {
        void *items = *stack;
        int rv = alk_grow(&items, stack_cap, sizeof(frame), 64);
        if (rv != ALK_OK) {
            return rv;
        }
        *stack = items;
    }
    (*stack)[depth++] = (frame){root, 0};
    while (depth > 0) {
        frame *top = &(*stack)[depth - 1];
        alk_fnode *node = top->v->node;
        if (top->next < node->n_from) {
            alk_fvar *child = node->from[top->next++];
            if (child->node->mark != gen) {
                if (depth == *stack_cap) {
                    void *items = *stack;
                    int rv = alk_grow(&items, stack_cap, sizeof(frame), depth + 1);
                    if (rv != ALK_OK) {
                        return rv;
                    }
                    *stack = items;
                }
                (*stack)[depth++] = (frame){child, 0};
            }
            continue;
        }
        depth--;
        if (node->mark != gen) {
            node->mark = gen;
            int rv = list_push(list, len, cap, top->v);
            if (rv != ALK_OK) {
                return rv;
            }
        }
    }
    return ALK_OK;
}

static alk__cop make_op(int32_t opcode, alk_qint qint, double latency) {
    alk__cop op;
    memset(&op, 0, sizeof(op));
    op.opcode = opcode;
    op.qint = qint;
    op.latency = latency;
    op.cost = 0.0;
    return op;
}

static int64_t log2_int(double x) {
    return (int64_t)trunc(log2(fabs(x)));
}

/* ref(r): the node, or its negation op when read through a negative factor. */
static uint32_t ref_index(const alk_fvar *r) {
    return (uint32_t)(r->node->index + (r->factor < 0));
}

static int table_index(alk__comb *comb, alk_ftable *table, int64_t *ret) {
    for (size_t j = 0; j < comb->n_tables; j++) {
        if (strcmp(comb->tables[j]->hash, table->hash) == 0) {
            *ret = (int64_t)j;
            return ALK_OK;
        }
    }
    int rv = alk__comb_push_table(comb, table);
    if (rv == ALK_OK) {
        *ret = (int64_t)comb->n_tables - 1;
    }
    return rv;
}

/* Emits the op of variable v (spec §3.4). */
static int emit_op(alk_trace *t, alk__comb *comb, alk_fvar *v, alk__cop *op) {
    alk_fnode *n = v->node;
    alk_qint q = alk__fv_unscaled_qint(t, v);
    *op = make_op(0, q, n->latency);
    alk_fvar *const *from = n->from;
    switch (n->opr) {
    case ALK_FOPR_VADD:
        op->opcode = from[1]->factor < 0 ? 1 : 0;
        op->n_addr = 2;
        op->addr[0] = (uint32_t)from[0]->node->index;
        op->addr[1] = (uint32_t)from[1]->node->index;
        op->n_data = 1;
        op->data[0] = log2_int(from[1]->factor / from[0]->factor);
        break;
    case ALK_FOPR_CADD: {
        op->opcode = 4;
        op->n_addr = 1;
        op->addr[0] = (uint32_t)from[0]->node->index;
        op->n_data = 2;
        op->data[0] = (int32_t)(uint32_t)((uint64_t)n->data & 0xFFFFFFFFu);
        op->data[1] = (int32_t)(uint32_t)(((uint64_t)n->data >> 32) & 0xFFFFFFFFu);
        break;
    }
    case ALK_FOPR_WRAP:
        op->opcode = 3;
        op->n_addr = 1;
        op->addr[0] = ref_index(from[0]);
        op->n_data = 1;
        op->data[0] = log2_int(from[0]->factor);
        break;
    case ALK_FOPR_RELU:
        op->opcode = 2;
        op->n_addr = 1;
        op->addr[0] = ref_index(from[0]);
        break;
    case ALK_FOPR_CONST: {
        double c = q.min;
        int f = -lsb_i8(c);
        double step = ldexp(1.0, -f);
        op->opcode = 5;
        op->qint = (alk_qint){c, c, step};
        op->n_data = 1;
        op->data[0] = (int64_t)trunc(c / step);
        break;
    }
    case ALK_FOPR_MUX:
        op->opcode = 6;
        op->n_addr = 3;
        op->addr[0] = ref_index(from[1]);
        op->addr[1] = ref_index(from[2]);
        op->addr[2] = ref_index(from[0]);
        op->n_data = 1;
        op->data[0] = log2_int(from[2]->factor / from[1]->factor);
        break;
    case ALK_FOPR_VMUL:
        op->opcode = 7;
        op->n_addr = 2;
        op->addr[0] = (uint32_t)from[0]->node->index;
        op->addr[1] = (uint32_t)from[1]->node->index;
        break;
    case ALK_FOPR_LOOKUP: {
        op->opcode = 8;
        op->n_addr = 1;
        op->addr[0] = (uint32_t)from[0]->node->index;
        op->n_data = 1;
        int rv = table_index(comb, n->table, &op->data[0]);
        if (rv != ALK_OK) {
            return rv;
        }
        break;
    }
    case ALK_FOPR_BIT_UNARY:
        op->opcode = 9;
        op->n_addr = 1;
        op->addr[0] = ref_index(from[0]);
        op->n_data = 1;
        op->data[0] = n->data;
        break;
    case ALK_FOPR_BIT_BINARY:
        op->opcode = 10;
        op->n_addr = 2;
        op->addr[0] = ref_index(from[0]);
        op->addr[1] = ref_index(from[1]);
        op->n_data = 2;
        op->data[0] = log2_int(from[1]->factor / from[0]->factor);
        op->data[1] = n->data;
        break;
    case ALK_FOPR_NEW:
        return alk__trace_set_error(t, ALK_EINVAL,
                                    "an output depends on a variable that is not among the "
                                    "inputs given to the tracer");
    }
    for (uint8_t j = 0; j < op->n_addr; j++) {
        if (op->addr[j] >= comb->n_ops) {
            return alk__trace_set_error(t, ALK_EINTERNAL, "tracer ordering violated causality");
        }
    }
    return ALK_OK;
}

int alk__trace_comb(alk_trace *t, alk_fvar *const *inputs, size_t n_in, alk_fvar *const *outputs,
                    size_t n_out, alk__comb **ret) {
    if (t->error != ALK_OK) {
        return t->error;
    }
    if (n_in > UINT32_MAX / 2 || n_out > UINT32_MAX / 2) {
        return alk__trace_set_error(t, ALK_ELIMIT, "too many inputs or outputs");
    }
    for (size_t j = 0; j < n_in; j++) {
        if (inputs[j] == NULL || !(inputs[j]->factor > 0)) {
            return alk__trace_set_error(t, ALK_EINVAL,
                                        "input %zu is missing or has a negative scale", j);
        }
    }
    for (size_t j = 0; j < n_out; j++) {
        if (outputs[j] == NULL) {
            return alk__trace_set_error(t, ALK_EINVAL, "output %zu is missing", j);
        }
    }
    uint64_t gen = ++t->generation;
    alk_fvar **list = NULL;
    size_t len = 0, cap = 0;
    frame *stack = NULL;
    size_t stack_cap = 0;
    keyed *order = NULL;
    alk__comb *comb = NULL;
    int rv = ALK_OK;

    /* 1-2. Inputs first, then each output's post-order walk. */
    for (size_t j = 0; j < n_in; j++) {
        alk_fnode *n = inputs[j]->node;
        n->in_mark = gen;
        n->in_pos = (int64_t)j;
        if (n->mark != gen) {
            n->mark = gen;
            rv = list_push(&list, &len, &cap, inputs[j]);
            if (rv != ALK_OK) {
                goto fail;
            }
        }
    }
    for (size_t j = 0; j < n_out; j++) {
        rv = gather(t, outputs[j], &list, &len, &cap, &stack, &stack_cap);
        if (rv != ALK_OK) {
            goto fail;
        }
    }

    /* 3. Sort by the double key latency * N + position. */
    order = alk_malloc((len ? len : 1) * sizeof(keyed));
    if (order == NULL) {
        rv = ALK_ENOMEM;
        goto fail;
    }
    for (size_t j = 0; j < len; j++) {
        order[j] = (keyed){list[j]->node->latency * (double)len + (double)j, j};
    }
    qsort(order, len, sizeof(keyed), keyed_cmp);

    /* 4. Reference counts; 3.3 negations needed. */
    for (size_t j = 0; j < len; j++) {
        list[j]->node->refcount = 0;
    }
    for (size_t j = 0; j < len; j++) {
        alk_fnode *n = list[order[j].index]->node;
        bool is_input = n->in_mark == gen;
        bool sign_free =
            n->opr == ALK_FOPR_VADD || n->opr == ALK_FOPR_VMUL || n->opr == ALK_FOPR_LOOKUP;
        for (uint8_t k = 0; k < n->n_from; k++) {
            alk_fvar *r = n->from[k];
            if (!is_input) {
                r->node->refcount++;
            }
            if (!sign_free && r->factor < 0) {
                r->node->neg_mark = gen;
            }
        }
    }
    for (size_t j = 0; j < n_out; j++) {
        outputs[j]->node->refcount++;
        if (outputs[j]->factor < 0) {
            outputs[j]->node->neg_mark = gen;
        }
    }

    /* 3.4 Emission. */
    rv = alk__comb_new((uint32_t)n_in, (uint32_t)n_out, &comb);
    if (rv != ALK_OK) {
        goto fail;
    }
    for (size_t j = 0; j < len; j++) {
        alk_fvar *v = list[order[j].index];
        alk_fnode *n = v->node;
        bool is_input = n->in_mark == gen;
        if (n->refcount == 0 && !is_input) {
            continue;
        }
        n->index = (int64_t)comb->n_ops;
        alk__cop op;
        if (is_input && n->opr != ALK_FOPR_CONST) {
            op = make_op(-1, alk__fv_unscaled_qint(t, v), n->latency);
            op.n_data = 1;
            op.data[0] = n->in_pos;
        } else {
            rv = emit_op(t, comb, v, &op);
            if (rv != ALK_OK) {
                goto fail;
            }
        }
        rv = alk__comb_push(comb, &op);
        if (rv != ALK_OK) {
            goto fail;
        }
        if (n->neg_mark == gen) {
            if (n->input) {
                rv = alk__trace_set_error(t, ALK_EINVAL, "an unquantized input cannot be negated");
                goto fail;
            }
            alk_qint q = alk__fv_unscaled_qint(t, v);
            alk_qint nq = {-q.max, -q.min, q.step};
            if (q.min == q.max) {
                nq = (alk_qint){-q.min, -q.min, pow2_lsb(-q.min)};
            }
            alk__cop neg_op = make_op(-2, nq, n->latency);
            neg_op.n_addr = 1;
            neg_op.addr[0] = (uint32_t)n->index;
            /* The reference writes an int 0 cost here, except after an input read. */
            neg_op.int_flags = is_input ? 0 : ALK__INT_COST;
            rv = alk__comb_push(comb, &neg_op);
            if (rv != ALK_OK) {
                goto fail;
            }
        }
    }

    /* 3.6 Header. */
    for (size_t j = 0; j < n_out; j++) {
        comb->out_idxs[j] = (int32_t)outputs[j]->node->index;
        comb->out_shifts[j] = (int32_t)log2_int(outputs[j]->factor);
        comb->out_negs[j] = outputs[j]->factor < 0;
    }
    alk_hwconf hw = n_out > 0 ? outputs[0]->node->hwconf : t->hwconf;
    comb->carry_size = hw.carry_size;
    comb->adder_size = hw.adder_size;
    rv = t->error;
    if (rv != ALK_OK) {
        goto fail;
    }
    *ret = comb;
    comb = NULL;
fail:
    if (rv == ALK_ENOMEM) {
        alk__trace_set_error(t, ALK_ENOMEM, "out of memory while tracing");
    }
    alk__comb_free(comb);
    alk_free(order);
    alk_free(list);
    alk_free(stack);
    return rv;
}

/*
 * Every value of `program` must fit ALIR's 64-bit codes. A model's huge weights or scales (a
 * float32 weight near 2^127, a product of several) make intervals that do not, or that overflow
 * to infinity; such a program would be refused by every reader and interpreter, so the trace
 * fails with ALK_ELIMIT naming the op instead. (An op whose step is not even positive is a
 * tracer bug, left to the program's validation.)
 */
static int check_widths(alk_trace *t, const alk_program *program) {
    for (size_t i = 0; i < program->n_ops; i++) {
        alk_qint q = program->ops[i].qint;
        if (q.step > 0.0 && isfinite(q.step) && !alk_qint_fits_int64(q)) {
            return alk__trace_set_error(
                t, ALK_ELIMIT,
                "op %zu (%s) of the program needs values wider than ALIR's 64 bits: interval "
                "[%g, %g] step %g (a weight, scale or product of the model is too large or too "
                "finely stepped)",
                i, alk_opcode_name(program->ops[i].opcode), q.min, q.max, q.step);
        }
    }
    return ALK_OK;
}

int alk_trace_emit(alk_trace *t, alk_fvar *const *inputs, size_t n_in, alk_fvar *const *outputs,
                   size_t n_out, bool optimize, alk_program **ret_program) {
    alk__comb *comb = NULL;
    int rv = alk__trace_comb(t, inputs, n_in, outputs, n_out, &comb);
    if (rv == ALK_OK && optimize) {
        rv = alk__optimize(t, &comb);
    }
    if (rv == ALK_OK) {
        rv = alk__comb_to_program(comb, ret_program);
        if (rv != ALK_OK) {
            alk__trace_set_error(t, rv, "out of memory while writing the program");
        }
    }
    if (rv == ALK_OK) {
        rv = check_widths(t, *ret_program);
        if (rv != ALK_OK) {
            alk_program_free(*ret_program);
            *ret_program = NULL;
        }
    }
    alk__comb_free(comb);
    return rv;
}
