# SPDX-License-Identifier: MIT
"""What rings, producers and readers share (C's shm/: segment memory,
participant handles, waits); internal.

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
import os
import sys
from typing import TYPE_CHECKING, Any, Optional, Union

from . import _lib

if TYPE_CHECKING:
    from .ring import Ring

Buffer = Union[bytes, bytearray, memoryview]
Seconds = Optional[float]

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
