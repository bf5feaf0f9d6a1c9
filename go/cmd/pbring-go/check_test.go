// SPDX-License-Identifier: MIT

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	pbring "github.com/pbring/pbring/go"
)

// check (issue 18): the C command's health check, the same lines and exit
// codes. The participants are real: this test process's producers and
// readers (held by their locks) and child processes; each check runs in
// a process of its own.

func failLine(name, why string) string { return "pbring check: " + name + ": " + why + "\n" }

// checkBoth runs pbring-go check, and the C command where PBRING_BIN
// names it: both must exit and print the same.
func checkBoth(t *testing.T, args ...string) result {
	t.Helper()
	r := pbringGo(t, nil, append([]string{"check"}, args...)...)
	cBin := os.Getenv("PBRING_BIN")
	if cBin == "" {
		return r
	}
	cmd := exec.Command(cBin, append([]string{"check"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != r.code || out.String() != string(r.stdout) || errb.String() != string(r.stderr) {
		t.Errorf("check %v: Go %d %q %q, C %d %q %q", args, r.code, r.stdout, r.stderr, code, out.String(), errb.String())
	}
	return r
}

func rawRing(t *testing.T, slots uint32) (string, *pbring.Ring) {
	t.Helper()
	return newRing(t, nil, slots, 1024)
}

func sendStamped(t *testing.T, p *pbring.Producer, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		s, err := p.Reserve(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s.TimestampNs = pbring.MonotonicNs()
		if err := p.Commit(s, 1); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{nil, "expects exactly one RING"},
		{[]string{"a", "b"}, "expects exactly one RING"},
		{[]string{"r", "--bogus"}, "unknown option '--bogus'"},
		{[]string{"r", "--producers"}, "option '--producers' needs a value"},
		{[]string{"r", "--producers", "-1"}, "--producers: '-1' is not a count (0 .. 1024)"},
		{[]string{"r", "--readers", "1025"}, "--readers: '1025' is not a count (0 .. 1024)"},
		{[]string{"r", "--max-lag", "1.5"}, "--max-lag: '1.5' is not a number of messages"},
		{[]string{"r", "--max-age", "soon"}, "--max-age: 'soon' is not a number of seconds"},
		{[]string{"r", "--wait", "-2"}, "--wait: '-2' is not a number of seconds"},
		{[]string{"bad/name"}, "invalid ring name 'bad/name' (use 1-63 of [A-Za-z0-9_.-])"},
	}
	cBin := os.Getenv("PBRING_BIN")
	for _, c := range cases {
		r := pbringGo(t, nil, append([]string{"check"}, c.args...)...)
		want := "pbring-go check: " + c.msg + " (see 'pbring-go check --help')\n"
		if r.code != exitUsage || string(r.stderr) != want || len(r.stdout) != 0 {
			t.Errorf("%v: %d %q, want %q", c.args, r.code, r.stderr, want)
		}
		if cBin == "" {
			continue
		}
		var cerr bytes.Buffer
		cmd := exec.Command(cBin, append([]string{"check"}, c.args...)...)
		cmd.Stderr = &cerr
		err := cmd.Run()
		if ee, _ := err.(*exec.ExitError); ee == nil || ee.ExitCode() != 2 ||
			cerr.String() != strings.ReplaceAll(want, "pbring-go", "pbring") {
			t.Errorf("%v: C says %v %q", c.args, err, cerr.String())
		}
	}
	h := pbringGo(t, nil, "check", "--help")
	if h.code != 0 || !strings.HasPrefix(string(h.stdout), "usage: pbring-go check RING") {
		t.Errorf("help: %d %s", h.code, h.stdout)
	}
}

func TestCheckMissingIdleDamaged(t *testing.T) {
	name := fmt.Sprintf("gocli-%d-missing", os.Getpid())
	pbring.Unlink(name)
	if r := checkBoth(t, name); r.code != 1 || string(r.stderr) != failLine(name, "no such ring") {
		t.Errorf("missing: %d %q", r.code, r.stderr)
	}
	name, _ = rawRing(t, 16)
	r := checkBoth(t, name)
	if want := "ok: " + name + ": producers 0, readers 0, lag 0, nothing committed yet\n"; r.code != 0 || string(r.stdout) != want {
		t.Errorf("idle: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := checkBoth(t, name, "-q", "--producers", "1"); r.code != 1 || len(r.stdout) != 0 ||
		string(r.stderr) != failLine(name, "no live producer (want 1, found 0)") {
		t.Errorf("no producer: %d %q", r.code, r.stderr)
	}
	time.Sleep(300 * time.Millisecond)
	r = pbringGo(t, nil, "check", name, "--max-age", "0.2")
	re := regexp.MustCompile(`^pbring check: ` + regexp.QuoteMeta(name) + `: nothing committed since the ring was created \d+\.\d (ms|s) ago \(max 0\.2 s\)\n$`)
	if r.code != 1 || !re.Match(r.stderr) {
		t.Errorf("idle --max-age: %d %q", r.code, r.stderr)
	}
	// the magic overwritten, as dd would
	f, err := os.OpenFile("/dev/shm/pbring."+name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage!"), 0)
	f.Close()
	if r := checkBoth(t, name); r.code != 1 || string(r.stderr) != failLine(name, "damaged ring: not a pbring ring (bad magic)") {
		t.Errorf("bad magic: %d %q", r.code, r.stderr)
	}
	ww, _ := rawRing(t, 16)
	if err := os.Chmod("/dev/shm/pbring."+ww, 0o666); err != nil {
		t.Fatal(err)
	}
	if r := checkBoth(t, ww); r.code != 1 || string(r.stderr) != failLine(ww, "ring writable by everyone: refused (see SECURITY.md)") {
		t.Errorf("writable by everyone: %d %q", r.code, r.stderr)
	}
	other, _ := rawRing(t, 16)
	if err := os.Truncate("/dev/shm/pbring."+other, 4096); err != nil {
		t.Fatal(err)
	}
	if r := checkBoth(t, other); r.code != 1 || string(r.stderr) != failLine(other,
		"damaged ring: ring is damaged (unfinished creation, truncated, or inconsistent geometry)") {
		t.Errorf("truncated: %d %q", r.code, r.stderr)
	}
}

func TestCheckParticipantsLagAge(t *testing.T) {
	name, ring := rawRing(t, 1024)
	p, err := ring.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rd, err := ring.NewReader(nil) // gating, and reads nothing
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	sendStamped(t, p, 500)
	path := "/dev/shm/pbring." + name
	before, _ := os.ReadFile(path)
	r := pbringGo(t, nil, "check", name, "--producers", "1", "--readers", "1", "--max-lag", "500", "--max-age", "30")
	re := regexp.MustCompile(`^ok: ` + regexp.QuoteMeta(name) + `: producers 1, readers 1, lag 500, last commit \d+(\.\d)? (ns|us|ms|s) ago\n$`)
	if r.code != 0 || !re.Match(r.stdout) {
		t.Errorf("healthy: %d %q %q", r.code, r.stdout, r.stderr)
	}
	want := failLine(name, fmt.Sprintf("reader %d (pid %d) lags by 500 messages (max 100)", rd.Index(), os.Getpid()))
	if r := checkBoth(t, name, "--max-lag", "100"); r.code != 1 || string(r.stderr) != want {
		t.Errorf("lag: %d %q, want %q", r.code, r.stderr, want)
	}
	if r := checkBoth(t, name, "--producers", "2", "--max-lag", "0"); string(r.stderr) != failLine(name, "too few live producers (want 2, found 1)") {
		t.Errorf("producers: %q", r.stderr)
	}
	if r := checkBoth(t, name, "--readers", "3"); string(r.stderr) != failLine(name, "too few live readers (want 3, found 1)") {
		t.Errorf("readers: %q", r.stderr)
	}
	time.Sleep(300 * time.Millisecond)
	r = pbringGo(t, nil, "check", name, "--max-age", "0.2")
	re = regexp.MustCompile(`^pbring check: ` + regexp.QuoteMeta(name) + `: nothing committed for \d+\.\d (ms|s) \(max 0\.2 s\)\n$`)
	if r.code != 1 || !re.Match(r.stderr) {
		t.Errorf("stale: %d %q", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("check changed the ring")
	}
	// only messages without a timestamp (Send stores none): the age
	// cannot be told
	other, ring2 := rawRing(t, 16)
	p2, err := ring2.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if err := p2.Send([]byte("x"), time.Second); err != nil {
		t.Fatal(err)
	}
	if r := checkBoth(t, other, "--producers", "1"); r.code != 0 || string(r.stdout) != "ok: "+other+": producers 1, readers 0, lag 0, last commit time unknown\n" {
		t.Errorf("no timestamp, no --max-age: %d %q", r.code, r.stdout)
	}
	if r := checkBoth(t, other, "--max-age", "60"); r.code != 1 || string(r.stderr) != failLine(other,
		"cannot tell when the last message was committed: the newest messages carry no timestamp") {
		t.Errorf("no timestamp: %d %q", r.code, r.stderr)
	}
}

// A producer process killed: its entry stays (check reclaims nothing),
// its lock is gone, so it is not live.
func TestCheckDeadProducer(t *testing.T) {
	name, ring := rawRing(t, 64)
	cmd := exec.Command(os.Args[0], "produce", name, "--raw", "--no-wait", "--rate", "100", "--count", "100000")
	cmd.Env = append(os.Environ(), "PBRING_GO_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r := pbringGo(t, nil, "check", name, "--producers", "1"); r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the producer never showed up")
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if r := checkBoth(t, name, "--producers", "1"); r.code != 1 || string(r.stderr) != failLine(name, "no live producer (want 1, found 0)") {
		t.Errorf("dead producer: %d %q", r.code, r.stderr)
	}
	ps, _ := ring.Participants()
	if len(ps) != 1 || ps[0].Alive {
		t.Errorf("the dead producer's entry: %+v", ps)
	}
}

func TestCheckWait(t *testing.T) {
	name := fmt.Sprintf("gocli-%d-wait", os.Getpid())
	pbring.Unlink(name)
	defer pbring.Unlink(name)
	t0 := time.Now()
	if r := pbringGo(t, nil, "check", name, "--wait", "0.3"); r.code != 1 || string(r.stderr) != failLine(name, "no such ring") || time.Since(t0) < 300*time.Millisecond {
		t.Errorf("wait, missing: %d %q", r.code, r.stderr)
	}
	cmd := exec.Command(os.Args[0], "check", name, "--wait", "30", "--producers", "1")
	cmd.Env = append(os.Environ(), "PBRING_GO_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ring, err := pbring.Create(name, &pbring.CreateOptions{SlotCount: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	p, err := ring.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := cmd.Wait(); err != nil || !strings.HasPrefix(out.String(), "ok: "+name+": producers 1, ") {
		t.Errorf("wait until healthy: %v %q %q", err, out.String(), errb.String())
	}
	// Ctrl-C ends the wait at once: 130, "interrupted"
	cmd = exec.Command(os.Args[0], "check", name, "--wait", "60", "--readers", "1")
	cmd.Env = append(os.Environ(), "PBRING_GO_MAIN=1")
	errb.Reset()
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if ee, _ := err.(*exec.ExitError); ee == nil || ee.ExitCode() != 130 || errb.String() != "pbring: "+name+": interrupted\n" {
		t.Errorf("Ctrl-C: %v %q", err, errb.String())
	}
}

// Not a timed assertion: how long one check takes, for the record.
func TestCheckTiming(t *testing.T) {
	name, _ := rawRing(t, 1024)
	t0 := time.Now()
	for i := 0; i < 20; i++ {
		if r := pbringGo(t, nil, "check", name, "-q"); r.code != 0 {
			t.Fatal(r.code, string(r.stderr))
		}
	}
	t.Logf("pbring-go check: %.2f ms per run (process start included)", float64(time.Since(t0).Microseconds())/20/1e3)
}
