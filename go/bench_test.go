// SPDX-License-Identifier: MIT

package pbring

import (
	"testing"
	"time"

	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// The raw path, one goroutine: reserve+commit (no copy), then peek+release.
// Neither side allocates per message.
func BenchmarkReserveCommitPeekRelease(b *testing.B) {
	for _, sp := range []bool{true, false} {
		name := "mp"
		if sp {
			name = "sp"
		}
		b.Run(name, func(b *testing.B) {
			r, _ := testRing(b, &CreateOptions{SlotCount: 1024, SlotSize: 128, SingleProducer: sp})
			p, _ := r.NewProducer(nil)
			rd, _ := r.NewReader(nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s, err := p.Reserve(0)
				if err != nil {
					b.Fatal(err)
				}
				s.Data[0] = byte(i)
				if err := p.Commit(s, 16); err != nil {
					b.Fatal(err)
				}
				v, err := rd.Peek(0)
				if err != nil {
					b.Fatal(err)
				}
				if err := rd.Release(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Only the reader's raw path: the ring is refilled outside the timer.
func BenchmarkPeekRelease(b *testing.B) {
	r, _ := testRing(b, &CreateOptions{SlotCount: 4096, SlotSize: 128, SingleProducer: true})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%4096 == 0 {
			b.StopTimer()
			for k := 0; k < 4096; k++ {
				s, _ := p.Reserve(0)
				p.Commit(s, 16)
			}
			b.StartTimer()
		}
		v, err := rd.Peek(0)
		if err != nil {
			b.Fatal(err)
		}
		if err := rd.Release(&v); err != nil {
			b.Fatal(err)
		}
	}
}

// Batches of 64: one release per batch.
func BenchmarkPeekBatchRelease(b *testing.B) {
	r, _ := testRing(b, &CreateOptions{SlotCount: 4096, SlotSize: 128, SingleProducer: true})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	views := make([]View, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		if i%4096 == 0 {
			b.StopTimer()
			for k := 0; k < 4096; k++ {
				s, _ := p.Reserve(0)
				p.Commit(s, 16)
			}
			b.StartTimer()
		}
		n, err := rd.PeekBatch(views, 0)
		if err != nil || n != 64 {
			b.Fatal(n, err)
		}
		if err := rd.Release(&views[n-1]); err != nil {
			b.Fatal(err)
		}
	}
}

// Producer in one goroutine, reader in another: throughput across cores
// (blocking waits: spinning pairs collapse when the cores are shared).
func BenchmarkCrossGoroutine(b *testing.B) {
	r, _ := testRing(b, &CreateOptions{SlotCount: 1024, SlotSize: 128, SingleProducer: true})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			s, err := p.Reserve(-1)
			if err != nil {
				panic(err)
			}
			p.Commit(s, 16)
		}
	}()
	views := make([]View, 64)
	for got := 0; got < b.N; {
		n, err := rd.PeekBatch(views, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		rd.Release(&views[n-1])
		got += n
	}
}

func BenchmarkSendProto(b *testing.B) {
	r, _ := testRing(b, &CreateOptions{SlotCount: 1024, SlotSize: 256, SingleProducer: true})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	ev := &demov1.DeviceEvent{Id: "12345-0", Status: 1, Seq: 100000, SentNs: 1e12, Blob: make([]byte, 64)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.SendProto(ev, 0); err != nil {
			b.Fatal(err)
		}
		v, _ := rd.Peek(0)
		rd.Release(&v)
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	r, _ := testRing(b, &CreateOptions{SlotCount: 4, SlotSize: 256})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	ev := &demov1.DeviceEvent{Id: "12345-0", Status: 1, Seq: 100000, SentNs: 1e12, Blob: make([]byte, 64)}
	must(b, p.SendProto(ev, 0))
	v, _ := rd.Peek(0)
	var out demov1.DeviceEvent
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := v.Unmarshal(&out); err != nil {
			b.Fatal(err)
		}
	}
}

// The raw peek/release path and the reserve/commit path allocate nothing.
func TestNoAllocations(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 64, SlotSize: 256})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	lossy, _ := r.NewReader(&ReaderOptions{Lossy: true})
	ev := &demov1.DeviceEvent{Id: "1-0", Seq: 5, Blob: make([]byte, 32)}
	views := make([]View, 8)
	typed, _ := testRing(t, &CreateOptions{SlotCount: 64, SlotSize: 256, MsgType: string(ev.ProtoReflect().Descriptor().FullName())})
	tp, _ := typed.NewProducer(nil)
	trd, _ := typed.NewReader(nil)
	cases := map[string]func(){
		"typed send-proto (type checked)/peek/release": func() {
			tp.SendProto(ev, 0)
			v, _ := trd.Peek(0)
			trd.Release(&v)
		},
		"reserve/commit/peek/release": func() {
			s, _ := p.Reserve(0)
			p.Commit(s, 8)
			v, _ := rd.Peek(0)
			rd.Release(&v)
			v, _ = lossy.Peek(0)
			lossy.Release(&v)
		},
		"send-proto/peek-batch": func() {
			p.SendProto(ev, 0)
			n, _ := rd.PeekBatch(views, 0)
			rd.Release(&views[n-1])
			lossy.PeekBatch(views[:1], 0)
			lossy.Release(&views[0])
		},
		"empty peek": func() {
			rd.Peek(0)
			rd.Peek(time.Microsecond)
		},
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocations per run", name, n)
		}
	}
}
