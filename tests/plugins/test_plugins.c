/*
 * The plugin system: discovery through manifests, the loader's refusals (each with its reason,
 * the other plugins intact), second-level plugins loaded on demand and once, and generations
 * (old code stays mapped until the last job of its generation ends; a strict rebuild with a
 * broken plugin fails and leaves the current generation alone).
 */
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
    write_manifest("mock", ALK_GROUP_TRACER, "mock", "mock_tracer", "1");
    write_manifest("wrong_abi", ALK_GROUP_TRACER, "wrong_abi", "mock_broken_wrong_abi", "1");
    write_manifest("short_struct", ALK_GROUP_TRACER, "short_struct", "mock_broken_short_struct",
                   "1");
    write_manifest("missing_op", ALK_GROUP_TRACER, "missing_op", "mock_broken_missing_op", "1");
    write_manifest("failing_init", ALK_GROUP_TRACER, "failing_init", "mock_broken_failing_init",
                   "1");
    write_manifest("no_entry", ALK_GROUP_TRACER, "no_entry", "mock_broken_no_entry", "1");
    write_manifest("jax", "alkaid_jax", "jax", "mock_tracer", "1");
    write_manifest("old_manifest", ALK_GROUP_TRACER, "old_manifest", "mock_tracer", "7");
    write_manifest("gone", ALK_GROUP_TRACER, "gone", "does_not_exist", "1");
    write_manifest("renamed", ALK_GROUP_TRACER, "renamed", "mock_tracer", "1");
    alk_generation *g = build(false, NULL, ALK_OK);
    expect_refused(g, "wrong_abi", "plugin ABI version 99, this alkaid supports 1");
    expect_refused(g, "short_struct", "bytes, ABI 1 needs at least");
    expect_refused(g, "missing_op", "a tracer plugin must set apply_model");
    expect_refused(g, "failing_init",
                   "init failed (EINVAL): missing configuration file /etc/broken.conf");
    expect_refused(g, "no_entry", "no alk_plugin_entry symbol");
    expect_refused(g, "jax", "unknown group 'alkaid_jax'");
    expect_refused(g, "old_manifest", "manifest declares ABI 7");
    expect_refused(g, "gone", "libdoes_not_exist.so");
    expect_refused(g, "renamed", "descriptor says group 'alir_tracer.plugins' name 'mock'");
    cr_assert_eq(alk_generation_n_refused(g), 9);
    alk_plugin_info good = info_of(g, "mock");
    cr_assert_eq(good.state, ALK_PLUGIN_LOADED);
    cr_assert_str_eq(good.version, "a");
    cr_assert_eq(good.abi_version, ALK_PLUGIN_ABI_VERSION);
    alk_generation_unref(g);
}

