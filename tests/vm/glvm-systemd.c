/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The systemd flavour: a Debian bookworm root file system (mmdebstrap,
 * minbase + systemd + udev) with glvm-guest as a service, the virtio kernel
 * modules of the host's kernel and an ext4 image made by mkfs.ext4 -d.  Two
 * cache levels: the rootfs tarball (slow: packages) and the final image
 * (fast: rebuilt whenever glvm-guest or the kernel changes).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glvm-private.h"

#define GLVM_ROOTFS_FORMAT "glvm-rootfs-1"
#define GLVM_SYSTEMD_FORMAT "glvm-systemd-5"
#define GLVM_SUITE "bookworm"
#define GLVM_INCLUDE "systemd-sysv,udev,dbus,kmod,iproute2,procps,libglib2.0-0,libjson-c5,libsystemd0"

static const char guest_unit[] = "[Unit]\n"
                                 "Description=glvm test bed command server\n"
                                 "\n"
                                 "[Service]\n"
                                 "ExecStart=/usr/local/lib/glvm/glvm-guest\n"
                                 "Restart=always\n"
                                 "RestartSec=1\n"
                                 "\n"
                                 "[Install]\n"
                                 "WantedBy=multi-user.target\n";

static const char getty_dropin[] = "[Service]\n"
                                   "ExecStart=\n"
                                   "ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %I $TERM\n";

/* Kernel module directories copied into the image (udev loads them). */
static const char *const module_dirs[] = {
        "kernel/drivers/virtio",
        "kernel/drivers/char/virtio_console.ko",
        "kernel/drivers/block/virtio_blk.ko",
        "kernel/drivers/char/hw_random",
        "kernel/net/vmw_vsock",
        /* the ACPI power button: QMP system_powerdown -> logind */
        "kernel/drivers/acpi/button.ko",
        "kernel/drivers/input/evdev.ko",
        NULL,
};

static bool run(const char *const *argv, GError **error) {
        g_autofree char *out = glvm_run_capture(argv, error);

        return out != NULL;
}

static int cache_lock(const char *dir, GError **error) {
        g_autofree char *lock = g_build_filename(dir, ".lock-systemd", NULL);
        int fd;

        if (g_mkdir_with_parents(dir, 0755) < 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "mkdir %s: %s", dir, g_strerror(errno));
                return -1;
        }
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || flock(fd, LOCK_EX) < 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "lock %s: %s", lock, g_strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static void key_add_stat(GChecksum *key, const char *path) {
        struct stat st;
        char buf[300];

        if (stat(path, &st) < 0)
                memset(&st, 0, sizeof(st));
        g_snprintf(buf, sizeof(buf), "|%s|%lld|%lld.%09ld", path, (long long) st.st_size, (long long) st.st_mtim.tv_sec,
                   st.st_mtim.tv_nsec);
        g_checksum_update(key, (const guchar *) buf, -1);
}

static char *build_rootfs(const char *cache, GError **error) {
        g_autoptr(GChecksum) key = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree char *out = NULL, *tmp = NULL;
        gint64 t0 = g_get_monotonic_time();

        g_checksum_update(key, (const guchar *) GLVM_ROOTFS_FORMAT GLVM_SUITE GLVM_INCLUDE, -1);
        out = g_strdup_printf("%s/rootfs-%.16s.tar", cache, g_checksum_get_string(key));
        if (g_file_test(out, G_FILE_TEST_EXISTS))
                return g_steal_pointer(&out);
        if (!g_find_program_in_path("mmdebstrap")) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_MISSING, "mmdebstrap not found (apt-get install mmdebstrap)");
                return NULL;
        }
        tmp = g_strdup_printf("%s.tmp.%d.tar", out, (int) getpid());
        {
                const char *argv[] = { "mmdebstrap", "--variant=minbase", "--include=" GLVM_INCLUDE,
                                       "--quiet",    GLVM_SUITE,          tmp,
                                       NULL };
                if (!run(argv, error)) {
                        (void) unlink(tmp);
                        return NULL;
                }
        }
        if (rename(tmp, out) < 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "rename: %s", g_strerror(errno));
                return NULL;
        }
        g_test_message("glvm: built %s in %.1f s", out, (g_get_monotonic_time() - t0) / 1e6);
        return g_steal_pointer(&out);
}

static bool write_file(const char *root, const char *path, const char *text, GError **error) {
        g_autofree char *p = g_build_filename(root, path, NULL);
        g_autofree char *dir = g_path_get_dirname(p);

        if (g_mkdir_with_parents(dir, 0755) < 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "mkdir %s: %s", dir, g_strerror(errno));
                return false;
        }
        return g_file_set_contents(p, text, -1, error);
}

/* Copies the libraries of @host that the image lacks (e.g. the sanitizer
 * runtimes of an ASan build) at their own paths. */
static bool copy_missing_libs(const char *root, const char *host, GError **error) {
        g_autoptr(GPtrArray) libs = g_ptr_array_new_with_free_func(g_free);

        if (!glvm_ldd(host, libs, error))
                return false;
        for (guint i = 0; i < libs->len; i++) {
                g_autofree char *dst = g_build_filename(root, libs->pdata[i], NULL);
                const char *argv[] = { "install", "-D", "-m", "0755", libs->pdata[i], dst, NULL };

                if (g_file_test(dst, G_FILE_TEST_EXISTS))
                        continue;
                if (!run(argv, error))
                        return false;
        }
        return true;
}

