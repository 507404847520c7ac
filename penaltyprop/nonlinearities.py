r"""Nonlinear transfer functions :math:`\sigma` and their derivatives (Section 2).

Each nonlinearity is applied elementwise, so its Jacobian is diagonal and the
vector-Jacobian product that Eq. 9 needs is a componentwise product,

.. math:: \nabla\sigma(z)\, v = \sigma'(z) \odot v .

Every class here offers the same three methods, which is all the algorithms use:
``sigma(z)`` (the forward map), ``derivative(z)`` (:math:`\sigma'(z)`) and
``vjp(z, v)`` (:math:`\nabla\sigma(z)\,v`). Non-elementwise maps between two
linear layers (max pooling, flatten; see :mod:`penaltyprop.conv`) offer the same
three names, so Eqs. 9-10 apply to them unchanged.
"""
from __future__ import annotations

from .backend import array_module


class Elementwise:
    """Base class: an elementwise nonlinearity with its derivative."""

    name = "elementwise"

    def __call__(self, z):
        raise NotImplementedError

    def derivative(self, z):
        r""":math:`\sigma'(z)`, same shape as ``z``."""
        raise NotImplementedError

    def vjp(self, z, v):
        r""":math:`\nabla\sigma(z)\,v = \sigma'(z) \odot v` (the product in Eq. 9)."""
        return self.derivative(z) * v

    def out_shape(self, shape):
        """Shape of sigma(z) for z of ``shape`` (elementwise: unchanged)."""
        return shape

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(Elementwise):
    r""":math:`\sigma(z) = \max(0, z)`, :math:`\sigma'(z) = [z > 0]` (0 at the kink)."""

    name = "relu"

    def __call__(self, z):
        return array_module(z).maximum(z, 0)

    def derivative(self, z):
        return (z > 0).astype(z.dtype)

    def vjp(self, z, v):
        return v * (z > 0)  # a multiply by the mask: several times faster than where(z > 0, v, 0)


class Sigmoid(Elementwise):
    r""":math:`\sigma(z) = 1 / (1 + e^{-z})`, :math:`\sigma'(z) = \sigma(z)(1 - \sigma(z))`."""

    name = "sigmoid"

    def __call__(self, z):
        xp = array_module(z)
        # 0.5 (1 + tanh(z/2)) is the logistic function without overflow for large |z|.
        return 0.5 * (1 + xp.tanh(0.5 * z))

    def derivative(self, z):
        s = self(z)
        return s * (1 - s)


class Tanh(Elementwise):
    r""":math:`\sigma(z) = \tanh z`, :math:`\sigma'(z) = 1 - \tanh^2 z`."""

    name = "tanh"

    def __call__(self, z):
        return array_module(z).tanh(z)

    def derivative(self, z):
        t = array_module(z).tanh(z)
        return 1 - t * t


class Identity(Elementwise):
    r""":math:`\sigma(z) = z` (no nonlinearity)."""

    name = "identity"

    def __call__(self, z):
        return z

    def derivative(self, z):
        return array_module(z).ones_like(z)

    def vjp(self, z, v):
        return v


ACTIVATIONS = {cls.name: cls for cls in (ReLU, Sigmoid, Tanh, Identity)}


def get_activation(name):
    """The nonlinearity called ``name`` (``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"identity"``).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the choices.
    """
    if isinstance(name, Elementwise):
        return name
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()
