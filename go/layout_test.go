// SPDX-License-Identifier: MIT

package pbring

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The C header include/pbring/layout.h is the one source of truth for the
// segment's numbers. This test parses it (the #define constants, the
// function-like encodings, and the offset comments of the layout structs,
// cross-checked against offsets computed from the field types) and
// compares every number with the Go side. A constant or field the header
// gains without a Go counterpart fails the test.

const layoutHeader = "../include/pbring/layout.h"

// goDefines mirrors every object-like #define of layout.h.
// goStrings: the string constants of layout.h.
var goStrings = map[string]string{
	"PBR_NAME_PREFIX": NamePrefix,
	"PBR_SHM_DIR":     ShmDir,
}

var goDefines = map[string]uint64{
	"PBR_FORMAT_MAJOR":            FormatMajor,
	"PBR_FORMAT_MINOR":            FormatMinor,
	"PBR_MAGIC":                   Magic,
	"PBR_BLOCK":                   blockSize,
	"PBR_PAGE":                    pageSize,
	"PBR_STATE_INIT":              stateInit,
	"PBR_STATE_READY":             stateReady,
	"PBR_CREATION_LOCK":           creationLock,
	"PBR_RING_SINGLE_PRODUCER":    ringSingleProducer,
	"PBR_FEATURES_INCOMPAT_KNOWN": featuresIncompatKnown,
	"PBR_FEATURES_COMPAT_KNOWN":   featuresCompatKnown,
	"PBR_FEATURE_READER_METRICS":  featureReaderMetrics,
	"PBR_FEATURE_DURABLE_READERS": featureDurableReaders,
	"PBR_READER_DURABLE":          readerDurable,
	"PBR_READER_NAME_SIZE":        readerNameSize,
	"PBR_READER_NAME_MAX":         ReaderNameMax,
	"PBR_CTL_NAME_LOCK":           ctlNameLock,
	"PBR_SLOT_F_SOURCE":           FlagSource,
	"PBR_SOURCE_SIZE":             sourceSize,
	"PBR_METRICS_SIZE":            metricsSize,
	"PBR_LATENCY_BUCKETS":         LatencyBuckets,
	"PBR_LATENCY_CAP_NS":          latencyCapNs,
	"PBR_NAME_MAX":                NameMax,
	"PBR_MSG_TYPE_MAX":            MsgTypeMax,
	"PBR_SLOT_HDR_SIZE":           SlotHeaderSize,
	"PBR_SLOT_SIZE_MIN":           SlotSizeMin,
	"PBR_SLOT_SIZE_MAX":           SlotSizeMax,
	"PBR_SLOT_COUNT_MIN":          SlotCountMin,
	"PBR_SLOT_COUNT_MAX":          SlotCountMax,
	"PBR_PARTICIPANTS_MAX":        ParticipantsMax,
	"PBR_CTL_CLAIM":               ctlClaim,
	"PBR_CTL_DATA_BELL":           ctlDataBell,
	"PBR_CTL_SPACE_BELL":          ctlSpaceBell,
	"PBR_CTL_STATS":               ctlStats,
	"PBR_CTL_SIZE":                ctlSize,
	"PBR_ENTRY_SIZE":              entrySize,
	"PBR_ENTRY_FREE":              entryFree,
	"PBR_ENTRY_ACTIVE":            entryActive,
	"PBR_PENDING_IDLE":            pendingIdle,
	"PBR_PENDING_CLAIMING":        pendingClaiming,
	"PBR_READER_GATING":           readerGating,
	"PBR_READER_LOSSY":            readerLossy,
	"PBR_COMMIT_EMPTY":            commitEmpty,
	"PBR_SLOT_F_CRC":              FlagCRC,
	"PBR_SLOT_F_SKIP":             FlagSkip,
	"PBR_SLOT_F_TRACE":            FlagTrace,
	"PBR_PRODUCER_NONE":           ProducerNone,
	"PBR_LAYOUT_FINGERPRINT":      LayoutFingerprint,
}

