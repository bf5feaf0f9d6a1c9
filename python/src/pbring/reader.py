# SPDX-License-Identifier: MIT
"""Readers (C's consumer/): :class:`Reader`, its batch of views peeked in
C (``peek()``, ``peek_batch()``, ``release()``), ``recv()``, iteration and
``views()``, and :class:`ReaderStats` / :class:`SlotInfo`. See
:mod:`pbring._shm` for how slot memory is kept safe.
"""
from __future__ import annotations

import ctypes
import errno
import time
import weakref
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterator,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
    cast,
    overload,
)

from google.protobuf.message import DecodeError, Message

from . import _lib
from . import codec as _codec
from ._shm import _WAIT_STEP_NS, DEFAULT, Seconds, _Handle, _ns, _slot_region, _wait_mode
from .errors import (
    Closed,
    Corrupt,
    InvalidArgument,
    PbringError,
    RingEmpty,
    Stale,
    ViewInUse,
    error_for,
)

if TYPE_CHECKING:
    from .ring import Ring

__all__ = ["Reader", "ReaderStats", "SlotInfo"]

M = TypeVar("M", bound=Message)

_ETIMEDOUT = errno.ETIMEDOUT
_EAGAIN = errno.EAGAIN
_EBADMSG = errno.EBADMSG
_EINTR = errno.EINTR
#: The text of the Corrupt error raised for a payload whose CRC32C does not
#: match (as opposed to one that does not decode).
CRC_MISMATCH = "CRC32C mismatch"
_ESTALE = errno.ESTALE
_EINVAL = errno.EINVAL
#: pbr_reader_index() of a tap, which has no participant entry (UINT32_MAX);
#: ``Reader.index`` is None for it
NO_INDEX = 0xFFFFFFFF


@dataclass(frozen=True)
class ReaderStats:
    cursor: int             #: next sequence to read
    delivered: int          #: messages released
    lost: int               #: lossy, tap: overwritten before they were read
    abandoned: int          #: slots of dead producers passed over
    bad: int                #: corrupt slots passed over
    #: join backlog (start="oldest") overwritten before it was read: never
    #: delivered, not a loss of the stream (FORMAT.md §9.1)
    missed: int = 0
    #: payloads that failed their CRC32C (``verify()``, ``recv()``), and
    #: payloads rejected as undecodable (``reject()``, ``recv()``); also in
    #: the ring (``Participant.crc_errors``, ``.decode_errors``) for
    #: exporters (format 1.2, FORMAT.md §5.6)
    crc_errors: int = 0
    decode_errors: int = 0


@dataclass(frozen=True)
class SlotInfo:
    """The header of a message as the reader found it."""
    seq: int
    producer: int
    flags: int
    timestamp_ns: int
    crc32c: int
    length: int
    #: the message's W3C trace context (FORMAT.md §6), if it carries one:
    #: ``opentelemetry.propagate.extract({"traceparent": info.traceparent})``
    #: gives the context whose remote parent is the producer's span
    traceparent: Optional[str] = None
    #: the message's source id (format 1.3, FORMAT.md §6.3) as (hi, lo),
    #: e.g. a Redis stream entry id ``ms-seq`` as (ms, seq); None if it
    #: carries none. For a lossy reader's (or a backlog) message, trust
    #: it only once its release succeeded, as the payload
    source: Optional[Tuple[int, int]] = None

    @property
    def has_crc(self) -> bool:
        return bool(self.flags & _lib.PBR_SLOT_F_CRC)


# --------------------------------------------------------------------------
# Readers


