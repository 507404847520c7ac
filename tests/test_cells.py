"""An experiment's grid of cells: keys over seeds, mean and spread over seeds, the grid's time.

Claims: a configuration trained with several seeds is one cell per seed, and a cell of seed s
holds exactly what a run with ``seed=s`` holds; a single-seed run keeps the keys and files it
always had (every committed results file still makes its committed table); tables report the
mean and the sample standard deviation over seeds; the time of a grid on W workers is list
scheduling of the measured cell times. None of this imports Dask.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from penaltyprop.experiments import EXPERIMENTS, run_experiment
from penaltyprop.experiments.cells import (
    blas_threads_per_worker,
    cell_key,
    fmt_spread,
    grid_seconds,
    grid_time,
    remaining_seconds,
    split_key,
    spread,
)
from penaltyprop.experiments.report import fmt_loss

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
TIMING = {"epoch_time", "eval_time", "time"}  # the only history entries that may differ


def _quiet(line):
    pass


def _results(folder):
    return json.loads((Path(folder) / "results.json").read_text())


def _untimed(history):
    return {k: v for k, v in history.items() if k not in TIMING}


# --------------------------------------------------------------------------- keys
@given(st.text(alphabet="abcdefgh_.0123456789", min_size=1), st.integers(0, 10**6),
       st.integers(0, 10**6))
def test_split_key_inverts_cell_key(key, seed, base):
    assert split_key(cell_key(key, seed, base), base) == (key, seed)


def test_the_base_seed_keeps_the_plain_key():
    assert cell_key("cg3_tau1", 0, 0) == "cg3_tau1"
    assert cell_key("cg3_tau1", 2, 0) == "cg3_tau1@seed2"
    assert cell_key("cg3", 0, 5) == "cg3@seed0"


# --------------------------------------------------------------------------- seeds as cells
def test_seeds_are_cells_equal_to_single_seed_runs(tmp_path):
    """A cell of seed 1 holds what a run with seed=1 holds; the table shows mean ± sd."""
    cells = ["cg3_tau1", "backprop_tau0.05"]
    result = run_experiment("table1", "tiny", out=tmp_path / "seeds", cells=cells,
                            seeds=[0, 1, 2], log=_quiet)
    runs = _results(tmp_path / "seeds")["runs"]
    assert list(runs) == [f"{c}{s}" for c in cells for s in ("", "@seed1", "@seed2")]
    run_experiment("table1", "tiny", out=tmp_path / "one", cells=cells, seed=1, log=_quiet)
    alone = _results(tmp_path / "one")["runs"]
    for c in cells:  # the oracle: an independent run with that seed
        assert _untimed(runs[f"{c}@seed1"]["history"]) == _untimed(alone[c]["history"])
    assert runs["cg3_tau1"]["history"]["train_loss"] != runs["cg3_tau1@seed1"]["history"][
        "train_loss"]  # the seeds differ

    losses = np.array([runs[k]["history"]["train_loss"][-1]
                       for k in ("cg3_tau1", "cg3_tau1@seed1", "cg3_tau1@seed2")])
    row = dict(result["summary"])["ProxProp (cg3)"]
    entry = row[3]  # tau = 1
    # mean and sample standard deviation of three numbers: exact up to summation order
    assert entry["mean"] == pytest.approx(losses.mean(), rel=1e-12)
    assert entry["sd"] == pytest.approx(losses.std(ddof=1), rel=1e-12)
    assert (entry["seeds"], entry["diverged"]) == (3, 0)
    assert f"{fmt_loss(losses.mean())} ± {fmt_loss(losses.std(ddof=1))}" in result["markdown"]
    assert "mean ± standard deviation" in result["markdown"]


def test_a_later_run_adds_seeds_and_trains_only_those(tmp_path):
    run_experiment("figure3", "tiny", out=tmp_path, cells=["backprop"], log=_quiet)
    first = _results(tmp_path)["runs"]["backprop"]
    lines = []
    result = run_experiment("figure3", "tiny", out=tmp_path, cells=["backprop"], seeds=[0, 3],
                            log=lines.append)
    assert sum("starting" in line for line in lines) == 1  # seed 3 only
    stored = _results(tmp_path)["runs"]
    assert list(stored) == ["backprop", "backprop@seed3"]
    assert stored["backprop"] == first  # untouched
    summary = result["summary"][0]
    assert summary["seeds"] == 2 and set(summary["test_acc"]) == {"mean", "sd", "seeds",
                                                                  "diverged"}
    assert "mean ± standard deviation" in result["markdown"]  # the figure's table says so
    # one row, four entries over seeds (loss, best val acc, test acc, time), and the note
    assert result["markdown"].count(" ± ") == 4 + 1


def test_seeds_zero_alone_writes_what_no_seeds_writes(tmp_path):
    run_experiment("figure2", "tiny", out=tmp_path / "a", cells=["cg3"], log=_quiet)
    run_experiment("figure2", "tiny", out=tmp_path / "b", cells=["cg3"], seeds=[0], log=_quiet)
    a, b = _results(tmp_path / "a"), _results(tmp_path / "b")
    assert a["settings"] == b["settings"] and list(a["runs"]) == list(b["runs"]) == ["cg3"]
    assert _untimed(a["runs"]["cg3"]["history"]) == _untimed(b["runs"]["cg3"]["history"])
    assert a["summary"][0].keys() == b["summary"][0].keys()
    assert (tmp_path / "a" / "figure2.md").read_text().count("±") == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"seeds": [1, 1]}, "seeds must be a non-empty list of distinct"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"seeds": "0"}, "seeds must be a non-empty list"),
    ({"seeds": [-1]}, "seeds must be an integer >= 0"),
    ({"seeds": [0.5]}, "seeds must be an integer >= 0"),
    ({"workers": 0}, "workers must be an integer >= 1"),
    ({"workers": "2"}, "workers must be an integer >= 1"),
    ({"workers": 2, "scheduler": "tcp://h:8786"}, "workers or scheduler, not both"),
    ({"scheduler": " "}, "scheduler must be a Dask scheduler address"),
    ({"blas_threads": 2}, "blas_threads sets the threads of Dask workers"),
    ({"workers": 2, "blas_threads": 0}, "blas_threads must be an integer >= 1"),
])
def test_bad_grid_options_are_named_before_anything_is_written(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        run_experiment("table1", "tiny", out=tmp_path / "out", log=_quiet, **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, kwargs, match", [
    ("conditioning", {"seeds": [0, 1]}, "seeds do not apply to 'conditioning'"),
    ("family", {"seeds": [0, 1]}, "seeds do not apply to 'family'"),
    ("conditioning", {"workers": 2}, "do not apply to 'conditioning': it trains nothing"),
])
def test_grid_options_only_apply_to_grids(name, kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        run_experiment(name, "tiny", out=tmp_path / "out", log=_quiet, **kwargs)
    assert not (tmp_path / "out").exists()


def test_a_serial_run_imports_no_dask(tmp_path):
    """Without workers or scheduler, neither dask nor distributed is imported (a fresh
    interpreter: this one may have imported them for other tests)."""
    code = ("import sys, penaltyprop\n"
            "from penaltyprop.experiments import run_experiment\n"
            "from penaltyprop import cli\n"
            f"run_experiment('table1', 'tiny', out={str(tmp_path)!r}, cells=['cg3_tau1'], "
            "seeds=[0, 1], log=lambda line: None)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**_env(), "MPLBACKEND": "Agg"})
    assert out.stdout.strip() == "[]"


def _env():
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


# --------------------------------------------------------------------------- the report code
def _committed(name_prefix):
    return sorted(p for p in RESULTS.glob(f"{name_prefix}*.json")
                  if json.loads(p.read_text()).get("settings", {}).get("experiment")
                  in ("figure2", "table1", "figure3"))


class _Stored:
    """A results.json as the report functions read a store (no folder, no lock)."""

    def __init__(self, data):
        self.data = data

    def __contains__(self, key):
        return key in self.data["runs"]

    def __getitem__(self, key):
        return self.data["runs"][key]


@pytest.mark.parametrize("path", _committed(""), ids=lambda p: p.name)
def test_every_committed_result_still_makes_its_committed_table(path, tmp_path):
    """The committed results (one seed each) read as they did: the table the report code
    writes today is the committed Markdown table, title line aside."""
    data = json.loads(path.read_text())
    name = data["settings"]["experiment"]
    EXPERIMENTS[name].report(_Stored(data), tmp_path, "title",
                             cg_variant=data["settings"]["cg_variant"])
    ours = (tmp_path / f"{name}.md").read_text().split("\n", 1)[1]
    assert ours == path.with_suffix(".md").read_text().split("\n", 1)[1]


# --------------------------------------------------------------------------- spread and time
def test_spread_is_the_mean_and_sample_deviation_of_the_finite_seeds():
    values = [0.5, None, 0.25, 1.0]
    s = spread(values)
    finite = np.array([0.5, 0.25, 1.0])
    assert s["mean"] == pytest.approx(finite.mean(), rel=1e-15)  # three numbers: rounding only
    assert s["sd"] == pytest.approx(finite.std(ddof=1), rel=1e-14)
    assert (s["seeds"], s["diverged"]) == (4, 1)
    assert fmt_spread(s, fmt_loss) == f"{fmt_loss(finite.mean())} ± " \
                                      f"{fmt_loss(finite.std(ddof=1))} (1/4 -)"
    assert spread([None, None]) == {"mean": None, "sd": None, "seeds": 2, "diverged": 2}
    assert fmt_spread(spread([None, None]), fmt_loss) == "-"
    assert spread([2.0])["sd"] is None and spread([math.nan, 1.0])["diverged"] == 1


def test_grid_seconds_is_list_scheduling_in_order():
    # by hand: 3 -> w1, 3 -> w2, 2 -> w1 (5), 2 -> w2 (5), 2 -> w1 (7)
    assert grid_seconds([3, 3, 2, 2, 2], 2) == 7
    assert grid_seconds([1, 1, 1, 10], 3) == 11  # the long cell comes last
    assert grid_seconds([4, 5, 6], 1) == 15 and grid_seconds([4, 5, 6], 9) == 6
    with pytest.raises(ValueError, match="workers"):
        grid_seconds([1.0], 0)


@given(st.lists(st.floats(0, 1e4), min_size=1, max_size=40), st.integers(1, 12))
def test_grid_seconds_lies_within_grahams_bounds(seconds, workers):
    """Any list schedule lies between max(longest, total / W) and total / W + longest
    (Graham 1966); the 1e-9 relative slack covers the rounding of the sums."""
    t = grid_seconds(seconds, workers)
    total, longest = sum(seconds), max(seconds)
    assert max(longest, total / workers) * (1 - 1e-9) <= t <= (total / workers + longest) * (
        1 + 1e-9) + 1e-12


def test_remaining_seconds_uses_each_cells_own_or_its_groups_epoch_time():
    measured = {"a": {0: 0.5, 1: 2.0, 2: 4.0}, "b": {0: 0.1}}  # a: 2 epochs of mean 3 s
    groups = {"a": "cg3", "b": "cg3", "c": "backprop"}
    # a: 3 epochs left x 3 s = 9; b: 5 x 3 (its group's) = 15; c: 5 x 3 (all) = 15
    assert remaining_seconds(["a", "b", "c"], measured, groups, 5, 1) == 9 + 15 + 15
    assert remaining_seconds(["a", "b", "c"], measured, groups, 5, 3) == 15
    assert remaining_seconds(["b"], {"b": {0: 0.1}}, groups, 5, 1) is None  # nothing measured


def test_blas_threads_are_a_share_of_the_cores():
    assert [blas_threads_per_worker(w, 16) for w in (1, 2, 3, 16, 32)] == [16, 8, 5, 1, 1]


def test_the_committed_grid_time_is_computed_from_the_committed_results():
    """docs/results/grid-time-table1-medium.json is grid_time() of table1-medium.json."""
    committed = json.loads((RESULTS / "grid-time-table1-medium.json").read_text())
    measured = json.loads((RESULTS / "table1-medium.json").read_text())
    assert committed == json.loads(json.dumps(grid_time(measured)))
    assert committed["grid_s"]["1"] == pytest.approx(committed["total_s"], rel=1e-12)
