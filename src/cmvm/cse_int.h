/*
 * The CSE state of one stage kernel, shared by the two selections: the reference's order
 * (cse.c, with its lazy queue) and improved mode's conflict-aware one (cse_conflict.c). Private
 * to those two files.
 *
 * Digits live as bitsets: the row of signal e in output o is a pair of 64-bit masks (positive and
 * negative digits), stored per output in `columns` (rows are only ever appended, so a row index
 * stays valid); every signal lists the outputs where it has a row (`slots`, sorted by output).
 */
#ifndef ALK_CMVM_CSE_INT_H
#define ALK_CMVM_CSE_INT_H

#include "cmvm/cmvm_int.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- keys ---- */

/* (id1:26 | id0:26 | sub:1 | shift+128:8), 61 bits: numeric order = (id1, id0, sub, shift). */
enum { ALK__ID_BITS = 26, ALK__KEY_BITS = 61 };
#define ALK__MAX_EXPR ((uint32_t)1 << ALK__ID_BITS)
#define NO_KEY UINT64_MAX

static inline uint64_t alk__make_key(uint32_t id0, uint32_t id1, int shift, bool sub) {
    return ((uint64_t)id1 << 35) | ((uint64_t)id0 << 9) | ((uint64_t)sub << 8) |
           (uint64_t)(uint8_t)(shift + 128);
}
static inline uint32_t alk__key_id0(uint64_t key) {
    return (uint32_t)(key >> 9) & (ALK__MAX_EXPR - 1);
}
static inline uint32_t alk__key_id1(uint64_t key) {
    return (uint32_t)(key >> 35) & (ALK__MAX_EXPR - 1);
}
static inline int alk__key_shift(uint64_t key) {
    return (int)(key & 0xFF) - 128;
}
static inline bool alk__key_sub(uint64_t key) {
    return ((key >> 8) & 1) != 0;
}

/* ---- digit storage ---- */

typedef struct row {
    uint32_t expr;
    uint64_t pos;
    uint64_t neg;
} row;

typedef struct column {
    row *rows;
    size_t len;
    size_t cap;
} column;

typedef struct slot {
    uint32_t out;
    uint32_t index; /* into columns[out].rows */
} slot;

/*
 * The counts of the new signal u's keys during one extraction (reference order only). Every key
 * of u pairs a digit of some signal y <= u with a digit of u, so it is (y, shift, sub) with
 * |shift| < n_bits: each signal met gets a block of counters indexed by (shift, sub) (u's own
 * block holds its self pairs; 2^block_bits counters, a power of two), and the counters that were
 * touched are read and cleared when the extraction ends.
 */
#define NO_BLOCK UINT32_MAX

typedef struct pair_counts {
    uint32_t *counts;  /* n_blocks << block_bits */
    uint32_t *owner;   /* per block: its signal */
    uint32_t *touched; /* counters that went from 0 to 1, in order */
    size_t n_blocks;
    size_t cap_blocks;
    size_t n_touched;
    uint32_t block_bits;
} pair_counts;

/* What the selections read of one signal. */
typedef struct signal_info {
    size_t slot_start; /* its rows: slots[slot_start, slot_start + slot_len) */
    uint32_t slot_len;
    uint32_t last_change; /* the extraction that last removed digits of it */
    uint32_t pair_block;  /* its block in `pairs` during an extraction, or NO_BLOCK */
    alk__bw width;        /* of its interval, for the overlap of its keys */
} signal_info;

typedef struct alk__cse_lazy alk__cse_lazy; /* cse.c */
typedef struct alk__conflict alk__conflict; /* cse_conflict.c */

typedef struct alk__cse {
    uint32_t n_in;
    uint32_t n_out;
    alk_cmvm_method method;
    const alk__quality *quality;
    int32_t *shift0;
    int32_t *shift1;
    column *columns;
    /* Signals (inputs, then extracted patterns); ops[e] is the op of signal e. */
    alk__op *ops;
    size_t n_ops;
    size_t cap_ops;
    signal_info *sig; /* per signal */
    size_t cap_signals;
    slot *slots;
    size_t n_slots;
    size_t cap_slots;
    int32_t *input_rows; /* n_in x n_out: row index of input i in column o, or -1 */
    /* Bit planes of every signal: for signal e and digit position p, the outputs where that
     * digit is positive (pos) or negative (neg), as n_words 64-bit words. */
    uint64_t *plane_pos;
    uint64_t *plane_neg;
    size_t plane_signals; /* signals the plane arrays have room for */
    uint32_t n_words;
    uint32_t n_bits;     /* digit positions in use (CSD width of the stage kernel) */
    uint32_t extraction; /* number of extractions so far */
    bool has_popcnt;     /* the CPU has the popcnt instruction */
    /* Work done so far, in units of about 50 instructions, counted by both selections (within
     * a factor 1.5 of each other); improved mode budgets its extra candidates with it. */
    uint64_t work;
    uint64_t pairs_at_start; /* digit pairs in the columns when the CSE began */
    uint64_t digits;         /* digits in the columns */
    /* Keys of the current extraction's new signal, counted over its outputs before queueing. */
    pair_counts pairs;
    alk__cse_lazy *lazy; /* the reference's selection, while it runs */
    alk__conflict *cf;   /* the conflict-aware selection, while it runs */
} alk__cse;

/* The matches of key (a, b, r >= 0, sub) in one output: digits of row a that pair with row b
 * (for a == b greedily from the low end, as the reference's walk; cse.c). */
void alk__find_matches(const row *ra, const row *rb, bool same, int r, bool sub,
                       uint64_t *ret_match_pos, uint64_t *ret_match_neg);

/* ---- cse_conflict.c: improved mode's selection ---- */

/* Builds the live keys of the current digits into st->cf. */
int alk__conflict_start(alk__cse *st);
void alk__conflict_free(alk__conflict *cf, uint32_t n_out);
/* Selects (and retires) the next key, or NO_KEY when none occurs twice. */
int alk__conflict_select(alk__cse *st, uint64_t *ret_key);
/* Digit p of row k in column o was cleared: keys using it lose that occurrence. */
int alk__conflict_digit_removed(alk__cse *st, uint32_t o, uint32_t k, int p);
/* A row was appended to column o (the new signal's): its pairs are pending until commit. */
int alk__conflict_row_added(alk__cse *st, uint32_t o);
/* The extraction's rows are in: the new signal's keys occurring twice become live. */
int alk__conflict_commit(alk__cse *st);

#endif
