/*
 * The handler kit through real plugins and alk_convert: the mock tracer (as framework "keras",
 * fed from JSON) and the table-driven second-level plugin fakepkg, loaded on demand. Each model's
 * ALIR program (and the dumped intermediate programs) are evaluated by the ALIR interpreter on
 * every input of the format (1, 3, 0) and compared with values worked out by hand from what each
 * row, hook and activation does (see mock_tracer.c, mock_fakepkg.c):
 *   before_op(x) = x + 1, after_op(y) = y - 1, relu as the activation step,
 *   FakeDense = Dense with the kernel doubled and the bias halved, Shift = x + shift
 *   (x + 100 shift under the prefix row), Scale = 2x (mock.layers) or 3x (prefix row "mock").
 */
#include "alir/interp.h"
#include "plugin/convert.h"
#include "core/alloc.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static alk_generation *generation;
static alk_arena arena;

static void setup(void) {
    (void)snprintf(dir, sizeof(dir), "/tmp/alk-kit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    test_write_manifest(dir, "keras", ALK_GROUP_TRACER, "mock_keras");
    test_write_manifest(dir, "fakepkg", ALK_GROUP_KERAS, "mock_fakepkg");
    const char *dirs[] = {dir};
    alk_plugin_config config = {.dirs = dirs, .n_dirs = 1};
    alk_diag diag = {{0}};
    cr_assert_eq(alk_generation_build(&config, NULL, &generation, &diag), ALK_OK, "%s",
                 diag.message);
    alk_arena_init(&arena, 0);
}

static void teardown(void) {
    alk_generation_unref(generation);
    alk_arena_fini(&arena);
    char cmd[128];
    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)system(cmd);
}

TestSuite(kit, .init = setup, .fini = teardown);

/* Converts `model_json` (framework "keras", inputs of format (1, 3, 0)), with the dump. */
static int convert(const char *model_json, alk_convert_result *result, alk_diag *diag) {
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = "keras";
    alk_diag json_diag = {{0}};
    cr_assert_eq(alk_value_from_json(model_json, strlen(model_json), NULL, &arena, &request.model,
                                     &json_diag),
                 ALK_OK, "%s", json_diag.message);
    static const int kif[1][3] = {{1, 3, 0}};
    request.inputs_kif = kif;
    request.n_inputs_kif = 1;
    request.dump = true;
    *result = (alk_convert_result){0};
    return alk_convert(generation, &request, result, diag);
}

static const alk_program *dumped(const alk_convert_result *result, const char *name) {
    for (size_t i = 0; i < result->n_dump; i++) {
        if (strcmp(result->dump[i].name, name) == 0) {
            return result->dump[i].program;
        }
    }
    cr_assert_fail("no dump entry %s", name);
    return NULL;
}

/* The names of the dump, in order, joined by spaces. */
static const char *dump_names(const alk_convert_result *result) {
    static char names[2048];
    names[0] = '\0';
    for (size_t i = 0; i < result->n_dump; i++) {
        strncat(names, result->dump[i].name, sizeof(names) - strlen(names) - 2);
        strcat(names, " ");
    }
    return names;
}

typedef void oracle_fn(const double *x, double *ret);

/* Evaluates `program` on every input pair of [-8, 7]^2 and compares each output with
 * `oracle`'s. */
static void expect_program(const alk_program *program, size_t n_out, oracle_fn *oracle) {
    cr_assert_eq(program->n_in, 2);
    cr_assert_eq(program->n_out, n_out);
    alk_interp *interp = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_interp_new(program, &interp, &diag), ALK_OK, "%s", diag.message);
    for (int a = -8; a <= 7; a++) {
        for (int b = -8; b <= 7; b++) {
            double x[2] = {a, b}, got[32], want[32];
            cr_assert_eq(alk_interp_run(interp, x, 1, got, &diag), ALK_OK, "%s", diag.message);
            oracle(x, want);
            for (size_t i = 0; i < n_out; i++) {
                cr_assert(got[i] == want[i], "x = (%d, %d), output %zu: %g, want %g", a, b, i,
                          got[i], want[i]);
            }
        }
    }
    alk_interp_free(interp);
}

