r"""Which experiments there are, and :func:`run_experiment`, which runs (or resumes) one.

Each experiment is an :class:`Experiment`: its run and report functions (in ``training``
and ``conditioning``), its default optimizer and the paper's section. ``run_experiment``
checks the arguments, loads the data, opens the resuming :class:`~.runner.Store` in the
output folder (and, with ``workers`` or ``scheduler``, a Dask cluster for the cells:
:mod:`.dask_cells`), runs, and writes the figure, the Markdown table and ``results.json``.
"""
from __future__ import annotations

import contextlib
import time
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

from ..backend import BACKENDS
from ..checks import check_int
from ..fsutil import check_output_files
from . import conditioning, family, training
from .results import RESULTS
from .runner import Store, load_data, log_line
from .settings import FAMILY_SETTINGS, SCALES, SETTINGS


class Experiment(NamedTuple):
    """One experiment of the paper.

    Attributes
    ----------
    run : callable
        ``run(store, data, scale, *, seed, backend, cg_variant, optimizer) -> summary``.
    report : callable
        ``report(store, out, title, *, cg_variant) -> Markdown`` (writes figure and table).
    optimizer : str or None
        The default optimizer (``"nesterov"``, ``"adam"``), None for none.
    section : str
        Where the paper has it.
    methods : callable or None
        ``methods(cg_variant) -> [method, ...]``, the training methods it compares (None: it
        trains nothing, and takes no ``cg_variant``).
    optimizers : tuple of str
        The optimizers it accepts (default: only its own).
    runner : callable, optional
        ``runner(scale_name, scale, *, data_dir, out, seed, backend, download, mnist_csv,
        log) -> dict`` that runs the whole experiment instead of ``run`` and ``report`` (the
        family comparison: several data sets, a store each).
    scales : dict, optional
        ``{scale: numbers}`` of an experiment that is not in ``SETTINGS``.
    models : tuple of str
        The networks it can train (the first is the default; empty: its network is fixed);
        ``run`` then takes ``model=``.
    cells : callable, optional
        ``cells(cg_variant) -> [key, ...]``, the store keys of its configurations (for a run
        of a subset of them).
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
                   mnist_csv=None, model=None, cells=None, seeds=None, workers=None,
                   scheduler=None, blas_threads=None) -> dict:
    """Run (or resume) one experiment and write its results, figure and table.

    Parameters
    ----------
    name : str
        One of :data:`EXPERIMENTS`.
    scale : {"tiny", "small", "medium", "paper"}
        ``"tiny"`` (synthetic data, seconds), ``"small"`` (CIFAR-10 subset, minutes on a
        CPU), ``"medium"`` (table1 and figure3 only: hours on a CPU, see
        :mod:`~penaltyprop.experiments.settings`) or ``"paper"`` (the paper's setting; hours
        on a GPU).
    data_dir : path-like
        The folder holding ``cifar-10-batches-bin/`` (default: the package's cache,
        ``$PENALTYPROP_DATA_DIR``).
    out : path-like
        Output folder (default :func:`default_out`).
    seed : int
        Initial parameters and minibatch order.
    backend : {"numpy", "cupy"}
        The array backend.
    cg_variant : {"textbook", "authors"}
        ``"authors"`` is the ProxProp CG of the authors' code; figure2, table1 and figure3
        only.
    optimizer : {"nesterov", "sgd"}
        For table1 only: ``"nesterov"`` (default, momentum 0.95) or ``"sgd"`` (plain).
    download : bool
        Download CIFAR-10 when it is missing.
    log : callable
        Takes one line of progress.
    mnist_csv : path-like
        For family only: an MNIST CSV file (784 pixels and the label per line,
        :mod:`penaltyprop.data.mnist_csv`) used instead of the full MNIST set.
    model : {"cnn", "cnn-authors"}
        For figure3 only: ``"cnn"`` (the paper's text, default) or ``"cnn-authors"`` (the CNN of
        the authors' code: no third pooling, FC 1280 -> 10).
    cells : list of str, optional
        Configuration keys (``"backprop"``, ``"cg3"``, ``"cg3_tau0.5"``, ...): train only
        these; the others can follow in a later run into the same ``out`` (not for family).
    seeds : list of int, optional
        Seeds (figure2, table1, figure3): every configuration trains once per seed (each a
        cell), and the tables report the mean and standard deviation over seeds. ``seed``
        stays the folder's base seed: its cells keep their plain keys, the others are
        ``KEY@seed<s>`` (:mod:`~penaltyprop.experiments.cells`); a later run may add seeds,
        and an interrupted cell of a seed it does not name is left for a run that does.
    workers : int, optional
        Run the cells as tasks on a local Dask cluster of this many worker processes
        (:mod:`~penaltyprop.experiments.dask_cells`; needs ``dask[distributed]``). Without
        ``workers`` and ``scheduler`` the cells train here, in order, and Dask is not
        imported.
    scheduler : str, optional
        Run the cells as tasks on the workers of the Dask scheduler at this address
        (``tcp://host:8786``); ``out`` must be on a filesystem they all see.
    blas_threads : int, optional
        BLAS threads of each worker (default: cores // workers on a local cluster, 1 on a
        scheduler's workers).

    Returns
    -------
    dict
        The content of ``results.json``: ``settings``, ``runs`` (key -> record), ``summary``
        (what the table shows), ``wall_s`` and ``markdown``.

    Raises
    ------
    ValueError
        For a bad argument (named), or an ``out`` folder holding results of other settings or
        data, runs this experiment did not make, or a damaged ``results.json``: all found
        before anything trains or is written.
    penaltyprop.data.DataError
        (a ValueError) When CIFAR-10 is missing and ``download`` is false (or fails).
    penaltyprop.experiments.cells.CellsFailed
        (a RuntimeError) With ``workers`` or ``scheduler``, after the other cells finished,
        when some cells failed on their workers (named, with the first error); the others
        are stored, and a rerun trains the missing ones.
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
    seeds = _check_cells_options(name, experiment, seeds, workers, scheduler, blas_threads)
    scales = SETTINGS[name] if experiment.scales is None else experiment.scales
    if scale not in scales:
        raise ValueError(f"scale {scale!r} is not defined for {name!r} (it has "
                         f"{', '.join(scales)})")
    settings = scales[scale]
    out = Path(out) if out is not None else default_out(name, scale, cg_variant, optimizer, model)
    pool = _open_cells(workers, scheduler, blas_threads, backend, log)
    if experiment.runner is not None:  # several data sets: the experiment runs itself
        with pool as executor:
            if executor is not None:
                executor.check_folder(out)
            return experiment.runner(scale, settings, data_dir=data_dir, out=out, seed=seed,
                                     backend=backend, download=download, mnist_csv=mnist_csv,
                                     log=log,
                                     **({"executor": executor} if executor is not None else {}))
    if mnist_csv is not None:
        uses = tuple(k for k, e in EXPERIMENTS.items() if e.runner is not None)
        raise ValueError(f"mnist_csv only applies to {uses}, not {name!r}")
    check_output_files(out, (RESULTS, f"{name}.png", f"{name}.md"), "--out")
    data = load_data(settings, data_dir=data_dir, download=download)  # DataError if missing
    open_store = partial(_store, out, {"experiment": name, "scale": scale,
                                       "numbers": settings.as_dict(), "seed": seed,
                                       "cg_variant": cg_variant, "optimizer": optimizer,
                                       "data": repr(data),
                                       **({"model": model} if model is not None else {})},
                         log=log, cells=cells, seeds=seeds, data=data,
                         loader=partial(load_data, settings, data_dir=data_dir))
    with pool as executor, open_store(executor) as store:
        # the experiment folder is ours until the end (a second run fails at once)
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


def _check_cells_options(name, experiment, seeds, workers, scheduler, blas_threads):
    """Check ``seeds``, ``workers``, ``scheduler`` and ``blas_threads`` (ValueError naming the
    argument); returns the seeds as a list of ints, or None."""
    trains = experiment.cells is not None or experiment.runner is not None
    if seeds is not None:
        if experiment.cells is None:
            raise ValueError(f"seeds do not apply to {name!r}; they apply to "
                             f"{tuple(k for k, e in EXPERIMENTS.items() if e.cells)}")
        if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
            raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
        seeds = [check_int(s, "seeds", 0) for s in seeds]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be a non-empty list of distinct integers >= 0, got "
                             f"{seeds!r}")
    if workers is not None and scheduler is not None:
        raise ValueError("give workers or scheduler, not both")
    if workers is not None:
        check_int(workers, "workers", 1)
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ValueError(f"scheduler must be a Dask scheduler address such as "
                         f"'tcp://host:8786', got {scheduler!r}")
    if (workers is not None or scheduler is not None) and not trains:
        raise ValueError(f"workers and scheduler do not apply to {name!r}: it trains nothing")
    if blas_threads is not None:
        if workers is None and scheduler is None:
            raise ValueError("blas_threads sets the threads of Dask workers: give workers or "
                             "scheduler too")
        check_int(blas_threads, "blas_threads", 1)
    return seeds


def _store(out, settings, executor, *, log, cells, seeds, data, loader):
    """The experiment's :class:`~.runner.Store` (its lock is taken on entry) with its seeds and
    executor; the store checks the folder, its results.json and the data. With an executor,
    the workers' view of ``out`` is checked first, before ``results.json`` is written."""
    if executor is not None:
        executor.check_folder(out)
    store = Store(out, settings, log=log, cells=cells, data=data)  # checks results.json, data
    store.seeds = seeds
    if executor is not None:
        store.executor = executor.with_data(loader, data)  # the workers load the data themselves
    return store


def _open_cells(workers, scheduler, blas_threads, backend, log):
    """A context giving the Dask executor of the cells, or None (serial: Dask not imported)."""
    if workers is None and scheduler is None:
        return contextlib.nullcontext()
    from .dask_cells import open_cells

    return open_cells(workers=workers, scheduler=scheduler, blas_threads=blas_threads,
                      backend=backend, log=log)
