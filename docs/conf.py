"""Sphinx configuration of the penaltyprop documentation site.

Build (from the repository root; the docs' requirements are the ``docs`` extra)::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

Before Sphinx reads anything, this file writes the pages that come from elsewhere into
``docs/_generated/`` and ``docs/tutorials/`` (both git-ignored): the six notebooks (copied
from ``notebooks/``), the equation-to-code table (from README.md, with its file:name cells
turned into links to the API reference) and the ``--help`` of every command. The notebooks
are executed at build time through myst-nb's cache (jupyter-cache in ``docs/_build/.jupyter_cache``):
a notebook is only run again when its code cells change.
"""
from __future__ import annotations

import filecmp
import importlib
import inspect
import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package of this checkout, not an installed one
# the notebook kernels run in child processes: they must import the same package
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("MPLBACKEND", "Agg")

import penaltyprop  # noqa: E402

project = "penaltyprop"
author = "the penaltyprop authors"
copyright = "penaltyprop authors, MIT licence"
release = version = penaltyprop.__version__

extensions = [
    "myst_nb",                   # Markdown pages and notebooks (includes myst_parser)
    "numpydoc",                  # the numpydoc docstring sections
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",    # one page per public name
    "sphinx.ext.viewcode",       # highlighted source, linked from every API page
    "sphinx.ext.mathjax",
]

