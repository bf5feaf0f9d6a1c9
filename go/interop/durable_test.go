// SPDX-License-Identifier: MIT

package interop

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
)

// Durable readers across languages (format 1.3, FORMAT.md §9.6): a
// durable consumer in one language is SIGKILLed while a producer in the
// other keeps sending; the producer waits for it instead of reaping it,
// and a consumer in the other language resumes it at its cursor and
// receives every later message exactly once, in order.

const durableTotal = 400

func newDurableRing(t *testing.T, slots int) string {
	t.Helper()
	name := "interop-d-" + strconv.Itoa(int(counter.Add(1))) + "-" + strconv.Itoa(syscall.Getpid())
	pbring.Unlink(name)
	if cBin != "" {
		out, err := exec.Command(cBin, "create", name, "--slots", strconv.Itoa(slots),
			"--slot-size", "256", "--durable-readers").CombinedOutput()
		if err != nil {
			t.Fatalf("pbring create: %v: %s", err, out)
		}
	} else {
		o := demo.CreateOptions(uint32(slots), 256)
		o.DurableReaders = true
		r, err := pbring.Create(name, o)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	t.Cleanup(func() { pbring.Unlink(name) })
	return name
}

func durableEntry(t *testing.T, r *pbring.Ring, name string) *pbring.Participant {
	ps, err := r.Participants()
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		if ps[i].Durable && ps[i].Name == name {
			return &ps[i]
		}
	}
	return nil
}

func runDurableKill(t *testing.T, producerBin, killedBin, resumerBin string) {
	ring := newDurableRing(t, 16)
	r, err := pbring.Attach(ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := exec.Command(killedBin, "consume", ring, "--durable", "d", "--quiet", "--timeout", "30")
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Process.Kill()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if e := durableEntry(t, r, "d"); e != nil && e.Alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the durable consumer did not join")
		}
	}
	var pout strings.Builder
	p := exec.Command(producerBin, "produce", ring, "--count", strconv.Itoa(durableTotal),
		"--size", "16", "--rate", "2000", "--timeout", "30")
	p.Stdout, p.Stderr = &pout, &pout
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Process.Kill()
	for deadline := time.Now().Add(20 * time.Second); durableEntry(t, r, "d").Position < 100; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the durable consumer did not read 100 messages")
		}
	}
	a.Process.Signal(syscall.SIGKILL)
	a.Wait()
	time.Sleep(300 * time.Millisecond) // many liveness periods
	e := durableEntry(t, r, "d")
	st, _ := r.Stats()
	pos := e.Position
	if !e.Detached || st.ReadersReaped != 0 || st.Claimed > pos+17 || pos >= durableTotal-16 {
		t.Fatalf("after the kill: %+v, stats %+v", *e, st)
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Process.Pid) + "/stat"); err != nil ||
		strings.Contains(string(b[strings.LastIndexByte(string(b), ')'):]), ") Z") {
		t.Fatalf("the producer did not wait: %s", pout.String())
	}
	res := exec.Command(resumerBin, "consume", ring, "--durable", "d", "--json",
		"--count", strconv.FormatUint(durableTotal-pos, 10), "--timeout", "30")
	var stderr strings.Builder
	res.Stderr = &stderr
	out, err := res.Output()
	if err != nil {
		t.Fatalf("resumer: %v: %s", err, stderr.String())
	}
	if want := "durable reader d resumed at seq " + strconv.FormatUint(pos, 10); !strings.Contains(stderr.String(), want) {
		t.Fatalf("resumer said %q, want %q", stderr.String(), want)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, l := range lines {
		var m struct {
			Seq uint64 `json:"seq,string"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Seq != pos+uint64(i) {
			t.Fatalf("line %d: %q (%v), want seq %d", i, l, err, pos+uint64(i))
		}
	}
	if uint64(len(lines)) != durableTotal-pos {
		t.Fatalf("%d lines, want %d", len(lines), durableTotal-pos)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("producer: %v: %s", err, pout.String())
	}
	if err := r.DropReader("d"); err != nil {
		t.Fatal(err)
	}
}

func TestDurableGoReaderKilledCProducerCResumes(t *testing.T) {
	needC(t)
	runDurableKill(t, cBin, goBin, cBin)
}

func TestDurableCReaderKilledGoProducerGoResumes(t *testing.T) {
	needC(t)
	runDurableKill(t, goBin, cBin, goBin)
}

func TestDurableGoOnly(t *testing.T) {
	runDurableKill(t, goBin, goBin, goBin)
}
