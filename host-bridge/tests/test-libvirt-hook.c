/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-libvirt-hook, run the way libvirt runs it (NAME OPERATION
 * SUBOP EXTRA, the domain XML on a pipe to its standard input) against a
 * fake bridge in this process (a GlPeer of role "bridge"), against bridges
 * that are absent, silent or refuse, and against the real guestlink-bridge.
 * The hook must exit 0 whatever happens, within its 2 s deadline.
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bridge-harness.h"
#include "peer.h"

#define WEB1_UUID "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
#define WEB1_CHANNEL "/run/libvirt/qemu/channel/3-web1/org.guestlink.agent.0"
#define WEB1_QGA "/run/libvirt/qemu/channel/3-web1/org.qemu.guest_agent.0"
#define HOOK_MAX_XML (4 * 1024 * 1024)

/* ---- a fake bridge ---- */

typedef enum FakeMode {
        FAKE_ANSWER, /* answers bridge.domain with {} */
        FAKE_REFUSE, /* answers bridge.domain with an "invalid" error */
        FAKE_SILENT, /* accepts, never says a word */
        FAKE_CLOSE,  /* accepts and closes at once */
} FakeMode;

typedef struct FakeBridge {
        char *dir, *socket;
        FakeMode mode;
        int listen_fd;
        GSource *listen_source;
        GPtrArray *peers;    /* GlPeer* */
        GArray *silent_fds;  /* FAKE_SILENT connections */
        GPtrArray *requests; /* json_object* params of each bridge.domain */
        unsigned accepted;
        char *client_role, *client_software;
} FakeBridge;

static void fake_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        FakeBridge *b = userdata;
        GlMessage *m = ev->message;

        if (ev->type == GL_SESSION_EVENT_ESTABLISHED) {
                const GlHello *h = gl_session_peer(gl_peer_session(peer));
                g_free(b->client_role);
                g_free(b->client_software);
                b->client_role = g_strdup(h->role);
                b->client_software = g_strdup(h->software);
        }
        if (ev->type == GL_SESSION_EVENT_MESSAGE && m->type == GL_MSG_REQUEST) {
                g_assert_cmpstr(m->name, ==, "bridge.domain");
                g_ptr_array_add(b->requests, json_object_get(m->body));
                if (b->mode == FAKE_REFUSE)
                        g_assert_cmpint(gl_peer_respond_error(peer, m->id, GL_ERROR_INVALID, "no \x1b thanks"), ==, 0);
                else
                        g_assert_cmpint(gl_peer_respond(peer, m->id, NULL), ==, 0);
        }
        gl_message_free(m);
}

static gboolean fake_accept(gint fd, GIOCondition cond, gpointer userdata) {
        static const char *const caps[] = { "bridge", NULL };
        FakeBridge *b = userdata;
        g_autofree char *instance = gl_peer_new_instance();
        GlSessionConfig sc = {
                .role = "bridge", .software = "fake-bridge", .instance = instance, .capabilities = caps
        };
        GlPeerCallbacks cb = { .event = fake_event };
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        GlPeer *peer;

        (void) cond;
        if (c < 0)
                return G_SOURCE_CONTINUE;
        b->accepted++;
        if (b->mode == FAKE_CLOSE) {
                close(c);
                return G_SOURCE_CONTINUE;
        }
        if (b->mode == FAKE_SILENT) {
                g_array_append_val(b->silent_fds, c);
                return G_SOURCE_CONTINUE;
        }
        peer = gl_peer_new(&sc, &cb, b);
        g_ptr_array_add(b->peers, peer);
        gl_peer_attach(peer, gl_link_new_fd(c));
        return G_SOURCE_CONTINUE;
}

static void peer_unref(gpointer p) {
        gl_peer_free(p);
}

static void json_unref(gpointer p) {
        json_object_put(p);
}

static int listen_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpuint(strlen(path), <, sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(listen(fd, 16), ==, 0);
        return fd;
}

