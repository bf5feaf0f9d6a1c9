/* SPDX-License-Identifier: MIT */
/*
 * fuzz_decode: nanopb decoding of every message of the schemas in proto/
 * (pbring.demo.v1 and pbring.test.v1) through pbr_view_decode() in place
 * and pbr_view_decode_copy(), on a synthetic view whose payload ends
 * where a PROT_NONE page begins, so that any read past it faults, also in
 * nanopb's runtime (Debian's prebuilt archive, which ASan does not see).
 *
 * Checks: the documented result for each case (pointer-field types are
 * refused with -EINVAL, a wrong CRC is -EBADMSG unless not verified, a
 * short scratch buffer is -ENOBUFS, otherwise 0 or -EBADMSG); spans stay
 * inside the decoded buffer; and a decoded message re-encodes, and
 * decoding that encoding and encoding again gives the same bytes.
 *
 * Input: u8 message type (mod the table below), u8 flags (bit 0
 * PBR_DECODE_NOVERIFY, bit 1 the view carries PBR_SLOT_F_CRC with the
 * payload's CRC, bit 2 with a wrong CRC, bit 3 the scratch buffer is one
 * byte short), then the payload.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>

#include "pbring/demo/v1/device.pb.h"
#include "pbring/test/v1/alltypes.pb.h"
#include "pbring/test/v1/pointer.pb.h"
#include <pb.h>
#include <pb_encode.h>

#include "fuzz_util.h"
#include "pbring/pb.h"

#define F_NOVERIFY 0x1u
#define F_CRC_OK 0x2u
#define F_CRC_BAD 0x4u
#define F_SHORT 0x8u

#define ENC_MAX 8192

union any_msg {
	pbring_demo_v1_DeviceEvent event;
	pbring_demo_v1_SyncAck ack;
	pbring_test_v1_Nested nested;
	pbring_test_v1_AllTypes all;
	pbring_test_v1_AllTypes_MStringInt32Entry map1;
	pbring_test_v1_AllTypes_MInt32NestedEntry map2;
	pbring_test_v1_Holder holder;
	pbring_test_v1_PointerMsg ptr;
	pbring_test_v1_Outer outer;
};

static const struct msg_type {
	const pb_msgdesc_t *fields;
	bool refused; /* pointer fields: pbring never decodes it */
	bool blob;    /* DeviceEvent: blob is a span callback */
} types[] = {
	{pbring_demo_v1_DeviceEvent_fields, false, true},
	{pbring_demo_v1_SyncAck_fields, false, false},
	{pbring_test_v1_Nested_fields, false, false},
	{pbring_test_v1_AllTypes_fields, false, false},
	{pbring_test_v1_AllTypes_MStringInt32Entry_fields, false, false},
	{pbring_test_v1_AllTypes_MInt32NestedEntry_fields, false, false},
	{pbring_test_v1_Holder_fields, false, false},
	{pbring_test_v1_PointerMsg_fields, true, false},
	{pbring_test_v1_Outer_fields, true, false},
};

#define N_TYPES (sizeof(types) / sizeof(types[0]))

/* A zeroed message; DeviceEvent.blob decodes as a span into @span. */
static void msg_init(const struct msg_type *t, union any_msg *m,
		     struct pbr_span *span)
{
	memset(m, 0, sizeof(*m));
	memset(span, 0, sizeof(*span));
	if (t->blob) {
		m->event.blob.funcs.decode = pbr_pb_decode_span;
		m->event.blob.arg = span;
	}
}

static void check_span(const struct pbr_span *sp, const void *buf, size_t len)
{
	const uint8_t *b = buf, *d = sp->data;

	if (d)
		FZ_ASSERT(d >= b && sp->len <= len && d + sp->len <= b + len);
}

/* Encode a decoded message; its span (if any) is written back as blob. */
static size_t encode(const struct msg_type *t, union any_msg *m,
		     struct pbr_span *span, uint8_t *out)
{
	pb_ostream_t os = pb_ostream_from_buffer(out, ENC_MAX);

