/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The VM object: configuration, qemu's command line and life cycle. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glvm-private.h"

void glvm_image_file_free(gpointer data) {
        GlvmImageFile *f = data;

        g_free(f->host_path);
        g_free(f->guest_path);
        if (f->data)
                g_bytes_unref(f->data);
        g_free(f);
}

static void remove_tree(const char *path) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(path, n, NULL);
                if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
                        remove_tree(p);
                else
                        (void) unlink(p);
        }
        (void) rmdir(path);
}

/* Sockets live in $TMPDIR/glvm-PID-XXXXXX (a unix socket path must stay
 * short); a test that aborted leaves its directory behind: remove those of
 * processes that no longer exist. */
static void remove_stale_run_dirs(void) {
        g_autoptr(GDir) d = g_dir_open(g_get_tmp_dir(), 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
                long pid;
                char *end;

                if (!g_str_has_prefix(n, "glvm-"))
                        continue;
                pid = strtol(n + 5, &end, 10);
                if (pid <= 0 || *end != '-' || kill((pid_t) pid, 0) == 0 || errno != ESRCH)
                        continue;
                {
                        g_autofree char *p = g_build_filename(g_get_tmp_dir(), n, NULL);
                        remove_tree(p);
                }
        }
}

GlvmVm *glvm_vm_new(const char *test_name, GlvmFlavour flavour) {
        GlvmVm *vm = g_new0(GlvmVm, 1);
        g_autofree char *logs = glvm_logs_root();

        vm->test_name = g_strdup(test_name);
        g_strdelimit(vm->test_name, "/ ", '-');
        vm->flavour = flavour;
        /* the thread-default context: every VM of a test and whatever else the
         * test attached there (a bridge under test, say) runs while a test waits */
        vm->ctx = g_main_context_ref_thread_default();
        vm->cmdline_extra = g_string_new(NULL);
        vm->qemu_extra = g_ptr_array_new_with_free_func(g_free);
        vm->ports = g_ptr_array_new_with_free_func((GDestroyNotify) glvm_port_free);
        vm->binaries = g_ptr_array_new_with_free_func(glvm_image_file_free);
        vm->files = g_ptr_array_new_with_free_func(glvm_image_file_free);
        vm->modules = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(vm->modules, g_strdup("virtio_pci"));
        g_ptr_array_add(vm->modules, g_strdup("virtio_console"));
        vm->max_ports = 31;
        vm->memory_mib = flavour == GLVM_FLAVOUR_SYSTEMD ? 512 : 256;
        vm->no_reboot = true;
        vm->qmp_in = g_string_new(NULL);
        g_queue_init(&vm->qmp_events);
        vm->ctl_in = g_string_new(NULL);
        vm->procs = g_hash_table_new(g_int64_hash, g_int64_equal);
        vm->next_proc_id = 1;
        vm->qmp_next_id = 1;
        vm->cache_dir = glvm_cache_dir();
        remove_stale_run_dirs();
        {
                g_autofree char *tmpl = g_strdup_printf("glvm-%d-XXXXXX", (int) getpid());
                vm->run_dir = g_dir_make_tmp(tmpl, NULL);
        }
        g_assert(vm->run_dir);
        vm->log_dir = g_strdup_printf("%s/%s-%d", logs, vm->test_name, (int) getpid());
        g_assert(g_mkdir_with_parents(vm->log_dir, 0755) == 0);
        vm->console_path = g_build_filename(vm->log_dir, "console.log", NULL);
        vm->control = glvm_port_new(vm, GLVM_CONTROL_PORT, GLVM_PORT_SERVER, true);
        return vm;
}

/* Kills every process whose command line mentions our run directory: a qemu
 * we started (or anything it started) must not outlive the test. */
static unsigned kill_strays(GlvmVm *vm) {
        g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
        const char *n;
        unsigned found = 0;

        while (d && (n = g_dir_read_name(d))) {
                g_autofree char *p = NULL, *cmd = NULL;
                gsize len;
                long pid = strtol(n, NULL, 10);

                if (pid <= 0 || pid == getpid())
                        continue;
                p = g_strdup_printf("/proc/%s/cmdline", n);
                if (!g_file_get_contents(p, &cmd, &len, NULL) || len == 0)
                        continue;
                for (gsize i = 0; i + 1 < len; i++)
                        if (cmd[i] == 0)
                                cmd[i] = ' ';
                if (strstr(cmd, vm->run_dir)) {
                        (void) kill((pid_t) pid, SIGKILL);
                        found++;
                }
        }
        return found;
}

