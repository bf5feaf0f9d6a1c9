// SPDX-License-Identifier: MIT

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	pbring "github.com/pbring/pbring/go"
	"github.com/pbring/pbring/go/demo"
)

// Exit codes, as the C command's.
const (
	exitRuntime = 1
	exitUsage   = 2
)

// logJSON: --log-format json (before the command): every line on stderr
// is a JSON object, as the C command writes it (docs/CLI.md, "Logs").
var logJSON bool

// logCmd is the command running, the event's first half.
var logCmd = "pbring"

// logLine writes one line on stderr: textPrefix + msg, or with
// --log-format json the object {ts, level, service, event, ring,
// trace_id, message} (ring and trace_id only when not empty).
func logLine(level, kind, ring, traceID, textPrefix, msg string) {
	if !logJSON {
		fmt.Fprintf(os.Stderr, "%s%s\n", textPrefix, msg)
		return
	}
	b := []byte(`{"ts":`)
	b = strconv.AppendQuote(b, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	b = append(b, `,"level":`...)
	b = appendJSON(b, level)
	b = append(b, `,"service":"pbring","event":`...)
	b = appendJSON(b, logCmd+"."+kind)
	if ring != "" {
		b = append(b, `,"ring":`...)
		b = appendJSON(b, ring)
	}
	if traceID != "" {
		b = append(b, `,"trace_id":`...)
		b = appendJSON(b, traceID)
	}
	b = append(b, `,"message":`...)
	b = appendJSON(b, msg)
	b = append(b, "}\n"...)
	_, _ = os.Stderr.Write(b) // a log line: nowhere left to report its failure
}

// appendJSON appends s as a JSON string, escaped as the C command does
// (quote, backslash, control characters as \u00XX, a byte that is not
// UTF-8 as \ufffd; the rest as is).
func appendJSON(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, fmt.Sprintf("\\u%04x", c)...)
		case c < 0x80:
			b = append(b, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return append(b, '"')
}

// fail prints "pbring: RING: reason", the C command's one-line error.
func fail(ring, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if logJSON {
		logLine("error", "error", ring, "", "", msg)
		return
	}
	if ring != "" {
		fmt.Fprintf(os.Stderr, "pbring: %s: %s\n", ring, msg)
		return
	}
	fmt.Fprintf(os.Stderr, "pbring: %s\n", msg)
}

// failErr reports err as the C command reports an error code: "what:
// reason" with pbr_strerror's text.
func failErr(ring, what string, err error) int {
	text := reasonText(ring, err)
	if what != "" {
		fail(ring, "%s: %s", what, text)
	} else {
		fail(ring, "%s", text)
	}
	return exitRuntime
}

// reasonText is errText, and for a damaged ring what clears it (a
// damaged ring stays damaged).
func reasonText(ring string, err error) string {
	if errors.Is(err, pbring.ErrCorrupt) {
		return pbring.ErrCorrupt.Error() + "; remove it with 'pbring rm " + ring + "'"
	}
	return errText(err)
}

// errText is pbr_strerror() of the error's code: the package's sentinel
// texts are the C library's; other errnos read like glibc's.
func errText(err error) string {
	var pe *pbring.Error
	if errors.As(err, &pe) {
		return pe.Error()
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		s := en.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

// usage prints "pbring-go CMD: message (see ...)" and returns exitUsage.
func usage(cmd, format string, a ...any) int {
	if logJSON {
		logLine("error", "usage", "", "", "", fmt.Sprintf(format, a...))
		return exitUsage
	}
	fmt.Fprintf(os.Stderr, "pbring-go %s: %s (see 'pbring-go %s --help')\n", cmd, fmt.Sprintf(format, a...), cmd)
	return exitUsage
}

// parseU64 accepts what the C command's strtoull(s, 0) does: decimal,
// 0x hex or 0 octal, no sign, the whole string, within [lo, hi].
func parseU64(s string, lo, hi uint64) (uint64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	t = strings.TrimPrefix(t, "+")
	if t == "" || strings.HasPrefix(s, "-") || strings.ContainsAny(t, "_+-") {
		return 0, false
	}
	base := 10
	switch {
	case len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X"):
		base, t = 16, t[2:]
	case len(t) > 1 && t[0] == '0':
		base, t = 8, t[1:]
	}
	v, err := strconv.ParseUint(t, base, 64)
	return v, err == nil && v >= lo && v <= hi
}

// parseSeconds: a non-negative number of seconds up to 1e9.
func parseSeconds(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimLeft(s, " \t\n\v\f\r"), 64)
	return v, err == nil && v >= 0 && v <= 1e9 && !strings.Contains(s, "_")
}

// option is one long option; arg says whether it takes a value.
type option struct {
	name string
	arg  bool
}

// parseArgs parses like getopt_long(argv, ":h", opts): options may come
// before or after the operands, "--name value" or "--name=value", unique
// prefixes of names are accepted, "--" ends the options. It returns the
// options in order and the operands; on error it prints the C command's
// one usage line ("unknown option 'ARG'", "option 'ARG' needs a value",
// ARG as given) and returns ok false: the caller returns exitUsage.
func parseArgs(cmd string, args []string, opts []option) (got [][2]string, operands []string, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return got, append(operands, args[i+1:]...), true
		case a == "-h":
			got = append(got, [2]string{"help", ""})
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o, found := matchOption(name, opts)
			if !found || !o.arg && hasVal {
				usage(cmd, "unknown option '%s'", a)
				return nil, nil, false
			}
			if o.arg && !hasVal {
				if i+1 >= len(args) {
					usage(cmd, "option '%s' needs a value", a)
					return nil, nil, false
				}
				i++
				val = args[i]
			}
			got = append(got, [2]string{o.name, val})
		case len(a) > 1 && a[0] == '-':
			usage(cmd, "unknown option '%s'", a[:2])
			return nil, nil, false
		default:
			operands = append(operands, a)
		}
	}
	return got, operands, true
}

