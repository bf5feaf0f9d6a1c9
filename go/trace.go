// SPDX-License-Identifier: MIT

package pbring

import "encoding/hex"

// TraceparentLen is the length of a version-00 W3C traceparent.
const TraceparentLen = 55

// errTraceparent: not a W3C traceparent (errors.Is ErrInvalid).
var errTraceparent = &invalidError{"not a W3C traceparent (want 00-<32 hex>-<16 hex>-<2 hex>, lowercase, ids not all zero)"}

// ParseTraceparent parses a W3C trace context `traceparent` header value
// (https://www.w3.org/TR/trace-context/): "00-<trace id>-<parent id>-
// <flags>", lowercase hex. A later version's longer value is accepted for
// its first four fields, as the spec asks; version ff, uppercase or
// non-hex digits, and all-zero ids are refused. As C's
// pbr_traceparent_parse.
func ParseTraceparent(tp string) (traceID [16]byte, spanID [8]byte, flags byte, err error) {
	bad := func() ([16]byte, [8]byte, byte, error) {
		return [16]byte{}, [8]byte{}, 0, errTraceparent
	}
	n := len(tp)
	if n < TraceparentLen || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return bad()
	}
	var ver [1]byte
	if !lowerHex(tp[0:2], ver[:]) || ver[0] == 0xFF ||
		!lowerHex(tp[3:35], traceID[:]) || !lowerHex(tp[36:52], spanID[:]) {
		return bad()
	}
	var fl [1]byte
	if !lowerHex(tp[53:55], fl[:]) {
		return bad()
	}
	if (ver[0] == 0 && n != TraceparentLen) || (n > TraceparentLen && tp[TraceparentLen] != '-') {
		return bad()
	}
	if traceID == ([16]byte{}) || spanID == ([8]byte{}) {
		return bad()
	}
	return traceID, spanID, fl[0], nil
}

func lowerHex(s string, out []byte) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(out, []byte(s))
	return err == nil
}

// FormatTraceparent is the version-00 traceparent of these ids, or "" if
// either is all zeros (no valid context).
func FormatTraceparent(traceID [16]byte, spanID [8]byte, flags byte) string {
	if traceID == ([16]byte{}) || spanID == ([8]byte{}) {
		return ""
	}
	var b [TraceparentLen]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], spanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

// SetTraceparent gives the reserved slot the trace context tp (a W3C
// traceparent): its ids and flags, and FlagTrace, which Commit and
// CommitProto store (FORMAT.md §6). ErrInvalid, the slot unchanged, if
// tp is not one.
func (s *Slot) SetTraceparent(tp string) error {
	tid, sid, fl, err := ParseTraceparent(tp)
	if err != nil {
		return err
	}
	s.TraceID, s.SpanID, s.TraceFlags = tid, sid, fl
	s.Flags |= FlagTrace
	return nil
}

// Traceparent is the message's trace context as a W3C traceparent, or ""
// if it carries none.
func (v *View) Traceparent() string {
	if v.Flags&FlagTrace == 0 {
		return ""
	}
	return FormatTraceparent(v.TraceID, v.SpanID, v.TraceFlags)
}

// SlotCarrier carries a trace context into a reserved slot through an
// OpenTelemetry TextMapPropagator (it is a propagation.TextMapCarrier):
//
//	s, _ := p.Reserve(timeout)
//	otel.GetTextMapPropagator().Inject(ctx, pbring.SlotCarrier{Slot: s})
//	p.CommitProto(s, msg)
//
// Only the "traceparent" key is stored; a value that is not a valid
// traceparent leaves the slot without one.
type SlotCarrier struct{ Slot *Slot }

// Get returns the slot's traceparent ("" if none).
func (c SlotCarrier) Get(key string) string {
	if key != "traceparent" || c.Slot.Flags&FlagTrace == 0 {
		return ""
	}
	return FormatTraceparent(c.Slot.TraceID, c.Slot.SpanID, c.Slot.TraceFlags)
}

// Set stores a traceparent; other keys (tracestate, baggage) are not
// carried by the slot.
func (c SlotCarrier) Set(key, value string) {
	if key == "traceparent" {
		_ = c.Slot.SetTraceparent(value)
	}
}

// Keys lists the keys the slot carries.
func (c SlotCarrier) Keys() []string {
	if c.Slot.Flags&FlagTrace == 0 {
		return nil
	}
	return []string{"traceparent"}
}

// ViewCarrier reads a message's trace context through an OpenTelemetry
// TextMapPropagator (a propagation.TextMapCarrier), read-only:
//
//	ctx := otel.GetTextMapPropagator().Extract(ctx, pbring.ViewCarrier{View: &v})
//
// gives a context whose remote parent is the producer's span. Read it
// before releasing the view, as its payload.
type ViewCarrier struct{ View *View }

// Get returns the message's traceparent ("" if none).
func (c ViewCarrier) Get(key string) string {
	if key != "traceparent" {
		return ""
	}
	return c.View.Traceparent()
}

// Set does nothing: a view is read-only.
func (c ViewCarrier) Set(string, string) {}

// Keys lists the keys the message carries.
func (c ViewCarrier) Keys() []string {
	if c.View.Traceparent() == "" {
		return nil
	}
	return []string{"traceparent"}
}
