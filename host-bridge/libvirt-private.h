/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared between libvirt.c, libvirt-util.c and link-libvirt.c. */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "libvirt.h"

/* Prepares libvirt for a GMainLoop process: gvir_event_register() and no
 * error printing on stderr.  Idempotent. */
void libvirt_init(void);
/* Turns libvirt's last error into a GError ("what: message") and returns a
 * negative errno for it. */
int libvirt_set_error(GError **error, const char *what);
/* Looks a domain up by UUID string or name. */
virDomainPtr libvirt_lookup_domain(virConnectPtr conn, const char *domain);

/* A GlLink of kind "libvirt-stream" over an opened VIR_STREAM_NONBLOCK
 * stream.  Takes ownership of stream, also on failure (NULL with error). */
GlLink *link_libvirt_new(virStreamPtr stream, GError **error);
