# SPDX-License-Identifier: MIT
"""Protobuf glue (C's codec/): CRC32C, the schema a ring is created with,
the message class built from a ring's schema, and the checks that a
message class is the ring's. Schema identity (hash, FileDescriptorSet,
classes from a set) is in :mod:`pbring.schema`; the encode and decode
themselves stay inline in the producer's and reader's hot paths.
"""
from __future__ import annotations

import errno
from typing import Any, Optional, Tuple, Type

from google.protobuf.message import Message

from . import _lib
from . import schema as _schema
from ._shm import Buffer
from .errors import EMEDIUMTYPE, Corrupt, InvalidArgument, WrongType

__all__ = ["crc32c"]

_EBADMSG = errno.EBADMSG


def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC32C (Castagnoli) of @data, continuing from @crc, by the C
    library's ``pbr_crc32c()``: ``crc32c(b"123456789") == 0xE3069283``."""
    if not isinstance(data, bytes):
        data = bytes(data)
    return int(_lib.pbr_crc32c(crc, data, len(data)))


def create_schema(schema: Any, msg_type: Optional[str]
                  ) -> Tuple[bytes, Optional[str]]:
    """The FileDescriptorSet bytes and message type a ring is created
    with, from Ring.create()'s @schema and @msg_type (see there)."""
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
    return fds, msg_type


def ring_message_class(info: Any, name: str) -> Type[Message]:
    """The message class of a ring (its RingInfo @info; @name for the
    errors), built from the schema it carries."""
    if not info.msg_type:
        raise InvalidArgument(errno.EINVAL, name, message=(
            "untyped ring: it carries no message type"))
    if not info.schema:
        raise InvalidArgument(errno.EINVAL, name, message=(
            f"ring carries {info.msg_type} but no schema"))
    try:
        return _schema.message_class(info.schema, info.msg_type)
    except Exception as e:
        raise Corrupt(_EBADMSG, name, message=(
            f"cannot build {info.msg_type} from the ring's "
            f"schema: {e}")) from e


def check_send_class(cls: type, msg_type: str, name: str) -> None:
    """Can Producer.send() send instances of @cls on a ring carrying
    @msg_type ("" for raw bytes; @name for the errors)? TypeError if it is
    no protobuf message class, WrongType if it is another type."""
    desc = getattr(cls, "DESCRIPTOR", None)
    if desc is None or not hasattr(cls, "SerializeToString"):
        raise TypeError(f"send() takes a protobuf message or bytes, "
                        f"not {cls.__name__}")
    if msg_type and desc.full_name != msg_type:
        raise WrongType(EMEDIUMTYPE, name, "send", message=(
            f"ring holds {msg_type}, not {desc.full_name}"))


def check_recv_class(cls: Type[Message], msg_type: str, name: str) -> None:
    """Can a Reader parse a ring carrying @msg_type into @cls? TypeError if
    it is no protobuf message class, WrongType if it is another type."""
    desc = getattr(cls, "DESCRIPTOR", None)
    if desc is None:
        raise TypeError(f"{cls!r} is not a protobuf message class")
    if msg_type and desc.full_name != msg_type:
        raise WrongType(EMEDIUMTYPE, name, message=(
            f"ring holds {msg_type}, not {desc.full_name}"))
