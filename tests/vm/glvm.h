/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * glvm: the guestlink VM test bed.  Boots a real Debian kernel under
 * qemu-system-x86_64 (q35, TCG) with virtio-serial ports, and gives a test
 * the host side of every port, a command channel into the guest, and QMP.
 *
 * Every wait takes a timeout in milliseconds and fails with a GError
 * (GLVM_ERROR_TIMEOUT) when it expires.  See tests/vm/README.md.
 */
#pragma once

#include <glib.h>
#include <json.h>
#include <stdbool.h>
#include <stddef.h>

G_BEGIN_DECLS

/* Shared with other test headers: define once (protocol/tests/test-util.h
 * defines it too; use the same guard there). */
#ifndef GL_JSON_OBJECT_AUTOPTR
#define GL_JSON_OBJECT_AUTOPTR 1
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)
#endif

#define GLVM_ERROR (glvm_error_quark())
GQuark glvm_error_quark(void);

typedef enum {
        GLVM_ERROR_FAILED,
        GLVM_ERROR_TIMEOUT,
        GLVM_ERROR_EXITED,  /* qemu exited while we waited for something else */
        GLVM_ERROR_EOF,     /* the host side of a port saw end of file */
        GLVM_ERROR_QMP,     /* QMP answered with an error */
        GLVM_ERROR_MISSING, /* qemu, kernel or another prerequisite is missing */
} GlvmErrorCode;

typedef enum {
        GLVM_FLAVOUR_INITRAMFS, /* busybox + virtio modules + glvm-guest as PID 1 */
        GLVM_FLAVOUR_SYSTEMD,   /* Debian bookworm ext4 root with systemd and udev */
} GlvmFlavour;

typedef enum {
        GLVM_PORT_SERVER,  /* QEMU listens, the test connects (server=on) */
        GLVM_PORT_CLIENT,  /* the test listens, QEMU connects and reconnects */
        GLVM_PORT_CONSOLE, /* a virtconsole (hvc) in server mode */
} GlvmPortMode;

typedef struct GlvmVm GlvmVm;
typedef struct GlvmPort GlvmPort;
typedef struct GlvmProc GlvmProc;

/* Environment checks.  glvm_ci() is true when $CI is set and not "false"/"0".
 * glvm_skip_if_unavailable() exits the process with 77 when qemu is missing
 * and CI is not set; with CI set, a missing qemu or kernel is a test failure. */
bool glvm_ci(void);
void glvm_skip_if_unavailable(void);

/* --- configuration (before glvm_vm_start) -------------------------------- */
GlvmVm *glvm_vm_new(const char *test_name, GlvmFlavour flavour);
void glvm_vm_free(GlvmVm *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlvmVm, glvm_vm_free)

/* Adds a port named @name on the test bus; its QEMU device id is returned by
 * glvm_port_device_id() and its chardev id by glvm_port_chardev_id(). */
GlvmPort *glvm_vm_add_port(GlvmVm *vm, const char *name, GlvmPortMode mode);
void glvm_vm_set_max_ports(GlvmVm *vm, unsigned max_ports);
void glvm_vm_set_memory(GlvmVm *vm, unsigned mib);
/* Copy a host executable into the initramfs at @guest_path (NULL: same path),
 * with the shared libraries ldd lists and the loader, at their own paths. */
void glvm_vm_add_binary(GlvmVm *vm, const char *host_path, const char *guest_path);
void glvm_vm_add_file(GlvmVm *vm, const char *host_path, const char *guest_path, unsigned mode);
void glvm_vm_add_kernel_module(GlvmVm *vm, const char *module);
/* Makes the initramfs start @command (/bin/sh, output on the serial
 * console) at boot, in the background; glvm-guest still runs as PID 1,
 * reaps every child and serves the command channel, so a test can use both.
 * See also GlvmAppliance below. */
void glvm_vm_set_appliance(GlvmVm *vm, const char *command);
/* Extra kernel command line words. */
void glvm_vm_append_cmdline(GlvmVm *vm, const char *words);
/* Extra raw qemu arguments. */
void glvm_vm_add_qemu_args(GlvmVm *vm, const char *const *args);
/* Keep the default -no-reboot (a guest reboot makes qemu exit) or let the
 * guest reset (wait for RESET with glvm_vm_wait_event). */
void glvm_vm_set_no_reboot(GlvmVm *vm, bool no_reboot);

/* Builds (or reuses) the guest image, starts qemu paused, connects QMP, the
 * control channel and every server-mode port with @connect_ports, resumes
 * the guest and waits up to @timeout_ms for the guest command server. */
