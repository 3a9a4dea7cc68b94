/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-bench-agent: guestlink-agent next to Debian's qemu-guest-agent
 * in one guest (initramfs flavour, TCG), each on its own virtio-serial port:
 *
 *   - round trips: N x guest-ping vs N x guestlink "ping" requests, each timed
 *     from the host side of its chardev socket (median, p99, ratio);
 *   - memory: Rss and anonymous memory from /proc/PID/smaps_rollup (ratio);
 *   - idle CPU: clock ticks each used over S seconds with no host connected.
 *
 * Goals (issue 4): guestlink median at most 0.5 x qemu-ga's, Rss at most
 * 0.75 x qemu-ga's, 0 idle ticks.  Figures are TCG figures: compare ratios.
 *
 *   guestlink-bench-agent [--round-trips N] [--idle-seconds S]
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm-host.h"

#define GL_PORT "org.guestlink.agent.0"
#define QGA_PORT "org.qemu.guest_agent.0"
#define QGA "/usr/sbin/qemu-ga"

typedef VmHost Bench;

static void die(const char *what, GError *error) {
        fprintf(stderr, "guestlink-bench-agent: %s: %s\n", what, error ? error->message : "failed");
        exit(EXIT_FAILURE);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void percentiles(double *v, size_t n, double *p50, double *p99) {
        qsort(v, n, sizeof(double), cmp_double);
        *p50 = v[n / 2];
        *p99 = v[(size_t) ((double) n * 0.99) < n ? (size_t) ((double) n * 0.99) : n - 1];
}

/* qemu-ga: newline-delimited JSON; one command, wait for its whole line. */
static double qga_round_trip(GlvmPort *qga, const char *cmd) {
        g_autoptr(GError) error = NULL;
        gint64 t0 = g_get_monotonic_time();
        GString *line = g_string_new(NULL);
        double us;

        if (!glvm_port_write(qga, cmd, strlen(cmd), 10000, &error))
                die("write to qemu-ga", error);
        while (!strchr(line->str, '\n')) {
                g_autoptr(GBytes) got = glvm_port_read_some(qga, 4096, 10000, &error);
                gsize n;
                const char *p;

                if (!got)
                        die("read from qemu-ga", error);
                p = g_bytes_get_data(got, &n);
                g_string_append_len(line, p, (gssize) n);
        }
        us = (double) (g_get_monotonic_time() - t0);
        if (!strstr(line->str, "\"return\""))
                die(line->str, NULL);
        g_string_free(line, TRUE);
        return us;
}

static double gl_round_trip(Bench *b) {
        gint64 t0 = g_get_monotonic_time();
        uint64_t id;

        if (gl_session_request(b->s, "ping", NULL, NULL, 0, 0, vm_host_now_ms(), 10000, &id) < 0)
                die("ping request", NULL);
        for (;;) {
                vm_host_pump(b, 1);
                for (guint i = 0; i < b->messages->len; i++) {
                        GlMessage *m = b->messages->pdata[i];
                        if (m->type == GL_MSG_RESPONSE && m->id == id) {
                                double us = (double) (g_get_monotonic_time() - t0);
                                g_ptr_array_remove_index(b->messages, i);
                                return us;
                        }
                }
                if (g_get_monotonic_time() - t0 > 10 * G_USEC_PER_SEC)
                        die("guestlink ping", NULL);
        }
}

/* Rss and Anonymous (kB) of the process named name, from smaps_rollup. */
static void memory_kb(Bench *b, const char *name, long *rss, long *anon) {
        g_autofree char *out = glvm_vm_check(
                b->vm, 10000,
                "awk '/^Rss:/ {r=$2} /^Anonymous:/ {a=$2} END {print r, a}' /proc/$(pidof %s)/smaps_rollup", name);

        if (sscanf(out, "%ld %ld", rss, anon) != 2)
                die("smaps_rollup", NULL);
}

static unsigned long long ticks(Bench *b, const char *name) {
        g_autofree char *stat = glvm_vm_check(b->vm, 10000, "cat /proc/$(pidof %s)/stat", name);
        g_auto(GStrv) f = g_strsplit(strrchr(stat, ')') + 2, " ", -1);

        return g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "round-trips", required_argument, NULL, 'n' },
                { "idle-seconds", required_argument, NULL, 'i' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        g_autoptr(GError) error = NULL;
        g_autofree double *qga_us = NULL, *gl_us = NULL;
        const char *agent = g_getenv("GL_AGENT_BINARY");
        unsigned n = 200, idle = 60;
        double q50, q99, g50, g99;
        long q_rss, q_anon, g_rss, g_anon;
        unsigned long long q_t0, q_t1, g_t0, g_t1;
        Bench b = { 0 };
        GlvmPort *qga;
        int opt;

        while ((opt = getopt_long(argc, argv, "n:i:h", options, NULL)) >= 0)
                switch (opt) {
                case 'n':
                        n = (unsigned) atoi(optarg);
                        break;
                case 'i':
                        idle = (unsigned) atoi(optarg);
                        break;
                default:
                        printf("%s [--round-trips N] [--idle-seconds S]\n", argv[0]);
                        return opt == 'h' ? EXIT_SUCCESS : EXIT_FAILURE;
                }
        if (n < 10)
                n = 10;
        if (!agent)
                agent = GL_BUILD_ROOT "/agent/guestlink-agent";
        if (access(QGA, X_OK) < 0) {
                fprintf(stderr, "guestlink-bench-agent: %s is missing: apt-get install qemu-guest-agent\n", QGA);
                return EXIT_FAILURE;
        }

        b.vm = glvm_vm_new("bench-agent", GLVM_FLAVOUR_INITRAMFS);
        b.port = glvm_vm_add_port(b.vm, GL_PORT, GLVM_PORT_SERVER);
        qga = glvm_vm_add_port(b.vm, QGA_PORT, GLVM_PORT_SERVER);
        glvm_vm_add_binary(b.vm, agent, "/usr/sbin/guestlink-agent");
        glvm_vm_add_binary(b.vm, QGA, QGA);
        if (!glvm_vm_start(b.vm, false, 120000, &error))
                die("boot", error);
        g_free(glvm_vm_check(b.vm, 10000,
                             "mkdir -p /run /var/run; (" QGA " -m virtio-serial -p /dev/virtio-ports/" QGA_PORT
                             " -t /run -l /tmp/qga.log &) ; (/usr/sbin/guestlink-agent --port " GL_PORT
                             " 2>/tmp/gl.log &); sleep 2; pidof qemu-ga guestlink-agent"));

        /* connect both, warm up */
        if (!glvm_port_connect(qga, 10000, &error))
                die("connect", error);
        vm_host_session_new(&b, "bench");
        vm_host_connect(&b);
        (void) qga_round_trip(qga, "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":12345}}\n");

        qga_us = g_new(double, n);
        gl_us = g_new(double, n);
        for (unsigned i = 0; i < 20; i++) {
                (void) qga_round_trip(qga, "{\"execute\":\"guest-ping\"}\n");
                (void) gl_round_trip(&b);
        }
        /* interleaved, so both see the same machine */
        for (unsigned i = 0; i < n; i++) {
                qga_us[i] = qga_round_trip(qga, "{\"execute\":\"guest-ping\"}\n");
                gl_us[i] = gl_round_trip(&b);
        }
        percentiles(qga_us, n, &q50, &q99);
        percentiles(gl_us, n, &g50, &g99);
        memory_kb(&b, "qemu-ga", &q_rss, &q_anon);
        memory_kb(&b, "guestlink-agent", &g_rss, &g_anon);

        /* idle: no host on either port */
        glvm_port_disconnect(qga);
        glvm_port_disconnect(b.port);
        glvm_vm_sleep(b.vm, 2000);
        q_t0 = ticks(&b, "qemu-ga");
        g_t0 = ticks(&b, "guestlink-agent");
        glvm_vm_sleep(b.vm, (int) idle * 1000);
        q_t1 = ticks(&b, "qemu-ga");
        g_t1 = ticks(&b, "guestlink-agent");

        printf("guestlink-agent vs qemu-ga (%s), one TCG guest, %u round trips each, timed on the host\n",
               "Debian qemu-guest-agent", n);
        printf("%-34s %12s %12s %8s  %s\n", "", "qemu-ga", "guestlink", "ratio", "goal");
        printf("%-34s %9.0f us %9.0f us %8.2f  <= 0.50 %s\n", "round trip, median", q50, g50, g50 / q50,
               g50 <= 0.5 * q50 ? "met" : "NOT met");
        printf("%-34s %9.0f us %9.0f us %8.2f\n", "round trip, p99", q99, g99, g99 / q99);
        printf("%-34s %9ld kB %9ld kB %8.2f  <= 0.75 %s\n", "Rss (smaps_rollup)", q_rss, g_rss,
               (double) g_rss / (double) q_rss, g_rss <= 0.75 * (double) q_rss ? "met" : "NOT met");
        printf("%-34s %9ld kB %9ld kB %8.2f\n", "Anonymous (smaps_rollup)", q_anon, g_anon,
               (double) g_anon / (double) (q_anon ? q_anon : 1));
        printf("%-34s %12llu %12llu %8s  guestlink 0 %s\n", "CPU ticks idle, no host", q_t1 - q_t0, g_t1 - g_t0, "",
               g_t1 == g_t0 ? "met" : "NOT met");
        printf("(idle window %u s; 1 tick = 10 ms)\n", idle);

        glvm_vm_stop(b.vm);
        glvm_vm_free(b.vm);
        vm_host_session_free(&b);
        return EXIT_SUCCESS;
}
