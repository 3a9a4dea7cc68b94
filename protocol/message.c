/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

static const char *const error_codes[_GL_ERROR_CODE_MAX] = {
        [GL_ERROR_INVALID] = "invalid",         [GL_ERROR_UNSUPPORTED] = "unsupported",
        [GL_ERROR_FORBIDDEN] = "forbidden",     [GL_ERROR_BUSY] = "busy",
        [GL_ERROR_TIMEOUT] = "timeout",         [GL_ERROR_INTERNAL] = "internal",
        [GL_ERROR_UNAVAILABLE] = "unavailable", [GL_ERROR_NOT_FOUND] = "not-found",
        [GL_ERROR_TOO_LARGE] = "too-large",     [GL_ERROR_ABORTED] = "aborted",
        [GL_ERROR_NO_AGENT] = "no-agent",
};

static const char *const message_types[_GL_MSG_TYPE_MAX] = {
        [GL_MSG_REQUEST] = "request", [GL_MSG_RESPONSE] = "response", [GL_MSG_ERROR] = "error",
        [GL_MSG_EVENT] = "event",     [GL_MSG_PING] = "ping",         [GL_MSG_PONG] = "pong",
};

const char *gl_error_code_to_string(GlErrorCode c) {
        if (c < 0 || c >= _GL_ERROR_CODE_MAX)
                return "unknown";
        return error_codes[c];
}

GlErrorCode gl_error_code_from_string(const char *s) {
        for (int i = 0; s && i < _GL_ERROR_CODE_MAX; i++)
                if (strcmp(s, error_codes[i]) == 0)
                        return (GlErrorCode) i;
        return GL_ERROR_UNKNOWN;
}

const char *gl_message_type_to_string(GlMessageType t) {
        if (t < 0 || t >= _GL_MSG_TYPE_MAX)
                return "unknown";
        return message_types[t];
}

GlMessageType gl_message_type_from_string(const char *s) {
        for (int i = 0; s && i < _GL_MSG_TYPE_MAX; i++)
                if (strcmp(s, message_types[i]) == 0)
                        return (GlMessageType) i;
        return GL_MSG_UNKNOWN;
}

GlMessage *gl_message_free(GlMessage *m) {
        if (m) {
                json_object_put(m->root);
                free(m->attachment);
                free(m);
        }
        return NULL;
}

static const char *get_string(json_object *root, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(root, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* 1 if present and valid, 0 if absent, -EINVAL if malformed. */
static int get_id(json_object *root, uint64_t *ret) {
        json_object *v;
        int64_t n;

        if (!json_object_object_get_ex(root, "id", &v))
                return 0;
        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        errno = 0;
        n = json_object_get_int64(v);
        if (n < 1 || (uint64_t) n > GL_MESSAGE_ID_MAX || errno != 0)
                return -EINVAL;
        *ret = (uint64_t) n;
        return 1;
}

/* The body member: absent, or an object. */
static int get_body(json_object *root, const char *key, json_object **ret) {
        json_object *v;

        if (!json_object_object_get_ex(root, key, &v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_object))
                return -EINVAL;
        *ret = v;
        return 0;
}

static bool valid_name(const char *s) {
        return s && *s && strlen(s) <= GL_MESSAGE_NAME_MAX;
}

int gl_message_parse(json_object *root, GlMessage **ret_message, const char **ret_reason) {
        GlMessage *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m) {
                json_object_put(root);
                return -ENOMEM;
        }
        m->root = root;
        m->type = gl_message_type_from_string(get_string(root, "type"));
        r = get_id(root, &m->id);
        if (r < 0) {
                *ret_reason = "\"id\" must be an integer from 1 to 2^53-1";
                goto invalid;
        }

        switch (m->type) {
        case GL_MSG_REQUEST:
                m->name = get_string(root, "method");
                if (!valid_name(m->name)) {
                        *ret_reason = "request without a valid \"method\" (1 to 128 bytes)";
                        goto invalid;
                }
                if (get_body(root, "params", &m->body) < 0) {
                        *ret_reason = "\"params\" is not an object";
                        goto invalid;
                }
                break;
        case GL_MSG_RESPONSE:
                if (get_body(root, "result", &m->body) < 0) {
                        *ret_reason = "\"result\" is not an object";
                        goto invalid;
                }
                break;
        case GL_MSG_ERROR: {
                const char *code = get_string(root, "code");
                if (!code) {
                        *ret_reason = "error without \"code\"";
                        goto invalid;
                }
                m->code = gl_error_code_from_string(code);
                m->error_message = get_string(root, "message");
                break;
        }
        case GL_MSG_EVENT:
                m->name = get_string(root, "event");
                if (!valid_name(m->name)) {
                        *ret_reason = "event without a valid \"event\" name (1 to 128 bytes)";
                        goto invalid;
                }
                if (get_body(root, "data", &m->body) < 0) {
                        *ret_reason = "\"data\" is not an object";
                        goto invalid;
                }
                break;
        case GL_MSG_PING:
        case GL_MSG_PONG:
                break;
        default:
                *ret_message = m;
                *ret_reason = "unknown message type";
                return -EPROTONOSUPPORT;
        }

        if (m->id == 0 && m->type != GL_MSG_EVENT && m->type != GL_MSG_ERROR) {
                *ret_reason = "\"id\" missing";
                goto invalid;
        }
        *ret_message = m;
        return 0;

invalid:
        gl_message_free(m);
        return -EINVAL;
}

static json_object *envelope(const char *type, uint64_t id) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "type", json_object_new_string(type));
        if (id > 0)
                json_object_object_add(o, "id", json_object_new_int64((int64_t) id));
        return o;
}

static json_object *with_body(json_object *o, const char *key, json_object *body) {
        if (!o) {
                json_object_put(body);
                return NULL;
        }
        if (body)
                json_object_object_add(o, key, body);
        return o;
}

json_object *gl_message_new_request(uint64_t id, const char *method, json_object *params) {
        json_object *o = envelope("request", id);

        if (o)
                json_object_object_add(o, "method", json_object_new_string(method));
        return with_body(o, "params", params);
}

json_object *gl_message_new_response(uint64_t id, json_object *result) {
        return with_body(envelope("response", id), "result", result);
}

json_object *gl_message_new_error(uint64_t id, GlErrorCode code, const char *message) {
        json_object *o = envelope("error", id);

        if (!o)
                return NULL;
        json_object_object_add(o, "code", json_object_new_string(gl_error_code_to_string(code)));
        if (message)
                json_object_object_add(o, "message", json_object_new_string(message));
        return o;
}

json_object *gl_message_new_event(const char *name, json_object *data) {
        json_object *o = envelope("event", 0);

        if (o)
                json_object_object_add(o, "event", json_object_new_string(name));
        return with_body(o, "data", data);
}

json_object *gl_message_new_ping(GlMessageType type, uint64_t id) {
        return envelope(type == GL_MSG_PONG ? "pong" : "ping", id);
}
