r"""Network description: a chain of linear transfer functions and nonlinearities (Eq. 1, Fig. 1).

A network with L-1 linear layers computes

.. math:: J(\theta; X, y) = \mathcal{L}_y(\phi(\theta_{L-1},
          \sigma(\phi(\cdots \sigma(\phi(\theta_1, X))\cdots)))).

It is stored as L-1 *blocks* ``(phi_l, sigma_l)``: a transfer function
:math:`\phi_l` that is linear in :math:`\theta_l`, followed by the parameter-free map
:math:`\sigma_l` to the next layer's input. The last block has no :math:`\sigma`
(its output feeds the loss). Where pooling or flatten sit between two linear layers,
:math:`\sigma_l` is their composition with the nonlinearity, e.g. Pool ∘ ReLU; it is
still a fixed, parameter-free map, so the penalty energy (Eq. 3) and Eqs. 9-10 hold
with :math:`\nabla\sigma_l(z)` its transposed Jacobian (see :class:`Compose`).

Indexing. The paper numbers the linear layers l = 1 .. L-1; the parameter list
``theta`` is 0-based, so ``theta[l-1]`` holds :math:`\theta_l = (W_l, b_l)`. The
activation lists of :func:`penaltyprop.forward` keep the paper's numbers: ``a[l]`` is
:math:`a_l` (``a[0]`` is X) and ``z[l]`` is :math:`z_l` (``z[0]`` is unused).
"""
from __future__ import annotations

from dataclasses import dataclass

from .backend import get_backend, host_rng, to_device
from .checks import check_dtype, check_int, check_sizes
from .nonlinearities import Elementwise, Identity, get_activation
from .pooling import fuse
from .transfer import Linear, LinearTransfer


class Compose:
    r"""Composition :math:`\sigma = s_k \circ \cdots \circ s_1` of parameter-free maps.

    ``vjp`` applies the chain rule backwards: :math:`\nabla\sigma(z) v = \nabla s_1(z_0)
    \cdots \nabla s_k(z_{k-1}) v` with :math:`z_0 = z`, :math:`z_i = s_i(z_{i-1})`
    (:meth:`chain`, :meth:`chain_vjp`). For ReLU followed by max pooling, the sigma of a conv
    block, ``fused`` holds an equal, faster form (:class:`penaltyprop.pooling.ReLUMaxPool`),
    which ``__call__`` and ``vjp`` use.
    """

    def __init__(self, maps):
        self.maps = list(maps)
        self.fused = fuse(self.maps)  # None unless the chain has a fused form

    def __call__(self, z):
        return self.chain(z) if self.fused is None else self.fused(z)

    def vjp(self, z, v):
        return self.chain_vjp(z, v) if self.fused is None else self.fused.vjp(z, v)

    def chain(self, z):
        """The maps one after the other: s_k(... s_1(z))."""
        for s in self.maps:
            z = s(z)
        return z

    def chain_vjp(self, z, v):
        """The chain rule, map by map, backwards."""
        inputs = []
        for s in self.maps:
            inputs.append(z)
            z = s(z)
        for s, z_in in zip(reversed(self.maps), reversed(inputs)):
            v = s.vjp(z_in, v)
        return v

    def out_shape(self, shape):
        for s in self.maps:
            shape = s.out_shape(shape)
        return shape

    def __repr__(self):
        return " -> ".join(repr(s) for s in self.maps)


@dataclass(frozen=True)
class Block:
    """One linear layer and the parameter-free map after it: z_l = phi(theta_l, a_{l-1}), a_l = sigma(z_l)."""

    phi: LinearTransfer
    sigma: object  # Elementwise or Compose; Identity for the last block


