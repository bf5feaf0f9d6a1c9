// SPDX-License-Identifier: MIT

package pbring

import (
	"context"
	"fmt"
	"math"
	"syscall"
	"time"
	"unsafe"
)

// WaitMode says how a producer waits for space or a reader for data once
// a short spin (2048 pause instructions) has not been enough.
type WaitMode int

// The wait modes, as in the C library.
const (
	WaitBlock WaitMode = iota // sleep on a futex doorbell (default)
	WaitSpin                  // keep spinning: lowest latency, burns a core
	WaitYield                 // sched_yield between checks
)

const (
	// livenessNs: how long a waiter lets a slot or a full ring stay stuck
	// before it checks the liveness locks, and the longest single sleep.
	livenessNs = int64(20 * time.Millisecond)
	spinLimit  = 2048
	// healthNs: how often a waiter checks that its ring is still linked
	// and whole (Check): one fstat per period of waiting.
	healthNs = int64(100 * time.Millisecond)
	// pollMinNs, pollMaxNs: a tap's sleeps between looks, doubling from
	// the first to the second; the second bounds how late it sees a
	// message, an Interrupt or a cancelled context.
	pollMinNs = int64(4 * time.Microsecond)
	pollMaxNs = int64(time.Millisecond)

	futexWait = 0 // FUTEX_WAIT, shared: the word is in a shared mapping
	futexWake = 1 // FUTEX_WAKE
)

// monoBase anchors mono(): Go's monotonic clock is CLOCK_MONOTONIC, read
// through the vDSO by time.Now, without a system call.
var monoBase = time.Now()

func mono() int64 { return int64(time.Since(monoBase)) }

// waiter paces one wait: a spin budget, a deadline, the liveness timer and
// an optional context.
type waiter struct {
	r          *Ring // its interrupt flag and health
	nextHealth int64 // next Check while waiting
	mode       WaitMode
	spins      uint32
	deadline   int64 // 0 = do not wait, < 0 = no deadline, else mono()
	ctxDead    bool  // the deadline is the context's
	nextCheck  int64
	ctx        context.Context
	stopWake   func() bool // unregisters the context's futex wake-up
	poll       int64       // a tap's next sleep (pollSleep)
}

// init: timeout 0 does not wait, < 0 waits without limit. ctx may be nil;
// its deadline, if earlier, bounds the wait too.
func (w *waiter) init(r *Ring, mode WaitMode, timeout time.Duration, ctx context.Context) {
	*w = waiter{r: r, mode: mode, ctx: ctx}
	if timeout == 0 && ctx == nil {
		return
	}
	now := mono()
	w.nextCheck = now + livenessNs
	w.nextHealth = now + healthPeriod(int64(timeout))
	w.deadline = -1
	if timeout > 0 {
		w.deadline = now + int64(timeout)
	}
	if ctx != nil {
		if d, ok := ctx.Deadline(); ok {
			cd := now + int64(time.Until(d))
			if w.deadline < 0 || cd < w.deadline {
				w.deadline, w.ctxDead = max(cd, 1), true
			}
		}
	}
}

// healthPeriod: within the wait even when callers wait in short steps,
// but never more than one fstat per ms (as in C).
func healthPeriod(timeout int64) int64 {
	if timeout < 0 || timeout/2 >= healthNs {
		return healthNs
	}
	return max(timeout/2, int64(time.Millisecond))
}

// done releases what the wait registered; call it when the wait ends.
func (w *waiter) done() {
	if w.stopWake != nil {
		w.stopWake()
		w.stopWake = nil
	}
}

// clockDue: sleeping waiters read the clock each step, spinning ones every
// 64th, as in C.
func (w *waiter) clockDue() bool {
	return w.spins&63 == 0 || (w.mode == WaitBlock && w.spins >= spinLimit)
}

// step is one idle step: (false, nil) look again, (true, nil) time to
// sleep on a bell, errAgain / ErrTimeout / the context's error: give up.
func (w *waiter) step() (sleep bool, err error) {
	if w.deadline == 0 {
		return false, errAgain
	}
	w.spins++
	if w.r.interrupted.Load() {
		return false, ErrInterrupted
	}
	if w.clockDue() {
		if err := w.expired(); err != nil {
			return false, err
		}
	}
	if w.mode == WaitSpin || w.spins < spinLimit {
		spinPause()
		return false, nil
	}
	if w.mode == WaitYield {
		syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
		return false, nil
	}
	return true, nil
}

func (w *waiter) expired() error {
	if w.ctx != nil {
		if err := w.ctx.Err(); err != nil {
			return ctxError(err)
		}
	}
	now := mono()
	if w.deadline > 0 && now >= w.deadline {
		if w.ctxDead {
			return ctxError(context.DeadlineExceeded)
		}
		return ErrTimeout
	}
	if now >= w.nextHealth {
		w.nextHealth = now + healthNs
		return w.r.check()
	}
	return nil
}

// ctxError keeps both meanings of a context deadline: errors.Is matches
// ErrTimeout and context.DeadlineExceeded.
func ctxError(err error) error {
	if err == context.DeadlineExceeded {
		return fmt.Errorf("%w (%w)", ErrTimeout, err)
	}
	return err
}

// livenessDue is true once per livenessNs of waiting: time to look for
// dead peers.
func (w *waiter) livenessDue() bool {
	if w.deadline == 0 || !w.clockDue() {
		return false
	}
	now := mono()
	if now < w.nextCheck {
		return false
	}
	w.nextCheck = now + livenessNs
	return true
}

// errAgain is turned into ErrFull or ErrEmpty by the caller.
var errAgain = &Error{syscall.EAGAIN, "would block"}

