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


def explicit_M(a_prev, tau_theta):
    """M_l of Eq. 14 for a dense layer, formed explicitly, acting on the row-major vec of [W, b].

    With A = [a_{l-1}; 1^T] (n_in+1, N), (grad phi)(grad phi)^* maps [W, b] to [W, b] A A^T,
    so in the row-major vec of the (n_out, n_in+1) matrix [W, b] it is kron(I, A A^T).
    Returns the (n_in+1) x (n_in+1) block B = A A^T + I/tau_theta; M = kron(I_{n_out}, B).
    """
    a_prev = to_host(a_prev)
    A = np.vstack([a_prev, np.ones((1, a_prev.shape[1]))])
    return A @ A.T + np.eye(A.shape[0]) / tau_theta


def wb(pair):
    """[W, b] as one host (n_out, n_in+1) matrix (W reshaped to (n_out, -1) for a conv)."""
    W, b = to_host(pair[0]), to_host(pair[1])
    return np.concatenate([W.reshape(W.shape[0], -1), b[:, None]], axis=1)


def cos_angle(u, v):
    """cos of the angle between two arrays, flattened."""
    u, v = np.ravel(u), np.ravel(v)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


#: small convolutions for the fast-path tests: (c_in, c_out, k, (H, W), padding, N)
CONV_SHAPES = [
    (2, 3, 3, (6, 6), 1, 3),
    (1, 2, 5, (7, 5), 2, 2),
    (3, 2, 2, (4, 5), 0, 4),
    (2, 1, 1, (3, 3), 2, 1),  # padding beyond the kernel's reach (k - 1 - p < 0)
    (2, 2, 4, (3, 2), 3, 2),
]


def randn(rng, shape, xp):
    """Standard normal entries on the backend ``xp``."""
    return to_device(rng.standard_normal(shape), xp)


def assert_close(got, expected, scale):
    """Largest entry-wise difference at most 1e-12 * scale (float64 rounding of reordered sums)."""
    assert np.max(np.abs(to_host(got) - to_host(expected))) <= 1e-12 * scale


def rewrite_checkpoint(path, change):
    """Re-save a checkpoint's arrays after ``change(arrays, meta)`` edits them in place."""
    import json

    with np.load(path) as f:
        arrays = {name: f[name] for name in f.files}
    meta = json.loads(str(arrays["meta"]))
    change(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def scipy_cg(H, b, x0, iterations):
    """Exactly ``iterations`` steps of ``scipy.sparse.linalg.cg`` on H x = b from x0, with no
    stopping rule: the reference for our CG. SciPy >= 1.12 names the relative tolerance
    ``rtol``; older SciPy (down to our lower bound, 1.10) calls it ``tol``."""
    import inspect

    import scipy.sparse.linalg as spla

    tol = "rtol" if "rtol" in inspect.signature(spla.cg).parameters else "tol"
    x, _ = spla.cg(H, b, x0=x0, maxiter=iterations, atol=0.0, **{tol: 0.0})
    return x
