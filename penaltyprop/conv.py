r"""2-D convolution as a linear transfer function, and the CNN of Section 5.3.

A convolution is linear in its parameters :math:`\theta = (W, b)`, with W of shape
(C_out, C_in, k, k). Written with the *im2col* (patch) matrix :math:`P(a)` it is a
matrix product:

.. math:: \operatorname{rows}(\phi(\theta, a)) = W_{\mathrm{mat}}\,P(a) + b\,\mathbf{1}^\top ,
          \qquad W_{\mathrm{mat}} \in \mathbb{R}^{C_{out}\times m},\;
          P(a) \in \mathbb{R}^{m \times K},

with :math:`m = C_{in} k^2` (rows ordered (c, i, j), the row-major order of W[o]) and
:math:`K = H_{out} W_{out} N` (columns ordered (h, w, n)). Because activations keep
the batch axis last, (C_out, H_out, W_out, N), ``rows`` is a free reshape. Entry
:math:`P[(c,i,j), (h,w,n)] = a_{\mathrm{pad}}[c, h+i, w+j, n]` (cross-correlation, as in
every deep-learning framework; stride 1, zero padding).

Everything else comes from :class:`~penaltyprop.transfer.LinearTransfer`: the
forward map (Eq. 7), its adjoint in :math:`\theta` (:math:`\delta A^\top` with
:math:`A = [P; \mathbf{1}^\top]`, Eqs. 25-26, 43) and in :math:`a` (Eq. 10, via
:meth:`Conv2d.adjoint_patches`, col2im), and the proximal solvers of
:mod:`penaltyprop.prox`, where every output channel is one linear system with the
matrix :math:`AA^\top + I/\tau_\theta` (Eq. 14), of size :math:`C_{in}k^2 + 1`.

im2col is one copy of a strided view (``as_strided``, in NumPy and CuPy alike); col2im,
its adjoint, is a loop over the :math:`k^2` kernel offsets, each one slice addition over
all channels, pixels and samples at once (no scatter, no loop over samples or pixels).
:meth:`Conv2d.patches` and :meth:`Conv2d.adjoint_patches` are these literal definitions (the
prox solvers take P whole). The layer's own three maps are computed by the helpers at the
end of this module without forming P: block by block of output rows, each block of P copied
into one reused, cache-sized buffer and multiplied there (:func:`patch_product`,
:func:`patch_gradient`), and the adjoint in a as a forward correlation with the flipped
kernel (:func:`transposed_correlation`), so that no (C_in k^2, K) array and no col2im pass
is needed. tests/test_conv_fast_paths.py holds them equal to the literal maps.
"""
from __future__ import annotations

from .backend import array_module
from .checks import check_int
from .network import Network
from .nonlinearities import Elementwise, get_activation
from .patches import (
    one_blas_thread,
    pad_or_crop,
    patch_gradient,
    patch_gram,
    patch_product,
    patch_view,
    transposed_correlation,
)
from .pooling import Flatten, MaxPool2d
from .transfer import Linear, LinearTransfer, PatchOperator


