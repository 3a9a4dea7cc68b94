/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The agent's request dispatcher: OS-neutral (plain C11 + json-c + the
 * protocol core), shared by the Linux and Windows agents.  It applies the
 * guest's policy and the limits on what the host can make the agent do,
 * routes each request to its handler, answers every request exactly once,
 * and owns the host's subscriptions (stats, heartbeat).  Everything that
 * touches the OS goes through GlPlatform.
 */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "session.h"

typedef enum GlAgentState {
        GL_AGENT_RUNNING,
        GL_AGENT_SHUTTING_DOWN,
        GL_AGENT_SUSPENDING,
        GL_AGENT_RESUMED,
        _GL_AGENT_STATE_MAX,
} GlAgentState;

const char *gl_agent_state_to_string(GlAgentState s);

typedef enum GlTimer {
        GL_TIMER_HEARTBEAT,
        GL_TIMER_STATS,
        GL_TIMER_POWER, /* one shot: the dispatcher stops it when it fires */
        _GL_TIMER_MAX,
} GlTimer;

typedef enum GlPowerAction {
        GL_POWER_POWEROFF,
        GL_POWER_REBOOT,
        GL_POWER_HALT,
        GL_POWER_SUSPEND,
        GL_POWER_HIBERNATE,
        GL_POWER_HYBRID_SLEEP,
        _GL_POWER_ACTION_MAX,
} GlPowerAction;

const char *gl_power_action_to_string(GlPowerAction a);
bool gl_power_action_is_sleep(GlPowerAction a);

/* What the platform saw happen, whoever caused it. */
typedef enum GlSystemEvent {
        GL_SYSTEM_SHUTTING_DOWN,
        GL_SYSTEM_SHUTDOWN_CANCELLED, /* logind PrepareForShutdown(false) */
        GL_SYSTEM_SUSPENDING,
        GL_SYSTEM_RESUMED,
} GlSystemEvent;

/* Longest wall message, in bytes. */
#define GL_POWER_MESSAGE_MAX 1024

/* Sections of a stats object (PROTOCOL.md 11.5). */
typedef enum GlStatsSection {
        GL_STATS_CPU,
        GL_STATS_LOAD,
        GL_STATS_MEMORY,
        GL_STATS_PROCESSES,
        GL_STATS_PRESSURE,
        GL_STATS_FILESYSTEMS,
        GL_STATS_DISKS,
        GL_STATS_NETWORK,
        GL_STATS_POWER_SUPPLIES,
        GL_STATS_TOP_PROCESSES,
        _GL_STATS_SECTION_MAX,
} GlStatsSection;

typedef struct GlStatsQuery {
        unsigned top_processes;
        bool section[_GL_STATS_SECTION_MAX]; /* which sections to include */
} GlStatsQuery;

typedef struct GlPlatform {
        void *userdata;
        /* Adds os, kernel, host and user members to an info result. */
        int (*info)(void *userdata, json_object *result);
        /* A stats object (PROTOCOL.md 11.5); NULL where stats are not
         * implemented (the capability is then not advertised).  stream 0
         * serves stats.get, 1 the subscription: each keeps its own previous
         * sample for rates. */
        int (*stats)(void *userdata, unsigned stream, const GlStatsQuery *query, json_object **ret);
        /* Arms (interval_ms > 0) or stops a periodic timer. */
        void (*set_timer)(void *userdata, GlTimer timer, uint64_t interval_ms);
        /* Something worth a log line (a denied request, a limit hit). */
        void (*log)(void *userdata, int priority, const char *text);
        /* Power: whether the action is possible now (0), or why not
         * (negative errno, reason written to reason).  NULL: no power. */
        int (*power_check)(void *userdata, GlPowerAction action, char *reason, size_t reason_size);
        /* Performs it; reports back with gl_dispatch_power_done(). */
        void (*power_execute)(void *userdata, GlPowerAction action, const char *wall_message);
        const char *(*power_backend)(void *userdata); /* "logind", "kernel" */
        /* Locks graphical sessions; NULL: no lock. */
        int (*lock)(void *userdata, unsigned *ret_sessions, char *reason, size_t reason_size);
        /* Wall clock and uptime, for heartbeats. */
        uint64_t (*wall_clock_us)(void *userdata);
        double (*uptime_seconds)(void *userdata);
} GlPlatform;

typedef struct GlDispatchLimits {
        double requests_per_second;                          /* sustained rate of host requests */
        double request_burst;                                /* bucket size */
        uint32_t min_interval_seconds, max_interval_seconds; /* subscriptions */
        unsigned max_top_processes;
} GlDispatchLimits;

#define GL_DISPATCH_LIMITS_DEFAULT            \
        ((GlDispatchLimits){                  \
                .requests_per_second = 50,    \
                .request_burst = 100,         \
                .min_interval_seconds = 1,    \
                .max_interval_seconds = 3600, \
                .max_top_processes = 50,      \
        })

typedef struct GlDispatch GlDispatch;

GlDispatch *gl_dispatch_new(GlSession *session, const GlPolicy *policy, const GlDispatchLimits *limits,
                            const GlPlatform *platform);
GlDispatch *gl_dispatch_free(GlDispatch *d);

/* The capabilities this agent implements on this platform, for its hello
 * (NULL-terminated, static strings). */
const char *const *gl_dispatch_capabilities(const GlPlatform *platform);

/* Answers one request of the host (m->type == GL_MSG_REQUEST). */
void gl_dispatch_request(GlDispatch *d, const GlMessage *m, uint64_t now_ms);

/* A periodic timer armed through GlPlatform.set_timer fired. */
void gl_dispatch_timer(GlDispatch *d, GlTimer timer);

/* New policy and limits (configuration reload); subscriptions stay. */
void gl_dispatch_set_policy(GlDispatch *d, const GlPolicy *policy, const GlDispatchLimits *limits);

/* The channel to the host is up (established) or down: periodic timers
 * run only while it is up, so an agent with no host never wakes. */
void gl_dispatch_connection(GlDispatch *d, bool up);

/* The host's instance changed: its subscriptions end. */
void gl_dispatch_peer_restarted(GlDispatch *d);

/* The platform finished (or failed) a power action the dispatcher asked
 * for: error 0 for a completed suspend (the guest resumed), negative errno
 * with a message for a failure. */
void gl_dispatch_power_done(GlDispatch *d, int error, const char *message);

/* A shutdown or sleep transition seen by the platform (logind's
 * PrepareForShutdown/PrepareForSleep), started by anyone. */
void gl_dispatch_system_event(GlDispatch *d, GlSystemEvent event);

/* The agent's state changed: sends a heartbeat at once if subscribed. */
void gl_dispatch_set_state(GlDispatch *d, GlAgentState state);
GlAgentState gl_dispatch_state(const GlDispatch *d);

typedef struct GlDispatchStats {
        uint64_t requests, denied, rate_limited, unsupported, invalid;
        uint64_t heartbeats_sent, stats_sent, power_requests, power_refused;
} GlDispatchStats;
const GlDispatchStats *gl_dispatch_stats(const GlDispatch *d);
