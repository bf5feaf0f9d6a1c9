// SPDX-License-Identifier: MIT

package pbring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Durable readers and source ids (format 1.3, FORMAT.md §6.3, §8.4,
// §9.6), as check_durable.c tests them in C.

func durableRing(t *testing.T, slots uint32) (*Ring, string) {
	return testRing(t, &CreateOptions{SlotCount: slots, SlotSize: 128, DurableReaders: true})
}

// durableChild (helper "durable:RING,NAME,N,HELD"): open durable NAME,
// read and release tags 0..N-1, peek HELD more without releasing them,
// print "held", and wait to be killed.
func durableChild(spec string) int {
	f := strings.Split(spec, ",")
	n, _ := strconv.ParseUint(f[2], 10, 64)
	held, _ := strconv.Atoi(f[3])
	r, err := Attach(f[0], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rd, err := r.NewReader(&ReaderOptions{Durable: f[1]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("opened", rd.Resumed())
	os.Stdout.Sync()
	for i := uint64(0); i < n; i++ {
		v, err := rd.Peek(10 * time.Second)
		if err != nil || binary64(v.Data) != i {
			fmt.Fprintln(os.Stderr, "child read", i, err)
			return 1
		}
		if err := rd.Release(&v); err != nil {
			return 1
		}
	}
	views := make([]View, held)
	for got := 0; got < held; {
		k, err := rd.PeekBatch(views, 10*time.Second)
		if err != nil {
			return 1
		}
		got = k
	}
	time.Sleep(time.Hour)
	return 0
}

func findDurable(t *testing.T, r *Ring, name string) Participant {
	t.Helper()
	ps, err := r.Participants()
	must(t, err)
	for _, p := range ps {
		if p.IsReader && p.Durable && p.Name == name {
			return p
		}
	}
	t.Fatalf("no durable reader %q in %+v", name, ps)
	return Participant{}
}

func countReaders(t *testing.T, r *Ring) int {
	ps, err := r.Participants()
	must(t, err)
	n := 0
	for _, p := range ps {
		if p.IsReader {
			n++
		}
	}
	return n
}

func TestDurableCreateDetachResume(t *testing.T) {
	r, _ := durableRing(t, 16)
	if !r.Info().DurableReaders || r.Info().FormatMinor != 3 {
		t.Fatalf("info %+v", r.Info())
	}
	p, err := r.NewProducer(nil)
	must(t, err)
	rd, err := r.NewReader(&ReaderOptions{Durable: "bridge.a"})
	must(t, err)
	if rd.Resumed() || rd.Durable() != "bridge.a" {
		t.Fatalf("resumed %v name %q", rd.Resumed(), rd.Durable())
	}
	for i := uint64(0); i < 5; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	for i := uint64(0); i < 2; i++ {
		v, err := rd.Peek(0)
		must(t, err)
		must(t, rd.Release(&v))
	}
	if _, err := rd.Peek(0); err != nil { // held, not released
		t.Fatal(err)
	}
	must(t, rd.Close())
	pt := findDurable(t, r, "bridge.a")
	if pt.Alive || !pt.Detached || pt.Position != 2 || pt.Flags != readerGating|readerDurable {
		t.Fatalf("detached: %+v", pt)
	}
	rd, err = r.NewReader(&ReaderOptions{Durable: "bridge.a", Start: StartLatest})
	must(t, err)
	if !rd.Resumed() {
		t.Fatal("not resumed")
	}
	for i := uint64(2); i < 5; i++ {
		v, err := rd.Peek(0)
		must(t, err)
		if binary64(v.Data) != i || v.Unstable {
			t.Fatalf("got %d (unstable %v), want %d", binary64(v.Data), v.Unstable, i)
		}
		must(t, rd.Release(&v))
	}
	if _, err := rd.Peek(0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("after the backlog: %v", err)
	}
	must(t, rd.Close())
}

// A durable reader SIGKILLed holding peeks while a producer keeps going:
// the producer blocks (nothing reaped), and a new open resumes at the
// dead reader's cursor and gets every later message exactly once.
func TestDurableKilledReaderResumes(t *testing.T) {
	const total, released, held = 200, 10, 4
	r, name := durableRing(t, 8)
	cmd, line := startHelper(t, fmt.Sprintf("durable:%s,victim,%d,%d", name, released, held))
	if line != "opened false" {
		t.Fatalf("helper: %q", line)
	}
	p, err := r.NewProducer(nil)
	must(t, err)
	var wg sync.WaitGroup
	var sendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(0); i < total && sendErr == nil; i++ {
			sendErr = sendU64(t, p, i, 20*time.Second)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for findDurable(t, r, "victim").Position != released && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let it peek the held ones
	kill(t, cmd)
	time.Sleep(150 * time.Millisecond) // several liveness periods
	st, err := r.Stats()
	must(t, err)
	if st.ReadersReaped != 0 || st.Claimed > released+8+1 {
		t.Fatalf("after the kill: reaped %d claimed %d", st.ReadersReaped, st.Claimed)
	}
	if pt := findDurable(t, r, "victim"); !pt.Detached || pt.Position != released {
		t.Fatalf("victim %+v", pt)
	}
	rd, err := r.NewReader(&ReaderOptions{Durable: "victim", Start: StartLatest})
	must(t, err)
	if !rd.Resumed() {
		t.Fatal("not resumed")
	}
	for want := uint64(released); want < total; want++ {
		v, err := rd.Peek(10 * time.Second)
		must(t, err)
		if got := binary64(v.Data); got != want {
			t.Fatalf("got %d, want %d", got, want)
		}
		must(t, rd.Release(&v))
	}
	wg.Wait()
	must(t, sendErr)
	if _, err := rd.Peek(0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("extra message: %v", err)
	}
	must(t, rd.Drop())
	if countReaders(t, r) != 0 {
		t.Fatal("dropped reader still listed")
	}
}

// Alive: neither take-over nor drop; dead: a detached reader gates, the
// producer times out instead of reaping, Reclaim leaves it, and plain
// readers pass over its entry; a drop frees the producer.
func TestDurableBusyGatesDrop(t *testing.T) {
	r, name := durableRing(t, 4)
	cmd, line := startHelper(t, fmt.Sprintf("durable:%s,slow,0,0", name))
	if line != "opened false" {
		t.Fatalf("helper: %q", line)
	}
	if _, err := r.NewReader(&ReaderOptions{Durable: "slow"}); !errors.Is(err, ErrReaderAlive) {
		t.Fatalf("open while alive: %v", err)
	}
	if err := r.DropReader("slow"); !errors.Is(err, ErrReaderAlive) {
		t.Fatalf("drop while alive: %v", err)
	}
	kill(t, cmd)
	p, err := r.NewProducer(nil)
	must(t, err)
	for i := uint64(0); i < 4; i++ {
		must(t, sendU64(t, p, i, 0))
	}
	if err := sendU64(t, p, 4, 60*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("send past a detached reader: %v", err)
	}
	if n, err := r.Reclaim(); err != nil || n != 0 {
		t.Fatalf("reclaim %d %v", n, err)
	}
	plain, err := r.NewReader(&ReaderOptions{Start: StartLatest})
	must(t, err)
	if plain.Index() == findDurable(t, r, "slow").Index {
		t.Fatal("a plain reader took the detached entry")
	}
	must(t, plain.Close())
	must(t, r.DropReader("slow"))
	must(t, sendU64(t, p, 4, 60*time.Millisecond))
	if err := r.DropReader("slow"); !errors.Is(err, ErrNoReader) {
		t.Fatalf("second drop: %v", err)
	}
	if st, _ := r.Stats(); st.ReadersReaped != 0 {
		t.Fatalf("reaped %d", st.ReadersReaped)
	}
}

func TestDurableRefusals(t *testing.T) {
	plain, _ := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	if _, err := plain.NewReader(&ReaderOptions{Durable: "x"}); !errors.Is(err, ErrNotDurable) {
		t.Fatalf("no feature: %v", err)
	}
	if err := plain.DropReader("x"); !errors.Is(err, ErrNotDurable) {
		t.Fatalf("drop, no feature: %v", err)
	}
	r, _ := durableRing(t, 4)
	for _, bad := range []string{"a b", "a/b", "é", strings.Repeat("x", 32)} {
		if _, err := r.NewReader(&ReaderOptions{Durable: bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	for _, o := range []ReaderOptions{{Durable: "ok", Lossy: true}, {Durable: "ok", Tap: true}} {
		if _, err := r.NewReader(&o); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	rd, err := r.NewReader(&ReaderOptions{Durable: strings.Repeat("x", 31)})
	must(t, err)
	must(t, rd.Close())
	// A forged name without a NUL is no name: listed as "", unmatched.
	e := r.readerEntry(findDurable(t, r, strings.Repeat("x", 31)).Index)
	copy(r.mem[e+reName:e+reName+readerNameSize], strings.Repeat("q", readerNameSize))
	ps, _ := r.Participants()
	if len(ps) != 1 || !ps[0].Durable || ps[0].Name != "" {
		t.Fatalf("forged name: %+v", ps)
	}
}

// Without the feature bit a DURABLE flag forged on a dead reader changes
// nothing: it is reaped as before.
func TestDurableFlagIgnoredWithoutFeature(t *testing.T) {
	r, name := testRing(t, &CreateOptions{SlotCount: 4, SlotSize: 128})
	cmd, _ := startHelper(t, "reader:"+name)
	kill(t, cmd)
	ps, _ := r.Participants()
	var idx uint32
	for _, p := range ps {
		if p.IsReader {
			idx = p.Index
		}
	}
	e := r.readerEntry(idx)
	r.u32(e + reFlags).Store(readerGating | readerDurable)
	p, err := r.NewProducer(nil)
	must(t, err)
	for i := uint64(0); i < 8; i++ {
		must(t, sendU64(t, p, i, time.Second))
	}
	if st, _ := r.Stats(); st.ReadersReaped != 1 {
		t.Fatalf("reaped %d", st.ReadersReaped)
	}
}

func TestSourceRoundTrip(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128}) // cap 64
	p, err := r.NewProducer(nil)
	must(t, err)
	rd, err := r.NewReader(nil)
	must(t, err)
	buf := make([]byte, 64)
	must(t, p.SendSource(buf[:5], 1733456789012, 7, 0))
	must(t, p.Send(buf, 0))
	if err := p.SendSource(buf[:49], 1, 2, 0); !errors.Is(err, ErrMsgSize) {
		t.Fatalf("49 bytes + source: %v", err)
	}
	s, err := p.Reserve(0)
	must(t, err)
	s.SetSource(^uint64(0), 0x0102030405060708)
	if err := p.Commit(s, 49); !errors.Is(err, ErrMsgSize) {
		t.Fatalf("commit 49 + source: %v", err)
	}
	must(t, p.Commit(s, 48))
	want := []struct {
		hi, lo uint64
		ok     bool
	}{{1733456789012, 7, true}, {0, 0, false}, {^uint64(0), 0x0102030405060708, true}}
	for i, w := range want {
		v, err := rd.Peek(0)
		must(t, err)
		hi, lo, ok := v.Source()
		if hi != w.hi || lo != w.lo || ok != w.ok {
			t.Fatalf("message %d: source (%d, %d, %v)", i, hi, lo, ok)
		}
		must(t, rd.Release(&v))
	}
}

// A SOURCE flag forged on a slot whose trailer passes payload_cap: no
// source; one forged within bounds is read from the trailer.
func TestSourceForgedOutOfBounds(t *testing.T) {
	r, _ := testRing(t, &CreateOptions{SlotCount: 8, SlotSize: 128})
	p, err := r.NewProducer(nil)
	must(t, err)
	rd, err := r.NewReader(nil)
	must(t, err)
	must(t, p.Send(make([]byte, 60), 0))
	must(t, p.Send(make([]byte, 40), 0))
	h0, h1 := r.slotOff(0), r.slotOff(1)
	r.mem[h0+shFlags] |= FlagSource
	r.mem[h1+shFlags] |= FlagSource
	binary.LittleEndian.PutUint64(r.mem[h1+SlotHeaderSize+40:], 11)
	binary.LittleEndian.PutUint64(r.mem[h1+SlotHeaderSize+48:], 12)
	v, err := rd.Peek(0)
	must(t, err)
	if _, _, ok := v.Source(); ok || v.Flags&FlagSource != 0 {
		t.Fatalf("out of bounds source accepted: flags %#x", v.Flags)
	}
	must(t, rd.Release(&v))
	v, err = rd.Peek(0)
	must(t, err)
	if hi, lo, ok := v.Source(); !ok || hi != 11 || lo != 12 {
		t.Fatalf("in-bounds source: %d %d %v", hi, lo, ok)
	}
}

// Concurrent opens of one name: the name lock lets exactly one create it;
// the others find it owned (ErrReaderAlive), and one entry exists.
func TestDurableConcurrentOpen(t *testing.T) {
	r, _ := durableRing(t, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, alive := 0, 0
	var readers []*Reader
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd, err := r.NewReader(&ReaderOptions{Durable: "one"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && !rd.Resumed():
				created++
				readers = append(readers, rd)
			case errors.Is(err, ErrReaderAlive):
				alive++
			default:
				t.Errorf("open: %v (resumed %v)", err, rd != nil && rd.Resumed())
			}
		}()
	}
	wg.Wait()
	if created != 1 || alive != 5 || countReaders(t, r) != 1 {
		t.Fatalf("created %d, alive %d, readers %d", created, alive, countReaders(t, r))
	}
	must(t, readers[0].Drop())
}
