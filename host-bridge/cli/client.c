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
/* Bridge mode: how often the client tries to reach a bridge that went away,
 * and retries a resent call the new bridge cannot serve yet. */
#define CLIENT_RETRY_MS 200

struct Client {
        ClientMode mode;
        char *target;      /* socket path or domain, for messages */
        char *socket_path; /* bridge mode: where to reconnect */
        uint64_t timeout_ms;
        GMainContext *ctx;
        GlPeer *peer;
        GHashTable *calls; /* request id -> ClientCall (sent on the current connection) */
        GPtrArray *resend; /* ClientCall waiting to be sent (again) */
        GSource *signals[2];
        GSource *retry; /* bridge mode: reconnects and resends every CLIENT_RETRY_MS */
        bool established;
        bool reconnecting; /* bridge mode: the connection dropped, calls are outstanding */
        bool interrupted;
        unsigned answer_sends; /* inside a ClientCallFunc: how often that request was sent */
        char *bridge_instance; /* the instance of the bridge we last established with */
        GError *fatal;         /* the connection is unusable */
        ClientEventFunc on_event;
        void *event_userdata;
};

/* An outstanding request.  In bridge mode it keeps what it needs to be sent
 * again on a new connection: the bridge forgets a client's requests when its
 * connection ends (a restart, or a dropped control connection). */
typedef struct ClientCall {
        ClientCallFunc fn;
        void *userdata;
        char *method;
        json_object *params;    /* our own copy; NULL: none */
        bool inner_timeout;     /* bridge.call: params.timeout_ms follows the deadline */
        uint64_t timeout_ms;    /* as asked, for messages */
        uint64_t deadline_ms;   /* gl_peer_now_ms() clock */
        uint64_t not_before_ms; /* in c->resend: not before this time */
        unsigned sends;
        GError *last_error; /* the answer that made us retry (no-agent, not-found) */
} ClientCall;

/* The timeout the caller asked for, in whole seconds, for messages. */
static uint64_t call_timeout_s(const ClientCall *call) {
        uint64_t ms = call->inner_timeout ? call->timeout_ms - CLIENT_BRIDGE_GRACE_MS : call->timeout_ms;

        return (ms + 999) / 1000;
}

