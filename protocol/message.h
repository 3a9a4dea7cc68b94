/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The message envelope carried in MESSAGE frames (PROTOCOL.md, "Messages"):
 *
 *   {"type":"request","id":7,"method":"info","params":{...}}
 *   {"type":"response","id":7,"result":{...}}
 *   {"type":"error","id":7,"code":"forbidden","message":"..."}
 *   {"type":"event","event":"heartbeat","data":{...}}
 *   {"type":"ping","id":3}            {"type":"pong","id":3}
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum GlMessageType {
        GL_MSG_REQUEST,
        GL_MSG_RESPONSE,
        GL_MSG_ERROR,
        GL_MSG_EVENT,
        GL_MSG_PING,
        GL_MSG_PONG,
        _GL_MSG_TYPE_MAX,
        GL_MSG_UNKNOWN = -1,
} GlMessageType;

/* Error codes of "error" messages; on the wire as the strings below. */
typedef enum GlErrorCode {
        GL_ERROR_INVALID,     /* "invalid": malformed request or parameters */
        GL_ERROR_UNSUPPORTED, /* "unsupported": unknown message type, method or capability */
        GL_ERROR_FORBIDDEN,   /* "forbidden": refused by the peer's policy */
        GL_ERROR_BUSY,        /* "busy": a conflicting operation is in progress, or too many requests */
        GL_ERROR_TIMEOUT,     /* "timeout": no response in time (usually raised locally) */
        GL_ERROR_INTERNAL,    /* "internal": the peer failed while handling it */
        GL_ERROR_UNAVAILABLE, /* "unavailable": supported, but not possible on this system now */
        GL_ERROR_NOT_FOUND,   /* "not-found": the named object does not exist */
        GL_ERROR_TOO_LARGE,   /* "too-large": a limit was exceeded */
        GL_ERROR_ABORTED,     /* "aborted": the peer restarted or the request was cancelled */
        GL_ERROR_NO_AGENT,    /* "no-agent": a bridge has no agent session with that guest */
        _GL_ERROR_CODE_MAX,
        GL_ERROR_UNKNOWN = -1, /* a code this implementation does not know */
} GlErrorCode;

const char *gl_error_code_to_string(GlErrorCode c);
GlErrorCode gl_error_code_from_string(const char *s);

const char *gl_message_type_to_string(GlMessageType t);
GlMessageType gl_message_type_from_string(const char *s);

/* Largest id a peer may use: ids travel as JSON numbers, which many
 * languages hold in doubles. */
#define GL_MESSAGE_ID_MAX ((UINT64_C(1) << 53) - 1)

/* Longest method or event name, in bytes. */
#define GL_MESSAGE_NAME_MAX 128

typedef struct GlMessage {
        GlMessageType type;
        uint64_t id;               /* request, response, error (0 = none), ping, pong */
        const char *name;          /* request method or event name; borrowed from root */
        json_object *body;         /* params, result or data (may be NULL); borrowed from root */
        GlErrorCode code;          /* error */
        const char *error_message; /* error; may be NULL */
        bool local;                /* error raised by this side (timeout, aborted) */
        bool bulk;                 /* arrived in the bulk class */
        json_object *root;         /* owned: the whole envelope */
        uint8_t *attachment;       /* owned, may be NULL */
        size_t attachment_len;
} GlMessage;

GlMessage *gl_message_free(GlMessage *m);

/*
 * Validates an envelope (root is consumed, also on failure).  Returns 0, or
 * -EINVAL with a static reason in *ret_reason for a malformed envelope, or
 * -EPROTONOSUPPORT for an unknown "type" (*ret_message still filled, with
 * type GL_MSG_UNKNOWN and the id if one was given, so that the caller can
 * answer "unsupported").
 */
int gl_message_parse(json_object *root, GlMessage **ret_message, const char **ret_reason);

/* Envelope constructors.  They take ownership of body; return NULL on ENOMEM. */
json_object *gl_message_new_request(uint64_t id, const char *method, json_object *params);
json_object *gl_message_new_response(uint64_t id, json_object *result);
json_object *gl_message_new_error(uint64_t id, GlErrorCode code, const char *message);
json_object *gl_message_new_event(const char *name, json_object *data);
json_object *gl_message_new_ping(GlMessageType type, uint64_t id);
