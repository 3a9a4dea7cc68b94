/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdbool.h>
#include <string.h>
#include <sys/utsname.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>
#include <time.h>
#include <utmpx.h>

#include "info.h"

#define MAX_USERS 256
#define MAX_INTERFACES 256
#define MAX_ADDRESSES 64
#define MAX_OS_RELEASE_PAIRS 64
#define MAX_FILE_BYTES (64 * 1024)

static char *read_file(const char *root, const char *path) {
        g_autofree char *full = g_build_filename(root, path, NULL);
        char *text = NULL;
        gsize len = 0;

        if (!g_file_get_contents(full, &text, &len, NULL))
                return NULL;
        if (len > MAX_FILE_BYTES || memchr(text, '\0', len)) {
                g_free(text);
                return NULL;
        }
        return text;
}

static void add_str(json_object *o, const char *key, const char *v) {
        if (v && *v && g_utf8_validate(v, -1, NULL))
                json_object_object_add(o, key, json_object_new_string(v));
}

/* os-release(5): KEY=value, values optionally quoted, with \ escapes in
 * double quotes. */
static char *unquote(const char *v) {
        GString *s = g_string_new(NULL);
        char q = 0;

        if (*v == '"' || *v == '\'')
                q = *v++;
        for (; *v && *v != q; v++) {
                if (q == '"' && *v == '\\' && v[1])
                        v++;
                g_string_append_c(s, *v);
        }
        return g_string_free(s, FALSE);
}

static void add_os(json_object *result, const char *root) {
        static const struct {
                const char *key, *member;
        } fields[] = {
                { "ID", "id" },
                { "NAME", "name" },
                { "PRETTY_NAME", "pretty_name" },
                { "VERSION", "version" },
                { "VERSION_ID", "version_id" },
                { "VARIANT_ID", "variant_id" },
                { "BUILD_ID", "build_id" },
        };
        g_autofree char *text = read_file(root, "etc/os-release");
        json_object *os = json_object_new_object(), *release = json_object_new_object();
        g_auto(GStrv) lines = NULL;
        unsigned pairs = 0;

        if (!text)
                text = read_file(root, "usr/lib/os-release");
        json_object_object_add(os, "family", json_object_new_string("linux"));
        lines = g_strsplit(text ? text : "", "\n", -1);
        for (char **l = lines; *l && pairs < MAX_OS_RELEASE_PAIRS; l++) {
                char *eq = strchr(*l, '=');
                g_autofree char *value = NULL;

                if (**l == '#' || !eq || eq == *l)
                        continue;
                *eq = '\0';
                value = unquote(eq + 1);
                if (!g_utf8_validate(value, -1, NULL) || !g_utf8_validate(*l, -1, NULL))
                        continue;
                json_object_object_add(release, *l, json_object_new_string(value));
                pairs++;
                for (size_t i = 0; i < G_N_ELEMENTS(fields); i++)
                        if (strcmp(*l, fields[i].key) == 0)
                                add_str(os, fields[i].member, value);
                if (strcmp(*l, "ID_LIKE") == 0) {
                        g_auto(GStrv) like = g_strsplit(value, " ", 16);
                        json_object *a = json_object_new_array();
                        for (char **x = like; *x; x++)
                                if (**x)
                                        json_object_array_add(a, json_object_new_string(*x));
                        json_object_object_add(os, "id_like", a);
                }
        }
        if (pairs > 0)
                json_object_object_add(os, "release", release);
        else
                json_object_put(release);
        json_object_object_add(result, "os", os);
}

