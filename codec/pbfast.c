/* SPDX-License-Identifier: MIT */
/*
 * The codec's fast path: nanopb's own results, byte for byte, for flat
 * messages, without nanopb's per-field cost.
 *
 * pb_encode() and pb_decode() walk the packed descriptor with a field
 * iterator for every field of every message and read the input a byte at
 * a time through the stream's callback: for the 64-byte demo event that
 * is ~150 ns to encode and ~200 ns to decode, five times the ring's own
 * cost. Here a descriptor is walked once into a plan (the field's key,
 * kind, offsets) kept per thread, and messages are encoded and decoded
 * from a pointer with that plan.
 *
 * Only what has one obvious meaning is planned: static singular (proto3)
 * and optional fields of the scalar types, strings and bytes, and
 * callback fields of length-delimited types, in messages whose defaults
 * are all zero. A descriptor with anything else (repeated, oneof,
 * submessage, required, extension, fixed-length bytes, non-zero defaults)
 * has no plan and takes nanopb's path, as does every encoding that fails
 * here (nanopb then runs and says why) and every encoding with a user's
 * callback set (it must run once, and this path could still give up).
 * Decoding failures are reported here, with nanopb's messages, since
 * decode callbacks may have run. A callback may encode or decode other
 * messages on the same thread: plans in use are never rebuilt.
 * Every rule below is nanopb 0.4's (pb_encode.c, pb_decode.c), and
 * check_codec compares the two on random and mutated messages.
 */
#include <string.h>

#include <pb.h>
#include <pb_common.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "codec.h"
#include "internal.h" /* pbri_crc32c_copy */
#include "pbring/pb.h"

#define FAST_FIELDS_MAX 32
#define FAST_PLANS 4

enum fast_kind {
	K_BOOL,
	K_VARINT,
	K_UVARINT,
	K_SVARINT,
	K_FIXED32,
	K_FIXED64,
	K_BYTES,
	K_STRING,
	K_CALLBACK
};

/* A static field's kind is its nanopb LTYPE. */
_Static_assert(K_BOOL == PB_LTYPE_BOOL && K_FIXED64 == PB_LTYPE_FIXED64 &&
		       K_BYTES == PB_LTYPE_BYTES && K_STRING == PB_LTYPE_STRING,
	       "kinds follow nanopb's LTYPEs");

struct fast_field {
	uint32_t tag;
	uint8_t kind, wire, key_len, size; /* size: data_size (<= 255) */
	uint8_t key[5];			   /* the encoded key */
	int32_t data_off, has_off;	   /* has_off -1: no has_ field */
	pb_field_iter_t it; /* callbacks: nanopb's, without its pointers */
};

/* A run of struct bytes that decoding resets to zero. */
struct fast_zero {
	uint32_t off, len;
};

struct fast_plan {
	const pb_msgdesc_t *desc;
	bool ok;	/* false: no plan, take nanopb's path */
	bool callbacks; /* has callback fields */
	unsigned busy;	/* encodes and decodes running on it (nesting) */
	unsigned n, nzero;
	struct fast_field f[FAST_FIELDS_MAX];
	struct fast_zero zero[2 * FAST_FIELDS_MAX];
};

static _Thread_local struct fast_plan plans[FAST_PLANS];
static _Thread_local unsigned plan_next;

bool pbri_fast_off; /* tests: force nanopb's path */

/* Struct bytes are read and written as nanopb lays them out on this
 * build: little-endian integers, a 16-bit pb_bytes_array_t size. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian");
_Static_assert(sizeof(pb_size_t) == 2, "nanopb built without PB_FIELD_32BIT");

/* --- plans ---------------------------------------------------------------- */

static unsigned put_varint(uint8_t *out, uint64_t v)
{
	unsigned n = 0;

	for (; v >= 0x80; v >>= 7)
		out[n++] = (uint8_t)(v | 0x80);
	out[n++] = (uint8_t)v;
	return n;
}

