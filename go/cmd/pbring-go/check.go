// SPDX-License-Identifier: MIT

package main

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	pbring "github.com/pbring/pbring/go"
)

const checkHelp = `usage: pbring-go check RING [--producers N] [--readers N] [--max-lag N]
                       [--max-age SEC] [--wait SEC] [--quiet]
Exit 0 if the ring is intact and every condition given holds; else
exit 1 with one line on stderr naming the first that failed, in
this order: the ring exists, can be read and is not damaged; then
  --producers N  at least N live producers (default: any number)
  --readers N    at least N live readers, gating or lossy (taps are
                 not listed; default: any number)
  --max-lag N    no live gating reader (nor detached durable one)
                 more than N messages behind the claim
  --max-age SEC  a message committed within SEC seconds (the newest
                 slot's timestamp); a ring that never had one counts
                 from its creation
  --wait SEC     retry every 100 ms until healthy, up to SEC seconds
                 (Ctrl-C stops), then report the last failure
  -q, --quiet    print nothing on success (else one 'ok:' line on
                 stdout)
Read-only: read permission is enough (any owner's ring); it writes
nothing, takes no entry, reclaims nothing. Exit 2: bad usage.
`

var checkOpts = []option{{"producers", true}, {"readers", true}, {"max-lag", true},
	{"max-age", true}, {"wait", true}, {"quiet", false}, {"help", false}}

// checkConfig is what `check` was asked; a nil pointer: not asked.
type checkConfig struct {
	producers, readers uint64
	maxLag             *uint64
	maxAge, wait       *float64
	quiet              bool
}

// unhealthy is the first condition found failing, as the line says it.
type unhealthy string

func (u unhealthy) Error() string { return string(u) }

// damagedErrs: attach's refusals that mean the segment itself is bad.
var damagedErrs = []syscall.Errno{syscall.EPROTO, syscall.EPROTOTYPE, syscall.EUCLEAN, syscall.ENODEV}

func checkParse(args []string) (cfg checkConfig, name string, rc int) {
	for i, a := range args {
		if a == "-q" {
			args[i] = "--quiet"
		}
	}
	got, operands, ok := parseArgs("check", args, checkOpts)
	if !ok {
		return cfg, "", exitUsage
	}
	for _, kv := range got {
		switch kv[0] {
		case "help":
			fmt.Print(checkHelp)
			return cfg, "", -1
		case "producers", "readers":
			v, ok := parseU64(kv[1], 0, pbring.ParticipantsMax)
			if !ok {
				return cfg, "", usage("check", "--%s: '%s' is not a count (0 .. 1024)", kv[0], kv[1])
			}
			if kv[0] == "producers" {
				cfg.producers = v
			} else {
				cfg.readers = v
			}
		case "max-lag":
			v, ok := parseU64(kv[1], 0, ^uint64(0))
			if !ok {
				return cfg, "", usage("check", "--max-lag: '%s' is not a number of messages", kv[1])
			}
			cfg.maxLag = &v
		case "max-age", "wait":
			v, ok := parseSeconds(kv[1])
			if !ok {
				return cfg, "", usage("check", "--%s: '%s' is not a number of seconds", kv[0], kv[1])
			}
			if kv[0] == "wait" {
				cfg.wait = &v
			} else {
				cfg.maxAge = &v
			}
		case "quiet":
			cfg.quiet = true
		}
	}
	if len(operands) != 1 {
		return cfg, "", usage("check", "expects exactly one RING")
	}
	if pbring.CheckName(operands[0]) != nil {
		return cfg, "", usage("check", "invalid ring name '%s' (use 1-63 of [A-Za-z0-9_.-])", operands[0])
	}
	return cfg, operands[0], 0
}

// checkWhy is a library error as the check's line says it.
func checkWhy(err error) unhealthy {
	for _, e := range damagedErrs {
		if errors.Is(err, e) {
			return unhealthy("damaged ring: " + errText(err))
		}
	}
	if errors.Is(err, pbring.ErrPermission) { // any owner is accepted: only this is left
		return unhealthy("ring writable by everyone: refused (see SECURITY.md)")
	}
	return unhealthy(errText(err))
}

// checkEntries counts the live producers and readers and finds the
// largest lag of a live gating reader; a cursor beyond the claim is
// damage.
func checkEntries(ps []pbring.Participant, claimed uint64) (producers, readers, lag uint64, err error) {
	for _, p := range ps {
		if !p.IsReader {
			if p.Alive {
				producers++
			}
			continue
		}
		d := claimed - p.Position
		if int64(d) < 0 { // #nosec G115 -- the wrap is the point: negative is "beyond" in wrapping order
			return 0, 0, 0, unhealthy(fmt.Sprintf("damaged ring: reader %d's cursor %d is beyond the claim %d", p.Index, p.Position, claimed))
		}
		if p.Alive {
			readers++
		}
		if holdsBack(p) {
			lag = max(lag, d)
		}
	}
	return producers, readers, lag, nil
}

