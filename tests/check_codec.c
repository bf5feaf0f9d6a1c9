// SPDX-License-Identifier: MIT
/*
 * check_codec: the codec layer. CRC32C (known vectors, hardware against
 * software), nanopb messages encoded into slots and decoded in place or
 * from a copy, byte-exact agreement with protobuf's own encoder (protoc
 * --encode of the tests/data/ text files, embedded at build time), corrupt and
 * oversize messages, and ring type checks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "internal.h" /* the two CRC32C implementations */
#include "pbring/demo/v1/device.pb.h"
#include "pbring/test/v1/alltypes.pb.h"
#include "pbring/test/v1/pointer.pb.h"
#include "pbring/test/v1/spans.pb.h"
#include <pb.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "pbring.h"
#include "pbring/demo.h"
#include "pbring/pb.h"
#include "testutil.h"

/* protoc --encode output (tests/CMakeLists.txt, "codec tests"). */
extern const unsigned char alltypes_pb[];
extern const size_t alltypes_pb_len;
extern const unsigned char alltypes_unpacked_pb[];
extern const size_t alltypes_unpacked_pb_len;

#define EV_FIELDS pbring_demo_v1_DeviceEvent_fields
#define AT_FIELDS pbring_test_v1_AllTypes_fields

/* --- helpers -------------------------------------------------------------- */

struct fixture {
	const char *name;
	struct pbr_ring *r;
	struct pbr_producer *p;
	struct pbr_reader *rd;
};

static void fx_open(struct fixture *f, const char *tag, uint32_t slot_size)
{
	f->name = tu_name(tag);
	f->r = tu_create(f->name, 8, slot_size, 0, 0);
	f->p = tu_producer(f->r, PBR_WAIT_SPIN);
	f->rd = tu_reader(f->r, 0, PBR_START_OLDEST, PBR_WAIT_SPIN);
}

static void fx_close(struct fixture *f)
{
	pbr_reader_close(f->rd);
	ck_assert_int_eq(pbr_producer_close(f->p), 0);
	pbr_ring_detach(f->r);
}

static void peek_ok(struct fixture *f, struct pbr_view *v)
{
	int rc = pbr_reader_peek(f->rd, 0, v);

	ck_assert_msg(rc == 0, "peek: %d %s", rc, pbr_strerror(rc));
}

static void release_ok(struct fixture *f, const struct pbr_view *v)
{
	ck_assert_int_eq(pbr_reader_release(f->rd, v), 0);
}

static void fill_blob(uint8_t *b, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 31u + seed);
}

/* A DeviceEvent whose blob is @blob_len bytes of fill_blob(.., 7). */
static void make_event(pbring_demo_v1_DeviceEvent *ev, struct pbr_span *blob,
		       uint8_t *buf, size_t blob_len)
{
	*ev = (pbring_demo_v1_DeviceEvent)pbring_demo_v1_DeviceEvent_init_zero;
	snprintf(ev->id, sizeof(ev->id), "device-%d", 42);
	ev->status = -3;
	ev->seq = 7;
	ev->sent_ns = 1234567890123ull;
	fill_blob(buf, blob_len, 7);
	blob->data = buf;
	blob->len = blob_len;
	ev->blob.funcs.encode = pbr_pb_encode_span;
	ev->blob.arg = blob;
}

/* A DeviceEvent ready to decode, blob recorded into @span. */
static void decode_target(pbring_demo_v1_DeviceEvent *ev, struct pbr_span *span)
{
	memset(ev, 0xA5, sizeof(*ev)); /* decode must reset every field */
	span->data = NULL;
	span->len = 0;
	ev->blob.funcs.decode = pbr_pb_decode_span;
	ev->blob.arg = span;
}

static void check_event(const pbring_demo_v1_DeviceEvent *ev,
			const struct pbr_span *span, size_t blob_len)
{
	uint8_t want[1024];

	ck_assert_str_eq(ev->id, "device-42");
	ck_assert_uint_eq(ev->seq, 7);
	ck_assert_uint_eq(ev->sent_ns, 1234567890123ull);
	ck_assert_uint_eq(span->len, blob_len);
	fill_blob(want, blob_len, 7);
	ck_assert_mem_eq(span->data, want, blob_len);
}

/* Is [p, p+n) inside [base, base+len)? By integer value: comparing
 * pointers into different objects is undefined in C. */
static int inside(const void *p, size_t n, const void *base, size_t len)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

	return a >= b && n <= len && a - b <= len - n;
}

static uint64_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- CRC32C --------------------------------------------------------------- */

/* RFC 3720 (iSCSI) B.4 and the usual check value. */
START_TEST(test_crc_vectors)
{
	uint8_t b[32];
	uint32_t (*const fn[])(uint32_t, const void *, size_t) = {
		pbr_crc32c, pbri_crc32c_sw, pbri_crc32c_hw};
	unsigned i, k;

	for (k = 0; k < 3; k++) {
		ck_assert_uint_eq(fn[k](0, "123456789", 9), 0xE3069283u);
		ck_assert_uint_eq(fn[k](0, "", 0), 0);
		memset(b, 0, sizeof(b));
		ck_assert_uint_eq(fn[k](0, b, 32), 0x8A9136AAu);
		memset(b, 0xFF, sizeof(b));
		ck_assert_uint_eq(fn[k](0, b, 32), 0x62A8AB43u);
		for (i = 0; i < 32; i++)
			b[i] = (uint8_t)i;
		ck_assert_uint_eq(fn[k](0, b, 32), 0x46DD794Eu);
		for (i = 0; i < 32; i++)
			b[i] = (uint8_t)(31 - i);
		ck_assert_uint_eq(fn[k](0, b, 32), 0x113FDB5Cu);
	}
}
END_TEST

START_TEST(test_crc_chaining)
{
	const char *s = "The quick brown fox jumps over the lazy dog";
	size_t n = strlen(s), cut;
	uint32_t whole = pbr_crc32c(0, s, n);

	ck_assert_uint_eq(whole, tu_crc32c(s, n)); /* independent version */
	for (cut = 0; cut <= n; cut++)
		ck_assert_uint_eq(
			pbr_crc32c(pbr_crc32c(0, s, cut), s + cut, n - cut),
			whole);
}
END_TEST

/* The copying CRC: the same CRC, the same bytes, at every edge. */
START_TEST(test_crc_copy)
{
	static uint8_t src[70000 + 16], dst[70000 + 32];
	const size_t lens[] = {0,   1,	 255,  511,   512,   513,  767,
			       768, 769, 4096, 65537, 69999, 70000};
	unsigned seed = 777, off, doff;
	size_t i;

	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)rand_r(&seed);
	for (off = 0; off < 9; off++)
		for (doff = 0; doff < 3; doff++)
			for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
				memset(dst, 0xEE, sizeof(dst));
				ck_assert_uint_eq(
					pbri_crc32c_copy(0x1234567u,
							 dst + doff * 5,
							 src + off, lens[i]),
					pbri_crc32c_sw(0x1234567u, src + off,
						       lens[i]));
				ck_assert_mem_eq(dst + doff * 5, src + off,
						 lens[i]);
				ck_assert_uint_eq(dst[doff * 5 + lens[i]],
						  0xEE);
			}
}
END_TEST

