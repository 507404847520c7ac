"""ADMM without gradients (Taylor et al. 2016): after each multiplier update the multiplier
satisfies the KKT condition at the output, lambda = -grad loss(z_K); the multiplier accumulates
(lambda_2 = beta (r_1 + r_2), not beta r_2 as in the public port's issue #1); the warm-start
sweeps (lambda = 0) never increase their objective; the residuals are reported.
"""
import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop.backend import to_device, to_host
from penaltyprop.methods import ADMM, lifted
from tests.helpers import copy_params, random_problem

ROUNDING = 1e-12  # relative float64 rounding of a sum of O(10) terms


@pytest.mark.parametrize("loss,steps", [("squared", 1), ("cross_entropy", 80)])
def test_multiplier_satisfies_kkt_after_each_update(backend, xp, loss, steps):
    net, theta, X, y = random_problem([6, 8, 5, 4], 10, seed=0, backend=backend)
    method = ADMM(beta=1.0, gamma=10.0, warm_start_sweeps=1, loss=loss, output_steps=steps)
    state = method.init_state(net, theta, X, y)
    for sweep in range(4):
        theta, state = method.sweep(net, theta, state, X, y)
        if sweep == 0:
            assert state.lam is None  # warm start: no multiplier yet
            continue
        g = lifted.loss_sum_grad(state.z[-1], y, loss)
        # squared loss: the z_K-step is exact, only rounding remains. Cross-entropy: 80 gradient
        # steps contract the error by 3^-80 (factor 1/(2 beta + 1)), so rounding again.
        assert float(xp.abs(state.lam + g).max()) < 1e-12
        assert method.diagnostics(net, theta, state, X, y)["kkt_residual"] < 1e-11


def _sweep_by_hand(Ws, bs, a, z, lam, X, Y, beta, gamma, ridge):
    """Taylor et al.'s Algorithm 1 for a 2-layer net, squared loss, written out with numpy."""
    W1, W2, b1, b2 = Ws[0], Ws[1], bs[0], bs[1]

    def ls(W, b, A_in, Z):  # argmin 1/2||Z - W A - b||^2 + eps/2||[W b] - [W^k b^k]||^2
        A = np.vstack([A_in, np.ones((1, A_in.shape[1]))])
        eps = ridge * (A ** 2).sum() / min(A.shape)
        Theta = (Z @ A.T + eps * np.hstack([W, b[:, None]])) @ np.linalg.inv(A @ A.T + eps * np.eye(len(A)))
        return Theta[:, :-1], Theta[:, -1]

    W1, b1 = ls(W1, b1, X, z[1])
    a1 = np.linalg.solve(beta * W2.T @ W2 + gamma * np.eye(len(W2.T)),
                         beta * W2.T @ (z[2] - b2[:, None]) + gamma * np.maximum(z[1], 0))
    m1 = W1 @ X + b1[:, None]
    z1 = np.empty_like(m1)
    for i in np.ndindex(m1.shape):  # brute force over the two cases, one entry at a time
        cands = [max((gamma * a1[i] + beta * m1[i]) / (gamma + beta), 0), min(m1[i], 0)]
        f = [gamma / 2 * (a1[i] - max(c, 0)) ** 2 + beta / 2 * (c - m1[i]) ** 2 for c in cands]
        z1[i] = cands[int(np.argmin(f))]
    W2, b2 = ls(W2, b2, a1, z[2])
    m2 = W2 @ a1 + b2[:, None]
    z2 = (Y - lam + beta * m2) / (1 + beta)  # argmin 1/2||z - Y||^2 + <z, lam> + beta/2||z - m2||^2
    lam = lam + beta * (z2 - m2)
    return [W1, W2], [b1, b2], [X, a1], [None, z1, z2], lam, z2 - m2


def test_two_sweeps_by_hand_accumulate_the_multiplier():
    # N = 3 < n_1 + 1 = 5: layer 2's theta-step runs in batch space; a ridge of 1e-3 keeps
    # its singular Gram's condition number near 1e3, so both paths agree to ~1e-12
    net, theta, X, y = random_problem([2, 4, 2], 3, seed=5)
    beta, gamma, ridge = 0.5, 2.0, 1e-3
    method = ADMM(beta=beta, gamma=gamma, warm_start_sweeps=0, loss="squared", ridge=ridge)
    state = method.init_state(net, theta, X, y)
    Y = np.eye(2)[:, y]  # one-hot labels, (C, N)
    Ws, bs = [W.copy() for W, _ in theta], [b.copy() for _, b in theta]
    a, z, lam = list(state.a), list(state.z), np.zeros((2, 3))
    residuals = []
    for _ in range(2):
        theta, state = method.sweep(net, theta, state, X, y)
        Ws, bs, a, z, lam, r = _sweep_by_hand(Ws, bs, a, z, lam, X, Y, beta, gamma, ridge)
        residuals.append(r)
        # the same sweep twice: agreement to rounding (a chain of small solves, cond <= ~1e3)
        np.testing.assert_allclose(state.lam, lam, rtol=0, atol=1e-10)
        for (W, b), W_hand, b_hand in zip(theta, Ws, bs):
            np.testing.assert_allclose(W, W_hand, rtol=0, atol=1e-10)
            np.testing.assert_allclose(b, b_hand, rtol=0, atol=1e-10)
    np.testing.assert_allclose(state.lam, beta * (residuals[0] + residuals[1]), rtol=0, atol=1e-12)
    # the port's bug (lambda = beta r) would give beta r_2: far from ours here
    assert np.abs(state.lam - beta * residuals[1]).max() > 1e-3


