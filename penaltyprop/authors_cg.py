r"""The CG of the authors' PyTorch code, for reproducing the paper's figures (not textbook CG).

The authors' public implementation (tfrerix/proxprop), which produced the paper's figures,
solves the prox system :math:`D\,(AA^\top + I/\tau_\theta) = -\delta A^\top` with a CG that
differs from textbook CG (:mod:`penaltyprop.cg`) in three ways:

* (i) its first search direction is the residual array itself, which is then updated in
  place, so the second direction is :math:`p_1 = (1+\beta_1)\,r_1` instead of
  :math:`r_1 + \beta_1 p_0`; later updates are textbook again (the directions are no longer
  H-conjugate, and every step is :math:`1/(1+\beta_1)` times the exact line search along it);
* (ii) it adds :data:`AUTHORS_CG_EPS` = 1e-6 to the denominators of :math:`\alpha_i` and
  :math:`\beta_i`; the effect is not scale-invariant, so the caller must pass the unscaled
  gradient (:class:`penaltyprop.prox.Prox` solves with tau = 1 and scales by tau afterwards,
  as that code does);
* (iii) after each iteration but the last it stops once
  :math:`\max_i \|r_i\|^2 < \mathrm{tol}^2 \cdot \mathrm{mean}_i \|r_{0,i}\|^2`, with
  tol = :data:`AUTHORS_CG_TOL` = 1e-2.

It still gives a descent direction for every number of iterations (docs/cg_variant.md), and
it matches that code's outputs to 1e-15 (tests/test_reference_authors.py).

The same loop runs in parameter space (:func:`prox_cg_authors`, the form of that code) or in
batch coordinates (:func:`prox_cg_authors_batch`, the form :func:`penaltyprop.cg.cg_rows_batch`
uses for textbook CG: every vector is :math:`C A^\top`, one product with the K x K Gram matrix
per iteration). The iterates are the same to rounding (tested); the batch form is the fast one
when the batch is smaller than the layer's input, as on the paper's MLP.
"""
from __future__ import annotations

from .backend import array_module, to_host
from .cg import apply_H, row_dot, row_inner
from .transfer import patch_operator

#: the epsilon that code adds to both CG denominators
AUTHORS_CG_EPS = 1e-6
#: the tol of that code's stopping rule
AUTHORS_CG_TOL = 1e-2


def prox_cg_authors(P, grad, tau_theta, iterations, tol=None, history=False, info=None):
    r"""The prox step (Eq. 11) as the authors' code solves it, as an update D.

    Parameters
    ----------
    P : array, shape (m, K)
        The patch matrix.
    grad : (gW, gb), arrays of shapes (n_out, m) and (n_out,)
        :math:`\delta A^\top`, unscaled (:math:`\nabla_{\theta_l} J`, see (ii) above). Not
        modified.
    tau_theta : float > 0
        The step size.
    iterations : int >= 1
        At most this many applications of H.
    tol : float or None
        The tol of rule (iii) (default :data:`AUTHORS_CG_TOL`).
    history, info
        As in :func:`penaltyprop.cg.cg_rows`.

    Returns
    -------
    (DW, db) : tuple of arrays
        The update :math:`\Theta^{k+1} - \Theta^k`, approximately solving
        :math:`D\,(AA^\top + I/\tau_\theta) = -\delta A^\top`.
    """
    xp = array_module(P)
    tol = AUTHORS_CG_TOL if tol is None else tol
    gW, gb = grad
    DW, db = xp.zeros_like(gW), xp.zeros_like(gb)
    rW, rb = -gW, -gb  # r_0 = -delta A^T (D_0 = 0)
    pW, pb = rW, rb  # (i): p_0 IS the residual array, which the loop updates in place
    rr = rr0 = row_dot(rW, rb, rW, rb)
    norms = [xp.sqrt(rr)] if history else None
    done = 0
    while done < iterations:
        qW, qb = apply_H(pW, pb, P, tau_theta)
        alpha = rr / (row_dot(pW, pb, qW, qb) + AUTHORS_CG_EPS)  # (ii)
        DW += alpha[:, None] * pW
        db += alpha * pb
        rW -= alpha[:, None] * qW  # with (i), this also changes p_0
        rb -= alpha * qb
        rr_new = row_dot(rW, rb, rW, rb)
        done += 1
        if history:
            norms.append(xp.sqrt(rr_new))
        if done == iterations or bool(rr_new.max() < tol ** 2 * rr0.mean()):  # (iii)
            break
        beta = rr_new / (rr + AUTHORS_CG_EPS)  # (ii)
        pW, pb = rW + beta[:, None] * pW, rb + beta * pb  # after (i): p_1 = (1 + beta_1) r_1
        rr = rr_new
    if info is not None:
        info.solver, info.system, info.size, info.iterations = "cg", "matrix-free", P.shape[0] + 1, done
        if history:
            info.residual_norms = to_host(xp.stack(norms))
    return DW, db


