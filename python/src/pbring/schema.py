# SPDX-License-Identifier: MIT
"""Schemas: the serialized FileDescriptorSet a ring carries, and message
classes built from it at run time (no generated code needed).

A ring stores its message type's full name (``msg_type``) and the
FileDescriptorSet that defines it, with ``schema_hash`` = FNV-1a 64 of those
bytes (docs/FORMAT.md, 3.2). :func:`message_class` turns such a set into a
protobuf message class through a private descriptor pool, so that it never
clashes with generated code loaded into the default pool.
"""
from __future__ import annotations

import ctypes
import threading
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import Message

from . import _lib

__all__ = [
    "DEMO_MSG_TYPE", "demo_schema", "schema_hash", "file_descriptor_set",
    "file_descriptor_proto", "json_name", "message_class", "DeviceEvent",  # noqa: F822 (module __getattr__)
]

DEMO_MSG_TYPE = "pbring.demo.v1.DeviceEvent"
DEMO_SYNC_ACK = "pbring.demo.v1.SyncAck"


def demo_schema() -> bytes:
    """The demo schema's FileDescriptorSet, byte for byte the one the C
    library embeds (``pbr_demo_schema()``), so its hash matches."""
    p = ctypes.c_void_p()
    n = ctypes.c_uint32()
    _lib.pbr_demo_schema(ctypes.byref(p), ctypes.byref(n))
    return ctypes.string_at(p.value, n.value) if p.value and n.value else b""


def schema_hash(fds: bytes) -> int:
    """FNV-1a 64 of the serialized set (``pbr_schema_hash()``): 0 for no
    bytes, never 0 otherwise."""
    return int(_lib.pbr_schema_hash(fds, len(fds))) if fds else 0


def _files_of(desc: Any) -> List[Any]:
    """The FileDescriptors @desc's file needs, in protoc's
    ``--include_imports`` order: a depth-first walk of each file's imports
    in declaration order, each file once, after the files it imports."""
    out: List[Any] = []
    seen = set()

    def visit(fd: Any) -> None:
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            visit(dep)
        out.append(fd)

    visit(desc.file)
    return out


def json_name(name: str) -> str:
    """protoc's default JSON name of a field (``ToJsonName``): each
    underscore dropped and the character after it upper-cased (ASCII
    letters only), the rest kept: ``f_int32`` -> ``fInt32``,
    ``a__b`` -> ``aB``, ``x_1`` -> ``x1``."""
    out: List[str] = []
    upper = False
    for c in name:
        if c == "_":
            upper = True
        elif upper:
            out.append(c.upper() if "a" <= c <= "z" else c)
            upper = False
        else:
            out.append(c)
    return "".join(out)


def _set_json_names(fields: Iterable[Any]) -> None:
    for f in fields:
        if not f.HasField("json_name"):  # else the json_name option's
            f.json_name = json_name(f.name)


def _add_json_names(msg: Any) -> None:
    _set_json_names(msg.field)
    _set_json_names(msg.extension)
    for nested in msg.nested_type:
        _add_json_names(nested)


def file_descriptor_proto(fd: Any) -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of the FileDescriptor @fd as protoc writes
    it into a descriptor set (FORMAT.md 3.2): ``json_name`` set on every
    field and extension (the ``json_name`` option's, or protoc's
    lowerCamelCase of the name), no ``source_code_info``. Generated
    Python code embeds its files without the JSON names."""
    proto = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(proto)
    proto.ClearField("source_code_info")
    for msg in proto.message_type:
        _add_json_names(msg)
    _set_json_names(proto.extension)
    return proto


def file_descriptor_set(message: Any) -> bytes:
    """The canonical schema bytes (FORMAT.md 3.2) of a message class (or
    instance, or Descriptor): byte for byte what ``protoc --include_imports
    --descriptor_set_out`` writes for the file defining it, so that the
    schema hash is the one C and Go compute. The file and everything it
    imports, transitively, each once, dependencies first (see
    :func:`file_descriptor_proto`), serialized deterministically."""
    desc = getattr(message, "DESCRIPTOR", message)
    fds = descriptor_pb2.FileDescriptorSet()
    for fd in _files_of(desc):
        fds.file.append(file_descriptor_proto(fd))
    return bytes(fds.SerializeToString(deterministic=True))


def _toposort(files: Iterable[descriptor_pb2.FileDescriptorProto]
              ) -> List[descriptor_pb2.FileDescriptorProto]:
    by_name = {f.name: f for f in files}
    out: List[descriptor_pb2.FileDescriptorProto] = []
    state: Dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2 or name not in by_name:
            return  # done, or not in the set (the pool will say so)
        if state.get(name) == 1:
            raise ValueError(f"import cycle through {name}")
        state[name] = 1
        for dep in by_name[name].dependency:
            visit(dep)
        state[name] = 2
        out.append(by_name[name])

    for name in by_name:
        visit(name)
    return out


_cache: Dict[Tuple[bytes, str], Type[Message]] = {}
_cache_lock = threading.Lock()


def message_class(fds: bytes, msg_type: str) -> Type[Message]:
    """The message class named @msg_type, built from the serialized
    FileDescriptorSet @fds in a private descriptor pool. Cached: the same
    schema bytes and name give the same class."""
    key = (bytes(fds), msg_type)
    with _cache_lock:
        cls = _cache.get(key)
        if cls is not None:
            return cls
    if not fds:
        raise ValueError(f"no schema to build {msg_type or 'a message'} from")
    if not msg_type:
        raise ValueError("untyped ring: no message type to build")
    fdset = descriptor_pb2.FileDescriptorSet.FromString(key[0])
    pool = descriptor_pool.DescriptorPool()
    for f in _toposort(fdset.file):
        pool.Add(f)
    desc = pool.FindMessageTypeByName(msg_type)
    cls = _get_message_class(desc)
    with _cache_lock:
        return _cache.setdefault(key, cls)


def _get_message_class(desc: Any) -> Type[Message]:
    try:
        from google.protobuf.message_factory import GetMessageClass
    except ImportError:  # protobuf < 4.22
        from google.protobuf.message_factory import MessageFactory
        factory: Any = MessageFactory(desc.file.pool)  # typed for >= 4.22
        cls: Type[Message] = factory.GetPrototype(desc)
        return cls
    got: Type[Message] = GetMessageClass(desc)
    return got


_demo: Optional[Type[Message]] = None


def _demo_class() -> Type[Message]:
    global _demo
    if _demo is None:
        _demo = message_class(demo_schema(), DEMO_MSG_TYPE)
    return _demo


def __getattr__(name: str) -> Any:
    # DeviceEvent / SyncAck: the demo messages, built from the schema the C
    # library embeds (lazily, on first use).
    if name == "DeviceEvent":
        return _demo_class()
    if name == "SyncAck":
        return message_class(demo_schema(), DEMO_SYNC_ACK)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
