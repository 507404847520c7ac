"""The notebooks as a course uses them: exercises, solutions, the student edition, grading.

Claims: (1) every coding exercise has a placeholder, a tagged solution and a check cell, and
every check of :mod:`penaltyprop.exercises` is used by one notebook; (2) the student edition
(``python -m penaltyprop notebooks --student DIR``) keeps no solution and no output; (3) run top
to bottom, every student notebook finishes without an error and every check reports its
exercise as not done; (4) ``--grade`` reads right, wrong, not done and error from a student's
notebook; (5) ``--figures`` writes PNG and SVG; (6) the notebooks speak to users only. (That
the full notebooks run with every solution passing its check in strict mode is pytest's own
run of notebooks/*.ipynb, notebooks/conftest.py.)
"""
import json
import re
from pathlib import Path

import pytest

from penaltyprop import exercises
from penaltyprop.cli import main
from penaltyprop.exercises import editions, run
from penaltyprop.exercises.verdict import STRICT_ENV

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
FILES = editions.notebook_files(NOTEBOOKS)



@pytest.fixture(autouse=True)
def normal_checks(monkeypatch):
    """The checks answer rather than raise, whatever the environment says."""
    monkeypatch.delenv(STRICT_ENV, raising=False)


def cells(path, tag=None):
    nb = editions.read_notebook(path)
    return [c for c in nb["cells"] if tag is None or tag in editions.tags(c)]


def defined(cell):
    """``(exercise, name)`` for each function and class a cell defines: a function's exercise is
    its name, a class's the registry name it sets (``name = "..."``, the method exercise)."""
    text = editions.source(cell)
    found = [(name, name) for name in re.findall(r"^def (\w+)\(", text, re.M)]
    for cls in re.findall(r"^class (\w+)\b", text, re.M):
        (registry_name,) = re.findall(r"^    name = \"(\w+)\"", text, re.M)
        found.append((registry_name, cls))
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:2])
def test_every_coding_exercise_has_a_placeholder_a_solution_and_a_check(path):
    placeholders = cells(path, editions.EXERCISE)
    assert placeholders, f"{path.name} has no coding exercise"
    solved = {pair for c in cells(path, editions.SOLUTION) for pair in defined(c)}
    checked = " ".join(editions.source(c) for c in cells(path, editions.CHECK))
    for cell in placeholders:
        ((exercise, name),) = defined(cell)
        assert "raise NotImplementedError" in editions.source(cell)
        assert (exercise, name) in solved, f"{path.name}: no solution cell defines {name}"
        assert f"ex.check_{exercise}({name})" in checked, f"{path.name}: {name} is never checked"
        assert cell["cell_type"] == "code" and not cell.get("outputs")


def test_every_check_is_used_by_one_notebook():
    names = [n for f in FILES for c in cells(f, editions.EXERCISE) for n, _ in defined(c)]
    assert sorted(names) == sorted(exercises.CHECKS)


def test_every_solution_is_tagged():
    """A folded 'Solution' in an untagged cell would survive into the student edition."""
    for f in FILES:
        for c in cells(f):
            if "<summary>Solution" in editions.source(c):
                assert editions.SOLUTION in editions.tags(c), (f.name, c["id"])


#: words of the project's development that user-facing text never contains
DEVELOPMENT = re.compile(r"\bissue\s*#?\d|milestone|\bsessions?\b|\.\./shared|/work/|DESIGN\.md|"
                         r"proximal-backpropagation\.md|\bhelpers?\b|\bthe lead\b", re.I)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:2])
def test_notebooks_speak_to_users(path):
    for c in cells(path):
        text = editions.source(c) + run.output_text(c)
        assert not DEVELOPMENT.search(text), (path.name, c["id"], DEVELOPMENT.search(text)[0])


def test_the_development_words_are_found():
    assert DEVELOPMENT.search("as issue 13 asks") and DEVELOPMENT.search("see ../shared/x")
    assert not DEVELOPMENT.search("the kernel of this notebook")


# --------------------------------------------------------------------------- student edition
@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert main(["notebooks", "--student", str(out)]) == 0
    return out


