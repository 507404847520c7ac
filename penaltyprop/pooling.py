r"""Parameter-free maps between convolutions: max pooling and flatten.

They have no parameters, so they are not layers of their own in the penalty
formulation: :meth:`penaltyprop.network.Network.from_layers` folds them into the
nonlinearity after a linear layer, :math:`\sigma_l = \mathrm{Pool}\circ\mathrm{ReLU}`
(and Flatten). Each offers what :mod:`penaltyprop.nonlinearities` offers, which is all
the algorithms use:

* ``__call__(z)``: the map;
* ``vjp(z, v)``: its transposed Jacobian at z applied to v, :math:`\nabla s(z)\,v`
  (the product in Eq. 9 and in the backward pass);
* ``out_shape(shape)``: the output shape for a per-sample input shape (batch excluded).

Arrays keep the batch axis last: (C, H, W, N).
"""
from __future__ import annotations

from .backend import array_module
from .checks import check_int


class MaxPool2d:
    r"""Max pooling over non-overlapping k x k windows (stride k): (C, H, W, N) -> (C, H/k, W/k, N).

    .. math:: s(z)[c, h, w, n] = \max_{0 \le i, j < k} z[c, kh+i, kw+j, n]

    Its Jacobian is a selection: :math:`\nabla s(z)\,v` puts ``v[c, h, w, n]`` on the
    window's maximiser and 0 elsewhere. Where a window holds several equal maxima, the
    first in row-major window order (i, then j) wins alone, so the map stays a.e.
    differentiable and the backward pass deterministic on every backend.

    Parameters
    ----------
    kernel_size : int, default 2
        k; H and W of the input must be divisible by k.
    """

    def __init__(self, kernel_size: int = 2):
        self.kernel_size = check_int(kernel_size, "kernel_size", 1)

    def out_shape(self, shape):
        """(C, H, W) -> (C, H/k, W/k). Raises ValueError unless k divides H and W."""
        k = self.kernel_size
        if len(shape) != 3:
            raise ValueError(f"{self!r} needs inputs of shape (C, H, W) per sample, got {tuple(shape)}")
        C, H, W = shape
        if H % k or W % k:
            raise ValueError(f"{self!r} needs an input height and width divisible by kernel_size={k}, "
                             f"got input shape {tuple(shape)} (set padding or in_shape so that it is)")
        return (C, H // k, W // k)

    def _windows(self, z):
        """The k*k strided views z[:, i::k, j::k, :], one per window offset (i, j), row-major."""
        k = self.kernel_size
        return [z[:, i::k, j::k, :] for i in range(k) for j in range(k)]

    def __call__(self, z):
        """Max over each k x k window. z : (C, H, W, N) -> (C, H/k, W/k, N)."""
        self.out_shape(z.shape[:-1])  # raises for odd sizes
        xp = array_module(z)
        views = self._windows(z)
        out = views[0].copy()
        for v in views[1:]:
            xp.maximum(out, v, out=out)
        return out

    def vjp(self, z, v):
        r""":math:`\nabla s(z)\,v`: route v (C, H/k, W/k, N) to each window's (first) argmax.

        Returns an array of z's shape (C, H, W, N).
        """
        xp = array_module(z)
        k = self.kernel_size
        z_max = self(z)
        out = xp.zeros(z.shape, dtype=v.dtype)
        taken = xp.zeros(z_max.shape, dtype=bool)  # window already has its winner
        for (i, j), zv in zip(((i, j) for i in range(k) for j in range(k)), self._windows(z)):
            win = (zv == z_max) & ~taken
            out[:, i::k, j::k, :] = xp.where(win, v, 0)
            taken |= win
        return out

    def __repr__(self):
        return f"MaxPool2d({self.kernel_size})"


class Flatten:
    r"""(C, H, W, N) -> (C H W, N): one column per sample, entries in (c, h, w) order.

    A free reshape because the batch axis is last; its vjp reshapes back.
    """

    def __call__(self, z):
        return z.reshape(-1, z.shape[-1])

    def vjp(self, z, v):
        """The transposed Jacobian of a reshape is the inverse reshape: (C H W, N) -> z.shape."""
        return v.reshape(z.shape)

    def out_shape(self, shape):
        n = 1
        for s in shape:
            n *= s
        return (n,)

    def __repr__(self):
        return "Flatten()"
