r"""The penalty-training family side by side: every registered method (BackProp, ProxProp, AltMin,
BCD, ADMM, and any other method defined, :data:`penaltyprop.methods.METHODS`).

Every method trains the same ReLU MLP from the same initial parameters on the same data, for
the same number of epochs; an epoch of a lifted method (BCD, ADMM) is one full-batch sweep,
an epoch of an oracle method (BackProp, ProxProp, AltMin) one pass of minibatches. Per data
set the experiment writes, into ``OUT/DATA/``:

* ``results.json`` (a resuming :class:`~.runner.Store`: a finished configuration is never
  run again);
* ``family-DATA.md``: final training loss, test accuracy, epochs or sweeps, seconds per
  epoch-equivalent (training only, evaluations excluded), and the objective at the end;
* ``family-DATA.png``: training loss and validation accuracy against epochs and against
  seconds;
* ``family-DATA-residuals.png``: the lifted methods' objective and constraint residuals
  against sweeps.

The methods and their step sizes (:func:`family_runs`) are what each method class says
(``family_run``): BackProp and ProxProp as in the paper's Section 5.1 (Nesterov momentum 0.95;
BackProp tau = 0.05; ProxProp exact, tau_theta = 0.05, tau = 1); AltMin with Adam, lr 0.008
(mu = 1, code step 1/mu); BCD (rho = gamma = 1, alpha = 5, Zeng et al.'s MNIST numbers) and
ADMM (beta = 1, gamma = 10, Taylor et al.'s), both with the package's softmax cross-entropy.
Every run has its own key; two runs with one key are an error, not a run skipped.
Every data set also runs AltMin with its source's settings
(:meth:`~penaltyprop.methods.AltMin.source`, Adam lr 0.008 halved every 8 epochs: key
``altmin-source``). Where a data set sets ``source_bcd``, BCD also runs in its sources' own
setting: squared loss, three hidden layers of 1500, 50 sweeps, with the merged output
(``bcd-source``) and with the sources' split output (``bcd-source-split``)
(:func:`altmin_source_config`, :func:`source_bcd_configs`).
"""
from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

from ..data import load_dataset
from ..data.mnist_csv import load_mnist_csv
from ..fsutil import atomic_write_text, check_output_files
from ..methods import BCD, METHODS, AltMin, BackProp
from ..network import mlp
from ..optim import adam, make_optimizer
from ..plotting import curve_panels, loss_and_accuracy_panels, residuals_figure
from .report import fmt_loss, fmt_pct, markdown_table
from .results import RESULTS
from .runner import Config, Store, run_configs, synthetic_dataset

#: the sources' headline numbers (docs/family.md puts them next to ours, with their settings)
SOURCES = {
    "BCD": "MNIST, 784-1500-1500-1500-10, squared loss, 50 full-batch sweeps (60,000 images): "
           "94.4-94.9% test, 5 seeds (Zeng et al.'s notebooks, timlautk/BCD-for-DNNs-PyTorch)",
    "ADMM": "MNIST, 784-300-10: about 95% test (a reimplementation's report); the paper itself: "
            "SVHN 0-vs-2 and HIGGS, hinge loss, on 1,024-7,200 cores",
    "AltMin": "MNIST and CIFAR-10, fully connected 2x100 and 2x500, AM-Adam, batch 200, 50 "
              "epochs (Choromanska et al., ICML 2019)",
}
SOURCE_BCD_HIDDEN = (1500, 1500, 1500)
SOURCE_BCD_SWEEPS = 50
ALTMIN_SOURCE_LR, ALTMIN_SOURCE_HALVING_EPOCHS = 0.008, 8  # Adam's rate, halved every 8 epochs
#: the configurations in their sources' own settings: key -> the tag of their table row
SOURCE_RUNS = {"bcd-source": " [sources' setting]", "bcd-source-split": " [sources' setting]",
               "altmin-source": " [source's settings]"}
