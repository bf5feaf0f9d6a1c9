/* SPDX-License-Identifier: MIT */
/*
 * The demo message, pbring.demo.v1.DeviceEvent, as the `pbring` command
 * sends and checks it: the same fields, padding pattern and JSON that the
 * Go and Python demos use, so any producer can be checked by any consumer.
 */
#ifndef PBR_DEMO_EVENT_H
#define PBR_DEMO_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pbring.h"
#include "pbring/demo.h"
#include "pbring/pb.h"
#include "pbring/demo/v1/device.pb.h"

#define DEMO_ID_MAX 64

/* Blob byte i of every demo message: a fixed pattern, so a consumer can
 * tell a torn or corrupted blob from a good one without the producer. */
static inline uint8_t demo_blob_byte(size_t i)
{
	return (uint8_t)(i * 131u + 7u);
}

struct demo_event {
	pbring_demo_v1_DeviceEvent msg;
	uint8_t *blob; /* size bytes of the pattern */
	uint32_t size;
	struct pbr_span span; /* what the encoder writes for blob */
};

/* Prepare producer k of process pid to send messages with size blob bytes. */
int demo_event_init(struct demo_event *e, int pid, unsigned k, uint32_t size);
void demo_event_fini(struct demo_event *e);

/* Encode message seq straight into a slot and commit it (CRC, timestamp,
 * and the trace context @traceparent, checked by the caller, unless NULL;
 * and unless @source is NULL, the source id {source[0], source[1] + seq},
 * format 1.3). */
int demo_event_send(struct pbr_producer *p, struct demo_event *e, uint64_t seq,
		    int64_t timeout_ns, const char *traceparent,
		    const uint64_t *source);

/* A decoded DeviceEvent; blob points into the slot until release. */
struct demo_decoded {
	char id[DEMO_ID_MAX + 1];
	int32_t status;
	uint64_t seq, sent_ns;
	const uint8_t *blob;
	size_t blob_len;
};

/* Bytes of the well-formed UTF-8 character at s (strict: no overlong
 * forms, surrogates or code points past U+10FFFF), 0 if it is not one or
 * s is at its NUL. The demo decoder's check of ids, and the command's
 * JSON logs. */
unsigned demo_utf8_len(const unsigned char *s);

/* Verify the CRC and decode in place: 0, or -EBADMSG. */
int demo_event_decode(const struct pbr_view *v, struct demo_decoded *d);

/* Is the blob the demo pattern? */
bool demo_blob_ok(const struct demo_decoded *d);

/* Canonical protobuf JSON of d into buf (NUL-terminated); returns the
 * length, or 0 if buf is too small. */
size_t demo_event_json(const struct demo_decoded *d, char *buf, size_t cap);

#endif /* PBR_DEMO_EVENT_H */
