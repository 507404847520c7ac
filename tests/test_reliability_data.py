"""Reliability of the data loaders (issue 14): a short folder is refused, never split wrong;
a cache that is a file or cannot be written says so; two processes never fill one cache at
once; leftovers of a killed download or extraction are cleaned up and never read; a wrong
checksum says "checksum mismatch" with both hashes; a data set has a fingerprint.

All offline, with the small-file fixtures of test_data.py.
"""
import errno
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
import test_data
from test_data import (
    RECORDS_PER_FILE,
    free_port,
    serve_archive,
    write_cifar_folder,
    write_mnist_folder,
)

from penaltyprop.data import (
    DATA_DIR_ENV,
    DataError,
    cache_dir,
    cifar10,
    fetch,
    fingerprint,
    load_dataset,
    mnist,
)
from penaltyprop.fsutil import HOST
from penaltyprop.runlock import RunLock

# test_data.py's fixtures: an empty cache named by the variable, small CIFAR-10 and MNIST,
# a local HTTP server
cache, small_cifar, small_mnist, server = (test_data.cache, test_data.small_cifar,
                                           test_data.small_mnist, test_data.server)


def one_line(err):
    return "\n" not in str(err.value)


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --------------------------------------------------------------------------- short folders
@pytest.mark.parametrize("n_train", [4000, 5000])
def test_short_mnist_folder_is_refused_naming_the_counts(tmp_path, n_train):
    # The repro: 4,000 training images gave 3,000 / 1,000 and no error; 5,000 gave 0.
    write_mnist_folder(tmp_path, n_train=n_train, n_test=10_000)
    with pytest.raises(DataError, match=f"train-images-idx3-ubyte.gz holds {n_train} images, "
                                        "MNIST has 60000") as err:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert one_line(err)
    with pytest.raises(DataError, match=f"holds {n_train} images"):  # never "1..-1000"
        load_dataset("mnist", data_dir=tmp_path, download=False, subset=10)


def test_split_needs_more_training_images_than_validation_ones(tmp_path, small_mnist,
                                                               monkeypatch):
    monkeypatch.setattr(mnist, "N_VALIDATION", 8)  # all 8 training images would validate
    write_mnist_folder(tmp_path)
    with pytest.raises(DataError, match=r"mnist: 8 training images in .*, too few for the "
                                        r"split \(the last 8 are the validation set\)") as err:
        load_dataset("mnist", data_dir=tmp_path, download=False, subset=1)
    assert one_line(err)


