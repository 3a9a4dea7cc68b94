/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OS-neutral part of the stats collector: the JSON helpers every
 * implementation uses. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats-private.h"

json_object *stats_object_new(StatsBuild *b) {
        json_object *o = json_object_new_object();

        if (!o)
                b->r = -ENOMEM;
        return o;
}

json_object *stats_array_new(StatsBuild *b) {
        json_object *a = json_object_new_array();

        if (!a)
                b->r = -ENOMEM;
        return a;
}

void stats_add(StatsBuild *b, json_object *o, const char *key, json_object *v) {
        if (!o || !v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                b->r = -ENOMEM;
        }
}

void stats_append(StatsBuild *b, json_object *array, json_object *v) {
        if (!array || !v || json_object_array_add(array, v) < 0) {
                json_object_put(v);
                b->r = -ENOMEM;
        }
}

void stats_add_u64(StatsBuild *b, json_object *o, const char *key, uint64_t v) {
        stats_add(b, o, key, json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t) v));
}

void stats_add_bool(StatsBuild *b, json_object *o, const char *key, bool v) {
        stats_add(b, o, key, json_object_new_boolean(v));
}

void stats_add_string(StatsBuild *b, json_object *o, const char *key, const char *s) {
        char *clean = stats_utf8_sanitize(s, strlen(s));

        if (!clean) {
                b->r = -ENOMEM;
                return;
        }
        stats_add(b, o, key, json_object_new_string(clean));
        free(clean);
}

void stats_add_number(StatsBuild *b, json_object *o, const char *key, double v, unsigned decimals) {
        static const uint64_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };
        char buf[64];
        uint64_t scaled, ip, fp;
        double mag;
        int n;

        if (!isfinite(v))
                return;
        if (decimals > 6)
                decimals = 6;
        mag = fabs(v) * (double) pow10[decimals];
        if (mag >= 9007199254740992.0) { /* beyond exact integers: let json-c print it */
                stats_add(b, o, key, json_object_new_double(v));
                return;
        }
        scaled = (uint64_t) llround(mag);
        ip = scaled / pow10[decimals];
        fp = scaled % pow10[decimals];
        n = snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%0*" PRIu64, v < 0 && scaled > 0 ? "-" : "", ip, (int) decimals,
                     fp);
        if (n < 0 || (size_t) n >= sizeof(buf)) {
                b->r = -ENOMEM;
                return;
        }
        /* Keep one digit after the point: "50.0", "0.5", "33.33". */
        while (n > 2 && buf[n - 1] == '0' && buf[n - 2] != '.')
                buf[--n] = '\0';
        stats_add(b, o, key,
                  json_object_new_double_s(
                          (v < 0 && scaled > 0 ? -1.0 : 1.0) * (double) scaled / (double) pow10[decimals], buf));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
        uint32_t cp;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                cp = s[0] & 0x1fu;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                cp = s[0] & 0x0fu;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                cp = s[0] & 0x07u;
        } else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

char *stats_utf8_sanitize(const char *s, size_t len) {
        const unsigned char *u = (const unsigned char *) s;
        char *out, *p;

        /* Each invalid byte becomes the 3 bytes of U+FFFD. */
        if (len > (SIZE_MAX - 1) / 3)
                return NULL;
        out = malloc(len * 3 + 1);
        if (!out)
                return NULL;
        p = out;
        for (size_t i = 0; i < len;) {
                size_t l = utf8_valid_len(u + i, len - i);

                if (l == 0) {
                        memcpy(p, "\xef\xbf\xbd", 3);
                        p += 3;
                        i++;
                        continue;
                }
                memcpy(p, s + i, l);
                p += l;
                i += l;
        }
        *p = '\0';
        return out;
}
