/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "client.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "peer.h"

/* Extra time the client gives the bridge beyond the agent's own deadline,
 * so that the bridge's "timeout" answer arrives before the local one. */
#define CLIENT_BRIDGE_GRACE_MS 2000
/* Longest piece of a peer's error message we show. */
#define CLIENT_MESSAGE_MAX 1024

struct Client {
        ClientMode mode;
        char *target; /* socket path or domain, for messages */
        uint64_t timeout_ms;
        GMainContext *ctx;
        GlPeer *peer;
        GHashTable *calls; /* request id -> ClientCall */
        GSource *signals[2];
        bool established;
        bool interrupted;
        GError *fatal; /* the connection is unusable */
        ClientEventFunc on_event;
        void *event_userdata;
};

typedef struct ClientCall {
        ClientCallFunc fn;
        void *userdata;
} ClientCall;

G_DEFINE_QUARK(guestlink - client - error - quark, client_error)
G_DEFINE_QUARK(guestlink - remote - error - quark, client_remote_error)

bool client_guest_is_default(const char *guest) {
        return !guest || strcmp(guest, "-") == 0;
}

ClientMode client_mode(const Client *c) {
        return c->mode;
}

const char *client_target(const Client *c) {
        return c->target;
}

static void fail_all_calls(Client *c, const GError *error) {
        GHashTableIter it;
        gpointer key, value;
        g_autoptr(GPtrArray) calls = g_ptr_array_new_with_free_func(g_free);

        /* steal first: a callback may start new calls */
        g_hash_table_iter_init(&it, c->calls);
        while (g_hash_table_iter_next(&it, &key, &value)) {
                g_ptr_array_add(calls, value);
                g_hash_table_iter_steal(&it);
        }
        for (guint i = 0; i < calls->len; i++) {
                ClientCall *call = calls->pdata[i];
                call->fn(c, NULL, error, call->userdata);
        }
}

static void set_fatal(Client *c, GError *error) {
        if (c->fatal) {
                g_error_free(error);
                return;
        }
        c->fatal = error;
        fail_all_calls(c, error);
}

static GError *remote_error_new(Client *c, const GlMessage *m) {
        const char *text = m->error_message ? m->error_message : "";
        json_object *code;

        if (m->local && m->code == GL_ERROR_TIMEOUT)
                return g_error_new(CLIENT_REMOTE_ERROR, GL_ERROR_TIMEOUT, "no answer within %" PRIu64 " s",
                                   (c->timeout_ms + 999) / 1000);
        if (m->local && m->code == GL_ERROR_ABORTED)
                return g_error_new_literal(CLIENT_REMOTE_ERROR, GL_ERROR_ABORTED,
                                           "the peer restarted before answering");
        if (m->code == GL_ERROR_UNKNOWN && json_object_object_get_ex(m->root, "code", &code))
                return g_error_new(CLIENT_REMOTE_ERROR, GL_ERROR_UNKNOWN, "%s: %s", json_object_get_string(code), text);
        return g_error_new_literal(CLIENT_REMOTE_ERROR, m->code, text);
}

static void answer(Client *c, const GlMessage *m) {
        ClientCall *call = g_hash_table_lookup(c->calls, &m->id);
        ClientCallFunc fn;
        void *userdata;

        if (!call)
                return;
        fn = call->fn;
        userdata = call->userdata;
        g_hash_table_remove(c->calls, &m->id);
        if (m->type == GL_MSG_RESPONSE) {
                g_autoptr(json_object) empty = NULL;
                json_object *result = m->body;

                if (!result)
                        result = empty = json_object_new_object();
                fn(c, result, NULL, userdata);
        } else {
                g_autoptr(GError) error = remote_error_new(c, m);
                fn(c, NULL, error, userdata);
        }
}

