r"""Algorithms 1 and 2 one step at a time: every intermediate (theta, a, z) of a sweep.

:func:`penalty_steps` runs the same code as :func:`penaltyprop.penalty_backprop` and
:func:`penaltyprop.proxprop` (their shared generator :func:`~penaltyprop.algorithms.sweep`,
nothing re-implemented) and records the variables of the penalty energy E (Eq. 3) after the forward
pass and after every step (a), (b), (c), so that E can be evaluated after each of them::

    states = pp.penalty_steps(net, theta, X, y, tau=0.1)
    for s in states:
        print(s.step, s.layer, float(pp.penalty_energy(net, s.theta, s.a, s.z, y, rho, gamma)))

It is for teaching and testing: it keeps one copy of the changed variables per step.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from .algorithms import algorithm1_steps, gradient_step_c, prox_step_c, sweep
from .checks import check_choice, check_positive, check_problem
from .methods import Method
from .prox import Prox

ALGORITHMS = ("backprop", "proxprop")  # Algorithm 1, Algorithm 2 (as in penaltyprop.train)


class SweepState(NamedTuple):
    r"""The variables of E (Eq. 3) at one point of a sweep.

    Attributes
    ----------
    step : {"forward", "a", "b", "c"}
        ``"forward"`` (after the forward pass, Eq. 7), ``"a"`` (after step (a): Eqs. 8, 12),
        ``"b"`` (after step (b) on layer l: Eqs. 9, 10) or ``"c"`` (after step (c) on layer l:
        Eq. 25 or Eq. 11).
    layer : int or None
        The paper's l of the step (L-1 for step (a), None for the forward pass).
    theta : list of (W, b) pairs
        L-1 pairs, ``theta[l-1]`` = :math:`\theta_l` (updated layers hold
        :math:`\theta_l^{k+1}`, the others :math:`\theta_l^k`).
    a : list of arrays
        L-1 arrays, ``a[l]`` = :math:`a_l` (:math:`a_l^{k+1/2}` once updated; ``a[0]`` is X).
    z : list
        L-1 entries, ``z[l]`` = :math:`z_l` for l = 1..L-2 (:math:`z_l^{k+1/2}` once updated;
        ``z[0]`` is None). The class scores are not a variable of E and are not kept.

    Notes
    -----
    ``pp.penalty_energy(net, s.theta, s.a, s.z, y, rho, gamma)`` is E at this point.
    """

    step: str
    layer: Optional[int]
    theta: list
    a: list
    z: list


def penalty_steps(net, theta, X, y, tau, rho=None, gamma=None, algorithm="backprop",
                  tau_theta=None, solver="exact", cg_iterations=None, cg_tol=None,
                  exact_system=None, method=None):
    r"""Run one sweep of Algorithm 1 or 2 (or a method's sweep) and return the state after
    every step.

    ``method=pp.BackProp()`` traces Algorithm 1 and ``method=pp.ProxProp(...)`` Algorithm 2 with
    that method's prox settings, as training runs them; ``algorithm=`` with the prox options
    is the same choice spelled out. Any method whose ``penalty_sweep`` gives a sweep of steps
    on E can be traced; the others (BCD, ADMM, AltMin) raise ValueError.

    Parameters
    ----------
    net : Network
        A network with L-1 linear layers.
    theta : list of (W, b) pairs
        L-1 pairs, not modified.
    X : array, shape (n0, N)
        Inputs (for a CNN (C, H, W, N)).
    y : int array, shape (N,)
        Labels.
    tau : float > 0
        The step size.
    rho, gamma : float > 0 or None
        The penalty weights of Algorithm 1; None means 1/tau. Algorithm 2 always uses 1/tau;
        giving them with ``algorithm="proxprop"`` is an error.
    algorithm : {"backprop", "proxprop"}
        ``"backprop"`` (Algorithm 1, gradient step (c), Eq. 25) or ``"proxprop"`` (Algorithm 2,
        proximal step (c), Eq. 11).
    tau_theta, solver, cg_iterations, cg_tol, exact_system : optional
        The prox step of Algorithm 2, as in :func:`penaltyprop.proxprop` (``tau_theta`` is
        required there; only ``algorithm="proxprop"`` takes them).
    method : Method, optional
        A method object instead of ``algorithm`` and its options: its own sweep
        (``method.penalty_sweep``) with step tau and rho = gamma = 1/tau.

    Returns
    -------
    list of SweepState
        The forward pass, (a), then (b), (c) for l = L-2 .. 1; ``2 (L-2) + 2`` states. The
        last state's ``theta`` equals the output of :func:`~penaltyprop.penalty_backprop` (or
        :func:`~penaltyprop.proxprop`) exactly.
    """
    if method is None:
        steps = algorithm_steps(net, theta, X, y, tau, rho, gamma, algorithm, tau_theta, solver,
                                cg_iterations, cg_tol, exact_system)
    else:
        given = [k for k, v in dict(rho=rho, gamma=gamma, tau_theta=tau_theta,
                                    cg_iterations=cg_iterations, cg_tol=cg_tol,
                                    exact_system=exact_system).items() if v is not None]
        if algorithm != "backprop" or solver != "exact" or given:
            raise ValueError("give either method or algorithm and its options (rho, gamma, "
                             "tau_theta, solver, ...), not both")
        if not isinstance(method, Method):
            raise ValueError(f"method must be a method object, got {method!r}")
        tau = check_positive(tau, "tau")
        check_problem(net, theta, X, y)
        method.check_net(net)
        steps = method.penalty_sweep(net, theta, X, y, tau)
        if steps is None:
            raise ValueError(f"penalty_steps traces sweeps of steps on E such as Algorithms 1 "
                             f"and 2: method {method.label} is none (its penalty_sweep is None)")

    states, theta_now = [], list(theta)
    for step, l, D, a, z in steps:  # the sweep builds new arrays: keeping references is safe
        if step in ("a", "c"):  # theta_l^{k+1} = theta_l^k + D_l
            (W, b), (dW, db) = theta[l - 1], D[l - 1]
            theta_now[l - 1] = (W + dW, b + db)
        states.append(SweepState(step, l, list(theta_now), a[:net.n_linear], z[:net.n_linear]))
    return states


def algorithm_steps(net, theta, X, y, tau, rho, gamma, algorithm, tau_theta, solver,
                    cg_iterations, cg_tol, exact_system):
    """The checked sweep of Algorithm 1 or 2 that :func:`penalty_steps` names by its options."""
    check_choice(algorithm, "algorithm", ALGORITHMS)
    if algorithm == "backprop":
        if tau_theta is not None or cg_iterations is not None or cg_tol is not None:
            raise ValueError("tau_theta, cg_iterations and cg_tol only apply to "
                             "algorithm='proxprop'")
        tau, tau_rho, tau_gamma = algorithm1_steps(tau, rho, gamma)
        steps = sweep(net, theta, X, y, tau, gradient_step_c(tau_rho), tau_rho, tau_gamma)
    else:
        if rho is not None or gamma is not None:
            raise ValueError("rho and gamma only apply to algorithm='backprop': "
                             "Algorithm 2 uses rho = gamma = 1/tau")
        if tau_theta is None:
            raise ValueError("tau_theta must be given for algorithm='proxprop'")
        tau = check_positive(tau, "tau")
        prox = Prox(tau_theta, solver, cg_iterations, cg_tol, None, exact_system)
        steps = sweep(net, theta, X, y, tau, prox_step_c(prox, tau))
    check_problem(net, theta, X, y)
    return steps
