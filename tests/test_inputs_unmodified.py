"""The algorithms are functions: they return new parameters and never modify their inputs
(as scipy's own tests check that x0 comes back unchanged)."""
import numpy as np
import pytest
from helpers import copy_params, max_abs_diff, random_problem

import penaltyprop as pp
from penaltyprop.backend import to_host


@pytest.mark.parametrize("call", [
    lambda n, t, X, y: pp.penalty_backprop(n, t, X, y, 0.5),
    lambda n, t, X, y: pp.penalty_backprop(n, t, X, y, 0.5, rho=3.0, gamma=0.2),
    lambda n, t, X, y: pp.proxprop(n, t, X, y, 0.5, 1.0, solver="exact", exact_system="primal"),
    lambda n, t, X, y: pp.proxprop(n, t, X, y, 0.5, 1.0, solver="exact", exact_system="batch"),
    lambda n, t, X, y: pp.proxprop(n, t, X, y, 0.5, 1.0, solver="cg", cg_iterations=3),
    lambda n, t, X, y: pp.proxprop(n, t, X, y, 0.5, 1.0, solver="gradient"),
    lambda n, t, X, y: pp.proxprop_direction(n, t, X, y, 1.0, solver="cg", cg_iterations=2),
    lambda n, t, X, y: pp.gradient(n, t, X, y),
    lambda n, t, X, y: pp.forward(n, t, X),
])
def test_inputs_come_back_unchanged(backend, call):
    net, theta, X, y = random_problem([5, 6, 4, 3], 8, seed=4, backend=backend)
    theta0, X0, y0 = copy_params(theta), to_host(X).copy(), to_host(y).copy()
    out = call(net, theta, X, y)
    assert max_abs_diff(theta, theta0) == 0.0
    assert np.array_equal(to_host(X), X0) and np.array_equal(to_host(y), y0)
    if isinstance(out, list) and isinstance(out[0], tuple):
        for (W, b), (W0, b0) in zip(out, theta):
            assert W is not W0 and b is not b0  # new arrays, not views of the input
