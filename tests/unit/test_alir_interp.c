/*
 * Interpreter semantics, opcode by opcode, on small programs whose results are worked out by
 * hand from spec trace-alir.md §4.2 and §4.4 (the comment of each case shows the arithmetic).
 */
#include "alir/interp.h"
#include "core/alloc.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

/* Formats used below: X = (-8, 7.5, 0.5) is kif (1, 3, 1); Y = (0, 3, 1) is kif (0, 2, 0). */
static const alk_qint X = {-8, 7.5, 0.5};
static const alk_qint Y = {0, 3, 1};

static alk_program *program;

static void setup(void) {
    cr_assert_eq(alk_program_new(2, 1, &program), ALK_OK);
    int64_t in0 = 0;
    int64_t in1 = 1;
    alk_program_add_op(program, ALK_OP_READ, NULL, 0, &in0, 1, X, 0, 0); /* op 0 = x */
    alk_program_add_op(program, ALK_OP_READ, NULL, 0, &in1, 1, Y, 0, 0); /* op 1 = y */
}

static void teardown(void) {
    alk_program_free(program);
}

/* Appends an op and makes it output 0. */
static void emit(int32_t opcode, const uint32_t *addr, uint32_t n_addr, const int64_t *data,
                 uint32_t n_data, alk_qint qint) {
    int64_t i = alk_program_add_op(program, opcode, addr, n_addr, data, n_data, qint, 0, 0);
    cr_assert_geq(i, 0);
    program->out_idxs[0] = (int32_t)i;
}

/* Runs the program on (x, y) and returns output 0. */
static double run2(double x, double y) {
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_interp_new(program, &interp, &diag), ALK_OK, "%s", diag.message);
    double in[2] = {x, y};
    double out[4] = {0};
    cr_assert_eq(alk_interp_run(interp, in, 1, out, &diag), ALK_OK, "%s", diag.message);
    alk_interp_free(interp);
    return out[0];
}

TestSuite(interp, .init = setup, .fini = teardown);

Test(interp, read_floors_to_the_grid_and_wraps) {
    program->out_idxs[0] = 0;
    cr_assert_eq(run2(-3.5, 0), -3.5);
    cr_assert_eq(run2(5.3, 0), 5.0);   /* floor(10.6) = 10 -> 5.0 */
    cr_assert_eq(run2(-0.2, 0), -0.5); /* floor(-0.4) = -1 -> -0.5 */
    cr_assert_eq(run2(9.0, 0), -7.0);  /* 18 wraps in 5 signed bits to -14 -> -7.0 */
    cr_assert_eq(run2(1e300, 0), 0.0); /* 2e300 is a multiple of 2^5: wraps to 0, no UB */
    program->out_idxs[0] = 1;
    cr_assert_eq(run2(0, 5), 1.0);  /* 5 & 3 */
    cr_assert_eq(run2(0, -1), 3.0); /* -1 & 3 */
    program->inp_shifts[1] = 1;
    cr_assert_eq(run2(0, 1.5), 3.0); /* read 2 * 1.5 */
}

