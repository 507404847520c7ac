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
:math:`H = AA^\top + I/\tau_\theta` (the metric :math:`M_l` of Eq. 14 in row layout). The
solvers here solve :math:`V H = R A^\top` for given rows R, so that the same code gives the
prox update (R = :math:`-\delta`) and the ProxProp direction :math:`M_l^{-1}\nabla_{\theta_l}J`
(R = :math:`\delta` at tau = 1, Proposition 2). Three ways to solve it:

* :func:`prox_exact` with ``system="primal"``: a direct solve with the (m+1) x (m+1) matrix H;
* :func:`prox_exact` with ``system="batch"``: the push-through identity
  :math:`A^\top(AA^\top + I/\tau_\theta)^{-1} = (A^\top A + I/\tau_\theta)^{-1}A^\top` turns it into a
  K x K solve, :math:`D = -(\delta\,(A^\top A + I/\tau_\theta)^{-1})A^\top`;
  ``system="auto"`` takes the smaller;
* textbook conjugate gradient (:mod:`penaltyprop.cg`), matrix-free (:func:`prox_cg`) or in
  batch coordinates (:func:`prox_cg_batch`), started at :math:`\Theta^k` (D = 0); the authors'
  CG variant is in :mod:`penaltyprop.authors_cg`;

and :func:`prox_gradient`, the explicit step of the same size, for comparison. No explicit
inverse is ever formed. The solvers take the patch matrix P, or the layer's
:class:`~penaltyprop.transfer.PatchOperator` (``phi.prox_operator(a)``), which supplies
:math:`AA^\top`, :math:`VA` and :math:`RA^\top` (a convolution computes them without forming P).
:class:`Prox` holds the checked settings of step (c) of Algorithm 2 and picks the solver;
it is the one place where those settings are checked.

Why one module of ~380 lines: it is one idea (the prox step of Eq. 11 and its solvers), and
about half of it is the docstrings that tie each solver to its equation; the CG iterations and
the authors' variant already live in their own modules.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .authors_cg import AUTHORS_CG_EPS, AUTHORS_CG_TOL, prox_cg_authors, prox_cg_authors_batch
from .backend import array_module
from .backend.linalg import solve_spd
from .cg import apply_H, cg_rows, cg_rows_batch, formed_H
from .checks import check_choice, check_int, check_positive
from .transfer import patch_operator

SOLVERS = ("exact", "cg", "gradient")
EXACT_SYSTEMS = ("auto", "primal", "batch")
CG_VARIANTS = ("textbook", "authors")
CG_SPACES = ("auto", "parameter", "primal", "batch")
#: the spaces each CG variant runs in (the authors' loop is not written for H formed)
CG_VARIANT_SPACES = {"textbook": ("parameter", "primal", "batch"), "authors": ("parameter", "batch")}

__all__ = ["AUTHORS_CG_EPS", "AUTHORS_CG_TOL", "CG_SPACES", "CG_VARIANT_SPACES", "CG_VARIANTS",
           "EXACT_SYSTEMS", "SOLVERS", "Prox", "ProxInfo", "apply_H", "cg_space_costs", "choose_cg_space",
           "choose_system", "prox_cg", "prox_cg_batch",
           "prox_exact", "prox_gradient", "solve_exact"]


@dataclass
class ProxInfo:
    """What one prox solve did: solver, system size, iterations and residual history.

    ``residual_norms`` is a host array of shape (iterations + 1, n_out): row by row
    :math:`\\|r_i\\|` of :math:`r = R A^\\top - V H` before the first and after every CG
    iteration (only for ``solver="cg"`` with history requested). ``extra["layer"]`` is the
    paper's l when the info comes from a sweep.
    """

    solver: str
    system: str = ""
    size: int = 0
    iterations: int = 0
    residual_norms: object = None
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- exact
def _solve(G, B, overwrite_b=False):
    """``solve_spd(G, B)``, whose failure says what happened and what to do."""
    try:
        return solve_spd(G, B, overwrite_b=overwrite_b)
    except ValueError as err:  # numpy.linalg.LinAlgError is a ValueError
        xp = array_module(G)
        size, largest = G.shape[0], float(xp.abs(G).max())
        raise ValueError(
            f"exact prox: the {size} x {size} system (Eq. 44) is not positive definite in "
            f"{G.dtype} ({err}; its largest entry is {largest:.3g}): the layer's inputs are too "
            "large or not finite for this precision. Scale the data to about [0, 1], use "
            "smaller step sizes, float64, or solver='cg'") from None


