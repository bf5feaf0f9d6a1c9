/* SPDX-License-Identifier: MIT */
/*
 * nanopb messages in slots: encode straight into a reserved slot, decode
 * a peeked slot in place (or from a private copy), bytes fields as spans
 * into the decoded buffer.
 *
 * Decoding uses pb_istream_from_buffer(), whose state is the pointer to
 * the next unread byte (so callbacks, pbr_pb_decode_span() among them,
 * can see where a field lies in the slot). But nanopb also hands a
 * callback field that arrived with a non-length-delimited wire type to the
 * callback as a buffer stream over a copy on its own stack, and a span
 * into that would dangle once the callback returns. So each decode
 * publishes, thread-locally, the buffer it is reading, and a span is only
 * taken from a buffer stream positioned inside it.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <pb_common.h>

#include "codec.h"
#include "crash.h"
#include "internal.h" /* pbri_producer_stamps */
#include <pb.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "pbring.h"
#include "pbring/pb.h"

/* Protobuf's largest field number (2^29 - 1). */
#define PBR_PB_FIELD_MAX 536870911u

/* Deepest nesting of static submessages checked (and decodable). */
#define PBR_DESC_DEPTH_MAX 32

/* Thread-local: codec calls on different threads never share a message. */
static _Thread_local struct {
	const struct pbr_producer *who; /* set by encode failures only */
	char msg[PBR_ERRMSG_MAX];
} codec_err;

/* The last descriptor found to be static-only on this thread: decoding
 * one message type over and over checks it once. */
static _Thread_local const pb_msgdesc_t *static_ok;

int pbri_codec_fail(const struct pbr_producer *who, int err, const char *msg)
{
	size_t n = msg ? strnlen(msg, PBR_ERRMSG_MAX - 1) : 0;

	codec_err.who = who;
	memcpy(codec_err.msg, msg ? msg : "", n);
	codec_err.msg[n] = '\0';
	return err;
}

const char *pbr_codec_errmsg(void)
{
	return codec_err.msg;
}

const char *pbr_producer_errmsg(const struct pbr_producer *p)
{
	return p && codec_err.who == p ? codec_err.msg : "";
}

/* --- encoding ------------------------------------------------------------- */

/* pb_encode failed: tell "does not fit" from "not encodable" by sizing the
 * message (only on this failure path), then give the sequence back as a
 * skip record so that nothing of the message is ever delivered. */
static int encode_failed(struct pbr_producer *p, struct pbr_slot *slot,
			 const pb_msgdesc_t *fields, const void *msg,
			 pb_ostream_t *os)
{
	size_t need;
	int err = -EINVAL, rc;

	/* os->max_size is the room the encoding had. */
	if (pb_get_encoded_size(&need, fields, msg) && need > os->max_size)
		err = -EMSGSIZE;
	pbri_codec_fail(p, err, PB_GET_ERROR(os));
	rc = pbr_producer_abort(p, slot);
	return rc ? rc : err;
}

/* Encode @msg after the first @used bytes of @slot, seal and commit. */
static int encode_commit(struct pbr_producer *p, struct pbr_slot *slot,
			 uint32_t used, const pb_msgdesc_t *fields,
			 const void *msg)
{
	uint8_t *at = (uint8_t *)slot->data + used;
	/* A CRC may be wanted (the policy decides on the final length): the
	 * fast path then takes it as it writes. A prefix of in-place fields
	 * already over an UPTO limit rules it out without reading them. */
	bool maybe = pbr_producer_wants_crc(p, used), fused = false;
	uint32_t crc = maybe && used ? pbr_crc32c(0, slot->data, used) : 0;
	pb_ostream_t os;
	size_t n;
	uint32_t len;

	if (pbri_fast_encode(fields, msg, at, slot->cap - used, &n,
			     maybe ? &crc : NULL)) {
		fused = maybe;
	} else {
		os = pb_ostream_from_buffer(at, slot->cap - used);
		if (!pb_encode(&os, fields, msg))
			return encode_failed(p, slot, fields, msg, &os);
		n = os.bytes_written;
	}
	PBR_CRASH("encoded");
	len = used + (uint32_t)n;
	if (pbr_producer_wants_crc(p, len)) {
		slot->flags |= PBR_SLOT_F_CRC;
		/* Else taken now, while the bytes just written are hot. */
		slot->crc32c = fused ? crc : pbr_crc32c(0, slot->data, len);
	}
	if (pbri_producer_stamps(p))
		slot->timestamp_ns = pbr_clock_ns();
	return pbr_producer_commit(p, slot, len);
}

