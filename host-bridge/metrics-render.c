/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Rendering a metrics snapshot as OpenMetrics or Prometheus text (metrics.h). */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

typedef enum MetricType {
        METRIC_GAUGE,
        METRIC_COUNTER,
} MetricType;

typedef struct Family {
        const char *name; /* without "_total" for counters */
        MetricType type;
        const char *unit; /* NULL: none */
        const char *help;
} Family;

/* One label taken from a member of a list entry. */
typedef struct ListLabel {
        const char *label;
        const char *member;
} ListLabel;

/* A family whose samples come from a list in the stats object. */
typedef struct ListFamily {
        Family family;
        const char *list;   /* member of the stats object */
        const char *member; /* value member of each entry */
        double scale;       /* applied to the value; 1: integers stay integers */
        ListLabel labels[2];
} ListFamily;

/* A family with one sample per guest, from stats.<section>.<member>. */
typedef struct ScalarFamily {
        Family family;
        const char *section;
        const char *member;
        double scale;
} ScalarFamily;

static const char *const guest_states[] = {
        "connecting", "agent-absent", "connected", "incompatible", "heartbeat-missed",
};

static const ScalarFamily scalar_families[] = {
        { { "guestlink_guest_cpus", METRIC_GAUGE, NULL, "Online CPUs of the guest." }, "cpu", "count", 1 },
        { { "guestlink_guest_cpu_usage_ratio", METRIC_GAUGE, "ratio",
            "Busy time of all guest CPUs over total time during the last stats period (0..1)." },
          "cpu",
          "usage_percent",
          0.01 },
        { { "guestlink_guest_memory_total_bytes", METRIC_GAUGE, "bytes", "Guest MemTotal." },
          "memory",
          "total_bytes",
          1 },
        { { "guestlink_guest_memory_available_bytes", METRIC_GAUGE, "bytes", "Guest MemAvailable." },
          "memory",
          "available_bytes",
          1 },
        { { "guestlink_guest_memory_free_bytes", METRIC_GAUGE, "bytes", "Guest MemFree." }, "memory", "free_bytes", 1 },
        { { "guestlink_guest_memory_cached_bytes", METRIC_GAUGE, "bytes", "Guest page cache (Cached)." },
          "memory",
          "cached_bytes",
          1 },
        { { "guestlink_guest_memory_buffers_bytes", METRIC_GAUGE, "bytes", "Guest Buffers." },
          "memory",
          "buffers_bytes",
          1 },
        { { "guestlink_guest_swap_total_bytes", METRIC_GAUGE, "bytes", "Guest SwapTotal." },
          "memory",
          "swap_total_bytes",
          1 },
        { { "guestlink_guest_swap_free_bytes", METRIC_GAUGE, "bytes", "Guest SwapFree." },
          "memory",
          "swap_free_bytes",
          1 },
        { { "guestlink_guest_load1", METRIC_GAUGE, NULL, "Guest 1-minute load average." }, "load", "avg1", 1 },
        { { "guestlink_guest_load5", METRIC_GAUGE, NULL, "Guest 5-minute load average." }, "load", "avg5", 1 },
        { { "guestlink_guest_load15", METRIC_GAUGE, NULL, "Guest 15-minute load average." }, "load", "avg15", 1 },
        { { "guestlink_guest_processes", METRIC_GAUGE, NULL, "Processes in the guest." }, "processes", "total", 1 },
        { { "guestlink_guest_processes_running", METRIC_GAUGE, NULL, "Runnable processes in the guest." },
          "processes",
          "running",
          1 },
        { { "guestlink_guest_processes_blocked", METRIC_GAUGE, NULL, "Processes blocked on I/O in the guest." },
          "processes",
          "blocked",
          1 },
};

#define FS_LABELS                                  \
        {                                          \
                { "mountpoint", "mount_point" }, { \
                        "fstype", "type"           \
                }                                  \
        }
#define DISK_LABELS                  \
        {                            \
                { "device", "name" } \
        }
#define NET_LABELS                      \
        {                               \
                { "interface", "name" } \
        }
#define PSU_LABELS                         \
        {                                  \
                { "power_supply", "name" } \
        }

