"""An experiment's cells as tasks on Dask: the same results as the serial run, and no cell lost.

Claims: ``experiment table1 --scale tiny --workers 2`` stores, cell for cell, exactly the
histories of the serial run under the same number of BLAS threads per process; a worker
killed in the middle of a cell is replaced, the cell resumes from its checkpoint, and every
cell is stored once, complete; a cell that raises is reported while the others are stored;
the cells also run on the workers of a scheduler given by address; the driver refuses workers
that cannot see its output folder, run other code, or run several cells at once.

The local clusters here are real (two worker processes each), so these tests take a few
seconds each; the checks of the driver's logic use a stand-in client.
"""
import json
import os
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from threadpoolctl import threadpool_limits  # noqa: E402

from penaltyprop import cli  # noqa: E402
from penaltyprop.experiments import dask_cells, dask_worker, run_experiment  # noqa: E402
from penaltyprop.experiments.cells import CellsFailed, blas_threads_per_worker  # noqa: E402
from penaltyprop.experiments.dask_worker import (  # noqa: E402
    EXIT_IN_CELL,
    code_digest,
    take_over_foreign_lock,
)
from penaltyprop.fsutil import HOST  # noqa: E402
from penaltyprop.runlock import LOCK_FILE  # noqa: E402

pytestmark = pytest.mark.slow
TIMING = {"epoch_time", "eval_time", "time"}  # wall-clock entries: the only ones that may differ
CELLS = ["cg3_tau1", "backprop_tau0.05", "cg5_tau5", "cg1_tau50"]  # cg1_tau50 diverges


def _quiet(line):
    pass


def _runs(folder):
    return json.loads((Path(folder) / "results.json").read_text())["runs"]


def _serial(folder, blas_threads, **kwargs):
    """The oracle: the serial run, its BLAS limited as each worker's is."""
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        run_experiment("table1", "tiny", out=folder, log=_quiet, **kwargs)
    return _runs(folder)


def _assert_same_cells(ours, serial):
    assert list(ours) == list(serial)  # stored in the serial order too
    for key, record in serial.items():
        got = ours[key]
        assert {k: v for k, v in got["history"].items() if k not in TIMING} == {
            k: v for k, v in record["history"].items() if k not in TIMING}, key
        assert (got["method"], got["method_options"], got["config"]) == (
            record["method"], record["method_options"], record["config"])


def test_table1_on_two_workers_equals_the_serial_run(tmp_path, capsys):
    status = cli.main(["experiment", "table1", "--scale", "tiny", "--workers", "2",
                       "--out", str(tmp_path / "dask")])
    assert status == 0
    printed = capsys.readouterr().out
    assert "[dask] local cluster: 2 worker processes" in printed
    assert "[cells] 36/36 done" in printed
    ours = _runs(tmp_path / "dask")
    threads = blas_threads_per_worker(2, dask_cells.available_cores())
    assert {r["ran_on"]["blas_threads"] for r in ours.values()} == {threads}
    _assert_same_cells(ours, _serial(tmp_path / "serial", threads))
    assert not (tmp_path / "dask" / "runs").exists()  # every checkpoint stored and removed
    assert (tmp_path / "dask" / "table1.md").read_text().split("\n", 1)[1] == (
        tmp_path / "serial" / "table1.md").read_text().split("\n", 1)[1]


def test_a_worker_killed_mid_cell_is_retried_from_its_checkpoint(tmp_path, monkeypatch):
    """The worker training cg3_tau1 exits after evaluating epoch 2, before checkpointing it;
    its replacement resumes the cell from epoch 1, and the result is the serial one."""
    marker = tmp_path / "exited"
    monkeypatch.setenv(EXIT_IN_CELL, f"cg3_tau1:2:{marker}")  # the workers inherit it
    lines = []
    run_experiment("table1", "tiny", out=tmp_path / "dask", cells=CELLS, workers=2,
                   log=lines.append)
    assert marker.exists()  # a worker did exit in the middle of the cell
    assert any(line.startswith("[cg3_tau1] resuming") for line in lines)
    ours = _runs(tmp_path / "dask")
    assert sorted(ours) == sorted(CELLS)  # nothing lost, nothing twice
    assert ours["cg3_tau1"]["history"]["epoch"] == [0, 1, 2]
    monkeypatch.delenv(EXIT_IN_CELL)
    threads = blas_threads_per_worker(2, dask_cells.available_cores())
    _assert_same_cells(ours, _serial(tmp_path / "serial", threads, cells=CELLS))
    assert not (tmp_path / "dask" / "runs").exists()


