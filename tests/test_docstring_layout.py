"""The docstring sections of the API reference parse as numpydoc means them.

numpydoc reads an entry of a Parameters (Returns, Raises, ...) section as ``name : type`` on one
line and the description, indented, on the lines below. A one-line entry such as
``X : (n0, N) inputs, one sample per column.`` parses as a parameter whose *type* is the whole
sentence and whose description is empty, and the site shows it as a long bold type with no text
under it. This test parses the docstring of every object that the API reference documents
(docs/api/index.rst and the training methods' page that docs/conf.py writes) with
``numpydoc.docscrape`` and names every entry that does not have that layout; then every other
module of the package.
"""
import importlib
import inspect
import pkgutil
import re
import types
from pathlib import Path

import pytest

import penaltyprop
from penaltyprop.methods import METHODS

docscrape = pytest.importorskip("numpydoc.docscrape")

ROOT = Path(__file__).resolve().parents[1]

#: the sections whose entries are ``name : type`` lines with an indented description
SECTIONS = ("Parameters", "Other Parameters", "Attributes", "Returns", "Yields", "Receives",
            "Raises", "Warns")
#: sections whose entries name parameters or attributes (a Returns entry may be a bare type)
NAMED = ("Parameters", "Other Parameters", "Attributes", "Receives")
#: one name or several, separated by commas: ``x``, ``rho, gamma``, ``*args``, ``**kwargs``
NAME = re.compile(r"\*{0,2}[A-Za-z_]\w*(\s*,\s*\*{0,2}[A-Za-z_]\w*)*")
#: a type is a few words (``float > 0``, ``array, shape (n0, N)``), not a sentence
MAX_TYPE = 60


def _autosummary_names(text):
    """The names listed under every ``.. autosummary::`` directive of an rst page."""
    names, inside = [], False
    for line in text.splitlines():
        if line.startswith(".. autosummary::"):
            inside = True
        elif inside and line.strip() and not line.startswith(" "):
            inside = False
        elif inside and line.strip() and not line.strip().startswith(":"):
            names.append(line.strip())
    return names


def _resolve(name):
    """``methods.Method`` -> penaltyprop.methods.Method (a module or an attribute)."""
    try:
        return importlib.import_module(f"penaltyprop.{name}")
    except ImportError:
        pass
    obj = penaltyprop
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _members(cls):
    """What ``autoclass :members:`` shows of a class: its own public documented members."""
    for attr, member in vars(cls).items():
        if attr.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if inspect.isfunction(member) or isinstance(member, property):
            yield f"{cls.__module__}.{cls.__qualname__}.{attr}", member


def _documented(obj, where):
    """``obj`` and what its page shows: a module's own members, a class's own members."""
    if isinstance(obj, types.ModuleType):
        yield f"{obj.__name__} (module docstring)", obj
        for name, member in vars(obj).items():
            if name.startswith("_") or getattr(member, "__module__", None) != obj.__name__:
                continue
            if inspect.isclass(member) or inspect.isfunction(member):
                yield from _documented(member, f"{obj.__name__}.{name}")
        return
    if inspect.isclass(obj):
        yield where, obj
        yield from _members(obj)
    elif callable(obj):
        yield where, obj


def api_objects():
    """Every object whose docstring the API reference renders, by its dotted name."""
    text = (ROOT / "docs" / "api" / "index.rst").read_text(encoding="utf-8")
    names = _autosummary_names(text) + list(penaltyprop.__all__)
    names += [cls.__name__ for cls in METHODS.values()] + ["make_method"]  # api/training_methods
    found = {}
    for name in names:
        for where, obj in _documented(_resolve(name), f"penaltyprop.{name}"):
            found.setdefault(id(obj), (where, obj))
    return sorted(found.values(), key=lambda pair: pair[0])


def offenders(doc, where):
    """``where: section: entry: what is wrong`` for every badly laid-out entry of ``doc``."""
    if not doc:
        return []
    try:
        parsed = docscrape.NumpyDocString(doc)
    except Exception as error:  # a duplicate section, a malformed header
        return [f"{where}: does not parse: {error}"]
    found = []
    for section in SECTIONS:
        for entry in parsed[section]:
            label = f"{where}: {section}: {entry.name or entry.type!r}"
            problems = []
            if not any(line.strip() for line in entry.desc):
                problems.append("no description")
            if " : " in entry.name or " : " in entry.type:
                problems.append("two entries on one line")
            if len(entry.type) > MAX_TYPE:
                problems.append(f"a type of {len(entry.type)} characters")
            if section in NAMED and not NAME.fullmatch(entry.name):
                problems.append("not a name")
            if problems:
                found.append(f"{label}: {', '.join(problems)}")
    return found


def test_the_api_reference_has_objects_to_check():
    names = {where for where, _ in api_objects()}
    assert {"penaltyprop.proxprop", "penaltyprop.train.train", "penaltyprop.ProxProp",
            "penaltyprop.prox (module docstring)"} <= names


def test_every_entry_has_a_short_type_and_a_description():
    found = []
    for where, obj in api_objects():
        found += offenders(inspect.getdoc(obj), where)
    assert not found, f"{len(found)} entries:\n" + "\n".join(found)


def test_every_module_of_the_package_too():
    """The modules the API reference does not list (the command line, the experiments, the
    exercises) are read with ``help()`` and in an editor: the same layout there."""
    found, seen = [], set()
    for info in pkgutil.walk_packages(penaltyprop.__path__, "penaltyprop."):
        module = importlib.import_module(info.name)
        for where, obj in _documented(module, module.__name__):
            if id(obj) not in seen:
                seen.add(id(obj))
                found += offenders(inspect.getdoc(obj), where)
    assert not found, f"{len(found)} entries:\n" + "\n".join(found)


@pytest.mark.parametrize("doc, problem", [
    ("Parameters\n----------\nX : (n0, N) inputs, one sample per column.\n", "no description"),
    ("Parameters\n----------\nX : array\n    Inputs. y : int array\n", None),
    ("Parameters\n----------\nX : (n0, N) inputs. y : (N,) labels.\n", "two entries on one line"),
    ("Returns\n-------\nThe new parameters, a list of L-1 (W, b) pairs, not modified.\n",
     "a type of"),
    ("Raises\n------\nValueError if tau <= 0.\n", "no description"),
    ("Parameters\n----------\nAs proxprop, without tau.\n", "not a name"),
    ("Parameters\n----------\nrho, gamma : float > 0 or None\n    Penalty weights.\n", None),
    ("Returns\n-------\nlist of (W, b) pairs\n    The new parameters.\n", None),
    ("Raises\n------\nValueError\n    If tau <= 0.\n", None),
])
def test_the_check_finds_what_it_should(doc, problem):
    found = offenders(doc, "x")
    if problem is None:
        assert found == []
    else:
        assert any(problem in f for f in found), found
