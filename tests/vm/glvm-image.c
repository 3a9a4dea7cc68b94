/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest images: the initramfs (written as a newc cpio archive by hand, so
 * device nodes need no privileges) and the systemd flavour's ext4 root.  Both
 * are cached in the build directory under a key computed from every input
 * (paths, sizes, mtimes, generated text), and rebuilt when one changes.
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

/* Bump when the image layout changes in a way the inputs do not show. */
#define GLVM_IMAGE_FORMAT "glvm-initramfs-4"

static const char init_script[] =
        "#!/bin/busybox sh\n"
        "/bin/busybox mkdir -p /proc /sys /dev /tmp /run /bin /sbin /usr/bin /usr/sbin /var/tmp\n"
        "/bin/busybox --install -s\n"
        "mount -t proc proc /proc\n"
        "mount -t sysfs sysfs /sys\n"
        "mount -t devtmpfs devtmpfs /dev\n"
        "mkdir -p /dev/pts /dev/virtio-ports\n"
        "mount -t devpts devpts /dev/pts\n"
        "mount -t tmpfs tmpfs /tmp\n"
        "mount -t tmpfs tmpfs /run\n"
        "hostname glvm\n"
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "uevent /glvm/hotplug &\n"
        "for m in $(cat /glvm/modules.order); do\n"
        "  insmod /glvm/modules/$m.ko || echo \"glvm: insmod $m failed\"\n"
        "done\n"
        "/glvm/hotplug coldplug\n"
        /* an appliance image starts its program in the background; glvm-guest
         * (PID 1) reaps it and its children, and serves the command channel
         * if the VM has one */
        "if [ -f /glvm/appliance ]; then\n"
        "  echo \"glvm: starting appliance\"\n"
        "  /bin/sh /glvm/appliance </dev/null >/dev/console 2>&1 &\n"
        "fi\n"
        "echo \"glvm: init done, starting glvm-guest\"\n"
        "exec /glvm/glvm-guest\n";

/* Run by `busybox uevent` for every kernel uevent (Debian's kernel has no
 * CONFIG_UEVENT_HELPER): keeps /dev/virtio-ports/<name> -> ../vportNpM. */
static const char hotplug_script[] =
        "#!/bin/sh\n"
        "link() {\n"
        "  n=$(cat /sys/class/virtio-ports/$1/name 2>/dev/null)\n"
        "  [ -n \"$n\" ] && ln -sfn ../$1 \"/dev/virtio-ports/$n\"\n"
        "}\n"
        "if [ \"$1\" = coldplug ]; then\n"
        "  for d in /sys/class/virtio-ports/*; do [ -e \"$d\" ] && link \"${d##*/}\"; done\n"
        "  exit 0\n"
        "fi\n"
        "[ \"$SUBSYSTEM\" = virtio-ports ] || exit 0\n"
        "case \"$ACTION\" in\n"
        "add|change) link \"$DEVNAME\" ;;\n"
        "remove)\n"
        "  for l in /dev/virtio-ports/*; do\n"
        "    [ \"$(readlink \"$l\")\" = \"../$DEVNAME\" ] && rm -f \"$l\"\n"
        "  done ;;\n"
        "esac\n"
        "exit 0\n";

typedef struct Cpio {
        GByteArray *buf;
        GHashTable *dirs;
        unsigned ino;
} Cpio;

static void cpio_pad(Cpio *c) {
        static const guint8 zero[4] = { 0 };

        if (c->buf->len % 4)
                g_byte_array_append(c->buf, zero, 4 - c->buf->len % 4);
}

static void cpio_entry(Cpio *c, const char *name, unsigned mode, unsigned rmaj, unsigned rmin, const void *data,
                       size_t len) {
        char hdr[111];
        const char *n = name[0] == '/' ? name + 1 : name;

        g_snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08zX%08X", c->ino++, mode, 0u,
                   0u, 1u, 0u, (unsigned) len, 0u, 0u, rmaj, rmin, strlen(n) + 1, 0u);
        g_byte_array_append(c->buf, (const guint8 *) hdr, 110);
        g_byte_array_append(c->buf, (const guint8 *) n, (guint) strlen(n) + 1);
        cpio_pad(c);
        if (len)
                g_byte_array_append(c->buf, data, (guint) len);
        cpio_pad(c);
}

