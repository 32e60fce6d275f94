/*
 * `alkaidc run MODEL [--input FILE] [--output FILE]`: evaluates an ALIR program on text samples.
 *
 * Input: one sample per line, n_in numbers separated by spaces, tabs or commas; blank lines and
 * lines starting with '#' are skipped. Output: one line per sample, the n_out values in Python
 * repr form (shortest round-trip), space-separated. Samples stream through in batches, so inputs
 * of any length run in constant memory.
 */
#include "cli.h"

#include "alir/interp.h"
#include "alir/json.h"
#include "core/alloc.h"
#include "core/numfmt.h"
#include "core/vec.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 1024 };

static void usage(FILE *to) {
    fprintf(to, "usage: alkaidc run MODEL.json[.gz] [--input FILE] [--output FILE]\n"
                "\n"
                "Runs the ALIR program MODEL on samples, bit-exactly.\n"
                "  -i, --input FILE   samples, one per line (default: standard input)\n"
                "  -o, --output FILE  results, one line per sample (default: standard output)\n");
}

/* Parses one line into `values` (n numbers). Returns ALK_OK, or ALK_EINVAL naming the column. */
static int parse_sample(const char *line, size_t line_no, uint32_t n, double *values,
                        alk_diag *diag) {
    const char *p = line;
    uint32_t count = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r' || *p == '\n') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || (*end != '\0' && strchr(" \t,\r\n", *end) == NULL)) {
            return alk_diag_set(diag, ALK_EINVAL, "line %zu, column %zu: not a number", line_no,
                                (size_t)(p - line) + 1);
        }
        if (isnan(v) || isinf(v)) {
            return alk_diag_set(diag, ALK_EINVAL, "line %zu, column %zu: value is not finite",
                                line_no, (size_t)(p - line) + 1);
        }
        if (count == n) {
            return alk_diag_set(diag, ALK_EINVAL, "line %zu: more than %u values", line_no, n);
        }
        values[count++] = v;
        p = end;
    }
    if (count != n) {
        return alk_diag_set(diag, ALK_EINVAL, "line %zu: %u values, the model has %u inputs",
                            line_no, count, n);
    }
    return ALK_OK;
}

static bool is_blank_or_comment(const char *line) {
    const char *p = line + strspn(line, " \t\r\n");
    return *p == '\0' || *p == '#';
}

static int print_outputs(FILE *out, const double *values, size_t n_samples, uint32_t n_out) {
    char text[ALK_FMT_DOUBLE_MAX];
    for (size_t s = 0; s < n_samples; s++) {
        for (uint32_t j = 0; j < n_out; j++) {
            (void)alk_fmt_double(text, values[s * n_out + j]);
            fputs(text, out);
            fputc(j + 1 < n_out ? ' ' : '\n', out);
        }
        if (n_out == 0) {
            fputc('\n', out);
        }
    }
    return ferror(out) ? ALK_EIO : ALK_OK;
}

/* Streams samples from `in` through `interp` to `out`. */
static int run_stream(const alk_interp *interp, const alk_program *program, FILE *in, FILE *out,
                      alk_diag *diag) {
    size_t n_in = program->n_in;
    size_t n_out = program->n_out;
    double *inputs = alk_calloc(BATCH, (n_in == 0 ? 1 : n_in) * sizeof(double));
    double *outputs = alk_calloc(BATCH, (n_out == 0 ? 1 : n_out) * sizeof(double));
    char *line = NULL;
    size_t line_cap = 0;
    int rv = ALK_OK;
    if (inputs == NULL || outputs == NULL) {
        rv = alk_diag_set(diag, ALK_ENOMEM, "out of memory for a batch of samples");
        goto done;
    }
    size_t line_no = 0;
    size_t batch = 0;
    size_t first_sample = 0;
    for (;;) {
        ssize_t got = getline(&line, &line_cap, in);
        if (got >= 0) {
            line_no++;
            if (is_blank_or_comment(line)) {
                continue;
            }
            rv = parse_sample(line, line_no, (uint32_t)n_in, inputs + batch * n_in, diag);
            if (rv != ALK_OK) {
                break;
            }
            batch++;
        }
        if (batch == BATCH || (got < 0 && batch > 0)) {
            rv = alk_interp_run(interp, inputs, batch, outputs, diag);
            if (rv != ALK_OK) {
                /* the interpreter counts from the batch start; name the absolute sample */
                alk_diag_prefix(diag, "batch starting at sample %zu: ", first_sample);
                break;
            }
            rv = print_outputs(out, outputs, batch, (uint32_t)n_out);
            if (rv != ALK_OK) {
                rv = alk_diag_set(diag, rv, "cannot write the results: %s", strerror(errno));
                break;
            }
            first_sample += batch;
            batch = 0;
        }
        if (got < 0) {
            if (ferror(in)) {
                rv = alk_diag_set(diag, ALK_EIO, "cannot read the samples: %s", strerror(errno));
            }
            break;
        }
    }
done:
    free(line); /* getline allocates with the C library */
    alk_free(inputs);
    alk_free(outputs);
    return rv;
}

/* Opens `path` with `mode`, or hands back `standard` for "-". */
static int open_stream(const char *path, const char *mode, FILE *standard, FILE **ret_stream,
                       alk_diag *diag) {
    if (strcmp(path, "-") == 0) {
        *ret_stream = standard;
        return ALK_OK;
    }
    FILE *stream = fopen(path, mode);
    if (stream == NULL) {
        return alk_diag_set(diag, ALK_EIO, "%s: %s", path, strerror(errno));
    }
    *ret_stream = stream;
    return ALK_OK;
}

int cmd_run(int argc, char **argv) {
    static const struct option options[] = {
        {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *input_path = "-";
    const char *output_path = "-";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:o:h", options, NULL)) != -1) {
        switch (c) {
        case 'i':
            input_path = optarg;
            break;
        case 'o':
            output_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("run", "unknown option");
        }
    }
    if (argc - optind != 1) {
        return cli_usage_error("run", "expects exactly one MODEL argument");
    }
    alk_diag diag = {{0}};
    alk_program *program = NULL;
    alk_interp *interp = NULL;
    FILE *in = stdin;
    FILE *out = stdout;
    int rv = alk_alir_read_file(argv[optind], &program, &diag);
    if (rv == ALK_OK) {
        rv = alk_interp_new(program, &interp, &diag);
    }
    if (rv == ALK_OK) {
        rv = open_stream(input_path, "re", stdin, &in, &diag);
    }
    if (rv == ALK_OK) {
        rv = open_stream(output_path, "we", stdout, &out, &diag);
    }
    if (rv == ALK_OK) {
        rv = run_stream(interp, program, in, out, &diag);
    }
    if (in != stdin) {
        fclose(in);
    }
    if (out != stdout && fclose(out) != 0 && rv == ALK_OK) {
        rv = alk_diag_set(&diag, ALK_EIO, "%s: %s", output_path, strerror(errno));
    }
    alk_interp_free(interp);
    alk_program_free(program);
    return rv == ALK_OK ? EXIT_OK : cli_fail(rv, &diag);
}
