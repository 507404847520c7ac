r"""The training loop: a method object, shuffled minibatches or full sweeps, the paper's curves.

The loop asks the method (:mod:`penaltyprop.methods`) for what its kind provides:

* an *oracle* method (BackProp, ProxProp): one step on a minibatch (X_b, y_b) asks it for a
  direction, ``J, d = method.direction(net, theta, X_b, y_b)``, and hands d to an optimizer
  (Section 5.3): ``theta, state = optimizer.update(theta, d, state)``.
  The optimizer's learning rate is the paper's :math:`\tau`;
* a *lifted* method (BCD, ADMM): one epoch is one full-batch ``method.sweep``; its
  ``diagnostics`` (objective, residuals) are recorded per sweep; no optimizer.

After every epoch the run records the curves of :mod:`penaltyprop.history`. A non-finite loss
ends the run as *diverged* (Table 1's "-"), without raising.

Reproducibility: the initial parameters come from ``net.init(seed)`` and the minibatch order
from a host generator seeded with ``(seed, 1)``, so the same seed, data and settings give
bit-identical results on the CPU; a run resumed from a checkpoint continues to exactly the
result of an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass

from tqdm import tqdm

from .backend import array_module, get_backend, host_rng, rng_state, to_device, to_float
from .backend import numpy as np
from .checkpoint import CheckpointError, remove_stale_temporaries, save_checkpoint
from .checks import check_int, check_theta
from .fsutil import (
    atomic_write_text,
    check_output_files,
    check_writable_dir,
    remove_stale,
    temporaries,
)
from .history import SERIES, evaluate, format_epoch, new_history
from .memory import check_memory, layer_sizes, run_bytes
from .methods import BackProp
from .methods.lifted import state_arrays, state_from_arrays
from .optim import OptState
from .runconfig import CHECKPOINT, DTYPES, HISTORY, device_data, make_config, start
from .runlock import RunLock
from .version import package_record

__all__ = ["CHECKPOINT", "DTYPES", "HISTORY", "SERIES", "TrainResult", "evaluate", "format_epoch",
           "new_history", "train"]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    theta : list of (W, b) pairs
        The final parameters (on the run's backend).
    opt_state : OptState
        :class:`penaltyprop.optim.OptState`, the optimizer's final state (for a lifted method:
        ``step`` counts the sweeps, no slots).
    history : dict
        Per-epoch lists (index 0 is the initial evaluation, before any step): ``epoch``,
        ``train_loss``, ``train_acc`` (full training set), ``val_loss``, ``val_acc``,
        ``batch_loss`` (mean minibatch loss during the epoch; None at epoch 0),
        ``epoch_time`` (seconds of training), ``eval_time`` (seconds of evaluation),
        ``time`` (cumulative training seconds), ``diagnostics`` (a lifted method's dict per
        sweep, from index 0; empty for oracle methods). Scalars: ``test_loss``, ``test_acc``
        (after the last epoch; None if diverged), ``diverged`` (bool), ``diverged_epoch``
        (int or None), ``diverged_reason`` (str or None: a non-finite loss, or the solver's
        error, such as a Cholesky factorisation that failed on exploded activations),
        ``steps`` (optimizer steps or sweeps taken), ``package`` (``{"name", "version"}`` of
        the penaltyprop release that trained it; the last one, if resumed).
    config : dict
        The run's settings (JSON-able), as stored in checkpoints.
    """

    theta: list
    opt_state: object
    history: dict
    config: dict

    @property
    def diverged(self) -> bool:
        return bool(self.history["diverged"])