static const ListFamily list_families[] = {
        { { "guestlink_guest_filesystem_size_bytes", METRIC_GAUGE, "bytes", "Size of a guest file system." },
          "filesystems",
          "total_bytes",
          1,
          FS_LABELS },
        { { "guestlink_guest_filesystem_free_bytes", METRIC_GAUGE, "bytes", "Free space of a guest file system." },
          "filesystems",
          "free_bytes",
          1,
          FS_LABELS },
        { { "guestlink_guest_filesystem_avail_bytes", METRIC_GAUGE, "bytes",
            "Space of a guest file system available to unprivileged users." },
          "filesystems",
          "available_bytes",
          1,
          FS_LABELS },
        { { "guestlink_guest_disk_read_bytes", METRIC_COUNTER, "bytes", "Bytes read from a guest block device." },
          "disks",
          "read_bytes",
          1,
          DISK_LABELS },
        { { "guestlink_guest_disk_written_bytes", METRIC_COUNTER, "bytes", "Bytes written to a guest block device." },
          "disks",
          "write_bytes",
          1,
          DISK_LABELS },
        { { "guestlink_guest_disk_reads_completed", METRIC_COUNTER, NULL, "Reads completed by a guest block device." },
          "disks",
          "reads",
          1,
          DISK_LABELS },
        { { "guestlink_guest_disk_writes_completed", METRIC_COUNTER, NULL,
            "Writes completed by a guest block device." },
          "disks",
          "writes",
          1,
          DISK_LABELS },
        { { "guestlink_guest_network_receive_bytes", METRIC_COUNTER, "bytes", "Bytes received by a guest interface." },
          "network",
          "rx_bytes",
          1,
          NET_LABELS },
        { { "guestlink_guest_network_transmit_bytes", METRIC_COUNTER, "bytes", "Bytes sent by a guest interface." },
          "network",
          "tx_bytes",
          1,
          NET_LABELS },
        { { "guestlink_guest_network_receive_packets", METRIC_COUNTER, NULL, "Packets received by a guest interface." },
          "network",
          "rx_packets",
          1,
          NET_LABELS },
        { { "guestlink_guest_network_transmit_packets", METRIC_COUNTER, NULL, "Packets sent by a guest interface." },
          "network",
          "tx_packets",
          1,
          NET_LABELS },
        { { "guestlink_guest_network_receive_errors", METRIC_COUNTER, NULL, "Receive errors of a guest interface." },
          "network",
          "rx_errors",
          1,
          NET_LABELS },
        { { "guestlink_guest_network_transmit_errors", METRIC_COUNTER, NULL, "Transmit errors of a guest interface." },
          "network",
          "tx_errors",
          1,
          NET_LABELS },
        { { "guestlink_guest_network_receive_drops", METRIC_COUNTER, NULL,
            "Received packets a guest interface dropped." },
          "network",
          "rx_dropped",
          1,
          NET_LABELS },
        { { "guestlink_guest_network_transmit_drops", METRIC_COUNTER, NULL,
            "Outgoing packets a guest interface dropped." },
          "network",
          "tx_dropped",
          1,
          NET_LABELS },
        { { "guestlink_guest_power_supply_capacity_ratio", METRIC_GAUGE, "ratio", "Charge of a guest battery (0..1)." },
          "power_supplies",
          "capacity_percent",
          0.01,
          PSU_LABELS },
        { { "guestlink_guest_power_supply_online", METRIC_GAUGE, NULL,
            "Whether a guest mains or USB power supply is online (1) or not (0)." },
          "power_supplies",
          "online",
          1,
          PSU_LABELS },
};

typedef struct PressureFamily {
        Family family;
        const char *kind;   /* "some", "full" */
        const char *member; /* "avg10_percent", "total_us" */
        double scale;
} PressureFamily;

static const PressureFamily pressure_families[] = {
        { { "guestlink_guest_pressure_some_avg10_ratio", METRIC_GAUGE, "ratio",
            "Share of time some guest tasks stalled on a resource, 10 s average (0..1)." },
          "some",
          "avg10_percent",
          0.01 },
        { { "guestlink_guest_pressure_full_avg10_ratio", METRIC_GAUGE, "ratio",
            "Share of time all non-idle guest tasks stalled on a resource, 10 s average (0..1)." },
          "full",
          "avg10_percent",
          0.01 },
        { { "guestlink_guest_pressure_some_stalled_seconds", METRIC_COUNTER, "seconds",
            "Time some guest tasks stalled on a resource." },
          "some",
          "total_us",
          1e-6 },
        { { "guestlink_guest_pressure_full_stalled_seconds", METRIC_COUNTER, "seconds",
            "Time all non-idle guest tasks stalled on a resource." },
          "full",
          "total_us",
          1e-6 },
};

