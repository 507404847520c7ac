r"""Textbook conjugate gradient for the prox systems :math:`V M_l = B`, one system per row.

Every row of a layer's parameters (every output unit; every output channel of a convolution)
is an independent linear system with the same symmetric positive definite operator

.. math:: H = AA^\top + I/\tau_\theta, \qquad A = [P; \mathbf{1}^\top] \quad (m+1, K),

the metric :math:`M_l` of Eq. 14 in the layer's row layout. Solving :math:`V H = B` with
:math:`B = \tau\nabla_{\theta_l}J` gives :math:`V = \tau M_l^{-1}\nabla_{\theta_l} J` (Eq. 16,
Proposition 2). This module runs textbook CG on all rows at once, each row with its own step
lengths, started at :math:`V_0 = 0` (so :math:`r_0 = B`):

.. math:: \alpha_i = \frac{\langle r_i, r_i\rangle}{\langle p_i, (Hp)_i\rangle},\quad
          V_i \mathrel{+}= \alpha_i p_i,\quad r_i \mathrel{-}= \alpha_i (Hp)_i,\quad
          \beta_i = \frac{\langle r_i^+, r_i^+\rangle}{\langle r_i, r_i\rangle},\quad
          p_i \leftarrow r_i^+ + \beta_i p_i .

Three forms of the same iteration (:func:`penaltyprop.prox.choose_cg_space` picks the
cheapest):

* :func:`cg_rows`: matrix-free, the paper's form: each iteration applies :math:`\phi` and its
  adjoint once (:func:`apply_H`);
* :func:`cg_rows` with ``form_H``: H formed once, (m+1) x (m+1) (:func:`formed_H`), each
  iteration one product with it (:func:`apply_H_formed`): cheap for a convolution, whose
  m = C_in k^2 is small and K = H W N large;
* :func:`cg_rows_batch`: the same iterates in batch coordinates, where every CG vector is
  :math:`C A^\top` for an (n_out, K) coefficient array C; each iteration is one product with the
  K x K Gram matrix, far cheaper when K < m+1 (a dense layer with batch N below its width).

A row whose residual is exactly zero (a unit that received no gradient) has converged: its step
lengths are 0 rather than 0/0. No epsilon is added anywhere. The authors' CG, which differs, is
in :mod:`penaltyprop.authors_cg`.
"""
from __future__ import annotations

from .backend import array_module, to_host
from .transfer import patch_operator


def apply_H(VW, vb, P, tau_theta):
    r""":math:`V \mapsto V (AA^\top + I/\tau_\theta)`: one application of :math:`M_l` (Eq. 14)
    to every row; costs one forward map and one adjoint.

    Parameters
    ----------
    VW : array, shape (n_out, m)
        The rows of V, weight part.
    vb : array, shape (n_out,)
        The rows of V, bias part.
    P : array, shape (m, K), or PatchOperator
        The patch matrix, or the layer's :class:`~penaltyprop.transfer.PatchOperator` A.
    tau_theta : float > 0
        The step size.

    Returns
    -------
    (QW, qb) : tuple of arrays
        With the shapes of (VW, vb).
    """
    A = patch_operator(P)  # A = [P; 1^T], (m+1, K)
    QW, qb = A.apply_At(A.apply_A(VW, vb))  # (V A) A^T
    QW += VW / tau_theta  # in place: QW is a fresh (n_out, m) array
    qb += vb / tau_theta
    return QW, qb


def apply_H_formed(VW, vb, H):
    r""":math:`V \mapsto V H` with :math:`H = AA^\top + I/\tau_\theta` formed, (m+1, m+1), in
    the (W, b) layout of the rows: one product with the (m, m) block (2 n_out m^2 flops).

    Parameters
    ----------
    VW : array, shape (n_out, m)
        The rows of V, weight part.
    vb : array, shape (n_out,)
        The rows of V, bias part.
    H : array, shape (m+1, m+1)
        Symmetric, its last row and column the bias's.

    Returns
    -------
    (QW, qb) : tuple of arrays
        With the shapes of (VW, vb).
    """
    m = VW.shape[1]
    QW = VW @ H[:m, :m]
    QW += vb[:, None] * H[m, :m]
    return QW, VW @ H[:m, m] + vb * H[m, m]