static void check_peer_role(Client *c) {
        const GlHello *h = gl_session_peer(gl_peer_session(c->peer));
        const char *want = c->mode == CLIENT_MODE_BRIDGE ? "bridge" : "agent";

        if (!h || !h->role || strcmp(h->role, want) == 0)
                return;
        if (c->mode == CLIENT_MODE_BRIDGE && strcmp(h->role, "agent") == 0)
                set_fatal(c, g_error_new(CLIENT_ERROR, CLIENT_ERROR_CONNECT,
                                         "%s leads to an agent, not to the bridge (use --direct %s)", c->target,
                                         c->target));
        else {
                g_autofree char *role = gl_sanitize(h->role, 64);
                set_fatal(c, g_error_new(CLIENT_ERROR,
                                         c->mode == CLIENT_MODE_BRIDGE ? CLIENT_ERROR_CONNECT : CLIENT_ERROR_NO_AGENT,
                                         "%s leads to a peer of role \"%s\", not %s %s", c->target, role,
                                         c->mode == CLIENT_MODE_BRIDGE ? "the" : "an", want));
        }
}

static void peer_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        Client *c = userdata;
        GlMessage *m = ev->message;

        (void) peer;
        switch (ev->type) {
        case GL_SESSION_EVENT_ESTABLISHED:
                c->established = true;
                check_peer_role(c);
                break;
        case GL_SESSION_EVENT_INCOMPATIBLE:
                set_fatal(c, g_error_new(CLIENT_ERROR,
                                         c->mode == CLIENT_MODE_BRIDGE ? CLIENT_ERROR_CONNECT : CLIENT_ERROR_NO_AGENT,
                                         "%s: no common protocol version with the peer", c->target));
                break;
        case GL_SESSION_EVENT_PEER_RESTARTED:
                if (c->on_event)
                        c->on_event(c, CLIENT_EVENT_PEER_RESTARTED, NULL, c->event_userdata);
                break;
        case GL_SESSION_EVENT_PROTOCOL_ERROR:
                g_debug("protocol error %d from the peer: %s", ev->error, ev->detail);
                break;
        case GL_SESSION_EVENT_MESSAGE:
                if ((m->type == GL_MSG_RESPONSE || m->type == GL_MSG_ERROR) && m->id != 0)
                        answer(c, m);
                else if (m->type == GL_MSG_EVENT && c->on_event)
                        c->on_event(c, m->name, m->body, c->event_userdata);
                break;
        }
        gl_message_free(m);
}

static void peer_closed(GlPeer *peer, int error, void *userdata) {
        Client *c = userdata;

        (void) peer;
        if (error < 0)
                set_fatal(c, g_error_new(CLIENT_ERROR, CLIENT_ERROR_CLOSED, "%s: connection lost: %s", c->target,
                                         g_strerror(-error)));
        else
                set_fatal(c, g_error_new(CLIENT_ERROR, CLIENT_ERROR_CLOSED, "%s: the peer closed the connection",
                                         c->target));
}

static gboolean on_signal(gpointer userdata) {
        Client *c = userdata;

        c->interrupted = true;
        return G_SOURCE_CONTINUE;
}

static int connect_unix(const char *path, GlLink **ret_link, GError **error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_CONNECT, "%s: socket path too long", path);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                int r = -errno;
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_CONNECT, "socket(): %s", g_strerror(-r));
                return r;
        }
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_CONNECT, "cannot connect to %s: %s", path,
                            g_strerror(-r));
                close(fd);
                return r;
        }
        *ret_link = gl_link_new_fd(fd);
        return 0;
}

static int open_link(Client *c, const ClientOptions *o, GlLink **ret_link, GError **error) {
        g_autoptr(GError) e = NULL;
        int r;

        if (o->mode != CLIENT_MODE_LIBVIRT) {
                r = connect_unix(o->socket_path, ret_link, &e);
                if (r < 0 && o->mode == CLIENT_MODE_BRIDGE)
                        g_prefix_error(&e, "the bridge is not reachable: ");
                if (r < 0) {
                        g_propagate_error(error, g_steal_pointer(&e));
                        return r;
                }
                return 0;
        }
        (void) c;
        return client_libvirt_open_link(o->uri, o->domain, ret_link, error);
}