	if (t->blob) {
		m->event.blob.funcs.encode = pbr_pb_encode_span;
		m->event.blob.arg = span;
	}
	FZ_ASSERT(pb_encode(&os, t->fields, m));
	return os.bytes_written;
}

/* encode(decode(encode(m))) == encode(m) */
static void roundtrip(const struct msg_type *t, union any_msg *m,
		      struct pbr_span *span)
{
	static uint8_t e1[ENC_MAX], e2[ENC_MAX];
	struct pbr_view v = {0};
	struct pbr_span span2;
	union any_msg m2;
	size_t n1, n2;
	uint8_t *copy;

	n1 = encode(t, m, span, e1);
	copy = fz_guarded(1, n1); /* exact size again */
	memcpy(copy, e1, n1);
	v.data = copy;
	v.len = (uint32_t)n1;
	msg_init(t, &m2, &span2);
	FZ_ASSERT(pbr_view_decode(&v, t->fields, &m2, 0) == 0);
	check_span(&span2, copy, n1);
	n2 = encode(t, &m2, &span2, e2);
	FZ_ASSERT(n1 == n2 && memcmp(e1, e2, n1) == 0);
	fz_unguard(1, copy);
}

static int want(const struct msg_type *t, unsigned fl, bool copy, size_t len)
{
	if (t->refused)
		return -EINVAL;
	if (copy && (fl & F_SHORT) && len)
		return -ENOBUFS;
	if ((fl & F_CRC_BAD) && (copy || !(fl & F_NOVERIFY)))
		return -EBADMSG;
	return 1; /* 0 or -EBADMSG */
}

static void check_rc(int rc, int expect)
{
	if (expect == 1)
		FZ_ASSERT(rc == 0 || rc == -EBADMSG);
	else
		FZ_ASSERT(rc == expect);
}

static void decode_in_place(const struct msg_type *t, const struct pbr_view *v,
			    unsigned fl)
{
	struct pbr_span span;
	union any_msg m;
	int rc;

	msg_init(t, &m, &span);
	rc = pbr_view_decode(v, t->fields, &m,
			     (fl & F_NOVERIFY) ? PBR_DECODE_NOVERIFY : 0);
	fz_trace("in place: type %d flags %#x len %u: %d\n", (int)(t - types),
		 fl, v->len, rc);
	check_rc(rc, want(t, fl, false, v->len));
	if (rc)
		return;
	check_span(&span, v->data, v->len);
	roundtrip(t, &m, &span);
}

static void decode_copy(const struct msg_type *t, const struct pbr_view *v,
			unsigned fl)
{
	size_t n = v->len - ((fl & F_SHORT) && v->len ? 1 : 0);
	void *scratch = fz_guarded(1, n);
	struct pbr_span span;
	union any_msg m;
	int rc;

	msg_init(t, &m, &span);
	rc = pbr_view_decode_copy(v, t->fields, &m, scratch, n);
	fz_trace("copy: %d\n", rc);
	check_rc(rc, want(t, fl, true, v->len));
	if (!rc)
		check_span(&span, scratch, n);
	fz_unguard(1, scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = {data, size};
	const struct msg_type *t = &types[fz_u8(&in) % N_TYPES];
	unsigned fl = fz_u8(&in);
	struct pbr_view v = {0};
	uint8_t *payload;

	if (fl & F_CRC_BAD)
		fl &= ~F_CRC_OK;
	/* The payload ends at a guard page: over-reads fault. */
	payload = fz_guarded(0, in.n);
	v.len = (uint32_t)fz_bytes(&in, payload, in.n);
	v.data = payload;
	if (fl & (F_CRC_OK | F_CRC_BAD)) {
		v.flags = PBR_SLOT_F_CRC;
		v.crc32c = pbr_crc32c(0, payload, v.len);
		if (fl & F_CRC_BAD)
			v.crc32c ^= 0x5a5a5a5a;
	}
	decode_in_place(t, &v, fl);
	decode_copy(t, &v, fl);
	fz_unguard(0, payload);
	return 0;
}
