/*
 * The torch tracer plugin in-process, through alk_convert with the build tree's plugins: a small
 * graph without tensors (so it fits in JSON) that walks most of the tracer's machinery — two
 * placeholders, a list argument, a method, a table function composed with a product and
 * tabulated by round, a tuple index with slices, a reduction with keepdim, a tuple output — checked
 * against hand-computed values through the ALIR interpreter; the same conversion with every
 * allocation failing in turn (a clean ENOMEM or success, never a crash or a leak under ASAN);
 * the plugin's own checks of a graph whose walk order is broken; and a module and a function of a
 * third-party package served by a second-level alkaid_torch plugin (mock_torchpkg.c), loaded on
 * demand, one of them delegating to the tracer's own ReLU row.
 *
 * The conversions against torch itself, and every module and function, are in tests/torch/.
 */
#include "alir/interp.h"
#include "core/alloc.h"
#include "plugin/convert.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static alk_generation *generation;
static alk_arena arena;

/* The build tree's plugins plus the mock alkaid_torch plugin "torchpkg". */
static void setup(void) {
    generation = test_generation_with_mock("alkaid_torch", "torchpkg", "mock_torchpkg");
    alk_arena_init(&arena, 0);
}

static void teardown(void) {
    alk_generation_unref(generation);
    alk_arena_fini(&arena);
}

TestSuite(torch_tracer, .init = setup, .fini = teardown);

/* x (1, 4), y (1, 4): cat([x, y], -1).sigmoid() * 16, rounded; every second column summed with
 * keepdim; outputs (that sum, x). */
static const char GRAPH[] =
    "{\"version\": 1, \"modules\": {}, \"tensors\": {}, \"graph\": {\"nodes\": ["
    "{\"name\": \"x\", \"op\": \"placeholder\", \"target\": \"x\", \"args\": [], \"kwargs\": {}},"
    "{\"name\": \"y\", \"op\": \"placeholder\", \"target\": \"y\", \"args\": [], \"kwargs\": {}},"
    "{\"name\": \"cat\", \"op\": \"call_function\", \"target\": \"torch.cat\","
    " \"args\": [[{\"$node\": \"x\"}, {\"$node\": \"y\"}]], \"kwargs\": {\"dim\": -1}},"
    "{\"name\": \"sigmoid\", \"op\": \"call_method\", \"target\": \"sigmoid\","
    " \"args\": [{\"$node\": \"cat\"}], \"kwargs\": {}},"
    "{\"name\": \"mul\", \"op\": \"call_function\", \"target\": \"operator.mul\","
    " \"args\": [{\"$node\": \"sigmoid\"}, 16], \"kwargs\": {}},"
    "{\"name\": \"round_1\", \"op\": \"call_function\", \"target\": \"torch.round\","
    " \"args\": [{\"$node\": \"mul\"}], \"kwargs\": {}},"
    "{\"name\": \"getitem\", \"op\": \"call_function\", \"target\": \"operator.getitem\","
    " \"args\": [{\"$node\": \"round_1\"}, {\"$tuple\": [{\"$slice\": [null, null, null]},"
    " {\"$slice\": [1, null, 2]}]}], \"kwargs\": {}},"
    "{\"name\": \"sum_1\", \"op\": \"call_method\", \"target\": \"sum\","
    " \"args\": [{\"$node\": \"getitem\"}], \"kwargs\": {\"dim\": -1, \"keepdim\": true}},"
    "{\"name\": \"output\", \"op\": \"output\", \"target\": \"output\","
    " \"args\": [{\"$tuple\": [{\"$node\": \"sum_1\"}, {\"$node\": \"x\"}]}], \"kwargs\": {}}"
    "]}}";

static const alk_value *json(const char *text) {
    return test_json(&arena, text);
}

/* Converts `model` on two (1, 4) inputs of format (1, 2, 2). */
static int convert(const alk_value *model, alk_convert_result *result, alk_diag *diag) {
    static const alk_input_spec inputs[2] = {
        {.n_dims = 2, .dims = {1, 4}, .has_kif = true, .kif = {1, 2, 2}},
        {.n_dims = 2, .dims = {1, 4}, .has_kif = true, .kif = {1, 2, 2}},
    };
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "torch";
    request.model = model;
    request.inputs = inputs;
    request.n_inputs = 2;
    return alk_convert(generation, &request, result, diag);
}

/* round-half-even(16 * sigmoid(v)), the composed table's value. */
static double table(double v) {
    return nearbyint(16 / (1 + exp(-v)));
}

