"""An experiment's folder is checked before its first configuration trains or anything is
written: one data set per experiment, a results.json of the right structure, no runs it did
not make, no output file that is a folder; every data set of the family is loaded first; and a
lifted configuration resumed mid-run stores what an uninterrupted one does.

Each test fails on the code before its fix: an experiment resumed on other data of the same
size mixed two data sets in one table, a results.json of the wrong structure gave a raw
TypeError or KeyError (once after a configuration had trained), an ``--out`` holding the
user's own ``runs/backprop`` failed with "cannot resume" and left a results.json behind, a bad
``--mnist-csv`` was found only after the digits had trained (and the error suggested
``--download``), an output file that is a folder failed after the training, a family
cell of BCD or ADMM resumed from a checkpoint restarted its per-sample variables, and the
interrupted cell of a seed (``KEY@seedS``) made every later run without that seed refuse
the folder as foreign.
"""
import json

import numpy as np
import pytest
from helpers import rewrite_checkpoint

from penaltyprop import cli, optim
from penaltyprop.data import Dataset
from penaltyprop.data.base import fingerprint, sampled_fingerprint
from penaltyprop.experiments import SETTINGS, run, run_experiment, runner
from penaltyprop.experiments.family import load_family_data
from penaltyprop.experiments.settings import FAMILY_SETTINGS
from penaltyprop.methods import ADMM, BCD, BackProp
from penaltyprop.network import mlp
from penaltyprop.train import CHECKPOINT, train


def _quiet(line):
    pass


def _other(data):
    """The same sizes, other pixels in one sample (as another copy of a data set)."""
    X = data.X_train.copy()
    X[3] = 1.0 - X[3]
    return Dataset(data.name, X, data.y_train, data.X_val, data.y_val, data.X_test, data.y_test,
                   data.n_classes, data.image_shape)


def _no_training(monkeypatch):
    """Make any training fail the test: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a configuration trained before the check")

    monkeypatch.setattr(runner, "train", refuse)


def _files(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns if p.is_file() else 0)
                  for p in folder.rglob("*") if p.name != ".penaltyprop.lock")


# ------------------------------------------------------------------ one data set per experiment
def test_an_experiment_resumed_on_other_data_is_refused(tmp_path, monkeypatch):
    run_experiment("figure2", "tiny", out=tmp_path, cells=["backprop"], log=_quiet)
    stored = json.loads((tmp_path / "results.json").read_text())
    data = runner.load_data(SETTINGS["figure2"]["tiny"])
    assert stored["data_fingerprint"] == fingerprint(data)  # recorded in the results
    before = _files(tmp_path)
    real = run.load_data
    monkeypatch.setattr(run, "load_data", lambda *a, **k: _other(real(*a, **k)))
    with pytest.raises(ValueError, match=r"holds results trained on other data: .*results.json: "
                                         r"its runs were trained on data 64/16/16x192:all:"):
        run_experiment("figure2", "tiny", out=tmp_path, cells=["exact"], log=_quiet)
    assert _files(tmp_path) == before  # nothing trained, nothing written


def test_an_interrupted_first_configuration_on_other_data_is_refused(tmp_path, monkeypatch):
    """No configuration finished yet: only runs/backprop's checkpoint knows the data."""
    scale = SETTINGS["figure2"]["tiny"]
    data = runner.load_data(scale)
    train(mlp([data.n_features, *scale.hidden, data.n_classes]), data,
          optim.make_optimizer("nesterov", 0.05), BackProp(), batch_size=scale.batch_size,
          epochs=1, out_dir=tmp_path / "runs" / "backprop", progress=False)  # then killed
    real = run.load_data
    monkeypatch.setattr(run, "load_data", lambda *a, **k: _other(real(*a, **k)))
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"runs/backprop holds a run that is not this "
                                         r"experiment's configuration 'backprop' \(its data differs\)"):
        run_experiment("figure2", "tiny", out=tmp_path, log=_quiet)
    assert not (tmp_path / "results.json").exists()


