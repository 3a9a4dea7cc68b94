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
 *  - enforces RFC 8259 where json-c is lenient: no single quotes, no bare
 *    words but true/false/null, no raw control characters in strings, only
 *    the standard escapes, UTF-16 surrogates only in valid pairs, numbers by
 *    the grammar and integers within int64;
 *  - rejects \u0000, so that decoded strings never hide a NUL.
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

static int hex4(const char *p, size_t avail, unsigned *ret) {
        unsigned v = 0;

        if (avail < 4)
                return -1;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                int d = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
                if (d < 0)
                        return -1;
                v = v << 4 | (unsigned) d;
        }
        *ret = v;
        return 0;
}

/* Scans a string whose opening quote is at text[*i]; leaves *i on the
 * closing quote. */
static int scan_string(const char *text, size_t len, size_t *i, const GlLimits *limits) {
        size_t start = ++*i;

        for (; *i < len; (*i)++) {
                unsigned char c = (unsigned char) text[*i];
                unsigned u, lo;

                if (c == '"') {
                        if (*i - start > limits->max_string_bytes)
                                return -GL_FRAME_ERR_STRING_TOO_LONG;
                        return 0;
                }
                if (c < 0x20)
                        return -GL_FRAME_ERR_JSON_SYNTAX;
                if (c >= 0x80) {
                        size_t n = utf8_sequence(text + *i, len - *i);
                        if (n == 0)
                                return -GL_FRAME_ERR_JSON_SYNTAX;
                        *i += n - 1;
                        continue;
                }
                if (c != '\\')
                        continue;
                if (++*i >= len)
                        return -GL_FRAME_ERR_JSON_SYNTAX;
                if (strchr("\"\\/bfnrt", text[*i]) && text[*i] != '\0')
                        continue;
                if (text[*i] != 'u' || hex4(text + *i + 1, len - *i - 1, &u) < 0 || u == 0)
                        return -GL_FRAME_ERR_JSON_SYNTAX;
                *i += 4;
                if (u >= 0xdc00 && u <= 0xdfff)
                        return -GL_FRAME_ERR_JSON_SYNTAX; /* lone low surrogate */
                if (u >= 0xd800 && u <= 0xdbff) {
                        if (len - *i < 3 || text[*i + 1] != '\\' || text[*i + 2] != 'u' ||
                            hex4(text + *i + 3, len - *i - 3, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                                return -GL_FRAME_ERR_JSON_SYNTAX; /* unpaired high surrogate */
                        *i += 6;
                }
        }
        return -GL_FRAME_ERR_JSON_SYNTAX; /* unterminated */
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Scans a number at text[*i] by RFC 8259's grammar; leaves *i on its last
 * character.  Integers (no fraction, no exponent) must fit int64. */
static int scan_number(const char *text, size_t len, size_t *i) {
        size_t p = *i, digits;
        bool negative = false, integer = true;

        if (text[p] == '-') {
                negative = true;
                p++;
        }
        if (p >= len || !is_digit(text[p]))
                return -GL_FRAME_ERR_JSON_SYNTAX;
        if (text[p] == '0' && p + 1 < len && is_digit(text[p + 1]))
                return -GL_FRAME_ERR_JSON_SYNTAX; /* leading zero */
        digits = p;
        while (p < len && is_digit(text[p]))
                p++;
        digits = p - digits;
        if (p < len && text[p] == '.') {
                integer = false;
                if (++p >= len || !is_digit(text[p]))
                        return -GL_FRAME_ERR_JSON_SYNTAX;
                while (p < len && is_digit(text[p]))
                        p++;
        }
        if (p < len && (text[p] == 'e' || text[p] == 'E')) {
                integer = false;
                if (++p < len && (text[p] == '+' || text[p] == '-'))
                        p++;
                if (p >= len || !is_digit(text[p]))
                        return -GL_FRAME_ERR_JSON_SYNTAX;
                while (p < len && is_digit(text[p]))
                        p++;
        }
        if (integer && digits >= 19) {
                /* compare with 9223372036854775807 / ...808 digit by digit */
                const char *max = negative ? "9223372036854775808" : "9223372036854775807";
                const char *d = text + p - digits;

                if (digits > 19 || memcmp(d, max, 19) > 0)
                        return -GL_FRAME_ERR_JSON_SYNTAX;
        }
        *i = p - 1;
        return 0;
}

static int prescan(const char *text, size_t len, const GlLimits *limits) {
        uint32_t depth = 0;
        int r;

        for (size_t i = 0; i < len; i++) {
                char c = text[i];

                switch (c) {
                case '"':
                        r = scan_string(text, len, &i, limits);
                        if (r < 0)
                                return r;
                        break;
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
                        break;
                case '-':
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
                        r = scan_number(text, len, &i);
                        if (r < 0)
                                return r;
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

int gl_json_check_text(const char *text, size_t len, const GlLimits *limits) {
        if (len > limits->max_json_bytes)
                return -GL_FRAME_ERR_JSON_TOO_LARGE;
        if (len == 0)
                return -GL_FRAME_ERR_JSON_MISSING;
        if (memchr(text, '\0', len))
                return -GL_FRAME_ERR_JSON_SYNTAX;
        return prescan(text, len, limits);
}

static bool only_space(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!strchr(" \t\r\n", s[i]))
                        return false;
        return true;
}

json_tokener *gl_json_tokener_new(const GlLimits *limits) {
        json_tokener *tok = json_tokener_new_ex(2 * (int) limits->max_json_depth + 2);

        if (tok)
                json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        return tok;
}

int gl_json_parse(const char *text, size_t len, const GlLimits *limits, json_object **ret) {
        json_tokener *tok = gl_json_tokener_new(limits);
        int r;

        if (!tok)
                return -GL_FRAME_ERR_JSON_SYNTAX;
        r = gl_json_parse_with(tok, text, len, limits, ret);
        json_tokener_free(tok);
        return r;
}

int gl_json_parse_with(json_tokener *tok, const char *text, size_t len, const GlLimits *limits, json_object **ret) {
        json_object *obj;
        enum json_tokener_error jerr;
        int r;

        r = gl_json_check_text(text, len, limits);
        if (r < 0)
                return r;

        json_tokener_reset(tok);
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
