r"""Independent blocks of rows, run on the CPU's cores at once.

Some work splits into independent blocks of rows: the prox systems :math:`V M_l = B` are one
system per row of a layer (every row has the same metric :math:`M_l`), so batch-coordinate CG
(:func:`penaltyprop.cg.cg_rows_batch`) can iterate on each block of rows by itself.
:func:`map_row_blocks` runs such blocks.

On NumPy, NumPy's own elementwise loops run on one core, while its BLAS spreads each product
over all of them. Work that alternates between small products and many elementwise passes
(CG's step-length updates) leaves cores idle. Here the blocks go to a pool of threads, as
many as NumPy's BLAS has, and every block calls BLAS on its own thread alone: both the
products and the elementwise loops (which release the GIL) of different blocks then run at
once, and each block's arrays stay in the cache between its passes. Afterwards BLAS runs on
all its threads again (tested). A thread that takes the
next block when it finishes one also keeps both cores busy when another process slows one
of them. On CuPy there is one call with all rows: the GPU is parallel within each kernel.
"""
from __future__ import annotations

import threading

from .linalg import numpy_lapack

_POOL = None  # (threads, ThreadPoolExecutor), made on first use
_POOL_LOCK = threading.Lock()


def blas_threads() -> int:
    """How many threads NumPy's OpenBLAS runs a product on (1 where that is unknown).

    Follows ``OPENBLAS_NUM_THREADS`` and threadpoolctl's limits, so a user who limits BLAS
    to one thread also keeps :func:`map_row_blocks` on one."""
    lapack = numpy_lapack()
    return lapack.num_threads() if lapack is not None else 1


def _pool(threads):
    global _POOL
    from concurrent.futures import ThreadPoolExecutor

    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != threads:
            _POOL = (threads, ThreadPoolExecutor(threads, thread_name_prefix="penaltyprop"))
        return _POOL[1]


def row_slices(n_rows, block_rows):
    """The slices of ``range(n_rows)`` in blocks of ``block_rows`` (the last one shorter)."""
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    return [slice(i, min(i + block_rows, n_rows)) for i in range(0, n_rows, block_rows)]


def map_row_blocks(fn, n_rows, xp, block_rows):
    """``[fn(rows) for rows in row_slices(n_rows, block_rows)]``, the blocks run at once.

    Parameters
    ----------
    fn : callable taking a slice of rows and returning anything; the calls must not depend
        on each other (each writes only its own rows).
    n_rows : int, the number of rows. xp : the array namespace (NumPy or CuPy).
    block_rows : int >= 1, the rows per block (on NumPy).

    Returns
    -------
    list of fn's results, in the order of the rows. On CuPy: ``[fn(slice(0, n_rows))]``.
    On NumPy with one BLAS thread, or a single block, the calls run in this thread, in order.
    An exception in any block is raised here.
    """
    if xp.__name__ != "numpy":
        return [fn(slice(0, n_rows))]
    blocks = row_slices(n_rows, block_rows)
    threads = min(blas_threads(), len(blocks))
    if threads <= 1:
        return [fn(rows) for rows in blocks]
    lapack = numpy_lapack()

    def on_one_blas_thread(rows):
        with lapack.one_thread():
            return fn(rows)

    # OpenBLAS's "thread-local" thread count is process-wide in NumPy's wheels while it is set
    # (see NumpyLapack.one_thread): it is set here, around all blocks, and the workers set the
    # same value, so that no worker restores a count that another one set.
    with lapack.one_thread():
        return list(_pool(threads).map(on_one_blas_thread, blocks))
