/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-bench-codec: encode and decode throughput of the protocol core,
 * each next to memcpy() of the same bytes (the ratio is codec / memcpy).
 *
 *   guestlink-bench-codec [--seconds S]
 *
 * Figures are from one run on one machine: compare ratios, not absolute
 * numbers across machines.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c-private.h"
#include "decoder.h"
#include "json-check.h"
#include "message.h"
#include "session.h"

#define CONTROL_JSON "{\"type\":\"event\",\"event\":\"ok\"}" /* + 40-byte header = 70 bytes */

typedef struct Result {
        double bytes_per_s;
        double ops_per_s;
} Result;

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Keeps the compiler from discarding a result. */
static void sink(const void *p) {
        __asm__ volatile("" : : "r"(p) : "memory");
}

static Result memcpy_rate(size_t len, double seconds) {
        uint8_t *src = malloc(len), *dst = malloc(len);
        uint64_t n = 0;
        double t0, t;

        memset(src, 0x5a, len);
        memset(dst, 0, len);
        t0 = now_s();
        do {
                for (int i = 0; i < 256; i++) {
                        memcpy(dst, src, len);
                        sink(dst);
                }
                n += 256;
                t = now_s() - t0;
        } while (t < seconds);
        free(src);
        free(dst);
        return (Result){ (double) n * (double) len / t, (double) n / t };
}

static Result frame_encode_rate(const char *json, size_t json_len, const uint8_t *att, size_t att_len, double seconds) {
        uint8_t hdr[GL_FRAME_HEADER_SIZE];
        uint64_t n = 0;
        double t0 = now_s(), t;

        do {
                for (int i = 0; i < 256; i++) {
                        GlFrameHeader h = { .version = 1, .kind = GL_FRAME_MESSAGE, .flags = 1, .seq = n + 1 };
                        gl_frame_encode(&h, json, json_len, att, att_len, hdr);
                        sink(hdr);
                }
                n += 256;
                t = now_s() - t0;
        } while (t < seconds);
        return (Result){ (double) n * (double) (GL_FRAME_HEADER_SIZE + json_len + att_len) / t, (double) n / t };
}

static size_t build_frame(uint8_t *out, const char *json, size_t json_len, const uint8_t *att, size_t att_len) {
        GlFrameHeader h = { .version = 1, .kind = GL_FRAME_MESSAGE, .flags = 3, .seq = 1 };

        gl_frame_encode(&h, json, json_len, att, att_len, out);
        memcpy(out + GL_FRAME_HEADER_SIZE, json, json_len);
        memcpy(out + GL_FRAME_HEADER_SIZE + json_len, att, att_len);
        return GL_FRAME_HEADER_SIZE + json_len + att_len;
}

/*
 * Decoding.  zero_copy: the frames are already in the decoder's buffer, as
 * after read() into gl_decoder_space(); only gl_decoder_next() is timed.
 * Otherwise gl_decoder_feed() copies them in and is timed too.
 */
static Result frame_decode_rate(const uint8_t *frame, size_t frame_len, bool zero_copy, bool parse_json,
                                double seconds) {
        GlLimits limits = GL_LIMITS_DEFAULT;
        GlDecoder *d = gl_decoder_new(&limits);
        size_t batch = (256 * 1024) / frame_len;
        uint64_t n = 0;
        double busy = 0, t0 = now_s();

        if (batch == 0)
                batch = 1;
        if (batch > 4096)
                batch = 4096;
        do {
                double t1;
                GlFrame f;

                if (zero_copy) {
                        size_t room;
                        uint8_t *p = gl_decoder_space(d, batch * frame_len, &room);
                        for (size_t i = 0; i < batch; i++)
                                memcpy(p + i * frame_len, frame, frame_len);
                        gl_decoder_commit(d, batch * frame_len);
                        t1 = now_s();
                } else {
                        t1 = now_s();
                        for (size_t i = 0; i < batch; i++)
                                if (gl_decoder_feed(d, frame, frame_len) != (long) frame_len)
                                        abort();
                }
                for (size_t i = 0; i < batch; i++) {
                        if (gl_decoder_next(d, &f) != 1)
                                abort();
                        if (parse_json) {
                                json_object *o;
                                GlMessage *m;
                                const char *reason;

                                if (gl_json_parse(f.json, f.header.json_len, &limits, &o) < 0 ||
                                    gl_message_parse(o, &m, &reason) < 0)
                                        abort();
                                gl_message_free(m);
                        }
                        sink(f.attach);
                }
                busy += now_s() - t1;
                n += batch;
        } while (now_s() - t0 < seconds);
        gl_decoder_free(d);
        return (Result){ (double) n * (double) frame_len / busy, (double) n / busy };
}

