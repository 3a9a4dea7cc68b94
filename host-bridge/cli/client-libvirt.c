/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --connect: the agent's channel through libvirt (virDomainOpenChannel). */
#include <errno.h>

#include "client.h"
#include "libvirt.h"

int client_libvirt_open_link(const char *uri, const char *domain, GlLink **ret_link, GError **error) {
        g_autoptr(GError) e = NULL;
        int r;

        r = gl_libvirt_connect_channel(uri, domain, GL_LIBVIRT_DEFAULT_CHANNEL, ret_link, &e);
        if (r < 0) {
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_CONNECT, "cannot open the channel %s of %s at %s: %s",
                            GL_LIBVIRT_DEFAULT_CHANNEL, domain, uri, e ? e->message : g_strerror(-r));
                return r;
        }
        return 0;
}
