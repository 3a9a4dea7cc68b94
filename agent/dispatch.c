/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dispatch.h"

#define LOG_WARNING 4 /* syslog priorities, without the OS header */
#define LOG_NOTICE 5

typedef struct Subscription {
        uint32_t interval_seconds; /* 0 = off */
        GlStatsQuery query;        /* stats */
} Subscription;

struct GlDispatch {
        GlSession *session;
        GlPolicy policy;
        GlDispatchLimits limits;
        GlPlatform platform;
        GlDispatchStats stats;

        double tokens;
        uint64_t tokens_at_ms;
        bool tokens_started;

        Subscription sub[_GL_TIMER_MAX];
        GlAgentState state;
        uint64_t heartbeat_seq;

        /* the one power operation scheduled or running, if any */
        struct {
                uint64_t last_id;
                uint64_t id; /* 0 = none */
                GlPowerAction action;
                bool executing;
                char message[GL_POWER_MESSAGE_MAX + 1];
        } power;
};

#define POWER_GRACE_MS 500 /* lets the acceptance reach the host before acting */

static const char *const power_actions[_GL_POWER_ACTION_MAX] = {
        [GL_POWER_POWEROFF] = "poweroff", [GL_POWER_REBOOT] = "reboot",       [GL_POWER_HALT] = "halt",
        [GL_POWER_SUSPEND] = "suspend",   [GL_POWER_HIBERNATE] = "hibernate", [GL_POWER_HYBRID_SLEEP] = "hybrid-sleep",
};

const char *gl_power_action_to_string(GlPowerAction a) {
        return a >= 0 && a < _GL_POWER_ACTION_MAX ? power_actions[a] : "unknown";
}

bool gl_power_action_is_sleep(GlPowerAction a) {
        return a == GL_POWER_SUSPEND || a == GL_POWER_HIBERNATE || a == GL_POWER_HYBRID_SLEEP;
}

/* Every combination of the optional platform parts, in one order. */
static const char *const capability_sets[8][7] = {
        { "info", "heartbeat", NULL },
        { "info", "heartbeat", "stats", NULL },
        { "info", "heartbeat", "power", NULL },
        { "info", "heartbeat", "stats", "power", NULL },
        { "info", "heartbeat", "lock", NULL },
        { "info", "heartbeat", "stats", "lock", NULL },
        { "info", "heartbeat", "power", "lock", NULL },
        { "info", "heartbeat", "stats", "power", "lock", NULL },
};

static const char *const section_names[_GL_STATS_SECTION_MAX] = {
        [GL_STATS_CPU] = "cpu",
        [GL_STATS_LOAD] = "load",
        [GL_STATS_MEMORY] = "memory",
        [GL_STATS_PROCESSES] = "processes",
        [GL_STATS_PRESSURE] = "pressure",
        [GL_STATS_FILESYSTEMS] = "filesystems",
        [GL_STATS_DISKS] = "disks",
        [GL_STATS_NETWORK] = "network",
        [GL_STATS_POWER_SUPPLIES] = "power_supplies",
        [GL_STATS_TOP_PROCESSES] = "top_processes",
};

const char *const *gl_dispatch_capabilities(const GlPlatform *platform) {
        unsigned i = (platform->stats ? 1 : 0) | (platform->power_check && platform->power_execute ? 2 : 0) |
                     (platform->lock ? 4 : 0);
        return capability_sets[i];
}

static bool implemented(const GlDispatch *d, GlFamily f) {
        switch (f) {
        case GL_FAMILY_STATS:
                return d->platform.stats;
        case GL_FAMILY_POWER:
                return d->platform.power_check && d->platform.power_execute;
        case GL_FAMILY_LOCK:
                return d->platform.lock;
        case GL_FAMILY_LOGS:
        case GL_FAMILY_CLIPBOARD:
                return false;
        default:
                return true;
        }
}

