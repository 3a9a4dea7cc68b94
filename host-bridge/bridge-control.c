/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control socket: clients (the guestlink CLI, management tools, the
 * libvirt hook) speak the guestlink protocol to the bridge, role "client".
 * PROTOCOL.md 11.11 is the catalogue.  Every state-changing request is
 * logged with the caller's SO_PEERCRED uid and pid.
 */
#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <grp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bridge-private.h"
#include "config.h"
#include "log.h"

struct BridgeClient {
        GlBridge *bridge;
        uint64_t serial;
        GlPeer *peer;
        struct ucred cred;
        bool subscribed, want_stats;
        char *filter; /* guest name or uuid; NULL: all */
        uint64_t dropped;
        bool dead; /* connection gone; freed from an idle callback */
};

typedef struct BridgeCall {
        uint64_t client_serial;
        uint64_t request_id;
} BridgeCall;

/* Methods a client may forward, and whether they change the guest's state. */
static const struct {
        const char *method;
        bool changes_state;
} forwardable[] = {
        { "ping", false },         { "info", false },        { "stats.get", false },
        { "power.request", true }, { "power.cancel", true }, { "lock", true },
};

static void client_free(gpointer p) {
        BridgeClient *c = p;

        c->peer = gl_peer_free(c->peer);
        g_free(c->filter);
        g_free(c);
}

static gboolean reap_clients(gpointer userdata) {
        GlBridge *b = userdata;
        GHashTableIter it;
        gpointer v;

        b->reap_id = 0;
        g_hash_table_iter_init(&it, b->clients);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((BridgeClient *) v)->dead)
                        g_hash_table_iter_remove(&it);
        return G_SOURCE_REMOVE;
}

/* Clients are freed from an idle callback, never under their own feet. */
static void client_drop(BridgeClient *c) {
        c->dead = true;
        c->subscribed = false;
        if (!c->bridge->reap_id)
                c->bridge->reap_id = g_idle_add(reap_clients, c->bridge);
}

