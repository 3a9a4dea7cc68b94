/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The metrics renderer against golden files and promtool, and the HTTP endpoint. */
#include <gio/gio.h>
#include <libsoup/soup.h>
#include <stdlib.h>
#include <string.h>

#include "metrics-test-data.h"
#include "metrics.h"

static const struct {
        GlMetricsFormat format;
        const char *golden;
} goldens[] = {
        { GL_METRICS_FORMAT_OPENMETRICS, "metrics-openmetrics.txt" },
        { GL_METRICS_FORMAT_TEXT, "metrics-text.txt" },
};

static char *render(MetricsTestData *d, GlMetricsFormat format) {
        return gl_metrics_render((const GlMetricsGuest *) (void *) d->guests->data, d->guests->len, &d->bridge, format);
}

static void test_golden(void) {
        g_autoptr(MetricsTestData) d = metrics_test_data_new();

        for (size_t i = 0; i < G_N_ELEMENTS(goldens); i++) {
                g_autofree char *path = metrics_test_data_path(goldens[i].golden);
                g_autofree char *text = render(d, goldens[i].format);
                g_autofree char *want = NULL;
                g_autoptr(GError) error = NULL;

                /* GL_TEST_UPDATE_GOLDEN=1 rewrites the files: review the diff. */
                if (g_getenv("GL_TEST_UPDATE_GOLDEN"))
                        g_assert_true(g_file_set_contents(path, text, -1, NULL));
                g_assert_true(g_file_get_contents(path, &want, NULL, &error));
                g_assert_no_error(error);
                g_assert_cmpstr(text, ==, want);
        }
}

/* promtool lints the Prometheus text format only (prometheus#8932): it
 * cannot parse OpenMetrics counter families.  The text rendering has the
 * same families, names, labels and values, so it is what we lint; the
 * OpenMetrics rendering is parsed by a real Prometheus in the scrape test. */
static void test_promtool(void) {
        g_autoptr(MetricsTestData) d = metrics_test_data_new();
        g_autofree char *text = render(d, GL_METRICS_FORMAT_TEXT);
        g_autofree char *promtool = g_find_program_in_path("promtool");
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL, *err = NULL;

        if (!promtool) {
                if (g_getenv("CI"))
                        g_error("promtool is missing (install prometheus)");
                g_print("promtool missing, skipping\n");
                exit(77);
        }
        p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                     G_SUBPROCESS_FLAGS_STDERR_PIPE,
                             &error, promtool, "check", "metrics", NULL);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(p, text, NULL, &out, &err, &error));
        g_assert_no_error(error);
        if (!g_subprocess_get_if_exited(p) || g_subprocess_get_exit_status(p) != 0 || *out || *err)
                g_error("promtool complains:\n%s%s", out, err);

        /* And promtool does fail on a broken exposition (the check can fail). */
        g_clear_object(&p);
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);
        p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                     G_SUBPROCESS_FLAGS_STDERR_PIPE,
                             &error, promtool, "check", "metrics", NULL);
        g_assert_true(
                g_subprocess_communicate_utf8(p, "# TYPE x_bytes counter\nx_bytes 1\n", NULL, &out, &err, &error));
        g_assert_cmpint(g_subprocess_get_exit_status(p), !=, 0);
}

static void test_untrusted_labels(void) {
        GlMetricsGuest g = { .name = "a\xff\x01\"b\\\n\xc2\x85z\xe2\x82", .state = "connected" };
        GlMetricsBridge b = { 0 };
        g_autofree char *text = gl_metrics_render(&g, 1, &b, GL_METRICS_FORMAT_OPENMETRICS);

        /* invalid UTF-8, C0 and C1 controls dropped; \ " newline escaped */
        g_assert_nonnull(strstr(text, "\nguestlink_guest_up{guest=\"a\\\"b\\\\\\nz\"} 1\n"));
        g_assert_true(g_str_has_suffix(text, "\n# EOF\n"));
        g_assert_null(strstr(text, "\xff"));
        g_assert_null(strstr(text, "\x01"));
}

/* At most GL_METRICS_MAX_ENTRIES entries per list and guest; long label
 * values are cut. */
