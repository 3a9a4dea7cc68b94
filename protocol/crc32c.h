/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * CRC32C (Castagnoli, iSCSI polynomial), as used by the frame header and
 * payload checksums.  Same calling convention as zlib's crc32(): start with
 * 0, and chaining is concatenation:
 *
 *   gl_crc32c(gl_crc32c(0, a, na), b, nb) == gl_crc32c(0, a || b, na + nb)
 *
 * The check value gl_crc32c(0, "123456789", 9) is 0xe3069283.  Uses the
 * SSE4.2 crc32 instruction or AVX-512 VPCLMULQDQ folding when the CPU has
 * them, slicing-by-8 tables otherwise.
 */
uint32_t gl_crc32c(uint32_t crc, const void *buf, size_t len);
