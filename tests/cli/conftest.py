# SPDX-License-Identifier: MIT
"""pytest entry for the `pbring` CLI tests: the fixtures live in cliutil."""
from cliutil import pbring, pbring_path, procs, ring  # noqa: F401
