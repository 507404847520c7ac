r"""What a Dask worker runs for an experiment: one cell (:func:`run_cell`) and the folder probe.

The driver (:mod:`~penaltyprop.experiments.dask_cells`) submits one :class:`CellTask` per
cell. On the worker, :func:`run_cell`

1. loads the experiment's data once per worker process (``task.loader``, cached) and checks
   that its digest is the driver's (:func:`data_digest`): every worker trains on the same
   numbers or the cell fails with a message;
2. trains the cell with :func:`~penaltyprop.experiments.runner.train_cell` into
   ``OUT/runs/KEY/`` with a per-epoch checkpoint, resuming it when one is there (a retry of
   a cell whose worker died), under a fixed number of BLAS threads (``task.blas_threads``);
3. sends every progress line and epoch time to the driver as Dask events (topic
   ``task.topic``), and returns the cell's record.

Dask imports happen inside the functions: importing this module imports no Dask.

For tests, the environment variable :data:`EXIT_IN_CELL` = ``KEY:EPOCH:MARKER`` makes the
worker process that trains cell KEY exit (``os._exit``) when epoch EPOCH has been evaluated,
before its checkpoint is written, once: it first creates the file MARKER, and does nothing
while MARKER exists. MARKER = ``raise`` makes the cell raise RuntimeError there instead,
every time (a cell that fails on its worker).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..backend import numpy as np
from ..fsutil import HOST, why
from ..runlock import LOCK_FILE
from .runner import train_cell

#: Test hook: ``KEY:EPOCH:MARKER`` (see the module's docstring).
EXIT_IN_CELL = "PENALTYPROP_TEST_EXIT_IN_CELL"

_DATA = {}  # repr(loader) -> (Dataset, digest): each data set is loaded once per process
_CODE = []  # this process's code digest, computed once


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to train one cell (pickled to it by Dask).

    Attributes
    ----------
    out : str
        The experiment's output folder (on a filesystem the worker sees).
    key : str
        The cell's store key; it trains into ``out/runs/KEY/``.
    net, optimizer, method
        The configuration.
    scale : Scale
        Its numbers (``epochs``, ``batch_size``).
    seed : int
        The cell's seed.
    backend : {"numpy", "cupy"}
        The array backend.
    loader : callable
        Picklable, returning the experiment's :class:`~penaltyprop.data.Dataset`.
    digest : str
        The loader's data's :func:`data_digest` on the driver.
    blas_threads : int
        BLAS threads of the worker process while it trains.
    topic : str
        The Dask event topic of the driver's progress.
    """

    out: str
    key: str
    net: object
    optimizer: object
    method: object
    scale: object
    seed: int
    backend: str
    loader: object
    digest: str
    blas_threads: int
    topic: str


def run_cell(task: CellTask) -> dict:
    """Train one cell on this worker; returns :func:`~.runner.train_cell`'s record plus
    ``ran_on`` (``host``, ``blas_threads``).

    Raises
    ------
    ValueError
        When the worker runs several tasks at once (start workers with ``--nthreads 1``),
        when its data differ from the driver's, or when another live worker holds the cell's
        run folder.
    """
    from distributed import get_client, get_worker
    from threadpoolctl import threadpool_limits

    worker = get_worker()
    if worker.state.nthreads != 1:
        raise ValueError(f"worker {worker.address} runs {worker.state.nthreads} threads; "
                         "penaltyprop needs one cell per worker process: start workers with "
                         "--nthreads 1")
    data = worker_data(task.loader, task.digest)
    run_dir = Path(task.out) / "runs" / task.key
    if (run_dir / LOCK_FILE).exists():  # a retry, or a cell still running elsewhere
        take_over_foreign_lock(run_dir, get_client())

    def log(line):
        worker.log_event(task.topic, {"key": task.key, "line": line})

    def on_epoch(r):
        if "epoch_time" in r:  # not a divergence notice
            worker.log_event(task.topic, {"key": task.key, "epoch": r["epoch"],
                                          "seconds": r["epoch_time"] + r["eval_time"]})
        _exit_if_asked(task.key, r["epoch"])

    with threadpool_limits(limits=task.blas_threads, user_api="blas"):
        record = train_cell(task.out, task.key, task.net, data, task.optimizer, task.method,
                            task.scale, seed=task.seed, backend=task.backend, log=log,
                            on_epoch=on_epoch)
    record["ran_on"] = {"host": HOST, "blas_threads": task.blas_threads}
    return record


