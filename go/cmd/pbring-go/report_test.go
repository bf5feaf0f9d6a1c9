// SPDX-License-Identifier: MIT

package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	"github.com/pbring/pbring/go/internal/acmepb"
)

// What the summary, the corruption and the refusals say (issue 13: the
// latency says what it measures, a corrupt message counts once and is
// named, size errors give the sizes, --any-owner).

// newDemoRing creates a demo ring (pbring.demo.v1.DeviceEvent).
func newDemoRing(t *testing.T, slots, slotSize uint32) string {
	t.Helper()
	name := fmt.Sprintf("gocli-%d-%d", os.Getpid(), ringNo.Add(1))
	pbring.Unlink(name)
	r, err := pbring.Create(name, demo.CreateOptions(slots, slotSize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); pbring.Unlink(name) })
	return name
}

// corruptPayload flips the last payload byte of committed message seq.
func corruptPayload(t *testing.T, name string, seq uint64) {
	t.Helper()
	f, err := os.OpenFile("/dev/shm/pbring."+name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 8)
	read := func(off int64, n int) uint64 {
		if _, err := f.ReadAt(b[:n], off); err != nil {
			t.Fatal(err)
		}
		if n == 4 {
			return uint64(binary.LittleEndian.Uint32(b))
		}
		return binary.LittleEndian.Uint64(b)
	}
	slot := int64(read(0x70, 8) + seq*read(0x34, 4))
	if read(slot, 8) != seq<<2|1 {
		t.Fatalf("seq %d is not committed", seq)
	}
	at := slot + 64 + int64(read(slot+8, 4)) - 1
	read(at, 1)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:1], at); err != nil {
		t.Fatal(err)
	}
}

var reSummaryEnd = regexp.MustCompile(`, rate (\d+) msg/s, latency p50 (\S+(?: [nmu]?s)?) p99 (\S+(?: [nmu]?s)?) max (\S+(?: [nmu]?s)?) \(commit to receive, including time queued in the ring(; \d+ replayed messages not timed)?\)$`)

// summaryLine is the consumer's summary line, and its fields by name.
func summaryLine(t *testing.T, stderr []byte) (string, map[string]string) {
	t.Helper()
	for _, l := range strings.Split(string(stderr), "\n") {
		if m := reSummary.FindStringSubmatch(l); m != nil {
			f := map[string]string{"mode": m[1], "received": m[2], "lost": m[3], "missed": m[4],
				"gaps": m[5], "duplicates": m[6], "crc errors": m[7], "content errors": m[8]}
			return l, f
		}
	}
	t.Fatalf("no summary line in %q", stderr)
	return "", nil
}

// One corrupted payload is one crc error, named by its seq, and not also
// a gap and a lost message.
func TestCorruptPayloadCountedOnceAndNamed(t *testing.T) {
	name := newDemoRing(t, 64, 1024)
	if r := pbringGo(t, nil, "produce", name, "--no-wait", "--count", "10", "--size", "16"); r.code != 0 {
		t.Fatalf("produce: %d %s", r.code, r.stderr)
	}
	corruptPayload(t, name, 3)
	r := pbringGo(t, nil, "consume", name, "--quiet", "--timeout", "0.3")
	lines := strings.Split(strings.TrimSuffix(string(r.stderr), "\n"), "\n")
	if r.code != 1 || len(lines) != 3 {
		t.Fatalf("%d %q", r.code, r.stderr)
	}
	if want := "pbring: " + name + ": seq 3 (producer 0): CRC mismatch"; lines[0] != want {
		t.Errorf("got %q, want %q", lines[0], want)
	}
	_, f := summaryLine(t, r.stderr)
	if f["received"] != "9" || f["crc errors"] != "1" || f["gaps"] != "0" || f["lost"] != "0" || f["content errors"] != "0" {
		t.Errorf("%v in %s", f, r.stderr)
	}
	if want := "pbring: " + name + ": 1 corrupt messages"; lines[2] != want {
		t.Errorf("got %q, want %q", lines[2], want)
	}
}

// Replayed backlog is not timed, and says so; the rate of messages that
// all came in one batch is not 0.
func TestReplayNotTimedAndRateNotZero(t *testing.T) {
	name := newDemoRing(t, 64, 1024)
	if r := pbringGo(t, nil, "produce", name, "--no-wait", "--count", "5"); r.code != 0 {
		t.Fatalf("produce: %d %s", r.code, r.stderr)
	}
	r := pbringGo(t, nil, "consume", name, "--quiet", "--count", "5")
	if r.code != 0 {
		t.Fatalf("%d %s", r.code, r.stderr)
	}
	line, _ := summaryLine(t, r.stderr)
	m := reSummaryEnd.FindStringSubmatch(line)
	if m == nil || m[1] == "0" || m[2] != "-" || m[3] != "-" || m[4] != "-" ||
		m[5] != "; 5 replayed messages not timed" {
		t.Errorf("%q", line)
	}
}

