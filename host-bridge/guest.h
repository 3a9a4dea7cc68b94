/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * GlGuest: the bridge's view of one guest.  It owns the session with the
 * guest's agent (a GlPeer), keeps the chardev connection up (reconnecting
 * with backoff through the opener the bridge gives it), subscribes to stats
 * and heartbeats, caches the last info, stats and heartbeat and a history
 * ring of stats, forwards clients' requests, and contains a hostile guest:
 * every limit of GlGuestLimits is enforced here, and breaking one costs
 * only this guest its connection.
 *
 * The guest reports to the bridge through callbacks: bridge events (the
 * `kind` of PROTOCOL.md 11.11) and answers to forwarded requests.
 */
#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "bridge-conf.h"
#include "link.h"
#include "message.h"

typedef struct GlGuest GlGuest;

typedef enum GlGuestState {
        GL_GUEST_CONNECTING,       /* no chardev connection */
        GL_GUEST_AGENT_ABSENT,     /* connected, no agent session */
        GL_GUEST_CONNECTED,        /* session established */
        GL_GUEST_INCOMPATIBLE,     /* the agent speaks no common version */
        GL_GUEST_HEARTBEAT_MISSED, /* established, but heartbeats stopped */
        _GL_GUEST_STATE_MAX,
} GlGuestState;

const char *gl_guest_state_to_string(GlGuestState s);

/* Opens a new connection to the guest's chardev; NULL with error to retry
 * later (with backoff). */
typedef GlLink *(*GlGuestOpener)(GlGuest *g, void *userdata, GError **error);
/* kind: "connected", "disconnected", "heartbeat-missed", "state",
 * "power-state", "stats"; data borrowed, may be NULL. */
typedef void (*GlGuestEventFn)(GlGuest *g, const char *kind, json_object *data, void *userdata);
/* The answer to a forwarded request: a response or an error (borrowed). */
typedef void (*GlGuestAnswerFn)(GlGuest *g, const GlMessage *answer, uint64_t tag, void *userdata);

typedef struct GlGuestSetup {
        const char *name;
        const char *uuid;     /* may be NULL */
        const char *source;   /* "static", "libvirt" */
        const char *uri;      /* libvirt URI, may be NULL */
        const char *instance; /* the bridge's session instance */
        const GlBridgeConfig *config;
        GlGuestOpener opener; /* NULL: links arrive through gl_guest_attach() */
        void *opener_data;    /* passed to opener */
        GDestroyNotify opener_data_free;
        GlGuestEventFn event;
        GlGuestAnswerFn answer;
        void *userdata;
} GlGuestSetup;

GlGuest *gl_guest_new(const GlGuestSetup *setup);
GlGuest *gl_guest_free(GlGuest *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlGuest, gl_guest_free)

const char *gl_guest_name(const GlGuest *g);
const char *gl_guest_uuid(const GlGuest *g);
const char *gl_guest_source(const GlGuest *g);
const char *gl_guest_uri(const GlGuest *g);
GlGuestState gl_guest_state(const GlGuest *g);
bool gl_guest_running(const GlGuest *g);

/* A new connection (listen mode, or the first one): replaces the current. */
void gl_guest_attach(GlGuest *g, GlLink *link);
/* Starts connecting through the opener (now, then with backoff). */
void gl_guest_start(GlGuest *g);
/* Drops the connection and makes a new one at once, if the current link
 * is of kind (NULL: any kind). */
void gl_guest_restart(GlGuest *g, const char *kind);
/* Subscribes again with the config's current intervals (after a reload). */
void gl_guest_resubscribe(GlGuest *g);
/* The guest stopped (libvirt said so): disconnect, no more reconnects. */
void gl_guest_stopped(GlGuest *g);

/* Forwards a request to the agent.  Takes params (may be NULL).  Returns 0,
 * or a negative errno with ret_code and ret_message describing the refusal
 * (no-agent, busy, too-large ...). */
int gl_guest_call(GlGuest *g, const char *method, json_object *params, uint64_t timeout_ms, uint64_t tag,
                  GlErrorCode *ret_code, const char **ret_message);

/* The guest object of PROTOCOL.md 11.11 (new reference). */
json_object *gl_guest_to_json(const GlGuest *g);
/* New references, parsed from the cached text; NULL when none arrived yet.
 * (The caches are kept as JSON text: a thousand guests' parsed stats would
 * cost ten times the memory.) */
json_object *gl_guest_last_info(const GlGuest *g);
json_object *gl_guest_last_stats(const GlGuest *g);
json_object *gl_guest_last_heartbeat(const GlGuest *g);
int64_t gl_guest_stats_unix_us(const GlGuest *g);
/* Stats samples taken at or after since_unix_us, oldest first (new array
 * of new references). */
json_object *gl_guest_stats_history(const GlGuest *g, int64_t since_unix_us);

typedef struct GlGuestCounters {
        uint64_t frames_in, frames_out, bytes_in, bytes_out;
        uint64_t protocol_errors, throttled, disconnects, limit_disconnects;
        uint64_t memory_bytes; /* cached JSON, as accounted against max_memory_bytes */
} GlGuestCounters;
void gl_guest_counters(const GlGuest *g, GlGuestCounters *ret);
