/* SPDX-License-Identifier: MIT */
/*
 * pbring/pb.h: protobuf messages in pbring slots through nanopb: encode
 * straight into a slot, decode in place, spans for bytes fields. Include
 * it only if you use nanopb; <pbring.h> (the ring) needs none of it.
 */
#ifndef PBRING_PB_H
#define PBRING_PB_H

#include "pbring.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Messages are described by nanopb's generated descriptors (the
 * <Message>_fields of a generated .pb.h, a const pb_msgdesc_t *); this
 * header only forward-declares nanopb's structs so that it does not need
 * <pb.h>. libpbring carries its own copy of the nanopb 0.4 runtime (hidden
 * in the shared library), so generated code must come from a nanopb 0.4
 * generator (PB_PROTO_HEADER_VERSION 40) built without PB_FIELD_32BIT,
 * like Debian's libnanopb-dev. Decoding accepts static and callback
 * fields only: a descriptor with pointer (malloc) or extension fields is
 * refused with -EINVAL, so nothing in libpbring ever allocates while
 * decoding what another process wrote.
 *
 * Error text: nanopb explains a failure in a message; the last one on the
 * calling thread is kept in thread-local storage and returned by
 * pbr_codec_errmsg() (and pbr_producer_errmsg() for encoding). Only
 * failures set it; it stays valid until the thread's next codec failure.
 */
#include <stdbool.h> /* the nanopb callbacks below return bool */

/*
 * Generated descriptors and message structs cross from the program into
 * the nanopb runtime inside libpbring, so the program's nanopb must be
 * configured like it. Include <pb.h> before this header and a mismatch is
 * a compile error instead of memory corruption.
 */
#ifdef PB_H_INCLUDED
#if PB_PROTO_HEADER_VERSION != 40
#error "pbring needs nanopb 0.4 (PB_PROTO_HEADER_VERSION 40)"
#endif
#if defined(PB_FIELD_32BIT) || defined(PB_BUFFER_ONLY) ||                      \
	defined(PB_WITHOUT_64BIT)
#error "libpbring's nanopb is built without these options"
#endif
#ifndef __cplusplus
_Static_assert(sizeof(pb_size_t) == 2,
	       "nanopb pb_size_t differs from libpbring's");
#endif
#endif

struct pb_msgdesc_s;	/* pb_msgdesc_t: a generated <Message>_fields */
struct pb_istream_s;	/* pb_istream_t */
struct pb_ostream_s;	/* pb_ostream_t */
struct pb_field_iter_s; /* pb_field_t */

/**
 * Reserve a slot, nanopb-encode @msg (of type @fields) straight into it and
 * commit it with its CRC32C (PBR_SLOT_F_CRC; where the ring's CRC policy
 * asks for one, pbr_producer_wants_crc()) and a CLOCK_MONOTONIC
 * timestamp. On an encoding failure the reservation is aborted, so readers
 * never see the message (they pass over the skip record silently) and its
 * sequence number is not reused: -EMSGSIZE if the encoding is larger than
 * the slot payload capacity, -EINVAL if nanopb refused the message (for
 * example a string longer than its max_size; pbr_producer_errmsg() says
 * why). If that abort fails too, its error is returned instead (e.g.
 * -EOWNERDEAD). Other errors are those of pbr_producer_reserve() and
 * pbr_producer_commit(). Returns 0 on success.
 */
PBR_API PBR_MUST_CHECK int
pbr_producer_send_pb(struct pbr_producer *p, const struct pb_msgdesc_s *fields,
		     const void *msg, int64_t timeout_ns);

