"""Small shared helpers for the tests: random problems and comparisons (host side)."""
import numpy as np

import penaltyprop as pp
from penaltyprop.backend import to_device, to_host


def random_problem(sizes, N, seed=0, activation="relu", backend="numpy", dtype="float64"):
    """An MLP, its PyTorch-default parameters, and a random batch (X (n0, N), y (N,))."""
    net = pp.mlp(sizes, activation=activation)
    theta = net.init(seed=seed, dtype=dtype, backend=backend)
    rng = np.random.default_rng(seed + 1000)
    xp = pp.backend.get_backend(backend)
    X = to_device(rng.standard_normal((sizes[0], N)).astype(dtype), xp)
    y = to_device(rng.integers(0, sizes[-1], size=N), xp)
    return net, theta, X, y


def flat(params):
    """Concatenate a list of (W, b) pairs into one host vector (W row-major, then b)."""
    return np.concatenate([np.concatenate([to_host(W).ravel(), to_host(b).ravel()])
                           for W, b in params])


def max_abs_diff(p, q):
    """max |p - q| over all entries of two parameter lists."""
    return float(np.max(np.abs(flat(p) - flat(q))))


def rel_diff(p, q):
    """||p - q|| / ||q|| over the flattened parameter lists."""
    fp, fq = flat(p), flat(q)
    return float(np.linalg.norm(fp - fq) / np.linalg.norm(fq))


def copy_params(theta):
    """A deep host copy of theta, to check that an algorithm did not modify its input."""
    return [(to_host(W).copy(), to_host(b).copy()) for W, b in theta]