static FakeBridge *fake_bridge_new(FakeMode mode) {
        FakeBridge *b = g_new0(FakeBridge, 1);
        g_autoptr(GError) error = NULL;

        b->dir = g_dir_make_tmp("gl-hook-XXXXXX", &error);
        g_assert_no_error(error);
        b->socket = g_build_filename(b->dir, "bridge.sock", NULL);
        b->mode = mode;
        b->listen_fd = listen_unix(b->socket);
        b->listen_source = g_unix_fd_source_new(b->listen_fd, G_IO_IN);
        g_source_set_callback(b->listen_source, G_SOURCE_FUNC(fake_accept), b, NULL);
        g_source_attach(b->listen_source, NULL);
        b->peers = g_ptr_array_new_with_free_func(peer_unref);
        b->silent_fds = g_array_new(FALSE, FALSE, sizeof(int));
        b->requests = g_ptr_array_new_with_free_func(json_unref);
        return b;
}

static void fake_bridge_free(FakeBridge *b) {
        g_source_destroy(b->listen_source);
        g_source_unref(b->listen_source);
        close(b->listen_fd);
        g_ptr_array_unref(b->peers);
        for (guint i = 0; i < b->silent_fds->len; i++)
                close(g_array_index(b->silent_fds, int, i));
        g_array_unref(b->silent_fds);
        g_ptr_array_unref(b->requests);
        g_unlink(b->socket);
        g_rmdir(b->dir);
        g_free(b->client_role);
        g_free(b->client_software);
        g_free(b->socket);
        g_free(b->dir);
        g_free(b);
}

/* ---- running the hook ---- */

typedef struct HookRun {
        char *out, *err;
        double seconds;
} HookRun;

static void hook_run_free(HookRun *r) {
        g_free(r->out);
        g_free(r->err);
        g_free(r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HookRun, hook_run_free)

typedef struct Feed {
        GOutputStream *in;
        const char *data;
        size_t len;
} Feed;

/* libvirt writes the XML from a buffer; a hook that stops reading early
 * makes the write fail (EPIPE, SIGPIPE is ignored), which is fine. */
static gpointer feed_stdin(gpointer userdata) {
        Feed *f = userdata;

        (void) g_output_stream_write_all(f->in, f->data, f->len, NULL, NULL, NULL);
        (void) g_output_stream_close(f->in, NULL, NULL);
        return NULL;
}

static void waited(GObject *source, GAsyncResult *result, gpointer userdata) {
        bool *done = userdata;

        g_assert_true(g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL));
        *done = true;
}

static char *read_file(const char *path) {
        char *text = NULL;

        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        return text;
}

/* Runs the hook with argv (NULL-terminated, after the program) and xml
 * (len bytes) on standard input, serving the main context meanwhile.
 * Asserts that it exited with status 0. */
static HookRun *run_hook(const char *bridge_socket, const char *channel, const char *const *args, const char *xml,
                         size_t len) {
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) p = NULL;
        g_autofree char *dir = g_dir_make_tmp("gl-hook-run-XXXXXX", &error);
        g_autofree char *out = g_build_filename(dir, "stdout", NULL);
        g_autofree char *err = g_build_filename(dir, "stderr", NULL);
        HookRun *r = g_new0(HookRun, 1);
        Feed feed = { .data = xml, .len = len };
        GThread *feeder;
        bool done = false;
        gint64 start;

        g_assert_no_error(error);
        g_ptr_array_add(argv, (char *) g_getenv("GL_HOOK_BINARY"));
        g_assert_nonnull(argv->pdata[0]);
        for (size_t i = 0; args[i]; i++)
                g_ptr_array_add(argv, (char *) args[i]);
        g_ptr_array_add(argv, NULL);
        g_subprocess_launcher_set_stdout_file_path(l, out);
        g_subprocess_launcher_set_stderr_file_path(l, err);
        g_subprocess_launcher_setenv(l, "GUESTLINK_BRIDGE_SOCKET", bridge_socket, TRUE);
        if (channel)
                g_subprocess_launcher_setenv(l, "GUESTLINK_CHANNEL", channel, TRUE);
        else
                g_subprocess_launcher_unsetenv(l, "GUESTLINK_CHANNEL");
        start = g_get_monotonic_time();
        p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        feed.in = g_subprocess_get_stdin_pipe(p);
        feeder = g_thread_new("feed-stdin", feed_stdin, &feed);
        g_subprocess_wait_async(p, NULL, waited, &done);
        while (!done)
                g_main_context_iteration(NULL, TRUE);
        r->seconds = (double) (g_get_monotonic_time() - start) / G_USEC_PER_SEC;
        g_thread_join(feeder);
        g_assert_true(g_subprocess_get_if_exited(p));
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
        r->out = read_file(out);
        r->err = read_file(err);
        g_unlink(out);
        g_unlink(err);
        g_rmdir(dir);
        return r;
}