static void add_ids_and_time(json_object *result, const char *root) {
        g_autofree char *machine_id = read_file(root, "etc/machine-id");
        g_autofree char *boot_id = read_file(root, "proc/sys/kernel/random/boot_id");
        g_autofree char *uptime = read_file(root, "proc/uptime");
        g_autofree char *tz = NULL, *localtime = NULL;
        json_object *tz_obj = json_object_new_object();
        time_t now = time(NULL);
        struct tm tm;

        if (machine_id) {
                g_strstrip(machine_id);
                if (strlen(machine_id) == 32 && strspn(machine_id, "0123456789abcdef") == 32)
                        add_str(result, "machine_id", machine_id);
        }
        if (boot_id)
                add_str(result, "boot_id", g_strstrip(boot_id));
        if (uptime)
                json_object_object_add(result, "uptime_seconds", json_object_new_double(g_ascii_strtod(uptime, NULL)));
        json_object_object_add(result, "time_unix_us", json_object_new_int64(g_get_real_time()));

        localtime = g_build_filename(root, "etc/localtime", NULL);
        tz = g_file_read_link(localtime, NULL);
        if (tz && strstr(tz, "zoneinfo/"))
                add_str(tz_obj, "name", strstr(tz, "zoneinfo/") + strlen("zoneinfo/"));
        else {
                g_autofree char *t = read_file(root, "etc/timezone");
                if (t)
                        add_str(tz_obj, "name", g_strstrip(t));
        }
        if (localtime_r(&now, &tm))
                json_object_object_add(tz_obj, "utc_offset_seconds", json_object_new_int64(tm.tm_gmtoff));
        json_object_object_add(result, "timezone", tz_obj);
}

static void add_users(json_object *result) {
        json_object *users = json_object_new_array();
        bool truncated = false;

        if (sd_booted() > 0) {
                char **sessions = NULL;
                int n = sd_get_sessions(&sessions);

                for (int i = 0; i < n; i++) {
                        json_object *u;
                        char *name = NULL, *seat = NULL, *tty = NULL, *rhost = NULL, *type = NULL, *class = NULL,
                             *state = NULL;
                        uid_t uid;

                        if (json_object_array_length(users) >= MAX_USERS) {
                                truncated = true;
                                free(sessions[i]);
                                continue;
                        }
                        struct passwd pw, *found = NULL;
                        char pwbuf[1024];

                        if (sd_session_get_uid(sessions[i], &uid) < 0) {
                                free(sessions[i]);
                                continue;
                        }
                        if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found)
                                name = strdup(found->pw_name);
                        u = json_object_new_object();
                        add_str(u, "name", name);
                        json_object_object_add(u, "uid", json_object_new_int64(uid));
                        add_str(u, "session", sessions[i]);
                        if (sd_session_get_seat(sessions[i], &seat) >= 0)
                                add_str(u, "seat", seat);
                        if (sd_session_get_tty(sessions[i], &tty) >= 0)
                                add_str(u, "tty", tty);
                        if (sd_session_get_remote_host(sessions[i], &rhost) >= 0)
                                add_str(u, "remote_host", rhost);
                        if (sd_session_get_type(sessions[i], &type) >= 0)
                                add_str(u, "type", type);
                        if (sd_session_get_class(sessions[i], &class) >= 0)
                                add_str(u, "class", class);
                        if (sd_session_get_state(sessions[i], &state) >= 0)
                                add_str(u, "state", state);
                        json_object_array_add(users, u);
                        free(name);
                        free(seat);
                        free(tty);
                        free(rhost);
                        free(type);
                        free(class);
                        free(state);
                        free(sessions[i]);
                }
                free(sessions);
        } else {
                struct utmpx *e;

                setutxent();
                while ((e = getutxent())) {
                        char name[sizeof(e->ut_user) + 1], line[sizeof(e->ut_line) + 1], host[sizeof(e->ut_host) + 1];
                        json_object *u;

                        if (e->ut_type != USER_PROCESS)
                                continue;
                        if (json_object_array_length(users) >= MAX_USERS) {
                                truncated = true;
                                break;
                        }
                        g_strlcpy(name, e->ut_user, sizeof(name));
                        g_strlcpy(line, e->ut_line, sizeof(line));
                        g_strlcpy(host, e->ut_host, sizeof(host));
                        u = json_object_new_object();
                        add_str(u, "name", name);
                        add_str(u, "tty", line);
                        add_str(u, "remote_host", host);
                        json_object_object_add(
                                u, "login_unix_us",
                                json_object_new_int64((int64_t) e->ut_tv.tv_sec * 1000000 + e->ut_tv.tv_usec));
                        json_object_array_add(users, u);
                }
                endutxent();
        }
        json_object_object_add(result, "users", users);
        if (truncated)
                json_object_object_add(result, "users_truncated", json_object_new_boolean(true));
}

static json_object *find_interface(json_object *list, const char *name) {
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *o = json_object_array_get_idx(list, i);
                if (strcmp(json_object_get_string(json_object_object_get(o, "name")), name) == 0)
                        return o;
        }
        return NULL;
}

