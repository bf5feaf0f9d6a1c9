# SPDX-License-Identifier: MIT
"""Producers (C's producer/): :class:`Producer`, its reservations
(``reserve()``: the slot lent as a writable memoryview, then commit or
abort; ``reserve_message()``: large fields of a protobuf message written in
place, then the rest of it encoded after them, as C's pbr_slot_pb_span()
and pbr_producer_commit_pb()) and ``send()``. See :mod:`pbring._shm` for
how slot memory is kept safe.
"""
from __future__ import annotations

import ctypes
import errno
import operator
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from google.protobuf.message import Message

from . import _lib
from . import codec as _codec
from ._shm import (
    _WAIT_STEP_NS,
    DEFAULT,
    Buffer,
    Seconds,
    _Handle,
    _ns,
    _Region,
    _slot_region,
    _wait_mode,
)
from .errors import (
    Busy,
    Closed,
    InvalidArgument,
    MessageTooLarge,
    RingFull,
    ViewInUse,
    error_for,
)

if TYPE_CHECKING:
    from .ring import Ring

__all__ = ["Producer"]

_ETIMEDOUT = errno.ETIMEDOUT
_EAGAIN = errno.EAGAIN
_EINTR = errno.EINTR
_EMSGSIZE = errno.EMSGSIZE
_ALWAYS = 1 << 64  # longer than any payload: every one gets a CRC
_FIELD_MAX = (1 << 29) - 1  # protobuf's largest field number
_WT_LEN = 2  # wire type of a length-delimited field (bytes, string)
_TAGS: Dict[int, bytes] = {}  # field number: its tag, length-delimited


def _policy_below(ring: "Ring") -> int:
    """The ring's CRC policy (FORMAT.md §6.2) as one comparison, as C's
    pbr_producer_wants_crc(): payloads shorter than this get a CRC."""
    info = ring.info
    if info.crc == "none":
        return 0
    if info.crc == "upto":
        return info.crc_limit + 1
    return _ALWAYS  # "full", and a policy the library does not know


def _traceparent(tp: str) -> bytes:
    """@tp checked as a W3C traceparent (FORMAT.md §6), as bytes for the
    C call that stores it; ValueError if it is not one."""
    # C reads up to a NUL; Go's parser counts the whole string
    b = tp.encode("ascii", "replace") if isinstance(tp, str) and \
        "\x00" not in tp else b""
    scratch = ctypes.create_string_buffer(25)
    if not b or _lib.pbr_traceparent_parse(
            b, ctypes.addressof(scratch), ctypes.addressof(scratch) + 16,
            ctypes.addressof(scratch) + 24) != 0:
        raise ValueError(f"not a W3C traceparent: {tp!r} (want "
                         "00-<32 hex>-<16 hex>-<2 hex>, lowercase, "
                         "ids not all zero)")
    return b


def _set_trace(p: "Producer", tp: bytes) -> None:
    """Give the reserved slot the (checked) traceparent @tp."""
    if _lib.pbr_slot_set_traceparent(p._slot_addr, tp) != 0:
        raise ValueError(f"not a W3C traceparent: {tp!r}")


def _varint(v: int) -> bytes:
    """The protobuf varint of @v (>= 0); the lengths and tags of up to
    three bytes, the usual ones, without a loop."""
    if v < 0x80:
        return bytes((v,))
    if v < 0x4000:
        return bytes((v & 0x7F | 0x80, v >> 7))
    if v < 0x200000:
        return bytes((v & 0x7F | 0x80, v >> 7 & 0x7F | 0x80, v >> 14))
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _release_views(p: "Producer", views: Any) -> None:
    """Release the memoryviews a reservation lent (@views). ViewInUse, the
    reservation staying open, while one of them is exported or a view
    derived from one is alive: the slot is never published (or given up)
    under a live view. Releasing twice is harmless, so it can be retried."""
    for v in views:
        try:
            v.release()
        except BufferError as e:
            raise ViewInUse(errno.EBUSY, p.ring.name, "reserve", message=(
                "the slot's memoryview is exported (e.g. to NumPy); drop "
                "that first")) from e
    if p._region is not None and p._region.in_use():
        raise ViewInUse(errno.EBUSY, p.ring.name, "reserve", message=(
            "a memoryview derived from the slot is still alive; drop it "
            "(the slot stays reserved until then)"))


