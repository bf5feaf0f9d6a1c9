# SPDX-License-Identifier: MIT
"""``.proto`` text from a FileDescriptorProto, for ``pbring schema``.

A compact printer: syntax, package, imports, options (the standard ones;
custom options are not shown), enums, messages with their nested types,
fields with labels, types and numbers, oneofs, maps as ``map<K, V>``,
proto3 ``optional``, ``json_name`` where it was given, defaults, reserved
names and ranges, extension ranges, extensions and services. Type names
are printed fully qualified (``.pkg.Msg``). What it prints compiles back
(protoc) to the same descriptors, nested types in their original order;
proto2 groups are printed as message fields, so they do not.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from google.protobuf import descriptor_pb2

from .schema import json_name as _json_default

__all__ = ["proto_text"]

_FDP = descriptor_pb2.FieldDescriptorProto

_TYPES = {
    _FDP.TYPE_DOUBLE: "double", _FDP.TYPE_FLOAT: "float",
    _FDP.TYPE_INT64: "int64", _FDP.TYPE_UINT64: "uint64",
    _FDP.TYPE_INT32: "int32", _FDP.TYPE_FIXED64: "fixed64",
    _FDP.TYPE_FIXED32: "fixed32", _FDP.TYPE_BOOL: "bool",
    _FDP.TYPE_STRING: "string", _FDP.TYPE_BYTES: "bytes",
    _FDP.TYPE_UINT32: "uint32", _FDP.TYPE_SFIXED32: "sfixed32",
    _FDP.TYPE_SFIXED64: "sfixed64", _FDP.TYPE_SINT32: "sint32",
    _FDP.TYPE_SINT64: "sint64",
}

_MAX_FIELD = 536870911  # 2^29 - 1, "max" in ranges


def _quote(s: str) -> str:
    """A .proto string literal of @s (UTF-8 kept, the rest escaped)."""
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\{ord(c):03o}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _value(field: Any, v: Any) -> str:
    """An option value as .proto text."""
    if field.enum_type is not None:
        ev = field.enum_type.values_by_number.get(v)
        return ev.name if ev is not None else str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return '"' + "".join(
            chr(b) if 0x20 <= b < 0x7F and chr(b) not in '"\\'
            else f"\\{b:03o}" for b in v) + '"'
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(v)


def _is_repeated(field: Any) -> bool:
    rep = getattr(field, "is_repeated", None)  # protobuf >= 6.31
    if rep is None:
        return bool(field.label == field.LABEL_REPEATED)
    return bool(rep)


def _options(opts: Any, skip: Tuple[str, ...] = ()) -> List[Tuple[str, str]]:
    """(name, value) of the standard options set in @opts (repeated and
    message-valued ones, and custom options, are left out)."""
    out: List[Tuple[str, str]] = []
    for f, v in opts.ListFields():
        if f.is_extension or f.name in skip or f.name == "uninterpreted_option":
            continue
        if _is_repeated(f) or f.message_type is not None:
            continue
        out.append((f.name, _value(f, v)))
    return out


def _option_lines(opts: Any, ind: str,
                  skip: Tuple[str, ...] = ()) -> List[str]:
    return [f"{ind}option {k} = {v};" for k, v in _options(opts, skip)]


def _ranges(ranges: Any, end_exclusive: bool) -> str:
    parts = []
    for r in ranges:
        end = r.end - 1 if end_exclusive else r.end
        if end == r.start:
            parts.append(str(r.start))
        elif end_exclusive and r.end - 1 >= _MAX_FIELD:
            parts.append(f"{r.start} to max")
        else:
            parts.append(f"{r.start} to {end}")
    return ", ".join(parts)


class _Printer:
    def __init__(self, fdp: descriptor_pb2.FileDescriptorProto) -> None:
        self.fdp = fdp
        self.lines: List[str] = []
        self.proto3 = fdp.syntax == "proto3"
        # full names of map entry messages -> their DescriptorProto
        self.entries: Dict[str, descriptor_pb2.DescriptorProto] = {}
        prefix = "." + fdp.package if fdp.package else ""
        for m in fdp.message_type:
            self._find_entries(m, prefix)

    def _find_entries(self, m: descriptor_pb2.DescriptorProto,
                      prefix: str) -> None:
        full = f"{prefix}.{m.name}"
        if m.options.map_entry:
            self.entries[full] = m
        for n in m.nested_type:
            self._find_entries(n, full)

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def file(self) -> str:
        f = self.fdp
        if f.syntax == "editions":
            ed = descriptor_pb2.Edition.Name(f.edition)
            self.emit(f'edition = "{ed.replace("EDITION_", "")}";')
        else:
            self.emit(f'syntax = "{f.syntax or "proto2"}";')
        if f.package:
            self.emit("")
            self.emit(f"package {f.package};")
        if f.dependency:
            self.emit("")
        public, weak = set(f.public_dependency), set(f.weak_dependency)
        for i, dep in enumerate(f.dependency):
            kind = "public " if i in public else "weak " if i in weak else ""
            self.emit(f"import {kind}{_quote(dep)};")
        opts = _option_lines(f.options, "")
        if opts:
            self.emit("")
            self.lines.extend(opts)
        for e in f.enum_type:
            self.emit("")
            self.enum(e, "")
        scope = "." + f.package if f.package else ""
        for m in f.message_type:
            self.emit("")
            self.message(m, "", scope)
        self.extensions(f.extension, "", blank=True)
        for s in f.service:
            self.emit("")
            self.service(s)
        return "\n".join(self.lines) + "\n"

    def enum(self, e: descriptor_pb2.EnumDescriptorProto, ind: str) -> None:
        self.emit(f"{ind}enum {e.name} {{")
        inner = ind + "  "
        self.lines.extend(_option_lines(e.options, inner))
        for v in e.value:
            opts = _options(v.options)
            suffix = (" [" + ", ".join(f"{k} = {x}" for k, x in opts) + "]"
                      if opts else "")
            self.emit(f"{inner}{v.name} = {v.number}{suffix};")
        if e.reserved_range:
            self.emit(f"{inner}reserved "
                      f"{_ranges(e.reserved_range, False)};")
        if e.reserved_name:
            self.emit(f"{inner}reserved "
                      f"{', '.join(_quote(n) for n in e.reserved_name)};")
        self.emit(f"{ind}}}")

    def type_name(self, f: descriptor_pb2.FieldDescriptorProto) -> str:
        if f.type in (_FDP.TYPE_MESSAGE, _FDP.TYPE_ENUM, _FDP.TYPE_GROUP):
            return f.type_name
        return _TYPES[f.type]

    def field(self, f: descriptor_pb2.FieldDescriptorProto, ind: str,
              in_oneof: bool = False) -> None:
        entry = self.entries.get(f.type_name) \
            if f.type == _FDP.TYPE_MESSAGE else None
        if entry is not None and f.label == _FDP.LABEL_REPEATED:
            k, v = entry.field[0], entry.field[1]
            head = f"map<{self.type_name(k)}, {self.type_name(v)}>"
        else:
            label = ""
            if in_oneof:
                pass
            elif f.label == _FDP.LABEL_REPEATED:
                label = "repeated "
            elif f.label == _FDP.LABEL_REQUIRED:
                label = "required "
            elif f.proto3_optional or (not self.proto3 and
                                       self.fdp.syntax != "editions"):
                label = "optional "
            head = label + self.type_name(f)
        opts: List[Tuple[str, str]] = []
        if f.HasField("default_value"):
            d = f.default_value
            if f.type == _FDP.TYPE_STRING:
                d = _quote(d)
            elif f.type == _FDP.TYPE_BYTES:
                d = f'"{d}"'  # already C-escaped in the descriptor
            opts.append(("default", d))
        if f.HasField("json_name") and f.json_name != _json_default(f.name):
            opts.append(("json_name", _quote(f.json_name)))
        opts.extend(_options(f.options))
        suffix = (" [" + ", ".join(f"{k} = {x}" for k, x in opts) + "]"
                  if opts else "")
        self.emit(f"{ind}{head} {f.name} = {f.number}{suffix};")

    def message(self, m: descriptor_pb2.DescriptorProto, ind: str,
                scope: str) -> None:
        self.emit(f"{ind}message {m.name} {{")
        inner = ind + "  "
        self.lines.extend(_option_lines(m.options, inner, ("map_entry",)))
        for e in m.enum_type:
            self.enum(e, inner)
        # Nested messages and fields interleaved so that protoc, which
        # makes a map's entry type where the map field is, rebuilds
        # nested_type in its original order.
        fields = list(m.field)
        entry_field = {}
        for i, f in enumerate(fields):
            if f.label == _FDP.LABEL_REPEATED and f.type == _FDP.TYPE_MESSAGE:
                entry_field[f.type_name] = i
        prefix = f"{scope}.{m.name}"
        done = 0
        for n in m.nested_type:
            full = f"{prefix}.{n.name}"
            if n.options.map_entry and full in entry_field:
                done = self.fields(m, fields, done, entry_field[full] + 1,
                                   inner)
            else:
                self.message(n, inner, prefix)
        self.fields(m, fields, done, len(fields), inner)
        self.extensions(m.extension, inner)
        if m.extension_range:
            self.emit(f"{inner}extensions "
                      f"{_ranges(m.extension_range, True)};")
        if m.reserved_range:
            self.emit(f"{inner}reserved "
                      f"{_ranges(m.reserved_range, True)};")
        if m.reserved_name:
            self.emit(f"{inner}reserved "
                      f"{', '.join(_quote(n) for n in m.reserved_name)};")
        self.emit(f"{ind}}}")

    def fields(self, m: descriptor_pb2.DescriptorProto,
               fields: List[descriptor_pb2.FieldDescriptorProto],
               start: int, end: int, ind: str) -> int:
        """Print fields[start:end] (a oneof's at its first field, whole);
        returns the index after the last printed."""
        i = start
        while i < end:
            f = fields[i]
            if f.HasField("oneof_index") and not f.proto3_optional:
                k = f.oneof_index
                o = m.oneof_decl[k]
                self.emit(f"{ind}oneof {o.name} {{")
                self.lines.extend(_option_lines(o.options, ind + "  "))
                while i < len(fields) and fields[i].HasField(
                        "oneof_index") and fields[i].oneof_index == k and \
                        not fields[i].proto3_optional:
                    self.field(fields[i], ind + "  ", in_oneof=True)
                    i += 1
                self.emit(f"{ind}}}")
                end = max(end, i)
                continue
            self.field(f, ind)
            i += 1
        return i

    def extensions(self, exts: Any, ind: str, blank: bool = False) -> None:
        extendee = None
        for x in exts:
            if x.extendee != extendee:
                if extendee is not None:
                    self.emit(f"{ind}}}")
                if blank:
                    self.emit("")
                self.emit(f"{ind}extend {x.extendee} {{")
                extendee = x.extendee
            self.field(x, ind + "  ")
        if extendee is not None:
            self.emit(f"{ind}}}")

    def service(self, s: descriptor_pb2.ServiceDescriptorProto) -> None:
        self.emit(f"service {s.name} {{")
        self.lines.extend(_option_lines(s.options, "  "))
        for r in s.method:
            cs = "stream " if r.client_streaming else ""
            ss = "stream " if r.server_streaming else ""
            opts = _option_lines(r.options, "    ")
            head = (f"  rpc {r.name}({cs}{r.input_type}) returns "
                    f"({ss}{r.output_type})")
            if opts:
                self.emit(head + " {")
                self.lines.extend(opts)
                self.emit("  }")
            else:
                self.emit(head + ";")
        self.emit("}")


def proto_text(fdp: descriptor_pb2.FileDescriptorProto) -> str:
    """@fdp as .proto source text (see the module's description)."""
    return _Printer(fdp).file()
