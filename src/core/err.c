/* The error map's generated tables and the diagnostic helpers. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *alk_strerror(int err) {
    switch (err) {
#define ALK_ERR_TEXT(name, num, text)                                                              \
    case num:                                                                                      \
        return text;
        ALK_ERR_MAP(ALK_ERR_TEXT)
#undef ALK_ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *alk_err_name(int err) {
    switch (err) {
#define ALK_ERR_NAME(name, num, text)                                                              \
    case num:                                                                                      \
        return #name;
        ALK_ERR_MAP(ALK_ERR_NAME)
#undef ALK_ERR_NAME
    default:
        return "EUNKNOWN";
    }
}

int alk_diag_set(alk_diag *diag, int err, const char *fmt, ...) {
    if (diag != NULL) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(diag->message, sizeof(diag->message), fmt, ap);
        va_end(ap);
    }
    return err;
}

void alk_diag_prefix(alk_diag *diag, const char *fmt, ...) {
    if (diag == NULL) {
        return;
    }
    char old[sizeof(diag->message)];
    memcpy(old, diag->message, sizeof(old));
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(diag->message, sizeof(diag->message), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(diag->message)) {
        (void)snprintf(diag->message + n, sizeof(diag->message) - (size_t)n, "%s", old);
    }
}

void alk_diag_clear(alk_diag *diag) {
    if (diag != NULL) {
        diag->message[0] = '\0';
    }
}
