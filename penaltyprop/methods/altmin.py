r"""Online alternating minimisation with auxiliary variables: Choromanska et al., ICML 2019.

**Objective** on a minibatch (X, y) of N samples, with the codes :math:`z_l` (the hidden
pre-activations, l = 1..K-1) as variables and :math:`\sigma(z_0) := X`. With
``penalty_scale="sum"`` (the default, the mean loss J's scale):

.. math:: F(\theta, z) = \frac1N\sum_{i=1}^N\Big(\ell_{y_i}\big(\phi(\theta_K, \sigma(z_{K-1}))_i\big)
          + \frac{\mu}{2}\sum_{l=1}^{K-1}\|z_{l,i} - \phi(\theta_l, \sigma(z_{l-1}))_i\|^2\Big).

With ``penalty_scale="mean"`` (the source's code, IBM/online-alt-min): the loss is weighted by
:math:`1/\mu` and each penalty is a mean over the samples *and* the :math:`n_l` units
(PyTorch's ``mse_loss``):
:math:`F = \frac1N\sum_i\big(\tfrac1\mu\ell_{y_i} + \sum_l \tfrac{1}{n_l}\|z_{l,i} - \phi(\cdot)_i\|^2\big)`.
Dividing that by :math:`1/\mu` gives the "sum" form with a weight :math:`2\mu/n_l` in place of
:math:`\mu`: the source's mu = 0.003 on a layer of 500 units is the "sum" form's 1.2e-5.

**Per minibatch** (the source's AM-Adam):

1. a forward pass gives the codes' starting values :math:`z_l^0` and J;
2. the codes, from the top down, each take ``inner_steps`` gradient steps of size ``inner_lr``
   (with Nesterov momentum ``inner_momentum``, restarted for every code, as the source's
   ``torch.optim.SGD``) on its local objective. The layer below is still at its forward
   value, so its penalty anchors the code at :math:`z_l^0`. In the "sum" form, per sample
   (gradients of the summand of sample i, i.e. N times those of F):

   .. math:: f_{K-1}(z) = \ell_y(\phi(\theta_K, \sigma(z))) + \tfrac{\mu}{2}\|z - z^0_{K-1}\|^2,

   .. math:: f_l(z) = \tfrac{\mu}{2}\|z_{l+1} - \phi(\theta_{l+1}, \sigma(z))\|^2
             + \tfrac{\mu}{2}\|z - z^0_l\|^2 ;

   in the "mean" form the source's code loss: :math:`f_{K-1} = \tfrac{1}{\mu N}\sum_i\ell_{y_i}
   + \tfrac{1}{N n_{K-1}}\|z - z^0\|^2` and
   :math:`f_l = \tfrac{1}{N n_{l+1}}\|z_{l+1} - \phi(\cdot)\|^2 + \tfrac{1}{N n_l}\|z - z^0_l\|^2`.
   Both are :func:`code_weights` times three terms;
3. one step per layer on its local term of F at the new codes: the direction ``d`` is
   :math:`\nabla_\theta` of it, i.e. :math:`\nabla_{\theta_K}J` at the input
   :math:`\sigma(z_{K-1})` for the last layer and :math:`c_l\nabla_\theta\tfrac12\|z_l -
   \phi(\theta, \sigma(z_{l-1}))\|^2` for the others, :math:`c_l = \mu/N` ("sum") or
   :math:`2/(N n_l)` ("mean"). The training loop's optimizer takes that step (the source:
   Adam, lr 0.008), so any optimizer of :mod:`penaltyprop.optim` applies.

:meth:`AltMin.source` holds the source's settings (mu = 0.003 in the "mean" form, 5 code
steps of 0.3 with Nesterov momentum 0.9). What the package does not reproduce of the source's
code (docs/family.md): its networks' BatchNorm after every hidden linear layer and their
hidden layers without biases, its standardised inputs, and its Adam rate halved every 8
epochs (the family experiment passes that schedule to :func:`penaltyprop.optim.adam`).

**Relation to BackProp** ("sum" form, no momentum). With ``inner_lr = 1/mu`` every code
step is the fixed-point step :math:`z \leftarrow z^0 - \tfrac1\mu\nabla(\text{upper term})(z)`,
whose fixed point is the implicit (proximal) step on the code (ProxProp, Sec. 4.2.1). One
such step from the forward values is the explicit step :math:`z_l = z_l^0 - \tfrac1\mu N e_l`
with :math:`e_l` backprop's error; with ``inputs="forward"`` (the weight steps at the forward
inputs :math:`a_{l-1}^0`, as in step (c) of the paper's Algorithm 1) the direction is then
exactly :math:`\nabla J` (Proposition 1's argument). With the source's ``inputs="codes"`` the
first layer's direction is still exact and the last layer's differs by O(1/mu), but a middle
layer l sees its input moved by O(1/mu) too, weighted by mu: its direction differs from
:math:`\nabla_{\theta_l}J` by :math:`-(W_l(\sigma'(z_{l-1})\odot e_{l-1}))A^\top` + O(1/mu),
which does not vanish as mu grows. With ``inner_steps=0`` the codes stay at their forward
values: d is :math:`\nabla J` on the last layer and 0 on the others.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_choice, check_int, check_positive, check_problem
from ..forward import forward
from ..losses import cross_entropy_and_grad
from . import costs
from .base import OracleMethod
from .lifted import last
from .settings import setting

INPUTS = ("codes", "forward")
#: how the penalties are scaled: "sum" (F of the module docstring, J's scale) or "mean"
#: (the source's code: means over samples and units, the loss weighted 1/mu)
PENALTY_SCALES = ("sum", "mean")
#: the source's code step (its --lr-codes), the default inner_lr with penalty_scale="mean"
SOURCE_CODE_LR = 0.3


def code_weights(penalty_scale, mu, N, n_code, n_above):
    r"""``(w_loss, w_pen, w_anchor)``: the code objective is
    :math:`w_\ell\sum_i\ell_{y_i} + \tfrac{w_p}{2}\|z_{l+1} - \phi\|^2 + \tfrac{w_a}{2}\|z - z^0\|^2`
    (the upper term is the loss for the last code, the penalty for the others).

    ``"sum"``: (1, mu, mu), per sample. ``"mean"``: (1/(mu N), 2/(N n_above), 2/(N n_code)),
    the source's ``(1/mu) CE + mse_loss``; n_code, n_above are the units of z_l and z_{l+1}.
    """
    if penalty_scale == "sum":
        return 1.0, mu, mu
    return 1.0 / (mu * N), 2.0 / (N * n_above), 2.0 / (N * n_code)


def _units(z):
    """Units per sample of a code (n_l for an MLP; C H W for a convolution's output)."""
    return z.size // z.shape[-1]


def code_objective(net, theta, l, z, z_above, z0, y, mu, penalty_scale="sum"):
    r"""The local objective :math:`f_l(z)` of code l (0-d array; see :func:`code_weights`).

    ``z_above`` is :math:`z_{l+1}` (ignored for l = K-1, whose upper term is the loss), ``z0``
    the code's forward value.
    """
    K = net.n_linear
    phi_up, sigma = net.blocks[l].phi, net.blocks[l - 1].sigma
    out = phi_up(theta[l], sigma(z))  # phi(theta_{l+1}, sigma(z))
    w_loss, w_pen, w_anchor = code_weights(penalty_scale, mu, z.shape[-1], _units(z), _units(out))
    if l == K - 1:
        upper = w_loss * cross_entropy_and_grad(out, y)[0] * z.shape[-1]  # w * sum of losses
    else:
        upper = w_pen / 2 * ((z_above - out) ** 2).sum()
    return upper + w_anchor / 2 * ((z - z0) ** 2).sum()


def code_gradient(net, theta, l, z, z_above, z0, y, mu, penalty_scale="sum"):
    r""":math:`\nabla f_l(z)`: :math:`\sigma'(z)\odot W_{l+1}^\top g + w_a(z - z^0)`, with g the upper
    term's gradient in :math:`\phi(\theta_{l+1}, \sigma(z))` (:func:`code_weights`)."""
    K = net.n_linear
    phi_up, sigma = net.blocks[l].phi, net.blocks[l - 1].sigma
    out = phi_up(theta[l], sigma(z))
    w_loss, w_pen, w_anchor = code_weights(penalty_scale, mu, z.shape[-1], _units(z), _units(out))
    if l == K - 1:
        g = w_loss * cross_entropy_and_grad(out, y)[1] * z.shape[-1]  # w * per-sample gradient
    else:
        g = w_pen * (out - z_above)
    return sigma.vjp(z, phi_up.adjoint_a(theta[l], g)) + w_anchor * (z - z0)


def code_steps(net, theta, z0, y, mu, inner_steps, inner_lr, inner_momentum=0.0,
               penalty_scale="sum"):
    r"""Step 2: the codes from the top down, as a generator pausing after every inner step.

    Each code takes ``inner_steps`` steps of SGD with Nesterov momentum m (PyTorch's formulas,
    buffer b = 0 at the start of each code): :math:`b \leftarrow m b + g`,
    :math:`z \leftarrow z - \eta(g + m b)`, g = :func:`code_gradient`; m = 0 is plain gradient
    descent. Yields ``(l, step, z)``: z is the list of codes (``z[l]``; new arrays). Returns
    nothing; the last yielded z (or ``z0`` without steps) holds the final codes.
    """
    K = net.n_linear
    z = list(z0)
    for l in range(K - 1, 0, -1):  # l = K-1 .. 1
        z_above = z[l + 1] if l < K - 1 else None
        b = 0.0  # momentum buffer, restarted per code
        for step in range(1, inner_steps + 1):
            g = code_gradient(net, theta, l, z[l], z_above, z0[l], y, mu, penalty_scale)
            if inner_momentum:
                b = inner_momentum * b + g
                g = g + inner_momentum * b  # Nesterov
            z[l] = z[l] - inner_lr * g
            yield l, step, z


def altmin_direction(net, theta, X, y, mu, inner_steps, inner_lr, inputs="codes",
                     inner_momentum=0.0, penalty_scale="sum"):
    r"""``(J, d)``: J at theta and the alternating-minimisation direction (step 3)."""
    K = net.n_linear
    a0, z_fwd = forward(net, theta, X, check=False)  # step 1, Eq. 7
    J, e = cross_entropy_and_grad(z_fwd[K], y)
    _, _, z = last(code_steps(net, theta, z_fwd, y, mu, inner_steps, inner_lr, inner_momentum,
                              penalty_scale), (None, None, z_fwd))
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
            c = mu / N if penalty_scale == "sum" else 2.0 / (N * _units(z[l]))
            gW, gb = blk.phi.adjoint_theta(a_in, r)
            d[l - 1] = (c * gW, c * gb)
    return J, d


@dataclass(frozen=True)
class AltMin(OracleMethod):
    r"""Online alternating minimisation with auxiliary variables (see the module docstring).

    Parameters
    ----------
    mu : float > 0
        The weight of the penalties (and of the codes' anchors).
    inner_steps : int >= 0
        Gradient steps per code (the source: 5).
    inner_lr : float > 0 or None
        The codes' step size (default 1/mu with ``penalty_scale="sum"``, the source's 0.3 with
        ``"mean"``).
    inner_momentum : float in [0, 1)
        Nesterov momentum of the code steps (the source: 0.9).
    inputs : {"codes", "forward"}
        ``"codes"`` (default, the source: each layer's step takes the updated code below as
        input) or ``"forward"`` (the forward activations, as step (c) of Algorithm 1).
    penalty_scale : {"sum", "mean"}
        ``"sum"`` (default; F with per-sample sums, the mean loss J's scale) or ``"mean"``
        (the source's code: the loss weighted 1/mu, penalties as means over samples and
        units).

    Notes
    -----
    The optimizer's default (``train --method altmin``) is the source's: Adam, lr 0.008.
    :meth:`source` gives the source's method settings.
    """

    name = "altmin"
    default_optimizer = "adam"  # the source's AM-Adam
    default_tau = 0.008  # the source's learning rate (without its halving every 8 epochs)
    mu: float = setting(1.0, "weight mu of the penalties and of the codes' anchors")
    inner_steps: int = setting(5, "gradient steps per code, top down (0: codes stay)")
    inner_lr: float = setting(None, "step size of the code steps (default 1/mu; 0.3 with "
                                    "penalty_scale mean)")
    inner_momentum: float = setting(0.0, "Nesterov momentum of the code steps (source: 0.9)")
    inputs: str = setting("codes", "inputs of the weight steps: codes (updated) or forward")
    penalty_scale: str = setting("sum", "penalties summed over units (sum) or the source's "
                                        "means with the loss weighted 1/mu (mean)")

    def __post_init__(self):
        object.__setattr__(self, "mu", check_positive(self.mu, "mu"))
        object.__setattr__(self, "inner_steps", check_int(self.inner_steps, "inner_steps", 0))
        if self.inner_lr is not None:
            object.__setattr__(self, "inner_lr", check_positive(self.inner_lr, "inner_lr"))
        m = self.inner_momentum
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1:
            raise ValueError(f"inner_momentum must be a number in [0, 1), got {m!r}")
        object.__setattr__(self, "inner_momentum", float(m))
        check_choice(self.inputs, "inputs", INPUTS)
        check_choice(self.penalty_scale, "penalty_scale", PENALTY_SCALES)

    @classmethod
    def source(cls, **overrides):
        r"""The settings of Choromanska et al.'s code (IBM/online-alt-min, ``run_altmin_sgd.py``):
        ``penalty_scale="mean"``, mu = 0.003, 5 code steps of 0.3 with Nesterov momentum 0.9,
        weight steps at the updated codes. ``overrides`` replace any of them."""
        settings = dict(mu=0.003, inner_steps=5, inner_lr=SOURCE_CODE_LR, inner_momentum=0.9,
                        inputs="codes", penalty_scale="mean")
        return cls(**{**settings, **overrides})

    @property
    def label(self) -> str:
        return "AltMin"

    @property
    def step_size(self) -> float:
        """The codes' step size: inner_lr, or its default (1/mu; 0.3 with "mean")."""
        if self.inner_lr is not None:
            return self.inner_lr
        return 1.0 / self.mu if self.penalty_scale == "sum" else SOURCE_CODE_LR

    def direction(self, net, theta, X, y, check=True):
        r"""``(J, d)``: the minibatch loss at theta and the direction of step 3."""
        if check:
            check_problem(net, theta, X, y)
        return altmin_direction(net, theta, X, y, self.mu, self.inner_steps, self.step_size,
                                self.inputs, self.inner_momentum, self.penalty_scale)

    def extra_flops(self, shapes):
        """:func:`~penaltyprop.methods.costs.altmin_extra_flops`."""
        return costs.altmin_extra_flops(shapes, self)
