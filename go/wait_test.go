// SPDX-License-Identifier: MIT

package pbring

import (
	"errors"
	"os"
	"testing"
	"time"
)

// What ends a wait besides its condition and its timeout: Interrupt, and
// the ring removed or shrunk under the waiter (as tests/check_wait.c).

const prompt = time.Second

var waitModes = []WaitMode{WaitBlock, WaitSpin, WaitYield}

// fullRing: 4 slots, full for a gating reader that reads nothing.
func fullRing(t *testing.T, mode WaitMode) (*Ring, string, *Producer, *Reader) {
	r, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 256})
	rd, err := r.NewReader(&ReaderOptions{Wait: mode})
	must(t, err)
	p, err := r.NewProducer(&ProducerOptions{Wait: mode})
	must(t, err)
	for i := 0; i < 4; i++ {
		must(t, p.Send([]byte{byte(i)}, 0))
	}
	return r, name, p, rd
}

func TestInterruptReserve(t *testing.T) {
	for _, mode := range waitModes {
		r, _, p, rd := fullRing(t, mode)
		time.AfterFunc(50*time.Millisecond, r.Interrupt)
		t0 := time.Now()
		if _, err := p.Reserve(-1); !errors.Is(err, ErrInterrupted) {
			t.Fatalf("mode %d: reserve: %v, want interrupted", mode, err)
		}
		if d := time.Since(t0); d > prompt {
			t.Errorf("mode %d: interrupted after %v", mode, d)
		}
		if !r.Interrupted() {
			t.Error("Interrupted() is false")
		}
		// Sticky, and nothing committed is lost.
		if err := p.Send([]byte{9}, -1); !errors.Is(err, ErrInterrupted) {
			t.Errorf("send after interrupt: %v", err)
		}
		for i := 0; i < 4; i++ {
			v, err := rd.Peek(0)
			must(t, err)
			if v.Data[0] != byte(i) {
				t.Errorf("message %d carries %d", i, v.Data[0])
			}
			must(t, rd.Release(&v))
		}
	}
}

func TestInterruptPeek(t *testing.T) {
	for _, mode := range waitModes {
		r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 256})
		rd, err := r.NewReader(&ReaderOptions{Wait: mode})
		must(t, err)
		time.AfterFunc(50*time.Millisecond, r.Interrupt)
		t0 := time.Now()
		if _, err := rd.Peek(-1); !errors.Is(err, ErrInterrupted) || err.Error() != r.Name()+": peek: interrupted" {
			t.Fatalf("mode %d: peek: %v, want interrupted", mode, err)
		}
		if d := time.Since(t0); d > prompt {
			t.Errorf("mode %d: interrupted after %v", mode, d)
		}
		if _, err := rd.Peek(0); !errors.Is(err, ErrEmpty) {
			t.Errorf("non-blocking peek after interrupt: %v", err)
		}
	}
}

// `pbring rm` under a waiting reader, then a new ring under the name.
func TestRemovedWhileWaiting(t *testing.T) {
	for _, mode := range waitModes {
		r, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 256})
		rd, err := r.NewReader(&ReaderOptions{Wait: mode})
		must(t, err)
		must(t, r.Check())
		fresh := make(chan *Ring, 1)
		time.AfterFunc(50*time.Millisecond, func() {
			_ = Unlink(name)
			n, _ := Create(name, nil)
			fresh <- n
		})
		t0 := time.Now()
		if _, err := rd.Peek(-1); !errors.Is(err, ErrRemoved) {
			t.Fatalf("mode %d: peek: %v, want removed", mode, err)
		}
		if d := time.Since(t0); d > prompt {
			t.Errorf("mode %d: told after %v", mode, d)
		}
		n := <-fresh
		if n == nil {
			t.Fatal("could not re-create the ring")
		}
		if err := r.Check(); !errors.Is(err, ErrRemoved) {
			t.Errorf("Check of the removed ring: %v", err)
		}
		must(t, n.Check())
		n.Close()
	}
}

// Shrunk under a producer waiting for space: damaged, not "full".
func TestTruncatedWhileWaiting(t *testing.T) {
	_, name, p, _ := fullRing(t, WaitBlock)
	path := "/dev/shm/pbring." + name
	fi, err := os.Stat(path)
	must(t, err)
	must(t, os.Truncate(path, fi.Size()/2))
	t0 := time.Now()
	if _, err := p.Reserve(5 * time.Second); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reserve: %v, want damaged", err)
	}
	if d := time.Since(t0); d > prompt {
		t.Errorf("told after %v", d)
	}
}
