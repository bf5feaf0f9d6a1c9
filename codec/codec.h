/* SPDX-License-Identifier: MIT */
/*
 * Private interface of the codec layer (CRC32C, nanopb in slots, schema
 * identity). Not installed. The tests include it to reach both CRC32C
 * implementations directly.
 */
#ifndef PBR_CODEC_H
#define PBR_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pbring.h"

/* --- CRC32C (crc32c.c) ---------------------------------------------------- */

/* Both take and return the plain CRC value (no pre/post inversion is
 * visible to callers), exactly like pbr_crc32c(). */
uint32_t pbri_crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* Only valid when pbri_crc32c_hw_available(); falls back to software
 * otherwise (so that tests may call it unconditionally). */
uint32_t pbri_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool pbri_crc32c_hw_available(void);

/* --- errors (pbcodec.c) --------------------------------------------------- */

/* Longest nanopb or codec message kept, NUL included. */
#define PBR_ERRMSG_MAX 96

/* Record why a codec call failed on this thread; @who is the producer for
 * an encode failure, NULL otherwise. Returns @err for tail calls. */
int pbri_codec_fail(const struct pbr_producer *who, int err, const char *msg);

/* --- generated: the demo FileDescriptorSet (pbring_demo_fds.c) ------------ */
extern const unsigned char pbr_demo_fds[];
extern const size_t pbr_demo_fds_len;

#endif /* PBR_CODEC_H */
