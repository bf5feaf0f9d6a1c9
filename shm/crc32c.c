/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and
 * final XOR 0xFFFFFFFF): the checksum of a slot's payload (FORMAT.md,
 * slot header). crc32c("123456789") == 0xE3069283.
 *
 * Three implementations with identical results, chosen at run time:
 * carry-less multiplication folding (AVX-512 VPCLMULQDQ, 256 bytes per
 * step) for buffers of 512 bytes and more, the SSE4.2 crc32 instruction
 * (three streams) for the rest and for CPUs without VPCLMULQDQ, and a
 * portable slicing-by-8 table fallback. No Debian 12 package provides
 * CRC32C for C, hence this file.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PBR_CRC_HAVE_SSE42 1
#define PBR_CRC_HAVE_FOLD 1
#endif

#include "internal.h"

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static bool crc_use_hw, crc_use_fold;
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

#ifdef PBR_CRC_HAVE_FOLD
/*
 * Folding with carry-less multiplication (Intel, "Fast CRC Computation
 * for Generic Polynomials Using PCLMULQDQ", 2009, in the reflected form
 * of corsix/fast-crc32). A 128-bit lane of message bits X = A x^64 + B
 * (A: its first 8 bytes) moved D bytes ahead is X x^(8D) mod P; with
 * K = x^n mod P as a reflected 32-bit value, clmul(A, K) is A K x^33 in
 * lane order, so A is multiplied by x^(8D+31) and B by x^(8D-33), and the
 * sum XORed into the lane D bytes on. Four 512-bit accumulators step 256
 * bytes; at the end they are folded into one 128-bit lane, whose CRC the
 * crc32 instruction takes (crc32(0, X) = X x^32 mod P).
 */
#define FOLD_STEP ((size_t)256)
static const unsigned fold_dist[] = {256, 192, 128, 64, 48, 32, 16};
#define FOLD_K 7
static uint64_t fold_k[FOLD_K][2]; /* per distance: A's, B's constant */

/* x^n mod P, reflected (bit 31 is x^0). */
static uint32_t xn_mod_p(unsigned n)
{
	uint32_t v = 0x80000000u;

	while (n--)
		v = (v >> 1) ^ (CRC32C_POLY & (0u - (v & 1u)));
	return v;
}

#define FOLD_TARGET                                                            \
	__attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))

FOLD_TARGET static inline __m512i fold4(__m512i x, __m512i k, __m512i next)
{
	/* 0x96: the XOR of all three operands. */
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
					 _mm512_clmulepi64_epi128(x, k, 0x11),
					 next, 0x96);
}

FOLD_TARGET static inline __m512i fold_k4(unsigned i)
{
	return _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)fold_k[i]));
}

FOLD_TARGET static inline __m128i fold1(__m128i x, unsigned i, __m128i next)
{
	__m128i k = _mm_loadu_si128((const void *)fold_k[i]);

	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
					   _mm_clmulepi64_si128(x, k, 0x11)),
			     next);
}

/* CRC register @c over *@n >= 2 * FOLD_STEP bytes at *@p: consumes whole
 * steps, leaving fewer than FOLD_STEP bytes for the caller. With @dst,
 * also stores what it loads there: a copy that reads the bytes once. */
FOLD_TARGET static inline __attribute__((always_inline)) __m512i
fold_load(const uint8_t *p, uint8_t *dst, size_t at)
{
	__m512i v = _mm512_loadu_si512(p + at);

	if (dst)
		_mm512_storeu_si512(dst + at, v);
	return v;
}

