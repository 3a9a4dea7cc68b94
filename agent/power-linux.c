/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "power.h"

#define LOGIND_NAME "org.freedesktop.login1"
#define LOGIND_PATH "/org/freedesktop/login1"
#define LOGIND_MANAGER "org.freedesktop.login1.Manager"
#define CALL_TIMEOUT_MS 5000
#define KERNEL_DEFER_MS 300 /* lets "started" reach the host before the guest goes */

struct GlPower {
        bool systemd;         /* booted with systemd: logind, never reboot(2) behind its back */
        GDBusConnection *bus; /* the system bus, connected on first use */
        guint signal_ids[2];
        GlPowerEvents events;
        void *userdata;
        char *sysfs_root, *proc_root;
        GlPowerAction pending_action;
        char *pending_message;
        guint defer_timer;
};

static void on_logind_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                             const char *signal, GVariant *params, gpointer userdata) {
        GlPower *p = userdata;
        gboolean before = FALSE;

        (void) c;
        (void) sender;
        (void) path;
        (void) iface;
        if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(b)")))
                return;
        g_variant_get(params, "(b)", &before);
        if (g_str_equal(signal, "PrepareForShutdown"))
                p->events.system_event(p->userdata, before ? GL_SYSTEM_SHUTTING_DOWN : GL_SYSTEM_SHUTDOWN_CANCELLED);
        else if (g_str_equal(signal, "PrepareForSleep"))
                p->events.system_event(p->userdata, before ? GL_SYSTEM_SUSPENDING : GL_SYSTEM_RESUMED);
}

/* The system bus, connected (and logind's signals followed) on first use:
 * the agent may start before D-Bus and logind, which are activated on
 * demand; every call below lets the bus start logind. */
static GDBusConnection *get_bus(GlPower *p, char *reason, size_t size) {
        g_autoptr(GError) error = NULL;

        if (p->bus)
                return p->bus;
        p->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        if (!p->bus) {
                snprintf(reason, size, "systemd runs but the system bus cannot be reached: %s", error->message);
                return NULL;
        }
        for (int i = 0; i < 2; i++)
                p->signal_ids[i] = g_dbus_connection_signal_subscribe(
                        p->bus, LOGIND_NAME, LOGIND_MANAGER, i == 0 ? "PrepareForShutdown" : "PrepareForSleep",
                        LOGIND_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_logind_signal, p, NULL);
        return p->bus;
}

GlPower *gl_power_new(const GlPowerEvents *events, void *userdata) {
        GlPower *p = g_new0(GlPower, 1);
        char ignored[256];

        p->events = *events;
        p->userdata = userdata;
        p->sysfs_root = g_strdup("/sys");
        p->proc_root = g_strdup("/proc");
        p->systemd = sd_booted() > 0;
        if (p->systemd)
                (void) get_bus(p, ignored, sizeof(ignored)); /* to follow transitions from the start */
        return p;
}

GlPower *gl_power_free(GlPower *p) {
        if (!p)
                return NULL;
        for (int i = 0; i < 2; i++)
                if (p->signal_ids[i])
                        g_dbus_connection_signal_unsubscribe(p->bus, p->signal_ids[i]);
        if (p->defer_timer)
                g_source_remove(p->defer_timer);
        g_clear_object(&p->bus);
        g_free(p->pending_message);
        g_free(p->sysfs_root);
        g_free(p->proc_root);
        g_free(p);
        return NULL;
}

const char *gl_power_backend(const GlPower *p) {
        return p->systemd ? "logind" : "kernel";
}

static const char *logind_verb(GlPowerAction a) {
        static const char *const verbs[_GL_POWER_ACTION_MAX] = {
                [GL_POWER_POWEROFF] = "PowerOff",   [GL_POWER_REBOOT] = "Reboot",
                [GL_POWER_HALT] = "Halt",           [GL_POWER_SUSPEND] = "Suspend",
                [GL_POWER_HIBERNATE] = "Hibernate", [GL_POWER_HYBRID_SLEEP] = "HybridSleep",
        };
        return verbs[a];
}

static bool file_has_word(const char *path, const char *word) {
        g_autofree char *text = NULL;
        g_auto(GStrv) words = NULL;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return false;
        words = g_strsplit_set(g_strstrip(text), " []\n", -1);
        return g_strv_contains((const char *const *) words, word);
}

