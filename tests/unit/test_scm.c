/*
 * SCM tests. Oracles: the reference's regression table and 19-bit averages (tests/test_scm.py,
 * spec cmvm.md §9.7), exact evaluation of the program (x = 1 gives the constant), and golden
 * outputs recorded from the reference C++ core.
 */
#include "cmvm/cmvm.h"
#include "cmvm_testlib.h"
#include "core/alloc.h"
#include "core/io.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const alk_qint default_q = {-128.0, 127.0, 1.0};

static alk_scm_options scm_options(int k, alk_qint q, alk_cmvm_mode mode) {
    alk_scm_options o;
    alk_scm_options_init(&o);
    o.k = k;
    o.interval = q;
    o.mode = mode;
    return o;
}

static double value_at_one(const alk_program *p) {
    double x = 1.0, y;
    tl_eval_stage(p, &x, &y);
    return y;
}

/* Adders of the reference's (compat) solution; the program must evaluate to c exactly. */
static size_t solve_adders(double c, int k) {
    alk_program *p = NULL;
    alk_diag diag = {{0}};
    alk_scm_options o = scm_options(k, default_q, ALK_CMVM_COMPAT);
    cr_assert_eq(alk_scm_solve(c, &o, &p, &diag), ALK_OK, "%g: %s", c, diag.message);
    cr_assert_eq(value_at_one(p), c, "%g (k=%d) evaluates to %g", c, k, value_at_one(p));
    size_t adders = alk_cmvm_count_adders(p);
    alk_program_free(p);
    return adders;
}

Test(scm, paper_regressions) {
    static const struct {
        double c;
        int k;
        size_t adders;
    } cases[] = {
        {805, 0, 3},  {363, 0, 3}, {4875, 0, 3}, {3633, 0, 3},
        {2325, 1, 3}, {105, 0, 2}, {1395, 2, 3}, {46425, 2, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = solve_adders(cases[i].c, cases[i].k);
        cr_expect_eq(got, cases[i].adders, "%g (k=%d): %zu adders, want %zu", cases[i].c,
                     cases[i].k, got, cases[i].adders);
    }
    /* Spec §9.7: the scratch build gives 4 for 2325 at k=0 and 5 for 46425 at k=0. */
    cr_expect_eq(solve_adders(2325, 0), 4);
    cr_expect_eq(solve_adders(46425, 0), 5);
}

/* The 100 odd 19-bit constants of the reference's gate: Python's
 * random.Random(0xC0DE), randrange(1, 1 << 19) | 1. */
static const int64_t constants19[100] = {
    14069,  49513,  478695, 44269,  215169, 225313, 362679, 398035, 236759, 257421, 162627, 507431,
    162705, 247997, 188443, 504305, 353635, 34447,  366877, 330201, 408845, 270403, 83505,  313905,
    490413, 336961, 223787, 134073, 244625, 59577,  469567, 325727, 76627,  1719,   69559,  494459,
    405073, 329835, 262461, 293453, 200465, 6289,   453915, 505791, 345829, 41855,  506367, 193511,
    342555, 415569, 155915, 507461, 316673, 432411, 251277, 403899, 332065, 379429, 222561, 309957,
    88855,  470753, 68269,  275691, 367285, 25235,  9017,   179769, 206375, 148813, 71811,  157937,
    8657,   369209, 347857, 176917, 168425, 228799, 280813, 9101,   382649, 268693, 521013, 289193,
    14457,  443271, 446063, 177173, 430933, 494949, 360797, 34015,  396175, 342723, 80477,  445515,
    390005, 289891, 316651, 23967,
};

Test(scm, average_adders_19_bit, .timeout = 120) {
    static const double gates[2] = {4.38, 4.33};
    for (int k = 0; k < 2; k++) {
        size_t total = 0;
        for (int i = 0; i < 100; i++) {
            total += solve_adders((double)constants19[i], k);
        }
        double average = (double)total / 100.0;
        cr_expect_leq(average, gates[k] + 0.05, "k=%d: average %g adders", k, average);
    }
}

Test(scm, every_width_reproduces_the_constant, .timeout = 120) {
    static const struct {
        int k;
        int bits;
    } grid[] = {{0, 8},  {1, 8},  {2, 8},  {3, 8},  {0, 16},
                {1, 16}, {2, 16}, {0, 24}, {1, 24}, {0, 32}};
    uint64_t s = 0xC0DE;
    for (size_t g = 0; g < sizeof(grid) / sizeof(grid[0]); g++) {
        int count = grid[g].bits >= 24 ? 25 : 60;
        for (int i = 0; i < count; i++) {
            int64_t half = (int64_t)1 << grid[g].bits;
            int64_t v = tl_rand_range(&s, -half, half);
            if (v == 0) {
                continue;
            }
            double c = ldexp((double)v, (int)tl_rand_range(&s, -8, 8));
            (void)solve_adders(c, grid[g].k);
        }
    }
}

Test(scm, refuses_bad_arguments) {
    alk_program *p = NULL;
    alk_diag diag = {{0}};
    alk_scm_options o = scm_options(1, default_q, ALK_CMVM_IMPROVED);
    cr_expect_eq(alk_scm_solve(0.0, &o, &p, &diag), ALK_EINVAL);
    cr_expect_eq(alk_scm_solve(NAN, &o, &p, &diag), ALK_EINVAL);
    cr_expect_eq(alk_scm_solve(INFINITY, &o, &p, &diag), ALK_EINVAL);
    o.k = -1;
    cr_expect_eq(alk_scm_solve(3.0, &o, &p, &diag), ALK_EINVAL);
    o.k = ALK_SCM_MAX_K + 1;
    cr_expect_eq(alk_scm_solve(3.0, &o, &p, &diag), ALK_EINVAL);
}

Test(scm, powers_of_two_and_negatives) {
    static const double cs[] = {1.0, -1.0, 0.25, -64.0, 3.0, -3.0, -0.375, 1e6, -7.0 / 1024};
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
        size_t adders = solve_adders(cs[i], 2);
        double odd = fabs(cs[i]);
        while (fmod(odd, 2.0) == 0.0) {
            odd /= 2.0;
        }
        while (odd != floor(odd)) {
            odd *= 2.0;
        }
        if (odd == 1.0) {
            cr_expect_eq(adders, 0, "%g needs no adder", cs[i]);
        }
    }
}

