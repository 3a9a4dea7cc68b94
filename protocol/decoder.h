/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Streaming frame decoder: bytes in, frames out.  Input may be split at any
 * point.  Garbage (stale bytes of an earlier session, a corrupted header, a
 * peer speaking another protocol) is skipped up to the next position where
 * a magic and a valid header checksum start, and counted.  A frame whose
 * authentic header declares sizes over the limits, or another frame format
 * version, is reported and dropped as it streams past; so is a frame whose
 * payload checksum fails, with all the bytes it declared (it is usually a
 * frame cut short by a disconnect, and searching inside it could find frames
 * planted in its payload).  Memory is bounded
 * by the limits: the buffer never grows beyond max_frame_bytes plus one
 * read's worth of slack.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct GlDecoder GlDecoder;

typedef struct GlDecoderStats {
        uint64_t frames;         /* frames returned */
        uint64_t rejected;       /* frames rejected with an error */
        uint64_t rejected_bytes; /* bytes of frames refused for their declared sizes or version */
        uint64_t garbage_bytes;  /* bytes skipped while looking for a frame */
        uint64_t bytes;          /* bytes fed in */
        uint64_t buffer_bytes;   /* memory held for input, at most max_frame_bytes + GL_DECODER_SLACK */
} GlDecoderStats;

/* How much the decoder can take beyond one maximal frame. */
#define GL_DECODER_SLACK (64 * 1024)

GlDecoder *gl_decoder_new(const GlLimits *limits);
GlDecoder *gl_decoder_free(GlDecoder *d);

/* Forgets buffered bytes (counted as garbage), e.g. on a new connection. */
void gl_decoder_reset(GlDecoder *d);

/*
 * Copies in up to len bytes and returns how many were taken: less than len
 * only when the buffer is full, in which case the caller must drain frames
 * with gl_decoder_next() first.  -ENOMEM on allocation failure.
 */
long gl_decoder_feed(GlDecoder *d, const void *data, size_t len);

/*
 * Zero-copy input: returns a buffer of at least min(want, free space) bytes
 * to read() into directly (*ret_len is its size; 0 when full), then
 * gl_decoder_commit() says how many bytes arrived.  NULL on ENOMEM.
 */
void *gl_decoder_space(GlDecoder *d, size_t want, size_t *ret_len);
void gl_decoder_commit(GlDecoder *d, size_t n);

/*
 * Returns 1 and fills *ret with the next frame, 0 when more input is
 * needed, or a negative GlFrameError for a frame that was rejected and
 * skipped (*ret then holds its header, for logging); call again after an
 * error.  Frame pointers stay valid until the next call.
 */
int gl_decoder_next(GlDecoder *d, GlFrame *ret);

/*
 * While a session has not completed its handshake, only HELLO frames (of at
 * most GL_DECODER_HELLO_MAX_BYTES) are of any use.  In this mode every
 * other header is treated as garbage instead of waiting for its payload: a
 * stale frame cut short by a disconnect cannot hold back the handshake.
 */
#define GL_DECODER_HELLO_MAX_BYTES (16 * 1024)
void gl_decoder_set_hello_only(GlDecoder *d, bool hello_only);

/* Bytes buffered and not yet returned as frames. */
size_t gl_decoder_pending(const GlDecoder *d);
const GlDecoderStats *gl_decoder_stats(const GlDecoder *d);
