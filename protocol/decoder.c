/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "decoder.h"
#include "wire.h"

#define INITIAL_CAPACITY (16 * 1024)

struct GlDecoder {
        GlLimits limits;
        uint8_t *buf;
        size_t capacity; /* allocated */
        size_t max_capacity;
        size_t rpos, wpos;
        uint64_t skip; /* payload bytes of a rejected frame still to drop */
        bool hello_only;
        GlDecoderStats stats;
};

GlDecoder *gl_decoder_new(const GlLimits *limits) {
        GlDecoder *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->limits = limits ? *limits : GL_LIMITS_DEFAULT;
        d->max_capacity = (size_t) d->limits.max_frame_bytes + GL_DECODER_SLACK;
        return d;
}

GlDecoder *gl_decoder_free(GlDecoder *d) {
        if (d) {
                free(d->buf);
                free(d);
        }
        return NULL;
}

void gl_decoder_reset(GlDecoder *d) {
        d->stats.garbage_bytes += d->wpos - d->rpos;
        d->rpos = d->wpos = 0;
        d->skip = 0;
}

void gl_decoder_set_hello_only(GlDecoder *d, bool hello_only) {
        d->hello_only = hello_only;
}

size_t gl_decoder_pending(const GlDecoder *d) {
        return d->wpos - d->rpos;
}

const GlDecoderStats *gl_decoder_stats(const GlDecoder *d) {
        return &d->stats;
}

/* Makes room for up to want bytes at wpos; returns the room available. */
static size_t make_room(GlDecoder *d, size_t want) {
        size_t used = d->wpos - d->rpos;

        if (d->capacity - d->wpos >= want)
                return d->capacity - d->wpos;
        if (d->rpos > 0) {
                memmove(d->buf, d->buf + d->rpos, used);
                d->rpos = 0;
                d->wpos = used;
                if (d->capacity - d->wpos >= want)
                        return d->capacity - d->wpos;
        }
        if (d->capacity < d->max_capacity) {
                size_t n = d->capacity ? d->capacity : INITIAL_CAPACITY;
                uint8_t *b;

                while (n < used + want && n < d->max_capacity)
                        n *= 2;
                if (n > d->max_capacity)
                        n = d->max_capacity;
                b = realloc(d->buf, n);
                if (!b)
                        return (size_t) -1;
                d->buf = b;
                d->capacity = n;
                d->stats.buffer_bytes = n;
        }
        return d->capacity - d->wpos;
}

void *gl_decoder_space(GlDecoder *d, size_t want, size_t *ret_len) {
        size_t room = make_room(d, want);

        if (room == (size_t) -1)
                return NULL;
        *ret_len = room;
        return d->buf + d->wpos;
}

void gl_decoder_commit(GlDecoder *d, size_t n) {
        if (n > d->capacity - d->wpos)
                n = d->capacity - d->wpos; /* caller bug; never overrun */
        d->wpos += n;
        d->stats.bytes += n;
}

long gl_decoder_feed(GlDecoder *d, const void *data, size_t len) {
        size_t room = make_room(d, len);

        if (room == (size_t) -1)
                return -ENOMEM;
        if (room > len)
                room = len;
        if (room > 0)
                memcpy(d->buf + d->wpos, data, room);
        gl_decoder_commit(d, room);
        return (long) room;
}

static void discard(GlDecoder *d, size_t n) {
        d->rpos += n;
        d->stats.garbage_bytes += n;
        if (d->rpos == d->wpos)
                d->rpos = d->wpos = 0;
}

/*
 * Moves rpos to the first byte that could start a frame, keeping a trailing
 * partial magic.  Returns true if a full candidate magic is at rpos.
 */
