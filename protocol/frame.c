/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "crc32c.h"
#include "frame.h"
#include "wire.h"

const char *gl_frame_error_to_string(GlFrameError e) {
        static const char *const table[_GL_FRAME_ERR_MAX] = {
                [GL_FRAME_OK] = "ok",
                [GL_FRAME_ERR_VERSION] = "unsupported frame version",
                [GL_FRAME_ERR_FRAME_TOO_LARGE] = "frame too large",
                [GL_FRAME_ERR_JSON_TOO_LARGE] = "JSON part too large",
                [GL_FRAME_ERR_ATTACHMENT_TOO_LARGE] = "attachment too large",
                [GL_FRAME_ERR_PAYLOAD_CRC] = "payload checksum mismatch",
                [GL_FRAME_ERR_JSON_SYNTAX] = "malformed JSON or invalid UTF-8",
                [GL_FRAME_ERR_JSON_NOT_OBJECT] = "JSON payload is not an object",
                [GL_FRAME_ERR_JSON_TOO_DEEP] = "JSON nested too deeply",
                [GL_FRAME_ERR_STRING_TOO_LONG] = "JSON string too long",
                [GL_FRAME_ERR_JSON_MISSING] = "JSON payload missing",
        };
        if ((unsigned) e >= _GL_FRAME_ERR_MAX)
                return "unknown frame error";
        return table[e];
}

void gl_frame_header_pack(const GlFrameHeader *h, uint8_t out[GL_FRAME_HEADER_SIZE]) {
        gl_put_le32(out + 0, GL_FRAME_MAGIC);
        out[4] = h->version;
        out[5] = h->kind;
        gl_put_le16(out + 6, h->flags);
        gl_put_le64(out + 8, h->seq);
        gl_put_le64(out + 16, h->ack);
        gl_put_le32(out + 24, h->json_len);
        gl_put_le32(out + 28, h->attach_len);
        gl_put_le32(out + 32, h->payload_crc);
        gl_put_le32(out + 36, gl_crc32c(0, out, 36));
}

void gl_frame_encode(GlFrameHeader *h, const void *json, size_t json_len, const void *attach, size_t attach_len,
                     uint8_t out[GL_FRAME_HEADER_SIZE]) {
        uint32_t crc = 0;

        if (json_len > 0)
                crc = gl_crc32c(crc, json, json_len);
        if (attach_len > 0)
                crc = gl_crc32c(crc, attach, attach_len);
        h->json_len = (uint32_t) json_len;
        h->attach_len = (uint32_t) attach_len;
        h->payload_crc = crc;
        gl_frame_header_pack(h, out);
}

bool gl_frame_header_unpack(const uint8_t in[GL_FRAME_HEADER_SIZE], GlFrameHeader *ret) {
        if (gl_get_le32(in) != GL_FRAME_MAGIC)
                return false;
        if (gl_get_le32(in + 36) != gl_crc32c(0, in, 36))
                return false;
        *ret = (GlFrameHeader){
                .version = in[4],
                .kind = in[5],
                .flags = gl_get_le16(in + 6),
                .seq = gl_get_le64(in + 8),
                .ack = gl_get_le64(in + 16),
                .json_len = gl_get_le32(in + 24),
                .attach_len = gl_get_le32(in + 28),
                .payload_crc = gl_get_le32(in + 32),
        };
        return true;
}

int gl_frame_header_check(const GlFrameHeader *h, const GlLimits *limits) {
        if (h->version != GL_FRAME_VERSION)
                return -GL_FRAME_ERR_VERSION;
        if (h->json_len > limits->max_json_bytes)
                return -GL_FRAME_ERR_JSON_TOO_LARGE;
        if (h->attach_len > limits->max_frame_attachment_bytes)
                return -GL_FRAME_ERR_ATTACHMENT_TOO_LARGE;
        if ((uint64_t) GL_FRAME_HEADER_SIZE + h->json_len + h->attach_len > limits->max_frame_bytes)
                return -GL_FRAME_ERR_FRAME_TOO_LARGE;
        return 0;
}
