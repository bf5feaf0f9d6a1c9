// SPDX-License-Identifier: MIT

// Package interop runs the C `pbring` command and the Go `pbring-go`
// against each other on shared rings: C→Go, Go→C and Go→Go with 100 000
// DeviceEvents each, C and Go producers writing into one ring at once,
// and a Go reader that keeps working while a producer is SIGKILLed in the
// middle of writing a slot. Every message's seq and fields are checked,
// and every JSON line is checked to be the canonical form.
//
// The C command is taken from PBRING_BIN (cmake --build ... → build/pbring);
// without it the tests that need C are skipped and Go→Go still runs.
// PBRING_CRASH_BIN names a C command built with -DPBRING_CRASH_POINTS=ON,
// which kills itself between encoding a message and committing it; if
// unset, PBRING_BIN is tried for crash points too.
package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

const events = 100000

var (
	goBin   string // pbring-go, built by TestMain
	cBin    = os.Getenv("PBRING_BIN")
	counter atomic.Int32
)

func TestMain(m *testing.M) {
	if ring := os.Getenv("PBRING_INTEROP_HELPER"); ring != "" {
		os.Exit(helperReserveAndHang(ring))
	}
	dir, err := os.MkdirTemp("", "pbring-interop")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goBin = filepath.Join(dir, "pbring-go")
	build := exec.Command("go", "build", "-o", goBin, "github.com/pbring/pbring/go/cmd/pbring-go")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pbring-go:", err)
		os.Exit(1)
	}
	rc := m.Run()
	os.RemoveAll(dir)
	os.Exit(rc)
}

func needC(t *testing.T) {
	t.Helper()
	if cBin == "" {
		t.Skip("PBRING_BIN is not set: set PBRING_BIN=/path/to/pbring (the C command, " +
			"built by cmake --build) to run the C/Go interop tests")
	}
	if _, err := os.Stat(cBin); err != nil {
		t.Fatalf("PBRING_BIN=%s: %v", cBin, err)
	}
}

// newRing creates a demo ring (with the C command when there is one, as
// users do) and removes it when the test ends.
func newRing(t *testing.T, slots int) string {
	t.Helper()
	return newRingSized(t, slots, 1024)
}

// newRingSized is newRing with slots of slotSize bytes.
func newRingSized(t *testing.T, slots, slotSize int) string {
	t.Helper()
	name := fmt.Sprintf("interop-%d-%d", os.Getpid(), counter.Add(1))
	pbring.Unlink(name)
	if cBin != "" {
		out, err := exec.Command(cBin, "create", name, "--slots", strconv.Itoa(slots),
			"--slot-size", strconv.Itoa(slotSize)).CombinedOutput()
		if err != nil {
			t.Fatalf("pbring create: %v: %s", err, out)
		}
	} else {
		r, err := pbring.Create(name, demo.CreateOptions(uint32(slots), uint32(slotSize)))
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	t.Cleanup(func() { pbring.Unlink(name) })
	return name
}

// consumer is a running `consume --json` whose lines are checked as they
// arrive.
type consumer struct {
	mode   string // what its summary says it is: gating, or tap
	cmd    *exec.Cmd
	stderr strings.Builder
	check  *checker
	done   chan struct{}
}

// startConsumer starts `consume RING --count COUNT --json` with extra
// options (--tap) after those.
func startConsumer(t *testing.T, bin, ring string, count int, size int, extra ...string) *consumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	c := &consumer{mode: "gating", check: newChecker(size), done: make(chan struct{})}
	if slices.Contains(extra, "--tap") {
		c.mode = "tap"
	}
	args := append([]string{"consume", ring, "--count", strconv.Itoa(count), "--json", "--timeout", "30"}, extra...)
	c.cmd = exec.CommandContext(ctx, bin, args...)
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		c.check.read(out)
	}()
	return c
}