void glvm_vm_stop(GlvmVm *vm) {
        if (vm->qemu_proc && !vm->qemu_exited) {
                g_subprocess_force_exit(vm->qemu_proc);
                (void) g_subprocess_wait(vm->qemu_proc, NULL, NULL);
                vm->qemu_exited = true;
                glvm_log_line(vm->qmp_log, "--", "qemu killed", strlen("qemu killed"));
        }
        if (vm->qemu_pid > 0) {
                /* reaped: the pid must be gone */
                g_assert_true(kill(vm->qemu_pid, 0) < 0 && errno == ESRCH);
                vm->qemu_pid = 0;
        }
        if (vm->run_dir && kill_strays(vm) > 0)
                g_error("glvm: a process of %s survived its qemu", vm->test_name);
}

void glvm_vm_free(GlvmVm *vm) {
        bool keep;

        if (!vm)
                return;
        glvm_vm_stop(vm);
        glvm_control_abandon(vm);
        glvm_qmp_close(vm);
        g_ptr_array_unref(vm->ports);
        glvm_port_free(vm->control);
        g_clear_object(&vm->qemu_proc);
        while (!g_queue_is_empty(&vm->qmp_events))
                json_object_put(g_queue_pop_head(&vm->qmp_events));
        if (vm->qmp_reply)
                json_object_put(vm->qmp_reply);
        if (vm->qmp_log)
                fclose(vm->qmp_log);
        if (vm->control_log)
                fclose(vm->control_log);
        keep = g_test_failed() || g_getenv("GLVM_KEEP_LOGS");
        if (keep)
                g_test_message("glvm: logs of %s kept in %s", vm->test_name, vm->log_dir);
        else
                remove_tree(vm->log_dir);
        if (vm->run_dir)
                remove_tree(vm->run_dir);
        g_hash_table_unref(vm->procs);
        g_string_free(vm->ctl_in, TRUE);
        g_string_free(vm->qmp_in, TRUE);
        g_string_free(vm->cmdline_extra, TRUE);
        g_ptr_array_unref(vm->qemu_extra);
        g_ptr_array_unref(vm->binaries);
        g_ptr_array_unref(vm->files);
        g_ptr_array_unref(vm->modules);
        g_main_context_unref(vm->ctx);
        g_free(vm->hello_text);
        g_free(vm->console_path);
        g_free(vm->appliance);
        g_free(vm->test_name);
        g_free(vm->run_dir);
        g_free(vm->log_dir);
        g_free(vm->cache_dir);
        g_free(vm->qemu);
        g_free(vm->kernel);
        g_free(vm->kver);
        g_free(vm->image);
        g_free(vm);
}

GlvmPort *glvm_vm_add_port(GlvmVm *vm, const char *name, GlvmPortMode mode) {
        GlvmPort *p = glvm_port_new(vm, name, mode, false);

        g_ptr_array_add(vm->ports, p);
        return p;
}

void glvm_vm_set_max_ports(GlvmVm *vm, unsigned max_ports) {
        vm->max_ports = max_ports;
}

void glvm_vm_set_memory(GlvmVm *vm, unsigned mib) {
        vm->memory_mib = mib;
}

void glvm_vm_set_no_reboot(GlvmVm *vm, bool no_reboot) {
        vm->no_reboot = no_reboot;
}

void glvm_image_file_add(GPtrArray *a, const char *host, const char *guest, unsigned mode) {
        GlvmImageFile *f = g_new0(GlvmImageFile, 1);

        f->host_path = g_canonicalize_filename(host, NULL);
        f->guest_path = g_strdup(guest ? guest : f->host_path);
        f->mode = mode;
        g_ptr_array_add(a, f);
}

void glvm_vm_add_binary(GlvmVm *vm, const char *host_path, const char *guest_path) {
        glvm_image_file_add(vm->binaries, host_path, guest_path, 0755);
}

