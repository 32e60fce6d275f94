/*
 * The tracer's working program form (see comb.h): allocation, copies, comparison and the
 * conversions to and from alk_program.
 */
#include "trace/comb.h"
#include "alir/kif.h"
#include "core/alloc.h"
#include "trace/trace_int.h"

#include <string.h>

int alk__comb_new(uint32_t n_in, uint32_t n_out, alk__comb **ret_comb) {
    alk__comb *c = alk_calloc(1, sizeof(*c));
    if (c == NULL) {
        return ALK_ENOMEM;
    }
    c->n_in = n_in;
    c->n_out = n_out;
    c->carry_size = 1;
    c->adder_size = 1;
    c->inp_shifts = alk_calloc(n_in ? n_in : 1, sizeof(int32_t));
    c->out_idxs = alk_calloc(n_out ? n_out : 1, sizeof(int32_t));
    c->out_shifts = alk_calloc(n_out ? n_out : 1, sizeof(int32_t));
    c->out_negs = alk_calloc(n_out ? n_out : 1, sizeof(bool));
    if (c->inp_shifts == NULL || c->out_idxs == NULL || c->out_shifts == NULL ||
        c->out_negs == NULL) {
        alk__comb_free(c);
        return ALK_ENOMEM;
    }
    for (uint32_t j = 0; j < n_out; j++) {
        c->out_idxs[j] = -1;
    }
    *ret_comb = c;
    return ALK_OK;
}

void alk__comb_free(alk__comb *c) {
    if (c == NULL) {
        return;
    }
    alk_free(c->inp_shifts);
    alk_free(c->out_idxs);
    alk_free(c->out_shifts);
    alk_free(c->out_negs);
    alk_free(c->ops);
    alk_free(c->tables);
    alk_free(c);
}

int alk__comb_push(alk__comb *c, const alk__cop *op) {
    if (c->n_ops == c->cap_ops) {
        void *ops = c->ops;
        int rv = alk_grow(&ops, &c->cap_ops, sizeof(alk__cop), c->n_ops + 1);
        if (rv != ALK_OK) {
            return rv;
        }
        c->ops = ops;
    }
    c->ops[c->n_ops++] = *op;
    return ALK_OK;
}

int alk__comb_push_table(alk__comb *c, alk_ftable *table) {
    alk_ftable **tables = alk_realloc(c->tables, (c->n_tables + 1) * sizeof(*tables));
    if (tables == NULL) {
        return ALK_ENOMEM;
    }
    c->tables = tables;
    c->tables[c->n_tables++] = table;
    return ALK_OK;
}

int alk__comb_copy(const alk__comb *c, alk__comb **ret) {
    alk__comb *d = NULL;
    int rv = alk__comb_new(c->n_in, c->n_out, &d);
    if (rv != ALK_OK) {
        return rv;
    }
    memcpy(d->inp_shifts, c->inp_shifts, c->n_in * sizeof(int32_t));
    memcpy(d->out_idxs, c->out_idxs, c->n_out * sizeof(int32_t));
    memcpy(d->out_shifts, c->out_shifts, c->n_out * sizeof(int32_t));
    memcpy(d->out_negs, c->out_negs, c->n_out * sizeof(bool));
    d->carry_size = c->carry_size;
    d->adder_size = c->adder_size;
    if (c->n_ops > 0) {
        d->ops = alk_malloc(c->n_ops * sizeof(alk__cop));
        if (d->ops == NULL) {
            alk__comb_free(d);
            return ALK_ENOMEM;
        }
        memcpy(d->ops, c->ops, c->n_ops * sizeof(alk__cop));
        d->n_ops = d->cap_ops = c->n_ops;
    }
    if (c->n_tables > 0) {
        d->tables = alk_malloc(c->n_tables * sizeof(alk_ftable *));
        if (d->tables == NULL) {
            alk__comb_free(d);
            return ALK_ENOMEM;
        }
        memcpy(d->tables, c->tables, c->n_tables * sizeof(alk_ftable *));
        d->n_tables = c->n_tables;
    }
    *ret = d;
    return ALK_OK;
}

static bool qint_eq(alk_qint a, alk_qint b) {
    return a.min == b.min && a.max == b.max && a.step == b.step;
}

static bool table_eq(const alk_ftable *a, const alk_ftable *b) {
    if (a == b) {
        return true;
    }
    return strcmp(a->hash, b->hash) == 0 && qint_eq(a->out_qint, b->out_qint) &&
           a->inp_width == b->inp_width && a->len == b->len &&
           memcmp(a->values, b->values, a->len * sizeof(int32_t)) == 0;
}

