/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "decoder.h"
#include "test-util.h"

static unsigned count(GArray *events, GlSessionEventType type) {
        unsigned n = 0;

        for (guint i = 0; i < events->len; i++)
                n += g_array_index(events, GlSessionEvent, i).type == type;
        return n;
}

static GlMessage *nth_message(GArray *events, unsigned nth) {
        for (guint i = 0; i < events->len; i++) {
                GlSessionEvent *e = &g_array_index(events, GlSessionEvent, i);
                if (e->type == GL_SESSION_EVENT_MESSAGE && nth-- == 0)
                        return e->message;
        }
        g_error("no message number %u", nth);
}

typedef struct Pair {
        GlSession *a, *b; /* a: the agent, b: the bridge */
        GArray *ev_a, *ev_b;
} Pair;

static void pair_init(Pair *p, uint32_t a_max, uint32_t b_max) {
        p->a = test_session_new("agent", "agent-1", 1, a_max);
        p->b = test_session_new("bridge", "bridge-1", 1, b_max);
        p->ev_a = test_events_new();
        p->ev_b = test_events_new();
        gl_session_connected(p->a);
        gl_session_connected(p->b);
        test_pump(p->a, p->b, p->ev_a, p->ev_b);
}

static void pair_clear(Pair *p) {
        gl_session_free(p->a);
        gl_session_free(p->b);
        g_array_unref(p->ev_a);
        g_array_unref(p->ev_b);
}

static void test_handshake(void) {
        Pair p;

        pair_init(&p, 1, 1);
        g_assert_cmpint(gl_session_state(p.a), ==, GL_SESSION_ESTABLISHED);
        g_assert_cmpint(gl_session_state(p.b), ==, GL_SESSION_ESTABLISHED);
        g_assert_cmpuint(count(p.ev_a, GL_SESSION_EVENT_ESTABLISHED), ==, 1);
        g_assert_cmpuint(count(p.ev_b, GL_SESSION_EVENT_ESTABLISHED), ==, 1);
        g_assert_cmpuint(gl_session_version(p.a), ==, 1);
        g_assert_cmpstr(gl_session_peer(p.a)->role, ==, "bridge");
        g_assert_cmpstr(gl_session_peer(p.b)->instance, ==, "agent-1");
        g_assert_true(gl_session_peer_has_capability(p.b, "stats"));
        g_assert_false(gl_session_peer_has_capability(p.b, "clipboard"));
        pair_clear(&p);
}

/* An old peer ([1,1]) and a newer one ([1,3]) settle on 1 and talk; the
 * newer one's unknown message type gets a typed "unsupported" error. */
static void test_old_and_new_peer(void) {
        Pair p;
        g_autoptr(GByteArray) wire = g_byte_array_new();
        GlMessage *m;
        uint64_t id;

        pair_init(&p, 1, 3);
        g_assert_cmpuint(gl_session_version(p.a), ==, 1);
        g_assert_cmpuint(gl_session_version(p.b), ==, 1);
        g_assert_cmpint(gl_session_request(p.b, "info", NULL, NULL, 0, 0, 0, 1000, &id), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_a, 0);
        g_assert_nonnull(m);
        g_assert_cmpstr(m->name, ==, "info");
        g_assert_cmpint(gl_session_respond(p.a, m->id, json_object_new_object(), NULL, 0, 0), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_b, 0);
        g_assert_nonnull(m);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpuint(m->id, ==, id);

        /* A message type from the future, with fields nobody knows. */
        test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE, 2, 0,
                          "{\"type\":\"stream-open\",\"id\":77,\"window_bytes\":65536}", NULL, 0);
        test_deliver(p.a, wire, 4096, p.ev_a);
        g_assert_cmpuint(count(p.ev_a, GL_SESSION_EVENT_PROTOCOL_ERROR), ==, 1);
        test_flush(p.a, wire, 65536);
        test_deliver(p.b, wire, 4096, p.ev_b);
        /* id 77 is not one of b's requests: b counts it as unmatched, but
         * it went out as a typed error; check on the wire instead. */
        g_assert_cmpuint(gl_session_stats(p.b)->unmatched_responses, ==, 1);
        pair_clear(&p);
}

static void test_incompatible(void) {
        GlSession *a = test_session_new("agent", "a", 1, 1);
        GlSession *b = test_session_new("bridge", "b", 2, 3);
        g_autoptr(GArray) ev_a = test_events_new();
        g_autoptr(GArray) ev_b = test_events_new();

        gl_session_connected(a);
        gl_session_connected(b);
        test_pump(a, b, ev_a, ev_b);
        g_assert_cmpint(gl_session_state(a), ==, GL_SESSION_INCOMPATIBLE);
        g_assert_cmpint(gl_session_state(b), ==, GL_SESSION_INCOMPATIBLE);
        g_assert_cmpuint(count(ev_a, GL_SESSION_EVENT_INCOMPATIBLE), ==, 1);
        g_assert_cmpuint(count(ev_b, GL_SESSION_EVENT_INCOMPATIBLE), ==, 1);
        g_assert_cmpuint(gl_session_peer(a)->min_version, ==, 2);
        /* Nothing but hellos was exchanged. */
        g_assert_cmpint(gl_session_send_event(a, "x", NULL, NULL, 0, 0), ==, 0);
        g_assert_false(gl_session_want_output(a));
        gl_session_free(a);
        gl_session_free(b);
}

/* Many requests in flight, answered out of order: each gets exactly one
 * response with its own id. */
static void test_many_requests(void) {
        Pair p;
        uint64_t ids[100];
        GHashTable *seen = g_hash_table_new(g_int64_hash, g_int64_equal);

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_a, 0);
        g_array_set_size(p.ev_b, 0);
        for (int i = 0; i < 100; i++) {
                json_object *params = json_object_new_object();
                json_object_object_add(params, "n", json_object_new_int(i));
                g_assert_cmpint(gl_session_request(p.b, "echo", params, NULL, 0, 0, 0, 10000, &ids[i]), ==, 0);
        }
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(p.ev_a->len, ==, 100);
        for (int i = 99; i >= 0; i--) {
                GlMessage *m = nth_message(p.ev_a, (unsigned) i);
                json_object *r = json_object_new_object();
                json_object_object_add(r, "n", json_object_get(json_object_object_get(m->body, "n")));
                g_assert_cmpint(gl_session_respond(p.a, m->id, r, NULL, 0, 0), ==, 0);
                g_assert_cmpint(gl_session_respond(p.a, m->id, NULL, NULL, 0, 0), ==, -ENOENT);
        }
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(p.ev_b->len, ==, 100);
        for (unsigned i = 0; i < 100; i++) {
                GlMessage *m = nth_message(p.ev_b, i);
                int n = json_object_get_int(json_object_object_get(m->body, "n"));
                g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
                g_assert_cmpuint(m->id, ==, ids[n]);
                g_assert_true(g_hash_table_add(seen, &ids[n]));
        }
        g_assert_cmpuint(gl_session_next_deadline(p.b), ==, UINT64_MAX);
        g_hash_table_unref(seen);
        pair_clear(&p);
}

