# SPDX-License-Identifier: MIT
"""python -m pbring produce|consume (see pbring.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
