/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bridge-private.h"
#include "log.h"

/* ---- static guests ---- */

typedef struct BridgeListener {
        GlBridge *bridge;
        char *name;
        char *path;
        int fd;
        GSource *source;
} BridgeListener;

static int unix_address(const char *path, struct sockaddr_un *sa, socklen_t *ret_len) {
        size_t n = strlen(path);

        if (n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, path, n);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

/* Opener of connect-mode guests: QEMU listens on the chardev socket. */
static GlLink *open_static(GlGuest *g, void *data, GError **error) {
        const GlStaticGuest *sg = data; /* the guest's own copy */
        struct sockaddr_un sa;
        socklen_t len;
        int fd, r;

        (void) g;
        r = unix_address(sg->socket, &sa, &len);
        if (r < 0) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: %s", sg->socket, g_strerror(-r));
                return NULL;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s", g_strerror(errno));
                return NULL;
        }
        if (connect(fd, (struct sockaddr *) &sa, len) < 0) {
                int e = errno;
                close(fd);
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s", sg->socket, g_strerror(e));
                return NULL;
        }
        return gl_link_new_fd(fd);
}

static gboolean listener_accept(gint fd, GIOCondition cond, gpointer userdata) {
        BridgeListener *l = userdata;
        GlGuest *g;
        int c;

        (void) cond;
        c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        gl_log(LOG_WARNING, "%s: accept failed: %m, ignoring", l->path);
                return G_SOURCE_CONTINUE;
        }
        g = bridge_find_guest(l->bridge, l->name);
        if (!g) {
                close(c);
                return G_SOURCE_CONTINUE;
        }
        gl_log_guest(LOG_INFO, l->name, gl_guest_uuid(g), "QEMU connected to %s", l->path);
        gl_guest_attach(g, gl_link_new_fd(c)); /* replaces an older connection */
        return G_SOURCE_CONTINUE;
}

static void listener_free(gpointer p) {
        BridgeListener *l = p;

        if (l->source) {
                g_source_destroy(l->source);
                g_source_unref(l->source);
        }
        if (l->fd >= 0) {
                close(l->fd);
                (void) unlink(l->path);
        }
        g_free(l->name);
        g_free(l->path);
        g_free(l);
}

static int listen_unix(const char *path, mode_t mode) {
        struct sockaddr_un sa;
        socklen_t len;
        int fd, r;

        r = unix_address(path, &sa, &len);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, len) < 0 || chmod(path, mode) < 0 || listen(fd, 16) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static GlStaticGuest *static_guest_copy(const GlStaticGuest *sg) {
        GlStaticGuest *c = g_new0(GlStaticGuest, 1);

        c->name = g_strdup(sg->name);
        c->uuid = g_strdup(sg->uuid);
        c->socket = g_strdup(sg->socket);
        c->mode = sg->mode;
        return c;
}

static void static_guest_free(gpointer p) {
        GlStaticGuest *sg = p;

        g_free(sg->name);
        g_free(sg->uuid);
        g_free(sg->socket);
        g_free(sg);
}

static void start_static_guest(GlBridge *b, const GlStaticGuest *sg) {
        GlGuest *g;

        if (bridge_find_guest(b, sg->name) || (sg->uuid && bridge_find_guest(b, sg->uuid))) {
                gl_log(LOG_WARNING, "Static guest %s: name or UUID already in use, ignoring", sg->name);
                return;
        }
        if (sg->mode == GL_STATIC_CONNECT) {
                g = bridge_add_guest(b, sg->name, sg->uuid, "static", NULL, open_static, static_guest_copy(sg),
                                     static_guest_free);
                gl_guest_start(g);
                return;
        }
        {
                BridgeListener *l = g_new0(BridgeListener, 1);
                int fd = listen_unix(sg->socket, 0660);

                l->bridge = b;
                l->name = g_strdup(sg->name);
                l->path = g_strdup(sg->socket);
                l->fd = fd;
                if (fd < 0) {
                        gl_log(LOG_ERR, "Static guest %s: cannot listen on %s: %s, ignoring the guest", sg->name,
                               sg->socket, g_strerror(-fd));
                        listener_free(l);
                        return;
                }
                l->source = g_unix_fd_source_new(fd, G_IO_IN);
                g_source_set_callback(l->source, G_SOURCE_FUNC(listener_accept), l, NULL);
                g_source_attach(l->source, g_main_context_get_thread_default());
                g_ptr_array_add(b->listeners, l);
                g = bridge_add_guest(b, sg->name, sg->uuid, "static", NULL, NULL, NULL, NULL);
                (void) g;
        }
}

/* ---- guests ---- */