def _source_ok(p: "Producer", n: int,
               source: Optional[Tuple[int, int]], what: str) -> None:
    """Check a source id for @n payload bytes before anything changes:
    ValueError if it is not two u64, MessageTooLarge if it does not fit
    after the payload (FORMAT.md §6.3)."""
    if source is None:
        return
    hi, lo = source
    if not (0 <= hi < 1 << 64 and 0 <= lo < 1 << 64):
        raise ValueError(f"source {source!r} is not two u64")
    if (n + 7) // 8 * 8 + 16 > p._cap:
        raise MessageTooLarge(_EMSGSIZE, p.ring.name, what, message=(
            f"{n} bytes and a 16-byte source id do not fit in a slot "
            f"({p._cap} max)"))


def _set_source(p: "Producer", source: Optional[Tuple[int, int]]) -> None:
    """Give the reserved slot a source id (checked by _source_ok), which
    the commit stores after the payload."""
    if source is None:
        return
    sq = p._sq
    p._s32[3] |= _lib.PBR_SLOT_F_SOURCE  # slot.flags (others kept)
    sq[_lib.SLOT_SOURCE_U64] = source[0]
    sq[_lib.SLOT_SOURCE_U64 + 1] = source[1]


class _Reservation:
    """The context manager of Producer.reserve()."""

    __slots__ = ("_p", "_n", "_crc_below", "_view", "_open", "seq")

    def __init__(self, p: "Producer", n: int, crc_below: int,
                 view: memoryview) -> None:
        self._p = p
        self._n = n
        self._crc_below = crc_below  # a commit of fewer bytes gets a CRC
        self._view = view
        self._open = True
        self.seq: int = p._slot.seq  #: the sequence this slot will carry

    def _release_view(self) -> None:
        _release_views(self._p, (self._view,))

    def set_traceparent(self, traceparent: str) -> None:
        """Give the message a W3C trace context (FORMAT.md §6), which the
        commit stores; ValueError if @traceparent is not one."""
        if not self._open:
            raise InvalidArgument(errno.EINVAL, self._p.ring.name,
                                  "set_traceparent",
                                  message="reservation is not open")
        _set_trace(self._p, _traceparent(traceparent))

    def commit(self, length: Optional[int] = None, *,
               source: Optional[Tuple[int, int]] = None) -> int:
        """Publish the slot with @length bytes (default: the reserved
        size), its CRC32C (where :meth:`Producer.wants_crc` says so for
        @length bytes, or as reserve()'s @crc says) and a CLOCK_MONOTONIC
        timestamp, and @source, a source id (hi, lo) stored with it
        (format 1.3, FORMAT.md §6.3; MessageTooLarge, the reservation
        staying open, if it does not fit after @length bytes). Returns its
        sequence number."""
        if not self._open:
            raise InvalidArgument(errno.EINVAL, self._p.ring.name, "commit",
                                  message="reservation is not open")
        n = self._n if length is None else length
        if not 0 <= n <= self._n:
            raise ValueError(f"length {n} outside 0..{self._n}")
        _source_ok(self._p, n, source, "commit")
        self._release_view()
        _set_source(self._p, source)
        p = self._p
        slot = p._slot
        if n < self._crc_below:
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


