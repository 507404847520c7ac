r"""An experiment's cells as tasks on Dask (``dask.distributed``): a local cluster or a scheduler.

:func:`open_cells` starts a local cluster of N worker processes (``--workers N``) or connects
to a running scheduler (``--scheduler ADDRESS``), checks that every worker sees the output
folder (:meth:`DaskCells.check_folder`: each worker writes a file there, the driver reads it)
and runs the same penaltyprop code, and yields a :class:`DaskCells`. Set as a
:class:`~.runner.Store`'s ``executor`` (:meth:`DaskCells.with_data`), it receives the cells of
:func:`~.runner.run_configs`:

* each cell is one task, :func:`~.dask_worker.run_cell`, which trains into
  ``OUT/runs/KEY/`` with its per-epoch checkpoint and returns the cell's record;
* the driver stores every record as it arrives (:meth:`~.runner.Store.finish`, under the
  experiment's lock, which it holds), counts the cells done and prints the time left,
  estimated from the epoch times the workers report (:func:`~.cells.remaining_seconds`);
* a worker that dies mid-cell (killed, out of memory) is replaced by its nanny, and the
  scheduler runs the cell again (up to ``allowed-failures`` times, 3 by default); the retry
  resumes from the cell's last checkpoint. A cell that raises is reported, the others go on,
  and :class:`CellsFailed` is raised at the end: a rerun trains what is missing.

Each worker process runs one cell at a time (one thread) on ``blas_threads`` BLAS threads,
so that results do not depend on where a cell ran.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
import threading
import uuid
from pathlib import Path

from tqdm import tqdm

from .cells import CellsFailed, blas_threads_per_worker, remaining_seconds
from .dask_worker import CellTask, code_digest, data_digest, probe, run_cell
from .estimate import format_duration

#: Seconds to wait for a worker to join a scheduler given by address.
WAIT_FOR_WORKERS_S = 600

#: Seconds to try to reach a scheduler given by address.
CONNECT_TIMEOUT_S = 30


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def open_cells(*, workers=None, scheduler=None, blas_threads=None, backend="numpy", log=print):
    """Start a local Dask cluster of ``workers`` processes, or connect to ``scheduler``.

    Parameters
    ----------
    workers : int >= 1 or None
        Worker processes of a local cluster (one cell each at a time), or None.
    scheduler : str or None
        The address of a running Dask scheduler (``tcp://host:8786``), or None.
    blas_threads : int
        BLAS threads per worker (default: a share of this machine's cores, cores // workers,
        for a local cluster; 1 on a scheduler's workers, as Dask's nanny sets them).
    backend : {"numpy", "cupy"}
        ``"cupy"`` gives each local worker one GPU (round robin over the visible ones).
    log : callable
        Takes one line.

    Yields
    ------
    DaskCells
        The cluster (and the connection) close on exit.

    Raises
    ------
    ValueError
        When dask.distributed is missing, the scheduler cannot be reached, or no worker joins.
    """
    try:
        from distributed import Client
    except ImportError as err:
        raise ValueError("--workers and --scheduler need dask.distributed: pip install "
                         "'dask[distributed]'") from err
    cluster = None
    if workers is not None:
        cores = available_cores()
        threads = blas_threads or blas_threads_per_worker(workers, cores)
        if workers * threads > cores:
            log(f"[dask] {workers} workers x {threads} BLAS threads on {cores} cores: they "
                "compete for the cores")
        cluster = local_cluster(workers, threads, backend)
        try:
            client = Client(cluster)
        except BaseException:
            cluster.close()
            raise
        where = "local cluster"
    else:
        threads = blas_threads or 1
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as err:  # unreachable, or not an address
            raise ValueError(f"--scheduler {scheduler}: cannot connect ({err})") from err
        where = f"scheduler {scheduler}"
    try:
        n = workers or 1
        try:
            client.wait_for_workers(n, timeout=WAIT_FOR_WORKERS_S)
        except TimeoutError as err:
            raise ValueError(f"no Dask worker joined {where} within "
                             f"{format_duration(WAIT_FOR_WORKERS_S)}") from err
        log(f"[dask] {where}: {len(client.scheduler_info()['workers'])} worker processes, "
            f"{threads} BLAS thread{'s' if threads > 1 else ''} each")
        yield DaskCells(client, threads, log)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_cluster(workers, blas_threads, backend="numpy"):
    """A ``distributed.SpecCluster`` of ``workers`` nannied processes on this machine, one
    thread each (one cell at a time), BLAS limited to ``blas_threads``, no memory limit (a cell
    is not Dask data); with ``backend="cupy"``, worker i sees one GPU (round robin)."""
    from distributed import Nanny, Scheduler, SpecCluster

    env = {name: str(blas_threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "MKL_NUM_THREADS")}
    gpus = visible_gpus() if backend == "cupy" else []
    spec = {i: {"cls": Nanny, "options": {
        "nthreads": 1, "memory_limit": 0, "host": "127.0.0.1", "silence_logs": logging.WARNING,
        "env": {**env, **({"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} if gpus else {})}}}
        for i in range(workers)}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False,
                                               "dashboard_address": "127.0.0.1:0",
                                               "allowed_failures": 3}}
    return SpecCluster(workers=spec, scheduler=scheduler, silence_logs=logging.WARNING)


def visible_gpus() -> list:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given:
        return [g.strip() for g in given.split(",") if g.strip()]
    from ..backend import get_backend

    return [str(i) for i in range(get_backend("cupy").cuda.runtime.getDeviceCount())]


class DaskCells:
    """Runs cells as Dask tasks (built by :func:`open_cells`; see the module's docstring).

    Parameters
    ----------
    client : distributed.Client
        The connection to the cluster.
    blas_threads : int
        BLAS threads of each worker while it trains.
    log : callable
        Takes one line.
    """

    def __init__(self, client, blas_threads, log=print):
        self.client = client
        self.blas_threads = int(blas_threads)
        self.log = log
        self.loader, self.digest = None, None
        self.bar = None  # the progress bar over cells, while run() runs on a terminal

    def with_data(self, loader, data):
        """A copy that trains on ``data``; workers load it with ``loader()`` (a picklable
        callable, e.g. a ``functools.partial`` of the loading function) and check it."""
        bound = copy.copy(self)
        bound.loader, bound.digest = loader, data_digest(data)
        return bound

    def check_folder(self, out):
        """Check that every worker writes into ``out`` what this process then reads, and runs
        the same penaltyprop code and NumPy, one thread each. Creates ``out``.

        Raises
        ------
        ValueError
            Naming the worker and what to do (a shared filesystem, the same installation,
            ``--nthreads 1``); ``out`` is removed again if this call created it.
        """
        out = Path(out)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        problems, seen = [], []
        try:
            from ..backend import numpy as np

            for info in self.client.run(probe, str(out.resolve()), token).values():
                who = f"the worker on {info['host']} (pid {info['pid']})"
                path = Path(info["path"])
                if "error" in info:
                    problems.append(f"{who}: {info['error']}")
                    continue
                seen.append(path)
                try:
                    read = path.read_text()
                except OSError:
                    read = None
                if read != token:
                    problems.append(f"{who} wrote {path}, which this machine cannot read: put "
                                    "--out on a filesystem that every worker mounts at the same "
                                    "path")
                if info["code"] != code_digest() or info["numpy"] != np.__version__:
                    problems.append(f"{who} runs other code (penaltyprop {info['code'][:12]} "
                                    f"!= {code_digest()[:12]}, NumPy {info['numpy']} != "
                                    f"{np.__version__}): install the same version everywhere")
                if info["nthreads"] != 1:
                    problems.append(f"{who} runs {info['nthreads']} threads: start workers with "
                                    "--nthreads 1 (one cell per process)")
        finally:
            for path in seen:
                path.unlink(missing_ok=True)
            if problems and created and not any(out.iterdir()):
                out.rmdir()
        if problems:
            raise ValueError("--out " + str(out) + ": " + "; ".join(problems))

    def run(self, store, cells, *, backend="numpy"):
        """Train the cells (:class:`~.runner.Config` with key, seed and scale) not in
        ``store`` as tasks, storing each record as it arrives.

        Raises
        ------
        CellsFailed
            After every other cell has finished, when some cells failed.
        """
        todo = [c for c in cells if c.key not in store]
        if len(todo) < len(cells):
            self.log(f"[plan] {len(cells) - len(todo)} of {len(cells)} cells done before, not "
                     "run again")
        if not todo:
            return
        topic = f"penaltyprop-{uuid.uuid4().hex}"
        measured, lock = {}, threading.Lock()  # {key: {epoch: seconds}}, from the workers

        def on_event(event):  # runs in the client's thread
            message = event[1]
            if "line" in message:
                self.say(message["line"])
            else:
                with lock:
                    measured.setdefault(message["key"], {})[message["epoch"]] = message["seconds"]

        self.log(f"[plan] {len(todo)} of {len(cells)} cells to run as Dask tasks; the time left "
                 "follows from the epoch times the workers report")
        self.client.subscribe_topic(topic, on_event)
        self.bar = tqdm(total=len(todo), unit="cell", disable=not sys.stderr.isatty(),
                        leave=False, dynamic_ncols=True)
        futures = {}
        try:
            for c in todo:
                task = CellTask(str(Path(store.out).resolve()), c.key, c.net, c.optimizer,
                                c.method, c.scale, c.seed, backend, self.loader, self.digest,
                                self.blas_threads, topic)
                futures[self.client.submit(run_cell, task, key=f"{topic}-{c.key}",
                                           pure=False)] = c
            failed = self._collect(store, futures, measured, lock)
            order = {c.key: i for i, c in enumerate(cells)}  # as a serial run stores them
            store.data["runs"] = dict(sorted(store.data["runs"].items(),
                                             key=lambda item: order.get(item[0], -1)))
            store.save()
        finally:
            self.client.cancel(list(futures))  # nothing left running after an interrupt
            self.client.unsubscribe_topic(topic)
            self.bar.close()
        if failed:
            keys = ", ".join(k for k, _ in failed)
            raise CellsFailed(f"{len(failed)} of {len(todo)} cells failed ({keys}); the others "
                              f"are stored, and a rerun into {store.out} trains the missing "
                              f"ones. First error: {failed[0][1]}")

    def _collect(self, store, futures, measured, lock):
        """Store the records as the tasks finish; returns [(key, error)] of failed cells."""
        from distributed import as_completed

        groups = {c.key: c.method.label for c in futures.values()}  # futures: still running
        epochs = {c.key: c.scale.epochs for c in futures.values()}
        left = list(groups)  # in submission order
        failed = []
        for future in as_completed(list(futures)):
            key = futures.pop(future).key
            left.remove(key)
            try:
                record = future.result()
            except Exception as err:  # the task's own error, or KilledWorker after retries
                failed.append((key, f"{type(err).__name__}: {err}"))
                self.say(f"[{key}] failed: {type(err).__name__}: {err}")
            else:
                store.finish(key, record)
            # Let go of the result: a worker that dies later holding it would otherwise make
            # the scheduler train the cell again.
            future.release()
            workers = self.workers()  # never under the lock: on_event holds it in the
            with lock:  # client's thread, which scheduler_info needs
                so_far = {k: dict(v) for k, v in measured.items()}
            seconds = remaining_seconds(left, so_far, groups, epochs, workers)
            eta = (f"; about {format_duration(seconds)} left" if left and seconds is not None
                   else "")
            self.bar.update(1)
            self.say(f"[cells] {len(groups) - len(left)}/{len(groups)} done ({key}"
                     f"{', failed' if failed and failed[-1][0] == key else ''}){eta}")
        return failed

    def say(self, line):
        """Log a line without breaking the progress bar."""
        if self.bar is None or self.bar.disable:
            self.log(line)
        else:
            with tqdm.external_write_mode():
                self.log(line)

    def workers(self) -> int:
        """Workers in the cluster now (at least 1)."""
        return max(len(self.client.scheduler_info()["workers"]), 1)