static double relu(double v) {
    return v > 0 ? v : 0;
}

#define INPUT "{\"input\": 0}"

/* ---- Hooks, delegation, prefix rows, through the plugins ---------------------------------- */

static const char *hooks_model =
    "{\"input_shape\": [1, 2], \"layers\": ["
    /* before, kernel x2, bias /2, relu, after */
    "{\"name\": \"fd\", \"module\": \"fakepkg.layers\", \"class_name\": \"FakeDense\","
    " \"config\": {\"activation\": \"relu\"}, \"args\": [" INPUT "],"
    " \"weights\": {\"kernel\": [[1], [2]], \"bias\": [0.5]}},"
    "{\"name\": \"s\", \"module\": \"fakepkg.layers\", \"class_name\": \"Shift\","
    " \"config\": {\"shift\": 0.5, \"activation\": \"relu\"}, \"args\": [" INPUT "]},"
    "{\"name\": \"so\", \"module\": \"fakepkg.layers\", \"class_name\": \"ShiftOwn\","
    " \"config\": {\"shift\": 0.5, \"activation\": \"relu\"}, \"args\": [" INPUT "]},"
    "{\"name\": \"sp\", \"module\": \"fakepkg.other\", \"class_name\": \"Shift\","
    " \"config\": {\"shift\": 0.5}, \"args\": [" INPUT "]},"
    "{\"name\": \"m2\", \"module\": \"mock.layers\", \"class_name\": \"Scale\", \"args\": [" INPUT
    "]},"
    "{\"name\": \"m3\", \"module\": \"mock.x\", \"class_name\": \"Scale\", \"args\": [" INPUT "]},"
    "{\"name\": \"add\", \"module\": \"mock.ops\", \"class_name\": \"add\","
    " \"args\": [{\"ref\": \"fd\"}, {\"ref\": \"s\"}]}],"
    " \"outputs\": [\"fd\", \"s\", \"so\", \"sp\", \"m2\", \"m3\", \"add\"]}";

static void hooks_oracle(const double *x, double *out) {
    double fd = relu(2 * (x[0] + 1) + 4 * (x[1] + 1) + 0.25) - 1;
    out[0] = fd;
    for (int i = 0; i < 2; i++) {
        out[1 + i] = relu(x[i] + 1 + 0.5) - 1; /* s: hooks around relu */
        out[3 + i] = relu(x[i] + 0.5);         /* so: owns iq and oq */
        out[5 + i] = x[i] + 1 + 50 - 1;        /* sp: prefix row, x + 100 * shift */
        out[7 + i] = 2 * x[i];                 /* m2: exact row of the tracer */
        out[9 + i] = 3 * x[i];                 /* m3: prefix row of the tracer */
        out[11 + i] = fd + out[1 + i];         /* add: broadcast (1, 1) + (1, 2) */
    }
}

static void fd_post_call_oracle(const double *x, double *out) {
    out[0] = 2 * (x[0] + 1) + 4 * (x[1] + 1) + 0.25;
}

static void fd_post_iq_oracle(const double *x, double *out) {
    out[0] = x[0] + 1;
    out[1] = x[1] + 1;
}

Test(kit, hooks_delegation_and_prefix_rows_compute_what_the_rows_say) {
    alk_convert_result result;
    alk_diag diag = {{0}};
    cr_assert_eq(convert(hooks_model, &result, &diag), ALK_OK, "%s", diag.message);
    expect_program(result.program, 13, hooks_oracle);
    /* The dump: the plugin's own keys first, in call order, then post_call and final. */
    cr_assert(strncmp(dump_names(&result),
                      "/fd/post_iq /fd/inits=1 /fd/post_call /fd/final /s/post_iq /s/post_call "
                      "/s/final /so/post_call /so/final /sp/post_iq",
                      strlen("/fd/post_iq /fd/inits=1 /fd/post_call /fd/final /s/post_iq "
                             "/s/post_call /s/final /so/post_call /so/final /sp/post_iq")) == 0,
              "%s", dump_names(&result));
    expect_program(dumped(&result, "/fd/post_call"), 1, fd_post_call_oracle);
    expect_program(dumped(&result, "/fd/post_iq"), 2, fd_post_iq_oracle);
    cr_assert_eq(result.n_output_names, 1);
    cr_assert_str_eq(result.output_names[0], "final");
    alk_convert_result_fini(&result);
}

