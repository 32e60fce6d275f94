/*
 * The text form of a CMVM kernel (alk_cmvm_parse_kernel, see cmvm.h).
 *
 * Design: numbers are read with strtod and then checked for exactness: the decimal digits of the
 * token must equal the exact decimal expansion of the double it parsed to (every double has a
 * finite one). That refuses "0.1" (not dyadic) and values past double precision without any
 * big-number arithmetic. Float32 representability and the integer range are checked later by
 * alk_cmvm_check, which names the row and column the same way.
 *
 * Thread rule: pure function of its arguments.
 */
#include "cmvm/cmvm.h"
#include "core/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TOKEN_MAX = 128 };

/*
 * Normalises a decimal number "[-+]digits[.digits][e[-+]digits]" into its significant digits
 * (no leading or trailing zeros) and the decimal exponent of the last digit. Returns false for
 * anything else.
 */
static bool normalise(const char *s, char *digits, size_t cap, long *ret_exponent) {
    size_t n = 0;
    long exponent = 0;
    bool seen_digit = false, after_point = false;
    if (*s == '+' || *s == '-') {
        s++;
    }
    for (; *s != '\0' && *s != 'e' && *s != 'E'; s++) {
        if (*s == '.') {
            if (after_point) {
                return false;
            }
            after_point = true;
            continue;
        }
        if (!isdigit((unsigned char)*s)) {
            return false;
        }
        seen_digit = true;
        if (after_point) {
            exponent--;
        }
        if (n == 0 && *s == '0') {
            continue; /* leading zero */
        }
        if (n + 1 >= cap) {
            return false;
        }
        digits[n++] = *s;
    }
    if (!seen_digit) {
        return false;
    }
    if (*s == 'e' || *s == 'E') {
        char *end;
        errno = 0;
        long e = strtol(s + 1, &end, 10);
        if (end == s + 1 || *end != '\0' || errno != 0 || e > 100000 || e < -100000) {
            return false;
        }
        exponent += e;
    }
    while (n > 0 && digits[n - 1] == '0') {
        n--;
        exponent++;
    }
    digits[n] = '\0';
    if (n == 0) {
        exponent = 0;
    }
    *ret_exponent = exponent;
    return true;
}

/* Whether the decimal token equals the double v exactly. */
static bool exact(const char *token, double v) {
    char want[TOKEN_MAX + 8], have[1200], have_digits[1200];
    long want_exp, have_exp;
    if (!normalise(token, want, sizeof(want), &want_exp)) {
        return false;
    }
    /* %.800e prints the exact expansion of any double (at most 767 significant digits). */
    snprintf(have, sizeof(have), "%.800e", fabs(v));
    if (!normalise(have, have_digits, sizeof(have_digits), &have_exp)) {
        return false;
    }
    return strcmp(want, have_digits) == 0 && want_exp == have_exp;
}

int alk_cmvm_parse_kernel(const char *text, size_t len, uint32_t *ret_rows, uint32_t *ret_cols,
                          double **ret_values, alk_diag *diag) {
    double *values = NULL;
    size_t n_values = 0, cap = 0;
    uint32_t rows = 0, cols = 0;
    size_t line_no = 0;
    size_t pos = 0;
    int rv = ALK_OK;
    while (pos < len && rv == ALK_OK) {
        size_t end = pos;
        while (end < len && text[end] != '\n') {
            end++;
        }
        line_no++;
        size_t p = pos;
        uint32_t count = 0;
        while (p < end && strchr(" \t\r", text[p]) != NULL) {
            p++;
        }
        bool skip = p == end || text[p] == '#';
        while (!skip && p < end && rv == ALK_OK) {
            while (p < end && strchr(" \t\r,", text[p]) != NULL) {
                p++;
            }
            if (p == end) {
                break;
            }
            size_t start = p;
            while (p < end && strchr(" \t\r,", text[p]) == NULL) {
                p++;
            }
            size_t column = start - pos + 1;
            char token[TOKEN_MAX + 1];
            if (p - start > TOKEN_MAX) {
                rv = alk_diag_set(diag, ALK_EINVAL, "line %zu, column %zu: number too long",
                                  line_no, column);
                break;
            }
            memcpy(token, text + start, p - start);
            token[p - start] = '\0';
            char *stop;
            double v = strtod(token, &stop);
            if (stop == token || *stop != '\0') {
                rv = alk_diag_set(diag, ALK_EINVAL, "line %zu, column %zu: '%s' is not a number",
                                  line_no, column, token);
            } else if (isnan(v)) {
                rv = alk_diag_set(diag, ALK_EINVAL, "line %zu, column %zu: NaN is not a weight",
                                  line_no, column);
            } else if (isinf(v)) {
                rv = alk_diag_set(diag, ALK_EINVAL,
                                  "line %zu, column %zu: '%s' is infinite or out of range", line_no,
                                  column, token);
            } else if (!exact(token, v)) {
                rv = alk_diag_set(diag, ALK_EINVAL,
                                  "line %zu, column %zu: '%s' is not a dyadic rational "
                                  "(a multiple of a power of two) that a double holds exactly",
                                  line_no, column, token);
            } else if (n_values >= (size_t)ALK_CMVM_MAX_DIM * ALK_CMVM_MAX_DIM) {
                rv = alk_diag_set(diag, ALK_ELIMIT, "line %zu: too many weights", line_no);
            } else {
                void *items = values;
                rv = alk_grow(&items, &cap, sizeof(double), n_values + 1);
                values = items;
                if (rv == ALK_OK) {
                    values[n_values++] = v;
                    count++;
                }
            }
        }
        if (rv == ALK_OK && !skip && count > 0) {
            if (rows == 0) {
                cols = count;
            } else if (count != cols) {
                rv = alk_diag_set(diag, ALK_EINVAL,
                                  "line %zu: row %u has %u values, the first row has %u (ragged "
                                  "rows)",
                                  line_no, rows + 1, count, cols);
            }
            rows++;
            if (rows > ALK_CMVM_MAX_DIM || cols > ALK_CMVM_MAX_DIM) {
                rv = alk_diag_set(diag, ALK_ELIMIT,
                                  "line %zu: the kernel exceeds %u rows or columns", line_no,
                                  (unsigned)ALK_CMVM_MAX_DIM);
            }
        }
        pos = end + 1;
    }
    if (rv == ALK_OK && rows == 0) {
        rv = alk_diag_set(diag, ALK_EINVAL, "the kernel is empty (no rows)");
    }
    if (rv != ALK_OK) {
        alk_free(values);
        if (rv == ALK_ENOMEM) {
            (void)alk_diag_set(diag, rv, "out of memory reading the kernel");
        }
        return rv;
    }
    *ret_rows = rows;
    *ret_cols = cols;
    *ret_values = values;
    return ALK_OK;
}
