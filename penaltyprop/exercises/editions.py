r"""The notebooks as files: the cell tags, and the student edition.

The teaching notebooks mark their cells in the cell metadata (``metadata.tags``, the list that
JupyterLab's property inspector edits):

* ``exercise``: a coding exercise's placeholder, a function whose body raises
  NotImplementedError; the student writes it;
* ``solution``: a solution (code or text); the student edition leaves these cells out;
* ``check``: the cell that runs the exercise's check (:mod:`penaltyprop.exercises`).

A cell that makes a figure worth showing in a lecture names it in ``metadata.figure``
(``"01-energy-during-a-sweep"``); ``python -m penaltyprop notebooks --figures DIR`` exports those
(:mod:`penaltyprop.exercises.run`).

The student edition is the notebook without its ``solution`` cells, with every output and
execution count cleared: run top to bottom, each check reports its exercise as not done yet.
Notebooks are JSON (nbformat 4); this module reads and writes them with :mod:`json` alone.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..fsutil import atomic_write_text

SOLUTION, EXERCISE, CHECK = "solution", "exercise", "check"


def read_notebook(path) -> dict:
    """A notebook file as a dict; ValueError naming the file if it is not a notebook."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a notebook (invalid JSON: {err})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path} is not a notebook (no list of cells)")
    return nb


def write_notebook(nb, path) -> None:
    """Write a notebook as Jupyter does (sorted keys, one-space indent, UTF-8, final newline),
    atomically."""
    atomic_write_text(path, json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n")


def tags(cell) -> list:
    """The cell's tags (``metadata.tags``), [] if none."""
    return list(cell.get("metadata", {}).get("tags", []))


def source(cell) -> str:
    """The cell's source as one string (nbformat allows a string or a list of lines)."""
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def student_edition(nb) -> dict:
    """The notebook without its solution cells, outputs and execution counts cleared.

    Parameters
    ----------
    nb : dict
        A notebook (not modified).

    Returns
    -------
    dict
        A new notebook.
    """
    cells = []
    for cell in nb["cells"]:
        if SOLUTION in tags(cell):
            continue
        cell = json.loads(json.dumps(cell))  # a deep copy
        cell.get("metadata", {}).pop("execution", None)  # timestamps of the last run
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    return {**nb, "cells": cells}


def notebook_files(folder) -> list:
    """The notebooks ``NN_name.ipynb`` of a folder, in reading order; ValueError if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"notebook folder {folder} does not exist")
    files = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not files:
        raise ValueError(f"no notebooks (*.ipynb) in {folder}")
    return files


def write_student_edition(source_dir, out_dir) -> list:
    """Write the student edition of every notebook of ``source_dir`` into ``out_dir``.

    Every notebook is read and converted before the first is written, so that a bad notebook
    leaves nothing half-written behind; each file is written atomically.

    Returns
    -------
    list of Path
        The files written.
    """
    files = notebook_files(source_dir)
    editions = [(p.name, student_edition(read_notebook(p))) for p in files]
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(source_dir).resolve():
        raise ValueError("--student must name another folder than the notebooks' own: it "
                         "would overwrite the solutions")
    written = []
    for name, nb in editions:
        write_notebook(nb, out_dir / name)
        written.append(out_dir / name)
    return written
