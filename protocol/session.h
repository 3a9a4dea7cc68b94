/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The guestlink session: handshake, reliable delivery, priorities and
 * request tracking over one byte stream, without any I/O.  The caller owns
 * the transport and the clock:
 *
 *   on connect:     gl_session_connected()
 *   on readable:    read into gl_session_input_space(), gl_session_input_commit(),
 *                   then gl_session_receive() until it returns 0
 *   on writable:    gl_session_output() -> writev() -> gl_session_output_advance()
 *   on disconnect:  gl_session_disconnected()
 *   on a timer:     gl_session_expire(now); gl_session_next_deadline() says when
 *
 * Nothing is lost or duplicated across disconnects: reliable frames stay in
 * a bounded retransmit queue until the peer acknowledges them and are sent
 * again after the next handshake; the receiver drops duplicates.  Control
 * messages go out before bulk ones, and bulk messages travel in frames of
 * at most GL_BULK_CHUNK_BYTES, so a control message waits for one chunk at
 * most.
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "hello.h"
#include "message.h"

typedef struct GlSession GlSession;

typedef struct GlSessionConfig {
        const char *role;                  /* "agent", "bridge", "client"; at most 32 bytes */
        const char *software;              /* e.g. "guestlink-agent 0.1.0"; at most 128 bytes */
        const char *instance;              /* required: unique per process start (e.g. 32 random hex digits) */
        const char *boot_id;               /* optional */
        uint32_t min_version, max_version; /* 0: GL_PROTOCOL_VERSION_MIN/MAX */
        const char *const *capabilities;   /* NULL-terminated, each at most 64 bytes */
        GlLimits limits;                   /* all zero: GL_LIMITS_DEFAULT */
        size_t max_control_queue_bytes;    /* queued + unacknowledged control messages; 0: 1 MiB */
        size_t max_bulk_queue_bytes;       /* queued + unacknowledged bulk messages; 0: 8 MiB */
        size_t max_window_bytes;           /* unacknowledged bulk bytes on the wire; 0: 1 MiB */
        uint32_t max_requests_in_flight;   /* each direction; 0: 256 */
} GlSessionConfig;

typedef enum GlSessionState {
        GL_SESSION_DISCONNECTED,
        GL_SESSION_HANDSHAKE,
        GL_SESSION_ESTABLISHED,
        GL_SESSION_INCOMPATIBLE,
} GlSessionState;

typedef enum GlSessionEventType {
        GL_SESSION_EVENT_MESSAGE,        /* message: a request, response, error, event or pong */
        GL_SESSION_EVENT_ESTABLISHED,    /* handshake done; version negotiated */
        GL_SESSION_EVENT_PEER_RESTARTED, /* the peer's instance changed; its requests are void */
        GL_SESSION_EVENT_INCOMPATIBLE,   /* no common protocol version */
        GL_SESSION_EVENT_PROTOCOL_ERROR, /* the peer sent something invalid; it was dropped */
} GlSessionEventType;

/* Protocol errors beyond the frame errors of frame.h. */
typedef enum GlSessionError {
        GL_SESSION_ERR_BAD_HELLO = 100,
        GL_SESSION_ERR_BAD_ENVELOPE,
        GL_SESSION_ERR_UNKNOWN_TYPE,
        GL_SESSION_ERR_BAD_ACK,
        GL_SESSION_ERR_SEQUENCE_GAP,
        GL_SESSION_ERR_BAD_CHUNK,
        GL_SESSION_ERR_TOO_MANY_REQUESTS,
        GL_SESSION_ERR_DUPLICATE_REQUEST,
} GlSessionError;

typedef struct GlSessionEvent {
        GlSessionEventType type;
        GlMessage *message; /* MESSAGE: owned by the caller, free with gl_message_free() */
        int error;          /* PROTOCOL_ERROR: a GlFrameError or GlSessionError */
        const char *detail; /* PROTOCOL_ERROR: static text */
        uint64_t seq;       /* PROTOCOL_ERROR: the frame's sequence number, if any */
} GlSessionEvent;

