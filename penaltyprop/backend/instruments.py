r"""Instruments: device synchronisation for timers, peak memory, and the BLAS in use.

What the bench and the experiments measure with, on either backend. None of it belongs
inside a training step: :func:`synchronize` waits for the device, and :func:`peak_memory`
traces allocations (which slows Python down).
"""
from __future__ import annotations

import numpy as np


def synchronize(xp) -> None:
    """Wait until the device has finished all queued work; a no-op for NumPy.

    CuPy launches kernels asynchronously, so a timer read right after a call measures
    the launch, not the work: call this before starting and before stopping a timer.
    Never call it inside the training step itself.
    """
    if xp is not np:
        xp.cuda.Device().synchronize()


def peak_memory(xp, fn):
    """Run ``fn()`` and return ``(result, bytes)``: the most memory it held at once.

    NumPy: the peak of the memory traced by ``tracemalloc`` (NumPy reports its array
    buffers there) above what was held before the call. CuPy: the growth of the default
    memory pool, emptied first, whose size after the call is its high-water mark (it
    keeps freed blocks for reuse). Tracing slows Python down: never time under it.
    """
    if xp is np:
        import tracemalloc

        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - held
        if started:
            tracemalloc.stop()
        return result, peak
    pool = xp.get_default_memory_pool()
    synchronize(xp)
    pool.free_all_blocks()  # the pool now holds only the blocks in use
    held = pool.total_bytes()
    result = fn()
    synchronize(xp)
    return result, pool.total_bytes() - held


def blas_info() -> list:
    """The BLAS libraries loaded in this process and their thread counts, as plain dicts.

    Uses ``threadpoolctl`` where it is installed (an empty list otherwise). NumPy and
    SciPy's wheels each bundle their own OpenBLAS; both show up here.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - depends on the environment
        return []
    keys = ("internal_api", "version", "num_threads", "architecture", "filepath")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]
