/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Golden frames: each entry of data/golden.json is encoded and compared
 * byte for byte with data/<name>.hex, and the hex file is decoded back.
 * GL_UPDATE_GOLDEN=1 rewrites the hex files (review the diff!). */
#include <string.h>

#include "decoder.h"
#include "test-util.h"

static GByteArray *unhex(const char *s) {
        GByteArray *b = g_byte_array_new();

        for (size_t i = 0; s[i] && s[i + 1]; i += 2) {
                uint8_t v = (uint8_t) (g_ascii_xdigit_value(s[i]) << 4 | g_ascii_xdigit_value(s[i + 1]));
                g_byte_array_append(b, &v, 1);
        }
        return b;
}

static void check_one(json_object *entry) {
        const char *name = json_object_get_string(json_object_object_get(entry, "name"));
        const char *json = json_object_get_string(json_object_object_get(entry, "json"));
        g_autoptr(GByteArray) att = unhex(json_object_get_string(json_object_object_get(entry, "attachment_hex")));
        g_autoptr(GByteArray) encoded = g_byte_array_new();
        g_autofree char *file = g_strdup_printf("%s.hex", name);
        g_autofree char *path = test_data_path(file);
        g_autoptr(GByteArray) golden = NULL;
        GlLimits limits = GL_LIMITS_DEFAULT;
        GlDecoder *d;
        GlFrame f;

        test_append_frame(encoded, (uint8_t) json_object_get_int(json_object_object_get(entry, "kind")),
                          (uint16_t) json_object_get_int(json_object_object_get(entry, "flags")),
                          (uint64_t) json_object_get_int64(json_object_object_get(entry, "seq")),
                          (uint64_t) json_object_get_int64(json_object_object_get(entry, "ack")), json, att->data,
                          att->len);
        if (g_getenv("GL_UPDATE_GOLDEN"))
                test_write_hex(path, encoded->data, encoded->len);
        golden = test_read_hex(path);
        g_test_message("%s: %u bytes", name, golden->len);
        g_assert_cmpmem(encoded->data, encoded->len, golden->data, golden->len);

        d = gl_decoder_new(&limits);
        g_assert_cmpint(gl_decoder_feed(d, golden->data, golden->len), ==, golden->len);
        g_assert_cmpint(gl_decoder_next(d, &f), ==, 1);
        g_assert_cmpuint(f.header.kind, ==, json_object_get_int(json_object_object_get(entry, "kind")));
        g_assert_cmpuint(f.header.flags, ==, json_object_get_int(json_object_object_get(entry, "flags")));
        g_assert_cmpuint(f.header.seq, ==, json_object_get_int64(json_object_object_get(entry, "seq")));
        g_assert_cmpuint(f.header.ack, ==, json_object_get_int64(json_object_object_get(entry, "ack")));
        g_assert_cmpmem(f.json, f.header.json_len, json, strlen(json));
        g_assert_cmpmem(f.attach, f.header.attach_len, att->data, att->len);
        g_assert_cmpint(gl_decoder_next(d, &f), ==, 0);
        g_assert_cmpuint(gl_decoder_stats(d)->garbage_bytes, ==, 0);
        gl_decoder_free(d);
}

static void test_golden(void) {
        g_autofree char *path = test_data_path("golden.json");
        g_autoptr(json_object) all = json_object_from_file(path);

        g_assert_nonnull(all);
        g_assert_cmpuint(json_object_array_length(all), >=, 8);
        for (size_t i = 0; i < json_object_array_length(all); i++)
                check_one(json_object_array_get_idx(all, i));
}

/* The header layout, field by field, against PROTOCOL.md's offsets. */
static void test_header_layout(void) {
        GlFrameHeader h = {
                .version = 1,
                .kind = GL_FRAME_MESSAGE,
                .flags = 0x0203,
                .seq = UINT64_C(0x0807060504030201),
                .ack = UINT64_C(0x1817161514131211),
                .json_len = 0x24232221,
                .attach_len = 0x34333231,
                .payload_crc = 0x44434241,
        };
        uint8_t b[GL_FRAME_HEADER_SIZE];
        GlFrameHeader back;
        static const uint8_t want[36] = {
                'G',  'L',  'N',  'K',  1,    2,    0x03, 0x02, 0x01, 0x02, 0x03, 0x04,
                0x05, 0x06, 0x07, 0x08, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                0x21, 0x22, 0x23, 0x24, 0x31, 0x32, 0x33, 0x34, 0x41, 0x42, 0x43, 0x44,
        };

        gl_frame_header_pack(&h, b);
        g_assert_cmpmem(b, 36, want, 36);
        g_assert_true(gl_frame_header_unpack(b, &back));
        g_assert_cmpuint(back.version, ==, h.version);
        g_assert_cmpuint(back.kind, ==, h.kind);
        g_assert_cmpuint(back.flags, ==, h.flags);
        g_assert_cmpuint(back.seq, ==, h.seq);
        g_assert_cmpuint(back.ack, ==, h.ack);
        g_assert_cmpuint(back.json_len, ==, h.json_len);
        g_assert_cmpuint(back.attach_len, ==, h.attach_len);
        g_assert_cmpuint(back.payload_crc, ==, h.payload_crc);
        /* Any single bit flip in the header is caught. */
        for (size_t i = 0; i < GL_FRAME_HEADER_SIZE * 8; i++) {
                b[i / 8] ^= (uint8_t) (1u << (i % 8));
                g_assert_false(gl_frame_header_unpack(b, &back));
                b[i / 8] ^= (uint8_t) (1u << (i % 8));
        }
}

static void test_error_strings(void) {
        for (int e = 1; e < _GL_FRAME_ERR_MAX; e++) {
                const char *s = gl_frame_error_to_string((GlFrameError) e);
                g_assert_nonnull(s);
                for (int o = 1; o < e; o++)
                        g_assert_cmpstr(s, !=, gl_frame_error_to_string((GlFrameError) o));
        }
        g_assert_cmpstr(gl_frame_error_to_string((GlFrameError) 999), ==, "unknown frame error");
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/frame/golden", test_golden);
        g_test_add_func("/frame/header-layout", test_header_layout);
        g_test_add_func("/frame/error-strings", test_error_strings);
        return g_test_run();
}
