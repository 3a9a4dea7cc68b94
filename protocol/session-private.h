/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internals shared by session.c (sending) and session-receive.c. */
#include "decoder.h"
#include "json-check.h"
#include "session.h"

#define DEFAULT_CONTROL_QUEUE_BYTES (1024 * 1024)
#define DEFAULT_BULK_QUEUE_BYTES (8 * 1024 * 1024)
#define DEFAULT_WINDOW_BYTES (1024 * 1024)
#define DEFAULT_REQUESTS_IN_FLIGHT 256
#define MAX_IMMEDIATE 64 /* queued pongs and error notices */
#define MAX_LOCAL_EVENTS 1024
#define HELLO_RETRY_MS 1000
#define GL_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A message handed to the session, until its last frame is acknowledged
 * (reliable) or written (unreliable). */
/* Internal send flag: an answer to a peer request, exempt from the queue
 * budget (bounded by max_requests_in_flight instead). */
#define SEND_ANSWER (1u << 8)
/* An answer the session itself sends (unknown type, too many requests,
 * dropped bulk request): voided like any answer when the peer restarts,
 * but charged to the control budget (a peer can provoke them endlessly). */
#define SEND_SELF_ANSWER (1u << 9)

typedef struct OutMsg {
        struct OutMsg *next;
        json_object *obj; /* the envelope; json points into its serialisation */
        const char *json;
        size_t json_len;
        uint8_t *att;
        size_t att_len;
        size_t att_off;    /* bulk: attachment bytes already cut into frames */
        bool json_cut;     /* bulk: first frame cut */
        unsigned flags;    /* GlSendFlags */
        unsigned frames;   /* frames referencing this message */
        bool first_in_rtx; /* scratch: its first frame is still unacknowledged */
        uint64_t request;  /* request id carried, 0 = none */
        size_t cost;       /* bytes charged to its class budget */
} OutMsg;

typedef enum OutKind {
        OUT_HELLO,  /* serialised when picked */
        OUT_ACK,    /* serialised when picked */
        OUT_NOTICE, /* unsequenced message: pong, ping, error notice */
        OUT_FRAME,  /* a frame of an OutMsg */
} OutKind;

typedef struct OutFrame {
        struct OutFrame *next;
        OutKind kind;
        GlFrameHeader h;
        uint8_t hdr[GL_FRAME_HEADER_SIZE];
        OutMsg *msg; /* OUT_FRAME */
        const char *json;
        size_t json_len;
        const uint8_t *att;
        size_t att_len;
        char *owned_json;   /* OUT_HELLO, OUT_ACK, OUT_NOTICE */
        uint64_t echo;      /* OUT_HELLO */
        bool padded;        /* OUT_HELLO: a retry, padded to GL_DECODER_HELLO_MAX_BYTES */
        bool voided;        /* OUT_FRAME: goes out as an empty no-op frame (peer restarted) */
        size_t window_cost; /* bulk bytes charged to the window */
} OutFrame;

typedef struct Pending {
        uint64_t id;
        uint64_t deadline;
        uint64_t seq; /* frame carrying the request, 0 = not sent yet */
} Pending;

typedef struct MsgQueue {
        OutMsg *head, *tail;
        size_t bytes; /* budget in use, including unacknowledged */
} MsgQueue;

typedef struct LocalEvent {
        GlSessionEvent ev;
} LocalEvent;

struct GlSession {
        GlSessionConfig config;
        char *instance;
        char *role, *software, *boot_id;
        char **caps;
        unsigned n_caps;
        GlLimits limits;

        GlSessionState state;
        GlDecoder *decoder;
        json_tokener *tok; /* reused for every received message */
        GlSessionStats stats;

        /* handshake */
        uint64_t nonce;      /* ours, for this connection */
        uint64_t nonce_base; /* derived from our instance, so instances differ */
        uint64_t nonce_counter;
        uint64_t hello_deadline; /* next hello retry while in handshake, 0 = not armed */
        uint64_t echoed_nonce;   /* peer nonce we last answered */
        char *peer_instance;
        json_object *peer_hello_root;
        GlHello peer_hello;
        bool have_peer_hello;
        uint32_t version;

        /* sending */
        OutFrame *imm_head, *imm_tail; /* unsequenced frames */
        unsigned n_imm;
        MsgQueue ctl, bulk;
        OutFrame *rtx_head, *rtx_tail; /* sequenced frames not yet acknowledged */
        OutFrame *tx_cur;              /* next frame of rtx to (re)send */
        size_t rtx_bulk_bytes;         /* window in use */
        OutFrame *wr;                  /* frame being written */
        size_t wr_off, wr_len;
        uint64_t tx_next; /* next sequence number to assign */
        uint64_t tx_acked;

        /* receiving */
        uint64_t recv_last;
        bool ack_pending;
        bool nack_sent; /* a NACK was sent for the current gap */
        bool nack_owed; /* ... and must still go out */
        GlLimits peer_limits;
        bool have_peer_limits;
        GlMessage *partial; /* bulk message being reassembled */
        uint8_t *partial_buf;
        size_t partial_len, partial_cap;
        bool partial_drop; /* over the limit: swallow its remaining chunks */

        /* requests */
        uint64_t next_id;
        Pending *pending;
        unsigned n_pending;
        uint64_t *incoming;
        unsigned n_incoming;
        unsigned answers_unacked; /* application answers not yet acknowledged */
        uint64_t next_ping;

        LocalEvent *local;
        unsigned n_local, local_head, local_cap, local_max; /* the ring grows up to local_max */
};

void session_local_push(GlSession *s, const GlSessionEvent *ev);
void session_protocol_error(GlSession *s, int error, const char *detail, uint64_t seq);
void session_local_error(GlSession *s, uint64_t id, GlErrorCode code, const char *text);
Pending *session_pending_find(GlSession *s, uint64_t id);
void session_pending_remove(GlSession *s, Pending *p);
int session_queue_notice(GlSession *s, json_object *msg);
int session_queue_hello(GlSession *s, uint64_t echo);
int session_enqueue(GlSession *s, json_object *envelope, uint8_t *att, size_t att_len, unsigned flags,
                    uint64_t request);
void session_rtx_drop_acked(GlSession *s);
void session_stop_writing(GlSession *s);
void session_set_state(GlSession *s, GlSessionState state);
void session_new_nonce(GlSession *s);
void session_void_for_restart(GlSession *s);
int session_enqueue_answer(GlSession *s, json_object *envelope, uint8_t *att, size_t att_len, unsigned flags);
