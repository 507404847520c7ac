"""One process at a time in an output folder (issue 14): RunLock writes the owner's pid and
host into a lock file; a second holder fails at once, naming folder, pid and host; a lock left
by a process that is gone (kill -9) is stale and taken over; a clean release leaves nothing.
Also the helpers beside it: writable-folder checks and stale temporaries (penaltyprop.fsutil).
"""
import errno
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from penaltyprop import fsutil, runlock
from penaltyprop.fsutil import HOST, atomic_writer, check_writable_dir, remove_stale
from penaltyprop.runlock import LOCK_FILE, LockedError, RunLock

HOLD = """
import sys
from penaltyprop.runlock import RunLock
lock = RunLock(sys.argv[1], what="run").acquire()
print("held", flush=True)
sys.stdin.read()  # hold until killed
"""


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def holder(tmp_path):
    """Another process that holds the lock of tmp_path / "run"; yields (process, folder)."""
    folder = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    yield child, folder
    child.kill()
    child.wait()


# --------------------------------------------------------------------------- the lock
def test_the_lock_file_names_its_owner_and_goes_with_it(tmp_path):
    with RunLock(tmp_path / "run", what="run") as lock:
        record = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
        assert (record["pid"], record["host"], record["what"]) == (os.getpid(), HOST, "run")
        assert lock.held and lock.stale_owner is None and lock.since <= time.time()
    assert not lock.held and list((tmp_path / "run").iterdir()) == []


def test_a_second_process_fails_at_once_naming_folder_pid_and_host(holder):
    child, folder = holder
    start = time.monotonic()
    with pytest.raises(LockedError, match=f"run folder {folder} is in use by pid {child.pid} "
                                          f"on {HOST} since .*: wait for it") as err:
        RunLock(folder, what="run").acquire()
    assert time.monotonic() - start < 1.0 and "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)  # the CLI's exit status 2


def test_a_lock_left_by_a_killed_process_is_taken_over(holder):
    child, folder = holder
    child.kill()  # kill -9: the lock file stays, with the dead owner's pid
    child.wait()
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == child.pid
    with RunLock(folder) as lock:
        assert lock.stale_owner["pid"] == child.pid
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_second_holder_in_the_same_process_fails_too(tmp_path):
    with RunLock(tmp_path, what="experiment"), pytest.raises(
            LockedError, match=f"experiment folder {tmp_path} is in use by pid {os.getpid()}"):
        RunLock(tmp_path, what="experiment").acquire()
    with RunLock(tmp_path, what="experiment"):  # free again once released
        pass


def test_a_waiting_lock_gets_the_folder_when_its_holder_leaves(holder):
    child, folder = holder
    child.stdin.close()  # the holder's stdin ends: it exits and its lock goes
    with RunLock(folder, wait_s=30) as lock:
        assert lock.held
    child.wait()


def test_another_hosts_lock_file_is_not_taken_over(tmp_path):
    record = {"pid": 4242, "host": "elsewhere.example", "what": "run", "since": "yesterday"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(record))
    with pytest.raises(LockedError, match=f"pid 4242 on elsewhere.example since yesterday: if "
                                          f"no run on elsewhere.example uses it, delete "
                                          f"{tmp_path / LOCK_FILE}"):
        RunLock(tmp_path).acquire()


def test_without_fcntl_a_dead_owners_lock_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock, "fcntl", None)  # Windows' protocol: exclusive creation
    dead = dead_pid()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead, "host": HOST}))
    with RunLock(tmp_path) as lock:
        assert lock.stale_owner["pid"] == dead
        with pytest.raises(LockedError, match=f"in use by pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_folder_that_cannot_be_created_names_it(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=f"run folder {tmp_path / 'file' / 'sub'}: cannot "
                                         "create it"):
        RunLock(tmp_path / "file" / "sub").acquire()


# --------------------------------------------------------------------------- writable folders
def test_check_writable_dir_creates_the_folder_and_leaves_nothing(tmp_path):
    assert check_writable_dir(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert list((tmp_path / "a" / "b").iterdir()) == []


def test_check_writable_dir_refuses_a_file_naming_flag_and_path(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=f"^--out {tmp_path / 'f'} is a file, not a folder$"):
        check_writable_dir(tmp_path / "f", "--out")
    with pytest.raises(ValueError, match=f"^out_dir {tmp_path / 'f' / 'x'}: cannot create the "
                                         r"folder \(Not a directory\)$"):
        check_writable_dir(tmp_path / "f" / "x", "out_dir")


@pytest.mark.parametrize("code, words", [(errno.EROFS, "Read-only file system"),
                                         (errno.EACCES, "Permission denied"),
                                         (errno.ENOSPC, "No space left on device")])
def test_check_writable_dir_refuses_read_only_or_full_folders(tmp_path, monkeypatch, code,
                                                              words):
    def refuse(*args, **kwargs):  # root ignores file modes: simulate the file system
        raise OSError(code, words)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match=f"^--out {tmp_path} is not writable \\({words}\\)$"):
        check_writable_dir(tmp_path, "--out")


def test_check_writable_dir_refuses_a_disk_without_room(tmp_path):
    with pytest.raises(ValueError, match=f"--json {tmp_path}: its disk is full"):
        check_writable_dir(tmp_path, "--json", min_free_bytes=1 << 62)


# --------------------------------------------------------------------------- temporaries
def test_atomic_writer_names_its_owner_and_cleans_up_on_error(tmp_path):
    with atomic_writer(tmp_path / "a.json") as f:
        f.write(b"{}")
        tmp = next(tmp_path.glob(".a.json-*.tmp"))
        assert fsutil.owner_of(tmp.name) == (os.getpid(), HOST)
    assert (tmp_path / "a.json").read_bytes() == b"{}" and not tmp.exists()
    with pytest.raises(RuntimeError), atomic_writer(tmp_path / "a.json") as f:
        f.write(b"half")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert (tmp_path / "a.json").read_bytes() == b"{}"


def test_remove_stale_keeps_live_writers_and_other_hosts(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {"dead": f".x.npz-p{dead_pid()}@{HOST}-ab12cd.tmp",
                 "live": f".x.npz-p{live.pid}@{HOST}-ef34gh.tmp",
                 "mine": f".x.npz-p{os.getpid()}@{HOST}-ij56kl.tmp",
                 "other_host": f".x.npz-p{dead_pid()}@other-host.example-mn78op.tmp",
                 "legacy": ".x.npz-qr90st.tmp"}
        for name in names.values():
            (tmp_path / name).write_bytes(b"partial")
        removed = remove_stale(tmp_path, ".x.npz-*.tmp")
        assert [p.name for p in removed] == [names["dead"]]
        # A caller holding the folder's lock also removes what is older than its lock,
        # except the files of live writers of this host.
        old = time.time() - 60
        for key in ("other_host", "legacy", "live"):
            os.utime(tmp_path / names[key], (old, old))
        removed = remove_stale(tmp_path, ".x.npz-*.tmp", since=time.time())
        assert sorted(p.name for p in removed) == sorted([names["other_host"], names["legacy"]])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["live"],
                                                                     names["mine"]])
    finally:
        live.kill()
        live.wait()


def test_owner_of_reads_hosts_with_dashes():
    assert fsutil.owner_of(".checkpoint.npz-p12@my-host.lan-a_b9x.tmp") == (12, "my-host.lan")
    assert fsutil.owner_of(".extract-p7@h-1-xyz") == (7, "h-1")
    assert fsutil.owner_of(".checkpoint.npz-k2j4h5.tmp") is None
