/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GlLibvirt (host-bridge/libvirt.c) against a real libvirtd with TCG
 * domains running the real guestlink-agent (suite 'libvirt', README.md):
 *
 *   discovery   domain_started with uuid/name/channel path, a local socket
 *               link, handshake + info + 200 pings, destroy -> domain_stopped
 *   stream      over qemu+tcp://127.0.0.1/system: a "libvirt-stream" link,
 *               handshake + info + 200 pings; a second (FORCE) opener takes
 *               the channel over and the first link ends
 *   nochannel   a running domain without the channel is never reported
 *   restart     libvirtd is killed and started again: GlLibvirt reconnects,
 *               reports the domain again, and a new stream link works
 *
 * One case per process: argv[1] names it.
 */
#include "config.h"

#include <errno.h>
#include <libvirt/virterror.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gllv.h"
#include "libvirt.h"
#include "peer.h"

#define BOOT_TIMEOUT_MS 60000
#define CALL_TIMEOUT_MS 30000
#define PINGS 200

/* --- what GlLibvirt reported ---------------------------------------------- */

typedef struct Seen {
        char *uuid, *name, *uri, *channel_path, *channel_alias;
        bool local;
} Seen;

static void seen_free(gpointer data) {
        Seen *s = data;

        g_free(s->uuid);
        g_free(s->name);
        g_free(s->uri);
        g_free(s->channel_path);
        g_free(s->channel_alias);
        g_free(s);
}

typedef struct Fx {
        GPtrArray *started; /* Seen* in order */
        GPtrArray *stopped; /* char* uuids in order */
        unsigned connects, disconnects;
} Fx;

static void on_started(GlLibvirt *lv, const GlLibvirtDomain *d, void *userdata) {
        Fx *fx = userdata;
        Seen *s = g_new0(Seen, 1);

        (void) lv;
        s->uuid = g_strdup(d->uuid);
        s->name = g_strdup(d->name);
        s->uri = g_strdup(d->uri);
        s->channel_path = g_strdup(d->channel_path);
        s->channel_alias = g_strdup(d->channel_alias);
        s->local = d->local;
        g_ptr_array_add(fx->started, s);
}

static void on_stopped(GlLibvirt *lv, const char *uuid, void *userdata) {
        Fx *fx = userdata;

        (void) lv;
        g_ptr_array_add(fx->stopped, g_strdup(uuid));
}

static void on_connection(GlLibvirt *lv, bool up, void *userdata) {
        Fx *fx = userdata;

        (void) lv;
        if (up)
                fx->connects++;
        else
                fx->disconnects++;
}

static const GlLibvirtCallbacks fx_callbacks = {
        .domain_started = on_started,
        .domain_stopped = on_stopped,
        .connection = on_connection,
};

static void fx_init(Fx *fx) {
        *fx = (Fx){ 0 };
        fx->started = g_ptr_array_new_with_free_func(seen_free);
        fx->stopped = g_ptr_array_new_with_free_func(g_free);
}

static void fx_clear(Fx *fx) {
        g_ptr_array_unref(fx->started);
        g_ptr_array_unref(fx->stopped);
}

static unsigned count_started(Fx *fx, const char *uuid) {
        unsigned n = 0;

        for (guint i = 0; i < fx->started->len; i++)
                n += g_str_equal(((Seen *) fx->started->pdata[i])->uuid, uuid);
        return n;
}

static bool was_stopped(Fx *fx, const char *uuid) {
        for (guint i = 0; i < fx->stopped->len; i++)
                if (g_str_equal(fx->stopped->pdata[i], uuid))
                        return true;
        return false;
}

static Seen *last_started(Fx *fx, const char *uuid) {
        for (guint i = fx->started->len; i > 0; i--)
                if (g_str_equal(((Seen *) fx->started->pdata[i - 1])->uuid, uuid))
                        return fx->started->pdata[i - 1];
        return NULL;
}

/* Runs the thread-default context until cond (evaluated once per turn, so
 * it may have side effects) or the deadline; the last value of cond. */
#define WAIT_FOR(cond, timeout_ms)                                                       \
        ({                                                                               \
                gint64 _deadline = g_get_monotonic_time() + (gint64) (timeout_ms) *1000; \
                bool _ok;                                                                \
                while (!(_ok = (cond)) && g_get_monotonic_time() < _deadline)            \
                        iterate(_deadline);                                              \
                _ok;                                                                     \
        })

