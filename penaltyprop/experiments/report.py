"""Markdown tables of the experiments, and numbers printed as the paper prints them.

The figures are drawn by :mod:`penaltyprop.plotting`.
"""
from __future__ import annotations

import math


def fmt_loss(value) -> str:
    """A loss as Table 1 prints it: "-" for divergence, 77.9, 0.524, 2e-3."""
    if value is None or not math.isfinite(value):
        return "-"
    if value >= 1e4:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1e-2:
        return f"{value:.3f}"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def markdown_table(header, rows) -> str:
    """A GitHub Markdown table from a header list and rows of strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
