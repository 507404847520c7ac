r"""The training loop: shuffled minibatches, a direction oracle, an optimizer, the paper's curves.

One step on a minibatch (X_b, y_b) asks an oracle for a direction and hands it to an optimizer
(Section 5.3, DESIGN.md decision 2):

* ``algorithm="backprop"``: :math:`d = \nabla J(\theta; X_b, y_b)` (classical backpropagation,
  equivalently Algorithm 1 by Proposition 1);
* ``algorithm="proxprop"``: :math:`d = (\theta^k - \theta^{k+1})/\tau` of Algorithm 2, the prox
  step of Eq. 11 solved ``"exact"`` (Eq. 44) or by ``"cg"`` with k iterations;

then ``theta, state = optimizer.update(theta, d, state)``. The optimizer's learning rate is the
paper's :math:`\tau`.

After every epoch the run records what the paper plots (Figs. 2, 3; Table 1): the full-batch
training loss and accuracy, the validation loss and accuracy, the epoch's training time (the
evaluation is timed separately) and the cumulative training time; the test loss and accuracy
at the end. A non-finite loss ends the run as *diverged* (DESIGN.md decision 8; Table 1's "-"),
without raising.

Reproducibility: the initial parameters come from ``net.init(seed)`` and the minibatch order
from a host generator seeded with ``(seed, 1)``, so the same seed, data and settings give
bit-identical results on the CPU; a run resumed from a checkpoint continues to exactly the
result of an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .algorithms import SOLVERS, _check_prox_options, _proxprop_direction
from .backend import (array_module, get_backend, host_rng, rng_state, set_rng_state, to_device,
                      to_float)
from .backend import numpy as np
from .checks import check_choice, check_int, check_labels, check_problem, check_X
from .checkpoint import load_checkpoint, save_checkpoint
from .data import batch_last
from .forward import _gradient, logits
from .losses import cross_entropy

ALGORITHMS = ("backprop", "proxprop")
DTYPES = ("float32", "float64")
CHECKPOINT = "checkpoint.npz"
HISTORY = "history.json"
#: the per-epoch lists of a history, in the order :func:`format_epoch` prints them
SERIES = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "batch_loss",
          "epoch_time", "eval_time", "time")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    theta : list of (W, b) pairs, the final parameters (on the run's backend).
    opt_state : :class:`penaltyprop.optim.OptState`, the optimizer's final state.
    history : dict
        Per-epoch lists (index 0 is the initial evaluation, before any step): ``epoch``,
        ``train_loss``, ``train_acc`` (full training set), ``val_loss``, ``val_acc``,
        ``batch_loss`` (mean minibatch loss during the epoch; None at epoch 0),
        ``epoch_time`` (seconds of training), ``eval_time`` (seconds of evaluation),
        ``time`` (cumulative training seconds). Scalars: ``test_loss``, ``test_acc``
        (after the last epoch; None if diverged), ``diverged`` (bool), ``diverged_epoch``
        (int or None), ``diverged_reason`` (str or None: a non-finite loss, or the solver's
        error, such as a Cholesky factorisation that failed on exploded activations),
        ``steps`` (optimizer steps taken).
    config : dict, the run's settings (JSON-able), as stored in checkpoints.
    """

    theta: list
    opt_state: object
    history: dict
    config: dict

    @property
    def diverged(self) -> bool:
        return bool(self.history["diverged"])


def new_history() -> dict:
    """An empty history (see :class:`TrainResult`)."""
    history = {key: [] for key in SERIES}
    history.update(test_loss=None, test_acc=None, diverged=False, diverged_epoch=None,
                   diverged_reason=None, steps=0)
    return history


