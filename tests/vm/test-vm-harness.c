/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The test bed tests itself on the initramfs flavour: boot, guest commands
 * (status, output, stdin, signals), a project binary with its libraries,
 * ports in server and client (reconnect) mode both ways, QMP stop/cont, and
 * guest power-off ending qemu; an appliance image (a program started at boot)
 * beside the command channel.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "glvm.h"

#define BOOT_TIMEOUT 90000
#define CMD_TIMEOUT 20000

static void test_harness(void) {
        g_autoptr(GlvmVm) vm = glvm_vm_new("vm-harness", GLVM_FLAVOUR_INITRAMFS);
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL, *kver = NULL, *status = NULL;
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GBytes) b = NULL;
        GlvmPort *srv, *cli;
        struct utsname u;
        int r, st = -1;

        srv = glvm_vm_add_port(vm, "org.guestlink.test.srv", GLVM_PORT_SERVER);
        cli = glvm_vm_add_port(vm, "org.guestlink.test.cli", GLVM_PORT_CLIENT);
        glvm_vm_add_binary(vm, GLVM_LIBCHECK, "/usr/bin/glvm-libcheck");
        g_assert_true(glvm_vm_start(vm, true, BOOT_TIMEOUT, &error));
        g_assert_no_error(error);
        g_test_message("boot to command server: %" G_GINT64_FORMAT " ms", glvm_vm_boot_ms(vm));
        g_print("# boot_ms=%" G_GINT64_FORMAT "\n", glvm_vm_boot_ms(vm));

        /* exit status and output, both streams */
        r = glvm_vm_run(vm, "echo out; echo err >&2; exit 3", CMD_TIMEOUT, &out, &error);
        g_assert_no_error(error);
        g_assert_cmpint(r, ==, 3);
        g_assert_nonnull(strstr(out, "out\n"));
        g_assert_nonnull(strstr(out, "err\n"));
        g_clear_pointer(&out, g_free);

        /* the guest runs the host's kernel (the one whose modules we copied) */
        g_assert_cmpint(uname(&u), ==, 0);
        kver = glvm_vm_check(vm, CMD_TIMEOUT, "uname -r");
        g_assert_true(g_str_has_suffix(g_strchomp(kver), "amd64"));

        /* a glib + json-c binary with its ldd-listed libraries */
        out = glvm_vm_check(vm, CMD_TIMEOUT, "glvm-libcheck");
        g_assert_nonnull(strstr(out, "\"glib\":\"ok\""));
        g_assert_nonnull(strstr(out, "\"json-c\":\"0."));
        g_clear_pointer(&out, g_free);

        /* stdin, expect, kill */
        p = glvm_vm_spawn(vm, "echo ready; read x; echo got:$x; sleep 100", &error);
        g_assert_no_error(error);
        g_assert_true(glvm_proc_expect(p, "ready\n", CMD_TIMEOUT, &error));
        g_assert_true(glvm_proc_send(p, "hello\n", &error));
        g_assert_true(glvm_proc_expect(p, "got:hello\n", CMD_TIMEOUT, &error));
        g_assert_true(glvm_proc_kill(p, 15, &error));
        g_assert_cmpint(glvm_proc_wait(p, CMD_TIMEOUT, &error), ==, 128 + 15);
        g_assert_no_error(error);
        g_clear_pointer(&p, glvm_proc_free);

        /* a timeout is reported as such */
        r = glvm_vm_run(vm, "sleep 5", 300, NULL, &error);
        g_assert_cmpint(r, ==, -1);
        g_assert_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT);
        g_clear_error(&error);

        /* udev-less symlinks from the hotplug helper */
        out = glvm_vm_check(vm, CMD_TIMEOUT, "readlink /dev/virtio-ports/org.guestlink.test.srv");
        g_assert_true(g_str_has_prefix(out, "../vport"));
        g_clear_pointer(&out, g_free);

        /* server-mode port, guest -> host and host -> guest */
        g_assert_true(glvm_port_connected(srv));
        out = glvm_vm_check(vm, CMD_TIMEOUT, "printf ping-srv > /dev/virtio-ports/org.guestlink.test.srv");
        g_clear_pointer(&out, g_free);
        b = glvm_port_read_exact(srv, 8, CMD_TIMEOUT, &error);
        g_assert_no_error(error);
        g_assert_cmpmem(g_bytes_get_data(b, NULL), 8, "ping-srv", 8);
        g_clear_pointer(&b, g_bytes_unref);
        p = glvm_vm_spawn(vm, "head -c 8 /dev/virtio-ports/org.guestlink.test.cli", &error);
        g_assert_no_error(error);

        /* client-mode port: QEMU connected to our listener at start */
        g_assert_true(glvm_port_connected(cli));
        g_assert_true(glvm_port_write(cli, "pong-cli", 8, CMD_TIMEOUT, &error));
        g_assert_cmpint(glvm_proc_wait(p, CMD_TIMEOUT, &error), ==, 0);
        g_assert_cmpstr(glvm_proc_output(p), ==, "pong-cli");
        g_clear_pointer(&p, glvm_proc_free);

        /* client mode reconnects after we drop it (reconnect=1 s) */
        glvm_port_disconnect(cli);
        g_assert_true(glvm_port_connect(cli, 10000, &error));
        g_assert_no_error(error);
        p = glvm_vm_spawn(vm, "head -c 5 /dev/virtio-ports/org.guestlink.test.cli", &error);
        g_assert_true(glvm_port_write(cli, "again", 5, CMD_TIMEOUT, &error));
        g_assert_cmpint(glvm_proc_wait(p, CMD_TIMEOUT, &error), ==, 0);
        g_assert_cmpstr(glvm_proc_output(p), ==, "again");
        g_clear_pointer(&p, glvm_proc_free);

        /* QMP: stop/cont and query-status */
        {
                g_autoptr(json_object) r1 = glvm_vm_qmp(vm, "stop", NULL, 5000, &error);
                g_assert_no_error(error);
                g_assert_nonnull(r1);
                g_autoptr(json_object) ev = glvm_vm_wait_event(vm, "STOP", NULL, NULL, 5000, &error);
                g_assert_no_error(error);
                g_assert_nonnull(ev);
        }
        status = glvm_vm_status(vm, &error);
        g_assert_cmpstr(status, ==, "paused");
        g_clear_pointer(&status, g_free);
        {
                g_autoptr(json_object) r2 = glvm_vm_qmp(vm, "cont", NULL, 5000, &error);
                g_assert_no_error(error);
                g_assert_nonnull(r2);
        }
        status = glvm_vm_status(vm, &error);
        g_assert_cmpstr(status, ==, "running");
        {
                /* a QMP error is an error */
                g_autoptr(json_object) r3 = glvm_vm_qmp(vm, "device_del", "{\"id\":\"nope\"}", 5000, &error);
                g_assert_null(r3);
                g_assert_error(error, GLVM_ERROR, GLVM_ERROR_QMP);
                g_clear_error(&error);
        }

        /* guest power-off ends qemu */
        p = glvm_vm_spawn(vm, "sync; poweroff -f", &error);
        g_assert_true(glvm_vm_wait_exit(vm, 30000, &st, &error));
        g_assert_no_error(error);
        g_assert_cmpint(st, ==, 0);
        g_assert_false(glvm_vm_running(vm));
}

