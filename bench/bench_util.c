/* SPDX-License-Identifier: MIT */
/* Helpers shared by the micro benchmarks and pbring-bench. */
#include <errno.h>
#include <unistd.h>

#include <pb_encode.h>

#include "bench_util.h"

static size_t event_size(struct demo_event *e, uint32_t blob)
{
	size_t n = 0;

	e->span.len = blob;
	if (!pb_get_encoded_size(&n, pbring_demo_v1_DeviceEvent_fields,
				 &e->msg))
		return SIZE_MAX;
	return n;
}

int bench_event_init(struct demo_event *e, uint32_t msg_bytes)
{
	uint32_t blob = msg_bytes;
	int rc = demo_event_init(e, (int)getpid(), 0, msg_bytes);

	if (rc)
		return rc;
	/* Typical field values: a 1e12-ns clock, a mid-sized sequence. */
	e->msg.seq = 100000;
	e->msg.status = 1;
	e->msg.sent_ns = 1000000000000ull;
	while (blob && event_size(e, blob) > msg_bytes)
		blob--;
	if (event_size(e, blob) > msg_bytes) {
		demo_event_fini(e);
		return -EMSGSIZE;
	}
	e->size = blob;
	e->span.len = blob;
	return 0;
}

uint32_t bench_slot_size(uint32_t msg_bytes)
{
	uint64_t s = (uint64_t)msg_bytes + PBR_SLOT_HDR_SIZE + 32;

	return (uint32_t)((s + 127) & ~127ull);
}
