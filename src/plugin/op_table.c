/*
 * Handler tables: the grammar of a row's `params` and `weights` strings and the loader's checks
 * of a whole table (alk_op.h, alk_op_def).
 *
 * The loader refuses a bad table at load time, naming the row, the way nng's
 * nni_sp_tran_register asserts its ops tables; here it is a clean error, since a table comes
 * from a third party's shared object. After that check the kit reads rows without re-validating
 * them, though its readers still step over a malformed token rather than trust it blindly.
 *
 * Thread rule: pure functions.
 */
#include "plugin/op_int.h"

#include <inttypes.h>
#include <string.h>

bool alk__token_is(const alk__token *token, const char *name) {
    return strlen(name) == token->name_len && memcmp(token->name, name, token->name_len) == 0;
}

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Length of the run of name characters at `p`. */
static size_t name_span(const char *p, const char *end) {
    size_t n = 0;
    while (p + n < end && name_char(p[n])) {
        n++;
    }
    return n;
}

int alk__next_token(const char **cursor, bool conditions, alk__token *ret_token) {
    const char *p = *cursor;
    while (*p == ' ') {
        p++;
    }
    if (*p == '\0') {
        *cursor = p;
        return 0;
    }
    const char *end = p;
    while (*end != '\0' && *end != ' ') {
        end++;
    }
    *cursor = end;
    alk__token t = {.name = p, .name_len = name_span(p, end)};
    const char *rest = p + t.name_len;
    if (rest < end && *rest == ':' && conditions) {
        rest++;
        t.negated = rest < end && *rest == '!';
        rest += t.negated;
        t.key = rest;
        t.key_len = name_span(rest, end);
        rest += t.key_len;
        if (t.key_len == 0) {
            return -1;
        }
    }
    if (t.name_len == 0 || rest != end) {
        return -1;
    }
    *ret_token = t;
    return 1;
}

/* Checks a `params` or `weights` string; the first bad token goes into `diag`. */
static int check_names(const char *text, bool conditions, const char *field, size_t row,
                       const alk_op_def *def, const char *library, alk_diag *diag) {
    const char *cursor = text;
    alk__token token;
    int got;
    while (text != NULL && (got = alk__next_token(&cursor, conditions, &token)) != 0) {
        if (got < 0) {
            return alk_diag_set(diag, ALK_EPLUGIN,
                                "%s: ops[%zu] (%s %s): malformed %s \"%s\" (tokens are "
                                "[A-Za-z0-9_]+%s, separated by spaces)",
                                library, row, def->module, def->name, field, text,
                                conditions ? ", optionally :key or :!key" : "");
        }
    }
    return ALK_OK;
}

/* Checks one row on its own. */
static int check_row(const alk_op_def *def, size_t row, const char *library, alk_diag *diag) {
    const uint32_t known_flags = ALK_OP_OWN_ACTIVATION | ALK_OP_OWN_IQ | ALK_OP_OWN_OQ;
    if (def->module == NULL || def->module[0] == '\0' || def->name == NULL ||
        def->name[0] == '\0') {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: ops[%zu]: missing module or name", library,
                            row);
    }
    if (def->fn == NULL) {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: ops[%zu] (%s %s): missing fn", library, row,
                            def->module, def->name);
    }
    if (def->min_args > def->max_args) {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: ops[%zu] (%s %s): min_args %u > max_args %u",
                            library, row, def->module, def->name, def->min_args, def->max_args);
    }
    if ((def->flags & ~known_flags) != 0) {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: ops[%zu] (%s %s): unknown flags 0x%" PRIx32,
                            library, row, def->module, def->name, def->flags & ~known_flags);
    }
    int rv = check_names(def->params, false, "params", row, def, library, diag);
    return rv != ALK_OK ? rv : check_names(def->weights, true, "weights", row, def, library, diag);
}

int alk__op_table_check(const alk_plugin_descriptor *desc, const char *library, alk_diag *diag) {
    enum { MAX_ROWS = 1 << 16 };
    if (alk__group_is_operation(desc->group) && (desc->ops == NULL || desc->n_ops == 0)) {
        return alk_diag_set(diag, ALK_EPLUGIN,
                            "%s: an operation plugin must set ops (its handler table)", library);
    }
    if (desc->n_ops > 0 && desc->ops == NULL) {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: n_ops is %zu but ops is NULL", library,
                            desc->n_ops);
    }
    if (desc->n_ops > MAX_ROWS) {
        return alk_diag_set(diag, ALK_EPLUGIN, "%s: %zu table rows, at most %d are allowed",
                            library, desc->n_ops, MAX_ROWS);
    }
    for (size_t i = 0; i < desc->n_ops; i++) {
        int rv = check_row(&desc->ops[i], i, library, diag);
        if (rv != ALK_OK) {
            return rv;
        }
    }
    /* Tables hold a few hundred rows and load once: the quadratic scan costs nothing. */
    for (size_t i = 0; i < desc->n_ops; i++) {
        for (size_t j = i + 1; j < desc->n_ops; j++) {
            const alk_op_def *a = &desc->ops[i], *b = &desc->ops[j];
            if (strcmp(a->module, b->module) == 0 && strcmp(a->name, b->name) == 0) {
                return alk_diag_set(diag, ALK_EPLUGIN,
                                    "%s: ops[%zu] and ops[%zu] both handle %s %s", library, i, j,
                                    a->module, a->name);
            }
        }
    }
    return ALK_OK;
}
