"""One test suite for both backends.

``pytest`` runs every test that takes the ``backend`` (or ``xp``) fixture on NumPy;
``pytest --backend cupy`` runs the same tests on CuPy (a GPU), ``--backend all`` on both.
Tests that do not take the fixture are backend-independent (parsing, CLI, ...). Without CuPy
(or without a GPU) ``--backend cupy`` and ``--backend all`` stop before any test, with one line.
"""
import importlib.util

import pytest

from penaltyprop.backend import get_backend


def pytest_addoption(parser):
    parser.addoption("--backend", default="numpy", choices=["numpy", "cupy", "all"],
                     help="array backend for the tests that take the `backend`/`xp` fixture")


def pytest_configure(config):
    """Stop at once, with one line, where ``--backend cupy``/``all`` cannot run."""
    choice = config.getoption("--backend")
    if choice in ("cupy", "all"):
        problem = cupy_problem()
        if problem is not None:
            raise pytest.UsageError(f"--backend {choice}: {problem}; run without --backend to "
                                    f"test on NumPy")


def cupy_problem():
    """Why the CuPy backend cannot run here (a few words), or None when it can."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (it needs an NVIDIA GPU; pip install cupy-cuda12x)"
    try:
        cupy = get_backend("cupy")
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # a broken CuPy install, a CUDA driver or runtime error
        return f"CuPy cannot reach a GPU ({type(err).__name__}: {' '.join(str(err).split())})"
    return None if devices else "CuPy finds no GPU"


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--backend")
        names = ["numpy", "cupy"] if choice == "all" else [choice]
        metafunc.parametrize("backend", names, scope="session")


@pytest.fixture
def xp(backend):
    """The array namespace of the selected backend."""
    return get_backend(backend)


@pytest.fixture(params=[1, 10**9], ids=["one-row-blocks", "one-block"])
def block_bytes(request, monkeypatch):
    """The convolutions' fast paths with tiny blocks (one output row each, a short last block)
    and with one block of all rows."""
    from penaltyprop import patches

    monkeypatch.setattr(patches, "BLOCK_BYTES", request.param)
    return request.param
