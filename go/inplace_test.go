// SPDX-License-Identifier: MIT

package pbring

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// Large fields written in place (FieldSpan, then CommitProto), as C's
// pbr_slot_pb_span / pbr_producer_commit_pb (tests/check_codec.c,
// test_event_in_place and test_in_place_errors).

const blobField = 5 // DeviceEvent.blob

func fillPattern(b []byte, k byte) {
	for i := range b {
		b[i] = byte(i)*31 + k
	}
}

// A 300-byte blob written in place: tag 0x2A, length AC 02, the window in
// the ring right after them, the rest of the event marshalled after it.
// A reader of another mapping sees the bytes written through the window,
// the CRC is set (the default policy) and verifies, and the event
// decodes to the same fields and blob.
func TestFieldSpanInPlace(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 1024})
	p, err := r.NewProducer(nil)
	must(t, err)
	other, err := Attach(name, nil) // a second mapping of the segment
	must(t, err)
	defer other.Close()
	rd, err := other.NewReader(nil)
	must(t, err)

	s, err := p.Reserve(0)
	must(t, err)
	if s.Used() != 0 {
		t.Fatalf("fresh slot: Used %d", s.Used())
	}
	b, err := p.FieldSpan(s, blobField, 300)
	must(t, err)
	if len(b) != 300 || cap(b) != 300 || &b[0] != &s.Data[3] || s.Used() != 303 {
		t.Fatalf("window len %d cap %d at %p (slot %p), Used %d", len(b), cap(b), &b[0], &s.Data[0], s.Used())
	}
	if h := s.Data[:3]; !bytes.Equal(h, []byte{0x2A, 0xAC, 0x02}) {
		t.Fatalf("head % x, want 2a ac 02", h)
	}
	fillPattern(b, 7)
	// The window's capacity ends at the field: appending reallocates
	// instead of overwriting the bytes that follow in the slot.
	s.Data[303] = 0x55
	if grown := append(b, 0xEE); &grown[0] == &b[0] || s.Data[303] != 0x55 {
		t.Fatal("append ran past the window into the slot")
	}
	ev := &demov1.DeviceEvent{Id: "7-1", Status: -3, Seq: 11, SentNs: 12} // Blob left empty
	must(t, p.CommitProto(s, ev))

	v, err := rd.Peek(0)
	must(t, err)
	rest, _ := proto.Marshal(ev)
	if len(v.Data) != 303+len(rest) || !bytes.Equal(v.Data[:3], []byte{0x2A, 0xAC, 0x02}) ||
		!bytes.Equal(v.Data[303:], rest) {
		t.Fatalf("payload of %d bytes: % x", len(v.Data), v.Data)
	}
	want := make([]byte, 300)
	fillPattern(want, 7)
	if !bytes.Equal(v.Data[3:303], want) {
		t.Fatal("the reader does not see the bytes written through the window")
	}
	if v.Flags&FlagCRC == 0 || v.CRC32C != CRC32C(v.Data) || v.Verify() != nil || v.TimestampNs == 0 {
		t.Fatalf("header: flags %#x crc %#x ts %d", v.Flags, v.CRC32C, v.TimestampNs)
	}
	var got demov1.DeviceEvent
	must(t, v.Unmarshal(&got))
	ev.Blob = want
	if !proto.Equal(&got, ev) {
		t.Fatalf("got %v", &got)
	}
	must(t, rd.Release(&v))

	// The next reservation starts empty again, and CommitProto without a
	// span is what it always was.
	s, err = p.Reserve(0)
	must(t, err)
	if s.Used() != 0 {
		t.Fatalf("next slot: Used %d", s.Used())
	}
	must(t, p.CommitProto(s, ev))
	v, err = rd.Peek(0)
	must(t, err)
	full, _ := proto.Marshal(ev)
	if !bytes.Equal(v.Data, full) || v.Verify() != nil {
		t.Fatalf("plain CommitProto after an in-place one: % x", v.Data)
	}
	must(t, rd.Release(&v))
}

