/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Human rendering of a stats object (PROTOCOL.md 11.5). */
#include <json-c/json.h>
#include <stdio.h>

/* Per-CPU entries shown on the "top" line. */
#define STATS_TOP_CPUS 4

/* The dashboard of one sample. */
void stats_print(FILE *f, json_object *stats);
/* One line per sample for --since: the header, then rows. */
void stats_print_history(FILE *f, json_object *samples);
