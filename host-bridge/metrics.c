/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The OpenMetrics HTTP endpoint (metrics.h): libsoup 3 serves, metrics-render.c renders. */
#include "metrics.h"

#include <libsoup/soup.h>
#include <string.h>

struct GlMetrics {
        SoupServer *server;
        GSocketService *service; /* accepts; libsoup serves (see gl_metrics_new) */
        GlMetricsSnapshot snapshot;
        void *userdata;
        guint16 port;
        uint64_t scrapes;
};

GSocketAddress *gl_metrics_parse_address(const char *listen_address, GError **error) {
        g_autofree char *host = NULL;
        g_autoptr(GInetAddress) addr = NULL;
        const char *colon, *port_text;
        guint64 port;

        if (!listen_address)
                goto invalid;
        if (listen_address[0] == '[') {
                const char *end = strchr(listen_address, ']');

                if (!end || end[1] != ':')
                        goto invalid;
                host = g_strndup(listen_address + 1, (gsize) (end - listen_address - 1));
                port_text = end + 2;
                addr = g_inet_address_new_from_string(host);
                if (!addr || g_inet_address_get_family(addr) != G_SOCKET_FAMILY_IPV6)
                        goto invalid;
        } else {
                colon = strrchr(listen_address, ':');
                if (!colon)
                        goto invalid;
                host = g_strndup(listen_address, (gsize) (colon - listen_address));
                port_text = colon + 1;
                addr = g_inet_address_new_from_string(host);
                if (!addr || g_inet_address_get_family(addr) != G_SOCKET_FAMILY_IPV4)
                        goto invalid;
        }
        if (!g_ascii_string_to_unsigned(port_text, 10, 0, 65535, &port, NULL))
                goto invalid;
        return g_inet_socket_address_new(addr, (guint16) port);

invalid:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "Invalid metrics listen address \"%s\": expected IPV4:PORT or [IPV6]:PORT", listen_address);
        return NULL;
}

static void handle_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                           void *userdata) {
        GlMetrics *m = userdata;
        const char *method = soup_server_message_get_method(msg);
        SoupMessageHeaders *response_headers = soup_server_message_get_response_headers(msg);
        g_autoptr(GArray) guests = NULL;
        GlMetricsBridge bridge = { 0 };
        GlMetricsFormat format;
        char *text;

        (void) server;
        (void) query;

        if (strcmp(path, "/metrics") != 0) {
                soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, NULL);
                return;
        }
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
                soup_message_headers_replace(response_headers, "Allow", "GET, HEAD");
                soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
                return;
        }

        guests = g_array_new(FALSE, TRUE, sizeof(GlMetricsGuest));
        if (m->snapshot)
                m->snapshot(m->userdata, guests, &bridge);
        format = gl_metrics_negotiate(
                soup_message_headers_get_list(soup_server_message_get_request_headers(msg), "Accept"));
        text = gl_metrics_render((const GlMetricsGuest *) (void *) guests->data, guests->len, &bridge, format);
        m->scrapes++;

        soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
        soup_message_headers_replace(response_headers, "Cache-Control", "no-store");
        soup_server_message_set_response(msg,
                                         format == GL_METRICS_FORMAT_OPENMETRICS ? GL_METRICS_CONTENT_TYPE_OPENMETRICS
                                                                                 : GL_METRICS_CONTENT_TYPE_TEXT,
                                         SOUP_MEMORY_TAKE, text, strlen(text));
}

static gboolean on_incoming(GSocketService *service, GSocketConnection *connection, GObject *source, void *userdata) {
        GlMetrics *m = userdata;
        g_autoptr(GSocketAddress) local = g_socket_connection_get_local_address(connection, NULL);
        g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address(connection, NULL);

        (void) service;
        (void) source;
        /* On failure the connection is simply closed by its last unref. */
        (void) soup_server_accept_iostream(m->server, G_IO_STREAM(connection), local, remote, NULL);
        return TRUE;
}

GlMetrics *gl_metrics_new(const char *listen_address, GlMetricsSnapshot snapshot, void *userdata, GError **error) {
        g_autoptr(GSocketAddress) address = gl_metrics_parse_address(listen_address, error);
        g_autoptr(GSocketAddress) bound = NULL;
        g_autoptr(GlMetrics) m = NULL;

        if (!address)
                return NULL;

        m = g_new0(GlMetrics, 1);
        m->snapshot = snapshot;
        m->userdata = userdata;
        m->server = soup_server_new("server-header", "guestlink-bridge", NULL);
        soup_server_add_handler(m->server, NULL, handle_request, m, NULL);
        /* We accept and hand the connections to libsoup: libsoup 3.2's own
         * listener (soup_server_listen) leaks every accepted GSocket. */
        m->service = g_socket_service_new();
        if (!g_socket_listener_add_address(G_SOCKET_LISTENER(m->service), address, G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_TCP, NULL, &bound, error)) {
                g_prefix_error(error, "Failed to listen on %s: ", listen_address);
                return NULL;
        }
        m->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
        g_signal_connect(m->service, "incoming", G_CALLBACK(on_incoming), m);
        g_socket_service_start(m->service);
        return g_steal_pointer(&m);
}

GlMetrics *gl_metrics_free(GlMetrics *m) {
        if (!m)
                return NULL;
        if (m->service) {
                g_signal_handlers_disconnect_by_data(m->service, m);
                g_socket_service_stop(m->service);
                g_socket_listener_close(G_SOCKET_LISTENER(m->service));
                g_object_unref(m->service);
        }
        if (m->server) {
                soup_server_disconnect(m->server);
                g_object_unref(m->server);
        }
        g_free(m);
        return NULL;
}

guint16 gl_metrics_port(const GlMetrics *m) {
        return m ? m->port : 0;
}

uint64_t gl_metrics_scrapes(const GlMetrics *m) {
        return m ? m->scrapes : 0;
}
