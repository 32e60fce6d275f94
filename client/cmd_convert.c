/*
 * `alkaidc convert MODEL -o OUT.alir.json[.gz] ...`: converts a model through a daemon, or
 * in-process when none is configured (the embedded default).
 *
 * MODEL is a graph message file (frontends.md §7; msgpack or its JSON form, e.g.
 * `{"framework": "alkaid", "model": {"input_shape": [4, 5]}}`) or a Keras model file: a `.keras`
 * zip, a legacy `.h5`, or a model JSON with `--weights`, whose bytes travel as they are under
 * `model.file` (and `model.weights_file`) with framework `keras`, after a check with the Keras
 * reader here. The command line's options override the message's fields. The
 * request is built once, as msgpack bytes; remotely it goes to the daemon, in-process it goes
 * through the same decoder, validator, converter and reply encoder the daemon runs
 * (src/rpc), so that both ways write the same bytes.
 *
 * Which way: --local, else every --connect URL (one REQ socket dialed to all), else
 * ALKAID_CONNECT, else the default socket if a daemon answers there, else in-process.
 */
#include "cli.h"
#include "rpc_client.h"

#include "core/alloc.h"
#include "core/io.h"
#include "plugin/convert.h"
#include "plugin/registry.h"
#include "plugins/keras/model_file.h"
#include "rpc/rpc.h"
#include "rpc/wire.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    MAX_URLS = 16,
    MAX_INPUTS = 64,
    MAX_OPTIONS = 64,
    MAX_DIRS = 16,
};

/* Without --timeout the daemon's own deadline applies (alkaidd --timeout, 300 s by default);
 * alkaidc waits for its reply at most this long (the daemon's --max-timeout-ms default), and
 * gives up within CLI_LOST_AFTER_S when it loses the daemon. */
#define DEFAULT_WAIT_S 3600.0

typedef struct options {
    const char *model_path;
    const char *weights_path; /* --weights: the model is a Keras model JSON + this weights .h5 */
    const char *output;
    const char *urls[MAX_URLS];
    size_t n_urls;
    bool local;
    const char *framework;
    const char *input_shapes[MAX_INPUTS];
    size_t n_input_shapes;
    const char *input_kif;
    const char *weight_kif;       /* --weight-kif: model.precision.weight_kif */
    const char *layer_output_kif; /* --layer-output-kif: model.precision.layer_output_kif */
    const char *hwconf;
    const char *solver_options[MAX_OPTIONS];
    size_t n_solver_options;
    const char *dump;
    double timeout_s;
    double resend_s;
    const char *plugin_dirs[MAX_DIRS];
    size_t n_plugin_dirs;
} options;

static void usage(FILE *to) {
    fprintf(
        to,
        "usage: alkaidc convert MODEL -o OUT.alir.json[.gz] [--weights W.h5] [--connect URL]...\n"
        "         [--local] [--framework K] [--input-shape D,D,...]... [--input-kif K,I,F]\n"
        "         [--weight-kif K,I,F] [--layer-output-kif K,I,F]\n"
        "         [--hwconf A,C,L] [--solver-option KEY=VALUE]... [--dump FILE]\n"
        "         [--timeout S] [--resend S] [--plugin-dir DIR]...\n"
        "\n"
        "Converts MODEL into ALIR: a Keras model file (.keras, or a Keras 3 or Keras 2 .h5), a\n"
        "Keras model JSON with --weights, or a graph message (msgpack or JSON).\n"
        "  --weights FILE            the weights .h5 of a model JSON (Keras 2 to_json() +\n"
        "                            save_weights(), or a Keras 3 config.json + .weights.h5)\n"
        "  -o, --output FILE         the ALIR program (gzip when FILE ends in .gz; - = stdout)\n"
        "  -c, --connect URL         a daemon (repeat for a farm; default: ALKAID_CONNECT,\n"
        "                            then the default socket if a daemon is there)\n"
        "  -l, --local               convert in this process\n"
        "  --framework K             the top-level tracer (alkaid, keras, torch, ...)\n"
        "  --input-shape D,D,...     one input's shape (repeat per input)\n"
        "  --input-kif K,I,F         fixed-point format of every input element\n"
        "  --weight-kif K,I,F        plain float Keras models: quantize every float weight\n"
        "                            (kernels, biases, folded batch-norm, PReLU alpha) with\n"
        "                            Q(w; K,I,F, RND, SAT) before tracing (beyond the reference)\n"
        "  --layer-output-kif K,I,F  plain float Keras models: quantize every layer's output\n"
        "                            with Q(y; K,I,F, TRN, WRAP) (beyond the reference)\n"
        "  --hwconf A,C,L            adder size, carry size, latency cutoff (default 1,1,-1)\n"
        "  --solver-option KEY=VAL   a CMVM solver option (repeatable)\n"
        "  --dump FILE               also write the named intermediate traces (JSON)\n"
        "  --timeout S               give up after S seconds (also the daemon's deadline;\n"
        "                            default: the daemon's, 300 s unless it says otherwise)\n"
        "  --resend S                resend a request unanswered after S seconds (default 10)\n"
        "  --plugin-dir DIR          with --local: also load plugins from DIR\n"
        "The output names are printed on stdout, one per line (on stderr with -o -).\n");
}

