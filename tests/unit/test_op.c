/*
 * The handler kit (plugin/alk_op.h) in-process, against a fake tracer whose table and hooks live
 * in this file: binding and arity, every reader's value and error message, weight layouts with
 * conditions, tensors and overrides, dumps and `#N` renames of both styles and nested scopes,
 * the order of alk_op_run's steps and the OWN_* flags, delegation, exact versus prefix rows, the
 * error prefix, and a clean ENOMEM at every allocation. Expected values are worked by hand from
 * the spec (frontends.md §1.3, §2.1 step 7, §3.2).
 */
#include "plugin/op_int.h"
#include "core/alloc.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* ---- A fake tracer: its table, hooks and state ------------------------------------------- */

static char steps[256]; /* what ran, in order: "before body activation after " */

static void log_step(const char *step) {
    strncat(steps, step, sizeof(steps) - strlen(steps) - 1);
    strncat(steps, " ", sizeof(steps) - strlen(steps) - 1);
}

/* A probe row's arg: the test's own body. */
typedef struct probe {
    void (*fn)(alk_op *op);
} probe;

static void run_probe(alk_op *op, const void *arg) {
    log_step("body");
    ((const probe *)arg)->fn(op);
}

/* x -> 2x, the body of the hook tests. */
static void twice(alk_op *op, const void *arg) {
    (void)arg;
    log_step("body");
    alk_op_out(op, alk_fva_binary_scalar(alk_op_trace(op), ALK_MUL, alk_op_in(op, 0), 2));
}

/* y = x @ kernel + bias (a delegated body; its own layout names other roles). */
static void dense_body(alk_op *op, const void *arg) {
    (void)arg;
    log_step("dense");
    alk_trace *t = alk_op_trace(op);
    alk_fva *y = alk_fva_matmul(t, alk_op_in(op, 0), alk_op_weight(op, "kernel"));
    alk_fva *bias = alk_op_weight_opt(op, "bias");
    alk_op_out(op, bias != NULL ? alk_fva_binary(t, ALK_ADD, y, bias) : y);
}

/* Doubles the kernel, then runs dense_body. */
static void outer(alk_op *op, const void *arg) {
    (void)arg;
    log_step("outer");
    alk_op_set_weight(
        op, "kernel",
        alk_fva_binary_scalar(alk_op_trace(op), ALK_MUL, alk_op_weight(op, "kernel"), 2));
    alk_op_delegate(op, "fake.body", "Dense");
}

static void delegate_to(alk_op *op, const void *target) {
    alk_op_delegate(op, "fake.layers", (const char *)target);
}

static void before_op(alk_op *op) {
    log_step("before");
    alk_fva *x = alk_fva_binary_scalar(alk_op_trace(op), ALK_ADD, alk_op_in(op, 0), 1);
    alk_op_dump(op, "post_iq", &x, 1);
    alk_op_set_in(op, 0, x);
}

static void after_op(alk_op *op) {
    log_step("after");
    alk_fva *y = alk_op_result_array(op, 0);
    alk_op_set_result(op, 0,
                      alk_arg_of_array(op, alk_fva_binary_scalar(alk_op_trace(op), ALK_SUB, y, 1)));
}

static alk_fva *relu_activation(alk_op *op, alk_fva *x) {
    log_step("activation");
    return alk_fva_relu(alk_op_trace(op), x, ALK_FV_NONE, ALK_FV_NONE, ALK_TRN);
}

static const probe no_probe = {NULL};

enum {
    ROW_TWICE,
    ROW_TWICE_OWN_IQ,
    ROW_TWICE_OWN_OQ,
    ROW_TWICE_OWN_ACT,
    ROW_OUTER,
    ROW_BODY,
    ROW_SELF,
    ROW_MISSING,
};

static const alk_op_def fake_ops[] = {
    [ROW_TWICE] = {"fake.layers", "Twice", twice, NULL, 0, 1, 1, "inputs", NULL},
    [ROW_TWICE_OWN_IQ] = {"fake.layers", "TwiceIQ", twice, NULL, ALK_OP_OWN_IQ, 1, 1, "inputs",
                          NULL},
    [ROW_TWICE_OWN_OQ] = {"fake.layers", "TwiceOQ", twice, NULL, ALK_OP_OWN_OQ, 1, 1, "inputs",
                          NULL},
    [ROW_TWICE_OWN_ACT] = {"fake.layers", "TwiceAct", twice, NULL, ALK_OP_OWN_ACTIVATION, 1, 1,
                           "inputs", NULL},
    [ROW_OUTER] = {"fake.layers", "Outer", outer, NULL, 0, 1, 1, "inputs", "kernel bias:use_bias"},
    [ROW_BODY] = {"fake.body", "Dense", dense_body, NULL, 0, 1, 1, "x", "w b"},
    [ROW_SELF] = {"fake.layers", "Self", delegate_to, "Self", 0, 1, 1, "inputs", NULL},
    [ROW_MISSING] = {"fake.layers", "Missing", delegate_to, "Nope", 0, 1, 1, "inputs", NULL},
    /* Exact and prefix rows of one name. */
    {"pkg", "A", run_probe, &no_probe, 0, 0, 9, NULL, NULL},
    {"pkg.sub", "A", run_probe, &no_probe, 0, 0, 9, NULL, NULL},
    {"pkg.sub.deep", "A", run_probe, &no_probe, 0, 0, 9, NULL, NULL},
};

static int tracer_state;

static const alk_plugin_descriptor fake_desc = {
    .abi_version = ALK_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(alk_plugin_descriptor),
    .group = ALK_GROUP_TRACER,
    .name = "fake",
    .ops = fake_ops,
    .n_ops = sizeof(fake_ops) / sizeof(fake_ops[0]),
    .before_op = before_op,
    .after_op = after_op,
};

/* ---- The fixture: a trace, a host with the fake tracer, a top-level scope ----------------- */

