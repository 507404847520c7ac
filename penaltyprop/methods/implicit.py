r"""ProxProp with implicit steps on a and z too: the idea of the paper's Section 4.2.1.

Algorithm 2 takes explicit steps (b) on E w.r.t. :math:`z_l` and :math:`a_{l-1}` (Eqs. 9, 10)
and an implicit one only on :math:`\theta_l` (Eq. 11). Section 4.2.1 considers proximal steps
in (b) too, and notes that the method then minimises a different energy (the error it sends
down is no longer the gradient of the loss). This method takes them, exactly: step (b) on layer
l is the proximal step of size tau on E (Eq. 3, :math:`\rho = \gamma = 1/\tau`), block by block,

.. math:: z_l^{k+1/2} = \arg\min_z E(\theta^k, a^{k+1/2}, z) + \tfrac{1}{2\tau}\|z - z_l^k\|^2
          = \arg\min_z \tfrac12\|\sigma(z) - a_l^{k+1/2}\|^2 + \|z - z_l^k\|^2 ,

elementwise, the ReLU prox by cases (:func:`.lifted.relu_prox` with gamma = 1, c = 2: the linear
penalty and the proximal term are both centred at :math:`z_l^k = \phi(\theta_l, a_{l-1}^k)`); then

.. math:: a_{l-1}^{k+1/2} = \arg\min_a \|a - a_{l-1}^k\|^2
          + \tfrac12\|W_l a + b_l\mathbf 1^\top - z_l^{k+1/2}\|^2
          = a_{l-1}^k - (W_l^\top W_l + 2I)^{-1} W_l^\top \delta_l ,

:math:`\delta_l = z_l^k - z_l^{k+1/2}` (:func:`.lifted.a_step` with rho = 1, gamma = 2, since
:math:`\sigma(z_{l-1}^k) = a_{l-1}^k`). Step (a) stays explicit (Eqs. 8, 12: the
cross-entropy's prox has no closed form) and step (c) is ProxProp's prox step (Eq. 11).

Each implicit step lowers E for every tau, by at least :math:`\tfrac{1}{2\tau}` times the
squared length of the step (the argument of Section 4.1); the explicit steps of Eqs. 9, 10
need small enough steps for that.

**The direction** is :math:`(\theta^k - \theta^{k+1})/\tau` of one sweep. Unlike ProxProp's, it
depends on the sweep's tau (through the cases of the z-step), so the method holds it:
``tau_sweep``. Plain SGD with learning rate ``tau_sweep`` runs the sweep itself. For small
steps the cases are those of the forward pass and the sweep is linear in its error: BackProp's
chain rule with each error :math:`e` sent down as
:math:`\tfrac13\,\sigma'(z)\odot(W^\top W + 2I)^{-1}W^\top e` instead of
:math:`\sigma'(z)\odot W^\top e`; with one hidden layer the direction is ProxProp's with its
hidden layer's part divided by 3.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..algorithms import run_sweep
from ..checks import check_positive, check_problem
from ..forward import forward
from ..losses import cross_entropy_and_grad
from . import costs
from .base import FamilyRun
from .lifted import a_step, relu_prox
from .networks import RELU_MLP
from .proxprop import ProxProp
from .settings import setting


def implicit_sweep(net, theta, X, y, tau, prox):
    r"""One sweep of Algorithm 2 with implicit steps (b) (see the module docstring).

    A generator that pauses after the forward pass and after every step, yielding
    ``(step, l, D, a, z)`` as :func:`penaltyprop.algorithms.sweep` does: ``D[l-1]`` is the
    update :math:`\theta_l^{k+1} - \theta_l^k` once found, ``a[l]``, ``z[l]`` E's variables.
    New arrays throughout; returns J, the minibatch loss at :math:`\theta^k`.

    Parameters
    ----------
    net : Network
        A ReLU MLP with L-1 linear layers.
    theta : list of (W, b) pairs
        The parameters.
    X : array, shape (n0, N)
        Inputs.
    y : array, shape (N,)
        Labels.
    tau : float > 0
        The step size.
    prox : Prox
        :class:`~penaltyprop.prox.Prox`, step (c).
    """
    L1 = net.n_linear
    a_k, z_k = forward(net, theta, X, check=False)  # Eq. 7
    a, z, D = list(a_k), list(z_k), [None] * L1
    yield "forward", None, D, a, z
    phi = net.blocks[-1].phi
    J, e = cross_entropy_and_grad(z_k[L1], y)
    gW, gb = phi.adjoint_theta(a_k[L1 - 1], e)
    D[L1 - 1] = (-tau * gW, -tau * gb)  # Eq. 12
    if L1 > 1:
        a[L1 - 1] = a_k[L1 - 1] - tau * phi.adjoint_a(theta[L1 - 1], e)  # Eq. 8
    yield "a", L1, D, a, z
    for l in range(L1 - 1, 0, -1):  # l = L-2 .. 1
        phi = net.blocks[l - 1].phi
        z[l] = relu_prox(a[l], z_k[l], 1.0, 2.0)  # argmin 1/2||relu(z) - a_l||^2 + ||z - z_l^k||^2
        delta = z_k[l] - z[l]
        if l > 1:  # argmin ||a - a_{l-1}^k||^2 + 1/2||W_l a + b_l - z_l||^2
            a[l - 1] = a_step(theta[l - 1], z[l], a_k[l - 1], 1.0, 2.0)
        yield "b", l, D, a, z
        D[l - 1] = prox.update(phi, a_k[l - 1], delta, tau)  # Eq. 11
        yield "c", l, D, a, z
    return J


@dataclass(frozen=True)
class ImplicitProxProp(ProxProp):
    r"""ProxProp whose steps (b) on :math:`z_l` and :math:`a_{l-1}` are exact proximal steps too.

    Parameters
    ----------
    tau_sweep : float > 0
        The step tau of the sweep whose update, divided by tau, is the direction
        (rho = gamma = 1/tau_sweep).
    tau_theta, solver, cg_iterations, cg_tol, cg_variant, exact_system, cg_space
        Step (c), as :class:`ProxProp`'s (default: the exact prox).
    """

    name = "implicit"
    networks = RELU_MLP  # the z-step is the ReLU prox, the a-step solves with W^T W
    default_tau = 1.0  # with Nesterov momentum, as ProxProp's
    tau_sweep: float = setting(1.0, "step tau of the sweep (b) whose update / tau is the "
                                    "direction; rho = gamma = 1/tau")
    solver: str = setting("exact", "prox solver of step (c): exact (Eq. 44), cg or gradient")

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "tau_sweep", check_positive(self.tau_sweep, "tau_sweep"))

    @classmethod
    def family_run(cls):
        """As ProxProp in the family: the exact prox with tau_theta = 0.05, Nesterov, tau = 1."""
        return FamilyRun(cls(tau_theta=0.05), "nesterov", 1.0)

    def penalty_sweep(self, net, theta, X, y, tau):
        """:func:`implicit_sweep` with step tau."""
        return implicit_sweep(net, theta, X, y, check_positive(tau, "tau"), self.prox)

    def direction(self, net, theta, X, y, check=True):
        r"""``(J, d)``: J at theta and :math:`(\theta^k - \theta^{k+1})/\tau` of one sweep with
        tau = ``tau_sweep``."""
        if check:
            check_problem(net, theta, X, y)
            self.check_net(net)
        J, D = run_sweep(self.penalty_sweep(net, theta, X, y, self.tau_sweep))
        return J, [(-dW / self.tau_sweep, -db / self.tau_sweep) for dW, db in D]

    def extra_flops(self, shapes):
        r"""ProxProp's prox solves, and per a-step (layers 2 .. L-2) the solve of
        :func:`~penaltyprop.methods.costs.a_step_flops` in place of the adjoint product
        :math:`W^\top\delta` (2nmK) that BackProp's count holds."""
        a_steps = sum(costs.a_step_flops(n, m, K) - 2 * n * m * K for n, m, K in shapes[1:-1])
        return costs.proxprop_extra_flops(shapes, self) + a_steps
