/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink power: `power.request`, optionally waiting for the result
 * (--wait, bounded by --timeout):
 *   poweroff, halt: the guest stopped (bridge: running=false or gone;
 *     direct: QEMU closed the chardev socket);
 *   reboot: the agent came back as a new instance (bridge: a "connected"
 *     event with a new instance; direct: a new HELLO);
 *   suspend, hibernate, hybrid-sleep: the agent reported that it is going
 *     to sleep (power.progress "started", heartbeat "suspending"), or the
 *     guest stopped (hibernate powers it off).
 */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "output.h"
#include "peer.h"

#define POLL_MS 500

static const char *const actions[] = { "poweroff", "reboot", "halt", "suspend", "hibernate", "hybrid-sleep", NULL };

typedef enum WaitFor {
        WAIT_STOPPED,
        WAIT_RESTARTED,
        WAIT_SUSPENDED,
} WaitFor;

typedef struct PowerOptions {
        int64_t delay;
        const char *message;
        bool wait;
} PowerOptions;

typedef struct PowerWait {
        WaitFor what;
        const char *guest;
        char *instance; /* the agent instance before the request (bridge) */
        bool done;
        char *failed; /* power.progress "failed"/"cancelled": why */
} PowerWait;

static void power_wait_clear(PowerWait *w) {
        g_clear_pointer(&w->instance, g_free);
        g_clear_pointer(&w->failed, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PowerWait, power_wait_clear)

enum { OPT_DELAY = 0x100, OPT_MESSAGE, OPT_WAIT };

static int parse_option(int option, const char *arg, void *userdata) {
        PowerOptions *o = userdata;
        char *end = NULL;

        switch (option) {
        case OPT_DELAY:
                o->delay = g_ascii_strtoll(arg, &end, 10);
                if (end && !*end && end != arg && o->delay >= 0 && o->delay <= 86400)
                        return 0;
                cli_usage_error(NULL, "invalid --delay '%s' (0..86400 seconds)", arg);
                return -1;
        case OPT_MESSAGE:
                o->message = arg;
                return 0;
        case OPT_WAIT:
                o->wait = true;
                return 0;
        }
        return -1;
}

static bool guest_matches(json_object *g, const char *guest) {
        const char *name = output_get_string(g, "name");
        const char *uuid = output_get_string(g, "uuid");

        return (name && strcmp(name, guest) == 0) || (uuid && g_ascii_strcasecmp(uuid, guest) == 0);
}

/* A power.progress or heartbeat state. */
static void power_state(PowerWait *w, json_object *data) {
        const char *state = output_get_string(data, "state");

        if (!state)
                return;
        if (strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0) {
                const char *why = output_get_string(data, "message");

                g_free(w->failed);
                w->failed = g_strdup_printf("%s%s%s", state, why ? ": " : "", why ? why : "");
                w->done = true;
        } else if (w->what == WAIT_SUSPENDED && (strcmp(state, "started") == 0 || strcmp(state, "suspending") == 0))
                w->done = true;
}

static void on_event(Client *c, const char *name, json_object *data, void *userdata) {
        PowerWait *w = userdata;
        const char *kind;

        if (client_mode(c) != CLIENT_MODE_BRIDGE) {
                if (strcmp(name, CLIENT_EVENT_PEER_RESTARTED) == 0 && w->what == WAIT_RESTARTED)
                        w->done = true;
                else if (strcmp(name, "power.progress") == 0 || strcmp(name, "heartbeat") == 0)
                        power_state(w, data);
                return;
        }
        if (strcmp(name, "bridge.event") != 0 || !guest_matches(output_get(data, "guest"), w->guest))
                return;
        kind = output_get_string(data, "kind");
        if (g_strcmp0(kind, "power-state") == 0)
                power_state(w, output_get(data, "data"));
        else if (g_strcmp0(kind, "detached") == 0 && w->what != WAIT_RESTARTED)
                w->done = true;
        else if (g_strcmp0(kind, "connected") == 0 && w->what == WAIT_RESTARTED &&
                 g_strcmp0(output_get_string(data, "data.instance"), w->instance) != 0)
                w->done = true;
}

/* Bridge mode: the guest stopped running, or is gone. */
static int poll_stopped(Client *c, PowerWait *w, uint64_t timeout_ms, GError **error) {
        g_autoptr(json_object) guests = NULL;
        int r;

        r = client_list_guests(c, &guests, error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(guests); i++) {
                json_object *g = json_object_array_get_idx(guests, i);
                bool running = true;

                if (!guest_matches(g, w->guest))
                        continue;
                if (!w->instance)
                        w->instance = g_strdup(output_get_string(g, "agent.instance"));
                (void) output_get_bool(g, "running", &running);
                return running ? 0 : 1;
        }
        (void) timeout_ms;
        return 1;
}

static int wait_done(Cli *cli, Client *c, PowerWait *w, const char *label, uint64_t start_ms) {
        uint64_t deadline = start_ms + cli->timeout_ms;
        g_autoptr(GError) error = NULL;

        while (!w->done) {
                uint64_t now = gl_peer_now_ms();
                int r;

                if (now >= deadline)
                        return cli_fail(EXIT_TIMEOUT, "%s: did not %s within %.0f s", label,
                                        w->what == WAIT_STOPPED     ? "stop"
                                        : w->what == WAIT_RESTARTED ? "restart"
                                                                    : "suspend",
                                        (double) cli->timeout_ms / 1000.0);
                r = client_wait(c, &w->done, MIN(deadline, now + POLL_MS), &error);
                if (r == -ETIMEDOUT && client_mode(c) == CLIENT_MODE_BRIDGE && w->what != WAIT_RESTARTED) {
                        r = poll_stopped(c, w, cli->timeout_ms, &error);
                        if (r > 0)
                                w->done = true;
                        else if (r < 0)
                                return cli_fail_error(label, error);
                        continue;
                }
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0 && client_mode(c) != CLIENT_MODE_BRIDGE && w->what != WAIT_RESTARTED &&
                    g_error_matches(error, CLIENT_ERROR, CLIENT_ERROR_CLOSED)) {
                        /* QEMU closed the chardev: the guest is gone */
                        w->done = true;
                        break;
                }
                if (r < 0)
                        return cli_fail_error(label, error);
        }
        if (w->failed) {
                g_autofree char *why = output_text(w->failed);
                return cli_fail(EXIT_OTHER, "%s: the power action %s", label, why);
        }
        if (!cli->json)
                printf("%s: %s after %.1f s\n", label,
                       w->what == WAIT_STOPPED     ? "stopped"
                       : w->what == WAIT_RESTARTED ? "restarted"
                                                   : "suspended",
                       (double) (gl_peer_now_ms() - start_ms) / 1000.0);
        return EXIT_OK;
}