class _MessageReservation:
    """A slot reserved for one protobuf message whose large fields are
    written in place (Producer.reserve_message()): :meth:`field_span` lays
    out a top-level bytes field and lends its bytes, inside the slot, as a
    writable memoryview; :meth:`commit` serializes the rest of the message
    after them and publishes the whole. As C's pbr_slot_pb_span() and
    pbr_producer_commit_pb(), Go's Producer.FieldSpan and CommitProto."""

    __slots__ = ("_p", "_crc_below", "_spans", "_used", "_region", "_open",
                 "seq")

    def __init__(self, p: "Producer", crc_below: int) -> None:
        self._p = p
        self._crc_below = crc_below  # a commit of fewer bytes gets a CRC
        self._spans: List[memoryview] = []  # lent, released at the end
        self._used = 0  # bytes laid out by field_span()
        self._region: Optional[_Region] = None  # of the views lent
        self._open = True
        self.seq: int = p._slot.seq  #: the sequence this slot will carry

    def set_traceparent(self, traceparent: str) -> None:
        """Give the message a W3C trace context (FORMAT.md §6), which the
        commit stores; ValueError if @traceparent is not one."""
        self._check_open("set_traceparent")
        _set_trace(self._p, _traceparent(traceparent))

    @property
    def used(self) -> int:
        """Bytes of the slot the in-place fields take so far (tags and
        lengths included): the rest of the message goes after them."""
        return self._used

    def _check_open(self, what: str) -> None:
        if not self._open:
            raise InvalidArgument(errno.EINVAL, self._p.ring.name, what,
                                  message="reservation is not open")

    def field_span(self, number: int, n: int) -> memoryview:
        """Lay out top-level field @number (1 .. 2^29-1, a bytes or string
        field) of @n bytes after what is laid out already: write its tag
        and length into the slot, and return a writable memoryview of
        exactly its @n bytes, inside the slot. Its bytes are not
        initialised (they hold whatever the slot held): fill all @n of
        them, e.g. ``view[:] = frame`` or through
        ``numpy.frombuffer(view, dtype)``. The view is released at commit
        or abort (drop what you derived from it first: ViewInUse
        otherwise). InvalidArgument for a bad field number or a negative
        @n; MessageTooLarge if the field does not fit in the rest of the
        slot. On an error nothing is written and the reservation stays
        open."""
        if not self._open:
            self._check_open("field span")
        p = self._p
        if type(number) is not int:
            number = operator.index(number)
        if type(n) is not int:
            n = operator.index(n)
        if not 0 < number <= _FIELD_MAX:
            raise InvalidArgument(errno.EINVAL, p.ring.name, "field span",
                                  message=(f"field number {number} is not "
                                           f"in 1..{_FIELD_MAX}"))
        if n < 0:
            raise InvalidArgument(errno.EINVAL, p.ring.name, "field span",
                                  message=f"field length {n} is negative")
        at = self._used
        room = p._cap - at
        tag = _TAGS.get(number)
        if tag is None:
            tag = _varint(number << 3 | _WT_LEN)
            if number < 2048:  # the tags of one or two bytes, cached
                _TAGS[number] = tag
        head = tag + _varint(n)
        k = len(head)
        if n > room or k > room - n:
            raise MessageTooLarge(_EMSGSIZE, p.ring.name, "field span",
                                  message=(f"field {number} of {n} bytes "
                                           f"does not fit in the slot "
                                           f"({room} of {p._cap} bytes "
                                           "left)"))
        data = p._sq[0]  # slot.data
        wv = p._wview
        if wv is None:
            wv = p._locate()
        off = data - p._wbase + at
        wv[off:off + k] = head
        region = self._region
        if region is None:
            region = self._region = p._lending_region()
        off = data - region.base + at + k
        whole = region.view(readonly=False)
        view = whole[off:off + n]
        whole.release()
        self._spans.append(view)
        self._used = at + k + n
        return view

    def commit(self, msg: Union[Message, Buffer, None] = None, *,
               source: Optional[Tuple[int, int]] = None) -> int:
        """Serialize @msg (a protobuf message of the ring's type, with the
        in-place fields left empty: a singular field sent twice is read as
        the last one) after the in-place fields, and publish the whole with
        a CLOCK_MONOTONIC timestamp and its CRC32C (where
        :meth:`Producer.wants_crc` says so for the whole length, or as
        reserve_message()'s @crc says). @msg may also be bytes already
        serialized, or None: the in-place fields alone. @source: a source
        id (hi, lo) stored with it (format 1.3, FORMAT.md §6.3). Returns
        the sequence. The views of :meth:`field_span` are released first
        (ViewInUse, the reservation staying open, while one is in use).
        If @msg is of the wrong type (WrongType, TypeError), cannot be
        serialized (InvalidArgument) or does not fit after the in-place
        fields (MessageTooLarge), the reservation is aborted: readers pass
        over it."""
        if not self._open:
            self._check_open("commit")
        p = self._p
        if self._spans:
            self._release_view()
        try:
            rest = self._serialize(msg)
            used = self._used
            m = len(rest)
            _source_ok(p, used + m, source, "commit")
            if m > p._cap - used:
                raise MessageTooLarge(_EMSGSIZE, p.ring.name, "commit",
                                      message=(
                                          f"the rest of the message ({m} "
                                          f"bytes) does not fit after the "
                                          f"in-place fields ({used} of "
                                          f"{p._cap} bytes used); the "
                                          "reservation is aborted"))
        except BaseException:
            self.abort()
            raise
        p._handle()  # Closed if the ring was closed under the reservation
        sq = p._sq
        data = sq[0]  # slot.data
        if m:
            wv = p._wview
            if wv is None:
                wv = p._locate()
            off = data - p._wbase + used
            wv[off:off + m] = rest
        n = used + m
        # The CRC is taken while the bytes just written are still hot;
        # reserve zeroed the slot's flags and CRC, so none is left alone.
        if n < self._crc_below:
            s32 = p._s32
            s32[3] |= _lib.PBR_SLOT_F_CRC  # slot.flags (TRACE kept)
            s32[6] = _lib.pbr_crc32c(0, data, n)  # slot.crc32c
        sq[4] = time.monotonic_ns()  # slot.timestamp_ns
        _set_source(p, source)
        self._open = False
        p._reservation = None
        rc = _lib.raw_producer_commit(p._hc, p._slotp, n)
        if rc:
            raise error_for(rc, p.ring.name, "commit")
        return sq[2]  # slot.seq

    def _serialize(self, msg: Union[Message, Buffer, None]) -> bytes:
        if msg is None:
            return b""
        if isinstance(msg, bytes):
            return msg
        if isinstance(msg, (bytearray, memoryview)):
            return bytes(msg)
        p = self._p
        cls = type(msg)
        if cls is not p._checked:
            p._check_class(cls)
        try:
            return msg.SerializeToString()
        except Exception as e:  # EncodeError: a required field unset, ...
            raise InvalidArgument(errno.EINVAL, p.ring.name, "commit",
                                  message=(f"cannot serialize "
                                           f"{cls.DESCRIPTOR.full_name}: "
                                           f"{e}")) from e

    def _release_view(self) -> None:
        _release_views(self._p, self._spans)

    def abort(self) -> None:
        """Give the sequence up: readers pass over it. The views of
        :meth:`field_span` are released (ViewInUse while one is in use)."""
        if not self._open:
            return
        self._release_view()
        p = self._p
        self._open = False
        p._reservation = None
        rc = _lib.pbr_producer_abort(p._handle(), p._slot_addr)
        if rc:
            raise error_for(rc, p.ring.name, "abort")

    def __enter__(self) -> "_MessageReservation":
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if not self._open:
            return
        self.abort()
        if et is None:
            raise InvalidArgument(errno.EINVAL, self._p.ring.name, "commit",
                                  message=(
                                      "reserve_message() block left without "
                                      "commit(msg) or abort(): the "
                                      "reservation is aborted, nothing was "
                                      "sent"))


