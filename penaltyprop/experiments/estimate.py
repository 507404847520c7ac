r"""How long an experiment's configurations will take on this machine, estimated before they run.

:func:`estimate` times one training step of each configuration (for a lifted method: one
sweep) and one evaluation pass, here and now, and multiplies by the epochs left;
:func:`~penaltyprop.experiments.runner.run_configs` prints it before the long work starts.
"""
from __future__ import annotations

import json
import math
import statistics
import time

from ..backend import get_backend, to_device
from ..backend.instruments import synchronize
from ..data import batch_last
from ..forward import logits
from ..train import HISTORY
from .cells import split_key


def estimate(configs, data, out, backend="numpy", dtype="float32"):
    """``(seconds, {label: seconds of one step})`` for training ``configs`` on ``data``.

    ``configs``: :class:`~.runner.Config` cells with their seed and numbers (``c.scale``:
    ``epochs``, ``batch_size``). A cell resumed from ``out/runs/KEY/`` counts only the epochs
    it has left.
    """
    steps, total, timed = {}, 0.0, {}
    for c in configs:
        base = split_key(c.key, c.seed)[0]  # the seeds of a configuration are timed once
        if base not in timed:
            timed[base] = _epoch_seconds(c, data, backend, dtype)
        t_step, per_epoch = timed[base]
        steps[c.method.label] = t_step
        total += per_epoch * (c.scale.epochs - _epochs_done(out / "runs" / c.key))
    return total, steps


def _epoch_seconds(c, data, backend, dtype):
    """(one step, one epoch with its evaluation) of configuration ``c``, timed."""
    xp = get_backend(backend)
    image_shape = tuple(data.image_shape) if len(c.net.input_shape) == 3 else None
    N = len(data.y_train)
    B = N if c.method.kind == "lifted" else min(c.scale.batch_size, N)  # lifted: full sweeps
    X = batch_last(to_device(data.X_train[:B], xp, dtype), image_shape)
    y = to_device(data.y_train[:B], xp)
    theta = c.net.init(seed=0, dtype=dtype, backend=backend)
    if c.method.kind == "lifted":
        state = c.method.init_state(c.net, theta, X, y)
        t_step = _timed(xp, lambda: c.method.sweep(c.net, theta, state, X, y), repeat=1)
    else:
        opt_state = c.optimizer.init(theta)

        def step():
            _, d = c.method.direction(c.net, theta, X, y, check=False)
            c.optimizer.update(theta, d, opt_state)

        t_step = _timed(xp, step)
    batches = math.ceil(N / B)
    t_eval = _timed(xp, lambda: logits(c.net, theta, X)) * math.ceil((N + len(data.y_val)) / B)
    return t_step, t_step * batches + t_eval


def _timed(xp, fn, repeat=2):
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        synchronize(xp)
        t0 = time.perf_counter()
        fn()
        synchronize(xp)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _epochs_done(run_dir):
    """Epochs an interrupted configuration already did (0 without a history)."""
    try:
        return max(len(json.loads((run_dir / HISTORY).read_text())["epoch"]) - 1, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def format_duration(seconds) -> str:
    """``"2 h 05 min"``, ``"7 min"``, ``"40 s"``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