static void test_bounds(void) {
        g_autoptr(json_object) stats = json_object_new_object();
        json_object *net = json_object_new_array();
        g_autofree char *longname = g_strnfill(1000, 'x');
        GlMetricsGuest g = { .name = longname, .state = "connected", .stats = stats };
        GlMetricsBridge b = { 0 };
        g_autofree char *text = NULL;
        g_autofree char *cut = g_strnfill(GL_METRICS_MAX_LABEL_BYTES, 'x');
        g_autofree char *want = g_strdup_printf("guestlink_guest_up{guest=\"%s\"} 1\n", cut);
        unsigned n = 0;

        json_object_object_add(stats, "network", net);
        for (int i = 0; i < 300; i++) {
                json_object *e = json_object_new_object();
                char name[16];

                g_snprintf(name, sizeof(name), "e%03d", i);
                json_object_object_add(e, "name", json_object_new_string(name));
                json_object_object_add(e, "rx_bytes", json_object_new_int64(i));
                json_object_array_add(net, e);
        }
        text = gl_metrics_render(&g, 1, &b, GL_METRICS_FORMAT_OPENMETRICS);
        g_assert_nonnull(strstr(text, want));
        for (const char *p = text; (p = strstr(p, "\nguestlink_guest_network_receive_bytes_total{")); p++)
                n++;
        g_assert_cmpuint(n, ==, GL_METRICS_MAX_ENTRIES);
        g_assert_nonnull(strstr(text, ",interface=\"e255\"} 255\n"));
        g_assert_null(strstr(text, "e256"));
}

static void test_negotiate(void) {
        static const struct {
                const char *accept;
                GlMetricsFormat want;
        } cases[] = {
                { NULL, GL_METRICS_FORMAT_OPENMETRICS },
                { "*/*", GL_METRICS_FORMAT_OPENMETRICS },
                { "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                  GL_METRICS_FORMAT_OPENMETRICS },
                { "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", GL_METRICS_FORMAT_TEXT },
                { "text/plain", GL_METRICS_FORMAT_TEXT },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
                g_assert_cmpint(gl_metrics_negotiate(cases[i].accept), ==, cases[i].want);
}

static void test_parse_address(void) {
        static const struct {
                const char *text;
                const char *host; /* NULL: invalid */
                guint16 port;
        } cases[] = {
                { "127.0.0.1:9847", "127.0.0.1", 9847 },
                { "[::1]:9847", "::1", 9847 },
                { "0.0.0.0:0", "0.0.0.0", 0 },
                { "127.0.0.1", NULL, 0 },
                { "localhost:9847", NULL, 0 },
                { "[::1]9847", NULL, 0 },
                { "::1:9847", NULL, 0 },
                { "127.0.0.1:65536", NULL, 0 },
                { "127.0.0.1:-1", NULL, 0 },
                { "[127.0.0.1]:80", NULL, 0 },
                { "", NULL, 0 },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GSocketAddress) a = gl_metrics_parse_address(cases[i].text, &error);

                if (!cases[i].host) {
                        g_assert_null(a);
                        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
                } else {
                        g_autofree char *host = NULL;

                        g_assert_no_error(error);
                        host = g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(a)));
                        g_assert_cmpstr(host, ==, cases[i].host);
                        g_assert_cmpuint(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(a)), ==, cases[i].port);
                }
        }
}

typedef struct Fetch {
        GMainLoop *loop;
        GBytes *body;
        GError *error;
} Fetch;

static void on_fetched(GObject *source, GAsyncResult *result, void *userdata) {
        Fetch *f = userdata;

        f->body = soup_session_send_and_read_finish(SOUP_SESSION(source), result, &f->error);
        g_main_loop_quit(f->loop);
}

/* One request through the main loop that also runs the server. */
static char *fetch(SoupSession *session, const char *method, guint16 port, const char *path, const char *accept,
                   guint *ret_status, char **ret_content_type) {
        g_autofree char *uri = g_strdup_printf("http://127.0.0.1:%u%s", port, path);
        g_autoptr(SoupMessage) msg = soup_message_new(method, uri);
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
        Fetch f = { .loop = loop };
        const char *ct;
        gsize len;
        char *text;

        if (accept)
                soup_message_headers_replace(soup_message_get_request_headers(msg), "Accept", accept);
        soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, NULL, on_fetched, &f);
        g_main_loop_run(loop);
        g_assert_no_error(f.error);
        *ret_status = soup_message_get_status(msg);
        ct = soup_message_headers_get_one(soup_message_get_response_headers(msg), "Content-Type");
        *ret_content_type = g_strdup(ct);
        len = g_bytes_get_size(f.body);
        text = len ? g_strndup(g_bytes_get_data(f.body, NULL), len) : g_strdup("");
        g_assert_cmpuint(strlen(text), ==, len);
        g_bytes_unref(f.body);
        return text;
}