// Several spans precede the rest; a singular field sent twice reads as the
// last one (a span, then the message's own value); a field the reader's
// type does not know is kept as an unknown field; a span of 0 bytes and
// the largest field number lay out the right bytes.
func TestFieldSpanSeveral(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 1024})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)

	s, err := p.Reserve(0)
	must(t, err)
	first, err := p.FieldSpan(s, blobField, 10)
	must(t, err)
	fillPattern(first, 1)
	unknown, err := p.FieldSpan(s, 100, 4)
	must(t, err)
	copy(unknown, "abcd")
	empty, err := p.FieldSpan(s, protowire.MaxValidNumber, 0)
	must(t, err)
	second, err := p.FieldSpan(s, blobField, 200)
	must(t, err)
	fillPattern(second, 2)
	if len(empty) != 0 || cap(empty) != 0 || s.Used() != 12+7+6+203 {
		t.Fatalf("empty window len %d cap %d, Used %d", len(empty), cap(empty), s.Used())
	}
	// The head of the largest field number: a 5-byte tag, length 0.
	num, typ, n := protowire.ConsumeTag(s.Data[19:])
	if num != protowire.MaxValidNumber || typ != protowire.BytesType || n != 5 || s.Data[24] != 0 {
		t.Fatalf("tag %d %d (%d bytes), length %d", num, typ, n, s.Data[24])
	}
	ev := &demov1.DeviceEvent{Id: "x", Seq: 3}
	must(t, p.CommitProto(s, ev))
	v, err := rd.Peek(0)
	must(t, err)
	var got demov1.DeviceEvent
	must(t, v.Unmarshal(&got))
	want := make([]byte, 200)
	fillPattern(want, 2)
	ev.Blob = want
	if got.Id != "x" || got.Seq != 3 || !bytes.Equal(got.Blob, want) {
		t.Fatalf("got %v", &got)
	}
	unk := got.ProtoReflect().GetUnknown()
	wantUnk := protowire.AppendBytes(protowire.AppendTag(nil, 100, protowire.BytesType), []byte("abcd"))
	wantUnk = protowire.AppendBytes(protowire.AppendTag(wantUnk, protowire.MaxValidNumber, protowire.BytesType), nil)
	if !bytes.Equal(unk, wantUnk) {
		t.Fatalf("unknown fields % x, want % x", unk, wantUnk)
	}
	must(t, rd.Release(&v))

	// A blob in the message after a spanned one wins.
	s, err = p.Reserve(0)
	must(t, err)
	b, err := p.FieldSpan(s, blobField, 50)
	must(t, err)
	fillPattern(b, 3)
	must(t, p.CommitProto(s, &demov1.DeviceEvent{Blob: []byte("last")}))
	v, err = rd.Peek(0)
	must(t, err)
	must(t, v.Unmarshal(&got))
	if string(got.Blob) != "last" {
		t.Fatalf("blob %q, want the last one", got.Blob)
	}
	must(t, rd.Release(&v))
}

