/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Event hooks (hooks.h). */
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* After the hook's main process exited, how long to keep reading output
 * that processes it left behind may still hold open. */
#define DRAIN_MS 1000

typedef struct HookRun HookRun;

typedef struct HookStream {
        HookRun *run;
        GInputStream *in;
        const char *field; /* GUESTLINK_HOOK_STREAM=… */
        GString *line;
        bool line_cut; /* the current line exceeded GL_HOOKS_MAX_LINE_BYTES */
        bool done;
        char buf[4096];
} HookStream;

struct HookRun {
        int refs;
        GlHooks *hooks; /* NULL once the GlHooks was freed */
        char *path, *name, *kind, *guest, *uuid, *input;
        char *field_hook;      /* GUESTLINK_HOOK=name */
        const char *fields[2]; /* { field_hook, NULL } for the log */
        GSubprocess *proc;
        pid_t pid;
        GCancellable *cancel;
        GSource *timeout, *kill_timer, *drain_timer;
        HookStream streams[2]; /* stdout, stderr */
        size_t output_bytes;
        bool started, exited, finished, timed_out, capped;
};

struct GlHooks {
        char *dir;
        guint timeout_ms, max_running, max_queued;
        GMainContext *context;
        GQueue queued;  /* of HookRun, not started */
        GQueue running; /* of HookRun, started and not finished */
        uint64_t run, failed, timed_out, dropped;
};

#define run_log(r, priority, ...) \
        gl_log_full(priority, (r)->guest, (r)->uuid, (r)->fields, __FILE__, __LINE__, __func__, __VA_ARGS__)

static HookRun *run_ref(HookRun *r) {
        r->refs++;
        return r;
}

static void source_clear(GSource **s) {
        if (*s) {
                g_source_destroy(*s);
                g_source_unref(*s);
                *s = NULL;
        }
}

static void run_unref(HookRun *r) {
        if (!r || --r->refs > 0)
                return;
        source_clear(&r->timeout);
        source_clear(&r->kill_timer);
        source_clear(&r->drain_timer);
        for (size_t i = 0; i < G_N_ELEMENTS(r->streams); i++)
                if (r->streams[i].line)
                        g_string_free(r->streams[i].line, TRUE);
        g_clear_object(&r->proc);
        g_clear_object(&r->cancel);
        g_free(r->path);
        g_free(r->name);
        g_free(r->kind);
        g_free(r->guest);
        g_free(r->uuid);
        g_free(r->input);
        g_free(r->field_hook);
        g_free(r);
}

static GSource *timer_new(GMainContext *context, guint ms, GSourceFunc func, HookRun *r) {
        GSource *s = g_timeout_source_new(ms);

        g_source_set_callback(s, func, r, NULL);
        g_source_attach(s, context);
        return s;
}

/* Signals the hook's process group while its main process has not been
 * reaped (so the id cannot have been reused). */
static void run_signal(HookRun *r, int sig) {
        if (r->exited || !r->proc)
                return;
        if (r->pid <= 0 || kill(-r->pid, sig) < 0)
                g_subprocess_send_signal(r->proc, sig);
}

static void hooks_start_next(GlHooks *h);

static void run_finish(HookRun *r) {
        GlHooks *h = r->hooks;

        if (r->finished || !r->exited || !r->streams[0].done || !r->streams[1].done)
                return;
        r->finished = true;
        source_clear(&r->timeout);
        source_clear(&r->kill_timer);
        source_clear(&r->drain_timer);
        if (h) {
                g_queue_remove(&h->running, r);
                hooks_start_next(h);
        }
        run_unref(r);
}

static void stream_emit(HookStream *st) {
        HookRun *r = st->run;
        const char *fields[] = { r->field_hook, st->field, NULL };
        g_autofree char *text = NULL;

        if (st->line->len > 0 && st->line->str[st->line->len - 1] == '\r')
                g_string_truncate(st->line, st->line->len - 1);
        text = gl_sanitize(st->line->str, GL_HOOKS_MAX_LINE_BYTES);
        gl_log_full(LOG_INFO, r->guest, r->uuid, fields, __FILE__, __LINE__, __func__, "Hook %s: %s%s", r->name, text,
                    st->line_cut ? "\xe2\x80\xa6" : "");
        g_string_truncate(st->line, 0);
        st->line_cut = false;
}

