/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The whole host side against a real guest: an initramfs guest (glvm) runs
 * the real guestlink-agent on org.guestlink.agent.0 (a QEMU chardev in
 * server mode), the real guestlink-bridge holds that chardev (a static
 * guest in connect mode, from a temporary bridge.conf), and the real
 * `guestlink` CLI runs as a subprocess.
 *
 *   cli-through-bridge  list (human and JSON), info, stats, ping, events
 *                       through the bridge, checked against what the guest
 *                       itself reports; exit codes for an unknown guest and
 *                       for a guest whose agent was killed
 *   cli-direct          --direct on the chardev with no bridge; with a
 *                       bridge holding it, QEMU does not serve a second
 *                       client: "no agent" (exit 5)
 *   bridge-restart-mid-request
 *                       the guest is paused with a request outstanding, the
 *                       bridge is SIGKILLed and a new one started: the CLI
 *                       reconnects, resends and prints one correct answer
 *   chardev-reconnect-mid-request
 *                       the guest is paused with a request outstanding and
 *                       the agent's port is unplugged and plugged again: the
 *                       agent reopens it, the sessions resynchronise, and
 *                       the CLI prints one correct answer
 *   power-resent        a power request reached the agent but its answer
 *                       was lost with the bridge: the resend is answered
 *                       "busy" and the CLI reports the action as accepted
 *
 * One case per process: $GL_VM_CASE names it.
 */
#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "glvm.h"

#define PORT "org.guestlink.agent.0"
#define AGENT "/usr/sbin/guestlink-agent"
#define GUEST "vmguest"
#define OS_RELEASE "PRETTY_NAME=\"guestlink bridge test guest 2.0\"\nID=glbridgetest\nVERSION_ID=\"2.0\"\n"
#define CLI_WAIT_MS 90000

typedef struct Fixture {
        GlvmVm *vm;
        GlvmPort *port;
        GlvmProc *agent;
        char *dir; /* bridge.conf, control socket, logs of the bridge and the CLI runs */
        char *conf, *control;
        GSubprocess *bridge;
        unsigned bridges; /* how many were started (log file names) */
        unsigned cli_runs;
        gint64 start_us;
} Fixture;

/* A guestlink CLI run. */
typedef struct Cli {
        GSubprocess *proc;
        char *out_path, *err_path;
        bool exited;
        int status; /* exit code, or 128 + signal */
        char *out, *err;
} Cli;

static const char *env_path(const char *name) {
        const char *p = g_getenv(name);

        g_assert_nonnull(p);
        return p;
}

static double elapsed_s(const Fixture *f) {
        return (double) (g_get_monotonic_time() - f->start_us) / 1e6;
}

/* ---- the guest ---- */

static void agent_start(Fixture *f) {
        g_autoptr(GError) error = NULL;

        glvm_proc_free(f->agent);
        f->agent = glvm_vm_spawn(f->vm, AGENT " --port " PORT, &error);
        g_assert_no_error(error);
        g_assert_true(glvm_proc_expect(f->agent, "started", 30000, &error));
        g_assert_no_error(error);
}

