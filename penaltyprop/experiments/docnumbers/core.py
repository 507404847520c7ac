r"""The machinery: results files, the two kinds of marker, value expressions and formats.

A **value expression** is ``FUNCTION ARG ... | FORMAT``: a function of :data:`VALUES` applied
to the results and the (whitespace-separated) arguments, then a format of :data:`FORMATS`
(default ``str``). For example ``run figure2-paper backprop test_acc | pct`` is the BackProp
run's test accuracy in ``docs/results/figure2-paper.json``, printed as ``54.1%``.

A **generated block** ``<!-- generated: NAME ARG ... -->`` ... ``<!-- end generated -->`` holds
the output of the table generator ``TABLES[NAME](results, ARG, ...)``. An **inline value**
``<!-- v: EXPR -->TEXT<!-- /v -->`` holds the value expression's text. :func:`render` recomputes
both; a document is up to date when rendering leaves it unchanged.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from ..report import fmt_loss

#: name -> ``function(results, *args)`` returning a number, a string or a (low, high) pair
VALUES = {}
#: name -> ``function(results, *args)`` returning Markdown (a table, with its notes)
TABLES = {}

BLOCK = re.compile(r"<!-- generated: (?P<spec>[^>]*?) -->\n(?P<body>.*?)<!-- end generated -->",
                   re.S)
INLINE = re.compile(r"<!-- v: (?P<expr>[^>]*?) -->(?P<text>.*?)<!-- /v -->", re.S)


def value(name):
    """Decorator: register a value function under ``name``."""
    def register(fn):
        VALUES[name] = fn
        return fn
    return register


def table(name):
    """Decorator: register a table generator under ``name``."""
    def register(fn):
        TABLES[name] = fn
        return fn
    return register


class Results:
    """The committed result files, ``results[stem]`` = parsed ``docs/results/STEM.json``."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._cache = {}

    def __getitem__(self, stem):
        if stem not in self._cache:
            path = self.folder / f"{stem}.json"
            if not path.is_file():
                raise ValueError(f"no results file {path}")
            try:
                self._cache[stem] = json.loads(path.read_text())
            except ValueError:
                raise ValueError(f"{path} is not JSON (corrupt or cut short)") from None
        return self._cache[stem]


def _sig(value, digits):
    """``digits`` significant digits, no exponent for 1e-4 <= |value| < 1e6 (3.3e7 beyond)."""
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def _range(pair, digits):
    low, high = pair
    return f"{low:.{digits}f}-{high:.{digits}f}"


#: name -> ``format(value) -> str``
FORMATS = {
    "str": str,
    "pct": lambda v: f"{100 * v:.1f}%",  # 0.541 -> 54.1%
    "pct0": lambda v: f"{100 * v:.0f}%", "pct2": lambda v: f"{100 * v:.2f}%",
    "pts": lambda v: f"{100 * v:.1f}",  # a difference of fractions in percentage points
    "loss": fmt_loss,  # Table 1's style: 77.9, 0.524, 2e-3, 2.5e4, "-"
    "f0": lambda v: f"{v:.0f}", "f1": lambda v: f"{v:.1f}", "f2": lambda v: f"{v:.2f}",
    "f3": lambda v: f"{v:.3f}",
    "g1": lambda v: _sig(v, 1), "g2": lambda v: _sig(v, 2), "g3": lambda v: _sig(v, 3),
    "int": lambda v: f"{v:,.0f}",  # 45000 -> 45,000
    "ms": lambda v: f"{1e3 * v:.0f}",  # seconds -> milliseconds
    "min": lambda v: f"{v / 60:.0f}",  # seconds -> minutes
    "h1": lambda v: f"{v / 3600:.1f}",  # seconds -> hours
    "range0": lambda v: _range(v, 0), "range1": lambda v: _range(v, 1),
    "range2": lambda v: _range(v, 2),
    "lossrange": lambda v: f"{fmt_loss(v[0])} to {fmt_loss(v[1])}",  # (3e-4, 4e-3)
    "pctrange": lambda v: f"{_range([100 * x for x in v], 0)}%",  # (0.29, 0.36) -> 29-36%
    "ptsrange": lambda v: _range([100 * x for x in v], 0),  # points, no % sign
    "ptsrange1": lambda v: _range([100 * x for x in v], 1),
}


def evaluate(expr, results):
    """The text of one value expression (``FUNCTION ARG ... | FORMAT``)."""
    call, _, fmt = expr.partition("|")
    name, *args = call.split()
    fmt = fmt.strip() or "str"
    if name not in VALUES:
        raise ValueError(f"unknown value function {name!r} in {expr!r} (known: "
                         f"{', '.join(sorted(VALUES))})")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} in {expr!r} (known: {', '.join(FORMATS)})")
    result = _call(VALUES[name], results, args, expr)
    if isinstance(result, float) and not math.isfinite(result) and fmt != "loss":
        raise ValueError(f"{expr!r} is not finite")
    return FORMATS[fmt](result)


def _call(fn, results, args, marker):
    """``fn(results, *args)``; a failure (a wrong argument, a missing run or entry) is a
    ValueError naming the marker."""
    try:
        return fn(results, *args)
    except KeyError as err:
        raise ValueError(f"{marker!r}: no entry {err.args[0]!r}") from None
    except (ValueError, IndexError, TypeError) as err:
        raise ValueError(f"{marker!r}: {err}") from None


def render(text, results):
    """``text`` with every generated block and inline value recomputed from ``results``."""
    def block(match):
        name, *args = match["spec"].split()
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r} (known: {', '.join(sorted(TABLES))})")
        body = _call(TABLES[name], results, args, match["spec"]).rstrip("\n") + "\n"
        return f"<!-- generated: {match['spec']} -->\n{body}<!-- end generated -->"

    def inline(match):
        return f"<!-- v: {match['expr']} -->{evaluate(match['expr'], results)}<!-- /v -->"

    return INLINE.sub(inline, BLOCK.sub(block, text))


def count_markers(text):
    """``(generated blocks, inline values)`` in a Markdown text."""
    return len(BLOCK.findall(text)), len(INLINE.findall(text))
