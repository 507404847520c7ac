r"""Online alternating minimisation with auxiliary variables: Choromanska et al., ICML 2019.

**Objective** on a minibatch (X, y) of N samples, with the codes :math:`z_l` (the hidden
pre-activations, l = 1..K-1) as variables and :math:`\sigma(z_0) := X`:

.. math:: F(\theta, z) = \frac1N\sum_{i=1}^N\Big(\ell_{y_i}\big(\phi(\theta_K, \sigma(z_{K-1}))_i\big)
          + \frac{\mu}{2}\sum_{l=1}^{K-1}\|z_{l,i} - \phi(\theta_l, \sigma(z_{l-1}))_i\|^2\Big),

the mean loss J's scale (the source weighs the loss by 1/mu and means the squares instead).

**Per minibatch** (the source's AM-Adam and its code, IBM/online-alt-min):

1. a forward pass gives the codes' starting values :math:`z_l^0` and J;
2. the codes, from the top down, each take ``inner_steps`` gradient steps of size ``inner_lr``
   (default :math:`1/\mu`) on its local objective, per sample (gradients of the summand of
   sample i, i.e. N times those of F); the layer below is still at its forward value, so its
   penalty anchors the code at :math:`z_l^0`:

   .. math:: f_{K-1}(z) = \ell_y(\phi(\theta_K, \sigma(z))) + \tfrac{\mu}{2}\|z - z^0_{K-1}\|^2,

   .. math:: f_l(z) = \tfrac{\mu}{2}\|z_{l+1} - \phi(\theta_{l+1}, \sigma(z))\|^2
             + \tfrac{\mu}{2}\|z - z^0_l\|^2 ;

   (the source takes 5 Nesterov steps; plain gradient steps here);
3. one step per layer on its local term of F at the new codes: the direction ``d`` is
   :math:`\nabla_\theta F`, i.e. :math:`\nabla_{\theta_K}J` at the input :math:`\sigma(z_{K-1})` for the
   last layer and :math:`\tfrac{\mu}{N}\nabla_\theta\tfrac12\|z_l - \phi(\theta, \sigma(z_{l-1}))\|^2` for the
   others. The training loop's optimizer takes that step (the source: Adam), so any optimizer
   of :mod:`penaltyprop.optim` applies.

**Relation to BackProp.** With ``inner_lr = 1/mu`` every code step is the fixed-point step
:math:`z \leftarrow z^0 - \tfrac1\mu\nabla(\text{upper term})(z)`, whose fixed point is the
implicit (proximal) step on the code (ProxProp, Sec. 4.2.1). One such step from the forward
values is the explicit step :math:`z_l = z_l^0 - \tfrac1\mu N e_l` with :math:`e_l` backprop's error;
with ``inputs="forward"`` (the weight steps at the forward inputs :math:`a_{l-1}^0`, as in step (c)
of the paper's Algorithm 1) the direction is then exactly :math:`\nabla J` (Proposition 1's
argument). With the source's ``inputs="codes"`` the first layer's direction is still exact and
the last layer's differs by O(1/mu), but a middle layer l sees its input moved by O(1/mu)
too, weighted by mu: its direction differs from :math:`\nabla_{\theta_l}J` by
:math:`-(W_l(\sigma'(z_{l-1})\odot e_{l-1}))A^\top` + O(1/mu), which does not vanish as mu grows.
With ``inner_steps=0`` the codes stay at their forward values: d is :math:`\nabla J` on the last
layer and 0 on the others.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_choice, check_int, check_positive, check_problem
from ..forward import forward
from ..losses import cross_entropy_and_grad
from . import costs
from .base import OracleMethod, setting
from .lifted import last

INPUTS = ("codes", "forward")


def code_objective(net, theta, l, z, z_above, z0, y, mu):
    r"""The local objective :math:`f_l(z)` of code l (summed over the samples; 0-d array).

    ``z_above`` is :math:`z_{l+1}` (ignored for l = K-1, whose upper term is the loss), ``z0``
    the code's forward value.
    """
    K = net.n_linear
    phi_up, sigma = net.blocks[l].phi, net.blocks[l - 1].sigma
    out = phi_up(theta[l], sigma(z))  # phi(theta_{l+1}, sigma(z))
    if l == K - 1:
        upper = cross_entropy_and_grad(out, y)[0] * z.shape[-1]  # sum of the samples' losses
    else:
        upper = mu / 2 * ((z_above - out) ** 2).sum()
    return upper + mu / 2 * ((z - z0) ** 2).sum()


def code_gradient(net, theta, l, z, z_above, z0, y, mu):
    r""":math:`\nabla f_l(z)`: :math:`\sigma'(z)\odot W_{l+1}^\top g + \mu(z - z^0)`, with g the upper
    term's gradient in :math:`\phi(\theta_{l+1}, \sigma(z))`."""
    K = net.n_linear
    phi_up, sigma = net.blocks[l].phi, net.blocks[l - 1].sigma
    out = phi_up(theta[l], sigma(z))
    if l == K - 1:
        g = cross_entropy_and_grad(out, y)[1] * z.shape[-1]  # per-sample loss gradient
    else:
        g = mu * (out - z_above)
    return sigma.vjp(z, phi_up.adjoint_a(theta[l], g)) + mu * (z - z0)


