// SPDX-License-Identifier: MIT

package pbring

import (
	"errors"
	"testing"
	"time"
)

// The producer's statistics in its entry (format 1.1), as C's
// check_protocol test_producer_statistics: payload bytes committed,
// aborts, time waited for space, zero at join.
func TestProducerStatistics(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 2, SlotSize: 256})
	rd, err := r.NewReader(nil)
	must(t, err)
	defer rd.Close()
	p, err := r.NewProducer(nil)
	must(t, err)
	ps, err := r.Participants()
	must(t, err)
	if ps[0].IsReader || ps[0].Bytes+ps[0].Aborts+ps[0].BlockedNs != 0 {
		t.Fatalf("at join: %+v", ps[0])
	}
	must(t, p.Send([]byte("0123456789"), 0))
	s, err := p.Reserve(0)
	must(t, err)
	must(t, p.Abort(s))
	t0 := time.Now()
	if err := p.Send([]byte("x"), 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a full ring: %v", err)
	}
	took := time.Since(t0)
	ps, err = r.Participants()
	must(t, err)
	q := ps[0]
	if q.Position != 2 || q.Bytes != 10 || q.Aborts != 1 {
		t.Fatalf("statistics %+v", q)
	}
	if q.BlockedNs < uint64(45*time.Millisecond) || q.BlockedNs > uint64(took) {
		t.Fatalf("blocked %v, the send took %v", time.Duration(q.BlockedNs), took)
	}
	must(t, p.Close())
	p, err = r.NewProducer(nil)
	must(t, err)
	defer p.Close()
	ps, err = r.Participants()
	must(t, err)
	if ps[0].Bytes+ps[0].Aborts+ps[0].BlockedNs != 0 {
		t.Fatalf("a new producer in the entry: %+v", ps[0])
	}
}