/*
 * Compares every case of a golden file (plain or gzip) with the solver, op for op: ops,
 * intervals, latencies and costs, in the modes of `modes` (bit 0 compat, bit 1 improved). Compat
 * mode must reproduce the reference; improved mode's bounded search finds the same programs on
 * these constants. Returns the number of cases.
 */
enum { COMPAT = 1, IMPROVED = 2 };

static int check_golden_file(const char *name, unsigned modes) {
    alk_buf file;
    tl_read_data(name, &file);
    alk_diag diag = {{0}};
    const char *p = file.data;
    int cases = 0;
    for (;;) {
        const char *start = strstr(p, "case\nscm ");
        if (start == NULL) {
            break;
        }
        double c, k;
        alk_qint q;
        char *end;
        const char *t = start + 9;
        c = strtod(t, &end);
        k = strtod(end, &end);
        q.min = strtod(end, &end);
        q.max = strtod(end, &end);
        q.step = strtod(end, &end);
        const char *expect = strstr(end, "expect\n");
        cr_assert_not_null(expect);
        expect += 7;
        const char *stop = strstr(expect, "end\n");
        cr_assert_not_null(stop);
        size_t want_len = (size_t)(stop - expect);
        for (int mode = 0; mode < 2; mode++) {
            if (!(modes & (1u << mode))) {
                continue;
            }
            alk_scm_options o =
                scm_options((int)k, q, mode == 0 ? ALK_CMVM_COMPAT : ALK_CMVM_IMPROVED);
            alk_program *prog = NULL;
            cr_assert_eq(alk_scm_solve(c, &o, &prog, &diag), ALK_OK, "%s", diag.message);
            alk_buf got;
            alk_buf_init(&got);
            alk_buf_puts(&got, "result 1\n");
            tl_format_stage(prog, &got);
            cr_expect(got.len == want_len && memcmp(got.data, expect, want_len) == 0,
                      "%s: constant %.17g k=%g (%s) differs from the reference:\n got:\n%s\nwant:\n"
                      "%.*s",
                      name, c, k, mode == 0 ? "compat" : "improved", got.data, (int)want_len,
                      expect);
            alk_buf_fini(&got);
            alk_program_free(prog);
        }
        p = stop;
        cases++;
    }
    alk_buf_fini(&file);
    return cases;
}

/* Golden outputs of the reference core (tests/data/cmvm/README.md). */
Test(scm, golden_matches_reference, .timeout = 120) {
    cr_expect_eq(check_golden_file("golden_scm.txt", COMPAT | IMPROVED), 84);
}

