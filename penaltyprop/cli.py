"""The command line: ``python -m penaltyprop COMMAND ...`` (or ``penaltyprop COMMAND``).

Commands, one module each in :mod:`penaltyprop.commands`:

* ``demo``: offline, on the shipped digits: BackProp against ProxProp (exact and CG-3) on the
  same MLP and budget; prints a table and saves a plot.
* ``train``: one training run with every setting on a flag (``--method NAME`` and one flag
  per setting of the registered methods).
* ``experiment``: rerun one of the paper's experiments.
* ``bench``: time one training step against the machine's GEMM peak.
* ``notebooks``: the teaching notebooks' student edition, lecture figures and grading.

Adding a command: write ``penaltyprop/commands/NAME.py`` with ``add(subparsers)``, which
creates its parser (with ``help=`` and a ``description``) and calls
``set_defaults(func=run)``, and ``run(args) -> int``; then list it in :data:`COMMANDS`. Bad
input anywhere raises ValueError (data problems raise
:class:`penaltyprop.data.DataError`, a ValueError); :func:`main` turns it into one line on
stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import sys

from .commands import bench, demo, experiment, notebooks, train
from .version import __version__

#: the command modules, in the order ``--help`` lists them
COMMANDS = [demo, train, experiment, bench, notebooks]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block): ``prog: error: ...``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="penaltyprop",
                    description="Proximal Backpropagation (Frerix et al., ICLR 2018) in "
                                "NumPy/CuPy. Run 'penaltyprop COMMAND --help' for a command's "
                                "options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version of penaltyprop and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted).

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) or a usage error, already printed (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # bad settings, data errors (DataError), divergence-free failures
        message = " ".join(str(err).split())  # one line
        print(f"penaltyprop {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system: a full disk, permissions, a path that is a file
        where = f"{err.filename}: " if err.filename else ""
        print(f"penaltyprop {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except MemoryError as err:  # an allocation the estimate (penaltyprop.memory) let through
        detail = f" ({' '.join(str(err).split())})" if str(err) else ""
        print(f"penaltyprop {args.command}: error: out of memory{detail}; use a smaller model, "
              f"batch or data set", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"penaltyprop {args.command}: interrupted", file=sys.stderr)
        return 130
