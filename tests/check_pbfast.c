/* SPDX-License-Identifier: MIT */
/*
 * The codec's fast path (codec/pbfast.c) against nanopb: random Flat
 * messages (pbring.test.v1.Flat, every field kind the path plans) must
 * encode to the same bytes, and their encodings, and damaged copies of
 * them (bytes flipped, cut, inserted, unknown and mistyped fields), must
 * decode to the same struct or fail alike, with nanopb's message. Also:
 * descriptors the path does not plan go to nanopb untouched.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pbring/demo/v1/device.pb.h"
#include "pbring/test/v1/alltypes.pb.h"
#include "pbring/test/v1/flat.pb.h"
#include "pbring/test/v1/legacy.pb.h"
#include "pbring/test/v1/pointer.pb.h"
#include "pbring/test/v1/spans.pb.h"
#include <pb.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "pbring.h"
#include "pbring/pb.h"
#include "testutil.h"

#define FLAT pbring_test_v1_Flat_fields
#define ROUNDS 20000

typedef pbring_test_v1_Flat Flat;

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: reproducible from the seed printed on failure. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

/* Values near the edges more often than not. */
static uint64_t value(uint64_t *s)
{
	static const uint64_t edge[] = {
		0,	     1,		  0x7F,	      0x80,  0x7FFFFFFF,
		0x80000000u, 0xFFFFFFFFu, 1ull << 32, ~0ull, 1ull << 63};
	uint64_t r = rnd(s);

	if (r % 3 == 0)
		return edge[(r >> 8) % (sizeof(edge) / sizeof(edge[0]))];
	return rnd(s) >> (r % 64);
}

/* The callback field: what the encoder writes, what the decoder saw. */
struct cb_state {
	uint8_t out[20];
	size_t out_len;
	struct pbr_span span; /* over out, for pbr_pb_encode_span */
	int enc_calls;
	uint8_t in[64];
	size_t in_len;
	int calls;
};

static bool cb_encode(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
	struct cb_state *st = *arg;

	st->enc_calls++;
	if (!st->out_len)
		return true;
	return pb_encode_tag_for_field(os, f) &&
	       pb_encode_string(os, st->out, st->out_len);
}

static bool cb_decode(pb_istream_t *is, const pb_field_t *f, void **arg)
{
	struct cb_state *st = *arg;
	size_t n = is->bytes_left;

	(void)f;
	st->calls++;
	if (n > sizeof(st->in))
		PB_RETURN_ERROR(is, "test callback: too long");
	st->in_len = n;
	return pb_read(is, st->in, n);
}

