/*
 * A conversion's `solver_options` (spec cmvm.md §1.3), read when the request is decoded: every
 * key must be one of the options below, of its type and in its range, so that a misspelled
 * option or method is answered EINVAL at once, naming it, instead of failing on a worker later.
 *
 * One row per option, {name, types, setter} (nng's option tables): the name is the wire key,
 * `types` the accepted value kinds, and the setter checks the value's range and writes the typed
 * field of alk_solver_options. Options the reference declares but cannot use (`adder_size`,
 * which its binding rejects; `partial`, `scm_opt`, `offload_fn`) are unknown here too.
 *
 * Thread rule: reentrant; the table is constant.
 */
#include "rpc/rpc.h"

#include <stdio.h>
#include <string.h>

#define KIND(k) (1u << (k))

typedef int (*option_setter)(alk_solver_options *options, const alk_value *value, const char *where,
                             alk_rpc_error *err);

typedef struct solver_option {
    const char *name;
    uint32_t kinds; /* KIND(ALK_VALUE_*) mask */
    option_setter set;
} solver_option;

/* An int option within [lo, hi]; writes it to *ret. */
static int int_in_range(const alk_value *value, int lo, int hi, const char *meaning,
                        const char *where, int *ret, alk_rpc_error *err) {
    if (value->as.integer < lo || value->as.integer > hi) {
        return alk_rpc_error_set(err, ALK_EINVAL, where, "%s must be %s, not %lld", where, meaning,
                                 (long long)value->as.integer);
    }
    *ret = (int)value->as.integer;
    return ALK_OK;
}

/* A CSE method: every name of ALK_CMVM_METHOD_MAP a user may give (auto for method1 only). */
static int method(const alk_value *value, bool allow_auto, const char *where, alk_cmvm_method *ret,
                  alk_rpc_error *err) {
    alk_cmvm_method m;
    if (alk_cmvm_method_parse(value->as.str.bytes, &m) == ALK_OK && m != ALK_CMVM_DUMMY_DC &&
        (allow_auto || m != ALK_CMVM_AUTO)) {
        *ret = m;
        return ALK_OK;
    }
    char known[160] = "";
    size_t len = 0;
    for (int i = 0; i <= (int)ALK_CMVM_DUMMY_DC; i++) {
        if (i == (int)ALK_CMVM_DUMMY_DC || (!allow_auto && i == (int)ALK_CMVM_AUTO)) {
            continue;
        }
        int n = snprintf(known + len, sizeof(known) - len, "%s%s", len > 0 ? ", " : "",
                         alk_cmvm_method_name((alk_cmvm_method)i));
        len = n > 0 && (size_t)n < sizeof(known) - len ? len + (size_t)n : len;
    }
    return alk_rpc_error_set(err, ALK_EINVAL, where, "%s: unknown method '%.64s' (known: %s)",
                             where, value->as.str.bytes, known);
}

static int set_method0(alk_solver_options *o, const alk_value *v, const char *where,
                       alk_rpc_error *err) {
    return method(v, false, where, &o->cmvm.method0, err);
}

static int set_method1(alk_solver_options *o, const alk_value *v, const char *where,
                       alk_rpc_error *err) {
    return method(v, true, where, &o->cmvm.method1, err);
}

static int set_hard_dc(alk_solver_options *o, const alk_value *v, const char *where,
                       alk_rpc_error *err) {
    return int_in_range(v, -1, 1024, "-1 (no budget) or 0 to 1024", where, &o->cmvm.hard_dc, err);
}

static int set_decompose_dc(alk_solver_options *o, const alk_value *v, const char *where,
                            alk_rpc_error *err) {
    return int_in_range(v, -2, 1024, "-2 (automatic), -1 (none) or 0 to 1024", where,
                        &o->cmvm.decompose_dc, err);
}

static int set_search_all(alk_solver_options *o, const alk_value *v, const char *where,
                          alk_rpc_error *err) {
    o->cmvm.search_all_decompose_dc = v->as.boolean;
    return ALK_OK;
}

static int set_binary_lut(alk_solver_options *o, const alk_value *v, const char *where,
                          alk_rpc_error *err) {
    /* As in the reference, only a literal false disables the packing (nil keeps it). */
    o->binary_lut = v->kind == ALK_VALUE_NIL || v->as.boolean;
    return ALK_OK;
}

