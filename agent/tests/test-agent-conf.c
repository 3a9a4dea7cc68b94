/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent.conf parsing: one table of files, one loop. */
#include <string.h>
#include <unistd.h>

#include "agent-conf.h"

static const struct {
        const char *text;
        gboolean ok;
        const char *error_part; /* in the error message when !ok */
        unsigned warnings;
} cases[] = {
        { "", TRUE, NULL, 0 },
        { "[channel]\ntransport=vsock\nvsock-port=1234\n", TRUE, NULL, 0 },
        { "[channel]\ntransport=carrier-pigeon\n", FALSE, "transport=carrier-pigeon", 0 },
        { "[channel]\ntransport=tty\ndevice=ttyS1\n", FALSE, "absolute path", 0 },
        { "[channel]\nport=\n", FALSE, "port must not be empty", 0 },
        { "[channel]\nvsock-port=-1\n", FALSE, "vsock-port=-1", 0 },
        { "[limits]\nrequests-per-second=0\n", FALSE, "requests-per-second=0", 0 },
        { "[limits]\nmin-interval-seconds=10\nmax-interval-seconds=5\n", FALSE, "max-interval-seconds=5", 0 },
        { "[policy]\ndefault=deny\npower=allow\n", TRUE, NULL, 0 },
        { "[policy]\npower=maybe\n", FALSE, "expected allow or deny", 0 },
        { "[policy]\nexec=allow\n", TRUE, NULL, 1 },
        { "[wishes]\npony=yes\n", TRUE, NULL, 1 },
        { "not a key file", FALSE, "", 0 },
};

static void test_table(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GlAgentConfig) c = gl_agent_config_new();
                g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
                g_autoptr(GError) error = NULL;
                g_autofree char *path = NULL;
                int fd = g_file_open_tmp("agent-conf-XXXXXX", &path, NULL);
                gboolean ok;

                g_assert_cmpint(fd, >=, 0);
                close(fd);
                g_assert_true(g_file_set_contents(path, cases[i].text, -1, NULL));
                ok = gl_agent_config_load(c, path, TRUE, warnings, &error);
                unlink(path);
                if (ok != cases[i].ok)
                        g_error("case %zu: got %d (%s), want %d", i, ok, error ? error->message : "", cases[i].ok);
                if (!ok) {
                        g_assert_nonnull(strstr(error->message, cases[i].error_part));
                        /* a failed load changes nothing */
                        g_assert_cmpint(c->transport, ==, GL_TRANSPORT_VIRTIO_SERIAL);
                        g_assert_cmpstr(c->port, ==, "org.guestlink.agent.0");
                }
                g_assert_cmpuint(warnings->len, ==, cases[i].warnings);
        }
}

static void test_values(void) {
        g_autoptr(GlAgentConfig) c = gl_agent_config_new();
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *path = NULL;
        int fd = g_file_open_tmp("agent-conf-XXXXXX", &path, NULL);

        close(fd);
        g_assert_true(g_file_set_contents(path,
                                          "[channel]\ntransport=tty\ndevice=/dev/hvc1\n"
                                          "[limits]\nrequests-per-second=5\nmax-interval-seconds=60\n"
                                          "[policy]\ndefault=deny\nstats=allow\n",
                                          -1, NULL));
        g_assert_true(gl_agent_config_load(c, path, TRUE, warnings, NULL));
        unlink(path);
        g_assert_cmpint(c->transport, ==, GL_TRANSPORT_TTY);
        g_assert_cmpstr(c->device, ==, "/dev/hvc1");
        g_assert_cmpfloat(c->limits.requests_per_second, ==, 5);
        g_assert_cmpuint(c->limits.max_interval_seconds, ==, 60);
        g_assert_true(gl_policy_allows(&c->policy, GL_FAMILY_STATS));
        g_assert_false(gl_policy_allows(&c->policy, GL_FAMILY_POWER));
        g_assert_false(gl_policy_allows(&c->policy, GL_FAMILY_INFO));
        g_assert_true(gl_policy_allows(&c->policy, GL_FAMILY_PING)); /* always */

        /* a missing optional file keeps the defaults */
        g_assert_true(gl_agent_config_load(c, "/nonexistent/agent.conf", FALSE, warnings, NULL));
        g_assert_false(gl_agent_config_load(c, "/nonexistent/agent.conf", TRUE, warnings, NULL));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/agent-conf/table", test_table);
        g_test_add_func("/agent-conf/values", test_values);
        return g_test_run();
}
