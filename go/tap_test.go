// SPDX-License-Identifier: MIT

package pbring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tap readers (issue 16): a reader without an entry that writes nothing
// to the segment, on a ring attached read-only or read-write.

// attachRO attaches name read-only, closed when the test ends.
func attachRO(t *testing.T, name string) *Ring {
	t.Helper()
	r, err := Attach(name, &AttachOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("attach read-only: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	if !r.ReadOnly() {
		t.Fatal("ReadOnly() is false on a read-only attach")
	}
	return r
}

func openTap(t *testing.T, r *Ring, start Start) *Reader {
	t.Helper()
	rd, err := r.NewReader(&ReaderOptions{Tap: true, Start: start})
	if err != nil {
		t.Fatalf("open tap: %v", err)
	}
	return rd
}

// readU64s peeks and releases until the ring is empty, returning the
// values of the messages whose release said they were intact.
func readU64s(t *testing.T, rd *Reader) []uint64 {
	t.Helper()
	var got []uint64
	for {
		v, err := rd.Peek(0)
		if errors.Is(err, ErrEmpty) {
			return got
		}
		must(t, err)
		x := binary.LittleEndian.Uint64(v.Data)
		if !v.Unstable {
			t.Fatalf("seq %d: a tap's view is not marked unstable", v.Seq)
		}
		if err := rd.Release(&v); err == nil {
			got = append(got, x)
		} else if !errors.Is(err, ErrStale) {
			t.Fatal(err)
		}
	}
}

// A tap that keeps up reads every message, in order, while the producer
// blocks on a gating reader that trails the tap (so the tap is never
// lapped) and the tap waits by polling.
func TestTapReadsEveryMessage(t *testing.T) {
	const n = 20000
	r, name := testRing(t, &CreateOptions{SlotCount: 16, SlotSize: 128})
	gate, err := r.NewReader(nil)
	must(t, err)
	tap := openTap(t, attachRO(t, name), StartOldest)
	p, err := r.NewProducer(nil)
	must(t, err)
	done := make(chan error, 1)
	go func() {
		for i := uint64(0); i < n; i++ {
			if err := sendU64(t, p, i, 5*time.Second); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := uint64(0); i < n; i++ {
		v, err := tap.Peek(5 * time.Second)
		must(t, err)
		if x := binary.LittleEndian.Uint64(v.Data); x != i || v.Seq != i {
			t.Fatalf("message %d: seq %d value %d", i, v.Seq, x)
		}
		must(t, tap.Release(&v))
		g, err := gate.Peek(time.Second) // only now may the producer reuse it
		must(t, err)
		must(t, gate.Release(&g))
	}
	must(t, <-done)
	if st := tap.Stats(); st.Delivered != n || st.Lost != 0 || st.Missed != 0 || st.Cursor != n {
		t.Fatalf("stats %+v", st)
	}
}

// A lapped tap skips ahead as a lossy reader does, counts what it lost,
// reports a view overwritten while held as stale, and then reads on.
func TestTapLappedCountsLostAndResumes(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	p, err := r.NewProducer(nil)
	must(t, err)
	tap := openTap(t, attachRO(t, name), StartLatest)
	for i := uint64(0); i < 100; i++ {
		must(t, sendU64(t, p, i, 0)) // nothing gates: the producer laps the tap
	}
	got := readU64s(t, tap)
	if len(got) == 0 || got[0] != 100-4 || got[len(got)-1] != 99 {
		t.Fatalf("after the lap read %v", got)
	}
	st := tap.Stats()
	if st.Lost != 96 || st.Delivered+st.Lost != 100 || st.Missed != 0 {
		t.Fatalf("stats after the lap %+v", st)
	}
	// A view overwritten while held: Verify and Release say stale.
	must(t, sendU64(t, p, 100, 0))
	v, err := tap.Peek(0)
	must(t, err)
	for i := uint64(101); i <= 108; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	v.Flags |= FlagCRC // its CRC32C (0) no longer matches: Verify re-checks
	if err := tap.Verify(&v); !errors.Is(err, ErrStale) {
		t.Fatalf("verify of an overwritten view: %v", err)
	}
	if err := tap.Release(&v); !errors.Is(err, ErrStale) {
		t.Fatalf("release of an overwritten view: %v", err)
	}
	readU64s(t, tap)
	// Resumes: what comes now is read whole.
	before := tap.Stats()
	for i := uint64(200); i < 205; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	if got := readU64s(t, tap); fmt.Sprint(got) != "[200 201 202 203 204]" {
		t.Fatalf("after resuming read %v", got)
	}
	if st := tap.Stats(); st.Lost != before.Lost || st.Delivered != before.Delivered+5 {
		t.Fatalf("stats %+v, before %+v", st, before)
	}
}

// A tap is not a participant: Participants does not list it, it has no
// index, and it takes no entry (a ring with one reader entry, taken,
// still opens taps).
func TestTapNotParticipant(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128, MaxReaders: 1})
	gate, err := r.NewReader(nil)
	must(t, err)
	for _, on := range []*Ring{r, attachRO(t, name)} {
		tap := openTap(t, on, StartOldest)
		if tap.Index() != NoIndex || !tap.Tap() || gate.Tap() {
			t.Fatalf("index %d tap %v", tap.Index(), tap.Tap())
		}
		ps, err := on.Participants()
		must(t, err)
		if len(ps) != 1 || !ps[0].IsReader || ps[0].Index != gate.Index() || !ps[0].Alive {
			t.Fatalf("participants %+v", ps)
		}
	}
}

// A tap never holds producers back: with only a tap attached, a
// non-blocking producer writes ten laps of the ring.
func TestTapDoesNotGate(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	taps := []*Reader{openTap(t, r, StartOldest), openTap(t, attachRO(t, name), StartOldest)}
	p, err := r.NewProducer(nil)
	must(t, err)
	for i := uint64(0); i < 80; i++ {
		if err := sendU64(t, p, i, 0); err != nil {
			t.Fatalf("send %d with only taps attached: %v", i, err)
		}
	}
	for _, tap := range taps {
		if got := readU64s(t, tap); len(got) == 0 || got[len(got)-1] != 79 {
			t.Fatalf("tap read %v", got)
		}
		if st := tap.Stats(); st.Delivered+st.Lost != 80 || st.Lost == 0 {
			t.Fatalf("stats %+v", st)
		}
	}
}

// segment is a copy of the ring's whole object, read through the file.
func segment(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(shmPath(name))
	must(t, err)
	return b
}

// useTap does everything a tap does: open, peek, verify, reject, release,
// stats, a wait that times out, and close.
func useTap(t *testing.T, r *Ring) {
	t.Helper()
	tap := openTap(t, r, StartOldest)
	views := make([]View, 4)
	n, err := tap.PeekBatch(views, time.Second)
	must(t, err)
	must(t, tap.Verify(&views[0]))
	must(t, tap.Reject(&views[0]))
	must(t, tap.Release(&views[n-1]))
	got := readU64s(t, tap)
	if st := tap.Stats(); st.Delivered != 10 || st.DecodeErrors != 1 || len(got) != 10-n {
		t.Fatalf("stats %+v, read %v", st, got)
	}
	if _, err := tap.Peek(30 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("peek of an empty ring: %v", err)
	}
	_, err = r.Participants()
	must(t, err)
	_, err = r.Stats()
	must(t, err)
	must(t, r.Check())
	must(t, tap.Close())
}

// Attaching read-only, and everything a tap does, leave the segment
// byte-identical, on a read-only ring (where Interrupt too writes
// nothing) and through a tap on a read-write one.
func TestTapWritesNothing(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 16, SlotSize: 128})
	p, err := r.NewProducer(nil)
	must(t, err)
	gate, err := r.NewReader(nil) // an entry and a cursor a tap could touch
	must(t, err)
	for i := uint64(0); i < 10; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	before := segment(t, name)

	ro, err := Attach(name, &AttachOptions{ReadOnly: true})
	must(t, err)
	useTap(t, ro)
	ro.Interrupt()
	tap := openTap(t, ro, StartLatest)
	if _, err := tap.Peek(-1); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted peek: %v", err)
	}
	must(t, ro.Close())
	useTap(t, r)
	if after := segment(t, name); !bytes.Equal(before, after) {
		t.Fatalf("the segment changed at byte %d", firstDiff(before, after))
	}
	must(t, gate.Close())
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Whatever would write to a ring attached read-only fails with
// ErrReadOnly (EROFS), before touching it.
func TestReadOnlyRefusesWrites(t *testing.T) {
	_, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	ro := attachRO(t, name)
	_, err := ro.NewProducer(nil)
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrReadOnly) || !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s on a read-only ring: %v", what, err)
		}
	}
	check("NewProducer", err)
	_, err = ro.NewReader(nil)
	check("NewReader", err)
	_, err = ro.NewReader(&ReaderOptions{Lossy: true})
	check("NewReader lossy", err)
	_, err = ro.Reclaim()
	check("Reclaim", err)
	if ErrReadOnly.Error() != "ring attached read-only: only tap readers can use it" {
		t.Errorf("text %q is not pbr_strerror(-EROFS)'s", ErrReadOnly.Error())
	}
}

