r"""The linear algebra the prox solvers need, one call for both backends.

:func:`solve_spd` is the exact prox's solve: it keeps float32 and runs on NumPy's own
OpenBLAS, so that one thread pool serves the whole step (see its docstring and
:class:`NumpyLapack`, from the private binding ``penaltyprop.backend._openblas``).
:func:`cholesky` and the two triangular solves of a Cholesky solve (:func:`cho_solve`)
are wrapped here because ``cupyx.scipy.linalg`` has no ``cho_solve``: on CuPy a
Cholesky solve is ``cupy.linalg.cholesky`` followed by two ``solve_triangular`` calls.
Where NumPy has no such library, SciPy solves on one thread
(:func:`scipy_blas_single_threaded`). :func:`eigvalsh` serves the conditioning experiment.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import scipy.linalg as _host_linalg

from . import LinAlgError, array_module
from ._openblas import NumpyLapack, find_numpy_openblas, load_numpy_lapack

__all__ = ["LinAlgError", "NumpyLapack", "cho_solve", "cholesky", "cpu_spd_solver", "eigvalsh",
           "find_numpy_openblas", "numpy_lapack", "scipy_blas_single_threaded", "scipy_own_blas",
           "solve_spd", "solve_triangular"]


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
            try:
                return _host_linalg.cholesky(A, lower=True, check_finite=False)
            except np.linalg.LinAlgError as err:  # one message (SciPy's changes), a ValueError
                n = A.shape[0]
                raise LinAlgError(f"the {n} x {n} matrix is not positive definite (SciPy: "
                                  f"{err})") from None
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
    L : array, shape (n, n)
        Lower-triangular Cholesky factor of A (:func:`cholesky`).
    B : array, shape (n, k) or (n,)
        The right-hand side.
    overwrite_b : bool
        Allow X to be written over B.
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
      the sum of its pieces. So the solve runs on the OpenBLAS
      inside NumPy's wheel (LAPACK's ``potrf`` and BLAS's ``trsm``, called through
      ``ctypes``, see :class:`NumpyLapack`), multi-threaded in the same pool as the
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
    A : array, shape (n, n)
        Symmetric positive definite (only its lower triangle is read).
    B : array, shape (n, r) or (n,)
        The right-hand side, on the same backend and of the same dtype.
    overwrite_b : bool
        Allow X to be written over B (B is never modified otherwise).

    Returns
    -------
    X : array
        B's shape, dtype and (for a contiguous B) memory layout.

    Raises
    ------
    numpy.linalg.LinAlgError (a ValueError)
        On NumPy, if A is not (numerically) positive definite. On CuPy such an A gives
        NaN instead, which the training loop records as divergence.
    """
    return cho_solve(cholesky(A), B, overwrite_b=overwrite_b)


def eigvalsh(A):
    """Eigenvalues of a symmetric matrix in ascending order, on A's backend."""
    return array_module(A).linalg.eigvalsh(A)


# --------------------------------------------------------------------------- SciPy's thread pool
_SCIPY_BLAS = None  # threadpoolctl's handle on SciPy's own OpenBLAS; False: there is none


def scipy_own_blas():
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
    blas = scipy_own_blas()
    if blas is None:
        yield
        return
    with blas.limit(limits=1):
        yield


# --------------------------------------------------------------------------- NumPy's own LAPACK
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
            _NUMPY_LAPACK = load_numpy_lapack() or False
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