static bool seek_magic(GlDecoder *d) {
        static const uint8_t magic[4] = { 'G', 'L', 'N', 'K' };

        while (d->rpos < d->wpos) {
                const uint8_t *start = d->buf + d->rpos;
                size_t avail = d->wpos - d->rpos;
                const uint8_t *g = memchr(start, magic[0], avail);
                size_t tail;

                if (!g) {
                        discard(d, avail);
                        return false;
                }
                discard(d, (size_t) (g - start));
                tail = d->wpos - d->rpos;
                if (memcmp(d->buf + d->rpos, magic, tail < 4 ? tail : 4) == 0)
                        return tail >= 4;
                discard(d, 1);
        }
        return false;
}

int gl_decoder_next(GlDecoder *d, GlFrame *ret) {
        for (;;) {
                GlFrameHeader h;
                const uint8_t *p;
                size_t frame_len;
                int r;

                if (d->skip > 0) {
                        size_t n = d->wpos - d->rpos < d->skip ? d->wpos - d->rpos : (size_t) d->skip;

                        d->rpos += n;
                        d->skip -= n;
                        d->stats.rejected_bytes += n;
                        if (d->skip > 0)
                                return 0;
                }
                if (!seek_magic(d) || d->wpos - d->rpos < GL_FRAME_HEADER_SIZE)
                        return 0;
                p = d->buf + d->rpos;
                if (!gl_frame_header_unpack(p, &h)) {
                        discard(d, 1);
                        continue;
                }
                if (d->hello_only &&
                    (h.kind != GL_FRAME_HELLO ||
                     GL_FRAME_HEADER_SIZE + (uint64_t) h.json_len + h.attach_len > GL_DECODER_HELLO_MAX_BYTES)) {
                        /* Between connections only a hello matters.  Any
                         * other frame with an authentic header is dropped
                         * whole, intact or not, and nothing in its payload
                         * is ever searched (it may carry planted frames).
                         * A stale frame cut short by a disconnect is
                         * completed by the peer's padded hello retries. */
                        uint64_t len = GL_FRAME_HEADER_SIZE + (uint64_t) h.json_len + h.attach_len;

                        if (gl_frame_header_check(&h, &d->limits) < 0) {
                                /* No peer sends over our limits before the
                                 * handshake (it does not know them yet and
                                 * sends only hellos): a forged header, which
                                 * must not make us skip gigabytes. */
                                discard(d, 1);
                                continue;
                        }
                        if (len > d->wpos - d->rpos)
                                return 0;
                        discard(d, (size_t) len);
                        continue;
                }
                r = gl_frame_header_check(&h, &d->limits);
                if (r < 0) {
                        /* The header is authentic (its checksum matched)
                         * but declares what we refuse to take: drop the
                         * frame as it streams past, without buffering it. */
                        *ret = (GlFrame){ .header = h };
                        d->stats.rejected++;
                        d->stats.rejected_bytes += GL_FRAME_HEADER_SIZE;
                        d->rpos += GL_FRAME_HEADER_SIZE;
                        d->skip = (uint64_t) h.json_len + h.attach_len;
                        return r;
                }
                frame_len = GL_FRAME_HEADER_SIZE + (size_t) h.json_len + h.attach_len;
                if (d->wpos - d->rpos < frame_len)
                        return 0;
                if (gl_crc32c(0, p + GL_FRAME_HEADER_SIZE, frame_len - GL_FRAME_HEADER_SIZE) != h.payload_crc) {
                        /* Typically a frame cut short by a disconnect and
                         * followed by a new connection's bytes.  Its whole
                         * declared length is dropped: searching inside it
                         * could find frames planted in its payload (log
                         * lines, clipboard data).  The new connection's
                         * hello is sent again until it lands beyond. */
                        *ret = (GlFrame){ .header = h };
                        d->stats.rejected++;
                        discard(d, frame_len);
                        return -GL_FRAME_ERR_PAYLOAD_CRC;
                }
                *ret = (GlFrame){
                        .header = h,
                        .json = (const char *) p + GL_FRAME_HEADER_SIZE,
                        .attach = p + GL_FRAME_HEADER_SIZE + h.json_len,
                };
                d->rpos += frame_len;
                d->stats.frames++;
                return 1;
        }
}