static void test_timeout_and_late_response(void) {
        Pair p;
        uint64_t id;
        GlMessage *m, *req;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(gl_session_request(p.b, "slow", NULL, NULL, 0, 0, 1000, 250, &id), ==, 0);
        g_assert_cmpuint(gl_session_next_deadline(p.b), ==, 1250);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        req = nth_message(p.ev_a, 0);
        gl_session_expire(p.b, 1249);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(p.ev_b->len, ==, 0);
        gl_session_expire(p.b, 1250);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(p.ev_b->len, ==, 1);
        m = nth_message(p.ev_b, 0);
        g_assert_cmpint(m->type, ==, GL_MSG_ERROR);
        g_assert_cmpint(m->code, ==, GL_ERROR_TIMEOUT);
        g_assert_true(m->local);
        g_assert_cmpuint(m->id, ==, id);
        /* The late answer is not a second response. */
        g_assert_cmpint(gl_session_respond(p.a, req->id, NULL, NULL, 0, 0), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(p.ev_b->len, ==, 1);
        g_assert_cmpuint(gl_session_stats(p.b)->unmatched_responses, ==, 1);
        pair_clear(&p);
}

/* Control before bulk: a control message queued behind 2 MiB of bulk
 * data leaves after at most one bulk chunk; no bulk frame exceeds 32 KiB;
 * the bulk attachment arrives intact. */
static void test_priorities_and_chunks(void) {
        Pair p;
        const size_t big = 2 * 1024 * 1024;
        uint8_t *att = g_malloc(big);
        g_autoptr(GByteArray) wire = g_byte_array_new();
        unsigned bulk_before_control = 0, frames = 0;
        bool control_seen = false;
        GlMessage *m;

        for (size_t i = 0; i < big; i++)
                att[i] = (uint8_t) (i * 31 + (i >> 12));
        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(gl_session_send_event(p.a, "logs.batch", NULL, att, big, GL_SEND_BULK), ==, 0);
        /* the transport takes one bulk frame, then the power event arrives */
        for (int i = 0; i < 3; i++) {
                GlIovec iov[GL_SESSION_IOV_MAX];
                size_t n = gl_session_output(p.a, iov), len = 0;

                for (size_t k = 0; k < n; k++) {
                        g_byte_array_append(wire, iov[k].base, (guint) iov[k].len);
                        len += iov[k].len;
                }
                gl_session_output_advance(p.a, len);
                if (i == 0)
                        g_assert_cmpint(gl_session_send_event(p.a, "power.progress", NULL, NULL, 0, 0), ==, 0);
        }
        /* inspect the frames on the wire, in order */
        for (guint off = 0; off < wire->len;) {
                GlFrameHeader h;
                g_assert_true(gl_frame_header_unpack(wire->data + off, &h));
                if (h.flags & GL_FRAME_F_BULK) {
                        g_assert_cmpuint(GL_FRAME_HEADER_SIZE + h.json_len + h.attach_len, <=, GL_BULK_CHUNK_BYTES);
                        if (!control_seen)
                                bulk_before_control++;
                } else if (h.json_len > 0)
                        control_seen = true;
                off += GL_FRAME_HEADER_SIZE + h.json_len + h.attach_len;
                frames++;
        }
        g_assert_true(control_seen);
        g_assert_cmpuint(bulk_before_control, <=, 1);
        test_deliver(p.b, wire, 4096, p.ev_b);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(p.ev_b->len, ==, 2);
        m = nth_message(p.ev_b, 0);
        g_assert_cmpstr(m->name, ==, "power.progress");
        g_assert_false(m->bulk);
        m = nth_message(p.ev_b, 1);
        g_assert_cmpstr(m->name, ==, "logs.batch");
        g_assert_true(m->bulk);
        g_assert_cmpuint(m->attachment_len, ==, big);
        for (size_t i = 0; i < big; i++)
                if (m->attachment[i] != (uint8_t) (i * 31 + (i >> 12)))
                        g_error("attachment byte %zu differs", i);
        pair_clear(&p);
}

static void test_queue_bounds(void) {
        GlSessionConfig c = {
                .instance = "small",
                .max_bulk_queue_bytes = 100000,
                .max_control_queue_bytes = 2000,
                .max_requests_in_flight = 4,
        };
        GlSession *s = gl_session_new(&c);
        int r;

        g_assert_cmpint(gl_session_send_event(s, "a", NULL, g_malloc0(60000), 60000, GL_SEND_BULK), ==, 0);
        g_assert_false(gl_session_can_send(s, GL_SEND_BULK, 60000));
        g_assert_cmpint(gl_session_send_event(s, "a", NULL, g_malloc0(60000), 60000, GL_SEND_BULK), ==, -ENOBUFS);
        /* control has its own budget */
        g_assert_cmpint(gl_session_send_event(s, "c", NULL, NULL, 0, 0), ==, 0);
        g_assert_cmpint(gl_session_send_event(s, "c", NULL, g_malloc0(1900), 1900, 0), ==, -ENOBUFS);
        /* more than the whole budget can never be sent: not "try later" */
        g_assert_cmpint(gl_session_send_event(s, "c", NULL, g_malloc0(3000), 3000, 0), ==, -EMSGSIZE);
        /* a control message can never exceed one frame */
        g_assert_cmpint(gl_session_send_event(s, "c", NULL, g_malloc0(200000), 200000, 0), ==, -EMSGSIZE);
        /* bulk and unreliable do not mix */
        g_assert_cmpint(gl_session_send_event(s, "c", NULL, NULL, 0, GL_SEND_BULK | GL_SEND_UNRELIABLE), ==, -EINVAL);
        for (int i = 0; i < 4; i++)
                g_assert_cmpint(gl_session_request(s, "m", NULL, NULL, 0, 0, 0, 10, NULL), ==, 0);
        r = gl_session_request(s, "m", NULL, NULL, 0, 0, 0, 10, NULL);
        g_assert_cmpint(r, ==, -EBUSY);
        g_assert_cmpint(gl_session_request(s, "", NULL, NULL, 0, 0, 0, 10, NULL), ==, -EINVAL);
        gl_session_free(s);
}

/* A hostile peer: requests beyond the in-flight limit are answered
 * "busy", a reused id is refused, garbage is skipped, a bad hello is
 * ignored; the session keeps working. */
static void test_hostile_peer(void) {
        Pair p;
        g_autoptr(GByteArray) wire = g_byte_array_new();
        unsigned n_requests = 0;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_a, 0);
        for (uint64_t i = 1; i <= 300; i++) {
                g_autofree char *j = g_strdup_printf(
                        "{\"type\":\"request\",\"id\":%" G_GUINT64_FORMAT ",\"method\":\"info\"}", i == 300 ? 1 : i);
                test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE, i, 0, j, NULL, 0);
        }
        g_byte_array_append(wire, (const guint8 *) "\x00\x01garbage", 9);
        test_append_frame(wire, GL_FRAME_HELLO, 0, 0, 0, "{\"type\":\"hello\",\"nonce\":\"x\"}", NULL, 0);
        test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE, 301, 0,
                          "{\"type\":\"event\",\"event\":\"still-here\"}", NULL, 0);
        test_deliver(p.a, wire, 4096, p.ev_a);
        for (guint i = 0; i < p.ev_a->len; i++) {
                GlSessionEvent *e = &g_array_index(p.ev_a, GlSessionEvent, i);
                if (e->type == GL_SESSION_EVENT_MESSAGE && e->message->type == GL_MSG_REQUEST)
                        n_requests++;
        }
        g_assert_cmpuint(n_requests, ==, 256);
        g_assert_cmpuint(count(p.ev_a, GL_SESSION_EVENT_PROTOCOL_ERROR), ==,
                         43 + 1 + 1); /* busy, reused id, bad hello */
        g_assert_cmpstr(nth_message(p.ev_a, 256)->name, ==, "still-here");
        g_assert_cmpuint(gl_session_stats(p.a)->garbage_bytes, ==, 9);
        g_assert_cmpint(gl_session_state(p.a), ==, GL_SESSION_ESTABLISHED);
        pair_clear(&p);
}

