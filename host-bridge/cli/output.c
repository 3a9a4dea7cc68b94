/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "output.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct OutputTable {
        GPtrArray *headers; /* char *, without the '>' */
        GArray *right;      /* gboolean per column */
        GPtrArray *cells;   /* char *, row-major, sanitised */
};

OutputTable *output_table_new(const char *header, ...) {
        OutputTable *t = g_new0(OutputTable, 1);
        va_list ap;

        t->headers = g_ptr_array_new_with_free_func(g_free);
        t->right = g_array_new(FALSE, TRUE, sizeof(gboolean));
        t->cells = g_ptr_array_new_with_free_func(g_free);
        va_start(ap, header);
        for (const char *h = header; h; h = va_arg(ap, const char *)) {
                gboolean right = h[0] == '>';

                g_ptr_array_add(t->headers, g_strdup(right ? h + 1 : h));
                g_array_append_val(t->right, right);
        }
        va_end(ap);
        return t;
}

OutputTable *output_table_free(OutputTable *t) {
        if (!t)
                return NULL;
        g_ptr_array_unref(t->headers);
        g_array_unref(t->right);
        g_ptr_array_unref(t->cells);
        g_free(t);
        return NULL;
}

void output_table_take(OutputTable *t, char *text) {
        g_ptr_array_add(t->cells, output_text(text));
        g_free(text);
}

void output_table_add(OutputTable *t, const char *text) {
        g_ptr_array_add(t->cells, output_text(text));
}

void output_table_addf(OutputTable *t, const char *format, ...) {
        va_list ap;
        char *text;

        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);
        output_table_take(t, text);
}

size_t output_table_rows(const OutputTable *t) {
        return (t->cells->len + t->headers->len - 1) / t->headers->len;
}

/* Terminal columns of sanitised (valid UTF-8, no controls) text. */
static size_t display_width(const char *s) {
        size_t w = 0;

        for (const char *p = s; *p; p = g_utf8_next_char(p)) {
                gunichar c = g_utf8_get_char(p);

                if (g_unichar_iszerowidth(c))
                        continue;
                w += g_unichar_iswide(c) ? 2 : 1;
        }
        return w;
}

static void print_cell(FILE *f, const char *text, size_t width, bool right, bool last) {
        size_t w = display_width(text);
        size_t pad = width > w ? width - w : 0;

        if (right)
                fprintf(f, "%*s", (int) pad, "");
        fputs(text, f);
        if (!right && !last)
                fprintf(f, "%*s", (int) pad, "");
}

void output_table_print(const OutputTable *t, FILE *f, unsigned indent) {
        guint ncol = t->headers->len;
        g_autofree size_t *width = g_new0(size_t, ncol);
        size_t rows = output_table_rows(t);

        for (guint i = 0; i < ncol; i++)
                width[i] = display_width(t->headers->pdata[i]);
        for (guint i = 0; i < t->cells->len; i++)
                width[i % ncol] = MAX(width[i % ncol], display_width(t->cells->pdata[i]));
        for (size_t r = 0; r <= rows; r++) {
                fprintf(f, "%*s", (int) indent, "");
                for (guint col = 0; col < ncol; col++) {
                        size_t i = (r - 1) * ncol + col;
                        const char *text = r == 0              ? t->headers->pdata[col]
                                           : i < t->cells->len ? t->cells->pdata[i]
                                                               : "";

                        if (col > 0)
                                fputs("  ", f);
                        print_cell(f, text, width[col], g_array_index(t->right, gboolean, col), col + 1 == ncol);
                }
                fputc('\n', f);
        }
}

char *output_bytes(uint64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double v = (double) bytes;
        size_t u = 0;

        if (bytes < 1024)
                return g_strdup_printf("%" PRIu64 " B", bytes);
        v /= 1024.0;
        while (v >= 1023.95 && u + 1 < G_N_ELEMENTS(units)) {
                v /= 1024.0;
                u++;
        }
        return g_strdup_printf("%.1f %s", v, units[u]);
}

char *output_rate(double bytes_per_second) {
        g_autofree char *b = output_bytes(bytes_per_second > 0 ? (uint64_t) (bytes_per_second + 0.5) : 0);

        return g_strdup_printf("%s/s", b);
}

char *output_duration(double seconds) {
        uint64_t s = seconds > 0 ? (uint64_t) (seconds + 0.5) : 0;

        if (s >= 86400)
                return g_strdup_printf("%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
        if (s >= 3600)
                return g_strdup_printf("%" PRIu64 "h %" PRIu64 "m", s / 3600, s % 3600 / 60);
        if (s >= 60)
                return g_strdup_printf("%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
        return g_strdup_printf("%" PRIu64 "s", s);
}

char *output_percent(double percent) {
        return g_strdup_printf("%.1f%%", percent);
}

char *output_time(int64_t unix_us) {
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(unix_us / G_USEC_PER_SEC);

        if (!t)
                return g_strdup("-");
        return g_date_time_format(t, "%Y-%m-%d %H:%M:%S");
}

char *output_text(const char *text) {
        if (!text)
                return g_strdup("-");
        return gl_sanitize(text, OUTPUT_TEXT_MAX);
}

int64_t output_now_us(void) {
        const char *e = g_getenv("GUESTLINK_TEST_NOW");

        if (e && *e)
                return g_ascii_strtoll(e, NULL, 10);
        return g_get_real_time();
}

char *output_json_text(json_object *o, bool pretty) {
        const char *text = json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_NOSLASHESCAPE |
                           (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN));
        size_t len = strlen(text);
        GString *out = g_string_sized_new(len + 16);

        /* Outside strings json-c writes ASCII only, so every byte handled
         * here is inside a string, where an escape is valid JSON. */
        for (size_t i = 0; i < len;) {
                const char *p = text + i;
                gunichar c = g_utf8_get_char_validated(p, (gssize) (len - i));

                if (c == (gunichar) -1 || c == (gunichar) -2) {
                        g_string_append(out, "\\ufffd");
                        i++;
                        continue;
                }
                if (c == 0x7f || (c >= 0x80 && c < 0xa0) || c < 0x20)
                        g_string_append_printf(out, c == '\n' && pretty ? "\n" : "\\u%04x", c);
                else
                        g_string_append_len(out, p, g_utf8_next_char(p) - p);
                i += (size_t) (g_utf8_next_char(p) - p);
        }
        return g_string_free(out, FALSE);
}

void output_json(json_object *o, bool pretty) {
        g_autofree char *text = output_json_text(o, pretty);

        fputs(text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
}

json_object *output_get(json_object *o, const char *path) {
        g_auto(GStrv) parts = g_strsplit(path, ".", 0);

        for (size_t i = 0; parts[i]; i++) {
                if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, parts[i], &o))
                        return NULL;
        }
        return o;
}

const char *output_get_string(json_object *o, const char *path) {
        json_object *v = output_get(o, path);

        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

bool output_get_int(json_object *o, const char *path, int64_t *ret) {
        json_object *v = output_get(o, path);

        if (!v || !json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

bool output_get_double(json_object *o, const char *path, double *ret) {
        json_object *v = output_get(o, path);

        if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
                return false;
        *ret = json_object_get_double(v);
        return true;
}

bool output_get_bool(json_object *o, const char *path, bool *ret) {
        json_object *v = output_get(o, path);

        if (!v || !json_object_is_type(v, json_type_boolean))
                return false;
        *ret = json_object_get_boolean(v);
        return true;
}

json_object *output_get_array(json_object *o, const char *path) {
        json_object *v = output_get(o, path);

        return v && json_object_is_type(v, json_type_array) ? v : NULL;
}
