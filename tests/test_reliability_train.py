"""The training loop's output folder is locked, checked, cleaned, and bound to its data (issue 14).

Each test fails on the code before the fix: a second run into the same folder used to
overwrite the first without a word, a file given as out_dir failed deep inside numpy, a
kill -9 during a checkpoint write left its temporary behind, and a resume on other data of the
same size was accepted.
"""
import os

import numpy as np
import pytest

import penaltyprop as pp
from penaltyprop import optim
from penaltyprop.data import Dataset, load_dataset
from penaltyprop.runlock import LockedError, RunLock
from penaltyprop.train import CHECKPOINT, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", subset=200)


def _net():
    return pp.mlp([64, 16, 10])


KW = dict(batch_size=100, progress=False)


def test_a_second_run_into_a_locked_folder_fails_at_once(tmp_path, digits):
    with RunLock(tmp_path, what="run"):  # as another live run holds it
        with pytest.raises(LockedError, match=str(tmp_path)):
            train(_net(), digits, optim.sgd(0.1), epochs=1, out_dir=tmp_path, **KW)
    assert not (tmp_path / CHECKPOINT).exists()  # nothing written by the refused run
    train(_net(), digits, optim.sgd(0.1), epochs=1, out_dir=tmp_path, **KW)  # free again
    assert (tmp_path / CHECKPOINT).exists()


def test_out_dir_that_is_a_file_is_one_clear_error(tmp_path, digits):
    target = tmp_path / "file"
    target.write_text("not a folder")
    with pytest.raises(ValueError, match=r"out_dir .*file.* is a file"):
        train(_net(), digits, optim.sgd(0.1), epochs=1, out_dir=target, **KW)


def test_a_dead_writers_checkpoint_temporary_is_removed_and_never_read(tmp_path, digits):
    train(_net(), digits, optim.sgd(0.1), epochs=1, out_dir=tmp_path, **KW)
    # What a kill -9 during a checkpoint write leaves: a temporary tagged with a pid that is gone.
    dead = tmp_path / f".{CHECKPOINT}-p999999999@{os.uname().nodename}-x.tmp"
    dead.write_bytes(b"half a zip file")
    result = train(_net(), digits, optim.sgd(0.1), epochs=2, out_dir=tmp_path, resume=True, **KW)
    assert not dead.exists()
    assert result.history["epoch"] == [0, 1, 2]


def test_resume_on_other_data_of_the_same_size_is_refused(tmp_path, digits):
    train(_net(), digits, optim.sgd(0.1), epochs=1, out_dir=tmp_path, **KW)
    other = Dataset(digits.name, digits.X_train[::-1].copy(), digits.y_train[::-1].copy(),
                    digits.X_val, digits.y_val, digits.X_test, digits.y_test, digits.n_classes,
                    digits.image_shape)
    with pytest.raises(ValueError, match="different settings.*data"):
        train(_net(), other, optim.sgd(0.1), epochs=2, out_dir=tmp_path, resume=True, **KW)
    assert np.array_equal(other.X_train[0], digits.X_train[-1])  # the data really differ


def test_a_check_before_the_work_creates_nothing(tmp_path):
    """The command line checks --out before loading data (create=False): a missing folder stays
    missing (nothing is left behind if the data turn out to be missing), a file above it is named."""
    from penaltyprop.fsutil import check_writable_dir

    check_writable_dir(tmp_path / "a" / "b", "--out", create=False)
    assert not (tmp_path / "a").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"--out .*f/b: cannot create the folder \(.*f is a file\)"):
        check_writable_dir(tmp_path / "f" / "b", "--out", create=False)
