/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-agent in a real guest (initramfs flavour: busybox, no systemd,
 * no logind, so power goes through the kernel): the host side is a real
 * protocol session on the port's QEMU chardev socket.
 *
 *   requests     info matches the guest's os-release and uname; stats match
 *                /proc/meminfo and nproc read in the same guest
 *   reconnect    the host disconnects in the middle of requests, many times:
 *                every request gets exactly one answer, the agent keeps
 *                running (same pid)
 *   unplug       the port is hot-unplugged and replugged: the agent waits,
 *                reopens it and answers again, same pid
 *   idle         no host connected: the agent uses no CPU time in 30 s
 *   poweroff, reboot, suspend   QMP SHUTDOWN / RESET / SUSPEND, and a
 *                "resumed" progress event after system_wakeup
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "vm-host.h"

typedef VmHost Host;

#define PORT "org.guestlink.agent.0"
#define AGENT "/usr/sbin/guestlink-agent"
#define OS_RELEASE "PRETTY_NAME=\"guestlink test guest 1.0\"\nID=gltest\nVERSION_ID=\"1.0\"\n"

/* Boots a guest running the agent, connects the host side.  tty: the
 * channel is a virtconsole (/dev/hvc0) and the agent runs in tty mode. */
static void host_start_full(Host *h, const char *name, bool s3, bool reboot, bool tty) {
        g_autoptr(GError) error = NULL;
        g_autofree char *os_release = NULL;

        glvm_skip_if_unavailable();
        h->vm = glvm_vm_new(name, GLVM_FLAVOUR_INITRAMFS);
        h->port = glvm_vm_add_port(h->vm, PORT, tty ? GLVM_PORT_CONSOLE : GLVM_PORT_SERVER);
        glvm_vm_add_binary(h->vm, g_getenv("GL_AGENT_BINARY"), AGENT);
        os_release = g_build_filename(glvm_vm_run_dir(h->vm), "os-release", NULL);
        g_assert_true(g_file_set_contents(os_release, OS_RELEASE, -1, NULL));
        glvm_vm_add_file(h->vm, os_release, "/etc/os-release", 0644);
        if (s3)
                glvm_vm_add_qemu_args(h->vm, (const char *const[]){ "-global", "ICH9-LPC.disable_s3=0", NULL });
        if (reboot)
                glvm_vm_set_no_reboot(h->vm, false);
        g_assert_true(glvm_vm_start(h->vm, false, 120000, &error));
        g_assert_no_error(error);
        if (tty) {
                /* the harness's own channels are virtserialports: ours is
                 * the only console */
                g_autofree char *dev = g_strchomp(
                        glvm_vm_check(h->vm, 10000, "ls /sys/class/tty | grep '^hvc' | head -1"));
                g_assert_cmpstr(dev, ==, "hvc0");
                h->agent = glvm_vm_spawn(h->vm, AGENT " --transport tty --device /dev/hvc0", &error);
        } else
                h->agent = glvm_vm_spawn(h->vm, AGENT " --port " PORT, &error);
        g_assert_no_error(error);
        g_assert_true(glvm_proc_expect(h->agent, "started", 30000, &error));
        vm_host_session_new(h, "host-1");
        vm_host_connect(h);
}

static void host_start(Host *h, const char *name, bool s3, bool reboot) {
        host_start_full(h, name, s3, reboot, false);
}

static void host_stop(Host *h) {
        glvm_proc_free(h->agent);
        glvm_vm_stop(h->vm);
        glvm_vm_free(h->vm);
        vm_host_session_free(h);
}

static GlMessage *wait_event(Host *h, const char *name, const char *state, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        for (;;) {
                for (guint i = 0; i < h->messages->len; i++) {
                        GlMessage *m = h->messages->pdata[i];
                        json_object *st = m->body ? json_object_object_get(m->body, "state") : NULL;

                        if (m->type == GL_MSG_EVENT && g_str_equal(m->name, name) &&
                            (!state || (st && g_str_equal(json_object_get_string(st), state))))
                                return g_ptr_array_steal_index(h->messages, i);
                }
                if (g_get_monotonic_time() > deadline)
                        return NULL;
                vm_host_pump(h, 50);
        }
}

