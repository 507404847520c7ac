"""Algorithms 1 and 2 are sequences of minimisation steps on the penalty energy E (Eq. 3).

``pp.penalty_steps`` records (theta, a, z) after the forward pass and after every step
(a), (b), (c) of one sweep, running the algorithms' own code. Claims checked here:
the recorded sweep ends exactly at the algorithms' output; each step changes only its own
variables; after the forward pass E = J; and, for fixed penalty weights rho, gamma and a
small step tau, every step is a gradient step on E in its block of variables, so E
decreases after each of them.
"""
import numpy as np
import pytest
from helpers import copy_params, max_abs_diff, random_problem

import penaltyprop as pp

SHAPES = [([4, 3], 5), ([5, 6, 3], 7), ([5, 6, 7, 4, 3], 8)]


def _energies(net, states, y, rho, gamma):
    return [float(pp.penalty_energy(net, s.theta, s.a, s.z, y, rho, gamma)) for s in states]


@pytest.mark.parametrize("sizes,N", SHAPES)
def test_trace_ends_at_algorithm1_output(backend, sizes, N):
    net, theta, X, y = random_problem(sizes, N, seed=2, activation="tanh", backend=backend)
    before = copy_params(theta)
    for rho, gamma in [(None, None), (2.0, 0.5)]:
        states = pp.penalty_steps(net, theta, X, y, 0.3, rho=rho, gamma=gamma)
        out = pp.penalty_backprop(net, theta, X, y, 0.3, rho=rho, gamma=gamma)
        # The same code computes both: identical up to BLAS reproducibility (0 on NumPy).
        assert max_abs_diff(states[-1].theta, out) < 1e-14
    assert max_abs_diff(theta, before) == 0.0  # the input is not modified


@pytest.mark.parametrize("solver,k", [("exact", None), ("cg", 2), ("gradient", None)])
def test_trace_ends_at_algorithm2_output(backend, solver, k):
    net, theta, X, y = random_problem([5, 6, 7, 3], 9, seed=4, backend=backend)
    states = pp.penalty_steps(net, theta, X, y, 0.5, algorithm="proxprop", tau_theta=0.2,
                              solver=solver, cg_iterations=k)
    out = pp.proxprop(net, theta, X, y, 0.5, 0.2, solver=solver, cg_iterations=k)
    assert max_abs_diff(states[-1].theta, out) < 1e-14  # same code, as above


@pytest.mark.parametrize("sizes,N", SHAPES)
def test_steps_come_in_the_order_of_the_algorithm_box(sizes, N):
    net, theta, X, y = random_problem(sizes, N, seed=1)
    states = pp.penalty_steps(net, theta, X, y, 0.1)
    Lm1 = len(sizes) - 1
    expected = [("forward", None), ("a", Lm1)]
    for l in range(Lm1 - 1, 0, -1):
        expected += [("b", l), ("c", l)]
    assert [(s.step, s.layer) for s in states] == expected


def test_each_step_changes_only_its_own_variables():
    """(a): theta_{L-1}, a_{L-2}; (b) on layer l: z_l, a_{l-1} (not a_0 = X); (c): theta_l."""
    net, theta, X, y = random_problem([5, 6, 7, 4, 3], 8, seed=3, activation="sigmoid")
    states = pp.penalty_steps(net, theta, X, y, 0.2)
    for prev, cur in zip(states, states[1:]):
        l = cur.layer
        changed = {("theta", i + 1) for i, (p, c) in enumerate(zip(prev.theta, cur.theta))
                   if p is not c}
        changed |= {("a", i) for i, (p, c) in enumerate(zip(prev.a, cur.a)) if p is not c}
        changed |= {("z", i) for i, (p, c) in enumerate(zip(prev.z, cur.z)) if p is not c}
        if cur.step == "a":
            assert changed == {("theta", l), ("a", l - 1)}
        elif cur.step == "b":
            assert changed == ({("z", l), ("a", l - 1)} if l > 1 else {("z", l)})
        else:
            assert changed == {("theta", l)}


