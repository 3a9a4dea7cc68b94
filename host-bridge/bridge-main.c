/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-bridge: the host side of guestlink.  See guestlink-bridge(8).
 */
#include <errno.h>
#include <getopt.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "bridge.h"
#include "config.h"
#include "log.h"

/* Parsed command line: the only file-scope state of the program. */
typedef struct Options {
        const char *config_path;
        gboolean config_given;
        const char *socket;
        gboolean no_libvirt;
} Options;

static int parse_options(int argc, char **argv, Options *o) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' }, { "socket", required_argument, NULL, 's' },
                { "no-libvirt", no_argument, NULL, 'L' },   { "version", no_argument, NULL, 'V' },
                { "help", no_argument, NULL, 'h' },         {},
        };
        int c;

        *o = (Options){ .config_path = GL_BRIDGE_CONFIG_FILE };
        while ((c = getopt_long(argc, argv, "c:s:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        o->config_path = optarg;
                        o->config_given = TRUE;
                        break;
                case 's':
                        o->socket = optarg;
                        break;
                case 'L':
                        o->no_libvirt = TRUE;
                        break;
                case 'V':
                        printf("guestlink-bridge %s\n", GL_VERSION);
                        return 0;
                case 'h':
                        printf("Usage: %s [--config FILE] [--socket PATH] [--no-libvirt] [--version]\n", argv[0]);
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "%s: unexpected argument %s\n", argv[0], argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* A bridge holds a socket per guest and per client: take the hard limit
 * of open files (systemd sets a high one), as systemd's own daemons do. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        gl_log(LOG_WARNING, "Cannot raise the open files limit: %m, ignoring");
        }
}

typedef struct Loop {
        GMainLoop *loop;
        const char *reason;
        GlBridge *bridge;
        const Options *options;
} Loop;

static gboolean on_term(gpointer userdata) {
        Loop *l = userdata;

        l->reason = "signal";
        g_main_loop_quit(l->loop);
        return G_SOURCE_CONTINUE;
}

static GlBridgeConfig *load_config(const Options *o) {
        g_autoptr(GlBridgeConfig) config = gl_bridge_config_new();
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;

        if (!gl_bridge_config_load(config, o->config_path, o->config_given, warnings, &error)) {
                gl_log(LOG_ERR, "%s", error->message);
                return NULL;
        }
        for (guint i = 0; i < warnings->len; i++)
                gl_log(LOG_WARNING, "%s: %s", o->config_path, (char *) warnings->pdata[i]);
        if (o->socket) {
                g_free(config->control_socket);
                config->control_socket = g_strdup(o->socket);
        }
        if (o->no_libvirt)
                config->libvirt_enabled = false;
        return g_steal_pointer(&config);
}

static gboolean on_hup(gpointer userdata) {
        Loop *l = userdata;
        GlBridgeConfig *config;

        sd_notify(0, "RELOADING=1");
        config = load_config(l->options);
        if (config)
                gl_bridge_reload(l->bridge, config);
        else
                gl_log(LOG_ERR, "Reload failed; keeping the running configuration");
        sd_notify(0, "READY=1");
        return G_SOURCE_CONTINUE;
}

static gboolean on_watchdog(gpointer userdata) {
        (void) userdata;
        sd_notify(0, "WATCHDOG=1");
        return G_SOURCE_CONTINUE;
}

static int run(int argc, char **argv) {
        g_autoptr(GlBridgeConfig) config = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GlBridge) bridge = NULL;
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
        Loop l = { .loop = loop };
        uint64_t watchdog_us = 0;
        Options o;
        int r;

        g_set_prgname("guestlink-bridge");
        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();
        r = parse_options(argc, argv, &o);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        config = load_config(&o);
        if (!config)
                return 1;

        bridge = gl_bridge_new(g_steal_pointer(&config));
        if (!gl_bridge_start(bridge, &error)) {
                gl_log(LOG_ERR, "Cannot start: %s", error->message);
                return 1;
        }
        l.bridge = bridge;
        l.options = &o;
        g_unix_signal_add(SIGTERM, on_term, &l);
        g_unix_signal_add(SIGINT, on_term, &l);
        g_unix_signal_add(SIGHUP, on_hup, &l);
        if (sd_watchdog_enabled(0, &watchdog_us) > 0)
                g_timeout_add((guint) (watchdog_us / 2000), on_watchdog, NULL);
        sd_notify(0, "READY=1\nSTATUS=Serving guests");
        g_main_loop_run(loop);
        sd_notify(0, "STOPPING=1");
        gl_log(LOG_INFO, "Stopping (%s)", l.reason ? l.reason : "quit");
        return 0;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