START_TEST(test_crc_hw_equals_sw)
{
	static uint8_t buf[70000 + 16];
	/* From 512 bytes on, with AVX-512 VPCLMULQDQ, the folding path:
	 * its edges (one step of 256 bytes more or less) and long runs. */
	const size_t big[] = {511,  512,  513,	767,   768,   769,  1023,
			      1024, 4095, 4096, 65537, 69999, 70000};
	unsigned seed = 12345, off;
	size_t i, len;

	if (!pbri_crc32c_hw_available())
		fprintf(stderr, "no SSE4.2: hardware path falls back\n");
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand_r(&seed);
	for (off = 0; off < 16; off++) {
		for (len = 0; len <= 300; len++)
			ck_assert_uint_eq(pbri_crc32c_hw(0, buf + off, len),
					  pbri_crc32c_sw(0, buf + off, len));
		for (i = 0; i < sizeof(big) / sizeof(big[0]); i++)
			ck_assert_uint_eq(
				pbri_crc32c_hw(0x1234567u, buf + off, big[i]),
				pbri_crc32c_sw(0x1234567u, buf + off, big[i]));
	}
	ck_assert_uint_eq(pbri_crc32c_sw(0, buf, 999), tu_crc32c(buf, 999));
}
END_TEST

/* --- DeviceEvent round trip ----------------------------------------------- */

START_TEST(test_event_round_trip)
{
	struct fixture f;
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span blob, span;
	uint8_t buf[300];
	struct pbr_view v;
	uint64_t t0 = now_mono();

	fx_open(&f, "ev", 1024);
	make_event(&ev, &blob, buf, sizeof(buf));
	ck_assert_int_eq(pbr_producer_send_pb(f.p, EV_FIELDS, &ev, 0), 0);
	peek_ok(&f, &v);
	ck_assert(v.flags & PBR_SLOT_F_CRC);
	ck_assert_uint_eq(v.crc32c, pbr_crc32c(0, v.data, v.len));
	ck_assert_uint_ge(v.timestamp_ns, t0);
	ck_assert_uint_le(v.timestamp_ns, now_mono());
	ck_assert_int_eq(pbr_view_verify(&v), 0);
	decode_target(&ev, &span);
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &ev, 0), 0);
	check_event(&ev, &span, sizeof(buf));
	ck_assert_int_eq(ev.status, -3);
	/* Zero copy: the blob is read where it lies in the slot. */
	ck_assert(inside(span.data, span.len, v.data, v.len));
	ck_assert_ptr_ne(span.data, buf);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* A blob written in place (pbr_slot_pb_span) decodes like a copied one,
 * and the encoding equals what nanopb makes of the fields in that order. */
START_TEST(test_event_in_place)
{
	struct fixture f;
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span blob, span;
	struct pbr_slot slot;
	struct pbr_view v;
	uint32_t used = 0;
	uint8_t *at;
	void *data;

	fx_open(&f, "inpl", 1024);
	make_event(&ev, &blob, NULL, 0);
	ev.blob.funcs.encode = NULL; /* written in place, not by the encoder */
	ck_assert_int_eq(pbr_producer_reserve(f.p, 0, &slot), 0);
	ck_assert_int_eq(pbr_slot_pb_span(&slot, &used,
					  pbring_demo_v1_DeviceEvent_blob_tag,
					  300, &data),
			 0);
	at = slot.data;
	ck_assert_ptr_eq(data, at + 3); /* tag 0x2A, length 300 = AC 02 */
	ck_assert_uint_eq(at[0], 0x2A);
	ck_assert_uint_eq(at[1], 0xAC);
	ck_assert_uint_eq(at[2], 0x02);
	ck_assert_uint_eq(used, 303);
	fill_blob(data, 300, 7);
	ck_assert_int_eq(
		pbr_producer_commit_pb(f.p, &slot, used, EV_FIELDS, &ev), 0);
	peek_ok(&f, &v);
	ck_assert_uint_gt(v.len, used);
	ck_assert(v.flags & PBR_SLOT_F_CRC); /* the default policy: full */
	ck_assert_int_eq(pbr_view_verify(&v), 0);
	ck_assert_uint_gt(v.timestamp_ns, 0);
	decode_target(&ev, &span);
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &ev, 0), 0);
	check_event(&ev, &span, 300);
	ck_assert_int_eq(ev.status, -3);
	ck_assert_ptr_eq(span.data, (const uint8_t *)v.data + 3);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* PBR_PRODUCER_NO_TIMESTAMP: the codec reads no clock; unknown flags
 * are refused. */
START_TEST(test_no_timestamp)
{
	const char *name = tu_name("nots");
	struct pbr_ring *r = tu_create(name, 8, 1024, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_SPIN);
	struct pbr_producer_opts o = {.wait = PBR_WAIT_SPIN, .flags = 0x2};
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_producer *p = NULL;
	struct pbr_span blob;
	uint8_t buf[10];
	struct pbr_view v;

	ck_assert_int_eq(pbr_producer_open(r, &o, &p), -EINVAL);
	ck_assert_ptr_null(p);
	o.flags = PBR_PRODUCER_NO_TIMESTAMP;
	ck_assert_int_eq(pbr_producer_open(r, &o, &p), 0);
	make_event(&ev, &blob, buf, sizeof(buf));
	ck_assert_int_eq(pbr_producer_send_pb(p, EV_FIELDS, &ev, 0), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.timestamp_ns, 0);
	ck_assert(v.flags & PBR_SLOT_F_CRC);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_producer_close(p), 0);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* Bad fields and sizes: errors, and nothing delivered. */