FOLD_TARGET static inline __attribute__((always_inline)) uint32_t
crc_fold_body(uint32_t c, const uint8_t **pp, size_t *np, uint8_t *dst)
{
	const uint8_t *p = *pp;
	size_t n = *np;
	__m512i k = fold_k4(0), x0, x1, x2, x3, z;
	__m128i x;
	uint64_t r;

	x0 = fold_load(p, dst, 0);
	x1 = fold_load(p, dst, 64);
	x2 = fold_load(p, dst, 128);
	x3 = fold_load(p, dst, 192);
	/* The register so far is XORed into the first 32 message bits. */
	x0 = _mm512_xor_si512(
		x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)c)));
	for (p += FOLD_STEP, n -= FOLD_STEP, dst = dst ? dst + FOLD_STEP : 0;
	     n >= FOLD_STEP;
	     p += FOLD_STEP, n -= FOLD_STEP, dst = dst ? dst + FOLD_STEP : 0) {
		x0 = fold4(x0, k, fold_load(p, dst, 0));
		x1 = fold4(x1, k, fold_load(p, dst, 64));
		x2 = fold4(x2, k, fold_load(p, dst, 128));
		x3 = fold4(x3, k, fold_load(p, dst, 192));
	}
	z = fold4(x0, fold_k4(1),
		  fold4(x1, fold_k4(2), fold4(x2, fold_k4(3), x3)));
	x = fold1(_mm512_extracti32x4_epi32(z, 0), 4,
		  fold1(_mm512_extracti32x4_epi32(z, 1), 5,
			fold1(_mm512_extracti32x4_epi32(z, 2), 6,
			      _mm512_extracti32x4_epi32(z, 3))));
	r = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
	r = _mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(x, 1));
	*pp = p;
	*np = n;
	return (uint32_t)r;
}

FOLD_TARGET static uint32_t crc_fold(uint32_t c, const uint8_t **pp, size_t *np)
{
	return crc_fold_body(c, pp, np, NULL);
}

FOLD_TARGET static uint32_t crc_fold_copy(uint32_t c, const uint8_t **pp,
					  size_t *np, uint8_t *dst)
{
	return crc_fold_body(c, pp, np, dst);
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n);

/* Constants, then a self-check against the tables before first use. */
static void crc_fold_init(void)
{
	uint8_t buf[2 * FOLD_STEP + 77];
	const uint8_t *p = buf;
	size_t i, n = sizeof(buf);
	uint32_t c;

	if (!__builtin_cpu_supports("sse4.2") ||
	    !__builtin_cpu_supports("avx512f") ||
	    !__builtin_cpu_supports("avx512vl") ||
	    !__builtin_cpu_supports("vpclmulqdq"))
		return;
	for (i = 0; i < FOLD_K; i++) {
		fold_k[i][0] = xn_mod_p(8 * fold_dist[i] + 31);
		fold_k[i][1] = xn_mod_p(8 * fold_dist[i] - 33);
	}
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131u + 7u);
	c = crc_fold(0x12345678u, &p, &n);
	crc_use_fold = crc_sw(c, p, n) == crc_sw(0x12345678u, buf, sizeof(buf));
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
#ifdef PBR_CRC_HAVE_FOLD
	crc_fold_init();
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
#define CRC_LONG ((size_t)8192)
#define CRC_SHORT ((size_t)256)

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
#ifdef PBR_CRC_HAVE_FOLD
	if (crc_use_fold && n >= 2 * FOLD_STEP)
		c64 = crc_fold((uint32_t)c64, &p, &n);
#endif
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

uint32_t pbri_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
#ifdef PBR_CRC_HAVE_FOLD
	const uint8_t *p = src;
	size_t n = len;
	uint32_t c;

	pthread_once(&crc_once, crc_init);
	if (crc_use_fold && len >= 2 * FOLD_STEP) {
		c = crc_fold_copy(~crc, &p, &n, dst);
		dst = (uint8_t *)dst + (p - (const uint8_t *)src);
		memcpy(dst, p, n);
		return ~crc_hw(c, p, n);
	}
#endif
	memcpy(dst, src, len);
	return pbr_crc32c(crc, dst, len);
}

uint32_t pbr_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return pbri_crc32c_hw(crc, buf, len);
}
