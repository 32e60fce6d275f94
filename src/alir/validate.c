/*
 * Program validation (see validate.h). One pass over the ops; each check names the op.
 */
#include "alir/validate.h"
#include "alir/kif.h"

#include <inttypes.h>
#include <math.h>

/* Expected operand and payload counts; -1 for the variadic sum (2 payloads per operand). */
typedef struct arity {
    int n_addr;
    int n_data;
} arity;

static bool opcode_arity(int32_t opcode, arity *ret) {
    switch (opcode) {
    case ALK_OP_NEG:
        *ret = (arity){1, 0};
        return true;
    case ALK_OP_READ:
        *ret = (arity){0, 1};
        return true;
    case ALK_OP_ADD:
    case ALK_OP_SUB:
        *ret = (arity){2, 1};
        return true;
    case ALK_OP_RELU:
        *ret = (arity){1, 0};
        return true;
    case ALK_OP_QUANTIZE:
        *ret = (arity){1, 1};
        return true;
    case ALK_OP_ADD_CONST:
        *ret = (arity){1, 2};
        return true;
    case ALK_OP_CONST:
        *ret = (arity){0, 1};
        return true;
    case ALK_OP_MUX:
        *ret = (arity){3, 1};
        return true;
    case ALK_OP_MUL:
        *ret = (arity){2, 0};
        return true;
    case ALK_OP_LOOKUP:
        *ret = (arity){1, 1};
        return true;
    case ALK_OP_BIT_UNARY:
        *ret = (arity){1, 1};
        return true;
    case ALK_OP_BIT_BINARY:
        *ret = (arity){2, 2};
        return true;
    case ALK_OP_SUM:
        *ret = (arity){-1, -1};
        return true;
    default:
        return false;
    }
}

static bool is_power_of_two(double x) {
    int exponent;
    return frexp(x, &exponent) == 0.5;
}

static int check_qint(const alk_qint *q, size_t i, int32_t opcode, alk_diag *diag) {
    const char *name = alk_opcode_name(opcode);
    if (!isfinite(q->min) || !isfinite(q->max)) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu (%s): interval bounds are not finite", i,
                            name);
    }
    if (q->min > q->max) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu (%s): interval min %g exceeds max %g", i,
                            name, q->min, q->max);
    }
    if (q->min == 0.0 && q->max == 0.0) {
        return ALK_OK; /* the zero interval: any step, format (0, 0, 0) */
    }
    if (!(q->step > 0.0) || !isfinite(q->step)) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu (%s): interval step %g is not positive", i,
                            name, q->step);
    }
    if (!is_power_of_two(q->step)) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu (%s): interval step %g is not a power of two",
                            i, name, q->step);
    }
    /* Integer codes must fit int64 (min down to -2^63 steps, max below 2^63 steps), and so must
     * the format the interpreter derives from them. */
    if (!alk_qint_fits_int64(*q)) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "op %zu (%s): interval [%g, %g] step %g is wider than 64 bits", i, name,
                            q->min, q->max, q->step);
    }
    return ALK_OK;
}

static bool fits_i32(int64_t v) {
    return v >= INT32_MIN && v <= INT32_MAX;
}

