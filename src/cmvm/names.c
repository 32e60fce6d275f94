/*
 * The solver's method and mode names (cmvm.h's ALK_CMVM_METHOD_MAP and ALK_CMVM_MODE_MAP): the
 * one place a name becomes an enum and back, for every parser (the request's solver_options, the
 * command line) and every message.
 *
 * Thread rule: reentrant; the tables are constant.
 */
#include "cmvm/cmvm.h"

#include <string.h>

#define NAME_ROW(e, name) [ALK_CMVM_##e] = name,
static const char *const method_names[] = {ALK_CMVM_METHOD_MAP(NAME_ROW)};
static const char *const mode_names[] = {ALK_CMVM_MODE_MAP(NAME_ROW)};
#undef NAME_ROW

enum {
    N_METHODS = sizeof(method_names) / sizeof(method_names[0]),
    N_MODES = sizeof(mode_names) / sizeof(mode_names[0]),
};

/* The index of `name` in `names` (n entries), or -1. */
static int find_name(const char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

const char *alk_cmvm_method_name(alk_cmvm_method method) {
    return (unsigned)method < N_METHODS ? method_names[method] : "?";
}

int alk_cmvm_method_parse(const char *name, alk_cmvm_method *ret_method) {
    int i = find_name(method_names, N_METHODS, name);
    if (i < 0) {
        return ALK_EINVAL;
    }
    *ret_method = (alk_cmvm_method)i;
    return ALK_OK;
}

const char *alk_cmvm_mode_name(alk_cmvm_mode mode) {
    return (unsigned)mode < N_MODES ? mode_names[mode] : "?";
}

int alk_cmvm_mode_parse(const char *name, alk_cmvm_mode *ret_mode) {
    int i = find_name(mode_names, N_MODES, name);
    if (i < 0) {
        return ALK_EINVAL;
    }
    *ret_mode = (alk_cmvm_mode)i;
    return ALK_OK;
}
