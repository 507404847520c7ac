"""The experiments of Section 5 (Figs. 2, 3, Table 1) and Section 4.1 (conditioning) run end
to end, write results.json + a PNG + a Markdown table, and resume without rerunning a
finished configuration; without CIFAR-10 the command says where to put it, in one line.

Everything here runs at ``scale="tiny"`` (synthetic images, toy widths): a few seconds each.
"""
import json

import numpy as np
import pytest

from penaltyprop import cli
from penaltyprop.data.base import batch_last
from penaltyprop.experiments import SETTINGS, run_experiment, runner
from penaltyprop.experiments.report import fmt_loss
from penaltyprop.experiments.settings import PAPER_CHANNELS, PAPER_HIDDEN, TABLE1_TAUS

EXPECTED_KEYS = {
    "figure2": {"backprop", "exact", "cg3", "cg5", "cg10"},
    "table1": {f"{m}_tau{t:g}" for m in ("backprop", "cg1", "cg3", "cg5") for t in TABLE1_TAUS},
    "figure3": {"backprop", "cg3", "cg10"},
    "conditioning": {"X X^T", "a_1 a_1^T", "a_2 a_2^T", "a_3 a_3^T"},
}


def _quiet(line):
    pass


@pytest.mark.parametrize("name", sorted(EXPECTED_KEYS))
def test_each_experiment_runs_end_to_end(name, backend, tmp_path):
    """Every configuration of the experiment is stored, with its figure and table."""
    result = run_experiment(name, "tiny", out=tmp_path, backend=backend, log=_quiet)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert set(stored["runs"]) == EXPECTED_KEYS[name]
    assert stored["settings"]["scale"] == "tiny"
    assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert (tmp_path / f"{name}.md").read_text().count("\n|") >= 2
    assert result["markdown"]
    assert not (tmp_path / "runs").exists()  # per-epoch checkpoints removed once stored
    if name != "conditioning":
        for record in stored["runs"].values():
            h = record["history"]
            # epoch 0 (initial evaluation) plus every epoch, unless it diverged
            assert h["diverged"] or len(h["epoch"]) == SETTINGS[name]["tiny"].epochs + 1


def test_table1_has_the_papers_shape(backend, tmp_path):
    """Table 1: 4 method rows x 9 step sizes, ours and the paper's (with its "-" cells)."""
    text = run_experiment("table1", "tiny", out=tmp_path, backend=backend, log=_quiet)["markdown"]
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 * (1 + 4)  # header + 4 methods, for ours and for the paper
    for row in rows:
        assert len(row.strip("|").split("|")) == 1 + len(TABLE1_TAUS)
    paper_bp = [r for r in rows if r.startswith("| BackProp")][1]
    assert paper_bp.count(" - ") == 5  # the paper's BackProp diverged for tau >= 0.5


def test_finished_configurations_are_not_run_again(backend, tmp_path, monkeypatch):
    """A rerun trains only what is missing from results.json."""
    run_experiment("figure3", "tiny", out=tmp_path, backend=backend, log=_quiet)
    first = json.loads((tmp_path / "results.json").read_text())["runs"]

    calls = []
    real_train = runner.train

    def counting_train(net, data, optimizer, method, **kwargs):
        calls.append(method.name)
        return real_train(net, data, optimizer, method, **kwargs)

    monkeypatch.setattr(runner, "train", counting_train)
    run_experiment("figure3", "tiny", out=tmp_path, backend=backend, log=_quiet)
    assert calls == []  # everything was finished

    stored = json.loads((tmp_path / "results.json").read_text())
    del stored["runs"]["cg10"]  # as if the run had stopped before cg10 finished
    (tmp_path / "results.json").write_text(json.dumps(stored))
    run_experiment("figure3", "tiny", out=tmp_path, backend=backend, log=_quiet)
    assert calls == ["proxprop"]
    again = json.loads((tmp_path / "results.json").read_text())["runs"]
    # same seed, same data: the rerun configuration reproduces its first result exactly
    assert again["cg10"]["history"]["train_loss"] == first["cg10"]["history"]["train_loss"]
    assert again["backprop"]["wall_s"] == first["backprop"]["wall_s"]  # untouched


def test_other_settings_refuse_to_resume(tmp_path):
    """An output folder of other settings is not mixed with new results."""
    run_experiment("conditioning", "tiny", out=tmp_path, log=_quiet)
    with pytest.raises(ValueError, match="other settings"):
        run_experiment("conditioning", "tiny", out=tmp_path, seed=1, log=_quiet)


