# SPDX-License-Identifier: MIT
"""Imported first by the package: `python -m pbring` must not print a
traceback for a Ctrl-C that comes while Python and protobuf still load,
before the command installs its own handler (pbring.cli). The handler
here only records the signal: raising from it could land inside the
import system, which loses the exception (the command then ran on as if
never interrupted). pbring.cli.main() calls take() first and exits
128 + signal quietly. Nothing changes for other programs."""
from __future__ import annotations

import signal
import sys
from typing import Any

_sig = 0
_installed = False


def _handler(sig: int, frame: Any) -> None:
    global _sig
    _sig = _sig or sig


def take() -> int:
    """Restore Python's own SIGINT handler (KeyboardInterrupt) if this
    module replaced it; the signal that came meanwhile, or 0."""
    global _installed
    if _installed:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _installed = False
    return _sig


def _install() -> None:
    global _installed
    argv = list(getattr(sys, "orig_argv", []))
    if any(a == "-m" and b == "pbring" for a, b in zip(argv, argv[1:])):
        signal.signal(signal.SIGINT, _handler)
        _installed = True


_install()