START_TEST(test_in_place_errors)
{
	struct fixture f;
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span blob;
	struct pbr_slot slot;
	struct pbr_view v;
	uint32_t used = 0;
	void *data = NULL;

	fx_open(&f, "inple", 256); /* 192 bytes of payload */
	make_event(&ev, &blob, NULL, 0);
	ck_assert_int_eq(pbr_producer_reserve(f.p, 0, &slot), 0);
	ck_assert_int_eq(pbr_slot_pb_span(&slot, &used, 0, 10, &data), -EINVAL);
	ck_assert_int_eq(pbr_slot_pb_span(&slot, &used, 1u << 29, 10, &data),
			 -EINVAL);
	ck_assert_int_eq(pbr_slot_pb_span(&slot, &used, 5, 191, &data),
			 -EMSGSIZE); /* 191 + tag + 2-byte length > 192 */
	ck_assert_uint_eq(used, 0);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(pbr_slot_pb_span(&slot, &used, 5, 189, &data), 0);
	ck_assert_uint_eq(used, 192);
	ck_assert_int_eq(pbr_slot_pb_span(&slot, &used, 6, 0, &data),
			 -EMSGSIZE);
	memset(data, 1, 189);
	/* The rest of the event does not fit after it: aborted. */
	ck_assert_int_eq(
		pbr_producer_commit_pb(f.p, &slot, used, EV_FIELDS, &ev),
		-EMSGSIZE);
	ck_assert_int_eq(pbr_reader_peek(f.rd, 0, &v), -EAGAIN);
	ck_assert_int_eq(pbr_producer_reserve(f.p, 0, &slot), 0);
	ck_assert_int_eq(pbr_producer_commit_pb(f.p, &slot, slot.cap + 1,
						EV_FIELDS, &ev),
			 -EINVAL);
	ck_assert_int_eq(pbr_producer_abort(f.p, &slot), 0);
	fx_close(&f);
}
END_TEST

/* Without a decode callback the blob is skipped; a 64-byte id fits. */
START_TEST(test_event_no_callback_max_id)
{
	struct fixture f;
	pbring_demo_v1_DeviceEvent ev, out;
	struct pbr_span blob;
	uint8_t buf[100];
	struct pbr_view v;

	fx_open(&f, "evid", 1024);
	make_event(&ev, &blob, buf, sizeof(buf));
	memset(ev.id, 'x', 64);
	ev.id[64] = '\0';
	ck_assert_int_eq(pbr_producer_send_pb(f.p, EV_FIELDS, &ev, 0), 0);
	peek_ok(&f, &v);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &out, 0), 0);
	ck_assert_uint_eq(strlen(out.id), 64);
	ck_assert_int_eq(out.status, -3);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* --- AllTypes against protobuf's encoder ---------------------------------- */

/* The message of tests/data/alltypes.txtpb, field for field. */
static void fill_alltypes(pbring_test_v1_AllTypes *m)
{
	*m = (pbring_test_v1_AllTypes)pbring_test_v1_AllTypes_init_zero;
	m->f_double = -2.5e-300;
	m->f_float = 3.25f;
	m->f_int32 = -7;
	m->f_int64 = -9000000000ll;
	m->f_uint32 = 4000000000u;
	m->f_uint64 = 18000000000000000000ull;
	m->f_sint32 = INT32_MIN;
	m->f_sint64 = -4611686018427387904ll;
	m->f_fixed32 = UINT32_MAX;
	m->f_fixed64 = 0x123456789ABCDEF0ull;
	m->f_sfixed32 = -123456;
	m->f_sfixed64 = INT64_MIN;
	m->f_bool = true;
	strcpy(m->f_string, "h\303\251llo, ring");
	m->f_bytes.size = 10;
	memcpy(m->f_bytes.bytes, "\000\001\002\377binary", 10);
	m->f_enum = pbring_test_v1_Color_COLOR_GREEN;
	m->has_f_nested = true;
	m->f_nested.a = 150;
	strcpy(m->f_nested.label, "inner");
}

static void fill_alltypes_repeated(pbring_test_v1_AllTypes *m)
{
	const int32_t i32[] = {1, -1, 300, 2147483647};
	const int64_t s64[] = {-1, 1, -300};

	m->r_int32_count = 4;
	memcpy(m->r_int32, i32, sizeof(i32));
	m->r_sint64_count = 3;
	memcpy(m->r_sint64, s64, sizeof(s64));
	m->r_double_count = 2;
	m->r_double[0] = 0.5;
	m->r_double[1] = -1e10;
	m->r_fixed32_count = 3;
	m->r_fixed32[0] = 7;
	m->r_fixed32[1] = 8;
	m->r_fixed32[2] = 9;
	m->r_bool_count = 3;
	m->r_bool[0] = m->r_bool[2] = true;
	m->r_enum_count = 2;
	m->r_enum[0] = pbring_test_v1_Color_COLOR_RED;
	m->r_enum[1] = pbring_test_v1_Color_COLOR_BLUE;
	m->r_string_count = 3;
	strcpy(m->r_string[0], "one");
	strcpy(m->r_string[2], "three");
	m->r_bytes_count = 2;
	m->r_bytes[0].size = 1;
	m->r_bytes[0].bytes[0] = 0xFF;
	m->r_bytes[1].size = 2;
	memcpy(m->r_bytes[1].bytes, "ab", 2);
}

static void fill_alltypes_rest(pbring_test_v1_AllTypes *m)
{
	m->r_nested_count = 3;
	m->r_nested[0].a = 1;
	strcpy(m->r_nested[0].label, "first");
	m->r_nested[2].a = -2;
	m->which_choice = pbring_test_v1_AllTypes_o_nested_tag;
	m->choice.o_nested.a = 5;
	strcpy(m->choice.o_nested.label, "oneof");
	m->m_string_int32_count = 2;
	strcpy(m->m_string_int32[0].key, "alpha");
	m->m_string_int32[0].value = 1;
	strcpy(m->m_string_int32[1].key, "beta");
	m->m_string_int32[1].value = -2;
	m->m_int32_nested_count = 2;
	m->m_int32_nested[0].key = 3;
	m->m_int32_nested[0].has_value = true;
	m->m_int32_nested[0].value.a = 33;
	strcpy(m->m_int32_nested[0].value.label, "three");
	m->m_int32_nested[1].key = -4;
	m->m_int32_nested[1].has_value = true;
	m->has_p_int32 = true;
	m->p_int32 = 0;
	m->f_high_tag = 99;
}

static void make_alltypes(pbring_test_v1_AllTypes *m)
{
	fill_alltypes(m);
	fill_alltypes_repeated(m);
	fill_alltypes_rest(m);
}

static void dump_diff(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t i, n = an < bn ? an : bn;

	for (i = 0; i < n && a[i] == b[i]; i++)
		;
	fprintf(stderr,
		"nanopb %zu bytes, protoc %zu, first difference at %zu\n", an,
		bn, i);
}

/* Encode @m through the ring and return the peeked view (unreleased). */
static void send_alltypes(struct fixture *f, const pbring_test_v1_AllTypes *m,
			  struct pbr_view *v)
{
	int rc = pbr_producer_send_pb(f->p, AT_FIELDS, m, 0);

	ck_assert_msg(rc == 0, "send_pb: %d %s (%s)", rc, pbr_strerror(rc),
		      pbr_producer_errmsg(f->p));
	peek_ok(f, v);
}

