/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Integration: the real guestlink-agent binary, started as a process, on
 * the tty transport over a pseudo-terminal, driven by a fake host that
 * speaks the protocol with the library's own session.  Every implemented
 * request, a denied one, bad parameters, unknown methods, garbage and an
 * oversized frame, the rate limit, and a clean SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>

#include "session.h"

typedef struct Host {
        GSubprocess *agent;
        char *config;
        int master;
        GlSession *s;
        GPtrArray *messages; /* GlMessage*, owned */
        unsigned protocol_errors;
} Host;

static void message_free(gpointer m) {
        gl_message_free(m);
}

static const char *agent_path(void) {
        const char *p = g_getenv("GL_AGENT_BINARY");

        g_assert_nonnull(p);
        return p;
}

static void host_pump(Host *h, int timeout_ms) {
        struct pollfd p = { .fd = h->master, .events = POLLIN };
        GlSessionEvent ev;

        for (;;) {
                GlIovec iov[GL_SESSION_IOV_MAX];
                size_t n = gl_session_output(h->s, iov);
                ssize_t w;

                if (n == 0)
                        break;
                w = write(h->master, iov[0].base, iov[0].len); /* partial writes are fine */
                g_assert_cmpint(w, >, 0);
                gl_session_output_advance(h->s, (size_t) w);
        }
        if (poll(&p, 1, timeout_ms) > 0 && (p.revents & POLLIN)) {
                size_t room;
                void *buf = gl_session_input_space(h->s, 4096, &room);
                ssize_t r = read(h->master, buf, MIN(room, 4096));
                if (r > 0)
                        gl_session_input_commit(h->s, (size_t) r);
        }
        while (gl_session_receive(h->s, &ev) > 0) {
                if (ev.type == GL_SESSION_EVENT_MESSAGE)
                        g_ptr_array_add(h->messages, ev.message);
                else if (ev.type == GL_SESSION_EVENT_PROTOCOL_ERROR)
                        h->protocol_errors++;
        }
}

static void host_start(Host *h, const char *config_text) {
        g_autoptr(GError) error = NULL;
        GlSessionConfig c = { .role = "bridge", .software = "test-host", .instance = "test-host-1" };
        struct termios tio;
        gint64 deadline;
        int fd;

        fd = g_file_open_tmp("agent-XXXXXX.conf", &h->config, &error);
        g_assert_no_error(error);
        g_assert_true(g_file_set_contents(h->config, config_text, -1, NULL));
        close(fd);

        h->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        g_assert_cmpint(h->master, >=, 0);
        g_assert_cmpint(grantpt(h->master), ==, 0);
        g_assert_cmpint(unlockpt(h->master), ==, 0);
        g_assert_cmpint(tcgetattr(h->master, &tio), ==, 0);
        cfmakeraw(&tio);
        g_assert_cmpint(tcsetattr(h->master, TCSANOW, &tio), ==, 0);

        h->agent = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, agent_path(), "--config", h->config,
                                    "--transport", "tty", "--device", ptsname(h->master), NULL);
        g_assert_no_error(error);
        h->s = gl_session_new(&c);
        h->messages = g_ptr_array_new_with_free_func(message_free);
        gl_session_connected(h->s);
        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        while (gl_session_state(h->s) != GL_SESSION_ESTABLISHED) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                gl_session_expire(h->s, (uint64_t) g_get_monotonic_time() / 1000);
                host_pump(h, 50);
        }
        g_assert_cmpstr(gl_session_peer(h->s)->role, ==, "agent");
}

static char *host_stop(Host *h) {
        g_autoptr(GError) error = NULL;
        GInputStream *in;
        char buf[65536];
        gsize n = 0;

        g_subprocess_send_signal(h->agent, SIGTERM);
        g_assert_true(g_subprocess_wait(h->agent, NULL, &error));
        g_assert_true(g_subprocess_get_if_exited(h->agent));
        g_assert_cmpint(g_subprocess_get_exit_status(h->agent), ==, 0);
        in = g_subprocess_get_stderr_pipe(h->agent);
        g_assert_true(g_input_stream_read_all(in, buf, sizeof(buf) - 1, &n, NULL, NULL));
        buf[n] = '\0';
        g_object_unref(h->agent);
        gl_session_free(h->s);
        g_ptr_array_unref(h->messages);
        close(h->master);
        unlink(h->config);
        g_free(h->config);
        return g_strdup(buf);
}

/* Sends a request and waits for its one answer. */
static GlMessage *call(Host *h, const char *method, json_object *params) {
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        uint64_t id;

        g_assert_cmpint(gl_session_request(h->s, method, params, NULL, 0, 0, 0, 100000, &id), ==, 0);
        for (;;) {
                for (guint i = 0; i < h->messages->len; i++) {
                        GlMessage *m = h->messages->pdata[i];
                        if ((m->type == GL_MSG_RESPONSE || m->type == GL_MSG_ERROR) && m->id == id)
                                return g_ptr_array_steal_index(h->messages, i);
                }
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                host_pump(h, 50);
        }
}