static void random_flat(Flat *m, struct cb_state *cb, uint64_t *s)
{
	uint64_t r = rnd(s);
	size_t i, n;

	memset(m, 0, sizeof(*m));
	/* Roughly half the fields set, with random bit patterns. */
#define SET(field)                                                             \
	do {                                                                   \
		uint64_t v_ = value(s);                                        \
		if (rnd(s) & 1)                                                \
			memcpy(&m->field, &v_, sizeof(m->field));              \
	} while (0)
	SET(f_double);
	SET(f_float);
	SET(f_int32);
	SET(f_int64);
	SET(f_uint32);
	SET(f_uint64);
	SET(f_sint32);
	SET(f_sint64);
	SET(f_fixed32);
	SET(f_fixed64);
	SET(f_sfixed32);
	SET(f_sfixed64);
	SET(f_enum);
	SET(i8);
	SET(i16);
	SET(u8);
	SET(s16);
	SET(f_high);
	SET(p_int32);
	SET(p_sint64);
#undef SET
	m->f_bool = r & 1;
	m->has_p_int32 = (r >> 1) & 1;
	m->has_p_string = (r >> 2) & 1;
	m->has_p_bool = (r >> 3) & 1;
	m->has_p_sint64 = (r >> 4) & 1;
	m->p_bool = (r >> 5) & 1;
	/* Strings: up to max_size - 1, now and then unterminated. */
	n = rnd(s) % sizeof(m->f_string);
	for (i = 0; i < n; i++)
		m->f_string[i] = (char)('a' + rnd(s) % 26);
	if (rnd(s) % 50 == 0)
		memset(m->f_string, 'x', sizeof(m->f_string));
	n = rnd(s) % sizeof(m->p_string);
	for (i = 0; i < n; i++)
		m->p_string[i] = (char)('A' + rnd(s) % 26);
	/* Bytes: up to its bound, now and then a size beyond it. */
	m->f_bytes.size = (pb_size_t)(rnd(s) % (sizeof(m->f_bytes.bytes) + 1));
	if (rnd(s) % 50 == 0)
		m->f_bytes.size = sizeof(m->f_bytes.bytes) + 1;
	for (i = 0; i < sizeof(m->f_bytes.bytes); i++)
		m->f_bytes.bytes[i] = (uint8_t)rnd(s);
	cb->out_len = rnd(s) % sizeof(cb->out);
	for (i = 0; i < cb->out_len; i++)
		cb->out[i] = (uint8_t)rnd(s);
	cb->enc_calls = 0;
	switch (rnd(s) % 10) {
	case 0: /* a user's callback: nanopb's path */
		m->cb.funcs.encode = cb_encode;
		m->cb.arg = cb;
		break;
	case 1: /* unset: nothing encoded */
		break;
	default:
		cb->span = (struct pbr_span){cb->out, cb->out_len};
		m->cb.funcs.encode = pbr_pb_encode_span;
		m->cb.arg = rnd(s) % 20 ? &cb->span : NULL;
	}
}

/* Both encoders: the same verdict, the same bytes. A user's callback is
 * left to nanopb, untouched, so that it runs once. */
static size_t encode_both(const Flat *m, const struct cb_state *cb,
			  uint8_t *out, size_t cap, uint64_t seed)
{
	uint8_t slow[512];
	pb_ostream_t os = pb_ostream_from_buffer(slow, cap);
	size_t fast_n = 0;
	uint32_t crc = 0x1234u;
	bool user = m->cb.funcs.encode == cb_encode;
	int fast_ok = pbri_fast_encode(FLAT, m, out, cap, &fast_n, &crc);
	int calls = cb->enc_calls;
	bool slow_ok = pb_encode(&os, FLAT, m);

	ck_assert_msg(!user || (!fast_ok && !calls),
		      "seed %llu: the fast path ran a user's callback (%d)",
		      (unsigned long long)seed, calls);
	ck_assert_msg(fast_ok || !slow_ok || cap < 200 || user,
		      "seed %llu: fast path declined an encodable message",
		      (unsigned long long)seed);
	if (!fast_ok)
		return slow_ok ? (memcpy(out, slow, os.bytes_written),
				  os.bytes_written)
			       : 0;
	ck_assert_msg(slow_ok, "seed %llu: fast encoded, nanopb refused: %s",
		      (unsigned long long)seed, PB_GET_ERROR(&os));
	ck_assert_msg(fast_n == os.bytes_written && !memcmp(out, slow, fast_n),
		      "seed %llu: encodings differ (%zu vs %zu bytes)",
		      (unsigned long long)seed, fast_n, os.bytes_written);
	ck_assert_msg(crc == pbr_crc32c(0x1234u, out, fast_n),
		      "seed %llu: the encoder's CRC is wrong",
		      (unsigned long long)seed);
	return fast_n;
}

