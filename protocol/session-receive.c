/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The receiving half of the session: handshake, acknowledgements,
 * duplicate and gap handling, bulk reassembly and message dispatch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "session-private.h"

static void process_ack(GlSession *s, uint64_t ack, bool nack) {
        if (ack >= s->tx_next) {
                session_protocol_error(s, GL_SESSION_ERR_BAD_ACK, "acknowledgement of a frame never sent", ack);
                return;
        }
        if (ack > s->tx_acked) {
                s->tx_acked = ack;
                session_rtx_drop_acked(s);
        }
        if (nack)
                s->tx_cur = s->rtx_head; /* go back: resend all unacknowledged */
}

static void drop_partial(GlSession *s) {
        s->partial = gl_message_free(s->partial);
        free(s->partial_buf);
        s->partial_buf = NULL;
        s->partial_len = s->partial_cap = 0;
}

/* The peer's instance changed: it lost everything it knew about us. */
static void peer_restarted(GlSession *s) {
        for (unsigned i = 0; i < s->n_pending;) {
                Pending *p = &s->pending[i];

                /* Requests the old instance acknowledged can never be
                 * answered; unacknowledged ones are resent to the new one. */
                if (p->seq != 0 && p->seq <= s->tx_acked) {
                        session_local_error(s, p->id, GL_ERROR_ABORTED, "the peer restarted");
                        session_pending_remove(s, p);
                } else
                        i++;
        }
        s->n_incoming = 0;
        session_void_for_restart(s);
        drop_partial(s);
        s->partial_drop = false;
        session_local_push(s, &(GlSessionEvent){ .type = GL_SESSION_EVENT_PEER_RESTARTED });
}

static int parse_json(GlSession *s, const GlFrame *f, json_object **ret) {
        int r = gl_json_parse_with(s->tok, f->json, f->header.json_len, &s->limits, ret);

        if (r < 0) {
                s->stats.rejected_frames++;
                session_protocol_error(s, -r, gl_frame_error_to_string((GlFrameError) -r), f->header.seq);
                (void) session_queue_notice(
                        s, gl_message_new_error(0, GL_ERROR_INVALID, gl_frame_error_to_string((GlFrameError) -r)));
        }
        return r;
}

static void handle_hello(GlSession *s, const GlFrame *f) {
        json_object *root;
        const char *reason;
        GlHello h;
        uint32_t version;
        bool was_incompatible = s->state == GL_SESSION_INCOMPATIBLE;

        if (parse_json(s, f, &root) < 0)
                return;
        if (gl_hello_from_json(root, &h, &reason) < 0 ||
            (h.type && strcmp(h.type, "hello") != 0 && (reason = "hello frame of another type"))) {
                session_protocol_error(s, GL_SESSION_ERR_BAD_HELLO, reason, 0);
                json_object_put(root);
                return;
        }

        if (!s->peer_instance || strcmp(s->peer_instance, h.instance) != 0) {
                char *instance = strdup(h.instance);

                if (!instance) {
                        json_object_put(root);
                        return;
                }
                if (s->peer_instance)
                        peer_restarted(s);
                free(s->peer_instance);
                s->peer_instance = instance;
                s->recv_last = h.tx_first - 1;
                s->nack_sent = s->nack_owed = false;
        } else if (h.tx_first - 1 > s->recv_last) {
                /* An honest peer only forgets frames we acknowledged: this
                 * hello is forged (say, planted in a payload and found while
                 * resynchronising) and would make us skip real frames. */
                session_protocol_error(s, GL_SESSION_ERR_BAD_HELLO, "hello skips frames we never acknowledged",
                                       h.tx_first);
                json_object_put(root);
                return;
        }

        json_object_put(s->peer_hello_root);
        s->peer_hello_root = root;
        s->peer_hello = h;
        s->have_peer_hello = true;
        /* a peer that announces nothing is held to the defaults */
        s->have_peer_limits = true;
        s->peer_limits = h.have_limits ? h.limits : GL_LIMITS_DEFAULT;

        version = gl_hello_negotiate(s->config.min_version, s->config.max_version, h.min_version, h.max_version);
        if (version == 0) {
                session_set_state(s, GL_SESSION_INCOMPATIBLE);
                if (h.nonce != s->echoed_nonce) {
                        s->echoed_nonce = h.nonce;
                        (void) session_queue_hello(s, h.nonce);
                }
                if (!was_incompatible)
                        session_local_push(s, &(GlSessionEvent){ .type = GL_SESSION_EVENT_INCOMPATIBLE });
                return;
        }

        if (s->state == GL_SESSION_ESTABLISHED && h.echo != s->nonce) {
                /* The peer is on a new connection we did not notice (a
                 * guest cannot always see the host reconnect).  A frame
                 * being written is finished, never cut: on the same byte
                 * stream a truncated frame would swallow what follows. */
                session_set_state(s, GL_SESSION_HANDSHAKE);
                session_new_nonce(s);
                s->echoed_nonce = 0;
        } else if (s->state == GL_SESSION_INCOMPATIBLE)
                session_set_state(s, GL_SESSION_HANDSHAKE);

        if (h.nonce != s->echoed_nonce) {
                s->echoed_nonce = h.nonce;
                (void) session_queue_hello(s, h.nonce);
        }

        if (h.echo == s->nonce && s->state == GL_SESSION_HANDSHAKE) {
                /* The peer has seen our current hello, so its ack is
                 * fresh: everything after it goes out again. */
                bool ours = h.ack_instance && strcmp(h.ack_instance, s->instance) == 0;

                process_ack(s, ours ? f->header.ack : 0, false);
                s->tx_cur = s->rtx_head;
                session_set_state(s, GL_SESSION_ESTABLISHED);
                s->version = version;
                s->stats.handshakes++;
                session_local_push(s, &(GlSessionEvent){ .type = GL_SESSION_EVENT_ESTABLISHED });
        }
}

