r"""Checkpoints of a training run: parameters, optimizer state, RNG state, history, config.

One ``.npz`` file (NumPy's ``savez``), readable with ``allow_pickle=False``: nothing in it can
run code when loaded. Arrays are stored under flat names, everything else as one JSON string:

* ``theta_{l}_W``, ``theta_{l}_b``: the parameters of linear layer l+1 (0-based list index);
* ``opt_{slot}_{l}_W``, ``opt_{slot}_{l}_b``: the optimizer's buffers (``momentum``; ``m``, ``v``);
* ``state_{name}``: a lifted method's per-sample variables (``a1``, ``z1``, ..., ``lam``), so
  that a resumed BCD or ADMM run continues exactly;
* ``meta``: JSON with ``format``, ``opt_step``, ``opt_slots``, ``rng_state`` (the shuffling
  generator's PCG64 state), ``history``, ``config``, ``package`` (the penaltyprop release
  that wrote the file, :func:`penaltyprop.version.package_record`) and, for a lifted method,
  ``method_state`` (``{"sweeps": int, "arrays": [name, ...]}``).

Files are written atomically (:func:`penaltyprop.fsutil.atomic_writer`): to a temporary file
``.checkpoint.npz-p<pid>@<host>-<random>.tmp`` in the same folder, flushed to disk, then renamed
over the old checkpoint (``os.replace``), so an interrupted run never leaves a half-written
checkpoint behind. A kill -9 during the write leaves the temporary; :func:`remove_stale_temporaries`
deletes it at the next start, and nothing ever reads it.

:func:`load_checkpoint` checks what it reads, and any file that is not such a checkpoint, or is
damaged (a buffer of the wrong shape, a missing history entry, another generator's state) gives
one :class:`CheckpointError` line that names the file.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .backend import host_rng, set_rng_state, to_device, to_host
from .backend import numpy as np
from .checks import FLOAT_DTYPES
from .fsutil import atomic_writer, remove_stale, temporaries, why
from .optim import OptState
from .version import package_record

FORMAT = 1
ZIP_MAGIC = b"PK\x03\x04"  # every .npz file is a zip archive


class CheckpointError(ValueError):
    """A file is missing, is not a penaltyprop checkpoint, or is damaged; names the file."""


def save_checkpoint(path, theta, opt_state, rng_state, history, config, method_state=None):
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file to (over)write.
    theta : list of (W, b) pairs
        On any backend (copied to the host).
    opt_state : OptState
        :class:`penaltyprop.optim.OptState`.
    rng_state : dict
        From :func:`penaltyprop.backend.rng_state`.
    history, config : dict
        JSON-able dicts.
    method_state : (arrays, sweeps), optional
        A lifted method's variables (a dict of name -> array,
        :func:`penaltyprop.methods.lifted.state_arrays`) and its sweep count.
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
            "config": config, "package": package_record()}
    if method_state is not None:
        state, sweeps = method_state
        for name, value in state.items():
            arrays[f"state_{name}"] = to_host(value)
        meta["method_state"] = {"sweeps": int(sweeps), "arrays": sorted(state)}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_writer(path) as f:
        np.savez(f, **arrays)


def remove_stale_temporaries(path, since=None) -> list:
    """Delete the leftovers of interrupted writes of the checkpoint ``path``.

    Those whose writer process is gone from this host; with ``since`` (the time your
    :class:`penaltyprop.runlock.RunLock` on the folder was taken), also every older one.
    A live writer's temporary is kept. Returns the paths removed.
    """
    return remove_stale(Path(path).parent, temporaries(path), since)


def load_checkpoint(path, xp=np, history_keys=()):
    """Read a checkpoint written by :func:`save_checkpoint`, checking its contents.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file.
    xp : module
        The array namespace to put theta and the optimizer buffers on.
    history_keys : sequence of str
        Entries the history must have (the training loop's), else the file is damaged.

    Returns
    -------
    dict
        With ``theta`` (list of (W, b) pairs), ``opt_state`` (OptState), ``rng_state``,
        ``history``, ``config``, ``package`` (``{"name", "version"}`` of the release that
        wrote it; None for a file written before releases recorded it) and ``method_state``
        (None, or ``(arrays, sweeps)`` as saved, the arrays on ``xp``).

    Raises
    ------
    CheckpointError
        (a ValueError) One line naming the file: it is missing or unreadable, it is not a
        penaltyprop checkpoint, or it is damaged (and how). NumPy's own message is never
        passed on: it may advise ``allow_pickle``, which a checkpoint never needs.
    """
    path = Path(path)
    arrays = _read_npz(path)
    meta = _read_meta(path, arrays)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format')!r}; this "
                              f"version reads format {FORMAT}")
    _check_meta(path, meta, history_keys)
    theta = [_pair(path, arrays, f"theta_{l}") for l in range(meta["n_layers"])]
    slots = {}
    for slot in meta["opt_slots"]:
        slots[slot] = [_pair(path, arrays, f"opt_{slot}_{l}", like=theta[l], like_name=f"theta_{l}")
                       for l in range(meta["n_layers"])]
    return {"theta": [(to_device(W, xp), to_device(b, xp)) for W, b in theta],
            "opt_state": OptState(meta["opt_step"],
                                  {slot: [(to_device(W, xp), to_device(b, xp)) for W, b in pairs]
                                   for slot, pairs in slots.items()}),
            "rng_state": meta["rng_state"], "history": meta["history"],
            "config": meta["config"], "package": meta.get("package"),
            "method_state": _method_state(path, arrays, meta, theta[0][0].dtype, xp)}


def _method_state(path, arrays, meta, dtype, xp):
    """``(arrays, sweeps)`` of a lifted method's saved variables, checked; None if none."""
    saved = meta.get("method_state")
    if saved is None:
        return None
    names, sweeps = (saved.get("arrays"), saved.get("sweeps")) if isinstance(saved, dict) \
        else (None, None)
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)) \
            or not _is_int(sweeps) or sweeps < 0:
        raise CheckpointError(f"{path} is a damaged checkpoint: method_state is {saved!r}, not "
                              f"{{'sweeps': int, 'arrays': [name, ...]}}")
    state = {}
    for name in names:
        value = arrays.get(f"state_{name}")
        if value is None or value.dtype != dtype or value.ndim != 2:
            got = "missing" if value is None else f"{value.dtype}{value.shape}"
            raise CheckpointError(f"{path} is a damaged checkpoint: state_{name} is {got}, not "
                                  f"a 2-d {dtype} array like theta")
        state[name] = to_device(value, xp)
    return state, sweeps


