// SPDX-License-Identifier: MIT

package pbring

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as a helper process for the crash tests: with
// PBRING_GO_HELPER=reserve:RING it opens a producer on RING, reserves a
// slot, half-writes it, says so on stdout and waits to be killed; with
// exit:RING it opens a producer and exits without closing it; with
// probe:RING it lists RING's participants until killed; with tap:RING it
// is the reader of TestTapReadPermissionOnly and says what it found.
func TestMain(m *testing.M) {
	if h := os.Getenv("PBRING_GO_HELPER"); h != "" {
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

func helper(spec string) int {
	mode, ring, _ := strings.Cut(spec, ":")
	if mode == "tap" {
		fmt.Println(tapChild(ring))
		return 0
	}
	if mode == "durable" {
		return durableChild(ring)
	}
	r, err := Attach(ring, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if mode == "probe" { // list the participants until killed
		fmt.Println("probing")
		os.Stdout.Sync()
		for {
			if _, err := r.Participants(); err != nil {
				return 1
			}
		}
	}
	p, err := r.NewProducer(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch mode {
	case "exit": // die holding the entry, without closing
		fmt.Println("joined")
		os.Stdout.Sync()
		return 0
	case "reserve":
		s, err := p.Reserve(time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		copy(s.Data, "half-writ")
		fmt.Printf("reserved %d\n", s.Seq)
	case "reader":
		if _, err := r.NewReader(nil); err != nil {
			return 1
		}
		fmt.Println("reading")
	}
	os.Stdout.Sync()
	time.Sleep(time.Hour)
	return 0
}

// startHelper runs this test binary as a helper and waits for its line.
func startHelper(t *testing.T, spec string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PBRING_GO_HELPER="+spec)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper %s: %v", spec, err)
	}
	return cmd, strings.TrimSpace(line)
}

func kill(t *testing.T, cmd *exec.Cmd) {
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
}

// A producer SIGKILLed between Reserve and Commit: the reader recovers its
// sequence after 20 ms (an abandoned record) and keeps reading the other
// producer's messages.
func TestKilledProducerMultiProducer(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	rd, _ := r.NewReader(nil)
	cmd, line := startHelper(t, "reserve:"+name)
	if line != "reserved 0" {
		t.Fatalf("helper: %q", line)
	}
	p, _ := r.NewProducer(nil)
	for i := uint64(1); i <= 5; i++ {
		must(t, sendU64(t, p, i, time.Second))
	}
	if _, err := rd.Peek(50 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("peek while the owner lives: %v", err)
	}
	kill(t, cmd)
	start := time.Now()
	for i := uint64(1); i <= 5; i++ {
		v, err := rd.Peek(time.Second)
		must(t, err)
		if v.Seq != i || binary64(v.Data) != i {
			t.Fatalf("seq %d", v.Seq)
		}
		must(t, rd.Release(&v))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("recovery took %v", d)
	}
	st, _ := r.Stats()
	if rs := rd.Stats(); rs.Abandoned != 1 || st.Abandoned != 1 {
		t.Fatalf("abandoned: reader %d ring %d", rs.Abandoned, st.Abandoned)
	}
	// The dead producer's entry is reclaimed by whoever looks.
	n, err := r.Reclaim()
	must(t, err)
	if st, _ := r.Stats(); n != 1 || st.ProducersReaped != 1 {
		t.Fatalf("reclaim %d, reaped %d", n, st.ProducersReaped)
	}
}

// On a single-producer ring the next producer takes the dead one's entry
// and recovers its last sequence while joining.
func TestKilledProducerSingleProducer(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128, SingleProducer: true})
	rd, _ := r.NewReader(nil)
	cmd, line := startHelper(t, "reserve:"+name)
	if line != "reserved 0" {
		t.Fatalf("helper: %q", line)
	}
	if _, err := r.NewProducer(nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("second producer while the first lives: %v", err)
	}
	kill(t, cmd)
	p, err := r.NewProducer(nil)
	must(t, err)
	must(t, sendU64(t, p, 1, time.Second))
	v, err := rd.Peek(time.Second)
	must(t, err)
	if v.Seq != 1 || rd.Stats().Abandoned != 1 {
		t.Fatalf("seq %d, stats %+v", v.Seq, rd.Stats())
	}
}

// A gating reader SIGKILLed while it holds the ring full: the producer
// reaps it while waiting for space.
func TestKilledReaderIsReaped(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	cmd, _ := startHelper(t, "reader:"+name)
	p, _ := r.NewProducer(nil)
	for i := uint64(0); i < 4; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	if err := sendU64(t, p, 4, 30*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("gated by a live reader: %v", err)
	}
	kill(t, cmd)
	must(t, sendU64(t, p, 4, time.Second))
	if st, _ := r.Stats(); st.ReadersReaped != 1 {
		t.Fatalf("readers reaped %d", st.ReadersReaped)
	}
}

// In-process death: the producer's lock is dropped (its description
// closed) while it holds a reservation; its late commit then fails.
func TestLateCommitAfterRecovery(t *testing.T) {
	for _, sp := range []bool{false, true} {
		r, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128, SingleProducer: sp})
		rd, _ := r.NewReader(nil)
		p, _ := r.NewProducer(nil)
		s, err := p.Reserve(0)
		must(t, err)
		syscall.Close(p.fd) // "dies": the kernel drops its lock
		p.fd = -1
		if _, err := rd.Peek(100 * time.Millisecond); !errors.Is(err, ErrTimeout) {
			t.Fatalf("sp=%v: peek: %v", sp, err)
		}
		if rd.Stats().Abandoned != 1 {
			t.Fatalf("sp=%v: not recovered: %+v", sp, rd.Stats())
		}
		if err := p.Commit(s, 1); !errors.Is(err, ErrOwnerDead) {
			t.Fatalf("sp=%v: late commit: %v", sp, err)
		}
	}
}

