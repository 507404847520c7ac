"""The prox solvers agree with independent linear-algebra oracles.

- The primal ((m+1) x (m+1)) and batch-space (K x K) exact solves are the same
  update (push-through identity) to rounding, and satisfy the optimality condition
  D (A A^T + I/tau_theta) = -delta A^T of Eq. 11 (Eqs. 30, 44).
- Our vectorised CG is textbook CG: row by row it matches scipy.sparse.linalg.cg
  started at theta^k, after the same number of iterations.
- cg_tol stops early once every row's residual has fallen by that factor; the residual
  history is the true residual of the returned iterate.
"""
import numpy as np
import pytest
from helpers import random_problem, scipy_cg

import penaltyprop as pp
from penaltyprop.backend import get_backend, to_device, to_host
from penaltyprop.prox import ProxInfo, choose_system, prox_cg, prox_exact


def layer(seed, m, K, n_out=4):
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((m, K))
    delta = rng.standard_normal((n_out, K))
    return P, delta


def H_of(P, tau_theta):
    A = np.vstack([P, np.ones((1, P.shape[1]))])
    return A @ A.T + np.eye(A.shape[0]) / tau_theta


@pytest.mark.parametrize("m,K", [(3, 10), (10, 3), (7, 7), (1, 1), (20, 5)])
@pytest.mark.parametrize("tau_theta", [1e-3, 0.05, 1.0, 1e3])
def test_primal_and_batch_exact_solves_agree_and_are_optimal(backend, m, K, tau_theta):
    xp = get_backend(backend)
    P, delta = layer(m * 100 + K, m, K)
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    Dp = np.hstack([to_host(x).reshape(4, -1) for x in prox_exact(Pd, dd, tau_theta, "primal")])
    Db = np.hstack([to_host(x).reshape(4, -1) for x in prox_exact(Pd, dd, tau_theta, "batch")])
    scale = np.max(np.abs(Dp))
    # both are backward-stable Cholesky solves of systems with cond <= 1 + tau_theta ||A||^2
    cond = 1 + tau_theta * np.linalg.norm(np.vstack([P, np.ones((1, K))]), 2) ** 2
    assert np.max(np.abs(Dp - Db)) <= 1e-14 * cond * scale + 1e-300
    A = np.vstack([P, np.ones((1, K))])
    residual = Dp @ H_of(P, tau_theta) + delta @ A.T  # optimality condition of Eq. 11
    assert np.max(np.abs(residual)) <= 1e-13 * cond * np.max(np.abs(delta @ A.T))


def test_auto_picks_the_smaller_system():
    assert choose_system(m=3072, K=500) == "batch"
    assert choose_system(m=75, K=500 * 32 * 32) == "primal"
    assert choose_system(m=4, K=5) == "primal"  # 5 unknowns either way: primal
    info = ProxInfo("exact")
    P, delta = layer(0, 12, 5)
    prox_exact(P, delta, 1.0, info=info)
    assert (info.system, info.size) == ("batch", 5)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("tau_theta", [0.05, 1.0, 20.0])
def test_cg_matches_scipy_cg_row_by_row(backend, k, tau_theta):
    xp = get_backend(backend)
    m, K, n_out = 8, 6, 5
    rng = np.random.default_rng(k)
    P, delta = layer(k, m, K, n_out)
    Theta = rng.standard_normal((n_out, m + 1))  # theta^k = [W, b]
    A = np.vstack([P, np.ones((1, K))])
    z_half = Theta @ A - delta  # so that z^k - z^{k+1/2} = delta
    H = H_of(P, tau_theta)
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    DW, db = prox_cg(Pd, (dd @ Pd.T, dd.sum(axis=1)), tau_theta, k)
    ours = Theta + np.hstack([to_host(DW), to_host(db)[:, None]])
    for i in range(n_out):
        b_i = Theta[i] / tau_theta + A @ z_half[i]  # Eq. 11's normal equations: H theta = b
        x = scipy_cg(H, b_i, Theta[i], k)
        # same algorithm, different order of floating-point operations
        assert np.max(np.abs(ours[i] - x)) <= 1e-10 * max(1.0, np.max(np.abs(x)))


