/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * guestlink, the host CLI: what the verbs share.  Each verb lives in its own
 * file (list.c, ping.c ...) and is dispatched from the table in guestlink.c.
 */
#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"

/* Exit codes, documented in guestlink(1) and --help. */
enum {
        EXIT_OK = 0,
        EXIT_OTHER = 1,           /* internal error, unexpected answer */
        EXIT_USAGE = 2,           /* bad command line */
        EXIT_UNREACHABLE = 3,     /* cannot reach the bridge, the socket or libvirt */
        EXIT_NOT_ATTACHED = 4,    /* the bridge has no such guest */
        EXIT_NO_AGENT = 5,        /* no agent session (no-agent; direct: no handshake) */
        EXIT_FORBIDDEN = 6,       /* refused by the guest's policy */
        EXIT_TIMEOUT = 7,         /* no answer in time */
        EXIT_REFUSED = 8,         /* refused otherwise: unavailable, busy, invalid, unsupported */
        EXIT_NOT_ALL_STOPPED = 9, /* shutdown-all: some guests did not stop */
};

/* Global options, parsed by guestlink.c; verbs may override json and
 * timeout_ms with their own --json / --timeout. */
typedef struct Cli {
        ClientOptions client;
        bool json;
        uint64_t timeout_ms;
        bool timeout_set;
        const char *verb;
} Cli;

typedef int (*VerbFunc)(Cli *cli, int argc, char **argv);

int verb_list(Cli *cli, int argc, char **argv);
int verb_ping(Cli *cli, int argc, char **argv);
int verb_info(Cli *cli, int argc, char **argv);
int verb_stats(Cli *cli, int argc, char **argv);
int verb_power(Cli *cli, int argc, char **argv);
int verb_lock(Cli *cli, int argc, char **argv);
int verb_events(Cli *cli, int argc, char **argv);
int verb_shutdown_all(Cli *cli, int argc, char **argv);

/* Common verb helpers (guestlink.c). */

/* Parses the verb's options: the common ones (--json, --timeout, -h) plus
 * the verb's own, which are handed to fn(option, optarg, userdata).
 * Returns the index of the first positional argument, or -1 after printing a
 * usage error (exit EXIT_USAGE), or -2 after printing help (exit EXIT_OK). */
typedef struct VerbOption {
        const char *name;
        int has_arg;
        int val;
} VerbOption;
typedef int (*VerbOptionFunc)(int option, const char *arg, void *userdata);
int cli_parse_verb_options(Cli *cli, int argc, char **argv, const VerbOption *options, VerbOptionFunc fn,
                           void *userdata, const char *usage) G_GNUC_WARN_UNUSED_RESULT;
/* The exit code after cli_parse_verb_options() returned a negative value. */
int cli_parse_exit(int r);

/* Prints "guestlink: message" on stderr; returns exit_code. */
int cli_fail(int exit_code, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Prints "guestlink: GUEST: what" for an error and returns its exit code. */
int cli_fail_error(const char *guest, const GError *error);
/* Prints a usage error ("guestlink VERB: message"; cli may be NULL); returns EXIT_USAGE. */
int cli_usage_error(const Cli *cli, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Takes the GUEST positional argument: in bridge mode required; in direct
 * and libvirt mode optional ("-" or absent) when argc - *index is less than
 * want (the number of positionals including GUEST).  Returns the guest
 * name (NULL: the one guest of a direct connection). */
const char *cli_take_guest(const Cli *cli, int argc, char **argv, int *index, int want, bool *ret_ok);
/* The name to use in messages about guest. */
const char *cli_guest_label(const Cli *cli, const char *guest);

/* Opens the client connection; prints the error and returns its exit code
 * on failure. */
int cli_open(Cli *cli, Client **ret_client) G_GNUC_WARN_UNUSED_RESULT;

/* Seconds as given on the command line ("1.5"); false if malformed. */
bool cli_parse_seconds(const char *text, double *ret);