def code_steps(net, theta, z0, y, mu, inner_steps, inner_lr):
    r"""Step 2: the codes from the top down, as a generator pausing after every inner step.

    Yields ``(l, step, z)``: z is the list of codes (``z[l]``; new arrays). Returns nothing;
    the last yielded z (or ``z0`` without steps) holds the final codes.
    """
    K = net.n_linear
    z = list(z0)
    for l in range(K - 1, 0, -1):  # l = K-1 .. 1
        z_above = z[l + 1] if l < K - 1 else None
        for step in range(1, inner_steps + 1):
            z[l] = z[l] - inner_lr * code_gradient(net, theta, l, z[l], z_above, z0[l], y, mu)
            yield l, step, z


def altmin_direction(net, theta, X, y, mu, inner_steps, inner_lr, inputs="codes"):
    r"""``(J, d)``: J at theta and the alternating-minimisation direction :math:`\nabla_\theta F`."""
    K = net.n_linear
    a0, z_fwd = forward(net, theta, X, check=False)  # step 1, Eq. 7
    J, e = cross_entropy_and_grad(z_fwd[K], y)
    _, _, z = last(code_steps(net, theta, z_fwd, y, mu, inner_steps, inner_lr),
                   (None, None, z_fwd))
    N = X.shape[-1]
    d = [None] * K
    for l in range(1, K + 1):  # step 3: each layer's local term at the new codes
        blk = net.blocks[l - 1]
        if inputs == "forward" or l == 1:
            a_in = a0[l - 1]
        else:
            a_in = net.blocks[l - 2].sigma(z[l - 1])  # sigma(z_{l-1}), the updated code
        if l == K:
            if inputs == "codes" and K > 1:
                e = cross_entropy_and_grad(blk.phi(theta[K - 1], a_in), y)[1]
            d[K - 1] = blk.phi.adjoint_theta(a_in, e)  # grad_theta_K of the mean loss
        else:
            r = blk.phi(theta[l - 1], a_in) - z[l]  # phi(theta_l, sigma(z_{l-1})) - z_l
            gW, gb = blk.phi.adjoint_theta(a_in, r)
            d[l - 1] = (mu / N * gW, mu / N * gb)
    return J, d


@dataclass(frozen=True)
class AltMin(OracleMethod):
    r"""Online alternating minimisation with auxiliary variables (see the module docstring).

    Parameters
    ----------
    mu : float > 0, the weight of the penalties (and of the codes' anchors).
    inner_steps : int >= 0, gradient steps per code (the source: 5).
    inner_lr : float > 0 or None, the codes' step size (default 1/mu).
    inputs : ``"codes"`` (default, the source: each layer's step takes the updated code below
        as input) or ``"forward"`` (the forward activations, as step (c) of Algorithm 1).
    """

    name = "altmin"
    default_optimizer = "adam"  # the source's AM-Adam
    default_tau = 0.008  # the source's learning rate (without its halving every 8 epochs)
    mu: float = setting(1.0, "weight mu of the penalties and of the codes' anchors")
    inner_steps: int = setting(5, "gradient steps per code, top down (0: codes stay)")
    inner_lr: float = setting(None, "step size of the code steps (default 1/mu)")
    inputs: str = setting("codes", "inputs of the weight steps: codes (updated) or forward")

    def __post_init__(self):
        object.__setattr__(self, "mu", check_positive(self.mu, "mu"))
        object.__setattr__(self, "inner_steps", check_int(self.inner_steps, "inner_steps", 0))
        if self.inner_lr is not None:
            object.__setattr__(self, "inner_lr", check_positive(self.inner_lr, "inner_lr"))
        check_choice(self.inputs, "inputs", INPUTS)

    @property
    def label(self) -> str:
        return "AltMin"

    @property
    def step_size(self) -> float:
        """The codes' step size: inner_lr, or 1/mu."""
        return self.inner_lr if self.inner_lr is not None else 1.0 / self.mu

    def direction(self, net, theta, X, y, check=True):
        r"""``(J, d)``: the minibatch loss at theta and :math:`\nabla_\theta F` at the new codes."""
        if check:
            check_problem(net, theta, X, y)
        return altmin_direction(net, theta, X, y, self.mu, self.inner_steps, self.step_size,
                                self.inputs)

    def extra_flops(self, shapes):
        """:func:`.costs.altmin_extra_flops`."""
        return costs.altmin_extra_flops(shapes, self)