// Messages committed after the consumer started are timed, in units
// chosen for each figure.
func TestLatencyUnits(t *testing.T) {
	for ns, want := range map[uint64]string{0: "0 ns", 999: "999 ns", 1000: "1.0 us",
		12345: "12.3 us", 999949: "999.9 us", 999950: "1.0 ms", 2612345: "2.6 ms",
		999949999: "999.9 ms", 999950000: "1.0 s", 41854400700000: "41854.4 s"} {
		if got := duration(ns); got != want {
			t.Errorf("%d: %q, want %q", ns, got, want)
		}
	}
	name := newDemoRing(t, 64, 1024)
	r, err := pbring.Attach(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan result)
	go func() { done <- pbringGo(t, nil, "consume", name, "--quiet", "--count", "20", "--timeout", "10") }()
	if waitGatingReader(r, name, 10e9) != nil {
		t.Fatal("no consumer")
	}
	if p := pbringGo(t, nil, "produce", name, "--count", "20", "--rate", "1000"); p.code != 0 {
		t.Fatalf("produce: %d %s", p.code, p.stderr)
	}
	c := <-done
	line, f := summaryLine(t, c.stderr)
	m := reSummaryEnd.FindStringSubmatch(line)
	dur := regexp.MustCompile(`^(\d+ ns|\d+\.\d (us|ms|s))$`)
	if c.code != 0 || f["received"] != "20" || m == nil || m[5] != "" ||
		!dur.MatchString(m[2]) || !dur.MatchString(m[3]) || !dur.MatchString(m[4]) {
		t.Errorf("%d %q", c.code, c.stderr)
	}
}

// A message too large names its size and the slot's.
func TestSizeErrorNamesSizes(t *testing.T) {
	name := newDemoRing(t, 16, 1024)
	r := pbringGo(t, nil, "produce", name, "--no-wait", "--count", "1", "--size", "2000")
	re := regexp.MustCompile(`(?m)^pbring: ` + regexp.QuoteMeta(name) + `: a message of (\d+) bytes does not fit in a slot ` +
		`\(payload capacity 960 bytes of --slot-size 1024\): use a smaller --size or a larger --slot-size$`)
	m := re.FindSubmatch(r.stderr)
	if r.code != 1 || m == nil {
		t.Fatalf("%d %q", r.code, r.stderr)
	}
	if n, _ := strconv.Atoi(string(m[1])); n <= 2000 {
		t.Errorf("a message of %d bytes with a 2000-byte blob", n)
	}
	typed, _ := newRing(t, &acmepb.Reading{}, 16, 128)
	r = pbringGo(t, []byte(`{"fInt32": 1}`+"\n"+`{"deviceId": "`+strings.Repeat("x", 100)+`"}`+"\n"),
		"produce", typed, "--from-json", "-", "--no-wait")
	want := "pbring: " + typed + ": line 2: a message of 102 bytes does not fit in a slot " +
		"(payload capacity 64 bytes of --slot-size 128)\n"
	if r.code != 1 || !strings.HasSuffix(string(r.stderr), want) {
		t.Errorf("%d %q", r.code, r.stderr)
	}
}

// A ring of another owner is refused, saying how to accept it, and
// accepted with --any-owner; one writable by everyone never is.
func TestAnyOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a ring to another user (tests/cli covers it too)")
	}
	name := newDemoRing(t, 16, 1024)
	path := "/dev/shm/pbring." + name
	if err := os.Chown(path, 65534, -1); err != nil {
		t.Fatal(err)
	}
	refused := "pbring: " + name + ": ring owned by another user (uid 65534): use --any-owner to accept it\n"
	for _, args := range [][]string{{"produce", name, "--no-wait", "--count", "1"},
		{"consume", name, "--count", "1", "--timeout", "1"}, {"schema", name}} {
		if r := pbringGo(t, nil, args...); r.code != 1 || string(r.stderr) != refused {
			t.Errorf("%v: %d %q", args, r.code, r.stderr)
		}
	}
	if r := pbringGo(t, nil, "produce", name, "--any-owner", "--no-wait", "--count", "3"); r.code != 0 {
		t.Errorf("produce --any-owner: %d %s", r.code, r.stderr)
	}
	if r := pbringGo(t, nil, "consume", name, "--any-owner", "--quiet", "--count", "3", "--timeout", "5"); r.code != 0 {
		t.Errorf("consume --any-owner: %d %s", r.code, r.stderr)
	}
	if r := pbringGo(t, nil, "schema", name, "--any-owner"); r.code != 0 ||
		!strings.HasPrefix(string(r.stdout), "// message: "+demo.MsgType+"\n") {
		t.Errorf("schema --any-owner: %d %s", r.code, r.stderr)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	r := pbringGo(t, nil, "schema", name, "--any-owner")
	if want := "pbring: " + name + ": ring writable by everyone (mode 0666): refused (see SECURITY.md)\n"; r.code != 1 || string(r.stderr) != want {
		t.Errorf("%d %q", r.code, r.stderr)
	}
}
