# SPDX-License-Identifier: MIT
"""Rings (C's shm/): creating, attaching, describing and removing a ring,
its counters, participants and reclaim. Producers are in
:mod:`pbring.producer`, readers in :mod:`pbring.reader`, the protobuf glue
in :mod:`pbring.codec`, what they share (slot memory, handles, waits) in
:mod:`pbring._shm`; the names they export are importable from here too.
"""
from __future__ import annotations

import ctypes
import errno
import os
import time
import weakref
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Type, Union

from google.protobuf.message import Message

from . import _lib
from . import codec as _codec
from . import schema as _schema
from ._shm import DEFAULT as DEFAULT
from ._shm import Buffer as Buffer
from ._shm import Seconds as Seconds
from ._shm import _Handle, _ns, _Region
from .codec import crc32c
from .errors import Closed, InvalidArgument, ViewInUse, WrongType, error_for
from .producer import Producer
from .reader import M as M
from .reader import Reader, ReaderStats, SlotInfo

__all__ = [
    "Ring", "RingInfo", "RingStats", "Participant", "Producer", "Reader",
    "ReaderStats", "SlotInfo", "unlink", "list_rings", "crc32c",
    "version", "LATENCY_BOUNDS_NS",
]


def version() -> str:
    """libpbring's version string."""
    return str(_lib.pbr_version().decode())


def unlink(name: str, missing_ok: bool = False) -> None:
    """Remove ring @name. Processes that have it mapped keep their mapping."""
    rc = _lib.pbr_ring_unlink(name.encode())
    if rc and not (missing_ok and rc == -2):
        raise error_for(rc, name, "unlink")


def list_rings() -> List[str]:
    """Names of the rings in /dev/shm."""
    try:
        names = os.listdir("/dev/shm")  # nosec B108 # where rings live
    except OSError:
        return []
    return sorted(n[len("pbring."):] for n in names
                  if n.startswith("pbring."))


# --------------------------------------------------------------------------
# Arguments of create


def _bad(name: str, msg: str) -> InvalidArgument:
    return InvalidArgument(errno.EINVAL, name, "create", message=msg)


def _check_create(name: str, slots: Any, slot_size: Any,
                  max_producers: Any, max_readers: Any, mode: Any,
                  seq_base: Any) -> None:
    """What the C library would refuse with a bare EINVAL (or what ctypes
    would silently truncate to 32 bits), refused here with the reason, in
    the C command's words."""
    if not isinstance(name, str) or _lib.pbr_name_check(
            name.encode("utf-8", "surrogateescape")):
        raise _bad(str(name), f"invalid ring name {name!r} (use 1-63 of "
                              "[A-Za-z0-9_.-])")

    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not whole(slots) or not 2 <= slots <= 1 << 24 or slots & (slots - 1):
        raise _bad(name, f"slots: {slots!r} is not a power of two in "
                         "2..16777216")
    if not whole(slot_size) or not 128 <= slot_size <= 1 << 30 or \
            slot_size % 128:
        raise _bad(name, f"slot_size: {slot_size!r} is not a multiple of "
                         "128 in 128..1073741824")
    for what, v in (("max_producers", max_producers),
                    ("max_readers", max_readers)):
        if v is not None and (not whole(v) or not 1 <= v <= 1024):
            raise _bad(name, f"{what}: {v!r} is not in 1..1024")
    if not whole(mode) or not 0 <= mode <= 0o777 or mode & 0o002:
        raise _bad(name, f"mode: {mode!r} is not an octal mode without "
                         "world-write")
    if not whole(seq_base) or not 0 <= seq_base < 1 << 64:
        raise _bad(name, f"seq_base: {seq_base!r} is not in 0..2^64-1")


#: Upper bounds (ns) of the reader latency buckets 0..21 (FORMAT.md §5.5);
#: bucket 22 counts what is above the last, 1 s
LATENCY_BOUNDS_NS: Tuple[int, ...] = _lib.PBR_LATENCY_BOUNDS_NS