def prox_cg_authors_batch(P, S, tau_theta, iterations, tol=None, history=False, info=None):
    r""":func:`prox_cg_authors` in batch coordinates, for a residual :math:`r_0 = S A^\top`.

    Every array the loop forms is :math:`C A^\top` with an (n_out, K) coefficient array C,
    because :math:`(CA^\top)H = (C\mathcal{K} + C/\tau_\theta)A^\top` with the Gram matrix
    :math:`\mathcal{K} = A^\top A = P^\top P + \mathbf{1}\mathbf{1}^\top` (K, K), and row inner
    products are :math:`\langle C_1 A^\top, C_2 A^\top\rangle_i = \langle C_1\mathcal{K}, C_2\rangle_i`
    (as in :func:`penaltyprop.cg.cg_rows_batch`). The loop below is :func:`prox_cg_authors`
    line for line on the coefficients, with (i)-(iii) unchanged: p_0 is the residual's array
    (and its :math:`\mathcal{K}` product is too), the epsilons, and the max-versus-mean stop,
    which couples all rows (so, unlike textbook batch CG, the rows run in one block).

    Parameters
    ----------
    P : array, shape (m, K), or PatchOperator
        The patch matrix (or a :class:`~penaltyprop.transfer.PatchOperator`).
    S : array, shape (n_out, K)
        Coefficients of :math:`r_0 = -\nabla_\theta J = S A^\top` (unscaled, see (ii) in the
        module docstring). Not modified.
    tau_theta, iterations, tol, history, info
        As in :func:`prox_cg_authors`.

    Returns
    -------
    (DW, db) : tuple of arrays
        The update :math:`D = C_D A^\top`, shapes (n_out, m) and (n_out,).
    """
    A = patch_operator(P)
    xp = array_module(S)
    tol = AUTHORS_CG_TOL if tol is None else tol
    Kg = A.batch_gram()  # Gram matrix A^T A = P^T P + 1 1^T, (K, K)
    cD = xp.zeros_like(S)  # D_0 = 0
    cr = S.copy()  # r_0 = S A^T
    Kr = cr @ Kg
    cp, Kp = cr, Kr  # (i): p_0 IS the residual array (and so is its product with Kg)
    rr = rr0 = row_inner(cr, Kr)  # <r_i, r_i> = (cr Kg cr^T)_ii
    norms = [xp.sqrt(xp.maximum(rr, 0))] if history else None
    done = 0
    while done < iterations:
        cq = cp / tau_theta + Kp  # q = H p = (cp Kg + cp / tau_theta) A^T
        Kq = cq @ Kg  # the one operator application: a product with the Gram matrix
        alpha = rr / (row_inner(Kp, cq) + AUTHORS_CG_EPS)  # (ii); <p_i, (Hp)_i> = <Kp_i, cq_i>
        cD += alpha[:, None] * cp
        cr -= alpha[:, None] * cq  # with (i), this also changes p_0
        Kr -= alpha[:, None] * Kq
        rr_new = row_inner(cr, Kr)
        done += 1
        if history:
            norms.append(xp.sqrt(xp.maximum(rr_new, 0)))
        if done == iterations or bool(rr_new.max() < tol ** 2 * rr0.mean()):  # (iii)
            break
        beta = rr_new / (rr + AUTHORS_CG_EPS)  # (ii)
        cp, Kp = cr + beta[:, None] * cp, Kr + beta[:, None] * Kp  # after (i): p_1 = (1 + beta_1) r_1
        rr = rr_new
    if info is not None:
        info.solver, info.system, info.size, info.iterations = "cg", "batch", A.shape[1], done
        if history:
            info.residual_norms = to_host(xp.stack(norms))
    return A.apply_At(cD)
