/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host halves of cases 01-15. */
#include "config.h"

#include <string.h>

#include "driver-tests.h"

static void case_01(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("01");
        g_autoptr(GlvmProc) p = NULL;
        g_autofree char *n0 = NULL, *n1 = NULL;

        glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);
        glvm_vm_add_port(vm, DT_P1, GLVM_PORT_SERVER);
        dt_vm_boot(vm, true);
        p = dt_guest(vm, "01 %s %s", DT_P0, DT_P1);
        n0 = dt_value(p, "node");
        n1 = dt_value(p, "node");
        g_assert_true(g_str_has_prefix(n0, DT_P0 " vport"));
        g_assert_true(g_str_has_prefix(n1, DT_P1 " vport"));
        g_assert_cmpstr(strchr(n0, ' '), !=, strchr(n1, ' '));
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_02(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("02");
        g_autoptr(GlvmProc) p = NULL;

        glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);
        glvm_vm_add_port(vm, DT_P1, GLVM_PORT_SERVER);
        dt_vm_boot(vm, true);
        p = dt_guest(vm, "02 %s %s", DT_P0, DT_P1);
        g_free(dt_value(p, "link"));
        g_free(dt_value(p, "link"));
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_03(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("03");
        g_autoptr(GlvmProc) p = NULL;

        glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);
        dt_vm_boot(vm, false);
        p = dt_guest(vm, "03 %s", DT_P0);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_04(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("04");
        g_autoptr(GlvmProc) p = NULL;

        glvm_vm_add_port(vm, DT_CON, GLVM_PORT_CONSOLE);
        glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);
        dt_vm_boot(vm, false);
        p = dt_guest(vm, "04 %s %s", DT_CON, DT_P0);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_05(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("05");
        g_autoptr(GlvmProc) p = NULL;
        g_autofree char *poll = NULL;

        glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);
        dt_vm_boot(vm, false);
        p = dt_guest(vm, "05 %s", DT_P0);
        poll = dt_value(p, "poll");
        g_assert_cmpstr(poll, ==, "IN|HUP");
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_06(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("06");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GError) error = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, false);
        p = dt_guest(vm, "06 %s", DT_P0);
        glvm_proc_expect(p, "@blocked\n", DT_STEP_TIMEOUT, &error);
        g_assert_no_error(error);
        /* the write is blocked; nothing can have reached us: we are not even
         * connected.  Connect 1 s later and the bytes arrive. */
        glvm_vm_sleep(vm, 1000);
        dt_connect(port);
        dt_expect(port, "hello-06");
        g_free(dt_value(p, "blocked_ms"));
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_07(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("07");
        g_autoptr(GlvmProc) p1 = NULL, p2 = NULL;
        g_autofree char *c1 = NULL, *c2 = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, false);
        p1 = dt_guest(vm, "07 %s", DT_P0);
        c1 = dt_value(p1, "connected");
        dt_done(p1, DT_STEP_TIMEOUT);
        g_assert_cmpstr(c1, ==, "0");
        dt_connect(port);
        glvm_vm_sleep(vm, 300);
        p2 = dt_guest(vm, "07 %s", DT_P0);
        c2 = dt_value(p2, "connected");
        dt_done(p2, DT_STEP_TIMEOUT);
        g_assert_cmpstr(c2, ==, "1");
        /* a zero-length write sends nothing */
        glvm_vm_sleep(vm, 300);
        g_assert_cmpuint(glvm_port_available(port), ==, 0);
}

static void case_08(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("08");
        g_autoptr(GlvmProc) p = NULL;
        g_autofree char *poll = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, false);
        p = dt_guest(vm, "08 %s", DT_P0);
        dt_at(p, "opened");
        dt_connect(port);
        dt_go(p);
        poll = dt_value(p, "poll");
        g_assert_cmpstr(poll, ==, "OUT");
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_09(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("09");
        g_autoptr(GlvmProc) p = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "09 %s", DT_P0);
        dt_at(p, "ready");
        dt_write(port, "12345", 5);
        dt_go(p);
        g_free(dt_value(p, "poll"));
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_10(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("10");
        g_autoptr(GlvmProc) p = NULL;
        guint8 buf[10000];
        guint32 seed = 10;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "10 %s %zu", DT_P0, sizeof(buf));
        dt_at(p, "ready");
        dt_stream_fill(&seed, buf, sizeof(buf));
        dt_write(port, buf, sizeof(buf));
        glvm_vm_sleep(vm, 300); /* let it all queue in the guest */
        dt_go(p);
        g_assert_cmpuint(dt_value_u64(p, "reads"), >=, 3);
        g_assert_cmpuint(dt_value_u64(p, "max_read"), ==, 4096);
        g_free(dt_value(p, "sizes"));
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_11(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("11");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GBytes) b = NULL;
        g_autoptr(GError) error = NULL;
        guint32 seed = 11;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "11 %s", DT_P0);
        b = glvm_port_read_exact(port, 100000, DT_STEP_TIMEOUT, &error);
        g_assert_no_error(error);
        dt_stream_check(&seed, b, 0);
        g_assert_cmpuint(dt_value_u64(p, "first_write"), ==, 32768);
        dt_done(p, DT_STEP_TIMEOUT);
        glvm_vm_sleep(vm, 200);
        g_assert_cmpuint(glvm_port_available(port), ==, 0);
}