def choose_system(m, K, system="auto"):
    """``"primal"`` ((m+1) x (m+1) system) or ``"batch"`` (K x K), the smaller for ``"auto"``."""
    if system == "auto":
        return "batch" if K < m + 1 else "primal"
    return system


def cg_space_costs(n_out, m, K, iterations):
    r"""Flops of k = ``iterations`` textbook CG iterations on :math:`V H = RA^\top` (n_out rows,
    :math:`A` of shape (m+1, K)) in each space: ``"parameter"`` (matrix-free: k applications of
    :math:`\phi` and its adjoint, 4 n_out m K each), ``"primal"`` (H formed once, m^2 K, then
    2 n_out (m+1)^2 per iteration) and ``"batch"`` (the Gram matrix once, K^2 m, then
    2 n_out K^2 per iteration). The products every space shares (:math:`RA^\top` or the final
    :math:`C A^\top`) are left out."""
    k = iterations
    return {"parameter": k * 4 * n_out * m * K,
            "primal": m * m * K + k * 2 * n_out * (m + 1) ** 2,
            "batch": K * K * m + k * 2 * n_out * K * K}


def choose_cg_space(n_out, m, K, iterations, space="auto", variant="textbook"):
    """The space CG runs in: ``space`` itself, or for ``"auto"`` the cheapest in flops
    (:func:`cg_space_costs`) of those the variant runs in (:data:`CG_VARIANT_SPACES`; ties go to
    the matrix-free paper's form, then primal)."""
    if space != "auto":
        return space
    costs = cg_space_costs(n_out, m, K, iterations)
    return min(CG_VARIANT_SPACES[variant], key=lambda s: costs[s])


def solve_exact(P, R, tau_theta, system="auto", info=None):
    r"""Solve :math:`V\,(AA^\top + I/\tau_\theta) = R A^\top` directly (Eq. 44), by Cholesky.

    Parameters
    ----------
    P : array, shape (m, K), or PatchOperator
        The patch matrix, or the layer's :class:`~penaltyprop.transfer.PatchOperator`.
    R : array, shape (n_out, K)
        Rows (not modified).
    tau_theta : float > 0
        The step size.
    system : {"primal", "batch", "auto"}
        ``"primal"`` (the (m+1) x (m+1) matrix H), ``"batch"`` (the K x K matrix
        :math:`G = A^\top A + I/\tau_\theta`, by the push-through identity
        :math:`A^\top H^{-1} = G^{-1} A^\top`) or ``"auto"`` (the smaller).
    info : ProxInfo, optional
        Filled in when given.

    Returns
    -------
    (VW, vb) : tuple of arrays
        Of shapes (n_out, m) and (n_out,).
    """
    op = patch_operator(P)  # A = [P; 1^T], (m+1, K)
    xp = array_module(R)
    m, K = op.shape
    system = choose_system(m, K, system)
    if system == "batch":
        G = op.batch_gram()  # G = A^T A + I/tau_theta = P^T P + 1 1^T + I/tau_theta, K x K
        G[xp.diag_indices(K)] += 1 / tau_theta
        # V = R G^{-1} A^T, multiplied out the cheaper way: the solve takes n_out right-hand
        # sides one way, m+1 the other (same products). Each right-hand side is a row.
        if R.shape[0] <= m + 1:
            VW, vb = op.apply_At(_solve(G, R.T).T)  # (R G^{-1}) A^T
        else:
            P = op.patches()
            A = xp.empty((m + 1, K), dtype=P.dtype)  # A = [P; 1^T], (m+1, K)
            A[:m], A[m] = P, 1
            Z = _solve(G, A.T, overwrite_b=True).T  # Z = A G^{-1}, (m+1, K)
            VW, vb = R @ Z[:m].T, R @ Z[m]  # R (A G^{-1})^T = R G^{-1} A^T
    else:
        H = formed_H(op, tau_theta)  # A A^T + I/tau_theta, A A^T = [[P P^T, P 1], [1^T P^T, K]]
        BW, bb = op.apply_At(R)  # R A^T
        V = _solve(H, xp.concatenate([BW, bb[:, None]], axis=1).T, overwrite_b=True).T
        VW, vb = V[:, :m], V[:, m]  # H symmetric: V H = B  <=>  H V^T = B^T
    if info is not None:
        info.solver, info.system, info.size = "exact", system, (K if system == "batch" else m + 1)
    return VW, vb