static void fixture_start(Fixture *f, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autofree char *os_release = NULL, *hooks = NULL;

        glvm_skip_if_unavailable();
        f->start_us = g_get_monotonic_time();
        f->dir = g_dir_make_tmp("gl-vmbridge-XXXXXX", &error);
        g_assert_no_error(error);
        f->conf = g_build_filename(f->dir, "bridge.conf", NULL);
        f->control = g_build_filename(f->dir, "bridge.sock", NULL);
        hooks = g_build_filename(f->dir, "hooks", NULL);
        g_assert_cmpint(g_mkdir(hooks, 0755), ==, 0);

        f->vm = glvm_vm_new(name, GLVM_FLAVOUR_INITRAMFS);
        f->port = glvm_vm_add_port(f->vm, PORT, GLVM_PORT_SERVER);
        glvm_vm_add_binary(f->vm, env_path("GL_AGENT_BINARY"), AGENT);
        os_release = g_build_filename(f->dir, "os-release", NULL);
        g_assert_true(g_file_set_contents(os_release, OS_RELEASE, -1, NULL));
        glvm_vm_add_file(f->vm, os_release, "/etc/os-release", 0644);
        /* the bridge, not the test, connects to the agent's chardev */
        g_assert_true(glvm_vm_start(f->vm, false, 120000, &error));
        g_assert_no_error(error);
        agent_start(f);
        g_test_message("guest up with the agent running after %.1f s", elapsed_s(f));

        {
                g_autofree char *conf = g_strdup_printf("[bridge]\ncontrol_socket=%s\ncontrol_group=\n"
                                                        "[libvirt]\nenabled=false\n"
                                                        "[hooks]\ndirectory=%s\n"
                                                        "[stats]\ninterval_seconds=1\n"
                                                        "[heartbeat]\ninterval_seconds=1\n"
                                                        "[guest " GUEST "]\nsocket=%s\nmode=connect\n",
                                                        f->control, hooks, glvm_port_socket_path(f->port));
                g_assert_true(g_file_set_contents(f->conf, conf, -1, NULL));
        }
}

/* The bridge and the CLI die with the test, even when it is SIGKILLed
 * (like glvm's qemu). */
static void child_setup(gpointer userdata) {
        (void) userdata;
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* ---- the bridge ---- */

static void bridge_start(Fixture *f) {
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
        g_autofree char *log = g_strdup_printf("%s/bridge-%u.log", f->dir, ++f->bridges);
        g_autoptr(GError) error = NULL;
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        g_assert_null(f->bridge);
        g_subprocess_launcher_set_stdout_file_path(l, log);
        g_subprocess_launcher_unsetenv(l, "JOURNAL_STREAM");
        g_subprocess_launcher_set_child_setup(l, child_setup, NULL, NULL);
        /* the old bridge's socket file may still be there: wait for a fresh one */
        (void) g_unlink(f->control);
        f->bridge = g_subprocess_launcher_spawn(l, &error, env_path("GL_BRIDGE_BINARY"), "--config", f->conf, NULL);
        g_assert_no_error(error);
        while (!g_file_test(f->control, G_FILE_TEST_EXISTS)) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                glvm_vm_iterate(f->vm, 20);
        }
}

static void bridge_stop(Fixture *f, int sig) {
        if (!f->bridge)
                return;
        g_subprocess_send_signal(f->bridge, sig);
        g_assert_true(g_subprocess_wait(f->bridge, NULL, NULL));
        if (sig == SIGTERM) {
                g_assert_true(g_subprocess_get_if_exited(f->bridge));
                g_assert_cmpint(g_subprocess_get_exit_status(f->bridge), ==, 0);
        }
        g_clear_object(&f->bridge);
}

/* ---- the CLI ---- */

static void cli_exited(GObject *source, GAsyncResult *result, gpointer userdata) {
        Cli *c = userdata;

        (void) g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
        c->exited = true;
}

static Cli *cli_start(Fixture *f, const char *const *args) {
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *line = NULL;
        Cli *c = g_new0(Cli, 1);

        f->cli_runs++;
        c->out_path = g_strdup_printf("%s/cli-%u.out", f->dir, f->cli_runs);
        c->err_path = g_strdup_printf("%s/cli-%u.err", f->dir, f->cli_runs);
        g_subprocess_launcher_set_stdout_file_path(l, c->out_path);
        g_subprocess_launcher_set_stderr_file_path(l, c->err_path);
        g_subprocess_launcher_unsetenv(l, "GUESTLINK_SOCKET");
        g_subprocess_launcher_set_child_setup(l, child_setup, NULL, NULL);
        g_ptr_array_add(argv, (char *) env_path("GL_CLI_BINARY"));
        for (size_t i = 0; args[i]; i++)
                g_ptr_array_add(argv, (char *) args[i]);
        g_ptr_array_add(argv, NULL);
        line = g_strjoinv(" ", (char **) argv->pdata + 1);
        g_test_message("[%.1f s] guestlink %s", elapsed_s(f), line);
        c->proc = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        g_subprocess_wait_async(c->proc, NULL, cli_exited, c);
        return c;
}