static void case_12(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("12");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GBytes) b = NULL;
        g_autoptr(GError) error = NULL;
        guint32 seed = 12;
        guint64 accepted;
        g_autofree char *full = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        glvm_port_set_reading(port, false);
        p = dt_guest(vm, "12 %s", DT_P0);
        accepted = dt_value_u64(p, "accepted");
        g_assert_cmpuint(accepted, >, 0);
        full = dt_value(p, "poll_full");
        g_assert_null(strstr(full, "OUT"));
        dt_at(p, "full");
        glvm_port_set_reading(port, true);
        dt_go(p);
        b = glvm_port_read_exact(port, accepted + 4096, 60000, &error);
        g_assert_no_error(error);
        dt_stream_check(&seed, b, 0);
        g_assert_cmpuint(dt_value_u64(p, "resumed"), ==, 4096);
        dt_done(p, DT_STEP_TIMEOUT);
}

#define BULK (8u * 1024 * 1024)

static void case_13(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("13");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree guint8 *out = g_malloc(BULK);
        g_autofree char *g2h = NULL, *h2g = NULL, *mine = NULL;
        guint32 rseed = 1313, wseed = 3131;
        guint64 h = DT_FNV_INIT, hw;
        size_t got = 0;
        gint64 t0;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        glvm_port_set_reading(port, false);
        p = dt_guest(vm, "13 %s %u", DT_P0, BULK);
        /* slow host reader: 4 KiB, then 1 ms */
        t0 = g_get_monotonic_time();
        while (got < BULK) {
                g_autoptr(GBytes) b = glvm_port_read_some(port, MIN(4096u, BULK - got), DT_STEP_TIMEOUT, &error);
                gsize n;
                const guint8 *d;

                g_assert_no_error(error);
                d = g_bytes_get_data(b, &n);
                h = dt_fnv1a(h, d, n);
                dt_stream_check(&rseed, b, got);
                got += n;
                glvm_vm_sleep(vm, 1);
        }
        g_test_message("guest->host 8 MiB with a slow reader: %.1f s", (g_get_monotonic_time() - t0) / 1e6);
        g2h = dt_value(p, "g2h_fnv");
        mine = g_strdup_printf("%016" G_GINT64_MODIFIER "x", h);
        g_assert_cmpstr(g2h, ==, mine);
        dt_at(p, "sent");
        glvm_port_set_reading(port, true);
        dt_stream_fill(&wseed, out, BULK);
        hw = dt_fnv1a(DT_FNV_INIT, out, BULK);
        glvm_port_queue(port, out, BULK);
        dt_go(p);
        t0 = g_get_monotonic_time();
        h2g = glvm_proc_expect_line(p, "=h2g_fnv=", 180000, &error);
        g_assert_no_error(error);
        g_test_message("host->guest 8 MiB with a slow guest reader: %.1f s", (g_get_monotonic_time() - t0) / 1e6);
        g_free(mine);
        mine = g_strdup_printf("%016" G_GINT64_MODIFIER "x", hw);
        g_assert_cmpstr(h2g, ==, mine);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_14(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("14");
        g_autoptr(GlvmProc) p = NULL;
        g_autofree char *d = NULL, *r = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "14 %s", DT_P0);
        dt_at(p, "connected");
        glvm_port_disconnect(port);
        dt_go(p);
        d = dt_value(p, "poll_disconnected");
        g_assert_cmpstr(d, ==, "IN|HUP");
        dt_at(p, "disconnected");
        dt_connect(port);
        dt_go(p);
        r = dt_value(p, "poll_reconnected");
        g_assert_cmpstr(r, ==, "OUT");
        dt_expect(port, "again-14");
        dt_write(port, "reply-14", 8);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_15(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("15");
        g_autoptr(GlvmProc) p = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "15 %s", DT_P0);
        dt_at(p, "ready");
        dt_write(port, "bye-15", 6);
        glvm_port_disconnect(port);
        glvm_vm_sleep(vm, 500);
        dt_go(p);
        g_free(dt_value(p, "poll"));
        dt_done(p, DT_STEP_TIMEOUT);
}

const DtCase dt_cases_a[] = {
        { "01", "port-node", case_01 },
        { "02", "port-symlink", case_02 },
        { "03", "open-ebusy", case_03 },
        { "04", "console-enxio-espipe", case_04 },
        { "05", "no-host-poll-read-write", case_05 },
        { "06", "no-host-blocking-write", case_06 },
        { "07", "zero-length-write", case_07 },
        { "08", "host-connect-sigio", case_08 },
        { "09", "host-sends-5-bytes", case_09 },
        { "10", "read-at-most-4096", case_10 },
        { "11", "write-at-most-32768", case_11 },
        { "12", "queue-full-eagain", case_12 },
        { "13", "bulk-8mib-slow-reader", case_13 },
        { "14", "host-reconnect-not-sticky", case_14 },
        { "15", "host-send-then-close", case_15 },
        { NULL, NULL, NULL },
};
