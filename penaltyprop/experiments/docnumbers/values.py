r"""The value functions of the inline markers and the tables (:data:`.core.VALUES`).

Each takes the :class:`~.core.Results` and string arguments, the first a results file's stem
(``figure2-paper`` for ``docs/results/figure2-paper.json``). Run keys are the experiments'
store keys (``backprop``, ``exact``, ``cg3``, ``cg3_tau0.5``, ``bcd-source``, ...).

**Median epoch time**, everywhere: the median of ``history.epoch_time[1:]``, the training
seconds of epochs 1..E (epoch 0 is the evaluation of the initial parameters and takes no
training time), evaluations excluded.
"""
from __future__ import annotations

import statistics

from ..settings import TABLE1_TAUS
from ..training import PAPER_FIGURE2, PAPER_FIGURE3, PAPER_TABLE1
from .core import value


def _number(text):
    return int(text) if text.lstrip("-").isdigit() else float(text)


def history(results, stem, key):
    """The per-epoch history of run ``key``."""
    runs = results[stem]["runs"]
    if key not in runs:
        raise ValueError(f"{stem}.json has no run {key!r} (it has {', '.join(runs)})")
    return runs[key]["history"]


def median_epoch(h):
    """The median training time of epochs 1..E (see the module docstring)."""
    return statistics.median(h["epoch_time"][1:])