static int64_t meminfo_total_bytes(void) {
        g_autofree char *text = NULL;
        const char *p;

        g_assert_true(g_file_get_contents("/proc/meminfo", &text, NULL, NULL));
        p = strstr(text, "MemTotal:");
        g_assert_nonnull(p);
        return g_ascii_strtoll(p + strlen("MemTotal:"), NULL, 10) * 1024;
}

static const char *str_at(json_object *o, const char *a, const char *b) {
        json_object *v = json_object_object_get(o, a);
        if (b)
                v = json_object_object_get(v, b);
        return v ? json_object_get_string(v) : NULL;
}

static void test_requests(void) {
        Host h = { 0 };
        GlMessage *m;
        struct utsname u;
        json_object *params;
        g_autofree char *log = NULL;
        gint64 deadline;
        GlMessage *hb = NULL;

        host_start(&h, "[policy]\ndefault=allow\npower=deny\n");

        m = call(&h, "ping", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);

        m = call(&h, "info", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpint(uname(&u), ==, 0);
        g_assert_cmpstr(str_at(m->body, "agent", "version"), ==, "0.1.0");
        g_assert_cmpstr(str_at(m->body, "os", "family"), ==, "linux");
        g_assert_cmpstr(str_at(m->body, "kernel", "release"), ==, u.release);
        g_assert_cmpstr(str_at(m->body, "architecture", NULL), ==, u.machine);
        g_assert_cmpstr(str_at(m->body, "hostname", NULL), ==, u.nodename);
        g_assert_true(json_object_is_type(json_object_object_get(m->body, "interfaces"), json_type_array));
        gl_message_free(m);

        g_assert_true(gl_session_peer_has_capability(h.s, "stats"));
        m = call(&h, "stats.get", json_tokener_parse("{\"sections\":[\"memory\",\"cpu\"]}"));
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpint(
                json_object_get_int64(json_object_object_get(json_object_object_get(m->body, "memory"), "total_bytes")),
                ==, meminfo_total_bytes());
        g_assert_null(json_object_object_get(m->body, "filesystems")); /* not asked for */
        gl_message_free(m);
        m = call(&h, "stats.get", json_tokener_parse("{\"top_processes\":99}"));
        g_assert_cmpint(m->code, ==, GL_ERROR_INVALID);
        gl_message_free(m);

        m = call(&h, "teleport", NULL);
        g_assert_cmpint(m->code, ==, GL_ERROR_UNSUPPORTED);
        gl_message_free(m);

        params = json_object_new_object();
        json_object_object_add(params, "interval_seconds", json_object_new_string("often"));
        m = call(&h, "heartbeat.subscribe", params);
        g_assert_cmpint(m->type, ==, GL_MSG_ERROR);
        g_assert_cmpint(m->code, ==, GL_ERROR_INVALID);
        gl_message_free(m);

        params = json_object_new_object();
        json_object_object_add(params, "interval_seconds", json_object_new_double(0.2));
        m = call(&h, "heartbeat.subscribe", params);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpint(json_object_get_int(json_object_object_get(m->body, "interval_seconds")), ==, 1);
        gl_message_free(m);
        deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (!hb) {
                for (guint i = 0; i < h.messages->len; i++) {
                        GlMessage *e = h.messages->pdata[i];
                        if (e->type == GL_MSG_EVENT && g_str_equal(e->name, "heartbeat"))
                                hb = g_ptr_array_steal_index(h.messages, i);
                }
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                host_pump(&h, 100);
        }
        g_assert_cmpint(json_object_get_int(json_object_object_get(hb->body, "seq")), ==, 1);
        g_assert_cmpstr(str_at(hb->body, "state", NULL), ==, "running");
        gl_message_free(hb);

        /* stats pushed at the interval asked for; the second sample has rates */
        m = call(&h, "stats.subscribe", json_tokener_parse("{\"interval_seconds\":1,\"sections\":[\"cpu\"]}"));
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);
        deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        for (unsigned samples = 0; samples < 2;) {
                for (guint i = 0; i < h.messages->len; i++) {
                        GlMessage *e = h.messages->pdata[i];
                        if (e->type != GL_MSG_EVENT || !g_str_equal(e->name, "stats"))
                                continue;
                        e = g_ptr_array_steal_index(h.messages, i);
                        if (++samples == 2)
                                g_assert_nonnull(json_object_object_get(json_object_object_get(e->body, "cpu"),
                                                                        "usage_percent"));
                        gl_message_free(e);
                        break;
                }
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                host_pump(&h, 100);
        }

        log = host_stop(&h);
        g_test_message("agent log:\n%s", log);
        g_assert_nonnull(strstr(log, "opened /dev/pts/"));
}

