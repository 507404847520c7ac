r"""Notebook 01: one sweep of Algorithm 1 for a network with two linear layers.

The student writes ``algorithm1(theta, X, y, tau)`` for
:math:`X \to \phi(\theta_1, \cdot) \to \mathrm{ReLU} \to \phi(\theta_2, \cdot) \to` mean softmax
cross-entropy, with :math:`\rho = \gamma = 1/\tau`: the forward pass (Eq. 7), step (a) (Eqs. 8,
12), step (b) on :math:`z_1` (Eq. 9; :math:`a_0 = X` is data) and step (c) on :math:`\theta_1`
(Eq. 25). It returns the new ``[(W1, b1), (W2, b2)]``.

The check holds the answer to Proposition 1: :math:`\theta^{k+1} = \theta^k - \tau\nabla J(\theta^k)`,
with :math:`\nabla J` from classical backpropagation (:func:`penaltyprop.gradient`), which knows
nothing of the penalty energy.
"""
from __future__ import annotations

from ..backend import host_rng
from ..forward import forward, gradient
from ..losses import cross_entropy_grad
from ..network import mlp
from .verdict import Wrong, as_array, call, checker, close, compare, over, shapes, unpack

#: (n0, n1, n2, N, tau): input width, hidden width, classes, samples, step size. Unequal
#: sizes expose transposed products; n0 = n1 in the third lets a wrong layer's input through
#: the shapes, so that the values catch it; N = 1 is one sample.
PROBLEMS = ((5, 4, 3, 7, 0.5), (3, 6, 4, 1, 1.0), (4, 4, 3, 6, 0.2), (6, 5, 2, 9, 2.0))

NAMES = ("W1", "b1", "W2", "b2")

#: the package's modules that compute the sweep (or the gradient it equals): not for the student
ANSWERS = ("penaltyprop.algorithms", "penaltyprop.forward", "penaltyprop.trace",
           "penaltyprop.methods")


def problems(seed=0):
    """The random problems: ``(theta, X, y, tau, description)`` in float64."""
    rng = host_rng(seed)
    for i, (n0, n1, n2, N, tau) in enumerate(PROBLEMS):
        theta = mlp([n0, n1, n2]).init(seed=seed + i)  # PyTorch's init, float64
        theta = [(2 * W, 2 * b) for W, b in theta]  # larger: more ReLUs off, larger steps
        X = rng.standard_normal((n0, N))
        y = rng.integers(0, n2, N)
        yield theta, X, y, tau, (f"problem {i + 1} of {len(PROBLEMS)}: "
                                 + shapes(W1=theta[0][0], W2=theta[1][0], X=X, tau=tau))


