// SPDX-License-Identifier: MIT

package pbring

import (
	"errors"
	"fmt"
	"syscall"
)

// Error is one class of failure, with the errno the C library returns for
// it. The package's sentinel errors are *Error values; errors.Is matches a
// returned error against the sentinel and against its errno, so
// errors.Is(err, ErrBadMagic) and errors.Is(err, syscall.EPROTO) both
// hold for a ring with a bad magic number.
type Error struct {
	errno syscall.Errno
	text  string
}

// Error returns the same text as the C library's pbr_strerror().
func (e *Error) Error() string { return e.text }

// Errno is the errno value the C library returns (negated) for this class.
func (e *Error) Errno() syscall.Errno { return e.errno }

// Is reports whether target is this error's errno, or an error that the
// errno itself matches (so ErrNotExist matches fs.ErrNotExist).
func (e *Error) Is(target error) bool {
	if t, ok := target.(syscall.Errno); ok {
		return t == e.errno
	}
	return e.errno.Is(target)
}

// The sentinel errors. Their texts are those of the C library's
// pbr_strerror() (glibc's for the codes it does not describe itself),
// except ErrWrongType and ErrClosed, which say what they mean here.
var (
	// ErrNotExist: no ring of that name (ENOENT).
	ErrNotExist = &Error{syscall.ENOENT, "no such ring"}
	// ErrExist: Create found the name taken (EEXIST).
	ErrExist = &Error{syscall.EEXIST, "ring already exists"}
	// ErrBadMagic: the object is not a pbring ring (EPROTO).
	ErrBadMagic = &Error{syscall.EPROTO, "not a pbring ring (bad magic)"}
	// ErrVersion: the ring's format major version is not 1 (EPROTONOSUPPORT).
	ErrVersion = &Error{syscall.EPROTONOSUPPORT, "ring made by an unsupported major format version"}
	// ErrFingerprint: the layout fingerprint differs (EPROTOTYPE).
	ErrFingerprint = &Error{syscall.EPROTOTYPE, "ring layout fingerprint mismatch"}
	// ErrFeature: the ring sets an unknown incompatible feature bit (ENOTSUP).
	ErrFeature = &Error{syscall.ENOTSUP, "ring uses an unknown incompatible feature"}
	// ErrCorrupt: the ring's geometry is inconsistent, or the mapping
	// faulted (it was truncated under us) (EUCLEAN).
	ErrCorrupt = &Error{syscall.EUCLEAN, "ring is damaged (unfinished creation, truncated, or inconsistent geometry)"}
	// ErrPermission: owned by another user or writable by others (EPERM).
	ErrPermission = &Error{syscall.EPERM, "ring owned by another user or writable by everyone"}
	// ErrNotRegular: the shared-memory object is not a regular file (ENODEV).
	ErrNotRegular = &Error{syscall.ENODEV, "not a regular shared-memory object"}
	// ErrTimeout: a wait ran out of time (ETIMEDOUT).
	ErrTimeout = &Error{syscall.ETIMEDOUT, "timed out"}
	// ErrFull: a non-blocking reserve found the ring full (EAGAIN).
	ErrFull = &Error{syscall.EAGAIN, "would block (ring full or empty)"}
	// ErrEmpty: a non-blocking peek found nothing to read (EAGAIN).
	ErrEmpty = &Error{syscall.EAGAIN, "would block (ring full or empty)"}
	// ErrMsgSize: the message is larger than the slot payload (EMSGSIZE).
	ErrMsgSize = &Error{syscall.EMSGSIZE, "message larger than the slot payload capacity"}
	// ErrBadMsg: a corrupt slot: bad length, CRC or encoding (EBADMSG).
	ErrBadMsg = &Error{syscall.EBADMSG, "corrupt slot (bad length, CRC or encoding)"}
	// ErrOwnerDead: the producer's slot was reclaimed because it was taken
	// for dead; the message is lost (EOWNERDEAD).
	ErrOwnerDead = &Error{syscall.EOWNERDEAD, "slot reclaimed: its producer was taken for dead"}
	// ErrStale: a lossy reader's slot was overwritten while it read it (ESTALE).
	ErrStale = &Error{syscall.ESTALE, "slot overwritten while it was being read"}
	// ErrWrongType: the ring carries another message type or schema (EMEDIUMTYPE).
	ErrWrongType = &Error{syscall.EMEDIUMTYPE, "ring carries another message type"}
	// ErrBusy: every participant entry of the kind is taken (EBUSY).
	ErrBusy = &Error{syscall.EBUSY, "no free participant entry"}
	// ErrInProgress: Reserve while a reservation is open (EINPROGRESS).
	ErrInProgress = &Error{syscall.EINPROGRESS, "a reservation is already open"}
	// ErrInvalid: a bad argument: name, geometry, or a view or slot that
	// is not this handle's (EINVAL).
	ErrInvalid = &Error{syscall.EINVAL, "Invalid argument"}
	// ErrInterrupted: the wait was interrupted by Ring.Interrupt (EINTR).
	ErrInterrupted = &Error{syscall.EINTR, "interrupted"}
	// ErrRemoved: the ring was removed (unlinked) while mapped here, even
	// if a new ring has taken its name since (EIDRM).
	ErrRemoved = &Error{syscall.EIDRM, "ring was removed while in use"}
	// ErrClosed: the handle or its ring was closed (EBADF).
	ErrClosed = &Error{syscall.EBADF, "ring, producer or reader closed"}
	// ErrReadOnly: the ring was attached read-only (AttachOptions.ReadOnly)
	// and the call would write to it: only tap readers work there (EROFS).
	ErrReadOnly = &Error{syscall.EROFS, "ring attached read-only: only tap readers can use it"}
	// ErrNotDurable: a durable reader was asked of a ring created without
	// durable readers (EOPNOTSUPP, as C's pbr_reader_open).
	ErrNotDurable = &Error{syscall.EOPNOTSUPP, "ring was not created with durable readers"}
	// ErrNoReader: Ring.DropReader found no durable reader of that name
	// (ENOENT, as C's pbr_ring_drop_reader).
	ErrNoReader = &Error{syscall.ENOENT, "no durable reader of that name"}
	// ErrReaderAlive: the durable reader's owner is alive, so it can be
	// neither taken over nor dropped (EBUSY, as C).
	ErrReaderAlive = &Error{syscall.EBUSY, "durable reader is in use by a live process"}
)