def test_cg_history_and_tolerance(backend):
    xp = get_backend(backend)
    P, delta = layer(3, 10, 30)
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    grad = (dd @ Pd.T, dd.sum(axis=1))
    info = ProxInfo("cg")
    DW, db = prox_cg(Pd, grad, 0.5, 50, tol=1e-6, history=True, info=info)
    hist = info.residual_norms
    assert hist.shape == (info.iterations + 1, 4)
    assert info.iterations < 50  # stopped early
    assert np.all(hist[-1] <= 1e-6 * hist[0])
    assert np.any(hist[-2] > 1e-6 * hist[0])  # and not one iteration earlier
    # the recorded residual is the true residual of the returned iterate
    D = np.hstack([to_host(DW), to_host(db)[:, None]])
    A = np.vstack([P, np.ones((1, 30))])
    true_r = -delta @ A.T - D @ H_of(P, 0.5)
    assert np.allclose(np.linalg.norm(true_r, axis=1), hist[-1], rtol=1e-6, atol=1e-12)
    # without a tolerance exactly k iterations
    info2 = ProxInfo("cg")
    prox_cg(Pd, grad, 0.5, 7, history=True, info=info2)
    assert info2.iterations == 7 and info2.residual_norms.shape == (8, 4)


def test_cg_rows_with_zero_gradient_stay_put(backend):
    """A unit with no gradient (a dead ReLU) is converged: 0/0 must not produce NaN."""
    xp = get_backend(backend)
    P, delta = layer(5, 6, 9)
    delta[1] = 0.0
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    DW, db = prox_cg(Pd, (dd @ Pd.T, dd.sum(axis=1)), 1.0, 4)
    DW, db = to_host(DW), to_host(db)
    assert np.all(np.isfinite(DW)) and np.all(DW[1] == 0) and db[1] == 0


def test_proxprop_returns_info_per_hidden_layer(backend):
    net, theta, X, y = random_problem([6, 5, 8, 4], 9, backend=backend)
    _, infos = pp.proxprop(net, theta, X, y, 1.0, 0.5, solver="cg", cg_iterations=3,
                           return_info=True)
    assert [i.extra["layer"] for i in infos] == [1, 2]
    assert all(i.iterations == 3 and i.residual_norms.shape[0] == 4 for i in infos)
    # CG residuals need not be monotone, but each live row ends below its start
    # (rows of dead ReLU units start, and stay, at exactly zero)
    for i in infos:
        r0, rk = i.residual_norms[0], i.residual_norms[-1]
        assert np.all(rk[r0 > 0] < r0[r0 > 0]) and np.all(rk[r0 == 0] == 0)


# --------------------------------------------------------------------------- CG in batch coordinates
@pytest.mark.parametrize("m,K", [(12, 5), (30, 8), (6, 6), (3, 10)])
@pytest.mark.parametrize("k", [1, 2, 4, 9])
def test_batch_coordinate_cg_has_the_same_iterates(backend, m, K, k):
    """prox_cg_batch is textbook CG on D = C A^T: row by row the iterates of prox_cg and of
    scipy's cg (rounding apart), whichever space is smaller."""
    from penaltyprop.prox import prox_cg_batch

    xp = get_backend(backend)
    P, delta = layer(m + 7 * K + k, m, K, n_out=5)
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    info_b, info_p = ProxInfo("cg"), ProxInfo("cg")
    batch = prox_cg_batch(Pd, dd, 0.3, k, history=True, info=info_b)
    param = prox_cg(Pd, (dd @ Pd.T, dd.sum(axis=1)), 0.3, k, history=True, info=info_p)
    Db = np.hstack([to_host(batch[0]), to_host(batch[1])[:, None]])
    Dp = np.hstack([to_host(param[0]), to_host(param[1])[:, None]])
    # Same arithmetic in exact terms; the two orders of operations differ by rounding,
    # amplified at most by the condition number of H (< 1e3 here) over k iterations.
    assert np.max(np.abs(Db - Dp)) <= 1e-10 * np.max(np.abs(Dp))
    # Batch coordinates get ||r_i|| from sqrt(c K c^T): an absolute accuracy of about
    # sqrt(eps) ||r_0|| (1.5e-8 relative in float64), not eps: converged rows read ~1e-8.
    r0 = info_p.residual_norms[0].max()
    assert np.allclose(info_b.residual_norms, info_p.residual_norms, rtol=1e-7, atol=1e-7 * r0)
    assert (info_b.system, info_p.system) == ("batch", "matrix-free")
    H = H_of(P, 0.3)
    A = np.vstack([P, np.ones((1, K))])
    for i in range(5):
        x = scipy_cg(H, -(delta @ A.T)[i], np.zeros(m + 1), k)
        assert np.max(np.abs(Db[i] - x)) <= 1e-10 * max(1.0, np.max(np.abs(x)))


