/*
 * `alkaidc cmvm KERNEL.txt [...]` and `alkaidc scm CONSTANT [...]`: run the CMVM / SCM solvers
 * on one problem and print `cost=... adders=... latency=... time_ms=...` on one line.
 *
 * `-o FILE` writes a single runnable ALIR program (the two stages composed, exact intervals) that
 * `alkaidc run` evaluates; `--stage0`/`--stage1` write the two stages exactly as the solver (and
 * the reference's cmvm_solve) returns them.
 */
#include "cli.h"

#include "alir/json.h"
#include "cmvm/cmvm.h"
#include "core/alloc.h"
#include "core/io.h"
#include "core/vec.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { KERNEL_MAX_BYTES = 256 << 20 };

static void cmvm_usage(FILE *to) {
    fprintf(to,
            "usage: alkaidc cmvm KERNEL.txt [--mode compat|improved] [--method0 M] [--method1 M]\n"
            "                    [--hard-dc N] [--decompose-dc N] [--no-search]\n"
            "                    [--qint LO,HI,STEP] [--threads N] [-o SOLUTION.alir.json]\n"
            "                    [--stage0 FILE] [--stage1 FILE]\n"
            "\n"
            "Solves y = x . W for the constant matrix W in KERNEL.txt (one row per input, one\n"
            "column per output; decimal dyadic numbers; '-' reads standard input) and prints\n"
            "cost=... adders=... latency=... time_ms=...\n"
            "  --mode M          improved (default) or compat (bit-exact with the reference)\n"
            "  --method0 M       mc, mc-dc, mc-pdc, wmc (default), wmc-dc, wmc-pdc, dummy\n"
            "  --method1 M       the same or auto (default)\n"
            "  --hard-dc N       latency budget above the minimum; -1 = none (default)\n"
            "  --decompose-dc N  -2 automatic (default), -1 no decomposition, N >= 0 depth\n"
            "  --no-search       do not search decompose_dc\n"
            "  --qint LO,HI,STEP interval of every input (default -128,127,1)\n"
            "  --threads N       search threads (default: one per core)\n"
            "  -o FILE           write the solution as one runnable ALIR program\n"
            "  --stage0 FILE     write stage 0 as the solver returns it\n"
            "  --stage1 FILE     write stage 1 as the solver returns it\n");
}

static void scm_usage(FILE *to) {
    fprintf(to, "usage: alkaidc scm CONSTANT [--mode compat|improved] [--k N] [--qint LO,HI,STEP]\n"
                "                    [-o FILE]\n"
                "\n"
                "Multiplies by CONSTANT with shifted adders (H(k) + ODP) and prints\n"
                "cost=... adders=... latency=... time_ms=...\n"
                "  --mode M          improved (default: the reference's search for odd parts\n"
                "                    of up to 32 bits, a bounded one and repeating-pattern\n"
                "                    forms beyond) or compat (exhaustive, as the reference)\n"
                "  --k N             extra digit budget of the search (default 1, at most 8)\n"
                "  --qint LO,HI,STEP interval of the input (default -128,127,1)\n"
                "  -o FILE           write the program as runnable ALIR JSON (exact intervals)\n");
}

static bool parse_int(const char *text, int *ret) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < INT_MIN || v > INT_MAX) {
        return false;
    }
    *ret = (int)v;
    return true;
}

static bool parse_qint(const char *text, alk_qint *ret) {
    char *end;
    double v[3];
    const char *p = text;
    for (int k = 0; k < 3; k++) {
        errno = 0;
        v[k] = strtod(p, &end);
        if (end == p || errno != 0 || (k < 2 && *end != ',') || (k == 2 && *end != '\0')) {
            return false;
        }
        p = end + 1;
    }
    *ret = (alk_qint){v[0], v[1], v[2]};
    return true;
}

