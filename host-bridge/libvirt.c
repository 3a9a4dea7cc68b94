/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GlLibvirt: domain discovery, lifecycle events and channel links through
 * libvirt (see libvirt.h).  Everything runs from the thread-default
 * GMainContext of the caller of gl_libvirt_new().
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvirt-private.h"
#include "log.h"

struct GlLibvirt {
        char *uri; /* as asked for */
        char *channel_name;
        GlLibvirtCallbacks cb;
        void *userdata;
        GMainContext *ctx;

        virConnectPtr conn;
        char *conn_uri; /* canonical, while connected */
        bool local;
        int lifecycle_id, device_added_id, device_removed_id;
        bool close_registered;

        GHashTable *domains; /* uuid -> GlLibvirtDomain*, the ones reported started */
        GSource *connect_timer;
        GSource *closed_idle;
        unsigned backoff_ms;
};

static void domain_free(gpointer data) {
        GlLibvirtDomain *d = data;

        if (!d)
                return;
        g_free(d->uuid);
        g_free(d->name);
        g_free(d->uri);
        g_free(d->channel_path);
        g_free(d->channel_alias);
        g_free(d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlLibvirtDomain, domain_free)

static bool domain_equal(const GlLibvirtDomain *a, const GlLibvirtDomain *b) {
        return g_strcmp0(a->name, b->name) == 0 && g_strcmp0(a->uri, b->uri) == 0 &&
               g_strcmp0(a->channel_path, b->channel_path) == 0 && g_strcmp0(a->channel_alias, b->channel_alias) == 0 &&
               a->local == b->local;
}

/* "No hostname, or the unix transport": qemu:///system, qemu+unix:///system. */
static bool uri_is_local(const char *uri) {
        g_autoptr(GUri) u = g_uri_parse(uri, G_URI_FLAGS_NON_DNS, NULL);
        const char *host, *scheme;

        if (!u)
                return false;
        host = g_uri_get_host(u);
        scheme = g_uri_get_scheme(u);
        return !host || !*host || (scheme && g_str_has_suffix(scheme, "+unix"));
}

/* --- the live XML ------------------------------------------------------- */

typedef struct XmlChannel {
        const char *want; /* channel name */
        int depth;        /* element depth; <domain> is 1 */
        bool in_channel;  /* inside /domain/devices/channel */
        bool in_devices;
        char *type, *path, *target_type, *target_name, *alias;
        bool found;
        char *found_path, *found_alias;
} XmlChannel;

static const char *attr(const char **names, const char **values, const char *name) {
        for (size_t i = 0; names[i]; i++)
                if (strcmp(names[i], name) == 0)
                        return values[i];
        return NULL;
}

static void xml_start(GMarkupParseContext *ctx, const char *element, const char **names, const char **values,
                      gpointer userdata, GError **error) {
        XmlChannel *x = userdata;

        (void) ctx;
        (void) error;
        x->depth++;
        if (x->depth == 2 && strcmp(element, "devices") == 0)
                x->in_devices = true;
        else if (x->in_devices && x->depth == 3 && strcmp(element, "channel") == 0) {
                x->in_channel = true;
                x->type = g_strdup(attr(names, values, "type"));
        } else if (x->in_channel && x->depth == 4) {
                if (strcmp(element, "source") == 0 && !x->path)
                        x->path = g_strdup(attr(names, values, "path"));
                else if (strcmp(element, "target") == 0) {
                        g_free(x->target_type);
                        g_free(x->target_name);
                        x->target_type = g_strdup(attr(names, values, "type"));
                        x->target_name = g_strdup(attr(names, values, "name"));
                } else if (strcmp(element, "alias") == 0) {
                        g_free(x->alias);
                        x->alias = g_strdup(attr(names, values, "name"));
                }
        }
}

static void xml_end(GMarkupParseContext *ctx, const char *element, gpointer userdata, GError **error) {
        XmlChannel *x = userdata;

        (void) ctx;
        (void) error;
        if (x->in_channel && x->depth == 3 && strcmp(element, "channel") == 0) {
                if (!x->found && g_strcmp0(x->type, "unix") == 0 && g_strcmp0(x->target_type, "virtio") == 0 &&
                    g_strcmp0(x->target_name, x->want) == 0) {
                        x->found = true;
                        x->found_path = g_steal_pointer(&x->path);
                        x->found_alias = g_steal_pointer(&x->alias);
                }
                g_clear_pointer(&x->type, g_free);
                g_clear_pointer(&x->path, g_free);
                g_clear_pointer(&x->target_type, g_free);
                g_clear_pointer(&x->target_name, g_free);
                g_clear_pointer(&x->alias, g_free);
                x->in_channel = false;
        } else if (x->depth == 2 && strcmp(element, "devices") == 0)
                x->in_devices = false;
        x->depth--;
}

/* Finds the unix channel with virtio target @name in a domain's XML.
 * Returns 1 (found; paths may be NULL), 0 (none) or -EBADMSG. */
static int xml_find_channel(const char *xml, const char *name, char **ret_path, char **ret_alias) {
        static const GMarkupParser parser = { .start_element = xml_start, .end_element = xml_end };
        XmlChannel x = { .want = name };
        g_autoptr(GMarkupParseContext) ctx = g_markup_parse_context_new(&parser, 0, &x, NULL);
        g_autoptr(GError) error = NULL;
        int r;

        if (!g_markup_parse_context_parse(ctx, xml, -1, &error) || !g_markup_parse_context_end_parse(ctx, &error)) {
                gl_log(LOG_DEBUG, "Bad domain XML: %s", error->message);
                r = -EBADMSG;
        } else if (x.found) {
                *ret_path = g_steal_pointer(&x.found_path);
                *ret_alias = g_steal_pointer(&x.found_alias);
                r = 1;
        } else
                r = 0;
        g_free(x.type);
        g_free(x.path);
        g_free(x.target_type);
        g_free(x.target_name);
        g_free(x.alias);
        g_free(x.found_path);
        g_free(x.found_alias);
        return r;
}

/* A running domain with our channel, or NULL (logged when libvirt failed). */
static GlLibvirtDomain *describe(GlLibvirt *lv, virDomainPtr dom) {
        char uuid[VIR_UUID_STRING_BUFLEN];
        g_autofree char *xml = NULL, *path = NULL, *alias = NULL;
        g_autoptr(GlLibvirtDomain) d = NULL;
        const char *name = virDomainGetName(dom);
        int r;

        if (virDomainGetUUIDString(dom, uuid) < 0) {
                gl_log(LOG_WARNING, "Failed to get the UUID of domain %s: %s, ignoring", name ? name : "?",
                       virGetLastErrorMessage());
                virResetLastError();
                return NULL;
        }
        xml = virDomainGetXMLDesc(dom, 0);
        if (!xml) {
                /* it may just have stopped */
                gl_log_guest(LOG_DEBUG, name, uuid, "Failed to get the XML of domain %s: %s, ignoring", name,
                             virGetLastErrorMessage());
                virResetLastError();
                return NULL;
        }
        r = xml_find_channel(xml, lv->channel_name, &path, &alias);
        if (r < 0)
                gl_log_guest(LOG_WARNING, name, uuid, "Cannot parse the XML of domain %s, ignoring", name);
        if (r <= 0)
                return NULL;
        d = g_new0(GlLibvirtDomain, 1);
        d->uuid = g_ascii_strdown(uuid, -1);
        d->name = g_strdup(name);
        d->uri = g_strdup(lv->conn_uri);
        d->channel_path = g_steal_pointer(&path);
        d->channel_alias = g_steal_pointer(&alias);
        d->local = lv->local;
        return g_steal_pointer(&d);
}

/* Takes ownership of d. */
static void report_started(GlLibvirt *lv, GlLibvirtDomain *d) {
        gl_log_guest(LOG_INFO, d->name, d->uuid, "Domain %s runs with channel %s (%s)", d->name, lv->channel_name,
                     d->channel_path ? d->channel_path : "no socket path");
        g_hash_table_replace(lv->domains, d->uuid, d);
        if (lv->cb.domain_started)
                lv->cb.domain_started(lv, d, lv->userdata);
}

static void report_stopped(GlLibvirt *lv, const char *uuid) {
        g_autoptr(GlLibvirtDomain) d = NULL;
        gpointer key; /* d->uuid */

        if (!g_hash_table_steal_extended(lv->domains, uuid, &key, (gpointer *) &d))
                return;
        gl_log_guest(LOG_INFO, d->name, d->uuid, "Domain %s stopped or lost its channel", d->name);
        if (lv->cb.domain_stopped)
                lv->cb.domain_stopped(lv, d->uuid, lv->userdata);
}

/* Looks at one domain; reports what changed.  Only `force` reports a
 * domain that is already known with the same details again. */
static int rescan_domain(GlLibvirt *lv, virDomainPtr dom, bool force) {
        char uuid_raw[VIR_UUID_STRING_BUFLEN];
        g_autofree char *uuid = NULL;
        g_autoptr(GlLibvirtDomain) d = NULL;
        const GlLibvirtDomain *old;
        int active;

        if (virDomainGetUUIDString(dom, uuid_raw) < 0) {
                virResetLastError();
                return -EIO;
        }
        uuid = g_ascii_strdown(uuid_raw, -1);
        active = virDomainIsActive(dom);
        if (active < 0)
                virResetLastError(); /* gone meanwhile */
        if (active > 0)
                d = describe(lv, dom);
        old = g_hash_table_lookup(lv->domains, uuid);
        if (!d) {
                report_stopped(lv, uuid);
                return 0;
        }
        if (old && !force && domain_equal(old, d))
                return 0;
        report_started(lv, g_steal_pointer(&d));
        return 0;
}

int gl_libvirt_rescan(GlLibvirt *lv, const char *uuid) {
        virDomainPtr dom;
        int r;

        if (!lv->conn)
                return -ENOTCONN;
        dom = virDomainLookupByUUIDString(lv->conn, uuid);
        if (!dom) {
                const virError *e = virGetLastError();

                if (e && e->code == VIR_ERR_NO_DOMAIN) {
                        virResetLastError();
                        report_stopped(lv, uuid);
                        return 0;
                }
                r = libvirt_set_error(NULL, "lookup");
                gl_log(LOG_WARNING, "Failed to look up domain %s, ignoring", uuid);
                return r;
        }
        r = rescan_domain(lv, dom, false);
        virDomainFree(dom);
        return r;
}

/* Lists every running domain: reports each with the channel (again), and
 * each reported domain that is no longer there as stopped. */
static void scan_all(GlLibvirt *lv) {
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
        virDomainPtr *doms = NULL;
        GHashTableIter it;
        gpointer key;
        int n;

        n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
        if (n < 0) {
                gl_log(LOG_WARNING, "Failed to list the domains of %s: %s, ignoring", lv->conn_uri,
                       virGetLastErrorMessage());
                virResetLastError();
                return;
        }
        for (int i = 0; i < n; i++) {
                char uuid[VIR_UUID_STRING_BUFLEN];

                if (virDomainGetUUIDString(doms[i], uuid) == 0)
                        g_hash_table_add(seen, g_ascii_strdown(uuid, -1));
                else
                        virResetLastError();
                (void) rescan_domain(lv, doms[i], true);
                virDomainFree(doms[i]);
        }
        free(doms);
        g_hash_table_iter_init(&it, lv->domains);
        while (g_hash_table_iter_next(&it, &key, NULL))
                if (!g_hash_table_contains(seen, key))
                        g_ptr_array_add(gone, g_strdup(key));
        for (guint i = 0; i < gone->len; i++)
                report_stopped(lv, gone->pdata[i]);
}

/* --- events --------------------------------------------------------------- */

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
        GlLibvirt *lv = opaque;

        (void) conn;
        (void) detail;
        switch (event) {
        case VIR_DOMAIN_EVENT_STARTED:
        case VIR_DOMAIN_EVENT_STOPPED:
        case VIR_DOMAIN_EVENT_UNDEFINED:
                /* a stopped domain reports no channel; a started one shows it
                 * in its live XML already */
                (void) rescan_domain(lv, dom, false);
                break;
        default:
                break;
        }
        return 0;
}