int client_open(const ClientOptions *o, Client **ret_client, GError **error) {
        static const char *const no_capabilities[] = { NULL };
        g_autoptr(Client) c = g_new0(Client, 1);
        g_autofree char *instance = gl_peer_new_instance();
        GlSessionConfig config = {
                .role = "client",
                .software = "guestlink " GL_VERSION,
                .instance = instance,
                .capabilities = no_capabilities,
        };
        const GlPeerCallbacks callbacks = { .event = peer_event, .closed = peer_closed };
        GlLink *link = NULL;
        int r;

        c->mode = o->mode;
        c->timeout_ms = o->timeout_ms;
        c->target = g_strdup(o->mode == CLIENT_MODE_LIBVIRT ? o->domain : o->socket_path);
        c->calls = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        /* libvirt runs its events (and streams) on the global default
         * context (libvirt-glib); everything else gets a private one. */
        c->ctx = o->mode == CLIENT_MODE_LIBVIRT ? g_main_context_ref(g_main_context_default()) : g_main_context_new();
        g_main_context_push_thread_default(c->ctx);
        for (size_t i = 0; i < G_N_ELEMENTS(c->signals); i++) {
                c->signals[i] = g_unix_signal_source_new(i == 0 ? SIGINT : SIGTERM);
                g_source_set_callback(c->signals[i], on_signal, c, NULL);
                g_source_attach(c->signals[i], c->ctx);
        }

        c->peer = gl_peer_new(&config, &callbacks, c);
        if (!c->peer) {
                g_set_error_literal(error, CLIENT_ERROR, CLIENT_ERROR_UNEXPECTED, "out of memory");
                return -ENOMEM;
        }
        r = open_link(c, o, &link, error);
        if (r < 0)
                return r;
        gl_peer_attach(c->peer, link);

        r = client_wait(c, &c->established, gl_peer_now_ms() + o->timeout_ms, error);
        if (r == -ETIMEDOUT || (r < 0 && g_error_matches(*error, CLIENT_ERROR, CLIENT_ERROR_CLOSED))) {
                g_clear_error(error);
                g_set_error(error, CLIENT_ERROR,
                            o->mode == CLIENT_MODE_BRIDGE ? CLIENT_ERROR_CONNECT : CLIENT_ERROR_NO_AGENT,
                            o->mode == CLIENT_MODE_BRIDGE ? "%s: the bridge did not answer the handshake%s"
                                                          : "%s: no agent answered%s",
                            c->target, r == -ETIMEDOUT ? " in time" : " (the connection was closed)");
                return -EHOSTDOWN;
        }
        if (r < 0)
                return r;
        if (c->fatal) {
                g_propagate_error(error, g_error_copy(c->fatal));
                return -EPROTO;
        }
        *ret_client = g_steal_pointer(&c);
        return 0;
}

Client *client_free(Client *c) {
        if (!c)
                return NULL;
        c->peer = gl_peer_free(c->peer);
        for (size_t i = 0; i < G_N_ELEMENTS(c->signals); i++) {
                if (c->signals[i]) {
                        g_source_destroy(c->signals[i]);
                        g_source_unref(c->signals[i]);
                }
        }
        if (c->calls)
                g_hash_table_destroy(c->calls);
        if (c->ctx) {
                g_main_context_pop_thread_default(c->ctx);
                g_main_context_unref(c->ctx);
        }
        g_clear_error(&c->fatal);
        g_free(c->target);
        g_free(c);
        return NULL;
}

