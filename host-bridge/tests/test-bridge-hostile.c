/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Integration: hostile guests against the real guestlink-bridge.  Every case
 * runs one bridge with two real guestlink-agents (the good guests, on ptys)
 * beside one or more hostile guests: raw sockets the test writes bytes to
 * (HARNESS_RAW) or simulated agents (SimAgent) that misbehave.  For each
 * attack it checks
 *   (a) containment, as the [limits] of bridge.conf make it: the hostile
 *       guest's counters in bridge.list (protocol_errors, throttled,
 *       disconnects), its state, or its penalty disconnection;
 *   (b) that the good guests do not notice: bridge.call ping keeps
 *       answering within PING_P99_BOUND_MS (p99) while the attack runs,
 *       their counters show no errors, their stats keep arriving;
 *   (c) that the bridge stays alive with bounded memory (Rss from
 *       /proc/PID/smaps_rollup before and after).
 * PROTOCOL.md 3, 4, 5.3, 11.11; guestlink-bridge(8) [limits].
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bridge-harness.h"
#include "frame.h"
#include "sim-agent.h"

#define N_GOOD 2
/* Bounds on the good guests' ping round trip (bridge.call ping, measured
 * from the control client) while an attack runs.  Measured on a 2-core
 * machine: p99 is typically 2-10 ms; the bounds leave room for a loaded CI
 * machine but still catch a bridge that stalls on a hostile guest (a stall
 * lasts a throttle second, a penalty or a request timeout). */
#define PING_P99_BOUND_MS 250.0
#define PING_MAX_BOUND_MS 1000.0
#define PING_EVERY_MS 40
/* Growth of the bridge's Rss over one attack.  Every case bounds what one
 * guest may make the bridge hold to at most max_guest_memory_bytes (cache)
 * + max_frame_bytes (decoder) + its session queues (3 x 256 KiB); the
 * rest is allocator slack. */
#define RSS_GROWTH_BOUND_KIB (8 * 1024)

typedef struct Bed {
        Harness *h;
        GPtrArray *sims; /* SimAgent* */
        int64_t rss_start_kib;
        int64_t good_stats_us[N_GOOD];
        GArray *rtt_ms; /* double */
        uint64_t pings_failed;
} Bed;

typedef void (*AttackTick)(Bed *b, void *data);

static const char *const good_names[N_GOOD] = { "good0", "good1" };

/* ---- JSON helpers ---- */

static json_object *member(json_object *o, const char *path) {
        g_auto(GStrv) parts = g_strsplit(path, ".", -1);
        json_object *v = o;

        for (char **p = parts; *p; p++)
                if (!v || !json_object_object_get_ex(v, *p, &v))
                        return NULL;
        return v;
}

static int64_t int_member(json_object *o, const char *path) {
        json_object *v = member(o, path);

        return v ? json_object_get_int64(v) : -1;
}