// Bad field numbers and sizes are errors that change nothing; a rest of
// the message that no longer fits after the spans aborts the reservation,
// and nothing is delivered.
func TestFieldSpanErrors(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 256}) // 192 bytes of payload
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	ev := &demov1.DeviceEvent{Id: "7-1", Status: -3, Seq: 11, SentNs: 12}

	s, err := p.Reserve(0)
	must(t, err)
	copy(s.Data, "\xEE\xEE\xEE")
	for _, c := range []struct {
		num  protowire.Number
		n    int
		want *Error
	}{
		{0, 10, ErrInvalid},
		{1 << 29, 10, ErrInvalid},
		{-1, 10, ErrInvalid},
		{blobField, -1, ErrInvalid},
		{blobField, 191, ErrMsgSize}, // 191 + tag + 2-byte length > 192
		{blobField, 1 << 40, ErrMsgSize},
	} {
		b, err := p.FieldSpan(s, c.num, c.n)
		var re *RingError
		if !errors.Is(err, c.want) || !errors.Is(err, c.want.Errno()) || !errors.As(err, &re) || re.Op != "field span" || b != nil {
			t.Errorf("field %d, %d bytes: %v, %v", c.num, c.n, b, err)
		}
		if s.Used() != 0 || !bytes.Equal(s.Data[:3], []byte("\xEE\xEE\xEE")) {
			t.Fatalf("field %d, %d bytes: Used %d, slot % x", c.num, c.n, s.Used(), s.Data[:3])
		}
	}
	if _, err := p.FieldSpan(s, 0, 1); err == nil || err.Error() != r.Info().Name+": field span: field number 0 is not in 1..536870911" {
		t.Errorf("message: %v", err)
	}
	b, err := p.FieldSpan(s, blobField, 189) // exactly the payload
	must(t, err)
	if s.Used() != 192 {
		t.Fatalf("Used %d", s.Used())
	}
	if _, err := p.FieldSpan(s, 6, 0); !errors.Is(err, ErrMsgSize) || s.Used() != 192 {
		t.Fatalf("span in a full slot: %v", err)
	}
	fillPattern(b, 1)
	// The rest of the event does not fit after it: aborted.
	if err := p.CommitProto(s, ev); !errors.Is(err, ErrMsgSize) {
		t.Fatalf("rest too large: %v", err)
	}
	if _, err := rd.Peek(0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("after the abort: %v", err)
	}
	if _, err := p.FieldSpan(s, blobField, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("span after the abort: %v", err)
	}

	// An empty rest fits exactly; the message is the span alone.
	s, err = p.Reserve(0)
	must(t, err)
	b, err = p.FieldSpan(s, blobField, 189)
	must(t, err)
	fillPattern(b, 2)
	must(t, p.CommitProto(s, &demov1.DeviceEvent{}))
	v, err := rd.Peek(0)
	must(t, err)
	var got demov1.DeviceEvent
	if err := v.Unmarshal(&got); err != nil || len(v.Data) != 192 || len(got.Blob) != 189 || v.Seq != 1 {
		t.Fatalf("%v: %d bytes, blob %d, seq %d", err, len(v.Data), len(got.Blob), v.Seq)
	}
	must(t, rd.Release(&v))
	// Once committed, the slot is no longer a reservation.
	if _, err := p.FieldSpan(s, blobField, 1); !errors.Is(err, ErrInvalid) || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("span after commit: %v", err)
	}
}

// The CRC policy applies to the whole payload, in-place fields included.
func TestFieldSpanCRCPolicy(t *testing.T) {
	for _, c := range []struct {
		o   CreateOptions
		crc bool
	}{
		{CreateOptions{CRC: CRCNone}, false},
		{CreateOptions{CRC: CRCUpTo, CRCLimit: 100}, false}, // 97 + the rest (7) > 100
		{CreateOptions{CRC: CRCUpTo, CRCLimit: 200}, true},
		{CreateOptions{CRC: CRCFull}, true},
	} {
		o := c.o
		o.SlotCount, o.SlotSize = 8, 512
		r, _ := testRing(t, &o)
		p, _ := r.NewProducer(nil)
		rd, _ := r.NewReader(nil)
		s, err := p.Reserve(0)
		must(t, err)
		s.Flags, s.CRC32C = FlagCRC, 0xdeadbeef // stale: replaced or dropped
		b, err := p.FieldSpan(s, blobField, 95)
		must(t, err)
		fillPattern(b, 9)
		must(t, p.CommitProto(s, &demov1.DeviceEvent{Id: "crc", Seq: 1}))
		v, err := rd.Peek(0)
		must(t, err)
		if got := v.Flags&FlagCRC != 0; got != c.crc || len(v.Data) <= 100 || v.Verify() != nil ||
			c.crc && v.CRC32C != CRC32C(v.Data) || !c.crc && v.CRC32C != 0 {
			t.Errorf("%v %d: %d bytes, FlagCRC %v, crc %#x", c.o.CRC, c.o.CRCLimit, len(v.Data), got, v.CRC32C)
		}
		must(t, rd.Release(&v))
	}
}

// FieldSpan allocates nothing.
func TestFieldSpanNoAllocations(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 64, SlotSize: 1024})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	ev := &demov1.DeviceEvent{Id: "1-0", Seq: 5}
	f := func() {
		s, _ := p.Reserve(0)
		b, _ := p.FieldSpan(s, blobField, 500)
		b[0], b[499] = 1, 2
		p.CommitProto(s, ev)
		v, _ := rd.Peek(0)
		rd.Release(&v)
	}
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}