/**
 * Large fields written in place. A camera frame or a tensor is produced
 * straight into the ring: pbr_slot_pb_span() lays out the tag and length
 * of a top-level bytes (or string) field at the start of a reserved slot
 * and returns where its @len bytes go; the caller fills them; then
 * pbr_producer_commit_pb() encodes the rest of @msg after them and
 * commits. No byte of the field is copied, zeroed or read by pbring,
 * except by the CRC where the ring's policy asks for one. Readers decode
 * it like any other field (pbr_pb_decode_span() gives a span where it
 * lies):
 *
 *	struct pbr_slot slot;
 *	uint32_t used = 0;
 *	void *pixels;
 *
 *	rc = pbr_producer_reserve(p, -1, &slot);
 *	rc = pbr_slot_pb_span(&slot, &used, Frame_pixels_tag, n, &pixels);
 *	render(pixels, n);
 *	rc = pbr_producer_commit_pb(p, &slot, used, Frame_fields, &frame);
 *
 * Protobuf lets fields come in any order, and every parser (nanopb, Go,
 * Python, C++) accepts the field first. Leave it empty in @msg (no encode
 * callback, or an empty span): a singular field sent twice is read as the
 * last one. Several in-place fields may precede the rest, each with its
 * own call; a field nested in a submessage cannot be written this way.
 * Bytes that already exist in a buffer are better sent as a span
 * (pbr_pb_encode_span() with pbr_producer_send_pb()): the copy into the
 * slot and the CRC are then one pass; in place saves the copy for bytes
 * produced in the slot, and the CRC (if the policy wants one) reads them
 * once more at commit.
 */

/**
 * Reserve room for field @field_number (1 .. 2^29-1, wire type
 * length-delimited) of @len bytes in @slot at offset *@used, write its tag
 * and length there, advance *@used past the field and set *@data to where
 * its bytes go (uninitialised: fill all @len of them). -EMSGSIZE if it
 * does not fit in the slot (nothing changes), -EINVAL for a bad field
 * number or a NULL argument.
 */
PBR_API PBR_MUST_CHECK int pbr_slot_pb_span(struct pbr_slot *slot,
					    uint32_t *used,
					    uint32_t field_number, size_t len,
					    void **data);

/**
 * Encode @msg (of type @fields) into @slot after the first @used bytes
 * (the in-place fields of pbr_slot_pb_span()), then commit @used plus the
 * encoding, with a CRC32C as the ring's policy asks and a CLOCK_MONOTONIC
 * timestamp, as pbr_producer_send_pb() does. On an encoding failure the
 * reservation is aborted and -EMSGSIZE (too large for the slot) or
 * -EINVAL (pbr_producer_errmsg() says why) returned.
 */
PBR_API PBR_MUST_CHECK int
pbr_producer_commit_pb(struct pbr_producer *p, struct pbr_slot *slot,
		       uint32_t used, const struct pb_msgdesc_s *fields,
		       const void *msg);

/**
 * Why the last pbr_producer_send_pb() on @p failed, as nanopb put it: the
 * message of the calling thread's last codec failure if that failure was
 * an encode on @p, else "". Never NULL.
 */
PBR_API const char *pbr_producer_errmsg(const struct pbr_producer *p);

/** The calling thread's last codec failure message, or "". Never NULL. */
PBR_API const char *pbr_codec_errmsg(void);

/** Flags for pbr_view_decode(). */
#define PBR_DECODE_NOVERIFY 0x1u /* the caller already ran pbr_view_verify */

/**
 * Decode the view's payload in place into @msg (of type @fields; the
 * struct is first reset to its defaults, callbacks kept, and the storage
 * of pbring's own span callbacks is cleared: a struct pbr_span to empty, a
 * struct pbr_span_list to no items, so a field absent from this message
 * never shows the last one's; not inside oneof members or repeated
 * static submessages, whose spans the caller resets). The CRC is verified first
 * unless PBR_DECODE_NOVERIFY. Spans recorded by pbr_pb_decode_span() and
 * pbr_pb_decode_spans() point into the slot and are valid until the view
 * is released. Returns 0; -EBADMSG for a CRC mismatch or bytes that are
 * not a valid @fields message (pbr_codec_errmsg() says why); -EINVAL for
 * unknown flags or a descriptor with pointer or extension fields.
 *
 * In place means the bytes are read from shared memory while decoding: a
 * lossy reader must still check pbr_reader_release() for -ESTALE. For
 * writers that are not trusted, use pbr_view_decode_copy().
 */
