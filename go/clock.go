// SPDX-License-Identifier: MIT

package pbring

import _ "unsafe" // go:linkname

// nanotime is the Go runtime's own CLOCK_MONOTONIC reading, through the
// vDSO without a system call: the clock C stamps into slots and sent_ns,
// from the same origin, so no offset (and no calibration error) between
// a Go and a C stamp. The runtime keeps it reachable by linkname: it is
// on its list of internals that widely used packages pull.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