def test_results_of_an_earlier_version_are_checked_by_their_runs_fingerprints(tmp_path,
                                                                              monkeypatch):
    """A results.json without data_fingerprint, whose runs hold the earlier sampled one."""
    run_experiment("figure2", "tiny", out=tmp_path, cells=["backprop"], log=_quiet)
    data = runner.load_data(SETTINGS["figure2"]["tiny"])
    stored = json.loads((tmp_path / "results.json").read_text())
    del stored["data_fingerprint"]
    stored["runs"]["backprop"]["config"]["data"]["fingerprint"] = sampled_fingerprint(data)
    (tmp_path / "results.json").write_text(json.dumps(stored))
    real = run.load_data
    monkeypatch.setattr(run, "load_data", lambda *a, **k: _other(real(*a, **k)))
    with pytest.raises(ValueError, match="its run 'backprop' was trained on data 64/16/16x192:[0-9a-f]"):
        run_experiment("figure2", "tiny", out=tmp_path, cells=["exact"], log=_quiet)
    monkeypatch.setattr(run, "load_data", real)  # the same data: resumed, and recorded now
    run_experiment("figure2", "tiny", out=tmp_path, cells=["exact"], log=_quiet)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert set(stored["runs"]) == {"backprop", "exact"}
    assert stored["data_fingerprint"] == fingerprint(data)


# ------------------------------------------------------------------ results.json's structure
def _valid_record():
    h = {"epoch": [0], "train_loss": [1.0], "train_acc": [0.5], "val_loss": [1.0],
         "val_acc": [0.5], "batch_loss": [None], "epoch_time": [0.0], "eval_time": [0.0],
         "time": [0.0], "diverged": False, "diverged_epoch": None, "diverged_reason": None,
         "steps": 0, "test_loss": 1.0, "test_acc": 0.5, "diagnostics": []}
    return {"method": "BackProp", "wall_s": 1.0, "config": {}, "history": h}


def _settings(tmp_path):
    """The settings of figure2 tiny, as the store writes them (from a run into another folder)."""
    run_experiment("figure2", "tiny", out=tmp_path / "ref", cells=["backprop"], log=_quiet)
    return json.loads((tmp_path / "ref" / "results.json").read_text())["settings"]


@pytest.mark.parametrize("make, match", [
    (lambda s: {"settings": 5, "runs": []}, r"settings is 5, not an object"),
    (lambda s: {"settings": s, "runs": []}, r"runs is a list, not an object"),
    (lambda s: [s], r"it holds a list, not an object"),
    (lambda s: {"settings": s}, r"runs is missing, not an object"),
    (lambda s: {"settings": s, "runs": {}, "extra": 3}, r"extra is 3, not an object"),
    (lambda s: {"settings": s, "runs": {"backprop": 7}}, r"run 'backprop': it is 7"),
    (lambda s: {"settings": s, "runs": {"backprop": {**_valid_record(), "wall_s": "x"}}},
     r"run 'backprop': wall_s is missing or not a number"),
    (lambda s: {"settings": s, "runs": {"backprop": {**_valid_record(), "history": {
        **_valid_record()["history"], "train_loss": "abc"}}}},
     r"run 'backprop': history train_loss is not a list of numbers"),
    (lambda s: {"settings": s, "runs": {"backprop": {**_valid_record(), "history": {
        **_valid_record()["history"], "test_acc": "high"}}}},
     r"run 'backprop': history test_acc is 'high', not a number"),
])
def test_a_results_file_of_the_wrong_structure_is_one_error_naming_it(tmp_path, monkeypatch,
                                                                       make, match):
    settings = _settings(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(make(settings)))
    before = _files(out)
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=rf"{out / 'results.json'} is not a penaltyprop results "
                                         rf"file \({match}"):
        run_experiment("figure2", "tiny", out=out, log=_quiet)
    assert _files(out) == before


def test_a_well_formed_results_file_still_resumes(tmp_path):
    """The check refuses structure, not content: a stored record of the right form is kept."""
    settings = _settings(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"settings": settings,
                                                  "runs": {"backprop": _valid_record()}}))
    run_experiment("figure2", "tiny", out=out, cells=["exact"], log=_quiet)
    assert json.loads((out / "results.json").read_text())["runs"]["backprop"] == _valid_record()


