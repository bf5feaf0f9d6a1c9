// SPDX-License-Identifier: MIT

// Command torturechild is the Go child of the SIGKILL torture
// (tests/crash/torture.c): a producer, gating reader or lossy reader that
// follows the child contract at the top of tests/crash/torture.h exactly
// as the C child (torture_roles.c, torture_msg.c) does: the same argv, the
// same files in the work directory, the same struct tt_shared offsets,
// the same messages and checks, the same exit codes.
//
// Build it with the library's crash points, so that the driver's
// PBR_CRASH_AT=name:N arms them (crash_on.go in the pbring package):
//
//	cd go && go build -tags pbring_crash -o OUT ./internal/torturechild
//
// and run the driver with --langs c,go --go-child OUT.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The contract (torture.h).
const (
	maxProd   = 16
	maxGating = 8
	maxLossy  = 8
	histN     = 4096    // TT_HIST
	ttMark    = 1 << 63 // producer log: a (re)start, then the next counter
	maxMsg    = 65536   // the C child's buffer bound
)

// Exit codes (enum tt_exit).
const (
	exOK      = 0
	exSetup   = 2 // attach, open or a file failed
	exSend    = 3 // send failed with an unexpected error
	exStuck   = 4 // a wait timed out: the ring made no progress
	exRelease = 5 // release failed with an unexpected error
	exPeek    = 6 // peek failed with an unexpected error
)

type config struct {
	role        string
	index       uint32
	incarnation uint32
	ring, dir   string
	producers   uint32
	witnesses   uint32
	rate        uint32
	seed        uint32
	inject      string
}

// parse reads the contract's argv: options in any order (the C child uses
// getopt_long, which permutes), --child ROLE and then INDEX and
// INCARNATION as positional arguments.
func parse(argv []string) (*config, error) {
	cf := &config{}
	var pos []string
	num := func(s string) (uint32, error) {
		v, err := strconv.ParseUint(s, 0, 32)
		return uint32(v), err
	}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "--") {
			pos = append(pos, a)
			continue
		}
		name, val, has := strings.Cut(a[2:], "=")
		if !has {
			if i+1 >= len(argv) {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
			i++
			val = argv[i]
		}
		var err error
		switch name {
		case "child":
			cf.role = val
		case "ring":
			cf.ring = val
		case "dir":
			cf.dir = val
		case "inject":
			cf.inject = val
		case "producers":
			cf.producers, err = num(val)
		case "witnesses":
			cf.witnesses, err = num(val)
		case "rate":
			cf.rate, err = num(val)
		case "seed":
			cf.seed, err = num(val)
		default: // other driver options are not meant for children
		}
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %v", name, val, err)
		}
	}
	if len(pos) != 2 || cf.ring == "" || cf.dir == "" {
		return nil, errors.New("want --child ROLE INDEX INCARNATION --ring R --dir D " +
			"--producers P --witnesses W --rate N --seed S [--inject lost|dup|torn]")
	}
	var err error
	if cf.index, err = num(pos[0]); err != nil {
		return nil, fmt.Errorf("INDEX %s: %v", pos[0], err)
	}
	if cf.incarnation, err = num(pos[1]); err != nil {
		return nil, fmt.Errorf("INCARNATION %s: %v", pos[1], err)
	}
	limit := map[string]uint32{"producer": maxProd, "gating": maxGating, "lossy": maxLossy}
	lim, ok := limit[cf.role]
	if !ok {
		return nil, fmt.Errorf("role %q: want producer, gating or lossy", cf.role)
	}
	if cf.index >= lim || cf.producers == 0 || cf.producers > maxProd {
		return nil, errors.New("index or producers out of range")
	}
	switch cf.inject {
	case "", "lost", "dup", "torn":
	default:
		return nil, fmt.Errorf("--inject %s: want lost, dup or torn", cf.inject)
	}
	return cf, nil
}

func main() {
	cf, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "torture go child:", err)
		os.Exit(exSetup)
	}
	sh, err := mapShared(cf.dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "torture go child: shared page:", err)
		os.Exit(exSetup)
	}
	if cf.role == "producer" {
		os.Exit(producerMain(cf, sh))
	}
	os.Exit(readerMain(cf, sh))
}
