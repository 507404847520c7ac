"""Only penaltyprop/backend.py may import an array library (DESIGN.md, decision 6).

Every other module takes its namespace from the backend shim, so that the same
code runs on NumPy and CuPy. This test parses every module and fails on a direct
``import numpy`` / ``cupy`` / ``cupyx`` / ``scipy`` anywhere else.
"""
import ast
from pathlib import Path

import penaltyprop

FORBIDDEN = {"numpy", "cupy", "cupyx", "scipy"}
PACKAGE = Path(penaltyprop.__file__).parent


def _imported_roots(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def test_only_backend_imports_array_libraries():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "backend.py" and path.parent == PACKAGE:
            continue
        for root, line in _imported_roots(path):
            if root in FORBIDDEN:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {root}")
    assert offenders == []


def test_the_check_can_fail(tmp_path):
    """The scanner itself finds a direct import (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom scipy import linalg\nfrom .backend import numpy\n")
    assert sorted(r for r, _ in _imported_roots(bad)) == ["numpy", "scipy"]