static void call_free(gpointer p) {
        ClientCall *call = p;

        g_free(call->method);
        json_object_put(call->params);
        g_clear_error(&call->last_error);
        g_free(call);
}

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
        g_autoptr(GPtrArray) calls = g_ptr_array_new_with_free_func(call_free);

        /* steal first: a callback may start new calls */
        g_hash_table_iter_init(&it, c->calls);
        while (g_hash_table_iter_next(&it, &key, &value)) {
                g_ptr_array_add(calls, value);
                g_hash_table_iter_steal(&it);
                g_free(key);
        }
        while (c->resend->len > 0)
                g_ptr_array_add(calls, g_ptr_array_steal_index(c->resend, 0));
        for (guint i = 0; i < calls->len; i++) {
                ClientCall *call = calls->pdata[i];
                c->answer_sends = call->sends;
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

static GError *remote_error_new(const ClientCall *call, const GlMessage *m) {
        const char *text = m->error_message ? m->error_message : "";
        json_object *code;

        if (m->local && m->code == GL_ERROR_TIMEOUT)
                return g_error_new(CLIENT_REMOTE_ERROR, GL_ERROR_TIMEOUT, "no answer within %" PRIu64 " s",
                                   call_timeout_s(call));
        if (m->local && m->code == GL_ERROR_ABORTED)
                return g_error_new_literal(CLIENT_REMOTE_ERROR, GL_ERROR_ABORTED,
                                           "the peer restarted before answering");
        if (m->code == GL_ERROR_UNKNOWN && json_object_object_get_ex(m->root, "code", &code))
                return g_error_new(CLIENT_REMOTE_ERROR, GL_ERROR_UNKNOWN, "%s: %s", json_object_get_string(code), text);
        return g_error_new_literal(CLIENT_REMOTE_ERROR, m->code, text);
}

/* Hands the outcome of a call to its owner and frees the call. */
static void call_complete(Client *c, ClientCall *call, json_object *result, const GError *error) {
        c->answer_sends = call->sends;
        call->fn(c, result, error, call->userdata);
        c->answer_sends = 0;
        call_free(call);
}

static gboolean retry_tick(gpointer userdata);

/* Makes sure the retry timer runs (bridge mode, something to retry). */
static void retry_arm(Client *c) {
        if (c->retry)
                return;
        c->retry = g_timeout_source_new(CLIENT_RETRY_MS);
        g_source_set_callback(c->retry, retry_tick, c, NULL);
        g_source_attach(c->retry, c->ctx);
}

static void retry_disarm(Client *c) {
        if (!c->retry)
                return;
        g_source_destroy(c->retry);
        g_clear_pointer(&c->retry, g_source_unref);
}

/* Queues a call to be sent (again) once a session is established. */
static void call_defer(Client *c, ClientCall *call, uint64_t not_before_ms) {
        call->not_before_ms = not_before_ms;
        g_ptr_array_add(c->resend, call);
        retry_arm(c);
}

/* Sends a call on the current connection with what is left of its
 * deadline (a copy of its params: the call keeps them for a resend).
 * Returns 0 (the call is then in c->calls), -ETIMEDOUT or -errno. */
static int call_send_now(Client *c, ClientCall *call) {
        uint64_t now = gl_peer_now_ms(), left, id;
        json_object *params = NULL;
        int r;

        if (now >= call->deadline_ms)
                return -ETIMEDOUT;
        left = call->deadline_ms - now;
        if (call->params && json_object_deep_copy(call->params, &params, NULL) < 0)
                return -ENOMEM;
        if (call->inner_timeout) {
                /* the bridge's answer should come before our own timeout */
                uint64_t inner = left > CLIENT_BRIDGE_GRACE_MS ? left - CLIENT_BRIDGE_GRACE_MS : MAX(left / 2, 1);

                json_object_object_add(params, "timeout_ms", json_object_new_int64((int64_t) MIN(inner, 600000)));
        }
        r = gl_peer_request(c->peer, call->method, params, left, &id);
        if (r < 0)
                return r;
        call->sends++;
        g_hash_table_insert(c->calls, g_memdup2(&id, sizeof(id)), call);
        return 0;
}

/* As call_send_now(), but completes the call when it cannot be sent: with
 * the error that made us retry it, or a timeout. */
static void call_send(Client *c, ClientCall *call) {
        g_autoptr(GError) e = NULL;
        int r = call_send_now(c, call);

        if (r == 0)
                return;
        if (r == -ETIMEDOUT && call->last_error)
                e = g_error_copy(call->last_error);
        else if (r == -ETIMEDOUT)
                e = g_error_new(CLIENT_REMOTE_ERROR, GL_ERROR_TIMEOUT, "no answer within %" PRIu64 " s",
                                call_timeout_s(call));
        else
                e = g_error_new(CLIENT_ERROR, CLIENT_ERROR_UNEXPECTED, "cannot send the %s request: %s", call->method,
                                g_strerror(-r));
        call_complete(c, call, NULL, e);
}

/* Sends the deferred calls that are due, when a session is established. */
static void resend_due(Client *c) {
        g_autoptr(GPtrArray) due = g_ptr_array_new();
        uint64_t now = gl_peer_now_ms();

        if (!c->established || c->fatal)
                return;
        for (guint i = 0; i < c->resend->len;) {
                ClientCall *call = c->resend->pdata[i];

                if (call->not_before_ms <= now || call->deadline_ms <= now)
                        g_ptr_array_add(due, g_ptr_array_steal_index(c->resend, i));
                else
                        i++;
        }
        for (guint i = 0; i < due->len; i++)
                call_send(c, due->pdata[i]);
}

/* Whether the bridge may serve a resent call a little later: a bridge
 * that just started has not reached its guests yet (no-agent), nor found
 * its libvirt domains (not-found). */
static bool retry_later(const ClientCall *call, const GlMessage *m) {
        return call->sends > 1 && !m->local && (m->code == GL_ERROR_NO_AGENT || m->code == GL_ERROR_NOT_FOUND) &&
               gl_peer_now_ms() + CLIENT_RETRY_MS < call->deadline_ms;
}

static void answer(Client *c, const GlMessage *m) {
        ClientCall *call = NULL;
        gpointer key = NULL;

        if (!g_hash_table_steal_extended(c->calls, &m->id, &key, (gpointer *) &call))
                return;
        g_free(key);
        if (c->mode == CLIENT_MODE_BRIDGE && m->type == GL_MSG_ERROR) {
                /* a request the old bridge took is void: ask the new one */
                if (m->local && m->code == GL_ERROR_ABORTED) {
                        g_debug("%s: the bridge restarted before answering; sending %s again", c->target, call->method);
                        call_defer(c, call, 0);
                        return;
                }
                if (retry_later(call, m)) {
                        g_clear_error(&call->last_error);
                        call->last_error = remote_error_new(call, m);
                        call_defer(c, call, gl_peer_now_ms() + CLIENT_RETRY_MS);
                        return;
                }
        }
        if (m->type == GL_MSG_RESPONSE) {
                g_autoptr(json_object) empty = NULL;
                json_object *result = m->body;

                if (!result)
                        result = empty = json_object_new_object();
                call_complete(c, call, result, NULL);
        } else {
                g_autoptr(GError) error = remote_error_new(call, m);
                call_complete(c, call, NULL, error);
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

static void established(Client *c) {
        const GlHello *h = gl_session_peer(gl_peer_session(c->peer));

        c->established = true;
        check_peer_role(c);
        if (c->mode != CLIENT_MODE_BRIDGE || c->fatal)
                return;
        if (c->reconnecting && h && h->instance)
                g_debug("%s: reconnected to the bridge (%s instance)", c->target,
                        g_strcmp0(c->bridge_instance, h->instance) == 0 ? "same" : "a new");
        g_free(c->bridge_instance);
        c->bridge_instance = g_strdup(h ? h->instance : NULL);
        c->reconnecting = false;
        resend_due(c);
}

static void peer_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        Client *c = userdata;
        GlMessage *m = ev->message;

        (void) peer;
        switch (ev->type) {
        case GL_SESSION_EVENT_ESTABLISHED:
                established(c);
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

static void peer_closed(GlPeer *peer, int error, void *userdata);

static int peer_create(Client *c) {
        static const char *const no_capabilities[] = { NULL };
        g_autofree char *instance = gl_peer_new_instance();
        GlSessionConfig config = {
                .role = "client",
                .software = "guestlink " GL_VERSION,
                .instance = instance,
                .capabilities = no_capabilities,
        };
        const GlPeerCallbacks callbacks = { .event = peer_event, .closed = peer_closed };

        c->peer = gl_peer_new(&config, &callbacks, c);
        return c->peer ? 0 : -ENOMEM;
}

static bool has_outstanding_calls(const Client *c) {
        return g_hash_table_size(c->calls) > 0 || c->resend->len > 0;
}

/* Bridge mode, the control connection ended with calls outstanding: the
 * bridge forgot them with the connection (its sessions with clients do not
 * outlive their connections), so they go back to the resend queue, to be
 * sent on a new connection with a new session. */
static void start_reconnecting(Client *c) {
        GHashTableIter it;
        gpointer key, value;

        g_hash_table_iter_init(&it, c->calls);
        while (g_hash_table_iter_next(&it, &key, &value)) {
                g_ptr_array_add(c->resend, value);
                g_hash_table_iter_steal(&it);
                g_free(key);
        }
        for (guint i = 0; i < c->resend->len; i++)
                ((ClientCall *) c->resend->pdata[i])->not_before_ms = 0;
        /* the detached peer is replaced from retry_tick(), not from inside
         * its own callback */
        c->established = false;
        c->reconnecting = true;
        g_debug("%s: the connection to the bridge was lost; reconnecting every %d ms", c->target, CLIENT_RETRY_MS);
        retry_arm(c);
}

static void peer_closed(GlPeer *peer, int error, void *userdata) {
        Client *c = userdata;

        (void) peer;
        if (c->mode == CLIENT_MODE_BRIDGE && !c->interrupted && !c->fatal && has_outstanding_calls(c)) {
                start_reconnecting(c);
                return;
        }
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

/* Bridge mode, while reconnecting: one attempt to reach the control
 * socket again, and the end of calls whose deadline passed meanwhile. */
static gboolean retry_tick(gpointer userdata) {
        Client *c = userdata;
        uint64_t now = gl_peer_now_ms();

        if (c->reconnecting && (!c->peer || !gl_peer_attached(c->peer))) {
                g_autoptr(GError) e = NULL;
                GlLink *link = NULL;

                if (connect_unix(c->socket_path, &link, &e) == 0) {
                        /* a new session: the bridge keeps none across connections */
                        c->peer = gl_peer_free(c->peer);
                        if (peer_create(c) < 0) {
                                gl_link_free(link);
                                set_fatal(c,
                                          g_error_new_literal(CLIENT_ERROR, CLIENT_ERROR_UNEXPECTED, "out of memory"));
                        } else
                                gl_peer_attach(c->peer, link); /* the handshake follows */
                } else
                        g_debug("%s, retrying", e->message);
        }
        if (!c->established && !c->fatal) {
                for (guint i = 0; i < c->resend->len;) {
                        ClientCall *call = c->resend->pdata[i];
                        g_autoptr(GError) e = NULL;

                        if (call->deadline_ms > now) {
                                i++;
                                continue;
                        }
                        g_ptr_array_steal_index(c->resend, i);
                        e = g_error_new(CLIENT_ERROR, CLIENT_ERROR_CLOSED,
                                        "%s: the connection to the bridge was lost and could not be established "
                                        "again within %" PRIu64 " s",
                                        c->target, call_timeout_s(call));
                        call_complete(c, call, NULL, e);
                }
        }
        resend_due(c);
        if (c->reconnecting && !has_outstanding_calls(c) && !c->fatal) {
                /* nobody waits for the bridge any more */
                c->reconnecting = false;
                c->peer = gl_peer_free(c->peer);
                set_fatal(c, g_error_new(CLIENT_ERROR, CLIENT_ERROR_CLOSED, "%s: the connection to the bridge was lost",
                                         c->target));
        }
        if (c->fatal || (!c->reconnecting && c->resend->len == 0)) {
                g_clear_pointer(&c->retry, g_source_unref);
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

int client_open(const ClientOptions *o, Client **ret_client, GError **error) {
        g_autoptr(Client) c = g_new0(Client, 1);
        GlLink *link = NULL;
        int r;

        c->mode = o->mode;
        c->timeout_ms = o->timeout_ms;
        c->target = g_strdup(o->mode == CLIENT_MODE_LIBVIRT ? o->domain : o->socket_path);
        c->socket_path = g_strdup(o->socket_path);
        c->calls = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, call_free);
        c->resend = g_ptr_array_new_with_free_func(call_free);
        /* libvirt runs its events (and streams) on the global default
         * context (libvirt-glib); everything else gets a private one. */
        c->ctx = o->mode == CLIENT_MODE_LIBVIRT ? g_main_context_ref(g_main_context_default()) : g_main_context_new();
        g_main_context_push_thread_default(c->ctx);
        for (size_t i = 0; i < G_N_ELEMENTS(c->signals); i++) {
                c->signals[i] = g_unix_signal_source_new(i == 0 ? SIGINT : SIGTERM);
                g_source_set_callback(c->signals[i], on_signal, c, NULL);
                g_source_attach(c->signals[i], c->ctx);
        }

        if (peer_create(c) < 0) {
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
        retry_disarm(c);
        for (size_t i = 0; i < G_N_ELEMENTS(c->signals); i++) {
                if (c->signals[i]) {
                        g_source_destroy(c->signals[i]);
                        g_source_unref(c->signals[i]);
                }
        }
        if (c->calls)
                g_hash_table_destroy(c->calls);
        if (c->resend)
                g_ptr_array_unref(c->resend);
        if (c->ctx) {
                g_main_context_pop_thread_default(c->ctx);
                g_main_context_unref(c->ctx);
        }
        g_clear_error(&c->fatal);
        g_free(c->bridge_instance);
        g_free(c->socket_path);
        g_free(c->target);
        g_free(c);
        return NULL;
}

json_object *client_peer_agent(Client *c) {
        GlSession *s = c->peer ? gl_peer_session(c->peer) : NULL;
        const GlHello *h = s ? gl_session_peer(s) : NULL;
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
        return c->peer && gl_session_peer_has_capability(gl_peer_session(c->peer), capability);
}

void client_set_event_handler(Client *c, ClientEventFunc fn, void *userdata) {
        c->on_event = fn;
        c->event_userdata = userdata;
}

/* Takes ownership of params (also on failure). */
static int request_start(Client *c, const char *method, json_object *params, uint64_t timeout_ms, bool inner_timeout,
                         ClientCallFunc fn, void *userdata, GError **error) {
        ClientCall *call;
        int r;

        if (c->fatal) {
                json_object_put(params);
                g_propagate_error(error, g_error_copy(c->fatal));
                return -ENOTCONN;
        }
        call = g_new0(ClientCall, 1);
        call->fn = fn;
        call->userdata = userdata;
        call->method = g_strdup(method);
        call->params = params;
        call->inner_timeout = inner_timeout;
        call->timeout_ms = timeout_ms ? timeout_ms : c->timeout_ms;
        call->deadline_ms = gl_peer_now_ms() + call->timeout_ms;
        if (c->reconnecting) { /* sent once the new connection is established */
                call_defer(c, call, 0);
                return 0;
        }
        r = call_send_now(c, call);
        if (r < 0) {
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNEXPECTED, "cannot send the %s request: %s", method,
                            g_strerror(-r));
                call_free(call);
                return r;
        }
        return 0;
}

static json_object *bridge_call_params(const char *guest, const char *method, json_object *params) {
        json_object *p = json_object_new_object();

        json_object_object_add(p, "guest", json_object_new_string(guest ? guest : ""));
        json_object_object_add(p, "method", json_object_new_string(method));
        if (params)
                json_object_object_add(p, "params", params);
        return p;
}

static int call_start(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                      ClientCallFunc fn, void *userdata, GError **error) {
        if (!timeout_ms)
                timeout_ms = c->timeout_ms;
        if (c->mode != CLIENT_MODE_BRIDGE)
                return request_start(c, method, params, timeout_ms, false, fn, userdata, error);
        /* call_send() sets params.timeout_ms: the agent's deadline, CLIENT_BRIDGE_GRACE_MS before ours */
        return request_start(c, "bridge.call", bridge_call_params(guest, method, params),
                             timeout_ms + CLIENT_BRIDGE_GRACE_MS, true, fn, userdata, error);
}

int client_call_async(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                      ClientCallFunc fn, void *userdata) {
        return call_start(c, guest, method, params, timeout_ms, fn, userdata, NULL);
}

int client_request_async(Client *c, const char *method, json_object *params, uint64_t timeout_ms, ClientCallFunc fn,
                         void *userdata) {
        return request_start(c, method, params, timeout_ms, false, fn, userdata, NULL);
}

unsigned client_answer_sends(const Client *c) {
        return c->answer_sends;
}

typedef struct SyncCall {
        bool done;
        unsigned sends;
        json_object *result;
        GError *error;
} SyncCall;

static void sync_done(Client *c, json_object *result, const GError *error, void *userdata) {
        SyncCall *s = userdata;

        s->done = true;
        s->sends = client_answer_sends(c);
        if (result)
                s->result = json_object_get(result);
        else
                s->error = g_error_copy(error);
}

/* Drops the outstanding calls that would report to userdata. */
static void calls_forget(Client *c, void *userdata) {
        GHashTableIter it;
        gpointer value;

        g_hash_table_iter_init(&it, c->calls);
        while (g_hash_table_iter_next(&it, NULL, &value))
                if (((ClientCall *) value)->userdata == userdata)
                        g_hash_table_iter_remove(&it);
        for (guint i = 0; i < c->resend->len;) {
                if (((ClientCall *) c->resend->pdata[i])->userdata == userdata)
                        g_ptr_array_remove_index(c->resend, i);
                else
                        i++;
        }
}

static int sync_finish(Client *c, SyncCall *s, json_object **ret_result, unsigned *ret_sends, GError **error) {
        int r = client_wait(c, &s->done, UINT64_MAX, error);

        if (r < 0) {
                calls_forget(c, s);
                return r;
        }
        if (ret_sends)
                *ret_sends = s->sends;
        if (s->error) {
                g_propagate_error(error, s->error);
                return -EREMOTEIO;
        }
        *ret_result = s->result;
        return 0;
}

int client_call_full(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                     json_object **ret_result, unsigned *ret_sends, GError **error) {
        SyncCall s = { 0 };
        int r;

        r = call_start(c, guest, method, params, timeout_ms, sync_done, &s, error);
        if (r < 0)
                return r;
        return sync_finish(c, &s, ret_result, ret_sends, error);
}

int client_call(Client *c, const char *guest, const char *method, json_object *params, uint64_t timeout_ms,
                json_object **ret_result, GError **error) {
        return client_call_full(c, guest, method, params, timeout_ms, ret_result, NULL, error);
}

int client_bridge_call(Client *c, const char *method, json_object *params, uint64_t timeout_ms,
                       json_object **ret_result, GError **error) {
        SyncCall s = { 0 };
        int r;

        r = request_start(c, method, params, timeout_ms, false, sync_done, &s, error);
        if (r < 0)
                return r;
        return sync_finish(c, &s, ret_result, NULL, error);
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
