/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * GlMetrics: the bridge's OpenMetrics endpoint (libsoup 3).
 *
 * Off by default in the bridge ([metrics] enabled).  It serves GET (and
 * HEAD) /metrics on one numeric address such as "127.0.0.1:9847" or
 * "[::1]:9847"; every other path is 404, other methods on /metrics 405.
 * There is no authentication: bind it to loopback or a management network.
 *
 * On every scrape it asks its owner for a snapshot (GlMetricsSnapshot) and
 * renders it with gl_metrics_render().  The format is negotiated from the
 * Accept header: OpenMetrics 1.0.0 (content type
 * "application/openmetrics-text; version=1.0.0; charset=utf-8", the
 * default, and what Prometheus asks for), or the classic Prometheus text
 * format 0.0.4 when the client accepts text/plain but not OpenMetrics.  The
 * two differ only where the formats do: OpenMetrics names counter families
 * without "_total" and has "# UNIT" lines and a final "# EOF".
 *
 * Everything a guest reports is untrusted: label values are escaped
 * (\\, \", \n), other control characters and invalid UTF-8 are dropped,
 * each value is cut at GL_METRICS_MAX_LABEL_BYTES, and at most
 * GL_METRICS_MAX_ENTRIES file systems, disks, interfaces and power
 * supplies are exported per guest (entries whose labels repeat an earlier
 * entry are skipped, so a guest cannot make a scrape invalid).  Values of
 * the wrong JSON type, and negative or non-finite counters, are omitted.
 */
#include <gio/gio.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define GL_METRICS_MAX_ENTRIES 256
#define GL_METRICS_MAX_LABEL_BYTES 256

#define GL_METRICS_CONTENT_TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define GL_METRICS_CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"

typedef struct GlMetricsGuest {
        const char *name;
        const char *uuid;      /* may be NULL: no uuid label */
        const char *state;     /* "connecting", "agent-absent", "connected", "incompatible", "heartbeat-missed" */
        json_object *stats;    /* the last stats object (PROTOCOL.md 11.5) or NULL; borrowed */
        int64_t stats_unix_us; /* when that sample arrived (guestlink_guest_stats_timestamp_seconds) */
        uint64_t frames_in, frames_out, bytes_in, bytes_out, protocol_errors, throttled, disconnects;
} GlMetricsGuest;

typedef struct GlMetricsBridge {
        uint64_t guests_attached, guests_connected, clients;
        uint64_t frames_in, frames_out, protocol_errors, throttled, guests_disconnected_for_limits;
        uint64_t hooks_run, hooks_failed, hooks_dropped;
        double start_time_seconds; /* unix time the bridge started */
} GlMetricsBridge;

/* Called on every scrape, from the thread-default main context of
 * gl_metrics_new().  Appends one GlMetricsGuest per guest to guests (any
 * order: the output is sorted by name) and fills bridge.  The pointers in
 * the appended entries are borrowed and need to stay valid only until the
 * callback's caller returns to the main loop. */
typedef void (*GlMetricsSnapshot)(void *userdata, GArray *guests, GlMetricsBridge *bridge);

typedef enum GlMetricsFormat {
        GL_METRICS_FORMAT_OPENMETRICS,
        GL_METRICS_FORMAT_TEXT, /* Prometheus text exposition format 0.0.4 */
} GlMetricsFormat;

typedef struct GlMetrics GlMetrics;

/* Listens on listen_address ("HOST:PORT" with a numeric IPv4 address, or
 * "[IPV6]:PORT"; port 0 picks a free one) in the thread-default main
 * context.  NULL with error set if the address is invalid or cannot be
 * bound. */
GlMetrics *gl_metrics_new(const char *listen_address, GlMetricsSnapshot snapshot, void *userdata,
                          GError **error) G_GNUC_WARN_UNUSED_RESULT;
GlMetrics *gl_metrics_free(GlMetrics *metrics);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlMetrics, gl_metrics_free)

/* The bound port (useful after "…:0"). */
guint16 gl_metrics_port(const GlMetrics *metrics);
/* Scrapes answered so far. */
uint64_t gl_metrics_scrapes(const GlMetrics *metrics);

/* Renders a snapshot.  Pure: no I/O, no clock.  guests need not be sorted;
 * the output lists them by name (then uuid).  Returns a new string. */
char *gl_metrics_render(const GlMetricsGuest *guests, size_t n, const GlMetricsBridge *bridge, GlMetricsFormat format);

/* Picks the format for an Accept header value (NULL: OpenMetrics). */
GlMetricsFormat gl_metrics_negotiate(const char *accept);

/* Parses "A.B.C.D:PORT" or "[V6]:PORT" into a socket address; NULL with
 * error (G_IO_ERROR_INVALID_ARGUMENT) otherwise. */
GSocketAddress *gl_metrics_parse_address(const char *listen_address, GError **error);
