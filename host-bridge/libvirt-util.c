/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt plumbing shared by GlLibvirt and the CLI: event loop and error
 * setup, errors as GErrors, and the synchronous helpers of libvirt.h.
 */
#include "config.h"

#include <errno.h>
#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/virterror.h>

#include "libvirt-private.h"

G_DEFINE_QUARK(gl - libvirt - error - quark, gl_libvirt_error)

static void libvirt_quiet(void *userdata, virErrorPtr err) {
        (void) userdata;
        (void) err; /* reported through virGetLastError() by the caller */
}

void libvirt_init(void) {
        /* both calls are idempotent: gvir_event_register() registers once per
         * process, virSetErrorFunc() just stores the same pointer again */
        gvir_event_register();
        virSetErrorFunc(NULL, libvirt_quiet);
}

static int libvirt_errno(const virError *e) {
        if (!e)
                return -EIO;
        switch (e->code) {
        case VIR_ERR_NO_DOMAIN:
                return -ENOENT;
        case VIR_ERR_NO_SUPPORT:
                return -EOPNOTSUPP;
        case VIR_ERR_INVALID_ARG:
        case VIR_ERR_INVALID_DOMAIN:
                return -EINVAL;
        case VIR_ERR_OPERATION_INVALID:
                return -ESRCH; /* e.g. the domain is not running */
        case VIR_ERR_OPERATION_DENIED:
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_ACCESS_DENIED:
                return -EACCES;
        case VIR_ERR_NO_CONNECT:
                return -ECONNREFUSED;
        case VIR_ERR_OPERATION_TIMEOUT:
        case VIR_ERR_AGENT_UNRESPONSIVE:
                return -ETIMEDOUT;
        case VIR_ERR_SYSTEM_ERROR:
                return e->int1 > 0 ? -e->int1 : -EIO;
        default:
                return -EIO;
        }
}

int libvirt_set_error(GError **error, const char *what) {
        const virError *e = virGetLastError();
        int r = libvirt_errno(e);

        g_set_error(error, GL_LIBVIRT_ERROR, e ? e->code : 0, "%s: %s", what,
                    e && e->message ? e->message : "unknown libvirt error");
        virResetLastError();
        return r;
}

virDomainPtr libvirt_lookup_domain(virConnectPtr conn, const char *domain) {
        virDomainPtr dom;

        /* a UUID-shaped name is first tried as a UUID */
        if (g_uuid_string_is_valid(domain)) {
                dom = virDomainLookupByUUIDString(conn, domain);
                if (dom)
                        return dom;
                virResetLastError();
        }
        return virDomainLookupByName(conn, domain);
}

static virConnectPtr open_conn(const char *uri, bool read_only, GError **error, int *ret_r) {
        virConnectPtr conn;

        libvirt_init();
        if (!uri)
                uri = GL_LIBVIRT_DEFAULT_URI;
        conn = read_only ? virConnectOpenReadOnly(uri) : virConnectOpen(uri);
        if (!conn) {
                g_autofree char *what = g_strdup_printf("Failed to connect to %s", uri);
                *ret_r = libvirt_set_error(error, what);
        }
        return conn;
}

static int check_args(const char *domain, GError **error) {
        if (!domain || !*domain) {
                g_set_error(error, GL_LIBVIRT_ERROR, 0, "No domain given");
                return -EINVAL;
        }
        return 0;
}

int gl_libvirt_connect_channel(const char *uri, const char *domain, const char *channel_name, GlLink **ret_link,
                               GError **error) {
        virConnectPtr conn;
        virDomainPtr dom = NULL;
        virStreamPtr stream = NULL;
        GlLink *link;
        int r;

        r = check_args(domain, error);
        if (r < 0)
                return r;
        if (!channel_name)
                channel_name = GL_LIBVIRT_DEFAULT_CHANNEL;
        conn = open_conn(uri, false, error, &r);
        if (!conn)
                return r;
        dom = libvirt_lookup_domain(conn, domain);
        if (!dom) {
                g_autofree char *what = g_strdup_printf("No domain %s", domain);
                r = libvirt_set_error(error, what);
                goto out;
        }
        stream = virStreamNew(conn, VIR_STREAM_NONBLOCK);
        if (!stream) {
                r = libvirt_set_error(error, "Failed to create a stream");
                goto out;
        }
        if (virDomainOpenChannel(dom, channel_name, stream, VIR_DOMAIN_CHANNEL_FORCE) < 0) {
                g_autofree char *what = g_strdup_printf("Failed to open channel %s of %s", channel_name, domain);
                r = libvirt_set_error(error, what);
                virStreamFree(stream);
                goto out;
        }
        link = link_libvirt_new(stream, error); /* takes the stream, which keeps conn alive */
        if (!link) {
                r = -EIO;
                goto out;
        }
        *ret_link = link;
        r = 0;
out:
        if (dom)
                virDomainFree(dom);
        virConnectClose(conn);
        return r;
}

int gl_libvirt_stop_domain(const char *uri, const char *domain, const char *mode, GError **error) {
        virConnectPtr conn;
        virDomainPtr dom;
        bool acpi;
        int r;

        r = check_args(domain, error);
        if (r < 0)
                return r;
        if (!mode || (!g_str_equal(mode, "acpi") && !g_str_equal(mode, "destroy"))) {
                g_set_error(error, GL_LIBVIRT_ERROR, 0, "Unknown stop mode '%s' (expected acpi or destroy)",
                            mode ? mode : "");
                return -EINVAL;
        }
        acpi = g_str_equal(mode, "acpi");
        conn = open_conn(uri, false, error, &r);
        if (!conn)
                return r;
        dom = libvirt_lookup_domain(conn, domain);
        if (!dom) {
                g_autofree char *what = g_strdup_printf("No domain %s", domain);
                r = libvirt_set_error(error, what);
        } else if ((acpi ? virDomainShutdownFlags(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) : virDomainDestroy(dom)) <
                   0) {
                g_autofree char *what = g_strdup_printf("Failed to %s %s", acpi ? "shut down" : "destroy", domain);
                r = libvirt_set_error(error, what);
        } else
                r = 0;
        if (dom)
                virDomainFree(dom);
        virConnectClose(conn);
        return r;
}

int gl_libvirt_domain_active(const char *uri, const char *domain, GError **error) {
        virConnectPtr conn;
        virDomainPtr dom;
        int r;

        r = check_args(domain, error);
        if (r < 0)
                return r;
        conn = open_conn(uri, true, error, &r);
        if (!conn)
                return r;
        dom = libvirt_lookup_domain(conn, domain);
        if (!dom) {
                const virError *e = virGetLastError();

                if (e && e->code == VIR_ERR_NO_DOMAIN) {
                        virResetLastError();
                        r = 0;
                } else {
                        g_autofree char *what = g_strdup_printf("Failed to look up %s", domain);
                        r = libvirt_set_error(error, what);
                }
        } else {
                r = virDomainIsActive(dom);
                if (r < 0) {
                        g_autofree char *what = g_strdup_printf("Failed to query %s", domain);
                        r = libvirt_set_error(error, what);
                }
                virDomainFree(dom);
        }
        virConnectClose(conn);
        return r;
}
