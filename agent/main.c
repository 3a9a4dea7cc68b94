/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-agent: the guest side of guestlink.  See guestlink-agent(8).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include "agent.h"
#include "config.h"

/* Parsed command line: the only file-scope state of the program. */
typedef struct Options {
        const char *config_path;
        gboolean config_given; /* a missing file is an error only then */
        const char *transport, *port, *device;
        gboolean check_config;
} Options;

static int parse_options(int argc, char **argv, Options *o) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' }, { "transport", required_argument, NULL, 't' },
                { "port", required_argument, NULL, 'p' },   { "device", required_argument, NULL, 'd' },
                { "check-config", no_argument, NULL, 'C' }, { "version", no_argument, NULL, 'V' },
                { "help", no_argument, NULL, 'h' },         {},
        };
        int c;

        *o = (Options){ .config_path = GL_AGENT_CONFIG_FILE };
        while ((c = getopt_long(argc, argv, "c:t:p:d:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        o->config_path = optarg;
                        o->config_given = TRUE;
                        break;
                case 't':
                        o->transport = optarg;
                        break;
                case 'p':
                        o->port = optarg;
                        break;
                case 'd':
                        o->device = optarg;
                        break;
                case 'C':
                        o->check_config = TRUE;
                        break;
                case 'V':
                        printf("guestlink-agent %s\n", GL_VERSION);
                        return 0;
                case 'h':
                        printf("Usage: %s [--config FILE] [--transport virtio-serial|tty|vsock] [--port NAME|PATH]\n"
                               "          [--device TTY] [--check-config] [--version]\n",
                               argv[0]);
                        return 0;
                default:
                        return -EINVAL;
                }
        return 1;
}

static int run(int argc, char **argv) {
        g_autoptr(GlAgentConfig) config = gl_agent_config_new();
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(GlAgent) agent = NULL;
        sigset_t mask;
        Options o;
        int r;

        /* SIGIO reports virtio-serial host connects; it must reach our
         * signalfd, never a thread that would die of it.  Block it before
         * any thread exists. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGIO);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = parse_options(argc, argv, &o);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (!gl_agent_config_load(config, o.config_path, o.config_given, warnings, &error)) {
                gl_agent_log(LOG_ERR, "%s", error->message);
                return EXIT_FAILURE;
        }
        for (guint i = 0; i < warnings->len; i++)
                gl_agent_log(LOG_WARNING, "%s: %s", o.config_path, (char *) warnings->pdata[i]);
        if (o.transport) {
                if (g_str_equal(o.transport, "virtio-serial"))
                        config->transport = GL_TRANSPORT_VIRTIO_SERIAL;
                else if (g_str_equal(o.transport, "tty"))
                        config->transport = GL_TRANSPORT_TTY;
                else if (g_str_equal(o.transport, "vsock"))
                        config->transport = GL_TRANSPORT_VSOCK;
                else {
                        gl_agent_log(LOG_ERR, "--transport: expected virtio-serial, tty or vsock");
                        return EXIT_FAILURE;
                }
        }
        if (o.port) {
                g_free(config->port);
                config->port = g_strdup(o.port);
        }
        if (o.device) {
                g_free(config->device);
                config->device = g_strdup(o.device);
        }
        if (o.check_config) {
                printf("%s: ok\n", o.config_path);
                return EXIT_SUCCESS;
        }
        agent = gl_agent_new(g_steal_pointer(&config), o.config_path, &error);
        if (!agent) {
                gl_agent_log(LOG_ERR, "%s", error->message);
                return EXIT_FAILURE;
        }
        return gl_agent_run(agent);
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