Test(torch_tracer, converts_a_graph_and_computes_its_values) {
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    cr_assert_eq(convert(json(GRAPH), &result, &diag), ALK_OK, "%s", diag.message);
    cr_assert_eq(result.n_output_names, 1);
    cr_assert_str_eq(result.output_names[0], "final");
    alk_interp *interp = NULL;
    cr_assert_eq(alk_interp_new(result.program, &interp, &diag), ALK_OK, "%s", diag.message);
    const double samples[2][8] = {
        {0.25, -1.5, 3.75, -4.0, 0.0, 2.5, -0.75, 1.25},
        {-3.25, 0.5, -2.0, 3.5, 1.75, -0.25, 2.0, -3.75},
    };
    double out[2][5];
    cr_assert_eq(alk_interp_run(interp, &samples[0][0], 2, &out[0][0], &diag), ALK_OK, "%s",
                 diag.message);
    for (size_t s = 0; s < 2; s++) {
        /* Columns 1, 3, 5, 7 of cat([x, y]): x1, x3, y1, y3. */
        const double *v = samples[s];
        double sum = table(v[1]) + table(v[3]) + table(v[5]) + table(v[7]);
        cr_assert_eq(out[s][0], sum, "sample %zu: %g != %g", s, out[s][0], sum);
        for (size_t j = 0; j < 4; j++) {
            cr_assert_eq(out[s][1 + j], v[j]);
        }
    }
    alk_interp_free(interp);
    alk_convert_result_fini(&result);
}

Test(torch_tracer, every_allocation_failure_is_a_clean_enomem) {
    const alk_value *model = json(GRAPH);
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    alk_alloc_fail_at(0, false); /* restarts the count */
    cr_assert_eq(convert(model, &result, &diag), ALK_OK, "%s", diag.message);
    alk_convert_result_fini(&result);
    unsigned long total = alk_alloc_count();
    /* The walk, the kit and the tracing API allocate many times: fail each one in turn. */
    cr_assert_gt(total, 100, "only %lu allocations", total);
    size_t enomem = 0;
    for (unsigned long nth = 1; nth <= total; nth++) {
        alk_alloc_fail_at(nth, false);
        int rv = convert(model, &result, &diag);
        alk_alloc_fail_at(0, false);
        cr_assert(rv == ALK_OK || rv == ALK_ENOMEM, "allocation %lu: %s (%s)", nth,
                  alk_strerror(rv), diag.message);
        enomem += rv == ALK_ENOMEM;
        alk_convert_result_fini(&result);
    }
    cr_assert_gt(enomem, total / 2, "%zu of %lu failures reported", enomem, total);
}

Test(torch_tracer, a_reference_must_name_an_earlier_node) {
    /* The sigmoid node refers to the later mul node: a forward reference, as any cycle has. */
    char graph[sizeof(GRAPH)];
    memcpy(graph, GRAPH, sizeof(GRAPH));
    char *ref = strstr(graph, "\"args\": [{\"$node\": \"cat\"}]");
    cr_assert_not_null(ref);
    memcpy(strstr(ref, "cat"), "mul", 3);
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    cr_assert_eq(convert(json(graph), &result, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "node sigmoid (call_method sigmoid): refers to node 'mul', "
                                   "which comes after it") != NULL,
              "%s", diag.message);
    alk_convert_result_fini(&result);
}

Test(torch_tracer, a_second_level_plugin_serves_its_package) {
    const char *graph =
        "{\"version\": 1, \"tensors\": {}, \"modules\": {\"d\": {\"type\": "
        "\"torchpkg.layers.Double\", \"attrs\": {}, \"params\": {}}}, \"graph\": {\"nodes\": ["
        "{\"name\": \"x\", \"op\": \"placeholder\", \"target\": \"x\", \"args\": [], "
        "\"kwargs\": {}},"
        "{\"name\": \"y\", \"op\": \"placeholder\", \"target\": \"y\", \"args\": [], "
        "\"kwargs\": {}},"
        "{\"name\": \"d\", \"op\": \"call_module\", \"target\": \"d\", "
        "\"args\": [{\"$node\": \"x\"}], \"kwargs\": {}},"
        "{\"name\": \"add_n\", \"op\": \"call_function\", \"target\": \"torchpkg.ops.add_n\", "
        "\"args\": [{\"$node\": \"d\"}], \"kwargs\": {\"n\": 0.5}},"
        "{\"name\": \"output\", \"op\": \"output\", \"target\": \"output\", "
        "\"args\": [{\"$node\": \"add_n\"}], \"kwargs\": {}}]}}";
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    cr_assert_eq(convert(json(graph), &result, &diag), ALK_OK, "%s", diag.message);
    alk_interp *interp = NULL;
    cr_assert_eq(alk_interp_new(result.program, &interp, &diag), ALK_OK, "%s", diag.message);
    /* y is not used: the program reads x only. */
    const double x[4] = {1.25, -0.5, 3.75, -4.0};
    double out[4];
    cr_assert_eq(alk_interp_run(interp, x, 1, out, &diag), ALK_OK, "%s", diag.message);
    for (size_t j = 0; j < 4; j++) {
        double want = (x[j] > 0 ? 2 * x[j] : 0) + 0.5;
        cr_assert_eq(out[j], want, "x[%zu]: %g != %g", j, out[j], want);
    }
    alk_interp_free(interp);
    alk_convert_result_fini(&result);

    /* A package without a plugin is named. */
    char other[2048];
    (void)snprintf(other, sizeof(other), "%s", graph);
    memcpy(strstr(other, "torchpkg.ops"), "otherpkg.ops", 12);
    cr_assert_eq(convert(json(other), &result, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "unsupported function otherpkg.ops.add_n at node add_n: ") !=
                  NULL,
              "%s", diag.message);
    cr_assert(strstr(diag.message, "no alkaid_torch plugin named 'otherpkg'") != NULL, "%s",
              diag.message);
    alk_convert_result_fini(&result);
}