static char *load_fixture(const char *name) {
        g_autofree char *path = g_build_filename(g_getenv("GL_TEST_DATA"), name, NULL);

        return read_file(path);
}

/* Runs the main context a little longer, so that anything the hook left
 * in flight reaches the fake bridge before the test counts. */
static void settle(int ms) {
        gint64 end = g_get_monotonic_time() + (gint64) ms * 1000;

        while (g_get_monotonic_time() < end)
                if (!g_main_context_iteration(NULL, FALSE))
                        g_usleep(1000);
}

static void assert_silent(const HookRun *r) {
        g_assert_cmpstr(r->out, ==, "");
        g_assert_cmpstr(r->err, ==, "");
}

/* Exactly one line on stderr, containing each of the needles. */
static void assert_one_line(const HookRun *r, const char *const *needles) {
        const char *nl = strchr(r->err, '\n');

        g_assert_cmpstr(r->out, ==, "");
        if (!g_str_has_prefix(r->err, "guestlink-libvirt-hook: ") || !nl || nl[1] != '\0')
                g_error("expected one line on stderr, got \"%s\"", r->err);
        for (size_t i = 0; needles[i]; i++)
                if (!strstr(r->err, needles[i]))
                        g_error("stderr \"%s\" lacks \"%s\"", r->err, needles[i]);
}

static void assert_params(json_object *params, const char *operation, const char *channel_path) {
        g_autoptr(json_object) want = json_object_new_object();

        json_object_object_add(want, "name", json_object_new_string("web1"));
        json_object_object_add(want, "uuid", json_object_new_string(WEB1_UUID));
        json_object_object_add(want, "operation", json_object_new_string(operation));
        json_object_object_add(want, "channel_path", json_object_new_string(channel_path));
        if (!json_object_equal(params, want))
                g_error("bridge.domain params %s, want %s", json_object_to_json_string(params),
                        json_object_to_json_string(want));
}

/* ---- (1) announcements ---- */