/* Parses "a,b,c" of integers into `values` (at most cap); returns the count or -1. */
static int parse_ints(const char *text, int64_t *values, int cap) {
    int n = 0;
    const char *p = text;
    while (*p != '\0') {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno != 0 || n == cap || (*end != ',' && *end != '\0')) {
            return -1;
        }
        values[n++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int parse_args(int argc, char **argv, options *o) {
    enum {
        OPT_FRAMEWORK = 256,
        OPT_SHAPE,
        OPT_KIF,
        OPT_HWCONF,
        OPT_SOLVER,
        OPT_DUMP,
        OPT_TIMEOUT,
        OPT_RESEND,
        OPT_PLUGIN_DIR,
        OPT_WEIGHTS,
        OPT_WEIGHT_KIF,
        OPT_OUTPUT_KIF,
    };
    static const struct option long_options[] = {
        {"output", required_argument, NULL, 'o'},
        {"connect", required_argument, NULL, 'c'},
        {"local", no_argument, NULL, 'l'},
        {"framework", required_argument, NULL, OPT_FRAMEWORK},
        {"input-shape", required_argument, NULL, OPT_SHAPE},
        {"input-kif", required_argument, NULL, OPT_KIF},
        {"hwconf", required_argument, NULL, OPT_HWCONF},
        {"solver-option", required_argument, NULL, OPT_SOLVER},
        {"dump", required_argument, NULL, OPT_DUMP},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"resend", required_argument, NULL, OPT_RESEND},
        {"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
        {"weights", required_argument, NULL, OPT_WEIGHTS},
        {"weight-kif", required_argument, NULL, OPT_WEIGHT_KIF},
        {"layer-output-kif", required_argument, NULL, OPT_OUTPUT_KIF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (options){.resend_s = CLI_DEFAULT_RESEND_S};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:c:lh", long_options, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'o':
            o->output = optarg;
            break;
        case 'c':
            if (!cli_url_push(o->urls, &o->n_urls, MAX_URLS, optarg)) {
                return cli_usage_error("convert", "at most %d --connect URLs", MAX_URLS);
            }
            break;
        case 'l':
            o->local = true;
            break;
        case OPT_FRAMEWORK:
            o->framework = optarg;
            break;
        case OPT_SHAPE:
            if (o->n_input_shapes == MAX_INPUTS) {
                return cli_usage_error("convert", "at most %d inputs", MAX_INPUTS);
            }
            o->input_shapes[o->n_input_shapes++] = optarg;
            break;
        case OPT_KIF:
            o->input_kif = optarg;
            break;
        case OPT_HWCONF:
            o->hwconf = optarg;
            break;
        case OPT_SOLVER:
            if (o->n_solver_options == MAX_OPTIONS || strchr(optarg, '=') == NULL) {
                return cli_usage_error("convert", "--solver-option takes KEY=VALUE");
            }
            o->solver_options[o->n_solver_options++] = optarg;
            break;
        case OPT_DUMP:
            o->dump = optarg;
            break;
        case OPT_TIMEOUT:
        case OPT_RESEND: {
            errno = 0;
            double s = strtod(optarg, &end);
            if (*end != '\0' || errno != 0 || !(s > 0.0) || s > 1e7) {
                return cli_usage_error("convert", "'%s' is not a positive number of seconds",
                                       optarg);
            }
            *(c == OPT_TIMEOUT ? &o->timeout_s : &o->resend_s) = s;
            break;
        }
        case OPT_PLUGIN_DIR:
            if (o->n_plugin_dirs == MAX_DIRS) {
                return cli_usage_error("convert", "at most %d --plugin-dir", MAX_DIRS);
            }
            o->plugin_dirs[o->n_plugin_dirs++] = optarg;
            break;
        case OPT_WEIGHTS:
            o->weights_path = optarg;
            break;
        case OPT_WEIGHT_KIF:
            o->weight_kif = optarg;
            break;
        case OPT_OUTPUT_KIF:
            o->layer_output_kif = optarg;
            break;
        case 'h':
            usage(stdout);
            return -EXIT_OK - 1;
        default:
            return cli_usage_error("convert", "bad option");
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error("convert",
                               optind == argc ? "MODEL is missing" : "more than one MODEL given");
    }
    o->model_path = argv[optind];
    if (o->output == NULL) {
        return cli_usage_error("convert", "-o OUT is missing");
    }
    if (o->local && o->n_urls > 0) {
        return cli_usage_error("convert", "--local and --connect exclude each other");
    }
    return EXIT_OK;
}

/* ---- building the request --------------------------------------------------------------- */

/* Whether the message's top-level `key` is replaced by an option. */
static bool overridden(const options *o, const char *key) {
    return strcmp(key, "v") == 0 || strcmp(key, "id") == 0 || strcmp(key, "method") == 0 ||
           strcmp(key, "alir_encoding") == 0 ||
           (o->framework != NULL && !strcmp(key, "framework")) ||
           (o->n_input_shapes > 0 && (!strcmp(key, "inputs") || !strcmp(key, "inputs_kif"))) ||
           (o->input_kif != NULL && !strcmp(key, "inputs_kif")) ||
           (o->hwconf != NULL && !strcmp(key, "hwconf")) ||
           (o->n_solver_options > 0 && !strcmp(key, "solver_options")) ||
           (o->dump != NULL && !strcmp(key, "dump")) ||
           (o->timeout_s > 0 && !strcmp(key, "timeout_ms"));
}

/* A solver option's value: true/false, an integer, a number, else a string. */
static void put_option_value(alk_buf *out, const char *text) {
    char *end;
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
        alk_mp_bool(out, text[0] == 't');
        return;
    }
    errno = 0;
    long long i = strtoll(text, &end, 10);
    if (*text != '\0' && *end == '\0' && errno == 0) {
        alk_mp_int(out, i);
        return;
    }
    double d = strtod(text, &end);
    if (*text != '\0' && *end == '\0' && isfinite(d)) {
        alk_mp_float(out, d);
        return;
    }
    alk_mp_str(out, text);
}

static int put_kif(alk_buf *out, const char *option, const char *text) {
    int64_t kif[3];
    if (parse_ints(text, kif, 3) != 3) {
        return cli_usage_error("convert", "%s takes K,I,F, not '%s'", option, text);
    }
    alk_mp_array(out, 3);
    for (int i = 0; i < 3; i++) {
        alk_mp_int(out, kif[i]);
    }
    return EXIT_OK;
}

/* Writes the message's `model` map with the precision options merged into its `precision` map
 * (model.precision.weight_kif, .layer_output_kif; the options replace those keys). */
static int put_model(const options *o, const alk_value *model, alk_buf *out) {
    const char *keys[2] = {"weight_kif", "layer_output_kif"};
    const char *given[2] = {o->weight_kif, o->layer_output_kif};
    const char *names[2] = {"--weight-kif", "--layer-output-kif"};
    alk_mp_map_writer model_map;
    alk_mp_map_open(&model_map, out);
    for (size_t i = 0; i < model->as.map.len; i++) {
        const alk_value_pair *p = &model->as.map.pairs[i];
        if (strcmp(p->key->as.str.bytes, "precision") != 0) {
            alk_mp_keyn(&model_map, p->key->as.str.bytes, p->key->as.str.len);
            alk_mp_value(out, p->value);
        }
    }
    const alk_value *precision = alk_value_get(model, "precision");
    size_t n_old =
        precision != NULL && precision->kind == ALK_VALUE_MAP ? precision->as.map.len : 0;
    alk_mp_key(&model_map, "precision");
    alk_mp_map_writer precision_map;
    alk_mp_map_open(&precision_map, out);
    for (size_t i = 0; i < n_old; i++) {
        const alk_value_pair *p = &precision->as.map.pairs[i];
        const char *key = p->key->as.str.bytes;
        if (!((given[0] != NULL && !strcmp(key, keys[0])) ||
              (given[1] != NULL && !strcmp(key, keys[1])))) {
            alk_mp_keyn(&precision_map, key, p->key->as.str.len);
            alk_mp_value(out, p->value);
        }
    }
    for (int k = 0; k < 2; k++) {
        if (given[k] != NULL) {
            alk_mp_key(&precision_map, keys[k]);
            int rv = put_kif(out, names[k], given[k]);
            if (rv != EXIT_OK) {
                return rv;
            }
        }
    }
    alk_mp_map_close(&precision_map);
    alk_mp_map_close(&model_map);
    return EXIT_OK;
}

/* Encodes the convert request: the message's own fields, then the options. */
static int build_request(const options *o, const alk_value *message, bool gzip, alk_buf *out) {
    const alk_value *solver = alk_value_get(message, "solver_options");
    alk_mp_map_writer request;
    cli_request_open(&request, out, "convert");
    bool precision = o->weight_kif != NULL || o->layer_output_kif != NULL;
    for (size_t i = 0; i < message->as.map.len; i++) {
        const alk_value_pair *p = &message->as.map.pairs[i];
        if (overridden(o, p->key->as.str.bytes)) {
            continue;
        }
        alk_mp_keyn(&request, p->key->as.str.bytes, p->key->as.str.len);
        if (precision && strcmp(p->key->as.str.bytes, "model") == 0 &&
            p->value->kind == ALK_VALUE_MAP) {
            int rv = put_model(o, p->value, out);
            if (rv != EXIT_OK) {
                return rv;
            }
        } else {
            alk_mp_value(out, p->value);
        }
    }
    alk_mp_key(&request, "alir_encoding");
    alk_mp_str(out, gzip ? "gzip" : "json");
    if (o->framework != NULL) {
        alk_mp_key(&request, "framework");
        alk_mp_str(out, o->framework);
    }
    if (o->n_input_shapes > 0) {
        alk_mp_key(&request, "inputs");
        alk_mp_array(out, (uint32_t)o->n_input_shapes);
        for (size_t i = 0; i < o->n_input_shapes; i++) {
            int64_t dims[ALK_MAX_DIMS];
            int n = parse_ints(o->input_shapes[i], dims, ALK_MAX_DIMS);
            if (n <= 0) {
                return cli_usage_error("convert",
                                       "--input-shape takes D,D,... (at most %d), not "
                                       "'%s'",
                                       ALK_MAX_DIMS, o->input_shapes[i]);
            }
            alk_mp_map(out, 2); /* shape, kif */
            alk_mp_str(out, "shape");
            alk_mp_array(out, (uint32_t)n);
            for (int d = 0; d < n; d++) {
                alk_mp_int(out, dims[d]);
            }
            alk_mp_str(out, "kif");
            if (o->input_kif != NULL) {
                int rv = put_kif(out, "--input-kif", o->input_kif);
                if (rv != EXIT_OK) {
                    return rv;
                }
            } else {
                alk_mp_nil(out);
            }
        }
    } else if (o->input_kif != NULL) {
        alk_mp_key(&request, "inputs_kif");
        int rv = put_kif(out, "--input-kif", o->input_kif);
        if (rv != EXIT_OK) {
            return rv;
        }
    }
    if (o->hwconf != NULL) {
        int64_t hw[3];
        if (parse_ints(o->hwconf, hw, 3) != 3) {
            return cli_usage_error("convert", "--hwconf takes A,C,L, not '%s'", o->hwconf);
        }
        alk_mp_key(&request, "hwconf");
        alk_mp_array(out, 3);
        for (int i = 0; i < 3; i++) {
            alk_mp_int(out, hw[i]);
        }
    }
    if (o->n_solver_options > 0) {
        /* The message's options, minus those given again, then the command line's. */
        size_t n_old = solver != NULL && solver->kind == ALK_VALUE_MAP ? solver->as.map.len : 0;
        alk_mp_key(&request, "solver_options");
        alk_mp_map_writer solver_map;
        alk_mp_map_open(&solver_map, out);
        for (size_t i = 0; i < n_old; i++) {
            const alk_value_pair *p = &solver->as.map.pairs[i];
            bool again = false;
            for (size_t k = 0; k < o->n_solver_options && !again; k++) {
                size_t len = (size_t)(strchr(o->solver_options[k], '=') - o->solver_options[k]);
                again = p->key->as.str.len == len &&
                        strncmp(p->key->as.str.bytes, o->solver_options[k], len) == 0;
            }
            if (!again) {
                alk_mp_keyn(&solver_map, p->key->as.str.bytes, p->key->as.str.len);
                alk_mp_value(out, p->value);
            }
        }
        for (size_t k = 0; k < o->n_solver_options; k++) {
            const char *eq = strchr(o->solver_options[k], '=');
            alk_mp_keyn(&solver_map, o->solver_options[k], (size_t)(eq - o->solver_options[k]));
            put_option_value(out, eq + 1);
        }
        alk_mp_map_close(&solver_map);
    }
    if (o->dump != NULL) {
        alk_mp_key(&request, "dump");
        alk_mp_bool(out, true);
    }
    if (o->timeout_s > 0) {
        alk_mp_key(&request, "timeout_ms");
        alk_mp_uint(out, (uint64_t)ceil(o->timeout_s * 1000.0));
    }
    alk_mp_map_close(&request);
    return EXIT_OK;
}

/* ---- reading MODEL ----------------------------------------------------------------------- */

/* A BIN value pointing at `bytes` (borrowed: they must outlive the tree). */
static const alk_value *bin_of(alk_arena *arena, const alk_buf *bytes) {
    alk_value *v = alk_value_new(arena, ALK_VALUE_BIN);
    if (v != NULL) {
        v->as.str.bytes = bytes->data != NULL ? bytes->data : "";
        v->as.str.len = bytes->len;
    }
    return v;
}

static const alk_value *str_of(alk_arena *arena, const char *s) {
    return alk_value_new_bytes(arena, ALK_VALUE_STR, s, strlen(s));
}

/*
 * The message of a Keras model file: {"framework": "keras", "model": {"file": MODEL's bytes,
 * "weights_file": --weights's bytes}}, the bytes as they are (frontends.md §7.2). The file is
 * first read here with the reader the tracer uses, so that a malformed one fails at once,
 * naming the culprit, and a daemon never gets it; the payload is dropped, the bytes travel.
 */
static int keras_message(const options *o, const alk_buf *model, const alk_buf *weights,
                         alk_arena *arena, const alk_value **ret_message, alk_diag *diag) {
    alk_arena scratch;
    alk_arena_init(&scratch, 0);
    const alk_value *payload;
    int rv = weights != NULL
                 ? alk_keras_pair_read(model->data, model->len, weights->data, weights->len, NULL,
                                       &scratch, &payload, diag)
                 : alk_keras_file_read(model->data, model->len, NULL, &scratch, &payload, diag);
    alk_arena_fini(&scratch);
    if (rv != ALK_OK) {
        if (weights != NULL) {
            alk_diag_prefix(diag, "%s + %s: ", o->model_path, o->weights_path);
        } else {
            alk_diag_prefix(diag, "%s: ", o->model_path);
        }
        return rv;
    }
    alk_value_pair files[2] = {{str_of(arena, "file"), bin_of(arena, model)}};
    if (weights != NULL) {
        files[1] = (alk_value_pair){str_of(arena, "weights_file"), bin_of(arena, weights)};
    }
    alk_value_pair fields[2] = {
        {str_of(arena, "framework"), str_of(arena, "keras")},
        {str_of(arena, "model"), alk_value_new_map(arena, files, weights != NULL ? 2 : 1)},
    };
    const alk_value *message = alk_value_new_map(arena, fields, 2);
    if (message == NULL || fields[0].key == NULL || fields[0].value == NULL ||
        fields[1].key == NULL || fields[1].value == NULL || files[0].key == NULL ||
        files[0].value == NULL || (weights != NULL && files[1].value == NULL)) {
        return alk_diag_set(diag, ALK_ENOMEM, "out of memory");
    }
    *ret_message = message;
    return ALK_OK;
}

/* A graph message file (JSON or msgpack); a JSON file that is no message is taken for a Keras
 * model JSON, which the Keras reader refuses with the reason (no --weights, sharded index). */
static int graph_message(const options *o, const alk_buf *bytes, alk_arena *arena,
                         const alk_value **ret_message, alk_diag *diag) {
    alk_value_limits limits;
    alk_value_limits_default(&limits);
    const alk_value *message = NULL;
    /* A UTF-8 byte-order mark before JSON text is allowed (RFC 8259 §8.1) and skipped. */
    size_t start = bytes->len >= 3 && memcmp(bytes->data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    size_t i = start;
    while (i < bytes->len && strchr(" \t\r\n", bytes->data[i]) != NULL) {
        i++;
    }
    int rv;
    if (i < bytes->len && (bytes->data[i] == '{' || bytes->data[i] == '[')) {
        rv = alk_value_from_python_json(bytes->data + start, bytes->len - start, &limits, arena,
                                        &message, diag);
        if (rv == ALK_OK && message->kind == ALK_VALUE_MAP &&
            alk_value_get(message, "model") == NULL &&
            alk_value_get(message, "framework") == NULL) {
            return keras_message(o, bytes, NULL, arena, ret_message, diag);
        }
    } else if (bytes->len == 0) {
        rv = alk_diag_set(diag, ALK_EINVAL, "the file is empty");
    } else {
        alk_rpc_error err;
        alk_rpc_error_clear(&err);
        rv = alk_value_from_msgpack(bytes->data, bytes->len, &limits, arena, &message, &err);
        if (rv != ALK_OK) {
            /* Malformed input is the user's file, not a protocol failure (exit 1). */
            rv = rv == ALK_EPROTO ? ALK_EINVAL : rv;
            (void)alk_diag_set(diag, rv, "not a JSON or msgpack graph message: %s",
                               err.diag.message);
        }
    }
    if (rv == ALK_OK && message->kind != ALK_VALUE_MAP) {
        rv = alk_diag_set(diag, ALK_EINVAL, "a graph message must be a map (the file holds %s)",
                          alk_value_kind_name(message->kind));
    }
    if (rv != ALK_OK) {
        alk_diag_prefix(diag, "%s: ", o->model_path);
        return rv;
    }
    *ret_message = message;
    return ALK_OK;
}

/* Appends the file at `path` to `out`, refusing a directory with a hint. */
static int read_input(const char *path, alk_buf *out, alk_diag *diag) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        return alk_diag_set(diag, ALK_EINVAL,
                            "%s is a directory (an unzipped Keras model?): give the .keras file",
                            path);
    }
    return alk_read_file(path, (size_t)1 << 30, out, diag);
}

/*
 * Reads MODEL (and --weights) into `model` and `weights` (owned by the caller, who keeps them
 * until the request is built: the message's bins point into them) and the message map in
 * `arena`. A Keras file is told by --weights, its extension or its first bytes.
 */
static int read_model(const options *o, alk_buf *model, alk_buf *weights, alk_arena *arena,
                      const alk_value **ret_message, alk_diag *diag) {
    int rv = read_input(o->model_path, model, diag);
    if (rv == ALK_OK && o->weights_path != NULL) {
        rv = read_input(o->weights_path, weights, diag);
        if (rv == ALK_OK) {
            rv = keras_message(o, model, weights, arena, ret_message, diag);
        }
        return rv;
    }
    if (rv != ALK_OK) {
        return rv;
    }
    if (cli_is_keras_model(o->model_path, model->data, model->len)) {
        return keras_message(o, model, NULL, arena, ret_message, diag);
    }
    return graph_message(o, model, arena, ret_message, diag);
}

/* ---- in-process conversion --------------------------------------------------------------- */

/*
 * --timeout in process: a watchdog thread raises the conversion's cancel flag at the deadline
 * (the tracer and the solvers poll it and stop), and if a plugin does not return within
 * KILL_GRACE_S more, ends the process with the "try again" exit code: a plugin stuck in a loop
 * cannot keep the command alive past its deadline.
 */
enum { KILL_GRACE_S = 2 };

typedef struct watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    double timeout_s;
    bool done;  /* the conversion returned; guarded by lock */
    bool fired; /* the deadline passed; guarded by lock */
    atomic_bool cancel;
} watchdog;

