r"""The three training experiments: Figure 2, Table 1 and Figure 3 (Sections 5.1-5.3).

Each ``run_*`` trains its configurations through :func:`.runner.run_configs` (so finished
ones are not run again) and returns the rows the report needs; each ``report_*`` writes the
figure and the Markdown table into the output folder. A configuration trained with several
seeds (:mod:`.cells`) is one row or entry: the mean and standard deviation over its seeds; its
curves in the figures are those of its first seed (the base seed when it ran).
"""
from __future__ import annotations

from ..conv import cnn
from ..fsutil import atomic_write_text
from ..methods import BackProp, ProxProp
from ..network import mlp
from ..optim import make_optimizer
from ..plotting import curve_panels, loss_and_accuracy_panels, table1_figure
from .cells import fmt_spread, group_by_cell, is_spread, spread
from .report import fmt_loss, fmt_pct, markdown_table
from .runner import Config, run_configs
from .settings import TABLE1_TAUS

# The paper's numbers, copied from its text (Sections 5.1-5.3) and Table 1.
PAPER_FIGURE2 = {"BackProp": {"test_acc": 0.54}, "ProxProp": {"test_acc": 0.56}}  # "approx."
PAPER_FIGURE3 = {"BackProp": {"best_val_acc": 0.717, "test_acc": 0.696},
                 "ProxProp": {"best_val_acc": 0.729, "test_acc": 0.707}}
PAPER_TABLE1 = {  # full-batch training loss after 50 epochs; None = diverged ("-")
    "BackProp": [None, None, None, None, None, 0.524, 0.091, 0.637, 1.531],
    "ProxProp (cg1)": [77.9, 0.079, 0.145, 0.667, 0.991, 1.481, 1.593, 1.881, 2.184],
    "ProxProp (cg3)": [94.7, 0.644, 0.031, 2e-3, 0.012, 1.029, 1.334, 1.814, 2.175],
    "ProxProp (cg5)": [66.5, 0.190, 0.027, 3e-4, 2e-3, 0.399, 1.049, 1.765, 2.175],
}


def _mlp(data, scale):
    """The MLP n0 - hidden - n_classes of a scale (the paper's: 3072-4000-1000-4000-10)."""
    return mlp([data.n_features, *scale.hidden, data.n_classes])


def _summary(record):
    """Final loss, accuracies and times of one stored run."""
    h = record["history"]
    return {"method": record["method"], "diverged": h["diverged"],
            "final_train_loss": None if h["diverged"] else h["train_loss"][-1],
            "final_val_acc": h["val_acc"][-1], "best_val_acc": max(h["val_acc"][1:] or [None]),
            "test_acc": h["test_acc"], "train_time_s": h["time"][-1], "wall_s": record["wall_s"]}


def runs_by_cell(store):
    """``{configuration key: [record, ...]}``: each configuration's runs over seeds, the base
    seed's first, then by seed."""
    base = store.data["settings"].get("seed", 0)
    return {key: [seeds[s] for s in sorted(seeds, key=lambda s: (s != base, s))]
            for key, seeds in group_by_cell(store.data["runs"], base).items()}


def summary_over_seeds(records):
    """:func:`_summary` of one run; over several seeds, each number's :func:`.cells.spread`
    (and ``seeds``, ``diverged``: how many)."""
    if len(records) == 1:
        return _summary(records[0])
    rows = [_summary(r) for r in records]
    out = {"method": rows[0]["method"], "seeds": len(rows),
           "diverged": sum(bool(r["diverged"]) for r in rows)}
    for name in ("final_train_loss", "final_val_acc", "best_val_acc", "test_acc",
                 "train_time_s", "wall_s"):
        out[name] = spread([r[name] for r in rows])
    return out


def _fmt(value, fmt):
    """One table entry: ``fmt(value)``, or mean ± sd for a value over seeds."""
    return fmt_spread(value, fmt) if is_spread(value) else fmt(value)


def _summaries(store, keys):
    """:func:`summary_over_seeds` of each of ``keys`` that has run."""
    cells = runs_by_cell(store)
    return [summary_over_seeds(cells[k]) for k in keys if k in cells]


def _curves(store):
    """``[(label, history)]`` for the figures: one per configuration, its first seed's."""
    return [(records[0]["method"], records[0]["history"]) for records in runs_by_cell(store).values()]


def _seconds(value):
    return f"{value:.0f}"