static void guest_event(GlGuest *g, const char *kind, json_object *data, void *userdata) {
        bridge_emit(userdata, g, kind, data);
}

static void guest_answer(GlGuest *g, const GlMessage *answer, uint64_t tag, void *userdata) {
        (void) g;
        bridge_control_answer(userdata, tag, answer);
}

GlGuest *bridge_find_guest(GlBridge *b, const char *name_or_uuid) {
        GlGuest *g;
        char lower[37];

        if (!name_or_uuid)
                return NULL;
        g = g_hash_table_lookup(b->guests_by_name, name_or_uuid);
        if (g)
                return g;
        if (strlen(name_or_uuid) != 36)
                return NULL;
        for (size_t i = 0; i <= 36; i++)
                lower[i] = g_ascii_tolower(name_or_uuid[i]);
        return g_hash_table_lookup(b->guests_by_uuid, lower);
}

GlGuest *bridge_add_guest(GlBridge *b, const char *name, const char *uuid, const char *source, const char *uri,
                          GlGuestOpener opener, void *opener_data, GDestroyNotify opener_data_free) {
        GlGuestSetup s = {
                .name = name,
                .uuid = uuid,
                .source = source,
                .uri = uri,
                .instance = b->instance,
                .config = b->config,
                .opener = opener,
                .opener_data = opener_data,
                .opener_data_free = opener_data_free,
                .event = guest_event,
                .answer = guest_answer,
                .userdata = b,
        };
        GlGuest *g = gl_guest_new(&s);

        g_hash_table_insert(b->guests_by_name, (gpointer) gl_guest_name(g), g);
        if (gl_guest_uuid(g))
                g_hash_table_insert(b->guests_by_uuid, (gpointer) gl_guest_uuid(g), g);
        gl_log_guest(LOG_INFO, name, uuid, "Attached guest (%s%s%s)", source, uri ? " " : "", uri ? uri : "");
        bridge_emit(b, g, "attached", NULL);
        return g;
}

void bridge_remove_guest(GlBridge *b, GlGuest *g) {
        gl_log_guest(LOG_INFO, gl_guest_name(g), gl_guest_uuid(g), "Detached guest");
        bridge_emit(b, g, "detached", NULL);
        if (gl_guest_uuid(g))
                g_hash_table_remove(b->guests_by_uuid, gl_guest_uuid(g));
        g_hash_table_remove(b->guests_by_name, gl_guest_name(g)); /* frees it */
}

static gint by_name(gconstpointer a, gconstpointer b) {
        return strcmp(gl_guest_name(*(GlGuest *const *) a), gl_guest_name(*(GlGuest *const *) b));
}

GPtrArray *bridge_sorted_guests(GlBridge *b) {
        GPtrArray *a = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, b->guests_by_name);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_ptr_array_add(a, v);
        g_ptr_array_sort(a, by_name);
        return a;
}

/* ---- events ---- */

void bridge_emit(GlBridge *b, GlGuest *g, const char *kind, json_object *data) {
        g_autoptr(json_object) ev = json_object_new_object();
        json_object *who = json_object_new_object();

        json_object_object_add(who, "name", json_object_new_string(gl_guest_name(g)));
        if (gl_guest_uuid(g))
                json_object_object_add(who, "uuid", json_object_new_string(gl_guest_uuid(g)));
        json_object_object_add(ev, "guest", who);
        json_object_object_add(ev, "kind", json_object_new_string(kind));
        json_object_object_add(ev, "time_unix_us", json_object_new_int64(g_get_real_time()));
        if (data)
                json_object_object_add(ev, "data", json_object_get(data));

        if (strcmp(kind, "stats") != 0) {
                g_queue_push_tail(&b->events, g_strdup(json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN)));
                while (b->events.length > BRIDGE_EVENT_RING)
                        g_free(g_queue_pop_head(&b->events));
                if (b->hooks && strcmp(kind, "state") != 0)
                        gl_hooks_fire(b->hooks, kind, gl_guest_name(g), ev);
        }
        bridge_control_broadcast(b, g, kind, ev);
}

/* ---- metrics ---- */

static gboolean metrics_scratch_clear(gpointer userdata) {
        GlBridge *b = userdata;

        b->metrics_scratch_id = 0;
        g_ptr_array_set_size(b->metrics_scratch, 0);
        return G_SOURCE_REMOVE;
}

