r"""Which experiments there are, and :func:`run_experiment`, which runs (or resumes) one.

Each experiment is an :class:`Experiment`: its run and report functions (in ``training``
and ``conditioning``), its default optimizer and the paper's section. ``run_experiment``
checks the arguments, loads the data, opens the resuming :class:`~.runner.Store` in the
output folder, runs, and writes the figure, the Markdown table and ``results.json``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, NamedTuple

from ..backend import BACKENDS
from ..checks import check_int
from . import conditioning, family, training
from .runner import Store, load_data, log_line
from .settings import FAMILY_SETTINGS, SCALES, SETTINGS


class Experiment(NamedTuple):
    """One experiment of the paper.

    Attributes
    ----------
    run : ``run(store, data, scale, *, seed, backend, cg_variant, optimizer) -> summary``.
    report : ``report(store, out, title, *, cg_variant) -> Markdown`` (writes figure and table).
    optimizer : the default optimizer (``"nesterov"``, ``"adam"``), None for none.
    section : where the paper has it.
    methods : ``methods(cg_variant) -> [method, ...]``, the training methods it compares
        (None: it trains nothing, and takes no ``cg_variant``).
    optimizers : the optimizers it accepts (default: only its own).
    runner : optional ``runner(scale_name, scale, *, data_dir, out, seed, backend, download,
        mnist_csv, log) -> dict`` that runs the whole experiment instead of ``run`` and
        ``report`` (the family comparison: several data sets, a store each).
    scales : optional ``{scale: numbers}`` of an experiment that is not in ``SETTINGS``.
    models : the networks it can train (the first is the default; empty: its network is
        fixed); ``run`` then takes ``model=``.
    cells : optional ``cells(cg_variant) -> [key, ...]``, the store keys of its
        configurations (for a run of a subset of them).
    """

    run: Callable
    report: Callable
    optimizer: str | None
    section: str
    methods: Callable | None = None
    optimizers: tuple = ()
    runner: Callable | None = None
    scales: dict | None = None
    models: tuple = ()
    cells: Callable | None = None


#: name -> :class:`Experiment`
EXPERIMENTS = {
    "figure2": Experiment(training.run_figure2, training.report_figure2, "nesterov",
                          "Section 5.1, Fig. 2", training.figure2_methods,
                          cells=training.method_keys(training.figure2_methods)),
    "table1": Experiment(training.run_table1, training.report_table1, "nesterov",
                         "Section 5.2, Table 1", training.table1_methods, ("nesterov", "sgd"),
                         cells=training.table1_keys),
    "figure3": Experiment(training.run_figure3, training.report_figure3, "adam",
                          "Section 5.3, Fig. 3", training.figure3_methods,
                          models=training.FIGURE3_MODELS,
                          cells=training.method_keys(training.figure3_methods)),
    "conditioning": Experiment(conditioning.run_conditioning, conditioning.report_conditioning,
                               None, "Section 4.1"),
    "family": Experiment(None, None, None, "the penalty-training family",
                         family.family_methods, runner=family.run_family,
                         scales=FAMILY_SETTINGS),
}


def default_out(name, scale, cg_variant="textbook", optimizer=None, model=None) -> Path:
    """``runs/experiments/NAME-SCALE`` (+ ``-authors``, ``-sgd``, ``-cnn-authors`` for
    non-default choices)."""
    models = EXPERIMENTS[name].models
    suffix = ("-authors" if cg_variant == "authors" else "") + (
        f"-{optimizer}" if optimizer not in (None, EXPERIMENTS[name].optimizer) else "") + (
        f"-{model}" if model not in (None, *models[:1]) else "")
    return Path("runs") / "experiments" / f"{name}-{scale}{suffix}"


def run_experiment(name, scale="small", *, data_dir=None, out=None, seed=0, backend="numpy",
                   cg_variant="textbook", optimizer=None, download=False, log=log_line,
                   mnist_csv=None, model=None, cells=None) -> dict:
    """Run (or resume) one experiment and write its results, figure and table.

    Parameters
    ----------
    name : one of :data:`EXPERIMENTS`.
    scale : ``"tiny"`` (synthetic data, seconds), ``"small"`` (CIFAR-10 subset, minutes on a
        CPU), ``"medium"`` (table1 and figure3 only: hours on a CPU, see
        :mod:`~penaltyprop.experiments.settings`) or ``"paper"`` (the paper's setting; hours
        on a GPU).
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
    mnist_csv : path-like, family only: an MNIST CSV file (784 pixels and the label per
        line, :mod:`penaltyprop.data.mnist_csv`) used instead of the full MNIST set.
    model : figure3 only: ``"cnn"`` (the paper's text, default) or ``"cnn-authors"`` (the
        CNN of the authors' code: no third pooling, FC 1280 -> 10).
    cells : optional list of configuration keys (``"backprop"``, ``"cg3"``,
        ``"cg3_tau0.5"``, ...): train only these; the others can follow in a later run
        into the same ``out`` (not for family).

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
    experiment = EXPERIMENTS[name]
    if experiment.methods is not None:
        experiment.methods(cg_variant)  # the methods check cg_variant (ValueError naming it)
    elif cg_variant != "textbook":
        uses = tuple(k for k, e in EXPERIMENTS.items() if e.methods is not None)
        raise ValueError(f"cg_variant only applies to {uses}, not {name!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    seed = check_int(seed, "seed", 0)  # before a results.json is written
    if optimizer is None:
        optimizer = experiment.optimizer
    elif optimizer not in (experiment.optimizers or (experiment.optimizer,)):
        raise ValueError(f"optimizer must be one of {experiment.optimizers or None} for "
                         f"{name!r}, got {optimizer!r}")
    if model is None:
        model = experiment.models[0] if experiment.models else None
    elif model not in experiment.models:
        uses = tuple(k for k, e in EXPERIMENTS.items() if e.models)
        raise ValueError(f"model must be one of {experiment.models} for {name!r}, got {model!r}"
                         if experiment.models else
                         f"model only applies to {uses}, not {name!r}")
    if cells is not None:
        if experiment.cells is None:
            raise ValueError(f"cells do not apply to {name!r}; it trains every cell")
        if isinstance(cells, str) or not all(isinstance(c, str) for c in cells) or not cells:
            raise ValueError(f"cells must be a non-empty list of configuration keys, got {cells!r}")
        keys = experiment.cells(cg_variant)
        unknown = [c for c in cells if c not in keys]
        if unknown:
            raise ValueError(f"cells {', '.join(unknown)} not in {name!r}; its cells are "
                             f"{', '.join(keys)}")
    scales = SETTINGS[name] if experiment.scales is None else experiment.scales
    if scale not in scales:
        raise ValueError(f"scale {scale!r} is not defined for {name!r} (it has "
                         f"{', '.join(scales)})")
    settings = scales[scale]
    out = Path(out) if out is not None else default_out(name, scale, cg_variant, optimizer, model)
    if experiment.runner is not None:  # several data sets: the experiment runs itself
        return experiment.runner(scale, settings, data_dir=data_dir, out=out, seed=seed,
                                 backend=backend, download=download, mnist_csv=mnist_csv,
                                 log=log)
    if mnist_csv is not None:
        uses = tuple(k for k, e in EXPERIMENTS.items() if e.runner is not None)
        raise ValueError(f"mnist_csv only applies to {uses}, not {name!r}")
    data = load_data(settings, data_dir=data_dir, download=download)  # DataError if missing
    store = Store(out, {"experiment": name, "scale": scale, "numbers": settings.as_dict(),
                        "seed": seed, "cg_variant": cg_variant, "optimizer": optimizer,
                        "data": repr(data), **({"model": model} if model is not None else {})},
                  log=log, cells=cells)
    with store:  # the experiment folder is ours until the end (a second run fails at once)
        t0 = time.perf_counter()
        summary = experiment.run(store, data, settings, seed=seed, backend=backend,
                                 cg_variant=cg_variant, optimizer=optimizer,
                                 **({"model": model} if model is not None else {}))
        title = (f"{name} ({experiment.section}), scale {scale}: {data.name} {len(data.y_train)} "
                 f"train / {len(data.y_val)} val / {len(data.y_test)} test" +
                 (f", {model}" if model not in (None, *experiment.models[:1]) else "") +
                 (f", {optimizer}" if optimizer else "") +
                 (", authors' CG" if cg_variant == "authors" else ""))
        markdown = experiment.report(store, out, title, cg_variant=cg_variant)
        store.data["summary"] = summary
        store.data["wall_s_this_session"] = time.perf_counter() - t0
        store.data["wall_s_all_runs"] = sum(r.get("wall_s", 0.0) for r in store.data["runs"].values())
        store.save()
        log(f"wrote {out / 'results.json'}, {name}.png, {name}.md")
    return {**store.data, "markdown": markdown}
