// SPDX-License-Identifier: MIT

package interop

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Taps across languages (issue 16): `consume --tap` reads, read-only and
// without joining, what the other language's producer writes. A tap does
// not hold producers back, so the ring holds every message of the run:
// the tap cannot be lapped however it is scheduled, and must read all of
// them, checked as every consumer's are.

const (
	tapSlots    = 131072 // > events: never lapped
	tapSlotSize = 256
)

// runTap runs a tap consumer (bin) while producer (pbin) writes events
// messages, without waiting for a gating reader since there is none.
func runTap(t *testing.T, bin, pbin string) {
	t.Helper()
	ring := newRingSized(t, tapSlots, tapSlotSize)
	c := startConsumer(t, bin, ring, events, 32, "--tap")
	produce(t, pbin, ring, "--no-wait", "--count", strconv.Itoa(events), "--size", "32")
	expectSummary(t, c, events, 0)
	c.check.expect(t, 1, events)
}

func TestCToGoTap(t *testing.T) {
	needC(t)
	runTap(t, goBin, cBin)
}

// needCTap skips unless the C command has consume --tap.
func needCTap(t *testing.T) {
	t.Helper()
	needC(t)
	out, _ := exec.Command(cBin, "consume", "--help").CombinedOutput()
	if !strings.Contains(string(out), "--tap") {
		t.Fatal("PBRING_BIN's consume has no --tap: build it from this tree")
	}
}

func TestGoToCTap(t *testing.T) {
	needCTap(t)
	runTap(t, cBin, goBin)
}

func TestGoToGoTap(t *testing.T) {
	runTap(t, goBin, goBin)
}