static void test_announce(void) {
        static const struct {
                const char *operation, *announced;
        } cases[] = {
                { "started", "started" }, { "reconnect", "started" }, { "attach", "started" },
                { "stopped", "stopped" }, { "release", "stopped" },
        };
        g_autofree char *xml = load_fixture("libvirt-hook-web1.xml");
        g_autofree char *other = load_fixture("libvirt-hook-no-channel.xml");

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                FakeBridge *b = fake_bridge_new(FAKE_ANSWER);
                const char *args[] = { "web1", cases[i].operation, "begin", "-", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, xml, strlen(xml));

                assert_silent(r);
                settle(50);
                g_assert_cmpuint(b->accepted, ==, 1);
                g_assert_cmpuint(b->requests->len, ==, 1);
                assert_params(b->requests->pdata[0], cases[i].announced, WEB1_CHANNEL);
                g_assert_cmpstr(b->client_role, ==, "client");
                g_assert_cmpstr(b->client_software, ==, "guestlink-libvirt-hook " GL_VERSION_FOR_TESTS);
                fake_bridge_free(b);
        }

        /* GUESTLINK_CHANNEL picks another channel */
        {
                FakeBridge *b = fake_bridge_new(FAKE_ANSWER);
                const char *args[] = { "web1", "started", "begin", "-", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, "org.qemu.guest_agent.0", args, xml, strlen(xml));

                assert_silent(r);
                settle(50);
                g_assert_cmpuint(b->requests->len, ==, 1);
                assert_params(b->requests->pdata[0], "started", WEB1_QGA);
                fake_bridge_free(b);
        }

        /* connect mode, a DOCTYPE with its own entity, unknown entities and
         * a stray ampersand: all tolerated */
        {
                FakeBridge *b = fake_bridge_new(FAKE_ANSWER);
                const char *args[] = { "web1", "started", "begin", "-", NULL };
                g_autoptr(GString) s = g_string_new(xml);
                g_autoptr(HookRun) r = NULL;

                g_assert_cmpuint(g_string_replace(s, "<source mode='bind' path='" WEB1_CHANNEL "'/>",
                                                  "<source mode='connect' path='" WEB1_CHANNEL
                                                  "'><reconnect enabled='yes' timeout='5'/></source>",
                                                  1),
                                 ==, 1);
                g_assert_cmpuint(g_string_replace(s, "<description>",
                                                  "<description>&site; &nbsp; R&D &#233; &#xe9; &amp &#; ", 1),
                                 ==, 1);
                g_string_prepend(s, "<?xml version='1.0'?>\n<!DOCTYPE domain [<!ENTITY site 'example'>]>\n");
                r = run_hook(b->socket, NULL, args, s->str, s->len);
                assert_silent(r);
                settle(50);
                g_assert_cmpuint(b->requests->len, ==, 1);
                assert_params(b->requests->pdata[0], "started", WEB1_CHANNEL);
                fake_bridge_free(b);
        }

        /* only <domain>'s own <name> and <uuid> and the first matching
         * <domain><devices><channel> count */
        {
                static const char minimal[] =
                        "<domain><metadata><x:app xmlns:x='urn:x'><name>decoy</name><uuid>"
                        "00000000-0000-0000-0000-000000000000</uuid></x:app></metadata>"
                        "<name>web1</name><uuid>" WEB1_UUID "</uuid><name>second</name><uuid/>"
                        "<devices><channel type='pty'><source path='/dev/pts/9'/>"
                        "<target type='virtio' name='org.guestlink.agent.0'/></channel>"
                        "<channel type='unix'><target type='virtio' name='org.guestlink.agent.0'/>"
                        "<source path='" WEB1_CHANNEL "'/></channel>"
                        "<channel type='unix'><source path='/second'/>"
                        "<target type='virtio' name='org.guestlink.agent.0'/></channel></devices></domain>";
                FakeBridge *b = fake_bridge_new(FAKE_ANSWER);
                const char *args[] = { "web1", "started", "begin", "-", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, minimal, strlen(minimal));

                assert_silent(r);
                settle(50);
                g_assert_cmpuint(b->requests->len, ==, 1);
                assert_params(b->requests->pdata[0], "started", WEB1_CHANNEL);
                fake_bridge_free(b);
        }

        /* a domain without the guestlink channel is none of ours: silence */
        for (size_t i = 0; i < 2; i++) {
                FakeBridge *b = fake_bridge_new(FAKE_ANSWER);
                const char *args[] = { "db2", i == 0 ? "started" : "stopped", "end", "-", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, other, strlen(other));

                assert_silent(r);
                settle(50);
                g_assert_cmpuint(b->accepted, ==, 0);
                fake_bridge_free(b);
        }
}

/* ---- (2) operations that are none of the bridge's business ---- */

