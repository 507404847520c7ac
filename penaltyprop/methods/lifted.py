r"""What the lifted methods (BCD, ADMM) share: their state, objective, residuals and block solvers.

Notation: K = L-1 linear layers, ``theta[l-1]`` = :math:`\theta_l`,
:math:`a_0 = X` (n_0, N), :math:`z_l` (n_l, N) for l = 1..K, :math:`a_l` for l = 1..K-1. Unlike
ProxProp's E (Eq. 3), the lifted methods also make the class scores :math:`z_K` a variable,
so that every block, the last layer's included, has a closed-form (or nearly closed-form) step.
Their objective is

.. math:: F(\theta, a, z) = \ell_y(z_K) + \sum_{l=1}^{K} \frac{\rho}{2}\|z_l - \phi(\theta_l, a_{l-1})\|^2
          + \sum_{l=1}^{K-1} \frac{\gamma}{2}\|a_l - \sigma(z_l)\|^2 ,

with the loss :math:`\ell_y` **summed** over the N samples (the sources' scale, so that their
defaults rho = gamma = 1 mean what they mean there). Dividing by N gives ProxProp's
E with the mean loss and weights rho/N, gamma/N, once :math:`z_K = \phi(\theta_K, a_{K-1})`.

The blocks (each a function of a few arrays, returning new arrays):

* :func:`relu_prox`: :math:`\arg\min_z \tfrac{\gamma}{2}(a - \max(z, 0))^2 + \tfrac{c}{2}(z - v)^2`,
  elementwise, by cases;
* :func:`a_step`: :math:`\arg\min_a \tfrac{\gamma}{2}\|a - t\|^2 + \tfrac{\rho}{2}\|z - Wa - b\|^2`,
  an SPD solve of size n_in (or, pushed through, n_out, whichever is smaller);
* :func:`output_prox`: :math:`\arg\min_z \ell_y(z) + \tfrac{c}{2}\|z - v\|^2`, in closed form for
  the squared loss, by gradient steps for softmax cross-entropy (no closed form).
"""
from __future__ import annotations

import contextlib

from ..backend import array_module, to_float
from ..backend import numpy as np
from ..backend.linalg import solve_spd
from ..losses import cross_entropy_and_grad

# The state (LiftedState, its checks and its checkpoint arrays) is in lifted_state.py; its names
# are re-exported here, so that a lifted method reads ``lifted.X`` for everything it shares.
from .lifted_state import (  # noqa: F401
    LiftedState,
    check_lifted_net,
    check_objective_args,
    check_state,
    check_state_shapes,
    init_state,
    last,
    state_arrays,
    state_from_arrays,
)

#: output losses of the lifted methods: softmax cross-entropy (the package's loss) or the
#: squared loss against one-hot labels (Zeng et al.'s loss; closed-form output step)
LOSSES = ("cross_entropy", "squared")

#: a bound on the Hessian of one sample's softmax cross-entropy in its logits:
#: diag(p) - p p^T <= 1/2 I (Böhning's bound), so the output prox's gradient is
#: (c + 1/2)-Lipschitz and a step 1/(c + 1/2) is a descent step
CE_CURVATURE = 0.5


# --------------------------------------------------------------------------- objective
def loss_sum(z, y, loss):
    r""":math:`\ell_y(z)`, summed over the N columns: cross-entropy, or :math:`\tfrac12\|z - Y\|^2`."""
    if loss == "cross_entropy":
        return cross_entropy_and_grad(z, y)[0] * z.shape[1]
    return 0.5 * ((z - one_hot(y, z)) ** 2).sum()


def loss_sum_grad(z, y, loss):
    r""":math:`\nabla\ell_y(z)`, (C, N): softmax(z) - Y, or z - Y."""
    if loss == "cross_entropy":
        return cross_entropy_and_grad(z, y)[1] * z.shape[1]
    return z - one_hot(y, z)


def one_hot(y, like):
    """(C, N) one-hot labels, of like's dtype and backend."""
    xp = array_module(like)
    Y = xp.zeros(like.shape, dtype=like.dtype)
    Y[y, xp.arange(like.shape[1])] = 1
    return Y


