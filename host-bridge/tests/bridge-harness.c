/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bridge-harness.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

static void die_with_parent(gpointer userdata) {
        (void) userdata;
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Children that die with the test: a failed test must not leave a stopped
 * agent holding meson's pipes, or a bridge serving nobody. */
static GSubprocessLauncher *launcher_new(GSubprocessFlags flags) {
        GSubprocessLauncher *l = g_subprocess_launcher_new(flags);

        g_subprocess_launcher_set_child_setup(l, die_with_parent, NULL, NULL);
        return l;
}

static void message_free(gpointer m) {
        gl_message_free(m);
}

static const char *binary(const char *env) {
        const char *p = g_getenv(env);

        g_assert_nonnull(p);
        return p;
}

Harness *harness_new(const char *extra_conf) {
        Harness *h = g_new0(Harness, 1);
        g_autoptr(GError) error = NULL;

        h->dir = g_dir_make_tmp("gl-bridge-XXXXXX", &error);
        g_assert_no_error(error);
        h->socket = g_build_filename(h->dir, "bridge.sock", NULL);
        h->conf = g_build_filename(h->dir, "bridge.conf", NULL);
        h->extra_conf = g_strdup(extra_conf ? extra_conf : "");
        h->guests = g_ptr_array_new();
        h->client_messages = g_ptr_array_new_with_free_func(message_free);
        return h;
}

/* ---- the QEMU side of a guest ---- */

static void write_all(int fd, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t w = write(fd, p, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        g_usleep(1000);
                        continue;
                }
                if (w <= 0)
                        return; /* the other side went away: like QEMU, drop it */
                p += w;
                len -= (size_t) w;
        }
}

static void conn_close(HarnessGuest *g) {
        if (g->conn_source) {
                g_source_destroy(g->conn_source);
                g_clear_pointer(&g->conn_source, g_source_unref);
        }
        if (g->kind == HARNESS_FAKE && g->fake)
                gl_peer_detach(g->fake);
        else if (g->conn_fd >= 0)
                close(g->conn_fd);
        g->conn_fd = -1;
}

static gboolean conn_readable(gint fd, GIOCondition cond, gpointer userdata) {
        HarnessGuest *g = userdata;
        uint8_t buf[65536];
        ssize_t n = read(fd, buf, sizeof(buf));

        (void) cond;
        if (n <= 0) {
                if (n < 0 && errno == EAGAIN)
                        return G_SOURCE_CONTINUE;
                g_clear_pointer(&g->conn_source, g_source_unref);
                close(g->conn_fd);
                g->conn_fd = -1;
                return G_SOURCE_REMOVE;
        }
        if (g->kind == HARNESS_AGENT && !g->relay_paused)
                write_all(g->master, buf, (size_t) n);
        return G_SOURCE_CONTINUE;
}

static gboolean pty_readable(gint fd, GIOCondition cond, gpointer userdata) {
        HarnessGuest *g = userdata;
        uint8_t buf[65536];
        ssize_t n = read(fd, buf, sizeof(buf));

        (void) cond;
        if (n <= 0)
                return n < 0 && errno == EAGAIN ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
        /* QEMU discards what the guest writes while no host is connected */
        if (g->conn_fd >= 0 && !g->relay_paused)
                write_all(g->conn_fd, buf, (size_t) n);
        return G_SOURCE_CONTINUE;
}

static void fake_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        HarnessGuest *g = userdata;

        (void) peer;
        if (ev->type == GL_SESSION_EVENT_MESSAGE)
                g_ptr_array_add(g->fake_messages, ev->message);
}

static void fake_closed(GlPeer *peer, int error, void *userdata) {
        HarnessGuest *g = userdata;

        (void) peer;
        (void) error;
        g->conn_fd = -1;
}

static gboolean guest_accept(gint fd, GIOCondition cond, gpointer userdata) {
        HarnessGuest *g = userdata;
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

        (void) cond;
        if (c < 0)
                return G_SOURCE_CONTINUE;
        conn_close(g); /* QEMU serves one client; a test closes the old one */
        g->conn_fd = c;
        g->connects++;
        if (g->kind == HARNESS_FAKE) {
                gl_peer_attach(g->fake, gl_link_new_fd(c));
                return G_SOURCE_CONTINUE;
        }
        g->conn_source = g_unix_fd_source_new(c, G_IO_IN | G_IO_HUP | G_IO_ERR);
        g_source_set_callback(g->conn_source, G_SOURCE_FUNC(conn_readable), g, NULL);
        g_source_attach(g->conn_source, NULL);
        return G_SOURCE_CONTINUE;
}