static void stream_feed(HookStream *st, const char *data, size_t len) {
        while (len > 0) {
                const char *nl = memchr(data, '\n', len);
                size_t part = nl ? (size_t) (nl - data) : len;
                size_t room = GL_HOOKS_MAX_LINE_BYTES - MIN(st->line->len, (size_t) GL_HOOKS_MAX_LINE_BYTES);

                g_string_append_len(st->line, data, (gssize) MIN(part, room));
                if (part > room)
                        st->line_cut = true;
                if (!nl)
                        return;
                stream_emit(st);
                data += part + 1;
                len -= part + 1;
        }
}

static void stream_done(HookStream *st) {
        if (st->line->len > 0 || st->line_cut)
                stream_emit(st);
        st->done = true;
        /* Closing our end: a hook still writing gets EPIPE. */
        g_input_stream_close(st->in, NULL, NULL);
        run_finish(st->run);
}

static void stream_read(HookStream *st);

static void on_read(GObject *source, GAsyncResult *result, void *userdata) {
        HookStream *st = userdata;
        HookRun *r = st->run;
        g_autoptr(GError) error = NULL;
        gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, &error);

        if (!r->hooks) {
                /* orphaned by gl_hooks_free() */
        } else if (n <= 0) {
                if (n < 0 && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        run_log(r, LOG_WARNING, "Failed to read output of hook %s, ignoring: %s", r->name,
                                error->message);
                stream_done(st);
        } else {
                size_t take = (size_t) n;

                if (r->output_bytes + take > GL_HOOKS_MAX_OUTPUT_BYTES)
                        take = GL_HOOKS_MAX_OUTPUT_BYTES - r->output_bytes;
                r->output_bytes += take;
                stream_feed(st, st->buf, take);
                if (take < (size_t) n || r->capped) {
                        /* The other stream stops at its next read. */
                        if (!r->capped)
                                run_log(r, LOG_WARNING,
                                        "Hook %s wrote more than %u bytes, discarding the rest of its output", r->name,
                                        (unsigned) GL_HOOKS_MAX_OUTPUT_BYTES);
                        r->capped = true;
                        stream_done(st);
                } else {
                        stream_read(st);
                }
        }
        run_unref(r);
}

static void stream_read(HookStream *st) {
        g_input_stream_read_async(st->in, st->buf, sizeof(st->buf), G_PRIORITY_DEFAULT, st->run->cancel, on_read, st);
        run_ref(st->run);
}

static gboolean on_drain_timeout(void *userdata) {
        HookRun *r = userdata;

        g_source_unref(g_steal_pointer(&r->drain_timer));
        /* Processes the hook left behind still hold its output open. */
        g_cancellable_cancel(r->cancel);
        return G_SOURCE_REMOVE;
}

