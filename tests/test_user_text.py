"""User-facing text speaks of the package, never of how it was built.

The README, the docs (``docs/**/*.md``, ``data/README.md``), the notebooks (their cells and
text outputs), every command's ``--help``, the scripts in ``benchmarks/`` and the docstrings that
the API reference renders must not mention issue numbers, milestones, work sessions, commit
hashes, development tools, or files a user does not have (the design notes, the paper's Markdown
copy, the development machines' shared folder). Each finding names the file and line.
"""
import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import penaltyprop
import penaltyprop.methods
from penaltyprop.cli import build_parser
from penaltyprop.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]

#: (what it is, pattern); every pattern is matched case-insensitively
FORBIDDEN = [
    ("an issue number", r"\bissues? #?\d+"),
    ("the issue as a document", r"\bthe issue\b"),
    ("a milestone", r"\bmilestones?\b"),
    ("a work session", r"\bsessions? \d+"),
    ("the lead or a helper of development", r"\bthe lead\b|\bhelper session"),
    ("the shared development folder", r"\.\./shared\b|\bshared/(data|reference|paper|family)\b"),
    ("a development machine's path", r"(?<![\w.])/work/"),
    ("the design notes", r"\bDESIGN\.md\b|\bSTYLE\.md\b"),
    ("the paper's Markdown copy", r"proximal-backpropagation\.md"),
    ("the device-machine tooling", r"\bnot drawn\b|\bdevice tool\b|\bdevice machine\b|\brun\(command="),
    ("a commit", r"\bcommit [0-9a-f]{7,40}\b"),
    # a git hash: 7-12 hex digits (short) or 40 (full) with at least one letter and one digit;
    # md5 (32) and sha256 (64) checksums of the data sets are other lengths
    ("a commit hash", r"(?<![\w./-])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)"
                      r"(?:[0-9a-f]{7,12}|[0-9a-f]{40})(?![\w-])"),
]
PATTERNS = [(what, re.compile(pattern, re.IGNORECASE)) for what, pattern in FORBIDDEN]


def findings(text, where):
    """``["where:line: what: 'match'"]`` for every forbidden pattern in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in PATTERNS:
            for match in pattern.finditer(line):
                found.append(f"{where}:{number}: {what}: {match[0]!r}")
    return found


def notebook_text(path):
    """The sources of every cell and the text outputs (not images) of a notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        parts.append("".join(cell.get("source", "")))
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            parts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def _files():
    files = [ROOT / "README.md", ROOT / "data" / "README.md"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    files += sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.sh"))
    skip = {"_build", "_generated", "generated", "tutorials"}  # build outputs and copies
    return [f for f in files if not skip & set(f.relative_to(ROOT).parts)]


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_file_has_no_development_words(path):
    assert findings(path.read_text(encoding="utf-8"), path.relative_to(ROOT)) == []


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_has_no_development_words(path):
    assert findings(notebook_text(path), path.relative_to(ROOT)) == []


def _helps():
    parser = build_parser()
    yield "penaltyprop --help", parser.format_help()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        yield f"penaltyprop {name} --help", command.format_help()


def test_every_help_text_has_no_development_words(capsys):
    found = []
    for where, text in _helps():
        found += findings(text, where)
    for name in METHODS:  # train --method NAME --help shows that method's flags only
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", "--method", name, "--help"])
        found += findings(capsys.readouterr().out, f"penaltyprop train --method {name} --help")
    assert found == []


def _modules():
    yield penaltyprop
    for info in pkgutil.walk_packages(penaltyprop.__path__, "penaltyprop."):
        yield importlib.import_module(info.name)


def test_docstrings_have_no_development_words():
    """The API reference renders module, class and function docstrings."""
    found = []
    for module in _modules():
        found += findings(module.__doc__ or "", f"{module.__name__} (module docstring)")
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or name.startswith("_"):
                continue
            found += findings(getattr(obj, "__doc__", None) or "", f"{module.__name__}.{name}")
            for attr, member in vars(obj).items() if isinstance(obj, type) else ():
                doc = getattr(member, "__doc__", None) if not attr.startswith("_") else None
                if isinstance(doc, str) and callable(member) or isinstance(member, property):
                    found += findings(doc or "", f"{module.__name__}.{name}.{attr}")
    assert found == []


@pytest.mark.parametrize("text, what", [
    ("the targets of issue 7", "an issue number"), ("issues 12 and 16", "an issue number"),
    ("milestone 2, session 1", "a milestone"), ("at commit 6dbc8e5", "a commit"),
    ("see DESIGN.md", "the design notes"), ("../shared/data/mnist.csv", "the shared development folder"),
    ("status said 'not drawn'", "the device-machine tooling"),
    ("run(command=\"bash x\", carry=[])", "the device-machine tooling"),
    ("reverted 45f1449 later", "a commit hash"),
])
def test_the_word_list_catches_what_it_should(text, what):
    assert any(f": {what}: " in f for f in findings(text, "x")), findings(text, "x")


@pytest.mark.parametrize("text", [
    "sha256 c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",  # a checksum
    "md5 f68b3c2dcbeaaa9fbdd348bbdeb94873", "1e-15 and 0.0375136167", "see Section 5.1",
    "a session of training", "tests/test_prop4_descent.py",
])
def test_the_word_list_leaves_ordinary_text_alone(text):
    assert findings(text, "x") == []


def test_the_api_reference_lists_every_public_name():
    """docs/api/index.rst names every public name of penaltyprop and penaltyprop.methods; the
    training methods come from the registry when the site is built (docs/conf.py), so a method
    added in a new file needs no edit there."""
    text = (ROOT / "docs" / "api" / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   ([\w.]+)\s*$", text, flags=re.M))
    generated = {cls.__name__ for cls in METHODS.values()} | {"METHODS", "make_method"}
    assert "training_methods" in text
    missing = [n for n in penaltyprop.__all__ if n not in listed | generated]
    missing += [f"methods.{n}" for n in penaltyprop.methods.__all__
                if n not in generated and f"methods.{n}" not in listed and n not in listed]
    assert missing == []