static void test_other_operations(void) {
        static const char *const operations[] = { "prepare", "start", "migrate", "restore", "shutdown", "" };
        g_autofree char *xml = load_fixture("libvirt-hook-web1.xml");
        /* not even parsed: garbage, and more than a pipe buffer of it */
        g_autofree char *garbage = g_strnfill(1024 * 1024, '<');

        for (size_t i = 0; i < G_N_ELEMENTS(operations); i++) {
                FakeBridge *b = fake_bridge_new(FAKE_ANSWER);
                const char *args[] = { "web1", operations[i], "begin", "-", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, xml, strlen(xml));
                g_autoptr(HookRun) r2 = run_hook(b->socket, NULL, args, garbage, strlen(garbage));

                assert_silent(r);
                assert_silent(r2);
                settle(50);
                g_assert_cmpuint(b->accepted, ==, 0);
                fake_bridge_free(b);
        }
        /* run by hand without arguments: a usage line, still 0 */
        {
                FakeBridge *b = fake_bridge_new(FAKE_ANSWER);
                const char *args[] = { NULL };
                const char *needles[] = { "usage:", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, xml, strlen(xml));

                assert_one_line(r, needles);
                g_assert_cmpuint(b->accepted, ==, 0);
                fake_bridge_free(b);
        }
}

/* ---- (3) no bridge ---- */

static void test_no_bridge(void) {
        g_autofree char *xml = load_fixture("libvirt-hook-web1.xml");
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("gl-hook-XXXXXX", &error);
        g_autofree char *missing = g_build_filename(dir, "missing.sock", NULL);
        g_autofree char *stale = g_build_filename(dir, "stale.sock", NULL);
        g_autofree char *too_long = g_strnfill(200, 'x');
        const char *args[] = { "web1", "started", "begin", "-", NULL };
        struct {
                const char *socket, *error;
        } cases[] = {
                { missing, g_strerror(ENOENT) },
                { stale, g_strerror(ECONNREFUSED) },
                { too_long, g_strerror(ENAMETOOLONG) },
        };

        g_assert_no_error(error);
        close(listen_unix(stale)); /* the file stays, nobody listens */
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *where = g_strdup_printf("bridge not reachable at %s: %s", cases[i].socket,
                                                         cases[i].error);
                const char *needles[] = { where, "; domain web1 not announced", NULL };
                g_autoptr(HookRun) r = run_hook(cases[i].socket, NULL, args, xml, strlen(xml));

                assert_one_line(r, needles);
                g_assert_cmpfloat(r->seconds, <, 3.0);
        }
        g_unlink(stale);
        g_rmdir(dir);
}

/* ---- (4) a bridge that accepts but does not answer, or refuses ---- */

static void test_unresponsive_bridge(void) {
        g_autofree char *xml = load_fixture("libvirt-hook-web1.xml");
        const char *args[] = { "web1", "started", "begin", "-", NULL };

        {
                FakeBridge *b = fake_bridge_new(FAKE_SILENT);
                g_autofree char *where = g_strdup_printf("bridge at %s did not answer within 2000 ms", b->socket);
                const char *needles[] = { where, "; domain web1 not announced", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, xml, strlen(xml));

                assert_one_line(r, needles);
                g_assert_cmpuint(b->accepted, ==, 1);
                g_assert_cmpfloat(r->seconds, >=, 1.9);
                g_assert_cmpfloat(r->seconds, <, 3.0);
                fake_bridge_free(b);
        }
        {
                FakeBridge *b = fake_bridge_new(FAKE_CLOSE);
                g_autofree char *where = g_strdup_printf("bridge at %s closed the connection", b->socket);
                const char *needles[] = { where, "; domain web1 not announced", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, xml, strlen(xml));

                assert_one_line(r, needles);
                g_assert_cmpfloat(r->seconds, <, 1.5);
                fake_bridge_free(b);
        }
        {
                FakeBridge *b = fake_bridge_new(FAKE_REFUSE);
                /* the bridge's message reaches the log sanitised */
                const char *needles[] = { "refused bridge.domain: invalid: no \\x1b thanks",
                                          "; domain web1 not announced", NULL };
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, xml, strlen(xml));

                assert_one_line(r, needles);
                g_assert_cmpuint(b->requests->len, ==, 1);
                fake_bridge_free(b);
        }
}

/* ---- (5) bad input ---- */

