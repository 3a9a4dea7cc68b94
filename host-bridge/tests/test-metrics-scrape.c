/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A real scrape: Debian's prometheus scrapes the endpoint every second
 * (negotiating OpenMetrics, so its OpenMetrics parser checks our output)
 * and we ask its HTTP API for the series.  Skipped (77) without
 * /usr/bin/prometheus unless $CI is set.
 */
#include <gio/gio.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "metrics-test-data.h"
#include "metrics.h"

#define DEADLINE_US (60 * G_USEC_PER_SEC)

static void snapshot(void *userdata, GArray *guests, GlMetricsBridge *bridge) {
        MetricsTestData *d = userdata;

        g_array_append_vals(guests, d->guests->data, d->guests->len);
        *bridge = d->bridge;
}

static guint16 free_port(void) {
        g_autoptr(GSocket) s = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
        g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
        g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
        g_autoptr(GSocketAddress) bound = NULL;

        g_assert_nonnull(s);
        g_assert_true(g_socket_bind(s, any, TRUE, NULL));
        bound = g_socket_get_local_address(s, NULL);
        return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

typedef struct Fetch {
        GMainLoop *loop;
        GBytes *body;
} Fetch;

static void on_fetched(GObject *source, GAsyncResult *result, void *userdata) {
        Fetch *f = userdata;

        f->body = soup_session_send_and_read_finish(SOUP_SESSION(source), result, NULL);
        g_main_loop_quit(f->loop);
}

static gboolean on_tick(void *userdata) {
        g_main_loop_quit(userdata);
        return G_SOURCE_REMOVE;
}

/* Runs the loop (and so the endpoint) for ms. */
static void run_for(guint ms) {
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);

        g_timeout_add(ms, on_tick, loop);
        g_main_loop_run(loop);
}

/* The API's answer to a query as guest label -> value, or NULL. */
static GHashTable *query(SoupSession *session, guint16 port, const char *promql) {
        g_autofree char *escaped = g_uri_escape_string(promql, NULL, FALSE);
        g_autofree char *uri = g_strdup_printf("http://127.0.0.1:%u/api/v1/query?query=%s", port, escaped);
        g_autoptr(SoupMessage) msg = soup_message_new("GET", uri);
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
        g_autoptr(GHashTable) series = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        json_object *root, *data, *result;
        Fetch f = { .loop = loop };

        soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, NULL, on_fetched, &f);
        g_main_loop_run(loop);
        if (!f.body)
                return NULL;
        root = json_tokener_parse(g_bytes_get_data(f.body, NULL) ? g_bytes_get_data(f.body, NULL) : "");
        g_bytes_unref(f.body);
        if (!json_object_object_get_ex(root, "data", &data) || !json_object_object_get_ex(data, "result", &result) ||
            !json_object_is_type(result, json_type_array)) {
                json_object_put(root);
                return NULL;
        }
        for (size_t i = 0; i < json_object_array_length(result); i++) {
                json_object *s = json_object_array_get_idx(result, i), *metric, *guest, *value;

                if (json_object_object_get_ex(s, "metric", &metric) &&
                    json_object_object_get_ex(metric, "guest", &guest) && json_object_object_get_ex(s, "value", &value))
                        g_hash_table_insert(series, g_strdup(json_object_get_string(guest)),
                                            g_strdup(json_object_get_string(json_object_array_get_idx(value, 1))));
        }
        json_object_put(root);
        return g_steal_pointer(&series);
}

static bool series_equal(GHashTable *got, const char *const *want) {
        size_t n = 0;

        for (; want[n]; n += 2)
                if (g_strcmp0(g_hash_table_lookup(got, want[n]), want[n + 1]) != 0)
                        return false;
        return g_hash_table_size(got) == n / 2;
}