// A tap records no latency (that is its entry's metrics block): Tap with
// Latency is ErrInvalid.
func TestTapLatencyInvalid(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	for _, on := range []*Ring{r, attachRO(t, name)} {
		if _, err := on.NewReader(&ReaderOptions{Tap: true, Latency: true}); !errors.Is(err, ErrInvalid) {
			t.Errorf("tap with latency: %v", err)
		}
	}
}

// A tap's waits poll, and end as other waits do: data, a deadline, a
// cancelled context, Interrupt.
func TestTapWaits(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	ro := attachRO(t, name)
	tap := openTap(t, ro, StartLatest)
	p, err := r.NewProducer(nil)
	must(t, err)
	sent := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		sent <- sendU64(t, p, 7, 0)
	}()
	v, err := tap.Peek(5 * time.Second)
	must(t, err)
	must(t, tap.Release(&v))
	must(t, <-sent)
	t0 := time.Now()
	if _, err := tap.Peek(50 * time.Millisecond); !errors.Is(err, ErrTimeout) || time.Since(t0) > time.Second {
		t.Fatalf("timeout: %v after %v", err, time.Since(t0))
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := tap.PeekContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	time.AfterFunc(20*time.Millisecond, ro.Interrupt)
	if _, err := tap.Peek(-1); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted: %v", err)
	}
}