static void cpio_mkdirs(Cpio *c, const char *path) {
        g_autofree char *dir = g_path_get_dirname(path);

        if (strcmp(dir, "/") == 0 || strcmp(dir, ".") == 0 || g_hash_table_contains(c->dirs, dir))
                return;
        cpio_mkdirs(c, dir);
        cpio_entry(c, dir, S_IFDIR | 0755, 0, 0, NULL, 0);
        g_hash_table_add(c->dirs, g_steal_pointer(&dir));
}

static void cpio_file(Cpio *c, const char *path, unsigned mode, const void *data, size_t len) {
        cpio_mkdirs(c, path);
        cpio_entry(c, path, S_IFREG | (mode & 07777), 0, 0, data, len);
}

/* Shared libraries of @path as ldd lists them, loader included. */
bool glvm_ldd(const char *path, GPtrArray *ret, GError **error) {
        const char *argv[] = { "ldd", path, NULL };
        g_autoptr(GSubprocess) sp = NULL;
        g_autofree char *out = NULL;
        g_auto(GStrv) lines = NULL;

        sp = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, error);
        if (!sp)
                return false;
        if (!g_subprocess_communicate_utf8(sp, NULL, NULL, &out, NULL, error))
                return false;
        if (strstr(out, "not a dynamic executable") || strstr(out, "statically linked"))
                return true;
        if (g_subprocess_get_exit_status(sp) != 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "ldd %s: %s", path, out);
                return false;
        }
        lines = g_strsplit(out, "\n", -1);
        for (char **l = lines; *l; l++) {
                const char *arrow = strstr(*l, "=> ");
                const char *p = arrow ? arrow + 3 : g_strchug(*l);
                char *sp_ = strchr(p, ' ');

                if (*p != '/')
                        continue;
                g_ptr_array_add(ret, sp_ ? g_strndup(p, (gsize) (sp_ - p)) : g_strdup(p));
        }
        return true;
}

typedef struct Module {
        char *path;
        GPtrArray *deps; /* char* module names */
} Module;

static void module_free(gpointer p) {
        Module *m = p;

        g_free(m->path);
        g_ptr_array_unref(m->deps);
        g_free(m);
}

static char *module_name(const char *path) {
        g_autofree char *base = g_path_get_basename(path);
        char *dot = strstr(base, ".ko");

        if (dot)
                *dot = 0;
        g_strdelimit(base, "-", '_');
        return g_steal_pointer(&base);
}

static bool module_order(GHashTable *all, const char *name, GPtrArray *order, GHashTable *seen, GError **error) {
        Module *m = g_hash_table_lookup(all, name);

        if (g_hash_table_contains(seen, name))
                return true;
        if (!m) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_MISSING, "kernel module %s not in modules.dep (built in?)",
                            name);
                return false;
        }
        g_hash_table_add(seen, g_strdup(name));
        for (guint i = m->deps->len; i > 0; i--)
                if (!module_order(all, m->deps->pdata[i - 1], order, seen, error))
                        return false;
        g_ptr_array_add(order, g_strdup(name));
        return true;
}

/* Resolves the modules to load (dependencies first); NULL entries for
 * modules built into the kernel are dropped. */
