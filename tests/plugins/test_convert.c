/*
 * alk_convert's choices before any tracing: the framework (given, or inferred from the model's
 * module string like the reference's type(model).__module__.split('.', 1)[0]), the error that
 * lists the available tracers, solver options, and the "inputs must be provided" rule.
 */
#include "plugin/convert.h"
#include "core/alloc.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(convert, framework_of_module) {
    char key[32];
    cr_assert_eq(alk_framework_of_module("keras.src.models.functional", key, sizeof(key)), 0);
    cr_assert_str_eq(key, "keras");
    cr_assert_eq(alk_framework_of_module("torch.nn.modules.container", key, sizeof(key)), 0);
    cr_assert_str_eq(key, "torch");
    cr_assert_eq(alk_framework_of_module("alkaid.converter.example", key, sizeof(key)), 0);
    cr_assert_str_eq(key, "alkaid");
    cr_assert_eq(alk_framework_of_module("mymodule", key, sizeof(key)), 0);
    cr_assert_str_eq(key, "mymodule");
    cr_assert_eq(alk_framework_of_module(".hidden", key, sizeof(key)), ALK_EINVAL);
    cr_assert_eq(alk_framework_of_module("", key, sizeof(key)), ALK_EINVAL);
    cr_assert_eq(alk_framework_of_module("averyveryveryverylongframeworkname.x", key, 8),
                 ALK_EINVAL);
}

static alk_generation *generation;
static alk_arena arena;

/* The built-in plugins of the build tree plus the mock tracer of the plugin tests. */
static void setup(void) {
    generation = test_generation_with_mock("alir_tracer.plugins", "mock", "mock_tracer");
    alk_arena_init(&arena, 0);
}

static void teardown(void) {
    alk_generation_unref(generation);
    alk_arena_fini(&arena);
}

static const alk_value *json(const char *text) {
    return test_json(&arena, text);
}

/* Converts `model_json` with `framework` and `module` (either may be NULL); returns the error and
 * the message. */
static int convert(const char *framework, const char *module, const char *model_json,
                   alk_diag *diag) {
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = framework;
    request.module = module;
    request.model = json(model_json);
    alk_convert_result result = {0};
    int rv = alk_convert(generation, &request, &result, diag);
    alk_convert_result_fini(&result);
    return rv;
}

TestSuite(convert_request, .init = setup, .fini = teardown);

Test(convert_request, unknown_framework_lists_the_available_keys) {
    alk_diag diag = {{0}};
    cr_assert_eq(convert(NULL, "flax.linen.module", "{}", &diag), ALK_EINVAL);
    cr_assert_str_eq(diag.message,
                     "unknown framework 'flax' (available: mock, alkaid, keras, torch)");
    /* keras.src.models.functional names the keras tracer, which reads its payload. */
    cr_assert_eq(convert(NULL, "keras.src.models.functional", "{}", &diag), ALK_EINVAL);
    cr_assert_str_eq(diag.message, "keras tracer: model.format is missing");
    /* torch's module string picks the torch tracer, which needs explicit inputs. */
    cr_assert_eq(convert(NULL, "torch.nn.modules.container", "{}", &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "inputs must be provided: the torch tracer") != NULL, "%s",
              diag.message);
    cr_assert_eq(convert("jax", NULL, "{}", &diag), ALK_EINVAL);
    cr_assert_str_eq(diag.message,
                     "unknown framework 'jax' (available: mock, alkaid, keras, torch)");
    /* One key: the envelope's module, never a "module" inside the model payload. */
    cr_assert_eq(convert(NULL, NULL, "{\"module\": \"alkaid.x\", \"input_shape\": [4, 5]}", &diag),
                 ALK_EINVAL);
    cr_assert(strstr(diag.message, "no framework and no module") != NULL, "%s", diag.message);
}

Test(convert_request, framework_inferred_from_module) {
    alk_diag diag = {{0}};
    cr_assert_eq(convert(NULL, "alkaid.converter.example", "{\"input_shape\": [4, 5]}", &diag),
                 ALK_OK, "%s", diag.message);
    /* The mock tracer's model names an unknown layer: the error comes from the mock tracer. */
    cr_assert_eq(convert(NULL, "mock.models",
                         "{\"input_shape\": [2], \"layers\": "
                         "[{\"module\": \"nopkg.x\", \"class_name\": \"Y\", \"name\": \"y1\"}]}",
                         &diag),
                 ALK_ENOENT);
    cr_assert(strstr(diag.message, "mock tracer: layer y1 (Y): unsupported layer Y") != NULL, "%s",
              diag.message);
}

Test(convert_request, inputs_must_be_provided) {
    alk_diag diag = {{0}};
    cr_assert_eq(convert("alkaid", NULL, "{\"input_shape\": null}", &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "inputs must be provided") != NULL, "%s", diag.message);
    cr_assert_eq(convert("alkaid", NULL, "{\"input_shape\": [4, \"five\"]}", &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "model.input_shape[1] must be a positive integer") != NULL, "%s",
              diag.message);
    cr_assert_eq(convert("alkaid", NULL, "{\"input_shape\": [4, 5, 6]}", &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "needs a 2-D input") != NULL, "%s", diag.message);
}