json_object *client_peer_agent(Client *c) {
        GlSession *s = gl_peer_session(c->peer);
        const GlHello *h = gl_session_peer(s);
        json_object *o = json_object_new_object();
        json_object *caps = json_object_new_array();

        if (!h) {
                json_object_put(caps);
                return o;
        }
        json_object_object_add(o, "software", json_object_new_string(h->software ? h->software : ""));
        json_object_object_add(o, "instance", json_object_new_string(h->instance ? h->instance : ""));
        json_object_object_add(o, "protocol_version", json_object_new_int64(gl_session_version(s)));
        for (unsigned i = 0; i < h->n_capabilities; i++)
                json_object_array_add(caps, json_object_new_string(h->capabilities[i]));
        json_object_object_add(o, "capabilities", caps);
        return o;
}

bool client_peer_has_capability(Client *c, const char *capability) {
        return gl_session_peer_has_capability(gl_peer_session(c->peer), capability);
}

void client_set_event_handler(Client *c, ClientEventFunc fn, void *userdata) {
        c->on_event = fn;
        c->event_userdata = userdata;
}

static int request_start(Client *c, const char *method, json_object *params, uint64_t timeout_ms, ClientCallFunc fn,
                         void *userdata, uint64_t *ret_id, GError **error) {
        ClientCall *call;
        uint64_t id;
        int r;

        if (c->fatal) {
                json_object_put(params);
                g_propagate_error(error, g_error_copy(c->fatal));
                return -ENOTCONN;
        }
        r = gl_peer_request(c->peer, method, params, timeout_ms ? timeout_ms : c->timeout_ms, &id);
        if (r < 0) {
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNEXPECTED, "cannot send the %s request: %s", method,
                            g_strerror(-r));
                return r;
        }
        call = g_new0(ClientCall, 1);
        call->fn = fn;
        call->userdata = userdata;
        g_hash_table_insert(c->calls, g_memdup2(&id, sizeof(id)), call);
        if (ret_id)
                *ret_id = id;
        return 0;
}

static json_object *bridge_call_params(const char *guest, const char *method, json_object *params,
                                       uint64_t timeout_ms) {
        json_object *p = json_object_new_object();

        json_object_object_add(p, "guest", json_object_new_string(guest ? guest : ""));
        json_object_object_add(p, "method", json_object_new_string(method));
        if (params)
                json_object_object_add(p, "params", params);
        json_object_object_add(p, "timeout_ms", json_object_new_int64((int64_t) timeout_ms));
        return p;
}

static int call_start(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                      ClientCallFunc fn, void *userdata, uint64_t *ret_id, GError **error) {
        if (!timeout_ms)
                timeout_ms = c->timeout_ms;
        if (c->mode != CLIENT_MODE_BRIDGE)
                return request_start(c, method, params, timeout_ms, fn, userdata, ret_id, error);
        return request_start(c, "bridge.call", bridge_call_params(guest, method, params, timeout_ms),
                             timeout_ms + CLIENT_BRIDGE_GRACE_MS, fn, userdata, ret_id, error);
}

int client_call_async(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                      ClientCallFunc fn, void *userdata) {
        return call_start(c, guest, method, params, timeout_ms, fn, userdata, NULL, NULL);
}

int client_request_async(Client *c, const char *method, json_object *params, uint64_t timeout_ms, ClientCallFunc fn,
                         void *userdata) {
        return request_start(c, method, params, timeout_ms, fn, userdata, NULL, NULL);
}

typedef struct SyncCall {
        bool done;
        json_object *result;
        GError *error;
} SyncCall;

static void sync_done(Client *c, json_object *result, const GError *error, void *userdata) {
        SyncCall *s = userdata;

        (void) c;
        s->done = true;
        if (result)
                s->result = json_object_get(result);
        else
                s->error = g_error_copy(error);
}

static int sync_finish(Client *c, SyncCall *s, uint64_t id, json_object **ret_result, GError **error) {
        int r = client_wait(c, &s->done, UINT64_MAX, error);

        if (r < 0) {
                g_hash_table_remove(c->calls, &id);
                return r;
        }
        if (s->error) {
                g_propagate_error(error, s->error);
                return -EREMOTEIO;
        }
        *ret_result = s->result;
        return 0;
}