// matchOption finds the option name is, or is the unique prefix of.
func matchOption(name string, opts []option) (option, bool) {
	var found []option
	for _, o := range opts {
		if o.name == name {
			return o, true
		}
		if strings.HasPrefix(o.name, name) && name != "" {
			found = append(found, o)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return option{}, false // unknown or ambiguous
}

// attach attaches for subcommand cmd, with the C command's one-line
// errors; anyOwner (--any-owner) accepts a ring owned by another user. It
// returns the ring, or the exit code: an invalid name is a usage error
// (as in C and Python), anything else a runtime one.
func attach(cmd, ring string, anyOwner bool) (*pbring.Ring, int) {
	return attachWith(cmd, ring, &pbring.AttachOptions{AnyOwner: anyOwner})
}

// attachTap attaches read-only for a tap (consume --tap), whatever the
// owner: the owner check protects writers, and a tap writes nothing.
func attachTap(cmd, ring string) (*pbring.Ring, int) {
	return attachWith(cmd, ring, &pbring.AttachOptions{AnyOwner: true, ReadOnly: true})
}

func attachWith(cmd, ring string, o *pbring.AttachOptions) (*pbring.Ring, int) {
	r, err := pbring.Attach(ring, o)
	switch {
	case errors.Is(err, pbring.ErrInvalid):
		return nil, usage(cmd, "invalid ring name '%s' (use 1-63 of [A-Za-z0-9_.-])", ring)
	case errors.Is(err, pbring.ErrCorrupt):
		fail(ring, "%s; remove it with 'pbring rm %s'", pbring.ErrCorrupt.Error(), ring)
	case errors.Is(err, pbring.ErrPermission):
		attachRefused(ring, o.AnyOwner)
	case err != nil:
		failErr(ring, "", err)
	}
	if err != nil {
		return nil, exitRuntime
	}
	return r, 0
}

// attachRefused says which of ErrPermission's refusals it was, and what
// accepts another owner's ring, as the C command does. With anyOwner
// (--any-owner, --tap) the refusal, short of a ring writable by everyone,
// is the open's (EACCES): C says "permission denied".
func attachRefused(ring string, anyOwner bool) {
	var st syscall.Stat_t
	switch {
	case syscall.Stat("/dev/shm/pbring."+ring, &st) != nil:
		fail(ring, "%s", pbring.ErrPermission.Error())
	case st.Mode&0o002 != 0:
		fail(ring, "ring writable by everyone (mode %04o): refused (see SECURITY.md)", st.Mode&0o7777)
	case anyOwner, syscall.Access("/dev/shm/pbring."+ring, 6) != nil:
		// the open's own refusal (EACCES, read+write wanted), as C
		// tells it apart from the owner check's EPERM
		fail(ring, "permission denied")
	case st.Uid != uint32(os.Geteuid()): // #nosec G115 -- Linux's uid_t is 32 bits: Geteuid returns it widened
		fail(ring, "ring owned by another user (uid %d): use --any-owner to accept it", st.Uid)
	default:
		fail(ring, "%s", pbring.ErrPermission.Error())
	}
}

// duration is a duration with its unit chosen for it, as the C command's
// cli_duration(): "850 ns", "12.3 us", "2.6 ms", "41.9 s".
func duration(ns uint64) string {
	switch {
	case ns < 1000:
		return fmt.Sprintf("%d ns", ns)
	case ns < 999950:
		return fmt.Sprintf("%.1f us", float64(ns)/1e3)
	case ns < 999950000:
		return fmt.Sprintf("%.1f ms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%.1f s", float64(ns)/1e9)
}

// tooLarge is "a message of N bytes does not fit in a slot (...)".
func tooLarge(r *pbring.Ring, size int) string {
	info := r.Info()
	return fmt.Sprintf("a message of %d bytes does not fit in a slot (payload capacity %d bytes of --slot-size %d)",
		size, info.PayloadCap, info.SlotSize)
}

// checkType refuses a ring that does not hold DeviceEvents.
func checkType(name string, r *pbring.Ring) bool {
	if r.CheckType(demo.MsgType, 0) == nil {
		return true
	}
	if t := r.Info().MsgType; t == "" {
		fail(name, "ring holds raw bytes, not %s (use --raw)", demo.MsgType)
	} else {
		fail(name, "ring holds %s, not %s", t, demo.MsgType)
	}
	return false
}

// hasGatingReader: a live gating reader is attached (as the C command
// decides it: the entry's GATING flag, 1; more than 64 participants
// count as yes).
func hasGatingReader(r *pbring.Ring) bool {
	ps, err := r.Participants()
	if err != nil {
		return false
	}
	for i, p := range ps {
		// A detached durable reader counts: what is sent is kept for it.
		if i < 64 && p.IsReader && (p.Alive || p.Durable) && p.Flags&1 != 0 {
			return true
		}
	}
	return len(ps) > 64
}

func isTTY(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

func nowNs() int64 { return int64(pbring.MonotonicNs()) } // #nosec G115 -- ns since boot: < 2^63 for 292 years
