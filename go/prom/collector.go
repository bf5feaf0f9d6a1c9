// SPDX-License-Identifier: MIT

// Package prom exports pbring rings' metrics to Prometheus: a
// prometheus.Collector (client_golang) with the names, labels and values
// of docs/METRICS.md, the same as the C command's `pbring stat
// --prometheus` and `pbring exporter` and Python's
// pbring.metrics.RingCollector:
//
//	prometheus.MustRegister(prom.NewCollector())         // every ring on the host
//	http.Handle("/metrics", promhttp.Handler())
//
// Each collection attaches the rings, reads their counters and
// participant tables and closes them: it never joins a ring. It is a
// module of its own so that the pbring module does not depend on
// client_golang.
package prom

import (
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	pbring "github.com/pbring/pbring/go"
)

// Collector collects the metrics of the rings named, or of every ring on
// the host (no names), afresh at each collection. A named ring that
// cannot be read is pbring_ring_up 0.
type Collector struct {
	rings []string
}

// NewCollector collects the named rings, or every ring on the host.
func NewCollector(rings ...string) *Collector {
	return &Collector{rings: append([]string(nil), rings...)}
}

// Describe sends nothing: the collector is unchecked, as the rings and
// their participants come and go.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

type snap struct {
	name  string
	up    bool
	info  pbring.Info
	stats pbring.RingStats
	parts []pbring.Participant
}

func take(name string) snap {
	r, err := pbring.Attach(name, &pbring.AttachOptions{Timeout: time.Nanosecond})
	if err != nil {
		return snap{name: name}
	}
	defer r.Close()
	s := snap{name: name, up: true, info: r.Info()}
	if s.parts, err = r.Participants(); err != nil {
		return snap{name: name}
	}
	// The counters after the entries, as the C command reads them.
	if s.stats, err = r.Stats(); err != nil {
		return snap{name: name}
	}
	return s
}

// hostRings lists the rings in /dev/shm, as `pbring ls` does.
func hostRings() []string {
	ents, err := os.ReadDir("/dev/shm")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "pbring."); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (c *Collector) snaps() []snap {
	var out []snap
	if len(c.rings) > 0 {
		for _, n := range c.rings {
			out = append(out, take(n))
		}
		return out
	}
	for _, n := range hostRings() {
		if s := take(n); s.up {
			out = append(out, s)
		}
	}
	return out
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// Collect sends every sample of docs/METRICS.md.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snaps := c.snaps()
	up := desc("pbring_ring_up", "1 if the ring could be read, 0 if not (named rings only).", "ring")
	info := desc("pbring_ring_info", "Always 1: the ring's message type and CRC policy as labels.", "ring", "msg_type", "crc")
	for _, s := range snaps {
		v := 0.0
		if s.up {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, v, s.name)
		if s.up {
			ch <- prometheus.MustNewConstMetric(info, prometheus.GaugeValue, 1, s.name, s.info.MsgType, crcName(s.info.CRC))
		}
	}
	for _, s := range snaps {
		if s.up {
			ringSamples(ch, &s)
			participantSamples(ch, &s)
		}
	}
}

func crcName(p pbring.CRCPolicy) string {
	switch p {
	case pbring.CRCNone:
		return "none"
	case pbring.CRCUpTo:
		return "upto"
	}
	return "full"
}

type ringMetric struct {
	name, help string
	kind       prometheus.ValueType
	get        func(*snap) uint64
}

var ringMetrics = []ringMetric{
	{"pbring_ring_slots", "Slots in the ring.", prometheus.GaugeValue, func(s *snap) uint64 { return uint64(s.info.SlotCount) }},
	{"pbring_ring_slot_bytes", "Bytes per slot, its 64-byte header included.", prometheus.GaugeValue, func(s *snap) uint64 { return uint64(s.info.SlotSize) }},
	{"pbring_ring_claimed_total", "Sequences claimed by producers since the ring was created.", prometheus.CounterValue, func(s *snap) uint64 { return s.stats.Claimed - s.info.SeqBase }},
	{"pbring_ring_abandoned_total", "Sequences of dead producers turned into abandoned records.", prometheus.CounterValue, func(s *snap) uint64 { return s.stats.Abandoned }},
	{"pbring_ring_producers_reaped_total", "Dead producer entries freed.", prometheus.CounterValue, func(s *snap) uint64 { return s.stats.ProducersReaped }},
	{"pbring_ring_readers_reaped_total", "Dead reader entries freed.", prometheus.CounterValue, func(s *snap) uint64 { return s.stats.ReadersReaped }},
}

func mode(p *pbring.Participant) string {
	if p.Gating {
		return "gating"
	}
	return "lossy"
}

func role(p *pbring.Participant) string {
	if p.IsReader {
		return mode(p)
	}
	return "producer"
}

func ringSamples(ch chan<- prometheus.Metric, s *snap) {
	for _, m := range ringMetrics {
		ch <- prometheus.MustNewConstMetric(desc(m.name, m.help, "ring"), m.kind, float64(m.get(s)), s.name)
	}
	d := desc("pbring_participants", "Producer and reader entries in use, by role and liveness.", "ring", "role", "state")
	for _, r := range []string{"producer", "gating", "lossy"} {
		for _, alive := range []bool{true, false} {
			n := 0
			for i := range s.parts {
				if role(&s.parts[i]) == r && s.parts[i].Alive == alive {
					n++
				}
			}
			state := "dead"
			if alive {
				state = "alive"
			}
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n), s.name, r, state)
		}
	}
}

