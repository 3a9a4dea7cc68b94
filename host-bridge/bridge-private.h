/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the files of the bridge object: bridge.c (guests, events),
 * bridge-control.c (the control socket), bridge-libvirt.c (discovery). */
#include <json-c/json.h>
#include <sys/types.h>

#include "bridge.h"
#include "guest.h"
#include "hooks.h"
#include "metrics.h"
#include "peer.h"

#define BRIDGE_EVENT_RING 1000

typedef struct BridgeClient BridgeClient;

struct GlBridge {
        GlBridgeConfig *config;
        char *instance;
        int64_t start_unix_us;

        GHashTable *guests_by_name; /* name -> GlGuest* (owned) */
        GHashTable *guests_by_uuid; /* uuid -> GlGuest* (borrowed) */
        GPtrArray *listeners;       /* static listen-mode guests: BridgeListener* */

        int control_fd;
        GSource *control_source;
        GHashTable *clients; /* serial -> BridgeClient* (owned) */
        uint64_t next_client_serial;
        guint reap_id;

        GHashTable *calls; /* tag -> BridgeCall* (forwarded requests) */
        uint64_t next_call_tag;

        GQueue events; /* char* JSON text of the last BRIDGE_EVENT_RING events */

        GPtrArray *libvirt; /* per URI, owned by bridge-libvirt.c; may be NULL */
        GlHooks *hooks;
        GlMetrics *metrics;         /* when enabled */
        GPtrArray *metrics_scratch; /* parsed stats of the scrape being served */
        guint metrics_scratch_id;

        uint64_t events_dropped; /* not delivered to a slow client */
};

/* bridge.c */
GlGuest *bridge_find_guest(GlBridge *b, const char *name_or_uuid);
/* Takes ownership of opener_data (freed with opener_data_free, may be NULL). */
GlGuest *bridge_add_guest(GlBridge *b, const char *name, const char *uuid, const char *source, const char *uri,
                          GlGuestOpener opener, void *opener_data, GDestroyNotify opener_data_free);
void bridge_remove_guest(GlBridge *b, GlGuest *g);
/* Every guest, sorted by name (borrowed pointers). */
GPtrArray *bridge_sorted_guests(GlBridge *b);
void bridge_emit(GlBridge *b, GlGuest *g, const char *kind, json_object *data);

/* bridge-control.c */
gboolean bridge_control_start(GlBridge *b, GError **error);
void bridge_control_stop(GlBridge *b);
void bridge_control_broadcast(GlBridge *b, GlGuest *g, const char *kind, json_object *event);
void bridge_control_answer(GlBridge *b, uint64_t tag, const GlMessage *answer);

/* bridge-libvirt.c */
void bridge_libvirt_start(GlBridge *b);
void bridge_libvirt_stop(GlBridge *b);
/* From the libvirt hook (bridge.domain). */
void bridge_libvirt_domain_event(GlBridge *b, const char *name, const char *uuid, const char *operation,
                                 const char *channel_path);
