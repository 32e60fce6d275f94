/*
 * Python-compatible repr() of doubles.
 *
 * The shortest round-trip digits are found by asking printf for 1, 2, ... 17 significant digits
 * (correctly rounded by glibc) until strtod reads the same double back. The nearest p-digit
 * decimal is the first to fall in the rounding interval when any p-digit decimal does, so this
 * yields the same digits as the shortest-digit algorithm Python uses. The layout rules follow
 * CPython's float_repr_style 'short' with the 'r' format code.
 */
#include "core/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fills `digits` with the shortest significant digits of |value| > 0; returns decimal exponent
 * `decpt` such that |value| = 0.DIGITS x 10^decpt. */
static int shortest_digits(double value, char digits[20], int *ret_ndigits) {
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        (void)snprintf(text, sizeof(text), "%.*e", precision - 1, value);
        if (strtod(text, NULL) == value || precision == 17) {
            break;
        }
    }
    /* text is "d.ddde[+-]XX" (or "de[+-]XX" for one digit). */
    int n = 0;
    const char *p = text;
    for (; *p != 'e'; p++) {
        if (*p >= '0' && *p <= '9') {
            digits[n++] = *p;
        }
    }
    int exponent = atoi(p + 1);
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    digits[n] = '\0';
    *ret_ndigits = n;
    return exponent + 1;
}

size_t alk_fmt_double(char out[ALK_FMT_DOUBLE_MAX], double value) {
    if (isnan(value)) {
        return (size_t)snprintf(out, ALK_FMT_DOUBLE_MAX, "nan");
    }
    if (isinf(value)) {
        return (size_t)snprintf(out, ALK_FMT_DOUBLE_MAX, value < 0 ? "-inf" : "inf");
    }
    size_t len = 0;
    if (signbit(value)) {
        out[len++] = '-';
        value = -value;
    }
    if (value == 0.0) {
        memcpy(out + len, "0.0", 4);
        return len + 3;
    }
    char digits[20];
    int ndigits;
    int decpt = shortest_digits(value, digits, &ndigits);
    if (decpt <= -4 || decpt > 16) {
        out[len++] = digits[0];
        if (ndigits > 1) {
            out[len++] = '.';
            memcpy(out + len, digits + 1, (size_t)ndigits - 1);
            len += (size_t)ndigits - 1;
        }
        int exponent = decpt - 1;
        len += (size_t)snprintf(out + len, ALK_FMT_DOUBLE_MAX - len, "e%c%02d",
                                exponent < 0 ? '-' : '+', abs(exponent));
        return len;
    }
    if (decpt <= 0) {
        out[len++] = '0';
        out[len++] = '.';
        for (int z = 0; z < -decpt; z++) {
            out[len++] = '0';
        }
        memcpy(out + len, digits, (size_t)ndigits);
        len += (size_t)ndigits;
    } else if (decpt < ndigits) {
        memcpy(out + len, digits, (size_t)decpt);
        len += (size_t)decpt;
        out[len++] = '.';
        memcpy(out + len, digits + decpt, (size_t)(ndigits - decpt));
        len += (size_t)(ndigits - decpt);
    } else {
        memcpy(out + len, digits, (size_t)ndigits);
        len += (size_t)ndigits;
        for (int z = ndigits; z < decpt; z++) {
            out[len++] = '0';
        }
        out[len++] = '.';
        out[len++] = '0';
    }
    out[len] = '\0';
    return len;
}