static bool have_swap(const GlPower *p) {
        g_autofree char *path = g_build_filename(p->proc_root, "swaps", NULL);
        g_autofree char *text = NULL;

        /* the first line is a header */
        return g_file_get_contents(path, &text, NULL, NULL) && strchr(text, '\n') &&
               strchr(strchr(text, '\n') + 1, '/');
}

static int kernel_check(const GlPower *p, GlPowerAction a, char *reason, size_t size) {
        g_autofree char *state = g_build_filename(p->sysfs_root, "power", "state", NULL);
        g_autofree char *disk = g_build_filename(p->sysfs_root, "power", "disk", NULL);

        switch (a) {
        case GL_POWER_POWEROFF:
        case GL_POWER_REBOOT:
        case GL_POWER_HALT:
                if (geteuid() != 0) {
                        snprintf(reason, size, "no logind, and reboot(2) needs root");
                        return -EPERM;
                }
                return 0;
        case GL_POWER_SUSPEND:
                if (!file_has_word(state, "mem")) {
                        snprintf(reason, size, "the kernel offers no suspend to RAM (/sys/power/state has no \"mem\")");
                        return -EOPNOTSUPP;
                }
                return 0;
        case GL_POWER_HIBERNATE:
        case GL_POWER_HYBRID_SLEEP:
                if (!file_has_word(state, "disk")) {
                        snprintf(reason, size, "the kernel offers no hibernation (/sys/power/state has no \"disk\")");
                        return -EOPNOTSUPP;
                }
                if (!have_swap(p)) {
                        snprintf(reason, size, "no swap space to hibernate to");
                        return -EOPNOTSUPP;
                }
                if (a == GL_POWER_HYBRID_SLEEP && !file_has_word(disk, "suspend")) {
                        snprintf(reason, size,
                                 "the kernel offers no hybrid sleep (/sys/power/disk has no \"suspend\")");
                        return -EOPNOTSUPP;
                }
                return 0;
        default:
                return -EINVAL;
        }
}

int gl_power_check(GlPower *p, GlPowerAction a, char *reason, size_t size) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        g_autofree char *method = NULL;
        const char *answer = NULL;

        if (a < 0 || a >= _GL_POWER_ACTION_MAX)
                return -EINVAL;
        if (!p->systemd)
                return kernel_check(p, a, reason, size);
        if (!get_bus(p, reason, size))
                return -EIO;
        method = g_strconcat("Can", logind_verb(a), NULL);
        r = g_dbus_connection_call_sync(p->bus, LOGIND_NAME, LOGIND_PATH, LOGIND_MANAGER, method, NULL,
                                        G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);
        if (!r) {
                snprintf(reason, size, "logind %s failed: %s", method, error->message);
                return -EIO;
        }
        g_variant_get(r, "(&s)", &answer);
        if (g_str_equal(answer, "yes"))
                return 0;
        if (g_str_equal(answer, "challenge")) {
                snprintf(reason, size, "logind %s says \"challenge\": it wants interactive authentication", method);
                return -EPERM;
        }
        snprintf(reason, size, "logind %s says \"%s\"", method, answer);
        return -EOPNOTSUPP;
}

static void on_logind_done(GObject *source, GAsyncResult *res, gpointer userdata) {
        GlPower *p = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        if (!r)
                p->events.done(p->userdata, -EIO, error->message);
        /* on success: a shutdown takes the guest down; a sleep reports
         * back through PrepareForSleep(false) when the guest resumes */
}

static void wall_to_console(const char *message) {
        int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

        if (fd < 0)
                return;
        (void) !write(fd, "\r\n", 2);
        (void) !write(fd, message, strlen(message));
        (void) !write(fd, "\r\n", 2);
        close(fd);
}

/* sysfs attributes take one write(2) to the file itself (no temporary
 * file and rename); for /sys/power/state it returns after the resume. */
static int write_attribute(const char *path, const char *value, GError **error) {
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY), r = 0;

        if (fd < 0 || write(fd, value, strlen(value)) < 0) {
                r = -errno;
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path, g_strerror(errno));
        }
        if (fd >= 0)
                close(fd);
        return r;
}