def test_short_cifar_split_is_refused_before_scaling(tmp_path, small_cifar, monkeypatch):
    monkeypatch.setattr(cifar10, "N_VALIDATION", 5 * RECORDS_PER_FILE)
    write_cifar_folder(tmp_path / cifar10.FOLDER)
    with pytest.raises(DataError, match="cifar10: 20 training images in .*too few"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_subset_message_names_a_positive_range():
    with pytest.raises(ValueError, match=r"subset must be an integer in 1\.\.1197 "):
        load_dataset("digits", subset=5000)


# --------------------------------------------------------------------------- the cache folder
def test_data_dir_variable_naming_a_file_is_a_data_error(tmp_path, monkeypatch):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    monkeypatch.setenv(DATA_DIR_ENV, str(a_file))
    for load in (lambda: cache_dir(), lambda: load_dataset("cifar10"),
                 lambda: load_dataset("mnist", download=False)):
        with pytest.raises(DataError, match=f"{DATA_DIR_ENV} {a_file} is a file, not a "
                                            "folder") as err:
            load()
        assert one_line(err)
    monkeypatch.delenv(DATA_DIR_ENV)
    with pytest.raises(DataError, match=f"data_dir {a_file} is a file"):
        load_dataset("cifar10", data_dir=a_file)


def test_cache_that_cannot_be_created_names_the_path(tmp_path, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    monkeypatch.setattr(cifar10, "URL", f"http://127.0.0.1:{free_port()}/x.tar.gz")
    with pytest.raises(DataError, match=f"data_dir {a_file / 'sub'}: cannot create the "
                                        "folder") as err:
        load_dataset("cifar10", data_dir=a_file / "sub")
    assert one_line(err)


def test_read_only_cache_is_refused_before_downloading(cache, monkeypatch):
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # root ignores file modes: simulate EROFS
        if str(dir).startswith(str(cache)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr(cifar10, "URL", f"http://127.0.0.1:{free_port()}/x.tar.gz")
    with pytest.raises(DataError, match=f"{DATA_DIR_ENV} {cache} is not writable "
                                        r"\(Read-only file system\)"):
        load_dataset("cifar10")


def test_a_busy_cache_is_a_data_error_naming_its_owner(cache, small_cifar, monkeypatch):
    monkeypatch.setattr(fetch, "LOCK_WAIT_S", 0)
    monkeypatch.setattr(cifar10, "URL", f"http://127.0.0.1:{free_port()}/x.tar.gz")
    busy = f"data cache folder {cache} is in use by pid {os.getpid()} on {HOST}"
    with RunLock(cache, what="data cache"), pytest.raises(DataError, match=busy) as err:
        load_dataset("cifar10")
    assert one_line(err)
    assert list(cache.iterdir()) == []  # the lock is gone with its holder


def test_a_waiting_loader_uses_what_the_lock_holder_extracted(cache, small_cifar, monkeypatch):
    # Another process holds the cache and extracts; we wait for it, then use its folder
    # instead of downloading a second time (the URL leads nowhere: a download would fail).
    monkeypatch.setattr(cifar10, "URL", f"http://127.0.0.1:{free_port()}/x.tar.gz")
    holder = RunLock(cache, what="data cache").acquire()

    def extract_then_release():
        time.sleep(1.0)
        write_cifar_folder(cache / cifar10.FOLDER)
        holder.release()

    other = threading.Thread(target=extract_then_release)
    other.start()
    try:
        ds = load_dataset("cifar10")
    finally:
        other.join()
    assert len(ds.y_train) == 5 * RECORDS_PER_FILE - 3
    assert sorted(p.name for p in cache.iterdir()) == [cifar10.FOLDER]


# --------------------------------------------------------------------------- leftovers
def test_leftovers_of_a_killed_extraction_are_removed_and_never_read(tmp_path, cache,
                                                                     small_cifar, server,
                                                                     monkeypatch):
    train, _ = serve_archive(monkeypatch, server, tmp_path)
    dead = cache / f".extract-p{dead_pid()}@{HOST}-abc123"  # a killed process's
    write_cifar_folder(dead / cifar10.FOLDER, seed=7)  # other data: must never be read
    legacy = cache / ".extract-k2j4h5g6"  # today's name, without an owner
    write_cifar_folder(legacy / cifar10.FOLDER, seed=8)
    os.utime(legacy, (time.time() - 60, time.time() - 60))
    download = cache / f".download-p{dead_pid()}@{HOST}-x1"
    download.mkdir()
    (download / cifar10.ARCHIVE).write_bytes(b"half an archive")

    ds = load_dataset("cifar10")
    np.testing.assert_array_equal(ds.y_train, train[:len(ds.y_train), 0])  # the served data
    assert sorted(p.name for p in cache.iterdir()) == sorted([cifar10.ARCHIVE, cifar10.FOLDER])


def test_a_live_writers_staging_folder_is_kept(tmp_path, cache, small_cifar):
    write_cifar_folder(cache / cifar10.FOLDER)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = cache / f".extract-p{live.pid}@{HOST}-abc"
        gone = cache / f".extract-p{dead_pid()}@{HOST}-def"
        other_host = cache / f".extract-p{dead_pid()}@elsewhere.example-ghi"
        for folder in (alive, gone, other_host):
            folder.mkdir()
        load_dataset("cifar10")  # the data is there: leftovers of dead processes go, no lock
        assert alive.is_dir() and other_host.is_dir() and not gone.exists()
    finally:
        live.kill()
        live.wait()


def test_leftovers_of_a_killed_mnist_download_are_removed(tmp_path, cache, server,
                                                          small_mnist, monkeypatch):
    base, served = server
    arrays = write_mnist_folder(served / "good")
    monkeypatch.setattr(mnist, "MD5", {name: hashlib.md5((served / "good" / name).read_bytes())
                                       .hexdigest() for name in arrays})
    monkeypatch.setattr(mnist, "MIRRORS", (base + "good/",))
    stale = cache / "mnist" / f".download-p{dead_pid()}@{HOST}-zz"
    stale.mkdir(parents=True)
    (stale / "tmpabc").write_bytes(b"partial")
    load_dataset("mnist")
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(arrays)


# --------------------------------------------------------------------------- checksums
def test_archive_already_in_the_cache_with_a_wrong_sha256_says_checksum_mismatch(cache,
                                                                                  small_cifar,
                                                                                  monkeypatch):
    # Today pooch tries to "update" the file and, offline, reports only ConnectionError.
    archive = cache / cifar10.ARCHIVE
    archive.write_bytes(b"not the official archive")
    got = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(cifar10, "URL", f"http://127.0.0.1:{free_port()}/x.tar.gz")
    with pytest.raises(DataError, match=f"checksum mismatch: {archive} has sha256 {got}, "
                                        f"expected {cifar10.SHA256}") as err:
        load_dataset("cifar10")
    assert one_line(err) and archive.read_bytes() == b"not the official archive"  # kept


def test_downloaded_archive_with_a_wrong_sha256_names_path_and_both_hashes(tmp_path, cache,
                                                                           small_cifar, server,
                                                                           monkeypatch):
    serve_archive(monkeypatch, server, tmp_path, sha="0" * 64)
    got = hashlib.sha256((server[1] / cifar10.ARCHIVE).read_bytes()).hexdigest()
    with pytest.raises(DataError, match=f"checksum mismatch for {cache / cifar10.ARCHIVE} .*"
                                        f"got sha256 {got}, expected {'0' * 64}") as err:
        load_dataset("cifar10")
    assert one_line(err) and list(cache.iterdir()) == []


# --------------------------------------------------------------------------- fingerprint
def test_fingerprint_names_the_sizes_and_tells_data_apart():
    ds = load_dataset("digits")
    print_ = fingerprint(ds)
    assert print_.startswith("1197/300/300x64:all:") and len(print_.split(":")[2]) == 16
    assert fingerprint(load_dataset("digits")) == print_  # deterministic
    assert fingerprint(load_dataset("digits", dtype="float64")) == print_  # same pixels
    assert fingerprint(load_dataset("digits", subset=100)).startswith("100/26/26x64:")


def test_fingerprint_differs_for_other_data_of_the_same_size(tmp_path, small_cifar):
    write_cifar_folder(tmp_path / "a" / cifar10.FOLDER, seed=0)
    write_cifar_folder(tmp_path / "b" / cifar10.FOLDER, seed=1)
    a = fingerprint(load_dataset("cifar10", data_dir=tmp_path / "a"))
    b = fingerprint(load_dataset("cifar10", data_dir=tmp_path / "b"))
    assert a.split(":")[0] == b.split(":")[0] == "17/3/4x3072" and a != b


def test_fingerprint_sees_one_changed_label():
    ds = load_dataset("digits")
    y = ds.y_train.copy()
    y[500] = (y[500] + 1) % 10
    changed = type(ds)(ds.name, ds.X_train, y, ds.X_val, ds.y_val, ds.X_test, ds.y_test,
                       ds.n_classes, ds.image_shape)
    assert fingerprint(changed) != fingerprint(ds)
