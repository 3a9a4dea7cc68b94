/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "guest.h"

#include <errno.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "peer.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
/* A connection on which no agent said HELLO for this long is made again:
 * a guest that opened its port while nobody listened may have missed the
 * "host connected" notification. */
#define AGENT_ABSENT_RECONNECT_MS 30000

typedef struct CachedJson {
        char *text; /* NULL: none */
        size_t len;
        int64_t unix_us;
} CachedJson;

typedef struct HistoryEntry {
        int64_t unix_us;
        size_t len;
        char text[]; /* JSON text, NUL-terminated */
} HistoryEntry;

struct GlGuest {
        char *name, *uuid, *source, *uri, *instance;
        const GlBridgeConfig *config;
        GlGuestOpener opener;
        void *opener_data;
        GDestroyNotify opener_data_free;
        GlGuestEventFn event;
        GlGuestAnswerFn answer;
        void *userdata;

        GlPeer *peer;
        GlGuestState state;
        int64_t state_since_us;
        bool running, stopped;
        GSource *reconnect; /* backoff, penalty and agent-absent timer */
        unsigned backoff_ms;
        GSource *heartbeat_timer;
        unsigned heartbeat_interval_seconds;

        char *subscribed_instance; /* agent instance our subscriptions belong to */
        uint64_t info_id;
        GHashTable *calls; /* request id -> tag (forwarded requests) */

        CachedJson info, stats, heartbeat;
        char *heartbeat_state;
        GQueue history; /* HistoryEntry* */
        size_t history_bytes;

        uint64_t disconnects, limit_disconnects, oversized_samples;
        int64_t errors_window_start_us;
        uint64_t errors_window_base;
};

static const char *const state_names[_GL_GUEST_STATE_MAX] = {
        [GL_GUEST_CONNECTING] = "connecting",
        [GL_GUEST_AGENT_ABSENT] = "agent-absent",
        [GL_GUEST_CONNECTED] = "connected",
        [GL_GUEST_INCOMPATIBLE] = "incompatible",
        [GL_GUEST_HEARTBEAT_MISSED] = "heartbeat-missed",
};

const char *gl_guest_state_to_string(GlGuestState s) {
        return s < _GL_GUEST_STATE_MAX ? state_names[s] : "unknown";
}

static void cached_clear(CachedJson *c) {
        g_clear_pointer(&c->text, g_free);
        c->len = 0;
        c->unix_us = 0;
}

static size_t memory_used(const GlGuest *g) {
        return g->info.len + g->stats.len + g->heartbeat.len + g->history_bytes;
}

static gboolean timer_dispatch(GSource *source, GSourceFunc callback, gpointer userdata) {
        (void) source;
        return callback(userdata);
}

static const GSourceFuncs timer_funcs = { .dispatch = timer_dispatch };

static GSource *timer_new(GSourceFunc fn, void *userdata, const char *name) {
        GSource *s = g_source_new((GSourceFuncs *) &timer_funcs, sizeof(GSource));

        g_source_set_callback(s, fn, userdata, NULL);
        g_source_set_static_name(s, name);
        g_source_set_ready_time(s, -1);
        g_source_attach(s, g_main_context_get_thread_default());
        return s;
}

static void timer_in(GSource *s, uint64_t ms) {
        g_source_set_ready_time(s, g_get_monotonic_time() + (gint64) ms * 1000);
}

static void emit(GlGuest *g, const char *kind, json_object *data) {
        if (g->event)
                g->event(g, kind, data, g->userdata);
}

static void set_state(GlGuest *g, GlGuestState state) {
        json_object *data;

        if (g->state == state)
                return;
        g->state = state;
        g->state_since_us = g_get_real_time();
        data = json_object_new_object();
        json_object_object_add(data, "state", json_object_new_string(gl_guest_state_to_string(state)));
        emit(g, "state", data);
        json_object_put(data);
}

