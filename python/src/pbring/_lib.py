# SPDX-License-Identifier: MIT
"""ctypes binding of libpbring (include/pbring.h).

The shared library is the one built from the repository's C sources and
installed inside this package (libpbring.so next to this file). For
development, $PBRING_LIBRARY may name another build of it.

Only what Python needs is declared. Every atomic operation and every wait
stays in C; Python only moves bytes and fills the plain structs.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import (
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_uint,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any

# Constants of pbring.h / pbring/layout.h.
PBR_NAME_MAX = 63
PBR_MSG_TYPE_MAX = 191
PBR_SLOT_HDR_SIZE = 64
PBR_CREATE_SINGLE_PRODUCER = 0x1
PBR_CREATE_DURABLE_READERS = 0x2  # format 1.3: durable readers allowed
PBR_FEATURE_DURABLE_READERS = 0x1  # features_incompat bit (1.3)
PBR_READER_NAME_SIZE = 32  # a durable reader's name, NUL included
PBR_CRC_FULL = 0  # CRC policies (pbr_create_opts.crc, pbr_ring_info.crc)
PBR_CRC_NONE = 1
PBR_CRC_UPTO = 2
PBR_ATTACH_ANY_OWNER = 0x1
PBR_ATTACH_READONLY = 0x2  # open O_RDONLY, map PROT_READ: tap readers only
PBR_READER_GATING = 0x1
PBR_READER_LOSSY = 0x2
PBR_READER_DURABLE = 0x4  # format 1.3: a durable (named) gating reader
PBR_READER_LATENCY = 0x100  # open flag: record commit-to-receive latency
PBR_READER_TAP = 0x200  # open flag: a tap, no entry, writes nothing (§9.5)
PBR_START_OLDEST = 0
PBR_START_LATEST = 1
PBR_SLOT_F_CRC = 0x1
PBR_VIEW_UNSTABLE = 0x1  # the slot may be overwritten while held
PBR_SLOT_F_SKIP = 0x2
PBR_SLOT_F_TRACE = 0x4
PBR_SLOT_F_SOURCE = 0x8  # format 1.3: a source id after the payload
PBR_WAIT_BLOCK = 0
PBR_WAIT_SPIN = 1
PBR_WAIT_YIELD = 2
PBR_DECODE_NOVERIFY = 0x1
# Reader metrics (format 1.2, FORMAT.md §5.5): the latency histogram's
# buckets, not cumulative; upper bounds of buckets 0..21 in ns, bucket 22
# counts what is above 1 s.
PBR_LATENCY_BUCKETS = 23
PBR_LATENCY_BOUNDS_NS = (
    100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000,
    500000, 1000000, 2000000, 5000000, 10000000, 20000000, 50000000,
    100000000, 200000000, 500000000, 1000000000)


class CreateOpts(Structure):
    _fields_ = [
        ("slot_count", c_uint32),
        ("slot_size", c_uint32),
        ("max_producers", c_uint32),
        ("max_readers", c_uint32),
        ("mode", c_uint32),
        ("flags", c_uint32),
        ("seq_base", c_uint64),
        ("msg_type", c_char_p),
        ("schema", c_void_p),
        ("schema_len", c_uint32),
        ("schema_hash", c_uint64),
        ("crc", c_uint32),        # PBR_CRC_*; 0 = PBR_CRC_FULL
        ("crc_limit", c_uint32),  # PBR_CRC_UPTO only: bytes; else 0
    ]


class AttachOpts(Structure):
    _fields_ = [("timeout_ns", c_int64), ("flags", c_uint32)]


class RingInfoC(Structure):
    _fields_ = [
        ("name", c_char * (PBR_NAME_MAX + 1)),
        ("msg_type", c_char * (PBR_MSG_TYPE_MAX + 1)),
        ("format_major", c_uint16),
        ("format_minor", c_uint16),
        ("ring_flags", c_uint32),
        ("slot_count", c_uint32),
        ("slot_size", c_uint32),
        ("payload_cap", c_uint32),
        ("max_producers", c_uint32),
        ("max_readers", c_uint32),
        ("total_size", c_uint64),
        ("seq_base", c_uint64),
        ("schema_hash", c_uint64),
        ("created_ns", c_uint64),
        ("schema_len", c_uint32),
        ("creator_uid", c_uint32),
        ("creator_pid", c_uint32),
        ("schema", c_void_p),
        ("crc", c_uint32),        # CRC policy, PBR_CRC_* (unknown: FULL)
        ("crc_limit", c_uint32),
        ("features_incompat", c_uint64),  # PBR_FEATURE_DURABLE_READERS
        ("features_compat", c_uint64),
    ]


class RingStatsC(Structure):
    _fields_ = [
        ("claimed", c_uint64),
        ("abandoned", c_uint64),
        ("producers_reaped", c_uint64),
        ("readers_reaped", c_uint64),
    ]


class ParticipantC(Structure):
    _fields_ = [
        ("index", c_uint32),
        ("is_reader", c_uint8),
        ("alive", c_uint8),
        ("flags", c_uint32),
        ("pid", c_uint32),
        ("position", c_uint64),
        ("pending", c_uint64),
        ("delivered", c_uint64),
        ("lost", c_uint64),
        ("abandoned", c_uint64),
        ("bytes", c_uint64),
        ("aborts", c_uint64),
        ("blocked_ns", c_uint64),
        # readers (format 1.2; 0 from an earlier reader)
        ("bad", c_uint64),
        ("crc_errors", c_uint64),
        ("decode_errors", c_uint64),
        ("has_latency", c_uint8),  # its metrics block is its own
        ("latency_sum_ns", c_uint64),
        ("latency", c_uint64 * PBR_LATENCY_BUCKETS),
        # durable readers (format 1.3)
        ("durable", c_uint8),
        ("detached", c_uint8),
        ("name", c_char * PBR_READER_NAME_SIZE),
    ]


class ProducerOpts(Structure):
    _fields_ = [("wait", c_int), ("flags", c_uint32)]


class SlotC(Structure):
    _fields_ = [
        ("data", c_void_p),
        ("cap", c_uint32),
        ("flags", c_uint16),
        ("trace_flags", c_uint8),
        ("reserved", c_uint8),
        ("seq", c_uint64),
        ("crc32c", c_uint32),
        ("reserved2", c_uint32),
        ("timestamp_ns", c_uint64),
        ("trace_id", c_uint8 * 16),
        ("span_id", c_uint8 * 8),
        ("source", c_uint64 * 2),  # with PBR_SLOT_F_SOURCE (format 1.3)
    ]


class ReaderOpts(Structure):
    _fields_ = [("flags", c_uint32), ("start", c_uint32), ("wait", c_int),
                ("name", c_char_p)]  # PBR_READER_DURABLE: its name


class ViewC(Structure):
    _fields_ = [
        ("data", c_void_p),
        ("len", c_uint32),
        ("producer", c_uint16),
        ("flags", c_uint16),
        ("seq", c_uint64),
        ("timestamp_ns", c_uint64),
        ("crc32c", c_uint32),
        ("vflags", c_uint32),
        ("trace_id", c_void_p),
        ("span_id", c_void_p),
        ("trace_flags", c_uint8),
        ("reserved", c_uint8 * 7),
        ("source", c_uint64 * 2),  # with PBR_SLOT_F_SOURCE (format 1.3)
    ]


class ReaderStatsC(Structure):
    _fields_ = [
        ("cursor", c_uint64),
        ("delivered", c_uint64),
        ("lost", c_uint64),
        ("abandoned", c_uint64),
        ("bad", c_uint64),
        ("missed", c_uint64),
        ("crc_errors", c_uint64),     # pbr_reader_verify() failures
        ("decode_errors", c_uint64),  # pbr_reader_reject() calls counted
    ]


# Offsets inside struct pbr_view, for reading a batch without building a
# Structure per view (the hot path of Reader.views()).
VIEW_SIZE = ctypes.sizeof(ViewC)
VIEW_U64 = VIEW_SIZE // 8          # views as a flat array of u64
VIEW_DATA_U64 = ViewC.data.offset // 8
VIEW_LEN_U32 = ViewC.len.offset // 4
VIEW_SEQ_U64 = ViewC.seq.offset // 8
VIEW_VFLAGS_U64 = ViewC.vflags.offset // 8  # the high half of that word
# Checks of the binding's layout, kept under python -O (not asserts).
if ViewC.vflags.offset % 8 != 4:
    raise AssertionError(ViewC.vflags.offset)
VIEW_SOURCE_U64 = ViewC.source.offset // 8
if VIEW_SIZE % 8 != 0 or VIEW_SIZE != 80:
    raise AssertionError(VIEW_SIZE)
SLOT_SOURCE_U64 = SlotC.source.offset // 8  # within struct pbr_slot
if ctypes.sizeof(SlotC) != 80 or SLOT_SOURCE_U64 != 8:
    raise AssertionError((ctypes.sizeof(SlotC), SLOT_SOURCE_U64))


def _library_path() -> str:
    env = os.environ.get("PBRING_LIBRARY")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "libpbring.so")


def _load() -> ctypes.CDLL:
    path = _library_path()
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            f"pbring: cannot load libpbring from {path}: {e} (install the "
            "package with pip from the repository, which builds it, or set "
            "PBRING_LIBRARY to a built libpbring.so)") from e


lib = _load()

_P = c_void_p  # opaque handles are passed around as integers


def _missing(name: str, e: AttributeError) -> ImportError:
    return ImportError(
        f"pbring: {_library_path()} does not export {name} ({e}): a "
        "libpbring older than this package, or built without it (rebuild "
        "it from the same checkout, or set PBRING_LIBRARY to one that has "
        "it)")


def _fn(name: str, restype: Any, *argtypes: Any) -> Any:
    try:
        f = getattr(lib, name)
    except AttributeError as e:
        raise _missing(name, e) from e
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


pbr_version = _fn("pbr_version", c_char_p)
pbr_strerror = _fn("pbr_strerror", c_char_p, c_int)
pbr_ring_create = _fn("pbr_ring_create", c_int, c_char_p,
                      POINTER(CreateOpts), POINTER(c_void_p))
pbr_ring_attach = _fn("pbr_ring_attach", c_int, c_char_p,
                      POINTER(AttachOpts), POINTER(c_void_p))
pbr_ring_detach = _fn("pbr_ring_detach", None, _P)
pbr_ring_unlink = _fn("pbr_ring_unlink", c_int, c_char_p)
pbr_name_check = _fn("pbr_name_check", c_int, c_char_p)
pbr_ring_info = _fn("pbr_ring_info", None, _P, POINTER(RingInfoC))
pbr_ring_stats = _fn("pbr_ring_stats", None, _P, POINTER(RingStatsC))
pbr_ring_participants = _fn("pbr_ring_participants", c_int, _P,
                            POINTER(ParticipantC), c_uint)
pbr_ring_reclaim = _fn("pbr_ring_reclaim", c_int, _P)
pbr_ring_check = _fn("pbr_ring_check", c_int, _P)
pbr_ring_last_commit = _fn("pbr_ring_last_commit", c_int, _P,
                            POINTER(c_uint64), POINTER(c_uint64))
pbr_ring_interrupt = _fn("pbr_ring_interrupt", None, _P)
pbr_ring_interrupted = _fn("pbr_ring_interrupted", c_int, _P)
pbr_ring_check_type = _fn("pbr_ring_check_type", c_int, _P, c_char_p,
                          c_uint64)

pbr_producer_open = _fn("pbr_producer_open", c_int, _P,
                        POINTER(ProducerOpts), POINTER(c_void_p))
pbr_producer_close = _fn("pbr_producer_close", c_int, _P)
pbr_producer_id = _fn("pbr_producer_id", c_uint16, _P)
# The slot is passed as an address (an int): cheaper than byref() per call.
pbr_producer_reserve = _fn("pbr_producer_reserve", c_int, _P, c_int64, _P)
pbr_producer_commit = _fn("pbr_producer_commit", c_int, _P, _P, c_uint32)
pbr_producer_abort = _fn("pbr_producer_abort", c_int, _P, _P)
pbr_producer_wants_crc = _fn("pbr_producer_wants_crc", c_int, _P, c_uint32)
pbr_producer_send = _fn("pbr_producer_send", c_int, _P, c_void_p, c_uint32,
                        c_uint, c_int64)
pbr_producer_send_source = _fn("pbr_producer_send_source", c_int, _P,
                               c_void_p, c_uint32, c_uint, c_uint64,
                               c_uint64, c_int64)

pbr_reader_open = _fn("pbr_reader_open", c_int, _P, POINTER(ReaderOpts),
                      POINTER(c_void_p))
pbr_reader_close = _fn("pbr_reader_close", None, _P)
# Durable readers (format 1.3, FORMAT.md §9.6)
pbr_reader_drop = _fn("pbr_reader_drop", c_int, _P)
pbr_reader_durable = _fn("pbr_reader_durable", c_int, _P)
pbr_reader_name_check = _fn("pbr_reader_name_check", c_int, c_char_p)
pbr_ring_drop_reader = _fn("pbr_ring_drop_reader", c_int, _P, c_char_p)
pbr_reader_peek_batch = _fn("pbr_reader_peek_batch", c_int, _P, _P, c_uint,
                            c_int64)
pbr_reader_release = _fn("pbr_reader_release", c_int, _P, _P)
pbr_reader_stats = _fn("pbr_reader_stats", None, _P, POINTER(ReaderStatsC))
pbr_reader_index = _fn("pbr_reader_index", c_uint32, _P)
# Views by address: CRC check counted in crc_errors, and a payload the
# application could not decode counted in decode_errors (FORMAT.md §5.6).
pbr_reader_verify = _fn("pbr_reader_verify", c_int, _P, _P)
pbr_reader_reject = _fn("pbr_reader_reject", c_int, _P, _P)

# CRC32C: buf is bytes or an address (c_void_p takes both).
pbr_crc32c = _fn("pbr_crc32c", c_uint32, c_uint32, c_void_p, c_size_t)
pbr_view_verify = _fn("pbr_view_verify", c_int, _P)
# Trace context (FORMAT.md §6): a traceparent in and out of a slot.
PBR_TRACEPARENT_LEN = 55
pbr_traceparent_parse = _fn("pbr_traceparent_parse", c_int, c_char_p,
                            c_void_p, c_void_p, c_void_p)
pbr_slot_set_traceparent = _fn("pbr_slot_set_traceparent", c_int, _P,
                               c_char_p)
pbr_view_traceparent = _fn("pbr_view_traceparent", c_int, _P, c_void_p,
                           c_size_t)
pbr_schema_hash = _fn("pbr_schema_hash", c_uint64, c_void_p, c_size_t)
pbr_demo_schema = _fn("pbr_demo_schema", None, POINTER(c_void_p),
                      POINTER(c_uint32))

# The same functions without argtypes, for the hot paths: ctypes then
# passes ctypes objects (c_void_p handles and addresses, c_int64 timeouts)
# and bytes straight through, which costs a third of converting each
# argument through argtypes. Only call these with ctypes objects, bytes,
# or ints that fit a C int.
def _raw(name: str, restype: Any = c_int) -> Any:
    try:
        f = lib[name]  # a new function object, not the one declared above
    except AttributeError as e:
        raise _missing(name, e) from e
    f.restype = restype
    return f


raw_reader_peek_batch = _raw("pbr_reader_peek_batch")
raw_reader_release = _raw("pbr_reader_release")
raw_reader_verify = _raw("pbr_reader_verify")
raw_reader_reject = _raw("pbr_reader_reject")
raw_producer_reserve = _raw("pbr_producer_reserve")
raw_producer_commit = _raw("pbr_producer_commit")
raw_crc32c = _raw("pbr_crc32c", c_uint32)