#: the methods of those configurations, by key
SOURCE_METHODS = {"bcd-source": BCD(loss="squared"),
                  "bcd-source-split": BCD(loss="squared", output="split"),
                  "altmin-source": AltMin.source()}


def altmin_source_config(data, widths, scale):
    """AltMin with its source's settings (Adam at 0.008, halved every 8 epochs) on the
    family's network: a :class:`~.runner.Config` like the others (same epochs and batch)."""
    steps = -(-len(data.y_train) // scale.batch_size)  # minibatches per epoch
    return Config("altmin-source", mlp(widths),
                  adam(ALTMIN_SOURCE_LR, halve_every=ALTMIN_SOURCE_HALVING_EPOCHS * steps),
                  SOURCE_METHODS["altmin-source"])


def source_bcd_configs(spec, data, scale):
    """``[Config]``: where ``spec.source_bcd`` is set, BCD on its sources' network (squared
    loss, 3 x 1500, 50 sweeps: numbers of their own, ``Config.scale``), with the merged and
    the split output; else none."""
    if not spec.source_bcd:
        return []
    source_net = mlp([data.n_features, *SOURCE_BCD_HIDDEN, data.n_classes])
    numbers = SimpleNamespace(batch_size=scale.batch_size, epochs=SOURCE_BCD_SWEEPS)
    return [Config(key, source_net, None, SOURCE_METHODS[key], scale=numbers)
            for key in ("bcd-source", "bcd-source-split")]


def family_runs():
    """``[(method, optimizer name or None, tau or None)]``: every registered method, as its class
    says (``family_run``): BackProp first (the reference), then the oracle methods, then the
    lifted ones, each in the registry's order.

    Raises
    ------
    ValueError
        When two runs have the same key (their results would share one entry).
    """
    classes = sorted(METHODS.values(), key=lambda cls: (cls is not BackProp, cls.kind != "oracle"))
    runs = [cls.family_run() for cls in classes]
    check_unique_keys([run.method for run in runs] + list(SOURCE_METHODS.values()),
                      [run.method.key for run in runs] + list(SOURCE_METHODS))
    return runs


def check_unique_keys(methods, keys):
    """Raise ValueError naming the methods when two of ``keys`` are equal."""
    seen = {}
    for method, key in zip(methods, keys):
        if key in seen:
            raise ValueError(f"two runs of the family have the key {key!r}: {seen[key].describe()} "
                             f"and {method.describe()}; give one of them its own key")
        seen[key] = method


def family_methods(cg_variant="textbook"):
    """The methods compared (:func:`family_runs` without the optimizers); no CG is involved,
    so ``cg_variant`` must be ``"textbook"``."""
    if cg_variant != "textbook":
        raise ValueError(f"cg_variant does not apply to 'family' (ProxProp runs the exact "
                         f"prox), got {cg_variant!r}")
    return [method for method, _, _ in family_runs()]


def load_family_data(spec, scale, *, data_dir=None, download=False, mnist_csv=None):
    """The :class:`~penaltyprop.data.Dataset` of one :class:`~.settings.FamilyData`.

    ``"mnist"`` reads ``mnist_csv`` when given (:func:`~penaltyprop.data.mnist_csv.load_mnist_csv`,
    a random fixed split), else the full MNIST set.
    """
    if spec.data == "synthetic":
        return synthetic_dataset(scale.image_shape, spec.n_train)
    if spec.data == "mnist" and mnist_csv is not None:
        data = load_mnist_csv(mnist_csv)
        n = spec.n_train
        return data if n is None or n >= len(data.y_train) else load_mnist_csv(mnist_csv, subset=n)
    return load_dataset(spec.data, data_dir=data_dir, subset=spec.n_train, download=download)


def _optimizer(opt, tau):
    return None if opt is None else make_optimizer(opt, tau)


def run_family(scale_name, scale, *, data_dir=None, out, seed=0, backend="numpy",
               download=False, mnist_csv=None, log=print, executor=None):
    """Train every method on every data set of ``scale`` (resuming); write tables and figures.

    With an ``executor`` (:class:`~.dask_cells.DaskCells`), each data set's configurations
    train as Dask tasks (the data sets one after another).

    Returns
    -------
    dict
        ``datasets`` (name -> its results.json content and its ``summary`` rows),
        ``markdown`` (every table) and ``wall_s``.
    """
    if mnist_csv is not None:  # before the first data set's runs, not hours later
        if not any(spec.data == "mnist" for spec in scale.datasets):
            raise ValueError(f"mnist_csv does not apply to scale {scale_name!r}: it has no "
                             f"MNIST data set")
        if not Path(mnist_csv).expanduser().is_file():
            raise ValueError(f"mnist_csv {mnist_csv} is not a file")
    out = Path(out)
    t0 = time.perf_counter()
    # Every input and every output folder is checked before the first configuration trains:
    # all data sets are loaded (a bad --mnist-csv is found now, not after the others' runs),
    # and every data set's store checks its results.json, its data and its runs/.
    plans = [_plan(spec, scale, scale_name, out, seed=seed, backend=backend,
                   data_dir=data_dir, download=download, mnist_csv=mnist_csv, log=log)
             for spec in scale.datasets]
    check_output_files(out, ("family.md",), "--out")
    results, tables = {}, []
    for spec, (data, store, configs, widths) in zip(scale.datasets, plans):
        name = data.name
        numbers = SimpleNamespace(batch_size=scale.batch_size, epochs=scale.epochs)
        if executor is not None:  # workers load the same data set themselves
            store.executor = executor.with_data(partial(
                load_family_data, spec, scale, data_dir=data_dir, mnist_csv=mnist_csv), data)
        with store:  # the data set's folder is ours until its table is written
            run_configs(store, configs, data, numbers, seed=seed, backend=backend)
            title = (f"family, scale {scale_name}: {name} {len(data.y_train)} train / "
                     f"{len(data.y_val)} val / {len(data.y_test)} test, MLP "
                     f"{'-'.join(map(str, widths))}")
            table = report_family(store, out / name, name, title, len(data.y_train))
            store.data["summary"] = family_rows(store, len(data.y_train))
            store.save()
        results[name] = store.data
        tables.append(f"### {title}\n\n{table}")
    markdown = "\n".join(tables)
    atomic_write_text(out / "family.md", markdown)
    log(f"wrote {out / 'family.md'} and, per data set, results.json and its figures")
    return {"datasets": results, "markdown": markdown, "wall_s": time.perf_counter() - t0}


def _plan(spec, scale, scale_name, out, *, seed, backend, data_dir, download, mnist_csv, log):
    """One data set of the family, ready to train and checked: ``(data, store, configs,
    widths)``; ``configs`` end with the sources' configurations (:func:`altmin_source_config`,
    :func:`source_bcd_configs`). Loads the data; the store checks its folder (nothing is
    written)."""
    data = load_family_data(spec, scale, data_dir=data_dir, download=download,
                            mnist_csv=mnist_csv)
    name = data.name
    check_output_files(out / name, (RESULTS, f"family-{name}.md", f"family-{name}.png",
                                    f"family-{name}-residuals.png"), "--out")
    store = Store(out / name, {"experiment": "family", "scale": scale_name,
                               "epochs": scale.epochs, "batch_size": scale.batch_size,
                               "dataset": {"data": spec.data, "n_train": spec.n_train,
                                           "hidden": list(spec.hidden),
                                           "source_bcd": spec.source_bcd},
                               "seed": seed, "data": repr(data)}, log=log, data=data)
    widths = [data.n_features, *spec.hidden, data.n_classes]
    numbers = SimpleNamespace(batch_size=scale.batch_size, epochs=scale.epochs)
    configs = [Config(method.key, mlp(widths), _optimizer(opt, tau), method)
               for method, opt, tau in family_runs()]
    configs.append(altmin_source_config(data, widths, scale))
    configs += source_bcd_configs(spec, data, scale)
    store.check_runs({c.key: (c.net, c.optimizer, c.method, c.scale or numbers)
                      for c in configs}, data, backend=backend)  # no runs it did not make
    return data, store, configs, widths


def family_rows(store, n_train):
    """One summary dict per stored run, in the order of :func:`family_runs`."""
    rows = []
    for key, record in store.data["runs"].items():
        h = record["history"]
        epochs = len(h["epoch"]) - 1
        lifted = bool(h.get("diagnostics"))
        diag = h["diagnostics"][-1] if lifted else None
        per_epoch = h["epoch_time"][1:]
        rows.append({
            "key": key, "method": record["method"] + SOURCE_RUNS.get(key, ""),
            "kind": "lifted" if lifted else "oracle",
            "diverged": h["diverged"],
            "final_train_loss": None if h["diverged"] else h["train_loss"][-1],
            "test_acc": h["test_acc"], "best_val_acc": max(h["val_acc"][1:] or [None]),
            "epochs": epochs,
            "epoch_s": sum(per_epoch) / len(per_epoch) if per_epoch else None,
            "objective_per_sample": (diag["objective"] / n_train if lifted
                                     else (None if h["diverged"] else h["train_loss"][-1])),
            "residual_z": (math.sqrt(sum(r * r for r in diag["residual_z"]) / n_train)
                           if lifted else None),
            "residual_a": (math.sqrt(sum(r * r for r in diag["residual_a"]) / n_train)
                           if lifted else None),
            "wall_s": record["wall_s"]})
    return rows


def report_family(store, out, name, title, n_train):
    """Write ``family-NAME.md``, ``family-NAME.png`` and ``family-NAME-residuals.png`` into
    ``out``; returns the Markdown table."""
    out = Path(out)
    records = [(r["method"] + SOURCE_RUNS.get(k, ""), r["history"])
               for k, r in store.data["runs"].items()]
    curve_panels(records, loss_and_accuracy_panels("epoch (sweep)"), out / f"family-{name}.png",
                 title, ncols=4)
    lifted = [(label, h["diagnostics"], n_train) for label, h in records if h.get("diagnostics")]
    if lifted:
        residuals_figure(lifted, out / f"family-{name}-residuals.png", title)
    table = family_table(family_rows(store, n_train))
    note = FAMILY_NOTE
    atomic_write_text(out / f"family-{name}.md", f"### {title}\n\n{table}{note}")
    return table + note


#: what the columns of :func:`family_table` mean
FAMILY_NOTE = ("\nobjective / N: the lifted methods' F (ADMM: its augmented Lagrangian) per "
               "sample, at the end; the oracle methods' own objective J, the mean training loss. "
               "Residuals: root mean square per sample of z_l - W_l a_{l-1} - b_l and "
               "a_l - relu(z_l), all layers. s per epoch: training seconds of one epoch or sweep "
               "(mean; evaluations excluded).\n")


def family_table(rows):
    """The Markdown table of :func:`family_rows` (one row per run)."""
    cells = []
    for s in rows:
        cells.append([s["method"], s["kind"], fmt_loss(s["final_train_loss"]),
                      fmt_pct(s["test_acc"]), str(s["epochs"]),
                      "-" if s["epoch_s"] is None else f"{s['epoch_s']:.3g}",
                      fmt_loss(s["objective_per_sample"]),
                      "-" if s["residual_z"] is None else f"{s['residual_z']:.2g}",
                      "-" if s["residual_a"] is None else f"{s['residual_a']:.2g}"])
    return markdown_table(["method", "kind", "final train loss", "test acc",
                           "epochs / sweeps", "s per epoch", "objective / N",
                           "lin. residual", "nonlin. residual"], cells)