/* Both decoders from the same start: same verdict, message and struct. */
static void decode_both(const uint8_t *buf, size_t n, uint64_t seed)
{
	struct cb_state sa, sb;
	Flat a, b;
	pb_istream_t is = pb_istream_from_buffer(buf, n);
	const char *why = NULL;
	bool slow_ok;
	int fast;

	memset(&a, 0x5A, sizeof(a));
	memset(&b, 0x5A, sizeof(b));
	memset(&sa, 0, sizeof(sa));
	memset(&sb, 0, sizeof(sb));
	a.cb.funcs.decode = b.cb.funcs.decode = cb_decode;
	a.cb.arg = &sa;
	b.cb.arg = &sb;
	slow_ok = pb_decode(&is, FLAT, &a);
	fast = pbri_fast_decode(FLAT, &b, buf, n, &why);
	ck_assert_msg(fast != 0, "seed %llu: Flat not planned",
		      (unsigned long long)seed);
	ck_assert_msg(slow_ok == (fast > 0),
		      "seed %llu: nanopb %s, fast %s (%s) on %zu bytes",
		      (unsigned long long)seed, slow_ok ? "ok" : "failed",
		      fast > 0 ? "ok" : "failed", why ? why : "", n);
	if (!slow_ok) {
		ck_assert_msg(is.errmsg && why && !strcmp(is.errmsg, why),
			      "seed %llu: nanopb says '%s', fast '%s'",
			      (unsigned long long)seed,
			      is.errmsg ? is.errmsg : "(none)", why);
		return;
	}
	b.cb.arg = a.cb.arg; /* each its own state, compared below */
	ck_assert_msg(!memcmp(&a, &b, sizeof(a)) && sa.calls == sb.calls &&
			      sa.in_len == sb.in_len &&
			      !memcmp(sa.in, sb.in, sa.in_len),
		      "seed %llu: decoded structs differ",
		      (unsigned long long)seed);
}

/* A damaged copy of @in: flips, cuts, inserted keys and values. */
static size_t damage(const uint8_t *in, size_t n, uint8_t *out, size_t cap,
		     uint64_t *s)
{
	size_t m = n, at, k;
	uint64_t r = rnd(s);

	memcpy(out, in, n);
	switch (r % 5) {
	case 0: /* flip a few bytes */
		for (k = 0; m && k < 1 + r % 3; k++)
			out[rnd(s) % m] ^= (uint8_t)(1u << (rnd(s) % 8));
		break;
	case 1: /* cut */
		m = m ? rnd(s) % m : 0;
		break;
	case 2: /* a random key and a few random bytes in between */
	case 3:
		at = m ? rnd(s) % (m + 1) : 0;
		k = 1 + rnd(s) % 6;
		if (m + k > cap)
			break;
		memmove(out + at + k, out + at, m - at);
		for (size_t i = 0; i < k; i++)
			out[at + i] = (uint8_t)rnd(s);
		if (r % 5 == 2) /* a plausible key: known or unknown tag */
			out[at] = (uint8_t)((rnd(s) % 30) << 3 | rnd(s) % 8);
		m += k;
		break;
	default: /* random bytes altogether */
		m = rnd(s) % 40;
		for (k = 0; k < m; k++)
			out[k] = (uint8_t)rnd(s);
	}
	return m;
}

START_TEST(test_random_flat)
{
	uint64_t seed0 = 0x9E3779B97F4A7C15ull ^ (uint64_t)_i, s = seed0;
	uint8_t buf[512], bad[600];
	struct cb_state cb;
	Flat m;
	size_t n, k;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		uint64_t seed = s;

		random_flat(&m, &cb, &s);
		/* Now and then too little room: both must agree it fails. */
		n = encode_both(&m, &cb, buf,
				rnd(&s) % 10 ? sizeof(buf) : rnd(&s) % 60,
				seed);
		decode_both(buf, n, seed);
		for (k = 0; k < 4; k++) {
			size_t d = damage(buf, n, bad, sizeof(bad), &s);

			decode_both(bad, d, seed);
		}
	}
	(void)seed0;
}
END_TEST

/* --- through the ring: pbring's own span callbacks ----------------------- */

#define EV pbring_demo_v1_DeviceEvent
#define EV_FIELDS pbring_demo_v1_DeviceEvent_fields

