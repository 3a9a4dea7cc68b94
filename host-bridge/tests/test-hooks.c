/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Event hooks with real shell-script hooks in a temporary directory. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hooks.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

typedef struct Fixture {
        char *dir;   /* the hook directory */
        char *out;   /* where hooks write what they saw */
        char *order; /* out/order */
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        (void) data;
        f->dir = g_dir_make_tmp("guestlink-hooks-XXXXXX", &error);
        g_assert_no_error(error);
        f->out = g_dir_make_tmp("guestlink-hooks-out-XXXXXX", &error);
        g_assert_no_error(error);
        f->order = g_build_filename(f->out, "order", NULL);
}

static void remove_tree(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(dir, name, NULL);

                if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
                        remove_tree(p);
                else
                        g_assert_cmpint(g_unlink(p), ==, 0);
        }
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        (void) data;
        remove_tree(f->dir);
        remove_tree(f->out);
        g_free(f->dir);
        g_free(f->out);
        g_free(f->order);
}

/* Writes a hook: "#!/bin/sh\n" + body with @OUT@ replaced by f->out. */
static void hook_write(Fixture *f, const char *name, const char *body, mode_t mode) {
        g_autofree char *path = g_build_filename(f->dir, name, NULL);
        g_autoptr(GString) text = g_string_new("#!/bin/sh\n");

        g_string_append(text, body);
        g_string_replace(text, "@OUT@", f->out, 0);
        g_assert_true(g_file_set_contents(path, text->str, -1, NULL));
        g_assert_cmpint(chmod(path, mode), ==, 0);
}

static char *read_out(Fixture *f, const char *name) {
        g_autofree char *path = g_build_filename(f->out, name, NULL);
        char *text = NULL;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return g_strdup("(missing)");
        return text;
}

static gboolean on_deadline(void *userdata) {
        *(bool *) userdata = true;
        return G_SOURCE_REMOVE;
}

/* Iterates the main context until no hook runs or waits; returns the
 * seconds it took. */
static double wait_idle(GlHooks *h, guint max_ms) {
        bool expired = false;
        guint id = g_timeout_add(max_ms, on_deadline, &expired);
        gint64 start = g_get_monotonic_time();

        while ((gl_hooks_running(h) > 0 || gl_hooks_queued(h) > 0) && !expired)
                g_main_context_iteration(NULL, TRUE);
        g_assert_false(expired);
        g_source_remove(id);
        return (double) (g_get_monotonic_time() - start) / G_USEC_PER_SEC;
}

