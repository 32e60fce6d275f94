/*
 * The CombLogic program model: construction, comparison and derived summaries (see program.h).
 */
#include "alir/program.h"
#include "core/alloc.h"

#include <string.h>

const char *alk_opcode_name(int opcode) {
    switch (opcode) {
#define ALK_OPCODE_NAME(name, num, text)                                                           \
    case num:                                                                                      \
        return text;
        ALK_OPCODE_MAP(ALK_OPCODE_NAME)
#undef ALK_OPCODE_NAME
    default:
        return NULL;
    }
}

int alk_program_new(uint32_t n_in, uint32_t n_out, alk_program **ret_program) {
    alk_program *program = alk_calloc(1, sizeof(*program));
    if (program == NULL) {
        return ALK_ENOMEM;
    }
    program->n_in = n_in;
    program->n_out = n_out;
    program->carry_size = 1;
    program->adder_size = 1;
    program->inp_shifts = alk_calloc(n_in, sizeof(int32_t));
    program->out_idxs = alk_calloc(n_out, sizeof(int32_t));
    program->out_shifts = alk_calloc(n_out, sizeof(int32_t));
    program->out_negs = alk_calloc(n_out, sizeof(bool));
    if (program->inp_shifts == NULL || program->out_idxs == NULL || program->out_shifts == NULL ||
        program->out_negs == NULL) {
        alk_program_free(program);
        return ALK_ENOMEM;
    }
    for (uint32_t j = 0; j < n_out; j++) {
        program->out_idxs[j] = -1;
    }
    *ret_program = program;
    return ALK_OK;
}

void alk_program_free(alk_program *program) {
    if (program == NULL) {
        return;
    }
    for (size_t t = 0; t < program->n_tables; t++) {
        alk_free(program->tables[t].values);
    }
    alk_free(program->tables);
    alk_free(program->ops);
    alk_free(program->addr_pool);
    alk_free(program->data_pool);
    alk_free(program->inp_shifts);
    alk_free(program->out_idxs);
    alk_free(program->out_shifts);
    alk_free(program->out_negs);
    alk_free(program);
}

int64_t alk_program_add_op(alk_program *program, int32_t opcode, const uint32_t *addr,
                           uint32_t n_addr, const int64_t *data, uint32_t n_data, alk_qint qint,
                           double latency, double cost) {
    if (program->error != ALK_OK) {
        return -1;
    }
    void *ops = program->ops;
    void *addr_pool = program->addr_pool;
    void *data_pool = program->data_pool;
    int rv = alk_grow(&ops, &program->cap_ops, sizeof(alk_alir_op), program->n_ops + 1);
    program->ops = ops;
    if (rv == ALK_OK) {
        rv = alk_grow(&addr_pool, &program->addr_cap, sizeof(uint32_t), program->addr_len + n_addr);
        program->addr_pool = addr_pool;
    }
    if (rv == ALK_OK) {
        rv = alk_grow(&data_pool, &program->data_cap, sizeof(int64_t), program->data_len + n_data);
        program->data_pool = data_pool;
    }
    if (rv != ALK_OK) {
        program->error = rv;
        return -1;
    }
    alk_alir_op *op = &program->ops[program->n_ops];
    *op = (alk_alir_op){
        .opcode = opcode,
        .n_addr = n_addr,
        .n_data = n_data,
        .addr_offset = program->addr_len,
        .data_offset = program->data_len,
        .qint = qint,
        .latency = latency,
        .cost = cost,
    };
    if (n_addr > 0) {
        memcpy(program->addr_pool + program->addr_len, addr, n_addr * sizeof(uint32_t));
    }
    if (n_data > 0) {
        memcpy(program->data_pool + program->data_len, data, n_data * sizeof(int64_t));
    }
    program->addr_len += n_addr;
    program->data_len += n_data;
    return (int64_t)program->n_ops++;
}

