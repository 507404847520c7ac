r"""Algorithm 1 (penalty formulation of BackProp) and Algorithm 2 (ProxProp), side by side.

Both algorithms are one function, :func:`_sweep`: a forward pass (Eq. 7), then
minimisation steps on the penalty energy E (Eq. 3), from the last layer down:

* (a) gradient step on E w.r.t. :math:`(\theta_{L-1}, a_{L-2})` (Eqs. 8, 12);
* for l = L-2 .. 1: (b) gradient steps w.r.t. :math:`z_l`, then :math:`a_{l-1}` (Eqs. 9, 10);
  (c) a step w.r.t. :math:`\theta_l`.

They differ in step (c) only: Algorithm 1 takes a gradient step (Eq. 25),
Algorithm 2 a proximal step (Eq. 11). ``_sweep`` receives that step as a function.

Step sizes. In Algorithm 1 step (b) uses :math:`\tau\gamma` (for :math:`z_l`) and
:math:`\tau\rho` (for :math:`a_{l-1}`), step (c) :math:`\tau\rho`; with
:math:`\rho = \gamma = 1/\tau` (the default) all three are 1 and Algorithm 1 is one
gradient-descent step on J (Proposition 1). Algorithm 2 always uses
:math:`\rho = \gamma = 1/\tau` (Eqs. 9-10 carry no step size), and its prox step has its
own step :math:`\tau_\theta`.

Every function returns new parameters; the inputs are never modified.
"""
from __future__ import annotations

from .backend import array_module
from .checks import check_choice, check_int, check_positive, check_problem
from .forward import _forward
from .losses import cross_entropy_and_grad
from .prox import (CG_SPACES, CG_VARIANTS, EXACT_SYSTEMS, ProxInfo, apply_At, choose_system,
                   prox_cg, prox_cg_batch, prox_exact, prox_gradient)

SOLVERS = ("exact", "cg", "gradient")


def _no_trace(step, l, **changed):
    """The default ``trace`` of :func:`_sweep`: nothing is recorded."""


def _scaled(step, v):
    """``step * v``; a step size of exactly 1 (always in ProxProp, by default in Algorithm 1)
    returns v itself instead of a copy: a pass over an (n_l, N) array saved."""
    return v if step == 1 else step * v


def _sub(x, y, out):
    """``x - y``, written into ``out`` (x or y): an array that only the sweep holds and that
    no later step reads. These subtractions allocate no (n_l, N) array: on the CPU, fresh
    large arrays cost page faults, which measured as much as the arithmetic."""
    return array_module(x).subtract(x, y, out=out)


