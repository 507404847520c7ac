r"""Notebook 03: the proximal step of Eq. 44, in the primal and in batch space, and one CG iteration.

For one dense layer with input a (m, N), parameters :math:`\Theta = [W, b]` (n_out, m+1),
:math:`A = [a; \mathbf 1^\top]` (m+1, N) and the target :math:`z^{k+1/2}` of step (c), Eq. 11 is

.. math:: \Theta^{k+1} = \arg\min_\Theta \tfrac12\|\Theta A - z^{k+1/2}\|^2
          + \tfrac{1}{2\tau_\theta}\|\Theta - \Theta^k\|^2 .

* ``prox_primal(W, b, a, z_half, tau_theta)``: Eq. 44,
  :math:`\Theta^{k+1} = (z^{k+1/2}A^\top + \Theta^k/\tau_\theta)(AA^\top + I/\tau_\theta)^{-1}`,
  an (m+1) x (m+1) system;
* ``prox_batch(W, b, a, z_half, tau_theta)``: the same step from an N x N system, by the
  push-through identity :math:`A^\top(AA^\top + I/\tau_\theta)^{-1} = (A^\top A + I/\tau_\theta)^{-1}A^\top`:
  :math:`\Theta^{k+1} = \Theta^k - \delta\,(A^\top A + I/\tau_\theta)^{-1}A^\top`,
  :math:`\delta = \Theta^k A - z^{k+1/2}`;
* ``cg_iteration(V, R, P, A, tau_theta)``: one iteration of textbook CG on
  :math:`V H = B`, :math:`H = AA^\top + I/\tau_\theta`, one system per row of V, each row with
  its own step lengths (Section 4.2.2).

The answers are compared with :func:`penaltyprop.prox.prox_exact` (both prox forms) and, for CG,
with the iteration written out below (:func:`cg_reference`), which the tests hold equal to
:func:`penaltyprop.cg.cg_rows`; the residual is also checked against its definition
:math:`R = B - VH`.
"""
from __future__ import annotations

from ..backend import host_rng
from ..backend import numpy as np
from ..prox import prox_exact
from .verdict import as_array, call, checker, close, compare, over, shapes, unpack

#: (m, N, n_out, tau_theta): N > m+1 (the primal system is the smaller), N < m+1 (the batch
#: system is), N = 1, and a large tau_theta (the proximal term matters little).
PROX_PROBLEMS = ((5, 8, 3, 0.05), (9, 4, 2, 1.0), (3, 1, 4, 0.5), (4, 6, 2, 20.0))
PROX_NAMES = ("W_new", "b_new")
#: the package's modules that compute a prox step or run CG: not for the student
ANSWERS = ("penaltyprop.prox", "penaltyprop.cg", "penaltyprop.authors_cg", "penaltyprop.algorithms",
           "penaltyprop.methods")


def prox_problems(seed=1):
    """``(W, b, a, z_half, tau_theta, description)``: a ReLU-like input and a target near
    the forward pass, as step (c) sees them."""
    rng = host_rng(seed)
    for i, (m, N, n_out, tau_theta) in enumerate(PROX_PROBLEMS):
        W, b = rng.standard_normal((n_out, m)), rng.standard_normal(n_out)
        a = np.maximum(rng.standard_normal((m, N)), 0) + 0.1 * rng.random((m, N))
        z_half = W @ a + b[:, None] + 0.5 * rng.standard_normal((n_out, N))
        yield W, b, a, z_half, tau_theta, (f"problem {i + 1} of {len(PROX_PROBLEMS)}: "
                                           + shapes(W=W, a=a, z_half=z_half, tau_theta=tau_theta))


def eq44(W, b, a, z_half, tau_theta):
    r""":math:`\Theta^{k+1}` of Eq. 44 as ``(W_new, b_new)``, by the package's exact prox."""
    delta = W @ a + b[:, None] - z_half  # z^k - z^{k+1/2}
    DW, db = prox_exact(a, delta, tau_theta)
    return W + DW, b + db


