/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "decoder.h"
#include "test-util.h"

typedef struct Seen {
        int result; /* 1 or -GlFrameError */
        uint64_t seq;
        GByteArray *json, *attach;
} Seen;

static void seen_clear(gpointer p) {
        Seen *s = p;
        g_byte_array_unref(s->json);
        g_byte_array_unref(s->attach);
}

/* Drains every frame and error into out. */
static void drain(GlDecoder *d, GArray *out) {
        for (;;) {
                GlFrame f;
                int r = gl_decoder_next(d, &f);
                Seen s = { .result = r, .seq = f.header.seq };

                if (r == 0)
                        return;
                s.json = g_byte_array_new();
                s.attach = g_byte_array_new();
                if (r > 0) {
                        g_byte_array_append(s.json, (const guint8 *) f.json, f.header.json_len);
                        g_byte_array_append(s.attach, f.attach, f.header.attach_len);
                }
                g_array_append_val(out, s);
        }
}

static GArray *seen_new(void) {
        GArray *a = g_array_new(FALSE, TRUE, sizeof(Seen));
        g_array_set_clear_func(a, seen_clear);
        return a;
}

static void assert_same(GArray *a, GArray *b) {
        g_assert_cmpuint(a->len, ==, b->len);
        for (guint i = 0; i < a->len; i++) {
                Seen *x = &g_array_index(a, Seen, i), *y = &g_array_index(b, Seen, i);
                g_assert_cmpint(x->result, ==, y->result);
                g_assert_cmpuint(x->seq, ==, y->seq);
                g_assert_cmpmem(x->json->data, x->json->len, y->json->data, y->json->len);
                g_assert_cmpmem(x->attach->data, x->attach->len, y->attach->data, y->attach->len);
        }
}

static GByteArray *sample_stream(void) {
        GByteArray *s = g_byte_array_new();
        uint8_t att[300];

        for (size_t i = 0; i < sizeof(att); i++)
                att[i] = (uint8_t) (i * 7);
        test_append_frame(s, GL_FRAME_HELLO, 0, 0, 0, "{\"type\":\"hello\"}", NULL, 0);
        test_append_frame(s, GL_FRAME_MESSAGE, 1, 1, 0, "{\"type\":\"event\",\"event\":\"x\"}", att, sizeof(att));
        test_append_frame(s, GL_FRAME_ACK, 0, 0, 9, NULL, NULL, 0);
        test_append_frame(s, GL_FRAME_MESSAGE, 0x0f, 2, 0, NULL, "GLNKGLNK", 8); /* magic inside a payload */
        test_append_frame(s, GL_FRAME_MESSAGE, 1, 3, 1, "{\"type\":\"ping\",\"id\":1}", NULL, 0);
        return s;
}

static GArray *decode_whole(const GByteArray *stream) {
        GlDecoder *d = gl_decoder_new(NULL);
        GArray *out = seen_new();

        g_assert_cmpint(gl_decoder_feed(d, stream->data, stream->len), ==, stream->len);
        drain(d, out);
        gl_decoder_free(d);
        return out;
}

static void test_split_everywhere(void) {
        g_autoptr(GByteArray) stream = sample_stream();
        g_autoptr(GArray) want = decode_whole(stream);

        g_assert_cmpuint(want->len, ==, 5);
        for (guint i = 0; i < want->len; i++)
                g_assert_cmpint(g_array_index(want, Seen, i).result, ==, 1);

        for (guint split = 0; split <= stream->len; split++) {
                GlDecoder *d = gl_decoder_new(NULL);
                g_autoptr(GArray) got = seen_new();

                g_assert_cmpint(gl_decoder_feed(d, stream->data, split), ==, split);
                drain(d, got);
                g_assert_cmpint(gl_decoder_feed(d, stream->data + split, stream->len - split), ==, stream->len - split);
                drain(d, got);
                assert_same(got, want);
                g_assert_cmpuint(gl_decoder_stats(d)->garbage_bytes, ==, 0);
                g_assert_cmpuint(gl_decoder_pending(d), ==, 0);
                gl_decoder_free(d);
        }
}

