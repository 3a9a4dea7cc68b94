/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
/* Host halves of cases 16-30. */
#include "config.h"

#include <string.h>

#include "driver-tests.h"

/* Is @data a contiguous run of the little-endian u32 counter stream the
 * guest wrote (case 16)?  Returns the stream offset of its first byte. */
static bool counter_run(const guint8 *data, size_t len, size_t *ret_offset) {
        if (len == 0) {
                *ret_offset = 0;
                return true;
        }
        for (size_t a = 0; a < 4 && a + 4 <= len; a++) {
                guint32 k;
                size_t start;
                bool ok = true;

                memcpy(&k, data + a, 4);
                if ((size_t) k * 4 < a)
                        continue;
                start = (size_t) k * 4 - a;
                for (size_t i = 0; i < len && ok; i++) {
                        size_t pos = start + i;
                        guint32 w = (guint32) (pos / 4);
                        ok = data[i] == ((w >> (8 * (pos % 4))) & 0xff);
                }
                if (ok) {
                        *ret_offset = start;
                        return true;
                }
        }
        return false;
}

static void case_16(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("16");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GByteArray) got = g_byte_array_new();
        guint8 marker[16];
        guint64 accepted;
        const guint8 *hit = NULL;
        size_t stale, off = 0;
        gint64 deadline;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        glvm_port_set_reading(port, false);
        p = dt_guest(vm, "16 %s", DT_P0);
        accepted = dt_value_u64(p, "accepted");
        dt_at(p, "full");
        /* the first client leaves without reading a byte; a second one comes */
        glvm_port_disconnect(port);
        glvm_vm_sleep(vm, 200);
        glvm_port_set_reading(port, true);
        dt_connect(port);
        dt_go(p);
        memset(marker, 0xff, sizeof(marker));
        deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
        while (!hit) {
                g_autoptr(GBytes) b = NULL;

                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                glvm_vm_iterate(vm, 100);
                b = glvm_port_take(port);
                g_byte_array_append(got, g_bytes_get_data(b, NULL), (guint) g_bytes_get_size(b));
                if (got->len >= sizeof(marker))
                        hit = memmem(got->data, got->len, marker, sizeof(marker));
        }
        stale = (size_t) (hit - got->data);
        /* whatever came first is an uncorrupted contiguous run of the stream */
        g_assert_true(counter_run(got->data, stale, &off));
        g_assert_cmpuint(off + stale, <=, accepted);
        g_assert_cmpuint(got->len - stale, ==, sizeof(marker));
        g_test_message("case 16: guest queued %" G_GUINT64_FORMAT " bytes; the new client got %zu stale bytes "
                       "(stream offset %zu..%zu), %" G_GUINT64_FORMAT " discarded",
                       accepted, stale, off, off + stale, accepted - stale);
        g_print("# accepted=%" G_GUINT64_FORMAT " replayed=%zu replay_offset=%zu discarded=%" G_GUINT64_FORMAT "\n",
                accepted, stale, off, accepted - stale);
        g_free(dt_value(p, "poll_after_reconnect"));
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_17(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("17");
        g_autoptr(GlvmProc) p = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "17 %s", DT_P0);
        dt_at(p, "closed");
        dt_write(port, "early-17", 8);
        glvm_vm_sleep(vm, 500);
        dt_go(p);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_18(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("18");
        g_autoptr(GlvmProc) p = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "18 %s", DT_P0);
        dt_at(p, "opened");
        dt_write(port, "stale-18", 8);
        dt_go(p);
        g_free(dt_value(p, "poll_reopened"));
        dt_at(p, "reopened");
        dt_write(port, "fresh-18", 8);
        dt_go(p);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_19(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("19");
        g_autoptr(GlvmProc) p = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "19 %s", DT_P0);
        dt_at(p, "wrote");
        dt_expect(port, "w-19");
        dt_write(port, "r-19", 4);
        dt_go(p);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_20(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("20");
        g_autoptr(GlvmProc) p = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "20 %s", DT_P0);
        dt_at(p, "polling");
        dt_write(port, "p-20", 4);
        dt_go(p);
        g_free(dt_value(p, "woken_after_ms"));
        dt_done(p, DT_STEP_TIMEOUT);
}

