/*
 * The plugin system: discovery through manifests, the loader's refusals (each with its reason,
 * the other plugins intact; broken handler tables named by row), second-level plugins loaded on
 * demand and once per generation, and generations (old code stays mapped until the last job of
 * its generation ends; a strict rebuild with a broken plugin fails and leaves the current
 * generation alone).
 */
#include "plugin/convert.h"
#include "plugin/plugin_int.h"
#include "core/alloc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *mock_dir(void) {
    const char *d = getenv("ALK_MOCK_DIR");
    cr_assert_not_null(d, "ALK_MOCK_DIR is not set (run through meson)");
    return d;
}

static void make_dir(void) {
    (void)snprintf(dir, sizeof(dir), "/tmp/alk-plugins-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void) {
    char cmd[128];
    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)system(cmd);
}

/* Writes DIR/<file>.plugin naming lib<library>.so of the mock directory. */
static void write_manifest(const char *file, const char *group, const char *name,
                           const char *library, const char *abi) {
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/%s.plugin", dir, file);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "# test manifest\ngroup = %s\nname = %s\nlibrary = %s/lib%s.so\nabi = %s\n", group,
            name, mock_dir(), library, abi);
    fclose(f);
}

static alk_generation *build(bool strict, const alk_generation *previous, int want_rv) {
    const char *dirs[] = {dir};
    alk_plugin_config config = {.dirs = dirs, .n_dirs = 1, .strict = strict};
    alk_generation *g = NULL;
    alk_diag diag = {{0}};
    int rv = alk_generation_build(&config, previous, &g, &diag);
    cr_assert_eq(rv, want_rv, "build: %s (%s)", alk_err_name(rv), diag.message);
    return g;
}

/* The listing entry of `name`; fails the test when absent. */
static alk_plugin_info info_of(const alk_generation *g, const char *name) {
    alk_plugin_info *infos;
    size_t n;
    cr_assert_eq(alk_generation_plugins(g, &infos, &n), ALK_OK);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(infos[i].name, name) == 0) {
            alk_plugin_info found = infos[i];
            alk_free(infos);
            return found;
        }
    }
    alk_free(infos);
    cr_assert_fail("plugin %s is not listed", name);
    return (alk_plugin_info){0};
}

static void expect_refused(const alk_generation *g, const char *name, const char *reason) {
    alk_plugin_info info = info_of(g, name);
    cr_assert_eq(info.state, ALK_PLUGIN_REFUSED, "%s was not refused", name);
    cr_assert(info.error != NULL && strstr(info.error, reason) != NULL,
              "%s: reason '%s' lacks '%s'", name, info.error ? info.error : "(none)", reason);
}

TestSuite(plugins, .init = make_dir, .fini = remove_dir);

Test(plugins, broken_plugins_are_refused_with_their_reason) {
    write_manifest("mock", ALK_GROUP_TRACER, "mock", "mock_tracer", "2");
    write_manifest("wrong_abi", ALK_GROUP_TRACER, "wrong_abi", "mock_broken_wrong_abi", "2");
    write_manifest("short_struct", ALK_GROUP_TRACER, "short_struct", "mock_broken_short_struct",
                   "2");
    write_manifest("missing_op", ALK_GROUP_TRACER, "missing_op", "mock_broken_missing_op", "2");
    write_manifest("failing_init", ALK_GROUP_TRACER, "failing_init", "mock_broken_failing_init",
                   "2");
    write_manifest("no_entry", ALK_GROUP_TRACER, "no_entry", "mock_broken_no_entry", "2");
    write_manifest("jax", "alkaid_jax", "jax", "mock_tracer", "2");
    write_manifest("old_manifest", ALK_GROUP_TRACER, "old_manifest", "mock_tracer", "1");
    write_manifest("gone", ALK_GROUP_TRACER, "gone", "does_not_exist", "2");
    write_manifest("renamed", ALK_GROUP_TRACER, "renamed", "mock_tracer", "2");
    alk_generation *g = build(false, NULL, ALK_OK);
    expect_refused(g, "wrong_abi", "plugin ABI version 99, this alkaid supports 2");
    expect_refused(g, "short_struct", "bytes, ABI 2 needs at least");
    expect_refused(g, "missing_op", "a tracer plugin must set apply_model");
    expect_refused(g, "failing_init",
                   "init failed (EINVAL): missing configuration file /etc/broken.conf");
    expect_refused(g, "no_entry", "no alk_plugin_entry symbol");
    expect_refused(g, "jax", "unknown group 'alkaid_jax'");
    expect_refused(g, "old_manifest", "manifest declares ABI 1, this alkaid supports 2");
    expect_refused(g, "gone", "libdoes_not_exist.so");
    expect_refused(g, "renamed", "descriptor says group 'alir_tracer.plugins' name 'mock'");
    cr_assert_eq(alk_generation_n_refused(g), 9);
    alk_plugin_info good = info_of(g, "mock");
    cr_assert_eq(good.state, ALK_PLUGIN_LOADED);
    cr_assert_str_eq(good.version, "a");
    cr_assert_eq(good.abi_version, ALK_PLUGIN_ABI_VERSION);
    alk_generation_unref(g);
}

