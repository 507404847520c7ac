"""Plots of training histories in the layout of the paper's Figs. 2 and 3.

Three panels: full-batch training loss per epoch (log scale), the same loss against cumulative
training time, and validation accuracy per epoch. Figures are drawn with matplotlib's
object-oriented API on an Agg canvas, so saving a PNG needs no display and never switches
the backend of an interactive session (a notebook keeps its own).
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure_histories(histories, title=None) -> Figure:
    """A matplotlib Figure with the three panels for several runs.

    Parameters
    ----------
    histories : dict of label -> history
        Histories as returned by :func:`penaltyprop.train.train` (``result.history``).
        A diverged run is drawn up to its last finite epoch and labelled "(diverged)".
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
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
    FigureCanvasAgg(fig).print_png(str(path))
    return path
