#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libpbring exports exactly its public API.

usage: tests/lint/exports.py REPO_ROOT [LIBPBRING.so]

The functions the public headers declare with PBR_API, the names the
version script (shm/pbring.map) lists, and, given a built library, the
functions `nm -D` finds defined in it must be the same three sets: an
internal function leaking out (or a public one missing) fails, naming it.
"""
import re
import subprocess
import sys
from pathlib import Path


def declared(root: Path) -> set:
    names = set()
    for h in [root / "include/pbring.h", *sorted((root / "include/pbring").glob("*.h"))]:
        text = h.read_text(encoding="utf-8")
        for m in re.finditer(r"PBR_API\b[^;{]*?\b(pbr_\w+)\s*\(", text, re.S):
            names.add(m.group(1))
    return names


def mapped(root: Path) -> set:
    text = (root / "shm/pbring.map").read_text(encoding="utf-8")
    text = re.sub(r"#.*", "", text)
    body = text[text.index("global:") + 7:text.index("local:")]
    return {n.strip() for n in body.split(";") if n.strip()}


def exported(lib: str) -> set:
    out = subprocess.run(["nm", "-D", "--defined-only", lib],
                         capture_output=True, text=True, check=True).stdout
    return {f[2].split("@")[0] for f in (ln.split() for ln in out.splitlines())
            if len(f) == 3 and f[1] in "TtWi"}


def compare(a_name: str, a: set, b_name: str, b: set) -> int:
    bad = 0
    for n in sorted(a - b):
        print(f"exports: {n} is in {a_name} but not in {b_name}")
        bad += 1
    for n in sorted(b - a):
        print(f"exports: {n} is in {b_name} but not in {a_name}")
        bad += 1
    return bad


def main() -> int:
    root = Path(sys.argv[1]).resolve()
    api = declared(root)
    bad = compare("the headers (PBR_API)", api, "shm/pbring.map", mapped(root))
    if len(sys.argv) > 2:
        bad += compare("the headers (PBR_API)", api, sys.argv[2], exported(sys.argv[2]))
    if not bad:
        print(f"exports: {len(api)} functions, headers and version script agree"
              + (" with the library" if len(sys.argv) > 2 else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
