/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink: the host CLI.  Talks to guestlink-bridge over its control
 * socket, or straight to one agent (--direct: a QEMU chardev socket;
 * --connect: a libvirt channel stream).  One file per verb; this file holds
 * the global options, the verb table and the helpers the verbs share.
 */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "output.h"

#define DEFAULT_SOCKET "/run/guestlink/bridge.sock"
#define DEFAULT_TIMEOUT_MS 30000

typedef struct Verb {
        const char *name;
        VerbFunc run;
        const char *synopsis;
} Verb;

static const Verb verbs[] = {
        { "list", verb_list, "list" },
        { "ping", verb_ping, "ping GUEST" },
        { "info", verb_info, "info GUEST" },
        { "stats", verb_stats, "stats GUEST [--watch [--count N]] [--interval S] [--since TIME] [--sections a,b]" },
        { "power", verb_power, "power GUEST ACTION [--delay S] [--message TEXT] [--wait]" },
        { "lock", verb_lock, "lock GUEST" },
        { "events", verb_events, "events [GUEST] [-f|--follow]" },
        { "shutdown-all", verb_shutdown_all,
          "shutdown-all [--action poweroff|suspend] [--parallel N] [--timeout S] [--fallback acpi|destroy|none]" },
};

static void help(void) {
        printf("Usage: guestlink [OPTIONS] VERB [ARGS]\n\n"
               "Talk to guests through guestlink-bridge, or straight to one agent.\n\n"
               "Options:\n"
               "      --socket PATH      the bridge's control socket (default " DEFAULT_SOCKET ",\n"
               "                         or $GUESTLINK_SOCKET)\n"
               "      --direct SOCKET    talk to the agent on a QEMU chardev unix socket (no bridge)\n"
               "      --connect URI DOMAIN  talk to DOMAIN's agent through libvirt (no bridge)\n"
               "      --json             JSON output\n"
               "      --timeout SECONDS  handshake and request timeout (default 30)\n"
               "  -h, --help             this help\n"
               "      --version          print the version\n\n"
               "Verbs:\n");
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
                printf("  %s\n", verbs[i].synopsis);
        printf("\nWith --direct or --connect, GUEST may be omitted or \"-\".\n\n"
               "Exit status:\n"
               "  0 ok; 1 other failure; 2 usage; 3 cannot reach the bridge, socket or libvirt;\n"
               "  4 guest not attached; 5 no agent; 6 refused by the guest's policy; 7 timeout;\n"
               "  8 refused by the guest otherwise (unavailable, busy, invalid, unsupported);\n"
               "  9 shutdown-all: some guests did not stop.\n");
}

int cli_fail(int exit_code, const char *format, ...) {
        g_autofree char *text = NULL;
        va_list ap;

        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);
        fflush(stdout);
        fprintf(stderr, "guestlink: %s\n", text);
        return exit_code;
}

int cli_fail_error(const char *guest, const GError *error) {
        g_autofree char *what = client_error_describe(error);

        if (guest) {
                g_autofree char *g = output_text(guest);
                return cli_fail(client_error_exit_code(error), "%s: %s", g, what);
        }
        return cli_fail(client_error_exit_code(error), "%s", what);
}

int cli_usage_error(const Cli *cli, const char *format, ...) {
        g_autofree char *text = NULL;
        va_list ap;

        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);
        fprintf(stderr, "guestlink%s%s: %s\nTry 'guestlink --help'.\n", cli && cli->verb ? " " : "",
                cli && cli->verb ? cli->verb : "", text);
        return EXIT_USAGE;
}

bool cli_parse_seconds(const char *text, double *ret) {
        char *end = NULL;
        double v;

        errno = 0;
        v = g_ascii_strtod(text, &end);
        if (errno != 0 || !end || end == text || *end || !(v >= 0) || v > 86400.0 * 365)
                return false;
        *ret = v;
        return true;
}

int cli_parse_verb_options(Cli *cli, int argc, char **argv, const VerbOption *options, VerbOptionFunc fn,
                           void *userdata, const char *usage) {
        enum { OPT_JSON = 0x1000, OPT_TIMEOUT };
        g_autoptr(GArray) longopts = g_array_new(TRUE, TRUE, sizeof(struct option));
        g_autoptr(GString) shortopts = g_string_new("h"); /* options may follow arguments */
        int c;

        for (const VerbOption *o = options; o && o->name; o++) {
                struct option lo = { o->name, o->has_arg, NULL, o->val };

                g_array_append_val(longopts, lo);
                if (o->val > 0 && o->val < 128) {
                        g_string_append_c(shortopts, (char) o->val);
                        if (o->has_arg)
                                g_string_append_c(shortopts, ':');
                }
        }
        g_array_append_vals(longopts,
                            (struct option[]){
                                    { "json", no_argument, NULL, OPT_JSON },
                                    { "timeout", required_argument, NULL, OPT_TIMEOUT },
                                    { "help", no_argument, NULL, 'h' },
                            },
                            3);

        optind = 0; /* full re-initialisation of getopt */
        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts->str, (struct option *) (void *) longopts->data, NULL)) >= 0) {
                double s;

                switch (c) {
                case 'h':
                        printf("Usage: guestlink [OPTIONS] %s\n", usage);
                        return -2;
                case OPT_JSON:
                        cli->json = true;
                        break;
                case OPT_TIMEOUT:
                        if (!cli_parse_seconds(optarg, &s) || s <= 0) {
                                cli_usage_error(cli, "invalid --timeout '%s'", optarg);
                                return -1;
                        }
                        cli->timeout_ms = (uint64_t) (s * 1000);
                        cli->client.timeout_ms = cli->timeout_ms;
                        cli->timeout_set = true;
                        break;
                case '?':
                case ':':
                        cli_usage_error(cli, "invalid or incomplete option '%s'", argv[optind - 1]);
                        return -1;
                default:
                        if (fn(c, optarg, userdata) < 0)
                                return -1;
                        break;
                }
        }
        return optind;
}

