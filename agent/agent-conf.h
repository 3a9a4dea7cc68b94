/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* /etc/guestlink/agent.conf (GKeyFile); see agent/data/agent.conf. */
#include <glib.h>

#include "config.h"

#include "dispatch.h"
#include "policy.h"
#include "transport.h"

typedef struct GlAgentConfig {
        GlTransportType transport;
        char *port;   /* virtio-serial port name or device path */
        char *device; /* tty device */
        unsigned vsock_port;
        unsigned vsock_peer_cid; /* 2: the host */
        GlPolicy policy;
        GlDispatchLimits limits;
} GlAgentConfig;

#define GL_AGENT_CONFIG_FILE GL_SYSCONFDIR "/guestlink/agent.conf"

GlAgentConfig *gl_agent_config_new(void); /* defaults */
GlAgentConfig *gl_agent_config_free(GlAgentConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlAgentConfig, gl_agent_config_free)

/*
 * Loads path over the defaults.  A missing file (when !required) leaves the
 * defaults.  Invalid values are errors; unknown groups and keys are
 * reported through warnings (one line each) and ignored.
 */
gboolean gl_agent_config_load(GlAgentConfig *c, const char *path, gboolean required, GPtrArray *warnings,
                              GError **error);