def formed_H(A, tau_theta):
    r""":math:`H = AA^\top + I/\tau_\theta`, (m+1, m+1), from the layer's operator A (its
    :meth:`~penaltyprop.transfer.PatchOperator.gram`: m^2 K flops, once per solve)."""
    H = A.gram()
    H[array_module(H).diag_indices(H.shape[0])] += 1 / tau_theta
    return H


def row_inner(U, V):
    """Row-wise inner products <U_i, V_i> of two (n_out, n) arrays: shape (n_out,)."""
    return array_module(U).einsum("ij,ij->i", U, V)  # no (n_out, n) temporary


def row_dot(UW, ub, VW, vb):
    """Row-wise inner products <U_i, V_i> of two (W, b) pairs: shape (n_out,)."""
    return row_inner(UW, VW) + ub * vb


def safe_ratio(num, den):
    """``num / den`` row by row, and 0 where ``den`` is 0 (a converged row: no 0/0)."""
    xp = array_module(num)
    return xp.where(den > 0, num / xp.where(den > 0, den, 1), 0)


def _record(info, system, size, done, norms):
    """Fill in ``info`` (if given); norms: an array (done + 1, n_out) or None."""
    if info is not None:
        info.solver, info.system, info.size, info.iterations = "cg", system, size, done
        if norms is not None:
            info.residual_norms = to_host(norms)


def cg_rows(P, B, tau_theta, iterations, tol=None, history=False, info=None, form_H=False):
    r"""Textbook CG on :math:`V H = B`, one system per row, from :math:`V_0 = 0`: matrix-free
    (each iteration applies :math:`\phi` and its adjoint, :func:`apply_H`), or with ``form_H``
    on the matrix H formed once (:func:`formed_H`; each iteration one product with it,
    :func:`apply_H_formed`). The two are the same iteration; forming H pays when
    m^2 K + k 2 n_out (m+1)^2 < k 4 n_out m K, e.g. a convolution's few input patches (m =
    C_in k^2) over many positions (K = H W N).

    Parameters
    ----------
    P : array, shape (m, K), or PatchOperator
        The patch matrix (:math:`a_{l-1}` for a dense layer), or the layer's
        :class:`~penaltyprop.transfer.PatchOperator` (which computes :math:`VA` and
        :math:`RA^\top`; a convolution's without forming P).
    B : (BW, bb), arrays of shapes (n_out, m) and (n_out,)
        The right-hand sides (not modified).
    tau_theta : float > 0
        The step size.
    iterations : int >= 1
        Exactly this many applications of H are made, unless ``tol`` is given: then CG stops
        once every row has :math:`\|r_i\| \le \mathrm{tol}\,\|r_{0,i}\|`.
    history : bool
        Record the row residual norms :math:`\|r_i\|` before the first and after every
        iteration in ``info.residual_norms`` (a host array (iterations + 1, n_out)).
    info : ProxInfo, optional
        A :class:`penaltyprop.prox.ProxInfo` to fill in.
    form_H : bool
        Form H (``info.system`` ``"primal"``) instead of applying it matrix-free
        (``"matrix-free"``).

    Returns
    -------
    (VW, vb) : tuple of arrays
        The k-th CG iterate.

    Notes
    -----
    Proposition 5: the k-th iterate minimises the row's quadratic over the Krylov space
    :math:`\mathrm{span}(r_0, Hr_0, \ldots, H^{k-1}r_0)`, so :math:`\langle V_i, B_i\rangle > 0`
    for every k: with :math:`B = -\delta A^\top` the update is a descent direction.
    """
    A = patch_operator(P)  # A = [P; 1^T], (m+1, K)
    H = formed_H(A, tau_theta) if form_H else None
    BW, bb = B
    xp = array_module(BW)
    VW, vb = xp.zeros_like(BW), xp.zeros_like(bb)
    rW, rb = BW.copy(), bb.copy()  # r_0 = B - V_0 H = B
    pW, pb = rW.copy(), rb.copy()  # p_0 = r_0
    rr = rr0 = row_dot(rW, rb, rW, rb)  # (n_out,)
    norms = [xp.sqrt(rr)] if history else None
    done = 0
    while done < iterations:
        # q = H p: the one operator application
        qW, qb = apply_H(pW, pb, A, tau_theta) if H is None else apply_H_formed(pW, pb, H)
        alpha = safe_ratio(rr, row_dot(pW, pb, qW, qb))
        VW += alpha[:, None] * pW  # V_i += alpha_i p_i
        vb += alpha * pb
        rW -= alpha[:, None] * qW  # r_i -= alpha_i (Hp)_i
        rb -= alpha * qb
        rr_new = row_dot(rW, rb, rW, rb)
        done += 1
        if history:
            norms.append(xp.sqrt(rr_new))
        if done == iterations or (tol is not None and bool((rr_new <= tol * tol * rr0).all())):
            break  # no search direction that would go unused
        beta = safe_ratio(rr_new, rr)
        pW *= beta[:, None]  # p_i <- r_i + beta_i p_i
        pW += rW
        pb *= beta
        pb += rb
        rr = rr_new
    _record(info, "matrix-free" if H is None else "primal", A.shape[0] + 1, done,
            None if norms is None else xp.stack(norms))
    return VW, vb


