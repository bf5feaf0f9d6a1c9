// SPDX-License-Identifier: MIT

package main

// struct tt_shared (torture.h), mapped MAP_SHARED from D/shared. The
// offsets are the TT_OFF_* of torture.h; layout_test.go checks them
// against the C compiler's offsetof. Fields appended to the struct after
// lossy_missed are ignored; the missed arrays (appended after the first
// layout) are used only when the file is long enough to hold them.

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	offStop         = 0
	offDrain        = 4
	offHistN        = 8
	offHistNs       = 16
	offGating       = offHistNs + 8*histN             // 32784
	statsSize       = 8 * sWords                      // 80
	offLossy        = offGating + maxGating*statsSize // 33424
	offGatingMissed = offLossy + maxLossy*statsSize   // 34064
	offLossyMissed  = offGatingMissed + 8*maxGating   // 34128
	sharedSize      = offLossyMissed + 8*maxLossy     // 34192
	sharedMin       = offGatingMissed                 // the first layout
)

// Words of struct tt_reader_stats (enum tt_stat_word).
const (
	sDelivered = iota
	sTorn
	sDup
	sStale
	sLost
	sAbandoned
	sLastNs
	sAhead
	sBaseLost
	sBaseAbandoned
	sWords
)

type shared struct {
	mem       []byte
	hasMissed bool
}

func mapShared(dir string) (*shared, error) {
	f, err := os.OpenFile(filepath.Join(dir, "shared"), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size < sharedMin {
		return nil, errors.New("shared file shorter than struct tt_shared")
	}
	if size > sharedSize {
		size = sharedSize // appended fields: not ours
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &shared{mem: mem, hasMissed: size >= sharedSize}, nil
}

func (s *shared) u32(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&s.mem[off]))
}

func (s *shared) u64(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&s.mem[off]))
}

func (s *shared) stop() bool  { return s.u32(offStop).Load() != 0 }
func (s *shared) drain() bool { return s.u32(offDrain).Load() != 0 }

// stats is the offset of a reader's struct tt_reader_stats.
func statsOff(lossy bool, j uint32) int {
	if lossy {
		return offLossy + int(j)*statsSize
	}
	return offGating + int(j)*statsSize
}

// missedOff is the offset of a reader's missed word, or -1 if the shared
// file predates it.
func (s *shared) missedOff(lossy bool, j uint32) int {
	switch {
	case !s.hasMissed:
		return -1
	case lossy:
		return offLossyMissed + 8*int(j)
	}
	return offGatingMissed + 8*int(j)
}