#: The CRC policies by the names ``pbring stat`` prints (``crc NAME``).
_CRC_NAMES = {_lib.PBR_CRC_FULL: "full", _lib.PBR_CRC_NONE: "none",
              _lib.PBR_CRC_UPTO: "upto"}


def _crc_policy(name: str, crc: Any) -> Tuple[int, int]:
    """Ring.create's @crc as (pbr_create_opts.crc, .crc_limit), as the C
    command's ``create --crc`` reads it: "full", "none", or a byte count
    (payloads of at most that many bytes get a CRC)."""
    if isinstance(crc, str) and crc in ("full", "none"):
        return (_lib.PBR_CRC_FULL if crc == "full" else _lib.PBR_CRC_NONE), 0
    if isinstance(crc, int) and not isinstance(crc, bool) and \
            0 <= crc <= 0xFFFFFFFF:
        return _lib.PBR_CRC_UPTO, crc
    raise _bad(name, f"crc: {crc!r} is not full, none or a byte count in "
                     "0..4294967295")


# --------------------------------------------------------------------------
# Descriptions


@dataclass(frozen=True)
class RingInfo:
    """A ring's fixed properties, as validated at attach."""
    name: str
    msg_type: str           #: protobuf full name, "" for an untyped ring
    format_major: int
    format_minor: int
    ring_flags: int
    slot_count: int
    slot_size: int
    payload_cap: int        #: largest payload a slot holds
    max_producers: int
    max_readers: int
    total_size: int
    seq_base: int
    schema_hash: int
    created_ns: int
    schema: bytes           #: serialized FileDescriptorSet, b"" if none
    creator_uid: int
    creator_pid: int
    #: which payloads producers checksum (format 1.1, FORMAT.md §6.2), by
    #: the names ``pbring stat`` prints: "full" (every one), "none", or
    #: "upto" (those of at most crc_limit bytes). A policy the library does
    #: not know reads as "full"
    crc: str = "full"
    crc_limit: int = 0      #: "upto": the largest payload with a CRC; else 0
    #: the superblock's incompatible feature bits (format 1.3: bit 0,
    #: durable readers)
    features_incompat: int = 0

    @property
    def single_producer(self) -> bool:
        return bool(self.ring_flags & _lib.PBR_CREATE_SINGLE_PRODUCER)

    @property
    def durable_readers(self) -> bool:
        """The ring allows durable readers (``Ring.create(...,
        durable_readers=True)``, format 1.3)."""
        return bool(self.features_incompat &
                    _lib.PBR_FEATURE_DURABLE_READERS)

    @property
    def typed(self) -> bool:
        return bool(self.msg_type)


@dataclass(frozen=True)
class RingStats:
    claimed: int            #: next sequence a producer will claim
    abandoned: int          #: slots recovered from dead producers
    producers_reaped: int
    readers_reaped: int