static gboolean wake(gpointer data) {
        (void) data;
        return G_SOURCE_REMOVE;
}

static void iterate(gint64 deadline) {
        gint64 left = deadline - g_get_monotonic_time();
        GSource *t = g_timeout_source_new((guint) CLAMP(left / 1000, 0, 100));

        g_source_set_callback(t, wake, NULL, NULL);
        g_source_attach(t, NULL);
        g_main_context_iteration(NULL, TRUE);
        g_source_destroy(t);
        g_source_unref(t);
}

static void sleep_loop(int ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) ms * 1000;

        while (g_get_monotonic_time() < deadline)
                iterate(deadline);
}

static double seconds_since(gint64 t0) {
        return (double) (g_get_monotonic_time() - t0) / 1e6;
}

/* --- a bridge-role session over a GlLink ------------------------------------ */

typedef struct Client {
        GlPeer *peer;
        char *instance;
        GPtrArray *messages; /* GlMessage* */
        bool established;
        bool closed;
        int close_error;
} Client;

static void client_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        Client *c = userdata;

        (void) peer;
        if (ev->type == GL_SESSION_EVENT_ESTABLISHED)
                c->established = true;
        else if (ev->type == GL_SESSION_EVENT_MESSAGE)
                g_ptr_array_add(c->messages, ev->message);
}

static void client_closed(GlPeer *peer, int error, void *userdata) {
        Client *c = userdata;

        (void) peer;
        c->closed = true;
        c->close_error = error;
}

static void message_free(gpointer m) {
        gl_message_free(m);
}

static Client *client_new(GlLink *link) {
        static const GlPeerCallbacks cbs = { .event = client_event, .closed = client_closed };
        Client *c = g_new0(Client, 1);
        GlSessionConfig cfg = { .role = "bridge", .software = "guestlink-test-libvirt" };

        c->instance = gl_peer_new_instance();
        cfg.instance = c->instance;
        c->messages = g_ptr_array_new_with_free_func(message_free);
        c->peer = gl_peer_new(&cfg, &cbs, c);
        g_assert_nonnull(c->peer);
        gl_peer_attach(c->peer, link);
        return c;
}

static void client_free(Client *c) {
        if (!c)
                return;
        gl_peer_free(c->peer);
        g_ptr_array_unref(c->messages);
        g_free(c->instance);
        g_free(c);
}

static GlMessage *client_take(Client *c, GlMessageType type, uint64_t id) {
        for (guint i = 0; i < c->messages->len; i++) {
                GlMessage *m = c->messages->pdata[i];
                if ((m->type == type || (type == GL_MSG_RESPONSE && m->type == GL_MSG_ERROR)) && m->id == id)
                        return g_ptr_array_steal_index(c->messages, i);
        }
        return NULL;
}

static GlMessage *client_call(Client *c, const char *method) {
        GlMessage *m = NULL;
        uint64_t id;

        g_assert_cmpint(gl_peer_request(c->peer, method, NULL, CALL_TIMEOUT_MS, &id), ==, 0);
        g_assert_true(WAIT_FOR((m = client_take(c, GL_MSG_RESPONSE, id)) != NULL, CALL_TIMEOUT_MS + 1000));
        return m;
}