static double now_ms(void) {
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The shortest decimal text that reads back to the float32 `value` (costs, latencies). */
static void fmt_float32(char out[32], float value) {
    if (value == truncf(value) && fabsf(value) < 1e15f) {
        (void)snprintf(out, 32, "%.0f", (double)value);
        return;
    }
    for (int digits = 1; digits <= 9; digits++) {
        (void)snprintf(out, 32, "%.*g", digits, (double)value);
        if ((float)strtod(out, NULL) == value) {
            return;
        }
    }
}

/* The one result line of `cmvm` and `scm`. */
static void print_summary(float cost, size_t adders, float latency, double elapsed_ms) {
    char cost_text[32], latency_text[32];
    fmt_float32(cost_text, cost);
    fmt_float32(latency_text, latency);
    printf("cost=%s adders=%zu latency=%s time_ms=%.1f\n", cost_text, adders, latency_text,
           elapsed_ms);
}

static double program_latency(const alk_program *p) {
    double lo, hi;
    alk_program_latency(p, &lo, &hi);
    return hi;
}

int cmd_cmvm(int argc, char **argv) {
    enum {
        OPT_MODE = 256,
        OPT_METHOD0,
        OPT_METHOD1,
        OPT_HARD_DC,
        OPT_DECOMPOSE_DC,
        OPT_NO_SEARCH,
        OPT_QINT,
        OPT_THREADS,
        OPT_STAGE0,
        OPT_STAGE1,
    };
    static const struct option long_options[] = {
        {"mode", required_argument, NULL, OPT_MODE},
        {"method0", required_argument, NULL, OPT_METHOD0},
        {"method1", required_argument, NULL, OPT_METHOD1},
        {"hard-dc", required_argument, NULL, OPT_HARD_DC},
        {"decompose-dc", required_argument, NULL, OPT_DECOMPOSE_DC},
        {"no-search", no_argument, NULL, OPT_NO_SEARCH},
        {"qint", required_argument, NULL, OPT_QINT},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"output", required_argument, NULL, 'o'},
        {"stage0", required_argument, NULL, OPT_STAGE0},
        {"stage1", required_argument, NULL, OPT_STAGE1},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    alk_cmvm_options options;
    alk_cmvm_options_init(&options);
    alk_qint qint = {-128.0, 127.0, 1.0};
    const char *output = NULL, *stage0_path = NULL, *stage1_path = NULL;
    int c, threads;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_MODE:
            if (alk_cmvm_mode_parse(optarg, &options.mode) != ALK_OK) {
                return cli_usage_error("cmvm", "--mode is one of" ALK_CMVM_MODE_NAMES ", not '%s'",
                                       optarg);
            }
            break;
        case OPT_METHOD0:
        case OPT_METHOD1: {
            alk_cmvm_method m;
            if (alk_cmvm_method_parse(optarg, &m) != ALK_OK || m == ALK_CMVM_DUMMY_DC ||
                (c == OPT_METHOD0 && m == ALK_CMVM_AUTO)) {
                return cli_usage_error("cmvm", "unknown method '%s'", optarg);
            }
            if (c == OPT_METHOD0) {
                options.method0 = m;
            } else {
                options.method1 = m;
            }
            break;
        }
        case OPT_HARD_DC:
            if (!parse_int(optarg, &options.hard_dc)) {
                return cli_usage_error("cmvm", "--hard-dc needs an integer");
            }
            break;
        case OPT_DECOMPOSE_DC:
            if (!parse_int(optarg, &options.decompose_dc) || options.decompose_dc < -2) {
                return cli_usage_error("cmvm", "--decompose-dc needs an integer >= -2");
            }
            break;
        case OPT_NO_SEARCH:
            options.search_all_decompose_dc = false;
            break;
        case OPT_QINT:
            if (!parse_qint(optarg, &qint)) {
                return cli_usage_error("cmvm", "--qint needs LO,HI,STEP");
            }
            break;
        case OPT_THREADS:
            if (!parse_int(optarg, &threads) || threads < 0 || threads > 64) {
                return cli_usage_error("cmvm", "--threads needs an integer in [0, 64]");
            }
            options.threads = (unsigned)threads;
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_STAGE0:
            stage0_path = optarg;
            break;
        case OPT_STAGE1:
            stage1_path = optarg;
            break;
        case 'h':
            cmvm_usage(stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("cmvm", "unknown option");
        }
    }
    if (argc - optind != 1) {
        return cli_usage_error("cmvm", "expects exactly one KERNEL argument");
    }
    const char *path = argv[optind];
    alk_diag diag = {{0}};
    alk_buf text;
    alk_buf_init(&text);
    double *kernel = NULL;
    alk_qint *intervals = NULL;
    alk_cmvm_result result = {0};
    alk_program *composed = NULL;
    uint32_t rows = 0, cols = 0;
    int rv = alk_read_file(path, KERNEL_MAX_BYTES, &text, &diag);
    if (rv == ALK_OK) {
        rv = alk_cmvm_parse_kernel(text.data, text.len, &rows, &cols, &kernel, &diag);
    }
    if (rv == ALK_OK) {
        intervals = alk_malloc(rows * sizeof(alk_qint));
        rv = intervals == NULL ? ALK_ENOMEM : ALK_OK;
        for (uint32_t i = 0; rv == ALK_OK && i < rows; i++) {
            intervals[i] = qint;
        }
    }
    double start = now_ms();
    if (rv == ALK_OK) {
        alk_cmvm_problem problem = {rows, cols, kernel, intervals, NULL};
        rv = alk_cmvm_solve(&problem, &options, &result, &diag);
    }
    double elapsed = now_ms() - start;
    if (rv == ALK_OK && output != NULL) {
        rv = alk_cmvm_compose(result.stage0, result.stage1, intervals, &composed, &diag);
        if (rv == ALK_OK) {
            rv = alk_alir_write_file(composed, output, &diag);
        }
    }
    if (rv == ALK_OK && stage0_path != NULL) {
        rv = alk_alir_write_file(result.stage0, stage0_path, &diag);
    }
    if (rv == ALK_OK && stage1_path != NULL) {
        rv = alk_alir_write_file(result.stage1, stage1_path, &diag);
    }
    if (rv == ALK_OK) {
        print_summary(result.cost, result.adders, result.latency, elapsed);
    } else if (diag.message[0] != '\0' && strncmp(diag.message, path, strlen(path)) != 0) {
        alk_diag_prefix(&diag, "%s: ", path);
    }
    alk_program_free(composed);
    alk_cmvm_result_fini(&result);
    alk_free(kernel);
    alk_free(intervals);
    alk_buf_fini(&text);
    return rv == ALK_OK ? EXIT_OK : cli_fail(rv, &diag);
}

