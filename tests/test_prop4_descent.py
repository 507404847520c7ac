"""Proposition 4: the ProxProp update is a descent direction, with a bounded angle.

<theta^{k+1} - theta^k, -grad J> > 0, and for every prox layer the angle alpha between
the update and -grad_{theta_l} J satisfies cos(alpha) >= lambda_min(M_l^{-1}) /
lambda_max(M_l^{-1}) (Eq. 33), with M_l from Eq. 14 formed explicitly in the test.
Hypothesis draws the shapes, tau and tau_theta.
"""
import numpy as np
from helpers import cos_angle, explicit_M, flat, random_problem, wb
from hypothesis import given, settings
from hypothesis import strategies as st

import penaltyprop as pp

shapes = st.lists(st.integers(1, 9), min_size=1, max_size=3)


@settings(max_examples=40, deadline=None)
@given(hidden=shapes, n0=st.integers(1, 8), C=st.integers(2, 5), N=st.integers(1, 15),
       seed=st.integers(0, 10_000), tau=st.floats(1e-3, 10.0), tau_theta=st.floats(1e-3, 100.0),
       activation=st.sampled_from(["relu", "sigmoid", "tanh"]))
def test_exact_update_is_descent_with_angle_bound(hidden, n0, C, N, seed, tau, tau_theta,
                                                  activation):
    sizes = [n0, *hidden, C]
    net, theta, X, y = random_problem(sizes, N, seed=seed, activation=activation)
    new = pp.proxprop(net, theta, X, y, tau, tau_theta, solver="exact")
    g = pp.gradient(net, theta, X, y)
    step = flat(new) - flat(theta)
    if np.linalg.norm(flat(g)) == 0:  # e.g. all ReLUs dead: nothing to descend
        return
    assert step @ -flat(g) > 0  # descent direction (Eq. 32)
    a, _ = pp.forward(net, theta, X)
    for l in range(len(theta) - 1):
        gl = wb(g[l])
        if np.linalg.norm(gl) < 1e-12 * np.linalg.norm(flat(g)):
            continue  # this layer has (numerically) no gradient: no angle to bound
        lam = np.linalg.eigvalsh(explicit_M(a[l], tau_theta))  # eigenvalues of M_l
        bound = lam[0] / lam[-1]  # = lambda_min(M^-1) / lambda_max(M^-1)
        c = cos_angle(wb(new[l]) - wb(theta[l]), -gl)
        # Eq. 33; the slack covers rounding in cos (both sides ~1e-16 relative).
        assert c >= bound * (1 - 1e-10)