static const char *str_member(json_object *o, const char *path) {
        json_object *v = member(o, path);

        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static GlMessage *assert_response(GlMessage *m) {
        g_assert_nonnull(m);
        if (m->type != GL_MSG_RESPONSE)
                g_error("expected a response, got %s", json_object_to_json_string(m->root));
        return m;
}

/* ---- the test bed ---- */

static Bed *bed_new(const char *extra_conf) {
        Bed *b = g_new0(Bed, 1);

        b->h = harness_new(extra_conf);
        b->sims = g_ptr_array_new();
        b->rtt_ms = g_array_new(FALSE, FALSE, sizeof(double));
        for (int i = 0; i < N_GOOD; i++)
                harness_add_guest(b->h, good_names[i], HARNESS_AGENT, NULL);
        return b;
}

static SimAgent *bed_add_sim(Bed *b, const char *name, SimAgentSetup setup) {
        HarnessGuest *g = harness_add_guest(b->h, name, HARNESS_NONE, NULL);
        g_autoptr(GError) error = NULL;
        SimAgent *a;

        setup.socket_path = g->socket;
        a = sim_agent_new(&setup, &error);
        g_assert_no_error(error);
        g_ptr_array_add(b->sims, a);
        return a;
}

static int64_t guest_counter(Bed *b, const char *name, const char *counter) {
        g_autoptr(json_object) g = harness_list_guest(b->h, name);
        g_autofree char *path = g_strdup_printf("counters.%s", counter);

        g_assert_nonnull(g);
        return int_member(g, path);
}

static int64_t guest_int(Bed *b, const char *name, const char *path) {
        g_autoptr(json_object) g = harness_list_guest(b->h, name);

        g_assert_nonnull(g);
        return int_member(g, path);
}

/* The guest's state in bridge.list (new string). */
static char *guest_state(Bed *b, const char *name) {
        g_autoptr(json_object) g = harness_list_guest(b->h, name);

        g_assert_nonnull(g);
        return g_strdup(str_member(g, "state"));
}

static bool state_is_connected(Bed *b, const char *name) {
        g_autofree char *s = guest_state(b, name);

        return s && (strcmp(s, "connected") == 0 || strcmp(s, "heartbeat-missed") == 0);
}

static void assert_state(Bed *b, const char *name, const char *state) {
        g_autofree char *s = guest_state(b, name);

        g_assert_cmpstr(s, ==, state);
}

static void bed_wait_connected(Bed *b, const char *name) {
        if (!harness_wait_state(b->h, name, "connected", 20000))
                g_error("%s did not connect", name);
}

/* Starts the bridge, waits for every guest but the raw ones to connect and
 * for the good ones' stats to flow, and takes the memory baseline. */
static void bed_start(Bed *b, const char *const *wait_for) {
        harness_start_bridge(b->h);
        harness_connect_client(b->h);
        for (int i = 0; i < N_GOOD; i++)
                bed_wait_connected(b, good_names[i]);
        for (size_t i = 0; wait_for && wait_for[i]; i++)
                bed_wait_connected(b, wait_for[i]);
        harness_run(b->h, 1500);
        for (int i = 0; i < N_GOOD; i++) {
                b->good_stats_us[i] = guest_int(b, good_names[i], "stats_unix_us");
                g_assert_cmpint(b->good_stats_us[i], >, 0);
        }
        b->rss_start_kib = harness_bridge_smaps_kib(b->h, "Rss");
        g_assert_cmpint(b->rss_start_kib, >, 0);
}

static void bed_free(Bed *b) {
        harness_stop_bridge(b->h, SIGTERM);
        for (guint i = 0; i < b->sims->len; i++)
                sim_agent_free(b->sims->pdata[i]);
        g_ptr_array_unref(b->sims);
        g_array_unref(b->rtt_ms);
        harness_free(b->h);
        g_free(b);
}

/* ---- the good guests do not notice ---- */

typedef struct PingSlot {
        uint64_t id;
        int64_t start_us;
} PingSlot;

static void ping_start(Bed *b, PingSlot *slot, const char *guest) {
        g_autofree char *p = g_strdup_printf("{\"guest\":\"%s\",\"method\":\"ping\",\"timeout_ms\":10000}", guest);

        slot->start_us = g_get_monotonic_time();
        g_assert_cmpint(gl_peer_request(b->h->client, "bridge.call", json_tokener_parse(p), 15000, &slot->id), ==, 0);
}

static void ping_check(Bed *b, PingSlot *slot) {
        GlMessage *m;
        double ms;

        if (!slot->id || !(m = harness_take_answer(b->h, slot->id)))
                return;
        ms = (double) (g_get_monotonic_time() - slot->start_us) / 1000.0;
        if (m->type == GL_MSG_RESPONSE)
                g_array_append_val(b->rtt_ms, ms);
        else {
                g_printerr("ping failed: %s\n", json_object_to_json_string(m->root));
                b->pings_failed++;
        }
        gl_message_free(m);
        slot->id = 0;
}

/* Runs the attack for ms milliseconds (tick is called every loop, it must
 * not block for long) while pinging each good guest every PING_EVERY_MS. */
static void bed_attack(Bed *b, int ms, AttackTick tick, void *data) {
        gint64 end = g_get_monotonic_time() + (gint64) ms * 1000, next_ping = 0;
        PingSlot slots[N_GOOD] = { 0 };

        for (;;) {
                gint64 now = g_get_monotonic_time();
                bool busy = false;

                for (int i = 0; i < N_GOOD; i++) {
                        ping_check(b, &slots[i]);
                        busy |= slots[i].id != 0;
                }
                if (now >= end && !busy)
                        break;
                if (now >= next_ping && now < end) {
                        for (int i = 0; i < N_GOOD; i++)
                                if (!slots[i].id)
                                        ping_start(b, &slots[i], good_names[i]);
                        next_ping = now + PING_EVERY_MS * 1000;
                }
                if (tick && now < end)
                        tick(b, data);
                if (!g_main_context_iteration(NULL, FALSE))
                        g_usleep(500);
                if (now > end + 20 * G_USEC_PER_SEC)
                        g_error("pings still unanswered 20 s after the attack");
        }
}

static int cmp_double(gconstpointer a, gconstpointer b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

/* (b) and (c): the good guests' pings, counters and stats; the bridge's memory. */
static void bed_check_unaffected(Bed *b, const char *what) {
        GArray *r = b->rtt_ms;
        double p50, p99, max;
        int64_t rss;

        g_assert_cmpuint(b->pings_failed, ==, 0);
        g_assert_cmpuint(r->len, >=, 10);
        g_array_sort(r, cmp_double);
        p50 = g_array_index(r, double, r->len / 2);
        p99 = g_array_index(r, double, (r->len * 99) / 100 < r->len ? (r->len * 99) / 100 : r->len - 1);
        max = g_array_index(r, double, r->len - 1);
        rss = harness_bridge_smaps_kib(b->h, "Rss");
        g_test_message("%s: %u pings to the good guests: p50 %.2f ms, p99 %.2f ms, max %.2f ms; bridge Rss %" PRId64
                       " -> %" PRId64 " KiB",
                       what, r->len, p50, p99, max, b->rss_start_kib, rss);
        g_printerr("# %s: %u pings: p50 %.2f ms, p99 %.2f ms, max %.2f ms; bridge Rss %" PRId64 " -> %" PRId64 " KiB\n",
                   what, r->len, p50, p99, max, b->rss_start_kib, rss);
        g_assert_cmpfloat(p99, <, PING_P99_BOUND_MS);
        g_assert_cmpfloat(max, <, PING_MAX_BOUND_MS);
        g_array_set_size(r, 0);

        for (int i = 0; i < N_GOOD; i++) {
                g_autoptr(json_object) g = harness_list_guest(b->h, good_names[i]);
                int64_t stats_us = int_member(g, "stats_unix_us");

                g_assert_cmpstr(str_member(g, "state"), ==, "connected");
                g_assert_cmpint(int_member(g, "counters.protocol_errors"), ==, 0);
                g_assert_cmpint(int_member(g, "counters.throttled"), ==, 0);
                g_assert_cmpint(int_member(g, "counters.disconnects"), ==, 0);
                /* stats kept arriving (1 s interval): a fresh sample, newer than the last check */
                g_assert_cmpint(stats_us, >, b->good_stats_us[i]);
                g_assert_cmpint(g_get_real_time() - stats_us, <, 3 * G_USEC_PER_SEC);
                b->good_stats_us[i] = stats_us;
        }
        g_assert_cmpint(rss, >, 0); /* the bridge is alive */
        g_assert_cmpint(rss - b->rss_start_kib, <, RSS_GROWTH_BOUND_KIB);
}

/* ---- raw frames ---- */

/* A frame with the given JSON text, declaring attach_len bytes of
 * attachment (zeros, included in the result only if include_attach). */
static GByteArray *frame_bytes(GlFrameKind kind, const char *json, size_t json_len, uint32_t attach_len,
                               bool include_attach) {
        GByteArray *f = g_byte_array_new();
        g_autofree uint8_t *attach = g_malloc0(attach_len + 1);
        GlFrameHeader h = { .version = GL_FRAME_VERSION, .kind = (uint8_t) kind };
        uint8_t hdr[GL_FRAME_HEADER_SIZE];

        h.json_len = (uint32_t) json_len;
        h.attach_len = attach_len;
        gl_frame_encode(&h, json, json_len, attach, attach_len, hdr);
        g_byte_array_append(f, hdr, sizeof(hdr));
        g_byte_array_append(f, (const guint8 *) json, (guint) json_len);
        if (include_attach)
                g_byte_array_append(f, attach, attach_len);
        return f;
}

/* An unreliable event frame {"type":"event","event":name,"data":{"pad":"ppp..."}}
 * of exactly json_len bytes of JSON. */
static GByteArray *padded_event(const char *name, size_t json_len, uint32_t attach_len) {
        g_autofree char *head = g_strdup_printf("{\"type\":\"event\",\"event\":\"%s\",\"data\":{\"pad\":\"", name);
        g_autoptr(GString) s = g_string_new(head);

        g_assert_cmpuint(json_len, >, s->len + 3);
        while (s->len < json_len - 3)
                g_string_append_c(s, 'p');
        g_string_append(s, "\"}}");
        return frame_bytes(GL_FRAME_MESSAGE, s->str, s->len, attach_len, true);
}

static void sim_write(SimAgent *a, const void *data, size_t len) {
        g_assert_cmpint(sim_agent_write_raw(a, data, len), ==, 0);
}

static bool wait_counter(Bed *b, const char *name, const char *counter, int64_t value, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        while (guest_counter(b, name, counter) != value) {
                if (g_get_monotonic_time() > deadline)
                        return false;
                harness_run(b->h, 50);
        }
        return true;
}

/* ---- the cases ---- */

/* Frames over max_frame_bytes and max_json_bytes are each one protocol error
 * and are skipped as they stream; the stream stays in sync.  A header
 * announcing ~2 GiB is one error and its bytes are skipped, not buffered. */
typedef struct HugeAttack {
        SimAgent *a;
        size_t sent, total;
} HugeAttack;

static void huge_tick(Bed *b, void *data) {
        HugeAttack *x = data;
        uint8_t junk[16384];

        (void) b;
        memset(junk, 'A', sizeof(junk));
        for (int i = 0; i < 4 && x->sent < x->total; i++) {
                sim_write(x->a, junk, sizeof(junk));
                x->sent += sizeof(junk);
        }
}

static void test_oversized(void) {
        Bed *b = bed_new("[limits]\nmax_frame_bytes=65536\nmax_json_bytes=32768\n");
        SimAgent *big = bed_add_sim(b, "big", (SimAgentSetup){ 0 });
        const char *const wait[] = { "big", NULL };
        g_autoptr(GByteArray) over_frame = NULL, over_json = NULL, huge = NULL;
        HugeAttack x = { .a = big, .total = 8 * 1024 * 1024 };
        int64_t bytes_in;

        bed_start(b, wait);
        g_assert_cmpint(guest_counter(b, "big", "protocol_errors"), ==, 0);

        /* 40 + 16000 + 49497 = 65537 bytes: one over max_frame_bytes */
        over_frame = padded_event("stats", 16000, 65537 - 40 - 16000);
        g_assert_cmpuint(over_frame->len, ==, 65537);
        sim_agent_hold_output(big, true);
        sim_write(big, over_frame->data, over_frame->len);
        sim_agent_hold_output(big, false);
        g_assert_true(wait_counter(b, "big", "protocol_errors", 1, 5000));

        /* JSON one byte over max_json_bytes (the frame itself is within max_frame_bytes) */
        over_json = padded_event("stats", 32769, 0);
        sim_agent_hold_output(big, true);
        sim_write(big, over_json->data, over_json->len);
        sim_agent_hold_output(big, false);
        g_assert_true(wait_counter(b, "big", "protocol_errors", 2, 5000));

        /* still in sync: the agent's own stats and heartbeats keep coming, no new error */
        {
                int64_t before = guest_int(b, "big", "stats_unix_us");
                harness_run(b->h, 2500);
                g_assert_cmpint(guest_int(b, "big", "stats_unix_us"), >, before);
                g_assert_true(state_is_connected(b, "big"));
                g_assert_cmpint(guest_counter(b, "big", "protocol_errors"), ==, 2);
                g_assert_cmpint(guest_counter(b, "big", "disconnects"), ==, 0);
        }

        /* a header announcing 2 GiB - 1 of JSON, then 8 MiB of its "payload" */
        bytes_in = guest_counter(b, "big", "bytes_in");
        huge = frame_bytes(GL_FRAME_MESSAGE, "", 0, 0, false);
        {
                GlFrameHeader h = { .version = 1, .kind = GL_FRAME_MESSAGE, .json_len = 0x7fffffff };
                gl_frame_header_pack(&h, huge->data);
        }
        sim_agent_hold_output(big, true);
        sim_write(big, huge->data, GL_FRAME_HEADER_SIZE);
        bed_attack(b, 4000, huge_tick, &x);
        g_assert_cmpuint(x.sent, ==, x.total);
        g_assert_true(wait_counter(b, "big", "bytes_in", bytes_in + GL_FRAME_HEADER_SIZE + (int64_t) x.total, 10000));
        g_assert_cmpint(guest_counter(b, "big", "protocol_errors"), ==, 3);
        bed_check_unaffected(b, "oversized");

        /* the hostile guest only hurt its own connection; a new one works */
        sim_agent_drop_connection(big);
        sim_agent_hold_output(big, false);
        bed_wait_connected(b, "big");
        g_assert_cmpint(guest_counter(b, "big", "protocol_errors"), ==, 3);
        g_assert_cmpint(guest_counter(b, "big", "disconnects"), ==, 1);
        bed_free(b);
}

/* A fake agent sending valid events as fast as it can is throttled to
 * max_frames_per_second, not disconnected. */
#define FLOOD_FPS 200
#define FLOOD_MS 5000
static void test_flood(void) {
        g_autofree char *conf = g_strdup_printf("[limits]\nmax_frames_per_second=%d\n", FLOOD_FPS);
        Bed *b = bed_new(conf);
        SimAgent *f = bed_add_sim(b, "flood", (SimAgentSetup){ 0 });
        const char *const wait[] = { "flood", NULL };
        int64_t frames0, throttled0, frames, throttled;
        gint64 t0, t1;
        double secs;

        bed_start(b, wait);
        frames0 = guest_counter(b, "flood", "frames_in");
        throttled0 = guest_counter(b, "flood", "throttled");
        g_assert_cmpint(throttled0, ==, 0);
        t0 = g_get_monotonic_time();
        sim_agent_flood(f, true);
        bed_attack(b, FLOOD_MS, NULL, NULL);
        sim_agent_flood(f, false);
        t1 = g_get_monotonic_time();
        frames = guest_counter(b, "flood", "frames_in") - frames0;
        throttled = guest_counter(b, "flood", "throttled") - throttled0;
        secs = (double) (t1 - t0) / 1e6;
        g_printerr("# flood: %" PRIu64 " events sent, %" PRId64 " frames read by the bridge in %.2f s (%.0f/s; limit "
                   "%d/s), throttled %" PRId64 " times\n",
                   sim_agent_flood_sent(f), frames, secs, (double) frames / secs, FLOOD_FPS, throttled);
        /* paused once in every throttle window (one a second) */
        g_assert_cmpint(throttled, >=, (int64_t) secs - 1);
        g_assert_cmpint(throttled, <=, (int64_t) secs + 2);
        /* the flooder was held back: what it sent but the bridge did not read
         * yet waits in the socket and the flooder's queue */
        g_assert_cmpuint(sim_agent_flood_sent(f), >, (uint64_t) frames + 1000);
        /* The limit is checked after each read of up to 64 KiB, so a window
         * can take the frames of one read beyond the limit: a flood event
         * frame is at least 40 + 49 bytes. */
        g_assert_cmpint(frames, <=, ((int64_t) secs + 2) * (FLOOD_FPS + 65536 / 89));
        g_assert_true(state_is_connected(b, "flood"));
        g_assert_cmpint(guest_counter(b, "flood", "disconnects"), ==, 0);
        g_assert_cmpint(guest_counter(b, "flood", "protocol_errors"), ==, 0);
        bed_check_unaffected(b, "flood");
        bed_free(b);
}

/* A slowloris sends a valid frame one byte a second: the bridge waits for
 * it without blocking anyone else, holds at most that frame (bounded by
 * max_frame_bytes), and takes it when it is complete. */
typedef struct SlowAttack {
        SimAgent *a;
        GByteArray *frame;
        size_t sent;
        gint64 next_us;
} SlowAttack;

static void slow_tick(Bed *b, void *data) {
        SlowAttack *x = data;
        gint64 now = g_get_monotonic_time();

        (void) b;
        if (now < x->next_us || x->sent >= x->frame->len - 1)
                return;
        sim_write(x->a, x->frame->data + x->sent, 1);
        x->sent++;
        x->next_us = now + G_USEC_PER_SEC;
}

static void test_slowloris(void) {
        Bed *b = bed_new("[limits]\nmax_frame_bytes=65536\nmax_json_bytes=65000\n");
        SimAgent *s = bed_add_sim(b, "slow", (SimAgentSetup){ 0 });
        const char *const wait[] = { "slow", NULL };
        g_autofree char *json = NULL;
        g_autoptr(json_object) data = sim_stats_object(1, 48000);
        SlowAttack x = { .a = s };
        int64_t frames0, bytes0;
        json_object *samples;
        GlMessage *m;
        bool found = false;

        bed_start(b, wait);
        /* a stats sample the bridge will cache, marked so that we can find it */
        json_object_object_add(data, "marker", json_object_new_int(4242));
        json = g_strdup_printf("{\"type\":\"event\",\"event\":\"stats\",\"data\":%s}",
                               json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
        x.frame = frame_bytes(GL_FRAME_MESSAGE, json, strlen(json), 0, true);
        g_assert_cmpuint(x.frame->len, >, 48000);
        g_assert_cmpuint(x.frame->len, <=, 65536);
        frames0 = guest_counter(b, "slow", "frames_in");
        bytes0 = guest_counter(b, "slow", "bytes_in");

        /* all but the last 8 bytes at once, then a byte a second */
        sim_agent_hold_output(s, true);
        sim_write(s, x.frame->data, x.frame->len - 8);
        x.sent = x.frame->len - 8;
        bed_attack(b, 7500, slow_tick, &x);
        g_assert_cmpuint(x.sent, ==, x.frame->len - 1);
        /* every byte was read, no frame yet, nothing counted against it */
        g_assert_cmpint(guest_counter(b, "slow", "bytes_in"), ==, bytes0 + (int64_t) x.sent);
        g_assert_cmpint(guest_counter(b, "slow", "frames_in"), ==, frames0);
        g_assert_cmpint(guest_counter(b, "slow", "protocol_errors"), ==, 0);
        g_assert_cmpint(guest_counter(b, "slow", "disconnects"), ==, 0);
        bed_check_unaffected(b, "slowloris");

        /* the last byte completes the frame: delivered, cached */
        sim_write(s, x.frame->data + x.sent, 1);
        sim_agent_hold_output(s, false);
        g_assert_true(wait_counter(b, "slow", "frames_in", frames0 + 1, 5000) ||
                      guest_counter(b, "slow", "frames_in") > frames0);
        m = assert_response(harness_call(b->h, "bridge.stats", "{\"guest\":\"slow\"}", 10000));
        g_assert_true(json_object_object_get_ex(m->body, "samples", &samples));
        for (size_t i = 0; i < json_object_array_length(samples); i++)
                found |= int_member(json_object_array_get_idx(samples, i), "marker") == 4242;
        g_assert_true(found);
        gl_message_free(m);
        g_assert_cmpint(guest_counter(b, "slow", "protocol_errors"), ==, 0);
        g_byte_array_unref(x.frame);
        bed_free(b);
}

/* Garbage: random bytes and another protocol's bytes (a QMP greeting and
 * answers).  Not one frame, not one protocol error: every byte is read
 * and skipped, within max_bytes_per_second. */
#define GARBAGE_BPS (1024 * 1024)
typedef struct GarbageAttack {
        HarnessGuest *junk, *qmp;
        GRand *rand;
        size_t junk_sent, junk_total, qmp_sent;
        gint64 next_qmp_us;
} GarbageAttack;

static const char qmp_greeting[] =
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"Debian "
        "1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}\r\n";
static const char qmp_answers[] = "{\"return\": {}}\r\n{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": "
                                  "1}, \"event\": \"RESUME\"}\r\n{\"error\": {\"class\": \"CommandNotFound\", "
                                  "\"desc\": \"The command GLNK has not been found\"}}\r\n";

static void garbage_tick(Bed *b, void *data) {
        GarbageAttack *x = data;
        uint32_t buf[4096];
        gint64 now = g_get_monotonic_time();

        (void) b;
        if (x->junk_sent < x->junk_total) {
                for (size_t i = 0; i < G_N_ELEMENTS(buf); i++)
                        buf[i] = g_rand_int(x->rand);
                harness_guest_write(x->junk, buf, sizeof(buf));
                x->junk_sent += sizeof(buf);
        }
        if (now >= x->next_qmp_us) {
                harness_guest_write(x->qmp, qmp_answers, strlen(qmp_answers));
                x->qmp_sent += strlen(qmp_answers);
                x->next_qmp_us = now + 100 * 1000;
        }
}

static void test_garbage(void) {
        g_autofree char *conf = g_strdup_printf("[limits]\nmax_bytes_per_second=%d\n", GARBAGE_BPS);
        Bed *b = bed_new(conf);
        GarbageAttack x = { .junk_total = 4 * GARBAGE_BPS };
        int64_t throttled;

        x.junk = harness_add_guest(b->h, "junk", HARNESS_RAW, NULL);
        x.qmp = harness_add_guest(b->h, "qmp", HARNESS_RAW, NULL);
        x.rand = g_rand_new_with_seed(4242);
        bed_start(b, NULL);
        g_assert_true(harness_wait_state(b->h, "junk", "agent-absent", 5000));
        g_assert_true(harness_wait_state(b->h, "qmp", "agent-absent", 5000));
        harness_guest_write(x.qmp, qmp_greeting, strlen(qmp_greeting));
        x.qmp_sent = strlen(qmp_greeting);
        bed_attack(b, 6000, garbage_tick, &x);
        g_assert_cmpuint(x.junk_sent, >=, x.junk_total);
        /* every byte read (exactly), as garbage */
        g_assert_true(wait_counter(b, "junk", "bytes_in", (int64_t) x.junk_sent, 10000));
        g_assert_true(wait_counter(b, "qmp", "bytes_in", (int64_t) x.qmp_sent, 5000));
        for (int i = 0; i < 2; i++) {
                const char *n = i ? "qmp" : "junk";
                g_assert_cmpint(guest_counter(b, n, "frames_in"), ==, 0);
                g_assert_cmpint(guest_counter(b, n, "protocol_errors"), ==, 0);
                g_assert_cmpint(guest_counter(b, n, "disconnects"), ==, 0);
                assert_state(b, n, "agent-absent");
        }
        /* 4 MiB at 1 MiB/s: paused in (about) each of the first seconds */
        throttled = guest_counter(b, "junk", "throttled");
        g_printerr("# garbage: %zu random bytes, %zu QMP bytes; junk throttled %" PRId64 " times\n", x.junk_sent,
                   x.qmp_sent, throttled);
        g_assert_cmpint(throttled, >=, 3);
        g_assert_cmpint(throttled, <=, 4);
        g_assert_cmpint(guest_counter(b, "qmp", "throttled"), ==, 0);
        bed_check_unaffected(b, "garbage");
        g_rand_free(x.rand);
        bed_free(b);
}

static void assert_valid_utf8_no_controls(const char *text, size_t len, const char *what) {
        const char *end = text + len;

        for (const char *p = text; p < end; p = g_utf8_next_char(p)) {
                gunichar c = g_utf8_get_char_validated(p, end - p);
                if (c == (gunichar) -1 || c == (gunichar) -2)
                        g_error("%s: invalid UTF-8 at offset %td", what, p - text);
                if ((c < 0x20 && c != '\n') || c == 0x7f || (c >= 0x80 && c < 0xa0))
                        g_error("%s: raw control character U+%04X at offset %td", what, c, p - text);
        }
}

/* Invalid UTF-8 inside JSON strings: each frame is one protocol error
 * (JSON_SYNTAX) and nothing of it is stored. */
static void test_invalid_utf8(void) {
        static const char *const bad[] = {
                "\xff\xfe",         /* never valid */
                "\xc3\x28",         /* a lead byte without its continuation */
                "\xc0\xaf",         /* overlong '/' */
                "\xed\xa0\x80",     /* a UTF-16 surrogate */
                "\xf4\x90\x80\x80", /* above U+10FFFF */
        };
        Bed *b = bed_new(NULL);
        SimAgent *u = bed_add_sim(b, "utf8", (SimAgentSetup){ 0 });
        const char *const wait[] = { "utf8", NULL };
        g_autofree char *log = NULL;
        GlMessage *m;

        bed_start(b, wait);
        sim_agent_hold_output(u, true);
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *json = g_strdup_printf(
                        "{\"type\":\"event\",\"event\":\"stats\",\"data\":{\"hostname\":\"evil%s\",\"bad\":1}}",
                        bad[i]);
                g_autoptr(GByteArray) f = frame_bytes(GL_FRAME_MESSAGE, json, strlen(json), 0, true);
                sim_write(u, f->data, f->len);
        }
        sim_agent_hold_output(u, false);
        bed_attack(b, 2000, NULL, NULL);
        g_assert_cmpint(guest_counter(b, "utf8", "protocol_errors"), ==, G_N_ELEMENTS(bad));
        g_assert_true(state_is_connected(b, "utf8"));
        m = assert_response(harness_call(b->h, "bridge.guest", "{\"guest\":\"utf8\"}", 10000));
        g_assert_nonnull(member(m->body, "stats.memory"));
        g_assert_null(member(m->body, "stats.bad"));
        gl_message_free(m);
        log = harness_bridge_log(b->h);
        assert_valid_utf8_no_controls(log, strlen(log), "bridge log");
        bed_check_unaffected(b, "invalid-utf8");
        bed_free(b);
}

/* Terminal escapes in the HELLO's software and the info hostname: stored
 * and forwarded as JSON strings, never written raw to a log or a terminal. */
#define EVIL_SOFTWARE                             \
        "evil\x1b[31mRED\x1b]0;pwned\x07\xc2\x9b" \
        "2J\nline2\r\x7f!"
#define EVIL_HOSTNAME               \
        "host\x1b[2J\x1b[H\xc2\x9b" \
        "31m\x07\x08\ttab\nnext\xc2\x85"

static void cli_done(GObject *source, GAsyncResult *res, gpointer userdata) {
        GBytes **out = userdata;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_subprocess_communicate_finish(G_SUBPROCESS(source), res, out, NULL, &error));
        g_assert_no_error(error);
}

/* Runs the real CLI against the bridge; our main loop keeps running meanwhile
 * (the simulated agents live in it).  Returns its standard output. */
static char *run_cli(Bed *b, const char *const *args, size_t *ret_len) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) p = NULL;
        GBytes *out = NULL;
        const char *cli = g_getenv("GL_CLI_BINARY");
        const void *data;
        char *text;
        gsize len;

        g_assert_nonnull(cli);
        g_ptr_array_add(argv, (gpointer) cli);
        g_ptr_array_add(argv, (gpointer) "--socket");
        g_ptr_array_add(argv, b->h->socket);
        for (size_t i = 0; args[i]; i++)
                g_ptr_array_add(argv, (gpointer) args[i]);
        g_ptr_array_add(argv, NULL);
        p = g_subprocess_newv((const char *const *) argv->pdata, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
        g_assert_no_error(error);
        g_subprocess_communicate_async(p, NULL, NULL, cli_done, &out);
        while (!out)
                g_main_context_iteration(NULL, TRUE);
        g_assert_true(g_subprocess_wait(p, NULL, NULL));
        g_assert_true(g_subprocess_get_if_exited(p));
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
        data = g_bytes_get_data(out, &len);
        text = g_strndup(data, len);
        g_bytes_unref(out);
        *ret_len = len;
        return text;
}

