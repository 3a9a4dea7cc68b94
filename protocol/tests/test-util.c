/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "test-util.h"

char *test_data_path(const char *name) {
        const char *dir = g_getenv("GL_TEST_DATA");

        g_assert_nonnull(dir);
        return g_build_filename(dir, name, NULL);
}

GByteArray *test_read_hex(const char *path) {
        g_autofree char *text = NULL;
        g_autoptr(GError) error = NULL;
        GByteArray *out = g_byte_array_new();
        int hi = -1;

        g_assert_true(g_file_get_contents(path, &text, NULL, &error));
        for (const char *p = text; *p; p++) {
                if (*p == '#') {
                        while (*p && *p != '\n')
                                p++;
                        if (!*p)
                                break;
                        continue;
                }
                if (g_ascii_isspace(*p))
                        continue;
                g_assert_true(g_ascii_isxdigit(*p));
                if (hi < 0)
                        hi = g_ascii_xdigit_value(*p);
                else {
                        uint8_t b = (uint8_t) (hi << 4 | g_ascii_xdigit_value(*p));
                        g_byte_array_append(out, &b, 1);
                        hi = -1;
                }
        }
        g_assert_cmpint(hi, ==, -1);
        return out;
}

void test_write_hex(const char *path, const uint8_t *data, size_t len) {
        g_autoptr(GString) s = g_string_new(NULL);

        for (size_t i = 0; i < len; i++)
                g_string_append_printf(s, "%02x%s", data[i], i % 16 == 15 || i + 1 == len ? "\n" : " ");
        g_assert_true(g_file_set_contents(path, s->str, (gssize) s->len, NULL));
}

void test_append_frame(GByteArray *out, uint8_t kind, uint16_t flags, uint64_t seq, uint64_t ack, const char *json,
                       const void *attach, size_t attach_len) {
        GlFrameHeader h = {
                .version = GL_FRAME_VERSION,
                .kind = kind,
                .flags = flags,
                .seq = seq,
                .ack = ack,
        };
        uint8_t hdr[GL_FRAME_HEADER_SIZE];
        size_t json_len = json ? strlen(json) : 0;

        gl_frame_encode(&h, json, json_len, attach, attach_len, hdr);
        g_byte_array_append(out, hdr, sizeof(hdr));
        if (json_len)
                g_byte_array_append(out, (const guint8 *) json, (guint) json_len);
        if (attach_len)
                g_byte_array_append(out, attach, (guint) attach_len);
}

size_t test_flush(GlSession *from, GByteArray *wire, size_t max_write) {
        size_t total = 0;

        for (;;) {
                GlIovec iov[GL_SESSION_IOV_MAX];
                size_t n = gl_session_output(from, iov), room = max_write;

                if (n == 0)
                        return total;
                for (size_t i = 0; i < n && room > 0; i++) {
                        size_t k = MIN(room, iov[i].len);
                        g_byte_array_append(wire, iov[i].base, (guint) k);
                        room -= k;
                }
                gl_session_output_advance(from, max_write - room);
                total += max_write - room;
        }
}

static void event_clear(gpointer p) {
        GlSessionEvent *e = p;
        gl_message_free(e->message);
}

GArray *test_events_new(void) {
        GArray *a = g_array_new(FALSE, TRUE, sizeof(GlSessionEvent));
        g_array_set_clear_func(a, event_clear);
        return a;
}

void test_deliver(GlSession *to, GByteArray *wire, size_t max_read, GArray *events) {
        size_t off = 0;

        do {
                size_t room, n;
                uint8_t *p = gl_session_input_space(to, max_read, &room);
                GlSessionEvent ev;

                g_assert_nonnull(p);
                n = MIN(MIN(room, max_read), wire->len - off);
                if (n > 0)
                        memcpy(p, wire->data + off, n);
                gl_session_input_commit(to, n);
                off += n;
                while (gl_session_receive(to, &ev) > 0) {
                        if (events)
                                g_array_append_val(events, ev);
                        else
                                gl_message_free(ev.message);
                }
        } while (off < wire->len);
        g_byte_array_set_size(wire, 0);
}

GlSession *test_session_new(const char *role, const char *instance, uint32_t min_version, uint32_t max_version) {
        static const char *const caps[] = { "info", "stats", "power", NULL };
        GlSessionConfig c = {
                .role = role,
                .software = "test 1.0",
                .instance = instance,
                .min_version = min_version,
                .max_version = max_version,
                .capabilities = caps,
        };
        GlSession *s = gl_session_new(&c);

        g_assert_nonnull(s);
        return s;
}

void test_pump(GlSession *a, GlSession *b, GArray *ev_a, GArray *ev_b) {
        g_autoptr(GByteArray) ab = g_byte_array_new();
        g_autoptr(GByteArray) ba = g_byte_array_new();

        for (int round = 0; round < 1000; round++) {
                size_t n = test_flush(a, ab, 32768) + test_flush(b, ba, 32768);

                test_deliver(b, ab, 4096, ev_b);
                test_deliver(a, ba, 4096, ev_a);
                if (n == 0)
                        return;
        }
        g_assert_not_reached();
}
