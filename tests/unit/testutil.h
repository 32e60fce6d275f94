/* Helpers shared by the unit tests: fixture paths and whole-file reads. */
#ifndef ALK_TESTUTIL_H
#define ALK_TESTUTIL_H

#include "core/vec.h"

/* Absolute path of `name` under the shared fixtures directory (static buffer). */
const char *fixture_path(const char *name);

/* Reads a whole file into `out` (initialised by the caller); aborts the test on failure. */
void read_whole_file(const char *path, alk_buf *out);

#endif
