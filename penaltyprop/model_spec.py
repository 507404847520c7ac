r"""Model strings, parsed in one place: ``"mlp"``, ``"cnn"``, ``"cnn-authors"`` or layer widths.

The command line (``train --model``, ``bench --model``) and the bench build their networks
here. Network layer: imports :mod:`penaltyprop.network` and :mod:`penaltyprop.conv` only.

* ``"mlp"``: the paper's fully connected network 3072-4000-1000-4000-10 (Section 5.1);
* ``"cnn"``: the paper's CNN (Section 5.3): conv blocks of 16, 20, 20 filters of 5x5, each
  followed by sigma and 2x2 max pooling, then one fully connected layer. On images whose
  sides 2x2 pooling cannot halve three times, the blocks it cannot halve are left out
  (MNIST: 28 -> 14 -> 7, two blocks);
* ``"cnn-authors"``: the CNN of the authors' released code, which differs from the paper's
  text: the last conv block has no pooling, so the fully connected layer is 1280 -> 10 on
  CIFAR-10 (32 -> 16 -> 8). On other images, as many pooled blocks as fit, then the
  unpooled one;
* ``"n0-n1-...-C"``: an MLP of these widths.

>>> net, text = build_model("64-100-10")          # doctest: +SKIP
>>> net, text = build_model("cnn", data)          # the CNN for data.image_shape
"""
from __future__ import annotations

from .conv import cnn
from .network import mlp

#: The paper's fully connected network (Section 5.1).
PAPER_MLP = (3072, 4000, 1000, 4000, 10)
#: Filters of the paper's three conv blocks (Section 5.3).
PAPER_CHANNELS = (16, 20, 20)
#: The CNN model strings: the paper's text (three pooled blocks) and the authors' code (the
#: last block unpooled).
CNN_MODELS = ("cnn", "cnn-authors")
#: The images the paper's CNN takes (CIFAR-10), and its classes.
PAPER_IMAGE = (3, 32, 32)
PAPER_CLASSES = 10


def parse_model(text):
    """``"cnn"``, ``"cnn-authors"``, or the tuple of layer widths that ``text`` names.

    Parameters
    ----------
    text : str or parsed spec
        ``"mlp"``, ``"cnn"``, ``"cnn-authors"`` or widths such as ``"784-300-10"`` (or a
        parsed spec: a CNN name or a sequence of widths, returned as a tuple).

    Returns
    -------
    str or tuple of int
        ``"cnn"``, ``"cnn-authors"`` or a tuple of at least two positive ints.

    Raises
    ------
    ValueError
        Naming ``model``, for anything else.
    """
    if isinstance(text, str) and text in CNN_MODELS:
        return text
    if text == "mlp":
        return PAPER_MLP
    if isinstance(text, str):
        try:
            sizes = tuple(int(s) for s in text.split("-"))
        except ValueError:
            sizes = ()
    else:
        try:
            sizes = tuple(text)
        except TypeError:
            sizes = ()
    if len(sizes) < 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                                 for n in sizes):
        raise ValueError(f"model must be 'mlp', 'cnn', 'cnn-authors' or layer widths such as 784-300-10 "
                         f"(at least two, all positive), got {text!r}")
    return sizes


def cnn_blocks(image_shape):
    """How many of the paper's conv blocks 2x2 pooling can follow on (C, H, W) images (0..3)."""
    _, H, W = image_shape
    blocks = 0
    while blocks < len(PAPER_CHANNELS) and H % 2 == 0 and W % 2 == 0:
        blocks, H, W = blocks + 1, H // 2, W // 2
    return blocks


def build_model(model, data=None, activation="relu"):
    """The network a model string names, fitted to ``data`` when given.

    Parameters
    ----------
    model : str or parsed spec
        See :func:`parse_model`.
    data : Dataset, optional
        Anything with ``name``, ``image_shape`` ((C, H, W)), ``n_classes`` and, for an MLP,
        ``n_features`` (a :class:`penaltyprop.data.Dataset`). An MLP must start with its
        features and end with its classes; the CNN takes its images. Without data the CNN is
        the paper's, for CIFAR-10.
    activation : str
        The nonlinearity sigma of the hidden layers (``"relu"``, ...).

    Returns
    -------
    (net, description) : (Network, str)
        The :class:`~penaltyprop.network.Network` and one line of text,
        ``"MLP 64-100-10 (relu)"`` or ``"CNN Network(...)"``.

    Raises
    ------
    ValueError
        Naming ``model``, for a bad string or one that does not fit ``data``.
    """
    spec = parse_model(model)
    if spec in CNN_MODELS:
        image_shape = tuple(data.image_shape) if data is not None else PAPER_IMAGE
        n_classes = data.n_classes if data is not None else PAPER_CLASSES
        pool_last = spec == "cnn"
        blocks = min(cnn_blocks(image_shape) + (not pool_last), len(PAPER_CHANNELS))
        if blocks == 0:
            raise ValueError(f"model 'cnn' needs even image sizes for 2x2 pooling, "
                             f"{data.name} has {image_shape}")
        net = cnn(in_shape=image_shape, channels=PAPER_CHANNELS[:blocks], n_classes=n_classes,
                  activation=activation, pool_last=pool_last)
        return net, f"CNN {net!r}"
    widths = "-".join(map(str, spec))
    if data is not None and (spec[0] != data.n_features or spec[-1] != data.n_classes):
        raise ValueError(f"model {widths} must start with {data.name}'s {data.n_features} "
                         f"input features and end with its {data.n_classes} classes")
    return mlp(list(spec), activation=activation), f"MLP {widths} ({activation})"


__all__ = ["CNN_MODELS", "PAPER_CHANNELS", "PAPER_MLP", "build_model", "cnn_blocks",
           "parse_model"]
