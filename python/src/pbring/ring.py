# SPDX-License-Identifier: MIT
"""Rings, producers and readers: a thin, Pythonic layer over libpbring.

Memory safety. Slot memory is handed out as memoryviews of a ctypes array
that covers the ring's slot region (an "exporter" per producer or reader,
which keeps the ring, and so its mapping, alive). A view is released
(``memoryview.release()``) when its slot is: any later use raises
``ValueError: operation forbidden on released memoryview object``. A view
the caller derived from it (a slice, ``memoryview(view)``, a NumPy array)
would outlive that, so before a slot goes back to the producers, the
exporter's reference count proves that no such view is left; if one is,
the slot is kept (it is never recycled under a live view) and
:class:`~pbring.errors.ViewInUse` is raised. The same check guards a
producer's reservation and the unmapping of the ring. (The reader parses
through a second exporter of its own, whose views never leave it.)

Every atomic operation and wait is libpbring's; the hot paths (peek_batch,
release, reserve, commit, CRC32C) call it without ctypes argument
conversion, with ready-made ctypes objects.
"""
from __future__ import annotations

import ctypes
import errno
import os
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type, TypeVar, Union, cast, overload

from google.protobuf.message import DecodeError, Message

from . import _lib
from . import schema as _schema
from .errors import (
    EMEDIUMTYPE,
    Busy,
    Closed,
    Corrupt,
    InvalidArgument,
    MessageTooLarge,
    RingEmpty,
    RingFull,
    Stale,
    ViewInUse,
    WrongType,
    error_for,
)

__all__ = [
    "Ring", "RingInfo", "RingStats", "Participant", "Producer", "Reader",
    "ReaderStats", "SlotInfo", "unlink", "list_rings", "crc32c",
    "version",
]

M = TypeVar("M", bound=Message)
Buffer = Union[bytes, bytearray, memoryview]
Seconds = Optional[float]

_ETIMEDOUT = errno.ETIMEDOUT
_EAGAIN = errno.EAGAIN
_EBADMSG = errno.EBADMSG
_ESTALE = errno.ESTALE
_EMSGSIZE = errno.EMSGSIZE

# Longest single wait inside C: waits longer than this are done in steps, so
# that signal handlers (Ctrl-C) run promptly. The library's waits resume
# where they left off (a claimed sequence stays claimed, a reader's cursor
# stays put), so stepping changes nothing else.
_WAIT_STEP_NS = 100_000_000

_WAITS = {"block": _lib.PBR_WAIT_BLOCK, "spin": _lib.PBR_WAIT_SPIN,
          "yield": _lib.PBR_WAIT_YIELD}


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


def _ns(timeout: Seconds) -> int:
    """Seconds (None: no limit) to the library's nanoseconds (< 0: none)."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError(f"timeout must be >= 0 or None, not {timeout}")
    return int(timeout * 1e9)


def _wait_mode(wait: str) -> int:
    try:
        return _WAITS[wait]
    except KeyError:
        raise ValueError(f"wait must be one of {sorted(_WAITS)}, "
                         f"not {wait!r}") from None


def version() -> str:
    """libpbring's version string."""
    return str(_lib.pbr_version().decode())


def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC32C (Castagnoli) of @data, continuing from @crc, by the C
    library's ``pbr_crc32c()``: ``crc32c(b"123456789") == 0xE3069283``."""
    if not isinstance(data, bytes):
        data = bytes(data)
    return int(_lib.pbr_crc32c(crc, data, len(data)))


def unlink(name: str, missing_ok: bool = False) -> None:
    """Remove ring @name. Processes that have it mapped keep their mapping."""
    rc = _lib.pbr_ring_unlink(name.encode())
    if rc and not (missing_ok and rc == -2):
        raise error_for(rc, name, "unlink")


def list_rings() -> List[str]:
    """Names of the rings in /dev/shm."""
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return []
    return sorted(n[len("pbring."):] for n in names
                  if n.startswith("pbring."))


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

    @property
    def single_producer(self) -> bool:
        return bool(self.ring_flags & _lib.PBR_CREATE_SINGLE_PRODUCER)

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

    @property
    def gating(self) -> bool:
        return self.is_reader and bool(self.flags & _lib.PBR_READER_GATING)


@dataclass(frozen=True)
class ReaderStats:
    cursor: int             #: next sequence to read
    delivered: int          #: messages released
    lost: int               #: lossy: overwritten before they were read
    abandoned: int          #: slots of dead producers passed over
    bad: int                #: corrupt slots passed over
    #: join backlog (start="oldest") overwritten before it was read: never
    #: delivered, not a loss of the stream (FORMAT.md §9.1)
    missed: int = 0


@dataclass(frozen=True)
class SlotInfo:
    """The header of a message as the reader found it."""
    seq: int
    producer: int
    flags: int
    timestamp_ns: int
    crc32c: int
    length: int

    @property
    def has_crc(self) -> bool:
        return bool(self.flags & _lib.PBR_SLOT_F_CRC)


# --------------------------------------------------------------------------
# Slot memory