static void on_device(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque) {
        GlLibvirt *lv = opaque;

        (void) conn;
        (void) alias;
        (void) rescan_domain(lv, dom, false); /* the channel may have been hot-plugged or removed */
}

static void schedule_connect(GlLibvirt *lv, unsigned delay_ms);

static void disconnect(GlLibvirt *lv) {
        if (!lv->conn)
                return;
        if (lv->lifecycle_id >= 0 && virConnectDomainEventDeregisterAny(lv->conn, lv->lifecycle_id) < 0)
                virResetLastError();
        if (lv->device_added_id >= 0 && virConnectDomainEventDeregisterAny(lv->conn, lv->device_added_id) < 0)
                virResetLastError();
        if (lv->device_removed_id >= 0 && virConnectDomainEventDeregisterAny(lv->conn, lv->device_removed_id) < 0)
                virResetLastError();
        lv->lifecycle_id = lv->device_added_id = lv->device_removed_id = -1;
        if (lv->close_registered) {
                if (virConnectUnregisterCloseCallback(lv->conn, NULL) < 0)
                        virResetLastError();
                lv->close_registered = false;
        }
        virConnectClose(lv->conn);
        lv->conn = NULL;
        g_clear_pointer(&lv->conn_uri, g_free);
}

static gboolean closed_idle_cb(gpointer userdata) {
        GlLibvirt *lv = userdata;

        g_clear_pointer(&lv->closed_idle, g_source_unref);
        gl_log(LOG_WARNING, "Lost the connection to %s, reconnecting", lv->conn_uri ? lv->conn_uri : lv->uri);
        disconnect(lv);
        if (lv->cb.connection)
                lv->cb.connection(lv, false, lv->userdata);
        lv->backoff_ms = GL_LIBVIRT_RECONNECT_MIN_MS;
        schedule_connect(lv, lv->backoff_ms);
        return G_SOURCE_REMOVE;
}