def worker_data(loader, digest):
    """The data set of ``loader``, loaded once per process; ValueError if its digest is not
    ``digest`` (the driver's)."""
    name = repr(loader)
    if name not in _DATA:
        data = loader()
        _DATA.clear()  # one data set at a time: the family experiment moves on
        _DATA[name] = (data, data_digest(data))
    data, found = _DATA[name]
    if found != digest:
        raise ValueError(f"the worker on {HOST} loaded other data than the driver ({data!r}, "
                         f"digest {found[:12]} != {digest[:12]}): give every machine the same "
                         "data files (--data-dir on the shared filesystem)")
    return data


def data_digest(data) -> str:
    """BLAKE2b digest of a Dataset's arrays (train, validation, test) and description."""
    h = hashlib.blake2b(repr(data).encode(), digest_size=20)
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        h.update(np.ascontiguousarray(getattr(data, name)).data)
    return h.hexdigest()


def code_digest() -> str:
    """BLAKE2b digest of this process's penaltyprop source files (names and contents)."""
    if not _CODE:
        root = Path(__file__).resolve().parents[1]  # the penaltyprop package
        h = hashlib.blake2b(digest_size=20)
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
        _CODE.append(h.hexdigest())
    return _CODE[0]


def identity():
    """``(host, pid)`` of this process, as lock files record their owners."""
    return HOST, os.getpid()


def take_over_foreign_lock(run_dir, client) -> bool:
    """Delete a cell's run lock left by a worker of another host that has left the cluster.

    A lock file of another host is refused by :class:`~penaltyprop.runlock.RunLock` (that
    host's file system may not share locks with this one). When a worker dies mid-cell, the
    cell's retry can land on another machine: its lock file names a (host, pid) that no
    worker of the cluster has any more, so it is stale. Returns whether it was deleted.
    """
    path = Path(run_dir) / LOCK_FILE
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(owner, dict) or owner.get("host") in (None, HOST):
        return False  # RunLock itself handles this host's locks
    alive = {tuple(v) for v in client.run(identity).values()}
    if (owner["host"], owner.get("pid")) in alive:
        return False  # its worker still lives: RunLock refuses, naming it
    path.unlink(missing_ok=True)
    return True


def probe(out, token, dask_worker=None) -> dict:
    """Write ``out/.penaltyprop-probe-TOKEN-HOST-PID`` holding ``token``: the driver reads it
    to check that it sees this worker's files. Returns where, and this worker's versions.

    Run by ``Client.run``, which passes the worker as ``dask_worker``.
    """
    path = Path(out) / f".penaltyprop-probe-{token}-{HOST}-{os.getpid()}"
    info = {"host": HOST, "pid": os.getpid(), "path": str(path), "code": code_digest(),
            "numpy": np.__version__, "nthreads": dask_worker.state.nthreads}
    try:
        path.write_text(token)
    except OSError as err:
        info["error"] = f"cannot write {path} ({why(err)})"
    return info


def _exit_if_asked(key, epoch):
    """The :data:`EXIT_IN_CELL` test hook."""
    spec = os.environ.get(EXIT_IN_CELL)
    if not spec:
        return
    target, at, marker = spec.split(":", 2)
    if target != key or str(epoch) != at:
        return
    if marker == "raise":
        raise RuntimeError(f"cell {key} failed in epoch {epoch} ({EXIT_IN_CELL})")
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return  # done once already
    os._exit(3)
