/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * GlPeer: a GlSession bound to a GlLink and to the thread-default
 * GMainContext.  It moves bytes between the two, runs the session's timers,
 * and hands every session event to its owner.  The bridge uses one per
 * guest and one per control client; the CLI uses one to talk to the bridge
 * or straight to an agent.
 *
 * A peer outlives its links: gl_peer_attach() gives it a new connection
 * (the session resynchronises and resends what was not acknowledged),
 * gl_peer_detach() or a hang-up ends one.
 */
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "link.h"
#include "session.h"

/* Shared with other headers: define once (glvm.h and the protocol tests
 * use the same guard). */
#ifndef GL_JSON_OBJECT_AUTOPTR
#define GL_JSON_OBJECT_AUTOPTR 1
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)
#endif

typedef struct GlPeer GlPeer;

typedef struct GlPeerCallbacks {
        /* Every session event.  The callee owns ev->message (MESSAGE events)
         * and must free it.  The peer may be detached or freed from here. */
        void (*event)(GlPeer *peer, GlSessionEvent *ev, void *userdata);
        /* The link ended by itself (EOF, error: -errno in error, 0 for EOF).
         * The peer is already detached.  May free the peer. */
        void (*closed)(GlPeer *peer, int error, void *userdata);
} GlPeerCallbacks;

/* Receive-side throttling: beyond these the peer stops reading for the
 * rest of the second (0: no limit). */
typedef struct GlPeerThrottle {
        uint64_t max_bytes_per_second;
        uint64_t max_frames_per_second;
} GlPeerThrottle;

GlPeer *gl_peer_new(const GlSessionConfig *config, const GlPeerCallbacks *callbacks, void *userdata);
GlPeer *gl_peer_free(GlPeer *peer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlPeer, gl_peer_free)

GlSession *gl_peer_session(GlPeer *peer);
/* Takes ownership of link; detaches any previous one first. */
void gl_peer_attach(GlPeer *peer, GlLink *link);
void gl_peer_detach(GlPeer *peer);
bool gl_peer_attached(const GlPeer *peer);
GlLink *gl_peer_link(GlPeer *peer);
void gl_peer_set_throttle(GlPeer *peer, const GlPeerThrottle *throttle);
/* Times the throttle paused reading. */
uint64_t gl_peer_throttled(const GlPeer *peer);

/* Call after queueing messages on the session: schedules output and
 * re-arms the session timer.  Cheap; safe to call often. */
void gl_peer_kick(GlPeer *peer);

/* Convenience wrappers that queue and kick.  Same returns as the session's. */
int gl_peer_request(GlPeer *peer, const char *method, json_object *params, uint64_t timeout_ms, uint64_t *ret_id);
int gl_peer_respond(GlPeer *peer, uint64_t id, json_object *result);
int gl_peer_respond_error(GlPeer *peer, uint64_t id, GlErrorCode code, const char *message);
int gl_peer_send_event(GlPeer *peer, const char *name, json_object *data, unsigned flags);

/* Monotonic milliseconds, the clock every session here runs on. */
uint64_t gl_peer_now_ms(void);
/* 32 random hex digits for GlSessionConfig.instance. */
char *gl_peer_new_instance(void);