void glvm_vm_add_file(GlvmVm *vm, const char *host_path, const char *guest_path, unsigned mode) {
        glvm_image_file_add(vm->files, host_path, guest_path, mode);
}

void glvm_vm_set_appliance(GlvmVm *vm, const char *command) {
        g_free(vm->appliance);
        vm->appliance = g_strdup(command);
}

void glvm_vm_add_kernel_module(GlvmVm *vm, const char *module) {
        g_ptr_array_add(vm->modules, g_strdup(module));
}

void glvm_vm_append_cmdline(GlvmVm *vm, const char *words) {
        g_string_append_printf(vm->cmdline_extra, " %s", words);
}

void glvm_vm_add_qemu_args(GlvmVm *vm, const char *const *args) {
        for (; *args; args++)
                g_ptr_array_add(vm->qemu_extra, g_strdup(*args));
}

const char *glvm_vm_log_dir(GlvmVm *vm) {
        return vm->log_dir;
}

const char *glvm_vm_run_dir(GlvmVm *vm) {
        return vm->run_dir;
}

GPid glvm_vm_qemu_pid(GlvmVm *vm) {
        return vm->qemu_pid;
}

gint64 glvm_vm_boot_ms(GlvmVm *vm) {
        return vm->hello_time ? (vm->hello_time - vm->spawn_time) / 1000 : -1;
}

bool glvm_vm_running(GlvmVm *vm) {
        return vm->qemu_proc && !vm->qemu_exited;
}

char *glvm_vm_console_log(GlvmVm *vm) {
        char *text = NULL;

        if (!g_file_get_contents(vm->console_path, &text, NULL, NULL))
                return g_strdup("");
        return text;
}

bool glvm_vm_wait_console(GlvmVm *vm, const char *needle, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        for (;;) {
                g_autofree char *log = glvm_vm_console_log(vm);
                if (strstr(log, needle))
                        return true;
                if (glvm_deadline_passed(deadline)) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT,
                                    "timed out after %d ms waiting for console text '%s'", timeout_ms, needle);
                        return false;
                }
                glvm_vm_iterate_until(vm, MIN(deadline, glvm_deadline(100)));
        }
}

static void child_setup(gpointer data) {
        pid_t parent = (pid_t) GPOINTER_TO_INT(data);

        /* qemu dies with the test, even when the test is SIGKILLed */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1);
}

static void qemu_exited_cb(GObject *source, GAsyncResult *res, gpointer data) {
        GlvmVm *vm = data;
        GSubprocess *sp = G_SUBPROCESS(source);
        char msg[64];

        (void) g_subprocess_wait_finish(sp, res, NULL);
        if (vm->qemu_proc != sp || vm->qemu_exited)
                return;
        vm->qemu_exited = true;
        vm->qemu_status = g_subprocess_get_if_exited(sp) ? g_subprocess_get_exit_status(sp)
                                                         : 128 + g_subprocess_get_term_sig(sp);
        g_snprintf(msg, sizeof(msg), "qemu exited, status %d", vm->qemu_status);
        glvm_log_line(vm->qmp_log, "--", msg, strlen(msg));
}