#: Rows of a layer that :func:`cg_rows_batch` iterates together on the CPU: every row is its
#: own system, and a block's seven (rows, K) work arrays (14 MB at 1024 rows and K = 500,
#: float32) stay in the last-level cache (32 MB) between the loop's elementwise passes.
#: Measured in the paper MLP's CG-10 step (N = 500, float32, quiet, medians of 6): 530 ms with
#: 1024-row blocks, 545 ms with 512, 570 ms with 256, 580 ms with all rows at once (the third
#: and first layers' solves 150 and 185 ms against 171 and 212 ms). Two threads each taking
#: blocks on one BLAS thread were no faster in the step (590 ms), see docs/performance.md.
BLOCK_ROWS = 1024


def cg_rows_batch(P, R, tau_theta, iterations, tol=None, history=False, info=None):
    r"""The same textbook CG as :func:`cg_rows` for :math:`B = R A^\top`, in batch coordinates.

    Every vector CG forms stays of the form :math:`C A^\top` with an (n_out, K) coefficient
    array C, because

    .. math:: (C A^\top)\,H = C A^\top A A^\top + C A^\top/\tau_\theta = (C\,G)\,A^\top,
              \qquad G = A^\top A + I/\tau_\theta \quad (K \times K),

    the push-through identity that also gives the batch-space exact solve. Inner products are
    :math:`\langle C_1A^\top, C_2A^\top\rangle_i = \langle C_1\mathcal{K}, C_2\rangle_i` with the
    Gram matrix :math:`\mathcal{K} = A^\top A = P^\top P + \mathbf{1}\mathbf{1}^\top`. So the loop
    (:func:`cg_batch_coefficients`) keeps C and :math:`C\mathcal{K}` for r and p and is line for
    line :func:`cg_rows`: the same step lengths and iterates (to rounding, tested) and residual
    norms. One operator application costs one product with the K x K Gram matrix
    (2 n_out K^2 flops) instead of :math:`\phi` and its adjoint (4 n_out m K flops); the Gram
    matrix is formed once (K^2 m flops), and :math:`V = C_V A^\top` costs one adjoint at the end.

    Every row is its own system with the same Gram matrix, so on the CPU the rows are iterated
    in blocks of :data:`BLOCK_ROWS` that stay in the cache (on a GPU, all rows in one block).
    A row's iterates do not depend on the blocks, except with ``tol``: a block stops when all
    of its rows have converged.

    Residual norms come from :math:`\sqrt{c\,\mathcal{K} c^\top}`, so they are accurate to about
    :math:`\sqrt{\epsilon}\,\|r_0\|` (1e-8 relative in float64, 3e-4 in float32); a ``tol`` below
    that may not be met early.

    Parameters
    ----------
    P : array, shape (m, K), or PatchOperator
        The patch matrix (or a :class:`~penaltyprop.transfer.PatchOperator`, whose
        :meth:`~penaltyprop.transfer.PatchOperator.patches` is used).
    R : array, shape (n_out, K)
        Coefficients of the right-hand sides (not modified).
    tau_theta, iterations, tol, history, info
        As in :func:`cg_rows`. ``info.iterations`` is the most any block made; a block that
        stopped early keeps its last residual norms in ``info.residual_norms`` for the
        iterations after it stopped (its iterate stays too).

    Returns
    -------
    (VW, vb) : tuple of arrays
        The k-th CG iterate for :math:`V H = R A^\top`.
    """
    A = patch_operator(P)
    xp = array_module(R)
    Kg = A.batch_gram()  # Gram matrix A^T A = P^T P + 1 1^T, (K, K)
    cV = xp.empty_like(R)  # V = cV A^T

    blocks = []  # (iterations made, residual norms) per block of rows
    for rows in row_blocks(R.shape[0], xp):
        cV[rows], done, norms = cg_batch_coefficients(Kg, R[rows], tau_theta, iterations, tol,
                                                      history)
        blocks.append((done, norms))
    done = max((d for d, _ in blocks), default=0)
    norms = None
    if history and blocks:  # (done + 1, n_out): a block that stopped early keeps its last norms
        norms = xp.concatenate([xp.concatenate([n, xp.repeat(n[-1:], done + 1 - len(n), 0)])
                                for _, n in blocks], axis=1)
    _record(info, "batch", A.shape[1], done, norms)
    return A.apply_At(cV)  # V = cV A^T