static void test_ping(void) {
        Pair p;
        uint64_t id;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(gl_session_ping(p.b, &id), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(p.ev_b->len, ==, 1);
        g_assert_cmpint(nth_message(p.ev_b, 0)->type, ==, GL_MSG_PONG);
        g_assert_cmpuint(nth_message(p.ev_b, 0)->id, ==, id);
        pair_clear(&p);
}

/* The agent restarts: requests it had acknowledged are aborted locally,
 * the others reach the new instance; sequence numbers start afresh. */
static void test_peer_restart(void) {
        Pair p;
        uint64_t first, second;
        GlSession *a2;
        GlMessage *m;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_a, 0);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(gl_session_request(p.b, "one", NULL, NULL, 0, 0, 0, 10000, &first), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b); /* delivered and acknowledged */
        g_assert_cmpint(gl_session_request(p.b, "two", NULL, NULL, 0, 0, 0, 10000, &second), ==, 0);
        gl_session_disconnected(p.b);
        /* the agent process dies; a new one starts on the same port */
        a2 = test_session_new("agent", "agent-2", 1, 1);
        gl_session_connected(a2);
        gl_session_connected(p.b);
        g_array_set_size(p.ev_a, 0);
        test_pump(a2, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(count(p.ev_b, GL_SESSION_EVENT_PEER_RESTARTED), ==, 1);
        m = nth_message(p.ev_b, 0);
        g_assert_nonnull(m);
        g_assert_cmpint(m->code, ==, GL_ERROR_ABORTED);
        g_assert_cmpuint(m->id, ==, first);
        m = nth_message(p.ev_a, 0);
        g_assert_nonnull(m);
        g_assert_cmpstr(m->name, ==, "two");
        g_assert_cmpint(gl_session_respond(a2, m->id, NULL, NULL, 0, 0), ==, 0);
        test_pump(a2, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_b, 1);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpuint(m->id, ==, second);
        gl_session_free(a2);
        pair_clear(&p);
}

/* The host reconnects but the guest's transport does not tell it (a tty):
 * the guest learns from the new hello and resends what was not acked. */
static void test_unnoticed_reconnect(void) {
        Pair p;
        g_autoptr(GByteArray) lost = g_byte_array_new();
        GlMessage *m;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(gl_session_send_event(p.a, "e1", NULL, NULL, 0, 0), ==, 0);
        test_flush(p.a, lost, 65536); /* written, then discarded by QEMU */
        gl_session_disconnected(p.b);
        gl_session_connected(p.b);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpint(gl_session_state(p.a), ==, GL_SESSION_ESTABLISHED);
        g_assert_cmpint(gl_session_state(p.b), ==, GL_SESSION_ESTABLISHED);
        m = nth_message(p.ev_b, 0);
        g_assert_nonnull(m);
        g_assert_cmpstr(m->name, ==, "e1");
        g_assert_cmpuint(gl_session_stats(p.a)->retransmits, >=, 1);
        pair_clear(&p);
}

/* Garbage hellos during the handshake are reported and do not hold up
 * the real one. */
static void test_bad_hello_first(void) {
        GlSession *a = test_session_new("agent", "a", 1, 1);
        GlSession *b = test_session_new("bridge", "b", 1, 1);
        g_autoptr(GArray) ev_a = test_events_new();
        g_autoptr(GArray) ev_b = test_events_new();
        g_autoptr(GByteArray) wire = g_byte_array_new();

        gl_session_connected(a);
        gl_session_connected(b);
        test_append_frame(wire, GL_FRAME_HELLO, 0, 0, 0, "{\"type\":\"hello\",", NULL, 0);
        test_append_frame(wire, GL_FRAME_HELLO, 0, 0, 0, "{\"type\":\"hello\",\"instance\":\"\"}", NULL, 0);
        test_deliver(a, wire, 4096, ev_a);
        g_assert_cmpuint(count(ev_a, GL_SESSION_EVENT_PROTOCOL_ERROR), ==, 2);
        test_pump(a, b, ev_a, ev_b);
        g_assert_cmpint(gl_session_state(a), ==, GL_SESSION_ESTABLISHED);
        g_assert_cmpint(gl_session_state(b), ==, GL_SESSION_ESTABLISHED);
        gl_session_free(a);
        gl_session_free(b);
}

/* A reassembled bulk message over max_message_attachment_bytes: the
 * sender, told the limit in the hello, refuses to send it; a peer that
 * sends it anyway gets it reported and dropped, and the stream goes on. */
static void test_message_attachment_limit(void) {
        GlSessionConfig cfg = { .role = "bridge", .instance = "b" };
        GlSession *a = test_session_new("agent", "a", 1, 1), *b;
        g_autoptr(GArray) ev_a = test_events_new();
        g_autoptr(GArray) ev_b = test_events_new();
        g_autoptr(GByteArray) wire = g_byte_array_new();
        g_autofree uint8_t *chunk = g_malloc0(30000);
        const uint16_t bulk = GL_FRAME_F_RELIABLE | GL_FRAME_F_BULK;
        unsigned errors = 0;

        cfg.limits = GL_LIMITS_DEFAULT;
        cfg.limits.max_message_attachment_bytes = 100000;
        b = gl_session_new(&cfg);
        gl_session_connected(a);
        gl_session_connected(b);
        test_pump(a, b, ev_a, ev_b);
        g_array_set_size(ev_b, 0);
        g_assert_cmpuint(gl_session_peer_limits(a)->max_message_attachment_bytes, ==, 100000);
        g_assert_cmpint(gl_session_send_event(a, "big", NULL, g_malloc0(200000), 200000, GL_SEND_BULK), ==, -EMSGSIZE);

        /* 4 x 30000 bytes from a peer that ignores the limit */
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk | GL_FRAME_F_MORE, 1, 0,
                          "{\"type\":\"event\",\"event\":\"big\"}", chunk, 30000);
        for (uint64_t seq = 2; seq <= 4; seq++)
                test_append_frame(wire, GL_FRAME_MESSAGE,
                                  bulk | GL_FRAME_F_CONTINUATION | (seq < 4 ? GL_FRAME_F_MORE : 0), seq, 0, NULL, chunk,
                                  30000);
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk, 5, 0, "{\"type\":\"event\",\"event\":\"after\"}", chunk, 100);
        test_deliver(b, wire, 4096, ev_b);
        for (guint i = 0; i < ev_b->len; i++) {
                GlSessionEvent *e = &g_array_index(ev_b, GlSessionEvent, i);
                if (e->type == GL_SESSION_EVENT_PROTOCOL_ERROR) {
                        g_assert_cmpint(e->error, ==, GL_FRAME_ERR_ATTACHMENT_TOO_LARGE);
                        errors++;
                }
        }
        g_assert_cmpuint(errors, ==, 1);
        g_assert_cmpstr(nth_message(ev_b, 0)->name, ==, "after");
        g_assert_cmpuint(nth_message(ev_b, 0)->attachment_len, ==, 100);
        g_assert_cmpint(gl_session_state(b), ==, GL_SESSION_ESTABLISHED);
        gl_session_free(a);
        gl_session_free(b);
}

