r"""Table generators for the paper's experiments (docs/reproduction.md, the README).

Each is registered with :func:`~.core.table` and called from a marker
``<!-- generated: NAME ARG ... -->``; the arguments name results files (their stems).
"""
from __future__ import annotations

import re

from ..report import fmt_loss, fmt_pct, markdown_table
from ..settings import SETTINGS, TABLE1_TAUS
from ..training import NOT_RUN, PAPER_FIGURE2, PAPER_FIGURE3, PAPER_TABLE1, table1_markdown
from .core import FORMATS, evaluate, table
from .values import history, median_epoch

FILL_FIELD = r"\{([^{}]+)\}"


def fill(template, results):
    """``template`` with every ``{EXPR}`` replaced by the value expression's text."""
    return re.sub(FILL_FIELD, lambda m: evaluate(m[1], results), template)


# --------------------------------------------------------------------------- Table 1
@table("table1")
def table1(results, stem):
    """Table 1 from a results file: final loss per tau and method, best tau in bold."""
    runs = results[stem]["runs"]
    rows = []
    for method in ("backprop", "cg1", "cg3", "cg5"):
        keys = [f"{method}_tau{tau:g}" for tau in TABLE1_TAUS]
        present = [k for k in keys if k in runs]
        if not present:
            continue
        values = [NOT_RUN if k not in runs else
                  None if runs[k]["history"]["diverged"] else runs[k]["history"]["train_loss"][-1]
                  for k in keys]
        rows.append((runs[present[0]]["method"], values))
    return table1_markdown(rows)


@table("table1-paper")
def table1_paper(results):
    """The paper's Table 1 (50 epochs, 45,000 images), best tau in bold."""
    return table1_markdown(list(PAPER_TABLE1.items()))


# --------------------------------------------------------------------------- Figures 2 and 3
@table("figure")
def figure(results, stem, paper, epochs):
    """One row per run of a Figure 2 or 3 results file.

    ``paper``: ``figure2`` or ``figure3`` (the paper's numbers to show); ``epochs``: the
    epochs whose training loss (and, with more than one, validation accuracy) are shown,
    comma-separated (``4`` or ``1,5,10,15``).
    """
    shown = [int(e) for e in epochs.split(",")]
    after = " / ".join(map(str, shown))
    header = ["method", f"train loss after {after} epochs"]
    if len(shown) > 1:
        header.append(f"val acc after {after} epochs")
    header += ["best val acc", "test acc"]
    header += ["paper: test acc"] if paper == "figure2" else ["paper: best val / test acc"]
    header += ["median epoch [s]", "training time [s]"]
    rows = []
    for key, record in results[stem]["runs"].items():
        h = history(results, stem, key)
        loss = [fmt_loss(None if h["diverged"] else h["train_loss"][e]) for e in shown]
        row = [record["method"], " / ".join(loss)]
        if len(shown) > 1:
            row.append(" / ".join(f"{100 * h['val_acc'][e]:.1f}" for e in shown) + "%")
        row += [fmt_pct(max(h["val_acc"][1:])), f"**{fmt_pct(h['test_acc'])}**"]
        who = "BackProp" if key == "backprop" else "ProxProp"
        if paper == "figure2":
            row.append(f"~{FORMATS['pct0'](PAPER_FIGURE2[who]['test_acc'])}")
        else:
            p = PAPER_FIGURE3[who]
            row.append(f"{fmt_pct(p['best_val_acc'])} / {fmt_pct(p['test_acc'])}")
        row += [f"{median_epoch(h):.1f}", f"{h['time'][-1]:.0f}"]
        rows.append(row)
    return markdown_table(header, rows)


# --------------------------------------------------------------------------- Section 4.1
@table("conditioning")
def conditioning(results, *stems):
    """The spectra of X X^T and a_l a_l^T from conditioning results files, and the paper's."""
    rows = [["paper: X X^T", "not stated", "6.7e6", "", "", "", "~1e7"]]
    for stem in stems:
        scale = results[stem]["settings"]["scale"]
        for name, r in results[stem]["runs"].items():
            nonzero = r["dim"] - r["n_zero"]
            rows.append([f"ours ({scale}): {name}", f"{r['n_images']:,}", FORMATS["g3"](r["largest"]),
                         f"{r['largest'] / r['n_images']:.0f}", FORMATS["g2"](r["smallest"]),
                         f"{r['n_zero']} of {r['dim']}",
                         "-" if not nonzero else FORMATS["g2"](r["ratio"])])
    return markdown_table(["matrix", "images N", "largest", "largest / N", "smallest",
                           "numerically zero", "largest / smallest non-zero"], rows)


# --------------------------------------------------------------------------- scales
def _describe(scale, name):
    images = "45,000" if scale.n_train is None else f"{scale.n_train:,}"
    text = f"{images} training images"
    if name != "conditioning":
        text += f", {scale.epochs} epochs, batch {scale.batch_size}"
    if name in ("figure2", "table1", "conditioning"):
        text += ", MLP " + "-".join(map(str, (3072, *scale.hidden, 10)))
    return text


@table("scales")
def scales(results):
    """What each scale of each paper experiment sets (from the experiments' settings)."""
    rows = []
    for name, by_scale in SETTINGS.items():
        cells = [_describe(by_scale[s], name) if s in by_scale else "-"
                 for s in ("paper", "medium", "small")]
        rows.append([name, *cells])
    return markdown_table(["experiment", "`--scale paper`", "`--scale medium`",
                           "`--scale small`"], rows)
