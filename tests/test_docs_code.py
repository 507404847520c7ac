"""Every command and code block in README.md and docs/*.md runs as written on a fresh clone.

Each fenced ``bash`` or ``python`` block is one test. It runs in its own copy of the repository's
files (what ``git clone`` would give, plus files not yet committed; no data sets, no ``runs/``),
with the package of that copy on ``PYTHONPATH``, Matplotlib's non-interactive backend, no
``PENALTYPROP_DATA_DIR``, and a time limit. A python block runs on its own: it must define what
it uses. A block fails when it exits with a non-zero status.

Two markers, an HTML comment on the line directly above a fence:

* ``<!-- docs-test: skip: REASON -->`` skips the block that follows (it needs CIFAR-10, a GPU,
  internet or hours, or it installs into the running Python); the reason is required;
* ``<!-- docs-test: output -->`` above a ``text`` block: that block must be exactly what the
  executable block before it prints (trailing spaces aside), so that numbers quoted from a
  result file are the numbers in it.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: seconds one block may take (blocks that need more carry a skip marker)
TIMEOUT_S = 300
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\S*)\s*$")  # also MyST's ```{note}
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>skip|output)\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$")


def code_blocks(path):
    """``[(line, lang, code, marker, reason)]`` for every fenced block of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, start = len(fence["indent"]), i
        i += 1
        body = []
        while i < len(lines) and not re.match(r"^ *```\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        marker = MARKER.match(lines[start - 1]) if start else None
        blocks.append((start + 1, fence["lang"], "\n".join(body) + "\n",
                       marker["what"] if marker else None, marker and marker["reason"]))
        i += 1
    return blocks


def _cases():
    cases = []
    for path in DOCUMENTS:
        blocks = code_blocks(path)
        for k, (line, lang, code, marker, reason) in enumerate(blocks):
            name = f"{path.relative_to(ROOT)}:{line}"
            if lang not in ("bash", "python"):
                continue
            expected = None
            if k + 1 < len(blocks) and blocks[k + 1][3] == "output":
                expected = blocks[k + 1][2]
            marks = [pytest.mark.skip(reason=reason)] if marker == "skip" else []
            cases.append(pytest.param(lang, code, expected, id=name, marks=marks))
    return cases


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The repository's files as a fresh clone has them (tracked and not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    target = tmp_path_factory.mktemp("clone") / "penaltyprop"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run_block(lang, code, cwd):
    """Run one block in ``cwd``: ``(exit status, stdout, stderr)``."""
    env = {k: v for k, v in os.environ.items() if k != "PENALTYPROP_DATA_DIR"}
    env.update(PYTHONPATH=str(cwd), MPLBACKEND="Agg", COLUMNS="100",
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    command = ([sys.executable, "-c", code] if lang == "python"
               else ["bash", "-e", "-o", "pipefail", "-c", code])
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout, done.stderr


def _same_text(a, b):
    return [line.rstrip() for line in a.strip("\n").splitlines()] == \
        [line.rstrip() for line in b.strip("\n").splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("lang, code, expected", _cases())
def test_code_block_runs_as_written(lang, code, expected, clone, tmp_path):
    cwd = tmp_path / "penaltyprop"
    shutil.copytree(clone, cwd)  # each block starts from the fresh clone
    status, out, err = run_block(lang, code, cwd)
    assert status == 0, f"exit status {status}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
    if expected is not None:
        assert _same_text(out, expected), f"the output block does not match what it prints:\n{out}"


def test_every_skip_marker_gives_a_reason_and_stands_above_a_fence():
    problems = []
    for path in DOCUMENTS + [ROOT / "data" / "README.md"]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            marker = MARKER.match(line)
            if not marker:
                continue
            if marker["what"] == "skip" and not marker["reason"]:
                problems.append(f"{path.name}:{number}: a skip without a reason")
            if number == len(lines) or not FENCE.match(lines[number]):
                problems.append(f"{path.name}:{number}: the marker is not directly above a fence")
    assert problems == []


def test_the_collector_reads_markers_and_fences(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- docs-test: skip: needs a GPU -->\n```bash\nnvidia-smi\n```\n\n"
                    "```python\nprint(1 + 1)\n```\n\n<!-- docs-test: output -->\n```text\n2\n```\n"
                    "1. item\n\n   ```bash\n   echo indented\n   ```\n```{note}\nA note.\n```\n")
    blocks = code_blocks(page)
    assert [(b[1], b[2], b[3], b[4]) for b in blocks] == [
        ("bash", "nvidia-smi\n", "skip", "needs a GPU"), ("python", "print(1 + 1)\n", None, None),
        ("text", "2\n", "output", None), ("bash", "echo indented\n", None, None),
        ("{note}", "A note.\n", None, None)]
    status, out, _ = run_block("python", blocks[1][2], tmp_path)
    assert status == 0 and _same_text(out, blocks[2][2])
    assert run_block("bash", "false\necho after\n", tmp_path)[0] != 0  # a failing line fails the block
