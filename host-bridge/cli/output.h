/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Output of the CLI: aligned tables, human units, JSON.  Every string that
 * came from a guest or the bridge is sanitised (gl_sanitize) before it
 * reaches a terminal: the table and the text helpers do it themselves, and
 * JSON text is made safe as a whole (output_json_text()).
 */
#include <glib.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "peer.h" /* the json_object autoptr cleanup */

/* Longest piece of peer text shown in one place (bytes of input). */
#define OUTPUT_TEXT_MAX 512

typedef struct OutputTable OutputTable;

/* Columns named by the NULL-terminated list of headers.  A header starting
 * with '>' is right-aligned (the '>' is not printed). */
OutputTable *output_table_new(const char *header, ...) G_GNUC_NULL_TERMINATED;
OutputTable *output_table_free(OutputTable *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(OutputTable, output_table_free)
/* Appends a cell to the current row (a new row after the last column).
 * text is sanitised; NULL prints as "-". */
void output_table_add(OutputTable *t, const char *text);
void output_table_addf(OutputTable *t, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Takes ownership of text (g_free). */
void output_table_take(OutputTable *t, char *text);
size_t output_table_rows(const OutputTable *t);
/* Prints the table, each line prefixed by indent spaces; nothing if empty
 * and no header should be printed for no rows. */
void output_table_print(const OutputTable *t, FILE *f, unsigned indent);

/* Human units; all return new strings. */
char *output_bytes(uint64_t bytes);         /* "512 B", "1.5 KiB", "3.2 GiB" */
char *output_rate(double bytes_per_second); /* "1.2 MiB/s" */
char *output_duration(double seconds);      /* "3d 4h", "4h 12m", "12m 5s", "5s" */
char *output_percent(double percent);       /* "12.3%" */
char *output_time(int64_t unix_us);         /* local "2024-05-01 12:00:00" */
/* Sanitised peer text (gl_sanitize, OUTPUT_TEXT_MAX); NULL becomes "-". */
char *output_text(const char *text);

/* The current time for relative output: $GUESTLINK_TEST_NOW (µs since the
 * epoch) if set, so that tests are deterministic, else the real time. */
int64_t output_now_us(void);

/* JSON text safe for a terminal: json-c escapes C0 controls; this also
 * escapes DEL and C1 controls (\u007f, \u0080..\u009f) and replaces
 * invalid UTF-8 with \ufffd.  pretty: JSON_C_TO_STRING_PRETTY, else one
 * line.  Returns a new string. */
char *output_json_text(json_object *o, bool pretty);
/* Prints o as JSON followed by a newline (pretty or one line for streams). */
void output_json(json_object *o, bool pretty);

/* Reading peer JSON: path is a member path "a.b.c".  NULL / false when
 * absent or of another type. */
json_object *output_get(json_object *o, const char *path);
const char *output_get_string(json_object *o, const char *path);
bool output_get_int(json_object *o, const char *path, int64_t *ret);
bool output_get_double(json_object *o, const char *path, double *ret);
bool output_get_bool(json_object *o, const char *path, bool *ret);
json_object *output_get_array(json_object *o, const char *path);
