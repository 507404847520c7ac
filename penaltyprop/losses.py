r"""The final loss :math:`\mathcal{L}_y`: softmax cross-entropy, mean over the batch (Eq. 1).

For logits :math:`z \in \mathbb{R}^{C \times N}` (one sample per column) and
integer labels :math:`y \in \{0..C-1\}^N`,

.. math::
    \mathcal{L}_y(z) = \frac{1}{N} \sum_{i=1}^N \Big( \log \sum_c e^{z_{ci}} - z_{y_i i} \Big),
    \qquad
    \nabla_z \mathcal{L}_y(z) = \frac{1}{N}\big(\operatorname{softmax}(z) - \operatorname{onehot}(y)\big).
"""
from __future__ import annotations

from .backend import array_module


def _log_softmax(z):
    xp = array_module(z)
    shifted = z - z.max(axis=0, keepdims=True)  # subtract the column max: no overflow
    return shifted - xp.log(xp.exp(shifted).sum(axis=0, keepdims=True))


def cross_entropy(z, y):
    r"""Mean softmax cross-entropy :math:`\mathcal{L}_y(z)`.

    Parameters
    ----------
    z : (C, N) array
        Logits, one column per sample.
    y : (N,) int array
        Labels in ``0 .. C-1`` (on the same backend as ``z``).

    Returns
    -------
    0-d array
        On z's backend; call ``float`` only where you log it.
    """
    xp = array_module(z)
    N = z.shape[1]
    log_p = _log_softmax(z)  # (C, N)
    return -log_p[y, xp.arange(N)].mean()


def cross_entropy_grad(z, y):
    r""":math:`\nabla_z \mathcal{L}_y(z) = (\operatorname{softmax}(z) - \operatorname{onehot}(y)) / N`.

    Parameters
    ----------
    z : array, shape (C, N)
        Logits.
    y : int array, shape (N,)
        Labels.

    Returns
    -------
    array, shape (C, N)
        The gradient.
    """
    xp = array_module(z)
    N = z.shape[1]
    g = xp.exp(_log_softmax(z))  # softmax, (C, N)
    g[y, xp.arange(N)] -= 1
    g /= N
    return g


def cross_entropy_and_grad(z, y):
    """Loss and gradient of :func:`cross_entropy` sharing one softmax. Returns ``(L, dL/dz)``."""
    xp = array_module(z)
    N = z.shape[1]
    log_p = _log_softmax(z)
    cols = xp.arange(N)
    L = -log_p[y, cols].mean()
    g = xp.exp(log_p)
    g[y, cols] -= 1
    g /= N
    return L, g


def accuracy(z, y):
    """Fraction of columns of ``z`` whose argmax equals ``y`` (0-d array)."""
    return (z.argmax(axis=0) == y).mean()
