"""ImplicitProxProp (Section 4.2.1): the steps (b) on z_l and a_{l-1} are exact proximal steps on E.

Claims, each tested against an oracle from the mathematics:
* the z-step is the global minimiser, entry by entry, of E plus its proximal term
  (1-D minimisation on both sides of ReLU's kink);
* the a-step is a stationary point of E plus its proximal term (central differences of
  ``pp.penalty_energy``, exact for a quadratic);
* so every step (b) lowers E by at least 1/(2 tau) times its squared length, for any tau
  (the explicit steps of Algorithm 2 do not);
* for small steps the direction is backprop with errors sent down through
  (W^T W + 2I)^{-1} W^T and a factor 1/3, preconditioned by M^{-1} (dense NumPy oracle); with
  one hidden layer it is ProxProp's direction with the hidden layer's part divided by 3;
* it refuses networks it cannot train, before any work, and its settings are checked.
"""
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import penaltyprop as pp
from penaltyprop.backend import to_host
from penaltyprop.bench import base_flops, step_flops
from penaltyprop.methods.costs import a_step_flops, exact_prox_flops
from tests.helpers import explicit_M, random_problem, wb

SIZES = [5, 6, 4, 3]  # two hidden layers: step (b) on l = 2 updates z_2 and a_1, on l = 1 z_1
# Float64 rounding of E (a sum of O(10) terms of size O(1)): a few ulps of E.
ROUNDING = 1e-12


def _states(method, tau, seed=0, sizes=SIZES, backend="numpy"):
    net, theta, X, y = random_problem(sizes, 7, seed=seed, backend=backend)
    return net, theta, X, y, pp.penalty_steps(net, theta, X, y, tau, method=method)


def _energy(net, s, y, tau):
    return float(pp.penalty_energy(net, s.theta, s.a, s.z, y, 1 / tau, 1 / tau))


def _b_steps(states):
    """(state before step (b) of layer l, state after it) for every l."""
    return [(states[i - 1], s) for i, s in enumerate(states) if s.step == "b"]


@pytest.mark.parametrize("tau", [0.01, 1.0, 100.0])
def test_the_z_step_is_the_entrywise_global_minimiser_of_E_plus_its_prox_term(tau):
    """phi(t) = 1/(2 tau) [(relu(t) - a)^2 + (m - t)^2 + (t - z^k)^2], m = W a_{l-1} + b: the z_l
    terms of Eq. 3 and the proximal term; its minimum on t <= 0 and on t >= 0 by scipy."""
    net, theta, X, y, states = _states(pp.ImplicitProxProp(), tau)
    for before, after in _b_steps(states):
        l = after.layer
        W, b = (to_host(v) for v in before.theta[l - 1])
        a_l, m = to_host(before.a[l]), W @ to_host(before.a[l - 1]) + b[:, None]
        z0, z_new = to_host(before.z[l]), to_host(after.z[l])

        def phi(t, a, m, z0):
            return ((max(t, 0) - a) ** 2 + (m - t) ** 2 + (t - z0) ** 2) / (2 * tau)

        for (i, j), t in np.ndenumerate(z_new):
            args = (a_l[i, j], m[i, j], z0[i, j])
            r = 10 * (1 + sum(abs(v) for v in args))  # holds the minimum
            best = min(minimize_scalar(phi, bounds=bounds, args=args, method="bounded",
                                       options={"xatol": 1e-12}).fun
                       for bounds in ((-r, 0.0), (0.0, r)))
            # scipy's bounded search stops within xatol of a quadratic's minimiser: its value
            # exceeds the minimum by O(xatol^2); ours may not exceed scipy's beyond rounding
            assert phi(t, *args) <= best + ROUNDING * (1 + best)