/* The constants of the reference's own SCM tests (tests/test_scm.py: the width grid, the paper
 * regressions, the 19-bit gate), with the reference core's solutions. */
Test(scm, golden_reference_test_constants, .timeout = 120) {
    cr_expect_eq(check_golden_file("golden_scm_reference_tests.txt.gz", COMPAT), 1213);
}

Test(scm, golden_reference_test_constants_improved, .timeout = 120) {
    cr_expect_eq(check_golden_file("golden_scm_reference_tests.txt.gz", IMPROVED), 1213);
}

Test(scm, alloc_failures_are_clean) {
    long live = alk_alloc_live();
    unsigned long n;
    for (n = 1; n < 100000; n++) {
        alk_program *p = NULL;
        alk_diag diag = {{0}};
        alk_alloc_fail_at(n, false);
        alk_scm_options o = scm_options(1, default_q, ALK_CMVM_IMPROVED);
        int rv = alk_scm_solve(805.0, &o, &p, &diag);
        alk_alloc_fail_at(0, false);
        if (rv == ALK_OK) {
            cr_expect_eq(value_at_one(p), 805.0);
            alk_program_free(p);
            cr_expect_eq(alk_alloc_live(), live);
            break;
        }
        cr_assert_eq(rv, ALK_ENOMEM, "allocation %lu: %s", n, diag.message);
        cr_assert_eq(alk_alloc_live(), live, "allocation %lu leaked", n);
    }
    cr_expect_gt(n, 20);
}

/*
 * Whether x = 1 through the SCM program gives exactly c, with exact dyadic values (a double
 * evaluation rounds the wide partial sums of 50-odd-bit constants).
 */
__extension__ typedef __int128 i128;
typedef struct dyadic {
    i128 m; /* value m * 2^e, m odd or 0 */
    int e;
} dyadic;

static dyadic dy_norm(i128 m, int e) {
    while (m != 0 && (m & 1) == 0) {
        m /= 2;
        e++;
    }
    return (dyadic){m, m == 0 ? 0 : e};
}

/* a + sign * b * 2^shift, exactly (the test's values stay far below 2^127). */
static dyadic dy_add(dyadic a, dyadic b, int64_t shift, int sign) {
    b.e += (int)shift;
    if (a.m == 0 || b.m == 0) {
        return a.m == 0 ? dy_norm(sign * b.m, b.e) : a;
    }
    int lo = a.e < b.e ? a.e : b.e;
    cr_assert(a.e - lo < 100 && b.e - lo < 100, "exponents too far apart");
    return dy_norm(a.m * ((i128)1 << (a.e - lo)) + sign * b.m * ((i128)1 << (b.e - lo)), lo);
}

static bool exactly_at_one(const alk_program *p, double c) {
    dyadic *v = calloc(p->n_ops + 1, sizeof(dyadic));
    cr_assert_not_null(v);
    for (size_t i = 0; i < p->n_ops; i++) {
        const alk_alir_op *op = &p->ops[i];
        const uint32_t *addr = alk_alir_op_addr(p, op);
        int64_t data = alk_alir_op_data(p, op)[0];
        if (op->opcode == ALK_OP_READ) {
            v[i] = (dyadic){1, p->inp_shifts[0]};
        } else {
            v[i] = dy_add(v[addr[0]], v[addr[1]], data, op->opcode == ALK_OP_ADD ? 1 : -1);
        }
    }
    dyadic got = p->out_idxs[0] < 0 ? (dyadic){0, 0} : v[p->out_idxs[0]];
    free(v);
    got = dy_norm(p->out_negs[0] ? -got.m : got.m, got.e + p->out_shifts[0]);
    int e2;
    double f = frexp(c, &e2);
    dyadic want = dy_norm((i128)ldexp(f, 53), e2 - 53);
    return got.m == want.m && got.e == want.e;
}

