/*
 * alkaidc: the command-line client of alkaid.
 *
 * Subcommands live in cmd_*.c; this file dispatches to them, maps library errors to exit codes
 * and holds the small helpers several subcommands share (cli.h). Every message goes to stderr;
 * stdout carries only results.
 */
#include "cli.h"

#include "plugins/keras/model_file.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", cmd_run, "run an ALIR program on samples, bit-exactly"},
    {"inspect", cmd_inspect, "summarise an ALIR program"},
    {"trace-example", cmd_trace_example, "trace the example model into ALIR (in-process)"},
    {"plugins", cmd_plugins, "list the plugins and their state"},
    {"cmvm", cmd_cmvm, "solve a constant matrix-vector product with shifted adders"},
    {"scm", cmd_scm, "multiply by one constant with shifted adders"},
    {"convert", cmd_convert, "convert a model into ALIR (through a daemon or in-process)"},
    {"ping", cmd_ping, "check that a daemon answers"},
    {"stats", cmd_stats, "print a daemon's counters (control socket)"},
    {"reload", cmd_reload, "reload a daemon's plugins (control socket)"},
    {"load", cmd_load, "add a plugin to a daemon (control socket)"},
    {"unload", cmd_unload, "disable a plugin in a daemon (control socket)"},
    {"drain", cmd_drain, "stop a daemon taking requests, wait for those in flight"},
    {"shutdown", cmd_shutdown, "stop a daemon gracefully (control socket)"},
};

static void print_help(FILE *to) {
    fprintf(to, "usage: alkaidc COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(to, "\n'alkaidc COMMAND --help' describes a command.\n");
}

int cli_fail(int err, const alk_diag *diag) {
    const char *text = diag != NULL && diag->message[0] != '\0' ? diag->message : alk_strerror(err);
    fprintf(stderr, "alkaidc: %s\n", text);
    switch (err) {
    case ALK_OK:
        return EXIT_OK;
    case ALK_EINVAL:
    case ALK_EVERSION:
    case ALK_ENOTSUP:
        return EXIT_INPUT;
    case ALK_EIO:
    case ALK_ENOENT:
        return EXIT_IO;
    case ALK_ENOMEM:
    case ALK_ELIMIT:
        return EXIT_RESOURCE;
    case ALK_EBUSY:
    case ALK_ETIMEDOUT:
    case ALK_ECANCELED:
        return EXIT_RETRY;
    case ALK_EPLUGIN:
        return EXIT_INPUT;
    default:
        return EXIT_INTERNAL;
    }
}

int cli_usage_error(const char *command_name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "alkaidc %s: ", command_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'alkaidc %s --help')\n", command_name);
    va_end(ap);
    return EXIT_USAGE;
}

bool cli_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s);
    size_t k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool cli_is_keras_model(const char *path, const void *head, size_t len) {
    return cli_ends_with(path, ".keras") || cli_ends_with(path, ".h5") ||
           cli_ends_with(path, ".hdf5") || alk_keras_file_is_container(head, len);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("alkaidc %s\n", ALKAID_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "alkaidc: unknown command '%s'\n", argv[1]);
    print_help(stderr);
    return EXIT_USAGE;
}