static GPtrArray *resolve_modules(const GlvmImageInputs *in, GHashTable **ret_all, GError **error) {
        g_autofree char *dep_path = g_strdup_printf("/lib/modules/%s/modules.dep", in->kver);
        g_autofree char *builtin_path = g_strdup_printf("/lib/modules/%s/modules.builtin", in->kver);
        g_autofree char *text = NULL, *builtin = NULL;
        g_autoptr(GHashTable) all = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, module_free);
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GPtrArray) order = g_ptr_array_new_with_free_func(g_free);
        g_auto(GStrv) lines = NULL;

        if (!g_file_get_contents(dep_path, &text, NULL, error))
                return NULL;
        (void) g_file_get_contents(builtin_path, &builtin, NULL, NULL);
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) parts = NULL;
                Module *m;
                char *colon = strchr(*l, ':');

                if (!colon)
                        continue;
                *colon = 0;
                m = g_new0(Module, 1);
                m->path = g_strdup(*l);
                m->deps = g_ptr_array_new_with_free_func(g_free);
                parts = g_strsplit_set(colon + 1, " \t", -1);
                for (char **d = parts; *d; d++)
                        if (**d)
                                g_ptr_array_add(m->deps, module_name(*d));
                g_hash_table_replace(all, module_name(*l), m);
        }
        for (guint i = 0; i < in->modules->len; i++) {
                const char *name = in->modules->pdata[i];
                g_autofree char *needle = g_strdup_printf("/%s.ko\n", name);

                if (!g_hash_table_contains(all, name) && builtin && strstr(builtin, needle))
                        continue;
                if (!module_order(all, name, order, seen, error))
                        return NULL;
        }
        *ret_all = g_steal_pointer(&all);
        return g_steal_pointer(&order);
}