var errnoSentinels = []*Error{
	ErrNotExist, ErrExist, ErrBadMagic, ErrVersion, ErrFingerprint,
	ErrFeature, ErrCorrupt, ErrPermission, ErrNotRegular, ErrTimeout,
	ErrMsgSize, ErrBadMsg, ErrOwnerDead, ErrStale, ErrWrongType, ErrBusy,
	ErrInProgress, ErrInvalid, ErrInterrupted, ErrRemoved,
}

// fromErrno turns a system call's errno into the package's sentinel for
// it (EACCES counts as a permission failure), or keeps the errno. EBADF
// and EROFS stay errnos: ErrClosed and ErrReadOnly are about our handles,
// not what a system call found.
func fromErrno(err error) error {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return err
	}
	if en == syscall.EACCES {
		return ErrPermission
	}
	for _, s := range errnoSentinels {
		if s.errno == en {
			return s
		}
	}
	return en
}

// RingError says which ring and which operation an error is about. It
// unwraps to the sentinel (or system) error.
type RingError struct {
	Ring string // ring name
	Op   string // "create", "attach", "reserve", "peek", ...
	Err  error  // the cause: a sentinel *Error or a system error
}

// Error formats as "RING: op: reason".
func (e *RingError) Error() string {
	return e.Ring + ": " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *RingError) Unwrap() error { return e.Err }

// invalidError is ErrInvalid with the reason, in the C command's words.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

// invalid is ErrInvalid (errors.Is matches it) saying why.
func invalid(format string, a ...any) error {
	return &invalidError{fmt.Sprintf(format, a...)}
}

func wrap(ring, op string, err error) error {
	if err == nil {
		return nil
	}
	return &RingError{Ring: ring, Op: op, Err: err}
}