def test_a_killed_driver_takes_its_workers_along_and_a_rerun_finishes(tmp_path, capsys):
    """kill -9 of the driver mid-grid: its local workers exit too, and a rerun into the same
    folder stores only the missing cells; all are the serial run's."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    out = tmp_path / "dask"
    argv = ["experiment", "table1", "--scale", "tiny", "--workers", "2", "--out", str(out)]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    driver = subprocess.Popen([sys.executable, "-m", "penaltyprop", *argv], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        try:
            if len(_runs(out)) >= 4:
                break
        except (OSError, ValueError):  # not written yet
            pass
        time.sleep(0.05)
    workers = psutil.Process(driver.pid).children(recursive=True)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    stored = len(_runs(out))
    assert 4 <= stored < 36, "the driver finished before it could be killed"
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert alive == []  # no worker outlives its driver

    assert cli.main(argv) == 0
    assert f"{stored} of 36 cells done before" in capsys.readouterr().out
    threads = blas_threads_per_worker(2, dask_cells.available_cores())
    _assert_same_cells(_runs(out), _serial(tmp_path / "serial", threads))


def test_seeds_run_on_the_workers_of_a_scheduler_given_by_address(tmp_path):
    cluster = dask_cells.local_cluster(2, 1)
    try:
        run_experiment("table1", "tiny", out=tmp_path / "dask", cells=CELLS[:2],
                       seeds=[0, 1], scheduler=cluster.scheduler_address, log=_quiet)
    finally:
        cluster.close()
    ours = _runs(tmp_path / "dask")
    assert {r["ran_on"]["blas_threads"] for r in ours.values()} == {1}  # a scheduler's default
    _assert_same_cells(ours, _serial(tmp_path / "serial", 1, cells=CELLS[:2], seeds=[0, 1]))


def test_a_damaged_checkpoint_is_refused_before_any_cell_trains(tmp_path, capsys):
    """The driver checks every run folder before it submits a cell: a damaged checkpoint is
    one error naming it (status 2), and nothing is trained or stored."""
    out = tmp_path / "dask"
    (out / "runs" / "cg5_tau5").mkdir(parents=True)
    (out / "runs" / "cg5_tau5" / "checkpoint.npz").write_bytes(b"not a checkpoint")
    argv = ["experiment", "table1", "--scale", "tiny", "--workers", "2", "--out", str(out),
            "--cells", *CELLS]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "cg5_tau5" in err and "checkpoint" in err
    assert not (out / "results.json").exists()


def test_a_failing_cell_is_reported_and_the_others_are_stored(tmp_path, capsys, monkeypatch):
    """A cell that raises on its worker (the test hook, in epoch 1): the command names it,
    exits with status 1, the others are stored, and a rerun trains only that cell."""
    out = tmp_path / "dask"
    monkeypatch.setenv(dask_worker.EXIT_IN_CELL, "cg5_tau5:1:raise")
    argv = ["experiment", "table1", "--scale", "tiny", "--workers", "2", "--out", str(out),
            "--cells", *CELLS]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "1 of 4 cells failed (cg5_tau5)" in err and "cell cg5_tau5 failed in epoch 1" in err
    assert sorted(_runs(out)) == sorted(set(CELLS) - {"cg5_tau5"})
    monkeypatch.delenv(dask_worker.EXIT_IN_CELL)
    assert cli.main(argv) == 0
    assert "3 of 4 cells done before" in capsys.readouterr().out
    assert sorted(_runs(out)) == sorted(CELLS)


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "no port"])
def test_an_unreachable_scheduler_is_one_error(address, tmp_path, monkeypatch):
    monkeypatch.setattr(dask_cells, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(ValueError, match=f"--scheduler {address}: cannot connect"):
        run_experiment("table1", "tiny", out=tmp_path / "out", scheduler=address, log=_quiet)
    assert not (tmp_path / "out").exists()


def test_the_family_trains_each_data_set_on_the_workers(tmp_path):
    """Each data set's methods run as tasks (workers load the data set themselves) and store
    what the serial run stores."""
    run_experiment("family", "tiny", out=tmp_path / "dask", workers=2, log=_quiet)
    threads = blas_threads_per_worker(2, dask_cells.available_cores())
    with threadpool_limits(limits=threads, user_api="blas"):
        run_experiment("family", "tiny", out=tmp_path / "serial", log=_quiet)
    for name in ("synthetic", "digits"):
        ours = _runs(tmp_path / "dask" / name)
        assert {r["ran_on"]["blas_threads"] for r in ours.values()} == {threads}
        _assert_same_cells(ours, _runs(tmp_path / "serial" / name))


# --------------------------------------------------------------------------- the driver's checks
class _Client:
    """Stands in for distributed.Client: ``run`` returns the given answers per worker."""

    def __init__(self, answers):
        self.answers = answers

    def run(self, fn, *args):
        return {addr: answer(*args) if callable(answer) else answer
                for addr, answer in self.answers.items()}


def _worker(write=True, code=None, nthreads=1, host="node7", pid=11, error=None):
    """A worker's probe answer: it writes the token (or not) where the driver looks."""
    import numpy

    def answer(out, token):
        path = Path(out) / f".penaltyprop-probe-{token}-{host}-{pid}"
        if write:
            path.write_text(token)
        info = {"host": host, "pid": pid, "path": str(path), "code": code or code_digest(),
                "numpy": numpy.__version__, "nthreads": nthreads}
        return {**info, "error": error} if error else info
    return answer


