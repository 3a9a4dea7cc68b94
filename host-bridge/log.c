/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-journal.h>

void gl_log_full(int priority, const char *guest, const char *uuid, const char *const *fields, const char *file,
                 int line, const char *func, const char *format, ...) {
        g_autofree char *text = NULL;
        const char *prg = g_get_prgname() ? g_get_prgname() : "guestlink";
        va_list ap;

        /* debug lines only when asked for, as glib does */
        if (priority >= LOG_DEBUG && !g_getenv("GUESTLINK_DEBUG") && !g_getenv("G_MESSAGES_DEBUG"))
                return;
        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);

        if (g_getenv("JOURNAL_STREAM")) {
                g_autoptr(GPtrArray) v = g_ptr_array_new_with_free_func(g_free);
                g_autofree struct iovec *iov = NULL;

                g_ptr_array_add(v, g_strdup_printf("MESSAGE=%s", text));
                g_ptr_array_add(v, g_strdup_printf("PRIORITY=%i", priority));
                g_ptr_array_add(v, g_strdup_printf("SYSLOG_IDENTIFIER=%s", prg));
                g_ptr_array_add(v, g_strdup_printf("CODE_FILE=%s", file));
                g_ptr_array_add(v, g_strdup_printf("CODE_LINE=%i", line));
                g_ptr_array_add(v, g_strdup_printf("CODE_FUNC=%s", func));
                if (guest)
                        g_ptr_array_add(v, g_strdup_printf("GUESTLINK_GUEST=%s", guest));
                if (uuid)
                        g_ptr_array_add(v, g_strdup_printf("GUESTLINK_GUEST_UUID=%s", uuid));
                for (size_t i = 0; fields && fields[i]; i++)
                        g_ptr_array_add(v, g_strdup(fields[i]));
                iov = g_new(struct iovec, v->len);
                for (guint i = 0; i < v->len; i++)
                        iov[i] = (struct iovec){ .iov_base = v->pdata[i], .iov_len = strlen(v->pdata[i]) };
                if (sd_journal_sendv(iov, (int) v->len) >= 0)
                        return;
        }
        if (guest)
                fprintf(stderr, "%s: [%s] %s\n", prg, guest, text);
        else
                fprintf(stderr, "%s: %s\n", prg, text);
}

char *gl_sanitize(const char *text, size_t max_bytes) {
        GString *out = g_string_sized_new(64);
        size_t len = text ? strlen(text) : 0;
        bool cut = false;

        if (len > max_bytes) {
                len = max_bytes;
                cut = true;
        }
        for (size_t i = 0; i < len;) {
                const char *p = text + i;
                gunichar c = g_utf8_get_char_validated(p, (gssize) (len - i));

                if (c == (gunichar) -1 || c == (gunichar) -2) {
                        g_string_append(out, "\xef\xbf\xbd"); /* U+FFFD */
                        i++;
                        continue;
                }
                /* controls, and the invisible characters that reorder or
                 * hide text on a terminal ("Trojan Source") */
                if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || (c >= 0x200b && c <= 0x200f) ||
                    (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff)
                        g_string_append_printf(out, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
                else if (c == '\\')
                        g_string_append(out, "\\\\");
                else
                        g_string_append_len(out, p, g_utf8_next_char(p) - p);
                i += (size_t) (g_utf8_next_char(p) - p);
        }
        if (cut)
                g_string_append(out, "\xe2\x80\xa6");
        return g_string_free(out, FALSE);
}