static void test_escapes(void) {
        Bed *b = bed_new(NULL);
        SimAgentSetup setup = { .hello_software = EVIL_SOFTWARE, .hostname = EVIL_HOSTNAME };
        const char *const wait[] = { "evil", NULL };
        g_autofree char *log = NULL;
        GlMessage *m;

        bed_add_sim(b, "evil", setup);
        bed_start(b, wait);
        {
                g_autoptr(json_object) g = harness_list_guest(b->h, "evil");
                /* stored and forwarded unchanged, as JSON strings */
                g_assert_cmpstr(str_member(g, "agent.software"), ==, EVIL_SOFTWARE);
                g_assert_cmpstr(str_member(g, "hostname"), ==, EVIL_HOSTNAME);
        }
        m = assert_response(harness_guest_call(b->h, "evil", "info", NULL, 10000));
        g_assert_cmpstr(str_member(m->body, "hostname"), ==, EVIL_HOSTNAME);
        gl_message_free(m);
        bed_attack(b, 1000, NULL, NULL);

        log = harness_bridge_log(b->h);
        assert_valid_utf8_no_controls(log, strlen(log), "bridge log");
        g_assert_nonnull(
                strstr(log, "Agent connected (evil\\x1b[31mRED\\x1b]0;pwned\\x07\\x9b2J\\x0aline2\\x0d\\x7f!)"));
        {
                static const char *const verbs[][4] = { { "list", NULL },
                                                        { "info", "evil", NULL },
                                                        { "--json", "list", NULL },
                                                        { "--json", "info", "evil", NULL } };
                for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++) {
                        size_t len;
                        g_autofree char *out = run_cli(b, verbs[i], &len);
                        g_autofree char *what = g_strdup_printf("guestlink %s %s", verbs[i][0],
                                                                verbs[i][1] ? verbs[i][1] : "");
                        assert_valid_utf8_no_controls(out, len, what);
                        g_assert_nonnull(strstr(out, "evil"));
                        /* the escapes are shown, escaped */
                        g_assert_true(strstr(out, "\\x1b") || strstr(out, "\\u001b"));
                }
        }
        bed_check_unaffected(b, "escapes");
        bed_free(b);
}

