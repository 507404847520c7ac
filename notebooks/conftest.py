"""pytest runs every notebook here (nbmake) with its solutions and with the exercise checks in
strict mode: a check that does not say "right" raises, so a solution that stops passing its
check fails the tests (PENALTYPROP_CHECKS, penaltyprop.exercises.verdict)."""
import os

from penaltyprop.exercises.verdict import STRICT_ENV


def pytest_runtest_setup(item):
    """Before each notebook: the kernel nbmake starts inherits the strict mode."""
    item.saved_strict = os.environ.get(STRICT_ENV)
    os.environ[STRICT_ENV] = "strict"


def pytest_runtest_teardown(item):
    """After it: the environment as it was."""
    if item.saved_strict is None:
        os.environ.pop(STRICT_ENV, None)
    else:
        os.environ[STRICT_ENV] = item.saved_strict
