/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <string.h>

#include "json-check.h"

/*
 * A lexical pre-pass over the untrusted text, before json-c sees it:
 *  - bounds every string (member names too).  Length is measured on the
 *    wire form, between the quotes with escapes as written; that is an upper
 *    bound of the decoded length, so json-c never allocates a longer string;
 *  - bounds nesting: the top-level object is depth 1 and every object or
 *    array inside adds one (json-c's own depth counter also counts parser
 *    states, so it is set generously and only backs this one up);
 *  - rejects what json-c tolerates but RFC 8259 does not: single-quoted
 *    strings, bare words other than true/false/null (NaN, Infinity).
 */
/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no UTF-16 surrogates, nothing above U+10FFFF), 0 if there is none.
 */
static size_t utf8_sequence(const char *s, size_t avail) {
        const unsigned char *p = (const unsigned char *) s;
        unsigned char lo = 0x80, hi = 0xbf;
        size_t n;

        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                n = 2;
        else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                n = 3;
                if (p[0] == 0xe0)
                        lo = 0xa0;
                else if (p[0] == 0xed)
                        hi = 0x9f;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                n = 4;
                if (p[0] == 0xf0)
                        lo = 0x90;
                else if (p[0] == 0xf4)
                        hi = 0x8f;
        } else
                return 0;
        if (avail < n || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t k = 2; k < n; k++)
                if (p[k] < 0x80 || p[k] > 0xbf)
                        return 0;
        return n;
}

static int prescan(const char *text, size_t len, const GlLimits *limits) {
        uint32_t depth = 0;

        for (size_t i = 0; i < len; i++) {
                char c = text[i];

                switch (c) {
                case '"': {
                        size_t start = ++i;

                        for (; i < len && text[i] != '"'; i++) {
                                if (text[i] == '\\')
                                        i++;
                                else if ((unsigned char) text[i] >= 0x80) {
                                        size_t n = utf8_sequence(text + i, len - i);
                                        if (n == 0)
                                                return -GL_FRAME_ERR_JSON_SYNTAX;
                                        i += n - 1;
                                }
                        }
                        if (i >= len)
                                return -GL_FRAME_ERR_JSON_SYNTAX;
                        if (i - start > limits->max_string_bytes)
                                return -GL_FRAME_ERR_STRING_TOO_LONG;
                        break;
                }
                case '{':
                case '[':
                        if (++depth > limits->max_json_depth)
                                return -GL_FRAME_ERR_JSON_TOO_DEEP;
                        break;
                case '}':
                case ']':
                        if (depth == 0)
                                return -GL_FRAME_ERR_JSON_SYNTAX;
                        depth--;
                        break;
                case ' ':
                case '\t':
                case '\r':
                case '\n':
                case ':':
                case ',':
                case '-':
                case '+':
                case '.':
                case 'e':
                case 'E':
                case '0':
                case '1':
                case '2':
                case '3':
                case '4':
                case '5':
                case '6':
                case '7':
                case '8':
                case '9':
                        break;
                case 't':
                case 'f':
                case 'n': {
                        static const char *const words[] = { "true", "false", "null" };
                        bool ok = false;

                        for (size_t w = 0; w < 3 && !ok; w++) {
                                size_t n = strlen(words[w]);
                                if (len - i >= n && memcmp(text + i, words[w], n) == 0) {
                                        i += n - 1;
                                        ok = true;
                                }
                        }
                        if (!ok)
                                return -GL_FRAME_ERR_JSON_SYNTAX;
                        break;
                }
                default:
                        return -GL_FRAME_ERR_JSON_SYNTAX;
                }
        }
        return 0;
}

static bool only_space(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!strchr(" \t\r\n", s[i]))
                        return false;
        return true;
}

int gl_json_parse(const char *text, size_t len, const GlLimits *limits, json_object **ret) {
        json_tokener *tok;
        json_object *obj;
        enum json_tokener_error jerr;
        int r;

        if (len > limits->max_json_bytes)
                return -GL_FRAME_ERR_JSON_TOO_LARGE;
        if (len == 0)
                return -GL_FRAME_ERR_JSON_MISSING;
        /* json-c rejects NUL bytes inside the text only in some states; do
         * it here so that strings never carry a hidden NUL. */
        if (memchr(text, '\0', len))
                return -GL_FRAME_ERR_JSON_SYNTAX;
        r = prescan(text, len, limits);
        if (r < 0)
                return r;

        tok = json_tokener_new_ex(2 * (int) limits->max_json_depth + 2);
        if (!tok)
                return -GL_FRAME_ERR_JSON_SYNTAX;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, text, (int) len);
        jerr = json_tokener_get_error(tok);
        if (jerr == json_tokener_continue) {
                /* Incomplete text, or a bare number that needs a flush:
                 * either way not a complete object. */
                json_object_put(obj);
                obj = json_tokener_parse_ex(tok, "", 1);
                jerr = json_tokener_get_error(tok);
        } else if (jerr == json_tokener_success &&
                   !only_space(text + json_tokener_get_parse_end(tok), len - json_tokener_get_parse_end(tok))) {
                json_object_put(obj);
                obj = NULL;
                jerr = json_tokener_error_parse_unexpected;
        }
        json_tokener_free(tok);

        if (jerr == json_tokener_error_depth)
                return -GL_FRAME_ERR_JSON_TOO_DEEP;
        if (jerr != json_tokener_success || !obj) {
                json_object_put(obj);
                return -GL_FRAME_ERR_JSON_SYNTAX;
        }
        if (!json_object_is_type(obj, json_type_object)) {
                json_object_put(obj);
                return -GL_FRAME_ERR_JSON_NOT_OBJECT;
        }
        *ret = obj;
        return 0;
}
