"""The exact prox's SPD solve (Cholesky and two triangular solves) returns the solution of A X = B.

``backend.linalg.solve_spd`` is ``cho_solve(cholesky(A), B)`` (two triangular solves) on
every backend; on the CPU its pieces run on the OpenBLAS inside NumPy's wheel through ctypes
(:class:`~penaltyprop.backend.linalg.NumpyLapack`, the default where it exists) or on SciPy's
LAPACK on one thread (the fallback); on CuPy on cupy/cupyx. Every path is checked against a solve in
float64 by ``numpy.linalg.solve`` (LU, an independent algorithm), for every memory layout
the prox hands it, with the right-hand side left alone unless it may be overwritten.
"""
import pytest

from penaltyprop.backend import linalg, to_host
from penaltyprop.backend import numpy as np

N = 12


def _spd(n=N, seed=3):
    """A batch Gram matrix A^T A + I / tau_theta (tau_theta = 0.05), as the exact prox builds."""
    M = np.random.default_rng(seed).random((4 * n, n))
    return M.T @ M + np.eye(n) / 0.05


def _layouts(rng, dtype):
    """Right-hand sides of shape (N, r) or (N,) in every layout: C, F, strided, 1-D, one column."""
    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype)

    return {
        "C (columns are systems)": draw(N, 30),
        "F (rows of B^T are systems)": draw(30, N).T,
        "strided columns": draw(N, 60)[:, ::2],
        "vector": draw(N),
        "strided vector": draw(2 * N)[::2],
        "one column": draw(N, 1),
        "square": draw(N, N),
    }


@pytest.fixture(params=["numpy-openblas", "scipy"])
def cpu_path(request, monkeypatch):
    """Run the test on NumPy's own OpenBLAS, then with it switched off (SciPy's fallback)."""
    if request.param == "numpy-openblas":
        if linalg.find_numpy_openblas() is None:
            pytest.skip("this NumPy ships no OpenBLAS with 64-bit LAPACKE symbols")
        assert linalg.numpy_lapack() is not None, "NumPy's OpenBLAS is there but failed its self-test"
    else:
        monkeypatch.setattr(linalg, "numpy_lapack", lambda: None)  # as where NumPy has none
        assert linalg.cpu_spd_solver() == "SciPy's LAPACK, one thread"
    return request.param


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])  # ~cond * eps
def test_every_layout_is_solved_and_left_unmodified(cpu_path, dtype, tol):
    A64 = _spd()
    A = A64.astype(dtype)
    for name, B in _layouts(np.random.default_rng(0), dtype).items():
        B_before, A_before = B.copy(), A.copy()
        X = linalg.solve_spd(A, B)
        exact = np.linalg.solve(A64, B.astype(np.float64))
        assert X.shape == B.shape and X.dtype == A.dtype, name
        assert np.abs(X - exact).max() <= tol * np.abs(exact).max(), name
        assert np.array_equal(B, B_before) and np.array_equal(A, A_before), name


def test_overwrite_b_solves_in_place_for_contiguous_layouts(cpu_path):
    A = _spd()
    rng = np.random.default_rng(1)
    for B in (rng.standard_normal((N, 7)), rng.standard_normal((7, N)).T, rng.standard_normal(N)):
        exact = np.linalg.solve(A, B)
        X = linalg.solve_spd(A, B, overwrite_b=True)
        assert np.abs(X - exact).max() <= 1e-12 * np.abs(exact).max()
        if cpu_path == "numpy-openblas":  # SciPy may or may not reuse B; ours always does
            assert np.shares_memory(X, B) and np.array_equal(X, B)


def test_not_positive_definite_is_a_clear_error(cpu_path):
    A = _spd()
    A[3, 3] = -1.0  # a negative diagonal entry: no Cholesky factor exists
    with pytest.raises(np.linalg.LinAlgError, match="positive definite") as info:
        linalg.solve_spd(A, np.ones(N))
    assert isinstance(info.value, ValueError)  # on every NumPy: the prox solvers catch ValueError