static alk_trace *trace;
static alk_arena arena;
static alk__trace_map map;
static alk__loaded fake_tracer = {.desc = &fake_desc, .state = &tracer_state};
static alk_host host = {.tracer = &fake_tracer, .map = &map};

static void setup(void) {
    cr_assert_eq(alk_trace_new(NULL, &trace), ALK_OK);
    alk_arena_init(&arena, 0);
    alk__trace_map_init(&map);
    steps[0] = '\0';
}

static void teardown(void) {
    alk__trace_map_fini(&map);
    alk_arena_fini(&arena);
    alk_trace_free(trace);
}

TestSuite(op, .init = setup, .fini = teardown);

static const alk_value *json(const char *text) {
    return test_json(&arena, text);
}

static alk_fva *numbers(size_t n, const double *values) {
    return alk_fva_numbers(trace, 1, &n, values);
}

/* The input of the hook tests: variables of constant value [3, -5] (some operations need
 * variables, as the reference's FVArray methods do). */
static alk_fva *x_vars(void) {
    static const double x[2] = {3, -5}, step[2] = {1, 1};
    size_t n = 2;
    return alk_fva_from_lhs(trace, 1, &n, x, x, step, 0);
}

/* Element i of an array of numbers or of constant variables. */
static double value_at(const alk_fva *a, size_t i) {
    if (alk_fva_is_numeric(a)) {
        return alk_fva_num_at(a, i);
    }
    alk_fvar *v = alk_fva_at(a, i);
    cr_assert(alk_fv_low(v) == alk_fv_high(v), "element %zu is not a constant", i);
    return alk_fv_low(v);
}

static void expect_values(const alk_fva *a, size_t n, const double *want) {
    cr_assert_not_null(a);
    cr_assert_eq(alk_fva_size(a), n);
    for (size_t i = 0; i < n; i++) {
        cr_assert(value_at(a, i) == want[i], "[%zu]: %g, want %g", i, value_at(a, i), want[i]);
    }
}

/* The names of the trace map, in order, joined by spaces. */
static const char *map_names(void) {
    static char names[1024];
    names[0] = '\0';
    for (size_t i = 0; i < map.entries.len; i++) {
        const alk__trace_entry *e = &ALK_VEC_AT(&map.entries, alk__trace_entry, i);
        strncat(names, e->name, sizeof(names) - strlen(names) - 2);
        strcat(names, " ");
    }
    return names;
}

static const alk__trace_entry *entry(const char *name) {
    const alk__trace_entry *e = alk__trace_map_get(&map, name);
    cr_assert_not_null(e, "no trace-map entry %s (have: %s)", name, map_names());
    return e;
}

/* Runs `body` as the only statement of a probe row with `params` on a fresh op of class Probe
 * with `config`; positional arguments come from `build` (may be NULL). Returns the error. */
static int probe_call(const char *params, uint8_t min_args, uint8_t max_args,
                      const char *config_json, void (*build)(alk_op *op), void (*body)(alk_op *op),
                      alk_op **ret_op) {
    static probe p;
    p.fn = body;
    static alk_op_def def;
    def = (alk_op_def){"probe", "Probe", run_probe, &p, 0, min_args, max_args, params, NULL};
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
    alk_op *op =
        alk_op_new(scope, "p", "probe", "Probe", config_json != NULL ? json(config_json) : NULL);
    if (build != NULL) {
        build(op);
    }
    int rv = alk_op_run(op, &def);
    if (ret_op != NULL) {
        *ret_op = op;
    }
    return rv;
}

static void expect_error(int rv, const char *message) {
    cr_assert_eq(rv, alk_trace_error(trace));
    cr_assert_neq(rv, ALK_OK, "no error, expected '%s'", message);
    cr_assert_str_eq(alk_trace_message(trace), message);
}

/* ---- Binding, arity, readers --------------------------------------------------------------- */

static const double x_values[2] = {3, -5};

static void conv_call(alk_op *op) {
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_add_arg(op, "stride", alk_arg_of_int(op, 2));
    alk_op_add_arg(op, "padding", alk_arg_of_str(op, ALK_ARG_STR, "same"));
}

static struct {
    int64_t stride[2], dilation[2];
    int64_t groups;
    int padding;
    bool has_bias, has_dilation;
    const alk_arg *arg2, *arg3;
    double rate;
} seen;

static void read_conv(alk_op *op) {
    static const char *const paddings[] = {"valid", "same", NULL};
    alk_op_ints(op, "stride", 2, 1, seen.stride);
    alk_op_ints(op, "dilation", 2, 1, seen.dilation);
    seen.groups = alk_op_int(op, "groups", 1);
    seen.padding = alk_op_enum(op, "padding", paddings, 0);
    seen.has_bias = alk_op_has(op, "bias");
    seen.has_dilation = alk_op_has(op, "dilation");
    seen.arg2 = alk_op_arg(op, 2);
    seen.arg3 = alk_op_arg(op, 3);
    seen.rate = alk_op_float(op, "rate", 0.5);
    alk_op_out(op, alk_op_in(op, 0));
}

