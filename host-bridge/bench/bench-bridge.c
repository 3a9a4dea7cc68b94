/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guestlink-bench-bridge: how the real guestlink-bridge scales with guests.
 *
 *   guestlink-bench-bridge [--guests N] [--seconds S] [--pings P] [--history H]
 *                          [--bridge PATH] [--cli PATH]
 *
 * e.g. from the build directory:
 *   host-bridge/guestlink-bench-bridge --guests 1000 --seconds 60
 *
 * It starts one guestlink-bridge process with a temporary bridge.conf
 * (control socket in a temporary directory, [libvirt] enabled=false, an
 * empty hooks directory, [stats] interval_seconds=1, [heartbeat]
 * interval_seconds=5, N static guests "simK" in connect mode) and drives N
 * simulated agents (tests/sim-agent.c) from this process: each listens on
 * its own unix socket like a QEMU chardev, accepts the bridge's connection
 * and runs a GlSession with role "agent" (info, stats, heartbeat) that
 * answers info and ping and pushes a realistic stats object (~2.5 KB of
 * JSON, PROTOCOL.md 11.5) and heartbeats at the intervals the bridge
 * subscribed to.
 *
 * Once all N guests are connected (bridge.list) and the subscriptions run,
 * it measures over S seconds:
 *   - the bridge's CPU in percent of one core ((utime + stime) delta of
 *     /proc/PID/stat over the elapsed time);
 *   - its Rss and Anonymous memory (/proc/PID/smaps_rollup), and the Rss per
 *     guest: (Rss with N guests - Rss of a bridge with no guests, measured
 *     first with a second bridge process) / N;
 *   - the latency of the real CLI, `guestlink --socket SOCK --json ping
 *     simK`, spawned P times spread over the run: the round trip it reports
 *     (rtt_ms) and the wall time of the whole process, median and p99;
 *   - the load: stats samples the agents sent, frames the bridge counted
 *     (counters.frames_in) and how many guests have a fresh stats_unix_us.
 * It prints the figures beside the goals (CPU < 10 % of one core, < 64 KiB
 * per guest).  --history sets [stats] history (default: the bridge's
 * default), to separate the fixed per-guest cost from the stats history.
 *
 * Not a test: it asserts nothing, it reports.
 */
#include <errno.h>
#include <gio/gio.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer.h"
#include "sim-agent.h"

#define GOAL_CPU_PERCENT 10.0
#define GOAL_KIB_PER_GUEST 64.0

typedef struct Options {
        int guests, seconds, pings, history;
        const char *bridge, *cli;
} Options;

typedef struct Bench {
        Options opt;
        char *dir, *socket, *conf;
        GSubprocess *bridge;
        GlPeer *client;
        GPtrArray *answers; /* GlMessage* */
        GPtrArray *sims;    /* SimAgent* */
} Bench;

/* ---- the bridge process ---- */

static int64_t smaps_kib(pid_t pid, const char *field) {
        g_autofree char *path = g_strdup_printf("/proc/%d/smaps_rollup", (int) pid);
        g_autofree char *text = NULL, *key = g_strdup_printf("\n%s:", field);
        const char *p;

        if (!g_file_get_contents(path, &text, NULL, NULL) || !(p = strstr(text, key)))
                return -1;
        return g_ascii_strtoll(p + strlen(key), NULL, 10);
}

/* utime + stime in clock ticks */
static int64_t cpu_ticks(pid_t pid) {
        g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int) pid);
        g_autofree char *text = NULL;
        g_auto(GStrv) f = NULL;
        const char *p;

        if (!g_file_get_contents(path, &text, NULL, NULL) || !(p = strrchr(text, ')')))
                return -1;
        f = g_strsplit(p + 2, " ", -1); /* f[0] is field 3 (state) */
        if (g_strv_length(f) < 13)
                return -1;
        return g_ascii_strtoll(f[11], NULL, 10) + g_ascii_strtoll(f[12], NULL, 10);
}