int cmd_scm(int argc, char **argv) {
    static const struct option long_options[] = {
        {"k", required_argument, NULL, 'k'},    {"mode", required_argument, NULL, 'm'},
        {"qint", required_argument, NULL, 'q'}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    alk_scm_options options;
    alk_scm_options_init(&options);
    const char *output = NULL;
    const char *negative = NULL;
    int c;
    /* A negative CONSTANT ("-0.375") would read as an option: take it out before getopt. */
    for (int i = 1; i < argc; i++) {
        char *end;
        if (argv[i][0] == '-' && argv[i][1] != '\0' && strchr("0123456789.", argv[i][1]) &&
            (strtod(argv[i], &end), *end == '\0')) {
            negative = argv[i];
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(char *));
            argc--;
            break;
        }
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:m:q:o:h", long_options, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (!parse_int(optarg, &options.k)) {
                return cli_usage_error("scm", "--k needs an integer");
            }
            break;
        case 'm':
            if (alk_cmvm_mode_parse(optarg, &options.mode) != ALK_OK) {
                return cli_usage_error("scm", "--mode is one of" ALK_CMVM_MODE_NAMES ", not '%s'",
                                       optarg);
            }
            break;
        case 'q':
            if (!parse_qint(optarg, &options.interval)) {
                return cli_usage_error("scm", "--qint needs LO,HI,STEP");
            }
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            scm_usage(stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("scm", "unknown option");
        }
    }
    if (argc - optind != (negative != NULL ? 0 : 1)) {
        return cli_usage_error("scm", "expects exactly one CONSTANT argument");
    }
    const char *text = negative != NULL ? negative : argv[optind];
    char *end;
    double constant = strtod(text, &end);
    if (end == text || *end != '\0') {
        return cli_usage_error("scm", "'%s' is not a number", text);
    }
    alk_diag diag = {{0}};
    alk_program *program = NULL, *exact = NULL;
    double start = now_ms();
    int rv = alk_scm_solve(constant, &options, &program, &diag);
    double elapsed = now_ms() - start;
    if (rv == ALK_OK && output != NULL) {
        rv = alk_cmvm_compose(program, NULL, &options.interval, &exact, &diag);
        if (rv == ALK_OK) {
            rv = alk_alir_write_file(exact, output, &diag);
        }
    }
    if (rv == ALK_OK) {
        print_summary((float)alk_program_cost(program), alk_cmvm_count_adders(program),
                      (float)program_latency(program), elapsed);
    }
    alk_program_free(program);
    alk_program_free(exact);
    return rv == ALK_OK ? EXIT_OK : cli_fail(rv, &diag);
}
