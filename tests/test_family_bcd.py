"""Proximal BCD (Zeng et al. 2019): every block update is a minimiser of the lifted objective F
plus a proximal term that vanishes at the old value, so F never increases, block by block.

Also: the ReLU prox is the 1-D minimum, the theta-step is ProxProp's Eq. 44 with
tau_theta = rho/alpha, the a-step solves its normal equations (on both sides of the
push-through identity), training on digits lowers the loss, and bad settings are named.
"""
import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop.backend import to_device, to_host
from penaltyprop.methods import BCD, lifted
from penaltyprop.prox import prox_exact
from tests.helpers import copy_params, random_problem

# Float64 rounding of F (a sum of O(10) terms of size O(1)): a block update may "increase" F by
# a few ulps of F, nothing more.
ROUNDING = 1e-12


@pytest.mark.parametrize("loss", ["cross_entropy", "squared"])
def test_objective_never_increases_after_any_block_update(backend, loss):
    net, theta, X, y = random_problem([6, 9, 5, 7, 4], 12, seed=3, backend=backend)
    method = BCD(rho=0.7, gamma=1.3, alpha=2.0, loss=loss, output_steps=3)
    state = method.init_state(net, theta, X, y)
    F = float(method.objective(net, theta, state, y))
    blocks = 0
    for _ in range(4):
        for _, _, th, a, z in method.steps(net, theta, state, X, y):
            F_new = float(lifted.objective(net, th, a, z, y, method.rho, method.gamma, loss))
            assert F_new <= F + ROUNDING * abs(F)
            F, blocks = F_new, blocks + 1
        theta, state = method.sweep(net, theta, state, X, y)
    assert blocks == 4 * (1 + 4 + 2 * 3)  # z_K, then theta_l for 4 layers, (a, z) for 3


def test_relu_prox_is_the_grid_minimum():
    rng = np.random.default_rng(0)
    a, v = rng.normal(size=200) * 2, rng.normal(size=200) * 2
    gamma, c = 1.7, 0.6
    z = lifted.relu_prox(a, v, gamma, c)
    grid = np.linspace(-8, 8, 160001)  # spacing 1e-4
    f = gamma / 2 * (a[:, None] - np.maximum(grid, 0)) ** 2 + c / 2 * (grid - v[:, None]) ** 2
    f_z = gamma / 2 * (a - np.maximum(z, 0)) ** 2 + c / 2 * (z - v) ** 2
    # the closed form is never above the grid minimum (up to rounding), and the grid minimum
    # lies within one spacing of it: f varies by at most (gamma + c) * h * 8 + O(h^2) per step
    assert np.all(f_z <= f.min(axis=1) + 1e-12)
    assert np.all(np.abs(z - grid[f.argmin(axis=1)]) <= 2e-4)


def test_theta_step_is_eq44_with_tau_theta_rho_over_alpha(backend):
    net, theta, X, y = random_problem([6, 9, 4], 5, seed=1, backend=backend)
    rho, alpha = 0.8, 3.0
    method = BCD(rho=rho, alpha=alpha, loss="squared")
    state = method.init_state(net, theta, X, y)
    steps = method.steps(net, theta, state, X, y)
    next(steps)  # z_K
    _, l, th, a, z = next(steps)  # theta_K
    assert l == 2
    W, b = theta[1]
    A = np.vstack([to_host(a[1]), np.ones((1, 5))])  # Eq. 44 written out: (z A^T + Theta^k/t)(A A^T + I/t)^-1
    t = rho / alpha
    Theta = (to_host(z[2]) @ A.T + np.hstack([to_host(W), to_host(b)[:, None]]) / t) @ \
        np.linalg.inv(A @ A.T + np.eye(10) / t)
    np.testing.assert_allclose(to_host(th[1][0]), Theta[:, :9], rtol=0, atol=1e-12)
    np.testing.assert_allclose(to_host(th[1][1]), Theta[:, 9], rtol=0, atol=1e-12)
    dW, db = prox_exact(a[1], W @ a[1] + b[:, None] - z[2], t)  # the package's prox, same step
    np.testing.assert_allclose(to_host(W + dW), to_host(th[1][0]), rtol=0, atol=1e-13)


