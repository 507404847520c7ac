"""The Examples sections of the main docstrings run, and print what they say they print.

The documentation site shows these examples on the API pages; this test runs them as doctests
inside ``python -m pytest``, so an example that no longer matches the code fails CI. Each
named object must have at least one example: deleting an Examples section fails too.
"""
import doctest

import pytest

import penaltyprop as pp

#: the objects whose docstrings carry runnable examples
DOCUMENTED = {
    "forward": pp.forward,
    "penalty_backprop": pp.penalty_backprop,
    "proxprop": pp.proxprop,
    "proxprop_direction": pp.proxprop_direction,
    "ProxProp": pp.ProxProp,
    "BCD": pp.BCD,
    "train": pp.train.train,
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_docstring_examples_run_as_written(name):
    obj = DOCUMENTED[name]
    finder = doctest.DocTestFinder(recurse=False)  # the object's own docstring, not its members
    tests = [t for t in finder.find(obj, name, globs={}) if t.examples]
    assert tests, f"{name}'s docstring has no Examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