// A ring truncated under a reader makes its calls fail with ErrCorrupt
// instead of killing the process with SIGBUS.
func TestTruncatedRing(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 4096})
	p, _ := r.NewProducer(nil)
	rd, _ := r.NewReader(nil)
	must(t, sendU64(t, p, 1, 0))
	must(t, os.Truncate(shmPath(name), 4096))
	_, err := rd.Peek(0)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("peek on truncated ring: %v", err)
	}
	if _, err := p.Reserve(0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reserve on truncated ring: %v", err)
	}
	t.Log(err)
}

func binary64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// A dead producer's pending word reads idle once its sequence is finished
// (as C's pbr_ring_participants): stat must not show a corpse as owing a
// recovery that already happened.
func TestDeadProducerPendingSettles(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 256})
	e := r.producerEntry(3) // nobody holds its lock: dead
	r.u32(e + peState).Store(entryActive)
	r.u64(e + pePending).Store(pendingSeq(0))
	r.u64(r.g.ctl + ctlClaim).Store(1)
	pending := func() uint64 {
		ps, err := r.Participants()
		must(t, err)
		for _, p := range ps {
			if !p.IsReader && p.Index == 3 {
				if p.Alive {
					t.Fatal("forged corpse is alive")
				}
				return p.Pending
			}
		}
		t.Fatal("forged corpse not listed")
		return 0
	}
	for _, c := range []struct {
		commit, want uint64
	}{
		{commitBusyOf(0), pendingSeq(0)},
		{commitEmpty, pendingSeq(0)},
		{commitAbandOf(0), pendingIdle},
		{commitDoneOf(0), pendingIdle},
		{commitDoneOf(8), pendingIdle}, // a later lap
	} {
		r.u64(r.slotOff(0)).Store(c.commit)
		if got := pending(); got != c.want {
			t.Errorf("commit %#x: pending %#x, want %#x", c.commit, got, c.want)
		}
	}
	r.u64(r.slotOff(0)).Store(commitEmpty)
	r.u32(e + peState).Store(0)
}

// §5.1: a probe tests an entry's lock, it does not take it, so a producer
// that joins while another process lists the participants still takes the
// first entry whose owner is dead, and reaps it (§8.3), every time.
func TestProbeDoesNotDivertJoiner(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	prober, _ := startHelper(t, "probe:"+name)
	const joins = 60
	for i := 0; i < joins; i++ {
		cmd, line := startHelper(t, "exit:"+name)
		if line != "joined" {
			t.Fatalf("helper: %q", line)
		}
		cmd.Wait()
		p, err := r.NewProducer(nil)
		must(t, err)
		id := p.ID()
		must(t, p.Close())
		if id != 0 {
			t.Fatalf("join %d took entry %d, not the dead one", i, id)
		}
	}
	kill(t, prober)
	if st, _ := r.Stats(); st.ProducersReaped != joins {
		t.Fatalf("reaped %d, want %d", st.ProducersReaped, joins)
	}
}