@pytest.mark.parametrize("n_in,n_out", [(7, 3), (3, 7)])  # output-space and input-space solve
def test_a_step_solves_its_normal_equations(backend, xp, n_in, n_out):
    rng = np.random.default_rng(2)
    W, b = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    z, t = rng.normal(size=(n_out, 5)), rng.normal(size=(n_in, 5))
    rho, gamma = 0.9, 2.5
    a = lifted.a_step((to_device(W, xp), to_device(b, xp)), to_device(z, xp), to_device(t, xp),
                      rho, gamma)
    expected = np.linalg.solve(rho * W.T @ W + gamma * np.eye(n_in),
                               rho * W.T @ (z - b[:, None]) + gamma * t)
    np.testing.assert_allclose(to_host(a), expected, rtol=1e-12, atol=1e-12)


def test_inputs_are_not_modified(backend):
    net, theta, X, y = random_problem([5, 8, 3], 6, seed=4, backend=backend)
    method = BCD()
    state = method.init_state(net, theta, X, y)
    before = copy_params(theta), [to_host(v).copy() for v in state.a + state.z[1:]]
    X0 = to_host(X).copy()
    method.sweep(net, theta, state, X, y)
    assert all(np.array_equal(p, to_host(q)) for (p, _), (q, _) in zip(before[0], theta))
    assert all(np.array_equal(p, to_host(q)) for p, q in zip(before[1], state.a + state.z[1:]))
    assert np.array_equal(X0, to_host(X))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="rho"):
        BCD(rho=0)
    with pytest.raises(ValueError, match="alpha"):
        BCD(alpha=-1.0)
    with pytest.raises(ValueError, match="output_steps"):
        BCD(output_steps=2.5)
    with pytest.raises(ValueError, match="loss"):
        BCD(loss="hinge")
    with pytest.raises(ValueError, match="output"):
        BCD(output="joint")
    with pytest.raises(ValueError, match="sweeps"):
        pp.make_method("bcd", sweeps=3)


def test_a_state_of_the_other_output_form_is_refused():
    net, theta, X, y = random_problem([5, 8, 3], 6, seed=4)
    state = BCD().init_state(net, theta, X, y)  # merged: no a_K
    with pytest.raises(ValueError, match="output='split'"):
        BCD(output="split").sweep(net, theta, state, X, y)


def test_the_split_output_starts_at_the_forward_pass_and_is_labelled():
    net, theta, X, y = random_problem([5, 8, 3], 6, seed=4)
    method = BCD(output="split", loss="squared")
    state = method.init_state(net, theta, X, y)
    assert np.array_equal(state.a[-1], state.z[-1])  # a_K = z_K: every constraint holds
    expected = lifted.loss_sum(state.z[-1], y, "squared")  # F is the loss alone there
    assert float(method.objective(net, theta, state, y)) == pytest.approx(float(expected),
                                                                          rel=1e-14)
    assert method.label == "BCD (squared loss, split output)"


def test_needs_relu_mlp():
    net, theta, X, y = random_problem([5, 8, 3], 6, activation="tanh")
    with pytest.raises(ValueError, match="relu"):
        BCD().init_state(net, theta, X, y)


def test_training_on_digits_lowers_the_loss_and_records_diagnostics():
    data = pp.data.load_dataset("digits")
    net = pp.mlp([64, 32, 10])
    result = pp.train.train(net, data, None, pp.make_method("bcd"), epochs=3)
    h = result.history
    assert not h["diverged"]
    assert h["train_loss"][-1] < h["train_loss"][0] - 0.05  # 3 sweeps: 2.33 -> 2.14 measured
    assert len(h["diagnostics"]) == 4  # epoch 0 and three sweeps
    objectives = [d["objective"] for d in h["diagnostics"]]
    # float32: F ~ 2.8e3 carries rounding of ~1e-3 relative at most
    assert all(b <= a * (1 + 1e-3) for a, b in zip(objectives, objectives[1:]))
    assert len(h["diagnostics"][-1]["residual_a"]) == 1
    assert len(h["diagnostics"][-1]["residual_z"]) == 2


def test_non_finite_objective_is_reported_not_raised(backend):
    net, theta, X, y = random_problem([5, 8, 3], 6, seed=4, backend=backend)
    method = BCD()
    state = method.init_state(net, theta, X, y)
    state = lifted.LiftedState(state.a, state.z[:-1] + [state.z[-1] * np.inf], None, 1)
    with np.errstate(invalid="ignore"):  # inf - inf in the softmax: the point of the test
        d = method.diagnostics(net, theta, state, X, y)
    assert not np.isfinite(d["objective"])  # train() records such a run as diverged
