r"""The forward pass with explicit activations (Eq. 7), the loss J (Eq. 1) and its gradient.

``forward`` keeps every :math:`z_l` and :math:`a_l`, because the penalty formulation
treats them as variables (Fig. 1). ``gradient`` is *classical* backpropagation, the
chain rule written out, independent of the penalty machinery: it is the reference
that Proposition 1 compares Algorithm 1 against.
"""
from __future__ import annotations

from .checks import check_problem
from .losses import accuracy, cross_entropy, cross_entropy_and_grad


def forward(net, theta, X, check=True):
    r"""Forward pass keeping every activation, Eq. 7.

    .. math:: z_l = \phi(\theta_l, a_{l-1}), \quad a_l = \sigma(z_l), \quad l = 1..L-2,
              \qquad a_0 = X, \quad z_{L-1} = \phi(\theta_{L-1}, a_{L-2}).

    Parameters
    ----------
    net : Network
        The network.
    theta : list of (W, b) pairs
        L-1 pairs.
    X : array, shape (n0, N)
        One sample per column (for a CNN (C, H, W, N)).
    check : bool
        ``check=False`` skips the input checks (for callers that checked their inputs once).

    Returns
    -------
    a : list of arrays
        L-1 arrays, ``a[l]`` = :math:`a_l` of shape (n_l, N); ``a[0]`` is X.
    z : list
        L entries, ``z[l]`` = :math:`z_l` for l = 1..L-1; ``z[0]`` is None and ``z[L-1]``
        holds the class scores :math:`\phi(\theta_{L-1}, a_{L-2})`, shape (C, N).

    Examples
    --------
    >>> import numpy as np
    >>> import penaltyprop as pp
    >>> net = pp.mlp([4, 3, 2])                       # one hidden layer: L - 1 = 2 linear layers
    >>> theta = net.init(seed=0)
    >>> X = np.random.default_rng(0).random((4, 6))   # six samples, one per column
    >>> a, z = pp.forward(net, theta, X)
    >>> [a_l.shape for a_l in a]
    [(4, 6), (3, 6)]
    >>> z[0] is None, z[1].shape, z[2].shape          # z[2]: the class scores
    (True, (3, 6), (2, 6))
    >>> bool(np.array_equal(a[1], np.maximum(z[1], 0)))   # a_1 = sigma(z_1), ReLU
    True
    """
    if check:
        check_problem(net, theta, X)
    a, z = [X], [None]
    for l in range(1, net.n_linear):  # l = 1 .. L-2
        phi, sigma = net.blocks[l - 1].phi, net.blocks[l - 1].sigma
        z.append(phi(theta[l - 1], a[l - 1]))  # Eq. 7: z_l = phi(theta_l, a_{l-1})
        a.append(sigma(z[l]))  # Eq. 7: a_l = sigma(z_l)
    z.append(net.blocks[-1].phi(theta[-1], a[-1]))  # class scores z_{L-1}
    return a, z


def logits(net, theta, X):
    """Class scores phi(theta_{L-1}, a_{L-2}) of shape (C, N), without keeping activations."""
    a = X
    for blk, theta_l in zip(net.blocks[:-1], theta[:-1]):
        a = blk.sigma(blk.phi(theta_l, a))
    return net.blocks[-1].phi(theta[-1], a)


def loss(net, theta, X, y):
    r"""Training loss :math:`J(\theta; X, y)`, Eq. 1: softmax cross-entropy, mean over N.

    Parameters
    ----------
    net, theta : Network, list of (W, b) pairs
        The network and its parameters.
    X : array, shape (n0, N)
        Inputs.
    y : int array, shape (N,)
        Labels in 0..C-1.

    Returns
    -------
    0-d array
        The loss, on X's backend.
    """
    check_problem(net, theta, X, y)
    return cross_entropy(logits(net, theta, X), y)


def loss_and_accuracy(net, theta, X, y):
    """``(J, accuracy)`` for one batch, both 0-d arrays (no checks: for the training loop)."""
    s = logits(net, theta, X)
    return cross_entropy(s, y), accuracy(s, y)


def gradient(net, theta, X, y):
    r""":math:`\nabla J(\theta; X, y)` by classical backpropagation (the chain rule, Eq. 2).

    .. math:: e_{L-1} = \nabla\mathcal{L}_y(z_{L-1}),\quad
              \nabla_{\theta_l} J = \nabla_\theta\phi(\cdot, a_{l-1})\, e_l,\quad
              e_{l-1} = \nabla\sigma(z_{l-1})\,\nabla_a\phi(\theta_l, a_{l-1})\, e_l .

    Returns
    -------
    list of (dW, db) pairs
        With the structure of ``theta``.
    """
    return loss_and_gradient(net, theta, X, y)[1]


def loss_and_gradient(net, theta, X, y, check=True):
    r"""``(J, grad J)`` from one forward and one backward pass: :func:`loss` and :func:`gradient`.

    ``check=False`` skips the input checks (the training loop checks its data once).
    """
    if check:
        check_problem(net, theta, X, y)
    a, z = forward(net, theta, X, check=False)
    J, e = cross_entropy_and_grad(z[-1], y)  # e_{L-1} = dL/dz_{L-1}, shape (C, N)
    grads = [None] * net.n_linear
    for l in range(net.n_linear, 0, -1):  # l = L-1 .. 1
        phi = net.blocks[l - 1].phi
        grads[l - 1] = phi.adjoint_theta(a[l - 1], e)
        if l > 1:  # no error is needed for the data a_0 = X
            e = net.blocks[l - 2].sigma.vjp(z[l - 1], phi.adjoint_a(theta[l - 1], e))
    return J, grads