START_TEST(test_alltypes_bytes_equal_protoc)
{
	static pbring_test_v1_AllTypes m;
	struct fixture f;
	struct pbr_view v;

	fx_open(&f, "at", 1024);
	make_alltypes(&m);
	send_alltypes(&f, &m, &v);
	if (v.len != alltypes_pb_len || memcmp(v.data, alltypes_pb, v.len))
		dump_diff(v.data, v.len, alltypes_pb, alltypes_pb_len);
	ck_assert_uint_eq(v.len, alltypes_pb_len);
	ck_assert_mem_eq(v.data, alltypes_pb, alltypes_pb_len);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* protoc's bytes, carried raw, decode to the same message: re-encoding the
 * decoded struct gives protoc's bytes again. */
START_TEST(test_alltypes_decode_protoc)
{
	static pbring_test_v1_AllTypes m;
	struct fixture f;
	struct pbr_view v;

	fx_open(&f, "atd", 1024);
	ck_assert_int_eq(pbr_producer_send(f.p, alltypes_pb,
					   (uint32_t)alltypes_pb_len, 0, 0),
			 0);
	peek_ok(&f, &v);
	ck_assert_uint_eq(v.flags & PBR_SLOT_F_CRC, 0);
	ck_assert_int_eq(pbr_view_verify(&v), 0); /* no CRC: nothing to do */
	memset(&m, 0x5A, sizeof(m));
	ck_assert_int_eq(pbr_view_decode(&v, AT_FIELDS, &m, 0), 0);
	release_ok(&f, &v);
	ck_assert_str_eq(m.f_string, "h\303\251llo, ring");
	ck_assert_int_eq(m.f_sint32, INT32_MIN);
	ck_assert_uint_eq(m.which_choice, pbring_test_v1_AllTypes_o_nested_tag);
	ck_assert_str_eq(m.m_string_int32[1].key, "beta");
	ck_assert(m.has_p_int32 && m.p_int32 == 0);
	send_alltypes(&f, &m, &v);
	ck_assert_uint_eq(v.len, alltypes_pb_len);
	ck_assert_mem_eq(v.data, alltypes_pb, alltypes_pb_len);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* A [packed = false] field with two elements: see alltypes_unpacked.txtpb. */
START_TEST(test_alltypes_unpacked)
{
	static const uint8_t nanopb_form[] = {0xC2, 0x01, 0x02, 0x2A, 0x2B};
	static pbring_test_v1_AllTypes m;
	struct fixture f;
	struct pbr_view v;

	fx_open(&f, "atu", 1024);
	ck_assert_int_eq(pbr_producer_send(f.p, alltypes_unpacked_pb,
					   (uint32_t)alltypes_unpacked_pb_len,
					   0, 0),
			 0);
	peek_ok(&f, &v);
	ck_assert_int_eq(pbr_view_decode(&v, AT_FIELDS, &m, 0), 0);
	release_ok(&f, &v);
	ck_assert_uint_eq(m.r_unpacked_uint32_count, 2);
	ck_assert_uint_eq(m.r_unpacked_uint32[0], 42);
	ck_assert_uint_eq(m.r_unpacked_uint32[1], 43);
	send_alltypes(&f, &m, &v);
	ck_assert_uint_eq(v.len, sizeof(nanopb_form));
	ck_assert_mem_eq(v.data, nanopb_form, sizeof(nanopb_form));
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* --- corrupt input -------------------------------------------------------- */

static void send_event(struct fixture *f, int32_t status)
{
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span blob;
	uint8_t buf[64];

	make_event(&ev, &blob, buf, sizeof(buf));
	ev.status = status;
	ck_assert_int_eq(pbr_producer_send_pb(f->p, EV_FIELDS, &ev, 0), 0);
}

/* A payload byte flipped after commit: -EBADMSG from verify and from both
 * decodes; the reader then goes on with the next message. */
START_TEST(test_crc_corrupt_then_next)
{
	pbring_demo_v1_DeviceEvent ev;
	uint8_t scratch[1024];
	struct pbr_span span;
	struct fixture f;
	struct tu_raw raw;
	struct pbr_view v;

	fx_open(&f, "crc", 1024);
	send_event(&f, 1);
	send_event(&f, 2);
	ck_assert_int_eq(tu_raw_map(f.name, &raw), 0);
	((uint8_t *)tu_raw_slot(&raw, 0))[PBR_SLOT_HDR_SIZE + 4] ^= 0x10;
	tu_raw_unmap(&raw);
	peek_ok(&f, &v);
	ck_assert_uint_eq(v.seq, 0);
	ck_assert_int_eq(pbr_view_verify(&v), -EBADMSG);
	decode_target(&ev, &span);
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &ev, 0), -EBADMSG);
	ck_assert_str_eq(pbr_codec_errmsg(), "payload CRC32C mismatch");
	ck_assert_int_eq(pbr_view_decode_copy(&v, EV_FIELDS, &ev, scratch,
					      sizeof(scratch)),
			 -EBADMSG);
	release_ok(&f, &v);
	peek_ok(&f, &v);
	ck_assert_uint_eq(v.seq, 1);
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &ev, 0), 0);
	ck_assert_int_eq(ev.status, 2);
	check_event(&ev, &span, 64);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

START_TEST(test_garbage_payload)
{
	/* Wire type 7 does not exist. */
	static const uint8_t garbage[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
					  0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span span;
	struct fixture f;
	struct pbr_view v;

	fx_open(&f, "junk", 1024);
	ck_assert_int_eq(pbr_producer_send(f.p, garbage, sizeof(garbage), 0, 0),
			 0);
	peek_ok(&f, &v);
	decode_target(&ev, &span);
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &ev, 0), -EBADMSG);
	ck_assert_str_ne(pbr_codec_errmsg(), "");
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* Raw @bytes must fail to decode as a DeviceEvent (blob as a span), with
 * a nanopb message that contains @why. */
static void expect_bad_event(struct fixture *f, const void *bytes, uint32_t n,
			     const char *why)
{
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span span;
	struct pbr_view v;
	int rc;

	ck_assert_int_eq(pbr_producer_send(f->p, bytes, n, 0, 0), 0);
	peek_ok(f, &v);
	decode_target(&ev, &span);
	rc = pbr_view_decode(&v, EV_FIELDS, &ev, 0);
	ck_assert_msg(rc == -EBADMSG, "decode gave %d, want -EBADMSG", rc);
	ck_assert_msg(strstr(pbr_codec_errmsg(), why),
		      "message '%s', want '%s'", pbr_codec_errmsg(), why);
	release_ok(f, &v);
}

START_TEST(test_bad_lengths)
{
	/* Field 1 (id) claims 10 bytes, 3 follow. */
	static const uint8_t short_string[] = {0x0A, 0x0A, 'a', 'b', 'c'};
	/* id of 65 bytes: one more than max_size 65 leaves room for. */
	uint8_t long_id[2 + 65];
	/* blob (field 5) as a varint: a callback field that nanopb would
	 * hand over as a copy on its stack; the span callback refuses it. */
	static const uint8_t blob_varint[] = {0x28, 0x01};
	/* Truncated varint at the end. */
	static const uint8_t cut_varint[] = {0x10, 0x80};

	struct fixture f;

	fx_open(&f, "len", 1024);
	expect_bad_event(&f, short_string, sizeof(short_string), "");
	long_id[0] = 0x0A;
	long_id[1] = 65;
	memset(long_id + 2, 'y', 65);
	expect_bad_event(&f, long_id, sizeof(long_id), "");
	expect_bad_event(&f, blob_varint, sizeof(blob_varint), "callback");
	expect_bad_event(&f, cut_varint, sizeof(cut_varint), "");
	fx_close(&f);
}
END_TEST

