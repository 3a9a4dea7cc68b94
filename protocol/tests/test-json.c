/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON limits and strictness: one table, one loop. */
#include <string.h>

#include "json-check.h"
#include "test-util.h"

static const struct {
        const char *text;
        int result;
} cases[] = {
        { "{}", 0 },
        { " {\"a\":[true,false,null,-1.5e3,\"x\\\"y\"]}\r\n", 0 },
        { "{\"a\":{\"b\":{\"c\":{}}}}", 0 },                                   /* depth 4 == limit */
        { "{\"a\":{\"b\":{\"c\":{\"d\":[]}}}}", -GL_FRAME_ERR_JSON_TOO_DEEP }, /* depth 5 */
        { "{\"a\":[[[[1]]]]}", -GL_FRAME_ERR_JSON_TOO_DEEP },
        { "{\"abcdefghijklmnopq\":1}", -GL_FRAME_ERR_STRING_TOO_LONG }, /* member names count */
        { "{\"a\":\"0123456789abcdef\"}", 0 },                          /* 16 == limit */
        { "{\"a\":\"0123456789abcdefg\"}", -GL_FRAME_ERR_STRING_TOO_LONG },
        { "{\"a\":\"\\u0041\\u0042\"}", 0 },                                    /* measured as written: 12 */
        { "{\"a\":\"\\u0041\\u0042\\u0043\"}", -GL_FRAME_ERR_STRING_TOO_LONG }, /* 18 as written */
        { "[1,2]", -GL_FRAME_ERR_JSON_NOT_OBJECT },
        { "\"str\"", -GL_FRAME_ERR_JSON_NOT_OBJECT },
        { "42", -GL_FRAME_ERR_JSON_NOT_OBJECT },
        { "", -GL_FRAME_ERR_JSON_MISSING },
        { "{", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{}}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{} {}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":1,}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{'a':1}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":NaN}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":Infinity}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":nul}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":01}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":\"\xc3\x28\"}", -GL_FRAME_ERR_JSON_SYNTAX },         /* invalid UTF-8 */
        { "{\"a\":\"\xed\xa0\x80\"}", -GL_FRAME_ERR_JSON_SYNTAX },     /* UTF-16 surrogate in UTF-8 */
        { "{\"a\":\"\xc3\xa9t\xc3\xa9\"}", 0 },                        /* é */
        { "{\"a\":\"\xc0\xaf\"}", -GL_FRAME_ERR_JSON_SYNTAX },         /* overlong */
        { "{\"a\":\"\xf4\x90\x80\x80\"}", -GL_FRAME_ERR_JSON_SYNTAX }, /* above U+10FFFF */
        { "{\"a\":\"\xf0\x9f\x98\x80\"}", 0 },                         /* U+1F600 */
        { "{/*c*/}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":\"unterminated}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":\"tab\there\"}", -GL_FRAME_ERR_JSON_SYNTAX }, /* raw control character */
        { "{\"a\":\"\\t\\n\\/\\\\\\b\\f\\r\"}", 0 },            /* every short escape */
        { "{\"a\":\"\\x41\"}", -GL_FRAME_ERR_JSON_SYNTAX },     /* no such escape */
        { "{\"a\":\"\\u00e9\"}", 0 },
        { "{\"a\":\"\\u0000\"}", -GL_FRAME_ERR_JSON_SYNTAX }, /* would hide a NUL */
        { "{\"a\":\"\\u12g4\"}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":\"\\ud83d\\ude00\"}", 0 },                   /* surrogate pair */
        { "{\"a\":\"\\ud83d\"}", -GL_FRAME_ERR_JSON_SYNTAX },  /* lone high surrogate */
        { "{\"a\":\"\\ude00x\"}", -GL_FRAME_ERR_JSON_SYNTAX }, /* lone low surrogate */
        { "{\"a\":1.}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":.5}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":-}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":1e}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":+1}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":-0.5E+3}", 0 },
        { "{\"a\":9223372036854775807}", 0 }, /* INT64_MAX */
        { "{\"a\":9223372036854775808}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":-9223372036854775808}", 0 }, /* INT64_MIN */
        { "{\"a\":-9223372036854775809}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":12345678901234567890123}", -GL_FRAME_ERR_JSON_SYNTAX },
        { "{\"a\":1.5e300}", 0 },
};

static void test_table(void) {
        GlLimits l = GL_LIMITS_DEFAULT;

        l.max_json_depth = 4;
        l.max_string_bytes = 16;
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                json_object *o = NULL;
                int r = gl_json_parse(cases[i].text, strlen(cases[i].text), &l, &o);

                if (r != cases[i].result)
                        g_error("case %zu <%s>: got %d (%s), want %d", i, cases[i].text, r,
                                gl_frame_error_to_string((GlFrameError) -r), cases[i].result);
                g_assert_true((r == 0) == (o != NULL));
                json_object_put(o);
        }
}

static void test_embedded_nul_and_size(void) {
        GlLimits l = GL_LIMITS_DEFAULT;
        json_object *o = NULL;
        g_autofree char *big = NULL;

        g_assert_cmpint(gl_json_parse("{\"a\":\"x\0y\"}", 11, &l, &o), ==, -GL_FRAME_ERR_JSON_SYNTAX);
        l.max_json_bytes = 100;
        big = g_strnfill(101, ' ');
        big[0] = '{';
        big[100] = '}';
        g_assert_cmpint(gl_json_parse(big, 101, &l, &o), ==, -GL_FRAME_ERR_JSON_TOO_LARGE);
        g_assert_null(o);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/json/table", test_table);
        g_test_add_func("/json/nul-and-size", test_embedded_nul_and_size);
        return g_test_run();
}
