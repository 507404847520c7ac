r"""Textbook CG in batch coordinates: the same iterates as ``prox_cg``, at a fraction of the cost.

The prototype, measured here before it moved into the package (:func:`penaltyprop.cg.cg_rows_batch`,
``cg_space="batch"``; the paper's matrix-free CG stays as ``cg_space="parameter"``). See
docs/performance.md.

The mathematics. CG on :math:`D H = -\delta A^\top` with :math:`H = AA^\top + I/\tau_\theta`
starts from :math:`D_0 = 0`, so :math:`r_0 = -\delta A^\top`, and every later vector lies in
the Krylov space of :math:`r_0`. That space sits inside :math:`\{C A^\top : C \in
\mathbb{R}^{n \times K}\}`, because

.. math:: (C A^\top)\,H = C A^\top A A^\top + C A^\top/\tau_\theta = (C\,G)\,A^\top,
          \qquad G = A^\top A + I/\tau_\theta \;(K \times K).

So every iterate is :math:`C A^\top` for an n x K coefficient array C, H acts as
:math:`C \mapsto C G`, and inner products are :math:`\langle C_1A^\top, C_2A^\top\rangle =
\operatorname{rowdot}(C_1 \mathcal{K}, C_2)` with :math:`\mathcal{K} = A^\top A`. Keeping
:math:`C\mathcal{K}` beside C for r and p, one iteration costs one product with the K x K
Gram matrix, :math:`2nK^2` flops, and vector work on n x K arrays; the primal CG costs
:math:`4nmK` and vector work on n x (m+1) arrays. For the paper's MLP at N = K = 500 that
is 4.5 instead of 81 GFLOP per iteration (all three prox layers), and 6-8x less memory
traffic. In exact arithmetic the iterates are those of ``prox_cg``; in floating point they
agree to rounding (checked below in float64).

    python benchmarks/cg_batch_space.py [--iterations 1 3 10] [--repetitions 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from penaltyprop.prox import prox_cg
from penaltyprop.transfer import apply_At

PAPER_LAYERS = ((4000, 3072), (1000, 4000), (4000, 1000))  # (n_out, m) of the prox layers


def rowdot(U, V):
    return np.einsum("ij,ij->i", U, V)


def prox_cg_batch(P, delta, tau_theta, iterations):
    r"""Textbook CG for :math:`D H = -\delta A^\top` in batch coordinates :math:`D = C A^\top`.

    P : (m, K), delta : (n, K). Returns (DW, db) like ``prox_cg``. One CG per row, each
    with its own step lengths and the same guard for a row with zero residual.
    """
    K = P.T @ P
    K += 1  # A^T A = P^T P + 1 1^T: the bias row of A = [P; 1^T]
    cD = np.zeros_like(delta)
    cr = -delta  # r_0 = -delta A^T
    Kr = cr @ K
    cp, Kp = cr.copy(), Kr.copy()
    rr = rowdot(cr, Kr)  # <r, r> = C_r K C_r^T, row by row
    for it in range(iterations):
        cq = Kp + cp / tau_theta  # H p = (C_p G) A^T, C_p G = C_p K + C_p / tau_theta
        Kq = cq @ K  # the one product with the Gram matrix
        pq = rowdot(Kp, cq)  # <p, Hp> = C_p K C_q^T
        alpha = np.where(pq > 0, rr / np.where(pq > 0, pq, 1), 0)
        cD += alpha[:, None] * cp
        if it == iterations - 1:
            break  # the residual and next direction would go unused
        cr -= alpha[:, None] * cq
        Kr -= alpha[:, None] * Kq
        rr_new = rowdot(cr, Kr)
        beta = np.where(rr > 0, rr_new / np.where(rr > 0, rr, 1), 0)
        cp *= beta[:, None]
        cp += cr
        Kp *= beta[:, None]
        Kp += Kr
        rr = rr_new
    return apply_At(cD, P)  # D = C_D A^T


def check_agreement(iterations=(1, 3, 10), seed=0):
    """float64: the batch-coordinate iterates equal prox_cg's to rounding."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for n, m, K in ((7, 30, 12), (20, 50, 40), (5, 9, 30)):
        P = rng.random((m, K))
        delta = rng.standard_normal((n, K))
        for k in iterations:
            ref = prox_cg(P, apply_At(delta, P), 0.05, k)
            new = prox_cg_batch(P, delta, 0.05, k)
            err = max(np.abs(a - b).max() / np.abs(a).max() for a, b in zip(ref, new))
            worst = max(worst, err)
    return worst