/* A view cut short (a wrong length) no longer decodes. */
START_TEST(test_view_truncated)
{
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span span;
	struct pbr_view v, cut;
	struct fixture f;

	fx_open(&f, "cut", 1024);
	send_event(&f, 5);
	peek_ok(&f, &v);
	cut = v;
	cut.len -= 3; /* inside the blob */
	decode_target(&ev, &span);
	ck_assert_int_eq(pbr_view_decode(&cut, EV_FIELDS, &ev, 0), -EBADMSG);
	ck_assert_int_eq(
		pbr_view_decode(&cut, EV_FIELDS, &ev, PBR_DECODE_NOVERIFY),
		-EBADMSG);
	ck_assert_str_ne(pbr_codec_errmsg(), "payload CRC32C mismatch");
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &ev, 0), 0);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* --- oversize and unencodable messages ------------------------------------ */

START_TEST(test_oversize_nothing_delivered)
{
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_reader_stats st;
	struct pbr_span blob;
	struct fixture f;
	uint8_t buf[500];
	struct pbr_view v;

	fx_open(&f, "big", 256); /* payload capacity 192 */
	make_event(&ev, &blob, buf, sizeof(buf));
	ck_assert_int_eq(pbr_producer_send_pb(f.p, EV_FIELDS, &ev, 0),
			 -EMSGSIZE);
	ck_assert_str_ne(pbr_producer_errmsg(f.p), "");
	ck_assert_str_eq(pbr_producer_errmsg(NULL), "");
	ck_assert_int_eq(pbr_reader_peek(f.rd, 0, &v), -EAGAIN);
	/* The next message gets the next sequence: the aborted one is a
	 * skip record that the reader passed over without delivering. */
	blob.len = 10;
	ck_assert_int_eq(pbr_producer_send_pb(f.p, EV_FIELDS, &ev, 0), 0);
	peek_ok(&f, &v);
	ck_assert_uint_eq(v.seq, 1);
	release_ok(&f, &v);
	pbr_reader_stats(f.rd, &st);
	ck_assert_uint_eq(st.delivered, 1);
	ck_assert_uint_eq(st.bad, 0);
	ck_assert_int_eq(pbr_reader_peek(f.rd, 0, &v), -EAGAIN);
	fx_close(&f);
}
END_TEST

/* An id that fills its array without a NUL is not encodable: -EINVAL. */
START_TEST(test_unencodable_nothing_delivered)
{
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span blob;
	struct fixture f;
	uint8_t buf[8];
	struct pbr_view v;

	fx_open(&f, "bad", 1024);
	make_event(&ev, &blob, buf, sizeof(buf));
	memset(ev.id, 'z', sizeof(ev.id));
	ck_assert_int_eq(pbr_producer_send_pb(f.p, EV_FIELDS, &ev, 0), -EINVAL);
	ck_assert_str_ne(pbr_producer_errmsg(f.p), "");
	ck_assert_int_eq(pbr_reader_peek(f.rd, 0, &v), -EAGAIN);
	send_event(&f, 9);
	peek_ok(&f, &v);
	ck_assert_uint_eq(v.seq, 1);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* --- copy path ------------------------------------------------------------ */

START_TEST(test_decode_copy_identical)
{
	pbring_demo_v1_DeviceEvent a, b;
	struct pbr_span sa, sb, blob;
	uint8_t buf[200], scratch[1024];
	struct fixture f;
	struct pbr_view v;

	fx_open(&f, "copy", 1024);
	make_event(&a, &blob, buf, sizeof(buf));
	ck_assert_int_eq(pbr_producer_send_pb(f.p, EV_FIELDS, &a, 0), 0);
	peek_ok(&f, &v);
	decode_target(&a, &sa);
	decode_target(&b, &sb);
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &a, 0), 0);
	ck_assert_int_eq(pbr_view_decode_copy(&v, EV_FIELDS, &b, scratch,
					      sizeof(scratch)),
			 0);
	check_event(&b, &sb, sizeof(buf));
	ck_assert_str_eq(a.id, b.id);
	ck_assert_uint_eq(sa.len, sb.len);
	ck_assert_mem_eq(sa.data, sb.data, sa.len);
	ck_assert(inside(sa.data, sa.len, v.data, v.len));
	ck_assert(inside(sb.data, sb.len, scratch, v.len));
	ck_assert_int_eq(
		pbr_view_decode_copy(&v, EV_FIELDS, &b, scratch, v.len - 1),
		-ENOBUFS);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* --- descriptors, flags, spans misuse ------------------------------------- */

START_TEST(test_pointer_descriptor_refused)
{
	static const uint8_t msg[] = {0x0A, 0x02, 'h', 'i'};
	pbring_test_v1_PointerMsg pm;
	pbring_test_v1_Outer outer;
	pbring_test_v1_Holder h;
	struct fixture f;
	struct pbr_view v;

	fx_open(&f, "ptr", 1024);
	ck_assert_int_eq(pbr_producer_send(f.p, msg, sizeof(msg), 0, 0), 0);
	peek_ok(&f, &v);
	ck_assert_int_eq(
		pbr_view_decode(&v, pbring_test_v1_PointerMsg_fields, &pm, 0),
		-EINVAL);
	ck_assert_int_eq(
		pbr_view_decode(&v, pbring_test_v1_Outer_fields, &outer, 0),
		-EINVAL);
	/* Static types still decode (and the refusal is not cached). */
	ck_assert_int_eq(
		pbr_view_decode(&v, pbring_test_v1_Holder_fields, &h, 0),
		-EBADMSG);
	ck_assert_int_eq(
		pbr_view_decode(&v, pbring_test_v1_PointerMsg_fields, &pm, 0),
		-EINVAL);
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &outer, 0x80), -EINVAL);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

