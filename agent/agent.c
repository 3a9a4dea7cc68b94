/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "agent.h"
#include "config.h"
#include "dispatch.h"
#include "info.h"
#include "power.h"
#include "session.h"
#include "stats.h"
#include "transport.h"

#define READ_CHUNK (64 * 1024)

struct GlAgent {
        GMainLoop *loop;
        GlAgentConfig *config;
        char *config_path;
        char instance[33];
        char boot_id[64];

        GlTransport *transport;
        GlSession *session;
        GlDispatch *dispatch;
        GlPower *power;
        GlStatsCollector *stats[2]; /* stats.get, the subscription */

        guint timers[_GL_TIMER_MAX];
        guint expire_timer;
        uint64_t expire_at;
        guint watchdog_timer;
        guint signal_watches[3];
        uint64_t protocol_errors;
        int exit_status;
};

void gl_agent_log_full(int priority, const char *file, int line, const char *func, const char *format, ...) {
        g_autofree char *text = NULL;
        va_list ap;

        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);
        /* systemd connects stderr to the journal and says so in $JOURNAL_STREAM */
        if (g_getenv("JOURNAL_STREAM"))
                sd_journal_send("MESSAGE=%s", text, "PRIORITY=%i", priority, "SYSLOG_IDENTIFIER=guestlink-agent",
                                "CODE_FILE=%s", file, "CODE_LINE=%i", line, "CODE_FUNC=%s", func,
                                "GUESTLINK_COMPONENT=agent", NULL);
        else
                fprintf(stderr, "guestlink-agent: %s\n", text);
}

static uint64_t now_ms(void) {
        return (uint64_t) g_get_monotonic_time() / 1000;
}

/* ---- session <-> transport ---- */

static void arm_expire(GlAgent *a);

static void flush(GlAgent *a) {
        for (;;) {
                GlIovec iov[GL_SESSION_IOV_MAX];
                size_t n = gl_session_output(a->session, iov);
                ssize_t w;

                if (n == 0) {
                        gl_transport_want_write(a->transport, false);
                        return;
                }
                w = gl_transport_writev(a->transport, iov, n);
                if (w == -EAGAIN) {
                        gl_transport_want_write(a->transport, true);
                        return;
                }
                if (w < 0)
                        return; /* the transport went down and said so */
                gl_session_output_advance(a->session, (size_t) w);
        }
}