/* The kind and wire type of a static field, or false. */
static bool static_kind(const pb_field_iter_t *it, uint8_t *kind, uint8_t *wire)
{
	static const uint8_t wires[] = {
		[K_BOOL] = PB_WT_VARINT,    [K_VARINT] = PB_WT_VARINT,
		[K_UVARINT] = PB_WT_VARINT, [K_SVARINT] = PB_WT_VARINT,
		[K_FIXED32] = PB_WT_32BIT,  [K_FIXED64] = PB_WT_64BIT,
		[K_STRING] = PB_WT_STRING,  [K_BYTES] = PB_WT_STRING};
	unsigned lt = PB_LTYPE(it->type), ds = it->data_size;

	if (PB_HTYPE(it->type) != PB_HTYPE_OPTIONAL || lt > PB_LTYPE_STRING)
		return false;
	/* Integer widths nanopb supports; bool is one byte. */
	if ((lt == PB_LTYPE_BOOL && ds != sizeof(bool)) ||
	    (lt >= PB_LTYPE_VARINT && lt <= PB_LTYPE_SVARINT && ds != 1 &&
	     ds != 2 && ds != 4 && ds != 8) ||
	    (lt == PB_LTYPE_FIXED32 && ds != 4) ||
	    (lt == PB_LTYPE_FIXED64 && ds != 8) || ds > 255 || ds == 0)
		return false;
	*kind = (uint8_t)lt;
	*wire = wires[lt];
	return true;
}

static bool plan_field(struct fast_field *f, const pb_field_iter_t *it,
		       const char *base)
{
	unsigned lt = PB_LTYPE(it->type);

	memset(f, 0, sizeof(*f));
	if (PB_ATYPE(it->type) == PB_ATYPE_STATIC) {
		if (!static_kind(it, &f->kind, &f->wire))
			return false;
		f->size = (uint8_t)it->data_size;
	} else if (PB_ATYPE(it->type) == PB_ATYPE_CALLBACK &&
		   PB_HTYPE(it->type) != PB_HTYPE_ONEOF &&
		   PB_HTYPE(it->type) != PB_HTYPE_REQUIRED &&
		   (lt == PB_LTYPE_STRING || lt == PB_LTYPE_BYTES ||
		    lt == PB_LTYPE_SUBMESSAGE)) {
		f->kind = K_CALLBACK;
		f->wire = PB_WT_STRING;
		f->it = *it; /* field_iter() points it at each message */
		f->it.message = f->it.pField = f->it.pData = NULL;
		f->it.pSize = NULL;
	} else {
		return false;
	}
	f->tag = it->tag;
	f->key_len =
		(uint8_t)put_varint(f->key, (uint64_t)it->tag << 3 | f->wire);
	f->data_off = (int32_t)((const char *)it->pData - base);
	f->has_off = it->pSize && f->kind != K_CALLBACK
			     ? (int32_t)((const char *)it->pSize - base)
			     : -1;
	return true;
}

/* Add [off, off + len) to the runs to zero, joining it to the last run
 * if it follows on directly (padding is left alone, as nanopb does). */
static void zero_add(struct fast_plan *pl, uint32_t off, uint32_t len)
{
	struct fast_zero *z = pl->nzero ? &pl->zero[pl->nzero - 1] : NULL;

	if (z && off == z->off + z->len)
		z->len += len;
	else
		pl->zero[pl->nzero++] = (struct fast_zero){off, len};
}

/* What pb_message_set_to_defaults clears (has_ flags and data, not the
 * callbacks), as a few runs of bytes: fields lie in struct order. */
static void plan_zero(struct fast_plan *pl)
{
	const struct fast_field *f;

	pl->nzero = 0;
	for (f = pl->f; f < pl->f + pl->n; f++) {
		if (f->kind == K_CALLBACK)
			continue;
		if (f->has_off >= 0)
			zero_add(pl, (uint32_t)f->has_off, 1);
		zero_add(pl, (uint32_t)f->data_off, f->size);
	}
}