int pbr_producer_send_pb(struct pbr_producer *p, const pb_msgdesc_t *fields,
			 const void *msg, int64_t timeout_ns)
{
	struct pbr_slot slot;
	int rc;

	if (!p || !fields || !msg)
		return -EINVAL;
	rc = pbr_producer_reserve(p, timeout_ns, &slot);
	if (rc)
		return rc;
	return encode_commit(p, &slot, 0, fields, msg);
}

int pbr_producer_commit_pb(struct pbr_producer *p, struct pbr_slot *slot,
			   uint32_t used, const pb_msgdesc_t *fields,
			   const void *msg)
{
	if (!p || !slot || !fields || !msg || used > slot->cap)
		return -EINVAL;
	return encode_commit(p, slot, used, fields, msg);
}

/* The varint of @v into @out (at least 10 bytes): its length. */
static unsigned put_varint(uint8_t *out, uint64_t v)
{
	unsigned n = 0;

	for (; v >= 0x80; v >>= 7)
		out[n++] = (uint8_t)(v | 0x80);
	out[n++] = (uint8_t)v;
	return n;
}

int pbr_slot_pb_span(struct pbr_slot *slot, uint32_t *used,
		     uint32_t field_number, size_t len, void **data)
{
	uint8_t head[20];
	unsigned n;

	if (!slot || !used || !data || !field_number ||
	    field_number > PBR_PB_FIELD_MAX || *used > slot->cap)
		return -EINVAL;
	n = put_varint(head, (uint64_t)field_number << 3 | PB_WT_STRING);
	n += put_varint(head + n, len);
	if (len > slot->cap - *used || n > slot->cap - *used - len)
		return -EMSGSIZE;
	memcpy((uint8_t *)slot->data + *used, head, n);
	*data = (uint8_t *)slot->data + *used + n;
	*used += n + (uint32_t)len;
	return 0;
}

/* --- decoding ------------------------------------------------------------- */

/* Does decoding @d stay within static storage? Pointer fields would make
 * nanopb allocate (Debian's runtime is built with PB_ENABLE_MALLOC), and
 * extensions may carry descriptors of any kind. */
/* NOLINTNEXTLINE(misc-no-recursion): depth <= PBR_DESC_DEPTH_MAX */
static int check_static(const pb_msgdesc_t *d, unsigned depth)
{
	pb_field_iter_t it;

	if (depth > PBR_DESC_DEPTH_MAX)
		return -EINVAL;
	if (!pb_field_iter_begin(&it, d, NULL))
		return 0; /* no fields */
	do {
		if (PB_ATYPE(it.type) == PB_ATYPE_POINTER ||
		    PB_LTYPE(it.type) == PB_LTYPE_EXTENSION)
			return -EINVAL;
		if (PB_ATYPE(it.type) == PB_ATYPE_STATIC &&
		    PB_LTYPE_IS_SUBMSG(it.type) &&
		    check_static(it.submsg_desc, depth + 1))
			return -EINVAL;
	} while (pb_field_iter_next(&it));
	return 0;
}

static int check_desc(const pb_msgdesc_t *fields)
{
	if (!fields)
		return -EINVAL;
	if (fields == static_ok)
		return 0;
	if (check_static(fields, 0))
		return pbri_codec_fail(
			NULL, -EINVAL,
			"message has pointer or extension fields");
	static_ok = fields;
	return 0;
}

static void clear_spans(const pb_msgdesc_t *fields, void *msg);

/* The buffer a pbr decode on this thread is reading: [begin, end). A
 * stack of one, saved and restored, so a decode from within a callback of
 * another decode does not lose the outer window. */
static _Thread_local struct {
	uintptr_t begin, end;
} window;

