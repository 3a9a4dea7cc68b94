/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * guestlink frames: a fixed 40-byte little-endian header followed by a JSON
 * object and an optional raw binary attachment.  PROTOCOL.md is the
 * specification; this file is its C rendering.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GL_FRAME_MAGIC UINT32_C(0x4b4e4c47) /* "GLNK" on the wire */
#define GL_FRAME_VERSION 1
#define GL_FRAME_HEADER_SIZE 40

/* Frames of bulk messages, header included, never exceed this. */
#define GL_BULK_CHUNK_BYTES 32768

/* Default limits (PROTOCOL.md, "Limits"). */
#define GL_DEFAULT_MAX_FRAME_BYTES (256 * 1024)
#define GL_DEFAULT_MAX_JSON_BYTES (192 * 1024)
#define GL_DEFAULT_MAX_FRAME_ATTACHMENT_BYTES (128 * 1024)
#define GL_DEFAULT_MAX_MESSAGE_ATTACHMENT_BYTES (32 * 1024 * 1024)
#define GL_DEFAULT_MAX_JSON_DEPTH 16
#define GL_DEFAULT_MAX_STRING_BYTES (64 * 1024)

typedef struct GlLimits {
        uint32_t max_frame_bytes;              /* header + JSON + attachment of one frame */
        uint32_t max_json_bytes;               /* JSON part of one frame */
        uint32_t max_frame_attachment_bytes;   /* attachment part of one frame */
        uint32_t max_message_attachment_bytes; /* attachment of a reassembled bulk message */
        uint32_t max_json_depth;               /* nesting of objects and arrays; the top object is 1 */
        uint32_t max_string_bytes;             /* any JSON string or member name, in bytes */
} GlLimits;

#define GL_LIMITS_DEFAULT                                                                \
        ((GlLimits){                                                                     \
                .max_frame_bytes = GL_DEFAULT_MAX_FRAME_BYTES,                           \
                .max_json_bytes = GL_DEFAULT_MAX_JSON_BYTES,                             \
                .max_frame_attachment_bytes = GL_DEFAULT_MAX_FRAME_ATTACHMENT_BYTES,     \
                .max_message_attachment_bytes = GL_DEFAULT_MAX_MESSAGE_ATTACHMENT_BYTES, \
                .max_json_depth = GL_DEFAULT_MAX_JSON_DEPTH,                             \
                .max_string_bytes = GL_DEFAULT_MAX_STRING_BYTES,                         \
        })

/* The smallest limits a peer may announce or be configured with: a padded
 * hello (16 KiB) and a bulk chunk (32 KiB) must always be acceptable. */
#define GL_LIMITS_MIN                                   \
        ((GlLimits){                                    \
                .max_frame_bytes = GL_BULK_CHUNK_BYTES, \
                .max_json_bytes = 16384,                \
                .max_frame_attachment_bytes = 16384,    \
                .max_message_attachment_bytes = 0,      \
                .max_json_depth = 8,                    \
                .max_string_bytes = 1024,               \
        })

typedef enum GlFrameKind {
        GL_FRAME_HELLO = 1,
        GL_FRAME_MESSAGE = 2,
        GL_FRAME_ACK = 3,
} GlFrameKind;

typedef enum GlFrameFlags {
        GL_FRAME_F_RELIABLE = 1u << 0,     /* seq is valid; the receiver acknowledges it */
        GL_FRAME_F_BULK = 1u << 1,         /* bulk priority class */
        GL_FRAME_F_MORE = 1u << 2,         /* the bulk message continues in the next bulk frame */
        GL_FRAME_F_CONTINUATION = 1u << 3, /* continues a bulk message; carries no JSON */
        GL_FRAME_F_NACK = 1u << 4,         /* ACK frame: a gap was seen, resend everything after ack */
} GlFrameFlags;

/*
 * Why a frame was rejected.  Returned negated by the decoder and the JSON
 * checker; every value is documented in PROTOCOL.md ("Decoding errors").
 */
typedef enum GlFrameError {
        GL_FRAME_OK = 0,
        GL_FRAME_ERR_VERSION = 1,         /* header version is not 1 */
        GL_FRAME_ERR_FRAME_TOO_LARGE = 2, /* header + JSON + attachment > max_frame_bytes */
        GL_FRAME_ERR_JSON_TOO_LARGE = 3,  /* JSON length > max_json_bytes */
        GL_FRAME_ERR_ATTACHMENT_TOO_LARGE =
                4, /* attachment > max_frame_attachment_bytes (or reassembled > max_message_attachment_bytes) */
        GL_FRAME_ERR_PAYLOAD_CRC = 5,     /* payload checksum mismatch */
        GL_FRAME_ERR_JSON_SYNTAX = 6,     /* not one well-formed UTF-8 JSON text */
        GL_FRAME_ERR_JSON_NOT_OBJECT = 7, /* valid JSON, but not an object */
        GL_FRAME_ERR_JSON_TOO_DEEP = 8,   /* nesting deeper than max_json_depth */
        GL_FRAME_ERR_STRING_TOO_LONG = 9, /* a string or member name longer than max_string_bytes */
        GL_FRAME_ERR_JSON_MISSING = 10,   /* a frame kind that needs JSON has none */
        _GL_FRAME_ERR_MAX,
} GlFrameError;

const char *gl_frame_error_to_string(GlFrameError e);

typedef struct GlFrameHeader {
        uint8_t version;
        uint8_t kind;
        uint16_t flags;
        uint64_t seq;
        uint64_t ack;
        uint32_t json_len;
        uint32_t attach_len;
        uint32_t payload_crc;
} GlFrameHeader;

/* A decoded frame.  json and attach point into the decoder's buffer and
 * stay valid until the next call into the decoder. */
typedef struct GlFrame {
        GlFrameHeader header;
        const char *json; /* not NUL-terminated */
        const uint8_t *attach;
} GlFrame;

/* A gather-list entry, convertible to struct iovec or WSABUF. */
typedef struct GlIovec {
        const void *base;
        size_t len;
} GlIovec;

/*
 * Writes the 40 header bytes for a frame whose payload is json followed by
 * attach (either may be empty), computing both checksums.  The caller then
 * writes {out, json, attach} with writev().  Fills h->payload_crc.
 */
void gl_frame_encode(GlFrameHeader *h, const void *json, size_t json_len, const void *attach, size_t attach_len,
                     uint8_t out[GL_FRAME_HEADER_SIZE]);

/* Rewrites the header checksum after a change to the ack field (resends). */
void gl_frame_header_pack(const GlFrameHeader *h, uint8_t out[GL_FRAME_HEADER_SIZE]);

/* Parses a header: returns false if magic or header checksum do not match. */
bool gl_frame_header_unpack(const uint8_t in[GL_FRAME_HEADER_SIZE], GlFrameHeader *ret);

/* Checks the declared sizes against limits: 0 or a negative GlFrameError. */
int gl_frame_header_check(const GlFrameHeader *h, const GlLimits *limits);