/* ---- Nested scopes (Keras) and the torch style --------------------------------------------- */

static const char *nested_model =
    "{\"input_shape\": [1, 2], \"layers\": ["
    "{\"name\": \"sub\", \"args\": [" INPUT "], \"layers\": ["
    "  {\"name\": \"m\", \"module\": \"mock.layers\", \"class_name\": \"Scale\","
    "   \"args\": [" INPUT "]}]},"
    "{\"name\": \"sub\", \"args\": [{\"ref\": \"sub\"}], \"layers\": ["
    "  {\"name\": \"m\", \"module\": \"mock.x\", \"class_name\": \"Scale\","
    "   \"args\": [" INPUT "]}]},"
    "{\"name\": \"m\", \"module\": \"mock.layers\", \"class_name\": \"Scale\","
    " \"config\": {\"factor\": 0.5}, \"args\": [" INPUT "]}],"
    " \"outputs\": [\"sub\", \"m\"]}";

static void nested_oracle(const double *x, double *out) {
    /* The second "sub" (3x of the first's 2x) shadows the first in the mock's name lookup. */
    for (int i = 0; i < 2; i++) {
        out[i] = 6 * x[i];
        out[2 + i] = x[i];
    }
}

Test(kit, nested_keras_models_dump_under_their_renamed_names) {
    alk_convert_result result;
    alk_diag diag = {{0}};
    cr_assert_eq(convert(nested_model, &result, &diag), ALK_OK, "%s", diag.message);
    cr_assert_str_eq(dump_names(&result),
                     "/sub/m/post_call /sub/m/final /sub/final /sub#1/m/post_call /sub#1/m/final "
                     "/sub#1/final /m/post_call /m/final final ");
    expect_program(result.program, 4, nested_oracle);
    alk_convert_result_fini(&result);
}

static const char *torch_model =
    "{\"input_shape\": [1, 2], \"style\": \"torch\", \"layers\": ["
    "{\"name\": \"block.scale\", \"module\": \"mock.layers\", \"class_name\": \"Scale\","
    " \"args\": [" INPUT "]},"
    "{\"name\": \"block.scale\", \"module\": \"mock.layers\", \"class_name\": \"Scale\","
    " \"args\": [{\"ref\": \"block.scale\"}], \"kwargs\": {\"inplace\": true}},"
    "{\"name\": \"size\", \"module\": \"mock.ops\", \"class_name\": \"size\","
    " \"args\": [" INPUT ", -1]},"
    "{\"name\": \"size_1\", \"module\": \"mock.ops\", \"class_name\": \"size\","
    " \"args\": [" INPUT "], \"kwargs\": {\"dim\": 1}},"
    "{\"name\": \"mul\", \"module\": \"mock.ops\", \"class_name\": \"mul\","
    " \"args\": [{\"ref\": \"block.scale\"}, {\"ref\": \"size_1\"}]},"
    "{\"name\": \"split2\", \"module\": \"mock.ops\", \"class_name\": \"split2\","
    " \"args\": [" INPUT "]}],"
    " \"outputs\": [\"mul\", \"split2\"]}";

static void torch_oracle(const double *x, double *out) {
    for (int i = 0; i < 2; i++) {
        out[i] = 4 * x[i] * 2; /* Scale twice, times x.size(1) = 2 */
        out[2 + i] = x[i];     /* split2's first result */
    }
}

Test(kit, torch_style_dumps_final_only_and_only_arrays) {
    alk_convert_result result;
    alk_diag diag = {{0}};
    /* size(-1) is refused by the mock (it checks 0 <= dim < ndim): a reader error path. */
    cr_assert_eq(convert(torch_model, &result, &diag), ALK_EINVAL);
    cr_assert_str_eq(diag.message, "keras tracer: layer size (size): dim -1 is out of range");
    alk_convert_result_fini(&result);
}