#define SPLICE_SIZE (1024u * 1024u)

static void case_21(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("21");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GBytes) b = NULL;
        g_autoptr(GError) error = NULL;
        guint32 seed = 21;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "21 %s %u", DT_P0, SPLICE_SIZE);
        b = glvm_port_read_exact(port, SPLICE_SIZE, 60000, &error);
        g_assert_no_error(error);
        dt_stream_check(&seed, b, 0);
        g_assert_cmpuint(dt_value_u64(p, "splice_calls"), >=, 1);
        dt_done(p, DT_STEP_TIMEOUT);
        glvm_vm_sleep(vm, 200);
        g_assert_cmpuint(glvm_port_available(port), ==, 0);
}

static void case_22(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("22");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GError) error = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);
        gint64 t0;

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "22 %s", DT_P0);
        dt_at(p, "blocked");
        t0 = g_get_monotonic_time();
        glvm_vm_unplug_port(port, 30000, &error);
        g_assert_no_error(error);
        g_test_message("device_del -> DEVICE_DELETED: %.0f ms", (g_get_monotonic_time() - t0) / 1e3);
        dt_go(p);
        g_free(dt_value(p, "blocked_read"));
        g_free(dt_value(p, "poll"));
        dt_done(p, DT_STEP_TIMEOUT);
        /* the host's connection to the chardev survives the unplug */
        glvm_vm_sleep(vm, 200);
        g_test_message("host socket after unplug: %s", glvm_port_eof(port) ? "EOF" : "open, no EOF");
        dt_no_oops(vm);
}

static void case_23(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("23");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GError) error = NULL;
        GlvmPort *port;

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "23 org.guestlink.test.hp");
        dt_at(p, "waiting");
        dt_go(p);
        port = glvm_vm_hotplug_port(vm, "org.guestlink.test.hp", 10000, &error);
        g_assert_no_error(error);
        dt_connect(port);
        dt_expect(port, "hp-23");
        dt_write(port, "ok-23", 5);
        g_free(dt_value(p, "appeared_after_ms"));
        g_free(dt_value(p, "node"));
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_24(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("24");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *nodes = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "24 %s", DT_P0);
        dt_at(p, "first");
        glvm_vm_unplug_port(port, 30000, &error);
        g_assert_no_error(error);
        dt_go(p);
        dt_at(p, "removed");
        glvm_vm_replug_port(port, 10000, &error);
        g_assert_no_error(error);
        dt_go(p);
        /* the host connection made before the unplug carries the new port */
        dt_expect(port, "re-24");
        dt_write(port, "ok-24", 5);
        nodes = dt_value(p, "nodes");
        dt_done(p, DT_STEP_TIMEOUT);
        dt_no_oops(vm);
}