bool alk__comb_equal(const alk__comb *a, const alk__comb *b) {
    if (a->n_in != b->n_in || a->n_out != b->n_out || a->n_ops != b->n_ops ||
        a->carry_size != b->carry_size || a->adder_size != b->adder_size ||
        a->n_tables != b->n_tables) {
        return false;
    }
    if (memcmp(a->inp_shifts, b->inp_shifts, a->n_in * sizeof(int32_t)) != 0 ||
        memcmp(a->out_idxs, b->out_idxs, a->n_out * sizeof(int32_t)) != 0 ||
        memcmp(a->out_shifts, b->out_shifts, a->n_out * sizeof(int32_t)) != 0) {
        return false;
    }
    for (uint32_t j = 0; j < a->n_out; j++) {
        if (a->out_negs[j] != b->out_negs[j]) {
            return false;
        }
    }
    for (size_t j = 0; j < a->n_ops; j++) {
        const alk__cop *x = &a->ops[j], *y = &b->ops[j];
        if (x->opcode != y->opcode || x->n_addr != y->n_addr || x->n_data != y->n_data ||
            !qint_eq(x->qint, y->qint) || x->latency != y->latency || x->cost != y->cost) {
            return false;
        }
        if (memcmp(x->addr, y->addr, x->n_addr * sizeof(uint32_t)) != 0 ||
            memcmp(x->data, y->data, x->n_data * sizeof(int64_t)) != 0) {
            return false;
        }
    }
    for (size_t j = 0; j < a->n_tables; j++) {
        if (!table_eq(a->tables[j], b->tables[j])) {
            return false;
        }
    }
    return true;
}

int alk__comb_from_program(const alk_program *p, alk__comb **ret, alk_diag *diag) {
    alk__comb *c = NULL;
    int rv = alk__comb_new(p->n_in, p->n_out, &c);
    if (rv != ALK_OK) {
        return rv;
    }
    memcpy(c->inp_shifts, p->inp_shifts, p->n_in * sizeof(int32_t));
    memcpy(c->out_idxs, p->out_idxs, p->n_out * sizeof(int32_t));
    memcpy(c->out_shifts, p->out_shifts, p->n_out * sizeof(int32_t));
    memcpy(c->out_negs, p->out_negs, p->n_out * sizeof(bool));
    c->carry_size = p->carry_size;
    c->adder_size = p->adder_size;
    for (size_t j = 0; j < p->n_ops; j++) {
        const alk_alir_op *op = &p->ops[j];
        if (op->n_addr > 3 || op->n_data > 2) {
            alk__comb_free(c);
            return alk_diag_set(diag, ALK_EINTERNAL, "solver op %zu has an unexpected shape", j);
        }
        alk__cop o = {.opcode = op->opcode,
                      .n_addr = (uint8_t)op->n_addr,
                      .n_data = (uint8_t)op->n_data,
                      .qint = op->qint,
                      .latency = op->latency,
                      .cost = op->cost};
        if (op->n_addr > 0) {
            memcpy(o.addr, alk_alir_op_addr(p, op), op->n_addr * sizeof(uint32_t));
        }
        if (op->n_data > 0) {
            memcpy(o.data, alk_alir_op_data(p, op), op->n_data * sizeof(int64_t));
        }
        rv = alk__comb_push(c, &o);
        if (rv != ALK_OK) {
            alk__comb_free(c);
            return rv;
        }
    }
    *ret = c;
    return ALK_OK;
}

int alk__comb_to_program(const alk__comb *c, alk_program **ret_program) {
    alk_program *p = NULL;
    int rv = alk_program_new(c->n_in, c->n_out, &p);
    if (rv != ALK_OK) {
        return rv;
    }
    memcpy(p->inp_shifts, c->inp_shifts, c->n_in * sizeof(int32_t));
    memcpy(p->out_idxs, c->out_idxs, c->n_out * sizeof(int32_t));
    memcpy(p->out_shifts, c->out_shifts, c->n_out * sizeof(int32_t));
    memcpy(p->out_negs, c->out_negs, c->n_out * sizeof(bool));
    p->carry_size = c->carry_size;
    p->adder_size = c->adder_size;
    for (size_t j = 0; j < c->n_ops; j++) {
        const alk__cop *op = &c->ops[j];
        /* Beyond the reference: a format one bit short of its interval's top (alir/kif.h). */
        alk_qint q = op->opcode == 5 ? op->qint : alk_qint_widen_for_kif(op->qint);
        int64_t idx = alk_program_add_op(p, op->opcode, op->addr, op->n_addr, op->data, op->n_data,
                                         q, op->latency, op->cost);
        if (idx >= 0) {
            p->ops[idx].int_fields =
                (uint8_t)((op->int_flags & ALK__INT_LAT ? ALK_INT_LATENCY : 0) |
                          (op->int_flags & ALK__INT_COST ? ALK_INT_COST : 0));
        }
    }
    for (size_t j = 0; j < c->n_tables; j++) {
        const alk_ftable *table = c->tables[j];
        int32_t *values = alk_malloc((table->len ? table->len : 1) * sizeof(int32_t));
        if (values == NULL) {
            alk_program_free(p);
            return ALK_ENOMEM;
        }
        memcpy(values, table->values, table->len * sizeof(int32_t));
        (void)alk_program_add_table(p, table->hash, table->out_qint, table->inp_width, values,
                                    table->len);
    }
    rv = alk_program_error(p);
    if (rv != ALK_OK) {
        alk_program_free(p);
        return rv;
    }
    *ret_program = p;
    return ALK_OK;
}
