/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink shutdown-all: ask every running guest of the bridge to power
 * off (or suspend) through its agent, at most --parallel requests in
 * flight, and wait up to --timeout.  A guest counts as stopped when
 * `bridge.list` (polled every 500 ms) shows it running=false or no longer
 * lists it; with --action suspend, also when its last heartbeat state is
 * "suspending" (the agent says so just before the guest sleeps).
 *
 * Guests that did not stop (refused, no agent, timed out) get --fallback:
 * acpi (libvirt's ACPI power button, then waiting for the rest of the
 * timeout, at least ACPI_GRACE_MS), destroy, or none.  Refused and
 * agent-less guests get it at once, timed-out ones at the deadline.  Static
 * guests have no libvirt domain and so no fallback.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "libvirt.h"
#include "output.h"
#include "peer.h"

#define POLL_MS 500
#define DEFAULT_PARALLEL 8
#define ACPI_GRACE_MS 10000

typedef enum Phase {
        PHASE_PENDING,   /* request not sent yet */
        PHASE_REQUESTED, /* request in flight */
        PHASE_ACCEPTED,  /* the agent accepted: waiting for the stop */
        PHASE_ACPI,      /* ACPI fallback: waiting for the stop */
        PHASE_DONE,      /* stopped, or given up */
} Phase;

typedef struct Target {
        struct ShutdownAll *all;
        char *name, *uuid, *uri;
        bool is_static;
        Phase phase;
        bool stopped;
        GString *outcome;
        uint64_t stopped_ms;
} Target;

typedef struct ShutdownAll {
        Cli *cli;
        Client *client;
        const char *action;
        const char *fallback;
        unsigned parallel;
        unsigned in_flight;
        uint64_t start_ms, deadline_ms;
        GPtrArray *targets; /* Target */
} ShutdownAll;

typedef struct ShutdownOptions {
        const char *action, *fallback;
        int64_t parallel;
} ShutdownOptions;

enum { OPT_ACTION = 0x100, OPT_PARALLEL, OPT_FALLBACK };

static void target_free(gpointer p) {
        Target *t = p;

        g_free(t->name);
        g_free(t->uuid);
        g_free(t->uri);
        g_string_free(t->outcome, TRUE);
        g_free(t);
}

static int parse_option(int option, const char *arg, void *userdata) {
        ShutdownOptions *o = userdata;
        char *end = NULL;

        switch (option) {
        case OPT_ACTION:
                o->action = arg;
                if (strcmp(arg, "poweroff") == 0 || strcmp(arg, "suspend") == 0)
                        return 0;
                cli_usage_error(NULL, "invalid --action '%s' (poweroff or suspend)", arg);
                return -1;
        case OPT_FALLBACK:
                o->fallback = arg;
                if (strcmp(arg, "acpi") == 0 || strcmp(arg, "destroy") == 0 || strcmp(arg, "none") == 0)
                        return 0;
                cli_usage_error(NULL, "invalid --fallback '%s' (acpi, destroy or none)", arg);
                return -1;
        case OPT_PARALLEL:
                o->parallel = g_ascii_strtoll(arg, &end, 10);
                if (end && !*end && o->parallel >= 1 && o->parallel <= 256)
                        return 0;
                cli_usage_error(NULL, "invalid --parallel '%s' (1..256)", arg);
                return -1;
        }
        return -1;
}

static double seconds_since(const ShutdownAll *s) {
        return (double) (gl_peer_now_ms() - s->start_ms) / 1000.0;
}

static void apply_fallback(ShutdownAll *s, Target *t) {
        g_autoptr(GError) error = NULL;

        if (t->is_static || !t->uuid) {
                g_string_append(t->outcome, "; static guest: no fallback");
                t->phase = PHASE_DONE;
                return;
        }
        if (strcmp(s->fallback, "none") == 0) {
                t->phase = PHASE_DONE;
                return;
        }
        if (gl_libvirt_stop_domain(t->uri, t->uuid, s->fallback, &error) < 0) {
                g_autofree char *why = output_text(error ? error->message : "failed");
                g_string_append_printf(t->outcome, " → %s failed: %s", s->fallback, why);
                t->phase = PHASE_DONE;
                return;
        }
        if (strcmp(s->fallback, "destroy") == 0) {
                g_string_append(t->outcome, " → destroyed");
                t->stopped = true;
                t->phase = PHASE_DONE;
                return;
        }
        g_string_append(t->outcome, " → acpi");
        t->phase = PHASE_ACPI;
        s->deadline_ms = MAX(s->deadline_ms, gl_peer_now_ms() + ACPI_GRACE_MS);
}