static json_object *sample_event(const char *kind) {
        json_object *ev = json_object_new_object(), *guest = json_object_new_object();

        json_object_object_add(guest, "name", json_object_new_string("web1"));
        json_object_object_add(guest, "uuid", json_object_new_string("1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
        json_object_object_add(ev, "guest", guest);
        json_object_object_add(ev, "kind", json_object_new_string(kind));
        json_object_object_add(ev, "time_unix_us", json_object_new_int64(1700000000123456));
        return ev;
}

static void test_input(Fixture *f, gconstpointer data) {
        g_autoptr(GlHooks) h = gl_hooks_new(f->dir, 10000, 4, 16);
        g_autoptr(json_object) ev = sample_event("connected");
        g_autofree char *stdin_text = NULL, *argv_text = NULL, *env_text = NULL, *cwd = NULL;

        (void) data;
        hook_write(f, "10-record",
                   "cat > @OUT@/stdin\n"
                   "printf '%s|%s|%s\\n' \"$#\" \"$0\" \"$1\" > @OUT@/argv\n"
                   "tr '\\0' '\\n' < /proc/$$/environ | sort > @OUT@/env\n"
                   "pwd > @OUT@/cwd\n",
                   0755);
        gl_hooks_fire(h, "connected", "web1", ev);
        wait_idle(h, 10000);

        stdin_text = read_out(f, "stdin");
        g_assert_cmpstr(stdin_text, ==,
                        "{\"guest\":{\"name\":\"web1\",\"uuid\":\"1b4e28ba-2fa1-11d2-883f-0016d3cca427\"},"
                        "\"kind\":\"connected\",\"time_unix_us\":1700000000123456}\n");
        argv_text = read_out(f, "argv");
        {
                g_autofree char *want = g_strdup_printf("1|%s/10-record|connected\n", f->dir);

                g_assert_cmpstr(argv_text, ==, want);
        }
        env_text = read_out(f, "env");
        g_assert_cmpstr(env_text, ==,
                        "GUESTLINK_EVENT=connected\n"
                        "GUESTLINK_GUEST=web1\n"
                        "GUESTLINK_GUEST_UUID=1b4e28ba-2fa1-11d2-883f-0016d3cca427\n"
                        "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n");
        cwd = read_out(f, "cwd");
        g_assert_cmpstr(cwd, ==, "/\n");
        g_assert_cmpuint(gl_hooks_run(h), ==, 1);
        g_assert_cmpuint(gl_hooks_failed(h), ==, 0);
        g_assert_cmpuint(gl_hooks_timed_out(h), ==, 0);
        g_assert_cmpuint(gl_hooks_dropped(h), ==, 0);
}

/* Skipped entries; name order; a symlink to an executable runs. */
static void test_selection(Fixture *f, gconstpointer data) {
        g_autoptr(GlHooks) h = gl_hooks_new(f->dir, 10000, 1, 64);
        g_autoptr(json_object) ev = sample_event("attached");
        static const char *const skipped[] = {
                ".hidden", "20-edit~", "20-x.dpkg-old", "20-x.dpkg-new", "20-x.rpmnew", "20-x.rpmsave", "20-x.bak",
        };
        g_autofree char *subdir = g_build_filename(f->dir, "15-directory", NULL);
        g_autofree char *target = g_build_filename(f->out, "linked", NULL);
        g_autofree char *link = g_build_filename(f->dir, "40-link", NULL);
        g_autofree char *order = NULL;

        (void) data;
        hook_write(f, "30-b", "echo \"30-b $1\" >> @OUT@/order\n", 0755);
        hook_write(f, "10-a", "echo \"10-a $1\" >> @OUT@/order\n", 0700);
        hook_write(f, "20-not-executable", "echo \"20-not-executable $1\" >> @OUT@/order\n", 0644);
        for (size_t i = 0; i < G_N_ELEMENTS(skipped); i++)
                hook_write(f, skipped[i], "echo \"skipped $0\" >> @OUT@/order\n", 0755);
        g_assert_cmpint(g_mkdir(subdir, 0755), ==, 0);
        {
                g_autofree char *body = g_strdup_printf("#!/bin/sh\necho \"40-link $1\" >> %s/order\n", f->out);

                g_assert_true(g_file_set_contents(target, body, -1, NULL));
                g_assert_cmpint(chmod(target, 0755), ==, 0);
                g_assert_cmpint(symlink(target, link), ==, 0);
        }

        gl_hooks_fire(h, "attached", "web1", ev);
        gl_hooks_fire(h, "connected", "web1", ev);
        wait_idle(h, 10000);
        order = read_out(f, "order");
        g_assert_cmpstr(order, ==,
                        "10-a attached\n30-b attached\n40-link attached\n"
                        "10-a connected\n30-b connected\n40-link connected\n");
        g_assert_cmpuint(gl_hooks_run(h), ==, 6);

        /* Read at each fire: a new hook runs without a restart. */
        hook_write(f, "35-new", "echo \"35-new $1\" >> @OUT@/order\n", 0755);
        g_assert_cmpint(g_unlink(f->order), ==, 0);
        gl_hooks_fire(h, "detached", NULL, ev);
        wait_idle(h, 10000);
        g_free(order);
        order = read_out(f, "order");
        g_assert_cmpstr(order, ==, "10-a detached\n30-b detached\n35-new detached\n40-link detached\n");
}

static void test_timeout(Fixture *f, gconstpointer data) {
        g_autoptr(GlHooks) h = gl_hooks_new(f->dir, 300, 4, 16);
        g_autoptr(json_object) ev = sample_event("connected");
        double took;

        (void) data;
        /* sh waits for sleep: SIGTERM must reach the whole process group,
         * or the pipes stay open for 30 s. */
        hook_write(f, "10-sleep", "sleep 30\necho finished >> @OUT@/order\n", 0755);
        gl_hooks_fire(h, "connected", "web1", ev);
        took = wait_idle(h, 20000);
        g_assert_cmpfloat(took, <, 1.9); /* before SIGKILL would have come */
        g_assert_cmpuint(gl_hooks_run(h), ==, 1);
        g_assert_cmpuint(gl_hooks_timed_out(h), ==, 1);
        g_assert_cmpuint(gl_hooks_failed(h), ==, 1);
        g_assert_false(g_file_test(f->order, G_FILE_TEST_EXISTS));
}

static void test_timeout_kill(Fixture *f, gconstpointer data) {
        g_autoptr(GlHooks) h = gl_hooks_new(f->dir, 200, 4, 16);
        g_autoptr(json_object) ev = sample_event("connected");
        double took;

        (void) data;
        hook_write(f, "10-stubborn", "trap '' TERM\nsleep 30\necho finished >> @OUT@/order\n", 0755);
        gl_hooks_fire(h, "connected", "web1", ev);
        took = wait_idle(h, 20000);
        g_assert_cmpfloat(took, >=, 2.1); /* 0.2 s timeout + 2 s to SIGKILL */
        g_assert_cmpuint(gl_hooks_timed_out(h), ==, 1);
        g_assert_cmpuint(gl_hooks_failed(h), ==, 1);
        g_assert_false(g_file_test(f->order, G_FILE_TEST_EXISTS));
}

static void test_queue(Fixture *f, gconstpointer data) {
        g_autoptr(GlHooks) h = gl_hooks_new(f->dir, 10000, 1, 2);
        g_autoptr(json_object) ev = sample_event("connected");
        g_autofree char *order = NULL;

        (void) data;
        hook_write(f, "10-slow", "sleep 0.2\necho \"$1\" >> @OUT@/order\n", 0755);
        gl_hooks_fire(h, "e1", "web1", ev);
        g_assert_cmpuint(gl_hooks_running(h), ==, 1);
        gl_hooks_fire(h, "e2", "web1", ev);
        gl_hooks_fire(h, "e3", "web1", ev);
        g_assert_cmpuint(gl_hooks_queued(h), ==, 2);
        gl_hooks_fire(h, "e4", "web1", ev);
        gl_hooks_fire(h, "e5", "web1", ev);
        g_assert_cmpuint(gl_hooks_queued(h), ==, 2);
        g_assert_cmpuint(gl_hooks_dropped(h), ==, 2);
        wait_idle(h, 10000);
        order = read_out(f, "order");
        g_assert_cmpstr(order, ==, "e1\ne2\ne3\n");
        g_assert_cmpuint(gl_hooks_run(h), ==, 3);
        g_assert_cmpuint(gl_hooks_dropped(h), ==, 2);
        g_assert_cmpuint(gl_hooks_failed(h), ==, 0);
}

/* In a subprocess, whose stderr (the log) the parent checks. */
static void test_output(Fixture *f, gconstpointer data) {
        (void) data;
        if (g_test_subprocess()) {
                g_autoptr(GlHooks) h = gl_hooks_new(f->dir, 10000, 4, 16);
                g_autoptr(json_object) ev = sample_event("connected");

                g_unsetenv("JOURNAL_STREAM");
                hook_write(f, "10-talk",
                           "echo 'hello stdout'\n"
                           "echo 'hello stderr' >&2\n"
                           "printf 'esc \\033[31m red\\n'\n"
                           "head -c 5000 /dev/zero | tr '\\0' x; echo\n"
                           "printf 'no newline at the end'\n"
                           "exit 3\n",
                           0755);
                hook_write(f, "20-flood", "yes 0123456789abcdef | head -c 200000\n", 0755);
                gl_hooks_fire(h, "connected", "web1", ev);
                wait_idle(h, 10000);
                g_assert_cmpuint(gl_hooks_run(h), ==, 2);
                /* 20-flood's head(1) dies of SIGPIPE once its output is cut */
                g_assert_cmpuint(gl_hooks_failed(h), ==, 2);
                return;
        }
        g_test_trap_subprocess(NULL, 20 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr("*[web1] Hook 10-talk: hello stdout\n*");
        g_test_trap_assert_stderr("*[web1] Hook 10-talk: hello stderr\n*");
        g_test_trap_assert_stderr("*[web1] Hook 10-talk: esc \\x1b[31m red\n*");
        g_test_trap_assert_stderr("*[web1] Hook 10-talk: no newline at the end\n*");
        g_test_trap_assert_stderr("*[web1] Hook 10-talk (connected) exited with status 3\n*");
        g_test_trap_assert_stderr("*[web1] Hook 20-flood wrote more than 65536 bytes, discarding the rest*");
        {
                /* the long line: exactly 4096 bytes, then "…" */
                g_autofree char *xs = g_strnfill(GL_HOOKS_MAX_LINE_BYTES, 'x');
                g_autofree char *want = g_strdup_printf("*Hook 10-talk: %s\xe2\x80\xa6\n*", xs);

                g_test_trap_assert_stderr(want);
        }
        g_test_trap_assert_stderr("*[web1] Hook 20-flood (connected) exited with status 141\n*");
        g_test_trap_assert_stderr_unmatched("*discarding the rest*discarding the rest*");
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_unsetenv("JOURNAL_STREAM");
        g_test_add("/hooks/input", Fixture, NULL, fixture_setup, test_input, fixture_teardown);
        g_test_add("/hooks/selection", Fixture, NULL, fixture_setup, test_selection, fixture_teardown);
        g_test_add("/hooks/timeout", Fixture, NULL, fixture_setup, test_timeout, fixture_teardown);
        g_test_add("/hooks/timeout-kill", Fixture, NULL, fixture_setup, test_timeout_kill, fixture_teardown);
        g_test_add("/hooks/queue", Fixture, NULL, fixture_setup, test_queue, fixture_teardown);
        g_test_add("/hooks/output", Fixture, NULL, fixture_setup, test_output, fixture_teardown);
        return g_test_run();
}
