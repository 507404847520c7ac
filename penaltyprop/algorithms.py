r"""Algorithm 1 (penalty formulation of BackProp) and Algorithm 2 (ProxProp), side by side.

Both algorithms are one sweep, :func:`sweep`: a forward pass (Eq. 7), then minimisation steps
on the penalty energy E (Eq. 3), from the last layer down:

* (a) gradient step on E w.r.t. :math:`(\theta_{L-1}, a_{L-2})` (Eqs. 8, 12);
* for l = L-2 .. 1: (b) gradient steps w.r.t. :math:`z_l`, then :math:`a_{l-1}` (Eqs. 9, 10);
  (c) a step w.r.t. :math:`\theta_l`.

They differ in step (c) only: Algorithm 1 takes a gradient step (Eq. 25), Algorithm 2 a
proximal step (Eq. 11). The sweep receives that step as a function.

Step sizes. In Algorithm 1 step (b) uses :math:`\tau\gamma` (for :math:`z_l`) and
:math:`\tau\rho` (for :math:`a_{l-1}`), step (c) :math:`\tau\rho`; with
:math:`\rho = \gamma = 1/\tau` (the default) all three are 1 and Algorithm 1 is one
gradient-descent step on J (Proposition 1). Algorithm 2 always uses
:math:`\rho = \gamma = 1/\tau` (Eqs. 9-10 carry no step size), and its prox step has its
own step :math:`\tau_\theta`.

Every function returns new arrays; the inputs are never modified. The sweep is a generator
that pauses after the forward pass and after every step, so that
:func:`penaltyprop.trace.penalty_steps` can show every intermediate state without a line of
bookkeeping in the sweep; the algorithms simply run it to the end (:func:`run_sweep`).
"""
from __future__ import annotations

from .checks import check_positive, check_problem
from .forward import forward
from .losses import cross_entropy_and_grad
from .prox import Prox, ProxInfo


def times(c, v):
    """``c * v``, and ``v`` itself when c is exactly 1 (Algorithm 2's steps, and Algorithm 1's by
    default): one pass over an (n_l, N) array saved, same result."""
    return v if c == 1 else c * v


def sweep(net, theta, X, y, tau, step_c, tau_rho=1.0, tau_gamma=1.0):
    r"""Forward pass, then steps (a), (b), (c) on E; a generator that pauses after each step.

    Parameters
    ----------
    net, theta, X, y : Network, list of (W, b) pairs, arrays
        The problem (checked by the caller).
    tau : float
        The step of Eqs. 8, 12.
    step_c : callable
        ``step_c(phi, theta_l, a_prev, delta)`` returns step (c)'s update
        :math:`\theta_l^{k+1} - \theta_l^k` given :math:`\delta = z_l^k - z_l^{k+1/2}`.
    tau_rho, tau_gamma : float
        The steps of Eqs. 10 and 9 (Algorithm 1: :math:`\tau\rho`, :math:`\tau\gamma`; 1 in
        Algorithm 2).

    Yields
    ------
    step, l, D, a, z : tuple
        After the forward pass (``"forward"``) and after steps ``"a"``, ``"b"``, ``"c"`` of
        layer l: ``D[l-1]`` is the update of :math:`\theta_l` once found, ``a[l]`` and ``z[l]``
        are E's variables (:math:`a_l^{k+1/2}`, :math:`z_l^{k+1/2}` once updated). Its return
        value is J, the minibatch loss at :math:`\theta^k`.
    """
    L1 = net.n_linear  # L - 1 linear layers; theta[l-1] = theta_l
    a_k, z_k = forward(net, theta, X, check=False)  # forward pass, Eq. 7
    a, z, D = list(a_k), list(z_k), [None] * L1  # E's variables; D[l-1] = theta_l^{k+1} - theta_l^k
    yield "forward", None, D, a, z

    # (a) gradient step on E w.r.t. (theta_{L-1}, a_{L-2})
    phi = net.blocks[-1].phi
    J, e = cross_entropy_and_grad(z_k[L1], y)  # e = grad L_y at phi(theta_{L-1}, a_{L-2})
    gW, gb = phi.adjoint_theta(a_k[L1 - 1], e)
    D[L1 - 1] = (-tau * gW, -tau * gb)  # Eq. 12
    if L1 > 1:
        a[L1 - 1] = a_k[L1 - 1] - times(tau, phi.adjoint_a(theta[L1 - 1], e))  # Eq. 8
    yield "a", L1, D, a, z

    for l in range(L1 - 1, 0, -1):  # l = L-2 .. 1
        phi, sigma = net.blocks[l - 1].phi, net.blocks[l - 1].sigma
        # (b) gradient step w.r.t. z_l (sigma(z_l^k) = a_l^k), then w.r.t. a_{l-1}
        delta = times(tau_gamma, sigma.vjp(z_k[l], a_k[l] - a[l]))  # z_l^k - z_l^{k+1/2}
        z[l] = z_k[l] - delta  # Eq. 9
        if l > 1:  # a_0 = X is data, not a variable
            a[l - 1] = a_k[l - 1] - times(tau_rho, phi.adjoint_a(theta[l - 1], delta))  # Eq. 10
        yield "b", l, D, a, z
        # (c) the step w.r.t. theta_l: the one line where Algorithms 1 and 2 differ
        D[l - 1] = step_c(phi, theta[l - 1], a_k[l - 1], delta)  # Eq. 25 or Eq. 11
        yield "c", l, D, a, z
    return J


