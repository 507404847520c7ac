r"""Analytic flop counts of one training step's matrix work, per method.

A product of an (n, m) and an (m, K) matrix is 2nmK flops, a Gram matrix
:math:`P^\top P` (K x K, from m rows) K^2 m (BLAS syrk computes one triangle), a Cholesky
factorisation n^3/3, two triangular solves with r right-hand sides 2n^2 r
(:func:`~penaltyprop.backend.linalg.solve_spd`). Elementwise work (bias, ReLU, softmax, the
CG's vector updates, the update) counts zero: it is memory-bound, and the bench's table shows
what it costs in time.

Every method shares BackProp's products (:func:`base_flops`); :data:`EXTRA_FLOPS` holds, per
registered method name, what it adds. A method without an entry has no flop count (None).
"""
from __future__ import annotations

from ..prox import choose_system


def base_flops(shapes):
    """BackProp: every layer's forward and gradient products, and the adjoint of every layer
    but the first (no error is sent back to the data).

    Parameters
    ----------
    shapes : ``[(n_out, m, K), ...]``, every linear layer as the product (n_out, m) @ (m, K).
    """
    gemm = [2 * n * m * K for n, m, K in shapes]
    return 2 * sum(gemm) + sum(gemm[1:])  # forward + gradient, adjoints of layers 2..L-1


def proxprop_extra_flops(shapes, method):
    r"""What ProxProp adds to BackProp's products, per hidden (prox) layer.

    The exact solver's last product :math:`-Y A^\top` and CG's first residual
    :math:`-\delta A^\top` replace the gradient. Exact: Gram matrix, Cholesky factorisation
    and two triangular solves of the system :func:`~penaltyprop.prox.choose_system` picks
    (batch K x K with min(n, m+1) right-hand sides, as :func:`~penaltyprop.prox.prox_exact`
    associates the product, or primal (m+1) x (m+1) with n). CG-k: k applications of
    :math:`H = AA^\top + I/\tau_\theta`; matrix-free (parameter space) 4 n m K each; in batch
    coordinates (textbook CG where ``cg_space`` says so: ``"auto"`` when K < m+1) 2 n K^2
    each, plus the Gram matrix once (its final :math:`C_D A^\top` replaces the gradient). The
    gradient solver adds nothing. Early stops (``cg_tol``, the authors' variant) are not
    counted: the count is for k iterations.
    """
    flops = 0
    for n, m, K in shapes[:-1]:  # the hidden (prox) layers
        if method.solver == "exact":
            if choose_system(m, K, method.exact_system) == "batch":
                flops += K * K * m + K**3 / 3 + 2 * K * K * min(n, m + 1)
            else:
                flops += m * m * K + (m + 1) ** 3 / 3 + 2 * (m + 1) ** 2 * n
        elif method.solver == "cg":
            batch = method.cg_variant != "authors" and (
                method.cg_space == "batch"
                or (method.cg_space == "auto" and choose_system(m, K) == "batch"))
            if batch:
                flops += K * K * m + method.cg_iterations * 2 * n * K * K
            else:
                flops += method.cg_iterations * 4 * n * m * K
    return flops


#: method name -> ``extra(shapes, method)``: the flops it adds to :func:`base_flops`
EXTRA_FLOPS = {"backprop": lambda shapes, method: 0, "proxprop": proxprop_extra_flops}


def step_flops(shapes, method):
    """Analytic flops of one step's matrix work with ``method`` (None: no count for it)."""
    extra = EXTRA_FLOPS.get(method.name)
    return None if extra is None else base_flops(shapes) + extra(shapes, method)


def matrix_floor(shapes, method):
    """The analytic flop ratio of ``method`` to BackProp: the best a step can do against it."""
    flops = step_flops(shapes, method)
    return None if flops is None else flops / base_flops(shapes)