/* A guest reboot is a RESET event (with -no-reboot off); the guest comes
 * back, the command channel and the ports' host connections keep working. */
static void test_reset(void) {
        g_autoptr(GlvmVm) vm = glvm_vm_new("vm-reset", GLVM_FLAVOUR_INITRAMFS);
        g_autoptr(GError) error = NULL;
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(json_object) ev = NULL;
        g_autoptr(GBytes) b = NULL;
        g_autofree char *up = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, "org.guestlink.test.srv", GLVM_PORT_SERVER);
        gint64 t0;
        guint gen;

        glvm_vm_set_no_reboot(vm, false);
        g_assert_true(glvm_vm_start(vm, true, BOOT_TIMEOUT, &error));
        g_assert_no_error(error);
        gen = glvm_vm_guest_generation(vm);
        glvm_vm_drop_events(vm);
        t0 = g_get_monotonic_time();
        p = glvm_vm_spawn(vm, "sleep 0.2; reboot -f", &error);
        g_assert_no_error(error);
        ev = glvm_vm_wait_event(vm, "RESET", NULL, NULL, 20000, &error);
        g_assert_no_error(error);
        g_assert_true(glvm_vm_wait_guest_ready(vm, gen, BOOT_TIMEOUT, &error));
        g_assert_no_error(error);
        g_assert_true(glvm_vm_running(vm));
        g_print("# reboot -f -> RESET -> command server back: %.1f s\n", (g_get_monotonic_time() - t0) / 1e6);
        up = glvm_vm_check(vm, CMD_TIMEOUT, "cut -d. -f1 /proc/uptime");
        g_assert_cmpint(atoi(up), <, 30);
        g_free(glvm_vm_check(vm, CMD_TIMEOUT, "printf after-reset > /dev/virtio-ports/org.guestlink.test.srv"));
        b = glvm_port_read_exact(port, 11, CMD_TIMEOUT, &error);
        g_assert_no_error(error);
        g_assert_cmpmem(g_bytes_get_data(b, NULL), 11, "after-reset", 11);
}