static void key_add_file(GChecksum *key, const char *host, const char *guest, unsigned mode) {
        struct stat st;
        char buf[256];

        if (stat(host, &st) < 0)
                memset(&st, 0, sizeof(st));
        g_snprintf(buf, sizeof(buf), "|%s|%s|%o|%lld|%lld.%09ld", host, guest, mode, (long long) st.st_size,
                   (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        g_checksum_update(key, (const guchar *) buf, -1);
}

/* Adds @host to @files (guest path -> host path) with its libraries. */
static bool collect_binary(GHashTable *files, const char *host, const char *guest, GError **error) {
        g_autoptr(GPtrArray) libs = g_ptr_array_new_with_free_func(g_free);

        if (!glvm_ldd(host, libs, error))
                return false;
        g_hash_table_replace(files, g_strdup(guest ? guest : host), g_strdup(host));
        for (guint i = 0; i < libs->len; i++)
                g_hash_table_replace(files, g_strdup(libs->pdata[i]), g_strdup(libs->pdata[i]));
        return true;
}

static int lock_cache(const char *cache, GError **error) {
        g_autofree char *lock = g_build_filename(cache, ".lock", NULL);
        int fd;

        if (g_mkdir_with_parents(cache, 0755) < 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "mkdir %s: %s", cache, g_strerror(errno));
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

char *glvm_image_build_initramfs_from(const GlvmImageInputs *in, GError **error) {
        g_autoptr(GChecksum) key = g_checksum_new(G_CHECKSUM_SHA256);
        g_autoptr(GHashTable) files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autoptr(GHashTable) mods = NULL;
        g_autoptr(GPtrArray) order = NULL;
        g_autoptr(GString) order_text = g_string_new(NULL);
        g_autofree char *out = NULL, *tmp = NULL;
        g_autoptr(GList) keys = NULL;
        const char *busybox = g_getenv("GLVM_BUSYBOX");
        g_autofree char *appliance = in->appliance ? g_strdup_printf("#!/bin/sh\n%s\n", in->appliance) : NULL;
        Cpio c = { 0 };
        int lock;

        if (!busybox || !*busybox)
                busybox = "/bin/busybox";
        if (!g_file_test(busybox, G_FILE_TEST_IS_EXECUTABLE)) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_MISSING, "%s missing (install busybox-static)", busybox);
                return NULL;
        }
        order = resolve_modules(in, &mods, error);
        if (!order)
                return NULL;

        g_hash_table_replace(files, g_strdup("/bin/busybox"), g_strdup(busybox));
        if (!collect_binary(files, GLVM_GUEST_HELPER, "/glvm/glvm-guest", error))
                return NULL;
        for (guint i = 0; i < in->binaries->len; i++) {
                GlvmImageFile *f = in->binaries->pdata[i];
                if (!collect_binary(files, f->host_path, f->guest_path, error))
                        return NULL;
        }
        for (guint i = 0; i < order->len; i++) {
                Module *m = g_hash_table_lookup(mods, order->pdata[i]);
                g_autofree char *host = g_strdup_printf("/lib/modules/%s/%s", in->kver, m->path);
                g_autofree char *guest = g_strdup_printf("/glvm/modules/%s.ko", (char *) order->pdata[i]);

                if (!g_str_has_suffix(m->path, ".ko")) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED,
                                    "%s is compressed; busybox insmod needs plain .ko", host);
                        return NULL;
                }
                g_hash_table_replace(files, g_steal_pointer(&guest), g_steal_pointer(&host));
                g_string_append_printf(order_text, "%s\n", (char *) order->pdata[i]);
        }
        for (guint i = 0; i < in->files->len; i++) {
                GlvmImageFile *f = in->files->pdata[i];
                g_hash_table_replace(files, g_strdup(f->guest_path), g_strdup(f->host_path));
        }

        g_checksum_update(key, (const guchar *) GLVM_IMAGE_FORMAT, -1);
        g_checksum_update(key, (const guchar *) init_script, -1);
        g_checksum_update(key, (const guchar *) hotplug_script, -1);
        g_checksum_update(key, (const guchar *) order_text->str, -1);
        if (appliance)
                g_checksum_update(key, (const guchar *) appliance, -1);
        keys = g_hash_table_get_keys(files);
        keys = g_list_sort(keys, (GCompareFunc) strcmp);
        for (GList *l = keys; l; l = l->next)
                key_add_file(key, g_hash_table_lookup(files, l->data), l->data, 0);

        out = g_strdup_printf("%s/initramfs-%.16s.cpio", in->cache_dir, g_checksum_get_string(key));
        lock = lock_cache(in->cache_dir, error);
        if (lock < 0)
                return NULL;
        if (g_file_test(out, G_FILE_TEST_EXISTS)) {
                close(lock);
                return g_steal_pointer(&out);
        }

        c.buf = g_byte_array_new();
        c.dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        c.ino = 1;
        cpio_entry(&c, "/dev", S_IFDIR | 0755, 0, 0, NULL, 0);
        g_hash_table_add(c.dirs, g_strdup("/dev"));
        cpio_entry(&c, "/dev/console", S_IFCHR | 0600, 5, 1, NULL, 0);
        cpio_entry(&c, "/dev/null", S_IFCHR | 0666, 1, 3, NULL, 0);
        cpio_file(&c, "/init", 0755, init_script, strlen(init_script));
        cpio_file(&c, "/glvm/hotplug", 0755, hotplug_script, strlen(hotplug_script));
        cpio_file(&c, "/glvm/modules.order", 0644, order_text->str, order_text->len);
        if (appliance)
                cpio_file(&c, "/glvm/appliance", 0755, appliance, strlen(appliance));
        for (GList *l = keys; l; l = l->next) {
                const char *host = g_hash_table_lookup(files, l->data);
                g_autofree char *data = NULL;
                gsize len;
                struct stat st;

                if (!g_file_get_contents(host, &data, &len, error) || stat(host, &st) < 0) {
                        close(lock);
                        g_byte_array_unref(c.buf);
                        g_hash_table_unref(c.dirs);
                        if (error && !*error)
                                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "stat %s failed", host);
                        return NULL;
                }
                cpio_file(&c, l->data, st.st_mode & 0777, data, len);
        }
        cpio_entry(&c, "TRAILER!!!", 0, 0, 0, NULL, 0);

        tmp = g_strdup_printf("%s.tmp.%d", out, (int) getpid());
        if (!g_file_set_contents(tmp, (const char *) c.buf->data, c.buf->len, error) || rename(tmp, out) < 0) {
                if (error && !*error)
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "rename %s: %s", tmp, g_strerror(errno));
                (void) unlink(tmp);
                g_clear_pointer(&out, g_free);
        }
        g_byte_array_unref(c.buf);
        g_hash_table_unref(c.dirs);
        close(lock);
        return g_steal_pointer(&out);
}

char *glvm_image_build_initramfs(GlvmVm *vm, GError **error) {
        GlvmImageInputs in = {
                .kver = vm->kver,
                .cache_dir = vm->cache_dir,
                .binaries = vm->binaries,
                .files = vm->files,
                .modules = vm->modules,
                .appliance = vm->appliance,
        };

        return glvm_image_build_initramfs_from(&in, error);
}
