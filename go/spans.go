// SPDX-License-Identifier: MIT

package pbring

import (
	"runtime/debug"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// UnmarshalSpans is Unmarshal for a message with large bytes or string
// fields, read in place: the top-level fields numbered nums are not
// decoded into m (protobuf-go would copy them into new allocations) but
// returned as windows into the slot, spans[i] for nums[i] (nil if the
// message does not have it; the last occurrence, as protobuf reads a
// field sent twice). Every other field is decoded into m as Unmarshal
// does, the CRC checked first where the producer stored one. The spans
// are valid until the view is released, like Data; copy what must
// outlive it. The reading side of Producer.FieldSpan, and of C's
// pbr_pb_decode_span.
//
// A field of nums that arrives with another wire type than length-
// delimited is ErrBadMsg, as is an invalid encoding. The spans are bytes
// as they are: a string field's UTF-8 is not checked, a repeated field
// gives its last element, and a oneof member as a span does not clear
// the oneof's other members (name plain bytes fields).
func (v *View) UnmarshalSpans(m proto.Message, nums ...protowire.Number) (spans [][]byte, err error) {
	if err := checkMsgType(v.msgType, m); err != nil {
		return nil, err
	}
	if err := v.Verify(); err != nil {
		return nil, err
	}
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, "", "unmarshal")
	proto.Reset(m)
	spans = make([][]byte, len(nums))
	// Each run is partial on its own: required fields are checked once,
	// on the whole, at the end.
	merge := proto.UnmarshalOptions{Merge: true, AllowPartial: true}
	b, run := v.Data, 0 // b[run:at]: fields not yet decoded
	for at := 0; at < len(b); {
		num, typ, n := protowire.ConsumeTag(b[at:])
		if n < 0 {
			return nil, &decodeError{protowire.ParseError(n)}
		}
		k := spanIndex(nums, num)
		vn := protowire.ConsumeFieldValue(num, typ, b[at+n:])
		if vn < 0 {
			return nil, &decodeError{protowire.ParseError(vn)}
		}
		if k < 0 {
			at += n + vn
			continue
		}
		if typ != protowire.BytesType {
			return nil, &decodeError{errSpanWireType}
		}
		val, _ := protowire.ConsumeBytes(b[at+n:])
		spans[k] = val[:len(val):len(val)]
		if err := decodeRun(merge, b[run:at], m); err != nil {
			return nil, err
		}
		at += n + vn
		run = at
	}
	if err := decodeRun(merge, b[run:], m); err != nil {
		return nil, err
	}
	if err := proto.CheckInitialized(m); err != nil {
		return nil, &decodeError{err}
	}
	return spans, nil
}

func spanIndex(nums []protowire.Number, num protowire.Number) int {
	for i, x := range nums {
		if x == num {
			return i
		}
	}
	return -1
}

// decodeRun merges the encoded fields b into m: protobuf decodes a
// message field by field, so decoding the runs between the spans one
// after the other gives what decoding the whole would, spans aside.
func decodeRun(o proto.UnmarshalOptions, b []byte, m proto.Message) error {
	if len(b) == 0 {
		return nil
	}
	if err := o.Unmarshal(b, m); err != nil {
		return &decodeError{err}
	}
	return nil
}

var errSpanWireType = invalid("a span field is not length-delimited")