def train(net, data, optimizer=None, method=None, *, batch_size=None, epochs=1, seed=0,
          dtype="float32", backend="numpy", theta=None, out_dir=None, resume=False,
          progress=None, on_epoch=None, eval_chunk=5000, check_every=10) -> TrainResult:
    r"""Train ``net`` on ``data`` with a training method (and, for oracle methods, an optimizer).

    Parameters
    ----------
    net : Network
        An MLP, or a CNN when its input shape is the data's (C, H, W).
    data : :class:`penaltyprop.data.Dataset`
        Samples-first host arrays; moved to the device once, in batch-last layout
        (:func:`penaltyprop.data.batch_last`), cast to ``dtype``.
    optimizer : optimizer or None
        An optimizer of :mod:`penaltyprop.optim` (its lr is the paper's tau); required for an
        oracle method, None for a lifted one.
    method : a method of :mod:`penaltyprop.methods`
        For example ``pp.ProxProp(tau_theta=0.05, solver="exact")``; default ``pp.BackProp()``.
    batch_size : int or None
        1 .. number of training samples; default (None) 500, or all N samples when there are
        fewer (oracle methods; the last minibatch of an epoch holds the remainder, so all
        samples are used every epoch). A lifted method sweeps all N samples at once: leave it
        None (or give N). The config records the size that ran.
    epochs : int >= 1
        Total number of epochs (sweeps for a lifted method), counting those a resumed run
        already did.
    seed : int >= 0
        For the initial parameters and the minibatch order.
    dtype : {"float32", "float64"}
        ``"float32"`` (default) or ``"float64"``.
    backend : {"numpy", "cupy"}
        The array backend of the run.
    theta : list of (W, b) pairs, optional
        Initial parameters (on ``backend``, of ``dtype``); default
        ``net.init(seed, dtype, backend)``.
    out_dir : path-like, optional
        Writes ``checkpoint.npz`` and ``history.json`` there after every epoch.
    resume : bool
        Continue the run checkpointed in ``out_dir`` (same settings and data; ``epochs`` may
        grow). A lifted method's per-sample variables are checkpointed too, so a resumed run
        of any method ends exactly where an uninterrupted one does.
    progress : bool or None
        Show a tqdm progress bar (default: when stderr is a terminal).
    on_epoch : callable, optional
        Called as ``on_epoch(record)`` after every evaluation (epoch 0 included) with a dict
        holding one entry of every per-epoch series.
    eval_chunk : int
        Columns per forward pass in the evaluations.
    check_every : int
        Minibatch steps between two checks of the loss for divergence (each check is a host
        sync on the GPU; every epoch ends with one).

    Returns
    -------
    TrainResult
        The final parameters and optimizer state, the history and the run's settings.

    Raises
    ------
    ValueError
        For any bad setting (named), data that do not fit the network, a run that needs more
        memory than the backend has available (:mod:`penaltyprop.memory`), a resume without a
        checkpoint or with different settings or data, an ``out_dir`` whose checkpoint or
        history file is a folder, or one that already holds a checkpoint when ``resume`` is
        false.

    Examples
    --------
    >>> import penaltyprop as pp
    >>> data = pp.data.load_dataset("digits", subset=300)      # shipped with the package
    >>> net = pp.mlp([64, 32, 10])
    >>> result = pp.train.train(net, data, pp.optim.sgd(1.0, momentum=0.95, nesterov=True),
    ...                         pp.ProxProp(tau_theta=0.05), batch_size=100, epochs=3,
    ...                         progress=False)
    >>> result.history["epoch"], result.diverged       # epoch 0: the initial parameters
    ([0, 1, 2, 3], False)
    >>> bool(result.history["train_loss"][-1] < result.history["train_loss"][0])
    True
    """
    method = BackProp() if method is None else method
    config = make_config(net, data, optimizer, method, batch_size=batch_size, epochs=epochs,
                          seed=seed, dtype=dtype, backend=backend, eval_chunk=eval_chunk)
    run = dict(theta=theta, resume=resume, progress=progress, on_epoch=on_epoch,
               check_every=check_int(check_every, "check_every", 1))
    check_run_memory(net, data, optimizer, method, config)  # before anything is allocated
    # A diverging run overflows on purpose: its loss is checked, warnings add nothing.
    quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    if out_dir is None:
        with quiet:
            return _train(net, data, optimizer, method, config, out_dir=None, **run)
    out_dir = check_writable_dir(out_dir, "out_dir")  # before any long work
    check_output_files(out_dir, (CHECKPOINT, HISTORY), "out_dir")
    with RunLock(out_dir, what="run") as lock, quiet:  # a second run into it fails at once
        remove_stale_temporaries(out_dir / CHECKPOINT, since=lock.since)  # kill -9 leftovers
        remove_stale(out_dir, temporaries(out_dir / HISTORY), since=lock.since)
        return _train(net, data, optimizer, method, config, out_dir=out_dir, **run)


def check_run_memory(net, data, optimizer, method, config):
    """Raise ValueError if the run needs more memory than its backend has available
    (:mod:`penaltyprop.memory`: a lower bound from the shapes, checked before any array)."""
    xp = get_backend(config["backend"])
    slots = 0 if optimizer is None else len(optimizer.init([(np.zeros((1, 1)), np.zeros(1))]).slots)
    n = len(data.y_train) + len(data.y_val) + len(data.y_test)
    parts = run_bytes(net, n, config["batch_size"], config["dtype"],
                      lifted=method.kind == "lifted", optimizer_slots=slots,
                      prox=hasattr(method, "tau_theta"), eval_chunk=config["eval_chunk"])
    check_memory(parts, xp, f"the run ({sum(w + b for w, b, *_ in layer_sizes(net)):,} "
                            f"parameters, batch {config['batch_size']}, {n} samples)")


