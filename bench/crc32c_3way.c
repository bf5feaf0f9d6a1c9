/* SPDX-License-Identifier: MIT */
/*
 * CRC32C with three crc32 streams in flight (after Mark Adler's crc32c.c,
 * the method of Intel's "Fast CRC computation for iSCSI polynomial").
 *
 * Why: the crc32 instruction has a latency of 3 cycles and a throughput
 * of 1 per cycle, so one dependent stream (codec/crc32c.c today) reaches
 * a third of what the unit can do. Three streams over three adjacent
 * blocks keep it busy; the block CRCs are then joined by "appending
 * zeros" with precomputed GF(2) operator tables: crc(A||B) =
 * shift(crc(A), |B|) ^ crc0(B).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c_3way.h"
#include "pbring.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_SSE42 1
#endif

#define POLY 0x82F63B78u
#define LONG_BLK 8192u
#define SHORT_BLK 256u

static uint32_t zeros_long[4][256], zeros_short[4][256];
static bool use_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

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

/* The operator that appends len zero bytes (len a power of two). */
static void zeros_op(uint32_t *even, size_t len)
{
	uint32_t odd[32], row = 1;
	int n;

	odd[0] = POLY; /* one zero bit */
	for (n = 1; n < 32; n++, row <<= 1)
		odd[n] = row;
	gf2_square(even, odd); /* two bits */
	gf2_square(odd, even); /* four bits */
	for (;;) {
		gf2_square(even, odd); /* 1, 4, 16 ... bytes */
		len >>= 1;
		if (!len)
			return;
		gf2_square(odd, even); /* 2, 8, 32 ... bytes */
		len >>= 1;
		if (!len)
			break;
	}
	memcpy(even, odd, sizeof(odd));
}

/* Byte-wise tables of that operator, so a shift is four lookups. */
static void zeros_tables(uint32_t t[4][256], size_t len)
{
	uint32_t op[32], n;

	zeros_op(op, len);
	for (n = 0; n < 256; n++) {
		t[0][n] = gf2_times(op, n);
		t[1][n] = gf2_times(op, n << 8);
		t[2][n] = gf2_times(op, n << 16);
		t[3][n] = gf2_times(op, n << 24);
	}
}

static void init(void)
{
	zeros_tables(zeros_long, LONG_BLK);
	zeros_tables(zeros_short, SHORT_BLK);
#ifdef HAVE_SSE42
	__builtin_cpu_init();
	use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static inline uint32_t shift(uint32_t t[4][256], uint32_t crc)
{
	return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^
	       t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

#ifdef HAVE_SSE42
static inline uint64_t word(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

/* Three streams over [p, p + 3 * blk); returns the running CRC. */
__attribute__((target("sse4.2"))) static uint64_t
three(uint64_t c0, const uint8_t *p, size_t blk, uint32_t t[4][256])
{
	uint64_t c1 = 0, c2 = 0;
	const uint8_t *end = p + blk;

	for (; p < end; p += 8) {
		c0 = _mm_crc32_u64(c0, word(p));
		c1 = _mm_crc32_u64(c1, word(p + blk));
		c2 = _mm_crc32_u64(c2, word(p + 2 * blk));
	}
	c0 = shift(t, (uint32_t)c0) ^ c1;
	return shift(t, (uint32_t)c0) ^ c2;
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	for (; n && ((uintptr_t)p & 7); n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	for (; n >= 3 * LONG_BLK; p += 3 * LONG_BLK, n -= 3 * LONG_BLK)
		c = three(c, p, LONG_BLK, zeros_long);
	for (; n >= 3 * SHORT_BLK; p += 3 * SHORT_BLK, n -= 3 * SHORT_BLK)
		c = three(c, p, SHORT_BLK, zeros_short);
	for (; n >= 8; p += 8, n -= 8)
		c = _mm_crc32_u64(c, word(p));
	for (; n; n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t bench_crc32c_3way(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, init);
#ifdef HAVE_SSE42
	if (use_hw)
		return ~crc_hw(~crc, buf, len);
#endif
	return pbr_crc32c(crc, buf, len);
}
