/* SPDX-License-Identifier: MIT */
/*
 * A prototype of the CRC32C change proposed for codec/crc32c.c, kept in
 * bench/ so that its speed can be measured next to the library's: three
 * independent crc32 streams per block, combined with shift tables.
 */
#ifndef PBR_BENCH_CRC32C_3WAY_H
#define PBR_BENCH_CRC32C_3WAY_H

#include <stddef.h>
#include <stdint.h>

/* Same convention and result as pbr_crc32c(). Needs SSE4.2; falls back to
 * pbr_crc32c() without it. */
uint32_t bench_crc32c_3way(uint32_t crc, const void *buf, size_t len);

#endif /* PBR_BENCH_CRC32C_3WAY_H */