static void on_close(virConnectPtr conn, int reason, void *opaque) {
        GlLibvirt *lv = opaque;
        static const char *const reasons[] = {
                [VIR_CONNECT_CLOSE_REASON_ERROR] = "error",
                [VIR_CONNECT_CLOSE_REASON_EOF] = "end of file",
                [VIR_CONNECT_CLOSE_REASON_KEEPALIVE] = "keepalive timeout",
                [VIR_CONNECT_CLOSE_REASON_CLIENT] = "closed by us",
        };

        (void) conn;
        gl_log(LOG_DEBUG, "Connection to %s closed: %s", lv->conn_uri ? lv->conn_uri : lv->uri,
               reason >= 0 && (size_t) reason < G_N_ELEMENTS(reasons) ? reasons[reason] : "unknown reason");
        /* not from inside libvirt's callback: it still uses the connection */
        if (lv->closed_idle || reason == VIR_CONNECT_CLOSE_REASON_CLIENT)
                return;
        lv->closed_idle = g_idle_source_new();
        g_source_set_callback(lv->closed_idle, closed_idle_cb, lv, NULL);
        g_source_set_static_name(lv->closed_idle, "gl-libvirt-closed");
        g_source_attach(lv->closed_idle, lv->ctx);
}

static int try_connect(GlLibvirt *lv, GError **error) {
        g_autofree char *uri = NULL;

        lv->conn = virConnectOpen(lv->uri);
        if (!lv->conn)
                return libvirt_set_error(error, "virConnectOpen");
        uri = virConnectGetURI(lv->conn);
        if (!uri)
                virResetLastError();
        lv->conn_uri = g_strdup(uri ? uri : lv->uri);
        lv->local = uri_is_local(lv->conn_uri);
        if (virConnectSetKeepAlive(lv->conn, GL_LIBVIRT_KEEPALIVE_INTERVAL_S, GL_LIBVIRT_KEEPALIVE_COUNT) < 0) {
                gl_log(LOG_WARNING, "Failed to enable keepalive on %s: %s, ignoring", lv->conn_uri,
                       virGetLastErrorMessage());
                virResetLastError();
        }
        if (virConnectRegisterCloseCallback(lv->conn, on_close, lv, NULL) < 0) {
                gl_log(LOG_WARNING, "Failed to watch the connection to %s: %s, ignoring", lv->conn_uri,
                       virGetLastErrorMessage());
                virResetLastError();
        } else
                lv->close_registered = true;
        lv->lifecycle_id = virConnectDomainEventRegisterAny(lv->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                            VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), lv, NULL);
        if (lv->lifecycle_id < 0) {
                int r = libvirt_set_error(error, "virConnectDomainEventRegisterAny");
                disconnect(lv);
                return r;
        }
        lv->device_added_id = virConnectDomainEventRegisterAny(lv->conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
                                                               VIR_DOMAIN_EVENT_CALLBACK(on_device), lv, NULL);
        lv->device_removed_id = virConnectDomainEventRegisterAny(lv->conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                                                 VIR_DOMAIN_EVENT_CALLBACK(on_device), lv, NULL);
        if (lv->device_added_id < 0 || lv->device_removed_id < 0) {
                gl_log(LOG_WARNING, "Failed to watch device hot-plug on %s: %s, ignoring", lv->conn_uri,
                       virGetLastErrorMessage());
                virResetLastError();
        }
        return 0;
}

