r"""The backend shim: the only module that imports an array library.

Every other module of penaltyprop gets its array namespace from here, either as
``xp = array_module(x)`` (the namespace of an array it was handed, as in CuPy's
guide to CPU/GPU-agnostic code) or as ``get_backend(name)``. NumPy is always
available; CuPy is optional and only imported when asked for.

The linear algebra the prox solvers need is wrapped here so that the same call works
on both backends: :func:`solve_spd` (the exact prox's solve, which keeps float32 and
keeps SciPy's thread pool out of NumPy's way: see its docstring), and the two
triangular solves of a Cholesky solve (``cupyx.scipy.linalg`` has no ``cho_solve``, so
on CuPy a Cholesky solve is ``cupy.linalg.cholesky`` followed by two ``solve_triangular``
calls).

Random numbers are drawn on the host from one seeded NumPy generator and then
moved to the device, so CPU and GPU runs start from identical numbers.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import scipy.linalg as _host_linalg

#: Host NumPy, for modules that parse files or build host-side arrays.
numpy = np

BACKENDS = ("numpy", "cupy")

_cupy = None


def _import_cupy():
    """Import CuPy on first use; raise a one-line error where it is missing."""
    global _cupy
    if _cupy is None:
        try:
            import cupy
            import cupyx.scipy.linalg  # noqa: F401  (solve_triangular)
        except ImportError as err:  # pragma: no cover - depends on the machine
            raise ValueError(
                "backend='cupy' needs CuPy and an NVIDIA GPU "
                "(pip install cupy-cuda12x); use backend='numpy' on the CPU"
            ) from err
        _cupy = cupy
    return _cupy


def get_backend(name: str = "numpy"):
    """Return the array namespace for ``name``, ``"numpy"`` or ``"cupy"``.

    Raises
    ------
    ValueError
        For an unknown name, or ``"cupy"`` where CuPy is not installed.
    """
    if name == "numpy":
        return np
    if name == "cupy":
        return _import_cupy()
    raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


def array_module(*arrays):
    """The namespace (numpy or cupy) of the given arrays, like ``cupy.get_array_module``."""
    if _cupy is not None:
        return _cupy.get_array_module(*arrays)
    return np


def to_device(x, xp, dtype=None):
    """Move a host (or device) array to the backend ``xp``, optionally casting it."""
    if xp is np:
        if _cupy is not None and isinstance(x, _cupy.ndarray):
            x = x.get()
        return np.asarray(x, dtype=dtype)
    return xp.asarray(x, dtype=dtype)


def to_host(x) -> np.ndarray:
    """Copy an array (NumPy or CuPy) to a host NumPy array. Forces a device sync."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return x.get()
    return np.asarray(x)


def to_float(x) -> float:
    """A 0-d array as a host Python float (a device sync on the GPU: call it only to log)."""
    return float(to_host(x))


def host_rng(seed) -> np.random.Generator:
    """The one seeded host random generator (NumPy's PCG64)."""
    return np.random.default_rng(seed)


def rng_state(rng: np.random.Generator) -> dict:
    """The state of a host generator as a plain dict (for checkpoints)."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    """Restore a host generator's state saved by :func:`rng_state`."""
    rng.bit_generator.state = state


