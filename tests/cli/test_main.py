# SPDX-License-Identifier: MIT
"""`pbring` itself: --help, --version, no command, unknown command, and
`COMMAND --help` for every subcommand."""
import os
import re

import pytest

from cliutil import shm_path

COMMANDS = ["create", "produce", "consume", "stat", "ls", "rm", "demo"]


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help(pbring, flag):
    r = pbring(flag)
    assert r.rc == 0, r
    assert r.err == ""
    assert r.out.startswith("usage: pbring [--log-format json] COMMAND "
                            "[ARGS]\n")
    for cmd in COMMANDS:
        assert re.search(rf"^  {cmd} ", r.out, re.M), cmd
    assert "0 success" in r.out and "2 usage error" in r.out


def test_version(pbring):
    r = pbring("--version")
    assert r.rc == 0, r
    assert r.err == ""
    assert re.fullmatch(r"pbring \d+\.\d+\.\d+\S* \(segment format 1\.3\)\n",
                        r.out), r.out


def test_no_args_is_usage_error(pbring):
    r = pbring()
    assert r.rc == 2, r
    assert r.out == ""
    # the usage goes to stderr, since it is an error
    assert r.err.startswith("usage: pbring [--log-format json] COMMAND")
    assert r.err == pbring("--help").out


def test_unknown_command(pbring):
    r = pbring("frobnicate", "x")
    assert r.rc == 2, r
    assert r.out == ""
    assert r.err == "pbring: unknown command 'frobnicate' (see 'pbring --help')\n"


@pytest.mark.parametrize("cmd", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_command_help(pbring, cmd, flag):
    r = pbring(cmd, flag)
    assert r.rc == 0, r
    assert r.err == ""
    assert r.out.startswith(f"usage: pbring {cmd}"), r.out


@pytest.mark.parametrize("cmd", ["create", "produce", "consume", "stat", "rm"])
def test_command_help_after_ring(pbring, ring, cmd):
    """--help anywhere on the line wins, and touches no ring."""
    name = ring()
    r = pbring(cmd, name, "--help")
    assert r.rc == 0, r
    assert r.out.startswith(f"usage: pbring {cmd}")
    assert r.err == ""
    assert not os.path.exists(shm_path(name))