static void add_interfaces(json_object *result, const char *root) {
        json_object *list = json_object_new_array();
        struct ifaddrs *ifa = NULL;
        bool truncated = false;

        if (getifaddrs(&ifa) < 0) {
                json_object_object_add(result, "interfaces", list);
                return;
        }
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                json_object *o = find_interface(list, i->ifa_name), *addrs;
                char text[INET6_ADDRSTRLEN];
                int family, prefix = 0;
                const void *addr;

                if (!o) {
                        g_autofree char *dir = g_build_filename("sys/class/net", i->ifa_name, NULL);
                        g_autofree char *mac = NULL, *mtu = NULL, *state = NULL;
                        g_autofree char *mac_path = g_build_filename(dir, "address", NULL);
                        g_autofree char *mtu_path = g_build_filename(dir, "mtu", NULL);
                        g_autofree char *state_path = g_build_filename(dir, "operstate", NULL);

                        if (json_object_array_length(list) >= MAX_INTERFACES) {
                                truncated = true;
                                continue;
                        }
                        o = json_object_new_object();
                        add_str(o, "name", i->ifa_name);
                        mac = read_file(root, mac_path);
                        if (mac && strlen(g_strstrip(mac)) == 17)
                                add_str(o, "mac", mac);
                        mtu = read_file(root, mtu_path);
                        if (mtu)
                                json_object_object_add(o, "mtu", json_object_new_int64(g_ascii_strtoll(mtu, NULL, 10)));
                        state = read_file(root, state_path);
                        g_strstrip(state ? state : (state = g_strdup("unknown")));
                        add_str(o, "state",
                                strcmp(state, "up") == 0 || strcmp(state, "down") == 0     ? state
                                : (i->ifa_flags & IFF_UP) && (i->ifa_flags & IFF_LOOPBACK) ? "up"
                                                                                           : "unknown");
                        json_object_object_add(o, "loopback", json_object_new_boolean(i->ifa_flags & IFF_LOOPBACK));
                        json_object_object_add(o, "addresses", json_object_new_array());
                        json_object_array_add(list, o);
                }
                if (!i->ifa_addr)
                        continue;
                family = i->ifa_addr->sa_family;
                if (family == AF_INET) {
                        addr = &((const struct sockaddr_in *) (const void *) i->ifa_addr)->sin_addr;
                        if (i->ifa_netmask)
                                prefix = __builtin_popcount(
                                        ((const struct sockaddr_in *) (const void *) i->ifa_netmask)->sin_addr.s_addr);
                } else if (family == AF_INET6) {
                        addr = &((const struct sockaddr_in6 *) (const void *) i->ifa_addr)->sin6_addr;
                        if (i->ifa_netmask) {
                                const uint8_t *m = ((const struct sockaddr_in6 *) (const void *) i->ifa_netmask)
                                                           ->sin6_addr.s6_addr;
                                for (int k = 0; k < 16; k++)
                                        prefix += __builtin_popcount(m[k]);
                        }
                } else
                        continue;
                addrs = json_object_object_get(o, "addresses");
                if (json_object_array_length(addrs) >= MAX_ADDRESSES || !inet_ntop(family, addr, text, sizeof(text)))
                        continue;
                json_object *a = json_object_new_object();
                json_object_object_add(a, "family", json_object_new_string(family == AF_INET ? "ipv4" : "ipv6"));
                json_object_object_add(a, "address", json_object_new_string(text));
                json_object_object_add(a, "prefix_length", json_object_new_int(prefix));
                json_object_array_add(addrs, a);
        }
        freeifaddrs(ifa);
        json_object_object_add(result, "interfaces", list);
        if (truncated)
                json_object_object_add(result, "interfaces_truncated", json_object_new_boolean(true));
}

int gl_info_collect(const char *root, json_object *result) {
        struct utsname u;
        json_object *kernel = json_object_new_object();

        if (uname(&u) < 0) {
                json_object_put(kernel);
                return -errno;
        }
        add_os(result, root);
        add_str(kernel, "name", u.sysname);
        add_str(kernel, "release", u.release);
        add_str(kernel, "version", u.version);
        json_object_object_add(result, "kernel", kernel);
        add_str(result, "architecture", u.machine);
        add_str(result, "hostname", u.nodename);
        add_ids_and_time(result, root);
        add_users(result);
        add_interfaces(result, root);
        return 0;
}