const char *gl_agent_state_to_string(GlAgentState s) {
        static const char *const names[_GL_AGENT_STATE_MAX] = {
                [GL_AGENT_RUNNING] = "running",
                [GL_AGENT_SHUTTING_DOWN] = "shutting-down",
                [GL_AGENT_SUSPENDING] = "suspending",
                [GL_AGENT_RESUMED] = "resumed",
        };
        return s >= 0 && s < _GL_AGENT_STATE_MAX ? names[s] : "unknown";
}

GlDispatch *gl_dispatch_new(GlSession *session, const GlPolicy *policy, const GlDispatchLimits *limits,
                            const GlPlatform *platform) {
        GlDispatch *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->session = session;
        if (policy)
                d->policy = *policy;
        else
                gl_policy_init(&d->policy);
        d->limits = limits ? *limits : GL_DISPATCH_LIMITS_DEFAULT;
        d->platform = *platform;
        d->tokens = d->limits.request_burst;
        d->state = GL_AGENT_RUNNING;
        return d;
}

static void power_progress(GlDispatch *d, const char *state, const char *message);
static void logf_(GlDispatch *d, int priority, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void gl_dispatch_set_policy(GlDispatch *d, const GlPolicy *policy, const GlDispatchLimits *limits) {
        d->policy = *policy;
        d->limits = *limits;
        if (d->tokens > d->limits.request_burst)
                d->tokens = d->limits.request_burst;
        /* a scheduled power operation the new policy denies does not happen */
        if (d->power.id && !d->power.executing && !gl_policy_allows(&d->policy, GL_FAMILY_POWER)) {
                d->platform.set_timer(d->platform.userdata, GL_TIMER_POWER, 0);
                power_progress(d, "cancelled", "the guest's policy now denies power requests");
                logf_(d, LOG_NOTICE, "operation %" PRIu64 " (%s) cancelled: the new policy denies power requests",
                      d->power.id, gl_power_action_to_string(d->power.action));
                d->power.id = 0;
        }
}

GlDispatch *gl_dispatch_free(GlDispatch *d) {
        free(d);
        return NULL;
}

const GlDispatchStats *gl_dispatch_stats(const GlDispatch *d) {
        return &d->stats;
}

GlAgentState gl_dispatch_state(const GlDispatch *d) {
        return d->state;
}

static void logf_(GlDispatch *d, int priority, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(GlDispatch *d, int priority, const char *fmt, ...) {
        char text[512];
        va_list ap;

        if (!d->platform.log)
                return;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        d->platform.log(d->platform.userdata, priority, text);
}

/* Token bucket: requests_per_second sustained, request_burst at once. */
static bool rate_ok(GlDispatch *d, uint64_t now_ms) {
        if (!d->tokens_started) {
                d->tokens_started = true;
                d->tokens_at_ms = now_ms;
        }
        if (now_ms > d->tokens_at_ms) {
                d->tokens += (double) (now_ms - d->tokens_at_ms) / 1000.0 * d->limits.requests_per_second;
                if (d->tokens > d->limits.request_burst)
                        d->tokens = d->limits.request_burst;
                d->tokens_at_ms = now_ms;
        }
        if (d->tokens < 1.0)
                return false;
        d->tokens -= 1.0;
        return true;
}

static void reply_error(GlDispatch *d, uint64_t id, GlErrorCode code, const char *text) {
        /* -ENOENT only if the request is not open, which would be a bug here. */
        (void) gl_session_respond_error(d->session, id, code, text);
}

static void reply(GlDispatch *d, uint64_t id, json_object *result) {
        int r = gl_session_respond(d->session, id, result, NULL, 0, 0);

        if (r == -EMSGSIZE)
                logf_(d, LOG_WARNING, "response to request %" PRIu64 " does not fit a frame, sent too-large", id);
}

/* ---- parameters ---- */

/* interval_seconds: required number >= 0; clamped into the limits. */
static int get_interval(GlDispatch *d, json_object *params, uint32_t *ret, const char **ret_reason) {
        json_object *v;
        double x;

        if (!params || !json_object_object_get_ex(params, "interval_seconds", &v) ||
            !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
                *ret_reason = "\"interval_seconds\" (a number) is required";
                return -EINVAL;
        }
        x = json_object_get_double(v);
        if (!isfinite(x) || x < 0) {
                *ret_reason = "\"interval_seconds\" must be 0 or more";
                return -EINVAL;
        }
        if (x == 0) {
                *ret = 0;
                return 0;
        }
        if (x < d->limits.min_interval_seconds)
                x = d->limits.min_interval_seconds;
        if (x > d->limits.max_interval_seconds)
                x = d->limits.max_interval_seconds;
        *ret = (uint32_t) ceil(x);
        return 0;
}

static int get_stats_query(GlDispatch *d, json_object *params, GlStatsQuery *q, const char **ret_reason) {
        json_object *v;

        *q = (GlStatsQuery){ .top_processes = 5 };
        for (int s = 0; s < _GL_STATS_SECTION_MAX; s++)
                q->section[s] = true;
        if (!params)
                return 0;
        if (json_object_object_get_ex(params, "top_processes", &v)) {
                int64_t n = json_object_get_int64(v);
                if (!json_object_is_type(v, json_type_int) || n < 0 || n > (int64_t) d->limits.max_top_processes) {
                        *ret_reason = "\"top_processes\" must be an integer from 0 to 50";
                        return -EINVAL;
                }
                q->top_processes = (unsigned) n;
        }
        if (json_object_object_get_ex(params, "sections", &v)) {
                size_t n;

                if (!json_object_is_type(v, json_type_array)) {
                        *ret_reason = "\"sections\" must be an array of strings";
                        return -EINVAL;
                }
                for (int s = 0; s < _GL_STATS_SECTION_MAX; s++)
                        q->section[s] = false;
                n = json_object_array_length(v);
                for (size_t i = 0; i < n; i++) {
                        const char *name = json_object_get_string(json_object_array_get_idx(v, i));
                        for (int s = 0; name && s < _GL_STATS_SECTION_MAX; s++)
                                if (strcmp(name, section_names[s]) == 0)
                                        q->section[s] = true;
                        /* unknown section names are ignored */
                }
        }
        return 0;
}

/* ---- handlers ---- */

static void add_string_array(json_object *o, const char *key, const char *const *v) {
        json_object *a = json_object_new_array();

        for (; v && *v; v++)
                json_object_array_add(a, json_object_new_string(*v));
        json_object_object_add(o, key, a);
}

static void handle_info(GlDispatch *d, const GlMessage *m) {
        json_object *result = json_object_new_object(), *agent = json_object_new_object(), *denied;
        const GlHello *peer = gl_session_peer(d->session);
        int r;

        json_object_object_add(agent, "version", json_object_new_string(GL_VERSION));
        json_object_object_add(agent, "software", json_object_new_string("guestlink-agent " GL_VERSION));
        json_object_object_add(agent, "protocol_version", json_object_new_int64(gl_session_version(d->session)));
        json_object_object_add(agent, "min_version", json_object_new_int64(GL_PROTOCOL_VERSION_MIN));
        json_object_object_add(agent, "max_version", json_object_new_int64(GL_PROTOCOL_VERSION_MAX));
        add_string_array(agent, "capabilities", gl_dispatch_capabilities(&d->platform));
        denied = json_object_new_array();
        for (int f = 0; f < _GL_FAMILY_MAX; f++)
                if (!gl_policy_allows(&d->policy, (GlFamily) f))
                        json_object_array_add(denied, json_object_new_string(gl_family_to_string((GlFamily) f)));
        if (json_object_array_length(denied) > 0)
                json_object_object_add(agent, "denied", denied);
        else
                json_object_put(denied);
        (void) peer;
        json_object_object_add(result, "agent", agent);
        r = d->platform.info ? d->platform.info(d->platform.userdata, result) : -EOPNOTSUPP;
        if (r < 0) {
                json_object_put(result);
                reply_error(d, m->id, GL_ERROR_INTERNAL, "could not collect system information");
                logf_(d, LOG_WARNING, "info: collecting system information failed: %s", strerror(-r));
                return;
        }
        reply(d, m->id, result);
}

static void handle_stats_get(GlDispatch *d, const GlMessage *m) {
        const char *reason = NULL;
        GlStatsQuery q;
        json_object *result = NULL;
        int r;

        if (get_stats_query(d, m->body, &q, &reason) < 0) {
                d->stats.invalid++;
                reply_error(d, m->id, GL_ERROR_INVALID, reason);
                return;
        }
        r = d->platform.stats(d->platform.userdata, 0, &q, &result);
        if (r < 0) {
                reply_error(d, m->id, GL_ERROR_INTERNAL, "could not collect stats");
                logf_(d, LOG_WARNING, "stats: collecting failed: %s", strerror(-r));
                return;
        }
        reply(d, m->id, result);
}

static void handle_subscribe(GlDispatch *d, const GlMessage *m, GlTimer timer) {
        Subscription *sub = &d->sub[timer];
        const char *reason = NULL;
        GlStatsQuery q = { 0 };
        json_object *result;
        uint32_t interval;

        if (get_interval(d, m->body, &interval, &reason) < 0 ||
            (timer == GL_TIMER_STATS && get_stats_query(d, m->body, &q, &reason) < 0)) {
                d->stats.invalid++;
                reply_error(d, m->id, GL_ERROR_INVALID, reason);
                return;
        }
        sub->interval_seconds = interval;
        sub->query = q;
        d->platform.set_timer(d->platform.userdata, timer, (uint64_t) interval * 1000);
        result = json_object_new_object();
        json_object_object_add(result, "interval_seconds", json_object_new_int64(interval));
        reply(d, m->id, result);
}

/* ---- power ---- */

static void power_progress(GlDispatch *d, const char *state, const char *message) {
        json_object *data = json_object_new_object();

        if (d->power.id)
                json_object_object_add(data, "operation", json_object_new_int64((int64_t) d->power.id));
        json_object_object_add(data, "action", json_object_new_string(gl_power_action_to_string(d->power.action)));
        json_object_object_add(data, "state", json_object_new_string(state));
        if (message)
                json_object_object_add(data, "message", json_object_new_string(message));
        if (d->platform.wall_clock_us)
                json_object_object_add(
                        data, "time_unix_us",
                        json_object_new_int64((int64_t) d->platform.wall_clock_us(d->platform.userdata)));
        if (gl_session_send_event(d->session, "power.progress", data, NULL, 0, 0) < 0)
                logf_(d, LOG_WARNING, "power.progress %s not queued: the queue to the host is full", state);
}

/* Decodes one UTF-8 character (well formed, RFC 3629); returns its length
 * and the code point, or 0 for an invalid sequence. */
static size_t utf8_decode(const unsigned char *p, uint32_t *ret) {
        uint32_t c;
        size_t n;

        if (p[0] < 0x80) {
                *ret = p[0];
                return 1;
        }
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                n = 2, c = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                n = 3, c = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                n = 4, c = p[0] & 0x07;
        else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                c = c << 6 | (p[i] & 0x3f);
        }
        if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
                return 0;
        *ret = c;
        return n;
}

/* Characters a terminal could act on: C0 and C1 controls, DEL, and the
 * bidirectional formatting characters that reorder what is shown. */
static bool unsafe_char(uint32_t c) {
        return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x200e || c == 0x200f ||
               (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x061c;
}

/* A wall message keeps printable text only: no terminal escapes or bidi
 * tricks from the host reach the guest's users.  Newlines and tabs
 * become spaces; anything else unsafe or malformed is dropped. */
static int get_wall_message(json_object *params, char *out, size_t size, const char **ret_reason) {
        json_object *v;
        const unsigned char *s;
        size_t n = 0;

        out[0] = '\0';
        if (!params || !json_object_object_get_ex(params, "message", &v))
                return 0;
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > GL_POWER_MESSAGE_MAX) {
                *ret_reason = "\"message\" must be a string of at most 1024 bytes";
                return -EINVAL;
        }
        for (s = (const unsigned char *) json_object_get_string(v); *s;) {
                uint32_t c;
                size_t k = utf8_decode(s, &c);

                if (k == 0) {
                        s++;
                        continue;
                }
                if (c == '\n' || c == '\t') {
                        if (n + 1 < size)
                                out[n++] = ' ';
                } else if (!unsafe_char(c) && n + k < size) {
                        memcpy(out + n, s, k);
                        n += k;
                }
                s += k;
        }
        out[n] = '\0';
        return 0;
}

static void handle_power_request(GlDispatch *d, const GlMessage *m) {
        const char *reason = NULL, *action_name;
        char why[256] = "";
        json_object *v, *result;
        int64_t delay = 0;
        int action = -1, r;
        uint64_t now_us;

        d->stats.power_requests++;
        action_name = m->body && json_object_object_get_ex(m->body, "action", &v) ? json_object_get_string(v) : NULL;
        for (int a = 0; action_name && a < _GL_POWER_ACTION_MAX; a++)
                if (strcmp(action_name, power_actions[a]) == 0)
                        action = a;
        if (action < 0)
                reason = "\"action\" must be poweroff, reboot, halt, suspend, hibernate or hybrid-sleep";
        else if (m->body && json_object_object_get_ex(m->body, "delay_seconds", &v) &&
                 (!json_object_is_type(v, json_type_int) || (delay = json_object_get_int64(v)) < 0 || delay > 86400))
                reason = "\"delay_seconds\" must be an integer from 0 to 86400";
        if (reason || get_wall_message(m->body, d->power.message, sizeof(d->power.message), &reason) < 0) {
                d->stats.invalid++;
                reply_error(d, m->id, GL_ERROR_INVALID, reason);
                return;
        }
        if (d->power.id) {
                char text[128];

                snprintf(text, sizeof(text), "operation %" PRIu64 " (%s) is %s; cancel it first", d->power.id,
                         gl_power_action_to_string(d->power.action), d->power.executing ? "running" : "scheduled");
                d->stats.power_refused++;
                reply_error(d, m->id, GL_ERROR_BUSY, text);
                return;
        }
        r = d->platform.power_check(d->platform.userdata, (GlPowerAction) action, why, sizeof(why));
        if (r < 0) {
                d->stats.power_refused++;
                logf_(d, LOG_NOTICE, "refused %s request %" PRIu64 ": %s", power_actions[action], m->id, why);
                reply_error(d, m->id, GL_ERROR_UNAVAILABLE, why[0] ? why : "not possible on this system");
                return;
        }

        d->power.id = ++d->power.last_id;
        d->power.action = (GlPowerAction) action;
        d->power.executing = false;
        now_us = d->platform.wall_clock_us ? d->platform.wall_clock_us(d->platform.userdata) : 0;
        result = json_object_new_object();
        json_object_object_add(result, "operation", json_object_new_int64((int64_t) d->power.id));
        json_object_object_add(result, "action", json_object_new_string(power_actions[action]));
        json_object_object_add(result, "delay_seconds", json_object_new_int64(delay));
        json_object_object_add(result, "execute_unix_us",
                               json_object_new_int64((int64_t) now_us + delay * 1000000 + POWER_GRACE_MS * 1000));
        if (d->platform.power_backend)
                json_object_object_add(result, "backend",
                                       json_object_new_string(d->platform.power_backend(d->platform.userdata)));
        reply(d, m->id, result);
        logf_(d, LOG_NOTICE, "accepted %s request %" PRIu64 " as operation %" PRIu64 ", in %" PRId64 " s",
              power_actions[action], m->id, d->power.id, delay);
        if (delay > 0)
                power_progress(d, "scheduled", NULL);
        d->platform.set_timer(d->platform.userdata, GL_TIMER_POWER, (uint64_t) delay * 1000 + POWER_GRACE_MS);
}

static void power_fire(GlDispatch *d) {
        char why[256] = "";

        d->platform.set_timer(d->platform.userdata, GL_TIMER_POWER, 0);
        if (!d->power.id || d->power.executing)
                return;
        /* checked again: the delay may have been long */
        if (!gl_policy_allows(&d->policy, GL_FAMILY_POWER) ||
            d->platform.power_check(d->platform.userdata, d->power.action, why, sizeof(why)) < 0) {
                power_progress(d, "failed", why[0] ? why : "denied by the guest's policy");
                d->power.id = 0;
                return;
        }
        d->power.executing = true;
        power_progress(d, "started", NULL);
        gl_dispatch_set_state(d,
                              gl_power_action_is_sleep(d->power.action) ? GL_AGENT_SUSPENDING : GL_AGENT_SHUTTING_DOWN);
        d->platform.power_execute(d->platform.userdata, d->power.action, d->power.message[0] ? d->power.message : NULL);
}

void gl_dispatch_power_done(GlDispatch *d, int error, const char *message) {
        if (!d->power.id)
                return;
        if (error < 0) {
                logf_(d, LOG_WARNING, "operation %" PRIu64 " (%s) failed: %s", d->power.id,
                      gl_power_action_to_string(d->power.action), message ? message : strerror(-error));
                power_progress(d, "failed", message ? message : strerror(-error));
                d->power.id = 0;
                gl_dispatch_set_state(d, GL_AGENT_RUNNING);
                return;
        }
        if (gl_power_action_is_sleep(d->power.action)) {
                power_progress(d, "resumed", NULL);
                d->power.id = 0;
                gl_dispatch_set_state(d, GL_AGENT_RESUMED);
        }
        /* a poweroff, reboot or halt under way stays "executing" */
}

void gl_dispatch_system_event(GlDispatch *d, GlSystemEvent event) {
        switch (event) {
        case GL_SYSTEM_SHUTTING_DOWN:
                gl_dispatch_set_state(d, GL_AGENT_SHUTTING_DOWN);
                break;
        case GL_SYSTEM_SHUTDOWN_CANCELLED:
                /* someone (systemctl cancel, an inhibitor) stopped it */
                if (d->power.id && d->power.executing && !gl_power_action_is_sleep(d->power.action)) {
                        power_progress(d, "cancelled", "the shutdown was cancelled in the guest");
                        d->power.id = 0;
                }
                gl_dispatch_set_state(d, GL_AGENT_RUNNING);
                break;
        case GL_SYSTEM_SUSPENDING:
                gl_dispatch_set_state(d, GL_AGENT_SUSPENDING);
                break;
        case GL_SYSTEM_RESUMED:
                if (d->power.id && d->power.executing && gl_power_action_is_sleep(d->power.action)) {
                        gl_dispatch_power_done(d, 0, NULL);
                        return;
                }
                if (d->state == GL_AGENT_SUSPENDING) {
                        /* someone else's suspend: tell the host anyway */
                        uint64_t id = d->power.id;
                        GlPowerAction a = d->power.action;

                        d->power.id = 0;
                        d->power.action = GL_POWER_SUSPEND;
                        power_progress(d, "resumed", NULL);
                        d->power.id = id;
                        d->power.action = a;
                        gl_dispatch_set_state(d, GL_AGENT_RESUMED);
                }
                break;
        }
}

static void handle_power_cancel(GlDispatch *d, const GlMessage *m) {
        json_object *v, *result;

        if (m->body && json_object_object_get_ex(m->body, "operation", &v) &&
            (!json_object_is_type(v, json_type_int) || (uint64_t) json_object_get_int64(v) != d->power.id ||
             !d->power.id)) {
                reply_error(d, m->id, GL_ERROR_NOT_FOUND, "no such operation is scheduled");
                return;
        }
        if (!d->power.id) {
                reply_error(d, m->id, GL_ERROR_NOT_FOUND, "no operation is scheduled");
                return;
        }
        if (d->power.executing) {
                reply_error(d, m->id, GL_ERROR_BUSY, "the operation is already running");
                return;
        }
        d->platform.set_timer(d->platform.userdata, GL_TIMER_POWER, 0);
        power_progress(d, "cancelled", NULL);
        logf_(d, LOG_NOTICE, "operation %" PRIu64 " (%s) cancelled by the host", d->power.id,
              gl_power_action_to_string(d->power.action));
        d->power.id = 0;
        result = json_object_new_object();
        json_object_object_add(result, "cancelled", json_object_new_boolean(true));
        reply(d, m->id, result);
}

static void handle_lock(GlDispatch *d, const GlMessage *m) {
        char why[256] = "";
        unsigned sessions = 0;
        json_object *result;
        int r;

        r = d->platform.lock(d->platform.userdata, &sessions, why, sizeof(why));
        if (r < 0) {
                reply_error(d, m->id, GL_ERROR_UNAVAILABLE, why[0] ? why : "cannot lock sessions here");
                return;
        }
        result = json_object_new_object();
        json_object_object_add(result, "sessions", json_object_new_int64(sessions));
        reply(d, m->id, result);
}

typedef struct Route {
        const char *method;
        GlFamily family;
        void (*handle)(GlDispatch *d, const GlMessage *m);
} Route;

static void handle_ping(GlDispatch *d, const GlMessage *m) {
        reply(d, m->id, json_object_new_object());
}

static void handle_stats_subscribe(GlDispatch *d, const GlMessage *m) {
        handle_subscribe(d, m, GL_TIMER_STATS);
}

static void handle_heartbeat_subscribe(GlDispatch *d, const GlMessage *m) {
        handle_subscribe(d, m, GL_TIMER_HEARTBEAT);
}

static const Route routes[] = {
        { "ping", GL_FAMILY_PING, handle_ping },
        { "info", GL_FAMILY_INFO, handle_info },
        { "stats.get", GL_FAMILY_STATS, handle_stats_get },
        { "stats.subscribe", GL_FAMILY_STATS, handle_stats_subscribe },
        { "heartbeat.subscribe", GL_FAMILY_HEARTBEAT, handle_heartbeat_subscribe },
        { "power.request", GL_FAMILY_POWER, handle_power_request },
        { "power.cancel", GL_FAMILY_POWER, handle_power_cancel },
        { "lock", GL_FAMILY_LOCK, handle_lock },
};

void gl_dispatch_request(GlDispatch *d, const GlMessage *m, uint64_t now_ms) {
        const Route *route = NULL;

        d->stats.requests++;
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
                if (strcmp(routes[i].method, m->name) == 0)
                        route = &routes[i];
        if (!route || !implemented(d, route->family)) {
                d->stats.unsupported++;
                reply_error(d, m->id, GL_ERROR_UNSUPPORTED, "unknown method");
                return;
        }
        /* the rate limit first: denied requests must not be a way around it */
        if (route->family != GL_FAMILY_PING && !rate_ok(d, now_ms)) {
                d->stats.rate_limited++;
                if (d->stats.rate_limited == 1 || d->stats.rate_limited % 1000 == 0)
                        logf_(d, LOG_WARNING, "host exceeds %.0f requests per second; %" PRIu64 " refused so far",
                              d->limits.requests_per_second, d->stats.rate_limited);
                reply_error(d, m->id, GL_ERROR_BUSY, "request rate limit exceeded");
                return;
        }
        if (!gl_policy_allows(&d->policy, route->family)) {
                d->stats.denied++;
                if (d->stats.denied <= 100 || d->stats.denied % 1000 == 0)
                        logf_(d, LOG_NOTICE,
                              "denied %s request %" PRIu64 ": the %s family is disabled by policy (%" PRIu64
                              " denied so far)",
                              m->name, m->id, gl_family_to_string(route->family), d->stats.denied);
                reply_error(d, m->id, GL_ERROR_FORBIDDEN, "denied by the guest's policy");
                return;
        }
        route->handle(d, m);
}

static void send_heartbeat(GlDispatch *d) {
        json_object *data = json_object_new_object();
        int r;

        json_object_object_add(data, "seq", json_object_new_int64((int64_t) ++d->heartbeat_seq));
        json_object_object_add(data, "state", json_object_new_string(gl_agent_state_to_string(d->state)));
        json_object_object_add(data, "interval_seconds",
                               json_object_new_int64(d->sub[GL_TIMER_HEARTBEAT].interval_seconds));
        if (d->platform.uptime_seconds)
                json_object_object_add(data, "uptime_seconds",
                                       json_object_new_double(d->platform.uptime_seconds(d->platform.userdata)));
        if (d->platform.wall_clock_us)
                json_object_object_add(
                        data, "time_unix_us",
                        json_object_new_int64((int64_t) d->platform.wall_clock_us(d->platform.userdata)));
        r = gl_session_send_event(d->session, "heartbeat", data, NULL, 0, GL_SEND_UNRELIABLE);
        if (r >= 0)
                d->stats.heartbeats_sent++;
        if (d->state == GL_AGENT_RESUMED)
                d->state = GL_AGENT_RUNNING; /* only the first one after a resume says so */
}

static void send_stats(GlDispatch *d) {
        json_object *data = NULL;
        int r;

        r = d->platform.stats(d->platform.userdata, 1, &d->sub[GL_TIMER_STATS].query, &data);
        if (r < 0) {
                logf_(d, LOG_WARNING, "stats: collecting failed: %s", strerror(-r));
                return;
        }
        if (gl_session_send_event(d->session, "stats", data, NULL, 0, GL_SEND_UNRELIABLE) >= 0)
                d->stats.stats_sent++;
}

void gl_dispatch_timer(GlDispatch *d, GlTimer timer) {
        if (timer == GL_TIMER_POWER) {
                power_fire(d);
                return;
        }
        /* Periodic samples are unreliable: while the host is away they
         * would only be dropped, so do not even collect them. */
        if (d->sub[timer].interval_seconds == 0 || gl_session_state(d->session) != GL_SESSION_ESTABLISHED)
                return;
        if (timer == GL_TIMER_HEARTBEAT)
                send_heartbeat(d);
        else
                send_stats(d);
}

void gl_dispatch_connection(GlDispatch *d, bool up) {
        for (int t = 0; t < GL_TIMER_POWER; t++)
                d->platform.set_timer(d->platform.userdata, (GlTimer) t,
                                      up ? (uint64_t) d->sub[t].interval_seconds * 1000 : 0);
}

void gl_dispatch_peer_restarted(GlDispatch *d) {
        /* Subscriptions end; a scheduled power operation stands (the
         * guest's administrator sees it in the log and can stop the agent). */
        for (int t = 0; t < GL_TIMER_POWER; t++) {
                d->sub[t].interval_seconds = 0;
                d->platform.set_timer(d->platform.userdata, (GlTimer) t, 0);
        }
}

void gl_dispatch_set_state(GlDispatch *d, GlAgentState state) {
        if (state == d->state)
                return;
        d->state = state;
        if (d->sub[GL_TIMER_HEARTBEAT].interval_seconds > 0 && gl_session_state(d->session) == GL_SESSION_ESTABLISHED)
                send_heartbeat(d);
}