// goLists mirrors the brace-list defines of layout.h (array initialisers).
var goLists = map[string][]uint64{
	"PBR_LATENCY_BOUNDS_NS": LatencyBoundsNs[:],
}

// goMacros mirrors the function-like encodings of layout.h.
var goMacros = map[string]func(uint64) uint64{
	"PBR_PENDING_SEQ":      pendingSeq,
	"PBR_COMMIT_DONE":      commitDoneOf,
	"PBR_COMMIT_ABANDONED": commitAbandOf,
	"PBR_COMMIT_BUSY":      commitBusyOf,
	"PBR_COMMIT_STATE":     func(v uint64) uint64 { return v & 3 },
	"PBR_SOURCE_OFF":       sourceOff,
	"PBR_LAYOUT_ASSERT":    nil, // not an encoding
}

// goFields mirrors every non-reserved field of the layout structs.
var goFields = map[string]uint64{
	"pbr_layout_super.magic":             sbMagic,
	"pbr_layout_super.state":             sbState,
	"pbr_layout_super.major":             sbMajor,
	"pbr_layout_super.minor":             sbMinor,
	"pbr_layout_super.fingerprint":       sbFingerprint,
	"pbr_layout_super.ring_flags":        sbRingFlags,
	"pbr_layout_super.features_incompat": sbFeaturesIncompat,
	"pbr_layout_super.features_compat":   sbFeaturesCompat,
	"pbr_layout_super.total_size":        sbTotalSize,
	"pbr_layout_super.slot_count":        sbSlotCount,
	"pbr_layout_super.slot_size":         sbSlotSize,
	"pbr_layout_super.max_producers":     sbMaxProducers,
	"pbr_layout_super.max_readers":       sbMaxReaders,
	"pbr_layout_super.control_off":       sbControlOff,
	"pbr_layout_super.control_size":      sbControlSize,
	"pbr_layout_super.participants_off":  sbParticipantsOff,
	"pbr_layout_super.participants_size": sbParticipantsSize,
	"pbr_layout_super.schema_off":        sbSchemaOff,
	"pbr_layout_super.schema_size":       sbSchemaSize,
	"pbr_layout_super.slots_off":         sbSlotsOff,
	"pbr_layout_super.slots_size":        sbSlotsSize,
	"pbr_layout_super.seq_base":          sbSeqBase,
	"pbr_layout_super.schema_hash":       sbSchemaHash,
	"pbr_layout_super.schema_len":        sbSchemaLen,
	"pbr_layout_super.creator_uid":       sbCreatorUID,
	"pbr_layout_super.creator_pid":       sbCreatorPID,
	"pbr_layout_super.crc_policy":        sbCRCPolicy,
	"pbr_layout_super.created_ns":        sbCreatedNs,
	"pbr_layout_super.crc_limit":         sbCRCLimit,
	"pbr_layout_super.name":              sbName,
	"pbr_layout_super.msg_type":          sbMsgType,
	"pbr_layout_bell.futex":              bellFutex,
	"pbr_layout_bell.waiters":            bellWaiters,
	"pbr_layout_stats.abandoned":         statAbandoned,
	"pbr_layout_stats.producers_reaped":  statProducersReaped,
	"pbr_layout_stats.readers_reaped":    statReadersReaped,
	"pbr_layout_producer.state":          peState,
	"pbr_layout_producer.pid":            pePID,
	"pbr_layout_producer.pending":        pePending,
	"pbr_layout_producer.committed":      peCommitted,
	"pbr_layout_producer.joined_ns":      peJoinedNs,
	"pbr_layout_producer.bytes":          peBytes,
	"pbr_layout_producer.aborts":         peAborts,
	"pbr_layout_producer.blocked_ns":     peBlockedNs,
	"pbr_layout_reader.cursor":           reCursor,
	"pbr_layout_reader.state":            reState,
	"pbr_layout_reader.flags":            reFlags,
	"pbr_layout_reader.pid":              rePID,
	"pbr_layout_reader.delivered":        reDelivered,
	"pbr_layout_reader.lost":             reLost,
	"pbr_layout_reader.abandoned":        reAbandoned,
	"pbr_layout_reader.joined_ns":        reJoinedNs,
	"pbr_layout_reader.bad":              reBad,
	"pbr_layout_reader.crc_errors":       reCRCErrors,
	"pbr_layout_reader.decode_errors":    reDecodeErr,
	"pbr_layout_reader.name":             reName,
	"pbr_layout_metrics.joined_ns":       mbJoinedNs,
	"pbr_layout_metrics.latency_sum_ns":  mbLatencySumNs,
	"pbr_layout_metrics.latency":         mbLatency,
	"pbr_layout_slot.commit":             shCommit,
	"pbr_layout_slot.length":             shLength,
	"pbr_layout_slot.crc32c":             shCRC32C,
	"pbr_layout_slot.producer":           shProducer,
	"pbr_layout_slot.flags":              shFlags,
	"pbr_layout_slot.timestamp_ns":       shTimestampNs,
	"pbr_layout_slot.trace_id":           shTraceID,
	"pbr_layout_slot.span_id":            shSpanID,
	"pbr_layout_slot.trace_flags":        shTraceFlags,
}

