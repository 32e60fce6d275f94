/*
 * Whole-file reading and writing, and gzip (de)compression in memory (zlib).
 *
 * Reads are bounded by a caller-given limit so a hostile or broken file cannot exhaust memory;
 * writes go to a temporary file in the target's directory and are renamed into place, so a
 * reader never sees half a file.
 */
#ifndef ALK_CORE_IO_H
#define ALK_CORE_IO_H

#include "core/err.h"
#include "core/vec.h"

#include <stdbool.h>
#include <stddef.h>

/* Appends the bytes of `path` ("-" = standard input) to `out`; ALK_ELIMIT past `limit` bytes. */
int alk_read_file(const char *path, size_t limit, alk_buf *out, alk_diag *diag);

/* Replaces `path` ("-" = standard output) with `len` bytes of `data` (borrowed). */
int alk_write_file(const char *path, const void *data, size_t len, alk_diag *diag);

/* Whether `bytes` start with the gzip magic 1f 8b. */
bool alk_is_gzip(const void *bytes, size_t len);

/*
 * Appends the decompressed content of the gzip stream `in` (borrowed) to `out`. Truncated or
 * corrupt streams give ALK_EINVAL with zlib's reason and the offset; ALK_ELIMIT past `limit`
 * decompressed bytes.
 */
int alk_gunzip(const void *in, size_t len, size_t limit, alk_buf *out, alk_diag *diag);

/*
 * A gzip stream decompressed piece by piece, for a consumer that may stop early (a parser at
 * its first error) and need not hold the whole text. Members may follow one another, with zero
 * padding between or after them, as gzip(1) reads them.
 */
typedef struct alk_gunzip_reader alk_gunzip_reader;

/* Starts on the gzip stream `in` (len bytes, borrowed until alk_gunzip_reader_free), at most
 * `limit` decompressed bytes in all. ALK_ENOMEM. */
int alk_gunzip_reader_new(const void *in, size_t len, size_t limit, alk_gunzip_reader **ret_reader,
                          alk_diag *diag);

/*
 * Decompresses up to `cap` bytes into `out`; *ret_n is less than `cap` only at the end of the
 * stream (0 once it is over). Errors as alk_gunzip's; the reader is not used after one.
 */
int alk_gunzip_read(alk_gunzip_reader *reader, void *out, size_t cap, size_t *ret_n,
                    alk_diag *diag);

/* Frees `reader` (NULL: nothing). */
void alk_gunzip_reader_free(alk_gunzip_reader *reader);

/* Appends a gzip stream (compression level 6, no file name, time 0) of `in` to `out`. */
int alk_gzip(const void *in, size_t len, alk_buf *out, alk_diag *diag);

#endif
