r"""Does the authors' CG variant still give descent directions? (docs/cg_variant.md)

Proposition 5 is proved for textbook CG. This script measures, over many random MLPs,
for k = 1..10 CG iterations and for every prox layer l:

* how often the ProxProp direction d_l (= (theta^k - theta^{k+1}) / tau) satisfies
  <d_l, grad_l J> > 0, i.e. the update is a descent direction;
* cos(d_l, grad_l J), for textbook CG, the authors' variant and the exact prox;
* ||d_l - d_l^*|| / ||d_l^*||, the distance to the exact prox direction d^* = M_l^{-1} grad_l J;
* how many CG iterations the variant actually ran (its early stop).

Random draws: 1-3 hidden layers, widths 4..64, 2..10 classes, ReLU / tanh / sigmoid,
PyTorch's default init, inputs uniform in [0, 1) (as the reference and CIFAR-10), and
N either below the smallest width ("N < n") or above the largest ("N > n");
tau_theta in {0.05, 1, 10}. float64, NumPy.

    python benchmarks/cg_variant_descent.py [--draws 60] [--seed 0] [--ablation-draws 40]

The ablation table switches the variant's behaviours off one at a time: the early stop
through ``cg_tol=1e-150`` (its rule then never fires), the epsilon by setting
``penaltyprop.authors_cg.AUTHORS_CG_EPS`` to 1e-300 for the call (0 would make 0/0 for a row
without gradient), leaving the aliasing alone.

``--draws`` is per tau_theta. It runs Algorithm 2's sweep at tau = 1 with the public pieces
``sweep``, ``run_sweep`` and ``prox_step_c`` (rather than ``pp.ProxProp(...).direction``) only
to read how many iterations the variant ran (``prox_step_c``'s ProxInfo records).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import penaltyprop as pp
from penaltyprop import authors_cg
from penaltyprop.algorithms import prox_step_c, run_sweep, sweep
from penaltyprop.prox import Prox

TAU_THETAS = (0.05, 1.0, 10.0)
KS = tuple(range(1, 11))
VARIANTS = ("textbook", "authors")


def draw_problem(rng, seed):
    """A random MLP, its default init and a batch (X (n0, N) in [0, 1), y); regime label."""
    hidden = list(rng.integers(4, 65, size=rng.integers(1, 4)))
    n0, C = int(rng.integers(4, 65)), int(rng.integers(2, 11))
    sizes = [n0, *map(int, hidden), C]
    if rng.random() < 0.5:
        regime, N = "N < n", int(rng.integers(1, min(sizes[:-1])))
    else:
        regime, N = "N > n", int(rng.integers(max(sizes[:-1]) + 2, 2 * max(sizes[:-1]) + 10))
    net = pp.mlp(sizes, activation=str(rng.choice(["relu", "relu", "tanh", "sigmoid"])))
    theta = net.init(seed=seed)
    X = rng.random((n0, N))
    y = rng.integers(0, C, size=N)
    return net, theta, X, y, regime


def rows(pair):
    W, b = pair
    return np.concatenate([W.reshape(W.shape[0], -1), b[:, None]], axis=1)


def direction(net, theta, X, y, tau_theta, solver, k=None, variant="textbook", tol=None):
    """Per prox layer the direction rows (n_out, n_in+1), and the CG iterations run."""
    infos = []  # one ProxInfo per prox layer, in the sweep's order: l = L-2 first
    prox = Prox(tau_theta, solver, k, tol, variant if solver == "cg" else None)
    _, updates = run_sweep(sweep(net, theta, X, y, 1.0, prox_step_c(prox, 1.0, infos)))
    # tau = 1: update = -direction
    return [-rows(u) for u in updates[:-1]], [i.iterations for i in infos[::-1]]


def cosine(u, v):
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    return float(np.sum(u * v) / (nu * nv)) if nu > 0 and nv > 0 else np.nan


def measure(draws, seed):
    """One record per (draw, tau_theta, k, variant, prox layer)."""
    rng = np.random.default_rng(seed)
    records = []
    for tau_theta in TAU_THETAS:
        for d in range(draws):
            net, theta, X, y, regime = draw_problem(rng, seed=seed * 100_000 + d)
            g = [rows(gl) for gl in pp.gradient(net, theta, X, y)[:-1]]
            exact, _ = direction(net, theta, X, y, tau_theta, "exact")
            for gl, el in zip(g, exact):
                if np.linalg.norm(gl) > 0:
                    records.append(dict(tau_theta=tau_theta, k=0, variant="exact", regime=regime,
                                        ip=float(np.sum(el * gl)), cos=cosine(el, gl), err=0.0,
                                        iters=0, stopped=False))
            for k in KS:
                for variant in VARIANTS:
                    dirs, iters = direction(net, theta, X, y, tau_theta, "cg", k, variant)
                    for l, (gl, dl, el) in enumerate(zip(g, dirs, exact)):
                        if np.linalg.norm(gl) == 0:  # no gradient, no direction: nothing to test
                            continue
                        records.append(dict(
                            tau_theta=tau_theta, k=k, variant=variant, regime=regime,
                            ip=float(np.sum(dl * gl)), cos=cosine(dl, gl),
                            err=float(np.linalg.norm(dl - el) / np.linalg.norm(el)),
                            iters=iters[l], stopped=iters[l] < k))
    return records


def summary(records, **where):
    sel = [r for r in records if all(r[key] == val for key, val in where.items())]
    ip = np.array([r["ip"] for r in sel])
    cos = np.array([r["cos"] for r in sel])
    err = np.array([r["err"] for r in sel])
    return dict(n=len(sel), descent=float(np.mean(ip > 0)), cos_mean=float(np.mean(cos)),
                cos_min=float(np.min(cos)), err_mean=float(np.mean(err)),
                stopped=float(np.mean([r["stopped"] for r in sel])))


ABLATIONS = (  # (name, variant, epsilon, cg_tol)
    ("textbook", "textbook", None, None),
    ("authors", "authors", 1e-6, None),
    ("authors, no early stop", "authors", 1e-6, 1e-150),
    ("authors, no epsilon", "authors", 1e-300, None),
    ("aliasing only", "authors", 1e-300, 1e-150),
)


def ablation(draws, seed, ks=(3, 10)):
    """Mean err to the exact prox and mean cos to grad J with the behaviours switched off."""
    rng = np.random.default_rng(seed + 1)
    out = {}
    eps0 = authors_cg.AUTHORS_CG_EPS
    for tau_theta in TAU_THETAS:
        for d in range(draws):
            net, theta, X, y, _ = draw_problem(rng, seed=seed * 100_000 + 50_000 + d)
            g = [rows(gl) for gl in pp.gradient(net, theta, X, y)[:-1]]
            exact, _ = direction(net, theta, X, y, tau_theta, "exact")
            for k in ks:
                for name, variant, eps, tol in ABLATIONS:
                    try:
                        authors_cg.AUTHORS_CG_EPS = eps0 if eps is None else eps
                        dirs, _ = direction(net, theta, X, y, tau_theta, "cg", k, variant, tol)
                    finally:
                        authors_cg.AUTHORS_CG_EPS = eps0
                    for gl, dl, el in zip(g, dirs, exact):
                        if np.linalg.norm(gl) > 0:
                            out.setdefault((tau_theta, k, name), []).append(
                                (np.linalg.norm(dl - el) / np.linalg.norm(el), cosine(dl, gl)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=60, help="random networks per tau_theta")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation-draws", type=int, default=40,
                        help="random networks per tau_theta for the ablation (0: skip)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    records = measure(args.draws, args.seed)
    seconds = time.perf_counter() - t0

    print(f"{args.draws} random MLPs per tau_theta, seed {args.seed}, {seconds:.0f} s; "
          f"{len(records)} (layer, k, solver) records\n")
    print("Per prox layer: descent = share with <d, grad J> > 0; cos = cos(d, grad J);"
          " err = ||d - d_exact|| / ||d_exact||;\nstop = share of layers where the variant's"
          " early stop ran fewer than k iterations.\n")
    head = ("| tau_theta | k | layers | descent textbook | descent authors | cos textbook (mean/min) "
            "| cos authors (mean/min) | cos exact (mean) | err textbook | err authors | stop authors |")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for tau_theta in TAU_THETAS:
        ex = summary(records, tau_theta=tau_theta, variant="exact")
        for k in KS:
            t = summary(records, tau_theta=tau_theta, k=k, variant="textbook")
            a = summary(records, tau_theta=tau_theta, k=k, variant="authors")
            print(f"| {tau_theta:g} | {k} | {t['n']} | {t['descent']:.1%} | {a['descent']:.1%} "
                  f"| {t['cos_mean']:.3f} / {t['cos_min']:.3f} | {a['cos_mean']:.3f} / {a['cos_min']:.3f} "
                  f"| {ex['cos_mean']:.3f} | {t['err_mean']:.3f} | {a['err_mean']:.3f} "
                  f"| {a['stopped']:.0%} |")

    print("\nBy regime, all k and tau_theta together:\n")
    print("| regime | layers | descent textbook | descent authors | cos textbook (mean/min) "
          "| cos authors (mean/min) | err textbook | err authors |")
    print("|---|---|---|---|---|---|---|---|")
    for regime in ("N < n", "N > n"):
        t = summary(records, regime=regime, variant="textbook")
        a = summary(records, regime=regime, variant="authors")
        print(f"| {regime} | {t['n']} | {t['descent']:.1%} | {a['descent']:.1%} "
              f"| {t['cos_mean']:.3f} / {t['cos_min']:.3f} | {a['cos_mean']:.3f} / {a['cos_min']:.3f} "
              f"| {t['err_mean']:.3f} | {a['err_mean']:.3f} |")
    a = [r for r in records if r["variant"] == "authors"]
    t = [r for r in records if r["variant"] == "textbook"]
    print(f"\nmin <d, grad J> / (|d| |grad J|): textbook {min(r['cos'] for r in t):.3e}, "
          f"authors {min(r['cos'] for r in a):.3e}; layers without descent: textbook "
          f"{sum(r['ip'] <= 0 for r in t)}, authors {sum(r['ip'] <= 0 for r in a)}")

    if args.ablation_draws > 0:
        out = ablation(args.ablation_draws, args.seed)
        names = [a[0] for a in ABLATIONS]
        print(f"\nAblation ({args.ablation_draws} other random MLPs per tau_theta): mean err to "
              "the exact prox / mean cos to grad J\n")
        print("| tau_theta | k | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 2) + "|")
        for tau_theta, k in sorted({key[:2] for key in out}):
            cells = [np.mean(out[tau_theta, k, n], axis=0) for n in names]
            print(f"| {tau_theta:g} | {k} | " + " | ".join(f"{e:.3f} / {c:.3f}" for e, c in cells) + " |")


if __name__ == "__main__":
    main()