static void test_bad_input(void) {
        static const struct {
                const char *xml;
                size_t len; /* 0: strlen */
                const char *why;
        } cases[] = {
                { "this is not XML", 0, "Document must begin with an element" },
                { "<domain><name>web1</name><uuid>" WEB1_UUID "</uuid>", 0, "Document ended unexpectedly" },
                { "<network><name>web1</name></network>", 0, "not a domain XML: top-level element <network>" },
                { "<domain><name>web1</name></domain><domain/>", 0, "not a domain XML" },
                { "<domain><name>web1</name></domain>", 0, "no <name> or <uuid>" },
                { "<domain><name>web1\xff</name></domain>", 0, "UTF-8" },
                { "<domain><name>web1</name>\0<uuid/></domain>", 42, "NUL byte" },
                { "", 0, "no domain XML" },
        };
        g_autofree char *xml = load_fixture("libvirt-hook-web1.xml");
        const char *args[] = { "web1", "started", "begin", "-", NULL };
        FakeBridge *b = fake_bridge_new(FAKE_ANSWER);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                const char *needles[] = { "cannot parse the domain XML of web1: ", cases[i].why,
                                          "; domain not announced", NULL };
                size_t len = cases[i].len ? cases[i].len : strlen(cases[i].xml);
                g_autoptr(HookRun) r = run_hook(b->socket, NULL, args, cases[i].xml, len);

                assert_one_line(r, needles);
        }
        /* the size limit: one byte over is refused, exactly at it is fine */
        for (size_t i = 0; i < 2; i++) {
                size_t want = HOOK_MAX_XML + (i == 0 ? 1 : 0);
                g_autoptr(GString) s = g_string_new(xml);
                g_autofree char *pad = NULL;
                g_autoptr(HookRun) r = NULL;
                const char *needles[] = { "domain XML of web1 is larger than 4194304 bytes", NULL };

                pad = g_strnfill(want - s->len, 'x');
                g_assert_nonnull(strstr(s->str, "<description>"));
                g_string_insert(s, (gssize) (strstr(s->str, "<description>") - s->str) + 13, pad);
                g_assert_cmpuint(s->len, ==, want);
                r = run_hook(b->socket, NULL, args, s->str, s->len);
                if (i == 0) {
                        assert_one_line(r, needles);
                        continue;
                }
                assert_silent(r);
                settle(50);
                g_assert_cmpuint(b->requests->len, ==, 1);
                assert_params(b->requests->pdata[0], "started", WEB1_CHANNEL);
        }
        settle(50);
        g_assert_cmpuint(b->accepted, ==, 1); /* only the one at the limit */
        fake_bridge_free(b);
}

/* ---- (6) with the real guestlink-bridge ---- */

typedef struct Channel {
        int listen_fd, conn_fd;
        unsigned connects;
        bool closed; /* the bridge closed its connection */
} Channel;

static gboolean channel_readable(gint fd, GIOCondition cond, gpointer userdata) {
        Channel *c = userdata;
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof(buf));

        (void) cond;
        if (n > 0 || (n < 0 && errno == EAGAIN))
                return G_SOURCE_CONTINUE; /* the bridge's HELLOs; no agent here */
        c->closed = true;
        return G_SOURCE_REMOVE;
}

static gboolean channel_accept(gint fd, GIOCondition cond, gpointer userdata) {
        Channel *c = userdata;
        int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        (void) cond;
        if (conn < 0)
                return G_SOURCE_CONTINUE;
        if (c->conn_fd >= 0)
                close(c->conn_fd);
        c->conn_fd = conn;
        c->connects++;
        c->closed = false;
        g_unix_fd_add(conn, G_IO_IN | G_IO_HUP | G_IO_ERR, channel_readable, c);
        return G_SOURCE_CONTINUE;
}

static bool channel_connected(Harness *h, void *data) {
        (void) h;
        return ((Channel *) data)->connects > 0;
}

static bool channel_closed(Harness *h, void *data) {
        (void) h;
        return ((Channel *) data)->closed;
}

static const char *member(json_object *o, const char *name) {
        json_object *v;

        return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : NULL;
}

