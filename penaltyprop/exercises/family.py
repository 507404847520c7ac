r"""Notebook 06: BCD's and ADMM's z-step for ReLU (the ReLU prox by cases), and ADMM's multiplier.

* ``relu_prox(a, v, gamma, c)``: elementwise
  :math:`\arg\min_z f(z) = \tfrac{\gamma}{2}(a - \max(z, 0))^2 + \tfrac{c}{2}(z - v)^2`.
  On :math:`z \ge 0`, f is a quadratic with minimiser :math:`z_+ = \max((\gamma a + cv)/(\gamma + c), 0)`;
  on :math:`z \le 0` the first term is the constant :math:`\tfrac{\gamma}{2}a^2` and the minimiser
  is :math:`z_- = \min(v, 0)`; the answer is the candidate with the smaller f. The check
  compares the student's z with the minimiser (:func:`penaltyprop.methods.lifted.relu_prox`), and
  where the two candidates tie, f at z with the minimum, so that either candidate is accepted.
* ``multiplier_update(lam, z_K, W, b, a, beta)``: ADMM's
  :math:`\lambda \leftarrow \lambda + \beta(z_K - \phi(\theta_K, a_{K-1}))`. The check builds
  :math:`z_K` as the exact output step for the squared loss,
  :math:`z_K = \arg\min_z \tfrac12\|z - Y\|^2 + \langle z, \lambda\rangle + \tfrac{\beta}{2}\|z - \phi\|^2`,
  and holds the answer to the KKT condition of the output constraint,
  :math:`\lambda^{new} = -\nabla\ell_y(z_K) = Y - z_K`: mathematics, not the package.
"""
from __future__ import annotations

from ..backend import host_rng
from ..backend import numpy as np
from ..methods.lifted import relu_prox
from .verdict import RTOL, Wrong, as_array, call, checker, close, compare, over, shapes

#: (shape, gamma, c) of the ReLU prox problems
RELU_PROBLEMS = (((4, 7), 1.0, 1.0), ((3, 1), 10.0, 1.0), ((6, 5), 0.5, 3.0), ((2, 9), 2.0, 0.2))


def relu_objective(z, a, v, gamma, c):
    r""":math:`f(z) = \tfrac{\gamma}{2}(a - \max(z, 0))^2 + \tfrac{c}{2}(z - v)^2`, elementwise."""
    return gamma / 2 * (a - np.maximum(z, 0)) ** 2 + c / 2 * (z - v) ** 2


def relu_problems(seed=3):
    """``(a, v, gamma, c, description)``: a and v of both signs, plus entries at 0 and one tie.

    The tie: for a > 0 and v = a (1 - sqrt((gamma + c) / c)) both candidates z_+ > 0 and
    z_- = v < 0 give f = gamma/2 a^2 (to rounding), and either is the answer.
    """
    rng = host_rng(seed)
    for i, (shape, gamma, c) in enumerate(RELU_PROBLEMS):
        a, v = rng.standard_normal(shape), rng.standard_normal(shape)
        a.flat[0], v.flat[-1] = 0.0, 0.0  # the kink
        a.flat[1] = 1.0
        v.flat[1] = 1.0 - np.sqrt((gamma + c) / c)  # a tie between the two candidates
        yield a, v, gamma, c, (f"problem {i + 1} of {len(RELU_PROBLEMS)}: "
                               + shapes(a=a, gamma=gamma, c=c))


def relu_mistakes(a, v, gamma, c):
    """Known mistakes of the ReLU prox: ``[(z, hint)]``. (Leaving z_+ unclamped, or taking v
    for z_- when v > 0, is no mistake: the comparison of f then picks the other candidate.)"""
    z_lin = (gamma * a + c * v) / (gamma + c)  # the z >= 0 quadratic's minimiser, unclamped
    z_pos, z_neg = np.maximum(z_lin, 0), np.minimum(v, 0)
    z_even = np.maximum((a + v) / 2, 0)  # gamma and c left out
    f = relu_objective
    return [
        (z_pos, "the case z <= 0 is missing: there the first term is the constant gamma/2 a^2, "
                "the best z is min(v, 0); take the candidate with the smaller f."),
        (np.where(f(z_pos, a, v, gamma, c) >= f(z_neg, a, v, gamma, c), z_pos, z_neg),
         "the candidates are right, the choice is not: keep the one with the SMALLER f."),
        (np.where(z_lin >= 0, z_lin, z_neg),
         "choose between z_+ and z_- by comparing f at both, not by the sign of "
         "(gamma a + c v): f is not convex, both can be local minima."),
        (np.where(f(z_even, a, v, gamma, c) <= f(z_neg, a, v, gamma, c), z_even, z_neg),
         "weigh the two terms: z_+ = (gamma a + c v) / (gamma + c)."),
    ]


