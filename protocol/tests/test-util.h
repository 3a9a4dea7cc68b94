/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-c/json.h>
#include <stdint.h>

#include "frame.h"

/* Path of a file in protocol/tests/data/. */
char *test_data_path(const char *name);

/* Reads a hex file: pairs of hex digits, whitespace and '#' comments ignored. */
GByteArray *test_read_hex(const char *path);
void test_write_hex(const char *path, const uint8_t *data, size_t len);

/* Appends one complete frame to out. */
void test_append_frame(GByteArray *out, uint8_t kind, uint16_t flags, uint64_t seq, uint64_t ack, const char *json,
                       const void *attach, size_t attach_len);

#ifndef GL_JSON_OBJECT_AUTOPTR
#define GL_JSON_OBJECT_AUTOPTR
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)
#endif

#include "session.h"

/* Writes everything `from` wants to send onto wire, max_write bytes per
 * "write()" (partial writes are exercised).  Returns bytes written. */
size_t test_flush(GlSession *from, GByteArray *wire, size_t max_write);

/* Feeds wire into `to`, max_read bytes per "read()", draining events into
 * events (an array of GlSessionEvent; messages owned by the array). */
void test_deliver(GlSession *to, GByteArray *wire, size_t max_read, GArray *events);
GArray *test_events_new(void);

GlSession *test_session_new(const char *role, const char *instance, uint32_t min_version, uint32_t max_version);

/* Connects both, runs the exchange until quiet. */
void test_pump(GlSession *a, GlSession *b, GArray *ev_a, GArray *ev_b);
