/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The bridge's libvirt side: which running domains have a guestlink channel,
 * when they start and stop, and a GlLink to each.
 *
 * GlLibvirt keeps one read-write connection (virDomainOpenChannel needs one)
 * and runs entirely from the thread-default GMainContext: it calls
 * gvir_event_register() (libvirt-glib, idempotent) so that libvirt's events,
 * keepalives and streams are driven by the process's one GMainLoop.
 *
 * Discovery: every running domain whose live XML has
 *     <channel type='unix'><source path='...'/><target type='virtio' name='CHANNEL'/></channel>
 * is reported through domain_started(); a domain that stops (shutdown,
 * destroy, crash), or loses the channel, through domain_stopped().  The
 * first scan runs from the main loop shortly after gl_libvirt_new(), never
 * from inside it.
 *
 * Reconnects: when the connection closes (libvirtd restarted, keepalive
 * timeout) GlLibvirt reconnects with a backoff of 1 s doubling to 30 s, then
 * lists all running domains again: each one with the channel is reported
 * through domain_started() again (links over libvirt streams of the old
 * connection are dead by then: a known uuid reported again means "open a new
 * link"), and each one reported before that is gone gets domain_stopped().
 *
 * Callbacks must not free the GlLibvirt; they may call gl_libvirt_open_link()
 * and gl_libvirt_rescan().
 *
 * The process must ignore SIGPIPE (as libvirt asks of its clients): libvirt
 * and socket links write to sockets whose peer may just have gone away
 * (a restarted libvirtd, a stopped qemu).
 */
#include <gio/gio.h>
#include <stdbool.h>

#include "link.h"

#define GL_LIBVIRT_DEFAULT_URI "qemu:///system"
#define GL_LIBVIRT_DEFAULT_CHANNEL "org.guestlink.agent.0"

/* Reconnect backoff: first retry after the minimum, doubling to the maximum. */
#define GL_LIBVIRT_RECONNECT_MIN_MS 1000u
#define GL_LIBVIRT_RECONNECT_MAX_MS 30000u
/* virConnectSetKeepAlive(): a probe every interval, dead after count misses. */
#define GL_LIBVIRT_KEEPALIVE_INTERVAL_S 5
#define GL_LIBVIRT_KEEPALIVE_COUNT 3u

/* GError domain of this file; codes are libvirt's virErrorNumber values
 * (0 for errors of our own, e.g. bad arguments). */
#define GL_LIBVIRT_ERROR (gl_libvirt_error_quark())
GQuark gl_libvirt_error_quark(void);

typedef struct GlLibvirt GlLibvirt;

typedef struct GlLibvirtDomain {
        char *uuid;          /* lowercase, 36 characters */
        char *name;          /* libvirt's domain name */
        char *uri;           /* the connection's canonical URI (virConnectGetURI) */
        char *channel_path;  /* <source path='...'/> of the channel, or NULL */
        char *channel_alias; /* <alias name='channel0'/>, or NULL */
        bool local;          /* the URI names this host: no hostname, or the unix transport */
} GlLibvirtDomain;

typedef struct GlLibvirtCallbacks {
        /* A running domain with the channel (again, after a reconnect).  d is
         * valid only during the call: copy what you keep. */
        void (*domain_started)(GlLibvirt *lv, const GlLibvirtDomain *d, void *userdata);
        /* A domain reported before stopped or lost its channel. */
        void (*domain_stopped)(GlLibvirt *lv, const char *uuid, void *userdata);
        /* Optional: the connection to libvirtd came up (true) or went away. */
        void (*connection)(GlLibvirt *lv, bool connected, void *userdata);
} GlLibvirtCallbacks;

/* uri: NULL for GL_LIBVIRT_DEFAULT_URI; channel_name: NULL for
 * GL_LIBVIRT_DEFAULT_CHANNEL.  Never fails for lack of libvirtd: it keeps
 * trying to connect (logging each failure). */
GlLibvirt *gl_libvirt_new(const char *uri, const char *channel_name, const GlLibvirtCallbacks *cb, void *userdata);
GlLibvirt *gl_libvirt_free(GlLibvirt *lv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlLibvirt, gl_libvirt_free)

bool gl_libvirt_connected(const GlLibvirt *lv);
/* The canonical URI of the current connection, or NULL while disconnected. */
const char *gl_libvirt_uri(const GlLibvirt *lv);
/* A domain currently reported as started, or NULL.  Valid until the next
 * return to the main loop. */
const GlLibvirtDomain *gl_libvirt_lookup(const GlLibvirt *lv, const char *uuid);

/* Looks at one domain again (e.g. the libvirt hook said it started): reports
 * it as started if it runs with the channel and was not reported yet, or as
 * stopped if it was reported and no longer runs with it.  Returns 0, or a
 * negative errno when not connected or libvirt failed (logged). */
int gl_libvirt_rescan(GlLibvirt *lv, const char *uuid);

/*
 * A link to the guest's channel.  With prefer_local, a local domain's
 * channel socket is connected directly (kind "socket"); otherwise, or when
 * that connect fails, the channel is opened through libvirt with
 * virDomainOpenChannel(VIR_DOMAIN_CHANNEL_FORCE) on a non-blocking stream
 * (kind "libvirt-stream"; FORCE takes the channel over from any other stream
 * opener, whose stream then fails).  The domain must have been reported.
 * QEMU serves one client per channel socket: a direct connect succeeds even
 * while another client holds the channel, but is served only after it
 * leaves, so only one component (the bridge) should use prefer_local.
 * Returns 0 and *ret_link, or a negative errno with error set.
 */
int gl_libvirt_open_link(GlLibvirt *lv, const char *uuid, bool prefer_local, GlLink **ret_link,
                         GError **error) G_GNUC_WARN_UNUSED_RESULT;

/* --- synchronous helpers (for the CLI) -------------------------------------
 * Each opens its own connection (uri NULL: GL_LIBVIRT_DEFAULT_URI) and
 * closes it before returning; domain may be a name or a UUID.  Return a
 * negative errno with error set on failure. */

/* A "libvirt-stream" link to domain's channel (channel_name NULL: the
 * default).  The link keeps the connection open until it is freed; the
 * calling thread must run a GMainLoop on its thread-default context for the
 * link to move data (gvir_event_register() is called here). */
int gl_libvirt_connect_channel(const char *uri, const char *domain, const char *channel_name, GlLink **ret_link,
                               GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* mode: "acpi" (virDomainShutdownFlags with the ACPI power button) or
 * "destroy" (virDomainDestroy). */
int gl_libvirt_stop_domain(const char *uri, const char *domain, const char *mode,
                           GError **error) G_GNUC_WARN_UNUSED_RESULT;
/* 1 active, 0 not running or no such domain, < 0 error. */
int gl_libvirt_domain_active(const char *uri, const char *domain, GError **error) G_GNUC_WARN_UNUSED_RESULT;
