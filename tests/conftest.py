"""One test suite for both backends.

``pytest`` runs every test that takes the ``backend`` (or ``xp``) fixture on NumPy;
``pytest --backend cupy`` runs the same tests on CuPy (a GPU), ``--backend all`` on both.
Tests that do not take the fixture are backend-independent (parsing, CLI, ...).
"""
import pytest

from penaltyprop.backend import get_backend


def pytest_addoption(parser):
    parser.addoption("--backend", default="numpy", choices=["numpy", "cupy", "all"],
                     help="array backend for the tests that take the `backend`/`xp` fixture")


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