@checker("relu_prox", "the minimiser of gamma/2 (a - max(z, 0))^2 + c/2 (z - v)^2")
def check_relu_prox(relu_prox_student):
    r"""Check ``relu_prox(a, v, gamma, c) -> z``, the elementwise ReLU prox (BCD's z-step).

    Parameters
    ----------
    relu_prox_student : callable
        The student's function: a, v arrays of one shape; gamma, c > 0. Returns z, same shape.

    Returns
    -------
    Verdict
        Right when z is the minimiser at every entry, to rounding (where the two candidates tie,
        either one).
    """

    def one(a, v, gamma, c, problem):
        out = call(relu_prox_student, (a, v, gamma, c), problem,
                   "work elementwise: no matrix products here.", answers=("penaltyprop.methods",))
        z = as_array(out, "z", a.shape, problem)
        z_star = relu_prox(a, v, gamma, c)
        f, f_star = relu_objective(z, a, v, gamma, c), relu_objective(z_star, a, v, gamma, c)
        # where the two candidates differ but give the same f (to 1e-9), either is the answer;
        # elsewhere the minimiser is unique and z must be it: f near a smooth minimum is
        # quadratic in the error, so f alone would let z be off by ~sqrt(RTOL)
        z_pos, z_neg = np.maximum((gamma * a + c * v) / (gamma + c), 0), np.minimum(v, 0)
        unique = (z_pos == z_neg) | (np.abs(relu_objective(z_pos, a, v, gamma, c)
                                            - relu_objective(z_neg, a, v, gamma, c)) > 1e-9)
        higher = f > f_star + RTOL * (1 + f_star)  # not a minimiser
        off = unique & (np.abs(z - z_star) > RTOL * (1 + np.abs(z_star)))
        bad = higher | off
        if not bad.any():
            return float(np.abs(z - z_star)[unique].max(initial=0.0))
        i = int(np.flatnonzero(bad)[0])
        known = next((h for m, h in relu_mistakes(a, v, gamma, c) if close(z, m)), None)
        what = "is not the minimiser" if higher.any() else "is off the minimiser"
        raise Wrong(f"At {int(bad.sum())} of {a.size} entries z {what}; e.g. "
                    f"a = {a.flat[i]:.3g}, v = {v.flat[i]:.3g}: your z = {z.flat[i]:.8g} "
                    f"(f = {f.flat[i]:.3g}), the minimiser z = {z_star.flat[i]:.8g} "
                    f"(f = {f_star.flat[i]:.3g}) ({problem}).",
                    known or ("f(z) has two pieces: minimise each (z >= 0 and z <= 0), keep the "
                              "smaller." if higher.any() else
                              "each piece's minimiser has a closed form: z_+ = max((gamma a + "
                              "c v)/(gamma + c), 0), z_- = min(v, 0); no iteration needed."),
                    float(np.abs(z - z_star)[bad].max()), known is not None)

    return over(relu_problems(), one)


# --------------------------------------------------------------------------- ADMM
#: (C, n, N, beta): classes, the last layer's input width, samples, beta. The first has
#: lambda = 0 (the first multiplier update); the others a multiplier from earlier sweeps.
MULTIPLIER_PROBLEMS = ((3, 4, 6, 1.0), (4, 2, 5, 0.5), (2, 5, 1, 3.0))


def multiplier_problems(seed=4):
    """``(lam, z_K, W, b, a, beta, Y, description)`` with z_K the exact squared-loss output step."""
    rng = host_rng(seed)
    for i, (C, n, N, beta) in enumerate(MULTIPLIER_PROBLEMS):
        W, b, a = rng.standard_normal((C, n)), rng.standard_normal(C), rng.standard_normal((n, N))
        lam = np.zeros((C, N)) if i == 0 else rng.standard_normal((C, N))
        Y = np.eye(C)[rng.integers(0, C, N)].T  # one-hot labels, (C, N)
        m = W @ a + b[:, None]  # phi(theta_K, a_{K-1})
        # argmin 1/2|z - Y|^2 + <z, lam> + beta/2 |z - m|^2: (z - Y) + lam + beta (z - m) = 0
        z_K = (Y - lam + beta * m) / (1 + beta)
        yield lam, z_K, W, b, a, beta, Y, (f"problem {i + 1} of {len(MULTIPLIER_PROBLEMS)}: "
                                           + shapes(lam=lam, W=W, a=a, beta=beta))


@checker("multiplier_update", "the KKT condition lambda = -grad loss(z_K)")
def check_multiplier_update(multiplier_update):
    r"""Check ``multiplier_update(lam, z_K, W, b, a, beta) -> lam_new``, ADMM's multiplier step.

    Parameters
    ----------
    multiplier_update : callable
        The student's function: lam, z_K (C, N); W (C, n), b (C,), a (n, N) the last layer and
        its input; beta > 0. Returns :math:`\lambda + \beta(z_K - W a - b\mathbf 1^\top)`.

    Returns
    -------
    Verdict
        Right when the new multiplier satisfies the KKT condition :math:`\lambda = Y - z_K`
        (the squared loss's :math:`-\nabla\ell_y(z_K)`) on every problem.
    """

    def one(lam, z_K, W, b, a, beta, Y, problem):
        out = call(multiplier_update, (lam, z_K, W, b, a, beta), problem,
                   "phi(theta_K, a) = W a + b 1^T is (C, N), like lam and z_K.",
                   answers=("penaltyprop.methods",))
        want = Y - z_K  # KKT: lam_new = -grad (1/2 |z - Y|^2) at z_K
        got = as_array(out, "lam_new", want.shape, problem)
        r = z_K - (W @ a + b[:, None])
        mistakes = [
            ({"lam_new": beta * r}, "lambda must accumulate, lambda + beta r: overwriting it with "
                                    "beta r forgets the earlier sweeps (a bug of a public port)."),
            ({"lam_new": lam - beta * r}, "the residual is r = z_K - phi(theta_K, a_(K-1)), and "
                                          "lambda + beta r (the sign)."),
            ({"lam_new": lam + beta * (z_K - W @ a)}, "phi(theta_K, a) = W a + b 1^T: the bias "
                                                     "is missing."),
            ({"lam_new": lam + r}, "the step is beta r: beta is missing."),
        ]
        return compare((got,), (want,), ("lam_new",), problem,
                       "the KKT condition lambda = Y - z_K", mistakes,
                       "lambda_new = lambda + beta (z_K - W a - b 1^T).")

    return over(multiplier_problems(), one)