HarnessGuest *harness_add_guest(Harness *h, const char *name, HarnessGuestKind kind, const char *agent_conf) {
        HarnessGuest *g = g_new0(HarnessGuest, 1);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        g_autoptr(GError) error = NULL;

        g->name = g_strdup(name);
        g->kind = kind;
        g->socket = g_strdup_printf("%s/%s.sock", h->dir, name);
        g->conn_fd = -1;
        g->master = -1;
        g->listen_fd = -1;
        g_ptr_array_add(h->guests, g);
        if (kind == HARNESS_NONE)
                return g;

        g_assert_cmpuint(strlen(g->socket), <, sizeof(sa.sun_path));
        strcpy(sa.sun_path, g->socket);
        g->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(g->listen_fd, >=, 0);
        g_assert_cmpint(bind(g->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(listen(g->listen_fd, 4), ==, 0);
        g->listen_source = g_unix_fd_source_new(g->listen_fd, G_IO_IN);
        g_source_set_callback(g->listen_source, G_SOURCE_FUNC(guest_accept), g, NULL);
        g_source_attach(g->listen_source, NULL);

        if (kind == HARNESS_AGENT) {
                g_autofree char *conf_text = NULL;
                struct termios tio;

                g->agent_conf = g_strdup_printf("%s/%s-agent.conf", h->dir, name);
                /* These agents run on the test machine itself: never let one
                 * power it off, whatever the test's configuration says. */
                conf_text = g_strdup_printf("%s\n[policy]\npower=deny\n", agent_conf ? agent_conf : "");
                g_assert_true(g_file_set_contents(g->agent_conf, conf_text, -1, NULL));
                g->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
                g_assert_cmpint(g->master, >=, 0);
                g_assert_cmpint(grantpt(g->master), ==, 0);
                g_assert_cmpint(unlockpt(g->master), ==, 0);
                g_assert_cmpint(tcgetattr(g->master, &tio), ==, 0);
                cfmakeraw(&tio);
                g_assert_cmpint(tcsetattr(g->master, TCSANOW, &tio), ==, 0);
                {
                        g_autoptr(GSubprocessLauncher)
                                l = launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
                        g->agent = g_subprocess_launcher_spawn(l, &error, binary("GL_AGENT_BINARY"), "--config",
                                                               g->agent_conf, "--transport", "tty", "--device",
                                                               ptsname(g->master), NULL);
                }
                g_assert_no_error(error);
                g->pty_source = g_unix_fd_source_new(g->master, G_IO_IN);
                g_source_set_callback(g->pty_source, G_SOURCE_FUNC(pty_readable), g, NULL);
                g_source_attach(g->pty_source, NULL);
        } else if (kind == HARNESS_FAKE) {
                static const char *const caps[] = { "info", "stats", "heartbeat", NULL };
                g_autofree char *instance = gl_peer_new_instance();
                GlSessionConfig c = {
                        .role = "agent", .software = "fake-agent", .instance = instance, .capabilities = caps
                };
                GlPeerCallbacks cb = { .event = fake_event, .closed = fake_closed };

                g->fake = gl_peer_new(&c, &cb, g);
                g->fake_messages = g_ptr_array_new_with_free_func(message_free);
        }
        return g;
}

static void guest_free(HarnessGuest *g) {
        conn_close(g);
        if (g->listen_source) {
                g_source_destroy(g->listen_source);
                g_source_unref(g->listen_source);
        }
        if (g->pty_source) {
                g_source_destroy(g->pty_source);
                g_source_unref(g->pty_source);
        }
        if (g->listen_fd >= 0)
                close(g->listen_fd);
        if (g->agent) {
                g_subprocess_send_signal(g->agent, SIGTERM);
                g_assert_true(g_subprocess_wait(g->agent, NULL, NULL));
                g_object_unref(g->agent);
        }
        if (g->master >= 0)
                close(g->master);
        g->fake = gl_peer_free(g->fake);
        if (g->fake_messages)
                g_ptr_array_unref(g->fake_messages);
        if (g->agent_conf)
                g_unlink(g->agent_conf);
        g_unlink(g->socket);
        g_free(g->agent_conf);
        g_free(g->socket);
        g_free(g->name);
        g_free(g);
}

void harness_guest_write(HarnessGuest *g, const void *data, size_t len) {
        g_assert_cmpint(g->conn_fd, >=, 0);
        write_all(g->conn_fd, data, len);
}

void harness_guest_drop_connection(HarnessGuest *g) {
        conn_close(g);
}

/* ---- the bridge ---- */

static void write_config(Harness *h) {
        g_autoptr(GString) conf = g_string_new("");
        g_autofree char *hooks = g_build_filename(h->dir, "no-hooks", NULL);

        g_string_append_printf(conf,
                               "[bridge]\ncontrol_socket=%s\ncontrol_group=\n[libvirt]\nenabled=false\n"
                               "[stats]\ninterval_seconds=1\nhistory=30\n[heartbeat]\ninterval_seconds=1\n",
                               h->socket);
        if (!strstr(h->extra_conf, "[hooks]"))
                g_string_append_printf(conf, "[hooks]\ndirectory=%s\n", hooks);
        g_string_append(conf, h->extra_conf);
        for (guint i = 0; i < h->guests->len; i++) {
                HarnessGuest *g = h->guests->pdata[i];
                if (!g->not_in_config)
                        g_string_append_printf(conf, "[guest %s]\nsocket=%s\nmode=connect\n", g->name, g->socket);
        }
        g_assert_true(g_file_set_contents(h->conf, conf->str, -1, NULL));
}

void harness_reload_bridge(Harness *h) {
        write_config(h);
        g_subprocess_send_signal(h->bridge, SIGHUP);
}

void harness_start_bridge(Harness *h) {
        g_autoptr(GSubprocessLauncher) l = launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
        g_autofree char *log = g_build_filename(h->dir, "bridge.log", NULL);
        g_autoptr(GError) error = NULL;

        write_config(h);
        g_subprocess_launcher_set_stderr_file_path(l, log);
        g_subprocess_launcher_unsetenv(l, "JOURNAL_STREAM");
        h->bridge = g_subprocess_launcher_spawn(l, &error, binary("GL_BRIDGE_BINARY"), "--config", h->conf, NULL);
        g_assert_no_error(error);
        /* the control socket appears once the bridge listens */
        for (int i = 0; i < 500 && !g_file_test(h->socket, G_FILE_TEST_EXISTS); i++)
                harness_run(h, 10);
        g_assert_true(g_file_test(h->socket, G_FILE_TEST_EXISTS));
}

void harness_stop_bridge(Harness *h, int sig) {
        if (!h->bridge)
                return;
        h->client = gl_peer_free(h->client);
        g_subprocess_send_signal(h->bridge, sig);
        g_assert_true(g_subprocess_wait(h->bridge, NULL, NULL));
        if (sig == SIGTERM) {
                g_assert_true(g_subprocess_get_if_exited(h->bridge));
                g_assert_cmpint(g_subprocess_get_exit_status(h->bridge), ==, 0);
        }
        g_clear_object(&h->bridge);
}

char *harness_bridge_log(Harness *h) {
        g_autofree char *log = g_build_filename(h->dir, "bridge.log", NULL);
        char *text = NULL;

        g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
        return text;
}

/* ---- the control client ---- */

static void client_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        Harness *h = userdata;

        (void) peer;
        if (ev->type == GL_SESSION_EVENT_MESSAGE)
                g_ptr_array_add(h->client_messages, ev->message);
}

void harness_connect_client(Harness *h) {
        static const char *const caps[] = { NULL };
        g_autofree char *instance = gl_peer_new_instance();
        GlSessionConfig c = { .role = "client", .software = "test-client", .instance = instance, .capabilities = caps };
        GlPeerCallbacks cb = { .event = client_event };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        strcpy(sa.sun_path, h->socket);
        g_assert_cmpint(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        h->client = gl_peer_free(h->client);
        h->client = gl_peer_new(&c, &cb, h);
        gl_peer_attach(h->client, gl_link_new_fd(fd));
        while (gl_session_state(gl_peer_session(h->client)) != GL_SESSION_ESTABLISHED) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                harness_run(h, 20);
        }
        g_assert_true(gl_session_peer_has_capability(gl_peer_session(h->client), "bridge"));
}

void harness_run(Harness *h, int ms) {
        gint64 end = g_get_monotonic_time() + (gint64) ms * 1000;

        (void) h;
        while (g_get_monotonic_time() < end)
                if (!g_main_context_iteration(NULL, FALSE))
                        g_usleep(1000);
}

void harness_wait(Harness *h, int timeout_ms, bool (*cond)(Harness *h, void *data), void *data, const char *what) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        while (!cond(h, data)) {
                if (g_get_monotonic_time() > deadline)
                        g_error("timed out after %d ms waiting for %s", timeout_ms, what);
                harness_run(h, 20);
        }
}