/* Returns true if the frame is new and in order (and consumes its seq). */
static bool sequence_accept(GlSession *s, const GlFrameHeader *h) {
        if (h->seq <= s->recv_last) {
                s->stats.duplicates++;
                s->ack_pending = true;
                return false;
        }
        if (h->seq > s->recv_last + 1) {
                s->stats.gaps++;
                if (!s->nack_sent) {
                        s->nack_sent = true;
                        s->nack_owed = true;
                }
                return false;
        }
        s->recv_last = h->seq;
        s->ack_pending = true;
        s->nack_sent = false;
        return true;
}

static void reply_error(GlSession *s, uint64_t id, GlErrorCode code, const char *text) {
        /* An answer to a request the application never saw.  Unlike the
         * application's answers (at most max_requests_in_flight), a peer can
         * provoke these without end, so they count against the control
         * budget: a peer that sends them faster than it acknowledges gets
         * no more of them. */
        if (session_enqueue(s, gl_message_new_error(id, code, text), NULL, 0, SEND_SELF_ANSWER, 0) < 0)
                s->stats.answers_dropped++;
}

/* A bulk request being reassembled is dropped: it still gets its one answer. */
static void answer_partial(GlSession *s, GlErrorCode code, const char *text) {
        if (s->partial && s->partial->type == GL_MSG_REQUEST && s->partial->id)
                reply_error(s, s->partial->id, code, text);
}

/* Returns true if m is to be delivered to the application. */
static bool dispatch(GlSession *s, GlMessage *m) {
        Pending *p;

        switch (m->type) {
        case GL_MSG_REQUEST:
                for (unsigned i = 0; i < s->n_incoming; i++)
                        if (s->incoming[i] == m->id) {
                                session_protocol_error(s, GL_SESSION_ERR_DUPLICATE_REQUEST,
                                                       "request id already in flight", m->id);
                                return false;
                        }
                /* a request is in flight until its answer is acknowledged:
                 * a peer that never acknowledges cannot make us keep more */
                if (s->n_incoming + s->answers_unacked >= s->config.max_requests_in_flight) {
                        session_protocol_error(s, GL_SESSION_ERR_TOO_MANY_REQUESTS, "too many requests in flight",
                                               m->id);
                        reply_error(s, m->id, GL_ERROR_BUSY, "too many requests in flight");
                        return false;
                }
                s->incoming[s->n_incoming++] = m->id;
                return true;
        case GL_MSG_RESPONSE:
        case GL_MSG_ERROR:
                if (m->type == GL_MSG_ERROR && m->id == 0)
                        return true; /* a notice about something we sent */
                p = session_pending_find(s, m->id);
                if (!p) {
                        s->stats.unmatched_responses++;
                        return false;
                }
                session_pending_remove(s, p);
                return true;
        case GL_MSG_PING:
                (void) session_queue_notice(s, gl_message_new_ping(GL_MSG_PONG, m->id));
                return false;
        case GL_MSG_PONG:
        case GL_MSG_EVENT:
                return true;
        default:
                return false;
        }
}