/* Waits for the CLI to exit (the VM's loop keeps running); returns its exit code. */
static int cli_wait(Fixture *f, Cli *c, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        while (!c->exited) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                glvm_vm_iterate(f->vm, 50);
        }
        c->status = g_subprocess_get_if_signaled(c->proc) ? 128 + g_subprocess_get_term_sig(c->proc)
                                                          : g_subprocess_get_exit_status(c->proc);
        g_assert_true(g_file_get_contents(c->out_path, &c->out, NULL, NULL));
        g_assert_true(g_file_get_contents(c->err_path, &c->err, NULL, NULL));
        g_test_message("[%.1f s]   -> exit %d; stdout %zu bytes; stderr: %s", elapsed_s(f), c->status, strlen(c->out),
                       c->err);
        return c->status;
}

static void cli_free(Cli *c) {
        if (!c)
                return;
        if (!c->exited) {
                g_subprocess_force_exit(c->proc);
                (void) g_subprocess_wait(c->proc, NULL, NULL);
        }
        g_clear_object(&c->proc);
        g_free(c->out_path);
        g_free(c->err_path);
        g_free(c->out);
        g_free(c->err);
        g_free(c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Cli, cli_free)

/* Runs the CLI to completion. */
static Cli *cli_run(Fixture *f, const char *const *args) {
        Cli *c = cli_start(f, args);

        (void) cli_wait(f, c, CLI_WAIT_MS);
        return c;
}

/* Parses stdout as exactly one JSON object (nothing before or after it but
 * white space). */
static json_object *cli_json(const Cli *c) {
        json_tokener *tok = json_tokener_new();
        size_t len = strlen(c->out);
        json_object *o = json_tokener_parse_ex(tok, c->out, (int) len);
        size_t used = json_tokener_get_parse_end(tok);

        g_assert_cmpint(json_tokener_get_error(tok), ==, json_tokener_success);
        json_tokener_free(tok);
        g_assert_nonnull(o);
        g_assert_true(json_object_is_type(o, json_type_object));
        for (; used < len; used++)
                g_assert_true(g_ascii_isspace(c->out[used]));
        return o;
}

static const char *jget(json_object *o, const char *path) {
        g_auto(GStrv) parts = g_strsplit(path, ".", -1);

        for (size_t i = 0; parts[i] && o; i++)
                if (!json_object_object_get_ex(o, parts[i], &o))
                        return NULL;
        return o ? json_object_get_string(o) : NULL;
}

static int64_t jint(json_object *o, const char *path) {
        g_auto(GStrv) parts = g_strsplit(path, ".", -1);

        for (size_t i = 0; parts[i]; i++)
                g_assert_true(json_object_object_get_ex(o, parts[i], &o));
        g_assert_true(json_object_is_type(o, json_type_int));
        return json_object_get_int64(o);
}

/* The guest object of `guestlink list --json`. */
static json_object *list_guest(Fixture *f) {
        g_autoptr(Cli) c = cli_run(f, (const char *const[]){ "--socket", f->control, "list", "--json", NULL });
        g_autoptr(json_object) o = NULL;
        json_object *guests;

        g_assert_cmpint(c->status, ==, 0);
        o = cli_json(c);
        g_assert_true(json_object_object_get_ex(o, "guests", &guests));
        g_assert_cmpuint(json_object_array_length(guests), ==, 1);
        g_assert_cmpstr(jget(json_object_array_get_idx(guests, 0), "name"), ==, GUEST);
        return json_object_get(json_object_array_get_idx(guests, 0));
}

/* Polls `list --json` until the guest is in state (the bridge's view). */
static void wait_state(Fixture *f, const char *state, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        for (;;) {
                g_autoptr(json_object) g = list_guest(f);

                if (g_strcmp0(jget(g, "state"), state) == 0)
                        return;
                if (g_get_monotonic_time() > deadline)
                        g_error("guest state %s, expected %s", jget(g, "state"), state);
                glvm_vm_sleep(f->vm, 200);
        }
}

/* What the guest says about itself, read in the guest through glvm. */
typedef struct GuestFacts {
        char *release, *hostname, *os_id;
        int64_t mem_total_bytes;
} GuestFacts;

static void guest_facts(Fixture *f, GuestFacts *g) {
        g_autofree char *mem = g_strchomp(glvm_vm_check(f->vm, 10000, "awk '/^MemTotal:/ {print $2}' /proc/meminfo"));

        g->release = g_strchomp(glvm_vm_check(f->vm, 10000, "cat /proc/sys/kernel/osrelease"));
        g->hostname = g_strchomp(glvm_vm_check(f->vm, 10000, "uname -n"));
        g->os_id = g_strchomp(glvm_vm_check(f->vm, 10000, "sed -n 's/^ID=//p' /etc/os-release"));
        g->mem_total_bytes = g_ascii_strtoll(mem, NULL, 10) * 1024;
        g_assert_cmpint(g->mem_total_bytes, >, 0);
        g_assert_cmpstr(g->os_id, ==, "glbridgetest");
}

static void guest_facts_clear(GuestFacts *g) {
        g_free(g->release);
        g_free(g->hostname);
        g_free(g->os_id);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(GuestFacts, guest_facts_clear)

static void assert_info(const GuestFacts *g, json_object *info) {
        g_assert_cmpstr(jget(info, "kernel.release"), ==, g->release);
        g_assert_cmpstr(jget(info, "hostname"), ==, g->hostname);
        g_assert_cmpstr(jget(info, "os.id"), ==, g->os_id);
}

static void fixture_stop(Fixture *f) {
        bridge_stop(f, SIGKILL);
        glvm_proc_free(f->agent);
        glvm_vm_stop(f->vm);
        glvm_vm_free(f->vm);
        if (f->dir) {
                const char *name;
                g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);

                while (d && (name = g_dir_read_name(d))) {
                        g_autofree char *p = g_build_filename(f->dir, name, NULL);
                        g_assert_cmpint(g_remove(p), ==, 0);
                }
                g_assert_cmpint(g_rmdir(f->dir), ==, 0);
        }
        g_free(f->dir);
        g_free(f->conf);
        g_free(f->control);
        g_test_message("case took %.1f s", elapsed_s(f));
}

/* ---- cases ---- */

static void test_cli_through_bridge(void) {
        Fixture f = { 0 };
        g_auto(GuestFacts) facts = { 0 };
        g_autoptr(json_object) g = NULL, info = NULL, stats = NULL;

        fixture_start(&f, "bridge-cli");
        guest_facts(&f, &facts);
        bridge_start(&f);
        wait_state(&f, "connected", 30000);
        g_test_message("[%.1f s] bridge connected to the agent", elapsed_s(&f));

        g = list_guest(&f);
        g_assert_cmpstr(jget(g, "source"), ==, "static");
        g_assert_cmpstr(jget(g, "transport"), ==, "socket");
        g_assert_cmpstr(jget(g, "agent.software"), ==, "guestlink-agent " GL_VERSION);
        g_assert_true(json_object_get_boolean(json_object_object_get(g, "running")));
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--socket", f.control, "list", NULL });
                g_auto(GStrv) lines = g_strsplit(c->out, "\n", -1);

                g_assert_cmpint(c->status, ==, 0);
                g_assert_true(g_str_has_prefix(lines[0], "NAME"));
                g_assert_true(g_str_has_prefix(lines[1], GUEST " "));
                g_assert_nonnull(strstr(lines[1], " static "));
                g_assert_nonnull(strstr(lines[1], " connected "));
                g_assert_nonnull(strstr(lines[1], "guestlink-agent " GL_VERSION));
                g_assert_cmpstr(lines[2], ==, "");
        }

        {
                g_autoptr(Cli)
                        c = cli_run(&f, (const char *const[]){ "--socket", f.control, "info", GUEST, "--json", NULL });
                g_assert_cmpint(c->status, ==, 0);
                info = cli_json(c);
                assert_info(&facts, info);
        }
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--socket", f.control, "info", GUEST, NULL });
                g_assert_cmpint(c->status, ==, 0);
                g_assert_nonnull(strstr(c->out, "Hostname:"));
                g_assert_nonnull(strstr(c->out, facts.hostname));
                g_assert_nonnull(strstr(c->out, facts.release));
        }
        {
                g_autoptr(Cli)
                        c = cli_run(&f, (const char *const[]){ "--socket", f.control, "stats", GUEST, "--json", NULL });
                g_assert_cmpint(c->status, ==, 0);
                stats = cli_json(c);
                g_assert_cmpint(jint(stats, "memory.total_bytes"), ==, facts.mem_total_bytes);
        }
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--socket", f.control, "ping", GUEST, NULL });
                g_autofree char *want = g_strdup_printf("reply from %s: time=", GUEST);

                g_assert_cmpint(c->status, ==, 0);
                g_assert_true(g_str_has_prefix(c->out, want));
        }
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--socket", f.control, "events", GUEST, NULL });
                g_autofree char *attached = g_strdup_printf(" %s attached", GUEST);
                g_autofree char *connected = g_strdup_printf(" %s connected guestlink-agent " GL_VERSION, GUEST);

                g_assert_cmpint(c->status, ==, 0);
                g_assert_nonnull(strstr(c->out, attached));
                g_assert_nonnull(strstr(c->out, connected));
                g_assert_true(strstr(c->out, attached) < strstr(c->out, connected));
        }
        {
                /* not attached: 4 */
                g_autoptr(Cli)
                        c = cli_run(&f, (const char *const[]){ "--socket", f.control, "info", "nosuchguest", NULL });
                g_assert_cmpint(c->status, ==, 4);
                g_assert_cmpstr(c->out, ==, "");
                g_assert_nonnull(strstr(c->err, "not attached to the bridge"));
        }

        /* The agent dies.  Its port closes in the guest, but QEMU tells the
         * host nothing (no EOF): the bridge's session with the agent stays
         * established until the heartbeats stop (3 intervals of 1 s).  From
         * then on the bridge answers calls to it with no-agent at once. */
        {
                g_autoptr(GError) error = NULL;
                gint64 killed;

                g_assert_true(glvm_proc_kill(f.agent, SIGKILL, &error));
                g_assert_cmpint(glvm_proc_wait(f.agent, 10000, &error), ==, 128 + SIGKILL);
                killed = g_get_monotonic_time();
                wait_state(&f, "heartbeat-missed", 15000);
                g_test_message("[%.1f s] heartbeat-missed %.1f s after the agent was killed", elapsed_s(&f),
                               (double) (g_get_monotonic_time() - killed) / 1e6);
        }
        {
                g_autoptr(Cli) c = cli_run(
                        &f, (const char *const[]){ "--socket", f.control, "--timeout", "3", "ping", GUEST, NULL });
                g_autoptr(json_object) after = list_guest(&f);

                g_assert_cmpint(c->status, ==, 5);
                g_assert_nonnull(strstr(c->err, "heartbeats"));
                g_assert_cmpstr(jget(after, "state"), ==, "heartbeat-missed");
        }
        /* a new agent: the bridge's session resynchronises with the new
         * instance, and calls work again */
        agent_start(&f);
        wait_state(&f, "connected", 30000);
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--socket", f.control, "ping", GUEST, NULL });

                g_assert_cmpint(c->status, ==, 0);
        }
        /* no bridge at all: 3 */
        bridge_stop(&f, SIGTERM);
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--socket", f.control, "list", NULL });

                g_assert_cmpint(c->status, ==, 3);
        }
        fixture_stop(&f);
}

