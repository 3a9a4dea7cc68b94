/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * GlBridge: the guestlink-bridge daemon's one object.  It holds every
 * guest (static ones from bridge.conf, libvirt domains found on the
 * configured connections, domains announced by the libvirt hook), the
 * control socket and its clients, the event ring that feeds subscribers and
 * hooks, and the optional metrics endpoint.
 */
#include <glib.h>

#include "bridge-conf.h"

typedef struct GlBridge GlBridge;

/* Takes ownership of config. */
GlBridge *gl_bridge_new(GlBridgeConfig *config);
GlBridge *gl_bridge_free(GlBridge *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlBridge, gl_bridge_free)

/* Binds the control socket, starts static guests, libvirt discovery,
 * metrics.  Fails only for what the bridge cannot run without (the control
 * socket); everything else is logged and retried. */
gboolean gl_bridge_start(GlBridge *b, GError **error);

/* Applies a configuration loaded again (takes ownership): static guests
 * added, removed or changed, intervals (guests are subscribed again),
 * history, timeouts, the memory, error and penalty limits, hooks.  The
 * control socket, libvirt and metrics settings, and the throttles and frame
 * limits of existing guests change only at a restart (logged). */
void gl_bridge_reload(GlBridge *b, GlBridgeConfig *config);
