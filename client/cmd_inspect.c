/*
 * `alkaidc inspect MODEL`: a human-readable summary of an ALIR program — shape, op count by
 * opcode, total cost, latency span, input and output intervals with their (k, i, f) formats, and
 * the lookup tables. A Keras model file is listed layer by layer instead (inspect_keras.c).
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

static void usage(FILE *to) {
    fprintf(to, "usage: alkaidc inspect MODEL.json[.gz]\n"
                "       alkaidc inspect MODEL.keras|MODEL.h5 [--plugin-dir DIR]...\n"
                "       alkaidc inspect MODEL.json --weights W.h5 [--plugin-dir DIR]...\n"
                "\n"
                "Summarises an ALIR program, or lists every layer of a Keras model file: name,\n"
                "class, module, input and output shapes, the weights stored for it and whether a\n"
                "handler exists (the reason when not).\n");
}

/* Whether `path` is a Keras model file, by its name or its first bytes. */
static bool keras_model(const char *path) {
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f != NULL ? fread(head, 1, sizeof(head), f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    return cli_is_keras_model(path, head, n);
}

int cmd_inspect(int argc, char **argv) {
    enum { MAX_DIRS = 16 };
    const char *path = NULL;
    const char *weights = NULL;
    const char *dirs[MAX_DIRS];
    size_t n_dirs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_OK;
        }
        if ((strcmp(argv[i], "--weights") == 0 || strcmp(argv[i], "--plugin-dir") == 0) &&
            i + 1 < argc) {
            if (argv[i][2] == 'w') {
                weights = argv[++i];
            } else if (n_dirs < MAX_DIRS) {
                dirs[n_dirs++] = argv[++i];
            } else {
                return cli_usage_error("inspect", "at most %d --plugin-dir", MAX_DIRS);
            }
        } else if (argv[i][0] == '-' || path != NULL) {
            return cli_usage_error("inspect", "unexpected argument '%s'", argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (path == NULL) {
        return cli_usage_error("inspect", "expects a MODEL argument");
    }
    if (weights != NULL || keras_model(path)) {
        return cli_inspect_keras(path, weights, dirs, n_dirs);
    }
    alk_diag diag = {{0}};
    alk_program *program = NULL;
    int rv = alk_alir_read_file(path, &program, &diag);
    if (rv != ALK_OK) {
        return cli_fail(rv, &diag);
    }
    print_summary(path, program);
    alk_program_free(program);
    return EXIT_OK;
}