static void test_cli_direct(void) {
        Fixture f = { 0 };
        g_auto(GuestFacts) facts = { 0 };
        const char *sock;

        fixture_start(&f, "bridge-direct");
        sock = glvm_port_socket_path(f.port);
        guest_facts(&f, &facts);
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--direct", sock, "info", "--json", NULL });
                g_autoptr(json_object) info = NULL;

                g_assert_cmpint(c->status, ==, 0);
                info = cli_json(c);
                assert_info(&facts, info);
        }
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--direct", sock, "ping", NULL });
                g_autofree char *want = g_strdup_printf("reply from %s: time=", sock);

                g_assert_cmpint(c->status, ==, 0);
                g_assert_true(g_str_has_prefix(c->out, want));
        }
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--direct", sock, "stats", "--json", NULL });
                g_autoptr(json_object) stats = NULL;

                g_assert_cmpint(c->status, ==, 0);
                stats = cli_json(c);
                g_assert_cmpint(jint(stats, "memory.total_bytes"), ==, facts.mem_total_bytes);
        }

        /* The bridge holds the chardev: QEMU accepts a second connection
         * (backlog) but does not serve it, so no agent answers the
         * handshake: exit 5 after --timeout. */
        bridge_start(&f);
        wait_state(&f, "connected", 30000);
        {
                g_autoptr(Cli)
                        c = cli_run(&f, (const char *const[]){ "--direct", sock, "--timeout", "3", "ping", NULL });

                g_assert_cmpint(c->status, ==, 5);
                g_assert_nonnull(strstr(c->err, "no agent answered in time"));
        }
        /* the bridge still has its agent */
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--socket", f.control, "ping", GUEST, NULL });

                g_assert_cmpint(c->status, ==, 0);
        }
        /* and once it lets go, --direct works again */
        bridge_stop(&f, SIGTERM);
        {
                g_autoptr(Cli) c = cli_run(&f, (const char *const[]){ "--direct", sock, "info", "--json", NULL });
                g_autoptr(json_object) info = NULL;

                g_assert_cmpint(c->status, ==, 0);
                info = cli_json(c);
                assert_info(&facts, info);
        }
        fixture_stop(&f);
}

