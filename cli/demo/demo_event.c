/* SPDX-License-Identifier: MIT */
/* DeviceEvent for the demos: encode into slots, decode in place, JSON. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pb.h>

#include "demo_event.h"
#include "pbring/pb.h"

int demo_event_init(struct demo_event *e, int pid, unsigned k, uint32_t size)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	e->size = size;
	e->blob = malloc(size ? size : 1);
	if (!e->blob)
		return -ENOMEM;
	for (i = 0; i < size; i++)
		e->blob[i] = demo_blob_byte(i);
	snprintf(e->msg.id, sizeof(e->msg.id), "%d-%u", pid, k);
	e->span.data = e->blob;
	e->span.len = size;
	e->msg.blob.funcs.encode = pbr_pb_encode_span;
	e->msg.blob.arg = &e->span;
	return 0;
}

void demo_event_fini(struct demo_event *e)
{
	free(e->blob);
	e->blob = NULL;
}

int demo_event_send(struct pbr_producer *p, struct demo_event *e, uint64_t seq,
		    int64_t timeout_ns, const char *traceparent,
		    const uint64_t *source)
{
	struct pbr_slot slot;
	int rc;

	e->msg.seq = seq;
	e->msg.status = (int32_t)(seq % 3); /* a little variety for checks */
	e->msg.sent_ns = pbr_clock_ns();
	if (!traceparent && !source)
		return pbr_producer_send_pb(p,
					    pbring_demo_v1_DeviceEvent_fields,
					    &e->msg, timeout_ns);
	rc = pbr_producer_reserve(p, timeout_ns, &slot);
	if (rc)
		return rc;
	if (source) {
		slot.flags |= PBR_SLOT_F_SOURCE;
		slot.source[0] = source[0];
		slot.source[1] = source[1] + seq;
	}
	if (traceparent &&
	    (rc = pbr_slot_set_traceparent(&slot, traceparent))) {
		int arc = pbr_producer_abort(p, &slot);

		return arc ? arc : rc;
	}
	return pbr_producer_commit_pb(
		p, &slot, 0, pbring_demo_v1_DeviceEvent_fields, &e->msg);
}

unsigned demo_utf8_len(const unsigned char *s)
{
	unsigned c = s[0], n, k, lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return c ? 1 : 0;
	n = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	for (k = 1; k < n; k++, lo = 0x80, hi = 0xBF)
		if (s[k] < lo || s[k] > hi)
			return 0;
	return n;
}

/* What Go's and Python's protobuf demand of a proto3 string. */
static bool utf8_ok(const unsigned char *s)
{
	unsigned n;

	for (; *s; s += n)
		if (!(n = demo_utf8_len(s)))
			return false;
	return true;
}

int demo_event_decode(const struct pbr_view *v, struct demo_decoded *d)
{
	pbring_demo_v1_DeviceEvent m = pbring_demo_v1_DeviceEvent_init_zero;
	struct pbr_span blob = {NULL, 0};
	int rc;

	memset(d, 0, sizeof(*d));
	/* The blob is read as a span into the slot: no copy. */
	m.blob.funcs.decode = pbr_pb_decode_span;
	m.blob.arg = &blob;
	rc = pbr_view_decode(v, pbring_demo_v1_DeviceEvent_fields, &m, 0);
	if (rc)
		return rc;
	d->blob = blob.data;
	d->blob_len = blob.len;
	memcpy(d->id, m.id, sizeof(d->id));
	d->id[DEMO_ID_MAX] = '\0';
	if (!utf8_ok((const unsigned char *)d->id))
		return -EBADMSG; /* as protobuf in Go and Python says */
	d->status = m.status;
	d->seq = m.seq;
	d->sent_ns = m.sent_ns;
	return 0;
}

bool demo_blob_ok(const struct demo_decoded *d)
{
	size_t i;

	for (i = 0; i < d->blob_len; i++)
		if (d->blob[i] != demo_blob_byte(i))
			return false;
	return true;
}

static size_t base64(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
				  "stuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
			     in[i + 2];

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 |
			     (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = (char)(i + 1 < n ? tab[(v >> 6) & 63] : '=');
		out[o++] = '=';
	}
	return o;
}

/* JSON string body of s (the id is bounded and usually plain ASCII). */
static size_t json_escape(const char *s, char *out)
{
	static const char ctl[] = "\b\f\n\r\t";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *short_esc = c ? strchr(ctl, c) : NULL;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (short_esc) {
			/* as protojson and Python's json write them */
			out[o++] = '\\';
			out[o++] = "bfnrt"[short_esc - ctl];
		} else if (c < 0x20) {
			o += (size_t)sprintf(out + o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

/*
 * Canonical proto3 JSON, as protobuf's own printers make it in compact
 * form: fields in number order, lowerCamelCase names, 64-bit integers as
 * strings, bytes as base64, fields with default values left out.
 */
size_t demo_event_json(const struct demo_decoded *d, char *buf, size_t cap)
{
	size_t need = 96 + 6 * DEMO_ID_MAX + (d->blob_len + 2) / 3 * 4;
	size_t o = 0;
	char *sep = "";

	if (cap < need)
		return 0;
	buf[o++] = '{';
	if (d->id[0]) {
		o += (size_t)sprintf(buf + o, "\"id\":\"");
		o += json_escape(d->id, buf + o);
		buf[o++] = '"';
		sep = ",";
	}
	if (d->status) {
		o += (size_t)sprintf(buf + o, "%s\"status\":%" PRId32, sep,
				     d->status);
		sep = ",";
	}
	if (d->seq) {
		o += (size_t)sprintf(buf + o, "%s\"seq\":\"%" PRIu64 "\"", sep,
				     d->seq);
		sep = ",";
	}
	if (d->sent_ns) {
		o += (size_t)sprintf(buf + o, "%s\"sentNs\":\"%" PRIu64 "\"",
				     sep, d->sent_ns);
		sep = ",";
	}
	if (d->blob_len) {
		o += (size_t)sprintf(buf + o, "%s\"blob\":\"", sep);
		o += base64(d->blob, d->blob_len, buf + o);
		buf[o++] = '"';
	}
	buf[o++] = '}';
	buf[o] = '\0';
	return o;
}
