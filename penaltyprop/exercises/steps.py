r"""Notebooks 02 and 04: the step-size limit of gradient descent, and Nesterov momentum on any
direction.

* ``lambda_max(X)`` (notebook 02): the largest eigenvalue :math:`\mathscr L` of :math:`AA^\top`,
  :math:`A = [X; \mathbf 1^\top]`, the Hessian of Eq. 4, by power iteration without forming
  :math:`AA^\top` (each step :math:`v \mapsto A(A^\top v)`: the forward map and its adjoint, as CG
  uses them). Gradient descent on Eq. 4 is stable for steps below :math:`2/\mathscr L`. The check
  compares with a dense eigenvalue solver.
* ``nesterov_step(p, d, buf, lr, momentum)`` (notebook 04): one step of SGD with Nesterov
  momentum in PyTorch's form, for any direction d (the gradient, or the ProxProp direction):
  :math:`b \leftarrow \mu b + d`, :math:`p \leftarrow p - \eta(d + \mu b)`. The check runs it for
  several steps beside :func:`penaltyprop.optim.sgd` with ``nesterov=True``.
"""
from __future__ import annotations

from ..backend import host_rng
from ..backend import numpy as np
from ..backend.linalg import eigvalsh
from ..optim import OptState, sgd
from .verdict import Wrong, as_array, call, checker, compare, over, shapes, unpack

#: (n, N): pixels and images of the lambda_max problems (nonnegative, like images)
SPECTRUM_PROBLEMS = ((5, 20), (12, 7), (3, 50))

#: Power iteration's error after k steps shrinks like (lambda_2 / lambda_1)^k. For nonnegative
#: data the top eigenvalue (the direction of the mean) is far above the next: on these problems
#: lambda_2 / lambda_1 < 0.3 (tests/test_exercises.py checks it), so 30 iterations reach 1e-15
#: relative. 1e-6 accepts any answer that has converged, and no mistake the check knows.
SPECTRUM_RTOL = 1e-6


def spectrum_problems(seed=7):
    """``(X, eigenvalues of AA^T, description)``."""
    rng = host_rng(seed)
    for i, (n, N) in enumerate(SPECTRUM_PROBLEMS):
        X = rng.random((n, N))
        A = np.vstack([X, np.ones((1, N))])
        yield X, eigvalsh(A @ A.T), f"problem {i + 1} of {len(SPECTRUM_PROBLEMS)}: " + shapes(X=X)


@checker("lambda_max", "the largest eigenvalue of A A^T (a dense eigenvalue solver)")
def check_lambda_max(lambda_max):
    r"""Check ``lambda_max(X) -> float``, the largest eigenvalue of :math:`AA^\top`, A = [X; 1^T].

    Parameters
    ----------
    lambda_max : callable
        The student's function: X (n, N). Returns a number.

    Returns
    -------
    Verdict
        Right within a relative 1e-6 (:data:`SPECTRUM_RTOL`).
    """

    def one(X, ev, problem):
        out = call(lambda_max, (X,), problem, "A = [X; 1^T] is (n+1, N); v has n+1 entries.",
                   answers=())  # no module of the package computes it; the checks' own do
        if isinstance(out, np.ndarray) and out.size == 1:
            out = out.reshape(())  # v^T A A^T v of a column vector v is a 1 x 1 array: a number
        got = float(as_array(out, "lambda_max(X)", (), problem))
        want = float(ev[-1])
        if abs(got - want) <= SPECTRUM_RTOL * want:
            return abs(got - want)
        n, N = X.shape
        known = {
            float(eigvalsh(X @ X.T)[-1]): "the bias row: A = [X; 1^T], not X alone.",
            float(np.sqrt(want)): "that is A's largest singular value; lambda_max(AA^T) is its "
                                  "square: the Rayleigh quotient v^T A A^T v of a unit v.",
            2 / want: "return L = lambda_max itself (the step limit is 2/L).",
            want / N: "A A^T sums over the samples: do not divide by N.",
        }
        hint = next((h for value, h in known.items() if abs(got - value) <= 1e-6 * abs(value)),
                    None)
        raise Wrong(f"It returned {got:.8g}, the largest eigenvalue of A A^T is {want:.8g} "
                    f"({problem}).", hint or "more iterations? Normalise v after every step and "
                    "return v^T A (A^T v) for the unit vector v.", abs(got - want),
                    hint is not None)

    return over(spectrum_problems(), one)


# --------------------------------------------------------------------------- Nesterov
#: (shape, lr, momentum, steps) of the Nesterov problems
NESTEROV_PROBLEMS = (((3, 4), 0.1, 0.9, 4), ((5,), 0.5, 0.5, 3), ((2, 3), 1.0, 0.95, 4))


@checker("nesterov_step", "pp.optim.sgd(lr, momentum, nesterov=True)")
def check_nesterov_step(nesterov_step):
    r"""Check ``nesterov_step(p, d, buf, lr, momentum) -> (p_new, buf_new)``.

    Parameters
    ----------
    nesterov_step : callable
        The student's function: p, d, buf arrays of one shape (buf = 0 before the first step;
        the check starts from a buffer of earlier steps);
        lr > 0; momentum in (0, 1). Returns the new parameters and buffer.

    Returns
    -------
    Verdict
        Right when several steps in a row agree with the package's optimizer.
    """
    rng = host_rng(8)

    def one(shape, lr, mu, steps, problem):
        # a buffer from earlier steps (b = 0 would make several mistakes agree at first)
        p, b = rng.standard_normal(shape), rng.standard_normal(shape)
        opt = sgd(lr, momentum=mu, nesterov=True)
        theta = [(p, np.zeros(1))]  # the package's optimizer takes (W, b) pairs
        state = OptState(1, {"momentum": [(b, np.zeros(1))]})
        worst = 0.0
        for t in range(steps):
            d = rng.standard_normal(shape)
            where = f"{problem}, step {t + 1}"
            out = call(nesterov_step, (p, d, b, lr, mu), where, answers=("penaltyprop.optim",))
            got = tuple(as_array(x, n, shape, where)
                        for x, n in zip(unpack(out, ("p_new", "buf_new"), where),
                                        ("p_new", "buf_new")))
            theta, state = opt.update(theta, [(d, np.zeros(1))], state)
            want = (theta[0][0], state.slots["momentum"][0][0])
            b_new = mu * b + d
            mistakes = [
                ({"p_new": p - lr * b_new}, "that is classical (heavy-ball) momentum, p - lr b; "
                                            "Nesterov steps along d + momentum b."),
                ({"buf_new": mu * b + (1 - mu) * d, "p_new": p - lr * (d + mu * (mu * b + (1 - mu) * d))},
                 "PyTorch's buffer has no (1 - momentum) factor: b = momentum b + d."),
                ({"p_new": p + lr * (d + mu * b_new)}, "descent subtracts: p - lr (d + momentum b)."),
            ]
            worst = max(worst, compare(got, want, ("p_new", "buf_new"), where,
                                       "the package's Nesterov step", mistakes,
                                       "b = momentum b + d, then p - lr (d + momentum b)."))
            p, b = want  # the next step starts from the right state
        return worst

    cases = [(shape, lr, mu, steps, f"problem {i + 1} of {len(NESTEROV_PROBLEMS)}: p {shape}, "
              f"lr = {lr:g}, momentum = {mu:g}")
             for i, (shape, lr, mu, steps) in enumerate(NESTEROV_PROBLEMS)]
    return over(cases, one)