def test_energy_after_the_forward_pass_is_the_loss(backend):
    net, theta, X, y = random_problem([6, 5, 4, 3], 9, seed=5, backend=backend)
    state = pp.penalty_steps(net, theta, X, y, 0.1)[0]
    E = float(pp.penalty_energy(net, state.theta, state.a, state.z, y, 3.0, 0.5))
    # Every penalty term is zero after Eq. 7; E = J up to rounding of the same sums.
    assert abs(E - float(pp.loss(net, theta, X, y))) < 1e-14


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_energy_decreases_after_every_step_for_small_tau(backend, activation, seed):
    """With rho, gamma fixed (= 1) and tau small, each step is a short gradient step on E."""
    net, theta, X, y = random_problem([5, 6, 7, 4, 3], 8, seed=seed, activation=activation,
                                      backend=backend)
    rho = gamma = 1.0
    E = _energies(net, pp.penalty_steps(net, theta, X, y, 1e-3, rho=rho, gamma=gamma), y,
                  rho, gamma)
    # A gradient step of size tau changes E by -tau ||grad||^2 (1 + O(tau)) <= 0. Deeper
    # steps move E by tiny amounts (the error reaching them is O(tau)), so allow rounding
    # of E (~1) in float64, and ask for a strict decrease overall.
    assert all(e1 <= e0 + 1e-13 for e0, e1 in zip(E, E[1:])), np.diff(E)
    assert E[-1] < E[0] - 1e-6


def test_step_c_on_layer_1_raises_E_when_rho_is_one_over_tau():
    """With rho = 1/tau, step (c) on layer 1 is a gradient step of size tau on the quadratic
    q(theta) = rho/2 ||theta A - z_1^{k+1/2}||^2, A = [X; 1^T], whose Hessian is A A^T / tau
    (Eq. 4, Section 4.1). It changes q by -tau ||g||^2 + tau/2 g^T A A^T g, which is > 0
    whenever lambda_min(A A^T) > 2: E rises, yet the sweep is still one exact gradient step
    on J (Proposition 1)."""
    net, theta, X, y = random_problem([5, 6, 7, 3], 50, seed=0, activation="tanh")
    A = np.vstack([np.asarray(X), np.ones((1, X.shape[1]))])
    assert np.linalg.eigvalsh(A @ A.T)[0] > 2  # the premise, for this data
    tau = 0.01
    states = pp.penalty_steps(net, theta, X, y, tau)
    E = _energies(net, states, y, 1 / tau, 1 / tau)
    assert (states[-1].step, states[-1].layer) == ("c", 1)
    assert E[-1] > E[-2]
    out = pp.penalty_backprop(net, theta, X, y, tau)
    g = pp.gradient(net, theta, X, y)
    expected = [(W - tau * dW, b - tau * db) for (W, b), (dW, db) in zip(theta, g)]
    assert max_abs_diff(out, expected) < 1e-12  # Proposition 1's identity, as in its test


def test_bad_options_name_the_argument():
    net, theta, X, y = random_problem([4, 5, 3], 6, seed=0)
    with pytest.raises(ValueError, match="rho"):
        pp.penalty_steps(net, theta, X, y, 0.1, rho=1.0, algorithm="proxprop", tau_theta=1.0)
    with pytest.raises(ValueError, match="tau_theta"):
        pp.penalty_steps(net, theta, X, y, 0.1, algorithm="proxprop")
    with pytest.raises(ValueError, match="tau_theta"):
        pp.penalty_steps(net, theta, X, y, 0.1, tau_theta=1.0)
    with pytest.raises(ValueError, match="algorithm"):
        pp.penalty_steps(net, theta, X, y, 0.1, algorithm="adam")
    with pytest.raises(ValueError, match="tau"):
        pp.penalty_steps(net, theta, X, y, -1.0)


@pytest.mark.parametrize("method", [pp.BackProp(), pp.ProxProp(tau_theta=0.3, solver="exact"),
                                    pp.ProxProp(tau_theta=0.3, solver="cg", cg_iterations=2)])
def test_the_trace_takes_a_method_object_and_ends_where_the_algorithm_does(method):
    """penalty_steps(method=...) traces Algorithm 1 for BackProp and Algorithm 2 with the
    method's own prox settings for ProxProp: its last theta is the algorithm's, bit for bit."""
    net = pp.mlp([5, 6, 4, 3])
    theta = net.init(seed=2, dtype="float64")
    rng = np.random.default_rng(3)
    X, y = rng.random((5, 7)), rng.integers(0, 3, 7)
    states = pp.penalty_steps(net, theta, X, y, 0.5, method=method)
    if isinstance(method, pp.ProxProp):
        p = method.get_params()
        expected = pp.proxprop(net, theta, X, y, 0.5, **p)
    else:
        expected = pp.penalty_backprop(net, theta, X, y, 0.5)
    for (W, b), (W0, b0) in zip(states[-1].theta, expected):
        assert np.array_equal(W, W0) and np.array_equal(b, b0)
    with pytest.raises(ValueError, match="Algorithms 1 and 2"):
        pp.penalty_steps(net, theta, X, y, 0.5, method=pp.BCD())
    with pytest.raises(ValueError, match="either method or algorithm"):
        pp.penalty_steps(net, theta, X, y, 0.5, method=method, algorithm="proxprop")
