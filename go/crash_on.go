// SPDX-License-Identifier: MIT

//go:build pbring_crash

package pbring

import (
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Named crash points, the Go side of C's PBRING_CRASH_POINTS build
// (shm/errors.c pbri_crash_point): with the build tag pbring_crash,
// PBR_CRASH_AT=name[:N] makes the process SIGKILL itself at the Nth
// passage (default 1st) of the point called name. The variable is read
// once, at start-up. N is read as C's strtol does (no digits: 0, which
// never fires). Each point sits at the protocol step of its C namesake:
//
//	sp_pending    single producer: pending = s stored, claim not yet
//	sp_claimed    single producer: claim = s+1 published
//	mp_claiming   multi-producer: pending = CLAIMING, before the fetch-add
//	mp_claimed    multi-producer: claim advanced, pending still CLAIMING
//	mp_pending    multi-producer: pending = s stored
//	busy          slot marked BUSY (reserved), nothing written yet
//	write         Send: half the payload copied
//	encoded       SendProto/CommitProto: marshalled, CRC and commit not yet
//	header        header words stored, commit word not yet
//	committed     commit word set (or lost to a recoverer), pending not idle
//	peeked        a reader's scan found messages (cursor maybe advanced)
//	release       Release: cursor advanced privately, not yet published
//	released      Release: cursor published
//	recover       a recoverer is about to CAS a dead claim to ABANDONED
//	reap_producer a dead producer's pending cleared, its claim not recovered
//	reap_reader   about to free a dead reader's entry

const crashPoints = true

var crashName, crashNth = parseCrashAt(os.Getenv("PBR_CRASH_AT"))

var crashHits atomic.Int64

// parseCrashAt splits "name[:N]"; an unset variable arms nothing.
func parseCrashAt(at string) (string, int64) {
	name, n, colon := strings.Cut(at, ":")
	if !colon {
		return name, 1
	}
	return name, strtol(n)
}

// strtol is C's strtol(s, NULL, 10) clamped to int64: leading blanks, a
// sign, then digits up to the first non-digit; 0 when there are none.
func strtol(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var v int64
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := int64(s[i] - '0')
		if v > (1<<63-1-d)/10 {
			if neg {
				return -1 << 63
			}
			return 1<<63 - 1
		}
		v = v*10 + d
	}
	if neg {
		return -v
	}
	return v
}

// crashPoint SIGKILLs the process at the armed passage of point name.
func crashPoint(name string) {
	if crashName == "" || name != crashName {
		return
	}
	if crashHits.Add(1) == crashNth {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		for { // never return: the signal takes the process
			time.Sleep(time.Second)
		}
	}
}