/* Send @m with the fast path on or off; the committed bytes. */
static size_t send_event(struct pbr_producer *p, struct pbr_reader *rd,
			 const EV *m, bool fast, uint8_t *out)
{
	struct pbr_view v;
	size_t n;

	pbri_fast_off = !fast;
	ck_assert_int_eq(pbr_producer_send_pb(p, EV_FIELDS, m, 0), 0);
	pbri_fast_off = false;
	ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
	/* The CRC, taken as the encoder wrote (a large blob read once) or
	 * after it, is the payload's. */
	ck_assert(v.flags & PBR_SLOT_F_CRC);
	ck_assert_int_eq(pbr_view_verify(&v), 0);
	memcpy(out, v.data, v.len);
	n = v.len;
	ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
	return n;
}

/* Decode the view both ways: same verdict, message, fields and span. */
static void decode_view_both(const struct pbr_view *v, uint64_t seed)
{
	struct pbr_span sa, sb;
	char ea[128] = "";
	EV a, b;
	int ra, rb;

	memset(&a, 0x5A, sizeof(a));
	memset(&b, 0x5A, sizeof(b));
	a.blob.funcs.decode = b.blob.funcs.decode = pbr_pb_decode_span;
	a.blob.arg = &sa;
	b.blob.arg = &sb;
	pbri_fast_off = true;
	ra = pbr_view_decode(v, EV_FIELDS, &a, PBR_DECODE_NOVERIFY);
	pbri_fast_off = false;
	if (ra)
		snprintf(ea, sizeof(ea), "%s", pbr_codec_errmsg());
	rb = pbr_view_decode(v, EV_FIELDS, &b, PBR_DECODE_NOVERIFY);
	ck_assert_msg(ra == rb, "seed %llu: nanopb %d, fast %d (%s)",
		      (unsigned long long)seed, ra, rb, pbr_codec_errmsg());
	if (ra) {
		ck_assert_msg(!strcmp(ea, pbr_codec_errmsg()),
			      "seed %llu: nanopb says '%s', fast '%s'",
			      (unsigned long long)seed, ea, pbr_codec_errmsg());
		return;
	}
	b.blob.arg = a.blob.arg;
	ck_assert_msg(!memcmp(&a, &b, sizeof(a)) && sa.data == sb.data &&
			      sa.len == sb.len,
		      "seed %llu: decoded events differ",
		      (unsigned long long)seed);
}