static int decode_buffer(const void *buf, size_t len,
			 const pb_msgdesc_t *fields, void *msg)
{
	pb_istream_t is = pb_istream_from_buffer(buf, len);
	uintptr_t saved_begin = window.begin, saved_end = window.end;
	bool ok;

	const char *why = NULL;
	int fast;

	/* A message's small fields often follow a large one (a field written
	 * in place comes first): ask for the last line now, so that its
	 * cross-core transfer overlaps the first line's, not follows it. */
	if (len > 64)
		__builtin_prefetch((const char *)buf + len - 1);
	window.begin = (uintptr_t)buf;
	window.end = window.begin + len;
	clear_spans(fields, msg);
	fast = pbri_fast_decode(fields, msg, buf, len, &why);
	ok = fast > 0 || (!fast && pb_decode(&is, fields, msg));
	window.begin = saved_begin;
	window.end = saved_end;
	if (ok)
		return 0;
	if (fast < 0)
		return pbri_codec_fail(NULL, -EBADMSG, why);
	/* nanopb drops the message of a callback that fails on a field with
	 * a non-length-delimited wire type (it ran on a private substream). */
	return pbri_codec_fail(NULL, -EBADMSG,
			       is.errmsg
				       ? is.errmsg
				       : "invalid message (a callback refused "
					 "a field)");
}

int pbr_view_verify(const struct pbr_view *v)
{
	if (!(v->flags & PBR_SLOT_F_CRC))
		return 0;
	if (pbr_crc32c(0, v->data, v->len) != v->crc32c)
		return pbri_codec_fail(NULL, -EBADMSG,
				       "payload CRC32C mismatch");
	return 0;
}

int pbr_view_decode(const struct pbr_view *v, const pb_msgdesc_t *fields,
		    void *msg, unsigned flags)
{
	int rc;

	if (!v || !msg || (flags & ~PBR_DECODE_NOVERIFY))
		return -EINVAL;
	rc = check_desc(fields);
	if (!rc && !(flags & PBR_DECODE_NOVERIFY))
		rc = pbr_view_verify(v);
	return rc ? rc : decode_buffer(v->data, v->len, fields, msg);
}

int pbr_view_decode_copy(const struct pbr_view *v, const pb_msgdesc_t *fields,
			 void *msg, void *scratch, size_t scratch_len)
{
	struct pbr_view copy;
	int rc;

	if (!v || !msg)
		return -EINVAL;
	rc = check_desc(fields);
	if (rc)
		return rc;
	if (scratch_len < v->len || (!scratch && v->len))
		return pbri_codec_fail(
			NULL, -ENOBUFS,
			"scratch buffer smaller than the payload");
	/* One read of the shared bytes; CRC and decode both see the copy. */
	copy = *v;
	copy.data = scratch;
	if (v->len)
		memcpy(scratch, v->data, v->len);
	rc = pbr_view_verify(&copy);
	return rc ? rc : decode_buffer(scratch, v->len, fields, msg);
}

/* --- spans ---------------------------------------------------------------- */

/* Was @s made by pb_istream_from_buffer()? Its read callback is private
 * to nanopb, so compare with the one a fresh buffer stream gets. */
static bool buffer_stream(const pb_istream_t *s)
{
	static const pb_byte_t none[1];
	pb_istream_t probe = pb_istream_from_buffer(none, 0);

	return s->callback == probe.callback;
}

/* Where the current field's bytes are, if they lie in the buffer of a
 * pbring decode; false (with stream's error set) otherwise. */
static bool locate(pb_istream_t *stream, struct pbr_span *out)
{
	uintptr_t at = (uintptr_t)stream->state;
	size_t n = stream->bytes_left;

	/* Only then is state a pointer into the buffer being decoded (no
	 * window: no pbring decode is running on this thread). */
	if (!buffer_stream(stream) || !window.end || at < window.begin ||
	    at > window.end || n > window.end - at)
		PB_RETURN_ERROR(stream, "span: field is not a length-delimited "
					"part of a pbring decode");
	out->data = stream->state;
	out->len = n;
	/* Skips the bytes: a buffer stream copies nothing for a NULL buf. */
	return pb_read(stream, NULL, n);
}

