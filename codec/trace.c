/* SPDX-License-Identifier: MIT */
/*
 * W3C trace context (https://www.w3.org/TR/trace-context/) in a slot's
 * header (FORMAT.md §6): a `traceparent` header value to and from the
 * trace_id, span_id and trace_flags bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "pbring.h"

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* the spec's hex is lowercase only */
}

/* @n bytes from 2n lowercase hex digits; false on any other character. */
static bool unhex(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

int pbr_traceparent_parse(const char *tp, uint8_t *trace_id, uint8_t *span_id,
			  uint8_t *trace_flags)
{
	uint8_t ver, tid[16], sid[8], fl;
	size_t len;

	if (!tp || !trace_id || !span_id || !trace_flags)
		return -EINVAL;
	len = strnlen(tp, PBR_TRACEPARENT_LEN + 2);
	/* version-trace_id-parent_id-flags; a later version may append
	 * "-..." fields, which a version-00 parser ignores (the spec). */
	if (len < PBR_TRACEPARENT_LEN || tp[2] != '-' || tp[35] != '-' ||
	    tp[52] != '-' || !unhex(tp, &ver, 1) || ver == 0xFF ||
	    !unhex(tp + 3, tid, 16) || !unhex(tp + 36, sid, 8) ||
	    !unhex(tp + 53, &fl, 1))
		return -EINVAL;
	if ((ver == 0 && len != PBR_TRACEPARENT_LEN) ||
	    (len > PBR_TRACEPARENT_LEN && tp[PBR_TRACEPARENT_LEN] != '-'))
		return -EINVAL;
	if (all_zero(tid, 16) || all_zero(sid, 8))
		return -EINVAL;
	memcpy(trace_id, tid, 16);
	memcpy(span_id, sid, 8);
	*trace_flags = fl;
	return 0;
}

int pbr_traceparent_format(const uint8_t *trace_id, const uint8_t *span_id,
			   uint8_t trace_flags, char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	size_t i;

	if (!trace_id || !span_id || !out || n < PBR_TRACEPARENT_LEN + 1)
		return -EINVAL;
	if (all_zero(trace_id, 16) || all_zero(span_id, 8))
		return -ENODATA;
	memcpy(p, "00-", 3);
	p += 3;
	for (i = 0; i < 16; i++) {
		*p++ = hex[trace_id[i] >> 4];
		*p++ = hex[trace_id[i] & 15];
	}
	*p++ = '-';
	for (i = 0; i < 8; i++) {
		*p++ = hex[span_id[i] >> 4];
		*p++ = hex[span_id[i] & 15];
	}
	*p++ = '-';
	*p++ = hex[trace_flags >> 4];
	*p++ = hex[trace_flags & 15];
	*p = 0;
	return 0;
}

int pbr_slot_set_traceparent(struct pbr_slot *slot, const char *tp)
{
	int rc;

	if (!slot)
		return -EINVAL;
	rc = pbr_traceparent_parse(tp, slot->trace_id, slot->span_id,
				   &slot->trace_flags);
	if (!rc)
		slot->flags |= PBR_SLOT_F_TRACE;
	return rc;
}

int pbr_view_traceparent(const struct pbr_view *v, char *out, size_t n)
{
	uint8_t tid[16], sid[8];

	if (!v || !out)
		return -EINVAL;
	if (!(v->flags & PBR_SLOT_F_TRACE) || !v->trace_id || !v->span_id)
		return -ENODATA;
	/* One read of the shared bytes, then the checks on the copy. */
	memcpy(tid, v->trace_id, sizeof(tid));
	memcpy(sid, v->span_id, sizeof(sid));
	return pbr_traceparent_format(tid, sid, v->trace_flags, out, n);
}
