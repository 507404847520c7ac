"""Proposition 5: any number of CG iterations gives a descent direction.

The k-th textbook CG iterate for M v = -grad J, started at theta^k, minimises the
quadratic over a Krylov space, so <v_k, -grad J> > 0 for every k = 1..n; with k = n
(the system size) CG reaches the exact solve (Eq. 44).
"""
import numpy as np
import pytest
from helpers import random_problem, wb
from hypothesis import given, settings
from hypothesis import strategies as st

import penaltyprop as pp


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), N=st.integers(1, 10), tau_theta=st.floats(1e-2, 100.0),
       activation=st.sampled_from(["relu", "sigmoid", "tanh"]))
def test_every_cg_iterate_is_a_descent_direction(seed, N, tau_theta, activation):
    sizes = [4, 5, 3, 3]
    net, theta, X, y = random_problem(sizes, N, seed=seed, activation=activation)
    g = pp.gradient(net, theta, X, y)
    n = max(sizes[:-1]) + 1  # the largest system size
    for k in range(1, n + 1):
        new = pp.proxprop(net, theta, X, y, 1.0, tau_theta, solver="cg", cg_iterations=k)
        for l in range(len(theta) - 1):
            gl = wb(g[l])
            if np.linalg.norm(gl) == 0:
                continue
            # <update, -grad> > 0, per layer (the proof is per linear system)
            assert np.sum((wb(new[l]) - wb(theta[l])) * -gl) > 0


@pytest.mark.parametrize("sizes,N", [([4, 6, 3], 10), ([7, 5, 6, 3], 3)])
def test_n_iterations_reach_the_exact_solve(backend, sizes, N):
    net, theta, X, y = random_problem(sizes, N, seed=1, backend=backend)
    n = max(sizes[:-1]) + 1  # (n_in + 1) unknowns per row: at most n distinct eigenvalues
    exact = pp.proxprop(net, theta, X, y, 1.0, 0.3, solver="exact")
    cg = pp.proxprop(net, theta, X, y, 1.0, 0.3, solver="cg", cg_iterations=n)
    for l in range(len(theta) - 1):
        d_exact = wb(exact[l]) - wb(theta[l])
        d_cg = wb(cg[l]) - wb(theta[l])
        # In exact arithmetic equal; in float64 CG loses ~cond(M) * eps per iteration.
        assert np.max(np.abs(d_cg - d_exact)) <= 1e-10 * np.max(np.abs(d_exact))
