"""What a release promises: one version string, recorded by what the package writes, and the
files that make it installable, citable and checkable.

* The version is written once (``penaltyprop/version.py``); ``penaltyprop.__version__``,
  ``penaltyprop --version``, the package metadata, CITATION.cff and the changelog agree.
* ``history.json``, ``checkpoint.npz`` and an experiment's ``results.json`` record the release
  that wrote them, outside the settings that a resumed run must match: a run resumed under
  another release continues and records the new one.
* ``pytest --backend cupy`` without CuPy stops before any test with one line.
"""
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import rewrite_checkpoint

import penaltyprop as pp
import penaltyprop.version
from penaltyprop.checkpoint import load_checkpoint
from penaltyprop.cli import main
from penaltyprop.experiments import run_experiment

ROOT = Path(__file__).resolve().parents[1]
VERSION = pp.__version__
SEMVER = re.compile(r"\d+\.\d+\.\d+")


def _tiny_run(out, **kwargs):
    data = pp.data.load_dataset("digits", subset=100)
    return pp.train.train(pp.mlp([64, 8, 10]), data, pp.optim.sgd(0.1), pp.BackProp(),
                          batch_size=50, out_dir=out, **kwargs)


# --------------------------------------------------------------------------- one version
def test_the_version_is_defined_once_in_version_py():
    assert SEMVER.fullmatch(VERSION)
    assert VERSION == penaltyprop.version.__version__
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'attr = "penaltyprop.version.__version__"' in pyproject
    project = pyproject.split("\n[project]\n")[1].split("\n[")[0]
    assert not re.search(r"(?m)^version\s*=", project)  # no second copy in [project]
    assignments = [p.relative_to(ROOT) for p in (ROOT / "penaltyprop").rglob("*.py")
                   if re.search(r"(?m)^__version__\s*=", p.read_text())]
    assert assignments == [Path("penaltyprop/version.py")]


def test_dash_dash_version_prints_it(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"penaltyprop {VERSION}\n"
    proc = subprocess.run([sys.executable, "-m", "penaltyprop", "--version"], check=False,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, f"penaltyprop {VERSION}\n")


def test_citation_readme_and_changelog_name_this_version():
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(rf"(?m)^version: {re.escape(VERSION)}$", citation)
    assert "1706.04638" in citation and "Proximal Backpropagation" in citation
    readme = (ROOT / "README.md").read_text()  # its BibTeX block
    assert re.search(rf"(?m)^  version = \{{{re.escape(VERSION)}\}},$", readme)
    assert "eprint        = {1706.04638}" in readme
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"(?m)^## \[{re.escape(VERSION)}\]", changelog)


def test_the_licence_is_mit_and_travels_with_both_distributions():
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "the penaltyprop developers" in licence
    assert 'license-files = ["LICENSE"]' in (ROOT / "pyproject.toml").read_text()  # the wheel
    manifest = (ROOT / "MANIFEST.in").read_text().split()  # the sdist
    for name in ("LICENSE", "CHANGELOG.md", "CITATION.cff", "tests", "notebooks", "docs"):
        assert name in manifest


# --------------------------------------------------------------------------- records
def test_history_and_checkpoint_record_the_release(tmp_path):
    result = _tiny_run(tmp_path, epochs=1)
    record = {"name": "penaltyprop", "version": VERSION}
    assert result.history["package"] == record
    assert json.loads((tmp_path / "history.json").read_text())["package"] == record
    assert load_checkpoint(tmp_path / "checkpoint.npz")["package"] == record
    assert "package" not in result.config  # not a setting: resuming does not compare it


def test_a_run_resumed_under_another_release_continues_and_records_it(tmp_path, monkeypatch):
    _tiny_run(tmp_path, epochs=1)
    monkeypatch.setattr(penaltyprop.version, "__version__", "9.9.9")
    result = _tiny_run(tmp_path, epochs=2, resume=True)
    assert result.history["epoch"] == [0, 1, 2]
    assert json.loads((tmp_path / "history.json").read_text())["package"]["version"] == "9.9.9"
    assert load_checkpoint(tmp_path / "checkpoint.npz")["package"]["version"] == "9.9.9"


def test_a_checkpoint_from_before_version_records_still_loads(tmp_path):
    _tiny_run(tmp_path, epochs=1)
    rewrite_checkpoint(tmp_path / "checkpoint.npz", lambda arrays, meta: meta.pop("package"))
    assert load_checkpoint(tmp_path / "checkpoint.npz")["package"] is None
    assert _tiny_run(tmp_path, epochs=2, resume=True).history["package"]["version"] == VERSION


def test_experiment_results_record_the_release_beside_the_settings(tmp_path, monkeypatch):
    quiet = dict(out=tmp_path, log=lambda line: None)
    result = run_experiment("conditioning", "tiny", **quiet)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["package"] == result["package"] == {"name": "penaltyprop", "version": VERSION}
    assert "package" not in stored["settings"] and VERSION not in json.dumps(stored["settings"])
    monkeypatch.setattr(penaltyprop.version, "__version__", "9.9.9")
    run_experiment("conditioning", "tiny", **quiet)  # resumes: the settings are the same
    assert json.loads((tmp_path / "results.json").read_text())["package"]["version"] == "9.9.9"


# --------------------------------------------------------------------------- --backend cupy
@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_backend_cupy_without_cupy_stops_at_once_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--backend", "cupy", "-p",
                           "no:cacheprovider", "tests/test_solve_spd.py"], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=300)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 4  # pytest's "usage error": no test ran
    assert len(lines) == 1 and "CuPy is not installed" in lines[0], lines