def test_batch_coordinate_cg_tolerance_and_zero_rows(backend):
    from penaltyprop.prox import prox_cg_batch

    xp = get_backend(backend)
    P, delta = layer(8, 40, 12)
    delta[2] = 0.0  # a dead unit: its row must stay exactly zero, not NaN
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    info = ProxInfo("cg")
    DW, db = prox_cg_batch(Pd, dd, 1.0, 100, tol=1e-6, history=True, info=info)
    assert info.iterations < 100 and np.all(info.residual_norms[-1] <= 1e-6 * info.residual_norms[0])
    assert np.all(to_host(DW)[2] == 0) and to_host(db)[2] == 0
    exact = prox_exact(Pd, dd, 1.0)
    assert np.max(np.abs(to_host(DW) - to_host(exact[0]))) < 1e-6 * np.max(np.abs(to_host(exact[0])))


@pytest.mark.parametrize("tol", [None, 1e-6])
def test_batch_cg_in_row_blocks_is_the_same_cg(backend, monkeypatch, tol):
    """cg_rows_batch iterates blocks of rows on their own (each row is its own system): the
    iterates and residual norms are those of one block, row by row. With tol, a block whose
    rows have all converged stops early and keeps its last norms."""
    import penaltyprop.cg as cg
    from penaltyprop.prox import prox_cg_batch

    xp = get_backend(backend)
    P, delta = layer(11, 30, 8, n_out=7)
    delta[:2] = 0.0  # block 0 (rows 0, 1 of blocks of 2) converges at once: r_0 = 0
    A = np.vstack([P, np.ones((1, 8))])
    delta[2:4] = np.linalg.eigh(A.T @ A)[1][:, [0, 5]].T  # block 1: eigenvectors c of A^T A,
    # so c A^T is one of H and CG solves those rows in one iteration (the other blocks go on)
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    runs = {}
    for block_rows in (100, 2):  # one block; four blocks (the last one row)
        monkeypatch.setattr(cg, "BLOCK_ROWS", block_rows)
        info = ProxInfo("cg")
        D = prox_cg_batch(Pd, dd, 0.5, 6 if tol is None else 100, tol=tol, history=True,
                          info=info)
        runs[block_rows] = (np.hstack([to_host(D[0]), to_host(D[1])[:, None]]), info)
    (D1, info1), (D4, info4) = runs[100], runs[2]
    assert info4.iterations == info1.iterations
    assert info4.residual_norms.shape == (info1.iterations + 1, 7)
    if tol is None:  # the same arithmetic row by row, only the blocks of the products differ
        assert np.max(np.abs(D4 - D1)) <= 1e-12 * np.max(np.abs(D1))
        assert np.allclose(info4.residual_norms, info1.residual_norms, rtol=1e-10, atol=1e-12)
    else:  # every row met tol; the dead rows stayed exactly 0
        r = info4.residual_norms
        assert np.all(r[-1] <= 1e-6 * r[0]) and np.all(r[:, :2] == 0) and np.all(D4[:2] == 0)
        assert np.max(np.abs(D4 - D1)) <= 1e-5 * np.max(np.abs(D1))  # both near the solve


