// SPDX-License-Identifier: MIT

package main

import (
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pbring "github.com/pbring/pbring/go"
)

// Stopping, as in the C command (cli/stop.c): SIGINT or SIGTERM records
// the signal and interrupts the ring's waits, so a command blocked on a
// full or an empty ring stops at once, prints its summary and exits 128 +
// signal. A second signal exits at once.
var (
	stopSig  atomic.Int32
	stopCh   = make(chan struct{}) // closed by the first stop signal
	stopMu   sync.Mutex            // guards stopRing: never interrupt a closed ring
	stopRing *pbring.Ring
)

func installStop() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for s := range ch {
			n := int32(s.(syscall.Signal)) // #nosec G115 -- SIGINT or SIGTERM, the two notified
			if !stopSig.CompareAndSwap(0, n) {
				os.Exit(128 + int(n))
			}
			close(stopCh)
			stopMu.Lock()
			if stopRing != nil {
				stopRing.Interrupt()
			}
			stopMu.Unlock()
		}
	}()
}

// stopOn makes a stop signal interrupt r's waits (and at once, if one
// came before r was known).
func stopOn(r *pbring.Ring) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stopRing = r
	if stopSig.Load() != 0 {
		r.Interrupt()
	}
}

// closeRing closes r once the stop handler has let go of it.
func closeRing(r *pbring.Ring) {
	stopMu.Lock()
	if stopRing == r {
		stopRing = nil
	}
	stopMu.Unlock()
	_ = r.Close() // on the way out: the command's status is already decided
}

// sleepUnlessStopped sleeps for d; false if a stop signal came first.
func sleepUnlessStopped(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return stopped() == 0
	case <-stopCh:
		return false
	}
}

// stopped is the signal that asked us to stop, or 0.
func stopped() int { return int(stopSig.Load()) }

// stopStatus says "interrupted" and returns 128 + the signal.
func stopStatus(ring string) int {
	fail(ring, "interrupted")
	return 128 + stopped()
}

// watch tells the user what changed under a running command: gating
// readers that died (reaped by our waits or anyone's), and the ring
// removed or shrunk.
type watch struct {
	r      *pbring.Ring
	name   string
	reaped uint64
	gating [][2]uint32 // index, pid
}

func newWatch(r *pbring.Ring, name string) *watch {
	w := &watch{r: r, name: name}
	st, _ := r.Stats()
	w.reaped = st.ReadersReaped
	w.gating = w.snapshot()
	return w
}

func (w *watch) snapshot() [][2]uint32 {
	ps, _ := w.r.Participants()
	var g [][2]uint32
	for _, p := range ps {
		if p.IsReader && p.Gating {
			g = append(g, [2]uint32{p.Index, p.PID})
		}
	}
	return g
}

// poll reports gating readers reaped since the last poll and returns
// Check's error (removed, damaged).
func (w *watch) poll() error {
	st, _ := w.r.Stats()
	now := w.snapshot()
	if st.ReadersReaped != w.reaped {
		reaped := st.ReadersReaped - w.reaped
		w.reaped = st.ReadersReaped
		var gone [][2]uint32
		for _, g := range w.gating {
			if !containsReader(now, g) {
				gone = append(gone, g)
			}
		}
		// More left than were reaped: some closed normally, and which
		// ones cannot be told.
		how := "died"
		if uint64(len(gone)) > reaped {
			how = "left or died"
		}
		for _, g := range gone {
			tail := ""
			if len(now) == 0 {
				tail = "; no gating reader left, so nothing holds messages back now"
			}
			fail(w.name, "gating reader %d (pid %d) %s%s", g[0], g[1], how, tail)
		}
	}
	w.gating = now
	return w.r.Check()
}

// full says which gating reader a full ring waits for: the one furthest
// behind (in wrapping order), once per stall.
func (w *watch) full() {
	ps, _ := w.r.Participants()
	var slow *pbring.Participant
	for i := range ps {
		p := &ps[i]
		if p.IsReader && p.Gating && (slow == nil || int64(p.Position-slow.Position) < 0) { // #nosec G115 -- the wrap is the point: wrapping order
			slow = p
		}
	}
	if slow != nil {
		dead := ""
		if !slow.Alive {
			dead = ", dead"
		}
		fail(w.name, "ring is full: waiting for gating reader %d (pid %d%s) to read", slow.Index, slow.PID, dead)
	}
}

// stall notices that no message was sent for a second and says once, per
// stall, what the producers wait for.
type stall struct {
	seen    uint64
	movedNs int64
	said    bool
}

func (s *stall) note(w *watch, sum uint64, now int64) {
	switch {
	case sum != s.seen:
		s.seen, s.movedNs, s.said = sum, now, false
	case !s.said && now-s.movedNs >= int64(time.Second):
		s.said = true
		w.full()
	}
}

func containsReader(list [][2]uint32, g [2]uint32) bool {
	for _, x := range list {
		if x == g {
			return true
		}
	}
	return false
}

// waitGatingReader waits up to timeout for a live gating reader, saying
// once that it waits: nil, ErrTimeout, ErrInterrupted or Check's error.
func waitGatingReader(r *pbring.Ring, name string, timeout time.Duration) error {
	until := time.Now().Add(timeout)
	said := false
	for !hasGatingReader(r) {
		if !said {
			logLine("info", "waiting", name, "", "pbring: ", "waiting for a gating reader on "+name+" (start a consumer, or use --no-wait)")
			said = true
		}
		if stopped() != 0 || r.Interrupted() {
			return pbring.ErrInterrupted
		}
		if err := r.Check(); err != nil {
			return err
		}
		if !time.Now().Before(until) {
			return pbring.ErrTimeout
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// waitReader is waitGatingReader with the command's messages: 0, or the
// exit status.
func waitReader(r *pbring.Ring, name string, timeout time.Duration) int {
	switch err := waitGatingReader(r, name, timeout); {
	case err == nil:
		return 0
	case stopped() != 0:
		logLine("info", "summary", name, "", "produce: ", "0 messages")
		return stopStatus(name)
	case err == pbring.ErrTimeout:
		fail(name, "no gating reader attached (start a consumer first, or use --no-wait)")
	default:
		failErr(name, "", err)
	}
	return exitRuntime
}