def _figure_table(store, path, title, paper, row, header):
    """Write the Markdown table of Fig. 2 or 3 to ``path``: one row per configuration,
    ``row(summary, paper's numbers)`` (:func:`summary_over_seeds`; BackProp's numbers of
    ``paper`` for BackProp, ProxProp's for the others), with :data:`SPREAD_NOTE` when a
    configuration ran with several seeds; returns the table."""
    cells = runs_by_cell(store).values()
    rows = []
    for records in cells:
        s = summary_over_seeds(records)
        rows.append(row(s, paper["BackProp" if s["method"] == "BackProp" else "ProxProp"]))
    table = markdown_table(header, rows)
    table += "\n" + SPREAD_NOTE if any(len(records) > 1 for records in cells) else ""
    atomic_write_text(path, f"### {title}\n\n{table}")
    return table


SPREAD_NOTE = ("Over several seeds: mean ± standard deviation; (k/n -): k of n seeds diverged "
               "and are not in the mean.\n")


# --------------------------------------------------------------------------- Figure 2
def prox_cg(k, tau_theta, cg_variant):
    """ProxProp with k CG iterations per prox (Section 4.2.2) of the given variant."""
    return ProxProp(tau_theta=tau_theta, solver="cg", cg_iterations=k, cg_variant=cg_variant)


def figure2_runs(cg_variant):
    """Section 5.1: [(method, tau)]: BackProp (tau = 0.05) and ProxProp exact, cg3/5/10
    (tau = 1, tau_theta = 0.05)."""
    return [(BackProp(), 0.05), (ProxProp(tau_theta=0.05, solver="exact"), 1.0),
            *((prox_cg(k, 0.05, cg_variant), 1.0) for k in (3, 5, 10))]


def figure2_methods(cg_variant):
    """The methods of Fig. 2 (:func:`figure2_runs` without the step sizes)."""
    return [method for method, _ in figure2_runs(cg_variant)]


def run_figure2(store, data, scale, *, seed, backend, cg_variant, optimizer="nesterov"):
    """Train the five methods of Fig. 2 (resuming); returns one summary dict per method."""
    run_configs(store, [Config(method.key, _mlp(data, scale), make_optimizer(optimizer, tau), method)
                        for method, tau in figure2_runs(cg_variant)],  # Nesterov 0.95, batch 500
                data, scale, seed=seed, backend=backend)
    return _summaries(store, [m.key for m in figure2_methods(cg_variant)])


def report_figure2(store, out, title, *, cg_variant="textbook"):
    """Write figure2.png (3 panels, as Fig. 2) and figure2.md; returns the Markdown table."""
    curve_panels(_curves(store), [("epoch", "train_loss", "epoch", "full-batch training loss",
                                   True),
                                  ("time", "train_loss", "training time [s]",
                                   "full-batch training loss", True),
                                  ("epoch", "val_acc", "epoch", "validation accuracy", False)],
                 out / "figure2.png", title)
    def row(s, paper):
        return [s["method"], _fmt(s["final_train_loss"], fmt_loss),
                _fmt(s["final_val_acc"], fmt_pct), _fmt(s["best_val_acc"], fmt_pct),
                _fmt(s["test_acc"], fmt_pct), f"~{fmt_pct(paper['test_acc'])}",
                _fmt(s["train_time_s"], _seconds)]

    return _figure_table(store, out / "figure2.md", title, PAPER_FIGURE2, row, [
        "method", "final train loss", "final val acc", "best val acc", "test acc",
        "paper test acc", "training time [s]"])


# --------------------------------------------------------------------------- Table 1
def table1_methods(cg_variant):
    """Section 5.2: BackProp and ProxProp cg1/3/5 with tau_theta = 1."""
    return [BackProp(), *(prox_cg(k, 1.0, cg_variant) for k in (1, 3, 5))]


def table1_key(method, tau):
    """The store key of one cell, e.g. ``cg3_tau0.5``."""
    return f"{method.key}_tau{tau:g}"


def table1_keys(cg_variant):
    """The store keys of Table 1's 36 cells, row by row."""
    return [table1_key(method, tau) for method in table1_methods(cg_variant) for tau in TABLE1_TAUS]


def method_keys(methods):
    """``cg_variant -> [key, ...]`` of an experiment whose cells are its methods."""
    return lambda cg_variant: [method.key for method in methods(cg_variant)]


def run_table1(store, data, scale, *, seed, backend, cg_variant, optimizer="nesterov"):
    """Train the 9 x 4 cells of Table 1 (resuming); returns :func:`table1_rows`."""
    run_configs(store, [Config(table1_key(method, tau), _mlp(data, scale),
                               make_optimizer(optimizer, tau), method)
                        for tau in TABLE1_TAUS for method in table1_methods(cg_variant)],
                data, scale, seed=seed, backend=backend)
    return table1_rows(store, cg_variant)


