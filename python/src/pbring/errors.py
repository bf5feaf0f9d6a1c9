# SPDX-License-Identifier: MIT
"""Exceptions: one class per kind of failure, all carrying the errno and
the ring's name.

Every exception raised for a libpbring error is a :class:`PbringError`, a
subclass of :class:`OSError` whose ``errno`` is the (positive) errno the C
library returned and whose ``strerror`` is ``pbr_strerror()``'s text.
``str(e)`` reads ``"RING: reason"``, as the ``pbring`` command prints it.
Where Python has a matching built-in class, the exception is one too:
:class:`RingNotFound` is a :class:`FileNotFoundError`, :class:`Timeout` a
:class:`TimeoutError`, and so on.
"""
from __future__ import annotations

import errno as _errno
from typing import Any, Dict, Optional, Type

from . import _lib

__all__ = [
    "PbringError", "RingNotFound", "RingExists", "PermissionDenied",
    "InvalidArgument", "IncompatibleRing", "Timeout", "RingFull",
    "RingEmpty", "Busy", "WrongType", "Corrupt", "Stale", "MessageTooLarge",
    "OwnerDead", "ViewInUse", "Closed", "ReadOnly", "strerror",
    "error_for",
]

# errnos the C headers name that the errno module may lack
EMEDIUMTYPE = getattr(_errno, "EMEDIUMTYPE", 124)
EUCLEAN = getattr(_errno, "EUCLEAN", 117)
EOWNERDEAD = getattr(_errno, "EOWNERDEAD", 130)


def strerror(err: int) -> str:
    """libpbring's description of an errno (sign ignored)."""
    return str(_lib.pbr_strerror(-abs(err)).decode("utf-8", "replace"))


class PbringError(OSError):
    """A libpbring call failed.

    Attributes: ``errno`` (positive), ``strerror`` (the library's text),
    ``ring`` (the ring's name, or None), ``what`` (the operation, or None),
    ``seq`` (the sequence concerned, where there is one).
    """

    def __init__(self, err: int, ring: Optional[str] = None,
                 what: Optional[str] = None, message: Optional[str] = None,
                 seq: Optional[int] = None) -> None:
        err = abs(err)
        text = message if message is not None else strerror(err)
        super().__init__(err, text)
        self.ring = ring
        self.what = what
        self.seq = seq

    def __str__(self) -> str:
        parts = []
        if self.ring:
            parts.append(self.ring)
        if self.what:
            parts.append(self.what)
        parts.append(self.strerror or "")
        return ": ".join(parts)

    def __reduce__(self) -> Any:  # picklable across processes
        return (self.__class__,
                (self.errno, self.ring, self.what, self.strerror, self.seq))


class RingNotFound(PbringError, FileNotFoundError):
    """No ring of that name (ENOENT)."""


class RingExists(PbringError, FileExistsError):
    """The name is taken (EEXIST)."""


class PermissionDenied(PbringError, PermissionError):
    """EACCES, or EPERM: owned by another user or writable by everyone."""


class InvalidArgument(PbringError, ValueError):
    """A bad name, geometry, option or handle (EINVAL)."""


class IncompatibleRing(PbringError):
    """Not a pbring ring, another format, or a corrupt geometry (EPROTO,
    EPROTONOSUPPORT, EPROTOTYPE, ENOTSUP, EUCLEAN, ENODEV)."""


class Timeout(PbringError, TimeoutError):
    """Nothing happened within the timeout (ETIMEDOUT, or EAGAIN when the
    timeout was 0)."""


class RingFull(Timeout):
    """A producer found no free slot within its timeout."""


class RingEmpty(Timeout):
    """A reader found no message within its timeout."""


class Busy(PbringError):
    """Every producer or reader entry is taken (EBUSY), or a reservation
    is already open (EINPROGRESS)."""


class WrongType(PbringError):
    """The ring carries another message type (EMEDIUMTYPE)."""


class Corrupt(PbringError):
    """A corrupt slot: bad header, CRC mismatch or undecodable payload
    (EBADMSG). The reader has passed over it; ``seq`` names it."""


class Stale(PbringError):
    """A lossy reader's slot (or a gating reader's join backlog) was
    overwritten while it was held (ESTALE): whatever was read from it must
    be discarded (counted as lost, or missed), never judged corrupt."""


class MessageTooLarge(PbringError, ValueError):
    """The message does not fit in a slot's payload (EMSGSIZE)."""


class OwnerDead(PbringError):
    """This producer was taken for dead and its slot reclaimed
    (EOWNERDEAD); reopen the producer."""


class ViewInUse(PbringError, BufferError):
    """A slot cannot be released (or committed) while a memoryview derived
    from it is still alive: releasing it would let that view read recycled
    memory. Release or drop the derived views (and copy what must outlive
    the slot), then call again."""


class Interrupted(PbringError, InterruptedError):
    """A wait was interrupted by :meth:`Ring.interrupt` (EINTR)."""


class RingRemoved(PbringError):
    """The ring was removed (``pbring rm``) while in use (EIDRM): nobody
    new can attach to it, so waiting on it is pointless."""


class ReadOnly(PbringError):
    """The ring was attached read-only (``Ring.attach(read_only=True)``)
    and the call would write to it (EROFS): opening a producer, a reader
    that is not a tap, or reclaiming. Only tap readers
    (``Reader(ring, tap=True)``) work on such a ring (FORMAT.md §9.5)."""


class Closed(PbringError, ValueError):
    """The ring, producer or reader has been closed."""


_BY_ERRNO: Dict[int, Type[PbringError]] = {
    _errno.ENOENT: RingNotFound,
    _errno.EEXIST: RingExists,
    _errno.EACCES: PermissionDenied,
    _errno.EPERM: PermissionDenied,
    _errno.EINVAL: InvalidArgument,
    _errno.EPROTO: IncompatibleRing,
    _errno.EPROTONOSUPPORT: IncompatibleRing,
    _errno.EPROTOTYPE: IncompatibleRing,
    _errno.ENOTSUP: IncompatibleRing,
    EUCLEAN: IncompatibleRing,
    _errno.ENODEV: IncompatibleRing,
    _errno.ETIMEDOUT: Timeout,
    _errno.EAGAIN: Timeout,
    _errno.EBUSY: Busy,
    _errno.EINPROGRESS: Busy,
    EMEDIUMTYPE: WrongType,
    _errno.EBADMSG: Corrupt,
    _errno.ESTALE: Stale,
    _errno.EMSGSIZE: MessageTooLarge,
    EOWNERDEAD: OwnerDead,
    _errno.EINTR: Interrupted,
    _errno.EIDRM: RingRemoved,
    _errno.EROFS: ReadOnly,
}


def error_for(err: int, ring: Optional[str] = None,
              what: Optional[str] = None,
              cls: Optional[Type[PbringError]] = None,
              seq: Optional[int] = None,
              message: Optional[str] = None) -> PbringError:
    """The exception for a libpbring return code (negative errno), with
    @message instead of the library's text if given."""
    err = abs(err)
    if cls is None:
        cls = _BY_ERRNO.get(err, PbringError)
    return cls(err, ring, what, message=message, seq=seq)
