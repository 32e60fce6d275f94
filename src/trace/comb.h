/*
 * The tracer's working form of a CombLogic program (internal to libalkaid).
 *
 * Unlike alk_program (pools built for million-op files), each op here is a fixed-size record
 * with at most 3 operands and 2 payload words: enough for every opcode the tracer and the
 * passes produce (the ternary fusion, opcode 11, is not part of optimisation). Tables are
 * references to the trace's tables (owned by the trace's arena); n_tables == 0 stands for the
 * reference's `None`.
 *
 * Latency and cost carry a flag saying whether Python would hold them as ints (the JSON writer
 * prints `0` rather than `0.0`), see ALK__INT_*.
 *
 * Thread rule: a program belongs to one thread.
 */
#ifndef ALK_TRACE_COMB_H
#define ALK_TRACE_COMB_H

#include "alir/program.h"
#include "trace/fvar.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { ALK__INT_LAT = 1, ALK__INT_COST = 2 };

typedef struct alk__cop {
    int32_t opcode;
    uint8_t n_addr;
    uint8_t n_data;
    uint8_t int_flags;
    uint32_t addr[3];
    int64_t data[2];
    alk_qint qint;
    double latency;
    double cost;
} alk__cop;

typedef struct alk__comb {
    uint32_t n_in;
    uint32_t n_out;
    int32_t *inp_shifts;
    int32_t *out_idxs;
    int32_t *out_shifts;
    bool *out_negs;
    alk__cop *ops;
    size_t n_ops;
    size_t cap_ops;
    int64_t carry_size;
    int64_t adder_size;
    alk_ftable **tables;
    size_t n_tables;
} alk__comb;

/* An empty program (outputs -1, shifts 0); the caller owns it (alk__comb_free). */
int alk__comb_new(uint32_t n_in, uint32_t n_out, alk__comb **ret_comb);
void alk__comb_free(alk__comb *comb);
/* Appends a copy of `op`; ALK_ENOMEM leaves the program unchanged. */
int alk__comb_push(alk__comb *comb, const alk__cop *op);
/* Appends a table reference (borrowed from the trace). */
int alk__comb_push_table(alk__comb *comb, alk_ftable *table);
/* A deep copy (tables shared); the caller owns *ret. */
int alk__comb_copy(const alk__comb *comb, alk__comb **ret);
/* Python `==` of two programs: numbers compared by value, tables by spec and entries. */
bool alk__comb_equal(const alk__comb *a, const alk__comb *b);
/* Converts a solver's program (reads, add/sub only; no tables). */
int alk__comb_from_program(const alk_program *program, alk__comb **ret, alk_diag *diag);
/* The file form; the caller owns *ret_program. */
int alk__comb_to_program(const alk__comb *comb, alk_program **ret_program);

#endif
