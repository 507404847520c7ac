"""``penaltyprop experiment NAME``: rerun one of the paper's experiments (docs/reproduction.md)."""
from __future__ import annotations

import sys

from ..backend import BACKENDS
from ..data import DataError, MissingDataError
from ..experiments import EXPERIMENTS, SCALES, run_experiment
from ..experiments.cells import CellsFailed
from ..fsutil import check_writable_dir
from ..prox import CG_VARIANTS
from .common import (
    add_download_flag,
    add_threads_flag,
    blas_threads,
    data_hint,
    nonneg_int,
    path,
    positive_int,
)


def add(subparsers):
    p = subparsers.add_parser(
        "experiment", help="rerun a paper experiment: " + ", ".join(EXPERIMENTS),
        description="Rerun one of the paper's experiments (Section 4.1, Section 5) at the "
                    "paper's scale (GPU, hours), a small scale (CPU, minutes) or a tiny "
                    "synthetic one (seconds). Writes results.json, a PNG figure and a "
                    "Markdown table; a rerun skips finished configurations. See "
                    "docs/reproduction.md.")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(parser):
    """Add the ``experiment`` command's arguments to an argparse parser."""
    parser.add_argument("name", choices=tuple(EXPERIMENTS), help="which experiment")
    parser.add_argument("--scale", choices=SCALES, default="small",
                        help="paper: the paper's setting (GPU, hours; a day on a CPU); "
                             "medium: table1 at the paper's width on 5,000 images, figure3 on "
                             "all 45,000 for 15 epochs (CPU, hours); small: minutes on a CPU "
                             "(default); tiny: synthetic data, seconds")
    parser.add_argument("--data-dir", type=path, default=None,
                        help="folder holding cifar-10-batches-bin/ (default: the cache, "
                             "$PENALTYPROP_DATA_DIR)")
    add_download_flag(parser)
    parser.add_argument("--backend", choices=BACKENDS, default="numpy",
                        help="numpy: the CPU (default); cupy: an NVIDIA GPU, with CuPy "
                             "installed (pip install cupy-cuda12x)")
    parser.add_argument("--out", type=path, default=None,
                        help="output folder (default runs/experiments/NAME-SCALE)")
    parser.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    parser.add_argument("--cg-variant", choices=CG_VARIANTS, default="textbook",
                        help="ProxProp's CG: textbook or the authors' code (figure2, table1, "
                             "figure3)")
    parser.add_argument("--optimizer", choices=("nesterov", "sgd"), default=None,
                        help="table1 only: Nesterov momentum 0.95 (default) or plain SGD")
    parser.add_argument("--model", choices=("cnn", "cnn-authors"), default=None,
                        help="figure3 only: the CNN of the paper's text ('cnn', default: three "
                             "pooled conv blocks, FC 320 -> 10) or of the authors' released "
                             "code ('cnn-authors': no third pooling, FC 1280 -> 10)")
    parser.add_argument("--cells", nargs="+", metavar="KEY", default=None,
                        help="train only these cells (e.g. 'backprop cg3' for figure2, "
                             "'cg3_tau1 cg5_tau1' for table1); the others can follow in a "
                             "later run into the same --out")
    parser.add_argument("--seeds", nargs="+", metavar="SEED", type=nonneg_int, default=None,
                        help="train every cell once per seed (e.g. '--seeds 0 1 2'); the tables "
                             "report mean and standard deviation. --seed stays the folder's base "
                             "seed: its cells keep their keys, the others are KEY@seedS "
                             "(figure2, table1, figure3)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, metavar="N", default=None,
                       help="run the cells as tasks on a local Dask cluster of N worker "
                            "processes, each with a share of the cores' BLAS threads (needs "
                            "dask[distributed]; see docs/distributed.md)")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run the cells on the workers of a running Dask scheduler, e.g. "
                            "tcp://host:8786; --out must be on a filesystem every worker sees "
                            "(checked at the start)")
    parser.add_argument("--mnist-csv", metavar="PATH", type=path, default=None,
                        help="family only: read MNIST from this CSV file (784 pixels and the "
                             "label per line, the label last or first; e.g. a 5,000-image "
                             "subset; split at random, "
                             "fixed) instead of the full set")
    add_threads_flag(parser, default=None)
    return parser


def run(args) -> int:
    """Run the ``experiment`` command; returns the exit status (2 for missing data)."""
    if args.out is not None:  # before the data and the long work
        check_writable_dir(args.out, "--out", create=False)
    try:
        with blas_threads(args.blas_threads):
            result = run_experiment(args.name, args.scale, data_dir=args.data_dir, out=args.out,
                                    seed=args.seed, backend=args.backend,
                                    cg_variant=args.cg_variant, optimizer=args.optimizer,
                                    download=args.download, mnist_csv=args.mnist_csv,
                                    model=args.model, cells=args.cells, seeds=args.seeds,
                                    **_cluster_options(args))
    except DataError as err:  # only missing data gets the flags that fetch it
        hint = data_hint(args) if isinstance(err, MissingDataError) else ""
        print(f"penaltyprop experiment: {err}{hint}", file=sys.stderr)
        return 2
    except CellsFailed as err:  # some cells failed on the Dask workers, the others are stored
        print(f"penaltyprop experiment: {err}", file=sys.stderr)
        return 1
    print(result["markdown"])
    return 0


def _cluster_options(args) -> dict:
    """``workers``, ``scheduler`` and, with either, the BLAS threads of each worker (from
    ``--blas-threads`` where the command has it)."""
    if args.workers is None and args.scheduler is None:
        return {}
    return {"workers": args.workers, "scheduler": args.scheduler,
            "blas_threads": getattr(args, "blas_threads", None)}
