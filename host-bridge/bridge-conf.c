/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bridge-conf.h"

#include <string.h>

static void static_guest_free(gpointer p) {
        GlStaticGuest *g = p;

        g_free(g->name);
        g_free(g->uuid);
        g_free(g->socket);
        g_free(g);
}

GlBridgeConfig *gl_bridge_config_new(void) {
        GlBridgeConfig *c = g_new0(GlBridgeConfig, 1);
        const char *uris[] = { "qemu:///system", NULL };

        c->control_socket = g_strdup(GL_BRIDGE_SOCKET);
        c->control_group = g_strdup("guestlink");
        c->max_clients = 64;
        c->libvirt_enabled = true;
        c->libvirt_uris = g_strdupv((char **) uris);
        c->channel = g_strdup(GL_AGENT_CHANNEL);
        c->prefer_local = true;
        c->stats_interval_seconds = 10;
        c->stats_history = 360;
        c->heartbeat_interval_seconds = 5;
        c->request_timeout_ms = 30000;
        c->limits = (GlGuestLimits){
                .frame = GL_LIMITS_DEFAULT,
                .max_frames_per_second = 2000,
                .max_bytes_per_second = 8 * 1024 * 1024,
                .max_memory_bytes = 4 * 1024 * 1024,
                .max_protocol_errors = 100,
                .max_requests_in_flight = 64,
                .penalty_ms = 30000,
        };
        c->metrics_listen = g_strdup("127.0.0.1:9847");
        c->hooks_directory = g_strdup(GL_SYSCONFDIR "/guestlink/hooks.d");
        c->hooks_timeout_seconds = 10;
        c->hooks_max_running = 4;
        c->static_guests = g_ptr_array_new_with_free_func(static_guest_free);
        return c;
}

GlBridgeConfig *gl_bridge_config_free(GlBridgeConfig *c) {
        if (c) {
                g_free(c->control_socket);
                g_free(c->control_group);
                g_strfreev(c->libvirt_uris);
                g_free(c->channel);
                g_free(c->metrics_listen);
                g_free(c->hooks_directory);
                g_ptr_array_unref(c->static_guests);
                g_free(c);
        }
        return NULL;
}

bool gl_guest_name_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > 64 || name[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_isalnum(name[i]) && !strchr("._-", name[i]))
                        return false;
        return true;
}

static const char *const known_keys[][12] = {
        { "bridge", "control_socket", "control_group", "max_clients", NULL },
        { "libvirt", "enabled", "uri", "channel", "prefer_local", NULL },
        { "stats", "interval_seconds", "history", NULL },
        { "heartbeat", "interval_seconds", NULL },
        { "limits", "max_frame_bytes", "max_json_bytes", "max_frames_per_second", "max_bytes_per_second",
          "max_guest_memory_bytes", "max_protocol_errors_per_minute", "max_requests_in_flight", "penalty_seconds",
          "request_timeout_ms", NULL },
        { "metrics", "enabled", "listen", NULL },
        { "hooks", "directory", "timeout_seconds", "max_running", NULL },
};

static const char *const guest_keys[] = { "socket", "mode", "uuid", NULL };

static void check_unknown(GKeyFile *kf, GPtrArray *warnings) {
        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

        for (char **g = groups; *g; g++) {
                g_auto(GStrv) keys = NULL;
                const char *const *known = NULL;

                if (g_str_has_prefix(*g, "guest "))
                        known = guest_keys;
                for (size_t i = 0; i < G_N_ELEMENTS(known_keys); i++)
                        if (strcmp(*g, known_keys[i][0]) == 0)
                                known = known_keys[i] + 1;
                if (!known) {
                        g_ptr_array_add(warnings, g_strdup_printf("unknown section [%s], ignoring", *g));
                        continue;
                }
                keys = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **k = keys; k && *k; k++)
                        if (!g_strv_contains(known, *k))
                                g_ptr_array_add(warnings, g_strdup_printf("unknown key %s in [%s], ignoring", *k, *g));
        }
}

static gboolean get_u64(GKeyFile *kf, const char *group, const char *key, guint64 min, guint64 max, guint64 *value,
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

static gboolean get_uint(GKeyFile *kf, const char *group, const char *key, guint64 min, guint64 max, unsigned *value,
                         GError **error) {
        guint64 v = *value;

        if (!get_u64(kf, group, key, min, max, &v, error))
                return FALSE;
        *value = (unsigned) v;
        return TRUE;
}

static gboolean get_bool(GKeyFile *kf, const char *group, const char *key, bool *value, GError **error) {
        g_autoptr(GError) e = NULL;
        gboolean b;

        if (!g_key_file_has_key(kf, group, key, NULL))
                return TRUE;
        b = g_key_file_get_boolean(kf, group, key, &e);
        if (e) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "[%s] %s: expected true or false",
                            group, key);
                return FALSE;
        }
        *value = b;
        return TRUE;
}

static void get_string(GKeyFile *kf, const char *group, const char *key, char **value) {
        g_autofree char *s = g_key_file_get_string(kf, group, key, NULL);

        if (!s)
                return;
        g_strstrip(s);
        g_free(*value);
        *value = g_steal_pointer(&s);
}