static void print_result(json_object *result, const char *label, const char *action) {
        g_autoptr(GString) t = g_string_new(NULL);
        g_autofree char *a = output_text(output_get_string(result, "action") ? output_get_string(result, "action")
                                                                             : action);
        int64_t op, when;

        g_string_printf(t, "%s: %s accepted", label, a);
        if (output_get_int(result, "operation", &op))
                g_string_append_printf(t, " (operation %" G_GINT64_FORMAT ")", op);
        if (output_get_int(result, "execute_unix_us", &when)) {
                g_autofree char *w = output_time(when);
                g_string_append_printf(t, ", at %s", w);
        }
        if (output_get_string(result, "backend")) {
                g_autofree char *b = output_text(output_get_string(result, "backend"));
                g_string_append_printf(t, " via %s", b);
        }
        printf("%s\n", t->str);
        fflush(stdout);
}

/* A resent request answered "busy": accepted before the bridge restarted. */
static void print_resent_busy(const Cli *cli, const char *label, const char *action, const GError *error) {
        g_autofree char *agent = output_text(error->message);

        if (cli->json) {
                g_autoptr(json_object) o = json_object_new_object();

                json_object_object_add(o, "action", json_object_new_string(action));
                json_object_object_add(o, "accepted_before_resend", json_object_new_boolean(true));
                json_object_object_add(o, "agent_answer", json_object_new_string("busy"));
                json_object_object_add(o, "agent_message", json_object_new_string(error->message));
                output_json(o, true);
                return;
        }
        printf("%s: %s accepted (the bridge restarted before its answer arrived; sent again, the agent "
               "answered busy: an operation is already under way%s%s)\n",
               label, action, *agent ? ": " : "", agent);
        fflush(stdout);
}

