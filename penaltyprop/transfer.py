r"""Linear transfer functions :math:`\phi(\theta, a)` and their adjoints (Section 2, Eq. 43).

A transfer function is linear in its parameters :math:`\theta = (W, b)`. Every one
used here can be written with a *patch matrix* :math:`P(a)` of shape (m, K):

.. math:: \operatorname{rows}(\phi(\theta, a)) = W_{\mathrm{mat}}\, P(a) + b\,\mathbf{1}^\top ,

where :math:`W_{\mathrm{mat}}` has shape (n_out, m) and ``rows`` reshapes the output
to (n_out, K). For a fully connected layer :math:`P(a) = a` and K = N, so this is
:math:`\phi(\theta, a) = W a + b \mathbf{1}^\top`; for a convolution P is the
im2col matrix (see :mod:`penaltyprop.conv`). Writing :math:`A = [P; \mathbf{1}^\top]`,
the three linear maps the algorithms use are

* the forward map :math:`\phi(\theta, a) = (\nabla\phi(\cdot, a))^*(\theta)` (Eq. 29):
  ``phi(theta, a)``;
* its adjoint in :math:`\theta`, :math:`\nabla_\theta\phi(\cdot, a)\,\delta = \delta A^\top
  = (\delta P^\top, \delta\mathbf{1})` (Eqs. 25-26, 43): ``adjoint_theta``;
* its adjoint in :math:`a`, :math:`\nabla_a\phi(\theta, a)\,\delta` (Eqs. 10, 19, 22):
  ``adjoint_a`` (for a dense layer :math:`W^\top\delta`).

The module-level :func:`apply_A` and :func:`apply_At` are the same two maps on a patch matrix
in rows. The prox solvers (:mod:`penaltyprop.prox`) only see ``W_mat``, ``b``, rows and the
layer's :class:`PatchOperator` (``phi.prox_operator(a)``), which gives them :math:`AA^\top`,
:math:`V \mapsto VA` and :math:`R \mapsto RA^\top`, so they serve every transfer function
unchanged. The default operator holds P; a layer that can compute those
three pieces faster without P (a convolution, :mod:`penaltyprop.conv`) supplies its own.
"""
from __future__ import annotations

import math

from .backend import array_module


def apply_A(VW, vb, P):
    r""":math:`(V_W, v_b) \mapsto V_W P + v_b\mathbf{1}^\top`, the forward map :math:`\phi` in rows (Eq. 29).

    Parameters
    ----------
    VW : array, shape (n_out, m)
        Weights as a matrix.
    vb : array, shape (n_out,)
        Biases.
    P : array, shape (m, K)
        The patch matrix.

    Returns
    -------
    array, shape (n_out, K)
        :math:`V_W P + v_b\mathbf{1}^\top`.
    """
    return VW @ P + vb[:, None]  # (n_out, m) @ (m, K) -> (n_out, K)


def apply_At(R, P):
    r""":math:`R \mapsto R A^\top = (R P^\top, R\mathbf{1})`, the adjoint of :math:`\phi` in theta (Eq. 43).

    Parameters
    ----------
    R : array, shape (n_out, K)
        Rows in output space.
    P : array, shape (m, K)
        The patch matrix.

    Returns
    -------
    (RW, rb) : tuple of arrays
        Of shapes (n_out, m) and (n_out,).
    """
    if P.shape[1] > P.shape[0]:  # long K (a convolution's H*W*N columns): BLAS is far faster
        return (P @ R.T).T, R.sum(axis=1)  # computing the small (m, n_out) product and transposing
    return R @ P.T, R.sum(axis=1)  # (n_out, K) @ (K, m); (n_out,)