static json_object *agent_json(const GlGuest *g) {
        GlSession *s = gl_peer_session(g->peer);
        const GlHello *h = gl_session_peer(s);
        json_object *o, *caps;

        if (!h)
                return NULL;
        o = json_object_new_object();
        if (h->software)
                json_object_object_add(o, "software", json_object_new_string(h->software));
        if (h->instance)
                json_object_object_add(o, "instance", json_object_new_string(h->instance));
        json_object_object_add(o, "protocol_version", json_object_new_int64(gl_session_version(s)));
        caps = json_object_new_array();
        for (size_t i = 0; i < h->n_capabilities; i++)
                json_object_array_add(caps, json_object_new_string(h->capabilities[i]));
        json_object_object_add(o, "capabilities", caps);
        return o;
}

/* ---- connection management ---- */

static void schedule_reconnect(GlGuest *g, uint64_t ms) {
        if (!g->opener || g->stopped)
                return;
        timer_in(g->reconnect, ms);
}

static void lost_link(GlGuest *g, bool penalty) {
        bool was_up = g->state == GL_GUEST_CONNECTED || g->state == GL_GUEST_HEARTBEAT_MISSED;

        g_source_set_ready_time(g->heartbeat_timer, -1);
        g->disconnects++;
        if (g->opener && strcmp(g->source, "static") == 0)
                g->running = false; /* QEMU closed its chardev: it exited (or will be back) */
        set_state(g, GL_GUEST_CONNECTING);
        if (was_up)
                emit(g, "disconnected", NULL);
        if (penalty)
                schedule_reconnect(g, g->config->limits.penalty_ms);
        else {
                schedule_reconnect(g, g->backoff_ms);
                g->backoff_ms = MIN(g->backoff_ms * 2, BACKOFF_MAX_MS);
        }
}

static void disconnect_for_limit(GlGuest *g, const char *what) {
        gl_log_guest(LOG_WARNING, g->name, g->uuid, "Guest exceeded %s; disconnecting it for %" PRIu64 " s", what,
                     g->config->limits.penalty_ms / 1000);
        g->limit_disconnects++;
        gl_peer_detach(g->peer);
        lost_link(g, true);
}

static gboolean reconnect_fired(gpointer userdata) {
        GlGuest *g = userdata;
        g_autoptr(GError) error = NULL;
        GlLink *link;

        g_source_set_ready_time(g->reconnect, -1);
        if (g->stopped || !g->opener)
                return G_SOURCE_CONTINUE;
        if (gl_peer_attached(g->peer)) {
                /* the agent-absent timer: no HELLO on this connection */
                if (g->state == GL_GUEST_AGENT_ABSENT) {
                        gl_log_guest(LOG_INFO, g->name, g->uuid, "No agent answered for %d s; connecting again",
                                     AGENT_ABSENT_RECONNECT_MS / 1000);
                        gl_peer_detach(g->peer);
                        lost_link(g, false);
                }
                return G_SOURCE_CONTINUE;
        }
        link = g->opener(g, g->opener_data, &error);
        if (!link) {
                if (g->backoff_ms >= BACKOFF_MAX_MS || g->backoff_ms == BACKOFF_MIN_MS)
                        gl_log_guest(LOG_DEBUG, g->name, g->uuid, "Cannot connect: %s; retrying", error->message);
                schedule_reconnect(g, g->backoff_ms);
                g->backoff_ms = MIN(g->backoff_ms * 2, BACKOFF_MAX_MS);
                return G_SOURCE_CONTINUE;
        }
        gl_guest_attach(g, link);
        return G_SOURCE_CONTINUE;
}

static gboolean heartbeat_missed(gpointer userdata) {
        GlGuest *g = userdata;

        g_source_set_ready_time(g->heartbeat_timer, -1);
        if (g->state != GL_GUEST_CONNECTED)
                return G_SOURCE_CONTINUE;
        gl_log_guest(LOG_WARNING, g->name, g->uuid, "No heartbeat for %u s", 3 * g->heartbeat_interval_seconds);
        set_state(g, GL_GUEST_HEARTBEAT_MISSED);
        emit(g, "heartbeat-missed", NULL);
        return G_SOURCE_CONTINUE;
}

static void arm_heartbeat(GlGuest *g) {
        if (g->heartbeat_interval_seconds > 0)
                timer_in(g->heartbeat_timer, 3000ull * g->heartbeat_interval_seconds);
}

/* ---- messages from the agent ---- */

