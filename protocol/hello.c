/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "hello.h"
#include "message.h"

static void add_string(json_object *o, const char *key, const char *v) {
        if (v)
                json_object_object_add(o, key, json_object_new_string(v));
}

json_object *gl_hello_to_json(const GlHello *h) {
        json_object *o = json_object_new_object(), *caps;

        if (!o)
                return NULL;
        json_object_object_add(o, "type", json_object_new_string("hello"));
        add_string(o, "role", h->role);
        add_string(o, "software", h->software);
        add_string(o, "instance", h->instance);
        add_string(o, "boot_id", h->boot_id);
        json_object_object_add(o, "min_version", json_object_new_int64(h->min_version));
        json_object_object_add(o, "max_version", json_object_new_int64(h->max_version));
        caps = json_object_new_array();
        for (unsigned i = 0; caps && i < h->n_capabilities; i++)
                json_object_array_add(caps, json_object_new_string(h->capabilities[i]));
        json_object_object_add(o, "capabilities", caps);
        json_object_object_add(o, "nonce", json_object_new_int64((int64_t) h->nonce));
        if (h->echo > 0)
                json_object_object_add(o, "echo", json_object_new_int64((int64_t) h->echo));
        add_string(o, "ack_instance", h->ack_instance);
        json_object_object_add(o, "tx_first", json_object_new_int64((int64_t) h->tx_first));
        if (h->have_limits) {
                json_object *l = json_object_new_object();

                json_object_object_add(l, "max_frame_bytes", json_object_new_int64(h->limits.max_frame_bytes));
                json_object_object_add(l, "max_json_bytes", json_object_new_int64(h->limits.max_json_bytes));
                json_object_object_add(l, "max_frame_attachment_bytes",
                                       json_object_new_int64(h->limits.max_frame_attachment_bytes));
                json_object_object_add(l, "max_message_attachment_bytes",
                                       json_object_new_int64(h->limits.max_message_attachment_bytes));
                json_object_object_add(l, "max_json_depth", json_object_new_int64(h->limits.max_json_depth));
                json_object_object_add(l, "max_string_bytes", json_object_new_int64(h->limits.max_string_bytes));
                json_object_object_add(o, "limits", l);
        }
        return o;
}

static const char *get_str(json_object *root, const char *key, size_t max) {
        json_object *v;
        const char *s;

        if (!json_object_object_get_ex(root, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        s = json_object_get_string(v);
        if (max > 0 && (strlen(s) == 0 || strlen(s) > max))
                return NULL;
        return s;
}

/* 1 if present and within [min, max], 0 if absent, -EINVAL otherwise. */
static int get_uint(json_object *root, const char *key, uint64_t min, uint64_t max, uint64_t *ret) {
        json_object *v;
        int64_t n;

        if (!json_object_object_get_ex(root, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        errno = 0;
        n = json_object_get_int64(v);
        if (errno != 0 || n < 0 || (uint64_t) n < min || (uint64_t) n > max)
                return -EINVAL;
        *ret = (uint64_t) n;
        return 1;
}

int gl_hello_from_json(json_object *root, GlHello *ret, const char **ret_reason) {
        GlHello h = { 0 };
        json_object *caps, *lim;
        uint64_t v;

        h.type = get_str(root, "type", 0);
        h.instance = get_str(root, "instance", GL_HELLO_MAX_ID_LEN);
        if (!h.instance) {
                *ret_reason = "hello without a valid \"instance\"";
                return -EINVAL;
        }
        h.role = get_str(root, "role", 0);
        h.software = get_str(root, "software", 0);
        h.boot_id = get_str(root, "boot_id", GL_HELLO_MAX_ID_LEN);
        h.ack_instance = get_str(root, "ack_instance", GL_HELLO_MAX_ID_LEN);

        if (get_uint(root, "min_version", 1, UINT32_MAX, &v) != 1) {
                *ret_reason = "hello without a valid \"min_version\"";
                return -EINVAL;
        }
        h.min_version = (uint32_t) v;
        if (get_uint(root, "max_version", h.min_version, UINT32_MAX, &v) != 1) {
                *ret_reason = "hello without a valid \"max_version\" (>= min_version)";
                return -EINVAL;
        }
        h.max_version = (uint32_t) v;
        if (get_uint(root, "nonce", 1, GL_MESSAGE_ID_MAX, &h.nonce) != 1) {
                *ret_reason = "hello without a valid \"nonce\"";
                return -EINVAL;
        }
        if (get_uint(root, "echo", 0, GL_MESSAGE_ID_MAX, &h.echo) < 0) {
                *ret_reason = "hello with an invalid \"echo\"";
                return -EINVAL;
        }
        if (get_uint(root, "tx_first", 1, INT64_MAX, &h.tx_first) != 1) {
                *ret_reason = "hello without a valid \"tx_first\"";
                return -EINVAL;
        }
        if (json_object_object_get_ex(root, "capabilities", &caps) && json_object_is_type(caps, json_type_array)) {
                size_t n = json_object_array_length(caps);

                for (size_t i = 0; i < n && h.n_capabilities < GL_HELLO_MAX_CAPABILITIES; i++) {
                        json_object *c = json_object_array_get_idx(caps, i);
                        if (json_object_is_type(c, json_type_string))
                                h.capabilities[h.n_capabilities++] = json_object_get_string(c);
                }
        }
        if (json_object_object_get_ex(root, "limits", &lim) && json_object_is_type(lim, json_type_object)) {
                /* A sender keeps within the smaller of its own and the
                 * peer's limits.  Absent or malformed values leave the
                 * default; values under GL_LIMITS_MIN count as the minimum
                 * (a padded hello and a bulk chunk must always fit). */
                struct {
                        const char *name;
                        uint32_t *field;
                        uint32_t min;
                } fields[] = {
                        { "max_frame_bytes", &h.limits.max_frame_bytes, GL_LIMITS_MIN.max_frame_bytes },
                        { "max_json_bytes", &h.limits.max_json_bytes, GL_LIMITS_MIN.max_json_bytes },
                        { "max_frame_attachment_bytes", &h.limits.max_frame_attachment_bytes,
                          GL_LIMITS_MIN.max_frame_attachment_bytes },
                        { "max_message_attachment_bytes", &h.limits.max_message_attachment_bytes,
                          GL_LIMITS_MIN.max_message_attachment_bytes },
                        { "max_json_depth", &h.limits.max_json_depth, GL_LIMITS_MIN.max_json_depth },
                        { "max_string_bytes", &h.limits.max_string_bytes, GL_LIMITS_MIN.max_string_bytes },
                };

                h.limits = GL_LIMITS_DEFAULT;
                for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
                        if (get_uint(lim, fields[i].name, 0, UINT32_MAX, &v) == 1)
                                *fields[i].field = v < fields[i].min ? fields[i].min : (uint32_t) v;
                h.have_limits = true;
        }
        *ret = h;
        return 0;
}

uint32_t gl_hello_negotiate(uint32_t a_min, uint32_t a_max, uint32_t b_min, uint32_t b_max) {
        uint32_t lo = a_min > b_min ? a_min : b_min;
        uint32_t hi = a_max < b_max ? a_max : b_max;

        return lo <= hi ? hi : 0;
}
