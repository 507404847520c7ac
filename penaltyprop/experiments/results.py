r"""What an experiment's output folder may hold, checked before anything is trained or written.

An experiment resumes from its folder: ``results.json`` (the finished configurations) and
``runs/KEY/`` (the checkpoint of a configuration that was interrupted). Before the first
configuration trains, the :class:`~.runner.Store` checks, with one line that names the file:

* :func:`read_results`: ``results.json`` is JSON of the right structure (settings and runs
  are objects, every run has its method, time and a well-formed history), not only valid JSON;
* :func:`data_problem`: its runs were trained on the same data (the data fingerprint,
  :func:`penaltyprop.data.fingerprint`, recorded in ``results.json`` and in every run's
  config), so that one table never mixes two data sets;
* :func:`check_runs`: every folder under ``runs/`` is an interrupted configuration of this
  experiment (its key, its settings, its data) holding only what a run writes, so that a
  folder of the user's own runs is never resumed as, or deleted with, a configuration; a
  cell of another seed (``KEY@seedS``, :mod:`.cells`) is checked with that seed, whether or
  not this run trains it;
* :func:`check_folder`: the folder is not a training run's own (``checkpoint.npz``).
"""
from __future__ import annotations

import json
import numbers
from pathlib import Path

from ..checkpoint import read_config
from ..data import same_data
from ..fsutil import why
from ..history import check_history
from ..runconfig import config_differences
from ..runlock import LOCK_FILE
from ..train import CHECKPOINT, HISTORY
from .cells import SEED_MARK, cell_key, split_key

RESULTS = "results.json"
#: the files a configuration's run folder holds (and the temporaries of their atomic writes)
RUN_FILES = (CHECKPOINT, HISTORY, LOCK_FILE)
#: what to do when the folder is refused
ADVICE = "move it away or choose another --out"


def read_results(path) -> dict:
    """The content of ``results.json`` at ``path``, its structure checked.

    Raises
    ------
    ValueError
        One line naming the file: it cannot be read (a folder, permissions), it is not JSON
        (corrupt or cut short), or its structure is not a results file's (and where).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        reason = why(err) if isinstance(err, OSError) else "not text"
        raise ValueError(f"{path} cannot be read ({reason}); {ADVICE}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError(f"{path} is not a penaltyprop results file (corrupt or cut short); "
                         f"{ADVICE}") from None
    problem = results_problem(data)
    if problem is not None:
        raise ValueError(f"{path} is not a penaltyprop results file ({problem}); {ADVICE}")
    return data


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text"}.get(type(value), repr(value)[:20])


def results_problem(data):
    """What is wrong with the structure of a results file's content, or None."""
    if not isinstance(data, dict):
        return f"it holds {_kind(data)}, not an object"
    for key in ("settings", "runs"):
        if not isinstance(data.get(key), dict):
            return f"{key} is {'missing' if key not in data else _kind(data[key])}, not an object"
    if not isinstance(data.get("extra", {}), dict):
        return f"extra is {_kind(data['extra'])}, not an object"
    if not isinstance(data.get("data_fingerprint", ""), str):
        return f"data_fingerprint is {_kind(data['data_fingerprint'])}, not text"
    for key, record in data["runs"].items():
        problem = record_problem(record)
        if problem is not None:
            return f"run {key!r}: {problem}"
    return None


def record_problem(record):
    """What is wrong with one stored configuration, or None: a training run's record (method,
    wall_s, config, history) or a spectrum's (the conditioning experiment)."""
    if not isinstance(record, dict):
        return f"it is {_kind(record)}, not an object"
    if not isinstance(record.get("method"), str):
        return "method is missing or not text"
    if not _number(record.get("wall_s", 0.0)) or ("history" in record and "wall_s" not in record):
        return "wall_s is missing or not a number"
    if "history" in record:
        history = record["history"]
        if not isinstance(history, dict):
            return f"history is {_kind(history)}, not an object"
        try:
            check_history(history)
        except ValueError as err:
            return str(err)
        for key in ("test_loss", "test_acc"):
            if not (history.get(key) is None or _number(history[key])):
                return f"history {key} is {history[key]!r}, not a number"
        if not isinstance(record.get("config", {}), dict):
            return "config is not an object"
        return None
    if "spectrum" in record:
        for key in ("dim", "largest", "smallest", "n_zero", "n_images"):
            if not _number(record.get(key)):
                return f"{key} is missing or not a number"
        if not (isinstance(record["spectrum"], list) and all(map(_number, record["spectrum"]))):
            return "spectrum is not a list of numbers"
        return None
    return "it holds neither a training history nor a spectrum"