// holdsBack: a reader whose cursor producers wait for, a live gating one
// or a durable one nobody owns (format 1.3: it gates while detached).
func holdsBack(p pbring.Participant) bool {
	return p.IsReader && p.Gating && (p.Alive || (p.Durable && p.Detached))
}

// lagLine names a reader that lags, as the C command does.
func lagLine(p pbring.Participant, d, max uint64) string {
	if p.Durable && p.Detached {
		return fmt.Sprintf("durable reader %s (detached) lags by %d messages (max %d)", p.Name, d, max)
	}
	return fmt.Sprintf("reader %d (pid %d) lags by %d messages (max %d)", p.Index, p.PID, d, max)
}

func checkCount(what string, want, found uint64) error {
	switch {
	case found >= want:
		return nil
	case found > 0:
		return unhealthy(fmt.Sprintf("too few live %ss (want %d, found %d)", what, want, found))
	}
	return unhealthy(fmt.Sprintf("no live %s (want %d, found 0)", what, want))
}

// checkAge gives the ok line's words on the last commit, or unhealthy if
// it is older than maxAge seconds (or its age cannot be told).
func checkAge(r *pbring.Ring, claimed uint64, maxAge *float64) (string, error) {
	info := r.Info()
	var age uint64
	kind := 0 // 0: a stamped message, 1: never a message, 2: cannot tell
	if claimed == info.SeqBase {
		now := uint64(time.Now().UnixNano())
		age, kind = max(now, info.CreatedNs)-info.CreatedNs, 1
	} else {
		_, ts, ok, err := r.LastCommit()
		if err != nil {
			return "", checkWhy(err)
		}
		if now := pbring.MonotonicNs(); ok {
			age = max(now, ts) - ts
		} else {
			kind = 2
		}
	}
	d := duration(age)
	if maxAge != nil && (kind == 2 || age > uint64(*maxAge*1e9)) {
		switch kind {
		case 0:
			return "", unhealthy(fmt.Sprintf("nothing committed for %s (max %.6g s)", d, *maxAge))
		case 1:
			return "", unhealthy(fmt.Sprintf("nothing committed since the ring was created %s ago (max %.6g s)", d, *maxAge))
		}
		return "", unhealthy("cannot tell when the last message was committed: the newest messages carry no timestamp")
	}
	return [...]string{"last commit " + d + " ago", "nothing committed yet", "last commit time unknown"}[kind], nil
}

// checkRingHealth tests the conditions in the documented order: the ok line's
// tail, or the first failure.
func checkRingHealth(r *pbring.Ring, cfg *checkConfig) (string, error) {
	if err := r.Check(); err != nil {
		return "", checkWhy(err)
	}
	ps, err := r.Participants()
	if err != nil {
		return "", checkWhy(err)
	}
	// The counters after the entries: claimed is then at least every
	// reader's cursor (as in stat).
	st, err := r.Stats()
	if err != nil {
		return "", checkWhy(err)
	}
	producers, readers, lag, err := checkEntries(ps, st.Claimed)
	if err == nil {
		err = checkCount("producer", cfg.producers, producers)
	}
	if err == nil {
		err = checkCount("reader", cfg.readers, readers)
	}
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if d := st.Claimed - p.Position; cfg.maxLag != nil && holdsBack(p) && d > *cfg.maxLag {
			return "", unhealthy(lagLine(p, d, *cfg.maxLag))
		}
	}
	last, err := checkAge(r, st.Claimed, cfg.maxAge)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("producers %d, readers %d, lag %d, %s", producers, readers, lag, last), nil
}

// checkOnce is one look: the ok line, or the first failure.
func checkOnce(name string, cfg *checkConfig) (string, error) {
	// Read-only, so the owner check, which protects what participants
	// write, does not apply (as for consume --tap).
	r, err := pbring.Attach(name, &pbring.AttachOptions{AnyOwner: true, ReadOnly: true})
	if err != nil {
		return "", checkWhy(err)
	}
	defer r.Close()
	tail, err := checkRingHealth(r, cfg)
	if err != nil {
		return "", err
	}
	return "ok: " + name + ": " + tail, nil
}

func cmdCheck(args []string) int {
	cfg, name, rc := checkParse(args)
	if rc != 0 {
		return max(rc, 0)
	}
	var until time.Time
	if cfg.wait != nil {
		installStop()
		until = time.Now().Add(time.Duration(*cfg.wait * 1e9))
	}
	for {
		line, err := checkOnce(name, &cfg)
		if err == nil {
			if !cfg.quiet {
				fmt.Println(line)
			}
			return 0
		}
		if cfg.wait == nil || !time.Now().Before(until) || !sleepUnlessStopped(100*time.Millisecond) {
			if stopped() != 0 {
				return stopStatus(name)
			}
			logLine("error", "unhealthy", name, "", "pbring check: ", name+": "+err.Error())
			return exitRuntime
		}
	}
}
