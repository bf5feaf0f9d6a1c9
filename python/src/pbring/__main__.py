# SPDX-License-Identifier: MIT
"""python -m pbring produce|consume (see pbring.cli)."""
import sys

if __name__ == "__main__":
    try:
        from .cli import main
        sys.exit(main())
    except KeyboardInterrupt:
        # Ctrl-C between main() restoring Python's handler (pbring._early)
        # and the command installing its own: the status a shell expects.
        sys.exit(130)
