"""``penaltyprop bench``: time a training step against the GEMM peak (:mod:`penaltyprop.bench`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import bench
from ..bench.load import LOAD_PER_CORE, check_load
from ..fsutil import atomic_write_text, check_writable_dir
from ..methods import METHODS, method_settings
from ..model_spec import PAPER_MLP, parse_model
from .common import nonneg_int, path, positive_float, positive_int
from .method_flags import add_method_flags, flag, method_from_args

#: the bench's own flags that are also method settings: with --method they set the method
SHARED = ("tau_theta", "cg_iterations")


def add(subparsers):
    p = subparsers.add_parser(
        "bench", conflict_handler="resolve",
        help="time one training step: BackProp, exact ProxProp, CG-k vs the GEMM peak",
        description="Time one training step (forward, direction, SGD update) of BackProp, "
                    "exact ProxProp and CG-k against the machine's own GEMM throughput for "
                    "the same layer shapes; print a table, optionally write JSON. Defaults: "
                    "the paper's MLP, batch 500, float32. benchmarks/targets.py checks a "
                    "result against the performance targets. With --method NAME and that "
                    "method's setting flags, time that method instead (a lifted method: one "
                    "full-batch sweep over the batch) against BackProp and its own flop "
                    "floor. See docs/performance.md and docs/family.md.")
    add_arguments(p)
    p.set_defaults(func=run)


def _model(text):
    try:
        return parse_model(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _load(text):
    """``--load K``: an integer in 0 .. LOAD_PER_CORE x the cores (:func:`bench.load.check_load`)."""
    try:
        return check_load(nonneg_int(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser):
    """Add the ``bench`` options to an :class:`argparse.ArgumentParser` (or subparser).

    Two ways to choose what is timed: the presets (``--modes``, ``--cg-iterations K ...``,
    ``--tau-theta``), or ``--method NAME`` with one flag per setting of the registered
    methods (generated, :mod:`.method_flags`). ``--tau-theta`` and ``--cg-iterations`` serve
    both: with ``--method`` they are the method's settings (one k only).
    """
    parser.conflict_handler = "resolve"  # the presets' flags replace their generated twins
    add_method_flags(parser, default=None,
                     help="time this method (its step, or a lifted method's full-batch sweep "
                          "over the batch) against BackProp instead of the presets; its "
                          "settings take the flags below and default to the method's "
                          "('--method NAME --help' shows them)")
    parser.add_argument("--model", type=_model, default=PAPER_MLP,
                        help="'mlp' (the paper's 3072-4000-1000-4000-10, default), 'cnn' "
                             "(Section 5.3), 'cnn-authors' (the CNN of the authors' code: no "
                             "third pooling, FC 1280 -> 10) or layer widths such as 784-300-10")
    parser.add_argument("--batch-size", type=positive_int, default=500, help="N (default 500)")
    parser.add_argument("--dtype", choices=bench.DTYPES, default="float32")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--repetitions", type=positive_int, default=5,
                        help="timed rounds after one warm-up round (default 5)")
    parser.add_argument("--modes", nargs="+", choices=bench.MODES, default=None,
                        help="the presets to time (default all; backprop is always included); "
                             "not with --method")
    parser.add_argument("--cg-iterations", nargs="+", type=positive_int, default=None,
                        help="k of the CG-k modes (default "
                             f"{' '.join(map(str, bench.CG_ITERATIONS))}); with --method "
                             "proxprop: its cg_iterations (one k)")
    parser.add_argument("--tau-theta", type=positive_float, default=None,
                        help=f"prox step size (default {bench.TAU_THETA:g}, the paper's; the cost "
                             "does not depend on it); with --method proxprop: its tau_theta")
    parser.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="skip timing the pieces of a step")
    parser.add_argument("--json", metavar="OUT", type=path, default=None, help="also write the results here")
    parser.add_argument("--load", type=_load, default=0, metavar="K",
                        help="time under load: K competing single-threaded GEMM processes run "
                             f"during the timings (default 0; at most {LOAD_PER_CORE} per core)")
    return parser


def run(args) -> int:
    """Run the benchmark for parsed ``args``, print the report, write the JSON; return 0."""
    execute(args)
    return 0


def _chosen(args):
    """``(modes, cg_iterations, tau_theta, methods)`` for :func:`bench.benchmark` from ``args``.

    Raises ValueError for a preset flag with ``--method``, or a method setting without it.
    """
    settings = {name for cls in METHODS.values() for name, *_ in method_settings(cls)}
    if getattr(args, "method", None) is None:
        given = sorted(n for n in settings - set(SHARED) if getattr(args, n, None) is not None)
        if given:
            raise ValueError(f"{flag(given[0])} is a method setting: it only applies with "
                             f"--method NAME")
        modes = list(dict.fromkeys(["backprop", *(args.modes or bench.MODES)]))
        return (modes, tuple(args.cg_iterations or bench.CG_ITERATIONS),
                bench.TAU_THETA if args.tau_theta is None else args.tau_theta, None)
    if args.modes is not None:
        raise ValueError("--modes chooses presets: it does not apply with --method")
    ks = args.cg_iterations
    if ks is not None and len(ks) != 1:
        raise ValueError(f"--cg-iterations takes one k with --method, got {len(ks)}")
    chosen = argparse.Namespace(**{**vars(args), "cg_iterations": ks[0] if ks else None})
    method = method_from_args(chosen)  # ValueError naming the flag
    tau_theta = getattr(method, "tau_theta", None) or bench.TAU_THETA
    return ["backprop"], bench.CG_ITERATIONS, tau_theta, [method]


def execute(args) -> dict:
    """Run the benchmark for parsed ``args``, print the report, write the JSON; the result."""
    modes, cg_iterations, tau_theta, methods = _chosen(args)
    if args.json:  # before the benchmark, not after it
        if Path(args.json).expanduser().is_dir():
            raise ValueError(f"--json {args.json} is a folder; name the file to write")
        check_writable_dir(Path(args.json).expanduser().parent, "--json's folder")  # made if missing
    result = bench.benchmark(model=args.model, batch_size=args.batch_size, dtype=args.dtype,
                             backend=args.backend, repetitions=args.repetitions, modes=modes,
                             cg_iterations=cg_iterations, tau_theta=tau_theta,
                             methods=methods, seed=args.seed, breakdown=args.breakdown,
                             load=args.load,
                             progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(bench.format_report(result))
    if args.json:
        atomic_write_text(Path(args.json).expanduser(), json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    """The ``bench`` command alone: ``main(["--model", "cnn"])``."""
    parser = add_arguments(argparse.ArgumentParser(prog="penaltyprop bench",
                                                   conflict_handler="resolve"))
    return run(parser.parse_args(argv))
