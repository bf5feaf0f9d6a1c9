// SPDX-License-Identifier: MIT

package main

import (
	"testing"
	"time"
)

func TestParseU64(t *testing.T) {
	good := map[string]uint64{"10": 10, "0x10": 16, "010": 8, "0": 0, "+5": 5, " 7": 7}
	for s, want := range good {
		if v, ok := parseU64(s, 0, 1<<62); !ok || v != want {
			t.Errorf("%q: %d %v", s, v, ok)
		}
	}
	for _, s := range []string{"", "-1", "1_000", "12x", "0x", "99999999999999999999", "1.5"} {
		if _, ok := parseU64(s, 0, 1<<62); ok {
			t.Errorf("%q accepted", s)
		}
	}
	if _, ok := parseU64("0", 1, 10); ok {
		t.Error("range not enforced")
	}
}

func TestParseArgs(t *testing.T) {
	got, ops, ok := parseArgs("consume", []string{"--cou", "5", "r", "--json", "--timeout=2.5"}, consumeOpts)
	if !ok || len(ops) != 1 || ops[0] != "r" || len(got) != 3 ||
		got[0] != [2]string{"count", "5"} || got[2] != [2]string{"timeout", "2.5"} {
		t.Fatalf("%v %v %v", got, ops, ok)
	}
	for _, bad := range [][]string{{"--bogus"}, {"--count"}, {"--json=1"}, {"-x"}} {
		if _, _, ok := parseArgs("consume", bad, consumeOpts); ok {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, _, ok := parseArgs("consume", []string{"--", "--json"}, consumeOpts); !ok {
		t.Error("-- not honoured")
	}
}

func TestParseConfigs(t *testing.T) {
	c, rc := parseConsume([]string{"ring", "--lossy", "--from", "latest", "--timeout", "0.5", "--count", "3"})
	if c == nil || rc != 0 || !c.lossy || c.start != 1 || c.timeout != 500*time.Millisecond || c.count != 3 {
		t.Fatalf("%+v %d", c, rc)
	}
	usageCases := [][]string{{}, {"a", "b"}, {"r", "--json", "--quiet"}, {"r", "--from", "middle"}, {"r", "--count", "0"}}
	for _, a := range usageCases {
		if c, rc := parseConsume(a); c != nil || rc != exitUsage {
			t.Errorf("consume %v: %d", a, rc)
		}
	}
	p, rc := parseProduce([]string{"r", "--rate", "1000", "--producers", "4", "--size", "0x10", "--no-wait"})
	if p == nil || p.rate != 250 || p.producers != 4 || p.size != 16 || !p.noWait || p.timeout != 10*time.Second {
		t.Fatalf("%+v %d", p, rc)
	}
	for _, a := range [][]string{{"r", "--rate", "0"}, {"r", "--producers", "1025"}, {"r", "--size", "2000000000"}, {"r", "--timeout", "-1"}} {
		if p, rc := parseProduce(a); p != nil || rc != exitUsage {
			t.Errorf("produce %v: %d", a, rc)
		}
	}
}

// The histogram buckets exactly as cli/cli.c does.
func TestHist(t *testing.T) {
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 1000, 123456789, 1 << 40} {
		i := histIndex(v)
		mid := histValue(i)
		if v < histSub && mid != v || v >= histSub && (mid < v-v/32 || mid > v+v/32) {
			t.Errorf("%d: bucket %d midpoint %d", v, i, mid)
		}
	}
	if histIndex(1000) != 190 || histValue(190) != 1000 {
		t.Errorf("1000: %d %d", histIndex(1000), histValue(190))
	}
	var h hist
	for v := uint64(1); v <= 100; v++ {
		h.add(v * 1000)
	}
	if p := h.pct(50); p < 49000 || p > 51000 {
		t.Errorf("p50 %d", p)
	}
	if p := h.pct(100); p < 97000 || p > 100000 || h.max != 100000 || h.min != 1000 {
		t.Errorf("p100 %d max %d min %d", h.pct(100), h.max, h.min)
	}
}
