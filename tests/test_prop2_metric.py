"""Proposition 2: ProxProp is gradient descent in a layer-wise variable metric.

For every hidden layer l, the ProxProp update (Algorithm 2, exact prox) satisfies
theta_l^{k+1} - theta_l^k = -tau M_l^{-1} grad_{theta_l} J (Eq. 13), with
M_l = I/tau_theta + (grad phi)(grad phi)^* (Eq. 14) formed explicitly here from the
forward-pass activations; the last layer takes the plain gradient step (Eq. 12).
The ProxProp direction (theta^k - theta^{k+1})/tau is M^{-1} grad J, whatever tau.
"""
import numpy as np
import pytest
from helpers import explicit_M, random_problem, wb

import penaltyprop as pp

CASES = [([5, 7, 3], 4), ([6, 5, 8, 4], 12), ([3, 9, 2, 6, 3], 2), ([10, 4, 6, 3], 30)]


def _expected_update(net, theta, X, y, tau, tau_theta):
    a, _ = pp.forward(net, theta, X)
    g = pp.gradient(net, theta, X, y)
    out = []
    for l in range(len(theta) - 1):  # the prox layers: scipy-free dense solve of M v = -tau g
        B = explicit_M(a[l], tau_theta)
        M = np.kron(np.eye(theta[l][0].shape[0]), B)
        out.append(np.linalg.solve(M, -tau * wb(g[l]).ravel()).reshape(wb(g[l]).shape))
    out.append(-tau * wb(g[-1]))  # Eq. 12
    return out


@pytest.mark.parametrize("sizes,N", CASES)
@pytest.mark.parametrize("tau,tau_theta", [(1.0, 0.05), (0.3, 1.0), (2.0, 20.0)])
@pytest.mark.parametrize("system", ["primal", "batch"])
def test_exact_update_is_minus_tau_Minv_grad(backend, sizes, N, tau, tau_theta, system):
    net, theta, X, y = random_problem(sizes, N, seed=N, backend=backend)
    new = pp.proxprop(net, theta, X, y, tau, tau_theta, solver="exact", exact_system=system)
    for l, expected in enumerate(_expected_update(net, theta, X, y, tau, tau_theta)):
        got = wb(new[l]) - wb(theta[l])
        # Two solves of the same well-conditioned SPD system (cond <= 1 + tau_theta ||A||^2):
        # agreement to a few ulps of the update times the condition number.
        assert np.max(np.abs(got - expected)) <= 1e-9 * max(1.0, np.max(np.abs(expected)))


@pytest.mark.parametrize("sizes,N", CASES[:2])
def test_cg_to_convergence_gives_the_same_metric(backend, sizes, N):
    net, theta, X, y = random_problem(sizes, N, seed=3, backend=backend)
    new = pp.proxprop(net, theta, X, y, 0.5, 0.5, solver="cg", cg_iterations=200, cg_tol=1e-13)
    for l, expected in enumerate(_expected_update(net, theta, X, y, 0.5, 0.5)):
        # CG stopped at a relative residual of 1e-13; cond(M) here is < 1e3.
        assert np.max(np.abs(wb(new[l]) - wb(theta[l]) - expected)) < 1e-9


@pytest.mark.parametrize("solver,k", [("exact", None), ("cg", 3)])
def test_direction_is_independent_of_tau_and_equals_minus_update_over_tau(backend, solver, k):
    net, theta, X, y = random_problem([6, 5, 8, 4], 9, seed=2, backend=backend)
    d = pp.proxprop_direction(net, theta, X, y, tau_theta=0.2, solver=solver, cg_iterations=k)
    for tau in (0.01, 1.0, 7.0):
        new = pp.proxprop(net, theta, X, y, tau, 0.2, solver=solver, cg_iterations=k)
        for l in range(len(theta)):
            # Linear in tau: (theta - theta_new)/tau = d up to rounding in the scaled residuals.
            assert np.max(np.abs((wb(theta[l]) - wb(new[l])) / tau - wb(d[l]))) < 1e-11
    # On the last layer the direction is the plain gradient.
    g = pp.gradient(net, theta, X, y)
    assert np.max(np.abs(wb(d[-1]) - wb(g[-1]))) < 1e-14