static gboolean connect_cb(gpointer userdata) {
        GlLibvirt *lv = userdata;
        g_autoptr(GError) error = NULL;

        g_clear_pointer(&lv->connect_timer, g_source_unref);
        if (try_connect(lv, &error) < 0) {
                gl_log(LOG_WARNING, "Failed to connect to %s: %s, retrying in %u s", lv->uri, error->message,
                       lv->backoff_ms / 1000);
                schedule_connect(lv, lv->backoff_ms);
                lv->backoff_ms = MIN(lv->backoff_ms * 2, GL_LIBVIRT_RECONNECT_MAX_MS);
                return G_SOURCE_REMOVE;
        }
        gl_log(LOG_INFO, "Connected to %s", lv->conn_uri);
        lv->backoff_ms = GL_LIBVIRT_RECONNECT_MIN_MS;
        if (lv->cb.connection)
                lv->cb.connection(lv, true, lv->userdata);
        if (lv->conn)
                scan_all(lv);
        return G_SOURCE_REMOVE;
}

static void schedule_connect(GlLibvirt *lv, unsigned delay_ms) {
        if (lv->connect_timer)
                return;
        lv->connect_timer = g_timeout_source_new(delay_ms);
        g_source_set_callback(lv->connect_timer, connect_cb, lv, NULL);
        g_source_set_static_name(lv->connect_timer, "gl-libvirt-connect");
        g_source_attach(lv->connect_timer, lv->ctx);
}

