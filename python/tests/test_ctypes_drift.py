# SPDX-License-Identifier: MIT
"""The ctypes mirror (pbring/_lib.py) against the C headers.

_lib.py copies struct layouts, PBR_* constants and function signatures
from include/pbring.h and include/pbring/*.h by hand; nothing but this
test notices when a header changes and the copy does not. Declarations are
looked up in every header there is (include/pbring.h and all of
include/pbring/*.h, whichever file holds them today), never in a fixed one.

- Structs: the fields' names and order are read from the header text; a
  small C program, compiled against the repository's include/ with the
  system C compiler ($CC, else cc), prints offsetof() and sizeof() of every
  field and sizeof() of every struct, which must equal the ctypes ones.
- Constants: every PBR_* value _lib.py holds equals the header's (#define
  or enum), as the compiled program computes it; a tuple of integers (such
  as PBR_LATENCY_BOUNDS_NS) mirrors a #define of a braced initializer
  list, element by element. An array field of a struct has the element
  count its mirror says (latency[PBR_LATENCY_BUCKETS]).
- Functions: every function _lib.py binds is declared in a header, with
  as many parameters as its argtypes; a void function has restype None;
  each argument and result has the C type's size; a pointer to a mirrored
  struct points to the struct it mirrors.

An optional header that does not compile on its own after pbring.h (say it
needs nanopb's <pb.h> and that is not installed) is left out of the C
program: nothing declared in it is compiled, its #defines and enums are
evaluated from the text, and its structs are checked by names and order.

How a drift fails: rename a field of struct pbr_slot in the header (or in
_lib.py) and test_struct_layout[SlotC] fails on the field-name list, both
lists shown; reorder two fields, or widen one, and the names or the
offsets and sizes differ; change a #define and test_constant[PBR_...]
shows both values; rename a function, or add a parameter, and
test_function[pbr_...] says it is not declared, or how many parameters
each side has. A struct _lib.py adds without a line in MIRRORS below
fails test_every_mirror_is_listed. Without a C compiler the tests that
need one are skipped, with the reason.
"""
from __future__ import annotations

import ast
import ctypes
import glob
import os
import re
import shlex
import shutil
import subprocess
from typing import Dict, List, Optional, Tuple

import pytest
from conftest import REPO
from pbring import _lib

INCLUDE = os.path.join(REPO, "include")

# ctypes Structure of _lib.py -> the C struct it mirrors.
MIRRORS = {
    "CreateOpts": "pbr_create_opts",
    "AttachOpts": "pbr_attach_opts",
    "RingInfoC": "pbr_ring_info",
    "RingStatsC": "pbr_ring_stats",
    "ParticipantC": "pbr_participant",
    "ProducerOpts": "pbr_producer_opts",
    "SlotC": "pbr_slot",
    "ReaderOpts": "pbr_reader_opts",
    "ViewC": "pbr_view",
    "ReaderStatsC": "pbr_reader_stats",
}

STRUCTS = {n: getattr(_lib, n) for n in MIRRORS}
CONSTANTS = {n: v for n, v in vars(_lib).items()
             if n.startswith("PBR_") and isinstance(v, int)}
# PBR_* initializer lists: {a, b, ...} in C, tuples of ints in _lib.py
ARRAYS = {n: v for n, v in vars(_lib).items()
          if n.startswith("PBR_") and isinstance(v, tuple)}
# Every function object _lib.py holds (declared with argtypes, or raw).
FUNCS: Dict[str, List[Tuple[str, object]]] = {}
for _attr, _obj in sorted(vars(_lib).items()):
    if isinstance(_obj, ctypes._CFuncPtr):  # type: ignore[attr-defined]
        FUNCS.setdefault(_obj.__name__, []).append((_attr, _obj))


# --------------------------------------------------------------------------
# The headers, as text


def header_files() -> List[str]:
    main = os.path.join(INCLUDE, "pbring.h")
    return [main] + sorted(glob.glob(os.path.join(INCLUDE, "pbring", "*.h")))


def _rel(path: str) -> str:
    return os.path.relpath(path, INCLUDE)