bool glvm_vm_start(GlvmVm *vm, bool connect_ports, int timeout_ms, GError **error);
/* Kills qemu (if running) and checks no process of this VM survives. */
void glvm_vm_stop(GlvmVm *vm);

const char *glvm_vm_log_dir(GlvmVm *vm);
const char *glvm_vm_run_dir(GlvmVm *vm);
char *glvm_vm_console_log(GlvmVm *vm);
bool glvm_vm_wait_console(GlvmVm *vm, const char *needle, int timeout_ms, GError **error);
GPid glvm_vm_qemu_pid(GlvmVm *vm);
/* Guest reboots (glvm_vm_set_no_reboot(vm, false)): each boot's command
 * server says HELLO again.  Take the generation before making the guest
 * reboot, then wait for a newer one.  Reboot only with no command output in
 * flight; commands spawned before the reboot never report an exit. */
guint glvm_vm_guest_generation(GlvmVm *vm);
bool glvm_vm_wait_guest_ready(GlvmVm *vm, guint after_generation, int timeout_ms, GError **error);
/* Milliseconds from qemu spawn to the guest command server's HELLO. */
gint64 glvm_vm_boot_ms(GlvmVm *vm);

/* Runs the VM's main context once, for at most @timeout_ms. */
void glvm_vm_iterate(GlvmVm *vm, int timeout_ms);
/* Runs the VM's main context for @ms milliseconds. */
void glvm_vm_sleep(GlvmVm *vm, int ms);

/* --- QMP ------------------------------------------------------------------ */
/* @args_json: a JSON object text or NULL.  Returns the "return" value (a new
 * reference) or NULL with GLVM_ERROR_QMP / TIMEOUT. */
json_object *glvm_vm_qmp(GlvmVm *vm, const char *command, const char *args_json, int timeout_ms,
                         GError **error) G_GNUC_WARN_UNUSED_RESULT;
json_object *glvm_vm_qmpf(GlvmVm *vm, const char *command, int timeout_ms, GError **error, const char *args_fmt, ...)
        G_GNUC_PRINTF(5, 6) G_GNUC_WARN_UNUSED_RESULT;
/* Waits for (and consumes) the oldest queued event named @event whose "data"
 * has member @key equal to @value (both may be NULL).  Returns the whole
 * event object (new reference). */
json_object *glvm_vm_wait_event(GlvmVm *vm, const char *event, const char *key, const char *value, int timeout_ms,
                                GError **error) G_GNUC_WARN_UNUSED_RESULT;
void glvm_vm_drop_events(GlvmVm *vm);
/* query-status "status" string. */
char *glvm_vm_status(GlvmVm *vm, GError **error);
/* Waits for qemu to exit (guest power-off); returns its exit status. */
bool glvm_vm_wait_exit(GlvmVm *vm, int timeout_ms, int *ret_status, GError **error);
bool glvm_vm_running(GlvmVm *vm);

