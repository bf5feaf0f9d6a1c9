// SPDX-License-Identifier: MIT

package pbring

import "runtime/debug"

// lastCommitWindow: how far back from the claim LastCommit looks, as the
// C library's pbr_ring_last_commit().
const lastCommitWindow = 1024

// LastCommit finds the newest message still in the ring that carries a
// timestamp: its sequence and TimestampNs (CLOCK_MONOTONIC, MonotonicNs),
// looking back from the claim over at most the last min(SlotCount, 1024)
// sequences and passing over skip records, slots not (yet) committed and
// messages sent without a timestamp. ok is false if there is none
// (nothing sent yet, or none of those messages carries a timestamp). It
// only reads, so it works on a ring attached ReadOnly; a health check
// (`pbring check --max-age`) uses it to tell how long ago a producer
// committed.
func (r *Ring) LastCommit() (seq, timestampNs uint64, ok bool, err error) {
	old := debug.SetPanicOnFault(true)
	defer recoverFault(old, &err, r.name, "last commit")
	// A3: pairs with R3 in the producer's claim.
	claim := r.u64(r.g.ctl + ctlClaim).Load()
	n := min(claim-r.g.seqBase, uint64(r.g.slotCount), lastCommitWindow)
	for k := uint64(1); k <= n; k++ {
		if ts := r.committedStamp(claim - k); ts != 0 {
			return claim - k, ts, true, nil
		}
	}
	return 0, 0, false, nil
}

// committedStamp is sequence p's timestamp if its slot holds p's message,
// committed and still in place; else 0.
func (r *Ring) committedStamp(p uint64) uint64 {
	h := r.slotOff(p)
	// A1: pairs with R1 in the producer's commit: the header written
	// before DONE(p) is visible (Go atomics are sequentially consistent).
	if r.u64(h+shCommit).Load() != commitDoneOf(p) ||
		(r.u32(h+shProducer).Load()>>16)&FlagSkip != 0 {
		return 0
	}
	ts := r.u64(h + shTimestampNs).Load()
	// A producer that reused the slot meanwhile changed the commit word
	// before the header.
	if r.u64(h+shCommit).Load() != commitDoneOf(p) {
		return 0
	}
	return ts
}