static const char *const pressure_resources[] = { "cpu", "memory", "io" };

typedef enum GuestCounter {
        GUEST_FRAMES_IN,
        GUEST_FRAMES_OUT,
        GUEST_BYTES_IN,
        GUEST_BYTES_OUT,
        GUEST_PROTOCOL_ERRORS,
        GUEST_THROTTLED,
        GUEST_DISCONNECTS,
        _GUEST_COUNTER_MAX,
} GuestCounter;

static const Family guest_counter_families[_GUEST_COUNTER_MAX] = {
        [GUEST_FRAMES_IN] = { "guestlink_guest_frames_received", METRIC_COUNTER, NULL,
                              "Frames the bridge received from the guest since it was attached." },
        [GUEST_FRAMES_OUT] = { "guestlink_guest_frames_sent", METRIC_COUNTER, NULL,
                               "Frames the bridge sent to the guest since it was attached." },
        [GUEST_BYTES_IN] = { "guestlink_guest_received_bytes", METRIC_COUNTER, "bytes",
                             "Bytes the bridge received from the guest since it was attached." },
        [GUEST_BYTES_OUT] = { "guestlink_guest_sent_bytes", METRIC_COUNTER, "bytes",
                              "Bytes the bridge sent to the guest since it was attached." },
        [GUEST_PROTOCOL_ERRORS] = { "guestlink_guest_protocol_errors", METRIC_COUNTER, NULL,
                                    "Invalid frames or messages received from the guest." },
        [GUEST_THROTTLED] = { "guestlink_guest_throttled", METRIC_COUNTER, NULL,
                              "Times the bridge paused reading from the guest for its rate limits." },
        [GUEST_DISCONNECTS] = { "guestlink_guest_disconnects", METRIC_COUNTER, NULL,
                                "Times the guest's channel was disconnected." },
};

static uint64_t guest_counter(const GlMetricsGuest *g, GuestCounter c) {
        switch (c) {
        case GUEST_FRAMES_IN:
                return g->frames_in;
        case GUEST_FRAMES_OUT:
                return g->frames_out;
        case GUEST_BYTES_IN:
                return g->bytes_in;
        case GUEST_BYTES_OUT:
                return g->bytes_out;
        case GUEST_PROTOCOL_ERRORS:
                return g->protocol_errors;
        case GUEST_THROTTLED:
                return g->throttled;
        case GUEST_DISCONNECTS:
        case _GUEST_COUNTER_MAX:
                break;
        }
        return g->disconnects;
}

typedef struct Renderer {
        GString *out;
        GString *samples; /* of the family being rendered */
        GlMetricsFormat format;
        const Family *family;
} Renderer;

/* Appends a label value: \ " and newline escaped, other control
 * characters and invalid UTF-8 dropped, at most GL_METRICS_MAX_LABEL_BYTES
 * of input used. */
static void append_label_value(GString *out, const char *value) {
        size_t len = value ? strnlen(value, GL_METRICS_MAX_LABEL_BYTES) : 0;

        for (size_t i = 0; i < len;) {
                const char *p = value + i;
                gunichar c = g_utf8_get_char_validated(p, (gssize) (len - i));
                size_t clen;

                if (c == (gunichar) -1 || c == (gunichar) -2) {
                        i++;
                        continue;
                }
                clen = (size_t) (g_utf8_next_char(p) - p);
                if (c == '\\')
                        g_string_append(out, "\\\\");
                else if (c == '"')
                        g_string_append(out, "\\\"");
                else if (c == '\n')
                        g_string_append(out, "\\n");
                else if (c >= 0x20 && c != 0x7f && !(c >= 0x80 && c < 0xa0))
                        g_string_append_len(out, p, (gssize) clen);
                i += clen;
        }
}

/* The shortest decimal form that reads back as the same double. */
static void format_double(char buf[G_ASCII_DTOSTR_BUF_SIZE], double v) {
        static const char *const formats[] = { "%.15g", "%.16g", "%.17g" };

        if (isnan(v)) {
                strcpy(buf, "NaN");
                return;
        }
        if (isinf(v)) {
                strcpy(buf, v > 0 ? "+Inf" : "-Inf");
                return;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
                g_ascii_formatd(buf, G_ASCII_DTOSTR_BUF_SIZE, formats[i], v);
                if (g_ascii_strtod(buf, NULL) == v)
                        return;
        }
}

