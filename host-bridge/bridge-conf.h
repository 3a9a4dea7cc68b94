/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* /etc/guestlink/bridge.conf (GKeyFile); see host-bridge/data/bridge.conf. */
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "frame.h"

#define GL_BRIDGE_CONFIG_FILE GL_SYSCONFDIR "/guestlink/bridge.conf"
#define GL_BRIDGE_SOCKET "/run/guestlink/bridge.sock"
#define GL_AGENT_CHANNEL "org.guestlink.agent.0"

typedef enum GlStaticMode {
        GL_STATIC_CONNECT, /* QEMU listens (server=on); the bridge connects and reconnects */
        GL_STATIC_LISTEN,  /* the bridge listens; QEMU connects (reconnect=N) */
} GlStaticMode;

typedef struct GlStaticGuest {
        char *name;
        char *uuid; /* optional */
        char *socket;
        GlStaticMode mode;
} GlStaticGuest;

/* Everything a guest can make the bridge spend, by name (bridge-conf.c
 * documents the defaults, guestlink-bridge(8) the behaviour). */
typedef struct GlGuestLimits {
        GlLimits frame;                  /* receive limits of a guest session */
        uint64_t max_frames_per_second;  /* beyond: reading paused for the second */
        uint64_t max_bytes_per_second;   /* beyond: reading paused for the second */
        uint64_t max_memory_bytes;       /* cached info/stats/history per guest */
        uint64_t max_protocol_errors;    /* per minute; beyond: disconnected for a while */
        uint32_t max_requests_in_flight; /* bridge -> agent requests, each direction */
        uint64_t penalty_ms;             /* how long a guest that broke a limit stays disconnected */
} GlGuestLimits;

typedef struct GlBridgeConfig {
        char *control_socket;
        char *control_group; /* may be NULL: no chgrp */
        unsigned max_clients;
        bool libvirt_enabled;
        char **libvirt_uris; /* NULL-terminated */
        char *channel;
        bool prefer_local;
        unsigned stats_interval_seconds; /* 0: no stats subscription */
        unsigned stats_history;          /* samples kept per guest */
        unsigned heartbeat_interval_seconds;
        uint64_t request_timeout_ms; /* default for bridge.call */
        GlGuestLimits limits;
        bool metrics_enabled;
        char *metrics_listen;
        char *hooks_directory;
        unsigned hooks_timeout_seconds;
        unsigned hooks_max_running;
        GPtrArray *static_guests; /* GlStaticGuest* */
} GlBridgeConfig;

GlBridgeConfig *gl_bridge_config_new(void); /* defaults */
GlBridgeConfig *gl_bridge_config_free(GlBridgeConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlBridgeConfig, gl_bridge_config_free)

/* Loads path over the defaults; see gl_agent_config_load() for the rules. */
gboolean gl_bridge_config_load(GlBridgeConfig *c, const char *path, gboolean required, GPtrArray *warnings,
                               GError **error);

/* Whether a guest name is acceptable: 1..64 bytes of A-Z a-z 0-9 . _ -,
 * not starting with '.' (it is used in file names and metrics labels). */
bool gl_guest_name_valid(const char *name);