def test_conditioning_largest_eigenvalue_is_the_top_singular_value_squared(tmp_path):
    """lambda_max(X X^T) = sigma_max(X)^2 (oracle: numpy's SVD of the same synthetic X)."""
    result = run_experiment("conditioning", "tiny", out=tmp_path, log=_quiet)
    data = runner.load_data(SETTINGS["conditioning"]["tiny"])
    X = batch_last(data.X_train).astype(np.float64)  # (n0, N)
    sigma = np.linalg.svd(X, compute_uv=False)
    # float64 eigensolver vs SVD of the same matrix: agreement to ~1e-12 relative
    assert result["runs"]["X X^T"]["largest"] == pytest.approx(sigma[0] ** 2, rel=1e-10)
    # 192 pixels, 64 images: X X^T has rank 64, so 128 eigenvalues are numerically zero
    assert result["runs"]["X X^T"]["n_zero"] == X.shape[0] - X.shape[1]


def test_missing_cifar10_is_one_line(tmp_path, capsys):
    """Without the data (and told not to download it) the command exits with status 2 and one
    line saying what to do."""
    status = cli.main(["experiment", "figure2", "--scale", "small", "--data-dir",
                       str(tmp_path), "--out", str(tmp_path / "out"), "--no-download"])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert "cifar-10-batches-bin" in err and "leave out --no-download" in err
    assert not (tmp_path / "out").exists()


def test_paper_scale_is_the_papers_setting():
    """--scale paper: 45,000 images, 50 epochs, batch 500, the paper's networks."""
    for name, scales in SETTINGS.items():
        assert {"tiny", "small", "paper"} <= set(scales)
        paper = scales["paper"]
        assert (paper.data, paper.n_train, paper.hidden, paper.channels) == (
            "cifar10", None, PAPER_HIDDEN, PAPER_CHANNELS)
        if name != "conditioning":
            assert (paper.epochs, paper.batch_size) == (50, 500)


@pytest.mark.parametrize("kwargs, argument", [
    ({"name": "figure4"}, "name"), ({"scale": "huge"}, "scale"),
    ({"cg_variant": "fast"}, "cg_variant"), ({"optimizer": "adam"}, "optimizer"),
])
def test_bad_arguments_are_named(kwargs, argument, tmp_path):
    args = {"name": "table1", "scale": "tiny", **kwargs}
    with pytest.raises(ValueError, match=argument):
        run_experiment(args.pop("name"), args.pop("scale"), out=tmp_path, log=_quiet, **args)


def test_losses_print_as_in_table1():
    assert [fmt_loss(v) for v in (None, 77.9, 0.091, 2e-3, 3e-4, 2.1e8)] == [
        "-", "77.9", "0.091", "2e-3", "3e-4", "2.1e8"]


def test_labels_keys_and_settings_stay_as_earlier_runs_wrote_them(tmp_path):
    """A rerun resumes results.json files written before methods became objects: the run keys,
    the "method" labels and the settings a store compares are unchanged."""
    from penaltyprop.experiments import training

    assert [(m.key, m.label) for m in training.figure2_methods("textbook")] == [
        ("backprop", "BackProp"), ("exact", "ProxProp (exact)"), ("cg3", "ProxProp (cg3)"),
        ("cg5", "ProxProp (cg5)"), ("cg10", "ProxProp (cg10)")]
    assert [m.label for m in training.table1_methods("authors")] == [
        "BackProp", "ProxProp (cg1, authors' CG)", "ProxProp (cg3, authors' CG)",
        "ProxProp (cg5, authors' CG)"]
    assert [(m.key, m.label) for m in training.figure3_methods("textbook")] == [
        ("backprop", "BackProp"), ("cg3", "ProxProp (cg3)"), ("cg10", "ProxProp (cg10)")]
    assert [tau for _, tau in training.figure2_runs("textbook")] == [0.05, 1.0, 1.0, 1.0, 1.0]
    assert [m.tau_theta for m in training.figure2_methods("textbook")[1:]] == [0.05] * 4
    run_experiment("conditioning", "tiny", out=tmp_path, log=_quiet)
    settings = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert set(settings) == {"experiment", "scale", "numbers", "seed", "cg_variant", "optimizer",
                             "data"}
    assert settings["numbers"] == {"data": "synthetic", "n_train": 64, "epochs": 2,
                                   "batch_size": 16, "hidden": [16, 8, 16], "channels": [2, 3, 3],
                                   "image_shape": [3, 8, 8]}


