/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The guestlink binary against a fake agent (--direct): for each case, the
 * exact stdout (golden files data/NAME.out), the exit code and a piece of
 * stderr.  Set GL_TEST_REGENERATE=1 to rewrite the golden files.
 *
 * Environment: GL_CLI_BINARY, GL_FAKE_AGENT, GL_TEST_DATA.
 */
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

enum {
        CHECK_HOSTILE = 1u << 0, /* no C0 but \n, no DEL, no C1, valid UTF-8 */
        NO_SOCKET = 1u << 1,     /* no fake agent; the socket does not exist */
};

typedef struct Case {
        const char *name;
        const char *agent_mode; /* fake agent mode; NULL: none */
        const char *args;       /* after "--direct SOCKET", split at spaces */
        int exit_code;
        const char *golden; /* expected stdout in data/, NULL: must be empty */
        const char *err;    /* expected in stderr, NULL: anything */
        unsigned flags;
} Case;

static const Case cases[] = {
        { "list", "normal", "list", 0, "list.out", NULL, 0 },
        { "list-json", "normal", "--json list", 0, "list-json.out", NULL, 0 },
        { "ping", "normal", "ping -", 0, "ping.out", NULL, 0 },
        { "ping-default-guest", "normal", "ping", 0, "ping.out", NULL, 0 },
        { "ping-json", "normal", "ping web1 --json", 0, "ping-json.out", NULL, 0 },
        { "info", "normal", "info", 0, "info.out", NULL, 0 },
        { "info-json", "normal", "--json info -", 0, "info-json.out", NULL, 0 },
        { "info-hostile", "hostile", "info", 0, "info-hostile.out", NULL, CHECK_HOSTILE },
        { "info-hostile-json", "hostile", "info --json", 0, "info-hostile-json.out", NULL, CHECK_HOSTILE },
        { "list-hostile", "hostile", "list", 0, "list-hostile.out", NULL, CHECK_HOSTILE },
        { "stats", "normal", "stats", 0, "stats.out", NULL, 0 },
        { "stats-json", "normal", "stats --json", 0, "stats-json.out", NULL, 0 },
        { "stats-watch-json", "normal", "stats --watch --count 2 --json", 0, "stats-watch-json.out", NULL, 0 },
        { "stats-since-direct", "normal", "stats --since 1h", 2, NULL, "--since needs the bridge", 0 },
        { "lock", "normal", "lock", 0, "lock.out", NULL, 0 },
        { "lock-json", "normal", "lock - --json", 0, "lock-json.out", NULL, 0 },
        { "power", "normal", "power reboot", 0, "power.out", NULL, 0 },
        { "power-json", "normal", "power - suspend --delay 5 --json", 0, "power-json.out", NULL, 0 },
        { "power-wait", "normal", "power poweroff --wait --timeout 5", 0, "power-wait.out", NULL, 0 },
        { "events-direct", "normal", "events", 0, NULL, "no event history", 0 },
        { "forbidden", "forbidden", "lock", 6, NULL, "SOCKET: refused by guest policy: denied by agent.conf [policy]",
          0 },
        { "forbidden-power", "forbidden", "power web1 poweroff", 6, NULL, "web1: refused by guest policy", 0 },
        { "unavailable", "unavailable", "power hibernate", 8, NULL,
          "not possible on the guest now: logind says CanHibernate=na", 0 },
        { "timeout", "silent", "--timeout 1 ping", 7, NULL, "no answer within 1 s", 0 },
        { "timeout-info", "silent", "info --timeout 1", 7, NULL, "timeout", 0 },
        { "no-agent", "no-hello", "--timeout 1 ping", 5, NULL, "no agent answered", 0 },
        { "no-socket", NULL, "ping", 3, NULL, "cannot connect to", NO_SOCKET },
        { "usage-no-verb", NULL, "", 2, NULL, "missing VERB", NO_SOCKET },
        { "usage-verb", NULL, "frobnicate", 2, NULL, "unknown verb 'frobnicate'", NO_SOCKET },
        { "usage-action", NULL, "power - explode", 2, NULL, "unknown ACTION 'explode'", NO_SOCKET },
        { "usage-option", NULL, "ping --bogus", 2, NULL, "invalid or incomplete option '--bogus'", NO_SOCKET },
        { "usage-timeout", NULL, "ping --timeout abc", 2, NULL, "invalid --timeout", NO_SOCKET },
        { "usage-extra", NULL, "lock a b", 2, NULL, "unexpected argument 'b'", NO_SOCKET },
        { "shutdown-all-direct", NULL, "shutdown-all", 2, NULL, "needs the bridge", NO_SOCKET },
};

static char *replace_all(const char *text, const char *pattern, const char *replacement) {
        g_autoptr(GRegex) re = g_regex_new(pattern, G_REGEX_RAW, 0, NULL);

        g_assert_nonnull(re);
        return g_regex_replace(re, text, -1, 0, replacement, 0, NULL);
}

