/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Integration: the real guestlink-bridge serving real guestlink-agents
 * (over ptys relayed to chardev-like unix sockets) and hostile guests, and
 * a control client speaking the protocol.  PROTOCOL.md 11.11.
 */
#include <signal.h>
#include <string.h>

#include "bridge-harness.h"
#include "frame.h"

#define N_AGENTS 6

static const char *str_member(json_object *o, const char *path) {
        g_auto(GStrv) parts = g_strsplit(path, ".", -1);
        json_object *v = o;

        for (char **p = parts; *p; p++)
                if (!v || !json_object_object_get_ex(v, *p, &v))
                        return NULL;
        return v ? json_object_get_string(v) : NULL;
}

static int64_t int_member(json_object *o, const char *path) {
        g_auto(GStrv) parts = g_strsplit(path, ".", -1);
        json_object *v = o;

        for (char **p = parts; *p; p++)
                if (!v || !json_object_object_get_ex(v, *p, &v))
                        return -1;
        return json_object_get_int64(v);
}

static void assert_error(GlMessage *m, GlErrorCode code) {
        g_assert_nonnull(m);
        if (m->type != GL_MSG_ERROR)
                g_error("expected error %s, got %s", gl_error_code_to_string(code),
                        json_object_to_json_string(m->root));
        g_assert_cmpstr(gl_error_code_to_string(m->code), ==, gl_error_code_to_string(code));
        gl_message_free(m);
}

static GlMessage *assert_response(GlMessage *m) {
        g_assert_nonnull(m);
        if (m->type != GL_MSG_RESPONSE)
                g_error("expected a response, got %s", json_object_to_json_string(m->root));
        return m;
}

/* Many real agents at once: list, info, ping, cached stats and history. */
static void test_many_guests(void) {
        Harness *h = harness_new(NULL);
        char name[32];

        for (int i = 0; i < N_AGENTS; i++) {
                g_snprintf(name, sizeof(name), "vm%d", i);
                harness_add_guest(h, name, HARNESS_AGENT, NULL);
        }
        harness_add_guest(h, "absent", HARNESS_NONE, NULL);
        harness_start_bridge(h);
        harness_connect_client(h);
        for (int i = 0; i < N_AGENTS; i++) {
                g_snprintf(name, sizeof(name), "vm%d", i);
                g_assert_true(harness_wait_state(h, name, "connected", 20000));
        }
        for (int i = 0; i < N_AGENTS; i++) {
                GlMessage *m;
                g_autoptr(json_object) entry = NULL;

                g_snprintf(name, sizeof(name), "vm%d", i);
                m = assert_response(harness_guest_call(h, name, "info", NULL, 10000));
                g_assert_cmpstr(str_member(m->body, "agent.software"), ==, "guestlink-agent " GL_VERSION_FOR_TESTS);
                g_assert_cmpstr(str_member(m->body, "os.family"), ==, "linux");
                g_assert_cmpstr(str_member(m->body, "hostname"), ==, g_get_host_name());
                gl_message_free(m);
                m = assert_response(harness_guest_call(h, name, "ping", NULL, 10000));
                gl_message_free(m);
                entry = harness_list_guest(h, name);
                g_assert_cmpstr(str_member(entry, "source"), ==, "static");
                g_assert_cmpstr(str_member(entry, "transport"), ==, "socket");
                g_assert_cmpstr(str_member(entry, "agent.software"), ==, "guestlink-agent " GL_VERSION_FOR_TESTS);
                g_assert_true(json_object_get_boolean(json_object_object_get(entry, "running")));
        }
        /* the bridge's own subscriptions fill the caches: 1 s stats, 1 s heartbeat */
        harness_run(h, 3500);
        for (int i = 0; i < N_AGENTS; i++) {
                g_autofree char *p = NULL;
                GlMessage *m;
                json_object *samples;

                g_snprintf(name, sizeof(name), "vm%d", i);
                p = g_strdup_printf("{\"guest\":\"%s\"}", name);
                m = assert_response(harness_call(h, "bridge.guest", p, 10000));
                g_assert_cmpint(int_member(m->body, "stats.memory.total_bytes"), >, 0);
                g_assert_cmpint(int_member(m->body, "heartbeat.seq"), >=, 2);
                g_assert_cmpstr(str_member(m->body, "heartbeat.state"), ==, "running");
                g_assert_cmpstr(str_member(m->body, "info.os.family"), ==, "linux");
                gl_message_free(m);
                m = assert_response(harness_call(h, "bridge.stats", p, 10000));
                g_assert_true(json_object_object_get_ex(m->body, "samples", &samples));
                g_assert_cmpint(json_object_array_length(samples), >=, 2);
                g_assert_cmpint(int_member(m->body, "interval_seconds"), ==, 1);
                gl_message_free(m);
        }
        {
                g_autoptr(json_object) a = harness_list_guest(h, "absent");
                g_assert_cmpstr(str_member(a, "state"), ==, "connecting");
        }
        harness_free(h);
}

