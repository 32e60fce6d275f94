/* Helpers shared by the unit tests: fixture paths and whole-file reads. */
#ifndef ALK_TESTUTIL_H
#define ALK_TESTUTIL_H

#include "core/arena.h"
#include "core/vec.h"
#include "graph/value.h"
#include "plugin/registry.h"

/* Absolute path of `name` under the shared fixtures directory (static buffer). */
const char *fixture_path(const char *name);

/* Reads a whole file into `out` (initialised by the caller); aborts the test on failure. */
void read_whole_file(const char *path, alk_buf *out);

/* `text` parsed as JSON into `arena` (the caller's; the value lives as long as it); aborts the
 * test when it does not parse. */
const alk_value *test_json(alk_arena *arena, const char *text);

/* Writes `dir`/`name`.plugin, the manifest of plugin `name` of `group` whose library is
 * lib<module>.so in $ALK_MOCK_DIR (the mock plugins of tests/plugins); aborts the test on failure.
 */
void test_write_manifest(const char *dir, const char *name, const char *group, const char *module);

/* A generation of the build tree's plugins plus one mock plugin: `name` of `group`, its library
 * lib<module>.so in $ALK_MOCK_DIR, declared by a manifest in a temporary directory that is gone
 * again on return. The caller unrefs the generation; aborts the test on failure. */
alk_generation *test_generation_with_mock(const char *group, const char *name, const char *module);

/* Runs `pipeline` with allocation n failing, for n = 1, 2, ... until a run makes fewer than n
 * allocations: every run with a failure must return ALK_ENOMEM, the last one ALK_OK, and none may
 * leak (curl's torture mode). Returns that last n (the pipeline's allocations + 1). */
unsigned long test_each_allocation_failing(int (*pipeline)(void));

#endif