@value("json")
def json_path(results, stem, path):
    """Any entry: ``json STEM a.b.0.c`` (integers index lists)."""
    node = results[stem]
    for part in path.split("."):
        try:
            node = node[_number(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ValueError(f"{stem}.json has no entry {path!r} (stuck at {part!r})") from None
    return node


@value("run")
def run_field(results, stem, key, field, epoch="-1"):
    """A history entry of one run: per-epoch fields at ``epoch`` (default the last, -1),
    ``test_acc`` and other scalars as they are; ``best_val_acc`` is max(val_acc[1:])."""
    h = history(results, stem, key)
    if field == "best_val_acc":
        return max(h["val_acc"][1:])
    entry = h[field]
    return entry[int(epoch)] if isinstance(entry, list) else entry


@value("diff")
def run_diff(results, stem, key, other, field, epoch="-1"):
    """``run`` of ``key`` minus ``run`` of ``other`` (e.g. test accuracies, in points)."""
    return run_field(results, stem, key, field, epoch) - run_field(results, stem, other, field,
                                                                   epoch)


@value("change")
def run_change(results, stem, key, field, first, last):
    """A per-epoch field of one run at epoch ``first`` minus at epoch ``last``."""
    return run_field(results, stem, key, field, first) - run_field(results, stem, key, field, last)


@value("spread")
def spread(results, stem, field, *keys):
    """(min, max) of a field (last epoch, or a scalar) over the runs ``keys``."""
    values = [run_field(results, stem, k, field) for k in keys]
    return min(values), max(values)


@value("diff_spread")
def diff_spread(results, stem, field, base, *keys):
    """(min, max) over ``keys`` of ``run(key) - run(base)`` (e.g. accuracy gains, in points)."""
    values = [run_diff(results, stem, k, base, field) for k in keys]
    return min(values), max(values)


@value("epoch")
def epoch_median(results, stem, key):
    """Median epoch time of a run, seconds (module docstring)."""
    return median_epoch(history(results, stem, key))


@value("epoch_range")
def epoch_range(results, stem, key, first="1", last="-1"):
    """(min, max) training seconds of epochs first..last of a run."""
    times = history(results, stem, key)["epoch_time"]
    stop = len(times) if int(last) == -1 else int(last) + 1
    chosen = times[int(first):stop]
    return min(chosen), max(chosen)


@value("epoch_ratio")
def epoch_ratio(results, stem, key, base="backprop", base_stem=None):
    """Median epoch time of ``key`` over that of ``base`` (in ``base_stem``, default the same)."""
    return epoch_median(results, stem, key) / epoch_median(results, base_stem or stem, base)


@value("training")
def training_seconds(results, stem):
    """Training seconds of all runs of a file together (evaluations excluded)."""
    return sum(r["history"]["time"][-1] for r in results[stem]["runs"].values())


@value("wall")
def wall_seconds(results, stem, *prefixes):
    """Wall seconds of the runs whose keys start with one of ``prefixes`` (default all),
    evaluations included."""
    chosen = [r for k, r in results[stem]["runs"].items() if not prefixes or k.startswith(prefixes)]
    if not chosen or any("wall_s" not in r for r in chosen):
        raise ValueError(f"{stem}.json has no wall time for runs {prefixes or 'all'}")
    return sum(r["wall_s"] for r in chosen)


LABELS = {"backprop": "BackProp", "exact": "exact"}


@value("order")
def order(results, stem, field, epoch, *keys):
    """The runs ``keys`` sorted by a per-epoch field, as ``exact < cg10 < ... < BackProp``.

    ``epoch`` may be a range ``FIRST:`` (every epoch from FIRST on): then the ordering they
    all share, or ``"no common ordering"``.
    """
    if epoch.endswith(":"):
        last = len(history(results, stem, keys[0])[field])
        found = {order(results, stem, field, str(e), *keys) for e in range(int(epoch[:-1]), last)}
        return found.pop() if len(found) == 1 else "no common ordering"
    values = {k: run_field(results, stem, k, field, epoch) for k in keys}
    return " < ".join(LABELS.get(k, k) for k in sorted(keys, key=values.get))


@value("finished")
def finished(results, stem, *keys):
    """Which of the runs ``keys`` a results file holds yet: ``all`` when every one, else
    ``BackProp; not yet cg3, cg10`` (a run is stored when it has finished all its epochs)."""
    runs = results[stem]["runs"]
    done = [LABELS.get(k, k) for k in keys if k in runs]
    missing = [LABELS.get(k, k) for k in keys if k not in runs]
    if not missing:
        return "all"
    return f"{', '.join(done) or 'none'}; not yet {', '.join(missing)}"


@value("best_epoch")
def best_epoch(results, stem, key, field, which="min"):
    """The epoch (1..E) at which a per-epoch field of one run is lowest (``min``) or highest
    (``max``); the first such epoch on a tie."""
    values = history(results, stem, key)[field][1:]
    if which not in ("min", "max"):
        raise ValueError(f"best_epoch takes min or max, got {which!r}")
    return 1 + values.index(min(values) if which == "min" else max(values))


@value("below_from")
def below_from(results, stem, key, other, field="train_loss"):
    """The first epoch from which run ``key``'s field stays below run ``other``'s."""
    mine, theirs = (history(results, stem, k)[field] for k in (key, other))
    first = None
    for e, (u, v) in enumerate(zip(mine, theirs)):
        first = None if u >= v else e if first is None else first
    if first is None:
        raise ValueError(f"{key} does not end below {other} in {stem}")
    return first


# --------------------------------------------------------------------------- Table 1
def table1_row(results, stem, method):
    """[final loss or None (diverged) per tau of Table 1] of one method key (``cg3``)."""
    runs = results[stem]["runs"]
    row = []
    for tau in TABLE1_TAUS:
        h = runs[f"{method}_tau{tau:g}"]["history"]
        row.append(None if h["diverged"] else h["train_loss"][-1])
    return row


@value("cell")
def table1_cell(results, stem, method, tau):
    """Final loss of one Table 1 cell (None: diverged, printed "-" by the ``loss`` format)."""
    return table1_row(results, stem, method)[TABLE1_TAUS.index(float(tau))]


def _best(row):
    finite = [(v, t) for v, t in zip(row, TABLE1_TAUS) if v is not None]
    return min(finite)


@value("diverges_from")
def diverges_from(results, stem, method):
    """The smallest tau of Table 1 from which every larger tau of a row diverged ("none")."""
    found = "none"
    for tau, loss in zip(TABLE1_TAUS, table1_row(results, stem, method)):  # largest tau first
        if loss is not None:
            break
        found = f"{tau:g}"
    return found


@value("trains_up_to")
def trains_up_to(results, stem, method):
    """The largest tau of a Table 1 row whose final loss is finite and below the initial loss
    (``none``)."""
    runs = results[stem]["runs"]
    for tau, loss in zip(TABLE1_TAUS, table1_row(results, stem, method)):
        start = runs[f"{method}_tau{tau:g}"]["history"]["train_loss"][0]
        if loss is not None and loss < start:
            return f"{tau:g}"
    return "none"


@value("best_tau")
def best_tau(results, stem, method):
    """The tau of a Table 1 row's lowest final loss, as ``5`` or ``0.05``."""
    return f"{_best(table1_row(results, stem, method))[1]:g}"


@value("best_loss")
def best_loss(results, stem, method):
    """A Table 1 row's lowest final loss."""
    return _best(table1_row(results, stem, method))[0]


@value("best_ratio")
def best_ratio(results, stem, method, base_stem=None):
    """BackProp's best loss over a row's best loss (BackProp from ``base_stem`` if given)."""
    return best_loss(results, base_stem or stem, "backprop") / best_loss(results, stem, method)


@value("same")
def same(results, function, stem, *methods):
    """The one value a row function (``best_tau``, ``trains_up_to``, ...) takes on every row
    ``methods``: a sentence saying "in every row" fails the check when the rows part."""
    from .core import VALUES

    found = {str(VALUES[function](results, stem, m)) for m in methods}
    if len(found) != 1:
        raise ValueError(f"{function} differs between the rows {methods} of {stem}.json: "
                         f"{sorted(found)}; the sentence claiming one value must change")
    return found.pop()


# --------------------------------------------------------------------------- the paper's
PAPER_ROWS = {"backprop": "BackProp", "cg1": "ProxProp (cg1)", "cg3": "ProxProp (cg3)",
              "cg5": "ProxProp (cg5)"}


@value("paper_table1")
def paper_table1(results, method, tau):
    """The paper's Table 1 cell (None: diverged)."""
    return PAPER_TABLE1[PAPER_ROWS[method]][TABLE1_TAUS.index(float(tau))]


@value("paper")
def paper_number(results, experiment, method, field):
    """The paper's Fig. 2 or Fig. 3 number: ``paper figure3 ProxProp test_acc``."""
    return {"figure2": PAPER_FIGURE2, "figure3": PAPER_FIGURE3}[experiment][method][field]


# --------------------------------------------------------------------------- other files
@value("cond")
def conditioning(results, stem, matrix, field):
    """A conditioning-study entry: ``cond conditioning-paper a_1 ratio`` (matrix ``X`` is
    X X^T, ``a_l`` is a_l a_l^T); field ``per_image`` is largest / N, ``step_limit`` 2 / largest
    (the largest stable gradient step on Eq. 4)."""
    name = "X X^T" if matrix == "X" else f"{matrix} {matrix}^T"
    entry = results[stem]["runs"][name]
    derived = {"per_image": entry["largest"] / entry["n_images"], "step_limit": 2 / entry["largest"]}
    return derived[field] if field in derived else entry[field]


@value("family")
def family_field(results, stem, key, field):
    """A row of a family results file's ``summary`` (``family-small-cifar10 altmin test_acc``)."""
    for row in results[stem]["summary"]:
        if row["key"] == key:
            return row[field]
    raise ValueError(f"{stem}.json has no summary row {key!r}")


@value("family_spread")
def family_spread(results, stem, field, *keys):
    """(min, max) of a family summary field over the rows ``keys``."""
    values = [family_field(results, stem, k, field) for k in keys]
    return min(values), max(values)


def _objectives(results, stem, key):
    diagnostics = history(results, stem, key)["diagnostics"]
    if not diagnostics:
        raise ValueError(f"run {key!r} of {stem}.json has no per-sweep diagnostics")
    return [d["objective"] for d in diagnostics]  # sweep 0 (the start), 1, 2, ...


@value("falls")
def falls(results, stem, key):
    """``"k of n"``: the sweeps after which a lifted method's objective was lower than before."""
    F = _objectives(results, stem, key)
    return f"{sum(b < a for a, b in zip(F, F[1:]))} of {len(F) - 1}"


@value("rises_at")
def rises_at(results, stem, key):
    """The sweeps after which a lifted method's objective was higher than before ("none")."""
    F = _objectives(results, stem, key)
    return ", ".join(str(i) for i in range(1, len(F)) if F[i] > F[i - 1]) or "none"


@value("bench")
def bench_field(results, stem, label, field):
    """A mode of a bench file: ``bench family-bench-bcd-784-300-10-N500 BCD ratio_to_floor``."""
    for mode in results[stem]["modes"]:
        if mode["label"] == label:
            return mode[field]
    raise ValueError(f"{stem}.json has no mode {label!r}")