static void case_25(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("25");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GString) names = g_string_new(NULL);
        GlvmPort *port[8];

        for (int i = 0; i < 8; i++) {
                g_autofree char *n = g_strdup_printf("org.guestlink.test.%d", i);
                port[i] = glvm_vm_add_port(vm, n, GLVM_PORT_SERVER);
                g_string_append_printf(names, " %s", n);
        }
        dt_vm_boot(vm, false);
        for (int i = 0; i < 4; i++)
                dt_connect(port[i]);
        p = dt_guest(vm, "25 OOOOHHHH HOOOOHHH%s", names->str);
        dt_at(p, "before");
        glvm_port_disconnect(port[0]);
        dt_connect(port[4]);
        dt_go(p);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_26(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("26");
        g_autoptr(GlvmProc) p = NULL;
        GlvmPort *port[30];

        glvm_vm_set_max_ports(vm, 31);
        for (int i = 0; i < 30; i++) {
                g_autofree char *n = g_strdup_printf("org.guestlink.test.m%d", i);
                port[i] = glvm_vm_add_port(vm, n, GLVM_PORT_SERVER);
        }
        dt_vm_boot(vm, true);
        p = dt_guest(vm, "26 org.guestlink.test.m 30");
        for (int round = 0;; round++) {
                g_autofree char *states = dt_value(p, "states");
                unsigned missing = 0;

                g_assert_cmpuint(strlen(states), ==, 30);
                dt_at(p, "states");
                for (int i = 0; i < 30; i++)
                        if (states[i] != 'O') {
                                /* a reconnect makes QEMU send PORT_OPEN again */
                                glvm_port_disconnect(port[i]);
                                glvm_vm_sleep(vm, 100);
                                dt_connect(port[i]);
                                glvm_vm_sleep(vm, 100);
                                missing++;
                        }
                if (round == 0) {
                        g_test_message("case 26: %u of 30 connected ports looked unconnected to the guest after boot",
                                       missing);
                        g_print("# lost_port_open=%u\n", missing);
                }
                dt_go(p);
                if (missing == 0)
                        break;
        }
        dt_at(p, "written");
        for (int i = 0; i < 30; i++) {
                g_autofree char *in = g_strdup_printf("port-%02d", i);
                g_autofree char *out = g_strdup_printf("ack-%02d", i);
                dt_expect(port[i], in);
                dt_write(port[i], out, 6);
        }
        dt_go(p);
        g_assert_cmpuint(dt_value_u64(p, "ports"), ==, 30);
        dt_done(p, DT_STEP_TIMEOUT);
        {
                /* 30 test ports + the harness's control port */
                g_autofree char *n = glvm_vm_check(vm, 10000, "ls /sys/class/virtio-ports | grep -c '^vport'");
                g_assert_cmpstr(n, ==, "31\n");
        }
}

static void case_27(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("27");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) e1 = NULL, e2 = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);
        gint64 t0;

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "27 %s", DT_P0);
        dt_at(p, "start");
        glvm_vm_drop_events(vm);
        dt_go(p);
        dt_at(p, "opened");
        t0 = g_get_monotonic_time();
        e1 = glvm_vm_wait_event(vm, "VSERPORT_CHANGE", "id", glvm_port_device_id(port), 5000, &error);
        g_assert_no_error(error);
        g_assert_true(json_object_get_boolean(json_object_object_get(json_object_object_get(e1, "data"), "open")));
        g_test_message("open -> VSERPORT_CHANGE open=true seen %.0f ms after the guest's step",
                       (g_get_monotonic_time() - t0) / 1e3);
        dt_go(p);
        dt_at(p, "closed");
        t0 = g_get_monotonic_time();
        e2 = glvm_vm_wait_event(vm, "VSERPORT_CHANGE", "id", glvm_port_device_id(port), 5000, &error);
        g_assert_no_error(error);
        g_assert_false(json_object_get_boolean(json_object_object_get(json_object_object_get(e2, "data"), "open")));
        g_test_message("close -> VSERPORT_CHANGE open=false seen %.0f ms after the guest's step",
                       (g_get_monotonic_time() - t0) / 1e3);
        dt_go(p);
        dt_done(p, DT_STEP_TIMEOUT);
}

static void case_28(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("28");
        g_autoptr(GlvmProc) p = NULL;
        GlvmPort *port = glvm_vm_add_port(vm, DT_CON, GLVM_PORT_CONSOLE);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "28");
        dt_at(p, "raw");
        dt_write(port, "hvc-in-28", 9);
        dt_go(p);
        dt_expect(port, "hvc-out-28");
        dt_done(p, DT_STEP_TIMEOUT);
}

#define STOP_SIZE (16u * 1024 * 1024)