def evaluate(net, theta, X, y, chunk=5000):
    r"""Mean loss :math:`J(\theta; X, y)` and accuracy over all columns of X, ``chunk`` at a time.

    Parameters
    ----------
    X : (n0, N) or (C, H, W, N) array; y : (N,) labels. Not checked (the loop checked them).
    chunk : int, columns per forward pass (bounds the memory of the activations).

    Returns
    -------
    (loss, accuracy) as host floats; (None, None) for N = 0.
    """
    N = y.shape[0]
    if N == 0:
        return None, None
    total_loss, correct = 0.0, 0
    for s in range(0, N, chunk):
        Xc, yc = X[..., s:s + chunk], y[s:s + chunk]  # (n0, n) view, (n,)
        scores = logits(net, theta, Xc)  # (C, n)
        total_loss = total_loss + cross_entropy(scores, yc) * yc.shape[0]  # stays on the device
        correct = correct + (scores.argmax(axis=0) == yc).sum()
    return to_float(total_loss) / N, to_float(correct) / N  # the only host syncs


def train(net, data, optimizer, *, algorithm="backprop", tau_theta=None, solver=None,
          cg_iterations=None, cg_tol=None, cg_variant=None, exact_system=None,
          batch_size=500, epochs=1, seed=0, dtype="float32", backend="numpy", theta=None,
          out_dir=None, resume=False, progress=None, on_epoch=None, eval_chunk=5000,
          check_every=10) -> TrainResult:
    r"""Train ``net`` on ``data`` with BackProp or ProxProp directions and a first-order optimizer.

    Parameters
    ----------
    net : Network (an MLP, or a CNN when its input shape is the data's (C, H, W)).
    data : :class:`penaltyprop.data.Dataset`
        Samples-first host arrays; moved to the device once, in batch-last layout
        (:func:`penaltyprop.data.batch_last`), cast to ``dtype``.
    optimizer : an optimizer of :mod:`penaltyprop.optim` (its lr is the paper's tau).
    algorithm : ``"backprop"`` or ``"proxprop"``.
    tau_theta : float > 0, prox step size of Eq. 11 (proxprop only; default 1.0, the
        paper's choice for CG from Section 5.1 on; it used 0.05 in Fig. 2).
    solver : ``"exact"`` (Eq. 44), ``"cg"`` (default) or ``"gradient"`` (proxprop only).
    cg_iterations : int >= 1, CG iterations per layer (solver="cg" only; default 3).
    cg_tol, cg_variant : CG's relative tolerance and variant (solver="cg" only), see
        :func:`penaltyprop.proxprop`.
    exact_system : ``"auto"`` (default), ``"primal"`` or ``"batch"`` (solver="exact" only).
    batch_size : int, 1 .. number of training samples. The last minibatch of an epoch
        holds the remainder (all samples are used every epoch).
    epochs : int >= 1, total number of epochs (counting those a resumed run already did).
    seed : int >= 0, for the initial parameters and the minibatch order.
    dtype : ``"float32"`` (default) or ``"float64"``.
    backend : ``"numpy"`` or ``"cupy"``.
    theta : initial parameters (list of (W, b) pairs, on ``backend``, of ``dtype``);
        default ``net.init(seed, dtype, backend)``.
    out_dir : path-like, optional
        Writes ``checkpoint.npz`` and ``history.json`` there after every epoch.
    resume : bool
        Continue the run checkpointed in ``out_dir`` (same settings; ``epochs`` may grow).
    progress : bool or None
        Show a tqdm progress bar (default: when stderr is a terminal).
    on_epoch : callable, optional
        Called as ``on_epoch(record)`` after every evaluation (epoch 0 included) with a dict
        holding one entry of every per-epoch series.
    eval_chunk : int, columns per forward pass in the evaluations.
    check_every : int, minibatch steps between two checks of the loss for divergence
        (each check is a host sync on the GPU; every epoch ends with one).

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        For any bad setting (named), data that do not fit the network, a resume without a
        checkpoint or with different settings, or an ``out_dir`` that already holds a
        checkpoint when ``resume`` is false.
    """
    config = _make_config(net, data, optimizer, algorithm=algorithm, tau_theta=tau_theta,
                          solver=solver, cg_iterations=cg_iterations, cg_tol=cg_tol,
                          cg_variant=cg_variant, exact_system=exact_system,
                          batch_size=batch_size, epochs=epochs, seed=seed, dtype=dtype,
                          backend=backend, eval_chunk=eval_chunk)
    check_every = check_int(check_every, "check_every", 1)
    xp = get_backend(backend)

    # The data, once: device, dtype, batch-last layout; checked once (steps use unchecked code).
    image_shape = tuple(data.image_shape) if len(net.input_shape) == 3 else None

    def to_dev(X, y):
        return batch_last(to_device(X, xp, dtype), image_shape), to_device(y, xp)

    X, y = to_dev(data.X_train, data.y_train)  # (n0, N) or (C, H, W, N); (N,)
    X_val, y_val = to_dev(data.X_val, data.y_val)
    X_test, y_test = to_dev(data.X_test, data.y_test)
    for name, (Xs, ys) in {"X_val": (X_val, y_val), "X_test": (X_test, y_test)}.items():
        check_X(net, Xs, name)
        check_labels(net, ys, Xs.shape[-1], like=Xs)
    N = X.shape[-1]

    # Where the run starts: a checkpoint, given parameters, or net.init.
    rng = host_rng([seed, 1])  # the minibatch order; independent of net.init(seed)'s stream
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume:
        if theta is not None:
            raise ValueError("theta and resume=True exclude each other: a resumed run "
                             "continues from its checkpoint")
        if out_dir is None:
            raise ValueError("resume=True needs the out_dir of the run to continue")
        theta, state, history = _resume(out_dir / CHECKPOINT, config, rng, xp)
    else:
        if out_dir is not None and (out_dir / CHECKPOINT).exists():
            raise ValueError(f"out_dir {out_dir} already holds {CHECKPOINT}: resume it "
                             f"(resume=True, --resume) or choose another out_dir")
        theta = net.init(seed=seed, dtype=dtype, backend=backend) if theta is None else theta
        state = optimizer.init(theta)
        history = new_history()
    check_problem(net, theta, X, y)  # theta's structure, dtype and backend; X and y
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    direction = _oracle(net, config)

    def log(record):
        if on_epoch is not None:
            on_epoch(record)

    def save():
        if out_dir is not None:
            save_checkpoint(out_dir / CHECKPOINT, theta, state, rng_state(rng), history, config)
            _write_json(out_dir / HISTORY, history)

    def record_eval(epoch, batch_loss, epoch_time):
        t0 = time.perf_counter()
        train_loss, train_acc = evaluate(net, theta, X, y, eval_chunk)
        val_loss, val_acc = evaluate(net, theta, X_val, y_val, eval_chunk)
        eval_time = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            return False
        total = (history["time"][-1] if history["time"] else 0.0) + epoch_time
        values = (epoch, train_loss, train_acc, val_loss, val_acc, batch_loss, epoch_time,
                  eval_time, total)
        for key, value in zip(SERIES, values):
            history[key].append(value)
        log({key: history[key][-1] for key in SERIES})
        return True

    if not history["epoch"]:  # epoch 0: the initial parameters
        if not record_eval(0, None, 0.0):
            raise ValueError("the loss of the initial parameters is not finite")
    done = history["epoch"][-1]
    if epochs < done:
        raise ValueError(f"epochs={epochs} but the checkpointed run already did {done} epochs")

    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = tqdm(total=(epochs - done) * -(-N // batch_size) if not history["diverged"] else 0,
               disable=not show, unit="step", leave=False, dynamic_ncols=True)
    # A diverging run overflows on purpose: the loss is checked below, warnings add nothing.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), bar:
        for epoch in range(done + 1, epochs + 1):
            if history["diverged"]:
                break
            bar.set_description(f"epoch {epoch}/{epochs}")
            order = to_device(rng.permutation(N), xp)  # (N,) the epoch's minibatch order
            t0 = time.perf_counter()
            theta, state, batch_loss, reason = _epoch(direction, optimizer, theta, state, X, y,
                                                      order, batch_size, check_every, bar)
            epoch_time = time.perf_counter() - t0
            history["steps"] = state.step
            if reason is None and not math.isfinite(batch_loss):
                reason = "non-finite minibatch loss"
            if reason is None and not record_eval(epoch, batch_loss, epoch_time):
                reason = "non-finite training loss"
            if reason is not None:
                history.update(diverged=True, diverged_epoch=epoch, diverged_reason=reason)
                log({"epoch": epoch, "diverged": True, "reason": reason})
            else:
                bar.set_postfix(loss=f"{history['train_loss'][-1]:.4g}",
                                val_acc=f"{history['val_acc'][-1]:.3f}")
            if epoch == epochs and not history["diverged"]:
                history["test_loss"], history["test_acc"] = evaluate(
                    net, theta, X_test, y_test, eval_chunk)
            save()
    if not history["diverged"] and history["test_loss"] is None:  # epochs == done on resume
        history["test_loss"], history["test_acc"] = evaluate(net, theta, X_test, y_test,
                                                             eval_chunk)
    return TrainResult(theta, state, history, config)


def _epoch(direction, optimizer, theta, state, X, y, order, batch_size, check_every, bar):
    """One pass over the minibatches ``order[s : s + batch_size]``.

    Returns ``(theta, state, mean minibatch loss, reason)``; ``reason`` is None, or why the
    epoch stopped early (a solver error); a non-finite mean loss stops it too. The mean loss
    is converted to a host float once at the end (and every ``check_every`` steps).
    """
    xp = array_module(X)
    N = order.shape[0]
    loss_sum, n_batches = 0.0, -(-N // batch_size)
    for step, s in enumerate(range(0, N, batch_size), start=1):
        idx = order[s:s + batch_size]
        Xb, yb = xp.take(X, idx, axis=-1), y[idx]  # (n0, B) or (C, H, W, B); (B,)
        try:
            J, d = direction(theta, Xb, yb)  # J(theta; X_b, y_b) and the oracle's direction
        except ValueError as err:  # the inputs were checked: only the numerics fail here,
            return theta, state, math.nan, str(err)  # e.g. Cholesky of exploded activations
        theta, state = optimizer.update(theta, d, state)
        loss_sum = loss_sum + J  # stays on the device
        bar.update(1)
        if step % check_every == 0 and not math.isfinite(to_float(loss_sum)):
            break
    return theta, state, to_float(loss_sum) / n_batches, None  # host sync: ends the timing


# --------------------------------------------------------------------------- helpers
def _make_config(net, data, optimizer, *, algorithm, tau_theta, solver, cg_iterations, cg_tol,
                 cg_variant, exact_system, batch_size, epochs, seed, dtype, backend, eval_chunk):
    """Check every setting once and return them as a JSON-able dict."""
    check_choice(algorithm, "algorithm", ALGORITHMS)
    prox = {"tau_theta": tau_theta, "solver": solver, "cg_iterations": cg_iterations,
            "cg_tol": cg_tol, "cg_variant": cg_variant, "exact_system": exact_system}
    if algorithm == "backprop":
        given = [k for k, v in prox.items() if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to algorithm='proxprop'")
    else:
        solver = "cg" if solver is None else solver
        check_choice(solver, "solver", SOLVERS)
        cg_only = {"cg_iterations": cg_iterations, "cg_tol": cg_tol, "cg_variant": cg_variant}
        if solver != "cg":
            given = [k for k, v in cg_only.items() if v is not None]
            if given:
                raise ValueError(f"{', '.join(given)} only apply to solver='cg', not {solver!r}")
        if solver != "exact" and exact_system is not None:
            raise ValueError(f"exact_system only applies to solver='exact', not {solver!r}")
        tau_theta = 1.0 if tau_theta is None else tau_theta
        cg_iterations = 3 if solver == "cg" and cg_iterations is None else cg_iterations
        cg_variant = "textbook" if cg_variant is None else cg_variant
        exact_system = "auto" if exact_system is None else exact_system
        tau_theta, cg_iterations, cg_tol = _check_prox_options(
            tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system)
        if solver != "cg":
            cg_variant = None
        if solver != "exact":
            exact_system = None
        prox = {"tau_theta": tau_theta, "solver": solver, "cg_iterations": cg_iterations,
                "cg_tol": cg_tol, "cg_variant": cg_variant, "exact_system": exact_system}
    for attr in ("init", "update", "config"):
        if not hasattr(optimizer, attr):
            raise ValueError(f"optimizer must come from penaltyprop.optim (sgd, adam), "
                             f"got {optimizer!r}")
    for attr in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "image_shape"):
        if not hasattr(data, attr):
            raise ValueError(f"data must be a penaltyprop.data.Dataset, got {type(data).__name__}")
    shape = (data.n_features,) if len(net.input_shape) == 1 else tuple(data.image_shape)
    if tuple(net.input_shape) != shape:
        raise ValueError(f"the network takes inputs of shape {net.input_shape}, the data set "
                         f"{data.name!r} has samples of shape {shape}")
    if net.n_classes != data.n_classes:
        raise ValueError(f"the network has {net.n_classes} outputs, the data set "
                         f"{data.name!r} has {data.n_classes} classes")
    N = len(data.y_train)
    batch_size = check_int(batch_size, "batch_size", 1)
    if batch_size > N:
        raise ValueError(f"batch_size={batch_size} is larger than the training set "
                         f"({N} samples)")
    check_choice(str(dtype), "dtype", DTYPES)
    get_backend(backend)  # raises ValueError for an unknown or unavailable backend
    return {"net": repr(net), "data": {"name": data.name, "n_train": N,
                                       "n_val": len(data.y_val), "n_test": len(data.y_test)},
            "algorithm": algorithm, **prox, "optimizer": optimizer.config,
            "batch_size": batch_size, "epochs": check_int(epochs, "epochs", 1),
            "seed": check_int(seed, "seed", 0), "dtype": str(dtype), "backend": backend,
            "eval_chunk": check_int(eval_chunk, "eval_chunk", 1)}


def _oracle(net, config):
    """``direction(theta, X_b, y_b) -> (J, d)`` for the configured algorithm (no checks)."""
    if config["algorithm"] == "backprop":
        return lambda theta, Xb, yb: _gradient(net, theta, Xb, yb)  # d = grad J
    options = {k: config[k] for k in ("tau_theta", "solver", "cg_iterations", "cg_tol")}
    options["cg_variant"] = config["cg_variant"] or "textbook"
    options["exact_system"] = config["exact_system"] or "auto"
    return lambda theta, Xb, yb: _proxprop_direction(net, theta, Xb, yb, **options)


def _resume(path, config, rng, xp):
    """Parameters, optimizer state and history from a checkpoint; restores ``rng``."""
    if not path.exists():
        raise ValueError(f"no checkpoint to resume: {path} does not exist")
    ckpt = load_checkpoint(path, xp)
    free = ("epochs", "backend", "eval_chunk")  # extend a run, move it, evaluate differently
    old = ckpt["config"]
    differ = sorted(k for k in set(old) | set(config)
                    if k not in free and old.get(k) != config.get(k))
    if differ:
        detail = "; ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in differ)
        raise ValueError(f"cannot resume {path} with different settings ({detail})")
    set_rng_state(rng, ckpt["rng_state"])
    history = ckpt["history"]
    history["test_loss"] = history["test_acc"] = None  # recomputed after the last epoch
    return ckpt["theta"], ckpt["opt_state"], history


def _write_json(path, obj):
    """Write JSON atomically (temp file + os.replace)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def format_epoch(record) -> str:
    """One line for an epoch record (see ``on_epoch`` of :func:`train`)."""
    if record.get("diverged"):
        return f"epoch {record['epoch']:>3}: diverged ({record.get('reason')})"
    line = (f"epoch {record['epoch']:>3}: train loss {record['train_loss']:.4f} "
            f"acc {100 * record['train_acc']:5.1f}%  val loss {record['val_loss']:.4f} "
            f"acc {100 * record['val_acc']:5.1f}%")
    if record["epoch"] > 0:
        line += f"  time {record['epoch_time']:.2f}s (eval {record['eval_time']:.2f}s)"
    return line
