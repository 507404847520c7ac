"""Input checks shared by the public functions: every bad input becomes a ValueError naming it.

The public functions (``forward``, ``loss``, ``gradient``, ``penalty_backprop``,
``proxprop``, ...) call these once at the top; the private functions they call
afterwards (``_forward``, ``_sweep``) assume checked input, so the training loop,
which checks its data once, pays nothing per step.
"""
from __future__ import annotations

import math
import numbers

from .backend import array_module
from .transfer import check_params


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


def check_finite(x, name):
    """Raise ValueError if ``x`` holds NaN or inf (a device sync on the GPU)."""
    if not bool(array_module(x).isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf values")


def check_X(net, X, name="X"):
    """X must have shape (*input_shape, N), a floating dtype, and finite entries."""
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        raise ValueError(f"{name} must be an array of shape {(*net.input_shape, 'N')}, "
                         f"got {type(X).__name__}")
    net.blocks[0].phi.check_input(X, name)
    if X.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating array (float32 or float64), got {X.dtype}")
    check_finite(X, name)


def check_theta(net, theta, like=None):
    """theta must be a list with one (W, b) pair per linear layer, shapes as the network says."""
    if not isinstance(theta, (list, tuple)) or len(theta) != net.n_linear:
        got = len(theta) if isinstance(theta, (list, tuple)) else type(theta).__name__
        raise ValueError(f"theta must be a list of {net.n_linear} (W, b) pairs, got {got}")
    xp = array_module(like) if like is not None else None
    for l, (phi, theta_l) in enumerate(zip(net.phis, theta)):
        check_params(phi, theta_l, l, xp)
        if like is not None and theta_l[0].dtype != like.dtype:
            raise ValueError(f"theta[{l}] has dtype {theta_l[0].dtype} but X has {like.dtype}; "
                             "use one floating dtype throughout")


def check_labels(net, y, N, like):
    """y must be N integer labels in 0 .. n_classes-1 on X's backend."""
    xp = array_module(like)
    if not hasattr(y, "shape") or tuple(y.shape) != (N,):
        raise ValueError(f"y must have shape ({N},) (one label per column of X), "
                         f"got {tuple(getattr(y, 'shape', ()))}")
    if array_module(y) is not xp:
        raise ValueError("y lives on a different backend than X")
    if y.dtype.kind not in "iu":
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    C = net.n_classes
    if N and (bool((y < 0).any()) or bool((y >= C).any())):
        raise ValueError(f"y must hold labels in 0..{C - 1} (the network has {C} classes), "
                         f"got values in {int(y.min())}..{int(y.max())}")


def check_problem(net, theta, X, y=None):
    """All of the checks above for one call of an algorithm."""
    check_X(net, X)
    check_theta(net, theta, like=X)
    if y is not None:
        check_labels(net, y, X.shape[-1], like=X)