def table1_rows(store, cg_variant):
    """[(label, [final loss, None (diverged) or NOT_RUN per tau])] in Table 1's order; a cell
    run with several seeds holds the :func:`.cells.spread` of its final losses."""
    cells = runs_by_cell(store)
    rows = []
    for method in table1_methods(cg_variant):
        values = []
        for tau in TABLE1_TAUS:
            records = cells.get(table1_key(method, tau))
            values.append(NOT_RUN if records is None else
                          _summary(records[0])["final_train_loss"] if len(records) == 1 else
                          spread([_summary(r)["final_train_loss"] for r in records]))
        rows.append((method.label, values))
    return rows


def _mean(value):
    """A Table 1 entry as one number (the mean over seeds), None or NOT_RUN."""
    return value["mean"] if is_spread(value) else value


#: A Table 1 cell that has not been run (a run of a subset of cells).
NOT_RUN = "not run"


def table1_markdown(rows, mark_best=True):
    """Table 1 as Markdown: ``rows`` of (label, [loss, None or NOT_RUN per tau]); "-" for a
    diverged cell, the row's lowest loss in bold."""
    out = []
    for label, values in rows:
        finite = [_mean(v) for v in values if isinstance(_mean(v), (int, float))]
        best = min(finite) if finite and mark_best else None
        out.append([label] + [NOT_RUN if v == NOT_RUN
                              else f"**{_fmt(v, fmt_loss)}**" if _mean(v) is not None
                              and _mean(v) == best
                              else _fmt(v, fmt_loss) for v in values])
    return markdown_table(["tau"] + [f"{t:g}" for t in TABLE1_TAUS], out)


def report_table1(store, out, title, *, cg_variant="textbook"):
    """Write table1.png (loss against tau) and table1.md (ours, then the paper's)."""
    rows = table1_rows(store, cg_variant)
    table1_figure(list(TABLE1_TAUS), [(label, [_mean(v) for v in values]) for label, values in rows],
                  out / "table1.png", title)
    ours = table1_markdown(rows)
    if any(is_spread(v) for _, values in rows for v in values):
        ours += "\n" + SPREAD_NOTE
    paper = table1_markdown(list(PAPER_TABLE1.items()))
    text = (f"### {title}\n\nOurs (final full-batch training loss; '-' = diverged; "
            f"bold = best tau of the row):\n\n{ours}\nPaper, Table 1 (50 epochs, "
            f"45,000 images):\n\n{paper}")
    atomic_write_text(out / "table1.md", text)
    return text


# --------------------------------------------------------------------------- Figure 3
def figure3_methods(cg_variant):
    """Section 5.3: Adam (tau = 1e-3) with BackProp and ProxProp cg3/cg10 (tau_theta = 1)."""
    return [BackProp(), prox_cg(3, 1.0, cg_variant), prox_cg(10, 1.0, cg_variant)]


#: The CNNs Fig. 3 can train: the paper's text (three pooled conv blocks, FC 320 -> 10) and
#: the authors' released code (the last block unpooled, FC 1280 -> 10).
FIGURE3_MODELS = ("cnn", "cnn-authors")


def run_figure3(store, data, scale, *, seed, backend, cg_variant, optimizer="adam", model="cnn"):
    """Train the three methods of Fig. 3 on the CNN (resuming); one summary per method."""
    net = cnn(in_shape=tuple(data.image_shape), channels=scale.channels, n_classes=data.n_classes,
              pool_last=model == "cnn")
    run_configs(store, [Config(method.key, net, make_optimizer(optimizer, 1e-3), method)
                        for method in figure3_methods(cg_variant)],
                data, scale, seed=seed, backend=backend)
    return _summaries(store, [m.key for m in figure3_methods(cg_variant)])


def report_figure3(store, out, title, *, cg_variant="textbook"):
    """Write figure3.png (4 panels: loss and val acc per epoch and per second), figure3.md."""
    curve_panels(_curves(store), loss_and_accuracy_panels(), out / "figure3.png", title, ncols=4)
    def row(s, paper):
        return [s["method"], _fmt(s["final_train_loss"], fmt_loss),
                _fmt(s["best_val_acc"], fmt_pct), fmt_pct(paper["best_val_acc"]),
                _fmt(s["test_acc"], fmt_pct), fmt_pct(paper["test_acc"]),
                _fmt(s["train_time_s"], _seconds)]

    return _figure_table(store, out / "figure3.md", title, PAPER_FIGURE3, row, [
        "method", "final train loss", "best val acc", "paper best val acc", "test acc",
        "paper test acc", "training time [s]"])