def test_the_student_edition_keeps_no_solution_and_no_output(student):
    for f in FILES:
        full, mine = editions.read_notebook(f), editions.read_notebook(student / f.name)
        solutions = [editions.source(c).strip() for c in full["cells"]
                     if editions.SOLUTION in editions.tags(c)]
        assert solutions
        kept = [c for c in full["cells"] if editions.SOLUTION not in editions.tags(c)]
        assert [c["id"] for c in mine["cells"]] == [c["id"] for c in kept]
        everything = "\n".join(editions.source(c) for c in mine["cells"])
        assert not any(s in everything for s in solutions), f.name
        assert "<summary>Solution" not in everything
        for c in mine["cells"]:
            assert editions.SOLUTION not in editions.tags(c)
            assert "execution" not in c["metadata"]
            if c["cell_type"] == "code":
                assert c["outputs"] == [] and c["execution_count"] is None


def test_the_student_edition_leaves_the_source_alone(student):
    before = {f: f.read_bytes() for f in FILES}
    assert main(["notebooks", "--student", str(student)]) == 0  # again, over its own output
    assert {f: f.read_bytes() for f in FILES} == before


@pytest.mark.slow
@pytest.mark.parametrize("name", [f.name for f in FILES], ids=lambda n: n[:2])
def test_student_notebooks_run_and_report_not_done(student, name, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "strict")  # removed for the kernel: the checks just answer
    nb = editions.read_notebook(student / name)
    done = run.execute(nb, student)
    errors = [o for c in done["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    expected = run.expected_exercises(nb, exercises.CHECKS)
    found = run.verdicts(done, list(exercises.CHECKS))
    assert expected and {n: found[n][0] for n in expected} == dict.fromkeys(expected, "not done")


# --------------------------------------------------------------------------- grading, figures
def notebook(*sources, tags_of=None):
    tags_of = tags_of or {}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": f"c{i}", "source": s, "outputs": [], "execution_count": None,
         "metadata": {"tags": tags_of[i]} if i in tags_of else {}}
        for i, s in enumerate(sources)]}