class Conv2d(LinearTransfer):
    r"""2-D convolution, stride 1, zero padding, with bias: :math:`\phi(\theta, a) = W * a + b`.

    .. math:: \phi(\theta, a)[o, h, w, n] = b_o + \sum_{c,i,j} W[o, c, i, j]\,
              a_{\mathrm{pad}}[c, h+i, w+j, n]

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel_size : int
        k (square k x k kernels).
    in_hw : (H, W)
        Spatial size of the input; needed to know every shape up front
        (:func:`cnn` computes it).
    padding : int, default 0
        Zeros added on each side; the output is (H + 2p - k + 1, W + 2p - k + 1).

    Raises
    ------
    ValueError
        If the kernel is larger than the padded image (naming ``kernel_size``), or an
        argument is not a positive integer (naming it).

    Notes
    -----
    Shapes, batch axis last: input a (C_in, H, W, N); output z (C_out, H_out, W_out, N);
    W (C_out, C_in, k, k); b (C_out,); P(a) (C_in k^2, H_out W_out N).
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, in_hw, padding: int = 0):
        c_in = check_int(c_in, "c_in", 1)
        c_out = check_int(c_out, "c_out", 1)
        k = check_int(kernel_size, "kernel_size", 1)
        p = check_int(padding, "padding", 0)
        if not (isinstance(in_hw, (tuple, list)) and len(in_hw) == 2):
            raise ValueError(f"in_hw must be a pair (H, W), got {in_hw!r}")
        H, W = (check_int(v, "in_hw", 1) for v in in_hw)
        if k > H + 2 * p or k > W + 2 * p:
            raise ValueError(f"kernel_size={k} is larger than the padded input "
                             f"{H + 2 * p}x{W + 2 * p} (in_hw={(H, W)}, padding={p})")
        self.kernel_size, self.padding = k, p
        H_out, W_out = H + 2 * p - k + 1, W + 2 * p - k + 1
        self.in_shape = (c_in, H, W)
        self.out_shape = (c_out, H_out, W_out)
        self.weight_shape = (c_out, c_in, k, k)
        self.fan_in = c_in * k * k  # m, the length of one patch

    # ---------------------------------------------------------------- the three linear maps
    # The same maps as LinearTransfer's (W_mat P(a) + b 1^T, delta A^T, P^*(W_mat^T delta)),
    # computed without forming P whole: see the helpers below the class.
    def __call__(self, theta_l, a):
        r""":math:`\phi(\theta, a) = W_{\mathrm{mat}} P(a) + b \mathbf{1}^\top` (Eq. 7), reshaped to
        (C_out, H_out, W_out, N); computed block by block (:func:`patch_product`)."""
        self.check_input(a)
        W, b = theta_l
        V = patch_view(pad_or_crop(a, self.padding), self.kernel_size, *self.out_shape[1:])
        return self.from_rows(patch_product(V, self.weight_matrix(W), b), a.shape[-1])

    def adjoint_theta(self, a, delta):
        r""":math:`\nabla_\theta\phi(\cdot, a)\,\delta = (\delta P^\top, \delta\mathbf{1})` (Eqs. 25, 43);
        computed block by block (:func:`patch_gradient`). Returns (dW, db)."""
        self.check_input(a)
        V = patch_view(pad_or_crop(a, self.padding), self.kernel_size, *self.out_shape[1:])
        dWm, db = patch_gradient(V, self.to_rows(delta))
        return dWm.reshape(self.weight_shape), db

    def adjoint_a(self, theta_l, delta):
        r""":math:`\nabla_a\phi(\theta, \cdot)\,\delta = P^*(W_{\mathrm{mat}}^\top \delta)` (Eqs. 10, 22).

        The same numbers as col2im (:meth:`adjoint_patches`) of :math:`W_{\mathrm{mat}}^\top\delta`,
        computed as a forward correlation (:func:`transposed_correlation`), which needs
        neither the (m, K) product nor col2im's k^2 passes over the input.
        """
        W, _ = theta_l
        N = delta.shape[-1]
        return transposed_correlation(W, delta, self.padding).reshape(*self.in_shape, N)

    def prox_operator(self, a):
        r"""The prox solvers' :math:`A = [P(a); \mathbf{1}^\top]`, computed without forming P
        (:class:`ConvPatchOperator`); the same maps as ``PatchOperator(self.patches(a))``."""
        self.check_input(a)
        return ConvPatchOperator(self, a)

    # ---------------------------------------------------------------- im2col / col2im
    def patches(self, a):
        r"""im2col: the patch matrix :math:`P(a)` of shape (C_in k^2, H_out W_out N).

        Rows ordered (c, i, j), columns (h, w, n). One padded copy of ``a``, then one
        copy of a strided view of it (:func:`patch_view`). Returns a C-contiguous array
        (the GEMMs' operand); the prox solvers take P whole.
        """
        self.check_input(a)
        C, _, _ = self.in_shape
        k = self.kernel_size
        _, H_out, W_out = self.out_shape
        V = patch_view(pad_or_crop(a, self.padding), k, H_out, W_out)
        return array_module(a).ascontiguousarray(V).reshape(C * k * k, H_out * W_out * a.shape[-1])

    def adjoint_patches(self, G, N):
        r"""col2im, the adjoint of :meth:`patches`: (C_in k^2, K) -> (C_in, H, W, N).

        Every patch entry is added back to the pixel it was copied from
        (:math:`\langle P(a), G\rangle = \langle a, P^*(G)\rangle`); then the padding is cut off.
        The literal definition; :meth:`adjoint_a` computes the same map faster.
        """
        xp = array_module(G)
        C, H, W = self.in_shape
        k, p = self.kernel_size, self.padding
        _, H_out, W_out = self.out_shape
        G6 = G.reshape(C, k, k, H_out, W_out, N)
        out = xp.zeros((C, H + 2 * p, W + 2 * p, N), dtype=G.dtype)
        for i in range(k):
            for j in range(k):
                out[:, i:i + H_out, j:j + W_out, :] += G6[:, i, j]
        if p:
            out = xp.ascontiguousarray(out[:, p:p + H, p:p + W, :])
        return out

    def to_rows(self, z):
        """(C_out, H_out, W_out, N) -> (C_out, H_out W_out N): a free reshape (columns (h, w, n))."""
        return z.reshape(self.out_shape[0], -1)

    def from_rows(self, Z, N):
        """(C_out, H_out W_out N) -> (C_out, H_out, W_out, N), the inverse of :meth:`to_rows`."""
        return Z.reshape(*self.out_shape, N)

    def weight_matrix(self, W):
        """W (C_out, C_in, k, k) as W_mat (C_out, C_in k^2), rows ordered like P's (c, i, j)."""
        return W.reshape(self.out_shape[0], -1)

    def __repr__(self):
        c_out, c_in, k, _ = self.weight_shape
        pad = f", padding={self.padding}" if self.padding else ""
        return f"Conv2d({c_in}, {c_out}, {k}, in_hw={self.in_shape[1:]}{pad})"


class ConvPatchOperator(PatchOperator):
    r""":math:`A = [P(a); \mathbf{1}^\top]` of a convolution for the prox solvers, P never formed.

    The same three pieces as the default :class:`~penaltyprop.transfer.PatchOperator` of the
    literal im2col matrix (``tests/test_conv_prox_operator.py`` holds them equal), each computed a
    cache-sized block of output rows at a time (:mod:`penaltyprop.patches`):
    :math:`AA^\top` by :func:`patch_gram`, :math:`VA` by :func:`patch_product` (both on one BLAS
    thread, :func:`~penaltyprop.patches.one_blas_thread`: measured faster under load),
    :math:`RA^\top` by :func:`patch_gradient`. :meth:`patches` builds the literal P, for the
    batch-space solvers.

    Parameters
    ----------
    conv : Conv2d
        The :class:`Conv2d` layer.
    a : array, shape (C_in, H, W, N)
        Its input (not copied: do not modify it while the operator is in use).
    """

    def __init__(self, conv, a):
        self.conv, self.a = conv, a
        self.V = patch_view(pad_or_crop(a, conv.padding), conv.kernel_size, *conv.out_shape[1:])
        self.shape = (conv.fan_in, conv.out_shape[1] * conv.out_shape[2] * a.shape[-1])  # (m, K)

    def patches(self):
        return self.conv.patches(self.a)

    def gram(self):
        with one_blas_thread(array_module(self.a)):
            return patch_gram(self.V)

    def apply_A(self, VW, vb):
        with one_blas_thread(array_module(self.a)):
            return patch_product(self.V, VW, vb)

    def apply_At(self, R):
        return patch_gradient(self.V, R)


def cnn(in_shape=(3, 32, 32), channels=(16, 20, 20), kernel_size=5, padding=2, n_classes=10,
        activation="relu", pool_last=True):
    r"""A CNN of conv blocks Conv -> sigma -> MaxPool(2), then Flatten -> FC (Section 5.3).

    The defaults are the paper's network for CIFAR-10, as its text describes it:
    Conv 16@5x5 -> ReLU -> Pool -> Conv 20@5x5 -> ReLU -> Pool -> Conv 20@5x5 -> ReLU
    -> Pool -> FC 10 (spatial size 32 -> 16 -> 8 -> 4; FC 320 -> 10).
    With ``pool_last=False`` the last block has no pooling: the network of the authors'
    released code, Conv 16 -> ReLU -> Pool -> Conv 20 -> ReLU -> Pool -> Conv 20 -> ReLU
    -> FC 10 (32 -> 16 -> 8; FC 1280 -> 10).

    Parameters
    ----------
    in_shape : (C, H, W)
        Shape of one input sample; the batch X has shape (C, H, W, N).
    channels : sequence of int
        Output channels of the convolutions (one conv block each, at least one).
    kernel_size : int
        k of every convolution.
    padding : int
        Zero padding of every convolution (k = 5, padding = 2 keeps the size).
    n_classes : int
        Width of the last (fully connected) layer.
    activation : {"relu", "sigmoid", "tanh"}
        The nonlinearity.
    pool_last : bool
        Whether the last conv block ends with 2x2 max pooling (True: the paper's text;
        False: the authors' released code).

    Returns
    -------
    Network
        With len(channels) + 1 linear layers; sigma_l = MaxPool2d(2) o activation (and
        Flatten for the last conv block; without its pooling if ``pool_last`` is False), see
        :meth:`Network.from_layers`.

    Raises
    ------
    ValueError
        For a bad argument (named), e.g. a spatial size that 2x2 pooling cannot halve
        (``in_shape``).
    """
    if not (isinstance(in_shape, (tuple, list)) and len(in_shape) == 3):
        raise ValueError(f"in_shape must be (C, H, W), got {in_shape!r}")
    C, H, W = (check_int(v, "in_shape", 1) for v in in_shape)
    if isinstance(channels, int) or not hasattr(channels, "__iter__"):
        raise ValueError(f"channels must be a sequence of positive integers, got {channels!r}")
    channels = list(channels)
    if not channels:
        raise ValueError("channels must name at least one convolution, got an empty sequence")
    for c in channels:
        check_int(c, "channels", 1)
    k = check_int(kernel_size, "kernel_size", 1)
    p = check_int(padding, "padding", 0)
    n_classes = check_int(n_classes, "n_classes", 1)
    if not isinstance(activation, Elementwise):
        get_activation(activation)  # raises ValueError naming `activation`
    if not isinstance(pool_last, bool):
        raise ValueError(f"pool_last must be True or False, got {pool_last!r}")

    layers = []
    for l, c_out in enumerate(channels, start=1):
        if H + 2 * p < k or W + 2 * p < k:
            raise ValueError(f"kernel_size={k} is larger than the padded input of conv layer {l} "
                             f"({H + 2 * p}x{W + 2 * p}); use a larger in_shape or padding")
        conv = Conv2d(C, c_out, k, in_hw=(H, W), padding=p)
        C, H, W = conv.out_shape
        layers += [conv, get_activation(activation)]
        if l == len(channels) and not pool_last:
            break
        if H % 2 or W % 2:
            raise ValueError(f"in_shape={tuple(in_shape)} gives conv layer {l} an output of "
                             f"{H}x{W}, which 2x2 pooling cannot halve; choose in_shape, "
                             "kernel_size and padding so that every pooled size is even")
        layers.append(MaxPool2d(2))
        H, W = H // 2, W // 2
    layers += [Flatten(), Linear(C * H * W, n_classes)]
    return Network.from_layers(layers)