static bool customize(GlvmVm *vm, const char *root, GError **error) {
        g_autofree char *helper = g_build_filename(root, "usr/local/lib/glvm/glvm-guest", NULL);
        g_autofree char *wants = g_build_filename(root, "etc/systemd/system/multi-user.target.wants", NULL);
        g_autofree char *link = g_build_filename(wants, "glvm-guest.service", NULL);
        g_autofree char *moddst = g_strdup_printf("%s/lib/modules/%s", root, vm->kver);

        if (!write_file(root, "etc/systemd/system/glvm-guest.service", guest_unit, error) ||
            !write_file(root, "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf", getty_dropin, error) ||
            !write_file(root, "etc/hostname", "glvm\n", error) || !write_file(root, "etc/fstab", "", error))
                return false;
        (void) g_mkdir_with_parents(wants, 0755);
        if (symlink("/etc/systemd/system/glvm-guest.service", link) < 0 && errno != EEXIST) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "symlink: %s", g_strerror(errno));
                return false;
        }
        {
                const char *argv[] = { "install", "-D", "-m", "0755", GLVM_GUEST_HELPER, helper, NULL };
                if (!run(argv, error) || !copy_missing_libs(root, GLVM_GUEST_HELPER, error))
                        return false;
        }
        for (guint i = 0; i < vm->binaries->len; i++) {
                GlvmImageFile *f = vm->binaries->pdata[i];
                g_autofree char *dst = g_build_filename(root, f->guest_path, NULL);
                const char *argv[] = { "install", "-D", "-m", "0755", f->host_path, dst, NULL };
                if (!run(argv, error) || !copy_missing_libs(root, f->host_path, error))
                        return false;
        }
        for (guint i = 0; i < vm->files->len; i++) {
                GlvmImageFile *f = vm->files->pdata[i];
                g_autofree char *dst = g_build_filename(root, f->guest_path, NULL);
                g_autofree char *mode = g_strdup_printf("%04o", f->mode);
                const char *argv[] = { "install", "-D", "-m", mode, f->host_path, dst, NULL };
                if (!run(argv, error))
                        return false;
        }
        for (const char *const *m = module_dirs; *m; m++) {
                g_autofree char *src = g_strdup_printf("/lib/modules/%s/%s", vm->kver, *m);
                g_autofree char *dst = g_strdup_printf("%s/%s", moddst, *m);
                g_autofree char *dstdir = g_path_get_dirname(dst);
                const char *argv[] = { "cp", "-a", src, dstdir, NULL };

                (void) g_mkdir_with_parents(dstdir, 0755);
                if (g_file_test(src, G_FILE_TEST_EXISTS) && !run(argv, error))
                        return false;
        }
        {
                const char *const names[] = { "modules.order", "modules.builtin", "modules.builtin.modinfo", NULL };
                for (const char *const *n = names; *n; n++) {
                        g_autofree char *src = g_strdup_printf("/lib/modules/%s/%s", vm->kver, *n);
                        const char *argv[] = { "cp", src, moddst, NULL };
                        if (g_file_test(src, G_FILE_TEST_EXISTS) && !run(argv, error))
                                return false;
                }
        }
        {
                const char *argv[] = { "depmod", "-b", root, vm->kver, NULL };
                if (!run(argv, error))
                        return false;
        }
        return true;
}

char *glvm_image_build_systemd(GlvmVm *vm, GError **error) {
        g_autoptr(GChecksum) key = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree char *rootfs = NULL, *out = NULL, *tmp = NULL, *root = NULL;
        gint64 t0 = g_get_monotonic_time();
        bool ok;
        int lock;

        if (geteuid() != 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_MISSING,
                            "the systemd guest image is built as root (mmdebstrap, ownerships)");
                return NULL;
        }
        lock = cache_lock(vm->cache_dir, error);
        if (lock < 0)
                return NULL;
        rootfs = build_rootfs(vm->cache_dir, error);
        if (!rootfs) {
                close(lock);
                return NULL;
        }
        g_checksum_update(key, (const guchar *) GLVM_SYSTEMD_FORMAT, -1);
        g_checksum_update(key, (const guchar *) guest_unit, -1);
        g_checksum_update(key, (const guchar *) getty_dropin, -1);
        g_checksum_update(key, (const guchar *) vm->kver, -1);
        key_add_stat(key, rootfs);
        key_add_stat(key, GLVM_GUEST_HELPER);
        for (guint i = 0; i < vm->binaries->len; i++)
                key_add_stat(key, ((GlvmImageFile *) vm->binaries->pdata[i])->host_path);
        for (guint i = 0; i < vm->files->len; i++)
                key_add_stat(key, ((GlvmImageFile *) vm->files->pdata[i])->host_path);
        out = g_strdup_printf("%s/systemd-%.16s.img", vm->cache_dir, g_checksum_get_string(key));
        if (g_file_test(out, G_FILE_TEST_EXISTS)) {
                close(lock);
                return g_steal_pointer(&out);
        }
        root = g_strdup_printf("%s/root.tmp.%d", vm->cache_dir, (int) getpid());
        tmp = g_strdup_printf("%s.tmp.%d", out, (int) getpid());
        (void) g_mkdir_with_parents(root, 0755);
        {
                const char *untar[] = { "tar", "-C", root, "-xf", rootfs, NULL };
                const char *mkfs[] = { "mkfs.ext4", "-q", "-F", "-L", "root", "-d", root, tmp, "1G", NULL };
                ok = run(untar, error) && customize(vm, root, error) && run(mkfs, error);
        }
        {
                const char *rm[] = { "rm", "-rf", root, NULL };
                (void) run(rm, NULL);
        }
        if (ok && rename(tmp, out) < 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "rename: %s", g_strerror(errno));
                ok = false;
        }
        if (!ok)
                (void) unlink(tmp);
        close(lock);
        if (!ok)
                return NULL;
        g_test_message("glvm: built %s in %.1f s", out, (g_get_monotonic_time() - t0) / 1e6);
        return g_steal_pointer(&out);
}
