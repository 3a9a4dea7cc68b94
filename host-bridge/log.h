/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Logging for the host programs: structured journal entries when stderr
 * is connected to the journal ($JOURNAL_STREAM), "prgname: message" lines on
 * stderr otherwise.  Entries about one guest carry GUESTLINK_GUEST and
 * GUESTLINK_GUEST_UUID so that `journalctl GUESTLINK_GUEST=web1` works.
 * LOG_DEBUG lines are dropped unless $GUESTLINK_DEBUG or $G_MESSAGES_DEBUG
 * is set.
 */
#include <glib.h>
#include <syslog.h>

#define gl_log(priority, ...) gl_log_full(priority, NULL, NULL, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define gl_log_guest(priority, name, uuid, ...) \
        gl_log_full(priority, name, uuid, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
/* fields: NULL or a NULL-terminated list of extra "KEY=value" journal fields. */
#define gl_log_fields(priority, fields, ...) \
        gl_log_full(priority, NULL, NULL, fields, __FILE__, __LINE__, __func__, __VA_ARGS__)

void gl_log_full(int priority, const char *guest, const char *uuid, const char *const *fields, const char *file,
                 int line, const char *func, const char *format, ...) G_GNUC_PRINTF(8, 9);

/* Replaces control characters (C0, DEL, C1) and invalid UTF-8 in text that
 * came from a guest, so that it can go into a log line or a terminal:
 * "\x1b" becomes "\\x1b", invalid bytes become U+FFFD.  Bounded: at most
 * max_bytes of input are used (then "…" is appended).  Returns a new string. */
char *gl_sanitize(const char *text, size_t max_bytes);
