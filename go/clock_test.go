// SPDX-License-Identifier: MIT

package pbring

import (
	"testing"

	"golang.org/x/sys/unix"
)

// MonotonicNs is CLOCK_MONOTONIC itself: a system call's reading lies
// between two of ours, every time (an offset calibrated once would be off
// by up to half a system call, either way).
func TestMonotonicNsIsClockMonotonic(t *testing.T) {
	for i := 0; i < 1000; i++ {
		var ts unix.Timespec
		a := MonotonicNs()
		must(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
		b := MonotonicNs()
		if c := uint64(ts.Nano()); c < a || c > b {
			t.Fatalf("CLOCK_MONOTONIC %d outside [%d, %d]", c, a, b)
		}
	}
}
