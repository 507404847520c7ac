"""``penaltyprop train``: one training run, every setting on a flag."""
from __future__ import annotations

from .. import optim
from ..data import DATASETS, MissingDataError, load_dataset
from ..fsutil import check_output_files, check_writable_dir
from ..methods import METHODS
from ..model_spec import build_model
from ..nonlinearities import ACTIVATIONS
from ..train import CHECKPOINT, DTYPES, HISTORY, format_epoch, train
from .common import (
    add_download_flag,
    add_progress_flag,
    add_threads_flag,
    blas_threads,
    data_hint,
    describe_data,
    nonneg_float,
    nonneg_int,
    path,
    positive_float,
    positive_int,
    say,
)
from .method_flags import add_method_flags, method_from_args

#: default MLP per data set: the paper's for CIFAR-10, small ones elsewhere
DEFAULT_MODEL = {"digits": "64-100-100-10", "mnist": "784-1000-1000-10",
                 "cifar10": "3072-4000-1000-4000-10"}
DEFAULT_BATCH_SIZE = {"digits": 100, "mnist": 500, "cifar10": 500}  # the paper: 500
DEFAULT_EPOCHS = {"digits": 30, "mnist": 50, "cifar10": 50}  # the paper: 50
#: how a plot's title names each CNN (an MLP is named by its widths)
CNN_TITLES = {"cnn": "CNN (Section 5.3)", "cnn-authors": "CNN (the authors' code)"}
#: the plot ``--out`` gets beside the run's history and checkpoint
PLOT = "training.png"
#: tau with ``--optimizer adam`` for a method whose own optimizer is another (Section 5.3);
#: a method's own optimizer and tau are its ``default_optimizer`` and ``default_tau``
ADAM_TAU = 1e-3


def method_defaults() -> str:
    """``"backprop: nesterov, tau 0.05; ..."``: each registered oracle method's own optimizer
    and step size tau, as the method declares them (``default_optimizer``, ``default_tau``)."""
    return "; ".join(f"{name}: {cls.default_optimizer}, tau {cls.default_tau:g}"
                     for name, cls in METHODS.items()
                     if cls.kind == "oracle" and cls.default_tau is not None)