int client_call(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                json_object **ret_result, GError **error) {
        SyncCall s = { 0 };
        uint64_t id;
        int r;

        r = call_start(c, guest, method, params, timeout_ms, sync_done, &s, &id, error);
        if (r < 0)
                return r;
        return sync_finish(c, &s, id, ret_result, error);
}

int client_bridge_call(Client *c, const char *method, json_object *params, uint64_t timeout_ms,
                       json_object **ret_result, GError **error) {
        SyncCall s = { 0 };
        uint64_t id;
        int r;

        r = request_start(c, method, params, timeout_ms, sync_done, &s, &id, error);
        if (r < 0)
                return r;
        return sync_finish(c, &s, id, ret_result, error);
}

static json_object *direct_guest(Client *c) {
        json_object *g = json_object_new_object();
        g_autoptr(json_object) info = NULL;
        g_autoptr(GError) e = NULL;
        json_object *v, *os;
        const char *name = c->target;

        if (client_peer_has_capability(c, "info") && client_call(c, NULL, "info", NULL, 0, &info, &e) == 0 &&
            json_object_object_get_ex(info, "hostname", &v) && json_object_is_type(v, json_type_string))
                name = json_object_get_string(v);
        else if (e)
                g_debug("info: %s, ignoring", e->message);
        json_object_object_add(g, "name", json_object_new_string(name));
        json_object_object_add(g, "source",
                               json_object_new_string(c->mode == CLIENT_MODE_LIBVIRT ? "libvirt" : "direct"));
        json_object_object_add(g, "transport",
                               json_object_new_string(c->mode == CLIENT_MODE_LIBVIRT ? "libvirt-stream" : "socket"));
        json_object_object_add(g, "state", json_object_new_string("connected"));
        json_object_object_add(g, "running", json_object_new_boolean(true));
        json_object_object_add(g, "agent", client_peer_agent(c));
        if (info && json_object_object_get_ex(info, "hostname", &v))
                json_object_object_add(g, "hostname", json_object_get(v));
        if (info && json_object_object_get_ex(info, "os", &os) && json_object_object_get_ex(os, "pretty_name", &v))
                json_object_object_add(g, "os_pretty_name", json_object_get(v));
        return g;
}

int client_list_guests(Client *c, json_object **ret_guests, GError **error) {
        g_autoptr(json_object) result = NULL;
        json_object *guests;
        int r;

        if (c->mode != CLIENT_MODE_BRIDGE) {
                guests = json_object_new_array();
                json_object_array_add(guests, direct_guest(c));
                *ret_guests = guests;
                return 0;
        }
        r = client_bridge_call(c, "bridge.list", NULL, 0, &result, error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(result, "guests", &guests) || !json_object_is_type(guests, json_type_array)) {
                g_set_error_literal(error, CLIENT_ERROR, CLIENT_ERROR_UNEXPECTED,
                                    "the bridge's bridge.list answer has no guest list");
                return -EBADMSG;
        }
        *ret_guests = json_object_get(guests);
        return 0;
}

static gboolean wake_up(gpointer userdata) {
        bool *fired = userdata;

        *fired = true;
        return G_SOURCE_REMOVE;
}

