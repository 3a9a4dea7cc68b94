/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * GlHooks: event hooks, executables in a directory (default
 * /etc/guestlink/hooks.d/) run on guest events.
 *
 * The directory is read at every gl_hooks_fire(), so hooks can be added
 * or removed without a restart.  Entries run in name order (C locale);
 * skipped: names starting with ".", ending in "~" or ".bak", containing
 * ".dpkg-" or ".rpm" (package manager leftovers), anything that is not a
 * regular file after following symlinks, and files that are not
 * executable.
 *
 * Each hook runs without a shell: argv = [path, kind], cwd "/", in a
 * process group of its own, with only PATH=/usr/sbin:/usr/bin:/sbin:/bin,
 * GUESTLINK_EVENT=kind, GUESTLINK_GUEST=name and, when the event has one,
 * GUESTLINK_GUEST_UUID in its environment.  Its standard input is the
 * event object (the bridge.event data, PROTOCOL.md 11.11) as one line of
 * JSON followed by "\n" (a sealed memfd: a hook that does not read it
 * cannot block the bridge).  Lines it writes to stdout or stderr go to the
 * log with GUESTLINK_HOOK=<name> (and GUESTLINK_GUEST), each cut at
 * GL_HOOKS_MAX_LINE_BYTES; after GL_HOOKS_MAX_OUTPUT_BYTES of output per
 * run the bridge logs one note and closes the pipes.  A hook still
 * running after timeout_ms gets SIGTERM, and SIGKILL 2 s later (its whole
 * process group); a non-zero exit or death by a signal is logged.
 *
 * At most max_running hooks run at once; further runs wait in a FIFO of
 * at most max_queued, and runs beyond that are dropped (logged, counted).
 * Runs start in the order they were fired (event order, then name
 * order), so with max_running = 1 they are strictly sequential.
 *
 * Nothing here blocks: processes, pipes and timers are driven by the
 * thread-default GMainContext of gl_hooks_new().
 */
#include <glib.h>
#include <json-c/json.h>
#include <stdint.h>

#define GL_HOOKS_DEFAULT_DIR "/etc/guestlink/hooks.d"
#define GL_HOOKS_MAX_LINE_BYTES 4096
#define GL_HOOKS_MAX_OUTPUT_BYTES (64 * 1024)
#define GL_HOOKS_KILL_DELAY_MS 2000
#define GL_HOOKS_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct GlHooks GlHooks;

/* dir NULL: GL_HOOKS_DEFAULT_DIR.  timeout_ms 0: no timeout; max_running
 * 0 is taken as 1. */
GlHooks *gl_hooks_new(const char *dir, guint timeout_ms, guint max_running, guint max_queued);
/* Running hooks get SIGTERM (their process group); queued runs are
 * discarded.  Pending I/O callbacks complete later in the main context
 * without touching the freed object. */
GlHooks *gl_hooks_free(GlHooks *hooks);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GlHooks, gl_hooks_free)

/* Runs every hook of the directory for one event.  kind is the event
 * kind ("attached", "connected", …), guest_name the guest's name (may be
 * NULL), event the bridge.event data object (borrowed; serialised here). */
void gl_hooks_fire(GlHooks *hooks, const char *kind, const char *guest_name, json_object *event);

/* Counters since gl_hooks_new(). */
uint64_t gl_hooks_run(const GlHooks *hooks);       /* runs started */
uint64_t gl_hooks_failed(const GlHooks *hooks);    /* failed to start, non-zero exit, killed, timed out */
uint64_t gl_hooks_timed_out(const GlHooks *hooks); /* of which timed out */
uint64_t gl_hooks_dropped(const GlHooks *hooks);   /* not run: the queue was full */
/* Current load. */
guint gl_hooks_running(const GlHooks *hooks);
guint gl_hooks_queued(const GlHooks *hooks);