START_TEST(test_span_without_arg)
{
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span span;
	struct fixture f;
	struct pbr_view v;

	fx_open(&f, "span", 1024);
	send_event(&f, 3);
	peek_ok(&f, &v);
	decode_target(&ev, &span);
	ev.blob.arg = NULL;
	ck_assert_int_eq(pbr_view_decode(&v, EV_FIELDS, &ev, 0), -EBADMSG);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* The span callback in a plain pb_decode (no pbring decode running, so no
 * buffer it may point into) fails the decode instead of guessing. */
START_TEST(test_span_outside_pbring_decode)
{
	static const uint8_t bytes[] = {0x2A, 0x02, 'h', 'i'}; /* blob "hi" */
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span span;
	pb_istream_t is = pb_istream_from_buffer(bytes, sizeof(bytes));

	decode_target(&ev, &span);
	ck_assert(!pb_decode(&is, EV_FIELDS, &ev));
	ck_assert_ptr_null(span.data);
}
END_TEST

/* A Spans message, by hand: one = "A\0B", chunks "c1" "c22", items
 * {1,"x"} {2,"yy"}, blobs {"k": "v\0"}, names "n1", head {7,"h"}. */
static const uint8_t spans_wire[] = {
	0x0A, 3, 'A',  0,   'B',		       /* one */
	0x12, 2, 'c',  '1', 0x12, 3,	'c', '2', '2', /* chunks */
	0x1A, 5, 0x08, 1,   0x12, 1,	'x',	       /* items[0] */
	0x1A, 6, 0x08, 2,   0x12, 2,	'y', 'y',      /* items[1] */
	0x22, 7, 0x0A, 1,   'k',  0x12, 2,   'v', 0,   /* blobs */
	0x2A, 2, 'n',  '1',			       /* names */
	0x32, 5, 0x08, 7,   0x12, 1,	'h',	       /* head */
};

struct spans_target {
	pbring_test_v1_Spans msg;
	struct pbr_span one, head_name, items[4], chunks[4], blobs[4], names[4];
	struct pbr_span_list items_l, chunks_l, blobs_l, names_l;
};

static void spans_target_init(struct spans_target *t)
{
	memset(t, 0, sizeof(*t));
	t->items_l = (struct pbr_span_list){t->items, 4, 0};
	t->chunks_l = (struct pbr_span_list){t->chunks, 4, 0};
	t->blobs_l = (struct pbr_span_list){t->blobs, 4, 0};
	t->names_l = (struct pbr_span_list){t->names, 0, 0}; /* set later */
	t->msg.one.funcs.decode = pbr_pb_decode_span;
	t->msg.one.arg = &t->one;
	t->msg.chunks.funcs.decode = pbr_pb_decode_spans;
	t->msg.chunks.arg = &t->chunks_l;
	t->msg.items.funcs.decode = pbr_pb_decode_spans;
	t->msg.items.arg = &t->items_l;
	t->msg.blobs.funcs.decode = pbr_pb_decode_spans;
	t->msg.blobs.arg = &t->blobs_l;
	t->msg.names.funcs.decode = pbr_pb_decode_spans;
	t->msg.names.arg = &t->names_l;
	t->msg.head.name.funcs.decode = pbr_pb_decode_span;
	t->msg.head.name.arg = &t->head_name;
}

static void span_is(const struct pbr_span *s, const void *want, size_t n)
{
	ck_assert_uint_eq(s->len, n);
	ck_assert(!memcmp(s->data, want, n));
}

/* Spans over repeated and map fields, in wire order, pointing into the
 * slot; a second decode of a message without those fields empties them
 * (decode clears what pbring's callbacks own). */
START_TEST(test_spans_repeated_and_map)
{
	static const uint8_t only_head[] = {0x32, 2, 0x08, 9};
	struct spans_target t;
	struct fixture f;
	struct pbr_view v;
	pb_istream_t is;
	pbring_test_v1_Item item = pbring_test_v1_Item_init_zero;

	fx_open(&f, "spans", 1024);
	ck_assert_int_eq(pbr_producer_send(f.p, spans_wire, sizeof(spans_wire),
					   PBR_SEND_CRC, 0),
			 0);
	peek_ok(&f, &v);
	spans_target_init(&t);
	ck_assert_int_eq(
		pbr_view_decode(&v, pbring_test_v1_Spans_fields, &t.msg, 0),
		-EBADMSG); /* names has room for none */
	ck_assert_str_eq(pbr_codec_errmsg(), "spans: span list full");
	t.names_l.cap = 4;
	ck_assert_int_eq(
		pbr_view_decode(&v, pbring_test_v1_Spans_fields, &t.msg, 0), 0);
	span_is(&t.one, "A\0B", 3);
	ck_assert_uint_eq(t.chunks_l.count, 2);
	span_is(&t.chunks[0], "c1", 2);
	span_is(&t.chunks[1], "c22", 3);
	ck_assert_uint_eq(t.items_l.count, 2);
	/* Each element's span is a serialized Item, inside the slot. */
	ck_assert(t.items[1].data > v.data &&
		  (const uint8_t *)t.items[1].data <
			  (const uint8_t *)v.data + v.len);
	is = pb_istream_from_buffer(t.items[1].data, t.items[1].len);
	ck_assert(pb_decode(&is, pbring_test_v1_Item_fields, &item));
	ck_assert_int_eq(item.id, 2);
	ck_assert_uint_eq(t.blobs_l.count, 1);
	span_is(&t.blobs[0], "\x0A\x01k\x12\x02v\0", 7);
	ck_assert_uint_eq(t.names_l.count, 1);
	ck_assert_int_eq(t.msg.head.id, 7);
	span_is(&t.head_name, "h", 1);
	release_ok(&f, &v);

	ck_assert_int_eq(pbr_producer_send(f.p, only_head, sizeof(only_head),
					   PBR_SEND_CRC, 0),
			 0);
	peek_ok(&f, &v);
	ck_assert_int_eq(
		pbr_view_decode(&v, pbring_test_v1_Spans_fields, &t.msg, 0), 0);
	ck_assert_int_eq(t.msg.head.id, 9);
	ck_assert_ptr_null(t.one.data);
	ck_assert_uint_eq(t.one.len, 0);
	ck_assert_ptr_null(t.head_name.data);
	ck_assert_uint_eq(t.chunks_l.count + t.items_l.count + t.blobs_l.count +
				  t.names_l.count,
			  0);
	release_ok(&f, &v);
	fx_close(&f);
}
END_TEST

/* --- schema identity ------------------------------------------------------ */

START_TEST(test_schema_hash)
{
	const void *fds;
	uint32_t len;

	/* FNV-1a 64 reference values. */
	ck_assert_uint_eq(pbr_schema_hash("a", 1), 0xaf63dc4c8601ec8cull);
	ck_assert_uint_eq(pbr_schema_hash("foobar", 6), 0x85944171f73967e8ull);
	ck_assert_uint_eq(pbr_schema_hash(NULL, 0), 0);
	pbr_demo_schema(&fds, &len);
	ck_assert_uint_gt(len, 100);
	ck_assert_uint_eq(((const uint8_t *)fds)[0], 0x0A); /* file = 1 */
	ck_assert_ptr_nonnull(
		memmem(fds, len, "pbring/demo/v1/device.proto", 27));
	ck_assert_ptr_nonnull(memmem(fds, len, "DeviceEvent", 11));
	ck_assert_uint_ne(pbr_schema_hash(fds, len), 0);
}
END_TEST

static struct pbr_ring *create_typed(const char *tag, const char *type,
				     uint64_t *hash)
{
	struct pbr_create_opts o = {.slot_count = 4, .slot_size = 256};
	struct pbr_ring *r = NULL;
	int rc;

	if (type) {
		o.msg_type = type;
		pbr_demo_schema(&o.schema, &o.schema_len);
		o.schema_hash = *hash = pbr_schema_hash(o.schema, o.schema_len);
	}
	rc = pbr_ring_create(tu_name(tag), &o, &r);
	ck_assert_msg(rc == 0, "create: %d %s", rc, pbr_strerror(rc));
	return r;
}

/* Raw bytes with the codec's extras: CRC and timestamp as send_pb sets. */
START_TEST(test_send_flags)
{
	const char *name = tu_name("sendex");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_BLOCK);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	static const char msg[] = "bytes with a checksum";
	uint8_t big[256] = {0};
	struct pbr_view v;

	ck_assert_int_eq(pbr_producer_send(p, msg, sizeof(msg), 0x80, 0),
			 -EINVAL);
	ck_assert_int_eq(
		pbr_producer_send(p, big, sizeof(big), PBR_SEND_CRC, 0),
		-EMSGSIZE);
	ck_assert_int_eq(pbr_producer_send(p, msg, sizeof(msg),
					   PBR_SEND_CRC | PBR_SEND_TIMESTAMP,
					   0),
			 0);
	ck_assert_int_eq(pbr_reader_peek(rd, TU_SEC, &v), 0);
	ck_assert_uint_eq(v.len, sizeof(msg));
	ck_assert(v.flags & PBR_SLOT_F_CRC);
	ck_assert_uint_eq(v.crc32c, tu_crc32c(msg, sizeof(msg)));
	ck_assert_int_eq(pbr_view_verify(&v), 0);
	ck_assert_uint_gt(v.timestamp_ns, 0);
	ck_assert_uint_le(v.timestamp_ns, tu_now_ns());
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* Send @len raw bytes and a DeviceEvent with a blob of @blob bytes; say
 * whether each arrived with a CRC (bit 0: raw, bit 1: protobuf). */
static unsigned crc_flags_of(struct pbr_ring *r, uint32_t len, size_t blob)
{
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_LATEST, PBR_WAIT_BLOCK);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	static uint8_t buf[2048];
	pbring_demo_v1_DeviceEvent ev;
	struct pbr_span span;
	struct pbr_view v;
	unsigned got = 0;
	int k;

	ck_assert_int_eq(pbr_producer_send(p, buf, len, PBR_SEND_CRC, 0), 0);
	make_event(&ev, &span, buf, blob);
	ck_assert_int_eq(pbr_producer_send_pb(p, EV_FIELDS, &ev, 0), 0);
	for (k = 0; k < 2; k++) {
		ck_assert_int_eq(pbr_reader_peek(rd, TU_SEC, &v), 0);
		ck_assert_int_eq(pbr_view_verify(&v), 0);
		if (v.flags & PBR_SLOT_F_CRC)
			got |= 1u << k;
		ck_assert_uint_eq(pbr_producer_wants_crc(p, (uint32_t)v.len),
				  !!(v.flags & PBR_SLOT_F_CRC));
		ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	}
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	return got;
}

