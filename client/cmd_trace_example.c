/*
 * `alkaidc trace-example --shape R,C [-o FILE] [--mode compat|improved] [--no-optimize]`: traces
 * the reference's example model (spec trace-alir.md §5) on an R x C input with the in-process
 * tracer and writes the ALIR program (JSON v4; gzip when FILE ends in .gz; standard output by
 * default). Later this is served by the `alkaid` plugin; the command stays as a self-check.
 */
#include "cli.h"

#include "alir/json.h"
#include "trace/emit.h"
#include "trace/example.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *to) {
    fprintf(to, "usage: alkaidc trace-example --shape R,C [-o FILE] [--mode compat|improved]\n"
                "\n"
                "Traces the example model operation(x) on an R x C input and writes ALIR JSON.\n"
                "  --shape R,C     input shape, each 2..4096 (the reference tests 16,4)\n"
                "  -o, --output F  output file (default: standard output; .gz compresses)\n"
                "  --mode M        solver mode for constant products: improved (default) or\n"
                "                  compat (the reference's adder graphs op for op)\n");
}

static bool parse_shape(const char *text, size_t shape[2]) {
    char *end;
    errno = 0;
    unsigned long r = strtoul(text, &end, 10);
    if (end == text || *end != ',' || errno != 0) {
        return false;
    }
    const char *p = end + 1;
    unsigned long c = strtoul(p, &end, 10);
    if (end == p || *end != '\0' || errno != 0) {
        return false;
    }
    shape[0] = r;
    shape[1] = c;
    return true;
}

int cmd_trace_example(int argc, char **argv) {
    static const struct option options[] = {
        {"shape", required_argument, NULL, 's'},
        {"output", required_argument, NULL, 'o'},
        {"mode", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    size_t shape[2] = {0, 0};
    bool have_shape = false;
    const char *output = "-";
    alk_trace_config config;
    alk_trace_config_init(&config);
    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "s:o:m:h", options, NULL);
        if (c == -1) {
            break;
        }
        switch (c) {
        case 's':
            if (!parse_shape(optarg, shape)) {
                return cli_usage_error("trace-example", "bad --shape '%s' (want R,C)", optarg);
            }
            have_shape = true;
            break;
        case 'o':
            output = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "compat") == 0) {
                config.solver.cmvm.mode = ALK_CMVM_COMPAT;
            } else if (strcmp(optarg, "improved") == 0) {
                config.solver.cmvm.mode = ALK_CMVM_IMPROVED;
            } else {
                return cli_usage_error("trace-example", "unknown --mode '%s'", optarg);
            }
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("trace-example", "unknown option");
        }
    }
    if (!have_shape || optind != argc) {
        return cli_usage_error("trace-example", "need --shape R,C and no other arguments");
    }
    alk_program *program = NULL;
    alk_diag diag = {{0}};
    int rv = alk_example_trace(shape, &config, &program, &diag);
    if (rv == ALK_OK) {
        rv = alk_alir_write_file(program, output, &diag);
    }
    alk_program_free(program);
    return rv == ALK_OK ? EXIT_OK : cli_fail(rv, &diag);
}