/* SIGHUP reloads the policy: info becomes forbidden without a restart. */
static void test_reload(void) {
        Host h = { 0 };
        g_autofree char *log = NULL;
        GlMessage *m;

        host_start(&h, "[policy]\npower=deny\n");
        m = call(&h, "info", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);
        g_assert_true(g_file_set_contents(h.config, "[policy]\npower=deny\ninfo=deny\n", -1, NULL));
        g_subprocess_send_signal(h.agent, SIGHUP);
        for (int i = 0; i < 100; i++) {
                m = call(&h, "info", NULL);
                if (m->type == GL_MSG_ERROR)
                        break;
                gl_message_free(m);
                m = NULL;
                g_usleep(20000);
        }
        g_assert_nonnull(m);
        g_assert_cmpint(m->code, ==, GL_ERROR_FORBIDDEN);
        gl_message_free(m);
        /* an invalid file is refused and the running policy kept */
        g_assert_true(g_file_set_contents(h.config, "[policy]\ninfo=perhaps\n", -1, NULL));
        g_subprocess_send_signal(h.agent, SIGHUP);
        g_usleep(300000);
        m = call(&h, "info", NULL);
        g_assert_cmpint(m->code, ==, GL_ERROR_FORBIDDEN);
        gl_message_free(m);
        log = host_stop(&h);
        g_assert_nonnull(strstr(log, "configuration reloaded"));
        g_assert_nonnull(strstr(log, "reload failed, keeping the running configuration"));
}

static void test_denied(void) {
        Host h = { 0 };
        g_autofree char *log = NULL;
        GlMessage *m;

        host_start(&h, "[policy]\ninfo=deny\npower=deny\n");
        m = call(&h, "info", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_ERROR);
        g_assert_cmpint(m->code, ==, GL_ERROR_FORBIDDEN);
        gl_message_free(m);
        m = call(&h, "power.request", json_tokener_parse("{\"action\":\"poweroff\"}"));
        g_assert_cmpint(m->type, ==, GL_MSG_ERROR);
        g_assert_cmpint(m->code, ==, GL_ERROR_FORBIDDEN);
        gl_message_free(m);
        m = call(&h, "ping", NULL); /* never denied */
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);
        log = host_stop(&h);
        g_assert_nonnull(strstr(log, "denied info request"));
        g_assert_nonnull(strstr(log, "denied power.request request"));
}

/* Garbage, an authentic oversized frame and a request flood: clear
 * errors, every request answered once, and the agent keeps serving. */
static void test_hostile_host(void) {
        Host h = { 0 };
        g_autofree char *log = NULL;
        uint8_t hdr[GL_FRAME_HEADER_SIZE];
        /* an authentic header declaring JSON over the 192 KiB limit */
        GlFrameHeader big = { .version = 1, .kind = GL_FRAME_MESSAGE, .flags = 1, .seq = 999, .json_len = 300000 };
        g_autofree char *junk = g_strnfill(300000, ' ');
        unsigned answered = 0, busy = 0;
        GHashTable *ids = g_hash_table_new(g_int64_hash, g_int64_equal);
        uint64_t idv[300];
        gint64 deadline;
        GlMessage *m;

        host_start(&h, "[limits]\nrequests-per-second=10\nrequest-burst=20\n[policy]\npower=deny\n");
        g_assert_cmpint(write(h.master, "\x00\xffGLNK garbage {\"execute\":\"guest-ping\"}\n", 40), ==, 40);
        gl_frame_header_pack(&big, hdr);
        g_assert_cmpint(write(h.master, hdr, sizeof(hdr)), ==, sizeof(hdr));
        for (size_t off = 0; off < 300000;) {
                ssize_t w = write(h.master, junk + off, 300000 - off);
                if (w < 0 && errno == EAGAIN)
                        continue;
                g_assert_cmpint(w, >, 0);
                off += (size_t) w;
        }
        m = call(&h, "ping", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);

        for (int i = 0; i < 100; i++) {
                g_assert_cmpint(gl_session_request(h.s, "info", NULL, NULL, 0, 0, 0, 100000, &idv[i]), ==, 0);
                g_hash_table_add(ids, &idv[i]);
        }
        deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
        while (answered < 100) {
                host_pump(&h, 50);
                while (h.messages->len > 0) {
                        m = g_ptr_array_steal_index(h.messages, 0);
                        if (m->type == GL_MSG_RESPONSE || m->type == GL_MSG_ERROR) {
                                g_assert_true(g_hash_table_remove(ids, &m->id)); /* exactly once */
                                answered++;
                                busy += m->type == GL_MSG_ERROR && m->code == GL_ERROR_BUSY;
                        }
                        gl_message_free(m);
                }
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        }
        g_test_message("%u of 100 requests refused as busy", busy);
        /* burst 20, then 10 per second: most of a 100-request flood */
        g_assert_cmpuint(busy, >=, 40);
        g_assert_cmpuint(busy, <=, 80);
        g_hash_table_unref(ids);
        log = host_stop(&h);
        g_assert_nonnull(strstr(log, "requests per second"));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/agent-channel/requests", test_requests);
        g_test_add_func("/agent-channel/denied", test_denied);
        g_test_add_func("/agent-channel/reload", test_reload);
        g_test_add_func("/agent-channel/hostile-host", test_hostile_host);
        return g_test_run();
}
