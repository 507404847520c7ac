r"""The backend shim: the only module that imports an array library.

Every other module of penaltyprop gets its array namespace from here, either as
``xp = array_module(x)`` (the namespace of an array it was handed, as in CuPy's
guide to CPU/GPU-agnostic code) or as ``get_backend(name)``. NumPy is always
available; CuPy is optional and only imported when asked for.

The linear algebra the prox solvers need (Cholesky factorisation and the two
triangular solves that use it) is wrapped here so that the same call works on
both backends: ``cupyx.scipy.linalg`` has no ``cho_solve``, so a Cholesky solve is
always ``cholesky`` followed by two ``solve_triangular`` calls.

Random numbers are drawn on the host from one seeded NumPy generator and then
moved to the device, so CPU and GPU runs start from identical numbers.
"""
from __future__ import annotations

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


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        cp = _import_cupy()
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


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


def backend_name(xp) -> str:
    """``"numpy"`` or ``"cupy"`` for a namespace returned by this module."""
    return "numpy" if xp is np else "cupy"


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


# --------------------------------------------------------------------------- linear algebra
def cholesky(A):
    r"""Lower Cholesky factor :math:`L` with :math:`A = L L^\top`, on A's backend.

    Parameters
    ----------
    A : (n, n) symmetric positive definite array.

    Raises
    ------
    ValueError
        If A is not (numerically) positive definite.
    """
    xp = array_module(A)
    try:
        L = xp.linalg.cholesky(A)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"matrix of shape {A.shape} is not positive definite") from err
    if xp is not np and not bool(xp.isfinite(L[-1, -1])):  # CuPy returns NaN instead of raising
        raise ValueError(f"matrix of shape {A.shape} is not positive definite")
    return L


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
    L : (n, n) lower-triangular factor from :func:`cholesky`.
    B : (n, k) or (n,) right-hand side.
    """
    Y = solve_triangular(L, B, lower=True)  # L Y = B
    return solve_triangular(L, Y, lower=True, trans=True)  # L^T X = Y


def eigvalsh(A):
    """Eigenvalues of a symmetric matrix in ascending order, on A's backend."""
    return array_module(A).linalg.eigvalsh(A)