static void plan_build(struct fast_plan *pl, const pb_msgdesc_t *d, void *msg)
{
	pb_field_iter_t it;

	pl->desc = d;
	pl->ok = false;
	pl->callbacks = false;
	pl->n = 0;
	/* nanopb checks required fields after decoding; this path does not. */
	if (d->default_value || d->required_field_count)
		return;
	if (pb_field_iter_begin(&it, d, msg)) {
		do {
			if (pl->n == FAST_FIELDS_MAX ||
			    !plan_field(&pl->f[pl->n], &it, msg))
				return;
			pl->callbacks |= pl->f[pl->n++].kind == K_CALLBACK;
		} while (pb_field_iter_next(&it));
	}
	plan_zero(pl);
	pl->ok = true;
}

/* A plan slot to build @d's plan in: one no encode or decode is using.
 * A callback may encode or decode other messages on this thread while
 * its caller goes on with its own plan, which must stay as it is. */
static struct fast_plan *plan_slot(void)
{
	unsigned i;

	for (i = 0; i < FAST_PLANS; i++) {
		struct fast_plan *pl = &plans[plan_next++ % FAST_PLANS];

		if (!pl->busy)
			return pl;
	}
	return NULL; /* nested deeper than FAST_PLANS: nanopb's path */
}

/* @d's plan, marked busy until plan_put(); NULL: take nanopb's path. */
static struct fast_plan *plan_take(const pb_msgdesc_t *d, void *msg)
{
	struct fast_plan *pl = NULL;
	unsigned i;

	for (i = 0; i < FAST_PLANS && !pl; i++)
		if (plans[i].desc == d)
			pl = &plans[i];
	if (!pl && (pl = plan_slot()))
		plan_build(pl, d, msg);
	if (!pl || !pl->ok)
		return NULL;
	pl->busy++;
	return pl;
}

static void plan_put(struct fast_plan *pl)
{
	pl->busy--;
}

/* nanopb's iterator of a callback field, for the message at @msg (a
 * callback's pData is its pField, and it has no pSize). */
static pb_field_iter_t field_iter(const struct fast_field *f, void *msg)
{
	pb_field_iter_t it = f->it;

	it.message = msg;
	it.pField = it.pData = (char *)msg + f->data_off;
	return it;
}

/* --- encoding ------------------------------------------------------------- */