// goSizes: sizeof of each layout struct.
var goSizes = map[string]uint64{
	"pbr_layout_super":    sbSize,
	"pbr_layout_bell":     8,
	"pbr_layout_stats":    24,
	"pbr_layout_producer": entrySize,
	"pbr_layout_reader":   entrySize,
	"pbr_layout_metrics":  metricsSize,
	"pbr_layout_slot":     SlotHeaderSize,
}

// goArrays: sizes of the arrays the Go side copies by length.
var goArrays = map[string]uint64{
	"pbr_layout_super.name":      sbNameSize,
	"pbr_layout_super.msg_type":  sbMsgTypeSize,
	"pbr_layout_slot.trace_id":   16,
	"pbr_layout_slot.span_id":    8,
	"pbr_layout_reader.name":     readerNameSize,
	"pbr_layout_metrics.latency": 8 * LatencyBuckets,
}

// goCRCPolicies mirrors the CRC policies of include/pbring.h (the API
// header, not layout.h: they are values of a superblock field).
var goCRCPolicies = map[string]CRCPolicy{
	"PBR_CRC_FULL": CRCFull,
	"PBR_CRC_NONE": CRCNone,
	"PBR_CRC_UPTO": CRCUpTo,
}

func TestCRCPolicyDefines(t *testing.T) {
	b, err := os.ReadFile("../include/pbring.h")
	if os.IsNotExist(err) {
		t.Skip("../include/pbring.h not found: the test needs the C sources beside the Go module")
	}
	must(t, err)
	defs, _ := parseDefines(string(b))
	n := 0
	for name, expr := range defs {
		if !strings.HasPrefix(name, "PBR_CRC_") {
			continue
		}
		want, ok := goCRCPolicies[name]
		if !ok {
			t.Errorf("pbring.h defines %s = %s with no Go counterpart", name, expr)
			continue
		}
		n++
		if v, err := evalC(expr, defs, nil); err != nil || v != uint64(want) {
			t.Errorf("%s: C %s (%v), Go %d", name, expr, err, want)
		}
	}
	if n != len(goCRCPolicies) {
		t.Errorf("matched %d of %d CRC policies", n, len(goCRCPolicies))
	}
}

func readLayout(t *testing.T) string {
	b, err := os.ReadFile(layoutHeader)
	if os.IsNotExist(err) {
		t.Skipf("%s not found: the layout test needs the C sources beside the Go module", layoutHeader)
	}
	must(t, err)
	return string(b)
}

