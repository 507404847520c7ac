r"""Table generators for the penalty-training family (docs/family.md, the README)."""
from __future__ import annotations

import re
from types import SimpleNamespace

from ..family import FAMILY_NOTE, family_rows, family_table
from ..report import markdown_table
from ..settings import FAMILY_SETTINGS
from .core import FORMATS, table


@table("family")
def family(results, stem):
    """The family comparison on one data set, recomputed from its runs (with the note)."""
    return family_table(_rows(results[stem])) + FAMILY_NOTE


def _rows(data):
    """:func:`~..family.family_rows` of a family results file (its training set's size read
    from the data set it records)."""
    n_train = int(re.search(r"train=(\d+)", data["settings"]["data"])[1])
    return family_rows(SimpleNamespace(data=data), n_train)


def _data(spec):
    images = "all" if spec.n_train is None else f"{spec.n_train:,}"
    return f"{spec.data} {images}"


@table("family-settings")
def family_settings(results):
    """What each scale of the family comparison sets (from the experiment's settings)."""
    names = ("tiny", "small", "paper")
    scales = [FAMILY_SETTINGS[n] for n in names]
    rows = [["data (training images)", *("; ".join(_data(d) for d in s.datasets) for s in scales)],
            ["MLP hidden widths", *("; ".join(f"{d.data} " + "-".join(map(str, d.hidden))
                                              for d in s.datasets) for s in scales)],
            ["epochs = sweeps", *(str(s.epochs) for s in scales)],
            ["minibatch (oracle methods)", *(str(s.batch_size) for s in scales)]]
    return markdown_table(["", *names], rows)


#: (network, N, results file, [method labels in the bench file]) of the family bench table
FAMILY_BENCH = [
    ("784-300-10", "500", "family-bench-bcd-784-300-10-N500", "BCD"),
    ("", "", "family-bench-admm-784-300-10-N500", "ADMM"),
    ("", "", "family-bench-altmin-784-300-10-N500", "AltMin"),
    ("784-300-10", "3,500", "family-bench-bcd-784-300-10-N3500", "BCD"),
    ("", "", "family-bench-admm-784-300-10-N3500", "ADMM"),
    ("", "", "family-bench-altmin-784-300-10-N3500", "AltMin"),
    ("784-1500-1500-1500-10", "1,000", "family-bench-bcd-784-1500x3-10-N1000", "BCD"),
    ("", "", "family-bench-admm-784-1500x3-10-N1000", "ADMM"),
]


@table("family-bench")
def family_bench(results):
    """Each family method's step against BackProp's and against its flop floor."""
    rows = []
    for network, N, stem, label in FAMILY_BENCH:
        mode = next(m for m in results[stem]["modes"] if m["label"] == label)
        rows.append([network, N, label, FORMATS["f2"](mode["ratio_to_backprop"]),
                     FORMATS["f2"](mode["matrix_floor_ratio"]),
                     f"**{FORMATS['f2'](mode['ratio_to_floor'])}**"])
    return markdown_table(["network", "N", "method", "x BP", "floor", "x floor"], rows)


#: the small-scale family results files, with their column names
FAMILY_SMALL = (("digits", "family-small-digits"), ("MNIST (5k CSV)", "family-small-mnist-csv"),
                ("CIFAR-10 (4,000 images)", "family-small-cifar10"))


@table("family-summary")
def family_summary(results):
    """Test accuracy of every family run at small scale, one column per data set."""
    rows, columns = {}, []
    for title, stem in FAMILY_SMALL:
        columns.append(title)
        for row in _rows(results[stem]):
            rows.setdefault(row["method"], {})[title] = FORMATS["pct"](row["test_acc"])
    return markdown_table(["method", *columns],
                          [[label, *(cells.get(c, "-") for c in columns)]
                           for label, cells in rows.items()])
