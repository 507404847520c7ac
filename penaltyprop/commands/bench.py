"""``penaltyprop bench``: time a training step against the GEMM peak (:mod:`penaltyprop.bench`)."""
from __future__ import annotations

import argparse
import json
import sys

from .. import bench
from ..model_spec import PAPER_MLP, parse_model
from .common import positive_int


def add(subparsers):
    p = subparsers.add_parser(
        "bench", help="time one training step: BackProp, exact ProxProp, CG-k vs the GEMM peak",
        description="Time one training step (forward, direction, SGD update) of BackProp, "
                    "exact ProxProp and CG-k against the machine's own GEMM throughput for "
                    "the same layer shapes; print a table, optionally write JSON. Defaults: "
                    "the paper's MLP, batch 500, float32. benchmarks/targets.py checks a "
                    "result against the targets of issue 7. See docs/performance.md.")
    add_arguments(p)
    p.set_defaults(func=run)


def _model(text):
    try:
        return parse_model(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser):
    """Add the ``bench`` options to an :class:`argparse.ArgumentParser` (or subparser)."""
    parser.add_argument("--model", type=_model, default=PAPER_MLP,
                        help="'mlp' (the paper's 3072-4000-1000-4000-10, default), 'cnn' "
                             "(Section 5.3) or layer widths such as 784-300-10")
    parser.add_argument("--batch-size", type=positive_int, default=500, help="N (default 500)")
    parser.add_argument("--dtype", choices=bench.DTYPES, default="float32")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--repetitions", type=positive_int, default=5,
                        help="timed rounds after one warm-up round (default 5)")
    parser.add_argument("--modes", nargs="+", choices=bench.MODES, default=list(bench.MODES),
                        help="what to time (backprop is always included)")
    parser.add_argument("--cg-iterations", nargs="+", type=positive_int,
                        default=list(bench.CG_ITERATIONS),
                        help="k of the CG-k modes (default "
                             f"{' '.join(map(str, bench.CG_ITERATIONS))})")
    parser.add_argument("--tau-theta", type=float, default=bench.TAU_THETA,
                        help=f"prox step size (default {bench.TAU_THETA:g}, the paper's; the cost "
                             "does not depend on it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="skip timing the pieces of a step")
    parser.add_argument("--json", metavar="OUT", default=None, help="also write the results here")
    return parser


def run(args) -> int:
    """Run the benchmark for parsed ``args``, print the report, write the JSON; return 0."""
    execute(args)
    return 0


def execute(args) -> dict:
    """Run the benchmark for parsed ``args``, print the report, write the JSON; the result."""
    modes = list(dict.fromkeys(["backprop", *args.modes]))
    result = bench.benchmark(model=args.model, batch_size=args.batch_size, dtype=args.dtype,
                             backend=args.backend, repetitions=args.repetitions, modes=modes,
                             cg_iterations=tuple(args.cg_iterations), tau_theta=args.tau_theta,
                             seed=args.seed, breakdown=args.breakdown,
                             progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(bench.format_report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


def main(argv=None) -> int:
    """The ``bench`` command alone: ``main(["--model", "cnn"])``."""
    parser = add_arguments(argparse.ArgumentParser(prog="penaltyprop bench"))
    return run(parser.parse_args(argv))
