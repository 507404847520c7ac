"""The family comparison runs every registered method on the same networks and data, end to end.

At ``scale="tiny"`` (synthetic images and a subset of the shipped digits, two epochs) it
writes one results.json, table and figure pair per data set, with the lifted methods'
diagnostics per sweep, and resumes without rerunning; an MNIST CSV file (sorted by label,
like the 5k development subset) loads with a shuffled split.
"""
import gzip
import json

import numpy as np
import pytest

from penaltyprop import cli
from penaltyprop.data import DataError
from penaltyprop.data.mnist_csv import load_mnist_csv
from penaltyprop.experiments import run_experiment, runner
from penaltyprop.experiments.family import family_methods, family_runs
from penaltyprop.experiments.settings import FAMILY_SETTINGS
from penaltyprop.methods import METHODS


def _quiet(line):
    pass


def test_every_method_trains_on_every_tiny_data_set(backend, tmp_path):
    """One store per data set holding every method, their table and figures."""
    kinds = {run.method.key: run.method.kind for run in family_runs()}
    kinds["altmin-source"] = "oracle"  # AltMin in its source's settings, on every data set
    result = run_experiment("family", "tiny", out=tmp_path, backend=backend, log=_quiet)
    tiny = FAMILY_SETTINGS["tiny"]
    assert set(result["datasets"]) == {"synthetic", "digits"}
    for name in ("synthetic", "digits"):
        stored = json.loads((tmp_path / name / "results.json").read_text())
        assert set(stored["runs"]) == set(kinds)
        for key, record in stored["runs"].items():
            h = record["history"]
            assert h["diverged"] or len(h["epoch"]) == tiny.epochs + 1
            lifted = kinds[key] == "lifted"
            assert len(h["diagnostics"]) == (tiny.epochs + 1 if lifted else 0)
        table = (tmp_path / name / f"family-{name}.md").read_text()
        assert sum(line.startswith("| ") for line in table.splitlines()) == 1 + len(kinds)
        for png in (f"family-{name}.png", f"family-{name}-residuals.png"):
            assert (tmp_path / name / png).stat().st_size > 1000
        rows = {r["key"]: r for r in stored["summary"]}
        assert rows["bcd"]["kind"] == "lifted" and rows["backprop"]["kind"] == "oracle"
        assert rows["bcd"]["residual_z"] is not None and rows["backprop"]["residual_z"] is None
    assert (tmp_path / "family.md").read_text() == result["markdown"]


def test_a_rerun_trains_nothing(tmp_path, monkeypatch):
    run_experiment("family", "tiny", out=tmp_path, log=_quiet)
    calls = []
    real = runner.train
    monkeypatch.setattr(runner, "train", lambda *a, **k: calls.append(a[3].name) or real(*a, **k))
    run_experiment("family", "tiny", out=tmp_path, log=_quiet)
    assert calls == []


def test_the_sources_bcd_cells_train_with_their_own_sweeps_and_network_in_the_plan(
        tmp_path, monkeypatch):
    """BCD in its sources' setting (``source_bcd``): the same cells as the others, with their
    own number of sweeps and network, counted in the time estimate (they were trained apart,
    after the estimate, and never on the Dask workers)."""
    from penaltyprop.experiments import family
    from penaltyprop.experiments.settings import FamilyData, FamilyScale

    monkeypatch.setattr(family, "SOURCE_BCD_HIDDEN", (12, 12))  # 3 x 1500, shrunk
    monkeypatch.setattr(family, "SOURCE_BCD_SWEEPS", 3)  # not the family's 2 epochs
    monkeypatch.setitem(FAMILY_SETTINGS, "tiny", FamilyScale(
        (FamilyData("synthetic", 64, (16, 16), source_bcd=True),), epochs=2, batch_size=32))
    lines = []
    run_experiment("family", "tiny", out=tmp_path, log=lines.append)
    runs = json.loads((tmp_path / "synthetic" / "results.json").read_text())["runs"]
    configurations = len(family_runs()) + 3  # the family, AltMin's and BCD's two sources' runs
    assert f"[plan] {configurations} of {configurations} configurations to run" in "\n".join(lines)
    assert list(runs)[-2:] == ["bcd-source", "bcd-source-split"]
    for key in ("bcd-source", "bcd-source-split"):
        assert runs[key]["history"]["epoch"] == [0, 1, 2, 3]
        assert "Linear(192, 12) -> ReLU() -> Linear(12, 12)" in runs[key]["config"]["net"]
    assert runs["bcd"]["history"]["epoch"] == [0, 1, 2]


def test_the_command_line_runs_the_tiny_family(tmp_path, capsys):
    assert cli.main(["experiment", "family", "--scale", "tiny", "--out", str(tmp_path)]) == 0
    assert "| BCD | lifted |" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, argument", [
    ({"cg_variant": "authors"}, "cg_variant"), ({"optimizer": "adam"}, "optimizer"),
])
def test_bad_arguments_are_named(kwargs, argument, tmp_path):
    with pytest.raises(ValueError, match=argument):
        run_experiment("family", "tiny", out=tmp_path, log=_quiet, **kwargs)


def test_mnist_csv_only_applies_to_the_family(tmp_path):
    with pytest.raises(ValueError, match="mnist_csv"):
        run_experiment("conditioning", "tiny", out=tmp_path, mnist_csv="x.csv", log=_quiet)


def test_the_family_is_every_registered_method_once_backprop_first_lifted_last():
    names = [m.name for m in family_methods()]
    assert sorted(names) == sorted(METHODS) and names[0] == "backprop"
    kinds = [m.kind for m in family_methods()]
    assert kinds == sorted(kinds, key=lambda kind: kind == "lifted")
    assert {"backprop", "proxprop", "altmin", "bcd", "admm"} <= set(names)


def _write_csv(path, n_per_class=5, header=False):
    """A CSV sorted by label, as the 5k subset: pixel j of an image of class c is (7 c + j) % 256."""
    lines = ["pixel" + ",pixel" * 783 + ",label"] if header else []
    for c in range(10):
        for i in range(n_per_class):
            pixels = [(7 * c + j + i) % 256 for j in range(784)]
            lines.append(",".join(map(str, pixels + [c])))
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def test_mnist_csv_is_split_at_random_and_scaled(tmp_path):
    path = tmp_path / "mnist.csv.gz"
    _write_csv(path, header=True)
    data = load_mnist_csv(path)
    # 50 images: a fifth for test, a tenth for validation, the rest for training
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (35, 5, 10)
    assert data.image_shape == (1, 28, 28) and data.X_train.shape == (35, 784)
    assert list(data.y_train) != sorted(data.y_train)  # shuffled, though the file is sorted
    # every image keeps its label: pixel 0 of image (c, i) is (7 c + i) / 255
    for X, y in ((data.X_train, data.y_train), (data.X_test, data.y_test)):
        i = np.rint(X[:, 0] * 255).astype(int) - 7 * y
        assert ((0 <= i) & (i < 5)).all()
    again = load_mnist_csv(path)
    assert (again.y_test == data.y_test).all()  # the split is fixed
    assert len(load_mnist_csv(path, subset=7).y_train) == 7


@pytest.mark.parametrize("text, match", [
    ("1,2,3\n", "785 columns"), ("a,b\n1,x\n", "not an integer"), ("0," * 784 + "12\n", "label"),
])
def test_a_bad_mnist_csv_is_one_error(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        load_mnist_csv(path)
    with pytest.raises(DataError, match="not a file"):
        load_mnist_csv(tmp_path / "missing.csv")
