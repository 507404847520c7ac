r"""``python -m penaltyprop bench``: what one training step costs, against the machine's own GEMMs.

One run measures, on one machine and backend, interleaved so that a neighbour's load
falls on all of them alike:

* the **GEMM peak**: the throughput of the matrix products a training step is made of,
  timed alone with the same shapes: for every layer the forward product
  :math:`W P` (Eq. 7), the gradient :math:`e P^\top` (Eqs. 25, 43) and the adjoint
  :math:`W^\top e` (Eqs. 10, 22);
* **one training step** per mode (forward pass, ``method.direction``, plain SGD update).
  A mode is a label and a method object (:mod:`.modes`); the presets are BackProp (the
  gradient by the chain rule), ProxProp with the exact prox (Eq. 44) and with k = 1, 3, 5,
  10 CG iterations. Per mode: median and spread over the repetitions, the analytic flop
  count (:mod:`.flops`), GFLOP/s against the peak, the ratio to BackProp and its flop floor,
  peak memory;
* a **breakdown** (:mod:`.breakdown`): the pieces of a step (forward, backward, Gram matrix,
  solve, one CG operator application, the CG's vector updates, the update) timed separately
  with the same shapes, and how they add up to each mode.

The bench measures and reports; it sets no targets. The package's performance targets (BackProp at
>= 75 % of the peak, exact <= 1.25x BackProp, CG-k <= 1.1 (3 + 2k)/3 x BackProp, a GPU epoch
under 0.5 s) are checked against a result by ``benchmarks/targets.py``.

Modules: ``modes``, ``flops``, ``timing`` (timers, the GEMMs, the machine), ``breakdown``,
``run`` (:func:`benchmark`), ``report`` (:func:`format_report`); the command line is
:mod:`penaltyprop.commands.bench`.

Usage::

    python -m penaltyprop bench                       # the paper's MLP, batch 500, float32
    python -m penaltyprop bench --model cnn --batch-size 100
    python -m penaltyprop bench --model 784-300-10 --modes backprop cg --cg-iterations 3
    python -m penaltyprop bench --backend cupy --json bench-gpu.json
"""
from ..model_spec import PAPER_MLP, parse_model
from .breakdown import breakdown_tasks, model_of
from .flops import base_flops, matrix_floor, step_flops
from .modes import CG_ITERATIONS, MODES, TAU_THETA, Mode, make_modes, modes_of
from .report import format_report
from .run import DTYPES, EPOCH_IMAGES, benchmark, build_problem, layer_shapes
from .timing import gemm_tasks, interleaved, machine_info

__all__ = [
           "CG_ITERATIONS",
           "DTYPES",
           "EPOCH_IMAGES",
           "MODES",
           "PAPER_MLP",
           "TAU_THETA",
           "Mode",
           "base_flops",
           "benchmark",
           "breakdown_tasks",
           "build_problem",
           "format_report",
           "gemm_tasks",
           "interleaved",
           "layer_shapes",
           "machine_info",
           "make_modes",
           "matrix_floor",
           "model_of",
           "modes_of",
           "parse_model",
           "step_flops",
]