def _train(net, data, optimizer, method, config, *, theta, out_dir, resume, progress, on_epoch,
           check_every):
    """The loop of :func:`train`, on checked settings (and in its locked ``out_dir``)."""
    batch_size, epochs, eval_chunk = config["batch_size"], config["epochs"], config["eval_chunk"]
    xp = get_backend(config["backend"])
    X, y, X_val, y_val, X_test, y_test = device_data(net, data, xp, config["dtype"])
    N = X.shape[-1]

    # Where the run starts: a checkpoint, given parameters, or net.init.
    rng = host_rng([config["seed"], 1])  # the minibatch order; independent of net.init(seed)
    theta, state, history, saved = start(net, optimizer, method, config, theta, out_dir, resume,
                                         rng, xp, data=data)
    history["package"] = package_record()  # the release that trains it (last, if resumed)
    # theta's structure, dtype and backend (the data were checked by device_data, a given theta
    # also for NaN by start). A diverged run's checkpoint may hold non-finite theta: the
    # evaluation below reports that, so finiteness is not checked here.
    check_theta(net, theta, like=X, finite=False)
    lifted = method.kind == "lifted"
    method_state = None
    if lifted and saved is not None:  # resumed: the variables exactly as checkpointed
        try:
            method_state = state_from_arrays(net, saved[0], saved[1], X, y, method.name)
        except ValueError as err:
            raise CheckpointError(f"{out_dir / CHECKPOINT} is a damaged checkpoint: {err}") \
                from None
    elif lifted:
        method_state = method.init_state(net, theta, X, y)

    def save():
        if out_dir is not None:
            kept = None if not lifted else (state_arrays(method_state), method_state.sweeps)
            save_checkpoint(out_dir / CHECKPOINT, theta, state, rng_state(rng), history, config,
                            method_state=kept)
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
        if lifted:
            history["diagnostics"].append(method.diagnostics(net, theta, method_state, X, y))
        if on_epoch is not None:
            on_epoch({key: history[key][-1] for key in SERIES})
        return True

    if not history["epoch"]:  # epoch 0: the initial parameters
        if not record_eval(0, None, 0.0):
            raise ValueError("the loss of the initial parameters is not finite")
    done = history["epoch"][-1]
    if epochs < done:
        raise ValueError(f"epochs={epochs} but the checkpointed run already did {done} epochs")

    steps_per_epoch = 1 if lifted else -(-N // batch_size)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = tqdm(total=(epochs - done) * steps_per_epoch if not history["diverged"] else 0,
               disable=not show, unit="sweep" if lifted else "step", leave=False,
               dynamic_ncols=True)
    with bar:
        for epoch in range(done + 1, epochs + 1):
            if history["diverged"]:
                break
            bar.set_description(f"epoch {epoch}/{epochs}")
            t0 = time.perf_counter()
            if lifted:
                # the loss the sweep starts from: the last evaluation's, not computed again
                batch_loss = history["train_loss"][-1]
                theta, method_state, reason = _sweep_epoch(net, method, theta, method_state, X, y)
                state = OptState(state.step + 1, {})
                bar.update(1)
            else:
                order = to_device(rng.permutation(N), xp)  # (N,) the epoch's minibatch order
                theta, state, batch_loss, reason = _epoch(
                    net, method, optimizer, theta, state, X, y, order, batch_size, check_every, bar)
            epoch_time = time.perf_counter() - t0
            history["steps"] = state.step
            if reason is None and not math.isfinite(batch_loss):
                reason = "non-finite minibatch loss"
            if reason is None and not record_eval(epoch, batch_loss, epoch_time):
                reason = "non-finite training loss"
            if reason is not None:
                history.update(diverged=True, diverged_epoch=epoch, diverged_reason=reason)
                if on_epoch is not None:
                    on_epoch({"epoch": epoch, "diverged": True, "reason": reason})
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


def _epoch(net, method, optimizer, theta, state, X, y, order, batch_size, check_every, bar):
    """One pass over the minibatches ``order[s : s + batch_size]`` of an oracle method.

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
            J, d = method.direction(net, theta, Xb, yb, check=False)  # J(theta; X_b, y_b), d
        except ValueError as err:  # the inputs were checked: only the numerics fail here,
            return theta, state, math.nan, str(err)  # e.g. Cholesky of exploded activations
        theta, state = optimizer.update(theta, d, state)
        loss_sum = loss_sum + J  # stays on the device
        bar.update(1)
        if step % check_every == 0 and not math.isfinite(to_float(loss_sum)):
            break
    return theta, state, to_float(loss_sum) / n_batches, None  # host sync: ends the timing


def _sweep_epoch(net, method, theta, method_state, X, y):
    """One full-batch sweep of a lifted method: ``(theta, state, reason)``; reason is None or
    why the sweep failed."""
    try:
        theta, method_state = method.sweep(net, theta, method_state, X, y)
    except ValueError as err:  # a failed factorisation of exploded variables
        return theta, method_state, str(err)
    return theta, method_state, None


# --------------------------------------------------------------------------- helpers
def _write_json(path, obj):
    """Write JSON atomically (an owner-tagged temporary, then os.replace)."""
    atomic_write_text(path, json.dumps(obj, indent=1))