static const char *get(json_object *o, const char *a, const char *b) {
        json_object *v = json_object_object_get(o, a);
        if (b)
                v = json_object_object_get(v, b);
        return v ? json_object_get_string(v) : NULL;
}

static char *agent_pid(Host *h) {
        return g_strchomp(glvm_vm_check(h->vm, 10000, "pidof guestlink-agent"));
}

static void test_requests(void) {
        Host h = { 0 };
        g_autofree char *release = NULL, *meminfo = NULL, *nproc = NULL, *hostname = NULL;
        GlMessage *m;

        host_start(&h, "agent-requests", false, false);
        release = g_strchomp(glvm_vm_check(h.vm, 10000, "uname -r"));
        hostname = g_strchomp(glvm_vm_check(h.vm, 10000, "uname -n"));
        meminfo = glvm_vm_check(h.vm, 10000, "awk '/^MemTotal:/ {print $2 * 1024}' /proc/meminfo");
        nproc = g_strchomp(glvm_vm_check(h.vm, 10000, "grep -c ^processor /proc/cpuinfo"));

        m = vm_host_call(&h, "info", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpstr(get(m->body, "os", "pretty_name"), ==, "guestlink test guest 1.0");
        g_assert_cmpstr(get(m->body, "os", "id"), ==, "gltest");
        g_assert_cmpstr(get(m->body, "kernel", "release"), ==, release);
        g_assert_cmpstr(get(m->body, "hostname", NULL), ==, hostname);
        g_assert_cmpstr(get(m->body, "architecture", NULL), ==, "x86_64");
        gl_message_free(m);

        m = vm_host_call(&h, "stats.get", "{\"sections\":[\"memory\",\"cpu\",\"load\"]}");
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpint(
                json_object_get_int64(json_object_object_get(json_object_object_get(m->body, "memory"), "total_bytes")),
                ==, g_ascii_strtoll(meminfo, NULL, 10));
        g_assert_cmpstr(get(m->body, "cpu", "count"), ==, nproc);
        gl_message_free(m);
        host_stop(&h);
}

/* The host side goes away in the middle of requests, 20 times. */
static void test_reconnect(void) {
        Host h = { 0 };
        g_autofree char *pid = NULL, *pid_after = NULL;
        uint64_t ids[20];
        unsigned answered = 0;
        gint64 deadline;

        host_start(&h, "agent-reconnect", false, false);
        pid = agent_pid(&h);
        for (int i = 0; i < 20; i++) {
                g_assert_cmpint(gl_session_request(h.s, "info", NULL, NULL, 0, 0, vm_host_now_ms(), 600000, &ids[i]),
                                ==, 0);
                vm_host_pump(&h, i * 7 % 40); /* the request may or may not have gone out */
                vm_host_disconnect(&h);
                glvm_vm_sleep(h.vm, 100);
                vm_host_connect(&h);
        }
        deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
        while (answered < 20) {
                for (int i = 0; i < 20; i++) {
                        GlMessage *m = vm_host_take_answer(&h, ids[i]);
                        if (!m)
                                continue;
                        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
                        gl_message_free(m);
                        answered++;
                }
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                vm_host_pump(&h, 50);
        }
        /* and nothing twice: a few more seconds bring no other answer */
        for (int i = 0; i < 20; i++)
                vm_host_pump(&h, 50);
        for (guint i = 0; i < h.messages->len; i++)
                g_assert_false(((GlMessage *) h.messages->pdata[i])->type == GL_MSG_RESPONSE);
        pid_after = agent_pid(&h);
        g_assert_cmpstr(pid, ==, pid_after);
        g_test_message("20 requests across 20 reconnects: 20 answers, %" G_GUINT64_FORMAT " host retransmits",
                       gl_session_stats(h.s)->retransmits);
        host_stop(&h);
}

static void test_unplug(void) {
        Host h = { 0 };
        g_autoptr(GError) error = NULL;
        g_autofree char *pid = NULL, *pid_after = NULL;
        GlMessage *m;

        host_start(&h, "agent-unplug", false, false);
        pid = agent_pid(&h);
        vm_host_disconnect(&h);
        g_assert_true(glvm_vm_unplug_port(h.port, 10000, &error));
        g_assert_no_error(error);
        g_assert_true(glvm_proc_expect(h.agent, "went away", 10000, &error));
        glvm_vm_sleep(h.vm, 2000);
        g_assert_true(glvm_vm_replug_port(h.port, 10000, &error));
        g_assert_true(glvm_proc_expect(h.agent, "opened", 20000, &error));
        vm_host_connect(&h);
        m = vm_host_call(&h, "ping", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);
        pid_after = agent_pid(&h);
        g_assert_cmpstr(pid, ==, pid_after);
        host_stop(&h);
}

/* A console (hvc) in raw tty mode: the agent cannot see the host come and
 * go, so every reconnect is one it did not notice; the protocol's hello
 * exchange still resynchronises and nothing is lost or repeated. */
static void test_tty(void) {
        Host h = { 0 };
        uint64_t ids[10];
        unsigned answered = 0;
        gint64 deadline;
        GlMessage *m;

        host_start_full(&h, "agent-tty", false, false, true);
        m = vm_host_call(&h, "info", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpstr(get(m->body, "os", "id"), ==, "gltest");
        gl_message_free(m);
        for (int i = 0; i < 10; i++) {
                g_assert_cmpint(gl_session_request(h.s, "ping", NULL, NULL, 0, 0, vm_host_now_ms(), 600000, &ids[i]),
                                ==, 0);
                vm_host_pump(&h, i * 11 % 50);
                vm_host_disconnect(&h);
                glvm_vm_sleep(h.vm, 100);
                vm_host_connect(&h);
        }
        deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
        while (answered < 10) {
                for (int i = 0; i < 10; i++) {
                        GlMessage *a = vm_host_take_answer(&h, ids[i]);
                        if (!a)
                                continue;
                        g_assert_cmpint(a->type, ==, GL_MSG_RESPONSE);
                        gl_message_free(a);
                        answered++;
                }
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                vm_host_pump(&h, 50);
        }
        for (int i = 0; i < 20; i++)
                vm_host_pump(&h, 50);
        for (guint i = 0; i < h.messages->len; i++)
                g_assert_false(((GlMessage *) h.messages->pdata[i])->type == GL_MSG_RESPONSE);
        host_stop(&h);
}

/* AF_VSOCK: the agent listens on a vsock port; a guest-side relay carries
 * the host's port to it through vsock_loopback (this host has no
 * vhost-vsock for a real host-to-guest vsock).  When the relay's
 * connection ends, the agent listens again and takes the next one. */
static void test_vsock(void) {
        Host h = { 0 };
        g_autoptr(GError) error = NULL;
        g_autofree char *conf = NULL, *pid = NULL, *pid_after = NULL;
        GlMessage *m;

        glvm_skip_if_unavailable();
        h.vm = glvm_vm_new("agent-vsock", GLVM_FLAVOUR_INITRAMFS);
        h.port = glvm_vm_add_port(h.vm, PORT, GLVM_PORT_SERVER);
        glvm_vm_add_binary(h.vm, g_getenv("GL_AGENT_BINARY"), AGENT);
        glvm_vm_add_binary(h.vm, g_getenv("GL_VSOCK_RELAY"), "/usr/bin/vsock-relay");
        glvm_vm_add_kernel_module(h.vm, "vsock_loopback");
        conf = g_build_filename(glvm_vm_run_dir(h.vm), "agent-vsock.conf", NULL);
        g_assert_true(
                g_file_set_contents(conf, "[channel]\ntransport=vsock\nvsock-port=5701\nvsock-peer-cid=1\n", -1, NULL));
        glvm_vm_add_file(h.vm, conf, "/etc/agent-vsock.conf", 0644);
        g_assert_true(glvm_vm_start(h.vm, false, 120000, &error));
        g_assert_no_error(error);
        h.agent = glvm_vm_spawn(h.vm, AGENT " --config /etc/agent-vsock.conf", &error);
        g_assert_no_error(error);
        g_assert_true(glvm_proc_expect(h.agent, "listening on vsock port 5701", 30000, &error));
        vm_host_session_new(&h, "host-vsock");
        pid = agent_pid(&h);

        for (int round = 0; round < 2; round++) {
                g_autoptr(GlvmProc)
                        relay = glvm_vm_spawn(h.vm, "vsock-relay /dev/virtio-ports/" PORT " 1 5701", &error);

                g_assert_no_error(error);
                g_assert_true(glvm_proc_expect(relay, "relaying", 20000, &error));
                vm_host_connect(&h);
                m = vm_host_call(&h, "info", NULL);
                g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
                g_assert_cmpstr(get(m->body, "os", "family"), ==, "linux");
                gl_message_free(m);
                /* the relay goes: the agent loses its vsock client */
                g_assert_true(glvm_proc_kill(relay, 9, &error));
                (void) glvm_proc_wait(relay, 10000, NULL);
                vm_host_disconnect(&h);
        }
        g_assert_true(glvm_proc_expect(h.agent, "host disconnected", 10000, &error));
        pid_after = agent_pid(&h);
        g_assert_cmpstr(pid, ==, pid_after);

        /* by default only the host (CID 2) is served: a guest process is refused */
        {
                g_autofree char *conf2 = glvm_vm_check(h.vm, 10000,
                                                       "printf '[channel]\\ntransport=vsock\\nvsock-port=5702\\n' "
                                                       "> /tmp/default.conf; echo ok");
                g_autoptr(GlvmProc) agent2 = glvm_vm_spawn(h.vm, AGENT " --config /tmp/default.conf", &error);
                g_autoptr(GlvmProc) relay = NULL;

                g_assert_no_error(error);
                g_assert_true(glvm_proc_expect(agent2, "listening on vsock port 5702", 20000, &error));
                relay = glvm_vm_spawn(h.vm, "vsock-relay /dev/virtio-ports/" PORT " 1 5702", &error);
                g_assert_no_error(error);
                g_assert_true(glvm_proc_expect(agent2, "refused a vsock connection from CID 1", 20000, &error));
                g_assert_no_error(error);
                (void) conf2;
        }
        host_stop(&h);
}

/* No udev symlink: the agent finds its port by the name in sysfs.  And
 * while another process holds the port (EBUSY) it backs off, says so,
 * and opens the port once it is free. */
static void test_port_lookup(void) {
        Host h = { 0 };
        g_autoptr(GError) error = NULL;
        g_autoptr(GlvmProc) holder = NULL;
        g_autofree char *node = NULL;
        GlMessage *m;

        glvm_skip_if_unavailable();
        h.vm = glvm_vm_new("agent-lookup", GLVM_FLAVOUR_INITRAMFS);
        h.port = glvm_vm_add_port(h.vm, PORT, GLVM_PORT_SERVER);
        glvm_vm_add_binary(h.vm, g_getenv("GL_AGENT_BINARY"), AGENT);
        g_assert_true(glvm_vm_start(h.vm, false, 120000, &error));
        g_assert_no_error(error);
        node = g_strchomp(glvm_vm_check(h.vm, 10000, "readlink -f /dev/virtio-ports/" PORT));
        /* someone else holds the port, and the symlink is gone */
        holder = glvm_vm_spawnf(h.vm, &error, "exec 3<>%s; rm -f /dev/virtio-ports/" PORT "; echo held; sleep 600",
                                node);
        g_assert_no_error(error);
        g_assert_true(glvm_proc_expect(holder, "held", 10000, &error));
        h.agent = glvm_vm_spawn(h.vm, AGENT " --port " PORT, &error);
        g_assert_no_error(error);
        g_assert_true(glvm_proc_expect(h.agent, "is held by another process", 20000, &error));
        g_assert_true(glvm_proc_kill(holder, 9, &error));
        (void) glvm_proc_wait(holder, 10000, NULL);
        g_assert_true(glvm_proc_expect(h.agent, "opened /dev/vport", 30000, &error));
        vm_host_session_new(&h, "host-lookup");
        vm_host_connect(&h);
        m = vm_host_call(&h, "ping", NULL);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        gl_message_free(m);
        host_stop(&h);
}

static unsigned long long cpu_ticks(Host *h, const char *pid) {
        g_autofree char *stat = glvm_vm_check(h->vm, 10000, "cat /proc/%s/stat", pid);
        g_auto(GStrv) f = g_strsplit(strrchr(stat, ')') + 2, " ", -1);

        /* fields after the comm: state is [0], utime [11], stime [12] */
        return g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10);
}

static void test_idle(void) {
        Host h = { 0 };
        g_autofree char *pid = NULL;
        unsigned long long before, after;

        host_start(&h, "agent-idle", false, false);
        pid = agent_pid(&h);
        vm_host_disconnect(&h);
        glvm_vm_sleep(h.vm, 2000); /* let it settle into waiting for SIGIO */
        before = cpu_ticks(&h, pid);
        glvm_vm_sleep(h.vm, 30000);
        after = cpu_ticks(&h, pid);
        g_test_message("agent CPU ticks with no host over 30 s: %llu -> %llu", before, after);
        g_assert_cmpuint(after, ==, before);
        host_stop(&h);
}

static void test_power(const char *action) {
        Host h = { 0 };
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) ev = NULL;
        g_autofree char *params = g_strdup_printf("{\"action\":\"%s\"}", action);
        GlMessage *m;
        int status = -1;

        host_start(&h, action, g_str_equal(action, "suspend"), g_str_equal(action, "reboot"));
        m = vm_host_call(&h, "heartbeat.subscribe", "{\"interval_seconds\":1}");
        gl_message_free(m);
        m = vm_host_call(&h, "power.request", params);
        g_assert_cmpint(m->type, ==, GL_MSG_RESPONSE);
        g_assert_cmpstr(get(m->body, "backend", NULL), ==, "kernel");
        gl_message_free(m);
        m = wait_event(&h, "power.progress", "started", 10000);
        g_assert_nonnull(m);
        gl_message_free(m);

        if (g_str_equal(action, "poweroff")) {
                ev = glvm_vm_wait_event(h.vm, "SHUTDOWN", NULL, NULL, 60000, &error);
                g_assert_no_error(error);
                g_assert_true(glvm_vm_wait_exit(h.vm, 60000, &status, &error));
                g_assert_cmpint(status, ==, 0);
        } else if (g_str_equal(action, "reboot")) {
                ev = glvm_vm_wait_event(h.vm, "RESET", NULL, NULL, 60000, &error);
                g_assert_no_error(error);
        } else {
                g_autoptr(json_object) r = NULL;
                g_autofree char *status_text = NULL;

                ev = glvm_vm_wait_event(h.vm, "SUSPEND", NULL, NULL, 60000, &error);
                g_assert_no_error(error);
                status_text = glvm_vm_status(h.vm, &error);
                g_assert_cmpstr(status_text, ==, "suspended");
                r = glvm_vm_qmp(h.vm, "system_wakeup", NULL, 5000, &error);
                g_assert_no_error(error);
                m = wait_event(&h, "power.progress", "resumed", 60000);
                g_assert_nonnull(m);
                gl_message_free(m);
                m = wait_event(&h, "heartbeat", "resumed", 10000);
                g_assert_nonnull(m);
                gl_message_free(m);
        }
        host_stop(&h);
}

static void test_poweroff(void) {
        test_power("poweroff");
}

static void test_reboot(void) {
        test_power("reboot");
}

static void test_suspend(void) {
        test_power("suspend");
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                void (*fn)(void);
        } cases[] = {
                { "requests", test_requests }, { "reconnect", test_reconnect },
                { "unplug", test_unplug },     { "idle", test_idle },
                { "poweroff", test_poweroff }, { "reboot", test_reboot },
                { "suspend", test_suspend },   { "tty", test_tty },
                { "vsock", test_vsock },       { "port-lookup", test_port_lookup },
        };

        g_test_init(&argc, &argv, NULL);
        /* One case per process (meson runs them in parallel): the name is
         * in $GL_VM_CASE, or all of them. */
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
                if (!g_getenv("GL_VM_CASE") || g_str_equal(g_getenv("GL_VM_CASE"), cases[i].name)) {
                        g_autofree char *path = g_strdup_printf("/vm-agent/%s", cases[i].name);
                        g_test_add_func(path, cases[i].fn);
                }
        return g_test_run();
}
