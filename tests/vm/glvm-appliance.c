/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * glvm-appliance: writes a bootable appliance guest (kernel + initramfs) for
 * machines that glvm does not start itself, e.g. libvirt domains or the demo:
 *
 *   glvm-appliance --out DIR [--add-binary HOST[:GUEST]]... [--add-file HOST:GUEST]...
 *                  --run 'COMMAND'
 *
 * Prints the paths of DIR/vmlinuz and DIR/initrd.img, one per line.  Boot
 * with "console=ttyS0 panic=-1"; COMMAND runs at boot under /bin/sh.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "glvm.h"

static void usage(FILE *f) {
        fprintf(f, "Usage: glvm-appliance --out DIR [--add-binary HOST[:GUEST]]... [--add-file HOST:GUEST]...\n"
                   "                      --run 'COMMAND'\n"
                   "Writes DIR/vmlinuz and DIR/initrd.img: a busybox initramfs guest that starts\n"
                   "COMMAND at boot (console on ttyS0) and prints their paths.\n");
}

static bool split(const char *arg, bool need_guest, char **ret_host, char **ret_guest) {
        const char *colon = strchr(arg, ':');

        if (!colon) {
                if (need_guest)
                        return false;
                *ret_host = g_strdup(arg);
                *ret_guest = NULL;
                return *arg != 0;
        }
        if (colon == arg || colon[1] != '/')
                return false;
        *ret_host = g_strndup(arg, (gsize) (colon - arg));
        *ret_guest = g_strdup(colon + 1);
        return true;
}

static int run(int argc, char **argv) {
        g_autoptr(GPtrArray) binaries = g_ptr_array_new();
        g_autoptr(GPtrArray) files = g_ptr_array_new();
        g_autoptr(GlvmAppliance) a = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *kernel = NULL, *initrd = NULL;
        const char *out = NULL, *command = NULL;

        for (int i = 1; i < argc; i++) {
                const char *opt = argv[i];

                if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
                        usage(stdout);
                        return 0;
                }
                if (i + 1 >= argc) {
                        usage(stderr);
                        return 2;
                }
                if (strcmp(opt, "--out") == 0)
                        out = argv[++i];
                else if (strcmp(opt, "--run") == 0)
                        command = argv[++i];
                else if (strcmp(opt, "--add-binary") == 0)
                        g_ptr_array_add(binaries, argv[++i]);
                else if (strcmp(opt, "--add-file") == 0)
                        g_ptr_array_add(files, argv[++i]);
                else {
                        usage(stderr);
                        return 2;
                }
        }
        if (!out || !command) {
                usage(stderr);
                return 2;
        }

        a = glvm_appliance_new(command);
        for (guint i = 0; i < binaries->len + files->len; i++) {
                bool is_binary = i < binaries->len;
                const char *arg = is_binary ? binaries->pdata[i] : files->pdata[i - binaries->len];
                g_autofree char *host = NULL, *guest = NULL;

                if (!split(arg, !is_binary, &host, &guest)) {
                        fprintf(stderr, "glvm-appliance: expected HOST%s, got '%s'\n",
                                is_binary ? "[:/GUEST]" : ":/GUEST", arg);
                        return 2;
                }
                if (!g_file_test(host, G_FILE_TEST_IS_REGULAR)) {
                        fprintf(stderr, "glvm-appliance: %s: not a regular file\n", host);
                        return 1;
                }
                if (is_binary)
                        glvm_appliance_add_binary(a, host, guest);
                else
                        glvm_appliance_add_file(a, host, guest, 0644);
        }
        if (!glvm_appliance_build(a, out, &kernel, &initrd, &error)) {
                fprintf(stderr, "glvm-appliance: %s\n", error->message);
                return 1;
        }
        printf("%s\n%s\n", kernel, initrd);
        return 0;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