def test_nan_in_the_matrix_is_never_a_finite_answer(cpu_path):
    """Exploded activations give a NaN Gram matrix. NumPy's OpenBLAS (LAPACKE checks for NaN)
    raises a clear error; SciPy's fallback, which skips that check, returns NaN. Training
    records either as divergence."""
    A = _spd()
    A[2, 5] = A[5, 2] = np.nan
    if cpu_path == "numpy-openblas":
        with pytest.raises(np.linalg.LinAlgError, match="contains NaN"):
            linalg.solve_spd(A, np.ones(N))
    else:
        try:
            X = linalg.solve_spd(A, np.ones(N))
        except np.linalg.LinAlgError:
            return
        assert not np.isfinite(X).all()


def test_the_pieces_solve_their_systems_and_keep_the_dtype(xp):
    """cholesky gives A = L L^T (lower triangle), solve_triangular solves L X = B and L^T X = B,
    and solve_spd, which composes them on every backend, solves A X = B; float32 stays float32."""
    A64 = _spd()
    B64 = np.random.default_rng(2).standard_normal((N, 30))
    exact = np.linalg.solve(A64, B64)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):  # ~cond * eps of each dtype
        A, B = xp.asarray(A64.astype(dtype)), xp.asarray(B64.astype(dtype))
        L = linalg.cholesky(A)
        L64 = np.tril(to_host(L)).astype(np.float64)
        assert L.dtype == dtype
        # Cholesky is backward stable: L L^T = A + E with |E| <~ n eps |A| (n = 12 here).
        assert np.abs(L64 @ L64.T - A64).max() <= 10 * tol * np.abs(A64).max()
        for trans, M in ((False, L64), (True, L64.T)):
            Y = linalg.solve_triangular(L, B, lower=True, trans=trans)
            assert Y.dtype == dtype
            Y_exact = np.linalg.solve(M, B64)
            assert np.abs(to_host(Y) - Y_exact).max() <= tol * np.abs(Y_exact).max()
        for X in (linalg.solve_spd(A, B), linalg.cho_solve(L, B)):
            assert X.dtype == dtype
            assert np.abs(to_host(X) - exact).max() <= tol * np.abs(exact).max()


def test_numpy_openblas_is_numpys_own_library():
    """Where it is found, the library is the one inside NumPy's package, not SciPy's."""
    import os

    if linalg.find_numpy_openblas() is None:
        pytest.skip("this NumPy ships no OpenBLAS with 64-bit LAPACKE symbols")
    lapack = linalg.numpy_lapack()
    numpy_dir = os.path.dirname(os.path.abspath(np.__file__))
    assert os.path.abspath(lapack.path).startswith((numpy_dir + os.sep, numpy_dir + ".libs" + os.sep))


def test_scipy_blas_is_single_threaded_inside_the_block_and_restored_after():
    blas = linalg.scipy_own_blas()
    before = None if blas is None else [i["num_threads"] for i in blas.info()]
    with linalg.scipy_blas_single_threaded():
        if blas is not None:  # SciPy bundles its own OpenBLAS (wheels)
            assert all(i["num_threads"] == 1 for i in blas.info())
    if blas is not None:
        assert [i["num_threads"] for i in blas.info()] == before


def test_cholesky_runs_on_one_thread_and_restores_the_pool():
    """The factorisation runs on the calling thread alone (its barriers stall under load), and
    the pool's size for this thread is what it was before, also after an error."""
    lapack = linalg.numpy_lapack()
    if lapack is None or lapack._set_threads_local is None:
        pytest.skip("NumPy's OpenBLAS has no openblas_set_num_threads_local")
    before = lapack._set_threads_local(0)  # 0 leaves it, and returns the current count
    lapack._set_threads_local(before)
    A = np.array([[4.0, 2.0], [2.0, 3.0]], dtype=np.float32)
    L = lapack.cholesky(A)
    assert np.allclose(np.tril(L) @ np.tril(L).T, A)
    with pytest.raises(np.linalg.LinAlgError):
        lapack.cholesky(-A)
    now = lapack._set_threads_local(0)
    lapack._set_threads_local(now)
    assert now == before