static void snapshot(void *userdata, GArray *guests, GlMetricsBridge *bridge) {
        MetricsTestData *d = userdata;

        g_array_append_vals(guests, d->guests->data, d->guests->len);
        *bridge = d->bridge;
}

static void test_http(void) {
        g_autoptr(MetricsTestData) d = metrics_test_data_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GlMetrics) m = gl_metrics_new("127.0.0.1:0", snapshot, d, &error);
        g_autoptr(SoupSession) session = soup_session_new();
        g_autofree char *want_om = render(d, GL_METRICS_FORMAT_OPENMETRICS);
        g_autofree char *want_text = render(d, GL_METRICS_FORMAT_TEXT);
        static const struct {
                const char *method, *path, *accept;
                guint status;
                const char *content_type; /* NULL: no body checked */
        } cases[] = {
                { "GET", "/metrics", NULL, 200, GL_METRICS_CONTENT_TYPE_OPENMETRICS },
                { "GET", "/metrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", 200,
                  GL_METRICS_CONTENT_TYPE_OPENMETRICS },
                { "GET", "/metrics", "text/plain;version=0.0.4", 200, GL_METRICS_CONTENT_TYPE_TEXT },
                { "GET", "/", NULL, 404, NULL },
                { "GET", "/metrics/x", NULL, 404, NULL },
                { "POST", "/metrics", NULL, 405, NULL },
                { "HEAD", "/metrics", NULL, 200, NULL },
        };

        g_assert_no_error(error);
        g_assert_nonnull(m);
        g_assert_cmpuint(gl_metrics_port(m), >, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *ct = NULL;
                guint status = 0;
                g_autofree char *body = fetch(session, cases[i].method, gl_metrics_port(m), cases[i].path,
                                              cases[i].accept, &status, &ct);

                g_assert_cmpuint(status, ==, cases[i].status);
                if (!cases[i].content_type)
                        continue;
                g_assert_cmpstr(ct, ==, cases[i].content_type);
                g_assert_cmpstr(body, ==,
                                strcmp(cases[i].content_type, GL_METRICS_CONTENT_TYPE_TEXT) == 0 ? want_text : want_om);
        }
        g_assert_cmpuint(gl_metrics_scrapes(m), ==, 4);

        /* The port is taken now: a second endpoint on it fails cleanly. */
        {
                g_autofree char *addr = g_strdup_printf("127.0.0.1:%u", gl_metrics_port(m));
                g_autoptr(GError) e2 = NULL;
                g_autoptr(GlMetrics) m2 = gl_metrics_new(addr, snapshot, d, &e2);

                g_assert_null(m2);
                g_assert_nonnull(e2);
        }
        g_assert_null(gl_metrics_free(NULL));

        /* Closed connections release their objects from the main context. */
        g_clear_object(&session);
        {
                gint64 until = g_get_monotonic_time() + G_USEC_PER_SEC / 5;

                while (g_get_monotonic_time() < until)
                        g_main_context_iteration(NULL, FALSE);
        }
        m = gl_metrics_free(m);
        for (int i = 0; i < 100; i++)
                g_main_context_iteration(NULL, FALSE);
}

int main(int argc, char **argv) {
        /* no libproxy (GIO's default resolver module): it throws C++
         * exceptions, which an ASan build of this test cannot intercept */
        g_setenv("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/metrics/golden", test_golden);
        g_test_add_func("/metrics/promtool", test_promtool);
        g_test_add_func("/metrics/untrusted-labels", test_untrusted_labels);
        g_test_add_func("/metrics/bounds", test_bounds);
        g_test_add_func("/metrics/negotiate", test_negotiate);
        g_test_add_func("/metrics/parse-address", test_parse_address);
        g_test_add_func("/metrics/http", test_http);
        return g_test_run();
}
