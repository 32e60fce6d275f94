/*
 * Number formatting and parsing shared by the ALIR JSON codec and the CLI.
 *
 * alk_fmt_double writes a double exactly as Python's repr() does (shortest digits that read back
 * to the same double; exponent form below 1e-4 and from 1e16 on; a trailing ".0" on integral
 * values), because ALIR files are compared byte for byte with the reference's, which Python's
 * json module writes.
 */
#ifndef ALK_CORE_NUMFMT_H
#define ALK_CORE_NUMFMT_H

#include <stddef.h>

enum { ALK_FMT_DOUBLE_MAX = 32 };

/*
 * Writes the Python repr of `value` into `out` (at least ALK_FMT_DOUBLE_MAX bytes) and returns
 * its length. Non-finite values are written as "inf", "-inf" and "nan", as repr() does.
 */
size_t alk_fmt_double(char out[ALK_FMT_DOUBLE_MAX], double value);

#endif