# ------------------------------------------------------------------ runs the experiment did not make
def test_an_out_holding_the_users_own_run_is_refused_before_anything_is_written(tmp_path,
                                                                                capsys):
    own = tmp_path / "runs" / "backprop"
    assert cli.main(["train", "--epochs", "1", "--subset", "100", "--out", str(own)]) == 0
    capsys.readouterr()
    before = _files(tmp_path)
    status = cli.main(["experiment", "figure2", "--scale", "tiny", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    # the command line's run wrote its plot there, which no configuration does
    assert "runs/backprop holds files that no run of this experiment writes (training.png)" \
        in err and "choose another --out" in err
    assert _files(tmp_path) == before  # no results.json, the user's run untouched


def test_a_run_of_other_settings_under_a_configurations_key_is_refused(tmp_path, monkeypatch):
    """train(out_dir=OUT/runs/exact) of the user's own: a key of the experiment, other settings."""
    scale = SETTINGS["figure2"]["tiny"]
    data = runner.load_data(scale)
    train(mlp([data.n_features, 8, data.n_classes]), data, optim.sgd(0.1), BackProp(),
          batch_size=scale.batch_size, epochs=1, out_dir=tmp_path / "runs" / "exact",
          progress=False)
    before = _files(tmp_path)
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"runs/exact holds a run that is not this experiment's "
                                         r"configuration 'exact' \(its method, net, optimizer "
                                         r"differ\); move it away or choose another --out"):
        run_experiment("figure2", "tiny", out=tmp_path, log=_quiet)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("make, match", [
    (lambda out: (out / "runs" / "mine").mkdir(parents=True),
     r"runs/mine is not a run of this experiment \(its configurations are backprop, exact"),
    (lambda out: (out / "runs" / "exact@seed0").mkdir(parents=True),  # seed 0's is "exact"
     r"runs/exact@seed0 is not a run of this experiment"),
    (lambda out: (out / "runs" / "exact@seed01").mkdir(parents=True),  # seed 1's: exact@seed1
     r"runs/exact@seed01 is not a run of this experiment"),
    (lambda out: ((out / "runs" / "backprop").mkdir(parents=True),
                  (out / "runs" / "backprop" / "notes.txt").write_text("mine")),
     r"runs/backprop holds files that no run of this experiment writes \(notes.txt\)"),
    (lambda out: (out.mkdir(), (out / "runs").write_text("x")), r"runs is not a folder of runs"),
    (lambda out: (out.mkdir(), (out / CHECKPOINT).write_bytes(b"x")),
     r"holds a training run \(checkpoint.npz\), not an experiment's results"),
])
def test_other_foreign_contents_of_an_out_folder_are_refused(tmp_path, monkeypatch, make, match):
    out = tmp_path / "out"
    make(out)
    before = _files(out)
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=match):
        run_experiment("figure2", "tiny", out=out, log=_quiet)
    assert _files(out) == before  # notes.txt would have been deleted with the run folder


def _cut_seed_cell(out, seed, folder_seed):
    """``out/runs/backprop@seed<folder_seed>``: Fig. 2's BackProp trained with ``seed`` for one
    of the tiny scale's two epochs, as a run with ``--seeds`` interrupted leaves it."""
    scale = SETTINGS["figure2"]["tiny"]
    data = runner.load_data(scale)
    train(mlp([data.n_features, *scale.hidden, data.n_classes]), data,
          optim.make_optimizer("nesterov", 0.05), BackProp(), batch_size=scale.batch_size,
          epochs=1, seed=seed, eval_chunk=5000, out_dir=out / "runs" / f"backprop@seed{folder_seed}",
          progress=False)


def test_an_interrupted_cell_of_another_seed_is_kept_and_resumed_by_a_run_with_that_seed(
        tmp_path):
    out = tmp_path / "grid"
    _cut_seed_cell(out, seed=1, folder_seed=1)
    # a run without seed 1 accepts the cell, leaves it alone (it was refused as foreign)
    run_experiment("figure2", "tiny", out=out, cells=["backprop"], log=_quiet)
    assert (out / "runs" / "backprop@seed1" / CHECKPOINT).is_file()
    lines = []
    run_experiment("figure2", "tiny", out=out, cells=["backprop"], seeds=[0, 1],
                   log=lines.append)
    assert any("[backprop@seed1]" in line and "resuming" in line for line in lines)
    assert not (out / "runs").exists()
    # the oracle: an uninterrupted run with seed 1
    run_experiment("figure2", "tiny", out=tmp_path / "one", cells=["backprop"], seed=1,
                   log=_quiet)
    resumed = json.loads((out / "results.json").read_text())["runs"]["backprop@seed1"]
    whole = json.loads((tmp_path / "one" / "results.json").read_text())["runs"]["backprop"]
    for series in ("train_loss", "val_acc", "test_acc"):
        assert resumed["history"][series] == whole["history"][series], series


