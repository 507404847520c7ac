r"""The bench's flop counts, asked of the method: a step's (or a sweep's) flops and its floor.

An oracle method states what one step adds to BackProp's matrix products
(``method.extra_flops(shapes)``), a lifted method what one full-batch sweep costs
(``method.sweep_flops(shapes)``); the counts and their conventions are in
:mod:`penaltyprop.methods.costs`. A method that states none has no count and no floor: the
bench prints "no floor" for it.
"""
from __future__ import annotations

from ..methods.costs import a_step_flops, base_flops, cholesky_solve_flops, exact_prox_flops

__all__ = ["a_step_flops", "base_flops", "cholesky_solve_flops", "exact_prox_flops",
           "matrix_floor", "step_flops"]


def step_flops(shapes, method):
    """Analytic flops of one step's (an oracle method's) or one sweep's (a lifted method's)
    matrix work with ``method``, on the layer products ``shapes = [(n_out, m, K), ...]``
    (None: the method gives no count)."""
    if method.kind == "lifted":
        return method.sweep_flops(shapes)
    extra = method.extra_flops(shapes)
    return None if extra is None else base_flops(shapes) + extra


def matrix_floor(shapes, method):
    """The analytic flop ratio of ``method`` to BackProp on the same shapes (for a lifted
    method: a sweep over K samples against a BackProp epoch over them): the best a step can
    do against BackProp (None: the method gives no count)."""
    flops = step_flops(shapes, method)
    return None if flops is None else flops / base_flops(shapes)