/*
 * Issue 14: float64 constants with long odd parts (a mean over 3 or 9, a rescaling by 0.1 or
 * 0.7, and 100 random constants in (0, 1)) in improved mode, with the tracer's k = 2: exact,
 * never more adders than the NAF sum, and never more than compat where compat finishes -- 1/9
 * in half a second (run here); 1/3 in minutes, 6 adders (recorded from a compat run; the
 * reference needs over 300 s); 0.1 not at all (the reference's "wrong value"), 0.7 not within
 * 40 minutes. Nor more than these hand-built programs:
 *   1/3: odd part (2^54 - 1) / 3 = 27 ones at every other bit: t = x + 4x (1 adder),
 *        u = t + 16x = 21x (2), v = u + 2^6 u + 2^12 u (4: nine ones), v + 2^18 v + 2^36 v (6).
 *   0.1: odd part 0xCCCCCCCCCCCCD = 3 * 4 * 0x1111111111111 + 1; 0x1111111111111 (13 ones
 *        4 bits apart): a = x + 2^4 x, b = a + 2^8 a, c = b + 2^16 b, d = c + 2^32 b,
 *        e = d + 2^48 x (5), f = e + 2e (6), f * 4 + x (7).
 *   0.7: odd part 0xB333333333333 = 3 * 0x1111111111111 + 2^51: e as above (5), f = e + 2e (6),
 *        f + 2^51 x (7).
 * The time goal (<= 100 ms each) is bench_cmvm --scm's.
 */
/* NAF weight of the odd part of |c| (the plain form needs weight - 1 adders). */
static int naf_weight_of(double c) {
    double odd = fabs(c);
    while (odd != floor(odd)) {
        odd *= 2.0;
    }
    uint64_t n = (uint64_t)odd;
    while ((n & 1) == 0) {
        n >>= 1;
    }
    return __builtin_popcountll((n * 3) ^ n);
}

static size_t improved_adders(double c) {
    alk_scm_options o = scm_options(2, default_q, ALK_CMVM_IMPROVED);
    alk_program *p = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_scm_solve(c, &o, &p, &diag), ALK_OK, "%.17g: %s", c, diag.message);
    cr_assert(exactly_at_one(p, c), "%.17g is not reproduced exactly", c);
    cr_assert(!exactly_at_one(p, nextafter(c, 2.0)), "the check cannot tell one ulp");
    size_t adders = alk_cmvm_count_adders(p);
    cr_expect_leq(adders, (size_t)naf_weight_of(c) - 1, "%.17g: %zu adders", c, adders);
    alk_program_free(p);
    return adders;
}

Test(scm, improved_long_odd_parts, .timeout = 120) {
    cr_expect_leq(improved_adders(1.0 / 3.0), 6);
    cr_expect_leq(improved_adders(1.0 / 9.0), solve_adders(1.0 / 9.0, 2));
    cr_expect_leq(improved_adders(0.1), 7);
    cr_expect_leq(improved_adders(-0.7), 7);
    uint64_t s = 0x5C3;
    for (int i = 0; i < 100; i++) {
        double c = (double)((tl_rand(&s) >> 11) | 1) * 0x1p-53;
        (void)improved_adders(c);
    }
}

/* Improved mode's long odd parts (greedy paths, the repeating-pattern form): a sample of the
 * allocations of 0.1 (a pattern times 3) fails, each cleanly. */
Test(scm, alloc_failures_are_clean_long_odd_parts, .timeout = 120) {
    alk_scm_options o = scm_options(2, default_q, ALK_CMVM_IMPROVED);
    alk_program *p = NULL;
    alk_alloc_fail_at(0, false);
    cr_assert_eq(alk_scm_solve(0.1, &o, &p, NULL), ALK_OK);
    unsigned long total = alk_alloc_count();
    alk_program_free(p);
    long live = alk_alloc_live();
    for (unsigned long n = 1; n <= total; n += n < 64 ? 1 : total / 97 + 1) {
        alk_diag diag = {{0}};
        p = NULL;
        alk_alloc_fail_at(n, false);
        int rv = alk_scm_solve(0.1, &o, &p, &diag);
        alk_alloc_fail_at(0, false);
        if (rv == ALK_OK) {
            cr_expect(exactly_at_one(p, 0.1));
            alk_program_free(p);
        } else {
            cr_assert_eq(rv, ALK_ENOMEM, "allocation %lu: %s", n, diag.message);
        }
        cr_assert_eq(alk_alloc_live(), live, "allocation %lu leaked", n);
    }
}

Test(scm, cancelled_search_stops) {
    atomic_bool cancel;
    atomic_init(&cancel, true);
    alk_scm_options o = scm_options(2, default_q, ALK_CMVM_COMPAT);
    o.cancel = &cancel;
    alk_program *p = NULL;
    alk_diag diag = {{0}};
    cr_expect_eq(alk_scm_solve(1.0 / 3.0, &o, &p, &diag), ALK_ECANCELED);
    cr_expect_null(p);
    cr_expect_not_null(strstr(diag.message, "cancelled"), "%s", diag.message);
}
