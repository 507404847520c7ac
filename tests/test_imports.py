"""Only the backend package, penaltyprop/backend/, may import an array library (DESIGN.md, decision 6).

Every other module takes its namespace from the backend, so that the same code runs on
NumPy and CuPy. This test parses every module and fails on a direct ``import numpy`` /
``cupy`` / ``cupyx`` / ``scipy`` in any file outside ``penaltyprop/backend/``.
"""
import ast
from pathlib import Path

import penaltyprop

FORBIDDEN = {"numpy", "cupy", "cupyx", "scipy"}
PACKAGE = Path(penaltyprop.__file__).parent
BACKEND = PACKAGE / "backend"  # the one package allowed to import them


def _imported_roots(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def _exempt(path):
    """Whether ``path`` lies under penaltyprop/backend/ (the backend package's own files)."""
    return BACKEND in path.parents


def test_only_backend_imports_array_libraries():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _exempt(path):
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


def test_exactly_the_backend_package_is_exempt():
    """The exemption covers the files under penaltyprop/backend/ and nothing else: not a
    module beside it whose name starts with "backend", nor the package's parent."""
    assert BACKEND.is_dir() and not (PACKAGE / "backend.py").exists()
    assert all(_exempt(p) for p in BACKEND.rglob("*.py"))
    assert _exempt(BACKEND / "linalg.py") and _exempt(BACKEND / "sub" / "deep.py")
    for outside in (PACKAGE / "backend.py", PACKAGE / "backend_extra.py", PACKAGE / "prox.py",
                    PACKAGE / "experiments" / "backend.py", PACKAGE / "__init__.py"):
        assert not _exempt(outside), outside
