/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fake guestlink agent for the CLI tests: a GlPeer of role "agent" on a
 * unix socket, answering from fixture JSON files.
 *
 *   guestlink-fake-agent SOCKET DATADIR MODE
 *
 * MODE: normal       answers ping, info, stats.get, lock, power.request
 *                    from DATADIR/{info,stats,lock,power}.json; stats.subscribe
 *                    sends stats.json as events; an accepted poweroff or
 *                    halt is followed by power.progress "started" and the
 *                    connection closes (QEMU going away)
 *       hostile      like normal, info from DATADIR/info-hostile.json
 *       forbidden    every request but ping: "forbidden"
 *       unavailable  every request but ping: "unavailable"
 *       silent       handshakes, never answers a request
 *       no-hello     accepts connections and never says anything
 *
 * Prints "ready" on stdout once the socket listens.
 */
#include <errno.h>
#include <glib-unix.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer.h"

typedef struct Fake {
        const char *data_dir;
        const char *mode;
        GlPeer *peer;
        GMainLoop *loop;
        GPtrArray *held_fds; /* no-hello: accepted and ignored */
        guint stats_timer;
        int listen_fd;
} Fake;

static json_object *fixture(Fake *f, const char *name) {
        g_autofree char *path = g_build_filename(f->data_dir, name, NULL);
        json_object *o = json_object_from_file(path);

        if (!o) {
                fprintf(stderr, "fake-agent: cannot read %s\n", path);
                return json_object_new_object();
        }
        return o;
}

static gboolean send_stats(gpointer userdata) {
        Fake *f = userdata;

        if (gl_peer_attached(f->peer))
                (void) gl_peer_send_event(f->peer, "stats", fixture(f, "stats.json"), GL_SEND_UNRELIABLE);
        return G_SOURCE_CONTINUE;
}

static gboolean hang_up(gpointer userdata) {
        Fake *f = userdata;

        g_main_loop_quit(f->loop);
        return G_SOURCE_REMOVE;
}

static void handle(Fake *f, GlMessage *m) {
        const char *method = m->name;
        json_object *v;

        if (strcmp(f->mode, "silent") == 0)
                return;
        if (strcmp(method, "ping") == 0) {
                (void) gl_peer_respond(f->peer, m->id, NULL);
                return;
        }
        if (strcmp(f->mode, "forbidden") == 0) {
                (void) gl_peer_respond_error(f->peer, m->id, GL_ERROR_FORBIDDEN, "denied by agent.conf [policy]");
                return;
        }
        if (strcmp(f->mode, "unavailable") == 0) {
                (void) gl_peer_respond_error(f->peer, m->id, GL_ERROR_UNAVAILABLE, "logind says CanHibernate=na");
                return;
        }
        if (strcmp(method, "info") == 0)
                (void) gl_peer_respond(f->peer, m->id,
                                       fixture(f, strcmp(f->mode, "hostile") == 0 ? "info-hostile.json" : "info.json"));
        else if (strcmp(method, "stats.get") == 0)
                (void) gl_peer_respond(f->peer, m->id, fixture(f, "stats.json"));
        else if (strcmp(method, "lock") == 0)
                (void) gl_peer_respond(f->peer, m->id, fixture(f, "lock.json"));
        else if (strcmp(method, "stats.subscribe") == 0) {
                json_object *r = json_object_new_object();

                json_object_object_add(r, "interval_seconds", json_object_new_int(1));
                (void) gl_peer_respond(f->peer, m->id, r);
                if (!f->stats_timer)
                        f->stats_timer = g_timeout_add(100, send_stats, f);
        } else if (strcmp(method, "power.request") == 0) {
                json_object *r = fixture(f, "power.json");
                const char *action = "poweroff";
                json_object *ev = json_object_new_object();

                if (m->body && json_object_object_get_ex(m->body, "action", &v))
                        action = json_object_get_string(v);
                json_object_object_add(r, "action", json_object_new_string(action));
                json_object_object_add(ev, "operation", json_object_new_int(7));
                json_object_object_add(ev, "action", json_object_new_string(action));
                json_object_object_add(ev, "state", json_object_new_string("started"));
                json_object_object_add(ev, "time_unix_us", json_object_new_int64(1714564800000000));
                (void) gl_peer_respond(f->peer, m->id, r);
                (void) gl_peer_send_event(f->peer, "power.progress", ev, 0);
                if (strcmp(action, "poweroff") == 0 || strcmp(action, "halt") == 0)
                        g_timeout_add(200, hang_up, f);
        } else
                (void) gl_peer_respond_error(f->peer, m->id, GL_ERROR_UNSUPPORTED, "unknown method");
}

static void peer_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        (void) peer;
        if (ev->type == GL_SESSION_EVENT_MESSAGE && ev->message->type == GL_MSG_REQUEST)
                handle(userdata, ev->message);
        gl_message_free(ev->message);
}

static void peer_closed(GlPeer *peer, int error, void *userdata) {
        (void) peer;
        (void) error;
        (void) userdata;
}

static gboolean on_accept(gint fd, GIOCondition cond, gpointer userdata) {
        Fake *f = userdata;
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

        (void) cond;
        if (c < 0)
                return G_SOURCE_CONTINUE;
        if (strcmp(f->mode, "no-hello") == 0) {
                g_ptr_array_add(f->held_fds, GINT_TO_POINTER(c));
                return G_SOURCE_CONTINUE;
        }
        gl_peer_attach(f->peer, gl_link_new_fd(c));
        return G_SOURCE_CONTINUE;
}

static gboolean on_term(gpointer userdata) {
        g_main_loop_quit(((Fake *) userdata)->loop);
        return G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
        static const char *const caps[] = { "info", "stats", "heartbeat", "power", "lock", NULL };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        GlSessionConfig config = {
                .role = "agent",
                .software = "guestlink-agent 0.1.0",
                .instance = "0123456789abcdef0123456789abcdef", /* fixed: golden output */
                .capabilities = caps,
        };
        const GlPeerCallbacks cb = { .event = peer_event, .closed = peer_closed };
        Fake f = { 0 };

        if (argc != 4 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: %s SOCKET DATADIR MODE\n", argv[0]);
                return 2;
        }
        f.data_dir = argv[2];
        f.mode = argv[3];
        f.held_fds = g_ptr_array_new();
        f.loop = g_main_loop_new(NULL, FALSE);
        f.peer = gl_peer_new(&config, &cb, &f);
        memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
        f.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (f.listen_fd < 0 || bind(f.listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(f.listen_fd, 4) < 0) {
                fprintf(stderr, "fake-agent: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        g_unix_fd_add(f.listen_fd, G_IO_IN, on_accept, &f);
        g_unix_signal_add(SIGTERM, on_term, &f);
        printf("ready\n");
        fflush(stdout);
        g_main_loop_run(f.loop);

        f.peer = gl_peer_free(f.peer);
        for (guint i = 0; i < f.held_fds->len; i++)
                close(GPOINTER_TO_INT(f.held_fds->pdata[i]));
        g_ptr_array_unref(f.held_fds);
        close(f.listen_fd);
        unlink(argv[1]);
        g_main_loop_unref(f.loop);
        return 0;
}