static void test_bridge(void) {
        Harness *h = harness_new(NULL);
        g_autofree char *fixture = load_fixture("libvirt-hook-web1.xml");
        g_autofree char *path = g_build_filename(h->dir, "3-web1.guestlink.sock", NULL);
        g_autoptr(GString) xml = g_string_new(fixture);
        Channel ch = { .conn_fd = -1 };
        guint watch;

        /* the domain's channel socket, as QEMU would listen on it */
        g_assert_cmpuint(g_string_replace(xml, WEB1_CHANNEL, path, 0), ==, 1);
        ch.listen_fd = listen_unix(path);
        watch = g_unix_fd_add(ch.listen_fd, G_IO_IN, channel_accept, &ch);
        harness_start_bridge(h); /* [libvirt] enabled=false */
        harness_connect_client(h);
        g_assert_null(harness_list_guest(h, "web1"));

        {
                const char *args[] = { "web1", "started", "begin", "-", NULL };
                g_autoptr(HookRun) r = run_hook(h->socket, NULL, args, xml->str, xml->len);
                g_autoptr(json_object) g = NULL;

                assert_silent(r);
                g = harness_list_guest(h, "web1");
                g_assert_nonnull(g);
                g_assert_cmpstr(member(g, "source"), ==, "libvirt");
                g_assert_cmpstr(member(g, "uuid"), ==, WEB1_UUID);
                g_assert_cmpstr(member(g, "transport"), ==, "socket");
                harness_wait(h, 10000, channel_connected, &ch, "the bridge to connect to the channel socket");
                g_assert_cmpuint(ch.connects, ==, 1);
        }
        {
                /* libvirtd restarted: the guest stays, no second connection */
                const char *args[] = { "web1", "reconnect", "begin", "-", NULL };
                g_autoptr(HookRun) r = run_hook(h->socket, NULL, args, xml->str, xml->len);
                g_autoptr(json_object) g = NULL;

                assert_silent(r);
                g = harness_list_guest(h, "web1");
                g_assert_nonnull(g);
                harness_run(h, 200);
                g_assert_cmpuint(ch.connects, ==, 1);
        }
        {
                const char *args[] = { "web1", "stopped", "end", "-", NULL };
                g_autoptr(HookRun) r = run_hook(h->socket, NULL, args, xml->str, xml->len);

                assert_silent(r);
                g_assert_null(harness_list_guest(h, "web1"));
                harness_wait(h, 10000, channel_closed, &ch, "the bridge to close the channel socket");
        }
        /* the bridge's audit trail names the hook's calls */
        {
                g_autofree char *log = harness_bridge_log(h);
                g_autofree char *needle = g_strdup_printf("uid=%u pid=", (unsigned) getuid());
                const char *ops[] = { "started", "stopped" };

                g_assert_nonnull(strstr(log, needle));
                for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
                        g_autofree char *call = g_strdup_printf(
                                ": bridge.domain {\"name\":\"web1\",\"uuid\":\"%s\",\"operation\":\"%s\"", WEB1_UUID,
                                ops[i]);
                        if (!strstr(log, call))
                                g_error("bridge log lacks \"%s\": %s", call, log);
                }
        }
        g_source_remove(watch);
        if (ch.conn_fd >= 0)
                close(ch.conn_fd);
        close(ch.listen_fd);
        harness_free(h);
}

int main(int argc, char **argv) {
        /* the feeder writes to hooks that may stop reading */
        (void) signal(SIGPIPE, SIG_IGN);
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/libvirt-hook/announce", test_announce);
        g_test_add_func("/libvirt-hook/other-operations", test_other_operations);
        g_test_add_func("/libvirt-hook/no-bridge", test_no_bridge);
        g_test_add_func("/libvirt-hook/unresponsive-bridge", test_unresponsive_bridge);
        g_test_add_func("/libvirt-hook/bad-input", test_bad_input);
        g_test_add_func("/libvirt-hook/bridge", test_bridge);
        return g_test_run();
}