def objective(net, theta, a, z, y, rho, gamma, loss, residuals=False):
    r"""F of the module docstring (0-d float64 array): loss on :math:`z_K`, plus both penalties.

    The sums are accumulated in float64, so that a large weight (rho = 1e30 with float32
    variables) gives F's value, not an overflow. With ``residuals=True``, ``(F, act, lin)``:
    also the constraint residuals from the same products (each :math:`\phi(\theta_l, a_{l-1})`
    formed once), host floats: ``act`` = :math:`\|a_l - \sigma(z_l)\|` (l = 1..K-1) and ``lin``
    = :math:`\|z_l - \phi(\theta_l, a_{l-1})\|` (l = 1..K), Frobenius norms."""
    xp = array_module(a[0])
    K = net.n_linear
    F = loss_sum(z[K], y, loss).astype("float64")
    act, lin = [], []
    for l in range(1, K + 1):
        blk = net.blocks[l - 1]
        gap = z[l] - blk.phi(theta[l - 1], a[l - 1])  # (n_l, N)
        F = F + rho / 2 * (gap ** 2).sum(dtype="float64")
        if residuals:
            lin.append(to_float(xp.linalg.norm(gap)))
        if l < K:
            gap = a[l] - blk.sigma(z[l])
            F = F + gamma / 2 * (gap ** 2).sum(dtype="float64")
            if residuals:
                act.append(to_float(xp.linalg.norm(gap)))
    return (F, act, lin) if residuals else F


# --------------------------------------------------------------------------- block solvers
@contextlib.contextmanager
def explain_failure(step, advice, *inputs):
    """Within the block, a failed solve (a system that is not positive definite, a
    ValueError) becomes one ValueError that names ``step`` (e.g. "BCD theta-step of layer 2")
    and says what to change, for this method: ``advice["overflow"]`` when its ``inputs`` are
    not finite (an earlier step diverged or overflowed), else ``advice["solve"]``."""
    try:
        yield
    except ValueError:
        xp = array_module(*inputs)
        if not all(bool(xp.isfinite(x).all()) for x in inputs):
            raise ValueError(f"{step}: its inputs are not finite; {advice['overflow']}") from None
        raise ValueError(f"{step}: its linear system is not positive definite; "
                         f"{advice['solve']}") from None


def overflow_advice(dtype, **weights) -> str:
    """What to say when a lifted method's variables are not finite: an extreme weight for the
    precision (named, with its value), or float64."""
    xp_max = float(np.finfo(dtype).max)
    named = ", ".join(f"{k} = {v:g}" for k, v in weights.items())
    return (f"the variables diverged or overflowed: if a weight is extreme for {dtype} (whose "
            f"largest number is {xp_max:.2g}; {named}), bring it nearer 1, or use float64")


def quiet_overflow():
    """NumPy's overflow warnings off, within a sweep whose result is checked instead
    (:func:`check_finite_sweep`, :func:`explain_failure`): an extreme weight then gives one
    error with advice, not a RuntimeWarning per line."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def in_dtype(dtype, *weights):
    """The weights (rho, gamma, ...) as scalars of the arrays' dtype, so that a sweep stays in
    that dtype on every NumPy: NumPy 1.x promotes a float32 array times a Python float too large
    for float32 (e.g. 1e300) to float64, NumPy 2 does not. Too large a weight becomes inf, and
    the sweep's result check names it (:func:`check_finite_sweep`)."""
    with quiet_overflow():
        return tuple(np.dtype(dtype).type(w) for w in weights)


def check_finite_sweep(method, theta, sweep, advice) -> None:
    """Raise ValueError if a sweep left theta non-finite, naming the sweep and what to change
    (the training loop records it as divergence, with this reason)."""
    xp = array_module(theta[0][0])
    if not bool(xp.stack([xp.isfinite(p).all() for pair in theta for p in pair]).all()):
        raise ValueError(f"{method} sweep {sweep}: its parameters are not finite; "
                         f"{advice['overflow']}")