Test(op, readers_find_bound_args_then_kwargs_then_config) {
    /* F.conv2d(x, w, stride=2, padding="same") with a module whose attributes say more. */
    int rv = probe_call("input weight bias stride padding dilation groups", 2, 7,
                        "{\"stride\": 5, \"dilation\": [1, 3], \"bias\": null, \"rate\": 2}",
                        conv_call, read_conv, NULL);
    cr_assert_eq(rv, ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_eq(seen.stride[0], 2, "the keyword wins over the config");
    cr_assert_eq(seen.stride[1], 2);
    cr_assert_eq(seen.dilation[0], 1);
    cr_assert_eq(seen.dilation[1], 3);
    cr_assert_eq(seen.groups, 1);
    cr_assert_eq(seen.padding, 1);
    cr_assert(!seen.has_bias, "None reads as absent");
    cr_assert(seen.has_dilation);
    cr_assert_null(seen.arg2, "bias was not given");
    cr_assert_not_null(seen.arg3, "stride, given by keyword, is argument 3");
    cr_assert_eq(seen.arg3->as.integer, 2);
    cr_assert(seen.rate == 2.0, "an int reads as a float");
}

static void positional_stride(alk_op *op) {
    conv_call(op);
}

static void stride_by_position(alk_op *op) {
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_add_arg(op, NULL, alk_arg_none(op));
    const alk_arg *pair[2] = {alk_arg_of_int(op, 3), alk_arg_of_int(op, 4)};
    alk_op_add_arg(op, NULL, alk_arg_of_seq(op, ALK_ARG_TUPLE, pair, 2));
}

Test(op, a_positional_argument_wins_over_the_config) {
    int rv = probe_call("input weight bias stride", 2, 7, "{\"stride\": 5}", stride_by_position,
                        read_conv, NULL);
    cr_assert_eq(rv, ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_eq(seen.stride[0], 3);
    cr_assert_eq(seen.stride[1], 4);
    (void)positional_stride;
}

static void two_args(alk_op *op) {
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
}

static void nothing(alk_op *op) {
    alk_op_out(op, alk_op_in(op, 0));
}

Test(op, arity_is_checked_before_the_handler_runs) {
    expect_error(probe_call("x y", 1, 1, NULL, two_args, nothing, NULL),
                 "layer p (Probe): takes 1 argument, got 2");
    cr_assert_str_eq(steps, "", "the handler must not run");
}

Test(op, arity_ranges) {
    expect_error(probe_call("x", 3, 5, NULL, two_args, nothing, NULL),
                 "layer p (Probe): takes 3 to 5 arguments, got 2");
}

Test(op, arity_unbounded) {
    expect_error(probe_call("x", 3, ALK_OP_ANY_ARGS, NULL, two_args, nothing, NULL),
                 "layer p (Probe): takes at least 3 arguments, got 2");
}

static void linear_by_keyword(alk_op *op) {
    alk_op_add_arg(op, "input", alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_add_arg(op, "weight", alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_add_arg(op, "unrelated", alk_arg_of_int(op, 1));
}

static void read_inputs(alk_op *op) {
    alk_fva *x = alk_op_in(op, 0);
    alk_fva *w = alk_op_in(op, 1);
    cr_assert_eq(alk_op_n_args(op), 0);
    alk_op_out(op, alk_fva_binary(alk_op_trace(op), ALK_ADD, x, w));
}

Test(op, keyword_arguments_fill_parameters_and_count_for_the_arity) {
    /* F.linear(input=x, weight=w): two arguments by keyword, `unrelated` fills nothing. */
    alk_op *op;
    cr_assert_eq(probe_call("input weight bias", 2, 3, NULL, linear_by_keyword, read_inputs, &op),
                 ALK_OK, "%s", alk_trace_message(trace));
    expect_values(alk_op_result_array(op, 0), 2, (const double[]){6, -10});
}

static void given_twice(alk_op *op) {
    two_args(op);
    alk_op_add_arg(op, "y", alk_arg_of_int(op, 1));
}

Test(op, a_parameter_given_twice_fails) {
    expect_error(probe_call("x y", 1, 3, NULL, given_twice, nothing, NULL),
                 "layer p (Probe): argument 'y' is given by position and by keyword");
}

static void training_false(alk_op *op) {
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_add_arg(op, "training", alk_arg_of_bool(op, false));
    alk_op_add_arg(op, "mask", alk_arg_none(op));
}

static void no_training(alk_op *op) {
    cr_assert_null(alk_op_kwarg(op, "training"));
    cr_assert_not_null(alk_op_kwarg(op, "mask"));
    nothing(op);
}

Test(op, keras_drops_training_false_and_refuses_true) {
    cr_assert_eq(probe_call("inputs", 1, 1, NULL, training_false, no_training, NULL), ALK_OK, "%s",
                 alk_trace_message(trace));
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
    alk_op *op = alk_op_new(scope, "bn", "keras.layers", "BatchNormalization", NULL);
    alk_op_add_arg(op, "training", alk_arg_none(op));
    cr_assert_eq(alk_trace_error(trace), ALK_OK, "None is accepted (the reference refuses it)");
    alk_op_add_arg(op, "training", alk_arg_of_bool(op, true));
    cr_assert_eq(alk_trace_error(trace), ALK_ENOTSUP);
    cr_assert_str_eq(alk_trace_message(trace),
                     "layer bn (BatchNormalization): training mode is not supported "
                     "(training=True)");
}

Test(op, torch_drops_inplace_out_and_memory_format) {
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_TORCH, "");
    alk_op *op = alk_op_new(scope, "relu", "torch.nn.functional", "relu", NULL);
    alk_op_add_arg(op, "inplace", alk_arg_of_bool(op, true));
    alk_op_add_arg(op, "out", alk_arg_none(op));
    alk_op_add_arg(op, "memory_format", alk_arg_none(op));
    alk_op_add_arg(op, "training", alk_arg_of_bool(op, true)); /* a torch argument like others */
    cr_assert_null(alk_op_kwarg(op, "inplace"));
    cr_assert_null(alk_op_kwarg(op, "out"));
    cr_assert_null(alk_op_kwarg(op, "memory_format"));
    cr_assert_not_null(alk_op_kwarg(op, "training"));
    cr_assert_eq(alk_trace_error(trace), ALK_OK);
}

/* One reader error per test: errors are sticky. */
#define READER_ERROR(test, config, statement, message)                                             \
    static void test##_body(alk_op *op) {                                                          \
        statement;                                                                                 \
        alk_op_out(op, alk_op_in(op, 0));                                                          \
    }                                                                                              \
    Test(op, test) {                                                                               \
        expect_error(probe_call("inputs", 1, 1, config, training_false, test##_body, NULL),        \
                     message);                                                                     \
    }

static const char *const paddings[] = {"valid", "same", NULL};

READER_ERROR(int_error, "{\"units\": 2.5}", (void)alk_op_int(op, "units", 0),
             "layer p (Probe): units: expected an int, got float")
READER_ERROR(float_error, "{\"rate\": \"x\"}", (void)alk_op_float(op, "rate", 0),
             "layer p (Probe): rate: expected a number, got str 'x'")
READER_ERROR(bool_error, "{\"use_bias\": 1}", (void)alk_op_bool(op, "use_bias", true),
             "layer p (Probe): use_bias: expected a bool, got int")
READER_ERROR(str_error, "{\"padding\": [1, 2]}", (void)alk_op_str(op, "padding", "valid"),
             "layer p (Probe): padding: expected a str, got list of 2")
READER_ERROR(enum_error, "{\"padding\": \"full\"}", (void)alk_op_enum(op, "padding", paddings, 0),
             "layer p (Probe): padding: expected one of 'valid', 'same', got str 'full'")
READER_ERROR(ints_length_error, "{\"strides\": [1, 2, 3]}", int64_t s[2];
             alk_op_ints(op, "strides", 2, 1, s), "layer p (Probe): strides: expected an int or 2 "
                                                  "ints, got list of 3")
READER_ERROR(ints_item_error, "{\"strides\": [1, 2.0]}", int64_t s[2];
             alk_op_ints(op, "strides", 2, 1, s),
             "layer p (Probe): strides[1]: expected an int, got float")
READER_ERROR(
    int_list_error, "{\"axes\": [1, 2, 3]}", int64_t a[2];
    (void)alk_op_int_list(op, "axes", a, 2),
    "layer p (Probe): axes: expected an int or a sequence of at most 2 ints, got list of 3")
READER_ERROR(array_missing, NULL, (void)alk_op_array(op, "scale"),
             "layer p (Probe): scale: missing (expected an array)")
READER_ERROR(array_ragged, "{\"scale\": [[1, 2], [3]]}", (void)alk_op_array(op, "scale"),
             "layer p (Probe): scale: expected a number or rectangular nested lists of numbers, "
             "got list of 1")
READER_ERROR(in_not_array, "{\"x\": 1}", (void)alk_op_in_list(op, 3, NULL, 0),
             "layer p (Probe): argument 3 is missing")
READER_ERROR(binary_config, NULL,
             (void)alk_arg_of_value(op, &(const alk_value){.kind = ALK_VALUE_BIN}),
             "layer p (Probe): binary data cannot be a parameter value")

static void list_arg(alk_op *op) {
    const alk_arg *items[2] = {alk_arg_of_array(op, numbers(2, x_values)), alk_arg_of_int(op, 1)};
    alk_op_add_arg(op, NULL, alk_arg_of_seq(op, ALK_ARG_LIST, items, 2));
}

static void in_of_a_list(alk_op *op) {
    alk_fva *arrays[2];
    (void)alk_op_in_list(op, 0, arrays, 2);
}

Test(op, a_list_argument_with_a_non_array_fails_naming_the_item) {
    expect_error(probe_call("inputs", 1, 1, NULL, list_arg, in_of_a_list, NULL),
                 "layer p (Probe): argument 0 (inputs)[1]: expected an array, got int");
}

static void read_values(alk_op *op) {
    int64_t list[4];
    cr_assert_eq(alk_op_int_list(op, "axes", list, 4), 3);
    cr_assert_eq(list[2], -1);
    cr_assert_eq(alk_op_int_list(op, "axis", list, 4), 1);
    cr_assert_eq(list[0], 2);
    cr_assert_eq(alk_op_int_list(op, "none", list, 4), SIZE_MAX);
    cr_assert_eq(alk_op_int_list(op, "absent", list, 4), SIZE_MAX);
    cr_assert_str_eq(alk_op_str(op, "name", "?"), "probe");
    cr_assert_str_eq(alk_op_str(op, "none", "dflt"), "dflt");
    cr_assert(alk_op_bool(op, "absent", true));
    alk_fva *scale = alk_op_array(op, "scale");
    cr_assert_eq(alk_fva_ndim(scale), 2);
    cr_assert_eq(alk_fva_shape(scale)[0], 2);
    cr_assert_eq(alk_fva_shape(scale)[1], 2);
    expect_values(scale, 4, (const double[]){1, 2.5, -3, 4});
    alk_fva *offset = alk_op_array(op, "offset");
    cr_assert_eq(alk_fva_ndim(offset), 0);
    expect_values(offset, 1, (const double[]){0.25});
    const alk_arg *dict = alk_op_get(op, "dtype");
    cr_assert_eq(dict->kind, ALK_ARG_DICT);
    cr_assert_eq(dict->as.seq.len, 2);
    cr_assert_str_eq(dict->as.seq.items[0]->as.str, "name");
    cr_assert_str_eq(alk_arg_kind_name(alk_arg_of_str(op, ALK_ARG_DTYPE, "int32")->kind), "dtype");
    const alk_arg *slice = alk_arg_of_slice(op, NULL, alk_arg_of_int(op, -1), NULL);
    cr_assert_eq(slice->as.slice.start->kind, ALK_ARG_NONE);
    cr_assert_eq(slice->as.slice.stop->as.integer, -1);
    cr_assert_eq(alk_arg_ellipsis(op)->kind, ALK_ARG_ELLIPSIS);
    nothing(op);
}

Test(op, readers_read_sequences_strings_arrays_and_dicts) {
    cr_assert_eq(probe_call("inputs", 1, 1,
                            "{\"axes\": [0, 1, -1], \"axis\": 2, \"none\": null, \"name\": "
                            "\"probe\", \"scale\": [[1, 2.5], [-3, 4]], \"offset\": 0.25, "
                            "\"dtype\": {\"name\": \"float32\"}}",
                            training_false, read_values, NULL),
                 ALK_OK, "%s", alk_trace_message(trace));
}

/* ---- Weights ------------------------------------------------------------------------------- */

/* The weight source of the tests: answers from a JSON map by "<index>" when the layout gives
 * the role an index, else by role or path; logs every question. */
static char asked[256];

static const alk_value *find_weight(const void *ctx, const char *role, size_t index,
                                    const char *path) {
    char key[64];
    if (role != NULL && index != SIZE_MAX) {
        (void)snprintf(key, sizeof(key), "%zu", index);
    } else {
        (void)snprintf(key, sizeof(key), "%s", role != NULL ? role : path);
    }
    strncat(asked, key, sizeof(asked) - strlen(asked) - 2);
    strcat(asked, " ");
    return alk_value_get(ctx, key);
}

static struct { alk_fva *kernel, *bias, *gamma, *beta, *mean; } got;

static void read_weights(alk_op *op) {
    got.kernel = alk_op_weight(op, "kernel");
    got.bias = alk_op_weight_opt(op, "bias");
    got.gamma = alk_op_weight_opt(op, "gamma");
    got.beta = alk_op_weight(op, "beta");
    got.mean = alk_op_weight_opt(op, "moving_mean");
    (void)alk_op_weight(op, "kernel"); /* cached: not asked again */
    nothing(op);
}

/* Runs read_weights on a layer with layout `layout`, config and weights from JSON. */
static int weights_call(const char *layout, const char *config_json, const char *weights_json,
                        void (*body)(alk_op *op)) {
    static probe p;
    p.fn = body;
    static alk_op_def def;
    def = (alk_op_def){"probe", "Probe", run_probe, &p, 0, 1, 1, "inputs", layout};
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
    alk_op *op = alk_op_new(scope, "p", "probe", "Probe", json(config_json));
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_weights weights = {find_weight, json(weights_json)};
    alk_op_set_weights(op, &weights);
    asked[0] = '\0';
    return alk_op_run(op, &def);
}

static const char *layout = "kernel bias:use_bias gamma:!center beta";
static const char *four_weights = "{\"0\": [1], \"1\": [2], \"2\": [3], \"3\": [4], "
                                  "\"moving_mean\": [[5, 6]]}";

Test(op, weight_layout_conditions_pick_the_indices) {
    /* use_bias absent (true), center absent (true, so gamma:!center is absent). */
    cr_assert_eq(weights_call(layout, "{}", four_weights, read_weights), ALK_OK, "%s",
                 alk_trace_message(trace));
    cr_assert_str_eq(asked, "0 1 2 moving_mean ");
    expect_values(got.kernel, 1, (const double[]){1});
    expect_values(got.bias, 1, (const double[]){2});
    cr_assert_null(got.gamma);
    expect_values(got.beta, 1, (const double[]){3});
    cr_assert_eq(alk_fva_ndim(got.mean), 2);
    expect_values(got.mean, 2, (const double[]){5, 6});
}

Test(op, weight_layout_with_conditions_off) {
    cr_assert_eq(weights_call(layout, "{\"use_bias\": false, \"center\": false}", four_weights,
                              read_weights),
                 ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_str_eq(asked, "0 1 2 moving_mean ", "bias is not asked for");
    cr_assert_null(got.bias);
    expect_values(got.gamma, 1, (const double[]){2});
    expect_values(got.beta, 1, (const double[]){3});
}

static void read_i(alk_op *op) {
    got.kernel = alk_op_weight(op, "i");
    nothing(op);
}

/* A role listed twice under opposite conditions (HGQ2's KBI layout by overflow mode): the
 * occurrence whose condition holds gives the index. */
Test(op, the_present_occurrence_of_a_twice_listed_role_counts) {
    const char *kbi = "b i:!wrap k i:wrap";
    cr_assert_eq(
        weights_call(kbi, "{\"wrap\": true}", "{\"0\": [1], \"1\": [2], \"2\": [3]}", read_i),
        ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_str_eq(asked, "2 ");
    cr_assert_eq(
        weights_call(kbi, "{\"wrap\": false}", "{\"0\": [1], \"1\": [2], \"2\": [3]}", read_i),
        ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_str_eq(asked, "1 ");
}

Test(op, a_missing_weight_is_named) {
    expect_error(weights_call(layout, "{}", "{\"0\": [1]}", read_weights),
                 "layer p (Probe): weight 'beta' is missing");
}

Test(op, a_non_bool_condition_is_named) {
    expect_error(weights_call(layout, "{\"use_bias\": \"yes\"}", four_weights, read_weights),
                 "layer p (Probe): use_bias: expected a bool (it selects the weights), got str");
}

Test(op, a_ragged_weight_is_named) {
    expect_error(weights_call(layout, "{}", "{\"0\": [[1, 2], [3]]}", read_weights),
                 "layer p (Probe): weight 'kernel': expected a number or rectangular nested "
                 "lists of numbers, got list of 1");
}

static void overrides(alk_op *op) {
    alk_fva *q = numbers(2, (const double[]){7, 8});
    alk_op_set_weight(op, "kernel", q);
    alk_op_set_weight(op, "bias", NULL);
    cr_assert_eq(alk_op_weight(op, "kernel"), q);
    cr_assert_null(alk_op_weight_opt(op, "bias"));
    expect_values(alk_op_tensor_opt(op, "kq/quantizer/vars/1"), 1, (const double[]){9});
    cr_assert_null(alk_op_tensor_opt(op, "no/such/path"));
    (void)alk_op_weight(op, "bias");
}

Test(op, overrides_replace_roles_and_none_removes_one) {
    expect_error(weights_call(layout, "{}", "{\"kq/quantizer/vars/1\": 9}", overrides),
                 "layer p (Probe): weight 'bias' is missing");
    cr_assert_str_eq(asked, "kq/quantizer/vars/1 no/such/path ", "overrides are never looked up");
}

/* Tensors: the map form, as the wire carries weights. */
static alk_value tensor_nodes[16];
static const alk_value *tensor_ptrs[2];
static alk_value_pair tensor_pairs[3];
static alk_value_pair source_pair;
static alk_value source;

static const alk_value *f4_tensor_source(const float *values, const char *dtype) {
    tensor_nodes[0] = (alk_value){.kind = ALK_VALUE_STR, .as.str = {"dtype", 5}};
    tensor_nodes[1] = (alk_value){.kind = ALK_VALUE_STR, .as.str = {dtype, strlen(dtype)}};
    tensor_nodes[2] = (alk_value){.kind = ALK_VALUE_STR, .as.str = {"shape", 5}};
    tensor_nodes[3] = (alk_value){.kind = ALK_VALUE_INT, .as.integer = 2};
    tensor_nodes[4] = (alk_value){.kind = ALK_VALUE_INT, .as.integer = 1};
    tensor_ptrs[0] = &tensor_nodes[3];
    tensor_ptrs[1] = &tensor_nodes[4];
    tensor_nodes[5] = (alk_value){.kind = ALK_VALUE_ARRAY, .as.array = {tensor_ptrs, 2}};
    tensor_nodes[6] = (alk_value){.kind = ALK_VALUE_STR, .as.str = {"data", 4}};
    tensor_nodes[7] = (alk_value){.kind = ALK_VALUE_BIN, .as.str = {(const char *)values, 8}};
    tensor_pairs[0] = (alk_value_pair){&tensor_nodes[0], &tensor_nodes[1]};
    tensor_pairs[1] = (alk_value_pair){&tensor_nodes[2], &tensor_nodes[5]};
    tensor_pairs[2] = (alk_value_pair){&tensor_nodes[6], &tensor_nodes[7]};
    tensor_nodes[8] = (alk_value){.kind = ALK_VALUE_MAP, .as.map = {tensor_pairs, 3}};
    tensor_nodes[9] = (alk_value){.kind = ALK_VALUE_STR, .as.str = {"kernel", 6}};
    source_pair = (alk_value_pair){&tensor_nodes[9], &tensor_nodes[8]};
    source = (alk_value){.kind = ALK_VALUE_MAP, .as.map = {&source_pair, 1}};
    return &source;
}

static const alk_value *by_role(const void *ctx, const char *role, size_t index, const char *path) {
    (void)index;
    return alk_value_get(ctx, role != NULL ? role : path);
}

static void read_kernel(alk_op *op) {
    got.kernel = alk_op_weight(op, "kernel");
    nothing(op);
}

static int tensor_call(const float *values, const char *dtype) {
    static probe p = {read_kernel};
    static const alk_op_def def = {"probe", "Probe", run_probe, &p, 0, 1, 1, "inputs", NULL};
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
    alk_op *op = alk_op_new(scope, "p", "probe", "Probe", NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    alk_op_weights weights = {by_role, f4_tensor_source(values, dtype)};
    alk_op_set_weights(op, &weights);
    return alk_op_run(op, &def);
}

Test(op, tensor_weights_are_decoded_with_their_shape) {
    const float values[2] = {0.75f, -1.5f};
    cr_assert_eq(tensor_call(values, "f4"), ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_eq(alk_fva_ndim(got.kernel), 2);
    cr_assert_eq(alk_fva_shape(got.kernel)[0], 2);
    cr_assert_eq(alk_fva_shape(got.kernel)[1], 1);
    expect_values(got.kernel, 2, (const double[]){0.75, -1.5});
}

Test(op, tensor_errors_name_the_weight) {
    const float values[2] = {1, 2};
    expect_error(tensor_call(values, "f3"),
                 "layer p (Probe): weight 'kernel': tensor field 'dtype' is 'f3'; expected one of "
                 "f2 f4 f8 bf16 u1 u2 u4 u8 i1 i2 i4 i8 b1");
}

Test(op, non_finite_weights_are_refused) {
    const float values[2] = {1, __builtin_inff()};
    expect_error(tensor_call(values, "f4"), "layer p (Probe): weight 'kernel': element 1 is inf");
}

/* ---- alk_op_run: the order of the steps, flags, dumps -------------------------------------- */

/* Runs row `index` of the fake table on x = [3, -5] as layer `name` of `scope`. */
static alk_op *run_row(alk_scope *scope, const char *name, size_t index, const char *config) {
    alk_op *op = alk_op_new(scope, name, fake_ops[index].module, fake_ops[index].name,
                            config != NULL ? json(config) : NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, x_vars()));
    const alk_op_def *def = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_host_find_op(&host, fake_ops[index].module, fake_ops[index].name, &def, &diag),
                 ALK_OK, "%s", diag.message);
    cr_assert_eq(def, &fake_ops[index]);
    cr_assert_eq(alk_op_run(op, def), ALK_OK, "%s", alk_trace_message(trace));
    return op;
}

static alk_scope *keras_scope(void) {
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
    alk_scope_set_activation(scope, relu_activation);
    return scope;
}

Test(op, the_steps_run_in_order_and_dump_in_order) {
    /* x = [3, -5]; before: +1 -> [4, -4]; body: x2 -> [8, -8] (post_call); relu -> [8, 0];
     * after: -1 -> [7, -1] (final). */
    alk_op *op = run_row(keras_scope(), "t", ROW_TWICE, NULL);
    cr_assert_str_eq(steps, "before body activation after ");
    cr_assert_str_eq(map_names(), "/t/post_iq /t/post_call /t/final ");
    expect_values(entry("/t/post_iq")->arrays[0], 2, (const double[]){4, -4});
    expect_values(entry("/t/post_call")->arrays[0], 2, (const double[]){8, -8});
    expect_values(entry("/t/final")->arrays[0], 2, (const double[]){7, -1});
    cr_assert_eq(alk_op_result_array(op, 0), entry("/t/final")->arrays[0]);
}

Test(op, own_iq_skips_before_op) {
    run_row(keras_scope(), "t", ROW_TWICE_OWN_IQ, NULL);
    cr_assert_str_eq(steps, "body activation after ");
    expect_values(entry("/t/final")->arrays[0], 2, (const double[]){5, -1});
}

Test(op, own_oq_skips_after_op) {
    run_row(keras_scope(), "t", ROW_TWICE_OWN_OQ, NULL);
    cr_assert_str_eq(steps, "before body activation ");
    expect_values(entry("/t/final")->arrays[0], 2, (const double[]){8, 0});
}

Test(op, own_activation_skips_the_activation) {
    run_row(keras_scope(), "t", ROW_TWICE_OWN_ACT, NULL);
    cr_assert_str_eq(steps, "before body after ");
    expect_values(entry("/t/final")->arrays[0], 2, (const double[]){7, -9});
}

Test(op, a_row_of_no_plugin_runs_without_hooks) {
    static const alk_op_def lone = {"lone", "Twice", twice, NULL, 0, 1, 1, "inputs", NULL};
    alk_scope *scope = keras_scope();
    alk_op *op = alk_op_new(scope, "t", "lone", "Twice", NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, x_vars()));
    cr_assert_eq(alk_op_run(op, &lone), ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_str_eq(steps, "body activation ");
}

Test(op, keras_renames_and_nested_scopes) {
    alk_scope *top = keras_scope();
    run_row(top, "dense", ROW_TWICE_OWN_IQ, NULL);
    run_row(top, "dense", ROW_TWICE_OWN_IQ, NULL);
    alk_scope *sub = alk_scope_child(top, "functional");
    cr_assert_str_eq(alk_scope_prefix(sub), "/functional/");
    run_row(sub, "dense", ROW_TWICE_OWN_IQ, NULL);
    alk_fva *out = numbers(1, (const double[]){1});
    cr_assert_eq(alk_scope_finish(sub, "final", &out, 1, NULL), ALK_OK);
    alk_scope *again = alk_scope_child(top, "functional"); /* a shared sub-model, called again */
    run_row(again, "dense", ROW_TWICE_OWN_IQ, NULL);
    alk_scope *deeper = alk_scope_child(again, "inner");
    run_row(deeper, "dense", ROW_TWICE_OWN_IQ, NULL);
    cr_assert_eq(alk_scope_finish(top, "final", &out, 1, NULL), ALK_OK);
    cr_assert_str_eq(map_names(), "/dense/post_call /dense/final /dense#1/post_call "
                                  "/dense#1/final /functional/dense/post_call "
                                  "/functional/dense/final /functional/final "
                                  "/functional#1/dense/post_call /functional#1/dense/final "
                                  "/functional#1/inner/dense/post_call "
                                  "/functional#1/inner/dense/final final ");
    cr_assert_eq(map.output_names.len, 1);
    cr_assert_str_eq(ALK_VEC_AT(&map.output_names, char *, 0), "final");
    cr_assert_str_eq(alk_scope_unique(top, "dense"), "dense#2");
}

static void size_of(alk_op *op) {
    alk_op_return(op, alk_arg_of_int(op, (int64_t)alk_fva_size(alk_op_in(op, 0))));
}

static void pair_of(alk_op *op) {
    alk_fva *x = alk_op_in(op, 0);
    const alk_arg *items[2] = {alk_arg_of_array(op, x), alk_arg_of_array(op, x)};
    alk_op_return(op, alk_arg_of_seq(op, ALK_ARG_TUPLE, items, 2));
}

Test(op, torch_dumps_final_only_for_arrays_with_slashes_and_shared_renames) {
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_TORCH, "");
    alk_scope_set_activation(scope, NULL);
    run_row(scope, "block.conv", ROW_TWICE_OWN_IQ, NULL);
    run_row(scope, "block.conv", ROW_TWICE_OWN_IQ, NULL);
    static const probe size_probe = {size_of}, pair_probe = {pair_of};
    static const alk_op_def size_row = {"torch.Tensor", "size", run_probe, &size_probe, 0, 1, 2,
                                        "self dim",     NULL};
    static const alk_op_def split_row = {
        "torch", "split", run_probe, &pair_probe, 0, 1, 3, "tensor split_size_or_sections dim",
        NULL};
    for (int i = 0; i < 2; i++) {
        alk_op *op = alk_op_new(scope, "size", "torch.Tensor", "size", NULL);
        alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
        cr_assert_eq(alk_op_run(op, &size_row), ALK_OK, "%s", alk_trace_message(trace));
        cr_assert_eq(alk_op_result(op, 0)->as.integer, 2);
    }
    alk_op *op = alk_op_new(scope, "split", "torch", "split", NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    cr_assert_eq(alk_op_run(op, &split_row), ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_str_eq(map_names(), "block/conv/final block/conv#1/final ");
    /* The int results were not dumped but used their names, as the reference's MaybeRename. */
    cr_assert_str_eq(alk_scope_unique(scope, "size"), "size#2");
    cr_assert_str_eq(alk_scope_unique(scope, "block.conv"), "block.conv",
                     "the counter is keyed by the dumped name");
}

/* ---- Delegation --------------------------------------------------------------------------- */

Test(op, delegate_runs_the_body_with_overrides_and_the_outer_layout) {
    /* Outer's layout "kernel bias:use_bias" gives bias index 1; the body's own layout "w b"
     * would not list it. Kernel [[1], [2]] doubled: y = [4, -4] @ [[2], [4]] + 0.5 = -7.5,
     * relu 0, after_op -1. */
    alk_op *op = alk_op_new(keras_scope(), "o", "fake.layers", "Outer", NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, x_vars()));
    alk_op_weights weights = {find_weight, json("{\"0\": [[1], [2]], \"1\": [0.5]}")};
    alk_op_set_weights(op, &weights);
    asked[0] = '\0';
    cr_assert_eq(alk_op_run(op, &fake_ops[ROW_OUTER]), ALK_OK, "%s", alk_trace_message(trace));
    cr_assert_str_eq(steps, "before outer dense activation after ",
                     "hooks and activation run once, for the outer row");
    cr_assert_str_eq(asked, "0 1 ");
    expect_values(entry("/o/post_call")->arrays[0], 1, (const double[]){-7.5});
    expect_values(entry("/o/final")->arrays[0], 1, (const double[]){-1});
}

Test(op, delegating_to_an_unknown_row_is_named) {
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
    alk_op *op = alk_op_new(scope, "m", "fake.layers", "Missing", NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    expect_error(alk_op_run(op, &fake_ops[ROW_MISSING]),
                 "layer m (Missing): delegating: unsupported layer Nope (module fake.layers)");
}

Test(op, endless_delegation_stops) {
    alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
    alk_op *op = alk_op_new(scope, "s", "fake.layers", "Self", NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    expect_error(alk_op_run(op, &fake_ops[ROW_SELF]),
                 "layer s (Self): delegating to fake.layers Self: more than 8 nested "
                 "delegations");
}

/* ---- Lookup, errors ------------------------------------------------------------------------ */

Test(op, exact_rows_win_then_the_longest_prefix) {
    const alk_op_def *def;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_host_find_op(&host, "pkg.sub", "A", &def, &diag), ALK_OK);
    cr_assert_str_eq(def->module, "pkg.sub");
    cr_assert_eq(alk_host_find_op(&host, "pkg.sub.deep.x", "A", &def, &diag), ALK_OK);
    cr_assert_str_eq(def->module, "pkg.sub.deep");
    cr_assert_eq(alk_host_find_op(&host, "pkg.other", "A", &def, &diag), ALK_OK);
    cr_assert_str_eq(def->module, "pkg");
    cr_assert_eq(alk_host_find_op(&host, "pkgx.y", "A", &def, &diag), ALK_ENOENT,
                 "a prefix ends at a dot");
    cr_assert_str_eq(diag.message, "unsupported layer A (module pkgx.y)");
    cr_assert_eq(alk_host_find_op(&host, "keras.layers", "Dense", &def, &diag), ALK_ENOENT);
    cr_assert_str_eq(diag.message, "unsupported layer Dense (module keras.layers)");
    cr_assert_eq(alk_host_find_op(&host, ".x", "A", &def, &diag), ALK_EINVAL);
}

static void bad_einsum(alk_op *op) {
    alk_fva *x = alk_op_in(op, 0);
    alk_op_out(op, alk_fva_einsum(alk_op_trace(op), "ij,j->i", x, x));
}

Test(op, errors_of_tracing_calls_get_the_layer_prefix_once) {
    int rv = probe_call("x", 1, 1, NULL, training_false, bad_einsum, NULL);
    cr_assert_eq(rv, ALK_EINVAL);
    const char *message = alk_trace_message(trace);
    cr_assert(strncmp(message, "layer p (Probe): ", 17) == 0, "%s", message);
    cr_assert(strstr(message + 17, "layer p") == NULL, "prefixed twice: %s", message);
    cr_assert(strstr(message, "einsum") != NULL, "%s", message);
}

static void no_result(alk_op *op) {
    (void)op;
}

Test(op, a_handler_without_result_fails) {
    expect_error(probe_call("x", 1, 1, NULL, training_false, no_result, NULL),
                 "layer p (Probe): the handler produced no result");
}

Test(op, a_failed_trace_runs_nothing) {
    (void)alk_trace_fail(trace, ALK_EINVAL, "earlier failure");
    cr_assert_null(
        alk_op_new(alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/"), "p", "m", "C", NULL));
    cr_assert_eq(alk_op_run(NULL, &fake_ops[0]), ALK_ENOMEM);
    cr_assert_str_eq(alk_trace_message(trace), "earlier failure");
}

Test(op, multi_output_rows_must_own_their_activation) {
    static const probe pair_probe = {pair_of};
    static const alk_op_def def = {"m", "Pair", run_probe, &pair_probe, 0, 1, 1, "x", NULL};
    alk_op *op = alk_op_new(keras_scope(), "p", "m", "Pair", NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, numbers(2, x_values)));
    expect_error(alk_op_run(op, &def),
                 "layer p (Pair): the activation step needs one array result, got 1 result(s); "
                 "a row returning several must own its activation (ALK_OP_OWN_ACTIVATION)");
}

/* Every allocation of a whole call (arena blocks, the trace map) may fail: the result is a
 * clean ENOMEM in the trace, nothing leaks and nothing crashes. */
Test(op, every_allocation_failure_is_a_clean_enomem) {
    teardown();
    for (unsigned long nth = 1;; nth++) {
        long live = alk_alloc_live();
        alk_trace_config config;
        alk_trace_config_init(&config);
        config.arena_block = 256; /* many blocks: many failure points */
        trace = NULL;
        alk_alloc_fail_at(nth, false);
        int rv = alk_trace_new(&config, &trace);
        alk__trace_map_init(&map);
        alk_arena_init(&arena, 0);
        if (rv == ALK_OK) {
            alk_scope *scope = alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/");
            alk_scope_set_activation(scope, relu_activation);
            alk_op *op = alk_op_new(scope, "o", "fake.layers", "Outer", NULL);
            alk_op_add_arg(op, NULL, alk_arg_of_array(op, x_vars()));
            alk_op_weights weights = {by_role, f4_tensor_source((const float[]){1, 2}, "f4")};
            alk_op_set_weights(op, &weights);
            rv = alk_op_run(op, &fake_ops[ROW_OUTER]);
            alk_fva *y = alk_op_result_array(op, 0);
            rv = alk_scope_finish(scope, "final", &y, 1, NULL);
        }
        bool failed = alk_alloc_count() >= nth;
        alk_alloc_fail_at(0, false);
        cr_assert(rv == ALK_OK || rv == ALK_ENOMEM, "allocation %lu: %s", nth, alk_err_name(rv));
        cr_assert(failed || rv == ALK_OK, "allocation %lu did not fail", nth);
        teardown();
        cr_assert_eq(alk_alloc_live(), live, "allocation %lu: leak", nth);
        if (!failed) {
            break;
        }
    }
    setup();
}

Test(op, an_argument_whose_value_failed_is_named) {
    alk_op *op =
        alk_op_new(alk_scope_new(&host, trace, ALK_SCOPE_KERAS, "/"), "c", "m", "Concat", NULL);
    alk_op_add_arg(op, NULL, alk_arg_of_array(op, x_vars()));
    alk_op_add_arg(op, NULL, NULL);
    cr_assert_str_eq(alk_trace_message(trace),
                     "layer c (Concat): positional argument 1 has no value");
}