typedef struct GlSessionStats {
        uint64_t frames_in, frames_out;
        uint64_t bytes_in, bytes_out;
        uint64_t garbage_bytes;       /* skipped by the decoder */
        uint64_t rejected_frames;     /* decoder and JSON limit violations */
        uint64_t duplicates;          /* reliable frames received twice and dropped */
        uint64_t gaps;                /* out-of-order reliable frames dropped (NACKed) */
        uint64_t retransmits;         /* reliable frames sent again */
        uint64_t protocol_errors;     /* all PROTOCOL_ERROR events */
        uint64_t unmatched_responses; /* responses to no pending request (late, or bogus) */
        uint64_t hello_retries;       /* padded hellos sent because a handshake stalled */
        uint64_t voided_frames;       /* unacknowledged frames voided because the peer restarted */
        uint64_t answers_dropped;     /* the session's own error answers refused for lack of queue room */
        uint64_t connects;            /* gl_session_connected() calls */
        uint64_t handshakes;          /* ESTABLISHED transitions */
} GlSessionStats;

typedef enum GlSendFlags {
        GL_SEND_BULK = 1u << 0,       /* bulk class: chunked, after control messages */
        GL_SEND_UNRELIABLE = 1u << 1, /* control only: not sequenced, not resent */
} GlSendFlags;

GlSession *gl_session_new(const GlSessionConfig *config);
GlSession *gl_session_free(GlSession *s);

GlSessionState gl_session_state(const GlSession *s);
const char *gl_session_state_to_string(GlSessionState state);
uint32_t gl_session_version(const GlSession *s); /* negotiated, 0 before */
/* The peer's hello, valid while established; NULL before. */
const GlHello *gl_session_peer(const GlSession *s);
bool gl_session_peer_has_capability(const GlSession *s, const char *capability);
const GlSessionStats *gl_session_stats(const GlSession *s);

/* Transport state changes. */
void gl_session_connected(GlSession *s);
void gl_session_disconnected(GlSession *s);

/* Input. */
void *gl_session_input_space(GlSession *s, size_t want, size_t *ret_len);
void gl_session_input_commit(GlSession *s, size_t n);
long gl_session_feed(GlSession *s, const void *data, size_t len);

/* Returns 1 with an event, 0 when there is nothing more, -ENOMEM. */
int gl_session_receive(GlSession *s, GlSessionEvent *ret);

/* Output: fills up to three entries covering the rest of the next frame;
 * returns how many (0: nothing to write now). */
#define GL_SESSION_IOV_MAX 3
size_t gl_session_output(GlSession *s, GlIovec iov[GL_SESSION_IOV_MAX]);
void gl_session_output_advance(GlSession *s, size_t n);
bool gl_session_want_output(GlSession *s);

/*
 * Sending.  Each takes ownership of body (a json_object reference) and of
 * attachment (malloc()ed, freed with free()), also on failure.  Returns 0,
 * -ENOBUFS when the class's queue is full (try again once acknowledgements
 * have freed room), -EMSGSIZE when the message can never be sent: it does
 * not fit a frame, breaks the peer's or our limits, or costs more than its
 * class's whole queue budget; -EINVAL, -ENOMEM.
 *
 * gl_session_respond() answers a request of the peer exactly once: -ENOENT
 * if there is no such request open.  A control response is never refused
 * for room; a bulk one may get -ENOBUFS, and the request then stays open.
 * A response that cannot fit at all (-EMSGSIZE) is replaced by a
 * "too-large" error, so the peer still gets its one answer.
 */
int gl_session_send_event(GlSession *s, const char *name, json_object *data, uint8_t *attachment, size_t attachment_len,
                          unsigned flags);
int gl_session_request(GlSession *s, const char *method, json_object *params, uint8_t *attachment,
                       size_t attachment_len, unsigned flags, uint64_t now_ms, uint64_t timeout_ms, uint64_t *ret_id);
int gl_session_respond(GlSession *s, uint64_t id, json_object *result, uint8_t *attachment, size_t attachment_len,
                       unsigned flags);
int gl_session_respond_error(GlSession *s, uint64_t id, GlErrorCode code, const char *message);
int gl_session_ping(GlSession *s, uint64_t *ret_id);

/* Whether a message of this size and class would be accepted now. */
bool gl_session_can_send(const GlSession *s, unsigned flags, size_t bytes);

/*
 * Timers.  gl_session_expire() raises local "timeout" errors for requests
 * past their deadline and, while a handshake is stuck, sends the hello
 * again (padded, to flush a peer decoder waiting for the rest of a frame
 * cut by a disconnect).  gl_session_next_deadline() is when to call it
 * next: UINT64_MAX if never, 0 if now.
 */
void gl_session_expire(GlSession *s, uint64_t now_ms);
uint64_t gl_session_next_deadline(const GlSession *s);

/* The peer's announced limits, once known (NULL before). */
const GlLimits *gl_session_peer_limits(const GlSession *s);
