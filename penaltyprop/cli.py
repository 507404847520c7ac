"""The command line: ``python -m penaltyprop COMMAND ...`` (or ``penaltyprop COMMAND``).

Commands:

* ``demo``: offline, on the shipped digits: BackProp against ProxProp (exact and CG-3) on the
  same MLP and budget; prints a table and saves a plot.
* ``train``: one training run with every setting on a flag.

Adding a command: write ``add_NAME(subparsers)``, which creates its parser (with ``help=``
and a ``description``) and calls ``set_defaults(func=cmd_NAME)``, and ``cmd_NAME(args) -> int``;
then list ``add_NAME`` in :data:`COMMANDS`. Bad input anywhere raises ValueError (data
problems raise :class:`penaltyprop.data.DataError`, a ValueError); :func:`main` turns it into
one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from . import optim
from .data import DATASETS, load_dataset
from .network import mlp
from .nonlinearities import ACTIVATIONS
from .prox import CG_VARIANTS
from .train import format_epoch, train

#: default MLP per data set: the paper's for CIFAR-10, small ones elsewhere
DEFAULT_MODEL = {"digits": "64-100-100-10", "mnist": "784-1000-1000-10",
                 "cifar10": "3072-4000-1000-4000-10"}
DEFAULT_BATCH_SIZE = {"digits": 100, "mnist": 500, "cifar10": 500}  # the paper: 500
DEFAULT_EPOCHS = {"digits": 30, "mnist": 50, "cifar10": 50}  # the paper: 50


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block): ``prog: error: ...``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind, minimum, strict):
    """An argparse type: a finite ``kind`` (int or float) > minimum (strict) or >= minimum."""
    relation = ">" if strict else ">="

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value != value or abs(value) == float("inf") \
                or (value <= minimum if strict else value < minimum):
            what = "an integer" if kind is int else "a finite number"
            raise argparse.ArgumentTypeError(f"must be {what} {relation} {minimum}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__} {relation} {minimum}"  # argparse's "invalid ... value"
    return parse


_positive_float = _number(float, 0, strict=True)
_nonneg_float = _number(float, 0, strict=False)
_positive_int = _number(int, 1, strict=False)
_nonneg_int = _number(int, 0, strict=False)


def blas_threads(n):
    """Context manager limiting NumPy's and SciPy's BLAS to ``n`` threads (None: no limit).

    Uses ``threadpoolctl``; without it, a no-op. Small matrices (the demo's are at most
    100 x 100) gain nothing from BLAS threads, and on a busy machine waiting for them
    costs far more than the products themselves. Results do not depend on it.
    """
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _add_threads_flag(parser, default):
    parser.add_argument("--blas-threads", type=_positive_int, default=default,
                        help="threads for NumPy's and SciPy's BLAS (needs threadpoolctl; "
                             + ("default 1: the demo's matrices are too small to gain from "
                                "more" if default else "default: the library's own") + ")")


def _say(line=""):
    """Print a line to stdout without breaking a tqdm progress bar."""
    tqdm.write(line, file=sys.stdout)


# --------------------------------------------------------------------------- demo
#: The demo's runs: label, algorithm, learning rate tau, prox options. Nesterov momentum 0.95
#: as in the paper's Fig. 2; tau tuned on the validation set by a small grid (BackProp
#: tau in {0.01, ..., 0.2}; ProxProp tau in {0.5, 1, 2} x tau_theta in {0.05, 0.2, 1}).
DEMO_RUNS = (
    ("BackProp", "backprop", 0.1, {}),
    ("ProxProp (exact)", "proxprop", 1.0, {"solver": "exact", "tau_theta": 0.2}),
    ("ProxProp (CG-3)", "proxprop", 1.0, {"solver": "cg", "cg_iterations": 3, "tau_theta": 0.2}),
    ("BackProp, tau = 1", "backprop", 1.0, {}),
)
DEMO_SIZES = (64, 100, 100, 10)


def add_demo(subparsers):
    p = subparsers.add_parser(
        "demo", help="BackProp vs ProxProp on the shipped digits (offline, ~10 s)",
        description="Train the MLP 64-100-100-10 (ReLU) on the shipped UCI digits with "
                    "BackProp and with ProxProp (exact prox and 3 CG iterations), same "
                    "epochs, minibatches and optimizer (Nesterov momentum 0.95), plus "
                    "BackProp at ProxProp's step size tau = 1 to show the stability of "
                    "implicit steps (Section 5.2). Prints a table and saves a plot of the "
                    "training loss per epoch.")
    p.add_argument("--epochs", type=_positive_int, default=30, help="epochs per run (default 30)")
    p.add_argument("--batch-size", type=_positive_int, default=100,
                   help="minibatch size (default 100)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"),
                   help="folder for demo.png and results.json (default runs/demo)")
    _add_progress_flag(p)
    _add_threads_flag(p, default=1)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    ds = load_dataset("digits")
    net = mlp(list(DEMO_SIZES), activation="relu")
    _say(f"demo: MLP {'-'.join(map(str, DEMO_SIZES))} (ReLU) on {_describe_data(ds)}; "
         f"{args.epochs} epochs, minibatches of {args.batch_size}, Nesterov momentum 0.95")
    histories, rows = {}, []
    for label, algorithm, tau, prox in DEMO_RUNS:
        opt = optim.sgd(tau, momentum=0.95, nesterov=True)
        t0 = time.perf_counter()
        with blas_threads(args.blas_threads):
            result = train(net, ds, opt, algorithm=algorithm, **prox,
                           batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                           progress=args.progress)
        wall = time.perf_counter() - t0
        h = result.history
        histories[label] = h
        settings = f"tau={tau:g}" + (f", tau_theta={prox['tau_theta']:g}" if prox else "")
        rows.append((label, settings, h, wall))
        _say(f"  {label:<20} done in {wall:5.1f} s")
    _say()
    _say(_demo_table(rows))
    out = Path(args.out)
    from .plotting import save_histories_plot

    png = save_histories_plot(histories, out / "demo.png",
                              title=f"digits, MLP {'-'.join(map(str, DEMO_SIZES))}, "
                                    f"Nesterov 0.95, batch {args.batch_size}")
    (out / "results.json").write_text(json.dumps(
        {label: {"settings": s, "history": h, "wall_time": w} for label, s, h, w in rows},
        indent=1))
    _say(f"\nwrote {png} (training loss per epoch and per second, validation accuracy) "
         f"and {out / 'results.json'}")
    return 0


def _demo_table(rows) -> str:
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


# --------------------------------------------------------------------------- train
def add_train(subparsers):
    p = subparsers.add_parser(
        "train", help="one training run, every setting on a flag",
        description="Train an MLP (or the CNN) with BackProp or ProxProp directions and a "
                    "first-order optimizer; print one line per epoch and a summary. With "
                    "--out, write history.json, training.png and checkpoint.npz there after "
                    "every epoch (--resume continues from it). Defaults follow the paper: "
                    "Nesterov momentum 0.95, minibatches of 500, tau = 0.05 for BackProp and "
                    "tau = 1 for ProxProp (Section 5.1), tau = 1e-3 with Adam (Section 5.3).")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="digits (shipped, default), cifar10 (the paper's) or mnist")
    g.add_argument("--data-dir", type=Path,
                   help="folder holding the extracted data set (default: the package's cache, "
                        "or $PENALTYPROP_DATA_DIR)")
    g.add_argument("--no-download", dest="download", action="store_false",
                   help="fail instead of downloading a missing data set")
    g.add_argument("--subset", type=_positive_int,
                   help="use the first N training samples (and proportionally fewer "
                        "validation and test samples)")
    g = p.add_argument_group("model")
    g.add_argument("--model",
                   help="layer widths such as 3072-4000-1000-4000-10, or 'cnn' (the paper's "
                        "CNN, Section 5.3); default: " + ", ".join(
                            f"{k} {v}" for k, v in DEFAULT_MODEL.items()))
    g.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu",
                   help="nonlinearity sigma of the hidden layers (default relu)")
    g = p.add_argument_group("algorithm")
    g.add_argument("--algorithm", choices=("backprop", "proxprop"), default="backprop",
                   help="direction oracle: grad J, or the ProxProp direction (default backprop)")
    g.add_argument("--solver", choices=("exact", "cg"),
                   help="prox solver for proxprop: exact (Eq. 44) or cg (default cg)")
    g.add_argument("--cg-iterations", type=_positive_int,
                   help="CG iterations per layer and step (solver cg; default 3)")
    g.add_argument("--cg-variant", choices=CG_VARIANTS,
                   help="textbook CG (default) or the variant of the authors' code")
    g.add_argument("--tau", type=_positive_float,
                   help="step size tau = the optimizer's learning rate (default 0.05 for "
                        "backprop, 1 for proxprop, 1e-3 with adam)")
    g.add_argument("--tau-theta", type=_positive_float,
                   help="prox step size tau_theta of Eq. 11 (default 0.05 with solver exact, "
                        "as in Fig. 2; 1 with cg, the paper's choice from Section 5.2 on)")
    g = p.add_argument_group("optimizer")
    g.add_argument("--optimizer", choices=optim.OPTIMIZERS, default="nesterov",
                   help="sgd, nesterov (SGD with Nesterov momentum; default) or adam")
    g.add_argument("--momentum", type=_nonneg_float,
                   help="momentum mu (default 0.95 for nesterov, 0 for sgd; not for adam)")
    g.add_argument("--weight-decay", type=_nonneg_float, default=0.0,
                   help="L2 weight decay lambda (default 0)")
    g.add_argument("--batch-size", type=_positive_int,
                   help="minibatch size (default 500; 100 for digits)")
    g.add_argument("--epochs", type=_positive_int,
                   help="number of epochs, in total when resuming (default 50; 30 for digits)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating type of data and parameters (default float32)")
    g.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                   help="numpy (CPU, default) or cupy (NVIDIA GPU)")
    g.add_argument("--out", type=Path,
                   help="folder for history.json, training.png and checkpoint.npz")
    g.add_argument("--resume", action="store_true",
                   help="continue the run checkpointed in --out")
    _add_progress_flag(g)
    _add_threads_flag(g, default=None)
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    settings = train_settings(args)
    ds = load_dataset(args.dataset, data_dir=args.data_dir, subset=args.subset,
                      dtype=args.dtype, download=args.download)
    net, model = build_model(args.model or DEFAULT_MODEL[args.dataset], ds, args.activation)
    epochs = args.epochs or DEFAULT_EPOCHS[args.dataset]
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE[args.dataset]
    if batch_size > len(ds.y_train):
        raise ValueError(f"--batch-size {batch_size} is larger than the training set "
                         f"({len(ds.y_train)} samples of {ds.name})")
    opt = optim.make_optimizer(args.optimizer, settings.pop("tau"), momentum=args.momentum,
                               weight_decay=args.weight_decay)
    _say(f"train: {model} on {_describe_data(ds)}")
    _say(f"       {_describe_algorithm(args.algorithm, settings)}, {opt!r}, batch {batch_size}, "
         f"{epochs} epochs, seed {args.seed}, {args.dtype} on {args.backend}")
    with blas_threads(args.blas_threads):
        result = train(net, ds, opt, algorithm=args.algorithm, **settings,
                       batch_size=batch_size, epochs=epochs, seed=args.seed, dtype=args.dtype,
                       backend=args.backend, out_dir=args.out, resume=args.resume,
                       progress=args.progress, on_epoch=lambda record: _say(format_epoch(record)))
    h = result.history
    if h["diverged"]:
        _say(f"diverged in epoch {h['diverged_epoch']} ({h['diverged_reason']})")
    else:
        _say(f"final: train loss {h['train_loss'][-1]:.4g}, val acc "
             f"{100 * h['val_acc'][-1]:.2f}%, test loss {h['test_loss']:.4g}, test acc "
             f"{100 * h['test_acc']:.2f}%, training time {h['time'][-1]:.3g} s "
             f"({h['time'][-1] / max(1, len(h['epoch']) - 1):.3g} s per epoch)")
    if args.out is not None:
        from .plotting import save_histories_plot

        png = save_histories_plot({model: h}, args.out / "training.png")
        _say(f"wrote {args.out / 'history.json'}, {png} and {args.out / 'checkpoint.npz'}")
    return 0


def train_settings(args) -> dict:
    """The algorithm settings of ``train`` from its flags; inconsistent flags raise ValueError."""
    if args.algorithm == "backprop":
        for flag in ("solver", "cg_iterations", "cg_variant", "tau_theta"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} only applies to "
                                 f"--algorithm proxprop")
    solver = args.solver or "cg"
    if args.algorithm == "proxprop" and solver != "cg":
        for flag in ("cg_iterations", "cg_variant"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} only applies to --solver cg")
    if args.momentum is not None and args.optimizer == "adam":
        raise ValueError("--momentum only applies to --optimizer sgd or nesterov")
    if args.momentum == 0 and args.optimizer == "nesterov":
        raise ValueError("--optimizer nesterov needs --momentum > 0 (or use --optimizer sgd)")
    if args.momentum is not None and not args.momentum < 1:
        raise ValueError(f"--momentum must be < 1, got {args.momentum:g}")
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out, the folder of the run to continue")
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise ValueError(f"--data-dir {args.data_dir} is not a folder")
    if args.optimizer == "adam":
        tau = 1e-3
    else:
        tau = 0.05 if args.algorithm == "backprop" else 1.0
    settings = {"tau": args.tau if args.tau is not None else tau}
    if args.algorithm == "proxprop":
        settings["solver"] = solver
        settings["tau_theta"] = args.tau_theta or (0.05 if solver == "exact" else 1.0)
        if solver == "cg":
            settings["cg_iterations"] = args.cg_iterations or 3
            settings["cg_variant"] = args.cg_variant or "textbook"
    return settings


def build_model(spec, ds, activation):
    """The network for ``--model`` (widths ``n0-n1-...-C``, or ``cnn``): ``(net, description)``."""
    if spec == "cnn":
        try:
            from .conv import cnn
        except ImportError as err:
            raise ValueError(f"--model cnn needs penaltyprop.cnn, which is missing ({err})") \
                from None
        # The paper's three conv blocks where 2x2 pooling can halve the image three times
        # (CIFAR-10: 32 -> 16 -> 8 -> 4); fewer for other sizes (MNIST: 28 -> 14 -> 7, two).
        _, H, W = ds.image_shape
        blocks = 0
        while blocks < 3 and H % 2 == 0 and W % 2 == 0:
            blocks, H, W = blocks + 1, H // 2, W // 2
        if blocks == 0:
            raise ValueError(f"--model cnn needs even image sizes for 2x2 pooling, "
                             f"{ds.name} has {ds.image_shape}")
        net = cnn(in_shape=tuple(ds.image_shape), channels=(16, 20, 20)[:blocks],
                  n_classes=ds.n_classes, activation=activation)
        return net, f"CNN {net!r}"
    try:
        sizes = [int(n) for n in spec.split("-")]
    except ValueError:
        raise ValueError(f"--model must be 'cnn' or layer widths such as 64-100-10, "
                         f"got {spec!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"--model needs at least two positive widths, got {spec!r}")
    if sizes[0] != ds.n_features or sizes[-1] != ds.n_classes:
        raise ValueError(f"--model {spec} must start with {ds.name}'s {ds.n_features} input "
                         f"features and end with its {ds.n_classes} classes")
    return mlp(sizes, activation=activation), f"MLP {spec} ({activation})"


def _describe_data(ds) -> str:
    return (f"{ds.name} ({len(ds.y_train)} train / {len(ds.y_val)} val / {len(ds.y_test)} "
            f"test samples)")


def _describe_algorithm(algorithm, settings) -> str:
    if algorithm == "backprop":
        return "BackProp (grad J)"
    text = f"ProxProp ({settings['solver']}"
    if settings["solver"] == "cg":
        text += f", {settings['cg_iterations']} iterations, {settings['cg_variant']}"
    return text + f", tau_theta={settings['tau_theta']:g})"


def _add_progress_flag(parser):
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: when stderr is a terminal)")


def add_experiment(subparsers):
    from .experiments import add_arguments, run  # matplotlib only when the command exists

    p = subparsers.add_parser(
        "experiment", help="rerun a paper experiment: figure2, table1, figure3, conditioning",
        description="Rerun one of the paper's experiments (Section 4.1, Section 5) at the "
                    "paper's scale (GPU, hours), a small scale (CPU, minutes) or a tiny "
                    "synthetic one (seconds). Writes results.json, a PNG figure and a "
                    "Markdown table; a rerun skips finished configurations. See "
                    "docs/reproduction.md.")
    add_arguments(p)
    p.set_defaults(func=run)


def add_bench(subparsers):
    from .bench import add_arguments, run

    p = subparsers.add_parser(
        "bench", help="time one training step: BackProp, exact ProxProp, CG-k vs the GEMM peak",
        description="Time one training step (forward, direction, SGD update) of BackProp, "
                    "exact ProxProp and CG-k against the machine's own GEMM throughput for "
                    "the same layer shapes; print a table, optionally write JSON. Defaults: "
                    "the paper's MLP, batch 500, float32. See docs/performance.md.")
    add_arguments(p)
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- main
#: one ``add_NAME(subparsers)`` per command, in the order ``--help`` lists them
COMMANDS = [add_demo, add_train, add_experiment, add_bench]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="penaltyprop",
                     description="Proximal Backpropagation (Frerix et al., ICLR 2018) in "
                                 "NumPy/CuPy. Run 'penaltyprop COMMAND --help' for a command's "
                                 "options.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted).

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error, already printed (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # bad settings, data errors (DataError), divergence-free failures
        message = " ".join(str(err).split())  # one line
        print(f"penaltyprop {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"penaltyprop {args.command}: interrupted", file=sys.stderr)
        return 130