// wait returns the consumer's exit code and its stderr.
func (c *consumer) wait() (int, string) {
	<-c.done
	err := c.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return code, c.stderr.String()
}

// waitReaders waits until n gating readers are attached to ring.
func waitReaders(t *testing.T, ring string, n int) {
	t.Helper()
	r, err := pbring.Attach(ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		ps, _ := r.Participants()
		k := 0
		for _, p := range ps {
			if p.IsReader && p.Gating {
				k++
			}
		}
		if k >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d readers never attached to %s", n, ring)
}

func produce(t *testing.T, bin, ring string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"produce", ring}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s produce: %v: %s", filepath.Base(bin), err, out)
	}
	t.Logf("%s: %s", filepath.Base(bin), strings.TrimSpace(string(out)))
}

// reSummary matches consume's summary line (docs/CLI.md); `content
// errors` is optional while C commands without it are around.
var reSummary = regexp.MustCompile(`^consume \((?:gating|tap)\): received (\d+), lost (\d+), missed \d+, gaps (\d+), duplicates (\d+), crc errors (\d+), (?:content errors (\d+), )?abandoned (\d+), rate \d+ msg/s, latency p50 (?:-|[\d.]+ [nmu]?s) p99 (?:-|[\d.]+ [nmu]?s) max (?:-|[\d.]+ [nmu]?s) \(commit to receive, including time queued in the ring(?:; \d+ replayed messages not timed)?\)$`)

// summaryCounts are the summary's received, lost, gaps, duplicates, crc
// errors, content errors ("0" if the line has none) and abandoned.
func summaryCounts(m []string) []string {
	got := append([]string(nil), m[1:]...)
	if got[5] == "" {
		got[5] = "0"
	}
	return got
}

// expectSummary checks the consumer's exit code and summary line.
func expectSummary(t *testing.T, c *consumer, received, abandoned int) {
	t.Helper()
	code, stderr := c.wait()
	line := strings.TrimSpace(stderr)
	t.Logf("%s: %s", filepath.Base(c.cmd.Path), line)
	m := reSummary.FindStringSubmatch(line)
	if code != 0 || m == nil || !strings.HasPrefix(line, "consume ("+c.mode+")") {
		t.Fatalf("consumer (%s) exited %d: %q", c.mode, code, stderr)
	}
	want := []string{strconv.Itoa(received), "0", "0", "0", "0", "0", strconv.Itoa(abandoned)}
	if got := summaryCounts(m); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("summary %v, want received/lost/gaps/dups/crc/content/abandoned %v", got, want)
	}
	if err := c.check.err(); err != nil {
		t.Fatal(err)
	}
}

func TestCToGo(t *testing.T) {
	needC(t)
	ring := newRing(t, 1024)
	c := startConsumer(t, goBin, ring, events, 32)
	waitReaders(t, ring, 1)
	produce(t, cBin, ring, "--count", strconv.Itoa(events), "--size", "32")
	expectSummary(t, c, events, 0)
	c.check.expect(t, 1, events)
}

func TestGoToC(t *testing.T) {
	needC(t)
	ring := newRing(t, 1024)
	c := startConsumer(t, cBin, ring, events, 32)
	waitReaders(t, ring, 1)
	produce(t, goBin, ring, "--count", strconv.Itoa(events), "--size", "32")
	expectSummary(t, c, events, 0)
	c.check.expect(t, 1, events)
}

func TestGoToGo(t *testing.T) {
	ring := newRing(t, 1024)
	c := startConsumer(t, goBin, ring, 2*events, 100)
	waitReaders(t, ring, 1)
	produce(t, goBin, ring, "--count", strconv.Itoa(events), "--size", "100", "--producers", "2")
	expectSummary(t, c, 2*events, 0)
	c.check.expect(t, 1, events, events)
}