/* A bad handler table refuses its plugin, naming the row and the fault (tracers at build time,
 * operation plugins when first needed). */
Test(plugins, broken_handler_tables_are_refused_naming_the_row) {
    write_manifest("mock", ALK_GROUP_TRACER, "mock", "mock_tracer", "2");
    write_manifest("duplicate_row", ALK_GROUP_TRACER, "duplicate_row", "mock_broken_duplicate_row",
                   "2");
    write_manifest("missing_fn", ALK_GROUP_TRACER, "missing_fn", "mock_broken_missing_fn", "2");
    write_manifest("bad_layout", ALK_GROUP_TRACER, "bad_layout", "mock_broken_bad_layout", "2");
    write_manifest("bad_arity", ALK_GROUP_TRACER, "bad_arity", "mock_broken_bad_arity", "2");
    write_manifest("no_table", ALK_GROUP_KERAS, "no_table", "mock_broken_no_table", "2");
    alk_generation *g = build(false, NULL, ALK_OK);
    expect_refused(g, "duplicate_row", "ops[0] and ops[1] both handle broken.layers Good");
    expect_refused(g, "missing_fn", "ops[1] (broken.layers Other): missing fn");
    expect_refused(g, "bad_layout",
                   "ops[1] (broken.layers Other): malformed weights \"kernel bias:\"");
    expect_refused(g, "bad_arity", "ops[1] (broken.layers Other): min_args 3 > max_args 2");
    cr_assert_eq(info_of(g, "mock").state, ALK_PLUGIN_LOADED);
    cr_assert_eq(info_of(g, "no_table").state, ALK_PLUGIN_ON_DEMAND);
    alk__loaded *loaded = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk__generation_operation_plugin(g, ALK_GROUP_KERAS, "no_table", &loaded, &diag),
                 ALK_EPLUGIN);
    cr_assert(strstr(diag.message, "an operation plugin must set ops (its handler table)") != NULL,
              "%s", diag.message);
    expect_refused(g, "no_table", "an operation plugin must set ops");
    alk_generation_unref(g);
}

Test(plugins, manifest_errors_name_file_and_line) {
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/bad.plugin", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "group = alir_tracer.plugins\nname = bad\nlibary = x.so\nabi = 2\n");
    fclose(f);
    alk_manifest m;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_manifest_read(path, &m, &diag), ALK_EINVAL);
    cr_assert(strstr(diag.message, "bad.plugin:3: unknown key 'libary'") != NULL, "%s",
              diag.message);
    alk_generation *g = build(false, NULL, ALK_OK);
    expect_refused(g, "?", "unknown key 'libary'");
    alk_generation_unref(g);
}

/* Converts `model_json` with tracer `framework` of `g` on inputs of format (1, 3, 0), asking
 * for the dump; the caller frees *result. */
static int run_mock(const alk_generation *g, const char *framework, const char *model_json,
                    alk_convert_result *result, alk_diag *diag) {
    alk_arena arena;
    alk_arena_init(&arena, 0);
    alk_convert_request request;
    alk_convert_request_init(&request);
    request.framework = framework;
    cr_assert_eq(
        alk_value_from_json(model_json, strlen(model_json), NULL, &arena, &request.model, diag),
        ALK_OK);
    static const int kif[1][3] = {{1, 3, 0}};
    request.inputs_kif = kif;
    request.n_inputs_kif = 1;
    request.dump = true;
    *result = (alk_convert_result){0};
    int rv = alk_convert(g, &request, result, diag);
    alk_arena_fini(&arena);
    return rv;
}

