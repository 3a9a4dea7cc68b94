/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "metrics-test-data.h"

char *metrics_test_data_path(const char *name) {
        const char *dir = g_getenv("GL_TEST_DATA");

        g_assert_nonnull(dir);
        return g_build_filename(dir, name, NULL);
}

static const char *opt_string(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

MetricsTestData *metrics_test_data_new(void) {
        g_autofree char *path = metrics_test_data_path("metrics-guests.json");
        MetricsTestData *d = g_new0(MetricsTestData, 1);

        d->root = json_object_from_file(path);
        g_assert_true(json_object_is_type(d->root, json_type_array));
        d->guests = g_array_new(FALSE, TRUE, sizeof(GlMetricsGuest));
        for (size_t i = 0; i < json_object_array_length(d->root); i++) {
                json_object *o = json_object_array_get_idx(d->root, i), *v, *c;
                GlMetricsGuest g = {
                        .name = opt_string(o, "name"),
                        .uuid = opt_string(o, "uuid"),
                        .state = opt_string(o, "state"),
                };

                if (json_object_object_get_ex(o, "stats", &v))
                        g.stats = v;
                if (json_object_object_get_ex(o, "stats_unix_us", &v))
                        g.stats_unix_us = json_object_get_int64(v);
                g_assert_true(json_object_object_get_ex(o, "counters", &c));
                g_assert_cmpuint(json_object_array_length(c), ==, 7);
                g.frames_in = (uint64_t) json_object_get_int64(json_object_array_get_idx(c, 0));
                g.frames_out = (uint64_t) json_object_get_int64(json_object_array_get_idx(c, 1));
                g.bytes_in = (uint64_t) json_object_get_int64(json_object_array_get_idx(c, 2));
                g.bytes_out = (uint64_t) json_object_get_int64(json_object_array_get_idx(c, 3));
                g.protocol_errors = (uint64_t) json_object_get_int64(json_object_array_get_idx(c, 4));
                g.throttled = (uint64_t) json_object_get_int64(json_object_array_get_idx(c, 5));
                g.disconnects = (uint64_t) json_object_get_int64(json_object_array_get_idx(c, 6));
                g_array_append_val(d->guests, g);
        }
        d->bridge = (GlMetricsBridge){
                .guests_attached = 3,
                .guests_connected = 1,
                .clients = 2,
                .frames_in = 1244,
                .frames_out = 1211,
                .protocol_errors = 2,
                .throttled = 4,
                .guests_disconnected_for_limits = 1,
                .hooks_run = 12,
                .hooks_failed = 1,
                .hooks_dropped = 0,
                .start_time_seconds = 1699999000.5,
        };
        return d;
}

MetricsTestData *metrics_test_data_free(MetricsTestData *d) {
        if (!d)
                return NULL;
        g_array_unref(d->guests);
        json_object_put(d->root);
        g_free(d);
        return NULL;
}
