r"""Running notebooks: the lecture figures as PNG and SVG, and grading a student's notebook.

Both execute a notebook top to bottom in a fresh kernel with :mod:`nbclient` (installed with
Jupyter, and with the test requirements through nbmake), in the notebook's own folder:

* :func:`export_figures` runs a notebook with the inline backend asked for PNG and SVG and
  writes the figure of every cell that names one in ``metadata.figure``;
* :func:`grade` runs a student's notebook, errors allowed, then one cell more that runs every
  exercise's check on what the kernel defines at the end (the function or class the exercise
  names), so that a verdict line printed by other code, or a later check of some other
  function, cannot stand in for it.

The checks run in their normal mode there (``$PENALTYPROP_CHECKS`` is removed for the kernel),
so that one open exercise does not hide the others.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from pathlib import Path

from ..fsutil import atomic_writer
from .editions import CHECK, EXERCISE, read_notebook, source, tags
from .verdict import STATUSES, STRICT_ENV

#: added after the cell that turns on ``%matplotlib inline``: both formats, a sharper PNG
FIGURE_SETUP = ('%config InlineBackend.figure_formats = ["png", "svg"]\n'
                'plt.rcParams["figure.dpi"] = 150')


def notebook_client(nb, folder, timeout, allow_errors):
    """An :class:`nbclient.NotebookClient` for the dict ``nb``, run in ``folder``."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        raise ValueError("running notebooks needs nbclient and ipykernel "
                         "(pip install nbclient ipykernel, or the test requirements)") from None
    node = nbformat.reads(json.dumps(nb), as_version=4)
    return node, NotebookClient(node, timeout=timeout, kernel_name="python3",
                                allow_errors=allow_errors,
                                resources={"metadata": {"path": str(folder)}})