/* --- guest commands -------------------------------------------------------- */
GlvmProc *glvm_vm_spawn(GlvmVm *vm, const char *cmd, GError **error);
GlvmProc *glvm_vm_spawnf(GlvmVm *vm, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Runs @cmd to completion: returns its exit code (>= 0, 128+N for signal N)
 * or -1 with @error; @ret_output gets stdout+stderr. */
int glvm_vm_run(GlvmVm *vm, const char *cmd, int timeout_ms, char **ret_output, GError **error);
/* Waits until @needle appears in the output after the last match. */
bool glvm_proc_expect(GlvmProc *p, const char *needle, int timeout_ms, GError **error);
/* Like expect, but returns the rest of the line following @prefix. */
char *glvm_proc_expect_line(GlvmProc *p, const char *prefix, int timeout_ms, GError **error);
bool glvm_proc_send(GlvmProc *p, const char *text, GError **error);
bool glvm_proc_close_stdin(GlvmProc *p, GError **error);
bool glvm_proc_kill(GlvmProc *p, int sig, GError **error);
/* Returns the exit code (128+N for signal N) or -1 with @error. */
int glvm_proc_wait(GlvmProc *p, int timeout_ms, GError **error);
const char *glvm_proc_output(GlvmProc *p);
/* Test helper: runs a command that must exit 0 within @timeout_ms; fails the
 * test (assertion with the command's output) otherwise.  Returns the output. */
char *glvm_vm_check(GlvmVm *vm, int timeout_ms, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void glvm_proc_free(GlvmProc *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlvmProc, glvm_proc_free)

/* --- ports (host side) ------------------------------------------------------ */
GlvmPort *glvm_vm_port(GlvmVm *vm, const char *name);
const char *glvm_port_name(GlvmPort *p);
const char *glvm_port_device_id(GlvmPort *p);
const char *glvm_port_chardev_id(GlvmPort *p);
const char *glvm_port_socket_path(GlvmPort *p);
/* Server mode: connect to QEMU's socket.  Client mode: wait for QEMU to
 * connect to our listener (it retries every second). */
bool glvm_port_connect(GlvmPort *p, int timeout_ms, GError **error);
void glvm_port_disconnect(GlvmPort *p);
bool glvm_port_connected(GlvmPort *p);
/* The peer (QEMU) closed the connection: a read returned 0 or failed. */
bool glvm_port_eof(GlvmPort *p);
guint64 glvm_port_rx_total(GlvmPort *p);
/* When reading is on (the default), received bytes are drained into the
 * port's buffer whenever the context runs; off, the socket is left alone so
 * the guest's queue fills. */
void glvm_port_set_reading(GlvmPort *p, bool reading);
/* Queues @len bytes and waits until the kernel took them all. */
bool glvm_port_write(GlvmPort *p, const void *data, size_t len, int timeout_ms, GError **error);
/* Queues bytes without waiting; they are sent as the context runs. */
void glvm_port_queue(GlvmPort *p, const void *data, size_t len);
size_t glvm_port_pending_tx(GlvmPort *p);
/* Waits until at least @len bytes were received, then removes and returns
 * exactly @len of them (a GBytes). */
GBytes *glvm_port_read_exact(GlvmPort *p, size_t len, int timeout_ms, GError **error);
/* Waits until some bytes (at most @max) are available; reads the socket
 * directly when reading is off. */
GBytes *glvm_port_read_some(GlvmPort *p, size_t max, int timeout_ms, GError **error);
/* Everything received so far (removed from the buffer). */
GBytes *glvm_port_take(GlvmPort *p);
size_t glvm_port_available(GlvmPort *p);
/* Waits for the guest/QEMU side to close the connection. */
bool glvm_port_wait_eof(GlvmPort *p, int timeout_ms, GError **error);
/* Waits until the socket has been quiet (no bytes) for @quiet_ms. */
void glvm_port_drain(GlvmPort *p, int quiet_ms, int timeout_ms);

/* Hot-plug: chardev-add (a new server socket) + device_add of a
 * virtserialport on the test bus.  Returns the new port, or NULL. */
GlvmPort *glvm_vm_hotplug_port(GlvmVm *vm, const char *name, int timeout_ms, GError **error);
/* device_del + wait for DEVICE_DELETED; the chardev stays. */
bool glvm_vm_unplug_port(GlvmPort *p, int timeout_ms, GError **error);
/* device_add again on the port's (still existing) chardev. */
bool glvm_vm_replug_port(GlvmPort *p, int timeout_ms, GError **error);

/* --- appliance images -------------------------------------------------------
 * An initramfs guest for machines glvm does not start itself (libvirt
 * domains, the demo): at boot /init loads the virtio modules, starts
 * @command in the background (output on the serial console, console=ttyS0)
 * and execs glvm-guest as PID 1, which reaps every orphan and serves the
 * command channel only if the machine has one.  The guest's program powers
 * it off itself (reboot(2)).  Images are cached like the VM images
 * (GLVM_CACHE_DIR or BUILD/tests/vm/cache). */
typedef struct GlvmAppliance GlvmAppliance;

GlvmAppliance *glvm_appliance_new(const char *command);
void glvm_appliance_free(GlvmAppliance *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlvmAppliance, glvm_appliance_free)
/* As glvm_vm_add_binary() / glvm_vm_add_file(). */
void glvm_appliance_add_binary(GlvmAppliance *a, const char *host_path, const char *guest_path);
void glvm_appliance_add_file(GlvmAppliance *a, const char *host_path, const char *guest_path, unsigned mode);
/* Builds (or reuses) the image and writes @dir/vmlinuz (a copy of the host
 * kernel) and @dir/initrd.img, mode 0644 (libvirt's DAC driver chowns what it
 * boots, so these are copies, never the originals); a file that already has
 * the right contents is left alone.  Creates @dir (0755) if needed. */
bool glvm_appliance_build(GlvmAppliance *a, const char *dir, char **ret_kernel, char **ret_initrd, GError **error);

G_END_DECLS
