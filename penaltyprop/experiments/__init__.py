r"""Rerun the paper's experiments (Section 4.1 and Section 5) at a chosen scale.

>>> from penaltyprop.experiments import run_experiment
>>> results = run_experiment("table1", scale="small", data_dir="data")   # doctest: +SKIP

or, from the command line, ``python -m penaltyprop experiment table1 --scale small
--data-dir data``. Each writes into its output folder (default
``runs/experiments/NAME-SCALE``): ``results.json`` (settings and every finished
configuration with its per-epoch history), a PNG figure laid out like the paper's, and a
Markdown table with the paper's numbers beside ours. A rerun with the same settings skips the
configurations that finished and resumes an interrupted one from its last epoch.

Experiments (:data:`EXPERIMENTS`):

* ``figure2``: Section 5.1, Fig. 2. MLP 3072-4000-1000-4000-10, Nesterov momentum 0.95,
  batch 500; BackProp (tau = 0.05) vs ProxProp exact, cg3, cg5, cg10 (tau = 1, tau_theta = 0.05).
* ``table1``: Section 5.2, Table 1. Final full-batch loss for 9 step sizes tau, BackProp and
  ProxProp cg1/3/5 (tau_theta = 1). Optimizer: Nesterov momentum 0.95 by default (see
  docs/reproduction.md for why), plain SGD with ``optimizer="sgd"``.
* ``figure3``: Section 5.3, Fig. 3. The CNN with Adam (tau = 1e-3): BackProp vs ProxProp
  cg3 and cg10 (tau_theta = 1).
* ``conditioning``: Section 4.1. Spectra of X X^T and a_l a_l^T of the initialised MLP.

Modules: ``settings`` (the numbers of each scale), ``runner`` (data and the resuming store),
``results`` (what an output folder may hold, checked before anything trains), ``estimate``
(the time a grid will take here), ``training`` (Figs. 2, 3, Table 1: their methods, runs and
reports), ``conditioning``, ``report`` (tables), ``run`` (:data:`EXPERIMENTS`,
:func:`run_experiment`), ``family`` (the penalty-training family), ``docnumbers`` (the
documentation's tables and checked numbers, recomputed from docs/results: ``python -m
penaltyprop.experiments.docnumbers``), ``cells`` (cells over seeds, their spread, a grid's
time), ``dask_cells`` and ``dask_worker`` (the cells as Dask tasks: ``workers=N`` or
``scheduler=ADDRESS``; docs/distributed.md). The figures are drawn by
:mod:`penaltyprop.plotting`; the command line is :mod:`penaltyprop.commands.experiment`.
"""
from . import runner
from .run import EXPERIMENTS, Experiment, default_out, run_experiment
from .settings import SCALES, SETTINGS

__all__ = ["EXPERIMENTS", "SCALES", "SETTINGS", "Experiment", "default_out", "run_experiment",
           "runner"]
