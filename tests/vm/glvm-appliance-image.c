/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Appliance images: the initramfs flavour with a program started at boot,
 * written together with a copy of the host kernel into a directory that
 * libvirt (or anything else that is not glvm) can boot from.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glvm-private.h"

struct GlvmAppliance {
        char *command;
        GPtrArray *binaries; /* GlvmImageFile* */
        GPtrArray *files;    /* GlvmImageFile* */
        GPtrArray *modules;  /* char* */
};

GlvmAppliance *glvm_appliance_new(const char *command) {
        GlvmAppliance *a = g_new0(GlvmAppliance, 1);

        a->command = g_strdup(command);
        a->binaries = g_ptr_array_new_with_free_func(glvm_image_file_free);
        a->files = g_ptr_array_new_with_free_func(glvm_image_file_free);
        a->modules = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(a->modules, g_strdup("virtio_pci"));
        g_ptr_array_add(a->modules, g_strdup("virtio_console"));
        return a;
}

void glvm_appliance_free(GlvmAppliance *a) {
        if (!a)
                return;
        g_free(a->command);
        g_ptr_array_unref(a->binaries);
        g_ptr_array_unref(a->files);
        g_ptr_array_unref(a->modules);
        g_free(a);
}

void glvm_appliance_add_binary(GlvmAppliance *a, const char *host_path, const char *guest_path) {
        glvm_image_file_add(a->binaries, host_path, guest_path, 0755);
}

void glvm_appliance_add_file(GlvmAppliance *a, const char *host_path, const char *guest_path, unsigned mode) {
        glvm_image_file_add(a->files, host_path, guest_path, mode);
}

/* Copies @src to @dst (via a temporary file and rename) unless @dst already
 * holds the same bytes. */
static bool copy_if_changed(const char *src, const char *dst, GError **error) {
        g_autofree char *data = NULL, *old = NULL, *tmp = NULL;
        gsize len, old_len;

        if (!g_file_get_contents(src, &data, &len, error))
                return false;
        if (g_file_get_contents(dst, &old, &old_len, NULL) && old_len == len && memcmp(old, data, len) == 0) {
                if (chmod(dst, 0644) < 0) {
                        g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "chmod %s: %s", dst, g_strerror(errno));
                        return false;
                }
                return true;
        }
        tmp = g_strdup_printf("%s.tmp.%d", dst, (int) getpid());
        if (!g_file_set_contents_full(tmp, data, (gssize) len, G_FILE_SET_CONTENTS_CONSISTENT, 0644, error))
                return false;
        if (rename(tmp, dst) < 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "rename %s: %s", tmp, g_strerror(errno));
                (void) unlink(tmp);
                return false;
        }
        return true;
}

bool glvm_appliance_build(GlvmAppliance *a, const char *dir, char **ret_kernel, char **ret_initrd, GError **error) {
        g_autofree char *kernel = NULL, *kver = NULL, *cache = glvm_cache_dir(), *image = NULL;
        g_autofree char *out_kernel = g_build_filename(dir, "vmlinuz", NULL);
        g_autofree char *out_initrd = g_build_filename(dir, "initrd.img", NULL);
        GlvmImageInputs in;

        if (!glvm_find_kernel(&kernel, &kver, error))
                return false;
        in = (GlvmImageInputs){
                .kver = kver,
                .cache_dir = cache,
                .binaries = a->binaries,
                .files = a->files,
                .modules = a->modules,
                .appliance = a->command,
        };
        image = glvm_image_build_initramfs_from(&in, error);
        if (!image)
                return false;
        if (g_mkdir_with_parents(dir, 0755) < 0) {
                g_set_error(error, GLVM_ERROR, GLVM_ERROR_FAILED, "mkdir %s: %s", dir, g_strerror(errno));
                return false;
        }
        if (!copy_if_changed(kernel, out_kernel, error) || !copy_if_changed(image, out_initrd, error))
                return false;
        *ret_kernel = g_steal_pointer(&out_kernel);
        *ret_initrd = g_steal_pointer(&out_initrd);
        return true;
}
