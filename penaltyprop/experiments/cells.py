r"""Cells of an experiment grid: their keys over seeds, their mean and spread, the grid's time.

A *cell* is one configuration of an experiment (one method at one step size) trained with one
seed. Cells are independent, so they can run in any order and on any machine
(:mod:`~penaltyprop.experiments.dask_cells`).

Keys. The experiment's ``seed`` (default 0) is the folder's *base seed*: its cells keep the
configuration's plain key (``cg3``, ``cg3_tau1``), so a run with one seed writes the same
``results.json`` as before seeds existed. A cell of any other seed s is ``KEY@seed<s>``
(``cg3_tau1@seed2``). A later run into the same folder with more seeds adds their cells.

Spread. A table entry over several seeds is the mean of the finite results and their sample
standard deviation, :math:`\bar x = \frac1n\sum_i x_i`,
:math:`s = \sqrt{\frac1{n-1}\sum_i (x_i - \bar x)^2}`; seeds that diverged are counted, not
averaged.

Time. A cell's measured time is the sum of its epochs' training and evaluation seconds. A grid
on W workers is estimated by list scheduling in the order the cells are submitted, as Dask
runs them: each cell starts on the worker that becomes free first.
"""
from __future__ import annotations

import heapq
import math
import statistics

#: What separates a configuration's key from a seed that is not the base seed.
SEED_MARK = "@seed"


class CellsFailed(RuntimeError):
    """Some cells of a grid failed where they ran (a Dask worker); the others are stored. The
    message names the failed ones and the first error."""


def cell_key(key, seed, base_seed) -> str:
    """The store key of configuration ``key`` trained with ``seed``: ``key`` itself for the
    base seed, else ``key@seed<seed>``."""
    return key if seed == base_seed else f"{key}{SEED_MARK}{seed}"


def split_key(key, base_seed):
    """``(configuration key, seed)`` of a store key (the inverse of :func:`cell_key`)."""
    base, mark, seed = key.rpartition(SEED_MARK)
    if mark and seed.isdigit():
        return base, int(seed)
    return key, base_seed


def group_by_cell(runs, base_seed) -> dict:
    """``{configuration key: {seed: record}}`` of a store's runs, keys in their first order."""
    groups = {}
    for key, record in runs.items():
        base, seed = split_key(key, base_seed)
        groups.setdefault(base, {})[seed] = record
    return groups


def spread(values) -> dict:
    """Mean and spread over seeds of one result; ``None`` entries are seeds that diverged.

    Returns
    -------
    dict
        ``mean`` (of the finite values; None when every seed diverged), ``sd`` (sample
        standard deviation; None for fewer than two finite values), ``seeds`` (how many) and
        ``diverged`` (how many of them diverged).
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return {"mean": statistics.fmean(finite) if finite else None,
            "sd": statistics.stdev(finite) if len(finite) > 1 else None,
            "seeds": len(values), "diverged": len(values) - len(finite)}


def is_spread(value) -> bool:
    """Whether a table entry is a :func:`spread` dict (several seeds) rather than one value."""
    return isinstance(value, dict) and "mean" in value and "seeds" in value


def fmt_spread(s, fmt) -> str:
    """``"0.031 ± 0.004"``, with ``" (1/3 -)"`` when seeds diverged, ``"-"`` when all did;
    ``fmt`` formats one number."""
    if s["mean"] is None:
        return "-"
    text = fmt(s["mean"]) + ("" if s["sd"] is None else f" ± {fmt(s['sd'])}")
    return text + (f" ({s['diverged']}/{s['seeds']} -)" if s["diverged"] else "")


# --------------------------------------------------------------------------- time
def cell_seconds(record) -> float:
    """Measured seconds of one stored cell: its epochs' training plus evaluation time."""
    h = record["history"]
    return float(sum(h["epoch_time"]) + sum(h["eval_time"]))


def grid_seconds(seconds, workers) -> float:
    """Wall seconds of cells taking ``seconds`` (in submission order) on ``workers`` workers.

    List scheduling: each cell starts, in order, on the worker that is free first; the grid
    ends when the last worker does. With one worker it is the sum; with as many workers as
    cells, the longest cell.
    """
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    free = [0.0] * int(workers)  # when each worker is free next (a heap)
    for t in seconds:
        heapq.heapreplace(free, free[0] + float(t))
    return max(free)


def remaining_seconds(left, measured, groups, epochs, workers):
    """Wall seconds until the cells ``left`` finish on ``workers``, from measured epoch times.

    Parameters
    ----------
    left : list of str
        ``[key, ...]``, the unfinished cells in submission order.
    measured : dict
        ``{key: {epoch: seconds}}``, the training plus evaluation seconds of every epoch
        reported so far (epoch 0: the initial evaluation, not counted as an epoch).
    groups : dict
        ``{key: group}``: a cell with no epoch of its own takes the mean epoch of its group
        (its method), or of all cells when its group has none yet.
    epochs : int or dict
        Epochs of a cell; or ``{key: epochs}`` for cells of different lengths.
    workers : int
        The number of workers.

    Returns
    -------
    float or None
        :func:`grid_seconds` of each cell's epochs left times its seconds per epoch; None
        before any epoch was measured.
    """
    per_epoch = {k: [s for e, s in v.items() if e >= 1] for k, v in measured.items()}
    by_group = {}
    for key, seconds in per_epoch.items():
        by_group.setdefault(groups.get(key), []).extend(seconds)
    every = [s for seconds in per_epoch.values() for s in seconds]
    if not every:
        return None
    times = []
    for key in left:
        own = per_epoch.get(key) or by_group.get(groups.get(key)) or every
        done = max(measured.get(key) or [0])
        total = epochs[key] if isinstance(epochs, dict) else epochs
        times.append(max(total - done, 0) * statistics.fmean(own))
    return grid_seconds(times, workers)


def grid_time(results, workers=(1, 2, 4, 8, 16, 36), seeds=1) -> dict:
    """The time of a stored experiment's grid on several numbers of workers.

    Parameters
    ----------
    results : dict
        The content of an experiment's ``results.json``.
    workers : sequence of int
        Worker counts to estimate.
    seeds : int
        How many seeds each configuration runs with (each a cell as long as the stored one;
        submitted configuration by configuration, as the experiments do).

    Returns
    -------
    dict
        ``cells`` (how many), ``cell_seconds`` ({key: measured seconds},
        :func:`cell_seconds`), ``longest_cell_s``, ``total_s`` (the serial time) and
        ``grid_s`` ({workers: seconds}, :func:`grid_seconds`), for workers each as fast as
        the machine that measured the cells.
    """
    seconds = {key: cell_seconds(record) for key, record in results["runs"].items()}
    times = [t for t in seconds.values() for _ in range(int(seeds))]
    return {"cells": len(times), "seeds": int(seeds), "cell_seconds": seconds,
            "longest_cell_s": max(times), "total_s": sum(times),
            "grid_s": {str(w): grid_seconds(times, w) for w in workers}}


def blas_threads_per_worker(workers, cores) -> int:
    """BLAS threads for each of ``workers`` processes on ``cores`` cores: a share, at least 1
    (so that workers x threads <= cores whenever workers <= cores)."""
    return max(1, int(cores) // int(workers))
