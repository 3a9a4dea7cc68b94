/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "policy.h"

static const char *const families[_GL_FAMILY_MAX] = {
        [GL_FAMILY_PING] = "ping",           [GL_FAMILY_INFO] = "info",           [GL_FAMILY_STATS] = "stats",
        [GL_FAMILY_HEARTBEAT] = "heartbeat", [GL_FAMILY_POWER] = "power",         [GL_FAMILY_LOCK] = "lock",
        [GL_FAMILY_LOGS] = "logs",           [GL_FAMILY_CLIPBOARD] = "clipboard",
};

void gl_policy_init(GlPolicy *p) {
        for (int f = 0; f < _GL_FAMILY_MAX; f++)
                p->allow[f] = true;
}

bool gl_policy_allows(const GlPolicy *p, GlFamily f) {
        if (f == GL_FAMILY_PING)
                return true;
        return f >= 0 && f < _GL_FAMILY_MAX && p->allow[f];
}

const char *gl_family_to_string(GlFamily f) {
        return f >= 0 && f < _GL_FAMILY_MAX ? families[f] : "invalid";
}

GlFamily gl_family_from_string(const char *s) {
        for (int f = 0; s && f < _GL_FAMILY_MAX; f++)
                if (strcmp(s, families[f]) == 0)
                        return (GlFamily) f;
        return GL_FAMILY_INVALID;
}

GlFamily gl_family_of_method(const char *method) {
        size_t n = strcspn(method, ".");

        for (int f = 0; f < _GL_FAMILY_MAX; f++)
                if (strlen(families[f]) == n && strncmp(method, families[f], n) == 0)
                        return (GlFamily) f;
        return GL_FAMILY_INVALID;
}