static void add_arg(GPtrArray *argv, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void add_arg(GPtrArray *argv, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        g_ptr_array_add(argv, g_strdup_vprintf(fmt, ap));
        va_end(ap);
}

static void add_port_args(GPtrArray *argv, GlvmPort *p, const char *bus) {
        add_arg(argv, "-chardev");
        if (p->mode == GLVM_PORT_CLIENT)
                add_arg(argv, "socket,id=%s,path=%s,server=off,reconnect=1", p->chardev_id, p->path);
        else
                add_arg(argv, "socket,id=%s,path=%s,server=on,wait=off", p->chardev_id, p->path);
        add_arg(argv, "-device");
        add_arg(argv, "%s,bus=%s.0,chardev=%s,name=%s,id=%s",
                p->mode == GLVM_PORT_CONSOLE ? "virtconsole" : "virtserialport", bus, p->chardev_id, p->name,
                p->device_id);
}

static GPtrArray *qemu_argv(GlvmVm *vm) {
        GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *qmp = g_build_filename(vm->run_dir, "qmp.sock", NULL);

        add_arg(argv, "%s", vm->qemu);
        add_arg(argv, "-machine");
        add_arg(argv, "q35");
        add_arg(argv, "-accel");
        add_arg(argv, "tcg");
        add_arg(argv, "-m");
        add_arg(argv, "%u", vm->memory_mib);
        add_arg(argv, "-nodefaults");
        add_arg(argv, "-no-user-config");
        add_arg(argv, "-display");
        add_arg(argv, "none");
        add_arg(argv, "-S");
        if (vm->no_reboot)
                add_arg(argv, "-no-reboot");
        add_arg(argv, "-kernel");
        add_arg(argv, "%s", vm->kernel);
        if (vm->flavour == GLVM_FLAVOUR_INITRAMFS) {
                add_arg(argv, "-initrd");
                add_arg(argv, "%s", vm->image);
                add_arg(argv, "-append");
                add_arg(argv, "console=ttyS0 panic=-1 quiet%s", vm->cmdline_extra->str);
        } else {
                add_arg(argv, "-initrd");
                add_arg(argv, "/boot/initrd.img-%s", vm->kver);
                add_arg(argv, "-append");
                add_arg(argv, "console=ttyS0 root=/dev/vda rw panic=-1 quiet%s", vm->cmdline_extra->str);
                add_arg(argv, "-drive");
                add_arg(argv, "file=%s,if=virtio,format=raw,cache=unsafe,snapshot=on", vm->image);
        }
        add_arg(argv, "-chardev");
        add_arg(argv, "file,id=glvmserial,path=%s", vm->console_path);
        add_arg(argv, "-serial");
        add_arg(argv, "chardev:glvmserial");
        add_arg(argv, "-qmp");
        add_arg(argv, "unix:%s,server=on,wait=off", qmp);
        /* the control channel sits on its own bus, so a test may unplug the
         * whole test bus (vser0) */
        add_arg(argv, "-device");
        add_arg(argv, "virtio-serial-pci,id=%s,max_ports=2", GLVM_CONTROL_BUS);
        add_port_args(argv, vm->control, GLVM_CONTROL_BUS);
        add_arg(argv, "-device");
        add_arg(argv, "pcie-root-port,id=glvmrp1,chassis=1,slot=1,bus=pcie.0");
        add_arg(argv, "-device");
        add_arg(argv, "virtio-serial-pci,id=%s,bus=glvmrp1,max_ports=%u", GLVM_TEST_BUS, vm->max_ports);
        for (guint i = 0; i < vm->ports->len; i++)
                add_port_args(argv, vm->ports->pdata[i], GLVM_TEST_BUS);
        for (guint i = 0; i < vm->qemu_extra->len; i++)
                add_arg(argv, "%s", (char *) vm->qemu_extra->pdata[i]);
        g_ptr_array_add(argv, NULL);
        return argv;
}

static bool wait_hello(GlvmVm *vm, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        while (!vm->hello) {
                if (vm->qemu_exited) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_EXITED,
                                    "qemu exited (status %d) before the guest was ready; see %s", vm->qemu_status,
                                    vm->log_dir);
                        return false;
                }
                if (glvm_deadline_passed(deadline)) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT,
                                    "guest command server not ready after %d ms; see %s", timeout_ms, vm->log_dir);
                        return false;
                }
                glvm_vm_iterate_until(vm, deadline);
        }
        return true;
}