def prox_exact(P, delta, tau_theta, system="auto", info=None):
    r"""Exact proximal step (Eq. 11) in closed form (Eq. 44), as an update D.

    Parameters
    ----------
    P : array, shape (m, K)
        The patch matrix (the layer input :math:`a_{l-1}` for a dense layer).
    delta : array, shape (n_out, K)
        Rows of :math:`z^k - z^{k+1/2}`.
    tau_theta : float > 0
        The step size.
    system : {"auto", "primal", "batch"}
        Which linear system to solve.
    info : ProxInfo, optional
        Filled in when given.

    Returns
    -------
    (DW, db) : tuple of arrays
        Of shapes (n_out, m) and (n_out,), with :math:`\Theta^{k+1} = \Theta^k + D`,
        :math:`D\,(AA^\top + I/\tau_\theta) = -\delta A^\top`.
    """
    return solve_exact(P, -delta, tau_theta, system, info)


# --------------------------------------------------------------------------- CG, explicit
def prox_cg(P, grad, tau_theta, iterations, tol=None, history=False, info=None):
    r"""Proximal step (Eq. 11) by matrix-free textbook CG (Sec. 4.2.2), as an update D.

    Solves :math:`D\,(AA^\top + I/\tau_\theta) = -\delta A^\top` row by row from :math:`D_0 = 0`
    (i.e. from :math:`\theta^k`), so the first residual is the negative (scaled) gradient
    ``grad`` :math:`= \delta A^\top` that the sweep already has. See :func:`penaltyprop.cg.cg_rows`
    for the iteration and the parameters; Proposition 5: the update is a descent direction for
    every number of iterations.
    """
    gW, gb = grad
    return cg_rows(P, (-gW, -gb), tau_theta, iterations, tol=tol, history=history, info=info)