/* Checks the payload of op i, whose counts are already right. */
static int check_data(const alk_program *program, size_t i, const alk_alir_op *op, alk_diag *diag) {
    const int64_t *data = alk_alir_op_data(program, op);
    const uint32_t *addr = alk_alir_op_addr(program, op);
    const char *name = alk_opcode_name(op->opcode);
    switch (op->opcode) {
    case ALK_OP_READ:
        if (data[0] < 0 || data[0] >= (int64_t)program->n_in) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "op %zu (read): input index %" PRId64 " is out of range (%" PRIu32
                                " inputs)",
                                i, data[0], program->n_in);
        }
        return ALK_OK;
    case ALK_OP_LOOKUP:
        if (data[0] < 0 || (uint64_t)data[0] >= program->n_tables) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "op %zu (lookup): table index %" PRId64 " is past the end (%zu "
                                "tables)",
                                i, data[0], program->n_tables);
        }
        return ALK_OK;
    case ALK_OP_BIT_UNARY:
    case ALK_OP_BIT_BINARY: {
        int64_t code = data[op->opcode == ALK_OP_BIT_UNARY ? 0 : 1];
        if (code < 0 || code > 2) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "op %zu (%s): bit operation %" PRId64 " is not 0, 1 or 2", i, name,
                                code);
        }
        break;
    }
    case ALK_OP_MUX: {
        alk_kif out = alk_kif_of(op->qint);
        alk_kif t = alk_kif_of(program->ops[addr[0]].qint);
        alk_kif u = alk_kif_of(program->ops[addr[1]].qint);
        if (fits_i32(data[0]) && out.f != t.f && out.f != u.f - (int)data[0]) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "op %zu (msb-mux): both operands need realigning (shifts %d and "
                                "%" PRId64 "); the reference interpreter refuses this",
                                i, out.f - t.f, out.f - u.f + data[0]);
        }
        break;
    }
    default:
        break;
    }
    /* Every remaining payload entry is a shift (or a sign flag / op code) and must fit int32. */
    for (uint32_t d = 0; d < op->n_data; d++) {
        if (op->opcode == ALK_OP_CONST || (op->opcode == ALK_OP_ADD_CONST && d == 0)) {
            continue; /* constants are full int64 */
        }
        if (!fits_i32(data[d])) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "op %zu (%s): payload entry %" PRIu32 " (%" PRId64
                                ") is outside int32",
                                i, name, d, data[d]);
        }
    }
    return ALK_OK;
}

static int check_op(const alk_program *program, size_t i, alk_diag *diag) {
    const alk_alir_op *op = &program->ops[i];
    arity want;
    if (!opcode_arity(op->opcode, &want)) {
        return alk_diag_set(diag, ALK_EINVAL, "op %zu: unknown opcode %" PRId32, i, op->opcode);
    }
    const char *name = alk_opcode_name(op->opcode);
    if (want.n_addr < 0) {
        if (op->n_addr < 1 || op->n_data != 2 * op->n_addr) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "op %zu (sum): %" PRIu32 " operands need %" PRIu32
                                " payload entries, got %" PRIu32,
                                i, op->n_addr, 2 * op->n_addr, op->n_data);
        }
    } else if (op->n_addr != (uint32_t)want.n_addr || op->n_data != (uint32_t)want.n_data) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "op %zu (%s): expects %d operands and %d payload entries, got %" PRIu32
                            " and %" PRIu32,
                            i, name, want.n_addr, want.n_data, op->n_addr, op->n_data);
    }
    const uint32_t *addr = alk_alir_op_addr(program, op);
    for (uint32_t a = 0; a < op->n_addr; a++) {
        if (addr[a] >= i) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "op %zu (%s): operand %" PRIu32 " reads op %" PRIu32
                                ", which is not an earlier op",
                                i, name, a, addr[a]);
        }
    }
    int rv = check_qint(&op->qint, i, op->opcode, diag);
    if (rv != ALK_OK) {
        return rv;
    }
    return check_data(program, i, op, diag);
}

int alk_program_validate(const alk_program *program, alk_diag *diag) {
    for (size_t i = 0; i < program->n_ops; i++) {
        int rv = check_op(program, i, diag);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    for (uint32_t j = 0; j < program->n_out; j++) {
        int32_t idx = program->out_idxs[j];
        if (idx < -1 || (idx >= 0 && (size_t)idx >= program->n_ops)) {
            return alk_diag_set(diag, ALK_EINVAL,
                                "output %" PRIu32 ": index %" PRId32 " is out of range (%zu ops)",
                                j, idx, program->n_ops);
        }
    }
    for (size_t t = 0; t < program->n_tables; t++) {
        if (program->tables[t].len == 0) {
            return alk_diag_set(diag, ALK_EINVAL, "lookup table %zu is empty", t);
        }
    }
    return ALK_OK;
}
