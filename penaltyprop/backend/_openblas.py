r"""A private ``ctypes`` binding to the OpenBLAS inside NumPy's wheel.

NumPy's public API has no triangular solve, and SciPy's LAPACK runs on a second OpenBLAS
whose threads fight NumPy's (see :func:`penaltyprop.backend.linalg.solve_spd`). This
module finds the OpenBLAS that NumPy bundles (:func:`find_numpy_openblas`), wraps the two
routines a Cholesky solve needs (:class:`NumpyLapack`) and checks them on a 2 x 2 system
before they are trusted (:func:`load_numpy_lapack`). Only
:mod:`penaltyprop.backend.linalg` uses it; everything else goes through that module.
"""
from __future__ import annotations

import contextlib

import numpy as np

from . import LinAlgError

# CBLAS and LAPACKE enum values (cblas.h, lapacke.h).
_ROW_MAJOR, _COL_MAJOR = 101, 102
_NO_TRANS, _TRANS, _LOWER, _NON_UNIT, _LEFT, _RIGHT = 111, 112, 122, 131, 141, 142


class NumpyLapack:
    r"""Cholesky solves on the OpenBLAS bundled in NumPy's wheel, called through ``ctypes``.

    NumPy's public API has no triangular solve and computes ``numpy.linalg`` in float64;
    SciPy's LAPACK runs on a second OpenBLAS whose threads fight NumPy's (see
    :func:`~penaltyprop.backend.linalg.solve_spd`). NumPy's wheels ship the whole of
    OpenBLAS, LAPACKE and CBLAS included, as a 64-bit-integer build whose symbols carry a
    suffix ``64_`` (and, from NumPy 2, a prefix ``scipy_``). This class calls two of them,
    for float32 and float64:

    * ``LAPACKE_?potrf``: :math:`A = L L^\top` (Cholesky), in a copy of A;
    * ``cblas_?trsm``: :math:`L X = B` or :math:`L^\top X = B`, in place, multi-threaded
      in NumPy's own pool (a Cholesky solve is two of them,
      :func:`~penaltyprop.backend.linalg.cho_solve`).

    Use :func:`~penaltyprop.backend.linalg.numpy_lapack` to get the instance (None where
    NumPy has no such library).
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
        # OpenBLAS >= 0.3.27: the number of threads of the calling thread only
        self._set_threads_local = getattr(lib, "openblas_set_num_threads_local", None)
        if self._set_threads_local is not None:
            self._set_threads_local.argtypes, self._set_threads_local.restype = [i32], i32

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
        with self.one_thread():  # n^3/3 flops: ~1 ms for n = 500; threads only add barriers
            info = self._potrf[L.dtype](_COL_MAJOR, b"U", n, L.ctypes.data, n)
        if info > 0:
            raise LinAlgError(f"the {n} x {n} matrix is not positive definite "
                                        f"(Cholesky failed at column {info})")
        if info == -4:  # LAPACKE checks its matrix argument (the 4th) for NaN first
            raise LinAlgError(f"the {n} x {n} matrix contains NaN")
        if info < 0:  # pragma: no cover - the other arguments are ours
            raise LinAlgError(f"LAPACKE_potrf rejected argument {-info}")
        return L

    @contextlib.contextmanager
    def one_thread(self):
        """Within the block, OpenBLAS calls from this thread run on it alone (no-op on an
        OpenBLAS without ``openblas_set_num_threads_local``).

        In the OpenBLAS of NumPy's wheels (0.3.31 measured) the "local" count is in fact
        process-wide while it is set: a product called from another thread meanwhile also
        runs on one thread, and two threads that enter and leave the block at overlapping
        times can leave the count at 1 for good (each restores what the other set). So
        penaltyprop enters it from one thread at a time.

        A factorisation of a few hundred rows is a chain of small steps with a barrier after
        each; when another process competes for the cores, every barrier waits for a
        descheduled worker. Measured on 2 loaded cores: a 500 x 500 float32 Cholesky took
        600-950 ms on OpenBLAS's two threads and 0.7 ms on one.
        """
        if self._set_threads_local is None:
            yield
            return
        previous = self._set_threads_local(1)
        try:
            yield
        finally:
            self._set_threads_local(previous)

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


def load_numpy_lapack():
    """A :class:`NumpyLapack` on NumPy's OpenBLAS that has solved a 2 x 2 system correctly, or None.

    None where :func:`find_numpy_openblas` finds no library, and (with a warning) where
    the library answers the test solve wrongly. Called once, by
    :func:`~penaltyprop.backend.linalg.numpy_lapack`, which catches the errors of a
    foreign library.
    """
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