def recorded_fingerprints(data):
    """``[(whose, fingerprint)]``: the data fingerprints a results file records, in itself and
    in its runs' configs (files written before it recorded one hold only the latter)."""
    found = [("its runs were", data["data_fingerprint"])] if "data_fingerprint" in data else []
    for key, record in data["runs"].items():
        config = record.get("config", {})
        fp = config.get("data", {}).get("fingerprint") if isinstance(config.get("data"), dict) \
            else None
        if fp is not None:
            found.append((f"its run {key!r} was", fp))
    return found


def data_problem(stored, data, fingerprint):
    """Why the runs of ``stored`` (a results file's content) were not trained on ``data``
    (whose :func:`~penaltyprop.data.fingerprint` is ``fingerprint``), or None."""
    for who, recorded in recorded_fingerprints(stored):
        if recorded != fingerprint and (":all:" in recorded or not same_data(recorded, data)):
            return f"{who} trained on data {recorded}, these are {fingerprint}"
    return None


def check_folder(out) -> None:
    """Raise ValueError if ``out`` is a training run's folder (it holds ``checkpoint.npz``)."""
    for name in (CHECKPOINT, HISTORY):
        if (Path(out) / name).exists():
            raise ValueError(f"--out {out} holds a training run ({name}), not an experiment's "
                             f"results; {ADVICE}")


def check_runs(out, expected, data, checked=None, base_seed=0) -> None:
    """Raise ValueError unless every entry of ``out/runs/`` is an interrupted configuration of
    this experiment.

    Parameters
    ----------
    out : path-like
        The experiment's folder.
    expected : dict
        Configuration key -> ``(config, lifted)``: ``config(seed=S)`` gives the settings
        that :func:`penaltyprop.train.train` records for the configuration trained with
        ``seed`` (called only for a folder that holds a checkpoint), ``lifted`` whether its
        method is lifted.
    data : Dataset
        The data the experiment trains on.
    checked : dict, optional
        Entries found good (path -> checkpoint mtime), not read again.
    base_seed : int
        The seed of a folder named by a plain key; ``KEY@seedS`` is the cell of
        configuration KEY with seed S (:func:`~.cells.split_key`), of this run or of another.

    Raises
    ------
    ValueError
        One line naming the entry: it is not a folder or not a key of this experiment, it
        holds other files than a run writes, or its checkpoint was made with other settings
        or data (what differs is named).
    """
    runs = Path(out) / "runs"
    if not runs.exists():
        return
    if not runs.is_dir():
        raise ValueError(f"--out {out}: {runs} is not a folder of runs; {ADVICE}")
    for entry in sorted(runs.iterdir()):
        key, seed = split_key(entry.name, base_seed)
        if (key not in expected or cell_key(key, seed, base_seed) != entry.name
                or entry.is_symlink() or not entry.is_dir()):
            raise ValueError(f"--out {out}: {entry} is not a run of this experiment (its "
                             f"configurations are {', '.join(expected)}, each KEY or "
                             f"KEY{SEED_MARK}S); {ADVICE}")
        stray = sorted(p.name for p in entry.iterdir() if (p.name not in RUN_FILES or p.is_dir())
                       and not (p.name.startswith(".") and p.name.endswith(".tmp")))
        if stray:
            raise ValueError(f"--out {out}: {entry} holds files that no run of this experiment "
                             f"writes ({', '.join(stray[:3])}); {ADVICE}")
        ckpt = entry / CHECKPOINT
        if not ckpt.exists():
            continue
        stamp = ckpt.stat().st_mtime_ns
        if checked is not None and checked.get(ckpt) == stamp:
            continue
        old, has_state = read_config(ckpt)
        config, lifted = expected[key]
        differ, _ = config_differences(old, config(seed=seed), data)
        if lifted and not has_state:  # an earlier version's: restarted, its batch_size was unused
            differ = [k for k in differ if k != "batch_size"]
        if differ:
            raise ValueError(f"--out {out}: {entry} holds a run that is not this experiment's "
                             f"configuration {entry.name!r} (its {', '.join(differ)} "
                             f"{'differs' if len(differ) == 1 else 'differ'}); {ADVICE}")
        if checked is not None:
            checked[ckpt] = stamp