def prox_mistakes(W, b, a, z_half, tau_theta):
    """Known mistakes of both forms: ``[(answers, hint)]``."""
    m, N = a.shape
    A = np.vstack([a, np.ones((1, N))])
    delta = W @ a + b[:, None] - z_half
    W1, b1 = eq44(W, b, a, z_half, tau_theta)
    Wt, bt = eq44(W, b, a, z_half, 1 / tau_theta)  # tau_theta in place of 1/tau_theta
    Theta = np.hstack([W, b[:, None]])
    Ht = np.linalg.solve(A @ A.T + tau_theta * np.eye(m + 1),  # the same, in H only
                         (z_half @ A.T + Theta / tau_theta).T).T
    no_bias = np.linalg.solve(a @ a.T + np.eye(m) / tau_theta, (z_half @ a.T + W / tau_theta).T).T
    no_prox = np.linalg.solve(A @ A.T + np.eye(m + 1) / tau_theta, A @ z_half.T).T  # z A^T H^-1
    G_no_ones = a.T @ a + np.eye(N) / tau_theta  # A^T A without the 1 1^T of the bias row
    D_no_ones = -np.linalg.solve(G_no_ones, delta.T).T @ A.T
    bias_hint = "is the row of ones in A = [a; 1^T] missing? It is what moves b."
    tau_hint = "the identity is divided by tau_theta: AA^T + I/tau_theta (and A^T A + I/tau_theta)."
    return [
        ({"W_new": no_bias, "b_new": b}, bias_hint),
        ({"W_new": W + D_no_ones[:, :m], "b_new": b + D_no_ones[:, m]},
         "A^T A = a^T a + 1 1^T: the row of ones in A = [a; 1^T] adds 1 to every entry."),
        ({"W_new": 2 * W - W1, "b_new": 2 * b - b1},
         "the step points the wrong way: with delta = Theta^k A - z^(k+1/2), "
         "Theta^(k+1) = Theta^k - delta (A^T A + I/tau_theta)^(-1) A^T."),
        ({"W_new": Wt, "b_new": bt}, tau_hint),
        ({"W_new": Ht[:, :m], "b_new": Ht[:, m]}, tau_hint),
        ({"W_new": no_prox[:, :m], "b_new": no_prox[:, m]},
         "Eq. 44's right-hand side is z^(k+1/2) A^T + Theta^k / tau_theta: the proximal term "
         "keeps the step near Theta^k."),
        ({"W_new": W1 - W, "b_new": b1 - b},
         "that is the update D = Theta^(k+1) - Theta^k: return Theta^k + D."),
    ]


def prox_check(student, form):
    """The check of one prox form: ``(largest difference, problems)`` or Wrong."""

    def one(W, b, a, z_half, tau_theta, problem):
        out = call(student, (W, b, a, z_half, tau_theta), problem, answers=ANSWERS)
        want = eq44(W, b, a, z_half, tau_theta)
        got = tuple(as_array(x, n, w.shape, problem) for x, n, w in
                    zip(unpack(out, PROX_NAMES, problem), PROX_NAMES, want))
        hint = (f"the bias column differs: is the row of ones in A = [a; 1^T] missing from the "
                f"{form} system?")
        if close(got[1], want[1]):
            hint = ("b_new is right, W_new is not: compare your products with Eq. 44 "
                    "term by term, transposes included.")
        return compare(got, want, PROX_NAMES, problem, "Eq. 44",
                       prox_mistakes(W, b, a, z_half, tau_theta), hint)

    return over(prox_problems(), one)


@checker("prox_primal", "Eq. 44 (the package's exact prox)")
def check_prox_primal(prox_primal):
    r"""Check ``prox_primal(W, b, a, z_half, tau_theta) -> (W_new, b_new)``, Eq. 44.

    Parameters
    ----------
    prox_primal : callable
        The student's function: W (n_out, m), b (n_out,), a (m, N), z_half (n_out, N),
        tau_theta > 0; it solves the (m+1) x (m+1) system
        :math:`\Theta^{k+1}(AA^\top + I/\tau_\theta) = z^{k+1/2}A^\top + \Theta^k/\tau_\theta`.

    Returns
    -------
    Verdict
        Right, wrong or not done, with a message that says why.
    """
    return prox_check(prox_primal, "primal")


@checker("prox_batch", "Eq. 44 (the package's exact prox)")
def check_prox_batch(prox_batch):
    r"""Check ``prox_batch(W, b, a, z_half, tau_theta) -> (W_new, b_new)``: Eq. 44 from the
    N x N system :math:`A^\top A + I/\tau_\theta` (push-through identity).

    Parameters
    ----------
    prox_batch : callable
        As for :func:`check_prox_primal`.

    Returns
    -------
    Verdict
        Right, wrong or not done, with a message that says why.
    """
    return prox_check(prox_batch, "batch-space")


# --------------------------------------------------------------------------- CG
#: (m, K, n_out, tau_theta) of the CG problems
CG_PROBLEMS = ((4, 7, 3, 0.5), (6, 3, 2, 2.0), (3, 5, 4, 0.1))
CG_NAMES = ("V", "R", "P")


