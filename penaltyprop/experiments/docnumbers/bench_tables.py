r"""Values and tables of the benchmark files (docs/performance.md, the README).

A bench file (``penaltyprop bench --json``) has one entry per timed mode under ``modes``, each
with its ``label`` (``BackProp``, ``exact``, ``CG-3``), its median step time ``median_s`` and
its ratios ``ratio_to_backprop`` and ``ratio_to_floor`` (the measured ratio over the flop
floor ``matrix_floor_ratio``); ``benchmarks/cnn_vs_torch.py`` writes ``mode`` instead of
``label`` and the ratios ``x_torch`` and ``x_backprop``.
"""
from __future__ import annotations

from ..report import markdown_table
from .core import table, value
from .values import bench_field


@value("bench_spread")
def bench_spread(results, label, field, *stems):
    """(min, max) of one mode's field over several bench files:
    ``bench_spread exact ratio_to_backprop bench-cpu-mlp-quiet-1 bench-cpu-mlp-quiet-2``."""
    if not stems:
        raise ValueError(f"bench_spread {label} {field}: name at least one bench file")
    numbers = [bench_field(results, stem, label, field) for stem in stems]
    return min(numbers), max(numbers)


@table("cnn-vs-torch")
def cnn_vs_torch(results, stem):
    """The CNN's step beside PyTorch's forward and backward pass (one row per timed mode)."""
    data = results[stem]
    rows = [[m["mode"] if m["mode"] != "torch" else "PyTorch (forward + backward)",
             f"{1e3 * m['median_s']:.0f}", f"{m['x_torch']:.2f}", f"{m['x_backprop']:.2f}"]
            for m in data["modes"]]
    return markdown_table(["step", "median [ms]", "x PyTorch", "x BackProp"], rows)


@table("dask-runs")
def dask_runs(results, stem):
    """The runs of one grid timed serially and with ``--workers`` (one row per run, in order)."""
    rows = []
    for i, run in enumerate(results[stem]["runs"], 1):
        workers = run["command"].partition("--workers")[2].split()
        rows.append([str(i), workers[0] if workers else "serial",
                     str(run["blas_threads_per_process"]), f"{run['wall_s']:.0f}",
                     f"{run['sum_of_cell_wall_s']:.0f}",
                     f"{run['load_average_before'][0]:.1f} / {run['load_average_after'][0]:.1f}",
                     "yes" if run["every_cell_history_equals_the_first_serial_run"] else "**no**"])
    return markdown_table(["run", "workers", "BLAS threads per process", "wall [s]",
                           "cells' own times summed [s]", "load before / after",
                           "same histories as run 1"], rows)
