#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check that every §N / §N.M reference names a section of docs/FORMAT.md.

usage: tests/lint/section_refs.py [REPO_ROOT]

Scans the files git tracks (text only). A reference is to FORMAT.md unless
another document is named right before it ("DESIGN.md §9", "README §6"),
in which case it is left alone. Prints each dangling reference as
FILE:LINE: §N and exits 1 if there is any.
"""
import re
import subprocess
import sys
from pathlib import Path

HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)[. ]")
REF = re.compile(r"§\s?(\d+(?:\.\d+)?)")
# "OTHER.md §N", "README §N": a section of another document.
OTHER = re.compile(r"(?:\b(?!FORMAT)[\w./-]+\.md|\bREADME|\bDESIGN)\s*(?:§\s?[\d.]+"
                   r"(?:\s*(?:,|and|or|-|–)\s*)?)*$")


def sections(fmt: Path) -> set:
    out = set()
    for line in fmt.read_text(encoding="utf-8").splitlines():
        m = HEADING.match(line)
        if m:
            out.add(m.group(1).rstrip("."))
    return out


def tracked(root: Path) -> list:
    r = subprocess.run(["git", "-C", str(root), "ls-files", "-z"],
                       capture_output=True, check=True)
    return [root / p for p in r.stdout.decode().split("\0") if p]


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    known = sections(root / "docs" / "FORMAT.md")
    if not known:
        print("section_refs: no sections found in docs/FORMAT.md")
        return 1
    bad = 0
    for path in tracked(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        for no, line in enumerate(text.splitlines(), 1):
            for m in REF.finditer(line):
                if OTHER.search(line[:m.start()]):
                    continue
                if m.group(1).rstrip(".") not in known:
                    print(f"{path.relative_to(root)}:{no}: §{m.group(1)} "
                          "is not a section of docs/FORMAT.md")
                    bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
