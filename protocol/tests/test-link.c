/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 100 000 messages through a simulated virtio-serial link that misbehaves
 * the way FACTS.md records QEMU doing across host reconnects:
 *   - guest->host bytes still queued when the host disconnects are
 *     discarded, or replayed to the next host client, or partly lost;
 *   - a frame may be cut anywhere by the disconnect;
 *   - bytes already delivered may arrive again (we also replay some);
 *   - writes move at most 32 KiB, reads return at most 4 KiB;
 *   - the guest may or may not notice the host going away (virtio-serial
 *     tells it; a tty does not).
 * Every message must arrive exactly once and in order (per class: control
 * messages overtake bulk ones by design), both ways; every request gets
 * exactly one response.
 */
#include <string.h>

#include "test-util.h"

/* GL_TEST_LINK_EVENTS lowers the count for slow runs (valgrind). */
#define DEFAULT_EVENTS 100000

typedef struct Link {
        uint64_t n_events;
        GRand *rand;
        GlSession *guest, *host;
        GByteArray *g2h, *h2g; /* in QEMU's queues */
        GByteArray *g2h_seen;  /* recent bytes the host already read, for replays */
        bool connected;
        bool guest_notices;
        uint64_t now;

        uint64_t g_sent, h_expect;                   /* guest -> host events, both classes */
        uint64_t g_sent_class[2], h_expect_class[2]; /* per class: 0 control, 1 bulk */
        uint64_t h_sent, g_expect;                   /* host -> guest events */
        uint64_t requests_sent, responses;
        GHashTable *in_flight; /* request id -> n */
        uint64_t bulk_bytes;
        unsigned disconnects, replays, discards, partial_losses;
} Link;

static uint8_t pattern(uint64_t n, size_t i) {
        return (uint8_t) (n * 131 + i * 7 + (i >> 8));
}

static json_object *counter(uint64_t n) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "n", json_object_new_int64((int64_t) n));
        return o;
}

static uint64_t get_n(GlMessage *m) {
        return (uint64_t) json_object_get_int64(json_object_object_get(m->body, "n"));
}

static void guest_produce(Link *l) {
        unsigned burst = (unsigned) g_rand_int_range(l->rand, 1, 40);

        for (unsigned i = 0; i < burst && l->g_sent < l->n_events; i++) {
                bool bulk = g_rand_int_range(l->rand, 0, 50) == 0;
                size_t len = bulk ? (size_t) g_rand_int_range(l->rand, 0, 100000) : 0;
                uint8_t *att = len ? g_malloc(len) : NULL;
                int r;

                if (!gl_session_can_send(l->guest, bulk ? GL_SEND_BULK : 0, len + 200)) {
                        g_free(att);
                        return; /* back-pressure: try later */
                }
                for (size_t k = 0; k < len; k++)
                        att[k] = pattern(l->g_sent_class[bulk], k);
                r = gl_session_send_event(l->guest, bulk ? "bulk" : "control", counter(l->g_sent_class[bulk]), att, len,
                                          bulk ? GL_SEND_BULK : 0);
                g_assert_cmpint(r, ==, 0);
                l->g_sent_class[bulk]++;
                l->g_sent++;
        }
}

static void host_produce(Link *l) {
        if (l->h_sent < l->n_events / 10 && gl_session_can_send(l->host, 0, 200)) {
                g_assert_cmpint(gl_session_send_event(l->host, "cmd", counter(l->h_sent), NULL, 0, 0), ==, 0);
                l->h_sent++;
        }
        if (l->requests_sent < l->n_events / 10 && g_hash_table_size(l->in_flight) < 64) {
                uint64_t id;
                g_assert_cmpint(gl_session_request(l->host, "echo", counter(l->requests_sent), NULL, 0, 0, l->now,
                                                   UINT32_MAX, &id),
                                ==, 0);
                g_hash_table_insert(l->in_flight, g_memdup2(&id, sizeof(id)), GSIZE_TO_POINTER(l->requests_sent));
                l->requests_sent++;
        }
}