def _sweep(net, theta, X, y, tau, step_z, step_a, step_c, trace=_no_trace):
    r"""Forward pass, then steps (a), (b), (c) on E. Returns ``(J, updates)``.

    ``updates[l-1]`` is :math:`\theta_l^{k+1} - \theta_l^k` as a (dW, db) pair.
    ``step_c(l, phi, theta_l, a_prev, delta)`` returns that update for a hidden layer l,
    given :math:`\delta = z_l^k - z_l^{k+1/2}`; the sweep does not use delta afterwards, so
    step_c may overwrite it.
    ``trace(step, l, **changed)`` is called after the forward pass and after each step
    with the variables that step changed (see :func:`penaltyprop.trace.penalty_steps`);
    the sweep updates its variables in place where no later step reads the old value
    (z_l^{k+1/2} overwrites z_l^k; a_half's memory is reused), so a trace that keeps
    arrays must copy them.
    """
    Lm1 = net.n_linear  # L-1 linear layers
    a, z = _forward(net, theta, X)  # forward pass, Eq. 7
    trace("forward", None, a=a, z=z)
    updates = [None] * Lm1

    # (a) gradient step on E w.r.t. (theta_{L-1}, a_{L-2}), Eqs. 8 and 12.
    phi = net.blocks[-1].phi
    J, e = cross_entropy_and_grad(z[Lm1], y)  # e = grad of L_y at phi(theta_{L-1}, a_{L-2})
    gW, gb = phi.adjoint_theta(a[Lm1 - 1], e)
    updates[Lm1 - 1] = (-tau * gW, -tau * gb)  # Eq. 12
    if Lm1 > 1:
        g = _scaled(tau, phi.adjoint_a(theta[Lm1 - 1], e))  # tau grad_a phi(theta_{L-1}, a) e
        a_half = _sub(a[Lm1 - 1], g, out=g)  # Eq. 8: a_half = a_{L-2}^k - tau W_{L-1}^T e
    trace("a", Lm1, update=updates[Lm1 - 1], a_half=a_half if Lm1 > 1 else None)

    for l in range(Lm1 - 1, 0, -1):  # l = L-2 .. 1
        phi, sigma = net.blocks[l - 1].phi, net.blocks[l - 1].sigma
        # (b) gradient step w.r.t. z_l (sigma(z_l^k) = a_l^k after the forward pass), Eq. 9,
        # written as its step delta = z_l^k - z_l^{k+1/2} (= phi(theta_l^k, a_{l-1}^k) - z_l^{k+1/2}
        # by Eq. 7), which step (c) needs; delta taken as z - z_half would cancel digits.
        r = _sub(a[l], a_half, out=a_half)  # sigma(z_l^k) - a_l^{k+1/2}
        delta = _scaled(step_z, sigma.vjp(z[l], r))  # tau gamma sigma'(z_l^k) (sigma(z) - a_half)
        z_half = _sub(z[l], delta, out=z[l])  # Eq. 9: z_half = z_l^k - delta, in z_l^k's place
        # ... then w.r.t. a_{l-1}; a_0 = X is data, not a variable, so l = 1 skips it.
        if l > 1:
            g = _scaled(step_a, phi.adjoint_a(theta[l - 1], delta))  # tau rho W_l^T delta
            a_half = _sub(a[l - 1], g, out=g)  # Eq. 10: a_half = a_{l-1}^k - tau rho W_l^T delta
        trace("b", l, z_half=z_half, a_half=a_half if l > 1 else None)
        # (c) the step w.r.t. theta_l: the one line where Algorithms 1 and 2 differ.
        updates[l - 1] = step_c(l, phi, theta[l - 1], a[l - 1], delta)
        trace("c", l, update=updates[l - 1])
    return J, updates


def _gradient_step_c(step):
    """Step (c) of Algorithm 1: theta_l - tau rho grad_theta (1/2 ||phi(theta, a) - z_half||^2), Eq. 25."""

    def step_c(l, phi, theta_l, a_prev, delta):
        gW, gb = phi.adjoint_theta(a_prev, delta)  # grad_theta phi(., a_{l-1}) delta
        return (-step * gW, -step * gb)

    return step_c


def _prox_step_c(tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, infos,
                 tau=1.0, cg_space="auto"):
    """Step (c) of Algorithm 2: the proximal step of Eq. 11 on theta_l, by the chosen solver.

    ``tau`` matters only for ``cg_variant="authors"``, whose epsilon is not scale-invariant:
    like the authors' code it solves for the unscaled gradient (internal step tau = 1) and
    multiplies the update by tau afterwards. ``cg_space`` picks where textbook CG runs:
    matrix-free in parameter space (:func:`prox_cg`) or, with the same iterates, in batch
    coordinates (:func:`prox_cg_batch`); ``"auto"`` takes the smaller space, like
    ``exact_system``.
    """

    def step_c(l, phi, theta_l, a_prev, delta):
        P = phi.patches(a_prev)  # (m, K); P = a_{l-1} for a dense layer
        D = phi.to_rows(delta)  # (n_out, K)
        info = ProxInfo(solver) if infos is not None else None
        if solver == "exact":
            DW, db = prox_exact(P, D, tau_theta, system=exact_system, info=info)  # Eq. 44
        elif solver == "cg" and cg_variant == "textbook" and _batch_space(P, cg_space):
            DW, db = prox_cg_batch(P, D, tau_theta, cg_iterations, tol=cg_tol,
                                   history=infos is not None, info=info)  # Eq. 16, by CG
        else:
            grad = apply_At(D, P)  # delta A^T = tau grad_{theta_l} J (Eq. 26), from the P we have
            if solver == "cg" and cg_variant == "authors":
                grad = (grad[0] / tau, grad[1] / tau)  # grad_{theta_l} J, unscaled (Eq. 26)
                DW, db = prox_cg(P, grad, tau_theta, cg_iterations, tol=cg_tol,
                                 history=infos is not None, info=info, variant="authors")
                DW, db = tau * DW, tau * db
            elif solver == "cg":
                DW, db = prox_cg(P, grad, tau_theta, cg_iterations, tol=cg_tol,
                                 history=infos is not None, info=info)
            else:
                DW, db = prox_gradient(grad, tau_theta, info=info)
        if infos is not None:
            info.extra["layer"] = l
            infos.append(info)
        return DW.reshape(phi.weight_shape), db

    return step_c


