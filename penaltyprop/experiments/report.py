"""Figures (PNG, laid out like the paper's) and Markdown tables of the experiments.

Plotting uses matplotlib's object interface (``matplotlib.figure.Figure``), never pyplot, so
that it selects no GUI backend and leaves a notebook's settings alone.
"""
from __future__ import annotations

import math
import textwrap

from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter

DPI = 90  # keeps every PNG well under 200 KB


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


def curve_panels(records, panels, path, title, ncols=None):
    """One figure of curves: a panel per (x key, y key, x label, y label, log y) entry.

    Parameters
    ----------
    records : list of (label, history) pairs (histories of :func:`penaltyprop.train.train`).
    panels : list of (x, y, xlabel, ylabel, logy); x and y are keys of a history.
    path : where to write the PNG.
    """
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (x, y, xlabel, ylabel, logy) in zip(axes, panels):
        for label, history in records:
            xs, ys = history[x], history[y]
            if x == "epoch" and y in ("val_acc", "train_acc"):
                xs, ys = xs[1:], ys[1:]  # the paper plots accuracies from epoch 1
            style = "--" if label == "BackProp" else "-"
            ax.plot(xs, ys, style, marker=".", markersize=4, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
            for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                axis(FormatStrFormatter("%.4g"))  # plain numbers, also on a narrow range
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path)


def table1_figure(taus, rows, path, title):
    """Final loss against tau (log-log), one line per method; divergence drawn as an x on top."""
    fig = Figure(figsize=(5.2, 3.4), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    finite = [v for _, values in rows for v in values if v is not None and math.isfinite(v)]
    top = max(finite) * 3 if finite else 10.0
    for label, values in rows:
        line = ax.plot(taus, [v if v is not None else math.nan for v in values], marker="o",
                       label=label)[0]
        bad = [t for t, v in zip(taus, values) if v is None]
        ax.plot(bad, [top] * len(bad), "x", color=line.get_color(), markersize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step size tau")
    ax.set_ylabel("final full-batch training loss")
    ax.set_title(textwrap.fill(title, 70) + "\n(x at the top: diverged)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path)


def spectra_figure(spectra, path, title):
    """Sorted eigenvalues (descending, log scale) of each Gram matrix, index scaled to [0, 1]."""
    fig = Figure(figsize=(5.2, 3.4), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for label, values in spectra:
        n = len(values)
        ax.plot([i / max(n - 1, 1) for i in range(n)], values, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index / dimension (descending)")
    ax.set_ylabel("eigenvalue")
    ax.set_title(textwrap.fill(title, 70), fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path)