/* --- the object ----------------------------------------------------------- */

GlLibvirt *gl_libvirt_new(const char *uri, const char *channel_name, const GlLibvirtCallbacks *cb, void *userdata) {
        GlLibvirt *lv = g_new0(GlLibvirt, 1);

        libvirt_init();
        lv->uri = g_strdup(uri ? uri : GL_LIBVIRT_DEFAULT_URI);
        lv->channel_name = g_strdup(channel_name ? channel_name : GL_LIBVIRT_DEFAULT_CHANNEL);
        if (cb)
                lv->cb = *cb;
        lv->userdata = userdata;
        lv->ctx = g_main_context_ref_thread_default();
        lv->lifecycle_id = lv->device_added_id = lv->device_removed_id = -1;
        lv->domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, domain_free);
        lv->backoff_ms = GL_LIBVIRT_RECONNECT_MIN_MS;
        schedule_connect(lv, 0);
        return lv;
}

GlLibvirt *gl_libvirt_free(GlLibvirt *lv) {
        if (!lv)
                return NULL;
        if (lv->connect_timer) {
                g_source_destroy(lv->connect_timer);
                g_source_unref(lv->connect_timer);
        }
        if (lv->closed_idle) {
                g_source_destroy(lv->closed_idle);
                g_source_unref(lv->closed_idle);
        }
        disconnect(lv);
        g_hash_table_unref(lv->domains);
        g_main_context_unref(lv->ctx);
        g_free(lv->uri);
        g_free(lv->channel_name);
        g_free(lv);
        return NULL;
}