static struct pbr_ring *crc_ring(const char *name, uint32_t crc, uint32_t limit,
				 int want)
{
	struct pbr_create_opts o = {.slot_count = 8, .slot_size = 4096};
	struct pbr_ring *r = NULL;

	o.crc = crc;
	o.crc_limit = limit;
	ck_assert_int_eq(pbr_ring_create(name, &o, &r), want);
	return r;
}

/* FORMAT.md §6.2, CRC policy: producers follow the ring's, readers verify
 * what carries a CRC. */
START_TEST(test_crc_policy)
{
	struct pbr_ring_info i;
	struct pbr_ring *r;

	ck_assert_ptr_null(crc_ring(tu_name("crcbad1"), 3, 0, -EINVAL));
	ck_assert_ptr_null(
		crc_ring(tu_name("crcbad2"), PBR_CRC_FULL, 10, -EINVAL));
	ck_assert_ptr_null(
		crc_ring(tu_name("crcbad3"), PBR_CRC_NONE, 10, -EINVAL));

	r = crc_ring(tu_name("crcfull"), PBR_CRC_FULL, 0, 0);
	pbr_ring_info(r, &i);
	ck_assert_uint_eq(i.crc, PBR_CRC_FULL);
	ck_assert_uint_eq(i.format_minor, PBR_FORMAT_MINOR);
	ck_assert_uint_eq(crc_flags_of(r, 100, 1000), 3);
	pbr_ring_detach(r);

	r = crc_ring(tu_name("crcnone"), PBR_CRC_NONE, 0, 0);
	pbr_ring_info(r, &i);
	ck_assert_uint_eq(i.crc, PBR_CRC_NONE);
	ck_assert_uint_eq(crc_flags_of(r, 100, 1000), 0);
	pbr_ring_detach(r);

	/* UPTO 200: 200 bytes get one, 201 do not. */
	r = crc_ring(tu_name("crcupto"), PBR_CRC_UPTO, 200, 0);
	pbr_ring_info(r, &i);
	ck_assert_uint_eq(i.crc, PBR_CRC_UPTO);
	ck_assert_uint_eq(i.crc_limit, 200);
	ck_assert_uint_eq(crc_flags_of(r, 200, 1000), 1);
	ck_assert_uint_eq(crc_flags_of(r, 201, 20), 2);
	pbr_ring_detach(r);
}
END_TEST

/* A policy from a newer minor is read as FULL: a CRC too many. */
START_TEST(test_crc_policy_unknown)
{
	const char *name = tu_name("crcnew");
	struct pbr_ring *r = crc_ring(name, PBR_CRC_NONE, 0, 0);
	struct pbr_ring_info i;
	struct tu_raw raw;

	pbr_ring_detach(r);
	ck_assert_int_eq(tu_raw_map(name, &raw), 0);
	raw.sb->crc_policy = 7;
	raw.sb->crc_limit = 5;
	tu_raw_unmap(&raw);
	r = tu_attach(name);
	pbr_ring_info(r, &i);
	ck_assert_uint_eq(i.crc, PBR_CRC_FULL);
	ck_assert_uint_eq(i.crc_limit, 0);
	ck_assert_uint_eq(crc_flags_of(r, 100, 1000), 3);
	pbr_ring_detach(r);
}
END_TEST

