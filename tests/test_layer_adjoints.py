"""Every layer passes an inner-product (adjoint) test, and sigma' is the derivative of sigma.

For phi(theta, a) = W a + b 1^T: <phi(theta, a), u> = <theta, adjoint_theta(a, u)> (phi is
linear in theta, Eq. 29) and <grad_a phi(theta, .) applied, u> = <a, adjoint_a(theta, u)>
(linear in a for b = 0). For each nonlinearity, vjp(z, v) = sigma'(z) v, and sigma' matches
central differences of sigma.
"""
import numpy as np
import pytest

from penaltyprop.backend import get_backend, to_device, to_host
from penaltyprop.nonlinearities import ReLU, Sigmoid, Tanh, get_activation
from penaltyprop.transfer import Linear


def _dot(u, v):
    return float(np.sum(to_host(u) * to_host(v)))


@pytest.mark.parametrize("n_in,n_out,N", [(3, 4, 5), (7, 2, 1), (1, 1, 9)])
def test_linear_adjoints(backend, n_in, n_out, N):
    xp = get_backend(backend)
    rng = np.random.default_rng(n_in * n_out * N)
    phi = Linear(n_in, n_out)
    W, b = (to_device(rng.standard_normal(s), xp) for s in [(n_out, n_in), (n_out,)])
    a = to_device(rng.standard_normal((n_in, N)), xp)
    u = to_device(rng.standard_normal((n_out, N)), xp)
    dW, db = phi.adjoint_theta(a, u)
    # <phi(theta, a), u> = <W, dW> + <b, db>: exact up to rounding of two sums
    assert abs(_dot(phi((W, b), a), u) - (_dot(W, dW) + _dot(b, db))) < 1e-12 * N * n_in
    zero_b = xp.zeros(n_out)
    assert abs(_dot(phi((W, zero_b), a), u) - _dot(a, phi.adjoint_a((W, b), u))) < 1e-12 * N * n_in


@pytest.mark.parametrize("sigma", [ReLU(), Sigmoid(), Tanh()])
def test_nonlinearity_derivatives(backend, sigma):
    xp = get_backend(backend)
    z = to_device(np.random.default_rng(0).standard_normal((6, 7)) * 3, xp)
    h = 1e-6
    fd = (to_host(sigma(z + h)) - to_host(sigma(z - h))) / (2 * h)
    # central differences: O(h^2) + O(eps/h); ReLU's kink at 0 is not hit by random z
    assert np.max(np.abs(fd - to_host(sigma.derivative(z)))) < 1e-8
    v = to_device(np.random.default_rng(1).standard_normal((6, 7)), xp)
    assert np.max(np.abs(to_host(sigma.vjp(z, v)) - to_host(sigma.derivative(z) * v))) == 0


def test_sigmoid_is_stable_for_large_inputs():
    z = np.array([[-800.0, 0.0, 800.0]])
    s = get_activation("sigmoid")(z)
    assert np.all(np.isfinite(s)) and s[0, 0] == 0.0 and s[0, 1] == 0.5 and s[0, 2] == 1.0