/* A corrupted frame while the receiver has traffic of its own: the NACK
 * must still go out, and the sender resends without any new traffic. */
static void test_nack_while_busy(void) {
        Pair p;
        g_autoptr(GByteArray) ab = g_byte_array_new();
        g_autoptr(GByteArray) lost = g_byte_array_new();

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(gl_session_send_event(p.a, "e1", NULL, NULL, 0, 0), ==, 0);
        test_flush(p.a, lost, 65536);
        lost->data[GL_FRAME_HEADER_SIZE + 5] ^= 1; /* payload checksum fails */
        g_assert_cmpint(gl_session_send_event(p.a, "e2", NULL, NULL, 0, 0), ==, 0);
        g_assert_cmpint(gl_session_send_event(p.a, "e3", NULL, NULL, 0, 0), ==, 0);
        test_flush(p.a, ab, 65536);
        g_byte_array_prepend(ab, lost->data, lost->len);
        for (int i = 0; i < 3; i++)
                g_assert_cmpint(gl_session_send_event(p.b, "b-ctl", NULL, NULL, 0, 0), ==, 0);
        test_deliver(p.b, ab, 4096, p.ev_b);
        g_assert_cmpuint(p.ev_b->len, ==, 1); /* the payload checksum error */
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpstr(nth_message(p.ev_b, 0)->name, ==, "e1");
        g_assert_cmpstr(nth_message(p.ev_b, 1)->name, ==, "e2");
        g_assert_cmpstr(nth_message(p.ev_b, 2)->name, ==, "e3");
        g_assert_cmpuint(gl_session_stats(p.a)->retransmits, >=, 2);
        pair_clear(&p);
}

/* The host reconnects while the guest, on a transport that does not tell
 * it (a tty), holds half of a 30 KB host frame and waits for the rest.
 * The host's padded hello retries must flush it: both sides established
 * again within a few simulated seconds. */
static void test_blind_guest_cut_frame(void) {
        Pair p;
        g_autoptr(GByteArray) hg = g_byte_array_new();
        uint64_t now = 0;
        GlMessage *m;

        pair_init(&p, 1, 1);
        g_assert_cmpint(gl_session_send_event(p.b, "clip", NULL, g_malloc0(30000), 30000, GL_SEND_BULK), ==, 0);
        test_flush(p.b, hg, 65536);
        g_byte_array_set_size(hg, 1000); /* the rest dies with the connection */
        test_deliver(p.a, hg, 4096, p.ev_a);
        gl_session_disconnected(p.b);
        gl_session_connected(p.b);
        g_array_set_size(p.ev_a, 0);
        for (; now < 10000; now += 250) {
                gl_session_expire(p.a, now);
                gl_session_expire(p.b, now);
                test_pump(p.a, p.b, p.ev_a, p.ev_b);
                if (gl_session_state(p.a) == GL_SESSION_ESTABLISHED && gl_session_state(p.b) == GL_SESSION_ESTABLISHED)
                        break;
        }
        g_test_message("re-established after %" G_GUINT64_FORMAT " ms, %" G_GUINT64_FORMAT " hello retries", now,
                       gl_session_stats(p.b)->hello_retries);
        g_assert_cmpint(gl_session_state(p.b), ==, GL_SESSION_ESTABLISHED);
        g_assert_cmpint(gl_session_state(p.a), ==, GL_SESSION_ESTABLISHED);
        g_assert_cmpuint(gl_session_stats(p.b)->hello_retries, >=, 1);
        g_assert_cmpuint(now, <=, 5000);
        /* and the bulk message arrives whole, resent */
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_a, 0);
        g_assert_cmpstr(m->name, ==, "clip");
        g_assert_cmpuint(m->attachment_len, ==, 30000);
        pair_clear(&p);
}

/* A bridge restarts while the agent's answer to the old bridge is still
 * unacknowledged: that answer must not reach the new bridge, whose first
 * request has the same id. */