def read_config(path):
    """``(config, has_method_state)``: the run's settings that a checkpoint holds, and whether
    it keeps a lifted method's state, read without its arrays.

    Raises CheckpointError naming the file, as :func:`load_checkpoint`.
    """
    path = Path(path)
    meta = _read_meta(path, _read_npz(path, only="meta"))
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path} is a damaged checkpoint: config is missing or not a dict")
    return meta["config"], meta.get("method_state") is not None


def _read_meta(path, arrays):
    """The ``meta`` entry as a dict; CheckpointError if it is missing or not JSON."""
    if "meta" not in arrays:
        raise CheckpointError(f"{path} is not a penaltyprop checkpoint (no meta entry)")
    try:
        meta = json.loads(str(arrays["meta"])) if arrays["meta"].dtype.kind == "U" else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a penaltyprop checkpoint (meta is not JSON)")
    return meta


def _read_npz(path, only=None):
    """Every array of the .npz file ``path`` (or only the one named ``only``), as a dict;
    CheckpointError for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(ZIP_MAGIC))
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} does not exist") from err
    except OSError as err:  # a folder, permissions
        raise CheckpointError(f"checkpoint {path} cannot be read ({why(err)})") from err
    if head != ZIP_MAGIC:
        raise CheckpointError(f"{path} is not a penaltyprop checkpoint (not an .npz file)")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files if only is None or name == only}
    except ValueError as err:  # e.g. an object array: NumPy's text advises allow_pickle
        raise CheckpointError(f"{path} is not a penaltyprop checkpoint (it holds an array "
                              f"that is not plain numbers or text)") from err
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
        raise CheckpointError(f"{path} is a damaged .npz file ({type(err).__name__}); "
                              f"it is truncated or corrupted") from err


def _check_meta(path, meta, history_keys) -> None:
    """The JSON part: layer count, optimizer step and slots, generator state, history, config."""
    def damaged(what):
        return CheckpointError(f"{path} is a damaged checkpoint: {what}")

    n_layers, step, slots = meta.get("n_layers"), meta.get("opt_step"), meta.get("opt_slots")
    if not _is_int(n_layers) or n_layers < 1:
        raise damaged(f"n_layers is {n_layers!r}, not an integer >= 1")
    if not _is_int(step) or step < 0:
        raise damaged(f"opt_step is {step!r}, not an integer >= 0")
    if not (isinstance(slots, list) and all(isinstance(s, str) for s in slots)):
        raise damaged(f"opt_slots is {slots!r}, not a list of names")
    try:
        set_rng_state(host_rng(0), meta.get("rng_state"))  # the generator the loop uses
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        kind = meta["rng_state"].get("bit_generator") if isinstance(meta.get("rng_state"),
                                                                   dict) else None
        raise damaged(f"rng_state is not a state of the {type(host_rng(0).bit_generator).__name__}"
                      f" generator (bit_generator {kind!r})") from err
    for key in ("history", "config"):
        if not isinstance(meta.get(key), dict):
            raise damaged(f"{key} is missing or not a dict")
    missing = [key for key in history_keys if key not in meta["history"]]
    if missing:
        raise damaged(f"history lacks {', '.join(missing)}")


def _pair(path, arrays, prefix, like=None, like_name=None):
    """The (W, b) arrays ``prefix_W`` and ``prefix_b``, checked (against ``like``'s shapes)."""
    def damaged(what):
        return CheckpointError(f"{path} is a damaged checkpoint: {what}")

    for name in (f"{prefix}_W", f"{prefix}_b"):
        if name not in arrays:
            raise damaged(f"{name} is missing")
        if str(arrays[name].dtype) not in FLOAT_DTYPES:
            raise damaged(f"{name} has dtype {arrays[name].dtype}, not float32 or float64")
    W, b = arrays[f"{prefix}_W"], arrays[f"{prefix}_b"]
    if W.ndim < 2 or b.ndim != 1 or b.shape[0] != W.shape[0] or b.dtype != W.dtype:
        raise damaged(f"{prefix}_W {W.dtype}{W.shape} and {prefix}_b {b.dtype}{b.shape} "
                      f"are not a layer's (W, b)")
    if like is not None:
        for name, a, ref in ((f"{prefix}_W", W, like[0]), (f"{prefix}_b", b, like[1])):
            if a.shape != ref.shape or a.dtype != ref.dtype:
                ref_name = f"{like_name}_{name[-1]}"
                raise damaged(f"{name} has {a.dtype}{a.shape}, but {ref_name} has "
                              f"{ref.dtype}{ref.shape}")
    return W, b


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