START_TEST(test_check_type)
{
	uint64_t h = 0;
	struct pbr_ring *r = create_typed("typed", PBR_DEMO_DEVICE_EVENT, &h);
	struct pbr_ring *u = create_typed("untyped", NULL, NULL);
	struct pbr_ring_info info;

	ck_assert_int_eq(pbr_ring_check_type(r, PBR_DEMO_DEVICE_EVENT, h), 0);
	ck_assert_int_eq(pbr_ring_check_type(r, PBR_DEMO_DEVICE_EVENT, 0), 0);
	ck_assert_int_eq(pbr_ring_check_type(r, PBR_DEMO_SYNC_ACK, h),
			 -EMEDIUMTYPE);
	ck_assert_int_eq(pbr_ring_check_type(r, "pbring.demo.v1.Device", 0),
			 -EMEDIUMTYPE);
	ck_assert_int_eq(pbr_ring_check_type(r, PBR_DEMO_DEVICE_EVENT, h ^ 1),
			 -EMEDIUMTYPE);
	ck_assert_int_eq(pbr_ring_check_type(r, NULL, 0), -EINVAL);
	ck_assert_int_eq(pbr_ring_check_type(u, PBR_DEMO_DEVICE_EVENT, 0),
			 -EMEDIUMTYPE);
	ck_assert_int_eq(pbr_ring_check_type(u, "", 0), -EMEDIUMTYPE);
	pbr_ring_info(r, &info);
	ck_assert_uint_eq(pbr_schema_hash(info.schema, info.schema_len), h);
	pbr_ring_detach(r);
	pbr_ring_detach(u);
}
END_TEST

/* --- trace context ---------------------------------------------------- */

#define TP_OK "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

START_TEST(test_traceparent_parse)
{
	static const char *const bad[] = {
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01",
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
	};
	uint8_t tid[16], sid[8], fl = 0x77;
	char out[PBR_TRACEPARENT_LEN + 1];
	size_t i;

	ck_assert_int_eq(pbr_traceparent_parse(TP_OK, tid, sid, &fl), 0);
	ck_assert_uint_eq(tid[0], 0x4b);
	ck_assert_uint_eq(tid[15], 0x36);
	ck_assert_uint_eq(sid[0], 0x00);
	ck_assert_uint_eq(sid[7], 0xb7);
	ck_assert_uint_eq(fl, 0x01);
	ck_assert_int_eq(pbr_traceparent_format(tid, sid, fl, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, TP_OK);
	ck_assert_int_eq(
		pbr_traceparent_format(tid, sid, fl, out, PBR_TRACEPARENT_LEN),
		-EINVAL);
	/* A later version: its first four fields, the rest ignored. */
	ck_assert_int_eq(
		pbr_traceparent_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-"
				      "00f067aa0ba902b7-09-what-comes",
				      tid, sid, &fl),
		0);
	ck_assert_uint_eq(fl, 0x09);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fl = 0x77;
		ck_assert_msg(pbr_traceparent_parse(bad[i], tid, sid, &fl) ==
				      -EINVAL,
			      "accepted '%s'", bad[i]);
		ck_assert_uint_eq(fl, 0x77); /* untouched */
	}
	memset(tid, 0, sizeof(tid));
	ck_assert_int_eq(pbr_traceparent_format(tid, sid, 1, out, sizeof(out)),
			 -ENODATA);
}
END_TEST

/* Through the ring: a slot given a traceparent, the view gives it back,
 * flags included; a message without one says so. */
START_TEST(test_traceparent_ring)
{
	const char *name = tu_name("tp");
	struct pbr_ring *r = tu_create(name, 8, 256, 0, 0);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_BLOCK);
	struct pbr_reader *rd = tu_reader(r, 0, PBR_START_OLDEST, 0);
	char out[PBR_TRACEPARENT_LEN + 1];
	struct pbr_slot s;
	struct pbr_view v;

	ck_assert_int_eq(pbr_producer_reserve(p, 0, &s), 0);
	ck_assert_int_eq(pbr_slot_set_traceparent(&s, "nonsense"), -EINVAL);
	ck_assert_uint_eq(s.flags & PBR_SLOT_F_TRACE, 0);
	ck_assert_int_eq(pbr_slot_set_traceparent(&s, TP_OK), 0);
	ck_assert_uint_eq(s.flags & PBR_SLOT_F_TRACE, PBR_SLOT_F_TRACE);
	ck_assert_int_eq(pbr_producer_commit(p, &s, 3), 0);
	ck_assert_int_eq(pbr_producer_send(p, "abc", 3, 0, 0), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.trace_flags, 0x01);
	ck_assert_int_eq(pbr_view_traceparent(&v, out, sizeof(out)), 0);
	ck_assert_str_eq(out, TP_OK);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	ck_assert_uint_eq(v.flags & PBR_SLOT_F_TRACE, 0);
	ck_assert_uint_eq(v.trace_flags, 0);
	ck_assert_int_eq(pbr_view_traceparent(&v, out, sizeof(out)), -ENODATA);
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc;

	tc = tcase_create("crc32c");
	tcase_add_test(tc, test_crc_vectors);
	tcase_add_test(tc, test_crc_chaining);
	tcase_add_test(tc, test_crc_hw_equals_sw);
	tcase_add_test(tc, test_crc_copy);
	suite_add_tcase(s, tc);

	tc = tu_tcase("roundtrip", 10);
	tcase_add_test(tc, test_event_round_trip);
	tcase_add_test(tc, test_event_no_callback_max_id);
	tcase_add_test(tc, test_alltypes_bytes_equal_protoc);
	tcase_add_test(tc, test_alltypes_decode_protoc);
	tcase_add_test(tc, test_alltypes_unpacked);
	tcase_add_test(tc, test_decode_copy_identical);
	suite_add_tcase(s, tc);

	tc = tu_tcase("errors", 10);
	tcase_add_test(tc, test_crc_corrupt_then_next);
	tcase_add_test(tc, test_garbage_payload);
	tcase_add_test(tc, test_bad_lengths);
	tcase_add_test(tc, test_view_truncated);
	tcase_add_test(tc, test_oversize_nothing_delivered);
	tcase_add_test(tc, test_unencodable_nothing_delivered);
	tcase_add_test(tc, test_pointer_descriptor_refused);
	tcase_add_test(tc, test_span_without_arg);
	tcase_add_test(tc, test_span_outside_pbring_decode);
	tcase_add_test(tc, test_spans_repeated_and_map);
	suite_add_tcase(s, tc);

	tc = tu_tcase("schema", 10);
	tcase_add_test(tc, test_schema_hash);
	tcase_add_test(tc, test_check_type);
	tcase_add_test(tc, test_send_flags);
	tcase_add_test(tc, test_event_in_place);
	tcase_add_test(tc, test_no_timestamp);
	tcase_add_test(tc, test_in_place_errors);
	tcase_add_test(tc, test_crc_policy);
	tcase_add_test(tc, test_crc_policy_unknown);
	tcase_add_test(tc, test_traceparent_parse);
	tcase_add_test(tc, test_traceparent_ring);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(codec_suite());
}