type partMetric struct {
	name, help string
	kind       prometheus.ValueType
	reader     bool
	get        func(*pbring.Participant, *snap) uint64
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

var partMetrics = []partMetric{
	{"pbring_producer_up", "1 while the producer's process is alive, 0 once it died.", prometheus.GaugeValue, false, func(p *pbring.Participant, _ *snap) uint64 { return b2u(p.Alive) }},
	{"pbring_producer_committed_total", "Messages this producer committed (aborts included) since it joined.", prometheus.CounterValue, false, func(p *pbring.Participant, _ *snap) uint64 { return p.Position }},
	{"pbring_producer_bytes_total", "Payload bytes of the messages this producer committed since it joined.", prometheus.CounterValue, false, func(p *pbring.Participant, _ *snap) uint64 { return p.Bytes }},
	{"pbring_producer_aborts_total", "Skip records (aborted sequences) this producer published since it joined.", prometheus.CounterValue, false, func(p *pbring.Participant, _ *snap) uint64 { return p.Aborts }},
	{"pbring_producer_blocked_seconds_total", "Time this producer waited for space (a full ring) since it joined.", prometheus.CounterValue, false, func(p *pbring.Participant, _ *snap) uint64 { return p.BlockedNs }},
	{"pbring_reader_up", "1 while the reader's process is alive, 0 once it died.", prometheus.GaugeValue, true, func(p *pbring.Participant, _ *snap) uint64 { return b2u(p.Alive) }},
	{"pbring_reader_delivered_total", "Messages this reader released since it joined.", prometheus.CounterValue, true, func(p *pbring.Participant, _ *snap) uint64 { return p.Delivered }},
	{"pbring_reader_lost_total", "Messages overwritten before this lossy reader read them.", prometheus.CounterValue, true, func(p *pbring.Participant, _ *snap) uint64 { return p.Lost }},
	{"pbring_reader_abandoned_total", "Abandoned records (dead producers' sequences) passed over.", prometheus.CounterValue, true, func(p *pbring.Participant, _ *snap) uint64 { return p.Abandoned }},
	{"pbring_reader_lag_messages", "Messages claimed by producers and not yet read by this reader.", prometheus.GaugeValue, true, func(p *pbring.Participant, s *snap) uint64 { return s.stats.Claimed - p.Position }},
	{"pbring_reader_bad_total", "Corrupt slots (bad headers) this reader passed over.", prometheus.CounterValue, true, func(p *pbring.Participant, _ *snap) uint64 { return p.Bad }},
	{"pbring_reader_crc_errors_total", "Messages whose payload failed its CRC32C at this reader.", prometheus.CounterValue, true, func(p *pbring.Participant, _ *snap) uint64 { return p.CRCErrors }},
	{"pbring_reader_decode_errors_total", "Messages this reader's application could not decode.", prometheus.CounterValue, true, func(p *pbring.Participant, _ *snap) uint64 { return p.DecodeErrors }},
}

// latencyBounds are the histogram's upper bounds in seconds (le), from
// pbring.LatencyBoundsNs.
var latencyBounds = func() []float64 {
	b := make([]float64, len(pbring.LatencyBoundsNs))
	for i, ns := range pbring.LatencyBoundsNs {
		b[i] = float64(ns) / 1e9
	}
	return b
}()

func participantSamples(ch chan<- prometheus.Metric, s *snap) {
	for _, m := range partMetrics {
		labels := []string{"ring", "participant"}
		if m.reader {
			labels = append(labels, "mode")
		}
		d := desc(m.name, m.help, labels...)
		for i := range s.parts {
			p := &s.parts[i]
			if p.IsReader != m.reader {
				continue
			}
			vals := []string{s.name, strconv.FormatUint(uint64(p.Index), 10)}
			if m.reader {
				vals = append(vals, mode(p))
			}
			v := float64(m.get(p, s))
			if strings.HasSuffix(m.name, "_seconds_total") {
				v /= 1e9 // kept in nanoseconds, shown in seconds
			}
			ch <- prometheus.MustNewConstMetric(d, m.kind, v, vals...)
		}
	}
	latencySamples(ch, s)
}

// latencySamples: the commit-to-receive histogram of each reader with a
// metrics block of its own (format 1.2 rings), from its 23 buckets, which
// are not cumulative: the last counts what is above 1 s, so the total
// (+Inf, _count) is their sum.
func latencySamples(ch chan<- prometheus.Metric, s *snap) {
	d := desc("pbring_reader_latency_seconds",
		"Commit-to-receive latency of the messages this reader received (readers that record it; format 1.2 rings).",
		"ring", "participant", "mode")
	for i := range s.parts {
		p := &s.parts[i]
		if !p.IsReader || !p.HasLatency {
			continue
		}
		buckets := make(map[float64]uint64, len(latencyBounds))
		n := uint64(0)
		for b, le := range latencyBounds {
			n += p.Latency[b]
			buckets[le] = n
		}
		n += p.Latency[pbring.LatencyBuckets-1]
		ch <- prometheus.MustNewConstHistogram(d, n, float64(p.LatencySumNs)/1e9, buckets,
			s.name, strconv.FormatUint(uint64(p.Index), 10), mode(p))
	}
}