@pytest.mark.parametrize("m,K", [(3, 10), (12, 5), (6, 6), (1, 1)])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_cg_with_H_formed_has_the_same_iterates(backend, m, K, k):
    """form_H: CG on the formed (m+1) x (m+1) matrix H is the same iteration as matrix-free CG
    and as scipy's cg, row by row (rounding apart)."""
    from penaltyprop.cg import cg_rows

    xp = get_backend(backend)
    P, delta = layer(m + 3 * K + k, m, K, n_out=4)
    Pd, dd = to_device(P, xp), to_device(delta, xp)
    B = (-(dd @ Pd.T), -dd.sum(axis=1))
    infos = ProxInfo("cg"), ProxInfo("cg")
    formed, free = (cg_rows(Pd, B, 0.3, k, history=True, info=info, form_H=f)
                    for info, f in zip(infos, (True, False)))
    Df = np.hstack([to_host(formed[0]), to_host(formed[1])[:, None]])
    Dm = np.hstack([to_host(free[0]), to_host(free[1])[:, None]])
    assert np.max(np.abs(Df - Dm)) <= 1e-10 * np.max(np.abs(Dm))
    assert np.allclose(infos[0].residual_norms, infos[1].residual_norms, rtol=1e-9, atol=1e-12)
    assert (infos[0].system, infos[1].system) == ("primal", "matrix-free")
    H, A = H_of(P, 0.3), np.vstack([P, np.ones((1, K))])
    for i in range(4 if k <= m + 1 else 0):  # scipy's cg divides 0 by 0 once it has converged
        x = scipy_cg(H, -(delta @ A.T)[i], np.zeros(m + 1), k)
        assert np.max(np.abs(Df[i] - x)) <= 1e-10 * max(1.0, np.max(np.abs(x)))


def test_auto_cg_space_is_the_cheapest_by_a_hand_count():
    """choose_cg_space("auto") picks the fewest flops; counted by hand for the paper's layers."""
    from penaltyprop.prox import cg_space_costs, choose_cg_space

    # paper MLP, first layer, CG-3: batch 500^2*3072 + 3*2*4000*500^2 = 6.8e9
    # (primal 3072^2*500 + 3*2*4000*3073^2 = 2.3e11, parameter 3*4*4000*3072*500 = 7.4e10)
    assert cg_space_costs(4000, 3072, 500, 3) == {
        "parameter": 3 * 4 * 4000 * 3072 * 500, "primal": 3072**2 * 500 + 3 * 2 * 4000 * 3073**2,
        "batch": 500**2 * 3072 + 3 * 2 * 4000 * 500**2}
    assert choose_cg_space(4000, 3072, 500, 3) == "batch"
    # the CNN's first convolution (16 filters, m = 3*5*5, K = 32*32*500): primal 2.9e9 against
    # parameter 7.4e9 for CG-3
    assert choose_cg_space(16, 75, 512_000, 3) == "primal"
    # its second (20 filters, m = 400, K = 16*16*500): H costs 400^2*128000 = 2.0e10 to form,
    # more than 3 matrix-free iterations (1.2e10), less than 10 (4.1e10)
    assert choose_cg_space(20, 400, 128_000, 3) == "parameter"
    assert choose_cg_space(20, 400, 128_000, 10) == "primal"
    assert choose_cg_space(20, 400, 128_000, 10, "batch") == "batch"  # as asked


@pytest.mark.parametrize("cg_space", ["auto", "parameter", "primal", "batch"])
def test_proxprop_gives_the_same_update_in_either_cg_space(backend, cg_space):
    net, theta, X, y = random_problem([9, 7, 8, 3], 5, seed=3, backend=backend)  # N < widths
    ref = pp.proxprop(net, theta, X, y, 1.0, 0.5, solver="cg", cg_iterations=3, cg_space="parameter")
    new, infos = pp.proxprop(net, theta, X, y, 1.0, 0.5, solver="cg", cg_iterations=3,
                             cg_space=cg_space, return_info=True)
    expected_system = {"parameter": "matrix-free", "primal": "primal"}.get(
        cg_space, "batch")  # auto: N=5 < 8, 10: batch is cheapest
    assert all(i.system == expected_system for i in infos)
    for (W, _), (W0, _) in zip(new, ref):
        assert np.max(np.abs(to_host(W) - to_host(W0))) < 1e-13


def test_cg_space_errors():
    net, theta, X, y = random_problem([5, 6, 3], 4)
    with pytest.raises(ValueError, match="cg_space must be one of"):
        pp.proxprop(net, theta, X, y, 1.0, 1.0, solver="cg", cg_iterations=2, cg_space="dual")
    with pytest.raises(ValueError, match="cg_space='primal' runs textbook CG only"):
        pp.proxprop(net, theta, X, y, 1.0, 1.0, solver="cg", cg_iterations=2, cg_variant="authors",
                    cg_space="primal")