class _Region:
    """The ring's slot region as a buffer exporter, for one producer or
    reader. Views are slices of a memoryview of it; the exporter's
    reference count tells whether any of them (or anything derived from
    them) is still alive. The array keeps the ring alive, so the mapping
    outlives every view."""

    __slots__ = ("array", "base", "size", "baseline", "__weakref__")

    def __init__(self, ring: "Ring", base: int, size: int) -> None:
        t: Any = type("_SlotRegion", (ctypes.c_ubyte * size,), {})
        arr = t.from_address(base)
        arr._ring = ring  # the mapping must outlive every view, and so
        arr._region = self  # must the ring's record of this region
        self.array = arr
        self.base = base
        self.size = size
        del arr
        self.baseline = sys.getrefcount(self.array)

    def view(self, readonly: bool) -> memoryview:
        """A memoryview of the whole region with its own managed buffer."""
        m = memoryview(self.array)
        v = m.cast("B")
        m.release()
        if readonly:
            r = v.toreadonly()
            v.release()
            return r
        return v

    def in_use(self) -> bool:
        """Is any view of this region still alive?"""
        return sys.getrefcount(self.array) > self.baseline


def _slot_region(ring: "Ring", data: int, seq: int) -> _Region:
    """The region of @ring's slots, located from one slot's payload address
    and sequence (slot of s at slots_off + (s & (slot_count - 1)) *
    slot_size, payload at +64: docs/FORMAT.md 6)."""
    info = ring.info
    idx = seq & (info.slot_count - 1)
    base = data - _lib.PBR_SLOT_HDR_SIZE - idx * info.slot_size
    return _Region(ring, base, info.slot_count * info.slot_size)


class _Handle:
    """A producer's or reader's C handle, shared with its ring: whichever
    goes first (even in a garbage cycle) leaves the other a valid state."""

    __slots__ = ("h", "close_fn", "pid", "__weakref__")

    def __init__(self, h: int, close_fn: Any) -> None:
        self.h: Optional[int] = h
        self.close_fn = close_fn
        self.pid = os.getpid()

    def forked(self) -> bool:
        """In a child forked after the open: the entry and its lock belong
        to the parent, so the child must not touch them (closing would free
        the parent's entry). The handle is merely forgotten."""
        if self.pid == os.getpid():
            return False
        self.h = None
        return True


# --------------------------------------------------------------------------
# Rings


