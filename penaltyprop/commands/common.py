"""What the commands share: argparse types, the ``--progress``, ``--blas-threads`` and
``--download`` flags, printing beside a progress bar, and a one-line description of a data
set."""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path

from tqdm import tqdm


def number(kind, minimum, strict):
    """An argparse type: a finite ``kind`` (int or float) > minimum (strict) or >= minimum."""
    relation = ">" if strict else ">="

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) \
                or (value <= minimum if strict else value < minimum):
            what = "an integer" if kind is int else "a finite number"
            raise argparse.ArgumentTypeError(f"expected {what} {relation} {minimum}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__} {relation} {minimum}"  # argparse's "invalid ... value"
    return parse


def path(text):
    """An argparse type: a non-empty path (``--out ""``, e.g. from an unset variable, would
    otherwise mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return Path(text)


positive_float = number(float, 0, strict=True)
nonneg_float = number(float, 0, strict=False)
positive_int = number(int, 1, strict=False)
nonneg_int = number(int, 0, strict=False)


def blas_threads(n):
    """Context manager limiting NumPy's and SciPy's BLAS to ``n`` threads (None: no limit).

    Uses ``threadpoolctl``; without it, a no-op. Small matrices (the demo's are at most
    100 x 100) gain nothing from BLAS threads, and on a busy machine waiting for them
    costs far more than the products themselves. Results do not depend on it.
    """
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def add_threads_flag(parser, default):
    parser.add_argument("--blas-threads", type=positive_int, default=default,
                        help="threads for NumPy's and SciPy's BLAS (needs threadpoolctl; "
                             + ("default 1: the demo's matrices are too small to gain from "
                                "more" if default else "default: the library's own") + ")")


def add_download_flag(parser):
    """``--download`` / ``--no-download``: a missing data set is downloaded unless
    ``--no-download`` is given (``args.download``, default True). ``train`` and
    ``experiment`` share it, so that the flag means the same in both."""
    parser.add_argument("--download", action=argparse.BooleanOptionalAction, default=True,
                        help="a missing data set (CIFAR-10, MNIST) is downloaded into the data "
                             "folder and checksum-verified; --no-download fails instead")


def data_hint(args) -> str:
    """What to do on the command line when data is missing: ``" (command line: ...)"``."""
    return (" (command line: --data-dir DIR" +
            ("" if args.download else ", or leave out --no-download to download it") + ")")


def add_progress_flag(parser):
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: when stderr is a terminal)")


def say(line=""):
    """Print a line to stdout without breaking a tqdm progress bar."""
    tqdm.write(line, file=sys.stdout)


def describe_data(ds) -> str:
    return (f"{ds.name} ({len(ds.y_train)} train / {len(ds.y_val)} val / {len(ds.y_test)} "
            f"test samples)")