static void metrics_snapshot(void *userdata, GArray *out, GlMetricsBridge *mb) {
        GlBridge *b = userdata;
        g_autoptr(GPtrArray) guests = bridge_sorted_guests(b);

        g_ptr_array_set_size(b->metrics_scratch, 0);
        *mb = (GlMetricsBridge){
                .guests_attached = guests->len,
                .clients = b->clients ? g_hash_table_size(b->clients) : 0,
                .start_time_seconds = (double) b->start_unix_us / 1e6,
        };
        if (b->hooks) {
                mb->hooks_run = gl_hooks_run(b->hooks);
                mb->hooks_failed = gl_hooks_failed(b->hooks);
                mb->hooks_dropped = gl_hooks_dropped(b->hooks);
        }
        for (guint i = 0; i < guests->len; i++) {
                GlGuest *g = guests->pdata[i];
                json_object *stats = gl_guest_last_stats(g);
                GlGuestCounters k;
                GlMetricsGuest mg;

                gl_guest_counters(g, &k);
                if (stats)
                        g_ptr_array_add(b->metrics_scratch, stats);
                mg = (GlMetricsGuest){
                        .name = gl_guest_name(g),
                        .uuid = gl_guest_uuid(g),
                        .state = gl_guest_state_to_string(gl_guest_state(g)),
                        .stats = stats,
                        .stats_unix_us = gl_guest_stats_unix_us(g),
                        .frames_in = k.frames_in,
                        .frames_out = k.frames_out,
                        .bytes_in = k.bytes_in,
                        .bytes_out = k.bytes_out,
                        .protocol_errors = k.protocol_errors,
                        .throttled = k.throttled,
                        .disconnects = k.disconnects,
                };
                g_array_append_val(out, mg);
                if (gl_guest_state(g) == GL_GUEST_CONNECTED || gl_guest_state(g) == GL_GUEST_HEARTBEAT_MISSED)
                        mb->guests_connected++;
                mb->frames_in += k.frames_in;
                mb->frames_out += k.frames_out;
                mb->protocol_errors += k.protocol_errors;
                mb->throttled += k.throttled;
                mb->guests_disconnected_for_limits += k.limit_disconnects;
        }
        if (!b->metrics_scratch_id)
                b->metrics_scratch_id = g_idle_add(metrics_scratch_clear, b);
}

/* ---- lifetime ---- */

static void json_put(gpointer o) {
        json_object_put(o);
}

static void guest_free(gpointer g) {
        gl_guest_free(g);
}

GlBridge *gl_bridge_new(GlBridgeConfig *config) {
        GlBridge *b = g_new0(GlBridge, 1);

        b->config = config;
        b->instance = gl_peer_new_instance();
        b->start_unix_us = g_get_real_time();
        b->guests_by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, guest_free);
        b->guests_by_uuid = g_hash_table_new(g_str_hash, g_str_equal);
        b->listeners = g_ptr_array_new_with_free_func(listener_free);
        b->control_fd = -1;
        b->metrics_scratch = g_ptr_array_new_with_free_func(json_put);
        g_queue_init(&b->events);
        return b;
}

GlBridge *gl_bridge_free(GlBridge *b) {
        if (!b)
                return NULL;
        bridge_libvirt_stop(b);
        b->metrics = gl_metrics_free(b->metrics);
        if (b->metrics_scratch_id)
                g_source_remove(b->metrics_scratch_id);
        g_ptr_array_unref(b->metrics_scratch);
        b->hooks = gl_hooks_free(b->hooks);
        g_ptr_array_unref(b->listeners);
        g_hash_table_remove_all(b->guests_by_uuid);
        g_hash_table_remove_all(b->guests_by_name);
        bridge_control_stop(b);
        g_hash_table_unref(b->guests_by_uuid);
        g_hash_table_unref(b->guests_by_name);
        g_queue_clear_full(&b->events, g_free);
        gl_bridge_config_free(b->config);
        g_free(b->instance);
        g_free(b);
        return NULL;
}

static const GlStaticGuest *find_static(const GlBridgeConfig *c, const char *name) {
        for (guint i = 0; i < c->static_guests->len; i++) {
                const GlStaticGuest *sg = c->static_guests->pdata[i];
                if (strcmp(sg->name, name) == 0)
                        return sg;
        }
        return NULL;
}

static bool static_same(const GlStaticGuest *a, const GlStaticGuest *b) {
        return strcmp(a->socket, b->socket) == 0 && a->mode == b->mode && g_strcmp0(a->uuid, b->uuid) == 0;
}

static void remove_static_guest(GlBridge *b, const char *name) {
        GlGuest *g = bridge_find_guest(b, name);

        for (guint i = 0; i < b->listeners->len; i++)
                if (strcmp(((BridgeListener *) b->listeners->pdata[i])->name, name) == 0) {
                        g_ptr_array_remove_index(b->listeners, i);
                        break;
                }
        if (g && strcmp(gl_guest_source(g), "static") == 0) {
                gl_guest_stopped(g);
                bridge_remove_guest(b, g);
        }
}