class Producer:
    """One producer entry of a ring.

    ``send(msg)`` serializes a protobuf message and copies it once into a
    slot; ``send_bytes(buf)`` copies bytes; ``reserve(n)`` lends the slot
    itself as a writable memoryview; ``reserve_message()`` lends the bytes
    of a message's large fields there, then serializes the rest of it
    after them. Every message is committed with a
    CLOCK_MONOTONIC timestamp and, where the ring's CRC policy asks for one
    (``ring.info.crc``: every payload, none, or those of at most
    ``crc_limit`` bytes), its CRC32C (flag CRC), as the C codec does.
    ``crc=True`` stores a CRC32C with every message whatever the policy,
    ``crc=False`` with none (the :attr:`crc` attribute can be changed).
    @timeout (seconds, None = no limit) bounds the wait for a free slot
    while a gating reader lags; RingFull when it runs out. A producer is
    used by one thread at a time.
    """

    def __init__(self, ring: Ring, *, wait: str = "block",
                 timeout: Seconds = None,
                 crc: Optional[bool] = None) -> None:
        self.ring = ring
        self.timeout = timeout
        self._policy_below = _policy_below(ring)
        self._crc_below = self._policy_below
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
        self._sq = (ctypes.c_uint64 * 10).from_buffer(self._slot)
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
        self._reservation: Optional[
            Union[_Reservation, _MessageReservation]] = None
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

    @property
    def crc(self) -> Optional[bool]:
        """None (the default): a CRC32C where the ring's CRC policy asks
        for one; True: with every message; False: with none."""
        return self._crc

    @crc.setter
    def crc(self, crc: Optional[bool]) -> None:
        if crc is not None and not isinstance(crc, bool):
            raise TypeError(f"crc must be None, True or False, not {crc!r}")
        self._crc = crc
        # the one comparison the hot path makes: n < _crc_below
        self._crc_below = (self._policy_below if crc is None else
                           _ALWAYS if crc else 0)

    def wants_crc(self, n: int) -> bool:
        """Whether a message of @n bytes is committed with its CRC32C: as
        :attr:`crc` says, and by default as the ring's policy does
        (pbr_producer_wants_crc())."""
        return n < self._crc_below

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
        except Exception:  # nosec B110 # __del__, maybe at interpreter exit
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
        if rc != -_EINTR and (rc not in (-_ETIMEDOUT, -_EAGAIN) or
                              0 <= t <= _WAIT_STEP_NS):
            self._reserve_failed(rc)
        # A long wait, in steps; the claimed sequence (if any) stays ours.
        # -EINTR without Ring.interrupt() is a signal: looping runs its
        # Python handler (KeyboardInterrupt), then goes on waiting.
        deadline = None if t < 0 else time.monotonic_ns() + t - first
        while True:
            if rc == -_EINTR and self.ring.interrupted:
                self._reserve_failed(rc)
            step = _WAIT_STEP_NS
            if deadline is not None:
                step = max(0, min(step, deadline - time.monotonic_ns()))
            rc = _lib.raw_producer_reserve(self._hc, ctypes.c_int64(step),
                                           self._slotp)
            if not rc:
                return h
            if (rc not in (-_ETIMEDOUT, -_EAGAIN, -_EINTR) or
                    (deadline is not None and rc != -_EINTR and
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
        the n bytes (with timestamp, and CRC32C as :meth:`wants_crc` says
        for the length committed; @crc True or False decides for this
        message instead); an exception aborts the reservation (readers pass
        over it). The view is released on exit.
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
        region = self._lending_region()
        off = slot.data - region.base
        whole = region.view(readonly=False)
        view = whole[off:off + n]
        whole.release()
        below = self._crc_below if crc is None else _ALWAYS if crc else 0
        res = _Reservation(self, n, below, view)
        self._reservation = res
        return res

    def _lending_region(self) -> _Region:
        """The exporter of the views this producer lends (reserve(),
        field_span()), whose reference count proves none is left; the slot
        just reserved locates it."""
        region = self._region
        if region is None:
            slot = self._slot
            region = self._region = _slot_region(self.ring, slot.data,
                                                 slot.seq)
            self.ring._regions.add(region)
        return region

    def reserve_message(self, *, timeout: Any = DEFAULT,
                        crc: Optional[bool] = None) -> _MessageReservation:
        """Reserve the next slot for one protobuf message whose large
        fields are written in place: a camera frame or a tensor produced
        straight into shared memory, with no copy::

            with producer.reserve_message() as r:
                frame = r.field_span(5, n)  # DeviceEvent.blob = 5
                frame[:] = pixels           # or fill it through NumPy
                r.commit(DeviceEvent(id="cam-1", seq=k))  # blob left empty

        ``field_span(number, n)`` writes a top-level bytes field's tag and
        length and lends its n bytes (several fields may precede the rest,
        each with its own call); ``commit(msg)`` serializes the rest of the
        message after them and publishes the whole, with timestamp and
        CRC32C as :meth:`wants_crc` says for the whole length (@crc True or
        False decides for this message instead). Protobuf lets fields come
        in any order: every reader (C, Go, Python) decodes it as if sent by
        :meth:`send`. Leaving the block aborts a reservation not committed:
        on an exception, quietly; otherwise with InvalidArgument, as
        forgetting commit() loses the message.
        """
        if self._reservation is not None:
            raise Busy(errno.EINPROGRESS, self.ring.name, "reserve",
                       message="a reservation is already open")
        self._reserve(timeout)
        below = self._crc_below if crc is None else _ALWAYS if crc else 0
        res = _MessageReservation(self, below)
        self._reservation = res
        return res

    @property
    def reservation(self) -> Optional[
            Union[_Reservation, _MessageReservation]]:
        """The open reservation, if any."""
        return self._reservation

    # ---- sending

    def send_bytes(self, data: Buffer, *, timeout: Any = DEFAULT,
                   traceparent: Optional[str] = None,
                   source: Optional[Tuple[int, int]] = None) -> int:
        """Copy @data into the next slot and commit it with a
        CLOCK_MONOTONIC timestamp, its CRC32C (as :meth:`wants_crc`
        says) and, given @traceparent (a W3C traceparent: ValueError, and
        nothing sent, if it is not one), that trace context (FORMAT.md
        §6), and given @source (hi, lo), that source id (format 1.3,
        §6.3: MessageTooLarge, nothing sent, if it does not fit after the
        payload). Returns the message's sequence."""
        tp = None if traceparent is None else _traceparent(traceparent)
        if not isinstance(data, bytes):
            data = bytes(data)
        n = len(data)
        if n > self._cap:
            raise MessageTooLarge(_EMSGSIZE, self.ring.name, "send",
                                  message=(f"{n} bytes do not fit in a slot "
                                           f"({self._cap} max)"))
        _source_ok(self, n, source, "send")
        if self._reservation is not None:
            raise Busy(errno.EINPROGRESS, self.ring.name, "send",
                              message="a reservation is already open")
        want_crc = n < self._crc_below
        crc = _lib.raw_crc32c(0, data, n) if want_crc else 0
        self._reserve(timeout)
        sq = self._sq
        wv = self._wview
        if wv is None:
            wv = self._locate()
        off = sq[0] - self._wbase  # slot.data
        wv[off:off + n] = data     # the one copy
        if want_crc:
            s32 = self._s32
            s32[3] = _lib.PBR_SLOT_F_CRC  # slot.flags (and reserved)
            s32[6] = crc                  # slot.crc32c
        if tp is not None:
            _set_trace(self, tp)
        _set_source(self, source)
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
             timeout: Any = DEFAULT, traceparent: Optional[str] = None,
             source: Optional[Tuple[int, int]] = None) -> int:
        """Send a protobuf message (serialized, then copied once into the
        slot) or raw bytes. A message must be of the ring's type (WrongType
        otherwise). @traceparent: the message's W3C trace context, e.g.
        the current span's, ``carrier = {}; opentelemetry.propagate.
        inject(carrier); send(msg, traceparent=carrier.get("traceparent"))``
        (see :meth:`send_bytes`); @source: its source id (hi, lo), as
        :meth:`send_bytes`. Returns its sequence."""
        if isinstance(msg, (bytes, bytearray, memoryview)):
            return self.send_bytes(msg, timeout=timeout,
                                   traceparent=traceparent, source=source)
        cls = type(msg)
        if cls is not self._checked:
            self._check_class(cls)
        return self.send_bytes(msg.SerializeToString(), timeout=timeout,
                               traceparent=traceparent, source=source)

    def _check_class(self, cls: type) -> None:
        _codec.check_send_class(cls, self._msg_type, self.ring.name)
        self._checked = cls