/* A memory hog: stats samples just under max_frame_bytes, as fast as
 * max_bytes_per_second allows.  The bridge keeps at most
 * max_guest_memory_bytes of them. */
/* Small enough that the whole history fits one bridge.stats answer: the
 * bridge's control session never sends more than 192 KiB of JSON (see the
 * report), so a 1 MiB history could not be read back. */
#define HOG_MEMORY (128 * 1024)
#define HOG_PAD 27000
static void test_memory_hog(void) {
        g_autofree char *conf = g_strdup_printf("[limits]\nmax_frame_bytes=32768\nmax_guest_memory_bytes=%d\n"
                                                "max_bytes_per_second=%d\n[stats]\nhistory=100\n",
                                                HOG_MEMORY, 1024 * 1024);
        Bed *b = bed_new(conf);
        SimAgentSetup setup = { .stats_pad_bytes = HOG_PAD, .no_info = true, .flood_stats = true };
        SimAgent *hog = bed_add_sim(b, "hog", setup);
        const char *const wait[] = { "hog", NULL };
        json_object *samples;
        size_t n, bytes = 0, last = 0;
        int64_t hb_len = 0;
        GlMessage *m;

        bed_start(b, wait);
        sim_agent_flood(hog, true);
        bed_attack(b, 5000, NULL, NULL);
        sim_agent_flood(hog, false);
        harness_run(b->h, 1200);
        m = assert_response(harness_call(b->h, "bridge.guest", "{\"guest\":\"hog\"}", 10000));
        g_assert_null(member(m->body, "info"));
        if (member(m->body, "heartbeat"))
                hb_len = (int64_t) strlen(
                        json_object_to_json_string_ext(member(m->body, "heartbeat"), JSON_C_TO_STRING_PLAIN));
        gl_message_free(m);
        m = assert_response(harness_call(b->h, "bridge.stats", "{\"guest\":\"hog\"}", 10000));
        g_assert_true(json_object_object_get_ex(m->body, "samples", &samples));
        n = json_object_array_length(samples);
        for (size_t i = 0; i < n; i++) {
                last = strlen(
                        json_object_to_json_string_ext(json_object_array_get_idx(samples, i), JSON_C_TO_STRING_PLAIN));
                g_assert_cmpuint(last, >, HOG_PAD);
                g_assert_cmpuint(last, <, 32768);
                bytes += last;
        }
        gl_message_free(m);
        g_printerr("# memory hog: %" PRIu64 " samples of ~%zu bytes sent, %zu kept (%zu bytes) under "
                   "max_guest_memory_bytes=%d\n",
                   sim_agent_flood_sent(hog), last, n, bytes, HOG_MEMORY);
        /* the history, the last sample and the last heartbeat fit the budget ... */
        g_assert_cmpuint(bytes + last + (size_t) hb_len, <=, HOG_MEMORY);
        /* ... and it was the budget that stopped it, not the history length (100) */
        g_assert_cmpuint(sim_agent_flood_sent(hog), >, 100);
        g_assert_cmpuint(bytes + 2 * last + (size_t) hb_len + 256, >, HOG_MEMORY);
        g_assert_cmpint(guest_counter(b, "hog", "protocol_errors"), ==, 0);
        bed_check_unaffected(b, "memory-hog");
        bed_free(b);
}