static const char *get_string(json_object *params, const char *key) {
        json_object *v;

        if (!params || !json_object_object_get_ex(params, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Finds the guest named in params; answers the request itself when there is none. */
static GlGuest *lookup_guest(BridgeClient *c, uint64_t id, json_object *params) {
        const char *name = get_string(params, "guest");
        GlGuest *g;

        if (!name) {
                (void) gl_peer_respond_error(c->peer, id, GL_ERROR_INVALID, "missing \"guest\"");
                return NULL;
        }
        g = bridge_find_guest(c->bridge, name);
        if (!g) {
                g_autofree char *safe = gl_sanitize(name, 128);
                g_autofree char *text = g_strdup_printf("no guest named %s is attached", safe);
                (void) gl_peer_respond_error(c->peer, id, GL_ERROR_NOT_FOUND, text);
        }
        return g;
}

static void audit(BridgeClient *c, GlGuest *g, const char *what, json_object *params) {
        g_autofree char *p = gl_sanitize(params ? json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN) : "{}",
                                         1024);
        g_autofree char *uid = g_strdup_printf("GUESTLINK_CLIENT_UID=%u", (unsigned) c->cred.uid);
        g_autofree char *pid = g_strdup_printf("GUESTLINK_CLIENT_PID=%d", (int) c->cred.pid);
        const char *fields[] = { uid, pid, NULL };

        gl_log_full(LOG_NOTICE, g ? gl_guest_name(g) : NULL, g ? gl_guest_uuid(g) : NULL, fields, __FILE__, __LINE__,
                    __func__, "uid=%u pid=%d: %s %s", (unsigned) c->cred.uid, (int) c->cred.pid, what, p);
}

static void do_list(BridgeClient *c, uint64_t id) {
        g_autoptr(GPtrArray) guests = bridge_sorted_guests(c->bridge);
        json_object *result = json_object_new_object(), *a = json_object_new_array();

        for (guint i = 0; i < guests->len; i++)
                json_object_array_add(a, gl_guest_to_json(guests->pdata[i]));
        json_object_object_add(result, "guests", a);
        (void) gl_peer_respond(c->peer, id, result);
}

static void do_guest(BridgeClient *c, uint64_t id, json_object *params) {
        GlGuest *g = lookup_guest(c, id, params);
        json_object *result, *v;

        if (!g)
                return;
        result = json_object_new_object();
        json_object_object_add(result, "guest", gl_guest_to_json(g));
        if ((v = gl_guest_last_info(g)))
                json_object_object_add(result, "info", v);
        if ((v = gl_guest_last_stats(g)))
                json_object_object_add(result, "stats", v);
        if ((v = gl_guest_last_heartbeat(g)))
                json_object_object_add(result, "heartbeat", v);
        (void) gl_peer_respond(c->peer, id, result);
}

static void do_stats(BridgeClient *c, uint64_t id, json_object *params) {
        GlGuest *g = lookup_guest(c, id, params);
        int64_t since = 0;
        json_object *v, *result;

        if (!g)
                return;
        if (params && json_object_object_get_ex(params, "since_unix_us", &v)) {
                if (!json_object_is_type(v, json_type_int)) {
                        (void) gl_peer_respond_error(c->peer, id, GL_ERROR_INVALID, "since_unix_us: integer expected");
                        return;
                }
                since = json_object_get_int64(v);
        }
        result = json_object_new_object();
        json_object_object_add(result, "interval_seconds",
                               json_object_new_int64(c->bridge->config->stats_interval_seconds));
        json_object_object_add(result, "samples", gl_guest_stats_history(g, since));
        if (gl_peer_respond(c->peer, id, result) == -EMSGSIZE)
                return; /* the session answered too-large itself */
}

static void do_call(BridgeClient *c, uint64_t id, json_object *params) {
        GlBridge *b = c->bridge;
        const char *method = get_string(params, "method");
        uint64_t timeout = b->config->request_timeout_ms;
        json_object *fparams = NULL, *v;
        const char *message = NULL;
        GlErrorCode code;
        BridgeCall *call;
        bool changes = false, known = false;
        uint64_t tag;
        GlGuest *g;

        if (!method) {
                (void) gl_peer_respond_error(c->peer, id, GL_ERROR_INVALID, "missing \"method\"");
                return;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(forwardable); i++)
                if (strcmp(method, forwardable[i].method) == 0) {
                        known = true;
                        changes = forwardable[i].changes_state;
                }
        if (!known) {
                bool sub = g_str_has_suffix(method, ".subscribe");
                (void) gl_peer_respond_error(c->peer, id, sub ? GL_ERROR_FORBIDDEN : GL_ERROR_UNSUPPORTED,
                                             sub ? "the bridge owns the guests' subscriptions; use bridge.subscribe"
                                                 : "the bridge does not forward this method");
                return;
        }
        if (params && json_object_object_get_ex(params, "params", &v)) {
                if (!json_object_is_type(v, json_type_object)) {
                        (void) gl_peer_respond_error(c->peer, id, GL_ERROR_INVALID, "params: object expected");
                        return;
                }
                fparams = v;
        }
        if (params && json_object_object_get_ex(params, "timeout_ms", &v)) {
                int64_t t = json_object_get_int64(v);
                if (!json_object_is_type(v, json_type_int) || t < 1 || t > 600000) {
                        (void) gl_peer_respond_error(c->peer, id, GL_ERROR_INVALID, "timeout_ms: 1..600000 expected");
                        return;
                }
                timeout = (uint64_t) t;
        }
        g = lookup_guest(c, id, params);
        if (!g)
                return;
        if (changes)
                audit(c, g, method, fparams);
        tag = ++b->next_call_tag;
        if (gl_guest_call(g, method, fparams ? json_object_get(fparams) : NULL, timeout, tag, &code, &message) < 0) {
                (void) gl_peer_respond_error(c->peer, id, code, message);
                return;
        }
        call = g_new(BridgeCall, 1);
        *call = (BridgeCall){ .client_serial = c->serial, .request_id = id };
        g_hash_table_insert(b->calls, g_memdup2(&tag, sizeof(tag)), call);
}

void bridge_control_answer(GlBridge *b, uint64_t tag, const GlMessage *answer) {
        BridgeCall *call;
        BridgeClient *c;

        if (!b->calls)
                return;
        call = g_hash_table_lookup(b->calls, &tag);
        if (!call)
                return;
        c = g_hash_table_lookup(b->clients, &call->client_serial);
        if (c && !c->dead) {
                if (answer->type == GL_MSG_RESPONSE)
                        (void) gl_peer_respond(c->peer, call->request_id,
                                               answer->body ? json_object_get(answer->body) : NULL);
                else
                        (void) gl_peer_respond_error(c->peer, call->request_id,
                                                     answer->code == GL_ERROR_UNKNOWN ? GL_ERROR_INTERNAL
                                                                                      : answer->code,
                                                     answer->error_message);
        }
        g_hash_table_remove(b->calls, &tag);
}

static void json_put(gpointer o) {
        json_object_put(o);
}

static bool event_matches(BridgeClient *c, GlGuest *g, const char *kind) {
        if (!c->subscribed)
                return false;
        if (strcmp(kind, "stats") == 0 && !c->want_stats)
                return false;
        if (!c->filter)
                return true;
        return strcmp(c->filter, gl_guest_name(g)) == 0 ||
               (gl_guest_uuid(g) && g_ascii_strcasecmp(c->filter, gl_guest_uuid(g)) == 0);
}

static void do_subscribe(BridgeClient *c, uint64_t id, json_object *params) {
        const char *guest = get_string(params, "guest");
        json_object *v, *result, *recent;
        int64_t n = 0;
        guint skip;

        if (params && json_object_object_get_ex(params, "recent", &v)) {
                n = json_object_get_int64(v);
                if (!json_object_is_type(v, json_type_int) || n < 0 || n > BRIDGE_EVENT_RING) {
                        (void) gl_peer_respond_error(c->peer, id, GL_ERROR_INVALID, "recent: 0..1000 expected");
                        return;
                }
        }
        c->subscribed = true;
        c->want_stats = params && json_object_object_get_ex(params, "stats", &v) && json_object_get_boolean(v);
        g_free(c->filter);
        c->filter = g_strdup(guest);

        recent = json_object_new_array();
        {
                /* the last n matching events, oldest first */
                g_autoptr(GPtrArray) match = g_ptr_array_new_with_free_func(json_put);
                for (GList *l = c->bridge->events.head; l; l = l->next) {
                        json_object *ev = json_tokener_parse(l->data), *who, *name, *uuid;
                        bool ok = !guest;
                        if (!ev)
                                continue;
                        if (guest && json_object_object_get_ex(ev, "guest", &who)) {
                                ok = (json_object_object_get_ex(who, "name", &name) &&
                                      strcmp(json_object_get_string(name), guest) == 0) ||
                                     (json_object_object_get_ex(who, "uuid", &uuid) &&
                                      g_ascii_strcasecmp(json_object_get_string(uuid), guest) == 0);
                        }
                        if (ok)
                                g_ptr_array_add(match, ev);
                        else
                                json_object_put(ev);
                }
                skip = match->len > (guint) n ? match->len - (guint) n : 0;
                for (guint i = skip; i < match->len; i++)
                        json_object_array_add(recent, json_object_get(match->pdata[i]));
        }
        result = json_object_new_object();
        json_object_object_add(result, "recent", recent);
        (void) gl_peer_respond(c->peer, id, result);
}

static void do_domain(BridgeClient *c, uint64_t id, json_object *params) {
        const char *name = get_string(params, "name"), *uuid = get_string(params, "uuid");
        const char *op = get_string(params, "operation"), *path = get_string(params, "channel_path");

        if (!name || !uuid || !op || (strcmp(op, "started") != 0 && strcmp(op, "stopped") != 0) ||
            !g_uuid_string_is_valid(uuid) || (path && !g_path_is_absolute(path))) {
                (void) gl_peer_respond_error(c->peer, id, GL_ERROR_INVALID,
                                             "name, uuid and operation (started|stopped) are required");
                return;
        }
        audit(c, NULL, "bridge.domain", params);
        (void) gl_peer_respond(c->peer, id, NULL);
        bridge_libvirt_domain_event(c->bridge, name, uuid, op, path);
}

static void handle_request(BridgeClient *c, GlMessage *m) {
        const char *method = m->name;

        if (strcmp(method, "bridge.list") == 0)
                do_list(c, m->id);
        else if (strcmp(method, "bridge.guest") == 0)
                do_guest(c, m->id, m->body);
        else if (strcmp(method, "bridge.stats") == 0)
                do_stats(c, m->id, m->body);
        else if (strcmp(method, "bridge.call") == 0)
                do_call(c, m->id, m->body);
        else if (strcmp(method, "bridge.subscribe") == 0)
                do_subscribe(c, m->id, m->body);
        else if (strcmp(method, "bridge.domain") == 0)
                do_domain(c, m->id, m->body);
        else if (strcmp(method, "ping") == 0)
                (void) gl_peer_respond(c->peer, m->id, NULL);
        else
                (void) gl_peer_respond_error(c->peer, m->id, GL_ERROR_UNSUPPORTED,
                                             "unknown method; guest methods go through bridge.call");
}

static void client_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        BridgeClient *c = userdata;

        (void) peer;
        if (ev->type == GL_SESSION_EVENT_MESSAGE) {
                if (ev->message->type == GL_MSG_REQUEST)
                        handle_request(c, ev->message);
                gl_message_free(ev->message);
        }
}

static void client_closed(GlPeer *peer, int error, void *userdata) {
        BridgeClient *c = userdata;

        (void) peer;
        (void) error;
        client_drop(c);
}

static gboolean control_accept(gint fd, GIOCondition cond, gpointer userdata) {
        GlBridge *b = userdata;
        static const char *const caps[] = { "bridge", NULL };
        GlSessionConfig sc = {
                .role = "bridge",
                .software = "guestlink-bridge " GL_VERSION,
                .instance = b->instance,
                .capabilities = caps,
                .max_requests_in_flight = 64,
                .max_control_queue_bytes = 4 * 1024 * 1024,
                .max_bulk_queue_bytes = 1024 * 1024,
        };
        GlPeerCallbacks cb = { .event = client_event, .closed = client_closed };
        socklen_t len = sizeof(struct ucred);
        BridgeClient *c;
        int fd2;

        (void) cond;
        fd2 = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd2 < 0)
                return G_SOURCE_CONTINUE;
        if (g_hash_table_size(b->clients) >= b->config->max_clients) {
                gl_log(LOG_WARNING, "Refused a control client: max_clients (%u) reached", b->config->max_clients);
                close(fd2);
                return G_SOURCE_CONTINUE;
        }
        c = g_new0(BridgeClient, 1);
        c->bridge = b;
        c->serial = ++b->next_client_serial;
        if (getsockopt(fd2, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0)
                c->cred = (struct ucred){ .pid = 0, .uid = (uid_t) -1, .gid = (gid_t) -1 };
        c->peer = gl_peer_new(&sc, &cb, c);
        g_hash_table_insert(b->clients, &c->serial, c);
        gl_log(LOG_DEBUG, "Control client uid=%u pid=%d connected", (unsigned) c->cred.uid, (int) c->cred.pid);
        gl_peer_attach(c->peer, gl_link_new_fd(fd2));
        return G_SOURCE_CONTINUE;
}

void bridge_control_broadcast(GlBridge *b, GlGuest *g, const char *kind, json_object *event) {
        GHashTableIter it;
        gpointer v;

        if (!b->clients)
                return;
        g_hash_table_iter_init(&it, b->clients);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                BridgeClient *c = v;
                if (!event_matches(c, g, kind))
                        continue;
                if (gl_peer_send_event(c->peer, "bridge.event", json_object_get(event), 0) < 0) {
                        if (c->dropped++ == 0)
                                gl_log(LOG_WARNING, "Control client pid=%d does not keep up; dropping its events",
                                       (int) c->cred.pid);
                        b->events_dropped++;
                }
        }
}