static void family_begin(Renderer *r, const Family *family) {
        r->family = family;
        g_string_truncate(r->samples, 0);
}

static void family_end(Renderer *r) {
        const Family *f = r->family;
        bool om = r->format == GL_METRICS_FORMAT_OPENMETRICS;
        const char *suffix = !om && f->type == METRIC_COUNTER ? "_total" : "";

        if (r->samples->len == 0)
                return;
        g_string_append_printf(r->out, "# HELP %s%s %s\n", f->name, suffix, f->help);
        g_string_append_printf(r->out, "# TYPE %s%s %s\n", f->name, suffix,
                               f->type == METRIC_COUNTER ? "counter" : "gauge");
        if (om && f->unit)
                g_string_append_printf(r->out, "# UNIT %s %s\n", f->name, f->unit);
        g_string_append_len(r->out, r->samples->str, (gssize) r->samples->len);
}

/* Starts a sample line up to the "{" of its labels; the guest labels come first. */
static void sample_begin(Renderer *r, const GlMetricsGuest *g) {
        g_string_append(r->samples, r->family->name);
        if (r->family->type == METRIC_COUNTER)
                g_string_append(r->samples, "_total");
        if (!g)
                return;
        g_string_append(r->samples, "{guest=\"");
        append_label_value(r->samples, g->name);
        g_string_append_c(r->samples, '"');
        if (g->uuid) {
                g_string_append(r->samples, ",uuid=\"");
                append_label_value(r->samples, g->uuid);
                g_string_append_c(r->samples, '"');
        }
}

static void sample_label(Renderer *r, const char *label, const char *value) {
        g_string_append_printf(r->samples, ",%s=\"", label);
        append_label_value(r->samples, value);
        g_string_append_c(r->samples, '"');
}

static void sample_end_u64(Renderer *r, bool labels, uint64_t v) {
        g_string_append_printf(r->samples, "%s %" PRIu64 "\n", labels ? "}" : "", v);
}

static void sample_end_double(Renderer *r, bool labels, double v) {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];

        format_double(buf, v);
        g_string_append_printf(r->samples, "%s %s\n", labels ? "}" : "", buf);
}

/* Writes the value of a JSON member as the end of a sample.  Returns false
 * (and writes nothing) if the value is unusable: not a number or boolean,
 * or negative or non-finite for a counter. */
static bool value_text(const Family *f, json_object *v, double scale, char buf[G_ASCII_DTOSTR_BUF_SIZE]) {
        double d;

        switch (json_object_get_type(v)) {
        case json_type_int:
                if (scale == 1) {
                        int64_t i = json_object_get_int64(v);

                        if (f->type == METRIC_COUNTER && i < 0)
                                return false;
                        g_snprintf(buf, G_ASCII_DTOSTR_BUF_SIZE, "%" PRId64, i);
                        return true;
                }
                d = (double) json_object_get_int64(v) * scale;
                break;
        case json_type_double:
                d = json_object_get_double(v) * scale;
                break;
        case json_type_boolean:
                d = json_object_get_boolean(v) ? 1 : 0;
                break;
        default:
                return false;
        }
        if (f->type == METRIC_COUNTER && (!isfinite(d) || d < 0))
                return false;
        format_double(buf, d);
        return true;
}

static json_object *member(json_object *obj, const char *key) {
        json_object *v = NULL;

        if (!json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, key, &v))
                return NULL;
        return v;
}

static void render_scalar(Renderer *r, const GlMetricsGuest *const *guests, size_t n, const ScalarFamily *sf) {
        family_begin(r, &sf->family);
        for (size_t i = 0; i < n; i++) {
                json_object *v = member(member(guests[i]->stats, sf->section), sf->member);
                char buf[G_ASCII_DTOSTR_BUF_SIZE];

                if (!v || !value_text(&sf->family, v, sf->scale, buf))
                        continue;
                sample_begin(r, guests[i]);
                g_string_append_printf(r->samples, "} %s\n", buf);
        }
        family_end(r);
}

