"""Checkpoint files that are not what they claim (issue 14): a text file, a pickle, a folder, a
truncated or tampered checkpoint each give one CheckpointError line that names the file, and
never NumPy's advice to load it "with allow_pickle"; the temporary left by a kill -9 during a
write is never read and is removed at the next start.
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import rewrite_checkpoint

from penaltyprop.backend import host_rng, rng_state
from penaltyprop.checkpoint import CheckpointError, load_checkpoint, remove_stale_temporaries, save_checkpoint
from penaltyprop.fsutil import HOST
from penaltyprop.optim import OptState

HISTORY_KEYS = ("epoch", "train_loss", "diverged", "steps")


@pytest.fixture
def checkpoint(tmp_path):
    """A valid checkpoint of a 2-layer network with a momentum buffer; returns its path."""
    rng = np.random.default_rng(0)
    theta = [(rng.standard_normal((4, 3)), rng.standard_normal(4)),
             (rng.standard_normal((2, 4)), rng.standard_normal(2))]
    momentum = [(np.ones_like(W), np.ones_like(b)) for W, b in theta]
    history = {"epoch": [0, 1], "train_loss": [2.3, 1.9], "diverged": False, "steps": 10}
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, theta, OptState(10, {"momentum": momentum}), rng_state(host_rng(3)),
                    history, {"seed": 0})
    return path


def expect(path, pattern, **kwargs):
    with pytest.raises(CheckpointError, match=pattern) as err:
        load_checkpoint(path, **kwargs)
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "allow_pickle" not in message
    assert isinstance(err.value, ValueError)


def test_a_valid_checkpoint_round_trips(checkpoint):
    ckpt = load_checkpoint(checkpoint, history_keys=HISTORY_KEYS)
    assert ckpt["opt_state"].step == 10 and ckpt["history"]["steps"] == 10
    assert ckpt["theta"][1][0].shape == (2, 4) and ckpt["config"] == {"seed": 0}
    np.testing.assert_array_equal(ckpt["opt_state"].slots["momentum"][0][1], np.ones(4))


# --------------------------------------------------------------------------- not a checkpoint
def test_a_text_file_is_not_a_checkpoint_and_no_pickle_advice_is_given(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("epoch 1: loss 0.5\n")
    expect(path, r"notes.txt is not a penaltyprop checkpoint \(not an .npz file\)")


def test_a_pickled_array_inside_an_npz_is_refused_without_pickle_advice(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"format": 1}], dtype=object))
    expect(path, "is not a penaltyprop checkpoint .*not plain numbers or text")


def test_missing_file_folder_and_truncated_archive(tmp_path, checkpoint):
    expect(tmp_path / "nothing.npz", "checkpoint .*nothing.npz does not exist")
    expect(tmp_path, r"cannot be read \(Is a directory\)")
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    expect(checkpoint, "is a damaged .npz file .*truncated or corrupted")


def test_an_npz_without_meta_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, W=np.zeros(3))
    expect(path, r"is not a penaltyprop checkpoint \(no meta entry\)")


# --------------------------------------------------------------------------- tampered
def test_a_wrong_shaped_momentum_buffer_names_both_arrays(checkpoint):
    rewrite_checkpoint(checkpoint, lambda arrays, meta: arrays.update(opt_momentum_1_W=np.ones((2, 5))))
    expect(checkpoint, r"damaged checkpoint: opt_momentum_1_W has float64\(2, 5\), but "
                       r"theta_1_W has float64\(2, 4\)")


def test_a_missing_history_entry_is_named(checkpoint):
    rewrite_checkpoint(checkpoint, lambda arrays, meta: meta["history"].pop("train_loss"))
    expect(checkpoint, "damaged checkpoint: history lacks train_loss", history_keys=HISTORY_KEYS)


def test_another_generators_state_is_refused(checkpoint):
    mt = np.random.MT19937(0).state
    mt["state"]["key"] = mt["state"]["key"].tolist()  # JSON-able, as a tamperer would write it
    rewrite_checkpoint(checkpoint, lambda arrays, meta: meta.update(rng_state=mt))
    expect(checkpoint, "damaged checkpoint: rng_state is not a state of the PCG64 generator "
                       r"\(bit_generator 'MT19937'\)")


@pytest.mark.parametrize("edit, pattern", [
    (lambda a, m: a.pop("theta_0_b"), "theta_0_b is missing"),
    (lambda a, m: a.update(theta_0_b=np.zeros(4, dtype=np.int64)), "theta_0_b has dtype int64"),
    (lambda a, m: a.update(theta_0_b=np.zeros(3)), r"theta_0_W float64\(4, 3\) and theta_0_b "),
    (lambda a, m: m.update(n_layers="2"), "n_layers is '2'"),
    (lambda a, m: m.update(opt_step=-1), "opt_step is -1"),
    (lambda a, m: m.update(opt_slots="momentum"), "opt_slots is 'momentum'"),
    (lambda a, m: m.update(history=[]), "history is missing or not a dict"),
    (lambda a, m: m.pop("config"), "config is missing or not a dict"),
    (lambda a, m: m.update(format=2), "has checkpoint format 2; this version reads format 1"),
])
def test_other_tampering_gives_one_line_naming_the_file(checkpoint, edit, pattern):
    rewrite_checkpoint(checkpoint, edit)
    expect(checkpoint, pattern)


def test_a_meta_entry_that_is_not_json(checkpoint):
    with np.load(checkpoint) as f:
        arrays = {name: f[name] for name in f.files}
    arrays["meta"] = np.array("{not json")
    np.savez(checkpoint, **arrays)
    expect(checkpoint, r"is not a penaltyprop checkpoint \(meta is not JSON\)")


# --------------------------------------------------------------------------- kill -9 mid-write
WRITE_THEN_HANG = """
import sys, time, numpy
from penaltyprop import checkpoint
from penaltyprop.optim import OptState
def hang(f, **arrays):
    f.write(b"PK\\x03\\x04 half of a checkpoint")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
numpy.savez = hang
checkpoint.save_checkpoint(sys.argv[1], [(numpy.zeros((2, 2)), numpy.zeros(2))],
                           OptState(0, {}), {}, {}, {})
"""


def test_a_kill_during_a_write_leaves_a_temporary_that_is_never_read_and_is_removed(tmp_path):
    path = tmp_path / "checkpoint.npz"
    writer = subprocess.Popen([sys.executable, "-c", WRITE_THEN_HANG, str(path)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    leftover = next(tmp_path.glob(".checkpoint.npz-*.tmp"))
    assert f"-p{writer.pid}@{HOST}-" in leftover.name
    assert remove_stale_temporaries(path) == []  # its writer is alive: kept
    writer.kill()  # kill -9
    writer.wait()
    expect(path, "does not exist")  # the temporary is never read as the checkpoint
    assert remove_stale_temporaries(path) == [leftover] and list(tmp_path.iterdir()) == []


def test_legacy_temporaries_go_only_for_a_lock_holder(tmp_path, checkpoint):
    legacy = tmp_path / ".checkpoint.npz-k2j4h5g6.tmp"  # today's name: no owner recorded
    legacy.write_bytes(b"partial")
    os.utime(legacy, (time.time() - 60, time.time() - 60))
    assert remove_stale_temporaries(checkpoint) == []
    assert remove_stale_temporaries(checkpoint, since=time.time()) == [legacy]
    assert load_checkpoint(checkpoint)["opt_state"].step == 10
