/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The HELLO payload (PROTOCOL.md, "Handshake"). */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "frame.h"

#define GL_PROTOCOL_VERSION_MIN 1
#define GL_PROTOCOL_VERSION_MAX 1

#define GL_HELLO_MAX_CAPABILITIES 64
#define GL_HELLO_MAX_ID_LEN 64 /* instance, boot_id, ack_instance */

typedef struct GlHello {
        const char *type;     /* "hello"; NULL when building */
        const char *role;     /* "agent", "bridge", "client", ... */
        const char *software; /* free text, e.g. "guestlink-agent 0.1.0" */
        const char *instance; /* required, 1..64 characters */
        const char *boot_id;  /* optional */
        uint32_t min_version, max_version;
        const char *capabilities[GL_HELLO_MAX_CAPABILITIES];
        unsigned n_capabilities;
        uint64_t nonce;           /* >= 1 */
        uint64_t echo;            /* the peer nonce this answers, 0 = none */
        const char *ack_instance; /* whose frames the header's ack counts; may be NULL */
        uint64_t tx_first;        /* first sequence number the sender will (re)send, >= 1 */
        GlLimits limits;          /* the sender's receive limits, if have_limits */
        bool have_limits;
} GlHello;

/* Serialises a hello; NULL on ENOMEM. */
json_object *gl_hello_to_json(const GlHello *h);

/*
 * Reads a hello from root (borrowed; the strings in *ret point into it).
 * Unknown members are ignored, capabilities beyond the limit and non-string
 * entries are skipped.  Returns 0, or -EINVAL with a static reason.
 */
int gl_hello_from_json(json_object *root, GlHello *ret, const char **ret_reason);

/* Highest common version of two ranges, or 0 if they do not overlap. */
uint32_t gl_hello_negotiate(uint32_t a_min, uint32_t a_max, uint32_t b_min, uint32_t b_max);