static void test_restart_voids_old_answers(void) {
        Pair p;
        g_autoptr(GByteArray) lost = g_byte_array_new();
        GlSession *b2 = test_session_new("bridge", "bridge-2", 1, 1);
        g_autoptr(GArray) ev_b2 = test_events_new();
        json_object *r = json_object_new_object();
        uint64_t id1, id2;
        GlMessage *m;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_a, 0);
        g_assert_cmpint(gl_session_request(p.b, "info", NULL, NULL, 0, 0, 0, 100000, &id1), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_a, 0);
        json_object_object_add(r, "for", json_object_new_string("the old bridge"));
        g_assert_cmpint(gl_session_respond(p.a, m->id, r, NULL, 0, 0), ==, 0);
        test_flush(p.a, lost, 65536); /* the old bridge dies before reading it */
        gl_session_disconnected(p.a);
        gl_session_connected(p.a);
        gl_session_connected(b2);
        g_assert_cmpint(gl_session_request(b2, "power.request", NULL, NULL, 0, 0, 0, 100000, &id2), ==, 0);
        g_assert_cmpuint(id1, ==, id2);
        g_array_set_size(p.ev_a, 0);
        test_pump(p.a, b2, p.ev_a, ev_b2);
        g_assert_cmpuint(gl_session_stats(p.a)->voided_frames, ==, 1);
        /* the new bridge's request reached the agent; no answer yet */
        m = nth_message(p.ev_a, 0);
        g_assert_cmpstr(m->name, ==, "power.request");
        for (guint i = 0; i < ev_b2->len; i++)
                g_assert_false(g_array_index(ev_b2, GlSessionEvent, i).type == GL_SESSION_EVENT_MESSAGE);
        g_assert_cmpint(gl_session_respond(p.a, m->id, NULL, NULL, 0, 0), ==, 0);
        test_pump(p.a, b2, p.ev_a, ev_b2);
        m = nth_message(ev_b2, 0);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_null(m->body);
        gl_session_free(b2);
        pair_clear(&p);
}

/* A hello of the known peer instance that claims to have dropped frames we
 * never acknowledged is forged: ignored, sequence state untouched. */
static void test_forged_hello_rejected(void) {
        Pair p;
        g_autoptr(GByteArray) wire = g_byte_array_new();
        const char *forged = "{\"type\":\"hello\",\"instance\":\"bridge-1\",\"min_version\":1,"
                             "\"max_version\":1,\"nonce\":12345,\"tx_first\":1000000}";

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_a, 0);
        test_append_frame(wire, GL_FRAME_HELLO, 0, 0, 0, forged, NULL, 0);
        test_deliver(p.a, wire, 4096, p.ev_a);
        g_assert_cmpuint(count(p.ev_a, GL_SESSION_EVENT_PROTOCOL_ERROR), ==, 1);
        g_assert_cmpint(g_array_index(p.ev_a, GlSessionEvent, 0).error, ==, GL_SESSION_ERR_BAD_HELLO);
        g_assert_cmpint(gl_session_send_event(p.b, "real", NULL, NULL, 0, 0), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpstr(nth_message(p.ev_a, 0)->name, ==, "real");
        pair_clear(&p);
}

/* A stale hello of the agent that answered the previous bridge instance
 * must not establish the new one: nonces differ between instances. */
static void test_stale_hello_other_instance(void) {
        GlSession *a = test_session_new("agent", "A", 1, 1), *b1 = test_session_new("bridge", "B1", 1, 1);
        GlSession *b2 = test_session_new("bridge", "B2", 1, 1);
        g_autoptr(GArray) ev = test_events_new();
        g_autoptr(GByteArray) ab = g_byte_array_new();
        g_autoptr(GByteArray) ba = g_byte_array_new();

        gl_session_connected(a);
        gl_session_connected(b1);
        test_flush(b1, ba, 65536);
        test_deliver(a, ba, 4096, ev);
        test_flush(a, ab, 65536); /* hello echoing B1's nonce, never read by B1 */
        gl_session_connected(b2);
        test_deliver(b2, ab, 4096, ev);
        g_assert_cmpint(gl_session_state(b2), ==, GL_SESSION_HANDSHAKE);
        g_assert_cmpuint(count(ev, GL_SESSION_EVENT_ESTABLISHED), ==, 0);
        gl_session_free(a);
        gl_session_free(b1);
        gl_session_free(b2);
}

/* What the peer would refuse is refused at send time; a bulk answer that
 * does not fit the queue leaves its request open. */
static void test_send_side_limits(void) {
        Pair p;
        json_object *big = json_object_new_object();
        g_autofree char *s = g_strnfill(GL_DEFAULT_MAX_STRING_BYTES + 1, 'x');
        GlMessage *m;

        pair_init(&p, 1, 1);
        json_object_object_add(big, "s", json_object_new_string(s));
        g_assert_cmpint(gl_session_send_event(p.a, "e", big, NULL, 0, 0), ==, -EMSGSIZE);
        g_assert_cmpint(gl_session_request(p.b, "clipboard.get", NULL, NULL, 0, 0, 0, 1000, NULL), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_a, 0);
        g_assert_cmpint(gl_session_send_event(p.a, "fill", NULL, g_malloc0(8000000), 8000000, GL_SEND_BULK), ==, 0);
        g_assert_cmpint(gl_session_respond(p.a, m->id, NULL, g_malloc0(1000000), 1000000, GL_SEND_BULK), ==, -ENOBUFS);
        g_assert_cmpint(gl_session_respond_error(p.a, m->id, GL_ERROR_BUSY, "later"), ==, 0);
        g_assert_cmpint(gl_session_respond_error(p.a, m->id, GL_ERROR_BUSY, "later"), ==, -ENOENT);
        pair_clear(&p);
}

/* Control messages between the skipped chunks of a refused bulk message
 * are delivered without false alarms. */
static void test_control_during_dropped_bulk(void) {
        GlSessionConfig cfg = { .role = "bridge", .instance = "b" };
        GlSession *a = test_session_new("agent", "a", 1, 1), *b;
        g_autoptr(GArray) ev_a = test_events_new();
        g_autoptr(GArray) ev_b = test_events_new();
        g_autoptr(GByteArray) wire = g_byte_array_new();
        g_autofree uint8_t *chunk = g_malloc0(30000);
        const uint16_t bulk = GL_FRAME_F_RELIABLE | GL_FRAME_F_BULK;

        cfg.limits = GL_LIMITS_DEFAULT;
        cfg.limits.max_message_attachment_bytes = 40000;
        b = gl_session_new(&cfg);
        gl_session_connected(a);
        gl_session_connected(b);
        test_pump(a, b, ev_a, ev_b);
        g_array_set_size(ev_b, 0);
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk | GL_FRAME_F_MORE, 1, 0,
                          "{\"type\":\"event\",\"event\":\"big\"}", chunk, 30000);
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk | GL_FRAME_F_CONTINUATION | GL_FRAME_F_MORE, 2, 0, NULL, chunk,
                          30000);
        test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE, 3, 0,
                          "{\"type\":\"event\",\"event\":\"control\"}", NULL, 0);
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk | GL_FRAME_F_CONTINUATION, 4, 0, NULL, chunk, 30000);
        test_deliver(b, wire, 4096, ev_b);
        g_assert_cmpuint(count(ev_b, GL_SESSION_EVENT_PROTOCOL_ERROR), ==, 1);
        g_assert_cmpstr(nth_message(ev_b, 0)->name, ==, "control");
        gl_session_free(a);
        gl_session_free(b);
}

