/*
 * The CombLogic program: ALIR's in-memory model (spec trace-alir.md §4.1).
 *
 * A program is SSA: op i writes slot i and reads only earlier slots. Op operands (`addr`) and
 * payloads (`data`) live in two program-wide pools; an op records offsets into them, which keeps
 * a million-op program in a few flat arrays.
 *
 * Numbers that the JSON form writes (interval bounds, latency, cost) are doubles here, plus a
 * bit per number saying whether the file had it as a JSON integer, so that a program read from
 * the reference's files is written back byte for byte (the reference writes Python ints and
 * floats as they come).
 *
 * Building is sticky (SQLite style): after the first failed alk_program_add_op, later calls do
 * nothing and alk_program_error() reports the failure once at the end.
 *
 * Thread rule: a program is owned by one thread while it is built; a finished program is
 * immutable and may be read (written, interpreted) from several threads at once.
 */
#ifndef ALK_ALIR_PROGRAM_H
#define ALK_ALIR_PROGRAM_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes (spec §4.2). The numbers are the file format's. */
#define ALK_OPCODE_MAP(X)                                                                          \
    X(NEG, -2, "negate")                                                                           \
    X(READ, -1, "read")                                                                            \
    X(ADD, 0, "add")                                                                               \
    X(SUB, 1, "sub")                                                                               \
    X(RELU, 2, "relu")                                                                             \
    X(QUANTIZE, 3, "quantize")                                                                     \
    X(ADD_CONST, 4, "add-const")                                                                   \
    X(CONST, 5, "const")                                                                           \
    X(MUX, 6, "msb-mux")                                                                           \
    X(MUL, 7, "mul")                                                                               \
    X(LOOKUP, 8, "lookup")                                                                         \
    X(BIT_UNARY, 9, "bit-unary")                                                                   \
    X(BIT_BINARY, 10, "bit-binary")                                                                \
    X(SUM, 11, "sum")

enum alk_opcode {
#define ALK_OPCODE_ENUM(name, num, text) ALK_OP_##name = num,
    ALK_OPCODE_MAP(ALK_OPCODE_ENUM)
#undef ALK_OPCODE_ENUM
};

enum { ALK_OPCODE_MIN = -2, ALK_OPCODE_MAX = 11 };

/* What a bit op computes: data[0] of a bit-unary op, data[1] of a bit-binary op. */
typedef enum alk_bit_unop { ALK_BIT_NOT = 0, ALK_BIT_ANY = 1, ALK_BIT_ALL = 2 } alk_bit_unop;
typedef enum alk_bit_binop { ALK_BIT_AND = 0, ALK_BIT_OR = 1, ALK_BIT_XOR = 2 } alk_bit_binop;

/* Short name of an opcode ("add"), or NULL when the number is not an opcode. */
const char *alk_opcode_name(int opcode);

/* A value interval: every value is min + n*step, min <= value <= max. */
typedef struct alk_qint {
    double min;
    double max;
    double step;
} alk_qint;

/* Which numbers of an op or table are JSON integers in the file form. */
enum {
    ALK_INT_MIN = 1 << 0,
    ALK_INT_MAX = 1 << 1,
    ALK_INT_STEP = 1 << 2,
    ALK_INT_LATENCY = 1 << 3,
    ALK_INT_COST = 1 << 4,
};

typedef struct alk_alir_op {
    int32_t opcode;
    uint32_t n_addr;
    uint32_t n_data;
    size_t addr_offset; /* into alk_program.addr_pool */
    size_t data_offset; /* into alk_program.data_pool */
    alk_qint qint;
    double latency;
    double cost;
    uint8_t int_fields; /* ALK_INT_* bits */
} alk_alir_op;

/* A lookup table: raw int32 entries plus the reference's description of them. */
typedef struct alk_table {
    char hash[65]; /* lowercase hex SHA-256, as the reference names tables */
    alk_qint out_qint;
    uint8_t out_qint_int_fields; /* ALK_INT_MIN/MAX/STEP bits */
    int64_t inp_width;
    size_t len;
    int32_t *values;
} alk_table;

typedef struct alk_program {
    uint32_t n_in;
    uint32_t n_out;
    int32_t *inp_shifts; /* [n_in] */
    int32_t *out_idxs;   /* [n_out]; -1 means the constant 0 */
    int32_t *out_shifts; /* [n_out] */
    bool *out_negs;      /* [n_out] */
    int64_t carry_size;
    int64_t adder_size;

    alk_alir_op *ops;
    size_t n_ops;
    size_t cap_ops;
    uint32_t *addr_pool;
    size_t addr_len;
    size_t addr_cap;
    int64_t *data_pool;
    size_t data_len;
    size_t data_cap;

    alk_table *tables;
    size_t n_tables;
    size_t cap_tables;

    int error; /* sticky builder error */
} alk_program;

/*
 * Allocates an empty program with `n_in` inputs and `n_out` outputs (shifts 0, outputs -1, not
 * negated, carry and adder size 1). The caller owns the result (alk_program_free).
 */
int alk_program_new(uint32_t n_in, uint32_t n_out, alk_program **ret_program);

/* Frees `program` and everything it holds; NULL is a no-op. */
void alk_program_free(alk_program *program);

/*
 * Appends an op; `addr` and `data` are copied (the caller keeps them). Returns the new op's index,
 * or -1 after a failure (sticky: see alk_program_error). Nothing is validated here: see
 * alk_program_validate.
 */
int64_t alk_program_add_op(alk_program *program, int32_t opcode, const uint32_t *addr,
                           uint32_t n_addr, const int64_t *data, uint32_t n_data, alk_qint qint,
                           double latency, double cost);

/*
 * Appends a lookup table, taking ownership of `values` (an alk_malloc'd array of `len` entries)
 * in every case; `hash` is copied (NULL or "" leaves it empty). Returns the table index, or -1
 * after a failure (sticky).
 */
int64_t alk_program_add_table(alk_program *program, const char *hash, alk_qint out_qint,
                              int64_t inp_width, int32_t *values, size_t len);

/* ALK_OK, or the first builder failure. */
int alk_program_error(const alk_program *program);

/* The operands and payload of op `i`. The pointers stay valid until the program changes. */
static inline const uint32_t *alk_alir_op_addr(const alk_program *program, const alk_alir_op *op) {
    return program->addr_pool + op->addr_offset;
}
static inline const int64_t *alk_alir_op_data(const alk_program *program, const alk_alir_op *op) {
    return program->data_pool + op->data_offset;
}

/* Whether two programs are equal field by field (numbers, int/float kinds, tables). */
bool alk_program_equal(const alk_program *a, const alk_program *b);

/* Sum of op costs and the (min, max) latency over the outputs (index -1 reads the last op). */
double alk_program_cost(const alk_program *program);
void alk_program_latency(const alk_program *program, double *ret_min, double *ret_max);

#endif