static void subscribe(GlGuest *g) {
        const GlBridgeConfig *c = g->config;
        const GlHello *h = gl_session_peer(gl_peer_session(g->peer));
        json_object *params;
        uint64_t id;

        g_free(g->subscribed_instance);
        g->subscribed_instance = g_strdup(h ? h->instance : NULL);
        if (gl_peer_request(g->peer, "info", NULL, c->request_timeout_ms, &g->info_id) < 0)
                g->info_id = 0;
        if (c->stats_interval_seconds > 0 && gl_session_peer_has_capability(gl_peer_session(g->peer), "stats")) {
                params = json_object_new_object();
                json_object_object_add(params, "interval_seconds", json_object_new_int64(c->stats_interval_seconds));
                (void) gl_peer_request(g->peer, "stats.subscribe", params, c->request_timeout_ms, &id);
        }
        g->heartbeat_interval_seconds = 0;
        if (c->heartbeat_interval_seconds > 0 &&
            gl_session_peer_has_capability(gl_peer_session(g->peer), "heartbeat")) {
                params = json_object_new_object();
                json_object_object_add(params, "interval_seconds",
                                       json_object_new_int64(c->heartbeat_interval_seconds));
                if (gl_peer_request(g->peer, "heartbeat.subscribe", params, c->request_timeout_ms, &id) >= 0)
                        g->heartbeat_interval_seconds = c->heartbeat_interval_seconds;
        }
}

static bool cache_store(GlGuest *g, CachedJson *c, json_object *data) {
        size_t len;
        const char *text = json_object_to_json_string_length(data, JSON_C_TO_STRING_PLAIN, &len);
        size_t old = c->len;

        /* one object may use at most a quarter of the guest's budget */
        if (len > g->config->limits.max_memory_bytes / 4) {
                if (g->oversized_samples++ == 0)
                        gl_log_guest(LOG_WARNING, g->name, g->uuid,
                                     "Dropped a %zu-byte JSON object: over a quarter of max_guest_memory_bytes", len);
                return false;
        }
        g_free(c->text);
        c->text = g_strndup(text, len);
        c->len = len;
        c->unix_us = g_get_real_time();
        (void) old;
        return true;
}

static void history_trim(GlGuest *g) {
        while (g->history.length > 0 &&
               (g->history.length > g->config->stats_history || memory_used(g) > g->config->limits.max_memory_bytes)) {
                HistoryEntry *e = g_queue_pop_head(&g->history);
                g->history_bytes -= e->len;
                g_free(e);
        }
}

static void handle_stats(GlGuest *g, json_object *data) {
        HistoryEntry *e;

        if (!data || !cache_store(g, &g->stats, data))
                return;
        if (g->config->stats_history > 0) {
                e = g_malloc(sizeof(*e) + g->stats.len + 1);
                e->unix_us = g->stats.unix_us;
                e->len = g->stats.len;
                memcpy(e->text, g->stats.text, g->stats.len + 1);
                g_queue_push_tail(&g->history, e);
                g->history_bytes += e->len;
        }
        history_trim(g);
        emit(g, "stats", data);
}

static void handle_heartbeat(GlGuest *g, json_object *data) {
        json_object *st;
        const char *state;

        if (!data || !cache_store(g, &g->heartbeat, data))
                return;
        history_trim(g);
        if (g->state == GL_GUEST_HEARTBEAT_MISSED) {
                gl_log_guest(LOG_INFO, g->name, g->uuid, "Heartbeats are back");
                set_state(g, GL_GUEST_CONNECTED);
        }
        arm_heartbeat(g);
        state = json_object_object_get_ex(data, "state", &st) && json_object_is_type(st, json_type_string)
                        ? json_object_get_string(st)
                        : NULL;
        if (state && g_strcmp0(state, g->heartbeat_state) != 0) {
                bool first = g->heartbeat_state == NULL;
                g_free(g->heartbeat_state);
                g->heartbeat_state = g_strndup(state, 64);
                if (!first || strcmp(state, "running") != 0)
                        emit(g, "power-state", data);
        }
}

