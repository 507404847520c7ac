"""Every plot of penaltyprop: training histories, and the figures of the paper's experiments.

* :func:`figure_histories` / :func:`save_histories_plot`: the ``demo`` and ``train``
  commands' three panels (full-batch training loss per epoch, log scale; the same loss
  against cumulative training time; validation accuracy per epoch);
* :func:`curve_panels`: Figs. 2 and 3 of the experiments, one panel per pair of history keys;
* :func:`table1_figure`: Table 1 drawn as final loss against the step size tau;
* :func:`spectra_figure`: the eigenvalues of Section 4.1 (conditioning);
* :func:`residuals_figure`: the lifted methods' objective and constraint residuals per sweep
  (the family comparison).

Figures are drawn with matplotlib's object-oriented API (``matplotlib.figure.Figure``,
never pyplot) on an Agg canvas, so saving a PNG needs no display, selects no GUI backend and
never switches the backend of an interactive session (a notebook keeps its own). This is the
only module of the package that imports matplotlib.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from .fsutil import atomic_writer

DPI = 90  # the experiments' figures: keeps every PNG well under 200 KB


def save_figure(fig, path) -> None:
    """Write ``fig`` as a PNG to ``path`` atomically (:func:`penaltyprop.fsutil.atomic_writer`):
    never a half-written image, and a full disk is an error that names ``path``."""
    with atomic_writer(path) as f:
        fig.savefig(f, format="png")


def figure_histories(histories, title=None) -> Figure:
    """A matplotlib Figure with the three panels for several runs.

    Parameters
    ----------
    histories : dict of label -> history
        Histories as returned by :func:`penaltyprop.train.train` (``result.history``).
        A diverged run is drawn up to its last finite epoch and labelled "(diverged)".
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    ax_epoch, ax_time, ax_val = fig.subplots(1, 3)
    for label, h in histories.items():
        name = f"{label} (diverged in epoch {h['diverged_epoch']})" if h.get("diverged") else label
        line, = ax_epoch.plot(h["epoch"], h["train_loss"], label=name)
        ax_time.plot(h["time"], h["train_loss"], color=line.get_color())
        ax_val.plot(h["epoch"], [100 * acc for acc in h["val_acc"]], color=line.get_color())
        if h.get("diverged"):
            ax_epoch.plot(h["epoch"][-1:], h["train_loss"][-1:], "x", color=line.get_color())
    ax_epoch.set(xlabel="epoch", ylabel="full-batch training loss", yscale="log")
    ax_time.set(xlabel="training time [s]", ylabel="full-batch training loss", yscale="log")
    ax_val.set(xlabel="epoch", ylabel="validation accuracy [%]")
    for ax in (ax_epoch, ax_time, ax_val):
        ax.grid(True, alpha=0.3)
    ax_epoch.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def save_histories_plot(histories, path, title=None) -> Path:
    """Draw :func:`figure_histories` and save it as a PNG; returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = figure_histories(histories, title=title)
    FigureCanvasAgg(fig)  # an Agg canvas: no display, no GUI backend
    save_figure(fig, path)
    return path


# --------------------------------------------------------------------------- experiments
def loss_and_accuracy_panels(epoch_label="epoch"):
    """The four panels of Fig. 3 (and of the family's figures) for :func:`curve_panels`: the
    training loss and the validation accuracy, against epochs and against training time."""
    return [("epoch", "train_loss", epoch_label, "full-batch training loss", True),
            ("epoch", "val_acc", epoch_label, "validation accuracy", False),
            ("time", "train_loss", "training time [s]", "full-batch training loss", True),
            ("time", "val_acc", "training time [s]", "validation accuracy", False)]


def curve_panels(records, panels, path, title, ncols=None):
    """One figure of curves: a panel per (x key, y key, x label, y label, log y) entry.

    Parameters
    ----------
    records : list of (label, history) pairs
        Histories of :func:`penaltyprop.train.train`.
    panels : list of (x, y, xlabel, ylabel, logy)
        x and y are keys of a history.
    path : path-like
        Where to write the PNG.
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
            ax.yaxis.set_major_formatter(FormatStrFormatter("%.4g"))  # plain numbers
            low, high = ax.get_ylim()
            # on a narrow range the minor ticks need labels too; across decades they crowd
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%.4g") if high < 10 * low
                                         else NullFormatter())
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def table1_figure(taus, rows, path, title):
    """Final loss against tau (log-log), one line per method; divergence drawn as an x on top.

    ``rows``: [(label, [loss, None (diverged) or a string (not run) per tau])].
    """
    fig = Figure(figsize=(5.2, 3.4), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    finite = [v for _, values in rows for v in values
              if isinstance(v, (int, float)) and math.isfinite(v)]
    top = max(finite) * 3 if finite else 10.0
    for label, values in rows:
        line = ax.plot(taus, [v if isinstance(v, (int, float)) else math.nan for v in values],
                       marker="o", label=label)[0]
        bad = [t for t, v in zip(taus, values) if v is None]
        ax.plot(bad, [top] * len(bad), "x", color=line.get_color(), markersize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step size tau")
    ax.set_ylabel("final full-batch training loss")
    ax.set_title(textwrap.fill(title, 70) + "\n(x at the top: diverged)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


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
    save_figure(fig, path)


def residuals_figure(records, path, title):
    r"""The lifted methods' diagnostics against sweeps: three panels (log scale).

    Panels: the objective per sample (F/N, or the augmented Lagrangian for ADMM), the
    linear residual :math:`(\sum_l\|z_l - \phi(\theta_l, a_{l-1})\|^2)^{1/2}` and the
    nonlinear residual :math:`(\sum_l\|a_l - \sigma(z_l)\|^2)^{1/2}`, both divided by
    :math:`\sqrt N` (per-sample root mean square).

    Parameters
    ----------
    records : list of (label, diagnostics, N)
        ``diagnostics`` is ``history["diagnostics"]`` of a lifted run (one dict per sweep,
        from sweep 0), N its number of samples.
    path : path-like
        Where to write the PNG.
    """
    fig = Figure(figsize=(3.6 * 3, 2.9), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 3)
    labels = ("objective / N", "linear residual / sqrt(N)", "nonlinear residual / sqrt(N)")
    for label, diagnostics, N in records:
        sweeps = [d["sweeps"] for d in diagnostics]
        series = ([d["objective"] / N for d in diagnostics],
                  [math.sqrt(sum(r * r for r in d["residual_z"]) / N) for d in diagnostics],
                  [math.sqrt(sum(r * r for r in d["residual_a"]) / N) for d in diagnostics])
        for ax, ys in zip(axes, series):
            # sweep 0 starts from a forward pass: both residuals are exactly 0 there
            pts = [(s, v) for s, v in zip(sweeps, ys) if v > 0 and math.isfinite(v)]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", markersize=4,
                    label=label)
    for ax, ylabel in zip(axes, labels):
        ax.set_xlabel("sweep")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
