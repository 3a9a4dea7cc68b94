/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The individual CRC32C kernels, exposed for the unit tests and the
 * benchmark.  They work on the raw register (no pre- or post-inversion).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t gl_crc32c_sw(uint32_t reg, const void *buf, size_t len);

typedef enum GlCrc32cImpl {
        GL_CRC32C_IMPL_SW,
        GL_CRC32C_IMPL_SSE42,
        GL_CRC32C_IMPL_VPCLMUL,
        _GL_CRC32C_IMPL_MAX,
} GlCrc32cImpl;

/* Whether this build and this CPU can run an implementation. */
bool gl_crc32c_impl_supported(GlCrc32cImpl impl);
const char *gl_crc32c_impl_name(GlCrc32cImpl impl);
/* Runs the given implementation; it must be supported. */
uint32_t gl_crc32c_impl(GlCrc32cImpl impl, uint32_t reg, const void *buf, size_t len);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GL_CRC32C_X86 1
uint32_t gl_crc32c_sse42(uint32_t reg, const void *buf, size_t len);
uint32_t gl_crc32c_vpclmul(uint32_t reg, const void *buf, size_t len);
bool gl_crc32c_have_sse42(void);
bool gl_crc32c_have_vpclmul(void);
#else
#define GL_CRC32C_X86 0
#endif
