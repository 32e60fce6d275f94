/* The failure path of alk_require (core/require.h). */
#include "core/require.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void alk__require_failed(const char *expr, const char *file, int line, const char *func) {
    fprintf(stderr, "alkaid: internal invariant failed: %s (%s:%d, %s)\n", expr, file, line, func);
    abort();
}