gboolean bridge_control_start(GlBridge *b, GError **error) {
        const char *path = b->config->control_socket;
        g_autofree char *dir = g_path_get_dirname(path);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        b->clients = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, client_free);
        b->calls = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        if (strlen(path) >= sizeof(sa.sun_path)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s: path too long", path);
                return FALSE;
        }
        memcpy(sa.sun_path, path, strlen(path));
        if (g_mkdir_with_parents(dir, 0755) < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", dir, g_strerror(errno));
                return FALSE;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s", g_strerror(errno));
                return FALSE;
        }
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
                int e = errno;
                close(fd);
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s", path, g_strerror(e));
                return FALSE;
        }
        /* mode 0660, group guestlink: members of the group may use the bridge */
        if (b->config->control_group) {
                struct group *gr = getgrnam(b->config->control_group);
                if (!gr)
                        gl_log(LOG_WARNING, "Group %s does not exist; %s stays root-only", b->config->control_group,
                               path);
                else if (chown(path, (uid_t) -1, gr->gr_gid) < 0)
                        gl_log(LOG_WARNING, "chown %s: %m, ignoring", path);
        }
        if (chmod(path, 0660) < 0)
                gl_log(LOG_WARNING, "chmod %s: %m, ignoring", path);
        b->control_fd = fd;
        b->control_source = g_unix_fd_source_new(fd, G_IO_IN);
        g_source_set_callback(b->control_source, G_SOURCE_FUNC(control_accept), b, NULL);
        g_source_attach(b->control_source, g_main_context_get_thread_default());
        gl_log(LOG_INFO, "Listening on %s", path);
        return TRUE;
}

void bridge_control_stop(GlBridge *b) {
        if (b->reap_id) {
                g_source_remove(b->reap_id);
                b->reap_id = 0;
        }
        if (b->control_source) {
                g_source_destroy(b->control_source);
                g_clear_pointer(&b->control_source, g_source_unref);
        }
        if (b->control_fd >= 0) {
                close(b->control_fd);
                (void) unlink(b->config->control_socket);
                b->control_fd = -1;
        }
        g_clear_pointer(&b->clients, g_hash_table_unref);
        g_clear_pointer(&b->calls, g_hash_table_unref);
}