static void *watchdog_main(void *arg) {
    watchdog *w = arg;
    struct timespec at;
    (void)clock_gettime(CLOCK_REALTIME, &at);
    double whole = floor(w->timeout_s);
    at.tv_sec += (time_t)whole;
    at.tv_nsec += (long)((w->timeout_s - whole) * 1e9);
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    int rv = 0;
    while (!w->done && rv != ETIMEDOUT) {
        rv = pthread_cond_timedwait(&w->wake, &w->lock, &at);
    }
    if (!w->done) {
        w->fired = true;
        atomic_store(&w->cancel, true);
        at.tv_sec += KILL_GRACE_S;
        rv = 0;
        while (!w->done && rv != ETIMEDOUT) {
            rv = pthread_cond_timedwait(&w->wake, &w->lock, &at);
        }
        if (!w->done) {
            static const char message[] =
                "alkaidc: the conversion did not stop at its --timeout deadline; giving up\n";
            (void)!write(2, message, sizeof(message) - 1);
            _exit(EXIT_RETRY);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Starts the watchdog when a timeout is set; false when it could not start. */
static bool watchdog_start(watchdog *w, double timeout_s) {
    *w = (watchdog){.timeout_s = timeout_s};
    atomic_init(&w->cancel, false);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    return timeout_s <= 0 || pthread_create(&w->thread, NULL, watchdog_main, w) == 0;
}

/* Stops the watchdog; returns whether the deadline passed. */
static bool watchdog_stop(watchdog *w) {
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (w->timeout_s > 0) {
        (void)pthread_join(w->thread, NULL);
    }
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    return w->fired;
}

/*
 * Runs `request` through the daemon's own path (alk_rpc_convert_local) with a generation of the
 * plugins on the search path. `reply` receives the reply bytes, or the error reply.
 */
static int convert_in_process(const options *o, const alk_buf *request, alk_buf *reply,
                              alk_diag *diag) {
    alk_rpc_limits limits;
    alk_rpc_limits_default(&limits);
    limits.max_message_bytes = (uint64_t)1 << 30; /* a local file is not a network message */
    limits.max_string_bytes = (uint64_t)1 << 30;
    alk_rpc_error err;
    alk_rpc_error_clear(&err);
    alk_generation *generation = NULL;
    char **dirs = NULL;
    size_t n_dirs = 0;
    int rv = alk_plugin_search_path(o->plugin_dirs, o->n_plugin_dirs, &dirs, &n_dirs);
    if (rv == ALK_OK) {
        alk_plugin_config config = {.dirs = (const char *const *)dirs, .n_dirs = n_dirs};
        rv = alk_generation_build(&config, NULL, &generation, &err.diag);
    }
    watchdog dog;
    if (rv == ALK_OK && !watchdog_start(&dog, o->timeout_s)) {
        rv = alk_diag_set(&err.diag, ALK_EINTERNAL, "cannot start the --timeout watchdog");
    }
    if (rv == ALK_OK) {
        alk_rpc_local how = {
            .limits = &limits,
            .generation = alk_generation_id(generation),
            .cancel = &dog.cancel,
        };
        rv = alk_rpc_convert_local(generation, request->data, request->len, &how, reply, &err);
        if (watchdog_stop(&dog) && rv == ALK_ECANCELED) {
            alk_buf_reset(reply);
            alk_rpc_error_set(&err, ALK_ETIMEDOUT, NULL,
                              "the conversion took longer than --timeout %g s", o->timeout_s);
            (void)alk_rpc_encode_error(&err, reply);
        }
    } else {
        if (err.diag.message[0] == '\0') {
            (void)alk_diag_set(&err.diag, rv, "%s", alk_strerror(rv));
        }
        err.code = rv;
        (void)alk_rpc_encode_error(&err, reply);
    }
    alk_generation_unref(generation);
    alk_plugin_dirs_free(dirs, n_dirs);
    rv = alk_buf_error(reply);
    if (rv != ALK_OK) {
        return alk_diag_set(diag, rv, "out of memory");
    }
    return ALK_OK;
}

/* ---- writing the result ------------------------------------------------------------------ */

static int write_dump(const char *path, const alk_value *dump, alk_diag *diag) {
    alk_buf text;
    alk_buf_init(&text);
    alk_buf_putc(&text, '{');
    for (size_t i = 0; dump != NULL && dump->kind == ALK_VALUE_MAP && i < dump->as.map.len; i++) {
        const alk_value_pair *p = &dump->as.map.pairs[i];
        alk_buf_puts(&text, i > 0 ? ",\n\"" : "\n\"");
        for (const char *c = p->key->as.str.bytes; *c != '\0'; c++) {
            if (*c == '"' || *c == '\\') {
                alk_buf_putc(&text, '\\');
            }
            alk_buf_putc(&text, *c);
        }
        alk_buf_puts(&text, "\": ");
        if (p->value->kind == ALK_VALUE_STR) {
            alk_buf_append(&text, p->value->as.str.bytes, p->value->as.str.len);
        } else {
            alk_buf_puts(&text, "null");
        }
    }
    alk_buf_puts(&text, "\n}\n");
    int rv = alk_buf_error(&text);
    if (rv == ALK_OK) {
        rv = alk_write_file(path, text.data, text.len, diag);
    }
    alk_buf_fini(&text);
    return rv;
}

static int write_result(const options *o, const alk_value *reply, alk_diag *diag) {
    const alk_value *alir = alk_value_get(reply, "alir");
    const char *encoding = cli_get_str(reply, "alir_encoding");
    if (alir == NULL || (alir->kind != ALK_VALUE_STR && alir->kind != ALK_VALUE_BIN)) {
        return alk_diag_set(diag, ALK_EPROTO, "the reply has no ALIR program");
    }
    bool reply_gzip = encoding != NULL && strcmp(encoding, "gzip") == 0;
    bool want_gzip = cli_ends_with(o->output, ".gz");
    alk_buf converted;
    alk_buf_init(&converted);
    const void *data = alir->as.str.bytes;
    size_t len = alir->as.str.len;
    int rv = ALK_OK;
    if (reply_gzip && !want_gzip) {
        rv = alk_gunzip(data, len, (size_t)1 << 30, &converted, diag);
        data = converted.data;
        len = converted.len;
    } else if (!reply_gzip && want_gzip) {
        rv = alk_gzip(data, len, &converted, diag);
        data = converted.data;
        len = converted.len;
    }
    if (rv == ALK_OK) {
        rv = alk_write_file(o->output, data, len, diag);
    }
    alk_buf_fini(&converted);
    if (rv == ALK_OK && o->dump != NULL) {
        rv = write_dump(o->dump, alk_value_get(reply, "dump"), diag);
    }
    if (rv == ALK_OK) {
        /* With `-o -` the program fills stdout: the names go to stderr then. */
        FILE *to = strcmp(o->output, "-") == 0 ? stderr : stdout;
        const alk_value *names = alk_value_get(reply, "output_names");
        for (size_t i = 0;
             names != NULL && names->kind == ALK_VALUE_ARRAY && i < names->as.array.len; i++) {
            if (names->as.array.items[i]->kind == ALK_VALUE_STR) {
                fprintf(to, "%s\n", names->as.array.items[i]->as.str.bytes);
            }
        }
    }
    return rv;
}

int cmd_convert(int argc, char **argv) {
    options o;
    int code = parse_args(argc, argv, &o);
    if (code != EXIT_OK) {
        return code < 0 ? EXIT_OK : code;
    }
    alk_diag diag = {{0}};
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_buf request;
    alk_buf_init(&request);
    alk_buf reply_bytes;
    alk_buf_init(&reply_bytes);
    cli_conn conn = {0};
    const alk_value *message = NULL;
    const alk_value *reply = NULL;
    bool remote = false;
    alk_buf model_bytes;
    alk_buf_init(&model_bytes);
    alk_buf weights_bytes;
    alk_buf_init(&weights_bytes);

    int rv = read_model(&o, &model_bytes, &weights_bytes, &arena, &message, &diag);
    if (rv != ALK_OK) {
        code = cli_fail(rv, &diag);
        goto done;
    }
    code = build_request(&o, message, cli_ends_with(o.output, ".gz"), &request);
    if (code != EXIT_OK) {
        goto done;
    }
    if (alk_buf_error(&request) != ALK_OK) {
        code = cli_fail(ALK_ENOMEM, NULL);
        goto done;
    }
    if (!o.local) {
        rv = cli_conn_open(&conn, CLI_SERVICE, o.urls, o.n_urls, o.resend_s, &diag);
        bool configured = o.n_urls > 0 ||
                          (getenv("ALKAID_CONNECT") != NULL && getenv("ALKAID_CONNECT")[0] != '\0');
        if (rv == ALK_ENOENT && !configured) {
            rv = ALK_OK; /* no daemon here: convert in-process */
        } else if (rv != ALK_OK) {
            code = cli_conn_fail(&conn, rv, &diag);
            goto done;
        } else {
            remote = true;
        }
    }
    if (remote) {
        /* The daemon answers ETIMEDOUT at the deadline; the margin lets that reply arrive. */
        double wait = o.timeout_s > 0 ? o.timeout_s + 1.0 : DEFAULT_WAIT_S;
        rv = cli_conn_call(&conn, &request, wait, true, &arena, &reply, &diag);
        if (rv != ALK_OK) {
            code = cli_conn_fail(&conn, rv, &diag);
            goto done;
        }
    } else {
        rv = convert_in_process(&o, &request, &reply_bytes, &diag);
        if (rv == ALK_OK) {
            alk_value_limits limits;
            alk_value_limits_default(&limits);
            alk_rpc_error err;
            alk_rpc_error_clear(&err);
            rv = alk_value_from_msgpack(reply_bytes.data, reply_bytes.len, &limits, &arena, &reply,
                                        &err);
            diag = err.diag;
        }
        const alk_value *ok = rv == ALK_OK ? alk_value_get(reply, "ok") : NULL;
        if (rv == ALK_OK && (ok == NULL || ok->kind != ALK_VALUE_BOOL || !ok->as.boolean)) {
            const alk_value *e = alk_value_get(reply, "error");
            const char *name = cli_get_str(e, "name");
            const char *text = cli_get_str(e, "message");
            const char *where = cli_get_str(e, "where");
            rv = (int)cli_get_uint(e, "code");
            rv = rv != ALK_OK ? rv : ALK_EINTERNAL;
            (void)alk_diag_set(&diag, rv, "%s%s%s: %s", name != NULL ? name : "EUNKNOWN",
                               where != NULL ? " at " : "", where != NULL ? where : "",
                               text != NULL ? text : "");
        }
        if (rv != ALK_OK) {
            code = cli_fail(rv, &diag);
            goto done;
        }
    }
    rv = write_result(&o, reply, &diag);
    if (rv != ALK_OK) {
        code = cli_fail(rv, &diag);
        goto done;
    }
    if (isatty(2)) {
        const alk_value *latency = alk_value_get(reply, "latency");
        fprintf(stderr, "alkaidc: wrote %s: %llu inputs, %llu outputs, cost %g, latency %g (%s)\n",
                o.output, (unsigned long long)cli_get_uint(reply, "n_inputs"),
                (unsigned long long)cli_get_uint(reply, "n_outputs"), cli_get_number(reply, "cost"),
                latency != NULL && latency->kind == ALK_VALUE_ARRAY && latency->as.array.len == 2 &&
                        latency->as.array.items[1]->kind == ALK_VALUE_FLOAT
                    ? latency->as.array.items[1]->as.number
                    : 0.0,
                remote ? conn.url : "in-process");
    }
    code = EXIT_OK;
done:
    cli_conn_close(&conn);
    alk_buf_fini(&weights_bytes);
    alk_buf_fini(&model_bytes);
    alk_buf_fini(&reply_bytes);
    alk_buf_fini(&request);
    alk_arena_fini(&arena);
    return code;
}