/* Text from the host for a log line: printable ASCII, bounded. */
static const char *loggable(const char *s, char *buf, size_t size) {
        size_t n = 0;

        for (; s && *s && n + 1 < size; s++)
                buf[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        buf[n] = '\0';
        return buf;
}

static void handle_event(GlAgent *a, GlSessionEvent *ev) {
        char b1[64], b2[96];
        const GlHello *peer;

        switch (ev->type) {
        case GL_SESSION_EVENT_MESSAGE:
                if (ev->message->type == GL_MSG_REQUEST)
                        gl_dispatch_request(a->dispatch, ev->message, now_ms());
                /* responses and events from the host: none expected yet */
                break;
        case GL_SESSION_EVENT_ESTABLISHED:
                peer = gl_session_peer(a->session);
                gl_agent_log(LOG_INFO, "host connected: %s %s, protocol %u",
                             loggable(peer->role ? peer->role : "peer", b1, sizeof(b1)),
                             loggable(peer->software, b2, sizeof(b2)), gl_session_version(a->session));
                gl_dispatch_connection(a->dispatch, true);
                break;
        case GL_SESSION_EVENT_PEER_RESTARTED:
                gl_agent_log(LOG_INFO, "the host side restarted; its subscriptions end");
                gl_dispatch_peer_restarted(a->dispatch);
                break;
        case GL_SESSION_EVENT_INCOMPATIBLE:
                peer = gl_session_peer(a->session);
                gl_agent_log(LOG_ERR, "host speaks protocol %u..%u, we speak %u..%u: no common version",
                             peer->min_version, peer->max_version, GL_PROTOCOL_VERSION_MIN, GL_PROTOCOL_VERSION_MAX);
                break;
        case GL_SESSION_EVENT_PROTOCOL_ERROR:
                /* The host may be hostile or broken: say so, but not a
                 * line per frame forever. */
                if (a->protocol_errors++ < 20 || a->protocol_errors % 1000 == 0)
                        gl_agent_log(LOG_WARNING, "protocol error from host (%" G_GUINT64_FORMAT " so far): %s",
                                     a->protocol_errors, ev->detail ? ev->detail : "");
                break;
        }
        gl_message_free(ev->message);
}

static void process(GlAgent *a) {
        GlSessionEvent ev;

        while (gl_session_receive(a->session, &ev) > 0)
                handle_event(a, &ev);
        flush(a);
        arm_expire(a);
}

static void on_readable(void *userdata) {
        GlAgent *a = userdata;

        for (;;) {
                size_t room;
                void *buf = gl_session_input_space(a->session, READ_CHUNK, &room);
                ssize_t n;

                if (!buf)
                        break;
                if (room == 0) {
                        process(a); /* drain frames to make room */
                        continue;
                }
                n = gl_transport_read(a->transport, buf, room);
                if (n <= 0)
                        break;
                gl_session_input_commit(a->session, (size_t) n);
                if ((size_t) n < room)
                        break; /* drained: spare the read that would say EAGAIN */
        }
        process(a);
}

static void on_writable(void *userdata) {
        flush(userdata);
}

static void on_up(void *userdata) {
        GlAgent *a = userdata;

        gl_session_connected(a->session);
        process(a);
}

static void on_down(void *userdata) {
        GlAgent *a = userdata;

        gl_session_disconnected(a->session);
        gl_dispatch_connection(a->dispatch, false);
        gl_agent_log(LOG_INFO, "host disconnected; unacknowledged messages wait for the next connection");
        arm_expire(a);
}

static void transport_log(void *userdata, int priority, const char *text) {
        (void) userdata;
        gl_agent_log(priority, "%s", text);
}

/* ---- timers ---- */

static gboolean on_expire(gpointer userdata) {
        GlAgent *a = userdata;

        a->expire_timer = 0;
        gl_session_expire(a->session, now_ms());
        process(a);
        return G_SOURCE_REMOVE;
}

static void arm_expire(GlAgent *a) {
        uint64_t at = gl_session_next_deadline(a->session), now = now_ms();

        if (a->expire_timer && at == a->expire_at)
                return;
        if (a->expire_timer) {
                g_source_remove(a->expire_timer);
                a->expire_timer = 0;
        }
        if (at == UINT64_MAX)
                return;
        a->expire_at = at;
        a->expire_timer = g_timeout_add(at > now ? (guint) MIN(at - now, G_MAXUINT) : 0, on_expire, a);
}

typedef struct TimerCtx {
        GlAgent *agent;
        GlTimer timer;
} TimerCtx;

static gboolean on_timer(gpointer userdata) {
        TimerCtx *c = userdata;

        gl_dispatch_timer(c->agent->dispatch, c->timer);
        flush(c->agent);
        return G_SOURCE_CONTINUE;
}

static void platform_set_timer(void *userdata, GlTimer timer, uint64_t interval_ms) {
        GlAgent *a = userdata;
        TimerCtx *c;

        if (a->timers[timer]) {
                g_source_remove(a->timers[timer]);
                a->timers[timer] = 0;
        }
        if (interval_ms == 0)
                return;
        c = g_new(TimerCtx, 1);
        *c = (TimerCtx){ a, timer };
        a->timers[timer] = g_timeout_add_full(G_PRIORITY_DEFAULT, (guint) MIN(interval_ms, G_MAXUINT), on_timer, c,
                                              g_free);
}

static int platform_info(void *userdata, json_object *result) {
        (void) userdata;
        return gl_info_collect("/", result);
}

static int platform_stats(void *userdata, unsigned stream, const GlStatsQuery *query, json_object **ret) {
        GlAgent *a = userdata;

        if (stream >= G_N_ELEMENTS(a->stats))
                return -EINVAL;
        return gl_stats_collect(a->stats[stream], (uint64_t) g_get_real_time(), (uint64_t) g_get_monotonic_time(),
                                query, ret);
}

static void platform_log(void *userdata, int priority, const char *text) {
        (void) userdata;
        gl_agent_log(priority, "%s", text);
}

static uint64_t platform_wall_clock_us(void *userdata) {
        (void) userdata;
        return (uint64_t) g_get_real_time();
}

static double platform_uptime(void *userdata) {
        g_autofree char *text = NULL;

        (void) userdata;
        if (!g_file_get_contents("/proc/uptime", &text, NULL, NULL))
                return 0;
        return g_ascii_strtod(text, NULL);
}

static int platform_power_check(void *userdata, GlPowerAction action, char *reason, size_t size) {
        GlAgent *a = userdata;
        return gl_power_check(a->power, action, reason, size);
}

static void platform_power_execute(void *userdata, GlPowerAction action, const char *wall_message) {
        GlAgent *a = userdata;

        gl_agent_log(LOG_NOTICE, "%s now (%s)", gl_power_action_to_string(action), gl_power_backend(a->power));
        gl_power_execute(a->power, action, wall_message);
}

static const char *platform_power_backend(void *userdata) {
        GlAgent *a = userdata;
        return gl_power_backend(a->power);
}

static int platform_lock(void *userdata, unsigned *ret_sessions, char *reason, size_t size) {
        GlAgent *a = userdata;
        return gl_power_lock(a->power, ret_sessions, reason, size);
}

static void power_system_event(void *userdata, GlSystemEvent event) {
        GlAgent *a = userdata;

        gl_dispatch_system_event(a->dispatch, event);
        flush(a);
}

static void power_done(void *userdata, int error, const char *message) {
        GlAgent *a = userdata;

        gl_dispatch_power_done(a->dispatch, error, message);
        flush(a);
}

/* ---- signals and systemd ---- */

static gboolean on_terminate(gpointer userdata) {
        GlAgent *a = userdata;

        gl_agent_log(LOG_INFO, "shutting down");
        (void) sd_notify(0, "STOPPING=1");
        g_main_loop_quit(a->loop);
        return G_SOURCE_CONTINUE;
}

static gboolean on_reload(gpointer userdata) {
        GlAgent *a = userdata;
        g_autoptr(GlAgentConfig) n = gl_agent_config_new();
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;

        (void) sd_notify(0, "RELOADING=1");
        if (!gl_agent_config_load(n, a->config_path, FALSE, warnings, &error))
                gl_agent_log(LOG_ERR, "reload failed, keeping the running configuration: %s", error->message);
        else {
                for (guint i = 0; i < warnings->len; i++)
                        gl_agent_log(LOG_WARNING, "%s: %s", a->config_path, (char *) warnings->pdata[i]);
                if (n->transport != a->config->transport || g_strcmp0(n->port, a->config->port) != 0 ||
                    g_strcmp0(n->device, a->config->device) != 0 || n->vsock_port != a->config->vsock_port)
                        gl_agent_log(LOG_WARNING, "channel settings change only at restart");
                gl_dispatch_set_policy(a->dispatch, &n->policy, &n->limits);
                a->config->policy = n->policy;
                a->config->limits = n->limits;
                gl_agent_log(LOG_INFO, "configuration reloaded");
        }
        (void) sd_notify(0, "READY=1");
        return G_SOURCE_CONTINUE;
}

static gboolean on_watchdog(gpointer userdata) {
        (void) userdata;
        (void) sd_notify(0, "WATCHDOG=1");
        return G_SOURCE_CONTINUE;
}

static void random_hex(char *out, size_t bytes) {
        for (size_t i = 0; i < bytes; i++)
                g_snprintf(out + 2 * i, 3, "%02x", (unsigned) g_random_int_range(0, 256));
}

GlAgent *gl_agent_new(GlAgentConfig *config, const char *config_path, GError **error) {
        g_autoptr(GlAgent) a = g_new0(GlAgent, 1);
        g_autofree char *boot_id = NULL;
        GlTransportConfig tc = {
                .type = config->transport,
                .port = config->port,
                .device = config->device,
                .vsock_port = config->vsock_port,
                .vsock_peer_cid = config->vsock_peer_cid,
        };
        GlTransportOps ops = {
                .up = on_up,
                .down = on_down,
                .readable = on_readable,
                .writable = on_writable,
                .log = transport_log,
        };
        GlPlatform platform = {
                .info = platform_info,
                .stats = platform_stats,
                .set_timer = platform_set_timer,
                .log = platform_log,
                .power_check = platform_power_check,
                .power_execute = platform_power_execute,
                .power_backend = platform_power_backend,
                .lock = platform_lock,
                .wall_clock_us = platform_wall_clock_us,
                .uptime_seconds = platform_uptime,
        };
        GlSessionConfig sc = {
                .role = "agent",
                .software = "guestlink-agent " GL_VERSION,
        };

        a->config = config;
        a->config_path = g_strdup(config_path);
        a->loop = g_main_loop_new(NULL, FALSE);
        random_hex(a->instance, 16);
        sc.instance = a->instance;
        sc.capabilities = gl_dispatch_capabilities(&platform);
        if (g_file_get_contents("/proc/sys/kernel/random/boot_id", &boot_id, NULL, NULL)) {
                g_strlcpy(a->boot_id, g_strstrip(boot_id), sizeof(a->boot_id));
                sc.boot_id = a->boot_id;
        }
        a->session = gl_session_new(&sc);
        if (!a->session) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, "cannot create the protocol session");
                return NULL;
        }
        platform.userdata = a;
        for (size_t i = 0; i < G_N_ELEMENTS(a->stats); i++)
                a->stats[i] = gl_stats_collector_new("/");
        a->power = gl_power_new(&(GlPowerEvents){ .system_event = power_system_event, .done = power_done }, a);
        a->dispatch = gl_dispatch_new(a->session, &config->policy, &config->limits, &platform);
        a->transport = gl_transport_new(&tc, &ops, a);
        return g_steal_pointer(&a);
}