def _open_error(rc: int, ring: str, durable: Optional[str]) -> PbringError:
    """Why pbr_reader_open() failed, in words for a durable reader."""
    if durable is not None and rc == -errno.EBUSY:
        return error_for(rc, ring, "open reader", message=(
            f"durable reader {durable} is in use by a live process (or "
            "every reader entry is taken)"))
    if durable is not None and rc == -errno.EOPNOTSUPP:
        return error_for(rc, ring, "open reader", message=(
            "ring has no durable readers (create it with "
            "durable_readers=True)"))
    if durable is not None and rc == -errno.EINVAL:
        return error_for(rc, ring, "open reader", message=(
            f"durable reader name {durable!r}: 1..31 bytes of "
            "[A-Za-z0-9._-], and not lossy or a tap"))
    return error_for(rc, ring, "open reader")


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

    ``latency=True`` records each message's commit-to-receive latency (now
    minus its timestamp, when first peeked) in the ring's metrics block
    (format 1.2, FORMAT.md §5.5), where exporters read it
    (``Ring.participants()``, :mod:`pbring.metrics`), as the consume
    commands do; it costs a clock read per batch peeked.

    ``tap=True`` opens a *tap* (FORMAT.md §9.5): a lossy reader (``lossy``
    is implied, and reads True) that writes nothing to the ring, the only
    reader a ring attached with ``read_only=True`` allows (it works on any
    ring). It takes no participant entry, so it is not in
    ``Ring.participants()`` nor the ring's metrics, its :attr:`index` is
    None, it never holds producers back, and its counters are in
    :meth:`stats` only. It reads every message while it keeps up; lapped,
    it skips ahead and counts what it lost. It cannot recover a dead
    producer's slot (a message whose producer died while writing it
    stalls it until a participant that writes recovers it), and it waits
    by polling (sleeps of a few µs up to 1 ms) rather than on the ring's
    doorbell. Not with ``latency=True`` (InvalidArgument): the histogram
    lives in a reader entry.

    ``durable="NAME"`` (1..31 bytes of ``[A-Za-z0-9._-]``) opens the
    durable reader NAME (format 1.3, FORMAT.md §9.6) on a ring created
    with ``durable_readers=True``: a gating reader whose position
    outlives this process. If NAME exists and nobody owns it (its last
    owner closed it or died), this reader takes it over and resumes at
    its cursor (:attr:`resumed` is True): everything NAME had not
    released comes again, nothing it released does; otherwise it creates
    NAME at @start. Closed, or dead, NAME stays *detached* and keeps
    holding producers back until resumed or dropped (:meth:`drop`,
    ``Ring.drop_reader``). Busy if NAME's owner is alive;
    IncompatibleRing if the ring has no durable readers; InvalidArgument
    for a bad name, or with ``lossy`` or ``tap``.
    """

    def __init__(self, ring: Ring, *, lossy: bool = False,
                 start: str = "oldest", timeout: Seconds = None,
                 wait: str = "block",
                 message_type: Optional[Type[Message]] = None,
                 verify: bool = True, batch: int = 256,
                 latency: bool = False, tap: bool = False,
                 durable: Optional[str] = None) -> None:
        if start not in ("oldest", "latest"):
            raise ValueError(f"start must be 'oldest' or 'latest', "
                             f"not {start!r}")
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self.ring = ring
        #: a tap (``tap=True``): no entry, nothing written to the ring
        self.tap = tap
        #: lossy, or a tap (lossy too)
        self.lossy = lossy or tap
        self.timeout = timeout
        #: recv() checks each payload's CRC32C (when it has one) first
        self.verify_crc = verify
        if message_type is not None:
            self._check_class(message_type)
        self.message_type = message_type
        # A lossy reader (a tap too) checks each slot at release (seqlock),
        # so it takes one message at a time.
        self._max = 1 if self.lossy else batch
        o = _lib.ReaderOpts()
        o.flags = ((_lib.PBR_READER_LOSSY if lossy else 0) |
                   (_lib.PBR_READER_LATENCY if latency else 0) |
                   (_lib.PBR_READER_TAP if tap else 0) |
                   (_lib.PBR_READER_DURABLE if durable is not None else 0))
        name = None if durable is None else durable.encode("utf-8", "replace")
        o.name = name
        #: the durable reader's name (``durable=``), or None
        self.durable = durable
        o.start = (_lib.PBR_START_LATEST if start == "latest"
                   else _lib.PBR_START_OLDEST)
        o.wait = _wait_mode(wait)
        h = ctypes.c_void_p()
        rc = _lib.pbr_reader_open(ring._handle(), ctypes.byref(o),
                                  ctypes.byref(h))
        if rc == -_EINVAL and tap and latency:
            raise InvalidArgument(_EINVAL, ring.name, "open reader", message=(
                "a tap records no latency: it writes nothing to the ring"))
        if rc < 0:
            raise _open_error(rc, ring.name, durable)
        #: a durable reader that took over its detached entry (resuming at
        #: its cursor) rather than creating it
        self.resumed = rc == 1
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
        # recv() releases its slot: the trace context of the message it
        # returned, read before that, and the index it belongs to
        self._last_tp: Optional[str] = None
        self._last_tp_for = -1
        #: the reader's index in the participant table
        #: (``Participant.index``); None for a tap, which has no entry
        self.index: Optional[int] = None
        index = int(_lib.pbr_reader_index(h.value))
        if index != NO_INDEX:
            self.index = index
        ring._children.add(self)

    def _check_class(self, cls: Type[Message]) -> None:
        _codec.check_recv_class(cls, self.ring.info.msg_type, self.ring.name)

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
        """Deregister (the reader stops gating at once; a tap just stops);
        views still out are released. ViewInUse, and nothing is closed,
        while a view derived from one of them is alive."""
        self._close_with(_lib.pbr_reader_close)

    def _close_with(self, end: Any) -> None:
        """Close, the C handle ended by @end (pbr_reader_close or _drop)."""
        box = self._box
        if box.h is None or box.forked():
            return
        self._close_views()
        h, box.h = box.h, None
        self.ring._handles.discard(box)
        end(h)

    def _close_views(self) -> None:
        """Before closing: end a views() loop, give back the views out;
        ViewInUse while one derived from them is alive."""
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
        self._n = self._pos = self._peeked = 0
        self._owed = -1

    def drop(self) -> None:
        """Close the reader and, if it is durable, remove its entry
        (FORMAT.md §9.6): it stops holding producers back and its name is
        free again. For any other reader this is :meth:`close`."""
        self._close_with(_lib.pbr_reader_close if self.durable is None
                         else _lib.pbr_reader_drop)

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
        except Exception:  # nosec B110 # __del__, maybe at interpreter exit
            pass

    def __repr__(self) -> str:
        if self.tap:
            return f"<pbring.Reader {self.ring.name!r} tap>"
        kind = "lossy" if self.lossy else "gating"
        return f"<pbring.Reader {self.ring.name!r} {kind} #{self.index}>"

    def stats(self) -> ReaderStats:
        st = _lib.ReaderStatsC()
        _lib.pbr_reader_stats(self._handle(), ctypes.byref(st))
        return ReaderStats(st.cursor, st.delivered, st.lost, st.abandoned,
                           st.bad, st.missed, st.crc_errors,
                           st.decode_errors)

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
        rc = peek(*args, ctypes.c_int64(t)) if 0 <= t <= _WAIT_STEP_NS else 0
        if rc == 0 or (rc == -_EINTR and not self.ring.interrupted):
            rc = self._wait_steps(peek, args, t)
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

    def _wait_steps(self, peek: Any, args: Any, t: int) -> int:
        """A long wait, in steps. -EINTR without Ring.interrupt() is a
        signal: looping runs its Python handler (KeyboardInterrupt), then
        goes on waiting."""
        deadline = None if t < 0 else time.monotonic_ns() + t
        while True:
            step = _WAIT_STEP_NS
            if deadline is not None:
                step = max(0, min(step, deadline - time.monotonic_ns()))
            rc = int(peek(*args, ctypes.c_int64(step)))
            if rc == -_EINTR and not self.ring.interrupted:
                continue
            if (rc > 0 or rc not in (-_ETIMEDOUT, -_EAGAIN) or
                    (deadline is not None and
                     time.monotonic_ns() >= deadline)):
                return rc

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

    def _trace_at(self, i: int) -> Optional[str]:
        """The traceparent of view @i, read from its slot (held)."""
        buf = ctypes.create_string_buffer(_lib.PBR_TRACEPARENT_LEN + 1)
        if _lib.pbr_view_traceparent(self._vaddr + i * _lib.VIEW_SIZE, buf,
                                     len(buf)) != 0:
            return None
        return buf.value.decode("ascii")

    def _keep_trace(self, i: int, w1: int) -> None:
        """recv(): note message @i's trace context before its release."""
        self._last_tp_for = i
        self._last_tp = (self._trace_at(i) if (w1 >> 48) &
                         _lib.PBR_SLOT_F_TRACE else None)

    def _info_at(self, i: int) -> SlotInfo:
        v = self._views[i]
        if i == self._last_tp_for:
            tp = self._last_tp
        else:
            tp = (self._trace_at(i) if v.flags & _lib.PBR_SLOT_F_TRACE
                  else None)
        src = ((int(v.source[0]), int(v.source[1]))
               if v.flags & _lib.PBR_SLOT_F_SOURCE else None)
        return SlotInfo(v.seq, v.producer, v.flags, v.timestamp_ns,
                        v.crc32c, v.len, tp, src)

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
        self._last_tp_for = -1  # held: read from the slot when asked
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

    def _held_index(self, view: Optional[memoryview], what: str) -> int:
        """The index of peeked view @view, or (None) of the latest message
        peeked, or yielded by a running views() loop: still held."""
        if view is not None:
            for k, v in enumerate(self._handed[:self._peeked]):
                if v is view:
                    return self._pos + k
            raise InvalidArgument(errno.EINVAL, self.ring.name, what,
                                  message="not a view peeked and held by "
                                          "this reader")
        if self._peeked:
            return self._pos + self._peeked - 1
        g = self._active() if self._active is not None else None
        if g is not None and g.gi_frame is not None and self._last >= 0:
            return self._last
        raise InvalidArgument(errno.EINVAL, self.ring.name, what,
                              message="nothing peeked")

    def _view_error(self, rc: int, i: int, what: str) -> PbringError:
        """The exception for pbr_reader_verify/_reject's @rc on view @i."""
        seq = self._views[i].seq
        if rc == -_EBADMSG:
            return Corrupt(_EBADMSG, self.ring.name, what, seq=seq,
                           message=CRC_MISMATCH)
        if rc == -_ESTALE:
            return Stale(_ESTALE, self.ring.name, what, seq=seq)
        return error_for(rc, self.ring.name, what, seq=seq)

    def verify(self, view: Optional[memoryview] = None) -> None:
        """Check the CRC32C of peeked view @view, or (by default) of every
        message peeked, or of the one a running ``views()`` loop yielded
        last; a message stored without CRC passes. On a mismatch, Corrupt,
        counted in ``stats().crc_errors`` and the ring's reader metrics;
        Stale (not counted) if a lossy reader's slot, or join backlog's,
        was overwritten since it was peeked: the message was lost, not
        corrupt, and ``release()`` says so too. InvalidArgument if
        nothing is held."""
        h = self._handle()
        if view is None and self._peeked:
            first, end = self._pos, self._pos + self._peeked
        else:
            first = self._held_index(view, "verify")
            end = first + 1
        for i in range(first, end):
            rc = _lib.pbr_reader_verify(h, self._vaddr + i * _lib.VIEW_SIZE)
            if rc:
                raise self._view_error(rc, i, "verify")

    def reject(self, view: Optional[memoryview] = None) -> None:
        """Count a message held by this reader that the application could
        not decode or accept: peeked view @view, or (by default) the
        latest message peeked or yielded by a running ``views()`` loop.
        Counted in ``stats().decode_errors`` and the ring's reader metrics
        (``pbring_reader_decode_errors_total``); release it as usual
        afterwards. Stale, not counted, if a lossy reader's slot (or join
        backlog's) was overwritten since it was peeked: what was decoded
        was not the message. ``recv(check=...)`` rejects by itself."""
        h = self._handle()
        i = self._held_index(view, "reject")
        rc = _lib.pbr_reader_reject(h, self._vaddr + i * _lib.VIEW_SIZE)
        if rc:
            raise self._view_error(rc, i, "reject")

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
    def recv(self, message_type: None = None, *, timeout: Any = DEFAULT,
             check: Optional[Callable[[Message], Any]] = None) -> Message: ...

    @overload
    def recv(self, message_type: Type[M], *, timeout: Any = DEFAULT,
             check: Optional[Callable[[M], Any]] = None) -> M: ...

    def recv(self, message_type: Optional[Type[Any]] = None, *,
             timeout: Any = DEFAULT,
             check: Optional[Callable[[Any], Any]] = None) -> Any:
        """Receive the next message, parsed straight from its slot (its
        CRC32C checked first when the producer stored one), and release it.
        @message_type defaults to the reader's, else the class built from
        the ring's schema. Corrupt (the slot passed over) for a bad CRC or
        payload, counted in ``stats().crc_errors`` or ``.decode_errors``
        and the ring's reader metrics; a lossy reader skips what was
        overwritten while parsed (and counts it as lost, not corrupt).

        @check, if given, is called with the parsed message while its slot
        is still held: an exception from it rejects the message as a
        payload that does not decode (counted, Corrupt raised from it), as
        the consume commands do with a content check."""
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
            self._keep_trace(i, w1)
            vp = self._vptr[i]
            err: Optional[PbringError] = None
            if self.verify_crc and (w1 >> 48) & _lib.PBR_SLOT_F_CRC:
                rc = _lib.raw_reader_verify(self._hc, vp)  # counted
                if rc:
                    err = self._view_error(rc, i, "recv")
            if err is None:
                off = q[k] - self._pbase
                v = self._pview[off:off + (w1 & 0xFFFFFFFF)]
                msg = cls()
                try:
                    msg.ParseFromString(v)  # from the slot, no copy
                    if check is not None:
                        check(msg)
                except Exception as e:  # DecodeError, or check's
                    err = self._reject_parsed(cls, i, e)
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

    def _reject_parsed(self, cls: Type[Message], i: int,
                       why: Exception) -> Corrupt:
        """recv(): message @i did not decode, or failed its check (@why):
        counted while its slot is held (-ESTALE, overwritten, so not the
        message's bytes, is not counted, and the release says so), and
        the Corrupt error to raise once it is released."""
        _lib.raw_reader_reject(self._hc, self._vptr[i])
        name = cls.DESCRIPTOR.full_name
        text = (f"cannot decode {name}: {why}"
                if isinstance(why, DecodeError) else
                f"{name} rejected: {why}")
        err = Corrupt(_EBADMSG, self.ring.name, "recv",
                      seq=self._q[i * _lib.VIEW_U64 + _lib.VIEW_SEQ_U64],
                      message=text)
        err.__cause__ = why
        return err

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
            self._keep_trace(i, self._q[i * _lib.VIEW_U64 + 1])
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
        self._last_tp_for = -1  # held while yielded: read when asked
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
