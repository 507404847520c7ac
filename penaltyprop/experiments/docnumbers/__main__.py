"""``python -m penaltyprop.experiments.docnumbers [--write]``: see the package docstring."""
import sys

from . import main

sys.exit(main())
