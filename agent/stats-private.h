/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* OS-neutral helpers shared by the stats implementations (stats.c). */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Builds JSON while remembering the first failure, so that the many adds of
 * a stats object need one check at the end.  r is 0 or a negative errno. */
typedef struct StatsBuild {
        int r;
} StatsBuild;

/* A new object or array; NULL (and b->r = -ENOMEM) on allocation failure. */
json_object *stats_object_new(StatsBuild *b);
json_object *stats_array_new(StatsBuild *b);

/* Adds v under key (takes ownership of v, also on failure; a NULL v counts
 * as an allocation failure).  o may be NULL after an earlier failure. */
void stats_add(StatsBuild *b, json_object *o, const char *key, json_object *v);
/* Appends v (takes ownership, as above). */
void stats_append(StatsBuild *b, json_object *array, json_object *v);

void stats_add_u64(StatsBuild *b, json_object *o, const char *key, uint64_t v);
void stats_add_bool(StatsBuild *b, json_object *o, const char *key, bool v);
/* Adds a string; bytes that are not valid UTF-8 (as PROTOCOL.md 6.2 reads
 * it: no overlong forms, no surrogates, nothing above U+10FFFF) become
 * U+FFFD, so a process name or mount point can never make the frame
 * invalid. */
void stats_add_string(StatsBuild *b, json_object *o, const char *key, const char *s);
/* Adds a number rounded to `decimals` (0..6) decimal places and written in
 * that form ("33.33", "50.0"), whatever the locale.  A value that is not
 * finite is left out. */
void stats_add_number(StatsBuild *b, json_object *o, const char *key, double v, unsigned decimals);

/* Returns a newly allocated copy of s[0..len) with invalid UTF-8 replaced by
 * U+FFFD; NULL on allocation failure. */
char *stats_utf8_sanitize(const char *s, size_t len);
