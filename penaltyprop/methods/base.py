r"""What every training method is, what it declares about itself, and the registry.

A method is a small frozen dataclass (its fields are its settings, each default written once,
each checked in ``__post_init__``) of one of two kinds:

* an **oracle** method turns a minibatch into a direction that any optimizer consumes like a
  gradient: ``J, d = method.direction(net, theta, X, y)``;
* a **lifted** method keeps its own variables for every training sample between sweeps
  (activations a_l, z_l, multipliers) and updates theta by full-batch sweeps:
  ``state = method.init_state(net, theta, X, y)``,
  ``theta, state = method.sweep(net, theta, state, X, y)``, and
  ``method.diagnostics(net, theta, state, X, y)`` reports its objective and constraint
  residuals.

Besides its step, a method declares what the tools need to know about it (all optional):
``networks`` (checked by :meth:`Method.check_net` before any training), ``default_optimizer``
and ``default_tau`` (how ``train`` and the family comparison run it; :meth:`Method.family_run`),
``extra_flops`` or ``sweep_flops`` (its cost, for the bench's floor), ``step_model`` (the
bench's time breakdown) and ``penalty_sweep`` (the step-by-step trace of the notebooks).

**Registration by definition.** Defining a subclass that sets ``name`` registers it in
:data:`METHODS`: a class hook checks the definition (name, settings, step) and raises
TypeError or ValueError with the reason. ``--method NAME``, the family comparison, the bench
and the docs' method table all read :data:`METHODS`; none of them lists methods by hand or
branches on a name. ``class Scratch(OracleMethod, register=False)`` defines a method that is
not registered; :func:`register` files it later, :func:`unregister` removes one.
"""
from __future__ import annotations

import dataclasses
import re
import typing

from .networks import ANY_NETWORK, Networks
from .settings import (
    check_decorated,
    check_setting,
    is_classvar,
    own_annotations,
)

#: name -> method class, in the order the classes were defined
METHODS: dict = {}

NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
KINDS = ("oracle", "lifted")
#: what a class must define, per kind, to be registered (its step)
STEP = {"oracle": ("direction",), "lifted": ("init_state", "sweep", "diagnostics")}
#: what describes the step: inherited only by a class that inherits the step too
DESCRIBES_STEP = ("penalty_sweep", "extra_flops", "sweep_flops", "step_model")
#: the pieces of a step the bench times alone (keys of ``step_model``'s argument), in seconds
PIECES = ("forward", "backprop", "update", "gram", "solve", "apply_h", "cg1", "cg2")


class FamilyRun(typing.NamedTuple):
    """How the family comparison trains a method: the object, its optimizer and step size
    (``None, None`` for a lifted method, which trains by full-batch sweeps)."""

    method: object
    optimizer: typing.Optional[str]
    tau: typing.Optional[float]