# ------------------------------------------------------------------ sources
exclude_patterns = ["_build", "_generated", "results/*.md", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
suppress_warnings = ["myst.header"]  # pages start at "##" below their title in places: allowed
nitpicky = True  # every reference must resolve
nitpick_ignore_regex = [
    # numpydoc writes the types of parameters as references when they are single names;
    # these are words and shapes, not objects
    ("py:class", r"(optional|default.*|array|array-like|path-like|callable|int|float|str|bool"
                 r"|tuple|list|dict|None|sequence|iterable|module|ndarray|object)"),
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# ------------------------------------------------------------------ notebooks (myst-nb)
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a failing notebook fails the build
nb_execution_show_tb = True
nb_merge_streams = True

# ------------------------------------------------------------------ API reference
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"show-inheritance": True}  # the templates say :members:
autodoc_typehints = "none"        # the numpydoc Parameters section says the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
templates_path = ["_templates"]

# ------------------------------------------------------------------ HTML
html_theme = "pydata_sphinx_theme"
html_title = f"penaltyprop {release}"
html_static_path = ["_static"]
html_css_files = ["penaltyprop.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_show_sourcelink = False
html_last_updated_fmt = None
# MathJax comes from its CDN unless PENALTYPROP_DOCS_MATHJAX names a local copy (a file path
# or URL of tex-chtml.js), for reading the site on a machine without internet.
if os.environ.get("PENALTYPROP_DOCS_MATHJAX"):
    mathjax_path = os.environ["PENALTYPROP_DOCS_MATHJAX"]


# ------------------------------------------------------------------ generated pages
def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (Sphinx rebuilds what has a new mtime)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def copy_notebooks() -> None:
    """notebooks/*.ipynb -> docs/tutorials/ (unchanged files keep their mtime)."""
    target = DOCS / "tutorials"
    target.mkdir(exist_ok=True)
    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        copy = target / source.name
        if not copy.is_file() or not filecmp.cmp(source, copy, shallow=False):
            shutil.copyfile(source, copy)


#: README's "file.py:name" cells -> the module of penaltyprop that defines the name
_CELL = re.compile(r"`(?P<file>[\w/]+)\.py:(?P<name>[\w.]+)`")


def _link_cell(match) -> str:
    """`prox.py:Prox.update` -> a reference to penaltyprop.prox.Prox.update in the API.

    A name that ``penaltyprop`` exports (``forward.py:loss``) links to its own page,
    ``penaltyprop.loss``; a method without a docstring of its own (``__call__``, ``vjp``)
    links to its class.
    """
    file, name = match["file"], match["name"]
    if file.startswith("tests/"):
        return match[0]  # tests are not part of the site
    module = importlib.import_module("penaltyprop." + file.replace("/", "."))
    head, _, rest = name.partition(".")
    obj = getattr(module, head)
    prefix = "penaltyprop" if getattr(penaltyprop, head, None) is obj and _public(obj) else module.__name__
    target = f"{prefix}.{name}"
    if rest and (rest.startswith("__") or vars(obj).get(rest, None) is not None
                 and not inspect.getdoc(vars(obj)[rest])):
        target = f"{prefix}.{head}"
    return f"{{py:obj}}`{file}.py:{name} <{target}>`"


def equations_page() -> str:
    """The README's table from the paper's equations to the code, as a page with links."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Equations to code", 1)[1].split("\n## ", 1)[0]
    section = _CELL.sub(_link_cell, section)
    return ("# Equations to code\n\n"
            "Every equation of the paper's Sections 3-4 and Appendix B, and where the package "
            "computes it. Each link opens the function's reference page, whose `[source]` link "
            "shows the code.\n" + section)


def cli_page() -> str:
    """The --help of ``penaltyprop`` and of every command, as one page."""
    from penaltyprop.cli import COMMANDS, build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width
    parser = build_parser()
    parts = ["`penaltyprop --help`:\n", "```text", parser.format_help().rstrip(), "```\n"]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for command in COMMANDS:
        name = command.__name__.rsplit(".", 1)[1]
        parts += [f"### `penaltyprop {name}`\n", "```text",
                  sub.choices[name].format_help().rstrip(), "```\n"]
    return "\n".join(parts)


def _public(obj) -> bool:
    """Is ``obj`` one of penaltyprop's top-level names (documented on its own page)?"""
    return any(obj is getattr(penaltyprop, name) for name in penaltyprop.__all__)


def skip_public_members(app, what, name, obj, skip, options):
    """On a module's page, leave out what has its own page as ``penaltyprop.NAME``."""
    if what == "module" and _public(obj):
        return True
    return None


def resolve_short_reference(app, env, node, contnode):
    """Resolve a Python reference that names an object by a shorter or other path.

    Docstrings say ``:func:`patch_gram``` inside their module, or
    ``penaltyprop.network.Network.from_layers`` for what the site documents as
    ``penaltyprop.Network.from_layers``. The reference resolves when exactly one documented
    object ends with the longest such tail of the name; otherwise it stays unresolved (and
    the build fails on it).
    """
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    domain = env.get_domain("py")
    parts = node["reftarget"].lstrip("~.").split(".")
    for k in range(len(parts), 0, -1):
        tail = ".".join(parts[-k:])
        found = {(domain.objects[name].docname, domain.objects[name].node_id): name
                 for name in domain.objects if name == tail or name.endswith("." + tail)}
        if len(found) > 1:  # the same object under its canonical name does not count twice
            return None  # ambiguous: leave it to the warning
        if found:
            (docname, node_id), name = found.popitem()
            return make_refnode(app.builder, node["refdoc"], docname, node_id, contnode, name)
    inherited = _inherited_target(domain, parts)
    if inherited is not None:
        entry = domain.objects[inherited]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode,
                            inherited)
    return None


def _inherited_target(domain, parts):
    """``Conv2d.patches`` -> the documented ``...LinearTransfer.patches`` that it inherits."""
    if len(parts) < 2:
        return None
    cls_name, attr = parts[-2], parts[-1]
    for name, entry in domain.objects.items():
        if entry.objtype != "class" or not name.endswith("." + cls_name):
            continue
        module_name, _, qualname = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), qualname)
        except (ImportError, AttributeError):
            continue
        for base in getattr(cls, "__mro__", ())[1:]:
            if attr in vars(base):
                for candidate in (f"{base.__module__}.{base.__qualname__}.{attr}",):
                    hits = [n for n in domain.objects
                            if n == candidate or n.endswith(f".{base.__qualname__}.{attr}")]
                    if hits:
                        return hits[0]
    return None


def methods_api() -> str:
    """``api/training_methods.rst``: an autosummary of every registered training method, so a
    method defined in a new file of ``penaltyprop/methods/`` gets its API page without an edit
    here (a page of its own: autosummary makes stub pages only for the pages it scans)."""
    from penaltyprop.methods import METHODS

    names = sorted(cls.__name__ for cls in METHODS.values())
    return ("Training methods\n================\n\n"
            "Every registered method (``penaltyprop.methods.METHODS``), and how to make one from "
            "its name.\n\n.. currentmodule:: penaltyprop\n\n"
            ".. autosummary::\n   :toctree: generated\n   :nosignatures:\n\n"
            + "".join(f"   {name}\n" for name in names) + "   METHODS\n   make_method\n")


def setup(app):
    app.connect("autodoc-skip-member", skip_public_members)
    app.connect("missing-reference", resolve_short_reference)


copy_notebooks()
_write_if_changed(DOCS / "_generated" / "equations.md", equations_page())
_write_if_changed(DOCS / "_generated" / "cli_help.md", cli_page())
_write_if_changed(DOCS / "api" / "training_methods.rst", methods_api())