// C and Go producers (two of each) write into one ring at once, read by a
// C and a Go consumer at the same time.
func TestMixedProducers(t *testing.T) {
	needC(t)
	const each = events / 2
	ring := newRing(t, 1024)
	goC := startConsumer(t, goBin, ring, 4*each, 8)
	cC := startConsumer(t, cBin, ring, 4*each, 8)
	waitReaders(t, ring, 2)
	var wg sync.WaitGroup
	for _, bin := range []string{cBin, goBin} {
		wg.Add(1)
		go func(bin string) {
			defer wg.Done()
			produce(t, bin, ring, "--count", strconv.Itoa(each), "--size", "8", "--producers", "2")
		}(bin)
	}
	wg.Wait()
	expectSummary(t, goC, 4*each, 0)
	expectSummary(t, cC, 4*each, 0)
	for _, c := range []*consumer{goC, cC} {
		c.check.expect(t, 2, each, each, each, each)
	}
}

// crashBin returns a C command with crash points, or "".
func crashBin(t *testing.T) string {
	for _, b := range []string{os.Getenv("PBRING_CRASH_BIN"), cBin} {
		if b == "" {
			continue
		}
		ring := newRing(t, 16)
		cmd := exec.Command(b, "produce", ring, "--no-wait", "--count", "1")
		cmd.Env = append(os.Environ(), "PBR_CRASH_AT=encoded")
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
			return b
		}
	}
	return ""
}

// A C producer SIGKILLs itself after encoding message 5000 into its slot
// and before committing it; the Go reader recovers that slot (an
// abandoned record) and goes on reading another producer's messages.
func TestGoReaderSurvivesKilledCProducer(t *testing.T) {
	needC(t)
	bin := crashBin(t)
	if bin == "" {
		t.Skip("no C command with crash points: build one with -DPBRING_CRASH_POINTS=ON " +
			"and set PBRING_CRASH_BIN (TestGoReaderSurvivesKilledGoProducer covers the Go side)")
	}
	ring := newRing(t, 1024)
	const before, after = 4999, 20000
	c := startConsumer(t, goBin, ring, before+after, 16)
	waitReaders(t, ring, 1)
	cmd := exec.Command(bin, "produce", ring, "--count", strconv.Itoa(events), "--size", "16")
	cmd.Env = append(os.Environ(), "PBR_CRASH_AT=encoded:5000")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("crash producer: %v", err)
	}
	produce(t, cBin, ring, "--count", strconv.Itoa(after), "--size", "16")
	expectSummary(t, c, before+after, 1)
	c.check.expect(t, 2, before, after)
}

// The same with a Go producer in a child process, killed with SIGKILL
// after it reserved a slot and wrote half a message into it.
func TestGoReaderSurvivesKilledGoProducer(t *testing.T) {
	ring := newRing(t, 1024)
	const before, after = 1000, 20000
	c := startConsumer(t, goBin, ring, before+after, 16)
	waitReaders(t, ring, 1)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "PBRING_INTEROP_HELPER="+ring)
	helper.Stderr = os.Stderr
	out, _ := helper.StdoutPipe()
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "reserved" {
		helper.Process.Kill()
		t.Fatalf("helper: %q %v", line, err)
	}
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	next := goBin
	if cBin != "" {
		next = cBin
	}
	produce(t, next, ring, "--count", strconv.Itoa(after), "--size", "16")
	expectSummary(t, c, before+after, 1)
	c.check.expect(t, 2, before, after)
}

// helperReserveAndHang sends 1000 DeviceEvents as producer 0 of this
// process, then reserves a slot, writes half of the next message into it
// and waits to be killed.
func helperReserveAndHang(ring string) int {
	r, err := pbring.Attach(ring, nil)
	if err == nil {
		err = sendAndHang(r)
	}
	fmt.Fprintln(os.Stderr, "helper:", err)
	return 1
}

