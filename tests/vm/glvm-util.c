/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "glvm-private.h"

G_DEFINE_QUARK(glvm - error - quark, glvm_error)

bool glvm_ci(void) {
        const char *ci = g_getenv("CI");

        return ci && *ci && strcmp(ci, "false") != 0 && strcmp(ci, "0") != 0;
}

char *glvm_find_qemu(void) {
        const char *env = g_getenv("GLVM_QEMU");

        if (env && *env)
                return g_strdup(env);
        return g_find_program_in_path("qemu-system-x86_64");
}

static int kver_cmp(gconstpointer a, gconstpointer b) {
        return -strverscmp(*(char *const *) a, *(char *const *) b);
}

/* The newest /boot/vmlinuz-VER that has /lib/modules/VER, or $GLVM_KERNEL
 * (then $GLVM_KVER names its module tree). */
bool glvm_find_kernel(char **ret_kernel, char **ret_kver, GError **error) {
        const char *env = g_getenv("GLVM_KERNEL");
        g_autoptr(GDir) dir = NULL;
        g_autoptr(GPtrArray) vers = g_ptr_array_new_with_free_func(g_free);
        const char *n;

        if (env && *env) {
                const char *kv = g_getenv("GLVM_KVER");
                if (!kv || !*kv) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_MISSING, "GLVM_KERNEL is set but GLVM_KVER is not");
                        return false;
                }
                *ret_kernel = g_strdup(env);
                *ret_kver = g_strdup(kv);
                return true;
        }
        dir = g_dir_open("/boot", 0, NULL);
        while (dir && (n = g_dir_read_name(dir)))
                if (g_str_has_prefix(n, "vmlinuz-"))
                        g_ptr_array_add(vers, g_strdup(n + strlen("vmlinuz-")));
        g_ptr_array_sort(vers, kver_cmp);
        for (guint i = 0; i < vers->len; i++) {
                const char *v = vers->pdata[i];
                g_autofree char *k = g_strdup_printf("/boot/vmlinuz-%s", v);
                g_autofree char *m = g_strdup_printf("/lib/modules/%s/modules.dep", v);

                if (!g_file_test(m, G_FILE_TEST_EXISTS))
                        continue;
                if (access(k, R_OK) < 0) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_MISSING,
                                    "%s is not readable (%s); run as root or set GLVM_KERNEL", k, g_strerror(errno));
                        return false;
                }
                *ret_kernel = g_steal_pointer(&k);
                *ret_kver = g_strdup(v);
                return true;
        }
        g_set_error(error, GLVM_ERROR, GLVM_ERROR_MISSING,
                    "no /boot/vmlinuz-* with a /lib/modules tree (install linux-image-amd64)");
        return false;
}

void glvm_skip_if_unavailable(void) {
        g_autofree char *qemu = glvm_find_qemu();
        g_autofree char *k = NULL, *v = NULL;
        g_autoptr(GError) error = NULL;

        if (!qemu) {
                if (glvm_ci()) {
                        g_printerr("qemu-system-x86_64 not found and CI is set: failing\n");
                        exit(1);
                }
                g_print("1..0 # SKIP qemu-system-x86_64 not found\n");
                exit(77);
        }
        if (!glvm_find_kernel(&k, &v, &error)) {
                g_printerr("%s\n", error->message);
                exit(1);
        }
}

char *glvm_cache_dir(void) {
        const char *env = g_getenv("GLVM_CACHE_DIR");

        if (env && *env)
                return g_strdup(env);
        return g_build_filename(GL_BUILD_ROOT, "tests", "vm", "cache", NULL);
}

char *glvm_logs_root(void) {
        return g_build_filename(GL_BUILD_ROOT, "meson-logs", "vm", NULL);
}

gint64 glvm_deadline(int timeout_ms) {
        return g_get_monotonic_time() + (gint64) timeout_ms * 1000;
}

bool glvm_deadline_passed(gint64 deadline) {
        return g_get_monotonic_time() >= deadline;
}

static gboolean wake_cb(gpointer data) {
        bool *fired = data;

        *fired = true;
        return G_SOURCE_REMOVE;
}

void glvm_vm_iterate_until(GlvmVm *vm, gint64 deadline) {
        gint64 left = deadline - g_get_monotonic_time();
        bool fired = false;
        GSource *t;

        if (left <= 0) {
                g_main_context_iteration(vm->ctx, FALSE);
                return;
        }
        t = g_timeout_source_new((guint) MIN((left + 999) / 1000, 1000));
        g_source_set_callback(t, wake_cb, &fired, NULL);
        g_source_attach(t, vm->ctx);
        g_main_context_iteration(vm->ctx, TRUE);
        g_source_destroy(t);
        g_source_unref(t);
}

void glvm_vm_iterate(GlvmVm *vm, int timeout_ms) {
        glvm_vm_iterate_until(vm, glvm_deadline(timeout_ms));
}

void glvm_vm_sleep(GlvmVm *vm, int ms) {
        gint64 deadline = glvm_deadline(ms);

        while (!glvm_deadline_passed(deadline))
                glvm_vm_iterate_until(vm, deadline);
}

/* One transcript line: "+12.345 > text" with non-printable bytes escaped. */
void glvm_log_line(FILE *f, const char *dir, const char *text, size_t len) {
        static const size_t max = 2048;

        if (!f)
                return;
        fprintf(f, "%10.3f %s ", g_get_monotonic_time() / 1e6, dir);
        for (size_t i = 0; i < len && i < max; i++) {
                unsigned char c = (unsigned char) text[i];
                if (c == '\n')
                        fputs("\\n", f);
                else if (c < 0x20 || c >= 0x7f)
                        fprintf(f, "\\x%02x", c);
                else
                        fputc(c, f);
        }
        if (len > max)
                fprintf(f, "... (%zu bytes)", len);
        fputc('\n', f);
        fflush(f);
}

char *glvm_run_capture(const char *const *argv, GError **error) {
        g_autoptr(GSubprocess) sp = NULL;
        g_autofree char *out = NULL;

        sp = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, error);
        if (!sp)
                return NULL;
        if (!g_subprocess_communicate_utf8(sp, NULL, NULL, &out, NULL, error))
                return NULL;
        if (!g_subprocess_get_if_exited(sp) || g_subprocess_get_exit_status(sp) != 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "%s failed: %s", argv[0], out ? out : "");
                return NULL;
        }
        return g_steal_pointer(&out);
}
