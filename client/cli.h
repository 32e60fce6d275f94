/*
 * alkaidc's shared pieces: the subcommand table entries, exit codes and error reporting.
 */
#ifndef ALKAIDC_CLI_H
#define ALKAIDC_CLI_H

#include "core/err.h"

/* Exit codes (documented in README.md). */
enum {
    EXIT_OK = 0,
    EXIT_INPUT = 1,    /* a model or data file is malformed or refused */
    EXIT_USAGE = 2,    /* wrong command line */
    EXIT_IO = 3,       /* a file could not be read or written */
    EXIT_RESOURCE = 4, /* out of memory or past a size limit */
    EXIT_INTERNAL = 5,
};

/* Prints "alkaidc: <diag message or strerror>" on stderr and returns the exit code for `err`. */
int cli_fail(int err, const alk_diag *diag);

/* Prints a usage error on stderr and returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int cmd_run(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_plugins(int argc, char **argv);

#endif
