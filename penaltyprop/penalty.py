r"""The quadratic penalty energy E(theta, a, z) of Eq. 3.

.. math::
    E(\theta, a, z) = \mathcal{L}_y(\phi(\theta_{L-1}, a_{L-2}))
      + \sum_{l=1}^{L-2} \frac{\gamma}{2}\|\sigma(z_l) - a_l\|^2
      + \frac{\rho}{2}\|\phi(\theta_l, a_{l-1}) - z_l\|^2 .

Algorithms 1 and 2 take minimisation steps on E, one block of variables at a time.
The loss term is the *mean* over the batch (as in :func:`penaltyprop.loss`); the
penalty terms are plain sums of squares (Frobenius norms).
"""
from __future__ import annotations

from .backend import array_module
from .checks import check_array, check_plain_array, check_positive, check_problem
from .losses import cross_entropy


def penalty_energy(net, theta, a, z, y, rho, gamma):
    r"""The penalty energy E(theta, a, z) of Eq. 3.

    Parameters
    ----------
    net : Network
        A network with L-1 linear layers.
    theta : list of (W, b) pairs
        L-1 pairs.
    a : list of arrays
        At least L-1 arrays; ``a[l]`` is :math:`a_l` (``a[0]`` is X), as returned by
        :func:`penaltyprop.forward`.
    z : list
        At least L-1 entries; ``z[l]`` is :math:`z_l` for l = 1..L-2 (``z[0]`` is ignored; a
        trailing ``z[L-1]``, the class scores, is ignored too: E recomputes
        :math:`\phi(\theta_{L-1}, a_{L-2})`).
    y : int array, shape (N,)
        Labels.
    rho, gamma : float > 0
        The penalty weights.

    Returns
    -------
    0-d array
        E.
    """
    rho = check_positive(rho, "rho")
    gamma = check_positive(gamma, "gamma")
    Lm1 = net.n_linear  # L-1
    if len(a) < Lm1 or len(z) < Lm1:
        raise ValueError(f"a and z must hold the activations a_0..a_{Lm1 - 1} and z_1..z_{Lm1 - 1} "
                         f"(lists of length >= {Lm1}), got lengths {len(a)} and {len(z)}")
    check_problem(net, theta, a[0], y)
    check_variables(net, a, z)
    E = cross_entropy(net.blocks[-1].phi(theta[-1], a[Lm1 - 1]), y)  # L_y(phi(theta_{L-1}, a_{L-2}))
    for l in range(1, Lm1):  # l = 1 .. L-2
        blk = net.blocks[l - 1]
        E = E + gamma / 2 * ((blk.sigma(z[l]) - a[l]) ** 2).sum()  # gamma/2 ||sigma(z_l) - a_l||^2
        E = E + rho / 2 * ((blk.phi(theta[l - 1], a[l - 1]) - z[l]) ** 2).sum()  # rho/2 ||phi - z_l||^2
    return E


def check_variables(net, a, z):
    """Raise ValueError naming the first a[l] or z[l] (l = 1..L-2) that is not an array of the
    shape :func:`penaltyprop.forward` gives it, with a[0]'s dtype and backend. Their values may
    be non-finite: E of such variables is simply not finite."""
    X = a[0]
    N, xp = X.shape[-1], array_module(X)
    for l in range(1, net.n_linear):  # l = 1 .. L-2
        for name, v, shape in ((f"a[{l}]", a[l], net.blocks[l].phi.in_shape),
                               (f"z[{l}]", z[l], net.blocks[l - 1].phi.out_shape)):
            check_array(v, name)
            check_plain_array(v, name)
            if tuple(v.shape) != (*shape, N):
                raise ValueError(f"{name} must have shape {(*shape, N)} (as pp.forward gives "
                                 f"it), got {tuple(v.shape)}")
            if v.dtype != X.dtype or array_module(v) is not xp:
                raise ValueError(f"{name} has dtype {v.dtype} on {array_module(v).__name__}, but "
                                 f"a[0] (X) has {X.dtype} on {xp.__name__}")


def layer_penalty(phi, theta_l, a_prev, z_target):
    r"""One layer's quadratic :math:`\tfrac12\|\phi(\theta_l, a_{l-1}) - z_l\|^2` (Eqs. 4, 11).

    This is the function whose proximal step Eq. 11 takes; Section 4.1's stability
    argument is about it. Returns a 0-d array.
    """
    return 0.5 * ((phi(theta_l, a_prev) - z_target) ** 2).sum()
