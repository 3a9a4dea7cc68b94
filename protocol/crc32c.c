/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "crc32c-private.h"
#include "crc32c-tables.h"
#include "crc32c.h"

static inline uint64_t load_le64(const uint8_t *p) {
        return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16 | (uint64_t) p[3] << 24 |
               (uint64_t) p[4] << 32 | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48 | (uint64_t) p[7] << 56;
}

uint32_t gl_crc32c_sw(uint32_t reg, const void *buf, size_t len) {
        const uint8_t *p = buf;
        const uint32_t(*t)[256] = gl_crc32c_table;

        while (len > 0 && ((uintptr_t) p & 7) != 0) {
                reg = (reg >> 8) ^ t[0][(reg ^ *p++) & 0xff];
                len--;
        }
        while (len >= 8) {
                uint64_t v = load_le64(p) ^ reg;

                reg = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^ t[4][(v >> 24) & 0xff] ^
                      t[3][(v >> 32) & 0xff] ^ t[2][(v >> 40) & 0xff] ^ t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
                p += 8;
                len -= 8;
        }
        while (len-- > 0)
                reg = (reg >> 8) ^ t[0][(reg ^ *p++) & 0xff];
        return reg;
}

bool gl_crc32c_impl_supported(GlCrc32cImpl impl) {
        switch (impl) {
        case GL_CRC32C_IMPL_SW:
                return true;
#if GL_CRC32C_X86
        case GL_CRC32C_IMPL_SSE42:
                return gl_crc32c_have_sse42();
        case GL_CRC32C_IMPL_VPCLMUL:
                return gl_crc32c_have_vpclmul();
#endif
        default:
                return false;
        }
}

const char *gl_crc32c_impl_name(GlCrc32cImpl impl) {
        static const char *const names[_GL_CRC32C_IMPL_MAX] = {
                [GL_CRC32C_IMPL_SW] = "slicing-by-8",
                [GL_CRC32C_IMPL_SSE42] = "sse4.2",
                [GL_CRC32C_IMPL_VPCLMUL] = "avx512-vpclmulqdq",
        };
        return impl < _GL_CRC32C_IMPL_MAX ? names[impl] : "unknown";
}

uint32_t gl_crc32c_impl(GlCrc32cImpl impl, uint32_t reg, const void *buf, size_t len) {
        switch (impl) {
#if GL_CRC32C_X86
        case GL_CRC32C_IMPL_SSE42:
                return gl_crc32c_sse42(reg, buf, len);
        case GL_CRC32C_IMPL_VPCLMUL:
                return gl_crc32c_vpclmul(reg, buf, len);
#endif
        default:
                return gl_crc32c_sw(reg, buf, len);
        }
}

uint32_t gl_crc32c(uint32_t crc, const void *buf, size_t len) {
        uint32_t reg = ~crc;

        if (len == 0)
                return crc;
#if GL_CRC32C_X86
        /* The folding kernel pays ~100 cycles of set-up; small inputs do
         * better on the crc32 instruction alone. */
        if (len >= 512 && gl_crc32c_have_vpclmul())
                reg = gl_crc32c_vpclmul(reg, buf, len);
        else if (gl_crc32c_have_sse42())
                reg = gl_crc32c_sse42(reg, buf, len);
        else
#endif
                reg = gl_crc32c_sw(reg, buf, len);
        return ~reg;
}