# --------------------------------------------------------------------------- timing and memory
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

    NumPy: the peak of the memory traced by :mod:`tracemalloc` (NumPy reports its array
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


# --------------------------------------------------------------------------- linear algebra
def solve_triangular(L, B, lower=True, trans=False):
    r"""Solve :math:`L X = B` (or :math:`L^\top X = B` with ``trans=True``) for triangular L."""
    xp = array_module(L, B)
    if xp is np:
        return _host_linalg.solve_triangular(L, B, lower=lower, trans=1 if trans else 0,
                                             check_finite=False)
    import cupyx.scipy.linalg as device_linalg

    return device_linalg.solve_triangular(L, B, lower=lower, trans=1 if trans else 0)


def cho_solve(L, B):
    r"""Solve :math:`A X = B` given the lower Cholesky factor L of A (two triangular solves).

    Parameters
    ----------
    L : (n, n) lower-triangular Cholesky factor of A.
    B : (n, k) or (n,) right-hand side.
    """
    Y = solve_triangular(L, B, lower=True)  # L Y = B
    return solve_triangular(L, Y, lower=True, trans=True)  # L^T X = Y


def solve_spd(A, B):
    r"""Solve :math:`A X = B` for a symmetric positive definite A: Cholesky and two triangular solves.

    This is the solve of the exact prox (Eq. 44), on the hot path between the matrix
    products of a training step, so two things matter on the CPU:

    * **Precision.** ``numpy.linalg`` computes in float64 whatever the input (and casts
      back), so float32 goes to SciPy's LAPACK, which keeps float32.
    * **One thread pool at a time.** NumPy's and SciPy's wheels each bundle their own
      OpenBLAS, and each keeps its worker threads spinning for a while after a call. A
      multi-threaded SciPy solve between NumPy's products left, on two cores, one core to
      the idle library's spinning thread, both ways: the exact step cost 2-3x the sum of
      its pieces (DESIGN.md decision 3). SciPy's own OpenBLAS therefore runs this solve on
      the calling thread only (:func:`scipy_blas_single_threaded`); NumPy's products keep
      both cores.

    On CuPy it is ``cupy.linalg.cholesky`` and two ``cupyx`` triangular solves, with no
    finiteness check (that check would synchronise the device).

    Parameters
    ----------
    A : (n, n) symmetric positive definite array.
    B : (n, r) or (n,) right-hand side on the same backend.

    Raises
    ------
    ValueError
        On NumPy, if A is not (numerically) positive definite. On CuPy such an A gives
        NaN instead, which the training loop records as divergence.
    """
    if array_module(A, B) is np:
        with scipy_blas_single_threaded():
            L = _host_linalg.cholesky(A, lower=True, check_finite=False)
            return _host_linalg.cho_solve((L, True), B, check_finite=False)
    return _solve_spd_any(A, B)


def _solve_spd_any(A, B):
    """:func:`solve_spd` with any backend's ``linalg.cholesky`` (CuPy's path; tested on NumPy)."""
    return cho_solve(array_module(A).linalg.cholesky(A), B)


_SCIPY_BLAS = None  # threadpoolctl's handle on SciPy's own OpenBLAS; False: there is none


def _scipy_own_blas():
    """The BLAS libraries that SciPy bundles for itself (as wheels do), via threadpoolctl, or None.

    None where threadpoolctl is not installed, or where SciPy shares NumPy's BLAS
    (e.g. conda's OpenBLAS or MKL): then there is no second thread pool to keep quiet.
    """
    global _SCIPY_BLAS
    if _SCIPY_BLAS is None:
        _SCIPY_BLAS = False
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - depends on the environment
            return None
        import os

        import scipy

        root = os.path.dirname(os.path.abspath(scipy.__file__))  # .../site-packages/scipy
        own = (root + os.sep, root + ".libs" + os.sep)  # scipy/.dylibs (macOS), scipy.libs
        controller = ThreadpoolController()
        paths = [lib.filepath for lib in controller.lib_controllers
                 if lib.user_api == "blas" and os.path.abspath(lib.filepath).startswith(own)]
        if paths:
            _SCIPY_BLAS = controller.select(filepath=paths)
    return _SCIPY_BLAS or None


@contextmanager
def scipy_blas_single_threaded():
    """Within the block, SciPy's own OpenBLAS (if it has one) uses the calling thread only.

    A no-op where SciPy shares NumPy's BLAS or threadpoolctl is missing. See
    :func:`solve_spd` for why.
    """
    blas = _scipy_own_blas()
    if blas is None:
        yield
        return
    with blas.limit(limits=1):
        yield


def eigvalsh(A):
    """Eigenvalues of a symmetric matrix in ascending order, on A's backend."""
    return array_module(A).linalg.eigvalsh(A)