Test(convert_request, tracer_shapes_meet_the_element_limit) {
    /* The example tracer declares the model's input_shape; 5000 x 5000 is 25 M elements. */
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "alkaid";
    request.model = json("{\"input_shape\": [5000, 5000]}");
    request.max_input_elements = (uint64_t)1 << 24;
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    long live = alk_alloc_live();
    cr_assert_eq(alk_convert(generation, &request, &result, &diag), ALK_ELIMIT, "%s", diag.message);
    cr_assert(strstr(diag.message, "[5000, 5000]") != NULL, "%s", diag.message);
    cr_assert(strstr(diag.message, "alkaid tracer") != NULL, "%s", diag.message);
    cr_assert(strstr(diag.message, "16777216") != NULL, "%s", diag.message);
    cr_assert_eq(alk_alloc_live(), live);
}

Test(convert_request, an_input_wider_than_64_bits_is_a_limit) {
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "alkaid";
    request.model = json("{\"input_shape\": [4, 5]}");
    static const int kif[1][3] = {{1, 40, 24}};
    request.inputs_kif = kif;
    request.n_inputs_kif = 1;
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    cr_assert_eq(alk_convert(generation, &request, &result, &diag), ALK_ELIMIT, "%s", diag.message);
    cr_assert_str_eq(diag.message,
                     "input 0: format (1, 40, 24) is 65 bits wide; ALIR values hold at most 64");
    alk_convert_result_fini(&result);
}

Test(convert_request, zero_hwconf_sizes_are_refused_not_divided_by) {
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "alkaid";
    request.model = json("{\"input_shape\": [4, 5]}");
    request.hwconf.carry_size = 0;
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    cr_assert_eq(alk_convert(generation, &request, &result, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "hwconf (1, 0, -1)") != NULL, "%s", diag.message);
    request.hwconf = ALK_HWCONF_DEFAULT;
    request.hwconf.adder_size = -1; /* negative sizes are the reference's quirk, accepted */
    cr_assert_eq(alk_convert(generation, &request, &result, &diag), ALK_OK, "%s", diag.message);
    alk_convert_result_fini(&result);
}

Test(convert_request, dump_returns_the_named_traces) {
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "alkaid";
    request.model = json("{\"input_shape\": [4, 5]}");
    request.dump = true;
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    cr_assert_eq(alk_convert(generation, &request, &result, &diag), ALK_OK, "%s", diag.message);
    cr_assert_eq(result.n_output_names, 1);
    cr_assert_str_eq(result.output_names[0], "output_name");
    cr_assert_eq(result.n_dump, 1);
    cr_assert_str_eq(result.dump[0].name, "output_name");
    /* The only named trace is the output itself: the same program. */
    cr_assert(alk_program_equal(result.dump[0].program, result.program));
    cr_assert_eq(result.program->n_in, 20);
    cr_assert_eq(result.program->n_out, 16);
    alk_convert_result_fini(&result);
}

Test(convert_request, a_set_cancel_flag_stops_the_conversion) {
    atomic_bool cancel;
    atomic_init(&cancel, true);
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "alkaid";
    request.model = json("{\"input_shape\": [16, 4]}");
    request.cancel = &cancel;
    alk_convert_result result = {0};
    alk_diag diag = {{0}};
    cr_assert_eq(alk_convert(generation, &request, &result, &diag), ALK_ECANCELED, "%s",
                 diag.message);
    cr_assert(strstr(diag.message, "cancelled") != NULL, "%s", diag.message);
    cr_assert_null(result.program);
    atomic_store(&cancel, false);
    cr_assert_eq(alk_convert(generation, &request, &result, &diag), ALK_OK, "%s", diag.message);
    alk_convert_result_fini(&result);
}

Test(convert_request, a_cancelled_cmvm_solve_stops) {
    enum { N = 24 };
    double kernel[N * N];
    for (int i = 0; i < N * N; i++) {
        kernel[i] = (double)((i * 7919) % 255 - 127);
    }
    alk_cmvm_problem problem = {.n_in = N, .n_out = N, .kernel = kernel};
    alk_cmvm_options options;
    alk_cmvm_options_init(&options);
    atomic_bool cancel;
    atomic_init(&cancel, true);
    options.cancel = &cancel;
    alk_cmvm_result result = {0};
    alk_diag diag = {{0}};
    long live = alk_alloc_live();
    cr_assert_eq(alk_cmvm_solve(&problem, &options, &result, &diag), ALK_ECANCELED, "%s",
                 diag.message);
    cr_assert_eq(alk_alloc_live(), live);
    atomic_store(&cancel, false);
    cr_assert_eq(alk_cmvm_solve(&problem, &options, &result, &diag), ALK_OK, "%s", diag.message);
    alk_cmvm_result_fini(&result);
}

/* inputs_kif without inputs: formats for the tracer's own shapes. The example quantizes its
 * input to (1, 8, 4) first, so giving exactly that format must change nothing. */
Test(convert_request, inputs_kif_applies_to_the_tracer_shapes) {
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "alkaid";
    request.model = json("{\"input_shape\": [4, 5]}");
    alk_convert_result plain = {0};
    alk_convert_result with_kif = {0};
    alk_diag diag = {{0}};
    cr_assert_eq(alk_convert(generation, &request, &plain, &diag), ALK_OK, "%s", diag.message);
    static const int kif[2][3] = {{1, 8, 4}, {1, 8, 4}};
    request.inputs_kif = kif;
    request.n_inputs_kif = 1;
    cr_assert_eq(alk_convert(generation, &request, &with_kif, &diag), ALK_OK, "%s", diag.message);
    cr_assert(alk_program_equal(plain.program, with_kif.program));
    alk_convert_result_fini(&with_kif);
    request.n_inputs_kif = 2;
    cr_assert_eq(alk_convert(generation, &request, &with_kif, &diag), ALK_EINVAL);
    cr_assert_str_eq(diag.message, "inputs_kif has 2 triples for 1 inputs");
    alk_convert_result_fini(&plain);
}
