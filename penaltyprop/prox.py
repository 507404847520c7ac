r"""Proximal steps on one layer's parameters, Eq. 11 (closed form: Eq. 44; or CG).

For one linear layer with patch matrix P (m, K) (``P = a_{l-1}`` for a dense layer),
parameters :math:`\Theta = [W_{\mathrm{mat}}, b]` (n_out, m+1), :math:`A = [P; \mathbf{1}^\top]`
(m+1, K) and the rows of the forward-pass output :math:`z^k = \Theta^k A`, Eq. 11 reads

.. math:: \Theta^{k+1} = \arg\min_\Theta \tfrac12 \|\Theta A - z^{k+1/2}\|^2
          + \tfrac{1}{2\tau_\theta}\|\Theta - \Theta^k\|^2 .

Its optimality condition, written for the update :math:`D = \Theta^{k+1} - \Theta^k`
and :math:`\delta = z^k - z^{k+1/2}` (so that :math:`\delta A^\top` is the layer's
backpropagated gradient, :math:`\tau\nabla_{\theta_l}J`, Eq. 26), is

.. math:: D\,(A A^\top + I/\tau_\theta) = -\delta A^\top  \qquad (\text{Eqs. 30, 44}).

Eq. 44 is the same statement for :math:`\Theta^{k+1}`:
:math:`\Theta^{k+1} = (z^{k+1/2}A^\top + \Theta^k/\tau_\theta)(AA^\top + I/\tau_\theta)^{-1}`;
subtracting :math:`\Theta^k` and using :math:`z^k = \Theta^k A` gives the update form, which
avoids cancellation. (Eq. 42 in the paper's appendix omits a factor :math:`\tau_\theta` in
front of :math:`(A^k)^\top\operatorname{vec}(z^{k+1/2})`; Eq. 44 is correct.)

Every row of D (every output unit; every output channel of a convolution) is an
independent linear system with the same symmetric positive definite matrix
:math:`H = AA^\top + I/\tau_\theta`. Three ways to solve it live here:

* :func:`prox_exact` with ``system="primal"``: a direct solve with the (m+1) x (m+1) matrix H;
* :func:`prox_exact` with ``system="batch"``: the push-through identity
  :math:`A^\top(AA^\top + I/\tau_\theta)^{-1} = (A^\top A + I/\tau_\theta)^{-1}A^\top` turns it into a
  K x K solve, :math:`D = -(\delta\,(A^\top A + I/\tau_\theta)^{-1})A^\top`
  (DESIGN.md, decision 3); ``system="auto"`` takes the smaller;
* :func:`prox_cg`: matrix-free conjugate gradient, one independent CG per row,
  started at :math:`\Theta^k` (D = 0).

and :func:`prox_gradient`, the explicit step of the same size, for comparison.
No explicit inverse is ever formed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .backend import array_module, solve_spd, to_host

EXACT_SYSTEMS = ("auto", "primal", "batch")
CG_VARIANTS = ("textbook", "authors")
CG_SPACES = ("auto", "parameter", "batch")
#: ``variant="authors"`` of :func:`prox_cg`: the epsilon its code adds to both CG
#: denominators, and the ``tol`` of its stopping rule (tfrerix/proxprop, ProxProp.py).
AUTHORS_CG_EPS = 1e-6
AUTHORS_CG_TOL = 1e-2


@dataclass
class ProxInfo:
    """What one prox solve did: solver, system size, iterations and residual history.

    ``residual_norms`` is a host array of shape (iterations + 1, n_out): row by row
    :math:`\\|r_i\\|` of :math:`r = -\\delta A^\\top - D H` before the first and after
    every CG iteration (only for ``solver="cg"`` with history requested).
    """

    solver: str
    system: str = ""
    size: int = 0
    iterations: int = 0
    residual_norms: object = None
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- the operator
def apply_A(VW, vb, P):
    r""":math:`(V_W, v_b) \mapsto V_W P + v_b\mathbf{1}^\top`, the forward map :math:`\phi` in rows (Eq. 29)."""
    return VW @ P + vb[:, None]  # (n_out, m) @ (m, K) -> (n_out, K)


def apply_At(R, P):
    r""":math:`R \mapsto R A^\top = (R P^\top, R\mathbf{1})`, the adjoint of :math:`\phi` in theta (Eq. 43)."""
    if P.shape[1] > P.shape[0]:  # long K (a convolution's H*W*N columns): BLAS is far faster
        return (P @ R.T).T, R.sum(axis=1)  # computing the small (m, n_out) product and transposing
    return R @ P.T, R.sum(axis=1)  # (n_out, K) @ (K, m); (n_out,)


def apply_H(VW, vb, P, tau_theta):
    r""":math:`V \mapsto V (AA^\top + I/\tau_\theta)`: one application of :math:`M_l^k` (Eq. 14)
    to every row; costs one forward map and one adjoint."""
    QW, qb = apply_At(apply_A(VW, vb, P), P)
    QW += VW / tau_theta  # in place: QW is a fresh (n_out, m) array
    qb += vb / tau_theta
    return QW, qb


def _row_inner(U, V):
    """Row-wise inner products <U_i, V_i> of two (n_out, n) arrays: shape (n_out,)."""
    return array_module(U).einsum("ij,ij->i", U, V)  # no (n_out, n) temporary


def _rowdot(UW, ub, VW, vb):
    """Row-wise inner products <U_i, V_i> of two (W, b) pairs: shape (n_out,)."""
    return _row_inner(UW, VW) + ub * vb


# --------------------------------------------------------------------------- exact
def choose_system(m, K, system="auto"):
    """``"primal"`` ((m+1) x (m+1) system) or ``"batch"`` (K x K), the smaller for ``"auto"``."""
    if system == "auto":
        return "batch" if K < m + 1 else "primal"
    return system


def prox_exact(P, delta, tau_theta, system="auto", grad=None, info=None):
    r"""Exact proximal step (Eq. 11) in closed form (Eq. 44), as an update D.

    Parameters
    ----------
    P : (m, K) patch matrix (the layer input :math:`a_{l-1}` for a dense layer).
    delta : (n_out, K) rows of :math:`z^k - z^{k+1/2}`.
    tau_theta : float > 0.
    system : ``"auto"``, ``"primal"`` or ``"batch"`` (see the module docstring).
    grad : optional ``(delta P^T, delta 1)`` if the caller has it (the primal system uses it).
    info : optional :class:`ProxInfo` to fill in.

    Returns
    -------
    (DW, db) : (n_out, m) and (n_out,), with :math:`\Theta^{k+1} = \Theta^k + D`.
    """
    xp = array_module(P)
    m, K = P.shape
    system = choose_system(m, K, system)
    if system == "batch":
        # G = A^T A + I/tau_theta = P^T P + 1 1^T + I/tau_theta, K x K
        G = P.T @ P
        G += 1
        G[xp.diag_indices(K)] += 1 / tau_theta
        # D = -delta G^{-1} A^T, multiplied out the cheaper way: the solve is the costly part,
        # and it takes n_out right-hand sides one way, m+1 the other (same products). Each
        # right-hand side is a row; the minus sign rides on the copy the solve works in.
        if delta.shape[0] <= m + 1:
            Y = solve_spd(G, (-delta).T, overwrite_b=True).T  # Y = -delta G^{-1}, (n_out, K)
            DW, db = apply_At(Y, P)  # D = Y A^T
        else:
            negA = xp.empty((m + 1, K), dtype=P.dtype)  # -A = -[P; 1^T], (m+1, K)
            xp.negative(P, out=negA[:m])
            negA[m] = -1
            Z = solve_spd(G, negA.T, overwrite_b=True).T  # Z = -A G^{-1} = -(G^{-1} A^T)^T, (m+1, K)
            DW, db = delta @ Z[:m].T, delta @ Z[m]  # D = -delta G^{-1} A^T = delta Z^T
    else:
        # H = A A^T + I/tau_theta = [[P P^T, P 1], [1^T P^T, K]] + I/tau_theta, (m+1) x (m+1)
        H = xp.empty((m + 1, m + 1), dtype=P.dtype)
        H[:m, :m] = P @ P.T
        H[:m, m] = H[m, :m] = P.sum(axis=1)
        H[m, m] = K
        H[xp.diag_indices(m + 1)] += 1 / tau_theta
        gW, gb = grad if grad is not None else apply_At(delta, P)  # delta A^T
        rhs = xp.concatenate([gW, gb[:, None]], axis=1)  # (n_out, m+1)
        D = -solve_spd(H, rhs.T).T  # D H = -delta A^T (H symmetric)
        DW, db = D[:, :m], D[:, m]
    if info is not None:
        info.solver, info.system, info.size = "exact", system, (K if system == "batch" else m + 1)
    return DW, db


# --------------------------------------------------------------------------- conjugate gradient
def prox_cg(P, grad, tau_theta, iterations, tol=None, history=False, info=None,
            variant="textbook"):
    r"""Proximal step (Eq. 11) by matrix-free conjugate gradient, one CG per row (Sec. 4.2.2).

    Solves :math:`D\,(AA^\top + I/\tau_\theta) = -\delta A^\top` row by row, started at
    :math:`D_0 = 0`, i.e. at :math:`\theta^k`. Then the first residual is
    :math:`r_0 = -\delta A^\top`, the negative (scaled) gradient the algorithm already
    has (``grad``): it is not recomputed. Each row i has its own step lengths,

    .. math:: \alpha_i = \frac{\langle r_i, r_i\rangle}{\langle p_i, (Hp)_i\rangle},\quad
              D_i \mathrel{+}= \alpha_i p_i,\quad r_i \mathrel{-}= \alpha_i (Hp)_i,\quad
              \beta_i = \frac{\langle r_i^+, r_i^+\rangle}{\langle r_i, r_i\rangle},\quad
              p_i \leftarrow r_i^+ + \beta_i p_i .

    A row whose residual is exactly zero (e.g. a unit that received no gradient) has
    converged: its step lengths are set to 0 rather than 0/0. No epsilon is added.

    ``variant="authors"`` is *not* textbook CG: it reproduces the CG of the authors'
    public PyTorch code, which produced the paper's figures, so that their numbers can
    be reproduced and studied (docs/cg_variant.md). It differs in three ways:

    (i) its first search direction is the residual array itself, which is then updated
        in place, so the second direction is :math:`p_1 = (1+\beta_1)\,r_1` instead of
        :math:`r_1 + \beta_1 p_0`; the later updates are textbook again (the directions
        are no longer H-conjugate and every step is :math:`1/(1+\beta_1)` times the exact
        line search along it);
    (ii) it adds :data:`AUTHORS_CG_EPS` = 1e-6 to the denominators of
        :math:`\alpha_i` and :math:`\beta_i`, deliberately, because that code does;
        the effect is not scale-invariant, so callers must pass the unscaled gradient
        (:func:`~penaltyprop.proxprop` with this variant solves with tau = 1 and
        scales the update by tau afterwards, as that code does);
    (iii) after each iteration but the last it stops once
        :math:`\max_i \|r_i\|^2 < \mathrm{tol}^2 \cdot \mathrm{mean}_i \|r_{0,i}\|^2`
        with tol = :data:`AUTHORS_CG_TOL` = 1e-2 (or ``tol`` if given).

    It still gives a descent direction for every number of iterations (each step
    decreases the row's quadratic; proof in docs/cg_variant.md).

    Parameters
    ----------
    P : (m, K) patch matrix.
    grad : (gW, gb) = :math:`\delta A^\top`, shapes (n_out, m) and (n_out,).
    tau_theta : float > 0.
    iterations : int >= 1. Exactly this many applications of H are made, unless ``tol``
        is given: then the loop stops early once every row satisfies
        :math:`\|r_i\| \le \mathrm{tol}\cdot\|r_{0,i}\|` (for ``variant="authors"``:
        always the rule (iii) above).
    history : bool, record the row residual norms after every iteration in ``info``.
    info : optional :class:`ProxInfo` to fill in.
    variant : ``"textbook"`` (default) or ``"authors"`` (see above).

    Returns
    -------
    (DW, db) : the update :math:`\Theta^{k+1} - \Theta^k`.

    Notes
    -----
    Proposition 5: for any number of iterations, :math:`\langle D, -\delta A^\top\rangle > 0`,
    i.e. the update is a descent direction (the k-th iterate minimises the quadratic
    over the Krylov space spanned by :math:`r_0, Hr_0, \ldots, H^{k-1}r_0`).
    """
    if variant not in CG_VARIANTS:
        raise ValueError(f"variant must be one of {CG_VARIANTS}, got {variant!r}")
    authors = variant == "authors"
    xp = array_module(P)
    gW, gb = grad
    DW, db = xp.zeros_like(gW), xp.zeros_like(gb)
    rW, rb = -gW, -gb  # r_0 = b - H D_0 = -delta A^T (D_0 = 0, i.e. theta = theta^k)
    # p_0 = r_0. D, r and p are updated in place below, so textbook CG gives p its own
    # copy; the authors' code does not: its p_0 *is* the residual array, difference (i).
    pW, pb = (rW, rb) if authors else (rW.copy(), rb.copy())
    rr = _rowdot(rW, rb, rW, rb)  # (n_out,)
    rr0 = rr
    norms = [xp.sqrt(rr)] if history else None
    done = 0
    for it in range(iterations):
        qW, qb = apply_H(pW, pb, P, tau_theta)  # q = H p: the one operator application
        pq = _rowdot(pW, pb, qW, qb)
        if authors:
            alpha = rr / (pq + AUTHORS_CG_EPS)  # (ii)
        else:
            alpha = xp.where(pq > 0, rr / xp.where(pq > 0, pq, 1), 0)
        DW += alpha[:, None] * pW  # D_i += alpha_i p_i
        db += alpha * pb
        rW -= alpha[:, None] * qW  # r_i -= alpha_i (Hp)_i
        rb -= alpha * qb
        rr_new = _rowdot(rW, rb, rW, rb)
        done += 1
        if history:
            norms.append(xp.sqrt(rr_new))
        if done == iterations:
            break  # stop before computing a search direction that would go unused
        if authors:
            if bool(rr_new.max() < (AUTHORS_CG_TOL if tol is None else tol) ** 2 * rr0.mean()):
                break  # (iii)
        elif tol is not None and bool((rr_new <= tol * tol * rr0).all()):
            break
        if authors:
            beta = rr_new / (rr + AUTHORS_CG_EPS)  # (ii)
        else:
            beta = xp.where(rr > 0, rr_new / xp.where(rr > 0, rr, 1), 0)
        if authors and it == 0:  # (i) p_0 was the residual array, now r_1: p_1 = (1 + beta_1) r_1
            pW, pb = rW + beta[:, None] * pW, rb + beta * pb  # a new array from here on
        else:
            pW *= beta[:, None]  # p_i <- r_i + beta_i p_i
            pW += rW
            pb *= beta
            pb += rb
        rr = rr_new
    if info is not None:
        info.solver, info.system, info.size, info.iterations = "cg", "matrix-free", P.shape[0] + 1, done
        if history:
            info.residual_norms = to_host(xp.stack(norms))
    return DW, db


def prox_cg_batch(P, delta, tau_theta, iterations, tol=None, history=False, info=None):
    r"""The same textbook CG as :func:`prox_cg`, run in batch coordinates (K < m+1 pays).

    CG on :math:`D H = -\delta A^\top` starts at :math:`D_0 = 0` with
    :math:`r_0 = -\delta A^\top`, and every vector it forms stays of the form
    :math:`C A^\top` with an (n_out, K) coefficient array C, because

    .. math:: (C A^\top)\,H = C A^\top A A^\top + C A^\top/\tau_\theta = (C\,G)\,A^\top,
              \qquad G = A^\top A + I/\tau_\theta \quad (K \times K),

    the push-through identity that also gives the batch-space exact solve. Inner products
    are :math:`\langle C_1A^\top, C_2A^\top\rangle_i = \langle C_1\mathcal{K}, C_2\rangle_i`
    with the Gram matrix :math:`\mathcal{K} = A^\top A = P^\top P + \mathbf{1}\mathbf{1}^\top`.
    So this loop keeps C and :math:`C\mathcal{K}` for r and p, and is *line for line*
    :func:`prox_cg`: same step lengths :math:`\alpha_i, \beta_i`, same iterates (in exact
    arithmetic; to rounding in floating point, tested), same residual norms. One operator
    application costs one product with the K x K Gram matrix (2 n_out K^2 flops) instead of
    :math:`\phi` and its adjoint (4 n_out m K flops); the Gram matrix is formed once
    (K^2 m flops, as in :func:`prox_exact`), and :math:`D = C_D A^\top` costs one adjoint at
    the end. It is not matrix-free; the paper's matrix-free form is :func:`prox_cg`, which
    the convolutions (K = H W N, far above m) use.

    One numerical difference: residual norms come from :math:`\sqrt{c\,\mathcal{K} c^\top}`, so
    they are accurate to about :math:`\sqrt{\epsilon}\,\|r_0\|` (1e-8 relative in float64,
    3e-4 in float32), not to :math:`\epsilon`; a ``tol`` below that may not be met early.

    Parameters
    ----------
    P : (m, K) patch matrix. delta : (n_out, K) rows of :math:`z^k - z^{k+1/2}`.
    tau_theta, iterations, tol, history, info : as in :func:`prox_cg`.

    Returns
    -------
    (DW, db) : the update :math:`\Theta^{k+1} - \Theta^k`.
    """
    xp = array_module(P)
    Kg = P.T @ P  # Gram matrix A^T A = P^T P + 1 1^T, (K, K)
    Kg += 1
    cD = xp.zeros_like(delta)  # D = cD A^T
    cr = -delta  # r_0 = -delta A^T
    Kr = cr @ Kg
    cp, Kp = cr.copy(), Kr.copy()  # p_0 = r_0, in its own arrays (updated in place below)
    # Work arrays, allocated once: q's coefficients, their product with Kg, and alpha times
    # a vector (fresh (n_out, K) arrays every iteration cost page faults on the CPU).
    cq, Kq, scaled = xp.empty_like(cr), xp.empty_like(cr), xp.empty_like(cr)
    rr = _row_inner(cr, Kr)  # <r_i, r_i> = (cr Kg cr^T)_ii, (n_out,)
    rr0 = rr
    norms = [xp.sqrt(xp.maximum(rr, 0))] if history else None
    done = 0
    for _ in range(iterations):
        xp.divide(cp, tau_theta, out=cq)  # q = H p = (cp G) A^T, so its coefficients are
        cq += Kp  # cp G = cp Kg + cp / tau_theta
        xp.matmul(cq, Kg, out=Kq)  # the one operator application: a product with the Gram matrix
        pq = _row_inner(Kp, cq)  # <p_i, (Hp)_i>
        alpha = xp.where(pq > 0, rr / xp.where(pq > 0, pq, 1), 0)[:, None]
        cD += xp.multiply(alpha, cp, out=scaled)  # D_i += alpha_i p_i
        cr -= xp.multiply(alpha, cq, out=scaled)  # r_i -= alpha_i (Hp)_i
        Kr -= xp.multiply(alpha, Kq, out=scaled)
        rr_new = _row_inner(cr, Kr)
        done += 1
        if history:
            norms.append(xp.sqrt(xp.maximum(rr_new, 0)))
        if done == iterations:
            break  # stop before computing a search direction that would go unused
        if tol is not None and bool((rr_new <= tol * tol * rr0).all()):
            break
        beta = xp.where(rr > 0, rr_new / xp.where(rr > 0, rr, 1), 0)
        cp *= beta[:, None]  # p_i <- r_i + beta_i p_i
        cp += cr
        Kp *= beta[:, None]
        Kp += Kr
        rr = rr_new
    if info is not None:
        info.solver, info.system, info.size, info.iterations = "cg", "batch", P.shape[1], done
        if history:
            info.residual_norms = to_host(xp.stack(norms))
    return apply_At(cD, P)  # D = cD A^T


# --------------------------------------------------------------------------- explicit step
def prox_gradient(grad, tau_theta, info=None):
    r"""The explicit counterpart of Eq. 11: one gradient step of size :math:`\tau_\theta` on
    :math:`\tfrac12\|\phi(\theta, a) - z^{k+1/2}\|^2` from :math:`\theta^k`, i.e.
    :math:`D = -\tau_\theta\,\delta A^\top`.

    With :math:`\tau_\theta = 1` this is exactly step (c) of Algorithm 1 for
    :math:`\rho = 1/\tau` (Eq. 25). Section 4.1: unlike the prox step it increases the
    layer's quadratic once :math:`\tau_\theta > 2/\lambda_{\max}(AA^\top)`.
    """
    gW, gb = grad
    if info is not None:
        info.solver = "gradient"
    return -tau_theta * gW, -tau_theta * gb
