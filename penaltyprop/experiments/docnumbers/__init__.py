r"""The numbers in the documentation, computed from the committed result files.

Every table in the pages of :data:`DOCUMENTS` and every number or ordering that their prose
quotes from a run is computed from ``docs/results/*.json``; a test
(``tests/test_docs_numbers.py``) recomputes them and fails when a page differs. After a new
result file, or a change to a table's code::

    python -m penaltyprop.experiments.docnumbers --write    # rewrite the marked regions
    python -m penaltyprop.experiments.docnumbers            # check only (exit 1 on drift)

**Contributor note: how to add a number.** Two markers (HTML comments, invisible on GitHub):

* a **generated table**: put ``<!-- generated: NAME ARG ... -->`` and ``<!-- end generated -->``
  on lines of their own and run ``--write``; everything between them is
  ``TABLES[NAME](results, ARG, ...)``. The tables there: ``table1 STEM``, ``table1-paper``,
  ``figure STEM figure2|figure3 EPOCHS``, ``conditioning STEM ...``, ``scales``,
  ``family STEM``, ``family-settings``, ``family-bench``, ``cnn-vs-torch STEM``, ``dask-runs STEM``,
  and the
  pages' summaries
  (:mod:`.summaries`). A new paper-scale run needs no code: commit its results file as
  ``docs/results/table1-paper.json`` and add ``<!-- generated: table1 table1-paper -->`` (or
  ``figure figure3-paper-cnn-authors figure3 1,10,50``) where the section should show it;
* a **checked number** in a sentence: write ``<!-- v: EXPR -->54.1%<!-- /v -->``. EXPR is a
  value expression ``FUNCTION ARG ... | FORMAT`` (:mod:`.core`): e.g.
  ``run figure2-paper backprop test_acc | pct`` (a history entry; per-epoch fields take the
  epoch, default the last), ``epoch figure2-paper cg3 | f1`` (the median epoch time),
  ``order figure2-paper train_loss 10 exact cg10 cg5 cg3 backprop`` (an ordering),
  ``best_tau table1-medium cg5``, ``cell table1-medium cg5 10 | loss``,
  ``family family-small-cifar10 altmin test_acc | pct``; formats: ``pct``, ``loss``,
  ``f0``-``f3``, ``g1``-``g3``, ``int``, ``ms``, ``min``, ``h1``, ``range0``-``range2``,
  ``str``.
  The text between the markers is replaced by ``--write`` and compared by the test.
  A marker never begins a line (Markdown would read it as an HTML block and end the
  paragraph there); the test checks that too.

A new kind of value is a function registered with :func:`.core.value` (in :mod:`.values`), a
new kind of table one registered with :func:`.core.table`; any page listed in
:data:`DOCUMENTS` can use both (docs/performance.md's numbers from the bench files, for one).
Numbers that are settings (45,000 images, 50 epochs) or the paper's own are not results and
stay plain text; the paper's Table 1 and Figure 2/3 numbers come from the constants of
:mod:`penaltyprop.experiments.training` where a table or check uses them.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from . import bench_tables, family_tables, paper_tables, summaries, values  # noqa: F401 (register)
from .core import FORMATS, TABLES, VALUES, Results, count_markers, evaluate, render

#: the pages whose marked numbers are kept in step with the results (repository-relative)
DOCUMENTS = ("README.md", "docs/reproduction.md", "docs/family.md", "docs/performance.md",
             "docs/distributed.md")
RESULTS = "docs/results"

__all__ = ["DOCUMENTS", "FORMATS", "RESULTS", "Results", "TABLES", "VALUES", "check",
           "count_markers", "evaluate", "render", "write"]


def _pages(root, documents):
    root = Path(root)
    results = Results(root / RESULTS)
    for name in documents:
        path = root / name
        text = path.read_text()
        yield name, path, text, render(text, results)


def check(root=".", documents=DOCUMENTS):
    """``{page: unified diff}`` of every page whose marked regions differ from the results."""
    stale = {}
    for name, _, text, fresh in _pages(root, documents):
        if fresh != text:
            stale[name] = "".join(difflib.unified_diff(
                text.splitlines(True), fresh.splitlines(True), f"{name} (committed)",
                f"{name} (from the results)", n=0))
    return stale


def write(root=".", documents=DOCUMENTS):
    """Rewrite the marked regions of every page; returns the pages that changed."""
    changed = []
    for name, path, text, fresh in _pages(root, documents):
        if fresh != text:
            path.write_text(fresh)
            changed.append(name)
    return changed


def main(argv=None):
    """The command line: check (exit 1 and print the diffs on drift) or ``--write``."""
    parser = argparse.ArgumentParser(
        prog="python -m penaltyprop.experiments.docnumbers",
        description="Check (default) or rewrite (--write) the docs' tables and checked numbers "
                    "from docs/results/*.json.")
    parser.add_argument("--write", action="store_true", help="rewrite the marked regions")
    parser.add_argument("--root", default=".", help="the repository root (default: .)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ValueError as err:  # a bad marker or a missing result: one line, naming it
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a page or a results file that cannot be read or written
        print(f"error: {err.filename}: {err.strerror}", file=sys.stderr)
        return 2


def _run(args):
    if args.write:
        for name in write(args.root):
            print(f"rewrote {name}")
        return 0
    stale = check(args.root)
    for diff in stale.values():
        sys.stdout.write(diff)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m "
              f"penaltyprop.experiments.docnumbers --write")
    return 1 if stale else 0
