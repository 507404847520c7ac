"""Proposition 3: fixed points of ProxProp are stationary points of J.

(i) At a stationary point of J the ProxProp update is zero, for every solver.
We construct one with nonzero weights everywhere: every input column appears once
with every label, and the last layer's weight rows are identical with zero bias, so
each input gets uniform class probabilities and, summed over its copies, the loss
gradient vanishes for every layer (checked against pp.gradient and central differences).
(ii) Conversely, where the update is zero the gradient is zero: by Eq. 30,
M (theta^{k+1} - theta^k) = -tau grad J, so ||tau grad_l J|| <= lambda_max(M_l) ||update_l||;
the update can only vanish together with the gradient.
"""
import numpy as np
import pytest
from helpers import explicit_M, random_problem, wb
from hypothesis import given, settings
from hypothesis import strategies as st

import penaltyprop as pp
from penaltyprop.backend import get_backend, to_device


def stationary_problem(backend, sizes=(5, 6, 4, 3), n_inputs=4, seed=0):
    xp = get_backend(backend)
    net = pp.mlp(list(sizes), activation="tanh")
    theta = net.init(seed=seed, backend=backend)
    rng = np.random.default_rng(seed)
    W_last = np.tile(rng.uniform(-1, 1, size=(1, sizes[-2])), (sizes[-1], 1))  # identical rows
    theta[-1] = (to_device(W_last, xp), xp.zeros(sizes[-1]))
    inputs = rng.standard_normal((sizes[0], n_inputs))
    C = sizes[-1]
    X = to_device(np.repeat(inputs, C, axis=1), xp)  # each input once per class
    y = to_device(np.tile(np.arange(C), n_inputs), xp)
    return net, theta, X, y


def test_constructed_point_is_stationary(backend):
    net, theta, X, y = stationary_problem(backend)
    g = pp.gradient(net, theta, X, y)
    assert max(np.max(np.abs(wb(p))) for p in g) < 1e-15  # zero up to rounding
    # and not by accident of the gradient code: central differences agree
    W = theta[0][0]
    for idx in [(0, 0), (2, 3), (5, 1)]:
        old = W[idx].item()
        W[idx] = old + 1e-5
        Jp = float(pp.loss(net, theta, X, y))
        W[idx] = old - 1e-5
        Jm = float(pp.loss(net, theta, X, y))
        W[idx] = old
        assert abs(Jp - Jm) / 2e-5 < 1e-9


@pytest.mark.parametrize("solver,k", [("exact", None), ("cg", 1), ("cg", 5), ("gradient", None)])
def test_update_vanishes_at_a_stationary_point(backend, solver, k):
    net, theta, X, y = stationary_problem(backend)
    new = pp.proxprop(net, theta, X, y, tau=1.0, tau_theta=0.5, solver=solver, cg_iterations=k)
    for l in range(len(theta)):
        assert np.max(np.abs(wb(new[l]) - wb(theta[l]))) < 1e-15


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), N=st.integers(1, 12),
       tau=st.floats(1e-3, 10.0), tau_theta=st.floats(1e-3, 100.0))
def test_zero_update_implies_zero_gradient(seed, N, tau, tau_theta):
    net, theta, X, y = random_problem([5, 6, 4, 3], N, seed=seed)
    new = pp.proxprop(net, theta, X, y, tau, tau_theta, solver="exact")
    g = pp.gradient(net, theta, X, y)
    a, _ = pp.forward(net, theta, X)
    for l in range(len(theta) - 1):
        lam_max = np.linalg.eigvalsh(explicit_M(a[l], tau_theta))[-1]
        update = np.linalg.norm(wb(new[l]) - wb(theta[l]))
        # Eq. 30: ||tau grad|| = ||M update|| <= lambda_max ||update||; 1e-9 relative slack
        # for the rounding of both sides.
        assert tau * np.linalg.norm(wb(g[l])) <= lam_max * update * (1 + 1e-9) + 1e-300