def relu_prox(a, v, gamma, c):
    r"""Elementwise :math:`\arg\min_z \tfrac{\gamma}{2}(a - \max(z, 0))^2 + \tfrac{c}{2}(z - v)^2`.

    By cases (Zeng et al., the z-step): on :math:`z \ge 0` the minimiser is
    :math:`z_+ = \max((\gamma a + c v)/(\gamma + c), 0)`; on :math:`z \le 0` the first term is the
    constant :math:`\tfrac{\gamma}{2}a^2` and the minimiser :math:`z_- = \min(v, 0)`. The answer is
    the candidate with the smaller value (``z_+`` on a tie).

    Parameters
    ----------
    a, v : array
        Of one shape.
    gamma, c : float > 0
        The weights of the two terms.
    """
    xp = array_module(a, v)
    z_pos = xp.maximum((gamma * a + c * v) / (gamma + c), 0)  # argmin over z >= 0
    z_neg = xp.minimum(v, 0)  # argmin over z <= 0
    f_pos = gamma / 2 * (a - z_pos) ** 2 + c / 2 * (z_pos - v) ** 2
    f_neg = gamma / 2 * a ** 2 + c / 2 * (z_neg - v) ** 2
    return xp.where(f_pos <= f_neg, z_pos, z_neg)


def a_step(theta_next, z_next, t, rho, gamma):
    r""":math:`\arg\min_a \tfrac{\gamma}{2}\|a - t\|^2 + \tfrac{\rho}{2}\|z - W a - b\mathbf 1^\top\|^2`.

    The normal equations :math:`(\rho W^\top W + \gamma I)\,a = \rho W^\top(z - b) + \gamma t` (an
    SPD system of size n_in) in the update form :math:`a = t + (W^\top W + \kappa I)^{-1} W^\top r`,
    :math:`r = z - Wt - b`, :math:`\kappa = \gamma/\rho`; when n_out < n_in the push-through identity
    :math:`(W^\top W + \kappa I)^{-1}W^\top = W^\top(WW^\top + \kappa I)^{-1}` solves with the
    n_out x n_out matrix instead. The N samples are the right-hand sides.

    Parameters
    ----------
    theta_next : (W, b)
        W of shape (n_out, n_in).
    z_next : array, shape (n_out, N)
        z, the next layer's pre-activations (the second term's target).
    t : array, shape (n_in, N)
        t, the point that the first term pulls a towards.
    rho, gamma : float > 0
        The weights of the two terms.
    """
    xp = array_module(z_next)
    W, b = theta_next
    n_out, n_in = W.shape
    kappa = gamma / rho
    r = z_next - W @ t - b[:, None]  # (n_out, N)
    if n_out < n_in:
        G = W @ W.T  # (n_out, n_out)
        G[xp.diag_indices(n_out)] += kappa
        return t + W.T @ solve_spd(G, r)
    G = W.T @ W  # (n_in, n_in)
    G[xp.diag_indices(n_in)] += kappa
    return t + solve_spd(G, W.T @ r)


def output_prox(v, y, c, loss, steps, z0=None):
    r""":math:`\arg\min_z \ell_y(z) + \tfrac{c}{2}\|z - v\|^2`, column by column.

    Squared loss: closed form :math:`z = (Y + c v)/(1 + c)`. Softmax cross-entropy has no
    closed form: ``steps`` gradient steps of size :math:`1/(c + 1/2)` from ``z0`` (default v).
    The objective is c-strongly convex with a (c + 1/2)-Lipschitz gradient (:data:`CE_CURVATURE`),
    so every step lowers it and the distance to the minimiser shrinks by at least
    :math:`1/(2c + 1)` per step.

    Returns a new (C, N) array.
    """
    if loss == "squared":
        return (one_hot(y, v) + c * v) / (1 + c)
    z = v if z0 is None else z0
    step = 1.0 / (c + CE_CURVATURE)
    for _ in range(steps):
        z = z - step * (loss_sum_grad(z, y, loss) + c * (z - v))
    return z
