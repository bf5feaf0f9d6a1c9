// SPDX-License-Identifier: MIT

// Package pbring is a pure-Go (no cgo) implementation of pbring: protobuf
// messages between processes on one host through a ring of fixed-size
// slots in POSIX shared memory, with no copies. It maps the same segment
// as the C library and follows the same protocol, specified byte by byte
// in docs/FORMAT.md, so C, Go and Python processes share rings.
//
// A ring is the shared-memory object /dev/shm/pbring.NAME. Create makes
// one; Attach maps an existing one after validating it. Producers Reserve
// a slot, write the payload straight into Slot.Data (CommitProto marshals
// a proto.Message there, after any large bytes fields that FieldSpan had
// them produce in place) and Commit it. Readers Peek committed messages
// in place (View.Data points into the ring), then Release them. Gating
// readers hold producers back, so nothing they have not released is
// overwritten; lossy readers never do, and learn from Stats and ErrStale
// what they lost. A tap (ReaderOptions.Tap) is a lossy reader that joins
// nothing and writes nothing to the ring, so it also works on a ring
// attached read-only (AttachOptions.ReadOnly), with read permission only.
// A durable reader (ReaderOptions.Durable, format 1.3, on a ring created
// with CreateOptions.DurableReaders) is a gating reader with a name whose
// position outlives its process: closed or dead it stays, detached, still
// holding producers back, until a NewReader of the same name takes it over
// (Reader.Resumed) or it is dropped (Reader.Drop, Ring.DropReader). A
// message may carry a source id after its payload (Slot.SetSource,
// Producer.SendSource, View.Source), published atomically with it.
//
// Every producer and reader holds an open-file-description lock on its
// entry, which the kernel drops when the process dies: a dead producer's
// half-written slot becomes an abandoned record that readers skip and
// count (after 20 ms), and a dead gating reader stops holding producers
// back (a durable one does not: it is detached, FORMAT.md §8.4).
//
// Waits spin briefly, then spin on (WaitSpin), yield (WaitYield) or sleep
// on a futex doorbell (WaitBlock, the default). Timeouts follow the C
// library: 0 does not wait (ErrFull, ErrEmpty), a negative timeout waits
// without limit, a positive one fails with ErrTimeout; the Context
// variants are bounded by a context instead.
//
// Errors are sentinel *Error values that match their errno as well
// (errors.Is(err, ErrStale), errors.Is(err, syscall.ESTALE)), wrapped in a
// *RingError that names the ring and the operation.
//
// Trust: everything read from the ring is untrusted. Header fields are
// read once and bounds-checked, geometry is validated at attach, and
// calls that touch the mapping turn a fault on a truncated ring into
// ErrCorrupt instead of a crash. Reading View.Data yourself is not
// guarded: use View.Unmarshal or View.AppendPayload for that.
//
// Concurrency: a Ring may be shared by goroutines; each Producer and
// Reader is used by one goroutine at a time.
package pbring