/* Turns a complete envelope into a message; returns it or NULL. */
static GlMessage *make_message(GlSession *s, json_object *root, uint64_t seq, bool bulk) {
        GlMessage *m = NULL;
        const char *reason = NULL;
        int r;

        r = gl_message_parse(root, &m, &reason);
        if (r == -EPROTONOSUPPORT) {
                session_protocol_error(s, GL_SESSION_ERR_UNKNOWN_TYPE, reason, seq);
                if (m->id)
                        reply_error(s, m->id, GL_ERROR_UNSUPPORTED, "unknown message type");
                else
                        (void) session_queue_notice(
                                s, gl_message_new_error(0, GL_ERROR_UNSUPPORTED, "unknown message type"));
                gl_message_free(m);
                return NULL;
        }
        if (r < 0) {
                if (r == -EINVAL) {
                        session_protocol_error(s, GL_SESSION_ERR_BAD_ENVELOPE, reason, seq);
                        (void) session_queue_notice(s, gl_message_new_error(0, GL_ERROR_INVALID, reason));
                }
                return NULL;
        }
        m->bulk = bulk;
        return m;
}

static int attach_copy(GlMessage *m, const uint8_t *data, size_t len) {
        if (len == 0)
                return 0;
        m->attachment = malloc(len);
        if (!m->attachment)
                return -ENOMEM;
        memcpy(m->attachment, data, len);
        m->attachment_len = len;
        return 0;
}

static int partial_append(GlSession *s, const uint8_t *data, size_t len, uint64_t seq) {
        if (len == 0)
                return 0;
        if (len > s->limits.max_message_attachment_bytes - s->partial_len) {
                session_protocol_error(s, GL_FRAME_ERR_ATTACHMENT_TOO_LARGE,
                                       "bulk attachment exceeds max_message_attachment_bytes", seq);
                answer_partial(s, GL_ERROR_TOO_LARGE, "attachment too large");
                drop_partial(s);
                return -EMSGSIZE;
        }
        if (s->partial_len + len > s->partial_cap) {
                size_t cap = s->partial_cap ? s->partial_cap : 64 * 1024;
                uint8_t *b;

                while (cap < s->partial_len + len)
                        cap *= 2;
                if (cap > s->limits.max_message_attachment_bytes)
                        cap = s->limits.max_message_attachment_bytes;
                b = realloc(s->partial_buf, cap);
                if (!b)
                        return -ENOMEM;
                s->partial_buf = b;
                s->partial_cap = cap;
        }
        memcpy(s->partial_buf + s->partial_len, data, len);
        s->partial_len += len;
        return 0;
}

/* Returns 1 with *ret set when a message is complete, 0 otherwise. */
static int handle_message(GlSession *s, const GlFrame *f, GlMessage **ret) {
        const GlFrameHeader *h = &f->header;
        bool bulk = h->flags & GL_FRAME_F_BULK;
        json_object *root;
        GlMessage *m;

        if (s->state != GL_SESSION_ESTABLISHED)
                return 0; /* the decoder passes only hellos then; keep it that way */
        process_ack(s, h->ack, false);
        if ((h->flags & GL_FRAME_F_RELIABLE) && !sequence_accept(s, h))
                return 0;
        if (h->json_len == 0 && h->attach_len == 0 && !(h->flags & GL_FRAME_F_CONTINUATION))
                return 0; /* a no-op: a frame the peer voided */
        if (bulk && (!(h->flags & GL_FRAME_F_RELIABLE) ||
                     GL_FRAME_HEADER_SIZE + (uint64_t) h->json_len + h->attach_len > GL_BULK_CHUNK_BYTES)) {
                session_protocol_error(s, GL_SESSION_ERR_BAD_CHUNK, "bulk frame unsequenced or over 32 KiB", h->seq);
                if (s->partial || (h->flags & GL_FRAME_F_MORE)) {
                        answer_partial(s, GL_ERROR_INVALID, "bulk frame unsequenced or over 32 KiB");
                        drop_partial(s);
                        s->partial_drop = (h->flags & GL_FRAME_F_MORE) != 0;
                }
                return 0;
        }

        if (h->flags & GL_FRAME_F_CONTINUATION) {
                if (s->partial_drop) {
                        if (!(h->flags & GL_FRAME_F_MORE))
                                s->partial_drop = false;
                        return 0;
                }
                if (!s->partial || h->json_len != 0 || !bulk) {
                        session_protocol_error(s, GL_SESSION_ERR_BAD_CHUNK,
                                               !s->partial ? "continuation without a bulk message"
                                                           : "malformed continuation of a bulk message",
                                               h->seq);
                        if (s->partial) {
                                /* never deliver it with a piece missing */
                                answer_partial(s, GL_ERROR_INVALID, "malformed bulk message");
                                drop_partial(s);
                                s->partial_drop = (h->flags & GL_FRAME_F_MORE) != 0;
                        }
                        return 0;
                }
                if (partial_append(s, f->attach, h->attach_len, h->seq) < 0) {
                        /* swallow the rest of the message */
                        s->partial_drop = (h->flags & GL_FRAME_F_MORE) != 0;
                        return 0;
                }
                if (h->flags & GL_FRAME_F_MORE)
                        return 0;
                m = s->partial;
                s->partial = NULL;
                m->attachment = s->partial_buf;
                m->attachment_len = s->partial_len;
                s->partial_buf = NULL;
                s->partial_len = s->partial_cap = 0;
                goto deliver;
        }

        if (bulk && (s->partial || s->partial_drop)) {
                /* Only a broken peer starts a bulk message inside another;
                 * control messages may come between chunks. */
                session_protocol_error(s, GL_SESSION_ERR_BAD_CHUNK, "bulk message cut short", h->seq);
                answer_partial(s, GL_ERROR_INVALID, "bulk message cut short");
                drop_partial(s);
                s->partial_drop = false;
        }
        if (parse_json(s, f, &root) < 0) {
                if (bulk && (h->flags & GL_FRAME_F_MORE))
                        s->partial_drop = true;
                return 0;
        }
        m = make_message(s, root, h->seq, bulk);
        if (!m) {
                if (bulk && (h->flags & GL_FRAME_F_MORE))
                        s->partial_drop = true;
                return 0;
        }
        if (bulk && (h->flags & GL_FRAME_F_MORE)) {
                s->partial = m;
                if (partial_append(s, f->attach, h->attach_len, h->seq) < 0)
                        s->partial_drop = true;
                return 0;
        }
        if (bulk && h->attach_len > s->limits.max_message_attachment_bytes) {
                session_protocol_error(s, GL_FRAME_ERR_ATTACHMENT_TOO_LARGE,
                                       "bulk attachment exceeds max_message_attachment_bytes", h->seq);
                if (m->type == GL_MSG_REQUEST)
                        reply_error(s, m->id, GL_ERROR_TOO_LARGE, "attachment too large");
                gl_message_free(m);
                return 0;
        }
        if (attach_copy(m, f->attach, h->attach_len) < 0) {
                gl_message_free(m);
                return -ENOMEM;
        }

deliver:
        if (!dispatch(s, m)) {
                gl_message_free(m);
                return 0;
        }
        *ret = m;
        return 1;
}

