# SPDX-License-Identifier: MIT
"""pbring: protobuf messages between processes on one host, through a ring
of slots in POSIX shared memory.

    import pbring

    with pbring.Ring.create("telemetry", slots=4096, schema="demo") as ring:
        with ring.producer() as p:
            p.send(pbring.DeviceEvent(id="sensor-1", seq=0))

    with pbring.Ring.attach("telemetry") as ring, pbring.Reader(ring) as rd:
        msg = rd.recv()           # class built from the ring's own schema

The binding is ctypes over libpbring, built from the repository's C sources
and shipped inside this package: every atomic operation and wait is the C
library's, so Python, C and Go processes share rings.
"""
from __future__ import annotations

from typing import Any

from . import (
    _early,  # noqa: F401  (first: quiet Ctrl-C while loading)
    demo,  # noqa: F401  (pbring.demo: the demo message helpers)
)
from .codec import crc32c
from .errors import (
    Busy,
    Closed,
    Corrupt,
    IncompatibleRing,
    Interrupted,
    InvalidArgument,
    MessageTooLarge,
    OwnerDead,
    PbringError,
    PermissionDenied,
    ReadOnly,
    RingEmpty,
    RingExists,
    RingFull,
    RingNotFound,
    RingRemoved,
    Stale,
    Timeout,
    ViewInUse,
    WrongType,
)
from .producer import Producer
from .reader import Reader, ReaderStats, SlotInfo
from .ring import (
    DEFAULT,
    LATENCY_BOUNDS_NS,
    Participant,
    Ring,
    RingInfo,
    RingStats,
    list_rings,
    unlink,
    version,
)
from .schema import DEMO_MSG_TYPE, demo_schema, file_descriptor_set, message_class, schema_hash

__version__ = "0.1.0"

__all__ = [
    "Ring", "RingInfo", "RingStats", "Participant", "Producer", "Reader",
    "ReaderStats", "SlotInfo", "DEFAULT", "crc32c", "list_rings", "unlink",
    "version", "DEMO_MSG_TYPE", "demo_schema", "file_descriptor_set",
    "message_class", "schema_hash", "DeviceEvent",
    "PbringError", "RingNotFound", "RingExists", "PermissionDenied",
    "InvalidArgument", "IncompatibleRing", "Timeout", "RingFull",
    "RingEmpty", "Busy", "WrongType", "Corrupt", "Stale",
    "MessageTooLarge", "OwnerDead", "ViewInUse", "Closed", "Interrupted",
    "RingRemoved", "ReadOnly", "LATENCY_BOUNDS_NS",
]


def __getattr__(name: str) -> Any:
    # pbring.DeviceEvent: the demo message class, built on first use from
    # the descriptor set the C library embeds.
    if name in ("DeviceEvent", "SyncAck"):
        from . import schema
        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