/* A pong queued when the peer turns out incompatible must not hold back
 * our hello. */
static void test_incompatible_drops_notices(void) {
        Pair p;
        g_autoptr(GByteArray) wire = g_byte_array_new();
        GlIovec iov[GL_SESSION_IOV_MAX];
        GlFrameHeader h;

        pair_init(&p, 1, 1);
        test_append_frame(wire, GL_FRAME_MESSAGE, 0, 0, 0, "{\"type\":\"ping\",\"id\":4}", NULL, 0);
        test_append_frame(wire, GL_FRAME_HELLO, 0, 0, 0,
                          "{\"type\":\"hello\",\"instance\":\"bridge-9\",\"min_version\":7,\"max_version\":9,"
                          "\"nonce\":77,\"tx_first\":1}",
                          NULL, 0);
        test_deliver(p.a, wire, 4096, p.ev_a);
        g_assert_cmpint(gl_session_state(p.a), ==, GL_SESSION_INCOMPATIBLE);
        g_assert_cmpuint(gl_session_output(p.a, iov), >, 0);
        g_assert_true(gl_frame_header_unpack(iov[0].base, &h));
        g_assert_cmpuint(h.kind, ==, GL_FRAME_HELLO);
        pair_clear(&p);
}

/* A bulk request whose first chunk the old peer acknowledged, but not the
 * rest, is aborted when the peer restarts, not left to time out. */
static void test_restart_aborts_half_sent_bulk_request(void) {
        Pair p;
        g_autoptr(GByteArray) ab = g_byte_array_new();
        g_autoptr(GByteArray) ba = g_byte_array_new();
        GlSession *a2 = test_session_new("agent", "agent-2", 1, 1);
        uint64_t id;
        GlMessage *m;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(
                gl_session_request(p.b, "clipboard.set", NULL, g_malloc0(100000), 100000, GL_SEND_BULK, 0, 100000, &id),
                ==, 0);
        /* one chunk reaches the agent and is acknowledged; the rest is lost */
        {
                GlIovec iov[GL_SESSION_IOV_MAX];
                size_t n = gl_session_output(p.b, iov), len = 0;
                for (size_t k = 0; k < n; k++) {
                        g_byte_array_append(ba, iov[k].base, (guint) iov[k].len);
                        len += iov[k].len;
                }
                gl_session_output_advance(p.b, len);
        }
        test_deliver(p.a, ba, 4096, p.ev_a);
        test_flush(p.a, ab, 65536);
        test_deliver(p.b, ab, 4096, p.ev_b);
        test_flush(p.b, ba, 1 << 20);
        g_byte_array_set_size(ba, 0);
        gl_session_disconnected(p.b);
        gl_session_connected(p.b);
        gl_session_connected(a2);
        test_pump(a2, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_b, 0);
        g_assert_cmpint(m->type, ==, GL_MSG_ERROR);
        g_assert_cmpint(m->code, ==, GL_ERROR_ABORTED);
        g_assert_cmpuint(m->id, ==, id);
        gl_session_free(a2);
        pair_clear(&p);
}

/* An error whose text breaks the peer's limits still answers, with the
 * code alone. */
static void test_long_error_text(void) {
        Pair p;
        g_autofree char *text = g_strnfill(GL_DEFAULT_MAX_STRING_BYTES + 10, 'e');
        GlMessage *m;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(gl_session_request(p.b, "info", NULL, NULL, 0, 0, 0, 1000, NULL), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_a, 0);
        g_assert_cmpint(gl_session_respond_error(p.a, m->id, GL_ERROR_INTERNAL, text), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        m = nth_message(p.ev_b, 0);
        g_assert_cmpint(m->type, ==, GL_MSG_ERROR);
        g_assert_cmpint(m->code, ==, GL_ERROR_INTERNAL);
        g_assert_null(m->error_message);
        pair_clear(&p);
}

/* Bulk chunks stay within the attachment size the peer announced. */
static void test_chunks_follow_peer_limits(void) {
        GlSessionConfig cfg = { .role = "bridge", .instance = "b" };
        GlSession *a = test_session_new("agent", "a", 1, 1), *b;
        g_autoptr(GArray) ev_a = test_events_new();
        g_autoptr(GArray) ev_b = test_events_new();
        g_autoptr(GByteArray) wire = g_byte_array_new();
        unsigned frames = 0;

        cfg.limits = GL_LIMITS_DEFAULT;
        cfg.limits.max_frame_attachment_bytes = 16384;
        b = gl_session_new(&cfg);
        gl_session_connected(a);
        gl_session_connected(b);
        test_pump(a, b, ev_a, ev_b);
        g_array_set_size(ev_b, 0);
        g_assert_cmpint(gl_session_send_event(a, "big", NULL, g_malloc0(100000), 100000, GL_SEND_BULK), ==, 0);
        test_flush(a, wire, 1 << 20);
        for (guint off = 0; off < wire->len;) {
                GlFrameHeader h;
                g_assert_true(gl_frame_header_unpack(wire->data + off, &h));
                if (h.flags & GL_FRAME_F_BULK) {
                        g_assert_cmpuint(h.attach_len, <=, 16384);
                        frames++;
                }
                off += GL_FRAME_HEADER_SIZE + h.json_len + h.attach_len;
        }
        g_assert_cmpuint(frames, ==, 7); /* ceil(100000 / 16384) */
        test_deliver(b, wire, 4096, ev_b);
        g_assert_cmpuint(count(ev_b, GL_SESSION_EVENT_PROTOCOL_ERROR), ==, 0);
        g_assert_cmpuint(nth_message(ev_b, 0)->attachment_len, ==, 100000);
        gl_session_free(a);
        gl_session_free(b);
}

/* A NACK owed when the connection drops is not sent after the next
 * handshake (which resends everything anyway): no double resend. */
static void test_no_stale_nack(void) {
        Pair p;
        g_autoptr(GByteArray) ab = g_byte_array_new();

        pair_init(&p, 1, 1);
        for (int i = 0; i < 20; i++)
                g_assert_cmpint(gl_session_send_event(p.a, "e", NULL, NULL, 0, 0), ==, 0);
        test_flush(p.a, ab, 1 << 20);
        g_byte_array_remove_range(ab, 0, 100); /* the first frames never arrive: a gap */
        test_deliver(p.b, ab, 4096, p.ev_b);
        gl_session_disconnected(p.b);
        gl_session_disconnected(p.a);
        gl_session_connected(p.a);
        gl_session_connected(p.b);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpuint(gl_session_stats(p.a)->retransmits, ==, 20);
        pair_clear(&p);
}

/* A bulk request cut short by the start of another bulk message still
 * gets its one answer. */
static void test_cut_bulk_request_answered(void) {
        Pair p;
        g_autoptr(GByteArray) wire = g_byte_array_new();
        const uint16_t bulk = GL_FRAME_F_RELIABLE | GL_FRAME_F_BULK;
        GlMessage *m;
        uint8_t att[100] = { 0 };

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_a, 0);
        /* b's requests from the wire: id 5 in two chunks, but the second
         * never comes; a new bulk message starts instead */
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk | GL_FRAME_F_MORE, 1, 0,
                          "{\"type\":\"request\",\"id\":5,\"method\":\"clipboard.set\"}", att, sizeof(att));
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk, 2, 0, "{\"type\":\"event\",\"event\":\"next\"}", att,
                          sizeof(att));
        test_deliver(p.a, wire, 4096, p.ev_a);
        test_flush(p.a, wire, 65536);
        /* what a sent back: an error for id 5 */
        {
                GlDecoder *d = gl_decoder_new(NULL);
                GlFrame f;
                bool answered = false;

                g_assert_cmpint(gl_decoder_feed(d, wire->data, wire->len), ==, wire->len);
                while (gl_decoder_next(d, &f) == 1)
                        if (f.header.json_len && g_strstr_len(f.json, f.header.json_len, "\"id\":5") &&
                            g_strstr_len(f.json, f.header.json_len, "\"invalid\""))
                                answered = true;
                g_assert_true(answered);
                gl_decoder_free(d);
        }
        m = nth_message(p.ev_a, 0);
        g_assert_cmpstr(m->name, ==, "next");
        pair_clear(&p);
}

