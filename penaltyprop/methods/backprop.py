r"""BackProp: the direction is the gradient :math:`\nabla J` (Eq. 2), by classical backprop.

By Proposition 1 this is also Algorithm 1 (:func:`penaltyprop.penalty_backprop`): one gradient
step on J is a sweep of explicit steps on the penalty energy E.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..algorithms import gradient_step_c, sweep
from ..forward import loss_and_gradient
from .base import OracleMethod


@dataclass(frozen=True)
class BackProp(OracleMethod):
    r"""The gradient :math:`d = \nabla J(\theta; X, y)`, computed by classical backpropagation.

    It has no settings; the optimizer's learning rate is the paper's tau.
    """

    name = "backprop"
    default_tau = 0.05  # Section 5.1: BackProp's best step size with Nesterov momentum

    @property
    def label(self) -> str:
        return "BackProp"

    def direction(self, net, theta, X, y, check=True):
        r"""``(J, grad J)``: classical backprop (``loss_and_gradient`` in ``penaltyprop/forward.py``)."""
        return loss_and_gradient(net, theta, X, y, check=check)

    def penalty_sweep(self, net, theta, X, y, tau):
        """Algorithm 1's sweep with step tau and rho = gamma = 1/tau."""
        return sweep(net, theta, X, y, tau, gradient_step_c(1.0))

    def extra_flops(self, shapes):
        """Nothing: BackProp's products are the reference."""
        return 0

    def step_model(self, pieces):
        """Nothing beside the forward pass, the backward pass and the update."""
        return {}
