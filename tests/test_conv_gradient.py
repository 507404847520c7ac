"""Backprop through a CNN computes grad J (Eq. 2 with conv, pool and flatten layers).

Claim: for a network of Conv2d -> ReLU -> MaxPool2d blocks, Flatten and a final Linear
layer, ``pp.gradient`` (classical backprop: adjoint_theta, adjoint_a and the vjp of
sigma = Pool o ReLU (o Flatten)) equals the derivative of ``pp.loss``.

Oracle: central finite differences of J in float64, entry by entry on small CNNs and
along random directions on the paper's Section 5.3 network. J is piecewise smooth (ReLU,
max); at a random point no kink lies within eps = 1e-6, so the central difference has
error O(eps^2 J''') + O(ulp(J)/eps) ~ 1e-10: tolerance 1e-7 relative to max(1, |g|).
"""
import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop.backend import get_backend, to_device, to_host

EPS = 1e-6


def cnn_problem(backend, in_shape, channels, kernel_size, padding, n_classes, N, seed=0,
                activation="relu"):
    """A small CNN, its PyTorch-default parameters (float64) and a random batch."""
    xp = get_backend(backend)
    net = pp.cnn(in_shape, channels, kernel_size, padding, n_classes, activation)
    theta = net.init(seed=seed, backend=backend)
    rng = np.random.default_rng(seed + 1000)
    X = to_device(rng.standard_normal((*in_shape, N)), xp)
    y = to_device(rng.integers(0, n_classes, size=N), xp)
    return net, theta, X, y


def _J(net, theta, X, y):
    return float(pp.loss(net, theta, X, y))


def _shifted(theta, l, which, idx, step, xp):
    """theta with entry idx of theta[l][which] (0: W, 1: b) moved by step (new arrays)."""
    out = list(theta)
    pair = [theta[l][0], theta[l][1]]
    host = to_host(pair[which]).copy()
    host[idx] += step
    pair[which] = to_device(host, xp)
    out[l] = tuple(pair)
    return out


@pytest.mark.parametrize("in_shape,channels,k,p,activation", [
    ((2, 8, 8), (3, 2), 3, 1, "relu"),  # 8x8 -> pool 4x4 -> pool 2x2 -> FC 8 -> 3
    ((2, 10, 14), (2, 3), 3, 0, "relu"),  # no padding: 10x14 -> 8x12 -> 4x6 -> 2x4 -> 1x2 -> FC 6 -> 3
    ((1, 8, 8), (2,), 5, 2, "tanh"),
])
def test_gradient_matches_finite_differences(backend, in_shape, channels, k, p, activation):
    xp = get_backend(backend)
    net, theta, X, y = cnn_problem(backend, in_shape, channels, k, p, 3, N=3, activation=activation)
    g = pp.gradient(net, theta, X, y)
    for l in range(len(theta)):
        for which in (0, 1):  # W, then b
            got = to_host(g[l][which])
            fd = np.empty_like(got)
            for idx in np.ndindex(got.shape):
                fd[idx] = (_J(net, _shifted(theta, l, which, idx, EPS, xp), X, y)
                           - _J(net, _shifted(theta, l, which, idx, -EPS, xp), X, y)) / (2 * EPS)
            assert np.max(np.abs(got - fd)) <= 1e-7 * max(1.0, np.max(np.abs(fd))), (l, which)


def test_directional_derivative_on_the_section_5_3_network(backend):
    """The default pp.cnn (3x32x32 -> 16, 20, 20 channels -> 10 classes), N = 2."""
    xp = get_backend(backend)
    net = pp.cnn()
    theta = net.init(seed=1, backend=backend)
    rng = np.random.default_rng(7)
    X = to_device(rng.uniform(0, 1, size=(3, 32, 32, 2)), xp)
    y = to_device(np.array([3, 8]), xp)
    g = pp.gradient(net, theta, X, y)
    for _ in range(2):
        d = [(to_device(rng.standard_normal(W.shape), xp), to_device(rng.standard_normal(b.shape), xp))
             for W, b in theta]
        plus = [(W + EPS * dW, b + EPS * db) for (W, b), (dW, db) in zip(theta, d)]
        minus = [(W - EPS * dW, b - EPS * db) for (W, b), (dW, db) in zip(theta, d)]
        fd = (_J(net, plus, X, y) - _J(net, minus, X, y)) / (2 * EPS)
        gd = sum(float((gW * dW).sum() + (gb * db).sum()) for (gW, gb), (dW, db) in zip(g, d))
        assert abs(fd - gd) <= 1e-7 * max(1.0, abs(gd))