static gboolean load_static_guest(GlBridgeConfig *c, GKeyFile *kf, const char *group, GError **error) {
        const char *name = group + strlen("guest ");
        g_autofree char *mode = NULL;
        GlStaticGuest *g;

        if (!gl_guest_name_valid(name)) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "[%s]: a guest name is 1..64 characters of A-Z a-z 0-9 . _ - not starting with '.'", group);
                return FALSE;
        }
        for (guint i = 0; i < c->static_guests->len; i++)
                if (strcmp(((GlStaticGuest *) c->static_guests->pdata[i])->name, name) == 0) {
                        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "[%s]: defined twice",
                                    group);
                        return FALSE;
                }
        g = g_new0(GlStaticGuest, 1);
        g->name = g_strdup(name);
        g_ptr_array_add(c->static_guests, g);
        get_string(kf, group, "socket", &g->socket);
        get_string(kf, group, "uuid", &g->uuid);
        get_string(kf, group, "mode", &mode);
        if (!g->socket || !g_path_is_absolute(g->socket)) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "[%s] socket: an absolute path is required", group);
                return FALSE;
        }
        if (g->uuid) {
                if (!g_uuid_string_is_valid(g->uuid)) {
                        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "[%s] uuid=%s: not a UUID",
                                    group, g->uuid);
                        return FALSE;
                }
                for (char *p = g->uuid; *p; p++)
                        *p = g_ascii_tolower(*p);
        }
        if (!mode || strcmp(mode, "connect") == 0)
                g->mode = GL_STATIC_CONNECT;
        else if (strcmp(mode, "listen") == 0)
                g->mode = GL_STATIC_LISTEN;
        else {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "[%s] mode=%s: expected connect or listen", group, mode);
                return FALSE;
        }
        return TRUE;
}

gboolean gl_bridge_config_load(GlBridgeConfig *c, const char *path, gboolean required, GPtrArray *warnings,
                               GError **error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) e = NULL;
        g_auto(GStrv) groups = NULL;
        GlGuestLimits *l = &c->limits;
        guint64 v;

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e)) {
                if (!required && g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return TRUE;
                g_propagate_prefixed_error(error, g_steal_pointer(&e), "%s: ", path);
                return FALSE;
        }
        check_unknown(kf, warnings);

        get_string(kf, "bridge", "control_socket", &c->control_socket);
        get_string(kf, "bridge", "control_group", &c->control_group);
        if (c->control_group && !*c->control_group)
                g_clear_pointer(&c->control_group, g_free);
        if (!get_uint(kf, "bridge", "max_clients", 1, 4096, &c->max_clients, error))
                goto fail;

        if (!get_bool(kf, "libvirt", "enabled", &c->libvirt_enabled, error))
                goto fail;
        if (g_key_file_has_key(kf, "libvirt", "uri", NULL)) {
                g_strfreev(c->libvirt_uris);
                c->libvirt_uris = g_key_file_get_string_list(kf, "libvirt", "uri", NULL, NULL);
                for (char **u = c->libvirt_uris; u && *u; u++)
                        g_strstrip(*u);
        }
        get_string(kf, "libvirt", "channel", &c->channel);
        if (!get_bool(kf, "libvirt", "prefer_local", &c->prefer_local, error))
                goto fail;

        if (!get_uint(kf, "stats", "interval_seconds", 0, 3600, &c->stats_interval_seconds, error) ||
            !get_uint(kf, "stats", "history", 0, 100000, &c->stats_history, error) ||
            !get_uint(kf, "heartbeat", "interval_seconds", 0, 3600, &c->heartbeat_interval_seconds, error))
                goto fail;

        v = l->frame.max_frame_bytes;
        if (!get_u64(kf, "limits", "max_frame_bytes", GL_LIMITS_MIN.max_frame_bytes, UINT32_MAX, &v, error))
                goto fail;
        l->frame.max_frame_bytes = (uint32_t) v;
        v = l->frame.max_json_bytes;
        if (!get_u64(kf, "limits", "max_json_bytes", GL_LIMITS_MIN.max_json_bytes, UINT32_MAX, &v, error))
                goto fail;
        l->frame.max_json_bytes = (uint32_t) v;
        if (!get_u64(kf, "limits", "max_frames_per_second", 0, UINT32_MAX, &l->max_frames_per_second, error) ||
            !get_u64(kf, "limits", "max_bytes_per_second", 0, UINT64_MAX / 2, &l->max_bytes_per_second, error) ||
            !get_u64(kf, "limits", "max_guest_memory_bytes", 64 * 1024, UINT64_MAX / 2, &l->max_memory_bytes, error) ||
            !get_u64(kf, "limits", "max_protocol_errors_per_minute", 1, UINT32_MAX, &l->max_protocol_errors, error) ||
            !get_u64(kf, "limits", "request_timeout_ms", 1, 600000, &c->request_timeout_ms, error))
                goto fail;
        v = l->max_requests_in_flight;
        if (!get_u64(kf, "limits", "max_requests_in_flight", 1, 4096, &v, error))
                goto fail;
        l->max_requests_in_flight = (uint32_t) v;
        v = l->penalty_ms / 1000;
        if (!get_u64(kf, "limits", "penalty_seconds", 0, 86400, &v, error))
                goto fail;
        l->penalty_ms = v * 1000;

        if (!get_bool(kf, "metrics", "enabled", &c->metrics_enabled, error))
                goto fail;
        get_string(kf, "metrics", "listen", &c->metrics_listen);
        get_string(kf, "hooks", "directory", &c->hooks_directory);
        if (!get_uint(kf, "hooks", "timeout_seconds", 1, 3600, &c->hooks_timeout_seconds, error) ||
            !get_uint(kf, "hooks", "max_running", 1, 256, &c->hooks_max_running, error))
                goto fail;

        groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++)
                if (g_str_has_prefix(*g, "guest ") && !load_static_guest(c, kf, *g, error))
                        goto fail;
        return TRUE;

fail:
        g_prefix_error(error, "%s: ", path);
        return FALSE;
}