static void qmp(Fixture *f, const char *command) {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) r = glvm_vm_qmp(f->vm, command, NULL, 10000, &error);

        g_assert_no_error(error);
        g_assert_nonnull(r);
}

/* The guest is paused so that no answer can come; the bridge is SIGKILLed
 * and a new one started while the guest is still paused; then the guest
 * runs again.  The CLI's request must outlive both bridges' handling. */
static void test_bridge_restart(void) {
        Fixture f = { 0 };
        g_auto(GuestFacts) facts = { 0 };
        g_autoptr(Cli) c = NULL;
        g_autoptr(json_object) info = NULL, g = NULL;
        g_autofree char *status = NULL;
        char *old_instance = NULL;
        gint64 t0;

        fixture_start(&f, "bridge-restart");
        guest_facts(&f, &facts);
        bridge_start(&f);
        wait_state(&f, "connected", 30000);
        g = list_guest(&f);
        old_instance = g_strdup(jget(g, "agent.instance"));
        g_clear_pointer(&g, json_object_put);

        qmp(&f, "stop");
        status = glvm_vm_status(f.vm, NULL);
        g_assert_cmpstr(status, ==, "paused");
        t0 = g_get_monotonic_time();
        c = cli_start(&f,
                      (const char *const[]){ "--socket", f.control, "--timeout", "60", "info", GUEST, "--json", NULL });
        glvm_vm_sleep(f.vm, 1500); /* the request is with the bridge (and on to the paused guest) */
        g_assert_false(c->exited);
        bridge_stop(&f, SIGKILL);
        g_test_message("[%.1f s] bridge 1 killed", elapsed_s(&f));
        glvm_vm_sleep(f.vm, 1000); /* the CLI finds no bridge for a while */
        g_assert_false(c->exited);
        bridge_start(&f);
        g_test_message("[%.1f s] bridge 2 started", elapsed_s(&f));
        glvm_vm_sleep(f.vm, 1500); /* the CLI is back, the new bridge has no agent session yet */
        g_assert_false(c->exited);
        qmp(&f, "cont");
        g_assert_cmpint(cli_wait(&f, c, 60000), ==, 0);
        g_test_message("[%.1f s] answered %.1f s after the CLI started", elapsed_s(&f),
                       (double) (g_get_monotonic_time() - t0) / 1e6);
        info = cli_json(c); /* exactly one answer */
        assert_info(&facts, info);
        g_assert_cmpstr(c->err, ==, "");

        /* the same agent, a new bridge */
        g = list_guest(&f);
        g_assert_cmpstr(jget(g, "state"), ==, "connected");
        g_assert_cmpstr(jget(g, "agent.instance"), ==, old_instance);
        g_free(old_instance);

        /* the bridge goes and does not come back: exit 3 at the deadline */
        qmp(&f, "stop");
        {
                g_autoptr(Cli) lost = cli_start(
                        &f, (const char *const[]){ "--socket", f.control, "--timeout", "4", "info", GUEST, NULL });

                glvm_vm_sleep(f.vm, 1000);
                g_assert_false(lost->exited);
                bridge_stop(&f, SIGKILL);
                t0 = g_get_monotonic_time();
                g_assert_cmpint(cli_wait(&f, lost, 30000), ==, 3);
                g_assert_cmpstr(lost->out, ==, "");
                g_assert_nonnull(strstr(lost->err, "the connection to the bridge was lost and could not be "
                                                   "established again within 4 s"));
                g_test_message("[%.1f s] gave up %.1f s after the bridge was killed", elapsed_s(&f),
                               (double) (g_get_monotonic_time() - t0) / 1e6);
        }
        fixture_stop(&f);
}