static void render_list(Renderer *r, const GlMetricsGuest *const *guests, size_t n, const ListFamily *lf) {
        family_begin(r, &lf->family);
        for (size_t i = 0; i < n; i++) {
                json_object *list = member(guests[i]->stats, lf->list);
                g_autoptr(GHashTable) seen = NULL;
                size_t len;

                if (!json_object_is_type(list, json_type_array))
                        continue;
                seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                len = MIN(json_object_array_length(list), (size_t) GL_METRICS_MAX_ENTRIES);
                for (size_t j = 0; j < len; j++) {
                        json_object *e = json_object_array_get_idx(list, j);
                        json_object *v = member(e, lf->member);
                        const char *values[G_N_ELEMENTS(lf->labels)] = { NULL };
                        char buf[G_ASCII_DTOSTR_BUF_SIZE];
                        g_autofree char *key = NULL;
                        bool ok = true;

                        for (size_t k = 0; k < G_N_ELEMENTS(lf->labels) && lf->labels[k].label; k++) {
                                json_object *lv = member(e, lf->labels[k].member);

                                if (!json_object_is_type(lv, json_type_string))
                                        ok = false;
                                else
                                        values[k] = json_object_get_string(lv);
                        }
                        if (!ok || !v || !value_text(&lf->family, v, lf->scale, buf))
                                continue;
                        /* Entries whose label values repeat an earlier one would be
                         * duplicate series: keep the first.  (Compared after
                         * sanitising, as Prometheus sees them.) */
                        {
                                GString *k = g_string_new(NULL);

                                for (size_t l = 0; l < G_N_ELEMENTS(values) && values[l]; l++) {
                                        append_label_value(k, values[l]);
                                        g_string_append_c(k, '"');
                                }
                                key = g_string_free(k, FALSE);
                        }
                        if (!g_hash_table_add(seen, g_steal_pointer(&key)))
                                continue;
                        sample_begin(r, guests[i]);
                        for (size_t l = 0; l < G_N_ELEMENTS(values) && values[l]; l++)
                                sample_label(r, lf->labels[l].label, values[l]);
                        g_string_append_printf(r->samples, "} %s\n", buf);
                }
        }
        family_end(r);
}

static void render_pressure(Renderer *r, const GlMetricsGuest *const *guests, size_t n, const PressureFamily *pf) {
        family_begin(r, &pf->family);
        for (size_t i = 0; i < n; i++) {
                json_object *pressure = member(guests[i]->stats, "pressure");

                for (size_t j = 0; j < G_N_ELEMENTS(pressure_resources); j++) {
                        json_object *v = member(member(member(pressure, pressure_resources[j]), pf->kind), pf->member);
                        char buf[G_ASCII_DTOSTR_BUF_SIZE];

                        if (!v || !value_text(&pf->family, v, pf->scale, buf))
                                continue;
                        sample_begin(r, guests[i]);
                        sample_label(r, "resource", pressure_resources[j]);
                        g_string_append_printf(r->samples, "} %s\n", buf);
                }
        }
        family_end(r);
}

static void render_guest_health(Renderer *r, const GlMetricsGuest *const *guests, size_t n) {
        static const Family up = { "guestlink_guest_up", METRIC_GAUGE, NULL,
                                   "Whether the guest's agent session is established (1) or not (0)." };
        static const Family state = { "guestlink_guest_state", METRIC_GAUGE, NULL,
                                      "The guest's state: 1 for the current one, 0 for the others." };
        static const Family stamp = { "guestlink_guest_stats_timestamp_seconds", METRIC_GAUGE, "seconds",
                                      "Unix time the last stats sample of the guest arrived." };

        family_begin(r, &up);
        for (size_t i = 0; i < n; i++) {
                sample_begin(r, guests[i]);
                sample_end_u64(r, true, g_strcmp0(guests[i]->state, "connected") == 0);
        }
        family_end(r);

        family_begin(r, &state);
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < G_N_ELEMENTS(guest_states); j++) {
                        sample_begin(r, guests[i]);
                        sample_label(r, "state", guest_states[j]);
                        sample_end_u64(r, true, g_strcmp0(guests[i]->state, guest_states[j]) == 0);
                }
        family_end(r);

        family_begin(r, &stamp);
        for (size_t i = 0; i < n; i++) {
                if (!guests[i]->stats || guests[i]->stats_unix_us <= 0)
                        continue;
                sample_begin(r, guests[i]);
                sample_end_double(r, true, (double) guests[i]->stats_unix_us / 1e6);
        }
        family_end(r);

        for (size_t c = 0; c < _GUEST_COUNTER_MAX; c++) {
                family_begin(r, &guest_counter_families[c]);
                for (size_t i = 0; i < n; i++) {
                        sample_begin(r, guests[i]);
                        sample_end_u64(r, true, guest_counter(guests[i], (GuestCounter) c));
                }
                family_end(r);
        }
}