static Result message_encode_rate(double seconds) {
        uint8_t hdr[GL_FRAME_HEADER_SIZE];
        uint64_t n = 0, bytes = 0;
        double t0 = now_s(), t;

        do {
                for (int i = 0; i < 64; i++) {
                        json_object *o = gl_message_new_event("ok", NULL);
                        size_t len;
                        const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
                        GlFrameHeader h = { .version = 1, .kind = GL_FRAME_MESSAGE, .flags = 1, .seq = n + 1 };

                        gl_frame_encode(&h, text, len, NULL, 0, hdr);
                        sink(hdr);
                        bytes += GL_FRAME_HEADER_SIZE + len;
                        json_object_put(o);
                }
                n += 64;
                t = now_s() - t0;
        } while (t < seconds);
        return (Result){ (double) bytes / t, (double) n / t };
}

/* A bulk message through two sessions: output -> input -> reassembled. */
static Result session_bulk_rate(size_t msg_len, double seconds) {
        const char *caps[] = { NULL };
        GlSessionConfig ca = { .instance = "bench-a", .capabilities = caps };
        GlSessionConfig cb = { .instance = "bench-b", .capabilities = caps };
        GlSession *a = gl_session_new(&ca), *b = gl_session_new(&cb);
        uint8_t *pattern = malloc(msg_len);
        uint64_t n = 0;
        double t0, t;
        GlSessionEvent ev;

        memset(pattern, 0x33, msg_len);
        gl_session_connected(a);
        gl_session_connected(b);
        t0 = now_s();
        do {
                uint8_t *att = malloc(msg_len);
                bool done = false;

                memcpy(att, pattern, msg_len); /* the producer's own buffer */
                if (gl_session_send_event(a, "bulk", NULL, att, msg_len, GL_SEND_BULK) < 0)
                        abort();
                while (!done) {
                        GlSession *pair[2][2] = { { a, b }, { b, a } };
                        for (int dir = 0; dir < 2; dir++) {
                                GlIovec iov[GL_SESSION_IOV_MAX];
                                size_t k;

                                while ((k = gl_session_output(pair[dir][0], iov)) > 0) {
                                        size_t total = 0;
                                        for (size_t i = 0; i < k; i++) {
                                                /* the kernel's copy, as write()+read() would do */
                                                size_t room;
                                                uint8_t *p = gl_session_input_space(pair[dir][1], iov[i].len, &room);
                                                memcpy(p, iov[i].base, iov[i].len);
                                                gl_session_input_commit(pair[dir][1], iov[i].len);
                                                total += iov[i].len;
                                        }
                                        gl_session_output_advance(pair[dir][0], total);
                                        while (gl_session_receive(pair[dir][1], &ev) > 0) {
                                                if (ev.message && ev.message->attachment_len == msg_len)
                                                        done = true;
                                                gl_message_free(ev.message);
                                        }
                                }
                        }
                }
                n++;
                t = now_s() - t0;
        } while (t < seconds);
        gl_session_free(a);
        gl_session_free(b);
        free(pattern);
        return (Result){ (double) n * (double) msg_len / t, (double) n / t };
}

