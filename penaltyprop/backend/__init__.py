r"""The backend: the array namespace, the device and the RNG.

The ``penaltyprop.backend`` package is the only part of penaltyprop that imports an
array library. Every other module of penaltyprop gets its array namespace from here,
either as ``xp = array_module(x)`` (the namespace of an array it was handed, as in CuPy's
guide to CPU/GPU-agnostic code) or as ``get_backend(name)``. NumPy is always
available; CuPy is optional and only imported when asked for.

Random numbers are drawn on the host from one seeded NumPy generator and then
moved to the device, so CPU and GPU runs start from identical numbers.

The rest of the backend lives in submodules, one job each, imported from there:

* :mod:`penaltyprop.backend.linalg`: the linear algebra the prox solvers need
  (``solve_spd``, ``cholesky``, ``solve_triangular``, ``cho_solve``, ``eigvalsh``);
* :mod:`penaltyprop.backend.instruments`: timers (``synchronize``), ``peak_memory``,
  ``blas_info``;
* ``penaltyprop.backend._openblas``: the private ``ctypes`` binding to the OpenBLAS
  inside NumPy's wheel, which ``linalg`` runs on.
"""
from __future__ import annotations

import numpy as np

#: Host NumPy, for modules that parse files or build host-side arrays.
numpy = np

BACKENDS = ("numpy", "cupy")

if issubclass(np.linalg.LinAlgError, ValueError):  # NumPy >= 2.0
    LinAlgError = np.linalg.LinAlgError
else:  # NumPy 1.x, whose LinAlgError is not a ValueError
    class LinAlgError(np.linalg.LinAlgError, ValueError):
        """A failed factorisation: a ``numpy.linalg.LinAlgError`` that is a ValueError on
        every NumPy, as it is from NumPy 2.0 on (the prox solvers catch ValueError)."""

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