def test_a_cell_folder_trained_with_another_seed_than_its_name_is_refused(tmp_path,
                                                                          monkeypatch):
    _cut_seed_cell(tmp_path, seed=2, folder_seed=1)
    before = _files(tmp_path)
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"runs/backprop@seed1 holds a run that is not this "
                                         r"experiment's configuration 'backprop@seed1' \(its "
                                         r"seed differs\)"):
        run_experiment("figure2", "tiny", out=tmp_path, cells=["backprop"], seeds=[0, 1],
                       log=_quiet)
    assert _files(tmp_path) == before


def test_a_grid_too_large_for_the_memory_is_refused_before_its_time_estimate(tmp_path,
                                                                           monkeypatch):
    from penaltyprop import memory

    monkeypatch.setattr(memory, "memory_info", lambda xp: (1 << 33, 1 << 10))  # 1 KiB free

    def no_estimate(*args, **kwargs):
        raise AssertionError("the time estimate ran before the memory check")

    monkeypatch.setattr(runner, "estimate", no_estimate)
    _no_training(monkeypatch)
    # the cell's recorded settings: figure2's tiny minibatch of 16 from the scale
    with pytest.raises(ValueError, match=r"the run \(.* parameters, batch 16, 96 samples\) "
                                         r"needs at least"):
        run_experiment("figure2", "tiny", out=tmp_path, log=_quiet)
    assert not (tmp_path / "results.json").exists()


def test_the_family_checks_every_data_sets_folder_before_its_first_configuration(tmp_path,
                                                                                 monkeypatch):
    """The second data set's folder holds a foreign run: nothing of the first trains."""
    (tmp_path / "digits" / "runs" / "mine").mkdir(parents=True)
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"digits/runs/mine is not a run of this experiment"):
        run_experiment("family", "tiny", out=tmp_path, log=_quiet)
    assert not (tmp_path / "synthetic").exists()


# ------------------------------------------------------------------ inputs and outputs first
def test_a_bad_mnist_csv_is_found_before_any_configuration_trains(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n")
    _no_training(monkeypatch)
    status = cli.main(["experiment", "family", "--scale", "small", "--mnist-csv", str(bad),
                       "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert str(bad) in err and "785 columns" in err
    assert "--download" not in err  # the file is wrong, not missing data
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["results.json", "figure2.png", "figure2.md"])
def test_an_output_file_that_is_a_folder_is_refused_before_the_training(tmp_path, monkeypatch,
                                                                        name):
    (tmp_path / name).mkdir()
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=rf"{tmp_path / name} is a folder, where the run writes "
                                         rf"its {name}"):
        run_experiment("figure2", "tiny", out=tmp_path, log=_quiet)


# ------------------------------------------------------------------ exact resume in the family
def _family_cut(out, drop_state=False):
    """Checkpoints of BCD and ADMM after one of the tiny family's two sweeps, as an interrupted
    family run leaves them in its synthetic data set's folder."""
    scale = FAMILY_SETTINGS["tiny"]
    spec = scale.datasets[0]
    data = load_family_data(spec, scale)
    for method in (BCD(), ADMM()):
        run_dir = out / data.name / "runs" / method.key
        train(mlp([data.n_features, *spec.hidden, data.n_classes]), data, None, method,
              epochs=1, out_dir=run_dir, progress=False)
        if drop_state:  # as an earlier version wrote it: theta only
            def strip(arrays, meta):
                for name in [n for n in arrays if n.startswith("state_")]:
                    del arrays[name]
                del meta["method_state"]

            rewrite_checkpoint(run_dir / CHECKPOINT, strip)


@pytest.mark.parametrize("drop_state", [False, True], ids=["resumed", "earlier-checkpoint"])
def test_a_family_cell_resumed_mid_run_stores_what_an_uninterrupted_one_does(tmp_path,
                                                                             drop_state):
    whole = run_experiment("family", "tiny", out=tmp_path / "whole", log=_quiet)
    _family_cut(tmp_path / "cut", drop_state)
    lines = []
    cut = run_experiment("family", "tiny", out=tmp_path / "cut", log=lines.append)
    assert any("[bcd]" in line and "resuming" in line for line in lines)
    if drop_state:  # an inexact resume is not stored: the configuration starts again
        assert any("[bcd]" in line and "starting it again" in line for line in lines)
    for key in ("bcd", "admm"):
        a = whole["datasets"]["synthetic"]["runs"][key]["history"]
        b = cut["datasets"]["synthetic"]["runs"][key]["history"]
        for series in ("train_loss", "val_loss", "diagnostics", "test_acc"):
            assert a[series] == b[series], (key, series)
    assert np.isfinite(a["train_loss"][-1])
