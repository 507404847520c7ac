"""What the bench times: a list of modes, each a label and a method object, BackProp first."""
from __future__ import annotations

from typing import NamedTuple

from ..methods import BackProp, ProxProp

#: the preset groups of ``--modes``
MODES = ("backprop", "exact", "cg")
CG_ITERATIONS = (1, 3, 5, 10)
#: the prox step size of the presets (the paper's Fig. 2; the cost does not depend on it)
TAU_THETA = 0.05


class Mode(NamedTuple):
    """One row of the bench: ``label`` in its table, ``method`` the method timed (an oracle
    method's step, or a lifted method's full-batch sweep)."""

    label: str
    method: object


def make_modes(modes=MODES, cg_iterations=CG_ITERATIONS, tau_theta=TAU_THETA):
    """The preset modes, in table order: BackProp, exact ProxProp, then CG-k for every k.

    Parameters
    ----------
    modes : subset of ("backprop", "exact", "cg")
        ``"backprop"`` is required (every ratio is taken against it).
    cg_iterations : int
        The k of the CG-k modes.
    tau_theta : float
        The prox step size of the ProxProp modes.

    Returns
    -------
    list of Mode
        One :class:`Mode` per mode.
    """
    for name in modes:
        if name not in MODES:
            raise ValueError(f"modes must be drawn from {MODES}, got {name!r}")
    if "backprop" not in modes:
        raise ValueError("modes must include 'backprop': every ratio is taken against it")
    out = [Mode("BackProp", BackProp())]
    if "exact" in modes:
        out.append(Mode("exact", ProxProp(tau_theta=tau_theta, solver="exact")))
    if "cg" in modes:
        out += [Mode(f"CG-{k}", ProxProp(tau_theta=tau_theta, solver="cg", cg_iterations=k))
                for k in cg_iterations]
    return out


def modes_of(methods):
    """BackProp, then a mode labelled ``method.label`` for every other method given.

    A method is an oracle method (its step is timed) or a lifted one (its full-batch sweep).
    """
    out = [Mode("BackProp", BackProp())]
    for method in methods:
        if getattr(method, "kind", None) not in ("oracle", "lifted"):
            raise ValueError(f"the bench times steps and sweeps: methods must be oracle or "
                             f"lifted methods, got {method!r}")
        if method != out[0].method:
            out.append(Mode(method.label, method))
    return out
