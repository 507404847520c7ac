r"""What every experiment shares: its data, its optimizers, and a results store that resumes.

An experiment is a list of *configurations* (one method object at one step size ...). The
:class:`Store` keeps ``results.json`` in the output folder; each configuration is written there
as soon as it finishes and is never run again. A configuration interrupted mid-way resumes from
the per-epoch checkpoint that :func:`penaltyprop.train.train` writes under ``runs/KEY/``.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from .. import optim
from ..backend import host_rng
from ..backend import numpy as np
from ..data import load_dataset
from ..data.base import Dataset
from ..train import CHECKPOINT, format_epoch, train

RESULTS = "results.json"


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


def make_optimizer(name, tau):
    """``"nesterov"`` (momentum 0.95, the paper's), ``"sgd"`` (plain) or ``"adam"``; lr = tau."""
    return optim.make_optimizer(name, tau)


# --------------------------------------------------------------------------- the store
class Store:
    """``results.json`` of one experiment run: settings, finished configurations, extras.

    Parameters
    ----------
    out : path-like, the output folder (created).
    settings : dict, JSON-able; a store whose settings differ refuses to resume.
    log : callable taking one line of text (progress).
    """

    def __init__(self, out, settings, log=print):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / RESULTS
        self.log = log
        settings = json.loads(json.dumps(settings))  # normalise tuples to lists
        if self.path.exists():
            self.data = json.loads(self.path.read_text())
            if self.data["settings"] != settings:
                raise ValueError(f"out {self.out} holds results of other settings "
                                 f"({self.data['settings']} != {settings}); choose another --out")
        else:
            self.data = {"settings": settings, "runs": {}, "extra": {}}
            self.save()

    def __contains__(self, key):
        return key in self.data["runs"]

    def __getitem__(self, key):
        return self.data["runs"][key]

    def put(self, key, record):
        self.data["runs"][key] = json.loads(json.dumps(record))
        self.save()

    def save(self):
        """Write results.json atomically (temp file + os.replace)."""
        tmp = self.path.with_name(f".{RESULTS}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)

    def train(self, key, net, data, optimizer, method, scale, *, seed=0, backend="numpy"):
        """Train one configuration, or return its stored record if it already finished.

        Parameters
        ----------
        key : str, the configuration's name in ``results.json``.
        net, data, optimizer : as :func:`penaltyprop.train.train`.
        method : a method object (``pp.BackProp()``, ``pp.ProxProp(...)``).
        scale : the :class:`~.settings.Scale` (batch size, epochs).

        Returns
        -------
        dict with ``method`` (its label), ``method_options`` (its ``config()``), ``config``
        (train's), ``history`` (train's) and ``wall_s`` (seconds, evaluations included; of
        the last session if resumed).
        """
        if key in self:
            self.log(f"[{key}] done before, not run again")
            return self[key]
        run_dir = self.out / "runs" / key
        resume = (run_dir / CHECKPOINT).exists()
        self.log(f"[{key}] {'resuming' if resume else 'starting'}: {method.label}, "
                 f"{optimizer!r}")
        t0 = time.perf_counter()
        result = train(net, data, optimizer, method, batch_size=scale.batch_size,
                       epochs=scale.epochs, seed=seed,
                       backend=backend, out_dir=run_dir, resume=resume, progress=False,
                       on_epoch=lambda r: self.log(f"[{key}] {format_epoch(r)}"))
        record = {"method": method.label, "method_options": method.config(),
                  "config": result.config, "history": result.history,
                  "wall_s": time.perf_counter() - t0}
        self.put(key, record)
        shutil.rmtree(run_dir, ignore_errors=True)  # its result is in results.json now
        if not any(run_dir.parent.iterdir()):
            run_dir.parent.rmdir()
        return record


def log_line(line):
    """Print a progress line at once (runs take minutes)."""
    print(line, file=sys.stdout, flush=True)