def run_sweep(steps):
    """Run a :func:`sweep` to its end: ``(J, D)``, the loss and the updates of every layer."""
    while True:
        try:
            _, _, D, _, _ = next(steps)
        except StopIteration as end:  # the generator's return value, J
            return end.value, D


def add(theta, D):
    r""":math:`\theta^{k+1} = \theta^k + D`, layer by layer, as new arrays."""
    return [(W + dW, b + db) for (W, b), (dW, db) in zip(theta, D)]


# --------------------------------------------------------------------------- Algorithm 1
def gradient_step_c(tau_rho):
    r"""Step (c) of Algorithm 1: a gradient step of size :math:`\tau\rho` on
    :math:`\tfrac12\|\phi(\theta, a_{l-1}^k) - z_l^{k+1/2}\|^2`, Eq. 25."""

    def step_c(phi, theta_l, a_prev, delta):
        gW, gb = phi.adjoint_theta(a_prev, delta)  # grad_theta phi(., a_{l-1}) delta
        return (-tau_rho * gW, -tau_rho * gb)

    return step_c


def algorithm1_steps(tau, rho=None, gamma=None):
    r"""Checked :math:`\tau` and Algorithm 1's step sizes :math:`(\tau\rho, \tau\gamma)`; exactly 1
    for :math:`\rho = \gamma = 1/\tau` (None), with no rounding from :math:`\tau\cdot(1/\tau)`."""
    tau = check_positive(tau, "tau")
    tau_rho = 1.0 if rho is None else tau * check_positive(rho, "rho")
    tau_gamma = 1.0 if gamma is None else tau * check_positive(gamma, "gamma")
    return tau, tau_rho, tau_gamma