Test(interp, add_and_sub_align_by_shift) {
    /* x + 4y (spec §4.5): F = max(1, 0 - 2) = 1, x_x + x_y * 2^3, f = 1 */
    emit(ALK_OP_ADD, (uint32_t[]){0, 1}, 2, (int64_t[]){2}, 1, (alk_qint){-8, 19.5, 0.5});
    cr_assert_eq(run2(-3.5, 2), 4.5);
    cr_assert_eq(run2(7.5, 3), 19.5);
    /* x - x/4 = 0.75x: F = max(1, 1 + 2) = 3, (4 x_x - x_x) at f = 3 */
    emit(ALK_OP_SUB, (uint32_t[]){0, 0}, 2, (int64_t[]){-2}, 1, (alk_qint){-6, 5.625, 0.125});
    cr_assert_eq(run2(2.5, 0), 1.875);
    cr_assert_eq(run2(-8, 0), -6.0);
    /* a coarser result drops low bits by an arithmetic (floor) shift: (x + y) at f = 0 */
    emit(ALK_OP_ADD, (uint32_t[]){0, 1}, 2, (int64_t[]){0}, 1, (alk_qint){-8, 10, 1});
    cr_assert_eq(run2(-3.5, 1), -3.0); /* -2.5 floors to -3 */
    /* x - 2y at step 2 (f = -1): F = 1, (x_x - 4 x_y) >> 2 */
    emit(ALK_OP_SUB, (uint32_t[]){0, 1}, 2, (int64_t[]){1}, 1, (alk_qint){-14, 6, 2});
    cr_assert_eq(run2(-0.5, 1), -4.0); /* (-1 - 4) >> 2 = -2: -2.5 floors to -4, not -2 */
    cr_assert_eq(run2(7.5, 1), 4.0);   /* (15 - 4) >> 2 = 2 */
}

/* An add whose aligned operands need more than 64 bits while its result fits (the adders of a
 * product by a 53-bit constant): x + y * 2^-62 at f = 1 aligns at F = max(1, 0 + 62) = 62, so
 * x_x is shifted left by 61 (15 * 2^61 > 2^63), then the sum is shifted back by 61. The result is
 * x + floor(y / 2^61) = x: int64 alignment would wrap x_x and give garbage. */
Test(interp, add_aligns_in_128_bits) {
    emit(ALK_OP_ADD, (uint32_t[]){0, 1}, 2, (int64_t[]){-62}, 1, X);
    cr_assert_eq(run2(7.5, 3), 7.5);
    cr_assert_eq(run2(-8, 3), -8.0);
    cr_assert_eq(run2(-3.5, 2), -3.5);
}

Test(interp, relu_and_quantize_wrap_to_their_format) {
    /* relu to (0, 7, 1): max(x_x, 0) >> 1, 3 unsigned bits */
    emit(ALK_OP_RELU, (uint32_t[]){0}, 1, NULL, 0, (alk_qint){0, 7, 1});
    cr_assert_eq(run2(5.5, 0), 5.0);
    cr_assert_eq(run2(-2, 0), 0.0);
    /* quantize x * 2^1 to (0, 3, 1): x_x >> (1 - 1 - 0), low 2 bits */
    emit(ALK_OP_QUANTIZE, (uint32_t[]){0}, 1, (int64_t[]){1}, 1, (alk_qint){0, 3, 1});
    cr_assert_eq(run2(-3.5, 0), 1.0); /* -7 & 3 */
    cr_assert_eq(run2(1.5, 0), 3.0);
    /* quantize x to signed (1, 1, 0) = (-2, 1, 1): x_x >> 1, 2 signed bits */
    emit(ALK_OP_QUANTIZE, (uint32_t[]){0}, 1, (int64_t[]){0}, 1, (alk_qint){-2, 1, 1});
    cr_assert_eq(run2(3.5, 0), -1.0); /* 7 >> 1 = 3 -> -1 */
    cr_assert_eq(run2(-2.5, 0), 1.0); /* -5 >> 1 = -3 -> 1 */
}

Test(interp, constants_and_constant_adds) {
    /* x + 3 * 2^-2: F = max(1, 2) = 2, 2 x_x + 3 at f = 2 */
    emit(ALK_OP_ADD_CONST, (uint32_t[]){0}, 1, (int64_t[]){3, 2}, 2, (alk_qint){-7.25, 8.25, 0.25});
    cr_assert_eq(run2(1.5, 0), 2.25);
    cr_assert_eq(run2(-8, 0), -7.25);
    /* x + 5 * 2^1 = x + 10 at f = 1 */
    emit(ALK_OP_ADD_CONST, (uint32_t[]){0}, 1, (int64_t[]){5, -1}, 2, (alk_qint){2, 17.5, 0.5});
    cr_assert_eq(run2(-3, 0), 7.0);
    emit(ALK_OP_CONST, NULL, 0, (int64_t[]){3}, 1, (alk_qint){0.75, 0.75, 0.25});
    cr_assert_eq(run2(0, 0), 0.75);
}