static void handle_answer(GlGuest *g, GlMessage *m) {
        gpointer tag;

        if (m->id == g->info_id && g->info_id) {
                g->info_id = 0;
                if (m->type == GL_MSG_RESPONSE && m->body && cache_store(g, &g->info, m->body))
                        history_trim(g);
                return;
        }
        if (g_hash_table_steal_extended(g->calls, GSIZE_TO_POINTER((gsize) m->id), NULL, &tag)) {
                uint64_t t = (uint64_t) GPOINTER_TO_SIZE(tag);
                if (g->answer)
                        g->answer(g, m, t, g->userdata);
                return;
        }
        if (m->type == GL_MSG_ERROR && m->id) {
                g_autofree char *text = gl_sanitize(m->error_message ? m->error_message : "", 256);
                gl_log_guest(LOG_INFO, g->name, g->uuid, "Agent refused request %" PRIu64 ": %s%s%s", m->id,
                             gl_error_code_to_string(m->code), *text ? ": " : "", text);
        }
}

static void handle_message(GlGuest *g, GlMessage *m) {
        switch (m->type) {
        case GL_MSG_RESPONSE:
        case GL_MSG_ERROR:
                handle_answer(g, m);
                break;
        case GL_MSG_EVENT:
                if (strcmp(m->name, "stats") == 0)
                        handle_stats(g, m->body);
                else if (strcmp(m->name, "heartbeat") == 0)
                        handle_heartbeat(g, m->body);
                else if (strcmp(m->name, "power.progress") == 0 && m->body)
                        emit(g, "power-state", m->body);
                break;
        case GL_MSG_REQUEST:
                /* agents make no requests of the bridge */
                (void) gl_peer_respond_error(g->peer, m->id, GL_ERROR_UNSUPPORTED, "the bridge serves no requests");
                break;
        default:
                break;
        }
}

static void check_error_rate(GlGuest *g) {
        uint64_t errors = gl_session_stats(gl_peer_session(g->peer))->protocol_errors;
        int64_t now = g_get_monotonic_time();

        if (now - g->errors_window_start_us > 60 * G_USEC_PER_SEC) {
                g->errors_window_start_us = now;
                g->errors_window_base = errors;
                return;
        }
        if (errors - g->errors_window_base > g->config->limits.max_protocol_errors) {
                g->errors_window_start_us = now;
                g->errors_window_base = errors;
                disconnect_for_limit(g, "max_protocol_errors_per_minute");
        }
}

static void on_peer_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        GlGuest *g = userdata;
        const GlHello *h;
        json_object *agent;

        (void) peer;
        switch (ev->type) {
        case GL_SESSION_EVENT_MESSAGE:
                handle_message(g, ev->message);
                gl_message_free(ev->message);
                break;
        case GL_SESSION_EVENT_ESTABLISHED:
                g->backoff_ms = BACKOFF_MIN_MS;
                g_source_set_ready_time(g->reconnect, -1);
                g->running = true;
                h = gl_session_peer(gl_peer_session(g->peer));
                if (!g->subscribed_instance || !h || g_strcmp0(h->instance, g->subscribed_instance) != 0)
                        subscribe(g);
                set_state(g, GL_GUEST_CONNECTED);
                arm_heartbeat(g);
                agent = agent_json(g);
                {
                        g_autofree char *sw = gl_sanitize(h && h->software ? h->software : "unknown software", 128);
                        gl_log_guest(LOG_INFO, g->name, g->uuid, "Agent connected (%s)", sw);
                }
                emit(g, "connected", agent);
                json_object_put(agent);
                break;
        case GL_SESSION_EVENT_PEER_RESTARTED:
                g_clear_pointer(&g->subscribed_instance, g_free);
                g_clear_pointer(&g->heartbeat_state, g_free);
                break;
        case GL_SESSION_EVENT_INCOMPATIBLE:
                gl_log_guest(LOG_WARNING, g->name, g->uuid, "Agent speaks no protocol version we know");
                set_state(g, GL_GUEST_INCOMPATIBLE);
                break;
        case GL_SESSION_EVENT_PROTOCOL_ERROR:
                gl_log_guest(LOG_DEBUG, g->name, g->uuid, "Protocol error %d (%s), ignoring", ev->error,
                             ev->detail ? ev->detail : "");
                check_error_rate(g);
                break;
        }
}

static void on_peer_closed(GlPeer *peer, int error, void *userdata) {
        GlGuest *g = userdata;

        (void) peer;
        if (error < 0)
                gl_log_guest(LOG_INFO, g->name, g->uuid, "Connection failed: %s", g_strerror(-error));
        else
                gl_log_guest(LOG_INFO, g->name, g->uuid, "Connection closed by QEMU");
        lost_link(g, false);
}

