/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "agent-conf.h"

GlAgentConfig *gl_agent_config_new(void) {
        GlAgentConfig *c = g_new0(GlAgentConfig, 1);

        c->transport = GL_TRANSPORT_VIRTIO_SERIAL;
        c->port = g_strdup("org.guestlink.agent.0");
        c->device = g_strdup("/dev/ttyS1");
        c->vsock_port = 5701;
        c->vsock_peer_cid = 2; /* VMADDR_CID_HOST */
        gl_policy_init(&c->policy);
        c->limits = GL_DISPATCH_LIMITS_DEFAULT;
        return c;
}

GlAgentConfig *gl_agent_config_free(GlAgentConfig *c) {
        if (c) {
                g_free(c->port);
                g_free(c->device);
                g_free(c);
        }
        return NULL;
}

static const char *const known_keys[][8] = {
        { "channel", "transport", "port", "device", "vsock-port", "vsock-peer-cid", NULL },
        { "limits", "requests-per-second", "request-burst", "min-interval-seconds", "max-interval-seconds", NULL },
        { "policy", "default", "info", "stats", "heartbeat", "power", "lock", NULL },
};

static void check_unknown(GKeyFile *kf, GPtrArray *warnings) {
        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

        for (char **g = groups; *g; g++) {
                g_auto(GStrv) keys = NULL;
                const char *const *known = NULL;

                for (size_t i = 0; i < G_N_ELEMENTS(known_keys); i++)
                        if (strcmp(*g, known_keys[i][0]) == 0)
                                known = known_keys[i] + 1;
                if (!known) {
                        g_ptr_array_add(warnings, g_strdup_printf("unknown section [%s], ignoring", *g));
                        continue;
                }
                keys = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **k = keys; k && *k; k++)
                        if (!g_strv_contains(known, *k) &&
                            !(strcmp(*g, "policy") == 0 && gl_family_from_string(*k) != GL_FAMILY_INVALID))
                                g_ptr_array_add(warnings, g_strdup_printf("unknown key %s in [%s], ignoring", *k, *g));
        }
}

static gboolean get_uint(GKeyFile *kf, const char *group, const char *key, guint64 min, guint64 max, guint64 *value,
                         GError **error) {
        g_autofree char *s = g_key_file_get_string(kf, group, key, NULL);

        if (!s)
                return TRUE;
        g_strstrip(s);
        if (!g_ascii_string_to_unsigned(s, 10, min, max, value, NULL)) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "[%s] %s=%s: expected a whole number from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
                            group, key, s, min, max);
                return FALSE;
        }
        return TRUE;
}

static gboolean get_allow(GKeyFile *kf, const char *key, gboolean *value, GError **error) {
        g_autofree char *s = g_key_file_get_string(kf, "policy", key, NULL);

        if (!s)
                return TRUE;
        g_strstrip(s);
        if (strcmp(s, "allow") == 0)
                *value = TRUE;
        else if (strcmp(s, "deny") == 0)
                *value = FALSE;
        else {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "[policy] %s=%s: expected allow or deny", key, s);
                return FALSE;
        }
        return TRUE;
}

gboolean gl_agent_config_load(GlAgentConfig *c, const char *path, gboolean required, GPtrArray *warnings,
                              GError **error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) local = NULL;
        g_autofree char *transport = NULL, *port = NULL, *device = NULL;
        GlAgentConfig n = *c;
        gboolean def = TRUE;
        guint64 v;

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
                if (!required && g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return TRUE;
                g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: ", path);
                return FALSE;
        }
        check_unknown(kf, warnings);

        transport = g_key_file_get_string(kf, "channel", "transport", NULL);
        if (transport) {
                g_strstrip(transport);
                if (strcmp(transport, "virtio-serial") == 0)
                        n.transport = GL_TRANSPORT_VIRTIO_SERIAL;
                else if (strcmp(transport, "tty") == 0)
                        n.transport = GL_TRANSPORT_TTY;
                else if (strcmp(transport, "vsock") == 0)
                        n.transport = GL_TRANSPORT_VSOCK;
                else {
                        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                                    "%s: [channel] transport=%s: expected virtio-serial, tty or vsock", path,
                                    transport);
                        return FALSE;
                }
        }
        port = g_key_file_get_string(kf, "channel", "port", NULL);
        device = g_key_file_get_string(kf, "channel", "device", NULL);
        if ((port && (!*g_strstrip(port) || strchr(port, '\n'))) || (device && device[0] != '/')) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "%s: [channel] port must not be empty and device must be an absolute path", path);
                return FALSE;
        }

        v = n.vsock_port;
        if (!get_uint(kf, "channel", "vsock-port", 1, UINT32_MAX - 1, &v, error))
                goto fail;
        n.vsock_port = (unsigned) v;
        v = n.vsock_peer_cid;
        if (!get_uint(kf, "channel", "vsock-peer-cid", 1, UINT32_MAX - 1, &v, error))
                goto fail;
        n.vsock_peer_cid = (unsigned) v;
        v = (guint64) n.limits.requests_per_second;
        if (!get_uint(kf, "limits", "requests-per-second", 1, 100000, &v, error))
                goto fail;
        n.limits.requests_per_second = (double) v;
        v = (guint64) n.limits.request_burst;
        if (!get_uint(kf, "limits", "request-burst", 1, 100000, &v, error))
                goto fail;
        n.limits.request_burst = (double) v;
        v = n.limits.min_interval_seconds;
        if (!get_uint(kf, "limits", "min-interval-seconds", 1, 86400, &v, error))
                goto fail;
        n.limits.min_interval_seconds = (uint32_t) v;
        v = n.limits.max_interval_seconds;
        if (!get_uint(kf, "limits", "max-interval-seconds", n.limits.min_interval_seconds, 86400, &v, error))
                goto fail;
        n.limits.max_interval_seconds = (uint32_t) v;

        if (!get_allow(kf, "default", &def, error))
                goto fail;
        for (int f = 0; f < _GL_FAMILY_MAX; f++) {
                gboolean allow = def;

                if (f == GL_FAMILY_PING)
                        continue; /* always answered */
                if (!get_allow(kf, gl_family_to_string((GlFamily) f), &allow, error))
                        goto fail;
                n.policy.allow[f] = allow;
        }

        /* Commit only a fully valid file. */
        if (port) {
                g_free(c->port);
                n.port = g_steal_pointer(&port);
        }
        if (device) {
                g_free(c->device);
                n.device = g_steal_pointer(&device);
        }
        *c = n;
        return TRUE;

fail:
        g_prefix_error(error, "%s: ", path);
        return FALSE;
}
