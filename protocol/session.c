/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "session-private.h"

static void out_msg_free(OutMsg *m) {
        if (m) {
                json_object_put(m->obj);
                free(m->att);
                free(m);
        }
}

static MsgQueue *queue_of(GlSession *s, unsigned flags) {
        return flags & GL_SEND_BULK ? &s->bulk : &s->ctl;
}

static void msg_free_accounted(GlSession *s, OutMsg *m) {
        queue_of(s, m->flags)->bytes -= m->cost;
        if (m->flags & SEND_ANSWER)
                s->answers_unacked--;
        out_msg_free(m);
}

static void msg_release_frame(GlSession *s, OutMsg *m) {
        if (--m->frames == 0 && m->json_cut && m->att_off >= m->att_len)
                msg_free_accounted(s, m);
}

static void out_frame_free(GlSession *s, OutFrame *f) {
        if (!f)
                return;
        if (f->kind == OUT_FRAME)
                msg_release_frame(s, f->msg);
        free(f->owned_json);
        free(f);
}

static char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

/* No byte JSON would escape: the hello's size is then what we counted. */
static bool plain_text(const char *s) {
        for (; s && *s; s++)
                if ((unsigned char) *s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
                        return false;
        return true;
}

GlSession *gl_session_new(const GlSessionConfig *config) {
        GlSession *s;

        if (!config || !config->instance || !*config->instance || strlen(config->instance) > GL_HELLO_MAX_ID_LEN)
                return NULL;
        /* Our hello must always fit a peer's hello limit (16 KiB). */
        if ((config->software && strlen(config->software) > 128) || (config->role && strlen(config->role) > 32) ||
            (config->boot_id && strlen(config->boot_id) > GL_HELLO_MAX_ID_LEN))
                return NULL;
        for (const char *const *c = config->capabilities; c && *c; c++)
                if (strlen(*c) > 64 || !plain_text(*c))
                        return NULL;
        if (!plain_text(config->role) || !plain_text(config->software) || !plain_text(config->boot_id) ||
            !plain_text(config->instance))
                return NULL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->config = *config;
        if (!s->config.min_version)
                s->config.min_version = GL_PROTOCOL_VERSION_MIN;
        if (!s->config.max_version)
                s->config.max_version = GL_PROTOCOL_VERSION_MAX;
        if (!s->config.max_control_queue_bytes)
                s->config.max_control_queue_bytes = DEFAULT_CONTROL_QUEUE_BYTES;
        if (!s->config.max_bulk_queue_bytes)
                s->config.max_bulk_queue_bytes = DEFAULT_BULK_QUEUE_BYTES;
        if (!s->config.max_window_bytes)
                s->config.max_window_bytes = DEFAULT_WINDOW_BYTES;
        if (!s->config.max_requests_in_flight)
                s->config.max_requests_in_flight = DEFAULT_REQUESTS_IN_FLIGHT;
        s->limits = config->limits.max_frame_bytes ? config->limits : GL_LIMITS_DEFAULT;
#define RAISE(f) s->limits.f = s->limits.f < GL_LIMITS_MIN.f ? GL_LIMITS_MIN.f : s->limits.f
        RAISE(max_frame_bytes);
        RAISE(max_json_bytes);
        RAISE(max_frame_attachment_bytes);
        RAISE(max_json_depth);
        RAISE(max_string_bytes);
#undef RAISE

        s->instance = strdup(config->instance);
        s->role = strdup_or_null(config->role);
        s->software = strdup_or_null(config->software);
        s->boot_id = strdup_or_null(config->boot_id);
        for (const char *const *c = config->capabilities; c && *c && s->n_caps < GL_HELLO_MAX_CAPABILITIES; c++)
                s->n_caps++;
        s->caps = calloc(s->n_caps + 1, sizeof(char *));
        s->decoder = gl_decoder_new(&s->limits);
        s->tok = gl_json_tokener_new(&s->limits);
        s->pending = calloc(s->config.max_requests_in_flight, sizeof(Pending));
        s->incoming = calloc(s->config.max_requests_in_flight, sizeof(uint64_t));
        /* room for a timeout or abort of every request in flight, plus
         * protocol errors (which are dropped, not the others, when full) */
        /* The local event ring starts small and grows on demand: a bridge
         * holds a session per guest, and nearly all of them never have more
         * than a few local events waiting. */
        s->local_max = s->config.max_requests_in_flight + MAX_LOCAL_EVENTS;
        s->local_cap = 16;
        s->local = calloc(s->local_cap, sizeof(LocalEvent));
        if (!s->instance || !s->caps || !s->decoder || !s->tok || !s->pending || !s->incoming || !s->local)
                return gl_session_free(s);
        for (unsigned i = 0; i < s->n_caps; i++)
                if (!(s->caps[i] = strdup(config->capabilities[i])))
                        return gl_session_free(s);
        /* Nonces count per connection from a base that depends on the
         * instance: a hello replayed from another instance's session can
         * then not echo our current nonce by accident. */
        for (const char *c = s->instance; *c; c++)
                s->nonce_base = (s->nonce_base ^ (uint8_t) *c) * UINT64_C(0x100000001b3);
        s->nonce_base %= GL_MESSAGE_ID_MAX;
        s->tx_next = 1;
        s->next_id = 1;
        s->next_ping = 1;
        session_set_state(s, GL_SESSION_DISCONNECTED);
        return s;
}

static void free_frame_list(GlSession *s, OutFrame *f) {
        while (f) {
                OutFrame *next = f->next;
                out_frame_free(s, f);
                f = next;
        }
}

static void free_msg_list(OutMsg *m) {
        while (m) {
                OutMsg *next = m->next;
                out_msg_free(m);
                m = next;
        }
}

GlSession *gl_session_free(GlSession *s) {
        if (!s)
                return NULL;
        if (s->wr && s->wr->kind != OUT_FRAME)
                out_frame_free(s, s->wr);
        else if (s->wr && !(s->wr->h.flags & GL_FRAME_F_RELIABLE))
                out_frame_free(s, s->wr);
        free_frame_list(s, s->imm_head);
        free_frame_list(s, s->rtx_head);
        free_msg_list(s->ctl.head);
        free_msg_list(s->bulk.head);
        while (s->n_local > 0) {
                gl_message_free(s->local[s->local_head].ev.message);
                s->local_head = (s->local_head + 1) % s->local_cap;
                s->n_local--;
        }
        gl_message_free(s->partial);
        free(s->partial_buf);
        json_object_put(s->peer_hello_root);
        free(s->peer_instance);
        for (unsigned i = 0; s->caps && i < s->n_caps; i++)
                free(s->caps[i]);
        free(s->caps);
        free(s->instance);
        free(s->role);
        free(s->software);
        free(s->boot_id);
        gl_decoder_free(s->decoder);
        if (s->tok)
                json_tokener_free(s->tok);
        free(s->pending);
        free(s->incoming);
        free(s->local);
        free(s);
        return NULL;
}

GlSessionState gl_session_state(const GlSession *s) {
        return s->state;
}

const char *gl_session_state_to_string(GlSessionState state) {
        switch (state) {
        case GL_SESSION_DISCONNECTED:
                return "disconnected";
        case GL_SESSION_HANDSHAKE:
                return "handshake";
        case GL_SESSION_ESTABLISHED:
                return "established";
        case GL_SESSION_INCOMPATIBLE:
                return "incompatible";
        }
        return "unknown";
}

uint32_t gl_session_version(const GlSession *s) {
        return s->state == GL_SESSION_ESTABLISHED ? s->version : 0;
}

const GlHello *gl_session_peer(const GlSession *s) {
        return s->have_peer_hello ? &s->peer_hello : NULL;
}

bool gl_session_peer_has_capability(const GlSession *s, const char *capability) {
        if (!s->have_peer_hello)
                return false;
        for (unsigned i = 0; i < s->peer_hello.n_capabilities; i++)
                if (strcmp(s->peer_hello.capabilities[i], capability) == 0)
                        return true;
        return false;
}

const GlSessionStats *gl_session_stats(const GlSession *s) {
        GlSessionStats *st = (GlSessionStats *) &s->stats;
        const GlDecoderStats *ds = gl_decoder_stats(s->decoder);

        st->garbage_bytes = ds->garbage_bytes;
        st->bytes_in = ds->bytes;
        return &s->stats;
}

/* ---- local events (timeouts, aborts, protocol errors) ---- */

static void local_grow(GlSession *s) {
        unsigned cap = s->local_cap * 2 < s->local_max ? s->local_cap * 2 : s->local_max;
        LocalEvent *l = malloc(cap * sizeof(LocalEvent));

        if (!l)
                return; /* stays full: behaves as at local_max */
        for (unsigned i = 0; i < s->n_local; i++)
                l[i] = s->local[(s->local_head + i) % s->local_cap];
        free(s->local);
        s->local = l;
        s->local_head = 0;
        s->local_cap = cap;
}

void session_local_push(GlSession *s, const GlSessionEvent *ev) {
        if (s->n_local == s->local_cap && s->local_cap < s->local_max)
                local_grow(s);
        if (s->n_local == s->local_cap && ev->type == GL_SESSION_EVENT_PROTOCOL_ERROR)
                return; /* counted in the stats; a flood of them must not crowd out answers */
        if (s->n_local == s->local_cap) {
                /* cannot happen: the ring has room for every request's
                 * local error; keep the newest if it does */
                LocalEvent *old = &s->local[s->local_head];
                gl_message_free(old->ev.message);
                s->local_head = (s->local_head + 1) % s->local_cap;
                s->n_local--;
        }
        s->local[(s->local_head + s->n_local) % s->local_cap].ev = *ev;
        s->n_local++;
}

void session_protocol_error(GlSession *s, int error, const char *detail, uint64_t seq) {
        s->stats.protocol_errors++;
        session_local_push(s, &(GlSessionEvent){
                                      .type = GL_SESSION_EVENT_PROTOCOL_ERROR,
                                      .error = error,
                                      .detail = detail,
                                      .seq = seq,
                              });
}

void session_local_error(GlSession *s, uint64_t id, GlErrorCode code, const char *text) {
        GlMessage *m = calloc(1, sizeof(*m));

        if (!m)
                return;
        m->type = GL_MSG_ERROR;
        m->id = id;
        m->code = code;
        m->error_message = text;
        m->local = true;
        session_local_push(s, &(GlSessionEvent){ .type = GL_SESSION_EVENT_MESSAGE, .message = m });
}

/* ---- pending requests ---- */

Pending *session_pending_find(GlSession *s, uint64_t id) {
        for (unsigned i = 0; i < s->n_pending; i++)
                if (s->pending[i].id == id)
                        return &s->pending[i];
        return NULL;
}

void session_pending_remove(GlSession *s, Pending *p) {
        *p = s->pending[--s->n_pending];
}

static bool hello_queued(const GlSession *s) {
        for (const OutFrame *f = s->imm_head; f; f = f->next)
                if (f->kind == OUT_HELLO)
                        return true;
        return false;
}

void gl_session_expire(GlSession *s, uint64_t now_ms) {
        if (s->state == GL_SESSION_HANDSHAKE || s->state == GL_SESSION_INCOMPATIBLE) {
                if (s->hello_deadline == 0)
                        s->hello_deadline = now_ms + HELLO_RETRY_MS;
                else if (now_ms >= s->hello_deadline) {
                        s->hello_deadline = now_ms + HELLO_RETRY_MS;
                        if (!hello_queued(s) && session_queue_hello(s, s->echoed_nonce) >= 0) {
                                s->imm_tail->padded = true;
                                s->stats.hello_retries++;
                        }
                }
        }
        for (unsigned i = 0; i < s->n_pending;) {
                Pending *p = &s->pending[i];

                if (p->deadline > now_ms) {
                        i++;
                        continue;
                }
                session_local_error(s, p->id, GL_ERROR_TIMEOUT, "no response before the deadline");
                session_pending_remove(s, p);
        }
}

uint64_t gl_session_next_deadline(const GlSession *s) {
        uint64_t d = UINT64_MAX;

        if (s->state == GL_SESSION_HANDSHAKE || s->state == GL_SESSION_INCOMPATIBLE)
                d = s->hello_deadline; /* 0: not armed yet, call now */
        for (unsigned i = 0; i < s->n_pending; i++)
                if (s->pending[i].deadline < d)
                        d = s->pending[i].deadline;
        return d;
}

/* ---- sending ---- */

static void imm_push(GlSession *s, OutFrame *f) {
        if (s->imm_tail)
                s->imm_tail->next = f;
        else
                s->imm_head = f;
        s->imm_tail = f;
        s->n_imm++;
}

static void imm_clear(GlSession *s) {
        free_frame_list(s, s->imm_head);
        s->imm_head = s->imm_tail = NULL;
        s->n_imm = 0;
}

int session_queue_notice(GlSession *s, json_object *msg) {
        OutFrame *f;
        const char *text;
        size_t len;

        if (!msg)
                return -ENOMEM;
        /* Notices (pongs, error reports) only make sense to an established
         * peer; before that only hellos may go out, and a notice must not
         * sit in front of one. */
        if (s->state != GL_SESSION_ESTABLISHED || s->n_imm >= MAX_IMMEDIATE) {
                json_object_put(msg);
                return -ENOBUFS;
        }
        f = calloc(1, sizeof(*f));
        text = json_object_to_json_string_length(msg, GL_JSON_FLAGS, &len);
        if (!f || !(f->owned_json = strndup(text, len))) {
                free(f);
                json_object_put(msg);
                return -ENOMEM;
        }
        json_object_put(msg);
        f->kind = OUT_NOTICE;
        f->json = f->owned_json;
        f->json_len = len;
        imm_push(s, f);
        return 0;
}

int session_queue_hello(GlSession *s, uint64_t echo) {
        OutFrame *f;

        /* One hello waiting is enough: a newer answer replaces the echo of
         * the one not yet sent (a peer cannot make us queue hellos). */
        for (f = s->imm_head; f; f = f->next)
                if (f->kind == OUT_HELLO) {
                        f->echo = echo;
                        return 0;
                }
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->kind = OUT_HELLO;
        f->echo = echo;
        imm_push(s, f);
        return 0;
}

static GlLimits effective_limits(const GlSession *s) {
        GlLimits l = s->limits;

        if (s->have_peer_limits) {
#define MIN_FIELD(f) l.f = s->peer_limits.f < l.f ? s->peer_limits.f : l.f
                MIN_FIELD(max_frame_bytes);
                MIN_FIELD(max_json_bytes);
                MIN_FIELD(max_frame_attachment_bytes);
                MIN_FIELD(max_message_attachment_bytes);
                MIN_FIELD(max_json_depth);
                MIN_FIELD(max_string_bytes);
#undef MIN_FIELD
        }
        return l;
}

const GlLimits *gl_session_peer_limits(const GlSession *s) {
        return s->have_peer_limits ? &s->peer_limits : NULL;
}

bool gl_session_can_send(const GlSession *s, unsigned flags, size_t bytes) {
        const MsgQueue *q = flags & GL_SEND_BULK ? &s->bulk : &s->ctl;
        size_t max = flags & GL_SEND_BULK ? s->config.max_bulk_queue_bytes : s->config.max_control_queue_bytes;

        return q->bytes + bytes <= max;
}

int session_enqueue(GlSession *s, json_object *envelope, uint8_t *att, size_t att_len, unsigned flags,
                    uint64_t request) {
        MsgQueue *q = queue_of(s, flags);
        const char *text;
        size_t len, cost;
        GlLimits limits;
        OutMsg *m;

        if (!envelope) {
                free(att);
                return -ENOMEM;
        }
        if ((flags & GL_SEND_BULK) && (flags & GL_SEND_UNRELIABLE)) {
                json_object_put(envelope);
                free(att);
                return -EINVAL;
        }
        text = json_object_to_json_string_length(envelope, GL_JSON_FLAGS, &len);
        /* Never send what the peer (or we) would refuse: it would use up a
         * sequence number and reach the other side as a protocol error. */
        limits = effective_limits(s);
        if (gl_json_check_text(text, len, &limits) < 0)
                goto too_big;
        if (flags & GL_SEND_BULK) {
                if (GL_FRAME_HEADER_SIZE + len >= GL_BULK_CHUNK_BYTES || att_len > limits.max_message_attachment_bytes)
                        goto too_big;
        } else if (len > limits.max_json_bytes || att_len > limits.max_frame_attachment_bytes ||
                   GL_FRAME_HEADER_SIZE + len + att_len > limits.max_frame_bytes)
                goto too_big;

        cost = len + att_len + GL_FRAME_HEADER_SIZE;
        if (cost > (flags & GL_SEND_BULK ? s->config.max_bulk_queue_bytes : s->config.max_control_queue_bytes) &&
            !((flags & SEND_ANSWER) && !(flags & GL_SEND_BULK)))
                goto too_big; /* would never fit, however long we wait */
        /* Control answers to the peer's requests are not refused for lack
         * of room: there are at most max_requests_in_flight of them, and
         * refusing would break "exactly one response per request".  Bulk
         * answers (up to max_message_attachment_bytes each) do count. */
        if ((!(flags & SEND_ANSWER) || (flags & GL_SEND_BULK)) && !gl_session_can_send(s, flags, cost)) {
                json_object_put(envelope);
                free(att);
                return -ENOBUFS;
        }
        m = calloc(1, sizeof(*m));
        if (!m) {
                json_object_put(envelope);
                free(att);
                return -ENOMEM;
        }
        m->obj = envelope; /* owns the text, which stays put as long as nobody serialises it again */
        m->json = text;
        m->json_len = len;
        m->att = att;
        m->att_len = att_len;
        m->flags = flags;
        m->request = request;
        m->cost = cost;
        if (flags & SEND_ANSWER)
                s->answers_unacked++;
        q->bytes += cost;
        if (q->tail)
                q->tail->next = m;
        else
                q->head = m;
        q->tail = m;
        return 0;

too_big:
        json_object_put(envelope);
        free(att);
        return -EMSGSIZE;
}

static bool valid_name(const char *name) {
        return name && *name && strlen(name) <= GL_MESSAGE_NAME_MAX;
}

int gl_session_send_event(GlSession *s, const char *name, json_object *data, uint8_t *attachment, size_t attachment_len,
                          unsigned flags) {
        if (!valid_name(name)) {
                json_object_put(data);
                free(attachment);
                return -EINVAL;
        }
        return session_enqueue(s, gl_message_new_event(name, data), attachment, attachment_len, flags, 0);
}

int gl_session_request(GlSession *s, const char *method, json_object *params, uint8_t *attachment,
                       size_t attachment_len, unsigned flags, uint64_t now_ms, uint64_t timeout_ms, uint64_t *ret_id) {
        uint64_t id;
        int r;

        if (!valid_name(method) || (flags & GL_SEND_UNRELIABLE)) {
                json_object_put(params);
                free(attachment);
                return -EINVAL;
        }
        if (s->n_pending >= s->config.max_requests_in_flight) {
                json_object_put(params);
                free(attachment);
                return -EBUSY;
        }
        id = s->next_id++;
        r = session_enqueue(s, gl_message_new_request(id, method, params), attachment, attachment_len, flags, id);
        if (r < 0)
                return r;
        s->pending[s->n_pending++] = (Pending){
                .id = id,
                .deadline = timeout_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + timeout_ms,
        };
        if (ret_id)
                *ret_id = id;
        return 0;
}

static bool incoming_take(GlSession *s, uint64_t id) {
        for (unsigned i = 0; i < s->n_incoming; i++)
                if (s->incoming[i] == id) {
                        s->incoming[i] = s->incoming[--s->n_incoming];
                        return true;
                }
        return false;
}

int gl_session_respond(GlSession *s, uint64_t id, json_object *result, uint8_t *attachment, size_t attachment_len,
                       unsigned flags) {
        int r;

        if (!incoming_take(s, id)) {
                json_object_put(result);
                free(attachment);
                return -ENOENT;
        }
        r = session_enqueue(s, gl_message_new_response(id, result), attachment, attachment_len,
                            (flags & ~(unsigned) GL_SEND_UNRELIABLE) | SEND_ANSWER, 0);
        if (r == -ENOBUFS) {
                /* Only a bulk answer can be refused for room: the request
                 * stays open, to be answered again later or with an error. */
                s->incoming[s->n_incoming++] = id;
                return r;
        }
        if (r == -EMSGSIZE) {
                /* Exactly one answer per request, whatever happens. */
                (void) session_enqueue(s, gl_message_new_error(id, GL_ERROR_TOO_LARGE, "response too large"), NULL, 0,
                                       SEND_ANSWER, 0);
        }
        return r;
}

int gl_session_respond_error(GlSession *s, uint64_t id, GlErrorCode code, const char *message) {
        int r;

        if (!incoming_take(s, id))
                return -ENOENT;
        r = session_enqueue(s, gl_message_new_error(id, code, message), NULL, 0, SEND_ANSWER, 0);
        if (r == -EMSGSIZE) /* the text breaks the peer's limits: the code alone still answers */
                r = session_enqueue(s, gl_message_new_error(id, code, NULL), NULL, 0, SEND_ANSWER, 0);
        return r;
}

int gl_session_ping(GlSession *s, uint64_t *ret_id) {
        uint64_t id = s->next_ping++;
        int r;

        if (s->state != GL_SESSION_ESTABLISHED)
                return -ENOTCONN;
        r = session_queue_notice(s, gl_message_new_ping(GL_MSG_PING, id));
        if (r >= 0 && ret_id)
                *ret_id = id;
        return r;
}

/* ---- output ---- */

static uint64_t tx_first(const GlSession *s) {
        return s->rtx_head ? s->rtx_head->h.seq : s->tx_next;
}

static int serialise_hello(GlSession *s, OutFrame *f) {
        GlHello h = {
                .role = s->role,
                .software = s->software,
                .instance = s->instance,
                .boot_id = s->boot_id,
                .min_version = s->config.min_version,
                .max_version = s->config.max_version,
                .n_capabilities = s->n_caps,
                .nonce = s->nonce,
                .echo = f->echo,
                .ack_instance = s->peer_instance,
                .tx_first = tx_first(s),
        };
        json_object *o;
        const char *text;
        size_t len;

        for (unsigned i = 0; i < s->n_caps; i++)
                h.capabilities[i] = s->caps[i];
        h.limits = s->limits;
        h.have_limits = true;
        o = gl_hello_to_json(&h);
        if (!o)
                return -ENOMEM;
        text = json_object_to_json_string_length(o, GL_JSON_FLAGS, &len);
        f->owned_json = strndup(text, len);
        json_object_put(o);
        if (!f->owned_json)
                return -ENOMEM;
        f->json = f->owned_json;
        f->json_len = len;
        f->h.kind = GL_FRAME_HELLO;
        if (f->padded && GL_FRAME_HEADER_SIZE + len < GL_DECODER_HELLO_MAX_BYTES) {
                static const uint8_t zeros[GL_DECODER_HELLO_MAX_BYTES];

                f->att = zeros;
                f->att_len = GL_DECODER_HELLO_MAX_BYTES - GL_FRAME_HEADER_SIZE - len;
        }
        return 0;
}

/* Cuts the next frame of a message. */
static OutFrame *cut_frame(const GlSession *s, OutMsg *m) {
        OutFrame *f = calloc(1, sizeof(*f));
        size_t room;

        if (!f)
                return NULL;
        f->kind = OUT_FRAME;
        f->msg = m;
        f->h.kind = GL_FRAME_MESSAGE;
        if (!(m->flags & GL_SEND_UNRELIABLE))
                f->h.flags |= GL_FRAME_F_RELIABLE;
        if (!(m->flags & GL_SEND_BULK)) {
                f->json = m->json;
                f->json_len = m->json_len;
                f->att = m->att;
                f->att_len = m->att_len;
                m->json_cut = true;
                m->att_off = m->att_len;
        } else {
                GlLimits l = effective_limits(s);
                size_t max_att = l.max_frame_attachment_bytes;

                f->h.flags |= GL_FRAME_F_BULK;
                room = (l.max_frame_bytes < GL_BULK_CHUNK_BYTES ? l.max_frame_bytes : GL_BULK_CHUNK_BYTES) -
                       GL_FRAME_HEADER_SIZE;
                if (!m->json_cut) {
                        f->json = m->json;
                        f->json_len = m->json_len;
                        room -= m->json_len;
                        m->json_cut = true;
                } else
                        f->h.flags |= GL_FRAME_F_CONTINUATION;
                if (room > max_att)
                        room = max_att;
                f->att = m->att ? m->att + m->att_off : NULL; /* no attachment: no pointer arithmetic on NULL */
                f->att_len = m->att_len - m->att_off < room ? m->att_len - m->att_off : room;
                m->att_off += f->att_len;
                if (m->att_off < m->att_len)
                        f->h.flags |= GL_FRAME_F_MORE;
        }
        m->frames++;
        return f;
}

/* Takes the next frame of a message queue, dequeuing the message once it
 * is fully cut. */
static OutFrame *take_frame(const GlSession *s, MsgQueue *q) {
        OutMsg *m = q->head;
        OutFrame *f = cut_frame(s, m);

        if (!f)
                return NULL;
        if (m->json_cut && m->att_off >= m->att_len) {
                q->head = m->next;
                if (!q->head)
                        q->tail = NULL;
                m->next = NULL;
        }
        return f;
}

static void rtx_append(GlSession *s, OutFrame *f) {
        Pending *p;

        f->h.seq = s->tx_next++;
        if (s->rtx_tail)
                s->rtx_tail->next = f;
        else
                s->rtx_head = f;
        s->rtx_tail = f;
        if (f->h.flags & GL_FRAME_F_BULK) {
                f->window_cost = GL_FRAME_HEADER_SIZE + f->json_len + f->att_len;
                s->rtx_bulk_bytes += f->window_cost;
        }
        /* a request's fate is decided by its first frame: if the peer got
         * that, it got (or will get) the request */
        if (f->msg->request && (p = session_pending_find(s, f->msg->request)) && p->seq == 0)
                p->seq = f->h.seq;
}

static OutFrame *pick(GlSession *s) {
        OutFrame *f;

        if (s->state == GL_SESSION_DISCONNECTED)
                return NULL;
        if (s->imm_head && (s->imm_head->kind == OUT_HELLO || s->state == GL_SESSION_ESTABLISHED)) {
                f = s->imm_head;
                s->imm_head = f->next;
                if (!s->imm_head)
                        s->imm_tail = NULL;
                s->n_imm--;
                f->next = NULL;
                if (f->kind == OUT_HELLO && serialise_hello(s, f) < 0) {
                        out_frame_free(s, f);
                        return NULL;
                }
                if (f->kind == OUT_NOTICE)
                        f->h.kind = GL_FRAME_MESSAGE;
                return f;
        }
        if (s->state != GL_SESSION_ESTABLISHED)
                return NULL;
        if (s->nack_owed) {
                /* A gap: ask for the resend before sending anything else, as
                 * our own traffic would carry only the plain ack. */
                f = calloc(1, sizeof(*f));
                if (!f)
                        return NULL;
                f->kind = OUT_ACK;
                f->h.kind = GL_FRAME_ACK;
                f->h.flags = GL_FRAME_F_NACK;
                s->nack_owed = false;
                return f;
        }
        if (s->tx_cur) {
                f = s->tx_cur;
                s->tx_cur = f->next;
                s->stats.retransmits++;
                return f;
        }
        if (s->ctl.head) {
                f = take_frame(s, &s->ctl);
                if (f && (f->h.flags & GL_FRAME_F_RELIABLE))
                        rtx_append(s, f);
                return f;
        }
        if (s->bulk.head && s->rtx_bulk_bytes < s->config.max_window_bytes) {
                f = take_frame(s, &s->bulk);
                if (f)
                        rtx_append(s, f);
                return f;
        }
        if (s->ack_pending) {
                f = calloc(1, sizeof(*f));
                if (!f)
                        return NULL;
                f->kind = OUT_ACK;
                f->h.kind = GL_FRAME_ACK;
                return f;
        }
        return NULL;
}

bool gl_session_want_output(GlSession *s) {
        if (s->wr)
                return true;
        if (s->state == GL_SESSION_DISCONNECTED)
                return false;
        if (s->imm_head && (s->imm_head->kind == OUT_HELLO || s->state == GL_SESSION_ESTABLISHED))
                return true;
        if (s->state != GL_SESSION_ESTABLISHED)
                return false;
        return s->nack_owed || s->tx_cur || s->ctl.head || s->ack_pending ||
               (s->bulk.head && s->rtx_bulk_bytes < s->config.max_window_bytes);
}

size_t gl_session_output(GlSession *s, GlIovec iov[GL_SESSION_IOV_MAX]) {
        size_t n = 0, off;

        if (!s->wr) {
                OutFrame *f = pick(s);

                if (!f)
                        return 0;
                /* Stamp the current acknowledgement into the header. */
                f->h.version = GL_FRAME_VERSION;
                if (f->voided) {
                        f->h.flags = GL_FRAME_F_RELIABLE;
                        f->json_len = 0;
                        f->att_len = 0;
                }
                if (s->peer_instance) {
                        f->h.ack = s->recv_last;
                        s->ack_pending = false;
                }
                gl_frame_encode(&f->h, f->json, f->json_len, f->att, f->att_len, f->hdr);
                s->wr = f;
                s->wr_off = 0;
                s->wr_len = GL_FRAME_HEADER_SIZE + f->json_len + f->att_len;
        }
        off = s->wr_off;
        if (off < GL_FRAME_HEADER_SIZE)
                iov[n++] = (GlIovec){ s->wr->hdr + off, GL_FRAME_HEADER_SIZE - off };
        off = off > GL_FRAME_HEADER_SIZE ? off - GL_FRAME_HEADER_SIZE : 0;
        if (off < s->wr->json_len)
                iov[n++] = (GlIovec){ s->wr->json + off, s->wr->json_len - off };
        off = off > s->wr->json_len ? off - s->wr->json_len : 0;
        if (off < s->wr->att_len)
                iov[n++] = (GlIovec){ s->wr->att + off, s->wr->att_len - off };
        return n;
}

static bool is_sequenced(const OutFrame *f) {
        return f->kind == OUT_FRAME && (f->h.flags & GL_FRAME_F_RELIABLE);
}

void session_rtx_drop_acked(GlSession *s) {
        while (s->rtx_head && s->rtx_head->h.seq <= s->tx_acked && s->rtx_head != s->wr) {
                OutFrame *f = s->rtx_head;

                s->rtx_head = f->next;
                if (!s->rtx_head)
                        s->rtx_tail = NULL;
                if (s->tx_cur == f)
                        s->tx_cur = f->next;
                s->rtx_bulk_bytes -= f->window_cost;
                out_frame_free(s, f);
        }
}

void gl_session_output_advance(GlSession *s, size_t n) {
        OutFrame *f = s->wr;

        if (!f)
                return;
        s->wr_off += n;
        s->stats.bytes_out += n;
        if (s->wr_off < s->wr_len)
                return;
        s->stats.frames_out++;
        s->wr = NULL;
        if (is_sequenced(f))
                session_rtx_drop_acked(s); /* it may have been acknowledged meanwhile */
        else
                out_frame_free(s, f);
}

/* ---- connection state ---- */

void session_new_nonce(GlSession *s) {
        s->nonce_counter++;
        s->nonce = (s->nonce_base + s->nonce_counter) % GL_MESSAGE_ID_MAX + 1; /* 1 .. 2^53-1 */
}

/* Takes messages the new peer instance must not get out of a queue. */
static void drop_for_restart(GlSession *s, MsgQueue *q) {
        OutMsg **link = &q->head, *m;

        q->tail = NULL;
        while ((m = *link)) {
                /* begun: its first frame went out and is no longer queued
                 * for resending, so the old instance received it */
                bool begun_for_old_peer = m->json_cut && !(m->frames > 0 && m->first_in_rtx);

                if (!(m->flags & (SEND_ANSWER | SEND_SELF_ANSWER)) && !begun_for_old_peer) {
                        q->tail = m;
                        link = &m->next;
                        continue;
                }
                *link = m->next;
                m->next = NULL;
                m->json_cut = true;
                m->att_off = m->att_len;
                if (m->frames == 0)
                        msg_free_accounted(s, m);
        }
}

/*
 * The peer restarted.  Answers queued for its old instance must not reach
 * the new one, whose request ids start again; neither must the rest of a
 * bulk message whose beginning the old instance received.  Frames already
 * sequenced keep their numbers (the new peer was told where we start) and
 * go out as empty no-op frames; messages not cut yet are dropped.
 */
void session_void_for_restart(GlSession *s) {
        for (OutFrame *f = s->rtx_head; f; f = f->next)
                f->msg->first_in_rtx = false;
        for (OutFrame *f = s->rtx_head; f; f = f->next) {
                OutMsg *m = f->msg;
                bool continuation = f->h.flags & GL_FRAME_F_CONTINUATION;

                if (!continuation)
                        m->first_in_rtx = true;
                if (((m->flags & (SEND_ANSWER | SEND_SELF_ANSWER)) || (continuation && !m->first_in_rtx)) &&
                    !f->voided) {
                        f->voided = true;
                        s->stats.voided_frames++;
                }
        }
        drop_for_restart(s, &s->ctl);
        drop_for_restart(s, &s->bulk);
}

/* Pongs and error notices belong to an established connection; queued in
 * front of a hello they would hold it back. */
static void imm_drop_notices(GlSession *s) {
        OutFrame **link = &s->imm_head, *f;

        s->imm_tail = NULL;
        while ((f = *link)) {
                if (f->kind == OUT_HELLO) {
                        s->imm_tail = f;
                        link = &f->next;
                        continue;
                }
                *link = f->next;
                out_frame_free(s, f);
                s->n_imm--;
        }
}

void session_set_state(GlSession *s, GlSessionState state) {
        if (state != s->state)
                s->hello_deadline = 0;
        if (s->state == GL_SESSION_ESTABLISHED && state != GL_SESSION_ESTABLISHED)
                imm_drop_notices(s);
        if (state == GL_SESSION_HANDSHAKE || state == GL_SESSION_DISCONNECTED)
                s->nack_owed = s->nack_sent = false; /* the handshake resends anyway */
        s->state = state;
        gl_decoder_set_hello_only(s->decoder, state != GL_SESSION_ESTABLISHED);
}

void session_stop_writing(GlSession *s) {
        /* A half-written frame is lost with the connection; a sequenced one
         * is still in the retransmit queue and goes out again. */
        if (s->wr && !is_sequenced(s->wr))
                out_frame_free(s, s->wr);
        s->wr = NULL;
        imm_clear(s);
}

void gl_session_connected(GlSession *s) {
        session_stop_writing(s);
        gl_decoder_reset(s->decoder);
        session_set_state(s, GL_SESSION_HANDSHAKE);
        session_new_nonce(s);
        s->echoed_nonce = 0;
        s->stats.connects++;
        (void) session_queue_hello(s, 0);
}

void gl_session_disconnected(GlSession *s) {
        session_stop_writing(s);
        session_set_state(s, GL_SESSION_DISCONNECTED);
        s->tx_cur = NULL;
}

/* ---- input ---- */

void *gl_session_input_space(GlSession *s, size_t want, size_t *ret_len) {
        return gl_decoder_space(s->decoder, want, ret_len);
}

void gl_session_input_commit(GlSession *s, size_t n) {
        gl_decoder_commit(s->decoder, n);
}

long gl_session_feed(GlSession *s, const void *data, size_t len) {
        return gl_decoder_feed(s->decoder, data, len);
}
