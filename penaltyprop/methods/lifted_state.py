r"""A lifted method's state: its per-sample variables, bound to the data they were made for.

:class:`LiftedState` holds a, z (and ADMM's multiplier) between sweeps; :func:`init_state` makes
it from a forward pass; :func:`check_state` is what every entry point of a lifted method checks
(the network, theta, the data, and that the state was made for these very X and y);
:func:`state_arrays` and :func:`state_from_arrays` carry it through a checkpoint, so that a
resumed run continues exactly. :mod:`~penaltyprop.methods.lifted` re-exports every name.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..backend import array_module
from ..checks import check_problem
from ..forward import forward
from .networks import RELU_MLP


@dataclass(frozen=True)
class LiftedState:
    r"""The per-sample variables of a lifted method, between sweeps (never modified in place).

    Attributes
    ----------
    a : list of K arrays
        ``a[l]`` = :math:`a_l` (``a[0]`` is X); BCD's split output keeps a K+1-th, :math:`a_K`.
    z : list of K+1 entries
        ``z[l]`` = :math:`z_l` for l = 1..K (``z[0]`` is None; ``z[K]`` the lifted class
        scores).
    lam : (C, N) array or None
        The multiplier on the output (ADMM).
    sweeps : int
        The sweeps done.
    y : (N,) array or None
        The labels the state was made for (a copy), or None for a state built by hand. With
        ``a[0]`` (X itself) it binds the state to its data: a sweep with other X or y is
        refused (:func:`check_state`).
    """

    a: list
    z: list
    lam: object = None
    sweeps: int = 0
    y: object = None


def last(steps, default=None):
    """The last item a generator of block updates yields (``default`` if none): runs it out."""
    tail = deque(steps, maxlen=1)
    return tail[0] if tail else default


def check_lifted_net(net, method):
    """Raise ValueError unless ``net`` is an MLP of Linear layers with ReLU between them (the
    a-step solves with :math:`W^\top W`, the z-step is the ReLU prox): :data:`.RELU_MLP`,
    what the lifted methods declare as their ``networks``, checked as ``check_net`` does."""
    RELU_MLP.check(net, method)


def init_state(net, theta, X, y, method):
    """A :class:`LiftedState` from a forward pass (Eq. 7): every constraint holds exactly.

    The state keeps X (as ``a[0]``) and a copy of y, the data it belongs to."""
    check_lifted_net(net, method)
    check_problem(net, theta, X, y)
    a, z = forward(net, theta, X, check=False)
    return LiftedState(list(a), list(z), y=y.copy())


def check_state(net, theta, state, X, y, method, sweep=True, output_a=False, multiplier=False):
    """Check one call of a lifted method's ``sweep``, ``steps`` or ``diagnostics``.

    The network, theta, X and y as every public function checks them (labels: their
    length, integer type and range; theta: finite), then the state: a :class:`LiftedState`
    of this method's form (``output_a``, ``multiplier``: :func:`check_state_shapes`) whose
    arrays fit this network and these N samples, made by ``init_state`` for these very X
    and y (the same arrays, or equal ones). A state built by hand holds no labels: it may be
    evaluated (``sweep=False``: diagnostics, objective), not swept. Raises ValueError naming
    what differs and what to do.
    """
    if not isinstance(state, LiftedState):
        raise ValueError(f"state must be the LiftedState that method.init_state(net, theta, "
                         f"X, y) made, got {type(state).__name__}")
    check_lifted_net(net, method)
    check_problem(net, theta, X, y)
    check_state_shapes(net, state, X, method, output_a, multiplier)
    xp = array_module(X)
    if state.y is None and sweep:
        raise ValueError("state holds no labels (it was not made by init_state): make it with "
                         "method.init_state(net, theta, X, y)")
    for name, mine, given in (("X", state.a[0], X), ("y", state.y, y)):
        if mine is None:
            continue
        if mine is not given and not bool(xp.array_equal(mine, given)):
            raise ValueError(f"state was made by init_state for other data ({name} differs): "
                             f"a lifted method's state belongs to the samples it was made for; "
                             f"call method.init_state(net, theta, X, y) for these X, y")


def check_objective_args(net, theta, state, y, method, output_a=False, multiplier=False):
    """:func:`check_state` for ``objective(net, theta, state, y)``, which takes X from the state
    (``a[0]``); a state built by hand, ``LiftedState(a, z)``, holds no labels to compare."""
    if not isinstance(state, LiftedState):
        raise ValueError(f"state must be a LiftedState, got {type(state).__name__}")
    if not (isinstance(state.a, (list, tuple)) and state.a):
        raise ValueError("state.a must be the list of activations a[0] = X, a[1], ...; make the "
                         "state with method.init_state(net, theta, X, y)")
    check_state(net, theta, state, state.a[0], y, method, sweep=False, output_a=output_a,
                multiplier=multiplier)


def check_state_shapes(net, state, X, method, output_a=False, multiplier=False):
    """Raise ValueError unless the state has the method's form and its a, z (and multiplier)
    fit ``net`` and X's N samples, with X's dtype and backend.

    ``a`` has K entries a_0 .. a_{K-1}, or K + 1 when the method keeps an output variable
    a_K beside z_K (``output_a``: BCD's split output); ``lam`` is None unless the method has
    a multiplier (``multiplier``: ADMM). A state of another form was made by another method
    (or setting) and is refused, not swept or evaluated as if it were this one's.
    """
    K, N = net.n_linear, X.shape[-1]
    xp = array_module(X)
    n_a = K + 1 if output_a else K
    if not (isinstance(state.a, (list, tuple)) and isinstance(state.z, (list, tuple))
            and len(state.a) in (K, K + 1) and len(state.z) == K + 1):
        raise ValueError(f"state does not fit this network of {K} layers (a has "
                         f"{len(state.a)} entries, z {len(state.z)}; expected {n_a} and {K + 1}): "
                         f"it belongs to another network; make a new state with "
                         f"method.init_state(net, theta, X, y)")
    if len(state.a) != n_a or (state.lam is not None and not multiplier):
        kept = f"a multiplier lam, which method {method!r} does not have" \
            if len(state.a) == n_a else \
            f"{len(state.a)} activations a, where method {method!r} keeps {n_a} (a_K beside " \
            f"z_K is BCD's output='split')"
        raise ValueError(f"state holds {kept}: it was made by another method's init_state (or "
                         f"with another output setting); make it with method.init_state(net, "
                         f"theta, X, y)")
    want = [("a[0]", state.a[0], tuple(X.shape))]  # X itself
    want += [(f"a[{l}]", state.a[l], (net.blocks[l - 1].phi.n_out, N))
             for l in range(1, len(state.a))]
    want += [(f"z[{l}]", state.z[l], (net.blocks[l - 1].phi.n_out, N)) for l in range(1, K + 1)]
    if state.lam is not None:
        want.append(("lam", state.lam, (net.n_classes, N)))
    for name, arr, shape in want:
        if not hasattr(arr, "shape") or tuple(arr.shape) != shape:
            got = tuple(arr.shape) if hasattr(arr, "shape") else type(arr).__name__
            raise ValueError(f"state does not fit this network and these samples: {name} has "
                             f"shape {got}, expected {shape}; call method.init_state(net, "
                             f"theta, X, y) for them")
        if array_module(arr) is not xp or arr.dtype != X.dtype:
            raise ValueError(f"state's {name} has dtype {arr.dtype} on "
                             f"{array_module(arr).__name__}, X {X.dtype} on {xp.__name__}; "
                             f"call method.init_state(net, theta, X, y) for these X, y")


# --------------------------------------------------------------------------- checkpoints
def state_arrays(state) -> dict:
    """The arrays that continue a lifted method exactly from a checkpoint: ``a1`` .. ``a{K-1}``,
    ``z1`` .. ``z{K}`` and ``lam`` (if any). ``a[0]`` is X and ``y`` the labels: the run's data,
    which the checkpoint identifies by its fingerprint."""
    arrays = {f"a{l}": state.a[l] for l in range(1, len(state.a))}
    arrays.update({f"z{l}": state.z[l] for l in range(1, len(state.z))})
    if state.lam is not None:
        arrays["lam"] = state.lam
    return arrays


def state_from_arrays(net, arrays, sweeps, X, y, method) -> LiftedState:
    """The :class:`LiftedState` that :func:`state_arrays` saved (arrays on X's backend), bound
    to X and y; ValueError naming what is missing or does not fit ``net`` and X."""
    K = net.n_linear
    names = {f"a{l}" for l in range(1, K)} | {f"z{l}" for l in range(1, K + 1)}
    missing = sorted(names - set(arrays))
    extra = sorted(set(arrays) - names - {"lam", f"a{K}"})
    if missing or extra:
        raise ValueError(f"its {method} state has arrays {sorted(arrays)}, this network needs "
                         f"{sorted(names)} (and lam for ADMM, a{K} for BCD's split output)")
    n_a = K + 1 if f"a{K}" in arrays else K
    state = LiftedState([X] + [arrays[f"a{l}"] for l in range(1, n_a)],
                        [None] + [arrays[f"z{l}"] for l in range(1, K + 1)],
                        arrays.get("lam"), sweeps, y.copy())
    check_state_shapes(net, state, X, method, output_a=n_a > K, multiplier="lam" in arrays)
    return state