def _clean(text: str) -> str:
    """Without comments and line continuations."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return text.replace("\\\n", " ")


class Header:
    def __init__(self, path: str) -> None:
        self.path = path
        self.name = _rel(path)
        self.text = _clean(open(path, encoding="utf-8").read())
        # the text without preprocessor lines, for declarations
        self.code = "\n".join(ln for ln in self.text.splitlines()
                              if not ln.lstrip().startswith("#"))
        self.defines: Dict[str, str] = {}
        for m in re.finditer(r"^\s*#\s*define\s+(\w+)(?!\()[ \t]+(.*?)\s*$",
                             self.text, flags=re.M):
            self.defines[m.group(1)] = m.group(2)
        self.enums: Dict[str, str] = {}
        for m in re.finditer(r"\benum\s+\w*\s*\{([^}]*)\}", self.code):
            prev: Optional[str] = None
            for item in m.group(1).split(","):
                item = item.strip()
                if not item:
                    continue
                name, _, val = item.partition("=")
                name = name.strip()
                self.enums[name] = (val.strip() if val else
                                    (f"({prev}) + 1" if prev else "0"))
                prev = name
        self.structs: Dict[str, List[str]] = {}
        for m in re.finditer(r"\bstruct\s+(\w+)\s*\{", self.code):
            body = _braced(self.code, m.end() - 1)
            self.structs[m.group(1)] = _fields(m.group(1), body)
        self.functions: Dict[str, Tuple[str, List[str]]] = {}
        for stmt in re.split(r"[;{}]", self.code):
            f = re.match(r"\s*(?P<ret>[^()]*?)\b(?P<name>pbr_\w+)\s*"
                         r"\((?P<params>.*)\)\s*$", stmt, flags=re.S)
            if f and f.group("ret").strip():
                self.functions[f.group("name")] = (
                    " ".join(f.group("ret").split()),
                    _params(f.group("params")))


def _braced(text: str, start: int) -> str:
    """The text between the brace at @start and its match."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    raise AssertionError("unbalanced braces in a header")


def _split_top(s: str) -> List[str]:
    """@s split at commas outside parentheses and brackets."""
    out, depth, cur = [], 0, ""
    for c in s:
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        if c == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += c
    out.append(cur)
    return out


def _declarator_name(decl: str) -> str:
    fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)  # a function pointer
    if fp:
        return fp.group(1)
    decl = re.sub(r"\[[^\]]*\]", "", decl)  # array dimensions
    decl = re.sub(r":\s*\w+\s*$", "", decl)  # bit-field width
    words = re.findall(r"\w+", decl)
    assert words, f"cannot read a declarator in {decl!r}"
    return words[-1]


def _fields(struct: str, body: str) -> List[str]:
    assert "{" not in body, (
        f"struct {struct} has a nested struct or union: teach "
        "test_ctypes_drift.py to read it")
    names = []
    for decl in body.split(";"):
        if decl.strip():
            names.extend(_declarator_name(d) for d in _split_top(decl))
    return names


def _params(params: str) -> List[str]:
    ps = [p.strip() for p in _split_top(params)]
    if ps == ["void"] or ps == [""]:
        return []
    return ps


_NOT_NAMES = {"const", "volatile", "restrict", "struct", "enum", "union",
              "unsigned", "signed", "int", "char", "short", "long", "void",
              "float", "double", "_Bool", "bool"}


def _param_type(p: str) -> str:
    """The type of parameter declaration @p (its name taken off)."""
    words = re.findall(r"\w+", p)
    last = words[-1] if words else ""
    if (len(words) > 1 or "*" in p) and last not in _NOT_NAMES and \
            not last.endswith("_t") and not re.search(r"\b(struct|enum)\s+"
                                                      + last + r"\s*$", p):
        p = re.sub(r"\b" + last + r"\s*(\[[^\]]*\])?\s*$",
                   lambda m: "*" if m.group(1) else "", p)
    return " ".join(p.split())


def _ret_type(ret: str) -> str:
    """A declaration's return type, without the library's attributes."""
    return " ".join(w for w in ret.replace("*", " * ").split()
                    if w not in ("PBR_API", "PBR_MUST_CHECK", "extern",
                                 "static", "inline")).replace(" *", "*")


HEADERS = [Header(p) for p in header_files()]