static void case_29(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("29");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree guint8 *out = g_malloc(STOP_SIZE);
        g_autofree char *h2g = NULL, *mine = NULL;
        guint32 rseed = 2929, wseed = 9292;
        size_t got = 0;
        unsigned cycles = 0, mid = 0;
        gint64 deadline;
        GlvmPort *port = glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);

        dt_vm_boot(vm, true);
        p = dt_guest(vm, "29 %s %u", DT_P0, STOP_SIZE);
        dt_at(p, "go");
        dt_stream_fill(&wseed, out, STOP_SIZE);
        glvm_port_queue(port, out, STOP_SIZE);
        dt_go(p);
        deadline = g_get_monotonic_time() + 240 * G_USEC_PER_SEC;
        while (got < STOP_SIZE || glvm_port_pending_tx(port) > 0) {
                g_autoptr(json_object) r1 = NULL, r2 = NULL;
                g_autofree char *st = NULL;
                g_autoptr(GBytes) b = NULL;

                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                glvm_vm_sleep(vm, 150);
                b = glvm_port_take(port);
                dt_stream_check(&rseed, b, got);
                got += g_bytes_get_size(b);
                if (got >= STOP_SIZE && glvm_port_pending_tx(port) == 0)
                        break;
                r1 = glvm_vm_qmp(vm, "stop", NULL, 5000, &error);
                g_assert_no_error(error);
                st = glvm_vm_status(vm, &error);
                g_assert_cmpstr(st, ==, "paused");
                cycles++;
                if (got > 0 && got < STOP_SIZE)
                        mid++;
                glvm_vm_sleep(vm, 150);
                r2 = glvm_vm_qmp(vm, "cont", NULL, 5000, &error);
                g_assert_no_error(error);
        }
        g_assert_cmpuint(got, ==, STOP_SIZE);
        g_test_message("case 29: %u stop/cont cycles, %u in the middle of the guest->host stream", cycles, mid);
        g_assert_cmpuint(mid, >=, 2);
        h2g = dt_value(p, "h2g_fnv");
        mine = g_strdup_printf("%016" G_GINT64_MODIFIER "x", dt_fnv1a(DT_FNV_INIT, out, STOP_SIZE));
        g_assert_cmpstr(h2g, ==, mine);
        dt_done(p, 60000);
        glvm_vm_sleep(vm, 200);
        g_assert_cmpuint(glvm_port_available(port), ==, 0);
}

static void case_30(void) {
        g_autoptr(GlvmVm) vm = dt_vm_new("30");
        g_autoptr(GlvmProc) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = NULL, ev = NULL;
        g_autofree char *left = NULL;
        gint64 t0;

        glvm_vm_add_port(vm, DT_P0, GLVM_PORT_SERVER);
        glvm_vm_add_port(vm, DT_P1, GLVM_PORT_SERVER);
        dt_vm_boot(vm, true);
        p = dt_guest(vm, "30 %s %s", DT_P0, DT_P1);
        dt_at(p, "opened");
        t0 = g_get_monotonic_time();
        r = glvm_vm_qmp(vm, "device_del", "{\"id\":\"vser0\"}", 5000, &error);
        g_assert_no_error(error);
        ev = glvm_vm_wait_event(vm, "DEVICE_DELETED", "device", "vser0", 60000, &error);
        g_assert_no_error(error);
        g_test_message("device_del vser0 -> DEVICE_DELETED: %.0f ms", (g_get_monotonic_time() - t0) / 1e3);
        dt_go(p);
        g_free(dt_value(p, "poll"));
        g_free(dt_value(p, "poll"));
        dt_done(p, DT_STEP_TIMEOUT);
        left = glvm_vm_check(vm, 10000, "ls /sys/class/virtio-ports/");
        /* only the harness's control port (another device) is left */
        {
                g_auto(GStrv) l = g_strsplit(g_strstrip(left), "\n", -1);
                g_assert_cmpuint(g_strv_length(l), ==, 1);
        }
        dt_no_oops(vm);
}

const DtCase dt_cases_b[] = {
        { "16", "reconnect-queued-data-fate", case_16 },
        { "17", "write-while-guest-closed", case_17 },
        { "18", "close-discards-unread", case_18 },
        { "19", "thread-read-and-write", case_19 },
        { "20", "thread-poll-wakeup", case_20 },
        { "21", "splice-from-pipe", case_21 },
        { "22", "unplug-blocked-read", case_22 },
        { "23", "hotplug", case_23 },
        { "24", "replug-same-name", case_24 },
        { "25", "eight-ports-independent", case_25 },
        { "26", "thirty-ports", case_26 },
        { "27", "vserport-change-event", case_27 },
        { "28", "virtconsole", case_28 },
        { "29", "stop-cont-transfer", case_29 },
        { "30", "device-unplug", case_30 },
        { NULL, NULL, NULL },
};