int client_wait(Client *c, const bool *done, uint64_t deadline_ms, GError **error) {
        GSource *timer = NULL;
        bool fired = false;
        int r = 0;

        if (deadline_ms != UINT64_MAX) {
                uint64_t now = gl_peer_now_ms();
                timer = g_timeout_source_new((guint) (deadline_ms > now ? MIN(deadline_ms - now, G_MAXUINT) : 0));
                g_source_set_callback(timer, wake_up, &fired, NULL);
                g_source_attach(timer, c->ctx);
        }
        for (;;) {
                if (*done)
                        break;
                if (c->interrupted) {
                        g_set_error_literal(error, CLIENT_ERROR, CLIENT_ERROR_INTERRUPTED, "interrupted");
                        r = -EINTR;
                        break;
                }
                if (c->fatal) {
                        g_propagate_error(error, g_error_copy(c->fatal));
                        r = -ECONNRESET;
                        break;
                }
                if (fired || (deadline_ms != UINT64_MAX && gl_peer_now_ms() >= deadline_ms)) {
                        r = -ETIMEDOUT;
                        break;
                }
                g_main_context_iteration(c->ctx, TRUE);
        }
        if (timer) {
                g_source_destroy(timer);
                g_source_unref(timer);
        }
        return r;
}

int client_sleep(Client *c, uint64_t ms, GError **error) {
        const bool never = false;
        int r = client_wait(c, &never, gl_peer_now_ms() + ms, error);

        return r == -ETIMEDOUT ? 0 : r;
}

int client_error_exit_code(const GError *e) {
        if (!e)
                return EXIT_OTHER;
        if (e->domain == CLIENT_ERROR) {
                switch ((ClientErrorCode) e->code) {
                case CLIENT_ERROR_CONNECT:
                case CLIENT_ERROR_CLOSED:
                        return EXIT_UNREACHABLE;
                case CLIENT_ERROR_NO_AGENT:
                        return EXIT_NO_AGENT;
                case CLIENT_ERROR_USAGE:
                        return EXIT_USAGE;
                case CLIENT_ERROR_INTERRUPTED:
                case CLIENT_ERROR_UNEXPECTED:
                        return EXIT_OTHER;
                }
                return EXIT_OTHER;
        }
        if (e->domain != CLIENT_REMOTE_ERROR)
                return EXIT_OTHER;
        switch ((GlErrorCode) e->code) {
        case GL_ERROR_NOT_FOUND:
                return EXIT_NOT_ATTACHED;
        case GL_ERROR_NO_AGENT:
                return EXIT_NO_AGENT;
        case GL_ERROR_FORBIDDEN:
                return EXIT_FORBIDDEN;
        case GL_ERROR_TIMEOUT:
                return EXIT_TIMEOUT;
        case GL_ERROR_UNAVAILABLE:
        case GL_ERROR_BUSY:
        case GL_ERROR_INVALID:
        case GL_ERROR_UNSUPPORTED:
                return EXIT_REFUSED;
        default:
                return EXIT_OTHER;
        }
}

char *client_error_describe(const GError *e) {
        g_autofree char *text = gl_sanitize(e ? e->message : "unknown error", CLIENT_MESSAGE_MAX);
        const char *what;

        if (!e || e->domain != CLIENT_REMOTE_ERROR)
                return g_steal_pointer(&text);
        switch ((GlErrorCode) e->code) {
        case GL_ERROR_FORBIDDEN:
                what = "refused by guest policy";
                break;
        case GL_ERROR_UNAVAILABLE:
                what = "not possible on the guest now";
                break;
        case GL_ERROR_BUSY:
                what = "busy";
                break;
        case GL_ERROR_INVALID:
                what = "invalid request";
                break;
        case GL_ERROR_UNSUPPORTED:
                what = "not supported";
                break;
        case GL_ERROR_NOT_FOUND:
                what = "not attached to the bridge";
                break;
        case GL_ERROR_NO_AGENT:
                what = "no agent";
                break;
        case GL_ERROR_TIMEOUT:
                what = "timeout";
                break;
        case GL_ERROR_INTERNAL:
                what = "the agent failed";
                break;
        case GL_ERROR_TOO_LARGE:
                what = "too large";
                break;
        case GL_ERROR_ABORTED:
                what = "aborted";
                break;
        default:
                what = "error";
                break;
        }
        if (!*text)
                return g_strdup(what);
        return g_strdup_printf("%s: %s", what, text);
}