def _batch_space(P, cg_space):
    """Run textbook CG in batch coordinates? ``"auto"``: when K < m+1, as for the exact solve."""
    if cg_space == "auto":
        return choose_system(*P.shape) == "batch"
    return cg_space == "batch"


def _apply(theta, updates):
    """theta^{k+1} = theta^k + update, as new arrays."""
    return [(W + dW, b + db) for (W, b), (dW, db) in zip(theta, updates)]


# --------------------------------------------------------------------------- Algorithm 1
def _algorithm1_step_sizes(tau, rho, gamma):
    """Checked tau, and Algorithm 1's step sizes tau*gamma (for z_l) and tau*rho (a_{l-1}, theta_l)."""
    tau = check_positive(tau, "tau")
    rho = 1 / tau if rho is None else check_positive(rho, "rho")
    gamma = 1 / tau if gamma is None else check_positive(gamma, "gamma")
    # tau*rho and tau*gamma are exactly 1 by default (no rounding from tau * (1/tau)).
    step_a = 1.0 if rho == 1 / tau else tau * rho
    step_z = 1.0 if gamma == 1 / tau else tau * gamma
    return tau, step_z, step_a


def penalty_backprop(net, theta, X, y, tau, rho=None, gamma=None):
    r"""Algorithm 1: forward pass, then gradient steps (a), (b), (c) on E (Eq. 3).

    Parameters
    ----------
    net : Network with L-1 linear layers.
    theta : list of L-1 (W, b) pairs (not modified).
    X : (n0, N) inputs, one sample per column. y : (N,) int labels.
    tau : float > 0, the step size of every gradient step.
    rho, gamma : float > 0 or None (= 1/tau), the penalty weights of E.

    Returns
    -------
    theta_new : list of (W, b) pairs. With rho = gamma = 1/tau,
    ``theta_new = theta - tau * gradient(net, theta, X, y)`` (Proposition 1).
    """
    tau, step_z, step_a = _algorithm1_step_sizes(tau, rho, gamma)
    check_problem(net, theta, X, y)
    _, updates = _sweep(net, theta, X, y, tau, step_z, step_a, _gradient_step_c(step_a))
    return _apply(theta, updates)


# --------------------------------------------------------------------------- Algorithm 2
def _check_prox_options(tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system,
                        cg_space="auto"):
    tau_theta = check_positive(tau_theta, "tau_theta")
    check_choice(solver, "solver", SOLVERS)
    check_choice(exact_system, "exact_system", EXACT_SYSTEMS)
    check_choice(cg_space, "cg_space", CG_SPACES)
    if cg_variant == "authors" and cg_space == "batch":
        raise ValueError("cg_space='batch' runs textbook CG only; the authors' variant "
                         "(cg_variant='authors') runs in parameter space")
    check_choice(cg_variant, "cg_variant", CG_VARIANTS)
    if solver == "cg":
        if cg_iterations is None:
            raise ValueError("cg_iterations must be given for solver='cg' (e.g. cg_iterations=3)")
        cg_iterations = check_int(cg_iterations, "cg_iterations", 1)
        if cg_tol is not None:
            cg_tol = check_positive(cg_tol, "cg_tol")
    return tau_theta, cg_iterations, cg_tol