/* Every refusal the bridge makes itself, each with its own code. */
static void test_refusals(void) {
        Harness *h = harness_new(NULL);

        harness_add_guest(h, "good", HARNESS_AGENT, "[policy]\npower=deny\n");
        harness_add_guest(h, "absent", HARNESS_NONE, NULL);
        harness_start_bridge(h);
        harness_connect_client(h);
        g_assert_true(harness_wait_state(h, "good", "connected", 20000));

        assert_error(harness_guest_call(h, "nosuch", "info", NULL, 5000), GL_ERROR_NOT_FOUND);
        assert_error(harness_guest_call(h, "absent", "info", NULL, 5000), GL_ERROR_NO_AGENT);
        assert_error(harness_guest_call(h, "good", "stats.subscribe", "{\"interval_seconds\":1}", 5000),
                     GL_ERROR_FORBIDDEN);
        assert_error(harness_guest_call(h, "good", "bridge.list", NULL, 5000), GL_ERROR_UNSUPPORTED);
        assert_error(harness_call(h, "bridge.nosuch", NULL, 5000), GL_ERROR_UNSUPPORTED);
        assert_error(harness_call(h, "bridge.call", "{\"guest\":\"good\"}", 5000), GL_ERROR_INVALID);
        assert_error(harness_call(h, "bridge.call", "{\"guest\":\"good\",\"method\":\"info\",\"timeout_ms\":0}", 5000),
                     GL_ERROR_INVALID);
        /* the agent's own refusal comes through unchanged */
        assert_error(harness_guest_call(h, "good", "power.request", "{\"action\":\"poweroff\"}", 5000),
                     GL_ERROR_FORBIDDEN);
        /* and the audit trail names the caller */
        {
                g_autofree char *log = harness_bridge_log(h);
                g_autofree char *needle = g_strdup_printf("uid=%u pid=%d: power.request", (unsigned) getuid(),
                                                          (int) getpid());
                g_assert_nonnull(strstr(log, needle));
        }
        harness_free(h);
}

static bool has_event(Harness *h, void *data) {
        const char *const *want = data;
        GlMessage *m = harness_take_event(h, want[0], want[1]);

        if (!m)
                return false;
        gl_message_free(m);
        return true;
}

/* Events: connected, disconnected, heartbeat-missed and back; the recent ring. */
static void test_events(void) {
        Harness *h = harness_new(NULL);
        HarnessGuest *g;
        GlMessage *m;
        json_object *recent;
        const char *disconnected[] = { "e1", "disconnected" }, *connected[] = { "e1", "connected" },
                   *missed[] = { "e1", "heartbeat-missed" };

        g = harness_add_guest(h, "e1", HARNESS_AGENT, NULL);
        harness_start_bridge(h);
        harness_connect_client(h);
        g_assert_true(harness_wait_state(h, "e1", "connected", 20000));
        m = assert_response(harness_call(h, "bridge.subscribe", "{\"guest\":\"e1\",\"recent\":10}", 5000));
        g_assert_true(json_object_object_get_ex(m->body, "recent", &recent));
        g_assert_cmpint(json_object_array_length(recent), >=, 2); /* attached, connected */
        g_assert_cmpstr(str_member(json_object_array_get_idx(recent, 0), "kind"), ==, "attached");
        gl_message_free(m);

        /* QEMU drops the connection: disconnected, then the bridge reconnects */
        harness_guest_drop_connection(g);
        harness_wait(h, 10000, has_event, disconnected, "disconnected event");
        harness_wait(h, 10000, has_event, connected, "connected event");

        /* a frozen agent stops its heartbeats */
        g_subprocess_send_signal(g->agent, SIGSTOP);
        harness_wait(h, 10000, has_event, missed, "heartbeat-missed event");
        g_assert_true(harness_wait_state(h, "e1", "heartbeat-missed", 1000));
        g_subprocess_send_signal(g->agent, SIGCONT);
        g_assert_true(harness_wait_state(h, "e1", "connected", 10000));
        harness_free(h);
}

