// SPDX-License-Identifier: MIT

//go:build pbring_crash

package pbring

// The named crash points (crash_on.go; run with go test -tags
// pbring_crash). Each case runs this test binary again as a child armed
// with PBR_CRASH_AT=point:N, checks that it died by SIGKILL, and that the
// ring holds what the protocol step of that point leaves behind:
//
//	sp_pending sp_claimed mp_claiming mp_claimed mp_pending busy write
//	encoded header committed peeked release released recover
//	reap_producer reap_reader
//
// then that the ring recovers from it.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

const crashSeqBase = 100

// crashPayload is the child's raw message: no zero byte, so a half write
// shows.
func crashPayload() []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

// TestCrashChild is the child: it does nothing unless PBRING_CRASH_CHILD
// (action:ring) is set, and exits 3 if the armed point never fired.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv("PBRING_CRASH_CHILD")
	if spec == "" {
		t.Skip("only as a crash child")
	}
	action, ring, _ := strings.Cut(spec, ":")
	if err := crashChild(action, ring); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	os.Exit(3)
}

func crashChild(action, ring string) error {
	r, err := Attach(ring, nil)
	if err != nil {
		return err
	}
	switch action {
	case "send", "proto":
		p, err := r.NewProducer(nil)
		if err != nil {
			return err
		}
		for i := 0; i < 20; i++ {
			if action == "send" {
				err = p.Send(crashPayload(), time.Second)
			} else {
				err = p.SendProto(wrapperspb.String("crash"), time.Second)
			}
			if err != nil {
				return err
			}
		}
	case "read":
		rd, err := r.NewReader(&ReaderOptions{Start: StartOldest})
		if err != nil {
			return err
		}
		for {
			v, err := rd.Peek(0)
			if errors.Is(err, ErrEmpty) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := rd.Release(&v); err != nil {
				return err
			}
		}
	case "reclaim":
		_, err = r.Reclaim()
		return err
	}
	return nil
}

// runCrashChild runs the child armed at at and requires death by SIGKILL.
func runCrashChild(t *testing.T, action, ring, at string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PBRING_CRASH_CHILD="+action+":"+ring, "PBR_CRASH_AT="+at)
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child at %s: %v, want death by SIGKILL", at, err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child at %s: %v, want death by SIGKILL", at, ee)
	}
}

// crashView reads the shared state the checks look at.
type crashView struct {
	t *testing.T
	r *Ring
}

func (c crashView) claim() uint64          { return c.r.u64(c.r.g.ctl + ctlClaim).Load() }
func (c crashView) commit(s uint64) uint64 { return c.r.u64(c.r.slotOff(s) + shCommit).Load() }
func (c crashView) length(s uint64) uint32 { return c.r.u32(c.r.slotOff(s) + shLength).Load() }
func (c crashView) crc(s uint64) uint32    { return c.r.u32(c.r.slotOff(s) + shCRC32C).Load() }
func (c crashView) pState() uint32         { return c.r.u32(c.r.producerEntry(0) + peState).Load() }
func (c crashView) pending() uint64        { return c.r.u64(c.r.producerEntry(0) + pePending).Load() }
func (c crashView) committed() uint64      { return c.r.u64(c.r.producerEntry(0) + peCommitted).Load() }
func (c crashView) rState() uint32         { return c.r.u32(c.r.readerEntry(0) + reState).Load() }
func (c crashView) cursor() uint64         { return c.r.u64(c.r.readerEntry(0) + reCursor).Load() }
func (c crashView) payload(s uint64) []byte {
	o := c.r.slotOff(s) + SlotHeaderSize
	return c.r.mem[o : o+64]
}
func (c crashView) want(what string, got, want uint64) {
	c.t.Helper()
	if got != want {
		c.t.Errorf("%s = %#x, want %#x", what, got, want)
	}
}