int main(void) {
        static const char *const want_up[] = {
                "alpha", "1", "beta", "0", "we\"ird\\\nname[31m", "0", NULL,
        };
        static const char *const want_frames[] = {
                "alpha", "1234", "beta", "0", "we\"ird\\\nname[31m", "10", NULL,
        };
        const char *prometheus = "/usr/bin/prometheus";
        g_autoptr(MetricsTestData) d = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GlMetrics) m = NULL;
        g_autoptr(SoupSession) session = NULL;
        g_autoptr(GSubprocess) proc = NULL;
        g_autofree char *dir = NULL, *config = NULL, *config_path = NULL, *listen = NULL, *tsdb = NULL;
        g_autofree char *tsdb_arg = NULL, *config_arg = NULL;
        g_autoptr(GHashTable) up = NULL, frames = NULL;
        gint64 deadline;
        guint16 port;
        bool ok = false;

        g_setenv("GIO_USE_PROXY_RESOLVER", "dummy", TRUE); /* no libproxy: see test-metrics.c */

        if (!g_file_test(prometheus, G_FILE_TEST_IS_EXECUTABLE)) {
                if (g_getenv("CI"))
                        g_error("%s is missing (install prometheus)", prometheus);
                g_print("%s missing, skipping\n", prometheus);
                return 77;
        }
        d = metrics_test_data_new();
        m = gl_metrics_new("127.0.0.1:0", snapshot, d, &error);
        g_assert_no_error(error);

        dir = g_dir_make_tmp("guestlink-scrape-XXXXXX", &error);
        g_assert_no_error(error);
        config = g_strdup_printf("global:\n"
                                 "  scrape_interval: 1s\n"
                                 "  scrape_timeout: 1s\n"
                                 "scrape_configs:\n"
                                 "  - job_name: guestlink\n"
                                 "    static_configs:\n"
                                 "      - targets: ['127.0.0.1:%u']\n",
                                 gl_metrics_port(m));
        config_path = g_build_filename(dir, "prometheus.yml", NULL);
        g_assert_true(g_file_set_contents(config_path, config, -1, NULL));
        tsdb = g_build_filename(dir, "tsdb", NULL);
        port = free_port();
        listen = g_strdup_printf("--web.listen-address=127.0.0.1:%u", port);
        tsdb_arg = g_strdup_printf("--storage.tsdb.path=%s", tsdb);
        config_arg = g_strdup_printf("--config.file=%s", config_path);
        proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, prometheus,
                                config_arg, tsdb_arg, listen, "--log.level=warn", NULL);
        g_assert_no_error(error);

        session = soup_session_new_with_options("timeout", 5, NULL);
        deadline = g_get_monotonic_time() + DEADLINE_US;
        while (g_get_monotonic_time() < deadline) {
                run_for(500);
                g_clear_pointer(&up, g_hash_table_unref);
                g_clear_pointer(&frames, g_hash_table_unref);
                up = query(session, port, "guestlink_guest_up");
                frames = query(session, port, "guestlink_guest_frames_received_total");
                if (up && frames && series_equal(up, want_up) && series_equal(frames, want_frames)) {
                        ok = true;
                        break;
                }
        }

        /* Stop exactly the prometheus we started. */
        g_subprocess_send_signal(proc, SIGTERM);
        {
                g_autofree char *err = NULL;

                if (!g_subprocess_communicate_utf8(proc, NULL, NULL, NULL, &err, NULL))
                        g_subprocess_force_exit(proc);
                if (!ok)
                        g_printerr("prometheus said:\n%s\n", err ? err : "");
        }
        {
                g_autoptr(GFile) f = g_file_new_for_path(dir);
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

                (void) f;
                g_assert_cmpint(system(cmd), ==, 0);
        }
        if (!ok) {
                g_printerr("up: %u series, frames: %u series\n", up ? g_hash_table_size(up) : 0,
                           frames ? g_hash_table_size(frames) : 0);
                return 1;
        }
        g_assert_cmpuint(gl_metrics_scrapes(m), >, 0);
        g_print("prometheus scraped %" G_GUINT64_FORMAT " times and has the expected series\n", gl_metrics_scrapes(m));
        return 0;
}
