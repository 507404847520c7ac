r"""Timers, the GEMM peak's products, and what the machine is.

Tasks are timed interleaved (every task once per round, after one warm-up round), so that a
neighbour's load falls on all of them alike and ratios within one run stay meaningful on a
shared machine. The device is synchronised around every timed call.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import penaltyprop

from ..backend import get_backend, host_rng, to_device
from ..backend.instruments import blas_info, synchronize
from ..backend.linalg import cpu_spd_solver


def timed(xp, fn):
    """Wall-clock seconds of ``fn()``, with the device synchronised on both sides."""
    synchronize(xp)
    t0 = time.perf_counter()
    fn()
    synchronize(xp)
    return time.perf_counter() - t0


def summary(times):
    """Median, min, max and quartiles of a list of seconds."""
    times = sorted(times)
    q = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else times * 3
    return {"median_s": statistics.median(times), "min_s": times[0], "max_s": times[-1],
            "q1_s": q[0], "q3_s": q[2], "times_s": times}


def interleaved(xp, tasks, repetitions, say=None):
    """Time every task of ``{name: fn}`` once per round, ``repetitions`` rounds after one
    warm-up round; returns ``{name: summary}`` (:func:`summary`)."""
    for fn in tasks.values():  # warm-up: first-touch allocations, BLAS thread start-up
        fn()
    times = {name: [] for name in tasks}
    for i in range(repetitions):
        if say:
            say(f"round {i + 1}/{repetitions}")
        for name, fn in tasks.items():
            times[name].append(timed(xp, fn))
    return {name: summary(ts) for name, ts in times.items()}


def gemm_tasks(xp, shapes, dtype, seed=0):
    r"""The forward, gradient and adjoint products of every layer, alone, with the step's layouts:
    :math:`W P` (Eq. 7), :math:`e P^\top` (Eqs. 25, 43) and :math:`W^\top e` (Eqs. 10, 22).

    Returns ``{name: (fn, flops, in_backprop)}``; the adjoint of layer 1 is not part of
    BackProp (nothing is sent back to the data) but still measures the machine.
    """
    rng = host_rng(seed + 2)

    def rand(*shape):
        return to_device(rng.random(shape, dtype="float64").astype(dtype), xp)

    tasks = {}
    for l, (n, m, K) in enumerate(shapes, start=1):
        W, P, E = rand(n, m), rand(m, K), rand(n, K)
        f = 2 * n * m * K
        tasks[f"layer {l} forward W P ({n}x{m} @ {m}x{K})"] = (lambda W=W, P=P: W @ P, f, True)
        tasks[f"layer {l} gradient e P^T"] = (lambda E=E, P=P: E @ P.T, f, True)
        tasks[f"layer {l} adjoint W^T e"] = (lambda W=W, E=E: W.T @ E, f, l > 1)
    return tasks


def peak_of(gemm_flops, timed_gemms):
    """The GEMM peak: total flops of the layer products over their summed median times.

    Parameters
    ----------
    gemm_flops : dict
        ``{name: (flops, in_backprop)}``.
    timed_gemms : dict
        ``{name: summary}``.
    """
    rows = [{"name": name, "gflop": f / 1e9, "median_s": timed_gemms[name]["median_s"],
             "gflops": f / timed_gemms[name]["median_s"] / 1e9, "in_backprop": in_bp}
            for name, (f, in_bp) in gemm_flops.items()]
    return {"gflops": sum(r["gflop"] for r in rows) / sum(r["median_s"] for r in rows),
            "best_gflops": max(r["gflops"] for r in rows),
            "backprop_gemm_floor_s": sum(r["median_s"] for r in rows if r["in_backprop"]),
            "gemms": rows,
            "definition": "sum of the flops of every layer's forward, gradient and adjoint "
                          "product over the sum of their median times, each timed alone"}


def machine_info():
    """CPU model, core counts, Python/NumPy versions, BLAS libraries."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:  # not Linux
        pass
    np = get_backend("numpy")
    info = {"cpu": model, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform(), "blas": blas_info(),
            "spd_solve": cpu_spd_solver(), "penaltyprop": penaltyprop.__version__}
    if hasattr(os, "sched_getaffinity"):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    return info


def load_average():
    """The 1, 5 and 15-minute load averages (others' work on the machine), or None."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def maxrss_bytes():
    """The process's peak resident memory so far, in bytes (None where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # kilobytes on Linux