class Method:
    """Base class of all methods (subclasses are frozen dataclasses).

    Attributes
    ----------
    name : str
        The registry key (``--method NAME``); a class attribute, "" for an abstract base.
    kind : {"oracle", "lifted"}
        A class attribute.
    networks : Networks
        :class:`~penaltyprop.methods.Networks`, what the method can train (a class attribute;
        default: any network).
    """

    name: typing.ClassVar[str] = ""
    kind: typing.ClassVar[str] = ""
    networks: typing.ClassVar[Networks] = ANY_NETWORK

    def __init_subclass__(cls, register=True, **kwargs):
        """Check a new method class and register it (see the module docstring)."""
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__:  # OracleMethod, LiftedMethod: abstract
            return
        forget_inherited_descriptions(cls)
        if not register:
            return
        if "name" not in cls.__dict__ and cls.name:
            raise TypeError(f"{cls.__qualname__} inherits name {cls.name!r}: a registered "
                            f"method needs its own (name = '...'; it is its --method NAME and "
                            f"what its saved config() rebuilds), or define it with "
                            f"register=False")
        if cls.name:
            file_class(cls)

    def __new__(cls, *args, **kwargs):
        check_decorated(cls)
        return super().__new__(cls)

    @property
    def label(self) -> str:
        """The name in legends and tables, e.g. ``"ProxProp (cg3)"``."""
        return type(self).__name__

    @property
    def key(self) -> str:
        """A short file-safe name, unique among the runs of an experiment, e.g. ``"cg3"``."""
        return self.name

    def get_params(self) -> dict:
        """The settings, as given (after checking and resolving defaults)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def config(self) -> dict:
        """JSON-able: ``{"method": name, **settings}``; ``method_from_config`` inverts it."""
        return {"method": self.name, **self.get_params()}

    def describe(self) -> str:
        """One line: the label and every setting given, e.g. ``"ProxProp (cg3): tau_theta=1,
        solver=cg, cg_iterations=3, cg_variant=textbook, cg_space=auto"``."""
        params = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in self.get_params().items() if v is not None]
        return self.label + (f": {', '.join(params)}" if params else "")

    def check_net(self, net):
        """Raise ValueError (naming the layer) unless the method can train ``net``
        (``networks``); the training loop, the bench and the trace call it first."""
        self.networks.check(net, self.name)

    @classmethod
    def family_run(cls) -> FamilyRun:
        """How the family comparison trains this method (default: ``cls()`` with its
        defaults, its default optimizer and step)."""
        raise NotImplementedError

    def penalty_sweep(self, net, theta, X, y, tau):
        r"""One sweep of steps on the penalty energy E (Eq. 3) as a generator of
        ``(step, l, D, a, z)``, as :func:`penaltyprop.algorithms.sweep` yields them, for
        :func:`penaltyprop.penalty_steps`; None: the method is no such sweep."""
        return None


class OracleMethod(Method):
    """A method that gives a direction per minibatch (BackProp, ProxProp, ...).

    Attributes
    ----------
    default_optimizer : {"nesterov", "sgd", "adam"}
        The optimizer ``train``, the command line and the family comparison use when none is
        given; a class attribute.
    default_tau : float or None
        The learning rate (the paper's tau) with the default optimizer (and with plain SGD
        when that is Nesterov's); None: it must be given. A class attribute.
    """

    kind = "oracle"
    default_optimizer: typing.ClassVar[str] = "nesterov"
    default_tau: typing.ClassVar[typing.Optional[float]] = None

    def direction(self, net, theta, X, y, check=True):
        r"""``(J, d)``: the minibatch loss :math:`J(\theta; X, y)` and a direction with the
        structure of theta. ``check=False`` skips the input checks (hot loops)."""
        raise NotImplementedError

    @classmethod
    def family_run(cls) -> FamilyRun:
        return FamilyRun(cls(), cls.default_optimizer, cls.default_tau)

    def extra_flops(self, shapes):
        """The flops one step adds to BackProp's matrix products, for the layer products
        ``shapes = [(n_out, m, K), ...]`` (:func:`~penaltyprop.methods.costs.base_flops`);
        None: no count (the bench prints "no floor")."""
        return None

    def step_model(self, pieces):
        """Seconds of the step's own parts beside BackProp's forward, backward and update,
        ``{part: seconds}``, predicted from the bench's pieces (``{piece: seconds}``, keys
        ``penaltyprop.bench.breakdown.PIECE_NAMES``); None: no model."""
        return None


class LiftedMethod(Method):
    """A method with per-sample variables, trained by full-batch sweeps (BCD, ADMM, ...)."""

    kind = "lifted"

    def init_state(self, net, theta, X, y):
        """The method's variables for the samples X, y (e.g. from a forward pass)."""
        raise NotImplementedError

    def sweep(self, net, theta, state, X, y):
        """One sweep over every block: ``(theta, state)``, both new."""
        raise NotImplementedError

    def diagnostics(self, net, theta, state, X, y) -> dict:
        """Host floats: the objective the method decreases and its constraint residuals."""
        raise NotImplementedError

    @classmethod
    def family_run(cls) -> FamilyRun:
        return FamilyRun(cls(), None, None)

    def sweep_flops(self, shapes):
        """The flops of one full-batch sweep, for the layer products
        ``shapes = [(n_out, m, K), ...]`` with K the samples; None: no count."""
        return None