static pid_t bridge_pid(Bench *b) {
        return (pid_t) g_ascii_strtoll(g_subprocess_get_identifier(b->bridge), NULL, 10);
}

static void run_for(int ms) {
        gint64 end = g_get_monotonic_time() + (gint64) ms * 1000;

        while (g_get_monotonic_time() < end)
                if (!g_main_context_iteration(NULL, FALSE))
                        g_usleep(1000);
}

static void bridge_start(Bench *b, int guests) {
        g_autoptr(GString) conf = g_string_new(NULL);
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
        g_autofree char *hooks = g_build_filename(b->dir, "hooks.d", NULL);
        g_autofree char *log = g_build_filename(b->dir, guests ? "bridge.log" : "bridge-empty.log", NULL);
        g_autoptr(GError) error = NULL;

        g_mkdir_with_parents(hooks, 0700);
        g_string_append_printf(conf,
                               "[bridge]\ncontrol_socket=%s\ncontrol_group=\n[libvirt]\nenabled=false\n"
                               "[hooks]\ndirectory=%s\n[stats]\ninterval_seconds=1\n",
                               b->socket, hooks);
        if (b->opt.history >= 0)
                g_string_append_printf(conf, "history=%d\n", b->opt.history);
        g_string_append(conf, "[heartbeat]\ninterval_seconds=5\n");
        for (int i = 0; i < guests; i++)
                g_string_append_printf(conf, "[guest sim%d]\nsocket=%s/sim%d.sock\nmode=connect\n", i, b->dir, i);
        if (!g_file_set_contents(b->conf, conf->str, -1, &error))
                g_error("%s", error->message);
        g_subprocess_launcher_set_stderr_file_path(l, log);
        g_subprocess_launcher_unsetenv(l, "JOURNAL_STREAM");
        b->bridge = g_subprocess_launcher_spawn(l, &error, b->opt.bridge, "--config", b->conf, NULL);
        if (!b->bridge)
                g_error("%s: %s", b->opt.bridge, error->message);
        for (int i = 0; i < 1000 && !g_file_test(b->socket, G_FILE_TEST_EXISTS); i++)
                run_for(10);
        if (!g_file_test(b->socket, G_FILE_TEST_EXISTS))
                g_error("the bridge did not create %s; see %s", b->socket, log);
}

static void bridge_stop(Bench *b) {
        b->client = gl_peer_free(b->client);
        g_subprocess_send_signal(b->bridge, SIGTERM);
        (void) g_subprocess_wait(b->bridge, NULL, NULL);
        g_clear_object(&b->bridge);
}

/* ---- the control client ---- */

static void client_event(GlPeer *peer, GlSessionEvent *ev, void *userdata) {
        Bench *b = userdata;

        (void) peer;
        if (ev->type == GL_SESSION_EVENT_MESSAGE)
                g_ptr_array_add(b->answers, ev->message);
}

static void client_connect(Bench *b) {
        static const char *const caps[] = { NULL };
        g_autofree char *instance = gl_peer_new_instance();
        GlSessionConfig c = {
                .role = "client", .software = "bench-bridge", .instance = instance, .capabilities = caps
        };
        GlPeerCallbacks cb = { .event = client_event };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_strlcpy(sa.sun_path, b->socket, sizeof(sa.sun_path));
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                g_error("%s: %s", b->socket, g_strerror(errno));
        b->client = gl_peer_new(&c, &cb, b);
        gl_peer_attach(b->client, gl_link_new_fd(fd));
        for (int i = 0; i < 1000 && gl_session_state(gl_peer_session(b->client)) != GL_SESSION_ESTABLISHED; i++)
                run_for(10);
        if (gl_session_state(gl_peer_session(b->client)) != GL_SESSION_ESTABLISHED)
                g_error("no session with the bridge");
}

static GlMessage *take_answer(Bench *b, uint64_t id) {
        for (guint i = 0; i < b->answers->len; i++) {
                GlMessage *m = b->answers->pdata[i];
                if (m->id == id && (m->type == GL_MSG_RESPONSE || m->type == GL_MSG_ERROR))
                        return g_ptr_array_steal_index(b->answers, i);
        }
        return NULL;
}