static bool dumped(const alk_convert_result *result, const char *name) {
    for (size_t i = 0; i < result->n_dump; i++) {
        if (strcmp(result->dump[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

Test(plugins, second_level_plugin_loads_on_demand_and_once) {
    write_manifest("keras", ALK_GROUP_TRACER, "keras", "mock_keras", "2");
    write_manifest("fakepkg", ALK_GROUP_KERAS, "fakepkg", "mock_fakepkg", "2");
    alk_generation *g = build(false, NULL, ALK_OK);
    cr_assert_eq(info_of(g, "fakepkg").state, ALK_PLUGIN_ON_DEMAND);

    /* A model without its layers does not load it. */
    alk_convert_result result;
    alk_diag diag = {{0}};
    cr_assert_eq(run_mock(g, "keras", "{\"input_shape\": [1, 2], \"layers\": []}", &result, &diag),
                 ALK_OK, "%s", diag.message);
    alk_convert_result_fini(&result);
    cr_assert_eq(info_of(g, "fakepkg").state, ALK_PLUGIN_ON_DEMAND);

    /* Two models using FakeDense: loaded by the first, once. */
    const char *model =
        "{\"input_shape\": [1, 2], \"layers\": ["
        "{\"name\": \"d1\", \"module\": \"fakepkg.layers\", \"class_name\": \"FakeDense\","
        " \"config\": {\"use_bias\": false}, \"args\": [{\"input\": 0}],"
        " \"weights\": {\"kernel\": [[1], [2]]}},"
        "{\"name\": \"d2\", \"module\": \"fakepkg.layers\", \"class_name\": \"FakeDense\","
        " \"config\": {\"use_bias\": false}, \"args\": [{\"input\": 0}],"
        " \"weights\": {\"kernel\": [[1], [2]]}}]}";
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(run_mock(g, "keras", model, &result, &diag), ALK_OK, "%s", diag.message);
        cr_assert(dumped(&result, "/d1/inits=1"));
        cr_assert(dumped(&result, "/d2/inits=1"));
        alk_convert_result_fini(&result);
    }
    cr_assert_eq(info_of(g, "fakepkg").state, ALK_PLUGIN_LOADED);

    /* A layer of an unknown module, an unknown class of a known plugin and a framework class
     * the tracer lacks are named. */
    cr_assert_eq(run_mock(g, "keras",
                          "{\"input_shape\": [1, 2], \"layers\": [{\"module\": "
                          "\"otherpkg.core\", \"class_name\": \"X\", \"name\": \"x1\"}]}",
                          &result, &diag),
                 ALK_ENOENT);
    cr_assert_str_eq(diag.message,
                     "keras tracer: layer x1 (X): unsupported layer X (module otherpkg.core): no "
                     "alkaid_keras plugin named 'otherpkg' is installed");
    cr_assert_eq(run_mock(g, "keras",
                          "{\"input_shape\": [1, 2], \"layers\": [{\"module\": "
                          "\"fakepkg.layers\", \"class_name\": \"FakeConv\", \"name\": \"c\"}]}",
                          &result, &diag),
                 ALK_ENOENT);
    cr_assert(strstr(diag.message, "plugin 'fakepkg' has no handler for it") != NULL, "%s",
              diag.message);
    cr_assert_eq(run_mock(g, "keras",
                          "{\"input_shape\": [1, 2], \"layers\": [{\"module\": "
                          "\"keras.layers\", \"class_name\": \"Dense\", \"name\": \"d\"}]}",
                          &result, &diag),
                 ALK_ENOENT);
    cr_assert(strstr(diag.message, "unsupported layer Dense (module keras.layers)") != NULL, "%s",
              diag.message);

    /* A new generation shares the loaded plugin: still one init. */
    alk_generation *g2 = build(false, g, ALK_OK);
    cr_assert_eq(info_of(g2, "fakepkg").state, ALK_PLUGIN_LOADED);
    alk_generation_unref(g);
    cr_assert_eq(run_mock(g2, "keras", model, &result, &diag), ALK_OK, "%s", diag.message);
    cr_assert(dumped(&result, "/d1/inits=1"));
    alk_convert_result_fini(&result);
    alk_generation_unref(g2);
}

static size_t count_lines(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    char line[256];
    size_t n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, needle) != NULL;
    }
    fclose(f);
    return n;
}

Test(plugins, generations_keep_old_code_until_the_last_job) {
    char log[128];
    (void)snprintf(log, sizeof(log), "%s/fini.log", dir);
    setenv("ALK_MOCK_LOG", log, 1);
    /* The library lives in our directory so the test can replace it. */
    char lib[256];
    char cmd[1024];
    (void)snprintf(lib, sizeof(lib), "%s/libmock_live.so", dir);
    (void)snprintf(cmd, sizeof(cmd), "cp '%s/libmock_tracer.so' '%s'", mock_dir(), lib);
    cr_assert_eq(system(cmd), 0);
    FILE *f = fopen("/dev/null", "r");
    fclose(f);
    char manifest[256];
    (void)snprintf(manifest, sizeof(manifest), "%s/mock.plugin", dir);
    f = fopen(manifest, "w");
    fprintf(f, "group = %s\nname = mock\nlibrary = libmock_live.so\nabi = 2\n", ALK_GROUP_TRACER);
    fclose(f);

    alk_generation *g1 = build(true, NULL, ALK_OK);
    cr_assert_str_eq(info_of(g1, "mock").version, "a");
    alk_generation *job = alk_generation_ref(g1); /* a job in flight on generation 1 */

    /* Unchanged library: the next generation shares the loaded code. */
    alk_generation *g2 = build(true, g1, ALK_OK);
    cr_assert_gt(alk_generation_id(g2), alk_generation_id(g1));
    cr_assert_eq(g2->entries[0].loaded, g1->entries[0].loaded);

    /* Replace the file (a new inode, as install(1) does): generation 3 loads variant b from a
     * private copy while generation 1's job still runs variant a. */
    (void)snprintf(cmd, sizeof(cmd), "cp '%s/libmock_tracer_b.so' '%s.new' && mv '%s.new' '%s'",
                   mock_dir(), lib, lib, lib);
    cr_assert_eq(system(cmd), 0);
    alk_generation *g3 = build(true, g2, ALK_OK);
    cr_assert_str_eq(info_of(g3, "mock").version, "b");
    cr_assert_str_eq(info_of(g1, "mock").version, "a");
    alk_convert_result result;
    alk_diag diag = {{0}};
    const char *empty = "{\"input_shape\": [1, 2], \"layers\": []}";
    cr_assert_eq(run_mock(job, "mock", empty, &result, &diag), ALK_OK, "%s", diag.message);
    alk_convert_result_fini(&result);

    /* Dropping the "current" references of 1 and 2 unloads nothing: the job still holds 1. */
    alk_generation_unref(g1);
    alk_generation_unref(g2);
    cr_assert_eq(count_lines(log, "fini a"), 0);
    cr_assert_eq(run_mock(job, "mock", empty, &result, &diag), ALK_OK, "%s", diag.message);
    alk_convert_result_fini(&result);
    /* The job ends: variant a is finalised and unloaded, variant b is untouched. */
    alk_generation_unref(job);
    cr_assert_eq(count_lines(log, "fini a"), 1);
    cr_assert_eq(count_lines(log, "fini b"), 0);

    /* A strict rebuild with a broken plugin fails and changes nothing. */
    write_manifest("failing_init", ALK_GROUP_TRACER, "failing_init", "mock_broken_failing_init",
                   "2");
    const char *dirs[] = {dir};
    alk_plugin_config config = {.dirs = dirs, .n_dirs = 1, .strict = true};
    alk_generation *g4 = NULL;
    cr_assert_eq(alk_generation_build(&config, g3, &g4, &diag), ALK_EPLUGIN);
    cr_assert_null(g4);
    cr_assert(strstr(diag.message, "1 plugin(s) refused") != NULL, "%s", diag.message);
    cr_assert_str_eq(info_of(g3, "mock").version, "b");
    cr_assert_eq(count_lines(log, "fini b"), 0);
    alk_generation_unref(g3);
    cr_assert_eq(count_lines(log, "fini b"), 1);
    unsetenv("ALK_MOCK_LOG");
}
