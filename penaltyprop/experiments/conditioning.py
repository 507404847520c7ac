r"""Section 4.1: how ill-conditioned the quadratic subproblems of BackProp are.

For the first layer, Eq. 4 is :math:`f(\theta) = \tfrac12\|\theta X - z_1\|^2` with Hessian
:math:`X X^\top` (n_0 x n_0); the paper reports a largest eigenvalue of 6.7e6 for CIFAR-10,
seven orders of magnitude above the smallest. The same holds for the later layers with
:math:`a_l a_l^\top`. We compute both spectra: :math:`X X^\top` of the training images and
:math:`a_l a_l^\top` of every hidden layer of the paper MLP at its initialisation
(``net.init(seed)``), all in float64 with ``backend.eigvalsh``.
"""
from __future__ import annotations

import time

from ..backend import get_backend, to_device, to_host
from ..backend.linalg import eigvalsh
from ..data import batch_last
from ..forward import forward
from ..fsutil import atomic_write_text
from ..network import mlp
from ..plotting import spectra_figure
from .report import markdown_table

PAPER_LARGEST = 6.7e6  # Section 4.1, X X^T of CIFAR-10
PAPER_RATIO = 1e7  # "seven orders of magnitude larger than the smallest eigenvalue"
CHUNK = 2000  # images per forward pass
N_PLOT = 300  # eigenvalues kept per spectrum for the figure
ZERO = 1e-12  # eigenvalues below ZERO * largest count as numerically zero


def gram_matrices(net, theta, X_host, xp):
    r"""Gram matrices :math:`a_l a_l^\top` for l = 0 (a_0 = X) .. L-2, summed over all samples.

    Parameters
    ----------
    X_host : host array, shape (N, n0)
        Samples-first (converted here, chunk by chunk).

    Returns
    -------
    list of float64 arrays
        Of shapes (n_l, n_l), on ``xp``.
    """
    grams = None
    for s in range(0, X_host.shape[0], CHUNK):
        Xc = to_device(batch_last(X_host[s:s + CHUNK]), xp, theta[0][0].dtype)  # (n0, n)
        a, _ = forward(net, theta, Xc)  # a[0] = X, a[l] = sigma(z_l)
        parts = [a_l.astype(xp.float64) for a_l in a]
        products = [A @ A.T for A in parts]  # (n_l, n_l)
        grams = products if grams is None else [G + P for G, P in zip(grams, products)]
    return grams


def spectrum_summary(values):
    """Largest, smallest, smallest non-zero eigenvalue and a thinned spectrum for the plot."""
    values = sorted((float(v) for v in values), reverse=True)  # descending
    largest = values[0]
    positive = [v for v in values if v > ZERO * largest]
    step = max(len(values) // N_PLOT, 1)
    thinned = [max(v, ZERO * largest) for v in values[::step]] + [max(values[-1], ZERO * largest)]
    return {"dim": len(values), "largest": largest, "smallest": values[-1],
            "n_zero": len(values) - len(positive),
            "smallest_nonzero": positive[-1] if positive else None,
            "ratio": largest / positive[-1] if positive else None, "spectrum": thinned}


def run_conditioning(store, data, scale, *, seed, backend, **_):
    """Spectra of X X^T and a_l a_l^T, one stored configuration per matrix."""
    names = ["X X^T"] + [f"a_{l} a_{l}^T" for l in range(1, len(scale.hidden) + 1)]
    if not all(name in store for name in names):
        xp = get_backend(backend)
        net = mlp([data.n_features, *scale.hidden, data.n_classes])
        theta = net.init(seed=seed, dtype="float32", backend=backend)
        t0 = time.perf_counter()
        grams = gram_matrices(net, theta, data.X_train, xp)
        share = (time.perf_counter() - t0) / len(grams)  # the forward passes, split evenly
        for name, G in zip(names, grams):
            if name not in store:
                store.log(f"[{name}] eigvalsh of a {G.shape[0]} x {G.shape[0]} matrix")
                t1 = time.perf_counter()
                summary = spectrum_summary(to_host(eigvalsh(G)))
                summary.update(method=name, n_images=int(data.X_train.shape[0]),
                               wall_s=share + time.perf_counter() - t1)
                store.put(name, summary)
    return [store[name] for name in names]


def report_conditioning(store, out, title, **_):
    runs = list(store.data["runs"].values())
    spectra_figure([(r["method"], r["spectrum"]) for r in runs], out / "conditioning.png",
                   title)
    rows = []
    for r in runs:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2g}"
        nonzero = "-" if r["smallest_nonzero"] is None else f"{r['smallest_nonzero']:.3g}"
        rows.append([r["method"], r["dim"], r["n_images"], f"{r['largest']:.3g}",
                     f"{r['largest'] / r['n_images']:.3g}", f"{r['smallest']:.3g}",
                     r["n_zero"], nonzero, ratio])
    rows.append(["paper: X X^T of CIFAR-10", 3072, "not stated", f"{PAPER_LARGEST:.2g}", "",
                 "", "", "", f"~{PAPER_RATIO:.0e}"])
    table = markdown_table(["matrix", "dim", "images N", "largest", "largest / N", "smallest",
                            f"# below {ZERO:g} x largest", "smallest above that",
                            "largest / smallest above"], rows)
    atomic_write_text(out / "conditioning.md", f"### {title}\n\n{table}")
    return table