/* A request in flight when QEMU drops the chardev connection is resent on
 * the next one, and answered exactly once. */
static void test_reconnect_mid_request(void) {
        Harness *h = harness_new(NULL);
        HarnessGuest *g = harness_add_guest(h, "r1", HARNESS_AGENT, NULL);
        uint64_t id;
        GlMessage *m = NULL;
        json_object *params = json_tokener_parse("{\"guest\":\"r1\",\"method\":\"info\",\"timeout_ms\":30000}");
        gint64 deadline;

        harness_start_bridge(h);
        harness_connect_client(h);
        g_assert_true(harness_wait_state(h, "r1", "connected", 20000));
        g->relay_paused = true; /* what the bridge sends now is lost, like QEMU's queue on a disconnect */
        g_assert_cmpint(gl_peer_request(h->client, "bridge.call", params, 60000, &id), ==, 0);
        harness_run(h, 300);
        harness_guest_drop_connection(g);
        g->relay_paused = false;
        deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
        while (g_get_monotonic_time() < deadline) {
                harness_run(h, 50);
                for (guint i = 0; i < h->client_messages->len && !m; i++) {
                        GlMessage *x = h->client_messages->pdata[i];
                        if ((x->type == GL_MSG_RESPONSE || x->type == GL_MSG_ERROR) && x->id == id)
                                m = g_ptr_array_steal_index(h->client_messages, i);
                }
                if (m)
                        break;
        }
        m = assert_response(m);
        g_assert_cmpstr(str_member(m->body, "os.family"), ==, "linux");
        gl_message_free(m);
        g_assert_cmpuint(g->connects, >=, 2);
        /* exactly one answer: nothing else with that id arrives */
        harness_run(h, 1000);
        for (guint i = 0; i < h->client_messages->len; i++)
                g_assert_true(((GlMessage *) h->client_messages->pdata[i])->id != id);
        harness_free(h);
}

/* SIGHUP: a new static guest is attached, a removed one detached, the
 * others keep their sessions. */
static void test_reload(void) {
        Harness *h = harness_new(NULL);
        HarnessGuest *a = harness_add_guest(h, "a", HARNESS_AGENT, NULL);
        HarnessGuest *b = harness_add_guest(h, "b", HARNESS_AGENT, NULL);
        HarnessGuest *keep = harness_add_guest(h, "keep", HARNESS_AGENT, NULL);
        g_autoptr(json_object) gone = NULL;

        b->not_in_config = true;
        harness_start_bridge(h);
        harness_connect_client(h);
        g_assert_true(harness_wait_state(h, "a", "connected", 20000));
        g_assert_true(harness_wait_state(h, "keep", "connected", 20000));
        g_assert_null(harness_list_guest(h, "b"));

        a->not_in_config = true;
        b->not_in_config = false;
        harness_reload_bridge(h);
        g_assert_true(harness_wait_state(h, "b", "connected", 20000));
        gone = harness_list_guest(h, "a");
        g_assert_null(gone);
        /* "keep" was not reconnected */
        g_assert_cmpuint(keep->connects, ==, 1);
        gl_message_free(assert_response(harness_guest_call(h, "keep", "ping", NULL, 5000)));
        harness_free(h);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bridge/many-guests", test_many_guests);
        g_test_add_func("/bridge/refusals", test_refusals);
        g_test_add_func("/bridge/events", test_events);
        g_test_add_func("/bridge/reconnect-mid-request", test_reconnect_mid_request);
        g_test_add_func("/bridge/reload", test_reload);
        return g_test_run();
}