@dataclass(frozen=True)
class Participant:
    index: int
    is_reader: bool
    alive: bool
    flags: int              #: readers: 1 gating, 2 lossy
    pid: int
    position: int           #: reader cursor, or producer's committed count
    pending: int
    delivered: int
    lost: int
    abandoned: int
    #: producers (format 1.1; 0 from a 1.0 producer): payload bytes
    #: committed, skip records published, nanoseconds waited for space
    bytes: int = 0
    aborts: int = 0
    blocked_ns: int = 0
    #: readers (format 1.2; 0 from an earlier reader): corrupt slots passed
    #: over, payloads that failed their CRC32C (``Reader.verify()``,
    #: ``recv()``), payloads the application could not decode
    #: (``Reader.reject()``, ``recv()``)
    bad: int = 0
    crc_errors: int = 0
    decode_errors: int = 0
    #: readers that record latency (``Reader(latency=True)``, the consume
    #: commands; format 1.2 rings, FORMAT.md §5.5) have has_latency and
    #: their commit-to-receive histogram, all 0 otherwise. Its 23
    #: buckets are not cumulative: bucket i < 22 counts latencies up to
    #: LATENCY_BOUNDS_NS[i] (above the previous bound), bucket 22 those
    #: above 1 s; the sum caps each latency at 2^40 ns
    has_latency: bool = False
    latency_sum_ns: int = 0
    latency: Tuple[int, ...] = (0,) * _lib.PBR_LATENCY_BUCKETS
    #: durable readers (format 1.3, ``Reader(durable=NAME)``): its name
    #: ("" if the entry's is malformed), and detached while no process
    #: owns it (it still holds producers back, FORMAT.md §9.6)
    durable: bool = False
    detached: bool = False
    name: str = ""

    @property
    def gating(self) -> bool:
        return self.is_reader and bool(self.flags & _lib.PBR_READER_GATING)

    @property
    def latency_count(self) -> int:
        """Latencies observed: the sum of the buckets."""
        return sum(self.latency)


def _participant(p: _lib.ParticipantC) -> Participant:
    return Participant(
        p.index, bool(p.is_reader), bool(p.alive), p.flags, p.pid,
        p.position, p.pending, p.delivered, p.lost, p.abandoned, p.bytes,
        p.aborts, p.blocked_ns, p.bad, p.crc_errors, p.decode_errors,
        bool(p.has_latency), p.latency_sum_ns, tuple(p.latency),
        bool(p.durable), bool(p.detached),
        p.name.decode("ascii", "replace"))


# --------------------------------------------------------------------------
# Rings