static GlMessage *take_answer(Harness *h, uint64_t id) {
        for (guint i = 0; i < h->client_messages->len; i++) {
                GlMessage *m = h->client_messages->pdata[i];
                if ((m->type == GL_MSG_RESPONSE || m->type == GL_MSG_ERROR) && m->id == id)
                        return g_ptr_array_steal_index(h->client_messages, i);
        }
        return NULL;
}

GlMessage *harness_call(Harness *h, const char *method, const char *params_json, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
        json_object *params = params_json ? json_tokener_parse(params_json) : NULL;
        GlMessage *m;
        uint64_t id;

        g_assert_true(!params_json || params);
        g_assert_cmpint(gl_peer_request(h->client, method, params, (uint64_t) timeout_ms + 5000, &id), ==, 0);
        while (!(m = take_answer(h, id))) {
                if (g_get_monotonic_time() > deadline)
                        g_error("no answer to %s in %d ms", method, timeout_ms);
                g_main_context_iteration(NULL, TRUE);
        }
        return m;
}

GlMessage *harness_guest_call(Harness *h, const char *guest, const char *method, const char *params_json,
                              int timeout_ms) {
        g_autofree char *p = g_strdup_printf("{\"guest\":\"%s\",\"method\":\"%s\",\"params\":%s,\"timeout_ms\":%d}",
                                             guest, method, params_json ? params_json : "{}", timeout_ms);

        return harness_call(h, "bridge.call", p, timeout_ms + 2000);
}

