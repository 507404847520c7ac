r"""The Section 5.3 CNN in penaltyprop beside the same CNN in PyTorch (CPU), one step each.

Optional: PyTorch is *not* a dependency of penaltyprop. Where ``import torch`` fails this script
says so and exits with status 0 (skipped). To run it: ``pip install torch`` (CPU wheel).

What it does, on one random batch (uniform [0, 1] pixels, labels 0..9; timings do not depend on
the values):

1. builds ``pp.cnn()`` (Conv 16@5x5 -> ReLU -> Pool -> Conv 20@5x5 -> ReLU -> Pool -> Conv 20@5x5
   -> ReLU -> Pool -> FC 10), its float32 theta (seed 0), and the same network in torch with
   theta copied in (``nn.Conv2d`` weights are (C_out, C_in, k, k) in both; torch flattens each
   sample in (C, H, W) order like :class:`penaltyprop.pooling.Flatten`);
2. checks that both give the same mean cross-entropy and the same gradient to float32 rounding
   (relative Frobenius error per parameter array, bound :data:`GRAD_RTOL`), exit status 1 if not;
3. times, interleaved in rounds after one warm-up round (so that a neighbour's load falls on all
   of them alike), medians over ``--repetitions`` rounds:

   * ``torch``: forward + backward of the batch (``loss.backward()``, gradients set to None first),
     with ``torch.set_num_threads(--threads)``;
   * ``BackProp``: ``pp.BackProp().direction(net, theta, X, y, check=False)``;
   * ``exact``: ``pp.ProxProp(solver="exact", tau_theta=1.0).direction(...)``;
   * ``CG-3``: ``pp.ProxProp(solver="cg", cg_iterations=3, tau_theta=1.0).direction(...)``.

   The inputs are converted once, outside the timings, to each library's layout: penaltyprop keeps
   the batch axis last, (3, 32, 32, N); torch takes (N, 3, 32, 32).

It prints a table (median, min, max in ms; the ratio to torch and to BackProp) and with
``--json OUT`` writes the same numbers, the raw times and the machine.

    python benchmarks/cnn_vs_torch.py [--batch 500] [--repetitions 7] [--threads 2] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import penaltyprop as pp

#: relative Frobenius error allowed between the two gradients (float32: sums over up to
#: 512,000 terms per entry in a different order; measured ~1e-6 .. 1e-5)
GRAD_RTOL = 1e-4
#: relative error allowed between the two losses
LOSS_RTOL = 1e-5


def torch_or_none():
    """``torch`` if it imports, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_cnn(torch, net, theta):
    """The torch twin of ``pp.cnn()``: same layers, theta copied in (float32)."""
    nn = torch.nn
    layers = []
    for blk, (W, b) in zip(net.blocks, theta):
        phi = blk.phi
        if isinstance(phi, pp.Conv2d):
            c_out, c_in, k, _ = phi.weight_shape
            mod = nn.Conv2d(c_in, c_out, k, padding=phi.padding)
            layers += [mod, nn.ReLU(), nn.MaxPool2d(2)]
        else:
            mod = nn.Linear(*phi.weight_shape[::-1])  # the last layer, after the last pooling
            layers += [nn.Flatten(), mod]
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            mod.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
    return nn.Sequential(*layers)


def torch_step(torch, model, Xt, yt):
    """Forward and backward of one batch: the loss (a float) after ``loss.backward()``."""
    for p in model.parameters():
        p.grad = None
    loss = torch.nn.functional.cross_entropy(model(Xt), yt)
    loss.backward()
    return loss


def torch_grads(model):
    """The gradients of the torch model as (W, b) pairs of NumPy arrays, in layer order."""
    mods = [m for m in model if hasattr(m, "weight")]
    return [(m.weight.grad.numpy(), m.bias.grad.numpy()) for m in mods]


