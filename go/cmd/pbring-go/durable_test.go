// SPDX-License-Identifier: MIT

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
)

// consume --durable NAME (format 1.3), as the C command's: it creates or
// resumes NAME and says which on stderr; a detached NAME keeps its place;
// errors are one line.

func newDurableDemoRing(t *testing.T, slots uint32) (string, *pbring.Ring) {
	t.Helper()
	name := fmt.Sprintf("gocli-d-%d-%d", os.Getpid(), ringNo.Add(1))
	pbring.Unlink(name)
	o := demo.CreateOptions(slots, 256)
	o.DurableReaders = true
	r, err := pbring.Create(name, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); pbring.Unlink(name) })
	return name, r
}

func demoSeqs(t *testing.T, out []byte) []uint64 {
	var seqs []uint64
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m struct {
			Seq uint64 `json:"seq,string"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

func TestConsumeDurable(t *testing.T) {
	name, r := newDurableDemoRing(t, 16)
	if res := pbringGo(t, nil, "produce", name, "--no-wait", "--count", "10"); res.code != 0 {
		t.Fatalf("produce: %d %s", res.code, res.stderr)
	}
	res := pbringGo(t, nil, "consume", name, "--durable", "g1", "--json", "--count", "4", "--timeout", "5")
	if res.code != 0 || !strings.Contains(string(res.stderr), "consume: durable reader g1 created at seq 0\n") {
		t.Fatalf("first: %d %s", res.code, res.stderr)
	}
	if got := demoSeqs(t, res.stdout); fmt.Sprint(got) != "[0 1 2 3]" {
		t.Fatalf("first got %v", got)
	}
	ps, _ := r.Participants()
	if len(ps) != 1 || !ps[0].Detached || ps[0].Name != "g1" || ps[0].Position != 4 {
		t.Fatalf("after the first: %+v", ps)
	}
	res = pbringGo(t, nil, "consume", name, "--durable", "g1", "--json", "--count", "6", "--timeout", "5")
	if res.code != 0 || !strings.Contains(string(res.stderr), "consume: durable reader g1 resumed at seq 4\n") {
		t.Fatalf("second: %d %s", res.code, res.stderr)
	}
	if got := demoSeqs(t, res.stdout); fmt.Sprint(got) != "[4 5 6 7 8 9]" {
		t.Fatalf("second got %v", got)
	}
	if err := r.DropReader("g1"); err != nil {
		t.Fatal(err)
	}
}

func TestConsumeDurableErrors(t *testing.T) {
	plain := newDemoRing(t, 4, 256)
	res := pbringGo(t, nil, "consume", plain, "--durable", "x", "--timeout", "0.1")
	want := "pbring: " + plain + ": ring has no durable readers (create it with --durable-readers)\n"
	if res.code != 1 || string(res.stderr) != want {
		t.Errorf("no feature: %d %q", res.code, res.stderr)
	}
	name, r := newDurableDemoRing(t, 4)
	rd, err := r.NewReader(&pbring.ReaderOptions{Durable: "held"})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	res = pbringGo(t, nil, "consume", name, "--durable", "held", "--timeout", "0.1")
	want = "pbring: " + name + ": durable reader held is in use by a live process (or every reader entry is taken)\n"
	if res.code != 1 || string(res.stderr) != want {
		t.Errorf("alive: %d %q", res.code, res.stderr)
	}
	for _, args := range [][]string{{"--durable", "a b"}, {"--durable", "x", "--lossy"}, {"--durable", "x", "--tap"}} {
		res = pbringGo(t, nil, append([]string{"consume", name}, args...)...)
		if res.code != 2 || strings.Count(string(res.stderr), "\n") != 1 {
			t.Errorf("%v: %d %q", args, res.code, res.stderr)
		}
	}
}
