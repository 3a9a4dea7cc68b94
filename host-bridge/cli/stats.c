/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink stats: one sample (`stats.get`), a live view (--watch: the
 * bridge's stats events through `bridge.subscribe`, or `stats.subscribe`
 * events from a direct agent), or the bridge's history (--since:
 * `bridge.stats`, one line per sample).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "output.h"
#include "stats-render.h"

#define DEFAULT_INTERVAL_SECONDS 2.0

typedef struct StatsOptions {
        bool watch;
        double interval;
        const char *since;
        const char *sections;
        int64_t count; /* --watch: stop after this many samples; 0 = never */
} StatsOptions;

typedef struct Watch {
        const Cli *cli;
        const char *guest;
        int64_t samples;
        int64_t count;
        bool done;
        bool clear; /* stdout is a terminal: redraw in place */
} Watch;

enum { OPT_INTERVAL = 0x100, OPT_SINCE, OPT_SECTIONS, OPT_COUNT };

static int parse_option(int option, const char *arg, void *userdata) {
        StatsOptions *o = userdata;
        char *end = NULL;

        switch (option) {
        case 'w':
                o->watch = true;
                return 0;
        case OPT_INTERVAL:
                if (cli_parse_seconds(arg, &o->interval) && o->interval > 0)
                        return 0;
                cli_usage_error(NULL, "invalid --interval '%s'", arg);
                return -1;
        case OPT_SINCE:
                o->since = arg;
                return 0;
        case OPT_SECTIONS:
                o->sections = arg;
                return 0;
        case OPT_COUNT:
                o->count = g_ascii_strtoll(arg, &end, 10);
                if (end && !*end && o->count > 0)
                        return 0;
                cli_usage_error(NULL, "invalid --count '%s'", arg);
                return -1;
        }
        return -1;
}

static json_object *sections_array(const char *list) {
        g_auto(GStrv) parts = g_strsplit(list, ",", 0);
        json_object *a = json_object_new_array();

        for (size_t i = 0; parts[i]; i++) {
                g_strstrip(parts[i]);
                if (*parts[i])
                        json_object_array_add(a, json_object_new_string(parts[i]));
        }
        return a;
}

/* TIME: "10m" / "2h" / "1d" / "30s" ago, an ISO 8601 date and time, or
 * seconds since the epoch ("@1714560000"). */
static bool parse_since(const char *text, int64_t now_us, int64_t *ret_us) {
        char *end = NULL;
        double v;

        if (text[0] == '@') {
                int64_t s = g_ascii_strtoll(text + 1, &end, 10);
                if (!end || *end || end == text + 1)
                        return false;
                *ret_us = s * G_USEC_PER_SEC;
                return true;
        }
        v = g_ascii_strtod(text, &end);
        if (end && end != text && v >= 0 && strlen(end) == 1 && strchr("smhd", *end)) {
                double mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 86400;
                *ret_us = now_us - (int64_t) (v * mult * G_USEC_PER_SEC);
                return true;
        } else {
                g_autoptr(GTimeZone) tz = g_time_zone_new_local();
                g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(text, tz);

                if (!t)
                        return false;
                *ret_us = g_date_time_to_unix(t) * G_USEC_PER_SEC;
                return true;
        }
}

static void show_sample(Watch *w, json_object *stats) {
        if (w->cli->json)
                output_json(stats, false);
        else {
                if (w->clear)
                        fputs("\033[H\033[2J", stdout);
                else if (w->samples > 0)
                        fputs("\n", stdout);
                stats_print(stdout, stats);
                fflush(stdout);
        }
        w->samples++;
        if (w->count > 0 && w->samples >= w->count)
                w->done = true;
}

static bool guest_matches(json_object *g, const char *guest) {
        const char *name = output_get_string(g, "name");
        const char *uuid = output_get_string(g, "uuid");

        return (name && strcmp(name, guest) == 0) || (uuid && g_ascii_strcasecmp(uuid, guest) == 0);
}

static void on_event(Client *c, const char *name, json_object *data, void *userdata) {
        Watch *w = userdata;
        json_object *stats;

        if (client_mode(c) != CLIENT_MODE_BRIDGE) {
                if (strcmp(name, "stats") == 0 && data)
                        show_sample(w, data);
                return;
        }
        if (strcmp(name, "bridge.event") != 0 || g_strcmp0(output_get_string(data, "kind"), "stats") != 0 ||
            !guest_matches(output_get(data, "guest"), w->guest))
                return;
        stats = output_get(data, "data");
        if (stats)
                show_sample(w, stats);
}