def test_warm_start_sweeps_never_increase_their_objective(backend):
    net, theta, X, y = random_problem([6, 9, 5, 4], 12, seed=7, backend=backend)
    method = ADMM(warm_start_sweeps=4, output_steps=3, ridge=1e-10)
    state = method.init_state(net, theta, X, y)
    L = float(method.objective(net, theta, state, y))
    for _ in range(4):
        for _, _, th, a, z, lam in method.steps(net, theta, state, X, y):
            assert lam is None
            L_new = float(lifted.objective(net, th, a, z, y, method.beta, method.gamma,
                                           method.loss))
            # exact block minimisers, the theta-step's proximal ridge centred at theta^k
            assert L_new <= L + ROUNDING * abs(L)
            L = L_new
        theta, state = method.sweep(net, theta, state, X, y)
    assert state.lam is None


def test_residuals_are_reported(backend, xp):
    net, theta, X, y = random_problem([6, 9, 5, 4], 12, seed=7, backend=backend)
    method = ADMM(warm_start_sweeps=1)
    state = method.init_state(net, theta, X, y)
    d0 = method.diagnostics(net, theta, state, X, y)
    assert d0["residual_a"] == [0.0, 0.0] and d0["residual_z"] == [0.0, 0.0, 0.0]  # forward pass
    for _ in range(2):
        theta, state = method.sweep(net, theta, state, X, y)
    d = method.diagnostics(net, theta, state, X, y)
    expected = float(xp.linalg.norm(state.z[2] - net.blocks[1].phi(theta[1], state.a[1])))
    assert d["residual_z"][1] == pytest.approx(expected, rel=1e-12)
    assert all(r > 0 for r in d["residual_a"] + d["residual_z"])
    assert d["sweeps"] == 2 and d["multiplier_norm"] > 0


def test_inputs_are_not_modified(backend):
    net, theta, X, y = random_problem([5, 8, 3], 6, seed=4, backend=backend)
    method = ADMM(warm_start_sweeps=0)
    state = method.init_state(net, theta, X, y)
    theta, state = method.sweep(net, theta, state, X, y)  # a multiplier now exists
    before = copy_params(theta), [to_host(v).copy() for v in state.a + state.z[1:] + [state.lam]]
    method.sweep(net, theta, state, X, y)
    assert all(np.array_equal(p, to_host(q)) for (p, _), (q, _) in zip(before[0], theta))
    assert all(np.array_equal(p, to_host(q))
               for p, q in zip(before[1], state.a + state.z[1:] + [state.lam]))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="beta"):
        ADMM(beta=0)
    with pytest.raises(ValueError, match="gamma"):
        ADMM(gamma=float("nan"))
    with pytest.raises(ValueError, match="warm_start_sweeps"):
        ADMM(warm_start_sweeps=1.5)
    with pytest.raises(ValueError, match="ridge"):
        ADMM(ridge=-1e-8)
    with pytest.raises(ValueError, match="rho"):
        pp.make_method("admm", rho=1.0)


def test_trains_on_digits_with_diagnostics():
    data = pp.data.load_dataset("digits")
    result = pp.train.train(pp.mlp([64, 32, 10]), data, None,
                            pp.make_method("admm", warm_start_sweeps=1), epochs=3)
    h = result.history
    assert not h["diverged"]
    assert h["train_loss"][-1] < h["train_loss"][0] - 0.1  # 2.33 -> 2.00 measured
    assert [d["sweeps"] for d in h["diagnostics"]] == [0, 1, 2, 3]
    assert h["diagnostics"][1]["kkt_residual"] is None and h["diagnostics"][2]["kkt_residual"] < 1e-3


def test_runs_on_the_backend(backend, xp):
    net, theta, X, y = random_problem([5, 8, 3], 6, seed=4, backend=backend)
    method = ADMM(warm_start_sweeps=0)
    state = method.init_state(net, theta, X, y)
    theta, state = method.sweep(net, theta, state, X, y)
    assert pp.backend.array_module(theta[0][0], state.lam) is xp
    assert to_device(state.lam, xp).shape == (3, 6)