static void start_next(ShutdownAll *s);

static void request_done(Client *c, json_object *result, const GError *error, void *userdata) {
        Target *t = userdata;
        ShutdownAll *s = t->all;

        (void) c;
        s->in_flight--;
        if (result)
                t->phase = PHASE_ACCEPTED;
        else {
                g_autofree char *what = client_error_describe(error);

                if (error->domain == CLIENT_REMOTE_ERROR && error->code == GL_ERROR_NO_AGENT)
                        g_string_append(t->outcome, "no agent");
                else if (error->domain == CLIENT_REMOTE_ERROR && error->code == GL_ERROR_TIMEOUT)
                        g_string_append(t->outcome, "timeout");
                else
                        g_string_append_printf(t->outcome, "refused: %s", what);
                apply_fallback(s, t);
        }
        start_next(s);
}

static void start_next(ShutdownAll *s) {
        for (guint i = 0; i < s->targets->len && s->in_flight < s->parallel; i++) {
                Target *t = s->targets->pdata[i];
                json_object *params;

                if (t->phase != PHASE_PENDING)
                        continue;
                params = json_object_new_object();
                json_object_object_add(params, "action", json_object_new_string(s->action));
                t->phase = PHASE_REQUESTED;
                s->in_flight++;
                if (client_call_async(s->client, t->name, "power.request", params,
                                      MIN(s->cli->timeout_ms, (uint64_t) 600000), request_done, t) < 0) {
                        s->in_flight--;
                        g_string_append(t->outcome, "cannot send the request");
                        apply_fallback(s, t);
                }
        }
}

/* Marks targets that stopped; returns how many are still waited for. */
static int poll(ShutdownAll *s, GError **error) {
        g_autoptr(json_object) guests = NULL;
        unsigned waiting = 0;
        int r;

        r = client_list_guests(s->client, &guests, error);
        if (r < 0)
                return r;
        for (guint i = 0; i < s->targets->len; i++) {
                Target *t = s->targets->pdata[i];
                bool running = false;
                const char *hb = NULL;

                if (t->phase == PHASE_DONE)
                        continue;
                for (size_t j = 0; j < json_object_array_length(guests); j++) {
                        json_object *g = json_object_array_get_idx(guests, j);

                        if (g_strcmp0(output_get_string(g, "name"), t->name) != 0)
                                continue;
                        running = true;
                        (void) output_get_bool(g, "running", &running);
                        hb = output_get_string(g, "heartbeat.state");
                }
                if (running && t->phase == PHASE_ACPI && t->uuid &&
                    gl_libvirt_domain_active(t->uri, t->uuid, NULL) == 0)
                        running = false;
                if ((t->phase == PHASE_ACCEPTED || t->phase == PHASE_ACPI) &&
                    (!running || (strcmp(s->action, "suspend") == 0 && g_strcmp0(hb, "suspending") == 0))) {
                        if (t->phase == PHASE_ACCEPTED)
                                g_string_append_printf(t->outcome, "%s by agent in %.1fs",
                                                       strcmp(s->action, "suspend") == 0 ? "suspended" : "stopped",
                                                       seconds_since(s));
                        else
                                g_string_append_printf(t->outcome, " → stopped in %.1fs", seconds_since(s));
                        t->stopped = true;
                        t->phase = PHASE_DONE;
                        continue;
                }
                waiting++;
        }
        return (int) waiting;
}

static void give_up(ShutdownAll *s) {
        for (guint i = 0; i < s->targets->len; i++) {
                Target *t = s->targets->pdata[i];

                if (t->phase == PHASE_ACCEPTED || t->phase == PHASE_REQUESTED || t->phase == PHASE_PENDING) {
                        g_string_append(t->outcome, "timeout");
                        apply_fallback(s, t);
                } else if (t->phase == PHASE_ACPI) {
                        g_string_append(t->outcome, " → still running");
                        t->phase = PHASE_DONE;
                }
        }
}

