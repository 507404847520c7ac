r"""The backend shim: the only module that imports an array library.

Every other module of penaltyprop gets its array namespace from here, either as
``xp = array_module(x)`` (the namespace of an array it was handed, as in CuPy's
guide to CPU/GPU-agnostic code) or as ``get_backend(name)``. NumPy is always
available; CuPy is optional and only imported when asked for.

The linear algebra the prox solvers need is wrapped here so that the same call works
on both backends: :func:`solve_spd` (the exact prox's solve, which keeps float32 and
runs on NumPy's own OpenBLAS, so that one thread pool serves the whole step: see its
docstring and :class:`NumpyLapack`), and the two
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
def cholesky(A):
    r"""The lower Cholesky factor L of a symmetric positive definite A, :math:`A = L L^\top`.

    Only L's lower triangle is meaningful (on NumPy's OpenBLAS the upper one keeps A's
    entries); :func:`solve_triangular` reads no other. NumPy: on NumPy's own OpenBLAS
    where it has one (:class:`NumpyLapack`), else SciPy's LAPACK on one thread; float32
    stays float32 either way. CuPy: ``cupy.linalg.cholesky``.

    Raises
    ------
    numpy.linalg.LinAlgError (a ValueError)
        On NumPy, if A is not (numerically) positive definite (or, on NumPy's OpenBLAS,
        contains NaN). On CuPy such an A gives NaN instead (a check would synchronise).
    """
    xp = array_module(A)
    if xp is np:
        lapack = numpy_lapack()
        if lapack is not None and lapack.supports(A):
            return lapack.cholesky(A)
        with scipy_blas_single_threaded():
            return _host_linalg.cholesky(A, lower=True, check_finite=False)
    return xp.linalg.cholesky(A)


def solve_triangular(L, B, lower=True, trans=False, overwrite_b=False):
    r"""Solve :math:`L X = B` (or :math:`L^\top X = B` with ``trans=True``) for triangular L.

    NumPy: on NumPy's own OpenBLAS for a lower L (:meth:`NumpyLapack.solve_triangular`,
    which solves B in the layout it comes in), else SciPy on one thread. CuPy: ``cupyx``.
    ``overwrite_b`` allows X to be written over B.
    """
    xp = array_module(L, B)
    if xp is np:
        lapack = numpy_lapack()
        if lower and lapack is not None and lapack.supports(L, B):
            return lapack.solve_triangular(L, B, trans=trans, overwrite_b=overwrite_b)
        with scipy_blas_single_threaded():
            return _host_linalg.solve_triangular(L, B, lower=lower, trans=1 if trans else 0,
                                                 overwrite_b=overwrite_b, check_finite=False)
    import cupyx.scipy.linalg as device_linalg

    return device_linalg.solve_triangular(L, B, lower=lower, trans=1 if trans else 0,
                                          overwrite_b=overwrite_b)


def cho_solve(L, B, overwrite_b=False):
    r"""Solve :math:`A X = B` given the lower Cholesky factor L of A (two triangular solves).

    Parameters
    ----------
    L : (n, n) lower-triangular Cholesky factor of A (:func:`cholesky`).
    B : (n, k) or (n,) right-hand side.
    overwrite_b : allow X to be written over B.
    """
    Y = solve_triangular(L, B, lower=True, overwrite_b=overwrite_b)  # L Y = B
    return solve_triangular(L, Y, lower=True, trans=True, overwrite_b=True)  # L^T X = Y


def solve_spd(A, B, overwrite_b=False):
    r"""Solve :math:`A X = B` for a symmetric positive definite A: Cholesky and two triangular solves.

    This is the solve of the exact prox (Eq. 44), on the hot path between the matrix
    products of a training step. On the CPU three things matter:

    * **Precision.** ``numpy.linalg`` computes in float64 whatever the input (and casts
      back); this solve keeps float32 in float32.
    * **One BLAS.** NumPy's and SciPy's wheels each bundle their own OpenBLAS, and each
      keeps its worker threads spinning for a while after a call. Alternating the two
      libraries left, on two cores, one core to the idle library's spinning thread: a
      multi-threaded SciPy solve between NumPy's products made the exact step cost 2-3x
      the sum of its pieces (DESIGN.md decision 3). So the solve runs on the OpenBLAS
      inside NumPy's wheel (LAPACK's ``potrf`` and BLAS's ``trsm``, called through
      :mod:`ctypes`, see :class:`NumpyLapack`), multi-threaded in the same pool as the
      products. Where NumPy has no such library (another BLAS, another platform) SciPy
      solves on the calling thread only (:func:`scipy_blas_single_threaded`), which
      keeps its pool quiet but runs the triangular solves on one core.
    * **No copies.** The right-hand sides are solved in the memory layout they come in:
      a C-ordered B column by column, an F-ordered B (such as ``M.T`` of a C-ordered M,
      one system per row of M) row by row. ``overwrite_b=True`` lets the solve write X
      over B when B has one of these layouts.

    It is :func:`cholesky` and :func:`cho_solve` on every backend (CuPy has no
    ``cho_solve``: two ``cupyx`` triangular solves), with no finiteness check on CuPy
    (that check would synchronise the device).

    Parameters
    ----------
    A : (n, n) symmetric positive definite array (only its lower triangle is read).
    B : (n, r) or (n,) right-hand side on the same backend and of the same dtype.
    overwrite_b : allow X to be written over B (B is never modified otherwise).

    Returns
    -------
    X : B's shape, dtype and (for a contiguous B) memory layout.

    Raises
    ------
    numpy.linalg.LinAlgError (a ValueError)
        On NumPy, if A is not (numerically) positive definite. On CuPy such an A gives
        NaN instead, which the training loop records as divergence.
    """
    return cho_solve(cholesky(A), B, overwrite_b=overwrite_b)


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


# --------------------------------------------------------------------------- NumPy's own LAPACK
# CBLAS and LAPACKE enum values (cblas.h, lapacke.h).
_ROW_MAJOR, _COL_MAJOR = 101, 102
_NO_TRANS, _TRANS, _LOWER, _NON_UNIT, _LEFT, _RIGHT = 111, 112, 122, 131, 141, 142


class NumpyLapack:
    r"""Cholesky solves on the OpenBLAS bundled in NumPy's wheel, called through :mod:`ctypes`.

    NumPy's public API has no triangular solve and computes ``numpy.linalg`` in float64;
    SciPy's LAPACK runs on a second OpenBLAS whose threads fight NumPy's (see
    :func:`solve_spd`). NumPy's wheels ship the whole of OpenBLAS, LAPACKE and CBLAS
    included, as a 64-bit-integer build whose symbols carry a suffix ``64_`` (and, from
    NumPy 2, a prefix ``scipy_``). This class calls two of them, for float32 and float64:

    * ``LAPACKE_?potrf``: :math:`A = L L^\top` (Cholesky), in a copy of A;
    * ``cblas_?trsm``: :math:`L X = B` or :math:`L^\top X = B`, in place, multi-threaded
      in NumPy's own pool (a Cholesky solve is two of them, :func:`cho_solve`).

    Use :func:`numpy_lapack` to get the instance (None where NumPy has no such library).
    """

    def __init__(self, lib, prefix, path):
        import ctypes

        self.path = path  # the shared library's file
        i64, i32, ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
        self._potrf, self._trsm = {}, {}
        for dtype, c, real in ((np.float32, "s", ctypes.c_float),
                               (np.float64, "d", ctypes.c_double)):
            potrf = getattr(lib, f"{prefix}LAPACKE_{c}potrf64_")
            potrf.argtypes, potrf.restype = [i32, ctypes.c_char, i64, ptr, i64], i64
            trsm = getattr(lib, f"{prefix}cblas_{c}trsm64_")
            trsm.argtypes = [i32, i32, i32, i32, i32, i64, i64, real, ptr, i64, ptr, i64]
            trsm.restype = None
            self._potrf[np.dtype(dtype)], self._trsm[np.dtype(dtype)] = potrf, trsm

    def supports(self, A, B=None):
        """Whether the methods take these arrays: a 2-D float32/64 A, and a B of A's dtype
        with as many rows (or None)."""
        ok = A.dtype in self._potrf and A.ndim == 2 and A.shape[0] == A.shape[1] and A.size > 0
        return ok and (B is None or (B.dtype == A.dtype and B.ndim in (1, 2)
                                     and B.shape[0] == A.shape[0] and B.size > 0))

    def cholesky(self, A):
        """The lower Cholesky factor L of A in a new C-ordered array (its upper part is A's).

        Read column by column, the C-ordered copy of a symmetric A is A itself, and the
        upper factor U (A = U^T U) that LAPACK writes there in column-major order is
        L = U^T in row-major order: no transposed copy, which LAPACKE's row-major
        interface would make.
        """
        L = np.array(A, order="C")
        n = L.shape[0]
        info = self._potrf[L.dtype](_COL_MAJOR, b"U", n, L.ctypes.data, n)
        if info > 0:
            raise np.linalg.LinAlgError(f"the {n} x {n} matrix is not positive definite "
                                        f"(Cholesky failed at column {info})")
        if info == -4:  # LAPACKE checks its matrix argument (the 4th) for NaN first
            raise np.linalg.LinAlgError(f"the {n} x {n} matrix contains NaN")
        if info < 0:  # pragma: no cover - the other arguments are ours
            raise np.linalg.LinAlgError(f"LAPACKE_potrf rejected argument {-info}")
        return L

    def solve_triangular(self, L, B, trans=False, overwrite_b=False):
        r"""X with :math:`L X = B` (:math:`L^\top X = B` with ``trans``), L lower, by ``trsm``.

        B is solved in the layout it comes in, in place in its copy (or in B itself with
        ``overwrite_b``): a C-ordered B's columns are the systems, solved from the left;
        otherwise (F-ordered, or a vector) X^T op(L)^T = B^T, one system per row of B^T,
        solved from the right.
        """
        L = np.ascontiguousarray(L)
        n = L.shape[0]
        X = B if overwrite_b and B.flags.writeable else B.copy(order="K")
        if not (X.flags.c_contiguous or X.flags.f_contiguous):
            X = np.ascontiguousarray(X)
        if X.ndim == 2 and X.flags.c_contiguous:  # op(L) X = B
            side, op, Y = _LEFT, _TRANS if trans else _NO_TRANS, X
        else:  # X^T op(L)^T = B^T, with Y = X^T C-ordered
            Y = X.reshape(1, n) if X.ndim == 1 else X.T
            side, op = _RIGHT, _NO_TRANS if trans else _TRANS
        rows, cols = Y.shape  # Y: the C-ordered array the solve works in
        self._trsm[L.dtype](_ROW_MAJOR, side, _LOWER, op, _NON_UNIT, rows, cols, 1.0,
                            L.ctypes.data, n, Y.ctypes.data, cols)
        return X


_NUMPY_LAPACK = None  # the NumpyLapack instance; False: NumPy has no usable OpenBLAS


def numpy_lapack():
    """The :class:`NumpyLapack` on NumPy's bundled OpenBLAS, or None where there is none.

    Looked up once (:func:`find_numpy_openblas`). A 2 x 2 solve is checked against its
    exact answer before the library is trusted; anything unexpected leaves None (with a
    warning if the library was there but answered wrongly), and :func:`solve_spd` falls
    back to SciPy.
    """
    global _NUMPY_LAPACK
    if _NUMPY_LAPACK is None:
        _NUMPY_LAPACK = False
        try:
            _NUMPY_LAPACK = _load_numpy_lapack() or False
        except (OSError, AttributeError, TypeError) as err:  # pragma: no cover - a foreign library
            import warnings

            warnings.warn(f"penaltyprop: cannot call the OpenBLAS in NumPy's wheel ({err}); "
                          "the exact prox uses SciPy's LAPACK instead", RuntimeWarning,
                          stacklevel=2)
    return _NUMPY_LAPACK or None


def cpu_spd_solver() -> str:
    """Which library :func:`solve_spd` runs on for NumPy arrays (for benchmark reports)."""
    lapack = numpy_lapack()
    if lapack is not None:
        return f"NumPy's OpenBLAS ({lapack.path})"
    return "SciPy's LAPACK, one thread"


def _load_numpy_lapack():
    found = find_numpy_openblas()
    if found is None:
        return None
    lapack = NumpyLapack(*found)
    A = np.array([[4.0, 2.0], [2.0, 3.0]])  # A [1, 2]^T = [8, 8]^T
    for dtype in (np.float32, np.float64):
        L = lapack.cholesky(A.astype(dtype))
        X = lapack.solve_triangular(L, lapack.solve_triangular(L, np.array([8.0, 8.0], dtype)),
                                    trans=True)
        if not np.allclose(X, [1.0, 2.0], rtol=1e-6):
            import warnings

            warnings.warn(f"penaltyprop: the OpenBLAS in NumPy's wheel ({found[2]}) failed a "
                          "2 x 2 test solve; the exact prox uses SciPy's LAPACK instead",
                          RuntimeWarning, stacklevel=3)
            return None
    return lapack


def find_numpy_openblas():
    """``(library, symbol prefix, path)`` of the OpenBLAS inside NumPy's package, or None.

    Found through threadpoolctl: an OpenBLAS whose file lives in NumPy's package
    (``numpy.libs`` on Linux, ``numpy/.dylibs`` on macOS) and exports the 64-bit-integer
    LAPACKE/CBLAS symbols (suffix ``64_``; prefix ``scipy_`` from NumPy 2, none before).
    """
    import ctypes
    import os

    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    root = os.path.dirname(os.path.abspath(np.__file__))  # .../site-packages/numpy
    own = (root + os.sep, root + ".libs" + os.sep)
    for info in threadpool_info():
        path = info["filepath"]
        if info.get("internal_api") == "openblas" and os.path.abspath(path).startswith(own):
            lib = ctypes.CDLL(path)
            for prefix in ("scipy_", ""):
                if all(hasattr(lib, f"{prefix}{name}64_") for name in (
                        "cblas_strsm", "cblas_dtrsm", "LAPACKE_spotrf", "LAPACKE_dpotrf")):
                    return lib, prefix, path
    return None


def eigvalsh(A):
    """Eigenvalues of a symmetric matrix in ascending order, on A's backend."""
    return array_module(A).linalg.eigvalsh(A)
