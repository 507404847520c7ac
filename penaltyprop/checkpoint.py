r"""Checkpoints of a training run: parameters, optimizer state, RNG state, history, config.

One ``.npz`` file (NumPy's ``savez``), readable with ``allow_pickle=False``: nothing in it can
run code when loaded. Arrays are stored under flat names, everything else as one JSON string:

* ``theta_{l}_W``, ``theta_{l}_b``: the parameters of linear layer l+1 (0-based list index);
* ``opt_{slot}_{l}_W``, ``opt_{slot}_{l}_b``: the optimizer's buffers (``momentum``; ``m``, ``v``);
* ``meta``: JSON with ``format``, ``opt_step``, ``opt_slots``, ``rng_state`` (the shuffling
  generator's PCG64 state), ``history`` and ``config``.

Files are written atomically: to a temporary file in the same folder, flushed to disk, then
renamed over the old checkpoint (``os.replace``), so an interrupted run never leaves a
half-written checkpoint behind.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

from .backend import numpy as np
from .backend import to_device, to_host
from .optim import OptState

FORMAT = 1


def save_checkpoint(path, theta, opt_state, rng_state, history, config):
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file to (over)write.
    theta : list of (W, b) pairs, on any backend (copied to the host).
    opt_state : :class:`penaltyprop.optim.OptState`.
    rng_state : dict, from :func:`penaltyprop.backend.rng_state`.
    history, config : JSON-able dicts.
    """
    path = Path(path)
    arrays = {}
    for l, (W, b) in enumerate(theta):
        arrays[f"theta_{l}_W"], arrays[f"theta_{l}_b"] = to_host(W), to_host(b)
    for slot, params in opt_state.slots.items():
        for l, (W, b) in enumerate(params):
            arrays[f"opt_{slot}_{l}_W"], arrays[f"opt_{slot}_{l}_b"] = to_host(W), to_host(b)
    meta = {"format": FORMAT, "n_layers": len(theta), "opt_step": int(opt_state.step),
            "opt_slots": sorted(opt_state.slots), "rng_state": rng_state, "history": history,
            "config": config}
    arrays["meta"] = np.array(json.dumps(meta))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path, xp=np):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : path-like
    xp : the array namespace to put theta and the optimizer buffers on.

    Returns
    -------
    dict with ``theta`` (list of (W, b) pairs), ``opt_state`` (OptState), ``rng_state``,
    ``history`` and ``config``.

    Raises
    ------
    ValueError
        If the file is missing or not a penaltyprop checkpoint.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            if meta.get("format") != FORMAT:
                raise KeyError(f"checkpoint format {meta.get('format')!r}, this version "
                               f"reads format {FORMAT}")

            def pairs(prefix):
                return [(to_device(f[f"{prefix}_{l}_W"], xp), to_device(f[f"{prefix}_{l}_b"], xp))
                        for l in range(meta["n_layers"])]

            theta = pairs("theta")
            slots = {slot: pairs(f"opt_{slot}") for slot in meta["opt_slots"]}
    except (OSError, KeyError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable penaltyprop checkpoint "
                         f"({type(err).__name__}: {err})") from err
    return {"theta": theta, "opt_state": OptState(meta["opt_step"], slots),
            "rng_state": meta["rng_state"], "history": meta["history"],
            "config": meta["config"]}
