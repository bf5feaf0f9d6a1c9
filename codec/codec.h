/* SPDX-License-Identifier: MIT */
/*
 * Private interface of the codec layer (nanopb in slots, schema
 * identity). Not installed.
 */
#ifndef PBR_CODEC_H
#define PBR_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pbring.h"

/* --- errors (pbcodec.c) --------------------------------------------------- */

/* Longest nanopb or codec message kept, NUL included. */
#define PBR_ERRMSG_MAX 96

/* Record why a codec call failed on this thread; @who is the producer for
 * an encode failure, NULL otherwise. Returns @err for tail calls. */
int pbri_codec_fail(const struct pbr_producer *who, int err, const char *msg);

/* --- the fast path of flat messages (pbfast.c) ---------------------------- */

struct pb_msgdesc_s;

/* Encode @msg into @buf as pb_encode() would: 1 with *written set, or 0
 * if this path does not handle the message or it failed (run nanopb).
 * With @crc, on success *crc is the CRC32C of the encoding continued from
 * its value, taken as the bytes are written (a large span read once). */
int pbri_fast_encode(const struct pb_msgdesc_s *d, const void *msg, void *buf,
		     size_t cap, size_t *written, uint32_t *crc);

/* Decode @len bytes at @buf into @msg as pb_decode() would: 1 done; 0 not
 * handled (nothing touched: run nanopb); -1 failed, *err says why. */
int pbri_fast_decode(const struct pb_msgdesc_s *d, void *msg, const void *buf,
		     size_t len, const char **err);

/* Tests: true makes both return 0 (nanopb's path). */
extern bool pbri_fast_off;

/* --- generated: the demo FileDescriptorSet (pbring_demo_fds.c) ------------ */
extern const unsigned char pbr_demo_fds[];
extern const size_t pbr_demo_fds_len;

#endif /* PBR_CODEC_H */
