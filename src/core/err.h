/*
 * Error codes of libalkaid.
 *
 * Every fallible function returns an `int` holding an `alk_err`. The codes are stable: they go
 * on the wire by name and by number, so a code is never renumbered or reused. ALK_ERR_MAP is the
 * single list that generates the enum, alk_strerror() and alk_err_name().
 *
 * A function may also fill an `alk_diag` with a sentence naming the culprit (a field, an op
 * index, a file offset). The diagnostic is optional: every function accepts `diag == NULL`.
 */
#ifndef ALK_CORE_ERR_H
#define ALK_CORE_ERR_H

#include <stddef.h>

/* X(NAME, number, description) */
#define ALK_ERR_MAP(X)                                                                             \
    X(OK, 0, "success")                                                                            \
    X(EINVAL, 1, "invalid argument or malformed input")                                            \
    X(ENOMEM, 2, "out of memory")                                                                  \
    X(EIO, 3, "input/output error")                                                                \
    X(ENOENT, 4, "no such file or entry")                                                          \
    X(ELIMIT, 5, "size limit exceeded")                                                            \
    X(EBUSY, 6, "busy, try again later")                                                           \
    X(ETIMEDOUT, 7, "deadline exceeded")                                                           \
    X(ECANCELED, 8, "operation canceled")                                                          \
    X(ENOTSUP, 9, "not supported")                                                                 \
    X(EVERSION, 10, "unsupported version")                                                         \
    X(EPROTO, 11, "protocol error")                                                                \
    X(EPLUGIN, 12, "plugin error")                                                                 \
    X(EINTERNAL, 13, "internal error")

typedef enum alk_err {
#define ALK_ERR_ENUM(name, num, text) ALK_##name = num,
    ALK_ERR_MAP(ALK_ERR_ENUM)
#undef ALK_ERR_ENUM
} alk_err;

/* Human-readable description of `err`; never NULL (unknown codes get a generic text). */
const char *alk_strerror(int err);

/* Stable wire name of `err` without the prefix ("EINVAL"); "EUNKNOWN" for unknown codes. */
const char *alk_err_name(int err);

/* A diagnostic sentence that accompanies an error. */
typedef struct alk_diag {
    char message[512];
} alk_diag;

/*
 * Writes a printf-style message into `diag` (when not NULL) and returns `err`, so that a call site
 * reads `return alk_diag_set(diag, ALK_EINVAL, "op %zu: ...", i);`. The message is truncated to
 * the buffer; `diag` stays owned by the caller.
 */
int alk_diag_set(alk_diag *diag, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in `diag` with more context ("file.json: " + old message). */
void alk_diag_prefix(alk_diag *diag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears `diag` (when not NULL). */
void alk_diag_clear(alk_diag *diag);

#endif
