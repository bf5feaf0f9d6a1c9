// SPDX-License-Identifier: MIT

package prom

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
	demov1 "github.com/pbring/pbring/go/proto/pbring/demo/v1"
)

// busyRing: a demo ring with a gating and a lossy reader and a producer
// that sent 20 messages, 12 of them read by the gating reader.
func busyRing(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("gopromt-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	r, err := pbring.Create(name, demo.CreateOptions(32, 256))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); pbring.Unlink(name) })
	g, err := r.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.NewReader(&pbring.ReaderOptions{Lossy: true}); err != nil {
		t.Fatal(err)
	}
	p, err := r.NewProducer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := p.SendProto(&demov1.DeviceEvent{Id: "m", Seq: uint64(i)}, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 12; i++ {
		v, err := g.Peek(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Release(&v); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// sample key: name{sorted labels}.
func key(name string, labels map[string]string) string {
	ks := make([]string, 0, len(labels))
	for k, v := range labels {
		ks = append(ks, k+"="+strconv.Quote(v))
	}
	sort.Strings(ks)
	return name + "{" + strings.Join(ks, ",") + "}"
}

func gather(t *testing.T, c prometheus.Collector) ([]*dto.MetricFamily, map[string]float64, map[string]string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals, types := map[string]float64{}, map[string]string{}
	for _, mf := range mfs {
		types[mf.GetName()] = strings.ToLower(mf.GetType().String())
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			v := m.GetGauge().GetValue()
			if mf.GetType() == dto.MetricType_COUNTER {
				v = m.GetCounter().GetValue()
			}
			vals[key(mf.GetName(), l)] = v
		}
	}
	return mfs, vals, types
}

var sampleRE = regexp.MustCompile(`^([a-z_]+)\{(.*)\} (\S+)$`)
var labelRE = regexp.MustCompile(`([a-z_]+)="((?:[^"\\]|\\.)*)"`)

// parseText reads an exposition as the C command prints it.
func parseText(t *testing.T, text string) (map[string]float64, map[string]string) {
	vals, types := map[string]float64{}, map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		l := map[string]string{}
		for _, lm := range labelRE.FindAllStringSubmatch(m[2], -1) {
			l[lm[1]] = lm[2]
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		vals[key(m[1], l)] = v
	}
	return vals, types
}

// The same samples and types as the C command's stat --prometheus (and
// so as Python's RingCollector, which its own test compares with C).
func TestSameAsTheCCommand(t *testing.T) {
	cbin := os.Getenv("PBRING_BIN")
	if cbin == "" {
		t.Skip("set PBRING_BIN to the built pbring command (go/test.sh does)")
	}
	name := busyRing(t)
	_, got, gotTypes := gather(t, NewCollector(name, "nosuch-ring-x"))
	out, err := exec.Command(cbin, "stat", name, "--prometheus").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, wantTypes := parseText(t, string(out))
	missing := key("pbring_ring_up", map[string]string{"ring": "nosuch-ring-x"})
	if v, ok := got[missing]; !ok || v != 0 {
		t.Fatalf("an unreadable named ring: %v %v", v, ok)
	}
	delete(got, missing)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: Go %v, C %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: in Go, not in C", k)
		}
	}
	for k, v := range wantTypes {
		if gotTypes[k] != v {
			t.Errorf("type of %s: Go %q, C %q", k, gotTypes[k], v)
		}
	}
	if got[key("pbring_ring_claimed_total", map[string]string{"ring": name})] != 20 {
		t.Fatal("claimed is not 20")
	}
}

// promtool accepts the Go exposition.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (./dev deps installs it)")
	}
	mfs, _, _ := gather(t, NewCollector(busyRing(t)))
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
}

// Without names: every ring on the host, the new one among them.
func TestEveryRing(t *testing.T) {
	name := busyRing(t)
	_, got, _ := gather(t, NewCollector())
	if got[key("pbring_ring_up", map[string]string{"ring": name})] != 1 {
		t.Fatal("the ring is not there")
	}
}
