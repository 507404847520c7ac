r"""Analytic flop counts of a training step's or a sweep's matrix work, for the methods.

A product of an (n, m) and an (m, K) matrix is 2nmK flops, a Gram matrix
:math:`P^\top P` (K x K, from m rows) K^2 m (BLAS syrk computes one triangle), a Cholesky
factorisation n^3/3, two triangular solves with r right-hand sides 2n^2 r
(:func:`~penaltyprop.backend.linalg.solve_spd`). Elementwise work (bias, ReLU, softmax, the
CG's vector updates, the update) counts zero: it is memory-bound, and the bench's table shows
what it costs in time.

A layer is given as its product ``(n_out, m, K)``: (n_out, m) weights times (m, K) inputs.
Every oracle method shares BackProp's products (:func:`base_flops`); a method states what it
adds (``OracleMethod.extra_flops``) or, for a lifted method, what one full-batch sweep costs
with K = N, the samples it sweeps over (``LiftedMethod.sweep_flops``). The functions here are
the counts of the package's methods and the pieces a new method's count is made of.

The lifted methods' counts are their *floors*: each distinct product once (BCD's sweep
forms each :math:`W_l a_{l-1}` once, for its z-step or output block and the theta-step after
it).
"""
from __future__ import annotations

from ..prox import cg_space_costs, choose_cg_space, choose_system


def base_flops(shapes):
    """BackProp: every layer's forward and gradient products, and the adjoint of every layer
    but the first (no error is sent back to the data).

    Parameters
    ----------
    shapes : list of (n_out, m, K)
        Every linear layer as the product (n_out, m) @ (m, K), ``[(n_out, m, K), ...]``.
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
    :math:`H = AA^\top + I/\tau_\theta` in the space :func:`~penaltyprop.prox.choose_cg_space`
    picks, counted by :func:`~penaltyprop.prox.cg_space_costs`: matrix-free 4 n m K each; H
    formed once (m^2 K) and 2 n (m+1)^2 each; in batch coordinates the Gram matrix once
    (K^2 m) and 2 n K^2 each (its final :math:`C_D A^\top` replaces the gradient). The
    authors' variant runs matrix-free or in batch coordinates, whichever is cheaper (never
    with H formed). The gradient solver adds nothing. Early stops
    (``cg_tol``, the authors' variant) are not counted: the count is for k iterations.
    """
    flops = 0
    for n, m, K in shapes[:-1]:  # the hidden (prox) layers
        if method.solver == "exact":
            if choose_system(m, K, method.exact_system) == "batch":
                flops += K * K * m + K**3 / 3 + 2 * K * K * min(n, m + 1)
            else:
                flops += m * m * K + (m + 1) ** 3 / 3 + 2 * (m + 1) ** 2 * n
        elif method.solver == "cg":
            space = choose_cg_space(n, m, K, method.cg_iterations, method.cg_space or "auto",
                                    method.cg_variant or "textbook")
            flops += cg_space_costs(n, m, K, method.cg_iterations)[space]
    return flops


def cholesky_solve_flops(n, rhs):
    """Cholesky factorisation of an n x n matrix and two triangular solves with ``rhs``
    right-hand sides: n^3/3 + 2 n^2 rhs."""
    return n**3 / 3 + 2 * n * n * rhs


def exact_prox_flops(n, m, K, system):
    r"""All of :func:`~penaltyprop.prox.prox_exact`'s matrix work for an (n, m) layer on K
    columns, the product with :math:`A^\top` included: batch system: :math:`P^\top P`
    (K^2 m), K x K Cholesky solve with min(n, m+1) right-hand sides, 2nmK; primal:
    :math:`PP^\top` (m^2 K), :math:`RA^\top` (2nmK), (m+1) x (m+1) Cholesky solve with n."""
    if system == "batch":
        return K * K * m + cholesky_solve_flops(K, min(n, m + 1)) + 2 * n * m * K
    return m * m * K + 2 * n * m * K + cholesky_solve_flops(m + 1, n)


def a_step_flops(n, m, K):
    r""":func:`penaltyprop.methods.lifted.a_step` for W of shape (n, m) and K columns:
    :math:`r = z - Wt - b` (2nmK), the Gram matrix of the smaller side (:math:`WW^\top`, n^2 m,
    when n < m; else :math:`W^\top W`, m^2 n), its Cholesky solve with K right-hand sides and
    the product with :math:`W^\top` (2nmK)."""
    small, large = (n, m) if n < m else (m, n)
    return 2 * n * m * K + small * small * large + cholesky_solve_flops(small, K) + 2 * n * m * K


def bcd_sweep_flops(shapes, method):
    """One BCD sweep (:func:`penaltyprop.methods.bcd.bcd_steps`): per layer its forward
    product once, the theta-step (:func:`exact_prox_flops`, the system ``exact_system``
    picks), and for every layer but the first the a-step (:func:`a_step_flops`). The output
    block and the z-steps are elementwise."""
    flops = 0
    for l, (n, m, K) in enumerate(shapes):
        flops += 2 * n * m * K + exact_prox_flops(n, m, K, choose_system(m, K,
                                                                         method.exact_system))
        if l > 0:
            flops += a_step_flops(n, m, K)
    return flops


def admm_sweep_flops(shapes, method):
    """One ADMM sweep (:func:`penaltyprop.methods.admm.admm_steps`): per layer the residual
    before the least-squares theta-step (2nmK), the step (:func:`exact_prox_flops`, the
    smaller system) and the product with the new weights after it (2nmK, for the z-step or
    the output block); and for every layer but the first the a-step (:func:`a_step_flops`)."""
    flops = 0
    for l, (n, m, K) in enumerate(shapes):
        flops += 4 * n * m * K + exact_prox_flops(n, m, K, choose_system(m, K))
        if l > 0:
            flops += a_step_flops(n, m, K)
    return flops


def altmin_extra_flops(shapes, method):
    r"""What one AltMin step (:func:`penaltyprop.methods.altmin.altmin_direction`) adds to
    BackProp's products.

    AltMin's own count, with s = ``inner_steps``: the forward pass (2nmK per layer); per code
    :math:`z_{l-1}`, l = 2..L, s gradient steps of a forward and an adjoint product of layer
    l each (4nmK), less the first forward, which the forward pass already holds; the weight
    directions, 2nmK per layer, plus, where a layer's input is an updated code (``inputs=
    "codes"``, s > 0, every layer but the first), its forward product at that input (2nmK).
    """
    s = method.inner_steps
    flops = 0
    for l, (n, m, K) in enumerate(shapes):
        gemm = 2 * n * m * K
        flops += 2 * gemm  # forward, direction
        if l > 0 and s > 0:
            flops += (2 * s - 1) * gemm  # the code below it: s forward + s adjoint, less one
            if method.inputs == "codes":
                flops += gemm  # the layer's product at the updated code
    return flops - base_flops(shapes)