/* ---- public ---- */

GlGuest *gl_guest_new(const GlGuestSetup *setup) {
        const GlBridgeConfig *c = setup->config;
        GlGuest *g = g_new0(GlGuest, 1);
        static const char *const caps[] = { NULL };
        GlSessionConfig sc = {
                .role = "bridge",
                .software = "guestlink-bridge " GL_VERSION,
                .instance = setup->instance,
                .capabilities = caps,
                .limits = c->limits.frame,
                .max_requests_in_flight = c->limits.max_requests_in_flight,
                /* what the bridge sends a guest is small: requests */
                .max_control_queue_bytes = 256 * 1024,
                .max_bulk_queue_bytes = 256 * 1024,
                .max_window_bytes = 256 * 1024,
        };
        GlPeerCallbacks cb = { .event = on_peer_event, .closed = on_peer_closed };
        GlPeerThrottle t = {
                .max_bytes_per_second = c->limits.max_bytes_per_second,
                .max_frames_per_second = c->limits.max_frames_per_second,
        };

        g->peer = gl_peer_new(&sc, &cb, g);
        if (!g->peer) {
                g_free(g);
                return NULL;
        }
        gl_peer_set_throttle(g->peer, &t);
        g->name = g_strdup(setup->name);
        g->uuid = g_strdup(setup->uuid);
        g->source = g_strdup(setup->source);
        g->uri = g_strdup(setup->uri);
        g->config = c;
        g->opener = setup->opener;
        g->opener_data = setup->opener_data;
        g->opener_data_free = setup->opener_data_free;
        g->event = setup->event;
        g->answer = setup->answer;
        g->userdata = setup->userdata;
        g->state = GL_GUEST_CONNECTING;
        g->state_since_us = g_get_real_time();
        g->running = true;
        g->backoff_ms = BACKOFF_MIN_MS;
        g->reconnect = timer_new(reconnect_fired, g, "gl-guest-reconnect");
        g->heartbeat_timer = timer_new(heartbeat_missed, g, "gl-guest-heartbeat");
        g->calls = g_hash_table_new(NULL, NULL);
        g_queue_init(&g->history);
        g->errors_window_start_us = g_get_monotonic_time();
        return g;
}

static void answer_all_pending(GlGuest *g, GlErrorCode code, const char *text) {
        GHashTableIter it;
        gpointer key, tag;

        g_hash_table_iter_init(&it, g->calls);
        while (g_hash_table_iter_next(&it, &key, &tag)) {
                GlMessage m = {
                        .type = GL_MSG_ERROR,
                        .id = GPOINTER_TO_SIZE(key),
                        .code = code,
                        .error_message = text,
                        .local = true,
                };
                g_hash_table_iter_remove(&it);
                if (g->answer)
                        g->answer(g, &m, (uint64_t) GPOINTER_TO_SIZE(tag), g->userdata);
        }
}

GlGuest *gl_guest_free(GlGuest *g) {
        if (!g)
                return NULL;
        answer_all_pending(g, GL_ERROR_NO_AGENT, "the guest was detached");
        g_source_destroy(g->reconnect);
        g_source_unref(g->reconnect);
        g_source_destroy(g->heartbeat_timer);
        g_source_unref(g->heartbeat_timer);
        g->peer = gl_peer_free(g->peer);
        if (g->opener_data_free)
                g->opener_data_free(g->opener_data);
        g_hash_table_unref(g->calls);
        g_queue_clear_full(&g->history, g_free);
        cached_clear(&g->info);
        cached_clear(&g->stats);
        cached_clear(&g->heartbeat);
        g_free(g->heartbeat_state);
        g_free(g->subscribed_instance);
        g_free(g->name);
        g_free(g->uuid);
        g_free(g->source);
        g_free(g->uri);
        g_free(g);
        return NULL;
}

const char *gl_guest_name(const GlGuest *g) {
        return g->name;
}

const char *gl_guest_uuid(const GlGuest *g) {
        return g->uuid;
}

const char *gl_guest_source(const GlGuest *g) {
        return g->source;
}

const char *gl_guest_uri(const GlGuest *g) {
        return g->uri;
}

