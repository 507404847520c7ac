"""The numbers in the docs come from the committed results: every generated table and every
checked number of README.md, docs/reproduction.md and docs/family.md equals what
``penaltyprop.experiments.docnumbers`` computes from docs/results/*.json, and the check fails
on drift.
"""
import json
import shutil
from pathlib import Path

import pytest

from penaltyprop.experiments import docnumbers
from penaltyprop.experiments.docnumbers import Results, count_markers, evaluate

ROOT = Path(__file__).resolve().parent.parent


def test_the_docs_match_their_results():
    stale = docnumbers.check(ROOT)
    assert not stale, ("these pages differ from docs/results (run python -m "
                       "penaltyprop.experiments.docnumbers --write):\n" + "\n".join(stale.values()))


@pytest.mark.parametrize("page", docnumbers.DOCUMENTS)
def test_every_page_has_generated_tables_and_checked_numbers(page):
    blocks, values = count_markers((ROOT / page).read_text())
    assert blocks >= 1 and values >= 5


def _fake_repo(tmp_path):
    """A repository with one results file and one page that uses both kinds of marker."""
    shutil.copy(ROOT / "docs/results/figure2-small.json", tmp_path / "f.json")
    (tmp_path / "docs/results").mkdir(parents=True)
    shutil.move(tmp_path / "f.json", tmp_path / "docs/results/figure2-small.json")
    page = ("BackProp reached <!-- v: run figure2-small backprop test_acc | pct -->?<!-- /v -->.\n"
            "<!-- generated: figure figure2-small figure2 4 -->\n<!-- end generated -->\n")
    (tmp_path / "page.md").write_text(page)
    return tmp_path


def test_drift_is_found_and_rewritten(tmp_path):
    root = _fake_repo(tmp_path)
    assert docnumbers.check(root, ("page.md",))  # the placeholders differ
    assert docnumbers.write(root, ("page.md",)) == ["page.md"]
    text = (root / "page.md").read_text()
    assert "reached <!-- v: run figure2-small backprop test_acc | pct -->29.0%<!-- /v -->" in text
    assert "| BackProp | 1.907 |" in text
    assert docnumbers.check(root, ("page.md",)) == {}
    # a result changes: both the inline number and the table are stale now
    path = root / "docs/results/figure2-small.json"
    data = json.loads(path.read_text())
    data["runs"]["backprop"]["history"]["test_acc"] = 0.3
    data["runs"]["backprop"]["history"]["train_loss"][-1] = 1.5
    path.write_text(json.dumps(data))
    diff = docnumbers.check(root, ("page.md",))["page.md"]
    assert "-BackProp reached" in diff and "30.0%" in diff and "| BackProp | 1.500 |" in diff


def test_median_epoch_time_leaves_out_epoch_0():
    results = Results(ROOT / "docs/results")
    times = results["figure3-medium"]["runs"]["backprop"]["history"]["epoch_time"]
    assert times[0] == 0.0  # epoch 0 only evaluates; it would pull the median down
    ordered = sorted(times[1:])  # 15 epochs: the median is the 8th
    assert evaluate("epoch figure3-medium backprop | f3", results) == f"{ordered[7]:.3f}"


@pytest.mark.parametrize("expr, message", [
    ("nonsense figure2-small", "unknown value function 'nonsense'"),
    ("run figure2-small backprop test_acc | percent", "unknown format 'percent'"),
    ("run figure2-small adam test_acc", "no run 'adam'"),
    ("run no-such-file backprop test_acc", "no results file"),
    ("run figure2-small backprop no_such_field", "'run figure2-small backprop no_such_field': "
                                                 "no entry 'no_such_field'"),
    ("run figure2-small backprop", "'run figure2-small backprop': .*missing .* 'field'"),
    ("best_tau table1-small cg7", "'best_tau table1-small cg7': no entry 'cg7_tau50'"),
])
def test_bad_expressions_are_named(expr, message):
    with pytest.raises(ValueError, match=message):
        evaluate(expr, Results(ROOT / "docs/results"))


def test_a_corrupt_results_file_is_named(tmp_path):
    (tmp_path / "figure2-small.json").write_text('{"runs": ')
    with pytest.raises(ValueError, match=r"figure2-small.json is not JSON"):
        evaluate("run figure2-small backprop test_acc", Results(tmp_path))


def test_the_command_names_a_page_it_cannot_read_in_one_line(tmp_path, capsys):
    assert docnumbers.main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'README.md'}: No such file or directory\n"


def test_an_unknown_table_is_named(tmp_path):
    (tmp_path / "docs/results").mkdir(parents=True)
    (tmp_path / "page.md").write_text("<!-- generated: no-such-table -->\n<!-- end generated -->")
    with pytest.raises(ValueError, match="unknown table 'no-such-table'"):
        docnumbers.check(tmp_path, ("page.md",))


def test_finished_names_the_runs_a_results_file_holds_and_those_it_lacks(tmp_path):
    (tmp_path / "f.json").write_text('{"runs": {"backprop": {}, "cg3": {}}}')
    results = Results(tmp_path)
    assert evaluate("finished f backprop cg3", results) == "all"
    assert evaluate("finished f backprop cg3 cg10", results) == "BackProp, cg3; not yet cg10"
    assert evaluate("finished f exact cg10", results) == "none; not yet exact, cg10"


def test_bench_spread_is_the_range_of_one_mode_over_bench_files(tmp_path):
    for stem, ratio in [("a", 1.25), ("b", 0.97), ("c", 1.5)]:
        modes = [{"label": "BackProp", "ratio_to_backprop": 1.0},
                 {"label": "exact", "ratio_to_backprop": ratio}]
        (tmp_path / f"{stem}.json").write_text(json.dumps({"modes": modes}))
    results = Results(tmp_path)
    assert evaluate("bench_spread exact ratio_to_backprop a b | range2", results) == "0.97-1.25"
    assert evaluate("bench_spread exact ratio_to_backprop a b c | range1", results) == "1.0-1.5"
    with pytest.raises(ValueError, match="no mode 'CG-3'"):
        evaluate("bench_spread CG-3 ratio_to_backprop a", results)
    with pytest.raises(ValueError, match="name at least one bench file"):
        evaluate("bench_spread exact ratio_to_backprop", results)


@pytest.mark.parametrize("page", docnumbers.DOCUMENTS)
def test_no_line_starts_with_a_value_marker(page):
    """Markdown reads a line that starts with an HTML comment as an HTML block, which ends the
    paragraph before it: a number's marker must sit inside its sentence's line, not begin one."""
    starts = [n for n, line in enumerate((ROOT / page).read_text().splitlines(), 1)
              if line.lstrip().startswith(("<!-- v:", "<!-- /v"))]
    assert not starts, f"{page}: lines {starts} start with a value marker"


def test_best_epoch_is_the_epoch_of_the_lowest_or_highest_value(tmp_path):
    history = {"val_loss": [9.0, 3.0, 1.0, 2.0, 1.0], "val_acc": [0.1, 0.5, 0.7, 0.6, 0.7]}
    (tmp_path / "f.json").write_text(json.dumps({"runs": {"cg3": {"history": history}}}))
    results = Results(tmp_path)
    assert evaluate("best_epoch f cg3 val_loss min", results) == "2"  # epoch 0 left out
    assert evaluate("best_epoch f cg3 val_acc max", results) == "2"
    with pytest.raises(ValueError, match="min or max"):
        evaluate("best_epoch f cg3 val_acc most", results)