/* Protocol errors beyond max_protocol_errors_per_minute: disconnected for
 * penalty_seconds, then connected again. */
#define PENALTY_ERRORS 5
#define PENALTY_SECONDS 3
static void write_bad_json(SimAgent *a, int n) {
        static const char bad[] = "{\"type\":\"event\",\"event\":\"stats\",\"data\":{\"x\":tru}}";
        g_autoptr(GByteArray) f = frame_bytes(GL_FRAME_MESSAGE, bad, strlen(bad), 0, true);

        sim_agent_hold_output(a, true);
        for (int i = 0; i < n; i++)
                sim_write(a, f->data, f->len);
        sim_agent_hold_output(a, false);
}

static void test_penalty(void) {
        g_autofree char *conf = g_strdup_printf("[limits]\nmax_protocol_errors_per_minute=%d\npenalty_seconds=%d\n",
                                                PENALTY_ERRORS, PENALTY_SECONDS);
        Bed *b = bed_new(conf);
        SimAgent *bad = bed_add_sim(b, "bad", (SimAgentSetup){ 0 });
        const char *const wait[] = { "bad", NULL };
        g_autofree char *log = NULL, *needle = NULL;
        gint64 t_off, t_on;
        uint64_t connects;

        bed_start(b, wait);
        write_bad_json(bad, PENALTY_ERRORS);
        g_assert_true(wait_counter(b, "bad", "protocol_errors", PENALTY_ERRORS, 5000));
        bed_attack(b, 500, NULL, NULL);
        g_assert_true(state_is_connected(b, "bad"));
        g_assert_cmpint(guest_counter(b, "bad", "disconnects"), ==, 0);

        connects = sim_agent_connects(bad);
        write_bad_json(bad, 1);
        g_assert_true(wait_counter(b, "bad", "disconnects", 1, 5000));
        t_off = g_get_monotonic_time();
        assert_state(b, "bad", "connecting");
        g_assert_cmpint(guest_counter(b, "bad", "protocol_errors"), ==, PENALTY_ERRORS + 1);
        /* while it sits out its penalty, the others carry on */
        bed_attack(b, 1500, NULL, NULL);
        g_assert_cmpuint(sim_agent_connects(bad), ==, connects);
        while (sim_agent_connects(bad) == connects) {
                g_assert_cmpint(g_get_monotonic_time() - t_off, <, (PENALTY_SECONDS + 10) * G_USEC_PER_SEC);
                harness_run(b->h, 10);
        }
        t_on = g_get_monotonic_time();
        g_printerr("# penalty: reconnected %.2f s after the disconnection (penalty_seconds=%d)\n",
                   (double) (t_on - t_off) / 1e6, PENALTY_SECONDS);
        g_assert_cmpint(t_on - t_off, >=, PENALTY_SECONDS * G_USEC_PER_SEC - 300 * 1000);
        bed_wait_connected(b, "bad");
        g_assert_cmpint(guest_counter(b, "bad", "disconnects"), ==, 1);
        log = harness_bridge_log(b->h);
        needle = g_strdup_printf("[bad] Guest exceeded max_protocol_errors_per_minute; disconnecting it for %d s",
                                 PENALTY_SECONDS);
        g_assert_nonnull(strstr(log, needle));
        g_assert_null(strstr(log, "[good0] Guest exceeded"));
        bed_check_unaffected(b, "penalty");
        bed_free(b);
}