static int set_binary_lut_width(alk_solver_options *o, const alk_value *v, const char *where,
                                alk_rpc_error *err) {
    if (v->kind == ALK_VALUE_NIL || v->as.integer == 0) {
        o->binary_lut_width = 6; /* the reference's default, also for 0 and None */
        return ALK_OK;
    }
    return int_in_range(v, 1, ALK_BINARY_LUT_MAX_WIDTH, "0 (default 6) or 1 to 16", where,
                        &o->binary_lut_width, err);
}

static int set_mode(alk_solver_options *o, const alk_value *v, const char *where,
                    alk_rpc_error *err) {
    if (alk_cmvm_mode_parse(v->as.str.bytes, &o->cmvm.mode) != ALK_OK) {
        return alk_rpc_error_set(err, ALK_EINVAL, where,
                                 "%s: unknown mode '%.64s' (known:" ALK_CMVM_MODE_NAMES ")", where,
                                 v->as.str.bytes);
    }
    return ALK_OK;
}

static const solver_option options_table[] = {
    {"method0", KIND(ALK_VALUE_STR), set_method0},
    {"method1", KIND(ALK_VALUE_STR), set_method1},
    {"hard_dc", KIND(ALK_VALUE_INT), set_hard_dc},
    {"decompose_dc", KIND(ALK_VALUE_INT), set_decompose_dc},
    {"search_all_decompose_dc", KIND(ALK_VALUE_BOOL), set_search_all},
    {"binary_lut", KIND(ALK_VALUE_BOOL) | KIND(ALK_VALUE_NIL), set_binary_lut},
    {"binary_lut_width", KIND(ALK_VALUE_INT) | KIND(ALK_VALUE_NIL), set_binary_lut_width},
    {"mode", KIND(ALK_VALUE_STR), set_mode},
};

enum { N_OPTIONS = sizeof(options_table) / sizeof(options_table[0]) };

/* "str", "int or nil", ... for a kind mask. */
static void describe_kinds(uint32_t kinds, char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    for (int k = ALK_VALUE_NIL; k <= ALK_VALUE_MAP; k++) {
        if (kinds & KIND(k)) {
            int n = snprintf(out + len, cap - len, "%s%s", len > 0 ? " or " : "",
                             alk_value_kind_name((alk_value_kind)k));
            len = n > 0 && (size_t)n < cap - len ? len + (size_t)n : len;
        }
    }
}

static int unknown_option(const char *key, const char *where, alk_rpc_error *err) {
    char known[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        int n = snprintf(known + len, sizeof(known) - len, "%s%s", i > 0 ? ", " : "",
                         options_table[i].name);
        len = n > 0 && (size_t)n < sizeof(known) - len ? len + (size_t)n : len;
    }
    return alk_rpc_error_set(err, ALK_EINVAL, where,
                             "%s: unknown solver option '%.64s' (known: %s)", where, key, known);
}

int alk_rpc_solver_options(const alk_value *map, alk_solver_options *options, alk_rpc_error *err) {
    alk_solver_options parsed = *options;
    for (size_t i = 0; i < map->as.map.len; i++) {
        const alk_value_pair *pair = &map->as.map.pairs[i];
        const char *key = pair->key->kind == ALK_VALUE_STR ? pair->key->as.str.bytes : "?";
        char where[96];
        (void)snprintf(where, sizeof(where), "solver_options.%.64s", key);
        const solver_option *option = NULL;
        for (size_t k = 0; k < N_OPTIONS && option == NULL; k++) {
            option = strcmp(options_table[k].name, key) == 0 ? &options_table[k] : NULL;
        }
        if (option == NULL) {
            return unknown_option(key, where, err);
        }
        if (!(option->kinds & KIND(pair->value->kind))) {
            char expected[64];
            describe_kinds(option->kinds, expected, sizeof(expected));
            return alk_rpc_error_set(err, ALK_EINVAL, where, "%s must be %s, not %s", where,
                                     expected, alk_value_kind_name(pair->value->kind));
        }
        int rv = option->set(&parsed, pair->value, where, err);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    *options = parsed;
    return ALK_OK;
}