def step_times(iterations, repetitions, batch_size):
    """Median seconds of whole directions on the paper's MLP: BackProp, and CG-k both ways."""
    import penaltyprop as pp
    from penaltyprop.algorithms import run_sweep, sweep

    net = pp.mlp([3072, 4000, 1000, 4000, 10])
    theta = net.init(seed=0, dtype="float32")
    rng = np.random.default_rng(0)
    X = rng.random((3072, batch_size), dtype=np.float32)
    y = rng.integers(0, 10, batch_size)

    def batch_direction(k):  # Algorithm 2's sweep at tau = 1, step (c) by this prototype
        def step_c(phi, theta_l, a_prev, delta):
            DW, db = prox_cg_batch(phi.patches(a_prev), -delta, 0.05, k)  # -delta: the direction
            return DW.reshape(phi.weight_shape), db
        J, d = run_sweep(sweep(net, theta, X, y, 1.0, step_c))
        return J, d[:-1] + [(-d[-1][0], -d[-1][1])]

    tasks = {"BackProp": lambda: pp.BackProp().direction(net, theta, X, y, check=False)}
    for k in iterations:  # the package's matrix-free CG, as before this prototype moved in
        primal = pp.ProxProp(tau_theta=0.05, solver="cg", cg_iterations=k, cg_space="parameter")
        tasks[f"primal CG-{k}"] = lambda m=primal: m.direction(net, theta, X, y, check=False)
        tasks[f"batch  CG-{k}"] = lambda k=k: batch_direction(k)
    for fn in tasks.values():
        fn()
    times = {name: [] for name in tasks}
    for _ in range(repetitions):
        for name, fn in tasks.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    bp = statistics.median(times["BackProp"])
    print(f"whole directions, paper MLP, N = {batch_size}, float32 (median of {repetitions}):")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"  {name:<16}{t * 1e3:9.1f} ms  {t / bp:5.2f}x BackProp")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=500)
    args = ap.parse_args(argv)
    print(f"float64 agreement with prox_cg (max relative difference): {check_agreement():.1e}")
    rng = np.random.default_rng(1)
    N = args.batch_size
    layers = []
    for n, m in PAPER_LAYERS:
        P = rng.random((m, N), dtype=np.float32)  # activations in [0, 1), like ReLU outputs
        delta = (rng.standard_normal((n, N)) * 1e-3).astype(np.float32)
        layers.append((P, delta, apply_At(delta, P)))
    tasks = {}
    for k in args.iterations:
        tasks[f"primal CG-{k} (prox_cg)"] = lambda k=k: [prox_cg(P, g, 0.05, k) for P, d, g in layers]
        tasks[f"batch  CG-{k}"] = lambda k=k: [prox_cg_batch(P, d, 0.05, k) for P, d, g in layers]
    for fn in tasks.values():
        fn()
    times = {name: [] for name in tasks}
    for _ in range(args.repetitions):
        for name, fn in tasks.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    print(f"paper MLP prox layers {PAPER_LAYERS}, N = {N}, float32, "
          f"median of {args.repetitions} (all three layers, ms):")
    for name, ts in times.items():
        print(f"  {name:<24}{statistics.median(ts) * 1e3:9.1f}")
    step_times(args.iterations, args.repetitions, N)
    for k in args.iterations:
        P, d, g = layers[0]
        ref, new = prox_cg(P, g, 0.05, k), prox_cg_batch(P, d, 0.05, k)
        err = max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(ref, new))
        print(f"  float32 layer 1, CG-{k}: max relative difference {err:.1e}")


if __name__ == "__main__":
    main()