/* The agent's port is unplugged and plugged again while a request is
 * outstanding and the guest is paused: the agent reopens the port, the
 * bridge's session with it resynchronises, and the CLI gets one answer. */
static void test_chardev_reconnect(void) {
        Fixture f = { 0 };
        g_auto(GuestFacts) facts = { 0 };
        g_autoptr(Cli) c = NULL;
        g_autoptr(json_object) info = NULL, g = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *pid = NULL, *pid_after = NULL;
        gint64 t0;

        fixture_start(&f, "bridge-replug");
        guest_facts(&f, &facts);
        pid = g_strchomp(glvm_vm_check(f.vm, 10000, "pidof guestlink-agent"));
        bridge_start(&f);
        wait_state(&f, "connected", 30000);

        qmp(&f, "stop");
        t0 = g_get_monotonic_time();
        c = cli_start(&f,
                      (const char *const[]){ "--socket", f.control, "--timeout", "60", "info", GUEST, "--json", NULL });
        glvm_vm_sleep(f.vm, 1500);
        g_assert_false(c->exited);
        g_assert_true(glvm_vm_unplug_port(f.port, 30000, &error));
        g_assert_no_error(error);
        g_test_message("[%.1f s] port unplugged", elapsed_s(&f));
        g_assert_true(glvm_vm_replug_port(f.port, 10000, &error));
        g_assert_no_error(error);
        g_test_message("[%.1f s] port plugged again", elapsed_s(&f));
        g_assert_false(c->exited);
        qmp(&f, "cont");
        /* the agent saw its port go and come back */
        g_assert_true(glvm_proc_expect(f.agent, "went away", 20000, &error));
        g_assert_true(glvm_proc_expect(f.agent, "opened", 20000, &error));
        g_assert_cmpint(cli_wait(&f, c, 60000), ==, 0);
        g_test_message("[%.1f s] answered %.1f s after the CLI started", elapsed_s(&f),
                       (double) (g_get_monotonic_time() - t0) / 1e6);
        info = cli_json(c);
        assert_info(&facts, info);
        g_assert_cmpstr(c->err, ==, "");
        /* the same agent process reopened its port */
        pid_after = g_strchomp(glvm_vm_check(f.vm, 10000, "pidof guestlink-agent"));
        g_assert_cmpstr(pid, ==, pid_after);
        g = list_guest(&f);
        g_assert_cmpstr(jget(g, "state"), ==, "connected");
        fixture_stop(&f);
}

