/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: the streaming decoder and the JSON checker on
 * untrusted bytes.  The first byte picks the split size, so the same input
 * is also fed in pieces; frames and errors must not depend on the split.
 */
#include <stdlib.h>
#include <string.h>

#include "decoder.h"
#include "json-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned decode_all(const uint8_t *data, size_t size, size_t piece, uint32_t *digest) {
        GlLimits limits = GL_LIMITS_DEFAULT;
        GlDecoder *d;
        unsigned frames = 0;

        limits.max_frame_bytes = 8192;
        limits.max_json_bytes = 6000;
        limits.max_frame_attachment_bytes = 4000;
        limits.max_json_depth = 8;
        limits.max_string_bytes = 512;
        d = gl_decoder_new(&limits);
        if (!d)
                abort();
        for (size_t off = 0; off <= size;) {
                size_t n = size - off < piece ? size - off : piece;
                long taken = gl_decoder_feed(d, data + off, n);
                GlFrame f;
                int r;

                if (taken < 0)
                        abort();
                off += (size_t) taken;
                while ((r = gl_decoder_next(d, &f)) != 0) {
                        *digest = *digest * 31 + (uint32_t) (r + 7);
                        if (r < 0)
                                continue;
                        frames++;
                        *digest = *digest * 31 + f.header.payload_crc;
                        if (f.header.json_len > 0) {
                                json_object *o = NULL;
                                int e = gl_json_parse(f.json, f.header.json_len, &limits, &o);
                                *digest = *digest * 31 + (uint32_t) (e + 100);
                                json_object_put(o);
                        }
                }
                if (gl_decoder_stats(d)->buffer_bytes > limits.max_frame_bytes + GL_DECODER_SLACK)
                        abort();
                if (n == 0)
                        break;
        }
        gl_decoder_free(d);
        return frames;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint32_t d1 = 0, d2 = 0;
        size_t piece;

        if (size == 0)
                return 0;
        piece = (size_t) data[0] + 1;
        data++;
        size--;
        if (decode_all(data, size, size ? size : 1, &d1) != decode_all(data, size, piece, &d2) || d1 != d2)
                abort(); /* the result depends on how the input was split */
        return 0;
}