static int cmp_double(gconstpointer a, gconstpointer b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

/* PINGS sequential round trips; returns the median in microseconds. */
static double client_ping_p50(Client *c) {
        double rtt[PINGS];

        for (int i = 0; i < PINGS; i++) {
                GlMessage *m = NULL;
                uint64_t id;
                gint64 t0 = g_get_monotonic_time();

                g_assert_cmpint(gl_session_ping(gl_peer_session(c->peer), &id), ==, 0);
                gl_peer_kick(c->peer);
                g_assert_true(WAIT_FOR((m = client_take(c, GL_MSG_PONG, id)) != NULL, 10000));
                rtt[i] = (double) (g_get_monotonic_time() - t0);
                gl_message_free(m);
        }
        qsort(rtt, PINGS, sizeof(double), cmp_double);
        return rtt[PINGS / 2];
}

/* Handshake, then info: the agent answers with the guest's kernel. */
static void client_check_agent(Client *c) {
        GlMessage *m;
        json_object *kernel, *release;

        if (!WAIT_FOR(c->established || c->closed, BOOT_TIMEOUT_MS)) {
                const GlSessionStats *st = gl_session_stats(gl_peer_session(c->peer));

                g_test_message("no handshake: state %s, bytes in %" G_GUINT64_FORMAT " out %" G_GUINT64_FORMAT
                               ", frames in %" G_GUINT64_FORMAT " out %" G_GUINT64_FORMAT ", garbage %" G_GUINT64_FORMAT
                               ", hello retries %" G_GUINT64_FORMAT,
                               gl_session_state_to_string(gl_session_state(gl_peer_session(c->peer))), st->bytes_in,
                               st->bytes_out, st->frames_in, st->frames_out, st->garbage_bytes, st->hello_retries);
        }
        g_assert_false(c->closed);
        g_assert_true(c->established);
        m = client_call(c, "info");
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_true(json_object_object_get_ex(m->body, "kernel", &kernel));
        g_assert_true(json_object_object_get_ex(kernel, "release", &release));
        g_assert_true(g_str_has_suffix(json_object_get_string(release), "amd64"));
        gl_message_free(m);
}

/* --- cases ------------------------------------------------------------------ */

static void test_discovery(void) {
        g_autoptr(Gllv) gllv = gllv_new("discovery");
        g_autoptr(GError) error = NULL;
        GllvDomain *d;
        GlLibvirt *lv;
        GlLink *link = NULL;
        Client *c;
        Seen *s;
        Fx fx;
        gint64 t0 = g_get_monotonic_time();
        double p50;

        fx_init(&fx);
        lv = gl_libvirt_new(NULL, NULL, &fx_callbacks, &fx);
        g_assert_true(WAIT_FOR(fx.connects == 1, 10000));
        d = gllv_domain_start(gllv, true, &error);
        g_assert_no_error(error);
        g_test_message("domain %s defined and started in %.1f s", gllv_domain_name(d), seconds_since(t0));

        g_assert_true(WAIT_FOR(count_started(&fx, gllv_domain_uuid(d)) > 0, 10000));
        g_test_message("domain_started after %.1f s", seconds_since(t0));
        s = last_started(&fx, gllv_domain_uuid(d));
        g_assert_cmpstr(s->name, ==, gllv_domain_name(d));
        g_assert_cmpstr(s->channel_path, ==, gllv_domain_channel_path(d));
        g_assert_cmpstr(s->channel_alias, ==, "channel0");
        g_assert_cmpstr(s->uri, ==, "qemu:///system");
        g_assert_true(s->local);
        g_assert_nonnull(gl_libvirt_lookup(lv, gllv_domain_uuid(d)));

        g_assert_cmpint(gl_libvirt_open_link(lv, gllv_domain_uuid(d), true, &link, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpstr(gl_link_kind(link), ==, "socket");
        c = client_new(link);
        client_check_agent(c);
        g_test_message("handshake + info after %.1f s", seconds_since(t0));
        p50 = client_ping_p50(c);
        g_test_message("PING p50 over the local socket: %.0f us (%d round trips)", p50, PINGS);
        printf("# ping-p50-socket-us %.0f\n", p50);

        g_assert_true(gllv_domain_destroy(d, &error));
        g_assert_no_error(error);
        g_assert_true(WAIT_FOR(was_stopped(&fx, gllv_domain_uuid(d)), 10000));
        g_assert_null(gl_libvirt_lookup(lv, gllv_domain_uuid(d)));
        g_assert_true(WAIT_FOR(c->closed, 10000)); /* qemu closed the socket */
        g_test_message("domain_stopped after %.1f s in all", seconds_since(t0));

        client_free(c);
        gl_libvirt_free(lv);
        fx_clear(&fx);
}

static void test_stream(void) {
        g_autoptr(Gllv) gllv = gllv_new("stream");
        g_autoptr(GError) error = NULL;
        const char *uri = gllv_tcp_uri(gllv);
        GllvDomain *d;
        GlLibvirt *lv;
        GlLink *link = NULL, *link2 = NULL;
        Client *c, *c2;
        Seen *s;
        Fx fx;
        gint64 t0 = g_get_monotonic_time();
        double p50;

        if (!uri) {
                /* a libvirtd we did not start may not listen on TCP */
                g_assert_false(gllv_owns_daemon(gllv));
                g_test_message("qemu+tcp://127.0.0.1/system does not answer: using qemu:///system");
                uri = "qemu:///system";
        }
        fx_init(&fx);
        lv = gl_libvirt_new(uri, NULL, &fx_callbacks, &fx);
        g_assert_true(WAIT_FOR(fx.connects == 1, 10000));
        g_assert_cmpstr(gl_libvirt_uri(lv), ==, uri);
        d = gllv_domain_start(gllv, true, &error);
        g_assert_no_error(error);
        g_assert_true(WAIT_FOR(count_started(&fx, gllv_domain_uuid(d)) > 0, 10000));
        s = last_started(&fx, gllv_domain_uuid(d));
        g_assert_cmpstr(s->uri, ==, uri);
        g_assert_true(s->local == g_str_equal(uri, "qemu:///system"));

        g_assert_cmpint(gl_libvirt_open_link(lv, gllv_domain_uuid(d), false, &link, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpstr(gl_link_kind(link), ==, "libvirt-stream");
        c = client_new(link);
        client_check_agent(c);
        g_test_message("handshake + info over the stream after %.1f s", seconds_since(t0));
        p50 = client_ping_p50(c);
        g_test_message("PING p50 over the libvirt stream (%s): %.0f us (%d round trips)", uri, p50, PINGS);
        printf("# ping-p50-stream-us %.0f\n", p50);

        /* a second opener takes over (VIR_DOMAIN_CHANNEL_FORCE); the first
         * stream fails and its peer is closed */
        g_assert_cmpint(gl_libvirt_connect_channel(uri, gllv_domain_name(d), NULL, &link2, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpstr(gl_link_kind(link2), ==, "libvirt-stream");
        c2 = client_new(link2);
        client_check_agent(c2);
        g_assert_true(WAIT_FOR(c->closed, 10000));
        g_test_message("FORCE takeover: first link closed (%d), second established", c->close_error);

        g_assert_cmpint(gl_libvirt_domain_active(uri, gllv_domain_uuid(d), &error), ==, 1);
        g_assert_no_error(error);
        g_assert_cmpint(gl_libvirt_stop_domain(uri, gllv_domain_uuid(d), "destroy", &error), ==, 0);
        g_assert_no_error(error);
        g_assert_true(WAIT_FOR(was_stopped(&fx, gllv_domain_uuid(d)), 10000));
        g_assert_cmpint(gl_libvirt_domain_active(uri, gllv_domain_uuid(d), &error), ==, 0);
        g_assert_cmpint(gl_libvirt_domain_active(uri, "no-such-domain-here", &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(gl_libvirt_stop_domain(uri, gllv_domain_uuid(d), "destroy", &error), ==, -ESRCH);
        g_assert_error(error, GL_LIBVIRT_ERROR, VIR_ERR_OPERATION_INVALID);
        g_clear_error(&error);
        g_assert_cmpint(gl_libvirt_stop_domain(uri, gllv_domain_uuid(d), "bogus", &error), ==, -EINVAL);
        g_clear_error(&error);
        g_assert_true(WAIT_FOR(c2->closed, 10000));
        g_test_message("stream case done after %.1f s", seconds_since(t0));

        client_free(c);
        client_free(c2);
        gl_libvirt_free(lv);
        fx_clear(&fx);
}

static void test_nochannel(void) {
        g_autoptr(Gllv) gllv = gllv_new("nochannel");
        g_autoptr(GError) error = NULL;
        GllvDomain *d;
        GlLibvirt *lv;
        GlLink *link = NULL;
        Fx fx;

        fx_init(&fx);
        lv = gl_libvirt_new(NULL, NULL, &fx_callbacks, &fx);
        g_assert_true(WAIT_FOR(fx.connects == 1, 10000));
        d = gllv_domain_start(gllv, false, &error);
        g_assert_no_error(error);
        g_assert_null(gllv_domain_channel_path(d));
        /* the STARTED event was handled; a rescan and a fresh scan agree */
        sleep_loop(1500);
        g_assert_cmpint(gl_libvirt_rescan(lv, gllv_domain_uuid(d)), ==, 0);
        /* (domains of tests running beside this one may be reported) */
        g_assert_cmpuint(count_started(&fx, gllv_domain_uuid(d)), ==, 0);
        gl_libvirt_free(lv);
        lv = gl_libvirt_new(NULL, NULL, &fx_callbacks, &fx);
        g_assert_true(WAIT_FOR(fx.connects == 2, 10000));
        sleep_loop(500);
        g_assert_cmpuint(count_started(&fx, gllv_domain_uuid(d)), ==, 0);
        g_assert_null(gl_libvirt_lookup(lv, gllv_domain_uuid(d)));
        g_assert_cmpint(gl_libvirt_open_link(lv, gllv_domain_uuid(d), true, &link, &error), ==, -ENOENT);
        g_assert_error(error, GL_LIBVIRT_ERROR, 0);
        g_assert_null(link);
        g_assert_true(gllv_domain_destroy(d, NULL));
        sleep_loop(500);
        g_assert_false(was_stopped(&fx, gllv_domain_uuid(d)));
        gl_libvirt_free(lv);
        fx_clear(&fx);
}

static void test_restart(void) {
        g_autoptr(Gllv) gllv = gllv_new("restart");
        g_autoptr(GError) error = NULL;
        GllvDomain *d;
        GlLibvirt *lv;
        GlLink *link = NULL;
        Client *c;
        Fx fx;
        gint64 t0;
        double p50;

        if (!gllv_owns_daemon(gllv)) {
                g_test_skip("libvirtd was not started by this test bed: not restarting it");
                return;
        }
        fx_init(&fx);
        lv = gl_libvirt_new(NULL, NULL, &fx_callbacks, &fx);
        g_assert_true(WAIT_FOR(fx.connects == 1, 10000));
        d = gllv_domain_start(gllv, true, &error);
        g_assert_no_error(error);
        g_assert_true(WAIT_FOR(count_started(&fx, gllv_domain_uuid(d)) == 1, 10000));

        t0 = g_get_monotonic_time();
        g_assert_true(gllv_restart_daemon(gllv, 500, &error));
        g_assert_no_error(error);
        g_test_message("libvirtd restarted in %.1f s", seconds_since(t0));
        g_assert_true(WAIT_FOR(fx.disconnects == 1, 30000));
        g_assert_true(WAIT_FOR(fx.connects == 2 && count_started(&fx, gllv_domain_uuid(d)) == 2,
                               GL_LIBVIRT_RECONNECT_MAX_MS + 10000));
        g_test_message("reconnected and re-reported %.1f s after the restart began", seconds_since(t0));
        g_assert_false(was_stopped(&fx, gllv_domain_uuid(d)));

        /* the new connection works: a stream through it reaches the agent */
        g_assert_cmpint(gl_libvirt_open_link(lv, gllv_domain_uuid(d), false, &link, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpstr(gl_link_kind(link), ==, "libvirt-stream");
        c = client_new(link);
        client_check_agent(c);
        p50 = client_ping_p50(c);
        g_test_message("PING p50 over the libvirt stream (qemu:///system): %.0f us (%d round trips)", p50, PINGS);
        printf("# ping-p50-stream-local-us %.0f\n", p50);

        g_assert_true(gllv_domain_destroy(d, &error));
        g_assert_true(WAIT_FOR(was_stopped(&fx, gllv_domain_uuid(d)), 10000));
        client_free(c);
        gl_libvirt_free(lv);
        fx_clear(&fx);
}

static void drop_log(const char *domain, GLogLevelFlags level, const char *message, gpointer userdata) {
        (void) domain;
        (void) level;
        (void) message;
        (void) userdata;
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                void (*fn)(void);
        } cases[] = {
                { "discovery", test_discovery },
                { "stream", test_stream },
                { "nochannel", test_nochannel },
                { "restart", test_restart },
        };
        const char *which = argc > 1 ? argv[1] : NULL;

        g_test_init(&argc, &argv, NULL);
        /* libvirt writes to sockets whose peer may be gone (libvirt.h) */
        signal(SIGPIPE, SIG_IGN);
        /* under GTest every g_debug() is printed: not libvirt-glib's tracing
         * of each event loop operation */
        g_log_set_handler(NULL, G_LOG_LEVEL_DEBUG, drop_log, NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
                if (!which || g_str_equal(which, cases[i].name)) {
                        g_autofree char *path = g_strdup_printf("/libvirt/%s", cases[i].name);
                        g_test_add_func(path, cases[i].fn);
                }
        return g_test_run();
}
