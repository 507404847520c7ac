r"""Competing load for a benchmark: K processes that multiply matrices while the timings run.

Users' machines and classroom servers are rarely idle, and a step's threading can behave well
on idle cores and badly when it shares them (OpenBLAS's barriers wait for descheduled
threads). ``bench --load K`` times every mode while K other processes each run a single-threaded
float32 GEMM loop, so that "ratio under load" is a measurement anyone can repeat.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

#: what each competing process runs: one thread of BLAS, 1000 x 1000 float32 products, until
#: its standard input closes (so it cannot outlive the benchmark)
LOAD_PROGRAM = """
import sys, threading
from penaltyprop.backend import numpy as np
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
a = np.random.default_rng(0).random((1000, 1000), dtype=np.float32)
while not stop.is_set():
    a @ a
"""


#: competing processes per core at most: a few per core already keep every core busy, and
#: hundreds only make the machine unusable (1,000 of them took the load to 257 on two cores)
LOAD_PER_CORE = 4


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_load(k) -> int:
    """Raise ValueError unless ``k`` is an integer in 0 .. LOAD_PER_CORE x the usable cores."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"load must be an integer >= 0, got {k!r}")
    cores = usable_cores()
    if k > LOAD_PER_CORE * cores:
        raise ValueError(f"load {k} is more competing processes than this machine can run "
                         f"usefully: at most {LOAD_PER_CORE} per core, {LOAD_PER_CORE * cores} "
                         f"on its {cores} cores")
    return k


@contextlib.contextmanager
def competing_load(k):
    """Within the block, ``k`` single-threaded GEMM processes compete for the cores (k = 0: none).

    They stop when the block ends, also on an error or Ctrl-C. ``k`` is checked first
    (:func:`check_load`).
    """
    check_load(k)
    env = {**os.environ, **dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")}
    procs = [subprocess.Popen([sys.executable, "-c", LOAD_PROGRAM], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
             for _ in range(k)]
    try:
        yield procs
    finally:
        for p in procs:
            with contextlib.suppress(OSError):
                p.stdin.close()  # the program's reader thread sees EOF and stops the loop
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck competitor
                p.kill()
                p.wait()