func sendAndHang(r *pbring.Ring) error {
	p, err := r.NewProducer(nil)
	if err != nil {
		return err
	}
	ev := demo.NewEvent(os.Getpid(), 0, 16)
	for i := uint64(0); i < 1000; i++ {
		demo.Stamp(ev, i)
		if err := p.SendProto(ev, 10*time.Second); err != nil {
			return err
		}
	}
	s, err := p.Reserve(10 * time.Second)
	if err != nil {
		return err
	}
	copy(s.Data, "\x0a\x06half-w") // a torn message: never committed
	fmt.Println("reserved")
	time.Sleep(time.Hour)
	return nil
}

// --- checking the JSON lines --------------------------------------------

type jsonEvent struct {
	ID     string `json:"id"`
	Status int32  `json:"status"`
	Seq    string `json:"seq"`
	SentNs string `json:"sentNs"`
	Blob   []byte `json:"blob"`
}

type stream struct {
	next     uint64
	lastSent uint64
}

// checker verifies each line: canonical form, fields, and per producer
// (id "<pid>-<k>") consecutive seq from 0.
type checker struct {
	mu      sync.Mutex
	size    int
	streams map[string]*stream
	order   []string // ids in the order of their first message
	lines   int
	first   error
}

func newChecker(size int) *checker {
	return &checker{size: size, streams: map[string]*stream{}}
}

func (c *checker) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		c.line(sc.Bytes())
	}
}

func (c *checker) fail(format string, a ...any) {
	if c.first == nil {
		c.first = fmt.Errorf("line %d: "+format, append([]any{c.lines}, a...)...)
	}
}

func (c *checker) line(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines++
	var j jsonEvent
	if err := json.Unmarshal(b, &j); err != nil {
		c.fail("%v: %s", err, b)
		return
	}
	seq, _ := strconv.ParseUint(orZero(j.Seq), 10, 64)
	sent, _ := strconv.ParseUint(orZero(j.SentNs), 10, 64)
	ev := &demov1.DeviceEvent{Id: j.ID, Status: j.Status, Seq: seq, SentNs: sent, Blob: j.Blob}
	if canon := demo.AppendJSON(nil, ev); string(canon) != string(b) {
		c.fail("not canonical:\n got %s\nwant %s", b, canon)
	}
	if len(j.Blob) != c.size || !demo.BlobOK(j.Blob) || j.Status != int32(seq%3) || sent == 0 {
		c.fail("bad fields: %s", b)
	}
	s := c.streams[j.ID]
	if s == nil {
		s = &stream{}
		c.streams[j.ID] = s
		c.order = append(c.order, j.ID)
	}
	if seq != s.next || sent < s.lastSent {
		c.fail("%s: seq %d sent %d, want seq %d sent >= %d", j.ID, seq, sent, s.next, s.lastSent)
	}
	s.next, s.lastSent = seq+1, sent
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func (c *checker) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

var reID = regexp.MustCompile(`^(\d+)-(\d+)$`)

// pids lists the producer processes seen.
func (c *checker) pids() map[string]bool {
	out := map[string]bool{}
	for id := range c.streams {
		if m := reID.FindStringSubmatch(id); m != nil {
			out[m[1]] = true
		}
	}
	return out
}

// expect checks the producers' message counts, in the order their first
// messages arrived, and that each id is "<pid>-<k>" from `processes`
// processes.
func (c *checker) expect(t *testing.T, processes int, counts ...int) {
	t.Helper()
	if len(c.order) != len(counts) {
		t.Fatalf("%d producers %v, want %d", len(c.order), c.order, len(counts))
	}
	for i, id := range c.order {
		if !reID.MatchString(id) {
			t.Fatalf("id %q is not <pid>-<k>", id)
		}
		if got := c.streams[id].next; got != uint64(counts[i]) {
			t.Fatalf("%s: %d messages, want %d", id, got, counts[i])
		}
	}
	if n := len(c.pids()); n != processes {
		t.Fatalf("messages from %d processes, want %d", n, processes)
	}
}
