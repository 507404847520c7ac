r"""How long each notebook takes: measured with and without CIFAR-10, and the table of the guide.

:func:`measure_notebooks` runs every notebook top to bottom in a fresh kernel (solutions
included, as a lecturer's run-through), twice for a notebook that reads CIFAR-10: once as the
machine is set up, and once with ``$PENALTYPROP_DATA_DIR`` pointing at an empty folder, so that
it falls back to the digits as in a fresh clone. It records per run the wall time (kernel start
included, as "Restart and run all" takes it), the kernel's own CPU time, and whether CIFAR-10
was used (a notebook that falls back says "NOT AVAILABLE"). The machine (cores, load average)
is recorded too: on a shared machine the wall time grows with the load, the CPU time much less.

``python -m penaltyprop notebooks --time FILE.json`` writes the result and, beside it, the
Markdown table of :func:`times_table` (``FILE.md``); docs/teaching.md quotes that table.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from ..data.base import DATA_DIR_ENV
from ..fsutil import atomic_write_text
from .editions import notebook_files, read_notebook, source
from .run import execute, output_text

#: appended to every measured notebook: the kernel's CPU time (user + system), in seconds
CPU_CELL = ("import resource as _resource\n"
            "_usage = _resource.getrusage(_resource.RUSAGE_SELF)\n"
            "print('KERNEL_CPU_SECONDS', _usage.ru_utime + _usage.ru_stime)")
FALLBACK = "NOT AVAILABLE"  # what the notebooks print when they fall back to the digits


def reads_cifar10(nb) -> bool:
    """Whether a notebook tries to load CIFAR-10 (its code names the data set)."""
    return any('"cifar10"' in source(c) for c in nb["cells"] if c["cell_type"] == "code")


def run_once(path, timeout, data_dir=None) -> dict:
    """Run one notebook; ``data_dir`` overrides ``$PENALTYPROP_DATA_DIR`` for the kernel."""
    nb = read_notebook(path)
    cell = {"cell_type": "code", "metadata": {}, "source": CPU_CELL, "outputs": [],
            "execution_count": None, "id": "kernel-cpu-time"}
    nb = {**nb, "cells": nb["cells"] + [cell]}
    saved = os.environ.get(DATA_DIR_ENV)
    if data_dir is not None:
        os.environ[DATA_DIR_ENV] = str(data_dir)
    try:
        start = time.perf_counter()
        done = execute(nb, Path(path).parent, timeout)
        wall = time.perf_counter() - start
    finally:
        if saved is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = saved
    text = "\n".join(output_text(c) for c in done["cells"])
    cpu = float(text.rsplit("KERNEL_CPU_SECONDS", 1)[1].split()[0])
    return {"wall_s": round(wall, 1), "kernel_cpu_s": round(cpu, 1),
            "cifar10": reads_cifar10(nb) and FALLBACK not in text}


def machine() -> dict:
    """The machine the times come from."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "system": platform.system(),
            "load_average_1_5_15": [round(x, 2) for x in load] if load else None}


def measure_notebooks(folder, timeout=600, progress=print) -> dict:
    """Run every notebook of ``folder`` (twice for those that read CIFAR-10); the result dict."""
    results = {}
    before = machine()
    with tempfile.TemporaryDirectory() as empty:
        for path in notebook_files(folder):
            runs = {"as_set_up": run_once(path, timeout)}
            if reads_cifar10(read_notebook(path)):
                runs["without_cifar10"] = run_once(path, timeout, data_dir=empty)
            results[path.name] = runs
            progress(f"{path.name}: " + ", ".join(f"{k} {v['wall_s']} s" for k, v in runs.items()))
    return {"measured": datetime.date.today().isoformat(), "machine_before": before,
            "machine_after": machine(), "notebooks": results,
            "notes": "wall_s: kernel start to last cell, as 'Restart and run all'; kernel_cpu_s: "
                     "the kernel's user + system CPU time (BLAS_THREADS = 1 in every notebook); "
                     "solutions included; cifar10: whether the run used CIFAR-10 (else the "
                     "notebook fell back to the digits)."}


def times_table(result) -> str:
    """The Markdown table of a :func:`measure_notebooks` result (docs/teaching.md quotes it)."""
    lines = ["| notebook | with CIFAR-10: wall [s] | CPU [s] | without CIFAR-10: wall [s] | CPU [s] |",
             "|---|---|---|---|---|"]
    total = {"with": [0.0, 0.0], "without": [0.0, 0.0]}
    for name, runs in result["notebooks"].items():
        first = runs["as_set_up"]
        second = runs.get("without_cifar10", first)  # a notebook without CIFAR-10: the same run
        if runs.get("without_cifar10") and not first["cifar10"]:
            raise ValueError(f"{name}: the run 'as set up' did not find CIFAR-10; measure on a "
                             "machine that has it")
        for key, run in (("with", first), ("without", second)):
            total[key][0] += run["wall_s"]
            total[key][1] += run["kernel_cpu_s"]
        same = "" if "without_cifar10" in runs else " (no CIFAR-10)"
        lines.append(f"| `{name.removesuffix('.ipynb')}`{same} | {first['wall_s']:.0f} | "
                     f"{first['kernel_cpu_s']:.1f} | {second['wall_s']:.0f} | "
                     f"{second['kernel_cpu_s']:.1f} |")
    lines.append(f"| all {len(result['notebooks'])} | {total['with'][0]:.0f} | {total['with'][1]:.1f} | "
                 f"{total['without'][0]:.0f} | {total['without'][1]:.1f} |")
    load = result["machine_before"]["load_average_1_5_15"]
    lines.append("")
    lines.append(f"Measured {result['measured']} on {result['machine_before']['cpu_count']} cores "
                 f"(load average {load[0] if load else '?'} when the runs started), solutions "
                 "included.")
    return "\n".join(lines)


def write_times(result, path) -> tuple:
    """Write the result as JSON at ``path`` and its table beside it (``.md``)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    table = path.with_suffix(".md")
    atomic_write_text(table, times_table(result) + "\n")
    return path, table
