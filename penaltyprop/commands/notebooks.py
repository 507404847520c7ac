"""``penaltyprop notebooks``: the student edition, the lecture figures, and grading.

* ``--student DIR``: the teaching notebooks without their solution cells, outputs cleared;
* ``--figures DIR``: run the notebooks and save the figures worth a lecture as PNG and SVG;
* ``--grade FILE ...``: run students' notebooks and print every exercise check's verdict;
* ``--time FILE``: run every notebook (with and without CIFAR-10) and write the times as JSON,
  with their Markdown table beside it (docs/teaching.md quotes it).

The notebooks are read from ``--source`` (default: the repository's ``notebooks/`` folder
beside the package).
"""
from __future__ import annotations

from pathlib import Path

from .. import exercises
from ..exercises import editions, times
from ..exercises import run as notebook_run
from ..fsutil import check_writable_dir
from .common import path, positive_int, say

#: the repository's notebooks folder, beside the package (an editable install or a clone)
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "notebooks"


def add(subparsers):
    p = subparsers.add_parser(
        "notebooks", help="student edition, lecture figures (PNG, SVG), grading",
        description="Work with the teaching notebooks. --student DIR writes them without the "
                    "solution cells and with outputs cleared; run top to bottom, every "
                    "exercise check then reports 'not done yet'. --figures DIR runs them and "
                    "saves the figures worth showing in a lecture as PNG and SVG (needs "
                    "nbclient and ipykernel; a few minutes on a laptop CPU). --grade FILE ... "
                    "runs students' notebooks and prints each exercise's verdict: right, "
                    "wrong, not done, error or not run. --time FILE runs every notebook, "
                    "with CIFAR-10 and without (the notebooks then fall back to the "
                    "digits), and writes the times as JSON and a Markdown table.")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--student", type=path, metavar="DIR",
                        help="write the student edition of every notebook into DIR")
    action.add_argument("--figures", type=path, metavar="DIR",
                        help="run the notebooks and write their lecture figures into DIR")
    action.add_argument("--grade", type=path, nargs="+", metavar="FILE",
                        help="run these notebooks and print every exercise check's verdict")
    action.add_argument("--time", type=path, metavar="FILE",
                        help="run every notebook, with CIFAR-10 and without, and write the "
                             "times to FILE (JSON) and its table to FILE with .md")
    p.add_argument("--source", type=path, default=DEFAULT_SOURCE, metavar="DIR",
                   help="the notebooks folder (default: the repository's notebooks/)")
    p.add_argument("--only", nargs="+", metavar="NN", default=None,
                   help="with --figures: only the notebooks whose names start with these "
                        "prefixes, e.g. --only 01 03")
    p.add_argument("--timeout", type=positive_int, default=600,
                   help="seconds a cell may run when notebooks are run (default 600)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.grade is None and not Path(args.source).is_dir():
        raise ValueError(f"--source: {args.source} is not a folder (the notebooks come with the "
                         "repository; pass --source DIR)")
    if args.only is not None and args.figures is None:
        raise ValueError("--only applies to --figures")
    if args.student is not None:
        check_writable_dir(args.student, "--student")
        written = editions.write_student_edition(args.source, args.student)
        say(f"wrote the student edition of {len(written)} notebooks into {args.student} "
            "(solutions left out, outputs cleared)")
        return 0
    if args.time is not None:
        if args.time.suffix != ".json":
            raise ValueError(f"--time: expected a .json file name, got {args.time}")
        check_writable_dir(args.time.parent, "--time")
        result = times.measure_notebooks(args.source, args.timeout, progress=say)
        written = times.write_times(result, args.time)
        say(f"wrote {written[0]} and {written[1]}")
        return 0
    if args.figures is not None:
        files = editions.notebook_files(args.source)
        if args.only is not None:
            files = [f for f in files if f.name.startswith(tuple(args.only))]
            if not files:
                raise ValueError(f"--only {' '.join(args.only)} matches no notebook in "
                                 f"{args.source}")
        check_writable_dir(args.figures, "--figures")
        total = 0
        for f in files:
            written = notebook_run.export_figures(f, args.figures, args.timeout)
            total += len(written)
            say(f"{f.name}: {len(written) // 2} figures")
        say(f"wrote {total} files into {args.figures}")
        return 0
    return grade(args)


def grade(args) -> int:
    """Print one line per exercise of every notebook: notebook, exercise, status, verdict."""
    for f in args.grade:
        if not Path(f).is_file():
            raise ValueError(f"--grade: {f} is not a file")
        editions.read_notebook(f)  # a clear error before a kernel starts
    for f in args.grade:
        results = notebook_run.grade(f, exercises.CHECKS, args.timeout)
        if not results:
            say(f"{f}\t-\tno exercise checks in this notebook")
        for name, (status, line) in results.items():
            say(f"{f}\t{name}\t{status}\t{line}")
    return 0