bool glvm_vm_start(GlvmVm *vm, bool connect_ports, int timeout_ms, GError **error) {
        g_autoptr(GSubprocessLauncher) l = NULL;
        g_autoptr(GPtrArray) argv = NULL;
        g_autofree char *qemu_log = g_build_filename(vm->log_dir, "qemu.log", NULL);
        g_autofree char *cmd_log = g_build_filename(vm->log_dir, "cmdline.txt", NULL);
        g_autofree char *qmp_log = g_build_filename(vm->log_dir, "qmp.log", NULL);
        g_autofree char *ctl_log = g_build_filename(vm->log_dir, "control.log", NULL);
        g_autofree char *cmdline = NULL;
        g_autoptr(json_object) r = NULL;
        gint64 deadline = glvm_deadline(timeout_ms);
        gint64 t0;

        g_assert(!vm->started);
        vm->started = true;
        vm->qemu = glvm_find_qemu();
        if (!vm->qemu) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_MISSING, "qemu-system-x86_64 not found");
                return false;
        }
        if (!glvm_find_kernel(&vm->kernel, &vm->kver, error))
                return false;
        t0 = g_get_monotonic_time();
        if (vm->flavour == GLVM_FLAVOUR_INITRAMFS)
                vm->image = glvm_image_build_initramfs(vm, error);
        else
                vm->image = glvm_image_build_systemd(vm, error);
        if (!vm->image)
                return false;
        g_test_message("glvm: image %s ready in %.0f ms", vm->image, (g_get_monotonic_time() - t0) / 1e3);
        for (guint i = 0; i < vm->ports->len; i++)
                if (!glvm_port_prepare(vm->ports->pdata[i], error))
                        return false;
        if (!glvm_port_prepare(vm->control, error))
                return false;

        vm->qmp_log = fopen(qmp_log, "we");
        vm->control_log = fopen(ctl_log, "we");
        argv = qemu_argv(vm);
        cmdline = g_strjoinv(" ", (char **) argv->pdata);
        (void) g_file_set_contents(cmd_log, cmdline, -1, NULL);
        g_test_message("glvm: %s: logs in %s", vm->test_name, vm->log_dir);

        l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT | G_SUBPROCESS_FLAGS_STDERR_MERGE);
        g_subprocess_launcher_set_stdout_file_path(l, qemu_log);
        g_subprocess_launcher_set_child_setup(l, child_setup, GINT_TO_POINTER(getpid()), NULL);
        vm->spawn_time = g_get_monotonic_time();
        vm->qemu_proc = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, error);
        if (!vm->qemu_proc)
                return false;
        vm->qemu_pid = (GPid) g_ascii_strtoll(g_subprocess_get_identifier(vm->qemu_proc), NULL, 10);
        g_main_context_push_thread_default(vm->ctx);
        g_subprocess_wait_async(vm->qemu_proc, NULL, qemu_exited_cb, vm);
        g_main_context_pop_thread_default(vm->ctx);

        if (!glvm_qmp_connect(vm, (int) ((deadline - g_get_monotonic_time()) / 1000), error))
                return false;
        if (!glvm_port_connect(vm->control, 5000, error))
                return false;
        if (connect_ports)
                for (guint i = 0; i < vm->ports->len; i++) {
                        GlvmPort *p = vm->ports->pdata[i];
                        if (p->mode != GLVM_PORT_CLIENT && !glvm_port_connect(p, 5000, error))
                                return false;
                }
        r = glvm_vm_qmp(vm, "cont", NULL, 5000, error);
        if (!r)
                return false;
        if (!wait_hello(vm, (int) MAX(0, (deadline - g_get_monotonic_time()) / 1000), error))
                return false;
        if (connect_ports)
                for (guint i = 0; i < vm->ports->len; i++) {
                        GlvmPort *p = vm->ports->pdata[i];
                        if (p->mode == GLVM_PORT_CLIENT && !glvm_port_connect(p, 5000, error))
                                return false;
                }
        return true;
}

guint glvm_vm_guest_generation(GlvmVm *vm) {
        return vm->hello_count;
}

bool glvm_vm_wait_guest_ready(GlvmVm *vm, guint after_generation, int timeout_ms, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        while (vm->hello_count <= after_generation) {
                if (vm->qemu_exited || glvm_deadline_passed(deadline)) {
                        g_set_error(error, GLVM_ERROR, vm->qemu_exited ? GLVM_ERROR_EXITED : GLVM_ERROR_TIMEOUT,
                                    "guest command server did not come back within %d ms", timeout_ms);
                        return false;
                }
                glvm_vm_iterate_until(vm, deadline);
        }
        return true;
}

bool glvm_vm_wait_exit(GlvmVm *vm, int timeout_ms, int *ret_status, GError **error) {
        gint64 deadline = glvm_deadline(timeout_ms);

        while (!vm->qemu_exited) {
                if (glvm_deadline_passed(deadline)) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_TIMEOUT, "qemu still running after %d ms",
                                    timeout_ms);
                        return false;
                }
                glvm_vm_iterate_until(vm, deadline);
        }
        if (ret_status)
                *ret_status = vm->qemu_status;
        return true;
}