def test_medium_is_table1_at_the_papers_width():
    """--scale medium (issue 15): Table 1 with the paper's MLP and minibatch on 5,000 images."""
    medium = SETTINGS["table1"]["medium"]
    assert (medium.n_train, medium.epochs, medium.batch_size, medium.hidden) == (
        5000, 20, 500, PAPER_HIDDEN)
    with pytest.raises(ValueError, match="scale 'medium' is not defined for 'figure2'"):
        run_experiment("figure2", scale="medium")


def test_medium_is_figure3_on_all_images_for_15_epochs():
    """--scale medium (issue 15): Fig. 3's CNN on all 45,000 images, 15 of 50 epochs."""
    medium, paper = SETTINGS["figure3"]["medium"], SETTINGS["figure3"]["paper"]
    assert (medium.n_train, medium.epochs) == (None, 15)
    assert (medium.batch_size, medium.channels, medium.data) == (
        paper.batch_size, paper.channels, paper.data)


def test_an_experiment_prints_its_time_estimate_first_and_locks_its_folder(tmp_path):
    lines = []
    run_experiment("figure2", scale="tiny", out=tmp_path, log=lines.append)
    plan = [i for i, line in enumerate(lines) if line.startswith("[plan]")]
    starts = [i for i, line in enumerate(lines) if "starting" in line]
    assert len(plan) == 1 and plan[0] < starts[0]
    assert "5 of 5 configurations to run: about" in lines[plan[0]]
    again = []  # finished: nothing to estimate, nothing to run
    run_experiment("figure2", scale="tiny", out=tmp_path, log=again.append)
    assert not any(line.startswith("[plan]") for line in again)
    from penaltyprop.runlock import LockedError, RunLock
    with RunLock(tmp_path, what="experiment"):  # as another live experiment holds it
        with pytest.raises(LockedError):
            run_experiment("figure2", scale="tiny", out=tmp_path, log=again.append)


def test_a_corrupt_results_file_is_one_error_naming_it(tmp_path):
    (tmp_path / "results.json").write_text('{"settings": {"experiment": "fig')  # cut short
    with pytest.raises(ValueError, match="results.json is not a penaltyprop results file"):
        run_experiment("figure2", scale="tiny", out=tmp_path, log=lambda line: None)


def test_format_duration():
    assert [runner.format_duration(s) for s in (40, 420, 7500)] == ["40 s", "7 min", "2 h 05 min"]


def test_figure3_trains_the_authors_cnn_on_request(tmp_path):
    """``model="cnn-authors"``: the last conv block is not pooled (the authors' released code);
    the store records the model and refuses to mix it with the paper's CNN."""
    run_experiment("figure3", "tiny", out=tmp_path, model="cnn-authors", log=_quiet)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["settings"]["model"] == "cnn-authors"
    assert set(stored["runs"]) == EXPECTED_KEYS["figure3"]
    with pytest.raises(ValueError, match="model"):
        run_experiment("figure3", "tiny", out=tmp_path, model="cnn", log=_quiet)
    with pytest.raises(ValueError, match="model only applies to"):
        run_experiment("figure2", "tiny", out=tmp_path / "f2", model="cnn-authors", log=_quiet)


def test_a_subset_of_cells_trains_only_those_and_a_later_run_adds_the_rest(tmp_path):
    """``cells=[...]`` trains only the named cells; Table 1 prints the others as "not run";
    a later run into the same folder with other cells adds them."""
    result = run_experiment("table1", "tiny", out=tmp_path, cells=["cg3_tau1", "backprop_tau0.05"],
                            log=_quiet)
    assert set(json.loads((tmp_path / "results.json").read_text())["runs"]) == {
        "cg3_tau1", "backprop_tau0.05"}
    ours = result["markdown"].split("Paper")[0]
    assert ours.count("not run") == 36 - 2
    run_experiment("table1", "tiny", out=tmp_path, cells=["cg5_tau1"], log=_quiet)
    assert set(json.loads((tmp_path / "results.json").read_text())["runs"]) == {
        "cg3_tau1", "backprop_tau0.05", "cg5_tau1"}


@pytest.mark.parametrize("name, cells, match", [
    ("table1", ["cg3_tau7"], "cells cg3_tau7 not in 'table1'"),
    ("figure2", ["cg4"], "cells cg4 not in 'figure2'"),
    ("figure2", "cg3", "non-empty list"), ("figure2", [], "non-empty list"),
    ("conditioning", ["x"], "cells do not apply"),
])
def test_unknown_cells_are_refused_before_anything_is_written(name, cells, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        run_experiment(name, "tiny", out=tmp_path / "out", cells=cells, log=_quiet)
    assert not (tmp_path / "out").exists()