Test(kit, torch_style_dump_names) {
    char model[2048];
    (void)snprintf(model, sizeof(model), "%s", torch_model);
    char *minus = strstr(model, ", -1]");
    memcpy(minus, ",  1]", 5);
    alk_convert_result result;
    alk_diag diag = {{0}};
    cr_assert_eq(convert(model, &result, &diag), ALK_OK, "%s", diag.message);
    /* Modules dump "a/b/final" and get "#1" when called again; int results are not dumped;
     * several array results are dumped together, like a module's final tuple. */
    cr_assert_str_eq(dump_names(&result),
                     "block/scale/final block/scale#1/final mul/final split2/final final ");
    expect_program(result.program, 4, torch_oracle);
    alk_convert_result_fini(&result);
}

/* ---- Errors through a tracer --------------------------------------------------------------- */

static void expect_refused(const char *layer_json, int err, const char *message) {
    char model[1024];
    (void)snprintf(model, sizeof(model), "{\"input_shape\": [1, 2], \"layers\": [%s]}", layer_json);
    alk_convert_result result;
    alk_diag diag = {{0}};
    cr_assert_eq(convert(model, &result, &diag), err, "%s", diag.message);
    cr_assert_str_eq(diag.message, message);
    alk_convert_result_fini(&result);
}

Test(kit, errors_name_the_layer_and_its_class) {
    expect_refused("{\"name\": \"a\", \"module\": \"mock.ops\", \"class_name\": \"add\", "
                   "\"args\": [" INPUT "]}",
                   ALK_EINVAL, "keras tracer: layer a (add): takes 2 arguments, got 1");
    expect_refused("{\"name\": \"s\", \"module\": \"mock.layers\", \"class_name\": \"Scale\", "
                   "\"config\": {\"factor\": \"x\"}, \"args\": [" INPUT "]}",
                   ALK_EINVAL,
                   "keras tracer: layer s (Scale): factor: expected a number, got str 'x'");
    expect_refused("{\"name\": \"d\", \"module\": \"mock.layers\", \"class_name\": \"Dense\", "
                   "\"args\": [" INPUT "]}",
                   ALK_EINVAL, "keras tracer: layer d (Dense): weight 'kernel' is missing");
    expect_refused("{\"name\": \"d\", \"module\": \"mock.layers\", \"class_name\": \"Dense\", "
                   "\"config\": {\"activation\": \"tanh\"}, \"args\": [" INPUT "], "
                   "\"weights\": {\"kernel\": [[1], [1]]}}",
                   ALK_EINVAL, "keras tracer: layer d (Dense): unsupported activation 'tanh'");
    expect_refused("{\"name\": \"t\", \"module\": \"mock.layers\", \"class_name\": \"Scale\", "
                   "\"args\": [" INPUT "], \"kwargs\": {\"training\": true}}",
                   ALK_ENOTSUP,
                   "keras tracer: layer t (Scale): training mode is not supported (training=True)");
}

Test(kit, errors_in_a_delegated_body_name_the_outer_layer) {
    alk_convert_result result;
    alk_diag diag = {{0}};
    cr_assert_eq(convert("{\"input_shape\": [1, 2], \"layers\": [{\"name\": \"fd\", \"module\": "
                         "\"fakepkg.layers\", \"class_name\": \"FakeDense\", \"args\": [" INPUT
                         "], \"weights\": {\"kernel\": [[1, 2, 3]]}}]}",
                         &result, &diag),
                 ALK_EINVAL);
    const char *prefix = "keras tracer: layer fd (FakeDense): ";
    cr_assert(strncmp(diag.message, prefix, strlen(prefix)) == 0, "%s", diag.message);
    cr_assert(strstr(diag.message + strlen(prefix), "layer fd") == NULL, "%s", diag.message);
    alk_convert_result_fini(&result);
}
