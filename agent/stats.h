/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Resource statistics of the guest: the body of a `stats.get` result and of a
 * `stats` event (PROTOCOL.md 11.5).  OS-neutral interface; one implementation
 * per OS (stats-linux*.c, later stats-win32.c), chosen by meson.
 *
 * A collector keeps the previous sample it took; rates and percentages are
 * deltas against it and are omitted from its first sample.  Keep one
 * collector per subscription and one for `stats.get`, as PROTOCOL.md says.
 * Only sections present in the previous sample have a base: a section that
 * was not collected last time has no rates this time.
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "dispatch.h" /* GlStatsSection, GlStatsQuery: what the host asked for */

/* List bounds of PROTOCOL.md 11.5.  Entries beyond them are left out and
 * the object holding the list gets "truncated": true. */
#define GL_STATS_MAX_CPUS 1024u
#define GL_STATS_MAX_FILESYSTEMS 256u
#define GL_STATS_MAX_DISKS 256u
#define GL_STATS_MAX_INTERFACES 256u
#define GL_STATS_MAX_POWER_SUPPLIES 32u
#define GL_STATS_MAX_TOP_PROCESSES 50u

typedef struct GlStatsCollector GlStatsCollector;

/* root is the absolute directory the OS's files are read under: "/" in
 * production, a fixture tree in tests.  NULL when root is not absolute or on
 * allocation failure. */
GlStatsCollector *gl_stats_collector_new(const char *root);
GlStatsCollector *gl_stats_collector_free(GlStatsCollector *c);

/* Takes a sample of the sections q asks for (q->top_processes 0 leaves
 * top_processes out) and builds the stats object.  now_unix_us is the wall clock
 * (the sample's time_unix_us); now_monotonic_us a clock that never jumps
 * (period_seconds is its difference to the previous sample; a clock that
 * did not advance gives no rates).  A section whose source is missing or
 * malformed is omitted; the collector keeps no base for it.  Returns 0, or
 * -EINVAL (bad arguments) / -ENOMEM, in which case the previous sample is
 * kept and *ret untouched. */
int gl_stats_collect(GlStatsCollector *c, uint64_t now_unix_us, uint64_t now_monotonic_us, const GlStatsQuery *q,
                     json_object **ret);