static void test_byte_by_byte_zero_copy(void) {
        g_autoptr(GByteArray) stream = sample_stream();
        g_autoptr(GArray) want = decode_whole(stream);
        g_autoptr(GArray) got = seen_new();
        GlDecoder *d = gl_decoder_new(NULL);

        for (guint i = 0; i < stream->len; i++) {
                size_t room;
                uint8_t *p = gl_decoder_space(d, 1, &room);

                g_assert_nonnull(p);
                g_assert_cmpuint(room, >=, 1);
                *p = stream->data[i];
                gl_decoder_commit(d, 1);
                drain(d, got);
        }
        assert_same(got, want);
        gl_decoder_free(d);
}

/* Garbage before, between and inside frames: stale bytes of an earlier
 * session, a frame cut short, a corrupted header, another protocol. */
static void test_garbage(void) {
        g_autoptr(GByteArray) good = sample_stream();
        g_autoptr(GArray) want = decode_whole(good);
        g_autoptr(GByteArray) s = g_byte_array_new();
        g_autoptr(GByteArray) cut = g_byte_array_new();
        g_autoptr(GByteArray) bad = g_byte_array_new();
        g_autoptr(GArray) got = seen_new();
        const char *qga = "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}\n\xff";
        g_autofree uint8_t *filler = NULL;
        uint8_t att[5000];
        size_t garbage = 0;
        GlDecoder *d;
        guint n_ok = 0, n_crc = 0;

        memset(att, 'a', sizeof(att));
        /* another protocol, and fake magics */
        g_byte_array_append(s, (const guint8 *) qga, (guint) strlen(qga));
        g_byte_array_append(s, (const guint8 *) "GLNKGLN", 7);
        garbage += strlen(qga) + 7;
        /* a frame cut short by a disconnect: the bytes that follow, up to
         * its declared length, are taken as its payload and dropped with it */
        test_append_frame(cut, GL_FRAME_MESSAGE, 3, 77, 0, "{\"type\":\"event\",\"event\":\"x\"}", att, sizeof(att));
        g_byte_array_append(s, cut->data, 1000);
        filler = g_malloc0(cut->len - 1000);
        g_byte_array_append(s, filler, cut->len - 1000);
        garbage += cut->len;
        g_byte_array_append(s, good->data, good->len);
        /* a corrupted header between frames */
        test_append_frame(bad, GL_FRAME_MESSAGE, 1, 5, 0, "{\"a\":1}", NULL, 0);
        bad->data[12] ^= 0x40;
        g_byte_array_append(s, bad->data, bad->len);
        garbage += bad->len;
        g_byte_array_append(s, good->data, good->len);
        /* and junk after the last frame, some of it a partial magic */
        g_byte_array_append(s, (const guint8 *) "xyzGL", 5);

        d = gl_decoder_new(NULL);
        for (guint off = 0; off < s->len; off += 333) {
                guint n = MIN(333u, s->len - off);
                g_assert_cmpint(gl_decoder_feed(d, s->data + off, n), ==, n);
                drain(d, got);
        }
        for (guint i = 0; i < got->len; i++) {
                Seen *x = &g_array_index(got, Seen, i);
                if (x->result == 1)
                        n_ok++;
                else {
                        g_assert_cmpint(x->result, ==, -GL_FRAME_ERR_PAYLOAD_CRC);
                        g_assert_cmpuint(x->seq, ==, 77);
                        n_crc++;
                }
        }
        g_assert_cmpuint(n_crc, ==, 1);
        g_assert_cmpuint(n_ok, ==, 2 * want->len);
        /* 3 trailing bytes are garbage; "GL" may yet start a frame */
        g_assert_cmpuint(gl_decoder_stats(d)->garbage_bytes, ==, garbage + 3);
        g_assert_cmpuint(gl_decoder_pending(d), ==, 2);
        gl_decoder_free(d);
}

/* A valid frame planted in the payload of a frame whose checksum fails
 * (log data, clipboard contents) is never decoded, nor one planted in a
 * stale frame skipped while waiting for a hello. */
