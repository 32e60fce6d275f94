/* Test helpers (see testutil.h). */
#include "testutil.h"
#include "core/alloc.h"
#include "core/io.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *fixture_path(const char *name) {
    static char path[4096];
    const char *root = getenv("ALK_FIXTURES");
    cr_assert_not_null(root, "ALK_FIXTURES is not set (run the tests through meson)");
    (void)snprintf(path, sizeof(path), "%s/%s", root, name);
    return path;
}

void read_whole_file(const char *path, alk_buf *out) {
    alk_diag diag = {{0}};
    int rv = alk_read_file(path, (size_t)1 << 30, out, &diag);
    cr_assert_eq(rv, 0, "%s", diag.message);
}

const alk_value *test_json(alk_arena *arena, const char *text) {
    const alk_value *v = NULL;
    alk_diag diag = {{0}};
    cr_assert_eq(alk_value_from_json(text, strlen(text), NULL, arena, &v, &diag), ALK_OK, "%s",
                 diag.message);
    return v;
}

void test_write_manifest(const char *dir, const char *name, const char *group, const char *module) {
    cr_assert_not_null(getenv("ALK_MOCK_DIR"), "ALK_MOCK_DIR is not set (run through meson)");
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/%s.plugin", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "group = %s\nname = %s\nlibrary = %s/lib%s.so\nabi = 2\n", group, name,
            getenv("ALK_MOCK_DIR"), module);
    fclose(f);
}

alk_generation *test_generation_with_mock(const char *group, const char *name, const char *module) {
    char manifest_dir[] = "/tmp/alk-test-plugins-XXXXXX";
    cr_assert_not_null(mkdtemp(manifest_dir));
    test_write_manifest(manifest_dir, name, group, module);
    char **dirs;
    size_t n;
    const char *extra[] = {manifest_dir};
    cr_assert_eq(alk_plugin_search_path(extra, 1, &dirs, &n), ALK_OK);
    alk_plugin_config config = {.dirs = (const char *const *)dirs, .n_dirs = n};
    alk_diag diag = {{0}};
    alk_generation *generation = NULL;
    int rv = alk_generation_build(&config, NULL, &generation, &diag);
    alk_plugin_dirs_free(dirs, n);
    /* The generation has read the manifest: it needs neither the file nor the directory. */
    char path[256];
    (void)snprintf(path, sizeof(path), "%s/%s.plugin", manifest_dir, name);
    (void)unlink(path);
    (void)rmdir(manifest_dir);
    cr_assert_eq(rv, ALK_OK, "%s", diag.message);
    return generation;
}

unsigned long test_each_allocation_failing(int (*pipeline)(void)) {
    long live = alk_alloc_live();
    unsigned long n = 1;
    for (;; n++) {
        alk_alloc_fail_at(n, false);
        int rv = pipeline();
        unsigned long attempts = alk_alloc_count();
        alk_alloc_fail_at(0, false);
        cr_assert_eq(alk_alloc_live(), live, "allocation %lu failed: %ld blocks leaked", n,
                     alk_alloc_live() - live);
        if (attempts < n) {
            cr_assert_eq(rv, ALK_OK, "no failure injected but %s", alk_err_name(rv));
            return n;
        }
        cr_assert_eq(rv, ALK_ENOMEM, "allocation %lu failed but the pipeline returned %s", n,
                     alk_err_name(rv));
    }
}