/* A power request whose answer is lost with the bridge: the agent took it
 * (the old bridge was frozen with SIGSTOP before the answer reached it,
 * then killed), so the CLI's resend through the new bridge gets "busy".
 * The CLI reports the action as accepted, and says why. */
static void test_power_resent(void) {
        Fixture f = { 0 };
        g_autoptr(Cli) c = NULL;
        g_autoptr(json_object) out = NULL;
        GPid old_bridge;

        fixture_start(&f, "bridge-power");
        bridge_start(&f);
        wait_state(&f, "connected", 30000);

        qmp(&f, "stop");
        c = cli_start(&f, (const char *const[]){ "--socket", f.control, "--timeout", "60", "--json", "power", GUEST,
                                                 "poweroff", "--delay", "3600", NULL });
        glvm_vm_sleep(f.vm, 1500); /* the bridge wrote the request to the chardev */
        g_assert_false(c->exited);
        old_bridge = (GPid) g_ascii_strtoll(g_subprocess_get_identifier(f.bridge), NULL, 10);
        g_assert_cmpint(kill(old_bridge, SIGSTOP), ==, 0);
        qmp(&f, "cont");
        /* the agent schedules the poweroff (it says nothing until it acts);
         * its answer waits for the frozen bridge */
        glvm_vm_sleep(f.vm, 3000);
        g_assert_false(c->exited);
        bridge_stop(&f, SIGKILL);
        bridge_start(&f);
        g_assert_cmpint(cli_wait(&f, c, 60000), ==, 0);
        out = cli_json(c);
        g_assert_cmpstr(jget(out, "action"), ==, "poweroff");
        g_assert_cmpstr(jget(out, "accepted_before_resend"), ==, "true");
        g_assert_cmpstr(jget(out, "agent_answer"), ==, "busy");
        g_assert_cmpstr(c->err, ==, "");
        /* exactly one operation is scheduled in the guest: a new request is refused */
        {
                g_autoptr(Cli) again = cli_run(&f, (const char *const[]){ "--socket", f.control, "power", GUEST,
                                                                          "poweroff", "--delay", "3600", NULL });

                g_assert_cmpint(again->status, ==, 8);
                g_assert_nonnull(strstr(again->err, "busy"));
        }
        fixture_stop(&f);
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                void (*fn)(void);
        } cases[] = {
                { "cli-through-bridge", test_cli_through_bridge },
                { "cli-direct", test_cli_direct },
                { "bridge-restart-mid-request", test_bridge_restart },
                { "chardev-reconnect-mid-request", test_chardev_reconnect },
                { "power-resent", test_power_resent },
        };

        g_test_init(&argc, &argv, NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
                if (!g_getenv("GL_VM_CASE") || g_str_equal(g_getenv("GL_VM_CASE"), cases[i].name)) {
                        g_autofree char *path = g_strdup_printf("/vm-bridge/%s", cases[i].name);
                        g_test_add_func(path, cases[i].fn);
                }
        return g_test_run();
}