int cli_parse_exit(int r) {
        return r == -2 ? EXIT_OK : EXIT_USAGE;
}

const char *cli_take_guest(const Cli *cli, int argc, char **argv, int *index, int want, bool *ret_ok) {
        int have = argc - *index;

        *ret_ok = true;
        if (cli->client.mode != CLIENT_MODE_BRIDGE && have < want)
                return NULL;
        if (have < 1) {
                cli_usage_error(cli, "missing GUEST");
                *ret_ok = false;
                return NULL;
        }
        return argv[(*index)++];
}

const char *cli_guest_label(const Cli *cli, const char *guest) {
        if (!client_guest_is_default(guest))
                return guest;
        return cli->client.mode == CLIENT_MODE_LIBVIRT ? cli->client.domain : cli->client.socket_path;
}

int cli_open(Cli *cli, Client **ret_client) {
        g_autoptr(GError) error = NULL;

        if (client_open(&cli->client, ret_client, &error) < 0)
                return cli_fail_error(NULL, error);
        return EXIT_OK;
}

static int run(int argc, char **argv) {
        enum { OPT_SOCKET = 0x100, OPT_DIRECT, OPT_CONNECT, OPT_JSON, OPT_TIMEOUT, OPT_VERSION };
        static const struct option options[] = {
                { "socket", required_argument, NULL, OPT_SOCKET },   { "direct", required_argument, NULL, OPT_DIRECT },
                { "connect", required_argument, NULL, OPT_CONNECT }, { "json", no_argument, NULL, OPT_JSON },
                { "timeout", required_argument, NULL, OPT_TIMEOUT }, { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },       {},
        };
        Cli cli = {
                .client = { .mode = CLIENT_MODE_BRIDGE, .timeout_ms = DEFAULT_TIMEOUT_MS },
                .timeout_ms = DEFAULT_TIMEOUT_MS,
        };
        const char *socket_path = g_getenv("GUESTLINK_SOCKET");
        int c;

        if (!socket_path || !*socket_path)
                socket_path = DEFAULT_SOCKET;
        cli.client.socket_path = socket_path;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                double s;

                switch (c) {
                case OPT_SOCKET:
                        cli.client.socket_path = optarg;
                        break;
                case OPT_DIRECT:
                        cli.client.mode = CLIENT_MODE_DIRECT;
                        cli.client.socket_path = optarg;
                        break;
                case OPT_CONNECT:
                        if (optind >= argc)
                                return cli_usage_error(&cli, "--connect needs URI and DOMAIN");
                        cli.client.mode = CLIENT_MODE_LIBVIRT;
                        cli.client.uri = optarg;
                        cli.client.domain = argv[optind++];
                        break;
                case OPT_JSON:
                        cli.json = true;
                        break;
                case OPT_TIMEOUT:
                        if (!cli_parse_seconds(optarg, &s) || s <= 0)
                                return cli_usage_error(&cli, "invalid --timeout '%s'", optarg);
                        cli.timeout_ms = (uint64_t) (s * 1000);
                        cli.client.timeout_ms = cli.timeout_ms;
                        cli.timeout_set = true;
                        break;
                case 'h':
                        help();
                        return EXIT_OK;
                case OPT_VERSION:
                        printf("guestlink %s\n", GL_VERSION);
                        return EXIT_OK;
                default:
                        return cli_usage_error(&cli, "invalid or incomplete option '%s'", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return cli_usage_error(&cli, "missing VERB");
        cli.verb = argv[optind];
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++) {
                if (strcmp(verbs[i].name, cli.verb) == 0)
                        return verbs[i].run(&cli, argc - optind, argv + optind);
        }
        cli.verb = NULL;
        return cli_usage_error(&cli, "unknown verb '%s'", argv[optind]);
}

int main(int argc, char **argv) {
        setlocale(LC_ALL, "");
        setlocale(LC_NUMERIC, "C"); /* "1.5 GiB" everywhere, as in JSON */
        g_set_prgname("guestlink");
        return run(argc, argv);
}