def test_grade_reads_every_verdict(tmp_path, capsys):
    nb = notebook(
        "import numpy as np\nfrom penaltyprop import exercises as ex",
        "def relu_prox(a, v, gamma, c):\n    return np.maximum(v, 0)",            # wrong
        "ex.check_relu_prox(relu_prox)",
        "def multiplier_update(lam, z_K, W, b, a, beta):\n    raise NotImplementedError",
        "ex.check_multiplier_update(multiplier_update)",
        "def im2col(a, k, padding):\n    return a.reshape(a.shape[0], -1)",
        "print(ex.check_im2col(im2col).message.splitlines()[0])",
        "ex.check_col2im(col2im)",                                                 # undefined
        "def algorithm1(theta, X, y, tau):\n    return 1 / 0",                     # raises
        "ex.check_algorithm1(algorithm1)",
        "print('relu_prox: right. It agrees with everything.')",                  # a fake line
        "def nesterov_step(p, d, buf, lr, momentum):\n    raise NotImplementedError",
        tags_of={2: ["check"], 4: ["check"], 6: ["check"], 7: ["check"], 9: ["check"],
                 11: ["exercise"]})  # 11: its check cell was deleted
    path = tmp_path / "student.ipynb"
    editions.write_notebook(nb, path)
    assert main(["notebooks", "--grade", str(path)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    status = {r[1]: r[2] for r in rows}
    assert status == {"algorithm1": "wrong", "im2col": "wrong", "col2im": "error",
                      "relu_prox": "wrong", "multiplier_update": "not done",
                      "nesterov_step": "not done"}
    assert all(r[0] == str(path) for r in rows)
    line = {r[1]: r[3] for r in rows}
    assert "ZeroDivisionError" in line["algorithm1"]
    assert line["col2im"].startswith("col2im: error. col2im is not defined")


def test_grade_goes_on_after_a_notebook_that_does_not_finish(tmp_path, capsys):
    """A kernel that dies: that notebook's exercises are "not run", the next one is graded."""
    dies = notebook("import os\nos._exit(1)", "ex.check_relu_prox(relu_prox)",
                    tags_of={1: ["check"]})
    fine = notebook("from penaltyprop import exercises as ex\n"
                    "from penaltyprop.methods.lifted import relu_prox as package_prox\n"
                    "def relu_prox(a, v, gamma, c):\n    return package_prox(a, v, gamma, c)",
                    "ex.check_relu_prox(relu_prox)", tags_of={1: ["check"]})
    for name, nb in (("dies", dies), ("fine", fine)):
        editions.write_notebook(nb, tmp_path / f"{name}.ipynb")
    files = [str(tmp_path / "dies.ipynb"), str(tmp_path / "fine.ipynb")]
    assert main(["notebooks", "--grade", *files]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(r[0], r[1], r[2]) for r in rows] == [(files[0], "relu_prox", "not run"),
                                                  (files[1], "relu_prox", "wrong")]
    assert "kernel died" in rows[0][3] and "It calls penaltyprop." in rows[1][3]


def test_grade_reports_a_cell_past_the_timeout(tmp_path):
    slow = notebook("import time\ntime.sleep(120)", "ex.check_relu_prox(relu_prox)",
                    tags_of={1: ["check"]})
    editions.write_notebook(slow, tmp_path / "slow.ipynb")
    (status, line), = run.grade(tmp_path / "slow.ipynb", exercises.CHECKS, timeout=2).values()
    assert status == "not run" and "longer than 2 s" in line


@pytest.mark.slow
def test_grade_a_student_notebook_with_an_error(student, tmp_path, capsys):
    """Notebook 06 of the student edition as a student hands it in: exercise 1 right (written
    independently), exercise 2 raising inside the function, exercise 7's cell a SyntaxError
    (its class never defined)."""
    answers = {
        "def relu_prox": "def relu_prox(a, v, gamma, c):\n"
                         "    zp = np.clip((gamma * a + c * v) / (gamma + c), 0, None)\n"
                         "    zn = np.where(v < 0, v, 0.0)\n"
                         "    fp = gamma / 2 * (a - zp) ** 2 + c / 2 * (zp - v) ** 2\n"
                         "    fn = gamma / 2 * a ** 2 + c / 2 * (zn - v) ** 2\n"
                         "    return np.where(fp < fn, zp, zn)\n",
        "def multiplier_update": "def multiplier_update(lam, z_K, W, b, a, beta):\n"
                                "    return lam + beta * (z_K - W @ a - bias[:, None])\n",
        "class ProxEveryLayer": "@dataclass(frozen=True)\n"
                                "class ProxEveryLayer(pp.methods.OracleMethod)\n"
                                "    name = 'prox_every_layer'\n",
    }
    nb = editions.read_notebook(student / "06_penalty_family.ipynb")
    for cell in nb["cells"]:
        if editions.EXERCISE in editions.tags(cell):
            (key,) = [k for k in answers if k in editions.source(cell)]
            cell["source"] = answers[key]
    path = tmp_path / "ada_06.ipynb"
    editions.write_notebook(nb, path)
    assert main(["notebooks", "--grade", str(path)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert {r[1]: r[2] for r in rows} == {"relu_prox": "right", "multiplier_update": "wrong",
                                          "prox_every_layer": "error"}
    line = {r[1]: r[3] for r in rows}
    assert "It raised NameError: name 'bias' is not defined" in line["multiplier_update"]
    assert "ProxEveryLayer is not defined" in line["prox_every_layer"]


def test_figures_are_written_as_png_and_svg(tmp_path, capsys):
    nb = notebook("%matplotlib inline\nimport matplotlib.pyplot as plt",
                  "plt.plot([1, 3, 2])\nplt.show()",
                  "plt.plot([0, 1])\nplt.show()\nplt.plot([1, 0])\nplt.show()")
    nb["cells"][1]["metadata"]["figure"] = "one"
    nb["cells"][2]["metadata"]["figure"] = "two"
    (tmp_path / "nb").mkdir()
    editions.write_notebook(nb, tmp_path / "nb" / "01_demo.ipynb")
    out = tmp_path / "figures"
    assert main(["notebooks", "--figures", str(out), "--source", str(tmp_path / "nb")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["one.png", "one.svg", "two-2.png", "two-2.svg",
                                                      "two.png", "two.svg"]
    assert (out / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (out / "one.svg").read_text()


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("argv,words", [
    (["--student", str(NOTEBOOKS)], "another folder"),
    (["--student", "x", "--only", "01"], "--only applies to --figures"),
    (["--student", "x", "--source", "/nonexistent/notebooks"], "--source"),
    (["--time", "times.txt"], "expected a .json"),
    (["--grade", "/nonexistent.ipynb"], "is not a file"),
])
def test_bad_input_is_one_line(capsys, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    assert main(["notebooks", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_file_that_is_not_a_notebook_is_named(tmp_path, capsys):
    bad = tmp_path / "src"
    bad.mkdir()
    (bad / "01_bad.ipynb").write_text("{not json")
    assert main(["notebooks", "--student", str(tmp_path / "out"), "--source", str(bad)]) == 2
    assert "01_bad.ipynb is not a notebook" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_times_table_quotes_the_measurement():
    """docs/teaching.md carries the table of docs/results/notebook-times.json, unchanged."""
    root = NOTEBOOKS.parent
    result = json.loads((root / "docs/results/notebook-times.json").read_text())
    from penaltyprop.exercises.times import times_table

    table = times_table(result)
    assert table in (root / "docs/teaching.md").read_text()
    assert set(result["notebooks"]) == {f.name for f in FILES}
    for name, runs in result["notebooks"].items():
        assert runs["as_set_up"]["cifar10"] == ("without_cifar10" in runs), name
        assert not runs.get("without_cifar10", {"cifar10": False})["cifar10"], name


def test_the_guides_sample_verdict_is_what_the_check_prints():
    import numpy as np

    def relu_prox(a, v, gamma, c):  # the guide's "first attempt"
        return np.maximum((gamma * a + c * v) / (gamma + c), 0)

    guide = (NOTEBOOKS.parent / "docs/teaching.md").read_text()
    assert exercises.check_relu_prox(relu_prox).message in guide


@pytest.mark.slow
def test_pytest_fails_a_notebook_whose_check_is_not_right(tmp_path):
    """notebooks/conftest.py puts the checks in strict mode for pytest's notebook runs: a wrong
    answer fails its notebook, a right one passes."""
    import shutil
    import subprocess
    import sys

    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(NOTEBOOKS / "conftest.py", folder)
    head = ("import numpy as np\nfrom penaltyprop import exercises as ex\n"
            "def relu_prox(a, v, gamma, c):\n"
            "    z_pos, z_neg = np.maximum((gamma * a + c * v) / (gamma + c), 0), np.minimum(v, 0)\n"
            "    f_pos = gamma / 2 * (a - z_pos) ** 2 + c / 2 * (z_pos - v) ** 2\n"
            "    return np.where(f_pos <= gamma / 2 * a ** 2 + c / 2 * (z_neg - v) ** 2, z_pos, z_neg)")
    for name, answer in (("wrong", "lambda a, v, gamma, c: v"), ("right", "relu_prox")):
        nb = notebook(head, f"ex.check_relu_prox({answer})")
        nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}
        editions.write_notebook(nb, folder / f"{name}.ipynb")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbmake", "-p", "no:cacheprovider",
                           "-o", "addopts=", str(folder)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert "wrong.ipynb" in done.stdout and "1 failed, 1 passed" in done.stdout, done.stdout[-2000:]


def test_the_guide_lists_every_lecture_figure():
    named = {name for f in FILES for name, _ in run.figure_cells(editions.read_notebook(f))}
    guide = (NOTEBOOKS.parent / "docs/teaching.md").read_text()
    listed = set(re.findall(r"^\| `(\d\d-[\w-]+)` \| \d\d \|", guide, re.M))
    assert named == listed and len(named) >= 6