/* Makes time-dependent and path-dependent output comparable. */
static char *mask(const char *text, const char *socket_path) {
        g_autofree char *escaped = g_regex_escape_string(socket_path, -1);
        g_autofree char *a = replace_all(text, escaped, "SOCKET");
        g_autofree char *b = replace_all(a, "time=[0-9.]+ ms", "time=X ms");
        g_autofree char *c = replace_all(b, "\"rtt_ms\":[ ]*[0-9.e+-]+", "\"rtt_ms\": X");

        return replace_all(c, "after [0-9.]+ s", "after X s");
}

static void assert_terminal_safe(const char *text) {
        const char *end = NULL;

        g_assert_true(g_utf8_validate(text, -1, &end));
        for (const char *p = text; *p; p = g_utf8_next_char(p)) {
                gunichar c = g_utf8_get_char(p);

                if (c == '\n')
                        continue;
                if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
                        g_error("control character U+%04X at offset %td", c, p - text);
        }
}

static void run_case(gconstpointer data) {
        const Case *tc = data;
        const char *binary = g_getenv("GL_CLI_BINARY");
        const char *fake = g_getenv("GL_FAKE_AGENT");
        const char *data_dir = g_getenv("GL_TEST_DATA");
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("guestlink-cli-XXXXXX", &error);
        g_autofree char *sock = g_build_filename(dir, "agent.sock", NULL);
        g_autoptr(GSubprocess) agent = NULL;
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_auto(GStrv) args = g_strsplit(tc->args, " ", 0);
        g_auto(GStrv) env = g_get_environ();
        g_autofree char *out = NULL, *err = NULL, *masked = NULL;
        int status = 0;

        g_assert_no_error(error);
        g_assert_nonnull(binary);
        g_assert_nonnull(fake);
        g_assert_nonnull(data_dir);
        if (tc->agent_mode) {
                g_autoptr(GDataInputStream) in = NULL;
                g_autofree char *line = NULL;

                agent = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, fake, sock, data_dir, tc->agent_mode,
                                         NULL);
                g_assert_no_error(error);
                in = g_data_input_stream_new(g_subprocess_get_stdout_pipe(agent));
                line = g_data_input_stream_read_line(in, NULL, NULL, &error);
                g_assert_no_error(error);
                g_assert_cmpstr(line, ==, "ready");
        }

        g_ptr_array_add(argv, (char *) binary);
        if (tc->flags & NO_SOCKET || tc->agent_mode) {
                g_ptr_array_add(argv, "--direct");
                g_ptr_array_add(argv, sock);
        }
        for (size_t i = 0; args[i]; i++) {
                if (*args[i])
                        g_ptr_array_add(argv, args[i]);
        }
        g_ptr_array_add(argv, NULL);
        env = g_environ_setenv(env, "TZ", "UTC", TRUE);
        env = g_environ_setenv(env, "LC_ALL", "C.UTF-8", TRUE);
        env = g_environ_setenv(env, "GUESTLINK_TEST_NOW", "1714564800000000", TRUE);
        env = g_environ_unsetenv(env, "GUESTLINK_SOCKET");
        g_spawn_sync(NULL, (char **) argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
        g_assert_no_error(error);
        if (agent) {
                g_subprocess_send_signal(agent, SIGTERM);
                g_subprocess_wait(agent, NULL, NULL);
        }
        (void) g_remove(sock);
        (void) g_rmdir(dir);

        masked = mask(out, sock);
        if (g_test_verbose())
                g_printerr("stdout:\n%s\nstderr:\n%s\n", out, err);
        if (tc->flags & CHECK_HOSTILE)
                assert_terminal_safe(out);
        if (tc->golden) {
                g_autofree char *path = g_build_filename(data_dir, tc->golden, NULL);
                g_autofree char *want = NULL;

                if (g_strcmp0(g_getenv("GL_TEST_REGENERATE"), "1") == 0) {
                        g_file_set_contents(path, masked, -1, &error);
                        g_assert_no_error(error);
                }
                g_file_get_contents(path, &want, NULL, &error);
                g_assert_no_error(error);
                g_assert_cmpstr(masked, ==, want);
        } else
                g_assert_cmpstr(masked, ==, "");
        if (tc->err) {
                g_autofree char *masked_err = mask(err, sock);
                if (!strstr(masked_err, tc->err))
                        g_error("stderr lacks \"%s\":\n%s", tc->err, masked_err);
        }
        g_assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != tc->exit_code)
                g_error("exit code %d, want %d; stderr:\n%s", WEXITSTATUS(status), tc->exit_code, err);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *path = g_strdup_printf("/cli/direct/%s", cases[i].name);
                g_test_add_data_func(path, &cases[i], run_case);
        }
        return g_test_run();
}
