// SPDX-License-Identifier: MIT
/*
 * torture messages: every message names its logical producer and that
 * producer's counter, and carries bytes derived from both, so a reader can
 * tell an intact message from a torn or stale one without any other
 * information. Two thirds are raw sends (pbr_producer_send, which has the
 * "write" crash point between the two halves of its copy) with our own
 * CRC32C; one third are DeviceEvents through pbr_producer_send_pb (the
 * "encoded" crash point), checked by the library's CRC and by decoding.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pbring/demo/v1/device.pb.h"
#include "testutil.h"
#include "torture.h"
#include "pbring/pb.h"

#define RAW_MAGIC 0x4b4c5454u /* "TTLK" */
#define RAW_HDR 24	      /* magic, who, counter, len, crc */
#define RAW_CRC_OFF 20
#define BLOB_MAX 120
#define SENT_XOR 0x5deece66dull

static uint64_t mix(uint32_t who, uint64_t c)
{
	uint64_t x =
		(who + 1) * 0x9E3779B97F4A7C15ull ^ c * 0xff51afd7ed558ccdull;

	x ^= x >> 31;
	return x * 0xBF58476D1CE4E5B9ull;
}

static bool is_pb(uint64_t c)
{
	return c % 3 == 0;
}

static uint32_t raw_len(uint32_t cap, uint32_t who, uint64_t c)
{
	return RAW_HDR + (uint32_t)(mix(who, c) % (cap - RAW_HDR + 1));
}

static uint32_t blob_len(uint32_t cap, uint32_t who, uint64_t c)
{
	uint32_t max = cap > BLOB_MAX + 80 ? BLOB_MAX : cap / 4;

	return 1 + (uint32_t)(mix(who, c) % max);
}

static void fill_pattern(uint8_t *b, uint32_t n, uint32_t who, uint64_t c)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		b[i] = tu_pattern(who, c, i);
}

static bool pattern_ok(const uint8_t *b, uint32_t n, uint32_t who, uint64_t c)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (b[i] != tu_pattern(who, c, i))
			return false;
	return true;
}

static uint32_t raw_crc(const uint8_t *b, uint32_t len)
{
	uint32_t crc = pbr_crc32c(0, b, RAW_CRC_OFF);

	return pbr_crc32c(crc, b + RAW_HDR, len - RAW_HDR);
}

static int send_raw(struct pbr_producer *p, uint32_t cap, uint32_t who,
		    uint64_t c, int64_t timeout_ns, bool corrupt)
{
	uint8_t buf[PBR_SLOT_SIZE_MAX < 65536 ? PBR_SLOT_SIZE_MAX : 65536];
	uint32_t len = raw_len(cap, who, c), magic = RAW_MAGIC, crc;

	memcpy(buf, &magic, 4);
	memcpy(buf + 4, &who, 4);
	memcpy(buf + 8, &c, 8);
	memcpy(buf + 16, &len, 4);
	fill_pattern(buf + RAW_HDR, len - RAW_HDR, who, c);
	crc = raw_crc(buf, len);
	memcpy(buf + RAW_CRC_OFF, &crc, 4);
	if (corrupt)
		buf[len - 1] ^= 0x10;
	return pbr_producer_send(p, buf, len, 0, timeout_ns);
}

static int send_event(struct pbr_producer *p, uint32_t cap, uint32_t who,
		      uint64_t c, int64_t timeout_ns, bool corrupt)
{
	pbring_demo_v1_DeviceEvent ev = pbring_demo_v1_DeviceEvent_init_zero;
	uint8_t blob[BLOB_MAX];
	struct pbr_span span = {blob, blob_len(cap, who, c)};

	snprintf(ev.id, sizeof(ev.id), "t%u", who);
	ev.status = (int32_t)who;
	ev.seq = c;
	ev.sent_ns = c ^ SENT_XOR;
	fill_pattern(blob, (uint32_t)span.len, who, c);
	if (corrupt) /* the library's CRC then covers the wrong bytes */
		/* cppcheck-suppress unreadVariable ; span points at blob */
		blob[span.len - 1] ^= 0x10;
	ev.blob.funcs.encode = pbr_pb_encode_span;
	ev.blob.arg = &span;
	return pbr_producer_send_pb(p, pbring_demo_v1_DeviceEvent_fields, &ev,
				    timeout_ns);
}

int tt_send(struct pbr_producer *p, uint32_t cap, uint32_t who, uint64_t c,
	    int64_t timeout_ns, bool corrupt)
{
	if (is_pb(c))
		return send_event(p, cap, who, c, timeout_ns, corrupt);
	return send_raw(p, cap, who, c, timeout_ns, corrupt);
}

static int verify_raw(const struct pbr_view *v, uint32_t nprod, uint32_t *who,
		      uint64_t *c)
{
	const uint8_t *b = v->data;
	uint32_t magic, len, crc;

	if (v->len < RAW_HDR)
		return -1;
	memcpy(&magic, b, 4);
	memcpy(who, b + 4, 4);
	memcpy(c, b + 8, 8);
	memcpy(&len, b + 16, 4);
	memcpy(&crc, b + RAW_CRC_OFF, 4);
	if (magic != RAW_MAGIC || *who >= nprod || len != v->len || is_pb(*c) ||
	    crc != raw_crc(b, len))
		return -1;
	/* The CRC could be a coincidence; the pattern cannot. */
	return pattern_ok(b + RAW_HDR, len - RAW_HDR, *who, *c) ? 0 : -1;
}

static int verify_event(const struct pbr_view *v, uint32_t cap, uint32_t nprod,
			uint32_t *who, uint64_t *c)
{
	pbring_demo_v1_DeviceEvent ev = pbring_demo_v1_DeviceEvent_init_zero;
	struct pbr_span span = {NULL, 0};
	char id[16];

	ev.blob.funcs.decode = pbr_pb_decode_span;
	ev.blob.arg = &span;
	if (pbr_view_decode(v, pbring_demo_v1_DeviceEvent_fields, &ev, 0))
		return -1;
	if (ev.status < 0 || (uint32_t)ev.status >= nprod)
		return -1;
	*who = (uint32_t)ev.status;
	*c = ev.seq;
	snprintf(id, sizeof(id), "t%u", *who);
	if (strcmp(id, ev.id) || !is_pb(*c) || ev.sent_ns != (*c ^ SENT_XOR) ||
	    span.len != blob_len(cap, *who, *c))
		return -1;
	return pattern_ok(span.data, (uint32_t)span.len, *who, *c) ? 0 : -1;
}

int tt_verify(const struct pbr_view *v, uint32_t cap, uint32_t nprod,
	      uint32_t *who, uint64_t *c)
{
	/* Only send_pb sets the CRC flag. */
	if (v->flags & PBR_SLOT_F_CRC)
		return verify_event(v, cap, nprod, who, c);
	return verify_raw(v, nprod, who, c);
}
