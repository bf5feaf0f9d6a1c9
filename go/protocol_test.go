// SPDX-License-Identifier: MIT

package pbring

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

func sendU64(t testing.TB, p *Producer, v uint64, timeout time.Duration) error {
	s, err := p.Reserve(timeout)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(s.Data, v)
	return p.Commit(s, 8)
}

func TestSingleProducerOrder(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128, SingleProducer: true})
	if !r.Info().SingleProducer || r.Info().MaxProducers != 1 {
		t.Fatal("not single-producer")
	}
	p, err := r.NewProducer(nil)
	must(t, err)
	if _, err := r.NewProducer(nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("second producer on SP ring: %v", err)
	}
	rd, err := r.NewReader(nil)
	must(t, err)
	const n = 20000
	go func() {
		for i := uint64(0); i < n; i++ {
			if err := sendU64(t, p, i, -1); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	views := make([]View, 16)
	for got := uint64(0); got < n; {
		k, err := rd.PeekBatch(views, 5*time.Second)
		must(t, err)
		for _, v := range views[:k] {
			if v.Seq != got || binary.LittleEndian.Uint64(v.Data) != got || v.Producer != 0 {
				t.Fatalf("seq %d: %+v", got, v)
			}
			got++
		}
		must(t, rd.Release(&views[k-1]))
	}
	if st := rd.Stats(); st.Delivered != n || st.Lost != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMultiProducer(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 16, SlotSize: 128, MaxProducers: 4})
	rd, err := r.NewReader(nil)
	must(t, err)
	const k, n = 4, 5000
	var wg sync.WaitGroup
	for j := 0; j < k; j++ {
		p, err := r.NewProducer(nil)
		must(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); i < n; i++ {
				if err := sendU64(t, p, uint64(p.ID())<<32|i, -1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := map[uint16]uint64{}
	for seq := uint64(0); seq < k*n; seq++ {
		v, err := rd.Peek(5 * time.Second)
		must(t, err)
		x := binary.LittleEndian.Uint64(v.Data)
		if v.Seq != seq || uint16(x>>32) != v.Producer || x&0xffffffff != next[v.Producer] {
			t.Fatalf("seq %d producer %d value %#x, want %d", v.Seq, v.Producer, x, next[v.Producer])
		}
		next[v.Producer]++
		must(t, rd.Release(&v))
	}
	wg.Wait()
}

func TestGatingHoldsProducer(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	for i := uint64(0); i < 4; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	if err := sendU64(t, p, 4, 0); !errors.Is(err, ErrFull) {
		t.Fatalf("full ring, no wait: %v", err)
	}
	start := time.Now()
	if err := sendU64(t, p, 4, 30*time.Millisecond); !errors.Is(err, ErrTimeout) || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("full ring, 30 ms: %v after %v", err, time.Since(start))
	}
	v, err := rd.Peek(0)
	must(t, err)
	must(t, rd.Release(&v))
	// The claim made before the timeouts is still ours: it is sequence 4.
	s, err := p.Reserve(0)
	must(t, err)
	if s.Seq != 4 {
		t.Fatalf("seq %d", s.Seq)
	}
	must(t, p.Commit(s, 0))
}

func TestBlockingWakeUp(t *testing.T) {
	for _, mode := range []WaitMode{WaitBlock, WaitSpin, WaitYield} {
		r, _ := testRing(t, &CreateOptions{SlotCount: 2, SlotSize: 128})
		p, _ := r.NewProducer(&ProducerOptions{Wait: mode})
		rd, _ := r.NewReader(&ReaderOptions{Wait: mode})
		done := make(chan error, 1)
		go func() {
			for i := uint64(0); i < 200; i++ {
				if err := sendU64(t, p, i, 5*time.Second); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for i := uint64(0); i < 200; i++ {
			if i%50 == 0 {
				time.Sleep(25 * time.Millisecond) // let the producer sleep on a full ring
			}
			v, err := rd.Peek(5 * time.Second)
			must(t, err)
			if v.Seq != i {
				t.Fatalf("mode %d: seq %d want %d", mode, v.Seq, i)
			}
			must(t, rd.Release(&v))
		}
		must(t, <-done)
	}
}

func TestPeekContext(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	rd, _ := r.NewReader(nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	start := time.Now()
	_, err := rd.PeekContext(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("cancel took %v", d)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	_, err = rd.PeekContext(ctx)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if _, err := rd.Peek(0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty: %v", err)
	}
}

func TestLossyLapped(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(&ReaderOptions{Lossy: true})
	for i := uint64(0); i < 100; i++ {
		must(t, sendU64(t, p, i, 0)) // nothing gates: the producer laps the reader
	}
	v, err := rd.Peek(0)
	must(t, err)
	if v.Seq != 100-4 || binary.LittleEndian.Uint64(v.Data) != v.Seq {
		t.Fatalf("after lap got seq %d", v.Seq)
	}
	must(t, rd.Release(&v))
	passed := uint64(0)
	for {
		v, err := rd.Peek(0)
		if errors.Is(err, ErrEmpty) {
			break
		}
		must(t, err)
		must(t, rd.Release(&v))
		passed++
	}
	st := rd.Stats()
	if st.Delivered+st.Lost+st.Abandoned != 100 || st.Lost != 96 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLossyStale(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(&ReaderOptions{Lossy: true})
	must(t, sendU64(t, p, 0, 0))
	v, err := rd.Peek(0)
	must(t, err)
	for i := uint64(1); i <= 4; i++ {
		must(t, sendU64(t, p, i, 0)) // seq 4 overwrites the slot we hold
	}
	if err := rd.Release(&v); !errors.Is(err, ErrStale) {
		t.Fatalf("release of overwritten slot: %v", err)
	}
	if st := rd.Stats(); st.Lost != 1 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAbortAndSizes(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	s, err := p.Reserve(0)
	must(t, err)
	if len(s.Data) != 64 || cap(s.Data) != 64 {
		t.Fatalf("payload %d/%d", len(s.Data), cap(s.Data))
	}
	if _, err := p.Reserve(0); !errors.Is(err, ErrInProgress) {
		t.Fatalf("double reserve: %v", err)
	}
	if err := p.Commit(s, 65); !errors.Is(err, ErrMsgSize) {
		t.Fatalf("oversize commit: %v", err)
	}
	must(t, p.Abort(s)) // still open after ErrMsgSize
	if err := p.Commit(s, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("commit after abort: %v", err)
	}
	if err := p.Send(make([]byte, 65), 0); !errors.Is(err, ErrMsgSize) {
		t.Fatalf("oversize send: %v", err)
	}
	must(t, p.Send([]byte("hi"), 0))
	v, err := rd.Peek(0)
	must(t, err)
	if v.Seq != 1 || string(v.Data) != "hi" { // seq 0 was the skip record
		t.Fatalf("got %d %q", v.Seq, v.Data)
	}
	bad := v
	bad.Seq = 5
	if err := rd.Release(&bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("release of unpeeked: %v", err)
	}
	must(t, rd.Release(&v))
	// Closing a producer with an open reservation publishes a skip record.
	_, err = p.Reserve(0)
	must(t, err)
	must(t, p.Close())
	if _, err := rd.Peek(0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("after close: %v", err)
	}
	if st, _ := r.Stats(); st.Claimed != 3 {
		t.Fatalf("claimed %d", st.Claimed)
	}
}

func TestTraceAndFlags(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	s, _ := p.Reserve(0)
	s.Flags = FlagTrace | 0x80 // an unknown flag is not stored
	s.TraceID[0], s.SpanID[7], s.TimestampNs = 1, 2, 99
	must(t, p.Commit(s, 0))
	v, err := rd.Peek(0)
	must(t, err)
	if v.Flags != FlagTrace || v.TraceID[0] != 1 || v.SpanID[7] != 2 || v.TimestampNs != 99 || len(v.Data) != 0 {
		t.Fatalf("view %+v", v)
	}
}

func TestSeqWrap(t *testing.T) {
	base := ^uint64(0) - 5
	for _, sp := range []bool{false, true} {
		r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128, SeqBase: base, SingleProducer: sp})
		p, _ := r.NewProducer(nil)
		rd, _ := r.NewReader(nil)
		for i := uint64(0); i < 20; i++ {
			must(t, sendU64(t, p, i, 0))
			v, err := rd.Peek(0)
			must(t, err)
			if v.Seq != base+i || binary.LittleEndian.Uint64(v.Data) != i {
				t.Fatalf("sp=%v: seq %#x want %#x", sp, v.Seq, base+i)
			}
			must(t, rd.Release(&v))
		}
	}
}

func TestStartPositions(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	p, _ := r.NewProducer(nil)
	for i := uint64(0); i < 6; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	oldest, _ := r.NewReader(nil)
	latest, _ := r.NewReader(&ReaderOptions{Start: StartLatest})
	v, err := oldest.Peek(0)
	must(t, err)
	if v.Seq != 2 {
		t.Fatalf("oldest starts at %d", v.Seq)
	}
	if _, err := latest.Peek(0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("latest sees the past: %v", err)
	}
	// The producer's gating limit predates the readers' join, so it may
	// still overwrite the backlog (never sequence 6 or later): that is
	// the backlog a gating reader checks like a lossy one (§9.1).
	if !v.Unstable {
		t.Fatal("a backlog view is not marked unstable")
	}
	must(t, sendU64(t, p, 6, 0))
	if err := oldest.Release(&v); !errors.Is(err, ErrStale) {
		t.Fatalf("overwritten backlog slot: %v", err)
	}
	// Overwritten backlog is missed, never lost (§9.1).
	if st := oldest.Stats(); st.Missed != 1 || st.Lost != 0 || st.Delivered != 0 {
		t.Fatalf("backlog overwrite counted as %+v", st)
	}
	v, err = latest.Peek(0)
	must(t, err)
	if v.Seq != 6 {
		t.Fatalf("latest starts at %d", v.Seq)
	}
	must(t, latest.Release(&v))
	// The cached limit (8) still lets 7 through; at 8 the producer
	// rescans and the oldest reader (cursor 3) holds it back.
	must(t, sendU64(t, p, 7, 0))
	if err := sendU64(t, p, 8, 0); !errors.Is(err, ErrFull) {
		t.Fatalf("gated: %v", err)
	}
}

func TestRingCloseClosesHandles(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	a, err := Attach(name, nil)
	must(t, err)
	p, _ := a.NewProducer(nil)
	rd, _ := a.NewReader(nil)
	_, err = p.Reserve(0)
	must(t, err)
	must(t, a.Close())
	if _, err := rd.Peek(0); err == nil {
		t.Fatal("peek on closed reader")
	}
	parts, err := r.Participants()
	must(t, err)
	if len(parts) != 0 {
		t.Fatalf("participants after close: %+v", parts)
	}
	if st, _ := r.Stats(); st.Claimed != 1 {
		t.Fatalf("claimed %d", st.Claimed)
	}
}

// A forged claim far ahead, and every slot saying a later sequence: a
// gating reader passes over one gated slot per peek as corrupt, never
// walks towards the forged claim, and loses nothing (§9.4).
func TestForgedClaimDoesNotSendReaderWalking(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	rd, err := r.NewReader(&ReaderOptions{Start: StartLatest})
	must(t, err)
	const far = uint64(1) << 40
	r.u64(r.g.ctl + ctlClaim).Store(far + 1)
	for i := uint64(0); i < 8; i++ {
		r.u64(r.slotOff(i) + shCommit).Store(commitDoneOf(far - 8 + i))
	}
	t0 := time.Now()
	for i := 0; i < 3; i++ {
		if _, err := rd.Peek(0); !errors.Is(err, ErrBadMsg) {
			t.Fatalf("peek %d: %v", i, err)
		}
	}
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Fatalf("three peeks took %v", d)
	}
	if st := rd.Stats(); st.Bad != 3 || st.Lost != 0 || st.Cursor != 3 {
		t.Fatalf("stats %+v", st)
	}
}
