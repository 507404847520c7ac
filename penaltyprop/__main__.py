"""``python -m penaltyprop COMMAND ...``: see :mod:`penaltyprop.cli`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