// A tap cannot recover a dead producer's slot (that is a write): it waits
// at it until a participant that can write recovers it, then counts it
// abandoned and reads on.
func TestTapStallsOnDeadProducerUntilRecovered(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	tap := openTap(t, attachRO(t, name), StartOldest)
	p, err := r.NewProducer(nil) // first: joining on a dead entry would reap it
	must(t, err)
	cmd, line := startHelper(t, "reserve:"+name)
	if line != "reserved 0" {
		t.Fatalf("helper: %q", line)
	}
	kill(t, cmd)
	must(t, sendU64(t, p, 1, 0))
	if _, err := tap.Peek(60 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("peek at a dead producer's slot: %v", err)
	}
	n, err := r.Reclaim()
	must(t, err)
	if n != 1 {
		t.Fatalf("reclaimed %d", n)
	}
	v, err := tap.Peek(time.Second)
	must(t, err)
	must(t, tap.Release(&v))
	if st := tap.Stats(); v.Seq != 1 || st.Abandoned != 1 || st.Delivered != 1 {
		t.Fatalf("seq %d, stats %+v", v.Seq, st)
	}
}

// Read permission is enough for a tap: a ring another user made
// group-readable (0640) refuses a read-write attach (no write permission)
// and serves a read-only one. As root (CI) the reader is a child process
// running as uid 65534, gid 0; otherwise the object loses its owner's
// write bit (0440), so that this process cannot open it for writing.
func TestTapReadPermissionOnly(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128, Mode: 0o640})
	p, err := r.NewProducer(nil)
	must(t, err)
	for i := uint64(0); i < 5; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	if os.Geteuid() != 0 {
		must(t, os.Chmod(shmPath(name), 0o440))
		if out := tapChild(name); out != "refused; read 0 1 2 3 4" {
			t.Fatal(out)
		}
		return
	}
	out := runAsNobody(t, "tap:"+name)
	if out != "refused; read 0 1 2 3 4" {
		t.Fatalf("child as uid 65534: %q", out)
	}
}

// runAsNobody runs this test binary as a helper with uid 65534, gid 0
// and no supplementary groups, from a copy it can execute (go test's
// directory is private), and returns what it printed.
func runAsNobody(t *testing.T, spec string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pbring-tap")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "pbring.test")
	copyFile(t, os.Args[0], bin)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PBRING_GO_HELPER="+spec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 0, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	must(t, err)
	_, err = io.Copy(out, in)
	must(t, err)
	must(t, out.Close())
}

// tapChild is the permission test's reader: a read-write attach must be
// refused for want of permission, a read-only one must read the five
// messages. It says what happened in one line.
func tapChild(ring string) string {
	if r, err := Attach(ring, &AttachOptions{AnyOwner: true}); !errors.Is(err, ErrPermission) {
		if err == nil {
			r.Close()
		}
		return fmt.Sprintf("read-write attach: %v", err)
	}
	r, err := Attach(ring, &AttachOptions{AnyOwner: true, ReadOnly: true})
	if err != nil {
		return fmt.Sprintf("read-only attach: %v", err)
	}
	defer r.Close()
	tap, err := r.NewReader(&ReaderOptions{Tap: true})
	if err != nil {
		return fmt.Sprintf("tap: %v", err)
	}
	var got []string
	for len(got) < 5 {
		v, err := tap.Peek(time.Second)
		if err != nil {
			return fmt.Sprintf("peek after %v: %v", got, err)
		}
		x := binary.LittleEndian.Uint64(v.Data)
		if err := tap.Release(&v); err != nil {
			return fmt.Sprintf("release: %v", err)
		}
		got = append(got, fmt.Sprint(x))
	}
	return "refused; read " + strings.Join(got, " ")
}

// Closing the ring closes its taps; a closed tap says so.
func TestTapClosedWithRing(t *testing.T) {
	_, name := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	ro, err := Attach(name, &AttachOptions{ReadOnly: true})
	must(t, err)
	tap := openTap(t, ro, StartOldest)
	must(t, ro.Close())
	if _, err := tap.Peek(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("peek on a closed tap: %v", err)
	}
	if _, err := ro.NewReader(&ReaderOptions{Tap: true}); !errors.Is(err, ErrClosed) {
		t.Fatalf("tap on a closed ring: %v", err)
	}
}