def _where(kind: str, name: str) -> List[Header]:
    return [h for h in HEADERS if name in getattr(h, kind)]


# --------------------------------------------------------------------------
# The C program


def _cc() -> Optional[List[str]]:
    cc = os.environ.get("CC")
    if cc:
        return shlex.split(cc)
    for c in ("cc", "gcc", "clang"):
        if shutil.which(c):
            return [c]
    return None


def _compile(src: str, tmp: str, out: str) -> Tuple[bool, str]:
    cc = _cc()
    assert cc is not None
    c = os.path.join(tmp, out + ".c")
    with open(c, "w") as f:
        f.write(src)
    cp = subprocess.run(cc + ["-std=gnu11", "-I", INCLUDE, "-o",
                              os.path.join(tmp, out), c],
                        capture_output=True, text=True)
    return cp.returncode == 0, cp.stderr


class Probe:
    """What the C compiler says about the headers it can include."""

    def __init__(self, tmp: str) -> None:
        main = HEADERS[0]
        self.included = [main]
        self.notes: List[str] = []
        for h in HEADERS[1:]:
            ok, err = _compile(f'#include "pbring.h"\n#include "{h.name}"\n'
                               "int main(void) { return 0; }\n", tmp,
                               "try_" + re.sub(r"\W", "_", h.name))
            if ok:
                self.included.append(h)
            else:
                self.notes.append(f"{h.name} left out of the C program "
                                  f"(does not compile after pbring.h: "
                                  f"{err.strip().splitlines()[:1]})")
        lines = ["#include <stddef.h>", "#include <stdio.h>"]
        lines += [f'#include "{h.name}"' for h in self.included]
        lines.append("int main(void) {")
        p = lines.append
        for sname in MIRRORS.values():
            hs = [h for h in _where("structs", sname) if h in self.included]
            if not hs:
                continue
            p(f'printf("S {sname} %zu\\n", sizeof(struct {sname}));')
            for f in hs[0].structs[sname]:
                p(f'printf("F {sname} {f} %zu %zu\\n", '
                  f"offsetof(struct {sname}, {f}), "
                  f"sizeof(((struct {sname} *)0)->{f}));")
        for name in CONSTANTS:
            if self.compiles_constant(name):
                p(f'printf("C {name} %llu\\n", '
                  f"(unsigned long long)({name}));")
        for i, name in enumerate(ARRAYS):
            if self.compiles_constant(name):
                p(f"{{ static const unsigned long long a{i}[] = {name};")
                p(f'printf("A {name}"); for (size_t i = 0; i < '
                  f'sizeof(a{i}) / sizeof(*a{i}); i++) printf(" %llu", '
                  f'a{i}[i]); printf("\\n"); }}')
        for fname in FUNCS:
            hs = [h for h in _where("functions", fname)
                  if h in self.included]
            if not hs:
                continue
            ret, params = hs[0].functions[fname]
            types = [_ret_type(ret)] + [_param_type(q) for q in params]
            for i, t in enumerate(types):
                if t != "void":
                    p(f'printf("P {fname} {i} %zu\\n", sizeof({t}));')
        p("return 0; }")
        ok, err = _compile("\n".join(lines) + "\n", tmp, "probe")
        assert ok, f"the probe does not compile:\n{err}"
        out = subprocess.run([os.path.join(tmp, "probe")],
                             capture_output=True, text=True,
                             check=True).stdout
        self.sizes: Dict[str, int] = {}
        self.fields: Dict[str, Dict[str, Tuple[int, int]]] = {}
        self.consts: Dict[str, int] = {}
        self.arrays: Dict[str, Tuple[int, ...]] = {}
        self.psizes: Dict[str, Dict[int, int]] = {}
        for ln in out.splitlines():
            w = ln.split()
            if w[0] == "S":
                self.sizes[w[1]] = int(w[2])
            elif w[0] == "F":
                self.fields.setdefault(w[1], {})[w[2]] = (int(w[3]),
                                                         int(w[4]))
            elif w[0] == "C":
                self.consts[w[1]] = int(w[2])
            elif w[0] == "A":
                self.arrays[w[1]] = tuple(int(x) for x in w[2:])
            elif w[0] == "P":
                self.psizes.setdefault(w[1], {})[int(w[2])] = int(w[3])

    def compiles_constant(self, name: str) -> bool:
        return any(h in self.included
                   for h in _where("defines", name) + _where("enums", name))


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    if _cc() is None:
        pytest.skip("no C compiler (cc, gcc, clang or $CC) to read the "
                    "headers' layouts with")
    return Probe(str(tmp_path_factory.mktemp("drift")))


