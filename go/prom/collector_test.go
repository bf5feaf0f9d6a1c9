// SPDX-License-Identifier: MIT

package prom

import (
	"bytes"
	"encoding/binary"
	"errors"
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
// that sent 20 messages, 12 of them read by the gating reader, which
// records latency, verifies each CRC (one is wrong), rejects one message
// as undecodable and passes over one corrupt header (seq 9); the lossy
// reader records no latency (its histogram is there, all zero).
func busyRing(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("gopromt-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	r, err := pbring.Create(name, demo.CreateOptions(32, 256))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); pbring.Unlink(name) })
	g, err := r.NewReader(&pbring.ReaderOptions{Latency: true})
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
		if i == 3 { // a wrong CRC
			s, err := p.Reserve(time.Second)
			if err != nil {
				t.Fatal(err)
			}
			n := copy(s.Data, []byte{0x10, 0x03})
			s.Flags, s.CRC32C, s.TimestampNs = pbring.FlagCRC, pbring.CRC32C(s.Data[:n])^1, pbring.MonotonicNs()
			if err := p.Commit(s, n); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := p.SendProto(&demov1.DeviceEvent{Id: "m", Seq: uint64(i)}, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	forgeLength(t, name, 9)
	for got := 0; got < 12; {
		v, err := g.Peek(time.Second)
		if errors.Is(err, pbring.ErrBadMsg) && v.Seq == 9 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Verify(&v); err != nil && (v.Seq != 3 || !errors.Is(err, pbring.ErrBadMsg)) {
			t.Fatalf("seq %d: %v", v.Seq, err)
		}
		if v.Seq == 5 {
			if err := g.Reject(&v); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Release(&v); err != nil {
			t.Fatal(err)
		}
		got++
	}
	return name
}

// forgeLength gives committed message seq a length beyond any payload
// (a corrupt header), through the ring's file.
func forgeLength(t *testing.T, name string, seq uint64) {
	t.Helper()
	b, err := os.ReadFile("/dev/shm/pbring." + name)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	slot := le.Uint64(b[0x70:]) + seq%uint64(le.Uint32(b[0x30:]))*uint64(le.Uint32(b[0x34:]))
	if le.Uint64(b[slot:]) != seq<<2|1 {
		t.Fatalf("seq %d is not committed", seq)
	}
	f, err := os.OpenFile("/dev/shm/pbring."+name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xff, 0xff, 0, 0}, int64(slot)+8); err != nil {
		t.Fatal(err)
	}
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
			if h := m.GetHistogram(); mf.GetType() == dto.MetricType_HISTOGRAM {
				for _, b := range h.GetBucket() {
					l["le"] = leText(b.GetUpperBound())
					vals[key(mf.GetName()+"_bucket", l)] = float64(b.GetCumulativeCount())
				}
				l["le"] = "+Inf"
				vals[key(mf.GetName()+"_bucket", l)] = float64(h.GetSampleCount())
				delete(l, "le")
				vals[key(mf.GetName()+"_sum", l)] = h.GetSampleSum()
				vals[key(mf.GetName()+"_count", l)] = float64(h.GetSampleCount())
				continue
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

// leText is an upper bound as the exposition writes it (client_golang's
// shortest 'g' form, which C's %g gives too for these bounds).
func leText(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

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
	checkReaderMetrics(t, got, gotTypes, name)
	// Every family of the Go exposition is in C's, so the comparison
	// above covered the new ones too.
	for f := range gotTypes {
		if _, ok := wantTypes[f]; !ok {
			t.Errorf("family %s: in Go, not in C", f)
		}
	}
}

// checkReaderMetrics: the format 1.2 reader families hold what busyRing
// did (and so, compared with C, C's too).
func checkReaderMetrics(t *testing.T, got map[string]float64, types map[string]string, name string) {
	t.Helper()
	g := map[string]string{"ring": name, "participant": "0", "mode": "gating"}
	lossy := map[string]string{"ring": name, "participant": "1", "mode": "lossy"}
	for _, c := range []struct {
		name string
		want float64
	}{{"pbring_reader_bad_total", 1}, {"pbring_reader_crc_errors_total", 1}, {"pbring_reader_decode_errors_total", 1}} {
		if v, ok := got[key(c.name, g)]; !ok || v != c.want || types[c.name] != "counter" {
			t.Errorf("%s: %v %v %q", c.name, v, ok, types[c.name])
		}
		if v, ok := got[key(c.name, lossy)]; !ok || v != 0 {
			t.Errorf("%s of the lossy reader: %v %v", c.name, v, ok)
		}
	}
	h := "pbring_reader_latency_seconds"
	if types[h] != "histogram" {
		t.Fatalf("type of %s: %q", h, types[h])
	}
	// 12 messages received (the corrupt header is not one), each timed.
	if got[key(h+"_count", g)] != 12 || got[key(h+"_sum", g)] <= 0 || got[key(h+"_sum", g)] > 12*60 {
		t.Errorf("gating reader: count %v sum %v", got[key(h+"_count", g)], got[key(h+"_sum", g)])
	}
	prev := 0.0
	for _, ns := range pbring.LatencyBoundsNs {
		g["le"] = leText(float64(ns) / 1e9)
		v, ok := got[key(h+"_bucket", g)]
		if !ok || v < prev {
			t.Errorf("bucket le=%s: %v %v (not cumulative?)", g["le"], v, ok)
		}
		prev = v
	}
	if g["le"] != "1" || leText(1e-7) != "1e-07" {
		t.Errorf("le text %q %q", g["le"], leText(1e-7))
	}
	g["le"] = "+Inf"
	if got[key(h+"_bucket", g)] != 12 {
		t.Errorf("+Inf bucket %v", got[key(h+"_bucket", g)])
	}
	// A reader that does not record latency has no histogram at all.
	if v, ok := got[key(h+"_count", lossy)]; ok {
		t.Errorf("lossy reader without latency: count %v", v)
	}
}

// The collector's own view, without the C command: the new families are
// there with what busyRing did.
func TestReaderMetrics(t *testing.T) {
	name := busyRing(t)
	_, got, types := gather(t, NewCollector(name))
	checkReaderMetrics(t, got, types, name)
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

// setReaderFlags writes reader entry i's flags word, through the ring's
// file (FORMAT.md §5.4: flags at 0x0C).
func setReaderFlags(t *testing.T, name string, i uint64, flags uint32) {
	t.Helper()
	b, err := os.ReadFile("/dev/shm/pbring." + name)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	e := le.Uint64(b[0x50:]) + (uint64(le.Uint32(b[0x38:]))+i)*128
	f, err := os.OpenFile("/dev/shm/pbring."+name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := make([]byte, 4)
	le.PutUint32(w, flags)
	if _, err := f.WriteAt(w, int64(e)+0x0C); err != nil {
		t.Fatal(err)
	}
}

// Entry flags that are neither GATING nor LOSSY (a corrupt entry): the
// mode is "lossy" iff the LOSSY bit (2) is set, as C and Python say it.
func TestModeOfCorruptFlags(t *testing.T) {
	name := busyRing(t)
	setReaderFlags(t, name, 0, 3)
	setReaderFlags(t, name, 1, 0)
	_, got, _ := gather(t, NewCollector(name))
	for _, c := range []struct{ participant, mode string }{{"0", "lossy"}, {"1", "gating"}} {
		l := map[string]string{"ring": name, "participant": c.participant, "mode": c.mode}
		if v, ok := got[key("pbring_reader_up", l)]; !ok || v != 1 {
			t.Errorf("reader %s is not %s: %v %v", c.participant, c.mode, v, ok)
		}
	}
	cbin := os.Getenv("PBRING_BIN")
	if cbin == "" {
		return
	}
	out, err := exec.Command(cbin, "stat", name, "--prometheus").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := parseText(t, string(out))
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: Go %v, C %v", k, got[k], v)
		}
	}
	if len(want) != len(got) {
		t.Errorf("C %d samples, Go %d", len(want), len(got))
	}
}