Test(plugins, manifest_errors_name_file_and_line) {
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/bad.plugin", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "group = alir_tracer.plugins\nname = bad\nlibary = x.so\nabi = 1\n");
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

/* Runs the mock tracer of `g` on a model with the given layers; returns the trace map. */
static int run_mock(const alk_generation *g, const char *model_json, alk__trace_map *map,
                    alk_diag *diag) {
    const alk__entry *tracer = NULL;
    for (size_t i = 0; i < g->n_entries; i++) {
        if (strcmp(g->entries[i].info.name, "mock") == 0) {
            tracer = &g->entries[i];
        }
    }
    cr_assert_not_null(tracer);
    alk_arena arena;
    alk_arena_init(&arena, 0);
    const alk_value *model;
    cr_assert_eq(alk_value_from_json(model_json, strlen(model_json), NULL, &arena, &model, diag),
                 ALK_OK);
    alk__trace_map_init(map);
    alk_host host = {.generation = g, .map = map};
    int rv =
        tracer->loaded->desc->apply_model(tracer->loaded->state, NULL, &host, model, NULL, 0, diag);
    alk_arena_fini(&arena);
    return rv;
}

Test(plugins, second_level_plugin_loads_on_demand_and_once) {
    write_manifest("mock", ALK_GROUP_TRACER, "mock", "mock_tracer", "1");
    write_manifest("fakepkg", ALK_GROUP_KERAS, "fakepkg", "mock_fakepkg", "1");
    alk_generation *g = build(false, NULL, ALK_OK);
    cr_assert_eq(info_of(g, "fakepkg").state, ALK_PLUGIN_ON_DEMAND);

    /* A model without its layers does not load it. */
    alk__trace_map map;
    alk_diag diag = {{0}};
    cr_assert_eq(run_mock(g, "{\"layers\": []}", &map, &diag), ALK_OK, "%s", diag.message);
    alk__trace_map_fini(&map);
    cr_assert_eq(info_of(g, "fakepkg").state, ALK_PLUGIN_ON_DEMAND);

    /* Two models using FakeDense: loaded by the first, once. */
    const char *model = "{\"layers\": [{\"module\": \"fakepkg.layers\", \"class_name\": "
                        "\"FakeDense\", \"name\": \"d1\"}, {\"module\": \"fakepkg.layers\", "
                        "\"class_name\": \"FakeDense\", \"name\": \"d2\"}]}";
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(run_mock(g, model, &map, &diag), ALK_OK, "%s", diag.message);
        cr_assert_not_null(alk__trace_map_get(&map, "d1/inits=1"));
        cr_assert_not_null(alk__trace_map_get(&map, "d2/inits=1"));
        alk__trace_map_fini(&map);
    }
    cr_assert_eq(info_of(g, "fakepkg").state, ALK_PLUGIN_LOADED);

    /* A layer of an unknown module, and an unknown class of a known plugin, are named. */
    cr_assert_eq(run_mock(g,
                          "{\"layers\": [{\"module\": \"otherpkg.core\", \"class_name\": \"X\"}]}",
                          &map, &diag),
                 ALK_ENOENT);
    alk__trace_map_fini(&map);
    cr_assert(strstr(diag.message, "unsupported layer X (module otherpkg.core): no alkaid_keras "
                                   "plugin named 'otherpkg'") != NULL,
              "%s", diag.message);
    cr_assert_eq(run_mock(g,
                          "{\"layers\": [{\"module\": \"fakepkg.layers\", \"class_name\": "
                          "\"FakeConv\"}]}",
                          &map, &diag),
                 ALK_ENOENT);
    alk__trace_map_fini(&map);
    cr_assert(strstr(diag.message, "plugin 'fakepkg' has no handler for it") != NULL, "%s",
              diag.message);
    cr_assert_eq(run_mock(g,
                          "{\"layers\": [{\"module\": \"keras.layers\", \"class_name\": "
                          "\"Dense\"}]}",
                          &map, &diag),
                 ALK_ENOENT);
    alk__trace_map_fini(&map);

    /* A new generation shares the loaded plugin: still one init. */
    alk_generation *g2 = build(false, g, ALK_OK);
    cr_assert_eq(info_of(g2, "fakepkg").state, ALK_PLUGIN_LOADED);
    alk_generation_unref(g);
    cr_assert_eq(run_mock(g2, model, &map, &diag), ALK_OK, "%s", diag.message);
    cr_assert_not_null(alk__trace_map_get(&map, "d1/inits=1"));
    alk__trace_map_fini(&map);
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
    fprintf(f, "group = %s\nname = mock\nlibrary = libmock_live.so\nabi = 1\n", ALK_GROUP_TRACER);
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
    alk__trace_map map;
    alk_diag diag = {{0}};
    cr_assert_eq(run_mock(job, "{\"layers\": []}", &map, &diag), ALK_OK, "%s", diag.message);
    alk__trace_map_fini(&map);

    /* Dropping the "current" references of 1 and 2 unloads nothing: the job still holds 1. */
    alk_generation_unref(g1);
    alk_generation_unref(g2);
    cr_assert_eq(count_lines(log, "fini a"), 0);
    cr_assert_eq(run_mock(job, "{\"layers\": []}", &map, &diag), ALK_OK, "%s", diag.message);
    alk__trace_map_fini(&map);
    /* The job ends: variant a is finalised and unloaded, variant b is untouched. */
    alk_generation_unref(job);
    cr_assert_eq(count_lines(log, "fini a"), 1);
    cr_assert_eq(count_lines(log, "fini b"), 0);

    /* A strict rebuild with a broken plugin fails and changes nothing. */
    write_manifest("failing_init", ALK_GROUP_TRACER, "failing_init", "mock_broken_failing_init",
                   "1");
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