def cg_reference(V, R, P, A, tau_theta, mistake=None):
    r"""One textbook CG iteration on :math:`VH = B`, row by row (the module docstring), and the
    known mistakes by name (``mistake``), for the check's hints."""
    HP = (P @ A) @ A.T  # P A A^T: phi, then its adjoint
    if mistake != "no identity":
        HP = HP + P / tau_theta  # + P / tau_theta: H = A A^T + I / tau_theta
    rr = (R * R).sum(axis=1, keepdims=True)  # |r_i|^2, one per row: (n_out, 1)
    if mistake in ("one alpha", "one alpha and beta"):
        alpha = rr.sum() / (P * HP).sum()
    elif mistake == "alpha pp":
        alpha = rr / (P * P).sum(axis=1, keepdims=True)
    else:
        alpha = rr / (P * HP).sum(axis=1, keepdims=True)
    V_new = V + alpha * P
    R_new = R + alpha * HP if mistake == "residual sign" else R - alpha * HP
    beta = (R_new * R_new).sum(axis=1, keepdims=True) / rr
    if mistake == "one alpha and beta":
        beta = (R_new * R_new).sum() / rr.sum()
    if mistake == "old residual":
        return V_new, R_new, R + beta * P
    if mistake == "beta inverted":
        beta = 1 / beta
    return V_new, R_new, R_new + beta * P


ONE_PER_ROW = ("each row of V is its own linear system: alpha_i = |r_i|^2 / <p_i, (H p)_i> and "
               "beta_i are one per row (sum over axis=1), not one for the whole matrix.")
CG_HINTS = {
    "one alpha": ONE_PER_ROW,
    "one alpha and beta": ONE_PER_ROW,
    "no identity": "H = AA^T + I/tau_theta: H p = (p A) A^T + p / tau_theta; the second term "
                   "is missing.",
    "alpha pp": "the step length is alpha_i = |r_i|^2 / <p_i, (H p)_i>: H belongs in the "
                "denominator.",
    "residual sign": "the residual of V H = B falls: r_new = r - alpha (H p).",
    "old residual": "the new search direction starts from the NEW residual: "
                    "p_new = r_new + beta p.",
    "beta inverted": "beta_i = |r_new,i|^2 / |r_i|^2 (new over old).",
}


def cg_problems(seed=2):
    """``(V, R, P, A, tau_theta, B, description)`` at iterations 0, 1, 2 of each problem."""
    rng = host_rng(seed)
    for i, (m, K, n_out, tau_theta) in enumerate(CG_PROBLEMS):
        a = np.maximum(rng.standard_normal((m, K)), 0) + 0.1 * rng.random((m, K))
        A = np.vstack([a, np.ones((1, K))])  # [a; 1^T], (m+1, K)
        B = -rng.standard_normal((n_out, K)) @ A.T  # -delta A^T, (n_out, m+1)
        V, R, P = np.zeros_like(B), B.copy(), B.copy()  # V_0 = 0: r_0 = p_0 = B
        for it in range(3):
            yield V, R, P, A, tau_theta, B, (f"problem {i + 1} of {len(CG_PROBLEMS)}, iteration "
                                             f"{it + 1}: " + shapes(V=V, A=A, tau_theta=tau_theta))
            V, R, P = cg_reference(V, R, P, A, tau_theta)


@checker("cg_iteration", "textbook CG, row by row")
def check_cg_iteration(cg_iteration):
    r"""Check ``cg_iteration(V, R, P, A, tau_theta) -> (V, R, P)``, one CG iteration per row.

    Parameters
    ----------
    cg_iteration : callable
        The student's function: V, R, P (n_out, m+1), the iterate, its residual
        :math:`R = B - VH` and the search direction; A = [a; 1^T] (m+1, K); tau_theta > 0.
        It is called at iterations 1, 2, 3 of each problem, from the right state.

    Returns
    -------
    Verdict
        Right, wrong or not done, with a message that says why.
    """

    def one(V, R, P, A, tau_theta, B, problem):
        out = call(cg_iteration, (V, R, P, A, tau_theta), problem,
                   "is a product transposed? V, R, P are (n_out, m+1); A is (m+1, K).",
                   answers=ANSWERS)
        want = cg_reference(V, R, P, A, tau_theta)
        got = tuple(as_array(x, n, w.shape, problem) for x, n, w in
                    zip(unpack(out, CG_NAMES, problem), CG_NAMES, want))
        mistakes = [(dict(zip(CG_NAMES, cg_reference(V, R, P, A, tau_theta, name))), hint)
                    for name, hint in CG_HINTS.items()]
        return compare(got, want, CG_NAMES, problem, "textbook CG", mistakes,
                       "alpha_i = |r_i|^2/<p_i, Hp_i>, V += alpha p, r -= alpha Hp, "
                       "beta_i = |r_new|^2/|r|^2, p = r_new + beta p, row by row.")

    return over(cg_problems(), one)