def _text_value(name: str, seen: Tuple[str, ...] = ()) -> int:
    """A #define or enum value from the headers' text: an integer constant
    expression of literals and other such names."""
    assert name not in seen, f"{name} is defined in terms of itself"
    hs = _where("defines", name) or _where("enums", name)
    assert hs, f"{name} is not #defined, nor an enum value, in any header"
    h = hs[0]
    expr = h.defines.get(name, h.enums.get(name, ""))
    return _eval_text(expr, h.name, seen + (name,))


def _eval_text(expr: str, where: str, seen: Tuple[str, ...]) -> int:
    """An integer constant expression of literals and PBR_* names."""
    expr = re.sub(r"(?<=[0-9a-fA-FxX])[uUlL]+\b", "", expr)
    expr = re.sub(r"\b([A-Za-z_]\w*)\b",
                  lambda m: str(_text_value(m.group(1), seen)), expr)
    tree = ast.parse(expr.strip(), mode="eval")
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant,
               ast.operator, ast.unaryop)
    assert all(isinstance(n, allowed) for n in ast.walk(tree)), \
        f"{seen[-1]}: cannot evaluate {expr!r}"
    return int(eval(compile(tree, where, "eval")))


# --------------------------------------------------------------------------
# Tests


def test_headers_found() -> None:
    assert os.path.isfile(os.path.join(INCLUDE, "pbring.h")), \
        f"no include/pbring.h under {REPO} (set PBRING_SOURCE_DIR)"


def test_every_mirror_is_listed() -> None:
    mirrors = sorted(n for n, v in vars(_lib).items()
                     if isinstance(v, type) and
                     issubclass(v, ctypes.Structure) and
                     v.__module__ == _lib.__name__)
    assert mirrors == sorted(MIRRORS), (
        "a ctypes Structure of _lib.py without its C struct in MIRRORS "
        "(or one listed that _lib.py no longer has)")


@pytest.mark.parametrize("cls_name", sorted(MIRRORS))
def test_struct_layout(cls_name: str, probe: Probe) -> None:
    sname = MIRRORS[cls_name]
    cls = STRUCTS[cls_name]
    hs = _where("structs", sname)
    assert hs, f"struct {sname} ({cls_name}) is not defined in any header"
    assert len(hs) == 1, (f"struct {sname} is defined in "
                          f"{[h.name for h in hs]}")
    c_names = hs[0].structs[sname]
    py_names = [f[0] for f in cls._fields_]
    assert py_names == c_names, (
        f"{cls_name} fields differ from struct {sname} in {hs[0].name}")
    if sname not in probe.sizes:  # its header is not compiled
        pytest.skip(f"{hs[0].name} not compiled: names and order checked, "
                    f"offsets not ({'; '.join(probe.notes)})")
    c_layout = [(n, *probe.fields[sname][n]) for n in c_names]
    py_layout = [(n, getattr(cls, n).offset, getattr(cls, n).size)
                 for n in py_names]
    assert py_layout == c_layout, (
        f"{cls_name} (name, offset, size) differ from struct {sname}")
    assert ctypes.sizeof(cls) == probe.sizes[sname], (
        f"sizeof {cls_name} != sizeof(struct {sname})")


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_constant(name: str, probe: Probe) -> None:
    if probe.compiles_constant(name):
        c_value = probe.consts[name]
    else:
        c_value = _text_value(name)
    assert CONSTANTS[name] == c_value, (
        f"_lib.{name} = {CONSTANTS[name]:#x}, the headers say {c_value:#x}")


