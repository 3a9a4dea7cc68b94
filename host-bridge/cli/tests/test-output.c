/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* output.c: units, tables, terminal-safe JSON. */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "output.h"

static void test_units(void) {
        static const struct {
                uint64_t bytes;
                const char *want;
        } b[] = {
                { 0, "0 B" },
                { 1023, "1023 B" },
                { 1024, "1.0 KiB" },
                { 1536, "1.5 KiB" },
                { 1048524, "1023.9 KiB" },
                { 1048576, "1.0 MiB" },
                { 4105195520, "3.8 GiB" },
                { UINT64_MAX, "16.0 EiB" },
        };
        static const struct {
                double s;
                const char *want;
        } d[] = {
                { 0, "0s" }, { 59.4, "59s" }, { 61, "1m 1s" }, { 3600, "1h 0m" }, { 273845.5, "3d 4h" }, { -5, "0s" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(b); i++) {
                g_autofree char *t = output_bytes(b[i].bytes);
                g_assert_cmpstr(t, ==, b[i].want);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(d); i++) {
                g_autofree char *t = output_duration(d[i].s);
                g_assert_cmpstr(t, ==, d[i].want);
        }
        {
                g_autofree char *p = output_percent(12.345);
                g_autofree char *r = output_rate(1536.4);
                g_assert_cmpstr(p, ==, "12.3%");
                g_assert_cmpstr(r, ==, "1.5 KiB/s");
        }
}

static char *table_text(OutputTable *t) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        g_assert_nonnull(f);
        output_table_print(t, f, 2);
        fclose(f);
        return buf;
}

static void test_table(void) {
        g_autoptr(OutputTable) t = output_table_new("NAME", ">SIZE", "NOTE", NULL);
        g_autofree char *text = NULL;

        output_table_add(t, "a");
        output_table_add(t, "1.0 KiB");
        output_table_add(t, "x\x1b[31my");
        output_table_add(t, "longer-name");
        output_table_add(t, "5 B");
        output_table_add(t, NULL);
        g_assert_cmpuint(output_table_rows(t), ==, 2);
        text = table_text(t);
        g_assert_cmpstr(text, ==,
                        "  NAME            SIZE  NOTE\n"
                        "  a            1.0 KiB  x\\x1b[31my\n"
                        "  longer-name      5 B  -\n");
}

static void test_json_sanitize(void) {
        g_autoptr(json_object) o = json_object_new_object();
        g_autofree char *pretty = NULL, *line = NULL;

        json_object_object_add(o, "esc", json_object_new_string("a\x1b[2Jb"));
        json_object_object_add(o, "csi",
                               json_object_new_string("c\xc2\x9b"
                                                      "31md"));
        json_object_object_add(o, "del", json_object_new_string("e\x7f"));
        json_object_object_add(o, "bad", json_object_new_string("f\xff\x9bg\xc3"));
        json_object_object_add(o, "k\x1b", json_object_new_string("nl\nx/\xc3\xa9"));
        line = output_json_text(o, false);
        g_assert_cmpstr(line, ==,
                        "{\"esc\":\"a\\u001b[2Jb\",\"csi\":\"c\\u009b31md\",\"del\":\"e\\u007f\","
                        "\"bad\":\"f\\ufffd\\ufffdg\\ufffd\",\"k\\u001b\":\"nl\\nx/\xc3\xa9\"}");
        pretty = output_json_text(o, true);
        g_assert_nonnull(strstr(pretty, "\n"));
        g_assert_null(strstr(pretty, "\x1b"));
        g_assert_null(strstr(pretty, "\x7f"));
        g_assert_null(strstr(pretty, "\xc2\x9b"));
        g_assert_true(g_utf8_validate(pretty, -1, NULL));
        {
                g_autoptr(json_object) back = json_tokener_parse(pretty);
                g_assert_nonnull(back);
        }
}

static void test_text(void) {
        g_autofree char *a = output_text("x\x1b[1m\xc2\x9b\xff\n");
        g_autofree char *b = output_text(NULL);

        g_assert_cmpstr(a, ==, "x\\x1b[1m\\x9b\xef\xbf\xbd\\x0a");
        g_assert_cmpstr(b, ==, "-");
}

static void test_get(void) {
        g_autoptr(json_object) o = json_tokener_parse("{\"a\":{\"b\":{\"c\":5,\"s\":\"t\",\"d\":1.5,\"f\":false}}}");
        int64_t i = 0;
        double d = 0;
        bool f = true;

        g_assert_true(output_get_int(o, "a.b.c", &i));
        g_assert_cmpint(i, ==, 5);
        g_assert_false(output_get_int(o, "a.b.s", &i));
        g_assert_cmpstr(output_get_string(o, "a.b.s"), ==, "t");
        g_assert_null(output_get_string(o, "a.b.c"));
        g_assert_null(output_get(o, "a.x.c"));
        g_assert_true(output_get_double(o, "a.b.d", &d));
        g_assert_cmpfloat(d, ==, 1.5);
        g_assert_true(output_get_double(o, "a.b.c", &d));
        g_assert_cmpfloat(d, ==, 5.0);
        g_assert_true(output_get_bool(o, "a.b.f", &f));
        g_assert_false(f);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli/output/units", test_units);
        g_test_add_func("/cli/output/table", test_table);
        g_test_add_func("/cli/output/json-sanitize", test_json_sanitize);
        g_test_add_func("/cli/output/text", test_text);
        g_test_add_func("/cli/output/get", test_get);
        return g_test_run();
}