Test(interp, msb_mux_selects_on_the_top_bit) {
    /* x < 0 ? y : 2y (the false branch shifted by d = 1), result (0, 6, 1) */
    emit(ALK_OP_MUX, (uint32_t[]){1, 1, 0}, 3, (int64_t[]){1}, 1, (alk_qint){0, 6, 1});
    cr_assert_eq(run2(-0.5, 3), 3.0);
    cr_assert_eq(run2(0.0, 3), 6.0);
    /* an unsigned condition tests its top bit: y >= 2 ? y : 2y */
    emit(ALK_OP_MUX, (uint32_t[]){1, 1, 1}, 3, (int64_t[]){1}, 1, (alk_qint){0, 6, 1});
    cr_assert_eq(run2(0, 2), 2.0);
    cr_assert_eq(run2(0, 1), 2.0);
    cr_assert_eq(run2(0, 0), 0.0);
}

Test(interp, multiply) {
    emit(ALK_OP_MUL, (uint32_t[]){0, 1}, 2, NULL, 0, (alk_qint){-24, 22.5, 0.5});
    cr_assert_eq(run2(-2.5, 3), -7.5);
    cr_assert_eq(run2(7.5, 3), 22.5);
}

Test(interp, lookup_with_signed_producer_and_pad) {
    /* spec §4.4: producer (-3, 5, 1) has kif (1, 3, 0), pad 5, index x + 8 - 5 */
    emit(ALK_OP_QUANTIZE, (uint32_t[]){0}, 1, (int64_t[]){0}, 1, (alk_qint){-3, 5, 1});
    int32_t *values = alk_calloc(9, sizeof(int32_t));
    for (int j = 0; j < 9; j++) {
        values[j] = j * j;
    }
    cr_assert_eq(alk_program_add_table(program, "", (alk_qint){0, 64, 1}, 4, values, 9), 0);
    emit(ALK_OP_LOOKUP, (uint32_t[]){2}, 1, (int64_t[]){0}, 1, (alk_qint){0, 64, 1});
    cr_assert_eq(run2(-3, 0), 0.0);
    cr_assert_eq(run2(1, 0), 16.0);
    cr_assert_eq(run2(5, 0), 64.0);
}

Test(interp, bit_operations) {
    /* NOT of unsigned y in 2 bits */
    emit(ALK_OP_BIT_UNARY, (uint32_t[]){1}, 1, (int64_t[]){0}, 1, Y);
    cr_assert_eq(run2(0, 1), 2.0);
    /* NOT of signed x: ~5 = -6 -> -3.0 */
    emit(ALK_OP_BIT_UNARY, (uint32_t[]){0}, 1, (int64_t[]){0}, 1, X);
    cr_assert_eq(run2(2.5, 0), -3.0);
    /* any / all of y */
    emit(ALK_OP_BIT_UNARY, (uint32_t[]){1}, 1, (int64_t[]){1}, 1, (alk_qint){0, 1, 1});
    cr_assert_eq(run2(0, 0), 0.0);
    cr_assert_eq(run2(0, 2), 1.0);
    emit(ALK_OP_BIT_UNARY, (uint32_t[]){1}, 1, (int64_t[]){2}, 1, (alk_qint){0, 1, 1});
    cr_assert_eq(run2(0, 2), 0.0);
    cr_assert_eq(run2(0, 3), 1.0);
    /* x OP y at step 0.5: t = 0 + 1 - 0 = 1, so (x_x) OP (x_y << 1) */
    emit(ALK_OP_BIT_BINARY, (uint32_t[]){0, 1}, 2, (int64_t[]){0, 0}, 2, (alk_qint){0, 7.5, 0.5});
    cr_assert_eq(run2(3.5, 3), 3.0); /* 7 & 6 = 6 */
    emit(ALK_OP_BIT_BINARY, (uint32_t[]){0, 1}, 2, (int64_t[]){0, 1}, 2, (alk_qint){0, 7.5, 0.5});
    cr_assert_eq(run2(0.5, 2), 2.5); /* 1 | 4 = 5 */
    emit(ALK_OP_BIT_BINARY, (uint32_t[]){0, 1}, 2, (int64_t[]){0, 2}, 2, (alk_qint){0, 7.5, 0.5});
    cr_assert_eq(run2(3.5, 3), 0.5); /* 7 ^ 6 = 1 */
}