class Network:
    r"""A feed-forward network of L-1 blocks (phi_l, sigma_l) with softmax cross-entropy loss.

    Build it with :func:`mlp`, :func:`penaltyprop.cnn`, or :meth:`from_layers` from a
    flat list such as ``[Conv2d(...), ReLU(), MaxPool2d(2), Flatten(), Linear(320, 10)]``.
    """

    def __init__(self, blocks):
        blocks = list(blocks)
        if len(blocks) < 1:
            raise ValueError("a network needs at least one linear layer")
        for l in range(1, len(blocks)):
            prev_out = blocks[l - 1].sigma.out_shape(blocks[l - 1].phi.out_shape)
            if tuple(prev_out) != tuple(blocks[l].phi.in_shape):
                raise ValueError(
                    f"layer {l + 1} ({blocks[l].phi!r}) expects inputs of shape "
                    f"{blocks[l].phi.in_shape}, but layer {l} produces {tuple(prev_out)}"
                )
        if len(blocks[-1].phi.out_shape) != 1:
            raise ValueError("the last linear layer must output class scores of shape (C,); "
                             "add Flatten() and a Linear layer")
        self.blocks = blocks

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_layers(cls, layers):
        """Group a flat list of layers into blocks: each linear layer takes the maps after it.

        Parameters
        ----------
        layers : list
            Linear transfer functions (``Linear``, ``Conv2d``) and parameter-free maps
            (``ReLU()``, ``MaxPool2d(2)``, ``Flatten()``, ...). It must start with a linear
            layer and end with one (the class scores).
        """
        layers = list(layers)
        if not layers or not isinstance(layers[0], LinearTransfer):
            raise ValueError("layers must start with a linear layer (Linear or Conv2d)")
        if not isinstance(layers[-1], LinearTransfer):
            raise ValueError("layers must end with a linear layer that outputs class scores")
        if layers[-1].out_shape[0] < 2:  # one class: the loss is 0 for every theta
            raise ValueError(f"the last layer {layers[-1]!r} must output at least 2 class scores "
                             f"(softmax cross-entropy of one class is 0: nothing would train)")
        groups = []
        for layer in layers:
            if isinstance(layer, LinearTransfer):
                groups.append([layer, []])
            elif callable(layer) and hasattr(layer, "vjp"):
                groups[-1][1].append(layer)
            else:
                raise ValueError(f"not a layer: {layer!r}")
        blocks = []
        for phi, maps in groups:
            sigma = Identity() if not maps else maps[0] if len(maps) == 1 else Compose(maps)
            blocks.append(Block(phi, sigma))
        return cls(blocks)

    # ---------------------------------------------------------------- properties
    @property
    def phis(self):
        return [blk.phi for blk in self.blocks]

    @property
    def sigmas(self):
        return [blk.sigma for blk in self.blocks]

    @property
    def n_linear(self) -> int:
        """Number of linear layers, L-1 in the paper's notation."""
        return len(self.blocks)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.blocks[0].phi.in_shape)

    @property
    def n_classes(self) -> int:
        return self.blocks[-1].phi.out_shape[0]

    def init(self, seed=0, dtype="float64", backend="numpy"):
        r"""Initial parameters, PyTorch's default: W_l, b_l ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

        Drawn on the host from one seeded generator, layer by layer (W then b), then moved
        to ``backend``, so CPU and GPU runs start from identical numbers.

        Parameters
        ----------
        seed : int
            The seed of the random generator.
        dtype : {"float64", "float32"}
            ``"float64"`` (default; the proposition tests) or ``"float32"`` (training).
        backend : {"numpy", "cupy"}
            The array backend.

        Returns
        -------
        theta : list of (W_l, b_l) pairs
            ``theta[l-1]`` for layer l (0-based list).
        """
        dtype = check_dtype(dtype)  # a name, np.float64 or a numpy dtype
        xp = get_backend(backend)
        rng = host_rng(check_int(seed, "seed", 0))
        theta = []
        for phi in self.phis:
            W, b = phi.init(rng, dtype)
            theta.append((to_device(W, xp), to_device(b, xp)))
        return theta

    def __repr__(self):
        parts = []
        for blk in self.blocks:
            parts.append(repr(blk.phi))
            if not isinstance(blk.sigma, Identity):
                parts.append(repr(blk.sigma))
        return "Network(" + " -> ".join(parts) + " -> softmax cross-entropy)"


def mlp(sizes, activation="relu"):
    r"""A fully connected network n0 - n1 - ... - n_out with one nonlinearity throughout.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths :math:`n_0, \ldots, n_{L-1}`, at least two; the last is the number
        of classes. The paper's MLP is ``[3072, 4000, 1000, 4000, 10]``.
    activation : ``"relu"``, ``"sigmoid"`` or ``"tanh"``
        :math:`\sigma` for every hidden layer.

    Returns
    -------
    Network
        With L-1 = len(sizes) - 1 linear layers :math:`\phi(\theta, a) = W a + b 1^\top`.
    """
    sizes = check_sizes(sizes)  # Python or NumPy integers >= 1, as ints
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output width, got {sizes!r}")
    if not isinstance(activation, Elementwise):
        get_activation(activation)  # raises ValueError for an unknown name
    layers = []
    for l in range(1, len(sizes)):
        layers.append(Linear(sizes[l - 1], sizes[l]))
        if l < len(sizes) - 1:
            layers.append(get_activation(activation))
    return Network.from_layers(layers)
