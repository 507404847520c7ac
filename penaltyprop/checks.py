"""Input checks shared by the public functions: every bad input becomes a ValueError naming it.

The public functions (``forward``, ``loss``, ``gradient``, ``penalty_backprop``,
``proxprop``, ...) call these once at the top; the private functions they call
afterwards (``_forward``, ``_sweep``) assume checked input, so the training loop,
which checks its data once, pays nothing per step. The checks cost one pass over X and
theta (their finiteness, one device sync each on the GPU), far below one step.

Arrays must be plain arrays (not ``numpy.matrix``, whose ``*`` is a matrix product, nor masked
arrays, whose mask the algorithms would ignore) in native byte order, of dtype float32 or
float64 (X, theta) or integers (y).
"""
from __future__ import annotations

import math
import numbers

from .backend import array_module
from .backend import numpy as np
from .transfer import check_params

#: The floating dtypes penaltyprop computes in.
FLOAT_DTYPES = ("float32", "float64")


def check_positive(value, name):
    """Raise ValueError unless ``value`` is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_choice(value, name, choices):
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_int(value, name, minimum):
    """Raise ValueError unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_sizes(sizes, name="sizes"):
    """Layer widths: a list of positive integers (Python or NumPy ints), returned as ints."""
    sizes = list(sizes)
    for n in sizes:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"{name} must be positive integers, got {sizes!r}")
    return [int(n) for n in sizes]


def check_dtype(dtype, name="dtype"):
    """``"float32"`` or ``"float64"`` from a name, a NumPy type (``np.float64``) or a dtype."""
    try:
        text = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:
        text = None
    if text not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be 'float32' or 'float64', got {dtype!r}")
    return text


def check_array(x, name):
    """Raise ValueError unless ``x`` is an array (has a shape and a dtype)."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ValueError(f"{name} must be an array, got {type(x).__name__}")


def check_finite(x, name):
    """Raise ValueError if ``x`` holds NaN or inf (a device sync on the GPU)."""
    if not bool(array_module(x).isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf values")


def check_plain_array(x, name):
    """Refuse what NumPy's functions would mishandle deep inside: ``numpy.matrix``, masked
    arrays and non-native byte order, each with what to pass instead."""
    expr = name.split(" (")[0]  # "theta[0][0] (W)" -> "theta[0][0]", for the code to pass
    if isinstance(x, np.matrix):
        raise ValueError(f"{name} is a numpy.matrix; pass numpy.asarray({expr}) instead")
    if isinstance(x, np.ma.MaskedArray):
        raise ValueError(f"{name} is a masked array, whose mask would be ignored; pass "
                         f"{expr}.filled(value) or drop the masked entries")
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, np.dtype) and not dtype.isnative:
        raise ValueError(f"{name} has non-native byte order ({dtype.str}); pass "
                         f"{expr}.astype({dtype.newbyteorder('=').name!r}) instead")


def check_X(net, X, name="X"):
    """X must have shape (*input_shape, N), dtype float32 or float64, and finite entries."""
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        raise ValueError(f"{name} must be an array of shape {(*net.input_shape, 'N')}, "
                         f"got {type(X).__name__}")
    check_plain_array(X, name)
    net.blocks[0].phi.check_input(X, name)
    if str(X.dtype) not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be a floating array (float32 or float64), got {X.dtype}")
    check_finite(X, name)


def check_theta(net, theta, like=None, finite=True):
    """theta must be a list with one (W, b) pair per linear layer, shapes as the network says,
    W and b of one dtype (float32 or float64, X's if ``like`` is given), finite unless
    ``finite`` is false (a diverged run's checkpoint)."""
    if not isinstance(theta, (list, tuple)) or len(theta) != net.n_linear:
        got = len(theta) if isinstance(theta, (list, tuple)) else type(theta).__name__
        raise ValueError(f"theta must be a list of {net.n_linear} (W, b) pairs, got {got}")
    xp = array_module(like) if like is not None else None
    for l, (phi, theta_l) in enumerate(zip(net.phis, theta)):
        if isinstance(theta_l, (tuple, list)) and len(theta_l) == 2:
            check_array(theta_l[0], f"theta[{l}][0] (W)")  # a list has no shape: say so
            check_array(theta_l[1], f"theta[{l}][1] (b)")
        check_params(phi, theta_l, l, xp)
        W, b = theta_l
        for name, p in ((f"theta[{l}][0] (W)", W), (f"theta[{l}][1] (b)", b)):
            check_plain_array(p, name)
            if str(p.dtype) not in FLOAT_DTYPES:
                raise ValueError(f"{name} has dtype {p.dtype}; only float32 and float64 are "
                                 f"supported")
        if b.dtype != W.dtype:
            raise ValueError(f"theta[{l}] mixes dtypes: W is {W.dtype}, b is {b.dtype}; use "
                             "one floating dtype throughout")
        if like is not None and W.dtype != like.dtype:
            raise ValueError(f"theta[{l}] has dtype {W.dtype} but X has {like.dtype}; "
                             "use one floating dtype throughout")
    if finite:
        _check_theta_finite(theta)


def _check_theta_finite(theta):
    """Raise ValueError naming the first layer and W or b with NaN or inf; one host sync."""
    xp = array_module(theta[0][0])
    flags = xp.stack([xp.isfinite(p).all() for pair in theta for p in pair])  # (2 L,) bool
    if bool(flags.all()):
        return
    first = int(xp.argmin(flags))
    l, which = divmod(first, 2)
    raise ValueError(f"theta[{l}][{which}] ({'Wb'[which]}) contains NaN or inf values")


def check_labels(net, y, N, like, name="y"):
    """y must be N integer labels in 0 .. n_classes-1 on X's backend (``name``: for messages)."""
    xp = array_module(like)
    check_array(y, name)
    check_plain_array(y, name)
    if not hasattr(y, "shape") or tuple(y.shape) != (N,):
        raise ValueError(f"{name} must have shape ({N},) (one label per column of X), "
                         f"got {tuple(getattr(y, 'shape', ()))}")
    if array_module(y) is not xp:
        raise ValueError(f"{name} lives on a different backend than X")
    if y.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    C = net.n_classes
    if N and (bool((y < 0).any()) or bool((y >= C).any())):
        raise ValueError(f"{name} must hold labels in 0..{C - 1} (the network has {C} classes), "
                         f"got values in {int(y.min())}..{int(y.max())}")


def check_problem(net, theta, X, y=None, finite_theta=True):
    """All of the checks above for one call of an algorithm.

    ``finite_theta=False`` lets NaN or inf in theta pass (resuming a run that diverged).
    """
    check_X(net, X)
    check_theta(net, theta, like=X, finite=finite_theta)
    if y is not None:
        check_labels(net, y, X.shape[-1], like=X)
