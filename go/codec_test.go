// SPDX-License-Identifier: MIT

package pbring

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

func TestProtoRoundTrip(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 256})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	ev := &demov1.DeviceEvent{Id: "7-1", Status: 2, Seq: 11, SentNs: 12, Blob: []byte{1, 2, 3}}
	must(t, p.SendProto(ev, 0))
	v, err := rd.Peek(0)
	must(t, err)
	if v.Flags&FlagCRC == 0 || v.CRC32C != CRC32C(v.Data) || v.TimestampNs == 0 || v.TimestampNs > MonotonicNs() {
		t.Fatalf("header %+v", v)
	}
	var got demov1.DeviceEvent
	must(t, v.Unmarshal(&got))
	must(t, rd.Release(&v))
	if !proto.Equal(&got, ev) {
		t.Fatalf("got %v", &got)
	}
	// The decoded message owns its bytes: it survives the slot's reuse.
	for i := 0; i < 8; i++ {
		must(t, p.Send(make([]byte, 100), 0))
		v, _ := rd.Peek(0)
		rd.Release(&v)
	}
	if !proto.Equal(&got, ev) {
		t.Fatal("decoded message aliases the ring")
	}
}

// A message too large for the slot is refused before anything is
// written, and its sequence is given back as a skip record.
func TestProtoTooLarge(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	big := &demov1.DeviceEvent{Blob: make([]byte, 64)}
	if err := p.SendProto(big, 0); !errors.Is(err, ErrMsgSize) {
		t.Fatalf("big message: %v", err)
	}
	must(t, p.SendProto(&demov1.DeviceEvent{Seq: 1}, 0))
	v, err := rd.Peek(0)
	must(t, err)
	if v.Seq != 1 {
		t.Fatalf("seq %d, want 1 (0 was skipped)", v.Seq)
	}
	s, _ := p.Reserve(0)
	// Exactly the payload capacity fits.
	fit := &demov1.DeviceEvent{Blob: make([]byte, 62)} // 2 bytes of tag and length
	if n := proto.Size(fit); n != 64 {
		t.Fatalf("size %d", n)
	}
	must(t, p.CommitProto(s, fit))
	// A message protobuf refuses to marshal (proto3 strings must be UTF-8).
	if err := p.SendProto(&demov1.DeviceEvent{Id: "\xff"}, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
}

func TestCorruptSlots(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	must(t, p.SendProto(&demov1.DeviceEvent{Id: "a"}, 0))
	must(t, p.SendProto(&demov1.DeviceEvent{Id: "b"}, 0))
	must(t, p.SendProto(&demov1.DeviceEvent{Id: "c"}, 0))
	// seq 0: a length beyond the payload capacity (a hostile header).
	r.u32(r.slotOff(0) + shLength).Store(65)
	// seq 1: a payload that does not match its CRC.
	r.mem[r.slotOff(1)+SlotHeaderSize+2] ^= 0xff
	v, err := rd.Peek(0)
	if !errors.Is(err, ErrBadMsg) || v.Seq != 0 {
		t.Fatalf("bad length: %v seq %d", err, v.Seq)
	}
	v, err = rd.Peek(0)
	must(t, err)
	var ev demov1.DeviceEvent
	if err := v.Unmarshal(&ev); !errors.Is(err, ErrBadMsg) || v.Seq != 1 {
		t.Fatalf("bad crc: %v seq %d", err, v.Seq)
	}
	// Not protobuf at all, and no CRC to catch it.
	r.mem[r.slotOff(1)+SlotHeaderSize] = 0xff
	if err := v.UnmarshalNoVerify(proto.UnmarshalOptions{}, &ev); !errors.Is(err, ErrBadMsg) {
		t.Fatalf("garbage: %v", err)
	}
	must(t, rd.Release(&v))
	v, err = rd.Peek(0)
	must(t, err)
	must(t, v.Unmarshal(&ev))
	if ev.Id != "c" || rd.Stats().Bad != 1 {
		t.Fatalf("%v %+v", &ev, rd.Stats())
	}
	cp, err := v.AppendPayload(nil)
	must(t, err)
	if string(cp) != string(v.Data) {
		t.Fatal("copy")
	}
}