/* A frame the decoder refused for its declared sizes: its sequence number
 * is still used up, or the stream would stall on it forever. */
static void handle_rejected(GlSession *s, int error, const GlFrame *f) {
        const GlFrameHeader *h = &f->header;

        s->stats.rejected_frames++;
        session_protocol_error(s, error, gl_frame_error_to_string((GlFrameError) error), h->seq);
        if (error == GL_FRAME_ERR_PAYLOAD_CRC || error == GL_FRAME_ERR_VERSION)
                return;
        if (s->state != GL_SESSION_ESTABLISHED || h->kind != GL_FRAME_MESSAGE)
                return;
        if ((h->flags & GL_FRAME_F_RELIABLE) && !sequence_accept(s, h))
                return;
        if (h->flags & GL_FRAME_F_BULK) {
                answer_partial(s, GL_ERROR_TOO_LARGE, "attachment too large");
                drop_partial(s);
                s->partial_drop = (h->flags & GL_FRAME_F_MORE) != 0;
        }
        (void) session_queue_notice(
                s, gl_message_new_error(0, GL_ERROR_TOO_LARGE, gl_frame_error_to_string((GlFrameError) error)));
}

int gl_session_receive(GlSession *s, GlSessionEvent *ret) {
        for (;;) {
                GlMessage *m = NULL;
                GlFrame f;
                int r;

                if (s->n_local > 0) {
                        *ret = s->local[s->local_head].ev;
                        s->local_head = (s->local_head + 1) % s->local_cap;
                        s->n_local--;
                        return 1;
                }
                r = gl_decoder_next(s->decoder, &f);
                if (r == 0)
                        return 0;
                if (r < 0) {
                        handle_rejected(s, -r, &f);
                        continue;
                }
                s->stats.frames_in++;
                switch (f.header.kind) {
                case GL_FRAME_HELLO:
                        handle_hello(s, &f);
                        break;
                case GL_FRAME_ACK:
                        if (s->state == GL_SESSION_ESTABLISHED)
                                process_ack(s, f.header.ack, f.header.flags & GL_FRAME_F_NACK);
                        break;
                case GL_FRAME_MESSAGE:
                        r = handle_message(s, &f, &m);
                        if (r < 0)
                                return r;
                        if (r > 0) {
                                *ret = (GlSessionEvent){ .type = GL_SESSION_EVENT_MESSAGE, .message = m };
                                return 1;
                        }
                        break;
                default:
                        /* Frame kinds from a newer protocol are ignored. */
                        break;
                }
        }
}
