/*
 * alkaidc's shared pieces: the subcommand table entries, exit codes and error reporting.
 */
#ifndef ALKAIDC_CLI_H
#define ALKAIDC_CLI_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

/* Exit codes (documented in README.md). */
enum {
    EXIT_OK = 0,
    EXIT_INPUT = 1,    /* a model or data file is malformed or refused */
    EXIT_USAGE = 2,    /* wrong command line */
    EXIT_IO = 3,       /* a file could not be read or written */
    EXIT_RESOURCE = 4, /* out of memory or past a size limit */
    EXIT_INTERNAL = 5,
    EXIT_UNAVAILABLE = 6, /* no daemon could be reached at the URL(s) */
    EXIT_RETRY = 7,       /* the daemon was busy, the deadline passed, or it is stopping */
};

/* Prints "alkaidc: <diag message or strerror>" on stderr and returns the exit code for `err`. */
int cli_fail(int err, const alk_diag *diag);

/* Prints a usage error on stderr and returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Whether `s` ends with `suffix` (a file name's extension). Both are borrowed. */
bool cli_ends_with(const char *s, const char *suffix);
/* Whether the model file `path` is a Keras model file: by its name (.keras, .h5, .hdf5) or,
 * whatever its name, by its first bytes `head` (len of them; a zip or HDF5 container).
 * Both are borrowed. */
bool cli_is_keras_model(const char *path, const void *head, size_t len);

int cmd_run(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
/* `alkaidc inspect` of a Keras model file (inspect_keras.c): `weights_path` NULL unless the model
 * is a JSON; `plugin_dirs` (n of them) are searched before the default plugin path. */
int cli_inspect_keras(const char *path, const char *weights_path, const char *const *plugin_dirs,
                      size_t n_plugin_dirs);
/* The in-process example tracer (cmd_trace_example.c). */
int cmd_trace_example(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_cmvm(int argc, char **argv);
int cmd_scm(int argc, char **argv);
/* The daemon commands (cmd_convert.c, cmd_daemon.c). */
int cmd_convert(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_unload(int argc, char **argv);
int cmd_drain(int argc, char **argv);
int cmd_shutdown(int argc, char **argv);
/*
 * `alkaidc plugins` asks a daemon when one is configured or running (--connect/--control URL,
 * ALKAID_CONNECT, the default socket) and returns the exit code; it returns -1 when the listing
 * is local (--local, --plugin-dir, or no daemon), after removing --local from argv.
 */
int cli_plugins_remote(int *argc, char **argv);

#endif