static void start_hooks(GlBridge *b) {
        const GlBridgeConfig *c = b->config;

        b->hooks = gl_hooks_free(b->hooks);
        if (c->hooks_directory && *c->hooks_directory)
                b->hooks = gl_hooks_new(c->hooks_directory, c->hooks_timeout_seconds * 1000, c->hooks_max_running,
                                        BRIDGE_EVENT_RING);
}

void gl_bridge_reload(GlBridge *b, GlBridgeConfig *new_config) {
        g_autoptr(GlBridgeConfig) n = new_config;
        g_autoptr(GPtrArray) guests = NULL;
        GlBridgeConfig *c = b->config;
        bool resubscribe;

        if (strcmp(n->control_socket, c->control_socket) != 0 || n->libvirt_enabled != c->libvirt_enabled ||
            strcmp(n->channel, c->channel) != 0 ||
            !g_strv_equal((const char *const *) n->libvirt_uris, (const char *const *) c->libvirt_uris) ||
            n->metrics_enabled != c->metrics_enabled || g_strcmp0(n->metrics_listen, c->metrics_listen) != 0)
                gl_log(LOG_WARNING, "Control socket, libvirt and metrics settings change only at a restart");

        /* static guests: gone, changed, new */
        guests = bridge_sorted_guests(b);
        for (guint i = 0; i < guests->len; i++) {
                GlGuest *g = guests->pdata[i];
                const GlStaticGuest *old, *now;
                if (strcmp(gl_guest_source(g), "static") != 0)
                        continue;
                old = find_static(c, gl_guest_name(g));
                now = find_static(n, gl_guest_name(g));
                if (!now || (old && !static_same(old, now)))
                        remove_static_guest(b, gl_guest_name(g));
        }

        /* settings the guests read from the config, in place */
        resubscribe = n->stats_interval_seconds != c->stats_interval_seconds ||
                      n->heartbeat_interval_seconds != c->heartbeat_interval_seconds;
        c->stats_interval_seconds = n->stats_interval_seconds;
        c->stats_history = n->stats_history;
        c->heartbeat_interval_seconds = n->heartbeat_interval_seconds;
        c->request_timeout_ms = n->request_timeout_ms;
        c->max_clients = n->max_clients;
        c->limits.max_memory_bytes = n->limits.max_memory_bytes;
        c->limits.max_protocol_errors = n->limits.max_protocol_errors;
        c->limits.penalty_ms = n->limits.penalty_ms;
        c->prefer_local = n->prefer_local;
        g_free(c->hooks_directory);
        c->hooks_directory = g_steal_pointer(&n->hooks_directory);
        c->hooks_timeout_seconds = n->hooks_timeout_seconds;
        c->hooks_max_running = n->hooks_max_running;
        start_hooks(b);
        g_ptr_array_unref(c->static_guests);
        c->static_guests = g_steal_pointer(&n->static_guests);
        n->static_guests = g_ptr_array_new();

        for (guint i = 0; i < c->static_guests->len; i++) {
                const GlStaticGuest *sg = c->static_guests->pdata[i];
                if (!bridge_find_guest(b, sg->name))
                        start_static_guest(b, sg);
        }
        if (resubscribe) {
                g_autoptr(GPtrArray) now = bridge_sorted_guests(b);
                for (guint i = 0; i < now->len; i++)
                        gl_guest_resubscribe(now->pdata[i]);
        }
        gl_log(LOG_INFO, "Reloaded the configuration: %u static guests, %u guests attached", c->static_guests->len,
               g_hash_table_size(b->guests_by_name));
}

gboolean gl_bridge_start(GlBridge *b, GError **error) {
        const GlBridgeConfig *c = b->config;

        if (!bridge_control_start(b, error))
                return FALSE;
        start_hooks(b);
        if (c->metrics_enabled) {
                g_autoptr(GError) e = NULL;
                b->metrics = gl_metrics_new(c->metrics_listen, metrics_snapshot, b, &e);
                if (!b->metrics)
                        gl_log(LOG_ERR, "Metrics endpoint %s: %s; serving without it", c->metrics_listen, e->message);
                else
                        gl_log(LOG_INFO, "Metrics on %s (port %u)", c->metrics_listen,
                               (unsigned) gl_metrics_port(b->metrics));
        }
        for (guint i = 0; i < b->config->static_guests->len; i++)
                start_static_guest(b, b->config->static_guests->pdata[i]);
        if (b->config->libvirt_enabled)
                bridge_libvirt_start(b);
        return TRUE;
}