class Ring:
    """A mapping of one ring. Use :meth:`create` or :meth:`attach`; both
    return a context manager that detaches on exit (the ring itself stays
    until :meth:`unlink`)."""

    def __init__(self, handle: int, name: str) -> None:
        # Private: use Ring.create() or Ring.attach().
        self._h: Optional[int] = handle
        self._pid = os.getpid()
        self.name = name
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
            creator_uid=ci.creator_uid, creator_pid=ci.creator_pid)
        self._msg_class: Optional[Type[Message]] = None

    # ---- construction

    @classmethod
    def create(cls, name: str, *, slots: int = 1024, slot_size: int = 1024,
               schema: Any = None, msg_type: Optional[str] = None,
               mode: int = 0o600, max_producers: Optional[int] = None,
               max_readers: Optional[int] = None,
               single_producer: bool = False, seq_base: int = 0) -> "Ring":
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
        """
        fds = b""
        if isinstance(schema, str):
            if schema != "demo":
                raise ValueError(f"schema: unknown name {schema!r} (demo, "
                                 "a message class, or FileDescriptorSet "
                                 "bytes)")
            fds = _schema.demo_schema()
            msg_type = msg_type or _schema.DEMO_MSG_TYPE
        elif isinstance(schema, (bytes, bytearray, memoryview)):
            fds = bytes(schema)
            if not msg_type:
                raise ValueError("schema given as bytes: msg_type must name "
                                 "the message")
        elif schema is not None:
            desc = getattr(schema, "DESCRIPTOR", schema)
            if not hasattr(desc, "full_name") or not hasattr(desc, "file"):
                raise TypeError("schema must be None, 'demo', bytes or a "
                                f"protobuf message class, not {schema!r}")
            fds = _schema.file_descriptor_set(desc)
            msg_type = msg_type or desc.full_name
        o = _lib.CreateOpts()
        o.slot_count = slots
        o.slot_size = slot_size
        o.max_producers = max_producers or 0  # 0: the library's default
        o.max_readers = max_readers or 0      # (8; 1 producer if single)
        o.mode = mode
        o.flags = _lib.PBR_CREATE_SINGLE_PRODUCER if single_producer else 0
        o.seq_base = seq_base
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
               any_owner: bool = False) -> "Ring":
        """Map existing ring @name (RingNotFound if there is none), waiting
        up to @timeout seconds for one still being created."""
        o = _lib.AttachOpts()
        o.timeout_ns = max(1, _ns(timeout)) if timeout is not None else 0
        o.flags = _lib.PBR_ATTACH_ANY_OWNER if any_owner else 0
        h = ctypes.c_void_p()
        rc = _lib.pbr_ring_attach(name.encode(), ctypes.byref(o),
                                  ctypes.byref(h))
        if rc:
            raise error_for(rc, name, "attach")
        return cls(h.value or 0, name)

    # ---- lifetime

    def _handle(self) -> int:
        h = self._h
        if h is None:
            raise Closed(errno.EBADF, self.name, message="ring is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._h is None

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
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._h is None else (
            f"{self._info.slot_count}x{self._info.slot_size}")
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
            info = self._info
            if not info.msg_type:
                raise InvalidArgument(errno.EINVAL, self.name, message=(
                    "untyped ring: it carries no message type"))
            if not info.schema:
                raise InvalidArgument(errno.EINVAL, self.name, message=(
                    f"ring carries {info.msg_type} but no schema"))
            try:
                self._msg_class = _schema.message_class(info.schema,
                                                        info.msg_type)
            except Exception as e:
                raise Corrupt(_EBADMSG, self.name, message=(
                    f"cannot build {info.msg_type} from the ring's "
                    f"schema: {e}")) from e
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
        return [Participant(p.index, bool(p.is_reader), bool(p.alive),
                            p.flags, p.pid, p.position, p.pending,
                            p.delivered, p.lost, p.abandoned)
                for p in arr[:n]]

    def has_gating_reader(self) -> bool:
        return any(p.gating and p.alive for p in self.participants())

    def wait_gating_reader(self, timeout: Seconds = 10.0) -> bool:
        """Wait up to @timeout seconds for a live gating reader; True if
        one is there."""
        until = None if timeout is None else time.monotonic() + timeout
        while not self.has_gating_reader():
            if until is not None and time.monotonic() >= until:
                return False
            time.sleep(0.005)
        return True

    def reclaim(self) -> int:
        """Reclaim entries of dead participants; returns how many."""
        rc = _lib.pbr_ring_reclaim(self._handle())
        if rc < 0:
            raise error_for(rc, self.name, "reclaim")
        return int(rc)

    def check_type(self, msg_type: str, schema_hash: int = 0) -> None:
        """Raise WrongType unless the ring carries @msg_type."""
        rc = _lib.pbr_ring_check_type(self._handle(), msg_type.encode(),
                                      schema_hash)
        if rc:
            raise WrongType(rc, self.name, message=(
                f"ring holds {self._info.msg_type or 'raw bytes'}, "
                f"not {msg_type}"))

    def producer(self, **kw: Any) -> "Producer":
        """A new :class:`Producer` on this ring."""
        return Producer(self, **kw)

    def reader(self, **kw: Any) -> "Reader":
        """A new :class:`Reader` on this ring."""
        return Reader(self, **kw)


# --------------------------------------------------------------------------
# Producers


class _Reservation:
    """The context manager of Producer.reserve()."""

    __slots__ = ("_p", "_n", "_crc", "_view", "_open", "seq")

    def __init__(self, p: "Producer", n: int, crc: bool,
                 view: memoryview) -> None:
        self._p = p
        self._n = n
        self._crc = crc
        self._view = view
        self._open = True
        self.seq: int = p._slot.seq  #: the sequence this slot will carry

    def _release_view(self) -> None:
        p = self._p
        try:
            self._view.release()
        except BufferError as e:
            raise ViewInUse(errno.EBUSY, p.ring.name, "reserve", message=(
                "the slot's memoryview is exported (e.g. to NumPy); drop "
                "that first")) from e
        if p._region is not None and p._region.in_use():
            raise ViewInUse(errno.EBUSY, p.ring.name, "reserve", message=(
                "a memoryview derived from the slot is still alive; drop it "
                "(the slot stays reserved until then)"))

    def commit(self, length: Optional[int] = None) -> int:
        """Publish the slot with @length bytes (default: the reserved
        size), its CRC32C and a CLOCK_MONOTONIC timestamp. Returns its
        sequence number."""
        if not self._open:
            raise InvalidArgument(errno.EINVAL, self._p.ring.name, "commit",
                                  message="reservation is not open")
        n = self._n if length is None else length
        if not 0 <= n <= self._n:
            raise ValueError(f"length {n} outside 0..{self._n}")
        self._release_view()
        p = self._p
        slot = p._slot
        if self._crc:
            slot.flags |= _lib.PBR_SLOT_F_CRC
            slot.crc32c = _lib.pbr_crc32c(0, slot.data, n)
        slot.timestamp_ns = time.monotonic_ns()
        self._open = False
        p._reservation = None
        rc = _lib.pbr_producer_commit(p._handle(), p._slot_addr, n)
        if rc:
            raise error_for(rc, p.ring.name, "commit")
        return self.seq

    def abort(self) -> None:
        """Give the sequence up: readers pass over it."""
        if not self._open:
            return
        self._release_view()
        p = self._p
        self._open = False
        p._reservation = None
        rc = _lib.pbr_producer_abort(p._handle(), p._slot_addr)
        if rc:
            raise error_for(rc, p.ring.name, "abort")

    def __enter__(self) -> memoryview:
        return self._view

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if not self._open:
            return
        if et is None:
            self.commit()
        else:
            self.abort()


class Producer:
    """One producer entry of a ring.

    ``send(msg)`` serializes a protobuf message and copies it once into a
    slot; ``send_bytes(buf)`` copies bytes; ``reserve(n)`` lends the slot
    itself as a writable memoryview. Every message is committed with its
    CRC32C (flag CRC) and a CLOCK_MONOTONIC timestamp, as the C codec does.
    @timeout (seconds, None = no limit) bounds the wait for a free slot
    while a gating reader lags; RingFull when it runs out. A producer is
    used by one thread at a time.
    """

    def __init__(self, ring: Ring, *, wait: str = "block",
                 timeout: Seconds = None, crc: bool = True) -> None:
        self.ring = ring
        self.timeout = timeout
        self.crc = crc
        o = _lib.ProducerOpts()
        o.wait = _wait_mode(wait)
        h = ctypes.c_void_p()
        rc = _lib.pbr_producer_open(ring._handle(), ctypes.byref(o),
                                    ctypes.byref(h))
        if rc:
            raise error_for(rc, ring.name, "open producer")
        self._box = _Handle(h.value or 0, _lib.pbr_producer_close)
        ring._handles.add(self._box)
        self._slot = _lib.SlotC()
        self._slot_addr = ctypes.addressof(self._slot)
        # the hot path reads and writes the slot struct as words, and calls
        # the C functions with ready-made ctypes arguments
        self._sq = (ctypes.c_uint64 * 5).from_buffer(self._slot)
        self._s32 = (ctypes.c_uint32 * 10).from_buffer(self._slot)
        self._slotp = ctypes.c_void_p(self._slot_addr)
        self._hc = ctypes.c_void_p(h.value)
        self._tcache: Dict[int, ctypes.c_int64] = {}
        self._wview: Optional[memoryview] = None  # private, never lent
        self._wbase = 0
        self._cap = ring.info.payload_cap
        self._msg_type = ring.info.msg_type
        self._checked: Optional[type] = None
        self._region: Optional[_Region] = None
        self._reservation: Optional[_Reservation] = None
        self.id = int(_lib.pbr_producer_id(h.value))
        ring._children.add(self)

    def _handle(self) -> int:
        h = self._box.h
        if h is None:
            raise Closed(errno.EBADF, self.ring.name, message="producer is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._box.h is None

    @property
    def payload_cap(self) -> int:
        return self._cap

    def close(self) -> None:
        """Deregister; an open reservation is aborted (ViewInUse, and
        nothing is closed, while a view of it is alive)."""
        box = self._box
        if box.h is None or box.forked():
            return
        if self._reservation is not None:
            self._reservation.abort()
        if self._wview is not None:
            self._wview.release()
            self._wview = None
        h, box.h = box.h, None
        self.ring._handles.discard(box)
        rc = _lib.pbr_producer_close(h)
        if rc:
            raise error_for(rc, self.ring.name, "close producer")

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Not while a reservation is open: a view of it may still exist,
        # and closing would recycle its slot (it stays until exit then).
        try:
            box = self._box
            if box.h is not None and self._reservation is None and \
                    not box.forked():
                h, box.h = box.h, None
                _lib.pbr_producer_close(h)
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<pbring.Producer {self.ring.name!r} id {self.id}>"

    # ---- reserving

    def _reserve(self, timeout: Any) -> int:
        """Reserve the next slot into self._slot, waiting per @timeout.
        Returns the producer's handle."""
        h = self._box.h
        if h is None:
            raise Closed(errno.EBADF, self.ring.name, message="producer is closed")
        t = _ns(self.timeout if timeout is DEFAULT else timeout)
        first = t if 0 <= t <= _WAIT_STEP_NS else _WAIT_STEP_NS
        tc = self._tcache.get(first)
        if tc is None:
            tc = self._tcache[first] = ctypes.c_int64(first)
        rc = _lib.raw_producer_reserve(self._hc, tc, self._slotp)
        if not rc:
            return h
        if rc not in (-_ETIMEDOUT, -_EAGAIN) or 0 <= t <= _WAIT_STEP_NS:
            self._reserve_failed(rc)
        # A long wait, in steps; the claimed sequence (if any) stays ours.
        deadline = None if t < 0 else time.monotonic_ns() + t - first
        while True:
            step = _WAIT_STEP_NS
            if deadline is not None:
                step = max(0, min(step, deadline - time.monotonic_ns()))
            rc = _lib.raw_producer_reserve(self._hc, ctypes.c_int64(step),
                                           self._slotp)
            if not rc:
                return h
            if (rc not in (-_ETIMEDOUT, -_EAGAIN) or
                    (deadline is not None and
                     time.monotonic_ns() >= deadline)):
                self._reserve_failed(rc)

    def _reserve_failed(self, rc: int) -> None:
        if rc in (-_ETIMEDOUT, -_EAGAIN):
            raise RingFull(-rc, self.ring.name, "reserve", message=(
                "ring stayed full for the timeout (is a gating reader "
                "stuck?)"))
        raise error_for(rc, self.ring.name, "reserve")

    def reserve(self, n: Optional[int] = None, *, timeout: Any = DEFAULT,
                crc: Optional[bool] = None) -> _Reservation:
        """Reserve the next slot for @n bytes (default: the whole payload
        capacity): ``with producer.reserve(n) as buf: buf[:] = ...``. The
        writable memoryview is the slot itself. Leaving the block commits
        the n bytes (with CRC32C and timestamp); an exception aborts the
        reservation (readers pass over it). The view is released on exit.
        """
        if self._reservation is not None:
            raise Busy(errno.EINPROGRESS, self.ring.name, "reserve",
                              message="a reservation is already open")
        if n is None:
            n = self._cap
        if not 0 <= n <= self._cap:
            raise MessageTooLarge(_EMSGSIZE, self.ring.name, "reserve",
                                  message=(f"{n} bytes do not fit in a "
                                           f"slot ({self._cap} max)"))
        self._reserve(timeout)
        slot = self._slot
        region = self._region
        if region is None:
            region = self._region = _slot_region(self.ring, slot.data,
                                                 slot.seq)
            self.ring._regions.add(region)
        off = slot.data - region.base
        whole = region.view(readonly=False)
        view = whole[off:off + n]
        whole.release()
        res = _Reservation(self, n, self.crc if crc is None else crc, view)
        self._reservation = res
        return res

    @property
    def reservation(self) -> Optional[_Reservation]:
        """The open reservation, if any."""
        return self._reservation

    # ---- sending

    def send_bytes(self, data: Buffer, *, timeout: Any = DEFAULT) -> int:
        """Copy @data into the next slot and commit it with its CRC32C and
        a CLOCK_MONOTONIC timestamp. Returns the message's sequence."""
        if not isinstance(data, bytes):
            data = bytes(data)
        n = len(data)
        if n > self._cap:
            raise MessageTooLarge(_EMSGSIZE, self.ring.name, "send",
                                  message=(f"{n} bytes do not fit in a slot "
                                           f"({self._cap} max)"))
        if self._reservation is not None:
            raise Busy(errno.EINPROGRESS, self.ring.name, "send",
                              message="a reservation is already open")
        crc = _lib.raw_crc32c(0, data, n) if self.crc else 0
        self._reserve(timeout)
        sq = self._sq
        wv = self._wview
        if wv is None:
            wv = self._locate()
        off = sq[0] - self._wbase  # slot.data
        wv[off:off + n] = data     # the one copy
        if self.crc:
            s32 = self._s32
            s32[3] = _lib.PBR_SLOT_F_CRC  # slot.flags (and reserved)
            s32[6] = crc                  # slot.crc32c
        sq[4] = time.monotonic_ns()       # slot.timestamp_ns
        rc = _lib.raw_producer_commit(self._hc, self._slotp, n)
        if rc:
            raise error_for(rc, self.ring.name, "commit")
        return sq[2]                      # slot.seq

    def _locate(self) -> memoryview:
        region = _slot_region(self.ring, self._slot.data, self._slot.seq)
        self._wbase = region.base
        self._wview = region.view(readonly=False)
        return self._wview

    def send(self, msg: Union[Message, Buffer], *,
             timeout: Any = DEFAULT) -> int:
        """Send a protobuf message (serialized, then copied once into the
        slot) or raw bytes. A message must be of the ring's type (WrongType
        otherwise). Returns its sequence."""
        if isinstance(msg, (bytes, bytearray, memoryview)):
            return self.send_bytes(msg, timeout=timeout)
        cls = type(msg)
        if cls is not self._checked:
            self._check_class(cls)
        return self.send_bytes(msg.SerializeToString(), timeout=timeout)

    def _check_class(self, cls: type) -> None:
        desc = getattr(cls, "DESCRIPTOR", None)
        if desc is None or not hasattr(cls, "SerializeToString"):
            raise TypeError(f"send() takes a protobuf message or bytes, "
                            f"not {cls.__name__}")
        if self._msg_type and desc.full_name != self._msg_type:
            raise WrongType(EMEDIUMTYPE, self.ring.name, "send", message=(
                f"ring holds {self._msg_type}, not {desc.full_name}"))
        self._checked = cls


