r"""What every experiment shares: its data, and a results store that resumes.

An experiment is a list of *configurations* (one method object at one step size ...). The
:class:`Store` keeps ``results.json`` in the output folder; each configuration is written there
as soon as it finishes and is never run again. A configuration interrupted mid-way resumes from
the per-epoch checkpoint that :func:`penaltyprop.train.train` writes under ``runs/KEY/``.

A configuration trained with one seed is a *cell* (:mod:`~penaltyprop.experiments.cells`).
:func:`run_configs` trains the cells in this process, in order, or hands them to the store's
``executor`` (:class:`~penaltyprop.experiments.dask_cells.DaskCells`), which runs each as a
task of a Dask cluster through :func:`train_cell` and merges the records as they arrive.

Why one module of ~370 lines: the store and the loop that fills it are one idea (what makes an
experiment resumable), and about 40% of the module is their docstrings; the cells' keys, the
Dask executor and the results-file checks already live in their own modules.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import NamedTuple

from ..backend import host_rng
from ..backend import numpy as np
from ..data import fingerprint, load_dataset
from ..data.base import Dataset
from ..fsutil import atomic_write_text
from ..runconfig import InexactResume, make_config
from ..runlock import RunLock
from ..train import CHECKPOINT, check_run_memory, format_epoch, train
from ..version import package_record
from .cells import cell_key, split_key
from .estimate import estimate, format_duration
from .results import RESULTS, check_folder, check_runs, data_problem, read_results


# --------------------------------------------------------------------------- data
def synthetic_dataset(image_shape, n_train, n_classes=10, seed=0) -> Dataset:
    r"""Gaussian blobs shaped like images, for the tiny scale: class c has mean mu_c.

    Pixels :math:`x = \mathrm{clip}(\mu_c + 0.15\,\xi, 0, 1)`, :math:`\mu_c \sim U[0, 1]^d`,
    :math:`\xi \sim N(0, I)`; ``n_train`` training samples and n_train // 4 each for
    validation and test.
    """
    rng = host_rng([seed, 7])
    d = int(np.prod(image_shape))
    means = rng.uniform(size=(n_classes, d))  # (C, d)

    def part(n):
        y = rng.integers(0, n_classes, size=n)  # (n,)
        X = np.clip(means[y] + 0.15 * rng.standard_normal((n, d)), 0.0, 1.0)  # (n, d)
        return X.astype(np.float32), y.astype(np.int64)

    n_small = max(n_train // 4, 1)
    return Dataset("synthetic", *part(n_train), *part(n_small), *part(n_small), n_classes,
                   tuple(image_shape))


def load_data(scale, data_dir=None, download=False) -> Dataset:
    """The data of a :class:`~.settings.Scale` (raises DataError when CIFAR-10 is missing)."""
    if scale.data == "synthetic":
        return synthetic_dataset(scale.image_shape, scale.n_train)
    return load_dataset("cifar10", data_dir=data_dir, subset=scale.n_train, download=download)


# --------------------------------------------------------------------------- the store
class Store:
    """``results.json`` of one experiment run: settings, finished configurations, extras.

    Parameters
    ----------
    out : path-like
        The output folder (created when the store is entered).
    settings : dict
        JSON-able; a store whose settings differ refuses to resume.
    log : callable
        Takes one line of text (progress).
    cells : collection of str, optional
        Configuration keys: train only these (the others are left for a later run into the
        same folder; :func:`run_configs` checks the names).
    data : Dataset, optional
        The data the configurations train on: its fingerprint is recorded in
        ``results.json`` (``data_fingerprint``), and a folder whose runs were trained on other
        data is refused.

    Notes
    -----
    The folder is checked when the store is made (:mod:`.results`: the structure of
    ``results.json``, its settings and data, no training run of its own) and its ``runs/`` by
    :meth:`check_runs`; nothing is written before the first configuration finishes.

    Attributes
    ----------
    seeds : None (the experiment's seed only) or a list of seeds; set by
        :func:`~penaltyprop.experiments.run_experiment`: every configuration trains once per
        seed, as the cells :func:`~penaltyprop.experiments.cells.cell_key` names.
    executor : None (train the cells here, in order) or an object whose
        ``run(store, cells, backend=...)`` trains them elsewhere and stores each record
        with :meth:`finish` (:class:`~penaltyprop.experiments.dask_cells.DaskCells`).
    """

    seeds = None
    executor = None

    def __init__(self, out, settings, log=print, cells=None, data=None):
        self.out = Path(out)
        self.cells = None if cells is None else list(cells)
        self.path = self.out / RESULTS
        self.log = log
        self.lock = RunLock(self.out, what="experiment")
        self.fingerprint = None if data is None else fingerprint(data)
        self.expected, self.checked = {}, {}  # check_runs: configurations, entries found good
        settings = json.loads(json.dumps(settings))  # normalise tuples to lists
        check_folder(self.out)
        if self.path.exists() or self.path.is_symlink():
            self.data = read_results(self.path)  # ValueError naming the file
            old = self.data["settings"]
            if old != settings:
                keys = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
                what = "; ".join(f"{k}: {_short(old.get(k))} -> {_short(settings.get(k))}"
                                 for k in keys)
                raise ValueError(f"--out {self.out} holds results of other settings ({what}); "
                                 f"choose another --out")
            if data is not None:
                problem = data_problem(self.data, data, self.fingerprint)
                if problem:
                    raise ValueError(f"--out {self.out} holds results trained on other data: "
                                     f"{self.path}: {problem}; choose another --out, or give "
                                     f"the data those results were trained on")
        else:
            self.data = {"settings": settings, "runs": {}, "extra": {}}
        if self.fingerprint is not None:
            self.data["data_fingerprint"] = self.fingerprint

    def __enter__(self):
        """Hold the experiment folder's lock (creating the folder): a second experiment into it
        fails at once."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        return self

    @property
    def base_seed(self) -> int:
        """The seed of the runs stored under a configuration's plain key: the settings' ``seed``
        (0 without one); a cell of another seed S is ``KEY@seedS`` (:mod:`.cells`)."""
        return self.data["settings"].get("seed", 0)

    def check_runs(self, configs, data, *, backend="numpy"):
        """Raise ValueError unless every folder under ``runs/`` is an interrupted cell of a
        configuration of this experiment, with any seed (:func:`.results.check_runs`); call it
        before training.

        Parameters
        ----------
        configs : dict
            Configuration key -> ``(net, optimizer, method, scale)``; they add to those of
            earlier calls (the family checks every data set's folder before the first
            trains, :func:`run_configs` again, :meth:`train` its own configuration).
        data, backend
            As :meth:`train` gets them.
        """
        for key, (net, optimizer, method, scale) in configs.items():
            self.expected[key] = (partial(run_config, net, data, optimizer, method, scale,
                                          backend=backend), method.kind == "lifted")
        check_runs(self.out, self.expected, data, self.checked, self.base_seed)

    def __exit__(self, *exc):
        self.lock.release()

    def __contains__(self, key):
        return key in self.data["runs"]

    def __getitem__(self, key):
        return self.data["runs"][key]

    def put(self, key, record):
        """Store a finished configuration's record and write ``results.json``."""
        self.data["runs"][key] = json.loads(json.dumps(record))
        self.save()

    def save(self):
        """Write results.json atomically (an owner-tagged temporary, then os.replace), with
        the release that wrote it last in ``package`` (beside ``settings``, which a resumed
        run must match: a run resumed under a newer release is not refused)."""
        self.data["package"] = package_record()
        atomic_write_text(self.path, json.dumps(self.data, indent=1))

    def train(self, key, net, data, optimizer, method, scale, *, seed=0, backend="numpy",
              position=""):
        """Train one configuration, or return its stored record if it already finished.

        Parameters
        ----------
        key : str
            The configuration's name in ``results.json``.
        net, data, optimizer
            As :func:`penaltyprop.train.train`.
        method : Method
            A method object (``pp.BackProp()``, ``pp.ProxProp(...)``).
        scale : Scale
            The :class:`~.settings.Scale` (batch size, epochs).

        Returns
        -------
        dict
            :func:`train_cell`'s record.
        """
        if key in self:
            self.log(f"[{key}] done before, not run again")
            return self[key]
        configuration, key_seed = split_key(key, self.base_seed)
        if key_seed != seed:
            raise ValueError(f"key {key!r} names a cell of seed {key_seed}, not {seed}")
        self.check_runs({configuration: (net, optimizer, method, scale)}, data, backend=backend)
        record = train_cell(self.out, key, net, data, optimizer, method, scale, seed=seed,
                            backend=backend, log=self.log, position=position)
        self.finish(key, record)
        return record

    def finish(self, key, record):
        """Store a finished cell's record and delete its run folder (its checkpoint)."""
        self.put(key, record)
        run_dir = self.out / "runs" / key
        shutil.rmtree(run_dir, ignore_errors=True)  # its result is in results.json now
        if run_dir.parent.is_dir() and not any(run_dir.parent.iterdir()):
            run_dir.parent.rmdir()


def train_cell(out, key, net, data, optimizer, method, scale, *, seed=0, backend="numpy",
               log=print, position="", on_epoch=None) -> dict:
    """Train one cell into ``out/runs/KEY/`` (resuming its checkpoint there) and return its record.

    Runs wherever it is called: in the experiment's process, or on a Dask worker that sees
    ``out``. It does not touch ``results.json``: :meth:`Store.finish` stores the record.

    Parameters
    ----------
    out : path-like
        The experiment's output folder.
    key, net, data, optimizer, method, scale, seed, backend
        As :meth:`Store.train`.
    log : callable
        Takes one line (the start and every epoch).
    on_epoch : callable, optional
        Also called with every epoch's record (after ``log``).

    Returns
    -------
    dict
        With ``method`` (its label), ``method_options`` (its ``config()``), ``config``
        (train's), ``history`` (train's) and ``wall_s`` (seconds, evaluations included; of
        the last session if resumed).
    """
    run_dir = Path(out) / "runs" / key
    resume = (run_dir / CHECKPOINT).exists()
    log(f"[{key}]{f' {position}' if position else ''} "
        f"{'resuming' if resume else 'starting'}: {method.label}, {optimizer!r}")

    def epoch_done(r):
        log(f"[{key}] {format_epoch(r)}")
        if on_epoch is not None:
            on_epoch(r)

    t0 = time.perf_counter()
    kwargs = dict(progress=None, on_epoch=epoch_done, **_train_settings(method, scale, seed, backend))
    try:
        result = train(net, data, optimizer, method, out_dir=run_dir, resume=resume, **kwargs)
    except InexactResume:  # an earlier version's checkpoint of a lifted method: start again
        log(f"[{key}] its checkpoint holds no state of {method.label} (an earlier version wrote "
            f"it): a resume would not be exact, starting it again")
        (run_dir / CHECKPOINT).unlink()
        result = train(net, data, optimizer, method, out_dir=run_dir, resume=False, **kwargs)
    return {"method": method.label, "method_options": method.config(),
            "config": result.config, "history": result.history,
            "wall_s": time.perf_counter() - t0}


def run_config(net, data, optimizer, method, scale, *, seed, backend) -> dict:
    """The settings :func:`penaltyprop.train.train` checks and records for one cell
    (:func:`penaltyprop.runconfig.make_config`)."""
    return make_config(net, data, optimizer, method, **_train_settings(method, scale, seed,
                                                                        backend))


def _train_settings(method, scale, seed, backend) -> dict:
    """The settings :meth:`Store.train` gives :func:`penaltyprop.train.train` besides the
    configuration (a lifted method sweeps all samples: no batch size)."""
    return dict(batch_size=None if method.kind == "lifted" else scale.batch_size,
                epochs=scale.epochs, seed=seed, backend=backend, dtype="float32",
                eval_chunk=5000)


# --------------------------------------------------------------------------- plan and estimate
class Config(NamedTuple):
    """One configuration of an experiment: its store key, network, optimizer and method; as a
    cell, also its seed (None: the experiment's); ``scale``, numbers of its own (``epochs``,
    ``batch_size``; None: the experiment's, as :func:`run_configs` gets them)."""

    key: str
    net: object
    optimizer: object
    method: object
    seed: int | None = None
    scale: object = None


def run_configs(store, configs, data, scale, *, seed=0, backend="numpy"):
    """Train every configuration (resuming), once per seed of ``store.seeds``.

    Each configuration and seed is a cell (key :func:`~.cells.cell_key`, with ``seed`` the
    base seed). Without ``store.executor`` the cells train here, in order, after one line
    estimating the total time: it times one minibatch step of each configuration still to
    run (for a lifted method: one sweep) and one evaluation pass, on this machine now, and
    multiplies by the epochs left; a cell too large for this machine's memory is refused
    before that first step. With an executor, the cells go to it: each is checked for memory
    by :func:`penaltyprop.train.train` where it runs (a worker's memory is not this
    machine's), and the executor reports the time left as the cells' epochs finish. With
    ``store.cells`` set, only those configurations train. Either way every folder under
    ``runs/`` is checked first (:meth:`Store.check_runs`).

    Raises
    ------
    ValueError
        When ``store.cells`` names a configuration that is not in ``configs``.
    """
    configs = [c if c.scale is not None else c._replace(scale=scale) for c in configs]
    store.check_runs({c.key: (c.net, c.optimizer, c.method, c.scale) for c in configs},
                     data, backend=backend)  # before any training: no foreign runs
    if store.cells is not None:
        keys = [c.key for c in configs]
        unknown = [k for k in store.cells if k not in keys]
        if unknown:
            raise ValueError(f"cells {', '.join(unknown)} not in this experiment; its cells "
                             f"are {', '.join(keys)}")
        configs = [c for c in configs if c.key in store.cells]
    configs = [c._replace(key=cell_key(c.key, s, seed), seed=s)
               for c in configs for s in (store.seeds or (seed,))]
    if store.executor is not None:
        return store.executor.run(store, configs, backend=backend)
    todo = [c for c in configs if c.key not in store]
    for c in todo:  # before the estimate's first step: a configuration too large is refused
        check_run_memory(c.net, data, c.optimizer, c.method, run_config(
            c.net, data, c.optimizer, c.method, c.scale, seed=c.seed, backend=backend))
    if todo:
        seconds, steps = estimate(todo, data, store.out, backend=backend)
        timed = ", ".join(f"{label} {t:.2g} s" for label, t in steps.items())
        store.log(f"[plan] {len(todo)} of {len(configs)} configurations to run: about "
                  f"{format_duration(seconds)} on this machine now (one step each: {timed})")
    for i, c in enumerate(configs, start=1):
        store.train(c.key, c.net, data, c.optimizer, c.method, c.scale, seed=c.seed,
                    backend=backend, position=f"{i}/{len(configs)}")


def _short(value, width=60) -> str:
    """``repr(value)``, cut to ``width`` characters for a one-line message."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def log_line(line):
    """Print a progress line at once (runs take minutes)."""
    print(line, file=sys.stdout, flush=True)