def proxprop(net, theta, X, y, tau, tau_theta, solver="exact", cg_iterations=None, cg_tol=None,
             cg_variant="textbook", exact_system="auto", cg_space="auto", return_info=False):
    r"""Algorithm 2 (ProxProp): Eqs. 7-12, hidden layers updated by the prox step of Eq. 11.

    Parameters
    ----------
    net : Network with L-1 linear layers.
    theta : list of L-1 (W, b) pairs (not modified).
    X : (n0, N) inputs, one sample per column. y : (N,) int labels.
    tau : float > 0, step size of the explicit steps (Eqs. 8, 12); rho = gamma = 1/tau.
    tau_theta : float > 0, step size of the proximal steps (Eq. 11).
    solver : ``"exact"`` (Eq. 44, a direct solve), ``"cg"`` (matrix-free CG) or ``"gradient"``
        (the explicit step of size tau_theta on the same quadratic; with tau_theta = 1
        this is Algorithm 1).
    cg_iterations : int >= 1, required for ``solver="cg"``: the number of operator
        applications per layer.
    cg_tol : float > 0 or None: stop CG early once every row's residual has fallen by
        this factor (for ``cg_variant="authors"``: the tol of that code's own rule,
        1e-2 when None).
    cg_variant : ``"textbook"`` (default) or ``"authors"``: the CG of the authors'
        PyTorch code, which is not textbook CG (a search direction aliased to the
        residual, 1e-6 in the denominators, an early stop; solved with tau = 1 and
        scaled by tau afterwards), to reproduce the paper's numbers; see
        :func:`~penaltyprop.prox.prox_cg` and docs/cg_variant.md.
    exact_system : ``"auto"`` (the smaller), ``"primal"`` ((n_in+1)^2) or ``"batch"`` (N x N).
    cg_space : ``"auto"`` (the smaller), ``"parameter"`` (matrix-free: each iteration applies
        phi and its adjoint, :func:`~penaltyprop.prox.prox_cg`) or ``"batch"`` (the same
        iterates in batch coordinates, each iteration one product with the N x N Gram
        matrix, :func:`~penaltyprop.prox.prox_cg_batch`). Textbook CG only.
    return_info : also return one :class:`~penaltyprop.prox.ProxInfo` per hidden layer
        (with the CG residual history).

    Returns
    -------
    theta_new, or ``(theta_new, infos)`` with ``return_info=True``. For the prox layers
    ``theta_new - theta = -tau M^{-1} grad J`` (Proposition 2, Eq. 13); the last layer
    takes the gradient step of Eq. 12.
    """
    tau = check_positive(tau, "tau")
    tau_theta, cg_iterations, cg_tol = _check_prox_options(
        tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, cg_space)
    check_problem(net, theta, X, y)
    infos = [] if return_info else None
    step_c = _prox_step_c(tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, infos,
                          tau=tau, cg_space=cg_space)
    _, updates = _sweep(net, theta, X, y, tau, 1.0, 1.0, step_c)  # rho = gamma = 1/tau
    theta_new = _apply(theta, updates)
    return (theta_new, infos[::-1]) if return_info else theta_new


def _proxprop_direction(net, theta, X, y, tau_theta, solver="exact", cg_iterations=None,
                        cg_tol=None, cg_variant="textbook", exact_system="auto", cg_space="auto"):
    """(J, direction) without input checks: for the training loop."""
    step_c = _prox_step_c(tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, None,
                          cg_space=cg_space)

    def direction_c(l, phi, theta_l, a_prev, delta):
        # Every prox solver is linear in delta and negation is exact in floating point, so
        # the update for -delta is the direction itself: no pass over the (n_out, m) arrays.
        # delta is not used after step (c) (see _sweep): it is negated in place.
        return step_c(l, phi, theta_l, a_prev, array_module(delta).negative(delta, out=delta))

    J, updates = _sweep(net, theta, X, y, 1.0, 1.0, 1.0, direction_c)  # tau = 1
    gW, gb = updates[-1]  # the last layer's explicit step -grad J (Eq. 12 with tau = 1)
    return J, updates[:-1] + [(-gW, -gb)]


def proxprop_direction(net, theta, X, y, tau_theta, solver="exact", cg_iterations=None,
                       cg_tol=None, cg_variant="textbook", exact_system="auto", cg_space="auto"):
    r"""The ProxProp direction :math:`(\theta^k - \theta^{k+1})/\tau` for first-order optimizers.

    By Proposition 2 it equals :math:`M_l^{-1}\nabla_{\theta_l}J` on the prox layers
    (exactly for ``solver="exact"``, approximately for CG) and :math:`\nabla_{\theta_{L-1}}J`
    on the last layer, whatever tau is; it is computed with tau = 1 (DESIGN.md,
    decision 2). An optimizer consumes it like a gradient: plain SGD with learning rate
    tau reproduces :func:`proxprop`.

    Parameters
    ----------
    As :func:`proxprop`, without tau.

    Returns
    -------
    list of (dW, db) pairs with the structure of theta.
    """
    tau_theta, cg_iterations, cg_tol = _check_prox_options(
        tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, cg_space)
    check_problem(net, theta, X, y)
    return _proxprop_direction(net, theta, X, y, tau_theta, solver, cg_iterations, cg_tol,
                               cg_variant, exact_system, cg_space)[1]
