# SPDX-License-Identifier: MIT
"""Rings as Prometheus metrics: a ``prometheus_client`` collector with the
names and labels of docs/METRICS.md, the same as ``pbring stat
--prometheus`` and ``pbring exporter`` print (the C command)::

    from prometheus_client import REGISTRY, start_http_server
    from pbring.metrics import RingCollector

    REGISTRY.register(RingCollector())          # every ring on the host
    start_http_server(9477, addr="127.0.0.1")

Each collection attaches the rings, reads their counters and participant
tables and detaches: it never joins a ring. Needs the ``prometheus_client``
package (``pip install prometheus_client``), imported only here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from . import _lib
from .errors import PbringError
from .ring import Participant, Ring, RingInfo, RingStats, list_rings

__all__ = ["RingCollector"]


@dataclass
class _Snap:
    name: str
    up: bool
    info: RingInfo
    stats: RingStats
    parts: List[Participant] = field(default_factory=list)


def _down(name: str) -> _Snap:
    """A ring that could not be read: only pbring_ring_up 0 shows it."""
    return _Snap(name, False, None, None)  # type: ignore[arg-type]


_Family = Union[CounterMetricFamily, GaugeMetricFamily]


def _family(kind: str, name: str, text: str, labels: List[str]) -> _Family:
    if kind == "counter":
        return CounterMetricFamily(name, text, labels=labels)
    return GaugeMetricFamily(name, text, labels=labels)


def _snap(name: str) -> _Snap:
    try:
        ring = Ring.attach(name, timeout=0)
    except (PbringError, OSError, ValueError):
        return _down(name)
    try:
        info = ring.info
        parts = ring.participants()
        # the counters after the entries, as the C command reads them
        return _Snap(name, True, info, ring.stats(), parts)
    finally:
        ring.close()


def _mode(p: Participant) -> str:
    return "lossy" if p.flags & _lib.PBR_READER_LOSSY else "gating"


def _role(p: Participant) -> str:
    return _mode(p) if p.is_reader else "producer"


class RingCollector(Collector):
    """The metrics of the rings named, or (``rings=None``) of every ring on
    this host, read afresh at each collection. A named ring that cannot
    be read is ``pbring_ring_up 0``."""

    def __init__(self, rings: Optional[Sequence[str]] = None) -> None:
        self.rings = None if rings is None else list(rings)

    def _snaps(self) -> List[_Snap]:
        if self.rings is not None:
            return [_snap(n) for n in self.rings]
        return [s for s in (_snap(n) for n in list_rings()) if s.up]

    def collect(self) -> Iterator[Metric]:
        snaps = self._snaps()
        read = [s for s in snaps if s.up]
        yield from _ring_families(snaps, read)
        yield _participants(read)
        yield from _participant_families(read)
        yield _latency(read)

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked: the rings come and go


def _ring_families(snaps: List[_Snap], read: List[_Snap]) -> Iterator[
        Metric]:
    up = GaugeMetricFamily(
        "pbring_ring_up",
        "1 if the ring could be read, 0 if not (named rings only).",
        labels=["ring"])
    for s in snaps:
        up.add_metric([s.name], 1 if s.up else 0)
    yield up
    info = GaugeMetricFamily(
        "pbring_ring_info",
        "Always 1: the ring's message type and CRC policy as labels.",
        labels=["ring", "msg_type", "crc"])
    for s in read:
        info.add_metric([s.name, s.info.msg_type, s.info.crc], 1)
    yield info
    for name, kind, text, get in _RING_METRICS:
        fam = _family(kind, name, text, ["ring"])
        for s in read:
            fam.add_metric([s.name], get(s))
        yield fam


_RING_METRICS: List[Tuple[str, str, str, Callable[[_Snap], int]]] = [
    ("pbring_ring_slots", "gauge", "Slots in the ring.",
     lambda s: s.info.slot_count),
    ("pbring_ring_slot_bytes", "gauge",
     "Bytes per slot, its 64-byte header included.",
     lambda s: s.info.slot_size),
    ("pbring_ring_claimed", "counter",
     "Sequences claimed by producers since the ring was created.",
     lambda s: (s.stats.claimed - s.info.seq_base) % 2**64),
    ("pbring_ring_abandoned", "counter",
     "Sequences of dead producers turned into abandoned records.",
     lambda s: s.stats.abandoned),
    ("pbring_ring_producers_reaped", "counter",
     "Dead producer entries freed.", lambda s: s.stats.producers_reaped),
    ("pbring_ring_readers_reaped", "counter",
     "Dead reader entries freed.", lambda s: s.stats.readers_reaped),
]


def _participants(read: List[_Snap]) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(
        "pbring_participants",
        "Producer and reader entries in use, by role and liveness.",
        labels=["ring", "role", "state"])
    for s in read:
        for role in ("producer", "gating", "lossy"):
            for alive in (True, False):
                n = sum(1 for p in s.parts
                        if _role(p) == role and p.alive == alive)
                fam.add_metric([s.name, role, "alive" if alive else "dead"],
                               n)
    return fam


_PART_METRICS: List[Tuple[str, str, str, bool,
                         Callable[[Participant, _Snap], float]]] = [
    ("pbring_producer_up", "gauge",
     "1 while the producer's process is alive, 0 once it died.", False,
     lambda p, s: int(p.alive)),
    ("pbring_producer_committed", "counter",
     "Messages this producer committed (aborts included) since it joined.",
     False, lambda p, s: p.position),
    ("pbring_producer_bytes", "counter",
     "Payload bytes of the messages this producer committed since it "
     "joined.", False, lambda p, s: p.bytes),
    ("pbring_producer_aborts", "counter",
     "Skip records (aborted sequences) this producer published since it "
     "joined.", False, lambda p, s: p.aborts),
    ("pbring_producer_blocked_seconds", "counter",
     "Time this producer waited for space (a full ring) since it joined.",
     False, lambda p, s: p.blocked_ns / 1e9),
    ("pbring_reader_up", "gauge",
     "1 while the reader's process is alive, 0 once it died.", True,
     lambda p, s: int(p.alive)),
    ("pbring_reader_delivered", "counter",
     "Messages this reader released since it joined.", True,
     lambda p, s: p.delivered),
    ("pbring_reader_lost", "counter",
     "Messages overwritten before this lossy reader read them.", True,
     lambda p, s: p.lost),
    ("pbring_reader_abandoned", "counter",
     "Abandoned records (dead producers' sequences) passed over.", True,
     lambda p, s: p.abandoned),
    ("pbring_reader_lag_messages", "gauge",
     "Messages claimed by producers and not yet read by this reader.",
     True, lambda p, s: (s.stats.claimed - p.position) % 2**64),
    ("pbring_reader_bad", "counter",
     "Corrupt slots (bad headers) this reader passed over.", True,
     lambda p, s: p.bad),
    ("pbring_reader_crc_errors", "counter",
     "Messages whose payload failed its CRC32C at this reader.", True,
     lambda p, s: p.crc_errors),
    ("pbring_reader_decode_errors", "counter",
     "Messages this reader's application could not decode.", True,
     lambda p, s: p.decode_errors),
]


def _participant_families(read: List[_Snap]) -> Iterator[Metric]:
    for name, kind, text, reader, get in _PART_METRICS:
        labels = ["ring", "participant"] + (["mode"] if reader else [])
        fam = _family(kind, name, text, labels)
        for s in read:
            for p in s.parts:
                if p.is_reader != reader:
                    continue
                values = [s.name, str(p.index)] + (
                    [_mode(p)] if reader else [])
                fam.add_metric(values, get(p, s))
        yield fam


#: The histogram's le labels: the bucket bounds in seconds as C's "%g"
#: prints them (and client_golang), "1e-07" .. "0.5", "1", then "+Inf".
_LE = tuple("%g" % (ns / 1e9) for ns in _lib.PBR_LATENCY_BOUNDS_NS) + (
    "+Inf",)


def _latency(read: List[_Snap]) -> HistogramMetricFamily:
    """Each reader's commit-to-receive histogram (format 1.2 rings, readers
    whose metrics block is their own): its 23 buckets are not cumulative,
    the last counting what is above 1 s, so +Inf and _count are their
    sum."""
    fam = HistogramMetricFamily(
        "pbring_reader_latency_seconds",
        "Commit-to-receive latency of the messages this reader received "
        "(readers that record it; format 1.2 rings).",
        labels=["ring", "participant", "mode"])
    for s in read:
        for p in s.parts:
            if not (p.is_reader and p.has_latency):
                continue
            cum = 0
            buckets: List[Tuple[str, float]] = []
            for le, n in zip(_LE, p.latency):
                cum += n
                buckets.append((le, cum))
            fam.add_metric([s.name, str(p.index), _mode(p)], buckets,
                           p.latency_sum_ns / 1e9)
    return fam