@contextlib.contextmanager
def normal_checks():
    """The checks in their normal mode for kernels started inside (no ``$PENALTYPROP_CHECKS``)."""
    saved = os.environ.pop(STRICT_ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[STRICT_ENV] = saved


def execute(nb, folder, timeout=600, allow_errors=False):
    """Run the notebook dict ``nb`` in ``folder``; return the executed notebook (a dict).

    Raises
    ------
    ValueError
        If nbclient is missing, or (with ``allow_errors=False``) a cell raised.
    """
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    node, client = notebook_client(nb, folder, timeout, allow_errors)
    try:
        with normal_checks():
            client.execute()
    except CellExecutionError as err:  # one cell raised: say what, and the cell's first line
        cell = next((line for line in str(err).splitlines()[2:] if line.strip()), "")
        raise ValueError(f"a notebook cell raised {err.ename}: {err.evalue} (the cell that "
                         f"starts with {cell.strip()[:80]!r})") from None
    except CellTimeoutError:
        raise ValueError(f"a notebook cell ran longer than {timeout} s (--timeout)") from None
    except DeadKernelError:
        raise ValueError("the notebook's kernel died (out of memory, or the code exited "
                         "Python)") from None
    return json.loads(json.dumps(node))


# --------------------------------------------------------------------------- figures
def with_figure_setup(nb):
    """``nb`` with :data:`FIGURE_SETUP` after the cell that turns on the inline backend."""
    cells = list(nb["cells"])
    at = next((i for i, c in enumerate(cells)
               if c["cell_type"] == "code" and "%matplotlib inline" in source(c)), None)
    if at is None:
        raise ValueError("the notebook has no cell with %matplotlib inline")
    setup = {"cell_type": "code", "metadata": {}, "source": FIGURE_SETUP, "outputs": [],
             "execution_count": None, "id": "figure-setup"}
    return {**nb, "cells": cells[:at + 1] + [setup] + cells[at + 1:]}


def figure_cells(nb) -> list:
    """``(name, cell)`` for every cell that names a lecture figure in ``metadata.figure``."""
    return [(c["metadata"]["figure"], c) for c in nb["cells"] if c.get("metadata", {}).get("figure")]


def export_figures(path, out_dir, timeout=600) -> list:
    """Run one notebook and write its lecture figures as ``out_dir/NAME.png`` and ``.svg``.

    A cell with several figures gives ``NAME.png``, ``NAME-2.png``, ... Returns the files
    written; [] for a notebook without figure cells (it is not run).
    """
    path = Path(path)
    nb = read_notebook(path)
    if not figure_cells(nb):
        return []
    done = execute(with_figure_setup(nb), path.parent, timeout)
    written = []
    for name, cell in figure_cells(done):
        images = [o["data"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if not images:
            raise ValueError(f"{path.name}: the cell of figure {name!r} made no figure")
        for i, data in enumerate(images, start=1):
            stem = name if i == 1 else f"{name}-{i}"
            for ext, key in (("png", "image/png"), ("svg", "image/svg+xml")):
                if key not in data:
                    raise ValueError(f"{path.name}: figure {name!r} has no {ext.upper()} output")
                text = data[key] if isinstance(data[key], str) else "".join(data[key])
                blob = base64.b64decode(text) if ext == "png" else text.encode("utf-8")
                with atomic_writer(Path(out_dir) / f"{stem}.{ext}") as f:
                    f.write(blob)
                written.append(Path(out_dir) / f"{stem}.{ext}")
    return written


# --------------------------------------------------------------------------- grading
def output_text(cell) -> str:
    """The text a cell printed or showed (stream, result, display), and its error if any."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
        elif out.get("output_type") == "error":
            parts.append(f"ERROR {out.get('ename')}: {out.get('evalue')}")
        elif "text/plain" in out.get("data", {}):
            text = out["data"]["text/plain"]
            parts.append(text if isinstance(text, str) else "".join(text))
    return "\n".join(parts)


def verdicts(nb, exercises) -> dict:
    """``{exercise: (status, first line)}`` read from the printed outputs of an executed notebook.

    A check cell (tag ``check``) that raised counts as ``"error"`` for the exercise whose check
    it calls (``check_NAME``). :func:`grade` does not trust these lines (any cell can print one);
    they show what a student saw.
    """
    pattern = re.compile(rf"^({'|'.join(map(re.escape, exercises))}): "
                         rf"({'|'.join(map(re.escape, STATUSES))})\b.*$", re.M)
    found = {}
    for cell in nb["cells"]:
        text = output_text(cell)
        for match in pattern.finditer(text):
            found[match[1]] = (match[2], match[0])
        if CHECK in tags(cell) and "ERROR " in text:
            for name in exercises:
                if re.search(rf"\bcheck_{re.escape(name)}\b", source(cell)) and name not in found:
                    error = next(line for line in text.splitlines() if line.startswith("ERROR "))
                    found[name] = ("error", error)
    return found


def expected_exercises(nb, checks) -> list:
    """The exercises of a notebook, in the order of ``checks`` (``{name: check}``): those whose
    check a ``check`` cell calls (``check_NAME``), and those whose function or class an
    ``exercise`` cell defines (``check.takes``), so that a deleted check cell hides nothing."""
    called = "\n".join(source(c) for c in nb["cells"] if CHECK in tags(c))
    defined = "\n".join(source(c) for c in nb["cells"] if EXERCISE in tags(c))
    return [name for name, check in checks.items()
            if re.search(rf"\bcheck_{re.escape(name)}\b", called)
            or re.search(rf"^(?:def|class) {re.escape(check.takes)}\b", defined, re.M)]


#: the line the grading cell prints, followed by its verdicts as JSON
GRADES = "PENALTYPROP_GRADES"


def grading_cell(checks) -> dict:
    """A code cell that runs each check of ``checks`` (``{name: check}``) on the object of its
    ``takes`` name in the kernel, and prints :data:`GRADES` and ``{name: [status, line]}``."""
    wanted = [(name, check.takes) for name, check in checks.items()]
    text = f"""import json as _grade_json
from penaltyprop.exercises import CHECKS as _grade_checks
_grades = {{}}
for _grade_name, _grade_takes in {wanted!r}:
    if _grade_takes not in globals():
        _grades[_grade_name] = ["error", f"{{_grade_name}}: error. {{_grade_takes}} is not defined "
                                "at the end of the notebook (did the cell that defines it fail?)"]
        continue
    try:
        _grade_verdict = _grade_checks[_grade_name](globals()[_grade_takes])
        _grades[_grade_name] = [_grade_verdict.status, _grade_verdict.message.splitlines()[0]]
    except Exception as _grade_error:
        _grades[_grade_name] = ["error", f"{{_grade_name}}: error. The check raised "
                                f"{{type(_grade_error).__name__}}: {{_grade_error}}"]
print({GRADES!r}, _grade_json.dumps(_grades))
"""
    return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [],
            "execution_count": None, "id": "penaltyprop-grading"}


def grade(path, checks, timeout=600) -> dict:
    """Run a student's notebook (errors allowed), then every exercise's check on what the
    kernel defines at the end.

    Parameters
    ----------
    path : path-like
        A notebook file.
    checks : dict
        ``{name: check}``, e.g. :data:`penaltyprop.exercises.CHECKS`.
    timeout : float
        Seconds a cell may run.

    Returns
    -------
    dict
        ``{exercise: (status, line)}`` for every exercise of the notebook
        (:func:`expected_exercises`), in the order of ``checks``: a status of
        :data:`~penaltyprop.exercises.verdict.STATUSES`, ``"error"`` (the function or class
        the exercise names is not defined at the end, or its check raised) or ``"not run"``
        (the notebook did not finish: a cell ran past the timeout, or the kernel died).
    """
    path = Path(path)
    nb = read_notebook(path)
    checks = {name: check for name, check in checks.items()
              if name in expected_exercises(nb, checks)}
    if not checks:
        return {}
    try:
        done = execute({**nb, "cells": nb["cells"] + [grading_cell(checks)]}, path.parent,
                       timeout, allow_errors=True)
    except ValueError as err:
        return {name: ("not run", f"{name}: not run: {err}") for name in checks}
    text = output_text(done["cells"][-1])
    line = next((x for x in text.splitlines() if x.startswith(GRADES + " ")), None)
    if line is None:  # the grading cell itself failed: say how
        return {name: ("not run", f"{name}: not run: the grading cell printed no verdicts "
                                  f"({' '.join(text.split())[:160]})") for name in checks}
    found = json.loads(line[len(GRADES) + 1:])
    return {name: tuple(found[name]) for name in checks}