func TestLayoutDefines(t *testing.T) {
	h := readLayout(t)
	defs, macros := parseDefines(h)
	seen := 0
	for name, expr := range defs {
		if s, ok := goStrings[name]; ok {
			if want := strconv.Quote(s); expr != want {
				t.Errorf("%s: C %s, Go %s", name, expr, want)
			}
			seen++
			continue
		}
		if want, ok := goLists[name]; ok {
			checkList(t, name, expr, defs, want)
			seen++
			continue
		}
		goVal, ok := goDefines[name]
		if !ok {
			if expr != "" {
				t.Errorf("layout.h defines %s = %s with no Go counterpart", name, expr)
			}
			continue
		}
		cVal, err := evalC(expr, defs, nil)
		if err != nil {
			t.Errorf("%s: cannot evaluate %q: %v", name, expr, err)
			continue
		}
		if cVal != goVal {
			t.Errorf("%s: C %#x, Go %#x", name, cVal, goVal)
		}
		seen++
	}
	if want := len(goDefines) + len(goStrings) + len(goLists); seen != want {
		t.Errorf("matched %d of %d Go constants: some are gone from layout.h", seen, want)
	}
	checkMacros(t, defs, macros)
}

// checkList compares a brace-list define, element by element.
func checkList(t *testing.T, name, expr string, defs map[string]string, want []uint64) {
	body, ok := strings.CutPrefix(strings.TrimSpace(expr), "{")
	if body, ok = strings.CutSuffix(strings.TrimSpace(body), "}"); !ok {
		t.Errorf("%s: %q is not a brace list", name, expr)
		return
	}
	elems := strings.Split(body, ",")
	if len(elems) != len(want) {
		t.Errorf("%s: C has %d elements, Go %d", name, len(elems), len(want))
		return
	}
	for i, e := range elems {
		if v, err := evalC(strings.TrimSpace(e), defs, nil); err != nil || v != want[i] {
			t.Errorf("%s[%d]: C %s (%v), Go %d", name, i, e, err, want[i])
		}
	}
}

func checkMacros(t *testing.T, defs map[string]string, macros map[string]cMacro) {
	for name, m := range macros {
		fn, ok := goMacros[name]
		if !ok {
			t.Errorf("layout.h macro %s(%s) has no Go counterpart", name, m.param)
			continue
		}
		if fn == nil {
			continue
		}
		for _, s := range []uint64{0, 1, 5, 1 << 61, 1<<62 - 1, 1 << 62, ^uint64(0)} {
			cVal, err := evalC(m.body, defs, map[string]uint64{m.param: s})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if goVal := fn(s); cVal != goVal {
				t.Errorf("%s(%#x): C %#x, Go %#x", name, s, cVal, goVal)
			}
		}
	}
}

func TestLayoutStructs(t *testing.T) {
	h := readLayout(t)
	structs := parseStructs(t, h)
	seen := 0
	for sname, fields := range structs {
		want, ok := goSizes[sname]
		if !ok {
			t.Errorf("layout.h struct %s has no Go counterpart", sname)
		} else if got := fields[len(fields)-1].end; got != want {
			t.Errorf("sizeof(struct %s): C %d, Go %d", sname, got, want)
		}
		for _, f := range fields {
			key := sname + "." + f.name
			if strings.HasPrefix(f.name, "reserved") {
				continue
			}
			goOff, ok := goFields[key]
			if !ok {
				t.Errorf("layout.h field %s (offset %#x) has no Go counterpart", key, f.off)
				continue
			}
			seen++
			if goOff != f.off {
				t.Errorf("%s: C offset %#x, Go %#x", key, f.off, goOff)
			}
			if n, ok := goArrays[key]; ok && n != f.size {
				t.Errorf("%s: C size %d, Go %d", key, f.size, n)
			}
		}
	}
	if seen != len(goFields) {
		t.Errorf("matched %d of %d Go field offsets", seen, len(goFields))
	}
	checkAsserts(t, h, structs)
}

