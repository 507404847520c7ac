r"""First-order optimizers that consume any direction with the structure of theta (Section 5.3).

ProxProp is a first-order oracle: the direction
:math:`d = (\theta^k - \theta^{k+1})/\tau` of :func:`penaltyprop.proxprop_direction` is
:math:`M^{-1}\nabla J` on the prox layers (Proposition 2) and :math:`\nabla J` on the last
layer, and a descent direction (Propositions 4, 5). An optimizer here does not know which
oracle produced d: BackProp's :math:`\nabla J` and ProxProp's direction go in the same way.

Why one module of ~360 lines: SGD (with momentum, Nesterov, weight decay) and Adam share their
checks, their state type and their factory, and half of the module is their docstrings; a
third optimizer would be the moment to split it.

The interface follows ``jax.example_libraries.optimizers``: pure functions of explicit state,
arrays in, new arrays out, nothing modified in place::

    opt = pp.optim.sgd(lr=0.05, momentum=0.95, nesterov=True)
    state = opt.init(theta)
    theta, state = opt.update(theta, direction, state)

The formulas are PyTorch's (``torch.optim.SGD`` with dampening 0, ``torch.optim.Adam``), so
the paper's settings ("Nesterov momentum 0.95", "Adam with step size 1e-3") mean here what
they meant in the authors' PyTorch code. With :math:`\eta` the learning rate (the paper's
:math:`\tau`), :math:`\lambda` the weight decay and :math:`d_t` the direction at step t = 1, 2, ...:

* SGD:       :math:`g_t = d_t + \lambda\theta_{t-1}`, :math:`\theta_t = \theta_{t-1} - \eta g_t`;
* momentum:  :math:`b_t = \mu b_{t-1} + g_t` (:math:`b_0 = 0`),
  :math:`\theta_t = \theta_{t-1} - \eta b_t`;
* Nesterov:  :math:`b_t` as above, :math:`\theta_t = \theta_{t-1} - \eta (g_t + \mu b_t)`;
* Adam:      :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`,
  :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`,
  :math:`\theta_t = \theta_{t-1} - \eta\,\hat m_t / (\sqrt{\hat v_t} + \epsilon)` with
  :math:`\hat m_t = m_t/(1-\beta_1^t)`, :math:`\hat v_t = v_t/(1-\beta_2^t)`.

Weight decay is PyTorch's coupled L2 term :math:`\lambda\theta` added to the direction
(for Adam too: ``torch.optim.Adam``, not AdamW), on weights and biases alike.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

from .backend import array_module

OPTIMIZERS = ("sgd", "nesterov", "adam")


class OptState(NamedTuple):
    """The state of an optimizer after ``step`` updates.

    Attributes
    ----------
    step : int
        Number of updates taken so far (t - 1 before update t).
    slots : dict of str -> list of (W, b) pairs
        Per-parameter buffers with the structure of theta: ``{"momentum": b}`` for SGD with
        momentum, ``{"m": m, "v": v}`` for Adam, ``{}`` for plain SGD.
    """

    step: int
    slots: dict


def _check_real(value, name, low, high=math.inf, low_open=False, high_open=True):
    """``value`` as a float if it is a real number in the interval, else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got {value!r}")
    return float(value)


def _check_direction(theta, direction):
    """direction must have the structure of theta: same number of (W, b) pairs, same shapes."""
    if not isinstance(direction, (list, tuple)) or len(direction) != len(theta):
        got = len(direction) if isinstance(direction, (list, tuple)) else type(direction).__name__
        raise ValueError(f"direction must be a list of {len(theta)} (W, b) pairs like theta, "
                         f"got {got}")
    for l, ((W, b), (dW, db)) in enumerate(zip(theta, direction)):
        if tuple(dW.shape) != tuple(W.shape) or tuple(db.shape) != tuple(b.shape):
            raise ValueError(f"direction[{l}] has shapes ({tuple(dW.shape)}, {tuple(db.shape)}), "
                             f"theta[{l}] has ({tuple(W.shape)}, {tuple(b.shape)})")


def _descend(p, lr, step):
    """p - lr * step as one new array (two passes, one allocation)."""
    out = step * lr
    return array_module(p).subtract(p, out, out=out)


def _zeros_like(theta):
    xp = array_module(theta[0][0])
    return [(xp.zeros_like(W), xp.zeros_like(b)) for W, b in theta]