GlAgent *gl_agent_free(GlAgent *a) {
        if (!a)
                return NULL;
        for (int t = 0; t < _GL_TIMER_MAX; t++)
                if (a->timers[t])
                        g_source_remove(a->timers[t]);
        if (a->expire_timer)
                g_source_remove(a->expire_timer);
        if (a->watchdog_timer)
                g_source_remove(a->watchdog_timer);
        for (size_t i = 0; i < G_N_ELEMENTS(a->signal_watches); i++)
                if (a->signal_watches[i])
                        g_source_remove(a->signal_watches[i]);
        gl_transport_free(a->transport);
        gl_dispatch_free(a->dispatch);
        gl_power_free(a->power);
        for (size_t i = 0; i < G_N_ELEMENTS(a->stats); i++)
                gl_stats_collector_free(a->stats[i]);
        gl_session_free(a->session);
        gl_agent_config_free(a->config);
        g_free(a->config_path);
        if (a->loop)
                g_main_loop_unref(a->loop);
        g_free(a);
        return NULL;
}

int gl_agent_run(GlAgent *a) {
        uint64_t watchdog_us = 0;
        int r;

        a->signal_watches[0] = g_unix_signal_add(SIGTERM, on_terminate, a);
        a->signal_watches[1] = g_unix_signal_add(SIGINT, on_terminate, a);
        a->signal_watches[2] = g_unix_signal_add(SIGHUP, on_reload, a);
        r = gl_transport_start(a->transport);
        if (r < 0) {
                gl_agent_log(LOG_ERR, "cannot start the channel: %s", g_strerror(-r));
                return 1;
        }
        if (sd_watchdog_enabled(0, &watchdog_us) > 0 && watchdog_us > 0)
                a->watchdog_timer = g_timeout_add((guint) MAX(watchdog_us / 2000, 1), on_watchdog, a);
        (void) sd_notify(0, "READY=1");
        gl_agent_log(LOG_INFO, "guestlink-agent %s started (instance %s)", GL_VERSION, a->instance);
        g_main_loop_run(a->loop);
        return a->exit_status;
}