Test(interp, variadic_sum) {
    /* x - 2y + x/2: F = max(1 - 0, 0 - 1, 1 + 1) = 2, out f = 2 */
    emit(ALK_OP_SUM, (uint32_t[]){0, 1, 0}, 3, (int64_t[]){1, 0, 0, 1, 1, -1}, 6,
         (alk_qint){-18, 11.25, 0.25});
    cr_assert_eq(run2(2.5, 1), 1.75);
    cr_assert_eq(run2(-8, 3), -18.0);
    /* the same sum at f = 0 drops two bits by a floor shift */
    emit(ALK_OP_SUM, (uint32_t[]){0, 1, 0}, 3, (int64_t[]){1, 0, 0, 1, 1, -1}, 6,
         (alk_qint){-18, 11, 1});
    cr_assert_eq(run2(-2.5, 1), -6.0); /* (-10 - 8 - 5) >> 2 = -6: -5.75 floors to -6, not -5 */
    cr_assert_eq(run2(2.5, 1), 1.0);   /* (10 - 8 + 5) >> 2 = 1 */
    /* -x - y at step 2 (f = -1): F = 1, (-x_x - 2 x_y) >> 2 */
    emit(ALK_OP_SUM, (uint32_t[]){0, 1}, 2, (int64_t[]){0, 0, 0, 0}, 4, (alk_qint){-10, 8, 2});
    cr_assert_eq(run2(1.5, 3), -6.0); /* (-3 - 6) >> 2 = -3: -4.5 floors to -6, not -4 */
}

Test(interp, outputs_negate_shift_and_zero) {
    alk_program_free(program);
    cr_assert_eq(alk_program_new(1, 3, &program), ALK_OK);
    int64_t in0 = 0;
    alk_program_add_op(program, ALK_OP_READ, NULL, 0, &in0, 1, X, 0, 0);
    program->out_idxs[0] = 0;
    program->out_shifts[0] = 3;
    program->out_negs[0] = true;
    program->out_idxs[1] = -1;
    program->out_idxs[2] = 0;
    program->out_shifts[2] = 70;
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_interp_new(program, &interp, &diag), ALK_OK, "%s", diag.message);
    double in[2] = {1.5, NAN};
    double out[3];
    cr_assert_eq(alk_interp_run(interp, in, 1, out, &diag), ALK_OK);
    cr_assert_eq(out[0], -12.0);
    cr_assert_eq(out[1], 0.0);
    cr_assert_eq(out[2], ldexp(1.5, 70));
    cr_assert_eq(alk_interp_run(interp, in, 2, out, &diag), ALK_EINVAL);
    cr_assert_str_eq(diag.message, "sample 1: input 0 is not finite");
    alk_interp_free(interp);
}

Test(interp, mux_needing_two_realignments_is_refused) {
    emit(ALK_OP_MUX, (uint32_t[]){0, 1, 0}, 3, (int64_t[]){0}, 1, (alk_qint){-8, 7.75, 0.25});
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_interp_new(program, &interp, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "op 2 (msb-mux): both operands need realigning") != NULL, "%s",
              diag.message);
}
