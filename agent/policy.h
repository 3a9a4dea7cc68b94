/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the guest's administrator lets the host do, per request family.
 * OS-neutral (the Windows agent shares it).  There is no family for
 * running commands or writing files: the protocol has no such request.
 */
#include <stdbool.h>

typedef enum GlFamily {
        GL_FAMILY_PING, /* always allowed */
        GL_FAMILY_INFO,
        GL_FAMILY_STATS,
        GL_FAMILY_HEARTBEAT,
        GL_FAMILY_POWER,
        GL_FAMILY_LOCK,
        GL_FAMILY_LOGS,
        GL_FAMILY_CLIPBOARD,
        _GL_FAMILY_MAX,
        GL_FAMILY_INVALID = -1,
} GlFamily;

typedef struct GlPolicy {
        bool allow[_GL_FAMILY_MAX];
} GlPolicy;

/* Everything allowed: the default of a fresh install. */
void gl_policy_init(GlPolicy *p);
bool gl_policy_allows(const GlPolicy *p, GlFamily f);

const char *gl_family_to_string(GlFamily f);
GlFamily gl_family_from_string(const char *s);
/* The family of a method or event name: "power.request" -> power. */
GlFamily gl_family_of_method(const char *method);