static int collect_targets(ShutdownAll *s, GError **error) {
        g_autoptr(json_object) guests = NULL;
        int r;

        r = client_list_guests(s->client, &guests, error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(guests); i++) {
                json_object *g = json_object_array_get_idx(guests, i);
                bool running = true;
                Target *t;

                (void) output_get_bool(g, "running", &running);
                if (!running || !output_get_string(g, "name"))
                        continue;
                t = g_new0(Target, 1);
                t->all = s;
                t->name = g_strdup(output_get_string(g, "name"));
                t->uuid = g_strdup(output_get_string(g, "uuid"));
                t->uri = g_strdup(output_get_string(g, "uri"));
                t->is_static = g_strcmp0(output_get_string(g, "source"), "static") == 0;
                t->outcome = g_string_new(NULL);
                g_ptr_array_add(s->targets, t);
                if (g_strcmp0(output_get_string(g, "state"), "connected") != 0) {
                        g_autofree char *st = output_text(output_get_string(g, "state"));
                        g_string_append_printf(t->outcome, "no agent (%s)", st);
                        apply_fallback(s, t);
                }
        }
        return 0;
}

static int report(ShutdownAll *s) {
        g_autoptr(json_object) list = json_object_new_array();
        bool all = true;

        for (guint i = 0; i < s->targets->len; i++) {
                Target *t = s->targets->pdata[i];
                g_autofree char *name = output_text(t->name);

                all = all && t->stopped;
                if (s->cli->json) {
                        json_object *o = json_object_new_object();

                        json_object_object_add(o, "name", json_object_new_string(t->name));
                        json_object_object_add(o, "stopped", json_object_new_boolean(t->stopped));
                        json_object_object_add(o, "outcome", json_object_new_string(t->outcome->str));
                        json_object_array_add(list, o);
                } else
                        printf("%s: %s\n", name, t->outcome->str);
        }
        if (s->cli->json) {
                g_autoptr(json_object) o = json_object_new_object();

                json_object_object_add(o, "guests", json_object_get(list));
                json_object_object_add(o, "all_stopped", json_object_new_boolean(all));
                output_json(o, true);
        } else if (s->targets->len == 0)
                printf("No running guests.\n");
        return all ? EXIT_OK : EXIT_NOT_ALL_STOPPED;
}

int verb_shutdown_all(Cli *cli, int argc, char **argv) {
        static const VerbOption options[] = {
                { "action", 1, OPT_ACTION },
                { "parallel", 1, OPT_PARALLEL },
                { "fallback", 1, OPT_FALLBACK },
                {},
        };
        ShutdownOptions o = { .action = "poweroff", .fallback = "none", .parallel = DEFAULT_PARALLEL };
        g_autoptr(Client) c = NULL;
        g_autoptr(GPtrArray) targets = g_ptr_array_new_with_free_func(target_free);
        g_autoptr(GError) error = NULL;
        ShutdownAll s = { .cli = cli, .targets = targets };
        int r;

        r = cli_parse_verb_options(cli, argc, argv, options, parse_option, &o,
                                   "shutdown-all [--action poweroff|suspend] [--parallel N] [--timeout S] "
                                   "[--fallback acpi|destroy|none]");
        if (r < 0)
                return cli_parse_exit(r);
        if (r < argc)
                return cli_usage_error(cli, "unexpected argument '%s'", argv[r]);
        if (cli->client.mode != CLIENT_MODE_BRIDGE)
                return cli_usage_error(cli, "shutdown-all needs the bridge (not with --direct or --connect)");
        s.action = o.action;
        s.fallback = o.fallback;
        s.parallel = (unsigned) o.parallel;
        r = cli_open(cli, &c);
        if (r != EXIT_OK)
                return r;
        s.client = c;
        s.start_ms = gl_peer_now_ms();
        s.deadline_ms = s.start_ms + cli->timeout_ms;
        if (collect_targets(&s, &error) < 0)
                return cli_fail_error(NULL, error);
        start_next(&s);
        for (;;) {
                const bool never = false;
                uint64_t now = gl_peer_now_ms();

                r = poll(&s, &error);
                if (r < 0)
                        return cli_fail_error(NULL, error);
                if (r == 0)
                        break;
                if (now >= s.deadline_ms) {
                        give_up(&s);
                        /* timed-out guests may just have been sent to ACPI */
                        if (gl_peer_now_ms() >= s.deadline_ms)
                                break;
                        continue;
                }
                r = client_wait(c, &never, MIN(s.deadline_ms, now + POLL_MS), &error);
                if (r < 0 && r != -ETIMEDOUT)
                        return cli_fail_error(NULL, error);
        }
        give_up(&s);
        return report(&s);
}
