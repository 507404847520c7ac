"""Proposition 1: BackProp is a penalty method.

For rho = gamma = 1/tau, Algorithm 1 (a forward pass, then gradient steps (a), (b),
(c) on the penalty energy E of Eq. 3) returns exactly theta - tau grad J(theta), one
gradient-descent step (Eq. 2). grad J itself is checked against central finite
differences of J, so the oracle is the mathematics, not the code under test.
"""
import numpy as np
import pytest
from helpers import copy_params, flat, max_abs_diff, random_problem

import penaltyprop as pp
from penaltyprop.backend import to_host

# (sizes, N): deep and shallow, batches smaller and larger than the widths
SHAPES = [([4, 3], 5), ([5, 7, 3], 4), ([6, 5, 8, 4], 11), ([3, 9, 2, 6, 3], 2), ([8, 4, 4, 4, 5], 20)]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("sizes,N", SHAPES)
@pytest.mark.parametrize("tau", [0.05, 0.7, 3.0])
def test_algorithm1_equals_gradient_step(backend, sizes, N, activation, tau):
    net, theta, X, y = random_problem(sizes, N, seed=len(sizes) + N, activation=activation,
                                      backend=backend)
    before = copy_params(theta)
    theta1 = pp.penalty_backprop(net, theta, X, y, tau)
    g = pp.gradient(net, theta, X, y)
    expected = [(W - tau * dW, b - tau * db) for (W, b), (dW, db) in zip(theta, g)]
    # An identity of floating-point algebra: only rounding separates the two (~1e-16 x size).
    assert max_abs_diff(theta1, expected) < 1e-12
    assert max_abs_diff(theta, before) == 0.0  # the input is not modified


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("sizes,N", SHAPES[:4])
def test_gradient_matches_central_differences(backend, sizes, N, activation):
    net, theta, X, y = random_problem(sizes, N, seed=7, activation=activation, backend=backend)
    g = flat(pp.gradient(net, theta, X, y))
    h = 1e-6
    fd = np.empty_like(g)
    i = 0
    for W, b in theta:
        for arr in (W, b):
            host = to_host(arr)
            for idx in np.ndindex(host.shape):
                old = arr[idx].item()
                arr[idx] = old + h
                Jp = float(pp.loss(net, theta, X, y))
                arr[idx] = old - h
                Jm = float(pp.loss(net, theta, X, y))
                arr[idx] = old
                fd[i] = (Jp - Jm) / (2 * h)
                i += 1
    # Central differences: O(h^2) truncation + O(eps/h) rounding ~ 1e-9 in float64.
    # ReLU has kinks; with random Gaussian data no pre-activation sits within h of 0.
    assert np.max(np.abs(fd - g)) < 1e-7


def test_general_rho_gamma_is_not_a_gradient_step():
    """With rho, gamma != 1/tau Algorithm 1 still runs, but is no longer theta - tau grad J."""
    net, theta, X, y = random_problem([5, 6, 4, 3], 7, seed=3)
    tau = 0.5
    g = pp.gradient(net, theta, X, y)
    gd = [(W - tau * dW, b - tau * db) for (W, b), (dW, db) in zip(theta, g)]
    other = pp.penalty_backprop(net, theta, X, y, tau, rho=4.0, gamma=0.25)
    assert max_abs_diff(other, gd) > 1e-6
    # Explicit rho = gamma = 1/tau is the default.
    same = pp.penalty_backprop(net, theta, X, y, tau, rho=1 / tau, gamma=1 / tau)
    assert max_abs_diff(same, gd) < 1e-12


def test_general_rho_scales_the_hidden_steps_by_tau_rho_tau_gamma():
    """For a 2-layer net step (c) moves theta_1 by tau rho * tau gamma * (BackProp's step)."""
    net, theta, X, y = random_problem([4, 5, 3], 6, seed=11)
    tau, rho, gamma = 0.3, 2.0, 5.0
    g = pp.gradient(net, theta, X, y)
    out = pp.penalty_backprop(net, theta, X, y, tau, rho=rho, gamma=gamma)
    # Eqs. 19-25 with general weights: z_1 - z_1^{k+1/2} = tau gamma * tau e_1 (e_1 the
    # backpropagated error), then theta_1 -= tau rho (z_1 - z_1^{k+1/2}) a_0^T.
    scale = tau * rho * tau * gamma
    expect_W1 = to_host(theta[0][0]) - tau * scale * to_host(g[0][0])
    assert np.max(np.abs(to_host(out[0][0]) - expect_W1)) < 1e-12
    expect_W2 = to_host(theta[1][0]) - tau * to_host(g[1][0])  # the last layer: plain step (a)
    assert np.max(np.abs(to_host(out[1][0]) - expect_W2)) < 1e-12


def test_energy_at_the_forward_pass_is_the_loss(backend):
    """After the forward pass every penalty term of E vanishes, so E = J (Eq. 20)."""
    net, theta, X, y = random_problem([6, 5, 4, 3], 9, seed=5, backend=backend)
    a, z = pp.forward(net, theta, X)
    E = float(pp.penalty_energy(net, theta, a, z, y, rho=2.0, gamma=3.0))
    J = float(pp.loss(net, theta, X, y))
    assert abs(E - J) < 1e-14
    # Shift a_1 by 0.1: the gamma term grows by gamma/2 * 0.01 * size(a_1), the rho term of
    # layer 2 by rho/2 ||W_2 (0.1 * ones)||^2; everything else is unchanged.
    a[1] = a[1] + 0.1
    E2 = float(pp.penalty_energy(net, theta, a, z, y, rho=2.0, gamma=3.0))
    W2 = to_host(theta[1][0])
    N = a[1].shape[1]
    expected = 3.0 / 2 * 0.01 * a[1].size + 2.0 / 2 * N * np.sum((0.1 * W2.sum(axis=1)) ** 2)
    assert abs((E2 - J) - expected) < 1e-12
