r"""Rerun the paper's experiments (Section 4.1 and Section 5) at a chosen scale.

>>> from penaltyprop.experiments import run_experiment
>>> results = run_experiment("table1", scale="small", data_dir="data")   # doctest: +SKIP

or, from the command line, ``python -m penaltyprop experiment table1 --scale small
--data-dir data``. Each writes into its output folder (default
``runs/experiments/NAME-SCALE``): ``results.json`` (settings and every finished
configuration with its per-epoch history), a PNG figure laid out like the paper's, and a
Markdown table with the paper's numbers beside ours. A rerun with the same settings skips the
configurations that finished and resumes an interrupted one from its last epoch.

Experiments (:data:`EXPERIMENTS`):

* ``figure2``: Section 5.1, Fig. 2. MLP 3072-4000-1000-4000-10, Nesterov momentum 0.95,
  batch 500; BackProp (tau = 0.05) vs ProxProp exact, cg3, cg5, cg10 (tau = 1, tau_theta = 0.05).
* ``table1``: Section 5.2, Table 1. Final full-batch loss for 9 step sizes tau, BackProp and
  ProxProp cg1/3/5 (tau_theta = 1). Optimizer: Nesterov momentum 0.95 by default (see
  docs/reproduction.md for why), plain SGD with ``optimizer="sgd"``.
* ``figure3``: Section 5.3, Fig. 3. The CNN with Adam (tau = 1e-3): BackProp vs ProxProp
  cg3 and cg10 (tau_theta = 1).
* ``conditioning``: Section 4.1. Spectra of X X^T and a_l a_l^T of the initialised MLP.

Modules: ``settings`` (the numbers of each scale), ``runner`` (methods, data, the resuming
store), ``training`` (Figs. 2, 3, Table 1), ``conditioning``, ``report`` (figures, tables).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..backend import BACKENDS
from ..data import DataError
from . import conditioning, training
from .runner import Store, load_data, log_line
from .settings import SCALES, SETTINGS

CG_VARIANTS = ("textbook", "authors")

#: name -> (run function, report function, default optimizer, paper section)
EXPERIMENTS = {
    "figure2": (training.run_figure2, training.report_figure2, "nesterov", "Section 5.1, Fig. 2"),
    "table1": (training.run_table1, training.report_table1, "nesterov", "Section 5.2, Table 1"),
    "figure3": (training.run_figure3, training.report_figure3, "adam", "Section 5.3, Fig. 3"),
    "conditioning": (conditioning.run_conditioning, conditioning.report_conditioning, None,
                     "Section 4.1"),
}
USES_CG_VARIANT = ("figure2", "table1", "figure3")
OPTIMIZER_CHOICES = {"table1": ("nesterov", "sgd")}


def default_out(name, scale, cg_variant="textbook", optimizer=None) -> Path:
    """``runs/experiments/NAME-SCALE`` (+ ``-authors``, ``-sgd`` for non-default choices)."""
    suffix = ("-authors" if cg_variant == "authors" else "") + (
        f"-{optimizer}" if optimizer not in (None, EXPERIMENTS[name][2]) else "")
    return Path("runs") / "experiments" / f"{name}-{scale}{suffix}"


def run_experiment(name, scale="small", *, data_dir=None, out=None, seed=0, backend="numpy",
                   cg_variant="textbook", optimizer=None, download=False, log=log_line) -> dict:
    """Run (or resume) one experiment and write its results, figure and table.

    Parameters
    ----------
    name : one of :data:`EXPERIMENTS`.
    scale : ``"tiny"`` (synthetic data, seconds), ``"small"`` (CIFAR-10 subset, minutes on a
        CPU) or ``"paper"`` (the paper's setting; hours, meant for a GPU).
    data_dir : path-like, the folder holding ``cifar-10-batches-bin/`` (default: the
        package's cache, ``$PENALTYPROP_DATA_DIR``).
    out : path-like, output folder (default :func:`default_out`).
    seed : int, initial parameters and minibatch order.
    backend : ``"numpy"`` or ``"cupy"``.
    cg_variant : ``"textbook"`` or ``"authors"`` (the ProxProp CG of the authors' code);
        figure2, table1 and figure3 only.
    optimizer : table1 only: ``"nesterov"`` (default, momentum 0.95) or ``"sgd"`` (plain).
    download : bool, download CIFAR-10 when it is missing.
    log : callable taking one line of progress.

    Returns
    -------
    dict, the content of ``results.json``: ``settings``, ``runs`` (key -> record),
    ``summary`` (what the table shows), ``wall_s`` and ``markdown``.

    Raises
    ------
    ValueError
        For a bad argument (named), or an ``out`` folder holding results of other settings.
    penaltyprop.data.DataError
        (a ValueError) When CIFAR-10 is missing and ``download`` is false (or fails).
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"name must be one of {tuple(EXPERIMENTS)}, got {name!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if cg_variant not in CG_VARIANTS:
        raise ValueError(f"cg_variant must be one of {CG_VARIANTS}, got {cg_variant!r}")
    if cg_variant != "textbook" and name not in USES_CG_VARIANT:
        raise ValueError(f"cg_variant only applies to {USES_CG_VARIANT}, not {name!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    run, report, default_optimizer, section = EXPERIMENTS[name]
    if optimizer is None:
        optimizer = default_optimizer
    elif optimizer not in OPTIMIZER_CHOICES.get(name, (default_optimizer,)):
        raise ValueError(f"optimizer must be one of {OPTIMIZER_CHOICES.get(name)} for "
                         f"{name!r}, got {optimizer!r}")
    settings = SETTINGS[name][scale]
    out = Path(out) if out is not None else default_out(name, scale, cg_variant, optimizer)
    data = load_data(settings, data_dir=data_dir, download=download)  # DataError if missing
    store = Store(out, {"experiment": name, "scale": scale, "numbers": settings.as_dict(),
                        "seed": seed, "cg_variant": cg_variant, "optimizer": optimizer,
                        "data": repr(data)}, log=log)
    t0 = time.perf_counter()
    summary = run(store, data, settings, seed=seed, backend=backend, cg_variant=cg_variant,
                  optimizer=optimizer)
    title = (f"{name} ({section}), scale {scale}: {data.name} {len(data.y_train)} train / "
             f"{len(data.y_val)} val / {len(data.y_test)} test" +
             (f", {optimizer}" if optimizer else "") +
             (", authors' CG" if cg_variant == "authors" else ""))
    markdown = (report(store, out, title, cg_variant) if name == "table1"
                else report(store, out, title))
    store.data["summary"] = summary
    store.data["wall_s_this_session"] = time.perf_counter() - t0
    store.data["wall_s_all_runs"] = sum(r.get("wall_s", 0.0) for r in store.data["runs"].values())
    store.save()
    log(f"wrote {out / 'results.json'}, {name}.png, {name}.md")
    return {**store.data, "markdown": markdown}


# --------------------------------------------------------------------------- command line
def add_arguments(parser):
    """Add the ``experiment`` subcommand's arguments to an argparse parser."""
    parser.add_argument("name", choices=tuple(EXPERIMENTS), help="which experiment")
    parser.add_argument("--scale", choices=SCALES, default="small",
                        help="paper: the paper's setting (GPU, hours); small: minutes on a "
                             "CPU (default); tiny: synthetic data, seconds")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding cifar-10-batches-bin/ (default: the cache, "
                             "$PENALTYPROP_DATA_DIR)")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR-10 (170 MB, checksum-verified) when missing")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy")
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/experiments/NAME-SCALE)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cg-variant", choices=CG_VARIANTS, default="textbook",
                        help="ProxProp's CG: textbook or the authors' code (figure2, table1, "
                             "figure3)")
    parser.add_argument("--optimizer", choices=("nesterov", "sgd"), default=None,
                        help="table1 only: Nesterov momentum 0.95 (default) or plain SGD")
    return parser


def run(args) -> int:
    """Run the ``experiment`` subcommand; returns the exit status (2 for missing data)."""
    try:
        result = run_experiment(args.name, args.scale, data_dir=args.data_dir, out=args.out,
                                seed=args.seed, backend=args.backend,
                                cg_variant=args.cg_variant, optimizer=args.optimizer,
                                download=args.download)
    except DataError as err:
        print(f"penaltyprop experiment: {err} (command line: --data-dir DIR or --download)",
              file=sys.stderr)
        return 2
    print(result["markdown"])
    return 0


__all__ = ["EXPERIMENTS", "SCALES", "SETTINGS", "add_arguments", "default_out", "run",
           "run_experiment"]