static void render_bridge(Renderer *r, const GlMetricsBridge *b) {
        const struct {
                Family family;
                uint64_t value;
        } rows[] = {
                { { "guestlink_bridge_guests_attached", METRIC_GAUGE, NULL, "Guests attached to the bridge." },
                  b->guests_attached },
                { { "guestlink_bridge_guests_connected", METRIC_GAUGE, NULL,
                    "Guests with an established agent session." },
                  b->guests_connected },
                { { "guestlink_bridge_clients", METRIC_GAUGE, NULL, "Clients connected to the control socket." },
                  b->clients },
                { { "guestlink_bridge_frames_received", METRIC_COUNTER, NULL, "Frames received from all guests." },
                  b->frames_in },
                { { "guestlink_bridge_frames_sent", METRIC_COUNTER, NULL, "Frames sent to all guests." },
                  b->frames_out },
                { { "guestlink_bridge_protocol_errors", METRIC_COUNTER, NULL,
                    "Invalid frames or messages received from all guests." },
                  b->protocol_errors },
                { { "guestlink_bridge_throttled", METRIC_COUNTER, NULL,
                    "Times the bridge paused reading from a guest for its rate limits." },
                  b->throttled },
                { { "guestlink_bridge_guests_disconnected_for_limits", METRIC_COUNTER, NULL,
                    "Guest connections the bridge closed because the guest exceeded a limit." },
                  b->guests_disconnected_for_limits },
                { { "guestlink_bridge_hooks_run", METRIC_COUNTER, NULL, "Event hooks started." }, b->hooks_run },
                { { "guestlink_bridge_hooks_failed", METRIC_COUNTER, NULL,
                    "Event hooks that failed to start, exited non-zero, were killed or timed out." },
                  b->hooks_failed },
                { { "guestlink_bridge_hooks_dropped", METRIC_COUNTER, NULL,
                    "Event hook runs dropped because the queue was full." },
                  b->hooks_dropped },
        };
        static const Family start = { "guestlink_bridge_start_time_seconds", METRIC_GAUGE, "seconds",
                                      "Unix time the bridge started." };

        for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
                family_begin(r, &rows[i].family);
                sample_begin(r, NULL);
                sample_end_u64(r, false, rows[i].value);
                family_end(r);
        }
        family_begin(r, &start);
        sample_begin(r, NULL);
        sample_end_double(r, false, b->start_time_seconds);
        family_end(r);
}

static int compare_guests(gconstpointer a, gconstpointer b) {
        const GlMetricsGuest *x = *(const GlMetricsGuest *const *) a, *y = *(const GlMetricsGuest *const *) b;
        int c = g_strcmp0(x->name, y->name);

        return c != 0 ? c : g_strcmp0(x->uuid, y->uuid);
}

char *gl_metrics_render(const GlMetricsGuest *guests, size_t n, const GlMetricsBridge *bridge, GlMetricsFormat format) {
        g_autofree const GlMetricsGuest **sorted = g_new(const GlMetricsGuest *, n + 1);
        g_autoptr(GString) samples = g_string_sized_new(4096);
        Renderer r = {
                .out = g_string_sized_new(16384),
                .samples = samples,
                .format = format,
        };

        for (size_t i = 0; i < n; i++)
                sorted[i] = &guests[i];
        qsort(sorted, n, sizeof(sorted[0]), compare_guests);

        render_bridge(&r, bridge);
        render_guest_health(&r, sorted, n);
        for (size_t i = 0; i < G_N_ELEMENTS(scalar_families); i++)
                render_scalar(&r, sorted, n, &scalar_families[i]);
        for (size_t i = 0; i < G_N_ELEMENTS(pressure_families); i++)
                render_pressure(&r, sorted, n, &pressure_families[i]);
        for (size_t i = 0; i < G_N_ELEMENTS(list_families); i++)
                render_list(&r, sorted, n, &list_families[i]);
        if (format == GL_METRICS_FORMAT_OPENMETRICS)
                g_string_append(r.out, "# EOF\n");
        return g_string_free(r.out, FALSE);
}

GlMetricsFormat gl_metrics_negotiate(const char *accept) {
        if (!accept || strstr(accept, "application/openmetrics-text") || !strstr(accept, "text/plain"))
                return GL_METRICS_FORMAT_OPENMETRICS;
        return GL_METRICS_FORMAT_TEXT;
}