@pytest.mark.parametrize("tau", [0.01, 1.0, 100.0])
def test_the_a_step_is_a_stationary_point_of_E_plus_its_prox_term(tau):
    """Psi(a) = E(theta, a, z^{k+1/2}) + 1/(2 tau)||a - a^k||^2 is quadratic in a_{l-1}: central
    differences give its gradient up to rounding, and it vanishes at the new a_{l-1}."""
    net, theta, X, y, states = _states(pp.ImplicitProxProp(), tau)
    (before, after), = [(b, s) for b, s in _b_steps(states) if s.layer == 2]
    a0 = to_host(before.a[1])

    def psi(a1):
        a = [after.a[0], a1, after.a[2]]
        return float(pp.penalty_energy(net, after.theta, a, after.z, y, 1 / tau, 1 / tau)) \
            + ((a1 - a0) ** 2).sum() / (2 * tau)

    a1, h = to_host(after.a[1]), 1e-4
    grad = np.zeros_like(a1)
    for idx in np.ndindex(a1.shape):
        e = np.zeros_like(a1)
        e[idx] = h
        grad[idx] = (psi(a1 + e) - psi(a1 - e)) / (2 * h)
    # exact for a quadratic up to rounding: eps |Psi| / h ~ 1e-12 relative to the curvature
    # scale 1/tau of Psi; a wrong a-step leaves a gradient of the size of the step itself
    assert np.abs(grad).max() <= 1e-7 * (1 + 1 / tau)
    assert np.abs(a1 - a0).max() > 1e-3 * min(1.0, tau)  # the step did move a_1


@pytest.mark.parametrize("tau", [0.01, 1.0, 100.0])
def test_every_step_b_lowers_E_by_its_prox_term_for_any_tau(tau):
    """The proximal inequality, step by step: E(after) + 1/(2 tau)(||dz||^2 + ||da||^2) <= E(before).
    Algorithm 2's explicit steps (b) do not satisfy it (on active units Eq. 9 leaves E as it was)."""
    for method, holds in ((pp.ImplicitProxProp(), True), (pp.ProxProp(solver="exact"), False)):
        net, theta, X, y, states = _states(method, tau, seed=4)
        gaps = []
        for before, after in _b_steps(states):
            moved = sum(float(((to_host(p) - to_host(q)) ** 2).sum())
                        for p, q in zip(after.a[1:] + after.z[1:], before.a[1:] + before.z[1:]))
            E0, E1 = _energy(net, before, y, tau), _energy(net, after, y, tau)
            gaps.append(E0 - E1 - moved / (2 * tau) + ROUNDING * abs(E0))
        assert all(g >= 0 for g in gaps) if holds else any(g < 0 for g in gaps)


def _oracle_direction(net, theta, X, y, tau_theta):
    """Dense NumPy: the small-step limit of the implicit sweep (see the module docstring)."""
    Ws = [(to_host(W), to_host(b)) for W, b in theta]
    a, z = [to_host(X)], [None]
    for l, (W, b) in enumerate(Ws, start=1):
        z.append(W @ a[-1] + b[:, None])
        a.append(np.maximum(z[-1], 0) if l < len(Ws) else z[-1])
    N, L1 = X.shape[1], len(Ws)
    p = np.exp(z[L1] - z[L1].max(axis=0))
    p /= p.sum(axis=0)
    e = p.copy()
    e[to_host(y), np.arange(N)] -= 1
    e /= N  # d(mean loss)/dz_{L-1}
    A = np.vstack([a[L1 - 1], np.ones((1, N))])
    d = [None] * L1
    d[L1 - 1] = e @ A.T  # the last layer: the gradient (Eq. 12)
    e_bar = Ws[L1 - 1][0].T @ e  # error at a_{L-2} (Eq. 8)
    for l in range(L1 - 1, 0, -1):
        g = (z[l] > 0) * e_bar / 3  # z-step on the active units: a third of Eq. 9's way
        A = np.vstack([a[l - 1], np.ones((1, N))])
        d[l - 1] = np.linalg.solve(explicit_M(a[l - 1], tau_theta), (g @ A.T).T).T  # M^{-1}
        W = Ws[l - 1][0]
        e_bar = np.linalg.solve(W.T @ W + 2 * np.eye(W.shape[1]), W.T @ g)  # the a-step
    return d


def test_small_steps_give_backprop_through_the_implicit_error_maps():
    """tau_sweep = 0.01 keeps every case of the forward pass: the sweep is linear in its error
    (a case that changed would be an O(1) relative difference)."""
    net, theta, X, y = random_problem([6, 8, 7, 5, 4], 9, seed=2)
    method = pp.ImplicitProxProp(tau_theta=0.3, tau_sweep=0.01)
    J, d = method.direction(net, theta, X, y)
    expected = _oracle_direction(net, theta, X, y, 0.3)
    for got, want in zip(d, expected):
        # delta = z^k - z^{k+1/2} has size tau |g| beside |z^k| ~ 1: the subtraction leaves a
        # relative error of about eps |z| / (tau |g|), with |g| >= 1e-5 on the deepest layer
        # here: 2e-16 / (0.01 * 1e-5) = 2e-9
        assert np.abs(wb(got) - want).max() <= 1e-8 * np.abs(want).max()
    assert J == pytest.approx(float(pp.loss(net, theta, X, y)), rel=1e-15)


