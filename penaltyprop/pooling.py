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
from .nonlinearities import ReLU


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
        self.out_shape(z.shape[:-1])
        _, t = max_pool_argmax(z, self.kernel_size)
        return route_to_argmax(t, v, self.kernel_size, z.shape)

    def __repr__(self):
        return f"MaxPool2d({self.kernel_size})"


def max_pool_argmax(z, k):
    r"""Max pooling and its argmax: ``(s(z), t)``, t the offset i k + j of each window's maximiser.

    z : (C, H, W, N) with k dividing H and W. Returns s(z) (C, H/k, W/k, N) and t of the same
    shape, uint8 (int32 for k > 15): the *first* maximiser in row-major window order, as
    :class:`MaxPool2d` defines it. Through the k^2 strided views z[:, i::k, j::k, :]: the max,
    then t counts the offsets before the first view equal to it (bool and uint8 arithmetic:
    NumPy's masked assignments measured 5-8 times slower).
    """
    xp = array_module(z)
    views = [z[:, i::k, j::k, :] for i in range(k) for j in range(k)]
    out = views[0].copy()
    for view in views[1:]:
        xp.maximum(out, view, out=out)
    t = xp.zeros(out.shape, dtype=xp.uint8 if k * k <= 256 else xp.int32)
    before = xp.ones(out.shape, dtype=bool)  # no view so far equals the max
    for view in views[:-1]:
        before &= view != out
        t += before  # t = number of offsets before the first maximiser
    return out, t


def route_to_argmax(t, v, k, shape):
    r""":math:`\nabla s(z)\,v` from the argmax offsets t of :func:`max_pool_argmax`: an array of
    ``shape`` (z's) holding ``v[c, h, w, n]`` at each window's maximiser and 0 elsewhere; every
    entry is written once, one strided slice per window offset."""
    xp = array_module(v)
    g = xp.empty(shape, dtype=v.dtype)
    for s in range(k * k):
        i, j = divmod(s, k)
        xp.multiply(v, t == s, out=g[:, i::k, j::k, :])
    return g


class ReLUMaxPool:
    r"""The fused form of ReLU followed by max pooling (and Flatten): the same map, fewer passes.

    :math:`s(\max(z, 0)) = \max(s(z), 0)` because both maps are monotone, so the ReLU acts on
    the k^2 times smaller pooled array. The transposed Jacobian routes v to the argmax of the
    window in z, masked where that maximum is not positive: the literal chain gives the same
    numbers (where a window's maximum is <= 0 both give 0; where it is positive the first
    maximiser of max(z, 0) is the first maximiser of z). :class:`penaltyprop.network.Compose`
    uses it for the chains ``[ReLU(), MaxPool2d(k)]`` and ``[ReLU(), MaxPool2d(k), Flatten()]``
    (see :func:`fuse`), and tests hold it equal to the literal chain.
    """

    def __init__(self, kernel_size, flatten=False):
        self.pool = MaxPool2d(kernel_size)
        self.flatten = flatten

    def __call__(self, z):
        self.pool.out_shape(z.shape[:-1])
        out, _ = max_pool_argmax(z, self.pool.kernel_size)  # s(z)
        array_module(out).maximum(out, 0, out=out)  # max(s(z), 0) = s(max(z, 0))
        return out.reshape(-1, out.shape[-1]) if self.flatten else out

    def vjp(self, z, v):
        r""":math:`\nabla\sigma(z)\,v`: v (pooled, or flattened) to each window's argmax, times
        [max > 0]. Returns z's shape."""
        self.pool.out_shape(z.shape[:-1])
        k = self.pool.kernel_size
        out, t = max_pool_argmax(z, k)
        v = v.reshape(out.shape) * (out > 0)  # the ReLU's mask at the maximiser
        return route_to_argmax(t, v, k, z.shape)


def fuse(maps):
    """:class:`ReLUMaxPool` for ``[ReLU(), MaxPool2d(k)]`` or ``[ReLU(), MaxPool2d(k), Flatten()]``,
    else None (then :class:`~penaltyprop.network.Compose` runs the maps one by one)."""
    kinds = [type(s) for s in maps]
    if kinds in ([ReLU, MaxPool2d], [ReLU, MaxPool2d, Flatten]):
        return ReLUMaxPool(maps[1].kernel_size, flatten=len(maps) == 3)
    return None


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