@pytest.mark.parametrize("bad, match", [
    (_worker(write=False), "which this machine cannot read: put --out on a filesystem"),
    (_worker(code="0" * 40), "runs other code"),
    (_worker(nthreads=4), "start workers with --nthreads 1"),
    (_worker(write=False, error="cannot write /x (Permission denied)"), "Permission denied"),
])
def test_the_folder_check_refuses_a_worker_that_cannot_share_it(bad, match, tmp_path):
    cells = dask_cells.DaskCells(_Client({"a": _worker(host="node1"), "b": bad}), 1, _quiet)
    with pytest.raises(ValueError, match=match) as info:
        cells.check_folder(tmp_path / "out")
    assert "node7 (pid 11)" in str(info.value)
    assert not (tmp_path / "out").exists()  # created by the check, removed again
    dask_cells.DaskCells(_Client({"a": _worker()}), 1, _quiet).check_folder(tmp_path / "ok")
    assert list((tmp_path / "ok").iterdir()) == []  # the probe files are gone


def test_a_lock_of_a_worker_gone_from_another_host_is_taken_over(tmp_path):
    def lock(host, pid):
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host}))

    workers = _Client({"w1": lambda: ("other", 5), "w2": lambda: (HOST, os.getpid())})
    lock("other", 6)  # its worker has left the cluster: stale
    assert take_over_foreign_lock(tmp_path, workers) and not (tmp_path / LOCK_FILE).exists()
    lock("other", 5)  # a live worker's: kept (RunLock then refuses, naming it)
    assert not take_over_foreign_lock(tmp_path, workers) and (tmp_path / LOCK_FILE).exists()
    lock(HOST, 10**7)  # this host's: RunLock's own business
    assert not take_over_foreign_lock(tmp_path, workers) and (tmp_path / LOCK_FILE).exists()


def test_cells_failed_is_not_bad_input():
    assert issubclass(CellsFailed, RuntimeError) and not issubclass(CellsFailed, ValueError)