int verb_power(Cli *cli, int argc, char **argv) {
        static const VerbOption options[] = {
                { "delay", 1, OPT_DELAY },
                { "message", 1, OPT_MESSAGE },
                { "wait", 0, OPT_WAIT },
                {},
        };
        PowerOptions o = { 0 };
        g_auto(PowerWait) w = { 0 };
        g_autoptr(Client) c = NULL;
        g_autoptr(json_object) result = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *label = NULL;
        json_object *params;
        const char *guest, *action;
        uint64_t start_ms;
        unsigned sends = 0;
        bool ok;
        int r;

        r = cli_parse_verb_options(cli, argc, argv, options, parse_option, &o,
                                   "power GUEST ACTION [--delay S] [--message TEXT] [--wait]");
        if (r < 0)
                return cli_parse_exit(r);
        guest = cli_take_guest(cli, argc, argv, &r, 2, &ok);
        if (!ok)
                return EXIT_USAGE;
        if (r >= argc)
                return cli_usage_error(cli,
                                       "missing ACTION (poweroff, reboot, halt, suspend, hibernate, hybrid-sleep)");
        action = argv[r++];
        if (!g_strv_contains(actions, action))
                return cli_usage_error(
                        cli, "unknown ACTION '%s' (poweroff, reboot, halt, suspend, hibernate, hybrid-sleep)", action);
        if (r < argc)
                return cli_usage_error(cli, "unexpected argument '%s'", argv[r]);
        label = output_text(cli_guest_label(cli, guest));
        w.guest = guest;
        w.what = strcmp(action, "reboot") == 0                                    ? WAIT_RESTARTED
                 : strcmp(action, "poweroff") == 0 || strcmp(action, "halt") == 0 ? WAIT_STOPPED
                                                                                  : WAIT_SUSPENDED;
        r = cli_open(cli, &c);
        if (r != EXIT_OK)
                return r;
        start_ms = gl_peer_now_ms();
        if (o.wait) {
                client_set_event_handler(c, on_event, &w);
                if (client_mode(c) == CLIENT_MODE_BRIDGE) {
                        params = json_object_new_object();
                        json_object_object_add(params, "guest", json_object_new_string(guest));
                        if (client_bridge_call(c, "bridge.subscribe", params, cli->timeout_ms, &result, &error) < 0 ||
                            poll_stopped(c, &w, cli->timeout_ms, &error) < 0)
                                return cli_fail_error(label, error);
                        g_clear_pointer(&result, json_object_put);
                }
        }

        params = json_object_new_object();
        json_object_object_add(params, "action", json_object_new_string(action));
        if (o.delay > 0)
                json_object_object_add(params, "delay_seconds", json_object_new_int64(o.delay));
        if (o.message)
                json_object_object_add(params, "message", json_object_new_string(o.message));
        r = client_call_full(c, guest, "power.request", params, cli->timeout_ms, &result, &sends, &error);
        if (r < 0 && sends > 1 && g_error_matches(error, CLIENT_REMOTE_ERROR, GL_ERROR_BUSY)) {
                /* The bridge restarted while the request was outstanding and
                 * we sent it again: "busy" says an operation is already under
                 * way, which is this request's first copy unless someone else
                 * started one in the same moment.  Its answer (the operation
                 * id) was lost with the old bridge. */
                print_resent_busy(cli, label, action, error);
        } else if (r < 0)
                return cli_fail_error(label, error);
        else if (cli->json)
                output_json(result, true);
        else
                print_result(result, label, action);
        if (o.wait)
                r = wait_done(cli, c, &w, label, start_ms);
        client_set_event_handler(c, NULL, NULL);
        return o.wait ? r : EXIT_OK;
}