json_object *harness_list_guest(Harness *h, const char *name) {
        GlMessage *m = harness_call(h, "bridge.list", NULL, 10000);
        json_object *guests, *found = NULL;

        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_true(json_object_object_get_ex(m->body, "guests", &guests));
        for (size_t i = 0; i < json_object_array_length(guests); i++) {
                json_object *g = json_object_array_get_idx(guests, i), *n;
                if (json_object_object_get_ex(g, "name", &n) && strcmp(json_object_get_string(n), name) == 0)
                        found = json_object_get(g);
        }
        gl_message_free(m);
        return found;
}

bool harness_wait_state(Harness *h, const char *name, const char *state, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        for (;;) {
                g_autoptr(json_object) g = harness_list_guest(h, name);
                json_object *s;
                if (g && json_object_object_get_ex(g, "state", &s) && strcmp(json_object_get_string(s), state) == 0)
                        return true;
                if (g_get_monotonic_time() > deadline)
                        return false;
                harness_run(h, 100);
        }
}

GlMessage *harness_take_event(Harness *h, const char *guest, const char *kind) {
        for (guint i = 0; i < h->client_messages->len; i++) {
                GlMessage *m = h->client_messages->pdata[i];
                json_object *k, *who, *n;
                if (m->type != GL_MSG_EVENT || strcmp(m->name, "bridge.event") != 0 || !m->body)
                        continue;
                if (!json_object_object_get_ex(m->body, "kind", &k) || strcmp(json_object_get_string(k), kind) != 0)
                        continue;
                if (guest &&
                    (!json_object_object_get_ex(m->body, "guest", &who) ||
                     !json_object_object_get_ex(who, "name", &n) || strcmp(json_object_get_string(n), guest) != 0))
                        continue;
                return g_ptr_array_steal_index(h->client_messages, i);
        }
        return NULL;
}

void harness_free(Harness *h) {
        harness_stop_bridge(h, SIGTERM);
        for (guint i = 0; i < h->guests->len; i++)
                guest_free(h->guests->pdata[i]);
        g_ptr_array_unref(h->guests);
        g_ptr_array_unref(h->client_messages);
        {
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", h->dir);
                g_assert_cmpint(system(cmd), ==, 0);
        }
        g_free(h->dir);
        g_free(h->socket);
        g_free(h->conf);
        g_free(h->extra_conf);
        g_free(h);
}

/* ---- observing the bridge ---- */

pid_t harness_bridge_pid(Harness *h) {
        const char *id = h->bridge ? g_subprocess_get_identifier(h->bridge) : NULL;

        return id ? (pid_t) g_ascii_strtoll(id, NULL, 10) : 0;
}

int64_t harness_bridge_smaps_kib(Harness *h, const char *field) {
        g_autofree char *path = g_strdup_printf("/proc/%d/smaps_rollup", (int) harness_bridge_pid(h));
        g_autofree char *text = NULL;
        g_autofree char *key = g_strdup_printf("\n%s:", field);
        const char *p;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return -1;
        p = strstr(text, key);
        if (!p)
                return -1;
        return g_ascii_strtoll(p + strlen(key), NULL, 10);
}

GlMessage *harness_take_answer(Harness *h, uint64_t id) {
        return take_answer(h, id);
}
