/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * linux-driver-tests: the Linux virtio_console driver as a userspace agent
 * sees it, case by case, in a real guest (tests/vm/).  Each case drives the
 * host side here and runs its guest half (guest/vstest-cases-*.c) through the
 * harness's command channel.  `driver-tests NN` runs one case (meson runs
 * each as its own test); without arguments every case runs.
 * README.md says what each case asserts and why an agent depends on it.
 */
#include "config.h"

#include <string.h>

#include "driver-tests.h"

#define BOOT_TIMEOUT 120000
#define STEP_TIMEOUT 30000

GlvmVm *dt_vm_new(const char *case_id) {
        g_autofree char *name = g_strdup_printf("driver-%s", case_id);
        GlvmVm *vm = glvm_vm_new(name, GLVM_FLAVOUR_INITRAMFS);

        glvm_vm_add_binary(vm, VSTEST_PATH, "/usr/bin/vstest");
        return vm;
}

void dt_vm_boot(GlvmVm *vm, bool connect_ports) {
        g_autoptr(GError) error = NULL;

        glvm_vm_start(vm, connect_ports, BOOT_TIMEOUT, &error);
        g_assert_no_error(error);
        g_test_message("guest ready after %" G_GINT64_FORMAT " ms", glvm_vm_boot_ms(vm));
}

GlvmProc *dt_guest(GlvmVm *vm, const char *fmt, ...) {
        g_autoptr(GError) error = NULL;
        g_autofree char *args = NULL;
        GlvmProc *p;
        va_list ap;

        va_start(ap, fmt);
        args = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        p = glvm_vm_spawnf(vm, &error, "exec vstest %s", args);
        g_assert_no_error(error);
        return p;
}

void dt_at(GlvmProc *p, const char *step) {
        g_autoptr(GError) error = NULL;
        g_autofree char *needle = g_strdup_printf("@%s\n", step);

        glvm_proc_expect(p, needle, STEP_TIMEOUT, &error);
        g_assert_no_error(error);
}

void dt_go(GlvmProc *p) {
        g_autoptr(GError) error = NULL;

        glvm_proc_send(p, "go\n", &error);
        g_assert_no_error(error);
}

char *dt_value(GlvmProc *p, const char *key) {
        g_autoptr(GError) error = NULL;
        g_autofree char *prefix = g_strdup_printf("=%s=", key);
        char *v = glvm_proc_expect_line(p, prefix, STEP_TIMEOUT, &error);

        g_assert_no_error(error);
        g_test_message("measured %s = %s", key, v);
        return v;
}

guint64 dt_value_u64(GlvmProc *p, const char *key) {
        g_autofree char *v = dt_value(p, key);

        return g_ascii_strtoull(v, NULL, 10);
}

void dt_done(GlvmProc *p, int timeout_ms) {
        g_autoptr(GError) error = NULL;
        int r = glvm_proc_wait(p, timeout_ms, &error);

        g_assert_no_error(error);
        if (r != 0) {
                g_autofree char *msg = g_strdup_printf("guest half exited with %d:\n%s", r, glvm_proc_output(p));
                g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
        }
}

void dt_no_oops(GlvmVm *vm) {
        g_autofree char *out = NULL;
        g_autoptr(GError) error = NULL;
        int r;

        r = glvm_vm_run(vm, "dmesg | grep -E 'Oops|BUG:|WARNING:|Call Trace|general protection|refcount_t'", 20000,
                        &out, &error);
        g_assert_no_error(error);
        if (r != 1) { /* grep: 1 = nothing found */
                g_autofree char *msg = g_strdup_printf("guest kernel log has trouble:\n%s", out);
                g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
        }
}

void dt_connect(GlvmPort *p) {
        g_autoptr(GError) error = NULL;

        glvm_port_connect(p, 10000, &error);
        g_assert_no_error(error);
}

void dt_write(GlvmPort *p, const void *data, size_t len) {
        g_autoptr(GError) error = NULL;

        glvm_port_write(p, data, len, STEP_TIMEOUT, &error);
        g_assert_no_error(error);
}

void dt_expect(GlvmPort *p, const char *text) {
        g_autoptr(GError) error = NULL;
        size_t len = strlen(text);
        g_autoptr(GBytes) b = glvm_port_read_exact(p, len, STEP_TIMEOUT, &error);

        g_assert_no_error(error);
        g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), text, len);
}

void dt_stream_fill(guint32 *state, guint8 *buf, size_t len) {
        guint32 x = *state;

        for (size_t i = 0; i < len; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf[i] = (guint8) (x >> 11);
        }
        *state = x;
}

guint64 dt_fnv1a(guint64 h, const guint8 *buf, size_t len) {
        for (size_t i = 0; i < len; i++) {
                h ^= buf[i];
                h *= G_GUINT64_CONSTANT(0x100000001b3);
        }
        return h;
}

/* Compares received bytes with the stream @state, advancing it. */
void dt_stream_check(guint32 *state, GBytes *b, size_t offset) {
        gsize len;
        const guint8 *data = g_bytes_get_data(b, &len);
        g_autofree guint8 *want = g_malloc(MAX(len, 1));

        dt_stream_fill(state, want, len);
        for (gsize i = 0; i < len; i++)
                if (data[i] != want[i])
                        g_error("stream differs at byte %zu: got 0x%02x, want 0x%02x", offset + i, data[i], want[i]);
}

static const DtCase *find_case(const char *arg) {
        const DtCase *tables[] = { dt_cases_a, dt_cases_b };

        for (size_t t = 0; t < G_N_ELEMENTS(tables); t++)
                for (const DtCase *c = tables[t]; c->id; c++) {
                        g_autofree char *full = g_strdup_printf("%s-%s", c->id, c->name);
                        if (strcmp(arg, c->id) == 0 || strcmp(arg, full) == 0)
                                return c;
                }
        return NULL;
}

int main(int argc, char **argv) {
        const DtCase *tables[] = { dt_cases_a, dt_cases_b };

        g_test_init(&argc, &argv, NULL);
        glvm_skip_if_unavailable();
        if (argc > 1) {
                for (int i = 1; i < argc; i++) {
                        const DtCase *c = find_case(argv[i]);
                        g_autofree char *path = NULL;

                        if (!c) {
                                g_printerr("driver-tests: unknown case '%s'\n", argv[i]);
                                return 1;
                        }
                        path = g_strdup_printf("/driver/%s-%s", c->id, c->name);
                        g_test_add_func(path, c->fn);
                }
        } else
                for (size_t t = 0; t < G_N_ELEMENTS(tables); t++)
                        for (const DtCase *c = tables[t]; c->id; c++) {
                                g_autofree char *path = g_strdup_printf("/driver/%s-%s", c->id, c->name);
                                g_test_add_func(path, c->fn);
                        }
        return g_test_run();
}