# --------------------------------------------------------------------------- registry
def base_of_kind(cls):
    """OracleMethod or LiftedMethod, whichever ``cls`` derives from (None for neither)."""
    return next((b for b in (OracleMethod, LiftedMethod) if issubclass(cls, b)), None)


def forget_inherited_descriptions(cls):
    """A class that defines its own step keeps no inherited description of another step.

    A subclass that overrides ``direction`` (or ``sweep``) but inherits ``penalty_sweep``,
    ``extra_flops``, ``sweep_flops`` or ``step_model`` would be traced and costed as its
    parent: those fall back to the base's "unknown" (None) unless the class defines them too.
    """
    base = base_of_kind(cls)
    if base is None or not any(name in cls.__dict__ for name in ("direction", "sweep")):
        return
    for name in DESCRIBES_STEP:
        if name not in cls.__dict__ and hasattr(base, name):
            setattr(cls, name, getattr(base, name))


def check_definition(cls):
    """Raise TypeError or ValueError, with the reason, for a method class that cannot be
    registered: its name, its kind, its step, its step size, or one of its settings."""
    where = cls.__qualname__
    if not isinstance(cls.name, str) or not NAME.match(cls.name):
        raise ValueError(f"{where}.name must be lowercase letters, digits and _ (starting with a "
                         f"letter): it is --method NAME and part of file names; got {cls.name!r}")
    base = base_of_kind(cls)
    if base is None or cls.kind not in KINDS:
        raise TypeError(f"{where} must derive from OracleMethod or LiftedMethod")
    missing = [step for step in STEP[cls.kind] if getattr(cls, step) is getattr(base, step)]
    if missing:
        raise TypeError(f"{where} is a{'n' if cls.kind == 'oracle' else ''} {cls.kind} method: "
                        f"define {', '.join(missing)}")
    if cls.kind == "oracle":
        tau = cls.default_tau
        if tau is not None and (isinstance(tau, bool) or not isinstance(tau, (int, float))
                                or not tau > 0):
            raise ValueError(f"{where}.default_tau must be a number > 0 or None, got {tau!r}")
        if tau is None and cls.family_run.__func__ is OracleMethod.family_run.__func__:
            raise TypeError(f"{where} says no step size: set default_tau (the learning rate "
                            f"with its default_optimizer {cls.default_optimizer!r}) or define "
                            f"family_run")
        if not isinstance(cls.default_optimizer, str):
            raise TypeError(f"{where}.default_optimizer must name an optimizer, got "
                            f"{cls.default_optimizer!r}")
    if not isinstance(cls.networks, Networks):
        raise TypeError(f"{where}.networks must be a Networks, got {cls.networks!r}")
    for name, annotation in own_annotations(cls).items():
        if not is_classvar(annotation):
            check_setting(cls, name)


def file_class(cls):
    """Check ``cls`` and file it under its name. A class defined again (the same module and
    qualified name, e.g. a notebook cell run twice) replaces its earlier definition."""
    check_definition(cls)
    old = METHODS.get(cls.name)
    if old is not None and old is not cls and \
            (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"method name {cls.name!r} of {cls.__module__}.{cls.__qualname__} is "
                         f"taken by {old.__module__}.{old.__qualname__}: choose another name")
    METHODS[cls.name] = cls


def register(cls):
    """Register a method class (one defined with ``register=False``); returns it, so that it
    also works as a class decorator. Raises as the definition check does."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"register takes a method class (derived from OracleMethod or "
                        f"LiftedMethod), got {cls!r}")
    file_class(cls)
    return cls


def unregister(name):
    """Remove the method ``name`` from the registry and return its class."""
    if name not in METHODS:
        raise ValueError(f"no method {name!r} is registered (registered: {', '.join(METHODS)})")
    return METHODS.pop(name)