/* Thirty real agents on one bridge: all connect, all answer info at once. */
#define N_MANY 30
static void test_many_agents(void) {
        Harness *h = harness_new(NULL);
        uint64_t ids[N_MANY];
        char name[32];
        gint64 t0, deadline;
        int answered = 0;

        for (int i = 0; i < N_MANY; i++) {
                g_snprintf(name, sizeof(name), "vm%02d", i);
                harness_add_guest(h, name, HARNESS_AGENT, NULL);
        }
        harness_start_bridge(h);
        harness_connect_client(h);
        for (int i = 0; i < N_MANY; i++) {
                g_snprintf(name, sizeof(name), "vm%02d", i);
                g_assert_true(harness_wait_state(h, name, "connected", 30000));
        }
        /* every request goes out before any answer is awaited */
        t0 = g_get_monotonic_time();
        for (int i = 0; i < N_MANY; i++) {
                g_autofree char *p = g_strdup_printf("{\"guest\":\"vm%02d\",\"method\":\"info\",\"timeout_ms\":20000}",
                                                     i);
                g_assert_cmpint(gl_peer_request(h->client, "bridge.call", json_tokener_parse(p), 25000, &ids[i]), ==,
                                0);
        }
        deadline = t0 + 30 * G_USEC_PER_SEC;
        while (answered < N_MANY) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_main_context_iteration(NULL, TRUE);
                for (int i = 0; i < N_MANY; i++) {
                        GlMessage *m = ids[i] ? harness_take_answer(h, ids[i]) : NULL;
                        if (!m)
                                continue;
                        assert_response(m);
                        g_assert_cmpstr(str_member(m->body, "agent.software"), ==,
                                        "guestlink-agent " GL_VERSION_FOR_TESTS);
                        g_assert_cmpstr(str_member(m->body, "hostname"), ==, g_get_host_name());
                        gl_message_free(m);
                        ids[i] = 0;
                        answered++;
                }
        }
        g_printerr("# many agents: %d info answers in %.1f ms\n", N_MANY,
                   (double) (g_get_monotonic_time() - t0) / 1000.0);
        {
                GlMessage *m = assert_response(harness_call(h, "bridge.list", NULL, 10000));
                json_object *guests = member(m->body, "guests");
                g_assert_cmpuint(json_object_array_length(guests), ==, N_MANY);
                for (int i = 0; i < N_MANY; i++) {
                        json_object *g = json_object_array_get_idx(guests, (size_t) i);
                        g_snprintf(name, sizeof(name), "vm%02d", i);
                        g_assert_cmpstr(str_member(g, "name"), ==, name);
                        g_assert_cmpstr(str_member(g, "state"), ==, "connected");
                        g_assert_cmpint(int_member(g, "counters.protocol_errors"), ==, 0);
                }
                gl_message_free(m);
        }
        harness_free(h);
}