class PatchOperator:
    r""":math:`A = [P; \mathbf{1}^\top]` (m+1, K) of one layer at its input: the three pieces of the
    prox step (Eqs. 11, 14, 44), from the patch matrix P (m, K) itself.

    The prox solvers take this object from ``phi.prox_operator(a)`` and ask it for
    :meth:`gram` (:math:`AA^\top`, the exact solve), :meth:`apply_A` and :meth:`apply_At`
    (:math:`\phi` and its adjoint in :math:`\theta`, the right-hand side and CG), and, for the
    batch-space solvers, :meth:`batch_gram` (:math:`A^\top A`) and :meth:`patches`. This
    default is the literal definition; a layer that computes the same pieces faster overrides
    them (:class:`penaltyprop.conv.ConvPatchOperator`), and a test holds the two equal.

    Parameters
    ----------
    P : array, shape (m, K)
        The patch matrix (``a`` itself for a dense layer).
    """

    def __init__(self, P):
        self.P = P
        self.shape = tuple(P.shape)  # (m, K)

    def patches(self):
        """The patch matrix P, (m, K)."""
        return self.P

    def gram(self):
        r""":math:`AA^\top = [[PP^\top, P\mathbf{1}], [\mathbf{1}^\top P^\top, K]]`, (m+1, m+1)."""
        P = self.P
        m, K = P.shape
        G = array_module(P).empty((m + 1, m + 1), dtype=P.dtype)
        G[:m, :m] = P @ P.T
        G[:m, m] = G[m, :m] = P.sum(axis=1)
        G[m, m] = K
        return G

    def batch_gram(self):
        r""":math:`A^\top A = P^\top P + \mathbf{1}\mathbf{1}^\top`, (K, K): the Gram matrix of the
        batch-space solvers (the exact batch solve, batch-coordinate CG)."""
        P = self.patches()
        G = P.T @ P
        G += 1
        return G

    def apply_A(self, VW, vb):
        r""":math:`V A = V_W P + v_b\mathbf{1}^\top`, (n_out, K) (:func:`apply_A`)."""
        return apply_A(VW, vb, self.P)

    def apply_At(self, R):
        r""":math:`R A^\top = (R P^\top, R\mathbf{1})`, (n_out, m) and (n_out,) (:func:`apply_At`)."""
        return apply_At(R, self.P)


def patch_operator(P):
    """``P`` itself if it is a :class:`PatchOperator`, else the default operator of the array P."""
    return P if isinstance(P, PatchOperator) else PatchOperator(P)


class LinearTransfer:
    r"""Base class of a transfer function that is linear in :math:`\theta`.

    Subclasses define ``in_shape``, ``out_shape`` (per sample, batch axis excluded),
    ``weight_shape``, ``fan_in`` and the four layout maps ``patches``, ``to_rows``,
    ``from_rows``, ``adjoint_patches``. Everything else follows from them.
    """

    in_shape: tuple
    out_shape: tuple
    weight_shape: tuple
    fan_in: int

    # ---------------------------------------------------------------- layout (subclasses)
    def patches(self, a):
        """Patch matrix P(a) of shape (m, K)."""
        raise NotImplementedError

    def to_rows(self, z):
        """Reshape an output-shaped array ``(*out_shape, N)`` to (n_out, K)."""
        raise NotImplementedError

    def from_rows(self, Z, N):
        """Inverse of :meth:`to_rows`: (n_out, K) to ``(*out_shape, N)``."""
        raise NotImplementedError

    def adjoint_patches(self, G, N):
        """Adjoint of :meth:`patches`: an (m, K) array back to the input shape ``(*in_shape, N)``."""
        raise NotImplementedError

    def prox_operator(self, a):
        """The :class:`PatchOperator` of A = [P(a); 1^T] for the prox solvers: by default P(a)
        built once by :meth:`patches`; a layer may return a faster one with the same maps."""
        return PatchOperator(self.patches(a))

    # ---------------------------------------------------------------- parameters
    @property
    def n_out(self) -> int:
        return self.weight_shape[0]

    def weight_matrix(self, W):
        """W reshaped to W_mat of shape (n_out, m) (a view)."""
        return W.reshape(self.n_out, -1)

    def init(self, rng, dtype):
        r"""PyTorch's default initialisation: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (Sec. 5.1).

        Parameters
        ----------
        rng : numpy.random.Generator
            On the host (from :func:`penaltyprop.backend.host_rng`).
        dtype : dtype
            The floating dtype of the returned host arrays.
        """
        bound = 1.0 / math.sqrt(self.fan_in)
        W = rng.uniform(-bound, bound, size=self.weight_shape).astype(dtype)
        b = rng.uniform(-bound, bound, size=(self.n_out,)).astype(dtype)
        return W, b

    # ---------------------------------------------------------------- the three linear maps
    def __call__(self, theta_l, a):
        r""":math:`\phi(\theta, a) = W_{\mathrm{mat}} P(a) + b \mathbf{1}^\top` (Eq. 7).

        Parameters
        ----------
        theta_l : (W, b)
            W of ``weight_shape`` and b of shape (n_out,).
        a : array, shape ``(*in_shape, N)``
            Input activations.

        Returns
        -------
        z : array, shape ``(*out_shape, N)``
            The layer's output.
        """
        W, b = theta_l
        return self.apply_rows(self.weight_matrix(W), b, self.patches(a), a.shape[-1])

    def apply_rows(self, Wm, b, P, N):
        r"""Forward map given the patch matrix: :math:`W_{\mathrm{mat}} P + b\mathbf{1}^\top`, reshaped."""
        Z = Wm @ P  # (n_out, m) @ (m, K)
        Z += b[:, None]  # in place: no second (n_out, K) array
        return self.from_rows(Z, N)

    def adjoint_theta(self, a, delta):
        r""":math:`\nabla_\theta\phi(\cdot, a)\,\delta = (\delta P^\top, \delta \mathbf{1})` (Eqs. 25, 43).

        Parameters
        ----------
        a : array, shape ``(*in_shape, N)``
            Input activations.
        delta : array, shape ``(*out_shape, N)``
            An array in output space.

        Returns
        -------
        (dW, db) : tuple of arrays
            dW of ``weight_shape`` and db of shape (n_out,).
        """
        dWm, db = apply_At(self.to_rows(delta), self.patches(a))  # delta A^T, (n_out, m+1)
        return dWm.reshape(self.weight_shape), db

    def adjoint_a(self, theta_l, delta):
        r""":math:`\nabla_a\phi(\theta, \cdot)\,\delta`, the adjoint in the input (Eqs. 10, 22).

        Parameters
        ----------
        theta_l : (W, b)
            The layer's parameters.
        delta : array, shape ``(*out_shape, N)``
            An array in output space.

        Returns
        -------
        array, shape ``(*in_shape, N)``
            The adjoint applied to delta.
        """
        W, _ = theta_l
        N = delta.shape[-1]
        return self.adjoint_patches(self.weight_matrix(W).T @ self.to_rows(delta), N)

    # ---------------------------------------------------------------- checks
    def check_input(self, a, name="a"):
        """Raise ValueError unless ``a`` has shape ``(*in_shape, N)`` with N >= 1."""
        if a.ndim != len(self.in_shape) + 1 or tuple(a.shape[:-1]) != tuple(self.in_shape):
            raise ValueError(
                f"{name} must have shape {(*self.in_shape, 'N')} (one sample per column, batch "
                f"axis last) for {self!r}, got {tuple(a.shape)}"
            )
        if a.shape[-1] < 1:
            raise ValueError(f"{name} must hold at least one sample, got shape {tuple(a.shape)}")