// checkAsserts cross-checks the header's own _Static_asserts of offsets
// against what the parser computed, so a parser bug cannot hide.
func checkAsserts(t *testing.T, h string, structs map[string][]cField) {
	re := regexp.MustCompile(`offsetof\(struct (\w+),\s*(\w+)\)\s*==\s*(0x[0-9A-Fa-f]+|\d+)`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(h, -1) {
		want, _ := strconv.ParseUint(m[3], 0, 64)
		found := false
		for _, f := range structs[m[1]] {
			if f.name == m[2] {
				found = true
				if f.off != want {
					t.Errorf("assert offsetof(%s, %s) == %#x, parsed %#x", m[1], m[2], want, f.off)
				}
			}
		}
		if !found {
			t.Errorf("assert names %s.%s, not parsed", m[1], m[2])
		}
		n++
	}
	if n < 10 {
		t.Errorf("only %d offset asserts found in layout.h", n)
	}
}

// --- a small parser for layout.h ----------------------------------------

type cMacro struct{ param, body string }

var (
	reBlockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	reDefine       = regexp.MustCompile(`^#define\s+(\w+)(\((\w+)\))?\s*(.*)$`)
)

// parseDefines returns the object-like defines (name -> expression, ""
// for a bare guard) and the one-parameter function-like ones.
func parseDefines(h string) (map[string]string, map[string]cMacro) {
	h = strings.ReplaceAll(h, "\\\n", " ")
	h = reBlockComment.ReplaceAllString(h, " ")
	defs, macros := map[string]string{}, map[string]cMacro{}
	for _, line := range strings.Split(h, "\n") {
		m := reDefine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		body := strings.TrimSpace(m[4])
		if m[2] != "" {
			macros[m[1]] = cMacro{param: m[3], body: body}
			continue
		}
		defs[m[1]] = body
	}
	return defs, macros
}

type cField struct {
	name           string
	off, size, end uint64
}

var (
	reStructStart = regexp.MustCompile(`^struct (\w+) \{`)
	reField       = regexp.MustCompile(`^(uint8_t|uint16_t|uint32_t|uint64_t|char)\s+(\w+)(\[(\w+(?:\s*<<\s*\w+)?)\])?;\s*(/\*\s*\+?(0x[0-9A-Fa-f]+|\d+))?`)
	cTypeSize     = map[string]uint64{"uint8_t": 1, "char": 1, "uint16_t": 2, "uint32_t": 4, "uint64_t": 8}
)

// parseStructs lays out each struct from its field types (natural
// alignment) and checks the offset comments against that layout.
func parseStructs(t *testing.T, h string) map[string][]cField {
	defs, _ := parseDefines(h)
	out := map[string][]cField{}
	var cur string
	var off, align uint64
	for _, raw := range strings.Split(h, "\n") {
		line := strings.TrimSpace(raw)
		if m := reStructStart.FindStringSubmatch(line); m != nil {
			cur, off, align = m[1], 0, 1
			continue
		}
		if cur == "" {
			continue
		}
		if strings.HasPrefix(line, "};") {
			end := (off + align - 1) / align * align
			if n := len(out[cur]); n > 0 {
				out[cur][n-1].end = end
			}
			cur = ""
			continue
		}
		m := reField.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := layField(t, m, defs, &off, &align)
		out[cur] = append(out[cur], f)
	}
	return out
}

func layField(t *testing.T, m []string, defs map[string]string, off, align *uint64) cField {
	size := cTypeSize[m[1]]
	a := size
	*off = (*off + a - 1) / a * a
	*align = max(*align, a)
	n := uint64(1)
	if m[4] != "" {
		v, err := evalC(m[4], defs, nil)
		if err != nil {
			t.Fatalf("array size %q: %v", m[4], err)
		}
		n = v
	}
	f := cField{name: m[2], off: *off, size: size * n}
	if m[6] != "" {
		c, _ := strconv.ParseUint(m[6], 0, 64)
		// Comments of bell/stats fields are relative ("+0x08"), the
		// others absolute; both are offsets within the struct.
		if c != f.off {
			t.Errorf("field %s: comment says %#x, types give %#x", m[2], c, f.off)
		}
	}
	*off += f.size
	f.end = *off
	return f
}

// evalC evaluates the integer constant expressions layout.h uses:
// literals with u/ull suffixes, names of other defines (or a macro's
// parameter), casts to the stdint types, parentheses, and the operators
// * / + - << >> & |.
func evalC(expr string, defs map[string]string, params map[string]uint64) (uint64, error) {
	p := &cParser{toks: tokenize(expr), defs: defs, params: params}
	v, err := p.binary(0)
	if err == nil && p.pos != len(p.toks) {
		err = fmt.Errorf("trailing %q", p.toks[p.pos:])
	}
	return v, err
}

var reToken = regexp.MustCompile(`0[xX][0-9A-Fa-f]+[uUlL]*|\d+[uUlL]*|\w+|<<|>>|[()*/+\-&|]`)

func tokenize(s string) []string { return reToken.FindAllString(s, -1) }

type cParser struct {
	toks   []string
	pos    int
	defs   map[string]string
	params map[string]uint64
	depth  int
}

var cPrec = map[string]int{"|": 1, "&": 2, "<<": 3, ">>": 3, "+": 4, "-": 4, "*": 5, "/": 5}

func (p *cParser) binary(minPrec int) (uint64, error) {
	l, err := p.unary()
	for err == nil && p.pos < len(p.toks) {
		op := p.toks[p.pos]
		prec, ok := cPrec[op]
		if !ok || prec <= minPrec {
			break
		}
		p.pos++
		var r uint64
		if r, err = p.binary(prec); err == nil {
			l, err = apply(op, l, r)
		}
	}
	return l, err
}

func apply(op string, l, r uint64) (uint64, error) {
	switch op {
	case "|":
		return l | r, nil
	case "&":
		return l & r, nil
	case "<<":
		return l << r, nil
	case ">>":
		return l >> r, nil
	case "+":
		return l + r, nil
	case "-":
		return l - r, nil
	case "*":
		return l * r, nil
	case "/":
		if r == 0 {
			return 0, fmt.Errorf("division by zero")
		}
		return l / r, nil
	}
	return 0, fmt.Errorf("operator %s", op)
}

var cCasts = map[string]uint64{"uint8_t": 0xff, "uint16_t": 0xffff, "uint32_t": 0xffffffff, "uint64_t": ^uint64(0)}

func (p *cParser) unary() (uint64, error) {
	if p.pos >= len(p.toks) {
		return 0, fmt.Errorf("unexpected end")
	}
	tok := p.toks[p.pos]
	p.pos++
	if tok == "(" {
		if p.pos+1 < len(p.toks) && p.toks[p.pos+1] == ")" {
			if mask, ok := cCasts[p.toks[p.pos]]; ok {
				p.pos += 2
				v, err := p.unary()
				return v & mask, err
			}
		}
		v, err := p.binary(0)
		if err == nil && (p.pos >= len(p.toks) || p.toks[p.pos] != ")") {
			err = fmt.Errorf("missing )")
		}
		p.pos++
		return v, err
	}
	return p.atom(tok)
}

func (p *cParser) atom(tok string) (uint64, error) {
	if tok[0] >= '0' && tok[0] <= '9' {
		return strconv.ParseUint(strings.TrimRight(tok, "uUlL"), 0, 64)
	}
	if v, ok := p.params[tok]; ok {
		return v, nil
	}
	if e, ok := p.defs[tok]; ok && p.depth < 16 {
		sub := &cParser{toks: tokenize(e), defs: p.defs, depth: p.depth + 1}
		return sub.binary(0)
	}
	return 0, fmt.Errorf("unknown name %s", tok)
}