def penalty_backprop(net, theta, X, y, tau, rho=None, gamma=None):
    r"""Algorithm 1: forward pass, then gradient steps (a), (b), (c) on E (Eq. 3).

    Parameters
    ----------
    net : Network
        A network with L-1 linear layers.
    theta : list of (W, b) pairs
        L-1 pairs, not modified.
    X : array, shape (n0, N)
        Inputs, one sample per column.
    y : int array, shape (N,)
        Labels.
    tau : float > 0
        The step size of every gradient step.
    rho, gamma : float > 0 or None
        The penalty weights of E; None means 1/tau.

    Returns
    -------
    theta_new : list of (W, b) pairs
        With rho = gamma = 1/tau, ``theta_new = theta - tau * gradient(net, theta, X, y)``
        (Proposition 1).

    Examples
    --------
    With rho = gamma = 1/tau, one sweep is one gradient step (Proposition 1):

    >>> import numpy as np
    >>> import penaltyprop as pp
    >>> net = pp.mlp([4, 3, 2])
    >>> theta = net.init(seed=0)
    >>> X = np.random.default_rng(0).random((4, 6))
    >>> y = np.array([0, 1, 1, 0, 1, 0])
    >>> theta1 = pp.penalty_backprop(net, theta, X, y, tau=0.1)
    >>> grad = pp.gradient(net, theta, X, y)
    >>> all(np.allclose(W1, W - 0.1 * gW) and np.allclose(b1, b - 0.1 * gb)
    ...     for (W1, b1), (W, b), (gW, gb) in zip(theta1, theta, grad))
    True
    """
    tau, tau_rho, tau_gamma = algorithm1_steps(tau, rho, gamma)
    check_problem(net, theta, X, y)
    _, D = run_sweep(sweep(net, theta, X, y, tau, gradient_step_c(tau_rho), tau_rho, tau_gamma))
    return add(theta, D)


# --------------------------------------------------------------------------- Algorithm 2
def prox_step_c(prox, tau, infos=None):
    r"""Step (c) of Algorithm 2: the proximal step of Eq. 11, solved as ``prox`` says
    (:class:`~penaltyprop.prox.Prox`); appends one ProxInfo per layer to ``infos`` if given."""

    def step_c(phi, theta_l, a_prev, delta):
        info = None if infos is None else ProxInfo(prox.solver)
        if info is not None:
            infos.append(info)  # l = L-2 first
        return prox.update(phi, a_prev, delta, tau, info)  # theta_l^{k+1} - theta_l^k, Eq. 11

    return step_c


def proxprop(net, theta, X, y, tau, tau_theta, solver="exact", cg_iterations=None, cg_tol=None,
             cg_variant=None, exact_system=None, cg_space=None, return_info=False):
    r"""Algorithm 2 (ProxProp): Eqs. 7-12, hidden layers updated by the prox step of Eq. 11.

    Parameters
    ----------
    net : Network
        A network with L-1 linear layers.
    theta : list of (W, b) pairs
        L-1 pairs, not modified.
    X : array, shape (n0, N)
        Inputs, one sample per column.
    y : int array, shape (N,)
        Labels.
    tau : float > 0
        Step size of the explicit steps (Eqs. 8, 12); rho = gamma = 1/tau.
    tau_theta : float > 0
        Step size of the proximal steps (Eq. 11).
    solver, cg_iterations, cg_tol, cg_variant, exact_system, cg_space : optional
        The prox solver, as :class:`penaltyprop.prox.Prox` documents and checks them:
        ``"exact"`` (Eq. 44), ``"cg"`` (cg_iterations required; ``cg_variant="authors"`` is the
        CG of the authors' code, docs/cg_variant.md) or ``"gradient"`` (the explicit step of
        size tau_theta).
    return_info : bool
        Also return one :class:`~penaltyprop.prox.ProxInfo` per hidden layer (l = 1 first;
        with the CG residual history).

    Returns
    -------
    theta_new : list of (W, b) pairs
        For the prox layers ``theta_new - theta = -tau M^{-1} grad J`` (Proposition 2,
        Eq. 13); the last layer takes the gradient step of Eq. 12.
    infos : list of ProxInfo
        Only with ``return_info=True``: ``(theta_new, infos)`` is returned.

    Examples
    --------
    >>> import numpy as np
    >>> import penaltyprop as pp
    >>> net = pp.mlp([4, 3, 2])
    >>> theta = net.init(seed=0)
    >>> X = np.random.default_rng(0).random((4, 6))
    >>> y = np.array([0, 1, 1, 0, 1, 0])
    >>> theta1 = pp.proxprop(net, theta, X, y, tau=1.0, tau_theta=0.05, solver="exact")
    >>> bool(pp.loss(net, theta1, X, y) < pp.loss(net, theta, X, y))   # the loss went down
    True
    >>> theta_cg = pp.proxprop(net, theta, X, y, tau=1.0, tau_theta=0.05, solver="cg",
    ...                        cg_iterations=3)
    >>> [W.shape for W, b in theta_cg]
    [(3, 4), (2, 3)]
    """
    tau = check_positive(tau, "tau")
    prox = Prox(tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, cg_space)
    check_problem(net, theta, X, y)
    infos = [] if return_info else None
    _, D = run_sweep(sweep(net, theta, X, y, tau, prox_step_c(prox, tau, infos)))
    theta_new = add(theta, D)
    if not return_info:
        return theta_new
    for l, info in enumerate(infos[::-1], start=1):
        info.extra["layer"] = l
    return theta_new, infos[::-1]


