/*
 * `alkaidc inspect MODEL`: a human-readable summary of an ALIR program — shape, op count by
 * opcode, total cost, latency span, input and output intervals with their (k, i, f) formats, and
 * the lookup tables.
 */
#include "cli.h"

#include "alir/json.h"
#include "alir/kif.h"
#include "core/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void print_qint(alk_qint q) {
    char lo[ALK_FMT_DOUBLE_MAX];
    char hi[ALK_FMT_DOUBLE_MAX];
    char step[ALK_FMT_DOUBLE_MAX];
    (void)alk_fmt_double(lo, q.min);
    (void)alk_fmt_double(hi, q.max);
    (void)alk_fmt_double(step, q.step);
    alk_kif kif = alk_kif_of(q);
    printf("[%s, %s] step %s  kif (%d, %d, %d)", lo, hi, step, kif.k, kif.i, kif.f);
}

static void print_op_counts(const alk_program *program) {
    size_t counts[ALK_OPCODE_MAX - ALK_OPCODE_MIN + 1] = {0};
    for (size_t i = 0; i < program->n_ops; i++) {
        counts[program->ops[i].opcode - ALK_OPCODE_MIN]++;
    }
    printf("ops: %zu\n", program->n_ops);
    for (int opcode = ALK_OPCODE_MIN; opcode <= ALK_OPCODE_MAX; opcode++) {
        size_t n = counts[opcode - ALK_OPCODE_MIN];
        if (n > 0) {
            printf("  %3d %-10s %zu\n", opcode, alk_opcode_name(opcode), n);
        }
    }
}

/* The interval an input is read with: the last read op of it, else (0, 0, 1) like the reference. */
static alk_qint input_qint(const alk_program *program, uint32_t n) {
    alk_qint q = {0.0, 0.0, 1.0};
    for (size_t i = 0; i < program->n_ops; i++) {
        const alk_alir_op *op = &program->ops[i];
        if (op->opcode == ALK_OP_READ && alk_alir_op_data(program, op)[0] == n) {
            q = op->qint;
        }
    }
    return q;
}

/* The interval of output j: its op's, scaled by the output shift and negated when asked. */
static alk_qint output_qint(const alk_program *program, uint32_t j) {
    alk_qint q = program->ops[program->out_idxs[j]].qint;
    double scale = ldexp(1.0, program->out_shifts[j]);
    q = (alk_qint){q.min * scale, q.max * scale, q.step * scale};
    if (program->out_negs[j]) {
        q = (alk_qint){-q.max, -q.min, q.step};
    }
    return q;
}

static void print_summary(const char *path, const alk_program *program) {
    printf("file: %s\n", path);
    printf("shape: %u inputs, %u outputs\n", program->n_in, program->n_out);
    print_op_counts(program);
    double lat_min;
    double lat_max;
    alk_program_latency(program, &lat_min, &lat_max);
    char text[ALK_FMT_DOUBLE_MAX];
    (void)alk_fmt_double(text, alk_program_cost(program));
    printf("cost: %s\n", text);
    (void)alk_fmt_double(text, lat_min);
    printf("latency: %s", text);
    (void)alk_fmt_double(text, lat_max);
    printf(" .. %s\n", text);
    printf("carry_size: %lld  adder_size: %lld\n", (long long)program->carry_size,
           (long long)program->adder_size);
    printf("inputs:\n");
    for (uint32_t n = 0; n < program->n_in; n++) {
        printf("  %4u: shift %d  ", n, program->inp_shifts[n]);
        print_qint(input_qint(program, n));
        printf("\n");
    }
    printf("outputs:\n");
    for (uint32_t j = 0; j < program->n_out; j++) {
        if (program->out_idxs[j] < 0) {
            printf("  %4u: constant 0\n", j);
            continue;
        }
        printf("  %4u: op %d shift %d%s  ", j, program->out_idxs[j], program->out_shifts[j],
               program->out_negs[j] ? " negated" : "");
        print_qint(output_qint(program, j));
        printf("\n");
    }
    printf("lookup tables: %zu\n", program->n_tables);
    for (size_t t = 0; t < program->n_tables; t++) {
        const alk_table *table = &program->tables[t];
        printf("  %4zu: %zu entries, inp_width %lld, out ", t, table->len,
               (long long)table->inp_width);
        print_qint(table->out_qint);
        printf(", hash %s\n", table->hash[0] != '\0' ? table->hash : "(none)");
    }
}

int cmd_inspect(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: alkaidc inspect MODEL.json[.gz]\n\nSummarises an ALIR program.\n");
        return EXIT_OK;
    }
    if (argc != 2) {
        return cli_usage_error("inspect", "expects exactly one MODEL argument");
    }
    alk_diag diag = {{0}};
    alk_program *program = NULL;
    int rv = alk_alir_read_file(argv[1], &program, &diag);
    if (rv != ALK_OK) {
        return cli_fail(rv, &diag);
    }
    print_summary(argv[1], program);
    alk_program_free(program);
    return EXIT_OK;
}
