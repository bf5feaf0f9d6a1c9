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

/* --- generated: the demo FileDescriptorSet (pbring_demo_fds.c) ------------ */
extern const unsigned char pbr_demo_fds[];
extern const size_t pbr_demo_fds_len;

#endif /* PBR_CODEC_H */
