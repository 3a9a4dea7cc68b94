/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <string.h>

#include "crc32c-private.h"
#include "crc32c.h"

/* Known answers: RFC 3720 appendix B.4 and the common check value. */
static void test_known_answers(void) {
        uint8_t zeros[32] = { 0 }, ones[32], inc[32], dec[32];

        memset(ones, 0xff, sizeof(ones));
        for (int i = 0; i < 32; i++) {
                inc[i] = (uint8_t) i;
                dec[i] = (uint8_t) (31 - i);
        }
        g_assert_cmphex(gl_crc32c(0, "123456789", 9), ==, 0xe3069283);
        g_assert_cmphex(gl_crc32c(0, zeros, 32), ==, 0x8a9136aa);
        g_assert_cmphex(gl_crc32c(0, ones, 32), ==, 0x62a8ab43);
        g_assert_cmphex(gl_crc32c(0, inc, 32), ==, 0x46dd794e);
        g_assert_cmphex(gl_crc32c(0, dec, 32), ==, 0x113fdb5c);
        g_assert_cmphex(gl_crc32c(0, NULL, 0), ==, 0);
}

static void test_chaining(void) {
        g_autofree uint8_t *buf = g_malloc(5000);

        for (size_t i = 0; i < 5000; i++)
                buf[i] = (uint8_t) g_test_rand_int();
        for (size_t split = 0; split <= 5000; split += 37)
                g_assert_cmphex(gl_crc32c(gl_crc32c(0, buf, split), buf + split, 5000 - split), ==,
                                gl_crc32c(0, buf, 5000));
}

/* Every kernel this CPU can run agrees with the portable one, for every
 * length around the kernels' block sizes and every alignment. */
static void test_kernels_agree(void) {
        const size_t max = 3 * 8192 + 3 * 256 + 700;
        g_autofree uint8_t *buf = g_malloc(max + 8);
        unsigned checked = 0;

        for (size_t i = 0; i < max + 8; i++)
                buf[i] = (uint8_t) g_test_rand_int();
        for (int impl = 0; impl < _GL_CRC32C_IMPL_MAX; impl++) {
                if (!gl_crc32c_impl_supported((GlCrc32cImpl) impl)) {
                        g_test_message("kernel %s not supported here", gl_crc32c_impl_name((GlCrc32cImpl) impl));
                        continue;
                }
                for (size_t len = 0; len <= max; len += len < 2048 ? 1 : 61)
                        for (size_t off = 0; off < 8; off += 3) {
                                uint32_t want = gl_crc32c_sw(0x1234567u, buf + off, len);
                                g_assert_cmphex(gl_crc32c_impl((GlCrc32cImpl) impl, 0x1234567u, buf + off, len), ==,
                                                want);
                        }
                checked++;
        }
        g_assert_cmpuint(checked, >=, 1);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/crc32c/known-answers", test_known_answers);
        g_test_add_func("/crc32c/chaining", test_chaining);
        g_test_add_func("/crc32c/kernels-agree", test_kernels_agree);
        return g_test_run();
}