GlGuestState gl_guest_state(const GlGuest *g) {
        return g->state;
}

bool gl_guest_running(const GlGuest *g) {
        return g->running;
}

void gl_guest_attach(GlGuest *g, GlLink *link) {
        gl_peer_attach(g->peer, link);
        if (!gl_peer_attached(g->peer))
                return; /* failed at once; on_peer_closed() scheduled a retry */
        g->running = true;
        if (gl_session_state(gl_peer_session(g->peer)) != GL_SESSION_ESTABLISHED) {
                set_state(g, GL_GUEST_AGENT_ABSENT);
                if (g->opener)
                        timer_in(g->reconnect, AGENT_ABSENT_RECONNECT_MS);
        }
}

void gl_guest_start(GlGuest *g) {
        g->stopped = false;
        if (!gl_peer_attached(g->peer))
                schedule_reconnect(g, 0);
}

void gl_guest_restart(GlGuest *g, const char *kind) {
        GlLink *link = gl_peer_link(g->peer);

        g->stopped = false;
        if (!link) {
                schedule_reconnect(g, 0);
                return;
        }
        if (kind && strcmp(gl_link_kind(link), kind) != 0)
                return;
        gl_peer_detach(g->peer);
        lost_link(g, false);
        schedule_reconnect(g, 0);
}

void gl_guest_resubscribe(GlGuest *g) {
        if (g->state == GL_GUEST_CONNECTED || g->state == GL_GUEST_HEARTBEAT_MISSED) {
                subscribe(g);
                arm_heartbeat(g);
        }
}

void gl_guest_stopped(GlGuest *g) {
        g->stopped = true;
        g->running = false;
        g_source_set_ready_time(g->reconnect, -1);
        if (gl_peer_attached(g->peer)) {
                gl_peer_detach(g->peer);
                lost_link(g, false);
        }
        answer_all_pending(g, GL_ERROR_NO_AGENT, "the guest stopped");
}

int gl_guest_call(GlGuest *g, const char *method, json_object *params, uint64_t timeout_ms, uint64_t tag,
                  GlErrorCode *ret_code, const char **ret_message) {
        uint64_t id;
        int r;

        /* A guest whose heartbeats stopped is treated as having no agent:
         * the agent died or hangs (QEMU shows the host no EOF when the guest
         * closes its port), and a caller should learn that at once, not
         * after its timeout.  The next heartbeat makes it reachable again. */
        if (g->state != GL_GUEST_CONNECTED) {
                json_object_put(params);
                *ret_code = GL_ERROR_NO_AGENT;
                *ret_message = g->state == GL_GUEST_CONNECTING         ? "the guest's chardev is not connected"
                               : g->state == GL_GUEST_INCOMPATIBLE     ? "the agent speaks an incompatible protocol"
                               : g->state == GL_GUEST_HEARTBEAT_MISSED ? "the agent stopped sending heartbeats"
                                                                       : "no agent is answering in the guest";
                return -ENOTCONN;
        }
        r = gl_peer_request(g->peer, method, params, timeout_ms, &id);
        if (r < 0) {
                *ret_code = r == -EMSGSIZE ? GL_ERROR_TOO_LARGE : r == -EINVAL ? GL_ERROR_INVALID : GL_ERROR_BUSY;
                *ret_message = r == -EMSGSIZE ? "the request does not fit the agent's limits"
                               : r == -EINVAL ? "invalid method name"
                                              : "too many requests in flight to this guest";
                return r;
        }
        g_hash_table_insert(g->calls, GSIZE_TO_POINTER((gsize) id), GSIZE_TO_POINTER((gsize) tag));
        return 0;
}

