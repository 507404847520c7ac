"""The table of the package's methods in docs/architecture.md, rendered from the registry.

docs/architecture.md holds :func:`render_methods_table`'s output between the lines
``<!-- generated: methods -->`` and ``<!-- end generated -->``; a test fails when the two
differ. After adding or changing a method, write the new table there::

    python -c "from penaltyprop.methods.table import update; update('docs/architecture.md')"
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from .base import METHODS, LiftedMethod, Method, OracleMethod
from .settings import method_settings

BEGIN, END = "<!-- generated: methods -->", "<!-- end generated -->"


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def summary(cls) -> str:
    """What the method is, in one line, math as code: the first line of its module's docstring
    for a method of the package (one module per method), else of its class docstring."""
    module = sys.modules.get(cls.__module__) if cls.__module__.startswith("penaltyprop.") else None
    doc = (getattr(module, "__doc__", None) or cls.__doc__ or "").strip().split("\n")[0]
    return re.sub(r":math:`([^`]*)`", r"`\1`", doc).replace("``", "`")


def _row(cls) -> list:
    settings = ", ".join(f"`{name}` ({_value(default)})" if default is not None else f"`{name}`"
                         for name, default, _, _ in method_settings(cls)) or "none"
    run = cls.family_run()
    if cls.kind == "lifted":
        family = "full-batch sweeps"
        counted = cls.sweep_flops is not LiftedMethod.sweep_flops
    else:
        family = f"{run.method.label}: {run.optimizer}, tau {_value(run.tau)}"
        counted = cls.extra_flops is not OracleMethod.extra_flops
    traced = cls.penalty_sweep is not Method.penalty_sweep
    return [f"`{cls.name}`", f"`{cls.__name__}`", cls.kind, summary(cls), settings,
            str(cls.networks), family,
            "yes" if counted else "no floor", "yes" if traced else "no"]


def render_methods_table(methods=None) -> str:
    """The Markdown table of ``methods`` (default: the package's registered method classes,
    in registry order): name, class, kind, what it is, settings with their defaults, the
    networks it trains, its family-comparison run, whether it states its flops, whether
    ``pp.penalty_steps`` traces it."""
    if methods is None:
        methods = [cls for cls in METHODS.values() if cls.__module__.startswith("penaltyprop.")]
    header = ["`--method`", "class", "kind", "what it is", "settings (default)", "networks",
              "family run", "flop count", "traced"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_row(cls)) + " |" for cls in methods]
    return "\n".join(lines) + "\n"


def replace_generated(text, content) -> str:
    """``text`` with what stands between :data:`BEGIN` and :data:`END` replaced by ``content``
    (ValueError when the markers are missing)."""
    pattern = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"the text has no {BEGIN} ... {END} block")
    return pattern.sub(lambda m: f"{BEGIN}\n{content}{END}", text, count=1)


def generated(text) -> str:
    """What stands between the markers of ``text`` (ValueError when they are missing)."""
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    if match is None:
        raise ValueError(f"the text has no {BEGIN} ... {END} block")
    return match.group(1)


def update(path):
    """Write the current table into the markdown file ``path`` between its markers."""
    path = Path(path)
    path.write_text(replace_generated(path.read_text(), render_methods_table()))