def rel_err(u, v):
    """||u - v|| / ||v|| (Frobenius), in float64."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    return float(np.linalg.norm(u - v) / max(np.linalg.norm(v), np.finfo(np.float64).tiny))


def check_same(torch, model, net, theta, X, y, Xt, yt):
    """Loss and gradient of both on one batch: ``(ok, report)``."""
    loss_t = float(torch_step(torch, model, Xt, yt).detach())
    J, g = pp.BackProp().direction(net, theta, X, y, check=False)
    errs = [(rel_err(gW, tW), rel_err(gb, tb))
            for (gW, gb), (tW, tb) in zip(g, torch_grads(model))]
    loss_err = abs(float(J) - loss_t) / abs(loss_t)
    worst = max(max(e) for e in errs)
    ok = loss_err <= LOSS_RTOL and worst <= GRAD_RTOL
    return ok, {"loss_penaltyprop": float(J), "loss_torch": loss_t, "loss_rel_err": loss_err,
                "grad_rel_err": errs, "grad_rel_err_max": worst}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--repetitions", type=int, default=7, help="timed rounds (>= 5)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--modes", nargs="+", default=["torch", "BackProp", "exact", "CG-3"],
                    choices=["torch", "BackProp", "exact", "CG-3"])
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args(argv)
    if args.repetitions < 5:
        ap.error("--repetitions must be at least 5 (medians of >= 5 rounds)")

    torch = torch_or_none()
    if torch is None:
        print("skipped: torch is not installed (optional; `pip install torch` to compare "
              "penaltyprop's CNN step with PyTorch's)")
        return 0
    torch.set_num_threads(args.threads)

    net = pp.cnn()
    theta = net.init(seed=0, dtype="float32")
    rng = np.random.default_rng(0)
    N = args.batch
    X = rng.random((*net.input_shape, N), dtype=np.float32)  # (3, 32, 32, N), batch last
    y = rng.integers(0, net.n_classes, N)
    Xt = torch.from_numpy(np.ascontiguousarray(X.transpose(3, 0, 1, 2)))  # (N, 3, 32, 32)
    yt = torch.from_numpy(y.astype(np.int64))
    model = torch_cnn(torch, net, theta)

    ok, check = check_same(torch, model, net, theta, X, y, Xt, yt)
    print(f"same loss: penaltyprop {check['loss_penaltyprop']:.7f}, torch "
          f"{check['loss_torch']:.7f} (rel. err {check['loss_rel_err']:.1e}); gradient rel. err "
          f"per layer (W, b): " + ", ".join(f"({a:.1e}, {b:.1e})" for a, b in check["grad_rel_err"]))
    if not ok:
        print(f"FAILED: the two differ by more than float32 rounding (loss {LOSS_RTOL:g}, "
              f"gradient {GRAD_RTOL:g})")
        return 1

    methods = {"BackProp": pp.BackProp(),
               "exact": pp.ProxProp(solver="exact", tau_theta=1.0),
               "CG-3": pp.ProxProp(solver="cg", cg_iterations=3, tau_theta=1.0)}

    def step(mode):
        if mode == "torch":
            return torch_step(torch, model, Xt, yt)
        return methods[mode].direction(net, theta, X, y, check=False)

    times = {m: [] for m in args.modes}
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for r in range(args.repetitions + 1):  # round 0 warms up and is not kept
        for mode in args.modes:
            t = time.perf_counter()
            step(mode)
            dt = time.perf_counter() - t
            if r:
                times[mode].append(dt)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"CNN of Section 5.3, batch {N}, float32, one step (forward + backward [+ prox]); "
          f"{args.repetitions} interleaved rounds after a warm-up; torch {torch.__version__} "
          f"with {args.threads} threads, numpy {np.__version__}; load average "
          f"{load_start} at start, {load_end} at end")
    print(f"{'mode':<9}{'median ms':>10}{'min':>9}{'max':>9}{'x torch':>9}{'x BP':>7}")
    rows = []
    for m in args.modes:
        row = {"mode": m, "median_s": med[m], "min_s": min(times[m]), "max_s": max(times[m]),
               "times_s": times[m],
               "x_torch": med[m] / med["torch"] if "torch" in med else None,
               "x_backprop": med[m] / med["BackProp"] if "BackProp" in med else None}
        rows.append(row)
        xt = f"{row['x_torch']:9.2f}" if row["x_torch"] is not None else f"{'-':>9}"
        xb = f"{row['x_backprop']:7.2f}" if row["x_backprop"] is not None else f"{'-':>7}"
        print(f"{m:<9}{1e3 * med[m]:10.1f}{1e3 * row['min_s']:9.1f}{1e3 * row['max_s']:9.1f}{xt}{xb}")

    if args.json:
        out = {"benchmark": "cnn_vs_torch", "network": repr(net), "batch": N, "dtype": "float32",
               "repetitions": args.repetitions, "torch_threads": args.threads,
               "versions": {"torch": torch.__version__, "numpy": np.__version__,
                            "python": platform.python_version()},
               "machine": {"processor": platform.processor() or platform.machine(),
                           "cpus": os.cpu_count(), "load_average_start": load_start,
                           "load_average_end": load_end},
               "check": check, "modes": rows}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
