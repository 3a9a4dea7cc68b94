/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * x86-64 CRC32C kernels, selected at run time.
 *
 * sse4.2: the crc32 instruction has a latency of 3 cycles and a throughput
 * of one per cycle, so long buffers are split into three interleaved
 * streams whose registers are merged with the precomputed "advance over N
 * zero bytes" operator (linear in the register value).
 *
 * avx512-vpclmulqdq: classic carry-less multiplication folding (the Intel
 * "Fast CRC Computation Using PCLMULQDQ" scheme) on 512-bit registers.  In
 * the reflected bit order, a 64-bit quadword V stands for the polynomial
 * sum(v_i * x^(63-i)) and a 128-bit lane X for X.lo * x^64 + X.hi; a
 * carry-less product of two quadwords, read as a 128-bit reflected value,
 * is the polynomial product times x.  Moving a lane forward by F bits
 * multiplies it by x^F, so
 *
 *   fold(X) = clmul(X.lo, x^(F+63) mod P) ^ clmul(X.hi, x^(F-1) mod P)
 *
 * is congruent modulo P to X moved F bits ahead; the constants come from
 * crc32c-gen.c.  The initial register is XORed into the first four bytes
 * (equivalent for a reflected CRC) and the last folded lane is finished
 * with two crc32 instructions, which reduce it modulo P.
 */
#include <immintrin.h>
#include <string.h>

#include "crc32c-private.h"
#include "crc32c-tables.h"

#define GL_TARGET_SSE42 __attribute__((target("sse4.2")))
#define GL_TARGET_VPCLMUL __attribute__((target("sse4.2,pclmul,avx512f,avx512vl,vpclmulqdq")))

bool gl_crc32c_have_sse42(void) {
        return __builtin_cpu_supports("sse4.2");
}

bool gl_crc32c_have_vpclmul(void) {
        return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") &&
               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("vpclmulqdq");
}

static inline uint64_t load64(const uint8_t *p) {
        uint64_t v;
        memcpy(&v, p, sizeof(v)); /* x86 is little-endian */
        return v;
}

static inline uint32_t shift(const uint32_t t[4][256], uint32_t reg) {
        return t[0][reg & 0xff] ^ t[1][(reg >> 8) & 0xff] ^ t[2][(reg >> 16) & 0xff] ^ t[3][reg >> 24];
}

GL_TARGET_SSE42 static uint64_t crc_run(uint64_t reg, const uint8_t *p, size_t len) {
        for (; len >= 8; p += 8, len -= 8)
                reg = _mm_crc32_u64(reg, load64(p));
        return reg;
}

GL_TARGET_SSE42 static uint32_t crc_tail(uint32_t reg, const uint8_t *p, size_t len) {
        if (len == 0)
                return reg;
        reg = (uint32_t) crc_run(reg, p, len);
        p += len & ~(size_t) 7;
        for (len &= 7; len > 0; len--)
                reg = _mm_crc32_u8(reg, *p++);
        return reg;
}

GL_TARGET_SSE42 static const uint8_t *crc_3way(uint32_t *reg, const uint8_t *p, size_t *len, size_t n,
                                               const uint32_t zeros[4][256]) {
        while (*len >= 3 * n) {
                uint64_t a = *reg, b = 0, c = 0;
                const uint8_t *end = p + n;

                do {
                        a = _mm_crc32_u64(a, load64(p));
                        b = _mm_crc32_u64(b, load64(p + n));
                        c = _mm_crc32_u64(c, load64(p + 2 * n));
                        p += 8;
                } while (p < end);
                *reg = shift(zeros, shift(zeros, (uint32_t) a) ^ (uint32_t) b) ^ (uint32_t) c;
                p += 2 * n;
                *len -= 3 * n;
        }
        return p;
}

GL_TARGET_SSE42 uint32_t gl_crc32c_sse42(uint32_t reg, const void *buf, size_t len) {
        const uint8_t *p = buf;

        p = crc_3way(&reg, p, &len, GL_CRC32C_LONG, gl_crc32c_zeros_long);
        p = crc_3way(&reg, p, &len, GL_CRC32C_SHORT, gl_crc32c_zeros_short);
        return crc_tail(reg, p, len);
}

GL_TARGET_VPCLMUL static inline __m128i fold128(__m128i x, __m128i k, __m128i data) {
        return _mm_ternarylogic_epi64(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11), data, 0x96);
}

GL_TARGET_VPCLMUL static inline __m512i fold512(__m512i x, __m512i k, __m512i data) {
        return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11),
                                         data, 0x96);
}

GL_TARGET_VPCLMUL uint32_t gl_crc32c_vpclmul(uint32_t reg, const void *buf, size_t len) {
        const uint8_t *p = buf;
        __m512i x0, x1, x2, x3, k;
        __m128i a, k128;

        if (len < 256)
                return gl_crc32c_sse42(reg, buf, len);

        x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_castsi128_si512(_mm_cvtsi32_si128((int) reg)));
        x1 = _mm512_loadu_si512(p + 64);
        x2 = _mm512_loadu_si512(p + 128);
        x3 = _mm512_loadu_si512(p + 192);
        p += 256;
        len -= 256;

        k = _mm512_broadcast_i32x4(
                _mm_set_epi64x((long long) GL_CRC32C_FOLD2048_HI, (long long) GL_CRC32C_FOLD2048_LO));
        for (; len >= 256; p += 256, len -= 256) {
                x0 = fold512(x0, k, _mm512_loadu_si512(p));
                x1 = fold512(x1, k, _mm512_loadu_si512(p + 64));
                x2 = fold512(x2, k, _mm512_loadu_si512(p + 128));
                x3 = fold512(x3, k, _mm512_loadu_si512(p + 192));
        }

        /* Four registers into one: each moves 64 bytes ahead into the next. */
        k = _mm512_broadcast_i32x4(_mm_set_epi64x((long long) GL_CRC32C_FOLD512_HI, (long long) GL_CRC32C_FOLD512_LO));
        x1 = fold512(x0, k, x1);
        x2 = fold512(x1, k, x2);
        x3 = fold512(x2, k, x3);

        /* Four lanes into one. */
        a = _mm512_extracti32x4_epi32(x3, 3);
        a = fold128(_mm512_extracti32x4_epi32(x3, 0),
                    _mm_set_epi64x((long long) GL_CRC32C_FOLD384_HI, (long long) GL_CRC32C_FOLD384_LO), a);
        a = fold128(_mm512_extracti32x4_epi32(x3, 1),
                    _mm_set_epi64x((long long) GL_CRC32C_FOLD256_HI, (long long) GL_CRC32C_FOLD256_LO), a);
        k128 = _mm_set_epi64x((long long) GL_CRC32C_FOLD128_HI, (long long) GL_CRC32C_FOLD128_LO);
        a = fold128(_mm512_extracti32x4_epi32(x3, 2), k128, a);

        for (; len >= 16; p += 16, len -= 16)
                a = fold128(a, k128, _mm_loadu_si128((const __m128i *) (const void *) p));

        reg = (uint32_t) _mm_crc32_u64(0, (uint64_t) _mm_cvtsi128_si64(a));
        reg = (uint32_t) _mm_crc32_u64(reg, (uint64_t) _mm_extract_epi64(a, 1));
        return crc_tail(reg, p, len);
}