def proxprop_direction(net, theta, X, y, tau_theta, solver="exact", cg_iterations=None,
                       cg_tol=None, cg_variant=None, exact_system=None, cg_space=None,
                       check=True, return_loss=False):
    r"""The ProxProp direction :math:`(\theta^k - \theta^{k+1})/\tau` for first-order optimizers.

    By Proposition 2 it equals :math:`M_l^{-1}\nabla_{\theta_l}J` on the prox layers (exactly
    for ``solver="exact"``, approximately for CG) and :math:`\nabla_{\theta_{L-1}}J` on the last
    layer, whatever tau is. So it is Algorithm 2's sweep at tau = 1 (Section 5.3),
    whose step (c) returns :math:`M_l^{-1}\nabla_{\theta_l} J` itself
    (:meth:`~penaltyprop.prox.Prox.direction`). An optimizer consumes it like a gradient: plain
    SGD with learning rate tau reproduces :func:`proxprop`.

    Parameters
    ----------
    net, theta, X, y, tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, cg_space
        As :func:`proxprop`, without tau.
    check : bool
        ``check=False`` skips the input checks (the training loop checks its data once).
    return_loss : bool
        ``return_loss=True`` also returns J at theta.

    Returns
    -------
    d : list of (dW, db) pairs
        With the structure of theta; ``(J, d)`` with ``return_loss``.

    Examples
    --------
    The direction is a descent direction (Proposition 4), and plain SGD with learning rate
    tau on it is Algorithm 2:

    >>> import numpy as np
    >>> import penaltyprop as pp
    >>> net = pp.mlp([4, 3, 2])
    >>> theta = net.init(seed=0)
    >>> X = np.random.default_rng(0).random((4, 6))
    >>> y = np.array([0, 1, 1, 0, 1, 0])
    >>> d = pp.proxprop_direction(net, theta, X, y, tau_theta=0.05)
    >>> grad = pp.gradient(net, theta, X, y)
    >>> bool(sum(np.vdot(dW, gW) + np.vdot(db, gb) for (dW, db), (gW, gb) in zip(d, grad)) > 0)
    True
    >>> theta1 = pp.proxprop(net, theta, X, y, tau=1.0, tau_theta=0.05)
    >>> all(np.allclose(W - dW, W1) for (W, _), (dW, _), (W1, _) in zip(theta, d, theta1))
    True
    """
    prox = Prox(tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, cg_space)
    if check:
        check_problem(net, theta, X, y)

    def direction_c(phi, theta_l, a_prev, delta):  # M_l^{-1} grad_{theta_l} J (Prop. 2)
        return prox.direction(phi, a_prev, delta)

    J, d = run_sweep(sweep(net, theta, X, y, 1.0, direction_c))
    gW, gb = d[-1]  # step (a) gave the last layer's update -grad J (Eq. 12 with tau = 1)
    d[-1] = (-gW, -gb)
    return (J, d) if return_loss else d
