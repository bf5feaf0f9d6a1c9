// SPDX-License-Identifier: MIT

package pbring

import "golang.org/x/sys/unix"

// clockMonotonicOffset measures CLOCK_MONOTONIC minus mono(), once. The
// system call is bracketed by two readings of Go's clock and the tightest
// of a few tries is kept, so the offset is good to well under a
// microsecond.
func clockMonotonicOffset() int64 {
	best, off := int64(1<<62), int64(0)
	for i := 0; i < 16; i++ {
		var ts unix.Timespec
		a := mono()
		if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
			continue
		}
		b := mono()
		if b-a < best {
			best, off = b-a, ts.Nano()-(a+b)/2
		}
	}
	return off
}
