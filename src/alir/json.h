/*
 * The ALIR JSON file format (spec trace-alir.md §4.5): reading spec versions 2, 3 and 4 (plain or
 * gzip; older versions are upgraded on load) and writing version 4 exactly as the reference's
 * CombLogic.save() does, byte for byte.
 */
#ifndef ALK_ALIR_JSON_H
#define ALK_ALIR_JSON_H

#include "alir/program.h"
#include "core/vec.h"

#include <stddef.h>

enum { ALK_ALIR_SPEC_VERSION = 4 };

/* Default bound on a file's size and on its decompressed size. */
#define ALK_ALIR_MAX_BYTES ((size_t)1 << 30)

/*
 * Parses an ALIR document held in `bytes` (borrowed; gzip detected by its magic bytes) and
 * validates the program (alk_program_validate). On success the caller owns *ret_program. Errors
 * name the place: the JSON line and column, or the model element / op index and field.
 */
int alk_alir_parse(const void *bytes, size_t len, alk_program **ret_program, alk_diag *diag);

/* Reads and parses the file at `path` ("-" = standard input); errors are prefixed by the path. */
int alk_alir_read_file(const char *path, alk_program **ret_program, alk_diag *diag);

/* Appends the version-4 JSON text of `program` (borrowed) to `out`. */
int alk_alir_to_json(const alk_program *program, alk_buf *out);

/* Writes `program` to `path` ("-" = standard output), gzip-compressed when it ends in ".gz". */
int alk_alir_write_file(const alk_program *program, const char *path, alk_diag *diag);

#endif