/* A request to the bridge; the answer's body (new reference), or NULL. */
static json_object *bridge_request(Bench *b, const char *method, json_object *params) {
        gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
        GlMessage *m;
        json_object *r;
        uint64_t id;

        if (gl_peer_request(b->client, method, params, 60000, &id) < 0)
                return NULL;
        while (!(m = take_answer(b, id))) {
                if (g_get_monotonic_time() > deadline)
                        return NULL;
                g_main_context_iteration(NULL, TRUE);
        }
        r = m->type == GL_MSG_RESPONSE && m->body ? json_object_get(m->body) : NULL;
        gl_message_free(m);
        return r;
}

typedef struct ListSummary {
        int connected;
        int fresh_stats; /* stats_unix_us within the last 2.5 s */
        int64_t frames_in, bytes_in, protocol_errors, throttled, disconnects;
} ListSummary;

static void summary_add(ListSummary *ret, json_object *g, int64_t now) {
        json_object *v, *c;

        if (json_object_object_get_ex(g, "state", &v) && strcmp(json_object_get_string(v), "connected") == 0)
                ret->connected++;
        if (json_object_object_get_ex(g, "stats_unix_us", &v) && now - json_object_get_int64(v) < 2500000)
                ret->fresh_stats++;
        if (!json_object_object_get_ex(g, "counters", &c))
                return;
#define COUNT(name)                                  \
        if (json_object_object_get_ex(c, #name, &v)) \
                ret->name += json_object_get_int64(v);
        COUNT(frames_in)
        COUNT(bytes_in)
        COUNT(protocol_errors)
        COUNT(throttled)
        COUNT(disconnects)
#undef COUNT
}

/* Sums the guest objects of every guest.  bridge.list cannot serve this:
 * with a thousand guests its answer is larger than the default
 * max_json_bytes (192 KiB), so it asks bridge.guest for each guest, 32
 * requests in flight. */
#define SUMMARY_IN_FLIGHT 32
static bool list_summary(Bench *b, ListSummary *ret) {
        uint64_t ids[SUMMARY_IN_FLIGHT] = { 0 };
        int next = 0, done = 0, n = b->opt.guests;
        gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
        int64_t now = g_get_real_time();

        *ret = (ListSummary){ 0 };
        while (done < n) {
                for (int i = 0; i < SUMMARY_IN_FLIGHT; i++) {
                        GlMessage *m;
                        json_object *g;
                        if (!ids[i] && next < n) {
                                g_autofree char *p = g_strdup_printf("{\"guest\":\"sim%d\"}", next++);
                                if (gl_peer_request(b->client, "bridge.guest", json_tokener_parse(p), 60000, &ids[i]) <
                                    0)
                                        return false;
                        }
                        if (!ids[i] || !(m = take_answer(b, ids[i])))
                                continue;
                        ids[i] = 0;
                        done++;
                        if (m->type == GL_MSG_RESPONSE && m->body && json_object_object_get_ex(m->body, "guest", &g))
                                summary_add(ret, g, now);
                        gl_message_free(m);
                }
                if (g_get_monotonic_time() > deadline)
                        return false;
                g_main_context_iteration(NULL, TRUE);
        }
        return true;
}

/* ---- CLI pings ---- */

typedef struct CliRun {
        GBytes *out;
        bool done;
} CliRun;

static void cli_done(GObject *source, GAsyncResult *res, gpointer userdata) {
        CliRun *r = userdata;

        (void) g_subprocess_communicate_finish(G_SUBPROCESS(source), res, &r->out, NULL, NULL);
        r->done = true;
}

/* One `guestlink --json ping GUEST`; false if it failed. */
static bool cli_ping(Bench *b, const char *guest, double *ret_rtt_ms, double *ret_wall_ms) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(json_object) o = NULL;
        CliRun r = { 0 };
        json_object *v;
        gint64 t0 = g_get_monotonic_time();
        const void *data;
        gsize len;
        g_autofree char *text = NULL;

        p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, b->opt.cli, "--socket", b->socket, "--json",
                             "ping", guest, NULL);
        if (!p)
                g_error("%s: %s", b->opt.cli, error->message);
        g_subprocess_communicate_async(p, NULL, NULL, cli_done, &r);
        while (!r.done) /* the simulated agents live in this main loop */
                g_main_context_iteration(NULL, TRUE);
        (void) g_subprocess_wait(p, NULL, NULL);
        *ret_wall_ms = (double) (g_get_monotonic_time() - t0) / 1000.0;
        if (!r.out)
                return false;
        data = g_bytes_get_data(r.out, &len);
        text = g_strndup(data, len);
        g_bytes_unref(r.out);
        o = json_tokener_parse(text);
        if (!g_subprocess_get_if_exited(p) || g_subprocess_get_exit_status(p) != 0 || !o ||
            !json_object_object_get_ex(o, "rtt_ms", &v))
                return false;
        *ret_rtt_ms = json_object_get_double(v);
        return true;
}