json_object *gl_guest_to_json(const GlGuest *g) {
        json_object *o = json_object_new_object();
        json_object *agent = agent_json(g), *c, *info, *v;
        GlGuestCounters k;

        json_object_object_add(o, "name", json_object_new_string(g->name));
        if (g->uuid)
                json_object_object_add(o, "uuid", json_object_new_string(g->uuid));
        json_object_object_add(o, "source", json_object_new_string(g->source));
        if (g->uri)
                json_object_object_add(o, "uri", json_object_new_string(g->uri));
        if (gl_peer_attached(g->peer))
                json_object_object_add(o, "transport", json_object_new_string(gl_link_kind(gl_peer_link(g->peer))));
        json_object_object_add(o, "state", json_object_new_string(gl_guest_state_to_string(g->state)));
        json_object_object_add(o, "state_since_unix_us", json_object_new_int64(g->state_since_us));
        json_object_object_add(o, "running", json_object_new_boolean(g->running));
        if (agent && (g->state == GL_GUEST_CONNECTED || g->state == GL_GUEST_HEARTBEAT_MISSED))
                json_object_object_add(o, "agent", agent);
        else
                json_object_put(agent);
        info = gl_guest_last_info(g);
        if (info) {
                json_object *os;
                if (json_object_object_get_ex(info, "hostname", &v) && json_object_is_type(v, json_type_string))
                        json_object_object_add(o, "hostname", json_object_get(v));
                if (json_object_object_get_ex(info, "os", &os) && json_object_object_get_ex(os, "pretty_name", &v) &&
                    json_object_is_type(v, json_type_string))
                        json_object_object_add(o, "os_pretty_name", json_object_get(v));
                json_object_put(info);
        }
        if (g->heartbeat.text) {
                json_object *hb = json_tokener_parse(g->heartbeat.text), *h = json_object_new_object();
                if (hb && json_object_object_get_ex(hb, "seq", &v))
                        json_object_object_add(h, "seq", json_object_get(v));
                if (hb && json_object_object_get_ex(hb, "state", &v))
                        json_object_object_add(h, "state", json_object_get(v));
                json_object_object_add(h, "received_unix_us", json_object_new_int64(g->heartbeat.unix_us));
                json_object_object_add(o, "heartbeat", h);
                json_object_put(hb);
        }
        if (g->stats.text)
                json_object_object_add(o, "stats_unix_us", json_object_new_int64(g->stats.unix_us));
        gl_guest_counters(g, &k);
        c = json_object_new_object();
        json_object_object_add(c, "frames_in", json_object_new_int64((int64_t) k.frames_in));
        json_object_object_add(c, "frames_out", json_object_new_int64((int64_t) k.frames_out));
        json_object_object_add(c, "bytes_in", json_object_new_int64((int64_t) k.bytes_in));
        json_object_object_add(c, "bytes_out", json_object_new_int64((int64_t) k.bytes_out));
        json_object_object_add(c, "protocol_errors", json_object_new_int64((int64_t) k.protocol_errors));
        json_object_object_add(c, "throttled", json_object_new_int64((int64_t) k.throttled));
        json_object_object_add(c, "disconnects", json_object_new_int64((int64_t) k.disconnects));
        json_object_object_add(o, "counters", c);
        return o;
}

static json_object *cached_parse(const CachedJson *c) {
        return c->text ? json_tokener_parse(c->text) : NULL;
}

json_object *gl_guest_last_info(const GlGuest *g) {
        return cached_parse(&g->info);
}

json_object *gl_guest_last_stats(const GlGuest *g) {
        return cached_parse(&g->stats);
}

json_object *gl_guest_last_heartbeat(const GlGuest *g) {
        return cached_parse(&g->heartbeat);
}

int64_t gl_guest_stats_unix_us(const GlGuest *g) {
        return g->stats.unix_us;
}

json_object *gl_guest_stats_history(const GlGuest *g, int64_t since_unix_us) {
        json_object *a = json_object_new_array();

        for (GList *l = g->history.head; l; l = l->next) {
                const HistoryEntry *e = l->data;
                json_object *s;
                if (e->unix_us < since_unix_us)
                        continue;
                s = json_tokener_parse(e->text);
                if (s)
                        json_object_array_add(a, s);
        }
        return a;
}

void gl_guest_counters(const GlGuest *g, GlGuestCounters *ret) {
        const GlSessionStats *s = gl_session_stats(gl_peer_session(g->peer));

        *ret = (GlGuestCounters){
                .frames_in = s->frames_in,
                .frames_out = s->frames_out,
                .bytes_in = s->bytes_in,
                .bytes_out = s->bytes_out,
                .protocol_errors = s->protocol_errors,
                .throttled = gl_peer_throttled(g->peer),
                .disconnects = g->disconnects,
                .limit_disconnects = g->limit_disconnects,
                .memory_bytes = memory_used(g),
        };
}