int64_t alk_program_add_table(alk_program *program, const char *hash, alk_qint out_qint,
                              int64_t inp_width, int32_t *values, size_t len) {
    if (program->error != ALK_OK) {
        alk_free(values);
        return -1;
    }
    void *tables = program->tables;
    int rv = alk_grow(&tables, &program->cap_tables, sizeof(alk_table), program->n_tables + 1);
    program->tables = tables;
    if (rv != ALK_OK) {
        program->error = rv;
        alk_free(values);
        return -1;
    }
    alk_table *table = &program->tables[program->n_tables];
    *table =
        (alk_table){.out_qint = out_qint, .inp_width = inp_width, .len = len, .values = values};
    if (hash != NULL) {
        size_t n = strlen(hash);
        if (n >= sizeof(table->hash)) {
            n = sizeof(table->hash) - 1;
        }
        memcpy(table->hash, hash, n);
        table->hash[n] = '\0';
    }
    return (int64_t)program->n_tables++;
}

int alk_program_error(const alk_program *program) {
    return program->error;
}

/* Bitwise equality of doubles: tells 0.0 from -0.0, which the file form keeps. */
static bool same_double(double a, double b) {
    return memcmp(&a, &b, sizeof(a)) == 0;
}

static bool same_qint(alk_qint a, alk_qint b) {
    return same_double(a.min, b.min) && same_double(a.max, b.max) && same_double(a.step, b.step);
}

static bool same_ops(const alk_program *a, const alk_program *b) {
    for (size_t i = 0; i < a->n_ops; i++) {
        const alk_alir_op *x = &a->ops[i];
        const alk_alir_op *y = &b->ops[i];
        if (x->opcode != y->opcode || x->n_addr != y->n_addr || x->n_data != y->n_data ||
            !same_qint(x->qint, y->qint) || !same_double(x->latency, y->latency) ||
            !same_double(x->cost, y->cost) || x->int_fields != y->int_fields) {
            return false;
        }
        if (memcmp(alk_alir_op_addr(a, x), alk_alir_op_addr(b, y), x->n_addr * sizeof(uint32_t)) !=
                0 ||
            memcmp(alk_alir_op_data(a, x), alk_alir_op_data(b, y), x->n_data * sizeof(int64_t)) !=
                0) {
            return false;
        }
    }
    return true;
}

static bool same_tables(const alk_program *a, const alk_program *b) {
    for (size_t t = 0; t < a->n_tables; t++) {
        const alk_table *x = &a->tables[t];
        const alk_table *y = &b->tables[t];
        if (strcmp(x->hash, y->hash) != 0 || !same_qint(x->out_qint, y->out_qint) ||
            x->out_qint_int_fields != y->out_qint_int_fields || x->inp_width != y->inp_width ||
            x->len != y->len || memcmp(x->values, y->values, x->len * sizeof(int32_t)) != 0) {
            return false;
        }
    }
    return true;
}

bool alk_program_equal(const alk_program *a, const alk_program *b) {
    if (a->n_in != b->n_in || a->n_out != b->n_out || a->n_ops != b->n_ops ||
        a->n_tables != b->n_tables || a->carry_size != b->carry_size ||
        a->adder_size != b->adder_size) {
        return false;
    }
    if (memcmp(a->inp_shifts, b->inp_shifts, a->n_in * sizeof(int32_t)) != 0 ||
        memcmp(a->out_idxs, b->out_idxs, a->n_out * sizeof(int32_t)) != 0 ||
        memcmp(a->out_shifts, b->out_shifts, a->n_out * sizeof(int32_t)) != 0 ||
        memcmp(a->out_negs, b->out_negs, a->n_out * sizeof(bool)) != 0) {
        return false;
    }
    return same_ops(a, b) && same_tables(a, b);
}

double alk_program_cost(const alk_program *program) {
    double total = 0.0;
    for (size_t i = 0; i < program->n_ops; i++) {
        total += program->ops[i].cost;
    }
    return total;
}

void alk_program_latency(const alk_program *program, double *ret_min, double *ret_max) {
    double lo = 0.0;
    double hi = 0.0;
    for (uint32_t j = 0; j < program->n_out && program->n_ops > 0; j++) {
        int32_t idx = program->out_idxs[j];
        /* The reference reads ops[-1] for a constant-zero output (spec §4.1 [quirk]). */
        size_t i = idx < 0 ? program->n_ops - 1 : (size_t)idx;
        double latency = i < program->n_ops ? program->ops[i].latency : 0.0;
        lo = j == 0 ? latency : (latency < lo ? latency : lo);
        hi = j == 0 ? latency : (latency > hi ? latency : hi);
    }
    *ret_min = lo;
    *ret_max = hi;
}
