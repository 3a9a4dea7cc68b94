/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guests that are libvirt domains.  Two sources, which agree on the key
 * (the domain UUID):
 *   - discovery on each configured connection (GlLibvirt: lifecycle events,
 *     reconnects, links through the local socket or a libvirt stream);
 *   - the libvirt hook, which announces domain starts and stops
 *     (bridge.domain) without calling back into libvirt.  With a discovery
 *     connection the bridge looks at the domain again a little later; with
 *     none it attaches to the channel socket path the hook found in the
 *     domain XML.
 */
#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bridge-private.h"
#include "libvirt.h"
#include "log.h"

/* How long after a hook's "started" the bridge asks libvirt about the
 * domain: libvirt holds the domain's job while hooks run. */
#define HOOK_RESCAN_DELAY_MS 500

typedef struct DomainLink {
        GlBridge *bridge;
        GlLibvirt *lv;
        char *uuid;
} DomainLink;

static void domain_link_free(gpointer p) {
        DomainLink *d = p;

        g_free(d->uuid);
        g_free(d);
}

static GlLink *open_domain(GlGuest *g, void *data, GError **error) {
        DomainLink *d = data;
        GlLink *link = NULL;

        (void) g;
        if (gl_libvirt_open_link(d->lv, d->uuid, d->bridge->config->prefer_local, &link, error) < 0)
                return NULL;
        return link;
}

static void domain_started(GlLibvirt *lv, const GlLibvirtDomain *d, void *userdata) {
        GlBridge *b = userdata;
        GlGuest *g = bridge_find_guest(b, d->uuid);
        DomainLink *dl;

        if (g) {
                if (strcmp(gl_guest_source(g), "libvirt") != 0) {
                        gl_log(LOG_WARNING, "Domain %s (%s) has the UUID of static guest %s, ignoring", d->name,
                               d->uuid, gl_guest_name(g));
                        return;
                }
                /* reported again after a reconnect: streams of the old
                 * connection are dead, local sockets are not */
                gl_guest_restart(g, "libvirt-stream");
                return;
        }
        if (!gl_guest_name_valid(d->name) || bridge_find_guest(b, d->name)) {
                gl_log(LOG_WARNING, "Domain %s: its name is not usable as a guest name or is taken; using its UUID",
                       d->uuid);
                if (bridge_find_guest(b, d->uuid))
                        return;
        }
        dl = g_new0(DomainLink, 1);
        dl->bridge = b;
        dl->lv = lv;
        dl->uuid = g_strdup(d->uuid);
        g = bridge_add_guest(b, gl_guest_name_valid(d->name) && !bridge_find_guest(b, d->name) ? d->name : d->uuid,
                             d->uuid, "libvirt", d->uri, open_domain, dl, domain_link_free);
        gl_guest_start(g);
}

static void domain_stopped(GlLibvirt *lv, const char *uuid, void *userdata) {
        GlBridge *b = userdata;
        GlGuest *g = bridge_find_guest(b, uuid);

        (void) lv;
        if (!g || strcmp(gl_guest_source(g), "libvirt") != 0)
                return;
        gl_guest_stopped(g);
        bridge_remove_guest(b, g);
}

static void connection_changed(GlLibvirt *lv, bool connected, void *userdata) {
        (void) userdata;
        gl_log(connected ? LOG_INFO : LOG_WARNING, "libvirt %s: %s", gl_libvirt_uri(lv) ? gl_libvirt_uri(lv) : "",
               connected ? "connected" : "connection lost, reconnecting");
}

static void libvirt_free(gpointer lv) {
        gl_libvirt_free(lv);
}

void bridge_libvirt_start(GlBridge *b) {
        static const GlLibvirtCallbacks cb = {
                .domain_started = domain_started,
                .domain_stopped = domain_stopped,
                .connection = connection_changed,
        };

        b->libvirt = g_ptr_array_new_with_free_func(libvirt_free);
        for (char **u = b->config->libvirt_uris; u && *u; u++) {
                if (!**u)
                        continue;
                g_ptr_array_add(b->libvirt, gl_libvirt_new(*u, b->config->channel, &cb, b));
        }
}

void bridge_libvirt_stop(GlBridge *b) {
        g_clear_pointer(&b->libvirt, g_ptr_array_unref);
}

/* ---- the libvirt hook ---- */

static GlLink *open_path(GlGuest *g, void *data, GError **error) {
        const char *path = data;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        (void) g;
        if (!path || strlen(path) >= sizeof(sa.sun_path)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no usable channel path");
                return NULL;
        }
        memcpy(sa.sun_path, path, strlen(path));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s", path, g_strerror(e));
                return NULL;
        }
        return gl_link_new_fd(fd);
}

typedef struct Rescan {
        GlBridge *bridge;
        char *uuid;
} Rescan;

static void rescan_free(gpointer p) {
        Rescan *r = p;

        g_free(r->uuid);
        g_free(r);
}

static gboolean rescan_later(gpointer userdata) {
        Rescan *r = userdata;

        for (guint i = 0; r->bridge->libvirt && i < r->bridge->libvirt->len; i++)
                (void) gl_libvirt_rescan(r->bridge->libvirt->pdata[i], r->uuid);
        return G_SOURCE_REMOVE;
}

void bridge_libvirt_domain_event(GlBridge *b, const char *name, const char *uuid, const char *operation,
                                 const char *channel_path) {
        g_autofree char *lower = g_ascii_strdown(uuid, -1);
        GlGuest *g = bridge_find_guest(b, lower);
        bool discovery = b->libvirt && b->libvirt->len > 0;

        if (discovery) {
                Rescan *r = g_new0(Rescan, 1);
                r->bridge = b;
                r->uuid = g_strdup(lower);
                g_timeout_add_full(G_PRIORITY_DEFAULT, HOOK_RESCAN_DELAY_MS, rescan_later, r, rescan_free);
        }
        if (strcmp(operation, "stopped") == 0) {
                if (g && strcmp(gl_guest_source(g), "libvirt") == 0) {
                        gl_guest_stopped(g);
                        bridge_remove_guest(b, g);
                }
                return;
        }
        if (g || discovery)
                return;
        if (!channel_path || !gl_guest_name_valid(name) || bridge_find_guest(b, name)) {
                gl_log(LOG_INFO, "Domain %s started; not attaching (no channel path, bad or duplicate name)", lower);
                return;
        }
        g = bridge_add_guest(b, name, lower, "libvirt", NULL, open_path, g_strdup(channel_path), g_free);
        gl_guest_start(g);
}
