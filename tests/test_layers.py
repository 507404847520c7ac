"""The package stands in layers and its imports only point down (DESIGN.md, "Layers").

1 backend -> 2 the network -> 3 the energy and its solvers -> 4 the methods -> 5 training
-> 6 tools. A module may import from its own layer or from layers below, never from above, and
never a name starting with ``_`` from another module. docs/architecture.md draws the same map.
"""
import ast
from pathlib import Path

import pytest

import penaltyprop

PACKAGE = Path(penaltyprop.__file__).parent

#: module (dotted, relative to the package; a package name covers its submodules) -> layer
LAYERS = {
    "backend": 1, "version": 1,
    "nonlinearities": 2, "losses": 2, "transfer": 2, "conv": 2, "patches": 2, "pooling": 2,
    "network": 2,
    "forward": 2, "checks": 2, "model_spec": 2,
    "penalty": 3, "cg": 3, "authors_cg": 3, "prox": 3,
    "algorithms": 4, "methods": 4, "trace": 4,
    "optim": 5, "checkpoint": 5, "history": 5, "train": 5, "runconfig": 5, "data": 5,
    "runlock": 5, "fsutil": 5, "memory": 5,
    "experiments": 6, "bench": 6, "plotting": 6, "cli": 6, "commands": 6, "__main__": 6,
    "exercises": 6,
}


def layer_of(module):
    """The layer of a dotted module name like ``methods.proxprop`` (None: not mapped)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    return None


def module_name(path):
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path, module):
    """(imported module, imported names, line) for every package-internal import of a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("penaltyprop"):
                target = node.module.partition(".")[2]
            else:
                continue
            names = [a.name for a in node.names]
            if not node.module and node.level:  # "from . import x": x is a module
                for name in names:
                    yield ".".join(base + [name]), [], node.lineno
            else:
                yield target, names, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("penaltyprop."):
                    yield alias.name.partition(".")[2], [], node.lineno


def violations(files):
    found = []
    for path in files:
        module = module_name(path)
        if module == "":  # the package's __init__ hands every public name on
            continue
        own = layer_of(module)
        if own is None:
            found.append(f"{module}: not placed in a layer (add it to LAYERS and docs/architecture.md)")
            continue
        for target, names, line in imports_of(path, module):
            their = layer_of(target)
            if their is not None and their > own:
                found.append(f"{module}:{line} (layer {own}) imports {target} (layer {their})")
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if private and target != module:
                found.append(f"{module}:{line} imports private {', '.join(private)} from {target}")
    return found


def test_imports_point_down_and_name_nothing_private():
    assert violations(sorted(PACKAGE.rglob("*.py"))) == []


def test_the_check_can_fail(tmp_path, monkeypatch):
    """A solver importing the training loop, or a private name, is reported."""
    fake = tmp_path / "penaltyprop"
    fake.mkdir()
    (fake / "prox.py").write_text("from .train import train\nfrom .cg import _record\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    found = violations([fake / "prox.py"])
    assert any("imports train (layer 5)" in f for f in found)
    assert any("private _record" in f for f in found)


@pytest.mark.parametrize("module,layer", [("methods.bcd", 4), ("backend.linalg", 1),
                                          ("experiments.run", 6), ("prox", 3)])
def test_layer_of_covers_subpackages(module, layer):
    assert layer_of(module) == layer
