/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-agent as installed by `meson install`, in a Debian systemd guest:
 * udev starts the service when the port exists, it reaches READY
 * (Type=notify), systemd restarts it after kill -9, hibernation is refused
 * with logind's reason, and poweroff goes through logind (QEMU exits).
 */
#include "config.h"

#include <string.h>

#include "vm-host.h"

typedef VmHost Host;

#define PORT "org.guestlink.agent.0"

/* `meson install` into a staging directory; every installed file goes into
 * the guest image at its installed path. */
static void add_installed_files(GlvmVm *vm, const char *stage) {
        g_autofree char *cmd = g_strdup_printf("meson install -C '%s' --no-rebuild --quiet --destdir '%s'",
                                               GL_BUILD_ROOT, stage);
        g_autofree char *out = NULL, *err = NULL;
        g_autoptr(GError) error = NULL;
        static const char *const files[] = {
                "usr/local/sbin/guestlink-agent",
                "lib/systemd/system/guestlink-agent.service",
                "lib/udev/rules.d/90-guestlink-agent.rules",
                "usr/local/etc/guestlink/agent.conf",
        };
        int status;

        g_assert_true(g_spawn_command_line_sync(cmd, &out, &err, &status, &error));
        g_assert_no_error(error);
        if (!g_spawn_check_wait_status(status, NULL))
                g_error("%s failed:\n%s%s", cmd, out, err);
        for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
                g_autofree char *host = g_build_filename(stage, files[i], NULL);
                g_autofree char *guest = g_strconcat("/", files[i], NULL);

                g_assert_true(g_file_test(host, G_FILE_TEST_EXISTS));
                if (g_str_has_suffix(files[i], "guestlink-agent"))
                        glvm_vm_add_binary(vm, host, guest);
                else
                        glvm_vm_add_file(vm, host, guest, 0644);
        }
}

static char *main_pid(Host *h) {
        return g_strchomp(glvm_vm_check(h->vm, 10000, "systemctl show -p MainPID --value guestlink-agent"));
}

static void test_systemd_agent(void) {
        Host h = { 0 };
        g_autoptr(GError) error = NULL;
        g_autofree char *stage = NULL, *state = NULL, *pid = NULL, *pid2 = NULL, *journal = NULL;
        gint64 deadline;
        GlMessage *m;
        int st = -1;

        glvm_skip_if_unavailable();
        h.vm = glvm_vm_new("vm-agent-systemd", GLVM_FLAVOUR_SYSTEMD);
        h.port = glvm_vm_add_port(h.vm, PORT, GLVM_PORT_SERVER);
        stage = g_build_filename(glvm_vm_run_dir(h.vm), "stage", NULL);
        add_installed_files(h.vm, stage);
        g_assert_true(glvm_vm_start(h.vm, false, 300000, &error));
        g_assert_no_error(error);
        vm_host_session_new(&h, "host-sd");

        /* started by the udev rule (the unit is not enabled), READY */
        state = glvm_vm_check(h.vm, 120000,
                              "systemctl is-system-running --wait >/dev/null; systemctl is-enabled guestlink-agent; "
                              "for i in $(seq 100); do systemctl is-active guestlink-agent >/dev/null && break; "
                              "sleep 0.2; done; systemctl is-active guestlink-agent");
        g_assert_cmpstr(state, ==, "disabled\nactive\n");
        g_free(glvm_vm_check(h.vm, 10000, "systemctl show -p Type --value guestlink-agent | grep -x notify"));

        vm_host_connect(&h);
        m = vm_host_call(&h, "ping", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);

        /* kill -9: systemd restarts it; the host's session notices the new
         * instance and goes on */
        pid = main_pid(&h);
        g_free(glvm_vm_check(h.vm, 10000, "systemctl kill -s KILL guestlink-agent"));
        deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
        for (;;) {
                g_autofree char *active = NULL;

                g_free(pid2);
                pid2 = main_pid(&h);
                (void) glvm_vm_run(h.vm, "systemctl is-active guestlink-agent", 10000, &active, NULL);
                if (g_strcmp0(active, "active\n") == 0 && !g_str_equal(pid2, "0") && !g_str_equal(pid2, pid))
                        break;
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                glvm_vm_sleep(h.vm, 500);
        }
        g_test_message("agent pid %s killed, restarted as %s", pid, pid2);
        m = vm_host_call(&h, "ping", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);
        g_assert_cmpstr(gl_session_peer(h.s)->role, ==, "agent");

        /* lock: logind LockSessions (no graphical session here: none to lock) */
        m = vm_host_call(&h, "lock", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_nonnull(json_object_object_get(m->body, "sessions"));
        gl_message_free(m);

        /* no swap: logind says no to hibernation, and the host is told why */
        m = vm_host_call(&h, "power.request", "{\"action\":\"hibernate\"}");
        g_assert_cmpint(m->type, ==, GL_MSG_ERROR);
        g_assert_cmpint(m->code, ==, GL_ERROR_UNAVAILABLE);
        g_test_message("hibernate refused: %s", m->error_message);
        g_assert_nonnull(strstr(m->error_message, "CanHibernate"));
        gl_message_free(m);

        /* structured: the entry carries our fields */
        journal = glvm_vm_check(h.vm, 10000, "journalctl -b GUESTLINK_COMPONENT=agent --no-pager -o cat");
        g_assert_nonnull(strstr(journal, "refused hibernate request"));

        /* poweroff through logind */
        m = vm_host_call(&h, "power.request", "{\"action\":\"poweroff\",\"message\":\"the host is shutting down\"}");
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpstr(json_object_get_string(json_object_object_get(m->body, "backend")), ==, "logind");
        gl_message_free(m);
        g_assert_true(glvm_vm_wait_exit(h.vm, 120000, &st, &error));
        g_assert_no_error(error);
        g_assert_cmpint(st, ==, 0);

        glvm_vm_stop(h.vm);
        glvm_vm_free(h.vm);
        vm_host_session_free(&h);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/vm-agent-systemd/installed-service", test_systemd_agent);
        return g_test_run();
}
