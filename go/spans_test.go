// SPDX-License-Identifier: MIT

package pbring

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

const blobNum = protowire.Number(5) // DeviceEvent.blob

func inside(b, in []byte) bool {
	if len(b) == 0 {
		return true
	}
	p, s := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&in[0]))
	return p >= s && p+uintptr(len(b)) <= s+uintptr(len(in))
}

// Random events, sent by SendProto: UnmarshalSpans gives what Unmarshal
// gives, the blob aside, and the blob as a window into the slot.
func TestUnmarshalSpansAsUnmarshal(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 4096})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 300; i++ {
		ev := &demov1.DeviceEvent{Seq: rng.Uint64(), Status: int32(rng.Intn(5)) - 2, SentNs: uint64(rng.Intn(3))}
		if rng.Intn(4) > 0 {
			ev.Id = "dev-" + string(rune('a'+rng.Intn(26)))
		}
		if n := rng.Intn(3000); rng.Intn(5) > 0 {
			ev.Blob = make([]byte, n)
			rng.Read(ev.Blob)
		}
		must(t, p.SendProto(ev, time.Second))
		v, err := rd.Peek(time.Second)
		must(t, err)
		var whole, rest demov1.DeviceEvent
		must(t, v.Unmarshal(&whole))
		rest.Id = "stale" // reset by UnmarshalSpans
		spans, err := v.UnmarshalSpans(&rest, blobNum)
		must(t, err)
		if len(rest.Blob) != 0 || !bytes.Equal(spans[0], whole.Blob) || !inside(spans[0], v.Data) {
			t.Fatalf("message %d: blob %d bytes, span %d (in the slot: %v)", i, len(whole.Blob), len(spans[0]), inside(spans[0], v.Data))
		}
		if len(ev.Blob) == 0 && spans[0] != nil {
			t.Fatalf("message %d: a span for an absent field", i)
		}
		rest.Blob = whole.Blob
		if !proto.Equal(&rest, &whole) {
			t.Fatalf("message %d: %v, want %v", i, &rest, &whole)
		}
		must(t, rd.Release(&v))
	}
}

// The field written in place by FieldSpan is read in place; a field sent
// twice gives its last occurrence, as protobuf reads it; a span number
// that is not in the message gives nil.
func TestUnmarshalSpansInPlaceAndTwice(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 1024})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	s, err := p.Reserve(time.Second)
	must(t, err)
	w, err := p.FieldSpan(s, blobNum, 100)
	must(t, err)
	for i := range w {
		w[i] = byte(i)
	}
	must(t, p.CommitProto(s, &demov1.DeviceEvent{Id: "x", Seq: 9}))
	// blob, id, blob again, seq: raw bytes
	raw := protowire.AppendTag(nil, blobNum, protowire.BytesType)
	raw = protowire.AppendBytes(raw, []byte("first"))
	raw = protowire.AppendTag(raw, 1, protowire.BytesType)
	raw = protowire.AppendString(raw, "y")
	raw = protowire.AppendTag(raw, blobNum, protowire.BytesType)
	raw = protowire.AppendBytes(raw, []byte("second"))
	raw = protowire.AppendTag(raw, 3, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 4)
	must(t, p.Send(raw, time.Second))

	v, err := rd.Peek(time.Second)
	must(t, err)
	var ev demov1.DeviceEvent
	spans, err := v.UnmarshalSpans(&ev, blobNum, 99)
	must(t, err)
	if ev.Id != "x" || ev.Seq != 9 || len(spans[0]) != 100 || spans[0][99] != 99 || spans[1] != nil || !inside(spans[0], v.Data) {
		t.Fatalf("in place: %v, span %d bytes, %v", &ev, len(spans[0]), spans[1])
	}
	must(t, rd.Release(&v))
	v, err = rd.Peek(time.Second)
	must(t, err)
	spans, err = v.UnmarshalSpans(&ev, blobNum)
	must(t, err)
	if ev.Id != "y" || ev.Seq != 4 || string(spans[0]) != "second" {
		t.Fatalf("twice: %v, span %q", &ev, spans[0])
	}
	must(t, rd.Release(&v))
}

// Bad input: a span field of another wire type, a cut message, a CRC
// mismatch, a message of another type.
func TestUnmarshalSpansErrors(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 256, MsgType: "pbring.demo.v1.DeviceEvent"})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	varint := protowire.AppendVarint(protowire.AppendTag(nil, blobNum, protowire.VarintType), 1)
	cut := protowire.AppendVarint(protowire.AppendTag(nil, blobNum, protowire.BytesType), 50)
	for _, payload := range [][]byte{varint, cut} {
		must(t, p.Send(payload, time.Second))
		v, err := rd.Peek(time.Second)
		must(t, err)
		var ev demov1.DeviceEvent
		if _, err := v.UnmarshalSpans(&ev, blobNum); !errors.Is(err, ErrBadMsg) {
			t.Fatalf("payload %x: %v", payload, err)
		}
		must(t, rd.Release(&v))
	}
	s, err := p.Reserve(time.Second)
	must(t, err)
	s.Flags, s.CRC32C = FlagCRC, 12345
	must(t, p.Commit(s, 0))
	v, err := rd.Peek(time.Second)
	must(t, err)
	var ev demov1.DeviceEvent
	if _, err := v.UnmarshalSpans(&ev, blobNum); !errors.Is(err, ErrBadMsg) {
		t.Fatalf("CRC mismatch: %v", err)
	}
	var other demov1.SyncAck
	if _, err := v.UnmarshalSpans(&other, 1); !errors.Is(err, ErrWrongType) {
		t.Fatalf("another type: %v", err)
	}
	must(t, rd.Release(&v))
}

// Unmarshal against UnmarshalSpans of a DeviceEvent: the blob copied and
// allocated, or left in the slot.
func BenchmarkUnmarshalBlob(b *testing.B) {
	for _, size := range []int{64, 64 << 10, 1 << 20} {
		r, _ := testRing(b, &CreateOptions{SlotCount: 2, SlotSize: uint32(size+1024) &^ 127})
		p, _ := r.NewProducer(nil)
		rd, _ := r.NewReader(nil)
		must(b, p.SendProto(&demov1.DeviceEvent{Id: "b", Seq: 1, Blob: make([]byte, size)}, time.Second))
		v, err := rd.Peek(time.Second)
		must(b, err)
		var ev demov1.DeviceEvent
		b.Run("Unmarshal/"+sizeName(size), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := v.Unmarshal(&ev); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("UnmarshalSpans/"+sizeName(size), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := v.UnmarshalSpans(&ev, blobNum); err != nil {
					b.Fatal(err)
				}
			}
		})
		must(b, rd.Release(&v))
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return "1MiB"
	case n >= 1<<10:
		return "64KiB"
	}
	return "64B"
}