// --- doorbells (§10) ------------------------------------------------------

// bellPrepare registers as a sleeper and returns the futex value to sleep
// on. The caller re-checks its condition after this and before sleeping.
// The Add is sequentially consistent, which is the E4 fence on this side.
func (r *Ring) bellPrepare(bell uint64) uint32 {
	r.u32(r.g.ctl + bell + bellWaiters).Add(1)
	return r.u32(r.g.ctl + bell + bellFutex).Load()
}

// bellSleep sleeps until the bell rings, the futex changed, 20 ms passed
// (for the liveness checks), the deadline, or the context is done.
func (r *Ring) bellSleep(bell uint64, seen uint32, w *waiter) {
	left := livenessNs
	if w.deadline > 0 {
		until := w.deadline - mono()
		if until <= 0 {
			return
		}
		left = min(left, until)
	}
	// An interrupt after step's flag check but before seen was read is
	// folded into seen: look at the flag again (Go atomics are
	// sequentially consistent, so if seen includes Interrupt's bump, the
	// flag stored before it is seen; if not, the word differs and
	// FUTEX_WAIT returns at once).
	if r.interrupted.Load() {
		return
	}
	addr := r.u32(r.g.ctl + bell + bellFutex)
	if w.ctx != nil && w.stopWake == nil && w.ctx.Done() != nil {
		// Registered once per wait, only when it comes to sleeping:
		// cancellation wakes the futex instead of waiting out the 20 ms.
		w.stopWake = context.AfterFunc(w.ctx, func() {
			futex(unsafe.Pointer(addr), futexWake, math.MaxInt32, 0) // #nosec G103 -- the futex word's address, for the syscall
		})
	}
	futex(unsafe.Pointer(addr), futexWait, seen, left) // #nosec G103 -- the futex word's address, for the syscall
}

func (r *Ring) bellFinish(bell uint64) {
	r.u32(r.g.ctl + bell + bellWaiters).Add(^uint32(0))
}

// pollSleep is a tap's sleep in place of the doorbell, whose waiter
// count it may not write: pollMinNs, doubling up to pollMaxNs, cut short
// by the deadline. The next step sees an Interrupt or a cancelled
// context.
func (w *waiter) pollSleep() {
	d := max(w.poll, pollMinNs)
	w.poll = min(2*d, pollMaxNs)
	if w.deadline > 0 {
		if d = min(d, w.deadline-mono()); d <= 0 {
			return
		}
	}
	time.Sleep(time.Duration(d))
}

// Interrupt makes every wait on the ring, in any goroutine, return
// ErrInterrupted at once, and every later wait return it without waiting:
// the interrupt is sticky, for shutting down (signal.NotifyContext and
// the *Context methods serve a cancellation per call). Calls that do not
// wait still work. As in C, it stores the flag, then bumps both doorbells;
// a sleeper checks the flag after it read the doorbell, so either it sees
// the flag or its FUTEX_WAIT finds the word changed. On a ring attached
// read-only it only sets the flag: the bells are not ours to write, and
// taps poll, so they see the flag within a poll period (1 ms at most).
func (r *Ring) Interrupt() {
	r.interrupted.Store(true)
	if r.readOnly {
		return
	}
	for _, bell := range []uint64{ctlDataBell, ctlSpaceBell} {
		f := r.u32(r.g.ctl + bell + bellFutex)
		f.Add(1)
		futex(unsafe.Pointer(f), futexWake, math.MaxInt32, 0) // #nosec G103 -- as above
	}
}

// Interrupted reports whether Interrupt has been called on the ring.
func (r *Ring) Interrupted() bool { return r.interrupted.Load() }

// Check reports whether the ring is still in place and whole: nil if so,
// ErrRemoved if it was removed while mapped here (nobody new can attach to
// it, so waiting on it is pointless), ErrCorrupt if it was shrunk under
// the mapping. Waits run this check on their own about every 100 ms; a
// producer that never waits can call it now and then to notice.
func (r *Ring) Check() error {
	if err := r.check(); err != nil {
		return wrap(r.name, "check", err)
	}
	return nil
}

func (r *Ring) check() error {
	var st syscall.Stat_t
	if err := syscall.Fstat(r.fd, &st); err != nil {
		return fromErrno(err)
	}
	if st.Nlink == 0 {
		return ErrRemoved
	}
	if st.Size < int64(len(r.mem)) {
		return ErrCorrupt
	}
	return nil
}

// bellRing wakes the bell's sleepers, if any; the caller's change (an
// atomic store or read-modify-write, sequentially consistent in Go) comes
// first, which is the E4 fence on the waker's side. With nobody asleep it
// makes no system call.
func (r *Ring) bellRing(bell uint64) {
	if r.u32(r.g.ctl+bell+bellWaiters).Load() == 0 {
		return
	}
	f := r.u32(r.g.ctl + bell + bellFutex)
	f.Add(1)
	futex(unsafe.Pointer(f), futexWake, math.MaxInt32, 0) // #nosec G103 -- as above
}

// futex is FUTEX_WAIT (with a relative timeout in ns) or FUTEX_WAKE on a
// shared futex word. EAGAIN, EINTR and ETIMEDOUT all mean "look again",
// so the result is ignored.
func futex(addr unsafe.Pointer, op int, val uint32, ns int64) {
	var tsp unsafe.Pointer
	var ts syscall.Timespec
	if op == futexWait {
		ts = syscall.NsecToTimespec(ns)
		tsp = unsafe.Pointer(&ts) // #nosec G103 -- the syscall's timespec argument
	}
	syscall.Syscall6(syscall.SYS_FUTEX, uintptr(addr), uintptr(op), uintptr(val), uintptr(tsp), 0, 0)
}