func TestCrashPoints(t *testing.T) {
	const b = crashSeqBase
	cases := []struct {
		at     string
		single bool
		action string
		check  func(c crashView)
	}{
		{"sp_pending", true, "send", func(c crashView) {
			c.want("pending", c.pending(), pendingSeq(b))
			c.want("claim", c.claim(), b)
		}},
		{"sp_claimed:2", true, "send", func(c crashView) {
			c.want("pending", c.pending(), pendingSeq(b+1))
			c.want("claim", c.claim(), b+2)
			c.want("commit", c.commit(b+1), commitEmpty)
			c.want("committed", c.committed(), 1)
		}},
		{"mp_claiming", false, "send", func(c crashView) {
			c.want("pending", c.pending(), pendingClaiming)
			c.want("claim", c.claim(), b)
		}},
		{"mp_claimed", false, "send", func(c crashView) {
			c.want("pending", c.pending(), pendingClaiming)
			c.want("claim", c.claim(), b+1)
			c.want("commit", c.commit(b), commitEmpty)
		}},
		{"mp_claimed:3", false, "send", func(c crashView) {
			c.want("pending", c.pending(), pendingClaiming)
			c.want("claim", c.claim(), b+3)
			c.want("committed", c.committed(), 2)
			c.want("commit b+1", c.commit(b+1), commitDoneOf(b+1))
		}},
		{"mp_pending", false, "send", func(c crashView) {
			c.want("pending", c.pending(), pendingSeq(b))
			c.want("claim", c.claim(), b+1)
			c.want("commit", c.commit(b), commitEmpty)
		}},
		{"busy", false, "send", func(c crashView) {
			c.want("pending", c.pending(), pendingSeq(b))
			c.want("commit", c.commit(b), commitBusyOf(b))
			c.want("payload[0]", uint64(c.payload(b)[0]), 0)
		}},
		{"write", false, "send", func(c crashView) {
			p := c.payload(b)
			c.want("commit", c.commit(b), commitBusyOf(b))
			c.want("payload[31]", uint64(p[31]), 32)
			c.want("payload[32]", uint64(p[32]), 0)
		}},
		{"encoded", false, "proto", func(c crashView) {
			c.want("commit", c.commit(b), commitBusyOf(b))
			c.want("payload[0]", uint64(c.payload(b)[0]), 0x0a) // field 1, bytes
			c.want("crc", uint64(c.crc(b)), 0)
		}},
		{"header", false, "send", func(c crashView) {
			c.want("commit", c.commit(b), commitBusyOf(b))
			c.want("length", uint64(c.length(b)), 64)
		}},
		{"committed", false, "send", func(c crashView) {
			c.want("commit", c.commit(b), commitDoneOf(b))
			c.want("pending", c.pending(), pendingSeq(b))
			c.want("committed", c.committed(), 0)
		}},
		{"committed:2", true, "send", func(c crashView) {
			c.want("commit", c.commit(b+1), commitDoneOf(b+1))
			c.want("pending", c.pending(), pendingSeq(b+1))
			c.want("committed", c.committed(), 1)
		}},
		{"peeked", false, "read", func(c crashView) {
			c.want("reader state", uint64(c.rState()), entryActive)
			c.want("cursor", c.cursor(), b)
		}},
		{"release:2", false, "read", func(c crashView) {
			c.want("cursor", c.cursor(), b+1)
		}},
		{"released:2", false, "read", func(c crashView) {
			c.want("cursor", c.cursor(), b+2)
		}},
		{"recover", false, "reclaim", func(c crashView) {
			c.want("pending", c.pending(), pendingIdle)
			c.want("producer state", uint64(c.pState()), entryActive)
			c.want("commit", c.commit(b), commitBusyOf(b))
		}},
		{"reap_producer", false, "reclaim", func(c crashView) {
			c.want("pending", c.pending(), pendingIdle)
			c.want("producer state", uint64(c.pState()), entryActive)
			c.want("commit", c.commit(b), commitBusyOf(b))
		}},
		{"reap_reader", false, "reclaim", func(c crashView) {
			c.want("reader state", uint64(c.rState()), entryActive)
		}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.at, ":", "_"), func(t *testing.T) {
			o := &CreateOptions{SlotCount: 8, SlotSize: 256, MaxProducers: 4,
				MaxReaders: 4, SingleProducer: tc.single, SeqBase: b}
			r, name := testRing(t, o)
			c := crashView{t, r}
			switch {
			case tc.action == "read":
				p, err := r.NewProducer(nil)
				must(t, err)
				for i := 0; i < 3; i++ {
					must(t, p.Send(crashPayload(), 0))
				}
				must(t, p.Close())
			case tc.at == "reap_reader":
				cmd, _ := startHelper(t, "reader:"+name)
				kill(t, cmd)
			case tc.action == "reclaim":
				cmd, _ := startHelper(t, "reserve:"+name)
				kill(t, cmd)
			}
			runCrashChild(t, tc.action, name, tc.at)
			tc.check(c)
			if t.Failed() {
				return
			}
			crashRecovers(t, c, tc.action)
		})
	}
}

// crashRecovers: after the crash, reclaiming and reading the ring finds
// every claimed sequence published or abandoned.
func crashRecovers(t *testing.T, c crashView, action string) {
	r := c.r
	if _, err := r.Reclaim(); err != nil {
		t.Fatal(err)
	}
	c.want("reader state after reclaim", uint64(c.rState()), entryFree)
	if action == "read" {
		return
	}
	c.want("producer state after reclaim", uint64(c.pState()), entryFree)
	end := c.claim()
	for s := uint64(crashSeqBase); s != end; s++ {
		r.recoverSeq(s) // what a stuck reader or producer would do
		if v := c.commit(s); v != commitDoneOf(s) && v != commitAbandOf(s) {
			t.Errorf("seq %d: commit %#x, want DONE or ABANDONED", s, v)
		}
	}
}

func TestParseCrashAt(t *testing.T) {
	for _, tc := range []struct {
		at   string
		name string
		nth  int64
	}{
		{"", "", 1}, {"busy", "busy", 1}, {"busy:3", "busy", 3},
		{"busy:", "busy", 0}, {"busy:x", "busy", 0}, {"busy: 7z", "busy", 7},
		{"busy:-2", "busy", -2}, {"busy:99999999999999999999", "busy", 1<<63 - 1},
	} {
		name, nth := parseCrashAt(tc.at)
		if name != tc.name || nth != tc.nth {
			t.Errorf("parseCrashAt(%q) = %q, %d; want %q, %d", tc.at, name, nth, tc.name, tc.nth)
		}
	}
}