def _text_array(name: str) -> Tuple[int, ...]:
    """A #define of a braced list of integer constant expressions, from
    the headers' text."""
    hs = _where("defines", name)
    assert hs, f"{name} is not #defined in any header"
    body = hs[0].defines[name].strip()
    assert body.startswith("{") and body.endswith("}"), (
        f"{name} is not an initializer list: {body!r}")
    out = []
    for item in _split_top(body[1:-1]):
        if item.strip():
            out.append(_eval_text(item, hs[0].name, (name,)))
    return tuple(out)


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_array_constant(name: str, probe: Probe) -> None:
    if probe.compiles_constant(name):
        c_value = probe.arrays[name]
    else:
        c_value = _text_array(name)
    assert _text_array(name) == c_value  # the text reads as C does
    assert ARRAYS[name] == c_value, (
        f"_lib.{name} = {ARRAYS[name]}, the headers say {c_value}")


def test_array_fields_have_their_length() -> None:
    """An array field's element count is the constant _lib.py sizes it
    with (the byte sizes alone would not tell 23 u64 from 46 u32)."""
    for cls_name, cls in STRUCTS.items():
        for fname, ftype in cls._fields_:
            if issubclass(ftype, ctypes.Array):
                sname = MIRRORS[cls_name]
                h = _where("structs", sname)[0]
                m = re.search(r"\bstruct\s+" + sname + r"\s*\{", h.code)
                assert m
                decl = re.search(r"\b" + fname + r"\s*\[([^\]]+)\]",
                                 _braced(h.code, m.end() - 1))
                assert decl, f"struct {sname}: {fname} is not an array"
                dim = decl.group(1)
                n = _eval_text(dim, h.name, (f"{sname}.{fname}",))
                assert ftype._length_ == n, (
                    f"{cls_name}.{fname} has {ftype._length_} elements, "
                    f"struct {sname} {n} ({dim})")


def test_constant_text_evaluation(probe: Probe) -> None:
    # the fallback for headers that cannot be compiled, kept honest on
    # what can: it agrees with the compiler wherever both apply
    for name, value in probe.consts.items():
        assert _text_value(name) == value, name


def _struct_of(t: object) -> Optional[str]:
    """The C struct a ctypes POINTER(Structure) points to, if mirrored."""
    target = getattr(t, "_type_", None)
    if isinstance(target, type) and issubclass(target, ctypes.Structure):
        return MIRRORS.get(target.__name__, "?")
    return None


@pytest.mark.parametrize("fname", sorted(FUNCS))
def test_function(fname: str, probe: Probe) -> None:
    hs = _where("functions", fname)
    assert hs, f"{fname} (bound by _lib.py) is not declared in any header"
    decls = {h.name: h.functions[fname] for h in hs}
    assert len({len(p) for _, p in decls.values()}) == 1, (
        f"{fname} is declared differently in {sorted(decls)}")
    ret, params = hs[0].functions[fname]
    void = _ret_type(ret) == "void"
    sizes = probe.psizes.get(fname)
    for attr, f in FUNCS[fname]:
        argtypes = f.argtypes
        if argtypes is None:
            continue  # a raw binding: called with ready-made ctypes objects
        assert len(argtypes) == len(params), (
            f"_lib.{attr}: {len(argtypes)} argtypes, {fname} in "
            f"{hs[0].name} has {len(params)} parameters: {params}")
        if void:
            assert f.restype is None, f"_lib.{attr}: {fname} returns void"
        else:
            assert f.restype is not None, (
                f"_lib.{attr}: restype None, {fname} returns {ret}")
        for i, (t, p) in enumerate(zip(argtypes, params)):
            s = _struct_of(t)
            if s is not None:
                assert re.search(r"\bstruct\s+" + s + r"\s*\*", p), (
                    f"_lib.{attr}: argument {i + 1} points to struct {s}, "
                    f"{fname} takes {p!r}")
        if sizes is None:
            continue  # its header is not compiled
        want = [ctypes.sizeof(f.restype)] if not void else [None]
        got = [sizes.get(0)]
        want += [ctypes.sizeof(t) for t in argtypes]
        got += [sizes.get(i + 1) for i in range(len(params))]
        assert want == got, (
            f"_lib.{attr}: sizes of (result, arguments) differ from "
            f"{fname}'s in {hs[0].name}: {ret} {fname}({', '.join(params)})")