/* A peer that provokes error answers (unknown message types) and never
 * acknowledges gets no more of them once the control budget is used up:
 * memory stays bounded by the budget. */
static void test_provoked_answers_bounded(void) {
        GlSessionConfig cfg = { .role = "agent", .instance = "a", .max_control_queue_bytes = 64 * 1024 };
        GlSession *a = gl_session_new(&cfg), *b = test_session_new("bridge", "b", 1, 1);
        g_autoptr(GArray) ev_a = test_events_new();
        g_autoptr(GArray) ev_b = test_events_new();
        g_autoptr(GByteArray) wire = g_byte_array_new();

        gl_session_connected(a);
        gl_session_connected(b);
        test_pump(a, b, ev_a, ev_b);
        for (uint64_t i = 1; i <= 5000; i++) {
                g_autofree char *j = g_strdup_printf("{\"type\":\"teleport\",\"id\":%" G_GUINT64_FORMAT "}", i);
                test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE, i, 0, j, NULL, 0);
        }
        test_deliver(a, wire, 65536, NULL); /* a's answers are never read or acknowledged */
        g_assert_cmpuint(gl_session_stats(a)->answers_dropped, >, 4000);
        /* the budget is what bounds them: it is (nearly) used up */
        g_assert_false(gl_session_can_send(a, 0, 1024));
        gl_session_free(a);
        gl_session_free(b);
}

/* Hellos with ever new nonces while we cannot write: one hello waits. */
static void test_one_queued_hello(void) {
        GlSession *a = test_session_new("agent", "a", 1, 1);
        g_autoptr(GArray) ev = test_events_new();
        g_autoptr(GByteArray) wire = g_byte_array_new();
        g_autoptr(GByteArray) out = g_byte_array_new();
        unsigned hellos = 0;

        gl_session_connected(a);
        for (int i = 1; i <= 1000; i++) {
                g_autofree char *j = g_strdup_printf("{\"type\":\"hello\",\"instance\":\"b\",\"min_version\":1,"
                                                     "\"max_version\":1,\"nonce\":%d,\"tx_first\":1}",
                                                     i);
                test_append_frame(wire, GL_FRAME_HELLO, 0, 0, 0, j, NULL, 0);
        }
        test_deliver(a, wire, 65536, ev);
        test_flush(a, out, 1 << 20);
        for (guint off = 0; off < out->len;) {
                GlFrameHeader h;
                g_assert_true(gl_frame_header_unpack(out->data + off, &h));
                hellos += h.kind == GL_FRAME_HELLO;
                off += GL_FRAME_HEADER_SIZE + h.json_len + h.attach_len;
        }
        g_assert_cmpuint(hellos, ==, 1);
        gl_session_free(a);
}

/* A broken continuation in the middle of a bulk message ends it: never
 * delivered with a piece missing; a request gets its answer. */
static void test_bad_continuation(void) {
        Pair p;
        g_autoptr(GByteArray) wire = g_byte_array_new();
        const uint16_t bulk = GL_FRAME_F_RELIABLE | GL_FRAME_F_BULK;
        uint8_t att[100] = { 0 };

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_a, 0);
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk | GL_FRAME_F_MORE, 1, 0,
                          "{\"type\":\"event\",\"event\":\"clip\"}", att, sizeof(att));
        /* no BULK flag on the continuation */
        test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE | GL_FRAME_F_CONTINUATION | GL_FRAME_F_MORE, 2, 0,
                          NULL, att, sizeof(att));
        test_append_frame(wire, GL_FRAME_MESSAGE, bulk | GL_FRAME_F_CONTINUATION, 3, 0, NULL, att, sizeof(att));
        test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE, 4, 0, "{\"type\":\"event\",\"event\":\"next\"}",
                          NULL, 0);
        test_deliver(p.a, wire, 4096, p.ev_a);
        g_assert_cmpstr(nth_message(p.ev_a, 0)->name, ==, "next");
        for (guint i = 0; i < p.ev_a->len; i++) {
                GlSessionEvent *e = &g_array_index(p.ev_a, GlSessionEvent, i);
                g_assert_false(e->type == GL_SESSION_EVENT_MESSAGE && g_str_equal(e->message->name, "clip"));
        }
        pair_clear(&p);
}

/* Many local timeouts at once: every request gets its one answer. */
static void test_many_timeouts(void) {
        GlSessionConfig cfg = { .role = "bridge", .instance = "b", .max_requests_in_flight = 3000 };
        GlSession *b = gl_session_new(&cfg);
        GlSessionEvent ev;
        unsigned timeouts = 0;

        for (int i = 0; i < 3000; i++)
                g_assert_cmpint(gl_session_request(b, "info", NULL, NULL, 0, 0, 0, 10, NULL), ==, 0);
        gl_session_expire(b, 100);
        while (gl_session_receive(b, &ev) > 0) {
                if (ev.type == GL_SESSION_EVENT_MESSAGE && ev.message->code == GL_ERROR_TIMEOUT)
                        timeouts++;
                gl_message_free(ev.message);
        }
        g_assert_cmpuint(timeouts, ==, 3000);
        gl_session_free(b);
}