def prox_cg_batch(P, delta, tau_theta, iterations, tol=None, history=False, info=None):
    r"""The same textbook CG as :func:`prox_cg`, run in batch coordinates (cheaper when K < m+1).

    See :func:`penaltyprop.cg.cg_rows_batch`. ``delta`` : (n_out, K) rows of
    :math:`z^k - z^{k+1/2}`. Returns the update (DW, db).
    """
    return cg_rows_batch(P, -delta, tau_theta, iterations, tol=tol, history=history, info=info)


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


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Prox:
    r"""Step (c) of Algorithm 2: the proximal step of Eq. 11 with checked settings.

    The one place where the prox settings are checked (``pp.proxprop``, the
    :class:`~penaltyprop.methods.ProxProp` method and the trace all build one).

    Parameters
    ----------
    tau_theta : float > 0
        The step size of Eq. 11.
    solver : {"exact", "cg", "gradient"}
        ``"exact"`` (Eq. 44, a Cholesky solve), ``"cg"`` (conjugate gradient) or
        ``"gradient"`` (the explicit step of the same size; with tau_theta = 1 this is
        Algorithm 1's step (c)).
    cg_iterations : int >= 1
        CG iterations (required for, and only for, ``solver="cg"``).
    cg_tol : float > 0 or None
        Stop CG once every row's residual fell by this factor (``"authors"``: the tol of that
        code's rule, 1e-2 when None). CG only.
    cg_variant : {"textbook", "authors"}
        ``"textbook"`` (default for CG) or ``"authors"`` (:mod:`penaltyprop.authors_cg`).
    exact_system : {"auto", "primal", "batch"}
        ``"auto"`` (default for exact: the smaller), ``"primal"`` or ``"batch"``.
    cg_space : {"auto", "parameter", "primal", "batch"}
        ``"auto"`` (default for CG: the cheapest, :func:`choose_cg_space`), ``"parameter"``
        (matrix-free, the paper's form), ``"primal"`` (H formed once) or ``"batch"`` (batch
        coordinates); ``"primal"`` textbook CG only (the authors' variant chooses between
        parameter and batch).

    Raises
    ------
    ValueError
        If an option does not apply to the solver; None means "not given" (and, for the
        solver's own options, its default).
    """

    tau_theta: float
    solver: str = "exact"
    cg_iterations: int | None = None
    cg_tol: float | None = None
    cg_variant: str | None = None
    exact_system: str | None = None
    cg_space: str | None = None

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        put("tau_theta", check_positive(self.tau_theta, "tau_theta"))
        check_choice(self.solver, "solver", SOLVERS)
        cg_only = ("cg_iterations", "cg_tol", "cg_variant", "cg_space")
        given = [k for k in cg_only if getattr(self, k) is not None]
        if self.solver != "cg" and given:
            raise ValueError(f"{', '.join(given)} only {'applies' if len(given) == 1 else 'apply'} "
                             f"to solver='cg', not {self.solver!r}")
        if self.solver != "exact" and self.exact_system is not None:
            raise ValueError(f"exact_system only applies to solver='exact', not {self.solver!r}")
        if self.solver == "exact":
            put("exact_system", check_choice(self.exact_system or "auto", "exact_system",
                                             EXACT_SYSTEMS))
        if self.solver == "cg":
            if self.cg_iterations is None:
                raise ValueError("cg_iterations must be given for solver='cg' (e.g. cg_iterations=3)")
            put("cg_iterations", check_int(self.cg_iterations, "cg_iterations", 1))
            if self.cg_tol is not None:
                put("cg_tol", check_positive(self.cg_tol, "cg_tol"))
            put("cg_variant", check_choice(self.cg_variant or "textbook", "cg_variant", CG_VARIANTS))
            put("cg_space", check_choice(self.cg_space or "auto", "cg_space", CG_SPACES))
            spaces = CG_VARIANT_SPACES[self.cg_variant]
            if self.cg_space not in ("auto", *spaces):
                raise ValueError(f"cg_space={self.cg_space!r} runs textbook CG only; the "
                                 f"authors' variant (cg_variant='authors') runs in "
                                 f"{' or '.join(map(repr, spaces))} space")

    def solve(self, phi, a_prev, R, tau=1.0, info=None):
        r"""V with :math:`V M_l = R A^\top` (Eqs. 14, 16, 44): :math:`M_l^{-1}` on the rows R.

        Parameters
        ----------
        phi : LinearTransfer
            The layer's transfer function.
        a_prev : array, shape ``(*in_shape, N)``
            Its input.
        R : array, shape ``(*out_shape, N)``
            An output-space array (:math:`\pm\delta`).
        tau : float
            The sweep's tau (only the authors' CG uses it: it solves at tau = 1 and scales
            afterwards).
        info : ProxInfo, optional
            Filled in when given.

        Returns
        -------
        (VW, vb) : tuple of arrays
            VW of ``phi.weight_shape`` and vb of shape (n_out,).
        """
        A, R = phi.prox_operator(a_prev), phi.to_rows(R)  # A = [P; 1^T] (m+1, K); (n_out, K)
        if self.solver == "exact":
            VW, vb = solve_exact(A, R, self.tau_theta, self.exact_system, info)
        elif self.solver == "gradient":
            VW, vb = prox_gradient(A.apply_At(R), -self.tau_theta, info)  # tau_theta R A^T
        elif self.cg_variant == "authors":  # unscaled gradient in, tau times the update out
            space = choose_cg_space(R.shape[0], *A.shape, self.cg_iterations, self.cg_space,
                                    "authors")
            if space == "batch":  # r_0 = -grad_theta J = (R / tau) A^T
                DW, db = prox_cg_authors_batch(A.patches(), R / tau, self.tau_theta,
                                               self.cg_iterations, self.cg_tol, info is not None,
                                               info)
            else:
                gW, gb = A.apply_At(R)  # R A^T = -tau grad_theta J
                DW, db = prox_cg_authors(A.patches(), (gW / -tau, gb / -tau), self.tau_theta,
                                         self.cg_iterations, self.cg_tol, info is not None, info)
            VW, vb = tau * DW, tau * db
        else:
            space = choose_cg_space(R.shape[0], *A.shape, self.cg_iterations, self.cg_space)
            if space == "batch":
                VW, vb = cg_rows_batch(A.patches(), R, self.tau_theta, self.cg_iterations,
                                       self.cg_tol, info is not None, info)
            else:
                VW, vb = cg_rows(A, A.apply_At(R), self.tau_theta, self.cg_iterations,
                                 self.cg_tol, info is not None, info, form_H=space == "primal")
        return VW.reshape(phi.weight_shape), vb

    def update(self, phi, a_prev, delta, tau=1.0, info=None):
        r""":math:`\theta_l^{k+1} - \theta_l^k` of Eq. 11, given :math:`\delta = z_l^k - z_l^{k+1/2}`:
        the solution of :math:`D M_l = -\delta A^\top` (Eqs. 30, 44)."""
        return self.solve(phi, a_prev, -delta, tau, info)

    def direction(self, phi, a_prev, delta, info=None):
        r""":math:`M_l^{-1}\nabla_{\theta_l}J` (Proposition 2), given :math:`\delta` of a sweep
        with tau = 1, where :math:`\delta A^\top = \nabla_{\theta_l}J` (Eq. 26)."""
        return self.solve(phi, a_prev, delta, 1.0, info)