PBR_API PBR_MUST_CHECK int pbr_view_decode(const struct pbr_view *v,
					   const struct pb_msgdesc_s *fields,
					   void *msg, unsigned flags);

/**
 * Like pbr_view_decode(), but from a private copy: the payload is copied
 * once into @scratch (@scratch_len >= v->len, else -ENOBUFS), and the CRC
 * is verified and the message decoded from that copy, so that a writer
 * changing the slot meanwhile cannot make the checked bytes differ from
 * the decoded ones. Spans point into @scratch. Never allocates.
 */
PBR_API PBR_MUST_CHECK int
pbr_view_decode_copy(const struct pbr_view *v,
		     const struct pb_msgdesc_s *fields, void *msg,
		     void *scratch, size_t scratch_len);

/** A run of bytes inside a decoded buffer (not NUL-terminated). */
struct pbr_span {
	const void *data;
	size_t len;
};

/**
 * nanopb decode callback for a bytes or string field generated as
 * FT_CALLBACK: records where the field's bytes are instead of copying
 * them. Set msg.field.funcs.decode = pbr_pb_decode_span and
 * msg.field.arg = &span (a struct pbr_span). Only works within
 * pbr_view_decode() and pbr_view_decode_copy(), which decode with
 * pb_istream_from_buffer() (a buffer stream's state is its read pointer),
 * and only for a length-delimited field inside the buffer being decoded:
 * nanopb hands a field that arrived with another wire type to callbacks
 * as a buffer stream over a copy on its own stack, and such a field fails
 * the decode (-EBADMSG) rather than yield a dangling span. Callbacks of
 * your own that read stream->state as a pointer must guard against that
 * too; better use this one. For a singular field the last occurrence on
 * the wire wins (as protobuf merges it); pbr_view_decode() empties @span
 * first, so an absent field leaves it empty.
 */
PBR_API bool pbr_pb_decode_span(struct pb_istream_s *stream,
				const struct pb_field_iter_s *field,
				void **arg);

/** Where pbr_pb_decode_spans() records a repeated or map field. */
struct pbr_span_list {
	struct pbr_span *items; /* caller's array of cap spans */
	size_t cap;
	size_t count; /* items recorded, in wire order */
};

/**
 * pbr_pb_decode_span() for repeated fields: each occurrence of a bytes,
 * string or message field (a map field is a repeated message of key and
 * value: each entry's span holds its serialized entry, to decode with
 * pb_decode over pb_istream_from_buffer(span)) is appended to the struct
 * pbr_span_list at *arg, in wire order. More than cap occurrences fail
 * the decode (-EBADMSG, "span list full"). The same rules as
 * pbr_pb_decode_span() on where it works.
 *
 * nanopb and protobuf differ in ways that matter in shared memory: a
 * string field generated as a static char array stops at its first NUL
 * (protobuf strings may contain NUL: generate it as FT_CALLBACK and take
 * a span, or use bytes); fields the descriptor does not know are skipped
 * silently (nanopb keeps no unknown fields); static strings, bytes and
 * repeated fields need bounds in a .options file (max_size, max_count),
 * and a message that contains itself needs FT_CALLBACK on the recursive
 * field, or the generated struct does not compile.
 */
PBR_API bool pbr_pb_decode_spans(struct pb_istream_s *stream,
				 const struct pb_field_iter_s *field,
				 void **arg);

/**
 * nanopb encode callback writing the struct pbr_span at *arg as a bytes or
 * string field (set msg.field.funcs.encode = pbr_pb_encode_span, arg =
 * &span). An empty span or a NULL arg writes nothing, as proto3 omits an
 * empty singular field.
 */
PBR_API bool pbr_pb_encode_span(struct pb_ostream_s *stream,
				const struct pb_field_iter_s *field,
				void *const *arg);

#ifdef __cplusplus
}
#endif

#endif /* PBRING_PB_H */