class Ring:
    """A mapping of one ring. Use :meth:`create` or :meth:`attach`; both
    return a context manager that detaches on exit (the ring itself stays
    until :meth:`unlink`)."""

    def __init__(self, handle: int, name: str,
                 read_only: bool = False) -> None:
        # Private: use Ring.create() or Ring.attach().
        self._h: Optional[int] = handle
        self._pid = os.getpid()
        self.name = name
        self._read_only = read_only
        self._children: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._handles: "set[_Handle]" = set()
        self._regions: "weakref.WeakSet[_Region]" = weakref.WeakSet()
        ci = _lib.RingInfoC()
        _lib.pbr_ring_info(handle, ctypes.byref(ci))
        self._info = RingInfo(
            name=ci.name.decode("utf-8", "replace"),
            msg_type=ci.msg_type.decode("utf-8", "replace"),
            format_major=ci.format_major, format_minor=ci.format_minor,
            ring_flags=ci.ring_flags, slot_count=ci.slot_count,
            slot_size=ci.slot_size, payload_cap=ci.payload_cap,
            max_producers=ci.max_producers, max_readers=ci.max_readers,
            total_size=ci.total_size, seq_base=ci.seq_base,
            schema_hash=ci.schema_hash, created_ns=ci.created_ns,
            schema=(ctypes.string_at(ci.schema, ci.schema_len)
                    if ci.schema_len else b""),
            creator_uid=ci.creator_uid, creator_pid=ci.creator_pid,
            crc=_CRC_NAMES.get(ci.crc, "full"), crc_limit=ci.crc_limit,
            features_incompat=ci.features_incompat)
        self._msg_class: Optional[Type[Message]] = None

    # ---- construction

    @classmethod
    def create(cls, name: str, *, slots: int = 1024, slot_size: int = 1024,
               schema: Any = None, msg_type: Optional[str] = None,
               mode: int = 0o600, max_producers: Optional[int] = None,
               max_readers: Optional[int] = None,
               single_producer: bool = False, seq_base: int = 0,
               crc: Union[str, int] = "full",
               durable_readers: bool = False) -> "Ring":
        """Create ring @name exclusively (RingExists if the name is taken)
        and map it.

        @slots is a power of two; @slot_size counts the 64-byte slot header
        and is a multiple of 128. @schema says what the slots carry:

        - None: raw bytes (an untyped ring), unless @msg_type is given;
        - ``"demo"``: pbring.demo.v1.DeviceEvent, with the C library's own
          descriptor set (so its hash matches the C and Go demo tools);
        - a generated message class (or instance, or Descriptor): its
          FileDescriptorSet, with its imports; @msg_type defaults to its
          full name;
        - bytes: a serialized FileDescriptorSet; @msg_type names the
          message.

        @crc is the ring's CRC policy, which payloads every producer (in
        any language) checksums, as ``pbring create --crc``: ``"full"``
        (every one, the default), ``"none"``, or a byte count: payloads of
        at most that many bytes (e.g. 4096: small messages checked, big
        ones not read twice). Readers verify whatever carries a CRC;
        without one they still see only whole messages.

        @durable_readers allows durable readers (``Reader(durable=NAME)``,
        format 1.3, ``pbring create --durable-readers``); libraries of
        format 1.2 and earlier refuse such a ring.
        """
        _check_create(name, slots, slot_size, max_producers, max_readers,
                      mode, seq_base)
        crc_policy, crc_limit = _crc_policy(name, crc)
        fds, msg_type = _codec.create_schema(schema, msg_type)
        o = _lib.CreateOpts()
        o.slot_count = slots
        o.slot_size = slot_size
        o.max_producers = max_producers or 0  # 0: the library's default
        o.max_readers = max_readers or 0      # (8; 1 producer if single)
        o.mode = mode
        o.flags = ((_lib.PBR_CREATE_SINGLE_PRODUCER if single_producer
                    else 0) |
                   (_lib.PBR_CREATE_DURABLE_READERS if durable_readers
                    else 0))
        o.seq_base = seq_base
        o.crc = crc_policy
        o.crc_limit = crc_limit
        mt = msg_type.encode() if msg_type else None
        o.msg_type = mt
        fbuf = ctypes.create_string_buffer(fds, len(fds)) if fds else None
        o.schema = ctypes.cast(fbuf, ctypes.c_void_p) if fbuf else None
        o.schema_len = len(fds)
        o.schema_hash = _schema.schema_hash(fds)
        h = ctypes.c_void_p()
        rc = _lib.pbr_ring_create(name.encode(), ctypes.byref(o),
                                  ctypes.byref(h))
        if rc:
            raise error_for(rc, name, "create")
        return cls(h.value or 0, name)

    @classmethod
    def attach(cls, name: str, *, timeout: float = 1.0,
               any_owner: bool = False, read_only: bool = False) -> "Ring":
        """Map existing ring @name (RingNotFound if there is none), waiting
        up to @timeout seconds for one still being created.

        @any_owner accepts a ring owned by another user (see SECURITY.md).
        @read_only opens the ring for reading only and maps it read-only
        (FORMAT.md §9.5), so read permission is enough (a ring created
        with ``mode=0o640`` is readable by its group); PermissionDenied
        then means this process may not even read it. Nothing is written
        to the ring, by the attach or by anything done through this
        mapping: the only readers it can open are taps
        (``Reader(ring, tap=True)``); a producer, any other reader and
        :meth:`reclaim` raise :class:`~pbring.errors.ReadOnly`. Looking
        works as on any ring (``info``, :meth:`stats`,
        :meth:`participants`, :meth:`check`, :meth:`check_type`). A ring
        of another owner still needs @any_owner (a tap writes nothing, so
        accepting one is safe)."""
        o = _lib.AttachOpts()
        o.timeout_ns = max(1, _ns(timeout)) if timeout is not None else 0
        o.flags = ((_lib.PBR_ATTACH_ANY_OWNER if any_owner else 0) |
                   (_lib.PBR_ATTACH_READONLY if read_only else 0))
        h = ctypes.c_void_p()
        rc = -errno.EINTR
        while rc == -errno.EINTR:  # a signal: its handler runs, then retry
            # bytes from argv come as surrogates: C refuses the name (EINVAL)
            rc = _lib.pbr_ring_attach(name.encode("utf-8", "surrogateescape"),
                                      ctypes.byref(o),
                                      ctypes.byref(h))
        if rc:
            raise error_for(rc, name, "attach")
        return cls(h.value or 0, name, read_only=read_only)

    # ---- lifetime

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise Closed(errno.EBADF, self.name, message="ring is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._h is None

    @property
    def read_only(self) -> bool:
        """True if attached with ``read_only=True``: mapped read-only, only
        tap readers work on it."""
        return self._read_only

    def close(self) -> None:
        """Close this ring's producers and readers, then unmap it. Raises
        ViewInUse (and stays mapped) while a view of its slots is alive."""
        if self._h is None:
            return
        if self._pid != os.getpid():  # a forked child: see _Handle.forked
            self._h = None
            for box in self._handles:
                box.h = None
            return
        for child in list(self._children):
            child.close()
        for region in list(self._regions):
            if region.in_use():
                raise ViewInUse(errno.EBUSY, self.name, "detach", message=(
                    "a memoryview of a slot is still alive; release it "
                    "before detaching"))
        for box in self._handles:
            box.h = None  # closed by the detach
        self._handles.clear()
        h, self._h = self._h, None
        _lib.pbr_ring_detach(h)

    detach = close

    def __enter__(self) -> "Ring":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Views keep the ring alive (see _Region), so by now none exists.
        try:
            if self._h is not None and self._pid == os.getpid():
                for box in self._handles:
                    box.h = None  # closed by the detach
                h, self._h = self._h, None
                _lib.pbr_ring_detach(h)
        except Exception:  # nosec B110 # __del__, maybe at interpreter exit
            pass

    def __repr__(self) -> str:
        state = "closed" if self._h is None else (
            f"{self._info.slot_count}x{self._info.slot_size}"
            f"{' read-only' if self._read_only else ''}")
        return (f"<pbring.Ring {self.name!r} {state} "
                f"{self._info.msg_type or 'raw bytes'}>")

    def unlink(self) -> None:
        """Remove this ring's name (this mapping stays usable)."""
        unlink(self.name)

    # ---- properties

    @property
    def info(self) -> RingInfo:
        return self._info

    @property
    def msg_type(self) -> str:
        return self._info.msg_type

    @property
    def message_class(self) -> Type[Message]:
        """The ring's message class, built from the schema it carries (no
        generated code needed)."""
        if self._msg_class is None:
            self._msg_class = _codec.ring_message_class(self._info, self.name)
        return self._msg_class

    def stats(self) -> RingStats:
        st = _lib.RingStatsC()
        _lib.pbr_ring_stats(self._handle(), ctypes.byref(st))
        return RingStats(st.claimed, st.abandoned, st.producers_reaped,
                         st.readers_reaped)

    def participants(self) -> List[Participant]:
        """Active producer and reader entries (producers first)."""
        h = self._handle()
        cap = 64
        while True:
            arr = (_lib.ParticipantC * cap)()
            n = _lib.pbr_ring_participants(h, arr, cap)
            if n < 0:
                raise error_for(n, self.name, "participants")
            if n <= cap:
                break
            cap = n + 16
        return [_participant(p) for p in arr[:n]]

    def interrupt(self) -> None:
        """Make every wait on this ring, in any thread, raise
        :class:`Interrupted` at once, and every later one without waiting
        (sticky: it is for shutting down). Calls that do not wait still
        work. Safe to call from a signal handler or another thread.
        KeyboardInterrupt needs none of this: waits return to Python
        often enough for it to be raised in the waiting (main) thread."""
        _lib.pbr_ring_interrupt(self._handle())

    @property
    def interrupted(self) -> bool:
        """True once :meth:`interrupt` has been called."""
        h = self._h
        return h is not None and bool(_lib.pbr_ring_interrupted(h))

    def check(self) -> None:
        """Raise :class:`RingRemoved` if the ring was removed while mapped
        here (even if a new ring took its name since), IncompatibleRing
        (EUCLEAN) if it was shrunk under the mapping. Waits check this on
        their own about every 100 ms."""
        rc = _lib.pbr_ring_check(self._handle())
        if rc:
            raise error_for(rc, self.name, "check")

    def last_commit(self) -> Optional[Tuple[int, int]]:
        """The newest message still in the ring that carries a timestamp,
        as (seq, timestamp_ns), its timestamp on the clock of
        ``time.monotonic_ns()`` (CLOCK_MONOTONIC); None if there is none
        among the last min(slot_count, 1024) sequences (nothing sent yet,
        or sent without timestamps). Reads only: works read-only."""
        seq, ts = ctypes.c_uint64(), ctypes.c_uint64()
        rc = _lib.pbr_ring_last_commit(self._handle(), ctypes.byref(seq),
                                       ctypes.byref(ts))
        if rc == -errno.ENODATA:
            return None
        if rc:
            raise error_for(rc, self.name, "last_commit")
        return seq.value, ts.value

    def has_gating_reader(self) -> bool:
        """A live gating reader, or a durable one (detached too: what is
        sent is kept for it)."""
        return any(p.gating and (p.alive or p.durable)
                   for p in self.participants())

    def wait_gating_reader(self, timeout: Seconds = 10.0) -> bool:
        """Wait up to @timeout seconds for a live gating reader; True if
        one is there."""
        until = None if timeout is None else time.monotonic() + timeout
        while not self.has_gating_reader():
            if self.interrupted:
                raise error_for(-errno.EINTR, self.name, "wait")
            self.check()
            if until is not None and time.monotonic() >= until:
                return False
            time.sleep(0.005)
        return True

    def reclaim(self) -> int:
        """Reclaim entries of dead participants; returns how many.
        ReadOnly on a ring attached read-only (reclaiming writes)."""
        rc = _lib.pbr_ring_reclaim(self._handle())
        if rc < 0:
            raise error_for(rc, self.name, "reclaim")
        return int(rc)

    def drop_reader(self, name: str) -> None:
        """Remove the detached durable reader @name (FORMAT.md §9.6): it
        stops holding producers back. RingNotFound (ENOENT) if there is
        none, Busy if its owner is alive, IncompatibleRing if the ring has
        no durable readers, InvalidArgument for a bad name."""
        rc = _lib.pbr_ring_drop_reader(self._handle(),
                                       name.encode("utf-8", "replace"))
        if rc == -errno.ENOENT:
            raise error_for(rc, self.name, "drop reader",
                            message=f"no durable reader {name}")
        if rc == -errno.EBUSY:
            raise error_for(rc, self.name, "drop reader", message=(
                f"durable reader {name} is in use by a live process"))
        if rc:
            raise error_for(rc, self.name, "drop reader")

    def check_type(self, msg_type: str, schema_hash: int = 0) -> None:
        """Raise WrongType unless the ring carries @msg_type."""
        rc = _lib.pbr_ring_check_type(self._handle(), msg_type.encode(),
                                      schema_hash)
        if rc:
            raise WrongType(rc, self.name, message=(
                f"ring holds {self._info.msg_type or 'raw bytes'}, "
                f"not {msg_type}"))

    def producer(self, **kw: Any) -> "Producer":
        """A new :class:`Producer` on this ring (ReadOnly on a ring
        attached read-only)."""
        return Producer(self, **kw)

    def reader(self, **kw: Any) -> "Reader":
        """A new :class:`Reader` on this ring (``tap=True``: a tap, the
        only reader a ring attached read-only allows)."""
        return Reader(self, **kw)