def row_blocks(n_rows, xp):
    """The slices of ``range(n_rows)`` in blocks of :data:`BLOCK_ROWS` (on a GPU: one slice)."""
    if xp.__name__ != "numpy":
        return [slice(0, n_rows)]
    return [slice(i, min(i + BLOCK_ROWS, n_rows)) for i in range(0, n_rows, BLOCK_ROWS)]


def cg_batch_coefficients(Kg, R, tau_theta, iterations, tol=None, history=False):
    r"""Textbook CG on :math:`V H = R A^\top` for the coefficients :math:`C_V` of
    :math:`V = C_V A^\top`, given the Gram matrix :math:`\mathcal{K} = A^\top A` (K, K);
    the loop of :func:`cg_rows_batch`.

    Returns
    -------
    cV : array, shape (n_out, K)
        The iterate's coefficients.
    done : int
        The number of iterations made.
    norms : array, shape (done + 1, n_out), or None
        With ``history`` the row residual norms, else None.
    """
    xp = array_module(R)
    cV = xp.zeros_like(R)  # V_0 = 0
    cr = R.copy()  # r_0 = R A^T
    Kr = cr @ Kg
    cp, Kp = cr.copy(), Kr.copy()  # p_0 = r_0
    # Work arrays allocated once (fresh (n_out, K) arrays every iteration cost page faults).
    cq, Kq, scaled = xp.empty_like(cr), xp.empty_like(cr), xp.empty_like(cr)
    rr = rr0 = row_inner(cr, Kr)  # <r_i, r_i> = (cr Kg cr^T)_ii
    norms = [xp.sqrt(xp.maximum(rr, 0))] if history else None
    done = 0
    while done < iterations:
        xp.divide(cp, tau_theta, out=cq)  # q = H p = (cp G) A^T, so its coefficients are
        cq += Kp  # cp G = cp Kg + cp / tau_theta
        xp.matmul(cq, Kg, out=Kq)  # the one operator application: a product with the Gram matrix
        alpha = safe_ratio(rr, row_inner(Kp, cq))[:, None]  # <p_i, (Hp)_i> = <Kp_i, cq_i>
        cV += xp.multiply(alpha, cp, out=scaled)  # V_i += alpha_i p_i
        cr -= xp.multiply(alpha, cq, out=scaled)  # r_i -= alpha_i (Hp)_i
        Kr -= xp.multiply(alpha, Kq, out=scaled)
        rr_new = row_inner(cr, Kr)
        done += 1
        if history:
            norms.append(xp.sqrt(xp.maximum(rr_new, 0)))
        if done == iterations or (tol is not None and bool((rr_new <= tol * tol * rr0).all())):
            break
        beta = safe_ratio(rr_new, rr)[:, None]
        cp *= beta  # p_i <- r_i + beta_i p_i
        cp += cr
        Kp *= beta
        Kp += Kr
        rr = rr_new
    return cV, done, None if norms is None else xp.stack(norms)
