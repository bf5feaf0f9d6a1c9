// SPDX-License-Identifier: MIT

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSharedLayout compiles a C program that prints the offsets of struct
// tt_shared and struct tt_reader_stats (tests/crash/torture.h) and checks
// ours against them. Skipped without a C compiler.
func TestSharedLayout(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	root, _ := filepath.Abs("../../..")
	dir := t.TempDir()
	src := filepath.Join(dir, "off.c")
	prog := `#include <stdio.h>
#include "torture.h"
#define P(t, f) printf(#f " %zu\n", offsetof(t, f))
int main(void)
{
	P(struct tt_shared, stop); P(struct tt_shared, drain);
	P(struct tt_shared, hist_n); P(struct tt_shared, hist_ns);
	P(struct tt_shared, gating); P(struct tt_shared, lossy);
	P(struct tt_shared, gating_missed); P(struct tt_shared, lossy_missed);
	P(struct tt_reader_stats, delivered); P(struct tt_reader_stats, torn);
	P(struct tt_reader_stats, dup); P(struct tt_reader_stats, stale);
	P(struct tt_reader_stats, lost); P(struct tt_reader_stats, abandoned);
	P(struct tt_reader_stats, last_ns); P(struct tt_reader_stats, ahead);
	printf("stats_size %zu\nshared_size %zu\nhist %d\nmark %llu\n",
	       sizeof(struct tt_reader_stats), sizeof(struct tt_shared),
	       TT_HIST, (unsigned long long)TT_MARK);
	return 0;
}
`
	if err := os.WriteFile(src, []byte(prog), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "off")
	cmd := exec.Command(cc, "-std=gnu11", "-I", filepath.Join(root, "tests/crash"),
		"-I", filepath.Join(root, "include"), "-o", bin, src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot compile against torture.h: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		got[k], _ = strconv.ParseUint(v, 10, 64)
	}
	want := map[string]uint64{
		"stop": offStop, "drain": offDrain, "hist_n": offHistN,
		"hist_ns": offHistNs, "gating": offGating, "lossy": offLossy,
		"gating_missed": offGatingMissed, "lossy_missed": offLossyMissed,
		"delivered": 8 * sDelivered, "torn": 8 * sTorn, "dup": 8 * sDup,
		"stale": 8 * sStale, "lost": 8 * sLost, "abandoned": 8 * sAbandoned,
		"last_ns": 8 * sLastNs, "ahead": 8 * sAhead, "stats_size": statsSize,
		"hist": histN, "mark": ttMark,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: C says %d (present %v), Go has %d", k, g, ok, w)
		}
	}
	// Fields may be appended to struct tt_shared, never inserted.
	if got["shared_size"] < sharedSize {
		t.Errorf("sizeof(struct tt_shared) %d < %d", got["shared_size"], sharedSize)
	}
}

// TestMessages: a raw message verifies; a flipped byte does not.
func TestMessages(t *testing.T) {
	b := make([]byte, 200)
	who, c := uint32(3), uint64(7)
	n := rawLen(uint32(len(b)), who, c)
	m := b[:n]
	putRaw(m, who, c)
	cv := &copyView{data: m}
	if w, cc, ok := verifyRaw(cv, 4); !ok || w != who || cc != c {
		t.Fatalf("raw (%d,%d): %d %d %v", who, c, w, cc, ok)
	}
	m[n-1] ^= 0x10
	if _, _, ok := verifyRaw(cv, 4); ok && n > rawHdr {
		t.Fatal("flipped raw byte verified")
	}
}