/* The session's own answer to the old peer instance (here "unsupported")
 * must not reach the new instance either. */
static void test_restart_voids_self_answers(void) {
        Pair p;
        g_autoptr(GByteArray) wire = g_byte_array_new();
        g_autoptr(GByteArray) lost = g_byte_array_new();
        GlSession *b2 = test_session_new("bridge", "bridge-2", 1, 1);
        g_autoptr(GArray) ev_b2 = test_events_new();
        uint64_t id;

        pair_init(&p, 1, 1);
        test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE, 1, 0, "{\"type\":\"teleport\",\"id\":1}", NULL,
                          0);
        test_deliver(p.a, wire, 4096, p.ev_a);
        test_flush(p.a, lost, 65536); /* the error answer dies with the old bridge */
        gl_session_disconnected(p.a);
        gl_session_connected(p.a);
        gl_session_connected(b2);
        g_assert_cmpint(gl_session_request(b2, "info", NULL, NULL, 0, 0, 0, 100000, &id), ==, 0);
        g_assert_cmpuint(id, ==, 1);
        test_pump(p.a, b2, p.ev_a, ev_b2);
        for (guint i = 0; i < ev_b2->len; i++)
                g_assert_false(g_array_index(ev_b2, GlSessionEvent, i).type == GL_SESSION_EVENT_MESSAGE);
        g_assert_cmpuint(gl_session_stats(p.a)->voided_frames, ==, 1);
        gl_session_free(b2);
        pair_clear(&p);
}

/* A bulk message may have no attachment at all. */
static void test_bulk_without_attachment(void) {
        Pair p;

        pair_init(&p, 1, 1);
        g_array_set_size(p.ev_b, 0);
        g_assert_cmpint(gl_session_send_event(p.a, "empty", NULL, NULL, 0, GL_SEND_BULK), ==, 0);
        test_pump(p.a, p.b, p.ev_a, p.ev_b);
        g_assert_cmpstr(nth_message(p.ev_b, 0)->name, ==, "empty");
        g_assert_true(nth_message(p.ev_b, 0)->bulk);
        g_assert_cmpuint(nth_message(p.ev_b, 0)->attachment_len, ==, 0);
        pair_clear(&p);
}

/* A peer that never acknowledges cannot make us keep more answers than
 * max_requests_in_flight: a request counts until its answer is acked. */
static void test_unacked_answers_bounded(void) {
        GlSessionConfig cfg = { .role = "agent", .instance = "a", .max_requests_in_flight = 16 };
        GlSession *a = gl_session_new(&cfg), *b = test_session_new("bridge", "b", 1, 1);
        g_autoptr(GArray) ev_a = test_events_new();
        g_autoptr(GArray) ev_b = test_events_new();
        g_autoptr(GByteArray) wire = g_byte_array_new();
        unsigned delivered = 0;

        gl_session_connected(a);
        gl_session_connected(b);
        test_pump(a, b, ev_a, ev_b);
        g_array_set_size(ev_a, 0);
        for (uint64_t i = 1; i <= 1000; i++) {
                g_autofree char *j = g_strdup_printf(
                        "{\"type\":\"request\",\"id\":%" G_GUINT64_FORMAT ",\"method\":\"ping\"}", i);
                test_append_frame(wire, GL_FRAME_MESSAGE, GL_FRAME_F_RELIABLE, i, 0, j, NULL, 0);
                test_deliver(a, wire, 65536, ev_a);
                /* the application answers every request it gets at once */
                for (guint k = 0; k < ev_a->len; k++) {
                        GlSessionEvent *e = &g_array_index(ev_a, GlSessionEvent, k);
                        if (e->type == GL_SESSION_EVENT_MESSAGE && e->message->type == GL_MSG_REQUEST) {
                                g_assert_cmpint(gl_session_respond(a, e->message->id, NULL, NULL, 0, 0), ==, 0);
                                delivered++;
                        }
                }
                g_array_set_size(ev_a, 0);
        }
        g_assert_cmpuint(delivered, ==, 16);
        gl_session_free(a);
        gl_session_free(b);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/session/handshake", test_handshake);
        g_test_add_func("/session/old-and-new-peer", test_old_and_new_peer);
        g_test_add_func("/session/incompatible", test_incompatible);
        g_test_add_func("/session/many-requests", test_many_requests);
        g_test_add_func("/session/timeout-and-late-response", test_timeout_and_late_response);
        g_test_add_func("/session/priorities-and-chunks", test_priorities_and_chunks);
        g_test_add_func("/session/queue-bounds", test_queue_bounds);
        g_test_add_func("/session/hostile-peer", test_hostile_peer);
        g_test_add_func("/session/ping", test_ping);
        g_test_add_func("/session/peer-restart", test_peer_restart);
        g_test_add_func("/session/unnoticed-reconnect", test_unnoticed_reconnect);
        g_test_add_func("/session/bad-hello-first", test_bad_hello_first);
        g_test_add_func("/session/message-attachment-limit", test_message_attachment_limit);
        g_test_add_func("/session/nack-while-busy", test_nack_while_busy);
        g_test_add_func("/session/blind-guest-cut-frame", test_blind_guest_cut_frame);
        g_test_add_func("/session/restart-voids-old-answers", test_restart_voids_old_answers);
        g_test_add_func("/session/forged-hello-rejected", test_forged_hello_rejected);
        g_test_add_func("/session/stale-hello-other-instance", test_stale_hello_other_instance);
        g_test_add_func("/session/send-side-limits", test_send_side_limits);
        g_test_add_func("/session/control-during-dropped-bulk", test_control_during_dropped_bulk);
        g_test_add_func("/session/incompatible-drops-notices", test_incompatible_drops_notices);
        g_test_add_func("/session/restart-aborts-half-sent-bulk-request", test_restart_aborts_half_sent_bulk_request);
        g_test_add_func("/session/long-error-text", test_long_error_text);
        g_test_add_func("/session/chunks-follow-peer-limits", test_chunks_follow_peer_limits);
        g_test_add_func("/session/no-stale-nack", test_no_stale_nack);
        g_test_add_func("/session/cut-bulk-request-answered", test_cut_bulk_request_answered);
        g_test_add_func("/session/provoked-answers-bounded", test_provoked_answers_bounded);
        g_test_add_func("/session/one-queued-hello", test_one_queued_hello);
        g_test_add_func("/session/bad-continuation", test_bad_continuation);
        g_test_add_func("/session/many-timeouts", test_many_timeouts);
        g_test_add_func("/session/restart-voids-self-answers", test_restart_voids_self_answers);
        g_test_add_func("/session/bulk-without-attachment", test_bulk_without_attachment);
        g_test_add_func("/session/unacked-answers-bounded", test_unacked_answers_bounded);
        return g_test_run();
}