/* guestlink-agents left behind by an aborted test run (any test that uses
 * the harness: its agents outlive it) keep reopening the /dev/pts/N they
 * were given, and a new pty with that number gets two agents.  Taking the
 * low numbers with ptys nobody uses keeps this test's agents away from
 * them.  The masters stay open until the process exits. */
#define PTY_GUARD 32
static void guard_ptys(void) {
        for (int i = 0; i < PTY_GUARD; i++)
                if (posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC) < 0)
                        break;
}

int main(int argc, char **argv) {
        signal(SIGPIPE, SIG_IGN);
        guard_ptys();
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bridge-hostile/oversized", test_oversized);
        g_test_add_func("/bridge-hostile/flood", test_flood);
        g_test_add_func("/bridge-hostile/slowloris", test_slowloris);
        g_test_add_func("/bridge-hostile/garbage", test_garbage);
        g_test_add_func("/bridge-hostile/invalid-utf8", test_invalid_utf8);
        g_test_add_func("/bridge-hostile/escapes", test_escapes);
        g_test_add_func("/bridge-hostile/memory-hog", test_memory_hog);
        g_test_add_func("/bridge-hostile/penalty", test_penalty);
        g_test_add_func("/bridge-hostile/many-agents", test_many_agents);
        return g_test_run();
}
