"""``penaltyprop demo``: BackProp against ProxProp (exact and CG-3) on the shipped digits."""
from __future__ import annotations

import json
import time
from pathlib import Path

import penaltyprop as pp

from .. import optim
from ..data import load_dataset
from ..fsutil import atomic_write_text, check_output_files, check_writable_dir
from ..model_spec import build_model
from ..train import train
from .common import (
    add_progress_flag,
    add_threads_flag,
    blas_threads,
    describe_data,
    nonneg_int,
    path,
    positive_int,
    say,
)

#: The demo's runs: label, method, learning rate tau. Nesterov momentum 0.95 as in the
#: paper's Fig. 2; tau tuned on the validation set by a small grid (BackProp tau in
#: {0.01, ..., 0.2}; ProxProp tau in {0.5, 1, 2} x tau_theta in {0.05, 0.2, 1}).
DEMO_RUNS = (
    ("BackProp", pp.BackProp(), 0.1),
    ("ProxProp (exact)", pp.ProxProp(tau_theta=0.2, solver="exact"), 1.0),
    ("ProxProp (CG-3)", pp.ProxProp(tau_theta=0.2, solver="cg", cg_iterations=3), 1.0),
    ("BackProp, tau = 1", pp.BackProp(), 1.0),
)
DEMO_MODEL = "64-100-100-10"


def add(subparsers):
    p = subparsers.add_parser(
        "demo", help="BackProp vs ProxProp on the shipped digits (offline, a few seconds)",
        description="Train the MLP 64-100-100-10 (ReLU) on the shipped UCI digits with "
                    "BackProp and with ProxProp (exact prox and 3 CG iterations), same "
                    "epochs, minibatches and optimizer (Nesterov momentum 0.95), plus "
                    "BackProp at ProxProp's step size tau = 1 to show the stability of "
                    "implicit steps (Section 5.2). Prints a table and saves a plot of the "
                    "training loss per epoch.")
    p.add_argument("--epochs", type=positive_int, default=30, help="epochs per run (default 30)")
    p.add_argument("--batch-size", type=positive_int, default=100,
                   help="minibatch size (default 100)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=path, default=Path("runs/demo"),
                   help="folder for demo.png and results.json (default runs/demo)")
    add_progress_flag(p)
    add_threads_flag(p, default=1)
    p.set_defaults(func=run)


def run(args) -> int:
    check_writable_dir(args.out, "--out", create=False)  # before the runs, not after them
    check_output_files(args.out, ("demo.png", "results.json"), "--out")
    ds = load_dataset("digits")
    net, model = build_model(DEMO_MODEL, ds)
    say(f"demo: {model} on {describe_data(ds)}; {args.epochs} epochs, minibatches of "
        f"{args.batch_size}, Nesterov momentum 0.95")
    histories, rows = {}, []
    for label, method, tau in DEMO_RUNS:
        opt = optim.sgd(tau, momentum=0.95, nesterov=True)
        t0 = time.perf_counter()
        with blas_threads(args.blas_threads):
            result = train(net, ds, opt, method, batch_size=args.batch_size,
                           epochs=args.epochs, seed=args.seed, progress=args.progress)
        wall = time.perf_counter() - t0
        h = result.history
        histories[label] = h
        settings = ", ".join([f"tau={tau:g}", *(f"{k}={v:g}" for k, v in
                                                 method.get_params().items() if k == "tau_theta")])
        rows.append((label, settings, h, wall))
        say(f"  {label:<20} done in {wall:5.1f} s")
    say()
    say(table(rows))
    out = Path(args.out)
    from ..plotting import save_histories_plot

    png = save_histories_plot(histories, out / "demo.png",
                              title=f"digits, MLP {DEMO_MODEL}, Nesterov 0.95, "
                                    f"batch {args.batch_size}")
    atomic_write_text(out / "results.json", json.dumps(
        {label: {"settings": s, "history": h, "wall_time": w} for label, s, h, w in rows},
        indent=1))
    say(f"\nwrote {png} (training loss per epoch and per second, validation accuracy) "
        f"and {out / 'results.json'}")
    return 0


def table(rows) -> str:
    """The demo's table: one row per run, final loss and accuracies, or where it diverged."""
    head = (f"{'method':<20} {'settings':<24} {'train loss':>10} {'val acc':>8} "
            f"{'test acc':>8} {'train time':>10}")
    lines = [head, "-" * len(head)]
    for label, settings, h, _ in rows:
        if h["diverged"]:
            lines.append(f"{label:<20} {settings:<24} {'-':>10} {'-':>8} {'-':>8} "
                         f"{h['time'][-1]:>9.2f}s   diverged in epoch {h['diverged_epoch']}")
        else:
            lines.append(f"{label:<20} {settings:<24} {h['train_loss'][-1]:>10.2e} "
                         f"{100 * h['val_acc'][-1]:>7.1f}% {100 * h['test_acc']:>7.1f}% "
                         f"{h['time'][-1]:>9.2f}s")
    return "\n".join(lines)