static void test_planted_frames(void) {
        g_autoptr(GByteArray) planted = g_byte_array_new();
        g_autoptr(GByteArray) carrier = g_byte_array_new();
        g_autoptr(GByteArray) s = g_byte_array_new();
        g_autoptr(GArray) got = seen_new();
        GlDecoder *d;

        test_append_frame(planted, GL_FRAME_ACK, 0, 0, 999, NULL, NULL, 0);
        test_append_frame(carrier, GL_FRAME_MESSAGE, 3, 9, 0, "{\"type\":\"event\",\"event\":\"logs\"}", planted->data,
                          planted->len);
        carrier->data[carrier->len - 50] ^= 1; /* the carrier's checksum fails (before the planted frame) */
        g_byte_array_append(s, carrier->data, carrier->len);
        test_append_frame(s, GL_FRAME_MESSAGE, 1, 10, 0, "{\"type\":\"event\",\"event\":\"after\"}", NULL, 0);
        d = gl_decoder_new(NULL);
        g_assert_cmpint(gl_decoder_feed(d, s->data, s->len), ==, s->len);
        drain(d, got);
        g_assert_cmpuint(got->len, ==, 2);
        g_assert_cmpint(g_array_index(got, Seen, 0).result, ==, -GL_FRAME_ERR_PAYLOAD_CRC);
        g_assert_cmpuint(g_array_index(got, Seen, 1).seq, ==, 10);
        gl_decoder_free(d);

        /* hello-only: an intact stale frame is skipped whole, the hello
         * planted in it is not seen, the real one after it is */
        g_byte_array_set_size(planted, 0);
        g_byte_array_set_size(carrier, 0);
        g_byte_array_set_size(s, 0);
        g_array_set_size(got, 0);
        test_append_frame(planted, GL_FRAME_HELLO, 0, 0, 0, "{\"type\":\"hello\",\"planted\":true}", NULL, 0);
        test_append_frame(carrier, GL_FRAME_MESSAGE, 3, 9, 0, "{\"type\":\"event\",\"event\":\"logs\"}", planted->data,
                          planted->len);
        g_byte_array_append(s, carrier->data, carrier->len);
        test_append_frame(s, GL_FRAME_HELLO, 0, 0, 0, "{\"type\":\"hello\"}", NULL, 0);
        d = gl_decoder_new(NULL);
        gl_decoder_set_hello_only(d, true);
        g_assert_cmpint(gl_decoder_feed(d, s->data, s->len), ==, s->len);
        drain(d, got);
        g_assert_cmpuint(got->len, ==, 1);
        g_assert_cmpmem(g_array_index(got, Seen, 0).json->data, g_array_index(got, Seen, 0).json->len,
                        "{\"type\":\"hello\"}", 16);
        gl_decoder_free(d);
}

static GlLimits small_limits(void) {
        GlLimits l = GL_LIMITS_DEFAULT;
        l.max_frame_bytes = 4096;
        l.max_json_bytes = 3000;
        l.max_frame_attachment_bytes = 2000;
        return l;
}

/* Every size limit violated once: a precise error, the frame dropped,
 * the next frame fine, memory bounded. */
static void test_limits(void) {
        static const struct {
                uint8_t version;
                size_t json_len, attach_len;
                int error;
        } cases[] = {
                { 1, 3001, 0, -GL_FRAME_ERR_JSON_TOO_LARGE },     { 1, 10, 2001, -GL_FRAME_ERR_ATTACHMENT_TOO_LARGE },
                { 1, 2500, 1600, -GL_FRAME_ERR_FRAME_TOO_LARGE }, { 2, 10, 10, -GL_FRAME_ERR_VERSION },
                { 1, 1u << 30, 0, -GL_FRAME_ERR_JSON_TOO_LARGE },
        };
        GlLimits limits = small_limits();

        for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
                g_autoptr(GByteArray) s = g_byte_array_new();
                g_autoptr(GArray) got = seen_new();
                GlFrameHeader h = {
                        .version = cases[c].version,
                        .kind = GL_FRAME_MESSAGE,
                        .flags = 1,
                        .seq = 5,
                        .json_len = (uint32_t) cases[c].json_len,
                        .attach_len = (uint32_t) cases[c].attach_len,
                };
                uint8_t hdr[GL_FRAME_HEADER_SIZE];
                size_t body = c == 4 ? 100000 : cases[c].json_len + cases[c].attach_len;
                g_autofree uint8_t *junk = g_malloc(body);
                GlDecoder *d = gl_decoder_new(&limits);

                memset(junk, ' ', body);
                gl_frame_header_pack(&h, hdr);
                g_byte_array_append(s, hdr, sizeof(hdr));
                g_byte_array_append(s, junk, (guint) body);
                if (c != 4)
                        test_append_frame(s, GL_FRAME_MESSAGE, 1, 6, 0, "{\"type\":\"event\",\"event\":\"after\"}",
                                          NULL, 0);
                for (guint off = 0; off < s->len; off += 1024) {
                        guint n = MIN(1024u, s->len - off);
                        g_assert_cmpint(gl_decoder_feed(d, s->data + off, n), ==, n);
                        drain(d, got);
                }
                g_assert_cmpuint(got->len, ==, c == 4 ? 1 : 2);
                g_assert_cmpint(g_array_index(got, Seen, 0).result, ==, cases[c].error);
                g_assert_cmpuint(g_array_index(got, Seen, 0).seq, ==, 5);
                if (c != 4) {
                        g_assert_cmpint(g_array_index(got, Seen, 1).result, ==, 1);
                        g_assert_cmpuint(g_array_index(got, Seen, 1).seq, ==, 6);
                }
                g_assert_cmpuint(gl_decoder_stats(d)->rejected, ==, 1);
                g_assert_cmpuint(gl_decoder_stats(d)->buffer_bytes, <=, limits.max_frame_bytes + GL_DECODER_SLACK);
                gl_decoder_free(d);
        }
}