static void on_host_event(Link *l, GlSessionEvent *e) {
        GlMessage *m = e->message;

        if (e->type != GL_SESSION_EVENT_MESSAGE)
                return;
        if (m->type == GL_MSG_EVENT) {
                bool bulk = strcmp(m->name, "bulk") == 0;

                g_assert_true(bulk == m->bulk);
                if (get_n(m) != l->h_expect_class[bulk])
                        g_error("host: got %s event %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT, m->name,
                                get_n(m), l->h_expect_class[bulk]);
                l->h_expect_class[bulk]++;
                for (size_t k = 0; k < m->attachment_len; k++)
                        if (m->attachment[k] != pattern(get_n(m), k))
                                g_error("host: event %" G_GUINT64_FORMAT " attachment byte %zu corrupt", get_n(m), k);
                l->bulk_bytes += m->attachment_len;
                l->h_expect++;
        } else if (m->type == GL_MSG_RESPONSE) {
                gpointer n;
                g_assert_true(g_hash_table_lookup_extended(l->in_flight, &m->id, NULL, &n));
                g_assert_cmpuint(GPOINTER_TO_SIZE(n), ==, get_n(m));
                g_hash_table_remove(l->in_flight, &m->id);
                l->responses++;
        } else
                g_error("host: unexpected message type %d (code %d: %s)", m->type, m->code,
                        m->error_message ? m->error_message : "");
}

static void on_guest_event(Link *l, GlSessionEvent *e) {
        GlMessage *m = e->message;

        if (e->type != GL_SESSION_EVENT_MESSAGE)
                return;
        if (m->type == GL_MSG_EVENT) {
                g_assert_cmpstr(m->name, ==, "cmd");
                if (get_n(m) != l->g_expect)
                        g_error("guest: got cmd %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT, get_n(m),
                                l->g_expect);
                l->g_expect++;
        } else if (m->type == GL_MSG_REQUEST) {
                g_assert_cmpint(gl_session_respond(l->guest, m->id, counter(get_n(m)), NULL, 0, 0), ==, 0);
        } else
                g_error("guest: unexpected message type %d", m->type);
}

static void write_some(Link *l, GlSession *s, GByteArray *wire) {
        size_t max = (size_t) g_rand_int_range(l->rand, 1, 32769);
        GlIovec iov[GL_SESSION_IOV_MAX];
        size_t n = gl_session_output(s, iov), room = max;

        for (size_t i = 0; i < n && room > 0; i++) {
                size_t k = MIN(room, iov[i].len);
                g_byte_array_append(wire, iov[i].base, (guint) k);
                room -= k;
        }
        gl_session_output_advance(s, max - room);
}

static void read_some(Link *l, GlSession *s, GByteArray *wire, GByteArray *seen,
                      void (*on_event)(Link *, GlSessionEvent *)) {
        size_t want = (size_t) g_rand_int_range(l->rand, 1, 4097), room;
        uint8_t *p;
        GlSessionEvent ev;

        want = MIN(want, wire->len);
        if (want > 0) {
                p = gl_session_input_space(s, want, &room);
                g_assert_nonnull(p);
                want = MIN(want, room);
                memcpy(p, wire->data, want);
                gl_session_input_commit(s, want);
                if (seen) {
                        g_byte_array_append(seen, wire->data, (guint) want);
                        if (seen->len > 200000)
                                g_byte_array_remove_range(seen, 0, seen->len - 100000);
                }
                g_byte_array_remove_range(wire, 0, (guint) want);
        }
        while (gl_session_receive(s, &ev) > 0) {
                on_event(l, &ev);
                gl_message_free(ev.message);
        }
}

static void disconnect(Link *l) {
        int how = g_rand_int_range(l->rand, 0, 4);

        l->connected = false;
        l->disconnects++;
        gl_session_disconnected(l->host);
        if (l->guest_notices)
                gl_session_disconnected(l->guest);
        switch (how) {
        case 0: /* QEMU discards what the old client did not read */
                g_byte_array_set_size(l->g2h, 0);
                l->discards++;
                break;
        case 1: /* ... or keeps it for the next client */
                l->replays++;
                break;
        case 2: /* ... or some of it is lost: a random cut */
                if (l->g2h->len > 0)
                        g_byte_array_remove_range(l->g2h, 0,
                                                  (guint) g_rand_int_range(l->rand, 0, (gint32) l->g2h->len));
                l->partial_losses++;
                break;
        case 3: /* stale bytes the host had already read arrive again */
                if (l->g2h_seen->len > 0) {
                        guint from = (guint) g_rand_int_range(l->rand, 0, (gint32) l->g2h_seen->len);
                        g_byte_array_prepend(l->g2h, l->g2h_seen->data + from, l->g2h_seen->len - from);
                }
                l->replays++;
                break;
        }
        /* Host-written bytes not yet read by the guest: still delivered
         * (the guest has the port open) or lost with half a frame. */
        if (g_rand_boolean(l->rand) && l->h2g->len > 0)
                g_byte_array_set_size(l->h2g, (guint) g_rand_int_range(l->rand, 0, (gint32) l->h2g->len));
}