# --------------------------------------------------------------------------
# Readers


class Reader:
    """One reader entry (a cursor) of a ring.

    Gating by default: producers never overwrite what it has not released.
    ``lossy=True`` never holds producers back; it skips what it missed and
    counts it (``stats().lost``). @start is ``"oldest"`` (the oldest
    message still in the ring) or ``"latest"`` (only what is committed from
    now on). @timeout (seconds; None = no limit, 0 = do not wait) is the
    default for every wait; RingEmpty when it runs out.

    - ``peek()`` returns the next message as a read-only memoryview of the
      slot, valid until ``release()``; ``peek_batch()`` several at once.
    - ``recv()`` returns the next message parsed (of @message_type, by
      default the class built from the ring's schema) and releases it.
    - ``for msg in reader`` receives until the timeout; ``views()`` yields
      the raw payloads, the fastest way through a ring.

    Messages are fetched from C in batches of up to @batch (one call for
    many messages). ``release()`` gives slots back to the producers at once;
    ``recv()`` and ``views()`` give back what they consumed when the batch
    is used up (as the C command does), or at the next ``release()``. A
    lossy reader takes and releases one message at a time.
    A reader is used by one thread at a time; do not interleave a running
    ``views()`` loop with other calls. Waits are done in short steps, so
    Ctrl-C interrupts them.
    """

    def __init__(self, ring: Ring, *, lossy: bool = False,
                 start: str = "oldest", timeout: Seconds = None,
                 wait: str = "block",
                 message_type: Optional[Type[Message]] = None,
                 verify: bool = True, batch: int = 256) -> None:
        if start not in ("oldest", "latest"):
            raise ValueError(f"start must be 'oldest' or 'latest', "
                             f"not {start!r}")
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self.ring = ring
        self.lossy = lossy
        self.timeout = timeout
        #: recv() checks each payload's CRC32C (when it has one) first
        self.verify_crc = verify
        if message_type is not None:
            self._check_class(message_type)
        self.message_type = message_type
        # A lossy reader checks each slot at release (seqlock), so it takes
        # one message at a time.
        self._max = 1 if lossy else batch
        o = _lib.ReaderOpts()
        o.flags = _lib.PBR_READER_LOSSY if lossy else 0
        o.start = (_lib.PBR_START_LATEST if start == "latest"
                   else _lib.PBR_START_OLDEST)
        o.wait = _wait_mode(wait)
        h = ctypes.c_void_p()
        rc = _lib.pbr_reader_open(ring._handle(), ctypes.byref(o),
                                  ctypes.byref(h))
        if rc:
            raise error_for(rc, ring.name, "open reader")
        self._box = _Handle(h.value or 0, _lib.pbr_reader_close)
        ring._handles.add(self._box)
        self._views = (_lib.ViewC * self._max)()
        self._vaddr = ctypes.addressof(self._views)
        # ctypes objects for the argument-less (raw) hot-path calls
        self._hc = ctypes.c_void_p(h.value)
        self._vptr = [ctypes.c_void_p(self._vaddr + i * _lib.VIEW_SIZE)
                      for i in range(self._max)]
        self._maxc = ctypes.c_uint(self._max)
        self._q = (ctypes.c_uint64 * (self._max * _lib.VIEW_U64)).from_buffer(
            self._views)
        # The batch peeked in C: views [_pos, _n) are not consumed yet;
        # _peeked of them, from _pos, are out (peek/peek_batch).
        self._n = 0
        self._pos = 0
        self._peeked = 0
        self._owed = -1      # views(): consumed up to here, not released
        self._handed: List[memoryview] = []  # views given out, unreleased
        # Two exporters over the slots: _region for views handed out (its
        # reference count proves them gone), _pview for the reader's own
        # parsing, never handed out.
        self._region: Any = None   # Optional[_Region], set by _locate()
        self._pview: Any = None    # Optional[memoryview]
        self._pbase = 0
        self._batch_view: Optional[memoryview] = None
        self._active: Optional["weakref.ref[Any]"] = None  # views() running
        self._last = -1      # index of the latest message peeked/received
        self.index = int(_lib.pbr_reader_index(h.value))
        ring._children.add(self)

    def _check_class(self, cls: Type[Message]) -> None:
        mt = self.ring.info.msg_type
        desc = getattr(cls, "DESCRIPTOR", None)
        if desc is None:
            raise TypeError(f"{cls!r} is not a protobuf message class")
        if mt and desc.full_name != mt:
            raise WrongType(EMEDIUMTYPE, self.ring.name, message=(
                f"ring holds {mt}, not {desc.full_name}"))

    # ---- lifetime

    def _handle(self) -> int:
        h = self._box.h
        if h is None:
            raise Closed(errno.EBADF, self.ring.name, message="reader is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._box.h is None

    def close(self) -> None:
        """Deregister (the reader stops gating at once); views still out
        are released. ViewInUse, and nothing is closed, while a view
        derived from one of them is alive."""
        box = self._box
        if box.h is None or box.forked():
            return
        g = self._active() if self._active is not None else None
        if g is not None:
            g.close()  # a views() loop left suspended: end it
        self._invalidate_handed()
        self._drop_batch_view()
        if self._region is not None and self._region.in_use():
            raise ViewInUse(errno.EBUSY, self.ring.name, "close reader", message=(
                "a memoryview derived from a slot is still alive; drop it "
                "before closing the reader"))
        if self._pview is not None:
            self._pview.release()
            self._pview = None
        h, box.h = box.h, None
        self.ring._handles.discard(box)
        self._n = self._pos = self._peeked = 0
        self._owed = -1
        _lib.pbr_reader_close(h)

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Views do not keep the reader alive, only the mapping (see
        # _Region); a view still alive now may see its slot recycled.
        try:
            box = self._box
            if box.h is not None and not box.forked():
                h, box.h = box.h, None
                _lib.pbr_reader_close(h)
        except Exception:
            pass

    def __repr__(self) -> str:
        kind = "lossy" if self.lossy else "gating"
        return f"<pbring.Reader {self.ring.name!r} {kind} #{self.index}>"

    def stats(self) -> ReaderStats:
        st = _lib.ReaderStatsC()
        _lib.pbr_reader_stats(self._handle(), ctypes.byref(st))
        return ReaderStats(st.cursor, st.delivered, st.lost, st.abandoned,
                           st.bad, st.missed)

    # ---- the batch

    def _invalidate_handed(self) -> None:
        handed = self._handed
        while handed:
            try:
                handed[-1].release()
            except BufferError as e:
                raise ViewInUse(errno.EBUSY, self.ring.name, "release", message=(
                    "a slot's memoryview is exported (e.g. to NumPy); drop "
                    "that, or copy the data, before releasing")) from e
            handed.pop()

    def _drop_batch_view(self) -> None:
        bv = self._batch_view
        if bv is not None:
            self._batch_view = None
            bv.release()

    def _leak_check(self) -> None:
        if self._region is not None and self._region.in_use():
            raise ViewInUse(errno.EBUSY, self.ring.name, "release", message=(
                "a memoryview derived from a slot (a slice or memoryview() "
                "of a peeked view) is still alive; drop it, or copy the "
                "data, before releasing"))

    def _c_release(self, i: int) -> None:
        """Release views up to index @i in C."""
        self._handle()
        rc = _lib.raw_reader_release(self._hc, self._vptr[i])
        if rc:
            if rc == -_ESTALE:
                raise Stale(_ESTALE, self.ring.name, "release", seq=self._q[
                    i * _lib.VIEW_U64 + _lib.VIEW_SEQ_U64])
            raise error_for(rc, self.ring.name, "release")

    def _settle(self) -> None:
        """Release what views() consumed, once no view of it is left."""
        if self._owed >= 0:
            self._leak_check()
            i, self._owed = self._owed, -1
            self._c_release(i)

    def _fill(self, timeout: Any) -> int:
        """Make sure the batch has an unconsumed view; returns _n. Raises
        RingEmpty on timeout, Corrupt for a corrupt slot (passed over)."""
        if self._pos < self._n:
            return self._n
        if self._owed >= 0:
            self._settle()
        self._handle()
        t = _ns(self.timeout if timeout is DEFAULT else timeout)
        peek = _lib.raw_reader_peek_batch
        args = (self._hc, self._vptr[0], self._maxc)
        if 0 <= t <= _WAIT_STEP_NS:
            rc = peek(*args, ctypes.c_int64(t))
        else:
            deadline = None if t < 0 else time.monotonic_ns() + t
            while True:
                step = _WAIT_STEP_NS
                if deadline is not None:
                    step = max(0, min(step, deadline - time.monotonic_ns()))
                rc = peek(*args, ctypes.c_int64(step))
                if (rc > 0 or rc not in (-_ETIMEDOUT, -_EAGAIN) or
                        (deadline is not None and
                         time.monotonic_ns() >= deadline)):
                    break
        if rc > 0:
            self._n = rc
            self._pos = 0
            if self._region is None:
                self._locate()
            return int(rc)
        self._n = self._pos = 0
        if rc in (-_ETIMEDOUT, -_EAGAIN):
            raise RingEmpty(-rc, self.ring.name, "peek",
                            message="no message within the timeout")
        if rc == -_EBADMSG:
            raise Corrupt(_EBADMSG, self.ring.name, "peek",
                          seq=self._q[_lib.VIEW_SEQ_U64],
                          message="corrupt slot header (passed over)")
        raise error_for(rc, self.ring.name, "peek")

    def _locate(self) -> None:
        q = self._q
        data, seq = q[_lib.VIEW_DATA_U64], q[_lib.VIEW_SEQ_U64]
        self._region = _slot_region(self.ring, data, seq)
        self.ring._regions.add(self._region)
        private = _slot_region(self.ring, data, seq)
        self._pview = private.view(readonly=True)
        self._pbase = private.base

    def _bounds(self, i: int) -> Tuple[int, int]:
        q = self._q
        k = i * _lib.VIEW_U64
        off = q[k + _lib.VIEW_DATA_U64] - self._pbase
        return off, off + (q[k + 1] & 0xFFFFFFFF)

    def _info_at(self, i: int) -> SlotInfo:
        v = self._views[i]
        return SlotInfo(v.seq, v.producer, v.flags, v.timestamp_ns,
                        v.crc32c, v.len)

    # ---- peek / release

    def _hand_out(self, start: int, end: int) -> List[memoryview]:
        whole = self._region.view(readonly=True)  # a managed buffer of
        try:                                      # their own
            out = []
            for i in range(start, end):
                a, b = self._bounds(i)
                out.append(whole[a:b])
        finally:
            whole.release()
        self._handed.extend(out)
        self._peeked = end - start
        self._last = end - 1
        return out

    def peek(self, timeout: Any = DEFAULT) -> memoryview:
        """The next unreleased message, as a read-only memoryview of its
        slot. A second peek returns the same one. Valid until
        :meth:`release`; using it afterwards raises ValueError."""
        if self._peeked:
            return self._handed[0]
        self._fill(timeout)
        return self._hand_out(self._pos, self._pos + 1)[0]

    def peek_batch(self, max: int = 64,
                   timeout: Any = DEFAULT) -> List[memoryview]:
        """Up to @max consecutive unreleased messages (at least one; waits
        per @timeout for the first), with one C call for many messages.
        :meth:`release` releases them all."""
        if self._peeked:
            self.release()
        self._fill(timeout)
        return self._hand_out(self._pos, min(self._n, self._pos + max))

    @property
    def last(self) -> Optional[SlotInfo]:
        """Header of the latest message peeked or received (seq, producer,
        flags, timestamp_ns, crc32c, length)."""
        if self._last < 0:
            return None
        return self._info_at(self._last)

    def peeked_info(self) -> List[SlotInfo]:
        """Headers of the messages peeked and not yet released."""
        return [self._info_at(i)
                for i in range(self._pos, self._pos + self._peeked)]

    def verify(self) -> None:
        """Check the CRC32C of what is peeked (Corrupt on a mismatch; a
        message stored without CRC passes)."""
        if not self._peeked:
            raise InvalidArgument(errno.EINVAL, self.ring.name, "verify",
                                  message="nothing peeked")
        for i in range(self._pos, self._pos + self._peeked):
            if _lib.pbr_view_verify(self._vaddr + i * _lib.VIEW_SIZE):
                raise Corrupt(_EBADMSG, self.ring.name, "verify",
                              seq=self._views[i].seq,
                              message="CRC32C mismatch")

    def release(self) -> None:
        """Release what was peeked: its views become unusable and the
        producers may reuse the slots at once. ViewInUse (the slots kept)
        while a view derived from them is alive; Stale for a lossy reader
        whose slot was overwritten meanwhile (discard what was read).
        With nothing peeked, it releases at once what recv() consumed."""
        if not self._peeked:
            self._settle()
            return
        self._invalidate_handed()
        self._leak_check()
        i = self._pos + self._peeked - 1
        self._pos = i + 1
        self._peeked = 0
        self._owed = -1
        self._c_release(i)

    # ---- receiving

    def _class(self, message_type: Optional[Type[M]]) -> Type[M]:
        if message_type is None:
            # The reader's own class, or the ring's: M is Message then.
            return cast(Type[M], self.message_type or self.ring.message_class)
        if message_type is not self.message_type:
            self._check_class(message_type)
        return message_type

    @overload
    def recv(self, message_type: None = None, *,
             timeout: Any = DEFAULT) -> Message: ...

    @overload
    def recv(self, message_type: Type[M], *, timeout: Any = DEFAULT) -> M: ...

    def recv(self, message_type: Optional[Type[Any]] = None, *,
             timeout: Any = DEFAULT) -> Any:
        """Receive the next message, parsed straight from its slot (its
        CRC32C checked first when the producer stored one), and release it.
        @message_type defaults to the reader's, else the class built from
        the ring's schema. Corrupt (the slot passed over) for a bad CRC or
        payload; a lossy reader skips what was overwritten while parsed."""
        cls = self._class(message_type)
        if self._peeked:
            self.release()
        q = self._q
        vu = _lib.VIEW_U64
        while True:
            if self._pos >= self._n:
                self._fill(timeout)
            i = self._pos
            self._last = i
            k = i * vu
            w1 = q[k + 1]  # length | producer << 32 | flags << 48
            vp = self._vptr[i]
            err = None
            if self.verify_crc and (w1 >> 48) & _lib.PBR_SLOT_F_CRC and \
                    _lib.raw_view_verify(vp):
                err = Corrupt(_EBADMSG, self.ring.name, "recv",
                              seq=q[k + _lib.VIEW_SEQ_U64],
                              message="CRC32C mismatch")
            else:
                off = q[k] - self._pbase
                v = self._pview[off:off + (w1 & 0xFFFFFFFF)]
                msg = cls()
                try:
                    msg.ParseFromString(v)  # from the slot, no copy
                except DecodeError as e:
                    err = Corrupt(_EBADMSG, self.ring.name, "recv",
                                  seq=q[k + _lib.VIEW_SEQ_U64], message=(
                                      f"cannot decode "
                                      f"{cls.DESCRIPTOR.full_name}: {e}"))
                finally:
                    v.release()
            self._pos = i + 1
            if i + 1 < self._n and not self._unstable(k):
                self._owed = i  # released with the rest of the batch
            else:
                self._owed = -1
                rc = _lib.raw_reader_release(self._hc, vp)
                if rc:
                    if rc == -_ESTALE:
                        continue  # overwritten while parsed: counted as
                        # lost (lossy) or missed (join backlog)
                    raise error_for(rc, self.ring.name, "release")
            if err is not None:
                raise err
            return msg

    def _unstable(self, k: int) -> bool:
        """May the slot of the view at u64 index @k be overwritten while
        held (a lossy reader, or a gating reader's join backlog)? Then it
        is trusted only once its own release has succeeded."""
        w = self._q[k + _lib.VIEW_VFLAGS_U64] >> 32
        return bool(w & _lib.PBR_VIEW_UNSTABLE)

    def recv_bytes(self, timeout: Any = DEFAULT) -> bytes:
        """The next message's payload, copied, and released."""
        if self._peeked:
            self.release()
        while True:
            self._fill(timeout)
            i = self._pos
            self._last = i
            a, b = self._bounds(i)
            data = bytes(self._pview[a:b])
            self._pos = i + 1
            if i + 1 < self._n and not self._unstable(i * _lib.VIEW_U64):
                self._owed = i
                return data
            self._owed = -1
            try:
                self._c_release(i)
            except Stale:
                continue
            return data

    def __iter__(self) -> Iterator[Message]:
        """Receive messages (as :meth:`recv`) until nothing arrives within
        the reader's timeout; with no timeout, forever."""
        cls: Type[Message] = self._class(None)
        while True:
            try:
                yield self.recv(cls)
            except RingEmpty:
                return

    def views(self, timeout: Any = DEFAULT) -> Iterator[memoryview]:
        """Yield each message's payload as a read-only memoryview of its
        slot, valid until the next step of the iteration (or its end). Ends
        when nothing arrives within @timeout. The fastest way through a
        ring: one C call to peek a batch, one to release it when it is
        used up. For a lossy reader, or a gating reader's join backlog
        (start="oldest"), a slot overwritten while its view was out raises
        Stale (which ends the iteration)."""
        if self._peeked:
            self.release()
        self._settle()
        g = self._iter_views(timeout)
        self._active = weakref.ref(g)
        return g

    def _iter_views(self, timeout: Any) -> Iterator[memoryview]:
        q = self._q
        vu = _lib.VIEW_U64
        du = _lib.VIEW_DATA_U64
        v = None
        while True:
            try:
                n = self._fill(timeout)
            except RingEmpty:
                return
            i = start = self._pos
            region = self._region
            base = region.base
            bv = self._batch_view = region.view(readonly=True)
            try:
                while i < n:
                    k = i * vu
                    off = q[k + du] - base
                    v = bv[off:off + (q[k + 1] & 0xFFFFFFFF)]
                    self._last = i
                    i += 1
                    yield v
                    v.release()
            except BufferError as e:
                raise ViewInUse(errno.EBUSY, self.ring.name, "release", message=(
                    "a slot's memoryview is exported (e.g. to NumPy); drop "
                    "that, or copy the data")) from e
            finally:
                self._pos = i
                if i > start:
                    self._owed = i - 1
                if v is not None:
                    try:
                        v.release()
                    except BufferError:
                        self._handed.append(v)  # close() will say so
                    v = None
                self._drop_batch_view()
                self._settle()