/* An appliance VM (glvm_vm_set_appliance): the program starts at boot by
 * itself, the command channel still works beside it, and glvm-guest (PID 1)
 * reaps the appliance's orphans. */
static void test_appliance(void) {
        g_autoptr(GlvmVm) vm = glvm_vm_new("vm-appliance", GLVM_FLAVOUR_INITRAMFS);
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL, *zombies = NULL;

        glvm_vm_set_appliance(vm, "(sleep 1 &); echo appliance-ran >/run/appliance; exec sleep 600");
        g_assert_true(glvm_vm_start(vm, true, BOOT_TIMEOUT, &error));
        g_assert_no_error(error);
        g_assert_true(glvm_vm_wait_console(vm, "glvm: starting appliance", CMD_TIMEOUT, &error));
        out = glvm_vm_check(vm, CMD_TIMEOUT, "while [ ! -e /run/appliance ]; do sleep 0.1; done; cat /run/appliance");
        g_assert_cmpstr(out, ==, "appliance-ran\n");
        g_clear_pointer(&out, g_free);
        out = glvm_vm_check(vm, CMD_TIMEOUT, "pidof sleep");
        g_assert_cmpstr(g_strchomp(out), !=, "");
        /* the orphaned `sleep 1` ended and was reaped: no zombie left */
        glvm_vm_sleep(vm, 1500);
        zombies = glvm_vm_check(vm, CMD_TIMEOUT, "grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l");
        g_assert_cmpstr(g_strchomp(zombies), ==, "0");
}

/* A test that dies (here: SIGKILL, as meson's timeout does) takes its qemu
 * with it, and leaves its console log and QMP transcript behind. */
static void test_crash_cleanup(void) {
        g_autofree char *trap = NULL, *text = NULL, *console = NULL, *qmp = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) parts = NULL;
        GPid pid;
        bool gone = false;

        if (g_test_subprocess()) {
                g_autoptr(GlvmVm) vm = glvm_vm_new("vm-crash", GLVM_FLAVOUR_INITRAMFS);
                g_autofree char *line = NULL;

                g_assert_true(glvm_vm_start(vm, true, BOOT_TIMEOUT, &error));
                line = g_strdup_printf("%d %s %s", (int) glvm_vm_qemu_pid(vm), glvm_vm_run_dir(vm),
                                       glvm_vm_log_dir(vm));
                trap = g_strdup_printf("%s/glvm-trap-%d", g_get_tmp_dir(), (int) getppid());
                g_assert_true(g_file_set_contents(trap, line, -1, NULL));
                kill(getpid(), SIGKILL);
                return;
        }
        /* the child writes "QEMU_PID RUN_DIR LOG_DIR" to a file named after us */
        trap = g_strdup_printf("%s/glvm-trap-%d", g_get_tmp_dir(), (int) getpid());
        g_test_trap_subprocess(NULL, 300 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
        g_test_trap_assert_failed();
        g_assert_true(g_file_get_contents(trap, &text, NULL, NULL));
        (void) unlink(trap);
        parts = g_strsplit(text, " ", 3);
        g_assert_cmpuint(g_strv_length(parts), ==, 3);
        pid = (GPid) atoi(parts[0]);
        g_assert_cmpint(pid, >, 1);
        for (int i = 0; i < 100 && !gone; i++) {
                g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int) pid);
                g_autofree char *stat = NULL;

                /* gone, or a zombie waiting for init to reap it */
                gone = kill(pid, 0) < 0
                               ? errno == ESRCH
                               : (g_file_get_contents(stat_path, &stat, NULL, NULL) && strstr(stat, ") Z ") != NULL);
                if (!gone)
                        g_usleep(50000);
        }
        g_assert_true(gone);
        console = g_build_filename(parts[2], "console.log", NULL);
        qmp = g_build_filename(parts[2], "qmp.log", NULL);
        g_clear_pointer(&text, g_free);
        g_assert_true(g_file_get_contents(console, &text, NULL, NULL));
        g_assert_nonnull(strstr(text, "glvm: init done"));
        g_clear_pointer(&text, g_free);
        g_assert_true(g_file_get_contents(qmp, &text, NULL, NULL));
        g_assert_nonnull(strstr(text, "\"execute\":\"cont\""));
        {
                const char *argv[] = { "rm", "-rf", parts[1], parts[2], NULL };
                g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                                           NULL, NULL));
        }
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        glvm_skip_if_unavailable();
        g_test_add_func("/vm/harness/basic", test_harness);
        g_test_add_func("/vm/harness/reset", test_reset);
        g_test_add_func("/vm/harness/appliance", test_appliance);
        g_test_add_func("/vm/harness/crash-cleanup", test_crash_cleanup);
        return g_test_run();
}