static gboolean kernel_execute(gpointer userdata) {
        GlPower *p = userdata;
        g_autofree char *state = g_build_filename(p->sysfs_root, "power", "state", NULL);
        g_autofree char *disk = g_build_filename(p->sysfs_root, "power", "disk", NULL);
        g_autoptr(GError) error = NULL;
        const char *word = "mem";

        p->defer_timer = 0;
        if (p->pending_message)
                wall_to_console(p->pending_message);
        sync();
        switch (p->pending_action) {
        case GL_POWER_POWEROFF:
                reboot(RB_POWER_OFF);
                break;
        case GL_POWER_REBOOT:
                reboot(RB_AUTOBOOT);
                break;
        case GL_POWER_HALT:
                reboot(RB_HALT_SYSTEM);
                break;
        case GL_POWER_HYBRID_SLEEP:
                if (write_attribute(disk, "suspend", &error) < 0) {
                        p->events.done(p->userdata, -EIO, error->message);
                        return G_SOURCE_REMOVE;
                }
                word = "disk";
                break;
        case GL_POWER_HIBERNATE:
                word = "disk";
                break;
        default:
                break;
        }
        if (p->pending_action == GL_POWER_POWEROFF || p->pending_action == GL_POWER_REBOOT ||
            p->pending_action == GL_POWER_HALT) {
                /* reboot(2) came back: it failed */
                p->events.done(p->userdata, -errno, g_strerror(errno));
                return G_SOURCE_REMOVE;
        }
        /* The write returns when the guest has resumed (or failed). */
        p->events.system_event(p->userdata, GL_SYSTEM_SUSPENDING);
        if (write_attribute(state, word, &error) < 0) {
                p->events.done(p->userdata, -EIO, error->message);
                return G_SOURCE_REMOVE;
        }
        p->events.system_event(p->userdata, GL_SYSTEM_RESUMED);
        return G_SOURCE_REMOVE;
}

void gl_power_execute(GlPower *p, GlPowerAction a, const char *wall_message) {
        char reason[256];

        g_free(p->pending_message);
        p->pending_message = g_strdup(wall_message);
        p->pending_action = a;
        if (!p->systemd) {
                if (p->defer_timer)
                        g_source_remove(p->defer_timer);
                p->defer_timer = g_timeout_add(KERNEL_DEFER_MS, kernel_execute, p);
                return;
        }
        if (!get_bus(p, reason, sizeof(reason))) {
                p->events.done(p->userdata, -EIO, reason);
                return;
        }
        if (wall_message)
                g_dbus_connection_call(p->bus, LOGIND_NAME, LOGIND_PATH, LOGIND_MANAGER, "SetWallMessage",
                                       g_variant_new("(sb)", wall_message, TRUE), NULL, G_DBUS_CALL_FLAGS_NONE,
                                       CALL_TIMEOUT_MS, NULL, NULL, NULL);
        g_dbus_connection_call(p->bus, LOGIND_NAME, LOGIND_PATH, LOGIND_MANAGER, logind_verb(a),
                               g_variant_new("(b)", FALSE), NULL, G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL,
                               on_logind_done, p);
}

int gl_power_lock(GlPower *p, unsigned *ret_sessions, char *reason, size_t size) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) list = NULL, r = NULL;

        if (!p->systemd) {
                snprintf(reason, size, "no session manager (logind) to ask");
                return -EOPNOTSUPP;
        }
        if (!get_bus(p, reason, size))
                return -EIO;
        list = g_dbus_connection_call_sync(p->bus, LOGIND_NAME, LOGIND_PATH, LOGIND_MANAGER, "ListSessions", NULL,
                                           G_VARIANT_TYPE("(a(susso))"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL,
                                           NULL);
        r = g_dbus_connection_call_sync(p->bus, LOGIND_NAME, LOGIND_PATH, LOGIND_MANAGER, "LockSessions", NULL, NULL,
                                        G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);
        if (!r) {
                snprintf(reason, size, "logind LockSessions failed: %s", error->message);
                return -EIO;
        }
        *ret_sessions = 0;
        if (list) {
                g_autoptr(GVariant) a = g_variant_get_child_value(list, 0);
                *ret_sessions = (unsigned) g_variant_n_children(a);
        }
        return 0;
}