static bool all_zero(const uint8_t *p, unsigned n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* Sign- or zero-extended value of an integer field of @size bytes. */
static uint64_t load_int(const uint8_t *p, unsigned size, bool sign)
{
	int8_t s8;
	int16_t s16;
	int32_t s32;
	uint64_t v = 0;

	switch (size) {
	case 1:
		memcpy(&s8, p, 1);
		return sign ? (uint64_t)(int64_t)s8 : (uint8_t)s8;
	case 2:
		memcpy(&s16, p, 2);
		return sign ? (uint64_t)(int64_t)s16 : (uint16_t)s16;
	case 4:
		memcpy(&s32, p, 4);
		return sign ? (uint64_t)(int64_t)s32 : (uint32_t)s32;
	}
	memcpy(&v, p, 8);
	return v;
}

/* The value bytes of a static field: varint, fixed or length + data.
 * Returns bytes written, 0 if nanopb must decide (it would fail). */
static size_t put_value(const struct fast_field *f, const uint8_t *data,
			uint8_t *out, size_t room)
{
	uint64_t v;
	size_t n;
	uint16_t bsize;

	switch (f->kind) {
	case K_BOOL:
		return put_varint(out, data[0] != 0);
	case K_VARINT:
		return put_varint(out, load_int(data, f->size, true));
	case K_UVARINT:
		return put_varint(out, load_int(data, f->size, false));
	case K_SVARINT:
		v = load_int(data, f->size, true);
		return put_varint(out, (v << 1) ^ (0 - (v >> 63)));
	case K_FIXED32:
	case K_FIXED64:
		memcpy(out, data, f->size);
		return f->size;
	case K_STRING:
		n = strnlen((const char *)data, f->size);
		if (n >= f->size || n + 5 > room)
			return 0; /* unterminated, or nanopb's overflow */
		v = put_varint(out, n);
		memcpy(out + v, data, n);
		return v + n;
	}
	memcpy(&bsize, data, sizeof(bsize)); /* K_BYTES */
	if (bsize > f->size - offsetof(pb_bytes_array_t, bytes) ||
	    bsize + 5u > room)
		return 0;
	v = put_varint(out, bsize);
	memcpy(out + v, data + offsetof(pb_bytes_array_t, bytes), bsize);
	return v + bsize;
}

/* Is a static field present (encoded)? nanopb's rules. */
static bool present(const struct fast_field *f, const uint8_t *msg)
{
	const uint8_t *data = msg + f->data_off;
	uint16_t bsize;

	if (f->has_off >= 0)
		return msg[f->has_off] != 0;
	if (f->kind == K_STRING)
		return data[0] != 0;
	if (f->kind == K_BYTES) {
		memcpy(&bsize, data, sizeof(bsize));
		return bsize != 0;
	}
	return !all_zero(data, f->size);
}

/* pbring's own span callback, behind nanopb's default field callback: a
 * struct pbr_span at arg. Written here as pbr_pb_encode_span() would. */
static const pb_callback_t *span_callback(const pb_msgdesc_t *d,
					  const struct fast_field *f,
					  const uint8_t *msg)
{
	const pb_callback_t *cb = (const void *)(msg + f->data_off);

	if (d->field_callback != pb_default_field_callback ||
	    f->it.data_size != sizeof(pb_callback_t))
		return NULL;
	return cb;
}

/* The CRC as the encoder goes, when asked for: bytes before @at are in
 * @crc; a large span is checksummed while it is copied (read once). */
struct enc_crc {
	uint32_t *crc; /* NULL: not asked */
	const uint8_t *at;
};

/* Below this a span is copied, and checksummed with the rest at the end. */
#define FUSED_MIN 512u

static void put_span_bytes(struct enc_crc *c, uint8_t *p, const void *src,
			   size_t len)
{
	if (!c->crc || len < FUSED_MIN) {
		memcpy(p, src, len);
		return;
	}
	*c->crc = pbr_crc32c(*c->crc, c->at, (size_t)(p - c->at));
	*c->crc = pbri_crc32c_copy(*c->crc, p, src, len);
	c->at = p + len;
}

/* May this path encode @msg's callback fields? Only when each is unset
 * or pbring's span callback: a user's callback may have side effects, and
 * this path may still give up (to nanopb, which would run it again). */
static bool callbacks_ours(const struct fast_plan *pl, const pb_msgdesc_t *d,
			   const uint8_t *msg)
{
	const struct fast_field *f;

	if (!pl->callbacks || !d->field_callback)
		return true; /* nanopb encodes nothing without field_callback */
	for (f = pl->f; f < pl->f + pl->n; f++) {
		const pb_callback_t *cb;

		if (f->kind != K_CALLBACK)
			continue;
		cb = span_callback(d, f, msg);
		if (!cb || (cb->funcs.encode &&
			    cb->funcs.encode != pbr_pb_encode_span))
			return false;
	}
	return true;
}

/* pbr_pb_encode_span(), or nothing for an unset callback (what nanopb's
 * default field callback does); callbacks_ours() has said which. */
static bool put_callback(const struct fast_field *f, const pb_msgdesc_t *d,
			 void *msg, uint8_t **p, const uint8_t *end,
			 struct enc_crc *c)
{
	const pb_callback_t *cb;
	const struct pbr_span *sp;

	if (!d->field_callback)
		return true;
	cb = span_callback(d, f, msg);
	if (!cb->funcs.encode)
		return true;
	sp = cb->arg;
	if (!sp || !sp->len)
		return true;
	if ((size_t)(end - *p) < f->key_len + 10u ||
	    sp->len > (size_t)(end - *p) - f->key_len - 10u)
		return false; /* nanopb decides what fits */
	memcpy(*p, f->key, f->key_len);
	*p += f->key_len;
	*p += put_varint(*p, sp->len);
	put_span_bytes(c, *p, sp->data, sp->len);
	*p += sp->len;
	return true;
}

static int encode_plan(const struct fast_plan *pl, const pb_msgdesc_t *d,
		       const void *msg, void *buf, size_t cap, size_t *written,
		       uint32_t *crc)
{
	struct enc_crc c = {crc, buf};
	uint8_t *p = buf, *end = p + cap;
	const struct fast_field *f;
	size_t n;

	if (!callbacks_ours(pl, d, msg))
		return 0;
	for (f = pl->f; f < pl->f + pl->n; f++) {
		if (f->kind == K_CALLBACK) {
			if (!put_callback(f, d, (void *)msg, &p, end, &c))
				return 0;
			continue;
		}
		if (!present(f, msg))
			continue;
		if ((size_t)(end - p) < f->key_len + 10u + 5u)
			return 0; /* nanopb decides what fits */
		memcpy(p, f->key, f->key_len);
		n = put_value(f, (const uint8_t *)msg + f->data_off,
			      p + f->key_len, (size_t)(end - p) - f->key_len);
		if (!n)
			return 0;
		p += f->key_len + n;
	}
	*written = (size_t)(p - (uint8_t *)buf);
	if (crc)
		*crc = pbr_crc32c(*crc, c.at, (size_t)(p - c.at));
	return 1;
}

int pbri_fast_encode(const pb_msgdesc_t *d, const void *msg, void *buf,
		     size_t cap, size_t *written, uint32_t *crc)
{
	struct fast_plan *pl;
	int rc;

	if (pbri_fast_off || !(pl = plan_take(d, (void *)msg)))
		return 0;
	rc = encode_plan(pl, d, msg, buf, cap, written, crc);
	plan_put(pl);
	return rc;
}

/* --- decoding ------------------------------------------------------------- */

struct rd {
	const uint8_t *p, *end;
	const char *err;
};

/* The getters below set their result even when they fail (to 0, or to
 * where the bytes would be), so that no path leaves it unset. */
static bool fail(struct rd *r, const char *why)
{
	if (!r->err)
		r->err = why;
	return false;
}

/* pb_decode_varint: at most 10 bytes, the 10th 0 or 1. */
static bool get_varint(struct rd *r, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	*out = 0;
	do {
		if (r->p == r->end)
			return fail(r, "end-of-stream");
		b = *r->p++;
		if (shift >= 63 && (b & 0xFE))
			return fail(r, "varint overflow");
		v |= (uint64_t)(b & 0x7F) << shift;
		shift += 7;
	} while (b & 0x80);
	*out = v;
	return true;
}

/* pb_decode_varint32: 32 bits, then only 0x80 padding or, for a negative
 * value, 0xFF sign extension (0x01 in the 10th byte). */
static bool get_varint32(struct rd *r, uint32_t *out)
{
	uint32_t v = 0;
	unsigned pos = 0;
	uint8_t b;

	*out = 0;
	do {
		if (r->p == r->end)
			return fail(r, "end-of-stream");
		b = *r->p++;
		if (pos >= 32) {
			uint8_t ext = pos < 63 ? 0xFF : 0x01;

			if (pos >= 64 ||
			    !((b & 0x7F) == 0 || ((v >> 31) && b == ext)))
				return fail(r, "varint overflow");
		} else if (pos == 28) {
			if ((b & 0x70) && (b & 0x78) != 0x78)
				return fail(r, "varint overflow");
			v |= (uint32_t)(b & 0x0F) << pos;
		} else {
			v |= (uint32_t)(b & 0x7F) << pos;
		}
		pos += 7;
	} while (b & 0x80);
	*out = v;
	return true;
}

static bool get_bytes(struct rd *r, size_t n, const uint8_t **at)
{
	*at = r->p;
	if ((size_t)(r->end - r->p) < n)
		return fail(r, "end-of-stream");
	r->p += n;
	return true;
}

/* pb_skip_field. */
static bool skip(struct rd *r, unsigned wire)
{
	const uint8_t *at;
	uint32_t n;

	switch (wire) {
	case PB_WT_VARINT:
		do
			if (!get_bytes(r, 1, &at))
				return false;
		while (*at & 0x80);
		return true;
	case PB_WT_64BIT:
		return get_bytes(r, 8, &at);
	case PB_WT_32BIT:
		return get_bytes(r, 4, &at);
	case PB_WT_STRING:
		return get_varint32(r, &n) && get_bytes(r, n, &at);
	}
	return fail(r, "invalid wire_type");
}

/* Store @v (already the field's value) in @size bytes; false if it does
 * not fit (nanopb's "integer too large", after storing). */
static bool store_int(uint8_t *data, unsigned size, uint64_t v, bool sign)
{
	uint64_t back;

	memcpy(data, &v, size); /* little-endian: the low bytes */
	back = load_int(data, size, sign);
	return back == v;
}

static bool get_static(struct rd *r, const struct fast_field *f, uint8_t *data)
{
	const uint8_t *at;
	uint64_t v;
	uint32_t n;

	switch (f->kind) {
	case K_BOOL:
		if (!get_varint32(r, &n))
			return false;
		data[0] = n != 0;
		return true;
	case K_VARINT:
		if (!get_varint(r, &v))
			return false;
		if (f->size != 8) /* nanopb casts through int32_t first */
			v = (uint64_t)(int64_t)(int32_t)(uint32_t)v;
		return store_int(data, f->size, v, true) ||
		       fail(r, "integer too large");
	case K_UVARINT:
		return get_varint(r, &v) &&
		       (store_int(data, f->size, v, false) ||
			fail(r, "integer too large"));
	case K_SVARINT:
		if (!get_varint(r, &v))
			return false;
		v = (v >> 1) ^ (0 - (v & 1));
		return store_int(data, f->size, v, true) ||
		       fail(r, "integer too large");
	case K_FIXED32:
	case K_FIXED64:
		if (!get_bytes(r, f->size, &at))
			return false;
		memcpy(data, at, f->size);
		return true;
	case K_STRING:
		if (!get_varint32(r, &n))
			return false;
		if (n == UINT32_MAX)
			return fail(r, "size too large");
		if ((uint64_t)n + 1 > f->size)
			return fail(r, "string overflow");
		data[n] = 0;
		if (!get_bytes(r, n, &at))
			return false;
		memcpy(data, at, n);
		return true;
	}
	if (!get_varint32(r, &n)) /* K_BYTES */
		return false;
	if (n > PB_SIZE_MAX ||
	    (uint64_t)n + offsetof(pb_bytes_array_t, bytes) > f->size)
		return fail(r, "bytes overflow");
	memcpy(data, &(pb_size_t){(pb_size_t)n}, sizeof(pb_size_t));
	if (!get_bytes(r, n, &at))
		return false;
	memcpy(data + offsetof(pb_bytes_array_t, bytes), at, n);
	return true;
}

/* decode_callback_field, length-delimited: the callback reads from a
 * buffer stream over the field's bytes in place, until it stops taking
 * any; what it leaves is skipped. */
static bool get_callback_string(struct rd *r, const pb_msgdesc_t *d,
				pb_field_iter_t *it)
{
	const uint8_t *at;
	pb_istream_t s;
	size_t before;
	uint32_t n;

	if (!get_varint32(r, &n))
		return false;
	if ((size_t)(r->end - r->p) < n)
		return fail(r, "parent stream too short");
	at = r->p;
	r->p += n;
	s = pb_istream_from_buffer(at, n);
	do {
		before = s.bytes_left;
		if (!d->field_callback(&s, NULL, it))
			return fail(r, s.errmsg ? s.errmsg : "callback failed");
	} while (s.bytes_left > 0 && s.bytes_left < before);
	return true;
}

/* decode_callback_field, other wire types: the raw value copied to the
 * stack, as nanopb does (pbring's span callbacks refuse such a field). */
static bool get_callback_raw(struct rd *r, const pb_msgdesc_t *d,
			     pb_field_iter_t *it, unsigned wire)
{
	uint8_t buf[10];
	const uint8_t *at;
	size_t n = 0;
	pb_istream_t s;

	if (wire == PB_WT_VARINT) {
		do {
			if (n == sizeof(buf))
				return fail(r, "varint overflow");
			if (!get_bytes(r, 1, &at))
				return false;
			buf[n] = *at; /* read once: the slot is shared */
		} while (buf[n++] & 0x80);
	} else if (wire == PB_WT_64BIT || wire == PB_WT_32BIT) {
		n = wire == PB_WT_64BIT ? 8 : 4;
		if (!get_bytes(r, n, &at))
			return false;
		memcpy(buf, at, n);
	} else {
		return fail(r, "invalid wire_type");
	}
	s = pb_istream_from_buffer(buf, n);
	/* nanopb loses the callback's message here; pbcodec.c says this. */
	return d->field_callback(&s, NULL, it) ||
	       fail(r, "invalid message (a callback refused a field)");
}

/* pbr_pb_decode_span() of a length-delimited field in the buffer being
 * decoded (its window): the span is where the bytes lie. */
static bool get_span(struct rd *r, struct pbr_span *sp)
{
	const uint8_t *at;
	uint32_t n;

	if (!get_varint32(r, &n))
		return false;
	if ((size_t)(r->end - r->p) < n)
		return fail(r, "parent stream too short");
	if (!sp)
		return fail(r, "span: arg is not a struct pbr_span");
	at = r->p;
	r->p += n;
	sp->data = at;
	sp->len = n;
	return true;
}

static bool get_field(struct rd *r, const pb_msgdesc_t *d,
		      const struct fast_field *f, uint8_t *msg, unsigned wire)
{
	const pb_callback_t *cb = NULL;
	pb_field_iter_t it;

	if (f->kind == K_CALLBACK) {
		if (!d->field_callback)
			return skip(r, wire);
		if (wire == PB_WT_STRING)
			cb = span_callback(d, f, msg);
		if (cb && cb->funcs.decode == pbr_pb_decode_span)
			return get_span(r, cb->arg);
		it = field_iter(f, msg);
		return wire == PB_WT_STRING ? get_callback_string(r, d, &it)
					    : get_callback_raw(r, d, &it, wire);
	}
	if (f->has_off >= 0) /* nanopb sets it before it looks at the value */
		msg[f->has_off] = 1;
	if (wire != f->wire)
		return fail(r, "wrong wire type");
	return get_static(r, f, msg + f->data_off);
}

/* The planned field of @tag, trying the one after the last first. */
static const struct fast_field *find(const struct fast_plan *pl, uint32_t tag,
				     unsigned *hint)
{
	unsigned i;

	if (*hint < pl->n && pl->f[*hint].tag == tag)
		return &pl->f[(*hint)++];
	for (i = 0; i < pl->n; i++)
		if (pl->f[i].tag == tag) {
			*hint = i + 1;
			return &pl->f[i];
		}
	return NULL;
}

/* pb_message_set_to_defaults for all-zero defaults; callbacks are kept. */
static void set_defaults(const struct fast_plan *pl, uint8_t *msg)
{
	unsigned i;

	for (i = 0; i < pl->nzero; i++)
		memset(msg + pl->zero[i].off, 0, pl->zero[i].len);
}

static void decode_plan(const struct fast_plan *pl, const pb_msgdesc_t *d,
			void *msg, struct rd *rp)
{
	struct rd r = *rp;
	const struct fast_field *f;
	unsigned hint = 0;
	uint32_t key;

	set_defaults(pl, msg);
	while (r.p < r.end) {
		if (!get_varint32(&r, &key))
			break;
		if (!(key >> 3)) {
			fail(&r, "zero tag");
			break;
		}
		f = find(pl, key >> 3, &hint);
		if (!(f ? get_field(&r, d, f, msg, key & 7)
			: skip(&r, key & 7)))
			break;
	}
	*rp = r;
}

int pbri_fast_decode(const pb_msgdesc_t *d, void *msg, const void *buf,
		     size_t len, const char **err)
{
	struct rd r = {buf, (const uint8_t *)buf + len, NULL};
	struct fast_plan *pl;

	if (pbri_fast_off || !(pl = plan_take(d, msg)))
		return 0;
	decode_plan(pl, d, msg, &r);
	plan_put(pl);
	*err = r.err;
	return r.err ? -1 : 1;
}