static void row(const char *name, Result r, Result base) {
        printf("%-44s %10.1f %12.0f %10.1f %7.3f\n", name, r.bytes_per_s / 1e6, r.ops_per_s, base.bytes_per_s / 1e6,
               r.bytes_per_s / base.bytes_per_s);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "seconds", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        double seconds = 1.0;
        const size_t bulk_att = GL_BULK_CHUNK_BYTES - GL_FRAME_HEADER_SIZE -
                                strlen("{\"type\":\"event\",\"event\":\"logs.batch\"}");
        const char *bulk_json = "{\"type\":\"event\",\"event\":\"logs.batch\"}";
        uint8_t *att = malloc(GL_BULK_CHUNK_BYTES), *frame = malloc(GL_BULK_CHUNK_BYTES);
        uint8_t small[256];
        size_t small_len, bulk_len;
        Result mc_small, mc_bulk, mc_msg, r_decode;
        int c;

        while ((c = getopt_long(argc, argv, "s:h", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        seconds = strtod(optarg, NULL);
                        if (seconds <= 0) {
                                fprintf(stderr, "--seconds must be positive\n");
                                return EXIT_FAILURE;
                        }
                        break;
                case 'h':
                        printf("%s [--seconds S]: protocol codec throughput next to memcpy\n", argv[0]);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }

        for (size_t i = 0; i < GL_BULK_CHUNK_BYTES; i++)
                att[i] = (uint8_t) (i * 7);
        small_len = build_frame(small, CONTROL_JSON, strlen(CONTROL_JSON), NULL, 0);
        bulk_len = build_frame(frame, bulk_json, strlen(bulk_json), att, bulk_att);

        printf("guestlink protocol codec benchmark, %.1f s per case\n", seconds);
        printf("crc32c kernels:");
        for (int k = 0; k < _GL_CRC32C_IMPL_MAX; k++)
                if (gl_crc32c_impl_supported((GlCrc32cImpl) k)) {
                        double t0 = now_s(), t;
                        uint64_t n = 0;
                        uint32_t acc = 0;
                        do {
                                for (int i = 0; i < 64; i++)
                                        acc += gl_crc32c_impl((GlCrc32cImpl) k, acc, frame, bulk_len);
                                n += 64;
                                t = now_s() - t0;
                        } while (t < seconds / 4);
                        sink(&acc);
                        printf(" %s %.0f MB/s;", gl_crc32c_impl_name((GlCrc32cImpl) k),
                               (double) n * (double) bulk_len / t / 1e6);
                }
        printf("\n\n%-44s %10s %12s %10s %7s\n", "case (bytes per frame)", "MB/s", "frames/s", "memcpy", "ratio");

        mc_small = memcpy_rate(small_len, seconds);
        mc_bulk = memcpy_rate(bulk_len, seconds);
        mc_msg = mc_small;

        char name[64];
        snprintf(name, sizeof(name), "control %zu B: frame encode", small_len);
        row(name, frame_encode_rate(CONTROL_JSON, strlen(CONTROL_JSON), NULL, 0, seconds), mc_small);
        snprintf(name, sizeof(name), "control %zu B: frame decode (zero-copy)", small_len);
        row(name, frame_decode_rate(small, small_len, true, false, seconds), mc_small);
        snprintf(name, sizeof(name), "control %zu B: message encode (json-c+frame)", small_len);
        row(name, message_encode_rate(seconds), mc_msg);
        snprintf(name, sizeof(name), "control %zu B: message decode (frame+json-c)", small_len);
        row(name, frame_decode_rate(small, small_len, true, true, seconds), mc_msg);
        snprintf(name, sizeof(name), "bulk %zu B: frame encode", bulk_len);
        row(name, frame_encode_rate(bulk_json, strlen(bulk_json), att, bulk_att, seconds), mc_bulk);
        snprintf(name, sizeof(name), "bulk %zu B: frame decode (zero-copy)", bulk_len);
        r_decode = frame_decode_rate(frame, bulk_len, true, false, seconds);
        row(name, r_decode, mc_bulk);
        snprintf(name, sizeof(name), "bulk %zu B: frame decode (feed copies in)", bulk_len);
        row(name, frame_decode_rate(frame, bulk_len, false, false, seconds), mc_bulk);
        snprintf(name, sizeof(name), "bulk %zu B: message decode (frame+json-c)", bulk_len);
        row(name, frame_decode_rate(frame, bulk_len, true, true, seconds), mc_bulk);
        snprintf(name, sizeof(name), "bulk 1 MiB message: session to session");
        row(name, session_bulk_rate(1024 * 1024, seconds), memcpy_rate(1024 * 1024, seconds));

        printf("\ngoal: bulk frame decode >= 0.50 x memcpy: %.2f x, %s\n", r_decode.bytes_per_s / mc_bulk.bytes_per_s,
               r_decode.bytes_per_s >= 0.5 * mc_bulk.bytes_per_s ? "met" : "NOT met");
        free(att);
        free(frame);
        return EXIT_SUCCESS;
}
