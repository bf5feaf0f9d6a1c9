/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and
 * final XOR 0xFFFFFFFF): the checksum of a slot's payload (FORMAT.md,
 * slot header). crc32c("123456789") == 0xE3069283.
 *
 * Two implementations with identical results: the SSE4.2 crc32 instruction,
 * chosen at run time when the CPU has it, and a portable slicing-by-8
 * table fallback. No Debian 12 package provides CRC32C for C, hence this
 * file.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define PBR_CRC_HAVE_SSE42 1
#endif

#include "codec.h"

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static bool crc_use_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* Tables for slicing-by-8: crc_table[k][b] is the CRC of byte b followed
 * by k zero bytes, so eight table lookups fold eight input bytes. */
static void crc_init(void)
{
	uint32_t b, c, k;

	for (b = 0; b < 256; b++) {
		c = b;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
		crc_table[0][b] = c;
	}
	for (b = 0; b < 256; b++)
		for (k = 1; k < 8; k++)
			crc_table[k][b] =
				(crc_table[k - 1][b] >> 8) ^
				crc_table[0][crc_table[k - 1][b] & 0xFF];
#ifdef PBR_CRC_HAVE_SSE42
	__builtin_cpu_init();
	crc_use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
	uint32_t hi;

	/* Byte order of the loads is explicit, so the tables work on any
	 * host; alignment does not matter for byte loads. */
	for (; n >= 8; p += 8, n -= 8) {
		c ^= le32(p);
		hi = le32(p + 4);
		c = crc_table[7][c & 0xFF] ^ crc_table[6][(c >> 8) & 0xFF] ^
		    crc_table[5][(c >> 16) & 0xFF] ^ crc_table[4][c >> 24] ^
		    crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
		    crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
	}
	while (n--)
		c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xFF];
	return c;
}

#ifdef PBR_CRC_HAVE_SSE42
/* The target attribute lets this one function use crc32 while the rest
 * of the library stays baseline x86-64. */
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64, w;

	/* Align to 8 so the 64-bit loads never straddle a cache line. */
	for (; n && ((uintptr_t)p & 7); n--)
		c = _mm_crc32_u8(c, *p++);
	c64 = c;
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, sizeof(w));
		c64 = _mm_crc32_u64(c64, w);
	}
	c = (uint32_t)c64;
	while (n--)
		c = _mm_crc32_u8(c, *p++);
	return c;
}
#endif

uint32_t pbr_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw(~crc, buf, len);
}

uint32_t pbr_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
#ifdef PBR_CRC_HAVE_SSE42
	if (crc_use_hw)
		return ~crc_hw(~crc, buf, len);
#endif
	return ~crc_sw(~crc, buf, len);
}

bool pbr_crc32c_hw_available(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_use_hw;
}

uint32_t pbr_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return pbr_crc32c_hw(crc, buf, len);
}
