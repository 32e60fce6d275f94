/* Helpers of the CMVM/SCM tests (see cmvm_testlib.h). */
#include "cmvm_testlib.h"

#include "core/io.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t tl_rand(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int64_t tl_rand_range(uint64_t *state, int64_t lo, int64_t hi) {
    return lo + (int64_t)(tl_rand(state) % (uint64_t)(hi - lo + 1));
}

void tl_eval_stage(const alk_program *p, const double *x, double *y) {
    double *buf = calloc(p->n_ops + 1, sizeof(double));
    cr_assert_not_null(buf);
    for (size_t i = 0; i < p->n_ops; i++) {
        const alk_alir_op *op = &p->ops[i];
        const uint32_t *addr = alk_alir_op_addr(p, op);
        const int64_t *data = alk_alir_op_data(p, op);
        switch (op->opcode) {
        case ALK_OP_READ:
            cr_assert_eq(op->n_data, 1);
            cr_assert_lt((uint64_t)data[0], p->n_in);
            buf[i] = ldexp(x[data[0]], p->inp_shifts[data[0]]);
            break;
        case ALK_OP_ADD:
        case ALK_OP_SUB:
            cr_assert_eq(op->n_addr, 2, "op %zu", i);
            cr_assert_eq(op->n_data, 1, "op %zu", i);
            cr_assert_lt(addr[0], i, "op %zu reads a later slot", i);
            cr_assert_lt(addr[1], i, "op %zu reads a later slot", i);
            buf[i] = op->opcode == ALK_OP_ADD ? buf[addr[0]] + ldexp(buf[addr[1]], (int)data[0])
                                              : buf[addr[0]] - ldexp(buf[addr[1]], (int)data[0]);
            break;
        default:
            cr_assert_fail("op %zu: unexpected opcode %d", i, op->opcode);
        }
    }
    for (uint32_t j = 0; j < p->n_out; j++) {
        int32_t idx = p->out_idxs[j];
        if (idx < 0) {
            y[j] = 0.0;
            continue;
        }
        cr_assert_lt((size_t)idx, p->n_ops);
        double v = ldexp(buf[idx], p->out_shifts[j]);
        y[j] = p->out_negs[j] ? -v : v;
    }
    free(buf);
}

void tl_format_stage(const alk_program *p, alk_buf *out) {
    alk_buf_printf(out, "stage %u %u %zu\ninp_shifts", p->n_in, p->n_out, p->n_ops);
    for (uint32_t i = 0; i < p->n_in; i++) {
        alk_buf_printf(out, " %d", p->inp_shifts[i]);
    }
    alk_buf_puts(out, "\nout_idxs");
    for (uint32_t i = 0; i < p->n_out; i++) {
        alk_buf_printf(out, " %d", p->out_idxs[i]);
    }
    alk_buf_puts(out, "\nout_shifts");
    for (uint32_t i = 0; i < p->n_out; i++) {
        alk_buf_printf(out, " %d", p->out_shifts[i]);
    }
    alk_buf_puts(out, "\nout_negs");
    for (uint32_t i = 0; i < p->n_out; i++) {
        alk_buf_printf(out, " %d", p->out_negs[i] ? 1 : 0);
    }
    alk_buf_puts(out, "\n");
    for (size_t i = 0; i < p->n_ops; i++) {
        const alk_alir_op *op = &p->ops[i];
        const uint32_t *addr = alk_alir_op_addr(p, op);
        const int64_t *data = alk_alir_op_data(p, op);
        long long id0 = op->opcode == ALK_OP_READ ? (long long)data[0] : (long long)addr[0];
        long long id1 = op->opcode == ALK_OP_READ ? -1LL : (long long)addr[1];
        long long d = op->opcode == ALK_OP_READ ? 0LL : (long long)data[0];
        alk_buf_printf(out, "op %d %lld %lld %lld %.9g %.9g %.9g %.9g %.9g\n", op->opcode, id0, id1,
                       d, (double)(float)op->qint.min, (double)(float)op->qint.max,
                       (double)(float)op->qint.step, (double)(float)op->latency,
                       (double)(float)op->cost);
    }
}

const char *tl_data_path(const char *name) {
    static char path[4096];
    const char *root = getenv("ALK_SOURCE_ROOT");
    cr_assert_not_null(root, "ALK_SOURCE_ROOT is not set (run the tests through meson)");
    (void)snprintf(path, sizeof(path), "%s/tests/data/cmvm/%s", root, name);
    return path;
}

void tl_read_data(const char *name, alk_buf *out) {
    alk_buf raw;
    alk_buf_init(&raw);
    alk_buf_init(out);
    alk_diag diag = {{0}};
    cr_assert_eq(alk_read_file(tl_data_path(name), 1 << 24, &raw, &diag), ALK_OK, "%s",
                 diag.message);
    if (alk_is_gzip(raw.data, raw.len)) {
        cr_assert_eq(alk_gunzip(raw.data, raw.len, 1 << 26, out, &diag), ALK_OK, "%s: %s", name,
                     diag.message);
    } else {
        alk_buf_append(out, raw.data, raw.len);
    }
    alk_buf_putc(out, '\0');
    cr_assert_eq(alk_buf_error(out), ALK_OK);
    out->len--;
    alk_buf_fini(&raw);
}