static void on_hook_exit(GObject *source, GAsyncResult *result, void *userdata) {
        HookRun *r = userdata;
        GSubprocess *proc = G_SUBPROCESS(source);
        g_autoptr(GError) error = NULL;

        if (!g_subprocess_wait_finish(proc, result, &error) || !r->hooks) {
                run_unref(r);
                return;
        }
        r->exited = true;
        source_clear(&r->timeout);
        source_clear(&r->kill_timer);
        if (g_subprocess_get_if_signaled(proc)) {
                int sig = g_subprocess_get_term_sig(proc);

                r->hooks->failed++;
                run_log(r, LOG_WARNING, "Hook %s (%s) was killed by signal SIG%s%s", r->name, r->kind,
                        sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", r->timed_out ? " after its timeout" : "");
        } else if (g_subprocess_get_exit_status(proc) != 0) {
                r->hooks->failed++;
                run_log(r, LOG_WARNING, "Hook %s (%s) exited with status %i%s", r->name, r->kind,
                        g_subprocess_get_exit_status(proc), r->timed_out ? " after its timeout" : "");
        } else if (r->timed_out) {
                r->hooks->failed++;
        }
        if (!r->streams[0].done || !r->streams[1].done)
                r->drain_timer = timer_new(r->hooks->context, DRAIN_MS, on_drain_timeout, r);
        run_finish(r);
        run_unref(r);
}

static gboolean on_kill_timeout(void *userdata) {
        HookRun *r = userdata;

        g_source_unref(g_steal_pointer(&r->kill_timer));
        run_log(r, LOG_WARNING, "Hook %s still running %u ms after SIGTERM, sending SIGKILL", r->name,
                (unsigned) GL_HOOKS_KILL_DELAY_MS);
        run_signal(r, SIGKILL);
        return G_SOURCE_REMOVE;
}

static gboolean on_timeout(void *userdata) {
        HookRun *r = userdata;

        g_source_unref(g_steal_pointer(&r->timeout));
        r->timed_out = true;
        r->hooks->timed_out++;
        run_log(r, LOG_WARNING, "Hook %s (%s) timed out after %u ms, sending SIGTERM", r->name, r->kind,
                r->hooks->timeout_ms);
        run_signal(r, SIGTERM);
        r->kill_timer = timer_new(r->hooks->context, GL_HOOKS_KILL_DELAY_MS, on_kill_timeout, r);
        return G_SOURCE_REMOVE;
}

static void child_setup(void *userdata) {
        (void) userdata;
        /* Own process group, so that a timeout also reaches its children. */
        (void) setpgid(0, 0);
}

/* A sealed memfd holding the event: never blocks us, whatever the hook does. */
static int input_fd(const char *input, GError **error) {
        size_t len = strlen(input);
        int fd = memfd_create("guestlink-hook-event", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        if (fd < 0)
                goto fail;
        for (size_t done = 0; done < len;) {
                ssize_t n = write(fd, input + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        goto fail;
                done += (size_t) n;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                goto fail;
        (void) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        return fd;

fail:
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "Failed to prepare the event for stdin: %s",
                    g_strerror(errno));
        if (fd >= 0)
                close(fd);
        return -1;
}

static bool run_start(GlHooks *h, HookRun *r) {
        g_autoptr(GSubprocessLauncher) launcher = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) env = NULL;
        const char *argv[] = { r->path, r->kind, NULL };
        const char *id;
        int fd;

        env = g_environ_setenv(NULL, "PATH", GL_HOOKS_PATH, TRUE);
        env = g_environ_setenv(env, "GUESTLINK_EVENT", r->kind, TRUE);
        if (r->guest)
                env = g_environ_setenv(env, "GUESTLINK_GUEST", r->guest, TRUE);
        if (r->uuid)
                env = g_environ_setenv(env, "GUESTLINK_GUEST_UUID", r->uuid, TRUE);

        h->run++;
        fd = input_fd(r->input, &error);
        if (fd >= 0) {
                launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
                g_subprocess_launcher_take_stdin_fd(launcher, fd);
                g_subprocess_launcher_set_environ(launcher, env);
                g_subprocess_launcher_set_cwd(launcher, "/");
                g_subprocess_launcher_set_child_setup(launcher, child_setup, NULL, NULL);
                r->proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
        }
        if (!r->proc) {
                h->failed++;
                run_log(r, LOG_WARNING, "Failed to run hook %s (%s), ignoring: %s", r->name, r->kind, error->message);
                return false;
        }
        /* NULL if the hook already exited (GLib reaps in its worker thread). */
        id = g_subprocess_get_identifier(r->proc);
        r->pid = id ? (pid_t) g_ascii_strtoll(id, NULL, 10) : 0;
        r->started = true;
        r->cancel = g_cancellable_new();
        r->streams[0] = (HookStream){ .run = r,
                                      .in = g_subprocess_get_stdout_pipe(r->proc),
                                      .field = "GUESTLINK_HOOK_STREAM=stdout",
                                      .line = g_string_new(NULL) };
        r->streams[1] = (HookStream){ .run = r,
                                      .in = g_subprocess_get_stderr_pipe(r->proc),
                                      .field = "GUESTLINK_HOOK_STREAM=stderr",
                                      .line = g_string_new(NULL) };
        g_queue_push_tail(&h->running, r);
        g_subprocess_wait_async(r->proc, r->cancel, on_hook_exit, run_ref(r));
        stream_read(&r->streams[0]);
        stream_read(&r->streams[1]);
        if (h->timeout_ms > 0)
                r->timeout = timer_new(h->context, h->timeout_ms, on_timeout, r);
        return true;
}

static void hooks_start_next(GlHooks *h) {
        while (g_queue_get_length(&h->running) < h->max_running && !g_queue_is_empty(&h->queued)) {
                HookRun *r = g_queue_pop_head(&h->queued);

                if (!run_start(h, r))
                        run_unref(r);
        }
}

static bool hook_name_ok(const char *name) {
        return name[0] != '.' && !g_str_has_suffix(name, "~") && !g_str_has_suffix(name, ".bak") &&
               !strstr(name, ".dpkg-") && !strstr(name, ".rpm");
}

static int compare_names(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The hooks to run, sorted by name: a NULL-terminated array of names. */
static GPtrArray *hooks_list(GlHooks *h) {
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) d = g_dir_open(h->dir, 0, &error);
        const char *name;

        if (!d) {
                if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        gl_log(LOG_WARNING, "Failed to read hook directory, ignoring: %s", error->message);
                return g_steal_pointer(&names);
        }
        while ((name = g_dir_read_name(d))) {
                g_autofree char *path = NULL;
                struct stat st;

                if (!hook_name_ok(name))
                        continue;
                path = g_build_filename(h->dir, name, NULL);
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0 || access(path, X_OK) < 0)
                        continue;
                g_ptr_array_add(names, g_strdup(name));
        }
        g_ptr_array_sort(names, compare_names);
        return g_steal_pointer(&names);
}

void gl_hooks_fire(GlHooks *h, const char *kind, const char *guest_name, json_object *event) {
        g_autoptr(GPtrArray) names = NULL;
        const char *uuid = NULL;
        json_object *guest = NULL, *v = NULL;
        const char *json;

        if (!h || !kind)
                return;
        names = hooks_list(h);
        if (names->len == 0)
                return;
        if (json_object_object_get_ex(event, "guest", &guest) && json_object_object_get_ex(guest, "uuid", &v) &&
            json_object_is_type(v, json_type_string))
                uuid = json_object_get_string(v);
        json = event ? json_object_to_json_string_ext(event, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                     : "{}";

        for (guint i = 0; i < names->len; i++) {
                HookRun *r = g_new0(HookRun, 1);

                r->refs = 1;
                r->hooks = h;
                r->name = g_strdup(names->pdata[i]);
                r->path = g_build_filename(h->dir, r->name, NULL);
                r->kind = g_strdup(kind);
                r->guest = g_strdup(guest_name);
                r->uuid = g_strdup(uuid);
                r->input = g_strconcat(json, "\n", NULL);
                r->field_hook = g_strdup_printf("GUESTLINK_HOOK=%s", r->name);
                r->fields[0] = r->field_hook;
                if (g_queue_get_length(&h->running) < h->max_running && g_queue_is_empty(&h->queued)) {
                        if (!run_start(h, r))
                                run_unref(r);
                } else if (g_queue_get_length(&h->queued) < h->max_queued) {
                        g_queue_push_tail(&h->queued, r);
                } else {
                        h->dropped++;
                        run_log(r, LOG_WARNING, "Dropping hook %s (%s): %u hooks running and %u queued already",
                                r->name, kind, g_queue_get_length(&h->running), g_queue_get_length(&h->queued));
                        run_unref(r);
                }
        }
}

GlHooks *gl_hooks_new(const char *dir, guint timeout_ms, guint max_running, guint max_queued) {
        GlHooks *h = g_new0(GlHooks, 1);

        h->dir = g_strdup(dir ? dir : GL_HOOKS_DEFAULT_DIR);
        h->timeout_ms = timeout_ms;
        h->max_running = MAX(max_running, 1u);
        h->max_queued = max_queued;
        h->context = g_main_context_ref_thread_default();
        g_queue_init(&h->queued);
        g_queue_init(&h->running);
        return h;
}

GlHooks *gl_hooks_free(GlHooks *h) {
        HookRun *r;

        if (!h)
                return NULL;
        while ((r = g_queue_pop_head(&h->queued)))
                run_unref(r);
        while ((r = g_queue_pop_head(&h->running))) {
                run_signal(r, SIGTERM);
                r->hooks = NULL;
                source_clear(&r->timeout);
                source_clear(&r->kill_timer);
                source_clear(&r->drain_timer);
                g_cancellable_cancel(r->cancel);
                run_unref(r);
        }
        g_main_context_unref(h->context);
        g_free(h->dir);
        g_free(h);
        return NULL;
}

uint64_t gl_hooks_run(const GlHooks *h) {
        return h ? h->run : 0;
}

uint64_t gl_hooks_failed(const GlHooks *h) {
        return h ? h->failed : 0;
}

uint64_t gl_hooks_timed_out(const GlHooks *h) {
        return h ? h->timed_out : 0;
}

uint64_t gl_hooks_dropped(const GlHooks *h) {
        return h ? h->dropped : 0;
}

guint gl_hooks_running(const GlHooks *h) {
        return h ? h->running.length : 0;
}

guint gl_hooks_queued(const GlHooks *h) {
        return h ? h->queued.length : 0;
}