bool pbr_pb_decode_span(pb_istream_t *stream, const pb_field_t *field,
			void **arg)
{
	struct pbr_span *span = *arg;

	(void)field;
	if (!span)
		PB_RETURN_ERROR(stream, "span: arg is not a struct pbr_span");
	return locate(stream, span);
}

bool pbr_pb_decode_spans(pb_istream_t *stream, const pb_field_t *field,
			 void **arg)
{
	struct pbr_span_list *list = *arg;

	(void)field;
	if (!list || (list->cap && !list->items))
		PB_RETURN_ERROR(stream, "spans: arg is not a pbr_span_list");
	if (list->count >= list->cap)
		PB_RETURN_ERROR(stream, "spans: span list full");
	if (!locate(stream, &list->items[list->count]))
		return false;
	list->count++;
	return true;
}

/* Empty the storage a pbring span callback at @cb owns. */
static void clear_one(pb_callback_t *cb)
{
	if (cb->funcs.decode == pbr_pb_decode_span && cb->arg)
		*(struct pbr_span *)cb->arg = (struct pbr_span){NULL, 0};
	else if (cb->funcs.decode == pbr_pb_decode_spans && cb->arg)
		((struct pbr_span_list *)cb->arg)->count = 0;
}

/* Where a message struct keeps its callbacks, as byte offsets (those of
 * its static submessages included), found once per descriptor: clearing
 * before every decode then costs a few loads, not a descriptor walk. */
#define PBR_CB_MAX 16
static _Thread_local struct {
	const pb_msgdesc_t *fields;
	int n; /* offsets in off[]; -1: more than PBR_CB_MAX */
	uint32_t off[PBR_CB_MAX];
} cbs;

/* Record (or, with @clear, empty) the callbacks of @msg (at @base) and
 * its static submessages; not oneof members, whose memory the decoder
 * alone may interpret, nor repeated submessages (pb.h says so). */
/* NOLINTNEXTLINE(misc-no-recursion): depth <= PBR_DESC_DEPTH_MAX */
static void visit_callbacks(const pb_msgdesc_t *fields, void *msg,
			    const char *base, int depth, bool clear)
{
	pb_field_iter_t it;

	if (depth > PBR_DESC_DEPTH_MAX ||
	    !pb_field_iter_begin(&it, fields, msg))
		return;
	do {
		if (PB_HTYPE(it.type) == PB_HTYPE_ONEOF || !it.pData)
			continue;
		if (PB_ATYPE(it.type) == PB_ATYPE_CALLBACK) {
			if (clear)
				clear_one(it.pData);
			else if (cbs.n >= 0 && cbs.n < PBR_CB_MAX)
				cbs.off[cbs.n++] =
					(uint32_t)((char *)it.pData - base);
			else
				cbs.n = -1;
		} else if (PB_ATYPE(it.type) == PB_ATYPE_STATIC &&
			   PB_LTYPE_IS_SUBMSG(it.type) &&
			   PB_HTYPE(it.type) != PB_HTYPE_REPEATED) {
			visit_callbacks(it.submsg_desc, it.pData, base,
					depth + 1, clear);
		}
	} while (pb_field_iter_next(&it));
}

/* Empty the storage of pbring's span callbacks in @msg, so that a field
 * absent from the message being decoded does not show the previous one's
 * (pb_decode resets everything else). */
static void clear_spans(const pb_msgdesc_t *fields, void *msg)
{
	int i;

	if (cbs.fields != fields) {
		cbs.fields = fields;
		cbs.n = 0;
		visit_callbacks(fields, msg, msg, 0, false);
	}
	if (cbs.n < 0) { /* too many to keep: walk them each time */
		visit_callbacks(fields, msg, msg, 0, true);
		return;
	}
	for (i = 0; i < cbs.n; i++)
		clear_one((pb_callback_t *)(void *)((char *)msg + cbs.off[i]));
}

bool pbr_pb_encode_span(pb_ostream_t *stream, const pb_field_t *field,
			void *const *arg)
{
	const struct pbr_span *span = *arg;

	if (!span || !span->len)
		return true;
	return pb_encode_tag_for_field(stream, field) &&
	       pb_encode_string(stream, span->data, span->len);
}