def test_one_hidden_layer_gives_a_third_of_proxprops_hidden_direction(backend):
    net, theta, X, y = random_problem([6, 9, 4], 8, seed=5, backend=backend)
    _, d = pp.ImplicitProxProp(tau_theta=0.2, tau_sweep=0.01).direction(net, theta, X, y)
    ref = pp.proxprop_direction(net, theta, X, y, tau_theta=0.2)
    # the hidden layer: cancellation in delta as above; the last layer: the same gradient
    assert np.abs(wb(d[0]) - wb(ref[0]) / 3).max() <= 1e-8 * np.abs(wb(ref[0])).max()
    assert np.abs(wb(d[1]) - wb(ref[1])).max() <= 1e-12 * np.abs(wb(ref[1])).max()


def test_the_direction_is_the_traced_sweeps_update_over_tau():
    net, theta, X, y = random_problem(SIZES, 7, seed=6)
    method = pp.ImplicitProxProp(tau_sweep=3.0, solver="cg", cg_iterations=2)
    _, d = method.direction(net, theta, X, y)
    last = pp.penalty_steps(net, theta, X, y, 3.0, method=method)[-1]
    for (W0, b0), (dW, db), (W1, b1) in zip(theta, d, last.theta):
        # theta + D computed once, theta - tau (-D / tau) once more: a few ulps
        np.testing.assert_allclose(W0 - 3.0 * dW, W1, rtol=0, atol=1e-14)
        np.testing.assert_allclose(b0 - 3.0 * db, b1, rtol=0, atol=1e-14)


def test_its_flops_are_proxprops_plus_the_a_steps_in_place_of_the_adjoints():
    shapes = [(6, 5, 7), (4, 6, 7), (3, 4, 7)]  # 5 -> 6 -> 4 -> 3 on K = 7 samples
    method = pp.ImplicitProxProp(tau_theta=0.1)
    # exact prox per hidden layer (K = 7 >= m + 1: primal systems), Cholesky of 6 and 7
    prox = sum(exact_prox_flops(n, m, K, "primal") - 2 * n * m * K for n, m, K in shapes[:2])
    # layer 2's a-step: r and W^T products (2 x 2 4 6 7), W W^T (4 < 6: 16 * 6), a 4 x 4
    # Cholesky with 7 right-hand sides; it replaces the adjoint product W_2^T delta (2 4 6 7)
    a_step = 2 * 2 * 4 * 6 * 7 + 16 * 6 + 4**3 / 3 + 2 * 16 * 7 - 2 * 4 * 6 * 7
    assert a_step_flops(4, 6, 7) - 2 * 4 * 6 * 7 == a_step
    assert step_flops(shapes, method) == pytest.approx(base_flops(shapes) + prox + a_step)


@pytest.mark.parametrize("build, layer", [
    (lambda data: pp.mlp([64, 6, 10], activation="sigmoid"), "layer 1 is followed by Sigmoid"),
    (lambda data: pp.cnn(data.image_shape, channels=(4,), n_classes=10), "layer 1 is Conv2d"),
])
def test_networks_it_cannot_train_are_refused_before_any_work(tmp_path, build, layer):
    data = pp.data.load_dataset("digits", subset=40)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=f"method 'implicit' trains fully connected .*{layer}"):
        pp.train.train(build(data), data, pp.optim.sgd(0.1), pp.ImplicitProxProp(), out_dir=out)
    assert not out.exists()


@pytest.mark.parametrize("settings, name", [({"tau_sweep": 0.0}, "tau_sweep"),
                                            ({"tau_sweep": float("nan")}, "tau_sweep"),
                                            ({"tau_theta": -1.0}, "tau_theta"),
                                            ({"cg_iterations": 3}, "cg_iterations")])
def test_bad_settings_are_named(settings, name):
    with pytest.raises(ValueError, match=name):
        pp.ImplicitProxProp(**settings)


def test_it_trains_from_the_command_line_and_refuses_a_cnn_with_status_2(capsys):
    from penaltyprop import cli

    assert cli.main(["train", "--method", "implicit", "--tau-sweep", "0.5", "--subset", "100",
                     "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ImplicitProxProp (exact)" in out and "tau_sweep=0.5" in out and "final:" in out
    assert cli.main(["train", "--method", "implicit", "--model", "cnn", "--subset", "40",
                     "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "layer 1 is Conv2d" in err and err.count("\n") == 1