class SGD:
    r"""Stochastic gradient descent with optional (Nesterov) momentum and weight decay.

    Build it with :func:`sgd`. One update, for every array p of theta and its direction d
    (PyTorch's ``torch.optim.SGD`` with dampening 0):

    .. math::
        g = d + \lambda p, \qquad b \leftarrow \mu b + g \;(b = 0 \text{ initially}), \qquad
        p \leftarrow p - \eta \cdot \begin{cases} g & \mu = 0 \\ b & \text{momentum} \\
        g + \mu b & \text{Nesterov.} \end{cases}

    With :math:`\mu = \lambda = 0` and :math:`\eta = \tau`, fed the ProxProp direction, this is
    Algorithm 2 exactly; fed :math:`\nabla J`, Algorithm 1 (Proposition 1).
    """

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr = _check_real(lr, "lr", 0.0, low_open=True)
        self.momentum = _check_real(momentum, "momentum", 0.0, 1.0)
        if not isinstance(nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0 (as in torch.optim.SGD)")
        self.nesterov = nesterov
        self.weight_decay = _check_real(weight_decay, "weight_decay", 0.0)

    @property
    def config(self) -> dict:
        """The hyperparameters as a JSON-able dict (``name`` is ``"sgd"`` or ``"nesterov"``)."""
        return {"name": "nesterov" if self.nesterov else "sgd", "lr": self.lr,
                "momentum": self.momentum, "weight_decay": self.weight_decay}

    def init(self, theta) -> OptState:
        """State before the first update: a zero momentum buffer shaped like theta (if any)."""
        slots = {"momentum": _zeros_like(theta)} if self.momentum > 0 else {}
        return OptState(0, slots)

    def update(self, theta, direction, state):
        r"""One step along ``-direction``; returns ``(theta_new, state_new)``, inputs untouched.

        Parameters
        ----------
        theta : list of (W, b) pairs
            The parameters.
        direction : list of (dW, db) pairs
            Of the same shapes: :math:`\nabla J` or the ProxProp direction.
        state : OptState
            From :meth:`init` or a previous :meth:`update`.
        """
        _check_direction(theta, direction)
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        new_theta, new_buf = [], []
        for l, (params, grads) in enumerate(zip(theta, direction)):
            new_params, new_bufs = [], []
            for i, (p, d) in enumerate(zip(params, grads)):
                # In-place operators (+=, out=) write only to arrays allocated in this loop:
                # the same arithmetic as the formulas, with fewer temporaries of theta's size.
                g = d + wd * p if wd else d  # g = d + lambda p (coupled L2 weight decay)
                if mu:
                    b = state.slots["momentum"][l][i] * mu
                    b += g  # b = mu b + g
                    new_bufs.append(b)
                    if self.nesterov:
                        step = b * mu
                        step += g  # Nesterov: g + mu b
                    else:
                        step = b  # heavy ball: b
                else:
                    step = g
                new_params.append(_descend(p, lr, step))  # p - eta step
            new_theta.append(tuple(new_params))
            new_buf.append(tuple(new_bufs))
        slots = {"momentum": new_buf} if mu else {}
        return new_theta, OptState(state.step + 1, slots)

    def __repr__(self):
        return (f"sgd(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay})")


class Adam:
    r"""Adam (Kingma & Ba, 2015) with PyTorch's conventions (``torch.optim.Adam``).

    Build it with :func:`adam`. Update t = 1, 2, ... for every array p and its direction d:

    .. math::
        g = d + \lambda p, \quad m \leftarrow \beta_1 m + (1-\beta_1) g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        p \leftarrow p - \frac{\eta}{1-\beta_1^t}\,
        \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon},

    which is :math:`p - \eta\,\hat m/(\sqrt{\hat v} + \epsilon)` with the bias-corrected
    moments :math:`\hat m = m/(1-\beta_1^t)`, :math:`\hat v = v/(1-\beta_2^t)`; m = v = 0 at t = 0.
    :math:`\epsilon` is Adam's own hyperparameter, not a safeguard added here. With
    ``halve_every`` = H the rate of update t is :math:`\eta / 2^{\lfloor (t-1)/H\rfloor}`
    (a step schedule, as ``LambdaLR(lambda e: 1/2**(e // H))`` stepped per update).
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 halve_every=None):
        self.lr = _check_real(lr, "lr", 0.0, low_open=True)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_real(betas[0], "betas[0]", 0.0, 1.0),
                      _check_real(betas[1], "betas[1]", 0.0, 1.0))
        self.eps = _check_real(eps, "eps", 0.0)
        self.weight_decay = _check_real(weight_decay, "weight_decay", 0.0)
        if halve_every is not None and (isinstance(halve_every, bool) or
                                        not isinstance(halve_every, int) or halve_every < 1):
            raise ValueError(f"halve_every must be None or an integer >= 1, got {halve_every!r}")
        self.halve_every = halve_every

    @property
    def config(self) -> dict:
        """The hyperparameters as a JSON-able dict."""
        return {"name": "adam", "lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay,
                **({"halve_every": self.halve_every} if self.halve_every else {})}

    def init(self, theta) -> OptState:
        """State before the first update: zero first and second moments m, v shaped like theta."""
        return OptState(0, {"m": _zeros_like(theta), "v": _zeros_like(theta)})

    def update(self, theta, direction, state):
        """One Adam step (see :class:`Adam`): ``(theta_new, state_new)``, inputs untouched."""
        _check_direction(theta, direction)
        xp = array_module(theta[0][0])
        (beta1, beta2), wd = self.betas, self.weight_decay
        t = state.step + 1
        lr = self.lr / 2 ** ((t - 1) // self.halve_every) if self.halve_every else self.lr
        step_size = lr / (1 - beta1**t)  # eta / (1 - beta1^t)
        sqrt_bc2 = math.sqrt(1 - beta2**t)  # sqrt(1 - beta2^t)
        new_theta, new_m, new_v = [], [], []
        for l, (params, grads) in enumerate(zip(theta, direction)):
            ps, ms, vs = [], [], []
            for i, (p, d) in enumerate(zip(params, grads)):
                # In-place operators write only to arrays allocated in this loop (see SGD).
                g = d + wd * p if wd else d  # g = d + lambda p
                m = state.slots["m"][l][i] * beta1
                m += (1 - beta1) * g  # m = beta1 m + (1 - beta1) g
                v = state.slots["v"][l][i] * beta2
                v += (1 - beta2) * (g * g)  # v = beta2 v + (1 - beta2) g^2
                step = xp.sqrt(v)
                step /= sqrt_bc2
                step += self.eps  # sqrt(v) / sqrt(1 - beta2^t) + eps
                xp.divide(m, step, out=step)  # m / (...)
                ps.append(_descend(p, step_size, step))  # p - eta / (1 - beta1^t) * m / (...)
                ms.append(m)
                vs.append(v)
            new_theta.append(tuple(ps))
            new_m.append(tuple(ms))
            new_v.append(tuple(vs))
        return new_theta, OptState(t, {"m": new_m, "v": new_v})

    def __repr__(self):
        return (f"adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay}"
                + (f", halve_every={self.halve_every})" if self.halve_every else ")"))


def sgd(lr, momentum=0.0, nesterov=False, weight_decay=0.0) -> SGD:
    r"""SGD with optional heavy-ball or Nesterov momentum and L2 weight decay (PyTorch's formulas).

    Parameters
    ----------
    lr : float > 0
        Learning rate :math:`\eta`, the paper's :math:`\tau` (0.05 for BackProp and 1 for
        ProxProp in Section 5.1).
    momentum : float in [0, 1)
        :math:`\mu` (the paper's Nesterov runs use 0.95).
    nesterov : bool
        Nesterov's momentum (needs momentum > 0).
    weight_decay : float >= 0
        :math:`\lambda`, added to the direction as :math:`\lambda\theta`.

    Returns
    -------
    SGD
        With ``init(theta) -> state`` and ``update(theta, direction, state) -> (theta, state)``.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    return SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


def adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, halve_every=None) -> Adam:
    r"""Adam with PyTorch's defaults and formulas (the paper's Section 5.3 uses lr = 1e-3).

    Parameters
    ----------
    lr : float > 0
        Learning rate.
    betas : (beta1, beta2), each in [0, 1)
        The decay rates of the first and second moment estimates.
    eps : float >= 0
        Added to :math:`\sqrt{\hat v}` in the denominator, as in the Adam paper.
    weight_decay : float >= 0
        Coupled L2 term :math:`\lambda\theta` added to the direction.
    halve_every : int >= 1 or None
        Halve the learning rate after every ``halve_every`` updates (Choromanska et al.'s
        schedule is every 8 epochs: ``8 * steps per epoch``); None keeps it constant.

    Returns
    -------
    Adam
        With ``init`` and ``update`` as :func:`sgd`'s.

    Raises
    ------
    ValueError
        Naming the argument that is out of range.
    """
    return Adam(lr, betas=betas, eps=eps, weight_decay=weight_decay, halve_every=halve_every)


def make_optimizer(name, lr, momentum=None, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
    """An optimizer by name, for the command line and configuration files.

    Parameters
    ----------
    name : {"sgd", "nesterov", "adam"}
        ``"sgd"`` (momentum default 0), ``"nesterov"`` (SGD with Nesterov momentum, default
        0.95 as in the paper) or ``"adam"`` (momentum must stay None).
    lr, weight_decay : float
        As in :func:`sgd`.
    momentum : float or None
        None means the default of ``name``.
    betas, eps
        Adam's.

    Raises
    ------
    ValueError
        For an unknown name, or a momentum given to Adam.
    """
    if name == "sgd":
        return sgd(lr, momentum=0.0 if momentum is None else momentum, weight_decay=weight_decay)
    if name == "nesterov":
        return sgd(lr, momentum=0.95 if momentum is None else momentum, nesterov=True,
                   weight_decay=weight_decay)
    if name == "adam":
        if momentum is not None:
            raise ValueError("momentum is not an Adam setting (Adam's are betas and eps)")
        return adam(lr, betas=betas, eps=eps, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def from_config(config: dict):
    """Rebuild an optimizer from its ``config`` dict (as stored in a checkpoint)."""
    config = dict(config)
    name = config.pop("name", None)
    if name in ("sgd", "nesterov"):
        return sgd(config["lr"], momentum=config["momentum"], nesterov=name == "nesterov",
                   weight_decay=config["weight_decay"])
    if name == "adam":
        return adam(config["lr"], betas=tuple(config["betas"]), eps=config["eps"],
                    weight_decay=config["weight_decay"], halve_every=config.get("halve_every"))
    raise ValueError(f"optimizer config must name one of {OPTIMIZERS}, got {name!r}")
