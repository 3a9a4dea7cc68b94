/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink events: the bridge's recent events (`bridge.subscribe` with
 * recent=100) and, with --follow, every `bridge.event` until interrupted.
 * Directly connected to an agent there is no history; --follow prints the
 * agent's power.progress events and heartbeat state changes.
 */
#include <string.h>

#include "cli.h"
#include "output.h"

#define RECENT_EVENTS 100
#define DIRECT_HEARTBEAT_SECONDS 5

typedef struct Events {
        const Cli *cli;
        const char *label;
        char *last_heartbeat_state;
} Events;

static int parse_option(int option, const char *arg, void *userdata) {
        bool *follow = userdata;

        (void) arg;
        if (option != 'f')
                return -1;
        *follow = true;
        return 0;
}

static char *details(const char *kind, json_object *data) {
        const char *state = output_get_string(data, "state");
        double cpu;

        if (g_strcmp0(kind, "connected") == 0)
                return g_strdup(output_get_string(data, "software"));
        if (g_strcmp0(kind, "power-state") == 0 && output_get_string(data, "action"))
                return g_strdup_printf("%s %s%s%s", output_get_string(data, "action"), state ? state : "",
                                       output_get_string(data, "message") ? ": " : "",
                                       output_get_string(data, "message") ? output_get_string(data, "message") : "");
        if (g_strcmp0(kind, "stats") == 0 && output_get_double(data, "cpu.usage_percent", &cpu))
                return g_strdup_printf("cpu %.1f%%", cpu);
        return g_strdup(state);
}

static void print_event(const Events *e, json_object *ev) {
        const char *kind = output_get_string(ev, "kind");
        int64_t when;

        if (e->cli->json) {
                output_json(ev, false);
                return;
        } else {
                g_autofree char *t = output_get_int(ev, "time_unix_us", &when) ? output_time(when) : g_strdup("-");
                g_autofree char *guest = output_text(output_get_string(ev, "guest.name"));
                g_autofree char *k = output_text(kind);
                g_autofree char *raw = details(kind, output_get(ev, "data"));
                g_autofree char *d = raw ? output_text(raw) : g_strdup("");

                printf("%s %s %s%s%s\n", t, guest, k, *d ? " " : "", d);
                fflush(stdout);
        }
}

/* Direct mode: agent events shaped like the bridge's. */
static void direct_event(Events *e, const char *name, json_object *data) {
        g_autoptr(json_object) ev = NULL;
        json_object *guest;
        int64_t when;

        if (strcmp(name, "heartbeat") == 0) {
                const char *state = output_get_string(data, "state");

                if (!state || g_strcmp0(state, e->last_heartbeat_state) == 0)
                        return;
                g_free(e->last_heartbeat_state);
                e->last_heartbeat_state = g_strdup(state);
        } else if (strcmp(name, "power.progress") != 0 && strcmp(name, CLIENT_EVENT_PEER_RESTARTED) != 0)
                return;
        ev = json_object_new_object();
        guest = json_object_new_object();
        json_object_object_add(guest, "name", json_object_new_string(e->label));
        json_object_object_add(ev, "guest", guest);
        json_object_object_add(
                ev, "kind",
                json_object_new_string(strcmp(name, CLIENT_EVENT_PEER_RESTARTED) == 0 ? "connected" : "power-state"));
        if (!output_get_int(data, "time_unix_us", &when))
                when = output_now_us();
        json_object_object_add(ev, "time_unix_us", json_object_new_int64(when));
        if (data)
                json_object_object_add(ev, "data", json_object_get(data));
        print_event(e, ev);
}

static void on_event(Client *c, const char *name, json_object *data, void *userdata) {
        Events *e = userdata;

        if (client_mode(c) != CLIENT_MODE_BRIDGE)
                direct_event(e, name, data);
        else if (strcmp(name, "bridge.event") == 0 && data)
                print_event(e, data);
}

static int run_events(Cli *cli, Client *c, const char *guest, bool follow, Events *e) {
        g_autoptr(json_object) result = NULL;
        g_autoptr(GError) error = NULL;
        json_object *params = json_object_new_object();
        const bool never = false;
        int r;

        client_set_event_handler(c, on_event, e);
        if (client_mode(c) == CLIENT_MODE_BRIDGE) {
                json_object *recent;

                if (guest)
                        json_object_object_add(params, "guest", json_object_new_string(guest));
                json_object_object_add(params, "recent", json_object_new_int(RECENT_EVENTS));
                if (client_bridge_call(c, "bridge.subscribe", params, cli->timeout_ms, &result, &error) < 0)
                        return cli_fail_error(guest, error);
                recent = output_get_array(result, "recent");
                for (size_t i = 0; recent && i < json_object_array_length(recent); i++)
                        print_event(e, json_object_array_get_idx(recent, i));
        } else {
                json_object_put(params);
                if (!follow) {
                        fprintf(stderr, "guestlink: an agent keeps no event history; use --follow\n");
                        return EXIT_OK;
                }
                params = json_object_new_object();
                json_object_object_add(params, "interval_seconds", json_object_new_int(DIRECT_HEARTBEAT_SECONDS));
                if (client_peer_has_capability(c, "heartbeat") &&
                    client_call(c, NULL, "heartbeat.subscribe", params, cli->timeout_ms, &result, &error) < 0)
                        return cli_fail_error(e->label, error);
                if (!client_peer_has_capability(c, "heartbeat"))
                        json_object_put(params);
        }
        if (!follow)
                return EXIT_OK;
        r = client_wait(c, &never, UINT64_MAX, &error);
        if (r < 0 && !g_error_matches(error, CLIENT_ERROR, CLIENT_ERROR_INTERRUPTED))
                return cli_fail_error(guest ? guest : e->label, error);
        return EXIT_OK;
}

int verb_events(Cli *cli, int argc, char **argv) {
        static const VerbOption options[] = {
                { "follow", 0, 'f' },
                {},
        };
        g_autoptr(Client) c = NULL;
        Events e = { .cli = cli };
        const char *guest = NULL;
        bool follow = false;
        int r;

        r = cli_parse_verb_options(cli, argc, argv, options, parse_option, &follow, "events [GUEST] [-f|--follow]");
        if (r < 0)
                return cli_parse_exit(r);
        if (r < argc)
                guest = argv[r++];
        if (r < argc)
                return cli_usage_error(cli, "unexpected argument '%s'", argv[r]);
        if (client_guest_is_default(guest) && cli->client.mode == CLIENT_MODE_BRIDGE)
                guest = NULL;
        e.label = cli_guest_label(cli, guest);
        r = cli_open(cli, &c);
        if (r != EXIT_OK)
                return r;
        r = run_events(cli, c, guest, follow, &e);
        client_set_event_handler(c, NULL, NULL);
        g_free(e.last_heartbeat_state);
        return r;
}