START_TEST(test_random_events)
{
	const char *name = tu_name("fastev");
	struct pbr_ring *r = tu_create(name, 8, 4096, 0, 0);
	struct pbr_producer *p = tu_producer(r, PBR_WAIT_SPIN);
	struct pbr_reader *rd =
		tu_reader(r, 0, PBR_START_OLDEST, PBR_WAIT_SPIN);
	uint8_t fast[4096], slow[4096], bad[4096], blob[3000];
	uint64_t s = 0xC0FFEEull + (uint64_t)_i;
	struct pbr_span span;
	struct pbr_view v;
	size_t nf, ns, d;
	EV m;
	int i, k;

	for (i = 0; i < 3000; i++) {
		uint64_t seed = s;

		memset(&m, 0, sizeof(m));
		snprintf(m.id, sizeof(m.id), "%.*s", (int)(rnd(&s) % 65),
			 "device-0123456789abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
		m.status = (int32_t)value(&s);
		m.seq = value(&s);
		m.sent_ns = value(&s);
		/* Now and then large enough to be checksummed as copied. */
		span.len = rnd(&s) % (rnd(&s) % 4 ? 300 : sizeof(blob));
		for (size_t j = 0; j < span.len; j++)
			blob[j] = (uint8_t)rnd(&s);
		span.data = blob;
		m.blob.funcs.encode = pbr_pb_encode_span;
		m.blob.arg = rnd(&s) % 20 ? &span : NULL;
		nf = send_event(p, rd, &m, true, fast);
		ns = send_event(p, rd, &m, false, slow);
		ck_assert_msg(nf == ns && !memcmp(fast, slow, nf),
			      "seed %llu: encodings differ",
			      (unsigned long long)seed);
		for (k = 0; k < 5; k++) {
			d = k ? damage(fast, nf, bad, sizeof(bad), &s) : nf;
			if (!k)
				memcpy(bad, fast, nf);
			ck_assert_int_eq(
				pbr_producer_send(p, bad, (uint32_t)d, 0, 0),
				0);
			ck_assert_int_eq(pbr_reader_peek(rd, 0, &v), 0);
			decode_view_both(&v, seed);
			ck_assert_int_eq(pbr_reader_release(rd, &v), 0);
		}
	}
	(void)pbr_producer_close(p);
	pbr_reader_close(rd);
	pbr_ring_detach(r);
}
END_TEST

/* --- plans under nesting, and what is not planned ------------------------ */

/* A decode callback that decodes other messages, one descriptor each,
 * more than the plans a thread keeps: the outer decode's plan must stay
 * its own while the callback runs. */
static const pb_msgdesc_t *const nested_descs[] = {
	pbring_demo_v1_DeviceEvent_fields, pbring_demo_v1_SyncAck_fields,
	pbring_test_v1_Item_fields,	   pbring_test_v1_Nested_fields,
	pbring_test_v1_Holder_fields,	   pbring_test_v1_PointerMsg_fields,
	pbring_test_v1_Spans_fields,
};

static bool cb_decode_nested(pb_istream_t *is, const pb_field_t *f, void **arg)
{
	static _Alignas(16) uint8_t scratch[16384];
	const char *why;
	size_t i;

	(void)f;
	for (i = 0; i < sizeof(nested_descs) / sizeof(nested_descs[0]); i++) {
		memset(scratch, 0, sizeof(scratch));
		if (pbri_fast_decode(nested_descs[i], scratch, "", 0, &why) < 0)
			return false;
	}
	return cb_decode(is, f, arg);
}

START_TEST(test_nested_decode_keeps_its_plan)
{
	Flat m = pbring_test_v1_Flat_init_zero, a, b;
	struct cb_state sa, sb;
	/* cb (21, length-delimited: key 0xAA 0x01) first, then the rest */
	uint8_t buf[256] = {0xAA, 0x01, 3, 'x', 'y', 'z'};
	pb_ostream_t os = pb_ostream_from_buffer(buf + 6, sizeof(buf) - 6);
	pb_istream_t is;
	const char *why = NULL;
	size_t n;

	m.f_int32 = -7;
	m.f_fixed64 = 0x0102030405060708ull;
	strcpy(m.f_string, "after callback");
	m.has_p_int32 = true;
	m.p_int32 = 42;
	ck_assert(pb_encode(&os, FLAT, &m));
	n = 6 + os.bytes_written;
	memset(&a, 0x5A, sizeof(a));
	memset(&b, 0x5A, sizeof(b));
	memset(&sa, 0, sizeof(sa));
	memset(&sb, 0, sizeof(sb));
	a.cb.funcs.decode = cb_decode;
	b.cb.funcs.decode = cb_decode_nested;
	a.cb.arg = &sa;
	b.cb.arg = &sb;
	is = pb_istream_from_buffer(buf, n);
	ck_assert(pb_decode(&is, FLAT, &a));
	ck_assert_int_eq(pbri_fast_decode(FLAT, &b, buf, n, &why), 1);
	b.cb = a.cb;
	ck_assert_msg(!memcmp(&a, &b, sizeof(a)), "decoded structs differ");
	ck_assert_int_eq(sb.calls, 1);
	ck_assert_uint_eq(sb.in_len, 3);
	ck_assert_str_eq(b.f_string, "after callback");
	ck_assert_int_eq(b.p_int32, 42);
	/* And again, now that the other plans are built. */
	memset(&b, 0x5A, sizeof(b));
	b.cb.funcs.decode = cb_decode_nested;
	b.cb.arg = &sb;
	ck_assert_int_eq(pbri_fast_decode(FLAT, &b, buf, n, &why), 1);
	b.cb = a.cb;
	ck_assert(!memcmp(&a, &b, sizeof(a)));
}
END_TEST

/* nanopb checks required fields after decoding ("missing required
 * field"): a message that has any is left to nanopb, both ways. */
START_TEST(test_required_not_planned)
{
	pbring_test_v1_Legacy m = pbring_test_v1_Legacy_init_zero;
	uint8_t x_only[] = {2 << 3, 5};
	struct pbr_view v = {.data = x_only, .len = sizeof(x_only)};
	uint8_t buf[64];
	const char *why = NULL;
	size_t n = 0;

	ck_assert_int_eq(pbri_fast_decode(pbring_test_v1_Legacy_fields, &m,
					  x_only, sizeof(x_only), &why),
			 0);
	ck_assert_int_eq(pbri_fast_encode(pbring_test_v1_Legacy_fields, &m, buf,
					  sizeof(buf), &n, NULL),
			 0);
	ck_assert_int_eq(pbr_view_decode(&v, pbring_test_v1_Legacy_fields, &m,
					 PBR_DECODE_NOVERIFY),
			 -EBADMSG);
	ck_assert_str_eq(pbr_codec_errmsg(), "missing required field");
}
END_TEST

/* nanopb marks an optional field present before it checks the wire type;
 * so does the fast path, on the failed decode too. */
START_TEST(test_has_set_before_wire_check)
{
	uint8_t buf[] = {0x8A, 0x01, 0}; /* p_int32 (17), length-delimited */
	pb_istream_t is = pb_istream_from_buffer(buf, sizeof(buf));
	const char *why = NULL;
	Flat a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	ck_assert(!pb_decode(&is, FLAT, &a));
	ck_assert_int_eq(pbri_fast_decode(FLAT, &b, buf, sizeof(buf), &why),
			 -1);
	ck_assert_str_eq(why, is.errmsg);
	ck_assert_int_eq(a.has_p_int32, 1);
	ck_assert_int_eq(b.has_p_int32, 1);
}
END_TEST

/* The demo event (what the ring's users send most) is planned, and so
 * decoded and encoded here; AllTypes (repeated, oneof, submessages,
 * maps) is not, and goes to nanopb untouched. */
START_TEST(test_planned_or_not)
{
	pbring_demo_v1_DeviceEvent ev = pbring_demo_v1_DeviceEvent_init_zero;
	pbring_test_v1_AllTypes all;
	uint8_t buf[256];
	const char *why = NULL;
	size_t n = 0;

	ev.seq = 5;
	ck_assert_int_eq(pbri_fast_encode(pbring_demo_v1_DeviceEvent_fields,
					  &ev, buf, sizeof(buf), &n, NULL),
			 1);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(pbri_fast_decode(pbring_demo_v1_DeviceEvent_fields,
					  &ev, buf, n, &why),
			 1);
	memset(&all, 0x5A, sizeof(all));
	ck_assert_int_eq(pbri_fast_encode(pbring_test_v1_AllTypes_fields, &all,
					  buf, sizeof(buf), &n, NULL),
			 0);
	ck_assert_int_eq(pbri_fast_decode(pbring_test_v1_AllTypes_fields, &all,
					  buf, 2, &why),
			 0);
	ck_assert_uint_eq(((uint8_t *)&all)[0], 0x5A); /* untouched */
	pbri_fast_off = true;
	ck_assert_int_eq(pbri_fast_encode(pbring_demo_v1_DeviceEvent_fields,
					  &ev, buf, sizeof(buf), &n, NULL),
			 0);
	pbri_fast_off = false;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pbfast");
	TCase *tc = tu_tcase("differential", 60);

	tcase_add_loop_test(tc, test_random_flat, 0, 4);
	tcase_add_loop_test(tc, test_random_events, 0, 2);
	tcase_add_test(tc, test_planned_or_not);
	tcase_add_test(tc, test_nested_decode_keeps_its_plan);
	tcase_add_test(tc, test_required_not_planned);
	tcase_add_test(tc, test_has_set_before_wire_check);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