static int cmp_double(gconstpointer a, gconstpointer b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

static double percentile(GArray *a, double q) {
        size_t i;

        if (a->len == 0)
                return NAN;
        g_array_sort(a, cmp_double);
        i = (size_t) ceil(q * (double) a->len) - 1;
        return g_array_index(a, double, i < a->len ? i : a->len - 1);
}

/* ---- main ---- */

static void message_free(gpointer m) {
        gl_message_free(m);
}

static void sim_free(gpointer a) {
        sim_agent_free(a);
}

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        fprintf(stderr, "setrlimit(RLIMIT_NOFILE): %s, ignoring\n", g_strerror(errno));
        }
}

static int run(int argc, char **argv) {
        Bench b = { .opt = { .guests = 1000, .seconds = 60, .pings = 100, .history = -1 } };
        GOptionEntry entries[] = {
                { "guests", 0, 0, G_OPTION_ARG_INT, &b.opt.guests, "simulated guests (1000)", "N" },
                { "seconds", 0, 0, G_OPTION_ARG_INT, &b.opt.seconds, "measuring time (60)", "S" },
                { "pings", 0, 0, G_OPTION_ARG_INT, &b.opt.pings, "CLI pings over the run (100)", "P" },
                { "history", 0, 0, G_OPTION_ARG_INT, &b.opt.history, "[stats] history (bridge default)", "H" },
                { "bridge", 0, 0, G_OPTION_ARG_FILENAME, &b.opt.bridge, "guestlink-bridge binary", "PATH" },
                { "cli", 0, 0, G_OPTION_ARG_FILENAME, &b.opt.cli, "guestlink binary", "PATH" },
                { NULL },
        };
        g_autoptr(GOptionContext) ctx = g_option_context_new("- scale benchmark of guestlink-bridge");
        g_autoptr(GError) error = NULL;
        g_autoptr(GArray) rtt = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) wall = g_array_new(FALSE, FALSE, sizeof(double));
        int64_t rss0, anon0, rss, anon, ticks0, ticks1, bench_ticks0, bench_ticks1;
        uint64_t sent0 = 0, sent1 = 0;
        ListSummary l0, l1;
        gint64 t0, t1, t_connect;
        double secs, cpu, bench_cpu, kib_per_guest;
        char history[32];
        int failed = 0;
        pid_t pid;

        g_option_context_add_main_entries(ctx, entries, NULL);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                fprintf(stderr, "%s\n", error->message);
                return 2;
        }
        if (!b.opt.bridge)
                b.opt.bridge = GL_BENCH_BRIDGE_BINARY;
        if (!b.opt.cli)
                b.opt.cli = GL_BENCH_CLI_BINARY;
        if (b.opt.guests < 1 || b.opt.seconds < 1 || b.opt.pings < 1) {
                fprintf(stderr, "--guests, --seconds and --pings must be positive\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        raise_nofile();
        b.dir = g_dir_make_tmp("gl-bench-bridge-XXXXXX", &error);
        if (!b.dir)
                g_error("%s", error->message);
        b.socket = g_build_filename(b.dir, "bridge.sock", NULL);
        b.conf = g_build_filename(b.dir, "bridge.conf", NULL);
        b.answers = g_ptr_array_new_with_free_func(message_free);
        b.sims = g_ptr_array_new_with_free_func(sim_free);

        /* 1. the same bridge with no guests: the baseline */
        bridge_start(&b, 0);
        client_connect(&b);
        run_for(2000);
        json_object_put(bridge_request(&b, "bridge.list", NULL)); /* what an idle bridge allocates on a request */
        rss0 = smaps_kib(bridge_pid(&b), "Rss");
        anon0 = smaps_kib(bridge_pid(&b), "Anonymous");
        bridge_stop(&b);
        (void) unlink(b.socket);

        /* 2. N simulated agents and a bridge holding them */
        for (int i = 0; i < b.opt.guests; i++) {
                g_autofree char *path = g_strdup_printf("%s/sim%d.sock", b.dir, i);
                g_autofree char *host = g_strdup_printf("sim%d", i);
                SimAgentSetup s = { .socket_path = path, .hostname = host };
                SimAgent *a = sim_agent_new(&s, &error);
                if (!a)
                        g_error("%s", error->message);
                g_ptr_array_add(b.sims, a);
        }
        t_connect = g_get_monotonic_time();
        bridge_start(&b, b.opt.guests);
        pid = bridge_pid(&b);
        client_connect(&b);
        for (;;) {
                int up = 0;
                for (guint i = 0; i < b.sims->len; i++)
                        up += sim_agent_established(b.sims->pdata[i]);
                if (up == b.opt.guests && list_summary(&b, &l0) && l0.connected == b.opt.guests)
                        break;
                if (g_get_monotonic_time() - t_connect > 300 * G_USEC_PER_SEC)
                        g_error("only %d of %d guests connected after 300 s", l0.connected, b.opt.guests);
                if (g_get_monotonic_time() - t_connect > 300 * G_USEC_PER_SEC)
                        g_error("only %d of %d guests connected after 300 s", l0.connected, b.opt.guests);
                run_for(500);
        }
        printf("guestlink-bench-bridge: %d guests connected in %.1f s; warming up for 3 s\n", b.opt.guests,
               (double) (g_get_monotonic_time() - t_connect) / 1e6);
        fflush(stdout);
        run_for(3000);

        /* 3. the measurement */
        if (!list_summary(&b, &l0))
                g_error("bridge.guest failed");
        for (guint i = 0; i < b.sims->len; i++)
                sent0 += sim_agent_stats_sent(b.sims->pdata[i]);
        t0 = g_get_monotonic_time();
        ticks0 = cpu_ticks(pid);
        bench_ticks0 = cpu_ticks(getpid());
        for (int k = 0; k < b.opt.pings; k++) {
                gint64 at = t0 + (gint64) b.opt.seconds * G_USEC_PER_SEC * k / b.opt.pings;
                g_autofree char *guest = g_strdup_printf("sim%d", (k * 7919) % b.opt.guests);
                double r, w;

                while (g_get_monotonic_time() < at)
                        if (!g_main_context_iteration(NULL, FALSE))
                                g_usleep(500);
                if (cli_ping(&b, guest, &r, &w)) {
                        g_array_append_val(rtt, r);
                        g_array_append_val(wall, w);
                } else
                        failed++;
        }
        run_for((int) ((t0 + (gint64) b.opt.seconds * G_USEC_PER_SEC - g_get_monotonic_time()) / 1000));
        ticks1 = cpu_ticks(pid);
        bench_ticks1 = cpu_ticks(getpid());
        t1 = g_get_monotonic_time();
        rss = smaps_kib(pid, "Rss");
        anon = smaps_kib(pid, "Anonymous");
        for (guint i = 0; i < b.sims->len; i++)
                sent1 += sim_agent_stats_sent(b.sims->pdata[i]);
        if (!list_summary(&b, &l1))
                g_error("bridge.guest failed");

        secs = (double) (t1 - t0) / 1e6;
        cpu = 100.0 * (double) (ticks1 - ticks0) / (double) sysconf(_SC_CLK_TCK) / secs;
        bench_cpu = 100.0 * (double) (bench_ticks1 - bench_ticks0) / (double) sysconf(_SC_CLK_TCK) / secs;
        kib_per_guest = (double) (rss - rss0) / b.opt.guests;

        g_snprintf(history, sizeof(history), "%d", b.opt.history);
        printf("\nguestlink-bench-bridge: %d guests, %.1f s measured, [stats] interval_seconds=1, history=%s, "
               "[heartbeat] interval_seconds=5\n",
               b.opt.guests, secs, b.opt.history >= 0 ? history : "default (360)");
        printf("  %-44s %14s   %s\n", "figure", "measured", "goal");
        printf("  %-44s %13.2f%%   < %.0f%%\n", "bridge CPU (one core)", cpu, GOAL_CPU_PERCENT);
        printf("  %-44s %11.1f KiB   < %.0f KiB\n", "Rss per guest ((Rss - Rss with 0 guests) / N)", kib_per_guest,
               GOAL_KIB_PER_GUEST);
        printf("  %-44s %10" PRId64 " KiB\n", "bridge Rss with N guests", rss);
        printf("  %-44s %10" PRId64 " KiB\n", "bridge Anonymous with N guests", anon);
        printf("  %-44s %10" PRId64 " KiB\n", "bridge Rss with 0 guests", rss0);
        printf("  %-44s %10" PRId64 " KiB\n", "bridge Anonymous with 0 guests", anon0);
        printf("  %-44s %11.1f KiB\n", "Anonymous per guest", (double) (anon - anon0) / b.opt.guests);
        printf("  %-44s %11.3f ms  (p99 %.3f ms)\n", "guestlink ping: rtt_ms median", percentile(rtt, 0.5),
               percentile(rtt, 0.99));
        printf("  %-44s %11.3f ms  (p99 %.3f ms)\n", "guestlink ping: process wall time median", percentile(wall, 0.5),
               percentile(wall, 0.99));
        printf("  %-44s %7u ok, %d failed\n", "guestlink ping runs", rtt->len, failed);
        printf("  load: %" PRIu64 " stats samples sent by the agents (%.0f/s); bridge frames_in +%" PRId64
               " (%.0f/s), bytes_in +%.1f MiB (%.2f MiB/s)\n",
               sent1 - sent0, (double) (sent1 - sent0) / secs, l1.frames_in - l0.frames_in,
               (double) (l1.frames_in - l0.frames_in) / secs, (double) (l1.bytes_in - l0.bytes_in) / 1048576.0,
               (double) (l1.bytes_in - l0.bytes_in) / 1048576.0 / secs);
        printf("  guests connected at the end: %d, with a stats sample under 2.5 s old: %d; protocol_errors %" PRId64
               ", throttled %" PRId64 ", disconnects %" PRId64 " (all guests, during the run: +%" PRId64 ")\n",
               l1.connected, l1.fresh_stats, l1.protocol_errors, l1.throttled, l1.disconnects,
               l1.disconnects - l0.disconnects);
        printf("  this process (%d simulated agents + CLI driver): %.1f%% of one core\n", b.opt.guests, bench_cpu);
        printf("  goals: CPU %s, memory per guest %s\n", cpu < GOAL_CPU_PERCENT ? "met" : "NOT met",
               kib_per_guest < GOAL_KIB_PER_GUEST ? "met" : "NOT met");

        bridge_stop(&b);
        g_ptr_array_unref(b.sims);
        g_ptr_array_unref(b.answers);
        {
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", b.dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "could not remove %s, ignoring\n", b.dir);
        }
        g_free(b.dir);
        g_free(b.socket);
        g_free(b.conf);
        return 0;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
