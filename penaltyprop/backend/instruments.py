r"""Instruments: device synchronisation for timers, memory (peak, total, available), the BLAS.

What the bench and the experiments measure with, on either backend. None of it belongs
inside a training step: :func:`synchronize` waits for the device, and :func:`peak_memory`
traces allocations (which slows Python down).
"""
from __future__ import annotations

import os
from pathlib import Path

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


def memory_info(xp):
    """``(total, available)`` bytes of the memory the backend's arrays live in; None where
    unknown.

    NumPy: the host's RAM from ``/proc/meminfo`` (``MemTotal``, ``MemAvailable``: free memory
    plus what the kernel can reclaim), else ``os.sysconf``, and within the limit of the
    process's cgroup (a container's memory limit), if one is set. CuPy: the current GPU's
    free and total memory, plus the blocks CuPy's memory pool holds free for reuse.
    """
    if xp is not np:
        free, total = xp.cuda.runtime.memGetInfo()
        return int(total), int(free) + int(xp.get_default_memory_pool().free_bytes())
    total = available = None
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines()
                    if ":" in line)
        total = int(info["MemTotal"].split()[0]) * 1024  # "MemTotal:  24542784 kB"
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            total = os.sysconf("SC_PHYS_PAGES") * page
            available = os.sysconf("SC_AVPHYS_PAGES") * page
        except (AttributeError, OSError, ValueError):
            return None, None
    limit, used = _cgroup_memory()
    if limit is not None:
        total = min(total, limit)
        available = min(available, max(limit - (used or 0), 0))
    return total, available


def _cgroup_memory():
    """``(limit, usage)`` bytes of this process's cgroup (v2, else v1); None where unset."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if not text.isdigit() or int(text) >= 1 << 60:  # "max", or v1's "no limit" value
            return None, None
        try:
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            usage = None
        return int(text), usage
    return None, None