class Linear(LinearTransfer):
    r"""Fully connected layer :math:`\phi(\theta, a) = W a + b\mathbf{1}^\top`.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths; W has shape (n_out, n_in), b has shape (n_out,).
    """

    def __init__(self, n_in: int, n_out: int):
        for arg, v in (("n_in", n_in), ("n_out", n_out)):
            if int(v) != v or v < 1:
                raise ValueError(f"{arg} must be a positive integer, got {v!r}")
        self.in_shape = (int(n_in),)
        self.out_shape = (int(n_out),)
        self.weight_shape = (int(n_out), int(n_in))
        self.fan_in = int(n_in)

    def patches(self, a):
        return a  # P(a) = a, m = n_in, K = N

    def to_rows(self, z):
        return z

    def from_rows(self, Z, N):
        return Z

    def adjoint_patches(self, G, N):
        return G

    def weight_matrix(self, W):
        return W

    def adjoint_a(self, theta_l, delta):
        W, _ = theta_l
        return W.T @ delta  # (n_in, n_out) @ (n_out, N)

    def __repr__(self):
        return f"Linear({self.in_shape[0]}, {self.out_shape[0]})"


def check_params(phi, theta_l, l, xp=None):
    """Raise ValueError unless ``theta_l`` is a (W, b) pair of the shapes ``phi`` expects."""
    if not (isinstance(theta_l, (tuple, list)) and len(theta_l) == 2):
        raise ValueError(f"theta[{l}] must be a (W, b) pair, got {type(theta_l).__name__}")
    W, b = theta_l
    if tuple(getattr(W, "shape", ())) != tuple(phi.weight_shape):
        raise ValueError(f"theta[{l}][0] (W) must have shape {phi.weight_shape} for {phi!r}, "
                         f"got {tuple(getattr(W, 'shape', ()))}")
    if tuple(getattr(b, "shape", ())) != (phi.n_out,):
        raise ValueError(f"theta[{l}][1] (b) must have shape {(phi.n_out,)} for {phi!r}, "
                         f"got {tuple(getattr(b, 'shape', ()))}")
    if xp is not None and (array_module(W) is not xp or array_module(b) is not xp):
        raise ValueError(f"theta[{l}] lives on a different backend than X; move both with "
                         "penaltyprop.backend.to_device")
