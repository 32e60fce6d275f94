/* Test helpers (see testutil.h). */
#include "testutil.h"
#include "core/io.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

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