def mistakes(theta, X, y, tau):
    """Known mistakes and their hints: ``[(answers, hint)]``, answers by output name."""
    (W1, b1), (W2, b2) = theta
    net = mlp([W1.shape[1], W1.shape[0], W2.shape[0]])
    a, z = forward(net, theta, X)
    N = X.shape[1]
    e = cross_entropy_grad(z[2], y)  # dL/dz_2 of the MEAN loss, (n2, N)
    on = (z[1] > 0).astype(float)  # sigma'(z_1^k)
    (gW1, gb1), (gW2, gb2) = gradient(net, theta, X, y)

    def layer1(delta, inputs=X):  # step (c), Eq. 25, for a given delta = z^k - z^{k+1/2}
        W, b = W1 - delta @ inputs.T, b1 - delta.sum(axis=1)
        return {"W1": W, "b1": b}

    def scaled(c):  # theta - c tau grad J
        return dict(zip(NAMES, (W1 - c * tau * gW1, b1 - c * tau * gb1, W2 - c * tau * gW2,
                                b2 - c * tau * gb2)))

    # A mistake matches when it explains every wrong output, so one that changes only layer 1
    # goes before a broader one that also changes layer 1 the same way (the global sign).
    out = [
        (scaled(N), "every update is N times too large: J is the MEAN loss, so "
                    "e = (softmax(z_2) - onehot(y)) / N (Eq. 12)."),
        ({"W1": W1 + tau * gW1, "b1": b1 + tau * gb1},
         "layer 1 moves the wrong way: with delta = z_1^k - z_1^(k+1/2), step (c) is "
         "W_1 - delta a_0^T (Eq. 25)."),
        (scaled(-1), "every update has the wrong sign: descent subtracts, W_2 - tau e a_1^T "
                     "(Eq. 12), with e = softmax(z_2) - onehot(y), not the reverse."),
        (layer1(tau * W2.T @ e),
         "layer 1 is off: step (b) (Eq. 9) multiplies by the ReLU's derivative at z_1^k, "
         "(z_1 > 0)."),
        ({"b1": b1}, "b_1 did not move: its update is -delta 1 (the row of ones in "
                     "A = [a_0; 1^T])."),
        ({"b2": b2}, "b_2 did not move: its update is -tau e 1 (Eq. 12, the row of ones in A)."),
        (layer1(tau * on * ((W2 - tau * gW2).T @ e)),
         "Eq. 8 moves a_1 with theta^k: compute a_1^(k+1/2) = a_1 - tau W_2^T e with the OLD "
         "W_2, before W_2 changes."),
        (layer1(on * (W2.T @ e)),
         "layer 1's step is 1/tau times too small: step (a) moves a_1 by tau W_2^T e (Eq. 8), "
         "and steps (b), (c) have size tau gamma = tau rho = 1."),
    ]
    if W1.shape[1] == W1.shape[0]:  # a_1 has the shape of a_0 = X: an off-by-one fits
        out.append((layer1(tau * on * (W2.T @ e), inputs=a[1]),
                    "step (c) on layer 1 multiplies delta by layer 1's INPUT a_0 = X, not by "
                    "a_1 (off by one layer)."))
    return out


def one_problem(algorithm1, theta, X, y, tau, problem):
    """The largest difference on one problem, or Wrong."""
    out = call(algorithm1, (theta, X, y, tau), problem,
               "a transposed product? W_l is (n_l, n_(l-1)), and samples are columns.",
               answers=ANSWERS)
    if not isinstance(out, (list, tuple)) or len(out) != 2:
        raise Wrong(f"It should return [(W1, b1), (W2, b2)], got {type(out).__name__} "
                    f"({problem}).")
    got = unpack(out[0], ("W1", "b1"), problem) + unpack(out[1], ("W2", "b2"), problem)
    (W1, _), (W2, _) = theta
    g = gradient(mlp([W1.shape[1], W1.shape[0], W2.shape[0]]), theta, X, y)
    want = tuple(p - tau * gp for pair, gpair in zip(theta, g) for p, gp in zip(pair, gpair))
    got = tuple(as_array(x, n, w.shape, problem) for x, n, w in zip(got, NAMES, want))
    hint = ("layer 2 (step (a)) is right: look at steps (b) and (c) (Eqs. 9, 25)."
            if all(close(g_, w_) for g_, w_ in zip(got[2:], want[2:])) else
            "start with step (a): W_2 - tau e a_1^T, b_2 - tau e 1, e = dL/dz_2 (Eq. 12).")
    return compare(got, want, NAMES, problem, "Proposition 1", mistakes(theta, X, y, tau), hint)


@checker("algorithm1", "Proposition 1 (theta - tau grad J by classical backprop)")
def check_algorithm1(algorithm1):
    r"""Check ``algorithm1(theta, X, y, tau) -> [(W1, b1), (W2, b2)]``, one sweep of Algorithm 1.

    Parameters
    ----------
    algorithm1 : callable
        The student's function. ``theta`` is ``[(W1, b1), (W2, b2)]`` with W1 (n1, n0),
        b1 (n1,), W2 (n2, n1), b2 (n2,); X (n0, N), y (N,) int labels, tau > 0. ReLU between
        the layers, mean softmax cross-entropy, rho = gamma = 1/tau.

    Returns
    -------
    Verdict
        Right when the new parameters equal :math:`\theta - \tau\nabla J` (Proposition 1) on
        every problem; else what differs, with a hint.
    """
    return over(problems(), lambda *p: one_problem(algorithm1, *p))