static int watch(Cli *cli, Client *c, const char *guest, const StatsOptions *o) {
        g_autoptr(json_object) result = NULL;
        g_autoptr(GError) error = NULL;
        Watch w = { .cli = cli, .guest = guest, .count = o->count, .clear = !cli->json && isatty(STDOUT_FILENO) };
        json_object *params = json_object_new_object();
        int r;

        client_set_event_handler(c, on_event, &w);
        if (client_mode(c) == CLIENT_MODE_BRIDGE) {
                json_object_object_add(params, "guest", json_object_new_string(guest));
                json_object_object_add(params, "stats", json_object_new_boolean(true));
                r = client_bridge_call(c, "bridge.subscribe", params, cli->timeout_ms, &result, &error);
        } else {
                json_object_object_add(
                        params, "interval_seconds",
                        json_object_new_double(o->interval > 0 ? o->interval : DEFAULT_INTERVAL_SECONDS));
                if (o->sections)
                        json_object_object_add(params, "sections", sections_array(o->sections));
                r = client_call(c, guest, "stats.subscribe", params, cli->timeout_ms, &result, &error);
        }
        if (r < 0)
                return cli_fail_error(cli_guest_label(cli, guest), error);
        r = client_wait(c, &w.done, UINT64_MAX, &error);
        client_set_event_handler(c, NULL, NULL);
        if (r < 0 && g_error_matches(error, CLIENT_ERROR, CLIENT_ERROR_INTERRUPTED))
                return EXIT_OK;
        if (r < 0)
                return cli_fail_error(cli_guest_label(cli, guest), error);
        return EXIT_OK;
}

static int history(Cli *cli, Client *c, const char *guest, const StatsOptions *o) {
        g_autoptr(json_object) result = NULL;
        g_autoptr(GError) error = NULL;
        json_object *params = json_object_new_object();
        int64_t since;

        if (!parse_since(o->since, output_now_us(), &since)) {
                json_object_put(params);
                return cli_usage_error(cli, "invalid --since '%s' (10m, 2h, 1d, 2024-05-01T12:00:00 or @SECONDS)",
                                       o->since);
        }
        json_object_object_add(params, "guest", json_object_new_string(guest));
        json_object_object_add(params, "since_unix_us", json_object_new_int64(since));
        if (client_bridge_call(c, "bridge.stats", params, cli->timeout_ms, &result, &error) < 0)
                return cli_fail_error(guest, error);
        if (cli->json)
                output_json(result, true);
        else
                stats_print_history(stdout, output_get_array(result, "samples"));
        return EXIT_OK;
}

int verb_stats(Cli *cli, int argc, char **argv) {
        static const VerbOption options[] = {
                { "watch", 0, 'w' },       { "interval", 1, OPT_INTERVAL },
                { "since", 1, OPT_SINCE }, { "sections", 1, OPT_SECTIONS },
                { "count", 1, OPT_COUNT }, {},
        };
        StatsOptions o = { 0 };
        g_autoptr(Client) c = NULL;
        g_autoptr(json_object) result = NULL;
        g_autoptr(GError) error = NULL;
        json_object *params;
        const char *guest;
        bool ok;
        int r;

        r = cli_parse_verb_options(cli, argc, argv, options, parse_option, &o,
                                   "stats GUEST [--watch [--count N]] [--interval S] [--since TIME] [--sections a,b]");
        if (r < 0)
                return cli_parse_exit(r);
        guest = cli_take_guest(cli, argc, argv, &r, 1, &ok);
        if (!ok)
                return EXIT_USAGE;
        if (r < argc)
                return cli_usage_error(cli, "unexpected argument '%s'", argv[r]);
        if (o.watch && o.since)
                return cli_usage_error(cli, "--watch and --since exclude each other");
        if (o.since && cli->client.mode != CLIENT_MODE_BRIDGE)
                return cli_usage_error(cli, "--since needs the bridge's history (not with --direct or --connect)");
        if (o.count && !o.watch)
                return cli_usage_error(cli, "--count needs --watch");
        if (o.interval > 0 && cli->client.mode == CLIENT_MODE_BRIDGE)
                fprintf(stderr, "guestlink: --interval is set by the bridge's configuration, ignoring\n");
        r = cli_open(cli, &c);
        if (r != EXIT_OK)
                return r;
        if (o.watch)
                return watch(cli, c, guest, &o);
        if (o.since)
                return history(cli, c, guest, &o);

        params = json_object_new_object();
        if (o.sections)
                json_object_object_add(params, "sections", sections_array(o.sections));
        if (client_call(c, guest, "stats.get", params, cli->timeout_ms, &result, &error) < 0)
                return cli_fail_error(cli_guest_label(cli, guest), error);
        if (cli->json)
                output_json(result, true);
        else
                stats_print(stdout, result);
        return EXIT_OK;
}
