// SPDX-License-Identifier: MIT

package pbring

import (
	"testing"
	"time"
)

// stamped sends one message with TimestampNs = now, as C's
// PBR_SEND_TIMESTAMP does.
func stamped(t *testing.T, p *Producer) uint64 {
	t.Helper()
	s, err := p.Reserve(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.TimestampNs = MonotonicNs()
	if err := p.Commit(s, 1); err != nil {
		t.Fatal(err)
	}
	return s.TimestampNs
}

// LastCommit: nothing before the first message, nothing from messages
// without a timestamp, else the newest stamped one, past skip records,
// after laps, and the same through a read-only mapping.
func TestLastCommit(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8})
	if _, _, ok, err := r.LastCommit(); ok || err != nil {
		t.Fatalf("empty ring: %v %v", ok, err)
	}
	p, err := r.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Send([]byte("x"), time.Second); err != nil { // no timestamp
		t.Fatal(err)
	}
	if _, _, ok, _ := r.LastCommit(); ok {
		t.Fatal("a message without a timestamp has no age")
	}
	var ts uint64
	for i := 0; i < 20; i++ { // laps the ring
		ts = stamped(t, p)
	}
	s, err := p.Reserve(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Abort(s); err != nil { // a skip record at seq 21
		t.Fatal(err)
	}
	seq, got, ok, err := r.LastCommit()
	if !ok || err != nil || seq != 20 || got != ts {
		t.Fatalf("got seq %d ts %d ok %v err %v, want 20 %d", seq, got, ok, err, ts)
	}
	ro, err := Attach(name, &AttachOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if seq2, got2, ok, err := ro.LastCommit(); !ok || err != nil || seq2 != seq || got2 != got {
		t.Fatalf("read-only: %d %d %v %v", seq2, got2, ok, err)
	}
	// a reservation still open is passed over
	if _, err := p.Reserve(time.Second); err != nil {
		t.Fatal(err)
	}
	if seq3, _, ok, _ := r.LastCommit(); !ok || seq3 != 20 {
		t.Fatalf("with a reservation open: %d %v", seq3, ok)
	}
}