static void reconnect(Link *l) {
        l->connected = true;
        gl_session_connected(l->host);
        if (l->guest_notices)
                gl_session_connected(l->guest);
}

static void run_link(bool guest_notices) {
        const char *env = g_getenv("GL_TEST_LINK_EVENTS");
        Link l = {
                .n_events = env ? g_ascii_strtoull(env, NULL, 10) : DEFAULT_EVENTS,
                .rand = g_rand_new_with_seed(g_test_rand_int() ^ (guest_notices ? 0 : 0x9e3779b9u)),
                .guest = test_session_new("agent", guest_notices ? "guest-linux" : "guest-tty", 1, 1),
                .host = test_session_new("bridge", "host", 1, 1),
                .g2h = g_byte_array_new(),
                .h2g = g_byte_array_new(),
                .g2h_seen = g_byte_array_new(),
                .guest_notices = guest_notices,
                .in_flight = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL),
        };
        uint64_t steps = 0;

        gl_session_connected(l.guest);
        reconnect(&l);
        while (l.h_expect < l.n_events || l.g_expect < l.h_sent || l.responses < l.requests_sent ||
               l.requests_sent < l.n_events / 10) {
                int action = g_rand_int_range(l.rand, 0, 1000);

                steps++;
                l.now++;
                if (steps % 64 == 0) {
                        /* the timers of both daemons: 1 ms per step */
                        gl_session_expire(l.guest, l.now);
                        gl_session_expire(l.host, l.now);
                }
                g_assert_cmpuint(steps, <, 50000000);
                if (!l.connected) {
                        if (action < 100)
                                reconnect(&l);
                        else if (action < 200)
                                guest_produce(&l);
                        continue;
                }
                if (action < 3 && l.h_expect + 1000 < l.n_events)
                        disconnect(&l);
                else if (action < 250)
                        guest_produce(&l);
                else if (action < 350)
                        host_produce(&l);
                else if (action < 550)
                        write_some(&l, l.guest, l.g2h);
                else if (action < 650)
                        write_some(&l, l.host, l.h2g);
                else if (action < 900)
                        read_some(&l, l.host, l.g2h, l.g2h_seen, on_host_event);
                else
                        read_some(&l, l.guest, l.h2g, NULL, on_guest_event);
        }

        g_test_message("%s: %" G_GUINT64_FORMAT " messages, %" G_GUINT64_FORMAT
                       " steps, %u disconnects (%u discarded, %u replayed, %u partly lost), "
                       "%" G_GUINT64_FORMAT " bulk bytes, guest: %" G_GUINT64_FORMAT
                       " retransmits, host: %" G_GUINT64_FORMAT " duplicates %" G_GUINT64_FORMAT " garbage bytes",
                       guest_notices ? "guest notices" : "guest blind", l.h_expect + l.g_expect + l.responses, steps,
                       l.disconnects, l.discards, l.replays, l.partial_losses, l.bulk_bytes,
                       gl_session_stats(l.guest)->retransmits, gl_session_stats(l.host)->duplicates,
                       gl_session_stats(l.host)->garbage_bytes);
        g_assert_cmpuint(l.h_expect, ==, l.n_events);
        g_assert_cmpuint(l.g_expect, ==, l.h_sent);
        g_assert_cmpuint(l.responses, ==, l.requests_sent);
        g_assert_cmpuint(g_hash_table_size(l.in_flight), ==, 0);
        g_assert_cmpuint(l.disconnects, >=, 20);
        g_assert_cmpuint(l.bulk_bytes, >, 0);
        /* The misbehaviour really happened: */
        g_assert_cmpuint(gl_session_stats(l.guest)->retransmits, >, 0);
        g_assert_cmpuint(gl_session_stats(l.host)->garbage_bytes + gl_session_stats(l.host)->duplicates, >, 0);

        gl_session_free(l.guest);
        gl_session_free(l.host);
        g_byte_array_unref(l.g2h);
        g_byte_array_unref(l.h2g);
        g_byte_array_unref(l.g2h_seen);
        g_hash_table_unref(l.in_flight);
        g_rand_free(l.rand);
}

static void test_link_guest_notices(void) {
        run_link(true);
}

static void test_link_guest_blind(void) {
        run_link(false);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/link/100k-guest-notices", test_link_guest_notices);
        g_test_add_func("/link/100k-guest-blind", test_link_guest_blind);
        return g_test_run();
}