def add(subparsers):
    p = subparsers.add_parser(
        "train", help="one training run, every setting on a flag",
        description="Train an MLP (or the CNN) with a training method: an oracle method's "
                    "directions and a first-order optimizer, or a lifted method's full-batch "
                    "sweeps; print one line per epoch and a summary. With --out, write "
                    "history.json, training.png and checkpoint.npz there after every epoch "
                    "(--resume continues from it). Defaults follow the paper: Nesterov "
                    "momentum 0.95, minibatches of 500, and each method's own optimizer and "
                    f"step size tau ({method_defaults()}); tau = {ADAM_TAU:g} with Adam "
                    "(Section 5.3) for the others. A method's own settings take its defaults.")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="digits (shipped, default), cifar10 (the paper's) or mnist")
    g.add_argument("--data-dir", type=path,
                   help="folder holding the extracted data set (default: the package's cache, "
                        "or $PENALTYPROP_DATA_DIR)")
    add_download_flag(g)
    g.add_argument("--subset", type=positive_int,
                   help="use the first N training samples (and proportionally fewer "
                        "validation and test samples)")
    g = p.add_argument_group("model")
    g.add_argument("--model",
                   help="layer widths such as 3072-4000-1000-4000-10, 'mlp' (the paper's), or "
                        "'cnn' (the paper's CNN, Section 5.3), 'cnn-authors' (the CNN of the "
                        "authors' code: no third pooling, FC 1280 -> 10); default: " + ", ".join(
                            f"{k} {v}" for k, v in DEFAULT_MODEL.items()))
    g.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu",
                   help="nonlinearity sigma of the hidden layers (default relu)")
    add_method_flags(p.add_argument_group("method"))
    g = p.add_argument_group("optimizer")
    g.add_argument("--tau", type=positive_float,
                   help="step size tau = the optimizer's learning rate (default: the method's "
                        f"own with its optimizer, see --method NAME --help; else {ADAM_TAU:g} "
                        "with adam)")
    g.add_argument("--optimizer", choices=optim.OPTIMIZERS,
                   help="sgd, nesterov (SGD with Nesterov momentum) or adam (default: the "
                        "method's own, see --method NAME --help; oracle methods only: a "
                        "lifted method trains by full-batch sweeps)")
    g.add_argument("--momentum", type=nonneg_float,
                   help="momentum mu (default 0.95 for nesterov, 0 for sgd; not for adam)")
    g.add_argument("--weight-decay", type=nonneg_float, default=0.0,
                   help="L2 weight decay lambda (default 0)")
    g.add_argument("--batch-size", type=positive_int,
                   help="minibatch size (default 500; 100 for digits; oracle methods)")
    g.add_argument("--epochs", type=positive_int,
                   help="number of epochs, in total when resuming (default 50; 30 for digits)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    g.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="floating type of data and parameters (default float32)")
    g.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                   help="numpy (CPU, default) or cupy (NVIDIA GPU)")
    g.add_argument("--out", type=path,
                   help="folder for history.json, training.png and checkpoint.npz")
    g.add_argument("--resume", action="store_true",
                   help="continue the run checkpointed in --out")
    add_progress_flag(g)
    add_threads_flag(g, default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    method, tau = settings(args)
    lifted = method.kind == "lifted"
    if args.out is not None:  # before the data and the long work: a file, read-only, full disk
        check_writable_dir(args.out, "--out", create=False)
        check_output_files(args.out, (CHECKPOINT, HISTORY, PLOT), "--out")
    try:
        ds = load_dataset(args.dataset, data_dir=args.data_dir, subset=args.subset,
                          dtype=args.dtype, download=args.download)
    except MissingDataError as err:  # one line, with what to do on the command line
        raise MissingDataError(f"{err}{data_hint(args)}") from None
    try:
        net, model = build_model(args.model or DEFAULT_MODEL[args.dataset], ds, args.activation)
    except ValueError as err:  # "model ..." names the flag
        raise ValueError(f"--{err}") from None
    method.check_net(net)  # before any output: "method 'x' trains ... only; layer 1 is ..."
    epochs = args.epochs or DEFAULT_EPOCHS[args.dataset]
    batch_size = len(ds.y_train) if lifted else args.batch_size or DEFAULT_BATCH_SIZE[args.dataset]
    if batch_size > len(ds.y_train):
        raise ValueError(f"--batch-size {batch_size} is larger than the training set "
                         f"({len(ds.y_train)} samples of {ds.name})")
    opt = None if lifted else optim.make_optimizer(args.optimizer, tau,
                                                   momentum=args.momentum,
                                                   weight_decay=args.weight_decay)
    say(f"train: {model} on {describe_data(ds)}")
    steps = "full-batch sweeps" if lifted else f"{opt!r}, batch {batch_size}"
    say(f"       {method.describe()}; {steps}, {epochs} {'sweeps' if lifted else 'epochs'}, "
        f"seed {args.seed}, {args.dtype} on {args.backend}")
    with blas_threads(args.blas_threads):
        result = train(net, ds, opt, method, batch_size=batch_size, epochs=epochs,
                       seed=args.seed, dtype=args.dtype, backend=args.backend,
                       out_dir=args.out, resume=args.resume, progress=args.progress,
                       on_epoch=lambda record: say(format_epoch(record)))
    h = result.history
    if h["diverged"]:
        say(f"diverged in epoch {h['diverged_epoch']} ({h['diverged_reason']})")
    else:
        say(f"final: train loss {h['train_loss'][-1]:.4g}, val acc "
            f"{100 * h['val_acc'][-1]:.2f}%, test loss {h['test_loss']:.4g}, test acc "
            f"{100 * h['test_acc']:.2f}%, training time {h['time'][-1]:.3g} s "
            f"({h['time'][-1] / max(1, len(h['epoch']) - 1):.3g} s per epoch)")
    if args.out is not None:
        from ..plotting import save_histories_plot

        label, title = plot_text(method, tau, args.model or DEFAULT_MODEL[args.dataset], model,
                                 ds.name, steps)
        png = save_histories_plot({label: h}, args.out / PLOT, title=title)
        say(f"wrote {args.out / 'history.json'}, {png} and {args.out / 'checkpoint.npz'}")
    return 0


def plot_text(method, tau, model, description, data_name, steps):
    """``(legend label, title)`` of ``training.png``.

    The curve is named by the method and its step size tau; the title names the model in
    short (an MLP by its widths, the CNN by which one it is: its full description is in the
    run's config), the data set and how the run steps.

    Parameters
    ----------
    method : Method
        The method object.
    tau : float or None
        The step size (None for a lifted method).
    model : str
        The model string (``"64-100-10"``, ``"cnn"``, ...).
    description : str
        The one line :func:`~penaltyprop.model_spec.build_model` gave for it.
    data_name : str
        The data set's name.
    steps : str
        The optimizer and batch, or "full-batch sweeps".
    """
    label = method.label if tau is None else f"{method.label}, tau = {tau:g}"
    short = CNN_TITLES.get(model, description)
    return label, f"{short} on {data_name}: {steps}"


def settings(args):
    """``(method, tau)`` from the flags of ``train``; inconsistent flags raise ValueError.

    tau is None for a lifted method (it has no optimizer: one epoch is one full-batch sweep).
    """
    method = method_from_args(args)
    if args.resume and args.out is None:  # for every kind of method
        raise ValueError("--resume needs --out, the folder of the run to continue")
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise ValueError(f"--data-dir {args.data_dir} is not a folder")
    if method.kind == "lifted":
        for name in ("tau", "optimizer", "momentum", "batch_size"):
            if getattr(args, name) is not None:
                raise ValueError(f"--{name.replace('_', '-')} does not apply to --method "
                                 f"{method.name}: a lifted method trains by full-batch sweeps, "
                                 f"without an optimizer")
        if args.weight_decay:
            raise ValueError(f"--weight-decay does not apply to --method {method.name}: a "
                             f"lifted method trains by full-batch sweeps, without an optimizer")
        return method, None
    args.optimizer = args.optimizer or method.default_optimizer
    if args.momentum is not None and args.optimizer == "adam":
        raise ValueError("--momentum only applies to --optimizer sgd or nesterov")
    if args.momentum == 0 and args.optimizer == "nesterov":
        raise ValueError("--optimizer nesterov needs --momentum > 0 (or use --optimizer sgd)")
    if args.momentum is not None and not args.momentum < 1:
        raise ValueError(f"--momentum must be < 1, got {args.momentum:g}")
    if args.tau is not None:
        return method, args.tau
    momentum = ("sgd", "nesterov")
    if method.default_tau is not None and (args.optimizer == method.default_optimizer or (
            args.optimizer in momentum and method.default_optimizer in momentum)):
        return method, method.default_tau
    if args.optimizer == "adam":
        return method, ADAM_TAU
    raise ValueError(f"--tau has no default for --method {method.name} with --optimizer "
                     f"{args.optimizer}; give one")
