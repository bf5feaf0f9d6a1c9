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

#include "internal.h"

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static bool crc_use_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

#ifdef PBR_CRC_HAVE_SSE42
/* crc_zeros_long/short: append 8192 / 256 zero bytes (see crc_hw). */
static uint32_t crc_zeros_long[4][256], crc_zeros_short[4][256];

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
	int n;

	for (n = 0; n < 32; n++)
		sq[n] = gf2_times(mat, mat[n]);
}

/* Tables of the operator that appends len zero bytes (a power of two). */
static void crc_zeros(uint32_t t[4][256], size_t len)
{
	uint32_t even[32], odd[32], row = 1, n;

	odd[0] = CRC32C_POLY;
	for (n = 1; n < 32; n++, row <<= 1)
		odd[n] = row;
	gf2_square(even, odd);
	gf2_square(odd, even);
	for (;;) {
		gf2_square(even, odd);
		len >>= 1;
		if (!len)
			break;
		gf2_square(odd, even);
		len >>= 1;
		if (!len) {
			memcpy(even, odd, sizeof(odd));
			break;
		}
	}
	for (n = 0; n < 256; n++) {
		t[0][n] = gf2_times(even, n);
		t[1][n] = gf2_times(even, n << 8);
		t[2][n] = gf2_times(even, n << 16);
		t[3][n] = gf2_times(even, n << 24);
	}
}
#endif

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
	crc_zeros(crc_zeros_long, 8192);
	crc_zeros(crc_zeros_short, 256);
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
/*
 * Three crc32 streams over three adjacent blocks: the instruction's
 * latency is 3 cycles and its throughput 1 per cycle, so one dependent
 * stream runs at a third of the unit's speed. The block CRCs are joined
 * by "appending zeros" with GF(2) operator tables (crc_zeros_*), built
 * once in crc_init(): crc(A||B) = shift_|B|(crc(A)) ^ crc0(B).
 */
#define CRC_LONG 8192u
#define CRC_SHORT 256u

static inline uint32_t crc_shift(uint32_t t[4][256], uint32_t c)
{
	return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^
	       t[3][c >> 24];
}

static inline uint64_t crc_word(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

__attribute__((target("sse4.2"))) static uint64_t
crc_three(uint64_t c0, const uint8_t *p, size_t blk, uint32_t t[4][256])
{
	uint64_t c1 = 0, c2 = 0;
	const uint8_t *end = p + blk;

	for (; p < end; p += 8) {
		c0 = _mm_crc32_u64(c0, crc_word(p));
		c1 = _mm_crc32_u64(c1, crc_word(p + blk));
		c2 = _mm_crc32_u64(c2, crc_word(p + 2 * blk));
	}
	c0 = crc_shift(t, (uint32_t)c0) ^ c1;
	return crc_shift(t, (uint32_t)c0) ^ c2;
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;

	for (; n && ((uintptr_t)p & 7); n--)
		c64 = _mm_crc32_u8((uint32_t)c64, *p++);
	for (; n >= 3 * CRC_LONG; p += 3 * CRC_LONG, n -= 3 * CRC_LONG)
		c64 = crc_three(c64, p, CRC_LONG, crc_zeros_long);
	for (; n >= 3 * CRC_SHORT; p += 3 * CRC_SHORT, n -= 3 * CRC_SHORT)
		c64 = crc_three(c64, p, CRC_SHORT, crc_zeros_short);
	for (; n >= 8; p += 8, n -= 8)
		c64 = _mm_crc32_u64(c64, crc_word(p));
	for (; n; n--)
		c64 = _mm_crc32_u8((uint32_t)c64, *p++);
	return (uint32_t)c64;
}
#endif

uint32_t pbri_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw(~crc, buf, len);
}

uint32_t pbri_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
#ifdef PBR_CRC_HAVE_SSE42
	if (crc_use_hw)
		return ~crc_hw(~crc, buf, len);
#endif
	return ~crc_sw(~crc, buf, len);
}

bool pbri_crc32c_hw_available(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_use_hw;
}

uint32_t pbr_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return pbri_crc32c_hw(crc, buf, len);
}