bool gl_libvirt_connected(const GlLibvirt *lv) {
        return lv->conn != NULL;
}

const char *gl_libvirt_uri(const GlLibvirt *lv) {
        return lv->conn ? lv->conn_uri : NULL;
}

const GlLibvirtDomain *gl_libvirt_lookup(const GlLibvirt *lv, const char *uuid) {
        g_autofree char *key = g_ascii_strdown(uuid, -1);

        return g_hash_table_lookup(lv->domains, key);
}

/* A connected socket to a local channel, or -errno. */
static int connect_local(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int gl_libvirt_open_link(GlLibvirt *lv, const char *uuid, bool prefer_local, GlLink **ret_link, GError **error) {
        const GlLibvirtDomain *d = gl_libvirt_lookup(lv, uuid);
        virDomainPtr dom;
        virStreamPtr stream;
        GlLink *link;
        int r;

        if (!d) {
                g_set_error(error, GL_LIBVIRT_ERROR, 0, "Domain %s is not running with channel %s", uuid,
                            lv->channel_name);
                return -ENOENT;
        }
        if (prefer_local && d->local && d->channel_path) {
                int fd = connect_local(d->channel_path);

                if (fd >= 0) {
                        gl_log_guest(LOG_DEBUG, d->name, d->uuid, "Connected to %s", d->channel_path);
                        *ret_link = gl_link_new_fd(fd);
                        return 0;
                }
                gl_log_guest(LOG_INFO, d->name, d->uuid, "Cannot connect to %s (%s), using a libvirt stream",
                             d->channel_path, g_strerror(-fd));
        }
        if (!lv->conn) {
                g_set_error(error, GL_LIBVIRT_ERROR, 0, "Not connected to %s", lv->uri);
                return -ENOTCONN;
        }
        dom = virDomainLookupByUUIDString(lv->conn, d->uuid);
        if (!dom)
                return libvirt_set_error(error, "Failed to look up the domain");
        stream = virStreamNew(lv->conn, VIR_STREAM_NONBLOCK);
        if (!stream) {
                r = libvirt_set_error(error, "Failed to create a stream");
                virDomainFree(dom);
                return r;
        }
        if (virDomainOpenChannel(dom, d->channel_alias ? d->channel_alias : lv->channel_name, stream,
                                 VIR_DOMAIN_CHANNEL_FORCE) < 0) {
                r = libvirt_set_error(error, "Failed to open the channel");
                virStreamFree(stream);
                virDomainFree(dom);
                return r;
        }
        virDomainFree(dom);
        link = link_libvirt_new(stream, error);
        if (!link)
                return -EIO;
        gl_log_guest(LOG_DEBUG, d->name, d->uuid, "Opened channel %s through %s", lv->channel_name, d->uri);
        *ret_link = link;
        return 0;
}
