// SPDX-License-Identifier: MIT

package pbring

import (
	"fmt"
	"runtime/debug"
)

// The ring is a shared file that another process may truncate; touching a
// page past its new end raises SIGBUS, which would kill the process. Every
// exported function that touches the mapping therefore runs with
// debug.SetPanicOnFault, which turns such a fault into a panic, and
// recovers that panic into an error that matches ErrCorrupt:
//
//	old := debug.SetPanicOnFault(true)
//	defer recoverFault(old, &err, r.name, "op")
//
// Only memory faults are recovered; any other panic is re-raised.

// faultError reports the faulting address.
type faultError struct{ addr uintptr }

// Error names the faulting address.
func (e *faultError) Error() string {
	return fmt.Sprintf("memory fault at %#x in the ring mapping (truncated?)", e.addr)
}

// Unwrap makes a fault match ErrCorrupt (EUCLEAN), as in C.
func (e *faultError) Unwrap() error { return ErrCorrupt }

// recoverFault must be deferred directly: recover only works there.
func recoverFault(old bool, err *error, ring, op string) {
	debug.SetPanicOnFault(old)
	if p := recover(); p != nil {
		f, ok := p.(interface{ Addr() uintptr })
		if !ok {
			panic(p)
		}
		var fe error = &faultError{addr: f.Addr()}
		if ring != "" {
			fe = wrap(ring, op, fe)
		}
		*err = fe
	}
}