static void test_full_buffer(void) {
        GlLimits limits = small_limits();
        GlDecoder *d = gl_decoder_new(&limits);
        g_autofree uint8_t *big = g_malloc0(1 << 20);
        long n;

        /* Zeros are garbage, but feed only takes what fits until drained. */
        n = gl_decoder_feed(d, big, 1 << 20);
        g_assert_cmpint(n, ==, limits.max_frame_bytes + GL_DECODER_SLACK);
        g_assert_cmpint(gl_decoder_feed(d, big, 1), ==, 0);
        g_assert_cmpint(gl_decoder_next(d, &(GlFrame){ 0 }), ==, 0);
        g_assert_cmpint(gl_decoder_feed(d, big, 1), ==, 1);
        g_assert_cmpuint(gl_decoder_stats(d)->garbage_bytes, ==, (uint64_t) n);
        gl_decoder_free(d);
}

static void test_hello_only(void) {
        g_autoptr(GByteArray) s = g_byte_array_new();
        g_autoptr(GArray) got = seen_new();
        g_autoptr(GByteArray) cut = g_byte_array_new();
        g_autoptr(GByteArray) retry = g_byte_array_new();
        g_autofree uint8_t *pad = g_malloc0(16000);
        uint8_t att[20000] = { 0 };
        GlDecoder *d = gl_decoder_new(NULL);
        unsigned retries = 0;

        /* A stale bulk frame cut short, then the peer's hello: the decoder
         * drops the cut frame whole, with all the bytes it declared, and
         * never looks inside; the peer's padded hello retries complete it,
         * and the first retry beyond it comes out. */
        test_append_frame(cut, GL_FRAME_MESSAGE, 3, 9, 0, NULL, att, sizeof(att));
        g_byte_array_append(s, cut->data, 500);
        test_append_frame(s, GL_FRAME_HELLO, 0, 0, 0, "{\"type\":\"hello\"}", NULL, 0);
        test_append_frame(retry, GL_FRAME_HELLO, 0, 0, 0, "{\"type\":\"hello\"}", pad, 16000);
        gl_decoder_set_hello_only(d, true);
        g_assert_cmpint(gl_decoder_feed(d, s->data, s->len), ==, s->len);
        drain(d, got);
        g_assert_cmpuint(got->len, ==, 0); /* swallowed by the cut frame */
        while (got->len == 0) {
                g_assert_cmpint(gl_decoder_feed(d, retry->data, retry->len), ==, retry->len);
                drain(d, got);
                retries++;
        }
        g_test_message("hello found after %u padded retries", retries);
        g_assert_cmpuint(retries, ==, 3); /* 19 540 missing bytes: two retries fill them, the third is read */
        g_assert_cmpint(g_array_index(got, Seen, 0).result, ==, 1);
        g_assert_cmpuint(g_array_index(got, Seen, 0).attach->len, ==, 16000);
        gl_decoder_free(d);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/decoder/split-everywhere", test_split_everywhere);
        g_test_add_func("/decoder/byte-by-byte-zero-copy", test_byte_by_byte_zero_copy);
        g_test_add_func("/decoder/garbage", test_garbage);
        g_test_add_func("/decoder/planted-frames", test_planted_frames);
        g_test_add_func("/decoder/limits", test_limits);
        g_test_add_func("/decoder/full-buffer", test_full_buffer);
        g_test_add_func("/decoder/hello-only", test_hello_only);
        return g_test_run();
}
